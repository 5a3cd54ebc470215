//! `failup bench`: the whole classify path, timed.
//!
//! A run reads the CSV, tokenizes, embeds, scores and formats every story (the output goes to
//! a sink that discards it), after a warm-up, `repeat` times; the figures are the median, min
//! and max over the repeats.

use std::io::Cursor;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::input::{Columns, Dialect, Source, StoryReader};
use crate::output::{Format, RowWriter, WriterOptions};
use crate::pipeline::{Engine, CHUNK_SIZE};
use crate::record::Status;

/// Where the stories come from.
pub enum BenchInput {
    File {
        source: Source,
        columns: Columns,
        dialect: Dialect,
    },
    /// The built-in corpus, as CSV bytes.
    Builtin(Vec<u8>),
}

/// Seconds spent in each stage, summed over one pass.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Stages {
    pub read: f64,
    pub tokenize: f64,
    pub embed: f64,
    pub score: f64,
    pub write: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    fn of(values: &[f64]) -> Spread {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let mid = v.len() / 2;
        let median = if v.len() % 2 == 1 {
            v[mid]
        } else {
            (v[mid - 1] + v[mid]) / 2.0
        };
        Spread {
            median,
            min: v[0],
            max: v[v.len() - 1],
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BenchReport {
    pub input: String,
    /// Stories per pass with text the model read: stories/s counts these only.
    pub stories: usize,
    /// Rows per pass with nothing to read (empty, blank or without a word the model knows):
    /// written out like every row, but not counted in stories/s, which they would inflate.
    pub rows_without_text: usize,
    /// Rows per pass that classify would flag (malformed, invalid UTF-8, over 1 MiB): the
    /// file is not read as it was meant, so the rate is not the one of its stories.
    pub rows_flagged: usize,
    /// Tokens per pass, each story counted up to the model's window (special tokens
    /// included): the reference's work, the same whatever `--long-text` says, so tokens/s
    /// compares across modes. Chunking reads more than this (overlapping windows).
    pub tokens: usize,
    /// Timed passes done: fewer than `repeat_asked` when the run was interrupted.
    pub repeat: usize,
    pub repeat_asked: u64,
    pub threads: usize,
    pub batch_size: usize,
    /// The inference engine (`--backend`) as resolved, down to its kernel: `rten-avx512`,
    /// `amx`, `rust-bert`, ….
    pub backend: String,
    pub precision: String,
    /// Seconds to load the model, tokenizer and taxonomy (prototype embeddings included).
    pub load_s: f64,
    pub stories_per_s: Spread,
    pub tokens_per_s: Spread,
    /// Per-stage seconds of the median pass.
    pub stages_s: Stages,
    /// Peak resident memory of the process, in MB (None where the OS does not say).
    pub peak_rss_mb: Option<f64>,
}

/// What one pass over the input measured.
struct Pass {
    stories: usize,
    rows_without_text: usize,
    rows_flagged: usize,
    tokens: usize,
    wall_s: f64,
    stages: Stages,
}

/// How the benchmark ran, for the report.
pub struct BenchSettings {
    pub input_name: String,
    pub repeat: u64,
    /// Time it took to load the engine.
    pub load: Duration,
    pub threads: usize,
    pub batch_size: usize,
    pub backend: String,
    pub precision: String,
}

/// One timed pass over the input (at most `limit` stories); `Interrupted` once `stop` is set,
/// between chunks.
fn pass(
    engine: &Engine,
    input: &BenchInput,
    limit: Option<usize>,
    stop: &AtomicBool,
) -> Result<Pass> {
    let mut reader = match input {
        BenchInput::File {
            source,
            columns,
            dialect,
        } => StoryReader::open(source, columns, *dialect)?,
        BenchInput::Builtin(bytes) => StoryReader::from_reader(
            Box::new(Cursor::new(bytes.clone())),
            "built-in corpus".into(),
            Some(bytes.len() as u64),
            &Columns::default(),
            Dialect::default(),
        )?,
    };
    let mut writer = RowWriter::new(
        std::io::sink(),
        Format::Csv,
        "bench output",
        engine.taxonomy(),
        WriterOptions {
            kept: reader.kept_names(),
            header: true,
            ..WriterOptions::default()
        },
    )?;
    let mut stages = Stages::default();
    let (mut stories, mut rows_without_text, mut tokens) = (0usize, 0usize, 0usize);
    let mut rows_flagged = 0usize;
    let before = engine.encoder().stage_times();
    let start = Instant::now();
    loop {
        let want = limit.map_or(CHUNK_SIZE, |l| CHUNK_SIZE.min(l - stories));
        if want == 0 {
            break;
        }
        if stop.load(Ordering::SeqCst) {
            return Err(Error::Interrupted);
        }
        let t = Instant::now();
        let chunk = reader.next_chunk(want)?;
        stages.read += t.elapsed().as_secs_f64();
        if chunk.is_empty() {
            break;
        }
        let t = Instant::now();
        let rows = engine.classify_chunk(chunk)?;
        let classify = t.elapsed().as_secs_f64();
        let t = Instant::now();
        for row in &rows {
            writer.write(row, engine.taxonomy())?;
        }
        stages.write += t.elapsed().as_secs_f64();
        let read = rows.iter().filter(|r| r.verdict.is_some()).count();
        stories += read;
        rows_without_text += rows.len() - read;
        rows_flagged += rows
            .iter()
            .filter(|r| !matches!(r.status, Status::Ok | Status::Empty))
            .count();
        tokens += rows
            .iter()
            .map(|r| r.tokens.min(engine.model.max_seq_length))
            .sum::<usize>();
        stages.score += classify;
    }
    let wall = start.elapsed().as_secs_f64();
    let after = engine.encoder().stage_times();
    stages.tokenize = (after.0 - before.0).as_secs_f64();
    stages.embed = (after.1 - before.1).as_secs_f64();
    // classify_chunk's time minus tokenizing and embedding is the scoring.
    stages.score = (stages.score - stages.tokenize - stages.embed).max(0.0);
    writer.finish()?;
    Ok(Pass {
        stories,
        rows_without_text,
        rows_flagged,
        tokens,
        wall_s: wall,
        stages,
    })
}

/// Runs the benchmark: a warm-up on the first stories, then `settings.repeat` timed passes.
/// Once `stop` is set, the passes done are reported (`Interrupted` if none is).
pub fn run(
    engine: &Engine,
    input: &BenchInput,
    settings: BenchSettings,
    stop: &AtomicBool,
) -> Result<BenchReport> {
    pass(engine, input, Some(64), stop)?;
    let mut results = Vec::new();
    for _ in 0..settings.repeat.max(1) {
        let timed = match pass(engine, input, None, stop) {
            Err(Error::Interrupted) if !results.is_empty() => break,
            timed => timed?,
        };
        // Rows with nothing to read never reach the model: a rate of them measures nothing.
        if timed.tokens == 0 {
            let rows = match timed.rows_without_text {
                0 => "no data rows".to_string(),
                n => format!("{n} rows, none with a word the model knows"),
            };
            return Err(Error::Usage(format!(
                "{}: no story with text to read ({rows}), so there is nothing to time; \
                 benchmark a file of stories, or leave out the input for the built-in corpus",
                settings.input_name
            )));
        }
        results.push(timed);
    }
    let rate = |count: fn(&Pass) -> usize| -> Spread {
        let rates: Vec<f64> = results
            .iter()
            .map(|p| count(p) as f64 / p.wall_s.max(1e-9))
            .collect();
        Spread::of(&rates)
    };
    let stories_per_s = rate(|p| p.stories);
    let tokens_per_s = rate(|p| p.tokens);
    let mut by_time: Vec<&Pass> = results.iter().collect();
    by_time.sort_by(|a, b| a.wall_s.total_cmp(&b.wall_s));
    let median = by_time[by_time.len() / 2];
    Ok(BenchReport {
        input: settings.input_name,
        stories: median.stories,
        rows_without_text: median.rows_without_text,
        rows_flagged: median.rows_flagged,
        tokens: median.tokens,
        repeat: results.len(),
        repeat_asked: settings.repeat.max(1),
        threads: settings.threads,
        batch_size: settings.batch_size,
        backend: settings.backend,
        precision: settings.precision,
        load_s: settings.load.as_secs_f64(),
        stories_per_s,
        tokens_per_s,
        stages_s: median.stages,
        peak_rss_mb: peak_rss_mb(),
    })
}

/// Peak resident set size of this process (Linux: VmHWM in /proc/self/status).
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

impl BenchReport {
    pub fn to_text(&self) -> String {
        let s = &self.stages_s;
        let total = (s.read + s.tokenize + s.embed + s.score + s.write).max(1e-9);
        let pct = |x: f64| 100.0 * x / total;
        let skipped = match self.rows_without_text {
            0 => String::new(),
            1 => "; 1 row without text, not counted".to_string(),
            n => format!("; {n} rows without text, not counted"),
        };
        let mut out = format!(
            "input        {} ({} {}, {} tokens per pass{skipped})\n\
             settings     threads {}, batch size {}, backend {}, precision {}, {} timed pass{} after a warm-up\n\
             model load   {:.3} s\n\
             stories/s    {:.1} median (min {:.1}, max {:.1})\n\
             tokens/s     {:.0} median (min {:.0}, max {:.0})\n\
             stages       read {:.2} s ({:.0}%), tokenize {:.2} s ({:.0}%), embed {:.2} s ({:.0}%), \
             score {:.2} s ({:.0}%), write {:.2} s ({:.0}%)\n",
            self.input,
            self.stories,
            if self.stories == 1 { "story" } else { "stories" },
            self.tokens,
            self.threads,
            self.batch_size,
            self.backend,
            self.precision,
            self.repeat,
            if self.repeat == 1 { "" } else { "es" },
            self.load_s,
            self.stories_per_s.median,
            self.stories_per_s.min,
            self.stories_per_s.max,
            self.tokens_per_s.median,
            self.tokens_per_s.min,
            self.tokens_per_s.max,
            s.read,
            pct(s.read),
            s.tokenize,
            pct(s.tokenize),
            s.embed,
            pct(s.embed),
            s.score,
            pct(s.score),
            s.write,
            pct(s.write),
        );
        match self.peak_rss_mb {
            Some(mb) => out += &format!("peak RSS     {mb:.0} MB\n"),
            None => out += "peak RSS     unknown on this system\n",
        }
        out
    }
}

/// A built-in corpus of `n` first-person setback stories of realistic, varied length, made
/// deterministically from phrase lists (so `failup bench` works with no input file).
pub fn builtin_corpus(n: usize) -> Vec<u8> {
    const OPENINGS: [&str; 8] = [
        "I need to get this off my chest.",
        "Long-time reader, first post.",
        "Not sure where else to put this.",
        "So this happened last month.",
        "Some context first.",
        "I have been sitting on this for weeks.",
        "Throwaway account for obvious reasons.",
        "Here is my story, sorry it is long.",
    ];
    const JOBS: [&str; 10] = [
        "a nurse on a busy surgical ward",
        "a backend developer at a payments startup",
        "an account manager at a design agency",
        "a site engineer for a regional builder",
        "a secondary school maths teacher",
        "a sous chef in a hotel kitchen",
        "a policy adviser in local government",
        "a warehouse shift lead",
        "a junior associate at a law firm",
        "a lab technician at a university",
    ];
    const SETBACKS: [&str; 8] = [
        "My manager gave the new project to a colleague who joined six months ago, even though I had asked to lead it for a year.",
        "I left a steady career to retrain in a new field, and now I dread every single shift and wonder why I did it.",
        "I led our pitch for a big new client, rehearsed for weeks, and they chose our competitor anyway.",
        "The company restructured and my whole team was laid off with two weeks of notice.",
        "I failed my professional exam for the second time and my offer depends on passing it.",
        "The promotion went to someone I trained, and nobody could tell me what I should have done differently.",
        "After years at home with my kids I went back to work and everything has changed; I feel lost.",
        "We lost the tender I spent three months on; the contract went to the incumbent again.",
    ];
    const DETAILS: [&str; 10] = [
        "I stayed late most evenings and covered for people when they were off.",
        "My partner says I should let it go, but I keep replaying the meeting in my head.",
        "The worst part is that nobody told me directly; I found out from an email.",
        "I have had good reviews every year and thought I was doing the right things.",
        "Money is tight and I cannot afford to just walk away.",
        "A friend suggested I ask for feedback, but I am worried about how it will look.",
        "I keep wondering whether I played it too safe or whether it was never going to happen.",
        "It has knocked my confidence more than I expected.",
        "I am trying to work out what to do next and would welcome any advice.",
        "Some days I think about changing direction completely, other days I want to stay and prove them wrong.",
    ];
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = |m: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % m as u64) as usize
    };
    let mut csv = String::from("id,text\n");
    for i in 1..=n {
        let mut story = format!(
            "{} I work as {}. {}",
            OPENINGS[next(OPENINGS.len())],
            JOBS[next(JOBS.len())],
            SETBACKS[next(SETBACKS.len())]
        );
        // Lengths like real posts: a quarter short, half medium, a quarter long.
        let details = match next(4) {
            0 => 0,
            1 | 2 => 2 + next(4),
            _ => 8 + next(10),
        };
        for _ in 0..details {
            story.push(' ');
            story.push_str(DETAILS[next(DETAILS.len())]);
        }
        csv += &format!("b{i:04},\"{}\"\n", story.replace('"', "\"\""));
    }
    csv.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_corpus_is_deterministic_csv_of_varied_lengths() {
        let a = builtin_corpus(200);
        assert_eq!(a, builtin_corpus(200));
        let mut r = csv::Reader::from_reader(a.as_slice());
        let lens: Vec<usize> = r
            .records()
            .map(|rec| rec.unwrap()[1].split_whitespace().count())
            .collect();
        assert_eq!(lens.len(), 200);
        let short = lens.iter().filter(|&&l| l < 40).count();
        let long = lens.iter().filter(|&&l| l > 120).count();
        assert!(short > 20 && long > 20, "short {short}, long {long}");
    }

    #[test]
    fn spread_takes_median_min_max() {
        let s = Spread::of(&[3.0, 1.0, 2.0]);
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        let s = Spread::of(&[4.0, 1.0]);
        assert_eq!(s.median, 2.5);
    }
}
