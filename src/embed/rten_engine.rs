//! The default engine: rten, a pure-Rust ONNX runtime, running `model.onnx` directly.

use std::sync::Arc;

use rten::{Model, ModelOptions, NodeId, RunOptions, ThreadPool};
use rten_tensor::prelude::*;
use rten_tensor::NdTensor;

use super::lanes::Lanes;
use super::{unpad, Embedder, ModelDir, PaddedBatch, Pooling, Precision, Tokenized};
use crate::error::{Error, Result};

pub struct RtenEmbedder {
    model: Model,
    input_ids: NodeId,
    attention_mask: NodeId,
    token_type_ids: Option<NodeId>,
    output: NodeId,
    pooling: Pooling,
    dim: usize,
    /// The model file's name, for messages.
    file: &'static str,
    /// Single-threaded rten pools, one per lane. Batches run side by side, one per thread,
    /// because that measured faster than splitting every operator across the threads
    /// (docs/src/dev/measurements.md): small operators such as softmax and layer norm do not gain enough from two
    /// threads to pay for the hand-offs. Sizing the pools here (instead of letting rten default
    /// to every core) keeps `--threads` honest.
    pools: Lanes<Arc<ThreadPool>>,
}

impl RtenEmbedder {
    /// Loads the model file for `precision` from a checked model folder; `threads` sizes
    /// rten's operator pool.
    pub fn load(dir: &ModelDir, threads: usize, precision: Precision) -> Result<RtenEmbedder> {
        let path = dir.onnx_path(precision);
        let file = precision.file_name();
        let fix = match precision {
            Precision::Int8 => {
                "re-create model.int8.onnx with models/quantize_int8.py (remove whatever is at its \
                 name first), or restore it with git checkout -- models/; --precision fp32 runs \
                 model.onnx meanwhile"
            }
            _ => {
                "re-create model.onnx with models/export_onnx.py, or restore it with \
                  git checkout -- models/"
            }
        };
        let broken = |problem: String| Error::Model {
            dir: dir.dir.clone(),
            problem,
            fix: fix.into(),
        };
        super::model_dir::refuse_unreadable(&dir.dir, file)?;
        if let Some(problem) = super::model_dir::not_a_file(&dir.dir, file) {
            let needed = format!("{problem} (needed for --precision {})", precision.name());
            return Err(broken(needed));
        }
        let mut options = ModelOptions::with_all_ops();
        options.prepack_weights(true);
        let model = options
            .load_file(&path)
            .map_err(|e| broken(format!("{file} could not be loaded: {e}")))?;
        let node = |name: &str| {
            model.find_node(name).ok_or_else(|| {
                broken(format!(
                    "{file} has no '{name}' node; export it with inputs input_ids, \
                     attention_mask, token_type_ids and output last_hidden_state"
                ))
            })
        };
        let input_ids = node("input_ids")?;
        let attention_mask = node("attention_mask")?;
        let output = node("last_hidden_state")?;
        let token_type_ids = model.find_node("token_type_ids");
        Ok(RtenEmbedder {
            input_ids,
            attention_mask,
            token_type_ids,
            output,
            pooling: dir.pooling,
            dim: dir.dim,
            file,
            pools: Lanes::new(
                (0..threads.max(1))
                    .map(|_| Arc::new(ThreadPool::with_num_threads(1)))
                    .collect(),
            ),
            model,
        })
    }
}

impl Embedder for RtenEmbedder {
    fn dim(&self) -> usize {
        self.dim
    }

    fn lanes(&self) -> usize {
        self.pools.count()
    }

    /// On one thread per batch, 2 beat 1, 3, 4, 8 and 16 on the benchmark corpus: bigger
    /// batches pad more and spill the caches, single stories keep the matrix products thin.
    fn preferred_batch_size(&self) -> usize {
        2
    }

    fn pooling(&self) -> Pooling {
        self.pooling
    }

    fn kernel(&self) -> &'static str {
        instruction_set()
    }

    fn hidden_states(&self, batch: &[&Tokenized]) -> Result<Vec<Vec<f32>>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let PaddedBatch {
            ids,
            mask,
            n,
            seq_len,
            lengths,
        } = PaddedBatch::new(batch, |id| id as i32);
        let shape = [n, seq_len];
        let mut inputs = vec![
            (self.input_ids, NdTensor::from_data(shape, ids).into()),
            (self.attention_mask, NdTensor::from_data(shape, mask).into()),
        ];
        if let Some(types) = self.token_type_ids {
            inputs.push((types, NdTensor::<i32, 2>::zeros(shape).into()));
        }
        let pool = self.pools.take()?;
        let options = RunOptions::default().with_thread_pool(Some(Arc::clone(&pool)));
        let [hidden] = self
            .model
            .run_n(inputs, [self.output], Some(options))
            .map_err(|e| Error::Inference(e.to_string()))?;
        let hidden: NdTensor<f32, 3> = hidden.try_into().map_err(|e| {
            Error::Inference(format!("unexpected output from {}: {e:?}", self.file))
        })?;
        let width = hidden.shape()[2];
        if width != self.dim {
            // Which of the two files is wrong cannot be told from here; both are named.
            return Err(Error::Inference(format!(
                "{} gives {width} values per token, but 1_Pooling/config.json says \
                 word_embedding_dimension {}; the two files come from different models: \
                 restore the folder whole (git checkout -- models/ for the bundled one)",
                self.file, self.dim
            )));
        }
        if hidden.shape() != [n, seq_len, self.dim] {
            return Err(Error::Inference(format!(
                "{} returned shape {:?}, expected [{n}, {seq_len}, {}]",
                self.file,
                hidden.shape(),
                self.dim
            )));
        }
        // Borrowed when contiguous (the model's output always is): unpad is the only copy.
        let hidden = hidden.to_contiguous();
        Ok(unpad(hidden.data(), seq_len, self.dim, &lengths))
    }
}

/// The instruction set rten runs on. It picks its matrix kernels and vector code by the CPU,
/// as rten-simd finds it, and each rounds the float steps (attention, layer norms, each
/// token's quantization scale) in its own order: in int8 too, a CPU with AVX2 but no AVX-512
/// gives scores that differ from an AVX-512 CPU's in the third or fourth decimal. So runs on
/// the two are told apart, as engines are, where a resume or merge must equal one run.
fn instruction_set() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if rten_simd::isa::Avx512Isa::new().is_some() {
            "rten-avx512"
        } else if rten_simd::isa::Avx2Isa::new().is_some() {
            "rten-avx2"
        } else {
            "rten-x86-64"
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        "rten-aarch64"
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        "rten-generic"
    }
}
