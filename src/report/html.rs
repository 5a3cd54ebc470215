//! The HTML report: one self-contained page (inline CSS, inline SVG, no scripts, no network)
//! rendered with minijinja from `templates/report.html`, with HTML auto-escaping on.
//!
//! No markup is built from strings here. This module only computes chart geometry (numbers)
//! and display strings; the template writes every element, and minijinja escapes every value
//! it inserts, so a story like `<script>alert(1)</script>` appears as literal text. The page
//! also carries a Content-Security-Policy that forbids scripts and network requests. Control
//! characters in any value (an id's terminal escape codes, a backspace), which HTML counts as
//! errors, are written as spaces.

use minijinja::{escape_formatter, AutoEscape, Environment, Value};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::input::unsafe_to_show;
use crate::report::stats::{GroupRow, Reading, ScenarioSummary, Summary};
use crate::report::{fit_cells, group_label, num, pct};

/// The page template, compiled into the binary.
pub const TEMPLATE: &str = include_str!("../../templates/report.html");

/// Groups listed in the HTML table; the JSON has them all.
pub const MAX_GROUPS_SHOWN: usize = 100;

/// Width of the SVG charts' coordinate system (they scale to the page).
const CHART_W: f64 = 400.0;

/// The most of a scenario's title the share chart shows, in terminal cells (a CJK character
/// takes two): about what fits across [`CHART_W`] in the bars' 14-unit bold type.
const BAR_LABEL_CELLS: usize = 46;

/// Rounds a coordinate to two decimals, so the SVG stays short and stable.
fn r2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[derive(Serialize)]
struct View<'a> {
    s: &'a Summary,
    taxonomy_short: String,
    /// Whether the scenarios are the article's (the built-in taxonomy), to credit it.
    articles: bool,
    reading: String,
    words: Option<(String, String)>,
    tokens: Option<(String, String)>,
    share_chart: ShareChart,
    scenarios: Vec<ScenarioView<'a>>,
    groups: Option<GroupsView>,
    low_line: String,
}

#[derive(Serialize)]
struct ShareChart {
    width: f64,
    height: f64,
    plot_x: f64,
    plot_w: f64,
    axis_y: f64,
    tick_y: f64,
    ticks: Vec<Tick>,
    bars: Vec<ShareBar>,
}

#[derive(Serialize)]
struct Tick {
    x: f64,
    label: String,
}

#[derive(Serialize)]
struct ShareBar {
    label: String,
    /// The whole title, shown on hover, where `label` is cut short.
    full: Option<String>,
    value: String,
    label_y: f64,
    value_y: f64,
    bar_y: f64,
    bar_h: f64,
    bar_w: f64,
    mid_y: f64,
    cap_y1: f64,
    cap_y2: f64,
    ci: Option<(f64, f64)>,
    colour: &'static str,
}

#[derive(Serialize)]
struct ScenarioView<'a> {
    sc: &'a ScenarioSummary,
    share: String,
    ci: String,
    mean: String,
    median: String,
    histogram: Histogram,
    representative: Vec<StoryView<'a>>,
    least_certain: Vec<StoryView<'a>>,
}

#[derive(Serialize)]
struct StoryView<'a> {
    id: &'a str,
    figure: String,
    text: Option<&'a str>,
    evidence: Option<&'a str>,
}

#[derive(Serialize)]
struct Histogram {
    width: f64,
    height: f64,
    base_y: f64,
    tick_y: f64,
    low_x: f64,
    bars: Vec<HistBar>,
    labels: Vec<Tick>,
    label: String,
}

#[derive(Serialize)]
struct HistBar {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
    label_x: f64,
    label_y: f64,
    count: u64,
    range: String,
    low: bool,
}

#[derive(Serialize)]
struct GroupsView {
    column: String,
    rows: Vec<GroupView>,
    /// What the table leaves out, in words; empty when nothing.
    more: String,
    any_small: bool,
}

#[derive(Serialize)]
struct GroupView {
    label: String,
    count: u64,
    small: bool,
    overflow: bool,
    cells: Vec<CellView>,
}

#[derive(Serialize)]
struct CellView {
    text: String,
    count: u64,
    /// Background opacity, 0–0.56, growing with the share: light enough under dark text
    /// for a contrast of at least 4.5:1 at a full share.
    alpha: f64,
}

/// Bar colours, one per scenario in order (`other` is grey), distinct for a taxonomy of up
/// to twelve named scenarios; past that they repeat, and the bars' labels tell them apart.
const COLOURS: [&str; 12] = [
    "#2563eb", "#d97706", "#059669", "#7c3aed", "#db2777", "#0891b2", "#dc2626", "#65a30d",
    "#4f46e5", "#ea580c", "#0d9488", "#c026d3",
];
const OTHER_COLOUR: &str = "#6b7280";

fn colour(i: usize, id: &str) -> &'static str {
    if id == crate::taxonomy::OTHER {
        OTHER_COLOUR
    } else {
        COLOURS[i % COLOURS.len()]
    }
}

fn share_chart(summary: &Summary) -> ShareChart {
    let row_h = 58.0;
    let plot_x = 0.0;
    let plot_w = CHART_W - 8.0;
    let top = 4.0;
    let bars: Vec<ShareBar> = summary
        .scenarios
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let y = top + i as f64 * row_h;
            let share = s.share.unwrap_or(0.0);
            let label = fit_cells(&s.title, BAR_LABEL_CELLS);
            ShareBar {
                full: (label != s.title).then(|| s.title.clone()),
                label,
                value: match (s.share, s.share_ci) {
                    (Some(sh), Some(ci)) => format!(
                        "{} ({}) · 95% CI {}–{}",
                        pct(sh),
                        s.count,
                        pct(ci.low),
                        pct(ci.high)
                    ),
                    _ => format!("– ({})", s.count),
                },
                label_y: r2(y + 14.0),
                value_y: r2(y + 30.0),
                bar_y: r2(y + 37.0),
                bar_h: 14.0,
                bar_w: r2(plot_x + share * plot_w),
                mid_y: r2(y + 44.0),
                cap_y1: r2(y + 38.0),
                cap_y2: r2(y + 50.0),
                ci: s
                    .share_ci
                    .map(|ci| (r2(plot_x + ci.low * plot_w), r2(plot_x + ci.high * plot_w))),
                colour: colour(i, &s.id),
            }
        })
        .collect();
    let axis_y = r2(top + summary.scenarios.len() as f64 * row_h + 2.0);
    ShareChart {
        width: CHART_W,
        height: r2(axis_y + 18.0),
        plot_x,
        plot_w,
        axis_y,
        tick_y: r2(axis_y + 14.0),
        ticks: (0..=4)
            .map(|i| Tick {
                x: r2(plot_x + plot_w * i as f64 / 4.0),
                label: format!("{}%", i * 25),
            })
            .collect(),
        bars,
    }
}

fn histogram(summary: &Summary, s: &ScenarioSummary) -> Histogram {
    let set = &summary.settings;
    let (w, h) = (300.0, 130.0);
    let (left, right, top, bottom) = (6.0, 6.0, 16.0, 20.0);
    let plot_w = w - left - right;
    let plot_h = h - top - bottom;
    let bins = s.confidence.histogram.len().max(1);
    let step = plot_w / bins as f64;
    let max = s
        .confidence
        .histogram
        .iter()
        .copied()
        .max()
        .unwrap_or(0)
        .max(1);
    let base_y = h - bottom;
    let bars = s
        .confidence
        .histogram
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let bh = plot_h * n as f64 / max as f64;
            let lo = i as f64 * set.histogram_bin_width;
            let hi = lo + set.histogram_bin_width;
            HistBar {
                x: r2(left + i as f64 * step + 1.0),
                y: r2(base_y - bh),
                label_x: r2(left + (i as f64 + 0.5) * step),
                label_y: r2(base_y - bh - 3.0),
                w: r2(step - 2.0),
                h: r2(bh),
                count: n,
                range: if i + 1 == bins {
                    format!("[{lo:.1}–{hi:.1}]")
                } else {
                    format!("[{lo:.1}–{hi:.1})")
                },
                low: hi <= set.low_confidence_below + 1e-9,
            }
        })
        .collect();
    Histogram {
        width: w,
        height: h,
        base_y,
        tick_y: r2(base_y + 14.0),
        low_x: r2(left + plot_w * set.low_confidence_below),
        bars,
        labels: [0.0, 0.5, 1.0]
            .iter()
            .map(|&v| Tick {
                x: r2(left + plot_w * v),
                label: format!("{v:.1}"),
            })
            .collect(),
        label: format!(
            "Confidence histogram of {}: {}",
            s.title,
            s.confidence
                .histogram
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn group_view(r: &GroupRow, overflow: bool) -> GroupView {
    GroupView {
        label: match overflow {
            true => crate::report::POOLED.to_string(),
            false => group_label(&r.value).into_owned(),
        },
        count: r.count,
        small: r.small,
        overflow,
        cells: r
            .cells
            .iter()
            .map(|c| {
                let alpha = if c.count == 0 {
                    0.0
                } else {
                    r2(0.06 + 0.5 * c.share)
                };
                CellView {
                    text: pct(c.share),
                    count: c.count,
                    alpha,
                }
            })
            .collect(),
    }
}

fn view(summary: &Summary) -> View<'_> {
    let t = &summary.totals;
    let groups = summary.groups.as_ref().map(|g| {
        let shown = g.groups.len().min(MAX_GROUPS_SHOWN);
        let mut rows: Vec<GroupView> = g.groups[..shown]
            .iter()
            .map(|r| group_view(r, false))
            .collect();
        rows.extend(g.overflow.iter().map(|r| group_view(r, true)));
        GroupsView {
            column: g.column.clone(),
            any_small: rows.iter().any(|r| r.small),
            rows,
            more: match g.groups.len() - shown {
                0 => String::new(),
                hidden => crate::report::more_groups(hidden, &g.overflow),
            },
        }
    });
    View {
        s: summary,
        taxonomy_short: summary.header.taxonomy.sha256.chars().take(12).collect(),
        articles: summary.header.taxonomy.is_the_articles(),
        reading: Reading::describe(summary.header.reading.as_ref()),
        words: t
            .words
            .map(|w| (num(Some(w.mean), 1), num(Some(w.median), 1))),
        tokens: t
            .tokens
            .map(|w| (num(Some(w.mean), 1), num(Some(w.median), 1))),
        share_chart: share_chart(summary),
        scenarios: summary
            .scenarios
            .iter()
            .map(|sc| ScenarioView {
                sc,
                share: sc.share.map_or_else(|| "–".into(), pct),
                ci: sc.share_ci.map_or_else(
                    || "–".into(),
                    |i| format!("{} – {}", pct(i.low), pct(i.high)),
                ),
                mean: num(sc.confidence.mean, 3),
                median: num(sc.confidence.median, 3),
                histogram: histogram(summary, sc),
                representative: sc
                    .representative
                    .iter()
                    .map(|st| StoryView {
                        id: &st.id,
                        figure: format!("confidence {:.4}", st.confidence),
                        text: st.text.as_deref(),
                        evidence: st.evidence.as_deref(),
                    })
                    .collect(),
                least_certain: sc
                    .least_certain
                    .iter()
                    .map(|st| StoryView {
                        id: &st.id,
                        figure: format!(
                            "margin {:.4} over {}",
                            st.margin,
                            st.runner_up.as_deref().unwrap_or("–")
                        ),
                        text: st.text.as_deref(),
                        evidence: st.evidence.as_deref(),
                    })
                    .collect(),
            })
            .collect(),
        groups,
        low_line: summary.settings.low_confidence_below.to_string(),
    }
}

/// Renders the page.
pub fn render(summary: &Summary) -> Result<String> {
    let mut env = Environment::new();
    // Escape everything, whatever the template's name.
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_formatter(|out, state, value| match value.as_str() {
        Some(text) if !value.is_safe() && text.chars().any(unsafe_to_show) => {
            let shown: String = (text.chars())
                .map(|c| if unsafe_to_show(c) { ' ' } else { c })
                .collect();
            escape_formatter(out, state, &Value::from(shown))
        }
        _ => escape_formatter(out, state, value),
    });
    let fail = |e: minijinja::Error| Error::Usage(format!("rendering the HTML report: {e:#}"));
    env.add_template("report.html", TEMPLATE).map_err(fail)?;
    let template = env.get_template("report.html").map_err(fail)?;
    let mut page = template
        .render(Value::from_serialize(view(summary)))
        .map_err(fail)?;
    if !page.ends_with('\n') {
        page.push('\n');
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twelve_named_scenarios_get_twelve_colours_and_other_stays_grey() {
        let named: std::collections::HashSet<_> = (0..12)
            .map(|i| colour(i, &format!("scenario_{i}")))
            .collect();
        assert_eq!(named.len(), 12);
        assert!(!named.contains(OTHER_COLOUR));
        assert_eq!(colour(3, crate::taxonomy::OTHER), OTHER_COLOUR);
    }
}
