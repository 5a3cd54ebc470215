//! `failup completions` and `failup man`: a shell completion script and a roff manual page,
//! both generated from the clap command the binary itself parses, so they never fall behind.

use std::io::{self, Write};

use clap::CommandFactory;
use clap_mangen::roff::{bold, roman, Roff};
use clap_mangen::Man;

use crate::cli::{Cli, CompletionsArgs};
use failup::error::{Error, Result};

/// The name the scripts complete and the page documents.
const BIN: &str = "failup";

/// `failup completions SHELL`: the script on standard output.
pub fn run(args: CompletionsArgs) -> Result<()> {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, BIN, &mut script);
    write_stdout(&script)
}

/// `failup man`: the page on standard output.
pub fn run_man() -> Result<()> {
    let page = man_page().map_err(|e| Error::io("<man page>", e))?;
    write_stdout(&page)
}

/// A closed pipe (`failup completions bash | head -1`) comes back as an I/O error on
/// `<stdout>`, which main treats as a normal end rather than a failure.
fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("<stdout>", e))
}

/// The whole manual in one roff page: failup's name, synopsis, description and options; a
/// list of every subcommand (nested ones by their full path); then one section per subcommand
/// with its synopsis, description and options; then the exit codes and examples from
/// `--help`, and the version.
pub fn man_page() -> io::Result<Vec<u8>> {
    // `failup help` is clap's own; the page documents the commands that do something.
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();

    let mut page = Vec::new();
    let top = Man::new(cmd.clone());
    top.render_title(&mut page)?;
    append(&mut page, |w| top.render_name_section(w), Demote::No)?;
    append(&mut page, |w| top.render_synopsis_section(w), Demote::No)?;
    append(&mut page, |w| top.render_description_section(w), Demote::No)?;
    append(&mut page, |w| top.render_options_section(w), Demote::No)?;

    let mut commands = Vec::new();
    collect_commands(&cmd, BIN, &mut commands);

    let mut list = Roff::new();
    list.control("SH", ["COMMANDS"]);
    for (path, sub) in &commands {
        list.control("TP", []);
        list.text([bold(path.as_str())]);
        if let Some(about) = sub.get_about() {
            list.text([roman(about.to_string())]);
        }
    }
    append(&mut page, |w| list.to_writer(w), Demote::No)?;

    for (path, sub) in &commands {
        let mut heading = Roff::new();
        heading.control("SH", [path.to_uppercase().as_str()]);
        append(&mut page, |w| heading.to_writer(w), Demote::No)?;
        let man = Man::new((*sub).clone());
        append(&mut page, |w| man.render_synopsis_section(w), Demote::Yes)?;
        append(
            &mut page,
            |w| man.render_description_section(w),
            Demote::Yes,
        )?;
        if sub.get_arguments().any(|a| !a.is_hide_set()) {
            append(&mut page, |w| man.render_options_section(w), Demote::Yes)?;
        }
        if sub.get_after_help().is_some() {
            append(&mut page, |w| man.render_extra_section(w), Demote::Yes)?;
        }
    }

    if cmd.get_after_help().is_some() {
        append(&mut page, |w| top.render_extra_section(w), Demote::No)?;
    }
    append(&mut page, |w| top.render_version_section(w), Demote::No)?;
    Ok(ascii_roff(&page))
}

/// The page in ASCII: man and groff read a page as Latin-1 or ASCII unless told otherwise, so
/// raw UTF-8 shows as mojibake. Punctuation becomes its ASCII or roff equivalent, which every
/// device has (a C locale's groff drops a `\[uXXXX]` it has no glyph for); anything else
/// becomes that escape.
fn ascii_roff(page: &[u8]) -> Vec<u8> {
    let mut out = String::with_capacity(page.len());
    for c in String::from_utf8_lossy(page).chars() {
        match c {
            c if c.is_ascii() => out.push(c),
            '…' => out += "...",
            '—' => out += "\\(em",
            '–' => out += "\\(en",
            '‘' | '’' => out.push('\''),
            '“' | '”' => out.push('"'),
            '×' => out += "\\(mu",
            c => out += &format!("\\[u{:04X}]", u32::from(c)),
        }
    }
    out.into_bytes()
}

/// Every visible subcommand below `cmd`, depth first, with the words that invoke it.
fn collect_commands<'a>(
    cmd: &'a clap::Command,
    path: &str,
    out: &mut Vec<(String, &'a clap::Command)>,
) {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let sub_path = format!("{path} {}", sub.get_name());
        out.push((sub_path.clone(), sub));
        collect_commands(sub, &sub_path, out);
    }
}

#[derive(Clone, Copy)]
enum Demote {
    /// Keep `.SH` headings: a section of the page.
    No,
    /// Turn `.SH` into `.SS`: a subsection inside a subcommand's section.
    Yes,
}

/// Renders one piece and appends it to the page, less the apostrophe preamble that every roff
/// render starts with (the page's first piece defines it). clap_mangen heads the `--help`
/// epilogue `EXTRA`; here it is named for what failup puts there.
fn append(
    page: &mut Vec<u8>,
    render: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    demote: Demote,
) -> io::Result<()> {
    let mut piece = Vec::new();
    render(&mut piece)?;
    let piece = String::from_utf8_lossy(&piece);
    let mut out = String::new();
    let mut no_fill = false;
    for line in piece.lines() {
        if line.starts_with(".ie \\n(.g .ds Aq") || line.starts_with(".el .ds Aq") {
            continue;
        }
        match (line.strip_prefix(".SH "), demote) {
            // The epilogue is laid out in columns, as in `--help`: keep its lines unfilled.
            (Some("EXTRA"), Demote::Yes) => {
                out.push_str(".SS NOTES\n.nf\n");
                no_fill = true;
            }
            (Some("EXTRA"), Demote::No) => {
                out.push_str(".SH \"EXIT CODES AND EXAMPLES\"\n.nf\n");
                no_fill = true;
            }
            (Some(title), Demote::Yes) => out.push_str(&format!(".SS {title}\n")),
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    if no_fill {
        out.push_str(".fi\n");
    }
    page.extend_from_slice(out.as_bytes());
    Ok(())
}
