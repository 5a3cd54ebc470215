//! The `failup` binary: parse arguments, run, map errors to exit codes.

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod commands;

use cli::Cli;

fn main() -> ExitCode {
    // `FAILUP_PROFILE= failup …` is how a shell user switches a setting off for one command;
    // clap would read the empty value as a missing or unparsable one.
    for (key, value) in std::env::vars_os() {
        if value.is_empty() && key.to_str().is_some_and(|k| k.starts_with("FAILUP_")) {
            std::env::remove_var(key);
        }
    }
    let cli = Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        // A reader that stops early (`failup classify big.csv | head`) is not a failure.
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        // The command has already said what was kept and how to resume.
        Err(failup::Error::Interrupted) => ExitCode::from(130),
        Err(e) => {
            eprintln!("failup: error: {e}");
            ExitCode::from(2)
        }
    }
}
