//! Partial summaries (`classify --summary-out`): the exact state of a report over one shard of
//! an input, which `failup merge` combines with the other shards' and `failup report` renders
//! exactly as it renders one run over the whole input.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::stats::{Summary, SummaryBuilder, TaxonomyInfo};
use crate::error::{Error, Result};
use crate::input::decompressed;
use crate::sink::{part_differences, Sink};
use crate::taxonomy::Taxonomy;

/// What a partial summary file starts with, so `failup report` can tell it from a classify
/// output.
pub const KIND: &str = "failup partial summary";

/// The text of the file at `path`, gzip-compressed or not.
fn open(path: &Path) -> Result<Box<dyn Read + Send>> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| Error::io(&name, e))?;
    decompressed(Box::new(file), &name)
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
    pub taxonomy: TaxonomyInfo,
    pub input: String,
    pub builder: SummaryBuilder,
}

impl PartialSummary {
    /// Writes the summary as one line of JSON, atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut sink = Sink::open(path, None)?;
        let name = sink.name();
        serde_json::to_writer(&mut sink, self)
            .map_err(std::io::Error::from)
            .and_then(|_| sink.write_all(b"\n"))
            .map_err(|e| Error::io(&name, e))?;
        sink.commit()
    }

    /// Whether the file at `path` is a partial summary (by its first bytes, gzip aside).
    pub fn is_one(path: &Path) -> bool {
        let mut start = Vec::new();
        let read = open(path).and_then(|r| {
            r.take(40)
                .read_to_end(&mut start)
                .map_err(|e| Error::io(path.display().to_string(), e))
        });
        read.is_ok()
            && String::from_utf8_lossy(&start).starts_with(&format!("{{\"kind\":\"{KIND}\""))
    }

    pub fn read(path: &Path) -> Result<PartialSummary> {
        let name = path.display().to_string();
        let mut text = String::new();
        open(path)?
            .read_to_string(&mut text)
            .map_err(|e| Error::io(&name, e))?;
        let summary: PartialSummary = serde_json::from_str(&text).map_err(|e| Error::Input {
            file: name.clone(),
            line: Some(e.line() as u64),
            column: None,
            problem: format!("not a failup partial summary: {e}"),
        })?;
        if summary.kind != KIND {
            return Err(Error::Usage(format!(
                "{name} is not a failup partial summary"
            )));
        }
        Ok(summary)
    }

    /// Combines the partial summaries of the shards of one run, refusing parts made with other
    /// settings, shards given twice and shards missing.
    pub fn merge(parts: Vec<(PathBuf, PartialSummary)>) -> Result<PartialSummary> {
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
        }
        merged.shards.sort_unstable();
        let missing: Vec<String> = (0..merged.shard_count)
            .filter(|s| !holder.contains_key(s))
            .map(|s| format!("{s}/{}", merged.shard_count))
            .collect();
        if !missing.is_empty() {
            let (noun, verb) = if missing.len() == 1 {
                ("shard", "is")
            } else {
                ("shards", "are")
            };
            return Err(refused(format!(
                "{noun} {} {verb} missing; every shard of the run is needed",
                missing.join(", ")
            )));
        }
        Ok(merged)
    }

    /// The report of a complete summary, with `taxonomy` (which must be the one it was made
    /// with) for the titles and advice.
    pub fn finish(self, taxonomy: &Taxonomy, info: &TaxonomyInfo) -> Result<Summary> {
        if info.sha256 != self.taxonomy.sha256 {
            return Err(Error::Usage(format!(
                "the summary was made with the taxonomy {} (sha256 {}…), not {}; pass the same \
                 --taxonomy",
                self.taxonomy.name,
                &self.taxonomy.sha256[..12],
                info.name
            )));
        }
        if self.shards.len() as u64 != self.shard_count {
            return Err(Error::Usage(format!(
                "this partial summary holds {} of {} shards; merge all of them first with \
                 failup merge",
                self.shards.len(),
                self.shard_count
            )));
        }
        let header = super::header(self.model, self.taxonomy, self.input);
        Ok(self.builder.with_taxonomy(taxonomy).finish(header))
    }
}

fn refused(problem: String) -> Error {
    Error::Usage(format!("failup merge: {problem}"))
}
