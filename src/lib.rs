//! failup: sort career-setback stories into the scenarios of "How to Embrace the Idea of
//! Failing Upward" with a local sentence-embedding model, and give the advice that fits.
//!
//! Data flows one way: CSV ([`input`]) → tokens and embeddings ([`embed`]) → verdicts
//! ([`classify`]) in input order ([`pipeline`]) → rows ([`output`]); [`eval`] scores verdicts
//! against gold labels. The `failup` binary (`src/main.rs` with its `cli` and `commands`
//! modules) parses arguments and glues these together; nothing here knows about the CLI.

// Every unsafe operation sits in its own block with a SAFETY line (the AMX engine's), also
// inside `unsafe fn`s.
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

// The library warns on standard error too (a profile's precision, an unreadable cache), and
// std's `eprintln!` panics where that stream cannot be written (`2>/dev/full`, `2>&1 | head`):
// shadowed for every module below, as the binary shadows it, the message is dropped instead.
macro_rules! eprintln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod bench;
pub mod cache;
pub mod calibration;
pub mod chunk;
pub mod classify;
pub mod embed;
pub mod error;
pub mod eval;
pub mod fewshot;
pub mod input;
pub mod merge;
pub mod output;
pub mod pipeline;
pub mod profile;
pub mod progress;
pub mod record;
pub mod report;
pub mod sentences;
pub mod shard;
pub mod sink;
pub mod taxonomy;
pub mod transcode;
pub mod vector;

pub use error::{Error, Result};
