//! The statistics behind every report format: a streaming [`SummaryBuilder`] that takes one
//! [`ReportRow`] at a time and a [`Summary`] that is the JSON report's schema.
//!
//! State kept per row is small and fixed: the story's token and word counts (for medians) and
//! its confidence (for the per-scenario median). Everything else is bounded: the ids of empty
//! or errored rows are listed up to [`MAX_LISTED_IDS`], the representative and least certain
//! stories live in heaps of `top` entries per scenario, and `--group-by` counts each distinct
//! value (the report shows the first [`MAX_GROUPS`] of them by first row and pools the rest).
//! A file of a million rows needs some tens of megabytes.
//!
//! The builder's state is also a partial summary (`classify --summary-out`): the states of
//! the shards of one input merge ([`SummaryBuilder::merge`]) into exactly the state one run
//! over the whole input reaches, whatever the order, so their reports are identical.
//!
//! Every figure is rounded to four decimals when the summary is finished, so all formats show
//! the same numbers and the JSON is byte-identical for the same input.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap};

use serde::{Deserialize, Serialize};
use unicode_segmentation::UnicodeSegmentation;

use crate::input::unsafe_to_show;
use crate::record::Classified;
use crate::taxonomy::{Scenario, Taxonomy, OTHER};

/// Version of the JSON report's schema (docs/report-schema.md); bumped on any change
/// that could break a reader.
pub const SCHEMA_VERSION: u32 = 1;

/// z for a two-sided 95% interval.
pub const Z_95: f64 = 1.96;

/// A story whose confidence is below this line is counted as low-confidence. Confidence is
/// calibrated as the chance that the verdict is right, so below 0.7 about one such verdict in
/// three is expected to be wrong: the stories worth a second look. (The line was 0.5, which the
/// shipped calibration never goes below with four scenarios: a winner has at least a quarter of
/// the probability, which it maps to about 0.59.)
pub const LOW_CONFIDENCE: f64 = 0.7;

/// Confidence histograms have this many bins of equal width over [0, 1]; each bin is
/// [lo, hi) except the last, which is closed, [0.9, 1.0].
pub const HISTOGRAM_BINS: usize = 10;

/// Representative and least certain stories shown per scenario (`--top`).
pub const DEFAULT_TOP: usize = 3;

/// A group with fewer classified stories than this is flagged as small: its shares are
/// too uncertain to compare (`--min-group-size`).
pub const DEFAULT_MIN_GROUP_SIZE: u64 = 20;

/// Story texts in the report are shortened to about this many characters.
pub const STORY_CHARS: usize = 200;

/// Ids listed for empty, errored or flagged rows; the count is always exact.
pub const MAX_LISTED_IDS: usize = 100;

/// Distinct `--group-by` values given a row of their own: the largest, ties going to the first
/// to appear; rows of the smaller ones past them are pooled into one overflow row, so a column
/// with a value per row still makes a readable summary.
pub const MAX_GROUPS: usize = 1000;

/// One classified row, as the report needs it. `category` and `runner_up` are indexes into
/// the taxonomy's scenarios; `confidence` and `margin` only mean something when `category`
/// is set.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRow {
    /// 1-based data row in the whole input.
    pub row: u64,
    pub id: String,
    pub category: Option<usize>,
    pub confidence: f32,
    pub runner_up: Option<usize>,
    pub margin: f32,
    pub tokens: u64,
    pub truncated: bool,
    /// A second scenario the story carries too (the `also` column), when the input has one.
    pub also: Option<usize>,
    /// `ok`, `empty`, `malformed`, `invalid_utf8`, or any later status.
    pub status: String,
    /// The story, when the input carries it.
    pub text: Option<String>,
    /// The sentence that decided the scenario, when classify ran with `--explain`.
    pub evidence: Option<String>,
    /// The value of the `--group-by` column.
    pub group: Option<String>,
}

impl ReportRow {
    /// The report row for one row of the classify pipeline, with the confidence and margin
    /// rounded to the four decimals `classify` writes, so `classify --report` and `report`
    /// on the written file give the same figures.
    pub fn from_classified(
        row: &Classified,
        taxonomy: &Taxonomy,
        text: Option<&str>,
        evidence: Option<String>,
        group: Option<&str>,
    ) -> ReportRow {
        let v = row.verdict.as_ref();
        let n = taxonomy.scenarios.len();
        ReportRow {
            row: row.story.row,
            id: row.story.id.clone(),
            category: v.map(|v| v.category).filter(|&c| c < n),
            confidence: v.map_or(0.0, |v| as_written(v.confidence)),
            runner_up: v.map(|v| v.runner_up).filter(|&c| c < n),
            margin: v.map_or(0.0, |v| as_written(v.margin)),
            tokens: row.tokens as u64,
            truncated: row.truncated,
            also: v.and_then(|v| v.also).filter(|&c| c < n),
            status: row.status.as_str().to_string(),
            text: text.map(str::to_string),
            evidence,
            group: group.map(str::to_string),
        }
    }
}

/// A value as `classify` writes it: four decimals.
fn as_written(x: f32) -> f32 {
    format!("{x:.4}").parse().unwrap_or(x)
}

/// How the summary is built.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryOptions {
    /// Name of the column rows are grouped by (`--group-by`), if any.
    pub group_by: Option<String>,
    /// Name of the column the story texts came from, if the input has one.
    pub text_column: Option<String>,
    /// Representative and least certain stories per scenario.
    pub top: usize,
    /// Groups with fewer classified stories are flagged as small.
    pub min_group_size: u64,
}

impl SummaryOptions {
    /// Each option on which `self` and `other` differ, as "--flag A against B".
    fn differences(&self, other: &SummaryOptions) -> Vec<String> {
        let shown = |c: &Option<String>| c.as_deref().map_or("none".into(), |c| format!("{c:?}"));
        let mut out = Vec::new();
        if self.group_by != other.group_by {
            let (a, b) = (shown(&self.group_by), shown(&other.group_by));
            out.push(format!("--group-by {a} against {b}"));
        }
        if self.text_column != other.text_column {
            let (a, b) = (shown(&self.text_column), shown(&other.text_column));
            out.push(format!("the text column {a} against {b}"));
        }
        // classify always writes the defaults of these two: only an edited summary differs.
        if self.top != other.top {
            let (a, b) = (self.top, other.top);
            out.push(format!("the summary's top-stories count {a} against {b}"));
        }
        if self.min_group_size != other.min_group_size {
            let (a, b) = (self.min_group_size, other.min_group_size);
            out.push(format!("the summary's smallest group size {a} against {b}"));
        }
        out
    }
}

impl Default for SummaryOptions {
    fn default() -> Self {
        SummaryOptions {
            group_by: None,
            text_column: None,
            top: DEFAULT_TOP,
            min_group_size: DEFAULT_MIN_GROUP_SIZE,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The summary: this is the JSON schema (schema_version 1), documented in docs/report-schema.md.

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    pub schema_version: u32,
    pub header: Header,
    pub settings: Settings,
    pub totals: Totals,
    pub scenarios: Vec<ScenarioSummary>,
    /// Present with `--group-by`.
    pub groups: Option<GroupTable>,
}

impl Summary {
    /// Keeps at most `top` of each scenario's representative and least certain stories: a
    /// report of a summary may show fewer than the summary holds (`--top 0`: no story's words).
    pub fn keep_top(&mut self, top: usize) {
        self.settings.top_stories = self.settings.top_stories.min(top);
        for scenario in &mut self.scenarios {
            scenario.representative.truncate(top);
            scenario.least_certain.truncate(top);
        }
    }

    /// Group values that differ only in case, in spaces at their ends (`Sales`, ` sales`),
    /// in how an accented letter is encoded (one character, or a letter and an accent), in
    /// full-width letters (`ＳＡＬＥＳ`) or in invisible characters (a zero-width space): most
    /// often one group typed or pasted two ways, which the report keeps apart and which look
    /// alike in a table.
    pub fn look_alike_groups(&self) -> Vec<Vec<&str>> {
        let Some(table) = &self.groups else {
            return Vec::new();
        };
        let invisible = |c: &char| matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{00AD}');
        let mut alike: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for group in &table.groups {
            use unicode_normalization_alignments::UnicodeNormalization;
            // Compatibility composition folds full-width forms and joins `e` and a combining
            // accent into `é`, so each pair is one key.
            let visible: String = group.value.chars().filter(|c| !invisible(c)).collect();
            let composed: String = visible.trim().nfkc().map(|(c, _)| c).collect();
            let key = composed.to_lowercase();
            alike.entry(key).or_default().push(&group.value);
        }
        alike.into_values().filter(|v| v.len() > 1).collect()
    }
}

/// Enough to reproduce the report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Header {
    pub failup_version: String,
    pub model: String,
    /// How `classify` read the stories; `None` for a report made from a row file, which does
    /// not record it.
    pub reading: Option<Reading>,
    pub taxonomy: TaxonomyInfo,
    pub input: InputInfo,
    /// UTC, RFC 3339 (`SOURCE_DATE_EPOCH` fixes it for reproducible output).
    pub generated_at: String,
    pub text_column: Option<String>,
    pub group_by: Option<String>,
}

/// The settings besides the model and taxonomy that change every verdict.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Reading {
    /// `--precision`: `fp32`, `int8` or `bf16`.
    pub precision: String,
    /// The engine and kernel that ran (`rten-avx512`, `rten-avx2`, `amx`, `amx-fma`, …):
    /// they round alike only to the last digits, so a verdict on the edge can differ.
    pub backend: String,
    /// `--long-text`: `chunk` or `truncate`.
    pub long_text: String,
    /// SHA-256 of the `--profile` file, when one was given.
    pub profile_sha256: Option<String>,
    /// SHA-256 of the `--examples` file, when one was given.
    pub examples_sha256: Option<String>,
}

impl Reading {
    /// One line for a report's header.
    pub fn describe(reading: Option<&Reading>) -> String {
        let Some(r) = reading else {
            return "not recorded (classify --report and --summary-out record it; a row file \
                    does not)"
                .into();
        };
        let short = |h: &str| h.chars().take(12).collect::<String>();
        let few_shot = match (&r.profile_sha256, &r.examples_sha256) {
            (Some(p), _) => format!("profile sha256 {}", short(p)),
            (None, Some(e)) => format!("examples sha256 {}", short(e)),
            (None, None) => "zero-shot".into(),
        };
        format!(
            "{} on {}, --long-text {}, {few_shot}",
            r.precision, r.backend, r.long_text
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TaxonomyInfo {
    /// `built-in` or the file given with `--taxonomy`.
    pub name: String,
    /// SHA-256 of the taxonomy's TOML text, lowercase hex.
    pub sha256: String,
}

impl TaxonomyInfo {
    /// The taxonomy read from `path` (`None`: the built-in one), whose text hashes to `sha256`.
    pub fn new(path: Option<&std::path::Path>, sha256: String) -> TaxonomyInfo {
        let name = path.map_or("built-in".into(), |p| p.display().to_string());
        TaxonomyInfo { name, sha256 }
    }

    /// Whether this is the article's taxonomy as shipped (wherever it was read from), whose
    /// scenarios and advice a report may credit to the article; a taxonomy of one's own, or
    /// an edited copy, may say something else.
    pub fn is_the_articles(&self) -> bool {
        self.sha256 == crate::taxonomy::builtin_sha256()
    }

    /// Whose advice a report shows: the article's, or that of the taxonomy file given.
    pub fn advice_source(&self) -> String {
        match self.is_the_articles() {
            true => "the article's advice".into(),
            false => format!("the advice of the taxonomy {}", self.name),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct InputInfo {
    /// The input's file name (`<stdin>` for standard input).
    pub name: String,
    pub rows: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Settings {
    pub confidence_level: f64,
    pub z: f64,
    pub low_confidence_below: f64,
    pub histogram_bins: usize,
    pub histogram_bin_width: f64,
    pub small_group_below: u64,
    pub top_stories: usize,
    pub story_chars: usize,
    pub max_listed_ids: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Totals {
    pub rows: u64,
    /// Rows with a category (`other` included): the denominator of every share.
    pub classified: u64,
    /// Classified rows whose category is `other`.
    pub other: u64,
    /// Rows with `status=empty`: no text, no category.
    pub empty: IdList,
    /// Rows with no category and a status other than `empty` (a failure of some kind).
    pub errored: ErroredRows,
    /// Classified rows that carry a warning status (`malformed`, `invalid_utf8`, …).
    pub flagged: Vec<StatusRows>,
    /// Rows the model saw only the start of.
    pub truncated: u64,
    /// Classified rows that carry a second scenario (`also`).
    pub also: u64,
    /// Those rows by (category, also) pair, most frequent first.
    pub also_pairs: Vec<AlsoPair>,
    /// Story length in words over classified rows; null without story text.
    pub words: Option<Stat>,
    /// Story length in model tokens over classified rows; null with no classified rows.
    pub tokens: Option<Stat>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct IdList {
    pub count: u64,
    /// The first [`MAX_LISTED_IDS`] ids, in input order.
    pub ids: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct ErroredRows {
    pub count: u64,
    pub ids: Vec<String>,
    /// Rows per status.
    pub statuses: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StatusRows {
    pub status: String,
    pub count: u64,
    pub ids: Vec<String>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Stat {
    pub mean: f64,
    pub median: f64,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ScenarioSummary {
    pub id: String,
    pub title: String,
    pub description: String,
    pub headline: String,
    pub advice: Vec<String>,
    pub count: u64,
    /// count / classified; null when nothing was classified.
    pub share: Option<f64>,
    /// 95% Wilson score interval of the share.
    pub share_ci: Option<Interval>,
    pub confidence: ConfidenceSummary,
    /// Highest confidence first.
    pub representative: Vec<StoryRef>,
    /// Smallest margin first.
    pub least_certain: Vec<StoryRef>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ConfidenceSummary {
    pub mean: Option<f64>,
    pub median: Option<f64>,
    /// Stories with confidence below `settings.low_confidence_below`.
    pub low_count: u64,
    /// `histogram_bins` counts; bin i holds [i/10, (i+1)/10), the last bin also 1.0.
    pub histogram: Vec<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoryRef {
    /// 1-based data row in the input.
    pub row: u64,
    pub id: String,
    pub confidence: f64,
    pub margin: f64,
    pub runner_up: Option<String>,
    /// Shortened to about `settings.story_chars` characters; null without story text.
    pub text: Option<String>,
    /// The sentence that decided the scenario, shortened likewise; absent without one (rows
    /// classified without `--explain`, or a story read whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GroupTable {
    pub column: String,
    /// Largest first (ties by value).
    pub groups: Vec<GroupRow>,
    /// Rows of the groups past the [`MAX_GROUPS`] largest, pooled; null if none.
    pub overflow: Option<GroupRow>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GroupRow {
    pub value: String,
    /// Classified stories in the group.
    pub count: u64,
    /// count < settings.small_group_below.
    pub small: bool,
    /// One cell per scenario, in taxonomy order.
    pub cells: Vec<GroupCell>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GroupCell {
    pub scenario: String,
    pub count: u64,
    /// count / the group's count.
    pub share: f64,
}

// ---------------------------------------------------------------------------------------------
// Small statistics.

/// The Wilson score interval for `k` successes in `n` trials at normal quantile `z`; None
/// when `n` is 0.
pub fn wilson(k: u64, n: u64, z: f64) -> Option<Interval> {
    if n == 0 {
        return None;
    }
    let n = n as f64;
    let p = k as f64 / n;
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    Some(Interval {
        low: (centre - half).max(0.0),
        high: (centre + half).min(1.0),
    })
}

/// The histogram bin of a confidence: 10 bins of width 0.1, the last one closed. Works on the
/// value in ten-thousandths, so a written 0.3000 lands in bin 3 whatever its f32 rounding.
pub fn histogram_bin(confidence: f32) -> usize {
    let q = (f64::from(confidence) * 10_000.0)
        .round()
        .clamp(0.0, 10_000.0) as usize;
    (q * HISTOGRAM_BINS / 10_000).min(HISTOGRAM_BINS - 1)
}

/// True when a confidence is below [`LOW_CONFIDENCE`] (compared in ten-thousandths).
pub fn is_low_confidence(confidence: f32) -> bool {
    (f64::from(confidence) * 10_000.0).round() < LOW_CONFIDENCE * 10_000.0
}

/// Median of a list (sorted in place); None when empty.
fn median<T: Copy + PartialOrd + Into<f64>>(values: &mut [T]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(Ordering::Equal));
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2].into()
    } else {
        (values[n / 2 - 1].into() + values[n / 2].into()) / 2.0
    })
}

fn mean<T: Copy + Into<f64>>(values: &[T]) -> Option<f64> {
    if values.is_empty() {
        None
    } else {
        Some(values.iter().map(|&v| v.into()).sum::<f64>() / values.len() as f64)
    }
}

/// Rounds to four decimals, the precision of every figure in the report.
pub fn round4(x: f64) -> f64 {
    let r = (x * 10_000.0).round() / 10_000.0;
    if r == 0.0 {
        0.0 // no "-0.0" in the JSON
    } else {
        r
    }
}

fn stat<T: Copy + PartialOrd + Into<f64>>(values: &mut [T]) -> Option<Stat> {
    Some(Stat {
        mean: round4(mean(values)?),
        median: round4(median(values)?),
    })
}

/// A story's text for the report: whitespace runs (line breaks included) become one space,
/// control characters (which could drive a terminal) are dropped, and text longer than
/// `max` characters is cut at a word boundary near `max` and ends with "…".
pub fn shorten(text: &str, max: usize) -> String {
    let mut clean = String::with_capacity(text.len().min(max * 4 + 8));
    let mut chars = 0usize;
    let mut pending_space = false;
    let mut cut = None;
    for ch in text.chars() {
        if ch.is_whitespace() {
            pending_space = chars > 0;
            continue;
        }
        if unsafe_to_show(ch) {
            continue;
        }
        if pending_space {
            if chars >= max {
                cut = Some(' ');
                break;
            }
            clean.push(' ');
            chars += 1;
            pending_space = false;
        }
        if chars >= max {
            cut = Some(ch);
            break;
        }
        clean.push(ch);
        chars += 1;
    }
    let Some(next) = cut else {
        return clean;
    };
    // A cut inside one visible character (an emoji sequence joined by U+200D, a letter and
    // its accents) would leave half of it: the whole of it goes.
    if let Some((at, last)) = clean.grapheme_indices(true).next_back() {
        if format!("{last}{next}").graphemes(true).count() == 1 {
            clean.truncate(at);
        }
    }
    // Back off to the last space if it is not too far back, so no word is cut in half.
    if let Some(space) = clean.rfind(' ') {
        if clean[space..].chars().count() <= max / 4 {
            clean.truncate(space);
        }
    }
    let trimmed = clean.trim_end_matches([' ', ',', ';', ':', '-']).len();
    clean.truncate(trimmed);
    clean.push('…');
    clean
}

// ---------------------------------------------------------------------------------------------
// Bounded "best n" lists.

/// A candidate for a best-n list: a higher `key` is better, an earlier row wins a tie.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Ranked {
    key: i64,
    row: u64,
    story: StoryRef,
}

impl Ranked {
    fn rank(&self) -> (i64, Reverse<u64>) {
        (self.key, Reverse(self.row))
    }
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.rank() == other.rank()
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        self.rank().cmp(&other.rank())
    }
}

/// Keeps the `n` best candidates seen, in a min-heap of size `n`.
#[derive(Debug, Serialize, Deserialize)]
struct BestN {
    n: usize,
    heap: BinaryHeap<Reverse<Ranked>>,
}

impl BestN {
    fn new(n: usize) -> BestN {
        BestN {
            n,
            // `n` comes from the user (`--top`) and may be far more than there are stories.
            heap: BinaryHeap::with_capacity(n.min(1024) + 1),
        }
    }

    fn stories(&self) -> impl Iterator<Item = &StoryRef> {
        self.heap.iter().map(|Reverse(ranked)| &ranked.story)
    }

    /// Whether a candidate with this key and row would enter the list (checked before the
    /// candidate's text is copied).
    fn admits(&self, key: i64, row: u64) -> bool {
        if self.n == 0 {
            return false;
        }
        match self.heap.peek() {
            Some(Reverse(worst)) if self.heap.len() >= self.n => (key, Reverse(row)) > worst.rank(),
            _ => true,
        }
    }

    fn push(&mut self, candidate: Ranked) {
        self.heap.push(Reverse(candidate));
        if self.heap.len() > self.n {
            self.heap.pop();
        }
    }

    /// Best first.
    fn into_sorted(self) -> Vec<StoryRef> {
        let mut v: Vec<Ranked> = self.heap.into_iter().map(|Reverse(r)| r).collect();
        v.sort_by(|a, b| b.cmp(a));
        v.into_iter().map(|r| r.story).collect()
    }
}

/// A value in ten-thousandths, as an exact integer key.
fn quantise(x: f32) -> i64 {
    (f64::from(x) * 10_000.0).round() as i64
}

// ---------------------------------------------------------------------------------------------
// The builder.

#[derive(Debug, Serialize, Deserialize)]
struct ScenarioAcc {
    count: u64,
    /// Every confidence, so the low ones are counted against this failup's line when the
    /// report is made (a summary saved by an earlier failup counted against its own).
    confidences: Vec<f32>,
    histogram: [u64; HISTOGRAM_BINS],
    best: BestN,
    unsure: BestN,
}

/// An id as a report lists it: a blank one (empty or spaces), which would list as nothing (or,
/// in Markdown, run into its neighbours), by its row number, and a real id that reads like
/// such a label in quotes, so the two are told apart (as group values are).
fn listed_id(row: u64, id: String) -> String {
    let core = id.trim().trim_matches('"').trim();
    let numbered = core.strip_prefix("(row ").and_then(|n| n.strip_suffix(')'));
    if id.trim().is_empty() {
        format!("(row {row})")
    } else if numbered.is_some_and(|n| n.trim().parse::<u64>().is_ok()) {
        format!("\"{id}\"")
    } else {
        id
    }
}

/// Rows of one kind: how many, and the first ids with their row numbers.
#[derive(Debug, Default, Serialize, Deserialize)]
struct IdAcc {
    count: u64,
    ids: Vec<(u64, String)>,
}

impl IdAcc {
    fn add(&mut self, row: u64, id: &str) {
        self.count += 1;
        if self.ids.len() < MAX_LISTED_IDS {
            self.ids.push((row, id.to_string()));
        }
    }

    fn merge(&mut self, other: IdAcc) {
        self.count += other.count;
        self.ids.extend(other.ids);
        self.ids.sort();
        self.ids.truncate(MAX_LISTED_IDS);
    }

    fn into_ids(self) -> Vec<String> {
        self.ids
            .into_iter()
            .map(|(row, id)| listed_id(row, id))
            .collect()
    }
}

/// One `--group-by` value: the row it first appears in, and its stories per scenario.
#[derive(Debug, Serialize, Deserialize)]
struct GroupAcc {
    first_row: u64,
    counts: Vec<u64>,
}

/// Builds a [`Summary`] from rows fed one at a time, in input order.
/// How many stories were classified as `category` and also carry `also`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AlsoPair {
    pub category: String,
    pub also: String,
    pub count: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SummaryBuilder {
    /// Not stored in a partial summary; the reader supplies it and checks its hash.
    #[serde(skip, default = "Taxonomy::builtin")]
    taxonomy: Taxonomy,
    options: SummaryOptions,
    other: usize,
    rows: u64,
    truncated: u64,
    /// `also[category][also]`: stories of `category` that also carry `also`.
    also: Vec<Vec<u64>>,
    empty: IdAcc,
    errored: IdAcc,
    errored_statuses: BTreeMap<String, u64>,
    flagged: BTreeMap<String, IdAcc>,
    tokens: Vec<u32>,
    words: Vec<u32>,
    text_seen: bool,
    scenarios: Vec<ScenarioAcc>,
    groups: BTreeMap<String, GroupAcc>,
}

impl SummaryBuilder {
    /// What the summary is being made with.
    pub fn options(&self) -> &SummaryOptions {
        &self.options
    }

    pub fn new(taxonomy: &Taxonomy, options: SummaryOptions) -> SummaryBuilder {
        let top = options.top;
        SummaryBuilder {
            other: taxonomy.index_of(OTHER).unwrap_or(usize::MAX),
            taxonomy: taxonomy.clone(),
            options,
            rows: 0,
            truncated: 0,
            also: vec![vec![0; taxonomy.scenarios.len()]; taxonomy.scenarios.len()],
            empty: IdAcc::default(),
            errored: IdAcc::default(),
            errored_statuses: BTreeMap::new(),
            flagged: BTreeMap::new(),
            tokens: Vec::new(),
            words: Vec::new(),
            text_seen: false,
            scenarios: taxonomy
                .scenarios
                .iter()
                .map(|_| ScenarioAcc {
                    count: 0,
                    confidences: Vec::new(),
                    histogram: [0; HISTOGRAM_BINS],
                    best: BestN::new(top),
                    unsure: BestN::new(top),
                })
                .collect(),
            groups: BTreeMap::new(),
        }
    }

    /// Rows added so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The `--group-by` group of `row`, counted from its first row; `None` without grouping.
    fn group_of(&mut self, row: &ReportRow) -> Option<&mut GroupAcc> {
        self.options.group_by.as_ref()?;
        let n_scenarios = self.scenarios.len();
        let value = row.group.clone().unwrap_or_default();
        Some(self.groups.entry(value).or_insert_with(|| GroupAcc {
            first_row: row.row,
            counts: vec![0; n_scenarios],
        }))
    }

    pub fn add(&mut self, row: ReportRow) {
        self.rows += 1;
        let row_no = row.row;
        self.truncated += row.truncated as u64;
        let Some(cat) = row.category.filter(|&c| c < self.scenarios.len()) else {
            return self.add_unclassified(row);
        };
        if let Some(a) = row.also.filter(|&a| a < self.scenarios.len() && a != cat) {
            self.also[cat][a] += 1;
        }
        if row.status != "ok" {
            self.flagged
                .entry(row.status.clone())
                .or_default()
                .add(row_no, &row.id);
        }
        self.tokens
            .push(u32::try_from(row.tokens).unwrap_or(u32::MAX));
        if let Some(text) = &row.text {
            self.text_seen = true;
            let words = count_words(text);
            self.words.push(u32::try_from(words).unwrap_or(u32::MAX));
        }

        if let Some(group) = self.group_of(&row) {
            group.counts[cat] += 1;
        }

        self.rank(cat, row);
    }

    /// Counts an empty or errored row.
    fn add_unclassified(&mut self, row: ReportRow) {
        // A group whose rows are all empty or errored still gets its row, of zeros (a team
        // whose stories were all unreadable is told so), but a header row met again is no
        // group: its value is the column's own name.
        let header_again = (row.group.as_deref().map(str::trim))
            .zip(self.options.group_by.as_deref())
            .is_some_and(|(value, column)| value.eq_ignore_ascii_case(column.trim()));
        if !(row.status == "malformed" && header_again) {
            self.group_of(&row);
        }
        if row.status == "empty" {
            self.empty.add(row.row, &row.id);
        } else {
            self.errored.add(row.row, &row.id);
            *self.errored_statuses.entry(row.status.clone()).or_default() += 1;
        }
    }

    /// Counts a story classified as `cat`, and ranks it among the scenario's most
    /// representative and least certain.
    fn rank(&mut self, cat: usize, row: ReportRow) {
        let row_no = row.row;
        let runner_up = row
            .runner_up
            .and_then(|r| self.taxonomy.scenarios.get(r))
            .map(|s| s.id.clone());
        let acc = &mut self.scenarios[cat];
        acc.count += 1;
        acc.confidences.push(row.confidence);
        acc.histogram[histogram_bin(row.confidence)] += 1;
        let story = |row: &ReportRow| StoryRef {
            row: row_no,
            id: listed_id(row_no, row.id.clone()),
            confidence: round4(f64::from(row.confidence)),
            margin: round4(f64::from(row.margin)),
            runner_up: runner_up.clone(),
            text: row.text.as_deref().map(|t| shorten(t, STORY_CHARS)),
            evidence: row.evidence.as_deref().map(|t| shorten(t, STORY_CHARS)),
        };
        let best_key = quantise(row.confidence);
        if acc.best.admits(best_key, row_no) {
            acc.best.push(Ranked {
                key: best_key,
                row: row_no,
                story: story(&row),
            });
        }
        let unsure_key = -quantise(row.margin);
        if acc.unsure.admits(unsure_key, row_no) {
            acc.unsure.push(Ranked {
                key: unsure_key,
                row: row_no,
                story: story(&row),
            });
        }
    }

    /// How many scenarios the builder counts stories for.
    pub fn scenario_count(&self) -> usize {
        self.scenarios.len()
    }

    /// What no run writes, in a summary read back for `scenarios` scenarios: a hand-edited or
    /// damaged one would render impossible figures (more stories classified than read, a
    /// scenario missing, confidences past 1).
    pub fn check(&self, scenarios: usize) -> std::result::Result<(), String> {
        let square = self.also.len() == scenarios && self.also.iter().all(|r| r.len() == scenarios);
        if self.scenarios.len() != scenarios || !square {
            return Err(format!(
                "its tables are not all for the same {scenarios} scenarios"
            ));
        }
        if self.other >= scenarios && self.other != usize::MAX {
            return Err(format!("it names scenario {} as `other`", self.other + 1));
        }
        for (i, s) in self.scenarios.iter().enumerate() {
            if let Some(c) = s.confidences.iter().find(|c| !(0.0..=1.0).contains(*c)) {
                return Err(format!("it holds a confidence of {c}, outside 0 to 1"));
            }
            let mut binned = [0; HISTOGRAM_BINS];
            s.confidences
                .iter()
                .for_each(|&c| binned[histogram_bin(c)] += 1);
            let also: u64 = self.also[i].iter().sum();
            let counted = s.confidences.len() as u64 == s.count && s.histogram == binned;
            if !counted || also > s.count || self.also[i][i] != 0 {
                return Err(format!(
                    "scenario {} counts its stories in ways that disagree",
                    i + 1
                ));
            }
            // Renderers show a kept text as it is, since a run wrote it shortened and clean:
            // one edited to hold escape sequences would drive the reader's terminal.
            let written = |t: &String| {
                let cut = usize::from(t.ends_with('…'));
                t.chars().count() <= STORY_CHARS + cut && *t == shorten(t, STORY_CHARS + cut)
            };
            let mut texts = s.best.stories().chain(s.unsure.stories());
            if texts.any(|st| st.text.as_ref().is_some_and(|t| !written(t))) {
                return Err(format!(
                    "scenario {} keeps a story text that no run writes: control characters, \
                     line breaks or more than {STORY_CHARS} characters",
                    i + 1
                ));
            }
        }
        self.check_rows()?;
        self.check_groups()
    }

    /// Every row read is classified, empty or errored, each once, and the lists agree with
    /// their counts.
    fn check_rows(&self) -> std::result::Result<(), String> {
        let classified: u64 = self.scenarios.iter().map(|s| s.count).sum();
        let (empty, errored) = (self.empty.count, self.errored.count);
        if classified
            .checked_add(empty)
            .and_then(|n| n.checked_add(errored))
            != Some(self.rows)
        {
            return Err(format!(
                "it counts {classified} stories classified, {empty} empty and {errored} errored \
                 of {} rows read",
                self.rows
            ));
        }
        let flagged: u64 = self.flagged.values().map(|f| f.count).sum();
        let statuses: u64 = self.errored_statuses.values().sum();
        let lists = [&self.empty, &self.errored]
            .into_iter()
            .chain(self.flagged.values())
            .all(|acc| acc.ids.len() as u64 == acc.count.min(MAX_LISTED_IDS as u64));
        let lengths = self.tokens.len() as u64 == classified
            && self.words.len() as u64 <= classified
            && self.truncated <= self.rows;
        if flagged > classified || statuses != errored || !lists || !lengths {
            return Err("its counts of rows by status disagree".into());
        }
        Ok(())
    }

    /// Groups are kept only under `--group-by`, and they share out the classified stories.
    fn check_groups(&self) -> std::result::Result<(), String> {
        if self
            .groups
            .values()
            .any(|g| g.counts.len() != self.scenarios.len())
        {
            return Err("a group's counts do not match the taxonomy's scenarios".into());
        }
        let shared = match self.options.group_by {
            None => self.groups.is_empty(),
            Some(_) => self.scenarios.iter().enumerate().all(|(i, s)| {
                let in_groups = self.groups.values().map(|g| g.counts[i]).sum::<u64>();
                in_groups == s.count
            }),
        };
        match shared {
            true => Ok(()),
            false => Err("its groups' counts do not add up to the scenarios'".into()),
        }
    }

    /// The `other` the builder counted against is the taxonomy's.
    pub fn check_other(&self, taxonomy: &Taxonomy) -> std::result::Result<(), String> {
        match taxonomy.index_of(OTHER).unwrap_or(usize::MAX) == self.other {
            true => Ok(()),
            false => Err("its `other` is not the taxonomy's".into()),
        }
    }

    /// Adds the rows of `other`, a builder over other rows of the same input (another shard),
    /// with the same taxonomy and options. The result is the state one builder fed both sets
    /// of rows in input order would reach.
    pub fn merge(&mut self, other: SummaryBuilder) -> std::result::Result<(), String> {
        if self.options != other.options {
            return Err(format!(
                "they were made with different report options ({}); classify every shard \
                 with the same ones",
                self.options.differences(&other.options).join(", ")
            ));
        }
        if self.scenarios.len() != other.scenarios.len() || self.also.len() != other.also.len() {
            return Err("they were made with taxonomies of different sizes".into());
        }
        self.rows += other.rows;
        self.truncated += other.truncated;
        for (mine, theirs) in self.also.iter_mut().zip(other.also) {
            mine.iter_mut().zip(theirs).for_each(|(m, t)| *m += t);
        }
        self.empty.merge(other.empty);
        self.errored.merge(other.errored);
        for (status, n) in other.errored_statuses {
            *self.errored_statuses.entry(status).or_default() += n;
        }
        for (status, acc) in other.flagged {
            self.flagged.entry(status).or_default().merge(acc);
        }
        self.tokens.extend(other.tokens);
        self.words.extend(other.words);
        self.text_seen |= other.text_seen;
        for (mine, theirs) in self.scenarios.iter_mut().zip(other.scenarios) {
            mine.count += theirs.count;
            mine.confidences.extend(theirs.confidences);
            mine.histogram
                .iter_mut()
                .zip(theirs.histogram)
                .for_each(|(m, t)| *m += t);
            for (list, from) in [
                (&mut mine.best, theirs.best),
                (&mut mine.unsure, theirs.unsure),
            ] {
                for Reverse(candidate) in from.heap {
                    list.push(candidate);
                }
            }
        }
        for (value, theirs) in other.groups {
            match self.groups.get_mut(&value) {
                Some(mine) => {
                    mine.first_row = mine.first_row.min(theirs.first_row);
                    mine.counts
                        .iter_mut()
                        .zip(theirs.counts)
                        .for_each(|(m, t)| *m += t);
                }
                None => {
                    self.groups.insert(value, theirs);
                }
            }
        }
        Ok(())
    }

    /// Gives a builder read from a partial summary its taxonomy (which is not stored there).
    pub fn with_taxonomy(mut self, taxonomy: &Taxonomy) -> SummaryBuilder {
        self.taxonomy = taxonomy.clone();
        self
    }

    /// The finished summary; `header.input.rows` is set to the rows added.
    pub fn finish(self, mut header: Header) -> Summary {
        let classified: u64 = self.scenarios.iter().map(|s| s.count).sum();
        let other = self.scenarios.get(self.other).map_or(0, |s| s.count);
        header.input.rows = self.rows;
        header.group_by = self.options.group_by.clone();
        header.text_column = if self.text_seen || self.options.text_column.is_some() {
            self.options.text_column.clone()
        } else {
            None
        };
        let mut tokens = self.tokens;
        let mut words = self.words;
        let totals = Totals {
            rows: self.rows,
            classified,
            other,
            empty: IdList {
                count: self.empty.count,
                ids: self.empty.into_ids(),
            },
            errored: ErroredRows {
                count: self.errored.count,
                ids: self.errored.into_ids(),
                statuses: self.errored_statuses,
            },
            flagged: self
                .flagged
                .into_iter()
                .map(|(status, acc)| StatusRows {
                    status,
                    count: acc.count,
                    ids: acc.into_ids(),
                })
                .collect(),
            truncated: self.truncated,
            also: self.also.iter().flatten().sum(),
            also_pairs: also_pairs(&self.also, &self.taxonomy),
            words: if self.text_seen {
                stat(&mut words)
            } else {
                None
            },
            tokens: stat(&mut tokens),
        };

        let scenarios = self
            .taxonomy
            .scenarios
            .iter()
            .zip(self.scenarios)
            .map(|(s, acc)| scenario_summary(s, acc, classified))
            .collect();
        let min_group = self.options.min_group_size;
        let ids = self.taxonomy.labels();
        let groups = (self.options.group_by.clone())
            .map(|column| group_table(column, self.groups, &ids, min_group));

        Summary {
            schema_version: SCHEMA_VERSION,
            header,
            settings: Settings {
                confidence_level: 0.95,
                z: Z_95,
                low_confidence_below: LOW_CONFIDENCE,
                histogram_bins: HISTOGRAM_BINS,
                histogram_bin_width: 1.0 / HISTOGRAM_BINS as f64,
                small_group_below: min_group,
                top_stories: self.options.top,
                story_chars: STORY_CHARS,
                max_listed_ids: MAX_LISTED_IDS,
            },
            totals,
            scenarios,
            groups,
        }
    }
}

/// Each pair of a verdict and the second scenario (`also`) its stories carry, most common
/// first.
fn also_pairs(also: &[Vec<u64>], taxonomy: &Taxonomy) -> Vec<AlsoPair> {
    let mut pairs: Vec<AlsoPair> = Vec::new();
    for (c, row) in also.iter().enumerate() {
        for (a, &count) in row.iter().enumerate().filter(|(_, &n)| n > 0) {
            pairs.push(AlsoPair {
                category: taxonomy.scenarios[c].id.clone(),
                also: taxonomy.scenarios[a].id.clone(),
                count,
            });
        }
    }
    pairs.sort_by_key(|p| std::cmp::Reverse(p.count));
    pairs
}

/// A scenario's share of the `classified` stories, its confidence and its stories.
fn scenario_summary(s: &Scenario, mut acc: ScenarioAcc, classified: u64) -> ScenarioSummary {
    // Sorted first, so the mean's sum runs in the same order however the rows arrived (one
    // run or merged shards).
    let median = median(&mut acc.confidences).map(round4);
    let share = (classified > 0).then(|| round4(acc.count as f64 / classified as f64));
    let share_ci = wilson(acc.count, classified, Z_95).map(|i| Interval {
        low: round4(i.low),
        high: round4(i.high),
    });
    ScenarioSummary {
        id: s.id.clone(),
        title: s.title.clone(),
        description: s.description.clone(),
        headline: s.headline.clone(),
        advice: s.advice.clone(),
        count: acc.count,
        share,
        share_ci,
        confidence: ConfidenceSummary {
            mean: mean(&acc.confidences).map(round4),
            median,
            low_count: (acc.confidences.iter())
                .filter(|&&c| is_low_confidence(c))
                .count() as u64,
            histogram: acc.histogram.to_vec(),
        },
        representative: acc.best.into_sorted(),
        least_certain: acc.unsure.into_sorted(),
    }
}

/// The `--group-by` table: every value is counted, and the MAX_GROUPS largest get a row
/// (ties to the first to appear), so a large group that first appears late is not pooled
/// away; the rest are pooled in one row.
fn group_table(
    column: String,
    groups: BTreeMap<String, GroupAcc>,
    ids: &[String],
    min_group: u64,
) -> GroupTable {
    let mut by_size: Vec<(String, GroupAcc)> = groups.into_iter().collect();
    by_size.sort_by_key(|(_, g)| (std::cmp::Reverse(g.counts.iter().sum::<u64>()), g.first_row));
    let rest = by_size.split_off(by_size.len().min(MAX_GROUPS));
    let overflow = (!rest.is_empty()).then(|| {
        let mut counts = vec![0; ids.len()];
        for (_, g) in &rest {
            counts.iter_mut().zip(&g.counts).for_each(|(t, n)| *t += n);
        }
        group_row(crate::report::POOLED.into(), counts, ids, min_group)
    });
    let mut groups: Vec<GroupRow> = by_size
        .into_iter()
        .map(|(value, g)| group_row(value, g.counts, ids, min_group))
        .collect();
    groups.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    GroupTable {
        column,
        groups,
        overflow,
    }
}

/// One group's row: its count, and each scenario's count and share of it.
fn group_row(value: String, counts: Vec<u64>, ids: &[String], min_group: u64) -> GroupRow {
    let count: u64 = counts.iter().sum();
    GroupRow {
        value,
        count,
        small: count < min_group,
        cells: ids
            .iter()
            .zip(counts)
            .map(|(id, n)| GroupCell {
                scenario: id.clone(),
                count: n,
                share: if count == 0 {
                    0.0
                } else {
                    round4(n as f64 / count as f64)
                },
            })
            .collect(),
    }
}

/// Words as a reader counts them: runs between spaces, except in scripts written without
/// spaces (Chinese, Japanese), where each character is a word; a story there was one "word".
fn count_words(text: &str) -> usize {
    let unspaced = |c: char| {
        matches!(c, '\u{3040}'..='\u{30FF}' | '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}'
            | '\u{F900}'..='\u{FAFF}' | '\u{20000}'..='\u{2FA1F}')
    };
    text.split_whitespace()
        .map(|run| match run.chars().any(unspaced) {
            false => 1,
            true => {
                // Each such character, and each run of letters or digits between them.
                let mut words = 0;
                let mut in_word = false;
                for c in run.chars() {
                    let letter = c.is_alphanumeric() && !unspaced(c);
                    words += usize::from(unspaced(c) || (letter && !in_word));
                    in_word = letter;
                }
                words
            }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_counted_by_spaces_and_by_character_where_a_script_has_no_spaces() {
        assert_eq!(count_words("We lost the pitch — again."), 6);
        assert_eq!(count_words("  don't   stop "), 2);
        // Nine characters of Chinese and a number among them; the comma is no word.
        assert_eq!(count_words("我的经理，把项目2024给了"), 10);
        assert_eq!(count_words("プロジェクトを失った"), 10);
        assert_eq!(count_words("승진에서 떨어졌다"), 2);
        assert_eq!(count_words(""), 0);
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 5e-5
    }

    #[test]
    fn wilson_matches_hand_computation() {
        // 4 of 10: p = 0.4, z² = 3.8416, denom = 1.38416, centre = 0.59208 / 1.38416
        // = 0.427754, half = 1.96 · sqrt(0.024 + 0.009604) / 1.38416 = 0.259576.
        let i = wilson(4, 10, Z_95).unwrap();
        assert!(close(i.low, 0.1682) && close(i.high, 0.6873), "{i:?}");
        // 2 of 10: centre = 0.39208 / 1.38416 = 0.283262, half = 0.226582.
        let i = wilson(2, 10, Z_95).unwrap();
        assert!(close(i.low, 0.0567) && close(i.high, 0.5098), "{i:?}");
        // 0 of 5 and 5 of 5 stay inside [0, 1]; 0 trials has no interval.
        assert_eq!(wilson(0, 5, Z_95).unwrap().low, 0.0);
        assert_eq!(wilson(5, 5, Z_95).unwrap().high, 1.0);
        assert!(wilson(0, 0, Z_95).is_none());
    }

    /// Only an edited summary can differ in these two, so no classify flag is named for them.
    #[test]
    fn merging_different_options_names_each_difference() {
        let taxonomy = Taxonomy::builtin();
        let mut a = SummaryBuilder::new(&taxonomy, SummaryOptions::default());
        let other = SummaryOptions {
            group_by: Some("team".into()),
            top: DEFAULT_TOP + 2,
            ..SummaryOptions::default()
        };
        let e = a.merge(SummaryBuilder::new(&taxonomy, other)).unwrap_err();
        assert!(
            e.contains("--group-by none against \"team\"")
                && e.contains(&format!(
                    "top-stories count {DEFAULT_TOP} against {}",
                    DEFAULT_TOP + 2
                ))
                && !e.contains("--top"),
            "{e}"
        );
    }

    #[test]
    fn histogram_bins_are_half_open_except_the_last() {
        assert_eq!(histogram_bin(0.0), 0);
        assert_eq!(histogram_bin(0.0999), 0);
        assert_eq!(histogram_bin(0.1), 1);
        assert_eq!(histogram_bin(0.3), 3);
        assert_eq!(histogram_bin(0.7), 7);
        assert_eq!(histogram_bin(0.8999), 8);
        assert_eq!(histogram_bin(0.9), 9);
        assert_eq!(histogram_bin(1.0), 9);
    }

    #[test]
    fn low_confidence_line_is_strict() {
        assert!(is_low_confidence(0.6999));
        assert!(!is_low_confidence(0.7));
        // The least a winner of four scenarios gets under the shipped calibration is low.
        assert!(is_low_confidence(0.5864));
    }

    #[test]
    fn median_of_odd_and_even_lists() {
        assert_eq!(median(&mut [3u32, 1, 2]), Some(2.0));
        assert_eq!(median(&mut [4u32, 1, 2, 3]), Some(2.5));
        assert_eq!(median::<u32>(&mut []), None);
    }

    #[test]
    fn shorten_collapses_whitespace_and_cuts_at_a_word() {
        assert_eq!(shorten("  a\n\tb  c ", 200), "a b c");
        assert_eq!(shorten("bell\u{7}\u{1b}[31m", 200), "bell[31m");
        let long = "word ".repeat(100);
        let s = shorten(&long, 22);
        assert_eq!(s, "word word word word…");
        assert_eq!(shorten("abcdefghij", 4), "abcd…");
        assert_eq!(shorten("exactly", 7), "exactly");
    }

    #[test]
    fn shorten_never_cuts_inside_a_visible_character() {
        let family = "\u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467}";
        // The cut falls after the joiner that follows the man: he goes with it.
        assert_eq!(shorten(&format!("ab {family}"), 4), "ab…");
        assert_eq!(
            shorten(&format!("{family}{family}"), 7),
            format!("{family}…")
        );
        // A letter and its combining accent stay together, or go together.
        assert_eq!(shorten("cafe\u{301} noir", 4), "caf…");
        assert_eq!(shorten("cafe\u{301} noir", 5), "cafe\u{301}…");
    }

    #[test]
    fn a_blank_id_is_listed_by_its_row_number() {
        let taxonomy = Taxonomy::builtin();
        let mut b = SummaryBuilder::new(&taxonomy, SummaryOptions::default());
        for (row, status) in [(1, "empty"), (2, "ok"), (3, "empty")] {
            b.add(ReportRow {
                row,
                id: ["", "  ", "c"][row as usize - 1].into(),
                category: (status == "ok").then_some(0),
                confidence: 0.9,
                runner_up: Some(3),
                margin: 0.1,
                tokens: 10,
                truncated: false,
                also: None,
                status: status.into(),
                text: None,
                evidence: None,
                group: None,
            });
        }
        let header = crate::report::header(
            "m".into(),
            None,
            crate::report::load_taxonomy(None).unwrap().1,
            "x".into(),
        );
        let s = b.finish(header);
        assert_eq!(s.totals.empty.ids, ["(row 1)", "c"]);
        assert_eq!(s.scenarios[0].representative[0].id, "(row 2)");
    }

    #[test]
    fn a_blank_id_is_listed_by_its_row_and_an_id_like_that_label_in_quotes() {
        assert_eq!(listed_id(3, " ".into()), "(row 3)");
        assert_eq!(listed_id(1, "(row 3)".into()), "\"(row 3)\"");
        assert_eq!(listed_id(1, "\"(row 3)\"".into()), "\"\"(row 3)\"\"");
        assert_eq!(listed_id(1, "(row x)".into()), "(row x)");
        assert_eq!(listed_id(1, "a7".into()), "a7");
    }

    #[test]
    fn many_rows_keep_bounded_lists_and_pool_extra_groups() {
        let taxonomy = Taxonomy::builtin();
        let mut b = SummaryBuilder::new(
            &taxonomy,
            SummaryOptions {
                group_by: Some("g".into()),
                ..SummaryOptions::default()
            },
        );
        let n = 50_000u64;
        for i in 0..n {
            let empty = i % 100 == 0;
            b.add(ReportRow {
                row: i + 1,
                id: format!("s{i}"),
                category: (!empty).then_some((i % 4) as usize),
                confidence: (i % 10_001) as f32 / 10_000.0,
                runner_up: Some(3),
                margin: 0.1,
                tokens: 10,
                truncated: false,
                also: None,
                status: if empty { "empty" } else { "ok" }.into(),
                text: Some("a story".into()),
                evidence: None,
                // Every row its own group: far more than MAX_GROUPS.
                group: Some(format!("g{i}")),
            });
        }
        let header = crate::report::header(
            "m".into(),
            None,
            crate::report::load_taxonomy(None).unwrap().1,
            "x".into(),
        );
        let s = b.finish(header);
        assert_eq!(s.totals.rows, n);
        assert_eq!(s.totals.empty.count, n / 100);
        assert_eq!(s.totals.empty.ids.len(), MAX_LISTED_IDS);
        assert_eq!(s.totals.classified, n - n / 100);
        for sc in &s.scenarios {
            assert_eq!(sc.representative.len(), DEFAULT_TOP);
            assert_eq!(sc.least_certain.len(), DEFAULT_TOP);
            assert_eq!(sc.confidence.histogram.iter().sum::<u64>(), sc.count);
        }
        let g = s.groups.unwrap();
        assert_eq!(g.groups.len(), MAX_GROUPS);
        let overflow = g.overflow.unwrap();
        assert_eq!(
            g.groups.iter().map(|r| r.count).sum::<u64>() + overflow.count,
            s.totals.classified
        );
    }

    /// The groups given rows are the largest, not the first to appear: a team that first
    /// shows up after a thousand one-story values was pooled away, unseen.
    #[test]
    fn a_large_group_that_appears_late_keeps_its_row() {
        let taxonomy = Taxonomy::builtin();
        let options = SummaryOptions {
            group_by: Some("team".into()),
            ..SummaryOptions::default()
        };
        let mut b = SummaryBuilder::new(&taxonomy, options);
        let singles = MAX_GROUPS as u64 + 10;
        for i in 0..singles + 500 {
            let group = match i < singles {
                true => format!("t{i}"),
                false => "late".into(),
            };
            b.add(ReportRow {
                row: i + 1,
                id: format!("s{i}"),
                category: Some((i % 4) as usize),
                confidence: 0.9,
                runner_up: Some(3),
                margin: 0.1,
                tokens: 10,
                truncated: false,
                also: None,
                status: "ok".into(),
                text: None,
                evidence: None,
                group: Some(group),
            });
        }
        let header = crate::report::header(
            "m".into(),
            None,
            crate::report::load_taxonomy(None).unwrap().1,
            "x".into(),
        );
        let g = b.finish(header).groups.unwrap();
        assert_eq!(
            (g.groups[0].value.as_str(), g.groups[0].count),
            ("late", 500)
        );
        assert_eq!(g.groups.len(), MAX_GROUPS);
        // 1,010 groups of one beside it: the 999 first to appear keep a row (ties go to the
        // first, not to the value that sorts first), 11 are pooled.
        let has_row = |v: &str| g.groups.iter().any(|r| r.value == v);
        assert!(has_row("t0") && has_row("t998"));
        assert!(!has_row("t999") && !has_row("t1000") && !has_row("t1009"));
        assert_eq!(g.overflow.unwrap().count, 11);
    }

    #[test]
    fn best_n_keeps_the_best_and_prefers_earlier_rows() {
        let mut b = BestN::new(2);
        for (row, key) in [(1, 5), (2, 9), (3, 9), (4, 1), (5, 7)] {
            if b.admits(key, row) {
                b.push(Ranked {
                    key,
                    row,
                    story: StoryRef {
                        row,
                        id: format!("r{row}"),
                        confidence: 0.0,
                        margin: 0.0,
                        runner_up: None,
                        text: None,
                        evidence: None,
                    },
                });
            }
        }
        let ids: Vec<String> = b.into_sorted().into_iter().map(|s| s.id).collect();
        assert_eq!(ids, ["r2", "r3"]);
    }
}
