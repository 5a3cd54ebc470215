//! The optional rust-bert backend (`--features rust-bert`).
//!
//! With the feature: the parity test of tests/parity.rs (all 80 reference texts at cosine >=
//! 0.9999, in mixed batches and one by one) run on rust-bert; `classify` gives the same
//! categories with both backends; the weights are converted on first use and by
//! `models prepare`. Without it: `--backend rust-bert` is an error that says how to build it.

mod common;

use common::*;

#[test]
fn models_prepare_for_rten_has_nothing_to_do() {
    let out = failup(&["models", "prepare", "--backend", "rten"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("nothing to prepare"),
        "{}",
        stderr(&out)
    );
    assert_eq!(stdout(&out), "");
    assert!(stderr(&out).contains("loads all-MiniLM-L6-v2 on the rten engine"));
}

/// `models prepare` checks that the model loads, as its help says: a damaged model file is
/// told there, not at the first run.
#[test]
fn models_prepare_refuses_a_model_that_does_not_load() {
    let dir = tempfile::tempdir().unwrap();
    let bundled = repo_path("models/all-MiniLM-L6-v2");
    std::fs::create_dir(dir.path().join("1_Pooling")).unwrap();
    for name in [
        "config.json",
        "tokenizer.json",
        "modules.json",
        "sentence_bert_config.json",
        "1_Pooling/config.json",
    ] {
        std::fs::copy(bundled.join(name), dir.path().join(name)).unwrap();
    }
    std::fs::write(dir.path().join("model.onnx"), "junk\n").unwrap();
    let model = dir.path().to_str().unwrap();
    let out = failup(&["models", "prepare", "--backend", "rten", "--model", model]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("model.onnx"), "{}", stderr(&out));
    // Beside good int8 weights, the damaged fp32 file is still found.
    std::fs::copy(
        bundled.join("model.int8.onnx"),
        dir.path().join("model.int8.onnx"),
    )
    .unwrap();
    let out = failup(&["models", "prepare", "--backend", "rten", "--model", model]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("in int8"), "{}", stderr(&out));
    assert!(stderr(&out).contains("model.onnx"), "{}", stderr(&out));
}

#[cfg(not(feature = "rust-bert"))]
mod without_the_feature {
    use super::*;

    fn assert_says_how_to_build(out: &std::process::Output) {
        assert_eq!(out.status.code(), Some(2), "{}", stderr(out));
        let err = stderr(out);
        assert!(err.contains("built without the rust-bert backend"), "{err}");
        assert!(err.contains("--features rust-bert"), "{err}");
        assert!(err.contains("torch==2.4.0"), "{err}");
        assert!(err.contains("LIBTORCH_USE_PYTORCH=1"), "{err}");
    }

    #[test]
    fn backend_rust_bert_is_an_error_that_says_how_to_build_it() {
        assert_says_how_to_build(&failup(&[
            "classify",
            "data/sample_stories.csv",
            "--backend",
            "rust-bert",
        ]));
        assert_says_how_to_build(&failup(&["models", "prepare", "--backend", "rust-bert"]));
    }

    #[test]
    fn failup_backend_env_selects_the_backend_too() {
        let root = repo_path("");
        let out = failup_env(
            &root,
            &["advise", "We lost the tender I led."],
            None,
            &[("FAILUP_BACKEND", "rust-bert")],
        );
        assert_says_how_to_build(&out);
    }
}

#[cfg(feature = "rust-bert")]
mod with_the_feature {
    use std::path::Path;

    use failup::embed::{Embedder, ModelDir, RustBertEmbedder, TextTokenizer, TokenizerConfig};
    use failup::vector::cosine;
    use serde::Deserialize;

    use super::*;

    /// The parity bar of tests/parity.rs.
    const MIN_COSINE: f32 = 0.9999;

    #[derive(Deserialize)]
    struct Reference {
        text: String,
        embedding: Vec<f32>,
    }

    fn references() -> Vec<Reference> {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reference_embeddings.jsonl");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        text.lines()
            .map(|l| serde_json::from_str(l).expect("fixture line is JSON"))
            .collect()
    }

    fn assert_parity(refs: &[Reference], got: &[Vec<f32>], how: &str) {
        assert_eq!(refs.len(), got.len());
        let mut min = f32::INFINITY;
        for (r, e) in refs.iter().zip(got) {
            let c = cosine(&r.embedding, e);
            min = min.min(c);
            assert!(
                c >= MIN_COSINE,
                "rust-bert, {how}: cosine {c} < {MIN_COSINE} for {:?}",
                r.text.chars().take(60).collect::<String>()
            );
        }
        eprintln!("rust-bert, {how}: min cosine to the reference {min:.6}");
    }

    #[test]
    fn all_reference_texts_match_in_mixed_batches_and_one_by_one() {
        let refs = references();
        assert_eq!(refs.len(), 80, "the fixture has 80 texts");
        let dir = ModelDir::resolve(None).expect("bundled model");
        let tokenizer = TextTokenizer::load(
            &dir.tokenizer_path(),
            TokenizerConfig {
                max_seq_length: dir.max_seq_length,
                do_lower_case: dir.do_lower_case,
            },
        )
        .expect("tokenizer");
        let embedder = RustBertEmbedder::load(&dir, 2).expect("rust-bert model");
        let tokens: Vec<_> = refs
            .iter()
            .map(|r| tokenizer.tokenize(&r.text).unwrap())
            .collect();

        let all: Vec<_> = tokens.iter().collect();
        let lengths: Vec<usize> = tokens.iter().map(|t| t.ids.len()).collect();
        assert!(
            lengths.chunks(16).any(|c| c.iter().min() != c.iter().max()),
            "batches must mix lengths for this test to mean anything"
        );
        let batched: Vec<Vec<f32>> = all
            .chunks(16)
            .flat_map(|b| embedder.embed(b).unwrap())
            .collect();
        assert_parity(&refs, &batched, "mixed batch");

        let single: Vec<Vec<f32>> = tokens
            .iter()
            .map(|t| embedder.embed(&[t]).unwrap().remove(0))
            .collect();
        assert_parity(&refs, &single, "one by one");
    }

    fn categories(out: &std::process::Output) -> Vec<(String, String)> {
        assert_eq!(out.status.code(), Some(0), "{}", stderr(out));
        let (header, rows) = parse_csv(&stdout(out));
        let id = header.iter().position(|h| h == "id").unwrap();
        let category = header.iter().position(|h| h == "category").unwrap();
        rows.iter()
            .map(|r| (r[id].clone(), r[category].clone()))
            .collect()
    }

    #[test]
    fn classify_gives_the_same_categories_with_both_backends() {
        let root = repo_path("");
        // A fresh cache: rust-bert converts its weights on first use, and neither backend can
        // reuse the other's prototype embeddings.
        let cache = tempfile::tempdir().unwrap();
        let env = [("FAILUP_CACHE_DIR", cache.path().to_str().unwrap())];
        // rust-bert runs fp32 only, so rten is asked for fp32 too (its default is int8).
        let args = [
            "classify",
            "data/sample_stories.csv",
            "--quiet",
            "--precision",
            "fp32",
        ];
        let rten = failup_env(
            &root,
            &[&args[..], &["--backend", "rten"]].concat(),
            None,
            &env,
        );
        let rust_bert = failup_env(
            &root,
            &[&args[..], &["--backend", "rust-bert"]].concat(),
            None,
            &env,
        );
        let (rten, rust_bert) = (categories(&rten), categories(&rust_bert));
        assert_eq!(rten.len(), 34);
        assert_eq!(rten, rust_bert);

        let converted: Vec<_> = std::fs::read_dir(cache.path().join("rust-bert"))
            .expect("the first rust-bert run converts its weights into the cache")
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            converted.len() == 1 && converted[0].ends_with(".safetensors"),
            "{converted:?}"
        );
        let prototypes = std::fs::read_dir(cache.path())
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_string_lossy().starts_with("prototypes-")
            })
            .count();
        assert_eq!(prototypes, 2, "one prototype cache per backend");
    }

    #[test]
    fn models_prepare_converts_once_then_reuses() {
        let root = repo_path("");
        let cache = tempfile::tempdir().unwrap();
        let env = [("FAILUP_CACHE_DIR", cache.path().to_str().unwrap())];
        let args = ["models", "prepare", "--backend", "rust-bert"];
        let first = failup_env(&root, &args, None, &env);
        assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
        assert!(
            stderr(&first).contains("converted from model.onnx"),
            "{}",
            stderr(&first)
        );
        let path = stdout(&first).trim().to_string();
        assert!(path.starts_with(cache.path().join("rust-bert").to_str().unwrap()));
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size > 80_000_000, "{size} bytes");

        let again = failup_env(&root, &args, None, &env);
        assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
        assert!(
            stderr(&again).contains("already converted"),
            "{}",
            stderr(&again)
        );
        assert_eq!(stdout(&again).trim(), path);
    }

    #[test]
    fn int8_precision_is_rten_only() {
        let out = failup(&[
            "advise",
            "We lost the tender I led.",
            "--backend",
            "rust-bert",
            "--precision",
            "int8",
        ]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains("rust-bert runs the fp32 weights only"));
    }
}
