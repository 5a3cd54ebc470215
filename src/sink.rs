//! Where output goes: standard output, or a file that only appears under its name when
//! complete (written to a temporary file in the same folder, then renamed).

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use crate::error::{Error, Result};
use crate::input::Source;

pub enum Sink {
    Stdout(BufWriter<io::Stdout>),
    File {
        tmp: BufWriter<NamedTempFile>,
        dest: PathBuf,
    },
}

impl Sink {
    /// Opens `path` (`-` is standard output). Refuses to write over `input`.
    pub fn open(path: &Path, input: Option<&Source>) -> Result<Sink> {
        if path == Path::new("-") {
            return Ok(Sink::Stdout(BufWriter::with_capacity(
                1 << 16,
                io::stdout(),
            )));
        }
        if let Some(Source::File(inp)) = input {
            let same = match (inp.canonicalize(), path.canonicalize()) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            };
            if same {
                return Err(Error::Usage(format!(
                    "the output {} is the input file; choose another name with -o",
                    path.display()
                )));
            }
        }
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".failup-")
            .suffix(".tmp")
            .tempfile_in(&dir)
            .map_err(|e| Error::io(dir.display().to_string(), e))?;
        Ok(Sink::File {
            tmp: BufWriter::with_capacity(1 << 16, tmp),
            dest: path.to_path_buf(),
        })
    }

    pub fn name(&self) -> String {
        match self {
            Sink::Stdout(_) => "<stdout>".into(),
            Sink::File { dest, .. } => dest.display().to_string(),
        }
    }

    /// Flushes and, for a file, moves it into place.
    pub fn commit(self) -> Result<()> {
        match self {
            Sink::Stdout(mut w) => w.flush().map_err(|e| Error::io("<stdout>", e)),
            Sink::File { tmp, dest } => {
                let name = dest.display().to_string();
                let tmp = tmp
                    .into_inner()
                    .map_err(|e| Error::io(&name, e.into_error()))?;
                tmp.as_file().sync_all().map_err(|e| Error::io(&name, e))?;
                tmp.persist(&dest).map_err(|e| Error::io(&name, e.error))?;
                Ok(())
            }
        }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Stdout(w) => w.write(buf),
            Sink::File { tmp, .. } => tmp.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Stdout(w) => w.flush(),
            Sink::File { tmp, .. } => tmp.flush(),
        }
    }
}
