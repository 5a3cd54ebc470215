//! The library's error type. Every variant says what was wrong, where, and how to fix it;
//! the binary maps all of them to exit code 2.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("model folder {dir}: {problem}\n  fix: {fix}")]
    Model {
        dir: PathBuf,
        problem: String,
        fix: String,
    },

    #[error("taxonomy {source_name}{}: {problem}", text_place(*line, *column))]
    Taxonomy {
        source_name: String,
        line: Option<usize>,
        /// 1-based, in characters, where the place is known to the character.
        column: Option<usize>,
        problem: String,
    },

    #[error("{file}{}: {problem}", location(*line, column.as_ref()))]
    Input {
        file: String,
        line: Option<u64>,
        column: Option<String>,
        problem: String,
    },

    #[error("{path}: {source}{}", io_fix(path, source))]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    #[error("tokenizer: {0}")]
    Tokenizer(String),

    #[error("inference failed: {0}")]
    Inference(String),

    #[error("{0}")]
    Usage(String),

    /// The user pressed Ctrl-C; what was complete has been kept.
    #[error("interrupted")]
    Interrupted,
}

/// `:LINE:COLUMN` in a text file, as editors and compilers write it.
fn text_place(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        (Some(l), None) => format!(":{l}"),
        _ => String::new(),
    }
}

fn location(line: Option<u64>, column: Option<&String>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(":{l}, column '{c}'"),
        (Some(l), None) => format!(":{l}"),
        (None, Some(c)) => format!(", column '{c}'"),
        (None, None) => String::new(),
    }
}

/// Advice for the I/O errors a user can act on; the rest speak for themselves.
fn io_fix(path: &str, e: &std::io::Error) -> &'static str {
    use std::io::ErrorKind;
    match e.kind() {
        // `< folder` in the shell: there is no path to give, only another redirection.
        ErrorKind::IsADirectory if path == "<stdin>" => {
            "\n  fix: standard input was redirected from a folder; redirect a file (< FILE)"
        }
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded => {
            "\n  fix: free space on that disk, or write to another one"
        }
        ErrorKind::FileTooLarge => {
            "\n  fix: raise the file-size limit (ulimit -f), or write to a file system that \
             takes files this large"
        }
        ErrorKind::PermissionDenied => {
            "\n  fix: check the file's and its folder's permissions, or use another path"
        }
        ErrorKind::NotFound => {
            "\n  fix: check that the path exists as spelt; a relative path starts from the \
             folder failup runs in"
        }
        ErrorKind::IsADirectory => "\n  fix: give the path of a file in that folder",
        _ => "",
    }
}

impl Error {
    pub fn io(path: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A CSV reader's error in `file`: an I/O error as such, anything else as bad input at the
    /// line the reader had reached.
    pub fn csv(file: &str, e: csv::Error) -> Self {
        let line = e.position().map(|p| p.line());
        let problem = format!("not valid CSV: {e}");
        match e.into_kind() {
            csv::ErrorKind::Io(io) => Error::io(file, io),
            _ => Error::Input {
                file: file.to_string(),
                line,
                column: None,
                problem,
            },
        }
    }

    /// True when the error is a closed stdout (e.g. `failup classify big.csv | head`), which
    /// is a normal way for a reader to stop, not a failure.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A character that must not reach a terminal or a document as it is: a control character
/// (a terminal's escape codes, a line break) or a mark that reorders the text after it right
/// to left, which can make a line read as something else.
pub fn unsafe_to_show(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::ErrorKind;

    #[test]
    fn a_full_disk_and_a_refused_path_come_with_a_fix() {
        let full = Error::io("out.csv", ErrorKind::StorageFull.into()).to_string();
        assert!(
            full.starts_with("out.csv: ") && full.contains("free space"),
            "{full}"
        );
        let limited = Error::io("out.csv", ErrorKind::FileTooLarge.into()).to_string();
        assert!(
            limited.contains("fix: raise the file-size limit"),
            "{limited}"
        );
        let denied = Error::io("out.csv", ErrorKind::PermissionDenied.into()).to_string();
        assert!(denied.contains("permissions"), "{denied}");
        let folder = Error::io("profiles", ErrorKind::IsADirectory.into()).to_string();
        assert!(folder.contains("fix: give the path of a file"), "{folder}");
        let redirected = Error::io("<stdin>", ErrorKind::IsADirectory.into()).to_string();
        assert!(
            redirected.contains("redirect a file (< FILE)"),
            "{redirected}"
        );
        assert!(!redirected.contains("give the path"), "{redirected}");
        let other = Error::io("out.csv", ErrorKind::UnexpectedEof.into()).to_string();
        assert!(!other.contains("fix:"), "{other}");
    }
}
