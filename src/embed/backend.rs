//! Choosing and loading the inference engine (`--backend`, env `FAILUP_BACKEND`): every rule
//! about which engine runs which precision, and what to do instead, lives here.
//!
//! rten is always built in. The AMX engine is built in on x86-64 Linux and runs where the CPU
//! has AMX, and in bf16 also where it has AVX-512 BF16 instead; `auto`, the default, takes it
//! for bf16 and, on a CPU with AMX, for fp32, and rten everywhere else and for int8. rust-bert
//! is compiled only with `--features rust-bert`, because it links libtorch; without the
//! feature, asking for it is an error that says how to build it.

use super::{Embedder, ModelDir, Precision};
use crate::error::{Error, Result};

/// An inference engine for the bundled model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Backend {
    /// The AMX engine for bf16, and for fp32 where the CPU has AMX; else rten.
    #[default]
    Auto,
    /// rten, a pure-Rust ONNX runtime running model.onnx (always available).
    Rten,
    /// failup's own BERT encoder with its matrix products on the CPU's AMX tile unit: fp32
    /// (exact) or bf16 (Intel Xeon 4th generation or later, Linux); bf16 also runs on AVX-512
    /// BF16 dot products where there is no AMX (AMD Zen 4 or later).
    Amx,
    /// rust-bert on libtorch 2.4.0 (only in a build with `--features rust-bert`).
    RustBert,
    /// A hashed bag of words instead of the model, for failup's own tests of everything
    /// around it; its verdicts mean nothing.
    TestHashed,
}

impl Backend {
    /// The name `--backend` takes.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Auto => "auto",
            Backend::Rten => "rten",
            Backend::Amx => "amx",
            Backend::RustBert => "rust-bert",
            Backend::TestHashed => "test-hashed",
        }
    }

    /// The engine `self` stands for on this machine at `precision` for `model`: `auto`
    /// becomes `amx` for a BERT model in bf16, and in fp32 where the CPU has AMX, else `rten`;
    /// the others stand for themselves.
    pub fn resolve(self, precision: Precision, model: &ModelDir) -> Backend {
        let bert = model.model_type == "bert";
        match (self, precision) {
            (Backend::Auto, Precision::Bf16) if bert => Backend::Amx,
            (Backend::Auto, Precision::Fp32) if bert && amx_unavailable().is_none() => Backend::Amx,
            (Backend::Auto, _) => Backend::Rten,
            (other, _) => other,
        }
    }
}

/// The precision a run takes when `--precision` is not given: int8 where `backend` runs the
/// model folder's `model.int8.onnx` (rten, which `auto` is then), else fp32 (the AMX engine
/// and rust-bert run fp32 weights, and a folder without the int8 file has nothing else).
///
/// Why int8 first: on real stories it scores the same zero-shot macro-F1 as fp32 by
/// cross-validation, at about twice rten's fp32 speed (docs/src/performance.md). Its weights
/// are kept to 7 bits, so no CPU's integer kernel saturates and the integer products are the
/// same on every x86-64 CPU, and one engine serves every CPU (fp32 runs on the AMX engine
/// where the CPU has AMX, on rten elsewhere). A few-shot head keeps fp32; its commands ask.
pub fn default_precision(backend: Backend, model: &ModelDir) -> Precision {
    let runs_int8 = matches!(backend, Backend::Auto | Backend::Rten | Backend::TestHashed);
    // Anything at the name counts (a folder, a link to nothing): the engine then says what is
    // wrong with it, where a quiet fp32 run would be slower and give other verdicts.
    let int8 = std::fs::symlink_metadata(model.onnx_path(Precision::Int8));
    if runs_int8 && int8.is_ok() {
        Precision::Int8
    } else {
        Precision::Fp32
    }
}

/// Why the AMX engine cannot run here, or None when it can.
pub fn amx_unavailable() -> Option<String> {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    return super::amx::unavailable();
    #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
    return Some("the AMX engine is built only for x86-64 Linux".into());
}

/// What to load: the model folder, the engine asked for, the precision and the threads.
pub struct EngineSpec<'a> {
    pub model: &'a ModelDir,
    pub backend: Backend,
    pub precision: Precision,
    pub threads: usize,
}

/// Loads the engine `spec` asks for, as resolved on this machine, or says why it cannot run
/// and what to use instead. Returns the resolved engine with it.
pub fn load(spec: &EngineSpec) -> Result<(Backend, Box<dyn Embedder>)> {
    let backend = spec.backend.resolve(spec.precision, spec.model);
    let (model, threads, precision) = (spec.model, spec.threads, spec.precision);
    let embedder: Box<dyn Embedder> = match backend {
        Backend::Rten if precision == Precision::Bf16 && model.model_type == "unknown" => {
            return Err(Error::Usage(format!(
                "--precision bf16 runs on the AMX engine, which reads the model's shape from its \
                 config.json, and {} has none; copy it from the model's sentence-transformers \
                 folder, or use --precision fp32 or int8",
                model.dir.display()
            )));
        }
        Backend::Rten if precision == Precision::Bf16 && model.model_type != "bert" => {
            return Err(Error::Usage(format!(
                "--precision bf16 runs on the AMX engine, which runs BERT models only, and {} \
                 is a {:?} model; use --precision fp32 or int8 for it",
                model.dir.display(),
                model.model_type
            )));
        }
        Backend::Rten | Backend::RustBert if precision == Precision::Bf16 => {
            let int8 = if backend == Backend::Rten {
                " or int8"
            } else {
                ""
            };
            return Err(Error::Usage(format!(
                "--precision bf16 runs on the AMX engine only; --backend {} runs fp32{int8} \
                 (leave --backend at auto for bf16)",
                backend.name()
            )));
        }
        Backend::RustBert if precision != Precision::Fp32 => {
            return Err(Error::Usage(
                "--precision int8 is rten's quantized model; --backend rust-bert runs the \
                 fp32 weights only"
                    .into(),
            ))
        }
        Backend::Rten => Box::new(super::RtenEmbedder::load(model, threads, precision)?),
        Backend::Auto => unreachable!("Backend::resolve never returns auto"),
        Backend::Amx => load_amx(model, threads, precision)?,
        Backend::RustBert => load_rust_bert(model, threads)?,
        Backend::TestHashed => Box::new(super::hashed::HashedEmbedder),
    };
    Ok((backend, embedder))
}

/// Why the AMX engine cannot run `precision` here, or None when it can: fp32 needs AMX, bf16
/// AMX or else AVX-512 BF16 dot products.
fn amx_cannot_run_here(precision: Precision) -> Option<String> {
    let tiles = amx_unavailable();
    match precision {
        Precision::Bf16 => tiles.and_then(|_| dots_unavailable()),
        _ => tiles,
    }
}

/// Why the AMX engine's bf16 mode cannot run on AVX-512 BF16 dot products here, or None.
fn dots_unavailable() -> Option<String> {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    return super::amx::dots_unavailable();
    #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
    return Some("the AMX engine is built only for x86-64 Linux".into());
}

/// Loads the AMX engine, or says why this machine cannot run it or `precision`.
fn load_amx(model: &ModelDir, threads: usize, precision: Precision) -> Result<Box<dyn Embedder>> {
    // Said first: int8 runs on no machine's AMX engine, whatever this one has.
    if precision == Precision::Int8 {
        return Err(Error::Usage(
            "--precision int8 is rten's quantized model; the AMX engine runs fp32 or bf16 (use \
             --backend rten, or auto, with int8)"
                .into(),
        ));
    }
    if let Some(why) = amx_cannot_run_here(precision) {
        return Err(amx_cannot_run(&why, precision));
    }
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    return Ok(Box::new(super::AmxEmbedder::load(
        model, threads, precision,
    )?));
    #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
    unreachable!("amx_unavailable() is always Some off x86-64 Linux: {model:?} {threads}");
}

/// What a build without the feature answers to `--backend rust-bert`.
pub fn rust_bert_missing() -> Error {
    Error::Usage(
        "--backend rust-bert: this failup was built without the rust-bert backend.\n  fix: \
         install libtorch 2.4.0 from Python (python3 -m venv VENV; VENV/bin/pip install \
         torch==2.4.0), then build with LIBTORCH_USE_PYTORCH=1 and VENV/bin first on PATH: \
         cargo build --release --features rust-bert (docs/src/engines.md, 'rust-bert backend', \
         has the exact steps); or use --backend rten (what --backend auto, the default, takes for int8)"
            .into(),
    )
}

/// Loads rust-bert's engine for `model`, converting its weights first when needed.
#[cfg(feature = "rust-bert")]
fn load_rust_bert(model: &ModelDir, threads: usize) -> Result<Box<dyn Embedder>> {
    Ok(Box::new(super::RustBertEmbedder::load(model, threads)?))
}

/// Loads rust-bert's engine for `model`: not in this build.
#[cfg(not(feature = "rust-bert"))]
fn load_rust_bert(_model: &ModelDir, _threads: usize) -> Result<Box<dyn Embedder>> {
    Err(rust_bert_missing())
}

/// What `failup models prepare` did.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The file the engine loads; None when the engine reads the model folder as it is.
    pub path: Option<std::path::PathBuf>,
    /// True when the file was written just now, false when it was already there.
    pub converted: bool,
}

/// Makes whatever `backend` needs beyond the model folder (rust-bert: its weights, converted
/// from model.onnx into the cache), and checks that the engine loads it.
pub fn prepare(backend: Backend, model: &ModelDir, force: bool) -> Result<Prepared> {
    match backend {
        Backend::Auto | Backend::Rten | Backend::Amx | Backend::TestHashed => Ok(Prepared {
            path: None,
            converted: false,
        }),
        Backend::RustBert => prepare_rust_bert(model, force),
    }
}

#[cfg(feature = "rust-bert")]
fn prepare_rust_bert(model: &ModelDir, force: bool) -> Result<Prepared> {
    let weights = super::onnx_weights::prepared_weights(model, force)?;
    super::RustBertEmbedder::load_prepared(model, &weights, 1)?;
    let converted = weights.converted;
    if weights.is_temporary() {
        return Err(Error::Usage(
            "failup models prepare: there is no cache folder to keep the converted weights in \
             (FAILUP_CACHE_DIR is off, or neither XDG_CACHE_HOME nor HOME is set); the weights \
             were converted and checked, but will be converted again on every run"
                .into(),
        ));
    }
    Ok(Prepared {
        path: Some(weights.path.clone()),
        converted,
    })
}

#[cfg(not(feature = "rust-bert"))]
fn prepare_rust_bert(_model: &ModelDir, _force: bool) -> Result<Prepared> {
    Err(rust_bert_missing())
}

/// What to do instead when this machine cannot run the AMX engine.
fn amx_cannot_run(why: &str, precision: Precision) -> Error {
    let instead = match precision {
        Precision::Bf16 => "use --precision fp32 (exact) or int8 (rten's fast mode) instead",
        // Without tiles, the engine's bf16 mode may still run on AVX-512 BF16 dot products.
        _ if dots_unavailable().is_none() => {
            "its bf16 mode runs here on AVX-512 BF16 (--precision bf16); or use --backend rten \
             (or auto, the default) for fp32, or --precision int8 for rten's fast mode"
        }
        _ => "use --backend rten (or auto, the default), or --precision int8 for a fast mode",
    };
    Error::Usage(format!(
        "the AMX engine cannot run {} here: {why}; {instead}",
        precision.name()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where tiles are missing but AVX-512 BF16 is there, fp32 on the AMX engine is pointed
    /// at the bf16 mode that runs; it used to say that bf16 could not run either.
    #[test]
    fn the_amx_refusal_names_the_precision_and_what_runs_instead() {
        let fp32 = amx_cannot_run("no tiles", Precision::Fp32).to_string();
        assert!(fp32.contains("cannot run fp32 here: no tiles"), "{fp32}");
        let bf16_runs = dots_unavailable().is_none();
        assert_eq!(fp32.contains("(--precision bf16)"), bf16_runs, "{fp32}");
        let bf16 = amx_cannot_run("no dots", Precision::Bf16).to_string();
        assert!(
            bf16.contains("cannot run bf16 here") && bf16.contains("int8"),
            "{bf16}"
        );
    }

    fn model(model_type: &str) -> ModelDir {
        ModelDir {
            dir: "m".into(),
            max_seq_length: 384,
            do_lower_case: false,
            pooling: super::super::Pooling::Mean,
            dim: 768,
            model_type: model_type.into(),
            vocab_size: None,
        }
    }

    #[test]
    fn auto_keeps_rten_for_a_model_that_is_not_bert() {
        for precision in [Precision::Fp32, Precision::Bf16, Precision::Int8] {
            assert_eq!(
                Backend::Auto.resolve(precision, &model("mpnet")),
                Backend::Rten
            );
        }
        assert_eq!(
            Backend::Amx.resolve(Precision::Fp32, &model("mpnet")),
            Backend::Amx
        );
        let bert = Backend::Auto.resolve(Precision::Fp32, &model("bert"));
        let expected = if amx_unavailable().is_none() {
            Backend::Amx
        } else {
            Backend::Rten
        };
        assert_eq!(bert, expected);
        assert_eq!(
            Backend::Auto.resolve(Precision::Bf16, &model("bert")),
            Backend::Amx
        );
    }

    #[test]
    fn the_default_precision_is_int8_where_the_engine_runs_the_int8_file() {
        let folder = tempfile::tempdir().expect("temp dir");
        let mut bert = model("bert");
        bert.dir = folder.path().to_path_buf();
        // No model.int8.onnx: every engine runs fp32.
        for backend in [
            Backend::Auto,
            Backend::Rten,
            Backend::Amx,
            Backend::RustBert,
        ] {
            assert_eq!(default_precision(backend, &bert), Precision::Fp32);
        }
        std::fs::write(folder.path().join("model.int8.onnx"), b"").expect("write");
        for backend in [Backend::Auto, Backend::Rten] {
            assert_eq!(default_precision(backend, &bert), Precision::Int8);
        }
        for backend in [Backend::Amx, Backend::RustBert] {
            assert_eq!(default_precision(backend, &bert), Precision::Fp32);
        }
        // A folder at the name is not quietly passed over for fp32: loading it says what it is.
        std::fs::remove_file(folder.path().join("model.int8.onnx")).expect("remove");
        std::fs::create_dir(folder.path().join("model.int8.onnx")).expect("mkdir");
        assert_eq!(default_precision(Backend::Auto, &bert), Precision::Int8);
        let said = super::super::model_dir::not_a_file(folder.path(), "model.int8.onnx");
        assert_eq!(
            said.as_deref(),
            Some("model.int8.onnx is a folder, not a file")
        );
        std::os::unix::fs::symlink("nowhere", folder.path().join("tokenizer.json")).expect("ln");
        let said = super::super::model_dir::not_a_file(folder.path(), "tokenizer.json");
        assert!(said
            .unwrap()
            .starts_with("tokenizer.json is a link that cannot be followed"));
        let said = super::super::model_dir::not_a_file(folder.path(), "model.onnx");
        assert_eq!(said.as_deref(), Some("missing file model.onnx"));
        std::fs::write(folder.path().join("model.onnx"), b"").expect("write");
        let said = super::super::model_dir::not_a_file(folder.path(), "model.onnx");
        assert_eq!(said.as_deref(), Some("model.onnx is empty (0 bytes)"));
    }

    #[test]
    fn bf16_on_a_model_that_is_not_bert_says_so() {
        let mpnet = model("mpnet");
        let spec = EngineSpec {
            model: &mpnet,
            backend: Backend::Auto,
            precision: Precision::Bf16,
            threads: 1,
        };
        match load(&spec) {
            Err(Error::Usage(message)) => {
                assert!(message.contains("BERT models only"), "{message}");
                assert!(message.contains("\"mpnet\""), "{message}");
            }
            Err(other) => panic!("expected a usage error, got {other}"),
            Ok(_) => panic!("bf16 loaded for an mpnet model"),
        }
    }
}
