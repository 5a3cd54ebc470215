//! Bad, hostile and huge input: every input row is accounted for, every problem is reported
//! with where it is, and exit codes follow the documented contract (0 ok, 2 input error).
//!
//! Each test builds its input in code, runs the real binary, and checks both the exit code and
//! the row accounting: rows in = rows out, with the unusable ones flagged by id.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

struct Run {
    out: Output,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Run {
    fn col(&self, name: &str) -> usize {
        self.header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name} in {:?}", self.header))
    }

    fn ids(&self) -> Vec<String> {
        let c = self.col("id");
        self.rows.iter().map(|r| r[c].clone()).collect()
    }

    fn value(&self, id: &str, column: &str) -> String {
        let (i, c) = (self.col("id"), self.col(column));
        self.rows
            .iter()
            .find(|r| r[i] == id)
            .unwrap_or_else(|| panic!("no row {id}"))[c]
            .clone()
    }

    /// Ids of the rows whose status is not `ok`.
    fn flagged(&self) -> Vec<(String, String)> {
        let (i, s) = (self.col("id"), self.col("status"));
        self.rows
            .iter()
            .filter(|r| r[s] != "ok")
            .map(|r| (r[i].clone(), r[s].clone()))
            .collect()
    }
}

fn write_input(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Classifies `input` to stdout with `extra` flags.
fn classify(dir: &Path, input: &Path, extra: &[&str]) -> Run {
    classify_env(dir, input, extra, &[])
}

/// [`classify`] with `env` set for the run.
fn classify_env(dir: &Path, input: &Path, extra: &[&str], env: &[(&str, &str)]) -> Run {
    let model = repo_path("models/all-MiniLM-L6-v2");
    let mut args = vec![
        "classify",
        input.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--keep-all",
    ];
    args.extend_from_slice(extra);
    let out = failup_env(dir, &args, None, env);
    let (header, rows) = if out.status.code() == Some(0) {
        parse_csv(&stdout(&out))
    } else {
        (Vec::new(), Vec::new())
    };
    Run { out, header, rows }
}

fn ids(range: std::ops::RangeInclusive<usize>) -> Vec<String> {
    range.map(|i| i.to_string()).collect()
}

#[test]
fn utf8_bom_and_crlf_line_endings() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(
        dir.path(),
        "bom.csv",
        "\u{FEFF}id,text\r\n1,I was laid off.\r\n2,\"They picked the new hire\r\nfor the lead role.\"\r\n3,We lost the bid.\r\n"
            .as_bytes(),
    );
    let run = classify(dir.path(), &input, &["-q"]);
    assert_eq!(run.out.status.code(), Some(0), "{}", stderr(&run.out));
    assert_eq!(run.ids(), ids(1..=3));
    assert!(run.flagged().is_empty(), "{:?}", run.flagged());
    assert_eq!(
        run.value("2", "text"),
        "They picked the new hire\r\nfor the lead role."
    );
}

#[test]
fn invalid_utf8_is_replaced_and_flagged_not_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = b"id,text\n1,fine story about a layoff\n2,caf".to_vec();
    bytes.extend_from_slice(&[0xE9, 0xFF]);
    bytes.extend_from_slice(b" owner and the shop closed\n3,another one\n");
    let input = write_input(dir.path(), "bad.csv", &bytes);
    let run = classify(dir.path(), &input, &[]);
    assert_eq!(run.out.status.code(), Some(0), "{}", stderr(&run.out));
    assert_eq!(run.ids(), ids(1..=3));
    assert_eq!(
        run.flagged(),
        [("2".to_string(), "invalid_utf8".to_string())]
    );
    assert!(!run.value("2", "category").is_empty(), "still classified");
    assert!(run.value("2", "text").contains('\u{FFFD}'));
    assert!(
        stderr(&run.out).contains("bad.csv:3: row 2 (id 2)"),
        "{}",
        stderr(&run.out)
    );
}

#[test]
fn latin1_and_windows_1252_are_decoded_on_request() {
    let dir = tempfile::tempdir().unwrap();
    // 0xE9 is é in both; 0x80 is € in windows-1252.
    let input = write_input(
        dir.path(),
        "legacy.csv",
        b"id,text\n1,\"Caf\xE9 manager, laid off \x80 no severance\"\n",
    );
    for enc in ["latin1", "windows-1252"] {
        let run = classify(dir.path(), &input, &["-q", "--encoding", enc]);
        assert_eq!(run.out.status.code(), Some(0), "{}", stderr(&run.out));
        assert_eq!(run.ids(), ["1"]);
        assert_eq!(
            run.value("1", "text"),
            "Café manager, laid off € no severance"
        );
        assert!(run.flagged().is_empty());
        assert!(!stderr(&run.out).contains("reads as UTF-8"));
    }
    // A UTF-8 file given a legacy encoding by mistake is read as asked, with a warning.
    let utf8 = write_input(
        dir.path(),
        "utf8.csv",
        "id,text\n1,Café closed\n".as_bytes(),
    );
    for enc in ["latin1", "windows-1252"] {
        let run = classify(dir.path(), &utf8, &["-q", "--encoding", enc]);
        assert_eq!(run.value("1", "text"), "CafÃ© closed");
        let says = format!("utf8.csv reads as UTF-8 (its accented or other non-ASCII text is valid UTF-8), but --encoding {enc}");
        assert!(stderr(&run.out).contains(&says), "{}", stderr(&run.out));
        assert!(!stderr(&run.out).contains("may mix encodings"));
    }
    // A file that mixes the two, past the start looked at first, is read as asked, and the
    // UTF-8 in it is told with the line it starts on.
    let mut mixed = b"id,text\n1,na\xEFve pitch lost\n".to_vec();
    for i in 2..3000 {
        mixed.extend_from_slice(format!("{i},a story of forty characters or so here\n").as_bytes());
    }
    mixed.extend_from_slice("3000,café manager passed me over\n".as_bytes());
    let mixed = write_input(dir.path(), "mixed.csv", &mixed);
    let run = classify(dir.path(), &mixed, &["-q", "--encoding", "windows-1252"]);
    assert_eq!(run.out.status.code(), Some(0), "{}", stderr(&run.out));
    assert_eq!(run.value("3000", "text"), "cafÃ© manager passed me over");
    assert!(
        stderr(&run.out).contains("mixed.csv: 1 place from line 3001 on read as UTF-8")
            && stderr(&run.out).contains("may mix encodings"),
        "{}",
        stderr(&run.out)
    );
}

#[test]
fn semicolon_tab_and_pipe_files() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &str, &[&str]); 3] = [
        (
            "semi.csv",
            "id;team;text\n1;a;Laid off, again.\n2;b;\"We lost the pitch; sad.\"\n",
            &[],
        ),
        (
            "tabs.tsv",
            "id\tteam\ttext\n1\ta\tLaid off, again.\n2\tb\tLost the bid.\n",
            &[],
        ),
        (
            "pipe.csv",
            "id|team|text\n1|a|Laid off, again.\n2|b|Lost the bid.\n",
            &["--delimiter", "|"],
        ),
    ];
    for (name, content, flags) in cases {
        let input = write_input(dir.path(), name, content.as_bytes());
        let mut args = vec!["-q"];
        args.extend_from_slice(flags);
        let run = classify(dir.path(), &input, &args);
        assert_eq!(
            run.out.status.code(),
            Some(0),
            "{name}: {}",
            stderr(&run.out)
        );
        assert_eq!(run.ids(), ids(1..=2), "{name}");
        assert_eq!(run.value("1", "team"), "a", "{name}");
        assert_eq!(run.value("1", "text"), "Laid off, again.", "{name}");
        assert!(run.flagged().is_empty(), "{name}: {:?}", run.flagged());
    }
    let bad = failup(&["classify", "x.csv", "--delimiter", "#"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("not a supported delimiter"));
}

#[test]
fn quoted_fields_with_newlines_and_quotes() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(
        dir.path(),
        "quoted.csv",
        b"id,text\n1,\"He said \"\"not this year\"\",\nand gave the project to Sam.\"\n2,\"Line one\n\nLine three\"\n3,plain\n",
    );
    let run = classify(dir.path(), &input, &["-q"]);
    assert_eq!(run.out.status.code(), Some(0));
    assert_eq!(run.ids(), ids(1..=3));
    assert_eq!(
        run.value("1", "text"),
        "He said \"not this year\",\nand gave the project to Sam."
    );
    assert_eq!(run.value("2", "text"), "Line one\n\nLine three");
}

/// A quoted cell that closes with more text after it (`"ab"cd`, or a quote reopened rows
/// later) is read by the csv crate as one joined cell, swallowing any rows between: failup
/// flags the row and names where the quote is, or refuses with --strict.
#[test]
fn text_after_a_closing_quote_is_flagged_or_rejected_with_strict() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(
        dir.path(),
        "stray.csv",
        b"id,text\n1,\"They gave it to Sam\n2,this row\n3,\"and this one\n4,I lost the pitch.\n5,\"ab\"cd\n",
    );
    let run = classify(dir.path(), &input, &[]);
    assert_eq!(run.out.status.code(), Some(0), "{}", stderr(&run.out));
    assert_eq!(run.ids(), ["1", "4", "5"]);
    let malformed = |id: &str| (id.to_string(), "malformed".to_string());
    assert_eq!(run.flagged(), [malformed("1"), malformed("5")]);
    let err = stderr(&run.out);
    for warning in [
        "stray.csv:2: row 1 (id 1): the quote at line 4, column 3 closes a quoted field, but more text follows it",
        "stray.csv:6: row 3 (id 5): the quote at line 6, column 6 closes",
    ] {
        assert!(err.contains(warning), "{err}");
    }

    let run = classify(dir.path(), &input, &["-q", "--strict"]);
    assert_eq!(run.out.status.code(), Some(2));
    let err = stderr(&run.out);
    assert!(
        err.contains("stray.csv:2: row 1: the quote at line 4, column 3 closes"),
        "{err}"
    );

    let out = failup_env(dir.path(), &["embed", "stray.csv"], None, &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 3);
    assert!(
        stderr(&out).contains("stray.csv:6: row 3 (id 5): the quote at line 6, column 6"),
        "{}",
        stderr(&out)
    );
}

/// Two exports joined with `cat`: the second one's header (here with its own byte-order mark)
/// is a row of the first. It is kept, flagged and never read as a story, or refused.
#[test]
fn an_appended_exports_header_is_flagged_not_classified() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(
        dir.path(),
        "joined.csv",
        b"id,text\n1,They gave the project to the new hire.\n\xEF\xBB\xBFid, text\n2,I lost the pitch we led.\n",
    );
    let run = classify(dir.path(), &input, &[]);
    assert_eq!(run.out.status.code(), Some(0), "{}", stderr(&run.out));
    // The second export's byte-order mark is no part of the id, as the first one's is not.
    assert_eq!(run.ids(), ["1", "id", "2"]);
    assert_eq!(run.flagged(), [("id".to_string(), "malformed".to_string())]);
    assert_eq!(run.value("id", "category"), "");
    assert_ne!(run.value("2", "category"), "");
    let err = stderr(&run.out);
    assert!(
        err.contains("joined.csv:3: row 2 (id id): repeats the header row, so it is most likely the header of a second export appended to this file; it is not read as a story (if it is one, change a cell); not classified and flagged status=malformed"),
        "{err}"
    );

    let run = classify(dir.path(), &input, &["-q", "--strict"]);
    assert_eq!(run.out.status.code(), Some(2));
    let err = stderr(&run.out);
    assert!(
        err.contains("joined.csv:3: row 2: repeats the header row"),
        "{err}"
    );
}

/// The csv crate reads a quote that never closes as running to the end of the file, so the
/// rows after it become one cell; failup flags that row and says so, or refuses with --strict.
#[test]
fn a_quote_that_never_closes_is_flagged_or_rejected_with_strict() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(
        dir.path(),
        "open.csv",
        b"id,text\n1,I was passed over for the launch.\n2,\"They gave it to Sam\n3,this row\n4,and this one\n",
    );
    let run = classify(dir.path(), &input, &["-q"]);
    assert_eq!(run.out.status.code(), Some(0), "{}", stderr(&run.out));
    assert_eq!(run.ids(), ids(1..=2));
    assert_eq!(run.flagged(), [("2".to_string(), "malformed".to_string())]);
    let err = stderr(&run.out);
    assert!(
        err.contains("open.csv:3: row 2 (id 2): a quoted field opens in this row and never closes"),
        "{err}"
    );

    let run = classify(dir.path(), &input, &["-q", "--strict"]);
    assert_eq!(run.out.status.code(), Some(2));
    let err = stderr(&run.out);
    assert!(
        err.contains("open.csv:3: row 2: a quoted field opens"),
        "{err}"
    );

    // embed has no status column: it warns.
    let out = failup_env(dir.path(), &["embed", "open.csv", "-q"], None, &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 2);
    let err = stderr(&out);
    assert!(
        err.contains("open.csv:3: row 2 (id 2): a quoted field opens"),
        "{err}"
    );
}

#[test]
fn ragged_rows_are_kept_and_flagged_or_rejected_with_strict() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(
        dir.path(),
        "ragged.csv",
        b"id,team,text\n1,a,Laid off.\n2,b\n3,c,Promotion went to the new guy,extra\n4,d,Fine.\n",
    );
    let run = classify(dir.path(), &input, &[]);
    assert_eq!(run.out.status.code(), Some(0), "{}", stderr(&run.out));
    assert_eq!(run.ids(), ids(1..=4));
    assert_eq!(
        run.flagged(),
        [
            ("2".to_string(), "malformed".to_string()),
            ("3".to_string(), "malformed".to_string())
        ]
    );
    assert_eq!(
        run.value("2", "category"),
        "",
        "no text cell: not classified"
    );
    assert_ne!(
        run.value("3", "category"),
        "",
        "text cell present: classified"
    );
    let err = stderr(&run.out);
    assert!(
        err.contains("ragged.csv:3: row 2 (id 2): has 2 fields where the header has 3, and its text cell is missing"),
        "{err}"
    );
    assert!(
        err.contains(
            "ragged.csv:4: row 3 (id 3): has 4 fields where the header has 3: the cells past \
             the text, the last column, were read back into it; a story that holds the \
             delimiter belongs in double quotes; classified"
        ),
        "{err}"
    );
    assert_eq!(
        run.value("3", "text"),
        "Promotion went to the new guy,extra"
    );

    // A story with commas in it, unquoted, in a file whose text is the last column (a file
    // of one column, here) is read whole: it was classified on its words up to the first
    // comma, and the rest was in no column of the output.
    let story = "Honestly I was fine, but then, out of nowhere, my boss gave the big project to \
                 the new hire";
    let csv = format!("text\n\"{story}\"\n{story}\n");
    let input = write_input(dir.path(), "unquoted.csv", csv.as_bytes());
    let run = classify(dir.path(), &input, &[]);
    assert_eq!(run.out.status.code(), Some(0), "{}", stderr(&run.out));
    assert_eq!(run.flagged(), [("2".to_string(), "malformed".to_string())]);
    for column in [
        "text",
        "category",
        "confidence",
        "score_passed_over",
        "tokens",
    ] {
        assert_eq!(run.value("1", column), run.value("2", column), "{column}");
    }
    assert_eq!(run.value("2", "text"), story);

    let out = failup_in(
        dir.path(),
        &["classify", "ragged.csv", "--strict", "-o", "out.csv", "-q"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("ragged.csv:3: row 2 has 2 fields where the header has 3 (--strict"),
        "{err}"
    );
    assert_no_output(dir.path(), "out.csv");
    // The same when the refused row comes after a checkpoint: row 1 is a chunk of its own,
    // written and checkpointed before row 2 is read. The input must change before a rerun,
    // and a changed input cannot be resumed, so nothing is kept.
    let args = ["classify", "ragged.csv", "--strict", "-o", "out.csv", "-q"];
    let out = failup_env(
        dir.path(),
        &[&args[..], &["--chunk-size", "1"]].concat(),
        None,
        &[HASHED],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("ragged.csv:3"), "{}", stderr(&out));
    assert_no_output(dir.path(), "out.csv");
}

/// A chunk size far past the input (even one no memory could hold) reads it as one chunk.
#[test]
fn a_chunk_size_past_the_input_reads_it_as_one_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(dir.path(), "in.csv", many_stories(5).as_bytes());
    let whole = classify_env(dir.path(), &input, &[], &[HASHED]);
    for size in ["100000000000", &u64::MAX.to_string()] {
        let run = classify_env(dir.path(), &input, &["--chunk-size", size], &[HASHED]);
        assert_eq!(
            run.out.status.code(),
            Some(0),
            "{size}: {}",
            stderr(&run.out)
        );
        assert_eq!(run.out.stdout, whole.out.stdout, "{size}");
    }
}

/// Neither the output nor its partial file exists.
fn assert_no_output(dir: &Path, name: &str) {
    let left: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains(name))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn empty_and_whitespace_text_is_never_sent_to_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(
        dir.path(),
        "empty.csv",
        "id,text\n1,\n2,\"   \"\n3,\"\t\n\"\n4,Laid off.\n5,\0\n6,\u{200B}\u{FEFF}\n7,\x01\x02 \u{00A0}\n"
            .as_bytes(),
    );
    let run = classify(dir.path(), &input, &[]);
    assert_eq!(run.out.status.code(), Some(0));
    assert_eq!(run.ids(), ids(1..=7));
    let flagged = run.flagged();
    assert_eq!(flagged.len(), 6, "{flagged:?}");
    for (id, status) in flagged {
        assert_eq!(status, "empty");
        assert_eq!(run.value(&id, "category"), "");
        assert_eq!(run.value(&id, "tokens"), "0");
    }
    assert!(stderr(&run.out).contains("7 rows"), "{}", stderr(&run.out));
    assert!(stderr(&run.out).contains("6 empty"), "{}", stderr(&run.out));
}

/// A calibration that cannot tell right verdicts from wrong ones is refused, not written: all
/// stories of one scenario, or a fit whose confidence falls as verdicts grow surer (it
/// inverted every confidence, and exited 0).
#[test]
fn calibrate_refuses_one_scenario_and_an_inverted_fit() {
    let dir = tempfile::tempdir().unwrap();
    let labelled = std::fs::read_to_string(repo_path("data/calibration.csv")).unwrap();
    let header = labelled.lines().next().unwrap();
    let of = |label: &str, n: usize| -> Vec<&str> {
        let tag = format!(",{label},");
        labelled
            .lines()
            .filter(|l| l.contains(&tag))
            .take(n)
            .collect()
    };
    // Calibrates on `header` and `rows` written to a file; the exit code and what was said.
    let calibrate = |rows: &[Vec<&str>]| {
        let csv = [&[vec![header]], rows].concat().concat().join("\n") + "\n";
        write_input(dir.path(), "in.csv", csv.as_bytes());
        let args = ["calibrate", "in.csv", "-o", "p.json"];
        let out = failup_env(dir.path(), &args, None, &[HASHED]);
        (out.status.code(), stderr(&out))
    };
    let (code, said) = calibrate(&[of("other", 24)]);
    assert_eq!(code, Some(2), "{said}");
    assert!(
        said.contains("at least two scenarios") && said.contains("all 'other'"),
        "{said}"
    );
    // Two stories of each of two scenarios: under the stand-in engine's meaningless verdicts
    // the fitted confidence falls with the margin.
    let (code, said) = calibrate(&[of("passed_over", 2), of("other", 2)]);
    assert_eq!(code, Some(2), "{said}");
    assert!(said.contains("falls as the verdict grows surer"), "{said}");
    assert!(!dir.path().join("p.json").exists());
    // The shipped calibration set passes.
    let all: Vec<&str> = labelled.lines().skip(1).collect();
    let (code, said) = calibrate(&[all]);
    assert_eq!(code, Some(0), "{said}");
}

/// `eval --cv` with more folds than stories fitted a head for every empty fold (minutes for
/// nothing), and `--seed` without `--cv` was silently ignored: both are refused.
#[test]
fn eval_refuses_more_folds_than_stories_and_a_seed_without_cv() {
    let dir = tempfile::tempdir().unwrap();
    let labelled = repo_path("data/calibration.csv").display().to_string();
    let run = |args: &[&str]| {
        let out = failup_env(
            dir.path(),
            &[&["eval", &labelled, "-q"], args].concat(),
            None,
            &[HASHED],
        );
        (out.status.code(), stderr(&out))
    };
    let (code, said) = run(&["--cv", "91", "--examples-from-self"]);
    assert_eq!(code, Some(2), "{said}");
    assert!(
        said.contains("more folds than the 90 different labelled stories"),
        "{said}"
    );
    let (code, said) = run(&["--seed", "7"]);
    assert_eq!(code, Some(2), "{said}");
    assert!(said.contains("--cv"), "{said}");
    // Copies of a story share a fold, so they are one story here: --cv 6 left folds empty.
    let copies = "id,label,text\n\
                  1,passed_over,I was passed over for the promotion again.\n\
                  2,passed_over,i was passed over for the promotion again\n\
                  3,passed_over,I was passed over for the promotion again!\n\
                  4,passed_over,They gave the account to the new hire.\n\
                  5,other,I was laid off.\n\
                  6,other,I was fired on Friday.\n";
    std::fs::write(dir.path().join("copies.csv"), copies).unwrap();
    let args = ["eval", "copies.csv", "-q", "--cv", "6"];
    let out = failup_env(dir.path(), &args, None, &[HASHED]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "--cv 6 asks for more folds than the 4 different labelled stories in 6 rows (a copy \
             of a story is scored in its fold); give at most --cv 4"
        ),
        "{}",
        stderr(&out)
    );
    let args = ["eval", "copies.csv", "-q", "--cv", "4"];
    let out = failup_env(dir.path(), &args, None, &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("passed_over (2 stories in 4 rows, 1 to learn from)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn labelled_rows_without_text_or_ragged_are_refused_not_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[u8], &str); 5] = [
        (
            b"text,label\nI was passed over.,passed_over\n,lost_pitch\n",
            "e.csv:3: row 2 is labelled 'lost_pitch' but has no text",
        ),
        // Placeholders, which classify reads as blank cells, were scored as stories.
        (
            b"text,label\nI was passed over.,passed_over\nN/A,lost_pitch\n",
            "e.csv:3: row 2 is labelled 'lost_pitch' but has only a placeholder such as N/A",
        ),
        (
            b"text,label\nI was passed over.,passed_over\n...,other\n",
            "e.csv:3: row 2 is labelled 'other' but has no words, only digits or punctuation",
        ),
        (
            b"text,label\nI was passed over.,passed_over\nI hate my new career\n",
            "e.csv:3: row 2 has only 1 of the header's 2 fields, so the last columns' cells \
             are missing; give it every column",
        ),
        // An unquoted comma in the story: the label read is right, the story cut short.
        (
            b"id,label,text\n1,passed_over,ok\n2,lost_pitch,I pitched, and then, sadly, lost\n",
            "e.csv:3: row 2 has 6 fields, more than the header's 3",
        ),
    ];
    for (csv, expected) in cases {
        write_input(dir.path(), "e.csv", csv);
        for command in ["eval", "calibrate", "train"] {
            let mut args = vec![command, "e.csv"];
            if command != "eval" {
                args.extend(["-o", "p.json"]);
            }
            let out = failup_env(dir.path(), &args, None, &[HASHED]);
            assert_eq!(out.status.code(), Some(2), "{command}: {}", stderr(&out));
            assert!(
                stderr(&out).contains(expected),
                "{command}: {}",
                stderr(&out)
            );
        }
    }
    // A trailing delimiter leaves an empty cell past the header: harmless, so accepted.
    write_input(
        dir.path(),
        "e.csv",
        b"text,label\nI was passed over.,passed_over,\n",
    );
    let out = failup_env(dir.path(), &["eval", "e.csv", "-q"], None, &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn excel_unicode_text_in_utf16_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let text = "\u{FEFF}id\ttext\n1\tWe lost the pitch I led.\n2\tCaf\u{E9} job, then laid off.\n";
    for (name, bytes) in [
        (
            "le.csv",
            text.encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect::<Vec<u8>>(),
        ),
        (
            "be.csv",
            text.encode_utf16().flat_map(u16::to_be_bytes).collect(),
        ),
    ] {
        let input = write_input(dir.path(), name, &bytes);
        let run = classify_env(dir.path(), &input, &[], &[HASHED]);
        assert_eq!(run.out.status.code(), Some(0), "{}", stderr(&run.out));
        assert_eq!(run.ids(), ids(1..=2));
        assert!(run.flagged().is_empty(), "{:?}", run.flagged());
    }
}

/// Runs failup with `args` and a model folder that does not exist, and returns what it said:
/// the run must be refused (exit 2) by checks made before the model is looked for.
fn refused_before_the_model(dir: &Path, args: &[&str]) -> String {
    let args = [args, &["--model", "no-such-model"]].concat();
    let out = failup_env(dir, &args, None, &[]);
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {said}");
    assert!(
        !said.contains("no-such-model"),
        "refused for the model: {said}"
    );
    said
}

#[test]
fn an_output_in_a_missing_folder_is_refused_before_the_model_loads() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "in.csv", many_stories(4).as_bytes());
    for command in ["classify", "embed"] {
        let said =
            refused_before_the_model(dir.path(), &[command, "in.csv", "-o", "no/such/out.csv"]);
        assert!(
            said.contains("there is no folder no/such") && said.contains("mkdir -p"),
            "{said}"
        );
    }
    // A report or summary that could not be written is told before the work, not after it.
    for flag in ["--report", "--summary-out"] {
        let args = ["classify", "in.csv", "-o", "out.csv", flag, "no/r.md"];
        let said = refused_before_the_model(dir.path(), &args);
        assert!(said.contains("there is no folder no"), "{flag}: {said}");
    }
    assert!(!dir.path().join("no").exists());
    // A file where a folder should be: mkdir would not help.
    let said = refused_before_the_model(dir.path(), &["classify", "in.csv", "-o", "in.csv/x/o"]);
    assert!(
        said.contains("in.csv is a file, not a folder") && !said.contains("mkdir"),
        "{said}"
    );
    // Nor would it for a device, such as /dev/full.
    if cfg!(unix) {
        let args = ["classify", "in.csv", "-o", "/dev/full/x.csv"];
        let said = refused_before_the_model(dir.path(), &args);
        assert!(
            said.contains("/dev/full is a file, not a folder") && !said.contains("mkdir"),
            "{said}"
        );
    }
    let args = ["classify", "in.csv", "-o", "out.csv", "--report", "."];
    let said = refused_before_the_model(dir.path(), &args);
    assert!(said.contains("give --report a file name"), "{said}");
    // A name ending in '/' is a folder's: it failed at the final rename, after all the work.
    for flag in ["-o", "--report", "--summary-out"] {
        let mut args = vec!["classify", "in.csv", flag, "new.csv/"];
        if flag != "-o" {
            args.extend(["-o", "out.csv"]);
        }
        let said = refused_before_the_model(dir.path(), &args);
        assert!(
            said.contains(&format!(
                "{flag} new.csv/: a name ending in '/' is a folder's"
            )),
            "{said}"
        );
    }
    let said = refused_before_the_model(dir.path(), &["embed", "in.csv", "-o", "e.jsonl/"]);
    assert!(said.contains("a name ending in '/'"), "{said}");
    // A folder that takes no new files, even from root: sysfs on Linux.
    if cfg!(target_os = "linux") {
        for flag in ["-o", "--report", "--summary-out"] {
            let mut args = vec!["classify", "in.csv", flag, "/sys/out.md"];
            if flag != "-o" {
                args.extend(["-o", "out.csv"]);
            }
            let said = refused_before_the_model(dir.path(), &args);
            assert!(
                said.contains(&format!("cannot write {flag} /sys/out.md"))
                    && said.contains("cannot create files in the folder /sys"),
                "{flag}: {said}"
            );
        }
    }
}

/// A model folder (or taxonomy) that cannot be used is traced to `FAILUP_MODEL` (or
/// `FAILUP_TAXONOMY`) when the variable named it, and not when `--model` did.
#[test]
fn a_bad_model_folder_or_taxonomy_from_the_environment_says_where_it_came_from() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "in.csv", many_stories(2).as_bytes());
    let env = [("FAILUP_MODEL", "no-such-model")];
    let out = failup_env(dir.path(), &["classify", "in.csv"], None, &env);
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains("no-such-model: no such folder")
            && said.contains(
                "--model was not given; its value came from the environment, \
                 FAILUP_MODEL=\"no-such-model\""
            ),
        "{said}"
    );
    // So too a taxonomy.
    let taxonomy = [("FAILUP_TAXONOMY", "no-such.toml")];
    let out = failup_env(dir.path(), &["categories"], None, &taxonomy);
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains("taxonomy no-such.toml")
            && said.contains(
                "--taxonomy was not given; its value came from the environment, \
                 FAILUP_TAXONOMY=\"no-such.toml\""
            ),
        "{said}"
    );
    let args = ["classify", "in.csv", "--model", "no-such-model"];
    let out = failup_env(dir.path(), &args, None, &env);
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("no-such-model: no such folder"), "{said}");
    assert!(!said.contains("came from the environment"), "{said}");
}

#[cfg(unix)]
fn set_mode(path: &Path, bits: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(bits)).unwrap()
}

/// A copy of failup in `root` that another user can run (the build folder may be out of its
/// reach), `root` opened to it; panics unless the test runs as root, which may switch users.
#[cfg(unix)]
fn failup_for_another_user(root: &Path) -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(root).unwrap().uid(),
        0,
        "this test must run as root: it runs failup as uid 65534"
    );
    let failup = root.join("failup");
    std::fs::copy(env!("CARGO_BIN_EXE_failup"), &failup).unwrap();
    set_mode(root, 0o755);
    set_mode(&failup, 0o755);
    failup
}

/// Runs `failup` with `args` in `root` as uid 65534, on the test embedder with its prototype
/// cache at `cache` (or `off`): the exit code and what it said.
#[cfg(unix)]
fn run_as_uid_65534(
    failup: &Path,
    root: &Path,
    args: &[&str],
    cache: &Path,
) -> (Option<i32>, String) {
    use std::os::unix::process::CommandExt;
    let out = Command::new(failup)
        .args(args)
        .env_clear()
        .env("FAILUP_BACKEND", "test-hashed")
        .env("FAILUP_CACHE_DIR", cache)
        .current_dir(root)
        .uid(65534)
        .gid(65534)
        .output()
        .expect("failup runs as uid 65534");
    (out.status.code(), stderr(&out))
}

/// A model file or folder this user may not read is told as such, with the fix, not blamed on
/// the file's contents ("copy it again", "export the folder again").
#[cfg(unix)]
#[test]
#[ignore = "needs root, to run failup as another user (uid 65534)"]
fn root_a_model_folder_this_user_may_not_read_is_told_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let failup = failup_for_another_user(root);
    // The test embedder reads no weights, so any bytes stand for them.
    let model = model_without_weights(root);
    std::fs::write(model.join("model.onnx"), "weights").unwrap();
    for folder in [&model, &model.join("1_Pooling")] {
        set_mode(folder, 0o755);
    }
    let advise = [
        "advise",
        "They gave the lead to the new hire.",
        "--model",
        "model",
    ];
    let run = || run_as_uid_65534(&failup, root, &advise, Path::new("off"));
    let (code, said) = run();
    assert_eq!(code, Some(0), "readable: {said}");
    let fix = "let this user read the folder and its files";
    set_mode(&model.join("tokenizer.json"), 0o000);
    let (code, said) = run();
    assert_eq!(code, Some(2), "{said}");
    assert!(
        said.contains("tokenizer.json cannot be read by this user") && said.contains(fix),
        "{said}"
    );
    assert!(!said.contains("copy it again"), "{said}");
    set_mode(&model.join("tokenizer.json"), 0o644);
    set_mode(&model, 0o000);
    let (code, said) = run();
    assert_eq!(code, Some(2), "{said}");
    assert!(
        said.contains("cannot be read by this user") && said.contains(fix),
        "{said}"
    );
    assert!(!said.contains("export the folder again"), "{said}");
    set_mode(&model, 0o755);
}

/// In a folder with the sticky bit, only a file's owner (or the folder's, or root) may replace
/// it, and failup writes its outputs beside their names and renames them at the end. A file of
/// another user there must be refused before the work, not when the work is done.
#[cfg(unix)]
#[test]
#[ignore = "needs root, to run failup as another user (uid 65534)"]
fn root_an_output_of_another_user_in_a_sticky_folder_is_refused_before_the_work() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // Everything the other user touches lies in this folder: the binary, the input, the cache.
    let failup = failup_for_another_user(root);
    write_input(root, "in.csv", many_stories(4).as_bytes());
    let sticky = root.join("shared");
    let cache = root.join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::create_dir(&sticky).unwrap();
    set_mode(&root.join("in.csv"), 0o644);
    set_mode(&cache, 0o777);
    set_mode(&sticky, 0o1777);
    std::fs::write(sticky.join("theirs.csv"), "root's file\n").unwrap();
    set_mode(&sticky.join("theirs.csv"), 0o666);
    let run = |output: &str| {
        run_as_uid_65534(&failup, root, &["classify", "in.csv", "-o", output], &cache)
    };
    // The other user may write new files there (so a refusal is about the owner) ...
    let (code, said) = run("shared/mine.csv");
    assert_eq!(code, Some(0), "{said}");
    assert!(sticky.join("mine.csv").is_file());
    // ... but not replace root's, even though its mode lets anyone write into it.
    let (code, said) = run("shared/theirs.csv");
    assert_eq!(code, Some(2), "{said}");
    assert!(
        said.contains("cannot write -o shared/theirs.csv")
            && said.contains("belongs to another user")
            && said.contains("sticky bit"),
        "{said}"
    );
    assert!(
        !said.contains("classified"),
        "refused after the work: {said}"
    );
    let theirs = sticky.join("theirs.csv");
    assert_eq!(std::fs::read_to_string(&theirs).unwrap(), "root's file\n");
    // Without the sticky bit the same file is replaced.
    set_mode(&sticky, 0o777);
    let (code, said) = run("shared/theirs.csv");
    assert_eq!(code, Some(0), "{said}");
    assert_ne!(std::fs::read_to_string(&theirs).unwrap(), "root's file\n");
}

#[test]
fn two_outputs_naming_one_file_are_refused_before_the_work() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "in.csv", many_stories(4).as_bytes());
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let cases: [&[&str]; 4] = [
        &["-o", "out.csv", "--report", "out.csv"],
        &["-o", "out.csv", "--summary-out", "sub/../out.csv"],
        &["--report", "r.md", "--summary-out", "./r.md"],
        &["--report", "-"],
    ];
    for flags in cases {
        let said =
            refused_before_the_model(dir.path(), &[&["classify", "in.csv"][..], flags].concat());
        assert!(said.contains("give each its own file"), "{flags:?}: {said}");
    }
    assert!(!dir.path().join("out.csv").exists() && !dir.path().join("r.md").exists());
    // Devices may repeat: /dev/null for rows and report alike, to time a run.
    let args = [
        "classify",
        "in.csv",
        "-o",
        "/dev/null",
        "--report",
        "/dev/null",
        "-q",
    ];
    let out = failup_env(dir.path(), &args, None, &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// Runs classify on `in.csv` with standard output and standard error sent to files, as a
/// shell's `> out.txt 2> log.txt` does; returns the exit code and the two files' text.
fn redirected(dir: &Path, flags: &[&str], both_to_one: bool) -> (Option<i32>, String, String) {
    let out = std::fs::File::create(dir.join("out.txt")).unwrap();
    let log = match both_to_one {
        true => out.try_clone().unwrap(),
        false => std::fs::File::create(dir.join("log.txt")).unwrap(),
    };
    let status = failup_command()
        .args([&["classify", "in.csv", "-q"][..], flags].concat())
        .current_dir(dir)
        .env(HASHED.0, HASHED.1)
        .stdout(out)
        .stderr(log)
        .status()
        .unwrap();
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    (status.code(), read("out.txt"), read("log.txt"))
}

#[test]
#[cfg(target_os = "linux")]
fn outputs_that_lead_to_the_redirected_standard_streams_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_input(d, "in.csv", many_stories(4).as_bytes());
    // The report opened through /dev/stdout would write over the rows from the file's start.
    let cases: [(&[&str], &str); 4] = [
        (
            &["--report", "/dev/stdout"],
            "-o (standard output) and --report (/dev/stdout)",
        ),
        (
            &["-o", "/dev/stdout", "--report", "/dev/fd/1"],
            "lead to the same file",
        ),
        (
            &["-o", "out.txt", "--report", "-"],
            "-o (out.txt) and --report (standard output)",
        ),
        (
            &["-o", "rows.csv", "--report", "/dev/stderr"],
            "is the file standard error goes to",
        ),
    ];
    for (flags, says) in cases {
        let (code, _, log) = redirected(d, flags, false);
        assert_eq!(code, Some(2), "{flags:?}: {log}");
        assert!(log.contains(says), "{flags:?}: {log}");
    }
    assert!(!d.join("rows.csv").exists());
    // Rows and warnings sent to one file on purpose (`> out.txt 2>&1`) still run.
    let (code, rows, _) = redirected(d, &[], true);
    assert_eq!(code, Some(0), "{rows}");
    assert_eq!(
        rows.lines().filter(|l| l.contains(",ok,")).count(),
        4,
        "{rows}"
    );
}

#[test]
fn train_and_calibrate_never_write_a_profile_over_their_labelled_input() {
    let dir = tempfile::tempdir().unwrap();
    let labelled =
        "text,label\nThey gave the lead to the new hire.,passed_over\nI was laid off.,other\n";
    write_input(dir.path(), "l.csv", labelled.as_bytes());
    for args in [
        &["train", "l.csv", "-o", "l.csv"][..],
        &["calibrate", "l.csv", "-o", "./l.csv"][..],
    ] {
        let out = failup_env(dir.path(), args, None, &[HASHED]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&out).contains("is the input file"),
            "{}",
            stderr(&out)
        );
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("l.csv")).unwrap(),
        labelled
    );
}

/// The files a command reads beside its input (examples, a profile, a taxonomy) are never
/// written over by its rows, report or profile; a profile recalibrated in place is allowed.
#[test]
fn no_output_is_written_over_the_examples_profile_or_taxonomy_it_reads() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let labelled =
        "text,label\nThey gave the lead to the new hire.,passed_over\nI was laid off.,other\n";
    write_input(d, "l.csv", labelled.as_bytes());
    write_input(d, "ex.csv", labelled.as_bytes());
    write_input(d, "in.csv", many_stories(3).as_bytes());
    let taxonomy = std::fs::read(repo_path("data/taxonomy.toml")).unwrap();
    write_input(d, "t.toml", &taxonomy);
    let out = failup_env(
        d,
        &["train", "l.csv", "-o", "p.json", "-q"],
        None,
        &[HASHED],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let profile = std::fs::read(d.join("p.json")).unwrap();
    let cases: [(&[&str], &str); 7] = [
        (
            &["classify", "in.csv", "--examples", "ex.csv", "-o", "ex.csv"],
            "-o",
        ),
        (
            &[
                "classify",
                "in.csv",
                "--profile",
                "p.json",
                "--report",
                "./p.json",
            ],
            "--report",
        ),
        (
            &[
                "classify",
                "in.csv",
                "--taxonomy",
                "t.toml",
                "--summary-out",
                "t.toml",
            ],
            "--summary-out",
        ),
        (
            &["train", "l.csv", "--taxonomy", "t.toml", "-o", "t.toml"],
            "-o",
        ),
        (
            &["calibrate", "l.csv", "--taxonomy", "t.toml", "-o", "t.toml"],
            "-o",
        ),
        (
            &["embed", "in.csv", "--taxonomy", "t.toml", "-o", "t.toml"],
            "-o",
        ),
        (
            &["report", "in.csv", "--taxonomy", "t.toml", "-o", "t.toml"],
            "-o",
        ),
    ];
    for (args, flag) in cases {
        let out = failup_env(d, args, None, &[HASHED]);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let says = format!("({flag}) is the file --");
        assert!(stderr(&out).contains(&says), "{args:?}: {}", stderr(&out));
    }
    // Standard output appended to the profile it reads.
    let append = std::fs::OpenOptions::new()
        .append(true)
        .open(d.join("p.json"))
        .unwrap();
    let out = failup_command()
        .args(["classify", "in.csv", "--profile", "p.json"])
        .env(HASHED.0, HASHED.1)
        .current_dir(d)
        .stdout(append)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("standard output (-o) is the file --profile reads"));
    // A taxonomy named by its variable is told by it.
    let args = ["classify", "in.csv", "-o", "t.toml"];
    let out = failup_env(d, &args, None, &[HASHED, ("FAILUP_TAXONOMY", "t.toml")]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let says = "t.toml (-o) is the file the environment variable FAILUP_TAXONOMY reads";
    assert!(stderr(&out).contains(says), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(d.join("ex.csv")).unwrap(),
        labelled.as_bytes()
    );
    assert_eq!(std::fs::read(d.join("t.toml")).unwrap(), taxonomy);
    assert_eq!(std::fs::read(d.join("p.json")).unwrap(), profile);
    let calibration = repo_path("data/calibration.csv");
    let calibration = calibration.to_str().unwrap();
    for profile in [&[][..], &["--profile", "c.json"]] {
        let args = [
            &["calibrate", calibration, "-o", "c.json", "-q"][..],
            profile,
        ]
        .concat();
        let out = failup_env(d, &args, None, &[HASHED]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
}

#[test]
fn ids_in_warnings_cannot_drive_the_terminal_or_fake_a_log_line() {
    let dir = tempfile::tempdir().unwrap();
    write_input(
        dir.path(),
        "in.csv",
        b"id,text\n\"\x1b[31mred\nwarning: fake\",\nb,They gave the lead to the new hire.\n",
    );
    let out = failup_env(
        dir.path(),
        &["classify", "in.csv", "-o", "out.csv"],
        None,
        &[HASHED],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(!said.contains('\x1b'), "{said:?}");
    assert!(
        said.contains("(id \\u{1b}[31mred\\u{a}warning: fake): empty text"),
        "{said}"
    );
}

#[test]
fn an_output_that_is_the_file_standard_input_reads_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let stories = "id,text\n1,They gave the lead to the new hire.\n";
    write_input(dir.path(), "in.csv", stories.as_bytes());
    for args in [
        &["classify", "-", "-o", "in.csv"][..],
        &["classify", "-", "-o", "out.csv", "--report", "./in.csv"][..],
    ] {
        let stdin = std::fs::File::open(dir.path().join("in.csv")).unwrap();
        let out = failup_command()
            .args(args)
            .env(HASHED.0, HASHED.1)
            .current_dir(dir.path())
            .stdin(stdin)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&out).contains("is the file standard input reads from"),
            "{}",
            stderr(&out)
        );
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("in.csv")).unwrap(),
        stories
    );
    // Standard output appended to the input (`>> in.csv`): the run would read its own rows
    // back without end.
    for (args, stdin) in [
        (&["classify", "in.csv"][..], false),
        (&["classify", "-"][..], true),
        (
            &["classify", "in.csv", "-o", "o.csv", "--report", "-"][..],
            false,
        ),
    ] {
        let append = || {
            std::fs::OpenOptions::new()
                .append(true)
                .open(dir.path().join("in.csv"))
                .unwrap()
        };
        let mut cmd = failup_command();
        cmd.args(args)
            .env(HASHED.0, HASHED.1)
            .current_dir(dir.path());
        if stdin {
            cmd.stdin(std::fs::File::open(dir.path().join("in.csv")).unwrap());
        }
        let out = cmd.stdout(append()).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&out).contains("standard output is the"),
            "{}",
            stderr(&out)
        );
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("in.csv")).unwrap(),
        stories
    );
    // Not a loop: standard input and output one socket (inetd, socat), and a file named `-`
    // beside the input while the rows go to standard output.
    #[cfg(unix)]
    {
        use std::os::unix::net::UnixStream;
        let (mine, theirs) = UnixStream::pair().unwrap();
        let child = failup_command()
            .args(["classify", "-", "-q"])
            .env(HASHED.0, HASHED.1)
            .stdin(std::os::fd::OwnedFd::from(theirs.try_clone().unwrap()))
            .stdout(std::os::fd::OwnedFd::from(theirs))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        (&mine).write_all(stories.as_bytes()).unwrap();
        mine.shutdown(std::net::Shutdown::Write).unwrap();
        let mut rows = String::new();
        (&mine).read_to_string(&mut rows).unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(rows.starts_with("id,category,"), "{rows}");
    }
    std::fs::write(dir.path().join("-"), stories).unwrap();
    let out = failup_env(dir.path(), &["classify", "./-", "-q"], None, &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn an_output_that_is_a_folder_is_refused_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "in.csv", many_stories(4).as_bytes());
    std::fs::create_dir(dir.path().join("out")).unwrap();
    let out = failup_env(
        dir.path(),
        &["classify", "in.csv", "-o", "out"],
        None,
        &[HASHED],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("out is a folder"), "{}", stderr(&out));
    // Told before the model is looked for: a missing model does not hide it.
    let out = failup_env(
        dir.path(),
        &[
            "classify",
            "in.csv",
            "-o",
            "out",
            "--model",
            "no-such-model",
        ],
        None,
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("out is a folder"), "{}", stderr(&out));
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// An output name the file system takes, but whose partial file and checkpoint beside it
/// (`.NAME.partial.json`, 14 bytes more) it does not, is refused before the work with that
/// reason: it failed with a bare "File name too long" for a name the user had not given.
#[test]
fn an_output_name_too_long_for_its_partial_file_is_refused_with_why() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), "id,text\n1,We lost the pitch.\n").unwrap();
    let name = format!("{}.csv", "a".repeat(246));
    let out = failup_env(
        dir.path(),
        &["classify", "in.csv", "-o", &name, "-q"],
        None,
        &[HASHED],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(".partial.json (264 bytes), a name longer than the file system"),
        "{}",
        stderr(&out)
    );
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "{left:?}");
}

/// A home folder that is not there (`/nonexistent`, a system account's) is not made for the
/// cache: the run goes on without one. It was made, with `.cache/failup` inside.
#[test]
fn a_missing_home_folder_is_not_made_for_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("nonexistent");
    let out = failup_command()
        .current_dir(dir.path())
        .args([
            "advise",
            "They gave the project I had planned to the new hire.",
        ])
        .env(HASHED.0, HASHED.1)
        .env_remove("FAILUP_CACHE_DIR")
        .env_remove("XDG_CACHE_HOME")
        .env("HOME", &home)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!home.exists(), "{} was made", home.display());
}

/// A partial output replaced while the run writes (a clean-up, or another run that found its
/// name free) is not renamed into place: the run had put the stranger's bytes at the output
/// with exit 0. It stops at its next checkpoint, and leaves the file at that name alone.
#[test]
fn a_partial_output_replaced_during_the_run_is_not_put_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = failup_command()
        .current_dir(dir.path())
        .args(["classify", "-", "-o", "out.csv", "--chunk-size", "2", "-q"])
        .env(HASHED.0, HASHED.1)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let row = |i: usize| format!("{i},They gave the project I had planned to the new hire.\n");
    stdin.write_all(b"id,text\n").unwrap();
    for i in 0..5 {
        stdin.write_all(row(i).as_bytes()).unwrap();
    }
    stdin.flush().unwrap();
    // The first chunk is checkpointed once the partial file holds its rows.
    let partial = dir.path().join(".out.csv.partial");
    let checkpoint = dir.path().join(".out.csv.partial.json");
    let start = Instant::now();
    while !checkpoint.exists() {
        assert!(start.elapsed() < Duration::from_secs(60), "no checkpoint");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::write(dir.path().join("stranger"), "not rows\n").unwrap();
    std::fs::rename(dir.path().join("stranger"), &partial).unwrap();
    for i in 5..9 {
        let _ = stdin.write_all(row(i).as_bytes());
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("this run's partial output was removed or replaced while it wrote there"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("out.csv").exists());
    assert_eq!(std::fs::read_to_string(&partial).unwrap(), "not rows\n");
}

/// A device or pipe given to -o is written in place. Renaming a finished file over it, as a
/// regular output is, would replace /dev/null itself with a file (as root), and every later
/// program reading /dev/null would read what was written there.
#[cfg(unix)]
#[test]
fn an_output_that_is_a_device_or_pipe_is_written_in_place() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "in.csv", many_stories(4).as_bytes());
    let to = |output: &str, extra: &[&str]| {
        let mut args = vec!["classify", "in.csv", "-o", output];
        args.extend_from_slice(extra);
        failup_env(dir.path(), &args, None, &[HASHED])
    };

    let out = to("/dev/null", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let null = std::fs::metadata("/dev/null").unwrap().file_type();
    assert!(null.is_char_device(), "/dev/null is no longer a device");
    assert!(!Path::new("/dev/.null.partial").exists());

    let out = to("/dev/null", &["--resume"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not the device or pipe /dev/null"),
        "{}",
        stderr(&out)
    );

    // /dev/stdout leading to a regular file (the shell's `> rows.csv`) is a stream too.
    let file = std::fs::File::create(dir.path().join("rows.csv")).unwrap();
    let out = failup_command()
        .current_dir(dir.path())
        .args(["classify", "in.csv", "-o", "/dev/stdout"])
        .env(HASHED.0, HASHED.1)
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout_link = std::fs::symlink_metadata("/dev/stdout")
        .unwrap()
        .file_type();
    assert!(!stdout_link.is_file(), "/dev/stdout was replaced by a file");
    let written = std::fs::read_to_string(dir.path().join("rows.csv")).unwrap();
    assert_eq!(parse_csv(&written).1.len(), 4);
    // Standard output appending to a file (`>> log`) is written where it stands: opened again
    // by its name, the file was written from its start, over its first lines.
    std::fs::write(dir.path().join("log.txt"), "OLD LINE 1\nOLD LINE 2\n").unwrap();
    let log = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("log.txt"))
        .unwrap();
    let out = failup_command()
        .current_dir(dir.path())
        .args(["classify", "in.csv", "-o", "/dev/stdout", "-q"])
        .env(HASHED.0, HASHED.1)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let logged = std::fs::read_to_string(dir.path().join("log.txt")).unwrap();
    assert_eq!(logged, format!("OLD LINE 1\nOLD LINE 2\n{written}"));

    let fifo = dir.path().join("rows.fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let out = to("rows.fifo", &[]);
    // Checked before joining: a run that failed never opened the pipe, and the reader waits.
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (header, rows) = parse_csv(&reader.join().unwrap());
    assert_eq!(header[0], "id");
    assert_eq!(rows.len(), 4);
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
}

#[test]
fn no_two_output_columns_share_a_name() {
    let dir = tempfile::tempdir().unwrap();
    write_input(
        dir.path(),
        "in.csv",
        b"id,text,category,team\n1,We lost the pitch.,old,a\n",
    );
    let out = failup_env(
        dir.path(),
        &["classify", "in.csv", "--keep-all"],
        None,
        &[HASHED],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let header = stdout(&out).lines().next().unwrap().to_string();
    assert!(
        header.ends_with(",advice,text,input_category,team"),
        "{header}"
    );
    let twice = failup_env(
        dir.path(),
        &["classify", "in.csv", "--keep-columns", "team,team"],
        None,
        &[HASHED],
    );
    assert_eq!(twice.status.code(), Some(2));
    assert!(
        stderr(&twice).contains("names 'team' twice"),
        "{}",
        stderr(&twice)
    );
    // Two empty names are a slip in the list, not one name given twice.
    let empty = failup_env(
        dir.path(),
        &["classify", "in.csv", "--keep-columns", "team,,,text"],
        None,
        &[HASHED],
    );
    assert_eq!(empty.status.code(), Some(2));
    assert!(
        stderr(&empty).contains("an empty column name was given"),
        "{}",
        stderr(&empty)
    );
}

#[test]
fn long_texts_are_never_cut_silently() {
    let dir = tempfile::tempdir().unwrap();
    let long = "my manager gave the project to someone else ".repeat(6_000); // ~48,000 words
                                                                             // Over the 1 MiB cap, in words (one 1 MiB word would be a single unknown token).
    let huge = "they laid me off ".repeat(70_000);
    let csv = format!("id,text\n1,{long}\n2,{huge}\n3,short one\n");
    let input = write_input(dir.path(), "long.csv", csv.as_bytes());
    let run = classify_env(dir.path(), &input, &[], &[HASHED]);
    assert_eq!(run.out.status.code(), Some(0), "{}", stderr(&run.out));
    assert_eq!(run.ids(), ids(1..=3));
    let tokens: usize = run.value("1", "tokens").parse().unwrap();
    assert!(tokens > 40_000, "{tokens}");
    // Read whole in overlapping windows (--long-text chunk, the default), not cut.
    let chunks: usize = run.value("1", "chunks").parse().unwrap();
    assert!(chunks > 150, "{chunks}");
    assert_eq!(run.value("1", "truncated"), "false");
    assert_eq!(run.value("1", "status"), "ok");
    assert_eq!(run.value("2", "status"), "too_long");
    assert_ne!(run.value("2", "category"), "");
    assert_eq!(run.value("3", "truncated"), "false");
    assert!(
        stderr(&run.out).contains("long.csv:3: row 2 (id 2)"),
        "{}",
        stderr(&run.out)
    );
}

#[test]
fn duplicate_ids_warn_once_and_rows_stay_separate() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(
        dir.path(),
        "dups.csv",
        b"id,text\n7,Laid off.\n7,Lost the pitch.\n8,Fine.\n7,Fired.\n",
    );
    let run = classify(dir.path(), &input, &[]);
    assert_eq!(run.out.status.code(), Some(0));
    assert_eq!(run.ids(), ["7", "7", "8", "7"]);
    let err = stderr(&run.out);
    assert_eq!(err.matches("repeat an id").count(), 1, "{err}");
    assert!(err.contains("2 rows repeat an id"), "{err}");
}

#[test]
fn empty_ids_are_warned_apart_from_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(
        dir.path(),
        "blank_ids.csv",
        b"id,text\n1,Laid off.\n,Lost the pitch.\n3,Fine.\n\"\",Fired.\n",
    );
    let run = classify_env(dir.path(), &input, &[], &[HASHED]);
    assert_eq!(run.out.status.code(), Some(0));
    assert_eq!(run.ids(), ["1", "", "3", ""]);
    let err = stderr(&run.out);
    assert!(
        err.contains("2 rows have an empty id cell (the first at line 3)"),
        "{err}"
    );
    assert!(!err.contains("repeat"), "{err}");
}

#[test]
fn header_problems_fail_with_exit_2_and_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8], &str); 4] = [
        ("empty.csv", b"", "no header row"),
        ("dupcols.csv", b"id,text,text\n1,a,b\n", "column 'text'"),
        (
            "noheader.csv",
            b"1,I was laid off\n2,Lost the bid\n",
            "add a header row",
        ),
        ("typo.csv", b"id,txet\n1,a\n", "did you mean 'txet'"),
    ];
    for (name, bytes, expect) in cases {
        write_input(dir.path(), name, bytes);
        let out = failup_in(dir.path(), &["classify", name, "-o", "out.csv"], None);
        assert_eq!(out.status.code(), Some(2), "{name}");
        let err = stderr(&out);
        assert!(err.contains(&format!("{name}:1")), "{name}: {err}");
        assert!(err.contains(expect), "{name}: {err}");
        assert_no_output(dir.path(), "out.csv");
    }
}

#[test]
fn formula_cells_are_kept_as_is_unless_excel_safe() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(
        dir.path(),
        "formula.csv",
        b"id,team,text\n=1+1,@ops,Laid off.\n2,-x,+We lost the bid.\n",
    );
    let plain = classify(dir.path(), &input, &["-q"]);
    assert_eq!(plain.out.status.code(), Some(0));
    assert_eq!(plain.ids(), ["=1+1", "2"]);
    assert_eq!(plain.value("2", "team"), "-x");
    let safe = classify(dir.path(), &input, &["-q", "--excel-safe"]);
    assert_eq!(safe.out.status.code(), Some(0));
    assert_eq!(safe.ids(), ["'=1+1", "2"]);
    assert_eq!(safe.value("'=1+1", "team"), "'@ops");
    assert_eq!(safe.value("2", "text"), "'+We lost the bid.");
    // Numbers failup writes itself are never prefixed, even negative margins.
    let margins = safe.col("margin");
    assert!(safe.rows.iter().all(|r| !r[margins].starts_with('\'')));

    // A header cell from the input and a custom taxonomy's advice come from files too.
    let input = write_input(dir.path(), "head.csv", b"id,=cmd,text\n1,x,Laid off.\n");
    let builtin = std::fs::read_to_string(repo_path("data/taxonomy.toml")).unwrap();
    let taxonomy = builtin.replace("headline = \"", "headline = \"=HYPERLINK(1) ");
    assert_ne!(taxonomy, builtin);
    std::fs::write(dir.path().join("t.toml"), taxonomy).unwrap();
    let args = ["-q", "--excel-safe", "--taxonomy", "t.toml"];
    let safe = classify_env(dir.path(), &input, &args, &[HASHED]);
    assert_eq!(safe.out.status.code(), Some(0), "{}", stderr(&safe.out));
    assert!(
        safe.header.contains(&"'=cmd".to_string()),
        "{:?}",
        safe.header
    );
    let advice = safe.col("advice");
    assert!(
        safe.rows[0][advice].starts_with("'=HYPERLINK(1) "),
        "{:?}",
        safe.rows
    );
}

fn many_stories(n: usize) -> String {
    let kinds = [
        "My boss gave the project to a new hire.",
        "I quit law to bake bread and I hate it.",
        "We lost the tender I led.",
        "I was laid off in the spring.",
    ];
    let mut csv = String::from("id,text\n");
    for i in 1..=n {
        csv += &format!("{i},\"Story {i}: {}\"\n", kinds[i % 4]);
    }
    csv
}

/// Starts a classify run to `out.csv` in `dir` and stops it with `signal` (`INT` for Ctrl-C,
/// `KILL` for a crash) once at least `rows` rows are checkpointed. The run waits there for the
/// signal (FAILUP_TEST_PAUSE_AFTER_ROWS), so where it stops never depends on timing.
fn interrupt_midway(dir: &Path, rows: u64, signal: &str) -> Output {
    interrupt_midway_with(dir, rows, signal, &[], &[])
}

/// [`interrupt_midway`] with `extra` flags and `env` for the run.
fn interrupt_midway_with(
    dir: &Path,
    rows: u64,
    signal: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Output {
    let mut args = vec!["classify", "in.csv", "-o", "out.csv"];
    args.extend(extra);
    interrupt_at(dir, rows, signal, &args, env)
}

/// Starts failup with `args` (which must write `out.csv`, or `out.jsonl`, in `dir`) at a chunk size of 8 and
/// batches of 4, and stops it with `signal` once at least `rows` rows are checkpointed.
fn interrupt_at(
    dir: &Path,
    rows: u64,
    signal: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Output {
    let model = repo_path("models/all-MiniLM-L6-v2");
    let child = failup_command()
        .args(args)
        .args(["-q", "--chunk-size", "8"])
        .args(["--batch-size", "4", "--model", model.to_str().unwrap()])
        .env("FAILUP_TEST_PAUSE_AFTER_ROWS", rows.to_string())
        .envs(env.iter().copied())
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_checkpointed(dir, rows);
    Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    // Chunks are 8 rows, and the run waited at the first checkpoint at or past `rows`.
    assert_eq!(
        checkpointed(dir),
        rows.div_ceil(8) * 8,
        "where the run stopped"
    );
    out
}

/// Rows that the checkpoint in `dir` (`out.csv`'s, or `out.jsonl`'s for embed) says are
/// complete (0 without one).
fn checkpointed(dir: &Path) -> u64 {
    let checkpoint = [".out.csv.partial.json", ".out.jsonl.partial.json"]
        .iter()
        .map(|name| dir.join(name))
        .find(|path| path.exists());
    checkpoint
        .and_then(|path| std::fs::read_to_string(path).ok())
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["rows"].as_u64())
        .unwrap_or(0)
}

fn wait_until_checkpointed(dir: &Path, rows: u64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while checkpointed(dir) < rows {
        assert!(
            Instant::now() < deadline,
            "the run never reached {rows} rows"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Standard input is known to a resume by its records' digest alone, so the header row is a
/// setting of its own: the same records under another header are read with other ids.
#[test]
fn resume_refuses_the_same_records_under_another_header() {
    let dir = tempfile::tempdir().unwrap();
    let input = many_stories(64);
    let args = ["classify", "-", "-q", "--chunk-size", "8", "-o", "out.csv"];
    let mut first = failup_command()
        .args(args)
        .env(HASHED.0, HASHED.1)
        .env("FAILUP_TEST_PAUSE_AFTER_ROWS", "16")
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    first
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    wait_until_checkpointed(dir.path(), 16);
    Command::new("kill")
        .args(["-INT", &first.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(first.wait_with_output().unwrap().status.code(), Some(130));
    let renamed = input.replacen("id,text", "key,text", 1);
    let resume = [&args[..], &["--resume"]].concat();
    let out = failup_env(dir.path(), &resume, Some(&renamed), &[HASHED]);
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains(r#"input header was ["id","text"], now ["key","text"]"#),
        "{said}"
    );
    // Under the header it began with, it resumes.
    let out = failup_env(dir.path(), &resume, Some(&input), &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// A second signal stops a run at once, even one waiting on a stalled pipe, and says where
/// the rows of its last checkpoint are kept (it exited without a word); they resume into
/// the rows of an uninterrupted run.
#[test]
fn a_run_stopped_at_once_says_what_it_kept() {
    let dir = tempfile::tempdir().unwrap();
    let input = many_stories(64);
    let args = ["classify", "-", "-q", "--chunk-size", "8", "-o", "out.csv"];
    // Half the rows, then the pipe stalls, open: the run waits for the next row.
    let (run, mut pipe) = spawn_reading_a_pipe(dir.path(), &args);
    let half = input
        .lines()
        .take(33)
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    pipe.write_all(half.as_bytes()).unwrap();
    // All 32 rows written are checkpointed: the run waits on the pipe, not in a chunk, when
    // the signals come.
    wait_until_checkpointed(dir.path(), 32);
    let stopped = signal_twice(run);
    drop(pipe);
    let said = stderr(&stopped);
    assert_eq!(stopped.status.code(), Some(130), "{said}");
    assert!(
        said.contains("stopped at once: the rows complete at the last checkpoint")
            && said.contains(".out.csv.partial; run the same command with --resume"),
        "{said}"
    );
    let resume = [&args[..], &["--resume"]].concat();
    let out = failup_env(dir.path(), &resume, Some(&input), &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let whole = ["classify", "-", "-q", "-o", "whole.csv"];
    let out = failup_env(dir.path(), &whole, Some(&input), &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let read = |name: &str| std::fs::read(dir.path().join(name)).unwrap();
    assert_eq!(read("out.csv"), read("whole.csv"));
}

/// failup run with `args` in `dir` (with the test embedder), reading a pipe this test holds
/// open.
fn spawn_reading_a_pipe(
    dir: &Path,
    args: &[&str],
) -> (std::process::Child, std::process::ChildStdin) {
    let mut run = failup_command()
        .args(args)
        .env(HASHED.0, HASHED.1)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pipe = run.stdin.take().unwrap();
    (run, pipe)
}

/// Sends `run` SIGINT twice, a moment apart, and waits for it.
fn signal_twice(run: std::process::Child) -> std::process::Output {
    for _ in 0..2 {
        Command::new("kill")
            .args(["-INT", &run.id().to_string()])
            .status()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }
    run.wait_with_output().unwrap()
}

/// Stopped at once before its first checkpoint, a run has kept nothing, says so, and leaves
/// no partial file (it pointed to a resume that could only fail).
#[test]
fn a_run_stopped_at_once_before_its_first_checkpoint_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["classify", "-", "-q", "--chunk-size", "8", "-o", "out.csv"];
    let (run, mut pipe) = spawn_reading_a_pipe(dir.path(), &args);
    let few = many_stories(4);
    pipe.write_all(few.as_bytes()).unwrap();
    let partial = dir.path().join(".out.csv.partial");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !partial.exists() {
        assert!(Instant::now() < deadline, "the run never opened its output");
        std::thread::sleep(Duration::from_millis(20));
    }
    let stopped = signal_twice(run);
    drop(pipe);
    let said = stderr(&stopped);
    assert_eq!(stopped.status.code(), Some(130), "{said}");
    assert!(
        said.contains("before the first chunk was complete: nothing was kept"),
        "{said}"
    );
    assert!(!partial.exists() && !dir.path().join("out.csv").exists());
}

/// Writes `text` into a new FIFO at `dir/name` from a thread, as `<(cat file)` feeds a pipe.
#[cfg(unix)]
fn fifo_fed(dir: &Path, name: &str, text: String) -> std::thread::JoinHandle<()> {
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    assert!(Command::new("mkfifo")
        .arg(&path)
        .status()
        .unwrap()
        .success());
    std::thread::spawn(move || {
        // The reader may stop early (an interrupted run): a broken pipe is expected then.
        if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&path) {
            let _ = f.write_all(text.as_bytes());
        }
    })
}

/// A pipe given by path (`<(cat in.csv)`, a FIFO) is resumed as standard input is, by its
/// rows' contents: its modification time is new at every run, so the run it asked to be
/// resumed was always refused. Standard input may take over from it.
#[cfg(unix)]
#[test]
fn a_run_reading_a_pipe_by_path_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let input = many_stories(64);
    std::fs::write(dir.path().join("in.csv"), &input).unwrap();
    let whole = failup_env(
        dir.path(),
        &["classify", "in.csv", "-q", "-o", "whole.csv"],
        None,
        &[HASHED],
    );
    assert_eq!(whole.status.code(), Some(0), "{}", stderr(&whole));
    let read = |name: &str| std::fs::read(dir.path().join(name)).unwrap();
    let interrupted_on_the_pipe = || {
        let feeder = fifo_fed(dir.path(), "pipe", input.clone());
        let args = ["classify", "pipe", "-o", "out.csv"];
        let out = interrupt_at(dir.path(), 16, "INT", &args, &[HASHED]);
        assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
        feeder.join().unwrap();
    };

    interrupted_on_the_pipe();
    let feeder = fifo_fed(dir.path(), "pipe", input.clone());
    let resume = ["classify", "pipe", "-q", "-o", "out.csv", "--resume"];
    let out = failup_env(dir.path(), &resume, None, &[HASHED]);
    feeder.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(read("out.csv"), read("whole.csv"));

    // Standard input takes over from the pipe.
    std::fs::remove_file(dir.path().join("out.csv")).unwrap();
    interrupted_on_the_pipe();
    let from_stdin = ["classify", "-", "-q", "-o", "out.csv", "--resume"];
    let out = failup_env(dir.path(), &from_stdin, Some(&input), &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(read("out.csv"), read("whole.csv"));
}

/// A failed run keeps the rows complete at its last checkpoint where the same command could
/// resume them: a resumed run keeps the partial it continued (a failure further on once threw
/// that earlier work away), and a stream resumes by its rows, so the same rows piped again
/// with the bad one fixed finish as an uninterrupted run. A fresh run from a file that fails
/// on its input still leaves nothing behind: the file must change, which starts over.
#[cfg(unix)]
#[test]
fn a_failure_keeps_the_partial_where_it_can_be_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let input = many_stories(64);
    // Row 40's quoted text closes early: `--strict` refuses it.
    let broken = input.replacen("40,\"Story 40:", "40,\"Story 40\" then:", 1);
    assert_ne!(broken, input);
    std::fs::write(dir.path().join("in.csv"), &input).unwrap();
    std::fs::write(dir.path().join("broken.csv"), &broken).unwrap();
    let run = |args: &[&str], stdin: Option<&str>| failup_env(dir.path(), args, stdin, &[HASHED]);
    let whole = run(&["classify", "in.csv", "-q", "-o", "whole.csv"], None);
    assert_eq!(whole.status.code(), Some(0), "{}", stderr(&whole));

    let fresh = ["classify", "broken.csv", "-q", "-o", "out.csv", "--strict"];
    let failed = run(&[&fresh[..], PACE].concat(), None);
    assert_eq!(failed.status.code(), Some(2), "{}", stderr(&failed));
    assert!(stderr(&failed).contains("row 40"), "{}", stderr(&failed));
    assert!(!dir.path().join(".out.csv.partial").exists());
    assert!(!dir.path().join(".out.csv.partial.json").exists());

    let feeder = fifo_fed(dir.path(), "pipe", input.clone());
    let args = ["classify", "pipe", "-o", "out.csv", "--strict"];
    let out = interrupt_at(dir.path(), 16, "INT", &args, &[HASHED]);
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    feeder.join().unwrap();

    let resume = [
        "classify", "-", "-q", "-o", "out.csv", "--strict", "--resume",
    ];
    let failed = run(&[&resume[..], PACE].concat(), Some(&broken));
    let err = stderr(&failed);
    assert_eq!(failed.status.code(), Some(2), "{err}");
    assert!(
        err.contains("row 40") && err.contains("are kept in"),
        "{err}"
    );
    assert_eq!(
        checkpointed(dir.path()),
        32,
        "the resumed run's own checkpoints stay too"
    );

    let finished = run(&resume, Some(&input));
    assert_eq!(finished.status.code(), Some(0), "{}", stderr(&finished));
    let read = |name: &str| std::fs::read(dir.path().join(name)).unwrap();
    assert_eq!(read("out.csv"), read("whole.csv"));

    // A fresh run reading a stream keeps its checkpoints too, for the fixed rows to resume.
    std::fs::remove_file(dir.path().join("out.csv")).unwrap();
    let fresh = ["classify", "-", "-q", "-o", "out.csv", "--strict"];
    let failed = run(&[&fresh[..], PACE].concat(), Some(&broken));
    assert_eq!(failed.status.code(), Some(2), "{}", stderr(&failed));
    assert!(
        stderr(&failed).contains("--resume continues after them"),
        "{}",
        stderr(&failed)
    );
    assert_eq!(checkpointed(dir.path()), 32);
    let finished = run(&resume, Some(&input));
    assert_eq!(finished.status.code(), Some(0), "{}", stderr(&finished));
    assert_eq!(read("out.csv"), read("whole.csv"));

    // A resumed run from a file keeps the earlier run's rows, and says that the fixed file
    // starts over rather than promising a resume it would refuse.
    std::fs::remove_file(dir.path().join("out.csv")).unwrap();
    let args = ["classify", "broken.csv", "-o", "out.csv", "--strict"];
    let out = interrupt_at(dir.path(), 16, "INT", &args, &[HASHED]);
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let resume = [
        "classify",
        "broken.csv",
        "-q",
        "-o",
        "out.csv",
        "--strict",
        "--resume",
    ];
    let failed = run(&[&resume[..], PACE].concat(), None);
    let err = stderr(&failed);
    assert_eq!(failed.status.code(), Some(2), "{err}");
    assert!(
        err.contains("from the run this one resumed")
            && err.contains("run without --resume then to start over")
            && !err.contains("--resume continues"),
        "{err}"
    );
    assert_eq!(checkpointed(dir.path()), 32);
}

/// How the model folder reads a text (its window, from `sentence_bert_config.json`, and its
/// pooling) shapes every row, as its weights do: a resume after either changed is refused. It
/// was accepted, and the output matched neither run.
#[cfg(unix)]
#[test]
fn a_resume_after_the_model_folder_reads_otherwise_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "in.csv", many_stories(24).as_bytes());
    let model = dir.path().join("m");
    link_bundled_model_except(&model, "sentence_bert_config.json");
    let config = model.join("sentence_bert_config.json");
    std::fs::write(
        &config,
        r#"{"max_seq_length": 256, "do_lower_case": false}"#,
    )
    .unwrap();
    let args = [
        "classify",
        "in.csv",
        "-q",
        "-o",
        "out.csv",
        "--chunk-size",
        "8",
        "--model",
        "m",
    ];
    let child = failup_command()
        .args(args)
        .env("FAILUP_TEST_PAUSE_AFTER_ROWS", "8")
        .envs([HASHED])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until_checkpointed(dir.path(), 8);
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let stopped = child.wait_with_output().unwrap();
    assert_eq!(stopped.status.code(), Some(130));
    std::fs::write(&config, r#"{"max_seq_length": 64, "do_lower_case": false}"#).unwrap();
    let resume = [&args[..], &["--resume"]].concat();
    let out = failup_env(dir.path(), &resume, None, &[HASHED]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("a window of 256 tokens, case kept, mean pooling, now a window of 64"),
        "{}",
        stderr(&out)
    );
}

/// An output named as failup names the files it keeps beside another output is refused: a
/// shard's record written later replaced a part named `p.csv.shard`, and a run that owned
/// `.x.csv.partial` committed another run's rows as its own.
#[test]
fn outputs_named_like_another_runs_companions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "in.csv", many_stories(8).as_bytes());
    let cases = [
        ("p.csv.shard", "a shard's record"),
        (".x.csv.partial", "an interrupted run's partial output"),
        (".x.csv.partial.json", "an interrupted run's checkpoint"),
    ];
    for (name, said) in cases {
        for flag in ["-o", "--report", "--summary-out"] {
            let mut args = vec!["classify", "in.csv", "-q", flag, name];
            if flag != "-o" {
                args.extend(["-o", "rows.csv"]);
            }
            let out = failup_env(dir.path(), &args, None, &[HASHED]);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
            let expected = format!("{flag} {name}: that is how failup names {said}");
            assert!(
                stderr(&out).contains(&expected),
                "{args:?}: {}",
                stderr(&out)
            );
            assert!(!dir.path().join(name).exists());
        }
    }
}

/// A file run again keeps the mode its owner gave it: a rerun made a `chmod 600` output of
/// stories readable by all. A shard's record takes its part's mode (it was always private, so
/// another account that could read the parts could not merge them).
#[cfg(unix)]
#[test]
fn a_rerun_keeps_the_outputs_mode_and_a_record_takes_its_parts() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "in.csv", many_stories(8).as_bytes());
    let mode = |name: &str| {
        let m = std::fs::metadata(dir.path().join(name)).unwrap();
        m.permissions().mode() & 0o777
    };
    let chmod = |name: &str, mode: u32| {
        let perms = std::fs::Permissions::from_mode(mode);
        std::fs::set_permissions(dir.path().join(name), perms).unwrap();
    };
    let runs: [&[&str]; 4] = [
        &["classify", "in.csv", "-q", "-o", "rows.csv"],
        &["classify", "in.csv", "-q", "-o", "setuid.csv"],
        &[
            "classify", "in.csv", "-q", "-o", "part.csv", "--shard", "0/2",
        ],
        &["report", "rows.csv", "-o", "r.md"],
    ];
    for args in runs {
        let out = failup_env(dir.path(), args, None, &[HASHED]);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    }
    let modes = [
        ("rows.csv", 0o600),
        ("setuid.csv", 0o4755),
        ("part.csv", 0o640),
        ("r.md", 0o400),
    ];
    for (name, wanted) in modes {
        chmod(name, wanted);
    }
    for args in runs {
        let out = failup_env(dir.path(), args, None, &[HASHED]);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(mode("rows.csv"), 0o600);
    assert_eq!(mode("part.csv"), 0o640);
    assert_eq!(mode("part.csv.shard"), 0o640);
    // Read and write bits alone: no set-id or execute bit on rows.
    let m = std::fs::metadata(dir.path().join("setuid.csv")).unwrap();
    assert_eq!(m.permissions().mode() & 0o7777, 0o644);
    // Read-only for its owner, it is replaced writable by them, so a rerun could resume.
    assert_eq!(mode("r.md"), 0o600);
}

/// A checkpoint that is there but cannot be read (another account's, or a folder) is not told
/// as "nothing to resume": following that advice threw the kept rows away.
#[test]
fn an_unreadable_checkpoint_is_not_told_as_nothing_to_resume() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "in.csv", many_stories(8).as_bytes());
    std::fs::create_dir(dir.path().join(".out.csv.partial.json")).unwrap();
    let args = ["classify", "in.csv", "-q", "-o", "out.csv", "--resume"];
    let out = failup_env(dir.path(), &args, None, &[HASHED]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(
        said.contains("cannot read the checkpoint ./.out.csv.partial.json")
            && !said.contains("nothing to resume"),
        "{said}"
    );
}

/// A command without a handler of its own stops on SIGINT in a script's background job too,
/// where the shell ignores it: `train … & kill -INT $!` ran on and replaced the profile.
/// `advise -` waiting on standard input stands in for any such command.
#[cfg(target_os = "linux")]
#[test]
fn sigint_stops_every_command_even_where_the_shell_ignored_it() {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let mut background = failup_command();
    // SAFETY: between fork and exec the closure calls only signal(2), which is
    // async-signal-safe, and touches no memory of the parent.
    unsafe {
        background.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_IGN);
            Ok(())
        });
    }
    let mut child = background
        .args(["advise", "-"])
        .env(HASHED.0, HASHED.1)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Waits until failup itself runs (past exec and its start) and blocks on its input.
    let deadline = Instant::now() + Duration::from_secs(60);
    let stat = format!("/proc/{}/stat", child.id());
    while !std::fs::read_to_string(&stat).is_ok_and(|s| s.contains("(failup) S ")) {
        assert!(
            Instant::now() < deadline,
            "advise never waited on its input"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "SIGINT did not stop advise");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.signal(), Some(libc::SIGINT), "{status:?}");
    drop(child.stdin.take());
}

/// A link planted at the partial file's name is not written through: the rows went into the
/// file it led to, and the rename then put the link in place of the output, with exit 0.
#[cfg(unix)]
#[test]
fn a_link_at_the_partial_files_name_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "in.csv", many_stories(8).as_bytes());
    std::fs::write(dir.path().join("precious.txt"), "precious\n").unwrap();
    std::os::unix::fs::symlink("precious.txt", dir.path().join(".out.csv.partial")).unwrap();
    let args = ["classify", "in.csv", "-q", "-o", "out.csv"];
    let out = failup_env(dir.path(), &args, None, &[HASHED]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(".out.csv.partial is a link, not a partial file failup made"),
        "{}",
        stderr(&out)
    );
    let kept = std::fs::read_to_string(dir.path().join("precious.txt")).unwrap();
    assert_eq!(kept, "precious\n");
    assert!(!dir.path().join("out.csv").exists());
}

/// `-o` naming a link writes the file it leads to, as the shell's `>` does, and leaves the
/// link: interrupted and resumed through the link, or sharded through links and merged
/// through them, the rows equal a plain run's. (The rename used to put the rows in place of
/// the link, leaving what it led to stale.)
#[cfg(unix)]
#[test]
fn an_output_named_by_a_link_is_written_through_it() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name);
    write_input(dir.path(), "in.csv", many_stories(40).as_bytes());
    std::fs::create_dir(at("links")).unwrap();
    for name in ["out.csv", "p0.csv", "p1.csv"] {
        // Dangling at first: the file they lead to does not exist yet.
        std::os::unix::fs::symlink(format!("../{name}"), at(&format!("links/{name}"))).unwrap();
    }
    let run = |args: &[&str]| {
        let out = failup_env(dir.path(), args, None, &[HASHED]);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    };
    run(&["classify", "in.csv", "-q", "-o", "plain.csv"]);
    let plain = std::fs::read(at("plain.csv")).unwrap();

    let args = ["classify", "in.csv", "-o", "links/out.csv"];
    let stopped = interrupt_at(dir.path(), 16, "INT", &args, &[HASHED]);
    assert_eq!(stopped.status.code(), Some(130), "{}", stderr(&stopped));
    run(&[
        "classify",
        "in.csv",
        "-q",
        "-o",
        "links/out.csv",
        "--resume",
    ]);
    for name in ["0", "1"] {
        let part = format!("links/p{name}.csv");
        run(&[
            "classify",
            "in.csv",
            "-q",
            "-o",
            &part,
            "--shard",
            &format!("{name}/2"),
        ]);
    }
    run(&[
        "merge",
        "--rows",
        "links/p0.csv",
        "links/p1.csv",
        "-o",
        "merged.csv",
    ]);

    assert_eq!(std::fs::read(at("out.csv")).unwrap(), plain);
    assert_eq!(std::fs::read(at("merged.csv")).unwrap(), plain);
    for name in ["out.csv", "p0.csv", "p1.csv"] {
        let link = at(&format!("links/{name}"));
        let meta = std::fs::symlink_metadata(&link).unwrap();
        assert!(meta.file_type().is_symlink(), "{name} is no longer a link");
    }
    // What the run keeps on the way sits beside the file written, not beside the link.
    assert!(at("p0.csv.shard").is_file() && at("p1.csv.shard").is_file());
    let beside_links: Vec<_> = std::fs::read_dir(at("links")).unwrap().collect();
    assert_eq!(beside_links.len(), 3, "{beside_links:?}");
    assert!(!at(".out.csv.partial").exists() && !at(".out.csv.partial.json").exists());
}

/// A standard output open for reading only (`1<file`) takes no byte; the standard library
/// dropped the failed writes, and every command ended with 0 and wrote nothing.
#[cfg(unix)]
#[test]
fn a_standard_output_open_for_reading_only_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "in.csv", many_stories(4).as_bytes());
    let rows = failup_env(
        dir.path(),
        &["classify", "in.csv", "-q", "-o", "rows.csv"],
        None,
        &[HASHED],
    );
    assert_eq!(rows.status.code(), Some(0), "{}", stderr(&rows));
    let runs: [&[&str]; 3] = [
        &["classify", "in.csv", "-q"],
        &["report", "rows.csv"],
        &["advise", "They gave the project to the new hire."],
    ];
    std::fs::write(dir.path().join("ro.txt"), "").unwrap();
    for args in runs {
        let read_only = std::fs::File::open(dir.path().join("ro.txt")).unwrap();
        let out = failup_command()
            .args(args)
            .env(HASHED.0, HASHED.1)
            .current_dir(dir.path())
            .stdout(read_only)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("standard output is open for reading only"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

/// Whatever command writes over an interrupted run's partial output says so: a rerun without
/// --resume, and a report given the rows' name by a slip of `-o` (which replaced it silently).
#[test]
fn replacing_an_interrupted_runs_partial_output_is_told() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "in.csv", many_stories(64).as_bytes());
    let note = "this run replaces the partial output an interrupted run had kept for --resume";
    let rows = failup_env(
        dir.path(),
        &["classify", "in.csv", "-q", "-o", "rows.csv"],
        None,
        &[HASHED],
    );
    assert_eq!(rows.status.code(), Some(0), "{}", stderr(&rows));
    for again in [
        &["classify", "in.csv", "-q", "-o", "out.csv"][..],
        &["report", "rows.csv", "-o", "out.csv", "--format", "text"],
    ] {
        let args = ["classify", "in.csv", "-o", "out.csv"];
        let stopped = interrupt_at(dir.path(), 16, "INT", &args, &[HASHED]);
        assert_eq!(stopped.status.code(), Some(130), "{}", stderr(&stopped));
        let out = failup_env(dir.path(), again, None, &[HASHED]);
        assert_eq!(out.status.code(), Some(0), "{again:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(note), "{again:?}: {}", stderr(&out));
        // Told once, and not when there is nothing to replace.
        assert_eq!(stderr(&out).matches(note).count(), 1);
        let out = failup_env(dir.path(), again, None, &[HASHED]);
        assert!(!stderr(&out).contains(note), "{again:?}: {}", stderr(&out));
    }
}

/// A resumed run tells a row that repeats the id of a row the interrupted run classified
/// (it knew only the ids it read itself), with or without a report, which replays those rows.
#[test]
fn a_resume_tells_an_id_that_repeats_one_before_the_resume_point() {
    let dir = tempfile::tempdir().unwrap();
    // Row 40 takes row 3's id.
    let input = many_stories(64).replacen("\n40,", "\n3,", 1);
    write_input(dir.path(), "in.csv", input.as_bytes());
    for report in [&[][..], &["--report", "r.md"]] {
        let args = [&["classify", "in.csv", "-o", "out.csv"][..], report].concat();
        let stopped = interrupt_at(dir.path(), 16, "INT", &args, &[HASHED]);
        assert_eq!(stopped.status.code(), Some(130), "{}", stderr(&stopped));
        assert!(
            !stderr(&stopped).contains("repeats an id"),
            "{}",
            stderr(&stopped)
        );
        let resume = [
            &["classify", "in.csv", "-q", "-o", "out.csv", "--resume"][..],
            report,
        ]
        .concat();
        let out = failup_env(dir.path(), &resume, None, &[HASHED]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(
            stderr(&out).contains(
                "1 row repeats an id seen earlier (the first at line 41, id '3'), of the rows \
                 since the resume"
            ),
            "{report:?}: {}",
            stderr(&out)
        );
        std::fs::remove_file(dir.path().join("out.csv")).unwrap();
    }
    // embed, whose output is read by id alone, tells it too.
    let embed = ["embed", "in.csv", "-o", "out.jsonl"];
    let stopped = interrupt_at(dir.path(), 16, "INT", &embed, &[HASHED]);
    assert_eq!(stopped.status.code(), Some(130), "{}", stderr(&stopped));
    let out = failup_env(
        dir.path(),
        &[&embed[..], &["--resume", "-q"]].concat(),
        None,
        &[HASHED],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("1 row repeats an id seen earlier (the first at line 41, id '3')"),
        "{}",
        stderr(&out)
    );
}

/// A classify run's partial output resumed by embed (both may write `out.jsonl`) is refused
/// for that one reason, not with a list of every setting the two commands record apart.
#[test]
fn a_partial_output_of_another_command_is_refused_for_that() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "in.csv", many_stories(40).as_bytes());
    let classify = ["classify", "in.csv", "-o", "out.jsonl"];
    let stopped = interrupt_at(dir.path(), 16, "INT", &classify, &[HASHED]);
    assert_eq!(stopped.status.code(), Some(130), "{}", stderr(&stopped));
    let embed = ["embed", "in.csv", "-o", "out.jsonl", "--resume", "-q"];
    let out = failup_env(dir.path(), &embed, None, &[HASHED]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("failup classify wrote it, and this is failup embed")
            && !stderr(&out).contains(" was "),
        "{}",
        stderr(&out)
    );
}

/// embed tells repeated and empty ids as classify does: its vectors are joined back by id.
#[test]
fn embed_tells_repeated_and_empty_ids() {
    let dir = tempfile::tempdir().unwrap();
    write_input(
        dir.path(),
        "in.csv",
        b"id,text\n1,one\n1,one again\n,blank id\n,blank id too\n2,two\n",
    );
    let out = failup_env(dir.path(), &["embed", "in.csv", "-q"], None, &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(
        said.contains("1 row repeats an id seen earlier (the first at line 3, id '1')"),
        "{said}"
    );
    assert!(
        said.contains("2 rows have an empty id cell (the first at line 4)"),
        "{said}"
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 5);
}

/// A resumed run tells the blank lines of the part it reads, not again those of the rows the
/// interrupted run read and told, for classify and embed alike.
#[test]
fn a_resume_tells_only_the_blank_lines_it_reads() {
    let dir = tempfile::tempdir().unwrap();
    // A blank line after row 2 (line 4), one after row 60 (line 63).
    let mut lines: Vec<String> = many_stories(64).lines().map(str::to_string).collect();
    lines.insert(61, String::new());
    lines.insert(3, String::new());
    write_input(dir.path(), "in.csv", (lines.join("\n") + "\n").as_bytes());
    for output in ["out.csv", "out.jsonl"] {
        let command = if output == "out.csv" {
            "classify"
        } else {
            "embed"
        };
        let args = [command, "in.csv", "-o", output];
        let stopped = interrupt_at(dir.path(), 16, "INT", &args, &[HASHED]);
        assert_eq!(stopped.status.code(), Some(130), "{}", stderr(&stopped));
        assert!(
            stderr(&stopped).contains("in.csv:4: blank line"),
            "{}",
            stderr(&stopped)
        );
        let resume = [command, "in.csv", "-q", "-o", output, "--resume"];
        let out = failup_env(dir.path(), &resume, None, &[HASHED]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let said = stderr(&out);
        assert!(!said.contains("in.csv:4:"), "{command}: {said}");
        assert!(said.contains("in.csv:63: blank line"), "{command}: {said}");
    }
}

/// A partial output deleted by hand, its checkpoint left, is named in the refusal (it gave the
/// bare "No such file"); a setting with no value is shown as "(none)", not as nothing.
#[test]
fn resume_names_a_missing_partial_file_and_an_empty_setting() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "in.csv", many_stories(24).as_bytes());
    let stopped = interrupt_midway_with(dir.path(), 8, "INT", &[], &[HASHED]);
    assert_eq!(stopped.status.code(), Some(130), "{}", stderr(&stopped));
    let resumed = resume_midway(dir.path(), &["--keep-columns", "id"], &[HASHED]);
    let said = stderr(&resumed);
    assert_eq!(resumed.status.code(), Some(2), "{said}");
    assert!(said.contains("kept columns was (none), now id"), "{said}");
    std::fs::remove_file(dir.path().join(".out.csv.partial")).unwrap();
    let resumed = resume_midway(dir.path(), &[], &[HASHED]);
    let said = stderr(&resumed);
    assert_eq!(resumed.status.code(), Some(2), "{said}");
    assert!(
        said.contains("the partial output ./.out.csv.partial is gone")
            && said.contains("run without --resume to start over"),
        "{said}"
    );
}

/// A run killed between putting its output in place and removing its checkpoint leaves a
/// checkpoint with no partial file: `--resume` says the output is complete and tidies up,
/// where it failed on the missing partial file.
#[test]
fn resume_after_a_crash_at_the_very_end_says_the_output_is_complete() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "in.csv", many_stories(24).as_bytes());
    let stopped = interrupt_midway_with(dir.path(), 8, "KILL", &[], &[HASHED]);
    assert_eq!(stopped.status.code(), None, "{}", stderr(&stopped));
    // What the final rename does, without the checkpoint's removal after it.
    std::fs::rename(
        dir.path().join(".out.csv.partial"),
        dir.path().join("out.csv"),
    )
    .unwrap();
    let resumed = resume_midway(dir.path(), &[], &[HASHED]);
    let said = stderr(&resumed);
    assert_eq!(resumed.status.code(), Some(2), "{said}");
    assert!(
        said.contains("nothing to resume: out.csv is complete"),
        "{said}"
    );
    assert!(!dir.path().join(".out.csv.partial.json").exists());
    assert!(dir.path().join("out.csv").is_file());
}

/// Flags that spell out what the defaults chose are the same run: a resume with them goes on,
/// where it was refused ("--id-column was (default), now id").
#[test]
fn resume_accepts_flags_that_spell_out_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "in.csv", many_stories(24).as_bytes());
    let whole = failup_env(
        dir.path(),
        &[
            "classify",
            "in.csv",
            "-q",
            "--chunk-size",
            "8",
            "--batch-size",
            "4",
        ],
        None,
        &[HASHED],
    );
    let stopped = interrupt_midway_with(dir.path(), 8, "INT", &[], &[HASHED]);
    assert_eq!(stopped.status.code(), Some(130), "{}", stderr(&stopped));
    let spelled = [
        "--id-column",
        "id",
        "--delimiter",
        ",",
        "--text-column",
        "text",
    ];
    let resumed = resume_midway(dir.path(), &spelled, &[HASHED]);
    assert_eq!(resumed.status.code(), Some(0), "{}", stderr(&resumed));
    assert_eq!(
        std::fs::read(dir.path().join("out.csv")).unwrap(),
        whole.stdout
    );
}

/// A second run writing the same output while the first is at work is refused, with or
/// without --resume, and leaves the first one's partial file whole: it used to truncate it
/// under the first run, which then renamed the mix into place.
#[test]
fn a_second_run_writing_the_same_output_is_refused_while_the_first_works() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "in.csv", many_stories(64).as_bytes());
    let args = ["classify", "in.csv", "-q", "--chunk-size", "8"];
    let whole = failup_env(dir.path(), &args, None, &[HASHED]);
    assert_eq!(whole.status.code(), Some(0), "{}", stderr(&whole));
    let to_file = [&args[..], &["-o", "out.csv"]].concat();
    let first = failup_command()
        .args(&to_file)
        .env(HASHED.0, HASHED.1)
        .env("FAILUP_TEST_PAUSE_AFTER_ROWS", "16")
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_checkpointed(dir.path(), 16);
    let partial = std::fs::read(dir.path().join(".out.csv.partial")).unwrap();
    for extra in [&[][..], &["--resume"]] {
        let second = failup_env(dir.path(), &[&to_file[..], extra].concat(), None, &[HASHED]);
        let said = stderr(&second);
        assert_eq!(second.status.code(), Some(2), "{extra:?}: {said}");
        assert!(
            said.contains("another failup run is writing out.csv"),
            "{said}"
        );
    }
    assert_eq!(
        std::fs::read(dir.path().join(".out.csv.partial")).unwrap(),
        partial
    );
    Command::new("kill")
        .args(["-INT", &first.id().to_string()])
        .status()
        .unwrap();
    let first = first.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(130), "{}", stderr(&first));
    let resumed = failup_env(
        dir.path(),
        &[&to_file[..], &["--resume"]].concat(),
        None,
        &[HASHED],
    );
    assert_eq!(resumed.status.code(), Some(0), "{}", stderr(&resumed));
    assert_eq!(
        std::fs::read(dir.path().join("out.csv")).unwrap(),
        whole.stdout
    );
}

/// Runs [`interrupt_midway`]'s command again with `--resume`, `extra` flags and `env`.
fn resume_midway(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    resume_paced(dir, PACE, extra, env)
}

/// The chunk and batch sizes of [`interrupt_midway`]'s command.
const PACE: &[&str] = &["--chunk-size", "8", "--batch-size", "4"];

/// [`resume_midway`] at another pace: chunk and batch sizes change no row.
fn resume_paced(dir: &Path, pace: &[&str], extra: &[&str], env: &[(&str, &str)]) -> Output {
    let model = repo_path("models/all-MiniLM-L6-v2");
    let mut args = vec!["classify", "in.csv", "-o", "out.csv"];
    args.extend(pace);
    args.extend(["--model", model.to_str().unwrap(), "--resume"]);
    args.extend(extra);
    failup_env(dir, &args, None, env)
}

fn resume_gives_identical_output(signal: &str, expected_code: Option<i32>, pace: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "in.csv", many_stories(64).as_bytes());
    let model = repo_path("models/all-MiniLM-L6-v2");
    let model = model.to_str().unwrap();
    let whole = failup_in(
        dir.path(),
        &[
            "classify",
            "in.csv",
            "-q",
            "--chunk-size",
            "8",
            "--batch-size",
            "4",
            "--model",
            model,
        ],
        None,
    );
    assert_eq!(whole.status.code(), Some(0));

    let stopped = interrupt_midway(dir.path(), 16, signal);
    assert_eq!(stopped.status.code(), expected_code, "{}", stderr(&stopped));
    assert!(
        !dir.path().join("out.csv").exists(),
        "no file under the final name yet"
    );
    assert!(dir.path().join(".out.csv.partial").exists());
    if expected_code == Some(130) {
        let err = stderr(&stopped);
        assert!(err.contains("--resume"), "{err}");
        assert!(err.contains("stopping after the current batch"), "{err}");
    }

    let resumed = resume_paced(dir.path(), pace, &[], &[]);
    let err = stderr(&resumed);
    assert_eq!(resumed.status.code(), Some(0), "{err}");
    let kept: u64 = err
        .split("resuming after row ")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    // The closing summary counts this run's rows, and says so.
    let says = format!("{} rows in", 64 - kept);
    assert!(err.contains(&says), "{err}");
    let says = format!("(this run's rows alone: the {kept} an interrupted run wrote come first in the output, 64 rows in all;");
    assert!(err.contains(&says), "{err}");
    let finished = std::fs::read(dir.path().join("out.csv")).unwrap();
    assert_eq!(
        finished, whole.stdout,
        "resumed output equals an uninterrupted run"
    );
    assert_eq!(parse_csv(&String::from_utf8(finished).unwrap()).1.len(), 64);
    assert!(!dir.path().join(".out.csv.partial").exists());
    assert!(!dir.path().join(".out.csv.partial.json").exists());
}

#[test]
fn ctrl_c_keeps_complete_rows_and_resume_finishes_identically() {
    resume_gives_identical_output("INT", Some(130), PACE);
}

/// A scheduler's stop (Slurm at a time limit, Kubernetes at a pod's end) is SIGTERM: it stops
/// as Ctrl-C does, saying so at once (it ended the run without a word).
#[test]
fn sigterm_and_sighup_stop_as_ctrl_c_does_and_resume_identically() {
    resume_gives_identical_output("TERM", Some(130), PACE);
    resume_gives_identical_output("HUP", Some(130), PACE);
}

/// Under `nohup`, SIGHUP stays ignored (a logout must not stop the run). SIGINT is caught even
/// where the parent ignored it, as a shell does for a job a script starts in the background:
/// scripts stop such runs with `kill -INT`. Read from the kernel's signal masks of the running
/// process, which is waiting at a checkpoint.
#[cfg(target_os = "linux")]
#[test]
fn sighup_ignored_by_nohup_stays_ignored_and_sigint_is_always_caught() {
    use std::os::unix::process::CommandExt;
    let (hup, int, term) = (libc::SIGHUP, libc::SIGINT, libc::SIGTERM);
    let mut nohup = Command::new("nohup");
    default_stop_signals(&mut nohup);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("FAILUP_")) {
        nohup.env_remove(k);
    }
    nohup.arg(env!("CARGO_BIN_EXE_failup"));
    // As a shell starts a script's background job: SIGINT ignored.
    let mut background = failup_command();
    // SAFETY: between fork and exec the closure calls only signal(2), which is
    // async-signal-safe, and touches no memory of the parent.
    unsafe {
        background.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_IGN);
            Ok(())
        });
    }
    for (command, ignored, stop) in [(nohup, Some(hup), "-TERM"), (background, None, "-INT")] {
        let dir = tempfile::tempdir().unwrap();
        write_input(dir.path(), "in.csv", many_stories(64).as_bytes());
        let child = { command }
            .args([
                "classify",
                "in.csv",
                "-o",
                "out.csv",
                "-q",
                "--chunk-size",
                "8",
            ])
            .env("FAILUP_TEST_PAUSE_AFTER_ROWS", "16")
            .env(HASHED.0, HASHED.1)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_until_checkpointed(dir.path(), 16);
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
        let mask = |name: &str| {
            let line = status.lines().find(|l| l.starts_with(name)).unwrap();
            u64::from_str_radix(line[name.len()..].trim(), 16).unwrap()
        };
        let bit = |signal: i32| 1u64 << (signal - 1);
        let (ignoring, caught) = (mask("SigIgn:"), mask("SigCgt:"));
        if let Some(ignored) = ignored {
            assert!(
                ignoring & bit(ignored) != 0,
                "signal {ignored} ignored: {status}"
            );
        }
        for other in [hup, int, term].into_iter().filter(|&s| Some(s) != ignored) {
            assert!(caught & bit(other) != 0, "signal {other} caught: {status}");
        }
        Command::new("kill")
            .args([stop, &child.id().to_string()])
            .status()
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    }
}

#[test]
fn a_killed_run_resumes_identically_at_another_chunk_and_batch_size() {
    let pace = ["--chunk-size", "5", "--batch-size", "3"];
    resume_gives_identical_output("KILL", None, &pace);
}

/// With nothing to resume, --resume says why: the output is there from a run that finished, or
/// the run that began it was killed before its first checkpoint (an empty partial file is left);
/// it had said "there is no partial output" of a partial file in plain sight.
#[test]
fn nothing_to_resume_says_whether_the_output_is_done_or_never_checkpointed() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "in.csv", many_stories(4).as_bytes());
    let classify = ["classify", "in.csv", "-o", "out.csv", "-q"];
    let out = failup_env(dir.path(), &classify, None, &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let resume = [&classify[..], &["--resume"]].concat();
    let out = failup_env(dir.path(), &resume, None, &[HASHED]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out)
            .contains("nothing to resume: out.csv is there and no run writing it was interrupted"),
        "{}",
        stderr(&out)
    );
    // What a run killed before its first checkpoint leaves.
    std::fs::write(dir.path().join(".out.csv.partial"), "").unwrap();
    let out = failup_env(dir.path(), &resume, None, &[HASHED]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("stopped before its first checkpoint")
            && stderr(&out).contains("so it kept no rows; run without --resume"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn resume_refuses_a_different_input_or_nothing_to_resume() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "in.csv", many_stories(4).as_bytes());
    let out = failup_in(
        dir.path(),
        &["classify", "in.csv", "-o", "out.csv", "--resume"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("nothing to resume"),
        "{}",
        stderr(&out)
    );

    write_input(dir.path(), "in.csv", many_stories(64).as_bytes());
    let stopped = interrupt_midway(dir.path(), 8, "KILL");
    assert_eq!(stopped.status.code(), None);
    write_input(dir.path(), "in.csv", many_stories(70).as_bytes());
    let out = resume_midway(dir.path(), &[], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("cannot resume"), "{err}");
    assert!(
        err.contains("input was "),
        "the message names the input: {err}"
    );
    // The modification time reads as a date and time in UTC, to the nanosecond (it was a
    // bare count of nanoseconds since 1970).
    let modified = err.split("modified ").nth(1).unwrap_or_default();
    let stamp = modified.split(')').next().unwrap_or_default();
    assert!(
        stamp.len() == "2026-12-03T22:10:35.486207805Z".len()
            && stamp.starts_with("20")
            && stamp.as_bytes()[10] == b'T'
            && stamp.ends_with('Z'),
        "{err}"
    );
    // Only the input differs: no talk of other settings to rerun with.
    assert!(
        err.contains("the input is not the file the run was reading")
            && !err.contains("other settings"),
        "{err}"
    );
}

/// A partial output rewritten after the interruption (a byte-order mark or CRLF added by an
/// editor or sync tool, or one value changed) is refused: the resume cut it at the saved byte
/// count and glued a kept row to the next new one, or kept the edit, with exit 0.
#[test]
fn resume_refuses_a_partial_output_changed_since_the_interruption() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "in.csv", many_stories(64).as_bytes());
    let partial = dir.path().join(".out.csv.partial");
    type Edit = fn(&[u8]) -> Vec<u8>;
    let edits: [(&str, Edit); 2] = [
        ("a byte-order mark", |b| {
            [b"\xEF\xBB\xBF".as_slice(), b].concat()
        }),
        ("one letter", |b| {
            let mut b = b.to_vec();
            let at = b.iter().rposition(|&c| c == b'a').unwrap();
            b[at] = b'A';
            b
        }),
    ];
    for (edit, change) in edits {
        let stopped = interrupt_midway(dir.path(), 16, "KILL");
        assert_eq!(stopped.status.code(), None);
        let kept = std::fs::read(&partial).unwrap();
        std::fs::write(&partial, change(&kept)).unwrap();
        let out = resume_midway(dir.path(), &[], &[]);
        assert_eq!(out.status.code(), Some(2), "{edit}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("changed after the run was interrupted"),
            "{edit}: {}",
            stderr(&out)
        );
        assert!(!dir.path().join("out.csv").exists(), "{edit}");
    }
}

/// Reports made at one fixed time, so two runs' reports can be compared byte for byte.
const EPOCH: (&str, &str) = ("SOURCE_DATE_EPOCH", "0");

#[test]
fn a_resumed_run_writes_the_report_and_summary_of_an_uninterrupted_one() {
    resumed_report_is_the_whole_runs(&[], |text| text.to_string());
}

/// The evidence a report quotes is the story's sentence, not the `'` that `--excel-safe`
/// puts before one opening with `+` in the output, which a resumed run reads its kept rows
/// from.
#[test]
fn a_resumed_excel_safe_report_quotes_evidence_without_the_guard() {
    let dir =
        resumed_report_is_the_whole_runs(&["--excel-safe", "--explain"], |t| format!("+ {t}"));
    let rows = std::fs::read_to_string(dir.path().join("whole.csv")).unwrap();
    assert!(
        rows.contains(",'+ Story 3:"),
        "the output carries the guard"
    );
    let report = std::fs::read_to_string(dir.path().join("whole.json")).unwrap();
    assert!(
        report.contains("\"+ Story ") && !report.contains("'+ Story"),
        "{report}"
    );
}

/// A story holding both `=x` and `'=x`, which the guard writes alike as `'=x`: the resumed
/// report quotes the sentence the run chose, not always the one the cell reads as.
#[test]
fn a_resumed_excel_safe_report_tells_a_guarded_sentence_from_its_twin() {
    let dir =
        resumed_report_is_the_whole_runs(&["--excel-safe", "--explain"], |t| format!("={t} '={t}"));
    let report = std::fs::read_to_string(dir.path().join("whole.json")).unwrap();
    assert!(
        report.contains("\"=Story ") && report.contains("\"'=Story "),
        "both kinds of evidence are quoted: {report}"
    );
}

/// Classifies 64 stories (each text made by `story` from a plain one) whole, and again
/// stopped midway and resumed, both with `extra` flags, a report and a summary; checks that
/// the two runs wrote the same bytes. Returns the folder, holding `whole.csv`, `whole.md`,
/// `whole.json`.
fn resumed_report_is_the_whole_runs(
    extra: &[&str],
    story: fn(&str) -> String,
) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    // A team column, kept out of the output, so the resumed run must take the groups (and
    // the texts) of the rows it keeps from the input, not from the partial output.
    let mut csv = String::from("id,team,text\n");
    for line in many_stories(64).lines().skip(1) {
        let (id, text) = line.split_once(',').unwrap();
        let text = format!("\"{}\"", story(text.trim_matches('"')));
        csv += &format!("{id},team{},{text}\n", id.parse::<u32>().unwrap() % 3);
    }
    write_input(dir.path(), "in.csv", csv.as_bytes());
    let summaries = |tag: &str| {
        let mut flags = vec![
            "--report".to_string(),
            format!("{tag}.md"),
            "--summary-out".into(),
            format!("{tag}.json"),
            "--group-by".into(),
            "team".into(),
        ];
        flags.extend(extra.iter().map(|f| f.to_string()));
        flags
    };
    let whole_flags = summaries("whole");
    let mut args = vec!["classify", "in.csv", "-o", "whole.csv", "-q"];
    args.extend(PACE);
    args.extend(whole_flags.iter().map(String::as_str));
    let whole = failup_env(dir.path(), &args, None, &[HASHED, EPOCH]);
    assert_eq!(whole.status.code(), Some(0), "{}", stderr(&whole));

    let flags = summaries("part");
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let stopped = interrupt_midway_with(dir.path(), 24, "INT", &flags, &[HASHED, EPOCH]);
    assert_eq!(stopped.status.code(), Some(130), "{}", stderr(&stopped));
    let said = stderr(&stopped);
    assert!(
        said.contains("run the same command with --resume"),
        "{said}"
    );
    assert!(
        !dir.path().join("part.md").exists(),
        "no report of part of the input"
    );
    assert!(!dir.path().join("part.json").exists());

    let resumed = resume_paced(dir.path(), &["--chunk-size", "5"], &flags, &[HASHED, EPOCH]);
    assert_eq!(resumed.status.code(), Some(0), "{}", stderr(&resumed));
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
    assert!(read("out.csv") == read("whole.csv"), "the rows");
    // The report's time comes from SOURCE_DATE_EPOCH, so the whole report must match.
    assert!(read("part.md") == read("whole.md"), "the report");
    assert!(read("part.json") == read("whole.json"), "the summary");
    let summary: serde_json::Value = serde_json::from_str(&read("part.json")).unwrap();
    assert!(
        summary.to_string().contains("team2"),
        "the summary is grouped by team: {summary}"
    );
    dir
}

/// A partial output cut short behind its checkpoint's back cannot feed a resumed report.
#[test]
fn a_resumed_report_refuses_a_partial_output_short_of_rows() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "in.csv", many_stories(64).as_bytes());
    let stopped = interrupt_midway_with(dir.path(), 16, "KILL", &[], &[HASHED]);
    assert_eq!(stopped.status.code(), None);
    let partial = dir.path().join(".out.csv.partial");
    let text = std::fs::read_to_string(&partial).unwrap();
    // Same length, one row fewer: the last row's line break becomes part of its advice.
    let cut = text.trim_end().rfind('\n').unwrap();
    let mut bytes = text.into_bytes();
    bytes[cut] = b' ';
    std::fs::write(&partial, bytes).unwrap();
    let out = resume_midway(dir.path(), &["--report", "r.md"], &[HASHED]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // The checkpoint's hash of the kept bytes no longer matches.
    assert!(
        stderr(&out).contains("changed after the run was interrupted"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("r.md").exists());
}

/// An input edited in place, its size and time kept, is refused: one letter of a row already
/// classified, or only its quotes (a stray quote fixed leaves the same cells, but the row was
/// flagged malformed for it, so the kept rows would match no run of the fixed file).
#[test]
fn resume_refuses_an_input_edited_in_place_with_its_size_and_time_kept() {
    let stories = many_stories(64);
    let row = "2,\"Story 2: We lost the tender I led.\"";
    let stray = stories.replacen(row, "2,\"Story 2:\" We lost the tender I led.", 1);
    assert_ne!(stray, stories);
    let edits = [
        (
            stories.clone(),
            stories.replacen("Story 2: We", "Story 2: we", 1),
        ),
        (stray.clone(), stories.clone()),
    ];
    for (first, edited) in edits {
        let dir = tempfile::tempdir().unwrap();
        write_input(dir.path(), "in.csv", first.as_bytes());
        let input = dir.path().join("in.csv");
        let modified = std::fs::metadata(&input).unwrap().modified().unwrap();
        let stopped = interrupt_midway_with(dir.path(), 8, "KILL", &[], &[HASHED]);
        assert_eq!(stopped.status.code(), None);
        // In place: same size, and the time put back.
        assert_ne!(edited, first);
        assert_eq!(edited.len(), first.len());
        std::fs::write(&input, &edited).unwrap();
        let file = std::fs::File::options().write(true).open(&input).unwrap();
        file.set_modified(modified).unwrap();
        drop(file);
        let out = resume_midway(dir.path(), &[], &[HASHED]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(
                "first 8 rows of in.csv are not the ones the partial output was made from"
            ),
            "{err}"
        );
    }
}

/// Interrupts a run made with `first` flags, then resumes it with `then` flags: the resume
/// must be refused (exit 2) with a message that names `setting`. Returns the message.
fn resume_is_refused(first: &[&str], then: &[&str], setting: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "in.csv", many_stories(64).as_bytes());
    let labelled = fixture("labelled.csv");
    for (name, args) in [
        (
            "a.json",
            vec!["calibrate", labelled.to_str().unwrap(), "-o", "a.json"],
        ),
        (
            "b.json",
            vec!["train", labelled.to_str().unwrap(), "-o", "b.json"],
        ),
    ] {
        let out = failup_env(dir.path(), &args, None, &[HASHED]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
    }
    let stopped = interrupt_midway_with(dir.path(), 8, "KILL", first, &[HASHED]);
    assert_eq!(stopped.status.code(), None, "{}", stderr(&stopped));
    let out = resume_midway(dir.path(), then, &[HASHED]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot resume"), "{err}");
    assert!(err.contains(setting), "the message names {setting}: {err}");
    assert!(
        dir.path().join(".out.csv.partial").exists(),
        "a refused resume keeps the partial output"
    );
    err
}

#[test]
fn resume_with_another_precision_is_refused() {
    // The bug this guards against: fp32 rows, then the default's int8 rows, in one file.
    let err = resume_is_refused(
        &["--precision", "fp32"],
        &[],
        "--precision was fp32, now int8",
    );
    assert!(
        !err.contains("--profile"),
        "only what differs is named: {err}"
    );
}

#[test]
fn resume_with_another_profile_is_refused() {
    resume_is_refused(
        &["--profile", "a.json"],
        &["--profile", "b.json"],
        "--profile (SHA-256) was ",
    );
    resume_is_refused(&["--profile", "a.json"], &[], "now (none)");
}

#[test]
#[ignore = "needs a CPU with AMX (Intel Xeon 4th generation or later)"]
fn amx_cpu_resume_with_another_engine_is_refused() {
    // Only a CPU with AMX offers two engines for fp32 in a default build.
    if let Some(why) = failup::embed::amx_unavailable() {
        panic!("this test needs a CPU with AMX: {why}");
    }
    resume_is_refused(
        &["--backend", "rten", "--precision", "fp32"],
        &["--backend", "amx", "--precision", "fp32"],
        // A CPU with AMX has AVX-512 too, which rten runs on.
        "--backend (as resolved) was rten-avx512, now amx",
    );
}

#[test]
fn a_closed_pipe_ends_the_run_quietly_with_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "in.csv", many_stories(400).as_bytes());
    let model = repo_path("models/all-MiniLM-L6-v2");
    let mut child = failup_command()
        .args(["classify", "in.csv", "--chunk-size", "64", "--model"])
        .arg(&model)
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // Dropping the read end closes the pipe, like `| head` exiting.
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("error"), "{}", stderr(&out));
}

/// A run whose output stops taking bytes part way (here a file size limit, as a full disk
/// would) keeps its checkpointed rows, says so, and `--resume` finishes them into the file an
/// uninterrupted run writes; likewise when the report is what cannot be written. The failing
/// flush used to skip the note.
#[cfg(target_os = "linux")]
#[test]
fn a_run_that_cannot_write_says_what_it_kept_and_resume_finishes_it() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "in.csv", many_stories(3000).as_bytes());
    let classify = ["classify", "in.csv", "-q", "--chunk-size", "100"];
    let limited = |extra: &[&str]| {
        // Writes past 64 KiB fail: failup ignores the SIGXFSZ that would kill it silently,
        // so the write fails with EFBIG, as on a full disk.
        let script = r#"ulimit -f 64; exec "$0" "$@""#;
        let mut cmd = Command::new("bash");
        cmd.args(["-c", script, env!("CARGO_BIN_EXE_failup")]);
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("FAILUP_")) {
            cmd.env_remove(k);
        }
        cmd.args(classify).args(extra).current_dir(dir.path());
        cmd.env(HASHED.0, HASHED.1)
            .env("FAILUP_CACHE_DIR", test_cache_dir());
        cmd.output().unwrap()
    };
    // One fixed time, so that two reports of the same rows are the same bytes.
    let env = [HASHED, ("SOURCE_DATE_EPOCH", "1700000000")];
    let run = |extra: &[&str]| {
        let out = failup_env(dir.path(), &[&classify[..], extra].concat(), None, &env);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    };
    run(&["-o", "whole.csv", "--report", "whole.json"]);

    let out = limited(&["-o", "rows.csv"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("kept in ./.rows.csv.partial")
            && stderr(&out).contains("--resume to continue"),
        "{}",
        stderr(&out)
    );
    run(&["-o", "rows.csv", "--resume"]);
    let read = |name: &str| std::fs::read(dir.path().join(name)).unwrap();
    assert_eq!(read("rows.csv"), read("whole.csv"));

    let out = failup_env(
        dir.path(),
        &[&classify[..], &["-o", "more.csv", "--report", "/dev/full"]].concat(),
        None,
        &[HASHED],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("all 3000 rows are complete in ./.more.csv.partial"),
        "{}",
        stderr(&out)
    );
    run(&["-o", "more.csv", "--report", "more.json", "--resume"]);
    assert_eq!(read("more.csv"), read("whole.csv"));
    assert_eq!(read("more.json"), read("whole.json"));
}

/// A report of the whole input cannot be written once the reader of the rows has gone: that
/// is said, with exit 2, not passed over with exit 0 and no report.
#[test]
fn a_closed_pipe_before_a_requested_report_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "in.csv", many_stories(400).as_bytes());
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let out = failup_command()
        .args(["classify", "in.csv", "-q", "--chunk-size", "64"])
        .args(["--report", "r.json", "--summary-out", "s.json"])
        .env(HASHED.0, HASHED.1)
        .current_dir(dir.path())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("before writing --report r.json and --summary-out s.json"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("r.json").exists());
    assert!(!dir.path().join("s.json").exists());
}

/// Every command that prints to standard output ends quietly with its own exit code when the
/// reader has gone (`| head`), and with exit 2 and a message when the output cannot be
/// written (a full disk); they used to panic (exit 101) in both cases.
#[test]
fn printing_commands_survive_a_closed_pipe_and_a_full_disk() {
    let dir = tempfile::tempdir().unwrap();
    let data = |name: &str| repo_path(&format!("data/{name}")).display().to_string();
    let (labelled, sample) = (data("calibration.csv"), data("sample_stories.csv"));
    let commands: [(&[&str], i32); 8] = [
        (&["--help"], 0),
        (&["--version"], 0),
        (&["categories", "--prototypes"], 0),
        (&["advise", "They gave the project to the new hire."], 0),
        (&["eval", &labelled, "-q"], 0),
        (&["eval", &labelled, "-q", "--min-macro-f1", "0.999"], 1),
        (&["bench", &sample, "--repeat", "1"], 0),
        (&["calibrate", &labelled, "-o", "profile.json"], 0),
    ];
    for (args, code) in commands {
        let (reader, writer) = std::io::pipe().expect("a pipe");
        drop(reader);
        let out = failup_command()
            .args(args)
            .env(HASHED.0, HASHED.1)
            .current_dir(dir.path())
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let said = stderr(&out);
        assert!(!said.contains("panicked"), "{args:?}: {said}");
        assert_eq!(out.status.code(), Some(code), "{args:?}: {said}");
        if cfg!(target_os = "linux") {
            let profile = dir.path().join("profile.json");
            if args[0] == "calibrate" {
                assert!(
                    profile.exists(),
                    "a closed stdout still gets the profile written"
                );
                std::fs::remove_file(&profile).unwrap();
            }
            let full = std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap();
            let out = failup_command()
                .args(args)
                .env(HASHED.0, HASHED.1)
                .current_dir(dir.path())
                .stdout(full)
                .output()
                .unwrap();
            let said = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{args:?} > /dev/full: {said}");
            assert!(said.contains("<stdout>: No space left"), "{args:?}: {said}");
            // A failed run leaves no profile behind.
            assert!(!profile.exists(), "{args:?}");
        }
    }
}

/// A warning the library prints (a header's bytes that are not UTF-8), with standard error
/// on a full disk, is dropped and the run goes on: it panicked, exit 101, with no rows.
#[cfg(target_os = "linux")]
#[test]
fn a_library_warning_to_a_full_standard_error_does_not_stop_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let csv = b"id,text,t\xe9am\n1,They gave my project to the new hire.,x\n";
    std::fs::write(dir.path().join("in.csv"), csv).unwrap();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = failup_command()
        .args(["classify", "in.csv", "-o", "out.csv"])
        .env(HASHED.0, HASHED.1)
        .current_dir(dir.path())
        .stderr(full)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let rows = std::fs::read_to_string(dir.path().join("out.csv")).unwrap();
    assert_eq!(rows.lines().count(), 2, "{rows}");
}

#[test]
fn usage_and_missing_files_exit_2() {
    let out = failup(&["classify"]);
    assert_eq!(out.status.code(), Some(2));
    let out = failup(&["classify", "missing.csv"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("missing.csv"));
    let out = failup(&["classify", "tests", "-q"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is a folder"), "{}", stderr(&out));
}

#[test]
fn resume_under_another_shard_index_is_refused() {
    // `--shard auto/2` reads its index from the scheduler: the same words, another shard.
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "in.csv", many_stories(64).as_bytes());
    let shard = ["--shard", "auto/2"];
    let first = [HASHED, ("JOB_COMPLETION_INDEX", "0")];
    let stopped = interrupt_midway_with(dir.path(), 8, "KILL", &shard, &first);
    assert_eq!(stopped.status.code(), None, "{}", stderr(&stopped));
    let model = repo_path("models/all-MiniLM-L6-v2");
    let mut args = vec!["classify", "in.csv", "-o", "out.csv", "--chunk-size", "8"];
    args.extend(["--batch-size", "4", "--model", model.to_str().unwrap()]);
    args.extend(["--resume", "--shard", "auto/2"]);
    let out = failup_env(
        dir.path(),
        &args,
        None,
        &[HASHED, ("JOB_COMPLETION_INDEX", "1")],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--shard was 0/2, now 1/2"), "{err}");
}

#[test]
fn blank_lines_are_not_rows_but_each_is_told() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(
        dir.path(),
        "one.csv",
        b"text\nI was passed over.\n\nWe lost the bid.\r\n\r\n\"Two\n\nlines\"\n\n",
    );
    let run = classify_env(dir.path(), &input, &[], &[HASHED]);
    assert_eq!(run.out.status.code(), Some(0), "{}", stderr(&run.out));
    assert_eq!(run.rows.len(), 3, "blank lines are not rows");
    assert_eq!(run.value("3", "text"), "Two\n\nlines");
    let said = stderr(&run.out);
    for line in [3, 5] {
        assert!(
            said.contains(&format!("one.csv:{line}: blank line passed over")),
            "{said}"
        );
    }
    assert!(
        !said.contains("one.csv:7:"),
        "a blank line inside quotes is text: {said}"
    );
    assert!(
        !said.contains("one.csv:9:"),
        "nor does the file's end count: {said}"
    );
    assert!(said.contains("(2 blank lines passed over)"), "{said}");

    let embedded = failup_env(dir.path(), &["embed", "one.csv", "-q"], None, &[HASHED]);
    assert_eq!(embedded.status.code(), Some(0), "{}", stderr(&embedded));
    assert_eq!(stdout(&embedded).lines().count(), 3);
    let said = stderr(&embedded);
    assert!(said.contains("one.csv:3: blank line passed over"), "{said}");
    assert!(said.contains("one.csv:5: blank line passed over"), "{said}");
}

#[test]
fn an_interrupted_embed_resumes_identically() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), "in.csv", many_stories(40).as_bytes());
    let model = repo_path("models/all-MiniLM-L6-v2");
    let model = model.to_str().unwrap();
    let whole = failup_in(
        dir.path(),
        &["embed", "in.csv", "-q", "--model", model],
        None,
    );
    assert_eq!(whole.status.code(), Some(0), "{}", stderr(&whole));

    let stopped = interrupt_at(
        dir.path(),
        16,
        "INT",
        &["embed", "in.csv", "-o", "out.jsonl"],
        &[],
    );
    assert_eq!(stopped.status.code(), Some(130), "{}", stderr(&stopped));
    let said = stderr(&stopped);
    assert!(
        said.contains("16 complete rows kept") && said.contains("--resume"),
        "{said}"
    );
    assert!(!dir.path().join("out.jsonl").exists());

    let args = [
        "embed",
        "in.csv",
        "-o",
        "out.jsonl",
        "--resume",
        "--chunk-size",
        "3",
    ];
    let resumed = failup_in(dir.path(), &[&args[..], &["--model", model]].concat(), None);
    assert_eq!(resumed.status.code(), Some(0), "{}", stderr(&resumed));
    assert!(stderr(&resumed).contains("resuming after row 16"));
    let finished = std::fs::read(dir.path().join("out.jsonl")).unwrap();
    assert!(
        finished == whole.stdout,
        "resumed embeddings equal an uninterrupted run's"
    );
    assert_eq!(String::from_utf8(finished).unwrap().lines().count(), 40);

    // Another input is refused rather than mixed in.
    let stopped = interrupt_at(
        dir.path(),
        8,
        "KILL",
        &["embed", "in.csv", "-o", "out.jsonl"],
        &[],
    );
    assert_eq!(stopped.status.code(), None);
    write_input(dir.path(), "in.csv", many_stories(41).as_bytes());
    let refused = failup_in(
        dir.path(),
        &[
            "embed",
            "in.csv",
            "-o",
            "out.jsonl",
            "--resume",
            "--model",
            model,
        ],
        None,
    );
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("cannot resume"),
        "{}",
        stderr(&refused)
    );
}

/// A missing input is named, with how to find the mistake: it was the bare system message.
#[test]
fn a_missing_input_file_is_named_with_a_fix() {
    let dir = tempfile::tempdir().unwrap();
    let out = failup_in(dir.path(), &["classify", "no-such-file.csv"], None);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("no-such-file.csv")
            && err.contains("fix: check that the path exists as spelt"),
        "{err}"
    );
}

/// `failup classify in.csv > in.csv`: the shell empties the input before failup starts, so the
/// message says that, rather than that the file is empty.
#[test]
#[cfg(target_os = "linux")]
fn an_input_emptied_by_redirecting_onto_it_is_told_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for command in ["classify", "embed"] {
        write_input(d, "in.csv", many_stories(4).as_bytes());
        let truncated = std::fs::File::create(d.join("in.csv")).unwrap(); // as `>` opens it
        let err = failup_command()
            .args([command, "in.csv"])
            .current_dir(d)
            .env(HASHED.0, HASHED.1)
            .stdout(truncated)
            .output()
            .unwrap();
        assert_eq!(err.status.code(), Some(2));
        let err = String::from_utf8_lossy(&err.stderr);
        assert!(
            err.contains("standard output is the input file (the shell has already emptied it"),
            "{command}: {err}"
        );
    }
}

/// Ctrl-C in `bench` stops it after the current chunk and still prints the figures of the
/// passes done, saying how many of those asked for, with exit 130 (it printed nothing); the
/// JSON says both counts too, for a script that keeps only standard output.
#[cfg(target_os = "linux")]
#[test]
fn an_interrupted_bench_reports_the_passes_done() {
    let args = ["bench", "data/sample_stories.csv", "--repeat", "1000000000"];
    let child = failup_command()
        .args(args)
        .args(["--format", "json"])
        .env(HASHED.0, HASHED.1)
        .current_dir(repo_path(""))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Waits for a second and a half of its CPU time (utime + stime, in ticks of 1/100 s),
    // so on a loaded machine too it is well past its warm-up and first passes of 34 rows.
    let stat = format!("/proc/{}/stat", child.id());
    let cpu_ticks = || -> u64 {
        let text = std::fs::read_to_string(&stat).unwrap_or_default();
        let fields: Vec<&str> = text
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        fields
            .get(11..13)
            .map_or(0, |f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum())
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while cpu_ticks() < 150 {
        assert!(Instant::now() < deadline, "bench never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["repeat_asked"], 1_000_000_000, "{report}");
    let done = report["repeat"].as_u64().unwrap();
    assert!((1..1_000_000_000).contains(&done), "{report}");
    assert!(
        stderr(&out).contains("interrupted: the figures are of the ")
            && stderr(&out).contains(" done, of 1000000000 asked for"),
        "{}",
        stderr(&out)
    );
}
