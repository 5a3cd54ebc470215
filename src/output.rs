//! Writing classified rows as CSV or JSON Lines, the stable machine formats.
//!
//! Numbers are written with four decimals so that the same input gives byte-identical output
//! and diffs between runs stay readable.

use std::io::Write;

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::pipeline::Classified;
use crate::taxonomy::Taxonomy;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Jsonl,
}

pub struct RowWriter<W: Write> {
    format: Format,
    csv: Option<csv::Writer<W>>,
    raw: Option<W>,
    name: String,
    ids: Vec<String>,
    kept: Vec<String>,
}

fn four(x: f32) -> String {
    format!("{x:.4}")
}

fn four_json(x: f32) -> Value {
    // Round through the decimal text so JSON and CSV carry the same value.
    json!(four(x).parse::<f64>().unwrap_or(0.0))
}

impl<W: Write> RowWriter<W> {
    /// `name` is used in error messages; `kept` names the passed-through input columns.
    pub fn new(
        out: W,
        format: Format,
        name: &str,
        taxonomy: &Taxonomy,
        kept: Vec<String>,
    ) -> Result<RowWriter<W>> {
        let ids: Vec<String> = taxonomy.ids().iter().map(|s| s.to_string()).collect();
        let mut w = RowWriter {
            format,
            csv: None,
            raw: None,
            name: name.to_string(),
            ids,
            kept,
        };
        match format {
            Format::Csv => {
                let mut c = csv::Writer::from_writer(out);
                let mut header: Vec<String> =
                    ["id", "category", "confidence", "runner_up", "margin"]
                        .map(String::from)
                        .to_vec();
                header.extend(w.ids.iter().map(|id| format!("score_{id}")));
                header.extend(["tokens", "truncated", "status", "advice"].map(String::from));
                header.extend(w.kept.iter().cloned());
                c.write_record(&header).map_err(|e| w.csv_err(e))?;
                w.csv = Some(c);
            }
            Format::Jsonl => w.raw = Some(out),
        }
        Ok(w)
    }

    fn csv_err(&self, e: csv::Error) -> Error {
        match e.into_kind() {
            csv::ErrorKind::Io(io) => Error::io(&self.name, io),
            other => Error::io(&self.name, std::io::Error::other(format!("{other:?}"))),
        }
    }

    pub fn write(&mut self, row: &Classified, taxonomy: &Taxonomy) -> Result<()> {
        let v = row.verdict.as_ref();
        let name_of = |i: usize| taxonomy.scenarios[i].id.clone();
        match self.format {
            Format::Csv => {
                let mut rec: Vec<String> = vec![
                    row.story.id.clone(),
                    v.map(|v| name_of(v.category)).unwrap_or_default(),
                    v.map(|v| four(v.confidence)).unwrap_or_default(),
                    v.map(|v| name_of(v.runner_up)).unwrap_or_default(),
                    v.map(|v| four(v.margin)).unwrap_or_default(),
                ];
                for i in 0..self.ids.len() {
                    rec.push(v.map(|v| four(v.scores[i])).unwrap_or_default());
                }
                rec.push(row.tokens.to_string());
                rec.push(row.truncated.to_string());
                rec.push(row.status.as_str().to_string());
                rec.push(
                    v.map(|v| taxonomy.scenarios[v.category].headline.clone())
                        .unwrap_or_default(),
                );
                rec.extend(row.story.kept.iter().cloned());
                let result = self.csv.as_mut().expect("csv format").write_record(&rec);
                result.map_err(|e| self.csv_err(e))
            }
            Format::Jsonl => {
                let scores: Map<String, Value> = match v {
                    Some(v) => self
                        .ids
                        .iter()
                        .zip(&v.scores)
                        .map(|(id, s)| (id.clone(), four_json(*s)))
                        .collect(),
                    None => Map::new(),
                };
                let columns: Map<String, Value> = self
                    .kept
                    .iter()
                    .zip(&row.story.kept)
                    .map(|(k, val)| (k.clone(), json!(val)))
                    .collect();
                let obj = json!({
                    "id": row.story.id,
                    "category": v.map(|v| name_of(v.category)),
                    "confidence": v.map(|v| four_json(v.confidence)),
                    "runner_up": v.map(|v| name_of(v.runner_up)),
                    "margin": v.map(|v| four_json(v.margin)),
                    "scores": scores,
                    "tokens": row.tokens,
                    "truncated": row.truncated,
                    "status": row.status.as_str(),
                    "advice": v.map(|v| taxonomy.scenarios[v.category].headline.clone()),
                    "columns": columns,
                });
                let out = self.raw.as_mut().expect("jsonl format");
                let result = serde_json::to_writer(&mut *out, &obj)
                    .map_err(std::io::Error::from)
                    .and_then(|_| out.write_all(b"\n"));
                result.map_err(|e| Error::io(&self.name, e))
            }
        }
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(self) -> Result<W> {
        let name = self.name;
        match (self.csv, self.raw) {
            (Some(c), _) => c.into_inner().map_err(|e| Error::io(&name, e.into_error())),
            (None, Some(mut w)) => {
                w.flush().map_err(|e| Error::io(&name, e))?;
                Ok(w)
            }
            (None, None) => unreachable!("one writer is always set"),
        }
    }
}
