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
            if let Some(var) = named_by_environment(&e) {
                eprintln!("  note: that came from the environment variable {var}");
            }
            ExitCode::from(2)
        }
    }
}

/// The `FAILUP_*` variable that named the model folder or taxonomy an error is about, when
/// the command line did not: a variable set long ago in a shell profile is easy to forget.
fn named_by_environment(e: &failup::Error) -> Option<&'static str> {
    let (flag, var, named) = match e {
        failup::Error::Model { dir, .. } => ("--model", "FAILUP_MODEL", dir.as_os_str()),
        failup::Error::Taxonomy { source_name, .. } => (
            "--taxonomy",
            "FAILUP_TAXONOMY",
            std::ffi::OsStr::new(source_name.as_str()),
        ),
        _ => return None,
    };
    let from_variable = std::env::var_os(var).is_some_and(|v| v == named);
    (from_variable && !cli::typed(flag)).then_some(var)
}
