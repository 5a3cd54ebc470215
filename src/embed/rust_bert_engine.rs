//! The optional engine (`--features rust-bert`): rust-bert's sentence-embeddings transformer
//! on libtorch.
//!
//! The transformer is the one rust-bert's `SentenceEmbeddingsModel` pipeline runs for a BERT
//! model (`SentenceEmbeddingsOption::Bert`, without the unused pooler head), configured from the model folder's
//! `config.json` and loaded with rust-bert's own `load_weights` from local files only. Token ids
//! come from failup's tokenizer and pooling is failup's [`super::pool`], exactly as for
//! rten, so the two engines differ only in what runs the network.
//!
//! The weights come from `model.onnx`, converted once into the cache folder (see
//! [`super::onnx_weights`]); `failup models prepare --backend rust-bert` does it ahead of time.

use std::sync::Mutex;

use rust_bert::bert::{BertConfig, BertModel};
use rust_bert::pipelines::sentence_embeddings::SentenceEmbeddingsOption;
use rust_bert::resources::{load_weights, LocalResource};
use tch::{Device, Kind, Tensor};

use super::onnx_weights::{prepared_weights, PreparedWeights};
use super::{unpad, Embedder, ModelDir, PaddedBatch, Pooling, Tokenized};
use crate::error::{Error, Result};

pub struct RustBertEmbedder {
    /// tch tensors are `Send` but not `Sync`; batches run one at a time anyway.
    model: Mutex<SentenceEmbeddingsOption>,
    /// Owns the parameters the model's layers point into.
    _vars: tch::nn::VarStore,
    device: Device,
    pooling: Pooling,
    dim: usize,
}

impl RustBertEmbedder {
    /// Builds the transformer from `config.json` and loads the converted weights (converting
    /// them first when the cache has none); `threads` sizes libtorch's intra-op pool.
    pub fn load(dir: &ModelDir, threads: usize) -> Result<RustBertEmbedder> {
        let weights = prepared_weights(dir, false)?;
        Self::load_prepared(dir, &weights, threads)
    }

    /// Like [`RustBertEmbedder::load`], from weights already prepared.
    pub fn load_prepared(
        dir: &ModelDir,
        weights: &PreparedWeights,
        threads: usize,
    ) -> Result<RustBertEmbedder> {
        let broken = |problem: String| Error::Model {
            dir: dir.dir.clone(),
            problem,
            fix: "restore the folder with git checkout -- models/, then run \
                  failup models prepare --backend rust-bert --force"
                .into(),
        };
        let config_path = dir.dir.join("config.json");
        let text = std::fs::read_to_string(&config_path)
            .map_err(|e| broken(format!("config.json: {e}")))?;
        let config: BertConfig =
            serde_json::from_str(&text).map_err(|e| broken(format!("config.json: {e}")))?;
        if config.hidden_size as usize != dir.dim {
            return Err(broken(format!(
                "config.json says hidden_size {}, 1_Pooling/config.json says {}",
                config.hidden_size, dir.dim
            )));
        }

        tch::set_num_threads(threads.max(1) as i32);
        let device = Device::Cpu;
        let mut vars = tch::nn::VarStore::new(device);
        // What `SentenceEmbeddingsOption::new(ModelType::Bert, …)` builds, minus the BERT pooler
        // head: sentence embeddings never use it, and model.onnx (like the sentence-transformers
        // checkpoint's encoder) carries no pooler weights to load into it.
        let model = SentenceEmbeddingsOption::Bert(BertModel::new_with_optional_pooler(
            vars.root(),
            &config,
            false,
        ));
        load_weights(
            &LocalResource {
                local_path: weights.path.clone(),
            },
            &mut vars,
            Some(Kind::Float),
            device,
        )
        .map_err(|e| {
            broken(format!(
                "rust-bert cannot load the converted weights {}: {e}",
                weights.path.display()
            ))
        })?;
        Ok(RustBertEmbedder {
            model: Mutex::new(model),
            _vars: vars,
            device,
            pooling: dir.pooling,
            dim: dir.dim,
        })
    }
}

impl Embedder for RustBertEmbedder {
    fn dim(&self) -> usize {
        self.dim
    }

    fn kernel(&self) -> &'static str {
        "rust-bert"
    }

    fn pooling(&self) -> Pooling {
        self.pooling
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
        } = PaddedBatch::new(batch, i64::from);
        let shape = [n as i64, seq_len as i64];
        let ids = Tensor::from_slice(&ids).view(shape).to_device(self.device);
        let mask = Tensor::from_slice(&mask).view(shape).to_device(self.device);
        let model = self
            .model
            .lock()
            .map_err(|_| Error::Inference("the rust-bert model is poisoned".into()))?;
        let (hidden, _) = tch::no_grad(|| model.forward(&ids, &mask))
            .map_err(|e| Error::Inference(format!("rust-bert: {e}")))?;
        let expected = [n as i64, seq_len as i64, self.dim as i64];
        if hidden.size() != expected {
            return Err(Error::Inference(format!(
                "rust-bert returned shape {:?}, expected {expected:?}",
                hidden.size()
            )));
        }
        let hidden = hidden
            .to_device(Device::Cpu)
            .to_kind(Kind::Float)
            .contiguous();
        let mut data = vec![0f32; n * seq_len * self.dim];
        hidden
            .f_copy_data(&mut data, n * seq_len * self.dim)
            .map_err(|e| Error::Inference(format!("rust-bert: {e}")))?;
        Ok(unpad(&data, seq_len, self.dim, &lengths))
    }
}
