//! `failup eval`: classify a labelled CSV and score the result.

use std::process::ExitCode;
use std::time::Instant;

use crate::cli::{EvalArgs, ReportFormat};
use crate::error::{Error, Result};
use crate::eval::evaluate;
use crate::input::{Columns, Source, StoryReader};
use crate::pipeline::{Engine, CHUNK_SIZE};
use crate::progress::Progress;

pub fn run(args: EvalArgs) -> Result<ExitCode> {
    let source = Source::from_arg(&args.input);
    let columns = Columns {
        text: args.columns.text_column.clone(),
        id: args.columns.id_column.clone(),
        label: Some(args.label_column.clone()),
        ..Columns::default()
    };
    let mut reader = StoryReader::open(&source, &columns, args.columns.dialect())?;
    let engine = Engine::load(&args.model.engine_options())?;
    let labels: Vec<String> = engine
        .taxonomy()
        .ids()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let (bytes, total) = reader.progress_counter();
    let mut progress = Progress::new(args.quiet, bytes, total);
    let start = Instant::now();
    let mut pairs = Vec::new();
    let mut skipped_empty = 0usize;
    loop {
        let chunk = reader.next_chunk(CHUNK_SIZE)?;
        if chunk.is_empty() {
            break;
        }
        for story in &chunk {
            let label = story.label.as_deref().unwrap_or("").trim();
            if !labels.iter().any(|l| l == label) {
                return Err(Error::Input {
                    file: reader.name().to_string(),
                    line: Some(story.line),
                    column: Some(args.label_column.clone()),
                    problem: format!(
                        "label '{label}' is not a scenario id; valid labels: {}",
                        labels.join(", ")
                    ),
                });
            }
        }
        let n = chunk.len() as u64;
        for row in engine.classify_chunk(chunk)? {
            let gold = row.story.label.as_deref().unwrap_or("").trim();
            let gold = labels
                .iter()
                .position(|l| l == gold)
                .expect("checked above");
            match row.verdict {
                Some(v) => pairs.push((gold, v.category)),
                None => skipped_empty += 1,
            }
        }
        progress.add_rows(n, start.elapsed().as_secs_f64());
    }
    progress.finish();
    if pairs.is_empty() {
        return Err(Error::Input {
            file: reader.name().to_string(),
            line: None,
            column: None,
            problem: "no labelled stories with text to score".into(),
        });
    }
    if skipped_empty > 0 {
        eprintln!("warning: {skipped_empty} rows with empty text were not scored");
    }
    let report = evaluate(&labels, &pairs);
    match args.format {
        ReportFormat::Text => print!("{}", report.to_text()),
        ReportFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serialises")
        ),
    }
    if let Some(min) = args.min_macro_f1 {
        if report.macro_f1 < min {
            eprintln!(
                "gate failed: macro-F1 {:.4} is below --min-macro-f1 {min}",
                report.macro_f1
            );
            return Ok(ExitCode::from(1));
        }
    }
    Ok(ExitCode::SUCCESS)
}
