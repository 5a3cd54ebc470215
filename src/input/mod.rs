//! Reading stories from CSV, a chunk at a time, so a file of any size streams through.
//!
//! The bytes become text in `decode` (gzip, encodings), `header` finds where the CSV starts
//! and which columns to read, `lines` keeps the line numbers that messages name, and
//! `reader` turns records into [`Story`] rows. This file holds what they share and what the
//! rest of failup sees.

use std::path::{Path, PathBuf};

pub use crate::error::unsafe_to_show;

mod decode;
mod header;
mod lines;
mod reader;
#[cfg(test)]
mod tests;

pub use decode::decompressed;
pub(crate) use decode::{peek_until, text_stream};
pub use header::{closest_column, refuse_nul_header, sniff_delimiter};
pub(crate) use header::{default_column, first_line_of};
pub(crate) use lines::CsvLines;
pub use reader::StoryReader;

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
/// binary file or a header that swallowed the data cannot flood the terminal. Where a name
/// holds a comma (a survey question), each is quoted, or the list would not show where one
/// ends.
pub fn column_list(headers: &[String]) -> String {
    const SHOWN: usize = 30;
    let quoted = headers.iter().take(SHOWN).any(|h| h.contains(','));
    let mut list: Vec<String> = headers
        .iter()
        .take(SHOWN)
        .map(|h| match quoted {
            true => format!("'{}'", printable(h)),
            false => printable(h).into_owned(),
        })
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

/// What [`RowIssue::SurveyHeader`] means for the user, and what to do.
const SURVEY_HEADER: &str = "reads as a survey export's extra header row (the questions' words, \
     their import ids or the answers' types, as Qualtrics and SurveyMonkey write under the \
     header), so it is not read as a story; delete it from the file to keep such rows out of \
     the output and its counts";

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
    /// One of the first two rows is a survey tool's extra header row: its cells are the
    /// questions, their import ids or the answers' types, not a story.
    SurveyHeader,
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
            RowIssue::SurveyHeader => Some(SURVEY_HEADER.to_string()),
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
        let header = [RowIssue::RepeatedHeader, RowIssue::SurveyHeader];
        match self.issues.iter().any(|i| header.contains(i)) {
            true => "",
            false => &self.text,
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
    // A spreadsheet's error value, where a formula failed.
    const ERRORS: [&str; 9] = [
        "#VALUE!", "#N/A", "#DIV/0!", "#NAME?", "#REF!", "#NULL!", "#NUM!", "#SPILL!", "#CALC!",
    ];
    if ERRORS.iter().any(|e| text.trim().eq_ignore_ascii_case(e)) {
        return Some("a spreadsheet's error value, such as #VALUE!, where a formula failed");
    }
    // The longest placeholder has 17 letters: a story is not copied beyond that.
    let letters: String = text
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .take(18)
        .collect();
    // Survey answers that decline to answer, and a forum's removed post. (A bare "No" or
    // "Nothing" is left a story: labelled sets mark such answers `other`.)
    const DECLINED: [&str; 9] = [
        "nocomment",
        "prefernottosay",
        "prefernottoanswer",
        "idprefernottosay",
        "rathernotsay",
        "idrathernotsay",
        "doesnotapply",
        "removed",
        "deleted",
    ];
    if DECLINED.contains(&letters.as_str()) {
        return Some("an answer that tells no story, such as prefer not to say or no comment");
    }
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
