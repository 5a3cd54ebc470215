//! `failup report`: figures checked by value on a hand-made classify output, snapshots of the
//! text, Markdown and HTML renderings, error handling, and the HTML page in a real browser.
//!
//! The fixture `tests/fixtures/report_classified.csv` (and the same rows as JSONL) has 12 rows
//! whose figures are worked out by hand below. Columns: id, category, confidence, runner_up,
//! margin, scores, tokens, truncated, status, advice, team, text.
//!
//! | id  | category     | conf | runner_up    | margin  | tokens | status    | team  | words |
//! |-----|--------------|------|--------------|---------|--------|-----------|-------|-------|
//! | r01 | passed_over  | 0.95 | lost_pitch   |  0.12   |  20    | ok        | north |  9    |
//! | r02 | passed_over  | 0.82 | other        |  0.08   | 300 (truncated) | ok | north | 53  |
//! | r03 | passed_over  | 0.45 | lost_pitch   |  0.01   |  16    | ok        | south |  7    |
//! | r04 | pivot_regret | 0.70 | other        |  0.05   |  18    | ok        | north |  9    |
//! | r05 | pivot_regret | 0.30 | passed_over  |  0.005  |  12    | ok        | south |  7    |
//! | r06 | lost_pitch   | 1.00 | other        |  0.25   |  14    | ok        | north |  7    |
//! | r07 | other        | 0.60 | pivot_regret |  0.03   |  10    | ok        | south |  6    |
//! | r08 | –            |      |              |         |   0    | empty     | south |       |
//! | r09 | passed_over  | 0.50 | lost_pitch   |  0.02   |  22    | malformed | north |  7    |
//! | r10 | –            |      |              |         | 900    | too_long  | north |       |
//! | r11 | lost_pitch   | 0.55 | passed_over  |  0.04   |  24    | ok        | south |  7    |
//! | r12 | other        | 0.10 | passed_over  | -0.01   |  30    | ok        | north |  7    |
//!
//! r11's text starts with `<script>alert(1)</script>`, r12's with `"><img src=x onerror=…>`.

mod common;

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{failup, failup_env, failup_in, fixture, stderr, stdout, HASHED};
use serde_json::Value;

const CSV: &str = "report_classified.csv";
const JSONL: &str = "report_classified.jsonl";

fn fixture_str(name: &str) -> String {
    fixture(name).display().to_string()
}

/// Runs `failup report FIXTURE ARGS…` from the repository root and returns stdout; panics
/// with stderr on failure.
fn report(input: &str, args: &[&str]) -> String {
    let path = fixture_str(input);
    let mut all = vec!["report", path.as_str()];
    all.extend_from_slice(args);
    let out = failup(&all);
    assert!(
        out.status.success(),
        "failup {all:?} failed: {}",
        stderr(&out)
    );
    stdout(&out)
}

fn report_json(input: &str, args: &[&str]) -> Value {
    let mut all = vec!["--format", "json"];
    all.extend_from_slice(args);
    serde_json::from_str(&report(input, &all)).expect("the JSON report parses")
}

/// Replaces RFC 3339 timestamps (`2026-01-31T12:00:00Z`) with `[timestamp]` and failup's
/// version with `[version]` and the built-in taxonomy's hash with `[taxonomy-sha256]`, so
/// snapshots survive the clock, releases and taxonomy edits.
fn redact(text: &str) -> String {
    let bytes = text.as_bytes();
    let pattern = b"dddd-dd-ddTdd:dd:ddZ";
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let matches = i + pattern.len() <= bytes.len()
            && pattern.iter().zip(&bytes[i..]).all(|(p, b)| match p {
                b'd' => b.is_ascii_digit(),
                p => p == b,
            });
        if matches {
            out.push_str("[timestamp]");
            i += pattern.len();
        } else {
            let ch = text[i..].chars().next().expect("in bounds");
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    // The built-in taxonomy's hash changes whenever its prototypes are edited.
    let taxonomy_hash: String = Sha256::digest(failup::taxonomy::DEFAULT_TOML.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    out.replace(&taxonomy_hash, "[taxonomy-sha256]")
        .replace(&taxonomy_hash[..12], "[taxonomy-sha256]")
        .replace(
            &format!("failup {}", env!("CARGO_PKG_VERSION")),
            "failup [version]",
        )
        .replace(
            &format!("\"{}\"", env!("CARGO_PKG_VERSION")),
            "\"[version]\"",
        )
        .replace(
            &format!("<dd>{}</dd>", env!("CARGO_PKG_VERSION")),
            "<dd>[version]</dd>",
        )
        .replace(
            &format!("| failup | {} |", env!("CARGO_PKG_VERSION")),
            "| failup | [version] |",
        )
}

fn close(v: &Value, expected: f64) -> bool {
    v.as_f64().is_some_and(|x| (x - expected).abs() < 1e-9)
}

fn assert_num(v: &Value, expected: f64, what: &str) {
    assert!(close(v, expected), "{what}: got {v}, expected {expected}");
}

fn ids(v: &Value) -> Vec<&str> {
    v.as_array()
        .expect("a list")
        .iter()
        .map(|x| x.as_str().expect("a string id"))
        .collect()
}

fn story_ids(v: &Value) -> Vec<&str> {
    v.as_array()
        .expect("a list")
        .iter()
        .map(|x| x["id"].as_str().expect("an id"))
        .collect()
}

#[test]
fn json_report_figures_match_the_hand_computation() {
    let j = report_json(CSV, &["--group-by", "team", "--min-group-size", "5"]);
    assert_eq!(j["schema_version"], 1);

    // Header.
    let h = &j["header"];
    assert_eq!(h["failup_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(h["model"], "all-MiniLM-L6-v2");
    assert_eq!(h["taxonomy"]["name"], "built-in");
    assert_eq!(h["taxonomy"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(h["input"]["name"], CSV);
    assert_eq!(h["input"]["rows"], 12);
    assert_eq!(h["text_column"], "text");
    assert_eq!(h["group_by"], "team");
    assert!(h["generated_at"].as_str().unwrap().ends_with('Z'));

    // Settings: the documented constants.
    let s = &j["settings"];
    assert_num(&s["z"], 1.96, "z");
    assert_num(&s["low_confidence_below"], 0.7, "low line");
    assert_eq!(s["histogram_bins"], 10);
    assert_eq!(s["small_group_below"], 5);

    // Totals: 12 rows; r08 is empty and r10 errored (too_long), so 10 are classified, 2 of
    // them `other` (r07, r12). r09 is classified but flagged malformed; r02 is truncated.
    let t = &j["totals"];
    assert_eq!(t["rows"], 12);
    assert_eq!(t["classified"], 10);
    assert_eq!(t["other"], 2);
    assert_eq!(t["empty"]["count"], 1);
    assert_eq!(ids(&t["empty"]["ids"]), ["r08"]);
    assert_eq!(t["errored"]["count"], 1);
    assert_eq!(ids(&t["errored"]["ids"]), ["r10"]);
    assert_eq!(t["errored"]["statuses"]["too_long"], 1);
    assert_eq!(t["flagged"][0]["status"], "malformed");
    assert_eq!(ids(&t["flagged"][0]["ids"]), ["r09"]);
    assert_eq!(t["truncated"], 1);
    // Tokens of the 10 classified rows: 20+300+16+18+12+14+10+22+24+30 = 466 → mean 46.6;
    // sorted 10 12 14 16 18 | 20 22 24 30 300 → median (18+20)/2 = 19.
    assert_num(&t["tokens"]["mean"], 46.6, "mean tokens");
    assert_num(&t["tokens"]["median"], 19.0, "median tokens");
    // Words: 9+53+7+9+7+7+6+7+7+7 = 119 → mean 11.9; sorted 6 7 7 7 7 | 7 7 9 9 53 → 7.
    assert_num(&t["words"]["mean"], 11.9, "mean words");
    assert_num(&t["words"]["median"], 7.0, "median words");

    // Per scenario. Shares of 10: passed_over 4 (r01 r02 r03 r09), the others 2 each.
    // Wilson, z = 1.96, z² = 3.8416:
    //   4/10: centre (0.4 + 0.19208)/1.38416 = 0.427754, half 1.96·√(0.024+0.009604)/1.38416
    //         = 0.259576 → [0.1682, 0.6873]
    //   2/10: centre 0.39208/1.38416 = 0.283262, half 1.96·√(0.016+0.009604)/1.38416
    //         = 0.226582 → [0.0567, 0.5098]
    let sc = j["scenarios"].as_array().unwrap();
    let by_id = |id: &str| sc.iter().find(|s| s["id"] == id).unwrap();
    assert_eq!(
        sc.iter()
            .map(|s| s["id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["passed_over", "pivot_regret", "lost_pitch", "other"]
    );
    let expected = [
        // id, count, share, ci low, ci high, mean conf, median conf, low count, histogram
        // passed_over: 0.95 0.82 0.45 0.50 → mean 2.72/4 = 0.68, median (0.50+0.82)/2 = 0.66;
        //   0.45 and 0.50 are low (below 0.7); bins 9, 8, 4, 5.
        (
            "passed_over",
            4,
            0.4,
            0.1682,
            0.6873,
            0.68,
            0.66,
            2,
            [0, 0, 0, 0, 1, 1, 0, 0, 1, 1],
        ),
        // pivot_regret: 0.70 0.30 → mean = median = 0.5; 0.30 low (0.70 is not: the line is
        // strict); bins 7, 3.
        (
            "pivot_regret",
            2,
            0.2,
            0.0567,
            0.5098,
            0.5,
            0.5,
            1,
            [0, 0, 0, 1, 0, 0, 0, 1, 0, 0],
        ),
        // lost_pitch: 1.00 0.55 → 0.775; 0.55 low; 1.00 falls in the closed last bin; 0.55 in 5.
        (
            "lost_pitch",
            2,
            0.2,
            0.0567,
            0.5098,
            0.775,
            0.775,
            1,
            [0, 0, 0, 0, 0, 1, 0, 0, 0, 1],
        ),
        // other: 0.60 0.10 → 0.35; both low; bins 6, 1.
        (
            "other",
            2,
            0.2,
            0.0567,
            0.5098,
            0.35,
            0.35,
            2,
            [0, 1, 0, 0, 0, 0, 1, 0, 0, 0],
        ),
    ];
    for (id, count, share, lo, hi, mean, median, low, hist) in expected {
        let s = by_id(id);
        assert_eq!(s["count"], count, "{id} count");
        assert_num(&s["share"], share, &format!("{id} share"));
        assert_num(&s["share_ci"]["low"], lo, &format!("{id} ci low"));
        assert_num(&s["share_ci"]["high"], hi, &format!("{id} ci high"));
        assert_num(&s["confidence"]["mean"], mean, &format!("{id} mean"));
        assert_num(&s["confidence"]["median"], median, &format!("{id} median"));
        assert_eq!(s["confidence"]["low_count"], low, "{id} low");
        let h: Vec<u64> = s["confidence"]["histogram"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(h, hist, "{id} histogram");
    }

    // Representative: highest confidence first; least certain: smallest margin first (three
    // per scenario by default).
    let po = by_id("passed_over");
    assert_eq!(story_ids(&po["representative"]), ["r01", "r02", "r09"]);
    assert_eq!(story_ids(&po["least_certain"]), ["r03", "r09", "r02"]);
    assert_eq!(
        story_ids(&by_id("pivot_regret")["least_certain"]),
        ["r05", "r04"]
    );
    assert_eq!(
        story_ids(&by_id("lost_pitch")["representative"]),
        ["r06", "r11"]
    );
    assert_eq!(story_ids(&by_id("other")["least_certain"]), ["r12", "r07"]);
    let first = &po["representative"][0];
    assert_eq!(first["row"], 1);
    assert_num(&first["confidence"], 0.95, "r01 confidence");
    assert_num(&first["margin"], 0.12, "r01 margin");
    assert_eq!(first["runner_up"], "lost_pitch");
    assert_eq!(first["text"], "They gave the big account to the new hire.");
    // r02's 259 characters are shortened at a word boundary near 200, with an ellipsis.
    let long = po["representative"][1]["text"].as_str().unwrap();
    assert!(long.starts_with("I ran the Henderson account") && long.ends_with('…'));
    assert!(
        long.chars().count() <= 201 && long.chars().count() > 150,
        "{long}"
    );

    // Advice comes from the taxonomy.
    assert_eq!(po["title"], "Passed over for a big project");
    assert!(po["advice"].as_array().unwrap().len() >= 3);
    assert!(po["headline"]
        .as_str()
        .unwrap()
        .starts_with("Ask your supervisor"));

    // Groups: north has r01 r02 r04 r06 r09 r12 classified (r10 errored) → 6: passed_over 3,
    // the others 1 each; south has r03 r05 r07 r11 (r08 empty) → 4, one per scenario. Largest
    // first; south (4 < 5) is small.
    let g = &j["groups"];
    assert_eq!(g["column"], "team");
    assert!(g["overflow"].is_null());
    let north = &g["groups"][0];
    assert_eq!(north["value"], "north");
    assert_eq!(north["count"], 6);
    assert_eq!(north["small"], false);
    let counts: Vec<u64> = north["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["count"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, [3, 1, 1, 1]);
    assert_num(&north["cells"][0]["share"], 0.5, "north passed_over");
    assert_num(&north["cells"][1]["share"], 0.1667, "north pivot_regret");
    let south = &g["groups"][1];
    assert_eq!(south["value"], "south");
    assert_eq!(south["count"], 4);
    assert_eq!(south["small"], true);
    for c in south["cells"].as_array().unwrap() {
        assert_eq!(c["count"], 1);
        assert_num(&c["share"], 0.25, "south share");
    }
}

#[test]
fn jsonl_input_gives_the_same_report_as_csv() {
    let mut a = report_json(CSV, &["--group-by", "team"]);
    let mut b = report_json(JSONL, &["--group-by", "team"]);
    for j in [&mut a, &mut b] {
        j["header"]["input"]["name"] = Value::Null;
        j["header"]["generated_at"] = Value::Null;
    }
    assert_eq!(a, b);
}

/// A classify output saved again in UTF-16 with a byte-order mark reads as the original
/// does; in Windows-1252 its bytes that are not UTF-8 are shown as U+FFFD, with a warning
/// that says how many rows and why, not silently.
#[test]
fn a_classify_output_saved_again_as_utf16_reads_and_one_in_windows_1252_is_warned() {
    let dir = tempfile::tempdir().unwrap();
    let original = std::fs::read_to_string(fixture(CSV)).unwrap();
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(original.encode_utf16().flat_map(u16::to_le_bytes));
    std::fs::write(dir.path().join("unicode.txt"), utf16).unwrap();
    let mut a = report_json(CSV, &["--group-by", "team"]);
    let path = dir.path().join("unicode.txt").display().to_string();
    let out = failup(&["report", &path, "--group-by", "team", "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut b: Value = serde_json::from_str(&stdout(&out)).unwrap();
    for j in [&mut a, &mut b] {
        j["header"]["input"] = Value::Null;
        j["header"]["generated_at"] = Value::Null;
    }
    assert_eq!(a, b);

    let mut legacy = original.into_bytes();
    let at = legacy.iter().position(|&b| b == b'\n').unwrap() + 1;
    legacy.splice(at..at, *b"caf\xe9"); // the first row's id, in Windows-1252
    std::fs::write(dir.path().join("legacy.csv"), legacy).unwrap();
    let path = dir.path().join("legacy.csv").display().to_string();
    let out = failup(&["report", &path]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("1 row of ")
            && stderr(&out).contains("not UTF-8 (the first on line 2)"),
        "{}",
        stderr(&out)
    );
}

/// Saved again in UTF-16 or UTF-32 without a byte-order mark, a classify output is named as
/// such, with the command that converts it; it was told as "not an output of classify",
/// listing its columns with a NUL between every letter.
#[test]
fn a_classify_output_in_utf16_or_utf32_without_a_mark_is_named_so() {
    let dir = tempfile::tempdir().unwrap();
    let original = std::fs::read_to_string(fixture(CSV)).unwrap();
    let utf16: Vec<u8> = original.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let utf32: Vec<u8> = original
        .chars()
        .flat_map(|c| (c as u32).to_be_bytes())
        .collect();
    for (bytes, said) in [
        (utf16, "looks like UTF-16LE without a byte-order mark"),
        (utf32, "looks like UTF-32BE"),
    ] {
        let path = dir.path().join("saved.csv");
        std::fs::write(&path, bytes).unwrap();
        let out = failup(&["report", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
        assert!(
            stderr(&out).contains(said) && stderr(&out).contains("iconv -f UTF-"),
            "{}",
            stderr(&out)
        );
    }
}

/// A `--top` past the number of stories lists every story, however large: it used to reserve
/// room for all of them first and abort for lack of memory.
#[test]
fn a_top_past_the_stories_lists_them_all() {
    let mut all = report_json(CSV, &["--top", "1000"]);
    let mut huge = report_json(CSV, &["--top", &usize::MAX.to_string()]);
    for j in [&mut all, &mut huge] {
        j["header"]["generated_at"] = Value::Null;
        j["settings"]["top_stories"] = Value::Null;
    }
    assert_eq!(all, huge);
}

/// `--top 0` leaves the stories out (a report to share without any story's words), and says
/// nothing about them: no heading over empty lists.
#[test]
fn top_zero_leaves_the_stories_section_out_of_every_format() {
    for (format, heading, story) in [
        (
            "text",
            "Stories to check the sorting",
            "most representative",
        ),
        (
            "markdown",
            "## Stories to check the sorting",
            "Most representative",
        ),
        (
            "html",
            "with the stories that best show it",
            "Most representative",
        ),
    ] {
        let shown = report(CSV, &["--format", format, "--color", "never"]);
        assert!(shown.contains(heading) && shown.contains(story), "{format}");
        let none = report(CSV, &["--format", format, "--top", "0", "--color", "never"]);
        assert!(
            !none.contains(heading) && !none.contains(story),
            "{format}: {none}"
        );
        assert!(none.contains("What to do"), "{format}: the advice stays");
    }
    let j = report_json(CSV, &["--top", "0"]);
    assert_eq!(j["scenarios"][0]["representative"], serde_json::json!([]));
}

/// The text report's group table stays aligned when counts run to five digits and more (its
/// cells were sized for four).
#[test]
fn the_text_group_table_stays_aligned_for_large_counts() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from(
        "id,category,confidence,runner_up,margin,score_passed_over,score_pivot_regret,\
         score_lost_pitch,score_other,tokens,truncated,status,advice,team\n",
    );
    for i in 0..30_000 {
        let (category, team) = match i % 3 {
            0 => ("passed_over", "north"),
            1 => ("other", "north"),
            _ => ("lost_pitch", "south"),
        };
        csv +=
            &format!("r{i},{category},0.9,pivot_regret,0.1,0.5,0.3,0.4,0.3,9,false,ok,x,{team}\n");
    }
    std::fs::write(dir.path().join("c.csv"), csv).unwrap();
    let out = failup_in(dir.path(), &["report", "c.csv", "--group-by", "team"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let table: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("By team"))
        .skip(1)
        .take(3)
        .collect();
    assert!(text.contains("100.0% (10000)"), "{text}");
    let width = |l: &str| l.trim_end().chars().count();
    assert!(
        table.iter().all(|l| width(l) == width(table[0])),
        "{}",
        table.join("\n")
    );
}

/// A group whose value reads like one of the report's own labels, `(blank)` for an empty value
/// or `(further groups)` for the pooled row, is put in quotes in the text, Markdown and HTML
/// reports, so the two never look alike (spaces at a value's ends included, which Markdown and
/// HTML do not show); JSON keeps the values as they are.
#[test]
fn group_values_that_read_like_the_reports_labels_are_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from(
        "id,category,confidence,runner_up,margin,score_passed_over,score_pivot_regret,\
         score_lost_pitch,score_other,tokens,truncated,status,advice,team\n",
    );
    let row = |i: usize, team: &str| {
        format!("r{i},other,0.9,pivot_regret,0.1,0.5,0.3,0.4,0.3,9,false,ok,x,{team}\n")
    };
    // The four odd values twice each, so they are among the groups shown, then enough
    // groups of one that the last four are pooled.
    for (i, team) in ["", "(blank)", r#""""(further groups)""""#, r#"" (blank)""#]
        .iter()
        .enumerate()
    {
        csv += &row(2 * i, team);
        csv += &row(2 * i + 1, team);
    }
    for g in 0..1000 {
        csv += &row(8 + g, &format!("g{g}"));
    }
    std::fs::write(dir.path().join("c.csv"), csv).unwrap();
    let render = |format: &str| {
        let args = ["report", "c.csv", "--group-by", "team", "--format", format];
        let out = failup_in(dir.path(), &args, None);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    let text = render("text");
    let starts = |prefix: &str| {
        text.lines()
            .filter(|l| l.trim_start().starts_with(prefix))
            .count()
    };
    for label in [
        "(blank) ",
        "\"(blank)\" ",
        "\"\"(further groups)\"\" ",
        "(further groups) ",
        "\" (blank)\" ",
    ] {
        assert_eq!(starts(label), 1, "{label}: {text}");
    }
    let markdown = render("markdown");
    for label in [
        "| (blank) ",
        "| \"(blank)\" ",
        "| \"\"(further groups)\"\" ",
        "| (further groups) ",
        "| \" (blank)\" ",
    ] {
        assert_eq!(markdown.matches(label).count(), 1, "{label}: {markdown}");
    }
    let html = render("html");
    for label in [">(blank)<", ">&quot;(blank)&quot;<", ">(further groups)<"] {
        assert!(html.contains(label), "{label}");
    }
    assert!(html.contains("&quot;&quot;(further groups)&quot;&quot;"));
    let json: Value = serde_json::from_str(&render("json")).unwrap();
    let values: Vec<&str> = json["groups"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["value"].as_str().unwrap())
        .collect();
    assert_eq!(
        &values[..4],
        ["", " (blank)", "\"(further groups)\"", "(blank)"]
    );
}

/// Two outputs joined with `cat` are told as that, at the line of the second header (it was
/// "'category' is not a scenario", with advice to pass another taxonomy).
#[test]
fn two_outputs_joined_into_one_file_are_named_as_that() {
    let dir = tempfile::tempdir().unwrap();
    let one = std::fs::read_to_string(fixture(CSV)).unwrap();
    let second_header = one.lines().count() + 1;
    std::fs::write(dir.path().join("two.csv"), format!("{one}{one}")).unwrap();
    let out = failup_in(dir.path(), &["report", "two.csv"], None);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let says = format!("two.csv:{second_header}: this line repeats the header row");
    assert!(stderr(&out).contains(&says), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("failup merge --rows"),
        "{}",
        stderr(&out)
    );
    // Also where the second output kept fewer columns (it was told as a cut row).
    let fewer: String = one
        .lines()
        .map(|l| format!("{}\n", &l[..l.rfind(',').unwrap()]))
        .collect();
    std::fs::write(dir.path().join("mixed.csv"), format!("{one}{fewer}")).unwrap();
    let out = failup_in(dir.path(), &["report", "mixed.csv"], None);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let says = format!("mixed.csv:{second_header}: this line repeats the header row");
    assert!(stderr(&out).contains(&says), "{}", stderr(&out));
}

#[test]
fn without_a_group_by_there_is_no_group_table() {
    let j = report_json(CSV, &[]);
    assert!(j["groups"].is_null());
    assert!(j["header"]["group_by"].is_null());
    // With the default line of 20, both groups would be small.
    let j = report_json(CSV, &["--group-by", "team"]);
    assert_eq!(j["groups"]["groups"][0]["small"], true);
    // A group size with no groups would change nothing the report shows.
    let out = failup(&["report", &fixture_str(CSV), "--min-group-size", "3"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("give --group-by too"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn text_report_snapshot() {
    let out = report(CSV, &["--group-by", "team", "--min-group-size", "5"]);
    assert!(!out.contains('\u{1b}'), "no colour when not on a terminal");
    insta::assert_snapshot!("text", redact(&out));
}

#[test]
fn markdown_report_snapshot() {
    let out = report(
        CSV,
        &[
            "--format",
            "markdown",
            "--group-by",
            "team",
            "--min-group-size",
            "5",
        ],
    );
    assert!(out.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!out.contains("<script") && !out.contains("<img"));
    insta::assert_snapshot!("markdown", redact(&out));
}

#[test]
fn html_report_snapshot() {
    let out = report(
        CSV,
        &[
            "--format",
            "html",
            "--group-by",
            "team",
            "--min-group-size",
            "5",
        ],
    );
    insta::assert_snapshot!("html", redact(&out));
}

/// An id's terminal escape codes and a group's backspace are HTML parse errors, and showed
/// as raw bytes in the page; story text was already cleaned.
#[test]
fn html_writes_control_characters_of_ids_and_groups_as_spaces() {
    let text = std::fs::read_to_string(fixture(CSV)).unwrap();
    let edited =
        text.replacen("r08,", "r\u{1b}[31m08,", 1)
            .replacen(",south,", ",so\u{8}uth\u{7f},", 1);
    let out = failup_in(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        &["report", "-", "--format", "html", "--group-by", "team"],
        Some(&edited),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let page = stdout(&out);
    assert!(
        page.contains("r [31m08") && page.contains("so uth "),
        "spaces"
    );
    let controls = |c: char| c.is_control() && c != '\n';
    assert!(!page.chars().any(controls), "no control character left");
}

#[test]
fn html_escapes_story_text_and_has_no_scripts_or_external_resources() {
    let out = report(CSV, &["--format", "html"]);
    let lower = out.to_ascii_lowercase();
    assert!(!lower.contains("<script"), "no script element");
    assert!(!lower.contains("<img"), "no injected image");
    assert!(
        !lower.contains("http://") && !lower.contains("https://"),
        "no network"
    );
    assert!(
        !lower.contains(" src=\"") && !lower.contains(" href=\"") && !lower.contains("url("),
        "no external resources"
    );
    assert!(
        out.contains("&lt;script&gt;alert(1)&lt;"),
        "script text is escaped"
    );
    assert!(out.contains("&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"));
    assert!(out.contains("Content-Security-Policy"));
    for title in [
        "Passed over for a big project",
        "A career pivot you now hate",
        "A new-business pitch you led and lost",
        "Another career setback",
    ] {
        assert!(out.contains(title), "{title}");
    }
}

/// A scenario title too long for the share chart is cut with an ellipsis there, and shown
/// whole on hover; it was cut off mid-word by the chart's edge.
#[test]
fn a_long_scenario_title_is_shortened_in_the_chart_and_whole_on_hover() {
    let dir = tempfile::tempdir().unwrap();
    let long = "Passed over for a promotion, a big project or a key account given to a newer \
                colleague";
    let taxonomy = std::fs::read_to_string(common::repo_path("data/taxonomy.toml"))
        .unwrap()
        .replacen(
            "\"Passed over for a big project\"",
            &format!("\"{long}\""),
            1,
        );
    std::fs::write(dir.path().join("t.toml"), taxonomy).unwrap();
    let out = failup_in(
        dir.path(),
        &[
            "report",
            &fixture_str(CSV),
            "--taxonomy",
            "t.toml",
            "--format",
            "html",
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let page = stdout(&out);
    assert!(
        page.contains(&format!(
            "font-weight=\"600\">Passed over for a promotion, a big project or…<title>{long}</title>"
        )),
        "{page}"
    );
    assert!(page.contains("font-weight=\"600\">A career pivot you now hate</text>"));
}

#[test]
fn colour_follows_color_flag_and_no_color() {
    let path = fixture_str(CSV);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut all = vec!["report", path.as_str()];
        all.extend_from_slice(args);
        let out = failup_env(root, &all, None, env);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    assert!(run(&["--color", "always"], &[]).contains("\u{1b}["));
    assert!(!run(&["--color", "never"], &[]).contains('\u{1b}'));
    assert!(
        !run(&["--color", "auto"], &[]).contains('\u{1b}'),
        "a pipe is no terminal"
    );
    assert!(!run(&["--color", "always"], &[("NO_COLOR", "1")]).contains('\u{1b}'));
    // Machine formats never carry colour.
    assert!(!run(&["--color", "always", "--format", "json"], &[]).contains('\u{1b}'));
}

#[test]
fn a_story_csv_that_is_not_a_classify_output_exits_2_naming_the_expected_columns() {
    let path = fixture_str("stories.csv");
    let out = failup(&["report", &path]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("not an output of `failup classify`"), "{err}");
    assert!(err.contains("'category'"), "{err}");
    assert!(
        err.contains("id, category, confidence, runner_up, margin, tokens, truncated, status"),
        "{err}"
    );
}

#[test]
fn a_jsonl_file_without_category_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("x.jsonl"),
        "{\"id\": 1, \"text\": \"hi\"}\n",
    )
    .unwrap();
    let out = failup_in(dir.path(), &["report", "x.jsonl"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("'category'"), "{}", stderr(&out));
}

#[test]
fn an_unknown_group_by_column_exits_2() {
    let path = fixture_str(CSV);
    let out = failup(&["report", &path, "--group-by", "region"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("'region'") && err.contains("team"), "{err}");
    assert!(!err.contains("Did you mean"), "{err}");
    // A slip of a letter is told what it likely meant, as classify tells it.
    let out = failup(&["report", &path, "--group-by", "tema"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("Did you mean 'team'?"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_category_outside_the_taxonomy_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixture(CSV))
        .unwrap()
        .replace("r06,lost_pitch", "r06,lost_tender");
    std::fs::write(dir.path().join("c.csv"), text).unwrap();
    let out = failup_in(dir.path(), &["report", "c.csv"], None);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("c.csv:7") && err.contains("lost_tender"),
        "{err}"
    );
}

/// The report does not use the scores, but a row whose scores are not numbers was not written
/// by classify, as one whose confidence is not a number was not.
#[test]
fn a_score_that_is_not_a_number_exits_2_naming_its_column() {
    let dir = tempfile::tempdir().unwrap();
    let csv = std::fs::read_to_string(fixture(CSV)).unwrap().replace(
        "r06,lost_pitch,1.0000,other,0.2500,0.3000,",
        "r06,lost_pitch,1.0000,other,0.2500,zz,",
    );
    let jsonl = std::fs::read_to_string(fixture(JSONL)).unwrap().replace(
        r#""scores":{"passed_over":0.6,"pivot_regret":0.3,"lost_pitch":0.48"#,
        r#""scores":{"passed_over":"zz","pivot_regret":0.3,"lost_pitch":0.48"#,
    );
    std::fs::write(dir.path().join("c.csv"), csv).unwrap();
    std::fs::write(dir.path().join("c.jsonl"), jsonl).unwrap();
    // A null score in a row with a category (told as empty), and a scenario's score left out
    // (told as another taxonomy's).
    let original = std::fs::read_to_string(fixture(JSONL)).unwrap();
    let first = original.lines().next().unwrap();
    let mut row: Value = serde_json::from_str(first).unwrap();
    row["scores"]["passed_over"] = Value::Null;
    std::fs::write(dir.path().join("null.jsonl"), format!("{row}\n")).unwrap();
    let mut row: Value = serde_json::from_str(first).unwrap();
    row["scores"].as_object_mut().unwrap().remove("other");
    std::fs::write(dir.path().join("gap.jsonl"), format!("{row}\n")).unwrap();
    for (file, says) in [
        (
            "c.csv",
            "c.csv:7, column 'score_passed_over': 'zz' is not a number",
        ),
        (
            "c.jsonl",
            "c.jsonl:1, column 'scores.passed_over': 'zz' is not a number",
        ),
        (
            "null.jsonl",
            "null.jsonl:1, column 'scores.passed_over': is empty",
        ),
        ("gap.jsonl", "gap.jsonl:1: these rows were classified with the scenarios lost_pitch, passed_over, pivot_regret"),
    ] {
        let out = failup_in(dir.path(), &["report", file], None);
        assert_eq!(out.status.code(), Some(2), "{file}");
        assert!(stderr(&out).contains(says), "{}", stderr(&out));
    }
}

#[test]
fn output_file_format_follows_the_extension_and_never_overwrites_the_input() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture(CSV), dir.path().join("c.csv")).unwrap();
    for (name, starts) in [
        ("r.html", "<!DOCTYPE html>"),
        ("r.md", "# failup report"),
        ("r.json", "{"),
        ("r.txt", "failup report:"),
    ] {
        let out = failup_in(dir.path(), &["report", "c.csv", "-o", name], None);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).is_empty());
        let written = std::fs::read_to_string(dir.path().join(name)).unwrap();
        assert!(written.starts_with(starts), "{name}: {}", &written[..40]);
    }
    let out = failup_in(dir.path(), &["report", "c.csv", "-o", "c.csv"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(std::fs::read_to_string(dir.path().join("c.csv"))
        .unwrap()
        .starts_with("id,category"));
}

#[test]
fn without_story_text_the_report_shows_ids_only_and_says_so() {
    // Drop the text column: keep the first 14 columns of each row.
    let dir = tempfile::tempdir().unwrap();
    let mut r = csv::Reader::from_path(fixture(CSV)).unwrap();
    let mut w = csv::Writer::from_path(dir.path().join("c.csv")).unwrap();
    let header: Vec<String> = r
        .headers()
        .unwrap()
        .iter()
        .take(14)
        .map(String::from)
        .collect();
    w.write_record(&header).unwrap();
    for rec in r.records() {
        let rec = rec.unwrap();
        w.write_record(rec.iter().take(14)).unwrap();
    }
    w.flush().unwrap();
    drop(w);
    let out = failup_in(dir.path(), &["report", "c.csv", "--format", "json"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let j: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(j["header"]["text_column"].is_null());
    assert!(j["totals"]["words"].is_null());
    assert!(j["scenarios"][0]["representative"][0]["text"].is_null());
    assert_eq!(j["scenarios"][0]["representative"][0]["id"], "r01");
    let out = failup_in(dir.path(), &["report", "c.csv"], None);
    assert!(stdout(&out).contains("stories are shown by id only"));
}

#[test]
fn report_reads_standard_input() {
    let text = std::fs::read_to_string(fixture(JSONL)).unwrap();
    let out = failup_in(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        &["report", "-", "--format", "json"],
        Some(&text),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let j: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(j["header"]["input"]["name"], "<stdin>");
    assert_eq!(j["totals"]["classified"], 10);
}

/// A report meant to be reproducible is not stamped with the time of day: a
/// `SOURCE_DATE_EPOCH` that is not whole seconds from 1970 to the year 9999 is refused, by
/// `report` and by `classify --report` before the work; a good one fixes the time.
#[test]
fn a_malformed_source_date_epoch_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture_str("stories.csv");
    let env = [
        ("FAILUP_BACKEND", "test-hashed"),
        ("SOURCE_DATE_EPOCH", "86400"),
    ];
    let classify = [
        "classify", &input, "-q", "-o", "rows.csv", "--report", "r.json",
    ];
    let out = failup_env(dir.path(), &classify, None, &env);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("r.json")).unwrap()).unwrap();
    assert_eq!(report["header"]["generated_at"], "1970-01-02T00:00:00Z");
    // Blank is unset, as CI templates that export it empty mean it.
    for blank in ["", " "] {
        let env = [
            ("FAILUP_BACKEND", "test-hashed"),
            ("SOURCE_DATE_EPOCH", blank),
        ];
        let out = failup_env(dir.path(), &["report", "rows.csv"], None, &env);
        assert_eq!(out.status.code(), Some(0), "{blank:?}: {}", stderr(&out));
    }
    for bad in ["abc", "1.5", "-1", "99999999999999"] {
        let env = [
            ("FAILUP_BACKEND", "test-hashed"),
            ("SOURCE_DATE_EPOCH", bad),
        ];
        let said = format!("SOURCE_DATE_EPOCH (set in the environment) is '{bad}'");
        let classify = [
            "classify",
            &input,
            "-q",
            "-o",
            "again.csv",
            "--report",
            "r.md",
        ];
        let out = failup_env(dir.path(), &classify, None, &env);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
        assert!(stderr(&out).contains(&said), "{}", stderr(&out));
        assert!(!dir.path().join("again.csv").exists());
        let out = failup_env(dir.path(), &["report", "rows.csv"], None, &env);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
        assert!(stderr(&out).contains(&said), "{}", stderr(&out));
    }
}

/// A summary whose counts were edited so that they no longer add up is refused, saying what
/// disagrees: rows read that are neither classified, empty nor errored, an `other` that is not
/// the taxonomy's, a histogram that is not its confidences', group counts past the scenarios',
/// a count of empty rows that its ids do not bear out, and a story text no run writes
/// (escape sequences, past 200 characters). Each of these went into the report with exit 0.
#[test]
fn a_summary_whose_counts_disagree_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = failup_env(
        dir.path(),
        &[
            "classify",
            &fixture_str("stories.csv"),
            "--keep-columns",
            "team",
            "-q",
            "-o",
            "rows.csv",
            "--summary-out",
            "summary.json",
            "--group-by",
            "team",
        ],
        None,
        &[("FAILUP_BACKEND", "test-hashed")],
    );
    assert!(run.status.success(), "{}", stderr(&run));
    let text = std::fs::read_to_string(dir.path().join("summary.json")).unwrap();
    let whole: Value = serde_json::from_str(&text).unwrap();
    type Edit = fn(&mut Value);
    let edits: [(&str, Edit, &str); 8] = [
        (
            "rows",
            |b| b["rows"] = 1000.into(),
            "it counts 1000 rows where shard 0/1 of its input of 12 rows should hold 12",
        ),
        (
            "other out of range",
            |b| b["other"] = 30.into(),
            "names scenario 31 as `other`",
        ),
        (
            "other moved",
            |b| b["other"] = 0.into(),
            "its `other` is not the taxonomy's",
        ),
        (
            "histogram",
            |b| {
                let s = &mut b["scenarios"][0];
                s["histogram"] = serde_json::json!([0, 0, 0, 0, 0, 0, 0, 0, 0, s["count"]]);
            },
            "scenario 1 counts its stories in ways that disagree",
        ),
        (
            "groups",
            |b| {
                let (_, group) = b["groups"]
                    .as_object_mut()
                    .unwrap()
                    .iter_mut()
                    .next()
                    .unwrap();
                group["counts"][0] = 100.into();
            },
            "its groups' counts do not add up",
        ),
        ("empty", |b| b["empty"]["count"] = 5.into(), "5 empty"),
        (
            "escape sequence in a story",
            |b| b["scenarios"][0]["best"]["heap"][0]["story"]["text"] = "\u{1b}[2Jowned".into(),
            "scenario 1 keeps a story text that no run writes",
        ),
        (
            "story past its length",
            |b| b["scenarios"][0]["unsure"]["heap"][0]["story"]["text"] = "a".repeat(201).into(),
            "more than 200 characters",
        ),
    ];
    let report = failup_in(dir.path(), &["report", "summary.json"], None);
    assert!(report.status.success(), "{}", stderr(&report));
    for (what, edit, said) in edits {
        let mut edited = whole.clone();
        edit(&mut edited["builder"]);
        assert_ne!(edited, whole, "{what}: the edit changed nothing");
        std::fs::write(dir.path().join("edited.json"), edited.to_string()).unwrap();
        let out = failup_in(dir.path(), &["report", "edited.json"], None);
        assert_eq!(out.status.code(), Some(2), "{what}: {}", stdout(&out));
        assert!(
            stderr(&out).contains(said) && stderr(&out).contains("edited or damaged"),
            "{what}: {}",
            stderr(&out)
        );
    }
}

/// A summary is known by its `kind`, not by its first bytes: on standard input, pretty-printed
/// by a tool over many lines, or with its keys in another order, it gives the report the file
/// as written gives. A JSON report given back is refused, saying what report reads.
#[test]
fn a_summary_is_read_from_stdin_and_after_reformatting() {
    let dir = tempfile::tempdir().unwrap();
    let run = failup_env(
        dir.path(),
        &[
            "classify",
            &fixture_str("stories.csv"),
            "-q",
            "-o",
            "rows.csv",
            "--summary-out",
            "summary.json",
        ],
        None,
        &[("FAILUP_BACKEND", "test-hashed")],
    );
    assert!(run.status.success(), "{}", stderr(&run));
    let text = std::fs::read_to_string(dir.path().join("summary.json")).unwrap();
    let report_of = |args: &[&str], stdin: Option<&str>| {
        let mut all = vec!["report"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--format", "json"]);
        let out = failup_in(dir.path(), &all, stdin);
        assert!(out.status.success(), "{all:?}: {}", stderr(&out));
        let mut j: Value = serde_json::from_str(&stdout(&out)).unwrap();
        j["header"]["input"]["name"] = Value::Null;
        j["header"]["generated_at"] = Value::Null;
        j
    };
    let expected = report_of(&["summary.json"], None);
    assert_eq!(expected["totals"]["rows"], 12);
    assert_eq!(report_of(&["-"], Some(&text)), expected);

    // A summary saved by an earlier failup holds its own count of low confidences, taken
    // against another line: the report counts them again, from the confidences.
    let mut older: Value = serde_json::from_str(&text).unwrap();
    for s in older["builder"]["scenarios"].as_array_mut().unwrap() {
        s["low"] = 999.into();
    }
    std::fs::write(dir.path().join("older.json"), older.to_string()).unwrap();
    assert_eq!(report_of(&["older.json"], None), expected);
    let low: u64 = (expected["scenarios"].as_array().unwrap().iter())
        .map(|s| s["confidence"]["low_count"].as_u64().unwrap())
        .sum();
    let confidences = older["builder"]["scenarios"].as_array().unwrap().iter();
    let below = confidences
        .flat_map(|s| s["confidences"].as_array().unwrap().clone())
        .filter(|c| (c.as_f64().unwrap() * 10_000.0).round() < 7_000.0)
        .count();
    assert_eq!(low, below as u64);

    let mut value: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
    let kind = value.remove("kind").unwrap();
    value.insert("kind".into(), kind);
    let reordered = serde_json::to_string_pretty(&value).unwrap();
    assert!(!reordered.starts_with("{\n  \"kind\""), "{reordered:.40}");
    std::fs::write(dir.path().join("pretty.json"), &reordered).unwrap();
    assert_eq!(report_of(&["pretty.json"], None), expected);
    assert_eq!(report_of(&["-"], Some(&reordered)), expected);

    let out = failup_in(
        dir.path(),
        &["report", "summary.json", "-o", "r.json"],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // Blank lines above a summary (an editor's) are passed over, after a byte-order mark too.
    assert_eq!(report_of(&["-"], Some(&format!("\n\n{text}"))), expected);
    let marked = format!("\u{feff}\n{reordered}");
    assert_eq!(report_of(&["-"], Some(&marked)), expected);
    // The JSON report is refused pretty-printed, as written, and squeezed onto one line.
    let written = std::fs::read_to_string(dir.path().join("r.json")).unwrap();
    let squeezed = serde_json::from_str::<Value>(&written).unwrap().to_string();
    std::fs::write(dir.path().join("one-line.json"), squeezed).unwrap();
    for given in ["r.json", "one-line.json"] {
        let out = failup_in(dir.path(), &["report", given], None);
        assert_eq!(out.status.code(), Some(2));
        assert!(
            stderr(&out).contains(&format!("{given} is a JSON document, not a summary")),
            "{}",
            stderr(&out)
        );
    }
}

/// A classify output cut inside its last quoted cell (the story text, most often) is refused
/// where the quote opens, not reported with the piece of text left; errors name the right
/// line in a file with CRLF line endings too.
#[test]
fn a_cut_classified_file_is_refused_and_lines_count_with_crlf() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixture(CSV)).unwrap();
    let quote = text.rfind(",\"").expect("a quoted cell") + 2;
    let line = text[..quote].lines().count();
    std::fs::write(dir.path().join("cut.csv"), &text[..quote + 10]).unwrap();
    let out = failup_in(dir.path(), &["report", "cut.csv"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!(
            "cut.csv:{line}: a quoted field opens in this row and the file ends before it closes"
        )),
        "{}",
        stderr(&out)
    );

    let crlf = text
        .replace("\r\n", "\n")
        .replace('\n', "\r\n")
        .replace("r06,lost_pitch", "r06,lost_tender");
    std::fs::write(dir.path().join("crlf.csv"), crlf).unwrap();
    let out = failup_in(dir.path(), &["report", "crlf.csv"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("crlf.csv:7"), "{}", stderr(&out));
}

/// A classify output cut at its end outside any quotes (a kept column's `mkt` left as `m`)
/// would otherwise be counted with the cut value and no word; classify ends every row with a
/// line break, so a missing one is warned of with the line. It is not refused: a tool that
/// saves the file again may drop the final line break of a whole file.
#[test]
fn a_classified_file_without_its_last_line_break_is_warned_of() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixture(CSV)).unwrap();
    assert!(
        text.ends_with('\n'),
        "the fixture ends as classify writes it"
    );
    let last = text.trim_end().lines().count();
    // The last story unquoted, as classify writes one without commas or quotes.
    let open = text.rfind(",\"").expect("a quoted cell");
    let unquoted = format!("{},Laid off in May\n", &text[..open]);
    let warning = format!("cut.csv:{last}: the last row has no line break after it");
    for cut in [&text[..text.len() - 1], &unquoted[..unquoted.len() - 3]] {
        std::fs::write(dir.path().join("cut.csv"), cut).unwrap();
        let out = failup_in(dir.path(), &["report", "cut.csv"], None);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(stderr(&out).contains(&warning), "{cut}: {}", stderr(&out));
    }
    std::fs::write(dir.path().join("cut.csv"), &unquoted).unwrap();
    let out = failup_in(dir.path(), &["report", "cut.csv"], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("line break"), "{}", stderr(&out));
}

/// A classified file that a spreadsheet saved again with `;` between cells reads as the
/// file classify wrote, with its numbers written `0,8924` too, as such a spreadsheet's locale
/// writes them (they were refused as "not a number"), and so does its tab-separated save.
#[test]
fn a_semicolon_delimited_classified_file_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut expected = report_json(CSV, &["--group-by", "team"]);
    expected["header"]["input"]["name"] = Value::Null;
    expected["header"]["generated_at"] = Value::Null;
    for (delimiter, decimal_comma) in [(b';', false), (b';', true), (b'\t', true)] {
        let mut reader = csv::Reader::from_path(fixture(CSV)).unwrap();
        let mut writer = csv::WriterBuilder::new()
            .delimiter(delimiter)
            .from_path(dir.path().join("semi.csv"))
            .unwrap();
        writer.write_record(reader.headers().unwrap()).unwrap();
        let mut commas = 0;
        for record in reader.records() {
            let record: Vec<String> = (record.unwrap().iter())
                .map(|cell| match decimal_comma && cell.parse::<f64>().is_ok() {
                    true => cell.replacen('.', ",", 1),
                    false => cell.to_string(),
                })
                .collect();
            commas += record.iter().filter(|c| c.starts_with("0,")).count();
            writer.write_record(&record).unwrap();
        }
        writer.flush().unwrap();
        assert_eq!(commas > 0, decimal_comma);
        let semi = dir.path().join("semi.csv").display().to_string();
        let mut got = report_json(&semi, &["--group-by", "team"]);
        got["header"]["input"]["name"] = Value::Null;
        got["header"]["generated_at"] = Value::Null;
        assert_eq!(got, expected, "{delimiter}, decimal comma: {decimal_comma}");
    }
}

/// A right-to-left override in a group or a story would reverse the rest of a line of the
/// text report or of the Markdown source; it is taken out there, as control characters are.
#[test]
fn bidi_overrides_do_not_reach_text_or_markdown_reports() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixture(CSV))
        .unwrap()
        .replace(",north,They gave", ",\u{202E}north,They \u{2067}gave");
    std::fs::write(dir.path().join("c.csv"), text).unwrap();
    for format in ["text", "markdown"] {
        let args = ["report", "c.csv", "--group-by", "team", "--format", format];
        let args = [&args[..], &["--top", "20", "--color", "never"]].concat();
        let out = failup_in(dir.path(), &args, None);
        assert!(out.status.success(), "{}", stderr(&out));
        let report = stdout(&out);
        assert!(
            report.contains("north") && report.contains("gave"),
            "{report}"
        );
        assert!(
            !report.contains('\u{202E}') && !report.contains('\u{2067}'),
            "{format}: {report}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The HTML page in a real browser.

/// Chromium's binary: `FAILUP_CHROMIUM`, else the first of the usual names on PATH.
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("FAILUP_CHROMIUM") {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "the browser test needs Chromium, and none was found (tried chromium, chromium-browser, \
         google-chrome on PATH and $FAILUP_CHROMIUM). Install it with \
         `apt-get update && apt-get install -y chromium` (bash .ci/run does this), or point \
         FAILUP_CHROMIUM at a Chromium binary."
    );
}

/// Runs headless Chromium on `page` with `args`, with a fresh profile; returns stdout.
fn run_chromium(page: &Path, profile: &Path, args: &[String]) -> String {
    let mut cmd = Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(args)
    .arg(format!("file://{}", page.display()))
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("chromium starts");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if child
            .try_wait()
            .expect("chromium can be waited on")
            .is_some()
        {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().expect("chromium output");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
#[ignore = "needs Chromium: apt-get install chromium"]
fn html_report_renders_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let page_str = page.display().to_string();
    let input = fixture_str(CSV);
    let out = failup(&["report", &input, "--group-by", "team", "-o", &page_str]);
    assert!(out.status.success(), "{}", stderr(&out));

    // A screenshot that is not blank: many distinct colours and plenty of non-white pixels.
    let shot = dir.path().join("shot.png");
    run_chromium(
        &page,
        &dir.path().join("profile-shot"),
        &[
            "--window-size=1000,1400".into(),
            format!("--screenshot={}", shot.display()),
        ],
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&shot).expect("chromium wrote the screenshot"),
    ));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("a sane size")];
    let info = reader.next_frame(&mut buf).expect("one frame");
    let pixels = &buf[..info.buffer_size()];
    let channels = info.color_type.samples();
    assert!(info.width >= 800 && info.height >= 1000, "{info:?}");
    let mut colours = std::collections::HashSet::new();
    let mut non_white = 0usize;
    for px in pixels.chunks(channels) {
        let rgb = (px[0], px[1], px[2]);
        colours.insert(rgb);
        if rgb != (255, 255, 255) {
            non_white += 1;
        }
    }
    let total = pixels.len() / channels;
    assert!(
        colours.len() > 50,
        "only {} colours: blank page?",
        colours.len()
    );
    assert!(
        non_white * 50 > total,
        "only {non_white} of {total} pixels are not white: blank page?"
    );

    // The DOM as the browser built it: every scenario title, the injected text as text, and
    // no element the injection tried to create.
    let dom = run_chromium(
        &page,
        &dir.path().join("profile-dom"),
        &["--dump-dom".into()],
    );
    for title in [
        "Passed over for a big project",
        "A career pivot you now hate",
        "A new-business pitch you led and lost",
        "Another career setback",
    ] {
        assert!(dom.contains(title), "{title} missing from the DOM");
    }
    assert!(
        dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "the <script> story is shown as text"
    );
    assert!(dom.contains("&gt;&lt;img src=x onerror=alert(2)&gt;"));
    let lower = dom.to_ascii_lowercase();
    assert!(!lower.contains("<script"), "no script element in the DOM");
    assert!(
        !lower.contains("<img"),
        "no injected img element in the DOM"
    );
    assert!(
        !lower.contains("onerror=\""),
        "no injected handler attribute"
    );
}

/// The totals' figures end in one column, the long "second scenario" row's too (it was one
/// cell off), and group values line up in terminal cells: a CJK value takes two per character,
/// and a value too long for the column is shortened with an ellipsis.
#[test]
fn text_columns_line_up_with_long_labels_and_wide_characters() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv =
        String::from("id,category,confidence,runner_up,margin,tokens,truncated,status,also,team\n");
    let teams = ["販売チーム", "eng", &"a very long team name ".repeat(3)];
    for (i, team) in teams.iter().enumerate() {
        csv += &format!("{i},passed_over,0.9,other,0.2,12,false,ok,lost_pitch,{team}\n");
    }
    std::fs::write(dir.path().join("c.csv"), csv).unwrap();
    let args = ["report", "c.csv", "--group-by", "team", "--color", "never"];
    let out = failup_in(dir.path(), &args, None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let cells = |line: &str| unicode_width::UnicodeWidthStr::width(line);
    let rows = text.lines().find(|l| l.contains("rows read")).unwrap();
    let second = text
        .lines()
        .find(|l| l.contains("second scenario"))
        .unwrap();
    assert_eq!(rows.find('3'), second.find(" 3").map(|i| i + 1), "{text}");
    let group_lines: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("By team"))
        .skip(1)
        .take(4)
        .collect();
    let widths: Vec<usize> = group_lines.iter().map(|l| cells(l)).collect();
    assert!(widths.windows(2).all(|w| w[0] == w[1]), "{group_lines:#?}");
    assert!(text.contains("a very long team name a ver… *"), "{text}");
}

/// Group values typed two ways (`Sales`, ` Sales`, `sales`, `é` as one character and as
/// two, full-width letters, a zero-width space) are counted apart, as the data says, and look alike in a table: the report warns,
/// naming them (spelt out where they would print alike).
#[test]
fn groups_that_differ_only_in_case_or_end_spaces_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let csv = "id,category,confidence,runner_up,margin,tokens,truncated,status,team\n\
               a,lost_pitch,0.8,other,0.1,12,false,ok,Sales\n\
               b,lost_pitch,0.8,other,0.1,12,false,ok, Sales\n\
               c,other,0.8,lost_pitch,0.1,12,false,ok,sales\n\
               d,other,0.8,lost_pitch,0.1,12,false,ok,ops\n\
               e,other,0.8,lost_pitch,0.1,12,false,ok,Caf\u{e9}\n\
               f,other,0.8,lost_pitch,0.1,12,false,ok,Cafe\u{301}\n\
               g,other,0.8,lost_pitch,0.1,12,false,ok,OPS\n\
               h,other,0.8,lost_pitch,0.1,12,false,ok,\u{ff2f}\u{ff30}\u{ff33}\n\
               i,other,0.8,lost_pitch,0.1,12,false,ok,Ops\u{200b}\n\
               j,other,0.8,lost_pitch,0.1,12,false,ok,Legal\n\
               k,other,0.8,lost_pitch,0.1,12,false,ok,Legal\u{200d}\n";
    std::fs::write(dir.path().join("g.csv"), csv).unwrap();
    let args = ["report", "g.csv", "--group-by", "team", "--format", "json"];
    let out = failup_in(dir.path(), &args, None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["groups"]["groups"].as_array().unwrap().len(), 11);
    let said = stderr(&out);
    assert!(
        said.contains("the groups ' Sales', 'Sales', 'sales' differ only in case"),
        "{said}"
    );
    assert!(
        said.contains(r"the groups 'Cafe\u{301}', 'Caf\u{e9}' differ only"),
        "{said}"
    );
    // Full-width letters and a zero-width space, as pasted from a chat or a web page.
    assert!(
        said.contains(r"the groups 'OPS', 'Ops\u{200b}', 'ops', 'ＯＰＳ' differ only"),
        "{said}"
    );
    // A joiner, which prints as nothing, is spelt out with the rest.
    assert!(
        said.contains(r"the groups 'Legal', 'Legal\u{200d}' differ only"),
        "{said}"
    );
}

/// Two outputs joined by hand count their stories twice: the report still counts every row,
/// and says how many repeat an id.
#[test]
fn rows_repeating_an_id_are_counted_and_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let one = std::fs::read_to_string(fixture("report_classified.csv")).unwrap();
    let body: Vec<&str> = one.lines().skip(1).collect();
    std::fs::write(dir.path().join("twice.csv"), format!("{one}{}\n", body[0])).unwrap();
    let out = failup_in(
        dir.path(),
        &["report", "twice.csv", "--format", "json"],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["totals"]["rows"], body.len() + 1, "{report}");
    // Named by the line it is on and its id, as classify names a repeat.
    let (line, id) = (one.lines().count() + 1, body[0].split(',').next().unwrap());
    assert!(
        stderr(&out).contains(&format!(
            "1 row of twice.csv repeats an id seen earlier (the first at line {line}, id '{id}')"
        )),
        "{}",
        stderr(&out)
    );
    // Empty ids are not one story told twice (classify warns of them itself).
    let blank_ids = one.replace("\nr01,", "\n,").replace("\nr02,", "\n,");
    assert_eq!(blank_ids.matches("\n,").count(), 2);
    std::fs::write(dir.path().join("blank.csv"), blank_ids).unwrap();
    let out = failup_in(dir.path(), &["report", "blank.csv", "-o", "r.txt"], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("repeat"), "{}", stderr(&out));
}

/// A report made by classify names the precision, long-text mode and few-shot file that shaped
/// every verdict, and so does one rendered from its summary; one made from a row file says it
/// cannot know.
#[test]
fn a_report_names_how_the_stories_were_read() {
    let dir = tempfile::tempdir().unwrap();
    let examples = fixture_str("fewshot_examples.csv");
    let run = failup_env(
        dir.path(),
        &[
            "classify",
            &fixture_str("stories.csv"),
            "-q",
            "-o",
            "rows.csv",
            "--examples",
            &examples,
            "--precision",
            "fp32",
            "--long-text",
            "truncate",
            "--report",
            "run.json",
            "--summary-out",
            "summary.json",
        ],
        None,
        &[("FAILUP_BACKEND", "test-hashed")],
    );
    assert!(run.status.success(), "{}", stderr(&run));
    let examples_sha = hex::encode(Sha256::digest(std::fs::read(&examples).unwrap()));
    let expected = serde_json::json!({
        "precision": "fp32",
        "backend": "test-hashed",
        "long_text": "truncate",
        "profile_sha256": null,
        "examples_sha256": examples_sha,
    });
    let reading = |args: &[&str]| -> Value {
        let out = failup_in(dir.path(), args, None);
        assert!(out.status.success(), "{}", stderr(&out));
        let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
        report["header"]["reading"].clone()
    };
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("run.json")).unwrap())
            .unwrap();
    assert_eq!(written["header"]["reading"], expected);
    let json = ["--format", "json", "-o", "-"];
    let from_summary = [&["report", "summary.json"][..], &json].concat();
    assert_eq!(reading(&from_summary), expected);
    let from_rows = [&["report", "rows.csv"][..], &json].concat();
    assert_eq!(reading(&from_rows), Value::Null);
    let said = format!(
        "fp32 on test-hashed, --long-text truncate, examples sha256 {}",
        &examples_sha[..12]
    );
    for (format, line) in [
        ("markdown", format!("| read with | {said} |")),
        ("html", format!("<dt>read with</dt><dd>{said}</dd>")),
        ("text", format!("· reading {said} ·")),
    ] {
        let args = ["report", "summary.json", "-o", "-", "--format", format];
        let out = failup_in(dir.path(), &args, None);
        // The text report wraps its header line to the terminal's width.
        let shown = stdout(&out)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert!(shown.contains(&line), "{format}: {}", stdout(&out));
    }
}

/// A summary names the model its rows were read with: a typed --model for another folder is
/// refused, not passed over without a word; the same model, or one set for every command in
/// FAILUP_MODEL, is not.
#[test]
fn report_of_a_summary_refuses_a_typed_model_it_was_not_made_with() {
    let dir = tempfile::tempdir().unwrap();
    let stories = fixture_str("stories.csv");
    let classify = ["classify", &stories, "-q", "-o", "rows.csv"];
    let summary = [&classify[..], &["--summary-out", "summary.json"]].concat();
    let run = failup_env(dir.path(), &summary, None, &[HASHED]);
    assert!(run.status.success(), "{}", stderr(&run));
    let args = [
        "report",
        "summary.json",
        "-o",
        "-",
        "--model",
        "no-such-folder",
    ];
    let out = failup_in(dir.path(), &args, None);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "summary.json is a summary of rows read with the model all-MiniLM-L6-v2, which its \
             report names, and --model no-such-folder is not a model folder"
        ),
        "{}",
        stderr(&out)
    );
    let bundled = common::repo_path("models/all-MiniLM-L6-v2");
    let same = [
        "report",
        "summary.json",
        "-o",
        "-",
        "--model",
        bundled.to_str().unwrap(),
    ];
    let out = failup_in(dir.path(), &same, None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let from_env = [("FAILUP_MODEL", "no-such-folder")];
    let out = failup_env(
        dir.path(),
        &["report", "summary.json", "-o", "-"],
        None,
        &from_env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// A taxonomy given through a pipe is read once: `classify --report` and `--summary-out` used
/// to read it a second time for the header's hash, and failed on the emptied pipe.
#[cfg(unix)]
#[test]
fn a_taxonomy_through_a_pipe_is_read_once_for_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let taxonomy = std::fs::read_to_string(common::repo_path("data/taxonomy.toml")).unwrap();
    let taxonomy = format!("# given through a pipe\n{taxonomy}");
    let run = failup_env(
        dir.path(),
        &[
            "classify",
            &fixture_str("stories.csv"),
            "--taxonomy",
            "/dev/stdin",
            "-q",
            "-o",
            "rows.csv",
            "--summary-out",
            "summary.json",
            "--report",
            "report.md",
        ],
        Some(&taxonomy),
        &[("FAILUP_BACKEND", "test-hashed")],
    );
    assert!(run.status.success(), "{}", stderr(&run));
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("summary.json")).unwrap())
            .unwrap();
    let recorded = &summary["taxonomy"];
    assert_eq!(recorded["name"], "/dev/stdin", "{summary}");
    let sha256 = hex::encode(Sha256::digest(taxonomy.as_bytes()));
    assert_eq!(recorded["sha256"], sha256.as_str(), "{summary}");
    let report = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(report.contains(&sha256[..12]), "{report}");
}

/// The text report's group table names its column in full even when every value is shorter
/// (it was cut to the values' width: `depa…`), and lists a group whose rows were all empty or
/// unreadable (a short row), with 0 stories; a repeated header row (malformed, never a story)
/// makes no group.
#[test]
fn the_group_table_names_its_column_whole_and_keeps_empty_groups() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("dept.csv"),
        "id,department,text\n1,hr,I was passed over for the promotion\n\
         2,it,We lost the pitch to a rival agency\n3,ops,\nid,department,text\n4,legal\n",
    )
    .unwrap();
    let run = failup_env(
        dir.path(),
        &[
            "classify",
            "dept.csv",
            "--keep-columns",
            "department",
            "-q",
            "-o",
            "rows.csv",
            "--report",
            "report.txt",
            "--group-by",
            "department",
        ],
        None,
        &[("FAILUP_BACKEND", "test-hashed")],
    );
    assert!(run.status.success(), "{}", stderr(&run));
    let report = std::fs::read_to_string(dir.path().join("report.txt")).unwrap();
    let table = &report[report.find("By department").expect(&report)..];
    let head = table.lines().nth(1).unwrap();
    assert!(
        head.trim_start().starts_with("department  stories"),
        "{report}"
    );
    for group in ["ops", "legal"] {
        let line = table
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{group} *")));
        let count = line.and_then(|l| l.split_whitespace().nth(2));
        assert_eq!(count, Some("0"), "{group}: {report}");
    }
    let rows = table.lines().skip(2).take_while(|l| !l.trim().is_empty());
    assert!(!rows.clone().any(|l| l.contains("department")), "{report}");
    assert_eq!(
        rows.count(),
        5,
        "hr, it, legal, ops and the small-group note: {report}"
    );
}

/// `report --model DIR` only names the model in the header, so a folder that is not there is
/// no error, but is warned of: the header reads "model unknown" (it did so silently).
#[test]
fn a_report_model_that_is_not_there_is_warned_of() {
    let out = failup(&["report", &fixture_str(CSV), "--model", "/nonexistent/model"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("model folder /nonexistent/model: no such folder, so the report names the model 'unknown'"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).contains("model unknown"), "{}", stdout(&out));
}

/// Past the ids a report lists (100), every format says how many more there are; a long id is
/// cut in the text report as warnings cut it.
#[test]
fn id_lists_say_how_many_more_and_long_ids_are_cut() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = format!("id,text\n{},\n", "x".repeat(5000));
    for i in 0..130 {
        csv += &format!("e{i},\n");
    }
    std::fs::write(dir.path().join("in.csv"), csv).unwrap();
    let args = ["classify", "in.csv", "-q", "-o", "rows.csv"];
    let out = failup_env(
        dir.path(),
        &args,
        None,
        &[("FAILUP_BACKEND", "test-hashed")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for name in ["r.txt", "r.md", "r.html"] {
        let out = failup_in(dir.path(), &["report", "rows.csv", "-o", name], None);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let text = std::fs::read_to_string(dir.path().join(name)).unwrap();
        // The text report wraps the list to the terminal's width.
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(text.contains("… (31 more)"), "{name}: {text}");
    }
    let text = std::fs::read_to_string(dir.path().join("r.txt")).unwrap();
    let ids = text.lines().filter(|l| l.contains(", e1"));
    assert!(
        ids.clone().count() > 1 && ids.clone().all(|l| l.chars().count() <= 96),
        "{text}"
    );
    let text: String = text.split_whitespace().collect();
    assert!(text.contains(&format!("{}…", "x".repeat(100))), "{text}");
    assert!(!text.contains(&"x".repeat(101)), "{text}");
}

/// Three stories whose verdicts sit in one sentence each; the last sentence of `e3` is markup.
const EXPLAINED: &str = "id,text,evidence\n\
    e1,I have worked the ward for six years. They gave the charge nurse post to a woman who started in March. I am tired.,a kept column\n\
    e2,Our agency spent six weeks on the deck. The bank picked a cheaper rival for the new account. We drank a lot after.,a kept column\n\
    e3,I left accounting for teaching two years ago. I regret the change every single day. <b>Send help</b>,a kept column\n";

/// `classify --explain` writes each story's deciding sentence, and the report quotes it under
/// each listed story in every format, as `classify --report` does; a kept input column named
/// `evidence`, without `--explain`, is the input's and is not quoted.
#[test]
fn the_report_quotes_the_sentence_that_decided_each_listed_story() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("in.csv"), EXPLAINED).unwrap();
    let ok = |args: &[&str]| {
        let out = failup_in(d, args, None);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    for (out, extra) in [
        ("out.csv", ["--report", "live.md"]),
        ("out.jsonl", ["--format", "jsonl"]),
    ] {
        let classify = ["classify", "in.csv", "--explain", "-q", "-o", out];
        ok(&[&classify[..], &extra[..]].concat());
    }
    let rows = std::fs::read_to_string(d.join("out.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(rows.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let at = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let evidence: Vec<(String, String)> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[at("id")].to_string(), r[at("evidence")].to_string())
        })
        .collect();
    assert!(
        evidence
            .iter()
            .all(|(_, e)| !e.is_empty() && e != "a kept column"),
        "{evidence:?}"
    );

    for input in ["out.csv", "out.jsonl"] {
        let json: Value =
            serde_json::from_str(&ok(&["report", input, "--format", "json"])).unwrap();
        let listed: Vec<&Value> = json["scenarios"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["representative"].as_array().unwrap())
            .collect();
        assert_eq!(listed.len(), 3, "{input}");
        for story in listed {
            let id = story["id"].as_str().unwrap();
            let (_, want) = evidence.iter().find(|(i, _)| i == id).unwrap();
            assert_eq!(
                story["evidence"].as_str(),
                Some(want.as_str()),
                "{input} {id}"
            );
        }
        let text = ok(&["report", input, "--color", "never"]);
        let markdown = ok(&["report", input, "--format", "markdown"]);
        let html = ok(&["report", input, "--format", "html"]);
        for (_, e) in &evidence {
            assert!(
                text.contains(&format!("decided by: {e}")),
                "{input}: {text}"
            );
            if !e.contains('<') {
                assert!(
                    markdown.contains(&format!("decided by: **{e}**")),
                    "{markdown}"
                );
                assert!(html.contains(&format!("decided by: <q>{e}</q>")), "{html}");
            }
        }
        let markup = evidence.iter().any(|(_, e)| e.contains("<b>"));
        assert!(!html.contains("<b>Send"), "markup is escaped");
        assert_eq!(markup, html.contains("&lt;b&gt;Send help&lt;/b&gt;"));
    }
    let live = std::fs::read_to_string(d.join("live.md")).unwrap();
    assert_eq!(live.matches("decided by: **").count(), 6, "{live}");

    ok(&[
        "classify",
        "in.csv",
        "-q",
        "-o",
        "plain.csv",
        "--keep-columns",
        "evidence",
    ]);
    let json: Value =
        serde_json::from_str(&ok(&["report", "plain.csv", "--format", "json"])).unwrap();
    assert!(!json.to_string().contains("\"evidence\""), "{json}");
    assert!(!ok(&["report", "plain.csv"]).contains("decided by"));
}

/// A report credits its scenarios and advice to the article only when they are the article's:
/// the shipped taxonomy, read from anywhere. An edited copy's advice is named as its own.
#[test]
fn only_the_articles_taxonomy_is_credited_to_the_article() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = common::repo_path("data/taxonomy.toml");
    let taxonomy = std::fs::read_to_string(&shipped).unwrap();
    std::fs::write(dir.path().join("ours.toml"), format!("# ours\n{taxonomy}")).unwrap();
    let rows = fixture_str("report_classified.csv");
    let shipped = shipped.to_str().unwrap();
    for (taxonomy, articles) in [
        (None, true),
        (Some(shipped), true),
        (Some("ours.toml"), false),
    ] {
        for (format, credit, own) in [
            (
                "text",
                "the article's advice",
                "the advice of the taxonomy ours.toml",
            ),
            (
                "markdown",
                "The article's advice",
                "The advice of the taxonomy ours.toml",
            ),
            (
                "html",
                "Failing Upward",
                "the taxonomy <code>ours.toml</code>",
            ),
        ] {
            let mut args = vec!["report", &rows, "--format", format];
            args.extend(taxonomy.iter().flat_map(|t| ["--taxonomy", *t]));
            let out = failup_in(dir.path(), &args, None);
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
            let page = stdout(&out);
            assert_eq!(
                page.contains(credit),
                articles,
                "{taxonomy:?} {format}: {page}"
            );
            assert_eq!(
                page.contains(own),
                !articles,
                "{taxonomy:?} {format}: {page}"
            );
        }
    }
}

/// `failup report rows.csv >> rows.csv` is refused, as classify refuses it: the report was
/// added to the end of the rows it summarises.
#[cfg(unix)]
#[test]
fn a_report_appended_to_its_own_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let rows = std::fs::read(fixture("report_classified.csv")).unwrap();
    let path = dir.path().join("rows.csv");
    std::fs::write(&path, &rows).unwrap();
    let append = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    let out = common::failup_command()
        .args(["report", "rows.csv"])
        .current_dir(dir.path())
        .stdout(append)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("standard output is the input file"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(&path).unwrap(), rows);
}

/// A taxonomy that rewords another's advice keeps its ids and score columns: a report with
/// the wrong one says that the rows' advice is not its own, and one with the right one does
/// not.
#[test]
fn a_report_warns_when_the_rows_advice_is_another_taxonomys() {
    let dir = tempfile::tempdir().unwrap();
    let builtin = std::fs::read_to_string(common::repo_path("data/taxonomy.toml")).unwrap();
    let at = builtin.find("headline = \"").unwrap() + "headline = \"".len();
    let end = at + builtin[at..].find('"').unwrap();
    let reworded = format!("{}Talk to Jane in HR.{}", &builtin[..at], &builtin[end..]);
    std::fs::write(dir.path().join("ours.toml"), reworded).unwrap();
    let stories = fixture_str("stories.csv");
    let classify = [
        "classify",
        &stories,
        "-q",
        "--taxonomy",
        "ours.toml",
        "-o",
        "rows.csv",
    ];
    let run = failup_env(dir.path(), &classify, None, &[HASHED]);
    assert!(run.status.success(), "{}", stderr(&run));
    let rows = std::fs::read_to_string(dir.path().join("rows.csv")).unwrap();
    let reworded_rows = rows.matches("Talk to Jane in HR.").count();
    assert!(reworded_rows > 0, "{rows}");

    let out = failup_in(dir.path(), &["report", "rows.csv", "-o", "-"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(
        said.contains(&format!("{reworded_rows} row")) && said.contains("another --taxonomy"),
        "{said}"
    );
    let args = ["report", "rows.csv", "--taxonomy", "ours.toml", "-o", "-"];
    let out = failup_in(dir.path(), &args, None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("another --taxonomy"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).contains("Talk to Jane in HR."));
}
