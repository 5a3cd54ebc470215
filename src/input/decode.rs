//! From bytes to UTF-8 text: gzip members, byte-order marks, UTF-16 and legacy encodings,
//! with the raw bytes counted for the progress bar.

use std::io::{self, BufRead, BufReader, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::InputEncoding;
use crate::error::{Error, Result};
use crate::transcode::{Utf8Spotter, Utf8Stream};

/// Counts raw bytes as they are read, for a progress bar by bytes.
pub(super) struct Counting<R> {
    pub(super) inner: R,
    pub(super) count: Arc<AtomicU64>,
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
pub(super) fn peek_first_line(
    inner: Box<dyn Read + Send>,
) -> io::Result<(Vec<u8>, Box<dyn Read + Send>)> {
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

pub(super) fn utf32_error(order: &str, name: &str, line: u64, how: &str) -> Error {
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
pub(super) fn reads_as_utf8(head: &[u8]) -> bool {
    let valid = match std::str::from_utf8(head) {
        Ok(_) => head.len(),
        Err(e) if e.error_len().is_none() => e.valid_up_to(),
        Err(_) => return false,
    };
    !head[..valid].is_ascii()
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
