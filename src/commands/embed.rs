//! `failup embed`: sentence embeddings as JSON Lines, one per input row, in order.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use serde_json::json;

use super::resume;
use crate::cli::{EmbedArgs, LongText};
use failup::embed::Precision;
use failup::error::{Error, Result};
use failup::input::{printable, Columns, Source, Story, StoryReader};
use failup::pipeline::{Embedded, LoadedEncoder, Want};
use failup::record::Status;
use failup::shard::Shard;
use failup::sink::{Settings, Sink};

pub fn run(args: EmbedArgs) -> Result<()> {
    let source = Source::from_arg(&args.input);
    let shard = super::shard(args.shard.as_deref())?;
    let reader = open_input(&args, &source, shard)?;
    let mut options = super::engine_options(&args.model, true);
    options.long_text = long_text(&args).into();
    warn_of_inexact_precision(options.precision);
    warn_of_chunked_long_text(&args);
    if args.model.taxonomy.is_some() && crate::cli::typed("--taxonomy") {
        eprintln!(
            "note: embed writes the model's own vectors, which no taxonomy changes; --taxonomy \
             is not read"
        );
    }
    let engine = super::open_encoder(&options)?;
    // A stream can be neither resumed nor recorded, so it needs no settings.
    let settings = match failup::sink::is_stream(&args.output) {
        true => Settings::new(),
        false => settings(&args, &source, &reader, &engine, shard)?,
    };
    let resumed = resume::open_sink(&args.output, args.resume, &source, &settings)?;
    let done = resumed.rows;
    let mut job = Embedding {
        ids: super::IdWarnings::of(&reader),
        reader,
        sink: resumed.sink,
        args: &args,
        engine: &engine,
        settings: &settings,
        shard,
        warnings: RowWarnings::default(),
        blank_lines: super::BlankLineWarnings::default(),
        written: done,
    };
    if done > 0 {
        job.skip_done(&resumed.input_sha256)?;
    }
    let outcome = job.stream();
    job.blank_lines.tell_rest();
    job.warnings.tell_rest();
    job.ids.tell_repeats(done > 0);
    job.ids.tell_empty();
    if let Err(e) = outcome {
        return Err(job.stopped(e, done > 0, &source));
    }
    // embed is quiet when all is well, so an empty output would otherwise pass unremarked.
    if job.written == 0 && !args.quiet {
        let rows = no_rows(shard, &job.reader);
        eprintln!("note: {rows}, so {} holds no vectors", job.sink.name());
    }
    super::commit_output(job.sink, shard, (&source, &job.reader), &settings)
}

/// A run of embed in progress.
struct Embedding<'a> {
    args: &'a EmbedArgs,
    engine: &'a LoadedEncoder,
    settings: &'a Settings,
    shard: Option<Shard>,
    reader: StoryReader,
    sink: Sink,
    ids: super::IdWarnings,
    warnings: RowWarnings,
    blank_lines: super::BlankLineWarnings,
    /// Rows in the output, those a resumed run kept included.
    written: u64,
}

impl Embedding<'_> {
    /// Moves the reader past the rows a resumed run keeps, checking that they are the rows
    /// the partial output was made from (`digest`).
    fn skip_done(&mut self, digest: &str) -> Result<()> {
        let done = self.written;
        let ids = &mut self.ids;
        let skipped = self.reader.skip_seeing_ids(done, |id| ids.seen(id))?;
        resume::check_skipped(&self.reader, done, skipped, digest)?;
        self.reader.forget_blank_lines_above();
        if !self.args.quiet {
            eprintln!("resuming after row {done}");
        }
        Ok(())
    }

    /// Embeds the rest of the input chunk by chunk, each chunk's lines written and
    /// checkpointed, until it ends or Ctrl-C stops the run.
    fn stream(&mut self) -> Result<()> {
        let counter = self.reader.progress_counter();
        let at_once = resume::stopped_at_once(&self.sink);
        resume::stream_chunks(self.args.quiet, counter, at_once, Instant::now(), |stop| {
            let rows = self.next_chunk(stop)?;
            Ok(rows.map(|rows| (rows, self.written)))
        })
    }

    /// Reads, embeds, writes and checkpoints one chunk; the number of its rows, or None at
    /// the end of the input.
    fn next_chunk(&mut self, stop: &AtomicBool) -> Result<Option<u64>> {
        let chunk = self.reader.next_chunk(self.args.chunk_size as usize)?;
        self.blank_lines.tell(&self.reader);
        if chunk.is_empty() {
            return Ok(None);
        }
        let texts: Vec<&str> = chunk.iter().map(|s| s.text_to_read()).collect();
        // The whole story's embedding, at parity with the reference implementation, whatever
        // the classifier reads.
        let embedded = (self.engine.encoder).embed_texts_until(&texts, Want::default(), stop)?;
        let statuses: Vec<Status> = (chunk.iter().zip(&embedded))
            .map(|(story, e)| Status::of(story, e.embedding.is_some()))
            .collect();
        for (story, &status) in chunk.iter().zip(&statuses) {
            (self.warnings).tell(story, status, self.reader.name(), self.reader.headers());
            self.ids.see(&story.id, story.line);
        }
        let numbered = self.shard.is_some();
        write_lines(&mut self.sink, &chunk, &embedded, &statuses, numbered)?;
        self.written += chunk.len() as u64;
        let digest = self.reader.digest();
        self.sink.checkpoint(self.written, self.settings, &digest)?;
        Ok(Some(chunk.len() as u64))
    }

    /// The error a run stopped by `e` ends with. Interrupted, the checkpointed partial output
    /// stays for --resume and the user is told how; otherwise the output is left as
    /// `resume::after_failure` decides.
    fn stopped(mut self, e: Error, resumed: bool, source: &Source) -> Error {
        if !matches!(e, Error::Interrupted) {
            resume::after_failure(self.sink, &e, resumed, source);
            return e;
        }
        let name = self.sink.name();
        if let Err(flushing) = self.sink.flush() {
            return Error::io(&name, flushing);
        }
        let partial = self.sink.partial_path();
        eprintln!("{}", resume::interruption(partial, self.written));
        e
    }
}

/// The input's reader, on its shard, once the output's name has been checked against it.
fn open_input(args: &EmbedArgs, source: &Source, shard: Option<Shard>) -> Result<StoryReader> {
    let columns = Columns {
        text: args.columns.text_column.clone(),
        id: args.columns.id_column.clone(),
        ..Columns::default()
    };
    // Before the input is read: `> in.csv` has emptied it, and that is the mistake to tell.
    super::check_outputs(&[("-o", &args.output)], source, shard.is_some())?;
    let reads = [("--taxonomy", args.model.taxonomy.as_ref())];
    super::check_not_read(&[("-o", &args.output)], &reads, args.model.model.as_deref())?;
    if *source == Source::Stdin {
        super::prompt_if_stdin_is_a_terminal("the CSV, its header row first");
    }
    let mut reader = StoryReader::open(source, &columns, args.columns.dialect())?;
    if let Some(shard) = shard {
        reader.set_shard(shard);
    }
    let writes = "embed writes JSON lines (one object with its embedding per row)";
    let others = ["csv", "tsv", "json", "html", "htm", "md", "markdown"];
    super::refuse_a_misleading_name(&args.output, &others, writes, "jsonl")?;
    super::warn_if_unrecorded(&args.output, shard);
    Ok(reader)
}

/// Where the rows were when none was written: the shard's, or the file's.
fn no_rows(shard: Option<Shard>, reader: &StoryReader) -> String {
    match shard {
        Some(s) if reader.rows_read() > 0 => format!(
            "shard {}/{} of {} ({} in all) has no rows",
            s.index,
            s.count,
            reader.name(),
            match reader.rows_read() {
                1 => "1 row".to_string(),
                n => format!("{n} rows"),
            }
        ),
        _ => format!("{} has no rows below its header", reader.name()),
    }
}

/// embed's vectors are the reference's (whole story read in its first window) unless asked
/// otherwise; FAILUP_LONG_TEXT=chunk, set for classify, would change a long story's unseen.
fn warn_of_chunked_long_text(args: &EmbedArgs) {
    if long_text(args) == LongText::Chunk && !crate::cli::typed("--long-text") {
        eprintln!(
            "warning: FAILUP_LONG_TEXT=chunk (set in the environment) makes a long story's \
             vector the mean of its windows, not the reference's first window; give \
             --long-text truncate for those"
        );
    }
}

/// embed's vectors are exact unless asked otherwise; FAILUP_PRECISION, set for classify's
/// speed, would change them unseen.
fn warn_of_inexact_precision(precision: Option<Precision>) {
    match precision {
        Some(p) if p != Precision::Fp32 && !crate::cli::typed("--precision") => eprintln!(
            "warning: FAILUP_PRECISION={} (set in the environment) makes these vectors {0}, \
             not the exact fp32 ones; give --precision fp32 for those",
            p.name()
        ),
        _ => (),
    }
}

/// Rows that are not `ok`, told as classify tells them: the first few one by one (a quote
/// that never closes always, as it swallowed rows), then a count per status at the end.
#[derive(Default)]
struct RowWarnings {
    told: usize,
    counts: BTreeMap<&'static str, u64>,
}

impl RowWarnings {
    const ONE_BY_ONE: usize = 10;

    fn tell(&mut self, story: &Story, status: Status, file: &str, headers: &[String]) {
        let at = format!(
            "{file}:{}: row {} (id {})",
            story.line,
            story.row,
            printable(&story.id)
        );
        // Rows were lost into this one: said however many warnings came before, and said
        // once, in place of the ragged-row warning its status would give.
        let unclosed = story.unclosed_quote();
        if let Some(problem) = &unclosed {
            eprintln!("warning: {at}: {problem}; flagged status=malformed");
        }
        let cells = story.cell_problem();
        let made: String;
        let problem = match status {
            Status::Ok => None,
            Status::Malformed => {
                made = cells.unwrap_or_else(|| story.fields_against(headers.len()));
                Some(made.as_str())
            }
            Status::Empty => {
                Some("nothing to read (empty, or no word the model knows); embedding null")
            }
            Status::InvalidUtf8 => {
                made = format!(
                    "bytes that are not text {} replaced with U+FFFD",
                    story.invalid_utf8_place(headers).unwrap_or_default()
                );
                Some(made.as_str())
            }
            Status::TooLong => Some("text longer than 1 MiB; embedded from its start"),
        };
        let flagged = problem.map(|p| {
            *self.counts.entry(status.as_str()).or_default() += 1;
            format!("{p}; flagged status={}", status.as_str())
        });
        // A cut id or kept column leaves the status as it is, so it is told beside it.
        let told = match (flagged, story.cut_cells(headers)) {
            (Some(f), Some(cut)) => format!("{f}; {cut}"),
            (Some(f), None) => f,
            (None, Some(cut)) => {
                *self.counts.entry("ok with a cell cut").or_default() += 1;
                cut
            }
            (None, None) => return,
        };
        if self.told < Self::ONE_BY_ONE && unclosed.is_none() {
            eprintln!("warning: {at}: {told}");
        }
        self.told += 1;
    }

    fn tell_rest(&self) {
        if self.told > Self::ONE_BY_ONE {
            let counts: Vec<String> = self
                .counts
                .iter()
                .map(|(s, n)| format!("{n} {s}"))
                .collect();
            eprintln!(
                "warning: {} rows warned about in all ({}); their status is in each line",
                self.told,
                counts.join(", ")
            );
        }
    }
}

/// One JSON line per story: its id, token count, status and embedding (and its input row in a
/// shard).
fn write_lines(
    sink: &mut Sink,
    chunk: &[Story],
    embedded: &[Embedded],
    statuses: &[Status],
    row_numbers: bool,
) -> Result<()> {
    let name = sink.name();
    for ((story, e), status) in chunk.iter().zip(embedded).zip(statuses) {
        let mut line = json!({
            "id": story.id,
            "tokens": e.tokens,
            "truncated": e.truncated,
            "chunks": e.chunks,
            "status": status.as_str(),
            "embedding": e.embedding,
        });
        if row_numbers {
            line["row"] = json!(story.row);
        }
        serde_json::to_writer(&mut *sink, &line)
            .map_err(std::io::Error::from)
            .and_then(|_| sink.write_all(b"\n"))
            .map_err(|e| Error::io(&name, e))?;
    }
    Ok(())
}

/// The input and every setting that shapes the output's bytes, so `--resume` never mixes
/// lines from different runs.
fn settings(
    args: &EmbedArgs,
    source: &Source,
    reader: &StoryReader,
    engine: &LoadedEncoder,
    shard: Option<Shard>,
) -> Result<Settings> {
    let mut settings = embedding_settings(args, reader, engine)?;
    settings.insert("input".into(), resume::input_identity(source)?);
    // As resolved: `auto` under another task index is another shard.
    let shard = shard.map_or("(none)".into(), |s| format!("{}/{}", s.index, s.count));
    settings.insert("--shard".into(), shard);
    Ok(settings)
}

/// `--long-text`, truncate by default: the reference reads a story's first window alone, and
/// embed's vectors are to match it.
fn long_text(args: &EmbedArgs) -> LongText {
    args.model.long_text.unwrap_or(LongText::Truncate)
}

/// The settings that shape the embeddings' bytes.
fn embedding_settings(
    args: &EmbedArgs,
    reader: &StoryReader,
    engine: &LoadedEncoder,
) -> Result<Settings> {
    let precision = engine.precision;
    let pairs = [
        ("failup version", env!("CARGO_PKG_VERSION").to_string()),
        ("command", "embed".to_string()),
        (
            "--text-column",
            reader.headers()[reader.text_index()].clone(),
        ),
        ("--precision", precision.name().to_string()),
        (failup::sink::BACKEND_SETTING, engine.kernel().to_string()),
        ("--long-text", super::value_name(long_text(args))),
        ("--encoding", super::value_name(args.columns.encoding)),
        (
            failup::sink::MODEL_SETTING,
            failup::profile::weights_sha256(&engine.model, precision)?,
        ),
        // The folder's configs, beside its weights: window, case and pooling.
        ("--model (how it reads)", engine.model.reading()),
    ];
    Ok(resume::with_input_settings(pairs, reader))
}
