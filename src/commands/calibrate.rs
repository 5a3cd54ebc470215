//! `failup calibrate`: fit the confidence temperature (log-loss), the `other` rule (macro-F1)
//! and a Platt recalibration of the confidence (log-loss of right/wrong) on labelled stories.

use sha2::{Digest, Sha256};

use crate::cli::CalibrateArgs;
use failup::calibration::{fit_other_rule, fit_platt, fit_temperature};
use failup::classify::Classifier;
use failup::error::{Error, Result};
use failup::eval::calibration_error;
use failup::fewshot::Head;
use failup::pipeline::Engine;
use failup::profile::{
    embed_labelled, labelled_columns, read_labelled, Calibration, Labelled, LabelledRow, Profile,
};
use failup::taxonomy::ClassifierSettings;

/// Confidence and correctness of each story's verdict.
fn verdicts(c: &Classifier, data: &[Labelled]) -> (Vec<f32>, Vec<bool>) {
    data.iter()
        .map(|e| {
            let v = c.classify(&e.embedding, e.attended.as_deref(), e.sentences.as_deref());
            (v.confidence, v.category == e.label)
        })
        .unzip()
}

/// SHA-256 of the one training file, or of the list of the files' own SHA-256s.
fn training_sha256(hashes: &[String]) -> String {
    match hashes {
        [one] => one.clone(),
        _ => hex::encode(Sha256::digest(hashes.join("\n"))),
    }
}

/// The same stories given twice (a glob that matches a file also named) would weigh double.
/// Returns each file's SHA-256, taken before it is read.
fn refuse_a_file_twice(inputs: &[std::path::PathBuf]) -> Result<Vec<String>> {
    let mut seen: Vec<(String, &std::path::PathBuf)> = Vec::new();
    for input in inputs {
        let hash = failup::profile::file_sha256(input)?;
        if let Some((_, first)) = seen.iter().find(|(h, _)| *h == hash) {
            return Err(Error::Usage(format!(
                "{} and {} hold the same bytes, so their stories would count twice; give each \
                 file once",
                first.display(),
                input.display()
            )));
        }
        seen.push((hash, input));
    }
    Ok(seen.into_iter().map(|(hash, _)| hash).collect())
}

pub fn run(args: CalibrateArgs) -> Result<()> {
    let before = check_arguments(&args)?;
    let (engine, mut profile) = start_profile(&args)?;
    let rows = read_stories(&args, &engine)?;
    let data = embed_labelled(&engine, &rows, false)?;
    let fitted = fit(&engine, &data)?;
    record(&mut profile, &engine, &fitted, &args, &before, &rows)?;
    // Told first: a standard output that fails (a full disk) then leaves no profile behind
    // a failed run. One closed by its reader (`| head`) is no failure, and the profile is
    // still written.
    match tell(&args, &profile, &fitted, data.len()) {
        Err(e) if !e.is_broken_pipe() => return Err(e),
        _ => {}
    }
    profile.save(&args.output)?;
    if args.output != std::path::Path::new("-") && !args.quiet {
        eprintln!("wrote {}", args.output.display());
    }
    Ok(())
}

/// The checks told before the model loads, not after the fitting. Returns each INPUT's
/// SHA-256, taken before it is read.
fn check_arguments(args: &CalibrateArgs) -> Result<Vec<String>> {
    let why = format!("calibrate {}", super::READ_TWICE);
    for input in args.inputs.iter().chain(&args.fewshot.examples) {
        super::refuse_a_stream(input, &why)?;
        let input = failup::input::Source::from_arg(input);
        failup::sink::check_output("-o", &args.output, Some(&input))?;
    }
    // `--profile P -o P` recalibrates a profile in place (it is read whole before the new
    // one is renamed over it), so only the taxonomy is guarded.
    let reads = [("--taxonomy", args.model.taxonomy.as_ref())];
    super::check_not_read(&[("-o", &args.output)], &reads, args.model.model.as_deref())?;
    let before = refuse_a_file_twice(&args.inputs)?;
    super::refuse_a_table_name(&args.output)?;
    super::refuse_to_replace_other_than_a_profile(&args.output)?;
    Ok(before)
}

/// The engine, and the profile to calibrate: the one given with `--profile`, with a head
/// fitted on `--examples` when they are given, or a new one.
fn start_profile(args: &CalibrateArgs) -> Result<(Engine, Profile)> {
    let (loaded, head) = super::read_few_shot(&args.fewshot, true)?;
    let options = super::engine_options_for(&args.model, head, loaded.as_ref());
    if args.fewshot.examples.is_some() {
        super::warn_of_a_head_fitted_inexact(options.precision);
    }
    let mut engine = super::open_engine(&options)?;
    let mut profile = match (loaded, &args.fewshot.profile) {
        (Some(loaded), Some(p)) => {
            // Set once in a shell profile, the variable is easily forgotten; the fit differs.
            if !crate::cli::typed("--profile") && loaded.head.is_some() {
                eprintln!(
                    "warning: calibrating the few-shot head of {}; unset it to calibrate the \
                     zero-shot scores",
                    super::profile_given_as(p)
                );
            }
            if args.fewshot.examples.is_none() {
                refuse_another_reading_of_a_head(&loaded, &engine, p)?;
            }
            loaded.apply(&mut engine, &p.display().to_string())?;
            loaded
        }
        _ => Profile::new(&engine, &args.inputs[0], 0)?,
    };
    if let Some(ex) = &args.fewshot.examples {
        let examples_before = failup::profile::file_sha256(ex)?;
        let examples = super::read_examples(&engine, ex)?;
        profile.fit_examples(&engine, &examples)?;
        profile.training_sha256 = failup::profile::file_sha256(ex)?;
        super::refuse_a_changed_file(ex, &examples_before, &profile.training_sha256)?;
        profile.training_rows = examples.len();
        profile.apply(&mut engine, "the fitted profile")?;
    }
    Ok((engine, profile))
}

/// The labelled stories of every INPUT, with their repeats and gaps told.
fn read_stories(args: &CalibrateArgs, engine: &Engine) -> Result<Vec<LabelledRow>> {
    let labels = engine.taxonomy().labels();
    let c = &args.columns;
    let columns = labelled_columns(
        &args.label_column,
        c.text_column.clone(),
        c.id_column.clone(),
    );
    let mut rows = Vec::new();
    for input in &args.inputs {
        let part = read_labelled(input, engine.taxonomy(), &columns, c.dialect())?;
        super::warn_of_repeats(input, &part);
        rows.extend(part);
    }
    warn_of_stories_in_several_files(&rows);
    if rows.iter().all(|r| r.label == rows[0].label) {
        return Err(Error::Usage(format!(
            "calibrate needs stories of at least two scenarios to tell right verdicts from \
             wrong ones, and {} '{}'; add labelled stories of the others",
            match rows.len() {
                1 => "the one story is".to_string(),
                n => format!("these {n} are all"),
            },
            labels[rows[0].label]
        )));
    }
    warn_of_scenarios_left_out(&labels, &rows);
    Ok(rows)
}

/// What a calibration fits, and the expected calibration error before and after it.
struct Fitted {
    /// The few-shot head, its temperature fitted, when the profile has one.
    head: Option<Head>,
    /// The fitted temperature: the head's, or the zero-shot scores'.
    temperature: f32,
    /// The classifier's settings as fitted (the `other` rule and Platt's slope and bias).
    settings: ClassifierSettings,
    ece: (f64, f64),
}

/// Fits, on `data`, the temperature by log-loss of the gold label, then (zero-shot only) the
/// `other` rule by macro-F1, then a Platt scaling of the winner's probability.
fn fit(engine: &Engine, data: &[Labelled]) -> Result<Fitted> {
    let labels = engine.taxonomy().labels();
    let learned = data
        .iter()
        .filter(|e| engine.classifier().is_an_example(&e.embedding))
        .count();
    check_not_learned(data.len(), learned)?;
    let gold: Vec<usize> = data.iter().map(|e| e.label).collect();
    let other = engine.taxonomy().other_index();
    let mut c = engine.classifier().clone();
    let (conf, correct) = verdicts(&c, data);
    let ece_before = calibration_error(&conf, &correct).0;

    // 1. Temperature by log-loss of the gold label.
    let raw: Vec<Vec<f32>> = data
        .iter()
        .map(|e| c.raw_scores(&e.embedding, e.attended.as_deref(), e.sentences.as_deref()))
        .collect();
    let t = fit_temperature(&raw, &gold);
    if !(0.0011..=9.9).contains(&t) {
        return Err(unpinned_temperature(data.len(), learned, t));
    }
    let mut head = c.head().cloned();
    let s = &mut c.taxonomy_mut().classifier;
    s.confidence_slope = 1.0;
    s.confidence_bias = 0.0;
    match head.as_mut() {
        Some(h) => h.temperature = t,
        None => s.temperature = t,
    }
    // 2. The `other` rule by macro-F1 (zero-shot only: a head learns `other` from its data).
    if head.is_none() {
        let settings = c.taxonomy().classifier;
        let relevance: Vec<f32> = data.iter().map(|e| c.relevance(&e.embedding)).collect();
        let (min_score, min_margin) =
            fit_other_rule(&raw, &relevance, &gold, other, &settings, &labels);
        let s = &mut c.taxonomy_mut().classifier;
        s.min_score = min_score;
        s.min_margin = min_margin;
    }
    c.set_head(head.clone());
    // 3. Platt scaling of the winner's probability.
    let (conf, correct) = verdicts(&c, data);
    let (slope, bias) = fit_platt(&conf, &correct);
    if slope <= 0.0 {
        return Err(Error::Usage(format!(
            "these {} stories fit a confidence that falls as the verdict grows surer (slope \
             {slope:.3}), which would mislead every reader of it; calibrate on more labelled \
             stories, from every scenario",
            data.len()
        )));
    }
    let s = &mut c.taxonomy_mut().classifier;
    s.confidence_slope = slope;
    s.confidence_bias = bias;
    let settings = *s;
    let (conf, correct) = verdicts(&c, data);
    let ece_after = calibration_error(&conf, &correct).0;
    Ok(Fitted {
        head,
        temperature: t,
        settings,
        ece: (ece_before, ece_after),
    })
}

/// Records the fit in `profile`, with the SHA-256 of each INPUT (refused if it changed from
/// `before` while it was read) and a key of each story.
fn record(
    profile: &mut Profile,
    engine: &Engine,
    fitted: &Fitted,
    args: &CalibrateArgs,
    before: &[String],
    rows: &[LabelledRow],
) -> Result<()> {
    let stories = rows.len();
    let settings = &fitted.settings;
    profile.head = fitted.head.clone();
    profile.record_reading(engine)?;
    profile.calibration = Some(Calibration {
        temperature: settings.temperature,
        min_score: settings.min_score,
        min_margin: settings.min_margin,
        confidence_slope: settings.confidence_slope,
        confidence_bias: settings.confidence_bias,
    });
    let hashes = args
        .inputs
        .iter()
        .map(|p| failup::profile::file_sha256(p))
        .collect::<Result<Vec<_>>>()?;
    for ((input, before), after) in args.inputs.iter().zip(before).zip(&hashes) {
        super::refuse_a_changed_file(input, before, after)?;
    }
    if profile.head.is_none() {
        profile.training_sha256 = training_sha256(&hashes);
        profile.training_rows = stories;
    }
    profile.calibration_sha256 = hashes;
    profile.calibration_rows = Some(stories);
    let mut keys: Vec<String> = rows
        .iter()
        .map(|r| failup::profile::story_key(&r.text))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    profile.calibration_stories = keys;
    Ok(())
}

/// Says what was fitted, and prints the settings for a taxonomy file.
fn tell(args: &CalibrateArgs, profile: &Profile, fitted: &Fitted, stories: usize) -> Result<()> {
    let settings = &fitted.settings;
    let (t, slope, bias) = (
        fitted.temperature,
        settings.confidence_slope,
        settings.confidence_bias,
    );
    let (ece_before, ece_after) = fitted.ece;
    let quiet = args.quiet;
    if !quiet {
        // A head learns `other` from its examples: only `min_relevance`, which is not fitted,
        // applies to it.
        let other_rule = match profile.head {
            Some(_) => String::new(),
            None => format!(
                ", other rule min_score {:.3} min_margin {:.3}",
                settings.min_score, settings.min_margin
            ),
        };
        eprintln!(
            "calibrated on {} stories: temperature {t:.4}{other_rule}, confidence slope \
             {slope:.4} bias {bias:.4}; ECE on these stories {ece_before:.3} -> {ece_after:.3}",
            stories,
        );
    }
    warn_if_degenerate(stories, (ece_before, ece_after));
    let snippet = format!(
        "[classifier]\ntemperature = {:.4}\nmin_score = {:.3}\nmin_margin = {:.3}\n\
         confidence_slope = {slope:.4}\nconfidence_bias = {bias:.4}\n",
        settings.temperature, settings.min_score, settings.min_margin
    );
    // The snippet sets a taxonomy file's zero-shot rule; a head's temperature lives only in
    // the profile. With `-o -` the profile itself is on standard output, which must stay JSON.
    match (&profile.head, args.output == std::path::Path::new("-")) {
        (Some(_), _) if !quiet => eprintln!(
            "the fitted head's calibration lives in the profile alone: a taxonomy file cannot \
             carry it"
        ),
        (None, true) if !quiet => eprint!("the same settings for a taxonomy file:\n{snippet}"),
        (None, false) => super::print_out(&snippet)?,
        _ => {}
    }
    Ok(())
}

/// A head gets its own examples right with a confidence it never has on new stories, so a
/// calibration fitted on them makes every later confidence too high: refused when every story
/// is one, told when some are.
fn check_not_learned(stories: usize, learned: usize) -> Result<()> {
    let fix = "calibrate the head on labelled stories it has not learned from";
    if learned == stories {
        return Err(Error::Usage(format!(
            "all {stories} of these stories are examples the few-shot head learned from, which \
             it gets right too easily to show how sure it should be on new ones; {fix}"
        )));
    }
    if learned > 0 {
        eprintln!(
            "warning: {learned} of these {stories} stories are examples the few-shot head \
             learned from; it gets them right too easily, so the confidences fitted here will \
             run high on new stories; {fix}"
        );
    }
    Ok(())
}

/// A temperature at the end of the range searched is not pinned down by the stories: at the
/// low end their scores part the labels perfectly, so every confidence would be 1.0000; at
/// the high end they say nothing, and every confidence would be near even. Such a profile
/// would mislead every run that uses it, so it is not written; this says why. `learned` of
/// the stories are among the few-shot head's examples, which it gets right too easily to be
/// calibrated on.
fn unpinned_temperature(stories: usize, learned: usize, temperature: f32) -> Error {
    let too_sure = temperature < 1.0;
    let extreme = match too_sure {
        true => "every confidence would be 1.0000",
        false => "every confidence would be near even",
    };
    let why = match (too_sure, learned) {
        (true, n) if n > 0 => format!(" ({n} of them are examples the few-shot head learned from)"),
        _ => String::new(),
    };
    // At the low end every story is read right with room to spare; at the high end the
    // scores say little about the labels, which harder stories would only make worse.
    let fix = match (too_sure, learned) {
        (true, 0) => {
            "calibrate on more, and harder, labelled stories, from every scenario (at least 40 \
             give steadier figures)"
        }
        (true, _) => "calibrate the head on labelled stories it has not learned from",
        (false, _) => {
            "the scores do not follow the labels: check that the label column is the one \
             meant (--label-column) and that its labels name the scenarios as \
             `failup categories` defines them"
        }
    };
    Error::Usage(format!(
        "these {stories} {}{why} do not pin the confidence temperature down: it ran to \
         {temperature:.4}, the end of the range searched (0.001 to 10), and {extreme}; {fix}",
        if stories == 1 { "story" } else { "stories" }
    ))
}

/// A head fitted on one reading (precision, `--long-text`), calibrated on another, would be
/// written down as fitted on the second: every later run at the head's true reading would then
/// be warned, and told to take the wrong one.
fn refuse_another_reading_of_a_head(
    profile: &Profile,
    engine: &Engine,
    path: &std::path::Path,
) -> Result<()> {
    if profile.head.is_none() {
        return Ok(());
    }
    let precision = engine.precision.name();
    let long_text = engine.encoder().long_text().name();
    let differs = [
        ("--precision", profile.precision.as_deref(), precision),
        ("--long-text", profile.long_text.as_deref(), long_text),
    ]
    .into_iter()
    .find(|(_, fitted, now)| fitted.is_some_and(|f| f != *now));
    match differs {
        Some((flag, Some(fitted), now)) => Err(Error::Usage(format!(
            "the few-shot head of {} was fitted with {flag} {fitted}, and this run reads with \
             {flag} {now}: calibrate it as it was fitted (leave out {flag}), or fit a head with \
             {flag} {now} first (failup train ... {flag} {now})",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// A fit that should not be trusted as it stands is written, but said so: too few stories,
/// or confidences that fit these very stories worse.
fn warn_if_degenerate(stories: usize, (before, after): (f64, f64)) {
    const FEW: usize = 40;
    if stories < FEW {
        eprintln!(
            "warning: {stories} stories are few for a calibration (at least {FEW}, from every \
             scenario, give steadier figures); treat its confidences with care"
        );
    }
    if after > before {
        eprintln!(
            "warning: the calibrated confidences fit these stories worse than before (ECE \
             {before:.3} -> {after:.3}); calibrate on more labelled stories"
        );
    }
}

/// A scenario with no calibration story is fitted blind: how sure its verdicts should be,
/// and for `other` the rule that sends a story there, are learned from the others alone.
fn warn_of_scenarios_left_out(labels: &[String], rows: &[LabelledRow]) {
    let missing: Vec<&String> = (labels.iter().enumerate())
        .filter(|&(i, _)| rows.iter().all(|r| r.label != i))
        .map(|(_, label)| label)
        .collect();
    if missing.is_empty() {
        return;
    }
    let named: Vec<String> = missing.iter().map(|l| format!("'{l}'")).collect();
    let named = match named.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => unreachable!("some scenario is missing"),
    };
    let other = missing.iter().any(|l| *l == failup::taxonomy::OTHER);
    eprintln!(
        "warning: the {} stories to calibrate on hold no story of {named}, so the confidence \
         is fitted without {}{}; add labelled stories of every scenario",
        rows.len(),
        if missing.len() == 1 { "it" } else { "them" },
        if other {
            ", and the rule that sends a story to 'other' without one that belongs there"
        } else {
            ""
        }
    );
}

/// A story in two of the INPUT files counts twice in the fit, as a copy within one file does
/// (those were told file by file).
fn warn_of_stories_in_several_files(rows: &[LabelledRow]) {
    fn file_of(r: &LabelledRow) -> &str {
        r.at.rsplit_once(':').map_or("", |(file, _)| file)
    }
    let mut first: std::collections::HashMap<String, &LabelledRow> = Default::default();
    // The first copy in another file of each story (a third file's copy is not another story).
    let mut again: Vec<(&LabelledRow, &LabelledRow)> = Vec::new();
    let mut told = std::collections::HashSet::new();
    for row in rows {
        // Case, accents, spacing and punctuation aside, as within one file.
        let key = failup::eval::copy_key(&row.text);
        let seen = *first.entry(key.clone()).or_insert(row);
        if file_of(seen) != file_of(row) && told.insert(key) {
            again.push((seen, row));
        }
    }
    let Some((seen, row)) = again.first() else {
        return;
    };
    eprintln!(
        "warning: {} {} in more than one INPUT file, word for word, case, accents, \
         spacing and punctuation aside (the first at {}, as at {}); each copy counts in the \
         fit, so drop the copies unless the weight is meant",
        again.len(),
        if again.len() == 1 {
            "story is"
        } else {
            "stories are"
        },
        row.at,
        seen.at
    );
}
