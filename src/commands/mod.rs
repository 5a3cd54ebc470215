//! One file per subcommand, gluing the library's modules together.

pub mod advise;
pub mod bench;
pub mod calibrate;
pub mod categories;
pub mod classify;
pub mod completions;
pub mod embed;
pub mod eval;
pub mod merge;
pub mod models;
pub mod report;
pub mod resume;
pub mod train;

use std::collections::HashMap;
use std::process::ExitCode;

use crate::cli::{Cli, Command, FewShotArgs, ModelArgs};
use failup::embed::Precision;
use failup::error::{Error, Result};
use failup::pipeline::{Engine, EngineOptions};
use failup::profile::{Labelled, LabelledRow, Profile};

/// The `--shard` a command was given, read with the process's environment for `auto`.
fn shard(spec: Option<&str>) -> Result<Option<failup::shard::Shard>> {
    let Some(spec) = spec else {
        return Ok(None);
    };
    failup::shard::Shard::parse(spec, |k| std::env::var(k).ok()).map(Some)
}

/// Refuses, before the work, outputs (`-o` first) that name the input or one another, or a file
/// the run writes beside `-o`: its partial file, checkpoint or shard record, which would
/// replace that output or the input at the end of the run, with exit 0.
fn check_outputs(
    outputs: &[(&str, &std::path::Path)],
    source: &failup::input::Source,
    shard: bool,
) -> Result<()> {
    for (flag, output) in outputs {
        failup::sink::check_output(flag, output, Some(source))?;
    }
    let ("-o", rows) = outputs[0] else {
        unreachable!("the rows' output, -o, comes first");
    };
    let companions = failup::sink::companions(rows, shard);
    let input = match source {
        failup::input::Source::Stdin => "the file standard input reads from",
        failup::input::Source::File(_) => "the input file",
    };
    for (what, path) in &companions {
        if failup::sink::check_not_input(what, path, Some(source)).is_err() {
            return Err(Error::Usage(format!(
                "{} is {input}, and this run writes {what} there; give -o another name",
                path.display()
            )));
        }
    }
    let all: Vec<(&str, &std::path::Path)> = outputs
        .iter()
        .copied()
        .chain(
            companions
                .iter()
                .map(|(what, path)| (*what, path.as_path())),
        )
        .collect();
    failup::sink::check_distinct(&all)
}

/// Refuses an output that is one of the files the command reads beside its input (examples,
/// a profile, a taxonomy) or lies in the folder of the `model` it reads, before any work.
fn check_not_read(
    outputs: &[(&str, &std::path::Path)],
    reads: &[(&str, Option<&std::path::PathBuf>)],
    model: Option<&std::path::Path>,
) -> Result<()> {
    for (flag, output) in outputs {
        for (read_flag, read) in reads {
            // A file named by its variable is told by it, as the user may not have typed it.
            let var = match *read_flag {
                "--taxonomy" => Some("FAILUP_TAXONOMY"),
                "--profile" => Some("FAILUP_PROFILE"),
                _ => None,
            };
            let read_flag = match var.filter(|_| !crate::cli::typed(read_flag)) {
                Some(var) => format!("the environment variable {var}"),
                None => read_flag.to_string(),
            };
            if let Some(read) = read {
                failup::sink::check_not_read(flag, output, &read_flag, read)?;
            }
        }
    }
    check_not_in_model(outputs, model)
}

/// Refuses an output inside the model folder the command reads (`-o` slipped to
/// `models/all-MiniLM-L6-v2/tokenizer.json`): writing there would break the model for every
/// later run.
fn check_not_in_model(
    outputs: &[(&str, &std::path::Path)],
    model: Option<&std::path::Path>,
) -> Result<()> {
    let Some(dir) = failup::embed::ModelDir::locate(model) else {
        return Ok(());
    };
    let Ok(dir) = dir.canonicalize() else {
        return Ok(());
    };
    for (flag, output) in outputs {
        let folder = match output.parent() {
            _ if failup::sink::is_stream(output) => continue,
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => std::path::Path::new("."),
        };
        if folder.canonicalize().is_ok_and(|f| f.starts_with(&dir)) {
            return Err(Error::Usage(format!(
                "{} ({flag}) is inside the model folder {}, which this run reads; write it \
                 to another folder, so the model's files are not written over",
                output.display(),
                dir.display()
            )));
        }
    }
    Ok(())
}

/// Says what a run waiting on a terminal for its standard input wants, and how to end it: it
/// would otherwise sit silent, looking hung.
fn prompt_if_stdin_is_a_terminal(what: &str) {
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        let end = match cfg!(windows) {
            true => "Ctrl-Z, then Enter",
            false => "Ctrl-D on a line of its own",
        };
        eprintln!("failup: type or paste {what}, then press {end}");
    }
}

/// Says at the start, not hours later, that a shard written to standard output (or a device
/// or pipe) cannot be merged: its record needs a file beside it.
fn warn_if_unrecorded(output: &std::path::Path, shard: Option<failup::shard::Shard>) {
    if shard.is_some() && failup::sink::is_stream(output) {
        eprintln!(
            "note: a shard written to standard output, a device or a pipe gets no shard \
             record, so failup merge --rows will refuse it; write shards with -o FILE"
        );
    }
}

/// Completes a run's output: a sharded part's record (`PART.shard`, for `failup merge
/// --rows`) is written from the finished bytes before the part takes its name, so a part
/// under its final name always has its record.
///
/// The record keeps what the parts of one run share, so merge can refuse parts of different
/// runs: the run's resume `settings`, less the shard, and less the input's path and time (the
/// record has its content's digest instead, so a copied input or one read through a pipe
/// still merges). The input's path is kept apart, only so the merge does not write over it.
fn commit_output(
    mut sink: failup::sink::Sink,
    shard: Option<failup::shard::Shard>,
    (source, reader): (&failup::input::Source, &failup::input::StoryReader),
    settings: &failup::sink::Settings,
) -> Result<()> {
    use failup::input::Source;
    use failup::merge::ShardRecord;
    use std::io::Write;
    if let (Some(shard), Some(partial), Some(dest)) = (shard, sink.partial_path(), sink.dest_path())
    {
        let (partial, dest) = (partial.to_path_buf(), dest.to_path_buf());
        sink.flush()
            .map_err(|e| failup::error::Error::io(dest.display().to_string(), e))?;
        let record = ShardRecord {
            kind: failup::merge::RECORD_KIND.into(),
            shard: shard.index,
            shard_count: shard.count,
            input_rows: reader.rows_read(),
            input_sha256: reader.input_digest(),
            input_file: match source {
                Source::File(path) => path.canonicalize().ok(),
                // A file redirected in (`< in.csv`) is the input as much as one named.
                Source::Stdin => stdin_file(),
            }
            .and_then(|p| p.to_str().map(Into::into)),
            sha256: failup::profile::file_sha256(&partial)?,
            settings: settings
                .iter()
                .filter(|(key, _)| !["--shard", "input"].contains(&key.as_str()))
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect(),
        };
        record.write_beside(&dest, &partial)?;
    }
    sink.commit()
}

/// The regular file standard input reads, when it reads one: where the system names it.
fn stdin_file() -> Option<std::path::PathBuf> {
    let link = std::path::Path::new("/dev/stdin");
    std::fs::metadata(link)
        .is_ok_and(|m| m.is_file())
        .then(|| link.canonicalize().ok())
        .flatten()
}

/// Tells the blank lines a reader passed over, which CSV does not count as rows and the
/// output therefore has nothing for: the first ten by file:line, then a count.
#[derive(Default)]
struct BlankLineWarnings {
    count: u64,
}

impl BlankLineWarnings {
    const TOLD_ONE_BY_ONE: u64 = 10;

    fn tell(&mut self, reader: &failup::input::StoryReader) {
        for line in reader.take_blank_lines() {
            if self.count < Self::TOLD_ONE_BY_ONE {
                eprintln!(
                    "warning: {}:{line}: blank line passed over (CSV has no empty rows; write \
                     \"\" for an empty story)",
                    reader.name()
                );
            }
            self.count += 1;
        }
    }

    fn tell_rest(&self) {
        if self.count > Self::TOLD_ONE_BY_ONE {
            eprintln!(
                "warning: {} more blank lines passed over",
                self.count - Self::TOLD_ONE_BY_ONE
            );
        }
    }
}

/// Writes `text` to standard output. `print!` panics when the reader has gone (`| head`) or
/// the disk is full; this returns the error, so a closed pipe ends the run quietly with 0 and
/// a write error is told with exit 2, as every command promises.
fn print_out(text: &str) -> Result<()> {
    use std::io::Write;
    failup::sink::check_stdout_writable()?;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| failup::error::Error::io("<stdout>", e))
}

fn value_name(v: impl clap::ValueEnum) -> String {
    v.to_possible_value()
        .map_or_else(String::new, |p| p.get_name().to_string())
}

/// `--model`'s engine options, with fp32 as the default precision when `exact_by_default`:
/// for `embed`, whose vectors users compare with other tools', and for a few-shot head, which
/// by cross-validation on real stories scores about two points of macro-F1 lower on int8's
/// token states, while the zero-shot rule scores the same on both (docs/src/performance.md).
fn engine_options(model: &ModelArgs, exact_by_default: bool) -> EngineOptions {
    engine_options_for(model, exact_by_default, None)
}

/// [`engine_options`] for a run that applies `profile`, which reads stories as it was fitted
/// (precision and `--long-text`) unless a flag says otherwise: vectors read another way move
/// some of its verdicts.
fn engine_options_for(
    model: &ModelArgs,
    exact_by_default: bool,
    profile: Option<&Profile>,
) -> EngineOptions {
    let mut options = model.engine_options();
    if options.precision.is_none() {
        options.precision = profile.and_then(Profile::fitted_precision);
    }
    if let (None, Some(fitted)) = (model.long_text, profile.and_then(Profile::fitted_long_text)) {
        options.long_text = fitted;
    }
    if exact_by_default {
        options.precision.get_or_insert(Precision::Fp32);
    }
    options
}

/// How the user gave the profile at `path`, for messages: with `--profile`, or through
/// `FAILUP_PROFILE` set in the environment, which they may have forgotten.
fn profile_given_as(path: &std::path::Path) -> String {
    match crate::cli::typed("--profile") {
        true => format!("--profile {}", path.display()),
        false => format!("FAILUP_PROFILE={} (set in the environment)", path.display()),
    }
}

/// Warns of ids and of story texts that a labelled file holds more than once: a story given
/// twice counts twice in a fit and in a score, and a repeated id makes eval's lists ambiguous.
fn warn_of_repeats(file: &std::path::Path, rows: &[LabelledRow]) {
    let (_, ids) = repeated(rows, |r| r.id.clone(), false);
    if !ids.is_empty() {
        eprintln!(
            "warning: {}: {} id{} on more than one row ({}); give each story its own id",
            file.display(),
            ids.len(),
            if ids.len() == 1 { " is" } else { "s are" },
            few_ids(&ids)
        );
    }
    // Case, accents, spacing and punctuation aside, as `eval --cv` keeps copies in one fold.
    let (stories, copies) = repeated(rows, |r| failup::eval::copy_key(&r.text), true);
    if stories > 0 {
        eprintln!(
            "warning: {}: {stories} stor{} given more than once, word for word, case, accents, \
             spacing and punctuation aside ({} cop{}, as id{} {}); each copy counts, so drop \
             the copies unless the weight is meant",
            file.display(),
            if stories == 1 { "y is" } else { "ies are" },
            copies.len(),
            if copies.len() == 1 { "y" } else { "ies" },
            if copies.len() == 1 { "" } else { "s" },
            few_ids(&copies)
        );
    }
    // A copy under another label is a contradiction, not extra weight: worth its own words.
    let conflicting = relabelled_copies(rows);
    if !conflicting.is_empty() {
        eprintln!(
            "warning: {}: {} row{} repeat{} a story word for word (case, accents, spacing \
             and punctuation aside) under another label (id {}); a story has one scenario, so fix \
             its label or drop the copy",
            file.display(),
            conflicting.len(),
            if conflicting.len() == 1 { "" } else { "s" },
            if conflicting.len() == 1 { "s" } else { "" },
            few_ids(&conflicting)
        );
    }
}

/// How many keys `rows` repeat, and the ids of the rows whose key was met before: of the
/// second row of each key alone, or, with `every`, of every row after the first.
fn repeated(
    rows: &[LabelledRow],
    key: impl Fn(&LabelledRow) -> String,
    every: bool,
) -> (usize, Vec<&String>) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut later = Vec::new();
    for row in rows {
        let n = seen.entry(key(row)).or_default();
        *n += 1;
        if *n == 2 || (every && *n > 2) {
            later.push(&row.id);
        }
    }
    (seen.values().filter(|&&n| n > 1).count(), later)
}

/// The ids of the rows that repeat an earlier row's story under another label.
fn relabelled_copies(rows: &[LabelledRow]) -> Vec<&String> {
    let mut first_label: HashMap<String, usize> = HashMap::new();
    (rows.iter())
        .filter(|r| {
            *first_label
                .entry(failup::eval::copy_key(&r.text))
                .or_insert(r.label)
                != r.label
        })
        .map(|r| &r.id)
        .collect()
}

/// The first three of `ids`, quoted, and how many more.
fn few_ids(ids: &[&String]) -> String {
    let mut list: Vec<String> = (ids.iter().take(3))
        .map(|i| format!("'{}'", failup::input::printable(i)))
        .collect();
    if ids.len() > 3 {
        list.push(format!("and {} more", ids.len() - 3));
    }
    list.join(", ")
}

/// An id's hash: repeated ids are counted in 8 bytes a row, not a copy of every id.
fn id_hash(id: &str) -> u64 {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut h = DefaultHasher::new();
    id.hash(&mut h);
    h.finish()
}

/// Ids met more than once, or empty, told at the end of a run: an output row is joined back
/// to its input by its id.
#[derive(Default)]
pub struct IdWarnings {
    /// Whether ids come from a column: row numbers never repeat, and keeping their hashes
    /// grew memory by some 30 bytes a row (50 MB against 22 MB for a million rows).
    from_column: bool,
    repeated: RepeatedIds,
    /// Rows whose id cell is empty, and the line of the first.
    empty: u64,
    first_empty: u64,
}

/// Counts rows whose id was seen before, in bounded memory: a hash of each id, 8 bytes a row
/// and the table's slack.
#[derive(Default)]
pub struct RepeatedIds {
    hashes: std::collections::HashSet<u64>,
    count: u64,
    /// The line (where known) and id of the first row that repeats an id.
    first: Option<(Option<u64>, String)>,
}

impl RepeatedIds {
    /// An id seen without being counted: a later row that repeats it is.
    pub fn remember(&mut self, id: &str) {
        self.hashes.insert(id_hash(id));
    }

    pub fn see(&mut self, id: &str, line: Option<u64>) {
        if !self.hashes.insert(id_hash(id)) {
            self.count += 1;
            self.first.get_or_insert_with(|| (line, id.to_string()));
        }
    }

    /// "the first at line L, id 'X'", for a warning; none when no id repeats.
    pub fn first(&self) -> Option<String> {
        let (line, id) = self.first.as_ref()?;
        Some(format!(
            "the first{}, id '{}'",
            line.map_or(String::new(), |l| format!(" at line {l}")),
            failup::input::printable(id)
        ))
    }
}

impl IdWarnings {
    /// For the ids `reader` reads.
    pub fn of(reader: &failup::input::StoryReader) -> IdWarnings {
        IdWarnings {
            from_column: reader.id_column().is_some(),
            ..IdWarnings::default()
        }
    }

    pub fn see(&mut self, id: &str, line: u64) {
        // An id is empty only when read from a column (row numbers never are); told apart.
        if id.is_empty() {
            if self.empty == 0 {
                self.first_empty = line;
            }
            self.empty += 1;
        } else if self.from_column {
            self.repeated.see(id, Some(line));
        }
    }

    /// An id of a row an interrupted run wrote: not told again, but a later row that repeats
    /// it is.
    pub fn seen(&mut self, id: &str) {
        if self.from_column && !id.is_empty() {
            self.repeated.remember(id);
        }
    }

    pub fn tell_repeats(&self, resumed: bool) {
        let Some(first) = self.repeated.first() else {
            return;
        };
        eprintln!(
            "warning: {} an id seen earlier ({first}){}; all rows were kept, none merged",
            match self.repeated.count {
                1 => "1 row repeats".to_string(),
                n => format!("{n} rows repeat"),
            },
            if resumed {
                ", of the rows since the resume"
            } else {
                ""
            }
        );
    }

    pub fn tell_empty(&self) {
        if self.empty > 0 {
            eprintln!(
                "warning: {} an empty id cell (the first at line {}); written with an empty \
                 id, so fill in the ids to tell those rows apart",
                match self.empty {
                    1 => "1 row has".to_string(),
                    n => format!("{n} rows have"),
                },
                self.first_empty
            );
        }
    }
}

/// Warns of group values a report keeps apart that look alike (see
/// [`failup::report::Summary::look_alike_groups`]).
fn warn_of_look_alike_groups(summary: &failup::report::Summary) {
    use failup::input::printable;
    use unicode_normalization_alignments::UnicodeNormalization;
    let alike = summary.look_alike_groups();
    for values in alike.iter().take(5) {
        let mut shown: Vec<String> = values
            .iter()
            .map(|v| format!("'{}'", printable(v)))
            .collect();
        // Values that differ only in how an accent is encoded, or in a joiner a terminal
        // does not draw, print alike: spelt out.
        let joiner = |c: &char| matches!(c, '\u{200C}' | '\u{200D}');
        let composed: Vec<String> = shown
            .iter()
            .map(|v| v.nfc().map(|(c, _)| c).filter(|c| !joiner(c)).collect())
            .collect();
        if (1..composed.len()).any(|i| composed[..i].contains(&composed[i])) {
            shown = values
                .iter()
                .map(|v| format!("'{}'", spelt_out(v)))
                .collect();
        }
        eprintln!(
            "warning: the groups {} differ only in case, in spaces at their ends, in how \
             an accented letter is encoded, in full-width or other compatibility forms (², \
             ﬁ) or in invisible characters, \
             and the report counts them apart; make them alike in the input to count them as \
             one",
            shown.join(", ")
        );
    }
    if alike.len() > 5 {
        eprintln!("warning: {} more sets of such groups", alike.len() - 5);
    }
}

/// The first 80 characters of `v`, each past printable ASCII written as its code point
/// (`Cafe\u{301}`).
fn spelt_out(v: &str) -> String {
    let mut out: String = v
        .chars()
        .take(80)
        .map(|c| match c.is_ascii_graphic() || c == ' ' {
            true => c.to_string(),
            false => c.escape_unicode().to_string(),
        })
        .collect();
    if v.chars().nth(80).is_some() {
        out.push('…');
    }
    out
}

/// Says which scenarios a head's examples leave out: the head learns those from the
/// prototypes alone, which a user who meant to teach it every scenario should know.
fn warn_of_missing_scenarios(taxonomy: &failup::taxonomy::Taxonomy, examples: &[Labelled]) {
    let mut counts = vec![0usize; taxonomy.scenarios.len()];
    examples.iter().for_each(|e| counts[e.label] += 1);
    let missing: Vec<String> = (0..counts.len())
        .filter(|&i| counts[i] == 0)
        .map(|i| format!("'{}'", taxonomy.scenarios[i].id))
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "warning: the {} example{} hold{} no story of {}: the head learns {} from the \
             prototypes alone; add labelled stories of {} to teach {} too",
            examples.len(),
            if examples.len() == 1 { "" } else { "s" },
            if examples.len() == 1 { "s" } else { "" },
            missing.join(", "),
            if missing.len() == 1 { "it" } else { "them" },
            if missing.len() == 1 { "it" } else { "each" },
            if missing.len() == 1 { "it" } else { "them" },
        );
    }
    warn_of_thin_scenarios(taxonomy, &counts);
}

/// Fewer examples of a scenario than this leave the head to learn it from almost nothing:
/// a head fitted on one story (the first of data/calibration.csv) scored real_dev 0.710,
/// against zero-shot's 0.784.
const FEWEST_EXAMPLES: usize = 5;

/// `counts`: the examples of each scenario.
fn warn_of_thin_scenarios(taxonomy: &failup::taxonomy::Taxonomy, counts: &[usize]) {
    let thin: Vec<String> = (counts.iter().enumerate())
        .filter(|(_, n)| (1..FEWEST_EXAMPLES).contains(n))
        .map(|(i, n)| format!("'{}' ({n})", taxonomy.scenarios[i].id))
        .collect();
    if !thin.is_empty() {
        eprintln!(
            "warning: the examples hold fewer than {FEWEST_EXAMPLES} stories of {}: a head \
             fitted on so few can score below zero-shot; check it on labelled stories it has \
             not seen (failup eval), or add examples",
            thin.join(", ")
        );
    }
}

/// `--profile`, read once, and whether it or `--examples` brings a few-shot head. Only
/// `calibrate` (`calibrating`) takes a calibration with `--examples`: it fits them anew.
fn read_few_shot(fewshot: &FewShotArgs, calibrating: bool) -> Result<(Option<Profile>, bool)> {
    let profile = fewshot.profile.as_deref().map(Profile::load).transpose()?;
    if let (Some(p), Some(path), Some(examples)) = (&profile, &fewshot.profile, &fewshot.examples) {
        if p.head.is_some() {
            return Err(Error::Usage(format!(
                "{} already holds a few-shot head, and --examples {} would replace it; give \
                 one of the two (to learn from both sets of examples, put them in one file and \
                 run failup train on it)",
                profile_given_as(path),
                examples.display()
            )));
        }
        if !calibrating {
            // Its confidence scaling was fitted to zero-shot scores, not the head's.
            return Err(Error::Usage(format!(
                "{} holds a calibration of the zero-shot scores, which does not fit the head \
                 that --examples {} fits; give one of the two, or calibrate that head: failup \
                 calibrate LABELLED.csv --examples {1} -o profile.json, then --profile \
                 profile.json",
                profile_given_as(path),
                examples.display()
            )));
        }
    }
    let head = fewshot.examples.is_some() || profile.as_ref().is_some_and(|p| p.head.is_some());
    Ok((profile, head))
}

/// Refuses an `-o` named for a format the command does not write (`refused`, lowercase
/// extensions): whoever opens it next, a spreadsheet or a script, expects that format.
/// `writes` says what the command writes, `ext` the extension to name it with.
fn refuse_a_misleading_name(
    output: &std::path::Path,
    refused: &[&str],
    writes: &str,
    ext: &str,
) -> Result<()> {
    refuse_a_name_for("-o", output, refused, writes, ext)
}

/// [`refuse_a_misleading_name`] for a file given with `flag`.
fn refuse_a_name_for(
    flag: &str,
    output: &std::path::Path,
    refused: &[&str],
    writes: &str,
    ext: &str,
) -> Result<()> {
    match extension_of(output).filter(|g| refused.contains(&g.as_str())) {
        Some(given) => Err(Error::Usage(format!(
            "{writes}, not {}; name the output .{ext}, e.g. {flag} {}",
            given.to_uppercase(),
            output.with_extension(ext).display()
        ))),
        None => Ok(()),
    }
}

/// The lowercase extension of `path`, if any.
fn extension_of(path: &std::path::Path) -> Option<String> {
    (path.extension()).map(|e| e.to_string_lossy().to_lowercase())
}

/// Refuses classify's `-o` under the name of something it does not write, when no `--format`
/// says what is meant: a report's name (the user meant `--report`), `.json` (which would hold
/// CSV), `.tsv` (which would hold commas) or a workbook's (which Excel would refuse to open).
fn refuse_a_misnamed_rows_output(output: &std::path::Path) -> Result<()> {
    let Some(ext) = extension_of(output) else {
        return Ok(());
    };
    let csv = output.with_extension("csv");
    let why = match ext.as_str() {
        "html" | "htm" | "md" | "markdown" => format!(
            "-o {} names a report, but -o gets the classified rows (CSV or JSON lines); for a \
             report add --report {0}, and send the rows to -o {} or -o -",
            output.display(),
            csv.display()
        ),
        "json" => format!(
            "-o {} would hold CSV under a JSON name; name it {} for JSON lines (one object per \
             row) or {} for CSV, or pass --format to keep the name",
            output.display(),
            output.with_extension("jsonl").display(),
            csv.display()
        ),
        "tsv" => format!(
            "-o {} would hold comma-separated values under a tab-separated name; name it {}, \
             or pass --format csv to keep the name",
            output.display(),
            csv.display()
        ),
        "xlsx" | "xls" | "xlsm" | "ods" => format!(
            "-o {} names a workbook, but failup writes CSV, which a spreadsheet program opens \
             as it is (add --excel-safe when the cells come from people you do not trust); name \
             it {}",
            output.display(),
            csv.display()
        ),
        _ => return Ok(()),
    };
    Err(Error::Usage(why))
}

/// Refuses a report (`flag` names it) under a table's name, when no format flag says what is
/// meant: a report is text, Markdown, JSON or HTML, and a spreadsheet or script opening it
/// as rows would find neither.
fn refuse_a_report_under_a_table_name(
    flag: &str,
    path: &std::path::Path,
    format_flag: &str,
) -> Result<()> {
    match extension_of(path) {
        Some(ext) if TABLES.contains(&ext.as_str()) => Err(Error::Usage(format!(
            "{flag} {} names a table, but a report is text, Markdown, JSON or HTML; name it \
                 {} (or .md, .json, .html), or pass {format_flag} to keep the name",
            path.display(),
            path.with_extension("txt").display()
        ))),
        _ => Ok(()),
    }
}

/// A summary is one line of JSON, so a file of anything else where one is written (the input
/// the shards read, a shard's rows) would be lost to a slip of the name; an earlier summary,
/// whole or damaged, may be replaced. `flag` names where the path was given and `writer` what
/// would replace it. Only a regular file is looked at: opening a FIFO to read it would wait
/// for a writer that never comes, and standard output or a device is written, not replaced.
fn refuse_to_replace_other_than_a_summary(
    flag: &str,
    output: &std::path::Path,
    writer: &str,
) -> Result<()> {
    use failup::report::partial::{self, ReportInput};
    let regular = std::fs::metadata(output).is_ok_and(|m| m.is_file() && m.len() > 0);
    let written = output == std::path::Path::new("-") || failup::sink::is_stream(output);
    if !regular || written {
        return Ok(());
    }
    let source = failup::input::Source::File(output.to_path_buf());
    let open = || failup::report::reader::open_source(&source);
    // A damaged summary too: the message that refuses one says to make it again here.
    let summary = open().is_ok_and(partial::begins_as_a_summary)
        || matches!(
            open().and_then(|bytes| ReportInput::sniff(bytes, &source.name())),
            Ok(ReportInput::Summary(_))
        );
    if summary {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "{flag} {} exists and is not a failup summary; {writer} would replace it. Name a new \
         file for the summary (or remove that one first)",
        output.display()
    )))
}

/// A profile is written over an earlier one, whole or damaged, but not over a file of
/// anything else (notes, a labelled set under another name), which a slip of `-o` would lose.
/// Only a regular file is looked at, as for a summary.
fn refuse_to_replace_other_than_a_profile(output: &std::path::Path) -> Result<()> {
    let regular = std::fs::metadata(output).is_ok_and(|m| m.is_file() && m.len() > 0);
    if !regular || Profile::begins_as_one(output) {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "-o {} exists and is not a failup profile; the fit would replace it. Name a new file \
         for the profile (or remove that one first)",
        output.display()
    )))
}

/// The extensions of files of rows, which a report or profile must not be named with.
const TABLES: [&str; 4] = ["csv", "tsv", "jsonl", "ndjson"];

/// A profile is one JSON object; under a table's name, `--examples` could be handed it.
fn refuse_a_table_name(output: &std::path::Path) -> Result<()> {
    refuse_a_misleading_name(output, &TABLES, "a profile is one JSON object", "json")
}

/// Refuses standard input or a pipe as the input of a command that reads it more than once
/// (`why` says how), which would find it empty the second time.
fn refuse_a_stream(input: &std::path::Path, why: &str) -> Result<()> {
    if std::fs::metadata(input).is_ok_and(|m| m.is_dir()) {
        return Err(Error::Usage(format!(
            "{} is a folder; give the CSV file of stories inside it",
            input.display()
        )));
    }
    let stream =
        input == std::path::Path::new("-") || std::fs::metadata(input).is_ok_and(|m| !m.is_file());
    if !stream {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "{why}, so {} must be a file, not standard input or a pipe; save it to a file first",
        input.display()
    )))
}

/// Refuses a labelled file whose SHA-256 when the fit began (`before`) is not its SHA-256 as
/// the profile records it (`after`): it changed while failup read it (an export still being
/// written, say), and the profile would name stories it was not fitted on.
fn refuse_a_changed_file(input: &std::path::Path, before: &str, after: &str) -> Result<()> {
    if before == after {
        return Ok(());
    }
    Err(Error::Input {
        file: input.display().to_string(),
        line: None,
        column: None,
        problem: "it changed while failup read it, so the profile would name other stories \
                  than those it was fitted on; nothing was written: run again once nothing \
                  writes to it"
            .into(),
    })
}

/// Why `train` and `calibrate` take no stream: they read a labelled file to fit, then again
/// for the SHA-256 the profile records.
const READ_TWICE: &str =
    "reads its labelled stories twice (to fit, then to record their SHA-256 in the profile)";

/// Loads the engine and applies `--examples` or `--profile`, as every classifying command does.
fn load_engine(model: &ModelArgs, fewshot: &FewShotArgs) -> Result<Engine> {
    let (profile, head) = read_few_shot(fewshot, false)?;
    let mut engine = open_engine(&engine_options_for(model, head, profile.as_ref()))?;
    apply_few_shot(&mut engine, fewshot, profile.as_ref())?;
    Ok(engine)
}

/// [`Engine::load`], as every command that embeds loads it. bf16 is the fast mode where the
/// CPU has AMX or a fast bf16 product; on an Intel CPU with neither (AMX hidden by a
/// hypervisor) its products run as fp32 FMAs, at fp32's speed, which a user choosing it for
/// speed should know (measured: 48 stories/s against int8's 82).
pub fn open_engine(options: &EngineOptions) -> Result<Engine> {
    let engine = Engine::load(options)?;
    note_a_slow_bf16(engine.kernel());
    Ok(engine)
}

/// A head is fitted on fp32 vectors unless asked otherwise (`train`, `calibrate --examples`):
/// FAILUP_PRECISION, set for classify's speed, would fit it on int8 ones unseen, which scored
/// about two points lower.
fn warn_of_a_head_fitted_inexact(precision: Option<Precision>) {
    let from_the_environment = !crate::cli::typed("--precision");
    if let Some(p) = precision.filter(|&p| p != Precision::Fp32 && from_the_environment) {
        eprintln!(
            "warning: FAILUP_PRECISION={} (set in the environment) fits the head on {0} \
             vectors, not the fp32 ones a head is fitted on by default (int8 scored about two \
             points lower); give --precision fp32 for those",
            p.name()
        );
    }
}

/// [`open_engine`] for `embed`, which reads no taxonomy: its vectors are the model's alone.
pub fn open_encoder(options: &EngineOptions) -> Result<failup::pipeline::LoadedEncoder> {
    let encoder = failup::pipeline::LoadedEncoder::load(options)?;
    note_a_slow_bf16(encoder.kernel());
    Ok(encoder)
}

fn note_a_slow_bf16(kernel: &str) {
    if kernel == "amx-fma" {
        eprintln!(
            "note: bf16 precision runs at about fp32's speed on this CPU: it has no AMX (or \
             its hypervisor hides it), and its bf16 products are slower than fp32 FMAs, which \
             failup uses instead, with the same results; the default, int8, is faster here"
        );
    }
}

/// Puts `--profile` (read as `profile`) and `--examples` in place, warning of what `train`
/// warns of in examples: a story or id given twice, a scenario with none.
fn apply_few_shot(
    engine: &mut Engine,
    fewshot: &FewShotArgs,
    profile: Option<&Profile>,
) -> Result<()> {
    if let Some((loaded, path)) = profile.zip(fewshot.profile.as_deref()) {
        let before = engine.taxonomy().classifier;
        loaded.apply(engine, &path.display().to_string())?;
        note_calibrated_settings_replaced(engine, &before, path);
    }
    match fewshot.examples.as_deref() {
        Some(path) => failup::profile::apply_examples(engine, read_examples(engine, path)?),
        None => Ok(()),
    }
}

/// `text` with `first` before its first line and `rest` before each later one, so a taxonomy
/// text written on several lines stays under its bullet.
fn indented(text: &str, first: &str, rest: &str) -> String {
    let lines: Vec<String> = (text.lines().enumerate())
        .map(|(i, line)| match (i, line.is_empty()) {
            (0, _) => format!("{first}{line}"),
            (_, true) => String::new(),
            _ => format!("{rest}{line}"),
        })
        .collect();
    lines.join("\n")
}

/// A profile's calibration replaces five of the taxonomy's settings. A taxonomy that sets one
/// of them to a value of its own (not the built-in value, which every taxonomy that leaves
/// it out gets) would otherwise have that value passed over without a word; one that keeps
/// the built-in values hears nothing, run after run.
fn note_calibrated_settings_replaced(
    engine: &Engine,
    before: &failup::taxonomy::ClassifierSettings,
    profile: &std::path::Path,
) {
    let shipped = failup::taxonomy::ClassifierSettings::default();
    let after = &engine.taxonomy().classifier;
    let values = |c: &failup::taxonomy::ClassifierSettings| {
        [
            c.temperature,
            c.min_score,
            c.min_margin,
            c.confidence_slope,
            c.confidence_bias,
        ]
    };
    let keys = [
        "temperature",
        "min_score",
        "min_margin",
        "confidence_slope",
        "confidence_bias",
    ];
    let (own, shipped, used) = (values(before), values(&shipped), values(after));
    let replaced: Vec<String> = (0..keys.len())
        .filter(|&i| own[i] != shipped[i] && own[i] != used[i])
        .map(|i| format!("{} {:.4} (the taxonomy's: {:.4})", keys[i], used[i], own[i]))
        .collect();
    if !replaced.is_empty() {
        eprintln!(
            "note: {} is calibrated, so its values replace the taxonomy's own: {}; leave out \
             --profile to use the taxonomy's",
            profile.display(),
            replaced.join(", ")
        );
    }
}

/// An `--examples` file (a plain UTF-8 CSV with columns text and label), embedded for a head,
/// with warnings of a story or id given twice and of a scenario with none.
fn read_examples(engine: &Engine, path: &std::path::Path) -> Result<Vec<Labelled>> {
    let columns = failup::input::Columns {
        fixed_names: true,
        ..failup::profile::labelled_columns("label", None, None)
    };
    let dialect = failup::input::Dialect::default();
    let rows = failup::profile::read_labelled(path, engine.taxonomy(), &columns, dialect)?;
    warn_of_repeats(path, &rows);
    let examples = failup::profile::embed_labelled(engine, &rows, true)?;
    warn_of_missing_scenarios(engine.taxonomy(), &examples);
    Ok(examples)
}

/// Runs a parsed command line; `Ok` carries the exit code (1 when a requested gate failed).
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Classify(a) => classify::run(a).map(|_| ExitCode::SUCCESS),
        Command::Advise(a) => advise::run(a).map(|_| ExitCode::SUCCESS),
        Command::Categories(a) => categories::run(a).map(|_| ExitCode::SUCCESS),
        Command::Embed(a) => embed::run(a).map(|_| ExitCode::SUCCESS),
        Command::Bench(a) => bench::run(a).map(|_| ExitCode::SUCCESS),
        Command::Eval(a) => eval::run(a),
        Command::Report(a) => report::run(a).map(|_| ExitCode::SUCCESS),
        Command::Train(a) => train::run(a).map(|_| ExitCode::SUCCESS),
        Command::Calibrate(a) => calibrate::run(a).map(|_| ExitCode::SUCCESS),
        Command::Merge(a) => merge::run(a).map(|_| ExitCode::SUCCESS),
        Command::Models(c) => models::run(c).map(|_| ExitCode::SUCCESS),
        Command::Completions(a) => completions::run(a).map(|_| ExitCode::SUCCESS),
        Command::Man => completions::run_man().map(|_| ExitCode::SUCCESS),
    }
}
