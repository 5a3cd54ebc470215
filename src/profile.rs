//! Profiles: a few-shot head and calibrated settings, fitted once and reused.
//!
//! `failup train` and `failup calibrate` write a profile; `classify`, `advise` and `eval` read
//! it with `--profile`, so a million-row run never refits. A profile records the model and the
//! taxonomy it was fitted against (fingerprints) and the SHA-256 of its training data, and is
//! refused against a different model or taxonomy, whose embeddings or prototypes would make its
//! numbers meaningless. User examples are embedded afresh on every run (`--examples`) or stored
//! inside the profile, never in the prototype cache, so they cannot be served stale.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::embed::{Backend, ModelDir};
use crate::error::{Error, Result};
use crate::eval::{copy_key, words_key};
use crate::fewshot::{Head, TrainingExample};
use crate::input::{
    is_blank, not_a_story, printable, Columns, Dialect, RowIssue, Source, Story, StoryReader,
};
use crate::pipeline::{Engine, CHUNK_SIZE, NO_KNOWN_WORD};
use crate::sink::Sink;
use crate::taxonomy::Taxonomy;

/// 2: the head has an attention query (format 1's heads had none and cannot be used). A
/// profile's unknown keys are refused (a misspelt one would change nothing). A new field that
/// every later failup needs takes a new format; the optional `model_reading` and `precision`
/// were added within format 2 rather than refuse every profile fitted before them, so a
/// failup older than them refuses a profile that holds them, naming the key.
pub const PROFILE_FORMAT: u32 = 2;

/// Settings fitted by `failup calibrate`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    pub temperature: f32,
    pub min_score: f32,
    pub min_margin: f32,
    pub confidence_slope: f32,
    pub confidence_bias: f32,
}

/// A stored example: id, scenario id and raw embedding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredExample {
    pub id: String,
    pub label: String,
    pub embedding: Vec<f32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub format: u32,
    pub failup_version: String,
    pub model: String,
    pub model_sha256: String,
    /// How the model folder reads a text beside its weights ([`ModelDir::reading`]): the same
    /// weights pooled or cut otherwise give other vectors. Profiles written before it was kept
    /// have none, and are not checked for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_reading: Option<String>,
    /// The precision whose vectors the head and calibration were last fitted on
    /// (`--precision`): the profile runs at it unless told otherwise, since another
    /// precision's vectors differ a little. Profiles written before it was kept have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<String>,
    /// SHA-256 of `model.int8.onnx` and the tokenizer, when it was fitted on int8 vectors:
    /// `model_sha256` covers the fp32 weights only, and another quantization of them (a
    /// release's new int8 file, say) gives vectors that differ a little. Profiles written
    /// before it was kept, or fitted at another precision, have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub int8_sha256: Option<String>,
    /// How the stories were read when it was fitted (`--long-text`): `truncate` reads each
    /// story whole, not by sentence, so its vectors differ from `chunk`'s for every story.
    /// Profiles written before it was kept have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long_text: Option<String>,
    /// Fitted on the vectors of failup's own test embedder (`--backend test-hashed`), which
    /// hashes tokens and never runs the model: its head and calibration fit no model's vectors,
    /// though the model folder's hashes are recorded all the same.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test_embedder: bool,
    pub taxonomy_sha256: String,
    /// SHA-256 of the labelled file the profile was fitted on: the few-shot head's examples,
    /// or, for a calibration alone, its stories.
    pub training_sha256: String,
    pub training_rows: usize,
    /// SHA-256 of each file the calibration was fitted on, when it was; kept apart so a
    /// calibrated head still names its examples.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calibration_sha256: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration_rows: Option<usize>,
    /// The [`story_key`] of each story the calibration was fitted on, sorted: `eval` finds
    /// them again in any file, as it finds a head's examples by their embeddings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calibration_stories: Vec<String>,
    pub calibration: Option<Calibration>,
    pub head: Option<Head>,
    pub examples: Vec<StoredExample>,
}

/// SHA-256 of what the classifier depends on in a taxonomy: ids, prototypes and settings that
/// shape scores.
pub fn taxonomy_sha256(t: &Taxonomy) -> String {
    let mut h = Sha256::new();
    let c = &t.classifier;
    h.update(format!("top_k={} center={}\n", c.top_k, c.center));
    // The sentence settings shape the scores a head is fitted on.
    h.update(format!(
        "sentences={},{},{}\n",
        c.sentence_weight, c.sentence_top_k, c.sentence_temperature
    ));
    for s in &t.scenarios {
        h.update(format!("[{}]\n", s.id));
        for p in &s.prototypes {
            h.update(p.as_bytes());
            h.update(b"\n");
        }
    }
    hex::encode(h.finalize())
}

/// The most of a profile read: each example takes about 4 KiB, so this holds some 60,000, far
/// past any few-shot set, and /dev/zero given by mistake is refused before memory runs out.
const MAX_PROFILE_BYTES: u64 = 256 << 20;

/// SHA-256 of the model's fp32 ONNX file and tokenizer.
pub fn model_sha256(model: &ModelDir) -> Result<String> {
    weights_sha256(model, crate::embed::Precision::Fp32)
}

/// SHA-256 of the ONNX file `precision` reads and of the tokenizer.
pub fn weights_sha256(model: &ModelDir, precision: crate::embed::Precision) -> Result<String> {
    let mut h = Sha256::new();
    for p in [model.onnx_path(precision), model.tokenizer_path()] {
        let bytes = std::fs::read(&p).map_err(|e| Error::io(p.display().to_string(), e))?;
        h.update(&bytes);
    }
    Ok(hex::encode(h.finalize()))
}

/// [`weights_sha256`] of the int8 file when `engine` reads int8 vectors, None otherwise.
fn int8_sha256(engine: &Engine) -> Result<Option<String>> {
    use crate::embed::Precision;
    (engine.precision == Precision::Int8)
        .then(|| weights_sha256(&engine.model, Precision::Int8))
        .transpose()
}

/// The first 16 hex digits of the SHA-256 of a story's [`copy_key`]: enough to know a story
/// again, in a few bytes per story, in another case or with its punctuation changed.
pub fn story_key(text: &str) -> String {
    short_sha256(&copy_key(text))
}

/// The key that profiles written before [`story_key`] set accents aside recorded (words, case
/// and punctuation aside), so their calibration stories are still found.
pub fn story_key_with_accents(text: &str) -> String {
    short_sha256(&words_key(text))
}

/// The key that profiles written before [`story_key`] looked past case and punctuation
/// recorded (the text, spaces at its ends aside), so their calibration stories are still found.
pub fn story_key_as_written(text: &str) -> String {
    short_sha256(text.trim())
}

/// The first 16 hex digits of `key`'s SHA-256.
fn short_sha256(key: &str) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

/// SHA-256 of a file, read in pieces: a merged part can be larger than memory allows.
pub fn file_sha256(path: &Path) -> Result<String> {
    let name = path.display().to_string();
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(&name, e))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| Error::io(&name, e))?;
    Ok(hex::encode(hasher.finalize()))
}

/// The columns of a labelled CSV file: `label` (its name), the text and the id, as
/// [`Columns`] names them.
pub fn labelled_columns(label: &str, text: Option<String>, id: Option<String>) -> Columns {
    Columns {
        text,
        id,
        label: Some(label.to_string()),
        ..Columns::default()
    }
}

/// A story of a labelled file, with its gold scenario.
#[derive(Debug, Clone)]
pub struct LabelledRow {
    pub id: String,
    pub text: String,
    /// Scenario index.
    pub label: usize,
    /// `file:line`, for messages about the story.
    pub at: String,
}

/// A first line with a comma and a `label` cell: labelled stories given where a profile goes.
fn reads_like_labelled_csv(text: &str) -> bool {
    let first = text.lines().next().unwrap_or("").to_lowercase();
    first.contains(',')
        && first
            .split(',')
            .any(|cell| cell.trim().trim_matches('"') == "label")
}

/// Labelled stories of a CSV file (`text`/`story` and `label` columns, or those `columns`
/// names). An unknown label is an error naming its line and the valid labels.
pub fn read_labelled(
    path: &Path,
    taxonomy: &Taxonomy,
    columns: &Columns,
    dialect: Dialect,
) -> Result<Vec<LabelledRow>> {
    let source = Source::from_arg(path);
    let label_column = columns.label.as_deref().unwrap_or("label");
    if columns.text.as_deref() == Some(label_column) {
        return Err(Error::Usage(format!(
            "--text-column and --label-column both name '{label_column}'; the stories and \
             their labels need a column each"
        )));
    }
    let mut reader = StoryReader::open(&source, columns, dialect)?;
    let ids = taxonomy.ids();
    let mut out = Vec::new();
    // Rows with neither text nor label, as a spreadsheet exports below its data: (count,
    // first line).
    let mut blank_rows = (0u64, 0u64);
    // Empty lines, which the CSV reader passes over: (count, first line).
    let mut blank_lines = (0usize, None);
    loop {
        let chunk = reader.next_chunk(CHUNK_SIZE)?;
        let lines = reader.take_blank_lines();
        blank_lines = (
            blank_lines.0 + lines.len(),
            blank_lines.1.or(lines.first().copied()),
        );
        if chunk.is_empty() {
            break;
        }
        for story in chunk {
            if is_blank_row(&story, &reader) {
                blank_rows.1 = if blank_rows.0 == 0 {
                    story.line
                } else {
                    blank_rows.1
                };
                blank_rows.0 += 1;
                continue;
            }
            out.push(labelled_row(story, &reader, &ids, label_column)?);
        }
    }
    warn_of_blanks(reader.name(), blank_lines, blank_rows);
    if out.is_empty() {
        return Err(Error::Input {
            file: path.display().to_string(),
            line: None,
            column: None,
            problem: "no labelled stories with text".into(),
        });
    }
    Ok(out)
}

/// `story` as a labelled row. A labelled set is small and curated, so a row that cannot be
/// scored as labelled is an error to fix, not a row to drop.
fn labelled_row(
    story: Story,
    reader: &StoryReader,
    ids: &[&str],
    label_column: &str,
) -> Result<LabelledRow> {
    if let Some(problem) = unusable(&story, reader.headers()) {
        return Err(Error::Input {
            file: reader.name().to_string(),
            line: Some(story.line),
            column: None,
            problem,
        });
    }
    let label = story.label.as_deref().unwrap_or("").trim().to_string();
    let i = label_index(ids, &label).map_err(|fits| Error::Input {
        file: reader.name().to_string(),
        line: Some(story.line),
        column: Some(label_column.to_string()),
        problem: unknown_label(&label, ids, &fits),
    })?;
    Ok(LabelledRow {
        at: format!("{}:{}", reader.name(), story.line),
        id: story.id,
        text: story.text,
        label: i,
    })
}

/// A row with neither id, label nor text, as a spreadsheet exports below its data.
fn is_blank_row(story: &Story, reader: &StoryReader) -> bool {
    let no_label = story.label.as_deref().is_none_or(|l| l.trim().is_empty());
    // A row numbered for want of an id column has no id cell to be empty.
    let no_id = story.id.trim().is_empty() || reader.id_column().is_none();
    // A blank row with a stray empty cell (`,,` under two columns) or one too few is as
    // blank; one whose quotes went wrong, or whose extra cells hold text, is not.
    let cells_sound = !story.overflows && story.cell_problem().is_none();
    no_label && no_id && is_blank(&story.text) && cells_sound
}

/// Why `label` names no scenario: it is empty, matches none, or matches several (`fits`)
/// loosely.
fn unknown_label(label: &str, ids: &[&str], fits: &[&str]) -> String {
    match fits {
        [] if label.is_empty() => format!(
            "the label cell is empty; give each story one of: {}",
            ids.join(", ")
        ),
        [] => format!(
            "label '{}' is not a scenario id; valid labels: {} (in any case, with spaces or \
             hyphens for _)",
            printable(label),
            ids.join(", ")
        ),
        // The taxonomy's ids differ only in what a loose reading sets aside.
        fits => format!(
            "label '{}' could be any of {}, which differ only in case, spaces, hyphens or \
             underscores; write the id exactly",
            printable(label),
            fits.join(", ")
        ),
    }
}

/// Warns of the blank lines (count, first line) and blank rows (count, first line) passed
/// over in the labelled file `name`.
fn warn_of_blanks(name: &str, blank_lines: (usize, Option<u64>), blank_rows: (u64, u64)) {
    match blank_lines {
        (1, Some(line)) => eprintln!(
            "warning: {}:{line}: blank line passed over (CSV has no empty rows)",
            name
        ),
        (count @ 2.., Some(first)) => eprintln!(
            "warning: {}:{first}: {count} blank lines passed over (the first on this line; \
             CSV has no empty rows)",
            name
        ),
        _ => {}
    }
    if blank_rows.0 > 0 {
        eprintln!(
            "warning: {}:{}: {} with no id, label or text passed over (the first on this \
             line; spreadsheets export such rows below their data)",
            name,
            blank_rows.1,
            match blank_rows.0 {
                1 => "1 row".to_string(),
                n => format!("{n} rows"),
            }
        );
    }
}

/// The scenario a gold label names: its id exactly, or failing that the one id it matches
/// with case, spaces and hyphens aside (`Passed over`, `lost-pitch`), as hand-labelled
/// spreadsheets write them. Otherwise the ids it fits loosely: none, or several.
fn label_index<'a>(ids: &[&'a str], label: &str) -> std::result::Result<usize, Vec<&'a str>> {
    // "Passed over", "passed-over" and "passed  over" all mean passed_over.
    let loose = |s: &str| {
        s.to_lowercase()
            .split(|c: char| c.is_whitespace() || c == '-' || c == '_')
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join("_")
    };
    if let Some(i) = ids.iter().position(|id| *id == label) {
        return Ok(i);
    }
    let fits: Vec<usize> = (0..ids.len())
        .filter(|&i| loose(ids[i]) == loose(label))
        .collect();
    match fits.as_slice() {
        [i] => Ok(*i),
        _ => Err(fits.iter().map(|&i| ids[i]).collect()),
    }
}

/// Why a labelled row cannot be used, if it cannot: ragged, or without text.
fn unusable(story: &Story, headers: &[String]) -> Option<String> {
    let header_fields = headers.len();
    if let Some(cells) = story.cell_problem() {
        return Some(format!("row {}: {cells}", story.row));
    }
    // Too few fields leave the label or text unread; too many that hold something mean the
    // cells were cut at a delimiter in the story (a trailing delimiter alone is harmless).
    if story.issues.contains(&RowIssue::Malformed) && story.fields < header_fields {
        return Some(format!(
            "row {} has only {} of the header's {header_fields} fields, so the last columns' \
             cells are missing; give it every column (an empty one as two delimiters side by \
             side), or join it to the line before if a line break cut it",
            story.row, story.fields
        ));
    }
    if story.overflows {
        return Some(format!(
            "row {} has {} fields, more than the header's {header_fields}: a story that holds \
             the delimiter was cut there; put it in double quotes",
            story.row, story.fields
        ));
    }
    // Learned from or scored as written, a story with U+FFFD in place of its letters would
    // pass unseen: here it is an error to fix, as the rest of a curated set's problems are.
    if let Some(place) = story.invalid_utf8_place(headers) {
        return Some(format!(
            "row {} has bytes that are not UTF-8 text {place}; save the file as UTF-8 (for example \
             iconv -f WINDOWS-1252 -t UTF-8 IN.csv > OUT.csv); eval, train and calibrate also \
             read their own labelled file with --encoding windows-1252, but an --examples file \
             must be UTF-8",
            story.row
        ));
    }
    // Cut at 1 MiB, the story would be scored or learned from as it was not written.
    if story.issues.contains(&RowIssue::TooLong) {
        return Some(format!(
            "row {} has a story longer than 1 MiB, which failup cuts there, and a labelled \
             story is scored and learned from as written; shorten it, or split it if it holds \
             several stories",
            story.row
        ));
    }
    // A placeholder is read as the blank cell it stands for, as classify reads it.
    let no_text = match is_blank(&story.text) {
        true => Some("no text"),
        false => not_a_story(&story.text),
    };
    let label = story.label.as_deref().unwrap_or("").trim();
    no_text.map(|why| match label {
        "" => format!(
            "row {} has neither a label nor a story ({why}); give it both, or remove the row",
            story.row
        ),
        label => format!(
            "row {} is labelled '{label}' but has {why}; give it its story or remove the row",
            story.row
        ),
    })
}

/// A labelled story, embedded.
#[derive(Debug, Clone)]
pub struct Labelled {
    pub id: String,
    /// Scenario index.
    pub label: usize,
    /// Raw embedding, as the encoder returns it.
    pub embedding: Vec<f32>,
    /// Attention-pooled under the engine's few-shot head, when it has one.
    pub attended: Option<Vec<f32>>,
    /// Last hidden states, when asked for.
    pub states: Option<Vec<f32>>,
    /// Its sentences' embeddings, when the classifier reads sentences.
    pub sentences: Option<Vec<Vec<f32>>>,
}

impl Labelled {
    /// As the few-shot training reads it.
    ///
    /// # Panics
    /// When the story was embedded without its hidden states.
    pub fn example(&self) -> TrainingExample<'_> {
        TrainingExample {
            embedding: &self.embedding,
            states: self.states.as_deref().expect("embedded with states"),
            sentences: self.sentences.as_deref(),
            label: self.label,
        }
    }
}

/// Embeds labelled stories (id, text, scenario index), keeping their hidden states when
/// `states` is set (to fit a few-shot head on them).
pub fn embed_labelled(
    engine: &Engine,
    rows: &[LabelledRow],
    states: bool,
) -> Result<Vec<Labelled>> {
    let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
    let embedded = if states {
        engine.embed_texts_with_states(&texts)?
    } else {
        engine.embed_texts(&texts)?
    };
    rows.iter()
        .zip(embedded)
        .map(|(r, e)| {
            let embedding = e.embedding.ok_or_else(|| {
                Error::Usage(format!(
                    "{}: the story with id {} has {NO_KNOWN_WORD}; give it its story in words \
                     or remove the row",
                    r.at,
                    printable(&r.id)
                ))
            })?;
            Ok(Labelled {
                id: r.id.clone(),
                label: r.label,
                embedding,
                attended: e.attended,
                states: e.states,
                sentences: e.sentences,
            })
        })
        .collect()
}

/// Fits a few-shot head for the engine's classifier on `examples` (embedded with states).
fn fit_head(engine: &Engine, examples: &[Labelled]) -> Result<Head> {
    let prototype_states = engine.prototype_states()?;
    let examples: Vec<TrainingExample> = examples.iter().map(Labelled::example).collect();
    Ok(engine.install(|| engine.classifier().train_head(&prototype_states, &examples)))
}

/// A profile file that is JSON but not a profile's.
fn not_a_profile(name: &str, e: serde_json::Error) -> Error {
    // The line goes in the message's head, as for every input; the column (a profile is one
    // long line) after what was wrong.
    let said = e.to_string();
    let said = (said.rsplit_once(" at line ")).map_or(said.as_str(), |(s, _)| s);
    Error::Input {
        file: name.to_string(),
        line: Some(e.line() as u64),
        column: None,
        problem: match said.strip_prefix("unknown field ") {
            // A misspelt key would otherwise leave the setting it meant unchanged.
            Some(rest) => format!(
                "not a failup profile: unknown key {rest}, at character {} (misspelt, or \
                 edited by hand?); refit it with failup train/calibrate",
                e.column()
            ),
            None => format!("not a failup profile: {said}, at character {}", e.column()),
        },
    }
}

/// A profile file that is not JSON, with what it may be instead.
fn not_json(name: &str, text: &str, e: serde_json::Error) -> Error {
    let hint = match text.contains("NaN") || text.contains("Infinity") {
        true => {
            "; NaN and Infinity are not JSON numbers (a script's JSON writer may have put them \
             there)"
        }
        false if reads_like_labelled_csv(text) => {
            "; it reads like a CSV of labelled stories, which is given with --examples, or \
             fitted into a profile once with failup train"
        }
        false => "",
    };
    Error::Input {
        file: name.to_string(),
        line: Some(e.line() as u64),
        column: None,
        problem: format!("not valid JSON, so not a failup profile ({e}){hint}"),
    }
}

/// Refuses a profile of another format first: an older profile lacks fields this one needs,
/// and "missing field" would not tell the user what to do.
fn check_format(name: &str, value: &serde_json::Value) -> Result<()> {
    let Some(format) = value.get("format").and_then(|f| f.as_u64()) else {
        return Err(Error::Input {
            file: name.to_string(),
            line: None,
            column: None,
            problem: "not a failup profile, which is a JSON object with a whole-number \
                      \"format\" (and a head or a calibration), as failup train and failup \
                      calibrate write it"
                .into(),
        });
    };
    if format != u64::from(PROFILE_FORMAT) {
        let newer = match format > u64::from(PROFILE_FORMAT) {
            true => "a newer failup wrote it: update this one, or ",
            false => "",
        };
        return Err(Error::Usage(format!(
            "{name}: profile format {format} is not supported (this failup reads \
             {PROFILE_FORMAT}); {newer}refit it with failup train (and failup calibrate, if it \
             was calibrated)"
        )));
    }
    Ok(())
}

/// The range of a profile's temperatures and confidence slopes, as of a taxonomy's.
const SCALE: std::ops::RangeInclusive<f32> = crate::taxonomy::CONFIDENCE_SCALE;
/// The largest weight a profile's head or example holds: fits write weights near 1.
const MAX_WEIGHT: f32 = 1e3;

/// A number outside ±MAX_WEIGHT, NaN included.
fn wild(x: &f32) -> bool {
    !(-MAX_WEIGHT..=MAX_WEIGHT).contains(x)
}

/// Refuses a temperature or slope outside SCALE.
fn positive(what: &str, x: f32) -> std::result::Result<(), String> {
    if SCALE.contains(&x) {
        return Ok(());
    }
    // JSON has no infinity: a number too large for f32 was written there.
    let x = match x.is_infinite() {
        true => format!("{}beyond f32's range", if x < 0.0 { "-" } else { "" }),
        false => x.to_string(),
    };
    Err(format!(
        "its {what} is {x}, and must lie between {} and {}",
        SCALE.start(),
        SCALE.end()
    ))
}

fn check_calibration(c: &Calibration) -> std::result::Result<(), String> {
    positive("calibration's temperature", c.temperature)?;
    positive("calibration's confidence_slope", c.confidence_slope)?;
    if !(-SCALE.end()..=*SCALE.end()).contains(&c.confidence_bias) {
        return Err(format!(
            "its calibration's confidence_bias is {}, and must lie between -{1} and {1}",
            c.confidence_bias,
            SCALE.end()
        ));
    }
    // Cosines, as in the taxonomy's [classifier] settings.
    for (what, x) in [("min_score", c.min_score), ("min_margin", c.min_margin)] {
        if !(-1.0..=1.0).contains(&x) {
            return Err(format!(
                "its calibration's {what} is {x}, and must lie between -1 and 1"
            ));
        }
    }
    Ok(())
}

fn check_head(h: &Head) -> std::result::Result<(), String> {
    positive("head's temperature", h.temperature)?;
    let numbers = [
        ("weights", h.weights.iter().flatten().collect::<Vec<_>>()),
        ("biases", h.bias.iter().collect()),
        ("query", h.query.iter().collect()),
    ];
    for (what, values) in numbers {
        if let Some(x) = values.into_iter().find(|x| wild(x)) {
            // f32 reads a number past its range (1e300) as infinite.
            let x = match x.is_finite() {
                true => x.to_string(),
                false => "a number beyond the range of 32-bit floats".to_string(),
            };
            return Err(format!(
                "its head's {what} hold {x}, where a fit writes numbers within ±{MAX_WEIGHT}"
            ));
        }
    }
    Ok(())
}

impl Profile {
    /// A new profile for this engine's model and taxonomy.
    pub fn new(engine: &Engine, training: &Path, rows: usize) -> Result<Profile> {
        Ok(Profile {
            format: PROFILE_FORMAT,
            failup_version: env!("CARGO_PKG_VERSION").to_string(),
            model: engine.model.name(),
            model_sha256: model_sha256(&engine.model)?,
            model_reading: Some(engine.model.reading()),
            precision: Some(engine.precision.name().to_string()),
            int8_sha256: int8_sha256(engine)?,
            long_text: Some(engine.encoder().long_text().name().to_string()),
            test_embedder: engine.backend == Backend::TestHashed,
            taxonomy_sha256: taxonomy_sha256(engine.taxonomy()),
            training_sha256: file_sha256(training)?,
            training_rows: rows,
            calibration_sha256: Vec::new(),
            calibration_rows: None,
            calibration_stories: Vec::new(),
            calibration: None,
            head: None,
            examples: Vec::new(),
        })
    }

    /// Warns when the profile was fitted on int8 vectors of another `model.int8.onnx` than the
    /// one this int8 run reads: the same fp32 weights quantized again read a little otherwise.
    fn warn_of_another_int8_file(&self, engine: &Engine, name: &str) -> Result<()> {
        let (Some(fitted), Some(running)) = (&self.int8_sha256, int8_sha256(engine)?) else {
            return Ok(());
        };
        if *fitted != running {
            eprintln!(
                "warning: {name} was fitted on int8 vectors from another {} (sha256 {}…; this \
                 one is {}…), another quantization that reads a little otherwise, so a few \
                 verdicts and confidences may differ from the fit's; refit it with failup \
                 calibrate or train to match",
                engine
                    .model
                    .onnx_path(crate::embed::Precision::Int8)
                    .display(),
                &fitted[..12.min(fitted.len())],
                &running[..12]
            );
        }
        Ok(())
    }

    /// Refuses a profile fitted with the test embedder in a run of the model, and the other way
    /// round: the two read the same model folder, so its hashes match, but their vectors have
    /// nothing in common.
    fn refuse_another_embedder(&self, engine: &Engine, name: &str) -> Result<()> {
        let testing = engine.backend == Backend::TestHashed;
        if self.test_embedder == testing {
            return Ok(());
        }
        Err(Error::Usage(if self.test_embedder {
            format!(
                "{name} was fitted with failup's test embedder (--backend test-hashed), which \
                 hashes tokens and never runs the model, so its head and calibration fit no \
                 model's vectors; refit it with failup train/calibrate without --backend \
                 test-hashed (and with FAILUP_BACKEND unset)"
            )
        } else {
            format!(
                "{name} was fitted on the model's vectors, and this run uses failup's test \
                 embedder (--backend test-hashed), which hashes tokens instead; run without it, \
                 or fit a profile for it"
            )
        }))
    }

    /// The precision the profile was fitted at, when it records one.
    pub fn fitted_precision(&self) -> Option<crate::embed::Precision> {
        self.precision
            .as_deref()
            .and_then(crate::embed::Precision::from_name)
    }

    /// How the profile's stories were read (`--long-text`), if it records a value failup knows.
    pub fn fitted_long_text(&self) -> Option<crate::chunk::LongText> {
        self.long_text
            .as_deref()
            .and_then(crate::chunk::LongText::from_name)
    }

    /// Whether the head or the calibration was fitted on the file whose SHA-256 is `sha256`.
    pub fn was_fitted_on(&self, sha256: &str) -> bool {
        self.training_sha256 == sha256 || self.calibration_sha256.iter().any(|c| c == sha256)
    }

    /// Records how `engine` reads stories (precision, its int8 file and `--long-text`) as the
    /// profile's own: what it fits now is fitted on those vectors, whatever a profile it
    /// started from was.
    pub fn record_reading(&mut self, engine: &Engine) -> Result<()> {
        self.precision = Some(engine.precision.name().to_string());
        self.int8_sha256 = int8_sha256(engine)?;
        self.long_text = Some(engine.encoder().long_text().name().to_string());
        Ok(())
    }

    /// Fits a few-shot head on `examples` (embedded with states) for the engine's classifier
    /// and stores them.
    pub fn fit_examples(&mut self, engine: &Engine, examples: &[Labelled]) -> Result<()> {
        self.head = Some(fit_head(engine, examples)?);
        self.record_reading(engine)?;
        let ids = engine.taxonomy().ids();
        self.examples = examples
            .iter()
            .map(|e| StoredExample {
                id: e.id.clone(),
                label: ids[e.label].to_string(),
                embedding: e.embedding.clone(),
            })
            .collect();
        Ok(())
    }

    /// Writes the profile whole or not at all: under a temporary name, renamed when complete.
    pub fn save(&self, path: &Path) -> Result<()> {
        // failup never writes a profile it would refuse to read (a taxonomy's temperature
        // past what a profile may hold, say).
        self.check_values().map_err(|problem| {
            Error::Usage(format!(
                "the fitted profile would not load again: {problem}; check the taxonomy's \
                 [classifier] settings and the labelled stories"
            ))
        })?;
        let text = serde_json::to_string(self).expect("profile serialises");
        let mut sink = Sink::open("-o", path, None)?;
        sink.write_all(text.as_bytes())
            .map_err(|e| Error::io(path.display().to_string(), e))?;
        sink.commit()
    }

    /// Whether the file at `path` opens as failup writes a profile (`{"format":`, spacing
    /// aside): one damaged later on still does, a table or notes of the user's do not.
    pub fn begins_as_one(path: &Path) -> bool {
        use std::io::Read;
        let mut head = Vec::new();
        let read = std::fs::File::open(path).and_then(|f| f.take(256).read_to_end(&mut head));
        let squeezed: Vec<u8> = head
            .into_iter()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        read.is_ok() && squeezed.starts_with(b"{\"format\":")
    }

    pub fn load(path: &Path) -> Result<Profile> {
        let name = path.display().to_string();
        let bytes = crate::taxonomy::read_at_most(path, MAX_PROFILE_BYTES, "profile")
            .map_err(|e| Error::io(&name, e))?;
        let text = String::from_utf8(bytes).map_err(|e| Error::Input {
            file: name.clone(),
            line: None,
            column: None,
            problem: format!(
                "not a failup profile: byte {} is not UTF-8 text, as failup writes",
                e.utf8_error().valid_up_to() + 1
            ),
        })?;
        // An editor may save it with a byte-order mark.
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| not_json(&name, text, e))?;
        check_format(&name, &value)?;
        let profile: Profile = serde_json::from_str(text).map_err(|e| not_a_profile(&name, e))?;
        profile.check_values().map_err(|problem| Error::Input {
            file: name.clone(),
            line: None,
            column: None,
            problem: format!(
                "{problem} (edited or damaged?); refit it with failup train/calibrate"
            ),
        })?;
        Ok(profile)
    }

    /// Refuses numbers no fit writes: a temperature or confidence slope that is not positive
    /// would turn every confidence into NaN or turn the verdicts upside down, one far outside
    /// what a fit finds pins every confidence to 0 or 1, and a huge number in the head or an
    /// example (even one within f32's range) makes every score NaN.
    fn check_values(&self) -> std::result::Result<(), String> {
        if self.head.is_none() && self.calibration.is_none() {
            return Err("it holds neither a few-shot head nor a calibration".into());
        }
        if let Some(p) = self.precision.as_deref() {
            if crate::embed::Precision::from_name(p).is_none() {
                return Err(format!(
                    "its precision is '{}', which is none of fp32, int8 and bf16",
                    printable(p)
                ));
            }
        }
        if let Some(l) = self.long_text.as_deref() {
            if crate::chunk::LongText::from_name(l).is_none() {
                return Err(format!(
                    "its long_text is '{}', which is neither chunk nor truncate",
                    printable(l)
                ));
            }
        }
        if let Some(c) = &self.calibration {
            check_calibration(c)?;
        }
        if let Some(h) = &self.head {
            check_head(h)?;
        }
        // eval finds a head's examples by them, and --explain names the nearest: a head
        // without them would pass both over without a word.
        if self.head.is_some() && self.examples.is_empty() {
            return Err("it holds a few-shot head but none of the examples it learned from".into());
        }
        // eval finds the calibration's stories again by these keys.
        let not_a_key = |k: &&String| k.len() != 16 || !k.bytes().all(|b| b.is_ascii_hexdigit());
        if let Some(k) = self.calibration_stories.iter().find(not_a_key) {
            return Err(format!(
                "its calibration_stories hold '{}', where each is 16 hex digits",
                printable(k)
            ));
        }
        let wild_example = |e: &&StoredExample| e.embedding.iter().any(wild);
        if let Some(e) = self.examples.iter().find(wild_example) {
            return Err(format!(
                "example {}'s embedding holds a number that is not finite or beyond \
                 ±{MAX_WEIGHT}, where embeddings lie within ±1",
                printable(&e.id)
            ));
        }
        Ok(())
    }

    /// Refuses a profile fitted against another model or taxonomy, then installs its head,
    /// examples and calibrated settings into the engine's classifier.
    pub fn apply(&self, engine: &mut Engine, name: &str) -> Result<()> {
        self.refuse_another_fit(engine, name)?;
        self.warn_of_another_reading(engine, name)?;
        let examples = self.checked_examples(engine, name)?;
        let classifier = engine.classifier_mut();
        if let Some(c) = self.calibration {
            let s = &mut classifier.taxonomy_mut().classifier;
            s.temperature = c.temperature;
            s.min_score = c.min_score;
            s.min_margin = c.min_margin;
            s.confidence_slope = c.confidence_slope;
            s.confidence_bias = c.confidence_bias;
        }
        classifier.set_head(self.head.clone());
        classifier.set_examples(examples);
        Ok(())
    }

    /// Refuses a profile fitted against another taxonomy, embedder, model or pooling.
    fn refuse_another_fit(&self, engine: &Engine, name: &str) -> Result<()> {
        let tax = taxonomy_sha256(engine.taxonomy());
        if tax != self.taxonomy_sha256 {
            return Err(Error::Usage(format!(
                "{name} was fitted against another taxonomy: its ids, prototypes or scoring \
                 settings differ (their SHA-256 {}…, this taxonomy's {}…, not the file's own); \
                 refit it with failup train/calibrate and this --taxonomy",
                &self.taxonomy_sha256[..12.min(self.taxonomy_sha256.len())],
                &tax[..12]
            )));
        }
        self.refuse_another_embedder(engine, name)?;
        let model = model_sha256(&engine.model)?;
        if model != self.model_sha256 {
            return Err(Error::Usage(format!(
                "{name} was fitted with another model ({}, sha256 {}…); refit it with this --model",
                self.model,
                &self.model_sha256[..12.min(self.model_sha256.len())]
            )));
        }
        let reading = engine.model.reading();
        if let Some(fitted) = self.model_reading.as_ref().filter(|r| **r != reading) {
            return Err(Error::Usage(format!(
                "{name} was fitted with these weights read with {fitted}, but this model folder \
                 reads them with {reading} (its sentence_bert_config.json or 1_Pooling/config.json \
                 differ); refit it with this --model"
            )));
        }
        Ok(())
    }

    /// Warns where this run reads stories otherwise than the fit did, by a flag given by hand
    /// (the profile's own precision and long-text reading are the defaults).
    fn warn_of_another_reading(&self, engine: &Engine, name: &str) -> Result<()> {
        let running = engine.precision.name();
        if let Some(fitted) = self.precision.as_deref().filter(|p| *p != running) {
            eprintln!(
                "warning: {name} was fitted on {fitted} vectors and this run reads {running} \
                 ones, which differ a little, so a few verdicts and confidences may differ \
                 from the fit's; pass --precision {fitted} to match it"
            );
        }
        self.warn_of_another_int8_file(engine, name)?;
        let reading = engine.encoder().long_text().name();
        if let Some(fitted) = self.long_text.as_deref().filter(|l| *l != reading) {
            eprintln!(
                "warning: {name} was fitted on stories read with --long-text {fitted} and this \
                 run reads them with --long-text {reading} (truncate reads a story whole, chunk \
                 sentence by sentence), so its verdicts may differ from the fit's; pass \
                 --long-text {fitted} to match it"
            );
        }
        Ok(())
    }

    /// The profile's examples, for `--explain` to name, once its head and examples are found
    /// to fit this model and taxonomy.
    fn checked_examples(
        &self,
        engine: &Engine,
        name: &str,
    ) -> Result<Vec<(String, usize, Vec<f32>)>> {
        let ids = engine.taxonomy().labels();
        if let Some(head) = &self.head {
            if !head.fits(engine.encoder().dim(), ids.len()) {
                return Err(Error::Input {
                    file: name.to_string(),
                    line: None,
                    column: None,
                    problem: "its few-shot head does not have the shape this model and taxonomy \
                              need (edited or damaged?); refit it with failup train"
                        .into(),
                });
            }
        }
        let dim = engine.encoder().dim();
        self.examples
            .iter()
            .map(|e| {
                let wrong = match ids.iter().position(|i| *i == e.label) {
                    Some(l) if e.embedding.len() == dim => {
                        return Ok((e.id.clone(), l, e.embedding.clone()))
                    }
                    Some(_) => format!(
                        "an embedding of {} numbers, where this model makes {dim}",
                        e.embedding.len()
                    ),
                    None => format!(
                        "the label '{}', which is not one of this taxonomy's ({})",
                        printable(&e.label),
                        ids.join(", ")
                    ),
                };
                Err(Error::Input {
                    file: name.to_string(),
                    line: None,
                    column: None,
                    problem: format!(
                        "its example '{}' has {wrong} (edited or damaged?); refit it with \
                         failup train",
                        printable(&e.id)
                    ),
                })
            })
            .collect()
    }
}

/// A few-shot head fitted on `examples` (`--examples FILE`, embedded) and the prototypes, put
/// in place with the examples for `--explain` to name.
pub fn apply_examples(engine: &mut Engine, examples: Vec<Labelled>) -> Result<()> {
    let head = fit_head(engine, &examples)?;
    let classifier = engine.classifier_mut();
    classifier.set_head(Some(head));
    classifier.set_examples(
        examples
            .into_iter()
            .map(|e| (e.id, e.label, e.embedding))
            .collect(),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{
        label_index, story_key, story_key_as_written, story_key_with_accents, Calibration, Profile,
        PROFILE_FORMAT,
    };

    #[test]
    fn a_story_is_known_again_in_another_case_or_punctuation() {
        let key = story_key("They gave it to Sam.");
        assert_eq!(story_key("  they GAVE it to \u{201c}Sam\u{201d}!"), key);
        assert_ne!(story_key("They gave it to Pat."), key);
        assert_eq!(story_key("Thèy gave it to Sám"), key);
        // What earlier profiles recorded, so their stories are still found.
        assert_eq!(
            story_key_with_accents("Thèy gave it to Sám!"),
            "204652af86f51bbf"
        );
        assert_eq!(
            story_key_as_written(" They gave it to Sam.\n"),
            "2170e146ef72caf6"
        );
    }

    fn calibrated(temperature: f32) -> Profile {
        Profile {
            format: PROFILE_FORMAT,
            failup_version: "0".into(),
            model: "m".into(),
            model_sha256: String::new(),
            model_reading: None,
            precision: None,
            int8_sha256: None,
            long_text: None,
            test_embedder: false,
            taxonomy_sha256: String::new(),
            training_sha256: String::new(),
            training_rows: 1,
            calibration_sha256: Vec::new(),
            calibration_rows: Some(1),
            calibration_stories: Vec::new(),
            calibration: Some(Calibration {
                temperature,
                min_score: 0.0,
                min_margin: 0.0,
                confidence_slope: 1.0,
                confidence_bias: 0.0,
            }),
            head: None,
            examples: Vec::new(),
        }
    }

    /// A profile that load would refuse is not written: the file is not created, and a
    /// sound one is, and loads back as it was.
    #[test]
    fn save_writes_only_what_load_accepts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        let err = calibrated(500.0).save(&path).unwrap_err().to_string();
        assert!(err.contains("would not load again"), "{err}");
        assert!(!path.exists());
        calibrated(0.5).save(&path).unwrap();
        assert_eq!(Profile::load(&path).unwrap(), calibrated(0.5));
        // A number past f32's range reads as infinity, which is told as what it was.
        let text = std::fs::read_to_string(&path).unwrap();
        let huge = text.replacen("\"temperature\":0.5", "\"temperature\":1e308", 1);
        assert_ne!(huge, text);
        std::fs::write(&path, huge).unwrap();
        let err = Profile::load(&path).unwrap_err().to_string();
        assert!(err.contains("temperature is beyond f32's range"), "{err}");
    }

    /// eval finds the calibration's stories by these keys: one that is not a key finds none.
    #[test]
    fn a_calibration_story_key_that_is_not_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        let mut profile = calibrated(0.5);
        profile.calibration_stories = vec![story_key("They gave it to Sam.")];
        profile.save(&path).unwrap();
        assert_eq!(Profile::load(&path).unwrap(), profile);
        for bad in [
            "zz",
            "2170e146ef72caf",
            "2170e146ef72caf6a",
            "2170e146ef72caxz",
        ] {
            profile.calibration_stories = vec![bad.into()];
            let err = profile.save(&path).unwrap_err().to_string();
            assert!(
                err.contains(&format!("calibration_stories hold '{bad}'")),
                "{err}"
            );
        }
    }

    #[test]
    fn labels_match_ids_with_case_spaces_and_hyphens_aside() {
        let ids = ["passed_over", "pivot_regret", "lost_pitch", "other"];
        for (label, want) in [
            ("lost_pitch", Some(2)),
            ("Passed over", Some(0)),
            ("PIVOT-REGRET", Some(1)),
            ("passed  over", Some(0)),
            ("lost - pitch", Some(2)),
            ("Other", Some(3)),
            ("lost pitches", None),
            ("passedover", None),
        ] {
            assert_eq!(label_index(&ids, label).ok(), want, "{label}");
        }
        assert_eq!(label_index(&ids, "passedover"), Err(vec![]));
        // An exact id wins; a loose label that fits two ids fits none, and names both.
        assert_eq!(label_index(&["a_b", "A_B"], "A_B"), Ok(1));
        assert_eq!(label_index(&["a_b", "A_B"], "a b"), Err(vec!["a_b", "A_B"]));
        assert_eq!(
            label_index(&["a_b", "a__b", "c"], "a-b"),
            Err(vec!["a_b", "a__b"])
        );
    }
}
