//! What `classify` and `embed` share to be interrupted and resumed: the output's partial
//! file, the input's identity, Ctrl-C, and the check that a resumed run skips the rows it
//! kept.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use failup::error::{Error, Result};
use failup::input::{Source, StoryReader};
use failup::progress::Progress;
use failup::sink::{Resumed, Settings, Sink};

/// The output to write to: the partial file of an interrupted run with `--resume`, else a
/// fresh one.
pub fn open_sink(
    output: &Path,
    resume: bool,
    source: &Source,
    settings: &Settings,
) -> Result<Resumed> {
    if resume {
        return Sink::resume(output, Some(source), settings);
    }
    // Sink::open says so when it replaces an interrupted run's partial output.
    let sink = Sink::open("-o", output, Some(source))?;
    Ok(Resumed {
        sink,
        rows: 0,
        input_sha256: String::new(),
    })
}

/// Checks that `reader` skipped all `done` rows a resumed run keeps, and that they are the
/// rows the partial output was made from.
pub fn check_skipped(
    reader: &StoryReader,
    done: u64,
    skipped: u64,
    resumed_digest: &str,
) -> Result<()> {
    if skipped < done {
        return Err(Error::Usage(format!(
            "the partial output has {done} rows but {} has only {skipped}; rerun without --resume",
            reader.name()
        )));
    }
    if reader.digest() != resumed_digest {
        return Err(Error::Usage(format!(
            "cannot resume: the first {done} rows of {} are not the ones the partial output \
             was made from (their contents differ); rerun without --resume to start over",
            reader.name()
        )));
    }
    Ok(())
}

/// What an interrupted run says: what it kept and how to go on.
pub fn interruption(partial: Option<&Path>, written: u64) -> String {
    match partial {
        Some(_) if written == 0 => "interrupted before the first chunk was complete: nothing \
                                    was kept; run the same command again"
            .into(),
        Some(p) => format!(
            "interrupted: {written} complete rows kept in {}; run the same command with \
             --resume to continue",
            p.display()
        ),
        None => format!(
            "interrupted after {written} rows; to be able to resume, write to a file with -o FILE"
        ),
    }
}

/// What a run stopped at once by a second signal says on its way out: it cannot count the
/// rows (the loop holds them), but what its last checkpoint kept is there to resume. Before
/// the first checkpoint nothing is, and the partial file, which no resume would take, goes.
pub fn stopped_at_once(sink: &Sink) -> impl Fn() + Send + 'static {
    let partial = sink.partial_path().map(Path::to_path_buf);
    let checkpoint = sink.checkpoint_path().map(Path::to_path_buf);
    move || match &partial {
        Some(p) if !checkpoint.as_ref().is_some_and(|c| c.exists()) => {
            let _ = std::fs::remove_file(p);
            eprintln!(
                "stopped at once, before the first chunk was complete: nothing was kept; run \
                 the same command again"
            );
        }
        Some(p) => eprintln!(
            "stopped at once: the rows complete at the last checkpoint (each chunk's end) are \
             kept in {}; run the same command with --resume to continue",
            p.display()
        ),
        None => eprintln!("stopped at once; to be able to resume, write to a file with -o FILE"),
    }
}

/// Cleans up after a run that failed, keeping the rows complete at the last checkpoint
/// wherever they can still be of use, and saying what to do with them:
/// - the output could not be written (a full disk): resume once it can be;
/// - the input is a stream: a stream is resumed by its rows' contents, so the same rows piped
///   again, with the bad one past them fixed, continue;
/// - the run was itself resumed: the partial it continued is earlier work, not this run's to
///   throw away, even where fixing the input file means starting over.
///
/// A fresh run from a file that failed for any other reason removes its partial output: the
/// file or a setting must change before a rerun, and either starts over.
pub fn after_failure(sink: Sink, error: &Error, resumed: bool, source: &Source) {
    let output_failed = matches!(error, Error::Io { path, .. } if sink.writes_to(path));
    let partial = match sink.partial_path() {
        Some(p) if sink.keeps_partial() => p.to_path_buf(),
        _ => return sink.discard(),
    };
    let input = source.name();
    // Bad rows, or damaged compressed data: the file must change. Any other read error (a
    // network mount's) may pass with the file unchanged, and then --resume works.
    let input_at_fault = match error {
        Error::Input { file, .. } => *file == input,
        Error::Io { path, source } => {
            use std::io::ErrorKind::{InvalidData, UnexpectedEof};
            *path == input && matches!(source.kind(), InvalidData | UnexpectedEof)
        }
        _ => false,
    };
    let kept = format!(
        "note: the rows complete at the last checkpoint are kept in {}",
        partial.display()
    );
    if output_failed {
        eprintln!(
            "{kept}; once the output can be written, run the same command with --resume to \
             continue"
        );
    } else if input_is_stream(source) || (resumed && !input_at_fault) {
        eprintln!(
            "{kept}; once the cause is fixed, the same command with --resume continues after \
             them, provided the rows they were made from and the settings are unchanged"
        );
    } else if resumed {
        eprintln!(
            "{kept}, from the run this one resumed; a fixed {input} is another input, which \
             cannot be resumed, so run without --resume then to start over"
        );
    } else {
        sink.discard();
    }
}

/// Ctrl-C, or a SIGTERM (a batch scheduler's stop) or SIGHUP (a closed terminal), asks the
/// run to stop after the current batch, keeping the rows of the chunks checkpointed by then;
/// a second one ends it at once, after `at_once`. The first says so at once, above the
/// progress bar: the current batch, or a stalled input, may take a while. A SIGTERM or SIGHUP
/// that the parent set to be ignored (`nohup`) stays ignored, bar one that arrives in the
/// microseconds between the handler's install and the restore. SIGINT is always caught,
/// though a shell ignores it in the jobs a script starts in the background: scripts and test
/// harnesses stop such runs with `kill -INT`, and would wait for ever on one that ignored it.
pub fn install_ctrl_c(
    stop: Arc<AtomicBool>,
    bar: Option<indicatif::ProgressBar>,
    at_once: impl Fn() + Send + 'static,
) {
    #[cfg(unix)]
    let ignored: Vec<libc::c_int> = [libc::SIGTERM, libc::SIGHUP]
        .into_iter()
        .filter(|&s| signal_ignored(s))
        .collect();
    let _ = ctrlc::set_handler(move || {
        if stop.swap(true, Ordering::SeqCst) {
            at_once();
            std::process::exit(130);
        }
        // The handler also takes SIGTERM (`kill`), which has no key to press.
        let say = || {
            eprintln!(
                "stopping after the current batch; press Ctrl-C (or send the signal) again to \
                 stop at once"
            )
        };
        match &bar {
            Some(bar) => bar.suspend(say),
            None => say(),
        }
    });
    #[cfg(unix)]
    for signal in ignored {
        // SAFETY: SIG_IGN installs no handler code and touches none of our memory.
        unsafe {
            libc::signal(signal, libc::SIG_IGN);
        }
    }
}

/// Runs `next_chunk` until it says the input has ended (None) or fails, with Ctrl-C caught
/// from the start (`at_once` runs on a second one) and a progress bar over the input's bytes
/// (`counter`, as `StoryReader::progress_counter` gives it), its rate timed from `start`.
/// `next_chunk` returns the rows of the chunk it wrote and checkpointed, and the rows written
/// so far, where a test may pause the run.
pub fn stream_chunks(
    quiet: bool,
    (bytes, total): (Arc<AtomicU64>, Option<u64>),
    at_once: impl Fn() + Send + 'static,
    start: Instant,
    mut next_chunk: impl FnMut(&AtomicBool) -> Result<Option<(u64, u64)>>,
) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut pause = TestPause::from_env();
    let mut progress = Progress::new(quiet, bytes, total);
    install_ctrl_c(stop.clone(), progress.bar(), at_once);
    let outcome = loop {
        match next_chunk(&stop) {
            Ok(Some((rows, written))) => {
                pause.after_checkpoint(written, &stop);
                progress.add_rows(rows, start.elapsed().as_secs_f64());
            }
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    progress.finish();
    outcome
}

/// Whether `signal` is set to be ignored, as `nohup` sets SIGHUP for the program it runs.
#[cfg(unix)]
fn signal_ignored(signal: libc::c_int) -> bool {
    // SAFETY: `sigaction` with a null new action only reads the current one, into `old`,
    // which lives on this stack frame; all-zero bytes are a valid `sigaction` struct.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_IGN
    }
}

/// `pairs` and the settings of how the input was read, as one map. The header row is one: it
/// decides which columns are the id, the text, the kept and the grouping ones, so rows read
/// under another header are other rows even where the records below it are the same. The id
/// column and delimiter are recorded as resolved, so that a flag spelling out what the
/// defaults chose (`--id-column id`, `--delimiter ,`) is the same run.
pub fn with_input_settings(
    pairs: impl IntoIterator<Item = (&'static str, String)>,
    reader: &StoryReader,
) -> Settings {
    let delimiter = match reader.delimiter() {
        b'\t' => "tab".to_string(),
        d => (d as char).to_string(),
    };
    let input = [
        (
            "input header",
            serde_json::to_string(reader.headers()).expect("a list of strings serialises"),
        ),
        (
            "--id-column (as resolved)",
            reader.id_column().unwrap_or("(row numbers)").to_string(),
        ),
        ("--delimiter (as resolved)", delimiter),
    ];
    pairs
        .into_iter()
        .chain(input)
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

/// True for standard input and any other input that is not a regular file (a pipe given by
/// path, as `<(…)` gives one): what [`input_identity`] names by its rows alone.
fn input_is_stream(source: &Source) -> bool {
    match source {
        Source::File(p) => std::fs::metadata(p).is_ok_and(|m| !m.is_file()),
        _ => true,
    }
}

/// How a run names its input in settings: the file's full path, size and modification time
/// (so an edited file is another input), or, for standard input and any other stream (a
/// pipe given by path, as `<(…)` gives one), one name for them all: a stream has a new
/// modification time at every run, and its rows are checked by their contents alone.
pub fn input_identity(source: &Source) -> Result<String> {
    // The name earlier runs recorded for standard input, kept so their partials resume.
    const STREAM: &str = "<stdin>";
    let Source::File(p) = source else {
        return Ok(STREAM.into());
    };
    let meta = std::fs::metadata(p).map_err(|e| Error::io(source.name(), e))?;
    if !meta.is_file() {
        return Ok(STREAM.into());
    }
    // To the nanosecond, as the file system keeps it: a rewrite within the same second is
    // another input too.
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or("at an unknown time".into(), |d| {
            let second = failup::report::rfc3339_utc(d.as_secs() as i64);
            let second = second.trim_end_matches('Z');
            format!("{second}.{:09}Z", d.subsec_nanos())
        });
    let path = p.canonicalize().unwrap_or_else(|_| p.clone());
    Ok(format!(
        "{} ({} bytes, modified {mtime})",
        path.display(),
        meta.len()
    ))
}

/// A hook for failup's own tests (env `FAILUP_TEST_PAUSE_AFTER_ROWS=N`): once N rows are
/// checkpointed, the run waits until it is interrupted, so a test can send Ctrl-C or a kill
/// at a known row instead of racing the run.
pub struct TestPause(Option<u64>);

impl TestPause {
    pub fn from_env() -> TestPause {
        TestPause(
            std::env::var("FAILUP_TEST_PAUSE_AFTER_ROWS")
                .ok()
                .and_then(|v| v.parse().ok()),
        )
    }

    pub fn after_checkpoint(&mut self, written: u64, stop: &AtomicBool) {
        if self.0.is_some_and(|n| written >= n) {
            self.0 = None;
            // Set by a slip outside failup's tests, it would look like a hang.
            eprintln!(
                "note: paused after {written} rows by FAILUP_TEST_PAUSE_AFTER_ROWS, a hook for \
                 failup's own tests; Ctrl-C stops the run as it would here"
            );
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
    }
}
