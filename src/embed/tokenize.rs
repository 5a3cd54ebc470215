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
    /// Ids fed to the model: `[CLS] … [SEP]` (or the model's own pair, `<s> … </s>` for
    /// MPNet), at most `max_seq_length` long.
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
    /// The special token that closes every sequence (`[SEP]`, `</s>`), kept when truncating.
    closing_id: u32,
    /// The ids that carry no word of the text: the special tokens around it, the unknown
    /// token (`[UNK]`, `<unk>`) that stands for characters outside the vocabulary, and any
    /// other special token a text may spell out (`[MASK]`, `[PAD]`).
    wordless: Vec<u32>,
}

impl TextTokenizer {
    pub fn load(path: &Path, config: TokenizerConfig) -> Result<TextTokenizer> {
        let mut inner = Tokenizer::from_file(path).map_err(|e| {
            // The library reports a JSON file that is no tokenizer's as a syntax error at a
            // place where the JSON is sound.
            let json = std::fs::read(path)
                .is_ok_and(|b| serde_json::from_slice::<serde_json::Value>(&b).is_ok());
            let problem = match json {
                true => format!("it is JSON, but not a tokenizer's (the tokenizers library: {e})"),
                false => e.to_string(),
            };
            Error::Tokenizer(format!(
                "{}: {problem}; failup reads a tokenizer.json saved by the Hugging Face \
                 tokenizers library: copy it again from the model's sentence-transformers \
                 folder, as models/export_onnx.py does",
                path.display()
            ))
        })?;
        inner
            .with_truncation(None)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        inner.with_padding(None);
        // Whatever the post-processor wraps an empty text in ends with the closing token.
        let closing_id = inner
            .encode_fast("", true)
            .ok()
            .and_then(|e| e.get_ids().last().copied())
            .ok_or_else(|| {
                Error::Tokenizer(format!(
                    "{}: the tokenizer adds no special tokens around a text (no post_processor \
                     such as BERT's [CLS] … [SEP]); export the tokenizer with its model's \
                     post-processor",
                    path.display()
                ))
            })?;
        let mut wordless = inner
            .encode_fast("", true)
            .map(|e| e.get_ids().to_vec())
            .unwrap_or_default();
        wordless.extend(
            ["[UNK]", "<unk>"]
                .iter()
                .filter_map(|t| inner.token_to_id(t)),
        );
        let specials = inner.get_added_tokens_decoder();
        wordless.extend(
            specials
                .iter()
                .filter(|(_, t)| t.special)
                .map(|(id, _)| *id),
        );
        wordless.sort_unstable();
        wordless.dedup();
        Ok(TextTokenizer {
            inner,
            config,
            closing_id,
            wordless,
        })
    }

    /// Whether `ids` hold no word the model knows: only special tokens and unknown ones, as
    /// for a text of emoji or of characters outside the vocabulary. The model would read
    /// nothing of it, so it is left unclassified like an empty text.
    pub fn reads_nothing(&self, ids: &[u32]) -> bool {
        ids.iter().all(|id| self.wordless.binary_search(id).is_ok())
    }

    /// One past the largest id of the tokenizer's own vocabulary. Added tokens are left out:
    /// some tokenizers carry unused ones past the model's table, which no story can spell
    /// unless it writes them out.
    pub fn id_bound(&self) -> usize {
        let vocab = self.inner.get_vocab(false);
        vocab.values().max().map_or(0, |&id| id as usize + 1)
    }

    pub fn max_seq_length(&self) -> usize {
        self.config.max_seq_length
    }

    /// Tokenizes one story, keeping its first `max_seq_length - 1` tokens and the closing
    /// token when it is longer than the window (what Hugging Face truncation does).
    pub fn tokenize(&self, text: &str) -> Result<Tokenized> {
        let mut ids = self.encode_full(text)?;
        let full_len = ids.len();
        let max = self.config.max_seq_length;
        if ids.len() > max {
            ids.truncate(max - 1);
            ids.push(self.closing_id);
        }
        Ok(Tokenized { ids, full_len })
    }

    /// All of a story's token ids, `[CLS] … [SEP]` or the model's own pair, however long (for
    /// long-text chunking).
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokenizers::models::wordlevel::WordLevel;
    use tokenizers::pre_tokenizers::whitespace::WhitespaceSplit;
    use tokenizers::processors::roberta::RobertaProcessing;

    /// A RoBERTa-style tokenizer (`<s> … </s>`, as MPNet's), written to a file.
    fn roberta_style(dir: &Path) -> std::path::PathBuf {
        let vocab = ["<s>", "</s>", "<unk>", "a", "b", "c", "d", "e"]
            .iter()
            .enumerate()
            .map(|(i, t)| (t.to_string(), i as u32))
            .collect();
        let model = WordLevel::builder()
            .vocab(vocab)
            .unk_token("<unk>".into())
            .build()
            .unwrap();
        let mut tokenizer = Tokenizer::new(model);
        tokenizer.with_pre_tokenizer(Some(WhitespaceSplit));
        tokenizer.with_post_processor(Some(RobertaProcessing::new(
            ("</s>".into(), 1),
            ("<s>".into(), 0),
        )));
        tokenizer.add_special_tokens(&[tokenizers::AddedToken::from("<mask>", true)]);
        let path = dir.join("tokenizer.json");
        tokenizer.save(&path, false).unwrap();
        path
    }

    #[test]
    fn a_truncated_story_keeps_the_models_own_closing_token() {
        let dir = tempfile::tempdir().unwrap();
        let config = TokenizerConfig {
            max_seq_length: 4,
            do_lower_case: false,
        };
        let tokenizer = TextTokenizer::load(&roberta_style(dir.path()), config).unwrap();
        assert_eq!(
            tokenizer.encode_full("a b c d e").unwrap(),
            [0, 3, 4, 5, 6, 7, 1]
        );
        let t = tokenizer.tokenize("a b c d e").unwrap();
        assert_eq!(t.ids, [0, 3, 4, 1]);
        assert_eq!(t.full_len, 7);
        assert_eq!(tokenizer.tokenize("a").unwrap().ids, [0, 3, 1]);
    }

    #[test]
    fn a_text_of_the_models_own_markers_reads_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let config = TokenizerConfig {
            max_seq_length: 16,
            do_lower_case: false,
        };
        let tokenizer = TextTokenizer::load(&roberta_style(dir.path()), config).unwrap();
        let reads_nothing =
            |text: &str| tokenizer.reads_nothing(&tokenizer.encode_full(text).unwrap());
        assert!(reads_nothing("<mask>"));
        assert!(reads_nothing("<mask> <s> </s> zzz"), "zzz is <unk>");
        assert!(!reads_nothing("a <mask>"));
    }
}
