//! `failup bench`: stories per second through the whole classify path.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::cli::{BenchArgs, ReportFormat};
use failup::bench::{builtin_corpus, run as run_bench, BenchInput, BenchSettings};
use failup::error::{Error, Result};
use failup::input::{Columns, Source};

/// Stories in the built-in corpus used when no input is given.
const BUILTIN_STORIES: usize = 1000;

pub fn run(args: BenchArgs) -> Result<()> {
    let (input, name) = bench_input(&args)?;
    // Exported for classify, it could make its reader take these zero-shot figures for the
    // head's.
    if std::env::var_os("FAILUP_PROFILE").is_some() {
        eprintln!(
            "note: bench times zero-shot classification and does not use FAILUP_PROFILE; time \
             a few-shot head with `classify` on the same input"
        );
    }
    let options = args.model.engine_options();
    let started = Instant::now();
    let engine = super::open_engine(&options)?;
    let load = started.elapsed();
    let threads = match options.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let settings = BenchSettings {
        input_name: name,
        repeat: args.repeat,
        load,
        threads,
        batch_size: engine.encoder().batch_size(),
        backend: engine.kernel().to_string(),
        precision: engine.precision.name().to_string(),
    };
    let repeat = settings.repeat;
    let stop = Arc::new(AtomicBool::new(false));
    super::resume::install_ctrl_c(Arc::clone(&stop), None, || ());
    let report = match run_bench(&engine, &input, settings, &stop) {
        Err(Error::Interrupted) => {
            eprintln!("interrupted before a timed pass was done: nothing to report");
            return Err(Error::Interrupted);
        }
        report => report?,
    };
    warn_of_flagged_rows(report.rows_flagged, &report.input);
    super::print_out(&match args.format {
        ReportFormat::Text => report.to_text(),
        ReportFormat::Json => {
            serde_json::to_string_pretty(&report).expect("bench report serialises") + "\n"
        }
    })?;
    if stop.load(Ordering::SeqCst) {
        let done = match report.repeat {
            1 => "the 1 timed pass".to_string(),
            n => format!("the {n} timed passes"),
        };
        eprintln!("interrupted: the figures are of {done} done, of {repeat} asked for");
        return Err(Error::Interrupted);
    }
    Ok(())
}

/// What bench times: the file given, or the built-in corpus; with its name for the report.
fn bench_input(args: &BenchArgs) -> Result<(BenchInput, String)> {
    Ok(match &args.input {
        Some(path) => {
            // A warm-up and the timed passes each read the input from its start.
            super::refuse_a_stream(path, "bench reads its input once per pass")?;
            let source = Source::from_arg(path);
            let columns = Columns {
                text: args.columns.text_column.clone(),
                id: args.columns.id_column.clone(),
                ..Columns::default()
            };
            let name = source.name();
            (
                BenchInput::File {
                    source,
                    columns,
                    dialect: args.columns.dialect(),
                },
                name,
            )
        }
        None => (
            BenchInput::Builtin(builtin_corpus(BUILTIN_STORIES)),
            format!("built-in corpus of {BUILTIN_STORIES} generated stories"),
        ),
    })
}

/// Rows of the input not read as the file meant are timed as other stories than it holds.
fn warn_of_flagged_rows(flagged: usize, input: &str) {
    if flagged == 0 {
        return;
    }
    let (n, are) = match flagged {
        1 => ("1 of its rows".to_string(), "is"),
        n => (format!("{n} of its rows"), "are"),
    };
    eprintln!(
        "warning: {input}: {n} {are} not read as the file meant (malformed, invalid UTF-8 or over \
         1 MiB), so this times other stories than it holds; `failup classify` on it names each \
         line"
    );
}
