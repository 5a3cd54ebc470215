//! Sharded runs (`--shard I/N`) and `failup merge --rows`: N runs over one file share its
//! rows, and their merged outputs equal one unsharded run byte for byte. These tests are about
//! bookkeeping, not verdicts, so they run the stand-in engine.

mod common;

use std::path::Path;

use common::*;

/// 23 stories, one of them empty and one ragged, with a column to keep.
fn write_input(dir: &Path) {
    let mut csv = String::from("id,text,team\n");
    for i in 1..=23 {
        match i {
            5 => csv += "s5,,north\n",
            9 => csv += "s9,\"a ragged row\",south,extra\n",
            _ => {
                csv += &format!(
                    "s{i},\"Story {i}: they gave my project to someone newer\",t{}\n",
                    i % 3
                )
            }
        }
    }
    std::fs::write(dir.join("in.csv"), csv).unwrap();
}

fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut all = vec![HASHED];
    all.extend_from_slice(env);
    let out = failup_env(dir, args, None, &all);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    out
}

fn refused(dir: &Path, args: &[&str]) -> String {
    let out = failup_env(dir, args, None, &[HASHED]);
    assert_eq!(out.status.code(), Some(2), "{args:?} should be refused");
    stderr(&out)
}

/// A classify part and an embed part of one input are not shards of one run: said so, and
/// not as a list of every setting the two commands record apart.
#[test]
fn parts_written_by_two_commands_are_refused_for_that() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path());
    let classify = [
        "classify", "in.csv", "-q", "--shard", "0/2", "-o", "c.jsonl",
    ];
    run(dir.path(), &classify, &[]);
    run(
        dir.path(),
        &["embed", "in.csv", "-q", "--shard", "1/2", "-o", "e.jsonl"],
        &[],
    );
    let said = refused(
        dir.path(),
        &["merge", "--rows", "c.jsonl", "e.jsonl", "-o", "m.jsonl"],
    );
    assert!(
        said.contains(
            "not shards of one run: failup classify wrote the first and failup embed the second"
        ) && !said.contains(" and (not set)"),
        "{said}"
    );
}

/// Classifies shard `i` of `n` into `part-i.<ext>`.
fn shard(dir: &Path, i: usize, n: usize, extra: &[&str]) -> String {
    let spec = format!("{i}/{n}");
    let ext = if extra.contains(&"jsonl") {
        "jsonl"
    } else {
        "csv"
    };
    let name = format!("part-{i}.{ext}");
    let mut args = vec![
        "classify",
        "in.csv",
        "-q",
        "--keep-columns",
        "team",
        "--shard",
        &spec,
    ];
    args.extend_from_slice(&["-o", &name]);
    args.extend_from_slice(extra);
    run(dir, &args, &[]);
    name
}

#[test]
fn merged_shards_equal_one_run_for_any_shard_count() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path());
    let keep = ["--keep-columns", "team"];
    let mut whole_args = vec!["classify", "in.csv", "-q", "-o", "whole.csv"];
    whole_args.extend_from_slice(&keep);
    run(dir.path(), &whole_args, &[]);
    let whole = std::fs::read(dir.path().join("whole.csv")).unwrap();
    for n in [1, 2, 3, 7] {
        let parts: Vec<String> = (0..n).rev().map(|i| shard(dir.path(), i, n, &[])).collect();
        // Every row is in exactly one shard, in input order within it.
        let mut rows = Vec::new();
        for (i, part) in parts.iter().rev().enumerate() {
            let text = std::fs::read_to_string(dir.path().join(part)).unwrap();
            let (header, records) = parse_csv(&text);
            assert_eq!(header[0], "row");
            let numbers: Vec<usize> = records.iter().map(|r| r[0].parse().unwrap()).collect();
            assert!(
                numbers.windows(2).all(|w| w[0] < w[1]),
                "{part}: {numbers:?}"
            );
            assert!(
                numbers.iter().all(|r| (r - 1) % n == i),
                "{part}: {numbers:?}"
            );
            rows.extend(numbers);
        }
        rows.sort_unstable();
        assert_eq!(rows, (1..=23).collect::<Vec<_>>(), "{n} shards");

        let mut args = vec!["merge", "--rows"];
        args.extend(parts.iter().map(String::as_str));
        args.extend(["-o", "merged.csv"]);
        run(dir.path(), &args, &[]);
        let merged = std::fs::read(dir.path().join("merged.csv")).unwrap();
        assert!(
            merged == whole,
            "{n} shards: the merge differs from one run"
        );
    }
}

#[test]
fn merged_json_lines_equal_one_run() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path());
    let jsonl = ["--format", "jsonl", "--explain"];
    let mut whole_args = vec!["classify", "in.csv", "-q", "--keep-columns", "team"];
    whole_args.extend_from_slice(&jsonl);
    let whole = run(dir.path(), &whole_args, &[]).stdout;
    let parts: Vec<String> = (0..3).map(|i| shard(dir.path(), i, 3, &jsonl)).collect();
    let first = std::fs::read_to_string(dir.path().join(&parts[0])).unwrap();
    assert!(
        first.lines().next().unwrap().contains("\"row\":1"),
        "{first}"
    );
    let mut args = vec!["merge", "--rows"];
    args.extend(parts.iter().map(String::as_str));
    args.extend(["-o", "merged.jsonl"]);
    let told = run(dir.path(), &args, &[]);
    assert!(stderr(&told).contains("merged 23 rows from 3 parts"));
    assert_eq!(
        std::fs::read(dir.path().join("merged.jsonl")).unwrap(),
        whole
    );
    // -q keeps stderr quiet and the merge the same.
    args.push("-q");
    let quiet = run(dir.path(), &args, &[]);
    assert_eq!(stderr(&quiet), "");
    assert_eq!(
        std::fs::read(dir.path().join("merged.jsonl")).unwrap(),
        whole
    );
}

#[test]
fn merge_refuses_missing_overlapping_mismatched_and_unsharded_parts() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path());
    let p: Vec<String> = (0..3).map(|i| shard(dir.path(), i, 3, &[])).collect();
    let err = refused(
        dir.path(),
        &["merge", "--rows", &p[0], &p[2], "-o", "m.csv"],
    );
    assert!(err.contains("shard 1 of 3 is missing"), "{err}");
    let err = refused(
        dir.path(),
        &["merge", "--rows", &p[0], &p[1], &p[1], &p[2], "-o", "m.csv"],
    );
    assert!(err.contains("shard 1 of 3 is given twice"), "{err}");

    let seven: Vec<String> = (0..7).map(|i| shard(dir.path(), i, 7, &[])).collect();
    let err = refused(
        dir.path(),
        &[
            "merge", "--rows", &seven[0], &seven[1], &seven[2], &seven[3], &seven[4], &seven[5],
            "-o", "m.csv",
        ],
    );
    assert!(err.contains("shard 6 of 7 is missing"), "{err}");

    run(
        dir.path(),
        &[
            "classify",
            "in.csv",
            "-q",
            "--keep-columns",
            "team",
            "--explain",
            "--shard",
            "1/3",
            "-o",
            "explained.csv",
        ],
        &[],
    );
    let err = refused(
        dir.path(),
        &[
            "merge",
            "--rows",
            &p[0],
            "explained.csv",
            &p[2],
            "-o",
            "m.csv",
        ],
    );
    assert!(err.contains("different columns"), "{err}");
    // An empty file, where a CSV part is due, is named as empty, in either place, and so is
    // a gzip file that holds nothing.
    std::fs::write(dir.path().join("empty.csv"), "").unwrap();
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::fs::write(dir.path().join("empty.csv.gz"), gz.finish().unwrap()).unwrap();
    for empty in ["empty.csv", "empty.csv.gz"] {
        for parts in [[empty, &p[1]], [&p[1], empty]] {
            let args = [&["merge", "--rows"][..], &parts, &[&p[2], "-o", "m.csv"]].concat();
            let err = refused(dir.path(), &args);
            assert!(
                err.contains(&format!("{empty} is empty, and {} is CSV", p[1])),
                "{err}"
            );
        }
    }

    run(
        dir.path(),
        &["classify", "in.csv", "-q", "-o", "whole.csv"],
        &[],
    );
    let err = refused(dir.path(), &["merge", "--rows", "whole.csv", "-o", "m.csv"]);
    assert!(err.contains("not the output of a sharded run"), "{err}");

    let err = refused(
        dir.path(),
        &["merge", "--rows", &p[0], &p[1], &p[2], "-o", &p[0]],
    );
    assert!(err.contains("is one of the parts"), "{err}");
    // Nor over a part's record, without which that part could never be merged again.
    let record = format!("{}.shard", p[1]);
    let before = std::fs::read(dir.path().join(&record)).unwrap();
    let err = refused(
        dir.path(),
        &["merge", "--rows", &p[0], &p[1], &p[2], "-o", &record],
    );
    assert!(err.contains("how failup names a shard's record"), "{err}");
    assert_eq!(std::fs::read(dir.path().join(&record)).unwrap(), before);
    // Nor over the input the shards read, which would lose the stories themselves.
    let input = std::fs::read(dir.path().join("in.csv")).unwrap();
    let mut args = vec!["merge", "--rows"];
    args.extend(seven.iter().map(String::as_str));
    args.extend(["-o", "./in.csv"]);
    let err = refused(dir.path(), &args);
    assert!(err.contains("in.csv is the input the shards read"), "{err}");
    assert_eq!(std::fs::read(dir.path().join("in.csv")).unwrap(), input);
    // Standard output appended to it, too.
    args.pop();
    args.push("-");
    let append = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("in.csv"))
        .unwrap();
    let out = failup_command()
        .args(&args)
        .env(HASHED.0, HASHED.1)
        .current_dir(dir.path())
        .stdout(append)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("in.csv, which is the input the shards read"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(dir.path().join("in.csv")).unwrap(), input);
    assert!(
        !dir.path().join("m.csv").exists(),
        "a refused merge writes nothing"
    );
    // Nor over a file the shards read on standard input (`< in.csv`): their records had no
    // input file to guard, and the merge replaced the stories with its rows.
    for i in 0..2 {
        let stdin = std::fs::File::open(dir.path().join("in.csv")).unwrap();
        let (spec, part) = (format!("{i}/2"), format!("stdin{i}.csv"));
        let out = failup_command()
            .args(["classify", "-", "-q", "--shard", &spec, "-o", &part])
            .env(HASHED.0, HASHED.1)
            .current_dir(dir.path())
            .stdin(stdin)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let args = [
        "merge",
        "--rows",
        "stdin0.csv",
        "stdin1.csv",
        "-o",
        "in.csv",
    ];
    let err = refused(dir.path(), &args);
    assert!(err.contains("in.csv is the input the shards read"), "{err}");
    assert_eq!(std::fs::read(dir.path().join("in.csv")).unwrap(), input);
}

#[test]
fn auto_shards_read_slurm_and_kubernetes_indices() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path());
    let explicit = shard(dir.path(), 2, 4, &[]);
    let explicit = std::fs::read(dir.path().join(explicit)).unwrap();
    let args = [
        "classify",
        "in.csv",
        "-q",
        "--keep-columns",
        "team",
        "-o",
        "auto.csv",
        "--shard",
    ];
    let slurm = [
        ("SLURM_ARRAY_TASK_ID", "2"),
        ("SLURM_ARRAY_TASK_COUNT", "4"),
    ];
    let mut with_spec = args.to_vec();
    with_spec.push("auto");
    run(dir.path(), &with_spec, &slurm);
    assert_eq!(
        std::fs::read(dir.path().join("auto.csv")).unwrap(),
        explicit
    );
    with_spec.pop();
    with_spec.push("auto/4");
    run(dir.path(), &with_spec, &[("JOB_COMPLETION_INDEX", "2")]);
    assert_eq!(
        std::fs::read(dir.path().join("auto.csv")).unwrap(),
        explicit
    );

    let err = refused(dir.path(), &with_spec);
    assert!(
        err.contains("SLURM_ARRAY_TASK_ID") && err.contains("JOB_COMPLETION_INDEX"),
        "{err}"
    );
}

#[test]
fn merged_embeddings_equal_one_run_to_the_last_digit() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path());
    // The real model: its floats have many digits, which a merge must not re-round.
    let whole = failup_in(dir.path(), &["embed", "in.csv", "-q"], None);
    assert_eq!(whole.status.code(), Some(0), "{}", stderr(&whole));
    for i in 0..3 {
        let spec = format!("{i}/3");
        let name = format!("e-{i}.jsonl");
        let out = failup_in(
            dir.path(),
            &["embed", "in.csv", "-q", "--shard", &spec, "-o", &name],
            None,
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    run(
        dir.path(),
        &[
            "merge",
            "--rows",
            "e-2.jsonl",
            "e-0.jsonl",
            "e-1.jsonl",
            "-o",
            "e.jsonl",
        ],
        &[],
    );
    assert!(std::fs::read(dir.path().join("e.jsonl")).unwrap() == whole.stdout);
}

#[test]
fn an_empty_shard_merges_and_json_parts_of_other_runs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("in.csv"),
        "id,text,team\n1,We lost the pitch.,a\n2,I was passed over.,b\n",
    )
    .unwrap();
    let jsonl = ["--format", "jsonl"];
    let whole = run(
        dir.path(),
        &[
            "classify",
            "in.csv",
            "-q",
            "--keep-columns",
            "team",
            "--format",
            "jsonl",
        ],
        &[],
    )
    .stdout;
    let parts: Vec<String> = (0..3).map(|i| shard(dir.path(), i, 3, &jsonl)).collect();
    assert_eq!(
        std::fs::read(dir.path().join(&parts[2])).unwrap(),
        b"",
        "shard 2 of 3 has no rows"
    );
    run(
        dir.path(),
        &[
            "merge", "--rows", &parts[0], &parts[1], &parts[2], "-o", "m.jsonl",
        ],
        &[],
    );
    assert_eq!(std::fs::read(dir.path().join("m.jsonl")).unwrap(), whole);

    run(
        dir.path(),
        &[
            "classify",
            "in.csv",
            "-q",
            "--format",
            "jsonl",
            "--explain",
            "--shard",
            "1/3",
            "-o",
            "x.jsonl",
        ],
        &[],
    );
    let err = refused(
        dir.path(),
        &["merge", "--rows", &parts[0], "x.jsonl", "-o", "m2.jsonl"],
    );
    assert!(err.contains("--explain: false and true"), "{err}");
}

#[test]
fn merge_refuses_parts_of_another_input_changed_parts_and_parts_without_records() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path());
    let p: Vec<String> = (0..3).map(|i| shard(dir.path(), i, 3, &[])).collect();
    let merge = |parts: &[&str]| {
        let mut args = vec!["merge", "--rows"];
        args.extend_from_slice(parts);
        args.extend(["-o", "m.csv"]);
        refused(dir.path(), &args)
    };

    // Shard 1 of the same rows under another name and order is another input, though its
    // row numbers fit.
    let text = std::fs::read_to_string(dir.path().join("in.csv")).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[1..].reverse();
    std::fs::write(dir.path().join("other.csv"), lines.join("\n") + "\n").unwrap();
    run(
        dir.path(),
        &[
            "classify",
            "other.csv",
            "-q",
            "--keep-columns",
            "team",
            "--shard",
            "1/3",
            "-o",
            "foreign.csv",
        ],
        &[],
    );
    let err = merge(&[&p[0], "foreign.csv", &p[2]]);
    assert!(
        err.contains("not shards of one run") && err.contains("read different inputs"),
        "{err}"
    );

    // The same input under another path and time (a copy on another machine) is the same
    // input: the record knows it by its content.
    std::fs::copy(dir.path().join("in.csv"), dir.path().join("copy.csv")).unwrap();
    run(
        dir.path(),
        &[
            "classify",
            "copy.csv",
            "-q",
            "--keep-columns",
            "team",
            "--shard",
            "1/3",
            "-o",
            "c.csv",
        ],
        &[],
    );
    run(
        dir.path(),
        &["merge", "--rows", &p[0], "c.csv", &p[2], "-o", "copied.csv"],
        &[],
    );
    run(
        dir.path(),
        &["merge", "--rows", &p[0], &p[1], &p[2], "-o", "original.csv"],
        &[],
    );
    assert_eq!(
        std::fs::read(dir.path().join("copied.csv")).unwrap(),
        std::fs::read(dir.path().join("original.csv")).unwrap()
    );
    let err = merge(&[&p[0], &format!("{}.shard", p[1]), &p[2]]);
    assert!(
        err.contains("is a shard record; give the parts themselves"),
        "{err}"
    );

    // Other settings that change the rows.
    run(
        dir.path(),
        &[
            "classify",
            "in.csv",
            "-q",
            "--keep-columns",
            "team",
            "--shard",
            "1/3",
            "--long-text",
            "truncate",
            "-o",
            "t.csv",
        ],
        &[],
    );
    let err = merge(&[&p[0], "t.csv", &p[2]]);
    assert!(err.contains("--long-text: chunk and truncate"), "{err}");

    // A part cut after its run, even at a row boundary.
    let part = dir.path().join(&p[2]);
    let bytes = std::fs::read(&part).unwrap();
    let last_row = bytes[..bytes.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap();
    std::fs::write(&part, &bytes[..=last_row]).unwrap();
    let err = merge(&[&p[0], &p[1], &p[2]]);
    assert!(err.contains("changed or cut after its run"), "{err}");
    std::fs::write(&part, &bytes).unwrap();

    // A part whose record was left behind.
    std::fs::remove_file(dir.path().join(format!("{}.shard", p[1]))).unwrap();
    let err = merge(&[&p[0], &p[1], &p[2]]);
    assert!(err.contains("has no readable shard record"), "{err}");
    assert!(
        !dir.path().join("m.csv").exists(),
        "a refused merge writes nothing"
    );
}

#[test]
fn a_kept_column_named_row_merges_as_one_run_writes_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("in.csv"),
        "id,text,row\n1,We lost the pitch.,a\n2,I was passed over.,b\n3,I hate my new career.,c\n",
    )
    .unwrap();
    let keep = ["--keep-columns", "row"];
    let mut whole = vec!["classify", "in.csv", "-q", "-o", "whole.csv"];
    whole.extend(keep);
    run(dir.path(), &whole, &[]);
    let mut merge = vec!["merge", "--rows"];
    let parts: Vec<String> = (0..2)
        .map(|i| {
            let (spec, name) = (format!("{i}/2"), format!("p{i}.csv"));
            let mut args = vec!["classify", "in.csv", "-q", "--shard", &spec, "-o", &name];
            args.extend(keep);
            run(dir.path(), &args, &[]);
            name
        })
        .collect();
    merge.extend(parts.iter().map(String::as_str));
    merge.extend(["-o", "merged.csv"]);
    run(dir.path(), &merge, &[]);
    let whole = std::fs::read_to_string(dir.path().join("whole.csv")).unwrap();
    assert!(
        whole.lines().next().unwrap().ends_with(",advice,row"),
        "{whole}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("merged.csv")).unwrap(),
        whole
    );
}

#[test]
fn a_missing_shard_that_held_only_the_last_row_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("in.csv"),
        "id,text,team\n1,We lost the pitch.,a\n2,I was passed over.,b\n3,I hate my new career.,a\n",
    )
    .unwrap();
    let p: Vec<String> = (0..3).map(|i| shard(dir.path(), i, 3, &[])).collect();
    let err = refused(
        dir.path(),
        &["merge", "--rows", &p[0], &p[1], "-o", "m.csv"],
    );
    assert!(err.contains("shard 2 of 3 is missing"), "{err}");
}

/// A negative shard reaches failup's own message, not clap's tip to write `-- -1/2`.
#[test]
fn a_signed_shard_is_refused_in_failups_words() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path());
    for (command, spec) in [
        ("classify", "-1/2"),
        ("embed", "-1/2"),
        ("classify", "+0/2"),
    ] {
        let err = refused(dir.path(), &[command, "in.csv", "--shard", spec]);
        assert!(
            err.contains("must be a whole number"),
            "{command} {spec}: {err}"
        );
        assert!(!err.contains("tip:"), "{command} {spec}: {err}");
    }
}

#[test]
fn embed_shards_carry_their_row_numbers() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path());
    let out = run(
        dir.path(),
        &["embed", "in.csv", "-q", "--shard", "1/2"],
        &[],
    );
    let rows: Vec<u64> = stdout(&out)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["row"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(rows, (2..=22).step_by(2).collect::<Vec<u64>>());
}

/// Classifies shard `i` of `n` into `{rows}{i}.csv` with its summary in `s{i}.json`, and
/// returns the summary's name.
fn shard_with_summary(dir: &Path, i: usize, n: usize, rows: &str, extra: &[&str]) -> String {
    let (spec, rows, summary) = (
        format!("{i}/{n}"),
        format!("{rows}{i}.csv"),
        format!("s{i}.json"),
    );
    let mut args = vec!["classify", "in.csv", "-q", "--shard", &spec, "-o", &rows];
    args.extend(["--summary-out", &summary]);
    args.extend_from_slice(extra);
    run(dir, &args, &[("SOURCE_DATE_EPOCH", "0")]);
    summary
}

/// Runs each shard with `--summary-out`, merges the summaries and renders them as JSON.
fn merged_report(dir: &Path, n: usize, extra: &[&str]) -> Vec<u8> {
    let parts: Vec<String> = (0..n)
        .rev()
        .map(|i| shard_with_summary(dir, i, n, "r", extra))
        .collect();
    let mut args = vec!["merge"];
    args.extend(parts.iter().map(String::as_str));
    args.extend(["-o", "summary.json"]);
    run(dir, &args, &[]);
    let report = [
        "report",
        "summary.json",
        "--format",
        "json",
        "-o",
        "merged.json",
    ];
    run(dir, &report, &[("SOURCE_DATE_EPOCH", "0")]);
    std::fs::read(dir.join("merged.json")).unwrap()
}

#[test]
fn merged_summaries_report_exactly_as_one_run() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path());
    let plain = ["--keep-columns", "team", "--group-by", "team"];
    let explained = ["--keep-columns", "team", "--group-by", "team", "--explain"];
    for options in [&plain[..], &explained[..]] {
        let mut args = vec!["classify", "in.csv", "-q", "-o", "whole.csv"];
        args.extend(["--report", "single.json"]);
        args.extend_from_slice(options);
        run(dir.path(), &args, &[("SOURCE_DATE_EPOCH", "0")]);
        let single = std::fs::read(dir.path().join("single.json")).unwrap();
        for n in [1, 2, 3, 7] {
            let merged = merged_report(dir.path(), n, options);
            assert!(
                merged == single,
                "{n} shards, {options:?}: the merged report differs from one run"
            );
        }
    }
}

/// A run split into millions of shards, one of them given: the answer names ten and counts the
/// rest, at once (it once listed them all, in a message of gigabytes).
#[test]
fn a_summary_merge_missing_millions_of_shards_names_ten() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path());
    let summary = shard_with_summary(dir.path(), 0, 100_000_000, "r", &[]);
    let err = refused(dir.path(), &["merge", &summary, "-o", "m.json"]);
    assert!(
        err.contains("shards 1/100000000, 2/100000000,")
            && err.contains(", 10/100000000, and 99999989 more are missing"),
        "{err}"
    );
    assert!(err.len() < 1000, "{} bytes: {err}", err.len());
    let rows = [
        "classify",
        "in.csv",
        "-q",
        "--shard",
        "0/100000000",
        "-o",
        "p0.csv",
    ];
    run(dir.path(), &rows, &[]);
    let err = refused(dir.path(), &["merge", "--rows", "p0.csv", "-o", "all.csv"]);
    assert!(
        err.contains(
            "shards 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, and 99999989 more of 100000000 are missing"
        ),
        "{err}"
    );
}

/// `--summary-out` replaces an earlier summary, never another shard's rows or any other file,
/// and a summary is not named like a table.
#[test]
fn summary_out_replaces_only_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path());
    let rows = shard(dir.path(), 1, 2, &[]);
    let kept = std::fs::read(dir.path().join(&rows)).unwrap();
    let base = [
        "classify",
        "in.csv",
        "-q",
        "--shard",
        "0/2",
        "-o",
        "part-0.csv",
    ];
    let err = refused(dir.path(), &[&base[..], &["--summary-out", &rows]].concat());
    assert!(
        err.contains(
            "--summary-out part-1.csv exists and is not a failup summary; the run would replace it"
        ),
        "{err}"
    );
    assert_eq!(std::fs::read(dir.path().join(&rows)).unwrap(), kept);
    std::fs::write(dir.path().join("notes.json"), "{\"mine\": true}\n").unwrap();
    let err = refused(
        dir.path(),
        &[&base[..], &["--summary-out", "notes.json"]].concat(),
    );
    assert!(
        err.contains("notes.json exists and is not a failup summary"),
        "{err}"
    );
    let err = refused(
        dir.path(),
        &[&base[..], &["--summary-out", "new.csv"]].concat(),
    );
    assert!(
        err.contains("a summary is one JSON object, not CSV; name the output .json, e.g. --summary-out new.json"),
        "{err}"
    );
    assert!(!dir.path().join("new.csv").exists());
    let again = [&base[..], &["--summary-out", "s.json"]].concat();
    run(dir.path(), &again, &[("SOURCE_DATE_EPOCH", "0")]);
    run(dir.path(), &again, &[("SOURCE_DATE_EPOCH", "0")]);
    // A damaged summary is made again where it was, as the message refusing it says.
    let whole = std::fs::read_to_string(dir.path().join("s.json")).unwrap();
    std::fs::write(dir.path().join("s.json"), &whole[..whole.len() / 2]).unwrap();
    refused(dir.path(), &["report", "s.json"]);
    run(dir.path(), &again, &[("SOURCE_DATE_EPOCH", "0")]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("s.json")).unwrap(),
        whole
    );
    // Rows merged without --rows: the table's name is told, with the flag it wants.
    let rows_0 = shard(dir.path(), 0, 2, &[]);
    let err = refused(dir.path(), &["merge", &rows_0, &rows, "-o", "all.csv"]);
    assert!(
        err.contains("-o all.csv names a table, but without --rows merge puts partial summaries"),
        "{err}"
    );
}

/// A run calibrated by a profile records the taxonomy as its file reads, so its summary is
/// reported with that file (the profile's calibration is recorded apart, by its hash).
#[test]
fn a_summary_of_a_calibrated_run_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path());
    let labelled = concat!(env!("CARGO_MANIFEST_DIR"), "/data/calibration.csv");
    run(
        dir.path(),
        &["calibrate", labelled, "-o", "cal.json", "-q"],
        &[],
    );
    shard_with_summary(dir.path(), 0, 2, "r", &["--profile", "cal.json"]);
    shard_with_summary(dir.path(), 1, 2, "r", &["--profile", "cal.json"]);
    run(
        dir.path(),
        &["merge", "s0.json", "s1.json", "-o", "m.json"],
        &[],
    );
    let out = run(dir.path(), &["report", "m.json"], &[]);
    assert!(
        stdout(&out).contains("in.csv (23 rows)"),
        "{}",
        stdout(&out)
    );
}

/// A summary is reported with the taxonomy it was made with, told by content as resume and
/// merge tell it: a copy with a comment changed gives the same report, a changed title is
/// refused.
#[test]
fn a_summary_reports_with_a_copy_of_its_taxonomy() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path());
    let summary = shard_with_summary(dir.path(), 0, 1, "r", &[]);
    let builtin = include_str!("../data/taxonomy.toml");
    let commented = builtin.replacen("# failup taxonomy", "# A copy of failup's taxonomy", 1);
    assert_ne!(commented, builtin);
    std::fs::write(dir.path().join("copy.toml"), commented).unwrap();
    let retitled = builtin.replacen("Another career setback", "Some other setback", 1);
    assert_ne!(retitled, builtin);
    std::fs::write(dir.path().join("retitled.toml"), retitled).unwrap();
    let epoch = [("SOURCE_DATE_EPOCH", "0")];
    let plain = run(dir.path(), &["report", &summary], &epoch).stdout;
    let copy = ["report", &summary, "--taxonomy", "copy.toml"];
    assert_eq!(run(dir.path(), &copy, &epoch).stdout, plain);
    let err = refused(
        dir.path(),
        &["report", &summary, "--taxonomy", "retitled.toml"],
    );
    assert!(
        err.contains("the summary was made with the taxonomy built-in")
            && err.contains("not retitled.toml"),
        "{err}"
    );
    // Made with a file that was edited since: said so, under its own name.
    std::fs::write(dir.path().join("mine.toml"), builtin).unwrap();
    let mine = [
        "classify",
        "in.csv",
        "-q",
        "-o",
        "mine.csv",
        "--taxonomy",
        "mine.toml",
    ];
    run(
        dir.path(),
        &[&mine[..], &["--summary-out", "mine.json"]].concat(),
        &[],
    );
    run(
        dir.path(),
        &["report", "mine.json", "--taxonomy", "mine.toml"],
        &[],
    );
    let edited = builtin.replacen("Another career setback", "Some other setback", 1);
    std::fs::write(dir.path().join("mine.toml"), edited).unwrap();
    let err = refused(
        dir.path(),
        &["report", "mine.json", "--taxonomy", "mine.toml"],
    );
    assert!(
        err.contains("the summary was made with the taxonomy mine.toml, which has changed since"),
        "{err}"
    );
}

#[test]
fn summary_merge_refuses_missing_repeated_and_foreign_parts() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path());
    merged_report(dir.path(), 3, &[]);
    let err = refused(dir.path(), &["merge", "s0.json", "s2.json", "-o", "m.json"]);
    assert!(err.contains("shard 1/3 is missing"), "{err}");
    let err = refused(
        dir.path(),
        &[
            "merge", "s0.json", "s1.json", "s1.json", "s2.json", "-o", "m.json",
        ],
    );
    assert!(err.contains("shard 1/3 is in both"), "{err}");
    // Not over the input, nor any file but a summary; an earlier summary is replaced.
    let input = std::fs::read(dir.path().join("in.csv")).unwrap();
    let all = ["merge", "s0.json", "s1.json", "s2.json", "-o"];
    let err = refused(dir.path(), &[&all[..], &["in.csv"]].concat());
    assert!(
        err.contains("-o in.csv names a table, but without --rows"),
        "{err}"
    );
    assert_eq!(std::fs::read(dir.path().join("in.csv")).unwrap(), input);
    std::fs::write(dir.path().join("notes.txt"), "mine\n").unwrap();
    let err = refused(dir.path(), &[&all[..], &["notes.txt"]].concat());
    assert!(
        err.contains("notes.txt exists and is not a failup summary"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(dir.path().join("notes.txt")).unwrap(),
        b"mine\n"
    );
    run(dir.path(), &[&all[..], &["again.json"]].concat(), &[]);
    run(dir.path(), &[&all[..], &["again.json"]].concat(), &[]);
    // A summary laid out by another tool is a summary still.
    let summary = std::fs::read_to_string(dir.path().join("again.json")).unwrap();
    let value: serde_json::Value = serde_json::from_str(&summary).unwrap();
    let pretty = serde_json::to_string_pretty(&value).unwrap();
    std::fs::write(dir.path().join("again.json"), pretty).unwrap();
    run(dir.path(), &[&all[..], &["again.json"]].concat(), &[]);
    // A FIFO is written, not read first (opening it to read would wait for ever).
    #[cfg(unix)]
    {
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let reader = std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap());
        run(dir.path(), &[&all[..], &["fifo"]].concat(), &[]);
        assert_eq!(reader.join().unwrap(), summary);
    }

    // Another setting: a different run, named.
    let args = [
        "classify",
        "in.csv",
        "-q",
        "--shard",
        "1/3",
        "-o",
        "x.csv",
        "--summary-out",
        "x.json",
        "--long-text",
        "truncate",
    ];
    run(dir.path(), &args, &[]);
    let err = refused(
        dir.path(),
        &["merge", "s0.json", "x.json", "s2.json", "-o", "m.json"],
    );
    assert!(
        err.contains("different runs") && err.contains("--long-text: chunk and truncate"),
        "{err}"
    );
    // --explain changes the report (it quotes each listed story's evidence): a part run with
    // it and parts without made a report that matched neither run.
    let mut explained = args.to_vec();
    explained.truncate(9);
    explained.push("--explain");
    run(dir.path(), &explained, &[]);
    let err = refused(
        dir.path(),
        &["merge", "s0.json", "x.json", "s2.json", "-o", "m.json"],
    );
    assert!(err.contains("--explain: false and true"), "{err}");

    // A report option that differs is named, with both values.
    let mut grouped = args.to_vec();
    grouped.truncate(9);
    grouped.extend(["--keep-columns", "team", "--group-by", "team"]);
    run(dir.path(), &grouped, &[]);
    let err = refused(
        dir.path(),
        &["merge", "s0.json", "x.json", "s2.json", "-o", "m.json"],
    );
    assert!(
        err.contains("different report options (--group-by none against \"team\")"),
        "{err}"
    );

    // Written over a part, the merge would lose that shard's summary.
    let before = std::fs::read(dir.path().join("s0.json")).unwrap();
    let err = refused(
        dir.path(),
        &["merge", "s0.json", "s1.json", "s2.json", "-o", "s0.json"],
    );
    assert!(err.contains("is one of the parts"), "{err}");
    assert_eq!(std::fs::read(dir.path().join("s0.json")).unwrap(), before);

    // The input is compared by its content: the same rows from a copy of the file or through a
    // pipe merge, another file's rows through a pipe do not.
    let d = dir.path();
    std::fs::copy(d.join("in.csv"), d.join("copy.csv")).unwrap();
    let text = std::fs::read_to_string(d.join("in.csv")).unwrap();
    let summary_of = |i: usize, input: &str, stdin: Option<&str>, name: &str| {
        let spec = format!("{i}/3");
        let args = [
            "classify",
            input,
            "-q",
            "--shard",
            &spec,
            "-o",
            "/dev/null",
            "--summary-out",
            name,
        ];
        let out = failup_env(d, &args, stdin, &[HASHED]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    };
    summary_of(1, "copy.csv", None, "c1.json");
    summary_of(2, "-", Some(&text), "p2.json");
    run(
        d,
        &["merge", "s0.json", "c1.json", "p2.json", "-o", "same.json"],
        &[],
    );
    let other = text.replace("Story 4:", "Story four:");
    summary_of(1, "-", Some(&other), "o1.json");
    let err = refused(
        d,
        &["merge", "s0.json", "o1.json", "s2.json", "-o", "m.json"],
    );
    assert!(
        err.contains("different runs") && err.contains("input"),
        "{err}"
    );

    // One shard's summary alone is not the whole input's report.
    let err = refused(dir.path(), &["report", "s0.json"]);
    assert!(err.contains("1 of 3 shards"), "{err}");
    assert!(!dir.path().join("m.json").exists());
}

/// Replaces `dir/name` with `dir/name.gz`, as `gzip name` does.
fn gzip(dir: &Path, name: &str) -> String {
    use std::io::Write;
    let plain = std::fs::read(dir.join(name)).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain).unwrap();
    std::fs::write(dir.join(format!("{name}.gz")), gz.finish().unwrap()).unwrap();
    std::fs::remove_file(dir.join(name)).unwrap();
    format!("{name}.gz")
}

#[test]
fn parts_compressed_after_the_run_merge_as_the_plain_parts() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path());
    let d = dir.path();
    let keep = ["--keep-columns", "team"];
    run(
        d,
        &[&["classify", "in.csv", "-q", "-o", "whole.csv"], &keep[..]].concat(),
        &[],
    );
    for i in 0..3 {
        shard_with_summary(d, i, 3, "part-", &keep);
    }
    run(
        d,
        &["merge", "s0.json", "s1.json", "s2.json", "-o", "plain.json"],
        &[],
    );
    // One row part and one summary stay plain: a mix merges too.
    let rows = [
        gzip(d, "part-0.csv"),
        gzip(d, "part-1.csv"),
        "part-2.csv".into(),
    ];
    let summaries = [gzip(d, "s0.json"), "s1.json".into(), gzip(d, "s2.json")];
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    let summaries: Vec<&str> = summaries.iter().map(String::as_str).collect();
    let merge_rows = |out: &'static str| [&["merge", "--rows"], &rows[..], &["-o", out]].concat();
    run(d, &merge_rows("merged.csv"), &[]);
    let read = |name: &str| std::fs::read(d.join(name)).unwrap();
    assert!(
        read("merged.csv") == read("whole.csv"),
        "rows differ from one run"
    );
    run(
        d,
        &[&["merge"], &summaries[..], &["-o", "summary.json"]].concat(),
        &[],
    );
    assert!(
        read("summary.json") == read("plain.json"),
        "summaries differ"
    );

    // A compressed part whose text is not what its record describes is refused.
    let text = String::from_utf8(read("whole.csv")).unwrap();
    std::fs::write(
        d.join("part-0.csv"),
        format!("row,{}", text.lines().next().unwrap()),
    )
    .unwrap();
    gzip(d, "part-0.csv");
    let why = refused(d, &merge_rows("again.csv"));
    assert!(why.contains("part-0.csv.gz"), "{why}");
}

/// The header row decides which column is the id, the text and the kept ones, so a part read
/// under another header is a part of another run, even when every record below it is the
/// same: merged, its rows would carry row numbers for ids, or kept columns swapped.
#[test]
fn parts_read_under_another_header_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path());
    let text = std::fs::read_to_string(dir.path().join("in.csv")).unwrap();
    let renamed = text.replacen("id,text,team", "key,text,team", 1);
    std::fs::write(dir.path().join("renamed.csv"), renamed).unwrap();
    let parts: Vec<String> = (0..2)
        .map(|i| shard_with_summary(dir.path(), i, 3, "r", &[]))
        .collect();
    let args = [
        "classify",
        "renamed.csv",
        "-q",
        "--shard",
        "2/3",
        "-o",
        "r2.csv",
    ];
    run(
        dir.path(),
        &[&args[..], &["--summary-out", "s2.json"]].concat(),
        &[],
    );
    let err = refused(
        dir.path(),
        &[
            "merge", "--rows", "r0.csv", "r1.csv", "r2.csv", "-o", "m.csv",
        ],
    );
    assert!(err.contains("input header"), "{err}");
    let err = refused(
        dir.path(),
        &["merge", &parts[0], &parts[1], "s2.json", "-o", "m.json"],
    );
    assert!(err.contains("input header"), "{err}");
}

/// A report written by one shard describes that shard alone, which its title does not say:
/// the run warns and names the way to a report of the whole input.
#[test]
fn a_report_of_one_shard_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path());
    let args = ["classify", "in.csv", "-q", "--shard", "1/3", "-o", "p.csv"];
    let out = run(
        dir.path(),
        &[&args[..], &["--report", "r.md"]].concat(),
        &[],
    );
    let said = stderr(&out);
    assert!(
        said.contains("r.md will describe shard 1/3 alone") && said.contains("--summary-out"),
        "{said}"
    );
    let out = run(dir.path(), &args, &[]);
    assert!(!stderr(&out).contains("describe shard"), "{}", stderr(&out));
    // `report` on the part says so too; on a whole run's rows it says nothing.
    let out = run(dir.path(), &["report", "p.csv"], &[]);
    assert!(
        stderr(&out).contains("p.csv is one shard's part") && stderr(&out).contains("merge --rows"),
        "{}",
        stderr(&out)
    );
    run(
        dir.path(),
        &["classify", "in.csv", "-q", "-o", "whole.csv"],
        &[],
    );
    let out = run(dir.path(), &["report", "whole.csv"], &[]);
    assert!(!stderr(&out).contains("shard"), "{}", stderr(&out));
}

/// Shards may read one input under two names (the file, and a pipe): the merged summary
/// names the lowest shard's input, whatever order the parts are given in.
#[test]
fn merged_summaries_do_not_depend_on_the_parts_order() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path());
    let input = std::fs::read_to_string(dir.path().join("in.csv")).unwrap();
    let args = ["classify", "-", "-q", "--shard", "0/2", "-o", "r0.csv"];
    let args = [&args[..], &["--summary-out", "s0.json"]].concat();
    let out = failup_env(dir.path(), &args, Some(&input), &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    shard_with_summary(dir.path(), 1, 2, "r", &[]);
    let merged = |parts: [&str; 2], out: &str| {
        run(dir.path(), &["merge", parts[0], parts[1], "-o", out], &[]);
        std::fs::read(dir.path().join(out)).unwrap()
    };
    let forward = merged(["s0.json", "s1.json"], "a.json");
    let backward = merged(["s1.json", "s0.json"], "b.json");
    assert!(
        backward == forward,
        "the parts' order changed the merged summary"
    );
    let summary: serde_json::Value = serde_json::from_slice(&forward).unwrap();
    assert_eq!(summary["input"], "<stdin>");
}

/// A summary was made with its grouping, text column, top stories and small-group line;
/// `report` refuses flags that would change them rather than ignoring them silently, and takes
/// those that repeat them.
#[test]
fn a_summary_report_refuses_flags_it_cannot_apply() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path());
    let summary = shard_with_summary(dir.path(), 0, 1, "r", &[]);
    for flags in [
        &["--top", "5"][..],
        &["--min-group-size", "2"],
        &["--group-by", "team"],
    ] {
        let err = refused(dir.path(), &[&["report", &summary][..], flags].concat());
        assert!(
            err.contains(&format!("{summary} is a summary"))
                && err.contains(&format!("so {} cannot change them", flags[0])),
            "{err}"
        );
        // Only a larger --top is told that --top may show fewer.
        assert_eq!(
            err.contains("may only show fewer"),
            flags[0] == "--top",
            "{err}"
        );
    }
    run(dir.path(), &["report", &summary, "-o", "r.txt"], &[]);
    assert!(std::fs::read_to_string(dir.path().join("r.txt"))
        .unwrap()
        .contains("they gave my project"));
    // A smaller --top shows fewer of the stories it keeps: 0, a report without their words.
    run(
        dir.path(),
        &["report", &summary, "--top", "0", "-o", "none.txt"],
        &[],
    );
    let none = std::fs::read_to_string(dir.path().join("none.txt")).unwrap();
    assert!(!none.contains("they gave my project"), "{none}");
    run(
        dir.path(),
        &["report", &summary, "--top", "1", "-o", "one.json"],
        &[],
    );
    let one: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("one.json")).unwrap()).unwrap();
    assert_eq!(one["settings"]["top_stories"], 1);
    for scenario in one["scenarios"].as_array().unwrap() {
        assert!(scenario["representative"].as_array().unwrap().len() <= 1);
        assert!(scenario["least_certain"].as_array().unwrap().len() <= 1);
    }
    // The values it was made with change nothing, and are taken (a script may give them every
    // time).
    let top = failup::report::stats::DEFAULT_TOP.to_string();
    let same = [
        "report",
        &summary,
        "--top",
        &top,
        "--min-group-size",
        "20",
        "-o",
        "s.txt",
    ];
    let at = [("SOURCE_DATE_EPOCH", "0")];
    run(dir.path(), &["report", &summary, "-o", "r.txt"], &at);
    run(dir.path(), &same, &at);
    assert_eq!(
        std::fs::read(dir.path().join("s.txt")).unwrap(),
        std::fs::read(dir.path().join("r.txt")).unwrap()
    );
}

/// `merge -o -` with standard output appended to one of its parts is refused, as `-o PART` is:
/// the part would change under the merge.
#[test]
fn merge_refuses_standard_output_appended_to_a_part() {
    let dir = tempfile::tempdir().unwrap();
    let stories = "id,text\n1,They gave the lead to the new hire.\n2,We lost the pitch.\n";
    std::fs::write(dir.path().join("in.csv"), stories).unwrap();
    for i in 0..2 {
        let shard = format!("{i}/2");
        let part = format!("p{i}.csv");
        let args = ["classify", "in.csv", "-q", "--shard", &shard, "-o", &part];
        let out = failup_env(dir.path(), &args, None, &[HASHED]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let before = std::fs::read(dir.path().join("p0.csv")).unwrap();
    let append = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("p0.csv"))
        .unwrap();
    let out = failup_command()
        .args(["merge", "--rows", "p0.csv", "p1.csv", "-o", "-"])
        .current_dir(dir.path())
        .stdout(append)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("standard output is the input file"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(dir.path().join("p0.csv")).unwrap(), before);
}

/// A summary carries no checksum, so what no run writes is refused by name: more stories
/// classified than read, a scenario left out, a confidence past 1, a shard out of range.
#[test]
fn an_edited_summary_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path());
    let summary = shard_with_summary(dir.path(), 0, 1, "r", &[]);
    let text = std::fs::read_to_string(dir.path().join(&summary)).unwrap();
    run(dir.path(), &["report", &summary], &[]);
    type Edit = fn(&mut serde_json::Value);
    let edits: [(Edit, &str); 6] = [
        (
            |s| s["builder"]["scenarios"][0]["count"] = 999.into(),
            "counts its stories in ways that disagree",
        ),
        (
            |s| {
                let scenarios = s["builder"]["scenarios"].as_array_mut().unwrap();
                scenarios.truncate(2);
            },
            "its tables are not all for the same 2 scenarios",
        ),
        (
            |s| s["builder"]["scenarios"][0]["confidences"][0] = 5.0.into(),
            "a confidence of 5, outside 0 to 1",
        ),
        (
            |s| s["shards"] = serde_json::json!([5]),
            "its shards [5] are not shards of 1",
        ),
        // A whole run's summary edited to be shard 0 of 3, which holds 8 of the 23 rows.
        (
            |s| s["shard_count"] = 3.into(),
            "it counts 23 rows where shard 0/3 of its input of 23 rows should hold 8",
        ),
        // Named up to ten, however many a file claims.
        (
            |s| s["shards"] = (0..12).collect::<Vec<u64>>().into(),
            "its shards [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, … 12 in all] are not shards of 1",
        ),
    ];
    for (edit, says) in edits {
        let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
        edit(&mut value);
        std::fs::write(dir.path().join("edited.json"), value.to_string()).unwrap();
        let said = refused(dir.path(), &["report", "edited.json"]);
        assert!(said.contains(says), "{says}: {said}");
    }
}

/// The files a run writes beside `-o` (its partial file, checkpoint and shard record) replace
/// whatever has their name when the run ends, so another output or the input named like one is
/// refused before the work, and left as it was.
#[test]
fn outputs_or_an_input_named_like_the_files_beside_o_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path());
    let summary = refused(
        dir.path(),
        &[
            "classify",
            "in.csv",
            "--shard",
            "0/2",
            "-o",
            "p.csv",
            "--summary-out",
            "p.csv.shard",
        ],
    );
    assert!(
        summary.contains("--summary-out p.csv.shard: that is how failup names a shard's record"),
        "{summary}"
    );
    let report = refused(
        dir.path(),
        &[
            "classify",
            "in.csv",
            "-o",
            "o.csv",
            "--report",
            ".o.csv.partial",
        ],
    );
    assert!(
        report.contains("that is how failup names an interrupted run's partial output"),
        "{report}"
    );
    let checkpoint = refused(
        dir.path(),
        &[
            "classify",
            "in.csv",
            "-o",
            "o.csv",
            "--summary-out",
            ".o.csv.partial.json",
        ],
    );
    assert!(
        checkpoint.contains("that is how failup names an interrupted run's checkpoint"),
        "{checkpoint}"
    );
    std::fs::copy(dir.path().join("in.csv"), dir.path().join("x.csv.shard")).unwrap();
    for command in ["classify", "embed"] {
        let output = if command == "embed" {
            "x.jsonl"
        } else {
            "x.csv"
        };
        let mut args = vec![command, "x.csv.shard", "--shard", "0/2", "-o", output];
        if command == "embed" {
            args[1] = "x.jsonl.shard";
            std::fs::copy(dir.path().join("in.csv"), dir.path().join("x.jsonl.shard")).unwrap();
        }
        let input = refused(dir.path(), &args);
        assert!(
            input.contains("is the input file, and this run writes -o's shard record"),
            "{input}"
        );
    }
    let kept = std::fs::read(dir.path().join("x.csv.shard")).unwrap();
    assert_eq!(kept, std::fs::read(dir.path().join("in.csv")).unwrap());
    for name in [
        "p.csv",
        "p.csv.shard",
        "o.csv",
        ".o.csv.partial",
        ".o.csv.partial.json",
        "x.csv",
    ] {
        assert!(!dir.path().join(name).exists(), "{name} was written");
    }
    // Without a shard this run writes no record, but a sharded run writing q.csv would
    // replace the file: the name is refused all the same.
    let args = [
        "classify",
        "in.csv",
        "-o",
        "q.csv",
        "--summary-out",
        "q.csv.shard",
    ];
    let said = refused(dir.path(), &args);
    assert!(said.contains("how failup names a shard's record"), "{said}");
}

/// A shard's partial summary among `merge --rows`'s parts is named for what it is, with the
/// command that merges summaries; it was told as a part written with other columns.
#[test]
fn a_summary_among_rows_to_merge_is_named() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path());
    for i in 0..2 {
        let (part, summary) = (format!("p{i}.csv"), format!("s{i}.json"));
        let shard = format!("{i}/2");
        let args = [
            "classify",
            "in.csv",
            "--shard",
            &shard,
            "-o",
            &part,
            "--summary-out",
            &summary,
        ];
        run(dir.path(), &args, &[]);
    }
    let err = refused(
        dir.path(),
        &["merge", "--rows", "p0.csv", "s1.json", "-o", "m.csv"],
    );
    assert!(
        err.contains("s1.json is a partial summary") && err.contains("without --rows"),
        "{err}"
    );
}

/// merge keeps the parts' format, so an output named for the other one is refused: JSON Lines
/// were written into `merged.csv` without a word.
#[test]
fn a_merge_output_named_for_the_other_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path());
    for i in 0..2 {
        let shard = format!("{i}/2");
        run(
            dir.path(),
            &[
                "classify",
                "in.csv",
                "--shard",
                &shard,
                "-o",
                &format!("p{i}.jsonl"),
            ],
            &[],
        );
        run(
            dir.path(),
            &[
                "classify",
                "in.csv",
                "--shard",
                &shard,
                "-o",
                &format!("p{i}.csv"),
            ],
            &[],
        );
    }
    let err = refused(
        dir.path(),
        &["merge", "--rows", "p0.jsonl", "p1.jsonl", "-o", "m.csv"],
    );
    assert!(
        err.contains("the parts are JSON Lines") && err.contains("name it .jsonl"),
        "{err}"
    );
    let err = refused(
        dir.path(),
        &["merge", "--rows", "p0.csv", "p1.csv", "-o", "m.jsonl"],
    );
    assert!(
        err.contains("the parts are CSV") && err.contains("name it .csv"),
        "{err}"
    );
    assert!(!dir.path().join("m.csv").exists() && !dir.path().join("m.jsonl").exists());
    // A summary's or a report's name: `-o part-1.json` replaced a shard's partial summary.
    std::fs::write(dir.path().join("s1.json"), "{\"kept\": true}").unwrap();
    for (name, kind) in [
        ("s1.json", "JSON"),
        ("r.html", "a report"),
        ("m.tsv", "tab-"),
    ] {
        let err = refused(
            dir.path(),
            &["merge", "--rows", "p0.csv", "p1.csv", "-o", name],
        );
        assert!(err.contains(&format!("named for {kind}")), "{name}: {err}");
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("s1.json")).unwrap(),
        "{\"kept\": true}"
    );
    run(
        dir.path(),
        &["merge", "--rows", "p0.jsonl", "p1.jsonl", "-o", "m.jsonl"],
        &[],
    );
    run(
        dir.path(),
        &["merge", "--rows", "p0.csv", "p1.csv", "-o", "merged"],
        &[],
    );
}

/// A merge stopped by Ctrl-C or a scheduler's SIGTERM has no `--resume`: it leaves no output
/// and no hidden partial file behind (the signal's default had left one as large as the
/// merge had got), and says so. The merge waits at a known row (FAILUP_TEST_PAUSE_AFTER_ROWS),
/// so where it stops never depends on timing.
#[test]
fn an_interrupted_merge_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path());
    let d = dir.path();
    let parts: Vec<String> = (0..2).map(|i| shard(d, i, 2, &[])).collect();
    for signal in ["INT", "TERM"] {
        // The signals are caught before the partial output is made; the merge then waits
        // at row 5 of 23, or stops sooner if the signal comes first.
        let child = start_merge(d, &parts, &[("FAILUP_TEST_PAUSE_AFTER_ROWS", "5")]);
        send(signal, &child);
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(130), "{signal}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("merge stopped; nothing was written to merged.csv"),
            "{}",
            stderr(&out)
        );
        let left = merged_files(d);
        assert!(left.is_empty(), "{signal}: {left:?}");
    }
    // Not stopped, the same merge completes.
    run(
        d,
        &["merge", "--rows", &parts[0], &parts[1], "-o", "merged.csv"],
        &[],
    );
    assert!(d.join("merged.csv").exists());
}

/// A merge stalled on a part that stops coming (a pipe whose writer hangs) does not see the
/// first signal; the second ends it at once and takes the rows written so far with it, where
/// it had left them in a hidden partial file.
#[cfg(unix)]
#[test]
fn a_merge_ended_by_a_second_signal_leaves_nothing_behind() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path());
    let d = dir.path();
    let parts: Vec<String> = (0..2).map(|i| shard(d, i, 2, &[])).collect();
    let rows = std::fs::read(d.join(&parts[1])).unwrap();
    std::fs::remove_file(d.join(&parts[1])).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(d.join(&parts[1]))
        .status();
    assert!(made.unwrap().success());
    // The writer sends the part's header and first row, then hangs until the merge is over.
    let fifo = d.join(&parts[1]);
    let (done, hang) = std::sync::mpsc::channel::<()>();
    let writer = std::thread::spawn(move || {
        let mut pipe = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
        let second_line_end = rows.iter().enumerate().filter(|(_, &b)| b == b'\n').nth(1);
        pipe.write_all(&rows[..=second_line_end.unwrap().0])
            .unwrap();
        let _ = hang.recv();
    });
    let child = start_merge(d, &parts, &[]);
    // Time to reach the hanging part; the outcome asked for is the same if it has not.
    std::thread::sleep(std::time::Duration::from_millis(300));
    for _ in 0..2 {
        send("INT", &child);
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let out = child.wait_with_output().unwrap();
    done.send(()).unwrap();
    writer.join().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let left = merged_files(d);
    assert!(left.is_empty(), "{left:?}");
}

/// `merge --rows` of `parts` in `d` to `merged.csv`, started with the test embedder and `env`,
/// once its hidden partial file is there.
fn start_merge(d: &Path, parts: &[String], env: &[(&str, &str)]) -> std::process::Child {
    let mut cmd = failup_command();
    cmd.args(["merge", "--rows", &parts[0], &parts[1], "-o", "merged.csv"])
        .env(HASHED.0, HASHED.1)
        .envs(env.iter().copied())
        .current_dir(d)
        .stderr(std::process::Stdio::piped());
    default_stop_signals(&mut cmd);
    let child = cmd.spawn().unwrap();
    let start = std::time::Instant::now();
    while !d.join(".merged.csv.partial").exists() {
        assert!(start.elapsed().as_secs() < 60, "the merge never started");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child
}

/// Sends `signal` (`INT`, `TERM`) to `child`.
fn send(signal: &str, child: &std::process::Child) {
    let kill = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status();
    assert!(kill.unwrap().success());
}

/// The files in `d` a merge to `merged.csv` has left: the output and its hidden partial.
fn merged_files(d: &Path) -> Vec<String> {
    std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("merged"))
        .collect()
}
