//! `failup advise`: one story in, its scenario and the full advice out.

use std::io::Read;

use crate::cli::AdviseArgs;
use failup::classify::Verdict;
use failup::error::{Error, Result};
use failup::input::escaped;
use failup::pipeline::Embedded;
use failup::taxonomy::{Scenario, Taxonomy};

pub fn run(args: AdviseArgs) -> Result<()> {
    let text = story(&args)?;
    let engine = super::load_engine(&args.model, &args.fewshot)?;
    let Some((embedded, verdict)) = engine.classify_text(&text)? else {
        let why = failup::input::not_a_story(&text).unwrap_or(failup::pipeline::NO_KNOWN_WORD);
        return Err(Error::Usage(format!(
            "nothing to classify: the story has {why}; write it in words"
        )));
    };
    let taxonomy = engine.taxonomy();
    let scenario = &taxonomy.scenarios[verdict.category];
    let runner_up = &taxonomy.scenarios[verdict.runner_up];
    let title = match verdict.off_topic {
        true => "Not read as a career setback",
        false => scenario.title.as_str(),
    };
    let mut out = format!(
        "{} ({})\nconfidence {:.0}%, runner-up: {} (margin {:.3})\n",
        title,
        scenario.id,
        100.0 * verdict.confidence,
        runner_up.id,
        verdict.margin
    );
    if let Some(also) = verdict.also {
        out += &format!("also: {}\n", taxonomy.scenarios[also].id);
    }
    if args.explain {
        out += &explanation(&text, &verdict, taxonomy);
    }
    out += &reading_notes(&embedded, &verdict, engine.model.max_seq_length);
    out += &advice(scenario, verdict.off_topic);
    super::print_out(&out)?;
    Ok(())
}

/// The story as given: the words on the command line, or standard input.
fn story(args: &AdviseArgs) -> Result<String> {
    let mut text = match args.text.as_slice() {
        [] => read_stdin()?,
        [dash] if dash == "-" => read_stdin()?,
        [dash, rest @ ..] if dash == "-" => {
            return Err(Error::Usage(format!(
                "`-` reads the story from standard input, and the words after it ({}) would be \
                 left out; give the story either way, not both",
                rest.join(" ")
            )));
        }
        words => words.join(" "),
    };
    // As classify does: the model reads far less, and a giant input would only cost memory.
    let cut = failup::input::cut_to_max_text(&mut text);
    if failup::input::is_blank(&text) {
        // A NUL or another control code, not a space or an invisible mark (a byte-order mark).
        let binary = text.chars().any(|c| c.is_control() && !c.is_whitespace());
        let what = match binary {
            true => "the story holds no text, only control characters (is it a binary file?)",
            false => "the story is empty",
        };
        return Err(Error::Usage(format!(
            "{what}; pass it as an argument or on standard input"
        )));
    }
    if cut {
        eprintln!(
            "warning: the story is longer than 1 MiB; read from its start, as classify reads one"
        );
    }
    if let Some(header) = csv_header(&text) {
        eprintln!(
            "warning: this looks like a CSV file (its first line, `{header}`, reads as column \
             names), and advise reads all it is given as one story; to classify each row, run \
             failup classify FILE, or failup classify - for standard input"
        );
    }
    Ok(text)
}

/// The first line, where it reads as a CSV header naming a text column and the next line
/// has as many fields: a file given to advise by mistake, which it would read as one story.
fn csv_header(text: &str) -> Option<&str> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let first = lines.next()?.trim().trim_start_matches('\u{FEFF}');
    let second = lines.next()?;
    let delimiter = [',', ';', '\t', '|']
        .into_iter()
        .max_by_key(|&d| first.matches(d).count())?;
    let fields = |line: &str| -> Option<Vec<String>> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .delimiter(delimiter as u8)
            .from_reader(line.as_bytes());
        let record = reader.records().next()?.ok()?;
        Some(record.iter().map(|f| f.trim().to_string()).collect())
    };
    let header = fields(first)?;
    if fields(second)?.len() != header.len() {
        return None;
    }
    // Spreadsheets end a header with empty names for columns they once held.
    let names: Vec<&str> = match header.iter().rposition(|n| !n.is_empty()) {
        Some(last) => header[..=last].iter().map(String::as_str).collect(),
        None => return None,
    };
    let short_name = |n: &&str| {
        !n.is_empty()
            && n.chars().count() <= 32
            && n.split_whitespace().count() <= 3
            && !n.contains(['.', '!', '?'])
    };
    // A whole word of the name: `story_text`, `Story Text`, not `history` or `texted`.
    let names_text = |n: &&str| {
        n.to_lowercase()
            .split(['_', '-', ' ', '.'])
            .any(|w| w == "text" || w == "story")
    };
    let a_header = match names.as_slice() {
        [one] => ["text", "story"].contains(&one.to_lowercase().as_str()),
        _ => names.iter().all(short_name) && names.iter().any(names_text),
    };
    a_header.then_some(first)
}

/// `--explain`: the nearest prototype, the relevance, and the sentence the verdict rests on.
fn explanation(text: &str, verdict: &Verdict, taxonomy: &Taxonomy) -> String {
    let scenario = &taxonomy.scenarios[verdict.category];
    let mut out = String::new();
    if let Some(n) = &verdict.nearest {
        let text = nearest_text(taxonomy, &n.id).unwrap_or_default();
        // An example's id and the story come from files: a terminal's control codes in
        // them are shown escaped, as eval and the reports show them, not obeyed.
        out += &format!(
            "nearest: {} (similarity {:.3}){}\n",
            escaped(&n.id),
            n.similarity,
            if text.is_empty() {
                String::new()
            } else {
                format!(": \"{text}\"")
            }
        );
    }
    out += &format!(
        "relevance: {:.3} (below {} a story reads like no prototype and is other)\n",
        verdict.relevance, taxonomy.classifier.min_relevance
    );
    let sentences = failup::sentences::split(text);
    if let Some(sentence) = verdict.evidence.and_then(|i| sentences.get(i)) {
        // A one-sentence story is its own evidence; naming it would only repeat it.
        if sentences.len() > 1 {
            out += &format!(
                "evidence: \"{}\" (of the story's {} sentences, the one that reads \
                 most like {})\n",
                escaped(sentence),
                sentences.len(),
                scenario.id
            );
        }
    }
    out
}

/// Notes on how the story was read: past the model's window, off-topic, or cut short.
fn reading_notes(embedded: &Embedded, verdict: &Verdict, window: usize) -> String {
    let mut out = String::new();
    // Every story is read sentence by sentence; only one past the model's window is worth a
    // word, since a whole-story reading would have lost its end.
    if embedded.chunks > 1 && embedded.tokens > window {
        let sentences = embedded.sentences.as_ref().map_or(1, Vec::len);
        let how = match (sentences, embedded.chunks > sentences) {
            (1, _) => "as one sentence, in overlapping windows".to_string(),
            (n, false) => format!("sentence by sentence ({n} sentences)"),
            (n, true) => format!(
                "sentence by sentence ({n} sentences, those past the window in overlapping \
                 windows)"
            ),
        };
        out += &format!(
            "note: the story has {} tokens, more than the model's window of {window}; it was \
             read {how}, {} pieces in all\n",
            embedded.tokens, embedded.chunks
        );
    }
    if verdict.off_topic {
        out += "note: the story reads like none of the scenarios' prototypes (off-topic, or in a \
                language the model does not read), so it is `other`; min_relevance = -1 in a \
                --taxonomy file keeps its scenario\n";
    }
    if embedded.truncated {
        out += &format!(
            "note: the story has {} tokens; only the first {} were read\n",
            embedded.tokens, window
        );
    }
    out
}

/// The scenario's description, headline and advice; for off-topic text, what advise is for.
fn advice(scenario: &Scenario, off_topic: bool) -> String {
    let mut out = String::new();
    if off_topic {
        // `other`'s advice is for a career setback, which this text does not read as.
        out += "\nThe advice is for career setbacks: tell what happened at work and what came of \
                it, in English, and advise names its scenario and what to do.\n";
    } else {
        out += &format!(
            "\n{}\n\n{}\n\nWhat to do:\n",
            scenario.description, scenario.headline
        );
        for item in &scenario.advice {
            out += &super::indented(item, "  - ", "    ");
            out.push('\n');
        }
    }
    out
}

/// The story from standard input: UTF-8, or UTF-16 with a byte-order mark.
fn read_stdin() -> Result<String> {
    // Enough for more than the MiB kept in any encoding read here (UTF-16 takes up to twice
    // UTF-8's bytes), and no more: the rest of a giant input is never held.
    const LIMIT: u64 = 4 * failup::input::MAX_TEXT_BYTES as u64;
    super::prompt_if_stdin_is_a_terminal("the story");
    let mut buf = Vec::new();
    std::io::stdin()
        .take(LIMIT)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io("<stdin>", e))?;
    if buf.len() as u64 == LIMIT {
        drop_a_cut_character(&mut buf);
    }
    // Text saved as "Unicode" on Windows is UTF-16 with a byte-order mark.
    Ok(
        if buf.starts_with(&[0xFF, 0xFE]) || buf.starts_with(&[0xFE, 0xFF]) {
            let mut text = String::new();
            failup::transcode::Utf8Stream::new(&buf[..], encoding_rs::UTF_16LE)
                .read_to_string(&mut text)
                .map_err(|_| {
                    Error::Usage(
                        "standard input starts as UTF-16 but holds a broken sequence; \
                         save it again as UTF-8"
                            .into(),
                    )
                })?;
            text
        } else if buf.starts_with(&[0x1F, 0x8B]) {
            return Err(Error::Usage(
                "standard input is gzip-compressed, not text; decompress it first (gunzip -c \
                 FILE | failup advise -), or for a CSV of stories run failup classify FILE, \
                 which reads gzip as it is"
                    .into(),
            ));
        } else {
            String::from_utf8(buf).map_err(|e| {
                Error::Usage(format!(
                    "standard input is not UTF-8 text: byte {} (counting from 0) starts no \
                     character; convert it first, e.g. iconv -f windows-1252 -t utf-8",
                    e.utf8_error().valid_up_to()
                ))
            })?
        },
    )
}

/// Drops what the read limit left of a last character: a UTF-8 sequence begun and not ended,
/// or a UTF-16 code unit (which may be half a pair) and any odd byte.
fn drop_a_cut_character(buf: &mut Vec<u8>) {
    if buf.starts_with(&[0xFF, 0xFE]) || buf.starts_with(&[0xFE, 0xFF]) {
        let even = buf.len() & !1;
        buf.truncate(even.saturating_sub(2));
    } else if let Err(e) = std::str::from_utf8(buf) {
        if e.error_len().is_none() {
            buf.truncate(e.valid_up_to());
        }
    }
}

/// The text of prototype `<scenario>#<n>` (n from 1); None for examples and unknown ids.
fn nearest_text(taxonomy: &failup::taxonomy::Taxonomy, id: &str) -> Option<String> {
    let (scenario, n) = id.split_once('#')?;
    let n: usize = n.parse().ok()?;
    let s = taxonomy.scenarios.iter().find(|s| s.id == scenario)?;
    s.prototypes.get(n.checked_sub(1)?).cloned()
}
