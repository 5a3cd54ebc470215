//! The CSV reader on arbitrary bytes. Beyond "never panics", it checks what resume and shards
//! rest on: the same stories whatever size the reads come in, a shard's rows are exactly the
//! whole run's rows of that shard, and skipping k rows leaves exactly the rows after them.
//!
//! The first byte picks the settings: bits 0-1 the delimiter (sniffed, comma, semicolon,
//! tab), bit 2 windows-1252, bit 3 keep every column, bits 4-7 the size of each read
//! (0 = whole).
#![no_main]

use std::io::{self, Read};

use failup::input::MAX_TEXT_BYTES;
use failup::input::{Columns, Dialect, InputEncoding, KeepColumns, Story, StoryReader};
use failup::shard::Shard;
use libfuzzer_sys::fuzz_target;

/// Hands out the input `step` bytes at a time, as a pipe might.
struct Pieces {
    bytes: io::Cursor<Vec<u8>>,
    step: usize,
}

impl Read for Pieces {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let end = buf.len().min(self.step);
        self.bytes.read(&mut buf[..end])
    }
}

struct Settings {
    columns: Columns,
    dialect: Dialect,
}

impl Settings {
    fn from_byte(b: u8) -> Settings {
        let delimiter = [None, Some(b','), Some(b';'), Some(b'\t')][usize::from(b & 3)];
        let encoding = if b & 4 != 0 {
            InputEncoding::Windows1252
        } else {
            InputEncoding::Utf8
        };
        let keep = if b & 8 != 0 {
            KeepColumns::All
        } else {
            KeepColumns::None
        };
        Settings {
            columns: Columns {
                keep,
                ..Columns::default()
            },
            dialect: Dialect {
                delimiter,
                encoding,
            },
        }
    }

    fn open(&self, data: &[u8], step: usize) -> Result<StoryReader, String> {
        let source: Box<dyn Read + Send> = Box::new(Pieces {
            bytes: io::Cursor::new(data.to_vec()),
            step: if step == 0 { usize::MAX } else { step },
        });
        StoryReader::from_reader(source, "f.csv".into(), None, &self.columns, self.dialect)
            .map_err(|e| e.to_string())
    }
}

/// Every story left in the reader, in chunks of `chunk`, and the input's digest after them.
fn drain(reader: &mut StoryReader, chunk: usize) -> Result<(Vec<Story>, String), String> {
    let mut stories = Vec::new();
    loop {
        let got = reader.next_chunk(chunk).map_err(|e| e.to_string())?;
        if got.is_empty() {
            return Ok((stories, reader.input_digest()));
        }
        stories.extend(got);
    }
}

fn read_all(settings: &Settings, data: &[u8], step: usize) -> Result<(Vec<Story>, String), String> {
    drain(&mut settings.open(data, step)?, 5)
}

fuzz_target!(|input: &[u8]| {
    let Some((&first, data)) = input.split_first() else {
        return;
    };
    let settings = Settings::from_byte(first);
    let whole = read_all(&settings, data, 0);
    let step = usize::from(first >> 4);
    if step > 0 {
        assert_eq!(
            read_all(&settings, data, step),
            whole,
            "reads of {step} bytes"
        );
    }
    let Ok((stories, digest)) = whole else {
        return;
    };
    for (i, s) in stories.iter().enumerate() {
        assert_eq!(s.row, i as u64 + 1, "rows are numbered in order");
        assert!(s.text.len() <= MAX_TEXT_BYTES);
        if i > 0 {
            assert!(
                s.line > stories[i - 1].line,
                "each row starts on a later line"
            );
        }
    }
    for count in [2u64, 3] {
        for index in 0..count {
            let mut reader = settings.open(data, 0).expect("opened once already");
            reader.set_shard(Shard { index, count });
            let (part, part_digest) = drain(&mut reader, 3).expect("read once already");
            let expected: Vec<&Story> = stories
                .iter()
                .filter(|s| (s.row - 1) % count == index)
                .collect();
            assert_eq!(
                part.iter().collect::<Vec<_>>(),
                expected,
                "shard {index}/{count}"
            );
            assert_eq!(
                part_digest, digest,
                "shard {index}/{count} reads the whole input"
            );
        }
    }
    let skip = data.len() % (stories.len() + 2);
    let mut reader = settings.open(data, 0).expect("opened once already");
    let skipped = reader.skip(skip as u64).expect("read once already");
    assert_eq!(skipped as usize, skip.min(stories.len()));
    let (rest, _) = drain(&mut reader, 4).expect("read once already");
    assert_eq!(rest, stories[skipped as usize..], "after skipping {skip}");
});
