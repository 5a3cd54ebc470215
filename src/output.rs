//! Writing classified rows as CSV or JSON Lines, the stable machine formats.
//!
//! Numbers are written with four decimals so that the same input gives byte-identical output
//! and diffs between runs stay readable.

use std::collections::HashSet;
use std::io::Write;

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::record::Classified;
use crate::taxonomy::Taxonomy;

/// How classified rows are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Jsonl,
}

pub struct RowWriter<W: Write> {
    out: W,
    format: Format,
    name: String,
    ids: Vec<String>,
    kept: Vec<String>,
    excel_safe: bool,
    explain: bool,
    row_numbers: bool,
}

fn four_decimals(x: f32) -> String {
    format!("{x:.4}")
}

fn four_decimals_json(x: f32) -> Value {
    // Round through the decimal text so JSON and CSV carry the same value.
    json!(four_decimals(x).parse::<f64>().unwrap_or(0.0))
}

/// The columns `--explain` adds, right after `advice`.
pub const EXPLAIN_COLUMNS: [&str; 4] = ["nearest", "nearest_similarity", "relevance", "evidence"];

/// The sentence that reads most like the row's scenario, as the classifier cut it (the
/// sentence splitter is deterministic, so cutting the story again finds the same one).
pub fn evidence(row: &Classified) -> Option<String> {
    let at = row.verdict.as_ref()?.evidence?;
    crate::sentences::split(row.story.text_to_read())
        .into_iter()
        .nth(at)
}

/// Neutralises a cell a spreadsheet would run as a formula, by prefixing `'`.
pub fn excel_safe(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_string()
    }
}

/// The evidence sentence that `written`, an `--excel-safe` output's cell, stands for: a
/// sentence of `text` whose guarded form it is. A `'` the guard added is so told from one the
/// sentence opens with; a cell that is no sentence of the text is returned as it is. None for
/// a story holding both `=x` and `'=x`, which the guard writes alike: its own verdict says
/// which was its evidence.
pub fn unguarded_evidence(text: &str, written: String) -> Option<String> {
    let sentences = crate::sentences::split(text);
    let as_written = sentences.iter().find(|s| **s == written);
    let guarded = sentences
        .iter()
        .find(|s| **s != written && excel_safe(s) == written);
    match (guarded, as_written) {
        (Some(_), Some(_)) => None,
        (Some(found), None) | (None, Some(found)) => Some(found.clone()),
        (None, None) => Some(written),
    }
}

/// Options for [`RowWriter::new`].
#[derive(Debug, Clone, Default)]
pub struct WriterOptions {
    /// Names of the passed-through input columns.
    pub kept: Vec<String>,
    /// Prefix input cells that look like formulas (CSV only).
    pub excel_safe: bool,
    /// Write the CSV header (false when appending to a resumed file).
    pub header: bool,
    /// Add the `nearest`, `nearest_similarity`, `relevance` and `evidence` columns
    /// (`--explain`).
    pub explain: bool,
    /// Start each row with its 1-based row number in the whole input (`row`), so the
    /// outputs of shards can be put back in order.
    pub row_numbers: bool,
}

impl<W: Write> RowWriter<W> {
    /// `name` is used in error messages.
    pub fn new(
        out: W,
        format: Format,
        name: &str,
        taxonomy: &Taxonomy,
        options: WriterOptions,
    ) -> Result<RowWriter<W>> {
        let ids = taxonomy.labels();
        let mut w = RowWriter {
            out,
            format,
            name: name.to_string(),
            ids,
            kept: options.kept,
            excel_safe: options.excel_safe,
            explain: options.explain,
            row_numbers: options.row_numbers,
        };
        if format == Format::Csv && options.header {
            let mut header: Vec<String> = w.row_numbers.then(|| "row".into()).into_iter().collect();
            header.extend(
                [
                    "id",
                    "category",
                    "confidence",
                    "runner_up",
                    "margin",
                    "also",
                ]
                .map(String::from),
            );
            header.extend(w.ids.iter().map(|id| format!("score_{id}")));
            header.extend(["tokens", "chunks", "truncated", "status", "advice"].map(String::from));
            if w.explain {
                header.extend(EXPLAIN_COLUMNS.map(String::from));
            }
            // A kept input column named like one of failup's (re-classifying an earlier
            // output, say) is prefixed, so no two columns of the output share a name.
            // A sharded run's leading `row` is dropped by the merge, so it is not counted.
            let own = usize::from(w.row_numbers);
            // A set, not a search of the header per name: 100,000 kept columns took 14 s.
            let mut taken: HashSet<String> = header[own..].iter().cloned().collect();
            // A header cell from the input is input too.
            let shown = |name: &str| match w.excel_safe {
                true => excel_safe(name),
                false => name.to_string(),
            };
            for kept in &w.kept {
                let mut name = kept.clone();
                let mut cell = shown(&name);
                while taken.contains(&cell) {
                    name.insert_str(0, "input_");
                    cell = shown(&name);
                }
                taken.insert(cell.clone());
                header.push(cell);
            }
            w.write_csv_record(&header)?;
        }
        Ok(w)
    }

    fn write_csv_record(&mut self, record: &[String]) -> Result<()> {
        let mut enc = csv::WriterBuilder::new()
            .buffer_capacity(1024)
            .from_writer(Vec::with_capacity(1024));
        let bytes = enc
            .write_record(record)
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|_| enc.into_inner().map_err(|e| e.into_error()));
        bytes
            .and_then(|b| self.out.write_all(&b))
            .map_err(|e| Error::io(&self.name, e))
    }

    /// The underlying writer (for checkpoints between chunks).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    pub fn write(&mut self, row: &Classified, taxonomy: &Taxonomy) -> Result<()> {
        match self.format {
            Format::Csv => {
                let rec = self.csv_record(row, taxonomy);
                self.write_csv_record(&rec)
            }
            Format::Jsonl => {
                let obj = self.json_object(row, taxonomy);
                let out = &mut self.out;
                let result = serde_json::to_writer(&mut *out, &obj)
                    .map_err(std::io::Error::from)
                    .and_then(|_| out.write_all(b"\n"));
                result.map_err(|e| Error::io(&self.name, e))
            }
        }
    }

    /// `row`'s cells, in the header's order.
    fn csv_record(&self, row: &Classified, taxonomy: &Taxonomy) -> Vec<String> {
        let v = row.verdict.as_ref();
        let name_of = |i: usize| taxonomy.scenarios[i].id.clone();
        let safe = |cell: &str| {
            if self.excel_safe {
                excel_safe(cell)
            } else {
                cell.to_string()
            }
        };
        let mut rec: Vec<String> = self
            .row_numbers
            .then(|| row.story.row.to_string())
            .into_iter()
            .collect();
        rec.extend([
            safe(&row.story.id),
            v.map(|v| name_of(v.category)).unwrap_or_default(),
            v.map(|v| four_decimals(v.confidence)).unwrap_or_default(),
            v.map(|v| name_of(v.runner_up)).unwrap_or_default(),
            v.map(|v| four_decimals(v.margin)).unwrap_or_default(),
            v.and_then(|v| v.also).map(name_of).unwrap_or_default(),
        ]);
        for i in 0..self.ids.len() {
            rec.push(v.map(|v| four_decimals(v.scores[i])).unwrap_or_default());
        }
        rec.push(row.tokens.to_string());
        rec.push(row.chunks.to_string());
        rec.push(row.truncated.to_string());
        rec.push(row.status.as_str().to_string());
        // A custom taxonomy's advice and an example's id come from files too.
        rec.push(
            v.map(|v| safe(&taxonomy.scenarios[v.category].headline))
                .unwrap_or_default(),
        );
        if self.explain {
            let n = v.and_then(|v| v.nearest.as_ref());
            rec.push(n.map(|n| safe(&n.id)).unwrap_or_default());
            rec.push(n.map(|n| four_decimals(n.similarity)).unwrap_or_default());
            rec.push(v.map(|v| four_decimals(v.relevance)).unwrap_or_default());
            rec.push(safe(&evidence(row).unwrap_or_default()));
        }
        rec.extend(row.story.kept.iter().map(|c| safe(c)));
        rec
    }

    /// `row` as one JSON object.
    fn json_object(&self, row: &Classified, taxonomy: &Taxonomy) -> Value {
        let v = row.verdict.as_ref();
        let name_of = |i: usize| taxonomy.scenarios[i].id.clone();
        let scores: Map<String, Value> = match v {
            Some(v) => self
                .ids
                .iter()
                .zip(&v.scores)
                .map(|(id, s)| (id.clone(), four_decimals_json(*s)))
                .collect(),
            None => Map::new(),
        };
        let columns: Map<String, Value> = self
            .kept
            .iter()
            .zip(&row.story.kept)
            .map(|(k, val)| (k.clone(), json!(val)))
            .collect();
        let mut obj = json!({
            "id": row.story.id,
            "category": v.map(|v| name_of(v.category)),
            "confidence": v.map(|v| four_decimals_json(v.confidence)),
            "runner_up": v.map(|v| name_of(v.runner_up)),
            "margin": v.map(|v| four_decimals_json(v.margin)),
            "also": v.and_then(|v| v.also).map(name_of),
            "scores": scores,
            "tokens": row.tokens,
            "chunks": row.chunks,
            "truncated": row.truncated,
            "status": row.status.as_str(),
            "advice": v.map(|v| taxonomy.scenarios[v.category].headline.clone()),
            "columns": columns,
        });
        if self.row_numbers {
            obj["row"] = json!(row.story.row);
        }
        if self.explain {
            let n = v.and_then(|v| v.nearest.as_ref());
            obj["nearest"] = json!(n.map(|n| n.id.clone()));
            obj["nearest_similarity"] = json!(n.map(|n| four_decimals_json(n.similarity)));
            obj["relevance"] = json!(v.map(|v| four_decimals_json(v.relevance)));
            obj["evidence"] = json!(evidence(row));
        }
        obj
    }

    /// The destination as it stands, for a run that failed: nothing more is flushed, as the
    /// failure may be the destination's own (a full disk).
    pub fn abandon(self) -> W {
        self.out
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(mut self) -> Result<W> {
        self.out.flush().map_err(|e| Error::io(&self.name, e))?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excel_safe_prefixes_formula_starts_only() {
        assert_eq!(excel_safe("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(excel_safe("+1"), "'+1");
        assert_eq!(excel_safe("-2"), "'-2");
        assert_eq!(excel_safe("@cmd"), "'@cmd");
        assert_eq!(excel_safe("plain = fine"), "plain = fine");
        assert_eq!(excel_safe(""), "");
    }

    #[test]
    fn the_guard_on_evidence_is_undone_by_the_story_sentences() {
        let text = "'Quoted' words first. I lost again. +1 for them: they gave it to Sam.";
        let undo = |w: &str| unguarded_evidence(text, w.to_string()).unwrap();
        assert_eq!(
            undo("'+1 for them: they gave it to Sam."),
            "+1 for them: they gave it to Sam."
        );
        assert_eq!(undo("'Quoted' words first."), "'Quoted' words first.");
        assert_eq!(undo("I lost again."), "I lost again.");
        assert_eq!(undo("'=not a sentence"), "'=not a sentence");
        // Both `=x` and `'=x` are written `'=x`: the cell alone cannot tell which.
        let both = "=They gave it to Sam again. '=They gave it to Sam again.";
        let written = "'=They gave it to Sam again.".to_string();
        assert_eq!(unguarded_evidence(both, written), None);
    }
}
