//! `failup eval`: classify a labelled CSV and score the result: accuracy, macro-F1, per-class
//! metrics, confusion, calibration (ECE and a reliability table) and the most confident
//! mistakes; with `--cv K`, stratified K-fold cross-validation of the few-shot method.

use std::path::Path;
use std::process::ExitCode;

use rayon::prelude::*;

use crate::cli::{EvalArgs, ReportFormat};
use failup::classify::Classifier;
use failup::error::{Error, Result};
use failup::eval::calibration_error;
use failup::eval::{
    cross_validate_indexes, evaluate, first_copies, stratified_folds, EvalReport, Mistake, Scored,
};
use failup::pipeline::Engine;
use failup::profile::{
    embed_labelled, file_sha256, labelled_columns, read_labelled, Labelled, LabelledRow, Profile,
};

/// A profile or examples scored on the very file they were fitted on are scored on what they
/// learned from. Returns the flags that were.
fn warn_if_fitted_on(
    profile: Option<&Profile>,
    examples: Option<&std::path::Path>,
    input: &std::path::Path,
) -> Vec<&'static str> {
    let is_file = std::fs::metadata(input).is_ok_and(|m| m.is_file());
    let Some(input_sha256) = is_file.then(|| file_sha256(input).ok()).flatten() else {
        return Vec::new();
    };
    // A calibration that names its stories is told by them, in its own words (see
    // warn_of_calibration_stories_in_input); a head is told here.
    let learned_from_input = |p: &Profile| match p.calibration_stories.is_empty() {
        true => p.was_fitted_on(&input_sha256),
        false => p.head.is_some() && p.training_sha256 == input_sha256,
    };
    let learned_from: Vec<&str> = [
        profile
            .is_some_and(learned_from_input)
            .then_some("--profile"),
        examples
            .is_some_and(|e| file_sha256(e).is_ok_and(|h| h == input_sha256))
            .then_some("--examples"),
    ]
    .into_iter()
    .flatten()
    .collect();
    for flag in &learned_from {
        eprintln!(
            "warning: {flag} was fitted on {} itself, so these figures score it on the \
             stories it learned from and overstate it; score it on stories it has not seen \
             (or, without {flag}, --cv 5 fits a head on four folds and scores the fifth)",
            input.display()
        );
    }
    learned_from
}

/// The head's examples found among INPUT's stories, whatever file they came in (a part of
/// INPUT, or INPUT saved again), so a score on stories it learned from is not taken for one
/// on new stories.
fn warn_of_examples_in_input(engine: &Engine, embedded: &[Labelled], args: &EvalArgs) {
    let seen = engine.install(|| {
        embedded
            .par_iter()
            .filter(|e| engine.classifier().is_an_example(&e.embedding))
            .count()
    });
    if seen == 0 {
        return;
    }
    let source = match (&args.fewshot.examples, &args.fewshot.profile) {
        (Some(examples), _) => format!("--examples {}", examples.display()),
        (None, Some(profile)) => super::profile_given_as(profile),
        (None, None) => return,
    };
    eprintln!(
        "warning: {seen} of the {} stories in {} {} among the examples the few-shot head of \
         {source} learned from, so these figures overstate it; score it on stories it has not \
         seen (or, without it, --cv 5 fits a head on four folds and scores the fifth)",
        embedded.len(),
        args.input.display(),
        if seen == 1 { "is" } else { "are" }
    );
}

/// The stories a profile's calibration was fitted on, found among INPUT's word for word (a
/// part of the file it was fitted on, or that file edited), so confidences and an `other`
/// rule scored on their own fitting data are not taken for honest ones.
fn warn_of_calibration_stories_in_input(
    profile: Option<&Profile>,
    rows: &[LabelledRow],
    args: &EvalArgs,
) {
    let Some(profile) = profile.filter(|p| !p.calibration_stories.is_empty()) else {
        return;
    };
    let fitted: std::collections::HashSet<&str> = profile
        .calibration_stories
        .iter()
        .map(String::as_str)
        .collect();
    let seen = rows
        .iter()
        .filter(|r| {
            fitted.contains(failup::profile::story_key(&r.text).as_str())
                || fitted.contains(failup::profile::story_key_with_accents(&r.text).as_str())
                || fitted.contains(failup::profile::story_key_as_written(&r.text).as_str())
        })
        .count();
    if seen == 0 {
        return;
    }
    let source = args
        .fewshot
        .profile
        .as_deref()
        .map_or_else(|| "--profile".into(), super::profile_given_as);
    // A head learns `other` from its examples; only a zero-shot calibration fits a rule.
    let fitted_parts = match profile.head {
        Some(_) => "its confidences are",
        None => "its confidences and `other` rule are",
    };
    eprintln!(
        "warning: {seen} of the {} stories in {} {} among the {} the calibration of {source} \
         was fitted on, so {fitted_parts} scored on what they were fitted to and these figures \
         overstate it; score it on stories it has not seen",
        rows.len(),
        args.input.display(),
        if seen == 1 { "is" } else { "are" },
        fitted.len()
    );
}

/// The taxonomy's own prototypes among the stories scored (`categories --prototypes` prints
/// them, so they are easily taken for test stories): each is nearest to itself, and scored
/// right whatever the classifier is worth.
fn warn_of_prototypes_in_input(
    taxonomy: &failup::taxonomy::Taxonomy,
    rows: &[LabelledRow],
    input: &std::path::Path,
) {
    use failup::eval::copy_key;
    let prototypes: std::collections::HashSet<String> = taxonomy
        .scenarios
        .iter()
        .flat_map(|s| s.prototypes.iter().map(|p| copy_key(p)))
        .collect();
    let found: Vec<&LabelledRow> = rows
        .iter()
        .filter(|r| prototypes.contains(&copy_key(&r.text)))
        .collect();
    let Some(first) = found.first() else {
        return;
    };
    eprintln!(
        "warning: {} of the {} stories in {} {} the taxonomy's own prototypes, word for word, \
         case, accents, spacing and punctuation aside (the first: id '{}'), which the \
         classifier mostly reads as their own scenario, so these figures overstate it; score it on \
         stories that are not prototypes",
        found.len(),
        rows.len(),
        input.display(),
        if found.len() == 1 {
            "is one of"
        } else {
            "are among"
        },
        failup::input::printable(&first.id)
    );
}

/// A story is scored by a head fitted on the other folds, which hold at least
/// `n - ceil(n / k)` of its scenario's `n` stories; with fewer than this many to learn from,
/// a scenario's figures say little. (Fewer stories than folds alone is no harm: leave-one-out
/// has that for every scenario, and the pooled figures still score each story once.)
const FEWEST_TO_LEARN_FROM: usize = 3;

/// `first_copy` is [`first_copies`]' of the rows' texts: copies of a story share a fold, so
/// only the first copy counts here.
fn warn_of_thin_folds(k: usize, rows: &[LabelledRow], first_copy: &[usize], labels: &[String]) {
    // Distinct stories and rows of each scenario.
    let mut counts = vec![(0usize, 0usize); labels.len()];
    for (i, &first) in first_copy.iter().enumerate() {
        counts[rows[i].label].0 += usize::from(first == i);
        counts[rows[i].label].1 += 1;
    }
    let thin: Vec<String> = counts
        .iter()
        .zip(labels)
        .map(|(&(n, rows), l)| (n, rows, n - n.div_ceil(k), l))
        .filter(|&(n, _, learn, _)| n > 0 && learn < FEWEST_TO_LEARN_FROM)
        .map(|(n, rows, learn, l)| {
            let stories = if n == 1 { "story" } else { "stories" };
            let copies = match rows > n {
                true => format!(" in {rows} rows"),
                false => String::new(),
            };
            format!("{l} ({n} {stories}{copies}, {learn} to learn from)")
        })
        .collect();
    if !thin.is_empty() {
        eprintln!(
            "warning: --cv {k}: the heads that score these scenarios' stories learn from few of \
             them, {}, so their figures are unsteady; label more of them (or use fewer folds)",
            thin.join(", ")
        );
    }
}

/// Copies of a story share a fold, so there can be no more folds than distinct stories: a
/// fold without one would score nothing.
fn refuse_more_folds_than_stories(k: usize, first_copy: &[usize], input: &Path) -> Result<()> {
    let n = first_copy
        .iter()
        .enumerate()
        .filter(|&(i, &f)| f == i)
        .count();
    if k <= n {
        return Ok(());
    }
    let copies = match first_copy.len() > n {
        true => format!(
            " in {} rows (a copy of a story is scored in its fold)",
            first_copy.len()
        ),
        false => String::new(),
    };
    Err(Error::Usage(match n {
        0 | 1 => format!(
            "--cv needs at least 2 different labelled stories, one to score and one to fit on, \
             and {} has {n}{copies}",
            input.display()
        ),
        n => format!(
            "--cv {k} asks for more folds than the {n} different labelled stories{copies}; give \
             at most --cv {n}"
        ),
    }))
}

/// `--cv` fits its own heads, so a head or calibration given beside it is refused.
fn refuse_a_fit_beside_cv(args: &EvalArgs) -> Result<()> {
    if args.cv.is_some() {
        let given: Vec<String> = [
            args.fewshot
                .examples
                .as_ref()
                .map(|e| format!("--examples {}", e.display())),
            args.fewshot.profile.as_deref().map(super::profile_given_as),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !given.is_empty() {
            return Err(Error::Usage(format!(
                "--cv fits its own few-shot heads from INPUT; leave out {}",
                given.join(" and ")
            )));
        }
    }
    Ok(())
}

pub fn run(args: EvalArgs) -> Result<ExitCode> {
    refuse_a_fit_beside_cv(&args)?;
    let (profile, head) = super::read_few_shot(&args.fewshot, false)?;
    let learned_from = warn_if_fitted_on(
        profile.as_ref(),
        args.fewshot.examples.as_deref(),
        &args.input,
    );
    let mut engine = super::open_engine(&super::engine_options_for(
        &args.model,
        head || args.cv.is_some(),
        profile.as_ref(),
    ))?;
    super::apply_few_shot(&mut engine, &args.fewshot, profile.as_ref())?;
    let columns = labelled_columns(
        &args.label_column,
        args.columns.text_column.clone(),
        args.columns.id_column.clone(),
    );
    if args.input == std::path::Path::new("-") {
        super::prompt_if_stdin_is_a_terminal("the labelled CSV, its header row first");
    }
    let rows = read_labelled(
        &args.input,
        engine.taxonomy(),
        &columns,
        args.columns.dialect(),
    )?;
    let fitted_on_input = !learned_from.is_empty();
    // The examples are INPUT: their reading told its repeats already.
    if !learned_from.contains(&"--examples") {
        super::warn_of_repeats(&args.input, &rows);
    }
    warn_of_prototypes_in_input(engine.taxonomy(), &rows, &args.input);
    if !fitted_on_input {
        warn_of_calibration_stories_in_input(profile.as_ref(), &rows, &args);
    }
    if !args.quiet {
        eprintln!("embedding {} labelled stories…", rows.len());
    }
    let labels = engine.taxonomy().labels();
    let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
    let first_copy = first_copies(&texts);
    if let Some(k) = args.cv {
        refuse_more_folds_than_stories(k as usize, &first_copy, &args.input)?;
        warn_of_thin_folds(k as usize, &rows, &first_copy, &labels);
    }
    let embedded = embed_labelled(&engine, &rows, args.cv.is_some())?;
    if head && args.cv.is_none() && !fitted_on_input {
        warn_of_examples_in_input(&engine, &embedded, &args);
    }
    let verdicts = verdicts(&engine, &embedded, &first_copy, &args)?;
    let scored: Vec<Scored> = verdicts
        .iter()
        .zip(&embedded)
        .zip(&rows)
        .map(|((v, e), r)| Scored {
            id: e.id.clone(),
            text: r.text.clone(),
            gold: e.label,
            predicted: v.category,
            confidence: v.confidence,
        })
        .collect();
    let report = scored_report(&scored, &labels, &args, head);
    print_and_gate(&report, &args)
}

/// The figures of the `scored` stories, with the run's mode and its most confident mistakes.
fn scored_report(scored: &[Scored], labels: &[String], args: &EvalArgs, head: bool) -> EvalReport {
    let pairs: Vec<(usize, usize)> = scored.iter().map(|s| (s.gold, s.predicted)).collect();
    let mut report = evaluate(labels, &pairs);
    let conf: Vec<f32> = scored.iter().map(|s| s.confidence).collect();
    let correct: Vec<bool> = scored.iter().map(|s| s.gold == s.predicted).collect();
    let (ece, bins) = calibration_error(&conf, &correct);
    report.ece = Some(ece);
    report.reliability = bins;
    report.mode = Some(mode(args, head));
    report.errors = mistakes(scored, labels, args.errors);
    report
}

/// Each story's verdict: by the engine as it is, or with `--cv` by a head fitted on the other
/// folds. `first_copy` is [`first_copies`]' of the stories: copies share a fold.
fn verdicts(
    engine: &Engine,
    embedded: &[Labelled],
    first_copy: &[usize],
    args: &EvalArgs,
) -> Result<Vec<failup::classify::Verdict>> {
    let Some(k) = args.cv else {
        return Ok(embedded
            .iter()
            .map(|e| {
                engine.classifier().classify(
                    &e.embedding,
                    e.attended.as_deref(),
                    e.sentences.as_deref(),
                )
            })
            .collect());
    };
    let gold: Vec<usize> = embedded.iter().map(|e| e.label).collect();
    let folds = stratified_folds(&gold, first_copy, k as usize, args.seed);
    let prototype_states = engine.prototype_states()?;
    Ok(engine.install(|| {
        cross_validate(
            engine.classifier(),
            &prototype_states,
            embedded,
            &folds,
            k as usize,
        )
    }))
}

/// How the stories were scored, for the report's header.
fn mode(args: &EvalArgs, head: bool) -> String {
    // `--profile FILE`, or FAILUP_PROFILE's, which the user may have forgotten.
    let shown = |p: &Option<std::path::PathBuf>| {
        p.as_deref()
            .map_or_else(String::new, super::profile_given_as)
    };
    match (args.cv, &args.fewshot) {
        (Some(k), _) => format!(
            "few-shot, stratified {k}-fold cross-validation (seed {})",
            args.seed
        ),
        (None, f) if f.examples.is_some() => "few-shot (--examples)".into(),
        (None, f) if head => format!("few-shot (the head of {})", shown(&f.profile)),
        (None, f) if f.profile.is_some() => {
            format!("zero-shot, calibrated by {}", shown(&f.profile))
        }
        _ => "zero-shot".into(),
    }
}

/// The `count` surest wrong verdicts, surest first.
fn mistakes(scored: &[Scored], labels: &[String], count: usize) -> Vec<Mistake> {
    let mut mistakes: Vec<&Scored> = scored.iter().filter(|s| s.gold != s.predicted).collect();
    mistakes.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    mistakes
        .into_iter()
        .take(count)
        .map(|s| Mistake {
            id: s.id.clone(),
            gold: labels[s.gold].clone(),
            predicted: labels[s.predicted].clone(),
            confidence: s.confidence as f64,
            text: s.text.clone(),
        })
        .collect()
}

/// Prints the report, then applies `--min-macro-f1`: exit code 1 when it fails.
fn print_and_gate(report: &EvalReport, args: &EvalArgs) -> Result<ExitCode> {
    let printed = super::print_out(&match args.format {
        ReportFormat::Text => report.to_text(),
        ReportFormat::Json => {
            serde_json::to_string_pretty(report).expect("report serialises") + "\n"
        }
    });
    // A reader that stopped early (`| head`) does not change what the gate says.
    match printed {
        Err(e) if !e.is_broken_pipe() => return Err(e),
        _ => {}
    }
    if let Some(min) = args.min_macro_f1 {
        if report.macro_f1 < min {
            // Four decimals, or as many as it takes to show the gap ({:.4} can print two equal
            // numbers).
            let digits = (4..=9)
                .find(|&d| format!("{:.d$}", report.macro_f1) != format!("{min:.d$}"))
                .unwrap_or(9);
            eprintln!(
                "gate failed: macro-F1 {:.digits$} is below --min-macro-f1 {min}",
                report.macro_f1
            );
            return Ok(ExitCode::from(1));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Predicts every story with a head fitted on the prototypes and the stories of the other
/// folds, so no story is ever scored by a head that saw it. `stories` are embedded with their
/// hidden states.
pub fn cross_validate(
    base: &Classifier,
    prototype_states: &[Vec<Vec<f32>>],
    stories: &[Labelled],
    folds: &[usize],
    k: usize,
) -> Vec<failup::classify::Verdict> {
    cross_validate_indexes(
        stories.len(),
        folds,
        k,
        |train_idx| {
            let set: Vec<_> = train_idx.iter().map(|&i| stories[i].example()).collect();
            let mut c = base.clone();
            c.set_head(Some(base.train_head(prototype_states, &set)));
            c
        },
        |c, i| {
            let s = &stories[i];
            let head = c.head().expect("a fold's classifier has a head");
            let attended = head.attend(s.states.as_deref().expect("embedded with states"));
            c.classify(&s.embedding, Some(&attended), s.sentences.as_deref())
        },
    )
}
