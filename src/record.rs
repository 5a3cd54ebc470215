//! One output row: a story, how it was read, and its verdict. The pipeline makes these; the
//! writers and the report read them.

use crate::classify::Verdict;
use crate::input::{RowIssue, Story};

/// Row status written to the output's `status` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Empty or whitespace-only text: not classified.
    Empty,
    /// The row's cells are not what the file meant: a different number of fields from the
    /// header, quotes gone wrong or the header again. Classified when it has a text cell
    /// with a story, otherwise left without a category.
    Malformed,
    /// Classified, but invalid UTF-8 bytes were replaced.
    InvalidUtf8,
    /// Classified from its first `MAX_TEXT_BYTES` bytes; the rest of the cell was cut.
    TooLong,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Ok,
        Status::Empty,
        Status::Malformed,
        Status::InvalidUtf8,
        Status::TooLong,
    ];

    /// The status a row's `status` column names, if classify writes it.
    pub fn from_name(name: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// A row's status, the most serious first: a ragged row is flagged as such even when it
    /// lost its text cell; a row with nothing to read (`read` false) is empty.
    pub fn of(story: &Story, read: bool) -> Status {
        if story.is_malformed() {
            Status::Malformed
        } else if !read {
            Status::Empty
        } else if story.issues.contains(&RowIssue::TooLong) {
            Status::TooLong
        } else if story.has_invalid_utf8() {
            Status::InvalidUtf8
        } else {
            Status::Ok
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Empty => "empty",
            Status::Malformed => "malformed",
            Status::InvalidUtf8 => "invalid_utf8",
            Status::TooLong => "too_long",
        }
    }
}

/// One output row.
#[derive(Debug, Clone)]
pub struct Classified {
    pub story: Story,
    pub tokens: usize,
    pub truncated: bool,
    /// Windows the story was embedded in (see `--long-text`).
    pub chunks: usize,
    pub status: Status,
    /// None when the story was not classified (empty text).
    pub verdict: Option<Verdict>,
}
