//! Input in UTF-16 or a legacy single-byte encoding, decoded to UTF-8 as it streams in.
//!
//! The CSV reader flags a row holding bytes that are not UTF-8 (`status=invalid_utf8`) and
//! replaces them with U+FFFD. A decoder that replaced a broken sequence itself (a lone UTF-16
//! surrogate, an odd byte at the end) would hand over a clean U+FFFD and the row would pass as
//! `ok`, its damage unseen. So each broken sequence here becomes the byte 0xFF, which no UTF-8
//! text holds, and the CSV reader flags its row as it flags any other bad byte.

use std::io::{self, Read};

use encoding_rs::{DecoderResult, Encoding};

/// Stands in for one broken sequence: never part of UTF-8, and not a CSV delimiter, quote or
/// line break, so the row around it stays whole.
const BROKEN: u8 = 0xFF;

/// Room for one pass of the decoder: UTF-16 never grows more than 3/2 in UTF-8, a single-byte
/// encoding never more than 3 bytes a byte.
const RAW_CHUNK: usize = 8 * 1024;

/// Passes a legacy-encoded input through unchanged, looking for UTF-8 in it: a file that
/// mixes the two (rows pasted from another export) is read right only in part, and its UTF-8
/// rows turn into other letters (`café` into `cafÃ©`) with no byte the CSV reader could flag.
/// When the input ends, the file is warned of, naming the line of the first such sequence.
pub struct Utf8Spotter<R> {
    inner: R,
    name: String,
    /// Continuation bytes still owed by the sequence begun, and the line it began on.
    owed: u8,
    begun_on: u64,
    line: u64,
    found: u64,
    first_line: u64,
    told: bool,
}

impl<R: Read> Utf8Spotter<R> {
    pub fn new(inner: R, name: &str) -> Utf8Spotter<R> {
        Utf8Spotter {
            inner,
            name: name.to_string(),
            owed: 0,
            begun_on: 1,
            line: 1,
            found: 0,
            first_line: 0,
            told: false,
        }
    }

    fn look_at(&mut self, b: u8) {
        match (self.owed, b) {
            (1.., 0x80..=0xBF) => {
                self.owed -= 1;
                if self.owed == 0 {
                    if self.found == 0 {
                        self.first_line = self.begun_on;
                    }
                    self.found += 1;
                }
                return;
            }
            (_, 0xC2..=0xDF) => self.owed = 1,
            (_, 0xE0..=0xEF) => self.owed = 2,
            (_, 0xF0..=0xF4) => self.owed = 3,
            _ => self.owed = 0,
        }
        self.begun_on = self.line;
        self.line += u64::from(b == b'\n');
    }

    fn tell(&mut self) {
        if self.found > 0 && !self.told {
            self.told = true;
            eprintln!(
                "warning: {}: {} place{} from line {} on read as UTF-8 (é written as two \
                 bytes), which the legacy --encoding turns into other letters (café into \
                 cafÃ©); the file may mix encodings: check those rows, and convert the file so \
                 that it is one (all UTF-8 is best)",
                self.name,
                self.found,
                if self.found == 1 { "" } else { "s" },
                self.first_line
            );
        }
    }
}

impl<R: Read> Read for Utf8Spotter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        buf[..n].iter().for_each(|&b| self.look_at(b));
        if n == 0 && !buf.is_empty() {
            self.tell();
        }
        Ok(n)
    }
}

/// UTF-8 text decoded from `inner`. A byte-order mark at the start wins over `encoding` (no
/// Latin-1 text starts with one) and is dropped.
pub struct Utf8Stream<R> {
    inner: R,
    decoder: encoding_rs::Decoder,
    raw: Vec<u8>,
    raw_start: usize,
    raw_end: usize,
    at_eof: bool,
    finished: bool,
    out: Vec<u8>,
    out_start: usize,
}

impl<R: Read> Utf8Stream<R> {
    pub fn new(inner: R, encoding: &'static Encoding) -> Utf8Stream<R> {
        let decoder = encoding.new_decoder();
        let room = decoder
            .max_utf8_buffer_length_without_replacement(RAW_CHUNK)
            .expect("a few KiB never overflow usize");
        Utf8Stream {
            inner,
            decoder,
            raw: vec![0; RAW_CHUNK],
            raw_start: 0,
            raw_end: 0,
            at_eof: false,
            finished: false,
            out: Vec::with_capacity(room + 1),
            out_start: 0,
        }
    }

    /// Decodes the next piece into `out`; at the end of the input, flushes what the decoder
    /// still holds (half a code unit is a broken sequence too).
    fn decode_more(&mut self) -> io::Result<()> {
        if self.raw_start == self.raw_end && !self.at_eof {
            let n = self.inner.read(&mut self.raw)?;
            self.at_eof = n == 0;
            (self.raw_start, self.raw_end) = (0, n);
        }
        let room = self.out.capacity() - 1;
        self.out.resize(room, 0);
        let (result, read, written) = self.decoder.decode_to_utf8_without_replacement(
            &self.raw[self.raw_start..self.raw_end],
            &mut self.out,
            self.at_eof,
        );
        self.raw_start += read;
        self.out.truncate(written);
        self.out_start = 0;
        match result {
            DecoderResult::Malformed(..) => self.out.push(BROKEN),
            DecoderResult::InputEmpty => self.finished = self.at_eof,
            DecoderResult::OutputFull => {}
        }
        Ok(())
    }
}

impl<R: Read> Read for Utf8Stream<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.out_start == self.out.len() {
            if self.finished || buf.is_empty() {
                return Ok(0);
            }
            self.decode_more()?;
        }
        let n = buf.len().min(self.out.len() - self.out_start);
        buf[..n].copy_from_slice(&self.out[self.out_start..self.out_start + n]);
        self.out_start += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `bytes`, at most `piece` of them a read.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// Reads all of `bytes` through the stream, `piece` bytes of input at a time, so that
    /// sequences split between reads are covered.
    fn decode(bytes: &[u8], encoding: &'static Encoding, piece: usize) -> Vec<u8> {
        let mut out = Vec::new();
        Utf8Stream::new(Trickle(bytes, piece), encoding)
            .read_to_end(&mut out)
            .expect("reading from memory does not fail");
        out
    }

    /// UTF-8 sequences are counted with the line of the first; the single accented letters
    /// of windows-1252 text, and a sequence cut by the end of a read, are not mistaken.
    #[test]
    fn utf8_in_a_legacy_file_is_spotted_by_line() {
        // A lone windows-1252 ï, then é and an em dash in UTF-8 on line 3.
        let bytes = b"id,text\n1,na\xEFve\n2,caf\xC3\xA9 \xE2\x80\x94 x\n";
        for piece in [1, 2, 4096] {
            let mut spotter = Utf8Spotter::new(Trickle(bytes, piece), "t.csv");
            let mut out = Vec::new();
            spotter.read_to_end(&mut out).unwrap();
            assert_eq!(out, bytes);
            assert_eq!((spotter.found, spotter.first_line), (2, 3), "{piece}");
        }
        let mut plain = Utf8Spotter::new(&b"id,text\n1,caf\xE9 \xAB ok \xBB\n"[..], "t.csv");
        plain.read_to_end(&mut Vec::new()).unwrap();
        assert_eq!(plain.found, 0);
    }

    fn utf16le(text: &str) -> Vec<u8> {
        text.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    #[test]
    fn utf16_with_either_byte_order_mark_becomes_the_same_utf8() {
        let text = "\u{FEFF}id,text\n1,café 😀 naïve\n";
        let without_mark = text.strip_prefix('\u{FEFF}').unwrap().as_bytes();
        let le = utf16le(text);
        let be: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
        for piece in [1, 3, 4096] {
            assert_eq!(decode(&le, encoding_rs::UTF_16LE, piece), without_mark);
            assert_eq!(decode(&be, encoding_rs::UTF_16LE, piece), without_mark);
        }
    }

    #[test]
    fn broken_utf16_becomes_a_byte_that_is_not_utf8_in_place() {
        // A lone high surrogate before `x`, and half a code unit at the very end.
        let mut bytes = utf16le("\u{FEFF}id,text\n1,a");
        bytes.extend_from_slice(&0xD800u16.to_le_bytes());
        bytes.extend(utf16le("x\n2,b\n"));
        bytes.push(b'c');
        for piece in [1, 2, 5, 4096] {
            assert_eq!(
                decode(&bytes, encoding_rs::UTF_16LE, piece),
                b"id,text\n1,a\xFFx\n2,b\n\xFF",
                "reading {piece} bytes at a time"
            );
        }
    }

    #[test]
    fn windows_1252_maps_every_byte_and_a_byte_order_mark_wins() {
        assert_eq!(
            decode(b"caf\xE9 \x80 \x81", encoding_rs::WINDOWS_1252, 2),
            "café € \u{81}".as_bytes()
        );
        assert_eq!(
            decode(b"\xEF\xBB\xBFcaf\xC3\xA9", encoding_rs::WINDOWS_1252, 1),
            "café".as_bytes()
        );
    }

    #[test]
    fn output_longer_than_one_pass_of_the_decoder_comes_through_whole() {
        let text: String = "é€😀,\n".repeat(10_000);
        let mut bytes = vec![0xFF, 0xFE];
        bytes.extend(utf16le(&text));
        assert_eq!(
            decode(&bytes, encoding_rs::UTF_16LE, 100_000),
            text.as_bytes()
        );
    }
}
