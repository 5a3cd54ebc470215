//! Reading stories from CSV, a chunk at a time, so a file of any size streams through.

use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use csv::ByteRecord;

pub use crate::error::unsafe_to_show;
use crate::error::{Error, Result};
use crate::shard::Shard;
use crate::transcode::{Utf8Spotter, Utf8Stream};

/// Where stories come from: a file, or standard input for `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Stdin,
    File(PathBuf),
}

impl Source {
    pub fn from_arg(arg: &Path) -> Source {
        if arg == Path::new("-") {
            Source::Stdin
        } else {
            Source::File(arg.to_path_buf())
        }
    }

    /// How the source is named in messages: a name's control characters are escaped, so a
    /// file named with a terminal's escape codes cannot recolour the terminal.
    pub fn name(&self) -> String {
        match self {
            Source::Stdin => "<stdin>".into(),
            Source::File(p) => escaped(&p.display().to_string()).into_owned(),
        }
    }
}

/// Which input columns ride along into the output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum KeepColumns {
    #[default]
    None,
    All,
    Named(Vec<String>),
}

/// Which columns hold what.
#[derive(Debug, Clone, Default)]
pub struct Columns {
    /// Story text; default `text`, or `story` when there is no `text` column.
    pub text: Option<String>,
    /// Story id; default `id` when present, else the 1-based row number.
    pub id: Option<String>,
    /// A gold label (for `eval`).
    pub label: Option<String>,
    /// The column a report groups by (`classify --report --group-by`).
    pub group: Option<String>,
    pub keep: KeepColumns,
    /// The names are fixed, as an `--examples` file's are: no flag renames them, so a missing
    /// column is to be renamed in the file.
    pub fixed_names: bool,
}

/// How the input file is encoded and delimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dialect {
    /// Field delimiter; None sniffs the header line (see [`sniff_delimiter`]).
    pub delimiter: Option<u8>,
    pub encoding: InputEncoding,
}

/// Character encodings failup reads. UTF-8 may carry a byte-order mark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum InputEncoding {
    #[default]
    Utf8,
    /// ISO-8859-1, read as its superset windows-1252 (as web browsers do).
    Latin1,
    Windows1252,
}

/// Longest story text kept, in bytes. A longer cell is cut here (the model reads only its
/// first 256 tokens anyway) and its row flagged `too_long`, so one giant cell cannot fill
/// memory chunk after chunk.
pub const MAX_TEXT_BYTES: usize = 1 << 20;

/// The text a chunk holds at most, whatever `--chunk-size` allows. Its sentences' tokens and
/// vectors are held until the chunk is scored, about 35 bytes for each byte of text, so 1,024
/// posts of 20 KB peaked at 690 MB, and at 220 MB with this cap. Stories of ordinary length
/// fill 1,024 rows long before it.
pub const CHUNK_TEXT_BYTES: usize = 4 << 20;

/// Cuts `text` to at most [`MAX_TEXT_BYTES`], at a character boundary; true if it was longer.
pub fn cut_to_max_text(text: &mut String) -> bool {
    if text.len() <= MAX_TEXT_BYTES {
        return false;
    }
    let mut cut = MAX_TEXT_BYTES;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    true
}

/// Text from the input as a message on the terminal shows it: control characters (a
/// terminal's escape codes, a line break that would start a fake line of the log) and the
/// marks that reorder text right to left are written as escapes such as `\u{1b}`, as are a
/// byte-order mark and the other invisible characters (a zero-width space, a soft hyphen),
/// which make two values that look the same differ; and text longer than
/// [`PRINTABLE_CHARS`] is shortened (an id that swallowed a file, say). The zero-width joiner
/// and non-joiner are shown as they are: emoji sequences and Persian words are written with
/// them.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    let long = text.len() > PRINTABLE_CHARS && text.chars().nth(PRINTABLE_CHARS).is_some();
    if !long {
        return escaped(text);
    }
    let head: String = text.chars().take(PRINTABLE_CHARS).collect();
    let shown = escaped(&head).into_owned();
    format!("{shown}… ({} characters in all)", text.chars().count()).into()
}

/// [`printable`] without the shortening: for a file's path, which is shown whole.
pub fn escaped(text: &str) -> std::borrow::Cow<'_, str> {
    let hidden = |c: char| {
        unsafe_to_show(c)
            || matches!(
                c,
                '\u{FEFF}' | '\u{200B}' | '\u{00AD}' | '\u{2060}'..='\u{2064}'
            )
    };
    if !text.chars().any(hidden) {
        return text.into();
    }
    let shown = text.chars().map(|c| match hidden(c) {
        true => c.escape_unicode().to_string(),
        false => c.to_string(),
    });
    shown.collect::<String>().into()
}

/// A header's column names for a message: each [`printable`], and at most 30 of them, so a
/// binary file or a header that swallowed the data cannot flood the terminal.
pub fn column_list(headers: &[String]) -> String {
    const SHOWN: usize = 30;
    let mut list: Vec<String> = headers
        .iter()
        .take(SHOWN)
        .map(|h| printable(h).into_owned())
        .collect();
    if headers.len() > SHOWN {
        list.push(format!("and {} more", headers.len() - SHOWN));
    }
    list.join(", ")
}

/// The most characters of an input value [`printable`] shows.
pub const PRINTABLE_CHARS: usize = 100;

/// What [`RowIssue::UnclosedQuote`] means for the user, and what to do, for a row that starts
/// at `line` of a file whose last line is `last_line`: how many lines it took in.
fn unclosed_quote_problem(line: u64, last_line: u64) -> String {
    let taken = match last_line.saturating_sub(line) {
        0 => " before the file ends".to_string(),
        1 => format!(
            ", so line {last_line}, the last, was read into this row and not as a row of its own"
        ),
        n => format!(
            ", so lines {}\u{2013}{last_line} ({n} lines, to the end of the file) were read into \
             this row and not as rows of their own",
            line + 1
        ),
    };
    format!(
        "a quoted field opens in this row and never closes{taken}; close the quote (a quote \
         inside a quoted field is written twice: \"\")"
    )
}

/// What [`RowIssue::StrayQuote`] means for the user, and what to do, after "the quote at
/// line L, column C".
const STRAY_QUOTE: &str = "closes a quoted field, but more text follows it in the same cell, \
     so the quotes were dropped and the pieces joined (with every line between them, which may \
     hold rows of their own); a quote inside a quoted field is written twice: \"\"";

/// What [`RowIssue::RepeatedHeader`] means for the user, and what to do.
const REPEATED_HEADER: &str = "repeats the header row, so it is most likely the header of a \
     second export appended to this file; it is not read as a story (if it is one, change a \
     cell)";

/// What went wrong with a row that was still read (it is never dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowIssue {
    /// The row has a different number of fields from the header.
    Malformed,
    /// The row had bytes that are not UTF-8; they were replaced with U+FFFD. `column` is the
    /// 0-based place in the header of the first cell read that held some.
    InvalidUtf8 { column: usize },
    /// The text was longer than [`MAX_TEXT_BYTES`] and was cut there.
    TooLong,
    /// The row opens a quoted field that never closes, so the parser read every line after
    /// it, to the end of the input (`last_line`), into this row: the rows there were never
    /// read as rows.
    UnclosedQuote { last_line: u64 },
    /// A quoted field closes with more text after it in the same cell (`"ab"cd`): the parser
    /// reads on unquoted and joins the pieces, and any lines between them, into one cell.
    /// `line` and `column` (1-based, in characters) place the quote that closed the field.
    StrayQuote { line: u64, column: u64 },
    /// The row repeats the header's cells: most often a second export appended to the file,
    /// whose header is not a story.
    RepeatedHeader,
    /// A cell other than the text (the id, a kept column) was longer than
    /// [`MAX_TEXT_BYTES`] and was cut there. The row's status stays as it is; it is warned.
    /// `column` is the cell's 0-based place in the header.
    CellCut { column: usize },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Story {
    /// 1-based data row (the header is not a row).
    pub row: u64,
    /// Line in the file where the row starts.
    pub line: u64,
    pub id: String,
    pub text: String,
    pub label: Option<String>,
    /// Value of the group-by column, when one was asked for.
    pub group: Option<String>,
    /// Values of the kept columns, in `StoryReader::kept_names` order.
    pub kept: Vec<String>,
    /// Every problem found in the row, most serious first.
    pub issues: Vec<RowIssue>,
    /// Number of fields in the row (the header has `StoryReader::headers().len()`).
    pub fields: usize,
    /// Cells past the header's last column hold something: not a trailing delimiter but, most
    /// often, an unquoted delimiter in the story, which cut it short and shifted the cells.
    pub overflows: bool,
    /// The text was the last column and ran on past it: those cells were read back into it.
    pub rejoined: bool,
}

impl Story {
    /// Flagged `status=malformed`: ragged, holding the rest of the input after a quote that
    /// never closes, or a header row.
    pub fn is_malformed(&self) -> bool {
        self.issues.contains(&RowIssue::Malformed) || self.cell_problem().is_some()
    }

    /// Why the row's cells are not what the file meant, for the user, if they are not: its
    /// quotes went wrong, so rows may have been read into it, or it is a header.
    pub fn cell_problem(&self) -> Option<String> {
        if let Some(problem) = self.unclosed_quote() {
            return Some(problem);
        }
        self.issues.iter().find_map(|issue| match issue {
            RowIssue::StrayQuote { line, column } => Some(format!(
                "the quote at line {line}, column {column} {STRAY_QUOTE}"
            )),
            RowIssue::RepeatedHeader => Some(REPEATED_HEADER.to_string()),
            _ => None,
        })
    }

    /// What a quote that never closes did to this row and the lines after it, if one did.
    pub fn unclosed_quote(&self) -> Option<String> {
        self.issues.iter().find_map(|issue| match issue {
            RowIssue::UnclosedQuote { last_line } => {
                Some(unclosed_quote_problem(self.line, *last_line))
            }
            _ => None,
        })
    }

    /// The cells other than the text that were cut at [`MAX_TEXT_BYTES`], said for a warning;
    /// `headers` are the reader's.
    pub fn cut_cells(&self, headers: &[String]) -> Option<String> {
        let columns: Vec<String> = self
            .issues
            .iter()
            .filter_map(|issue| match issue {
                RowIssue::CellCut { column } => {
                    let name = headers.get(*column).map_or("", String::as_str);
                    Some(format!("'{}'", printable(name)))
                }
                _ => None,
            })
            .collect();
        (!columns.is_empty()).then(|| {
            let (noun, verb) = match columns.len() {
                1 => ("column", "was"),
                _ => ("columns", "were"),
            };
            format!(
                "{noun} {} held more than 1 MiB and {verb} cut there",
                columns.join(" and ")
            )
        })
    }

    /// A ragged row's fields against the header's, said for a message.
    pub fn fields_against(&self, header_fields: usize) -> String {
        format!(
            "has {} field{} where the header has {header_fields}",
            self.fields,
            if self.fields == 1 { "" } else { "s" }
        )
    }

    /// Whether some cell read held bytes that are not UTF-8.
    pub fn has_invalid_utf8(&self) -> bool {
        self.invalid_utf8_column().is_some()
    }

    /// The first cell read that held bytes that are not UTF-8, by its place in the header.
    fn invalid_utf8_column(&self) -> Option<usize> {
        self.issues.iter().find_map(|issue| match issue {
            RowIssue::InvalidUtf8 { column } => Some(*column),
            _ => None,
        })
    }

    /// Where the row's bytes that are not text were, said for a message: `in column 'team'`.
    pub fn invalid_utf8_place(&self, headers: &[String]) -> Option<String> {
        let column = self.invalid_utf8_column()?;
        let name = headers.get(column).map_or("", String::as_str);
        Some(format!("in column '{}'", printable(name)))
    }

    /// The text the model reads: none for a header row, whose "text" is a column name.
    pub fn text_to_read(&self) -> &str {
        match self.issues.contains(&RowIssue::RepeatedHeader) {
            true => "",
            false => &self.text,
        }
    }
}

/// Counts raw bytes as they are read, for a progress bar by bytes.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Reads the input's first line whole (up to 64 KiB), however few bytes each read brings, and
/// returns it with the rest of the input. The delimiter is sniffed from it, and the CSV
/// parser's first read gets all of it: the parser drops a UTF-8 byte-order mark only there.
fn peek_first_line(inner: Box<dyn Read + Send>) -> io::Result<(Vec<u8>, Box<dyn Read + Send>)> {
    peek_until(inner, |line| line.iter().any(|&b| b == b'\n' || b == b'\r'))
}

/// Reads from `inner` until what it read is `enough` (or 64 KiB, or the end), however few
/// bytes each read brings, and returns that with the rest of the input.
pub(crate) fn peek_until(
    mut inner: Box<dyn Read + Send>,
    enough: impl Fn(&[u8]) -> bool,
) -> io::Result<(Vec<u8>, Box<dyn Read + Send>)> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while head.len() < 1 << 16 && !enough(&head) {
        match inner.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((head, inner))
}

/// The input as UTF-8 text: gzip undone, and legacy encodings decoded before parsing. UTF-8
/// passes through untouched (the CSV parser drops a BOM), so invalid bytes can be flagged per
/// row. A file that opens with a UTF-16 byte-order mark (Excel's "Unicode text") is decoded
/// from UTF-16, its broken sequences kept as bad bytes for the same flag.
pub(crate) fn text_stream(
    inner: Box<dyn Read + Send>,
    name: &str,
    encoding: InputEncoding,
) -> Result<(Box<dyn Read + Send>, bool)> {
    let mut raw = decompressed(inner, name)?;
    let mut utf16 = false;
    let stream: Box<dyn Read + Send> = match encoding {
        InputEncoding::Utf8 => {
            // Whole bytes: a pipe may deliver the first one alone.
            let mut head = Vec::with_capacity(4);
            (&mut raw)
                .take(4)
                .read_to_end(&mut head)
                .map_err(|e| Error::io(name, e))?;
            refuse_utf32(&head, name)?;
            utf16 = head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]);
            let raw = io::Cursor::new(head).chain(raw);
            if utf16 {
                // The decoder reads the byte-order mark and decodes from UTF-16.
                Box::new(Utf8Stream::new(raw, encoding_rs::UTF_16LE))
            } else {
                Box::new(raw)
            }
        }
        // A byte-order mark wins over `--encoding`: no Latin-1 text starts with one, and read
        // as Latin-1 it would become part of the first column's name (`ï»¿id`), so the ids
        // would silently become row numbers.
        InputEncoding::Latin1 | InputEncoding::Windows1252 => {
            let mut head = Vec::with_capacity(UTF8_SNIFF_BYTES as usize);
            (&mut raw)
                .take(UTF8_SNIFF_BYTES)
                .read_to_end(&mut head)
                .map_err(|e| Error::io(name, e))?;
            refuse_utf32(&head[..head.len().min(4)], name)?;
            // A byte-order mark wins over the flag (below), so nothing is misread.
            let marked = [&b"\xEF\xBB\xBF"[..], &[0xFF, 0xFE], &[0xFE, 0xFF]]
                .iter()
                .any(|mark| head.starts_with(mark));
            let utf8 = !marked && reads_as_utf8(&head);
            if utf8 {
                let flag = match encoding {
                    InputEncoding::Latin1 => "latin1",
                    _ => "windows-1252",
                };
                eprintln!(
                    "warning: {name} reads as UTF-8 (its accented or other non-ASCII text is \
                     valid UTF-8), but --encoding {flag} reads each of those bytes as a \
                     character of its own, so café becomes cafÃ©; if the file is UTF-8, drop \
                     --encoding"
                );
            }
            let raw = io::Cursor::new(head).chain(raw);
            match marked || utf8 {
                true => Box::new(Utf8Stream::new(raw, encoding_rs::WINDOWS_1252)),
                // Told already when the whole start is UTF-8; this finds it in the rest.
                false => Box::new(Utf8Stream::new(
                    Utf8Spotter::new(raw, name),
                    encoding_rs::WINDOWS_1252,
                )),
            }
        }
    };
    Ok((stream, utf16))
}

/// UTF-32's byte-order mark opens with UTF-16's, so without this a UTF-32 file would be told
/// as UTF-16, with a conversion that makes nonsense of it.
fn refuse_utf32(head: &[u8], name: &str) -> Result<()> {
    let order = match head {
        [0xFF, 0xFE, 0, 0] => "UTF-32LE",
        [0, 0, 0xFE, 0xFF] => "UTF-32BE",
        _ => return Ok(()),
    };
    let how = format!("opens with the byte-order mark of {order}");
    Err(utf32_error(order, name, 1, &how))
}

fn utf32_error(order: &str, name: &str, line: u64, how: &str) -> Error {
    Error::Input {
        file: name.to_string(),
        line: Some(line),
        column: None,
        problem: format!(
            "the file {how}, which failup does not read; save it as CSV UTF-8, or \
             convert it (for example iconv -f {order} -t UTF-8 IN.csv > OUT.csv)"
        ),
    }
}

/// How much of a file given a legacy `--encoding` is looked at for UTF-8 first.
const UTF8_SNIFF_BYTES: u64 = 1 << 16;

/// Whether `head` holds non-ASCII text that is valid UTF-8 (a sequence cut at its end aside):
/// windows-1252 text almost never is, as its accented letters stand alone between ASCII ones.
fn reads_as_utf8(head: &[u8]) -> bool {
    let valid = match std::str::from_utf8(head) {
        Ok(_) => head.len(),
        Err(e) if e.error_len().is_none() => e.valid_up_to(),
        Err(_) => return false,
    };
    !head[..valid].is_ascii()
}

/// Where the CSV starts: its delimiter, the line its header is on, and the stream from the
/// header on.
struct CsvStart {
    stream: Box<dyn Read + Send>,
    delimiter: u8,
    header_line: u64,
}

/// A header line with NUL bytes is UTF-16 without a byte-order mark when they fall on every
/// other byte (ASCII's high byte), and not text at all otherwise.
#[derive(Clone, Copy, Debug, PartialEq)]
enum NulPattern {
    Utf16Le,
    Utf16Be,
    /// UTF-32, named with its byte order (`UTF-32LE`, `UTF-32BE`).
    Utf32(&'static str),
    Binary,
    /// One NUL alone: a stray byte, not a code unit's half.
    Stray,
}

impl NulPattern {
    fn of(line: &[u8]) -> Option<NulPattern> {
        if !line.contains(&0) {
            return None;
        }
        // ASCII's high byte is NUL, on one side of each code unit; other scripts' code units
        // hold few NULs, and those may fall on either side (U+4E00 is 00 4E in UTF-16LE).
        let head = &line[..line.len().min(512)];
        let nuls = |parity: usize| {
            let n = head.iter().skip(parity).step_by(2).filter(|&&b| b == 0);
            n.count()
        };
        let (even, odd) = (nuls(0), nuls(1));
        // ASCII in UTF-32 is one byte and three NULs: in little-endian order, every fourth
        // byte from the first is the only one not NUL.
        let units = head.len() / 4;
        let whole = &head[..units * 4];
        let quarter = |at: usize| {
            whole
                .iter()
                .skip(at)
                .step_by(4)
                .filter(|&&b| b == 0)
                .count()
        };
        let (first, last) = (quarter(0), quarter(3));
        let others = quarter(1) + quarter(2);
        Some(if even + odd == 1 {
            NulPattern::Stray
        } else if units >= 2 && others == 2 * units && last == units && first * 4 <= units {
            NulPattern::Utf32("UTF-32LE")
        } else if units >= 2 && others == 2 * units && first == units && last * 4 <= units {
            NulPattern::Utf32("UTF-32BE")
        } else if odd >= 4 * even {
            NulPattern::Utf16Le
        } else if even >= 4 * odd {
            NulPattern::Utf16Be
        } else {
            NulPattern::Binary
        })
    }
}

impl CsvStart {
    /// Reads the first line whole (to sniff the delimiter from it) and passes over Excel's
    /// `sep=;` line, which names the delimiter and puts the header on line 2. `delimiter`,
    /// when given, wins over both.
    fn read(text: Box<dyn Read + Send>, name: &str, delimiter: Option<u8>) -> Result<CsvStart> {
        let (mut first_line, mut rest) = peek_first_line(text).map_err(|e| Error::io(name, e))?;
        let declared = excel_separator(&first_line);
        if let Some(d) = declared.filter(|d| delimiter.is_none() && !b",;|\t".contains(d)) {
            return Err(Error::Input {
                file: name.to_string(),
                line: Some(1),
                column: None,
                problem: format!(
                    "the first line, sep={}, declares a delimiter failup does not read (it reads \
                     , ; | or tab); fix the line, or give --delimiter",
                    char::from(d).escape_default()
                ),
            });
        }
        let mut header_line = 1;
        if declared.is_some() {
            let line = first_line_of(&first_line).len();
            // The `sep=` line's own ending: `\r\n`, `\n` or an old Mac's `\r`.
            let ending = match first_line[line..] {
                [b'\r', b'\n', ..] => 2,
                [_, ..] => 1,
                [] => 0,
            };
            let after = line + ending;
            let tail = first_line.split_off(after);
            (first_line, rest) = peek_first_line(Box::new(io::Cursor::new(tail).chain(rest)))
                .map_err(|e| Error::io(name, e))?;
            header_line = 2;
        }
        // No column name holds a NUL, so the header is refused now, from the first 64 KiB
        // (the first line alone: the peek may hold more of the input, as reads fell). Parsed
        // first, a line of NULs with no end (/dev/zero) was read for ever.
        if let Some(nuls) = NulPattern::of(first_line_of(&first_line)) {
            return Err(nul_error(nuls, name, header_line));
        }
        let delimiter = delimiter
            .or(declared)
            .or_else(|| tabs_by_name(name, &first_line))
            .unwrap_or_else(|| sniff_delimiter(&first_line));
        Ok(CsvStart {
            stream: Box::new(io::Cursor::new(first_line).chain(rest)),
            delimiter,
            header_line,
        })
    }
}

/// `--keep-columns` is split at commas, so a column whose name holds one arrives in pieces:
/// the most pieces that join back (with their commas) into a column's name are joined, even
/// where the first piece names a column too (`team` beside `team, region`). Where every piece
/// names a column as well (`team,name` beside `team` and `name`), the list could mean either,
/// and that is an error.
fn rejoin_split_names(names: &[String], headers: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::with_capacity(names.len());
    let mut i = 0;
    while i < names.len() {
        let taken = (i + 2..=names.len())
            .rev()
            .find(|&j| headers.contains(&names[i..j].join(",")))
            .map_or(1, |j| j - i);
        let pieces = &names[i..i + taken];
        let joined = pieces.join(",");
        if taken > 1 && pieces.iter().all(|p| headers.contains(p)) {
            let each: Vec<String> = pieces.iter().map(|p| format!("'{p}'")).collect();
            return Err(Error::Usage(format!(
                "--keep-columns {joined} could mean the column '{joined}' or the columns {}, \
                 as the file has all of them; rename one in the file, or keep every column \
                 with --keep-all",
                each.join(" and ")
            )));
        }
        out.push(joined);
        i += taken;
    }
    Ok(out)
}

/// Why a header line with NUL bytes (`nuls`, as [`NulPattern::of`] reads them) cannot be
/// read: UTF-16 or UTF-32 without a byte-order mark, a stray NUL or a binary file.
fn nul_error(nuls: NulPattern, name: &str, line: u64) -> Error {
    let input = |problem: String| Error::Input {
        file: name.to_string(),
        line: Some(line),
        column: None,
        problem,
    };
    let utf16 =
        match nuls {
            NulPattern::Utf16Le => "UTF-16LE",
            NulPattern::Utf16Be => "UTF-16BE",
            NulPattern::Utf32(order) => {
                let how =
                    format!("looks like {order} (its header has three NUL bytes to a letter)");
                return utf32_error(order, name, line, &how);
            }
            NulPattern::Stray => return input(
                "the header holds a NUL byte, which no column name has; remove it (for example \
                 tr -d '\\000' < IN.csv > OUT.csv)"
                    .into(),
            ),
            NulPattern::Binary => return input(
                "the header holds NUL bytes scattered as in a binary file, not text; give a CSV \
                 file (a spreadsheet must be saved as CSV UTF-8 first)"
                    .into(),
            ),
        };
    input(format!(
        "the header holds NUL bytes, so the file looks like {utf16} without a byte-order mark; \
         save it as CSV UTF-8, or convert it (for example iconv -f {utf16} -t UTF-8 IN.csv > \
         OUT.csv)"
    ))
}

/// Refuses a file whose first line holds NUL bytes, naming what it looks like: for readers of
/// failup's own outputs, which a tool may have saved again in another encoding.
pub fn refuse_nul_header(head: &[u8], name: &str) -> Result<()> {
    match NulPattern::of(first_line_of(head)) {
        Some(nuls) => Err(nul_error(nuls, name, 1)),
        None => Ok(()),
    }
}

/// A header must name its columns, each once; a column with an empty header cell is named for
/// its place ([`name_unnamed_columns`]).
fn check_headers(headers: &mut [String], name: &str, line: u64, labelled: bool) -> Result<()> {
    if headers.iter().all(|h| h.is_empty()) {
        return Err(Error::Input {
            file: name.to_string(),
            line: Some(line),
            column: None,
            // After Excel's `sep=` line, the header is the second line.
            problem: format!(
                "the file is empty or has no header row (a line of only spaces or delimiters \
                 names no column); the {} line must name the columns (for example: {})",
                if line == 1 { "first" } else { "next" },
                if labelled { "id,label,text" } else { "id,text" }
            ),
        });
    }
    // A profile given as `--examples`, or stories kept as JSON (an object a line, or an array
    // of them): read as CSV, the keys would be told as strange column names.
    let first = headers[0].trim_start();
    if first.starts_with('{') || first.starts_with("[{") || first == "[" {
        let problem = if labelled {
            "holds JSON, not labelled stories (a CSV with columns text and label); a profile \
             from failup train or calibrate is given with --profile, and stories kept as JSON \
             are saved as CSV first"
        } else {
            "holds JSON, not a CSV of stories; save the stories as CSV first (a profile from \
             failup train or calibrate is given with --profile)"
        };
        return Err(Error::Input {
            file: name.to_string(),
            line: Some(line),
            column: None,
            problem: problem.into(),
        });
    }
    // A binary file with no NUL on its first line (an ONNX model) was told as a CSV missing
    // its `text` column, its "names" full of control characters. A spreadsheet's header cell
    // may hold a line break or a tab.
    let binary = |c: char| c.is_control() && !matches!(c, '\t' | '\n' | '\r');
    if headers.iter().any(|h| h.chars().any(binary)) {
        return Err(Error::Input {
            file: name.to_string(),
            line: Some(line),
            column: None,
            problem: "the first line holds control characters, as a binary file does, not \
                      column names; give failup a CSV file (saved as CSV UTF-8)"
                .into(),
        });
    }
    name_unnamed_columns(headers);
    for (i, h) in headers.iter().enumerate() {
        if let Some(j) = headers[..i].iter().position(|o| o == h) {
            return Err(Error::Input {
                file: name.to_string(),
                line: Some(line),
                column: Some(h.clone()),
                problem: format!(
                    "the header names this column twice (columns {} and {}); rename one so \
                     every column has its own name",
                    j + 1,
                    i + 1
                ),
            });
        }
    }
    Ok(())
}

/// Names each column whose header cell is empty `column_N` (N counting from 1, with `_` added
/// while another column has the name), as
/// spreadsheets export trailing empty columns (`id,text,,`): it can then be kept, and two of
/// them are not one name twice.
fn name_unnamed_columns(headers: &mut [String]) {
    for i in 0..headers.len() {
        if headers[i].is_empty() {
            // A column of the file may already bear the name: then one more `_`.
            let mut name = format!("column_{}", i + 1);
            while headers.contains(&name) {
                name.push('_');
            }
            headers[i] = name;
        }
    }
}

/// The positions of the columns a reader uses.
struct ColumnIndex {
    text: usize,
    id: Option<usize>,
    label: Option<usize>,
    group: Option<usize>,
    keep: Vec<usize>,
}

impl ColumnIndex {
    /// Finds `columns` in `headers`; a missing one is an error that lists the header's names
    /// and suggests the closest.
    fn find(headers: &[String], columns: &Columns, name: &str, line: u64) -> Result<ColumnIndex> {
        let choose = |flag: &str| match columns.fixed_names {
            false => format!("Choose one with {flag}"),
            true => format!(
                "Rename the file's column (this file's columns are read by their names; \
                 `failup train FILE {flag} NAME` reads other names into a profile)"
            ),
        };
        let find = |wanted: &str, flag: &str| -> Result<usize> {
            headers
                .iter()
                .position(|h| h == wanted)
                .ok_or_else(|| missing_column(name, line, headers, wanted, &choose(flag)))
        };
        let optional = |wanted: &Option<String>, flag: &str| -> Result<Option<usize>> {
            wanted.as_deref().map(|c| find(c, flag)).transpose()
        };
        let twice = |[a, b]: [String; 2], flag: &str| Error::Input {
            file: name.to_string(),
            line: Some(line),
            column: None,
            problem: format!(
                "columns '{}' and '{}' differ only in case, so either could be the one meant; \
                 choose one with {flag}",
                printable(&a),
                printable(&b)
            ),
        };
        let text = match &columns.text {
            Some(c) => find(c, "--text-column")?,
            None => default_column(headers, &["text", "story"])
                .map_err(|two| twice(two, "--text-column"))?
                .ok_or_else(|| {
                    let fix = choose("--text-column");
                    missing_column(name, line, headers, "text", &fix)
                })?,
        };
        let id = match &columns.id {
            Some(c) => Some(find(c, "--id-column")?),
            None => default_column(headers, &["id"]).map_err(|two| twice(two, "--id-column"))?,
        };
        // As `text` and `id` are: spreadsheets capitalise headers (`Label`).
        let label = match columns.label.as_deref() {
            Some(wanted) => Some(match default_column(headers, &[wanted]) {
                Ok(Some(i)) => i,
                Ok(None) => find(wanted, "--label-column")?,
                Err(two) => return Err(twice(two, "--label-column")),
            }),
            None => None,
        };
        if label == Some(text) {
            return Err(Error::Usage(format!(
                "the label column and the story text are both column '{}'; the stories and \
                 their labels need a column each: name the labels' with --label-column, or the \
                 stories' with --text-column",
                printable(&headers[text])
            )));
        }
        let group = optional(&columns.group, "--group-by")?;
        let used = [id, label];
        let keep = match &columns.keep {
            KeepColumns::None => Vec::new(),
            KeepColumns::All => (0..headers.len())
                .filter(|i| !used.contains(&Some(*i)))
                .collect(),
            KeepColumns::Named(names) => {
                let names = &rejoin_split_names(names, headers)?;
                if let Some(twice) = names
                    .iter()
                    .enumerate()
                    .find_map(|(i, n)| names[..i].contains(n).then_some(n))
                {
                    return Err(Error::Usage(format!(
                        "--keep-columns names '{twice}' twice; name each column once"
                    )));
                }
                names
                    .iter()
                    .map(|n| find(n, "--keep-columns"))
                    .collect::<Result<_>>()?
            }
        };
        Ok(ColumnIndex {
            text,
            id,
            label,
            group,
            keep,
        })
    }
}

/// The bytes before the first line break of `head` (`\n`, or `\r` as in CRLF and old Mac files).
pub(crate) fn first_line_of(head: &[u8]) -> &[u8] {
    head.split(|&b| b == b'\n' || b == b'\r')
        .next()
        .unwrap_or_default()
}

/// The delimiter an Excel `sep=X` first line declares, if the line is one: in any case, and
/// quoted as some tools write it again (`"sep=;"`).
fn excel_separator(first_line: &[u8]) -> Option<u8> {
    let line = first_line_of(first_line);
    let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
    let line = match line {
        [b'"', inner @ .., b'"'] => inner,
        _ => line,
    };
    match line {
        [s, e, p, b'=', d] if [*s, *e, *p].eq_ignore_ascii_case(b"sep") && *d != b'"' => Some(*d),
        _ => None,
    }
}

/// Opens a gzip-compressed input as its decompressed text, and refuses a ZIP archive (an
/// Excel workbook is one) with what to do instead. Both are told by their first bytes, not
/// by the file's name, so standard input works too.
pub fn decompressed(mut inner: Box<dyn Read + Send>, name: &str) -> Result<Box<dyn Read + Send>> {
    // What to put in a command line the messages suggest: standard input has no file name.
    let file = match name {
        "<stdin>" => "FILE",
        name => name,
    };
    let mut head = Vec::with_capacity(10);
    (&mut inner)
        .take(10)
        .read_to_end(&mut head)
        .map_err(|e| Error::io(name, e))?;
    if let Some(tool) = other_compression(&head) {
        return Err(Error::Input {
            file: name.to_string(),
            line: None,
            column: None,
            problem: format!(
                "is {tool}-compressed, which failup does not read (it reads gzip); decompress \
                 it first, for example {tool} -dc {file} > OUT.csv"
            ),
        });
    }
    if head.starts_with(b"PK\x03\x04") {
        return Err(Error::Input {
            file: name.to_string(),
            line: None,
            column: None,
            problem: "is a ZIP archive (an Excel .xlsx workbook is one), not CSV; save the sheet \
                      as CSV UTF-8 and give failup that file"
                .into(),
        });
    }
    let is_gzip = head.starts_with(&[0x1F, 0x8B]);
    let raw = io::Cursor::new(head).chain(inner);
    if !is_gzip {
        return Ok(Box::new(raw));
    }
    let mut text = Gzip(Some(flate2::bufread::GzDecoder::new(BufReader::new(raw))));
    // Compressed twice, its text would be read as binary bytes and blamed on NULs.
    let mut text_head = Vec::with_capacity(2);
    (&mut text)
        .take(2)
        .read_to_end(&mut text_head)
        .map_err(|e| Error::io(name, e))?;
    if text_head == [0x1F, 0x8B] {
        return Err(Error::Input {
            file: name.to_string(),
            line: None,
            column: None,
            problem: format!(
                "is gzip-compressed twice (a .gz of a .gz); undo one of them, for example \
                 gzip -dc {file} > OUT.csv.gz, and give failup that file"
            ),
        });
    }
    Ok(Box::new(io::Cursor::new(text_head).chain(text)))
}

/// The tool that made `head`, the first bytes of a file, when it is a compressed format other
/// than gzip. Each of their signatures holds bytes that no UTF-8 text starts with, or a
/// block header no header row spells.
fn other_compression(head: &[u8]) -> Option<&'static str> {
    match head {
        [b'B', b'Z', b'h', b'1'..=b'9', b'1', b'A', b'Y', b'&', b'S', b'Y', ..] => Some("bzip2"),
        [0xFD, b'7', b'z', b'X', b'Z', 0, ..] => Some("xz"),
        [0x28, 0xB5, 0x2F, 0xFD, ..] => Some("zstd"),
        _ => None,
    }
}

/// A gzip stream of one or more members, read one member at a time so that what follows the
/// last one can be judged as `gzip` does: zero bytes (padding that tape and block devices add)
/// end the data; anything else is damage. Errors say that the compressed data is at fault.
/// None once the data has ended.
struct Gzip<R>(Option<flate2::bufread::GzDecoder<R>>);

/// After a member: the next member, or None when only zero bytes (or nothing) follow.
fn next_member<R: BufRead>(mut rest: R) -> io::Result<Option<flate2::bufread::GzDecoder<R>>> {
    loop {
        let ahead = rest.fill_buf()?;
        match ahead.first() {
            None => return Ok(None),
            Some(0x1F) => return Ok(Some(flate2::bufread::GzDecoder::new(rest))),
            Some(_) if ahead.iter().all(|&b| b == 0) => {
                let n = ahead.len();
                rest.consume(n);
            }
            Some(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "bytes that are neither gzip data nor zero padding follow the last member",
                ))
            }
        }
    }
}

impl<R: BufRead> Read for Gzip<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let damaged = |e: io::Error| {
            io::Error::new(
                e.kind(),
                format!(
                    "the gzip data is cut short or damaged ({e}); check the file with `gzip -t`"
                ),
            )
        };
        while let Some(member) = self.0.as_mut() {
            let n = member.read(buf).map_err(damaged)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            if let Some(done) = self.0.take() {
                self.0 = next_member(done.into_inner()).map_err(damaged)?;
            }
        }
        Ok(0)
    }
}

/// Notes where the line breaks are in the (decoded) bytes the CSV parser sees, and whether the
/// input ends inside a quoted field.
struct LineTracker<R> {
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
    fn wrap(
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
struct Break {
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
struct LineBreaks {
    /// `\r` and `\n` bytes, by offset.
    pending: VecDeque<Break>,
    /// Offsets of text right after a closing quote ([`QuoteState::strays_at`]) not yet
    /// given to their rows.
    stray_quotes: VecDeque<StrayQuote>,
    newlines_passed: u64,
    /// The input ended inside a quoted field: its last record ran to the end of the input.
    ends_in_quotes: bool,
    /// The input's last line has no line break after it.
    ends_mid_line: bool,
    /// Blank lines read and not yet taken by [`StoryReader::take_blank_lines`].
    blank_lines: Vec<u64>,
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
    fn last_line(&self) -> u64 {
        let pending: u64 = self.pending.iter().map(|b| b.lines).sum();
        self.newlines_passed + pending + u64::from(self.ends_mid_line)
    }

    /// 1-based line of the first content byte at or after byte offset `start`.
    fn line_at(&mut self, start: u64) -> u64 {
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
    fn take_stray_quote(&mut self, start: u64) -> Option<RowIssue> {
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
    breaks: Arc<Mutex<LineBreaks>>,
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
                let mut id = String::from_utf8_lossy(self.record.get(i).unwrap_or_default());
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
        let (line, stray_quote) = (self.record_line, self.record_stray);
        let unclosed = {
            let breaks = self.breaks.lock().expect("never poisoned");
            breaks.ends_in_quotes.then(|| breaks.last_line())
        };
        let mut issues = Vec::new();
        // The end of the input is read only to finish the last record, so this is the one.
        if let Some(last_line) = unclosed {
            issues.push(RowIssue::UnclosedQuote { last_line });
        }
        issues.extend(stray_quote);
        let mut invalid_utf8: Option<usize> = None;
        // Every cell is cut at MAX_TEXT_BYTES: the reader held it to little more (CELL_CAP),
        // and what it kept past that is only quotes and line breaks. True when it was cut.
        let lossy = |bytes: &[u8]| {
            let mut value = String::from_utf8_lossy(bytes).into_owned();
            let cut = cut_to_max_text(&mut value);
            (value, cut)
        };
        let joined;
        let mut text_bytes = rec.get(self.text).unwrap_or_default();
        let rejoined = self.text_runs_on(rec);
        if rejoined {
            let delimiter = [self.delimiter];
            joined = rec
                .iter()
                .skip(self.text)
                .collect::<Vec<_>>()
                .join(&delimiter[..]);
            text_bytes = &joined;
        }
        let mut field = |i: usize| {
            let mut bytes = match i == self.text {
                true => text_bytes,
                false => rec.get(i).unwrap_or_default(),
            };
            // A byte-order mark opening a line (files joined with `cat`) is no more part of the
            // id than the file's own first one: kept, `1` and `\u{FEFF}1` looked alike and
            // were two ids.
            if i == 0 {
                bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
            }
            if std::str::from_utf8(bytes).is_err() {
                invalid_utf8 = Some(invalid_utf8.map_or(i, |first| first.min(i)));
            }
            lossy(bytes)
        };
        let (text, cut) = field(self.text);
        if cut {
            issues.push(RowIssue::TooLong);
        }
        let mut cut_cells = Vec::new();
        let mut cell = |i: usize| {
            let (value, cut) = field(i);
            // An id kept as a column too is one cell, told once.
            if cut && !cut_cells.contains(&RowIssue::CellCut { column: i }) {
                cut_cells.push(RowIssue::CellCut { column: i });
            }
            value
        };
        let id = match self.id {
            Some(i) => cell(i),
            None => self.row.to_string(),
        };
        let label = self.label.map(&mut cell);
        let kept = self.keep.iter().map(|&i| cell(i)).collect();
        // The group is read for the report alone: bad bytes there do not change the row, which
        // must be the same with or without --group-by.
        let group = self.group.map(|i| {
            let (value, cut) = lossy(rec.get(i).unwrap_or_default());
            if cut && !cut_cells.contains(&RowIssue::CellCut { column: i }) {
                cut_cells.push(RowIssue::CellCut { column: i });
            }
            value
        });
        if rec.len() != self.headers.len() {
            issues.push(RowIssue::Malformed);
        } else if self.repeats_header(rec) {
            issues.push(RowIssue::RepeatedHeader);
        }
        if let Some(column) = invalid_utf8 {
            issues.push(RowIssue::InvalidUtf8 { column });
        }
        issues.extend(cut_cells);
        Story {
            row: self.row,
            line,
            id,
            text,
            label,
            group,
            kept,
            issues,
            fields: rec.len(),
            overflows: rec
                .iter()
                .skip(self.headers.len())
                .any(|cell| !cell.is_empty()),
            rejoined,
        }
    }
}

/// Why a cell that is not blank holds no story, when it does not: only digits and punctuation
/// (`-`, `?`, `...`, `0`), or a word spreadsheets put for no answer (`N/A`, `none`, `TBD`).
/// Classified, such a cell got a named scenario at about 0.7 confidence. Emoji and other
/// symbols are left to the tokenizer, which tells them as words the model does not know.
pub fn not_a_story(text: &str) -> Option<&'static str> {
    // ASCII, Latin-1's and the general punctuation, and CJK and full-width punctuation.
    let punctuation = |c: char| {
        c.is_ascii()
            || c.is_whitespace()
            || c.is_numeric()
            || matches!(c, '\u{A1}'..='\u{BF}' | '\u{2010}'..='\u{205E}')
            || matches!(c, '\u{3000}'..='\u{303F}' | '\u{FF01}'..='\u{FF0F}')
            || matches!(c, '\u{FF1A}'..='\u{FF20}' | '\u{FF5B}'..='\u{FF65}')
    };
    if !text.chars().any(char::is_alphabetic) && text.chars().all(punctuation) {
        return Some("no words, only digits or punctuation");
    }
    // The longest placeholder has 13 letters: a story is not copied beyond that.
    let letters: String = text
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .take(14)
        .collect();
    const PLACEHOLDERS: [&str; 13] = [
        "na",
        "nan",
        "none",
        "null",
        "nil",
        "tbd",
        "tba",
        "blank",
        "empty",
        "unknown",
        "notapplicable",
        "noanswer",
        "noresponse",
    ];
    PLACEHOLDERS
        .contains(&letters.as_str())
        .then_some("only a placeholder such as N/A, none or TBD")
}

/// True when a text has nothing to read: only whitespace, control characters (a NUL, say) and
/// invisible format characters (zero-width spaces and joiners, a stray byte-order mark, bidi
/// marks, soft hyphens). Such a story is written with status `empty` rather than classified
/// from the model's reading of nothing.
pub fn is_blank(text: &str) -> bool {
    text.chars().all(|c| {
        c.is_whitespace()
            || c.is_control()
            || matches!(
                c,
                '\u{00AD}'
                    | '\u{180E}'
                    | '\u{200B}'..='\u{200F}'
                    | '\u{202A}'..='\u{202E}'
                    | '\u{034F}'
                    | '\u{061C}'
                    | '\u{2060}'..='\u{2069}'
                    | '\u{FE00}'..='\u{FE0F}'
                    | '\u{FEFF}'
                    | '\u{E0000}'..='\u{E007F}'
            )
    })
}

/// Tab for a file named `.tsv` or `.tab` (gzipped or not) whose header line holds one: a
/// survey's question for a column name may hold more commas than the header has tabs.
fn tabs_by_name(name: &str, head: &[u8]) -> Option<u8> {
    let name = name.to_ascii_lowercase();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    let tsv = name.ends_with(".tsv") || name.ends_with(".tab");
    (tsv && first_line_of(head).contains(&b'\t')).then_some(b'\t')
}

/// Picks the delimiter from the header line: whichever of `,` `;` tab `|` occurs most
/// outside quotes, comma when none does. Spreadsheet exports in many locales use `;`, and
/// `.tsv` files tabs; a header line has no free text, so counting there is reliable.
pub fn sniff_delimiter(head: &[u8]) -> u8 {
    let line = first_line_of(head);
    let mut counts = [0usize; 4];
    let candidates = [b',', b';', b'\t', b'|'];
    let mut quoted = false;
    for &b in line {
        if b == b'"' {
            quoted = !quoted;
        } else if !quoted {
            if let Some(i) = candidates.iter().position(|&c| c == b) {
                counts[i] += 1;
            }
        }
    }
    let (best, &n) = counts
        .iter()
        .enumerate()
        .max_by_key(|&(i, n)| (n, std::cmp::Reverse(i)))
        .expect("four candidates");
    if n == 0 {
        b','
    } else {
        candidates[best]
    }
}

/// A header whose quotes went wrong names its columns wrongly (`"id"x` reads as `idx`, and
/// the ids became row numbers without a word), or holds the whole file: no column can be
/// trusted, so it is refused where a data row would only be flagged.
fn refuse_broken_header_quotes(
    start: u64,
    breaks: &Arc<Mutex<LineBreaks>>,
    name: &str,
) -> Result<()> {
    let mut breaks = breaks.lock().expect("never poisoned");
    let line = breaks.line_at(start);
    // The input ends inside quotes with no line ended outside them since the header began: the
    // header is the row that never closed (not a later one read ahead with it).
    let never_closes = breaks.ends_in_quotes && breaks.pending.iter().all(|b| b.quoted);
    let problem = match breaks.take_stray_quote(start) {
        _ if never_closes => unclosed_quote_problem(line, breaks.last_line()),
        Some(RowIssue::StrayQuote { line, column }) => {
            format!("the quote at line {line}, column {column} {STRAY_QUOTE}")
        }
        _ => return Ok(()),
    };
    Err(Error::Input {
        file: name.to_string(),
        line: Some(line),
        column: None,
        problem: format!(
            "the header row's quotes went wrong, so its column names cannot be trusted: {problem}"
        ),
    })
}

/// A header cell's name without the spaces and invisible marks around it: a second byte-order
/// mark (a file saved twice with one) or a zero-width space before `id` left the name unmatched,
/// and every id was silently replaced by its row number.
fn trim_header(cell: &str) -> &str {
    cell.trim_matches(|c: char| {
        c.is_whitespace() || matches!(c, '\u{FEFF}' | '\u{200B}'..='\u{200D}' | '\u{2060}')
    })
}

/// The column default `names` find, the first name first: one named so exactly, else one
/// named so in another case (`ID`, `Text`: spreadsheets capitalise headers). Two columns of one
/// name in different cases are returned as an error, rather than one picked by chance.
pub(crate) fn default_column(
    headers: &[String],
    names: &[&str],
) -> std::result::Result<Option<usize>, [String; 2]> {
    if let Some(i) = names
        .iter()
        .find_map(|n| headers.iter().position(|h| h == n))
    {
        return Ok(Some(i));
    }
    for name in names {
        let mut alike = (0..headers.len()).filter(|&i| headers[i].eq_ignore_ascii_case(name));
        match (alike.next(), alike.next()) {
            (Some(i), None) => return Ok(Some(i)),
            (Some(i), Some(j)) => return Err([headers[i].clone(), headers[j].clone()]),
            _ => {}
        }
    }
    Ok(None)
}

/// `fix` says how to name another column ("Choose one with --text-column").
fn missing_column(file: &str, line: u64, headers: &[String], wanted: &str, fix: &str) -> Error {
    // No header has an empty name (failup names unnamed ones), so this is a slip in a list.
    if wanted.is_empty() {
        return Error::Usage(format!(
            "an empty column name was given (in a comma-separated list, a comma at either end \
             or two together make one); the columns are: {}",
            column_list(headers)
        ));
    }
    // A slip of a letter or two in three (a swap counts as one): `year` is no slip for `team`.
    let closest = headers
        .iter()
        .map(|h| {
            let d = strsim::damerau_levenshtein(&h.to_lowercase(), &wanted.to_lowercase());
            (d, h)
        })
        .min_by_key(|(d, _)| *d)
        .filter(|(d, _)| 3 * d <= wanted.chars().count().max(3))
        .map(|(_, h)| format!("; did you mean '{}'?", printable(h)))
        .unwrap_or_default();
    let stop = if closest.is_empty() { "." } else { "" };
    // A header read as one column that holds another delimiter: the wrong --delimiter.
    let split = match headers {
        // A name holding a tab is all but certainly two columns of a tab-separated file.
        [_, _, ..] if headers.iter().any(|h| h.contains('\t')) => {
            " The column names hold tabs: if the file is separated by tabs, give --delimiter \
             tab."
                .to_string()
        }
        [one] if one.contains([',', ';', '\t', '|']) => {
            let shown = match sniff_delimiter(one.as_bytes()) {
                b'\t' => "tab".to_string(),
                d => format!("'{}'", d as char),
            };
            format!(
                " The header was read as one column, but it looks separated by {shown}: give \
                 --delimiter {shown}."
            )
        }
        _ => String::new(),
    };
    Error::Input {
        file: file.to_string(),
        line: Some(line),
        column: None,
        problem: format!(
            "no column named '{}' (columns: {}){closest}{stop}{split} {fix}; if the first \
             line is data rather than column names, add a header row.",
            printable(wanted),
            column_list(headers)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_means_nothing_to_read() {
        for blank in [
            "",
            " \t\n",
            "\0",
            "\u{200B}\u{FEFF}",
            "\x01\x02\u{00A0}",
            "\u{00AD}",
        ] {
            assert!(is_blank(blank), "{blank:?}");
        }
        for text in ["Laid off.", "\u{200B}x", "\0 \u{1F62D}", "?"] {
            assert!(!is_blank(text), "{text:?}");
        }
    }

    fn reader(csv: &str, columns: &Columns) -> Result<StoryReader> {
        reader_bytes(csv.as_bytes().to_vec(), columns, Dialect::default())
    }

    fn reader_named(name: &str, bytes: &[u8], columns: &Columns) -> Result<StoryReader> {
        let bytes = Box::new(io::Cursor::new(bytes.to_vec()));
        StoryReader::from_reader(bytes, name.into(), None, columns, Dialect::default())
    }

    fn reader_bytes(bytes: Vec<u8>, columns: &Columns, dialect: Dialect) -> Result<StoryReader> {
        StoryReader::from_reader(
            Box::new(io::Cursor::new(bytes)),
            "t.csv".into(),
            None,
            columns,
            dialect,
        )
    }

    /// The error `source`, named `name`, is refused with, read with the default columns.
    fn refusal(source: Box<dyn Read + Send>, name: &str) -> String {
        StoryReader::from_reader(
            source,
            name.into(),
            None,
            &Columns::default(),
            Dialect::default(),
        )
        .err()
        .unwrap()
        .to_string()
    }

    #[test]
    fn reads_rows_with_defaults() {
        let mut r = reader("id,text\na,hello\nb,\"two\nlines\"\n", &Columns::default()).unwrap();
        let stories = r.next_chunk(10).unwrap();
        assert_eq!(stories.len(), 2);
        assert_eq!(
            (stories[0].id.as_str(), stories[0].text.as_str()),
            ("a", "hello")
        );
        assert_eq!(stories[1].text, "two\nlines");
        assert_eq!((stories[1].row, stories[1].line), (2, 3));
        assert!(r.next_chunk(10).unwrap().is_empty());
    }

    #[test]
    fn falls_back_to_story_column_and_row_numbers() {
        let mut r = reader("team,story\nx,one\ny,two\n", &Columns::default()).unwrap();
        let s = r.next_chunk(10).unwrap();
        assert_eq!((s[1].id.as_str(), s[1].text.as_str()), ("2", "two"));
    }

    #[test]
    fn a_header_read_as_one_column_suggests_its_delimiter() {
        let headers = ["id,team,text".to_string()];
        let e =
            missing_column("f", 1, &headers, "text", "Choose one with --text-column").to_string();
        assert!(
            e.contains("looks separated by ',': give --delimiter ','"),
            "{e}"
        );
        let e = missing_column("f", 1, &["id\ttext".into()], "text", "x").to_string();
        assert!(e.contains("give --delimiter tab"), "{e}");
        let e = missing_column("f", 1, &["id".into(), "x".into()], "text", "x").to_string();
        assert!(!e.contains("--delimiter"), "{e}");
    }

    #[test]
    fn missing_text_column_lists_columns_and_suggests() {
        let cols = Columns {
            text: Some("stroy".into()),
            ..Columns::default()
        };
        let e = reader("id,story\n1,x\n", &cols).err().unwrap().to_string();
        assert!(e.contains("no column named 'stroy'"), "{e}");
        assert!(
            e.contains("columns: id, story") && e.contains("did you mean 'story'"),
            "{e}"
        );
        // Half the letters of a short name is no slip: `year` is not told `team`.
        let headers = ["id".into(), "team".into(), "text".into()];
        let e = missing_column("f.csv", 1, &headers, "year", "").to_string();
        assert!(!e.contains("did you mean"), "{e}");
        let e = missing_column("f.csv", 1, &headers, "taem", "").to_string();
        assert!(e.contains("did you mean 'team'"), "{e}");
        let e = missing_column("f.csv", 1, &["id".into(), "text".into()], "", "").to_string();
        assert!(e.starts_with("an empty column name was given"), "{e}");
        assert!(e.contains("the columns are: id, text"), "{e}");
    }

    #[test]
    fn ragged_and_non_utf8_rows_are_kept_and_flagged() {
        let mut bytes = b"id,text\n1,fine\n2,too,many\n3,caf".to_vec();
        bytes.extend_from_slice(&[0xE9, b'\n']);
        let mut r = reader_bytes(bytes, &Columns::default(), Dialect::default()).unwrap();
        let s = r.next_chunk(10).unwrap();
        assert_eq!(s.len(), 3);
        assert!(s[0].issues.is_empty());
        assert_eq!(s[1].issues, [RowIssue::Malformed]);
        assert_eq!(s[1].fields, 3);
        assert_eq!(s[2].issues, [RowIssue::InvalidUtf8 { column: 1 }]);
        assert_eq!(s[2].text, "caf\u{FFFD}");
        // The first column read that holds such bytes is named, whichever was read first.
        let bytes = b"id,text,team\n1,caf\xE9,sa\xFCles\n2,fine,\xFC\n".to_vec();
        let columns = Columns {
            keep: KeepColumns::All,
            ..Columns::default()
        };
        let mut r = reader_bytes(bytes, &columns, Dialect::default()).unwrap();
        let s = r.next_chunk(10).unwrap();
        let headers = r.headers();
        assert_eq!(
            s[0].invalid_utf8_place(headers).unwrap(),
            "in column 'text'"
        );
        assert_eq!(
            s[1].invalid_utf8_place(headers).unwrap(),
            "in column 'team'"
        );
    }

    #[test]
    fn text_after_a_closing_quote_flags_its_row_with_the_quote_s_place() {
        // Row 1 reopens a quote on line 4, so rows 2 and 3 vanish into it; row 2 of the second
        // file glues "cd" to "ab". Doubled quotes, and quotes inside unquoted cells, are fine.
        let bytes = b"id,text\n1,\"oops\n2,plain\n3,\"more\n4,fine\n".to_vec();
        let mut r = reader_bytes(bytes, &Columns::default(), Dialect::default()).unwrap();
        let s = r.next_chunk(10).unwrap();
        assert_eq!(s.len(), 2);
        let stray = RowIssue::StrayQuote { line: 4, column: 3 };
        assert_eq!((s[0].issues.as_slice(), s[0].line), ([stray].as_slice(), 2));
        assert_eq!(s[0].text, "oops\n2,plain\n3,more");
        assert!(s[0].is_malformed() && s[1].issues.is_empty());
        let quote = s[0].cell_problem().unwrap();
        assert!(
            quote.starts_with("the quote at line 4, column 3 closes"),
            "{quote}"
        );

        let bytes =
            "id,text\r\n1,\"a \"\"b\"\"\"\r\n\"9\"x,\"ab\"cd\r\n3,5'11\" tall\r\n4,\"é\" x\r\n"
                .as_bytes()
                .to_vec();
        let mut r = reader_bytes(bytes, &Columns::default(), Dialect::default()).unwrap();
        let s = r.next_chunk(10).unwrap();
        let issues: Vec<&[RowIssue]> = s.iter().map(|s| s.issues.as_slice()).collect();
        assert_eq!(
            issues,
            [
                &[][..],
                &[RowIssue::StrayQuote { line: 3, column: 3 }],
                &[],
                &[RowIssue::StrayQuote { line: 5, column: 5 }],
            ]
        );
        assert_eq!((s[1].id.as_str(), s[1].text.as_str()), ("9x", "abcd"));
    }

    /// Spaces after a closing quote are trimmed away, so they leave the row as it was meant.
    #[test]
    fn spaces_after_a_closing_quote_are_not_stray_text() {
        let csv = "\"id\" ,\"text\"\t\n1 , \"a story\"  \n2,\"b\"  \"c\"\n";
        let mut r = reader(csv, &Columns::default()).unwrap();
        let s = r.next_chunk(10).unwrap();
        assert_eq!(s[0].id, "1 ");
        assert!(s[0].issues.is_empty(), "{:?}", s[0].issues);
        assert_eq!(s[1].issues, [RowIssue::StrayQuote { line: 3, column: 5 }]);
    }

    /// A header whose quotes went wrong would name its columns wrongly (`"id"x` is `idx`, and
    /// every id a row number) or swallow the file: it is refused, naming the quote.
    #[test]
    fn a_header_with_broken_quotes_is_refused() {
        let err = |csv: &str| reader(csv, &Columns::default()).err().unwrap().to_string();
        let stray = err("\"id\"x,text\n1,a story\n");
        assert!(
            stray.contains("t.csv:1") && stray.contains("quote at line 1, column 4"),
            "{stray}"
        );
        let unclosed = err("\n\"id,text\n1,a story\n");
        assert!(
            unclosed.contains("t.csv:2") && unclosed.contains("never closes"),
            "{unclosed}"
        );
        // A later row's open quote, read ahead with the header, is that row's own problem.
        let mut r = reader("id,text\n1,\"a story\n", &Columns::default()).unwrap();
        assert_eq!(
            r.next_chunk(10).unwrap()[0].issues,
            [RowIssue::UnclosedQuote { last_line: 2 }]
        );
    }

    /// A quote that never closes is told with the lines it took in, so the rows lost into it
    /// are counted, whatever the line ends; one on the last line took none.
    #[test]
    fn an_unclosed_quote_says_which_lines_it_took_in() {
        let said = |csv: &str| {
            let mut r = reader(csv, &Columns::default()).unwrap();
            let chunk = r.next_chunk(10).unwrap();
            chunk.last().unwrap().unclosed_quote().unwrap()
        };
        let lf = said("id,text\n1,a\n2,\"open\n3,b\n\n4,c\n");
        assert!(
            lf.contains("so lines 4\u{2013}6 (3 lines, to the end of the file)"),
            "{lf}"
        );
        let crlf = said("id,text\r\n1,\"open\r\n2,b\r\n3,c");
        assert!(crlf.contains("so lines 3\u{2013}4 (2 lines,"), "{crlf}");
        let last = said("id,text\n1,a\n2,\"open\n");
        assert!(
            last.contains("never closes before the file ends;"),
            "{last}"
        );
    }

    /// A binary file whose first line holds no NUL is told as one by its control characters;
    /// a header cell with a line break or a tab in it (spreadsheets allow both) is not.
    #[test]
    fn control_characters_in_the_header_tell_a_binary_file() {
        let bytes = b"\x08\x08\x12\x07pytorch\x1a\x052.4.0:\xe5\n\x01\x02".to_vec();
        let e = reader_bytes(bytes, &Columns::default(), Dialect::default())
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("t.csv:1") && e.contains("as a binary file does"),
            "{e}"
        );
        let csv = "id,\"Story\n(free text)\",\"team\tname\"\n1,a story,x\n";
        let columns = Columns {
            text: Some("Story\n(free text)".into()),
            ..Columns::default()
        };
        let mut r = reader(csv, &columns).unwrap();
        assert_eq!(r.next_chunk(10).unwrap()[0].text, "a story");
    }

    /// The label column is found in another case, as the text and id columns are; two
    /// look-alikes are refused, not chosen between.
    #[test]
    fn the_label_column_is_found_in_another_case() {
        let columns = Columns {
            label: Some("label".into()),
            ..Columns::default()
        };
        let mut r = reader("ID,Label,Text\n1,other,a story\n", &columns).unwrap();
        assert_eq!(r.next_chunk(10).unwrap()[0].label.as_deref(), Some("other"));
        let e = reader("id,Label,LABEL,text\n1,a,b,c\n", &columns)
            .err()
            .unwrap();
        assert!(e.to_string().contains("--label-column"), "{e}");
        let e = reader("id,gold,text\n1,a,c\n", &columns).err().unwrap();
        assert!(e.to_string().contains("no column named 'label'"), "{e}");
    }

    /// `--label-column text` names the column the stories are read from by default: it is
    /// refused, as `--text-column label` is, where each row's story was taken for its label.
    #[test]
    fn the_label_column_cannot_be_the_story_column() {
        let columns = Columns {
            label: Some("Text".into()),
            ..Columns::default()
        };
        let e = reader("id,label,text\n1,other,a story\n", &columns)
            .err()
            .unwrap();
        assert!(
            e.to_string()
                .contains("the label column and the story text are both column 'text'"),
            "{e}"
        );
        let columns = Columns {
            text: Some("label".into()),
            ..columns
        };
        assert!(reader("id,label,text\n1,a story,other\n", &columns).is_ok());
    }

    /// Invisible marks around a header name (a second byte-order mark, a zero-width space)
    /// and a byte-order mark opening a data line are not part of the names and ids.
    #[test]
    fn invisible_marks_around_names_and_ids_are_dropped() {
        for mark in ["\u{FEFF}", "\u{200B}", "\u{2060}"] {
            let csv = format!("\u{FEFF}{mark}id,text{mark}\nA7,a story\n{mark}B9,another\n");
            let mut r = reader(&csv, &Columns::default()).unwrap();
            assert_eq!(r.id_column(), Some("id"), "{mark:?}");
            let s = r.next_chunk(10).unwrap();
            assert_eq!(s[0].id, "A7");
            assert_eq!(
                (s[0].text.as_str(), s[1].text.as_str()),
                ("a story", "another")
            );
            let second = if mark == "\u{FEFF}" {
                "B9".to_string()
            } else {
                format!("{mark}B9")
            };
            assert_eq!(s[1].id, second, "{mark:?}");
        }
    }

    #[test]
    fn a_quote_that_never_closes_flags_the_row_that_ran_to_the_end() {
        let bytes =
            b"id;text\n1;\"a; \"\"b\"\"\"\n2;5'11\" tall\n3;\"never closed\n4;lost\n".to_vec();
        let dialect = Dialect {
            delimiter: Some(b';'),
            ..Dialect::default()
        };
        let mut r = reader_bytes(bytes, &Columns::default(), dialect).unwrap();
        let s = r.next_chunk(10).unwrap();
        assert_eq!(s.len(), 3);
        assert!(s[0].issues.is_empty() && s[1].issues.is_empty());
        assert_eq!(s[0].text, "a; \"b\"");
        assert_eq!(s[2].issues, [RowIssue::UnclosedQuote { last_line: 5 }]);
        assert_eq!(s[2].text, "never closed\n4;lost\n");
        let said = s[2].unclosed_quote().unwrap();
        assert!(
            said.contains("never closes, so line 5, the last, was read into this row"),
            "{said}"
        );

        // Closed on the last byte, with no final line break: nothing to flag.
        let bytes = b"id;text\n1;\"two\nlines\"".to_vec();
        let mut r = reader_bytes(bytes, &Columns::default(), dialect).unwrap();
        assert!(r.next_chunk(10).unwrap()[0].issues.is_empty());
    }

    /// A header met again, spaced, quoted or behind a byte-order mark, is flagged and has no
    /// text to read; a row that only shares some of its cells is a story.
    #[test]
    fn a_repeated_header_is_flagged() {
        let csv = "id,text\n1,story\n\u{FEFF}\"id\", text \nid,texts\ntext,id\nID,Text\n";
        let mut r = reader(csv, &Columns::default()).unwrap();
        let s = r.next_chunk(10).unwrap();
        let flagged: Vec<bool> = s
            .iter()
            .map(|s| s.issues == [RowIssue::RepeatedHeader])
            .collect();
        assert_eq!(flagged, [false, true, false, false, true]);
        assert!(s[1].is_malformed());
        assert_eq!((s[1].text.as_str(), s[1].text_to_read()), (" text ", ""));
        assert_eq!(s[2].text_to_read(), "texts");
        assert!(s[1]
            .cell_problem()
            .unwrap()
            .starts_with("repeats the header row"));
    }

    /// `--resume` skips the rows already written: what follows has its own line numbers and
    /// quote problems, not a skipped row's, and the skipped rows' line breaks are not held.
    #[test]
    fn skipped_rows_leave_nothing_behind() {
        let mut csv = String::from("id,text\n1,\"ab\"cd\n");
        for i in 2..=5000 {
            csv.push_str(&format!("{i},\"story\n{i}\"\n"));
        }
        csv.push_str("last,plain\n");
        let mut r = reader(&csv, &Columns::default()).unwrap();
        assert_eq!(r.skip(5000).unwrap(), 5000);
        assert!(r.breaks.lock().unwrap().pending.len() < 10);
        let rest = r.next_chunk(10).unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!((rest[0].row, rest[0].line), (5001, 2 + 2 * 4999 + 1));
        assert!(rest[0].issues.is_empty(), "{:?}", rest[0].issues);
    }

    /// Random CSV-ish bytes (quotes, delimiters, line breaks of both kinds, a byte-order mark,
    /// bytes that are not UTF-8), fed whole or a byte at a time: reading never panics, every
    /// record the CSV parser sees becomes exactly one story, in order, and the last is flagged
    /// for an open quote exactly when the parser read to the end of the input inside quotes.
    #[test]
    fn random_bytes_never_panic_and_every_record_is_a_story() {
        const PIECES: [&[u8]; 14] = [
            b"a",
            b"text",
            b" ",
            b",",
            b";",
            b"\t",
            b"\"",
            b"\"\"",
            b"\n",
            b"\r\n",
            b"\r",
            b"\xEF\xBB\xBF",
            b"\xFF",
            b"\xC3\xA9",
        ];
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for case in 0..3000 {
            let mut bytes = b"id,text\n".to_vec();
            for _ in 0..next() % 60 {
                bytes.extend_from_slice(PIECES[(next() % PIECES.len() as u64) as usize]);
            }
            let records = csv::ReaderBuilder::new()
                .flexible(true)
                .from_reader(&bytes[..])
                .byte_records()
                .count();
            // The oracle for an open quote: a line added at the end is swallowed by it.
            let mut marked = bytes.clone();
            marked.extend_from_slice(b"\nMARK,x\n");
            let last_first_field = csv::ReaderBuilder::new()
                .flexible(true)
                .from_reader(&marked[..])
                .byte_records()
                .last()
                .map(|r| r.unwrap().get(0).unwrap_or_default().to_vec());
            let ends_in_quotes = last_first_field.as_deref() != Some(b"MARK".as_slice());
            let trickle = case % 2 == 1;
            let source: Box<dyn Read + Send> = if trickle {
                Box::new(Trickle(io::Cursor::new(bytes.clone())))
            } else {
                Box::new(io::Cursor::new(bytes.clone()))
            };
            let dialect = Dialect {
                delimiter: Some(b','),
                ..Dialect::default()
            };
            let mut r = StoryReader::from_reader(
                source,
                "t.csv".into(),
                None,
                &Columns::default(),
                dialect,
            )
            .unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(&bytes)));
            let mut stories = Vec::new();
            loop {
                let chunk = r.next_chunk(7).unwrap();
                if chunk.is_empty() {
                    break;
                }
                stories.extend(chunk);
            }
            let context = String::from_utf8_lossy(&bytes);
            assert_eq!(stories.len(), records, "{context:?}");
            for (i, story) in stories.iter().enumerate() {
                assert_eq!(story.row, i as u64 + 1, "{context:?}");
                let open = story.unclosed_quote().is_some();
                assert_eq!(
                    open,
                    ends_in_quotes && i + 1 == stories.len(),
                    "{context:?}"
                );
            }
        }
    }

    /// Hands out one byte per read, as a slow pipe may.
    fn gzipped(bytes: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        io::Write::write_all(&mut gz, bytes).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn gzip_input_reads_as_its_text_and_damage_is_named() {
        let csv = "id;text\n1;\"one; two\"\n2;three\n";
        let mut plain = reader(csv, &Columns::default()).unwrap();
        let mut packed = trickled(gzipped(csv.as_bytes()));
        let (a, b) = (
            plain.next_chunk(10).unwrap(),
            packed.next_chunk(10).unwrap(),
        );
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].text, "one; two");
        assert_eq!(
            a.iter()
                .map(|s| (&s.id, &s.text, s.line))
                .collect::<Vec<_>>(),
            b.iter()
                .map(|s| (&s.id, &s.text, s.line))
                .collect::<Vec<_>>()
        );
        assert_eq!(
            plain.digest(),
            packed.digest(),
            "resume sees the same records"
        );

        let long: String = (0..2000).map(|i| format!("{i};story {i}\n")).collect();
        let mut cut = gzipped(format!("id;text\n{long}").as_bytes());
        cut.truncate(cut.len() / 2);
        let mut r = reader_bytes(cut, &Columns::default(), Dialect::default()).unwrap();
        let e = r
            .next_chunk(5000)
            .expect_err("a cut gzip file fails")
            .to_string();
        assert!(
            e.contains("t.csv") && e.contains("gzip data is cut short"),
            "{e}"
        );

        // Compressed twice: named as that, not as a binary file's NUL bytes.
        let twice = gzipped(&gzipped(csv.as_bytes()));
        let e = reader_bytes(twice, &Columns::default(), Dialect::default())
            .err()
            .expect("a file compressed twice is refused")
            .to_string();
        assert!(
            e.contains("t.csv") && e.contains("gzip-compressed twice"),
            "{e}"
        );

        // Several members, then zero padding, as `gzip` reads them; other bytes are damage.
        let mut padded = gzipped(b"id;text\n1;a\n");
        padded.extend(gzipped(b"2;b\n"));
        padded.extend([0u8; 700]);
        let mut r = trickled(padded.clone());
        let texts: Vec<String> = r
            .next_chunk(10)
            .unwrap()
            .into_iter()
            .map(|s| s.text)
            .collect();
        assert_eq!(texts, ["a", "b"]);
        padded.extend(b"junk");
        let mut r = reader_bytes(padded, &Columns::default(), Dialect::default()).unwrap();
        let e = r
            .next_chunk(10)
            .expect_err("junk after the padding")
            .to_string();
        assert!(e.contains("neither gzip data nor zero padding"), "{e}");
    }

    #[test]
    fn a_zip_archive_is_refused_with_what_to_do() {
        let e = reader("PK\x03\x04rest", &Columns::default())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("ZIP archive") && e.contains("CSV UTF-8"), "{e}");
        // A header that merely starts with PK is a header.
        let mut r = reader("PK,text\n1,x\n", &Columns::default()).unwrap();
        assert_eq!(r.next_chunk(10).unwrap()[0].text, "x");
    }

    #[test]
    fn utf32_is_named_as_such_with_or_without_a_byte_order_mark() {
        let le: Vec<u8> = "id,text\n1,x\n"
            .bytes()
            .flat_map(|b| [b, 0, 0, 0])
            .collect();
        let be: Vec<u8> = "id,text\n1,x\n"
            .bytes()
            .flat_map(|b| [0, 0, 0, b])
            .collect();
        let bom_le = [&[0xFF, 0xFE, 0, 0][..], &le].concat();
        let bom_be = [&[0, 0, 0xFE, 0xFF][..], &be].concat();
        for (bytes, order, bom) in [
            (le, "UTF-32LE", false),
            (be, "UTF-32BE", false),
            (bom_le, "UTF-32LE", true),
            (bom_be, "UTF-32BE", true),
        ] {
            let latin1 = Dialect {
                delimiter: None,
                encoding: InputEncoding::Latin1,
            };
            // With a mark, told so whatever --encoding says.
            if bom {
                let e = reader_bytes(bytes.clone(), &Columns::default(), latin1)
                    .err()
                    .expect("UTF-32 is refused")
                    .to_string();
                assert!(e.contains(&format!("byte-order mark of {order}")), "{e}");
            }
            let e = reader_bytes(bytes, &Columns::default(), Dialect::default())
                .err()
                .expect("UTF-32 is refused")
                .to_string();
            let told = match bom {
                true => format!("opens with the byte-order mark of {order}"),
                false => format!("looks like {order}"),
            };
            assert!(
                e.contains(&told) && e.contains(&format!("iconv -f {order} -t UTF-8")),
                "{e}"
            );
        }
    }

    #[test]
    fn utf16_without_a_byte_order_mark_is_named_with_how_to_convert_it() {
        let utf16: String = "id,text\n1,x\n".chars().flat_map(|c| [c, '\0']).collect();
        let e = reader(&utf16, &Columns::default())
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("looks like UTF-16LE") && e.contains("iconv -f UTF-16LE"),
            "{e}"
        );
        let utf16be: String = "id,text\n1,x\n".chars().flat_map(|c| ['\0', c]).collect();
        let e = reader(&utf16be, &Columns::default())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("iconv -f UTF-16BE"), "{e}");
        // Told from the file's first bytes: a quoted header cell starts with NUL in LE too.
        let quoted: String = "\"id\",\"text\"\n"
            .chars()
            .flat_map(|c| [c, '\0'])
            .collect();
        let e = reader(&quoted, &Columns::default())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("iconv -f UTF-16LE"), "{e}");
        // A header in another script has few NULs, on one side still.
        let cjk: Vec<u8> = "编号,故事,团队\n1,我被解雇了,销售\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let e = reader_bytes(cjk, &Columns::default(), Dialect::default())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("iconv -f UTF-16LE"), "{e}");
    }

    /// Found by fuzzing: the NULs were counted over all that the first reads brought, so a
    /// file read whole and the same file trickling in were told apart.
    #[test]
    fn nul_bytes_are_judged_on_the_first_line_however_the_input_arrives() {
        let bytes = b"id,l\0id,team,text\na0,nort\0\0\0\0\0\0\0\x04ave the new".to_vec();
        let whole = reader_bytes(bytes.clone(), &Columns::default(), Dialect::default());
        let whole = whole.err().unwrap().to_string();
        assert!(
            whole.contains("a NUL byte"),
            "one NUL is a stray byte: {whole}"
        );
        let e = refusal(Box::new(Trickle(io::Cursor::new(bytes))), "t.csv");
        assert_eq!(e.replace("t.csv", "f"), whole.replace("t.csv", "f"));
    }

    #[test]
    fn a_binary_file_is_not_taken_for_utf16() {
        let binary = "\u{7}\0\0\0id\0\0\u{1}\0\0,text\0\0\0\u{3}\n1,x\n";
        let e = reader(binary, &Columns::default())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("binary file") && !e.contains("UTF-16"), "{e}");
        // One NUL alone is a stray byte, not half of a UTF-16 code unit.
        let e = reader("id,te\0xt\n1,a\n", &Columns::default())
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("holds a NUL byte") && !e.contains("UTF-16"),
            "{e}"
        );
    }

    /// NULs with no line break (/dev/zero, a sparse file) are refused from the first 64 KiB:
    /// the header was parsed first, and a line with no end was read for ever.
    #[test]
    fn an_endless_line_of_nuls_is_refused_from_its_start() {
        let e = refusal(Box::new(io::repeat(0)), "zero");
        assert!(e.contains("zero:1: the header holds NUL bytes"), "{e}");
    }

    #[test]
    fn other_compressed_formats_are_named_with_how_to_open_them() {
        let heads: [(&[u8], &str); 3] = [
            (b"BZh91AY&SY\x01\x02", "bzip2 -dc"),
            (b"\xFD7zXZ\x00\x00\x04", "xz -dc"),
            (b"\x28\xB5\x2F\xFD\x24\x00", "zstd -dc"),
        ];
        for (head, tool) in heads {
            let e = reader_bytes(head.to_vec(), &Columns::default(), Dialect::default())
                .err()
                .unwrap()
                .to_string();
            assert!(e.contains(tool) && e.contains("compressed"), "{e}");
        }
        // A header that merely starts like one is a header.
        let mut r = reader("BZh9,text\n1,x\n", &Columns::default()).unwrap();
        assert_eq!(r.next_chunk(10).unwrap()[0].text, "x");
    }

    #[test]
    fn an_excel_sep_line_sets_the_delimiter_and_lines_count_from_it() {
        for head in [
            "sep=;\n",
            "sep=;\r\n",
            "\u{FEFF}sep=;\n",
            "SEP=;\n",
            "\"sep=;\"\n",
        ] {
            let csv = format!("{head}id;text\n1;a, b\n2;\"c\nd\"\n3;e\n");
            let mut r = reader(&csv, &Columns::default()).unwrap();
            let s = r.next_chunk(10).unwrap();
            let got: Vec<_> = s.iter().map(|s| (s.text.as_str(), s.line)).collect();
            assert_eq!(got, [("a, b", 3), ("c\nd", 4), ("e", 6)], "{head:?}");
        }
        let e = reader("sep=;\nid;body\n", &Columns::default())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("t.csv:2"), "the header is on line 2: {e}");
        // Only the exact form counts: a column named sep=x is a header.
        let mut r = reader("sep=x,text\n1,y\n", &Columns::default()).unwrap();
        assert_eq!(r.next_chunk(10).unwrap()[0].text, "y");
        // A delimiter failup does not read is refused where it is declared, not taken.
        let e = reader("sep=x\nid,text\n1,a\n", &Columns::default())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("t.csv:1") && e.contains("sep=x"), "{e}");
    }

    #[test]
    fn blank_lines_outside_quotes_are_told_but_not_those_ending_the_file() {
        let csv = "id,text\n1,a\n\n2,b\r\n\r\n3,\"x\n\ny\"\n\n\n";
        for mut r in whole_and_trickled(csv) {
            let stories = r.next_chunk(10).unwrap();
            let lines: Vec<_> = stories.iter().map(|s| s.line).collect();
            assert_eq!(lines, [2, 4, 6]);
            assert_eq!(r.take_blank_lines(), [3, 5]);
            assert!(r.take_blank_lines().is_empty(), "each is told once");
        }
        let mut r = reader("sep=;\ntext\nA\n\nB\n", &Columns::default()).unwrap();
        assert_eq!(r.next_chunk(10).unwrap().len(), 2);
        assert_eq!(r.take_blank_lines(), [4]);
        // Blank lines before the header, the file's first among them, or after a `sep=` line.
        for (csv, blank, line) in [
            ("\n\nid,text\n1,a\n", vec![1, 2], 4),
            ("\r\nid,text\r\n1,a\r\n", vec![1], 3),
            ("sep=,\n\nid,text\n1,a\n", vec![2], 4),
        ] {
            for mut r in whole_and_trickled(csv) {
                assert_eq!(r.next_chunk(10).unwrap()[0].line, line, "{csv:?}");
                assert_eq!(r.take_blank_lines(), blank, "{csv:?}");
            }
        }
        // Each shard reads every line; the first one tells the blank lines for all.
        for (index, told) in [(0, vec![3, 5]), (1, vec![]), (2, vec![])] {
            let mut r = reader("text\nA\n\nB\n\nC\nD\n", &Columns::default()).unwrap();
            r.set_shard(Shard { index, count: 3 });
            assert!(r.next_chunk(10).unwrap().len() <= 2);
            assert_eq!(r.take_blank_lines(), told, "shard {index}");
        }
    }

    struct Trickle(io::Cursor<Vec<u8>>);

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let end = buf.len().min(1);
            self.0.read(&mut buf[..end])
        }
    }

    /// Readers of `csv` given all at once and a byte at a time.
    fn whole_and_trickled(csv: &str) -> [StoryReader; 2] {
        [
            reader(csv, &Columns::default()).unwrap(),
            trickled(csv.as_bytes().to_vec()),
        ]
    }

    fn trickled(bytes: Vec<u8>) -> StoryReader {
        let source = Box::new(Trickle(io::Cursor::new(bytes)));
        StoryReader::from_reader(
            source,
            "t.csv".into(),
            None,
            &Columns::default(),
            Dialect::default(),
        )
        .unwrap()
    }

    #[test]
    fn byte_order_marks_and_delimiters_are_seen_when_bytes_come_one_at_a_time() {
        let mut bytes = vec![0xFF, 0xFE];
        for unit in "id\ttext\r\n1\tcaf\u{e9}\r\n".encode_utf16() {
            bytes.extend_from_slice(&unit.to_le_bytes());
        }
        let mut r = trickled(bytes);
        assert_eq!(r.next_chunk(10).unwrap()[0].text, "caf\u{e9}");

        // A UTF-8 byte-order mark and a sniffed delimiter, a byte at a time, too.
        let bytes = b"\xEF\xBB\xBFid;text\n1;fine\n".to_vec();
        let mut r = trickled(bytes);
        assert_eq!(r.headers()[0], "id");
        assert_eq!(r.next_chunk(10).unwrap()[0].text, "fine");
    }

    /// A header of escape codes, or one that swallowed the data, is named in a message without
    /// reaching the terminal as it is or flooding it.
    #[test]
    fn missing_column_messages_show_names_escaped_and_few() {
        let e = reader("id,\u{1b}[31mRED\n1,a\n", &Columns::default())
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("control characters") && !e.contains('\u{1b}'),
            "{e}"
        );
        let e = reader("id,\u{2067}RED\n1,a\n", &Columns::default())
            .err()
            .unwrap();
        assert!(e.to_string().contains("\\u{2067}RED"), "{e}");
        let wide: String =
            (0..100).map(|i| format!("c{i},")).collect::<String>() + &"h".repeat(5000);
        let e = reader(&format!("{wide}\n1\n"), &Columns::default())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("c29, and 71 more") && e.len() < 1000, "{e}");
    }

    #[test]
    fn printable_escapes_what_would_change_the_terminal_or_the_log() {
        assert_eq!(printable("plain id-7 café"), "plain id-7 café");
        assert_eq!(
            printable("\u{1b}[31mred\nnext\u{202e}txt"),
            "\\u{1b}[31mred\\u{a}next\\u{202e}txt"
        );
        // A label that looks like `other` but is not: the difference is made visible. An
        // emoji's joiner stays.
        assert_eq!(printable("\u{200b}other\u{ad}"), "\\u{200b}other\\u{ad}");
        assert_eq!(printable("👩\u{200d}💻"), "👩\u{200d}💻");
        // A file's name is escaped the same way, and never shortened.
        let deep = format!("{}/g\u{1b}[31m.csv", "d".repeat(150));
        let name = Source::File(deep.clone().into()).name();
        assert_eq!(name, deep.replace('\u{1b}', "\\u{1b}"));
        // An id that swallowed a file is shortened, on a character boundary.
        let long = "é".repeat(PRINTABLE_CHARS) + "\n" + &"x".repeat(5000);
        let shown = printable(&long);
        assert_eq!(
            shown,
            "é".repeat(PRINTABLE_CHARS) + "… (5101 characters in all)"
        );
        assert_eq!(
            printable(&"é".repeat(PRINTABLE_CHARS)),
            "é".repeat(PRINTABLE_CHARS)
        );
    }

    #[test]
    fn utf8_is_told_from_windows_1252_by_its_non_ascii_bytes() {
        assert!(reads_as_utf8("id,text\n1,café\n".as_bytes()));
        // Cut inside the last character, as a 64 KiB head may be.
        assert!(reads_as_utf8(b"1,caf\xC3\xA9 na\xC3"));
        assert!(!reads_as_utf8(b"id,text\n1,caf\xE9\n"), "windows-1252");
        assert!(
            !reads_as_utf8(b"id,text\n1,plain\n"),
            "ASCII reads alike either way"
        );
        assert!(!reads_as_utf8(b"1,plain \xC3"), "only a cut lead byte");
    }

    #[test]
    fn broken_utf16_flags_its_row_and_no_other() {
        // A lone surrogate in row 1's text and half a code unit at the end of row 2's: the
        // decoder used to replace both with U+FFFD and the rows passed as clean.
        let mut bytes: Vec<u8> = "\u{FEFF}id,text\n1,before"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        bytes.extend_from_slice(&0xDC00u16.to_le_bytes());
        for unit in "after\n2,fine\n3,odd".encode_utf16() {
            bytes.extend_from_slice(&unit.to_le_bytes());
        }
        bytes.push(b'!');
        let mut r = reader_bytes(bytes, &Columns::default(), Dialect::default()).unwrap();
        let s = r.next_chunk(10).unwrap();
        let seen: Vec<_> = s.iter().map(|s| (s.text.as_str(), &s.issues[..])).collect();
        assert_eq!(
            seen,
            [
                (
                    "before\u{FFFD}after",
                    &[RowIssue::InvalidUtf8 { column: 1 }][..]
                ),
                ("fine", &[][..]),
                ("odd\u{FFFD}", &[RowIssue::InvalidUtf8 { column: 1 }][..]),
            ]
        );
    }

    #[test]
    fn latin1_is_decoded_when_asked() {
        let bytes = b"id,text\n1,caf\xE9 cr\xE8me\n".to_vec();
        let dialect = Dialect {
            encoding: InputEncoding::Latin1,
            ..Dialect::default()
        };
        let mut r = reader_bytes(bytes, &Columns::default(), dialect).unwrap();
        let s = r.next_chunk(10).unwrap();
        assert_eq!(s[0].text, "café crème");
        assert!(s[0].issues.is_empty());
        // A byte-order mark says the file is UTF-8 or UTF-16 whatever `--encoding` says; read
        // as Latin-1 it became part of the id column's name, and the ids row numbers.
        let utf16: Vec<u8> = "\u{FEFF}id,text\nA9,café\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        for bytes in [b"\xEF\xBB\xBFid,text\nA9,caf\xC3\xA9\n".to_vec(), utf16] {
            let mut r = reader_bytes(bytes, &Columns::default(), dialect).unwrap();
            assert_eq!(r.headers(), ["id", "text"]);
            let s = r.next_chunk(10).unwrap();
            assert_eq!((s[0].id.as_str(), s[0].text.as_str()), ("A9", "café"));
        }
    }

    /// However many rows a chunk may take, it stops once its stories hold 4 MiB of text
    /// (the story that crosses it is kept whole), so long posts do not fill memory.
    #[test]
    fn a_chunk_of_long_stories_stops_at_its_text_budget() {
        let story = "x".repeat(MAX_TEXT_BYTES);
        let csv: String = (0..6).fold("id,text\n".into(), |csv, i| csv + &format!("{i},{story}\n"));
        let mut r = reader(&csv, &Columns::default()).unwrap();
        let sizes: Vec<usize> = std::iter::from_fn(|| {
            let chunk = r.next_chunk(1024).unwrap();
            (!chunk.is_empty()).then_some(chunk.len())
        })
        .collect();
        assert_eq!(sizes, [4, 2]);
        let mut r = reader(&csv, &Columns::default()).unwrap();
        assert_eq!(
            r.next_chunk(3).unwrap().len(),
            3,
            "the row limit still holds"
        );
    }

    #[test]
    fn delimiters_are_sniffed_from_the_header() {
        assert_eq!(sniff_delimiter(b"id;text\n1;a,b,c\n"), b';');
        assert_eq!(sniff_delimiter(b"id\ttext\n"), b'\t');
        assert_eq!(sniff_delimiter(b"id|text|team\n"), b'|');
        assert_eq!(sniff_delimiter(b"id,text\n"), b',');
        assert_eq!(sniff_delimiter(b"text\n"), b',');
        assert_eq!(sniff_delimiter(b"\"a;b\",text\n"), b',');
        // A survey question for a column name: its commas tie with the tabs.
        let survey = b"id\ttext\tTell us, in a word, how\n1\tI was passed over, again\tbadly\n";
        assert_eq!(sniff_delimiter(survey), b',');
        assert_eq!(tabs_by_name("answers.TSV", survey), Some(b'\t'));
        assert_eq!(tabs_by_name("answers.tsv.gz", survey), Some(b'\t'));
        assert_eq!(tabs_by_name("answers.csv", survey), None);
        assert_eq!(tabs_by_name("answers.tsv", b"id,text\n"), None);
        let mut r = reader_named("answers.tsv", survey, &Columns::default()).unwrap();
        assert_eq!(
            r.next_chunk(10).unwrap()[0].text,
            "I was passed over, again"
        );
        let mut r = reader("id;text\n1;hello, world\n", &Columns::default()).unwrap();
        assert_eq!(r.next_chunk(10).unwrap()[0].text, "hello, world");
    }

    #[test]
    fn duplicate_header_names_are_an_error() {
        let e = reader("id,text,text\n1,a,b\n", &Columns::default())
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("t.csv:1") && e.contains("'text'") && e.contains("twice"),
            "{e}"
        );
    }

    #[test]
    fn a_kept_column_named_with_a_comma_is_found_from_its_pieces() {
        let headers = ["id", "text", "team", "team, region", "year"].map(String::from);
        let names = ["team", " region", "year"].map(String::from);
        assert_eq!(
            rejoin_split_names(&names, &headers).unwrap(),
            ["team, region", "year"]
        );
        let both = ["team", "team", " region"].map(String::from);
        assert_eq!(
            rejoin_split_names(&both, &headers).unwrap(),
            ["team", "team, region"]
        );
        let unknown = ["team", "nope"].map(String::from);
        assert_eq!(rejoin_split_names(&unknown, &headers).unwrap(), unknown);
        // Each piece a column too: either reading could be meant.
        let headers = ["id", "text", "team,name", "team", "name"].map(String::from);
        let either = ["team", "name"].map(String::from);
        let e = rejoin_split_names(&either, &headers)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("could mean the column 'team,name' or the columns 'team' and 'name'"),
            "{e}"
        );
    }

    #[test]
    fn giant_text_is_cut_and_flagged() {
        let big = "é".repeat(MAX_TEXT_BYTES); // two bytes each: twice the cap
        let mut r = reader(&format!("id,text\n1,{big}\n2,ok\n"), &Columns::default()).unwrap();
        let s = r.next_chunk(10).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].issues, [RowIssue::TooLong]);
        assert!(s[0].text.len() <= MAX_TEXT_BYTES);
        assert!(s[0].text.chars().all(|c| c == 'é'));
        assert!(s[1].issues.is_empty());
    }

    /// A cell past the cap is dropped as it is read, not held whole and cut afterwards: the
    /// id, which is never cut, shows it. Quotes, delimiters and line breaks past the cap
    /// still count, so the rows after it and their line numbers are the same.
    #[test]
    fn a_giant_cell_is_capped_as_it_is_read() {
        let big = "é".repeat(3 * MAX_TEXT_BYTES);
        let quoted = format!("{big}\n\"\"{big},\n{big}");
        let csv = format!("id,text\n{big},short\n2,\"{quoted}\"\n3,\"never\n{big}\n4,closed\n");
        for bytes in [csv.clone().into_bytes(), gzipped(csv.as_bytes())] {
            let mut r = reader_bytes(bytes, &Columns::default(), Dialect::default()).unwrap();
            let s = r.next_chunk(10).unwrap();
            assert_eq!(s.len(), 3);
            assert!(s[0].id.len() <= MAX_TEXT_BYTES && s[0].id.chars().all(|c| c == 'é'));
            // The id is cut too: warned, its status left as it is.
            assert_eq!(s[0].issues, [RowIssue::CellCut { column: 0 }]);
            let headers = r.headers().to_vec();
            let said = s[0].cut_cells(&headers).unwrap();
            assert_eq!(said, "column 'id' held more than 1 MiB and was cut there");
            assert_eq!(s[1].cut_cells(&headers), None);
            assert_eq!((s[1].id.as_str(), s[1].line), ("2", 3));
            assert_eq!(s[1].issues, [RowIssue::TooLong]);
            assert!(s[1].text.len() <= MAX_TEXT_BYTES && s[1].text.chars().all(|c| c == 'é'));
            assert_eq!((s[2].id.as_str(), s[2].line), ("3", 6));
            assert!(
                matches!(
                    s[2].issues[..],
                    [RowIssue::UnclosedQuote { .. }, RowIssue::TooLong]
                ),
                "{:?}",
                s[2].issues
            );
            assert!(s[2].text.starts_with("never\né"));
        }
    }

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

    /// Doubled quotes count as the one quote they stand for: a story under 1 MiB is read
    /// whole, and one over it is cut at exactly 1 MiB of its text, as before the cap.
    #[test]
    fn the_cap_cuts_a_story_where_its_text_reaches_1_mib() {
        let text = "say \"hi\" ".repeat(MAX_TEXT_BYTES / 10 - 1);
        let long = "say \"hi\" ".repeat(MAX_TEXT_BYTES / 5);
        let csv = |t: &str| format!("id,text\n1,\"{}\"\n", t.replace('"', "\"\""));
        let mut r = reader(&csv(&text), &Columns::default()).unwrap();
        let s = r.next_chunk(10).unwrap();
        assert!(s[0].issues.is_empty());
        assert_eq!(s[0].text, text);
        let mut r = reader(&csv(&long), &Columns::default()).unwrap();
        let s = r.next_chunk(10).unwrap();
        assert_eq!(s[0].issues, [RowIssue::TooLong]);
        assert_eq!(s[0].text, long[..MAX_TEXT_BYTES]);
    }

    /// Spreadsheets export empty trailing columns (`id,text,,`): each is named for its place,
    /// not refused as one name twice, and can be kept.
    #[test]
    fn columns_with_empty_header_cells_are_named_for_their_place() {
        let columns = Columns {
            keep: KeepColumns::All,
            ..Columns::default()
        };
        // A name the file already uses is not taken again.
        let r = reader("id,text,,column_3\n", &columns).unwrap();
        assert_eq!(r.headers(), ["id", "text", "column_3_", "column_3"]);
        let mut r = reader("id,,text,,\n1,a,x,,b\n", &columns).unwrap();
        assert_eq!(
            r.headers(),
            ["id", "column_2", "text", "column_4", "column_5"]
        );
        let s = r.next_chunk(10).unwrap();
        assert_eq!(s[0].text, "x");
        assert_eq!(s[0].kept, ["a", "x", "", "b"]);
    }

    #[test]
    fn keeps_named_and_all_columns() {
        let csv = "id,team,text,year\n1,a,x,2024\n";
        let all = Columns {
            keep: KeepColumns::All,
            ..Columns::default()
        };
        let mut r = reader(csv, &all).unwrap();
        assert_eq!(r.kept_names(), ["team", "text", "year"]);
        assert_eq!(r.next_chunk(1).unwrap()[0].kept, ["a", "x", "2024"]);
        let named = Columns {
            keep: KeepColumns::Named(vec!["year".into()]),
            ..Columns::default()
        };
        assert_eq!(reader(csv, &named).unwrap().kept_names(), ["year"]);
    }

    #[test]
    fn line_numbers_hold_with_crlf() {
        let mut r = reader("id,text\r\na,x\r\nb,y\r\nc,\r\n", &Columns::default()).unwrap();
        let lines: Vec<u64> = r.next_chunk(10).unwrap().iter().map(|s| s.line).collect();
        assert_eq!(lines, [2, 3, 4]);
        let mut r = reader(
            "id,text\r\na,\"two\r\nlines\"\r\nb,y\r\n\r\nc,z\n\nd,w",
            &Columns::default(),
        )
        .unwrap();
        let lines: Vec<u64> = r.next_chunk(10).unwrap().iter().map(|s| s.line).collect();
        assert_eq!(lines, [2, 4, 6, 8]);
    }

    /// Spreadsheets capitalise headers: `ID` and `Text` are the default columns when no other
    /// column is named so in any case; an exact name wins over one in another case, and two
    /// look-alikes are refused, not chosen between.
    #[test]
    fn default_columns_are_found_in_any_case_when_only_one_matches() {
        let mut r = reader("ID,Text\nX9,a story\n", &Columns::default()).unwrap();
        let story = &r.next_chunk(10).unwrap()[0];
        assert_eq!((story.id.as_str(), story.text.as_str()), ("X9", "a story"));
        let mut r = reader("Id,ID,id,STORY\nA,B,C,told\n", &Columns::default()).unwrap();
        let story = &r.next_chunk(10).unwrap()[0];
        assert_eq!((story.id.as_str(), story.text.as_str()), ("C", "told"));
        // Exact names first: `story` over a `Text` that may be a title.
        let mut r = reader("Text,story\ntitle,told\n", &Columns::default()).unwrap();
        assert_eq!(r.next_chunk(10).unwrap()[0].text, "told");
        for (csv, flag) in [
            ("Id,ID,text\nA,B,told\n", "--id-column"),
            ("Text,TEXT\na,b\n", "--text-column"),
        ] {
            let e = reader(csv, &Columns::default()).err().unwrap().to_string();
            assert!(e.contains("differ only in case") && e.contains(flag), "{e}");
        }
    }

    #[test]
    fn line_numbers_and_blank_lines_hold_with_old_mac_endings() {
        // A `\r` alone ends a line, as the csv crate and text editors take it; read a byte
        // at a time too, so a `\r` at the end of one read and a `\n` at the start of the next
        // still count once.
        let csv = "id;text\ra;x\rb;\"two\rlines\"\r\rc;z\r\nd;w\r";
        for mut r in whole_and_trickled(csv) {
            let stories = r.next_chunk(10).unwrap();
            let lines: Vec<u64> = stories.iter().map(|s| s.line).collect();
            assert_eq!(lines, [2, 3, 6, 7]);
            assert_eq!(stories[1].text, "two\rlines");
            assert_eq!(r.take_blank_lines(), [5]);
        }
        // The header line alone decides the delimiter, and a `sep=` line ends at its `\r`.
        let mut r = reader("sep=|\rid|text\r1|a, b, c; d\r", &Columns::default()).unwrap();
        assert_eq!(r.headers(), ["id", "text"]);
        let story = &r.next_chunk(10).unwrap()[0];
        assert_eq!((story.line, story.text.as_str()), (3, "a, b, c; d"));
        let r = reader("id;text\r1;a, b, c, d, e\r", &Columns::default()).unwrap();
        assert_eq!(r.headers(), ["id", "text"]);
    }

    #[test]
    fn empty_file_is_an_error() {
        assert!(reader("", &Columns::default()).is_err());
    }

    #[test]
    fn utf8_bom_is_ignored() {
        let r = reader("\u{FEFF}id,text\n1,x\n", &Columns::default()).unwrap();
        assert_eq!(r.headers()[0], "id");
    }
}
