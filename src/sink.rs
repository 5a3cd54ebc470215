//! Where output goes: standard output, or a file that only appears under its name when
//! complete.
//!
//! A device or pipe named as the output (`-o /dev/null`, a FIFO) is written in place, like
//! standard output: renaming a finished file over it would replace the device itself.
//!
//! A file output is written to `.NAME.partial` in the same folder and renamed to NAME at the
//! end, so an interrupted run never leaves a half-written file under the final name. Beside
//! the partial file, `.NAME.partial.json` records after every chunk how many rows and bytes
//! of it are complete, and for which input and settings; `--resume` uses it to continue an
//! interrupted run exactly where the last complete chunk ended.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::input::Source;

pub enum Sink {
    Stdout(BufWriter<io::Stdout>),
    /// A device or pipe named with `-o`: written in place, never checkpointed or resumed.
    Device {
        out: BufWriter<File>,
        path: PathBuf,
    },
    File(FileSink),
}

/// An interrupted run's output, reopened by [`Sink::resume`].
pub struct Resumed {
    pub sink: Sink,
    /// Input rows already written.
    pub rows: u64,
    /// SHA-256 of the input records those rows came from.
    pub input_sha256: String,
}

pub struct FileSink {
    out: BufWriter<File>,
    partial: PathBuf,
    checkpoint: PathBuf,
    dest: PathBuf,
    /// Bytes already in the partial file when this run started (after a resume).
    base_bytes: u64,
    written: u64,
    /// Every byte of the partial file so far, the resumed ones included.
    hashed: Sha256,
    /// Keep the partial file when dropped (an interrupted run that can be resumed).
    keep: bool,
    done: bool,
}

/// The input and every setting that shapes an output's bytes, each under the name a user
/// knows it by (`input`, `--precision`, …), so a refused resume can say what differs.
pub type Settings = BTreeMap<String, String>;

/// Progress of a partial output, saved after every complete chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The run's settings; a resume must match every one.
    pub settings: Settings,
    /// Complete input rows written.
    pub rows: u64,
    /// Bytes of the partial file that hold those rows.
    pub bytes: u64,
    /// SHA-256 of those bytes: a resume refuses a partial file changed since (an editor or
    /// sync tool adding a byte-order mark or CRLF would otherwise cut a row in two).
    pub output_sha256: String,
    /// SHA-256 of the input records those rows came from (`StoryReader::digest`).
    pub input_sha256: String,
}

/// Each setting that differs between `a` and `b`: its name and its value in each, with
/// `(not set)` where one lacks it.
fn differing<'a>(a: &'a Settings, b: &'a Settings) -> Vec<(&'a str, &'a str, &'a str)> {
    let mut names: Vec<&String> = a.keys().chain(b.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| {
            let (x, y) = (a.get(name), b.get(name));
            (x != y).then_some((name.as_str(), shown(x), shown(y)))
        })
        .collect()
}

/// The command that wrote a file with these settings: embed records itself; classify, whose
/// settings came first, does not. Files of two commands share few settings, so their
/// differences would bury the one that matters.
pub fn written_by(settings: &Settings) -> &str {
    settings.get("command").map_or("classify", String::as_str)
}

/// A setting's value in messages: an empty one (no kept columns, say) as such, not as nothing.
fn shown(value: Option<&String>) -> &str {
    match value.map(String::as_str) {
        None => "(not set)",
        Some("") => "(none)",
        Some(v) => v,
    }
}

/// One line per setting that differs between `saved` (an earlier run's) and `now`.
pub fn differences(saved: &Settings, now: &Settings) -> Vec<String> {
    differing(saved, now)
        .into_iter()
        .map(|(name, was, is)| {
            let note = match name {
                // The hash is of the file the precision reads, so a precision changed alone
                // changes it too.
                MODEL_SETTING => {
                    " (of the weights file read: model.int8.onnx for int8, \
                                  model.onnx otherwise)"
                }
                _ => cpu_note(name, was, is),
            };
            format!("{name} was {was}, now {is}{note}")
        })
        .collect()
}

/// The setting holding the SHA-256 of the model weights a run read.
pub const MODEL_SETTING: &str = "--model (SHA-256)";

/// The setting naming the engine and kernel a run used ([`crate::pipeline::Engine::kernel`]).
pub const BACKEND_SETTING: &str = "--backend (as resolved)";

/// Why two runs' engines differ when no flag of theirs did: rten picks its kernels by the CPU's
/// instruction set, so a run continued or sharded onto another kind of CPU reads differently.
fn cpu_note(name: &str, a: &str, b: &str) -> &'static str {
    let rten = |v: &str| v.starts_with("rten-");
    if name == BACKEND_SETTING && rten(a) && rten(b) {
        " (the CPUs differ: rten runs on AVX-512, on AVX2 without it, or on neither, and \
         their scores differ in the third or fourth decimal; use CPUs of one kind)"
    } else {
        ""
    }
}

/// One line per setting that differs between two parts of a merge, in the order the
/// message names the parts: `name: a and b`.
pub fn part_differences(a: &Settings, b: &Settings) -> Vec<String> {
    differing(a, b)
        .into_iter()
        .map(|(name, x, y)| format!("{name}: {x} and {y}{}", cpu_note(name, x, y)))
        .collect()
}

/// The files a run writes beside its output `dest` on the way to it, with what each is: the
/// partial file, its checkpoint and, for a shard, the record `merge` reads. None for a stream.
pub fn companions(dest: &Path, shard: bool) -> Vec<(&'static str, PathBuf)> {
    if is_stream(dest) {
        return Vec::new();
    }
    let (partial, checkpoint) = partial_paths(&followed(dest));
    let mut files = vec![
        ("-o's partial file", partial),
        ("-o's checkpoint", checkpoint),
    ];
    if shard {
        files.push(("-o's shard record", shard_record_path(dest)));
    }
    files
}

/// Refuses an output named as failup names the files it keeps beside another output (a
/// partial file `.NAME.partial`, its checkpoint `.NAME.partial.json`, a shard record
/// `NAME.shard`): the run that owns that name would replace or delete it, or commit it as its
/// own rows.
fn check_not_a_companion_name(flag: &str, path: &Path) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    // What is left when the name is taken off: a partial's `.NAME` or a record's `NAME`.
    let owner = |prefix: &str, suffix: &str| {
        let rest = name
            .strip_prefix(prefix)
            .and_then(|n| n.strip_suffix(suffix));
        rest.is_some_and(|n| !n.is_empty())
    };
    let kept = match () {
        _ if owner(".", PARTIAL) => "an interrupted run's partial output",
        _ if owner(".", CHECKPOINT) => "an interrupted run's checkpoint",
        _ if owner("", RECORD) => "a shard's record",
        _ => return Ok(()),
    };
    Err(Error::Usage(format!(
        "{flag} {}: that is how failup names {kept}, kept beside another output, and the run \
         that owns it would replace it or take it for its own; give {flag} another name",
        path.display()
    )))
}

/// How failup names the files beside an output NAME: `.NAME.partial`, `.NAME.partial.json`
/// and, for a shard's part, `NAME.shard`.
const PARTIAL: &str = ".partial";
const CHECKPOINT: &str = ".partial.json";
const RECORD: &str = ".shard";

/// Where the record of a shard's output `part` lives: `PART.shard`, beside the file a link
/// named as the part leads to, where the run that wrote through the link put it.
pub fn shard_record_path(part: &Path) -> PathBuf {
    let mut name = followed(part).into_os_string();
    name.push(RECORD);
    name.into()
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
        dir.join(format!(".{name}{PARTIAL}")),
        dir.join(format!(".{name}{CHECKPOINT}")),
    )
}

/// True for `-`, for an existing path that is neither a regular file nor a folder (a device
/// such as `/dev/null`, a FIFO), and for a link under `/dev` or `/proc` (`/dev/stdout`,
/// `/dev/fd/1`: it may lead to a regular file, but renaming over it would replace the link):
/// outputs written as a stream, with nothing to resume. A file in a folder under `/dev`, such
/// as the memory-backed `/dev/shm`, is a file like any other.
pub fn is_stream(path: &Path) -> bool {
    path == Path::new("-")
        || is_system_link(path)
        || std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}

/// The file an output name leads to. A symbolic link is followed, as the shell's `>` follows
/// it: the run writes the file it points to and leaves the link in place. The partial file,
/// its checkpoint and a shard's record go beside that file too, so the final rename stays
/// within one folder (a link may lead to another file system) and `--resume` and `merge`,
/// following the same link, find them. A link under `/dev` or `/proc` is the system's name
/// for an open file and is written as a stream, so it is kept as given.
fn followed(path: &Path) -> PathBuf {
    let mut path = path.to_path_buf();
    if path == Path::new("-") {
        return path;
    }
    // The limit Linux puts on links in one lookup; a loop of links is left for the open to
    // refuse.
    for _ in 0..40 {
        if is_system_link(&path) {
            break;
        }
        let Ok(target) = std::fs::read_link(&path) else {
            break;
        };
        path = match path.parent() {
            Some(dir) => dir.join(target),
            None => target,
        };
    }
    path
}

/// A link under `/dev` or `/proc` (`/dev/stdout`, `/proc/self/fd/1`): the system's name for an
/// open file, written in place, never replaced.
fn is_system_link(path: &Path) -> bool {
    (path.starts_with("/dev") || path.starts_with("/proc"))
        && std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// Whether `path` is a link of the system's to the file standard output writes to
/// (`/dev/stdout`, `/dev/fd/1`, `/proc/self/fd/1`). Opened again by its name, such a file
/// would be written from its start, not where standard output stands: over what `>>` had
/// kept there, and under what a shell's `{ …; } > file` writes after failup. So it is written
/// through standard output itself.
fn is_standard_output(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        use std::os::unix::fs::MetadataExt;
        let stdout = io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map(std::fs::File::from)
            .and_then(|f| f.metadata());
        match (is_system_link(path), stdout, std::fs::metadata(path)) {
            (true, Ok(out), Ok(named)) => out.dev() == named.dev() && out.ino() == named.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

/// Refuses an output that cannot be written: the input itself, a folder, or a file in a folder
/// that is missing or that failup may not create files in. `flag` names the option in the
/// message. `Sink::open` checks again; commands call this first, so the mistake is told before
/// the model loads, not after the work.
pub fn check_output(flag: &str, path: &Path, input: Option<&Source>) -> Result<()> {
    check_not_input(flag, path, input)?;
    if path == Path::new("-") {
        return check_stdout_writable();
    }
    refuse_a_misleading_name(flag, path)?;
    let path = &followed(path);
    if path.is_dir() {
        return Err(Error::Usage(format!(
            "{} is a folder; give {flag} a file name inside it",
            path.display()
        )));
    }
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(folder) = folder.filter(|f| !f.is_dir()) {
        return Err(no_such_folder(path, folder));
    }
    if is_stream(path) {
        return Ok(());
    }
    let folder = folder.unwrap_or(Path::new("."));
    let probe = probe_folder(flag, path, folder)?;
    check_replaceable(flag, path, folder, probe.path())
}

/// Refuses an output name that promises what failup will not write: a `.gz` file, a name
/// failup gives its own companion files, or a folder's name.
fn refuse_a_misleading_name(flag: &str, path: &Path) -> Result<()> {
    // failup writes plain text; a `.gz` name would promise what the file is not.
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"))
    {
        return Err(Error::Usage(format!(
            "{flag} {}: failup writes it uncompressed, so it would not be gzip as its name \
             says; give it a plain name (to compress rows, a report or embeddings, send that \
             output alone to standard output with `-` and pipe it into gzip)",
            path.display()
        )));
    }
    check_not_a_companion_name(flag, path)?;
    // `out.csv/` names a folder: its parent reads as empty, so every check below passed and
    // the run failed only at its final rename.
    if path
        .as_os_str()
        .to_string_lossy()
        .ends_with(std::path::is_separator)
        && !path.is_dir()
    {
        return Err(Error::Usage(format!(
            "{flag} {}: a name ending in '/' is a folder's, and there is no such folder; give \
             {flag} a file name (without the '/')",
            path.display()
        )));
    }
    Ok(())
}

/// The error for an output whose folder is not there; a file (or a device) where a folder
/// should be cannot be fixed with mkdir.
fn no_such_folder(path: &Path, folder: &Path) -> Error {
    let (what, fix) = match folder.ancestors().find(|a| a.exists() && !a.is_dir()) {
        Some(file) => (
            format!("{} is a file, not a folder", file.display()),
            "choose a path under a folder".to_string(),
        ),
        None => (
            format!("there is no folder {}", folder.display()),
            format!("create it first (mkdir -p {})", folder.display()),
        ),
    };
    Error::Usage(format!("cannot write {}: {what}; {fix}", path.display()))
}

/// A new file in `folder`, which the output is written beside its final name and renamed
/// from: tried now rather than after classifying everything, with a name as long as the
/// checkpoint's (`.NAME.partial.json`), which may pass what the file system allows.
fn probe_folder(flag: &str, path: &Path, folder: &Path) -> Result<tempfile::NamedTempFile> {
    let (_, checkpoint) = partial_paths(path);
    let longest = checkpoint.file_name().map_or(0, |n| n.len());
    let prefix = ".failup-check";
    tempfile::Builder::new()
        .prefix(prefix)
        .rand_bytes(longest.saturating_sub(prefix.len()).max(6))
        .tempfile_in(folder)
        .map_err(|e| match e.kind() {
            io::ErrorKind::InvalidFilename => Error::Usage(format!(
                "cannot write {flag} {}: failup writes it beside its name first, as {} ({} \
                 bytes), a name longer than the file system allows; give a shorter name",
                path.display(),
                checkpoint.display(),
                longest
            )),
            kind => Error::Usage(format!(
                "cannot write {flag} {}: failup cannot create files in the folder {} \
                 ({kind}); choose a folder you can write to",
                path.display(),
                folder.display(),
            )),
        })
}

/// Refuses a standard output that cannot take a byte: open for reading only (`1<file`), or
/// closed where the descriptor stays closed. (On Linux and macOS the standard library opens
/// a closed one (`>&-`) on /dev/null before `main`, for reading and writing, as Python's
/// `subprocess.DEVNULL` does on purpose, so the two cannot be told apart, and a run whose
/// output was sent to /dev/null on purpose must go on.)
pub fn check_stdout_writable() -> Result<()> {
    #[cfg(unix)]
    {
        // SAFETY: F_GETFL only reads the descriptor's flags; on a closed descriptor it fails
        // with EBADF and changes nothing.
        let flags = unsafe { libc::fcntl(libc::STDOUT_FILENO, libc::F_GETFL) };
        let problem = if flags == -1 {
            "is closed"
        } else if flags & libc::O_ACCMODE == libc::O_RDONLY {
            "is open for reading only"
        } else {
            return Ok(());
        };
        Err(Error::Usage(format!(
            "standard output {problem}, so what failup writes there would be lost; run it \
             with standard output open for writing (redirect it to a file with > FILE), or \
             give -o FILE"
        )))
    }
    #[cfg(not(unix))]
    Ok(())
}

/// Refuses an existing output that the final rename could not replace: in a folder with the
/// sticky bit (such as /tmp), only the file's owner, the folder's owner or root may replace a
/// file. Who this process is comes from the owner of `probe`, a file it just created there.
#[cfg(unix)]
fn check_replaceable(flag: &str, path: &Path, folder: &Path, probe: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    const STICKY: u32 = 0o1000;
    let (Ok(file), Ok(dir), Ok(me)) = (
        std::fs::symlink_metadata(path),
        std::fs::metadata(folder),
        std::fs::metadata(probe),
    ) else {
        return Ok(());
    };
    let me = me.uid();
    if dir.mode() & STICKY == 0 || me == 0 || file.uid() == me || dir.uid() == me {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "cannot write {flag} {}: the file belongs to another user and its folder {} has the \
         sticky bit (as /tmp does), so failup could not replace it; choose another file name",
        path.display(),
        folder.display()
    )))
}

#[cfg(not(unix))]
fn check_replaceable(_: &str, _: &Path, _: &Path, _: &Path) -> Result<()> {
    Ok(())
}

/// Refuses two outputs of one run that name the same file (or both standard output): the
/// second would overwrite the first, and a report written over the rows loses them. Devices
/// other than standard output (`/dev/null` twice, to time a run) may repeat.
///
/// Names are compared, and so are the files they lead to: `--report /dev/stdout` while
/// standard output is redirected to a file would write over the rows from its start, and an
/// output that is the file standard error goes to would be overwritten by the warnings.
pub fn check_distinct(outputs: &[(&str, &Path)]) -> Result<()> {
    check_same_names(outputs)?;
    check_same_files(outputs)
}

fn check_same_names(outputs: &[(&str, &Path)]) -> Result<()> {
    let place = |path: &Path| -> Option<PathBuf> {
        if path == Path::new("-") {
            return Some(path.to_path_buf());
        }
        if is_stream(path) {
            return None;
        }
        let folder = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(folder) => folder.canonicalize().ok()?,
            None => std::env::current_dir().ok()?,
        };
        Some(folder.join(path.file_name()?))
    };
    for (i, (flag, path)) in outputs.iter().enumerate() {
        let Some(here) = place(path) else { continue };
        if let Some((other, _)) = outputs[..i]
            .iter()
            .find(|(_, o)| place(o).as_ref() == Some(&here))
        {
            let named = match path == &Path::new("-") {
                true => "standard output (-)".to_string(),
                false => path.display().to_string(),
            };
            return Err(Error::Usage(format!(
                "{other} and {flag} both name {named}; one would overwrite or mix into the \
                 other, so give each its own file"
            )));
        }
    }
    Ok(())
}

/// The file an output leads to, as (device, inode), when writing to it twice would lose or
/// mix bytes: a regular file or a pipe, not a character device such as `/dev/null` or a
/// terminal. A file that does not exist yet has none.
#[cfg(unix)]
fn file_behind(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let meta = match path == Path::new("-") {
        true => std::fs::metadata("/dev/stdout").ok()?,
        false => std::fs::metadata(path).ok()?,
    };
    let kind = meta.file_type();
    (kind.is_file() || kind.is_fifo() || kind.is_socket()).then(|| (meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn file_behind(_: &Path) -> Option<(u64, u64)> {
    None
}

/// Refuses an output that is one of the other files the command reads (`read`, given by
/// `read_flag`): examples, a profile or a taxonomy written over with rows or a report are lost.
pub fn check_not_read(flag: &str, path: &Path, read_flag: &str, read: &Path) -> Result<()> {
    if !writes_into(path, read) {
        return Ok(());
    }
    let output = match path == Path::new("-") {
        true => "standard output".to_string(),
        false => path.display().to_string(),
    };
    Err(Error::Usage(format!(
        "{output} ({flag}) is the file {read_flag} reads; give {flag} another file, so {} is \
         not written over{}",
        read.display(),
        emptied_by_the_shell(path, read)
    )))
}

/// Whether writing the output `path` (`-` for standard output) would write into the file
/// `read`, by name or by identity. `-` as `read` is standard input, which is not written over.
pub fn writes_into(path: &Path, read: &Path) -> bool {
    if read == Path::new("-") {
        return false;
    }
    let same_file = file_behind(read).is_some_and(|f| Some(f) == file_behind(path));
    // `-` is standard output, whatever a file called `-` beside it is.
    let named_alike = path != Path::new("-")
        && matches!(
            (read.canonicalize(), path.canonicalize()),
            (Ok(a), Ok(b)) if a == b
        );
    same_file || named_alike
}

/// What to add when standard output was sent into `read` with `>`: the shell emptied it
/// before failup started.
pub fn emptied_by_the_shell(path: &Path, read: &Path) -> &'static str {
    match path == Path::new("-") && std::fs::metadata(read).is_ok_and(|m| m.len() == 0) {
        true => " (the shell has already emptied it for the `>`: restore it from a copy)",
        false => "",
    }
}

fn check_same_files(outputs: &[(&str, &Path)]) -> Result<()> {
    let stderr = file_behind(Path::new("/dev/stderr"));
    for (i, (flag, path)) in outputs.iter().enumerate() {
        let Some(here) = file_behind(path) else {
            continue;
        };
        let what = |p: &Path| match p == Path::new("-") {
            true => "standard output".to_string(),
            false => p.display().to_string(),
        };
        if let Some((other, first)) = outputs[..i]
            .iter()
            .find(|(_, o)| file_behind(o) == Some(here))
        {
            return Err(Error::Usage(format!(
                "{other} ({}) and {flag} ({}) lead to the same file; one would write over or mix \
                 into the other, so give each its own file",
                what(first),
                what(path)
            )));
        }
        // Standard output sent where standard error goes (`> log 2>&1`) is the user's choice.
        let named_file =
            *path != Path::new("-") && std::fs::metadata(path).is_ok_and(|m| m.is_file());
        if named_file && stderr == Some(here) {
            return Err(Error::Usage(format!(
                "{flag} ({}) is the file standard error goes to, where warnings and progress \
                 are written; give {flag} its own file",
                what(path)
            )));
        }
    }
    Ok(())
}

pub fn check_not_input(flag: &str, path: &Path, input: Option<&Source>) -> Result<()> {
    let Some(input) = input else {
        return Ok(());
    };
    // By identity, not name: `failup classify - -o in.csv < in.csv`, and standard output sent
    // into the input (`>> in.csv`), where the run would read its own rows back without end.
    // Only a regular file reads back what was written to it: standard input and output may
    // well be one socket (inetd, socat), and that is a filter, not a loop.
    let source = match input {
        Source::Stdin => Path::new("/dev/stdin"),
        Source::File(p) => p.as_path(),
    };
    let is_file = std::fs::metadata(source).is_ok_and(|m| m.is_file());
    let source = file_behind(source).filter(|_| is_file);
    let reads_itself = source.is_some() && source == file_behind(path);
    // `-` is standard output, whatever a file called `-` beside the input is.
    let named_alike = match input {
        Source::File(inp) if path != Path::new("-") => matches!(
            (inp.canonicalize(), path.canonicalize()),
            (Ok(a), Ok(b)) if a == b
        ),
        _ => false,
    };
    if !reads_itself && !named_alike {
        return Ok(());
    }
    // `failup classify in.csv > in.csv`: the shell emptied the input before failup started.
    let emptied = match input {
        Source::File(p) if path == Path::new("-") => {
            std::fs::metadata(p).is_ok_and(|m| m.len() == 0)
        }
        _ => false,
    };
    let output = match path == Path::new("-") {
        true => "standard output".to_string(),
        false => format!("the output {}", path.display()),
    };
    let input = match input {
        Source::Stdin => "the file standard input reads from",
        Source::File(_) => "the input file",
    };
    let emptied = match emptied {
        true => " (the shell has already emptied it for the `>`: restore it from a copy)",
        false => "",
    };
    Err(Error::Usage(format!(
        "{output} is {input}{emptied}; give {flag} another file, so the input is not written \
         over"
    )))
}

impl Sink {
    /// Opens `path` (`-` is standard output) for a fresh run. Refuses to write over `input`;
    /// `flag` names the option that gave `path` in the messages.
    pub fn open(flag: &str, path: &Path, input: Option<&Source>) -> Result<Sink> {
        if path != Path::new("-") {
            check_output(flag, path, input)?;
        }
        let path = &followed(path);
        if path == Path::new("-") || is_standard_output(path) {
            check_stdout_writable()?;
            return Ok(Sink::Stdout(BufWriter::with_capacity(
                1 << 16,
                io::stdout(),
            )));
        }
        if is_stream(path) {
            let file = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|e| Error::io(path.display().to_string(), e))?;
            return Ok(Sink::Device {
                out: BufWriter::with_capacity(1 << 16, file),
                path: path.to_path_buf(),
            });
        }
        let (partial, checkpoint) = partial_paths(path);
        let name = partial.display().to_string();
        // A checkpoint beside no rows is what a run left that stopped after putting its output
        // in place: nothing resumable is replaced then.
        let replaces_rows = checkpoint.is_file() && partial.metadata().is_ok_and(|m| m.len() > 0);
        let file = open_partial(OpenOptions::new().create(true).truncate(false), &partial)?;
        lock_partial(&file, path, &partial)?;
        // Any command writing here replaces what an interrupted classify or embed kept for
        // --resume: said, so a slip of `-o` (a report over the rows' name) is not silent. It
        // is said once the lock is held, so a run still writing there is refused instead.
        if replaces_rows {
            eprintln!(
                "note: this run replaces the partial output an interrupted run had kept for \
                 --resume in {}; that run can no longer be continued",
                partial.display()
            );
        }
        file.set_len(0).map_err(|e| Error::io(&name, e))?;
        // A file to be replaced lends its mode from the start: rows the user had locked away
        // (`chmod 600`) are not readable by others in the partial either.
        give_the_mode_of(&file, path).map_err(|e| Error::io(&name, e))?;
        let _ = std::fs::remove_file(&checkpoint);
        Ok(Sink::File(FileSink {
            out: BufWriter::with_capacity(1 << 16, file),
            partial,
            checkpoint,
            dest: path.to_path_buf(),
            base_bytes: 0,
            written: 0,
            hashed: Sha256::new(),
            keep: false,
            done: false,
        }))
    }

    /// Reopens the partial output of an interrupted run made with the same `settings`, cut
    /// back to its last complete chunk.
    pub fn resume(path: &Path, input: Option<&Source>, settings: &Settings) -> Result<Resumed> {
        if is_stream(path) {
            return Err(Error::Usage(format!(
                "--resume needs an output file (-o FILE), not {}",
                if path == Path::new("-") {
                    "standard output".to_string()
                } else {
                    format!("the device or pipe {}", path.display())
                }
            )));
        }
        check_not_input("-o", path, input)?;
        let path = &followed(path);
        let (partial, checkpoint) = partial_paths(path);
        let saved = read_checkpoint(path, &partial, &checkpoint)?;
        check_partial_is_there(path, &partial, &checkpoint)?;
        check_same_settings(&saved.settings, settings, &partial)?;
        let (file, hashed) = reopen_partial(path, &partial, &saved)?;
        Ok(Resumed {
            sink: Sink::File(FileSink {
                out: BufWriter::with_capacity(1 << 16, file),
                partial,
                checkpoint,
                dest: path.to_path_buf(),
                base_bytes: saved.bytes,
                written: 0,
                hashed,
                keep: true,
                done: false,
            }),
            rows: saved.rows,
            input_sha256: saved.input_sha256,
        })
    }

    pub fn name(&self) -> String {
        match self {
            Sink::Stdout(_) => "<stdout>".into(),
            Sink::Device { path, .. } => path.display().to_string(),
            Sink::File(f) => f.dest.display().to_string(),
        }
    }

    /// The partial file's path, for messages about resuming.
    pub fn partial_path(&self) -> Option<&Path> {
        match self {
            Sink::Stdout(_) | Sink::Device { .. } => None,
            Sink::File(f) => Some(&f.partial),
        }
    }

    /// The checkpoint file's path, beside the partial file.
    pub fn checkpoint_path(&self) -> Option<&Path> {
        match self {
            Sink::Stdout(_) | Sink::Device { .. } => None,
            Sink::File(f) => Some(&f.checkpoint),
        }
    }

    /// True when `path`, as an error names it, is this output's final, partial or checkpoint
    /// file: the failure was in writing the output, not in reading the input.
    pub fn writes_to(&self, path: &str) -> bool {
        match self {
            Sink::Stdout(_) => path == "<stdout>",
            Sink::Device { path: p, .. } => p.display().to_string() == path,
            Sink::File(f) => [&f.dest, &f.partial, &f.checkpoint]
                .iter()
                .any(|p| p.display().to_string() == path),
        }
    }

    /// True when a checkpointed partial file will stay behind for `--resume` if this sink is
    /// dropped uncommitted.
    pub fn keeps_partial(&self) -> bool {
        matches!(self, Sink::File(f) if f.keep)
    }

    /// Drops an uncommitted output, checkpointed or not: its partial file and checkpoint are
    /// removed.
    pub fn discard(self) {
        if let Sink::File(mut f) = self {
            f.keep = false;
        }
    }

    /// The final name of a file output.
    pub fn dest_path(&self) -> Option<&Path> {
        match self {
            Sink::Stdout(_) | Sink::Device { .. } => None,
            Sink::File(f) => Some(&f.dest),
        }
    }

    /// Flushes what is written and, for a file, records that `rows` input rows are complete
    /// (read from input records whose digest is `input_sha256`), so the partial file survives
    /// an interruption and `--resume` can continue after them.
    pub fn checkpoint(&mut self, rows: u64, settings: &Settings, input_sha256: &str) -> Result<()> {
        let name = self.name();
        self.flush().map_err(|e| Error::io(&name, e))?;
        if let Sink::File(f) = self {
            f.refuse_a_lost_partial()?;
            let saved = Checkpoint {
                settings: settings.clone(),
                rows,
                bytes: f.base_bytes + f.written,
                output_sha256: hex::encode(f.hashed.clone().finalize()),
                input_sha256: input_sha256.to_string(),
            };
            let dir = f.checkpoint.parent().unwrap_or(Path::new("."));
            let json = serde_json::to_vec(&saved).expect("checkpoint serialises");
            let cp = f.checkpoint.display().to_string();
            let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(&cp, e))?;
            // Readable by whoever may read the partial rows, as they are (a temporary file
            // is private), so another account sharing the folder can resume.
            give_the_mode_of(tmp.as_file(), &f.partial).map_err(|e| Error::io(&cp, e))?;
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
            Sink::Device { mut out, path } => out
                .flush()
                .map_err(|e| Error::io(path.display().to_string(), e)),
            Sink::File(mut f) => {
                let name = f.dest.display().to_string();
                f.out.flush().map_err(|e| Error::io(&name, e))?;
                f.out
                    .get_ref()
                    .sync_all()
                    .map_err(|e| Error::io(&name, e))?;
                // Again, for a file put there or changed while the run went on.
                give_the_mode_of(f.out.get_ref(), &f.dest).map_err(|e| Error::io(&name, e))?;
                f.refuse_a_lost_partial()?;
                std::fs::rename(&f.partial, &f.dest).map_err(|e| Error::io(&name, e))?;
                let _ = std::fs::remove_file(&f.checkpoint);
                f.done = true;
                Ok(())
            }
        }
    }
}

/// Gives `file` the permissions of the regular file at `like`, when there is one, with the
/// owner's right to write kept: a partial file must stay writable for `--resume`.
pub(crate) fn give_the_mode_of(file: &File, like: &Path) -> io::Result<()> {
    let Some(mut permissions) = std::fs::metadata(like)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.permissions())
    else {
        return Ok(());
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Read and write bits alone: a set-id, sticky or execute bit has no place on rows.
        permissions.set_mode((permissions.mode() & 0o666) | 0o200);
    }
    #[cfg(not(unix))]
    permissions.set_readonly(false);
    file.set_permissions(permissions)
}

/// The checkpoint of an interrupted run writing `path`, or why there is nothing to resume.
fn read_checkpoint(path: &Path, partial: &Path, checkpoint: &Path) -> Result<Checkpoint> {
    let text = std::fs::read_to_string(checkpoint).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound if partial.exists() => Error::Usage(format!(
            "nothing to resume: the run that began {} stopped before its first checkpoint \
             (there is no {}), so it kept no rows; run without --resume to start over",
            partial.display(),
            checkpoint.display()
        )),
        io::ErrorKind::NotFound if path.exists() => Error::Usage(format!(
            "nothing to resume: {} is there and no run writing it was interrupted (there is \
             no {}); run without --resume to write it again",
            path.display(),
            checkpoint.display()
        )),
        io::ErrorKind::NotFound => Error::Usage(format!(
            "nothing to resume: there is no partial output for {} (looked for {}); run \
             without --resume",
            path.display(),
            checkpoint.display()
        )),
        // Not "nothing to resume": starting over would throw the kept rows away.
        _ => Error::Usage(format!(
            "cannot read the checkpoint {} of the interrupted run ({e}); the rows it kept in \
             {} can be resumed only once failup can read it (run as an account that may \
             read and write both, or put the checkpoint back), and without --resume the \
             run starts over",
            checkpoint.display(),
            partial.display()
        )),
    })?;
    serde_json::from_str(&text).map_err(|e| {
        Error::Usage(format!(
            "{}: unreadable checkpoint, perhaps from an older failup ({e}); run without \
             --resume to start over",
            checkpoint.display()
        ))
    })
}

/// The partial output a checkpoint belongs to is there, and the output not already complete.
fn check_partial_is_there(path: &Path, partial: &Path, checkpoint: &Path) -> Result<()> {
    if !partial.exists() && path.is_file() {
        // A run stopped between putting its output in place and removing its checkpoint.
        let _ = std::fs::remove_file(checkpoint);
        return Err(Error::Usage(format!(
            "nothing to resume: {} is complete (the run that made it stopped just after \
             putting it in place); run without --resume to make it again",
            path.display()
        )));
    }
    if !partial.exists() {
        return Err(Error::Usage(format!(
            "cannot resume: the partial output {} is gone, though its checkpoint {} is \
             still there; run without --resume to start over",
            partial.display(),
            checkpoint.display()
        )));
    }
    Ok(())
}

/// A resume is refused unless every setting is the one the run was started with.
fn check_same_settings(saved: &Settings, settings: &Settings, partial: &Path) -> Result<()> {
    let (was, now) = (written_by(saved), written_by(settings));
    if was != now {
        return Err(Error::Usage(format!(
            "cannot resume {}: failup {was} wrote it, and this is failup {now}; resume it \
             with the failup {was} command that made it, or run without --resume to start \
             over",
            partial.display()
        )));
    }
    let differ = differences(saved, settings);
    let only_input = differing(saved, settings)
        .iter()
        .all(|(name, ..)| *name == "input");
    if !differ.is_empty() && only_input {
        return Err(Error::Usage(format!(
            "cannot resume {}: the input is not the file the run was reading (its path, \
             size or modification time differ), so the rows kept may not match it. {}. \
             Give the input it was made from, unchanged, or run without --resume to start \
             over",
            partial.display(),
            differ.join("; ")
        )));
    }
    if !differ.is_empty() {
        return Err(Error::Usage(format!(
            "cannot resume {}: it was made with other settings, and mixing them would give \
             rows that disagree. {}. Rerun with the settings it was made with, or without \
             --resume to start over",
            partial.display(),
            differ.join("; ")
        )));
    }
    Ok(())
}

/// Opens and locks the partial output, checks that its first `saved.bytes` are the ones
/// failup wrote, and cuts it there: what follows the checkpoint is written again.
fn reopen_partial(path: &Path, partial: &Path, saved: &Checkpoint) -> Result<(File, Sha256)> {
    let name = partial.display().to_string();
    let mut file = open_partial(&mut OpenOptions::new(), partial)?;
    lock_partial(&file, path, partial)?;
    let len = file.metadata().map_err(|e| Error::io(&name, e))?.len();
    if len < saved.bytes {
        return Err(Error::Usage(format!(
            "{name} is shorter than its checkpoint says; delete it and run without --resume"
        )));
    }
    let hashed = hash_prefix(partial, saved.bytes).map_err(|e| Error::io(&name, e))?;
    if hex::encode(hashed.clone().finalize()) != saved.output_sha256 {
        return Err(Error::Usage(format!(
            "{name} changed after the run was interrupted: its first {} bytes are not the \
             ones failup wrote (an editor or sync tool may have rewritten it), so the rows \
             kept there cannot be trusted; delete it and run without --resume",
            saved.bytes
        )));
    }
    file.set_len(saved.bytes)
        .and_then(|_| file.seek(SeekFrom::End(0)))
        .map_err(|e| Error::io(&name, e))?;
    Ok((file, hashed))
}

/// The SHA-256 state after the first `bytes` bytes of the file at `path`.
fn hash_prefix(path: &Path, bytes: u64) -> io::Result<Sha256> {
    let mut hashed = Sha256::new();
    io::copy(&mut File::open(path)?.take(bytes), &mut hashed)?;
    Ok(hashed)
}

/// Opens a partial file for writing without following a link at its name: one planted there
/// (in a shared folder, say) would have the rows written into whatever it leads to, and the
/// rename then put the link in place of the output.
fn open_partial(options: &mut OpenOptions, partial: &Path) -> Result<File> {
    let name = partial.display().to_string();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut *options, libc::O_NOFOLLOW);
    let linked = || std::fs::symlink_metadata(partial).is_ok_and(|m| m.file_type().is_symlink());
    match options.write(true).open(partial) {
        Ok(file) => Ok(file),
        Err(_) if linked() => Err(Error::Usage(format!(
            "{name} is a link, not a partial file failup made, and writing through it would \
             replace what it leads to; remove the link (what it leads to is left as it is) and \
             run again"
        ))),
        Err(e) => Err(Error::io(&name, e)),
    }
}

/// Takes the partial file for this run alone. A second run writing the same output would
/// otherwise truncate or extend the first one's file under it, and the first would rename the
/// mix into place. The lock goes with the file when the run ends, however it ends.
fn lock_partial(file: &File, dest: &Path, partial: &Path) -> Result<()> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Usage(format!(
            "another failup run is writing {} (it holds {}); wait for it to end, or give -o \
             another name",
            dest.display(),
            partial.display()
        ))),
        // A file system without locks (some network mounts) should not stop the run.
        Err(std::fs::TryLockError::Error(_)) => Ok(()),
    }
}

impl FileSink {
    /// Refuses to go on when the partial file's name no longer leads to the file this run
    /// writes: removed (or its folder), or replaced by another program or run. Renamed into
    /// place, it would put another file's bytes at the output with exit 0. Nothing at that
    /// name is removed then, since it may be another run's.
    fn refuse_a_lost_partial(&mut self) -> Result<()> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let ours = self.out.get_ref().metadata();
            let named = std::fs::metadata(&self.partial);
            if let (Ok(a), Ok(b)) = (&ours, &named) {
                if a.dev() == b.dev() && a.ino() == b.ino() {
                    return Ok(());
                }
            }
            self.keep = false;
            self.done = true;
            Err(Error::Input {
                file: self.partial.display().to_string(),
                line: None,
                column: None,
                problem: format!(
                    "this run's partial output was removed or replaced while it wrote there \
                     (by another program or run, or with its folder), so its rows are lost and \
                     nothing was put at {}; run the command again, with nothing else writing \
                     there",
                    self.dest.display()
                ),
            })
        }
        #[cfg(not(unix))]
        Ok(())
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
            Sink::Device { out, .. } => out.write(buf),
            Sink::File(f) => {
                let n = f.out.write(buf)?;
                f.written += n as u64;
                f.hashed.update(&buf[..n]);
                Ok(n)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Stdout(w) => w.flush(),
            Sink::Device { out, .. } => out.flush(),
            Sink::File(f) => f.out.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A resume or merge across kinds of CPU says why the engines differ, since no flag did.
    #[test]
    fn runs_on_other_kinds_of_cpu_are_told_why_they_differ() {
        let with = |backend: &str| Settings::from([(BACKEND_SETTING.into(), backend.into())]);
        let (avx512, avx2, amx) = (with("rten-avx512"), with("rten-avx2"), with("amx"));
        let resumed = differences(&avx512, &avx2);
        assert_eq!(resumed.len(), 1);
        assert!(
            resumed[0].starts_with(
                "--backend (as resolved) was rten-avx512, now rten-avx2 (the CPUs differ"
            ),
            "{resumed:?}"
        );
        let merged = part_differences(&avx2, &avx512);
        assert!(merged[0].contains("use CPUs of one kind"), "{merged:?}");
        // Another engine is a choice of flags, which the message's own advice covers.
        assert_eq!(
            differences(&avx512, &amx),
            ["--backend (as resolved) was rten-avx512, now amx"]
        );
    }

    /// A file in a folder under `/dev` (the memory-backed `/dev/shm`) is written as a file, to a
    /// partial renamed into place; it was written in place, so an interruption left half a
    /// file under the final name, and --resume was refused.
    #[cfg(target_os = "linux")]
    #[test]
    fn only_devices_pipes_and_system_links_are_streams() {
        for stream in [
            "-",
            "/dev/null",
            "/dev/stdout",
            "/dev/fd/1",
            "/proc/self/fd/2",
        ] {
            assert!(is_stream(Path::new(stream)), "{stream}");
        }
        for file in [
            "/dev/shm/failup-test-none/out.csv",
            "/dev/out.csv",
            "out.csv",
        ] {
            assert!(!is_stream(Path::new(file)), "{file}");
        }
    }

    /// Values are compared as recorded, not as shown: an empty one is "(none)" in messages,
    /// which a real value may also be.
    #[test]
    fn settings_differ_by_their_values_not_their_display() {
        let empty = settings(&[("kept columns", "")]);
        let named = settings(&[("kept columns", "(none)")]);
        assert_eq!(
            differences(&empty, &named),
            ["kept columns was (none), now (none)"]
        );
        assert!(differences(&empty, &empty.clone()).is_empty());
    }

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn differences_name_each_changed_added_or_dropped_setting() {
        let saved = settings(&[("--precision", "int8"), ("--format", "csv"), ("old", "1")]);
        let now = settings(&[("--precision", "fp32"), ("--format", "csv"), ("new", "2")]);
        assert_eq!(
            differences(&saved, &now),
            [
                "--precision was int8, now fp32",
                "new was (not set), now 2",
                "old was 1, now (not set)",
            ]
        );
        assert!(differences(&now, &now).is_empty());
        // The weights' hash follows the precision: said, so a changed --precision alone does
        // not read as another --model.
        let saved = settings(&[(MODEL_SETTING, "aa")]);
        let now = settings(&[(MODEL_SETTING, "bb")]);
        assert_eq!(
            differences(&saved, &now),
            [
                "--model (SHA-256) was aa, now bb (of the weights file read: model.int8.onnx for \
              int8, model.onnx otherwise)"
            ]
        );
    }
}
