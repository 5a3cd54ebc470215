//! `failup classify`: stream a CSV of stories through the classifier.

use std::collections::HashSet;
use std::time::Instant;

use crate::cli::ClassifyArgs;
use crate::error::Result;
use crate::input::{Source, StoryReader};
use crate::output::RowWriter;
use crate::pipeline::{Classified, Engine, Status, CHUNK_SIZE};
use crate::progress::Progress;
use crate::sink::Sink;
use crate::taxonomy::Taxonomy;

/// Warnings printed one by one before they are only counted.
const MAX_ROW_WARNINGS: usize = 10;

pub fn run(args: ClassifyArgs) -> Result<()> {
    let source = Source::from_arg(&args.input);
    // Check the input's header before the slower model load, so a wrong column fails fast.
    let mut reader = StoryReader::open(&source, &args.columns())?;
    let engine = Engine::load(&args.model.engine_options())?;
    let sink = Sink::open(&args.output, Some(&source))?;
    let sink_name = sink.name();
    let mut writer = RowWriter::new(
        sink,
        args.format,
        &sink_name,
        engine.taxonomy(),
        reader.kept_names(),
    )?;
    let (bytes, total) = reader.progress_counter();
    let mut progress = Progress::new(args.quiet, bytes, total);
    let mut tally = Tally::new(engine.taxonomy().scenarios.len());
    let start = Instant::now();
    loop {
        let chunk = reader.next_chunk(CHUNK_SIZE)?;
        if chunk.is_empty() {
            break;
        }
        let rows = engine.classify_chunk(chunk)?;
        for row in &rows {
            writer.write(row, engine.taxonomy())?;
            tally.add(row, reader.name());
        }
        progress.add_rows(rows.len() as u64, start.elapsed().as_secs_f64());
    }
    progress.finish();
    writer.finish()?.commit()?;
    tally.warn_rest();
    if !args.quiet {
        eprint!(
            "{}",
            tally.summary(engine.taxonomy(), start.elapsed().as_secs_f64())
        );
    }
    Ok(())
}

/// Counts for the closing summary, and warnings about rows that needed care.
struct Tally {
    rows: u64,
    per_category: Vec<u64>,
    empty: u64,
    malformed: u64,
    invalid_utf8: u64,
    truncated: u64,
    warned: usize,
    ids: HashSet<String>,
    duplicate_ids: u64,
}

impl Tally {
    fn new(categories: usize) -> Tally {
        Tally {
            rows: 0,
            per_category: vec![0; categories],
            empty: 0,
            malformed: 0,
            invalid_utf8: 0,
            truncated: 0,
            warned: 0,
            ids: HashSet::new(),
            duplicate_ids: 0,
        }
    }

    fn add(&mut self, row: &Classified, file: &str) {
        self.rows += 1;
        if let Some(v) = &row.verdict {
            self.per_category[v.category] += 1;
        }
        self.truncated += row.truncated as u64;
        let problem = match row.status {
            Status::Ok => None,
            Status::Empty => {
                self.empty += 1;
                Some("empty text; written with status=empty and no category")
            }
            Status::Malformed => {
                self.malformed += 1;
                Some("number of fields differs from the header; classified and flagged status=malformed")
            }
            Status::InvalidUtf8 => {
                self.invalid_utf8 += 1;
                Some("invalid UTF-8 replaced; classified and flagged status=invalid_utf8")
            }
        };
        if let Some(problem) = problem {
            if self.warned < MAX_ROW_WARNINGS {
                eprintln!(
                    "warning: {file}:{}: row {} (id {}): {problem}",
                    row.story.line, row.story.row, row.story.id
                );
            }
            self.warned += 1;
        }
        if !self.ids.insert(row.story.id.clone()) {
            self.duplicate_ids += 1;
        }
    }

    fn warn_rest(&self) {
        if self.warned > MAX_ROW_WARNINGS {
            eprintln!(
                "warning: {} more rows flagged (see the status column)",
                self.warned - MAX_ROW_WARNINGS
            );
        }
        if self.duplicate_ids > 0 {
            eprintln!(
                "warning: {} rows repeat an id seen earlier; all rows were kept, none merged",
                self.duplicate_ids
            );
        }
    }

    fn summary(&self, taxonomy: &Taxonomy, elapsed_s: f64) -> String {
        let classified: u64 = self.per_category.iter().sum();
        let mut s = format!(
            "{} rows in {elapsed_s:.1} s ({:.1} rows/s): {classified} classified, {} empty",
            self.rows,
            self.rows as f64 / elapsed_s.max(1e-9),
            self.empty
        );
        if self.malformed + self.invalid_utf8 > 0 {
            s += &format!(
                ", {} malformed, {} invalid UTF-8",
                self.malformed, self.invalid_utf8
            );
        }
        if self.truncated > 0 {
            s += &format!(", {} truncated to the model's window", self.truncated);
        }
        s.push('\n');
        for (scenario, &n) in taxonomy.scenarios.iter().zip(&self.per_category) {
            let share = 100.0 * n as f64 / (classified.max(1)) as f64;
            s += &format!("  {:<14} {n:>8}  {share:5.1}%\n", scenario.id);
        }
        s
    }
}
