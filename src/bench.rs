//! `failup bench`: the whole classify path, timed.
//!
//! A run reads the CSV, tokenizes, embeds, scores and formats every story (the output goes to
//! a sink that discards it), after a warm-up, `repeat` times; the figures are the median, min
//! and max over the repeats.

use std::io::Cursor;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::input::{Columns, Dialect, Source, StoryReader};
use crate::output::{Format, RowWriter, WriterOptions};
use crate::pipeline::{Engine, CHUNK_SIZE};
use crate::record::{Classified, Status};

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
    /// Windows per pass the stories were cut into (sentences, and parts of long ones).
    pub windows: usize,
    /// Of those, the windows the model ran: a repeat within a chunk of rows runs once, so
    /// a file of repeated sentences runs faster than one of the same length without.
    pub windows_run: usize,
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
    windows: usize,
    windows_run: usize,
}

/// What a pass has read so far.
#[derive(Default)]
struct Counts {
    stories: usize,
    rows_without_text: usize,
    rows_flagged: usize,
    /// The tokens the model read, each story's cut at `max_seq_length`.
    tokens: usize,
}

impl Counts {
    fn add(&mut self, rows: &[Classified], max_seq_length: usize) {
        let read = rows.iter().filter(|r| r.verdict.is_some()).count();
        self.stories += read;
        self.rows_without_text += rows.len() - read;
        self.rows_flagged += (rows.iter())
            .filter(|r| !matches!(r.status, Status::Ok | Status::Empty))
            .count();
        self.tokens += (rows.iter())
            .map(|r| r.tokens.min(max_seq_length))
            .sum::<usize>();
    }
}

impl BenchInput {
    fn reader(&self) -> Result<StoryReader> {
        match self {
            BenchInput::File {
                source,
                columns,
                dialect,
            } => StoryReader::open(source, columns, *dialect),
            BenchInput::Builtin(bytes) => StoryReader::from_reader(
                Box::new(Cursor::new(bytes.clone())),
                "built-in corpus".into(),
                Some(bytes.len() as u64),
                &Columns::default(),
                Dialect::default(),
            ),
        }
    }
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
/// after the batch being embedded.
fn pass(
    engine: &Engine,
    input: &BenchInput,
    limit: Option<usize>,
    stop: &AtomicBool,
) -> Result<Pass> {
    let mut reader = input.reader()?;
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
    let mut counts = Counts::default();
    let before = engine.encoder().tally();
    let start = Instant::now();
    loop {
        let want = limit.map_or(CHUNK_SIZE, |l| CHUNK_SIZE.min(l - counts.stories));
        if want == 0 {
            break;
        }
        let t = Instant::now();
        let chunk = reader.next_chunk(want)?;
        stages.read += t.elapsed().as_secs_f64();
        // A pass whose last chunk is done is whole, whenever the stop came.
        if chunk.is_empty() {
            break;
        }
        let t = Instant::now();
        // A pass is one chunk of the built-in corpus: it stops within the batch, not after it.
        let rows = engine.classify_chunk_until(chunk, stop)?;
        let classify = t.elapsed().as_secs_f64();
        let t = Instant::now();
        for row in &rows {
            writer.write(row, engine.taxonomy())?;
        }
        stages.write += t.elapsed().as_secs_f64();
        counts.add(&rows, engine.model.max_seq_length);
        stages.score += classify;
    }
    let wall = start.elapsed().as_secs_f64();
    let after = engine.encoder().tally();
    stages.tokenize = (after.tokenizing - before.tokenizing).as_secs_f64();
    stages.embed = (after.embedding - before.embedding).as_secs_f64();
    // classify_chunk's time minus tokenizing and embedding is the scoring.
    stages.score = (stages.score - stages.tokenize - stages.embed).max(0.0);
    writer.finish()?;
    Ok(Pass {
        stories: counts.stories,
        rows_without_text: counts.rows_without_text,
        rows_flagged: counts.rows_flagged,
        tokens: counts.tokens,
        wall_s: wall,
        stages,
        windows: after.windows - before.windows,
        windows_run: after.windows_run - before.windows_run,
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
        windows: median.windows,
        windows_run: median.windows_run,
        peak_rss_mb: peak_rss_mb(),
    })
}

/// Peak resident set size of this process (Linux: VmHWM in /proc/self/status).
fn peak_rss_mb() -> Option<f64> {
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
             score {:.2} s ({:.0}%), write {:.2} s ({:.0}%)\n\
             windows      {} per pass, {} run by the model (a repeat within a chunk of rows runs once)\n",
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
            self.windows,
            self.windows_run,
        );
        match self.peak_rss_mb {
            Some(mb) => out += &format!("peak RSS     {mb:.0} MB\n"),
            None => out += "peak RSS     unknown on this system\n",
        }
        out
    }
}

// The pieces the built-in corpus's stories are made of.
const OPENINGS: [&str; 8] = [
    "{name} said to get this off my chest, {n} days on.",
    "Long-time reader, first post, {n} days after talking to {name}.",
    "Not sure where else to put this, {name}, day {n}.",
    "So this happened {n} days ago, {name} knows.",
    "Some context first, as {name} asked, {n} of them.",
    "I have been sitting on this for {n} days, {name}.",
    "Throwaway number {n}, because {name} reads this forum.",
    "Here is my story, {name}, sorry it runs to {n} lines.",
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
    "My manager gave the new project to {name}, who joined {n} weeks ago, though I had asked to lead it for a year.",
    "I left a steady career of {n} years to retrain, and now I dread every shift with {name} and wonder why I did it.",
    "I led our pitch for a big new client with {name}, rehearsed for {n} days, and they chose our competitor anyway.",
    "The company restructured and my team of {n}, {name} too, was laid off with two weeks of notice.",
    "I failed my professional exam a second time, {n} points short, and my offer from {name} depends on it.",
    "The promotion went to {name}, whom I trained {n} weeks ago, and nobody could tell me what I did wrong.",
    "After {n} months at home with my kids I went back to work under {name}, and I feel lost.",
    "We lost the tender {name} and I spent {n} days on, and the contract went to the incumbent again.",
];
const DETAILS: [&str; 10] = [
    "I stayed late most evenings in {month} and covered for {name} on {n} of their days off.",
    "{name} says I should let it go, but I replay the meeting from {month} {n} times a day.",
    "The worst part is that {name} only forwarded me the email {n} days later, in {month}.",
    "I have had good reviews for {n} years, the last from {name} in {month}.",
    "Money is tight since {month}, {name} and I have {n} weeks of savings, and I cannot just walk away.",
    "{name} suggested I ask for feedback in {month}, but after {n} weeks I worry how it will look.",
    "I keep wondering whether I played it too safe in {month}, or whether, as {name} says, it was never going to happen in {n} years.",
    "It has knocked my confidence more than I expected, {n} weeks on, and {name} noticed in {month}.",
    "I am trying to work out what to do next by {month}, with {n} options on a list {name} made, and would welcome any advice.",
    "Some days I think about changing direction, other days I want to stay {n} more months and prove {name} wrong by {month}.",
];
const NAMES: [&str; 40] = [
    "Sam", "Priya", "Tom", "Aisha", "Marco", "Lena", "Kwame", "Yuki", "Dev", "Rosa", "Ollie",
    "Fatima", "Jonas", "Mei", "Tariq", "Ines", "Callum", "Zara", "Pavel", "Nia", "Arjun", "Chloe",
    "Emeka", "Sofia", "Luis", "Hannah", "Ravi", "Greta", "Omar", "Beth", "Kenji", "Amara", "Finn",
    "Leila", "Mateo", "Anya", "Jamal", "Ruth", "Diego", "Maya",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
/// A built-in corpus of `n` first-person setback stories of realistic, varied length, made
/// deterministically from phrase lists (so `failup bench` works with no input file). Each
/// sentence takes a name, a month and a number, so that, as in real posts, few sentences
/// repeat: a repeat runs through the model once, and a corpus of a few dozen sentences
/// would time nothing but the tokenizer.
pub fn builtin_corpus(n: usize) -> Vec<u8> {
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = |m: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % m as u64) as usize
    };
    let mut fill = |template: &str| {
        template
            .replace("{name}", NAMES[next(NAMES.len())])
            .replace("{month}", MONTHS[next(MONTHS.len())])
            .replace("{n}", &(2 + next(98)).to_string())
    };
    let mut csv = String::from("id,text\n");
    for i in 1..=n {
        let opening = fill(OPENINGS[i % OPENINGS.len()]);
        let job = fill(&format!(
            "I work as {} with {{name}} and {{n}} others.",
            JOBS[i % JOBS.len()]
        ));
        let setback = fill(SETBACKS[(i / 3) % SETBACKS.len()]);
        // Lengths like real posts: a quarter short, half medium, a quarter long.
        let (mut story, details) = match i % 4 {
            0 => (format!("{job} {setback}"), 0),
            1 | 2 => (format!("{opening} {job} {setback}"), 2 + (i / 4) % 4),
            _ => (format!("{opening} {job} {setback}"), 7 + (i / 4) % 8),
        };
        for d in 0..details {
            story.push(' ');
            story.push_str(&fill(DETAILS[(i + d) % DETAILS.len()]));
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
        // Repeated sentences run once, so a corpus of repeats would time the tokenizer.
        let mut r = csv::Reader::from_reader(a.as_slice());
        let sentences: Vec<String> = r
            .records()
            .flat_map(|rec| crate::sentences::split(&rec.unwrap()[1]))
            .collect();
        let distinct: std::collections::HashSet<&String> = sentences.iter().collect();
        assert!(
            distinct.len() * 100 >= sentences.len() * 98,
            "{} distinct of {} sentences",
            distinct.len(),
            sentences.len()
        );
    }

    #[test]
    fn spread_takes_median_min_max() {
        let s = Spread::of(&[3.0, 1.0, 2.0]);
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        let s = Spread::of(&[4.0, 1.0]);
        assert_eq!(s.median, 2.5);
    }
}
