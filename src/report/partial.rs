//! Partial summaries (`classify --summary-out`): the exact state of a report over one shard of
//! an input, which `failup merge` combines with the other shards' and `failup report` renders
//! exactly as it renders one run over the whole input.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Cursor, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::stats::{Reading, Summary, SummaryBuilder, TaxonomyInfo};
use crate::error::{Error, Result};
use crate::input::decompressed;
use crate::shard::{name_missing, Shard};
use crate::sink::{part_differences, Sink};
use crate::taxonomy::Taxonomy;

/// The `kind` of a partial summary, so `failup report` can tell it from a classify output.
pub const KIND: &str = "failup partial summary";

/// What `failup report` was given: a partial summary, or the rows of a classify output.
pub enum ReportInput {
    Summary(Box<PartialSummary>),
    Rows(Box<dyn Read + Send>),
}

impl ReportInput {
    /// Tells a summary from rows by the first line. Rows are CSV, or JSON lines of one row
    /// each; a summary is one JSON object whose `kind` is [`KIND`], on one line as failup
    /// writes it or over many (as `jq .` or an editor leaves it), its keys in any order.
    pub fn sniff(inner: Box<dyn Read + Send>, name: &str) -> Result<ReportInput> {
        // At most 64 KiB are looked at: a CSV's first line may be the whole file (old Mac
        // line ends), which should not be held in memory.
        let (head, inner) = super::reader::peek_header(decompressed(inner, name)?)
            .map_err(|e| Error::io(name, e))?;
        let text = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&head);
        let is_json = text.trim_ascii_start().starts_with(b"{");
        let mut buffered = BufReader::new(Cursor::new(head).chain(inner));
        if !is_json {
            return Ok(ReportInput::Rows(Box::new(buffered)));
        }
        // The first line that holds something: an editor may leave blank lines above it.
        let mut first = Vec::new();
        while first
            .strip_prefix(b"\xEF\xBB\xBF")
            .unwrap_or(&first)
            .trim_ascii()
            .is_empty()
        {
            let n = buffered
                .read_until(b'\n', &mut first)
                .map_err(|e| Error::io(name, e))?;
            if n == 0 {
                break;
            }
        }
        let json = first.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&first);
        let json = json.trim_ascii_start();
        if json.trim_ascii_start().starts_with(b"{") {
            match serde_json::from_slice::<Value>(json) {
                Ok(value) if is_summary(&value) => return summary_from(value, name),
                Ok(value) if is_json_report(&value) => return Err(not_read_back(name)),
                // Rows, whose reader says what is wrong with them, and where.
                Ok(_) => {}
                Err(e) if !e.is_eof() => {}
                Err(_) => {
                    let mut whole = json.to_vec();
                    buffered
                        .read_to_end(&mut whole)
                        .map_err(|e| Error::io(name, e))?;
                    return match serde_json::from_slice::<Value>(&whole) {
                        Ok(value) if is_summary(&value) => summary_from(value, name),
                        Ok(_) => Err(not_read_back(name)),
                        Err(e) => Err(Error::Input {
                            file: name.to_string(),
                            line: Some(e.line() as u64),
                            column: None,
                            problem: format!("not valid JSON: {e}"),
                        }),
                    };
                }
            }
        }
        Ok(ReportInput::Rows(Box::new(
            Cursor::new(first).chain(buffered),
        )))
    }
}

/// The setting that records the taxonomy as its file reads (before a profile's calibration is
/// applied), by [`Taxonomy::content_sha256`].
pub const TAXONOMY_SETTING: &str = "--taxonomy (content SHA-256)";

/// How a summary's settings name its input: by its content, so that the same file copied to
/// another machine merges and another one does not.
pub fn input_identity(rows: u64, sha256: &str) -> String {
    format!("{rows} rows, sha256 {sha256}")
}

/// The input's data rows, as [`input_identity`] recorded them.
fn input_rows(settings: &BTreeMap<String, String>) -> Option<u64> {
    let (rows, _) = settings.get("input")?.split_once(" rows, sha256 ")?;
    rows.parse().ok()
}

/// Whether `bytes` begin as a summary does, whole or not: with its `kind`, which failup writes
/// first (as `jq .` keeps it; a tool that sorts the keys puts it after the large `builder`, so
/// such a file is known only whole), in the first 4 KiB.
pub fn begins_as_a_summary(bytes: impl Read) -> bool {
    let mut head = Vec::new();
    if bytes.take(4096).read_to_end(&mut head).is_err() {
        return false;
    }
    let squeezed = |b: &[u8]| -> Vec<u8> {
        b.iter()
            .copied()
            .filter(|c| !c.is_ascii_whitespace())
            .collect()
    };
    let kind = squeezed(format!("\"kind\":\"{KIND}\"").as_bytes());
    squeezed(&head).windows(kind.len()).any(|w| w == kind)
}

/// `report --format json`'s output, which holds figures, not the rows or counts behind them.
fn is_json_report(value: &Value) -> bool {
    ["schema_version", "totals", "scenarios"]
        .iter()
        .all(|k| value.get(k).is_some())
}

fn not_read_back(name: &str) -> Error {
    Error::Usage(format!(
        "{name} is a JSON document, not a summary from `classify --summary-out` or `merge`, \
         nor the rows of a classify output (CSV, or JSON lines of one row each); a JSON report \
         is not read back: report the rows or the summary it was made from"
    ))
}

fn is_summary(value: &Value) -> bool {
    value.get("kind").and_then(Value::as_str) == Some(KIND)
}

fn summary_from(value: Value, name: &str) -> Result<ReportInput> {
    let bad = |problem: String| Error::Input {
        file: name.to_string(),
        line: None,
        column: None,
        problem,
    };
    let summary: PartialSummary = serde_json::from_value(value)
        .map_err(|e| bad(format!("not a failup partial summary: {e}")))?;
    summary.check().map_err(|why| {
        bad(format!(
            "a failup summary, but {why}: it was edited or damaged; make it again with \
             `classify --summary-out`"
        ))
    })?;
    Ok(ReportInput::Summary(Box::new(summary)))
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PartialSummary {
    /// Always [`KIND`]; the first key written.
    pub kind: String,
    /// Everything that shapes the rows and the report (failup version, model, precision,
    /// taxonomy, profile, input, columns): parts merge only when all of these agree.
    pub settings: BTreeMap<String, String>,
    /// N of `--shard I/N` (1 for an unsharded run).
    pub shard_count: u64,
    /// The shards this summary holds: one for a run, all N once merged.
    pub shards: Vec<u64>,
    /// For the report's header.
    pub model: String,
    /// Absent from summaries written before it was kept.
    #[serde(default)]
    pub reading: Option<Reading>,
    pub taxonomy: TaxonomyInfo,
    pub input: String,
    pub builder: SummaryBuilder,
}

impl PartialSummary {
    /// Writes the summary as one line of JSON, atomically; `flag` gave `path`.
    pub fn write(&self, flag: &str, path: &Path) -> Result<()> {
        let mut sink = Sink::open(flag, path, None)?;
        let name = sink.name();
        serde_json::to_writer(&mut sink, self)
            .map_err(std::io::Error::from)
            .and_then(|_| sink.write_all(b"\n"))
            .map_err(|e| Error::io(&name, e))?;
        sink.commit()
    }

    /// Shards that a run cannot have written, and the builder's own [`SummaryBuilder::check`]
    /// against the taxonomy's size it records.
    fn check(&self) -> std::result::Result<(), String> {
        let mut shards = self.shards.clone();
        shards.sort_unstable();
        shards.dedup();
        let in_range = shards.iter().all(|&s| s < self.shard_count);
        if self.shard_count == 0 || !in_range || shards.len() != self.shards.len() {
            return Err(format!(
                "its shards {} are not shards of {}",
                listed(&self.shards),
                self.shard_count
            ));
        }
        // Which shards it holds decides how many rows it must have counted.
        if let Some(total) = input_rows(&self.settings) {
            let count = self.shard_count;
            let expected: u64 = (self.shards.iter())
                .map(|&index| Shard { index, count }.rows_of(total))
                .sum();
            if self.builder.rows() != expected {
                let held = match self.shards.as_slice() {
                    [one] => format!("shard {one}/{count}"),
                    many => format!("{} of {count} shards", many.len()),
                };
                return Err(format!(
                    "it counts {} rows where {held} of its input of {total} rows should hold \
                     {expected}",
                    self.builder.rows()
                ));
            }
        }
        self.builder.check(self.builder.scenario_count())
    }

    pub fn read(path: &Path) -> Result<PartialSummary> {
        let name = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|e| Error::io(&name, e))?;
        match ReportInput::sniff(Box::new(file), &name)? {
            ReportInput::Summary(summary) => Ok(*summary),
            ReportInput::Rows(_) => Err(Error::Usage(format!(
                "{name} is not a failup partial summary (`classify --summary-out` writes them)"
            ))),
        }
    }

    /// Combines the partial summaries of the shards of one run, refusing parts made with other
    /// settings, shards given twice and shards missing.
    pub fn merge(mut parts: Vec<(PathBuf, PartialSummary)>) -> Result<PartialSummary> {
        // Taken in shard order, so the order the parts are given in never shows: not in the
        // stories' order, nor in the input's name where shards read one input under several
        // (a copy, standard input), which is the lowest shard's.
        parts.sort_by_key(|(_, part)| part.shards.iter().min().copied());
        let mut parts = parts.into_iter();
        let (first_path, mut merged) = parts
            .next()
            .ok_or_else(|| refused("give the partial summaries to merge".into()))?;
        let mut holder: BTreeMap<u64, PathBuf> = merged
            .shards
            .iter()
            .map(|&s| (s, first_path.clone()))
            .collect();

        for (path, part) in parts {
            let differ = part_differences(&merged.settings, &part.settings);
            if !differ.is_empty() || merged.shard_count != part.shard_count {
                let mut what = differ;
                if merged.shard_count != part.shard_count {
                    what.push(format!(
                        "shard count: {} and {}",
                        merged.shard_count, part.shard_count
                    ));
                }
                return Err(refused(format!(
                    "{} and {} come from different runs: {}",
                    first_path.display(),
                    path.display(),
                    what.join("; ")
                )));
            }
            for &shard in &part.shards {
                if let Some(other) = holder.insert(shard, path.clone()) {
                    return Err(refused(format!(
                        "shard {shard}/{} is in both {} and {}; give each shard once",
                        part.shard_count,
                        other.display(),
                        path.display()
                    )));
                }
            }
            merged
                .builder
                .merge(part.builder)
                .map_err(|why| refused(format!("{} cannot be merged: {why}", path.display())))?;
            merged.shards.extend(part.shards);
            // Parts of one run read alike (their settings agree); one from before `reading`
            // was kept does not say.
            merged.reading = merged.reading.or(part.reading);
        }
        merged.shards.sort_unstable();
        // Every shard held is below the count (checked on reading), so this cannot underflow.
        let absent = merged.shard_count - holder.len() as u64;
        if absent > 0 {
            let count = merged.shard_count;
            let held = |s| holder.contains_key(&s);
            let named = name_missing(count, absent, held, |s| format!("{s}/{count}"));
            let (noun, verb) = if absent == 1 {
                ("shard", "is")
            } else {
                ("shards", "are")
            };
            return Err(refused(format!(
                "{noun} {named} {verb} missing; every shard of the run is needed"
            )));
        }
        Ok(merged)
    }

    /// The report of a complete summary, with `taxonomy` (which must be the one it was made
    /// with) for the titles and advice.
    pub fn finish(self, taxonomy: &Taxonomy, info: &TaxonomyInfo) -> Result<Summary> {
        // By content, as classify's resume and merge compare taxonomies: a copy of the file
        // with a comment changed reads alike. A summary that does not record it (none that
        // failup writes) is held to the file's own hash.
        let same = match self.settings.get(TAXONOMY_SETTING) {
            Some(content) => *content == taxonomy.content_sha256(),
            None => info.sha256 == self.taxonomy.sha256,
        };
        if !same {
            let why = match info.name == self.taxonomy.name {
                true if info.name == "built-in" => "the summary was made with the built-in \
                    taxonomy of another failup build; report it with the failup that made it"
                    .to_string(),
                true => format!(
                    "the summary was made with the taxonomy {}, which has changed since (its \
                     scenarios, texts or settings); report it with the taxonomy as the stories \
                     were classified with it",
                    info.name
                ),
                false => format!(
                    "the summary was made with the taxonomy {} (sha256 {}…), not {}; pass the \
                     same --taxonomy",
                    self.taxonomy.name,
                    &self.taxonomy.sha256[..12],
                    info.name
                ),
            };
            return Err(Error::Usage(why));
        }
        if self.shards.len() as u64 != self.shard_count {
            return Err(Error::Usage(format!(
                "this partial summary holds {} of {} shards; merge all of them first with \
                 failup merge",
                self.shards.len(),
                self.shard_count
            )));
        }
        // Its taxonomy matched, so only an edit can make the counts disagree with it.
        let checked = (self.builder.check(taxonomy.scenarios.len()))
            .and_then(|()| self.builder.check_other(taxonomy));
        if let Err(why) = checked {
            return Err(Error::Usage(format!(
                "the summary was edited or damaged: {why}; make it again with `classify \
                 --summary-out`"
            )));
        }
        let header = super::header(self.model, self.reading, self.taxonomy, self.input);
        Ok(self.builder.with_taxonomy(taxonomy).finish(header))
    }
}

/// Shards as a list, the first ten of a longer one named and the rest counted, so that a
/// message stays short whatever a file claims.
fn listed(shards: &[u64]) -> String {
    let named: Vec<String> = shards.iter().take(10).map(u64::to_string).collect();
    match shards.len() {
        0..=10 => format!("[{}]", named.join(", ")),
        n => format!("[{}, … {n} in all]", named.join(", ")),
    }
}

fn refused(problem: String) -> Error {
    Error::Usage(format!("failup merge: {problem}"))
}
