//! `failup merge`: the outputs of a sharded run, back together.

use crate::cli::MergeArgs;
use failup::error::Result;
use failup::report::partial::PartialSummary;

pub fn run(args: MergeArgs) -> Result<()> {
    if args.rows {
        let merged = failup::merge::merge_rows(&args.parts, &args.output)?;
        eprintln!(
            "merged {} rows from {} parts into {}",
            merged.rows,
            merged.parts,
            args.output.display()
        );
        return Ok(());
    }
    let parts = args
        .parts
        .iter()
        .map(|p| Ok((p.clone(), PartialSummary::read(p)?)))
        .collect::<Result<Vec<_>>>()?;
    let merged = PartialSummary::merge(parts)?;
    merged.write(&args.output)?;
    eprintln!(
        "merged the summaries of {} shards into {}; render it with failup report {}",
        merged.shard_count,
        args.output.display(),
        args.output.display()
    );
    Ok(())
}
