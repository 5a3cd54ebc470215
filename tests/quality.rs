//! Classification quality features: long-story chunking, few-shot examples and profiles,
//! cross-validation, calibration, `also` and explanations. These run the real model.

mod common;

use common::*;
use serde_json::Value;

fn long_story() -> String {
    std::fs::read_to_string(fixture("long_story.txt")).unwrap()
}

fn csv_of(rows: &[(&str, &str)]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["id", "text"]).unwrap();
    for (id, text) in rows {
        w.write_record([id, text]).unwrap();
    }
    String::from_utf8(w.into_inner().unwrap()).unwrap()
}

fn embed_one(dir: &std::path::Path, long_text: &str) -> Value {
    let out = failup_in(
        dir,
        &["embed", "in.csv", "-q", "--long-text", long_text],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    serde_json::from_str(stdout(&out).lines().next().unwrap()).unwrap()
}

#[test]
fn a_1500_word_story_is_embedded_in_several_windows_and_stays_unit_length() {
    let story = long_story();
    assert!(story.split_whitespace().count() >= 1500);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), csv_of(&[("long", &story)])).unwrap();
    let chunked = embed_one(dir.path(), "chunk");
    let tokens = chunked["tokens"].as_u64().unwrap();
    let chunks = chunked["chunks"].as_u64().unwrap();
    assert!(tokens > 1500, "{tokens}");
    // 254 story tokens per window, 32 shared with the next: at least tokens / 222 windows.
    assert!(
        chunks >= tokens / 222 && chunks >= 6,
        "{chunks} windows for {tokens} tokens"
    );
    assert_eq!(chunked["truncated"], Value::Bool(false));
    let v: Vec<f64> = chunked["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(v.len(), 384);
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");

    let truncated = embed_one(dir.path(), "truncate");
    assert_eq!(truncated["chunks"].as_u64(), Some(1));
    assert_eq!(truncated["truncated"], Value::Bool(true));
    // The two embeddings differ: chunking read the rest of the story.
    let t: Vec<f64> = truncated["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    let cos: f64 = v.iter().zip(&t).map(|(a, b)| a * b).sum();
    assert!(cos < 0.999, "{cos}");
}

#[test]
fn chunking_reads_the_end_of_a_long_story() {
    // The first ~600 words are background; the lost pitch is told after the model's first
    // window. Truncation cannot see it, chunking must.
    let story = long_story();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), csv_of(&[("long", &story)])).unwrap();
    let out = failup_in(
        dir.path(),
        &["classify", "in.csv", "-q", "--format", "jsonl"],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let row: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(row["category"], "lost_pitch", "{row}");
    assert!(row["chunks"].as_u64().unwrap() >= 6);
    let out = failup_in(
        dir.path(),
        &[
            "classify",
            "in.csv",
            "-q",
            "--format",
            "jsonl",
            "--long-text",
            "truncate",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let row: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_ne!(
        row["category"], "lost_pitch",
        "truncation saw the pitch: {row}"
    );
}

/// Macro-F1 of `failup eval` on the long-stories fixture, with `extra` flags.
fn long_stories_macro_f1(dir: &std::path::Path, extra: &[&str]) -> f64 {
    let input = fixture("long_stories.csv");
    let mut args = vec!["eval", input.to_str().unwrap(), "--label-column", "label"];
    args.extend(["--format", "json", "-q"]);
    args.extend(extra);
    let out = failup_in(dir, &args, None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    report["macro_f1"].as_f64().unwrap()
}

#[test]
fn a_verdict_in_one_sentence_decides_a_long_story() {
    // Each fixture story is two paragraphs of background, then the setback in a sentence or
    // two. Averaged over the whole story the verdict drowns; scored sentence by sentence, it
    // decides.
    let dir = tempfile::tempdir().unwrap();
    let taxonomy = std::fs::read_to_string(repo_path("data/taxonomy.toml")).unwrap();
    assert!(taxonomy.contains("\nsentence_weight = 0.75\n"));
    let whole_only = taxonomy.replace("\nsentence_weight = 0.75\n", "\nsentence_weight = 0\n");
    std::fs::write(dir.path().join("whole.toml"), whole_only).unwrap();

    let by_sentence = long_stories_macro_f1(dir.path(), &[]);
    let whole = long_stories_macro_f1(dir.path(), &["--taxonomy", "whole.toml"]);
    assert!(by_sentence >= 0.8, "with sentence evidence: {by_sentence}");
    assert!(
        by_sentence >= whole + 0.2,
        "sentence evidence {by_sentence} against the whole story alone {whole}"
    );
}

#[test]
fn the_embed_command_keeps_the_whole_story_embedding() {
    // `classify` reads a story by sentence; `embed` must still give the reference's embedding
    // of the whole text, which differs from the mean of its sentences.
    let text = "I led the bid for the hospital contract for two months. We rehearsed every \
                slide twice. In the end the board chose the incumbent supplier.";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), csv_of(&[("s", text)])).unwrap();
    let row = embed_one(dir.path(), "chunk");
    assert_eq!(row["chunks"].as_u64(), Some(1), "{row}");

    let engine = failup::pipeline::Engine::load(&failup::pipeline::EngineOptions {
        model: None,
        taxonomy: None,
        backend: failup::embed::Backend::Rten,
        threads: 1,
        batch_size: None,
        long_text: failup::chunk::LongText::Chunk,
        precision: Some(failup::embed::Precision::Fp32),
    })
    .unwrap();
    let read = engine.embed_texts(&[text]).unwrap().remove(0);
    let sentences = read.sentences.expect("the classifier reads sentences");
    assert_eq!(sentences.len(), failup::sentences::split(text).len());
    assert_eq!(sentences.len(), 3);
    let by_sentence = read.embedding.unwrap();
    let whole: Vec<f32> = row["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    let cosine = failup::vector::cosine(&whole, &by_sentence);
    assert!(cosine < 0.99, "{cosine}");

    // The story's vector is its sentences' embeddings (as `embed` gives them one by one),
    // weighted by their tokens without [CLS] and [SEP].
    let rows: Vec<(String, String)> = failup::sentences::split(text)
        .into_iter()
        .enumerate()
        .map(|(i, s)| (i.to_string(), s))
        .collect();
    let refs: Vec<(&str, &str)> = rows.iter().map(|(i, s)| (i.as_str(), s.as_str())).collect();
    std::fs::write(dir.path().join("in.csv"), csv_of(&refs)).unwrap();
    let out = failup_in(dir.path(), &["embed", "in.csv", "-q"], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut mean = vec![0f32; whole.len()];
    for (line, own) in stdout(&out).lines().zip(&sentences) {
        let r: Value = serde_json::from_str(line).unwrap();
        let weight = r["tokens"].as_u64().unwrap() as f32 - 2.0;
        let e: Vec<f32> = r["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        assert!(failup::vector::cosine(&e, own) > 0.99999);
        for (m, x) in mean.iter_mut().zip(&e) {
            *m += weight * x;
        }
    }
    let cosine = failup::vector::cosine(&mean, &by_sentence);
    assert!(cosine > 0.99999, "{cosine}");
}

/// Fits a profile on the few-shot fixture with `failup train`, written to `dir/name`.
fn train_fixture_profile(dir: &std::path::Path, name: &str, env: &[(&str, &str)]) {
    let examples = fixture("fewshot_examples.csv");
    let out = failup_env(
        dir,
        &["train", examples.to_str().unwrap(), "-o", name],
        None,
        env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn few_shot_examples_move_a_story_zero_shot_gets_wrong() {
    // In this user's world an audition is a pitch: zero-shot reads "picked another actor for
    // the lead" as being passed over; eight examples of theirs teach it otherwise.
    let dir = tempfile::tempdir().unwrap();
    let story = "The casting director picked another actor for the lead after my audition.";
    std::fs::write(dir.path().join("in.csv"), csv_of(&[("a", story)])).unwrap();
    let examples = fixture("fewshot_examples.csv");
    let category = |extra: &[&str]| {
        let mut args = vec!["classify", "in.csv", "-q", "--format", "jsonl", "--explain"];
        args.extend_from_slice(extra);
        let out = failup_in(dir.path(), &args, None);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let row: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
        row
    };
    let zero = category(&[]);
    assert_eq!(zero["category"], "passed_over", "{zero}");
    let few = category(&["--examples", examples.to_str().unwrap()]);
    assert_eq!(few["category"], "lost_pitch", "{few}");
    assert!(
        few["nearest"].as_str().unwrap().starts_with("example:"),
        "{few}"
    );

    // The same through a profile fitted once with `failup train`.
    let profile = dir.path().join("profile.json");
    train_fixture_profile(dir.path(), "profile.json", &[]);
    let p: Value = serde_json::from_str(&std::fs::read_to_string(&profile).unwrap()).unwrap();
    for key in [
        "model",
        "model_sha256",
        "taxonomy_sha256",
        "training_sha256",
    ] {
        assert!(p[key].as_str().is_some_and(|s| !s.is_empty()), "{key}");
    }
    let via_profile = category(&["--profile", profile.to_str().unwrap()]);
    assert_eq!(via_profile["category"], "lost_pitch", "{via_profile}");
    assert_eq!(via_profile["confidence"], few["confidence"]);
}

#[test]
fn unknown_example_labels_are_an_error_listing_the_valid_ones() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ex.csv"),
        "text,label\n\"We lost the bid.\",lost_pitch\n\"I got fired.\",fired\n",
    )
    .unwrap();
    let out = failup_in(dir.path(), &["train", "ex.csv", "-o", "p.json"], None);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("fired") && err.contains("passed_over, pivot_regret"),
        "{err}"
    );
    assert!(!dir.path().join("p.json").exists());
}

#[test]
fn a_profile_is_refused_against_another_taxonomy() {
    let dir = tempfile::tempdir().unwrap();
    train_fixture_profile(dir.path(), "p.json", &[HASHED]);
    // The same taxonomy with one prototype reworded.
    let toml = std::fs::read_to_string(repo_path("data/taxonomy.toml")).unwrap();
    let changed = toml.replacen(
        "We lost the bid I was in charge of",
        "We lost the big bid I was in charge of",
        1,
    );
    assert_ne!(toml, changed);
    std::fs::write(dir.path().join("t.toml"), changed).unwrap();
    std::fs::write(
        dir.path().join("in.csv"),
        csv_of(&[("a", "We lost the pitch.")]),
    )
    .unwrap();
    let out = failup_env(
        dir.path(),
        &[
            "classify",
            "in.csv",
            "-q",
            "--profile",
            "p.json",
            "--taxonomy",
            "t.toml",
        ],
        None,
        &[HASHED],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("another taxonomy"),
        "{}",
        stderr(&out)
    );
    // The unchanged taxonomy, given as a file, is accepted.
    std::fs::write(dir.path().join("same.toml"), toml).unwrap();
    let out = failup_env(
        dir.path(),
        &[
            "classify",
            "in.csv",
            "-q",
            "--profile",
            "p.json",
            "--taxonomy",
            "same.toml",
        ],
        None,
        &[HASHED],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn cross_validation_never_scores_a_story_with_a_head_that_saw_it() {
    use failup::eval::{cross_validate_indexes, stratified_folds};
    let gold: Vec<usize> = (0..103).map(|i| i % 4).collect();
    let alone: Vec<usize> = (0..103).collect();
    let folds = stratified_folds(&gold, &alone, 5, 7);
    // Stratified: each fold holds 20 or 21 stories, each label spread within one.
    for f in 0..5 {
        let size = folds.iter().filter(|&&x| x == f).count();
        assert!((20..=21).contains(&size), "fold {f}: {size}");
        for l in 0..4 {
            let n = (0..gold.len())
                .filter(|&i| folds[i] == f && gold[i] == l)
                .count();
            assert!((4..=6).contains(&n), "fold {f} label {l}: {n}");
        }
    }
    let predictions = cross_validate_indexes(
        gold.len(),
        &folds,
        5,
        |train| train.to_vec(),
        |train, i| {
            assert!(
                !train.contains(&i),
                "story {i} scored by a model trained on it"
            );
            train.len()
        },
    );
    assert_eq!(predictions.len(), gold.len());
    // Every story was scored exactly once, by a model trained on all the other folds.
    for (i, n) in predictions.iter().enumerate() {
        let fold_size = folds.iter().filter(|&&x| x == folds[i]).count();
        assert_eq!(*n, gold.len() - fold_size);
    }
}

#[test]
fn eval_cv_reports_cross_validated_scores() {
    let out = failup_env(
        &repo_path(""),
        &[
            "eval",
            fixture("labelled.csv").to_str().unwrap(),
            "--cv",
            "2",
            "--examples-from-self",
            "--format",
            "json",
            "-q",
            "--errors",
            "3",
        ],
        None,
        &[HASHED],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(r["mode"].as_str().unwrap().contains("2-fold"));
    assert!(r["macro_f1"].as_f64().unwrap() > 0.0);
    assert!(r["ece"].as_f64().is_some());
    assert!(r["reliability"].as_array().is_some_and(|b| !b.is_empty()));
    assert!(r["errors"].as_array().unwrap().len() <= 3);
}

fn ece_of(args: &[&str]) -> f64 {
    let out = failup(args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r: Value = serde_json::from_str(&stdout(&out)).unwrap();
    r["ece"].as_f64().unwrap()
}

#[test]
fn calibration_lowers_the_expected_calibration_error() {
    // An uncalibrated taxonomy: the built-in one with a far too small temperature and no Platt
    // recalibration, so its confidences are all near 1.
    let dir = tempfile::tempdir().unwrap();
    let toml = std::fs::read_to_string(repo_path("data/taxonomy.toml")).unwrap();
    let mut raw = String::new();
    for line in toml.lines() {
        let line = if line.starts_with("temperature =") {
            "temperature = 0.005"
        } else if line.starts_with("confidence_slope =") {
            "confidence_slope = 1.0"
        } else if line.starts_with("confidence_bias =") {
            "confidence_bias = 0.0"
        } else {
            line
        };
        raw += line;
        raw.push('\n');
    }
    let tax = dir.path().join("raw.toml");
    std::fs::write(&tax, raw).unwrap();
    // Calibrate on half of data/calibration.csv, score on the other half.
    let all = std::fs::read_to_string(repo_path("data/calibration.csv")).unwrap();
    let mut r = csv::Reader::from_reader(all.as_bytes());
    let (mut fit, mut held) = (
        csv::Writer::from_writer(Vec::new()),
        csv::Writer::from_writer(Vec::new()),
    );
    fit.write_record(r.headers().unwrap()).unwrap();
    held.write_record(r.headers().unwrap()).unwrap();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.unwrap();
        if i % 2 == 0 {
            fit.write_record(&rec)
        } else {
            held.write_record(&rec)
        }
        .unwrap();
    }
    let (calib, held_out) = (dir.path().join("fit.csv"), dir.path().join("held.csv"));
    std::fs::write(&calib, fit.into_inner().unwrap()).unwrap();
    std::fs::write(&held_out, held.into_inner().unwrap()).unwrap();
    let profile = dir.path().join("cal.json");
    let out = failup(&[
        "calibrate",
        calib.to_str().unwrap(),
        "-o",
        profile.to_str().unwrap(),
        "--taxonomy",
        tax.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let base = [
        "eval",
        held_out.to_str().unwrap(),
        "--format",
        "json",
        "-q",
        "--taxonomy",
        tax.to_str().unwrap(),
    ];
    let before = ece_of(&base);
    let mut with = base.to_vec();
    with.extend(["--profile", profile.to_str().unwrap()]);
    let after = ece_of(&with);
    assert!(after < before, "ECE {before} -> {after}");
}

#[test]
fn also_and_explain_columns() {
    let dir = tempfile::tempdir().unwrap();
    let story = "Passed over for the promotion again, in favour of a junior, and the new business \
                 pitch I ran last week went to the competition.";
    std::fs::write(dir.path().join("in.csv"), csv_of(&[("a", story)])).unwrap();
    let out = failup_in(dir.path(), &["classify", "in.csv", "-q", "--explain"], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    for col in ["also", "chunks", "nearest", "nearest_similarity"] {
        assert!(header.iter().any(|h| h == col), "{col} in {header:?}");
    }
    let row = r.records().next().unwrap().unwrap();
    let get = |name: &str| row[header.iter().position(|h| h == name).unwrap()].to_string();
    let nearest = get("nearest");
    assert!(nearest.contains('#'), "{nearest}");
    let sim: f64 = get("nearest_similarity").parse().unwrap();
    assert!(sim > 0.0 && sim <= 1.0);
    // Two scenarios told at once: the second is named in `also`.
    let (cat, also) = (get("category"), get("also"));
    let mut pair = [cat.as_str(), also.as_str()];
    pair.sort();
    assert_eq!(pair, ["lost_pitch", "passed_over"], "{cat} / {also}");

    let out = failup_in(dir.path(), &["advise", "--explain", story], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("nearest: {nearest}")),
        "{}",
        stdout(&out)
    );
}

#[test]
fn explain_names_the_sentence_that_decided_a_long_story() {
    let dir = tempfile::tempdir().unwrap();
    let verdict = "Then on Monday the regional lead job went to a guy who started in March.";
    let story = format!(
        "I have worked at the same logistics firm for eleven years, mostly on the night shift. \
         My kids are in secondary school now and my wife works days at the hospital. \
         Last spring I finished a part-time degree in operations management. {verdict} \
         I drove home and sat in the car for a while before going in."
    );
    let hello = "Hello, and thanks for reading.";
    std::fs::write(
        dir.path().join("in.csv"),
        csv_of(&[("long", &story), ("hi", hello)]),
    )
    .unwrap();
    let out = failup_in(dir.path(), &["classify", "in.csv", "-q", "--explain"], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let header = r.headers().unwrap().clone();
    assert_eq!(header.iter().next_back(), Some("evidence"), "{header:?}");
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    let column = |row: &csv::StringRecord, name: &str| {
        row[header.iter().position(|h| h == name).unwrap()].to_string()
    };
    assert_eq!(column(&rows[0], "category"), "passed_over");
    assert_eq!(column(&rows[0], "evidence"), verdict);
    // Off-topic text reads like no scenario, so no sentence speaks for its verdict.
    assert_eq!(column(&rows[1], "category"), "other");
    assert_eq!(column(&rows[1], "evidence"), "");

    let out = failup_in(
        dir.path(),
        &["classify", "in.csv", "-q", "--explain", "--format", "jsonl"],
        None,
    );
    let first: Value = serde_json::from_str(stdout(&out).lines().next().unwrap()).unwrap();
    assert_eq!(first["evidence"], verdict);

    let out = failup_in(dir.path(), &["advise", "--explain", &story], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let shown = format!(
        "evidence: \"{verdict}\" (of the story's 5 sentences, the one that reads most like \
         passed_over)"
    );
    assert!(stdout(&out).contains(&shown), "{}", stdout(&out));

    // The first row's cells under the shipped taxonomy with one setting changed.
    let taxonomy = std::fs::read_to_string(repo_path("data/taxonomy.toml")).unwrap();
    let first_row_with = |setting: &str, changed: &str| {
        assert!(taxonomy.contains(setting), "{setting}");
        let name = "changed.toml";
        std::fs::write(dir.path().join(name), taxonomy.replace(setting, changed)).unwrap();
        let args = ["classify", "in.csv", "-q", "--explain", "--taxonomy", name];
        let out = failup_in(dir.path(), &args, None);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let text = stdout(&out);
        let mut r = csv::Reader::from_reader(text.as_bytes());
        r.records().next().unwrap().unwrap()
    };

    // A story that a rule sends to `other` past a higher score rests on no sentence of its.
    let row = first_row_with("\nmin_margin = -0.05\n", "\nmin_margin = 0.9\n");
    assert_eq!((&row[1], &row[3]), ("other", "passed_over"), "{row:?}");
    assert!(row[4].starts_with('-'), "margin {}", &row[4]);
    assert_eq!(row.iter().next_back(), Some(""), "{row:?}");

    // A story read whole has no sentence to name.
    let row = first_row_with("\nsentence_weight = 0.75\n", "\nsentence_weight = 0\n");
    assert_eq!(row.iter().next_back(), Some(""), "{row:?}");
}

#[test]
fn the_report_counts_second_scenarios() {
    let dir = tempfile::tempdir().unwrap();
    let rows = [
        (
            "r1",
            "Passed over for the promotion again, in favour of a junior, and the new business \
             pitch I ran last week went to the competition.",
        ),
        ("r2", "I was laid off on Friday."),
    ];
    std::fs::write(dir.path().join("in.csv"), csv_of(&rows)).unwrap();
    let out = failup_in(
        dir.path(),
        &[
            "classify", "in.csv", "-q", "-o", "out.csv", "--report", "r.json",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("r.json")).unwrap()).unwrap();
    assert_eq!(r["totals"]["also"], 1, "{}", r["totals"]);
    let pair = &r["totals"]["also_pairs"][0];
    let mut names = [
        pair["category"].as_str().unwrap(),
        pair["also"].as_str().unwrap(),
    ];
    names.sort();
    assert_eq!(names, ["lost_pitch", "passed_over"]);
    // `failup report` on the written file counts the same.
    let out = failup_in(dir.path(), &["report", "out.csv", "--format", "json"], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let again: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(again["totals"]["also"], 1);
}

#[test]
fn a_profile_of_the_old_format_is_refused_with_a_way_out() {
    let dir = tempfile::tempdir().unwrap();
    train_fixture_profile(dir.path(), "p.json", &[HASHED]);
    // Format 1 heads had no attention query; such a file must not be half-read.
    let mut p: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("p.json")).unwrap()).unwrap();
    assert_eq!(p["format"], 2);
    assert_eq!(
        p["head"]["query"].as_array().map(Vec::len),
        Some(failup::embed::HASHED_DIM)
    );
    p["format"] = 1.into();
    p["head"].as_object_mut().unwrap().remove("query");
    std::fs::write(dir.path().join("old.json"), p.to_string()).unwrap();
    std::fs::write(
        dir.path().join("in.csv"),
        csv_of(&[("a", "We lost the pitch.")]),
    )
    .unwrap();
    let out = failup_env(
        dir.path(),
        &["classify", "in.csv", "-q", "--profile", "old.json"],
        None,
        &[HASHED],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("format 1") && err.contains("failup train") && !err.contains("newer"),
        "{err}"
    );
    // One from a later failup, with a key this one does not know, is told as that, not as a
    // misspelt key.
    let mut later = p.clone();
    later["format"] = 3.into();
    later["a_later_setting"] = 1.into();
    std::fs::write(dir.path().join("later.json"), later.to_string()).unwrap();
    let out = failup_env(
        dir.path(),
        &["classify", "in.csv", "-q", "--profile", "later.json"],
        None,
        &[HASHED],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("profile format 3 is not supported")
            && err.contains("a newer failup wrote it: update this one")
            && !err.contains("unknown key"),
        "{err}"
    );

    // A current profile whose head was cut short is refused too, not half-applied.
    p["format"] = 2.into();
    p["head"]["query"] = serde_json::json!([0.0, 0.0]);
    std::fs::write(dir.path().join("cut.json"), p.to_string()).unwrap();
    let out = failup_env(
        dir.path(),
        &["classify", "in.csv", "-q", "--profile", "cut.json"],
        None,
        &[HASHED],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("cut.json") && err.contains("refit it with failup train"),
        "{err}"
    );
}

#[test]
fn text_like_no_prototype_is_other_and_a_warning_counts_it() {
    // Texts of data/off_topic.csv's `check` set (the `fit` set chose min_relevance) that
    // centring alone reads as a named scenario, beside the labelled career stories.
    let dir = tempfile::tempdir().unwrap();
    let off_topic = std::fs::read_to_string(repo_path("data/off_topic.csv")).unwrap();
    let (_, rows) = parse_csv(&off_topic);
    let picked = ["otb01", "otb03", "otb17", "otb20", "otb24"];
    let chosen: Vec<(&str, &str)> = rows
        .iter()
        .filter(|r| picked.contains(&r[0].as_str()))
        .inspect(|r| assert_eq!(r[1], "check", "{r:?}"))
        .map(|r| (r[0].as_str(), r[2].as_str()))
        .collect();
    assert_eq!(chosen.len(), picked.len());
    std::fs::write(dir.path().join("off.csv"), csv_of(&chosen)).unwrap();
    let taxonomy = std::fs::read_to_string(repo_path("data/taxonomy.toml")).unwrap();
    let rule = "\nmin_relevance = 0.25\n";
    assert!(taxonomy.contains(rule));
    let without = taxonomy.replace(rule, "\nmin_relevance = -1\n");
    std::fs::write(dir.path().join("without.toml"), without).unwrap();
    let categories = |input: &str, extra: &[&str]| {
        let mut args = vec!["classify", input, "-o", "-"];
        args.extend(extra);
        let out = failup_in(dir.path(), &args, None);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let (header, rows) = parse_csv(&stdout(&out));
        let c = header.iter().position(|h| h == "category").unwrap();
        let cats: Vec<String> = rows.iter().map(|r| r[c].clone()).collect();
        (cats, stdout(&out), stderr(&out))
    };

    let (with_rule, _, err) = categories("off.csv", &[]);
    assert!(with_rule.iter().all(|c| c == "other"), "{with_rule:?}");
    assert!(
        err.contains(
            "warning: 5 rows read like none of the scenarios' prototypes (the first at line 2)"
        ),
        "{err}"
    );
    let (unruled, _, err) = categories("off.csv", &["--taxonomy", "without.toml"]);
    assert!(unruled.iter().all(|c| c != "other"), "{unruled:?}");
    assert!(!err.contains("like none"), "{err}");
    // --explain shows why: each row's relevance, below the threshold.
    let (_, explained, _) = categories("off.csv", &["--explain"]);
    let (header, rows) = parse_csv(&explained);
    let r = header.iter().position(|h| h == "relevance").unwrap();
    for row in &rows {
        let relevance: f64 = row[r].parse().unwrap();
        assert!((0.0..0.25).contains(&relevance), "{row:?}");
    }
    // advise says so of one story.
    let out = failup_in(dir.path(), &["advise", "--explain", chosen[2].1], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let said = stdout(&out);
    assert!(
        said.starts_with("Not read as a career setback (other)"),
        "{said}"
    );
    assert!(
        said.contains("note: the story reads like none of the scenarios' prototypes")
            && said.contains("relevance: 0.")
            && said.contains("The advice is for career setbacks")
            && !said.contains("What to do"),
        "{said}"
    );

    // Career stories, short ones too, are not moved: the same rows and no warning.
    let labelled = fixture("labelled.csv");
    let labelled = labelled.to_str().unwrap();
    let (_, ruled, err) = categories(labelled, &[]);
    assert!(!err.contains("like none"), "{err}");
    let (_, plain, _) = categories(labelled, &["--taxonomy", "without.toml"]);
    assert_eq!(ruled, plain);
    let out = failup_in(
        dir.path(),
        &["advise", "I was passed over for the promotion."],
        None,
    );
    assert!(
        !stdout(&out).contains("reads like none"),
        "{}",
        stdout(&out)
    );
}
