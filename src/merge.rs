//! Putting sharded outputs back together (`failup merge --rows`): the parts of a run split
//! with `--shard I/N` each carry their rows' numbers in the whole input, so their rows can be
//! interleaved back into input order, the `row` numbers dropped, and the result written
//! exactly as one unsharded run would have written it.
//!
//! Row numbers alone cannot show that parts belong together, so every sharded run to a file
//! also leaves a [`ShardRecord`] beside its part: its shard, the input's row count, the
//! settings that shape the rows, and the part's SHA-256. Parts of another input or other
//! settings, parts changed or cut after their run, shards given twice and shards missing are
//! refused, naming the problem.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::input::decompressed;
use crate::shard::name_missing;
use crate::sink::{part_differences, written_by, Settings, Sink};

/// The `kind` of every shard record.
pub const RECORD_KIND: &str = "failup shard record";

/// What a sharded run to a file writes beside its part, as `PART.shard`, when the part
/// is complete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardRecord {
    pub kind: String,
    /// The shard, 0-based, and how many there are.
    pub shard: u64,
    pub shard_count: u64,
    /// Data rows in the whole input, all shards together, and the SHA-256 of its records
    /// (`StoryReader::input_digest`): the same input, wherever it was read from.
    pub input_rows: u64,
    pub input_sha256: String,
    /// Where the input file was, canonical, so a merge refuses to write over it. Not
    /// compared between parts: a shard run on another machine read its own copy. (None for
    /// standard input that is not a file, a path that is not UTF-8, and records written
    /// before it was kept.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_file: Option<String>,
    /// SHA-256 of the part's bytes as the run wrote them.
    pub sha256: String,
    /// The input and the settings that shape the rows' bytes (not those that only split the
    /// work or set its pace).
    pub settings: Settings,
}

impl ShardRecord {
    /// Where the record of `part` lives: `PART.shard`.
    fn path_for(part: &Path) -> PathBuf {
        crate::sink::shard_record_path(part)
    }

    /// Writes the record beside `part` (whole or not at all), with the mode of `rows`, the
    /// file that becomes the part.
    pub fn write_beside(&self, part: &Path, rows: &Path) -> Result<()> {
        let path = Self::path_for(part);
        let name = path.display().to_string();
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        let mut tmp = tempfile::NamedTempFile::new_in(dir.unwrap_or(Path::new(".")))
            .map_err(|e| Error::io(&name, e))?;
        let mut json = serde_json::to_vec_pretty(self).expect("a shard record serialises");
        json.push(b'\n');
        // As readable as the part it describes (a temporary file is private), so an account
        // that may read the parts may merge them.
        crate::sink::give_the_mode_of(tmp.as_file(), rows).map_err(|e| Error::io(&name, e))?;
        tmp.write_all(&json).map_err(|e| Error::io(&name, e))?;
        tmp.persist(&path).map_err(|e| Error::io(&name, e.error))?;
        Ok(())
    }

    /// The record beside `part`, checked against the part's bytes. A part compressed after
    /// the run (`gzip part.csv`) keeps the record its run wrote, `part.csv.shard`.
    fn read_for(part: &Path) -> Result<ShardRecord> {
        let mut path = Self::path_for(part);
        if !path.exists() && part.extension().is_some_and(|e| e == "gz") {
            path = Self::path_for(&part.with_extension(""));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| {
            refused(format!(
                "{} has no readable shard record {} ({e}); classify --shard I/N -o FILE and \
                 embed --shard I/N -o FILE write one beside each part: keep it with the part, \
                 or rerun that shard",
                part.display(),
                path.display()
            ))
        })?;
        let record: ShardRecord = serde_json::from_str(&text)
            .ok()
            .filter(|r: &ShardRecord| r.kind == RECORD_KIND)
            .ok_or_else(|| refused(format!("{} is not a failup shard record", path.display())))?;
        Ok(record)
    }
}

/// Checks that the parts' records describe one run's shards, each given once and none
/// missing, and returns them, in the parts' order.
fn check_records(parts: &[PathBuf]) -> Result<Vec<ShardRecord>> {
    let records = parts
        .iter()
        .map(|p| ShardRecord::read_for(p))
        .collect::<Result<Vec<_>>>()?;
    let (first, first_path) = (&records[0], &parts[0]);
    let mut given: BTreeMap<u64, &Path> = BTreeMap::new();
    for (record, path) in records.iter().zip(parts) {
        let differ = mismatches(first, record);
        if !differ.is_empty() {
            return Err(refused(format!(
                "{} and {} are not shards of one run: {}",
                first_path.display(),
                path.display(),
                differ.join("; ")
            )));
        }
        if record.shard >= record.shard_count {
            return Err(refused(format!(
                "{}: its record names shard {} of {}, which cannot be; rerun that shard",
                path.display(),
                record.shard,
                record.shard_count
            )));
        }
        if let Some(other) = given.insert(record.shard, path) {
            return Err(refused(format!(
                "shard {} of {} is given twice ({} and {}); give each shard once",
                record.shard,
                record.shard_count,
                other.display(),
                path.display()
            )));
        }
    }
    let absent = first.shard_count - given.len() as u64;
    if absent > 0 {
        let held = |i| given.contains_key(&i);
        let named = name_missing(first.shard_count, absent, held, |i| i.to_string());
        let (noun, verb) = if absent == 1 {
            ("shard", "is")
        } else {
            ("shards", "are")
        };
        return Err(refused(format!(
            "{noun} {named} of {} {verb} missing; give every shard's part",
            first.shard_count
        )));
    }
    Ok(records)
}

/// How `record` differs from the first part's: settings, shard count, or input.
fn mismatches(first: &ShardRecord, record: &ShardRecord) -> Vec<String> {
    let (a, b) = (written_by(&first.settings), written_by(&record.settings));
    if a != b {
        return vec![format!(
            "failup {a} wrote the first and failup {b} the second"
        )];
    }
    let mut differ = part_differences(&first.settings, &record.settings);
    if record.shard_count != first.shard_count {
        differ.push(format!(
            "shard count: {} and {}",
            first.shard_count, record.shard_count
        ));
    }
    if record.input_rows != first.input_rows {
        differ.push(format!(
            "they read different inputs, of {} and {} rows",
            first.input_rows, record.input_rows
        ));
    } else if record.input_sha256 != first.input_sha256 {
        differ.push("they read different inputs (same row count, other contents)".into());
    }
    differ
}

/// What a merge wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    pub rows: u64,
    pub parts: usize,
}

/// One part, read one row at a time.
enum Part {
    Csv(csv::Reader<BufReader<Hashed>>),
    Jsonl(std::io::Lines<BufReader<Hashed>>),
}

impl Part {
    /// Reads what the merge left unread, so the part's digest covers all of it.
    fn read_to_end(&mut self, path: &Path) -> Result<()> {
        let rest = match self {
            Part::Csv(reader) => std::io::copy(reader.get_mut(), &mut std::io::sink()),
            // Lines has no way back to its reader: read its lines out (a line that is not
            // UTF-8 is still read, and hashed, before its error).
            Part::Jsonl(lines) => lines
                .filter(|l| !matches!(l, Err(e) if e.kind() == std::io::ErrorKind::InvalidData))
                .try_for_each(|l| l.map(drop))
                .map(|_| 0),
        };
        rest.map(drop)
            .map_err(|e| Error::io(path.display().to_string(), e))
    }
}

/// A part's file, hashed as it is merged: the bytes checked against the record are the bytes
/// merged, read once (a second read of the path could see another file). A gzip-compressed
/// part is hashed as its text, which is what the record describes.
struct Hashed {
    text: Box<dyn Read + Send>,
    digest: Rc<RefCell<Sha256>>,
}

impl Read for Hashed {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.text.read(buf)?;
        self.digest.borrow_mut().update(&buf[..n]);
        Ok(n)
    }
}

/// A row of a part: its number in the whole input and its bytes as the unsharded run writes
/// them (without the `row` number).
struct Row {
    number: u64,
    bytes: Vec<u8>,
    /// A JSON Lines row's keys (CSV parts compare their headers instead).
    columns: Option<Vec<String>>,
}

/// Merges the sharded outputs `parts` (CSV or JSON Lines, as `classify --shard` wrote them)
/// into `output` in input order. `owned` is told the hidden file the rows go to until they
/// are complete (None for a stream), once it is open and this merge's own, and None before
/// it is put in place; `after_row` is told how many rows are written after each, and an
/// error from it (an interruption) ends the merge, leaving no output behind.
pub fn merge_rows(
    parts: &[PathBuf],
    output: &Path,
    mut owned: impl FnMut(Option<&Path>),
    mut after_row: impl FnMut(u64) -> Result<()>,
) -> Result<Merged> {
    refuse_the_arguments(parts, output)?;
    let (mut readers, digests, header) = open_parts(parts)?;
    refuse_a_misnamed_output(output, header.is_empty())?;
    let records = check_records(parts)?;
    refuse_the_input(&records, output)?;
    let input_rows = records[0].input_rows;
    let mut sink = Sink::open("-o", output, None)?;
    owned(sink.partial_path());
    let name = sink.name();
    sink.write_all(&header).map_err(|e| Error::io(&name, e))?;
    let mut written = 0;
    let merged = interleave(parts, &mut readers, |row| {
        sink.write_all(&row.bytes)
            .map_err(|e| Error::io(&name, e))?;
        written += 1;
        after_row(written)
    });
    // A changed or cut part explains whatever else the merge ran into, so it is told first.
    check_parts_whole(parts, &mut readers, &digests, &records)?;
    let rows = merged?;
    if rows != input_rows {
        return Err(refused(format!(
            "the parts hold {rows} rows but their records say the input has {input_rows}; \
             rerun the shards"
        )));
    }
    owned(None);
    sink.commit()?;
    Ok(Merged {
        rows,
        parts: parts.len(),
    })
}

/// Refuses no parts, a shard record given as a part, and an output that is a part.
fn refuse_the_arguments(parts: &[PathBuf], output: &Path) -> Result<()> {
    if parts.is_empty() {
        return Err(Error::Usage(
            "failup merge --rows: give the parts to merge".into(),
        ));
    }
    if let Some(record) = parts
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "shard"))
    {
        return Err(refused(format!(
            "{} is a shard record; give the parts themselves (their records are found beside \
             them)",
            record.display()
        )));
    }
    if is_a_part(parts, output) {
        return Err(refused(format!(
            "{} is one of the parts or their shard records; write the merge to another file",
            output.display()
        )));
    }
    Ok(())
}

type Digests = Vec<Rc<RefCell<Sha256>>>;

/// Opens every part, each hashed as it is read, and returns them with their common header;
/// parts with another header than the first's are refused.
fn open_parts(parts: &[PathBuf]) -> Result<(Vec<Part>, Digests, Vec<u8>)> {
    let mut readers = Vec::with_capacity(parts.len());
    let mut digests = Vec::with_capacity(parts.len());
    let mut header: Option<(Vec<u8>, &Path)> = None;
    for path in parts {
        let digest = Rc::new(RefCell::new(Sha256::new()));
        let (part, part_header) = open_part(path, digest.clone())?;
        digests.push(digest);
        match &header {
            Some((first, first_path)) if *first != part_header => {
                return Err(different_columns(first_path, path));
            }
            Some(_) => {}
            None => header = Some((part_header, path)),
        }
        readers.push(part);
    }
    let (header, _) = header.expect("refuse_the_arguments refuses no parts");
    Ok((readers, digests, header))
}

/// Reads each part to its end and refuses one whose hash is not its shard record's: it was
/// changed or cut after its run.
fn check_parts_whole(
    parts: &[PathBuf],
    readers: &mut [Part],
    digests: &Digests,
    records: &[ShardRecord],
) -> Result<()> {
    for (((part, digest), record), path) in readers.iter_mut().zip(digests).zip(records).zip(parts)
    {
        part.read_to_end(path)?;
        if hex::encode(digest.borrow().clone().finalize()) != record.sha256 {
            return Err(refused(format!(
                "{} is not the file its shard record describes (its SHA-256 differs): it was \
                 changed or cut after its run; rerun shard {} of {}",
                path.display(),
                record.shard,
                record.shard_count
            )));
        }
    }
    Ok(())
}

/// Feeds the parts' rows to `write` in row order, checking that every row from 1 to the last
/// appears exactly once, and returns how many there were. (Rows after the last one seen are
/// the records' business: they know the input's row count.)
fn interleave(
    paths: &[PathBuf],
    parts: &mut [Part],
    mut write: impl FnMut(&Row) -> Result<()>,
) -> Result<u64> {
    let mut heap = BinaryHeap::new();
    let mut pending: Vec<Option<Row>> = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter_mut().enumerate() {
        let row = next_row(part, &paths[i])?;
        if let Some(r) = &row {
            heap.push(Reverse((r.number, i)));
        }
        pending.push(row);
    }
    let mut first: Option<(&Vec<String>, &Path)> = None;
    for (row, path) in pending.iter().zip(paths) {
        let Some(columns) = row.as_ref().and_then(|r| r.columns.as_ref()) else {
            continue;
        };
        match first {
            Some((seen, seen_in)) if seen != columns => {
                return Err(different_columns(seen_in, path));
            }
            Some(_) => {}
            None => first = Some((columns, path)),
        }
    }
    let mut expected = 1u64;
    while let Some(Reverse((number, i))) = heap.pop() {
        let row = pending[i]
            .take()
            .expect("a pending row for every heap entry");
        if number < expected {
            return Err(refused(format!(
                "row {number} appears twice (again in {}): the parts overlap; give each shard once",
                paths[i].display()
            )));
        }
        if number > expected {
            return Err(missing(expected, number - 1));
        }
        write(&row)?;
        expected += 1;
        let next = next_row(&mut parts[i], &paths[i])?;
        if let Some(r) = &next {
            if r.number <= number {
                return Err(refused(format!(
                    "{}: row {} follows row {number}; a part must be one shard in input order",
                    paths[i].display(),
                    r.number
                )));
            }
            heap.push(Reverse((r.number, i)));
        }
        pending[i] = next;
    }
    Ok(expected - 1)
}

/// Opens a part and reads its header: the CSV header line without `row` (empty for JSON
/// Lines, which have none).
fn open_part(path: &Path, digest: Rc<RefCell<Sha256>>) -> Result<(Part, Vec<u8>)> {
    let name = path.display().to_string();
    let file = File::open(path).map_err(|e| Error::io(&name, e))?;
    let text = decompressed(Box::new(file), &name)?;
    let mut buffered = BufReader::new(Hashed { text, digest });
    let first = buffered
        .fill_buf()
        .map_err(|e| Error::io(&name, e))?
        .first();
    if first.is_none_or(|&b| b == b'{') {
        return Ok((Part::Jsonl(buffered.lines()), Vec::new()));
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(buffered);
    let mut header = csv::ByteRecord::new();
    if !reader
        .read_byte_record(&mut header)
        .map_err(|e| Error::csv(&name, e))?
    {
        return Err(not_sharded(path, "it is empty"));
    }
    if header.get(0) != Some(b"row".as_slice()) {
        return Err(not_sharded(path, "its first column is not `row`"));
    }
    Ok((Part::Csv(reader), record_bytes(&header, &name)?))
}

fn next_row(part: &mut Part, path: &Path) -> Result<Option<Row>> {
    let name = path.display().to_string();
    match part {
        Part::Csv(reader) => {
            let mut record = csv::ByteRecord::new();
            if !reader
                .read_byte_record(&mut record)
                .map_err(|e| Error::csv(&name, e))?
            {
                return Ok(None);
            }
            let line = record.position().map_or(0, |p| p.line());
            let number = std::str::from_utf8(record.get(0).unwrap_or_default())
                .ok()
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| bad_row(&name, line, "its `row` is not a row number"))?;
            Ok(Some(Row {
                number,
                bytes: record_bytes(&record, &name)?,
                columns: None,
            }))
        }
        Part::Jsonl(lines) => {
            let Some(line) = lines.next() else {
                return Ok(None);
            };
            let line = line.map_err(|e| Error::io(&name, e))?;
            // Values stay as their text: re-reading embeddings' floats could change digits.
            let mut fields: BTreeMap<String, Box<RawValue>> = serde_json::from_str(&line)
                .map_err(|e| bad_row(&name, 0, &format!("not a JSON object: {e}")))?;
            let number = fields
                .remove("row")
                .and_then(|r| r.get().parse().ok())
                .ok_or_else(|| not_sharded(path, "a line has no `row` number"))?;
            let mut bytes = serde_json::to_vec(&fields).expect("JSON text serialises");
            bytes.push(b'\n');
            Ok(Some(Row {
                number,
                bytes,
                columns: Some(columns_of(&fields)),
            }))
        }
    }
}

/// What a JSON Lines row holds: its keys, and those of its kept `columns`, so parts written
/// with different settings are told apart.
fn columns_of(fields: &BTreeMap<String, Box<RawValue>>) -> Vec<String> {
    let mut keys: Vec<String> = fields.keys().cloned().collect();
    if let Some(kept) = fields.get("columns") {
        let kept: BTreeMap<String, Box<RawValue>> =
            serde_json::from_str(kept.get()).unwrap_or_default();
        keys.extend(kept.into_keys().map(|k| format!("columns.{k}")));
    }
    keys
}

/// A CSV record without its first field, written as `classify` writes records.
fn record_bytes(record: &csv::ByteRecord, name: &str) -> Result<Vec<u8>> {
    let mut writer = csv::WriterBuilder::new().from_writer(Vec::new());
    writer
        .write_record(record.iter().skip(1))
        .map_err(|e| Error::io(name, std::io::Error::other(e.to_string())))?;
    writer
        .into_inner()
        .map_err(|e| Error::io(name, e.into_error()))
}

/// classify takes `-o`'s extension for the format when `--format` is not given; merge keeps the
/// parts' format, so a name that says another (`.csv` for JSON Lines parts, `.jsonl` for CSV
/// parts, or a summary's or report's: `-o part-1.json` replaced a shard's partial summary) is
/// refused rather than written.
fn refuse_a_misnamed_output(output: &Path, jsonl: bool) -> Result<()> {
    let ext = output
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let named_for = match ext.as_deref() {
        Some("csv") if jsonl => "CSV",
        Some("jsonl" | "ndjson") if !jsonl => "JSON Lines",
        Some("tsv") => "tab-separated values",
        Some("json") => "JSON (a summary's name)",
        Some("html" | "htm" | "md" | "markdown" | "txt") => "a report",
        _ => return Ok(()),
    };
    let (parts, name) = match jsonl {
        true => ("JSON Lines", ".jsonl"),
        false => ("CSV", ".csv"),
    };
    Err(refused(format!(
        "the parts are {parts} and the merge keeps their format, but {} is named for {named_for}; \
         name it {name}",
        output.display()
    )))
}

/// Writing the merge over the file the shards read would lose the stories themselves.
fn refuse_the_input(records: &[ShardRecord], output: &Path) -> Result<()> {
    let input = records
        .iter()
        .filter_map(|r| r.input_file.as_deref())
        .find(|input| crate::sink::writes_into(output, Path::new(input)));
    match input {
        Some(input) => Err(refused(format!(
            "{} is the input the shards read; write the merge to another file{}",
            match output == Path::new("-") {
                true => format!("standard output goes to {input}, which"),
                false => input.to_string(),
            },
            crate::sink::emptied_by_the_shell(output, Path::new(input))
        ))),
        None => Ok(()),
    }
}

fn different_columns(a: &Path, b: &Path) -> Error {
    // An empty file reads as a JSON Lines part with no rows, which is all it can be. A pipe
    // is not opened again: it would wait for a writer.
    let empty = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file())
            && File::open(p)
                .ok()
                .and_then(|f| decompressed(Box::new(f), "").ok())
                .is_some_and(|mut text| text.read(&mut [0]).is_ok_and(|n| n == 0))
    };
    if let Some((empty, other)) = [(a, b), (b, a)].into_iter().find(|(p, _)| empty(p)) {
        return refused(format!(
            "{} is empty, and {} is CSV: a shard's CSV part has its header row even with no \
             rows (was it cut short, or made by another command?)",
            empty.display(),
            other.display()
        ));
    }
    refused(format!(
        "{} and {} were written with different columns or formats (was one run with another \
         --taxonomy, --explain, --keep-columns or --format jsonl, or by another command?)",
        a.display(),
        b.display()
    ))
}

fn missing(from: u64, to: u64) -> Error {
    let rows = if from == to {
        format!("row {from} is")
    } else {
        format!("rows {from} to {to} are")
    };
    refused(format!("{rows} in no part: a shard is missing"))
}

fn not_sharded(path: &Path, why: &str) -> Error {
    refused(format!(
        "{} is not the output of a sharded run ({why}); make the parts with classify --shard I/N",
        path.display()
    ))
}

fn bad_row(name: &str, line: u64, problem: &str) -> Error {
    Error::Input {
        file: name.to_string(),
        line: (line > 0).then_some(line),
        column: None,
        problem: problem.to_string(),
    }
}

/// Whether `output` is one of `parts` or a part's shard record: writing the merge there would
/// replace a part, or the record that lets it be merged.
pub fn is_a_part(parts: &[PathBuf], output: &Path) -> bool {
    let same = |p: &Path| p.canonicalize().ok() == output.canonicalize().ok();
    output.exists()
        && parts
            .iter()
            .any(|p| same(p) || same(&ShardRecord::path_for(p)))
}

fn refused(problem: String) -> Error {
    Error::Usage(format!("failup merge --rows: {problem}"))
}
