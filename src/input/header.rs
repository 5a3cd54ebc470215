//! The header row: where the CSV starts, its delimiter, its column names, and the columns
//! failup reads.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::sync::{Arc, Mutex};

use super::{
    column_list,
    decode::{peek_first_line, utf32_error},
    lines::LineBreaks,
    printable, unclosed_quote_problem, Columns, KeepColumns, RowIssue, STRAY_QUOTE,
};
use crate::error::{Error, Result};

/// Where the CSV starts: its delimiter, the line its header is on, and the stream from the
/// header on.
pub(super) struct CsvStart {
    pub(super) stream: Box<dyn Read + Send>,
    pub(super) delimiter: u8,
    pub(super) header_line: u64,
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
    pub(super) fn read(
        text: Box<dyn Read + Send>,
        name: &str,
        delimiter: Option<u8>,
    ) -> Result<CsvStart> {
        let (mut first_line, mut rest) = peek_first_line(text).map_err(|e| Error::io(name, e))?;
        // The CSV parser would drop a UTF-8 byte-order mark itself, but the line tracker
        // would then read it as the start of an unquoted cell, and miss that the header's
        // quotes went wrong (`"id"x` read as `idx`); dropped here, both start at the text.
        if first_line.starts_with(b"\xEF\xBB\xBF") {
            first_line.drain(..3);
        }
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
        let delimiter = match delimiter
            .or(declared)
            .or_else(|| tabs_by_name(name, &first_line))
        {
            Some(d) => d,
            None => {
                // Where the header holds two candidates the rows after it decide, so they
                // must be the same bytes however reads fall: as many as a first read of
                // 64 KiB (or the whole input) holds.
                if two_candidates(first_line_of(&first_line)) {
                    let want = (SNIFFED_BYTES as u64).saturating_sub(first_line.len() as u64);
                    (&mut rest)
                        .take(want)
                        .read_to_end(&mut first_line)
                        .map_err(|e| Error::io(name, e))?;
                }
                sniff_delimiter(&first_line)
            }
        };
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
pub(super) fn rejoin_split_names(names: &[String], headers: &[String]) -> Result<Vec<String>> {
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
pub(super) fn check_headers(
    headers: &mut [String],
    name: &str,
    line: u64,
    labelled: bool,
) -> Result<()> {
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
    refuse_repeated_names(headers, name, line)
}

/// Refuses a header that gives a name more than once, naming every such name with its
/// places: a Jira export repeats several (Labels, Watchers, Comment), and told one at a time
/// they took a run each.
fn refuse_repeated_names(headers: &[String], name: &str, line: u64) -> Result<()> {
    // By a map, not by searching the header for each name: a generated file of 80,000
    // columns took 9 s.
    let mut places: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, h) in headers.iter().enumerate() {
        places.entry(h).or_default().push(i + 1);
    }
    // In the order of their first places.
    let repeated: Vec<(&String, Vec<usize>)> = headers
        .iter()
        .filter_map(|h| places.remove(h.as_str()).map(|p| (h, p)))
        .filter(|(_, p)| p.len() > 1)
        .collect();
    let Some((first, _)) = repeated.first() else {
        return Ok(());
    };
    let mut named: Vec<String> = (repeated.iter().take(10))
        .map(|(name, places)| {
            let places: Vec<String> = places.iter().map(usize::to_string).collect();
            format!("'{}' (columns {})", printable(name), places.join(", "))
        })
        .collect();
    if repeated.len() > 10 {
        named.push(format!("and {} more", repeated.len() - 10));
    }
    // A new name no column has yet.
    let free = (2..)
        .map(|k| format!("{first}_{k}"))
        .find(|n| !headers.contains(n))
        .expect("a free name");
    Err(Error::Input {
        file: name.to_string(),
        line: Some(line),
        column: Some(first.to_string()),
        problem: format!(
            "the header names {} more than once: {}; rename them so every column has its own \
             name (for example {})",
            match repeated.len() {
                1 => "this column".to_string(),
                n => format!("{n} columns"),
            },
            named.join(", "),
            printable(&free)
        ),
    })
}

/// Names each column whose header cell is empty `column_N` (N counting from 1, with `_` added
/// while another column has the name), as
/// spreadsheets export trailing empty columns (`id,text,,`): it can then be kept, and two of
/// them are not one name twice.
fn name_unnamed_columns(headers: &mut [String]) {
    let mut taken: HashSet<String> = headers.iter().filter(|h| !h.is_empty()).cloned().collect();
    for (i, header) in headers.iter_mut().enumerate() {
        if header.is_empty() {
            // A column of the file may already bear the name: then one more `_`.
            let mut name = format!("column_{}", i + 1);
            while taken.contains(&name) {
                name.push('_');
            }
            taken.insert(name.clone());
            *header = name;
        }
    }
}

/// The positions of the columns a reader uses.
pub(super) struct ColumnIndex {
    pub(super) text: usize,
    pub(super) id: Option<usize>,
    pub(super) label: Option<usize>,
    pub(super) group: Option<usize>,
    pub(super) keep: Vec<usize>,
}

impl ColumnIndex {
    /// Finds `columns` in `headers`; a missing one is an error that lists the header's names
    /// and suggests the closest.
    pub(super) fn find(
        headers: &[String],
        columns: &Columns,
        name: &str,
        line: u64,
    ) -> Result<ColumnIndex> {
        let finder = Finder {
            headers,
            fixed_names: columns.fixed_names,
            name,
            line,
        };
        let text = finder.text(columns.text.as_deref())?;
        let id = match &columns.id {
            Some(c) => Some(finder.find(c, "--id-column")?),
            None => finder.default_column("id", "--id-column")?,
        };
        let label = finder.label(columns.label.as_deref())?;
        if label == Some(text) {
            return Err(Error::Usage(format!(
                "the label column and the story text are both column '{}'; the stories and \
                 their labels need a column each: name the labels' with --label-column, or the \
                 stories' with --text-column",
                printable(&headers[text])
            )));
        }
        let group = (columns.group.as_deref())
            .map(|c| finder.find(c, "--group-by"))
            .transpose()?;
        Ok(ColumnIndex {
            text,
            id,
            label,
            group,
            keep: finder.keep(&columns.keep, [id, label])?,
        })
    }
}

/// Finds the columns named by flags in a header, for messages about `name`'s `line`.
struct Finder<'a> {
    headers: &'a [String],
    /// The file's columns are read by their names (a profile's examples), not chosen by flags.
    fixed_names: bool,
    name: &'a str,
    line: u64,
}

impl Finder<'_> {
    /// The column named `wanted` by `flag`: the one named so, or else the one column that
    /// differs from the name only in its spaces, since a spreadsheet's header cell may hold a
    /// line break (Alt+Enter) or doubled spaces, which no one types.
    fn find(&self, wanted: &str, flag: &str) -> Result<usize> {
        let spaced = || {
            let mut alike = (self.headers.iter().enumerate())
                .filter(|(_, h)| squeezed(h) == squeezed(wanted))
                .map(|(i, _)| i);
            match (alike.next(), alike.next()) {
                (Some(i), None) => Some(i),
                _ => None,
            }
        };
        (self.headers.iter().position(|h| h == wanted))
            .or_else(spaced)
            .ok_or_else(|| self.missing(wanted, flag))
    }

    fn missing(&self, wanted: &str, flag: &str) -> Error {
        let fix = match self.fixed_names {
            false => format!("Choose one with {flag}"),
            true => format!(
                "Rename the file's column (this file's columns are read by their names; \
                 `failup train FILE {flag} NAME` reads other names into a profile)"
            ),
        };
        missing_column(self.name, self.line, self.headers, wanted, &fix)
    }

    /// The column named `wanted` in any case, when only one is; None when none is.
    fn default_column(&self, wanted: &str, flag: &str) -> Result<Option<usize>> {
        default_column(self.headers, &[wanted]).map_err(|two| self.twice(two, flag))
    }

    fn twice(&self, [a, b]: [String; 2], flag: &str) -> Error {
        Error::Input {
            file: self.name.to_string(),
            line: Some(self.line),
            column: None,
            problem: format!(
                "columns '{}' and '{}' differ only in case, so either could be the one meant; \
                 choose one with {flag}",
                printable(&a),
                printable(&b)
            ),
        }
    }

    /// `--text-column`'s, or else `text` or `story` in any case.
    fn text(&self, named: Option<&str>) -> Result<usize> {
        let flag = "--text-column";
        match named {
            Some(c) => self.find(c, flag),
            None => default_column(self.headers, &["text", "story"])
                .map_err(|two| self.twice(two, flag))?
                .ok_or_else(|| self.missing("text", flag)),
        }
    }

    /// The labels' column, found in any case as `text` and `id` are, since spreadsheets
    /// capitalise headers (`Label`).
    fn label(&self, named: Option<&str>) -> Result<Option<usize>> {
        let Some(wanted) = named else {
            return Ok(None);
        };
        match self.default_column(wanted, "--label-column")? {
            Some(i) => Ok(Some(i)),
            None => self.find(wanted, "--label-column").map(Some),
        }
    }

    /// The columns `keep` names, those in `used` left out of `--keep-all`.
    fn keep(&self, keep: &KeepColumns, used: [Option<usize>; 2]) -> Result<Vec<usize>> {
        match keep {
            KeepColumns::None => Ok(Vec::new()),
            KeepColumns::All => Ok((0..self.headers.len())
                .filter(|i| !used.contains(&Some(*i)))
                .collect()),
            KeepColumns::Named(names) => {
                let names = &rejoin_split_names(names, self.headers)?;
                if let Some(twice) = names
                    .iter()
                    .enumerate()
                    .find_map(|(i, n)| (!n.is_empty() && names[..i].contains(n)).then_some(n))
                {
                    return Err(Error::Usage(format!(
                        "--keep-columns names '{twice}' twice; name each column once"
                    )));
                }
                names
                    .iter()
                    .map(|n| self.find(n, "--keep-columns"))
                    .collect()
            }
        }
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

/// Tab for a file named `.tsv` or `.tab` (gzipped or not) whose header line holds one: a
/// survey's question for a column name may hold more commas than the header has tabs.
pub(super) fn tabs_by_name(name: &str, head: &[u8]) -> Option<u8> {
    let name = name.to_ascii_lowercase();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    let tsv = name.ends_with(".tsv") || name.ends_with(".tab");
    (tsv && first_line_of(head).contains(&b'\t')).then_some(b'\t')
}

/// Picks the delimiter from the header line: whichever of `,` `;` tab `|` occurs most
/// outside quotes, comma when none does. Spreadsheet exports in many locales use `;`, and
/// `.tsv` files tabs. A header may hold two of them, where a survey question is a column's
/// name (`ID;Dept;Describe a time you were overlooked, or sidelined`). Then, where the records
/// after it (those `head` holds whole, up to 20) contradict the header's choice, splitting
/// neither into its count of fields nor all alike, another candidate that splits every one
/// of them into the header's count, or else all alike, wins: a story's own commas split
/// records unevenly.
pub fn sniff_delimiter(head: &[u8]) -> u8 {
    let candidates = CANDIDATES;
    let header = first_line_of(head);
    let counts = header_counts(header);
    let by_header = (0..candidates.len())
        .filter(|&i| counts[i] > 0)
        .max_by_key(|&i| (counts[i], std::cmp::Reverse(i)));
    let Some(by_header) = by_header else {
        return b',';
    };
    let present: Vec<usize> = (0..candidates.len()).filter(|&i| counts[i] > 0).collect();
    if present.len() < 2 {
        return candidates[by_header];
    }
    let rest = &head[header.len()..];
    let per_record: Vec<Vec<usize>> = (present.iter())
        .map(|&i| records_counts(rest, candidates[i]))
        .collect();
    let only = |test: &dyn Fn(usize, &[usize]) -> bool| -> Option<usize> {
        let passing: Vec<usize> = (0..present.len())
            .filter(|&k| !per_record[k].is_empty() && test(present[k], &per_record[k]))
            .collect();
        (passing.len() == 1).then(|| present[passing[0]])
    };
    let matches_header = |i: usize, r: &[usize]| r.iter().all(|&n| n == counts[i]);
    // Records that all split alike, one field short of the header (a trailing empty cell
    // left out), still confirm it; records it does not split at all do not.
    let constant = |_: usize, r: &[usize]| r.len() > 1 && r[0] > 0 && r.iter().all(|&n| n == r[0]);
    let k = present
        .iter()
        .position(|&i| i == by_header)
        .expect("present");
    let records = &per_record[k];
    if records.is_empty() || matches_header(by_header, records) || constant(by_header, records) {
        return candidates[by_header];
    }
    let chosen = only(&matches_header)
        .or_else(|| only(&constant))
        .unwrap_or(by_header);
    candidates[chosen]
}

/// The most of the input the delimiter is sniffed from.
const SNIFFED_BYTES: usize = 64 << 10;

/// The delimiters failup sniffs, in the order a tie goes.
const CANDIDATES: [u8; 4] = [b',', b';', b'\t', b'|'];

/// How often each of [`CANDIDATES`] occurs outside quotes in the header line.
fn header_counts(header: &[u8]) -> [usize; 4] {
    let line_ended = [header, b"\n"].concat();
    CANDIDATES.map(|c| records_counts(&line_ended, c).first().copied().unwrap_or(0))
}

/// Whether the header line holds two or more of the candidate delimiters outside quotes.
fn two_candidates(header: &[u8]) -> bool {
    header_counts(header).iter().filter(|&&n| n > 0).count() >= 2
}

/// How often `delimiter` occurs outside double quotes in each complete record of `text` (up
/// to 20), a quoted field's line breaks being inside its record. The last record, which
/// `text` may cut short, is left out unless `text` ends with its line break.
fn records_counts(text: &[u8], delimiter: u8) -> Vec<usize> {
    let mut out = Vec::new();
    let (mut quoted, mut n, mut filled) = (false, 0, false);
    for &b in text {
        match b {
            b'"' => quoted = !quoted,
            b'\n' | b'\r' if !quoted => {
                if filled {
                    out.push(n);
                    if out.len() == 20 {
                        return out;
                    }
                }
                (n, filled) = (0, false);
                continue;
            }
            _ if !quoted && b == delimiter => n += 1,
            _ => {}
        }
        filled = true;
    }
    out
}

/// A header whose quotes went wrong names its columns wrongly (`"id"x` reads as `idx`, and
/// the ids became row numbers without a word), or holds the whole file: no column can be
/// trusted, so it is refused where a data row would only be flagged.
pub(super) fn refuse_broken_header_quotes(
    start: u64,
    breaks: &Arc<Mutex<LineBreaks>>,
    name: &str,
) -> Result<()> {
    let mut breaks = breaks.lock().expect("never poisoned");
    let line = breaks.line_at(start);
    let never_closes = breaks.never_closed();
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
pub(super) fn trim_header(cell: &str) -> &str {
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

/// The column a mistyped name most likely meant, if any.
pub fn closest_column<'h>(headers: &'h [String], wanted: &str) -> Option<&'h String> {
    // A slip of a letter or two in three (a swap counts as one): `year` is no slip for `team`.
    headers
        .iter()
        .map(|h| {
            let d = strsim::damerau_levenshtein(&h.to_lowercase(), &wanted.to_lowercase());
            (d, h)
        })
        .min_by_key(|(d, _)| *d)
        .filter(|(d, _)| 3 * d <= wanted.chars().count().max(3))
        .map(|(_, h)| h)
        // Else a name that holds it whole (`story_text`, `Text of the post`), if it is long
        // enough not to sit inside unrelated words by chance (`id` in `paid`).
        .or_else(|| {
            let wanted = wanted.to_lowercase();
            let long = wanted.chars().count() >= 4;
            headers
                .iter()
                .find(|h| long && h.to_lowercase().contains(&wanted))
        })
}

/// A column name with its runs of spaces and line breaks made one space, as a flag types it.
fn squeezed(name: &str) -> String {
    name.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `fix` says how to name another column ("Choose one with --text-column").
pub(super) fn missing_column(
    file: &str,
    line: u64,
    headers: &[String],
    wanted: &str,
    fix: &str,
) -> Error {
    // No header has an empty name (failup names unnamed ones), so this is a slip in a list.
    if wanted.is_empty() {
        return Error::Usage(format!(
            "an empty column name was given (in a comma-separated list, a comma at either end \
             or two together make one); the columns are: {}",
            column_list(headers)
        ));
    }
    // A name with a line break in it (Alt+Enter in a spreadsheet) is suggested as it is
    // typed, with a space, which the flags take for it.
    let typed = |h: &str| match squeezed(h) {
        t if t.is_empty() => h.to_string(),
        t => t,
    };
    let closest = closest_column(headers, wanted)
        .map(|h| format!("; did you mean '{}'?", printable(&typed(h))))
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
