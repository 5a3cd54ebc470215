//! Parity with the reference implementation (sentence-transformers on PyTorch).

use failup::embed::{cosine, Embedder, ModelDir, RtenEmbedder, TextTokenizer, TokenizerConfig};
use serde::Deserialize;

#[derive(Deserialize)]
struct Reference {
    text: String,
    embedding: Vec<f32>,
}

fn references() -> Vec<Reference> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/fixtures/reference_embeddings.jsonl"
    );
    let text = std::fs::read_to_string(path).expect("reference fixture");
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn embeddings_match_reference() {
    let dir = ModelDir::resolve(None).unwrap();
    let tok = TextTokenizer::load(
        &dir.tokenizer_path(),
        TokenizerConfig {
            max_seq_length: dir.max_seq_length,
            do_lower_case: dir.do_lower_case,
        },
    )
    .unwrap();
    let emb = RtenEmbedder::load(&dir, 2).unwrap();
    let refs = references();
    let toks: Vec<_> = refs
        .iter()
        .map(|r| tok.tokenize(&r.text).unwrap())
        .collect();
    let all: Vec<_> = toks.iter().collect();
    let t = std::time::Instant::now();
    let batched: Vec<Vec<f32>> = all.chunks(16).flat_map(|c| emb.embed(c).unwrap()).collect();
    eprintln!("batched {:?}", t.elapsed());
    let mut worst = 1.0f32;
    for (r, e) in refs.iter().zip(&batched) {
        let c = cosine(&r.embedding, e);
        worst = worst.min(c);
    }
    eprintln!("worst {worst}");
    assert!(worst >= 0.9999);
}
