//! The int8 model quantizes each token's activations on their own, so a story's numbers depend
//! on nothing but the story: not on the batch size, nor on the other stories in the file. The
//! fixture's eight stories were picked because the earlier per-batch quantization scored them
//! differently at `--batch-size 1` and 16; these tests run the real int8 model.

mod common;

use std::path::Path;

use common::*;

fn ok(dir: &Path, args: &[&str]) {
    let model = repo_path("models/all-MiniLM-L6-v2");
    let mut all = args.to_vec();
    all.extend_from_slice(&["--precision", "int8", "--model", model.to_str().unwrap()]);
    let out = failup_in(dir, &all, None);
    assert_eq!(out.status.code(), Some(0), "{all:?}: {}", stderr(&out));
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

/// Asserts two outputs are the same bytes, naming them instead of printing them whole.
fn same(dir: &Path, a: &str, b: &str) {
    assert!(read(dir, a) == read(dir, b), "{a} and {b} differ");
}

/// A temporary folder holding the fixture as `in.csv`.
fn input() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("batching_stories.csv"), dir.path().join("in.csv")).unwrap();
    dir
}

/// Runs `command` on `in.csv` at batch sizes 1 and 16, into `b1.EXT` and `b16.EXT`.
fn at_batch_sizes(dir: &Path, command: &[&str], ext: &str) {
    for size in ["1", "16"] {
        let out = format!("b{size}.{ext}");
        let mut args = command.to_vec();
        args.extend_from_slice(&["in.csv", "-o", &out, "--batch-size", size]);
        ok(dir, &args);
    }
}

#[test]
fn int8_verdicts_do_not_depend_on_batch_size_or_shards() {
    let dir = input();
    let d = dir.path();
    at_batch_sizes(d, &["classify", "-q"], "csv");
    let (header, rows) = parse_csv(&read(d, "b1.csv"));
    assert_eq!(rows.len(), 8);
    let status = header.iter().position(|h| h == "status").unwrap();
    assert!(rows.iter().all(|r| r[status] == "ok"), "{rows:?}");
    same(d, "b1.csv", "b16.csv");

    let parts: Vec<String> = (0..3).map(|i| format!("part-{i}.csv")).collect();
    for (i, part) in parts.iter().enumerate() {
        let spec = format!("{i}/3");
        ok(
            d,
            &["classify", "in.csv", "-q", "-o", part, "--shard", &spec],
        );
    }
    let mut merge = vec!["merge", "--rows", "-o", "merged.csv"];
    merge.extend(parts.iter().map(String::as_str));
    let out = failup_in(d, &merge, None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    same(d, "merged.csv", "b16.csv");
}

#[test]
fn int8_embeddings_do_not_depend_on_batch_size() {
    let dir = input();
    let d = dir.path();
    at_batch_sizes(d, &["embed"], "jsonl");
    let text = read(d, "b1.jsonl");
    assert_eq!(text.lines().count(), 8);
    assert_eq!(text.matches("\"embedding\":[").count(), 8);
    same(d, "b1.jsonl", "b16.jsonl");
}

#[test]
fn classify_runs_int8_unless_asked_for_fp32() {
    let dir = input();
    let d = dir.path();
    ok(d, &["classify", "in.csv", "-q", "-o", "int8.csv"]);
    for (precision, out) in [(None, "default.csv"), (Some("fp32"), "fp32.csv")] {
        let mut args = vec!["classify", "in.csv", "-q", "-o", out];
        args.extend(precision.map(|p| ["--precision", p]).iter().flatten());
        let run = failup_in(d, &args, None);
        assert_eq!(run.status.code(), Some(0), "{args:?}: {}", stderr(&run));
    }
    same(d, "default.csv", "int8.csv");
    // The two precisions' confidences differ in their last digits, so the check above can fail.
    assert!(
        read(d, "fp32.csv") != read(d, "int8.csv"),
        "fp32 gave int8's bytes"
    );
}

#[test]
fn a_few_shot_head_runs_fp32_unless_asked_for_int8() {
    let dir = input();
    let d = dir.path();
    std::fs::copy(fixture("fewshot_examples.csv"), d.join("examples.csv")).unwrap();
    for (precision, out) in [(None, "default.csv"), (Some("fp32"), "fp32.csv")] {
        let mut args = vec!["classify", "in.csv", "-q", "-o", out];
        args.extend(["--examples", "examples.csv"]);
        args.extend(precision.map(|p| ["--precision", p]).iter().flatten());
        let run = failup_in(d, &args, None);
        assert_eq!(run.status.code(), Some(0), "{args:?}: {}", stderr(&run));
    }
    ok(
        d,
        &[
            "classify",
            "in.csv",
            "-q",
            "-o",
            "int8.csv",
            "--examples",
            "examples.csv",
        ],
    );
    same(d, "default.csv", "fp32.csv");
    assert!(
        read(d, "fp32.csv") != read(d, "int8.csv"),
        "int8 gave fp32's bytes"
    );
}

/// Four stories that share sentences, one of them twice.
const REPEATS: &str = "id,text\n\
    a,Thanks for reading. They gave the project lead role to a guy who started in March. Any advice from anyone here?\n\
    b,Thanks for reading. Our pitch to the bank lost to a cheaper agency. Any advice from anyone here?\n\
    c,I left teaching for sales and I regret it every day. Any advice from anyone here?\n\
    d,Thanks for reading. They gave the project lead role to a guy who started in March. Any advice from anyone here?\n";

/// A sentence that several stories share runs through the model once, and every story still
/// reads exactly as it does alone (`--chunk-size 1` gives each story a chunk of its own).
#[test]
fn a_repeated_sentence_runs_once_and_reads_as_it_does_alone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("in.csv"), REPEATS).unwrap();
    std::fs::copy(fixture("fewshot_examples.csv"), d.join("examples.csv")).unwrap();
    for (name, extra) in [
        ("zero", &["--explain"][..]),
        ("head", &["--explain", "--examples", "examples.csv"][..]),
    ] {
        for (size, tag) in [("1024", "together"), ("1", "alone")] {
            let out = format!("{name}-{tag}.csv");
            let mut args = vec!["classify", "in.csv", "-q", "-o", &out, "--chunk-size", size];
            args.extend_from_slice(extra);
            let run = failup_in(d, &args, None);
            assert_eq!(run.status.code(), Some(0), "{args:?}: {}", stderr(&run));
        }
        same(
            d,
            &format!("{name}-together.csv"),
            &format!("{name}-alone.csv"),
        );
    }
    let (_, rows) = parse_csv(&read(d, "zero-together.csv"));
    assert_eq!(rows.len(), 4);

    let out = failup_in(
        d,
        &["bench", "in.csv", "--repeat", "1", "--format", "json"],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    // 3 + 3 + 2 + 3 sentences, of which five differ.
    assert_eq!(report["windows"], 11, "{report}");
    assert_eq!(report["windows_run"], 5, "{report}");
}
