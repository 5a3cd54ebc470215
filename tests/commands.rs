//! `advise`, `categories`, `embed` and `eval` end to end.

mod common;

use common::*;

/// labelled.csv as a tab-separated Latin-1 export, ids renamed `S-…` in a column `story_id`,
/// the story under `text_header`, each ending in "Café." with é as the Latin-1 byte.
fn latin1_tsv(dir: &std::path::Path, text_header: &str) -> usize {
    let (_, rows) = parse_csv(&std::fs::read_to_string(fixture("labelled.csv")).unwrap());
    let mut tsv = format!("story_id\tlabel\t{text_header}\n").into_bytes();
    for r in &rows {
        tsv.extend(format!("S-{}\t{}\t{} Caf", r[0], r[1], r[2]).bytes());
        tsv.extend(b"\xE9.\n");
    }
    std::fs::write(dir.join("l.tsv"), tsv).unwrap();
    rows.len()
}

/// Runs failup in `dir` with standard input a pipe that is already closed, as `cat f | failup
/// … -` gives to a command that refuses before it reads (one that reads finds it empty rather
/// than hanging).
fn failup_on_a_closed_pipe(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(writer);
    hashed_command(dir, args).stdin(reader).output().unwrap()
}

/// failup with `args` in `dir` on the test embedder, its streams left for the caller to set.
fn hashed_command(dir: &std::path::Path, args: &[&str]) -> std::process::Command {
    let mut cmd = failup_command();
    cmd.args(args).env(HASHED.0, HASHED.1).current_dir(dir);
    cmd
}

/// The writing end of a pipe whose reader has gone: every write to it fails.
fn pipe_nobody_reads() -> std::io::PipeWriter {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    writer
}

#[test]
fn advise_prints_scenario_and_full_advice() {
    let out = failup(&[
        "advise",
        "I quit my accounting job to become a chef and I hate every shift.",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("(pivot_regret)"), "{text}");
    assert!(text.contains("confidence"), "{text}");
    let taxonomy = failup::taxonomy::Taxonomy::builtin();
    let pivot = &taxonomy.scenarios[taxonomy.index_of("pivot_regret").unwrap()];
    for item in &pivot.advice {
        assert!(text.contains(item.as_str()), "missing advice: {item}");
    }
}

#[test]
fn advise_reads_stdin_and_rejects_empty() {
    let root = repo_path("");
    let out = failup_in(
        &root,
        &["advise", "-"],
        Some("We lost the tender I led; the client chose a competitor."),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("(lost_pitch)"), "{}", stdout(&out));
    let out = failup_in(&root, &["advise", "-"], Some("   \n"));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("the story is empty"));
}

#[test]
fn categories_lists_every_scenario() {
    let out = failup(&["categories"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    for id in ["passed_over", "pivot_regret", "lost_pitch", "other"] {
        assert!(text.contains(id), "{id} missing");
    }
    // The headline, which every classified row carries, is shown with the rest.
    assert!(
        text.contains("  In classify's advice column:\n    "),
        "{text}"
    );
}

/// Taxonomy texts written on several lines stay under their bullet in categories and advise:
/// a second line at the margin read as an item of its own.
#[test]
fn advice_on_several_lines_stays_under_its_bullet() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(common::repo_path("data/taxonomy.toml")).unwrap();
    let edited = shipped.replace("advice = [", "advice = [\"Ask why.\\nThen listen.\", ");
    assert_ne!(edited, shipped);
    std::fs::write(dir.path().join("lines.toml"), edited).unwrap();
    let out = failup_in(
        dir.path(),
        &["categories", "--taxonomy", "lines.toml"],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("    - Ask why.\n      Then listen.\n"),
        "{}",
        stdout(&out)
    );
    let story = "My manager gave the big project to the new hire.";
    let args = ["advise", story, "--taxonomy", "lines.toml"];
    let out = failup_in(dir.path(), &args, None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("  - Ask why.\n    Then listen.\n"),
        "{}",
        stdout(&out)
    );
}

/// `categories`, the command for looking at a taxonomy, warns of a scenario scored over fewer
/// prototypes than the others, as the commands that score with it do; it had said nothing.
#[test]
fn categories_warns_of_a_scenario_with_fewer_prototypes() {
    let dir = tempfile::tempdir().unwrap();
    let taxonomy = "[[scenario]]\nid = \"lost\"\ntitle = \"Lost\"\ndescription = \"d\"\n\
                    headline = \"h\"\nadvice = [\"a\"]\nprototypes = [\"We lost the pitch.\", \
                    \"The client chose a rival.\"]\n\n[[scenario]]\nid = \"other\"\n\
                    title = \"Other\"\ndescription = \"d\"\nheadline = \"h\"\nadvice = [\"a\"]\n\
                    prototypes = [\"I was laid off.\"]\n";
    std::fs::write(dir.path().join("few.toml"), taxonomy).unwrap();
    let out = failup_in(dir.path(), &["categories", "--taxonomy", "few.toml"], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("warning: taxonomy few.toml: scenario 'other' has 1 prototype and another 2"),
        "{}",
        stderr(&out)
    );
    let out = failup_in(dir.path(), &["categories"], None);
    assert_eq!(stderr(&out), "");
}

#[test]
fn embed_writes_unit_vectors_in_order() {
    let input = fixture("stories.csv");
    let out = failup(&["embed", input.to_str().unwrap(), "-q"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 12);
    assert_eq!(lines[0]["id"], "a1");
    let v: Vec<f64> = lines[0]["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(v.len(), 384);
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "{norm}");
    assert!(
        lines[3]["embedding"].is_null(),
        "empty text has no embedding"
    );
}

#[test]
fn eval_json_has_documented_keys_and_gate_exits_1() {
    let input = fixture("labelled.csv");
    let path = input.to_str().unwrap();
    let out = failup(&["eval", path, "--format", "json", "-q"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    for key in ["accuracy", "macro_f1", "per_class", "confusion"] {
        assert!(report.get(key).is_some(), "missing {key}");
    }
    assert_eq!(report["n"], 6);
    let matrix = report["confusion"]["matrix"].as_array().unwrap();
    let total: u64 = matrix
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|x| x.as_u64().unwrap())
        .sum();
    assert_eq!(total, 6);

    // One gold label changed to a wrong one: macro-F1 falls below 1, and a gate of 0.99 fails.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(&input).unwrap();
    let wrong = dir.path().join("wrong.csv");
    std::fs::write(&wrong, text.replace("l4,other,", "l4,passed_over,")).unwrap();
    let gate = failup(&[
        "eval",
        wrong.to_str().unwrap(),
        "-q",
        "--min-macro-f1",
        "0.99",
    ]);
    assert_eq!(gate.status.code(), Some(1));
    assert!(stderr(&gate).contains("gate failed"));
    let pass = failup(&["eval", path, "-q", "--min-macro-f1", "0.0"]);
    assert_eq!(pass.status.code(), Some(0));
    // A gate that could never fail (NaN) or never pass (over 1) is a mistake, told as one.
    for x in ["nan", "1.01", "80"] {
        let bad = failup(&["eval", path, "-q", "--min-macro-f1", x]);
        assert_eq!(bad.status.code(), Some(2), "{x}");
        assert!(stderr(&bad).contains("not a number from 0 to 1"), "{x}");
    }
}

/// A spreadsheet's blank rows below its data (`,,`) hold no story to score: passed over with
/// one warning, where they were an error blaming an empty label.
#[test]
fn labelled_files_pass_over_rows_with_neither_label_nor_text() {
    let dir = tempfile::tempdir().unwrap();
    // The last has a stray empty cell, and the one before too few: blank all the same.
    let csv =
        "id,label,text\n1,other,I was laid off\n2,lost_pitch,We lost the pitch I led\n,,,\n,\n";
    std::fs::write(dir.path().join("sheet.csv"), csv).unwrap();
    let out = failup_env(
        dir.path(),
        &["eval", "sheet.csv", "--format", "json", "-q"],
        None,
        &[HASHED],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["n"], 2, "{report}");
    assert!(
        stderr(&out).contains("sheet.csv:4: 2 rows with no id, label or text passed over"),
        "{}",
        stderr(&out)
    );
    // A label without its text is still an error to fix.
    std::fs::write(dir.path().join("half.csv"), "id,label,text\n1,other,\n").unwrap();
    let out = failup_env(dir.path(), &["eval", "half.csv", "-q"], None, &[HASHED]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("labelled 'other' but has no text"),
        "{}",
        stderr(&out)
    );
    // An id with neither label nor text is an omission to fix, not a spreadsheet's blank row.
    let csv = "id,label,text\n1,other,I was laid off\nl2,,\n";
    std::fs::write(dir.path().join("omitted.csv"), csv).unwrap();
    let out = failup_env(dir.path(), &["eval", "omitted.csv", "-q"], None, &[HASHED]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("omitted.csv:3"), "{}", stderr(&out));
}

/// A profile path that fails to load, from FAILUP_PROFILE, is blamed on the variable: the user
/// may never have typed it.
#[test]
fn a_missing_profile_from_the_environment_names_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let env = [HASHED, ("FAILUP_PROFILE", "nope.json")];
    let out = failup_env(
        dir.path(),
        &["advise", "They gave it to the new hire."],
        None,
        &env,
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let said = stderr(&out);
    let note = "--profile was not given; its value came from the environment, \
                FAILUP_PROFILE=\"nope.json\"";
    assert!(said.contains("nope.json") && said.contains(note), "{said}");
    // Said once (a second note of the profile's own said it again).
    assert_eq!(said.matches("FAILUP_PROFILE").count(), 1, "{said}");
    let typed = [
        "advise",
        "--profile",
        "nope.json",
        "They gave it to the new hire.",
    ];
    let out = failup_env(dir.path(), &typed, None, &[HASHED]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(!stderr(&out).contains("FAILUP_PROFILE"), "{}", stderr(&out));
}

#[test]
fn eval_rejects_unknown_labels_with_line_and_valid_labels() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.csv");
    std::fs::write(
        &file,
        "id,label,text\n1,other,fired\n2,fired,laid off again\n",
    )
    .unwrap();
    let out = failup(&["eval", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("bad.csv:3"), "{err}");
    assert!(err.contains("label 'fired'"), "{err}");
    assert!(
        err.contains("passed_over, pivot_regret, lost_pitch, other"),
        "{err}"
    );
    assert!(!err.contains("fields"), "a well-formed row: {err}");

    // An unquoted comma in the story shifts the label: the message says so.
    let shifted = dir.path().join("shifted.csv");
    std::fs::write(
        &shifted,
        "id,text,label
1,fired,other
2,fired, again,other
",
    )
    .unwrap();
    let out = failup(&["eval", shifted.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("shifted.csv:3")
            && err.contains("row 2 has 4 fields, more than the header's 3")
            && err.contains("double quotes"),
        "{err}"
    );
}

#[test]
fn bf16_needs_the_amx_engine_and_says_so() {
    let out = failup(&[
        "advise",
        "I was passed over.",
        "--precision",
        "bf16",
        "--backend",
        "rten",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("--precision bf16 runs on the AMX engine only"),
        "{err}"
    );
    assert!(err.contains("leave --backend at auto"), "{err}");
}

#[test]
#[ignore = "needs a CPU with AMX or AVX-512 BF16"]
fn bf16_cpu_classifies_like_fp32() {
    // On a CPU with neither, the advise run below fails and its message says why.
    let story = "My manager gave the big client project to a colleague who joined last year, \
                 even though I have led that account for six years.";
    let category = |precision: &str| {
        let out = failup(&["advise", story, "--precision", precision]);
        assert!(out.status.success(), "{}", stderr(&out));
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .to_string()
    };
    let bf16 = category("bf16");
    assert!(bf16.contains("(passed_over)"), "{bf16}");
    assert_eq!(bf16, category("fp32"));
    // An Intel CPU without AMX runs bf16's products as fp32 FMAs, at fp32's speed: said, since
    // bf16 is chosen for speed. Where it is fast (AMX, AMD's bf16 products) nothing is said.
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let intel_without_amx = cpuinfo.contains("GenuineIntel")
        && !cpuinfo.split_whitespace().any(|flag| flag == "amx_tile");
    let said = stderr(&failup(&["advise", story, "--precision", "bf16"]));
    assert_eq!(
        said.contains("runs at about fp32's speed on this CPU"),
        intel_without_amx,
        "{said}"
    );
    assert!(!stderr(&failup(&["advise", story])).contains("fp32's speed"));
}

/// A profile remembers how its model folder reads a text beside the weights: the same weights
/// pooled otherwise give other vectors, and a profile fitted on them was taken as fitting.
#[cfg(unix)]
#[test]
fn a_profile_fitted_on_the_same_weights_pooled_otherwise_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cls = dir.path().join("cls");
    link_bundled_model_except(&cls, "1_Pooling/config.json");
    let bundled = repo_path("models/all-MiniLM-L6-v2/1_Pooling/config.json");
    let config = std::fs::read_to_string(bundled).unwrap();
    let by_cls = config
        .replace(
            "\"pooling_mode_cls_token\": false",
            "\"pooling_mode_cls_token\": true",
        )
        .replace(
            "\"pooling_mode_mean_tokens\": true",
            "\"pooling_mode_mean_tokens\": false",
        );
    assert_ne!(config, by_cls);
    std::fs::write(cls.join("1_Pooling/config.json"), by_cls).unwrap();
    let calibration = repo_path("data/calibration.csv");
    let calibration = calibration.to_str().unwrap();
    let cls = cls.to_str().unwrap();
    let fit = [
        "calibrate",
        calibration,
        "--model",
        cls,
        "-o",
        "p.json",
        "-q",
    ];
    let out = failup_env(dir.path(), &fit, None, &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let profile: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("p.json")).unwrap()).unwrap();
    assert_eq!(
        profile["model_reading"],
        "a window of 256 tokens, case kept, cls pooling"
    );
    let args = ["advise", "We lost the pitch.", "--profile", "p.json"];
    let out = failup_env(dir.path(), &args, None, &[HASHED]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "p.json was fitted with these weights read with a window of 256 tokens, case kept, \
             cls pooling, but this model folder reads them with a window of 256 tokens, case \
             kept, mean pooling"
        ),
        "{}",
        stderr(&out)
    );
    let with_cls = [&args[..], &["--model", cls]].concat();
    let out = failup_env(dir.path(), &with_cls, None, &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// A pooling width that is not the model's names both files that disagree: it was blamed on
/// model.onnx alone, and on model.onnx when model.int8.onnx was the file read.
#[cfg(unix)]
#[test]
fn a_pooling_width_other_than_the_models_names_both_files() {
    let model = tempfile::tempdir().unwrap();
    link_bundled_model_except(model.path(), "1_Pooling/config.json");
    let bundled = repo_path("models/all-MiniLM-L6-v2/1_Pooling/config.json");
    let config = std::fs::read_to_string(bundled).unwrap();
    let narrow = config.replace(
        "\"word_embedding_dimension\": 384",
        "\"word_embedding_dimension\": 300",
    );
    assert_ne!(config, narrow);
    std::fs::write(model.path().join("1_Pooling/config.json"), narrow).unwrap();
    let model = model.path().to_str().unwrap();
    for (precision, file) in [("int8", "model.int8.onnx"), ("fp32", "model.onnx")] {
        // rten reads either file; on a CPU with AMX, fp32 would go to the AMX engine, which
        // refuses such a folder at load, from config.json.
        let args = [
            "advise",
            "We lost the pitch.",
            "--precision",
            precision,
            "--backend",
            "rten",
            "--model",
            model,
        ];
        let out = failup(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains(&format!(
                "{file} gives 384 values per token, but 1_Pooling/config.json says \
                 word_embedding_dimension 300"
            )),
            "{err}"
        );
    }
}

/// A config.json whose layer count is below model.onnx's ran the first layers alone, with
/// exit 0 and other verdicts.
#[test]
#[ignore = "needs a CPU with AMX or AVX-512 BF16"]
fn bf16_cpu_a_config_with_fewer_layers_than_the_weights_is_refused() {
    let model = tempfile::tempdir().unwrap();
    link_bundled_model_except(model.path(), "config.json");
    let config = std::fs::read_to_string(repo_path("models/all-MiniLM-L6-v2/config.json")).unwrap();
    let fewer = config.replace("\"num_hidden_layers\": 6", "\"num_hidden_layers\": 2");
    assert_ne!(config, fewer);
    std::fs::write(model.path().join("config.json"), fewer).unwrap();
    let model = model.path().to_str().unwrap();
    let args = [
        "advise",
        "We lost the pitch.",
        "--precision",
        "bf16",
        "--model",
        model,
    ];
    let out = failup(&args);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("more encoder layers than config.json's num_hidden_layers 2"),
        "{}",
        stderr(&out)
    );
}

/// `models prepare --backend amx` checks what the engine can run here: on a CPU with AVX-512
/// BF16 but no AMX tiles it said bf16 would run, then failed on fp32 with exit 2.
#[test]
#[ignore = "needs a CPU with AMX or AVX-512 BF16"]
fn bf16_cpu_models_prepare_for_the_amx_engine_succeeds() {
    let out = failup(&["models", "prepare", "--backend", "amx"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("on the amx engine in"),
        "{}",
        stderr(&out)
    );
}

/// `failup embed` with no flags writes the reference's vectors for every fixture text, the
/// ones past the model's 256-token window included: it reads a story's first window as the
/// reference does (its chunked average differed, cosine 0.88 for a 744-token story).
#[test]
fn embed_defaults_to_exact_vectors_at_parity_with_the_reference() {
    #[derive(serde::Deserialize)]
    struct Reference {
        text: String,
        embedding: Vec<f32>,
    }
    let jsonl = std::fs::read_to_string(fixture("reference_embeddings.jsonl")).unwrap();
    let references: Vec<Reference> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let mut w = csv::Writer::from_path(dir.path().join("in.csv")).unwrap();
    w.write_record(["text"]).unwrap();
    for reference in &references {
        w.write_record([reference.text.as_str()]).unwrap();
    }
    w.flush().unwrap();
    let out = failup_in(dir.path(), &["embed", "in.csv", "-q"], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), references.len());
    let mut long = 0;
    for (row, reference) in rows.iter().zip(&references) {
        let got: Vec<f32> = row["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let cosine = failup::vector::cosine(&reference.embedding, &got);
        assert!(
            cosine >= 0.9999,
            "row {}: cosine {cosine} to the reference",
            row["id"]
        );
        long += usize::from(row["truncated"] == true);
    }
    assert!(long >= 2, "the fixture holds stories past the window");
}

/// eval reads a labelled file with the reading flags classify takes: a tab-separated legacy
/// export whose id column has another name. They were silently ignored.
#[test]
fn eval_reads_with_the_delimiter_encoding_and_id_column_given() {
    let dir = tempfile::tempdir().unwrap();
    let stories = latin1_tsv(dir.path(), "story");
    let args = [
        "eval",
        "l.tsv",
        "--delimiter",
        "tab",
        "--encoding",
        "latin1",
        "--id-column",
        "story_id",
        "--text-column",
        "story",
        "--errors",
        "9",
        "--format",
        "json",
        "-q",
    ];
    let out = failup_env(dir.path(), &args, None, &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["n"], stories);
    let errors = report["errors"].as_array().unwrap();
    assert!(!errors.is_empty(), "{report}");
    for e in errors {
        assert!(e["id"].as_str().unwrap().starts_with("S-l"), "{e}");
        assert!(e["text"].as_str().unwrap().ends_with("Café."), "{e}");
    }
    let out = failup_env(
        dir.path(),
        &["eval", "l.tsv", "--delimiter", "tab", "--id-column", "nope"],
        None,
        &[HASHED],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("nope"), "{}", stderr(&out));
}

/// `calibrate -o -` writes the profile alone to standard output (the taxonomy snippet goes to
/// standard error), so it loads; a fit on few stories is written with a warning; with a
/// few-shot head, no snippet claims the zero-shot temperature.
#[test]
fn calibrate_to_standard_output_writes_a_profile_that_loads() {
    let dir = tempfile::tempdir().unwrap();
    let labelled = fixture("labelled.csv");
    let labelled = labelled.to_str().unwrap();
    let out = failup_env(
        dir.path(),
        &["calibrate", labelled, "-o", "-"],
        None,
        &[HASHED],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let profile: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        profile["calibration"]["temperature"].is_number(),
        "{profile}"
    );
    assert!(stderr(&out).contains("[classifier]\ntemperature = "));
    assert!(stderr(&out).contains("6 stories are few for a calibration"));
    std::fs::write(dir.path().join("p.json"), &out.stdout).unwrap();
    let out = failup_env(
        dir.path(),
        &[
            "advise",
            "--profile",
            "p.json",
            "They gave the lead to the new hire.",
        ],
        None,
        &[HASHED],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let examples = fixture("fewshot_examples.csv");
    let args = [
        "calibrate",
        labelled,
        "--examples",
        examples.to_str().unwrap(),
        "-o",
        "h.json",
    ];
    let out = failup_env(dir.path(), &args, None, &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stdout(&out).contains("temperature"), "{}", stdout(&out));
    assert!(stderr(&out).contains("lives in the profile alone"));
    // A head learns `other` from its examples; no rule of thresholds is claimed for it.
    assert!(!stderr(&out).contains("other rule"), "{}", stderr(&out));
}

/// A profile records the precision it was fitted at and runs at it by default; a run at another
/// is warned, naming the flag that matches; `calibrate` records the precision it fitted at.
#[test]
fn a_profile_runs_at_its_precision_and_another_is_warned_of() {
    let dir = tempfile::tempdir().unwrap();
    let examples = fixture("fewshot_examples.csv");
    let train = [
        "train",
        examples.to_str().unwrap(),
        "-o",
        "head.json",
        "-q",
        "--precision",
        "int8",
    ];
    let out = failup_env(dir.path(), &train, None, &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let precision_of = |profile: &str| -> serde_json::Value {
        let text = std::fs::read_to_string(dir.path().join(profile)).unwrap();
        serde_json::from_str::<serde_json::Value>(&text).unwrap()["precision"].clone()
    };
    assert_eq!(precision_of("head.json"), "int8");
    let stories = fixture("labelled.csv");
    let stories = stories.to_str().unwrap();
    let classify = |extra: &[&str]| {
        let args = [
            &["classify", stories, "--profile", "head.json", "-q"][..],
            &["-o", "out.csv", "--report", "r.json"],
            extra,
        ]
        .concat();
        let out = failup_env(dir.path(), &args, None, &[HASHED]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let report = std::fs::read_to_string(dir.path().join("r.json")).unwrap();
        let report: serde_json::Value = serde_json::from_str(&report).unwrap();
        let ran = report["header"]["reading"]["precision"].clone();
        (ran, stderr(&out))
    };
    // A head runs in fp32 by default, but this one was fitted in int8.
    let (ran, said) = classify(&[]);
    assert_eq!(ran, "int8");
    assert!(!said.contains("was fitted on"), "{said}");
    let (ran, said) = classify(&["--precision", "fp32"]);
    assert_eq!(ran, "fp32");
    assert!(
        said.contains("head.json was fitted on int8 vectors and this run reads fp32 ones")
            && said.contains("pass --precision int8 to match it"),
        "{said}"
    );
    // Calibrated at another precision, the head would be written down as fitted at it.
    let calibrate = [
        "calibrate",
        stories,
        "--profile",
        "head.json",
        "-o",
        "calibrated.json",
        "-q",
    ];
    let at_fp32 = [&calibrate[..], &["--precision", "fp32"]].concat();
    let out = failup_env(dir.path(), &at_fp32, None, &[HASHED]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("fitted with --precision int8, and this run reads with --precision fp32"),
        "{}",
        stderr(&out)
    );
    let out = failup_env(dir.path(), &calibrate, None, &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(precision_of("calibrated.json"), "int8");
}

/// `--examples` is warned of as `train` warns of the same file (a scenario with no story);
/// `calibrate` warns of a scenario it has no story of; a profile given as examples, or
/// labelled stories given as a profile, are told for what they are; an empty label cell, a
/// row of an id alone and blank lines are named so.
#[test]
fn labelled_files_given_wrongly_are_told_so() {
    let dir = tempfile::tempdir().unwrap();
    let examples = fixture("fewshot_examples.csv");
    let examples = examples.to_str().unwrap();
    let stories = fixture("labelled.csv");
    let stories = stories.to_str().unwrap();
    let run = |args: &[&str], code: i32| {
        let out = failup_env(dir.path(), args, None, &[HASHED]);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", stderr(&out));
        stderr(&out)
    };
    // The fixture holds no pivot_regret story.
    let said = run(
        &[
            "classify",
            stories,
            "-o",
            "out.csv",
            "-q",
            "--examples",
            examples,
        ],
        0,
    );
    assert!(
        said.contains("warning: the 8 examples hold no story of 'pivot_regret'"),
        "{said}"
    );
    assert!(
        said.contains("fewer than 5 stories of 'passed_over' (1), 'other' (1)"),
        "{said}"
    );
    let said = run(&["calibrate", examples, "-o", "cal.json", "-q"], 0);
    assert!(
        said.contains("hold no story of 'pivot_regret', so the confidence is fitted without it;"),
        "{said}"
    );
    run(&["train", examples, "-o", "head.json", "-q"], 0);
    let said = run(
        &[
            "classify",
            stories,
            "-o",
            "out.csv",
            "--examples",
            "head.json",
        ],
        2,
    );
    assert!(
        said.contains("head.json:1: holds JSON, not labelled stories")
            && said.contains("is given with --profile"),
        "{said}"
    );
    let said = run(
        &["classify", stories, "-o", "out.csv", "--profile", examples],
        2,
    );
    assert!(
        said.contains("it reads like a CSV of labelled stories, which is given with --examples"),
        "{said}"
    );
    let text = std::fs::read_to_string(stories).unwrap();
    let no_label = text.replacen("l1,passed_over,", "l1,,", 1);
    std::fs::write(dir.path().join("no-label.csv"), no_label).unwrap();
    let said = run(&["eval", "no-label.csv"], 2);
    assert!(
        said.contains("no-label.csv:2, column 'label': the label cell is empty"),
        "{said}"
    );
    std::fs::write(dir.path().join("id-only.csv"), format!("{text}l9,,\n")).unwrap();
    let said = run(&["eval", "id-only.csv"], 2);
    assert!(
        said.contains("has neither a label nor a story (no text)"),
        "{said}"
    );
    // Stories kept as a JSON array are told as JSON too, not as a header of odd columns.
    let array = "[{\"label\": \"other\", \"text\": \"I was laid off.\"}]\n";
    std::fs::write(dir.path().join("stories.json"), array).unwrap();
    let said = run(&["eval", "stories.json"], 2);
    assert!(
        said.contains("stories.json:1: holds JSON, not labelled stories"),
        "{said}"
    );
    // Blank lines are passed over, as classify passes them, and told as classify tells them.
    let gaps = text.replacen("\nl2,", "\n\n\nl2,", 1);
    std::fs::write(dir.path().join("gaps.csv"), gaps).unwrap();
    let said = run(&["eval", "gaps.csv"], 0);
    assert!(
        said.contains("gaps.csv:3: 2 blank lines passed over (the first on this line"),
        "{said}"
    );
}

/// A profile records how its stories were read (`--long-text`) and a run with it reads them
/// so by default; a `--long-text` that reads them the other way is warned, naming the flag
/// that matches, and `calibrate` records its own.
#[test]
fn a_profile_records_how_its_stories_were_read() {
    let dir = tempfile::tempdir().unwrap();
    let examples = fixture("fewshot_examples.csv");
    let examples = examples.to_str().unwrap();
    let stories = fixture("labelled.csv");
    let stories = stories.to_str().unwrap();
    let run = |args: &[&str]| {
        let out = failup_env(dir.path(), args, None, &[HASHED]);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        stderr(&out)
    };
    let long_text_of = |profile: &str| -> serde_json::Value {
        let text = std::fs::read_to_string(dir.path().join(profile)).unwrap();
        serde_json::from_str::<serde_json::Value>(&text).unwrap()["long_text"].clone()
    };
    run(&[
        "train",
        examples,
        "-o",
        "whole.json",
        "-q",
        "--long-text",
        "truncate",
    ]);
    assert_eq!(long_text_of("whole.json"), "truncate");
    let classify = [
        "classify",
        stories,
        "-o",
        "out.csv",
        "-q",
        "--profile",
        "whole.json",
    ];
    let rows = || std::fs::read(dir.path().join("out.csv")).unwrap();
    let said = run(&classify);
    assert!(!said.contains("was fitted on"), "{said}");
    let by_default = rows();
    let said = run(&[&classify[..], &["--long-text", "truncate"]].concat());
    assert!(!said.contains("was fitted on"), "{said}");
    assert_eq!(rows(), by_default, "the profile's reading is the default");
    let said = run(&[&classify[..], &["--long-text", "chunk"]].concat());
    assert!(
        said.contains("whole.json was fitted on stories read with --long-text truncate and this run reads them with --long-text chunk")
            && said.contains("pass --long-text truncate to match it"),
        "{said}"
    );
    assert_ne!(rows(), by_default, "chunk reads these stories otherwise");
    // The head was fitted on stories read whole: calibrated on another reading, it would be
    // written down as fitted on that one, so that is refused.
    let calibrate = [
        "calibrate",
        stories,
        "--profile",
        "whole.json",
        "-o",
        "cal.json",
        "-q",
    ];
    let out = failup_env(
        dir.path(),
        &[&calibrate[..], &["--long-text", "chunk"]].concat(),
        None,
        &[HASHED],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "was fitted with --long-text truncate, and this run reads with --long-text chunk"
        ),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("cal.json").exists());
    let out = failup_env(
        dir.path(),
        &[&calibrate[..], &["--precision", "int8"]].concat(),
        None,
        &[HASHED],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--precision fp32"),
        "{}",
        stderr(&out)
    );
    // A head fitted here on top of a calibration read whole is read as this run's flag says:
    // the loaded profile is warned of once, the head just fitted not at all.
    run(&[
        "calibrate",
        stories,
        "-o",
        "whole-cal.json",
        "-q",
        "--long-text",
        "truncate",
    ]);
    let said = run(&[
        "calibrate",
        stories,
        "--profile",
        "whole-cal.json",
        "--examples",
        examples,
        "-o",
        "head-cal.json",
        "-q",
        "--long-text",
        "chunk",
    ]);
    assert_eq!(
        said.matches("was fitted on stories read with").count(),
        1,
        "{said}"
    );
    assert_eq!(long_text_of("head-cal.json"), "chunk");
}

/// A head calibrated on the very stories it learned from gets them all right, so every later
/// confidence would run high: refused when all are its examples, warned of when some are.
#[test]
fn calibrating_a_head_on_its_own_examples_is_refused_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let examples = fixture("fewshot_examples.csv");
    let examples = examples.to_str().unwrap();
    let train = ["train", examples, "-o", "head.json", "-q"];
    let out = failup_env(dir.path(), &train, None, &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let calibrate = [
        "calibrate",
        examples,
        "--profile",
        "head.json",
        "-o",
        "h2.json",
        "-q",
    ];
    let out = failup_env(dir.path(), &calibrate, None, &[HASHED]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("all 8 of these stories are examples the few-shot head learned")
            && stderr(&out).contains("on labelled stories it has not learned from"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("h2.json").exists());
    // Mixed with stories it has not seen, the fit goes on, and the examples among them are told.
    let long = fixture("long_stories.csv");
    let mut mixed = calibrate.to_vec();
    mixed.insert(2, long.to_str().unwrap());
    let out = failup_env(dir.path(), &mixed, None, &[HASHED]);
    assert!(
        stderr(&out)
            .contains("warning: 8 of these 32 stories are examples the few-shot head learned from"),
        "{}",
        stderr(&out)
    );
}

/// The taxonomy's own prototypes, scored as stories, are told: each reads as its own scenario.
#[test]
fn eval_warns_of_the_taxonomys_own_prototypes_among_its_stories() {
    let dir = tempfile::tempdir().unwrap();
    let taxonomy: toml::Table = toml::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/taxonomy.toml"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut csv = String::from("id,label,text\nown,other,A story of my own about the office.\n");
    for scenario in taxonomy["scenario"].as_array().unwrap() {
        let id = scenario["id"].as_str().unwrap();
        let first = scenario["prototypes"][0].as_str().unwrap().to_uppercase();
        csv += &format!("{id},{id},\"{}\"\n", first.replace('"', "\"\""));
    }
    std::fs::write(dir.path().join("p.csv"), csv).unwrap();
    let out = failup_env(dir.path(), &["eval", "p.csv", "-q"], None, &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("4 of the 5 stories in p.csv are among the taxonomy's own prototypes")
            && stderr(&out).contains("(the first: id 'passed_over')"),
        "{}",
        stderr(&out)
    );
}

/// An output inside the model folder the run reads (a slip of `-o`) is refused before anything
/// is read or written, for every command that writes a file.
#[test]
fn outputs_inside_the_model_folder_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("m/1_Pooling")).unwrap();
    let stories = fixture("labelled.csv");
    let stories = stories.to_str().unwrap();
    let runs: [&[&str]; 5] = [
        &["train", stories, "-o", "m/tokenizer.json"],
        &["calibrate", stories, "-o", "m/config.json"],
        &["classify", stories, "--report", "m/1_Pooling/r.md"],
        &["embed", stories, "-o", "m/v.jsonl"],
        &["report", stories, "-o", "m/r.md"],
    ];
    for args in runs {
        let out = failup_env(
            dir.path(),
            &[args, &["--model", "m"]].concat(),
            None,
            &[HASHED],
        );
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("is inside the model folder"),
            "{}",
            stderr(&out)
        );
    }
    let names = |sub: &str| -> Vec<String> {
        std::fs::read_dir(dir.path().join(sub))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(
        names("m"),
        ["1_Pooling"],
        "nothing was written into the folder"
    );
    assert!(names("m/1_Pooling").is_empty());
}

/// `eval F --examples F` is warned that it scores what it learned from, and F's own warnings
/// (a story given twice) are told once, not once per reading.
#[test]
fn eval_on_its_own_examples_warns_once_of_each_thing() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = std::fs::read_to_string(fixture("fewshot_examples.csv")).unwrap();
    let last = csv.lines().last().unwrap().to_string();
    csv += &format!("{last}\n");
    std::fs::write(dir.path().join("twice.csv"), csv).unwrap();
    let out = failup_env(
        dir.path(),
        &["eval", "twice.csv", "--examples", "twice.csv", "-q"],
        None,
        &[HASHED],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let said = stderr(&out);
    assert_eq!(
        said.matches("--examples was fitted on twice.csv itself")
            .count(),
        1,
        "{said}"
    );
    assert_eq!(said.matches("given more than once").count(), 1, "{said}");
    assert_eq!(said.matches("on more than one row").count(), 1, "{said}");
}

/// A profile fitted on the test embedder's vectors is refused by a run of the model, and one
/// fitted on the model's by a run of the test embedder: both read the same model folder, so
/// its hashes alone had let either through, with confidences that mean nothing.
#[test]
fn a_profile_is_refused_by_the_other_embedder() {
    let dir = tempfile::tempdir().unwrap();
    let labelled = repo_path("data/calibration.csv");
    let labelled = labelled.to_str().unwrap();
    let fit = ["calibrate", labelled, "-o", "hashed.json", "-q"];
    let out = failup_env(dir.path(), &fit, None, &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = failup_in(
        dir.path(),
        &["calibrate", labelled, "-o", "model.json", "-q"],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let story = "They gave the project to the new hire.";
    let out = failup_in(
        dir.path(),
        &["advise", story, "--profile", "hashed.json"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("hashed.json was fitted with failup's test embedder"),
        "{}",
        stderr(&out)
    );
    let args = ["advise", story, "--profile", "model.json"];
    let out = failup_env(dir.path(), &args, None, &[HASHED]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("model.json was fitted on the model's vectors"),
        "{}",
        stderr(&out)
    );
    for (profile, env) in [("hashed.json", &[HASHED][..]), ("model.json", &[][..])] {
        let args = ["advise", story, "--profile", profile];
        let out = failup_env(dir.path(), &args, None, env);
        assert_eq!(out.status.code(), Some(0), "{profile}: {}", stderr(&out));
    }
}

/// Two stories the model gets right leave the temperature free to run to the bottom of its
/// range, where every confidence would read 1.0000: no profile is written.
#[test]
fn calibrate_refuses_a_temperature_the_stories_do_not_pin_down() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("two.csv"),
        "id,label,text\n\
         a,lost_pitch,First time leading a pitch and we came dead last out of four.\n\
         b,passed_over,Promotion went to the guy I trained. Brilliant.\n",
    )
    .unwrap();
    let out = failup_in(dir.path(), &["calibrate", "two.csv", "-o", "p.json"], None);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("these 2 stories do not pin the confidence temperature down")
            && stderr(&out).contains("every confidence would be 1.0000"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("p.json").exists());
    // The same two with their labels swapped drive it to the top of its range instead: the
    // scores do not follow the labels, which harder stories would not mend.
    let swapped = std::fs::read_to_string(dir.path().join("two.csv"))
        .unwrap()
        .replace("a,lost_pitch", "a,passed_over")
        .replace("b,passed_over", "b,lost_pitch");
    std::fs::write(dir.path().join("two.csv"), swapped).unwrap();
    let out = failup_in(dir.path(), &["calibrate", "two.csv", "-o", "p.json"], None);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(
        said.contains("near even; the scores do not follow the labels") && !said.contains("harder"),
        "{said}"
    );
    assert!(!dir.path().join("p.json").exists());
}

/// A story in two of calibrate's INPUT files counts twice in the fit, as a copy within one
/// file does; it was told only within a file.
#[test]
fn calibrate_warns_of_a_story_in_two_of_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let (_, rows) = parse_csv(&std::fs::read_to_string(repo_path("data/calibration.csv")).unwrap());
    let csv = |rows: &[Vec<String>]| -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(["id", "label", "text"]).unwrap();
        for r in rows {
            w.write_record(r).unwrap();
        }
        String::from_utf8(w.into_inner().unwrap()).unwrap()
    };
    // Rows 40 to 45 in both halves, the first of them in capitals in the second; the second
    // half's ids are its own.
    let mut second: Vec<Vec<String>> = rows[39..].to_vec();
    for (i, r) in second.iter_mut().enumerate() {
        r[0] = format!("b{i}");
    }
    second[0][2] = second[0][2].to_uppercase();
    std::fs::write(dir.path().join("a.csv"), csv(&rows[..45])).unwrap();
    std::fs::write(dir.path().join("b.csv"), csv(&second)).unwrap();
    let args = ["calibrate", "a.csv", "b.csv", "-o", "p.json", "-q"];
    let out = failup_env(dir.path(), &args, None, &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "6 stories are in more than one INPUT file, word for word, case, accents, \
             spacing and punctuation aside (the first at b.csv:2, as at a.csv:41)"
        ),
        "{}",
        stderr(&out)
    );
    // Within one file each is told once, as before, and not again as across files.
    let out = failup_env(
        dir.path(),
        &["calibrate", "a.csv", "-o", "q.json", "-q"],
        None,
        &[HASHED],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("more than one INPUT file"),
        "{}",
        stderr(&out)
    );
}

/// A calibration scored on its own stories overstates itself, in whatever file they come
/// again: known by their texts, not only by the file's bytes.
#[test]
fn eval_finds_a_calibrations_own_stories_in_another_file() {
    let dir = tempfile::tempdir().unwrap();
    let labelled = std::fs::read_to_string(fixture("labelled.csv")).unwrap();
    std::fs::write(dir.path().join("cal.csv"), &labelled).unwrap();
    let out = failup_env(
        dir.path(),
        &["calibrate", "cal.csv", "-o", "cal.json", "-q"],
        None,
        &[HASHED],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The same stories less one, one of them in capitals with an exclamation mark, and one new
    // one, saved with other line ends.
    let mut lines: Vec<&str> = labelled.lines().collect();
    lines.pop();
    assert!(
        lines[3].starts_with("l3,lost_pitch,I presented"),
        "{}",
        lines[3]
    );
    let shouted = "l3,lost_pitch,I PRESENTED OUR PROPOSAL TO THE HOSPITAL BOARD MYSELF AND THEY \
                   SIGNED WITH A RIVAL SUPPLIER!";
    lines[3] = shouted;
    lines.push("n1,other,The office moved across town and my commute doubled.");
    std::fs::write(dir.path().join("edited.csv"), lines.join("\r\n")).unwrap();
    let eval = ["eval", "edited.csv", "--profile", "cal.json", "-q"];
    let out = failup_env(dir.path(), &eval, None, &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "5 of the 6 stories in edited.csv are among the 6 the calibration of --profile \
             cal.json was fitted on"
        ),
        "{}",
        stderr(&out)
    );
    let fresh = "id,label,text\nn1,other,The office moved across town.\n\
                 n2,lost_pitch,We lost the bid I led to a rival.\n";
    std::fs::write(dir.path().join("fresh.csv"), fresh).unwrap();
    let eval = ["eval", "fresh.csv", "--profile", "cal.json", "-q"];
    let out = failup_env(dir.path(), &eval, None, &[HASHED]);
    assert!(!stderr(&out).contains("fitted on"), "{}", stderr(&out));
}

/// A profile fitted on int8 vectors knows its int8 file: the same fp32 weights quantized again
/// (a release's new model.int8.onnx) read a little otherwise, which is warned of, and the same
/// file, or an fp32 run, is not.
#[cfg(unix)]
#[test]
fn a_profile_fitted_at_int8_warns_of_another_int8_file() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    link_bundled_model_except(&model, "model.int8.onnx");
    std::fs::write(model.join("model.int8.onnx"), "the first quantization").unwrap();
    std::fs::copy(fixture("labelled.csv"), dir.path().join("cal.csv")).unwrap();
    let calibrate = [
        "calibrate",
        "cal.csv",
        "--model",
        "model",
        "-o",
        "p.json",
        "-q",
    ];
    let out = failup_env(dir.path(), &calibrate, None, &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let classify = [
        "classify",
        "cal.csv",
        "--model",
        "model",
        "--profile",
        "p.json",
        "-q",
    ];
    let another = "p.json was fitted on int8 vectors from another model/model.int8.onnx";
    let out = failup_env(dir.path(), &classify, None, &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains(another), "{}", stderr(&out));

    std::fs::write(model.join("model.int8.onnx"), "the second quantization").unwrap();
    let out = failup_env(dir.path(), &classify, None, &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains(another), "{}", stderr(&out));
    let fp32 = [&classify[..], &["--precision", "fp32"]].concat();
    let out = failup_env(dir.path(), &fp32, None, &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains(another), "{}", stderr(&out));
}

/// A trained profile's head is not silently replaced by --examples, and eval names what it
/// scored: a calibration-only profile is zero-shot.
#[test]
fn examples_never_silently_replace_a_profiles_head_and_eval_names_its_mode() {
    let dir = tempfile::tempdir().unwrap();
    let (labelled, examples) = (fixture("labelled.csv"), fixture("fewshot_examples.csv"));
    let (labelled, examples) = (labelled.to_str().unwrap(), examples.to_str().unwrap());
    for args in [
        &["train", examples, "-o", "head.json"][..],
        &["calibrate", labelled, "-o", "cal.json"][..],
    ] {
        let out = failup_env(dir.path(), args, None, &[HASHED]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let both = ["--profile", "head.json", "--examples", examples];
    for args in [
        [&["eval", labelled][..], &both].concat(),
        [&["calibrate", labelled, "-o", "x.json"][..], &both].concat(),
    ] {
        let out = failup_env(dir.path(), &args, None, &[HASHED]);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let said = stderr(&out);
        assert!(said.contains("already holds a few-shot head"), "{said}");
    }
    // A profile exported in the environment is named as such, not as a flag never typed.
    for extra in [&["--cv", "2"][..], &["--examples", examples]] {
        let args = [&["eval", labelled][..], extra].concat();
        let out = failup_env(
            dir.path(),
            &args,
            None,
            &[HASHED, ("FAILUP_PROFILE", "head.json")],
        );
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let said = stderr(&out);
        assert!(
            said.contains("FAILUP_PROFILE=head.json (set in the environment)"),
            "{said}"
        );
    }
    let mode = |extra: &[&str]| {
        let args = [&["eval", labelled, "-q", "--format", "json"][..], extra].concat();
        let out = failup_env(dir.path(), &args, None, &[HASHED]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        r["mode"].as_str().unwrap().to_string()
    };
    assert_eq!(mode(&[]), "zero-shot");
    assert_eq!(
        mode(&["--profile", "cal.json"]),
        "zero-shot, calibrated by --profile cal.json"
    );
    assert_eq!(
        mode(&["--profile", "head.json"]),
        "few-shot (the head of --profile head.json)"
    );
    // Set in the environment, the profile is named as such there too.
    let args = ["eval", labelled, "-q", "--format", "json"];
    let out = failup_env(
        dir.path(),
        &args,
        None,
        &[HASHED, ("FAILUP_PROFILE", "head.json")],
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        r["mode"],
        "few-shot (the head of FAILUP_PROFILE=head.json (set in the environment))"
    );
    // A zero-shot calibration does not fit the head the examples fit: refused, with the way
    // to calibrate that head (its confidence scaling was applied to the head's).
    let both = [
        "eval",
        labelled,
        "-q",
        "--examples",
        examples,
        "--profile",
        "cal.json",
    ];
    let out = failup_env(dir.path(), &both, None, &[HASHED]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("calibration of the zero-shot scores")
            && stderr(&out).contains("failup calibrate LABELLED.csv --examples"),
        "{}",
        stderr(&out)
    );
}

/// A hand-edited profile whose numbers no fit writes is refused by name, not used to turn
/// every confidence into NaN or verdicts upside down; nor is an example dropped unseen.
#[test]
fn a_profile_with_impossible_values_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let examples = fixture("fewshot_examples.csv");
    let labelled = fixture("labelled.csv");
    for args in [
        &["train", examples.to_str().unwrap(), "-o", "head.json"][..],
        &["calibrate", labelled.to_str().unwrap(), "-o", "cal.json"][..],
    ] {
        let out = failup_env(dir.path(), args, None, &[HASHED]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let read = |name: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.path().join(name)).unwrap()).unwrap()
    };
    type Edit = fn(&mut serde_json::Value);
    let edits: [(&str, Edit, &str); 18] = [
        (
            "head.json",
            |p| p["head"]["temperature"] = 0.into(),
            "head's temperature is 0",
        ),
        (
            "head.json",
            |p| p["precision"] = "fp64".into(),
            "its precision is 'fp64', which is none of fp32, int8 and bf16",
        ),
        (
            "head.json",
            |p| p["long_text"] = "whole".into(),
            "its long_text is 'whole', which is neither chunk nor truncate",
        ),
        (
            "cal.json",
            |p| p["calibration"]["temperature"] = (-1).into(),
            "temperature is -1",
        ),
        (
            "cal.json",
            |p| p["calibration"]["confidence_slope"] = (-0.5).into(),
            "slope is -0.5",
        ),
        (
            "head.json",
            |p| p["examples"][0]["label"] = "fired".into(),
            "the label 'fired'",
        ),
        // Past f32's range: read as infinity, which made every score NaN.
        (
            "head.json",
            |p| p["head"]["weights"][0][0] = 1e300.into(),
            "head's weights hold a number beyond the range of 32-bit floats",
        ),
        (
            "head.json",
            |p| p["examples"][0]["embedding"][3] = (-1e300).into(),
            "embedding holds a number that is not finite",
        ),
        (
            "cal.json",
            |p| p["calibration"]["min_score"] = 5.into(),
            "min_score is 5, and must lie between -1 and 1",
        ),
        (
            "head.json",
            |p| p["head"] = serde_json::Value::Null,
            "neither a few-shot head nor a calibration",
        ),
        (
            "head.json",
            |p| p["examples"] = serde_json::json!([]),
            "a few-shot head but none of the examples it learned from",
        ),
        (
            "head.json",
            |p| p["examples"][0]["embedding"] = serde_json::json!([0.5, 0.5]),
            "an embedding of 2 numbers, where this model makes",
        ),
        (
            "cal.json",
            |p| *p = serde_json::json!([]),
            "not a failup profile, which is a JSON object with a whole-number \"format\"",
        ),
        (
            "cal.json",
            |p| p["format"] = "2".into(),
            "not a failup profile",
        ),
        // Within f32's range, but far past what a fit writes: every score was NaN, and every
        // confidence 0 or 1.
        (
            "head.json",
            |p| p["head"]["weights"][1][0] = 3e10.into(),
            "head's weights hold 30000000000, where a fit writes numbers within ±1000",
        ),
        (
            "cal.json",
            |p| p["calibration"]["confidence_slope"] = 1e30.into(),
            "must lie between 0.0001 and 100",
        ),
        // A misspelt key was ignored, so the setting it meant to change silently was not.
        (
            "cal.json",
            |p| p["calibration"]["min_margn"] = 0.1.into(),
            "unknown key `min_margn`",
        ),
        (
            "head.json",
            |p| p["exampels"] = serde_json::json!([]),
            "unknown key `exampels`",
        ),
    ];
    for (from, edit, says) in edits {
        let mut profile = read(from);
        edit(&mut profile);
        std::fs::write(dir.path().join("edited.json"), profile.to_string()).unwrap();
        let args = [
            "advise",
            "--profile",
            "edited.json",
            "They gave the lead to the new hire.",
        ];
        let out = failup_env(dir.path(), &args, None, &[HASHED]);
        assert_eq!(out.status.code(), Some(2), "{says}: {}", stdout(&out));
        let said = stderr(&out);
        assert!(
            said.contains("edited.json") && said.contains(says),
            "{said}"
        );
    }
}

/// train and calibrate read their input twice, so standard input is refused up front with
/// what to do; it used to fail after the fit with "-: No such file or directory".
#[test]
fn train_and_calibrate_refuse_standard_input_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    for command in ["train", "calibrate"] {
        let out = failup_on_a_closed_pipe(dir.path(), &[command, "-", "-o", "p.json"]);
        assert_eq!(out.status.code(), Some(2), "{command}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("save it to a file first"),
            "{}",
            stderr(&out)
        );
        assert!(!dir.path().join("p.json").exists());
    }
}

/// A profile written under a table's name was JSON in a `.csv`, found by whoever opened it.
#[test]
fn train_and_calibrate_refuse_a_table_name_for_the_profile_before_the_fit() {
    let dir = tempfile::tempdir().unwrap();
    let labelled = fixture("labelled.csv");
    for (command, name) in [("train", "p.csv"), ("calibrate", "p.JSONL")] {
        // A model that is not there would fail the fit: the name is refused before it.
        let args = [
            command,
            labelled.to_str().unwrap(),
            "-o",
            name,
            "--model",
            "nowhere",
        ];
        let out = failup_env(dir.path(), &args, None, &[HASHED]);
        assert_eq!(out.status.code(), Some(2), "{command}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("a profile is one JSON object") && stderr(&out).contains(".json"),
            "{}",
            stderr(&out)
        );
        assert!(
            !stderr(&out).contains("embedding"),
            "refused before the fit"
        );
        assert!(!dir.path().join(name).exists());
    }
}

/// A benchmark of a file with nothing to read is refused; it reported a rate of empty rows.
#[test]
fn bench_refuses_a_file_with_no_story_to_read() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text, says) in [
        ("header.csv", "id,text\n", "no data rows"),
        (
            "empty.csv",
            "id,text\n1,\n2,  \n",
            "2 rows, none with a word",
        ),
    ] {
        std::fs::write(dir.path().join(name), text).unwrap();
        let out = failup_env(dir.path(), &["bench", name], None, &[HASHED]);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stdout(&out));
        assert!(stderr(&out).contains(says), "{}", stderr(&out));
    }
    let out = failup_on_a_closed_pipe(dir.path(), &["bench", "-"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("save it to a file first"),
        "{}",
        stderr(&out)
    );
}

/// Rows with nothing to read are not counted as stories: one story among many empty rows
/// gave a rate of thousands of stories/s.
#[test]
fn bench_counts_only_the_stories_it_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("id,text\n1,I was passed over for the project lead role.\n");
    for i in 2..=40 {
        csv += &format!("{i},\n");
    }
    std::fs::write(dir.path().join("sparse.csv"), csv).unwrap();
    let args = ["bench", "sparse.csv", "--repeat", "1", "--format", "json"];
    let out = failup_env(dir.path(), &args, None, &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["stories"], 1, "{report}");
    assert_eq!(report["rows_without_text"], 39, "{report}");
    let out = failup_env(
        dir.path(),
        &["bench", "sparse.csv", "--repeat", "1"],
        None,
        &[HASHED],
    );
    assert!(
        stdout(&out).contains("(1 story, ")
            && stdout(&out).contains("39 rows without text, not counted"),
        "{}",
        stdout(&out)
    );
}

/// A file that classify would warn of (a quote that never closes swallows the rest of it) is
/// timed with a warning and its rows counted as flagged: bench timed it without a word.
#[test]
fn bench_warns_of_rows_not_read_as_the_file_meant() {
    let dir = tempfile::tempdir().unwrap();
    let csv = "id,text\n1,\"unclosed\n2,hello\n3,We lost the pitch.\n";
    std::fs::write(dir.path().join("mal.csv"), csv).unwrap();
    let args = ["bench", "mal.csv", "--repeat", "1", "--format", "json"];
    let out = failup_env(dir.path(), &args, None, &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["rows_flagged"], 1, "{report}");
    assert!(
        stderr(&out).contains("mal.csv: 1 of its rows is not read as the file meant"),
        "{}",
        stderr(&out)
    );
    std::fs::write(
        dir.path().join("fine.csv"),
        "id,text\n1,We lost the pitch.\n",
    )
    .unwrap();
    let args = ["bench", "fine.csv", "--repeat", "1", "--format", "json"];
    let out = failup_env(dir.path(), &args, None, &[HASHED]);
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["rows_flagged"], 0, "{report}");
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
}

/// FAILUP_PROFILE, set for classify, is not used by bench, which says so rather than letting
/// zero-shot figures pass for the head's.
#[test]
fn bench_says_it_does_not_use_a_profile_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), "id,text\n1,I lost the pitch.\n").unwrap();
    let args = ["bench", "in.csv", "--repeat", "1"];
    let note = "does not use FAILUP_PROFILE";
    let out = failup_env(
        dir.path(),
        &args,
        None,
        &[HASHED, ("FAILUP_PROFILE", "head.json")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains(note), "{}", stderr(&out));
    let out = failup_env(dir.path(), &args, None, &[HASHED]);
    assert!(!stderr(&out).contains(note), "{}", stderr(&out));
}

/// The rows are the same with or without a report grouped by a column the rows do not keep,
/// even when that column holds bytes that are not UTF-8 (they flagged the row before).
#[test]
fn grouping_the_report_leaves_the_rows_alone() {
    let dir = tempfile::tempdir().unwrap();
    let csv =
        b"id,text,team\n1,I was passed over for the lead role.,r\xe9d\n2,We lost the pitch.,blue\n";
    std::fs::write(dir.path().join("teams.csv"), csv).unwrap();
    let plain = failup_env(
        dir.path(),
        &["classify", "teams.csv", "-q"],
        None,
        &[HASHED],
    );
    let args = [
        "classify",
        "teams.csv",
        "-q",
        "--group-by",
        "team",
        "--report",
        "r.json",
    ];
    let grouped = failup_env(dir.path(), &args, None, &[HASHED]);
    assert_eq!(grouped.status.code(), Some(0), "{}", stderr(&grouped));
    assert_eq!(stdout(&plain), stdout(&grouped));
    assert!(
        !stdout(&grouped).contains("invalid_utf8"),
        "{}",
        stdout(&grouped)
    );
    let report = std::fs::read_to_string(dir.path().join("r.json")).unwrap();
    assert!(report.contains("r\u{FFFD}d"), "{report}");
}

/// Standard error that cannot be written (a reader that closed it, a full disk) costs the
/// messages, not the run: the first warning used to panic with exit 101, before any row was
/// kept.
#[test]
fn a_closed_standard_error_does_not_stop_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let csv = "id,text\n1,\n2,I was passed over for the lead role.\n3,\n";
    std::fs::write(dir.path().join("in.csv"), csv).unwrap();
    let status = hashed_command(dir.path(), &["classify", "in.csv", "-o", "out.csv"])
        .stderr(pipe_nobody_reads())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let written = std::fs::read_to_string(dir.path().join("out.csv")).unwrap();
    let plain = failup_env(dir.path(), &["classify", "in.csv", "-q"], None, &[HASHED]);
    assert_eq!(written, stdout(&plain));
    assert_eq!(written.lines().count(), 4, "{written}");
}

/// A summary on standard output whose reader has gone (`--summary-out - | head`) is cut
/// short by the reader's choice, as rows are; the rows file and the report file are still
/// put in place. The rows file used to be left behind as a partial file, with exit 0.
#[test]
fn a_summary_reader_that_stops_early_leaves_the_files_complete() {
    let dir = tempfile::tempdir().unwrap();
    let csv = "id,text\n1,I was passed over for the lead role.\n2,We lost the pitch.\n";
    std::fs::write(dir.path().join("in.csv"), csv).unwrap();
    let args = [
        "classify",
        "in.csv",
        "-o",
        "out.csv",
        "-q",
        "--summary-out",
        "-",
    ];
    let status = hashed_command(dir.path(), &args)
        .args(["--report", "r.json"])
        .stdout(pipe_nobody_reads())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let plain = failup_env(dir.path(), &["classify", "in.csv", "-q"], None, &[HASHED]);
    let written = std::fs::read_to_string(dir.path().join("out.csv")).unwrap();
    assert_eq!(written, stdout(&plain));
    let report = std::fs::read_to_string(dir.path().join("r.json")).unwrap();
    assert!(report.contains("\"rows\": 2"), "{report}");
    assert!(!dir.path().join(".out.csv.partial").exists());
}

/// Rows with bytes that are not UTF-8 end with a pointer to --encoding, which a legacy
/// export needs; once it is given, the file reads clean and nothing is said.
#[test]
fn bytes_that_are_not_utf8_point_to_the_encoding_flag() {
    let dir = tempfile::tempdir().unwrap();
    let csv = b"id,text\n1,caf\xe9 cr\xe8me lost the pitch\n2,caf\xe9\n3,fine\n";
    std::fs::write(dir.path().join("legacy.csv"), csv).unwrap();
    let args = ["classify", "legacy.csv", "-q", "-o", "out.csv"];
    let out = failup_env(dir.path(), &args, None, &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("note: 2 rows held bytes that are not UTF-8")
            && stderr(&out).contains("--encoding windows-1252"),
        "{}",
        stderr(&out)
    );
    let latin1 = [&args[..], &["--encoding", "latin1"]].concat();
    let out = failup_env(dir.path(), &latin1, None, &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    // UTF-16 with a lone surrogate: broken, but no encoding flag would mend it.
    let mut utf16: Vec<u16> = "\u{FEFF}id,text\n1,caf".encode_utf16().collect();
    utf16.extend([0xD800, u16::from(b'\n')]);
    let bytes: Vec<u8> = utf16.iter().flat_map(|u| u.to_le_bytes()).collect();
    std::fs::write(dir.path().join("legacy.csv"), bytes).unwrap();
    let out = failup_env(dir.path(), &args, None, &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("invalid_utf8"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("--encoding"), "{}", stderr(&out));
}

/// Cross-validation says so when the heads that score a scenario learn from few of its
/// stories, and not merely because it has fewer stories than folds (leave-one-out).
#[test]
fn eval_cv_warns_when_a_scenario_has_few_stories_to_learn_from() {
    let small = fixture("labelled.csv");
    let out = failup_env(
        &repo_path(""),
        &["eval", small.to_str().unwrap(), "--cv", "2", "-q"],
        None,
        &[HASHED],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "learn from few of them, passed_over (1 story, 0 to learn from), pivot_regret (1 \
             story, 0 to learn from), lost_pitch (2 stories, 1 to learn from), other (2 stories, \
             1 to learn from), so their figures are unsteady"
        ),
        "{}",
        stderr(&out)
    );
    // 21 to 24 stories a scenario: 5 folds, and leave-one-out's 90, leave plenty.
    for k in ["5", "90"] {
        let out = failup_env(
            &repo_path(""),
            &["eval", "data/calibration.csv", "--cv", k, "-q"],
            None,
            &[HASHED],
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(
            !stderr(&out).contains("warning"),
            "--cv {k}: {}",
            stderr(&out)
        );
    }
}

/// eval says so when it scores a profile on the file the profile was fitted on.
#[test]
fn eval_warns_when_a_profile_is_scored_on_its_own_training_file() {
    let dir = tempfile::tempdir().unwrap();
    let (examples, labelled) = (fixture("fewshot_examples.csv"), fixture("labelled.csv"));
    let (examples, labelled) = (examples.to_str().unwrap(), labelled.to_str().unwrap());
    let out = failup_env(
        dir.path(),
        &["train", examples, "-o", "p.json"],
        None,
        &[HASHED],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for (input, warned) in [(examples, true), (labelled, false)] {
        let args = ["eval", input, "--profile", "p.json", "-q"];
        let out = failup_env(dir.path(), &args, None, &[HASHED]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let said = stderr(&out);
        assert_eq!(said.contains("was fitted on"), warned, "{input}: {said}");
    }
    // Calibrating the head keeps the record of its examples and adds the calibration's.
    let args = [
        "calibrate",
        labelled,
        "--profile",
        "p.json",
        "-o",
        "pc.json",
    ];
    let out = failup_env(dir.path(), &args, None, &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for input in [examples, labelled] {
        let args = ["eval", input, "--profile", "pc.json", "-q"];
        let out = failup_env(dir.path(), &args, None, &[HASHED]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let said = stderr(&out);
        assert!(said.contains("was fitted on"), "{input}: {said}");
        // The calibration's own stories are told as such, not as what the head learned.
        let calibrated_on = input == labelled;
        assert_eq!(
            said.contains("the calibration of --profile"),
            calibrated_on,
            "{said}"
        );
        assert_eq!(said.contains("--cv 5"), !calibrated_on, "{said}");
    }
    // One of several calibration files, and --examples that are the input.
    let calibration = repo_path("data/calibration.csv");
    let calibration = calibration.to_str().unwrap();
    let args = ["calibrate", calibration, labelled, "-o", "two.json"];
    let out = failup_env(dir.path(), &args, None, &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for args in [
        &["eval", labelled, "--profile", "two.json", "-q"][..],
        &["eval", examples, "--examples", examples, "-q"][..],
    ] {
        let out = failup_env(dir.path(), args, None, &[HASHED]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let said = stderr(&out);
        assert!(said.contains("was fitted on"), "{args:?}: {said}");
    }
    // The examples inside another file (saved again with CRLF, beside stories of its own):
    // found by the stories, not by the file's bytes, and counted.
    let mut mixed = std::fs::read_to_string(labelled).unwrap();
    mixed.extend(
        std::fs::read_to_string(examples)
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.to_string() + "\n"),
    );
    std::fs::write(dir.path().join("mixed.csv"), mixed.replace('\n', "\r\n")).unwrap();
    for source in [&["--profile", "p.json"][..], &["--examples", examples]] {
        let args = [&["eval", "mixed.csv", "-q"][..], source].concat();
        let out = failup_env(dir.path(), &args, None, &[HASHED]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let said = stderr(&out);
        assert!(
            said.contains("warning: 8 of the 14 stories in mixed.csv are among the examples"),
            "{args:?}: {said}"
        );
    }
    let out = failup_env(
        dir.path(),
        &["eval", labelled, "--examples", examples, "-q"],
        None,
        &[HASHED],
    );
    assert!(
        !stderr(&out).contains("among the examples"),
        "{}",
        stderr(&out)
    );
}

/// embed accounts for every row as classify does: a status in each line, and a warning for
/// each row that is not ok. It wrote null or a partial text's vector without a word.
#[test]
fn embed_gives_each_row_a_status_and_warns_of_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("in.csv"),
        b"id,text\ne,\nshort\nu3,too,many,fields\nb,caf\xff\nok,They gave the lead to the new hire.\n",
    )
    .unwrap();
    let out = failup_env(
        dir.path(),
        &["embed", "in.csv", "-o", "out.jsonl"],
        None,
        &[HASHED],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap();
    let statuses: Vec<String> = lines
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["status"].to_string())
        .collect();
    assert_eq!(
        statuses,
        [
            "\"empty\"",
            "\"malformed\"",
            "\"malformed\"",
            "\"invalid_utf8\"",
            "\"ok\""
        ]
    );
    let said = stderr(&out);
    let warnings: Vec<&str> = said.lines().filter(|l| l.starts_with("warning")).collect();
    assert_eq!(warnings.len(), 4, "{said}");
    for (line, (at, status)) in warnings.iter().zip([
        ("in.csv:2: row 1 (id e)", "empty"),
        ("in.csv:3: row 2 (id short)", "malformed"),
        ("in.csv:4: row 3 (id u3)", "malformed"),
        ("in.csv:5: row 4 (id b)", "invalid_utf8"),
    ]) {
        assert!(
            line.contains(at) && line.ends_with(&format!("status={status}")),
            "{line}"
        );
    }
    // A quote that never closes is told once, as such.
    let quoted = "id,text\n1,I lost my job\n2,\"open\n3,more\n";
    std::fs::write(dir.path().join("q.csv"), quoted).unwrap();
    let out = failup_env(
        dir.path(),
        &["embed", "q.csv", "-o", "q.jsonl"],
        None,
        &[HASHED],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let said = stderr(&out);
    let warnings: Vec<&str> = said.lines().filter(|l| l.starts_with("warning")).collect();
    assert_eq!(warnings.len(), 1, "{said}");
    assert!(
        warnings[0].contains("row 2 (id 2): a quoted field opens"),
        "{said}"
    );
}

/// An empty FAILUP_ variable (`FAILUP_PROFILE= failup …`) counts as unset, as shells use it;
/// it failed every command with "a value is required".
#[test]
fn an_empty_failup_variable_counts_as_unset() {
    let out = failup_env(
        &repo_path(""),
        &["advise", "They gave the lead to the new hire."],
        None,
        &[HASHED, ("FAILUP_PROFILE", ""), ("FAILUP_THREADS", "")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("confidence"), "{}", stdout(&out));
}

/// A bad value from a FAILUP_ variable is said to come from there: clap blames the flag, which
/// the user never typed. A bad value typed on the command line gets no such note.
#[test]
fn a_bad_value_from_the_environment_names_its_variable() {
    let story = "They gave the lead to the new hire.";
    let from_env = failup_env(
        &repo_path(""),
        &["advise", story],
        None,
        &[HASHED, ("FAILUP_THREADS", "lots")],
    );
    assert_eq!(from_env.status.code(), Some(2));
    let said = stderr(&from_env);
    assert!(
        said.contains("'lots' for '--threads <N>'")
            && said.contains("came from the environment, FAILUP_THREADS=\"lots\""),
        "{said}"
    );
    // A number that parses but is out of range is traced to its variable too.
    let zero = failup_env(
        &repo_path(""),
        &["advise", story],
        None,
        &[HASHED, ("FAILUP_BATCH_SIZE", "0")],
    );
    assert_eq!(zero.status.code(), Some(2));
    assert!(
        stderr(&zero).contains("it must be at least 1")
            && stderr(&zero).contains("FAILUP_BATCH_SIZE=\"0\""),
        "{}",
        stderr(&zero)
    );
    let typed = failup_env(
        &repo_path(""),
        &["advise", story, "--threads=lots"],
        None,
        &[HASHED, ("FAILUP_THREADS", "lots")],
    );
    assert_eq!(typed.status.code(), Some(2));
    assert!(
        !stderr(&typed).contains("environment"),
        "{}",
        stderr(&typed)
    );
}

/// A value that parses but does not go with the others (bf16 on rten) is traced to its
/// variable too, when the error names its flag and the command line did not give it.
#[test]
fn a_setting_from_the_environment_that_does_not_fit_names_its_variable() {
    let story = "They gave the lead to the new hire.";
    let args = ["advise", story, "--backend", "rten"];
    let out = failup_env(&repo_path(""), &args, None, &[("FAILUP_PRECISION", "bf16")]);
    assert_eq!(out.status.code(), Some(2));
    let said = stderr(&out);
    assert!(
        said.contains("--precision bf16 runs on the AMX engine only")
            && said.contains(
                "--precision was not given; its value came from the environment, \
                 FAILUP_PRECISION=\"bf16\""
            )
            && !said.contains("FAILUP_BACKEND"),
        "{said}"
    );
    // Given on the command line, the same setting gets no note.
    let typed = [&args[..], &["--precision", "bf16"]].concat();
    let out = failup_env(
        &repo_path(""),
        &typed,
        None,
        &[("FAILUP_PRECISION", "bf16")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(!stderr(&out).contains("environment"), "{}", stderr(&out));
}

/// A negative or huge count is refused in words: clap took `-1` for a flag and suggested
/// `-- -1`, and the standard parser said "invalid digit found in string".
#[test]
fn negative_and_huge_counts_are_refused_in_words() {
    let cases: [(&[&str], &str); 5] = [
        (
            &["--threads", "-1"],
            "`-1` is not a whole number (0 or more)",
        ),
        (&["--threads", "2000"], "it must be at most 1024"),
        (
            &["--batch-size", "-3"],
            "`-3` is not a whole number of at least 1",
        ),
        (
            &["--batch-size", "99999999999999999999"],
            "`99999999999999999999` is too large a number",
        ),
        (
            &["--chunk-size", "-1"],
            "`-1` is not a whole number of at least 1",
        ),
    ];
    for (flags, says) in cases {
        let args = [&["classify", "in.csv"][..], flags].concat();
        let out = failup(&args);
        assert_eq!(out.status.code(), Some(2), "{flags:?}");
        assert!(stderr(&out).contains(says), "{flags:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains("-- -"), "{}", stderr(&out));
    }
    let out = failup(&["eval", "in.csv", "--errors", "-2"]);
    assert!(
        stderr(&out).contains("`-2` is not a whole number (0 or more)"),
        "{}",
        stderr(&out)
    );
}

/// `failup advise -` with `bytes` on standard input, on the test embedder.
fn advise_stdin(bytes: &[u8]) -> std::process::Output {
    use std::io::Write;
    let mut child = failup_command()
        .args(["advise", "-"])
        .env(HASHED.0, HASHED.1)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    child.wait_with_output().unwrap()
}

/// advise names where standard input stops being UTF-8 and how to convert it.
#[test]
fn advise_names_the_first_byte_of_stdin_that_is_not_utf8() {
    use std::io::Write;
    let out = advise_stdin(b"They gave the caf\xe9 to him.");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("byte 17 (counting from 0)") && stderr(&out).contains("iconv"),
        "{}",
        stderr(&out)
    );
    // UTF-16 with a byte-order mark ("Unicode" text on Windows) is read as such.
    let story = "\u{FEFF}They gave the café project to the new hire.";
    let utf16: Vec<u8> = story.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let plain = failup_env(&repo_path(""), &["advise", &story[3..]], None, &[HASHED]);
    let out = advise_stdin(&utf16);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), stdout(&plain));
    // Compressed input is told as such, not as text in a legacy encoding.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"id,text\n1,They gave the project to the new hire.\n")
        .unwrap();
    let out = advise_stdin(&gz.finish().unwrap());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("standard input is gzip-compressed")
            && !stderr(&out).contains("iconv"),
        "{}",
        stderr(&out)
    );
    // Zeros (`< /dev/zero`) are no text, and not a long story read from its start.
    let out = advise_stdin(&vec![0; 3 << 20]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no text, only control characters")
            && !stderr(&out).contains("longer than 1 MiB"),
        "{}",
        stderr(&out)
    );
    // An empty file saved with a byte-order mark is empty, not binary.
    let out = advise_stdin(b"\xEF\xBB\xBF\r\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("the story is empty"),
        "{}",
        stderr(&out)
    );
}

/// A CSV file piped to advise is still read as one story, but the user is told to run
/// classify; a story of several lines, one with commas among them, is not taken for one.
#[test]
fn advise_warns_when_given_a_csv_file() {
    let csv = b"\xEF\xBB\xBFid;\"Story Text\"\n1;They gave the project to the new hire.\n";
    let out = advise_stdin(csv);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("`id;\"Story Text\"`, reads as column names")
            && stderr(&out).contains("failup classify - for standard input"),
        "{}",
        stderr(&out)
    );
    // A spreadsheet's header with empty names at its end, and a file of one text column.
    for csv in [
        &b"id,text,,\n1,They gave it to Sam,,\n"[..],
        b"text\nThey gave it to Sam.\n",
    ] {
        let out = advise_stdin(csv);
        assert!(
            stderr(&out).contains("looks like a CSV file"),
            "{}",
            stderr(&out)
        );
    }
    // Stories whose first line has commas and a word like "story" or "text" in it.
    for story in [
        &b"I wrote the text, the slides, all of it.\nThen the project, my story for the launch \
           included, went to a new hire.\n"[..],
        b"Long story short, they fired me\nI had been there for nine years.\n",
        b"She texted, I waited\nThe next day, the promotion went to Sam.\n",
        b"Work history, briefly\nI was let go in March, after nine years.\n",
    ] {
        let out = advise_stdin(story);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(!stderr(&out).contains("CSV"), "{}", stderr(&out));
    }
}

/// train and calibrate take the reading flags eval takes (they had only --text-column): a
/// tab-separated file whose header has more commas than tabs needs --delimiter tab.
#[test]
fn train_and_calibrate_read_with_the_delimiter_and_encoding_given() {
    let dir = tempfile::tempdir().unwrap();
    latin1_tsv(dir.path(), "story (who, what, where, when)");
    let reading = [
        "--delimiter",
        "tab",
        "--encoding",
        "latin1",
        "--id-column",
        "story_id",
        "--text-column",
        "story (who, what, where, when)",
    ];
    for command in ["train", "calibrate"] {
        let args = [&[command, "l.tsv", "-o", "p.json"][..], &reading].concat();
        let out = failup_env(dir.path(), &args, None, &[HASHED]);
        assert_eq!(out.status.code(), Some(0), "{command}: {}", stderr(&out));
        if command == "train" {
            let profile = std::fs::read_to_string(dir.path().join("p.json")).unwrap();
            assert!(profile.contains("\"S-l1\""), "ids from --id-column");
        }
        let args = [
            command,
            "l.tsv",
            "-o",
            "p.json",
            "--text-column",
            reading[7],
        ];
        let out = failup_env(dir.path(), &args, None, &[HASHED]);
        assert_eq!(out.status.code(), Some(2), "{command} without --delimiter");
    }
    // Without --encoding, the Latin-1 bytes are refused by line, not learned as U+FFFD.
    for command in ["train", "calibrate", "eval"] {
        let mut args = vec![command, "l.tsv"];
        args.extend(&reading[..2]);
        args.extend(&reading[4..]);
        if command != "eval" {
            args.extend(["-o", "p.json"]);
        }
        let out = failup_env(dir.path(), &args, None, &[HASHED]);
        assert_eq!(out.status.code(), Some(2), "{command}: {}", stderr(&out));
        let said = stderr(&out);
        assert!(
            said.contains("l.tsv:2: row 1 has bytes that are not UTF-8"),
            "{said}"
        );
    }
}

/// Slips with labelled files are told, not scored: the same file given twice to calibrate,
/// one column named for both the stories and the labels; a profile an editor saved with a
/// byte-order mark still loads; a failed gate shows two numbers that differ.
#[test]
fn labelled_file_slips_are_told() {
    let dir = tempfile::tempdir().unwrap();
    let labelled = fixture("labelled.csv");
    let labelled = labelled.to_str().unwrap();
    std::fs::copy(labelled, dir.path().join("copy.csv")).unwrap();
    let refused = |args: &[&str], says: &str| {
        let out = failup_env(dir.path(), args, None, &[HASHED]);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    };
    refused(
        &["calibrate", labelled, "copy.csv", "-o", "c.json"],
        "copy.csv hold the same bytes, so their stories would count twice",
    );
    refused(
        &["eval", labelled, "--text-column", "label"],
        "--text-column and --label-column both name 'label'",
    );

    let out = failup_env(
        dir.path(),
        &["train", labelled, "-o", "p.json"],
        None,
        &[HASHED],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend(std::fs::read(dir.path().join("p.json")).unwrap());
    std::fs::write(dir.path().join("bom.json"), bom).unwrap();
    let args = ["eval", labelled, "--profile", "bom.json", "-q"];
    let out = failup_env(dir.path(), &args, None, &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Zero-shot, whose figure is below 1 on the stand-in engine.
    let args = ["eval", labelled, "-q", "--format", "json"];
    let out = failup_env(dir.path(), &args, None, &[HASHED]);
    let f1 = serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["macro_f1"]
        .as_f64()
        .unwrap();
    let min = format!("{}", f1 + 1e-6);
    let out = failup_env(
        dir.path(),
        &["eval", labelled, "-q", "--min-macro-f1", &min],
        None,
        &[HASHED],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let said = stderr(&out);
    let shown: Vec<&str> = said
        .split_whitespace()
        .filter(|w| w.parse::<f64>().is_ok())
        .collect();
    assert_eq!(shown.len(), 2, "{said}");
    assert_ne!(shown[0], shown[1], "{said}");
}

/// `-q` on train and calibrate, as on the other commands: no summary, warnings still shown.
#[test]
fn train_and_calibrate_take_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let labelled = fixture("labelled.csv");
    let labelled = labelled.to_str().unwrap();
    for args in [
        &["train", labelled, "-o", "p.json", "-q"][..],
        &["calibrate", labelled, "-o", "c.json", "-q"],
    ] {
        let out = failup_env(dir.path(), args, None, &[HASHED]);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        let said = stderr(&out);
        assert!(
            said.lines().all(|l| l.starts_with("warning:")),
            "{args:?}: {said}"
        );
        assert!(dir.path().join(args[3]).is_file());
    }
    // The 7 stories are few for a calibration: that warning is kept.
    let out = failup_env(
        dir.path(),
        &["calibrate", labelled, "-o", "c.json", "-q"],
        None,
        &[HASHED],
    );
    assert!(
        stderr(&out).contains("are few for a calibration"),
        "{}",
        stderr(&out)
    );
}

/// Examples that leave a scenario out are fitted, with a warning naming it; a head brought by
/// FAILUP_PROFILE, not typed, is named when calibrate fits on it (silent, it changed the fit).
#[test]
fn train_names_missing_scenarios_and_calibrate_a_head_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("id,label,text\n");
    for i in 0..5 {
        csv += &format!("{i},passed_over,they gave project {i} to the new hire\n");
    }
    std::fs::write(dir.path().join("one.csv"), csv).unwrap();
    let out = failup_env(
        dir.path(),
        &["train", "one.csv", "-o", "p.json", "-q"],
        None,
        &[HASHED],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "the 5 examples hold no story of 'pivot_regret', 'lost_pitch', 'other': the head \
             learns them from the prototypes alone"
        ),
        "{}",
        stderr(&out)
    );
    let labelled = fixture("labelled.csv");
    let calibrate = [
        "calibrate",
        labelled.to_str().unwrap(),
        "-o",
        "c.json",
        "-q",
    ];
    let out = failup_env(
        dir.path(),
        &calibrate,
        None,
        &[HASHED, ("FAILUP_PROFILE", "p.json")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let head_from_env = "calibrating the few-shot head of FAILUP_PROFILE=p.json";
    assert!(stderr(&out).contains(head_from_env), "{}", stderr(&out));
    let typed = [&calibrate[..], &["--profile", "p.json"]].concat();
    let out = failup_env(dir.path(), &typed, None, &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains(head_from_env), "{}", stderr(&out));
}

/// A labelled story given twice counts twice, a repeated id makes eval's lists ambiguous, and a
/// copy under another label contradicts the first: each is warned about, with the ids, and the
/// run goes on. A copy with accents added is one too: the model reads "é" as "e".
#[test]
fn labelled_files_with_repeated_ids_or_stories_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let csv = "id,label,text\n\
               a,passed_over,they gave the project to the new hire\n\
               b,lost_pitch,we lost the pitch to a rival agency\n\
               a,other,my manager left the company\n\
               c,passed_over,  They gave the project  to the new hire!\n\
               d,other,the office moved across town\n\
               e,other,thèy gave the project to the new hiré\n";
    std::fs::write(dir.path().join("twice.csv"), csv).unwrap();
    for command in ["eval", "train", "calibrate"] {
        let out = failup_env(
            dir.path(),
            &[command, "twice.csv", "-o", "p.json", "-q"][..if command == "eval" { 2 } else { 5 }],
            None,
            &[HASHED],
        );
        // Five stories this easy leave calibrate's temperature unpinned: it refuses to fit,
        // after the warnings.
        let fits = if command == "calibrate" { 2 } else { 0 };
        assert_eq!(out.status.code(), Some(fits), "{command}: {}", stderr(&out));
        let said = stderr(&out);
        assert!(
            said.contains("twice.csv: 1 id is on more than one row ('a')")
                && said.contains(concat!(
                    "1 story is given more than once, word for word, case, accents, spacing ",
                    "and punctuation aside (2 copies, as ids 'c', 'e')"
                ))
                && said.contains(concat!(
                    "1 row repeats a story word for word (case, accents, spacing and punctuation ",
                    "aside) under another label (id 'e')"
                )),
            "{command}: {said}"
        );
    }
}

/// `-o` of train and calibrate replaces an earlier profile, whole or cut short, but not a file
/// of anything else: notes given the profile's name by a slip were overwritten.
#[test]
fn a_fit_replaces_a_profile_but_not_another_file() {
    let dir = tempfile::tempdir().unwrap();
    let labelled = repo_path("data/calibration.csv");
    let labelled = labelled.to_str().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "my notes\n").unwrap();
    for command in ["train", "calibrate"] {
        let out = failup_env(
            dir.path(),
            &[command, labelled, "-o", "notes.txt", "-q"],
            None,
            &[HASHED],
        );
        assert_eq!(out.status.code(), Some(2), "{command}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("-o notes.txt exists and is not a failup profile"),
            "{command}: {}",
            stderr(&out)
        );
        let fit = [command, labelled, "-o", "p.json", "-q"];
        let out = failup_env(dir.path(), &fit, None, &[HASHED]);
        assert_eq!(out.status.code(), Some(0), "{command}: {}", stderr(&out));
        // A damaged profile is replaced too: the message that refuses it says to fit again.
        let whole = std::fs::read(dir.path().join("p.json")).unwrap();
        std::fs::write(dir.path().join("p.json"), &whole[..whole.len() / 2]).unwrap();
        let out = failup_env(dir.path(), &fit, None, &[HASHED]);
        assert_eq!(out.status.code(), Some(0), "{command}: {}", stderr(&out));
        assert_eq!(std::fs::read(dir.path().join("p.json")).unwrap(), whole);
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("notes.txt")).unwrap(),
        "my notes\n"
    );
}

/// A labelled story over 1 MiB is an error naming its row in eval, train and calibrate: it is
/// cut there, and had been scored and learned from cut, without a word (classify flags it).
#[test]
fn a_labelled_story_over_a_mebibyte_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let csv = format!(
        "id,label,text\n1,other,I was laid off.\n2,passed_over,{}\n",
        "I was passed over for the promotion. ".repeat(30_000)
    );
    std::fs::write(dir.path().join("huge.csv"), csv).unwrap();
    for command in ["eval", "train", "calibrate"] {
        let args = [command, "huge.csv", "-o", "p.json", "-q"];
        let args = &args[..if command == "eval" { 2 } else { 5 }];
        let out = failup_env(dir.path(), args, None, &[HASHED]);
        assert_eq!(out.status.code(), Some(2), "{command}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("huge.csv:3: row 2 has a story longer than 1 MiB"),
            "{command}: {}",
            stderr(&out)
        );
    }
    assert!(!dir.path().join("p.json").exists());
}

/// A repeated id is shown as other messages show input: a terminal's escape codes written out,
/// a long one shortened. It was printed raw, so a file could retitle or clear the terminal.
#[test]
fn a_repeated_labelled_id_is_shown_escaped_and_short() {
    let dir = tempfile::tempdir().unwrap();
    let long = "j".repeat(5000);
    let csv = format!(
        "id,label,text\n\
         \u{1b}[2J,passed_over,they gave the project to the new hire\n\
         \u{1b}[2J,other,my manager left the company\n\
         {long},lost_pitch,we lost the pitch to a rival agency\n\
         {long},other,the office moved across town\n"
    );
    std::fs::write(dir.path().join("ids.csv"), csv).unwrap();
    let out = failup_env(dir.path(), &["eval", "ids.csv", "-q"], None, &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(
        said.contains("2 ids are on more than one row ('\\u{1b}[2J', 'jjj"),
        "{said}"
    );
    assert!(!said.contains('\u{1b}') && said.len() < 2000, "{said}");
}

/// An output named for what it will not hold is refused before the work, unless a format flag
/// says what is meant: classify's rows under a report's name, `.json` or `.tsv`, and a report
/// under a table's name. Each wrote CSV or a text report under that name with exit 0.
#[test]
fn outputs_named_for_another_format_are_refused_unless_the_format_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("stories.csv");
    let input = input.to_str().unwrap();
    let refused = [
        (
            &["-o", "out.tsv"][..],
            "-o out.tsv would hold comma-separated values",
        ),
        (&["-o", "out.json"], "name it out.jsonl for JSON lines"),
        (&["-o", "r.html"], "for a report add --report r.html"),
        (
            &["-o", "out.xlsx"],
            "names a workbook, but failup writes CSV",
        ),
        (
            &["-o", "-", "--report", "r.csv"],
            "--report r.csv names a table",
        ),
    ];
    for (args, said) in refused {
        let all = [&["classify", input, "-q"][..], args].concat();
        let out = failup_env(dir.path(), &all, None, &[HASHED]);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(said), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    let given = [
        &["-o", "out.tsv", "--format", "csv"][..],
        &["-o", "out.json", "--format", "jsonl"],
        &[
            "-o",
            "rows.csv",
            "--report",
            "r.csv",
            "--report-format",
            "markdown",
        ],
    ];
    for args in given {
        let all = [&["classify", input, "-q"][..], args].concat();
        let out = failup_env(dir.path(), &all, None, &[HASHED]);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    }
    assert!(std::fs::read_to_string(dir.path().join("r.csv"))
        .unwrap()
        .starts_with('#'));
    let out = failup_in(dir.path(), &["report", "rows.csv", "-o", "r.tsv"], None);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("-o r.tsv names a table"),
        "{}",
        stderr(&out)
    );
    let out = failup_in(
        dir.path(),
        &["report", "rows.csv", "-o", "r.tsv", "--format", "text"],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// Every story is read sentence by sentence, so a short one of three sentences gets no note
/// about windows; a story past the model's window is told how it was read.
#[test]
fn advise_notes_only_a_story_longer_than_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let short = "I was fired on Monday. My boss yelled at me. Then I cried.";
    let out = failup_env(dir.path(), &["advise", short], None, &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stdout(&out).contains("note:"), "{}", stdout(&out));
    let long = std::fs::read_to_string(fixture("long_story.txt")).unwrap();
    let out = failup_env(dir.path(), &["advise", &long], None, &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out)
            .contains("more than the model's window of 256; it was read sentence by sentence ("),
        "{}",
        stdout(&out)
    );
    // One sentence past the window is read in overlapping windows, and told so.
    let one = "word ".repeat(600);
    let out = failup_env(dir.path(), &["advise", &one], None, &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let said = "it was read as one sentence, in overlapping windows, 3 pieces in all";
    assert!(stdout(&out).contains(said), "{}", stdout(&out));
}

/// `-` reads the story from standard input; words after it were dropped without a word.
#[test]
fn advise_refuses_a_dash_followed_by_words() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["advise", "-", "They", "gave", "it", "away"];
    // No input is written: failup refuses before reading it, and may be gone by then.
    let out = failup_env(dir.path(), &args, None, &[HASHED]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("the words after it (They gave it away) would be left out"),
        "{}",
        stderr(&out)
    );
    let out = failup_env(
        dir.path(),
        &["advise", "-"],
        Some("We lost the pitch."),
        &[HASHED],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// An unquoted story is read as its words joined by spaces, as the quoted one: it used to be
/// refused with "unexpected argument" at its second word.
#[test]
fn advise_reads_an_unquoted_story_as_the_quoted_one() {
    let root = repo_path("");
    let words = ["They", "gave", "the", "lead", "to", "the", "new", "hire."];
    let quoted = failup_env(&root, &["advise", &words.join(" ")], None, &[HASHED]);
    let unquoted = failup_env(&root, &[&["advise"][..], &words].concat(), None, &[HASHED]);
    assert_eq!(quoted.status.code(), Some(0), "{}", stderr(&quoted));
    assert_eq!(unquoted.status.code(), Some(0), "{}", stderr(&unquoted));
    assert_eq!(stdout(&quoted), stdout(&unquoted));
    assert!(
        stdout(&quoted).contains("confidence"),
        "{}",
        stdout(&quoted)
    );
}

/// An --examples file reads fixed column names, so a missing one is to be renamed; it was told
/// to use --label-column, which classify does not take.
#[test]
fn an_examples_file_without_a_label_column_is_told_to_rename_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("ex.csv"),
        "id,scenario,text\n1,passed_over,gave it away\n",
    )
    .unwrap();
    std::fs::write(d.join("in.csv"), "id,text\n1,hello there friend\n").unwrap();
    let out = failup_env(
        d,
        &["classify", "in.csv", "--examples", "ex.csv", "-o", "o.csv"],
        None,
        &[HASHED],
    );
    assert_eq!(out.status.code(), Some(2));
    let said = stderr(&out);
    assert!(
        said.contains("ex.csv:1: no column named 'label'")
            && said.contains("Rename the file's column")
            && !said.contains("Choose one with --label-column"),
        "{said}"
    );
    std::fs::write(
        d.join("ex2.csv"),
        "id,label,story_text\n1,passed_over,gave it\n",
    )
    .unwrap();
    let out = failup_env(
        d,
        &["advise", "hi", "--examples", "ex2.csv"],
        None,
        &[HASHED],
    );
    assert!(
        stderr(&out).contains("no column named 'text'")
            && stderr(&out).contains("`failup train FILE --text-column NAME`"),
        "{}",
        stderr(&out)
    );
    let out = failup_env(d, &["train", "ex.csv", "-o", "p.json"], None, &[HASHED]);
    assert!(
        stderr(&out).contains("Choose one with --label-column"),
        "{}",
        stderr(&out)
    );
}

/// Encoding names are matched whatever their case, as help spells them ("UTF-8"); a folder
/// given to bench is called a folder, not a stream.
#[test]
fn encoding_names_ignore_case_and_bench_names_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), b"id,text\n1,caf\xe9 job lost\n").unwrap();
    for name in ["UTF-8", "Latin1", "WINDOWS-1252"] {
        let args = [
            "classify",
            "in.csv",
            "--encoding",
            name,
            "-q",
            "-o",
            "o.csv",
        ];
        let out = failup_env(dir.path(), &args, None, &[HASHED]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
    }
    let out = failup_env(dir.path(), &["bench", "."], None, &[HASHED]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains(". is a folder"), "{}", stderr(&out));
}

/// A head is fitted on fp32 vectors by default; FAILUP_PRECISION, set for classify, fits it
/// on int8 ones with a warning, and a typed flag is taken as meant.
#[test]
fn train_warns_when_the_environment_fits_the_head_inexact() {
    let dir = tempfile::tempdir().unwrap();
    let labelled = repo_path("tests/fixtures/labelled.csv");
    let args = ["train", labelled.to_str().unwrap(), "-q", "-o", "p.json"];
    let env = [HASHED, ("FAILUP_PRECISION", "int8")];
    let out = failup_env(dir.path(), &args, None, &env);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("FAILUP_PRECISION=int8 (set in the environment) fits the head"),
        "{}",
        stderr(&out)
    );
    let typed = [&args[..], &["--precision", "int8"]].concat();
    let out = failup_env(dir.path(), &typed, None, &env);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("FAILUP_PRECISION"),
        "{}",
        stderr(&out)
    );
    // calibrate fits a head on --examples too.
    let calibration = repo_path("data/calibration.csv");
    let args = [
        "calibrate",
        calibration.to_str().unwrap(),
        "-q",
        "-o",
        "c.json",
        "--examples",
        labelled.to_str().unwrap(),
    ];
    let out = failup_env(dir.path(), &args, None, &env);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("FAILUP_PRECISION=int8 (set in the environment) fits the head"),
        "{}",
        stderr(&out)
    );
}

/// embed writes the model's vectors, which no taxonomy changes: it reads none and embeds no
/// prototypes (it took 9 s for a 3-row file without a cache), so a FAILUP_TAXONOMY set for
/// classify, even a missing one, changes nothing, and a typed --taxonomy is said to be unread.
#[test]
fn embed_reads_no_taxonomy() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("c.csv"),
        "id,text\n1,they gave it to the new hire\n",
    )
    .unwrap();
    let plain = failup_env(dir.path(), &["embed", "c.csv", "-q"], None, &[HASHED]);
    assert_eq!(plain.status.code(), Some(0), "{}", stderr(&plain));
    let cache = dir.path().join("cache");
    let env = [
        HASHED,
        ("FAILUP_TAXONOMY", "missing.toml"),
        ("FAILUP_CACHE_DIR", cache.to_str().unwrap()),
    ];
    let out = failup_env(dir.path(), &["embed", "c.csv", "-q"], None, &env);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), stdout(&plain));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    let cached = std::fs::read_dir(&cache).map_or(0, |d| d.count());
    assert_eq!(cached, 0, "no prototype was embedded and cached");
    let typed = ["embed", "c.csv", "-q", "--taxonomy", "missing.toml"];
    let out = failup_env(dir.path(), &typed, None, &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), stdout(&plain));
    assert!(
        stderr(&out).contains("--taxonomy is not read"),
        "{}",
        stderr(&out)
    );
}

/// embed's vectors are exact by default; FAILUP_PRECISION or FAILUP_LONG_TEXT, set for
/// classify, changes them with a warning, and a typed flag is taken as meant.
#[test]
fn embed_warns_when_the_environment_makes_its_vectors_inexact() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("c.csv"),
        "id,text\n1,they gave it to the new hire\n",
    )
    .unwrap();
    let env = [HASHED, ("FAILUP_PRECISION", "int8")];
    let out = failup_env(dir.path(), &["embed", "c.csv", "-q"], None, &env);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("FAILUP_PRECISION=int8 (set in the environment) makes these vectors int8"),
        "{}",
        stderr(&out)
    );
    let typed = ["embed", "c.csv", "-q", "--precision", "int8"];
    let out = failup_env(dir.path(), &typed, None, &env);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    // FAILUP_LONG_TEXT=chunk, set for classify, moves a long story's vector off the reference.
    let env = [HASHED, ("FAILUP_LONG_TEXT", "chunk")];
    let out = failup_env(dir.path(), &["embed", "c.csv", "-q"], None, &env);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("FAILUP_LONG_TEXT=chunk (set in the environment) makes a long"),
        "{}",
        stderr(&out)
    );
    let typed = ["embed", "c.csv", "-q", "--long-text", "chunk"];
    let out = failup_env(dir.path(), &typed, None, &env);
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    // Nor is it written under a name for something else.
    for name in ["e.json", "e.html", "e.md"] {
        let out = failup_env(
            dir.path(),
            &["embed", "c.csv", "-q", "-o", name],
            None,
            &[HASHED],
        );
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("embed writes JSON lines"),
            "{}",
            stderr(&out)
        );
    }
}

/// An id or kept column over 1 MiB is cut there, as documented, and now said: the row keeps
/// its status (the story was read whole), the warning names the columns and the line.
#[test]
fn cells_cut_at_the_cap_are_warned_about_with_their_columns() {
    let dir = tempfile::tempdir().unwrap();
    let big = "x".repeat(1_100_000);
    let csv = format!("id,text,note\n{big},they gave it to the new hire,{big}\nb,fine,short\n");
    std::fs::write(dir.path().join("c.csv"), csv).unwrap();
    let classify = [
        "classify",
        "c.csv",
        "--keep-columns",
        "note",
        "-o",
        "o.csv",
        "-q",
    ];
    for (args, says) in [
        (
            &classify[..],
            "columns 'id' and 'note' held more than 1 MiB",
        ),
        (
            &["embed", "c.csv", "-o", "o.jsonl", "-q"],
            "column 'id' held more than 1 MiB",
        ),
    ] {
        let out = failup_env(dir.path(), args, None, &[HASHED]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let said = stderr(&out);
        let warnings: Vec<&str> = said.lines().filter(|l| l.starts_with("warning")).collect();
        assert_eq!(warnings.len(), 1, "{said:.300}");
        assert!(
            warnings[0].starts_with("warning: c.csv:2: row 1") && warnings[0].contains(says),
            "{:.300}",
            warnings[0]
        );
    }
    let (_, rows) = parse_csv(&std::fs::read_to_string(dir.path().join("o.csv")).unwrap());
    assert_eq!(rows[0][0].len(), 1 << 20);
    // A group cell, read for the report alone, is cut for it and said the same way.
    let grouped = [
        "classify",
        "c.csv",
        "--group-by",
        "note",
        "--id-column",
        "text",
        "--report",
        "r.md",
        "-q",
    ];
    let out = failup_env(dir.path(), &grouped, None, &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "c.csv:2: row 1 (id they gave it to the new hire): column 'note' held more than 1 MiB"
        ),
        "{:.300}",
        stderr(&out)
    );
    assert!(rows[0].contains(&"ok".to_string()), "the status stays ok");

    // An id kept as a column too is one cut cell, named once.
    let both = [
        "classify",
        "c.csv",
        "--keep-columns",
        "id,note",
        "-o",
        "o.csv",
        "-q",
    ];
    let said = stderr(&failup_env(dir.path(), &both, None, &[HASHED]));
    assert!(
        said.contains("columns 'id' and 'note' held more than 1 MiB"),
        "{said:.300}"
    );

    // Past the first ten, such rows are counted apart from the flagged ones.
    let mut csv = String::from("id,text,note\n");
    for i in 0..12 {
        csv += &format!("{i},they gave it to the new hire,{big}\n");
    }
    std::fs::write(dir.path().join("c.csv"), csv).unwrap();
    let out = failup_env(dir.path(), &classify, None, &[HASHED]);
    let said = stderr(&out);
    assert!(
        said.contains("2 more rows with an id or kept column cut at 1 MiB (status ok)")
            && !said.contains("more rows flagged"),
        "{:.300}",
        said.lines().last().unwrap_or("")
    );
}

/// advise reads a story as classify does: at most its first MiB, with a warning.
#[test]
fn advise_reads_the_first_mib_of_a_giant_story() {
    let story = "I lost the pitch I led. ".repeat(50_000);
    let out = failup_env(&repo_path(""), &["advise", "-"], Some(&story), &[HASHED]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("longer than 1 MiB; read from its start"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).contains("confidence"));
}

/// embed writes JSON lines, so a CSV name for its output is refused with the name to use.
#[test]
fn embed_refuses_an_output_named_as_csv() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), "id,text\n1,lost the pitch\n").unwrap();
    let out = failup_env(
        dir.path(),
        &["embed", "in.csv", "-o", "vec.CSV"],
        None,
        &[HASHED],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not CSV; name the output .jsonl, e.g. -o vec.jsonl"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("vec.CSV").exists());
}

/// embed says nothing when all is well, so an output with no vectors is told: an input with a
/// header alone, or a shard that got none of the rows.
#[test]
fn embed_tells_of_an_output_with_no_vectors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.csv"), "id,text\n").unwrap();
    std::fs::write(dir.path().join("two.csv"), "id,text\n1,a\n2,b\n").unwrap();
    let run = |args: &[&str]| failup_env(dir.path(), args, None, &[HASHED]);
    let out = run(&["embed", "empty.csv", "-o", "e.jsonl"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(std::fs::read(dir.path().join("e.jsonl")).unwrap(), b"");
    assert!(
        stderr(&out)
            .contains("empty.csv has no rows below its header, so e.jsonl holds no vectors"),
        "{}",
        stderr(&out)
    );
    let out = run(&["embed", "two.csv", "-o", "s.jsonl", "--shard", "3/4"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("shard 3/4 of two.csv (2 rows in all) has no rows"),
        "{}",
        stderr(&out)
    );
    let out = run(&["embed", "two.csv", "-o", "t.jsonl"]);
    assert_eq!(stderr(&out), "", "quiet when there are vectors");
}

/// int8 on the AMX engine is refused for what it is, on any CPU: it was told that this CPU
/// cannot run int8 there, and to use --precision int8.
#[test]
fn int8_on_the_amx_engine_is_refused_as_never_running_there() {
    let args = ["advise", "hello", "--backend", "amx", "--precision", "int8"];
    let out = failup(&args);
    assert_eq!(out.status.code(), Some(2));
    let said = stderr(&out);
    assert!(
        said.contains(
            "--precision int8 is rten's quantized model; the AMX engine runs fp32 or bf16"
        ) && !said.contains("cannot run"),
        "{said}"
    );
}

/// `categories --prototypes` numbers each prototype as `classify --explain` names the nearest
/// one, so a row's `nearest` can be looked up: a prototype's own text finds itself.
#[test]
fn explain_names_a_prototype_by_the_number_categories_lists() {
    let dir = tempfile::tempdir().unwrap();
    let listing = failup_in(dir.path(), &["categories", "--prototypes"], None);
    assert_eq!(listing.status.code(), Some(0), "{}", stderr(&listing));
    let listing = stdout(&listing);
    let text = failup::taxonomy::Taxonomy::builtin().scenarios[1].prototypes[6].clone();
    let line = listing
        .lines()
        .find(|l| l.ends_with(&text))
        .unwrap_or_else(|| panic!("{text} is not listed"));
    assert!(line.trim_start().starts_with("#7 "), "{line}");
    assert!(
        listing.contains("Prototypes (pivot_regret#N):"),
        "{listing}"
    );

    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["id", "text"]).unwrap();
    w.write_record(["p", &text]).unwrap();
    std::fs::write(dir.path().join("in.csv"), w.into_inner().unwrap()).unwrap();
    let out = failup_env(
        dir.path(),
        &["classify", "in.csv", "--explain", "-q", "-o", "-"],
        None,
        &[HASHED],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (header, rows) = parse_csv(&stdout(&out));
    let nearest = header.iter().position(|h| h == "nearest").unwrap();
    assert_eq!(rows[0][nearest], "pivot_regret#7");
}

/// A model folder whose files are not one model's is refused when it loads, naming the file:
/// a modules.json with a stage failup does not run (its vectors would be other than the
/// model's, silently), a tokenizer with ids past the embedding table (it failed inside the
/// engine, on the first story with such a token), and a config.json that is a folder, a
/// dangling link or a pipe (read as no config.json at all, so its checks were skipped). The
/// same three stages under a newer sentence-transformers' package paths load.
#[cfg(unix)]
#[test]
fn a_model_folder_whose_files_are_not_its_own_is_refused_at_load() {
    let bundled = repo_path("models/all-MiniLM-L6-v2");
    let read = |file: &str| std::fs::read_to_string(bundled.join(file)).unwrap();
    let modules = read("modules.json").replace("models.Normalize", "models.Dense");
    let config = read("config.json").replace("\"vocab_size\": 30522", "\"vocab_size\": 1000");
    type Make = Box<dyn Fn(&std::path::Path)>;
    let cases: [(&str, Make, &str); 5] = [
        (
            "modules.json",
            Box::new(move |p| std::fs::write(p, &modules).unwrap()),
            "modules.json lists a sentence_transformers.models.Dense stage, which failup does \
             not run",
        ),
        (
            "config.json",
            Box::new(move |p| std::fs::write(p, &config).unwrap()),
            "tokenizer.json gives token ids up to 30521, but config.json's vocab_size is 1000",
        ),
        (
            "config.json",
            Box::new(|p| std::fs::create_dir(p).unwrap()),
            "config.json is a folder, not a file",
        ),
        (
            "config.json",
            Box::new(|p| std::os::unix::fs::symlink(p.with_extension("gone"), p).unwrap()),
            "config.json is a link that cannot be followed",
        ),
        // A pipe would hang the load until something wrote to it.
        (
            "config.json",
            Box::new(|p| {
                let made = std::process::Command::new("mkfifo").arg(p).status();
                assert!(made.unwrap().success());
            }),
            "config.json is not a regular file",
        ),
    ];
    for (file, make, says) in cases {
        let model = tempfile::tempdir().unwrap();
        link_bundled_model_except(model.path(), file);
        make(&model.path().join(file));
        let dir = model.path().to_str().unwrap();
        let out = failup(&["advise", "We lost the pitch.", "--model", dir]);
        assert_eq!(out.status.code(), Some(2), "{says}: {}", stdout(&out));
        assert!(stderr(&out).contains(says), "{says}: {}", stderr(&out));
        assert!(stderr(&out).contains("  fix: "), "{}", stderr(&out));
    }
    // The stages under the package paths of newer sentence-transformers releases are the same
    // three, and load.
    let model = tempfile::tempdir().unwrap();
    link_bundled_model_except(model.path(), "modules.json");
    let newer = read("modules.json")
        .replace("models.Transformer", "base.modules.transformer.Transformer")
        .replace(
            "models.Pooling",
            "sentence_transformer.modules.pooling.Pooling",
        )
        .replace("models.Normalize", "base.modules.normalize.Normalize");
    std::fs::write(model.path().join("modules.json"), newer).unwrap();
    let dir = model.path().to_str().unwrap();
    let out = failup(&["advise", "We lost the pitch.", "--model", dir]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// Two prototypes that differ only in what the tokenizer sets aside (an accent, an emoji it
/// reads as unknown) are the same tokens, so in two scenarios they tie them and in one they
/// count twice: refused, as the taxonomy's own check refuses the same text with other case or
/// spacing. The same words in another order are other tokens, and are kept.
#[test]
fn prototypes_that_are_the_same_tokens_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let taxonomy = std::fs::read_to_string(repo_path("data/taxonomy.toml")).unwrap();
    let parsed: toml::Value = toml::from_str(&taxonomy).unwrap();
    assert_eq!(parsed["scenario"][0]["id"].as_str(), Some("passed_over"));
    let first = parsed["scenario"][0]["prototypes"][0].as_str().unwrap();
    // Each prototype put at the head of the given scenario's list.
    let with = |added: &[(usize, &str)]| {
        let mut edited = taxonomy.clone();
        let list = "prototypes = [";
        for &(nth, prototype) in added {
            let at = edited.match_indices(list).nth(nth).unwrap().0 + list.len();
            edited.insert_str(at, &format!("\n  \"{prototype}\","));
        }
        std::fs::write(dir.path().join("t.toml"), edited).unwrap();
        let args = ["advise", "We lost the pitch.", "--taxonomy", "t.toml"];
        failup_env(dir.path(), &args, None, &[HASHED])
    };
    let refused = |out: std::process::Output, says: &str| {
        assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
        let said = stderr(&out);
        assert!(
            said.contains("taxonomy t.toml: ") && said.contains(says),
            "{said}"
        );
    };
    let accented = first.replacen('o', "ó", 1);
    assert_ne!(first, accented);
    // Each is named by its number, as categories --prototypes lists it, and quoted short.
    let short = |p: &str| match p.split_whitespace().count() > 12 {
        true => format!(
            "{}…",
            p.split_whitespace().take(12).collect::<Vec<_>>().join(" ")
        ),
        false => p.to_string(),
    };
    refused(
        with(&[(1, &accented)]),
        &format!(
            "the prototype pivot_regret#1 (\"{}\") is the same tokens to the model as \
             passed_over#1 (\"{}\")",
            short(&accented),
            short(first)
        ),
    );
    let (smile, cry) = (format!("{first} \u{1F600}"), format!("{first} \u{1F622}"));
    refused(
        with(&[(0, &smile), (0, &cry)]),
        "the prototype passed_over#2 (",
    );
    // A word of no letters the model knows, however long, is named with the file too.
    refused(
        with(&[(2, &"x".repeat(150))]),
        "the prototype lost_pitch#1 (\"xxxx",
    );
    let reordered: Vec<&str> = first.split_whitespace().rev().collect();
    let kept = with(&[(1, &reordered.join(" "))]);
    assert_eq!(kept.status.code(), Some(0), "{}", stderr(&kept));
}

/// A calibrated profile's temperature, `other` rule and confidence replace a taxonomy's own:
/// where a taxonomy sets one of them to a value of its own, a note says it was replaced; a
/// taxonomy that keeps the built-in values gets none, run after run.
#[test]
fn a_profiles_calibration_over_an_own_taxonomy_is_noted() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(common::repo_path("data/taxonomy.toml")).unwrap();
    let labelled = common::repo_path("data/calibration.csv");
    let labelled = labelled.to_str().unwrap();
    let run = |args: &[&str]| {
        let out = failup_env(dir.path(), args, None, &[HASHED]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        stderr(&out)
    };
    std::fs::write(dir.path().join("ours.toml"), format!("# ours\n{shipped}")).unwrap();
    run(&[
        "calibrate",
        labelled,
        "--taxonomy",
        "ours.toml",
        "-o",
        "cal.json",
        "-q",
    ]);
    let advise = [
        "advise",
        "They gave the project to the new hire.",
        "--profile",
        "cal.json",
    ];
    let ours = [&advise[..], &["--taxonomy", "ours.toml"]].concat();
    // A taxonomy that keeps the built-in values has nothing of its own replaced.
    assert!(!run(&ours).contains("replace the taxonomy's"));
    let edited = shipped.replacen("min_score = ", "min_score = 0.5 # was ", 1);
    assert_ne!(edited, shipped);
    std::fs::write(dir.path().join("ours.toml"), edited).unwrap();
    let said = run(&ours);
    assert!(
        said.contains(
            "note: cal.json is calibrated, so its values replace the taxonomy's own: min_score"
        ) && said.contains("(the taxonomy's: 0.5000); leave out --profile")
            && !said.contains("temperature"),
        "{said}"
    );
    assert!(!run(&advise).contains("replace the taxonomy's"));
}

/// A story's control codes (a colour, a window title) and an example's id are shown escaped
/// by `advise --explain`, not sent to the terminal to obey.
#[test]
fn advise_explain_shows_control_codes_escaped() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ex.csv"),
        "id,text,label\n\"\u{1b}]0;title\u{7}ex1\",They gave the Henderson account to the new \
         hire after my years.,passed_over\ne2,We lost the pitch I led after months.,lost_pitch\n",
    )
    .unwrap();
    let advise = |story: &str| {
        let args = ["advise", "--explain", "--examples", "ex.csv", story];
        let out = failup_env(dir.path(), &args, None, &[HASHED]);
        assert!(out.status.success(), "{}", stderr(&out));
        let shown = stdout(&out);
        assert!(
            !shown.contains('\u{1b}') && !shown.contains('\u{7}'),
            "{shown}"
        );
        shown
    };
    let shown = advise(
        "Some \u{1b}[1mwords\u{1b}[0m to open with. They gave the \u{1b}[31mHenderson\u{1b}[0m \
         account to the new hire after my years.",
    );
    let evidence = shown.lines().find(|l| l.starts_with("evidence: ")).unwrap();
    assert!(
        evidence.contains("\\u{1b}[1mwords") || evidence.contains("\\u{1b}[31mHenderson"),
        "{shown}"
    );
    let shown = advise("They gave the Henderson account to the new hire after my years.");
    assert!(
        shown.contains("nearest: example:\\u{1b}]0;title\\u{7}ex1"),
        "{shown}"
    );
}
