//! A stand-in engine for failup's own tests of everything around the model: each token id
//! becomes a fixed pseudo-random vector, so a story's embedding is a hashed bag of its words.
//!
//! It loads nothing and runs in microseconds, so tests of input handling, resume, exit codes
//! and reports need not run the network. Stories that share words still score alike, but its
//! verdicts mean nothing: it is hidden from `--help`, and tests of quality use the real model.

use super::{Embedder, Pooling, Tokenized};
use crate::error::Result;

/// Embedding width: small, so few-shot training over it is quick too.
pub const HASHED_DIM: usize = 32;

pub struct HashedEmbedder;

impl Embedder for HashedEmbedder {
    fn dim(&self) -> usize {
        HASHED_DIM
    }

    fn pooling(&self) -> Pooling {
        Pooling::Mean
    }

    fn hidden_states(&self, batch: &[&Tokenized]) -> Result<Vec<Vec<f32>>> {
        Ok(batch
            .iter()
            .map(|story| story.ids.iter().flat_map(|&id| token_vector(id)).collect())
            .collect())
    }

    fn kernel(&self) -> &'static str {
        "test-hashed"
    }
}

/// xorshift64 seeded by the token id: values in [-1, 1), the same on every machine.
fn token_vector(id: u32) -> [f32; HASHED_DIM] {
    let mut x = (u64::from(id) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    std::array::from_fn(|_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(ids: &[u32]) -> Tokenized {
        Tokenized {
            ids: ids.to_vec(),
            full_len: ids.len(),
        }
    }

    #[test]
    fn shared_words_make_similar_vectors_and_the_batch_does_not_matter() {
        let e = HashedEmbedder;
        let (a, b, c) = (
            tokens(&[1, 2, 3, 4]),
            tokens(&[1, 2, 3, 9]),
            tokens(&[5, 6, 7, 8]),
        );
        let together = e.embed(&[&a, &b, &c]).unwrap();
        let alone = e.embed(&[&b]).unwrap();
        assert_eq!(together[1], alone[0]);
        let near = crate::vector::cosine(&together[0], &together[1]);
        let far = crate::vector::cosine(&together[0], &together[2]);
        assert!(near > far + 0.3, "near {near}, far {far}");
    }
}
