//! Text → tokens → sentence embeddings.
//!
//! Tokenization and pooling are the same for every engine, so they live here; an engine only
//! turns token ids into hidden states ([`Embedder`]). The model folder's sentence-transformers
//! configs decide the window length and pooling mode, never constants in code.

mod backend;
mod model_dir;
// The rust-bert engine's weight converter; also unit-tested without the feature.
#[cfg(any(test, feature = "rust-bert"))]
#[cfg_attr(not(feature = "rust-bert"), allow(dead_code))]
mod onnx_weights;
mod rten_engine;
#[cfg(feature = "rust-bert")]
mod rust_bert_engine;
mod tokenize;

pub use backend::{load_rust_bert, prepare, rust_bert_missing, Backend, Prepared};
pub use model_dir::{ModelDir, Pooling, Precision};
pub use rten_engine::RtenEmbedder;
#[cfg(feature = "rust-bert")]
pub use rust_bert_engine::RustBertEmbedder;
pub use tokenize::{TextTokenizer, Tokenized, TokenizerConfig};

use crate::error::Result;

/// An inference engine for a sentence-embedding model.
///
/// Implementations are loaded once and shared by reference across threads, so `embed` takes
/// `&self`. A batch may mix lengths: the engine pads to the longest sequence and padding must not
/// change any story's embedding.
pub trait Embedder: Send + Sync {
    /// Embedding width (384 for all-MiniLM-L6-v2).
    fn dim(&self) -> usize;

    /// Pooled, L2-normalised embeddings, one per tokenized story, in the batch's order.
    fn embed(&self, batch: &[&Tokenized]) -> Result<Vec<Vec<f32>>>;

    /// Set by an engine other than rten, so cached prototype embeddings are kept apart per
    /// engine (their numbers differ in the last bits).
    fn cache_tag(&self) -> Option<&'static str> {
        None
    }
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

/// Pools a `[batch, seq, dim]` hidden-state buffer over each story's real tokens and
/// L2-normalises the result, like sentence-transformers' Pooling + Normalize modules.
pub fn pool_and_normalise(
    hidden: &[f32],
    seq_len: usize,
    dim: usize,
    lengths: &[usize],
    pooling: Pooling,
) -> Vec<Vec<f32>> {
    lengths
        .iter()
        .enumerate()
        .map(|(b, &len)| {
            let story = &hidden[b * seq_len * dim..(b + 1) * seq_len * dim];
            let mut v = vec![0f32; dim];
            match pooling {
                Pooling::Cls => v.copy_from_slice(&story[..dim]),
                Pooling::Mean | Pooling::MeanSqrtLen => {
                    for token in story[..len * dim].chunks_exact(dim) {
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
        })
        .collect()
}

/// Scales `v` to unit length (leaves an all-zero vector alone).
pub fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Cosine similarity of two vectors of equal length.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}
