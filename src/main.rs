//! The `failup` binary: parse arguments, run, map errors to exit codes.

use std::process::ExitCode;

// Standard error's own `eprintln!` and `eprint!` panic when the stream cannot be written: a
// reader that closed it (`2>&1 | head`) or a full disk (`2>/dev/full`) ended the run with exit
// 101 and its output unfinished. These shadow them for the whole binary (they are defined
// before its modules) and drop the message instead, as a closed standard output drops rows.
macro_rules! eprintln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

macro_rules! eprint {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}

mod cli;
mod commands;

fn main() -> ExitCode {
    // A file-size limit (`ulimit -f`) kills the process with SIGXFSZ by default, silently and
    // before failup can say which rows it kept. Ignored, the write fails with EFBIG instead
    // and is handled as a full disk is. SIGINT, which a shell ignores in a script's background
    // jobs, stops every command as it stops classify and embed (which catch it later):
    // `train … & kill -INT $!` ran on and replaced the profile.
    #[cfg(unix)]
    // SAFETY: SIG_IGN and SIG_DFL install no handler code and touch none of our memory; this
    // runs first, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        libc::signal(libc::SIGINT, libc::SIG_DFL);
    }
    // `FAILUP_PROFILE= failup …` is how a shell user switches a setting off for one command;
    // clap would read the empty value as a missing or unparsable one.
    for (key, value) in std::env::vars_os() {
        if value.is_empty() && key.to_str().is_some_and(|k| k.starts_with("FAILUP_")) {
            std::env::remove_var(key);
        }
    }
    let cli = cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        // A reader that stops early (`failup classify big.csv | head`) is not a failure.
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        // The command has already said what was kept and how to resume.
        Err(failup::Error::Interrupted) => ExitCode::from(130),
        Err(e) => {
            eprintln!("failup: error: {e}");
            for (flag, var, value) in named_by_environment(&e) {
                eprintln!(
                    "  note: {flag} was not given; its value came from the environment, \
                     {var}={value:?}. Unset it or fix it, or give {flag} on the command line."
                );
            }
            ExitCode::from(2)
        }
    }
}

/// The settings and files whose flag an error names, or whose file it names, but which came
/// from a `FAILUP_*` variable and not the command line: a variable set long ago in a shell
/// profile is easy to forget, and the error's advice to change the flag would not help.
fn named_by_environment(e: &failup::Error) -> Vec<(&'static str, &'static str, String)> {
    // Flag, variable, and whether the value is a path an error may name instead of the flag.
    const SET_BY_VARIABLES: [(&str, &str, bool); 9] = [
        ("--model", "FAILUP_MODEL", true),
        ("--taxonomy", "FAILUP_TAXONOMY", true),
        ("--profile", "FAILUP_PROFILE", true),
        ("--backend", "FAILUP_BACKEND", false),
        ("--precision", "FAILUP_PRECISION", false),
        ("--long-text", "FAILUP_LONG_TEXT", false),
        ("--threads", "FAILUP_THREADS", false),
        ("--batch-size", "FAILUP_BATCH_SIZE", false),
        ("--chunk-size", "FAILUP_CHUNK_SIZE", false),
    ];
    let said = e.to_string();
    let names_flag = |flag: &str| {
        said.match_indices(flag).any(|(at, _)| {
            let next = said[at + flag.len()..].chars().next();
            !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
        })
    };
    SET_BY_VARIABLES
        .into_iter()
        .filter_map(|(flag, var, is_path)| {
            let value = std::env::var(var).ok()?;
            // A model folder's or taxonomy's error names the path it was given.
            let names_value = is_path && said.contains(&value);
            ((names_flag(flag) || names_value) && !cli::typed(flag)).then_some((flag, var, value))
        })
        .collect()
}
