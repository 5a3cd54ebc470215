//! Small vector maths every stage shares: dot products, unit length, cosine, softmax.

/// Scales `v` to unit length (leaves an all-zero vector alone).
pub fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Dot product of two vectors of equal length. Sixteen running sums instead of one let the
/// compiler use SIMD (a plain `sum()` must add in order and stays scalar); scoring a story
/// against every prototype is hundreds of these.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (ca, ta) = a.as_chunks::<16>();
    let (cb, tb) = b.as_chunks::<16>();
    let mut acc = [0f32; 16];
    for (x, y) in ca.iter().zip(cb) {
        for ((s, a), b) in acc.iter_mut().zip(x).zip(y) {
            *s += a * b;
        }
    }
    let tail: f32 = ta.iter().zip(tb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

/// Cosine similarity of two vectors of equal length.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

/// Probabilities from scores: softmax at `temperature` (lower is sharper).
pub fn softmax(scores: &[f32], temperature: f32) -> Vec<f32> {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = scores
        .iter()
        .map(|s| ((s - max) / temperature).exp())
        .collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_a_plain_sum_at_any_length() {
        for len in [0, 1, 15, 16, 17, 384, 390] {
            let a: Vec<f32> = (0..len).map(|i| ((i * 7) % 13) as f32 - 6.0).collect();
            let b: Vec<f32> = (0..len).map(|i| ((i * 5) % 11) as f32 * 0.5).collect();
            let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert_eq!(dot(&a, &b), plain, "length {len}");
        }
    }

    #[test]
    fn dot_of_unit_vectors_is_their_cosine() {
        let mut a: Vec<f32> = (0..384).map(|i| (i as f32 * 0.37).sin()).collect();
        let mut b: Vec<f32> = (0..384).map(|i| (i as f32 * 0.11).cos()).collect();
        let expected = cosine(&a, &b);
        normalise(&mut a);
        normalise(&mut b);
        assert!((dot(&a, &b) - expected).abs() < 1e-6);
    }

    #[test]
    fn softmax_sums_to_one_and_orders() {
        let p = softmax(&[0.5, 0.4, 0.1], 0.1);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(p[0] > p[1] && p[1] > p[2]);
    }
}
