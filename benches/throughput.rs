//! Throughput benches (divan): tokenization, one embed batch at several sequence lengths,
//! classification scoring, and end-to-end classification of a small corpus.
//!
//! Run with `cargo bench`; not part of CI (a benchmark measures speed, tests check behaviour).

use divan::Bencher;
use failup::chunk::LongText;
use failup::embed::{
    load, Backend, Embedder, EngineSpec, ModelDir, TextTokenizer, TokenizerConfig,
};
use failup::pipeline::{Engine, EngineOptions};

fn main() {
    divan::main();
}

fn tokenizer() -> TextTokenizer {
    let dir = ModelDir::resolve(None).expect("bundled model");
    TextTokenizer::load(
        &dir.tokenizer_path(),
        TokenizerConfig {
            max_seq_length: dir.max_seq_length,
            do_lower_case: dir.do_lower_case,
        },
    )
    .expect("tokenizer")
}

/// A story of about `words` words.
fn story(words: usize) -> String {
    let base = "my manager gave the project I had planned for a year to a colleague who joined \
                in the spring and I keep wondering what I should have done differently";
    base.split(' ')
        .cycle()
        .take(words)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The engine with the CLI's default settings and 2 threads.
fn engine() -> Engine {
    Engine::load(&EngineOptions {
        model: None,
        taxonomy: None,
        backend: Backend::Auto,
        threads: 2,
        batch_size: None,
        long_text: LongText::Chunk,
        precision: None,
    })
    .expect("engine")
}

#[divan::bench(args = [20, 100, 300])]
fn tokenize(bencher: Bencher, words: usize) {
    let tok = tokenizer();
    let text = story(words);
    bencher.bench_local(|| tok.tokenize(divan::black_box(&text)).unwrap());
}

#[divan::bench(args = [16, 64, 128, 256], sample_count = 10)]
fn embed_batch_of_16(bencher: Bencher, seq_len: usize) {
    let dir = ModelDir::resolve(None).expect("bundled model");
    let tok = tokenizer();
    // The engine and precision a default run picks.
    let spec = EngineSpec {
        model: &dir,
        backend: Backend::Auto,
        precision: failup::embed::default_precision(Backend::Auto, &dir),
        threads: 2,
    };
    let model: Box<dyn Embedder> = load(&spec).expect("model").1;
    let mut t = tok.tokenize(&story(400)).unwrap();
    t.ids.truncate(seq_len);
    let batch: Vec<_> = std::iter::repeat_n(&t, 16).collect();
    bencher.bench_local(|| model.embed(&batch).unwrap());
}

#[divan::bench]
fn score_one_story(bencher: Bencher) {
    let engine = engine();
    let e = engine.embed_texts(&[&story(60)]).unwrap().remove(0);
    let v = e.embedding.expect("non-empty");
    bencher.bench_local(|| {
        engine
            .classifier()
            .classify(divan::black_box(&v), None, None)
    });
}

#[divan::bench(sample_count = 3)]
fn classify_64_stories(bencher: Bencher) {
    let engine = engine();
    let csv = failup::bench::builtin_corpus(64);
    bencher.bench_local(|| {
        let mut reader = failup::input::StoryReader::from_reader(
            Box::new(std::io::Cursor::new(csv.clone())),
            "bench".into(),
            None,
            &Default::default(),
            Default::default(),
        )
        .unwrap();
        let stories = reader.next_chunk(64).unwrap();
        engine.classify_chunk(stories).unwrap()
    });
}
