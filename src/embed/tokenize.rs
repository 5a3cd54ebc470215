//! Tokenization with the model's own `tokenizer.json`.
//!
//! The shipped tokenizer.json truncates and pads to 128 tokens on its own; both are switched
//! off here. failup truncates to the model's `max_seq_length` (special tokens included, as
//! sentence-transformers does) and pads per batch, so no story is cut at 128 and the output can
//! say how long each story really was.

use std::path::Path;

use tokenizers::Tokenizer;

use crate::error::{Error, Result};

/// One story's token ids, ready for the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokenized {
    /// Ids fed to the model: `[CLS] … [SEP]`, at most `max_seq_length` long.
    pub ids: Vec<u32>,
    /// Length of the story in tokens before truncation, special tokens included.
    pub full_len: usize,
}

impl Tokenized {
    pub fn truncated(&self) -> bool {
        self.full_len > self.ids.len()
    }
}

/// What the tokenizer needs from the model folder.
#[derive(Debug, Clone, Copy)]
pub struct TokenizerConfig {
    pub max_seq_length: usize,
    pub do_lower_case: bool,
}

pub struct TextTokenizer {
    inner: Tokenizer,
    config: TokenizerConfig,
    sep_id: u32,
}

impl TextTokenizer {
    pub fn load(path: &Path, config: TokenizerConfig) -> Result<TextTokenizer> {
        let mut inner = Tokenizer::from_file(path)
            .map_err(|e| Error::Tokenizer(format!("{}: {e}", path.display())))?;
        inner
            .with_truncation(None)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        inner.with_padding(None);
        let sep_id = inner.token_to_id("[SEP]").ok_or_else(|| {
            Error::Tokenizer(format!(
                "{}: the vocabulary has no [SEP] token; failup supports BERT-style tokenizers",
                path.display()
            ))
        })?;
        Ok(TextTokenizer {
            inner,
            config,
            sep_id,
        })
    }

    pub fn max_seq_length(&self) -> usize {
        self.config.max_seq_length
    }

    /// Tokenizes one story, keeping its first `max_seq_length - 1` tokens and the closing
    /// `[SEP]` when it is longer than the window (what Hugging Face truncation does).
    pub fn tokenize(&self, text: &str) -> Result<Tokenized> {
        let mut ids = self.encode_full(text)?;
        let full_len = ids.len();
        let max = self.config.max_seq_length;
        if ids.len() > max {
            ids.truncate(max - 1);
            ids.push(self.sep_id);
        }
        Ok(Tokenized { ids, full_len })
    }

    /// All of a story's token ids, `[CLS] … [SEP]`, however long (for long-text chunking).
    pub fn encode_full(&self, text: &str) -> Result<Vec<u32>> {
        let lowered;
        let text = if self.config.do_lower_case {
            lowered = text.to_lowercase();
            lowered.as_str()
        } else {
            text
        };
        let encoding = self
            .inner
            .encode_fast(text.trim(), true)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }
}
