//! `failup merge --rows`: the outputs of a sharded run, back in input order.

use crate::cli::MergeArgs;
use failup::error::Result;

pub fn run(args: MergeArgs) -> Result<()> {
    let merged = failup::merge::merge_rows(&args.parts, &args.output)?;
    eprintln!(
        "merged {} rows from {} parts into {}",
        merged.rows,
        merged.parts,
        args.output.display()
    );
    Ok(())
}
