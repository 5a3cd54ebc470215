//! `failup embed`: sentence embeddings as JSON Lines, one per input row, in order.

use std::io::Write;
use std::time::Instant;

use serde_json::json;

use crate::cli::EmbedArgs;
use failup::error::{Error, Result};
use failup::input::{Columns, RowIssue, Source, StoryReader, UNCLOSED_QUOTE};
use failup::pipeline::{Engine, Want, CHUNK_SIZE};
use failup::progress::Progress;
use failup::sink::Sink;

pub fn run(args: EmbedArgs) -> Result<()> {
    let source = Source::from_arg(&args.input);
    let columns = Columns {
        text: args.columns.text_column.clone(),
        id: args.columns.id_column.clone(),
        ..Columns::default()
    };
    let mut reader = StoryReader::open(&source, &columns, args.columns.dialect())?;
    let shard = super::shard(args.shard.as_deref())?;
    if let Some(shard) = shard {
        reader.set_shard(shard);
    }
    failup::sink::check_output(&args.output, Some(&source))?;
    super::warn_if_unrecorded(&args.output, shard);
    let engine = Engine::load(&args.model.engine_options())?;
    let mut sink = Sink::open(&args.output, Some(&source))?;
    let name = sink.name();
    let (bytes, total) = reader.progress_counter();
    let mut progress = Progress::new(args.quiet, bytes, total);
    let start = Instant::now();
    let mut blank_lines = super::BlankLines::default();
    loop {
        let chunk = reader.next_chunk(CHUNK_SIZE)?;
        blank_lines.tell(&reader);
        if chunk.is_empty() {
            break;
        }
        // Embeddings carry no status column, so the row that swallowed the rest is told here.
        for story in chunk
            .iter()
            .filter(|s| s.issues.contains(&RowIssue::UnclosedQuote))
        {
            eprintln!(
                "warning: {}:{}: row {} (id {}): {UNCLOSED_QUOTE}",
                reader.name(),
                story.line,
                story.row,
                story.id
            );
        }
        let texts: Vec<&str> = chunk.iter().map(|s| s.text.as_str()).collect();
        // The whole story's embedding, at parity with the reference implementation, whatever
        // the classifier reads.
        let embedded = engine.encoder().embed_texts(&texts, Want::default())?;
        for (story, e) in chunk.iter().zip(&embedded) {
            let mut line = json!({
                "id": story.id,
                "tokens": e.tokens,
                "truncated": e.truncated,
                "chunks": e.chunks,
                "embedding": e.embedding,
            });
            if shard.is_some() {
                line["row"] = json!(story.row);
            }
            serde_json::to_writer(&mut sink, &line)
                .map_err(std::io::Error::from)
                .and_then(|_| sink.write_all(b"\n"))
                .map_err(|e| Error::io(&name, e))?;
        }
        progress.add_rows(chunk.len() as u64, start.elapsed().as_secs_f64());
    }
    progress.finish();
    blank_lines.tell_rest();
    let settings = match shard {
        Some(_) => shard_settings(&args, &reader, &engine)?,
        None => Default::default(),
    };
    super::commit_output(sink, shard, &reader, settings)
}

/// The input and the settings that shape an embedding part's bytes, for its shard record.
fn shard_settings(
    args: &EmbedArgs,
    reader: &StoryReader,
    engine: &Engine,
) -> Result<failup::sink::Settings> {
    let precision = args.model.engine_options().precision;
    let pairs = [
        ("failup version", env!("CARGO_PKG_VERSION").to_string()),
        ("command", "embed".to_string()),
        (
            "--text-column",
            reader.headers()[reader.text_index()].clone(),
        ),
        (
            "--id-column",
            args.columns.id_column.clone().unwrap_or("(default)".into()),
        ),
        ("--precision", precision.name().to_string()),
        ("--backend (as resolved)", engine.backend.name().to_string()),
        ("--long-text", super::value_name(args.model.long_text)),
        (
            "--delimiter",
            args.columns
                .delimiter
                .map_or("(default)".into(), |d| (d as char).to_string()),
        ),
        ("--encoding", super::value_name(args.columns.encoding)),
        (
            "--model (SHA-256)",
            failup::profile::weights_sha256(&engine.model, precision)?,
        ),
    ];
    Ok(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}
