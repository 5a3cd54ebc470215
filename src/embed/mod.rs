//! Text → tokens → sentence embeddings.
//!
//! Tokenization and pooling are the same for every engine, so they live here; an engine only
//! turns token ids into hidden states ([`Embedder::hidden_states`]). The model folder's
//! sentence-transformers configs decide the window length and pooling mode, never constants in
//! code.

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod amx;
mod backend;
mod hashed;
mod lanes;
mod model_dir;
// Reads model.onnx's weights for the AMX and rust-bert engines.
#[cfg_attr(not(feature = "rust-bert"), allow(dead_code))]
mod onnx_weights;
mod rten_engine;
#[cfg(feature = "rust-bert")]
mod rust_bert_engine;
mod tokenize;

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
use amx::AmxEmbedder;
pub use backend::{
    amx_unavailable, default_precision, load, prepare, rust_bert_missing, Backend, EngineSpec,
    Prepared,
};
pub use hashed::HASHED_DIM;
pub use model_dir::{ModelDir, Pooling, Precision};
pub use rten_engine::RtenEmbedder;
#[cfg(feature = "rust-bert")]
pub use rust_bert_engine::RustBertEmbedder;
pub use tokenize::{TextTokenizer, Tokenized, TokenizerConfig};

use crate::error::Result;
use crate::vector::normalise;

/// An inference engine for a sentence-embedding model.
///
/// Implementations are loaded once and shared by reference across threads, so `embed` takes
/// `&self`. A batch may mix lengths: the engine pads to the longest sequence and padding must not
/// change any story's embedding.
pub trait Embedder: Send + Sync {
    /// Embedding width (384 for all-MiniLM-L6-v2).
    fn dim(&self) -> usize;

    /// The model's pooling mode (from `1_Pooling/config.json`).
    fn pooling(&self) -> Pooling;

    /// The last hidden states of each tokenized story, in the batch's order: `[len, dim]`
    /// row-major over the story's real tokens (no padding).
    fn hidden_states(&self, batch: &[&Tokenized]) -> Result<Vec<Vec<f32>>>;

    /// Pooled, L2-normalised embeddings, one per tokenized story, in the batch's order.
    fn embed(&self, batch: &[&Tokenized]) -> Result<Vec<Vec<f32>>> {
        let (dim, pooling) = (self.dim(), self.pooling());
        Ok(self
            .hidden_states(batch)?
            .iter()
            .map(|states| pool(states, dim, pooling))
            .collect())
    }

    /// How many batches the engine wants in flight at once: more than one when it runs each
    /// batch on one thread and gets its parallelism from several batches side by side.
    fn lanes(&self) -> usize {
        1
    }

    /// Stories per batch when `--batch-size` is not given: the fastest measured for this
    /// engine (docs/src/performance.md).
    fn preferred_batch_size(&self) -> usize {
        8
    }

    /// The engine and kernel, named apart wherever two round differently in the last bits:
    /// cached prototype embeddings are kept per kernel, and a resume or merge across kernels
    /// is refused.
    fn kernel(&self) -> &'static str;
}

/// A batch padded to its longest story, as every engine feeds it to the model.
pub struct PaddedBatch<T> {
    /// `[n, seq_len]` token ids, row-major, padding 0.
    pub ids: Vec<T>,
    /// `[n, seq_len]` attention mask: 1 on real tokens, 0 on padding.
    pub mask: Vec<T>,
    pub n: usize,
    pub seq_len: usize,
    /// Each story's real length, for pooling.
    pub lengths: Vec<usize>,
}

impl<T: Copy + From<u8>> PaddedBatch<T> {
    /// Pads `batch`, converting ids with `convert` (the engines want different integer types).
    pub fn new(batch: &[&Tokenized], convert: impl Fn(u32) -> T) -> PaddedBatch<T> {
        let seq_len = batch.iter().map(|t| t.ids.len()).max().unwrap_or(0);
        let n = batch.len();
        let mut ids = vec![T::from(0); n * seq_len];
        let mut mask = vec![T::from(0); n * seq_len];
        for (b, story) in batch.iter().enumerate() {
            let row = b * seq_len;
            for (i, &id) in story.ids.iter().enumerate() {
                ids[row + i] = convert(id);
                mask[row + i] = T::from(1);
            }
        }
        PaddedBatch {
            ids,
            mask,
            n,
            seq_len,
            lengths: batch.iter().map(|t| t.ids.len()).collect(),
        }
    }
}

/// Cuts a `[n, seq_len, dim]` hidden-state buffer into one `[len, dim]` buffer per story,
/// dropping the padding.
pub fn unpad(hidden: &[f32], seq_len: usize, dim: usize, lengths: &[usize]) -> Vec<Vec<f32>> {
    lengths
        .iter()
        .enumerate()
        .map(|(b, &len)| hidden[b * seq_len * dim..(b * seq_len + len) * dim].to_vec())
        .collect()
}

/// Pools one story's `[len, dim]` hidden states and L2-normalises the result, like
/// sentence-transformers' Pooling + Normalize modules.
pub fn pool(states: &[f32], dim: usize, pooling: Pooling) -> Vec<f32> {
    let len = states.len() / dim;
    let mut v = vec![0f32; dim];
    match pooling {
        Pooling::Cls => v.copy_from_slice(&states[..dim]),
        Pooling::Mean | Pooling::MeanSqrtLen => {
            for token in states.chunks_exact(dim) {
                for (acc, x) in v.iter_mut().zip(token) {
                    *acc += x;
                }
            }
            let div = match pooling {
                Pooling::Mean => len as f32,
                _ => (len as f32).sqrt(),
            };
            v.iter_mut().for_each(|x| *x /= div.max(1.0));
        }
    }
    normalise(&mut v);
    v
}
