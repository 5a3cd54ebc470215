//! `failup merge`: the outputs of a sharded run, back together.

use crate::cli::MergeArgs;
use failup::error::{Error, Result};
use failup::report::partial::PartialSummary;

pub fn run(args: MergeArgs) -> Result<()> {
    // Told before the parts are read and checked.
    failup::sink::check_output("-o", &args.output, None)?;
    // Standard output appended to a part (`>> part0.csv`) would change it under the merge (a
    // named part is told below, with its shard record).
    let parts = args
        .parts
        .iter()
        .filter(|_| args.output == std::path::Path::new("-"));
    for part in parts {
        let part = failup::input::Source::File(part.clone());
        failup::sink::check_output("-o", &args.output, Some(&part))?;
    }
    if args.rows {
        refuse_summaries_among_rows(&args.parts)?;
        let merged = merge_rows_until_stopped(&args)?;
        if args.quiet {
            return Ok(());
        }
        eprintln!(
            "merged {} rows from {} parts into {}",
            merged.rows,
            merged.parts,
            args.output.display()
        );
        return Ok(());
    }
    if failup::merge::is_a_part(&args.parts, &args.output) {
        return Err(Error::Usage(format!(
            "failup merge: {} is one of the parts; write the merge to another file",
            args.output.display()
        )));
    }
    if super::extension_of(&args.output).is_some_and(|e| super::TABLES.contains(&e.as_str())) {
        return Err(Error::Usage(format!(
            "-o {} names a table, but without --rows merge puts partial summaries \
             (--summary-out) together into one summary, a JSON object: to merge a sharded run's \
             rows add --rows, or name the output .json for summaries",
            args.output.display()
        )));
    }
    super::refuse_to_replace_other_than_a_summary("-o", &args.output, "the merge")?;
    let parts = args
        .parts
        .iter()
        .map(|p| Ok((p.clone(), PartialSummary::read(p)?)))
        .collect::<Result<Vec<_>>>()?;
    let merged = PartialSummary::merge(parts)?;
    merged.write("-o", &args.output)?;
    if args.quiet {
        return Ok(());
    }
    eprintln!(
        "merged the summaries of {} shard{} into {}; render it with failup report {}",
        merged.shard_count,
        if merged.shard_count == 1 { "" } else { "s" },
        args.output.display(),
        args.output.display()
    );
    Ok(())
}

/// `merge --rows`, stopped by Ctrl-C, SIGTERM or SIGHUP at the next row: a merge has no
/// `--resume`, so what it wrote is removed, where the signal's default would leave a hidden
/// partial file as large as the merge had got.
fn merge_rows_until_stopped(args: &MergeArgs) -> Result<failup::merge::Merged> {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let stop = Arc::new(AtomicBool::new(false));
    // A second signal ends the merge at once (a part read from a stalled pipe), and takes
    // the rows written so far with it.
    let partial: Arc<Mutex<Option<PathBuf>>> = Arc::default();
    let written = partial.clone();
    super::resume::install_ctrl_c(stop.clone(), None, move || {
        if let Ok(slot) = written.lock() {
            if let Some(path) = slot.as_ref() {
                let _ = std::fs::remove_file(path);
            }
            // Held until the exit that follows: the merge cannot put the file in place, nor
            // let it go to another run, in between.
            std::mem::forget(slot);
        }
    });
    let mut pause = super::resume::TestPause::from_env();
    // Filled while the partial file is this merge's own, and emptied before it is not.
    let owned = |path: Option<&Path>| {
        if let Ok(mut slot) = partial.lock() {
            *slot = path.map(Path::to_path_buf);
        }
    };
    let merged = failup::merge::merge_rows(&args.parts, &args.output, owned, |rows| {
        pause.after_checkpoint(rows, &stop);
        match stop.load(Ordering::SeqCst) {
            true => Err(Error::Interrupted),
            false => Ok(()),
        }
    });
    owned(None);
    if let Err(Error::Interrupted) = merged {
        match args.output == Path::new("-") {
            true => eprintln!("merge stopped; the rows on standard output are incomplete"),
            false => eprintln!(
                "merge stopped; nothing was written to {} (run the merge again)",
                args.output.display()
            ),
        }
    }
    merged
}

/// A partial summary given to `merge --rows` was told as parts "written with different columns
/// or formats"; it is named for what it is. Only regular files are looked at: a pipe's bytes
/// would be used up, and whatever else is wrong with a part is left to the merge to tell.
fn refuse_summaries_among_rows(parts: &[std::path::PathBuf]) -> Result<()> {
    use failup::report::partial::ReportInput;
    for part in parts
        .iter()
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file()))
    {
        let source = failup::input::Source::File(part.clone());
        // Anything else wrong with a part is merge's own to tell, with its checks.
        let Ok(bytes) = failup::report::reader::open_source(&source) else {
            continue;
        };
        if let Ok(ReportInput::Summary(_)) = ReportInput::sniff(bytes, &source.name()) {
            return Err(Error::Usage(format!(
                "{} is a partial summary (--summary-out), not rows; merge summaries without \
                 --rows: failup merge SUMMARY... -o merged.json",
                part.display()
            )));
        }
    }
    Ok(())
}
