//! Finding and checking the model folder (`models/all-MiniLM-L6-v2/` layout).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// Folder name of the bundled model inside `models/`.
pub const DEFAULT_MODEL: &str = "all-MiniLM-L6-v2";

/// Files a model folder must hold, relative to it.
const REQUIRED: [&str; 4] = [
    "model.onnx",
    "tokenizer.json",
    "sentence_bert_config.json",
    "1_Pooling/config.json",
];

/// Which weights run: exact fp32, the int8 model (`model.int8.onnx`), or fp32 weights
/// multiplied in bf16. With no `--precision`, [`super::default_precision`] picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// fp32 weights: embeddings at parity with the reference (cosine >= 0.9999).
    Fp32,
    /// int8 weights, per-channel scales, activations smoothed and quantized per token: faster,
    /// cosine to the reference >= 0.99.
    Int8,
    /// fp32 weights multiplied in bf16 on the AMX engine: fast, cosine to the reference
    /// >= 0.9999 (CPUs with AMX, or with AVX-512 BF16).
    Bf16,
}

impl Precision {
    pub const ALL: [Precision; 3] = [Precision::Fp32, Precision::Int8, Precision::Bf16];

    /// The name `--precision` takes.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Int8 => "int8",
            Precision::Bf16 => "bf16",
        }
    }

    /// The precision [`Precision::name`] gives `name`.
    pub fn from_name(name: &str) -> Option<Precision> {
        Precision::ALL.into_iter().find(|p| p.name() == name)
    }

    pub fn file_name(self) -> &'static str {
        match self {
            Precision::Fp32 | Precision::Bf16 => "model.onnx",
            Precision::Int8 => "model.int8.onnx",
        }
    }
}

/// How token states become one sentence vector (sentence-transformers' Pooling module).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    Mean,
    MeanSqrtLen,
    Cls,
}

/// A checked model folder: every required file is present and the configs parse.
#[derive(Debug, Clone)]
pub struct ModelDir {
    pub dir: PathBuf,
    /// Longest sequence the model sees, special tokens included (sentence_bert_config.json).
    pub max_seq_length: usize,
    pub do_lower_case: bool,
    pub pooling: Pooling,
    pub dim: usize,
    /// The architecture, from config.json (`bert`, `mpnet`, …): the AMX engine runs BERT only.
    pub model_type: String,
    /// Rows of the model's token embedding table (config.json's vocab_size), if given: a
    /// tokenizer id past them would fail inside the engine, on the first story that has it.
    pub vocab_size: Option<usize>,
}

#[derive(Deserialize)]
struct ModelConfig {
    model_type: String,
    /// The longest input the position embeddings cover.
    max_position_embeddings: Option<usize>,
    vocab_size: Option<usize>,
}

/// One entry of modules.json: a stage of the sentence-transformers pipeline.
#[derive(Deserialize)]
struct Module {
    #[serde(rename = "type")]
    kind: String,
}

/// The stages failup runs, by the class name that ends a module's type (its package path
/// moves between sentence-transformers releases): the transformer, its pooling and the
/// normalisation to unit length (which cosine similarity makes no matter).
const MODULES_RUN: [&str; 3] = ["Transformer", "Pooling", "Normalize"];

#[derive(Deserialize)]
struct SentenceBertConfig {
    max_seq_length: usize,
    #[serde(default)]
    do_lower_case: bool,
}

#[derive(Deserialize)]
struct PoolingConfig {
    word_embedding_dimension: usize,
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
}

/// Refuses `file` in `dir` when this user may not read it (or the folder), saying so: the
/// parsers' own errors, or a look at the file's metadata, would send the user to export or copy
/// a sound file again.
pub fn refuse_unreadable(dir: &Path, file: &str) -> Result<()> {
    match std::fs::File::open(dir.join(file)) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(Error::Model {
            dir: dir.to_path_buf(),
            problem: format!("{file} cannot be read by this user ({e})"),
            fix: "let this user read the folder and its files (chmod a+r on the files, a+rx on \
                  the folders), or run failup as a user who can"
                .into(),
        }),
        _ => Ok(()),
    }
}

/// Why `file` in `dir` cannot be read as a file, or None when it can be opened: missing,
/// empty, or something else at its name.
pub fn not_a_file(dir: &Path, file: &str) -> Option<String> {
    let path = dir.join(file);
    match (std::fs::symlink_metadata(&path), std::fs::metadata(&path)) {
        (Err(e), _) if e.kind() == std::io::ErrorKind::NotFound => {
            Some(format!("missing file {file}"))
        }
        (Err(e), _) => Some(format!("{file} cannot be read ({e})")),
        (Ok(_), Err(e)) => Some(format!("{file} is a link that cannot be followed ({e})")),
        (Ok(_), Ok(m)) if m.is_dir() => Some(format!("{file} is a folder, not a file")),
        // A pipe at the name would hang the load until something wrote to it.
        (Ok(_), Ok(m)) if !m.is_file() => Some(format!("{file} is not a regular file")),
        // An empty ONNX file loads as a model with no nodes, which was then blamed on a
        // missing input; an empty JSON file, on a parse error at line 1.
        (Ok(_), Ok(m)) if m.is_file() && m.len() == 0 => Some(format!("{file} is empty (0 bytes)")),
        (Ok(_), Ok(_)) => None,
    }
}

impl ModelDir {
    /// A string that changes whenever what the model computes with `precision` changes: the
    /// folder, the precision, the size and modification time of the weights, of the tokenizer
    /// and of config.json, the window and the pooling. Caches of what the model computed are keyed by
    /// it. None when a file cannot be read.
    pub fn identity(&self, precision: Precision) -> Option<String> {
        let stamp = |path: PathBuf| {
            let meta = std::fs::metadata(path).ok()?;
            let mtime = meta
                .modified()
                .ok()?
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?;
            Some(format!("{} {}", meta.len(), mtime.as_nanos()))
        };
        let onnx = stamp(self.onnx_path(precision))?;
        let tokenizer = stamp(self.tokenizer_path())?;
        // The AMX engine builds its network from config.json's heads and sizes.
        let config = stamp(self.dir.join("config.json")).unwrap_or_else(|| "none".into());
        let folder = self.dir.canonicalize().unwrap_or_else(|_| self.dir.clone());
        Some(format!(
            "{}\n{precision:?}\n{onnx}\n{tokenizer}\n{config}\n{}\n{:?}",
            folder.display(),
            self.max_seq_length,
            self.pooling
        ))
    }

    /// The settings beside the weights that shape every vector, in words: the window, the
    /// lower-casing and the pooling.
    pub fn reading(&self) -> String {
        let pooling = match self.pooling {
            Pooling::Mean => "mean",
            Pooling::MeanSqrtLen => "mean-sqrt-len",
            Pooling::Cls => "cls",
        };
        format!(
            "a window of {} tokens, {}, {pooling} pooling",
            self.max_seq_length,
            match self.do_lower_case {
                true => "lower-cased",
                false => "case kept",
            }
        )
    }

    /// Resolves the model folder: `explicit` (from `--model` or `FAILUP_MODEL`), else
    /// `models/all-MiniLM-L6-v2` under the current directory, else under the source tree
    /// this binary was built from (so `cargo run` works from any directory of the checkout).
    pub fn resolve(explicit: Option<&Path>) -> Result<ModelDir> {
        match ModelDir::locate(explicit) {
            Some(dir) => ModelDir::open(&dir),
            None => Err(Error::Model {
                dir: Path::new("models").join(DEFAULT_MODEL),
                problem: "no model folder found".into(),
                fix: "run failup from the repository root, put the repository's models/ folder \
                      beside the failup binary, or pass --model DIR (or set FAILUP_MODEL) to a \
                      folder laid out like models/all-MiniLM-L6-v2"
                    .into(),
            }),
        }
    }

    /// The folder [`ModelDir::resolve`] opens, if there is one, unchecked.
    pub fn locate(explicit: Option<&Path>) -> Option<PathBuf> {
        if let Some(dir) = explicit {
            return Some(dir.to_path_buf());
        }
        let local = Path::new("models").join(DEFAULT_MODEL);
        // A copy installed with its `models/` folder beside it runs from any folder, and once
        // the source tree it was built from is gone.
        let beside_binary = std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.join("models").join(DEFAULT_MODEL)));
        let built_from = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("models")
            .join(DEFAULT_MODEL);
        [Some(local), beside_binary, Some(built_from)]
            .into_iter()
            .flatten()
            .find(|dir| dir.is_dir())
    }

    /// Checks one folder: required files present, configs readable.
    pub fn open(dir: &Path) -> Result<ModelDir> {
        let broken = |problem: String| broken(dir, problem);
        refuse_not_a_folder(dir)?;
        for file in REQUIRED {
            refuse_unreadable(dir, file)?;
            if let Some(problem) = not_a_file(dir, file) {
                return Err(broken(problem));
            }
        }
        let st: SentenceBertConfig = read_json(dir, "sentence_bert_config.json").map_err(broken)?;
        let pool: PoolingConfig = read_json(dir, "1_Pooling/config.json").map_err(broken)?;
        // Only the AMX and rust-bert engines read config.json; without it the architecture
        // is unknown and `auto` keeps rten.
        let config = read_optional_json::<ModelConfig>(dir, "config.json").map_err(broken)?;
        check_modules(dir).map_err(|problem| modules_error(dir, problem))?;
        let positions = config.as_ref().and_then(|c| c.max_position_embeddings);
        if let Some(positions) = positions.filter(|&p| st.max_seq_length > p) {
            // Found at load time, not when the first long story reaches the engine.
            return Err(broken(format!(
                "sentence_bert_config.json: max_seq_length {} is more than the {positions} \
                 positions the model has (config.json's max_position_embeddings)",
                st.max_seq_length
            )));
        }
        let vocab_size = config.as_ref().and_then(|c| c.vocab_size);
        let model_type = config.map_or_else(|| "unknown".into(), |c| c.model_type);
        let pooling = pool.pooling().map_err(broken)?;
        if st.max_seq_length < 3 {
            return Err(broken(format!(
                "sentence_bert_config.json: max_seq_length {} is too small",
                st.max_seq_length
            )));
        }
        Ok(ModelDir {
            dir: dir.to_path_buf(),
            max_seq_length: st.max_seq_length,
            do_lower_case: st.do_lower_case,
            pooling,
            dim: pool.word_embedding_dimension,
            model_type,
            vocab_size,
        })
    }

    /// Refuses a tokenizer whose ids (below `bound`) run past the token embedding table.
    pub fn check_token_ids(&self, bound: usize) -> Result<()> {
        match self.vocab_size.filter(|&rows| bound > rows) {
            Some(rows) => Err(Error::Model {
                dir: self.dir.clone(),
                problem: format!(
                    "tokenizer.json gives token ids up to {}, but config.json's vocab_size is \
                     {rows}: the tokenizer is not this model's",
                    bound - 1
                ),
                fix: "copy the tokenizer.json saved with these weights (models/export_onnx.py \
                      copies both from one sentence-transformers folder)"
                    .into(),
            }),
            None => Ok(()),
        }
    }

    pub fn onnx_path(&self, precision: Precision) -> PathBuf {
        self.dir.join(precision.file_name())
    }

    pub fn tokenizer_path(&self) -> PathBuf {
        self.dir.join("tokenizer.json")
    }

    /// A short name for reports and profiles: the folder's name.
    pub fn name(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.dir.display().to_string())
    }
}

/// Why modules.json stops a folder from loading.
enum ModulesProblem {
    Unreadable(String),
    /// The type of a stage failup does not run.
    NotRun(String),
}

/// A model folder that lacks a file or holds a broken one, with how to mend it.
fn broken(dir: &Path, problem: String) -> Error {
    Error::Model {
        dir: dir.to_path_buf(),
        problem,
        fix: if dir.file_name().is_some_and(|n| n == DEFAULT_MODEL) {
            "restore the folder from the repository (git checkout -- models/) or point \
             --model / FAILUP_MODEL at a complete copy; see docs/src/model.md"
        } else {
            "export the folder again (models/export_onnx.py makes one from a \
             sentence-transformers folder) or point --model / FAILUP_MODEL at a complete \
             copy; see docs/src/model.md"
        }
        .into(),
    }
}

/// Refuses a path that is not a folder, saying what it is.
fn refuse_not_a_folder(dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        let what = match (std::fs::symlink_metadata(dir), std::fs::metadata(dir)) {
            (Ok(_), Ok(_)) => "not a folder".to_string(),
            (Ok(_), Err(e)) => format!("a link that cannot be followed ({e})"),
            (Err(e), _) if e.kind() == std::io::ErrorKind::NotFound => "no such folder".to_string(),
            (Err(e), _) => format!("cannot be read ({e})"),
        };
        return Err(Error::Model {
            dir: dir.to_path_buf(),
            problem: what,
            fix: "check the path given with --model or FAILUP_MODEL: it names the model's \
                  folder (models/all-MiniLM-L6-v2 for the bundled one)"
                .into(),
        });
    }
    Ok(())
}

fn modules_error(dir: &Path, problem: ModulesProblem) -> Error {
    match problem {
        ModulesProblem::Unreadable(problem) => broken(dir, problem),
        ModulesProblem::NotRun(kind) => Error::Model {
            dir: dir.to_path_buf(),
            problem: format!(
                "modules.json lists a {kind} stage, which failup does not run (it runs a \
                 transformer, its pooling and normalisation), so its vectors would not be \
                 this model's"
            ),
            fix: "use a model whose modules.json lists only Transformer, Pooling and \
                  Normalize, as all-MiniLM-L6-v2's and all-mpnet-base-v2's do"
                .into(),
        },
    }
}

impl PoolingConfig {
    /// The one pooling the config turns on.
    fn pooling(&self) -> std::result::Result<Pooling, String> {
        match (
            self.pooling_mode_mean_tokens,
            self.pooling_mode_cls_token,
            self.pooling_mode_mean_sqrt_len_tokens,
            self.pooling_mode_max_tokens,
        ) {
            (true, false, false, false) => Ok(Pooling::Mean),
            (false, true, false, false) => Ok(Pooling::Cls),
            (false, false, true, false) => Ok(Pooling::MeanSqrtLen),
            _ => Err(
                "1_Pooling/config.json: only one of mean, CLS or mean-sqrt-len pooling \
                 is supported"
                    .into(),
            ),
        }
    }
}

/// modules.json, where the folder has one, lists only stages failup runs: a Dense layer, say,
/// would change every vector, and running without it would give other vectors silently.
fn check_modules(dir: &Path) -> Result<(), ModulesProblem> {
    let read = read_optional_json::<Vec<Module>>(dir, "modules.json");
    let Some(modules) = read.map_err(ModulesProblem::Unreadable)? else {
        return Ok(());
    };
    let class = |m: &Module| m.kind.rsplit('.').next().unwrap_or_default().to_string();
    match modules
        .iter()
        .find(|m| !MODULES_RUN.contains(&class(m).as_str()))
    {
        Some(m) => Err(ModulesProblem::NotRun(m.kind.clone())),
        None => Ok(()),
    }
}

/// `file` in `dir`, which a folder may leave out: None when nothing is at its name, and an
/// error when what is there is no readable file (a folder, a dangling link, a pipe).
fn read_optional_json<T: for<'de> Deserialize<'de>>(
    dir: &Path,
    file: &str,
) -> Result<Option<T>, String> {
    if std::fs::symlink_metadata(dir.join(file)).is_err() {
        return Ok(None);
    }
    if let Some(problem) = not_a_file(dir, file) {
        return Err(problem);
    }
    read_json(dir, file).map(Some)
}

pub(super) fn read_json<T: for<'de> Deserialize<'de>>(dir: &Path, file: &str) -> Result<T, String> {
    let text = std::fs::read_to_string(dir.join(file)).map_err(|e| format!("{file}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("{file}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_path_that_is_no_folder_says_which_way() {
        let folder = tempfile::tempdir().expect("temp dir");
        let file = folder.path().join("model.onnx");
        std::fs::write(&file, b"").expect("write");
        for (path, says) in [
            (folder.path().join("nowhere"), "no such folder"),
            (file, "not a folder"),
        ] {
            let e = ModelDir::open(&path).expect_err("refused").to_string();
            assert!(e.contains(says), "{e}");
        }
        // A link to itself is there, but leads nowhere: it read as "no such folder".
        #[cfg(unix)]
        {
            let looped = folder.path().join("loop");
            std::os::unix::fs::symlink(&looped, &looped).expect("link");
            let e = ModelDir::open(&looped).expect_err("refused").to_string();
            assert!(e.contains("a link that cannot be followed"), "{e}");
        }
    }
}
