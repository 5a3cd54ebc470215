//! deploy/k8s/failup-indexed-job.yaml, the Kubernetes example: no cluster runs here, so this
//! checks the fields failup relies on, then runs each pod's command line locally, as
//! Kubernetes would (JOB_COMPLETION_INDEX set, `$(JOB_COMPLETION_INDEX)` expanded, the shared
//! volume a temporary folder), and the merge Job's, and compares the result with one run.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use yaml_rust2::{Yaml, YamlLoader};

fn manifest() -> Vec<Yaml> {
    let text = std::fs::read_to_string(repo_path("deploy/k8s/failup-indexed-job.yaml")).unwrap();
    YamlLoader::load_from_str(&text).expect("the manifest is YAML")
}

fn strings(node: &Yaml) -> Vec<String> {
    node.as_vec()
        .expect("a list")
        .iter()
        .map(|s| s.as_str().expect("a string").to_string())
        .collect()
}

/// The pod's arguments with the volume at `data` and the completion index `index`.
fn localised(args: &[String], data: &Path, index: usize) -> Vec<String> {
    args.iter()
        .map(|a| {
            a.replace("/data", data.to_str().unwrap())
                .replace("$(JOB_COMPLETION_INDEX)", &index.to_string())
        })
        .collect()
}

#[test]
fn the_indexed_job_shards_and_the_merge_job_rebuilds_one_run() {
    let docs = manifest();
    let (shards, merge) = (&docs[0], &docs[1]);
    assert_eq!(shards["kind"].as_str(), Some("Job"));
    let spec = &shards["spec"];
    assert_eq!(spec["completionMode"].as_str(), Some("Indexed"));
    let n = spec["completions"].as_i64().expect("completions") as usize;
    assert_eq!(spec["parallelism"].as_i64(), Some(n as i64));
    let pod = &spec["template"]["spec"];
    let container = &pod["containers"][0];
    let command = strings(&container["command"]);
    assert_eq!(command[0], "failup");
    let shard_at = command
        .iter()
        .position(|a| a == "--shard")
        .expect("--shard");
    assert_eq!(
        command[shard_at + 1],
        format!("auto/{n}"),
        "N agrees with completions"
    );
    let threads_at = command
        .iter()
        .position(|a| a == "--threads")
        .expect("--threads");
    let cpu = container["resources"]["requests"]["cpu"].as_str().unwrap();
    assert_eq!(command[threads_at + 1], cpu, "one thread per requested CPU");
    let memory = container["resources"]["requests"]["memory"]
        .as_str()
        .unwrap();
    let mib: u64 = memory.strip_suffix("Mi").unwrap().parse().unwrap();
    assert!(
        mib * 1024 * 1024 >= 200_000_000,
        "failup peaks near 200 MB: {memory}"
    );
    let mount = &container["volumeMounts"][0];
    assert_eq!(mount["mountPath"].as_str(), Some("/data"));
    assert_eq!(mount["name"], pod["volumes"][0]["name"]);
    assert_eq!(merge["kind"].as_str(), Some("Job"));

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    std::fs::create_dir(data.join("out")).unwrap();
    std::fs::copy(repo_path("data/sample_stories.csv"), data.join("in.csv")).unwrap();
    for index in 0..n {
        let args = localised(&command[1..], data, index);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env = [HASHED, ("JOB_COMPLETION_INDEX", &index.to_string())];
        let out = failup_env(data, &args, None, &env);
        assert_eq!(out.status.code(), Some(0), "pod {index}: {}", stderr(&out));
    }

    let merge_command = strings(&merge["spec"]["template"]["spec"]["containers"][0]["command"]);
    assert_eq!(merge_command[..2], ["sh", "-c"]);
    let script = localised(&merge_command[2..], data, 0)[0]
        .replace("failup ", &format!("{} ", env!("CARGO_BIN_EXE_failup")));
    let status = Command::new("sh")
        .args(["-c", &script])
        .env("SOURCE_DATE_EPOCH", "0")
        .status()
        .unwrap();
    assert!(status.success(), "the merge Job's command failed: {script}");

    let single = failup_env(
        data,
        &[
            "classify",
            "in.csv",
            "-q",
            "-o",
            "single.csv",
            "--report",
            "single.html",
        ],
        None,
        &[HASHED, ("SOURCE_DATE_EPOCH", "0")],
    );
    assert_eq!(single.status.code(), Some(0), "{}", stderr(&single));
    let read = |name: &str| std::fs::read(data.join(name)).unwrap();
    assert!(read("out/classified.csv") == read("single.csv"));
    assert!(read("out/report.html") == read("single.html"));
}
