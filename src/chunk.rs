//! Long stories: overlapping windows instead of truncation.
//!
//! all-MiniLM-L6-v2 reads at most `max_seq_length` (256) tokens. A longer story is split into
//! windows of that size (each with its own `[CLS]` and `[SEP]`), consecutive windows sharing
//! [`OVERLAP`] tokens so no sentence is only ever seen cut in half. Each window is embedded and
//! the story's embedding is the mean of the window embeddings weighted by each window's number
//! of story tokens, re-normalised to unit length. `--long-text truncate` keeps the old
//! behaviour: only the first window is read.

use crate::vector::normalise;

/// Story tokens shared by two consecutive windows.
pub const OVERLAP: usize = 32;

/// What to do with a story longer than the model's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LongText {
    /// Read only the first window (the story's first 255 tokens and a closing `[SEP]`).
    Truncate,
    /// Embed overlapping windows and average them, weighted by tokens.
    #[default]
    Chunk,
}

impl LongText {
    /// The name `--long-text` takes.
    pub fn name(self) -> &'static str {
        match self {
            LongText::Truncate => "truncate",
            LongText::Chunk => "chunk",
        }
    }

    pub fn from_name(name: &str) -> Option<LongText> {
        [LongText::Truncate, LongText::Chunk]
            .into_iter()
            .find(|l| l.name() == name)
    }
}

/// One window of a story: ids fed to the model and the weight of its embedding (the number
/// of story tokens it holds, special tokens not counted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub ids: Vec<u32>,
    pub weight: usize,
}

/// Splits a story's full ids (`[CLS] … [SEP]`) into windows of at most `max` ids each, every
/// window starting with the first id and ending with the last, consecutive windows sharing
/// `overlap` story tokens. A story that fits is one window, unchanged.
pub fn windows(full: &[u32], max: usize, overlap: usize) -> Vec<Window> {
    if full.len() <= max || full.len() < 3 || max < 3 {
        return vec![Window {
            ids: full.to_vec(),
            weight: full.len().saturating_sub(2).max(1),
        }];
    }
    let (cls, sep) = (full[0], full[full.len() - 1]);
    let body = &full[1..full.len() - 1];
    let width = max - 2;
    let step = width.saturating_sub(overlap).max(1);
    let mut out = Vec::new();
    let mut start = 0;
    loop {
        let end = (start + width).min(body.len());
        let mut ids = Vec::with_capacity(end - start + 2);
        ids.push(cls);
        ids.extend_from_slice(&body[start..end]);
        ids.push(sep);
        out.push(Window {
            ids,
            weight: end - start,
        });
        if end == body.len() {
            break;
        }
        start += step;
    }
    out
}

/// The weighted mean of window embeddings, re-normalised to unit length.
pub fn combine(embeddings: &[Vec<f32>], weights: &[usize]) -> Vec<f32> {
    let dim = embeddings.first().map_or(0, Vec::len);
    let mut v = vec![0f32; dim];
    for (e, &w) in embeddings.iter().zip(weights) {
        for (acc, x) in v.iter_mut().zip(e) {
            *acc += x * w as f32;
        }
    }
    normalise(&mut v);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_story_is_one_window() {
        let w = windows(&[101, 5, 6, 102], 8, 2);
        assert_eq!(
            w,
            vec![Window {
                ids: vec![101, 5, 6, 102],
                weight: 2
            }]
        );
    }

    #[test]
    fn long_story_windows_overlap_and_cover_everything() {
        let full: Vec<u32> = std::iter::once(101)
            .chain(1..=20)
            .chain(std::iter::once(102))
            .collect();
        let w = windows(&full, 8, 2);
        // width 6, step 4: 1-6, 5-10, 9-14, 13-18, 17-20
        assert_eq!(w.len(), 5);
        assert!(w.iter().all(|x| x.ids.len() <= 8));
        assert!(w
            .iter()
            .all(|x| x.ids[0] == 101 && *x.ids.last().unwrap() == 102));
        assert_eq!(w[1].ids[1..3], [5, 6]);
        assert_eq!(w.last().unwrap().ids, vec![101, 17, 18, 19, 20, 102]);
        let mut seen: Vec<u32> = w
            .iter()
            .flat_map(|x| x.ids[1..x.ids.len() - 1].to_vec())
            .collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen, (1..=20).collect::<Vec<u32>>());
    }

    #[test]
    fn combine_weights_and_normalises() {
        let v = combine(&[vec![1.0, 0.0], vec![0.0, 1.0]], &[3, 1]);
        assert!((v[0] - 0.9486833).abs() < 1e-5 && (v[1] - 0.31622776).abs() < 1e-5);
        assert!((v.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-6);
    }
}
