//! Helpers shared by the integration tests: run the real `failup` binary in a temp folder.

#![allow(dead_code)] // each test file uses a different subset

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A copy of the bundled model folder in `dir/model` with everything but its weights.
pub fn model_without_weights(dir: &Path) -> PathBuf {
    let model = dir.join("model");
    let src = repo_path("models/all-MiniLM-L6-v2");
    std::fs::create_dir_all(model.join("1_Pooling")).unwrap();
    for f in [
        "config.json",
        "tokenizer.json",
        "sentence_bert_config.json",
        "1_Pooling/config.json",
    ] {
        std::fs::copy(src.join(f), model.join(f)).unwrap();
    }
    model
}

/// Fills `dir` with links to the bundled model's files, all but `except`, which the test
/// writes itself (an edited config, a tokenizer to touch).
#[cfg(unix)]
pub fn link_bundled_model_except(dir: &Path, except: &str) {
    let bundled = repo_path("models/all-MiniLM-L6-v2");
    std::fs::create_dir_all(dir.join("1_Pooling")).unwrap();
    let files = [
        "1_Pooling/config.json",
        "config.json",
        "model.int8.onnx",
        "model.onnx",
        "modules.json",
        "sentence_bert_config.json",
        "tokenizer.json",
    ];
    for file in files.into_iter().filter(|&f| f != except) {
        std::os::unix::fs::symlink(bundled.join(file), dir.join(file)).unwrap();
    }
}

/// Runs failup with `args`, optional stdin, in `dir`; the environment is cleared of
/// FAILUP_* variables so a developer's settings cannot change the result.
pub fn failup_in(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    failup_env(dir, args, stdin, &[])
}

/// Like [`failup_in`], with extra environment variables set after the clean-up.
pub fn failup_env(dir: &Path, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
    let mut cmd = failup_command();
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.envs(env.iter().copied());
    let mut child = cmd.spawn().expect("failup runs");
    let mut pipe = child.stdin.take().expect("stdin piped");
    if let Some(text) = stdin {
        pipe.write_all(text.as_bytes()).expect("stdin written");
    }
    drop(pipe);
    child.wait_with_output().expect("failup finishes")
}

/// The stand-in engine for tests of behaviour around the model (input handling, resume, exit
/// codes, reports): a hashed bag of words that loads nothing. Pass it in `env`.
pub const HASHED: (&str, &str) = ("FAILUP_BACKEND", "test-hashed");

/// The cache folder for this test run, in cargo's target folder: tests never touch the
/// user's `~/.cache/failup`, and share prototype embeddings with each other.
pub fn test_cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("failup-cache")
}

/// The failup binary with the caller's FAILUP_* and scheduler variables removed, the test
/// run's cache folder set, and the stop signals back to their defaults.
pub fn failup_command() -> Command {
    failup_command_under(&[])
}

/// [`failup_command`] started through `wrapper` (a program and its arguments, such as an
/// emulator), which is given the failup binary and then failup's arguments.
pub fn failup_command_under(wrapper: &[&str]) -> Command {
    let binary = env!("CARGO_BIN_EXE_failup");
    let mut cmd = match wrapper.split_first() {
        None => Command::new(binary),
        Some((program, args)) => {
            let mut cmd = Command::new(program);
            cmd.args(args).arg(binary);
            cmd
        }
    };
    default_stop_signals(&mut cmd);
    for (k, _) in std::env::vars() {
        // A scheduler's task index would change what `--shard auto` reads.
        if k.starts_with("FAILUP_") || k.starts_with("SLURM_") || k == "JOB_COMPLETION_INDEX" {
            cmd.env_remove(k);
        }
    }
    cmd.env("FAILUP_CACHE_DIR", test_cache_dir());
    cmd
}

/// A test run started under `nohup` passes on an ignored SIGHUP, which failup keeps ignored;
/// the stops tested are those of a run that was free to catch them.
pub fn default_stop_signals(cmd: &mut Command) {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: between fork and exec the closure calls only signal(2), which is
        // async-signal-safe, and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                for signal in [libc::SIGINT, libc::SIGHUP, libc::SIGTERM] {
                    libc::signal(signal, libc::SIG_DFL);
                }
                Ok(())
            });
        }
    }
}

/// Runs failup from the repository root.
pub fn failup(args: &[&str]) -> Output {
    failup_in(Path::new(env!("CARGO_MANIFEST_DIR")), args, None)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("stdout is UTF-8")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Parses CSV text into header + records.
pub fn parse_csv(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let header = r.headers().unwrap().iter().map(String::from).collect();
    let rows = r
        .records()
        .map(|rec| rec.unwrap().iter().map(String::from).collect())
        .collect();
    (header, rows)
}
