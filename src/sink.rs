//! Where output goes: standard output, or a file that only appears under its name when
//! complete.
//!
//! A file output is written to `.NAME.partial` in the same folder and renamed to NAME at the
//! end, so an interrupted run never leaves a half-written file under the final name. Beside
//! the partial file, `.NAME.partial.json` records after every chunk how many rows and bytes
//! of it are complete, and for which input and settings; `--resume` uses it to continue an
//! interrupted run exactly where the last complete chunk ended.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::input::Source;

pub enum Sink {
    Stdout(BufWriter<io::Stdout>),
    File(FileSink),
}

pub struct FileSink {
    out: BufWriter<File>,
    partial: PathBuf,
    checkpoint: PathBuf,
    dest: PathBuf,
    /// Bytes already in the partial file when this run started (after a resume).
    base_bytes: u64,
    written: u64,
    /// Keep the partial file when dropped (an interrupted run that can be resumed).
    keep: bool,
    done: bool,
}

/// Progress of a partial output, saved after every complete chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Identifies the input and every setting that shapes the output.
    pub fingerprint: String,
    /// Complete input rows written.
    pub rows: u64,
    /// Bytes of the partial file that hold those rows.
    pub bytes: u64,
}

fn partial_paths(dest: &Path) -> (PathBuf, PathBuf) {
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    (
        dir.join(format!(".{name}.partial")),
        dir.join(format!(".{name}.partial.json")),
    )
}

fn check_not_input(path: &Path, input: Option<&Source>) -> Result<()> {
    if let Some(Source::File(inp)) = input {
        if let (Ok(a), Ok(b)) = (inp.canonicalize(), path.canonicalize()) {
            if a == b {
                return Err(Error::Usage(format!(
                    "the output {} is the input file; choose another name with -o",
                    path.display()
                )));
            }
        }
    }
    Ok(())
}

impl Sink {
    /// Opens `path` (`-` is standard output) for a fresh run. Refuses to write over `input`.
    pub fn open(path: &Path, input: Option<&Source>) -> Result<Sink> {
        if path == Path::new("-") {
            return Ok(Sink::Stdout(BufWriter::with_capacity(
                1 << 16,
                io::stdout(),
            )));
        }
        check_not_input(path, input)?;
        let (partial, checkpoint) = partial_paths(path);
        let name = partial.display().to_string();
        let file = File::create(&partial).map_err(|e| Error::io(&name, e))?;
        let _ = std::fs::remove_file(&checkpoint);
        Ok(Sink::File(FileSink {
            out: BufWriter::with_capacity(1 << 16, file),
            partial,
            checkpoint,
            dest: path.to_path_buf(),
            base_bytes: 0,
            written: 0,
            keep: false,
            done: false,
        }))
    }

    /// True when `path` has a partial output left by an interrupted run.
    pub fn has_partial(path: &Path) -> bool {
        path != Path::new("-") && partial_paths(path).1.is_file()
    }

    /// Reopens the partial output of an interrupted run made with the same `fingerprint`,
    /// cut back to its last complete chunk. Returns the sink and the rows already written.
    pub fn resume(path: &Path, input: Option<&Source>, fingerprint: &str) -> Result<(Sink, u64)> {
        if path == Path::new("-") {
            return Err(Error::Usage(
                "--resume needs an output file (-o FILE), not standard output".into(),
            ));
        }
        check_not_input(path, input)?;
        let (partial, checkpoint) = partial_paths(path);
        let text = std::fs::read_to_string(&checkpoint).map_err(|_| {
            Error::Usage(format!(
                "nothing to resume: there is no partial output for {} (looked for {}); run \
                 without --resume",
                path.display(),
                checkpoint.display()
            ))
        })?;
        let saved: Checkpoint = serde_json::from_str(&text).map_err(|e| {
            Error::Usage(format!(
                "{}: unreadable checkpoint ({e}); delete it and run without --resume",
                checkpoint.display()
            ))
        })?;
        if saved.fingerprint != fingerprint {
            return Err(Error::Usage(format!(
                "the partial output {} was made from a different input file or with different \
                 settings; rerun with exactly the same command, or without --resume to start over",
                partial.display()
            )));
        }
        let name = partial.display().to_string();
        let mut file = OpenOptions::new()
            .write(true)
            .open(&partial)
            .map_err(|e| Error::io(&name, e))?;
        let len = file.metadata().map_err(|e| Error::io(&name, e))?.len();
        if len < saved.bytes {
            return Err(Error::Usage(format!(
                "{name} is shorter than its checkpoint says; delete it and run without --resume"
            )));
        }
        file.set_len(saved.bytes)
            .and_then(|_| file.seek(SeekFrom::End(0)))
            .map_err(|e| Error::io(&name, e))?;
        Ok((
            Sink::File(FileSink {
                out: BufWriter::with_capacity(1 << 16, file),
                partial,
                checkpoint,
                dest: path.to_path_buf(),
                base_bytes: saved.bytes,
                written: 0,
                keep: true,
                done: false,
            }),
            saved.rows,
        ))
    }

    pub fn name(&self) -> String {
        match self {
            Sink::Stdout(_) => "<stdout>".into(),
            Sink::File(f) => f.dest.display().to_string(),
        }
    }

    /// The partial file's path, for messages about resuming.
    pub fn partial_path(&self) -> Option<&Path> {
        match self {
            Sink::Stdout(_) => None,
            Sink::File(f) => Some(&f.partial),
        }
    }

    /// Flushes what is written and, for a file, records that `rows` input rows are complete,
    /// so the partial file survives an interruption and `--resume` can continue after them.
    pub fn checkpoint(&mut self, rows: u64, fingerprint: &str) -> Result<()> {
        let name = self.name();
        self.flush().map_err(|e| Error::io(&name, e))?;
        if let Sink::File(f) = self {
            let saved = Checkpoint {
                fingerprint: fingerprint.to_string(),
                rows,
                bytes: f.base_bytes + f.written,
            };
            let dir = f.checkpoint.parent().unwrap_or(Path::new("."));
            let json = serde_json::to_vec(&saved).expect("checkpoint serialises");
            let cp = f.checkpoint.display().to_string();
            let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(&cp, e))?;
            tmp.write_all(&json).map_err(|e| Error::io(&cp, e))?;
            tmp.persist(&f.checkpoint)
                .map_err(|e| Error::io(&cp, e.error))?;
            f.keep = true;
        }
        Ok(())
    }

    /// Flushes and, for a file, moves it into place and removes the checkpoint.
    pub fn commit(self) -> Result<()> {
        match self {
            Sink::Stdout(mut w) => w.flush().map_err(|e| Error::io("<stdout>", e)),
            Sink::File(mut f) => {
                let name = f.dest.display().to_string();
                f.out.flush().map_err(|e| Error::io(&name, e))?;
                f.out
                    .get_ref()
                    .sync_all()
                    .map_err(|e| Error::io(&name, e))?;
                std::fs::rename(&f.partial, &f.dest).map_err(|e| Error::io(&name, e))?;
                let _ = std::fs::remove_file(&f.checkpoint);
                f.done = true;
                Ok(())
            }
        }
    }
}

impl Drop for FileSink {
    /// A run that failed leaves nothing behind; one that was checkpointed keeps its partial
    /// file for `--resume`.
    fn drop(&mut self) {
        if !self.done && !self.keep {
            let _ = std::fs::remove_file(&self.partial);
            let _ = std::fs::remove_file(&self.checkpoint);
        }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Stdout(w) => w.write(buf),
            Sink::File(f) => {
                let n = f.out.write(buf)?;
                f.written += n as u64;
                Ok(n)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Stdout(w) => w.flush(),
            Sink::File(f) => f.out.flush(),
        }
    }
}
