//! The streaming classify path: chunks of stories → tokens → embeddings → verdicts, in input
//! order.
//!
//! Threads: tokenization runs on a Rayon pool of `threads` workers; inference runs one batch at
//! a time on rten's own operator pool of the same size. The two never run at once, so the cores
//! are not oversubscribed. Inside a chunk, stories are sorted by token length before batching
//! (padding to the longest story in a batch is the main waste otherwise) and put back in input
//! order afterwards, so the output never depends on the thread count or batch size.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

use crate::cache::PrototypeCache;
use crate::classify::{Classifier, Verdict};
use crate::embed::{Embedder, ModelDir, RtenEmbedder, TextTokenizer, Tokenized, TokenizerConfig};
use crate::error::{Error, Result};
use crate::input::{RowIssue, Story};
use crate::taxonomy::Taxonomy;

/// Stories per chunk: large enough that length sorting pays off, small enough to stream.
pub const CHUNK_SIZE: usize = 1024;

/// Prototypes are always embedded in batches of this size, whatever `--batch-size` says, so
/// their embeddings (and so every verdict) do not depend on run settings.
const PROTOTYPE_BATCH: usize = 16;

/// Text to embeddings: tokenizer, inference engine and thread pool.
pub struct Encoder {
    tokenizer: TextTokenizer,
    embedder: Box<dyn Embedder>,
    pool: rayon::ThreadPool,
    batch_size: usize,
}

/// Everything needed to classify: the model folder, the encoder and the classifier.
pub struct Engine {
    pub model: ModelDir,
    encoder: Encoder,
    classifier: Classifier,
}

#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// `--model` / `FAILUP_MODEL`; None means the bundled model.
    pub model: Option<PathBuf>,
    /// `--taxonomy`; None means the built-in taxonomy.
    pub taxonomy: Option<PathBuf>,
    pub threads: usize,
    pub batch_size: usize,
}

/// Per-story outcome of tokenizing and embedding.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedded {
    /// Story length in tokens before truncation, special tokens included (0 for empty text).
    pub tokens: usize,
    pub truncated: bool,
    /// None for empty or whitespace-only text, which never reaches the model.
    pub embedding: Option<Vec<f32>>,
}

/// Row status written to the output's `status` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Empty or whitespace-only text: not classified.
    Empty,
    /// The row had a different number of fields from the header; classified when its text
    /// cell exists, otherwise left without a category.
    Malformed,
    /// Classified, but invalid UTF-8 bytes were replaced.
    InvalidUtf8,
    /// Classified from its first `MAX_TEXT_BYTES` bytes; the rest of the cell was cut.
    TooLong,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Empty => "empty",
            Status::Malformed => "malformed",
            Status::InvalidUtf8 => "invalid_utf8",
            Status::TooLong => "too_long",
        }
    }
}

/// One output row.
#[derive(Debug, Clone)]
pub struct Classified {
    pub story: Story,
    pub tokens: usize,
    pub truncated: bool,
    pub status: Status,
    /// None when the story was not classified (empty text).
    pub verdict: Option<Verdict>,
}

impl Engine {
    pub fn load(options: &EngineOptions) -> Result<Engine> {
        if options.batch_size == 0 {
            return Err(Error::Usage("--batch-size must be at least 1".into()));
        }
        let threads = if options.threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            options.threads
        };
        let taxonomy = Taxonomy::load(options.taxonomy.as_deref())?;
        let model = ModelDir::resolve(options.model.as_deref())?;
        let tokenizer = TextTokenizer::load(
            &model.tokenizer_path(),
            TokenizerConfig {
                max_seq_length: model.max_seq_length,
                do_lower_case: model.do_lower_case,
            },
        )?;
        let embedder: Box<dyn Embedder> = Box::new(RtenEmbedder::load(&model, threads)?);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("failup-{i}"))
            .build()
            .map_err(|e| Error::Usage(format!("cannot start {threads} threads: {e}")))?;
        let encoder = Encoder {
            tokenizer,
            embedder,
            pool,
            batch_size: options.batch_size,
        };
        let prototypes = prototype_embeddings(&taxonomy, &model, &encoder)?;
        Ok(Engine {
            classifier: Classifier::new(taxonomy, prototypes),
            model,
            encoder,
        })
    }

    pub fn taxonomy(&self) -> &Taxonomy {
        self.classifier.taxonomy()
    }

    pub fn classifier(&self) -> &Classifier {
        &self.classifier
    }

    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    /// Embeds texts in input order; see [`Encoder::embed_texts`].
    pub fn embed_texts(&self, texts: &[&str]) -> Result<Vec<Embedded>> {
        self.encoder.embed_texts(texts)
    }

    /// Classifies one chunk of stories, keeping their order.
    pub fn classify_chunk(&self, stories: Vec<Story>) -> Result<Vec<Classified>> {
        self.classify_chunk_until(stories, &AtomicBool::new(false))
    }

    /// Like [`Engine::classify_chunk`], but stops with [`Error::Interrupted`] once `stop` is set.
    pub fn classify_chunk_until(
        &self,
        stories: Vec<Story>,
        stop: &AtomicBool,
    ) -> Result<Vec<Classified>> {
        let texts: Vec<&str> = stories.iter().map(|s| s.text.as_str()).collect();
        let embedded = self.encoder.embed_texts_until(&texts, stop)?;
        Ok(stories
            .into_iter()
            .zip(embedded)
            .map(|(story, e)| {
                let verdict = e.embedding.as_deref().map(|v| self.classifier.classify(v));
                // A ragged row is flagged as such even when it lost its text cell.
                let status = if story.issues.contains(&RowIssue::Malformed) {
                    Status::Malformed
                } else if verdict.is_none() {
                    Status::Empty
                } else if story.issues.contains(&RowIssue::TooLong) {
                    Status::TooLong
                } else if story.issues.contains(&RowIssue::InvalidUtf8) {
                    Status::InvalidUtf8
                } else {
                    Status::Ok
                };
                Classified {
                    story,
                    tokens: e.tokens,
                    truncated: e.truncated,
                    status,
                    verdict,
                }
            })
            .collect())
    }

    /// Classifies a single text (for `advise`).
    pub fn classify_text(&self, text: &str) -> Result<Option<(Embedded, Verdict)>> {
        let mut embedded = self.embed_texts(&[text])?;
        let e = embedded.pop().expect("one text in, one out");
        Ok(e.embedding
            .as_deref()
            .map(|v| self.classifier.classify(v))
            .map(|v| (e, v)))
    }
}

impl Encoder {
    pub fn dim(&self) -> usize {
        self.embedder.dim()
    }

    /// Embeds texts, returning results in the same order. Empty texts are skipped.
    pub fn embed_texts(&self, texts: &[&str]) -> Result<Vec<Embedded>> {
        self.embed_texts_batched(texts, self.batch_size, None)
    }

    /// Like [`Encoder::embed_texts`], but gives up with [`Error::Interrupted`] between batches
    /// once `stop` is set, so Ctrl-C is answered within one batch.
    pub fn embed_texts_until(&self, texts: &[&str], stop: &AtomicBool) -> Result<Vec<Embedded>> {
        self.embed_texts_batched(texts, self.batch_size, Some(stop))
    }

    fn embed_texts_batched(
        &self,
        texts: &[&str],
        batch_size: usize,
        stop: Option<&AtomicBool>,
    ) -> Result<Vec<Embedded>> {
        let tokens: Vec<Option<Tokenized>> = self.pool.install(|| {
            texts
                .par_iter()
                .map(|t| {
                    if t.trim().is_empty() {
                        Ok(None)
                    } else {
                        self.tokenizer.tokenize(t).map(Some)
                    }
                })
                .collect::<Result<_>>()
        })?;

        let mut order: Vec<usize> = (0..texts.len()).filter(|&i| tokens[i].is_some()).collect();
        order.sort_by_key(|&i| tokens[i].as_ref().map_or(0, |t| t.ids.len()));
        let mut embeddings: Vec<Option<Vec<f32>>> = vec![None; texts.len()];
        for batch in order.chunks(batch_size) {
            if stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
                return Err(Error::Interrupted);
            }
            let refs: Vec<&Tokenized> = batch
                .iter()
                .map(|&i| tokens[i].as_ref().expect("filtered above"))
                .collect();
            for (&i, e) in batch.iter().zip(self.embedder.embed(&refs)?) {
                embeddings[i] = Some(e);
            }
        }
        Ok(tokens
            .into_iter()
            .zip(embeddings)
            .map(|(t, embedding)| Embedded {
                tokens: t.as_ref().map_or(0, |t| t.full_len),
                truncated: t.as_ref().is_some_and(|t| t.truncated()),
                embedding,
            })
            .collect())
    }
}

/// Embeddings of every scenario's prototypes, from the cache when this model and taxonomy
/// were seen before (embedding ~300 prototypes takes seconds; `advise` should not).
fn prototype_embeddings(
    taxonomy: &Taxonomy,
    model: &ModelDir,
    encoder: &Encoder,
) -> Result<Vec<Vec<Vec<f32>>>> {
    let cache = PrototypeCache::new(taxonomy, model);
    if let Some(hit) = cache.as_ref().and_then(|c| c.load(taxonomy)) {
        return Ok(hit);
    }
    let texts: Vec<&str> = taxonomy
        .scenarios
        .iter()
        .flat_map(|s| s.prototypes.iter().map(String::as_str))
        .collect();
    let mut flat = encoder
        .embed_texts_batched(&texts, PROTOTYPE_BATCH, None)?
        .into_iter();
    let per_scenario: Vec<Vec<Vec<f32>>> = taxonomy
        .scenarios
        .iter()
        .map(|s| {
            (&mut flat)
                .take(s.prototypes.len())
                .map(|e| e.embedding.expect("prototypes are never empty"))
                .collect()
        })
        .collect();
    if let Some(c) = cache {
        c.store(&per_scenario);
    }
    Ok(per_scenario)
}
