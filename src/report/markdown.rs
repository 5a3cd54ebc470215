//! The Markdown report, for GitHub-flavoured Markdown: headings, pipe tables and lists.
//!
//! Text from the input (ids, group values, stories) is escaped so it renders as literal text:
//! Markdown punctuation gets a backslash, `<`, `>` and `&` become entities (GitHub would
//! otherwise read `<script>` as HTML), `|` cannot break a table and line breaks become spaces.

use crate::input::unsafe_to_show;
use crate::report::stats::{GroupTable, Reading, StoryRef, Summary};
use crate::report::{group_label, num, pct};

/// Groups listed in the Markdown table; the JSON has them all.
pub const MAX_GROUPS_SHOWN: usize = 100;

/// Escapes text for use inline (also inside a table cell): emphasis, code, link and table
/// punctuation gets a backslash; a character that would start a block (a list, a heading, a
/// quote) is escaped at the start of the text.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 8);
    for (i, c) in s.chars().enumerate() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' => {
                o.push('\\');
                o.push(c);
            }
            '-' | '+' | '#' | '=' if i == 0 => {
                o.push('\\');
                o.push(c);
            }
            c if c.is_whitespace() || unsafe_to_show(c) => o.push(' '),
            c => o.push(c),
        }
    }
    // "1. text" at the start would become a numbered list.
    let digits = o.chars().take_while(char::is_ascii_digit).count();
    if digits > 0 && matches!(o[digits..].chars().next(), Some('.' | ')')) {
        o.insert(digits, '\\');
    }
    o
}

fn ids(list: &[String], count: u64) -> String {
    if count == 0 {
        return "–".into();
    }
    let mut s = list
        .iter()
        .map(|i| code_span(i, true))
        .collect::<Vec<_>>()
        .join(", ");
    if (list.len() as u64) < count {
        s += &format!(", … ({} more)", count - list.len() as u64);
    }
    s
}

/// `s` as a code span that shows it exactly: fenced with one backtick more than its longest
/// run of them, and padded with a space where it starts or ends with a backtick or a space
/// (CommonMark takes one space off each end). Line breaks become spaces, as in any span. In a
/// table cell a `|` would end the cell, even inside code, so it is escaped as GFM asks.
fn code_span(s: &str, in_table: bool) -> String {
    let mut text: String = s
        .chars()
        .map(|c| if unsafe_to_show(c) { ' ' } else { c })
        .collect();
    if text.is_empty() {
        return "` `".into();
    }
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let edge = |c: Option<char>| matches!(c, Some('`' | ' '));
    if edge(text.chars().next()) || edge(text.chars().last()) {
        text = format!(" {text} ");
    }
    if in_table {
        text = text.replace('|', "\\|");
    }
    format!("{fence}{text}{fence}")
}

pub fn render(summary: &Summary) -> String {
    let mut o = header(summary);
    o += &totals(summary);
    o += &scenario_table(summary);
    o += &histograms(summary);
    if let Some(g) = &summary.groups {
        o += &groups(summary, g);
    }
    if summary.settings.top_stories > 0 {
        o += &stories(summary);
    }
    o + &advice(summary)
}

/// Where the rows came from, the model and taxonomy, and which column held the story text.
fn header(summary: &Summary) -> String {
    let h = &summary.header;
    let mut o = String::new();
    o += &format!("# failup report: {}\n\n", code_span(&h.input.name, false));
    o += "| | |\n|---|---|\n";
    o += &format!(
        "| input | {}, {} |\n",
        code_span(&h.input.name, true),
        super::n_rows(h.input.rows)
    );
    o += &format!("| failup | {} |\n", h.failup_version);
    o += &format!("| model | {} |\n", escape(&h.model));
    o += &format!(
        "| read with | {} |\n",
        escape(&Reading::describe(h.reading.as_ref()))
    );
    o += &format!(
        "| taxonomy | {} (sha256 `{}`) |\n",
        escape(&h.taxonomy.name),
        h.taxonomy.sha256
    );
    o += &format!("| generated | {} |\n", h.generated_at);
    o += &format!(
        "| story text | {} |\n",
        match &h.text_column {
            Some(c) => format!("column {}", code_span(c, true)),
            None => "not in the input: stories are shown by id only (pass it through with \
                     `failup classify --keep-columns text`, or name the kept column that holds \
                     it with `failup report --text-column NAME`)"
                .to_string(),
        }
    );
    if let Some(g) = &h.group_by {
        o += &format!("| grouped by | {} |\n", code_span(g, true));
    }
    o
}

/// Every row accounted for, and the stories' lengths.
fn totals(summary: &Summary) -> String {
    let t = &summary.totals;
    let mut o = String::new();
    o += "\n## Totals\n\n| | count | rows |\n|---|---:|---|\n";
    o += &format!("| rows read | {} | |\n", t.rows);
    o += &format!("| classified | {} | |\n", t.classified);
    o += &format!("| of which `other` | {} | |\n", t.other);
    o += &format!(
        "| empty | {} | {} |\n",
        t.empty.count,
        ids(&t.empty.ids, t.empty.count)
    );
    let statuses: Vec<String> = t
        .errored
        .statuses
        .iter()
        .map(|(s, n)| format!("{}: {n}", code_span(s, true)))
        .collect();
    o += &format!(
        "| errored | {} | {}{} |\n",
        t.errored.count,
        ids(&t.errored.ids, t.errored.count),
        if statuses.is_empty() {
            String::new()
        } else {
            format!(" ({})", statuses.join(", "))
        }
    );
    for f in &t.flagged {
        o += &format!(
            "| flagged {} (classified) | {} | {} |\n",
            code_span(&f.status, true),
            f.count,
            ids(&f.ids, f.count)
        );
    }
    o += &format!("| truncated to the model's window | {} | |\n", t.truncated);
    if t.also > 0 {
        let pairs: Vec<String> = t
            .also_pairs
            .iter()
            .map(|p| format!("{} + {}: {}", escape(&p.category), escape(&p.also), p.count))
            .collect();
        o += &format!(
            "| with a second scenario (`also`) | {} | {} |\n",
            t.also,
            pairs.join(", ")
        );
    }
    o += "\n| story length | mean | median |\n|---|---:|---:|\n";
    o += &format!(
        "| words | {} | {} |\n",
        num(t.words.map(|s| s.mean), 1),
        num(t.words.map(|s| s.median), 1)
    );
    o += &format!(
        "| tokens | {} | {} |\n",
        num(t.tokens.map(|s| s.mean), 1),
        num(t.tokens.map(|s| s.median), 1)
    );
    o
}

/// Each scenario's count and share, with its interval and confidence.
fn scenario_table(summary: &Summary) -> String {
    let t = &summary.totals;
    let set = &summary.settings;
    let mut o = String::new();
    o += &format!(
        "\n## Scenarios\n\nShares of the {} classified stories, with {:.0}% Wilson score \
         intervals. *Low confidence* counts stories whose confidence is below {}.\n\n",
        t.classified,
        set.confidence_level * 100.0,
        set.low_confidence_below
    );
    o += "| scenario | count | share | 95% CI | mean confidence | median confidence | low confidence |\n";
    o += "|---|---:|---:|---|---:|---:|---:|\n";
    for s in &summary.scenarios {
        o += &format!(
            "| {} (`{}`) | {} | {} | {} | {} | {} | {} |\n",
            escape(&s.title),
            s.id,
            s.count,
            s.share.map_or_else(|| "–".into(), pct),
            s.share_ci.map_or_else(
                || "–".into(),
                |i| format!("{} – {}", pct(i.low), pct(i.high))
            ),
            num(s.confidence.mean, 3),
            num(s.confidence.median, 3),
            s.confidence.low_count
        );
    }
    o
}

/// Stories per confidence bin of each scenario.
fn histograms(summary: &Summary) -> String {
    let set = &summary.settings;
    let mut o = String::new();
    o += &format!(
        "\n### Confidence histograms\n\nStories per confidence bin ({} bins of {}; each bin \
         includes its lower edge, the last one also 1.0).\n\n",
        set.histogram_bins, set.histogram_bin_width
    );
    o += "| scenario |";
    for i in 0..set.histogram_bins {
        let lo = i as f64 * set.histogram_bin_width;
        o += &format!(" {lo:.1}–{:.1} |", lo + set.histogram_bin_width);
    }
    o += "\n|---|";
    o += &"---:|".repeat(set.histogram_bins);
    o.push('\n');
    for s in &summary.scenarios {
        o += &format!("| `{}` |", s.id);
        for n in &s.confidence.histogram {
            o += &format!(" {n} |");
        }
        o.push('\n');
    }
    o
}

/// The `--group-by` table: each group's share of every scenario.
fn groups(summary: &Summary, g: &GroupTable) -> String {
    let set = &summary.settings;
    let mut o = String::new();
    o += &format!(
        "\n## By {}\n\nShare of each group's classified stories, with counts; largest \
         groups first. ⚠ marks a small group (fewer than {}), whose shares are \
         unreliable.\n\n",
        code_span(&g.column, false),
        super::story_count(set.small_group_below)
    );
    o += &format!("| {} | stories |", escape(&g.column));
    for s in &summary.scenarios {
        o += &format!(" `{}` |", s.id);
    }
    o += "\n|---|---:|";
    o += &"---:|".repeat(summary.scenarios.len());
    o.push('\n');
    let shown = g.groups.len().min(MAX_GROUPS_SHOWN);
    let labelled = g
        .groups
        .iter()
        .take(shown)
        .map(|r| (group_label(&r.value), r));
    let pooled = g.overflow.iter().map(|r| (crate::report::POOLED.into(), r));
    for (label, r) in labelled.chain(pooled) {
        o += &format!(
            "| {}{} | {} |",
            escape(&label),
            if r.small { " ⚠" } else { "" },
            r.count
        );
        for c in &r.cells {
            o += &format!(" {} ({}) |", pct(c.share), c.count);
        }
        o.push('\n');
    }
    if g.groups.len() > shown {
        let more = crate::report::more_groups(g.groups.len() - shown, &g.overflow);
        o += &format!("\n… and {more}.\n");
    }
    o
}

/// The advice for each scenario.
fn advice(summary: &Summary) -> String {
    let mut o = String::new();
    let source = escape(&summary.header.taxonomy.advice_source());
    let mut letters = source.chars();
    let first = letters.next().map(|c| c.to_uppercase().to_string());
    o += &format!(
        "\n## What to do\n\n{}{} for each scenario.\n",
        first.unwrap_or_default(),
        letters.as_str()
    );
    for s in &summary.scenarios {
        o += &format!(
            "\n### {}\n\n`{}` · {} {} · {}\n\n{}\n\n**{}**\n\n",
            escape(&s.title),
            s.id,
            s.count,
            if s.count == 1 { "story" } else { "stories" },
            s.share.map_or_else(|| "–".into(), pct),
            escape(&s.description),
            escape(&s.headline)
        );
        for (i, a) in s.advice.iter().enumerate() {
            o += &format!("{}. {}\n", i + 1, escape(a));
        }
    }
    o
}

/// The most representative and least certain stories of each scenario.
fn stories(summary: &Summary) -> String {
    let mut o = String::from(
        "\n## Stories to check the sorting\n\nPer scenario, the most representative stories \
         (highest confidence) and the least certain ones (smallest margin over the \
         runner-up).\n",
    );
    for s in &summary.scenarios {
        o += &format!("\n### {} (`{}`)\n\n", escape(&s.title), s.id);
        if s.count == 0 {
            o += "No stories.\n";
            continue;
        }
        o += "Most representative:\n\n";
        for st in &s.representative {
            o += &story(st, false);
        }
        o += "\nLeast certain:\n\n";
        for st in &s.least_certain {
            o += &story(st, true);
        }
    }
    o
}

fn story(st: &StoryRef, with_margin: bool) -> String {
    let figure = if with_margin {
        format!(
            "margin {:.4} over `{}`",
            st.margin,
            st.runner_up.as_deref().unwrap_or("–")
        )
    } else {
        format!("confidence {:.4}", st.confidence)
    };
    let mut line = match &st.text {
        Some(t) => format!("- {} ({figure}): {}\n", code_span(&st.id, false), escape(t)),
        None => format!("- {} ({figure})\n", code_span(&st.id, false)),
    };
    if let Some(e) = &st.evidence {
        line += &format!("  - decided by: **{}**\n", escape(e));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_makes_html_and_tables_literal() {
        assert_eq!(
            escape("<script>alert(1)</script> | *x*"),
            "&lt;script&gt;alert(1)&lt;/script&gt; \\| \\*x\\*"
        );
        assert_eq!(escape("a\nb"), "a b");
        assert_eq!(escape("- x - y"), "\\- x - y");
        assert_eq!(escape("12. x"), "12\\. x");
    }

    #[test]
    fn code_spans_show_their_text_exactly_and_cannot_break_out() {
        assert_eq!(code_span("plain", false), "`plain`");
        assert_eq!(code_span("a`b|c\n", false), "`` a`b|c  ``");
        assert_eq!(code_span("a`b|c", true), "``a`b\\|c``");
        assert_eq!(code_span("`x``", false), "``` `x`` ```");
        assert_eq!(code_span(" x ", false), "`  x  `");
        assert_eq!(code_span("", false), "` `");
    }
}
