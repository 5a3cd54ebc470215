//! `failup completions` and `failup man`, run through the real binary. The subcommands and
//! shells expected come from the binary's own clap Command (its `cli` module, compiled in here
//! too), so a new subcommand or shell is checked without touching this file.

mod common;

use std::process::{Command, Stdio};

use clap::CommandFactory;
use common::{failup, stderr, stdout};
#[allow(dead_code)] // the test reads the command tree, not every conversion
#[path = "../src/cli.rs"]
mod cli;

use cli::Cli;

/// Every visible subcommand as the words that invoke it, nested ones included
/// (`["models", "prepare"]`), with its visible long flags.
fn subcommands() -> Vec<(Vec<String>, Vec<String>)> {
    fn walk(cmd: &clap::Command, prefix: &[String], out: &mut Vec<(Vec<String>, Vec<String>)>) {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            let mut path = prefix.to_vec();
            path.push(sub.get_name().to_owned());
            let longs = sub
                .get_arguments()
                .filter(|a| !a.is_hide_set())
                .filter_map(|a| a.get_long().map(str::to_owned))
                .collect();
            out.push((path.clone(), longs));
            walk(sub, &path, out);
        }
    }
    let mut out = Vec::new();
    walk(&Cli::command(), &[], &mut out);
    assert!(out.len() >= 10, "the CLI has its subcommands: {out:?}");
    out
}

/// The shells `failup completions` accepts, from its SHELL argument.
fn shells() -> Vec<String> {
    let cmd = Cli::command();
    let completions = cmd
        .find_subcommand("completions")
        .expect("a completions subcommand");
    let shell = completions
        .get_arguments()
        .find(|a| a.get_id() == "shell")
        .expect("a SHELL argument");
    let names: Vec<String> = shell
        .get_possible_values()
        .iter()
        .map(|v| v.get_name().to_owned())
        .collect();
    for wanted in ["bash", "zsh", "fish", "powershell"] {
        assert!(names.iter().any(|n| n == wanted), "{wanted} in {names:?}");
    }
    names
}

/// `word` occurs in `text` on its own, not inside a longer name (`man` in `command`).
fn has_word(text: &str, word: &str) -> bool {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(is_name) && !after.is_some_and(is_name)
    })
}

#[test]
fn every_shell_gets_a_script_naming_every_subcommand() {
    let subs = subcommands();
    for shell in shells() {
        let out = failup(&["completions", &shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", stderr(&out));
        assert!(stderr(&out).is_empty(), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        assert!(script.len() > 1000, "{shell}: a real script:\n{script}");
        assert!(has_word(&script, "failup"), "{shell}: names the binary");
        for (path, _) in &subs {
            let name = path.last().unwrap();
            assert!(has_word(&script, name), "{shell}: script lacks `{name}`");
        }
    }
}

#[test]
fn bash_script_completes_flag_values() {
    let script = stdout(&failup(&["completions", "bash"]));
    assert!(script.contains("complete -F _failup"), "registers itself");
    // `classify --format` offers the output formats.
    assert!(
        script.contains("csv jsonl"),
        "value completion for --format"
    );
}

#[test]
fn unknown_shell_is_a_usage_error_listing_the_shells() {
    let out = failup(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "no script on a usage error");
    let err = stderr(&out);
    assert!(err.contains("tcsh"), "{err}");
    for shell in shells() {
        assert!(has_word(&err, &shell), "{shell} missing from:\n{err}");
    }
}

#[test]
fn missing_shell_is_a_usage_error() {
    let out = failup(&["completions"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("<SHELL>"), "{}", stderr(&out));
}

#[test]
fn man_page_is_roff_covering_every_subcommand_and_flag() {
    let out = failup(&["man"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    let page = stdout(&out);
    assert!(page.starts_with('.'), "roff starts with a request");
    assert!(page.contains("\n.TH failup 1 "), "title line:\n{page}");
    for section in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "COMMANDS",
        "VERSION",
    ] {
        assert!(page.contains(&format!("\n.SH {section}\n")), "{section}");
    }
    assert!(page.contains("\n.SH \"EXIT CODES AND EXAMPLES\"\n"));
    assert!(page.contains("130"), "the exit codes from --help");
    // man reads a page as ASCII unless told otherwise: the ellipsis in embed's summary is
    // written as three dots, which every device shows.
    assert!(page.is_ascii(), "raw characters past ASCII");
    assert!(page.contains("{\"id\":...,"), "embed's ellipsis in ASCII");

    let subs = subcommands();
    for (i, (path, longs)) in subs.iter().enumerate() {
        let words = format!("failup {}", path.join(" "));
        // Listed under COMMANDS (roff escapes a hyphen in text)...
        let listed = format!("\\fB{}\\fR", words.replace('-', "\\-"));
        assert!(page.contains(&listed), "COMMANDS lacks {listed}");
        // ...and given a section of its own, with its synopsis and every flag.
        let heading = format!("\n.SH \"{}\"\n", words.to_uppercase());
        let start = page
            .find(&heading)
            .unwrap_or_else(|| panic!("no {heading:?}"));
        let end = match subs.get(i + 1) {
            Some((next, _)) => {
                let next = format!("\n.SH \"FAILUP {}\"\n", next.join(" ").to_uppercase());
                page.find(&next).unwrap_or_else(|| panic!("no {next:?}"))
            }
            None => page.len(),
        };
        assert!(start < end, "sections in the order of the CLI");
        let section = &page[start..end];
        assert!(section.contains(".SS SYNOPSIS"), "{words}: synopsis");
        for long in longs {
            let flag = format!("\\-\\-{}", long.replace('-', "\\-"));
            assert!(section.contains(&flag), "{words}: --{long} undocumented");
        }
    }
}

#[test]
fn man_page_shows_environment_variables() {
    let page = stdout(&failup(&["man"]));
    assert!(page.contains("FAILUP_MODEL"), "env of --model");
    assert!(page.contains("environment variable"));
}

#[test]
fn help_says_how_to_install() {
    let help = stdout(&failup(&["completions", "--help"]));
    assert!(
        help.contains(
            "failup completions bash > ~/.local/share/bash-completion/completions/failup"
        ),
        "{help}"
    );
    for shell in shells() {
        assert!(
            help.contains(&format!("failup completions {shell} ")),
            "{shell}"
        );
    }
    let help = stdout(&failup(&["man", "--help"]));
    assert!(help.contains("failup man > failup.1"), "{help}");
    assert!(help.contains("man ./failup.1"), "{help}");
}

/// A reader that closes the pipe early (`failup completions bash | head -1`) is not an error:
/// no panic, exit 0. The read end is closed before failup writes a byte.
#[test]
fn closed_stdout_is_not_a_failure() {
    for args in [&["completions", "bash"][..], &["man"][..]] {
        let (reader, writer) = std::io::pipe().expect("a pipe");
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_failup"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .expect("failup runs");
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: {err}");
    }
}
