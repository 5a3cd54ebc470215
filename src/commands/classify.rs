//! `failup classify`: stream a CSV of stories through the classifier.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use super::resume;
use crate::cli::{ClassifyArgs, InputEncoding};
use failup::error::{Error, Result};
use failup::input::{printable, Source, Story, StoryReader};
use failup::output::{RowWriter, WriterOptions};
use failup::pipeline::{Engine, NO_KNOWN_WORD};
use failup::record::{Classified, Status};
use failup::report::reader::ClassifiedReader;
use failup::report::{
    self, partial, partial::PartialSummary, Reading, ReportRow, SummaryBuilder, TaxonomyInfo,
};
use failup::shard::Shard;
use failup::sink::{Settings, Sink};
use failup::taxonomy::Taxonomy;

/// Warnings printed one by one before they are only counted.
const MAX_ROW_WARNINGS: usize = 10;

pub fn run(args: ClassifyArgs) -> Result<()> {
    let source = Source::from_arg(&args.input);
    let shard = super::shard(args.shard.as_deref())?;
    check_arguments(&args, &source, shard)?;
    let reader = open_reader(&args, &source, shard)?;
    let engine = super::load_engine(&args.model, &args.fewshot)?;
    // A stream cannot be resumed, so without a summary it needs no settings (and skips hashing
    // the model).
    let settings = if failup::sink::is_stream(&args.output) && args.summary_out.is_none() {
        Settings::new()
    } else {
        resume_settings(&args, &source, &reader, &engine, shard)?
    };
    let resumed = resume::open_sink(&args.output, args.resume, &source, &settings)?;
    let done = resumed.rows;
    let partial = resumed.sink.partial_path().map(Path::to_path_buf);
    let mut job = Classifying {
        report: new_report(&args, &reader, &engine)?,
        writer: row_writer(&args, resumed.sink, &reader, &engine, done == 0, shard)?,
        tally: Tally::new(
            engine.taxonomy().scenarios.len(),
            super::IdWarnings::of(&reader),
        ),
        written: done,
        reader,
        args: &args,
        engine: &engine,
        settings: &settings,
    };
    if done > 0 {
        job.skip_done(&resumed.input_sha256, partial.as_deref())?;
    }
    let start = Instant::now();
    if let Err(e) = job.stream(start) {
        return Err(job.stopped(e, done > 0, &source));
    }
    let cut_short = job.summaries_first(&source, shard, partial.as_deref())?;
    let Classifying {
        writer,
        tally,
        reader,
        ..
    } = job;
    super::commit_output(writer.finish()?, shard, (&source, &reader), &settings)?;
    tally.warn_rest();
    suggest_an_encoding(&args, &reader, tally.invalid_utf8);
    if let Some(e) = cut_short {
        return Err(e);
    }
    if !args.quiet {
        eprint!(
            "{}",
            tally.summary(engine.taxonomy(), start.elapsed().as_secs_f64())
        );
    }
    Ok(())
}

/// The summary a run builds for `--report` and `--summary-out`, with what its header names.
type Report = (SummaryBuilder, TaxonomyInfo, Reading);

/// A run in progress: the input read so far, the rows written, and what they add up to.
struct Classifying<'a> {
    args: &'a ClassifyArgs,
    engine: &'a Engine,
    settings: &'a Settings,
    reader: StoryReader,
    writer: RowWriter<Sink>,
    tally: Tally,
    report: Option<Report>,
    /// Rows in the output, those a resumed run kept included.
    written: u64,
}

impl Classifying<'_> {
    /// Moves the reader past the rows a resumed run keeps (`self.written`), checking that
    /// they are the rows the partial output was made from (`digest`). With a report, the
    /// partial output's rows are fed to it on the way; their ids go to the tally, which tells
    /// the rows read after them that repeat one.
    fn skip_done(&mut self, digest: &str, partial: Option<&Path>) -> Result<()> {
        let done = self.written;
        let builder = self.report.as_mut().map(|(builder, _, _)| builder);
        let skipped = match partial.zip(builder) {
            Some((partial, builder)) => {
                let kept = (partial, self.args.excel_safe);
                let (reader, tally) = (&mut self.reader, &mut self.tally);
                replay_kept_rows(reader, done, kept, self.engine, builder, tally)?
            }
            None => {
                let ids = &mut self.tally.ids;
                self.reader.skip_seeing_ids(done, |id| ids.seen(id))?
            }
        };
        self.reader.forget_blank_lines_above();
        resume::check_skipped(&self.reader, done, skipped, digest)?;
        self.tally.kept = done;
        if !self.args.quiet {
            eprintln!("resuming after row {done}");
        }
        Ok(())
    }

    /// Classifies the rest of the input chunk by chunk, each chunk's rows written and
    /// checkpointed, until it ends or Ctrl-C stops the run.
    fn stream(&mut self, start: Instant) -> Result<()> {
        let counter = self.reader.progress_counter();
        let at_once = resume::stopped_at_once(self.writer.get_mut());
        resume::stream_chunks(self.args.quiet, counter, at_once, start, |stop| {
            let rows = self.next_chunk(stop)?;
            Ok(rows.map(|rows| (rows, self.written)))
        })
    }

    /// Reads, classifies, writes and checkpoints one chunk; the number of its rows, or None
    /// at the end of the input.
    fn next_chunk(&mut self, stop: &AtomicBool) -> Result<Option<u64>> {
        let chunk = self.reader.next_chunk(self.args.chunk_size as usize)?;
        self.tally.blank_lines.tell(&self.reader);
        if chunk.is_empty() {
            return Ok(None);
        }
        if self.args.strict {
            refuse_malformed(&chunk, &self.reader)?;
        }
        let rows = self.engine.classify_chunk_until(chunk, stop)?;
        for row in &rows {
            self.writer.write(row, self.engine.taxonomy())?;
            self.tally
                .add(row, self.reader.name(), self.reader.headers());
            if let Some((builder, _, _)) = self.report.as_mut() {
                builder.add(report_row(row, self.engine.taxonomy(), self.args.explain));
            }
        }
        self.written += rows.len() as u64;
        let digest = self.reader.digest();
        self.writer
            .get_mut()
            .checkpoint(self.written, self.settings, &digest)?;
        Ok(Some(rows.len() as u64))
    }

    /// The error a run stopped by `e` ends with. Interrupted, the checkpointed partial output
    /// stays for --resume and the user is told how; otherwise the output is left as
    /// `resume::after_failure` decides.
    fn stopped(self, e: Error, resumed: bool, source: &Source) -> Error {
        if !matches!(e, Error::Interrupted) {
            resume::after_failure(self.writer.abandon(), &e, resumed, source);
            return unwritten_summaries(e, self.args);
        }
        self.tally.warn_rest();
        match self.writer.finish() {
            Ok(sink) => {
                eprintln!(
                    "{}",
                    resume::interruption(sink.partial_path(), self.written)
                );
                e
            }
            Err(finishing) => finishing,
        }
    }

    /// Writes the summaries, before the rows go in place: once the rows are in place the run
    /// is done, and a crash between the two would leave rows without their report and nothing
    /// to resume. A reader of a summary on standard output that stopped reading it made its
    /// choice, as with rows (`| head`): that error is returned to end the run with once the
    /// complete rows are in place.
    fn summaries_first(
        &mut self,
        source: &Source,
        shard: Option<Shard>,
        partial: Option<&Path>,
    ) -> Result<Option<Error>> {
        let Some(report) = self.report.take() else {
            return Ok(None);
        };
        let sources = (source, &self.reader);
        match write_summaries(
            report,
            self.args,
            sources,
            self.engine,
            shard,
            self.settings,
        ) {
            Ok(()) => Ok(None),
            Err(e) if e.is_broken_pipe() => Ok(Some(e)),
            Err(e) => {
                if let Some(partial) = partial {
                    let owed = match (&self.args.summary_out, &self.args.report) {
                        (Some(_), Some(_)) => "the summary and report",
                        (Some(_), None) => "the summary",
                        _ => "the report",
                    };
                    let note = rows_without_their_report(partial, self.written, owed);
                    eprintln!("{note}");
                }
                Err(e)
            }
        }
    }
}

/// The writer of the output rows: the header first unless a resumed file has it already,
/// and a row number first in a shard.
fn row_writer(
    args: &ClassifyArgs,
    sink: Sink,
    reader: &StoryReader,
    engine: &Engine,
    header: bool,
    shard: Option<Shard>,
) -> Result<RowWriter<Sink>> {
    let sink_name = sink.name();
    RowWriter::new(
        sink,
        args.rows_format().into(),
        &sink_name,
        engine.taxonomy(),
        WriterOptions {
            kept: reader.kept_names(),
            excel_safe: args.excel_safe,
            header,
            explain: args.explain,
            row_numbers: shard.is_some(),
        },
    )
}

/// A classified row as the report counts it, with its evidence under `--explain`.
fn report_row(row: &Classified, taxonomy: &Taxonomy, explain: bool) -> report::ReportRow {
    report::ReportRow::from_classified(
        row,
        taxonomy,
        Some(&row.story.text),
        explain.then(|| failup::output::evidence(row)).flatten(),
        row.story.group.as_deref(),
    )
}

/// What to do when the rows are complete and their summary or report (`owed`) could not be
/// written.
fn rows_without_their_report(partial: &Path, written: u64, owed: &str) -> String {
    format!(
        "note: all {written} rows are complete in {}; once {owed} can be written, run the \
         same command with --resume to write {} and finish",
        partial.display(),
        if owed.contains(" and ") { "them" } else { "it" }
    )
}

/// What a warning says of `row`, if anything is wrong with it: its status's reason, and any
/// cell cut at 1 MiB (which leaves the status as it is).
fn row_problem(row: &Classified, headers: &[String]) -> Option<String> {
    let problem = match row.status {
        Status::Ok => None,
        Status::Empty => {
            let text = &row.story.text;
            let why = if failup::input::is_blank(text) {
                "empty text"
            } else {
                failup::input::not_a_story(text).unwrap_or(NO_KNOWN_WORD)
            };
            Some(format!("{why}; written with status=empty and no category"))
        }
        Status::Malformed => Some(malformed_problem(row, headers)),
        Status::InvalidUtf8 => Some(format!(
            "bytes that are not text (invalid UTF-8, NUL or broken UTF-16) {} replaced with \
             U+FFFD; classified and flagged status=invalid_utf8",
            row.story.invalid_utf8_place(headers).unwrap_or_default()
        )),
        Status::TooLong => Some(
            "text longer than 1 MiB; classified from its start and flagged status=too_long".into(),
        ),
    };
    match (problem, row.story.cut_cells(headers)) {
        (Some(p), Some(cut)) => Some(format!("{p}; {cut}")),
        (p, cut) => p.or(cut),
    }
}

/// Why a malformed row is flagged, and whether it was still classified: its cells' problem
/// (quotes, a header row), or its count of fields against the header's.
fn malformed_problem(row: &Classified, headers: &[String]) -> String {
    let done = match row.verdict.is_some() {
        true => "classified",
        false => "not classified",
    };
    if let Some(cells) = row.story.cell_problem() {
        return format!("{cells}; {done} and flagged status=malformed");
    }
    let story = &row.story;
    let fields = story.fields_against(headers.len());
    let cut = match (story.rejoined, story.overflows) {
        (true, _) => {
            ": the cells past the text, the last column, were read back into it; a story \
             that holds the delimiter belongs in double quotes"
        }
        (false, true) => {
            ": most often a story that holds the delimiter, cut there, with the cells after \
             it shifted; put such a story in double quotes"
        }
        (false, false) => "",
    };
    match row.verdict.is_some() {
        true => format!("{fields}{cut}; classified and flagged status=malformed"),
        false => format!(
            "{fields}, and its text cell is missing or empty; flagged status=malformed, not \
             classified"
        ),
    }
}

/// Every refusal that can be told from the arguments alone, before the input is read.
fn check_arguments(args: &ClassifyArgs, source: &Source, shard: Option<Shard>) -> Result<()> {
    if args.group_by.is_some() && args.report.is_none() && args.summary_out.is_none() {
        return Err(Error::Usage(
            "--group-by breaks down a report: add --report FILE or --summary-out FILE".into(),
        ));
    }
    // Every file the run will write, checked before the work rather than after it.
    let outputs: Vec<(&str, &Path)> = [
        ("-o", Some(&args.output)),
        ("--report", args.report.as_ref()),
        ("--summary-out", args.summary_out.as_ref()),
    ]
    .into_iter()
    .filter_map(|(flag, path)| Some((flag, path?.as_path())))
    .collect();
    // Before the input is read: `> in.csv` has emptied it, and that is the mistake to tell.
    super::check_outputs(&outputs, source, shard.is_some())?;
    let reads = [
        ("--examples", args.fewshot.examples.as_ref()),
        ("--profile", args.fewshot.profile.as_ref()),
        ("--taxonomy", args.model.taxonomy.as_ref()),
    ];
    super::check_not_read(&outputs, &reads, args.model.model.as_deref())?;
    if args.format.is_none() {
        super::refuse_a_misnamed_rows_output(&args.output)?;
    }
    if let Some(summary) = args.summary_out.as_ref() {
        super::refuse_to_replace_other_than_a_summary("--summary-out", summary, "the run")?;
        let json = "a summary is one JSON object";
        super::refuse_a_name_for("--summary-out", summary, &super::TABLES, json, "json")?;
    }
    if let Some(report) = args.report.as_ref() {
        if args.report_format.is_none() {
            super::refuse_a_report_under_a_table_name("--report", report, "--report-format")?;
        }
        // Told before the work, not after it, when the report is stamped.
        failup::report::source_date_epoch()?;
    }
    if args.excel_safe && args.rows_format() == crate::cli::Format::Jsonl {
        eprintln!(
            "note: --excel-safe guards the cells of CSV output, which a spreadsheet may read as \
             formulas; JSON Lines is written as it is"
        );
    }
    Ok(())
}

/// The input's reader, its header read, before the slower model load, so a wrong column
/// fails fast.
fn open_reader(args: &ClassifyArgs, source: &Source, shard: Option<Shard>) -> Result<StoryReader> {
    if *source == Source::Stdin {
        super::prompt_if_stdin_is_a_terminal("the CSV, its header row first");
    }
    let mut reader = StoryReader::open(source, &args.columns(), args.columns.dialect())?;
    if let Some(shard) = shard {
        reader.set_shard(shard);
    }
    super::warn_if_unrecorded(&args.output, shard);
    if let (Some(shard), Some(report)) = (shard, &args.report) {
        eprintln!(
            "warning: {} will describe shard {}/{} alone; for the whole input, write \
             --summary-out on every shard, then `failup merge` the summaries and `failup report` \
             the result",
            report.display(),
            shard.index,
            shard.count
        );
    }
    Ok(reader)
}

/// Suggests `--encoding windows-1252` when rows of a file read as UTF-8 held other bytes. A
/// UTF-16 file's bad bytes are broken sequences, which no --encoding mends.
fn suggest_an_encoding(args: &ClassifyArgs, reader: &StoryReader, invalid_utf8: u64) {
    let utf8_input =
        matches!(args.columns.encoding, InputEncoding::Utf8) && !reader.decoded_utf16();
    if invalid_utf8 > 0 && utf8_input {
        eprintln!(
            "note: {} held bytes that are not UTF-8 (status=invalid_utf8); if {} is a legacy \
             export (Excel on Windows, say), run again with --encoding windows-1252",
            match invalid_utf8 {
                1 => "1 row".to_string(),
                n => format!("{n} rows"),
            },
            reader.name()
        );
    }
}

/// A reader that stops early (`| head`) ends the run quietly, but not when a report of the
/// whole input was asked for: the run stopped before it, so say so and fail.
fn unwritten_summaries(e: Error, args: &ClassifyArgs) -> Error {
    let asked: Vec<String> = [
        ("--report", &args.report),
        ("--summary-out", &args.summary_out),
    ]
    .into_iter()
    .filter_map(|(flag, path)| Some(format!("{flag} {}", path.as_ref()?.display())))
    .collect();
    if !e.is_broken_pipe() || asked.is_empty() {
        return e;
    }
    let output = match args.output.to_str() {
        Some("-") => "standard output".to_string(),
        _ => args.output.display().to_string(),
    };
    Error::Usage(format!(
        "the reader of {output} closed it before the last row, so the run stopped before \
         writing {}; to get it, write the rows to a file (-o FILE) or read them to the end",
        asked.join(" and ")
    ))
}

/// The summary under construction, when `--report` or `--summary-out` asks for one.
fn new_report(
    args: &ClassifyArgs,
    reader: &StoryReader,
    engine: &Engine,
) -> Result<Option<Report>> {
    if args.report.is_none() && args.summary_out.is_none() {
        return Ok(None);
    }
    let info = TaxonomyInfo::new(
        args.model.taxonomy.as_deref(),
        engine.taxonomy_file_sha256.clone(),
    );
    let options = report::SummaryOptions {
        group_by: args.group_by.clone(),
        text_column: Some(reader.headers()[reader.text_index()].clone()),
        ..Default::default()
    };
    Ok(Some((
        SummaryBuilder::new(engine.taxonomy(), options),
        info,
        reading(args, engine)?,
    )))
}

/// `--strict`: the first ragged row, or row whose cells are misread (see
/// `Story::cell_problem`), is an error.
fn refuse_malformed(chunk: &[Story], reader: &StoryReader) -> Result<()> {
    let Some(bad) = chunk.iter().find(|s| s.is_malformed()) else {
        return Ok(());
    };
    let problem = if let Some(cells) = bad.cell_problem() {
        format!("row {}: {cells} (--strict rejects it)", bad.row)
    } else {
        format!(
            "row {} {} (--strict rejects ragged rows; without it the row is classified and \
             flagged status=malformed)",
            bad.row,
            bad.fields_against(reader.headers().len())
        )
    };
    Err(Error::Input {
        file: reader.name().to_string(),
        line: Some(bad.line),
        column: None,
        problem,
    })
}

/// Writes the finished run's `--summary-out` and `--report`.
fn write_summaries(
    (builder, info, reading): Report,
    args: &ClassifyArgs,
    (source, reader): (&Source, &StoryReader),
    engine: &Engine,
    shard: Option<Shard>,
    settings: &Settings,
) -> Result<()> {
    let mut cut_short = None;
    let (builder, info) = match &args.summary_out {
        Some(path) => {
            let partial = PartialSummary {
                kind: partial::KIND.into(),
                settings: summary_settings(settings, reader),
                shard_count: shard.map_or(1, |s| s.count),
                shards: vec![shard.map_or(0, |s| s.index)],
                model: engine.model.name(),
                reading: Some(reading.clone()),
                taxonomy: info,
                input: report::input_display_name(&args.input),
                builder,
            };
            match partial.write("--summary-out", path) {
                // Standard output's reader stopped early: the report file is still owed.
                Err(e) if e.is_broken_pipe() => cut_short = Some(e),
                other => other?,
            }
            (partial.builder, partial.taxonomy)
        }
        None => (builder, info),
    };
    let Some(path) = &args.report else {
        return cut_short.map_or(Ok(()), Err);
    };
    let header = report::header(
        engine.model.name(),
        Some(reading),
        info,
        report::input_display_name(&args.input),
    );
    let format = args
        .report_format
        .map(report::Format::from)
        .or_else(|| report::Format::from_path(path))
        .unwrap_or(report::Format::Text);
    let summary = builder.finish(header);
    super::warn_of_look_alike_groups(&summary);
    report::write_report(
        &summary,
        ("--report", path),
        format,
        report::ColorChoice::Auto,
        Some(source),
    )?;
    cut_short.map_or(Ok(()), Err)
}

/// Skips the `done` rows a resumed run keeps, feeding them to its report as an uninterrupted
/// run would have: each row's verdict as the partial output wrote it (the figures a report
/// uses are the written, rounded ones), and its text and group from the input, which the
/// output need not carry. `excel_safe` tells that the partial output's evidence cells carry
/// the guard, which the report of an uninterrupted run does not show. Returns the number of
/// input rows skipped.
fn replay_kept_rows(
    reader: &mut StoryReader,
    done: u64,
    (partial, excel_safe): (&Path, bool),
    engine: &Engine,
    builder: &mut SummaryBuilder,
    tally: &mut Tally,
) -> Result<u64> {
    let mut kept = ClassifiedReader::open(
        &Source::File(partial.to_path_buf()),
        engine.taxonomy(),
        None,
        None,
    )?;
    let mut replayed = 0;
    while replayed < done {
        let chunk = reader.next_chunk((done - replayed).min(1024) as usize)?;
        if chunk.is_empty() {
            break;
        }
        for story in chunk {
            let Some(row) = kept.next_row()? else {
                return Err(Error::Usage(format!(
                    "{} holds fewer rows than its checkpoint says; delete it and run without \
                     --resume",
                    partial.display()
                )));
            };
            tally.ids.seen(&story.id);
            let evidence = match (excel_safe, row.evidence) {
                (true, Some(e)) => Some(unguarded_evidence(engine, &story, e)?),
                (_, evidence) => evidence,
            };
            builder.add(ReportRow {
                evidence,
                row: story.row,
                id: story.id,
                text: Some(story.text),
                group: story.group,
                ..row
            });
            replayed += 1;
        }
    }
    Ok(replayed)
}

/// The sentence an `--excel-safe` evidence cell stands for. Where the cell alone cannot tell
/// (the story holds both `=x` and `'=x`, both written `'=x`), the story is read again, as the
/// run read it, for its own evidence.
fn unguarded_evidence(engine: &Engine, story: &Story, written: String) -> Result<String> {
    let text = story.text_to_read();
    if let Some(sentence) = failup::output::unguarded_evidence(text, written.clone()) {
        return Ok(sentence);
    }
    let verdict = engine.classify_text(text)?.map(|(_, v)| v);
    let sentences = failup::sentences::split(text);
    Ok(verdict
        .and_then(|v| sentences.get(v.evidence?).cloned())
        .unwrap_or(written))
}

/// The settings a report's header names beside the model and taxonomy, taken before the run
/// so that a file replaced during it is not hashed in place of the one read.
fn reading(args: &ClassifyArgs, engine: &Engine) -> Result<Reading> {
    let hash = |f: &Option<std::path::PathBuf>| f.as_deref().map(failup::profile::file_sha256);
    Ok(Reading {
        precision: engine.precision.name().to_string(),
        backend: engine.kernel().to_string(),
        long_text: engine.encoder().long_text().name().to_string(),
        profile_sha256: hash(&args.fewshot.profile).transpose()?,
        examples_sha256: hash(&args.fewshot.examples).transpose()?,
    })
}

/// The input and every setting that shapes the output's bytes, so `--resume` never mixes rows
/// from different runs and can name the setting that changed. The pace (chunk and batch
/// sizes, threads) is left out: it changes no row. Values are written out one by
/// one (not derived from `Debug`), so they stay the same from one failup build to the next.
fn resume_settings(
    args: &ClassifyArgs,
    source: &Source,
    reader: &StoryReader,
    engine: &Engine,
    shard: Option<Shard>,
) -> Result<Settings> {
    let input = resume::input_identity(source)?;
    let precision = engine.precision;
    let optional = |v: Option<&str>| v.unwrap_or("(default)").to_string();
    let file_hash = |f: &Option<std::path::PathBuf>| -> Result<String> {
        f.as_deref()
            .map_or(Ok("(none)".into()), failup::profile::file_sha256)
    };
    let pairs = [
        ("failup version", env!("CARGO_PKG_VERSION").to_string()),
        ("input", input),
        ("--format", super::value_name(args.rows_format())),
        (
            "--text-column",
            reader.headers()[reader.text_index()].clone(),
        ),
        ("kept columns", reader.kept_names().join(",")),
        ("--encoding", super::value_name(args.columns.encoding)),
        ("--strict", args.strict.to_string()),
        ("--excel-safe", args.excel_safe.to_string()),
        ("--explain", args.explain.to_string()),
        // As resolved: `auto` under another task index is another shard.
        (
            "--shard",
            optional(shard.map(|s| format!("{}/{}", s.index, s.count)).as_deref()),
        ),
        ("--precision", precision.name().to_string()),
        (failup::sink::BACKEND_SETTING, engine.kernel().to_string()),
        (
            "--long-text",
            engine.encoder().long_text().name().to_string(),
        ),
        (
            failup::sink::MODEL_SETTING,
            failup::profile::weights_sha256(&engine.model, precision)?,
        ),
        // The folder's configs, beside its weights: window, case and pooling.
        ("--model (how it reads)", engine.model.reading()),
        // As its file reads, before a --profile's calibration (whose own hash is below), so
        // `report` can tell a summary's taxonomy from the file alone.
        (partial::TAXONOMY_SETTING, engine.taxonomy_sha256.clone()),
        ("--examples (SHA-256)", file_hash(&args.fewshot.examples)?),
        ("--profile (SHA-256)", file_hash(&args.fewshot.profile)?),
    ];
    Ok(resume::with_input_settings(pairs, reader))
}

/// What parts of one run share, so `failup merge` can refuse parts of different runs: the
/// resume settings, less those that only shape the row file or split the work (`--explain`
/// stays: a report quotes the evidence it writes). The input is
/// named by its content (row count and SHA-256, as shard records name it), not by its path and
/// time: the same file copied to another machine merges, another file through a pipe does not.
fn summary_settings(resume: &Settings, reader: &StoryReader) -> Settings {
    let mut settings = resume.clone();
    let input = partial::input_identity(reader.rows_read(), &reader.input_digest());
    settings.insert("input".into(), input);
    for key in ["--shard", "--format", "--excel-safe", "kept columns"] {
        settings.remove(key);
    }
    settings
}

/// Counts for the closing summary, and warnings about rows that needed care.
struct Tally {
    /// Rows an interrupted run wrote, which this resumed run kept: not counted below.
    kept: u64,
    rows: u64,
    per_category: Vec<u64>,
    empty: u64,
    malformed: u64,
    invalid_utf8: u64,
    too_long: u64,
    truncated: u64,
    warned: usize,
    /// Rows past the warnings' cap whose only problem is a cell cut at 1 MiB: status ok.
    cut_only_untold: usize,
    blank_lines: super::BlankLineWarnings,
    ids: super::IdWarnings,
    /// Rows that read like no prototype (off-topic), and the line of the first.
    off_topic: u64,
    first_off_topic: u64,
}

impl Tally {
    fn new(categories: usize, ids: super::IdWarnings) -> Tally {
        Tally {
            kept: 0,
            rows: 0,
            per_category: vec![0; categories],
            empty: 0,
            malformed: 0,
            invalid_utf8: 0,
            too_long: 0,
            truncated: 0,
            warned: 0,
            cut_only_untold: 0,
            blank_lines: Default::default(),
            ids,
            off_topic: 0,
            first_off_topic: 0,
        }
    }

    fn add(&mut self, row: &Classified, file: &str, headers: &[String]) {
        self.rows += 1;
        if let Some(v) = &row.verdict {
            self.per_category[v.category] += 1;
            if v.off_topic {
                if self.off_topic == 0 {
                    self.first_off_topic = row.story.line;
                }
                self.off_topic += 1;
            }
        }
        self.truncated += row.truncated as u64;
        match row.status {
            Status::Ok => {}
            Status::Empty => self.empty += 1,
            Status::Malformed => self.malformed += 1,
            Status::InvalidUtf8 => self.invalid_utf8 += 1,
            Status::TooLong => self.too_long += 1,
        }
        let problem = row_problem(row, headers);
        if let Some(unclosed) = row.story.unclosed_quote() {
            // Rows were lost into this one: said however many warnings came before.
            eprintln!(
                "warning: {file}:{}: row {} (id {}): {unclosed}; flagged status=malformed",
                row.story.line,
                row.story.row,
                printable(&row.story.id)
            );
        } else if let Some(problem) = problem {
            if self.warned < MAX_ROW_WARNINGS {
                eprintln!(
                    "warning: {file}:{}: row {} (id {}): {problem}",
                    row.story.line,
                    row.story.row,
                    printable(&row.story.id)
                );
            } else if row.status == Status::Ok {
                self.cut_only_untold += 1;
            }
            self.warned += 1;
        }
        self.ids.see(&row.story.id, row.story.line);
    }

    fn warn_rest(&self) {
        let untold = self.warned.saturating_sub(MAX_ROW_WARNINGS);
        let flagged = untold - self.cut_only_untold;
        if flagged > 0 {
            eprintln!("warning: {flagged} more rows flagged (see the status column)");
        }
        if self.cut_only_untold > 0 {
            eprintln!(
                "warning: {} more rows with an id or kept column cut at 1 MiB (status ok)",
                self.cut_only_untold
            );
        }
        self.blank_lines.tell_rest();
        self.ids.tell_repeats(self.kept > 0);
        if self.off_topic > 0 {
            eprintln!(
                "warning: {} like none of the scenarios' prototypes ({}{}): off-topic, or in a \
                 language the model does not read; written as other (--explain shows each \
                 row's relevance; min_relevance = -1 in a --taxonomy file keeps their \
                 scenarios)",
                match self.off_topic {
                    1 => "1 row reads".to_string(),
                    n => format!("{n} rows read"),
                },
                match self.off_topic {
                    1 => format!("line {}", self.first_off_topic),
                    _ => format!("the first at line {}", self.first_off_topic),
                },
                match self.kept {
                    0 => "",
                    _ => ", of the rows since the resume",
                }
            );
        }
        self.ids.tell_empty();
    }

    fn summary(&self, taxonomy: &Taxonomy, elapsed_s: f64) -> String {
        let classified: u64 = self.per_category.iter().sum();
        let mut s = format!(
            "{} row{} in {elapsed_s:.1} s ({:.1} rows/s): {classified} classified, {} empty",
            self.rows,
            if self.rows == 1 { "" } else { "s" },
            self.rows as f64 / elapsed_s.max(1e-9),
            self.empty
        );
        // Every row is classified, empty, or malformed past reading; flags are on top.
        let unread = self.rows - classified - self.empty;
        if unread > 0 {
            s += &format!(", {unread} errored (malformed, not classified)");
        }
        let flagged_malformed = self.malformed - unread;
        if flagged_malformed + self.invalid_utf8 + self.too_long > 0 {
            s += &format!(
                "; of those classified, flagged: {flagged_malformed} malformed, {} invalid \
                 UTF-8, {} too long",
                self.invalid_utf8, self.too_long
            );
        }
        if self.truncated > 0 {
            s += &format!(", {} truncated to the model's window", self.truncated);
        }
        let blank = self.blank_lines.count;
        if blank > 0 {
            let plural = if blank == 1 { "" } else { "s" };
            s += &format!(" ({blank} blank line{plural} passed over)");
        }
        s.push('\n');
        if self.kept > 0 {
            s += &format!(
                "  (this run's rows alone: the {} an interrupted run wrote come first in the \
                 output, {} rows in all; failup report on it counts them all)\n",
                self.kept,
                self.kept + self.rows
            );
        }
        for (scenario, &n) in taxonomy.scenarios.iter().zip(&self.per_category) {
            let share = 100.0 * n as f64 / (classified.max(1)) as f64;
            s += &format!("  {:<14} {n:>8}  {share:5.1}%\n", scenario.id);
        }
        s
    }
}
