//! One file per subcommand, gluing the library's modules together.

pub mod advise;
pub mod bench;
pub mod calibrate;
pub mod categories;
pub mod classify;
pub mod completions;
pub mod embed;
pub mod eval;
pub mod merge;
pub mod models;
pub mod report;
pub mod train;

use std::process::ExitCode;

use crate::cli::{Cli, Command, FewShotArgs, ModelArgs};
use failup::error::Result;
use failup::pipeline::Engine;

/// The `--shard` a command was given, read with the process's environment for `auto`.
fn shard(spec: Option<&str>) -> Result<Option<failup::shard::Shard>> {
    let Some(spec) = spec else {
        return Ok(None);
    };
    failup::shard::Shard::parse(spec, |k| std::env::var(k).ok()).map(Some)
}

/// How a run names its input in settings: the file's full path, size and modification time
/// (so an edited file is another input), or `<stdin>`.
fn input_identity(source: &failup::input::Source) -> Result<String> {
    use failup::input::Source;
    let Source::File(p) = source else {
        return Ok("<stdin>".into());
    };
    let meta = std::fs::metadata(p).map_err(|e| failup::error::Error::io(source.name(), e))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let path = p.canonicalize().unwrap_or_else(|_| p.clone());
    Ok(format!(
        "{} ({} bytes, modified {mtime})",
        path.display(),
        meta.len()
    ))
}

/// Leaves the record `failup merge --rows` checks beside a complete sharded part, or says why
/// a part on standard output gets none.
fn record_shard(
    output: &std::path::Path,
    shard: failup::shard::Shard,
    input_rows: u64,
    settings: failup::sink::Settings,
) -> Result<()> {
    use failup::merge::ShardRecord;
    if output == std::path::Path::new("-") {
        eprintln!(
            "note: a shard written to standard output has no shard record, so failup merge \
             --rows will refuse it; write shards with -o FILE"
        );
        return Ok(());
    }
    ShardRecord::of_part(output, (shard.index, shard.count), input_rows, settings)?
        .write_beside(output)
}

/// Loads the engine and applies `--examples` or `--profile`, as every classifying command does.
fn load_engine(model: &ModelArgs, fewshot: &FewShotArgs) -> Result<Engine> {
    let mut engine = Engine::load(&model.engine_options())?;
    failup::profile::apply_args(
        &mut engine,
        fewshot.examples.as_deref(),
        fewshot.profile.as_deref(),
    )?;
    Ok(engine)
}

/// Runs a parsed command line; `Ok` carries the exit code (1 when a requested gate failed).
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Classify(a) => classify::run(a).map(|_| ExitCode::SUCCESS),
        Command::Advise(a) => advise::run(a).map(|_| ExitCode::SUCCESS),
        Command::Categories(a) => categories::run(a).map(|_| ExitCode::SUCCESS),
        Command::Embed(a) => embed::run(a).map(|_| ExitCode::SUCCESS),
        Command::Bench(a) => bench::run(a).map(|_| ExitCode::SUCCESS),
        Command::Eval(a) => eval::run(a),
        Command::Report(a) => report::run(a).map(|_| ExitCode::SUCCESS),
        Command::Train(a) => train::run(a).map(|_| ExitCode::SUCCESS),
        Command::Calibrate(a) => calibrate::run(a).map(|_| ExitCode::SUCCESS),
        Command::Merge(a) => merge::run(a).map(|_| ExitCode::SUCCESS),
        Command::Models(c) => models::run(c).map(|_| ExitCode::SUCCESS),
        Command::Completions(a) => completions::run(a).map(|_| ExitCode::SUCCESS),
        Command::Man => completions::run_man().map(|_| ExitCode::SUCCESS),
    }
}
