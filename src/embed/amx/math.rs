//! The element-wise parts of a BERT layer, in fp32, written as plain loops over slices so the
//! compiler vectorises them; the engine calls them from functions compiled for AVX-512 (every
//! CPU with AMX has it), where they run 16 lanes wide.

/// e^x to within about 2 ulp over the range softmax uses (x ≤ 0). Inputs are clamped to
/// [-87, 88], so the result stays a finite normal number (e^-87 ≈ 1.6e-38, which softmax
/// treats as the zero it nearly is).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 in two parts, so `x - n·ln2` stays exact for the n this range needs.
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Adding and subtracting 1.5·2^23 rounds to the nearest integer without a library call.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    // Taylor series of e^r to r^6: |r| ≤ ln2/2 keeps the error under 1.2e-7 relative.
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    // 2^n built from the bits: `shifted`'s mantissa holds n above 1.5·2^23, read without a
    // float-to-integer conversion (which would keep this loop scalar).
    let exponent = shifted
        .to_bits()
        .wrapping_sub(ROUND.to_bits())
        .wrapping_add(127);
    p * f32::from_bits(exponent << 23)
}

/// erf(x) to within 1.5e-7 (Abramowitz & Stegun 7.1.26).
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152 + t * 1.061_405_4))));
    let y = 1.0 - poly * exp(-a * a);
    y.copysign(x)
}

/// BERT's GELU, `x·Φ(x)` with the exact normal CDF (not the tanh approximation), applied to
/// `x + bias` in place.
#[inline(always)]
pub fn bias_gelu(row: &mut [f32], bias: &[f32]) {
    for (x, b) in row.iter_mut().zip(bias) {
        let v = *x + b;
        *x = 0.5 * v * (1.0 + erf(v * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// Softmax of `row · scale`, in place.
#[inline(always)]
pub fn scaled_softmax(row: &mut [f32], scale: f32) {
    let (chunks, tail) = row.as_chunks::<16>();
    let mut lanes = [f32::NEG_INFINITY; 16];
    for c in chunks {
        for (m, &v) in lanes.iter_mut().zip(c) {
            *m = m.max(v);
        }
    }
    let max = lanes
        .iter()
        .chain(tail)
        .fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    for x in row.iter_mut() {
        *x = exp((*x - max) * scale);
    }
    let inv = 1.0 / sum(row, |v| v);
    row.iter_mut().for_each(|x| *x *= inv);
}

/// `x = LayerNorm(x + y + bias)` over one row.
#[inline(always)]
pub fn residual_norm(
    x: &mut [f32],
    y: &[f32],
    bias: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) {
    for ((x, y), b) in x.iter_mut().zip(y).zip(bias) {
        *x += y + b;
    }
    norm(x, gamma, beta, eps);
}

/// LayerNorm over one row, in place.
#[inline(always)]
pub fn norm(x: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let n = x.len() as f32;
    let mean = sum(x, |v| v) / n;
    x.iter_mut().for_each(|v| *v -= mean);
    let inv = 1.0 / (sum(x, |v| v * v) / n + eps).sqrt();
    for ((v, g), b) in x.iter_mut().zip(gamma).zip(beta) {
        *v = *v * inv * g + b;
    }
}

/// Sum of `f(v)` over `x` in sixteen running lanes, so it vectorises.
#[inline(always)]
fn sum(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let (chunks, tail) = x.as_chunks::<16>();
    let mut acc = [0f32; 16];
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += f(v);
        }
    }
    acc.iter().sum::<f32>() + tail.iter().map(|&v| f(v)).sum::<f32>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_the_library_over_softmax_range() {
        for i in 0..20_000 {
            let x = -87.0 + i as f32 * 0.00435;
            let (got, want) = (exp(x), x.exp());
            assert!(
                ((got - want) / want).abs() < 4e-7,
                "exp({x}) = {got}, want {want}"
            );
        }
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn erf_matches_known_values() {
        for (x, want) in [
            (0.0, 0.0),
            (0.5, 0.520_499_9),
            (1.0, 0.842_700_8),
            (-2.0, -0.995_322_3),
            (4.0, 0.999_999_98),
        ] {
            assert!((erf(x) - want).abs() < 2e-7, "erf({x}) = {}", erf(x));
        }
    }

    #[test]
    fn softmax_sums_to_one_and_keeps_order() {
        let mut row = vec![1.0, 3.0, -2.0, 3.5, 0.0];
        scaled_softmax(&mut row, 0.5);
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(row[3] > row[1] && row[1] > row[0] && row[0] > row[4] && row[4] > row[2]);
        let want = (0.5f32 * (3.0 - 3.5)).exp() * row[3];
        assert!((row[1] - want).abs() < 1e-7);
    }

    #[test]
    fn norm_gives_zero_mean_unit_variance() {
        let mut x: Vec<f32> = (0..384)
            .map(|i| (i as f32 * 0.37).sin() * 3.0 + 1.0)
            .collect();
        norm(&mut x, &[1.0; 384], &[0.0; 384], 1e-12);
        let mean = x.iter().sum::<f32>() / 384.0;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 384.0;
        assert!(
            mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-4,
            "mean {mean} var {var}"
        );
    }
}
