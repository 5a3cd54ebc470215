//! Line numbers for messages: where the line breaks fall in the text the CSV parser reads,
//! which blank lines it skips, and where a quote is left open or stray.

use super::{RowIssue, MAX_TEXT_BYTES};
use std::collections::VecDeque;
use std::io::{self, BufReader, Read};
use std::sync::{Arc, Mutex};

/// Notes where the line breaks are in the (decoded) bytes the CSV parser sees, and whether the
/// input ends inside a quoted field.
pub(super) struct LineTracker<R> {
    inner: R,
    offset: u64,
    breaks: Arc<Mutex<LineBreaks>>,
    quotes: QuoteState,
    delimiter: u8,
    /// Blank lines: the csv crate passes over them, so they are noted here to be told.
    blanks: BlankLines,
    /// The last byte read was `\r`: a `\n` now is the second half of a CRLF.
    after_cr: bool,
    /// Characters read so far on the current line.
    column: u64,
    /// The column of the last quote read, for a stray after it and the spaces between.
    quote_column: u64,
    /// Bytes of the current cell as the parser gives it (its quoting undone), so far.
    cell_bytes: usize,
    /// Dropping the current cell's bytes past [`CELL_CAP`].
    dropping: bool,
}

/// The most of one cell the parser is given, counted as the parser reads it (quotes undone):
/// past [`MAX_TEXT_BYTES`], so a story is cut exactly where it was before, and still flagged
/// as too long. What is kept past it (quotes, line breaks) lies beyond that cut.
const CELL_CAP: usize = MAX_TEXT_BYTES + 4;

/// Whether byte `b` ends a line: every `\r` (alone in old Mac files, or opening a CRLF) and a
/// `\n` that does not close a CRLF. The csv crate ends records at each of the three endings.
fn ends_line(b: u8, after_cr: bool) -> bool {
    b == b'\r' || (b == b'\n' && !after_cr)
}

/// Finds the blank lines outside quoted fields, which CSV does not count as rows. One is
/// kept only when more text follows it, so the line breaks that end a file are not blank
/// lines.
struct BlankLines {
    /// Line breaks (`\n`) passed so far, plus the lines before the CSV started.
    newlines: u64,
    at_line_start: bool,
    unconfirmed: Vec<u64>,
}

impl BlankLines {
    fn new(lines_before: u64) -> BlankLines {
        BlankLines {
            newlines: lines_before,
            // The CSV starts a line: the file's first, or the one after a `sep=` line.
            at_line_start: true,
            unconfirmed: Vec::new(),
        }
    }

    /// Takes the next byte; `line_break` tells whether it ends a line ([`ends_line`]) and
    /// `quoted` whether it sits inside a quoted field.
    fn next(&mut self, b: u8, line_break: bool, quoted: bool, found: &mut Vec<u64>) {
        if line_break {
            self.newlines += 1;
            if self.at_line_start && !quoted {
                self.unconfirmed.push(self.newlines);
            }
            self.at_line_start = !quoted;
        } else if b != b'\n' {
            self.at_line_start = false;
            found.append(&mut self.unconfirmed);
        }
    }
}

impl<R: Read> Read for LineTracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.inner.read(buf)?;
            if n == 0 {
                if !buf.is_empty() {
                    let mut breaks = self.breaks.lock().expect("never poisoned");
                    breaks.ends_in_quotes = self.quotes == QuoteState::Quoted;
                    breaks.ends_mid_line = self.column > 0;
                }
                return Ok(0);
            }
            let kept = self.track(&mut buf[..n]);
            // Zero would read as the end of the input: a piece wholly past a cell's cap
            // is passed over, and the next one read.
            if kept > 0 {
                return Ok(kept);
            }
        }
    }
}

impl<R: Read + Send + 'static> LineTracker<BufReader<R>> {
    /// `stream` read through a tracker, its first line being `first_line` of the file, and
    /// where the tracker notes the line breaks.
    pub(super) fn wrap(
        stream: R,
        delimiter: u8,
        first_line: u64,
    ) -> (Box<dyn Read + Send>, Arc<Mutex<LineBreaks>>) {
        let breaks = Arc::new(Mutex::new(LineBreaks {
            newlines_passed: first_line - 1,
            ..LineBreaks::default()
        }));
        let tracker = LineTracker {
            inner: BufReader::with_capacity(1 << 16, stream),
            offset: 0,
            breaks: breaks.clone(),
            quotes: QuoteState::FieldStart,
            delimiter,
            blanks: BlankLines::new(first_line - 1),
            after_cr: false,
            column: 0,
            quote_column: 0,
            cell_bytes: 0,
            dropping: false,
        };
        (Box::new(tracker), breaks)
    }
}

/// Line numbers of a CSV stream's records, and whether it ends inside a quoted field, for a
/// reader of CSV other than [`StoryReader`]: a classify output read back. The csv crate's
/// own line numbers are one short after CRLF line endings, and it reads a cut file's last,
/// unclosed quote as a whole cell. Cells past 1 MiB are cut, as stories are.
pub(crate) struct CsvLines(Arc<Mutex<LineBreaks>>);

impl CsvLines {
    /// Wraps `inner`, whose first byte starts line 1; give the CSV parser the reader returned.
    pub(crate) fn track(
        inner: Box<dyn Read + Send>,
        delimiter: u8,
    ) -> (Box<dyn Read + Send>, CsvLines) {
        let (tracked, breaks) = LineTracker::wrap(inner, delimiter, 1);
        (tracked, CsvLines(breaks))
    }

    /// The line of the record that starts at byte `start`; asked in the order of the records.
    pub(crate) fn line_at(&self, start: u64) -> u64 {
        let mut breaks = self.0.lock().expect("never poisoned");
        let line = breaks.line_at(start);
        // Only lines are asked for here: what else was noted is let go as it is passed.
        breaks.take_stray_quote(start);
        breaks.blank_lines.clear();
        line
    }

    /// The input ended inside a quoted field: known once its end was read, which the parser
    /// does only to finish the last record.
    pub(crate) fn ends_in_quotes(&self) -> bool {
        self.0.lock().expect("never poisoned").ends_in_quotes
    }

    /// The input ended with no line break after its last line; known once its end was read.
    pub(crate) fn ends_mid_line(&self) -> bool {
        self.0.lock().expect("never poisoned").ends_mid_line
    }
}

impl<R> LineTracker<R> {
    /// Notes the line breaks and quotes of `buf`, and keeps in its front the bytes the
    /// parser should see; returns how many. What a cell holds past [`CELL_CAP`] is dropped, so
    /// a giant cell (or a quote that never closes in a huge file) is never held whole: the
    /// story is cut at [`MAX_TEXT_BYTES`] anyway. Quotes, delimiters and line breaks stay,
    /// so the parser reads the same rows and lines as without the cap.
    fn track(&mut self, buf: &mut [u8]) -> usize {
        let mut breaks = self.breaks.lock().expect("never poisoned");
        let mut kept = 0;
        for i in 0..buf.len() {
            let b = buf[i];
            let line_break = ends_line(b, self.after_cr);
            self.after_cr = b == b'\r';
            let quoted = matches!(self.quotes, QuoteState::Quoted);
            let offset = self.offset + kept as u64;
            if b == b'\n' || b == b'\r' {
                breaks.note(Break {
                    offset,
                    lines: line_break.into(),
                    quoted,
                });
            }
            if self.quotes.strays_at(b, self.delimiter) {
                breaks.stray_quotes.push_back(StrayQuote {
                    offset,
                    line: self.blanks.newlines + 1,
                    column: self.quote_column,
                });
            }
            if b == b'"' {
                self.quote_column = self.column + 1;
            }
            // Characters, not bytes: a UTF-8 continuation byte starts none.
            let starts_char = b & 0xC0 != 0x80;
            if b == b'\n' || b == b'\r' {
                self.column = 0;
            } else if starts_char {
                self.column += 1;
            }
            self.blanks
                .next(b, line_break, quoted, &mut breaks.blank_lines);
            let droppable = self.quotes.passes_over(b, self.delimiter);
            let emitted = self.quotes.emits(b, self.delimiter);
            // Whole characters only: one begun before the cap is finished (up to 3 more
            // bytes, which also bounds a run of stray continuation bytes).
            let drop = droppable
                && (self.dropping
                    || (self.cell_bytes >= CELL_CAP
                        && (starts_char || self.cell_bytes >= CELL_CAP + 3)));
            self.dropping = drop;
            self.quotes = self.quotes.next(b, self.delimiter);
            if self.quotes == QuoteState::FieldStart {
                self.cell_bytes = 0;
            }
            if !drop {
                self.cell_bytes += usize::from(emitted);
                buf[kept] = b;
                kept += 1;
            }
        }
        self.offset += kept as u64;
        kept
    }
}

/// Where the parser stands in a field, as the csv crate reads one (quote `"`, doubled inside
/// quotes). The crate takes a quote that never closes as running to the end of the input, so
/// the rows after it vanish into one cell without an error; this is followed only to say so.
#[derive(Clone, Copy, PartialEq, Eq)]
enum QuoteState {
    FieldStart,
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: its end, or the first of a doubled quote.
    QuoteInQuoted,
    /// Spaces or tabs after a quoted field closed: the parser adds them to the cell, which
    /// the reading trims, so they change nothing (`"id" ,"text"`); other text would.
    Closed,
}

impl QuoteState {
    /// Whether the parser, standing here, reads `b` as plain cell content that changes
    /// nothing about where cells and rows end (so a cell past its cap may drop it).
    fn passes_over(self, b: u8, delimiter: u8) -> bool {
        match self {
            QuoteState::Quoted => !matches!(b, b'"' | b'\n' | b'\r'),
            QuoteState::Unquoted | QuoteState::Closed => !ends_field(b, delimiter),
            QuoteState::FieldStart | QuoteState::QuoteInQuoted => false,
        }
    }

    /// Whether the parser, standing here, puts `b` into the cell: not an opening quote, the
    /// first quote of a doubled one, or what ends the cell.
    fn emits(self, b: u8, delimiter: u8) -> bool {
        match self {
            QuoteState::FieldStart => b != b'"' && !ends_field(b, delimiter),
            QuoteState::Unquoted | QuoteState::QuoteInQuoted | QuoteState::Closed => {
                !ends_field(b, delimiter)
            }
            QuoteState::Quoted => b != b'"',
        }
    }

    /// Whether `b` is text right after a quoted field closed: the csv crate reads on unquoted
    /// and joins it to the field, where it was most likely a quote meant inside the field.
    fn strays_at(self, b: u8, delimiter: u8) -> bool {
        let space = matches!(b, b' ' | b'\t') && b != delimiter;
        match self {
            QuoteState::QuoteInQuoted => b != b'"' && !space && !ends_field(b, delimiter),
            QuoteState::Closed => !space && !ends_field(b, delimiter),
            _ => false,
        }
    }

    fn next(self, b: u8, delimiter: u8) -> QuoteState {
        let ends_field = ends_field(b, delimiter);
        match self {
            QuoteState::FieldStart if b == b'"' => QuoteState::Quoted,
            QuoteState::Quoted if b == b'"' => QuoteState::QuoteInQuoted,
            QuoteState::Quoted => QuoteState::Quoted,
            QuoteState::QuoteInQuoted if b == b'"' => QuoteState::Quoted,
            _ if ends_field => QuoteState::FieldStart,
            QuoteState::QuoteInQuoted | QuoteState::Closed if matches!(b, b' ' | b'\t') => {
                QuoteState::Closed
            }
            _ => QuoteState::Unquoted,
        }
    }
}

fn ends_field(b: u8, delimiter: u8) -> bool {
    b == delimiter || b == b'\n' || b == b'\r'
}

/// Text right after a quoted field closed ([`QuoteState::strays_at`]).
struct StrayQuote {
    offset: u64,
    /// Where the quote that closed the field is, for the user.
    line: u64,
    column: u64,
}

/// A `\r` or `\n` byte of the input, or a run of them inside one quoted cell.
pub(super) struct Break {
    offset: u64,
    /// Lines the bytes end ([`ends_line`]): 0 or 1, or more for a run.
    lines: u64,
    /// It sits inside a quoted field, so it ends no record.
    quoted: bool,
}

/// Line breaks read but not yet passed by the parser.
///
/// The csv crate reports a record's start as the byte after the previous record's
/// terminator, so with CRLF endings or blank lines its line numbers run behind. The true line
/// of a record is one plus the newlines before its first byte that is not a line break.
#[derive(Default)]
pub(super) struct LineBreaks {
    /// `\r` and `\n` bytes, by offset.
    pub(super) pending: VecDeque<Break>,
    /// Offsets of text right after a closing quote ([`QuoteState::strays_at`]) not yet
    /// given to their rows.
    stray_quotes: VecDeque<StrayQuote>,
    newlines_passed: u64,
    /// The input ended inside a quoted field: its last record ran to the end of the input.
    pub(super) ends_in_quotes: bool,
    /// The input's last line has no line break after it.
    ends_mid_line: bool,
    /// Blank lines read and not yet taken by [`StoryReader::take_blank_lines`].
    pub(super) blank_lines: Vec<u64>,
}

impl LineBreaks {
    /// Keeps `b` until the parser passes it. Breaks inside one quoted cell belong to one
    /// record and are only counted, so they are kept as one run: a quote that never closes in
    /// a file of millions of lines would otherwise hold an entry per line.
    fn note(&mut self, b: Break) {
        match self.pending.back_mut() {
            Some(last) if last.quoted && b.quoted => last.lines += b.lines,
            _ => self.pending.push_back(b),
        }
    }

    /// The input's last line, once it has all been read: the line breaks passed and pending,
    /// and one more for text after the last break.
    /// The input ends inside quotes with no line ended outside them since the row being read
    /// began: that row is the one that never closed (not a later one read ahead with it).
    pub(super) fn never_closed(&self) -> bool {
        self.ends_in_quotes && self.pending.iter().all(|b| b.quoted)
    }

    pub(super) fn last_line(&self) -> u64 {
        let pending: u64 = self.pending.iter().map(|b| b.lines).sum();
        self.newlines_passed + pending + u64::from(self.ends_mid_line)
    }

    /// 1-based line of the first content byte at or after byte offset `start`.
    pub(super) fn line_at(&mut self, start: u64) -> u64 {
        let mut cursor = start;
        while let Some(&Break { offset, lines, .. }) = self.pending.front() {
            if offset <= cursor {
                if offset == cursor {
                    cursor += 1;
                }
                self.newlines_passed += lines;
                self.pending.pop_front();
            } else {
                break;
            }
        }
        self.newlines_passed + 1
    }

    /// Whether the record whose first content byte [`LineBreaks::line_at`] just passed holds
    /// stray text after a closing quote. The record ends at the first line break outside
    /// quotes; what lies before `start` belonged to the header or to rows skipped unread.
    pub(super) fn take_stray_quote(&mut self, start: u64) -> Option<RowIssue> {
        let end = self
            .pending
            .iter()
            .find(|b| !b.quoted)
            .map_or(u64::MAX, |b| b.offset);
        let mut found = None;
        while let Some(stray) = self.stray_quotes.front() {
            if stray.offset >= end {
                break;
            }
            if stray.offset >= start && found.is_none() {
                found = Some(RowIssue::StrayQuote {
                    line: stray.line,
                    // The quote that closed the field, just before the stray text.
                    column: stray.column,
                });
            }
            self.stray_quotes.pop_front();
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::MAX_TEXT_BYTES;

    /// What the tracker hands the parser: a giant cell stops at the cap (so it is never held
    /// whole), counted as the parser reads it, doubled quotes as one byte.
    #[test]
    fn the_tracker_passes_on_at_most_the_cap_of_a_cell() {
        let passed = |csv: &[u8]| {
            let mut tracker = LineTracker {
                inner: io::Cursor::new(csv.to_vec()),
                offset: 0,
                breaks: Arc::new(Mutex::new(LineBreaks::default())),
                quotes: QuoteState::FieldStart,
                delimiter: b',',
                blanks: BlankLines::new(0),
                after_cr: false,
                column: 0,
                quote_column: 0,
                cell_bytes: 0,
                dropping: false,
            };
            let mut out = Vec::new();
            tracker.read_to_end(&mut out).unwrap();
            out
        };
        let big = "x".repeat(3 * MAX_TEXT_BYTES);
        let out = passed(format!("1,{big},2\n3,4\n").as_bytes());
        assert_eq!(out.len(), 2 + CELL_CAP + 7);
        assert!(out.ends_with(b",2\n3,4\n"));
        // Under the cap as text, over it as bytes: passed on whole.
        let quotes = "\"\"".repeat(MAX_TEXT_BYTES / 2);
        let cell = format!("\"{quotes}\"");
        assert_eq!(passed(cell.as_bytes()), cell.as_bytes());
    }
}
