//! Stories out of a CSV stream, a record at a time, each with the line it started on.

use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Read};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use csv::ByteRecord;

use super::{
    cut_to_max_text,
    decode::{text_stream, Counting},
    header::{check_headers, refuse_broken_header_quotes, trim_header, ColumnIndex, CsvStart},
    lines::{LineBreaks, LineTracker},
    printable, Columns, Dialect, RowIssue, Source, Story, CHUNK_TEXT_BYTES, MAX_TEXT_BYTES,
};
use crate::error::{Error, Result};
use crate::shard::Shard;

/// Reads stories from a CSV input: the header first, then one record at a time.
pub struct StoryReader {
    reader: csv::Reader<Box<dyn Read + Send>>,
    name: String,
    headers: Vec<String>,
    /// The header's cells as read, trimmed, to know a header row met again.
    header_cells: Vec<Vec<u8>>,
    delimiter: u8,
    text: usize,
    id: Option<usize>,
    label: Option<usize>,
    group: Option<usize>,
    keep: Vec<usize>,
    row: u64,
    shard: Shard,
    record: ByteRecord,
    /// The line `record` starts on, and the stray quote found in it, if any.
    record_line: u64,
    record_stray: Option<RowIssue>,
    /// SHA-256 of every record read so far, and as it stood after the last one of the shard:
    /// what `--resume` checks to know the rows it keeps came from this input.
    read_digest: Sha256,
    kept_digest: Sha256,
    bytes_read: Arc<AtomicU64>,
    pub(super) breaks: Arc<Mutex<LineBreaks>>,
    total_bytes: Option<u64>,
    utf16: bool,
}

impl StoryReader {
    pub fn open(source: &Source, columns: &Columns, dialect: Dialect) -> Result<StoryReader> {
        let name = source.name();
        let (inner, total_bytes): (Box<dyn Read + Send>, Option<u64>) = match source {
            Source::Stdin => (Box::new(io::stdin()), None),
            Source::File(path) => {
                let file = File::open(path).map_err(|e| Error::io(&name, e))?;
                if file.metadata().is_ok_and(|m| m.is_dir()) {
                    return Err(Error::Input {
                        file: name,
                        line: None,
                        column: None,
                        problem: "is a folder; give a CSV file".into(),
                    });
                }
                let len = file.metadata().ok().map(|m| m.len());
                (Box::new(file), len)
            }
        };
        StoryReader::from_reader(inner, name, total_bytes, columns, dialect)
    }

    /// Reads CSV from any reader; `name` is used in messages.
    pub fn from_reader(
        inner: Box<dyn Read + Send>,
        name: String,
        total_bytes: Option<u64>,
        columns: &Columns,
        dialect: Dialect,
    ) -> Result<StoryReader> {
        let bytes_read = Arc::new(AtomicU64::new(0));
        let counted = Counting {
            inner,
            count: bytes_read.clone(),
        };
        let (decoded, utf16) = text_stream(Box::new(counted), &name, dialect.encoding)?;
        let start = CsvStart::read(decoded, &name, dialect.delimiter)?;
        let (header_line, delimiter) = (start.header_line, start.delimiter);
        let (tracked, breaks) = LineTracker::wrap(start.stream, delimiter, header_line);
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(tracked);
        let header_record = reader.byte_headers().map_err(|e| Error::csv(&name, e))?;
        let header_start = header_record.position().map_or(0, |p| p.byte());
        let header_cells: Vec<Vec<u8>> = header_record
            .iter()
            .map(|h| h.trim_ascii().to_vec())
            .collect();
        let mut headers: Vec<String> = header_record
            .iter()
            .map(|h| trim_header(&String::from_utf8_lossy(h)).to_string())
            .collect();
        check_headers(&mut headers, &name, header_line, columns.label.is_some())?;
        refuse_broken_header_quotes(header_start, &breaks, &name)?;
        if let Some(i) = header_record
            .iter()
            .position(|h| std::str::from_utf8(h).is_err())
        {
            // Its rows are flagged one by one; a column's name has no status to carry it.
            eprintln!(
                "warning: {name}:{header_line}: the header holds bytes that are not UTF-8 (column \
                 {}, read as '{}'); if the file is a legacy export (Excel on Windows, say), run \
                 again with --encoding windows-1252",
                i + 1,
                printable(&headers[i])
            );
        }
        let ColumnIndex {
            text,
            id,
            label,
            group,
            keep,
        } = ColumnIndex::find(&headers, columns, &name, header_line)?;
        Ok(StoryReader {
            reader,
            name,
            headers,
            header_cells,
            delimiter,
            text,
            id,
            label,
            group,
            keep,
            row: 0,
            shard: Shard::WHOLE,
            record: ByteRecord::new(),
            record_line: 0,
            record_stray: None,
            read_digest: Sha256::new(),
            kept_digest: Sha256::new(),
            bytes_read,
            breaks,
            total_bytes,
            utf16,
        })
    }

    /// The input opened with a UTF-16 byte-order mark and was decoded from UTF-16.
    pub fn decoded_utf16(&self) -> bool {
        self.utf16
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// Position of the text column in the header.
    pub fn text_index(&self) -> usize {
        self.text
    }

    /// The delimiter as read: given, declared by a `sep=` line, or sniffed from the header.
    pub fn delimiter(&self) -> u8 {
        self.delimiter
    }

    /// The id column's name, or None when ids are row numbers.
    pub fn id_column(&self) -> Option<&str> {
        self.id.map(|i| self.headers[i].as_str())
    }

    /// Names of the kept columns, in output order.
    pub fn kept_names(&self) -> Vec<String> {
        self.keep.iter().map(|&i| self.headers[i].clone()).collect()
    }

    /// The line numbers of the blank lines read since the last call. CSV has no empty record,
    /// so the parser passes them over; the caller says so. The parser reads ahead, so these
    /// may lie a little past the last story returned. Every shard of a sharded run reads the
    /// whole input, so only the first one (`--shard 0/N`) has blank lines to tell, and a
    /// sharded run tells each once.
    pub fn take_blank_lines(&self) -> Vec<u64> {
        let lines = std::mem::take(&mut self.breaks.lock().expect("never poisoned").blank_lines);
        match self.shard.index {
            0 => lines,
            _ => Vec::new(),
        }
    }

    /// Shared counter of bytes read so far, and the total when known (for progress).
    pub fn progress_counter(&self) -> (Arc<AtomicU64>, Option<u64>) {
        (self.bytes_read.clone(), self.total_bytes)
    }

    /// Reads only the rows of `shard` from here on (row numbers stay those of the whole
    /// input).
    pub fn set_shard(&mut self, shard: Shard) {
        self.shard = shard;
    }

    /// Reads the shard's next record into `self.record`; false at the end of the input.
    fn advance(&mut self) -> Result<bool> {
        loop {
            let more = self
                .reader
                .read_byte_record(&mut self.record)
                .map_err(|e| Error::csv(&self.name, e))?;
            if !more {
                return Ok(false);
            }
            // Every record's line breaks are passed, the other shards' too: a resume after
            // millions of rows held an entry for every line until the first row read.
            let start = self.record.position().map_or(0, |p| p.byte());
            (self.record_line, self.record_stray) = {
                let mut breaks = self.breaks.lock().expect("never poisoned");
                (breaks.line_at(start), breaks.take_stray_quote(start))
            };
            // Each field is hashed with its length before it and each record closed by a
            // marker, so no two different inputs give the same stream of hashed bytes.
            for field in &self.record {
                self.read_digest.update((field.len() as u64).to_le_bytes());
                self.read_digest.update(field);
            }
            // A stray quote leaves the cells as a well-quoted row's but flags the row, so a
            // row fixed by its quotes alone must not read the same to a resume.
            if self.record_stray.is_some() {
                self.read_digest.update((u64::MAX - 1).to_le_bytes());
            }
            self.read_digest.update(u64::MAX.to_le_bytes());
            self.row += 1;
            if self.shard.holds(self.row - 1) {
                self.kept_digest = self.read_digest.clone();
                return Ok(true);
            }
        }
    }

    /// Data rows read so far in the whole input, other shards' rows included: at the end, the
    /// input's row count.
    pub fn rows_read(&self) -> u64 {
        self.row
    }

    /// SHA-256 (hex) of the input's records up to the last one returned, so a resumed run can
    /// check that the rows it keeps were read from the same bytes (a file touched back to
    /// its old time, or another stream on standard input, is caught).
    pub fn digest(&self) -> String {
        hex::encode(self.kept_digest.clone().finalize())
    }

    /// SHA-256 (hex) of every record read so far, other shards' included: at the end, the
    /// whole input's.
    pub fn input_digest(&self) -> String {
        hex::encode(self.read_digest.clone().finalize())
    }

    /// Skips up to `n` rows (for `--resume`); returns how many there were.
    pub fn skip(&mut self, n: u64) -> Result<u64> {
        self.skip_seeing_ids(n, |_| ())
    }

    /// [`skip`](Self::skip), handing `seen` each skipped row's id as a row read would hold it
    /// (none without an id column: row numbers never repeat), so a resumed run can tell an id
    /// that repeats one of the rows it skipped.
    pub fn skip_seeing_ids(&mut self, n: u64, mut seen: impl FnMut(&str)) -> Result<u64> {
        let mut skipped = 0;
        while skipped < n && self.advance()? {
            skipped += 1;
            if let Some(i) = self.id {
                let bytes = self.record.get(i).unwrap_or_default();
                // As a row read holds it (`story_from_record`).
                let bytes = match i {
                    0 => bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes),
                    _ => bytes,
                };
                let (mut id, _) = cell_text(bytes);
                if id.len() > MAX_TEXT_BYTES {
                    cut_to_max_text(id.to_mut());
                }
                seen(&id);
            }
        }
        Ok(skipped)
    }

    /// Lets go of the blank lines above the last row read: a resumed run passes over rows
    /// the interrupted run read, and told, already. Those read ahead of it stay to be told.
    pub fn forget_blank_lines_above(&self) {
        let start = self.record.position().map_or(0, |p| p.byte());
        let mut breaks = self.breaks.lock().expect("never poisoned");
        // Asked again for the same record, this passes no more line breaks.
        let line = breaks.line_at(start);
        breaks.blank_lines.retain(|&l| l > line);
    }

    /// Reads up to `max` stories, and no more once they hold [`CHUNK_TEXT_BYTES`] of text;
    /// an empty vector means the input is exhausted.
    pub fn next_chunk(&mut self, max: usize) -> Result<Vec<Story>> {
        // `max` comes from the user (`--chunk-size`) and may be far larger than the input.
        let mut chunk = Vec::with_capacity(max.min(4096));
        let mut text = 0;
        while chunk.len() < max && text < CHUNK_TEXT_BYTES && self.advance()? {
            let story = self.story_from_record();
            text += story.text.len();
            chunk.push(story);
        }
        Ok(chunk)
    }

    /// Whether `rec` holds the header's cells again. An appended export's header may start
    /// with its own byte-order mark, and the parser then reads the first cell's quotes as
    /// text.
    fn repeats_header(&self, rec: &ByteRecord) -> bool {
        rec.iter()
            .zip(&self.header_cells)
            .enumerate()
            .all(|(i, (cell, head))| {
                let mut cell = cell.trim_ascii();
                if i == 0 {
                    if let Some(rest) = cell.strip_prefix(b"\xEF\xBB\xBF") {
                        cell = rest
                            .strip_prefix(b"\"")
                            .and_then(|c| c.strip_suffix(b"\""))
                            .unwrap_or(rest);
                    }
                }
                // Another export of the same sheet may spell its header in another case.
                cell.eq_ignore_ascii_case(head)
            })
    }

    /// Whether `rec`, one of the first two data rows, is a survey tool's second or third
    /// header row: Qualtrics writes each question's words under its id, and its metadata
    /// columns' names again with spaces (`Start Date` under `StartDate`), then a row of
    /// `{"ImportId": …}` cells; SurveyMonkey writes each answer's type (`Open-Ended
    /// Response`). Read as stories, the question itself was the most confident one. The text
    /// cell decides the last two (a column of answer types is no header), and the first needs
    /// names spelt otherwise: a ticked box that holds its option's name is an answer.
    fn is_survey_header(&self, rec: &ByteRecord) -> bool {
        if self.row > 2 {
            return false;
        }
        let text = rec.get(self.text).unwrap_or_default().trim_ascii();
        if text.starts_with(br#"{"ImportId":"#) || text == b"Open-Ended Response" {
            return true;
        }
        let squeezed = |c: &[u8]| -> Vec<u8> {
            c.iter()
                .filter(|b| !b.is_ascii_whitespace())
                .map(u8::to_ascii_lowercase)
                .collect()
        };
        let cells = || rec.iter().map(<[u8]>::trim_ascii);
        // Two columns named again with spaces of their own (`Start Date` under `StartDate`):
        // a wide survey's questions outnumber its metadata, so no share of the row is asked
        // for, and a cell that differs from its column's name in case alone is an answer.
        let respelt = (cells().zip(&self.header_cells))
            .filter(|(cell, head)| {
                !cell.eq_ignore_ascii_case(head) && squeezed(cell) == squeezed(head)
            })
            .count();
        self.row == 1 && respelt >= 2
    }

    /// Whether the text is the header's last column and the record has cells past it that
    /// hold something: most often a story with the delimiter in it, unquoted, which cut it
    /// there. Those cells are the rest of the story, and are read back into it (with the
    /// delimiter between them), so the model reads the whole story; the row is still
    /// flagged malformed.
    fn text_runs_on(&self, rec: &ByteRecord) -> bool {
        self.text + 1 == self.headers.len()
            && rec.iter().skip(self.headers.len()).any(|c| !c.is_empty())
    }

    fn story_from_record(&self) -> Story {
        let rec = &self.record;
        let rejoined = self.text_runs_on(rec);
        let text_bytes = match rejoined {
            true => {
                let delimiter = [self.delimiter];
                let cells = rec.iter().skip(self.text).collect::<Vec<_>>();
                Cow::Owned(cells.join(&delimiter[..]))
            }
            false => Cow::Borrowed(rec.get(self.text).unwrap_or_default()),
        };
        let mut cells = Cells {
            rec,
            text: self.text,
            text_bytes,
            invalid_utf8: None,
            cut: Vec::new(),
        };
        let (text, text_cut) = cells.read(self.text);
        let id = match self.id {
            Some(i) => cells.cell(i),
            None => self.row.to_string(),
        };
        let label = self.label.map(|i| cells.cell(i));
        let kept = self.keep.iter().map(|&i| cells.cell(i)).collect();
        let group = self.group.map(|i| cells.group(i));
        Story {
            row: self.row,
            line: self.record_line,
            id,
            text,
            label,
            group,
            kept,
            issues: self.issues(text_cut, cells),
            fields: rec.len(),
            overflows: rec
                .iter()
                .skip(self.headers.len())
                .any(|cell| !cell.is_empty()),
            rejoined,
        }
    }

    /// What is wrong with the record just read, given whether its text was cut and what
    /// reading its other cells found.
    fn issues(&self, text_cut: bool, cells: Cells) -> Vec<RowIssue> {
        let rec = &self.record;
        let unclosed = {
            let breaks = self.breaks.lock().expect("never poisoned");
            breaks.ends_in_quotes.then(|| breaks.last_line())
        };
        let mut issues = Vec::new();
        // The end of the input is read only to finish the last record, so this is the one.
        if let Some(last_line) = unclosed {
            issues.push(RowIssue::UnclosedQuote { last_line });
        }
        issues.extend(self.record_stray);
        if text_cut {
            issues.push(RowIssue::TooLong);
        }
        if rec.len() != self.headers.len() {
            issues.push(RowIssue::Malformed);
        } else if self.repeats_header(rec) {
            issues.push(RowIssue::RepeatedHeader);
        } else if self.is_survey_header(rec) {
            issues.push(RowIssue::SurveyHeader);
        }
        if let Some(column) = cells.invalid_utf8 {
            issues.push(RowIssue::InvalidUtf8 { column });
        }
        issues.extend(cells.cut);
        issues
    }
}

/// The cells of one record read as text, noting those cut at MAX_TEXT_BYTES and those that
/// held bytes that are not text.
struct Cells<'a> {
    rec: &'a ByteRecord,
    /// The text's column.
    text: usize,
    /// The text cell's bytes: with the cells after it joined on, where the text ran on.
    text_bytes: Cow<'a, [u8]>,
    /// The leftmost column whose cell held bytes that are not text.
    invalid_utf8: Option<usize>,
    /// The cells other than the text that were cut, each told once.
    cut: Vec<RowIssue>,
}

impl Cells<'_> {
    /// The cell in column `i` as text, and whether it was cut.
    fn read(&mut self, i: usize) -> (String, bool) {
        let mut bytes: &[u8] = match i == self.text {
            true => &self.text_bytes,
            false => self.rec.get(i).unwrap_or_default(),
        };
        // A byte-order mark opening a line (files joined with `cat`) is no more part of the
        // id than the file's own first one: kept, `1` and `\u{FEFF}1` looked alike and were
        // two ids.
        if i == 0 {
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        }
        let (value, cut, not_text) = cell_value(bytes);
        if not_text {
            self.invalid_utf8 = Some(self.invalid_utf8.map_or(i, |first| first.min(i)));
        }
        (value, cut)
    }

    /// The cell in column `i`, other than the text, as text.
    fn cell(&mut self, i: usize) -> String {
        let (value, cut) = self.read(i);
        self.note_cut(i, cut);
        value
    }

    /// The group's cell, read for the report alone: bad bytes there do not change the row,
    /// which must be the same with or without --group-by.
    fn group(&mut self, i: usize) -> String {
        let (value, cut, _) = cell_value(self.rec.get(i).unwrap_or_default());
        self.note_cut(i, cut);
        value
    }

    /// An id kept as a column too is one cell, whose cut is told once.
    fn note_cut(&mut self, column: usize, cut: bool) {
        let issue = RowIssue::CellCut { column };
        if cut && !self.cut.contains(&issue) {
            self.cut.push(issue);
        }
    }
}

/// A cell as text cut at MAX_TEXT_BYTES (the reader held it to little more, CELL_CAP, and
/// what it kept past that is only quotes and line breaks), whether it was cut, and whether
/// some of its bytes were not text.
fn cell_value(bytes: &[u8]) -> (String, bool, bool) {
    let (value, not_text) = cell_text(bytes);
    let mut value = value.into_owned();
    let cut = cut_to_max_text(&mut value);
    (value, cut, not_text)
}

/// A cell's bytes as text, and whether some of them were not text: invalid UTF-8, or a NUL,
/// which no story holds (it comes of UTF-16 text or binary data pasted into a UTF-8 file)
/// and which would pass into the output as it is. Both are shown as U+FFFD.
fn cell_text(bytes: &[u8]) -> (Cow<'_, str>, bool) {
    let text = String::from_utf8_lossy(bytes);
    let invalid = matches!(text, Cow::Owned(_));
    match text.contains('\0') {
        true => (Cow::Owned(text.replace('\0', "\u{FFFD}")), true),
        false => (text, invalid),
    }
}
