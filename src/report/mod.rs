//! Aggregate reports over the output of `failup classify`: statistics ([`stats`]) and one
//! renderer per format ([`text`], [`markdown`], [`json`], [`html`]).
//!
//! The flow is streaming: [`reader::ClassifiedReader`] (or the classify loop itself, through
//! [`ReportRow::from_classified`]) feeds rows one at a time into a [`SummaryBuilder`];
//! [`SummaryBuilder::finish`] gives a [`Summary`], which [`render`] turns into the requested
//! format. The [`Summary`] is also the JSON report, so every figure any format shows is in
//! the JSON.

pub mod html;
pub mod json;
pub mod markdown;
pub mod partial;
pub mod reader;
pub mod stats;
pub mod text;

use std::io::Write;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::embed::ModelDir;
use crate::error::{Error, Result};
use crate::sink::Sink;
use crate::taxonomy::Taxonomy;

pub use stats::{
    Header, InputInfo, Reading, ReportRow, Summary, SummaryBuilder, SummaryOptions, TaxonomyInfo,
};

/// "1 story", "5 stories": `--min-group-size 1` is a count too.
fn story_count(n: u64) -> String {
    match n {
        1 => "1 story".into(),
        n => format!("{n} stories"),
    }
}

/// A report's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An aligned table with share bars, for the terminal.
    Text,
    /// GitHub-flavoured Markdown.
    Markdown,
    /// JSON with a documented schema (docs/report-schema.md).
    Json,
    /// One self-contained HTML page with inline CSS and SVG charts.
    Html,
}

impl Format {
    /// The format a file name implies: .html/.htm, .md/.markdown, .json, .txt.
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "html" | "htm" => Some(Format::Html),
            "md" | "markdown" => Some(Format::Markdown),
            "json" => Some(Format::Json),
            "txt" | "text" => Some(Format::Text),
            _ => None,
        }
    }
}

/// Whether the text format uses colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColorChoice {
    /// Colour when writing to a terminal and NO_COLOR is not set.
    #[default]
    Auto,
    /// Colour even when not writing to a terminal (but never when NO_COLOR is set).
    Always,
    /// No colour.
    Never,
}

impl ColorChoice {
    /// Decides for output going to a terminal (`tty`) or not: never with NO_COLOR set (to
    /// anything but the empty string), never when `Never`, otherwise when `Always`, or on a
    /// terminal that is not `TERM=dumb` (which shows escape codes as text).
    pub fn enabled(self, tty: bool) -> bool {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
        self.decide(tty, no_color, dumb)
    }

    fn decide(self, tty: bool, no_color: bool, dumb: bool) -> bool {
        !no_color
            && match self {
                ColorChoice::Never => false,
                ColorChoice::Always => true,
                ColorChoice::Auto => tty && !dumb,
            }
    }
}

/// Renders a summary. `color` and `width` (the terminal's columns, if it is one) only affect
/// the text format.
pub fn render(
    summary: &Summary,
    format: Format,
    color: bool,
    width: Option<usize>,
) -> Result<String> {
    match format {
        Format::Text => Ok(text::render(summary, color, width)),
        Format::Markdown => Ok(markdown::render(summary)),
        Format::Json => Ok(json::render(summary)),
        Format::Html => html::render(summary),
    }
}

/// Renders a summary into `path` (`-` is standard output), written atomically; colour for
/// the text format follows `color` and whether standard output is a terminal. This is the
/// one call `classify --report FILE` needs after its loop.
pub fn write_report(
    summary: &Summary,
    (flag, path): (&str, &Path),
    format: Format,
    color: ColorChoice,
    input: Option<&crate::input::Source>,
) -> Result<()> {
    use std::io::IsTerminal;
    let to_stdout = path == Path::new("-");
    let terminal = to_stdout && std::io::stdout().is_terminal();
    let colored = color.enabled(terminal);
    let width = terminal
        .then(|| console::Term::stdout().size_checked())
        .flatten()
        .map(|(_, columns)| usize::from(columns));
    let rendered = render(summary, format, colored, width)?;
    let mut sink = Sink::open(flag, path, input)?;
    let name = sink.name();
    sink.write_all(rendered.as_bytes())
        .map_err(|e| Error::io(&name, e))?;
    sink.commit()
}

/// Loads the taxonomy (`None`: the built-in one) with its name and the SHA-256 of its text.
pub fn load_taxonomy(path: Option<&Path>) -> Result<(Taxonomy, TaxonomyInfo)> {
    let (taxonomy, sha256) = Taxonomy::load_hashed(path)?;
    Ok((taxonomy, TaxonomyInfo::new(path, sha256)))
}

/// The model's name for the header: the folder `--model`/`FAILUP_MODEL` names or the bundled
/// one, if it can be found (it is not loaded), else "unknown".
pub fn model_name(explicit: Option<&Path>) -> String {
    ModelDir::resolve(explicit)
        .map(|m| m.name())
        .unwrap_or_else(|_| "unknown".into())
}

/// A header for a report over `input_name`, whose stories `model` read as `reading` (`None`
/// where that is not known); the row count is filled in by [`SummaryBuilder::finish`].
pub fn header(
    model: String,
    reading: Option<Reading>,
    taxonomy: TaxonomyInfo,
    input_name: String,
) -> Header {
    Header {
        failup_version: env!("CARGO_PKG_VERSION").to_string(),
        model,
        reading,
        taxonomy,
        input: InputInfo {
            name: input_name,
            rows: 0,
        },
        generated_at: generated_at(),
        text_column: None,
        group_by: None,
    }
}

/// The file name of an input path, for the header (`-` is `<stdin>`, and `<(…)`'s
/// descriptor keeps its whole path).
pub fn input_display_name(path: &Path) -> String {
    if path == Path::new("-") {
        return "<stdin>".into();
    }
    // A shell's `<(…)` is a descriptor's number in /dev/fd, which alone names nothing.
    let descriptor = path.parent().is_some_and(|p| p.ends_with("fd"));
    match path.file_name() {
        Some(n) if !descriptor => n.to_string_lossy().into_owned(),
        _ => path.display().to_string(),
    }
}

/// "1 row", "2 rows".
pub fn n_rows(n: u64) -> String {
    format!("{n} row{}", if n == 1 { "" } else { "s" })
}

/// Now, in UTC, as RFC 3339 to the second; `SOURCE_DATE_EPOCH` (seconds since 1970) replaces
/// the clock, for reproducible reports.
pub fn generated_at() -> String {
    let secs = source_date_epoch().ok().flatten().unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    });
    rfc3339_utc(secs)
}

/// The last second a four-digit year can name: 9999-12-31T23:59:59Z.
const LAST_SECOND: i64 = 253_402_300_799;

/// `SOURCE_DATE_EPOCH`, when set: a value that is not whole seconds from 1970 to the year
/// 9999 is an error, as the reproducible-builds convention asks, so a report that was meant
/// to be reproducible is not stamped with the time of day.
pub fn source_date_epoch() -> Result<Option<i64>> {
    let value = std::env::var_os("SOURCE_DATE_EPOCH").unwrap_or_default();
    let text = value.to_string_lossy();
    // Blank is unset, as CI templates that export it empty mean it.
    if text.trim().is_empty() {
        return Ok(None);
    }
    match text.trim().parse::<i64>() {
        Ok(secs) if (0..=LAST_SECOND).contains(&secs) => Ok(Some(secs)),
        _ => Err(Error::Usage(format!(
            "SOURCE_DATE_EPOCH (set in the environment) is '{}', not a whole number of seconds \
             since 1970 from 0 to {LAST_SECOND} (the end of the year 9999); fix it, or unset \
             it to stamp the report with the time it is made",
            crate::input::printable(&text)
        ))),
    }
}

/// Seconds since 1970 as `YYYY-MM-DDTHH:MM:SSZ` (Howard Hinnant's civil-from-days).
pub fn rfc3339_utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + (month <= 2) as i64;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `s` cut to at most `width` terminal cells, ending in `…` where it was cut. A wide
/// character (CJK) takes two.
pub(crate) fn fit_cells(s: &str, width: usize) -> String {
    use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};
    if s.width() <= width {
        return s.to_string();
    }
    let mut out = String::new();
    let mut used = 1;
    for c in s.chars() {
        used += c.width().unwrap_or(0);
        if used > width {
            break;
        }
        out.push(c);
    }
    out + "…"
}

/// A share as a percentage with one decimal, e.g. `40.0%`.
pub(crate) fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// An optional figure with `decimals` decimals, or an en dash.
pub(crate) fn num(x: Option<f64>, decimals: usize) -> String {
    x.map_or_else(|| "–".to_string(), |v| format!("{v:.decimals$}"))
}

/// How the text, Markdown and HTML reports label an empty group value, and the row that pools
/// the groups past the largest.
pub(crate) const BLANK: &str = "(blank)";
pub(crate) const POOLED: &str = "(further groups)";

/// The label of a group value: an empty value reads [`BLANK`], and a value that reads like one
/// of the report's own labels (`(blank)`, `"(blank)"` in quotes, or either with spaces at its
/// ends, which Markdown and HTML do not show) is put in quotes, so that the two never look
/// alike.
pub(crate) fn group_label(value: &str) -> std::borrow::Cow<'_, str> {
    let core = value.trim().trim_matches('"').trim();
    if value.is_empty() {
        BLANK.into()
    } else if core == BLANK || core == POOLED {
        format!("\"{value}\"").into()
    } else {
        value.into()
    }
}

/// What a rendered report says of the groups it leaves out of its table: `hidden` of those
/// with a row of their own, all in the JSON report unless smaller ones were pooled past the
/// largest.
pub(crate) fn more_groups(hidden: usize, overflow: &Option<stats::GroupRow>) -> String {
    match overflow {
        None => format!("{hidden} more groups (all are in the JSON report, --format json)"),
        Some(_) => format!(
            "{hidden} more groups (the JSON report, --format json, has the {} largest; the \
             smaller ones past those are pooled as {POOLED})",
            stats::MAX_GROUPS
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_is_off_for_a_dumb_terminal_unless_forced() {
        assert!(ColorChoice::Auto.decide(true, false, false));
        assert!(!ColorChoice::Auto.decide(true, false, true), "TERM=dumb");
        assert!(ColorChoice::Always.decide(false, false, true));
        assert!(!ColorChoice::Always.decide(true, true, false), "NO_COLOR");
        assert!(!ColorChoice::Never.decide(true, false, false));
    }

    #[test]
    fn rfc3339_of_known_instants() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn format_from_extension() {
        assert_eq!(Format::from_path(Path::new("r.HTML")), Some(Format::Html));
        assert_eq!(Format::from_path(Path::new("r.md")), Some(Format::Markdown));
        assert_eq!(Format::from_path(Path::new("r.json")), Some(Format::Json));
        assert_eq!(Format::from_path(Path::new("r.txt")), Some(Format::Text));
        assert_eq!(Format::from_path(Path::new("-")), None);
    }

    #[test]
    fn an_input_is_named_by_its_file_name_or_whole_descriptor_path() {
        assert_eq!(input_display_name(Path::new("-")), "<stdin>");
        assert_eq!(
            input_display_name(Path::new("/data/x/stories.csv")),
            "stories.csv"
        );
        assert_eq!(input_display_name(Path::new("/dev/fd/63")), "/dev/fd/63");
        assert_eq!(
            input_display_name(Path::new("/proc/self/fd/5")),
            "/proc/self/fd/5"
        );
        assert_eq!(
            (n_rows(1), n_rows(0), n_rows(2)),
            ("1 row".into(), "0 rows".into(), "2 rows".into())
        );
    }

    #[test]
    fn taxonomy_hash_is_of_its_text() {
        use sha2::{Digest, Sha256};
        let (_, info) = load_taxonomy(None).unwrap();
        assert_eq!(info.name, "built-in");
        let builtin = crate::taxonomy::DEFAULT_TOML;
        assert_eq!(info.sha256, hex::encode(Sha256::digest(builtin)));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mine.toml");
        let text = builtin.replace("# ", "#  ");
        std::fs::write(&path, &text).unwrap();
        let (_, info) = load_taxonomy(Some(&path)).unwrap();
        assert_eq!(info.name, path.display().to_string());
        assert_eq!(info.sha256, hex::encode(Sha256::digest(text.as_bytes())));
        assert_ne!(info.sha256, hex::encode(Sha256::digest(builtin)));
    }
}
