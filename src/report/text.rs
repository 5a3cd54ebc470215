//! The terminal report: aligned tables with share bars. Colour (ANSI, through `anstyle`) only
//! when the caller asks for it; see [`crate::report::ColorChoice`] for when it does.
//!
//! Everything that comes from the input (ids, group values, story text) has its control
//! characters removed first, so a story cannot drive the terminal.

use anstyle::{AnsiColor, Style};
use unicode_width::UnicodeWidthStr;

use crate::input::unsafe_to_show;
use crate::report::stats::{
    GroupCell, GroupRow, GroupTable, Reading, ScenarioSummary, StoryRef, Summary, Totals,
};
use crate::report::{fit_cells, group_label, n_rows, num, pct};

/// Width of a share bar at 100%, in character cells.
const BAR_WIDTH: usize = 25;

/// Lines of prose are wrapped to this width, or to a narrower terminal's.
const WRAP: usize = 96;

/// Prose is never wrapped narrower than this, however narrow the terminal.
const MIN_WRAP: usize = 40;

/// Groups listed in the text table; the JSON has them all.
pub const MAX_GROUPS_SHOWN: usize = 40;

const PLAIN: Style = Style::new();
const BOLD: Style = Style::new().bold();
const DIM: Style = Style::new().dimmed();

struct Painter {
    color: bool,
    /// Columns prose is wrapped to.
    width: usize,
    /// The terminal's columns, when the report goes to one: tables drop their decoration to
    /// fit a narrow one.
    terminal: Option<usize>,
}

impl Painter {
    fn paint(&self, style: Style, text: &str) -> String {
        if self.color && style != PLAIN && !text.is_empty() {
            format!("{style}{text}{style:#}")
        } else {
            text.to_string()
        }
    }
    fn heading(&self, text: &str) -> String {
        let lines: Vec<String> = wrap(text, 0, 2, self.width)
            .lines()
            .map(|l| self.paint(Style::new().bold().underline(), l))
            .collect();
        lines.join("\n")
    }
    /// Prose made of spans in different styles, wrapped as [`wrap`] wraps it, each span
    /// keeping its style across the break.
    fn wrap_spans(&self, spans: &[(Style, &str)], indent: usize, hang: usize) -> String {
        let plain: String = spans.iter().map(|(_, t)| *t).collect();
        let wrapped = wrap(&plain, indent, hang, self.width);
        if !self.color {
            return wrapped;
        }
        // `wrap` moves only whitespace, so the n-th visible character it writes is the n-th
        // of the spans; a space takes the style of the character before it.
        let mut styles = spans
            .iter()
            .flat_map(|(style, t)| t.chars().filter(|c| !c.is_whitespace()).map(|_| *style));
        let mut out = String::new();
        for line in wrapped.lines() {
            let body = line.trim_start();
            out += &line[..line.len() - body.len()];
            let mut run = (PLAIN, String::new());
            for ch in body.chars() {
                let style = match ch.is_whitespace() {
                    true => run.0,
                    false => styles.next().unwrap_or_default(),
                };
                if style != run.0 {
                    out += &self.paint(run.0, &run.1);
                    run = (style, String::new());
                }
                run.1.push(ch);
            }
            out += &self.paint(run.0, &run.1);
            out.push('\n');
        }
        out
    }
    fn bold(&self, text: &str) -> String {
        self.paint(BOLD, text)
    }
    fn dim(&self, text: &str) -> String {
        self.paint(DIM, text)
    }
    fn bar(&self, text: &str) -> String {
        self.paint(AnsiColor::Cyan.on_default(), text)
    }
    fn warn(&self, text: &str) -> String {
        self.paint(AnsiColor::Yellow.on_default().bold(), text)
    }
}

/// Removes control characters (escape sequences, bells, line breaks) and right-to-left
/// reordering marks from input text.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if unsafe_to_show(c) { ' ' } else { c })
        .collect()
}

/// Pads `s` to `width` terminal cells (left-aligned); a wide character (CJK) takes two.
fn pad(s: &str, width: usize) -> String {
    format!("{s}{}", " ".repeat(width.saturating_sub(s.width())))
}

/// Pads `s` to `width` terminal cells (right-aligned).
fn rpad(s: &str, width: usize) -> String {
    format!("{}{s}", " ".repeat(width.saturating_sub(s.width())))
}

/// A horizontal bar of `share` × `cells` cells, in eighths of a cell.
pub fn share_bar(share: f64, cells: usize) -> String {
    const PARTS: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
    let eighths = (share.clamp(0.0, 1.0) * (cells * 8) as f64).round() as usize;
    let mut s = "█".repeat(eighths / 8);
    let rest = eighths % 8;
    if rest > 0 {
        s.push(PARTS[rest]);
    }
    s
}

/// One character per histogram bin: `·` for an empty bin, else ▁ to █ scaled to the
/// scenario's fullest bin.
pub fn sparkline(bins: &[u64]) -> String {
    const LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = bins.iter().copied().max().unwrap_or(0);
    bins.iter()
        .map(|&n| {
            if n == 0 {
                '·'
            } else {
                LEVELS[((n as f64 / max as f64) * 7.0).round() as usize]
            }
        })
        .collect()
}

/// Wraps prose to `columns` terminal cells with `indent` spaces before the first line and
/// `indent + hang` before the others. A word wider than a line (Chinese or Japanese, written
/// without spaces, or a URL) starts a line and is broken between characters, as the HTML page
/// breaks it.
fn wrap(text: &str, indent: usize, hang: usize, columns: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    let mut width = indent;
    let mut flush = |line: &mut String, width: &mut usize| {
        out += &format!("{}{line}\n", " ".repeat(*width));
        line.clear();
        *width = indent + hang;
    };
    for word in text.split_whitespace() {
        let mut rest = word;
        while !rest.is_empty() {
            let gap = usize::from(!line.is_empty());
            let room = columns.saturating_sub(width + line.width() + gap);
            if rest.width() > room && !line.is_empty() {
                flush(&mut line, &mut width);
                continue;
            }
            if gap == 1 {
                line.push(' ');
            }
            let (head, tail) = split_at_width(rest, room);
            line.push_str(head);
            rest = tail;
            if !rest.is_empty() {
                flush(&mut line, &mut width);
            }
        }
    }
    if !line.is_empty() {
        flush(&mut line, &mut width);
    }
    out
}

/// `s` split after as many characters as fit in `room` cells, and at least one. A character
/// is what is drawn as one (an emoji joined from several, a letter with its accent), measured
/// as drawn.
fn split_at_width(s: &str, room: usize) -> (&str, &str) {
    use unicode_segmentation::UnicodeSegmentation;
    let mut used = 0;
    for (i, g) in s.grapheme_indices(true) {
        used += g.width();
        if used > room && i > 0 {
            return s.split_at(i);
        }
    }
    (s, "")
}

/// An id as the text report shows it: cleaned, and cut where it would fill the terminal (a
/// 50,000-character id was printed whole), as warnings cut it.
fn shown_id(id: &str) -> String {
    let limit = crate::input::PRINTABLE_CHARS;
    match id.chars().nth(limit) {
        None => clean(id),
        Some(_) => format!("{}…", clean(&id.chars().take(limit).collect::<String>())),
    }
}

fn id_list(ids: &[String], count: u64) -> String {
    let shown: Vec<String> = ids.iter().map(|i| shown_id(i)).collect();
    let mut s = shown.join(", ");
    if (ids.len() as u64) < count {
        s += &format!(", … ({} more)", count - ids.len() as u64);
    }
    s
}

/// The text report; prose and stories are wrapped to [`WRAP`] columns, or to `terminal`'s
/// when it is narrower.
pub fn render(summary: &Summary, color: bool, terminal: Option<usize>) -> String {
    let width = terminal.map_or(WRAP, |t| t.clamp(MIN_WRAP, WRAP));
    let p = Painter {
        color,
        width,
        terminal,
    };
    // The scenario column fits the longest id and its own heading.
    let idw = summary
        .scenarios
        .iter()
        .map(|s| s.id.chars().count())
        .max()
        .unwrap_or(8)
        .max(8);
    let mut o = header(&p, summary);
    o += &totals(&p, summary);
    o += &scenario_table(&p, summary, idw);
    o += &histograms(&p, summary, idw);
    if let Some(g) = &summary.groups {
        o += &groups(&p, summary, g, idw);
    }
    // Stories, unless `--top 0` asked for none.
    if summary.settings.top_stories > 0 {
        o += &stories(&p, summary);
    }

    // Advice.
    o += &format!(
        "\n{}\n",
        p.heading(&format!(
            "What to do: {} per scenario",
            summary.header.taxonomy.advice_source()
        ))
    );
    for s in &summary.scenarios {
        o += &advice(&p, s);
    }
    o.lines().map(|l| format!("{}\n", l.trim_end())).collect()
}

/// The title line, where the rows came from, and which column held the story text.
fn header(p: &Painter, summary: &Summary) -> String {
    let h = &summary.header;
    let mut o = String::new();
    o += &format!(
        "{} {} ({})\n",
        p.bold("failup report:"),
        clean(&h.input.name),
        n_rows(h.input.rows)
    );
    let meta = format!(
        "failup {} · model {} · reading {} · taxonomy {} (sha256 {}) · generated {}",
        h.failup_version,
        clean(&h.model),
        clean(&Reading::describe(h.reading.as_ref())),
        clean(&h.taxonomy.name),
        &h.taxonomy.sha256[..h.taxonomy.sha256.len().min(12)],
        h.generated_at
    );
    for line in wrap(&meta, 0, 2, p.width).lines() {
        o += &format!("{}\n", p.dim(line));
    }
    match &h.text_column {
        Some(c) => o += &p.dim(&format!("story text from column '{}'", clean(c))),
        None => {
            let warning = "no story text in the input: stories are shown by id only (pass it \
                           through with `failup classify --keep-columns text`, or name the kept \
                           column that holds it with `failup report --text-column NAME`)";
            let lines: Vec<String> = wrap(warning, 0, 0, p.width)
                .lines()
                .map(|l| p.warn(l))
                .collect();
            o += &lines.join("\n");
        }
    }
    o.push('\n');

    o
}

/// Every row accounted for: classified, empty, errored, flagged, truncated.
fn totals(p: &Painter, summary: &Summary) -> String {
    let t = &summary.totals;
    let mut o = String::new();
    o += &format!("\n{}\n", p.heading("Totals"));
    let row = |label: &str, value: String, extra: String, dim: bool| {
        total_line(p, label, value, extra, dim)
    };
    o += &row("rows read", t.rows.to_string(), String::new(), false);
    o += &row(
        "classified",
        t.classified.to_string(),
        format!("(of which other: {})", t.other),
        false,
    );
    o += &row(
        "empty",
        t.empty.count.to_string(),
        id_list(&t.empty.ids, t.empty.count),
        true,
    );
    o += &row(
        "errored",
        t.errored.count.to_string(),
        errored_note(t),
        true,
    );
    for f in &t.flagged {
        o += &row(
            &clean(&f.status),
            f.count.to_string(),
            format!(
                "{} (classified, but flagged: check these rows)",
                id_list(&f.ids, f.count)
            ),
            true,
        );
    }
    o += &row("truncated", t.truncated.to_string(), String::new(), false);
    if t.also > 0 {
        let pairs: Vec<String> = t
            .also_pairs
            .iter()
            .map(|p| format!("{} + {}: {}", p.category, p.also, p.count))
            .collect();
        o += &row(
            "second scenario",
            t.also.to_string(),
            format!("(column also) {}", pairs.join(", ")),
            false,
        );
    }
    o += &row(
        "words",
        num(t.words.map(|s| s.mean), 1),
        t.words.map_or_else(
            || match (summary.header.text_column.is_some(), t.classified) {
                (true, 0) => "(no classified story)".to_string(),
                _ => "(no story text)".to_string(),
            },
            |s| format!("mean; median {:.1}", s.median),
        ),
        false,
    );
    o += &row(
        "tokens",
        num(t.tokens.map(|s| s.mean), 1),
        t.tokens
            .map_or_else(String::new, |s| format!("mean; median {:.1}", s.median)),
        false,
    );

    o
}

/// One line of the totals: a label, its figure and a note after it. A long note (a list of
/// up to 100 ids) wraps under itself; `dim` greys it.
fn total_line(p: &Painter, label: &str, value: String, note: String, dim: bool) -> String {
    let lead = format!("  {} {:>8}   ", pad(label, 15), value);
    let at = lead.width();
    let lines: Vec<String> = wrap(&note, at, 0, p.width)
        .lines()
        .map(|l| l[at..].to_string())
        .map(|l| if dim { p.dim(&l) } else { l })
        .collect();
    match lines.split_first() {
        None => format!("{lead}\n"),
        Some((first, rest)) => rest.iter().fold(format!("{lead}{first}\n"), |o, l| {
            format!("{o}{}{l}\n", " ".repeat(at))
        }),
    }
}

/// The errored rows' ids and how many failed in each way.
fn errored_note(t: &Totals) -> String {
    if t.errored.count == 0 {
        return String::new();
    }
    let statuses: Vec<String> = (t.errored.statuses.iter())
        .map(|(s, n)| format!("{}: {n}", clean(s)))
        .collect();
    format!(
        "{} ({})",
        id_list(&t.errored.ids, t.errored.count),
        statuses.join(", ")
    )
}

/// Each scenario's count and share, with its interval and confidence.
fn scenario_table(p: &Painter, summary: &Summary, idw: usize) -> String {
    let t = &summary.totals;
    let set = &summary.settings;
    let mut o = String::new();
    o += &format!(
        "\n{}\n",
        p.heading(&format!(
            "Scenarios: shares of {} classified stories, {:.0}% Wilson intervals",
            t.classified,
            set.confidence_level * 100.0
        ))
    );
    let low_label = format!("conf<{}", set.low_confidence_below);
    // The bar repeats the share in picture: on a narrow terminal it shrinks, and goes when
    // it would be too short to read, before the table wraps.
    let without_bar = 2 + idw + 2 + 6 + 2 + 6 + 2 + 13 + 2 + 9 + 2 + 6 + 2 + 8;
    let bar_cells = match p.terminal {
        Some(t) => t.saturating_sub(without_bar + 2).min(BAR_WIDTH),
        None => BAR_WIDTH,
    };
    let bar = |share: f64| match bar_cells {
        0..8 => String::new(),
        cells => format!("{}  ", p.bar(&pad(&share_bar(share, cells), cells))),
    };
    o += &format!(
        "  {}  {:>6}  {:>6}  {:<13}  {}{:>9}  {:>6}  {:>8}\n",
        pad("scenario", idw),
        "count",
        "share",
        "95% CI",
        match bar_cells {
            0..8 => String::new(),
            cells => pad("", cells + 2),
        },
        "mean conf",
        "median",
        low_label
    );
    for s in &summary.scenarios {
        let ci = s
            .share_ci
            .map_or_else(|| "–".into(), |i| format!("{}–{}", pct(i.low), pct(i.high)));
        let low = format!("{:>8}", s.confidence.low_count);
        o += &format!(
            "  {}  {:>6}  {:>6}  {:<13}  {}{:>9}  {:>6}  {}\n",
            p.bold(&pad(&s.id, idw)),
            s.count,
            s.share.map_or_else(|| "–".into(), pct),
            ci,
            bar(s.share.unwrap_or(0.0)),
            num(s.confidence.mean, 3),
            num(s.confidence.median, 3),
            if s.confidence.low_count > 0 {
                p.warn(&low)
            } else {
                low
            }
        );
    }
    let note = format!(
        "low confidence: below {} (about one such verdict in three is expected to be wrong)",
        set.low_confidence_below
    );
    for line in wrap(&note, 2, 2, p.width).lines() {
        o += &p.dim(line);
        o.push('\n');
    }

    o
}

/// Each scenario's confidence histogram, as counts and a sparkline.
fn histograms(p: &Painter, summary: &Summary, idw: usize) -> String {
    let set = &summary.settings;
    let mut o = String::new();
    o += &format!(
        "\n{}\n",
        p.heading(&format!(
            "Confidence histograms: {} bins of {}, the last one includes 1.0",
            set.histogram_bins, set.histogram_bin_width
        ))
    );
    let bins: Vec<String> = (0..set.histogram_bins)
        .map(|i| format!("{:>4.1}", i as f64 * set.histogram_bin_width))
        .collect();
    o += &format!("  {}  {}\n", pad("scenario", idw), bins.join(" "));
    for s in &summary.scenarios {
        let counts: Vec<String> = s
            .confidence
            .histogram
            .iter()
            .map(|n| format!("{n:>4}"))
            .collect();
        o += &format!(
            "  {}  {}   {}\n",
            pad(&s.id, idw),
            counts.join(" "),
            p.bar(&sparkline(&s.confidence.histogram))
        );
    }

    o
}

/// The `--group-by` table: each group's share of every scenario.
fn groups(p: &Painter, summary: &Summary, g: &GroupTable, idw: usize) -> String {
    let mut o = format!(
        "\n{}\n",
        p.heading(&format!(
            "By {}: share of each group's classified stories (count)",
            clean(&g.column)
        ))
    );
    let labels: Vec<String> = (g.groups.iter())
        .map(|r| group_label(&r.value))
        .chain(g.overflow.iter().map(|_| crate::report::POOLED.into()))
        .map(|label| fit_cells(&clean(&label), LABEL_CELLS))
        .collect();
    // The column's name is shown whole up to the values' limit, even over short values.
    let column = fit_cells(&clean(&g.column), LABEL_CELLS + 2);
    let w = GroupWidths::of(g, &labels, &column, idw);
    o += &format!(
        "  {}  {:>sw$}",
        pad(&column, w.label),
        "stories",
        sw = w.stories
    );
    for s in &summary.scenarios {
        o += &format!("  {}", rpad(&s.id, w.cell));
    }
    o.push('\n');
    let shown = g.groups.len().min(MAX_GROUPS_SHOWN);
    let shown_labels = (labels.iter().take(shown)).chain(labels.iter().skip(g.groups.len()));
    for (r, label) in g
        .groups
        .iter()
        .take(shown)
        .chain(&g.overflow)
        .zip(shown_labels)
    {
        o += &group_line(p, r, label, &w);
    }
    if g.groups.len() > shown {
        o += &format!(
            "  … {}\n",
            crate::report::more_groups(g.groups.len() - shown, &g.overflow)
        );
    }
    if g.groups.iter().any(|r| r.small) {
        let below = summary.settings.small_group_below;
        o += &p.dim(&format!(
            "  * small group: fewer than {below} classified {}, so its shares are unreliable",
            if below == 1 { "story" } else { "stories" }
        ));
        o.push('\n');
    }
    o
}

/// At most 28 cells of a group's value, and 2 for the small-group mark.
const LABEL_CELLS: usize = 28;

/// The widths of the group table's columns.
struct GroupWidths {
    label: usize,
    stories: usize,
    cell: usize,
}

impl GroupWidths {
    fn of(g: &GroupTable, labels: &[String], column: &str, idw: usize) -> GroupWidths {
        let label = (labels.iter())
            .map(|l| l.width() + 2)
            .max()
            .unwrap_or(5)
            .max(5)
            .max(column.width());
        let rows = || g.groups.iter().chain(g.overflow.iter());
        // Wide enough for the widest cell: counts of a large input run to five digits and more.
        let widest = (rows().flat_map(|r| &r.cells))
            .map(|c| group_cell(c).width())
            .max();
        let stories = (rows().map(|r| r.count.to_string().len()))
            .max()
            .unwrap_or(0)
            .max(7);
        GroupWidths {
            label,
            stories,
            cell: idw.max(12).max(widest.unwrap_or(0)),
        }
    }
}

fn group_cell(c: &GroupCell) -> String {
    format!("{} ({})", pct(c.share), c.count)
}

/// One group's row: its value, marked when the group is small, its count and its shares.
fn group_line(p: &Painter, r: &GroupRow, label: &str, w: &GroupWidths) -> String {
    let name = match r.small {
        true => format!("{label} *"),
        false => label.to_string(),
    };
    let name = pad(&name, w.label);
    let name = if r.small { p.warn(&name) } else { name };
    let mut line = format!("  {name}  {:>sw$}", r.count, sw = w.stories);
    for c in &r.cells {
        line += &format!("  {}", rpad(&group_cell(c), w.cell));
    }
    line.push('\n');
    line
}

/// The most representative and least certain stories of each scenario.
fn stories(p: &Painter, summary: &Summary) -> String {
    let mut o = format!(
        "\n{}\n",
        p.heading("Stories to check the sorting: most representative (highest confidence) and least certain (smallest margin)")
    );
    for s in &summary.scenarios {
        let title = format!(" · {}", s.title);
        o += "\n";
        o += &p.wrap_spans(&[(BOLD, &s.id), (DIM, &title)], 2, 2);
        if s.count == 0 {
            o += "    (no stories)\n";
            continue;
        }
        o += "    most representative\n";
        for st in &s.representative {
            o += &story_line(p, st, false);
        }
        o += "    least certain\n";
        for st in &s.least_certain {
            o += &story_line(p, st, true);
        }
    }
    o
}

fn story_line(p: &Painter, st: &StoryRef, with_margin: bool) -> String {
    let figure = if with_margin {
        format!(
            "margin {:.4} vs {}",
            st.margin,
            st.runner_up.as_deref().unwrap_or("–")
        )
    } else {
        format!("confidence {:.4}", st.confidence)
    };
    let (id, figure) = (shown_id(&st.id), format!(" ({figure})"));
    let used = 6 + id.width() + figure.width() + 2;
    // An id is shown as written (its spaces too) unless its line is wider than the width.
    let mut line = match used - 2 <= p.width {
        true => format!("      {}{}\n", p.bold(&id), p.dim(&figure)),
        false => p.wrap_spans(&[(BOLD, &id), (DIM, &figure)], 6, 2),
    };
    // A text that fits goes on the id's line, a longer one wrapped under it.
    match &st.text {
        Some(text) if line.lines().count() == 1 && used + text.width() <= p.width => {
            line.pop();
            line += &format!("  {text}\n");
        }
        Some(text) => line += &wrap(text, 8, 0, p.width),
        None => {}
    }
    if let Some(evidence) = &st.evidence {
        let label = "decided by:";
        line +=
            &wrap(&format!("{label} {evidence}"), 8, 2, p.width).replacen(label, &p.dim(label), 1);
    }
    line
}

fn advice(p: &Painter, s: &ScenarioSummary) -> String {
    let figures = format!(
        " ({}): {} {}, {}",
        s.id,
        s.count,
        if s.count == 1 { "story" } else { "stories" },
        s.share.map_or_else(|| "–".into(), pct)
    );
    let mut o = "\n".to_string() + &p.wrap_spans(&[(BOLD, &s.title), (PLAIN, &figures)], 2, 2);
    o += &wrap(&s.description, 4, 0, p.width);
    o += &wrap(&format!("→ {}", s.headline), 4, 2, p.width);
    for (i, a) in s.advice.iter().enumerate() {
        let number = format!("{}. ", i + 1);
        o += &wrap(&format!("{number}{a}"), 6, number.len(), p.width);
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_count_terminal_cells_and_long_values_are_shortened() {
        // 販売 takes four cells, as a terminal draws it.
        assert_eq!(pad("販売", 6), "販売  ");
        assert_eq!(rpad("café", 6), "  café");
        assert_eq!(fit_cells("engineering", 6), "engin…");
        assert_eq!(fit_cells("販売チーム", 6), "販売…");
        assert_eq!(fit_cells("販売チーム", 10), "販売チーム");
        assert!(fit_cells(&"x".repeat(100), 28).width() == 28);
    }

    /// A listed story's text and evidence wrap to the terminal's width, keeping every word in
    /// order, and the evidence's later lines hang under its first.
    #[test]
    fn a_listed_story_wraps_to_the_terminal() {
        let story = StoryRef {
            row: 7,
            id: "s7".into(),
            confidence: 0.9,
            margin: 0.1,
            runner_up: Some("other".into()),
            text: Some(
                "I have worked the ward for six years and the 販売 team knew it. ".repeat(3),
            ),
            evidence: Some(
                "They gave the charge nurse post to a woman who started in March.".into(),
            ),
        };
        for columns in [40, 61, 96] {
            let p = Painter {
                color: false,
                width: columns,
                terminal: Some(columns),
            };
            let shown = story_line(&p, &story, false);
            let lines: Vec<&str> = shown.lines().collect();
            assert!(lines.len() > 3, "{shown}");
            assert!(
                lines.iter().all(|l| l.width() <= columns),
                "{columns}: {shown}"
            );
            let words = |t: &str| t.split_whitespace().map(String::from).collect::<Vec<_>>();
            let mut want = words("s7 (confidence 0.9000)");
            want.extend(words(story.text.as_deref().unwrap()));
            want.push("decided".into());
            want.push("by:".into());
            want.extend(words(story.evidence.as_deref().unwrap()));
            assert_eq!(words(&shown), want);
            let evidence = lines
                .iter()
                .position(|l| l.contains("decided by:"))
                .unwrap();
            assert!(lines[evidence].starts_with("        decided by: They"));
            if let Some(next) = lines.get(evidence + 1) {
                assert!(next.starts_with("          ") && !next.starts_with("           "));
            }
        }
        let wide = Painter {
            color: false,
            width: WRAP,
            terminal: None,
        };
        assert_eq!(story_line(&wide, &story, false).lines().count(), 5);
        let short = StoryRef {
            text: Some("They gave it to the new hire.".into()),
            evidence: None,
            ..story
        };
        assert_eq!(
            story_line(&wide, &short, false),
            "      s7 (confidence 0.9000)  They gave it to the new hire.\n"
        );
    }

    /// Text with no spaces to break at is broken between characters, and no line is wider
    /// than the terminal; every character is kept, in order.
    #[test]
    fn a_run_without_spaces_is_broken_between_characters() {
        let chinese = "我的创业公司失败了，我们没有钱了。投资人撤资，团队解散。".repeat(4);
        let url = format!("see https://example.org/{}", "a".repeat(150));
        for (text, columns) in [(chinese.as_str(), 40), (url.as_str(), 60), ("ab cd", 3)] {
            let shown = wrap(text, 4, 2, columns);
            assert!(
                // Past an indent as wide as the terminal, one character to a line.
                shown.lines().all(|l| l.width() <= columns.max(4 + 2 + 1)),
                "{columns}: {shown}"
            );
            let joined: String = shown.split_whitespace().collect();
            assert_eq!(joined, text.replace(' ', ""));
            assert!(shown.lines().count() > 1, "{shown}");
        }
        assert_eq!(
            wrap("see https://x.org/abc", 0, 0, 10),
            "see\nhttps://x.\norg/abc\n"
        );
        assert_eq!(wrap("a 販売チーム", 2, 0, 7), "  a\n  販売\n  チー\n  ム\n");
        // An emoji joined from several characters, or with a skin tone or a presentation
        // mark, is drawn as one and never cut; a letter keeps its accent.
        let family = "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}";
        let thumb = "\u{1F44D}\u{1F3FD}";
        let heart = "\u{2764}\u{FE0F}";
        for glyph in [family, thumb, heart, "e\u{301}"] {
            let run = glyph.repeat(30);
            let shown = wrap(&run, 0, 0, 21);
            assert!(shown.lines().all(|l| l.width() <= 21), "{shown}");
            assert!(shown.lines().all(|l| l.len() % glyph.len() == 0), "{shown}");
            assert_eq!(shown.replace('\n', ""), run);
        }
    }

    /// A summary of one story per scenario, for tests of the layout.
    fn small_summary() -> Summary {
        use crate::report::stats::{Header, InputInfo, ReportRow, SummaryBuilder, TaxonomyInfo};
        let taxonomy = crate::taxonomy::Taxonomy::builtin();
        let mut builder = SummaryBuilder::new(&taxonomy, Default::default());
        for i in 0..taxonomy.scenarios.len() {
            builder.add(ReportRow {
                row: i as u64 + 1,
                id: format!("s{i}"),
                category: Some(i),
                confidence: 0.8,
                runner_up: None,
                margin: 0.1,
                tokens: 12,
                truncated: false,
                also: None,
                status: "ok".into(),
                text: None,
                evidence: None,
                group: None,
            });
        }
        builder.finish(Header {
            failup_version: "0".into(),
            model: "m".into(),
            reading: None,
            taxonomy: TaxonomyInfo::new(None, "0".repeat(64)),
            input: InputInfo {
                name: "in.csv".into(),
                rows: 0,
            },
            generated_at: "2026-01-01T00:00:00Z".into(),
            text_column: None,
            group_by: None,
        })
    }

    /// On a terminal narrower than the scenario table, its share bars shrink, then go, before
    /// its lines would wrap; a file, or a wide terminal, gets them whole.
    #[test]
    fn the_share_bars_give_way_on_a_narrow_terminal() {
        let summary = small_summary();
        let table = |terminal: Option<usize>| -> Vec<String> {
            render(&summary, false, terminal)
                .lines()
                .skip_while(|l| !l.starts_with("Scenarios:"))
                .skip(1)
                .take(5)
                .map(String::from)
                .collect()
        };
        let full = table(None);
        assert_eq!(full, table(Some(200)));
        assert!(full[1].contains(&"█".repeat(6)), "{full:#?}");
        let widest = |lines: &[String]| lines.iter().map(|l| l.width()).max().unwrap();
        assert!(widest(&full) > 96, "{full:#?}");
        for columns in [96, 90, 84] {
            let lines = table(Some(columns));
            assert!(widest(&lines) <= columns, "{columns}: {lines:#?}");
            assert!(lines[1].contains('█'), "{lines:#?}");
        }
        let narrow = table(Some(80));
        assert!(widest(&narrow) <= 80, "{narrow:#?}");
        // Its note too, at the narrowest.
        let text = render(&summary, false, Some(60));
        let note: Vec<&str> = (text.lines())
            .skip_while(|l| !l.contains("low confidence:"))
            .take(2)
            .collect();
        assert!(
            note.iter().all(|l| l.width() <= 60) && note[1].starts_with("    "),
            "{note:?}"
        );
        assert!(narrow.iter().all(|l| !l.contains('█')), "{narrow:#?}");
        // Every figure is still there.
        assert!(narrow[0].contains("mean conf") && narrow[1].contains("25.0%"));
    }

    /// A heading longer than the terminal wraps like prose.
    #[test]
    fn headings_wrap_to_the_terminal() {
        let text = render(&small_summary(), false, Some(80));
        let at = text.find("Stories to check the sorting:").unwrap();
        let heading: Vec<&str> = text[at..].lines().take(2).collect();
        assert!(heading.iter().all(|l| l.width() <= 80), "{heading:?}");
        assert!(heading[1].starts_with("  ") && heading[1].ends_with("(smallest margin)"));
    }

    /// The scenarios' own headings, in the stories and the advice, wrap too.
    #[test]
    fn scenario_headings_wrap_to_the_terminal() {
        let text = render(&small_summary(), false, Some(40));
        for start in ["  lost_pitch · ", "  A new-business pitch you led and lost"] {
            let at = text.find(start).unwrap();
            let lines: Vec<&str> = text[at..].lines().take(2).collect();
            assert!(lines.iter().all(|l| l.width() <= 40), "{lines:?}");
            assert!(lines[1].starts_with("    "), "{lines:?}");
        }
    }

    #[test]
    fn wrapped_spans_keep_their_styles_across_the_break() {
        let p = Painter {
            color: true,
            width: 10,
            terminal: None,
        };
        let text = p.wrap_spans(&[(BOLD, "aaa bbb ccc"), (PLAIN, " d")], 0, 2);
        let bold = |t: &str| format!("{BOLD}{t}{BOLD:#}");
        assert_eq!(text, format!("{}\n  {}d\n", bold("aaa bbb"), bold("ccc ")));
        let plain = Painter { color: false, ..p };
        let text = plain.wrap_spans(&[(BOLD, "aaa bbb ccc"), (PLAIN, " d")], 0, 2);
        assert_eq!(text, "aaa bbb\n  ccc d\n");
    }

    #[test]
    fn bars_have_eighths() {
        assert_eq!(share_bar(0.0, BAR_WIDTH), "");
        assert_eq!(share_bar(1.0, BAR_WIDTH).chars().count(), BAR_WIDTH);
        assert_eq!(share_bar(0.4, BAR_WIDTH), "██████████");
        assert_eq!(share_bar(0.41, BAR_WIDTH), "██████████▎");
        assert_eq!(share_bar(0.5, 10), "█████");
    }

    #[test]
    fn sparkline_scales_to_the_fullest_bin() {
        assert_eq!(sparkline(&[0, 1, 2, 4]), "·▃▅█");
    }

    #[test]
    fn clean_removes_escape_sequences() {
        assert_eq!(clean("a\u{1b}[2Jb\n"), "a [2Jb ");
    }

    #[test]
    fn a_long_id_is_cut_as_warnings_cut_it() {
        let limit = crate::input::PRINTABLE_CHARS;
        assert_eq!(shown_id(&"é".repeat(limit)), "é".repeat(limit));
        let long = shown_id(&format!("{}\u{1b}x", "a".repeat(limit)));
        assert_eq!(long, format!("{}…", "a".repeat(limit)));
    }
}
