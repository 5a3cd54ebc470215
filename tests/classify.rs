//! `failup classify` end to end, with the bundled model and small CSV fixtures.

mod common;

use common::*;

const IDS: [&str; 12] = [
    "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9", "a10", "a11", "a12",
];

#[test]
fn every_input_row_appears_once_in_order() {
    let input = fixture("stories.csv");
    let out = failup(&["classify", input.to_str().unwrap(), "--quiet"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (header, rows) = parse_csv(&stdout(&out));
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let ids: Vec<&str> = rows.iter().map(|r| r[col("id")].as_str()).collect();
    assert_eq!(ids, IDS);
    for r in &rows {
        let status = &r[col("status")];
        if ["a4", "a6"].contains(&r[col("id")].as_str()) {
            assert_eq!(status, "empty");
            assert_eq!(r[col("category")], "");
            assert_eq!(r[col("tokens")], "0");
        } else {
            assert_eq!(status, "ok");
            let c: f64 = r[col("confidence")].parse().unwrap();
            assert!((0.0..=1.0).contains(&c));
            assert_ne!(r[col("category")], r[col("runner_up")]);
            assert!(!r[col("advice")].is_empty());
        }
    }
    for id in ["passed_over", "pivot_regret", "lost_pitch", "other"] {
        assert!(header.contains(&format!("score_{id}")), "{header:?}");
    }
}

/// Classifies `csv`, written as `in.csv` in `dir`, which must succeed: its header, rows and
/// standard error.
fn classify_csv(dir: &std::path::Path, csv: &str) -> (Vec<String>, Vec<Vec<String>>, String) {
    std::fs::write(dir.join("in.csv"), csv).unwrap();
    let out = failup_in(dir, &["classify", "in.csv", "--quiet"], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (header, rows) = parse_csv(&stdout(&out));
    (header, rows, stderr(&out))
}

/// A story wrapped at 72 columns, as a plain-text email export has it, with any line ends, is
/// classified as the same story unwrapped: its lines had been read as sentences, and 11 of 90
/// real stories wrapped so changed scenario.
#[test]
fn a_story_wrapped_at_a_width_reads_as_the_story() {
    let story = "I had been told at my review in January that the regional lead role would be \
                 mine once Sam retired, and I spent the spring training the team for it. In \
                 May my manager announced at the all-hands that he had given it to a colleague \
                 who joined in March. Nobody told me before the meeting.";
    let mut wrapped = String::new();
    let mut line = String::new();
    for word in story.split(' ') {
        if !line.is_empty() && line.len() + 1 + word.len() > 72 {
            wrapped += &line;
            wrapped += "\n";
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line += word;
    }
    wrapped += &line;
    let dir = tempfile::tempdir().unwrap();
    let csv = format!(
        "id,text\none,\"{story}\"\nlf,\"{wrapped}\"\ncrlf,\"{}\"\n",
        wrapped.replace('\n', "\r\n")
    );
    let (header, rows, _) = classify_csv(dir.path(), &csv);
    let scores: Vec<usize> = (0..header.len())
        .filter(|&i| header[i] != "id" && header[i] != "tokens")
        .collect();
    for row in &rows[1..] {
        for &i in &scores {
            assert_eq!(row[i], rows[0][i], "{} of {}", header[i], row[0]);
        }
    }
}

/// Spreadsheet exports put `N/A`, `-` or `?` where there was no answer, a survey `Prefer not
/// to say`, a failed formula `#VALUE!`. Classified, each got a named scenario or `other` at
/// up to 0.87 confidence and fed the report's shares; they are blank cells.
#[test]
fn placeholders_and_punctuation_are_empty_cells_not_stories() {
    let dir = tempfile::tempdir().unwrap();
    let csv = "id,text\np1,N/A\np2,-\np3,?\np4,n.a.\np5, TBD \np6,...\np7,0\np8,？？\n\
               d1,Prefer not to say\nd2,No comment.\nd3,[removed]\nd4,Does not apply\n\
               e1,#VALUE!\ne2,#DIV/0!\n\
               s1,None of my pitches won the client.\ns2,\"N/A, they said, when I asked why.\"\n\
               s3,\"No, I would rather not say what happened, but they gave my role away.\"\n\
               s4,No.\ns5,#FIRED!\n";
    let (header, rows, err) = classify_csv(dir.path(), csv);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let status: Vec<&str> = rows.iter().map(|r| r[col("status")].as_str()).collect();
    assert_eq!(status[..14], ["empty"; 14]);
    assert_eq!(status[14..], ["ok"; 5]);
    assert!(rows[..14].iter().all(|r| r[col("category")].is_empty()));
    // Ten warnings are printed, the rest counted: the first eight rows' and two of these.
    assert_eq!(
        err.matches("an answer that tells no story").count(),
        2,
        "{err}"
    );
    for (text, why) in [
        ("#VALUE!", "a spreadsheet's error value"),
        ("Rather not say", "an answer that tells no story"),
        ("I'd prefer not to say.", "an answer that tells no story"),
        ("Prefer not to answer", "an answer that tells no story"),
    ] {
        let advise = failup_in(dir.path(), &["advise", text], None);
        assert_eq!(advise.status.code(), Some(2));
        assert!(stderr(&advise).contains(why), "{}", stderr(&advise));
    }
    assert_eq!(
        err.matches("only a placeholder such as N/A").count(),
        3,
        "{err}"
    );
    assert_eq!(
        err.matches("no words, only digits or punctuation").count(),
        5,
        "{err}"
    );

    let advise = failup_in(dir.path(), &["advise", "n/a"], None);
    assert_eq!(advise.status.code(), Some(2));
    assert!(
        stderr(&advise).contains("nothing to classify"),
        "{}",
        stderr(&advise)
    );
}

#[test]
fn a_story_with_no_word_the_model_knows_is_left_unclassified_and_told() {
    // The tokenizer reads emoji as [UNK]: the model would see nothing of the story, and its
    // verdict would be a confident guess.
    let dir = tempfile::tempdir().unwrap();
    // So are the model's own markers spelt out, which it reads as those markers.
    let csv = "id,text\ne1,\"\u{1F600}\u{1F600}\u{1F600}\"\ne2,\u{1F525}\ne3,\"They gave my project to a new hire \u{1F600}\"\ne4,[MASK]\ne5,[PAD] [CLS] [SEP]\n";
    let (header, rows, err) = classify_csv(dir.path(), csv);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let status: Vec<&str> = rows.iter().map(|r| r[col("status")].as_str()).collect();
    assert_eq!(status, ["empty", "empty", "ok", "empty", "empty"]);
    assert_eq!(rows[0][col("category")], "");
    assert_eq!(rows[2][col("category")], "passed_over");
    assert_eq!(err.matches("no word the model knows").count(), 4, "{err}");

    let advise = failup_in(dir.path(), &["advise", "\u{1F600}"], None);
    assert_eq!(advise.status.code(), Some(2));
    assert!(
        stderr(&advise).contains("no word the model knows"),
        "{}",
        stderr(&advise)
    );
}

/// In a labelled file such a story is an error, named by file and line (it was named by id
/// alone), in every command that reads one.
#[test]
fn a_labelled_story_with_no_word_the_model_knows_is_named_by_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let csv = "id,label,text\nA,other,Hello there\nB,lost_pitch,\"\u{1F600}\u{1F525}\"\n";
    std::fs::write(dir.path().join("l.csv"), csv).unwrap();
    for args in [
        vec!["eval", "l.csv"],
        vec!["train", "l.csv", "-o", "p.json"],
        vec!["calibrate", "l.csv", "-o", "c.json"],
    ] {
        let out = failup_in(dir.path(), &args, None);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("l.csv:3: the story with id B has no word the model knows"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn clear_stories_land_in_their_scenarios() {
    let input = fixture("stories.csv");
    let out = failup(&["classify", input.to_str().unwrap(), "--quiet"]);
    let (header, rows) = parse_csv(&stdout(&out));
    let cat = header.iter().position(|h| h == "category").unwrap();
    let by_id = |id: &str| rows.iter().find(|r| r[0] == id).unwrap()[cat].clone();
    assert_eq!(by_id("a1"), "passed_over");
    assert_eq!(by_id("a2"), "pivot_regret");
    assert_eq!(by_id("a3"), "lost_pitch");
    assert_eq!(by_id("a10"), "other");
}

#[test]
fn rten_and_the_default_fp32_engine_sort_every_story_alike() {
    // On a CPU with AMX, fp32 runs on the AMX engine unless rten is asked for; rten must still
    // classify end to end, and the two agree on every story (their embeddings differ only in
    // the last bits).
    let input = repo_path("data/sample_stories.csv");
    let path = input.to_str().unwrap();
    let categories = |extra: &[&str]| {
        let out = failup(&[&["classify", path, "--quiet"], extra].concat());
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let (header, rows) = parse_csv(&stdout(&out));
        let cat = header.iter().position(|h| h == "category").unwrap();
        rows.into_iter().map(|r| r[cat].clone()).collect::<Vec<_>>()
    };
    let rten = categories(&["--backend", "rten", "--precision", "fp32"]);
    assert_eq!(rten.len(), 34);
    assert!(rten.iter().filter(|c| !c.is_empty()).count() >= 33);
    assert_eq!(rten, categories(&["--precision", "fp32"]));
}

#[test]
fn one_and_two_threads_give_identical_output() {
    let input = fixture("stories.csv");
    let path = input.to_str().unwrap();
    let one = failup(&["classify", path, "--quiet", "--threads", "1", "--keep-all"]);
    let two = failup(&["classify", path, "--quiet", "--threads", "2", "--keep-all"]);
    assert_eq!(one.status.code(), Some(0), "{}", stderr(&one));
    assert_eq!(two.status.code(), Some(0), "{}", stderr(&two));
    assert_eq!(one.stdout, two.stdout);
}

#[test]
fn a_few_shot_head_gives_the_same_output_on_any_thread_count_and_batch_size() {
    let input = fixture("stories.csv");
    let examples = fixture("fewshot_examples.csv");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "classify",
            input.to_str().unwrap(),
            "--quiet",
            "--examples",
            examples.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let out = failup_env(&repo_path(""), &args, None, &[HASHED]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        out.stdout
    };
    let reference = run(&["--threads", "1", "--batch-size", "1"]);
    assert_eq!(reference, run(&["--threads", "2", "--batch-size", "32"]));
}

#[test]
fn stdin_to_jsonl_with_kept_columns() {
    let text = std::fs::read_to_string(fixture("stories.csv")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = failup_in(
        dir.path(),
        &[
            "classify",
            "-",
            "--format",
            "jsonl",
            "--keep-columns",
            "team",
            "--quiet",
            "--model",
            repo_path("models/all-MiniLM-L6-v2").to_str().unwrap(),
        ],
        Some(&text),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), IDS.len());
    assert_eq!(lines[0]["id"], "a1");
    assert_eq!(lines[0]["columns"]["team"], "north");
    assert_eq!(lines[3]["status"], "empty");
    assert!(lines[3]["category"].is_null());
    assert!(lines[0]["scores"]["lost_pitch"].is_number());
}

#[test]
fn output_file_is_written_whole_and_input_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    std::fs::copy(fixture("stories.csv"), &input).unwrap();
    let model = repo_path("models/all-MiniLM-L6-v2");
    let model = model.to_str().unwrap();
    let out = failup_in(
        dir.path(),
        &[
            "classify", "in.csv", "-o", "out.csv", "-q", "--model", model,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (_, rows) = parse_csv(&std::fs::read_to_string(dir.path().join("out.csv")).unwrap());
    assert_eq!(rows.len(), IDS.len());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let before = std::fs::read(&input).unwrap();
    let out = failup_in(
        dir.path(),
        &["classify", "in.csv", "-o", "in.csv", "-q", "--model", model],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("is the input file"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(&input).unwrap(), before);
}

#[test]
fn summary_on_stderr_counts_rows() {
    let input = fixture("stories.csv");
    let out = failup(&["classify", input.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(err.contains("12 rows"), "{err}");
    assert!(err.contains("10 classified, 2 empty"), "{err}");
    assert!(
        err.contains("stories.csv:5: row 4 (id a4): empty text"),
        "{err}"
    );
}

/// Rows classified, empty and not classified add up to the rows read; flags on classified
/// rows are counted apart, so no row is counted twice or left out.
#[test]
fn summary_counts_add_up_with_malformed_rows() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("in.csv"),
        "id,text\n1,I was passed over\n2,Lost the pitch,x\nid,text\n3,\"a\" b\n4,\n",
    )
    .unwrap();
    let out = failup_in(dir.path(), &["classify", "in.csv"], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("5 rows in ")
            && err.contains(
                ": 3 classified, 1 empty, 1 errored (malformed, not classified); of \
             those classified, flagged: 2 malformed, 0 invalid UTF-8, 0 too long"
            ),
        "{err}"
    );
}

#[test]
fn missing_text_column_fails_with_exit_2_and_names_columns() {
    let input = fixture("stories.csv");
    let out = failup(&["classify", input.to_str().unwrap(), "--text-column", "txt"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("no column named 'txt'"), "{err}");
    assert!(err.contains("columns: id, team, text"), "{err}");
    assert!(err.contains("did you mean 'text'"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn missing_model_file_fails_with_exit_2_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_without_weights(dir.path());
    let input = fixture("stories.csv");
    let out = failup(&[
        "classify",
        input.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("missing file model.onnx"), "{err}");
    assert!(err.contains("fix:"), "{err}");
}

/// A copy of the bundled folder whose fp32 weights are the bundled ones, linked, and no more.
#[cfg(unix)]
fn model_with_fp32_weights(dir: &std::path::Path) -> std::path::PathBuf {
    let model = model_without_weights(dir);
    let weights = repo_path("models/all-MiniLM-L6-v2/model.onnx");
    std::os::unix::fs::symlink(weights, model.join("model.onnx")).unwrap();
    model
}

#[test]
fn broken_model_file_fails_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_without_weights(dir.path());
    std::fs::write(model.join("model.onnx"), b"not a model").unwrap();
    let out = failup(&["advise", "hello", "--model", model.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("model.onnx could not be loaded"),
        "{}",
        stderr(&out)
    );
}

/// A tokenizer.json that is JSON of another shape is met with where to get a sound one.
#[cfg(unix)]
#[test]
fn a_tokenizer_file_of_the_wrong_shape_is_told_how_to_fix_it() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_with_fp32_weights(dir.path());
    let args = ["advise", "hello", "--model", model.to_str().unwrap()];
    // An object the library misreads as bad JSON at a sound place is said to be JSON.
    for json in ["[1, 2]", r#"{"x": 1}"#] {
        std::fs::write(model.join("tokenizer.json"), json).unwrap();
        let out = failup(&[&args[..], &["--precision", "fp32"]].concat());
        assert_eq!(out.status.code(), Some(2));
        let err = stderr(&out);
        assert!(
            err.contains("tokenizer.json: it is JSON, but not a tokenizer's")
                && err.contains("copy it again from the model's sentence-transformers folder"),
            "{err}"
        );
    }
    std::fs::write(model.join("tokenizer.json"), "{").unwrap();
    let out = failup(&[&args[..], &["--precision", "fp32"]].concat());
    assert!(!stderr(&out).contains("it is JSON"), "{}", stderr(&out));
}

/// A broken int8 file is met with the fix for it, not for model.onnx; a window longer than the
/// model's positions is refused when the folder loads, not when the first long story comes.
#[cfg(unix)]
#[test]
fn a_broken_int8_file_or_too_long_a_window_is_told_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_with_fp32_weights(dir.path());
    std::fs::write(model.join("model.int8.onnx"), b"not a model").unwrap();
    let advise = |extra: &[&str]| {
        let args = [
            &["advise", "hello", "--model", model.to_str().unwrap()],
            extra,
        ]
        .concat();
        failup(&args)
    };
    let out = advise(&[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("model.int8.onnx could not be loaded"), "{err}");
    assert!(
        err.contains("models/quantize_int8.py") && err.contains("--precision fp32"),
        "{err}"
    );
    let out = advise(&["--precision", "fp32"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    std::fs::write(
        model.join("sentence_bert_config.json"),
        r#"{"max_seq_length": 100000, "do_lower_case": false}"#,
    )
    .unwrap();
    let out = advise(&["--precision", "fp32"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("max_seq_length 100000 is more than the 512 positions"),
        "{err}"
    );
}

#[test]
fn invalid_taxonomy_fails_with_exit_2_and_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let tax = dir.path().join("tax.toml");
    let text = failup::taxonomy::DEFAULT_TOML.replacen("id = \"other\"", "id = \"lost_pitch\"", 1);
    std::fs::write(&tax, &text).unwrap();
    let input = fixture("stories.csv");
    let out = failup(&[
        "classify",
        input.to_str().unwrap(),
        "--taxonomy",
        tax.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    let line = text[..text.rfind("id = \"lost_pitch\"").unwrap()]
        .matches('\n')
        .count()
        + 1;
    assert!(err.contains(&format!("tax.toml:{line}")), "{err}");
    assert!(err.contains("duplicate scenario id 'lost_pitch'"), "{err}");
}

#[test]
fn missing_input_file_fails_with_exit_2() {
    let out = failup(&["classify", "no/such/file.csv"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no/such/file.csv"),
        "{}",
        stderr(&out)
    );
}

/// `off` with spaces around it, as a shell slip leaves it, turns the cache off too: it was taken
/// for a folder named " off", made in the folder failup ran in.
#[test]
fn a_cache_dir_of_off_with_spaces_around_it_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("stories.csv");
    let args = ["classify", input.to_str().unwrap(), "-q"];
    for value in [" off", "OFF ", "\toff\n"] {
        let env = [("FAILUP_CACHE_DIR", value), HASHED];
        let out = failup_env(dir.path(), &args, None, &env);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let made: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(made.is_empty(), "{value:?}: {made:?}");
    }
}

#[test]
fn prototype_cache_hit_gives_the_same_output_as_a_fresh_computation() {
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().to_str().unwrap();
    let input = fixture("stories.csv");
    let args = ["classify", input.to_str().unwrap(), "-q"];
    let root = repo_path("");
    let env = [("FAILUP_CACHE_DIR", cache_dir), HASHED];
    let miss = failup_env(&root, &args, None, &env);
    let files = std::fs::read_dir(cache.path()).unwrap().count();
    assert_eq!(files, 1, "the first run stores the prototype embeddings");
    let hit = failup_env(&root, &args, None, &env);
    let off = failup_env(&root, &args, None, &[("FAILUP_CACHE_DIR", "off"), HASHED]);
    assert_eq!(miss.status.code(), Some(0), "{}", stderr(&miss));
    assert_eq!(miss.stdout, hit.stdout);
    assert_eq!(miss.stdout, off.stdout);

    // A file damaged at its full size (zeros, as a crash can leave) fails its checksum: the
    // prototypes are embedded again and the file rewritten, not trusted.
    let file = std::fs::read_dir(cache.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let size = std::fs::metadata(&file).unwrap().len() as usize;
    std::fs::write(&file, vec![0u8; size]).unwrap();
    let damaged = failup_env(&root, &args, None, &env);
    assert_eq!(damaged.stdout, off.stdout, "{}", stderr(&damaged));
    assert_ne!(std::fs::read(&file).unwrap(), vec![0u8; size], "rewritten");

    // A prototype past the window is read whole or cut, as --long-text says: its own file.
    let truncate = [&args[..], &["--long-text", "truncate"]].concat();
    let run = failup_env(&root, &truncate, None, &env);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 2);

    // Another key's whole file under this key's name (a sync tool's doing, say) fails its
    // checksum too, which covers the name: it was trusted, with another setup's numbers.
    let other = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| *p != file)
        .unwrap();
    let copied = std::fs::read(&other).unwrap();
    std::fs::write(&file, &copied).unwrap();
    let misnamed = failup_env(&root, &args, None, &env);
    assert_eq!(misnamed.stdout, off.stdout, "{}", stderr(&misnamed));
    assert_ne!(
        std::fs::read(&file).unwrap(),
        copied,
        "embedded again and rewritten"
    );

    // A cache that cannot be written is said, once, and the run goes on.
    let blocked = cache.path().join("a-file");
    std::fs::write(&blocked, "").unwrap();
    let env = [("FAILUP_CACHE_DIR", blocked.to_str().unwrap()), HASHED];
    let run = failup_env(&root, &args, None, &env);
    assert_eq!(run.stdout, off.stdout, "{}", stderr(&run));
    let warned = stderr(&run)
        .matches("cannot cache the prototype embeddings in")
        .count();
    assert_eq!(warned, 1, "{}", stderr(&run));
    // Named for what is in the way: the system's own word for a file there is "File exists".
    assert!(
        stderr(&run).contains("a-file (not a folder)"),
        "{}",
        stderr(&run)
    );
}

/// The tokenizer shapes every prototype's embedding, and config.json the AMX engine's network
/// (its heads and sizes), so a changed tokenizer.json or config.json gets a cache file of its
/// own. The cache ignored config.json: a bf16 run after a broken config was put right kept the
/// broken one's prototypes.
#[test]
fn a_changed_tokenizer_or_config_is_not_served_cached_prototypes() {
    for file in ["tokenizer.json", "config.json"] {
        let cache = tempfile::tempdir().unwrap();
        let model = tempfile::tempdir().unwrap();
        let bundled = repo_path("models/all-MiniLM-L6-v2");
        link_bundled_model_except(model.path(), file);
        let copy = model.path().join(file);
        std::fs::copy(bundled.join(file), &copy).unwrap();
        let input = fixture("stories.csv");
        let args = [
            "classify",
            input.to_str().unwrap(),
            "-q",
            "--model",
            model.path().to_str().unwrap(),
        ];
        let env = [("FAILUP_CACHE_DIR", cache.path().to_str().unwrap()), HASHED];
        let files = || std::fs::read_dir(cache.path()).unwrap().count();
        let run = failup_env(&repo_path(""), &args, None, &env);
        assert_eq!(run.status.code(), Some(0), "{file}: {}", stderr(&run));
        assert_eq!(files(), 1, "{file}");
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
        let edited = std::fs::File::options().append(true).open(&copy).unwrap();
        edited.set_modified(later).unwrap();
        let run = failup_env(&repo_path(""), &args, None, &env);
        assert_eq!(run.status.code(), Some(0), "{file}: {}", stderr(&run));
        assert_eq!(files(), 2, "a new key for the changed {file}");
    }
}

/// A copy of the binary with the repository's models/ folder beside it finds the model there,
/// whatever folder it runs from: the folder beside it is the one read, and an incomplete one is
/// named.
#[cfg(unix)]
#[test]
fn the_models_folder_beside_the_binary_is_found_from_any_folder() {
    let install = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let failup = install.path().join("failup");
    std::fs::copy(env!("CARGO_BIN_EXE_failup"), &failup).unwrap();
    let model = install.path().join("models/all-MiniLM-L6-v2");
    link_bundled_model_except(&model, "tokenizer.json");
    let run = || {
        std::process::Command::new(&failup)
            .args(["advise", "They gave the lead to the new hire."])
            .env_clear()
            .env("FAILUP_BACKEND", "test-hashed")
            .env("FAILUP_CACHE_DIR", "off")
            .current_dir(elsewhere.path())
            .output()
            .unwrap()
    };
    let out = run();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("model folder {}", model.display()))
            && stderr(&out).contains("missing file tokenizer.json"),
        "{}",
        stderr(&out)
    );
    let bundled = repo_path("models/all-MiniLM-L6-v2/tokenizer.json");
    std::os::unix::fs::symlink(bundled, model.join("tokenizer.json")).unwrap();
    let out = run();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// bf16 runs on failup's own engine, which takes the network's shape from config.json: a folder
/// without one is told so, not called a model of type "unknown".
#[cfg(unix)]
#[test]
fn bf16_without_config_json_says_what_is_missing() {
    let model = tempfile::tempdir().unwrap();
    link_bundled_model_except(model.path(), "config.json");
    let args = ["advise", "They gave the lead to the new hire."];
    let dir = [
        "--model",
        model.path().to_str().unwrap(),
        "--precision",
        "bf16",
    ];
    let out = failup(&[&args[..], &dir[..]].concat());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("reads the model's shape from its config.json, and")
            && stderr(&out).contains("has none; copy it from the model's sentence-transformers")
            && !stderr(&out).contains("unknown"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn classify_with_report_matches_report_on_the_written_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    std::fs::copy(fixture("stories.csv"), &input).unwrap();
    let model = repo_path("models/all-MiniLM-L6-v2");
    let model = model.to_str().unwrap();
    let env = [("SOURCE_DATE_EPOCH", "0")];
    let run = failup_env(
        dir.path(),
        &[
            "classify",
            "in.csv",
            "-o",
            "out.csv",
            "--keep-all",
            "-q",
            "--model",
            model,
            "--report",
            "inline.json",
            "--group-by",
            "team",
        ],
        None,
        &env,
    );
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let later = failup_env(
        dir.path(),
        &[
            "report",
            "out.csv",
            "--format",
            "json",
            "-o",
            "later.json",
            "--group-by",
            "team",
            "--model",
            model,
        ],
        None,
        &env,
    );
    assert_eq!(later.status.code(), Some(0), "{}", stderr(&later));
    let read = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(name)).unwrap()).unwrap()
    };
    let (mut inline, mut after) = (read("inline.json"), read("later.json"));
    // The header names the file each was made from, and the run's reading of the stories,
    // which the row file does not record; everything else must agree.
    inline["header"]["input"]["name"] = serde_json::Value::Null;
    after["header"]["input"]["name"] = serde_json::Value::Null;
    assert_eq!(inline["header"]["reading"]["precision"], "int8");
    assert_eq!(after["header"]["reading"], serde_json::Value::Null);
    inline["header"]["reading"] = serde_json::Value::Null;
    assert_eq!(inline, after);
    assert_eq!(inline["totals"]["rows"], 12);
}

/// Drops the `id` column so rows can be compared by content.
fn without_id(rows: &[Vec<String>]) -> Vec<Vec<String>> {
    rows.iter().map(|r| r[1..].to_vec()).collect()
}

#[test]
fn length_sorting_leaves_order_and_values_unchanged() {
    let input = fixture("stories.csv");
    let path = input.to_str().unwrap();
    // Batch size 1 embeds each story alone: no sorting and no padding can play a part.
    let alone = failup(&["classify", path, "-q", "--batch-size", "1"]);
    let sorted = failup(&["classify", path, "-q", "--batch-size", "32"]);
    assert_eq!(alone.status.code(), Some(0), "{}", stderr(&alone));
    let (_, a) = parse_csv(&stdout(&alone));
    let (_, b) = parse_csv(&stdout(&sorted));
    assert_eq!(a, b);
}

#[test]
fn duplicate_stories_are_embedded_once_with_identical_results() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixture("stories.csv")).unwrap();
    let (_, mut records) = parse_csv(&text);
    // Append every story again, under new ids, in reverse order.
    let mut again: Vec<Vec<String>> = records.clone();
    again.reverse();
    for r in &mut again {
        r[0] = format!("dup-{}", r[0]);
    }
    records.extend(again);
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["id", "team", "text"]).unwrap();
    for r in &records {
        w.write_record(r).unwrap();
    }
    let doubled = w.into_inner().unwrap();
    std::fs::write(dir.path().join("in.csv"), &doubled).unwrap();
    let model = repo_path("models/all-MiniLM-L6-v2");
    let out = failup_in(
        dir.path(),
        &[
            "classify",
            "in.csv",
            "-q",
            "--model",
            model.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (_, rows) = parse_csv(&stdout(&out));
    let n = rows.len() / 2;
    assert_eq!(rows.len(), 24);
    let firsts = without_id(&rows[..n]);
    let mut seconds = without_id(&rows[n..]);
    seconds.reverse();
    assert_eq!(firsts, seconds);
    assert!(rows[n].first().unwrap().starts_with("dup-"));
}

#[test]
fn the_output_name_chooses_json_lines_and_a_gz_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("stories.csv");
    let input = input.to_str().unwrap();
    for name in ["out.jsonl", "out.NDJSON"] {
        let out = failup_env(
            dir.path(),
            &["classify", input, "-q", "-o", name],
            None,
            &[HASHED],
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let written = std::fs::read_to_string(dir.path().join(name)).unwrap();
        let first: serde_json::Value = serde_json::from_str(written.lines().next().unwrap())
            .unwrap_or_else(|e| panic!("{name} is not JSON Lines ({e}): {written}"));
        assert_eq!(first["id"], "a1");
    }
    // --format still wins over the name.
    let out = failup_env(
        dir.path(),
        &[
            "classify",
            input,
            "-q",
            "-o",
            "rows.jsonl",
            "--format",
            "csv",
        ],
        None,
        &[HASHED],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let written = std::fs::read_to_string(dir.path().join("rows.jsonl")).unwrap();
    assert!(written.starts_with("id,category,"), "{written}");

    let out = failup_env(
        dir.path(),
        &["classify", input, "-q", "-o", "out.csv.gz"],
        None,
        &[HASHED],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("out.csv.gz: failup writes it uncompressed"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("out.csv.gz").exists());
    // Every output, not only the rows.
    for args in [
        &["embed", input, "-q", "-o", "e.jsonl.gz"][..],
        &[
            "classify",
            input,
            "-q",
            "-o",
            "o.csv",
            "--report",
            "r.json.GZ",
        ][..],
        &["merge", "--rows", "a.csv", "b.csv", "-o", "m.csv.gz"][..],
    ] {
        let out = failup_env(dir.path(), args, None, &[HASHED]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains("uncompressed"), "{}", stderr(&out));
    }
    assert!(!dir.path().join("o.csv").exists());
}

/// `--excel-safe` guards CSV cells; with JSON Lines it does nothing, and says so rather than
/// leaving the user to think the cells were guarded.
#[test]
fn excel_safe_with_json_lines_says_it_does_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("in.csv"),
        "id,text\n=1,We lost the pitch.\n",
    )
    .unwrap();
    let args = ["classify", "in.csv", "--excel-safe", "-q"];
    let jsonl = failup_env(
        dir.path(),
        &[&args[..], &["--format", "jsonl"]].concat(),
        None,
        &[HASHED],
    );
    assert_eq!(jsonl.status.code(), Some(0), "{}", stderr(&jsonl));
    assert!(stderr(&jsonl).contains("note: --excel-safe guards the cells of CSV output"));
    assert!(
        stdout(&jsonl).contains("\"id\":\"=1\""),
        "{}",
        stdout(&jsonl)
    );
    let csv = failup_env(dir.path(), &args, None, &[HASHED]);
    assert!(
        !stderr(&csv).contains("note: --excel-safe"),
        "{}",
        stderr(&csv)
    );
    assert!(stdout(&csv).contains("\n'=1,"), "{}", stdout(&csv));
}
