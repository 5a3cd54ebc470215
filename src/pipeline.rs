//! The streaming classify path: chunks of stories → tokens → embeddings → verdicts, in input
//! order.
//!
//! Threads: tokenization runs on a Rayon pool of `threads` workers; inference runs one batch at
//! a time on rten's own operator pool of the same size. The two never run at once, so the cores
//! are not oversubscribed. Inside a chunk, stories are sorted by token length before batching
//! (padding to the longest story in a batch is the main waste otherwise) and put back in input
//! order afterwards, so the output never depends on the thread count or batch size.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::cache::PrototypeCache;
use crate::chunk::{combine, windows, LongText, Window, OVERLAP};
use crate::classify::{Classifier, Verdict};
use crate::embed::{pool, Backend, EngineSpec};
use crate::embed::{Embedder, ModelDir, Precision, TextTokenizer, Tokenized, TokenizerConfig};
use crate::error::{Error, Result};
use crate::fewshot::{attend, combine_attended, Attended};
use crate::input::{not_a_story, printable, Story};
use crate::record::{Classified, Status};
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
    long_text: LongText,
    /// What this encoder has done so far, for `failup bench`.
    tally: Mutex<Tally>,
}

/// Work an [`Encoder`] has done so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tally {
    pub tokenizing: Duration,
    pub embedding: Duration,
    /// Windows the stories were cut into (a sentence each, when read by sentence), a
    /// repeated story's counted again.
    pub windows: usize,
    /// Of those, the windows the model ran: a repeat within one call runs once.
    pub windows_run: usize,
}

/// Everything needed to classify: the model folder, the encoder and the classifier.
pub struct Engine {
    pub model: ModelDir,
    /// The engine `--backend` resolved to (never `auto`).
    pub backend: Backend,
    /// The precision that runs: `--precision`, or the default for the engine and model.
    pub precision: Precision,
    /// [`Taxonomy::content_sha256`] of the taxonomy as its file reads, taken at load: a
    /// profile's calibration changes the classifier's copy afterwards, and a taxonomy given
    /// through a pipe cannot be read twice.
    pub taxonomy_sha256: String,
    /// SHA-256 of the taxonomy file's bytes (of the built-in TOML without one), for a report's
    /// header, from the same single read.
    pub taxonomy_file_sha256: String,
    encoder: Encoder,
    classifier: Classifier,
}

#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// `--model` / `FAILUP_MODEL`; None means the bundled model.
    pub model: Option<PathBuf>,
    /// `--taxonomy`; None means the built-in taxonomy.
    pub taxonomy: Option<PathBuf>,
    /// `--backend` / `FAILUP_BACKEND`: the inference engine.
    pub backend: Backend,
    pub threads: usize,
    /// `--batch-size`; None means the engine's own choice.
    pub batch_size: Option<usize>,
    /// `--long-text`: chunk (default) or truncate stories longer than the model's window.
    pub long_text: LongText,
    /// `--precision`; None means [`crate::embed::default_precision`] for the engine and model.
    pub precision: Option<Precision>,
}

/// Per-story outcome of tokenizing and embedding.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedded {
    /// Story length in tokens before truncation, special tokens included (0 for empty text).
    pub tokens: usize,
    pub truncated: bool,
    /// Windows the story was embedded in (1 unless it was long and chunked; 0 for empty text).
    pub chunks: usize,
    /// None for empty or whitespace-only text, which never reaches the model.
    pub embedding: Option<Vec<f32>>,
    /// The story's attention-pooled vector under the few-shot head's query, when there is a
    /// head (unit length; see [`crate::fewshot`]).
    pub attended: Option<Vec<f32>>,
    /// The last hidden states, `[tokens, dim]`, windows end to end, when asked for (to fit a
    /// few-shot head).
    pub states: Option<Vec<f32>>,
    /// Each sentence's embedding (unit length), when the story was read sentence by sentence;
    /// `embedding` is then their mean weighted by tokens (see [`crate::sentences`]).
    pub sentences: Option<Vec<Vec<f32>>>,
}

/// What to keep of each story besides its embedding.
#[derive(Debug, Clone, Copy, Default)]
pub struct Want<'a> {
    /// Attention-pool the hidden states with this query (a few-shot head's).
    pub query: Option<&'a [f32]>,
    /// Keep the hidden states themselves.
    pub states: bool,
    /// Read the story sentence by sentence (with `--long-text chunk`), keeping each sentence's
    /// embedding, for a classifier that scores sentences.
    pub sentences: bool,
}

/// One window's share of a story: its pooled embedding and whatever else [`Want`] asked for.
#[derive(Clone)]
struct WindowOut {
    embedding: Vec<f32>,
    attended: Option<Attended>,
    states: Option<Vec<f32>>,
}

/// How one story is cut for the model.
struct Split {
    /// The story's length in tokens, special tokens included.
    full_len: usize,
    windows: Vec<Window>,
    /// Windows per sentence, in order, when the story is read sentence by sentence.
    sentences: Vec<usize>,
}

impl Split {
    fn whole(full_len: usize, windows: Vec<Window>) -> Split {
        Split {
            full_len,
            windows,
            sentences: Vec::new(),
        }
    }
}

/// The model alone, ready to embed, with no taxonomy: what `embed` needs, and the first half
/// of an [`Engine`].
pub struct LoadedEncoder {
    pub model: ModelDir,
    pub backend: Backend,
    pub precision: Precision,
    pub encoder: Encoder,
}

impl LoadedEncoder {
    /// Loads the model, tokenizer and engine `options` name; `options.taxonomy` is not read.
    pub fn load(options: &EngineOptions) -> Result<LoadedEncoder> {
        if options.batch_size == Some(0) {
            return Err(Error::Usage("--batch-size must be at least 1".into()));
        }
        let threads = if options.threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            options.threads
        };
        let model = ModelDir::resolve(options.model.as_deref())?;
        let tokenizer = TextTokenizer::load(
            &model.tokenizer_path(),
            TokenizerConfig {
                max_seq_length: model.max_seq_length,
                do_lower_case: model.do_lower_case,
            },
        )?;
        model.check_token_ids(tokenizer.id_bound())?;
        let precision = options
            .precision
            .unwrap_or_else(|| crate::embed::default_precision(options.backend, &model));
        let (backend, embedder) = crate::embed::load(&EngineSpec {
            model: &model,
            backend: options.backend,
            precision,
            threads,
        })?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("failup-{i}"))
            .build()
            .map_err(|e| Error::Usage(format!("cannot start {threads} threads: {e}")))?;
        let batch_size = options
            .batch_size
            .unwrap_or_else(|| embedder.preferred_batch_size());
        let encoder = Encoder {
            tokenizer,
            embedder,
            pool,
            batch_size,
            long_text: options.long_text,
            tally: Mutex::new(Tally::default()),
        };
        Ok(LoadedEncoder {
            model,
            backend,
            precision,
            encoder,
        })
    }

    /// As [`Engine::kernel`].
    pub fn kernel(&self) -> &'static str {
        self.encoder.embedder.kernel()
    }
}

impl Engine {
    /// The engine that runs, down to the kernel where two differ in the last bits (rten's
    /// instruction set; the AMX engine's tiles, dot products or FMA in bf16): what resumes and
    /// merges must agree on.
    pub fn kernel(&self) -> &'static str {
        self.encoder.embedder.kernel()
    }

    pub fn load(options: &EngineOptions) -> Result<Engine> {
        let (taxonomy, taxonomy_file_sha256) = Taxonomy::load_hashed(options.taxonomy.as_deref())?;
        let LoadedEncoder {
            model,
            backend,
            precision,
            encoder,
        } = LoadedEncoder::load(options)?;
        let name = options
            .taxonomy
            .as_deref()
            .map_or("built-in".into(), |p| p.display().to_string());
        refuse_prototypes_read_alike(&taxonomy, &name, &encoder)?;
        if let Some(uneven) = taxonomy.uneven_prototype_counts() {
            eprintln!("warning: taxonomy {name}: {uneven}");
        }
        let prototypes = prototype_embeddings(&taxonomy, &model, precision, &encoder)?;
        Ok(Engine {
            taxonomy_sha256: taxonomy.content_sha256(),
            taxonomy_file_sha256,
            classifier: Classifier::new(taxonomy, prototypes),
            model,
            backend,
            precision,
            encoder,
        })
    }

    pub fn taxonomy(&self) -> &Taxonomy {
        self.classifier.taxonomy()
    }

    pub fn classifier(&self) -> &Classifier {
        &self.classifier
    }

    /// For few-shot heads and calibrated settings (see `profile`).
    pub fn classifier_mut(&mut self) -> &mut Classifier {
        &mut self.classifier
    }

    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    /// Embeds texts in input order, attention-pooled with the few-shot head's query when
    /// there is a head; see [`Encoder::embed_texts`].
    pub fn embed_texts(&self, texts: &[&str]) -> Result<Vec<Embedded>> {
        self.encoder.embed_texts(texts, self.want())
    }

    /// Embeds texts in input order with their last hidden states (to fit a few-shot head).
    pub fn embed_texts_with_states(&self, texts: &[&str]) -> Result<Vec<Embedded>> {
        let want = Want {
            query: None,
            states: true,
            sentences: self.classifier.reads_sentences(),
        };
        self.encoder.embed_texts(texts, want)
    }

    /// Runs `f` on the engine's thread pool, so work it parallelises (fitting a few-shot head)
    /// keeps to `--threads`.
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.encoder.pool.install(f)
    }

    /// The hidden states of every scenario's prototypes, per scenario (to fit a few-shot head;
    /// never cached, unlike their embeddings).
    pub fn prototype_states(&self) -> Result<Vec<Vec<Vec<f32>>>> {
        // Prototypes are read whole, as their cached embeddings were.
        let want = Want {
            states: true,
            ..Want::default()
        };
        let embedded = embed_prototypes(self.taxonomy(), &self.encoder, want)?;
        Ok(embedded
            .into_iter()
            .map(|s| {
                s.into_iter()
                    .map(|e| e.states.expect(NEVER_EMPTY))
                    .collect()
            })
            .collect())
    }

    fn want(&self) -> Want<'_> {
        Want {
            query: self.classifier.query(),
            states: false,
            sentences: self.classifier.reads_sentences(),
        }
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
        let texts: Vec<&str> = stories
            .iter()
            .map(|s| story_text(s.text_to_read()))
            .collect();
        let embedded = self.encoder.embed_texts_until(&texts, self.want(), stop)?;
        // Scoring is a few hundred dot products per sentence: on one thread it left the other
        // cores idle for about 4% of a run.
        self.install(|| {
            stories
                .into_par_iter()
                .zip(embedded)
                .map(|(story, e)| {
                    let verdict = e.embedding.as_deref().map(|v| {
                        self.classifier
                            .classify(v, e.attended.as_deref(), e.sentences.as_deref())
                    });
                    if let Some(v) = &verdict {
                        numbers_check(v, &format!("story {}", printable(&story.id)))?;
                    }
                    let status = Status::of(&story, verdict.is_some());
                    Ok(Classified {
                        story,
                        tokens: e.tokens,
                        truncated: e.truncated,
                        chunks: e.chunks,
                        status,
                        verdict,
                    })
                })
                .collect()
        })
    }

    /// Classifies a single text (`advise`, and a resumed run's story whose evidence cell is
    /// ambiguous).
    pub fn classify_text(&self, text: &str) -> Result<Option<(Embedded, Verdict)>> {
        let mut embedded = self.embed_texts(&[story_text(text)])?;
        let e = embedded.pop().expect("one text in, one out");
        let Some(v) = e.embedding.as_deref() else {
            return Ok(None);
        };
        let verdict = (self.classifier).classify(v, e.attended.as_deref(), e.sentences.as_deref());
        numbers_check(&verdict, "the story")?;
        Ok(Some((e, verdict)))
    }
}

/// A verdict whose scores or confidence are not numbers would be written as a story read
/// without a problem; only damaged weights (a model's, or a hand-edited profile's) give one.
fn numbers_check(verdict: &Verdict, story: &str) -> Result<()> {
    if verdict.confidence.is_finite() && verdict.scores.iter().all(|s| s.is_finite()) {
        return Ok(());
    }
    Err(Error::Inference(format!(
        "{story} got scores that are not numbers (NaN or infinite), which only damaged \
         weights give: check the model folder (--model) and any --profile, or refit the \
         profile"
    )))
}

impl Encoder {
    /// How a story longer than the window is read, and whether stories are read by sentence.
    pub fn long_text(&self) -> LongText {
        self.long_text
    }

    pub fn dim(&self) -> usize {
        self.embedder.dim()
    }

    /// Stories per inference batch (`--batch-size`, or the engine's choice).
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Embeds texts, returning results in the same order. Empty texts are skipped.
    pub fn embed_texts(&self, texts: &[&str], want: Want) -> Result<Vec<Embedded>> {
        self.embed_texts_batched(texts, self.batch_size, None, want)
    }

    /// Like [`Encoder::embed_texts`], but gives up with [`Error::Interrupted`] between batches
    /// once `stop` is set, so Ctrl-C is answered within one batch.
    pub fn embed_texts_until(
        &self,
        texts: &[&str],
        want: Want,
        stop: &AtomicBool,
    ) -> Result<Vec<Embedded>> {
        self.embed_texts_batched(texts, self.batch_size, Some(stop), want)
    }

    /// Tokenizes the distinct texts, runs their distinct windows through the model in
    /// batches of similar length, and gathers each text's embedding, a repeat's from its
    /// first occurrence.
    fn embed_texts_batched(
        &self,
        texts: &[&str],
        batch_size: usize,
        stop: Option<&AtomicBool>,
        want: Want,
    ) -> Result<Vec<Embedded>> {
        // Per text: its full length in tokens and its windows (one unless it is long and
        // --long-text chunk is on, or it is read sentence by sentence); None for empty text.
        let by_sentence = want.sentences && self.long_text == LongText::Chunk;
        // Exports often repeat a story: each distinct text is tokenized and embedded once.
        let source = first_occurrences(texts.iter().copied());
        let started = Instant::now();
        let tokens = self.tokenize_distinct(texts, &source, by_sentence)?;
        let items = windows_of(&tokens);
        // Stories repeat sentences too (greetings, sign-offs, the lines of a form), and a
        // window's output depends on its tokens alone, so each distinct window runs once.
        let same = first_occurrences(items.iter().map(|(_, t)| t.ids.as_slice()));
        let mut order: Vec<usize> = (0..items.len()).filter(|&j| same[j] == j).collect();
        order.sort_by_key(|&j| items[j].1.ids.len());
        let tokenized = Instant::now();
        let batches = self.batches(&order, &items, batch_size, by_sentence);
        let window_outs = self.run_windows(&items, &same, &batches, stop, want)?;
        if let Ok(mut tally) = self.tally.lock() {
            tally.tokenizing += tokenized - started;
            tally.embedding += tokenized.elapsed();
            tally.windows += source
                .iter()
                .map(|&s| tokens[s].as_ref().map_or(0, |t| t.windows.len()))
                .sum::<usize>();
            tally.windows_run += order.len();
        }
        let mut embedded = self.gather_all(tokens, window_outs, want);
        for (i, &first) in source.iter().enumerate() {
            if first != i {
                embedded[i] = embedded[first].clone();
            }
        }
        Ok(embedded)
    }

    /// The windows of each text that is its own first occurrence (`source[i] == i`); None
    /// for a repeat, a blank text, or one with no word the model knows.
    fn tokenize_distinct(
        &self,
        texts: &[&str],
        source: &[usize],
        by_sentence: bool,
    ) -> Result<Vec<Option<Split>>> {
        self.pool.install(|| {
            texts
                .par_iter()
                .enumerate()
                .map(|(i, t)| {
                    if source[i] != i || crate::input::is_blank(t) {
                        return Ok(None);
                    }
                    let split = self.split(t, by_sentence)?;
                    let tokenizer = &self.tokenizer;
                    let wordless = split
                        .windows
                        .iter()
                        .all(|w| tokenizer.reads_nothing(&w.ids));
                    Ok((!wordless).then_some(split))
                })
                .collect::<Result<_>>()
        })
    }

    /// `order`'s windows (shortest first) in batches: `batch_size` windows each, or, read by
    /// sentence, as many as fit in the tokens of `batch_size` full windows.
    fn batches<'a>(
        &self,
        order: &'a [usize],
        items: &[(usize, Tokenized)],
        batch_size: usize,
        by_sentence: bool,
    ) -> Vec<&'a [usize]> {
        if by_sentence {
            // Sentences are short: batches of `batch_size` of them would be mostly overhead
            // (a third slower on the benchmark corpus).
            let budget = batch_size * self.tokenizer.max_seq_length();
            token_batches(order, |j| items[j].1.ids.len(), budget)
        } else {
            order.chunks(batch_size).collect()
        }
    }

    /// Every window's output: the batches run through the model, and a repeated window
    /// (`same[j] != j`) given its first occurrence's.
    fn run_windows(
        &self,
        items: &[(usize, Tokenized)],
        same: &[usize],
        batches: &[&[usize]],
        stop: Option<&AtomicBool>,
        want: Want,
    ) -> Result<Vec<WindowOut>> {
        let mut window_outs: Vec<Option<WindowOut>> = (0..items.len()).map(|_| None).collect();
        for (batch, outs) in batches
            .iter()
            .zip(self.embed_batches(batches, items, stop, want)?)
        {
            for (&j, out) in batch.iter().zip(outs) {
                window_outs[j] = Some(out);
            }
        }
        for (j, &first) in same.iter().enumerate() {
            if first != j {
                window_outs[j] = window_outs[first].clone();
            }
        }
        Ok(window_outs
            .into_iter()
            .map(|w| w.expect("every window is embedded"))
            .collect())
    }

    /// Each text's embedding from its windows' outputs, taken in order; an empty one for a
    /// text with no windows.
    fn gather_all(
        &self,
        tokens: Vec<Option<Split>>,
        window_outs: Vec<WindowOut>,
        want: Want,
    ) -> Vec<Embedded> {
        let mut next = window_outs.into_iter();
        let per_text: Vec<(Option<Split>, Vec<WindowOut>)> = tokens
            .into_iter()
            .map(|t| {
                let n = t.as_ref().map_or(0, |s| s.windows.len());
                (t, (&mut next).take(n).collect())
            })
            .collect();
        self.pool.install(|| {
            per_text
                .into_par_iter()
                .map(|(t, outs)| match t {
                    None => Embedded {
                        tokens: 0,
                        truncated: false,
                        chunks: 0,
                        embedding: None,
                        attended: None,
                        states: None,
                        sentences: None,
                    },
                    Some(split) => self.gather(split, outs, want),
                })
                .collect()
        })
    }

    /// A story's windows: the whole story's (one, or several overlapping ones when it is long
    /// and chunked), or each sentence's in turn.
    fn split(&self, text: &str, by_sentence: bool) -> Result<Split> {
        let max = self.tokenizer.max_seq_length();
        if !by_sentence {
            return Ok(match self.long_text {
                LongText::Chunk => {
                    let full = self.tokenizer.encode_full(text)?;
                    let windows = windows(&full, max, OVERLAP);
                    Split::whole(full.len(), windows)
                }
                LongText::Truncate => {
                    let t = self.tokenizer.tokenize(text)?;
                    let window = Window {
                        weight: t.ids.len(),
                        ids: t.ids,
                    };
                    Split::whole(t.full_len, vec![window])
                }
            });
        }
        let full_len = self.tokenizer.encode_full(text)?.len();
        let mut split = Split {
            full_len,
            windows: Vec::new(),
            sentences: Vec::new(),
        };
        for sentence in crate::sentences::split(text) {
            let ws = windows(&self.tokenizer.encode_full(&sentence)?, max, OVERLAP);
            split.sentences.push(ws.len());
            split.windows.extend(ws);
        }
        Ok(split)
    }

    /// One story's result from the outputs of its windows, in order.
    fn gather(&self, split: Split, outs: Vec<WindowOut>, want: Want) -> Embedded {
        let max = self.tokenizer.max_seq_length();
        let mut embs = Vec::with_capacity(outs.len());
        let mut parts = Vec::new();
        let mut states: Option<Vec<f32>> = want.states.then(Vec::new);
        for out in outs {
            embs.push(out.embedding);
            parts.extend(out.attended);
            if let (Some(all), Some(window)) = (states.as_mut(), out.states) {
                all.extend(window);
            }
        }
        let weights: Vec<usize> = split.windows.iter().map(|w| w.weight).collect();
        // A story read whole has no sentence list; one read by sentence has at least one.
        let sentences = (!split.sentences.is_empty()).then(|| {
            let mut at = 0;
            split
                .sentences
                .iter()
                .map(|&n| {
                    at += n;
                    match n {
                        1 => embs[at - 1].clone(),
                        _ => combine(&embs[at - n..at], &weights[at - n..at]),
                    }
                })
                .collect()
        });
        let attended = want.query.map(|_| combine_attended(&parts));
        let embedding = if embs.len() == 1 {
            embs.pop().expect("one window")
        } else {
            combine(&embs, &weights)
        };
        Embedded {
            tokens: split.full_len,
            truncated: split.full_len > max && self.long_text == LongText::Truncate,
            chunks: split.windows.len(),
            embedding: Some(embedding),
            attended,
            states,
            sentences,
        }
    }

    /// Embeds each batch of `items` (given as indexes), returning one result per batch in
    /// order. The engine's lanes each take the next batch not yet started, so a slow batch of
    /// long stories does not hold up the others. Hidden states are pooled on the lane that
    /// made them, and dropped there unless `want` keeps them, so a chunk's worth of them is
    /// never held at once.
    fn embed_batches(
        &self,
        batches: &[&[usize]],
        items: &[(usize, Tokenized)],
        stop: Option<&AtomicBool>,
        want: Want,
    ) -> Result<Vec<Vec<WindowOut>>> {
        type Embeddings = Result<Vec<WindowOut>>;
        let (dim, pooling) = (self.embedder.dim(), self.embedder.pooling());
        let embed = |batch: &[usize]| -> Embeddings {
            if stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
                return Err(Error::Interrupted);
            }
            let refs: Vec<&Tokenized> = batch.iter().map(|&j| &items[j].1).collect();
            Ok(self
                .embedder
                .hidden_states(&refs)?
                .into_iter()
                .map(|states| WindowOut {
                    embedding: pool(&states, dim, pooling),
                    attended: want.query.map(|q| attend(&states, q)),
                    states: want.states.then_some(states),
                })
                .collect())
        };
        let lanes = self.embedder.lanes().min(batches.len());
        if lanes <= 1 {
            return batches.iter().map(|b| embed(b)).collect();
        }
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let done: Vec<Vec<(usize, Embeddings)>> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..lanes)
                .map(|_| {
                    scope.spawn(|| {
                        let mut done = Vec::new();
                        while !failed.load(Ordering::Relaxed) {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(batch) = batches.get(i) else { break };
                            let result = embed(batch);
                            if result.is_err() {
                                failed.store(true, Ordering::Relaxed);
                            }
                            done.push((i, result));
                        }
                        done
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("an embedding thread panicked"))
                .collect()
        });
        let mut results: Vec<Option<Embeddings>> = (0..batches.len()).map(|_| None).collect();
        for (i, r) in done.into_iter().flatten() {
            results[i] = Some(r);
        }
        // A real failure wins over Interrupted, which other lanes report when they merely
        // saw the stop flag (None: never started because a batch had failed).
        let mut out = Vec::with_capacity(batches.len());
        let mut interrupted = false;
        for r in results {
            match r {
                Some(Ok(e)) => out.push(e),
                Some(Err(Error::Interrupted)) | None => interrupted = true,
                Some(Err(e)) => return Err(e),
            }
        }
        if interrupted {
            return Err(Error::Interrupted);
        }
        Ok(out)
    }

    /// What this encoder has done so far.
    pub fn tally(&self) -> Tally {
        self.tally.lock().map(|t| *t).unwrap_or_default()
    }
}

/// For each key, the index of its first occurrence (its own index when it is the first).
fn first_occurrences<'a, K: std::hash::Hash + Eq + ?Sized + 'a>(
    keys: impl Iterator<Item = &'a K>,
) -> Vec<usize> {
    let mut first: HashMap<&K, usize> = HashMap::new();
    keys.enumerate()
        .map(|(i, k)| *first.entry(k).or_insert(i))
        .collect()
}

/// Every window of every text, in order, with its text's index and full length in tokens.
fn windows_of(tokens: &[Option<Split>]) -> Vec<(usize, Tokenized)> {
    tokens
        .iter()
        .enumerate()
        .filter_map(|(i, t)| t.as_ref().map(|t| (i, t.full_len, &t.windows)))
        .flat_map(|(i, full_len, ws)| {
            ws.iter().map(move |w| {
                (
                    i,
                    Tokenized {
                        ids: w.ids.clone(),
                        full_len,
                    },
                )
            })
        })
        .collect()
}

/// Cuts `order` (sorted by length, shortest first) into consecutive batches of at most
/// `budget` tokens, padding counted: a batch is padded to its last, longest item.
fn token_batches(order: &[usize], len: impl Fn(usize) -> usize, budget: usize) -> Vec<&[usize]> {
    let mut batches = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && (end + 1 - start) * len(order[end]) <= budget {
            end += 1;
        }
        batches.push(&order[start..end]);
        start = end;
    }
    batches
}

/// Embeddings of every scenario's prototypes, from the cache when this model and taxonomy
/// were seen before (embedding ~300 prototypes takes seconds; `advise` should not).
fn prototype_embeddings(
    taxonomy: &Taxonomy,
    model: &ModelDir,
    precision: Precision,
    encoder: &Encoder,
) -> Result<Vec<Vec<Vec<f32>>>> {
    let dim = encoder.embedder.dim();
    // A prototype past the model's window is read whole or cut, as --long-text says.
    let identity = model
        .identity(precision)
        .map(|id| format!("{id}\nlong_text={:?}", encoder.long_text));
    let cache = identity
        .and_then(|id| PrototypeCache::new(taxonomy, &id, dim))
        .map(|c| c.tagged(encoder.embedder.kernel()));
    if let Some(hit) = cache.as_ref().and_then(|c| c.load(taxonomy)) {
        return Ok(hit);
    }
    let per_scenario: Vec<Vec<Vec<f32>>> = embed_prototypes(taxonomy, encoder, Want::default())?
        .into_iter()
        .map(|s| {
            s.into_iter()
                .map(|e| e.embedding.expect(NEVER_EMPTY))
                .collect()
        })
        .collect();
    if let Some(c) = cache {
        c.store(&per_scenario);
    }
    Ok(per_scenario)
}

/// Two prototypes that the tokenizer turns into the same tokens are one to the model: it sets
/// aside more than the taxonomy's own check of case and spacing can know (BERT's drops
/// accents, and reads every character outside its vocabulary as one unknown token). In two
/// scenarios they would tie them on every story like them; in one, count twice.
fn refuse_prototypes_read_alike(taxonomy: &Taxonomy, name: &str, encoder: &Encoder) -> Result<()> {
    let mut seen: HashMap<Vec<u32>, (usize, usize)> = HashMap::new();
    let refuse = |problem: String| Error::Taxonomy {
        source_name: name.to_string(),
        line: None,
        column: None,
        problem,
    };
    // Named as `categories --prototypes` and `--explain` number them, and quoted short: a
    // prototype may be a long post.
    let named = |s: usize, n: usize| {
        let scenario = &taxonomy.scenarios[s];
        let words: Vec<&str> = scenario.prototypes[n].split_whitespace().collect();
        let quote = match words.len() > 12 {
            true => format!("{}…", words[..12].join(" ")),
            false => words.join(" "),
        };
        format!("{}#{} (\"{}\")", scenario.id, n + 1, printable(&quote))
    };
    for (s, scenario) in taxonomy.scenarios.iter().enumerate() {
        for (n, p) in scenario.prototypes.iter().enumerate() {
            let ids = encoder.tokenizer.encode_full(p)?;
            // Emoji or letters outside the vocabulary alone: the model reads nothing of it.
            if encoder.tokenizer.reads_nothing(&ids) {
                return Err(refuse(format!(
                    "the prototype {} has {NO_KNOWN_WORD}; write it in words",
                    named(s, n)
                )));
            }
            let Some((s0, n0)) = seen.insert(ids, (s, n)) else {
                continue;
            };
            return Err(refuse(format!(
                "the prototype {} is the same tokens to the model as {} (its tokenizer sets \
                 aside case, accents and spacing, and reads any character it does not know as \
                 one unknown token); give each prototype once, in the scenario it belongs to",
                named(s, n),
                named(s0, n0)
            )));
        }
    }
    Ok(())
}

/// The text classify and advise read: a placeholder (`N/A`, `-`) as the blank cell it stands
/// for.
fn story_text(text: &str) -> &str {
    match not_a_story(text) {
        Some(_) => "",
        None => text,
    }
}

/// Taxonomy validation refuses blank prototypes, so each one reaches the model.
const NEVER_EMPTY: &str = "prototypes are never empty";

/// Why a text that is not blank was left unembedded: the model would read only unknown tokens.
pub const NO_KNOWN_WORD: &str =
    "no word the model knows (only emoji, symbols, HTML tags, characters outside its \
     vocabulary, words of over 100 letters, or markers of the model's own such as [MASK])";

/// Every scenario's prototypes, embedded in batches of [`PROTOTYPE_BATCH`], per scenario.
fn embed_prototypes(
    taxonomy: &Taxonomy,
    encoder: &Encoder,
    want: Want,
) -> Result<Vec<Vec<Embedded>>> {
    let texts: Vec<&str> = taxonomy
        .scenarios
        .iter()
        .flat_map(|s| s.prototypes.iter().map(String::as_str))
        .collect();
    let embedded = encoder.embed_texts_batched(&texts, PROTOTYPE_BATCH, None, want)?;
    if let Some((text, _)) = texts
        .iter()
        .zip(&embedded)
        .find(|(_, e)| e.embedding.is_none())
    {
        let scenario = taxonomy
            .scenarios
            .iter()
            .find(|s| s.prototypes.iter().any(|p| p == text))
            .map_or("", |s| s.id.as_str());
        return Err(Error::Usage(format!(
            "the prototype \"{text}\" of scenario {scenario} has {NO_KNOWN_WORD}; write it in words"
        )));
    }
    let mut flat = embedded.into_iter();
    Ok(taxonomy
        .scenarios
        .iter()
        .map(|s| (&mut flat).take(s.prototypes.len()).collect())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_that_is_not_numbers_stops_the_run_naming_the_story() {
        let verdict = |score: f32, confidence: f32| Verdict {
            category: 0,
            confidence,
            runner_up: 1,
            margin: 0.1,
            scores: vec![0.5, score],
            also: None,
            nearest: None,
            relevance: 1.0,
            off_topic: false,
            evidence: None,
        };
        assert!(numbers_check(&verdict(0.4, 0.8), "story s1").is_ok());
        for bad in [
            verdict(f32::NAN, 0.8),
            verdict(0.4, f32::NAN),
            verdict(f32::INFINITY, 0.8),
        ] {
            let e = numbers_check(&bad, "story s2").unwrap_err().to_string();
            assert!(
                e.contains("story s2 got scores that are not numbers"),
                "{e}"
            );
        }
    }

    #[test]
    fn token_batches_fill_a_budget_of_padded_tokens() {
        let lens = [3, 3, 4, 5, 9, 20];
        let order: Vec<usize> = (0..lens.len()).collect();
        let batches = token_batches(&order, |j| lens[j], 12);
        // 3 items padded to 4 = 12; 5 alone (2 × 9 > 12); 9 alone; 20 over budget, alone.
        assert_eq!(batches, [&[0, 1, 2][..], &[3], &[4], &[5]]);
        let all: Vec<usize> = batches.concat();
        assert_eq!(all, order, "every item once, in order");
        assert!(token_batches(&[], |_| 1, 8).is_empty());
    }
}
