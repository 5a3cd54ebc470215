//! Parity with the reference implementation (sentence-transformers on PyTorch): every
//! fixture text must embed to cosine >= 0.9999 with the reference, whether it is embedded alone
//! or padded inside a batch of mixed lengths.

use std::path::Path;

use failup::embed::{
    amx_unavailable, Backend, Embedder, EngineSpec, ModelDir, Precision, RtenEmbedder,
    TextTokenizer, Tokenized, TokenizerConfig,
};
use failup::vector::cosine;
use serde::Deserialize;

#[derive(Deserialize)]
struct Reference {
    text: String,
    embedding: Vec<f32>,
}

const MIN_COSINE: f32 = 0.9999;

fn references() -> Vec<Reference> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reference_embeddings.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|l| serde_json::from_str(l).expect("fixture line is JSON"))
        .collect()
}

fn load() -> (TextTokenizer, RtenEmbedder) {
    let dir = ModelDir::resolve(None).expect("bundled model");
    let tokenizer = TextTokenizer::load(
        &dir.tokenizer_path(),
        TokenizerConfig {
            max_seq_length: dir.max_seq_length,
            do_lower_case: dir.do_lower_case,
        },
    )
    .expect("tokenizer");
    (
        tokenizer,
        RtenEmbedder::load(&dir, 2, Precision::Fp32).expect("model"),
    )
}

fn assert_parity(refs: &[Reference], got: &[Vec<f32>], how: &str) {
    assert_eq!(refs.len(), got.len());
    for (r, e) in refs.iter().zip(got) {
        let c = cosine(&r.embedding, e);
        assert!(
            c >= MIN_COSINE,
            "{how}: cosine {c} < {MIN_COSINE} for {:?}",
            r.text.chars().take(60).collect::<String>()
        );
    }
}

#[test]
fn all_reference_texts_match_in_mixed_batches_and_one_by_one() {
    let refs = references();
    assert_eq!(refs.len(), 80, "the fixture has 80 texts");
    let (tokenizer, embedder) = load();
    let tokens: Vec<_> = refs
        .iter()
        .map(|r| tokenizer.tokenize(&r.text).unwrap())
        .collect();

    // In file order the batches mix short and long texts, so most stories are padded.
    let refs_tokens: Vec<_> = tokens.iter().collect();
    let batched: Vec<Vec<f32>> = refs_tokens
        .chunks(16)
        .flat_map(|b| embedder.embed(b).unwrap())
        .collect();
    let lengths: Vec<usize> = tokens.iter().map(|t| t.ids.len()).collect();
    assert!(
        lengths.chunks(16).any(|c| c.iter().min() != c.iter().max()),
        "batches must mix lengths for this test to mean anything"
    );
    assert_parity(&refs, &batched, "mixed batch");

    let single: Vec<Vec<f32>> = tokens
        .iter()
        .map(|t| embedder.embed(&[t]).unwrap().remove(0))
        .collect();
    assert_parity(&refs, &single, "one by one");
}

#[test]
fn long_text_is_truncated_to_the_models_window() {
    let refs = references();
    let (tokenizer, _) = load();
    let longest = refs
        .iter()
        .map(|r| tokenizer.tokenize(&r.text).unwrap())
        .max_by_key(|t| t.full_len)
        .unwrap();
    assert!(
        longest.truncated(),
        "the fixture has a text over 256 tokens"
    );
    assert_eq!(longest.ids.len(), 256);
}

/// Fast mode's documented bound: every fixture text within this cosine of the reference.
const INT8_MIN_COSINE: f32 = 0.99;

#[test]
fn int8_fast_mode_stays_within_its_documented_bound() {
    let refs = references();
    let dir = ModelDir::resolve(None).expect("bundled model");
    let (tokenizer, _) = load();
    let int8 = RtenEmbedder::load(&dir, 2, Precision::Int8).expect("int8 model");
    let tokens: Vec<_> = refs
        .iter()
        .map(|r| tokenizer.tokenize(&r.text).unwrap())
        .collect();
    let got = embed_in_batches(&int8, &tokens, 16);
    let (min, mean) = cosine_to_references(&refs, &got);
    eprintln!("int8 vs reference: min cosine {min:.4}, mean {mean:.4}");
    assert!(
        min >= INT8_MIN_COSINE,
        "min cosine {min} < {INT8_MIN_COSINE}"
    );
}

/// The AMX engine. The tests that use it are ignored by default, as they can only run where
/// the hardware is; `.ci/run` runs them with `--include-ignored`, and there a CPU without AMX
/// fails them, saying why.
fn amx(precision: Precision) -> Box<dyn Embedder> {
    if let Some(why) = amx_unavailable() {
        panic!("this test needs a CPU with AMX: {why}");
    }
    let dir = ModelDir::resolve(None).expect("bundled model");
    let spec = EngineSpec {
        model: &dir,
        backend: Backend::Amx,
        precision,
        threads: 2,
    };
    failup::embed::load(&spec).expect("AMX engine").1
}

/// Every text's embedding, `size` texts to a batch, in order.
fn embed_in_batches(engine: &dyn Embedder, tokens: &[Tokenized], size: usize) -> Vec<Vec<f32>> {
    let all: Vec<_> = tokens.iter().collect();
    all.chunks(size)
        .flat_map(|b| engine.embed(b).unwrap())
        .collect()
}

/// Lowest and mean cosine of `got` to the reference embeddings.
fn cosine_to_references(refs: &[Reference], got: &[Vec<f32>]) -> (f32, f32) {
    let cosines: Vec<f32> = refs
        .iter()
        .zip(got)
        .map(|(r, e)| cosine(&r.embedding, e))
        .collect();
    let min = cosines.iter().copied().fold(f32::INFINITY, f32::min);
    (min, cosines.iter().sum::<f32>() / cosines.len() as f32)
}

fn fixture_tokens() -> (Vec<Reference>, Vec<Tokenized>) {
    let refs = references();
    let (tokenizer, _) = load();
    let tokens = refs
        .iter()
        .map(|r| tokenizer.tokenize(&r.text).unwrap())
        .collect();
    (refs, tokens)
}

#[test]
#[ignore = "needs a CPU with AMX (Intel Xeon 4th generation or later)"]
fn amx_cpu_engine_matches_the_reference_and_rten() {
    let engine = amx(Precision::Fp32);
    let (refs, tokens) = fixture_tokens();
    let batched = embed_in_batches(engine.as_ref(), &tokens, 16);
    assert_parity(&refs, &batched, "AMX, mixed batch");
    let (_, rten) = load();
    let rten = embed_in_batches(&rten, &tokens, 16);
    for (a, r) in batched.iter().zip(&rten) {
        let c = cosine(a, r);
        assert!(c >= 0.99999, "AMX and rten differ: cosine {c}");
    }
}

#[test]
#[ignore = "needs a CPU with AMX (Intel Xeon 4th generation or later)"]
fn amx_cpu_embeddings_do_not_depend_on_the_batch() {
    // Layers run on the stories' rows end to end and attention story by story, so a story's
    // numbers are the same bits alone or beside others of any length.
    let engine = amx(Precision::Fp32);
    let (_, tokens) = fixture_tokens();
    let batched = embed_in_batches(engine.as_ref(), &tokens, 7);
    for (t, b) in tokens.iter().zip(&batched) {
        assert_eq!(&engine.embed(&[t]).unwrap()[0], b);
    }
}

/// bf16 mode's documented bound: every fixture text within this cosine of the reference.
const BF16_MIN_COSINE: f32 = 0.9999;

#[test]
#[ignore = "needs a CPU with AMX (Intel Xeon 4th generation or later)"]
fn amx_cpu_bf16_fast_mode_stays_within_its_documented_bound() {
    let engine = amx(Precision::Bf16);
    let (refs, tokens) = fixture_tokens();
    assert_bf16_bound(&refs, &embed_in_batches(engine.as_ref(), &tokens, 16));
}

/// Every embedding within bf16's documented bound of the reference, and not fp32-exact.
fn assert_bf16_bound(refs: &[Reference], got: &[Vec<f32>]) {
    let (min, mean) = cosine_to_references(refs, got);
    eprintln!("bf16 vs reference: min cosine {min:.6}, mean {mean:.6}");
    assert!(
        min >= BF16_MIN_COSINE,
        "min cosine {min} < {BF16_MIN_COSINE}"
    );
    // bf16 rounds: it must not be the exact engine under another name.
    assert!(
        min < 0.999999,
        "bf16 gave fp32-exact embeddings (min cosine {min})"
    );
}

/// The bf16 mode on what this CPU multiplies it with: AMX tiles, or AVX-512 BF16 dot products
/// on a CPU without AMX. The test is ignored by default; `.ci/run` runs it where the CPU has
/// either, and there a CPU with neither fails it, saying why.
fn bf16_engine() -> Box<dyn Embedder> {
    let dir = ModelDir::resolve(None).expect("bundled model");
    let spec = EngineSpec {
        model: &dir,
        backend: Backend::Auto,
        precision: Precision::Bf16,
        threads: 2,
    };
    match failup::embed::load(&spec) {
        Ok((_, engine)) => engine,
        Err(e) => panic!("this test needs a CPU with AMX or AVX-512 BF16: {e}"),
    }
}

#[test]
#[ignore = "needs a CPU with AMX or AVX-512 BF16"]
fn bf16_cpu_fast_mode_stays_within_its_bound_alone_or_in_any_batch() {
    let engine = bf16_engine();
    let (refs, tokens) = fixture_tokens();
    assert_bf16_bound(&refs, &embed_in_batches(engine.as_ref(), &tokens, 16));
    for (t, b) in tokens
        .iter()
        .zip(embed_in_batches(engine.as_ref(), &tokens, 7))
    {
        assert_eq!(
            engine.embed(&[t]).unwrap()[0],
            b,
            "a story's numbers moved with its batch"
        );
    }
}
