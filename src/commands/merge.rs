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
    let parts = args
        .parts
        .iter()
        .map(|p| Ok((p.clone(), PartialSummary::read(p)?)))
        .collect::<Result<Vec<_>>>()?;
    let merged = PartialSummary::merge(parts)?;
    merged.write("-o", &args.output)?;
    eprintln!(
        "merged the summaries of {} shards into {}; render it with failup report {}",
        merged.shard_count,
        args.output.display(),
        args.output.display()
    );
    Ok(())
}
