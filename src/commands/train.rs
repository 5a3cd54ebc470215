//! `failup train`: fit a few-shot profile on labelled stories, once.

use crate::cli::TrainArgs;
use failup::error::Result;
use failup::profile::{embed_labelled, labelled_columns, read_labelled, Profile};

pub fn run(args: TrainArgs) -> Result<()> {
    // Told before the model loads, not after the fitting.
    super::refuse_a_stream(&args.input, &format!("train {}", super::READ_TWICE))?;
    let input = failup::input::Source::from_arg(&args.input);
    failup::sink::check_output("-o", &args.output, Some(&input))?;
    let reads = [("--taxonomy", args.model.taxonomy.as_ref())];
    super::check_not_read(&[("-o", &args.output)], &reads, args.model.model.as_deref())?;
    super::refuse_a_table_name(&args.output)?;
    super::refuse_to_replace_other_than_a_profile(&args.output)?;
    let options = super::engine_options(&args.model, true);
    super::warn_of_a_head_fitted_inexact(options.precision);
    let engine = super::open_engine(&options)?;
    let before = failup::profile::file_sha256(&args.input)?;
    let c = &args.columns;
    let columns = labelled_columns(
        &args.label_column,
        c.text_column.clone(),
        c.id_column.clone(),
    );
    let rows = read_labelled(&args.input, engine.taxonomy(), &columns, c.dialect())?;
    super::warn_of_repeats(&args.input, &rows);
    let examples = embed_labelled(&engine, &rows, true)?;
    super::warn_of_missing_scenarios(engine.taxonomy(), &examples);
    let mut profile = Profile::new(&engine, &args.input, examples.len())?;
    super::refuse_a_changed_file(&args.input, &before, &profile.training_sha256)?;
    profile.fit_examples(&engine, &examples)?;
    profile.save(&args.output)?;
    if args.quiet {
        return Ok(());
    }
    eprintln!(
        "wrote {}: a few-shot head fitted on {} example{} and {} prototypes",
        match args.output.to_str() {
            Some("-") => "the profile to standard output".into(),
            _ => args.output.display().to_string(),
        },
        examples.len(),
        if examples.len() == 1 { "" } else { "s" },
        engine
            .taxonomy()
            .scenarios
            .iter()
            .map(|s| s.prototypes.len())
            .sum::<usize>()
    );
    Ok(())
}
