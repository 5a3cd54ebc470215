//! failup on CPUs without AVX-512, as QEMU's user-mode emulator runs it: it reports and carries
//! out the instruction sets of the CPU model it is given (`-cpu Haswell`: AVX2 and FMA, no
//! AVX-512; `-cpu Nehalem`: SSE4.2 at most, so rten takes its portable code). The default int8
//! path is checked on both against the machine's own run. Needs `qemu-x86_64` (Debian's
//! qemu-user), which .ci/run installs.

mod common;

use common::*;
use std::path::Path;

/// Four scenarios of three prototypes each: the real taxonomy's 482 would take minutes to
/// embed under emulation, and these tests are about the CPU, not the prototypes.
const TAXONOMY: &str = r#"
[classifier]
top_k = 2
sentence_top_k = 2
center = false

[[scenario]]
id = "passed_over"
title = "Passed over"
description = "Someone else got the project or promotion."
headline = "Ask why."
advice = ["Ask your supervisor why the other person was chosen."]
prototypes = [
  "My boss gave the big project to a colleague who joined last year.",
  "The promotion went to someone with half my experience.",
  "They picked the new guy to lead the launch instead of me.",
]

[[scenario]]
id = "pivot_regret"
title = "Pivot regret"
description = "A career change that is not working."
headline = "Take stock."
advice = ["List what the change gave you."]
prototypes = [
  "I left nursing to become a developer and I hate every day of it.",
  "Switching careers into sales was a mistake and I miss teaching.",
  "After the bootcamp I took a coding job and I feel out of my depth.",
]

[[scenario]]
id = "lost_pitch"
title = "Lost pitch"
description = "A pitch for new business that was lost."
headline = "Ask for feedback."
advice = ["Ask the prospect why they chose the other firm."]
prototypes = [
  "We pitched for the account and the client chose a competitor.",
  "The tender I led went to the incumbent agency.",
  "Our proposal lost to a cheaper bid after weeks of work.",
]

[[scenario]]
id = "other"
title = "Other"
description = "Another career setback."
headline = "Keep going."
advice = ["Write down what happened."]
prototypes = [
  "I was laid off with the rest of my team on Friday.",
  "I failed the licensing exam for the second time.",
  "My manager put me on a performance improvement plan.",
]
"#;

const STORIES: &str = "id,text\n\
    a,\"Eight years on the team, and the new regional lead is a guy who started in March.\"\n\
    b,\"I quit accounting to teach, and a year in I dread every lesson.\"\n\
    c,\"We spent six weeks on the bid. They went with the firm they already use.\"\n\
    d,\"The whole team was laid off on Friday, me included, with two weeks' pay.\"\n";

fn write_inputs(dir: &Path) {
    std::fs::write(dir.join("tiny.toml"), TAXONOMY).unwrap();
    std::fs::write(dir.join("in.csv"), STORIES).unwrap();
}

/// Runs failup in `dir`, under `qemu-x86_64 -cpu CPU` when a CPU is named.
fn run(dir: &Path, cpu: Option<&str>, args: &[&str]) -> std::process::Output {
    let wrapper: Vec<&str> = match cpu {
        Some(cpu) => vec!["qemu-x86_64", "-cpu", cpu],
        None => Vec::new(),
    };
    let out = failup_command_under(&wrapper)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("failup (or qemu-x86_64) runs");
    assert_eq!(out.status.code(), Some(0), "{cpu:?}: {}", stderr(&out));
    out
}

fn rows(path: &Path) -> Vec<csv::StringRecord> {
    let mut r = csv::Reader::from_path(path).unwrap();
    r.records().map(Result::unwrap).collect()
}

/// The engine and instruction set a run records in its shard record.
fn recorded_backend(path: &Path) -> String {
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    record["settings"]["--backend (as resolved)"]
        .as_str()
        .unwrap_or_else(|| panic!("no backend in {record}"))
        .to_string()
}

#[test]
#[ignore = "needs qemu-x86_64 (qemu-user) to run failup as a CPU without AVX-512"]
fn qemu_cpus_without_avx512_give_the_same_verdicts_and_are_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    write_inputs(dir.path());
    let args = |out: &'static str| {
        [
            "classify",
            "in.csv",
            "--taxonomy",
            "tiny.toml",
            "-q",
            "-o",
            out,
        ]
    };
    run(dir.path(), None, &args("native.csv"));
    let native = rows(&dir.path().join("native.csv"));
    assert_eq!(native.len(), 4);
    let scenarios: Vec<&str> = native.iter().map(|r| &r[1]).collect();
    assert_eq!(
        scenarios,
        ["passed_over", "pivot_regret", "lost_pitch", "other"]
    );

    for (cpu, out) in [("Haswell", "haswell.csv"), ("Nehalem", "nehalem.csv")] {
        run(dir.path(), Some(cpu), &args(out));
        let emulated = rows(&dir.path().join(out));
        for (a, b) in native.iter().zip(&emulated) {
            assert_eq!(&a[1], &b[1], "{cpu}: story {} changed scenario", &a[0]);
            // The scores: columns 6 to 9. The kernels round alike to well within this.
            for col in 6..10 {
                let (x, y): (f64, f64) = (a[col].parse().unwrap(), b[col].parse().unwrap());
                assert!(
                    (x - y).abs() < 0.005,
                    "{cpu}: story {} column {col}: {x} {y}",
                    &a[0]
                );
            }
        }
    }

    // The last digits differ between the instruction sets, so shards run on each are refused
    // by the merge rather than put together into rows that no one run would write.
    let shard = |n: &'static str, out: &'static str| {
        [
            "classify",
            "in.csv",
            "--taxonomy",
            "tiny.toml",
            "-q",
            "--shard",
            n,
            "-o",
            out,
        ]
    };
    run(dir.path(), Some("Haswell"), &shard("0/2", "part-0.csv"));
    run(dir.path(), Some("Nehalem"), &shard("1/2", "part-1.csv"));
    assert_eq!(
        recorded_backend(&dir.path().join("part-0.csv.shard")),
        "rten-avx2",
        "qemu-x86_64 -cpu Haswell offered no AVX2 (QEMU before 7.2 does not emulate it)"
    );
    assert_eq!(
        recorded_backend(&dir.path().join("part-1.csv.shard")),
        "rten-x86-64"
    );
    let merge = [
        "merge",
        "--rows",
        "part-0.csv",
        "part-1.csv",
        "-o",
        "all.csv",
    ];
    let out = failup_in(dir.path(), &merge, None);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("rten-avx2 and rten-x86-64 (the CPUs differ"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("all.csv").exists());
}
