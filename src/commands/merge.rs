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
        let merged = failup::merge::merge_rows(&args.parts, &args.output)?;
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
    refuse_to_replace_other_than_a_summary(&args.output)?;
    let parts = args
        .parts
        .iter()
        .map(|p| Ok((p.clone(), PartialSummary::read(p)?)))
        .collect::<Result<Vec<_>>>()?;
    let merged = PartialSummary::merge(parts)?;
    merged.write("-o", &args.output)?;
    eprintln!(
        "merged the summaries of {} shard{} into {}; render it with failup report {}",
        merged.shard_count,
        if merged.shard_count == 1 { "" } else { "s" },
        args.output.display(),
        args.output.display()
    );
    Ok(())
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

/// A summary merge writes one line of JSON, so a file of anything else at `-o` (the input the
/// shards read, their rows) would be lost to a slip of the name; an earlier summary may be
/// replaced. Only a regular file is looked at: opening a FIFO to read it would wait for a
/// writer that never comes, and standard output or a device is written, not replaced.
fn refuse_to_replace_other_than_a_summary(output: &std::path::Path) -> Result<()> {
    use failup::report::partial::ReportInput;
    let regular = std::fs::metadata(output).is_ok_and(|m| m.is_file() && m.len() > 0);
    if output == std::path::Path::new("-") || failup::sink::is_stream(output) || !regular {
        return Ok(());
    }
    let source = failup::input::Source::File(output.to_path_buf());
    let summary = failup::report::reader::open_source(&source)
        .and_then(|bytes| ReportInput::sniff(bytes, &source.name()));
    if let Ok(ReportInput::Summary(_)) = summary {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "failup merge: {} exists and is not a failup summary; the merge would replace it. Name \
         a new file for the merged summary (or remove that one first)",
        output.display()
    )))
}
