//! `failup advise`: one story in, its scenario and the full advice out.

use std::io::Read;

use crate::cli::AdviseArgs;
use crate::error::{Error, Result};
use crate::pipeline::Engine;

pub fn run(args: AdviseArgs) -> Result<()> {
    let text = match args.text.as_deref() {
        Some(t) if t != "-" => t.to_string(),
        _ => {
            let mut buf = String::new();
            std::io::stdin()
                .read_to_string(&mut buf)
                .map_err(|e| Error::io("<stdin>", e))?;
            buf
        }
    };
    if text.trim().is_empty() {
        return Err(Error::Usage(
            "the story is empty; pass it as an argument or on standard input".into(),
        ));
    }
    let engine = Engine::load(&args.model.engine_options())?;
    let (embedded, verdict) = engine
        .classify_text(&text)?
        .expect("non-empty text is always embedded");
    let taxonomy = engine.taxonomy();
    let scenario = &taxonomy.scenarios[verdict.category];
    let runner_up = &taxonomy.scenarios[verdict.runner_up];
    let mut out = format!(
        "{} ({})\nconfidence {:.0}%, runner-up: {} (margin {:.3})\n",
        scenario.title,
        scenario.id,
        100.0 * verdict.confidence,
        runner_up.id,
        verdict.margin
    );
    if embedded.truncated {
        out += &format!(
            "note: the story has {} tokens; only the first {} were read\n",
            embedded.tokens, engine.model.max_seq_length
        );
    }
    out += &format!(
        "\n{}\n\n{}\n\nWhat to do:\n",
        scenario.description, scenario.headline
    );
    for item in &scenario.advice {
        out += &format!("  - {item}\n");
    }
    print!("{out}");
    Ok(())
}
