//! Reading the output of `failup classify` back, CSV or JSON Lines (detected from the first
//! byte), one [`ReportRow`] at a time.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::input::{cut_to_max_text, CsvLines, InputEncoding, Source};
use crate::output::EXPLAIN_COLUMNS;
use crate::record::Status;
use crate::report::ReportRow;
use crate::taxonomy::Taxonomy;

/// Columns (CSV) or fields (JSONL) every `failup classify` output has and `report` reads.
pub const EXPECTED_COLUMNS: [&str; 8] = [
    "id",
    "category",
    "confidence",
    "runner_up",
    "margin",
    "tokens",
    "truncated",
    "status",
];

/// The story text column used when `--text-column` is not given, in order of preference.
const DEFAULT_TEXT_COLUMNS: [&str; 2] = ["text", "story"];

enum Kind {
    Csv(CsvRows),
    Jsonl {
        lines: Box<dyn BufRead>,
        /// The first object, read ahead to find the columns.
        first: Option<(u64, Map<String, Value>)>,
        line_no: u64,
        buf: String,
    },
}

/// A classify output in CSV, read row by row.
struct CsvRows {
    reader: Box<csv::Reader<Box<dyn Read + Send>>>,
    lines: CsvLines,
    record: csv::ByteRecord,
    columns: CsvColumns,
    /// The line of the last row read, if any.
    last_line: Option<u64>,
}

/// Where classify's columns, and those a report reads beside them, sit in a CSV row.
struct CsvColumns {
    index: [usize; EXPECTED_COLUMNS.len()],
    text: Option<usize>,
    group: Option<usize>,
    /// The optional `also` column.
    also: Option<usize>,
    /// `--explain`'s evidence column.
    evidence: Option<usize>,
    /// classify's `advice` column, right after `status`.
    advice: Option<usize>,
    /// A shard's part, whose first column is the input's row number.
    part: bool,
    /// classify's `score_…` columns, with their names.
    scores: Vec<(usize, String)>,
}

/// A row read from a CSV classify output.
struct CsvRow {
    fields: RawRow,
    line: Option<u64>,
    /// Its id, text or group, which a report shows, held bytes that are not UTF-8.
    not_utf8: bool,
}

/// A stream of [`ReportRow`]s from a classify output.
pub struct ClassifiedReader {
    kind: Kind,
    name: String,
    taxonomy: Taxonomy,
    text_column: Option<String>,
    group_by: Option<String>,
    /// Rows read so far: the next row's number, less one.
    rows: u64,
    /// A row carried the input's row number: the file is one shard's part.
    numbered: bool,
    /// Rows whose id, text or group held bytes that are not UTF-8, and the first one's line.
    not_utf8: (u64, Option<u64>),
    /// Rows whose advice this taxonomy does not give, and the first one's line.
    other_advice: (u64, Option<u64>),
    /// The line the last row read starts on.
    row_line: Option<u64>,
    /// The line of the last row, when no line break follows it.
    unended: Option<u64>,
    /// Numbers may be written `0,8924`: a spreadsheet that saves with `;` between cells does
    /// so because its locale writes decimals with a comma, and its tab-separated "Unicode
    /// text" writes them so too.
    decimal_comma: bool,
}

/// The bytes of `source`, a file or standard input, for `failup report`.
pub fn open_source(source: &Source) -> Result<Box<dyn Read + Send>> {
    let name = source.name();
    Ok(match source {
        Source::Stdin => Box::new(io::stdin()),
        Source::File(path) => {
            let file = File::open(path).map_err(|e| Error::io(&name, e))?;
            if file.metadata().is_ok_and(|m| m.is_dir()) {
                return Err(input_error(
                    &name,
                    None,
                    "is a folder; give the file `failup classify` wrote (its rows, or its \
                     --summary-out)"
                        .into(),
                ));
            }
            Box::new(file)
        }
    })
}

/// Reads up to the end of the first line that holds something (64 KiB at most), however few
/// bytes each read brings: a pipe or a decompressor may hand over a few bytes first, and the
/// format and delimiter are told from this line.
pub(super) fn peek_header(
    inner: Box<dyn Read + Send>,
) -> io::Result<(Vec<u8>, Box<dyn Read + Send>)> {
    crate::input::peek_until(inner, |head| {
        let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
        let start = head.iter().position(|b| !b.is_ascii_whitespace());
        start.is_some_and(|s| head[s..].iter().any(|&b| b == b'\n' || b == b'\r'))
    })
}

/// Whether a file's name is a JSON Lines one (`.jsonl` or `.ndjson`, perhaps gzip-compressed).
fn named_jsonl(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    name.ends_with(".jsonl") || name.ends_with(".ndjson")
}

impl ClassifiedReader {
    /// Opens `source` and checks that it is a classify output. `text_column` overrides the
    /// default story column (`text`, else `story`); `group_by` must name a column.
    pub fn open(
        source: &Source,
        taxonomy: &Taxonomy,
        text_column: Option<&str>,
        group_by: Option<&str>,
    ) -> Result<ClassifiedReader> {
        let inner = open_source(source)?;
        ClassifiedReader::from_reader(inner, source.name(), taxonomy, text_column, group_by)
    }

    /// Like [`ClassifiedReader::open`] over any reader; `name` is used in messages.
    pub fn from_reader(
        inner: Box<dyn Read + Send>,
        name: String,
        taxonomy: &Taxonomy,
        text_column: Option<&str>,
        group_by: Option<&str>,
    ) -> Result<ClassifiedReader> {
        // A classify output kept gzip-compressed is read as it is, like classify's input, and
        // so is one a spreadsheet saved again as "Unicode text" (UTF-16 with a byte-order mark).
        let (inner, _) = crate::input::text_stream(inner, &name, InputEncoding::Utf8)?;
        let (head, inner) = peek_header(inner).map_err(|e| Error::io(&name, e))?;
        crate::input::refuse_nul_header(&head, &name)?;
        let text = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&head);
        // A JSONL output of no rows (an empty input, or a shard that got none) is empty, where
        // a CSV one still has its header line: its name tells it.
        let is_jsonl = match text.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(&b) => b == b'{',
            None => named_jsonl(&name),
        };
        // classify writes commas; a spreadsheet that saved the file again may have used `;`.
        // The header line alone decides: what else the peek holds depends on how reads fell.
        let delimiter = if names_classify_columns_with_commas(text) {
            b','
        } else {
            crate::input::sniff_delimiter(crate::input::first_line_of(text))
        };
        let buffered = BufReader::with_capacity(1 << 16, io::Cursor::new(head).chain(inner));
        let mut me = ClassifiedReader {
            kind: Kind::Jsonl {
                lines: Box::new(io::empty()),
                first: None,
                line_no: 0,
                buf: String::new(),
            },
            name,
            taxonomy: taxonomy.clone(),
            text_column: None,
            group_by: group_by.map(str::to_string),
            rows: 0,
            numbered: false,
            not_utf8: (0, None),
            other_advice: (0, None),
            row_line: None,
            unended: None,
            decimal_comma: false,
        };
        if is_jsonl {
            me.open_jsonl(Box::new(buffered), text_column, group_by)?;
        } else {
            me.open_csv(Box::new(buffered), delimiter, text_column, group_by)?;
        }
        Ok(me)
    }

    /// The column the story texts come from, if any.
    pub fn text_column(&self) -> Option<&str> {
        self.text_column.as_deref()
    }

    /// Whether the rows read so far came from one shard's part (`classify --shard`), whose
    /// report covers that shard alone.
    pub fn read_a_shard_part(&self) -> bool {
        self.numbered
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Rows read so far whose id, story or group held bytes that are not UTF-8 (shown as
    /// U+FFFD), and the first one's line.
    pub fn rows_not_utf8(&self) -> (u64, Option<u64>) {
        self.not_utf8
    }

    /// The line the last row read starts on (none before the first row).
    pub fn row_line(&self) -> Option<u64> {
        self.row_line
    }

    /// At the end of the rows: the line of the last one when no line break follows it.
    /// classify ends every row with one, so the file may have been cut there, inside an
    /// unquoted value ("mkt" read as "m"); a spreadsheet saving it again may drop it too.
    pub fn last_row_unended(&self) -> Option<u64> {
        self.unended
    }

    fn not_classify_output(&self, missing: &[&str], found: &[String]) -> Error {
        if found.iter().all(|f| f.is_empty()) {
            return input_error(
                &self.name,
                Some(1),
                format!(
                    "no column names (an empty or blank file, or an empty first row), so this \
                     is not an output of `failup classify`, which starts with a header line \
                     naming its columns ({}) even when it classified nothing. Run `failup \
                     classify INPUT -o classified.csv` first and report on its output (a \
                     `--format jsonl` output of no rows is empty: report on it as a file \
                     named .jsonl)",
                    EXPECTED_COLUMNS.join(", ")
                ),
            );
        }
        input_error(
            &self.name,
            None,
            format!(
                "not an output of `failup classify`: missing {} {}. Expected the columns {} \
                 (plus score_<scenario>, advice and any kept columns); found: {}. Run \
                 `failup classify INPUT -o classified.csv` first and report on its output",
                if missing.len() == 1 {
                    "column"
                } else {
                    "columns"
                },
                quoted(missing),
                EXPECTED_COLUMNS.join(", "),
                crate::input::column_list(found),
            ),
        )
    }

    fn missing_column(&self, what: &str, column: &str, available: &[String]) -> Error {
        use crate::input::{column_list, printable};
        let wanted = column.to_lowercase();
        // A column named in another case is there already; keeping it again would not help.
        // A JSONL output keeps input columns under "columns"; `columns.team` means `team`.
        let wanted = wanted
            .strip_prefix("columns.")
            .unwrap_or(&wanted)
            .to_string();
        // A column named in another case, or one a letter or two away (a slip of the flag);
        // else one classify did not keep.
        let fix = match available.iter().find(|h| h.to_lowercase() == wanted) {
            Some(h) => format!("Did you mean '{}'? Names are matched exactly", printable(h)),
            None => match crate::input::closest_column(available, &wanted) {
                Some(h) => format!(
                    "Did you mean '{}'? Or, for a column of the input, pass it through with \
                     `failup classify --keep-columns {}`",
                    printable(h),
                    printable(column)
                ),
                None => format!(
                    "Pass it through with `failup classify --keep-columns {}`",
                    printable(column)
                ),
            },
        };
        input_error(
            &self.name,
            None,
            format!(
                "{what} column '{}' is not in the file; its columns are: {}. {fix}",
                printable(column),
                column_list(available)
            ),
        )
    }

    /// `classify --group-by category` groups by the input's `category`; its output keeps that
    /// column as `input_category`, beside failup's own verdict column, so the same flag here
    /// would quietly group by the verdict instead.
    fn shadowed_group(&self, column: &str, kept: &str) -> Error {
        input_error(
            &self.name,
            None,
            format!(
                "--group-by '{column}' is ambiguous here: '{column}' is failup's own column, and \
                 the input's '{column}' column was kept as '{kept}'; pass --group-by {kept} to \
                 group by the input's values"
            ),
        )
    }

    fn open_csv(
        &mut self,
        inner: Box<dyn Read + Send>,
        delimiter: u8,
        text_column: Option<&str>,
        group_by: Option<&str>,
    ) -> Result<()> {
        self.decimal_comma = delimiter == b';' || delimiter == b'\t';
        let (tracked, lines) = CsvLines::track(inner, delimiter);
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(tracked);
        let headers: Vec<String> = reader
            .byte_headers()
            .map_err(|e| Error::csv(&self.name, e))?
            .iter()
            .map(|h| String::from_utf8_lossy(h).trim().to_string())
            .collect();
        let columns = self.csv_columns(&headers, text_column, group_by)?;
        self.kind = Kind::Csv(CsvRows {
            reader: Box::new(reader),
            lines,
            record: csv::ByteRecord::new(),
            columns,
            last_line: None,
        });
        Ok(())
    }

    /// Where the columns a report reads sit in a classify output's `headers`.
    fn csv_columns(
        &mut self,
        headers: &[String],
        text_column: Option<&str>,
        group_by: Option<&str>,
    ) -> Result<CsvColumns> {
        // A shard's part (`classify --shard`) leads with the input's row numbers; a kept input
        // column may be called `row` too, so names are looked up after it.
        let part = headers.len() > 1 && headers[0] == "row" && headers[1] == "id";
        let skip = usize::from(part);
        let position = |c: &str| {
            headers[skip..]
                .iter()
                .position(|h| h == c)
                .map(|i| i + skip)
        };
        let missing: Vec<&str> = EXPECTED_COLUMNS
            .iter()
            .copied()
            .filter(|c| position(c).is_none())
            .collect();
        if !missing.is_empty() {
            return Err(self.not_classify_output(&missing, headers));
        }
        let mut index = [0; EXPECTED_COLUMNS.len()];
        for (slot, c) in index.iter_mut().zip(EXPECTED_COLUMNS) {
            *slot = position(c).expect("checked above");
        }
        let text = match text_column {
            Some(c) => Some(position(c).ok_or_else(|| self.missing_column("text", c, headers))?),
            // As classify finds its input's (a kept `Text` column); two look-alikes, none.
            None => crate::input::default_column(headers, &DEFAULT_TEXT_COLUMNS)
                .ok()
                .flatten(),
        };
        self.text_column = text.map(|i| headers[i].clone());
        let group = match group_by {
            Some(c) => {
                let kept = format!("input_{c}");
                if position(c).is_some() && position(&kept).is_some() {
                    return Err(self.shadowed_group(c, &kept));
                }
                Some(position(c).ok_or_else(|| self.missing_column("--group-by", c, headers))?)
            }
            None => None,
        };
        let read = EXPECTED_COLUMNS.iter().copied().chain(
            [self.text_column.as_deref(), group_by, Some("also")]
                .into_iter()
                .flatten(),
        );
        self.refuse_repeated_columns(headers, skip, read)?;
        Ok(CsvColumns {
            index,
            text,
            group,
            also: position("also"),
            evidence: evidence_column(headers, &index),
            advice: (headers.get(index[7] + 1).map(String::as_str) == Some("advice"))
                .then_some(index[7] + 1),
            part,
            scores: self.score_columns(headers, &index)?,
        })
    }

    /// classify's own `score_…` columns, with their names: those between `margin` and
    /// `tokens`, since a kept input column may be named `score_…` too, after them. Scores
    /// named for another taxonomy's scenarios are refused.
    fn score_columns(
        &self,
        headers: &[String],
        index: &[usize; EXPECTED_COLUMNS.len()],
    ) -> Result<Vec<(usize, String)>> {
        let own = index[4] + 1..index[5].max(index[4] + 1);
        let scored = headers[own.clone()]
            .iter()
            .filter_map(|h| h.strip_prefix("score_"));
        self.refuse_another_taxonomy(scored.collect(), "score_ columns", Some(1))?;
        Ok(own
            .filter(|&i| headers[i].starts_with("score_"))
            .map(|i| (i, headers[i].clone()))
            .collect())
    }

    /// Rows classified under another taxonomy than the report's: their scores name other
    /// scenarios, and the report would count theirs under the wrong titles and advice (a
    /// report run without the `--taxonomy` classify had). `scenarios` come from `source`.
    fn refuse_another_taxonomy(
        &self,
        scenarios: Vec<&str>,
        source: &str,
        line: Option<u64>,
    ) -> Result<()> {
        let ids = self.taxonomy.ids();
        let same = scenarios.len() == ids.len() && ids.iter().all(|i| scenarios.contains(i));
        if scenarios.is_empty() || same {
            return Ok(());
        }
        Err(input_error(
            &self.name,
            line,
            format!(
                "these rows were classified with the scenarios {} (their {source}), and this \
                 taxonomy has {}; pass the --taxonomy they were classified with",
                scenarios.join(", "),
                ids.join(", ")
            ),
        ))
    }

    /// A column the report reads, named twice in the header: only an edit makes one (classify
    /// writes each name once), and which of the two was meant cannot be told.
    fn refuse_repeated_columns<'a>(
        &self,
        headers: &[String],
        skip: usize,
        read: impl Iterator<Item = &'a str>,
    ) -> Result<()> {
        for c in read {
            let at: Vec<String> = (skip..headers.len())
                .filter(|&i| headers[i] == c)
                .map(|i| (i + 1).to_string())
                .collect();
            if at.len() > 1 {
                return Err(input_error(
                    &self.name,
                    Some(1),
                    format!(
                        "the header names '{c}' {} times (columns {}), and classify writes \
                         each name once, so this file was edited: rename or drop the extra \
                         column",
                        at.len(),
                        at.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    fn open_jsonl(
        &mut self,
        inner: Box<dyn BufRead>,
        text_column: Option<&str>,
        group_by: Option<&str>,
    ) -> Result<()> {
        self.kind = Kind::Jsonl {
            lines: inner,
            first: None,
            line_no: 0,
            buf: String::new(),
        };
        let first = self.next_object()?;
        let Some((line, obj)) = first else {
            return Ok(());
        };
        let found: Vec<String> = obj.keys().cloned().collect();
        let missing: Vec<&str> = EXPECTED_COLUMNS
            .iter()
            .copied()
            .filter(|c| !obj.contains_key(*c))
            .collect();
        if !missing.is_empty() {
            return Err(self.not_classify_output(&missing, &found));
        }
        let kept: Vec<String> = match self.kept_columns(&obj, line)? {
            Some(m) => m.keys().cloned().collect(),
            None => Vec::new(),
        };
        // What --group-by takes: the kept columns by their own names (not as `columns.X`), and
        // failup's fields that hold one value, not the `columns` and `scores` objects.
        // --text-column takes the kept columns alone: failup's fields hold no story.
        let one_value = |k: &str| obj.get(k).is_some_and(|v| !v.is_object() && !v.is_array());
        let available = || {
            let mut all: Vec<String> = found.iter().filter(|k| one_value(k)).cloned().collect();
            all.extend(kept.iter().cloned());
            all
        };
        self.text_column = match text_column {
            Some(c) if kept.iter().any(|k| k == c) => Some(c.to_string()),
            Some(c) => return Err(self.missing_column("text", c, &kept)),
            None => DEFAULT_TEXT_COLUMNS
                .iter()
                .find(|c| kept.iter().any(|k| k == *c))
                .map(|c| c.to_string()),
        };
        if let Some(g) = group_by {
            if !kept.iter().any(|k| k == g) && !one_value(g) {
                return Err(self.missing_column("--group-by", g, &available()));
            }
        }
        if let Kind::Jsonl { first, .. } = &mut self.kind {
            *first = Some((line, obj));
        }
        Ok(())
    }

    /// A JSONL row's kept input columns: classify writes them as one object (`{}` when it
    /// kept none).
    fn kept_columns<'o>(
        &self,
        obj: &'o Map<String, Value>,
        line: u64,
    ) -> Result<Option<&'o Map<String, Value>>> {
        match obj.get("columns") {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(_) => Err(input_error(
                &self.name,
                Some(line),
                "field 'columns' is not an object of the kept input columns ({\"team\": …}), \
                 as classify writes it; was the file edited? Classify it again"
                    .into(),
            )),
        }
    }

    /// The next non-blank JSONL line as an object, with its line number.
    fn next_object(&mut self) -> Result<Option<(u64, Map<String, Value>)>> {
        let Kind::Jsonl {
            lines,
            line_no,
            buf,
            ..
        } = &mut self.kind
        else {
            unreachable!("JSONL only")
        };
        loop {
            buf.clear();
            let n = lines.read_line(buf).map_err(|e| Error::io(&self.name, e))?;
            if n == 0 {
                return Ok(None);
            }
            *line_no += 1;
            let trimmed = buf.trim().trim_start_matches('\u{feff}');
            if trimmed.is_empty() {
                continue;
            }
            return match serde_json::from_str::<Value>(trimmed) {
                Ok(Value::Object(m)) => Ok(Some((*line_no, m))),
                Ok(_) => Err(input_error(
                    &self.name,
                    Some(*line_no),
                    "not a JSON object; each line of a `failup classify --format jsonl` output is one".into(),
                )),
                // The last line, ending inside its object: classify ends every line.
                Err(e) if e.is_eof() && !buf.ends_with('\n') => Err(input_error(
                    &self.name,
                    Some(*line_no),
                    "the file ends inside this line's JSON object, so it was cut short \
                     (classify writes every row whole, each with its line break): copy it \
                     again, or classify the input again"
                        .into(),
                )),
                Err(e) => Err(input_error(
                    &self.name,
                    Some(*line_no),
                    format!("not valid JSON: {e}"),
                )),
            };
        }
    }

    /// The next row, or None at the end of the input.
    pub fn next_row(&mut self) -> Result<Option<ReportRow>> {
        let (mut fields, line) = match &mut self.kind {
            Kind::Csv(rows) => {
                let Some(row) = rows.next(&self.name)? else {
                    self.unended = rows.unended_line();
                    return Ok(None);
                };
                if row.not_utf8 {
                    self.not_utf8.0 += 1;
                    self.not_utf8.1 = self.not_utf8.1.or(row.line);
                }
                (row.fields, row.line)
            }
            Kind::Jsonl { first, .. } => {
                let next = match first.take() {
                    Some(f) => Some(f),
                    None => self.next_object()?,
                };
                let Some((line, obj)) = next else {
                    return Ok(None);
                };
                // Every row's: an empty row has no scores to tell by.
                if let Some(Value::Object(scores)) = obj.get("scores") {
                    let ids = scores.keys().map(String::as_str).collect();
                    self.refuse_another_taxonomy(ids, "scores", Some(line))?;
                }
                (self.jsonl_fields(&obj, line)?, Some(line))
            }
        };
        self.rows += 1;
        self.numbered |= fields.row.is_some();
        self.row_line = line;
        let advice = fields.advice.take();
        let row = self.build(fields, line)?;
        if let (Some(category), Some(advice)) = (row.category, advice) {
            if !self.gives(category, &advice) {
                self.other_advice.0 += 1;
                self.other_advice.1 = self.other_advice.1.or(line);
            }
        }
        Ok(Some(row))
    }

    /// Whether `advice` is what classify writes for `category` under this taxonomy: its
    /// headline, or that guarded by `--excel-safe` where it opens like a formula.
    fn gives(&self, category: usize, advice: &str) -> bool {
        let headline = &self.taxonomy.scenarios[category].headline;
        advice == headline || advice == crate::output::excel_safe(headline)
    }

    /// Rows read so far whose advice is not the one this taxonomy gives their category, and
    /// the first one's line: rows classified with a taxonomy that names its scenarios alike
    /// but words them otherwise (its score columns pass), whose report would give advice the
    /// rows do not.
    pub fn rows_with_other_advice(&self) -> (u64, Option<u64>) {
        self.other_advice
    }

    fn jsonl_fields(&self, obj: &Map<String, Value>, line: u64) -> Result<RawRow> {
        let fail = |field: &str, what: &str| {
            input_error(&self.name, Some(line), format!("field '{field}' {what}"))
        };
        if let Some(missing) = EXPECTED_COLUMNS.iter().find(|c| !obj.contains_key(**c)) {
            return Err(fail(
                missing,
                "is missing; is this a `failup classify` output?",
            ));
        }
        let as_text = |field: &str| -> Result<Option<String>> {
            match obj.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(non_empty(s.trim())),
                Some(Value::Number(n)) => Ok(Some(n.to_string())),
                Some(Value::Bool(b)) => Ok(Some(b.to_string())),
                Some(_) => Err(fail(field, "must be a string, a number or null")),
            }
        };
        let kept = self.kept_columns(obj, line)?;
        let column = |name: &str| -> Option<String> {
            let v = kept.and_then(|c| c.get(name)).or_else(|| obj.get(name))?;
            Some(match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            })
        };
        // An id is kept exactly as written, spaces and all, as the CSV reading keeps it.
        let id = match obj.get("id") {
            Some(Value::String(s)) => s.clone(),
            _ => as_text("id")?.unwrap_or_default(),
        };
        Ok(RawRow {
            id,
            category: as_text("category")?,
            confidence: as_text("confidence")?,
            runner_up: as_text("runner_up")?,
            margin: as_text("margin")?,
            tokens: as_text("tokens")?,
            truncated: as_text("truncated")?,
            status: as_text("status")?.unwrap_or_default(),
            also: as_text("also")?.filter(|a| !a.is_empty()),
            evidence: match obj.get("evidence") {
                Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
                _ => None,
            },
            advice: match obj.get("advice") {
                Some(Value::String(s)) => Some(s.clone()),
                _ => None,
            },
            text: self
                .text_column
                .as_deref()
                .map(|c| column(c).unwrap_or_default()),
            group: self
                .group_by
                .as_deref()
                .map(|c| column(c).unwrap_or_default()),
            row: as_text("row")?,
            // As in CSV, where a file may have no score columns but not an empty score cell:
            // no scores (none, null or `{}`) pass, and a null among them does not.
            scores: match obj.get("scores") {
                Some(Value::Object(scores)) if !scores.is_empty() => (self.taxonomy.ids())
                    .into_iter()
                    .map(|id| (id, scores.get(id)))
                    .collect(),
                _ => Vec::new(),
            }
            .into_iter()
            .map(|(id, score)| {
                let score = match score {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(other) => Some(other.to_string()),
                };
                (format!("scores.{id}"), score)
            })
            .collect(),
        })
    }

    /// Checks and converts one row's fields.
    fn build(&self, raw: RawRow, line: Option<u64>) -> Result<ReportRow> {
        let check = RowCheck { reader: self, line };
        let category = raw
            .category
            .as_deref()
            .map(|c| check.scenario("category", c))
            .transpose()?;
        let (confidence, margin, runner_up) = match category {
            Some(category) => check.scored(&raw, category)?,
            // classify gives a category to every story it reads without a problem.
            None if raw.status == "ok" => {
                return Err(check.fail(
                    "category",
                    format!(
                        "is empty but the row's status is {}, which classify writes only with \
                         a category; was the file edited? Classify it again",
                        raw.status
                    ),
                ))
            }
            None => (0.0, 0.0, None),
        };
        let tokens = check.tokens(raw.tokens.as_deref())?;
        let truncated = check.truncated(raw.truncated.as_deref())?;
        let status = check.status(raw.status, category.is_some())?;
        // classify reads only a cell's first MiB (whatever the row's status: a ragged row's
        // too), and its report counted those words; the kept text column holds the whole cell.
        let mut text = raw.text;
        text.iter_mut().for_each(|t| {
            cut_to_max_text(t);
        });
        Ok(ReportRow {
            row: check.row(raw.row.as_deref())?,
            id: raw.id,
            category,
            confidence,
            runner_up,
            margin,
            tokens,
            truncated,
            also: match (category, raw.also.as_deref()) {
                (Some(c), Some(a)) => Some(check.also(c, check.scenario("also", a)?, a)?),
                _ => None,
            },
            status,
            text,
            evidence: raw.evidence,
            group: raw.group,
        })
    }
}

/// The checks of one row's fields, each failing with the file, line and column.
struct RowCheck<'a> {
    reader: &'a ClassifiedReader,
    line: Option<u64>,
}

impl RowCheck<'_> {
    fn fail(&self, column: &str, problem: String) -> Error {
        Error::Input {
            file: self.reader.name.clone(),
            line: self.line,
            column: Some(column.to_string()),
            problem,
        }
    }

    fn scenario(&self, column: &str, id: &str) -> Result<usize> {
        let taxonomy = &self.reader.taxonomy;
        taxonomy.index_of(id).ok_or_else(|| {
            self.fail(
                column,
                format!(
                    "'{id}' is not a scenario of this taxonomy ({}); pass the --taxonomy \
                     the stories were classified with",
                    taxonomy.ids().join(", ")
                ),
            )
        })
    }

    fn number(&self, column: &str, value: Option<&str>) -> Result<f32> {
        let v =
            value.ok_or_else(|| self.fail(column, "is empty but the row has a category".into()))?;
        let one_comma = v.matches(',').count() == 1 && !v.contains('.');
        let parsed = match self.reader.decimal_comma && one_comma {
            true => v.replacen(',', ".", 1).parse::<f32>(),
            false => v.parse::<f32>(),
        };
        match parsed {
            Ok(x) if x.is_finite() => Ok(x),
            Ok(_) => Err(self.fail(
                column,
                format!("'{v}' is not a finite number in f32's range"),
            )),
            Err(_) => Err(self.fail(column, format!("'{v}' is not a number"))),
        }
    }

    /// The confidence, margin and runner-up of a row with a category, and its scores checked.
    fn scored(&self, raw: &RawRow, category: usize) -> Result<(f32, f32, Option<usize>)> {
        let confidence = self.number("confidence", raw.confidence.as_deref())?;
        if !(0.0..=1.0).contains(&confidence) {
            return Err(self.fail("confidence", format!("{confidence} is outside 0–1")));
        }
        let runner_up = raw
            .runner_up
            .as_deref()
            .map(|r| self.scenario("runner_up", r))
            .transpose()?;
        if runner_up == Some(category) {
            return Err(self.fail(
                "runner_up",
                format!(
                    "is '{}', the row's category too, where classify always names another \
                     scenario; was the file edited? Classify it again",
                    raw.runner_up.as_deref().unwrap_or_default()
                ),
            ));
        }
        let margin = self.number("margin", raw.margin.as_deref())?;
        // Scores are cosines (or a head's probabilities), so two differ by at most 2; a
        // margin may be negative where the `other` rule overrode a better named scenario.
        if !(-2.0..=2.0).contains(&margin) {
            return Err(self.fail(
                "margin",
                format!("{margin} is outside -2 to 2, where a difference of two scores lies"),
            ));
        }
        // A score is a cosine or, with a few-shot head, a probability.
        for (column, score) in &raw.scores {
            let score = self.number(column, score.as_deref())?;
            if !(-1.0..=1.0).contains(&score) {
                return Err(self.fail(
                    column,
                    format!(
                        "{score} is outside -1 to 1, where a similarity or a probability \
                         lies; was the file edited? Classify it again"
                    ),
                ));
            }
        }
        Ok((confidence, margin, runner_up))
    }

    /// The `also` column: a second scenario classify names only beside a named category.
    fn also(&self, category: usize, also: usize, name: &str) -> Result<usize> {
        let other = self.reader.taxonomy.other_index();
        let problem = match () {
            _ if also == category => "the row's category too",
            _ if also == other => "other, which classify never names there",
            _ if category == other => {
                "set beside the category other, where classify leaves it empty"
            }
            _ => return Ok(also),
        };
        Err(self.fail(
            "also",
            format!("is '{name}', {problem}; was the file edited? Classify it again"),
        ))
    }

    /// classify writes `tokens`, `truncated` and `status` on every row, an empty or
    /// malformed one too, so a cell left blank was made by an edit (and read as 0 tokens it
    /// would skew the mean).
    fn unwritten(&self, column: &str) -> Error {
        self.fail(
            column,
            "has no value, where classify writes one on every row; was the file edited? \
             Classify it again"
                .into(),
        )
    }

    fn tokens(&self, value: Option<&str>) -> Result<u64> {
        match value {
            None => Err(self.unwritten("tokens")),
            Some(t) => t
                .parse::<u64>()
                .map_err(|_| self.fail("tokens", format!("'{t}' is not a whole number"))),
        }
    }

    fn truncated(&self, value: Option<&str>) -> Result<bool> {
        match value {
            None => Err(self.unwritten("truncated")),
            Some(t) if t.eq_ignore_ascii_case("true") => Ok(true),
            Some(t) if t.eq_ignore_ascii_case("false") => Ok(false),
            Some(t) => Err(self.fail("truncated", format!("'{t}' is neither true nor false"))),
        }
    }

    /// The row's status, checked against its category.
    fn status(&self, status: String, has_category: bool) -> Result<String> {
        if status.is_empty() {
            return Err(self.unwritten("status"));
        }
        Status::from_name(&status).ok_or_else(|| {
            self.fail(
                "status",
                format!(
                    "'{status}' is not a status classify writes ({})",
                    Status::ALL.map(Status::as_str).join(", ")
                ),
            )
        })?;
        // `empty` is the one status classify writes only without a category: the story had
        // nothing to read.
        if has_category && status == "empty" {
            return Err(self.fail(
                "status",
                "is empty, which classify writes only for a story with nothing to read, but \
                 the row has a category; was the file edited? Classify it again"
                    .into(),
            ));
        }
        Ok(status)
    }

    fn row(&self, value: Option<&str>) -> Result<u64> {
        match value {
            None => Ok(self.reader.rows),
            Some(r) => r.parse::<u64>().ok().filter(|&r| r > 0).ok_or_else(|| {
                self.fail(
                    "row",
                    format!("'{r}' is not a row number; a shard's part numbers its rows from 1"),
                )
            }),
        }
    }
}

/// One row's fields as text, before checking.
struct RawRow {
    id: String,
    category: Option<String>,
    confidence: Option<String>,
    runner_up: Option<String>,
    margin: Option<String>,
    tokens: Option<String>,
    truncated: Option<String>,
    status: String,
    also: Option<String>,
    evidence: Option<String>,
    /// The advice classify wrote beside the category.
    advice: Option<String>,
    text: Option<String>,
    group: Option<String>,
    /// The input's row number, in a shard's part.
    row: Option<String>,
    /// The scores, by column (or JSON field) name: unused by the report, but a row whose
    /// scores are not numbers was not written by classify.
    scores: Vec<(String, Option<String>)>,
}

/// `--explain`'s evidence column: its columns come right after `advice`, which follows
/// `status`; a kept input column named `evidence` comes later, and is not classify's.
fn evidence_column(headers: &[String], index: &[usize; EXPECTED_COLUMNS.len()]) -> Option<usize> {
    let explained = ["advice"].iter().chain(&EXPLAIN_COLUMNS);
    headers
        .get(index[7] + 1..index[7] + 2 + EXPLAIN_COLUMNS.len())
        .is_some_and(|h| h.iter().eq(explained))
        .then_some(index[7] + 1 + EXPLAIN_COLUMNS.len())
}

impl CsvRows {
    /// The next row, or None at the end of the input; `name` is the file's, for messages.
    fn next(&mut self, name: &str) -> Result<Option<CsvRow>> {
        let more = self
            .reader
            .read_byte_record(&mut self.record)
            .map_err(|e| Error::csv(name, e))?;
        if !more {
            return Ok(None);
        }
        let line = self.record.position().map(|p| self.lines.line_at(p.byte()));
        self.last_line = line.or(self.last_line);
        let width = self.reader.byte_headers().map_or(0, |h| h.len());
        if let Some(problem) = self.damage(width) {
            return Err(input_error(name, line, problem));
        }
        let record = &self.record;
        let columns = &self.columns;
        let not_utf8 = [Some(columns.index[0]), columns.text, columns.group]
            .into_iter()
            .flatten()
            .any(|i| std::str::from_utf8(&record[i]).is_err());
        Ok(Some(CsvRow {
            fields: columns.fields(record),
            line,
            not_utf8,
        }))
    }

    /// What shows that the row just read was not written whole by classify, which writes
    /// every row whole: the file was cut short, joined to another or edited. `width` is the
    /// header's.
    fn damage(&self, width: usize) -> Option<String> {
        let record = &self.record;
        if self.lines.ends_in_quotes() {
            return Some(
                "a quoted field opens in this row and the file ends before it closes, so the \
                 file was cut short (classify writes every row whole): copy it again, or \
                 classify the input again"
                    .into(),
            );
        }
        // Two outputs joined with `cat`: the second one's header is not a row, whatever
        // columns each kept (no scenario is called `category`).
        let index = &self.columns.index;
        let own = |i: usize, name: &str| record.get(i) == Some(name.as_bytes());
        if own(index[1], "category") && own(index[2], "confidence") {
            return Some(
                "this line repeats the header row, so two outputs were joined into one file: \
                 put a sharded run's parts together with failup merge --rows, or remove the \
                 repeated header"
                    .into(),
            );
        }
        (record.len() != width).then(|| {
            format!(
                "the row has {} fields and the header {width}; classify writes every row \
                 whole, so this file was cut or edited: classify the input again",
                record.len()
            )
        })
    }

    /// The line of the last row, when the file ends in the middle of a line.
    fn unended_line(&self) -> Option<u64> {
        self.lines
            .ends_mid_line()
            .then_some(self.last_line)
            .flatten()
    }
}

impl CsvColumns {
    /// The fields of `record`, a row as wide as the header.
    fn fields(&self, record: &csv::ByteRecord) -> RawRow {
        let field = |i: usize| String::from_utf8_lossy(record.get(i).unwrap_or(b""));
        let index = &self.index;
        RawRow {
            id: field(index[0]).into_owned(),
            category: non_empty(field(index[1]).trim()),
            confidence: non_empty(field(index[2]).trim()),
            runner_up: non_empty(field(index[3]).trim()),
            margin: non_empty(field(index[4]).trim()),
            tokens: non_empty(field(index[5]).trim()),
            truncated: non_empty(field(index[6]).trim()),
            status: field(index[7]).trim().to_string(),
            also: self.also.and_then(|i| non_empty(field(i).trim())),
            evidence: self.evidence.and_then(|i| non_empty(&field(i))),
            // Saved again in a legacy encoding, its quotes and dashes would be U+FFFD, and
            // tell nothing of the taxonomy.
            advice: self
                .advice
                .and_then(|i| std::str::from_utf8(record.get(i)?).ok())
                .map(str::to_string),
            text: self.text.map(|i| field(i).into_owned()),
            group: self.group.map(|i| field(i).into_owned()),
            row: self.part.then(|| field(0).trim().to_string()),
            scores: self
                .scores
                .iter()
                .map(|(i, name)| (name.clone(), non_empty(field(*i).trim())))
                .collect(),
        }
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn input_error(file: &str, line: Option<u64>, problem: String) -> Error {
    Error::Input {
        file: file.to_string(),
        line,
        column: None,
        problem,
    }
}

/// Whether the header line `head` begins with classify's own columns between commas (after
/// the `row` column of a shard's part). Kept input columns follow them unquoted unless they
/// hold a comma, so a kept name with more `;` or `|` than the header has commas would
/// otherwise win the delimiter count.
fn names_classify_columns_with_commas(head: &[u8]) -> bool {
    let line = crate::input::first_line_of(head);
    let line = line.strip_prefix(b"row,").unwrap_or(line);
    line.starts_with(b"id,category,")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::MAX_TEXT_BYTES;

    fn read(text: &str, group_by: Option<&str>) -> Result<Vec<ReportRow>> {
        read_bytes(text.as_bytes().to_vec(), group_by)
    }

    fn read_bytes(bytes: Vec<u8>, group_by: Option<&str>) -> Result<Vec<ReportRow>> {
        let mut r = ClassifiedReader::from_reader(
            Box::new(io::Cursor::new(bytes)),
            "t".into(),
            &Taxonomy::builtin(),
            None,
            group_by,
        )?;
        let mut rows = Vec::new();
        while let Some(row) = r.next_row()? {
            rows.push(row);
        }
        Ok(rows)
    }

    const CSV: &str = "id,category,confidence,runner_up,margin,tokens,truncated,status,team,text\n\
        a,lost_pitch,0.8000,other,0.1000,12,false,ok,x,We lost the pitch.\n\
        b,,,,,0,false,empty,y,\n";

    #[test]
    fn reads_csv_rows() {
        let rows = read(CSV, Some("team")).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].category, Some(2));
        assert_eq!(rows[0].runner_up, Some(3));
        assert_eq!(rows[0].confidence, 0.8);
        assert_eq!(rows[0].text.as_deref(), Some("We lost the pitch."));
        assert_eq!(rows[0].group.as_deref(), Some("x"));
        assert_eq!(rows[1].category, None);
        assert_eq!(rows[1].status, "empty");
    }

    /// classify writes a kept column's name unquoted unless it holds a comma, so one full of
    /// `;` outnumbered the header's commas and the file was split at `;` and refused.
    #[test]
    fn a_kept_column_named_with_semicolons_does_not_change_the_delimiter() {
        let name = ["notes"; 20].join(";");
        let csv = CSV.replace(",team,text\n", &format!(",team,text,{name}\n"));
        let csv = csv
            .replace("pitch.\n", "pitch.,n\n")
            .replace("y,\n", "y,,n\n");
        let rows = read(&csv, Some("team")).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].text.as_deref(), Some("We lost the pitch."));
        // A shard's part begins with its row numbers.
        let part = csv.replace("id,category,", "row,id,category,");
        let part = part.replace("a,lost", "1,a,lost").replace("b,,", "2,b,,");
        assert_eq!(read(&part, Some("team")).unwrap()[1].status, "empty");
        // A spreadsheet's `;` file is still read as one.
        let semi = CSV
            .replace(',', ";")
            .replace("0.8000", "0,8000")
            .replace("0.1000", "0,1000");
        assert_eq!(read(&semi, None).unwrap()[0].confidence, 0.8);
    }

    #[test]
    fn an_empty_file_named_jsonl_is_classifys_output_of_no_rows() {
        let open = |name: &str, bytes: &'static [u8]| {
            let source = Box::new(io::Cursor::new(bytes));
            ClassifiedReader::from_reader(source, name.into(), &Taxonomy::builtin(), None, None)
        };
        for name in ["part-3.jsonl", "p.NDJSON", "p.jsonl.gz"] {
            let mut r = open(name, b"").unwrap();
            assert!(r.next_row().unwrap().is_none(), "{name}");
        }
        // Without the name there is nothing to tell it by: a CSV output has a header line.
        let e = open("p.csv", b"\n").err().unwrap().to_string();
        assert!(
            e.contains("no column names") && e.contains("named .jsonl"),
            "{e}"
        );
    }

    /// A taxonomy that only rewords another's gives the same score columns: the advice
    /// classify wrote tells them apart.
    #[test]
    fn rows_whose_advice_this_taxonomy_does_not_give_are_counted() {
        let headline = Taxonomy::builtin().scenarios[2].headline.clone();
        let with_advice = |advice: &str| {
            CSV.replace(",status,team,", ",status,advice,team,")
                .replace(",ok,x,", &format!(",ok,\"{advice}\",x,"))
                .replace(",empty,y,", ",empty,,y,")
        };
        let counted = |bytes: Vec<u8>| {
            let source = Box::new(io::Cursor::new(bytes));
            let taxonomy = Taxonomy::builtin();
            let mut r =
                ClassifiedReader::from_reader(source, "t".into(), &taxonomy, None, None).unwrap();
            while r.next_row().unwrap().is_some() {}
            r.rows_with_other_advice()
        };
        assert_eq!(counted(with_advice(&headline).into_bytes()), (0, None));
        assert_eq!(
            counted(with_advice("Call Jane.").into_bytes()),
            (1, Some(2))
        );
        // Saved again in a legacy encoding, the cell is not compared.
        let mut legacy = with_advice("Call Jane \u{2013} in HR.").into_bytes();
        let dash = legacy
            .windows(3)
            .position(|w| w == "\u{2013}".as_bytes())
            .unwrap();
        legacy.splice(dash..dash + 3, [0x96]);
        assert_eq!(counted(legacy), (0, None));
    }

    #[test]
    fn a_blank_tokens_truncated_or_status_cell_is_refused() {
        for (column, from, to) in [
            ("tokens", ",12,false,ok,", ",,false,ok,"),
            ("truncated", ",12,false,ok,", ",12,,ok,"),
            ("status", ",12,false,ok,", ",12,false,,"),
            ("status", ",0,false,empty,", ",0,false,,"),
        ] {
            let e = read(&CSV.replace(from, to), None)
                .err()
                .unwrap()
                .to_string();
            assert!(
                e.contains(&format!("column '{column}'")) && e.contains("has no value"),
                "{e}"
            );
        }
        let jsonl = "{\"id\":\"a\",\"category\":null,\"confidence\":null,\"runner_up\":null,\
            \"margin\":null,\"tokens\":null,\"truncated\":false,\"status\":\"empty\"}\n";
        let e = read(jsonl, None).err().unwrap().to_string();
        assert!(e.contains("t:1, column 'tokens'"), "{e}");
    }

    #[test]
    fn kept_columns_that_are_not_an_object_are_refused_with_their_line() {
        let row = |columns: &str| {
            format!(
                "{{\"id\":\"a\",\"category\":null,\"confidence\":null,\"runner_up\":null,\
                 \"margin\":null,\"tokens\":0,\"truncated\":false,\"status\":\"empty\",\
                 \"columns\":{columns}}}\n"
            )
        };
        let good = row("{\"team\":\"x\"}");
        assert_eq!(
            read(&good, Some("team")).unwrap()[0].group.as_deref(),
            Some("x")
        );
        for bad in ["\"garbage\"", "[1]", "null"] {
            // On the first row, before --group-by would call the column missing, and later.
            for text in [row(bad), format!("{good}{}", row(bad))] {
                let e = read(&text, Some("team")).err().unwrap().to_string();
                let line = text.lines().count();
                assert!(
                    e.contains(&format!("t:{line}: field 'columns' is not an object")),
                    "{e}"
                );
            }
        }
    }

    #[test]
    fn a_row_classify_could_not_have_written_is_refused() {
        let uncategorised = CSV.replace("a,lost_pitch,0.8000", "a,,0.8000");
        let e = read(&uncategorised, None).err().unwrap().to_string();
        assert!(
            e.contains("t:2") && e.contains("empty but the row's status is ok"),
            "{e}"
        );
        let wide = CSV.replace(",0.1000,", ",-5,");
        let e = read(&wide, None).err().unwrap().to_string();
        assert!(
            e.contains("t:2") && e.contains("-5 is outside -2 to 2"),
            "{e}"
        );
        let contradicted = CSV.replace("12,false,ok,x", "12,false,empty,x");
        let e = read(&contradicted, None).err().unwrap().to_string();
        assert!(
            e.contains("t:2") && e.contains("status") && e.contains("but the row has a category"),
            "{e}"
        );
        let twice = CSV.replace("lost_pitch,0.8000,other", "lost_pitch,0.8000,lost_pitch");
        let e = read(&twice, None).err().unwrap().to_string();
        assert!(
            e.contains("t:2") && e.contains("runner_up") && e.contains("the row's category too"),
            "{e}"
        );
        // The `other` rule can override a better named scenario: its margin is negative.
        let overridden = CSV.replace(",0.1000,", ",-0.0300,");
        assert_eq!(read(&overridden, None).unwrap()[0].margin, -0.03);
    }

    #[test]
    fn scores_and_also_that_classify_cannot_write_are_refused() {
        let scored =
            "id,category,confidence,runner_up,margin,score_passed_over,score_pivot_regret,\
            score_lost_pitch,score_other,tokens,truncated,status,also\n\
            a,lost_pitch,0.8,passed_over,0.02,0.40,0.1,0.42,0.2,12,false,ok,passed_over\n";
        let row = &read(scored, None).unwrap()[0];
        assert_eq!((row.category, row.also), (Some(2), Some(0)));
        let refused = |from: &str, to: &str| {
            let edited = scored.replace(from, to);
            assert_ne!(edited, scored, "{from}");
            read(&edited, None).err().unwrap().to_string()
        };
        let e = refused(",0.42,", ",5,");
        assert!(
            e.contains("score_lost_pitch") && e.contains("5 is outside -1 to 1"),
            "{e}"
        );
        let e = refused(",0.1,", ",-1.5,");
        assert!(
            e.contains("score_pivot_regret") && e.contains("outside -1 to 1"),
            "{e}"
        );
        let e = refused("ok,passed_over", "ok,lost_pitch");
        assert!(
            e.contains("also") && e.contains("the row's category too"),
            "{e}"
        );
        let e = refused("ok,passed_over", "ok,other");
        assert!(e.contains("also") && e.contains("never names there"), "{e}");
        let e = refused("a,lost_pitch,0.8,passed_over", "a,other,0.8,passed_over");
        assert!(
            e.contains("also") && e.contains("beside the category other"),
            "{e}"
        );
    }

    #[test]
    fn an_empty_or_blank_file_is_told_as_such() {
        for text in ["", "\n\n", " \r\n"] {
            let e = read(text, None).err().unwrap().to_string();
            assert!(
                e.starts_with("t:1: no column names (an empty or blank file")
                    && e.contains("id, category, confidence"),
                "{text:?}: {e}"
            );
        }
        // A header without classify's columns is told which are missing.
        let e = read("id,text\na,b\n", None).err().unwrap().to_string();
        assert!(
            e.contains("missing columns 'category'") && e.contains("found: id, text"),
            "{e}"
        );
    }

    #[test]
    fn rows_of_another_taxonomy_are_refused() {
        let csv = "id,category,confidence,runner_up,margin,score_fired,score_other,tokens,\
                   truncated,status\na,other,0.8,fired,0.1,0.2,0.3,12,false,ok\n";
        let e = read(csv, None).err().unwrap().to_string();
        assert!(
            e.contains("classified with the scenarios fired, other (their score_ columns)")
                && e.contains("--taxonomy")
                && e.starts_with("t:1:"),
            "{e}"
        );
        let jsonl = "{\"id\":\"a\",\"category\":\"other\",\"confidence\":0.9,\
            \"runner_up\":\"fired\",\"margin\":0.1,\"scores\":{\"fired\":0.2,\"other\":0.3},\
            \"tokens\":3,\"truncated\":false,\"status\":\"ok\"}\n";
        let e = read(jsonl, None).err().unwrap().to_string();
        assert!(e.contains("(their scores)") && e.starts_with("t:1:"), "{e}");
        // Told by a later row when the first is empty and has no scores.
        let empty = "{\"id\":\"e\",\"category\":null,\"confidence\":null,\"runner_up\":null,\
            \"margin\":null,\"scores\":{},\"tokens\":0,\"truncated\":false,\"status\":\"empty\"}\n";
        let e = read(&format!("{empty}{jsonl}"), None)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("(their scores)") && e.starts_with("t:2:"), "{e}");
        // A kept input column named score_… is not one of classify's scores.
        let kept = "id,category,confidence,runner_up,margin,score_passed_over,score_pivot_regret,\
                    score_lost_pitch,score_other,tokens,truncated,status,score_manual\n\
                    a,other,0.8,lost_pitch,0.1,0.2,0.3,0.2,0.4,12,false,ok,7\n";
        assert_eq!(read(kept, None).unwrap().len(), 1);
    }

    #[test]
    fn a_cut_row_or_an_unknown_status_is_refused_with_its_line() {
        let cut = CSV.replace("ok,x,We lost the pitch.", "ok,x");
        let e = read(&cut, None).err().unwrap().to_string();
        assert!(
            e.contains("t:2") && e.contains("9 fields and the header 10"),
            "{e}"
        );
        let odd = CSV.replace(",ok,", ",weird,");
        let e = read(&odd, None).err().unwrap().to_string();
        assert!(
            e.contains("t:2") && e.contains("'weird' is not a status"),
            "{e}"
        );
    }

    #[test]
    fn reads_a_gzip_compressed_output_as_its_text() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        io::Write::write_all(&mut gz, CSV.as_bytes()).unwrap();
        let packed = read_bytes(gz.finish().unwrap(), Some("team")).unwrap();
        let plain = read(CSV, Some("team")).unwrap();
        assert_eq!(packed.len(), 2);
        assert_eq!(format!("{packed:?}"), format!("{plain:?}"));
    }

    /// A pipe may bring a byte at a time; the delimiter is still told from the whole header.
    #[test]
    fn a_semicolon_file_trickling_in_is_read_as_one() {
        struct Trickle(io::Cursor<Vec<u8>>);
        impl Read for Trickle {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(1);
                self.0.read(&mut buf[..n])
            }
        }
        let semicolons = CSV.replace(',', ";");
        let mut r = ClassifiedReader::from_reader(
            Box::new(Trickle(io::Cursor::new(semicolons.into_bytes()))),
            "t".into(),
            &Taxonomy::builtin(),
            None,
            Some("team"),
        )
        .unwrap();
        let first = r.next_row().unwrap().unwrap();
        assert_eq!(
            (first.category, first.group.as_deref()),
            (Some(2), Some("x"))
        );
    }

    #[test]
    fn reads_jsonl_rows_with_kept_columns() {
        let text = "{\"id\":\" a\\t\",\"category\":\"passed_over\",\"confidence\":0.9,\"runner_up\":\"other\",\
            \"margin\":0.05,\"scores\":{},\"tokens\":20,\"truncated\":true,\"status\":\"ok\",\
            \"advice\":\"x\",\"columns\":{\"text\":\"hi there\",\"team\":\"n\"}}\n\n\
            {\"id\":\"b\",\"category\":null,\"confidence\":null,\"runner_up\":null,\"margin\":null,\
            \"scores\":{},\"tokens\":0,\"truncated\":false,\"status\":\"empty\",\"advice\":null,\
            \"columns\":{\"text\":\"\",\"team\":\"s\"}}\n";
        let rows = read(text, Some("team")).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0].id, " a\t",
            "an id keeps its spaces, as in a CSV output"
        );
        assert_eq!(rows[0].category, Some(0));
        assert!(rows[0].truncated);
        assert_eq!(rows[0].text.as_deref(), Some("hi there"));
        assert_eq!(rows[1].group.as_deref(), Some("s"));
        assert_eq!(rows[1].category, None);
    }

    /// A JSON Lines output cut inside its last row is said to be cut short, as a CSV one is; a
    /// broken line with its line break is bad JSON, not a cut.
    #[test]
    fn a_jsonl_output_cut_inside_its_last_row_is_called_cut_short() {
        let row = "{\"id\":\"a\",\"category\":\"other\",\"confidence\":0.9,\"runner_up\":\
            \"passed_over\",\"margin\":0.05,\"scores\":{},\"tokens\":20,\"truncated\":false,\
            \"status\":\"ok\",\"advice\":\"x\"}\n";
        let cut = format!("{row}{}", &row[..40]);
        let e = read(&cut, None).err().unwrap().to_string();
        assert!(
            e.contains(":2: the file ends inside this line's JSON object"),
            "{e}"
        );
        let broken = format!("{row}{}\n{row}", &row[..40]);
        let e = read(&broken, None).err().unwrap().to_string();
        assert!(e.contains(":2: not valid JSON"), "{e}");
    }

    /// --group-by takes a JSONL output's kept columns by their own names: the list in the
    /// message gave `columns.team`, which was then refused with "did you mean 'columns.team'".
    /// The `columns` and `scores` objects are no groups.
    #[test]
    fn jsonl_columns_are_listed_by_the_names_group_by_takes() {
        let text =
            "{\"id\":\"a\",\"category\":\"other\",\"confidence\":0.9,\"runner_up\":\"lost_pitch\",\
            \"margin\":0.05,\"scores\":{},\"tokens\":2,\"truncated\":false,\"status\":\"ok\",\
            \"advice\":\"x\",\"columns\":{\"team\":\"n\"}}\n";
        let e = read(text, Some("columns.team")).unwrap_err().to_string();
        assert!(e.contains("Did you mean 'team'?"), "{e}");
        assert!(
            !e.contains("columns.team,") && !e.contains(" scores,"),
            "{e}"
        );
        for object in ["columns", "scores"] {
            let e = read(text, Some(object)).unwrap_err().to_string();
            assert!(e.contains("is not in the file"), "{object}: {e}");
        }
        assert_eq!(
            read(text, Some("team")).unwrap()[0].group.as_deref(),
            Some("n")
        );
    }

    #[test]
    fn a_plain_story_csv_is_rejected_with_the_expected_columns() {
        let e = read("id,team,text\n1,a,hello\n", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing columns 'category'"), "{e}");
        assert!(e.contains("id, category, confidence"), "{e}");
    }

    #[test]
    fn a_truncated_cell_other_than_true_or_false_is_refused() {
        let rows = read(&CSV.replace(",false,ok,", ",TRUE,ok,"), None).unwrap();
        assert!(rows[0].truncated && !rows[1].truncated);
        let e = read(&CSV.replace(",false,ok,", ",yes,ok,"), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("t:2") && e.contains("'yes' is neither true nor false"),
            "{e}"
        );
        let jsonl = "{\"id\":\"a\",\"category\":null,\"confidence\":null,\"runner_up\":null,\
            \"margin\":null,\"tokens\":0,\"truncated\":1,\"status\":\"empty\"}\n";
        let e = read(jsonl, None).unwrap_err().to_string();
        assert!(e.contains("'1' is neither true nor false"), "{e}");
    }

    #[test]
    fn a_number_past_f32s_range_is_called_so() {
        let e = read(&CSV.replace("0.1000", "1e300"), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("'1e300' is not a finite number"), "{e}");
        let e = read(&CSV.replace("0.1000", "lots"), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("'lots' is not a number"), "{e}");
    }

    #[test]
    fn a_column_the_report_reads_named_twice_is_refused() {
        let twice = CSV.replace(",team,text\n", ",status,text\n");
        let e = read(&twice, None).unwrap_err().to_string();
        assert!(
            e.contains("t:1") && e.contains("names 'status' 2 times (columns 8, 9)"),
            "{e}"
        );
        let e = read(&CSV.replace(",team,text\n", ",text,text\n"), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("names 'text' 2 times"),
            "the default text column: {e}"
        );
        let team = CSV.replace(",team,text\n", ",team,team\n");
        assert!(
            read(&team, None).is_ok(),
            "a column the report does not read may repeat"
        );
        let e = read(&team, Some("team")).unwrap_err().to_string();
        assert!(e.contains("names 'team' 2 times"), "{e}");
    }

    #[test]
    fn an_unknown_category_names_the_line_and_the_valid_ids() {
        let e = read(&CSV.replace("lost_pitch", "bogus"), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("t:2") && e.contains("bogus") && e.contains("passed_over"),
            "{e}"
        );
    }

    #[test]
    fn grouping_by_a_kept_column_that_failup_renamed_is_refused_with_its_new_name() {
        let csv =
            "id,category,confidence,runner_up,margin,tokens,truncated,status,input_category\n\
                   1,other,0.9,passed_over,0.2,40,false,ok,sales\n";
        let e = read(csv, Some("category")).unwrap_err().to_string();
        assert!(e.contains("--group-by input_category"), "{e}");
        let rows = read(csv, Some("input_category")).unwrap();
        assert_eq!(rows[0].group.as_deref(), Some("sales"));
    }

    #[test]
    fn a_long_kept_text_is_cut_where_classify_cut_it() {
        let long = "word ".repeat(MAX_TEXT_BYTES / 4);
        let csv = format!(
            "id,category,confidence,runner_up,margin,tokens,truncated,status,text\n\
             1,other,0.9,passed_over,0.2,40,false,too_long,{long}\n\
             2,other,0.9,passed_over,0.2,40,false,malformed,{long}\n\
             3,other,0.9,passed_over,0.2,40,false,ok,short\n"
        );
        let rows = read(&csv, None).unwrap();
        let lens: Vec<_> = rows
            .iter()
            .map(|r| r.text.as_ref().unwrap().len())
            .collect();
        assert_eq!(lens, [MAX_TEXT_BYTES, MAX_TEXT_BYTES, 5]);
    }

    #[test]
    fn a_shards_part_gives_its_input_row_numbers_and_its_kept_row_column() {
        let csv = "row,id,category,confidence,runner_up,margin,tokens,truncated,status,row\n\
                   5,a,other,0.9,passed_over,0.2,40,false,ok,r5\n\
                   23,b,other,0.9,passed_over,0.2,40,false,ok,r23\n";
        let rows = read(csv, Some("row")).unwrap();
        let seen: Vec<_> = rows.iter().map(|r| (r.row, r.group.as_deref())).collect();
        assert_eq!(seen, [(5, Some("r5")), (23, Some("r23"))]);
        let jsonl = "{\"row\":7,\"id\":\"a\",\"category\":\"other\",\"confidence\":0.9,\
            \"runner_up\":\"passed_over\",\"margin\":0.2,\"tokens\":4,\"truncated\":false,\
            \"status\":\"ok\",\"columns\":{\"row\":\"r7\"}}\n";
        let rows = read(jsonl, Some("row")).unwrap();
        assert_eq!((rows[0].row, rows[0].group.as_deref()), (7, Some("r7")));
    }

    #[test]
    fn a_missing_group_column_is_named() {
        let e = read(CSV, Some("region")).unwrap_err().to_string();
        assert!(
            e.contains("'region'") && e.contains("--keep-columns region"),
            "{e}"
        );
        // Kept already, in another case: keeping it again would not help.
        let e = read(CSV, Some("Team")).unwrap_err().to_string();
        assert!(
            e.contains("Did you mean 'team'?") && !e.contains("--keep-columns"),
            "{e}"
        );
    }
}
