//! Reading stories from CSV, a chunk at a time, so a file of any size streams through.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use csv::ByteRecord;

use crate::error::{Error, Result};

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

    /// How the source is named in messages.
    pub fn name(&self) -> String {
        match self {
            Source::Stdin => "<stdin>".into(),
            Source::File(p) => p.display().to_string(),
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
    pub keep: KeepColumns,
}

/// What went wrong with a row that was still read (it is never dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowIssue {
    /// The row has a different number of fields from the header.
    Malformed,
    /// The row had bytes that are not UTF-8; they were replaced with U+FFFD.
    InvalidUtf8,
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
    /// Values of the kept columns, in `StoryReader::kept_names` order.
    pub kept: Vec<String>,
    pub issue: Option<RowIssue>,
}

/// Counts bytes as they are read (for a progress bar by bytes) and notes where line breaks
/// are (for line numbers).
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
    breaks: Arc<Mutex<LineBreaks>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let start = self.count.fetch_add(n as u64, Ordering::Relaxed);
        let mut breaks = self.breaks.lock().expect("never poisoned");
        for (i, &b) in buf[..n].iter().enumerate() {
            if b == b'\n' || b == b'\r' {
                breaks.pending.push_back((start + i as u64, b));
            }
        }
        Ok(n)
    }
}

/// Line breaks read but not yet passed by the parser.
///
/// The csv crate reports a record's start as the byte after the previous record's
/// terminator, so with CRLF endings or blank lines its line numbers run behind. The true line
/// of a record is one plus the newlines before its first byte that is not a line break.
#[derive(Default)]
struct LineBreaks {
    pending: VecDeque<(u64, u8)>,
    newlines_passed: u64,
}

impl LineBreaks {
    /// 1-based line of the first content byte at or after byte offset `start`.
    fn line_at(&mut self, start: u64) -> u64 {
        let mut cursor = start;
        while let Some(&(offset, byte)) = self.pending.front() {
            if offset <= cursor {
                if offset == cursor {
                    cursor += 1;
                }
                if byte == b'\n' {
                    self.newlines_passed += 1;
                }
                self.pending.pop_front();
            } else {
                break;
            }
        }
        self.newlines_passed + 1
    }
}

pub struct StoryReader {
    reader: csv::Reader<Box<dyn Read + Send>>,
    name: String,
    headers: Vec<String>,
    text: usize,
    id: Option<usize>,
    label: Option<usize>,
    keep: Vec<usize>,
    row: u64,
    record: ByteRecord,
    bytes_read: Arc<AtomicU64>,
    breaks: Arc<Mutex<LineBreaks>>,
    total_bytes: Option<u64>,
}

impl StoryReader {
    pub fn open(source: &Source, columns: &Columns) -> Result<StoryReader> {
        let name = source.name();
        let (inner, total_bytes): (Box<dyn Read + Send>, Option<u64>) = match source {
            Source::Stdin => (Box::new(io::stdin()), None),
            Source::File(path) => {
                let file = File::open(path).map_err(|e| Error::io(&name, e))?;
                let len = file.metadata().ok().map(|m| m.len());
                (Box::new(BufReader::with_capacity(1 << 16, file)), len)
            }
        };
        StoryReader::from_reader(inner, name, total_bytes, columns)
    }

    /// Reads CSV from any reader; `name` is used in messages.
    pub fn from_reader(
        inner: Box<dyn Read + Send>,
        name: String,
        total_bytes: Option<u64>,
        columns: &Columns,
    ) -> Result<StoryReader> {
        let bytes_read = Arc::new(AtomicU64::new(0));
        let breaks = Arc::new(Mutex::new(LineBreaks::default()));
        let counting: Box<dyn Read + Send> = Box::new(Counting {
            inner,
            count: bytes_read.clone(),
            breaks: breaks.clone(),
        });
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(counting);
        let header_record = reader.byte_headers().map_err(|e| csv_error(&name, e))?;
        let headers: Vec<String> = header_record
            .iter()
            .map(|h| String::from_utf8_lossy(h).trim().to_string())
            .collect();
        if headers.iter().all(|h| h.is_empty()) {
            return Err(Error::Input {
                file: name,
                line: Some(1),
                column: None,
                problem: "the file is empty or has no header row; the first line must name the \
                          columns (for example: id,text)"
                    .into(),
            });
        }
        let find = |wanted: &str, flag: &str| -> Result<usize> {
            headers
                .iter()
                .position(|h| h == wanted)
                .ok_or_else(|| missing_column(&name, &headers, wanted, flag))
        };
        let text = match &columns.text {
            Some(c) => find(c, "--text-column")?,
            None => headers
                .iter()
                .position(|h| h == "text")
                .or_else(|| headers.iter().position(|h| h == "story"))
                .ok_or_else(|| missing_column(&name, &headers, "text", "--text-column"))?,
        };
        let id = match &columns.id {
            Some(c) => Some(find(c, "--id-column")?),
            None => headers.iter().position(|h| h == "id"),
        };
        let label = match &columns.label {
            Some(c) => Some(find(c, "--label-column")?),
            None => None,
        };
        let used = [Some(text), id, label];
        let keep = match &columns.keep {
            KeepColumns::None => Vec::new(),
            KeepColumns::All => (0..headers.len())
                .filter(|i| !used.contains(&Some(*i)))
                .collect(),
            KeepColumns::Named(names) => names
                .iter()
                .map(|n| find(n, "--keep-columns"))
                .collect::<Result<_>>()?,
        };
        Ok(StoryReader {
            reader,
            name,
            headers,
            text,
            id,
            label,
            keep,
            row: 0,
            record: ByteRecord::new(),
            bytes_read,
            breaks,
            total_bytes,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// Names of the kept columns, in output order.
    pub fn kept_names(&self) -> Vec<String> {
        self.keep.iter().map(|&i| self.headers[i].clone()).collect()
    }

    /// Shared counter of bytes read so far, and the total when known (for progress).
    pub fn progress_counter(&self) -> (Arc<AtomicU64>, Option<u64>) {
        (self.bytes_read.clone(), self.total_bytes)
    }

    /// Reads up to `max` stories; an empty vector means the input is exhausted.
    pub fn next_chunk(&mut self, max: usize) -> Result<Vec<Story>> {
        let mut chunk = Vec::with_capacity(max);
        while chunk.len() < max {
            let more = self
                .reader
                .read_byte_record(&mut self.record)
                .map_err(|e| csv_error(&self.name, e))?;
            if !more {
                break;
            }
            self.row += 1;
            chunk.push(self.story_from_record());
        }
        Ok(chunk)
    }

    fn story_from_record(&self) -> Story {
        let rec = &self.record;
        let start = rec.position().map_or(0, |p| p.byte());
        let line = self.breaks.lock().expect("never poisoned").line_at(start);
        let mut issue = (rec.len() != self.headers.len()).then_some(RowIssue::Malformed);
        let mut field = |i: usize| -> String {
            let bytes = rec.get(i).unwrap_or_default();
            match std::str::from_utf8(bytes) {
                Ok(s) => s.to_string(),
                Err(_) => {
                    issue.get_or_insert(RowIssue::InvalidUtf8);
                    String::from_utf8_lossy(bytes).into_owned()
                }
            }
        };
        let text = field(self.text);
        let id = match self.id {
            Some(i) => field(i),
            None => self.row.to_string(),
        };
        let label = self.label.map(&mut field);
        let kept = self.keep.iter().map(|&i| field(i)).collect();
        Story {
            row: self.row,
            line,
            id,
            text,
            label,
            kept,
            issue,
        }
    }
}

fn csv_error(name: &str, e: csv::Error) -> Error {
    let line = e.position().map(|p| p.line());
    let problem = match e.kind() {
        csv::ErrorKind::Io(io) => format!("read failed: {io}"),
        _ => format!("not valid CSV: {e}"),
    };
    Error::Input {
        file: name.to_string(),
        line,
        column: None,
        problem,
    }
}

fn missing_column(file: &str, headers: &[String], wanted: &str, flag: &str) -> Error {
    let closest = headers
        .iter()
        .map(|h| {
            (
                strsim::levenshtein(&h.to_lowercase(), &wanted.to_lowercase()),
                h,
            )
        })
        .min_by_key(|(d, _)| *d)
        .filter(|(d, _)| *d <= wanted.len().max(3) / 2)
        .map(|(_, h)| format!("; did you mean '{h}'?"))
        .unwrap_or_default();
    Error::Input {
        file: file.to_string(),
        line: Some(1),
        column: None,
        problem: format!(
            "no column named '{wanted}' (columns: {}){closest} Choose one with {flag}.",
            headers.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(csv: &str, columns: &Columns) -> Result<StoryReader> {
        StoryReader::from_reader(
            Box::new(io::Cursor::new(csv.as_bytes().to_vec())),
            "t.csv".into(),
            None,
            columns,
        )
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
    }

    #[test]
    fn ragged_and_non_utf8_rows_are_kept_and_flagged() {
        let mut bytes = b"id,text\n1,fine\n2,too,many\n3,caf".to_vec();
        bytes.extend_from_slice(&[0xE9, b'\n']);
        let mut r = StoryReader::from_reader(
            Box::new(io::Cursor::new(bytes)),
            "t.csv".into(),
            None,
            &Columns::default(),
        )
        .unwrap();
        let s = r.next_chunk(10).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].issue, None);
        assert_eq!(s[1].issue, Some(RowIssue::Malformed));
        assert_eq!(s[2].issue, Some(RowIssue::InvalidUtf8));
        assert_eq!(s[2].text, "caf\u{FFFD}");
    }

    #[test]
    fn keeps_named_and_all_columns() {
        let csv = "id,team,text,year\n1,a,x,2024\n";
        let all = Columns {
            keep: KeepColumns::All,
            ..Columns::default()
        };
        let mut r = reader(csv, &all).unwrap();
        assert_eq!(r.kept_names(), ["team", "year"]);
        assert_eq!(r.next_chunk(1).unwrap()[0].kept, ["a", "2024"]);
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
