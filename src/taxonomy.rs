//! The scenarios stories are sorted into, with their prototypes and advice, loaded from TOML.
//!
//! `data/taxonomy.toml` is compiled in as the default; `--taxonomy FILE` replaces it. Loading is
//! strict, because a typo in a hand-edited file should fail loudly rather than quietly change
//! the classifier: unknown keys, empty lists or texts, duplicate ids, bad settings and a
//! missing `other` scenario are all errors that name the line.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use toml::Spanned;

use crate::error::{unsafe_to_show, Error, Result};

/// The taxonomy shipped with failup (the article's three scenarios plus `other`).
pub const DEFAULT_TOML: &str = include_str!("../data/taxonomy.toml");

/// SHA-256 of the built-in taxonomy's text, lowercase hex.
pub fn builtin_sha256() -> String {
    hex::encode(Sha256::digest(DEFAULT_TOML))
}

/// Id of the catch-all scenario every taxonomy must have.
pub const OTHER: &str = "other";

/// The most of a taxonomy file read: the built-in one is under 100 KiB, and a device such as
/// /dev/zero given by mistake would otherwise be read until memory ran out.
const MAX_TAXONOMY_BYTES: u64 = 16 << 20;

/// Reads `path` whole, refusing one of more than `limit` bytes (a file of this `kind` is far
/// smaller, so it is not one; a device never ends) before holding more than that.
pub(crate) fn read_at_most(path: &Path, limit: u64, kind: &str) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut bytes)?;
    match bytes.len() as u64 > limit {
        true => Err(std::io::Error::other(format!(
            "it holds more than {} MiB, far more than any {kind} file; is it the right file?",
            limit >> 20
        ))),
        false => Ok(bytes),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Taxonomy {
    pub classifier: ClassifierSettings,
    /// In file order; this order is also the order of the `score_<id>` output columns.
    pub scenarios: Vec<Scenario>,
}

/// How similarity scores become a verdict; see docs/src/classification.md.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClassifierSettings {
    /// A scenario's score is the mean cosine of the story to its `top_k` closest prototypes.
    pub top_k: usize,
    /// Weight of the sentence evidence in a scenario's score, from 0 (the whole story alone,
    /// as failup first scored) to 1 (its sentences alone); see [`crate::sentences`].
    pub sentence_weight: f32,
    /// A sentence's score for a scenario is its mean cosine to that many closest prototypes.
    pub sentence_top_k: usize,
    /// How sharply a story's sentence scores are pooled: the pool is a soft maximum,
    /// `T · ln(mean(exp(score / T)))`, near the best sentence's score for a small `T` and near
    /// their mean for a large one.
    pub sentence_temperature: f32,
    /// Softmax temperature over scenario scores, for the confidence.
    pub temperature: f32,
    /// Below this best score, a story is `other`.
    pub min_score: f32,
    /// A named scenario must beat `other` by at least this much.
    pub min_margin: f32,
    /// A story whose mean cosine to its `top_k` closest prototypes, before centring, is below
    /// this reads like none of them (a greeting, a recipe, a text not in English): it is
    /// `other`, whatever its scenario scores.
    pub min_relevance: f32,
    /// Subtract the mean of all prototype embeddings before comparing (removes the direction
    /// every career story shares, so the scenario-specific part decides).
    pub center: bool,
    /// Platt recalibration of the winner's softmax probability p: the confidence is
    /// `sigmoid(confidence_slope * logit(p) + confidence_bias)` (1 and 0 leave p unchanged).
    pub confidence_slope: f32,
    pub confidence_bias: f32,
}

impl Default for ClassifierSettings {
    /// The values the built-in taxonomy ships with, for taxonomies that leave them out.
    fn default() -> Self {
        ClassifierSettings {
            top_k: 6,
            sentence_weight: 0.75,
            sentence_top_k: 10,
            sentence_temperature: 0.05,
            temperature: 0.0269,
            min_score: -0.1,
            min_margin: -0.05,
            min_relevance: 0.25,
            center: true,
            confidence_slope: 0.4458,
            confidence_bias: 0.8388,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub id: String,
    pub title: String,
    pub description: String,
    pub headline: String,
    pub advice: Vec<String>,
    pub prototypes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTaxonomy {
    #[serde(default)]
    classifier: ClassifierSettings,
    scenario: Spanned<Vec<RawScenario>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    id: Spanned<String>,
    title: Spanned<String>,
    description: Spanned<String>,
    headline: Spanned<String>,
    advice: Spanned<Vec<String>>,
    prototypes: Spanned<Vec<String>>,
}

/// `text` with each lone `\r` (an old Mac file's line end, which TOML refuses and the CSV
/// reading takes) read as `\n`, byte for byte, so every place keeps its offset.
fn lone_cr_as_lf(text: &str) -> Cow<'_, str> {
    if !text.contains('\r') {
        return Cow::Borrowed(text);
    }
    let after = |i: usize| text.as_bytes().get(i + 1).copied();
    let lf = (text.char_indices())
        .map(|(i, c)| match c == '\r' && after(i) != Some(b'\n') {
            true => '\n',
            false => c,
        })
        .collect::<String>();
    Cow::Owned(lf)
}

/// Where a file that is not a taxonomy's TOML goes wrong, and how, in words for its writer.
fn toml_problem(text: &str, e: &toml::de::Error) -> (Option<Range<usize>>, String) {
    if let Some(at) = single_bracket_scenario(text) {
        let problem = "[scenario] with one bracket is one table, but scenarios are a list: \
                       write each as its own [[scenario]] table, with two brackets";
        return (Some(at..at), problem.into());
    }
    let problem = match e.message().trim() {
        "missing field `scenario`" => "the file defines no scenario: each is a [[scenario]] \
            table with id, title, description, headline, advice and prototypes, and one has id \
            \"other\" (docs/src/taxonomy.md; the built-in data/taxonomy.toml is a start)"
            .to_string(),
        message => {
            let found = e.span().and_then(|s| text.get(s));
            let key = e.span().and_then(|s| key_of_line(text, s.start));
            explained(message, found, key)
        }
    };
    (e.span(), problem)
}

impl RawScenario {
    fn into_scenario(self) -> Scenario {
        Scenario {
            id: self.id.into_inner(),
            title: self.title.into_inner().trim().to_string(),
            description: self.description.into_inner().trim().to_string(),
            headline: self.headline.into_inner().trim().to_string(),
            // An indented `"""` string's spaces would make a code block in Markdown.
            advice: (self.advice.into_inner().iter())
                .map(|a| a.trim().into())
                .collect(),
            prototypes: self.prototypes.into_inner(),
        }
    }
}

impl Taxonomy {
    /// The built-in taxonomy.
    pub fn builtin() -> Taxonomy {
        Taxonomy::parse(DEFAULT_TOML, "built-in data/taxonomy.toml")
            .expect("the built-in taxonomy is checked by the test suite")
    }

    /// Loads `path`, or the built-in taxonomy when `path` is None.
    pub fn load(path: Option<&Path>) -> Result<Taxonomy> {
        Taxonomy::load_hashed(path).map(|(taxonomy, _)| taxonomy)
    }

    /// [`Taxonomy::load`], with the SHA-256 of the file's bytes (lowercase hex), taken from the
    /// one read: a taxonomy given through a pipe cannot be read a second time for its hash.
    pub fn load_hashed(path: Option<&Path>) -> Result<(Taxonomy, String)> {
        match path {
            None => Ok((Taxonomy::builtin(), builtin_sha256())),
            Some(p) => {
                let name = p.display().to_string();
                let bytes = read_at_most(p, MAX_TAXONOMY_BYTES, "taxonomy").map_err(|e| {
                    Error::Taxonomy {
                        source_name: name.clone(),
                        line: None,
                        column: None,
                        problem: match p == Path::new("-") && !p.exists() {
                            // Standard input may be the stories'; one stream cannot be both.
                            true => "`-` names no file here; for a taxonomy on standard input, \
                                 give /dev/stdin"
                                .into(),
                            false => format!("cannot read the file: {e}"),
                        },
                    }
                })?;
                let sha256 = hex::encode(Sha256::digest(&bytes));
                let text = String::from_utf8(bytes).map_err(|e| not_utf8(&name, &e))?;
                Ok((Taxonomy::parse(&text, &name)?, sha256))
            }
        }
    }

    /// Parses and validates TOML text; `name` is used in error messages.
    pub fn parse(text: &str, name: &str) -> Result<Taxonomy> {
        let text = &*lone_cr_as_lf(text);
        let fail = |span: Option<Range<usize>>, problem: String| Error::Taxonomy {
            source_name: name.to_string(),
            line: span.as_ref().map(|s| line_of(text, s.start)),
            column: span.map(|s| column_of(text, s.start)),
            problem,
        };
        let raw: RawTaxonomy = toml::from_str(text).map_err(|e| {
            let (span, problem) = toml_problem(text, &e);
            fail(span, problem)
        })?;
        let located = |(span, problem): Problem| fail(span, problem);
        let c = raw.classifier;
        check_settings(&c, text).map_err(located)?;

        let mut seen = HashSet::new();
        let mut prototypes = HashMap::new();
        let mut scenarios = Vec::new();
        for s in raw.scenario.into_inner() {
            check_scenario(&s).map_err(located)?;
            check_lists(&s).map_err(located)?;
            let id = s.id.get_ref();
            if !seen.insert(id.clone()) {
                return Err(fail(
                    Some(s.id.span()),
                    format!("duplicate scenario id '{id}'"),
                ));
            }
            check_prototype_repeats(&s, &mut prototypes).map_err(located)?;
            scenarios.push(s.into_scenario());
        }
        if !seen.contains(OTHER) {
            return Err(fail(
                None,
                format!("no scenario with id = \"{OTHER}\"; add one for stories that fit none of the others"),
            ));
        }
        if scenarios.len() < 2 {
            return Err(fail(
                None,
                "a taxonomy needs at least one scenario besides 'other'".into(),
            ));
        }
        Ok(Taxonomy {
            classifier: c,
            scenarios,
        })
    }

    /// Why scenarios are scored over different numbers of prototypes, if they are: a score is
    /// the mean of a scenario's `top_k` closest prototypes (a sentence's, of its
    /// `sentence_top_k`), or of all it has when it has fewer, and a mean over fewer runs
    /// higher, which favours the scenario that has fewer.
    pub fn uneven_prototype_counts(&self) -> Option<String> {
        let c = &self.classifier;
        let sentences = if c.sentence_weight > 0.0 {
            c.sentence_top_k
        } else {
            0
        };
        let k = c.top_k.max(sentences);
        let most = self.scenarios.iter().map(|s| s.prototypes.len()).max()?;
        let fewer: Vec<&Scenario> = (self.scenarios.iter())
            .filter(|s| s.prototypes.len().min(k) < most.min(k))
            .collect();
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        let (who, them) = match fewer.as_slice() {
            [] => return None,
            [one] => (
                format!(
                    "scenario '{}' has {} prototype{} and another {most}, so it is",
                    one.id,
                    one.prototypes.len(),
                    plural(one.prototypes.len())
                ),
                "it",
            ),
            many => {
                let named: Vec<String> = many
                    .iter()
                    .map(|s| format!("'{}' ({})", s.id, s.prototypes.len()))
                    .collect();
                let named = named.join(", ");
                let who = format!(
                    "scenarios {named} have fewer prototypes than another's {most}, so they \
                     are"
                );
                (who, "them")
            }
        };
        Some(format!(
            "{who} scored on fewer: a score is the mean of a scenario's {k} closest prototypes \
             (top_k {}, sentence_top_k {}), or of all it has when it has fewer, and a mean over \
             fewer runs higher, which favours {them}; give every scenario at least {k}",
            c.top_k, c.sentence_top_k
        ))
    }

    /// SHA-256 of everything in the taxonomy, settings and texts alike (all of it can reach an
    /// output row), written out field by field so it does not change with the struct's layout.
    pub fn content_sha256(&self) -> String {
        let c = &self.classifier;
        let mut h = Sha256::new();
        h.update(format!(
            "top_k={} sentences={},{},{} temperature={} min_score={} min_margin={} \
             min_relevance={} center={} slope={} bias={}\n",
            c.top_k,
            c.sentence_weight,
            c.sentence_top_k,
            c.sentence_temperature,
            c.temperature,
            c.min_score,
            c.min_margin,
            c.min_relevance,
            c.center,
            c.confidence_slope,
            c.confidence_bias
        ));
        for s in &self.scenarios {
            let fields = [&s.id, &s.title, &s.description, &s.headline];
            let lists = [&s.advice, &s.prototypes];
            for text in fields.into_iter().chain(lists.into_iter().flatten()) {
                // Length-prefixed, so no two different taxonomies write the same bytes.
                h.update(format!("{}:", text.len()));
                h.update(text.as_bytes());
            }
            h.update(format!("|{}|{}\n", s.advice.len(), s.prototypes.len()));
        }
        hex::encode(h.finalize())
    }

    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.scenarios.iter().position(|s| s.id == id)
    }

    pub fn other_index(&self) -> usize {
        self.index_of(OTHER).expect("validated on load")
    }

    pub fn ids(&self) -> Vec<&str> {
        self.scenarios.iter().map(|s| s.id.as_str()).collect()
    }

    /// The scenario ids as owned strings, for tables and reports that keep them.
    pub fn labels(&self) -> Vec<String> {
        self.scenarios.iter().map(|s| s.id.clone()).collect()
    }
}

/// Where `key = …` is set in `text`, if it is.
fn key_span(text: &str, key: &str) -> Option<Range<usize>> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let set = line.trim_start().strip_prefix(key);
        if set.is_some_and(|rest| rest.trim_start().starts_with('=')) {
            let indent = line.len() - line.trim_start().len();
            return Some(offset + indent..offset + line.len());
        }
        offset += line.len();
    }
    None
}

/// A control character a shown text may not hold, escaped for the message; line breaks,
/// Windows' included, and tabs are text. A lone `\r` (written `\r` in a TOML string) is not:
/// a terminal goes back to the line's start and prints the rest over what came before.
fn control_character(text: &str) -> Option<String> {
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let line_break = c == '\r' && chars.peek() == Some(&'\n');
        if unsafe_to_show(c) && !"\n\t".contains(c) && !line_break {
            return Some(c.escape_unicode().to_string());
        }
    }
    None
}

/// TOML is UTF-8 only: an editor's legacy encoding is told where it shows, with its fix.
fn not_utf8(name: &str, e: &std::string::FromUtf8Error) -> Error {
    let start = e.utf8_error().valid_up_to();
    let bytes = e.as_bytes();
    // A byte-order mark, or a NUL beside every ASCII letter.
    let utf16 = bytes.starts_with(&[0xFF, 0xFE])
        || bytes.starts_with(&[0xFE, 0xFF])
        || bytes.iter().take(64).filter(|&&b| b == 0).count() > 8;
    let (from, code) = match utf16 {
        true => ("UTF-16", "utf-16"),
        false => ("Latin-1 or Windows-1252", "windows-1252"),
    };
    Error::Taxonomy {
        source_name: name.to_string(),
        line: Some(1 + bytes[..start].iter().filter(|&&b| b == b'\n').count()),
        column: None,
        problem: format!(
            "byte 0x{:02X} is not UTF-8, which a taxonomy must be; save it as UTF-8 (from \
             {from}: iconv -f {code} -t utf-8)",
            bytes[start]
        ),
    }
}

/// Where a line reads `[scenario]`, one bracket short of a scenario of the list.
fn single_bracket_scenario(text: &str) -> Option<usize> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.trim() == "[scenario]" {
            return Some(offset + line.find('[').unwrap_or(0));
        }
        offset += line.len();
    }
    None
}

/// The key set on the line that holds byte `offset` (`id` of `id = 7`), if the line sets one.
fn key_of_line(text: &str, offset: usize) -> Option<&str> {
    let start = text.get(..offset)?.rfind('\n').map_or(0, |i| i + 1);
    let line = &text[start..];
    let key = line.split_once('=')?.0.trim();
    let bare = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    (!key.is_empty() && key.chars().all(bare)).then_some(key)
}

/// The TOML parser's message, with what to do: `found` is the text it points at, and `key`
/// the key set on its line.
fn explained(message: &str, found: Option<&str>, key: Option<&str>) -> String {
    let found = found.map(str::trim).unwrap_or_default();
    // TOML reads a bare 1979-05-27 as a date, which serde is handed as a map.
    if message.starts_with("invalid type: map") && found.starts_with(|c: char| c.is_ascii_digit()) {
        return format!(
            "`{found}` is a date or time in TOML, where this key takes {}; {}",
            message
                .rsplit("expected ")
                .next()
                .unwrap_or("another kind of value"),
            type_fix(message, key)
        );
    }
    if message.starts_with("invalid type:") && !message.contains("as i128") {
        return format!("{message}; {}", type_fix(message, key));
    }
    // serde's words for a count out of range ("invalid value: integer `-1`, expected usize").
    if message.contains("expected usize") || message.contains("as i128") {
        return format!(
            "`{found}` is not a count this setting takes: give a whole number, not a \
             negative one or a fraction"
        );
    }
    if !message.starts_with("duplicate key") {
        return message.to_string();
    }
    if found.contains("scenario") {
        format!("{message} `{found}`: write each scenario as its own [[scenario]] table, with two brackets")
    } else if found.contains("classifier") {
        format!("{message} `{found}`: the file has a [classifier] table already; set the values there, once")
    } else {
        format!("{message} `{found}`: a key is set twice in one table; keep one")
    }
}

/// How to write a value of the type serde expected, from its words ("…, expected a string"),
/// shown on `key`, the key the value was set to, where it is known.
fn type_fix(message: &str, key: Option<&str>) -> String {
    let expected = message.rsplit("expected ").next().unwrap_or_default();
    match (expected, key) {
        ("a sequence", _) => {
            let key = key.unwrap_or("advice");
            format!("this key takes a list: write it in brackets, as {key} = [\"first\", \"second\"]")
        }
        ("a string", Some(key @ ("advice" | "prototypes"))) => format!(
            "each entry of this list is text: write it in quotes, as {key} = [\"first\", \"second\"]"
        ),
        ("a string", Some("id")) => {
            "this key takes text: write it in quotes, as id = \"passed_over\"".into()
        }
        ("a string", key) => {
            let key = key.unwrap_or("title");
            format!("this key takes text: write it in quotes, as {key} = \"Passed over\"")
        }
        ("a boolean", _) => "this setting takes true or false, without quotes".into(),
        ("usize", key) => {
            let key = key.unwrap_or("top_k");
            format!("this setting takes a whole number, without quotes, as {key} = 6")
        }
        ("f32", key) => {
            let key = key.unwrap_or("temperature");
            format!("this setting takes a number, without quotes, as {key} = 0.05")
        }
        _ => "docs/src/taxonomy.md says what each key takes".into(),
    }
}

/// 1-based line number of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// 1-based column, in characters, of a byte offset within its line.
fn column_of(text: &str, offset: usize) -> usize {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.rsplit('\n').next().unwrap_or_default();
    line.chars().count() + 1
}

/// A problem found while checking a taxonomy: where in the text (if anywhere), and what.
type Problem = (Option<Range<usize>>, String);

/// The range of the confidence's temperature and slope, in a taxonomy as in a profile: fits
/// find temperatures of 0.001 to 10 and slopes near 1, and far outside it every confidence
/// is pinned to 0 or 1. A confidence bias lies within ± its end.
pub const CONFIDENCE_SCALE: std::ops::RangeInclusive<f32> = 1e-4..=100.0;

/// Checks the [classifier] settings; a problem's place is found by its key in `text`.
fn check_settings(c: &ClassifierSettings, text: &str) -> std::result::Result<(), Problem> {
    // The [classifier] settings are plain numbers; their line is found by their key.
    let setting = |key: &str| key_span(text, key);
    if c.top_k == 0 {
        return Err((
            setting("top_k"),
            "[classifier] top_k must be at least 1".into(),
        ));
    }
    if c.sentence_top_k == 0 {
        return Err((
            setting("sentence_top_k"),
            "[classifier] sentence_top_k must be at least 1".into(),
        ));
    }
    let (low, high) = (CONFIDENCE_SCALE.start(), CONFIDENCE_SCALE.end());
    if !(c.sentence_temperature > 0.0 && c.sentence_temperature.is_finite()) {
        return Err((
            setting("sentence_temperature"),
            "[classifier] sentence_temperature must be a positive number that a 32-bit float \
             holds (about 1e-45 to 3e38)"
                .into(),
        ));
    }
    if !CONFIDENCE_SCALE.contains(&c.temperature) {
        return Err((
            setting("temperature"),
            format!(
                "[classifier] temperature must lie between {low} and {high} (a positive \
                 number; far outside, every confidence is pinned to 0 or 1)"
            ),
        ));
    }
    if !(0.0..=1.0).contains(&c.sentence_weight) {
        return Err((
            setting("sentence_weight"),
            "[classifier] sentence_weight must lie between 0 (whole story only) and 1 \
             (sentences only)"
                .into(),
        ));
    }
    if !CONFIDENCE_SCALE.contains(&c.confidence_slope) {
        return Err((
            setting("confidence_slope"),
            format!(
                "[classifier] confidence_slope must be a positive number from {low} to {high} \
                 (at or below 0 it turns confidences upside down or flat; far above, it \
                 pins them to 0 or 1)"
            ),
        ));
    }
    if !(-high..=*high).contains(&c.confidence_bias) {
        return Err((
            setting("confidence_bias"),
            format!(
                "[classifier] confidence_bias must lie between -{high} and {high} (far \
                 outside, every confidence is pinned to 0 or 1)"
            ),
        ));
    }
    for (key, v) in [
        ("min_score", c.min_score),
        ("min_margin", c.min_margin),
        ("min_relevance", c.min_relevance),
    ] {
        if !(-1.0..=1.0).contains(&v) {
            return Err((
                setting(key),
                format!("[classifier] {key} must lie between -1 and 1 (it is a cosine)"),
            ));
        }
    }
    Ok(())
}

/// Checks one scenario's id and the texts shown of it (title, description, headline,
/// advice).
fn check_scenario(s: &RawScenario) -> std::result::Result<(), Problem> {
    let id = s.id.get_ref();
    if id.is_empty()
        || !id
            .chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_')
    {
        return Err((
            Some(s.id.span()),
            // Escaped: a terminal's escape codes in the id would act, not show.
            format!(
                "scenario id '{}' must be lowercase letters, digits and '_' (it names \
                 output columns)",
                id.escape_debug()
            ),
        ));
    }
    // Shown on terminals and in reports as written: a terminal's escape codes, or a
    // mark that reverses the text after it, must not be in them.
    let shown = s
        .advice
        .get_ref()
        .iter()
        .map(|a| ("advice", a, s.advice.span()));
    for (key, text, span) in [
        ("title", s.title.get_ref(), s.title.span()),
        ("description", s.description.get_ref(), s.description.span()),
        ("headline", s.headline.get_ref(), s.headline.span()),
    ]
    .into_iter()
    .chain(shown)
    {
        // An empty advice entry is told with the lists' checks below.
        let one_line = key == "title" || key == "headline";
        let problem = if key != "advice" && text.trim().is_empty() {
            format!("{key} is empty")
        } else if one_line && text.trim().contains(['\n', '\r', '\u{2028}', '\u{2029}']) {
            format!("{key} holds a line break, but is shown on one line; join its lines")
        } else if let Some(c) = control_character(text) {
            format!("{key} holds the control character {c}; remove it")
        } else {
            continue;
        };
        return Err((Some(span), format!("scenario '{id}': {problem}")));
    }
    Ok(())
}

/// Checks a scenario's advice and prototype lists: no empty list or entry, and no prototype
/// the model cannot read or a terminal would act on.
fn check_lists(s: &RawScenario) -> std::result::Result<(), Problem> {
    let id = s.id.get_ref();
    // Prototypes are shown too (`categories --prototypes`, `--explain`); a long list's
    // line alone would not find the one, so it is named by its place and first words.
    let mut listed = s.prototypes.get_ref().iter().enumerate();
    if let Some((i, p, c)) = listed.find_map(|(i, p)| control_character(p).map(|c| (i, p, c))) {
        let opening: String = p.split_whitespace().take(6).collect::<Vec<_>>().join(" ");
        return Err((
            Some(s.prototypes.span()),
            format!(
                "scenario '{id}': prototype {} of the list (\"{}…\") holds the control \
                 character {c}; remove it",
                i + 1,
                opening.escape_debug()
            ),
        ));
    }
    for (key, list) in [("advice", &s.advice), ("prototypes", &s.prototypes)] {
        if list.get_ref().is_empty() {
            return Err((
                Some(list.span()),
                format!("scenario '{id}': {key} is an empty list; give at least one entry"),
            ));
        }
        if list.get_ref().iter().any(|t| t.trim().is_empty()) {
            return Err((
                Some(list.span()),
                format!("scenario '{id}': {key} has an empty entry"),
            ));
        }
    }
    // Emoji or symbols alone: the model reads nothing of them, and the commands that
    // embed prototypes would fail without naming this file.
    let prototypes_list = &s.prototypes;
    if let Some(p) = prototypes_list
        .get_ref()
        .iter()
        .find(|p| !p.chars().any(char::is_alphanumeric))
    {
        return Err((
            Some(prototypes_list.span()),
            format!(
                "scenario '{id}': the prototype \"{}\" has no letter or digit, so the \
                 model would read nothing of it; write it in words",
                p.escape_debug()
            ),
        ));
    }
    Ok(())
}

/// Refuses a prototype given twice, in this scenario or another. `prototypes` maps each one
/// met so far, as the model reads it (its tokenizer lowercases and splits on spaces of any
/// kind and length), to its scenario and its text as written: one in two scenarios ties them
/// on every story like it, and one given twice counts twice.
fn check_prototype_repeats(
    s: &RawScenario,
    prototypes: &mut HashMap<String, (String, String)>,
) -> std::result::Result<(), Problem> {
    let id = s.id.get_ref();
    for p in s.prototypes.get_ref() {
        let key = p.split_whitespace().collect::<Vec<_>>().join(" ");
        let entry = (id.clone(), p.trim().to_string());
        if let Some((first, as_written)) = prototypes.insert(key.to_lowercase(), entry) {
            let place = match first == *id {
                true => "twice in this scenario".to_string(),
                false => format!("in scenario '{first}' too"),
            };
            let like = match as_written == p.trim() {
                true => String::new(),
                false => format!(" (as \"{as_written}\": the model reads case and spacing alike)"),
            };
            return Err((
                Some(s.prototypes.span()),
                format!(
                    "scenario '{id}': the prototype \"{}\" is given {place}{like}; give \
                     each prototype once, in the scenario it belongs to",
                    p.trim()
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file past the limit is refused before more than the limit is held; a device that
    /// never ends (/dev/zero given by mistake) is such a file.
    #[test]
    fn reading_stops_past_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ten.toml");
        std::fs::write(&path, b"0123456789").unwrap();
        assert_eq!(read_at_most(&path, 10, "taxonomy").unwrap(), b"0123456789");
        let e = read_at_most(&path, 9, "taxonomy").unwrap_err().to_string();
        assert!(e.contains("far more than any taxonomy file"), "{e}");
        #[cfg(unix)]
        assert!(read_at_most(Path::new("/dev/zero"), 1 << 20, "profile").is_err());
    }

    fn err_of(text: &str) -> String {
        Taxonomy::parse(text, "t.toml").unwrap_err().to_string()
    }

    const GOOD: &str = r#"
[classifier]
top_k = 2
temperature = 0.05
min_score = 0.3
min_margin = 0.0

[[scenario]]
id = "a"
title = "A"
description = "about a"
headline = "do a"
advice = ["x"]
prototypes = ["p1", "p2"]

[[scenario]]
id = "other"
title = "Other"
description = "the rest"
headline = "do the rest"
advice = ["y"]
prototypes = ["p3"]
"#;

    /// serde's "invalid value: integer `-1`, expected usize" is said in words, on its line.
    #[test]
    fn a_count_out_of_range_is_told_in_words() {
        for bad in ["-1", "99999999999999999999"] {
            let e = err_of(&GOOD.replace("top_k = 2", &format!("top_k = {bad}")));
            assert!(
                e.contains(":3:") && e.contains(&format!("`{bad}` is not a count")),
                "{e}"
            );
            assert!(!e.contains("usize") && !e.contains("i128"), "{e}");
        }
    }

    /// A scenario with fewer prototypes than the means take is scored on fewer, which favours
    /// it: told when the counts differ below that number, not when all scenarios are alike.
    #[test]
    fn scenarios_scored_on_fewer_prototypes_are_pointed_out() {
        let t = Taxonomy::parse(GOOD, "t.toml").unwrap();
        let said = t.uneven_prototype_counts().expect("1 prototype against 2");
        assert!(
            said.starts_with("scenario 'other' has 1 prototype and another 2")
                && said.contains("(top_k 2, sentence_top_k 10)")
                && said.contains("give every scenario at least 10"),
            "{said}"
        );
        // Every scenario short of the most is named, not only the one with the fewest.
        let three = GOOD.replace(
            "prototypes = [\"p3\"]",
            "prototypes = [\"p3\"]\n\n[[scenario]]\nid = \"c\"\ntitle = \"C\"\n\
             description = \"c\"\nheadline = \"do c\"\nadvice = [\"c\"]\nprototypes = [\"p7\"]",
        );
        let said = (Taxonomy::parse(&three, "t.toml").unwrap())
            .uneven_prototype_counts()
            .unwrap();
        assert!(
            said.starts_with(
                "scenarios 'other' (1), 'c' (1) have fewer prototypes than another's 2"
            ),
            "{said}"
        );
        let even = GOOD.replace("prototypes = [\"p3\"]", "prototypes = [\"p3\", \"p4\"]");
        assert_ne!(even, GOOD);
        assert_eq!(
            Taxonomy::parse(&even, "t.toml")
                .unwrap()
                .uneven_prototype_counts(),
            None
        );
        // Read whole only, the means take top_k's 2, which both scenarios have.
        let whole = even.replace("top_k = 2", "top_k = 2\nsentence_weight = 0.0");
        let whole = whole.replace(
            "prototypes = [\"p3\", \"p4\"]",
            "prototypes = [\"p3\", \"p4\", \"p5\"]",
        );
        assert_eq!(
            Taxonomy::parse(&whole, "t.toml")
                .unwrap()
                .uneven_prototype_counts(),
            None
        );
        assert_eq!(Taxonomy::builtin().uneven_prototype_counts(), None);
    }

    #[test]
    fn builtin_taxonomy_has_the_articles_scenarios() {
        let t = Taxonomy::builtin();
        assert_eq!(
            t.ids(),
            ["passed_over", "pivot_regret", "lost_pitch", "other"]
        );
        for s in &t.scenarios {
            assert!(s.prototypes.len() >= 10, "{} has too few prototypes", s.id);
            assert!(s.advice.len() >= 3, "{} has too little advice", s.id);
        }
    }

    #[test]
    fn defaults_match_the_builtin_settings() {
        assert_eq!(
            Taxonomy::builtin().classifier,
            ClassifierSettings::default()
        );
    }

    #[test]
    fn parses_a_small_valid_file() {
        let t = Taxonomy::parse(GOOD, "t.toml").unwrap();
        assert_eq!(t.ids(), ["a", "other"]);
        assert_eq!(t.classifier.top_k, 2);
        assert_eq!(t.other_index(), 1);
    }

    #[test]
    fn unknown_key_names_its_line() {
        let bad = GOOD.replace(
            "headline = \"do a\"",
            "headline = \"do a\"\ncolour = \"red\"",
        );
        let e = err_of(&bad);
        assert!(e.contains("t.toml:13") && e.contains("colour"), "{e}");
    }

    #[test]
    fn duplicate_id_names_its_line() {
        let bad = GOOD.replace("id = \"other\"", "id = \"a\"");
        let e = err_of(&bad);
        assert!(e.contains("t.toml:17") && e.contains("duplicate"), "{e}");
    }

    #[test]
    fn empty_list_names_its_line() {
        let bad = GOOD.replace("prototypes = [\"p1\", \"p2\"]", "prototypes = []");
        let e = err_of(&bad);
        assert!(e.contains("t.toml:14") && e.contains("empty list"), "{e}");
    }

    #[test]
    fn a_prototype_given_twice_names_its_line_and_scenarios() {
        let across = GOOD.replace("prototypes = [\"p3\"]", "prototypes = [\" p1\"]");
        let e = err_of(&across);
        assert!(
            e.contains("t.toml:22") && e.contains("\"p1\" is given in scenario 'a' too"),
            "{e}"
        );
        let within = GOOD.replace("[\"p1\", \"p2\"]", "[\"p1\", \"p1\"]");
        assert!(err_of(&within).contains("twice in this scenario"));
        // The model lowercases and splits on whitespace, so these are one prototype too.
        let alike = GOOD.replace("[\"p1\", \"p2\"]", "[\"a b\", \"A \\t b\"]");
        let e = err_of(&alike);
        assert!(
            e.contains("\"A \t b\" is given twice in this scenario (as \"a b\": the model reads"),
            "{e}"
        );
    }

    #[test]
    fn a_taxonomy_not_in_utf8_names_the_line_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latin1.toml");
        // "café" in Latin-1: é is the one byte 0xE9, written in place of a stand-in.
        let latin1 = GOOD.replace("p3", "caf\u{1}");
        let bytes: Vec<u8> = latin1
            .bytes()
            .map(|b| if b == 1 { 0xE9 } else { b })
            .collect();
        std::fs::write(&path, bytes).unwrap();
        let e = Taxonomy::load(Some(&path)).unwrap_err().to_string();
        let line = GOOD[..GOOD.find("p3").unwrap()].lines().count();
        assert!(
            e.contains(&format!("latin1.toml:{line}:")) && e.contains("0xE9 is not UTF-8"),
            "{e}"
        );
        assert!(e.contains("iconv -f windows-1252"), "{e}");
        let utf16: Vec<u8> = "\u{feff}[classifier]\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        std::fs::write(&path, utf16).unwrap();
        let e = Taxonomy::load(Some(&path)).unwrap_err().to_string();
        assert!(
            e.contains("latin1.toml:1:") && e.contains("iconv -f utf-16"),
            "{e}"
        );
    }

    #[test]
    fn a_dash_for_the_taxonomy_points_to_dev_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let here = std::env::current_dir().unwrap();
        // Relative to the test's own folder, where no file is named `-`.
        assert!(!here.join("-").exists());
        let e = Taxonomy::load(Some(Path::new("-")))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("for a taxonomy on standard input, give /dev/stdin"),
            "{e}"
        );
        let named = dir.path().join("missing.toml");
        let e = Taxonomy::load(Some(&named)).unwrap_err().to_string();
        assert!(e.contains("cannot read the file"), "{e}");
    }

    #[test]
    fn a_line_break_in_a_title_or_headline_is_an_error() {
        let broken = GOOD.replace("title = \"A\"", "title = \"A\\nB\"");
        assert_ne!(broken, GOOD);
        assert!(err_of(&broken).contains("title holds a line break"));
        for separator in ["\\u2028", "\\u2029"] {
            let unicode = GOOD.replace(
                "headline = \"do a\"",
                &format!("headline = \"do{separator}a\""),
            );
            assert!(
                err_of(&unicode).contains("headline holds a line break"),
                "{separator}"
            );
        }
        let trailing = GOOD.replace("title = \"A\"", "title = \"A\\n\"");
        assert!(Taxonomy::parse(&trailing, "t.toml").is_ok());
    }

    #[test]
    fn control_characters_in_shown_texts_are_errors() {
        let escape = GOOD.replace("title = \"A\"", "title = \"A\\u001b[31m\"");
        let e = err_of(&escape);
        assert!(
            e.contains("t.toml:") && e.contains("title holds the control character \\u{1b}"),
            "{e}"
        );
        let id = GOOD.replacen("id = \"a\"", "id = \"a\\u001b[31m\"", 1);
        assert_ne!(id, GOOD);
        assert!(
            err_of(&id).contains("scenario id 'a\\u{1b}[31m' must be"),
            "{}",
            err_of(&id)
        );
        let reversed = GOOD.replace("advice = [\"x\"]", "advice = [\"x\\u202e\"]");
        assert!(err_of(&reversed).contains("advice holds the control character \\u{202e}"));
        let escape = GOOD.replacen("prototypes = [\"", "prototypes = [\"cut\\u001b[2J ", 1);
        assert_ne!(escape, GOOD);
        assert!(
            err_of(&escape).contains("prototype 1 of the list (\"cut\\u{1b}[2J")
                && err_of(&escape).contains("holds the control character \\u{1b}"),
            "{}",
            err_of(&escape)
        );
        // A line break in advice is text, not a control code to refuse, saved on Windows too.
        let lines = GOOD.replace("advice = [\"x\"]", "advice = [\"x\\r\\ny\"]");
        assert!(Taxonomy::parse(&lines, "t.toml").is_ok());
        // A lone carriage return would print the rest of the text over its start.
        let over = GOOD.replace("advice = [\"x\"]", "advice = [\"Sign now.\\rNever sign.\"]");
        assert_ne!(over, GOOD);
        assert!(err_of(&over).contains("advice holds the control character \\u{d}"));
        let described = GOOD.replacen("description = \"", "description = \"x\\ry ", 1);
        assert_ne!(described, GOOD);
        assert!(err_of(&described).contains("description holds the control character \\u{d}"));
    }

    /// Advice written in an indented multi-line string keeps none of its indent: Markdown
    /// would read four spaces as a code block.
    #[test]
    fn advice_is_trimmed_as_the_other_texts_are() {
        let indented = GOOD.replace(
            "advice = [\"x\"]",
            "advice = [\"\"\"\n    Ask why.\n    \"\"\"]",
        );
        assert_ne!(indented, GOOD);
        let t = Taxonomy::parse(&indented, "t.toml").unwrap();
        assert_eq!(t.scenarios[0].advice, ["Ask why."]);
    }

    #[test]
    fn a_prototype_without_a_letter_or_digit_is_an_error_naming_its_list() {
        let emoji = GOOD.replacen("prototypes = [\"", "prototypes = [\"\u{1F600} !\", \"", 1);
        assert_ne!(emoji, GOOD);
        let e = err_of(&emoji);
        assert!(
            e.contains("t.toml:") && e.contains("has no letter or digit"),
            "{e}"
        );
    }

    #[test]
    fn missing_other_is_an_error() {
        let bad = GOOD.replace("id = \"other\"", "id = \"b\"");
        assert!(err_of(&bad).contains("no scenario with id = \"other\""));
    }

    #[test]
    fn bad_settings_are_errors() {
        assert!(err_of(&GOOD.replace("top_k = 2", "top_k = 0")).contains("top_k"));
        assert!(
            err_of(&GOOD.replace("temperature = 0.05", "temperature = 0.0"))
                .contains("temperature")
        );
        assert!(err_of(&GOOD.replace("min_score = 0.3", "min_score = 3.0")).contains("min_score"));
        for relevance in ["1.5", "nan", "-2.0"] {
            let bad = GOOD.replace(
                "min_score = 0.3",
                &format!("min_score = 0.3\nmin_relevance = {relevance}"),
            );
            assert!(
                err_of(&bad).contains("min_relevance must lie between -1 and 1"),
                "{relevance}"
            );
        }
        // As a profile's calibration is held: a slope at or below 0 flattens or inverts.
        for slope in ["0.0", "-3.0"] {
            let bad = GOOD.replace(
                "min_score = 0.3",
                &format!("min_score = 0.3\nconfidence_slope = {slope}"),
            );
            assert!(err_of(&bad).contains("confidence_slope must be a positive number"));
        }
        // A bias past a 32-bit float's range is named alone, the slope being fine.
        let bad = GOOD.replace(
            "min_score = 0.3",
            "min_score = 0.3\nconfidence_bias = 1e300",
        );
        let e = err_of(&bad);
        assert!(
            e.contains("confidence_bias must lie between -100 and 100")
                && !e.contains("confidence_slope"),
            "{e}"
        );
        // Values that pin every confidence to 0 or 1 are refused, as a profile refuses them.
        for (setting, key) in [
            (
                "confidence_slope = 3e38",
                "confidence_slope must be a positive number from",
            ),
            (
                "confidence_bias = -3e38",
                "confidence_bias must lie between",
            ),
            (
                "confidence_bias = 101.0",
                "confidence_bias must lie between",
            ),
        ] {
            let bad = GOOD.replace("min_score = 0.3", &format!("min_score = 0.3\n{setting}"));
            assert!(err_of(&bad).contains(key), "{setting}: {}", err_of(&bad));
        }
        let cold = GOOD.replace("temperature = 0.05", "temperature = 1e-30");
        assert!(err_of(&cold).contains("temperature must lie between 0.0001 and 100"));
        let fine = GOOD.replace(
            "min_score = 0.3",
            "min_score = 0.3\nconfidence_bias = -100.0",
        );
        assert!(Taxonomy::parse(&fine, "t.toml").is_ok());
    }

    /// Lines ended by a lone `\r` (old Mac files) are read as the CSV reading reads them, and
    /// a problem's line is counted by them.
    #[test]
    fn lines_ended_by_a_lone_carriage_return_are_read() {
        let mac = GOOD.replace('\n', "\r");
        let t = Taxonomy::parse(&mac, "t.toml").unwrap();
        assert_eq!(t.scenarios.len(), 2);
        let e = err_of(&GOOD.replace("top_k = 2", "top_k = -1").replace('\n', "\r"));
        assert!(e.contains(":3:"), "{e}");
        // CRLF as before.
        assert!(Taxonomy::parse(&GOOD.replace('\n', "\r\n"), "t.toml").is_ok());
    }

    /// A setting out of range names its line, as a wrong type does.
    #[test]
    fn bad_settings_name_their_line() {
        let bad = GOOD.replace("min_score = 0.3", "min_score = 3.0");
        assert!(err_of(&bad).starts_with("taxonomy t.toml:5:1: [classifier] min_score"));
        let bad = GOOD.replace("top_k = 2", "  top_k = 0");
        assert!(err_of(&bad).starts_with("taxonomy t.toml:3:3: [classifier] top_k"));
    }

    /// A syntax error names its column too, counted in characters.
    #[test]
    fn a_syntax_error_names_its_line_and_column() {
        let bad = GOOD.replacen("title = \"A\"", "title = \"Á\" x", 1);
        assert_ne!(bad, GOOD);
        let e = err_of(&bad);
        let line = 1 + bad[..bad.find("title = \"Á\" x").unwrap()]
            .matches('\n')
            .count();
        assert!(
            e.starts_with(&format!("taxonomy t.toml:{line}:13: ")),
            "{e}"
        );
    }

    /// "duplicate key" alone does not say which, nor what the slip most likely was.
    #[test]
    fn a_duplicate_key_says_which_and_what_to_do() {
        let twice = GOOD.replace(
            "headline = \"do a\"",
            "headline = \"do a\"\nheadline = \"b\"",
        );
        let said = err_of(&twice);
        assert!(
            said.contains("`headline`: a key is set twice in one table"),
            "{said}"
        );
        let table = GOOD.replacen("[[scenario]]", "[scenario]", 1);
        let said = err_of(&table);
        assert!(said.contains("with two brackets"), "{said}");
        let appended = format!("{GOOD}\n[classifier]\ntop_k = 3\n");
        let said = err_of(&appended);
        assert!(said.contains("has a [classifier] table already"), "{said}");
    }

    /// A value of the wrong type gets serde's words and how to write the right one.
    #[test]
    fn a_value_of_the_wrong_type_says_how_to_write_it() {
        let cases = [
            (
                "advice = [\"x\"]",
                "advice = \"x\"",
                "13:10",
                "write it in brackets",
            ),
            (
                "title = \"A\"",
                "title = 5",
                "10:9",
                "in quotes, as title = \"Passed",
            ),
            (
                "id = \"a\"",
                "id = 7",
                "9:6",
                "in quotes, as id = \"passed_over\"",
            ),
            (
                "advice = [\"x\"]",
                "advice = [true]",
                "13:11",
                "each entry of this list is text: write it in quotes, as advice = [",
            ),
            (
                "top_k = 2",
                "top_k = \"2\"",
                "3:9",
                "whole number, without quotes",
            ),
            (
                "temperature = 0.05",
                "temperature = \"0.05\"",
                "4:15",
                "a number, without",
            ),
            (
                "[classifier]",
                "[classifier]\ncenter = 1",
                "3:10",
                "true or false",
            ),
        ];
        for (from, to, at, says) in cases {
            let said = err_of(&GOOD.replacen(from, to, 1));
            assert!(
                said.contains(&format!("t.toml:{at}: invalid type")),
                "{said}"
            );
            assert!(said.contains(says), "{to}: {said}");
        }
        let date = err_of(&GOOD.replacen("top_k = 2", "top_k = 1979-05-27", 1));
        assert!(
            date.contains("`1979-05-27` is a date or time in TOML, where this key takes usize")
                && date.contains("as top_k = 6"),
            "{date}"
        );
    }

    /// A lone `[scenario]` table (the TOML reader says only "expected a sequence") and a file
    /// with no scenario at all are told in the taxonomy's own words, with the line.
    #[test]
    fn a_single_bracket_scenario_and_no_scenario_say_what_to_write() {
        let only = "[classifier]\ntop_k = 6\n\n[scenario]\nid = \"other\"\n";
        let said = err_of(only);
        assert!(
            said.contains(
                "t.toml:4:1: [scenario] with one bracket is one table, but scenarios are a list"
            ),
            "{said}"
        );
        let said = err_of("");
        assert!(said.contains("the file defines no scenario"), "{said}");
    }

    #[test]
    fn bad_id_is_an_error() {
        assert!(err_of(&GOOD.replace("id = \"a\"", "id = \"A b\"")).contains("lowercase"));
    }
}
