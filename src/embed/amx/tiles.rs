//! Matrix products on the AMX tile unit, at (near) fp32 accuracy.
//!
//! AMX multiplies bf16 (8-bit mantissa) pairs and accumulates in fp32. Each fp32 operand is
//! split into a bf16 high part and a bf16 remainder (together about 16 of fp32's 24 mantissa
//! bits), and the product is taken as `hi·hi + hi·lo + lo·hi`, dropping only `lo·lo`: each
//! product is within about 2e-5 of its size, and a sum of hundreds of them agrees with fp32
//! to about 1e-6 relative, at several times the speed of AVX-512 FMA on the same core. Through
//! the whole network that is exact to the reference's own precision (cosine 1.0000000). The
//! three terms are one bf16 product over a tripled depth: B's columns are packed as
//! `[hi; lo; hi]`, A's rows as `[hi | lo]` and read as `[hi | hi | lo]`.
//!
//! [`Split::One`] skips the split: one bf16 product, three times faster, embeddings within
//! cosine 0.99996 of fp32's (the bf16 fast mode).
//!
//! Callers must have found AMX-BF16 and AVX-512 on the CPU and the tile state granted by the
//! kernel ([`super::unavailable`]); `tiles` checks neither, so [`matmul`] and the packers are
//! `unsafe` to call.

use std::arch::asm;

/// One tile row: 64 bytes, 32 bf16 values. Buffers are built from these so every tile row is
/// cache-line aligned.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub struct Line([u16; 32]);

const ZERO: Line = Line([0; 32]);

/// Rows and columns of one tile; also the depth (in bf16 values) one tile step covers is 32.
const TILE: usize = 16;
const DEPTH: usize = 32;

/// Nearest bf16 (ties to even) of an fp32 value, as its 16 bits.
#[inline(always)]
fn bf16(x: f32) -> u16 {
    let b = x.to_bits();
    let h = (b.wrapping_add(0x7fff + ((b >> 16) & 1)) >> 16) as u16;
    // The bf16 product instructions read denormal inputs as zero; zeroing them here, where it
    // changes none of their sums, lets `matmul_fma`'s plain FMAs agree with them bit for bit.
    if h & 0x7f80 == 0 {
        h & 0x8000
    } else {
        h
    }
}

/// `x` as a bf16 high part and the bf16 of what the high part leaves out.
#[inline(always)]
fn halves(x: f32) -> [u16; 2] {
    let hi = bf16(x);
    [hi, bf16(x - f32::from_bits(u32::from(hi) << 16))]
}

/// How fp32 operands become bf16 products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// `hi·hi + hi·lo + lo·hi`: fp32 accuracy.
    Three,
    /// `hi·hi`: bf16 accuracy.
    One,
}

impl Split {
    /// Which half of each value (0 the high part, 1 the remainder) fills each of B's depth
    /// segments.
    fn b_halves(self) -> &'static [usize] {
        match self {
            Split::Three => &[0, 1, 0],
            Split::One => &[0],
        }
    }

    /// The A segment each B segment is multiplied with. A holds each half once (`[hi | lo]`);
    /// the product walks it as `[hi | hi | lo]`.
    fn a_segment(self, b_segment: usize) -> usize {
        match self {
            Split::Three => [0, 0, 1][b_segment],
            Split::One => 0,
        }
    }

    /// Halves of each value a product needs: the remainder only for [`Split::Three`].
    fn a_halves(self) -> usize {
        match self {
            Split::Three => 2,
            Split::One => 1,
        }
    }
}

/// Tile steps one segment of depth `k` takes (`k` rounded up to whole steps, zero-padded).
fn segment_steps(k: usize) -> usize {
    k.div_ceil(DEPTH)
}

/// The right-hand matrix B (`k × n`) in tile order: for each 16-column block, its depth steps
/// one after another (every segment of [`Split::b_halves`] in turn), each step 16 rows of
/// interleaved pairs (`B[2r][c], B[2r+1][c]`), the layout `tdpbf16ps` reads.
pub struct PackedB {
    lines: Vec<Line>,
    split: Split,
    n_tiles: usize,
    segment_steps: usize,
}

impl PackedB {
    pub fn new() -> PackedB {
        PackedB {
            lines: Vec::new(),
            split: Split::One,
            n_tiles: 0,
            segment_steps: 0,
        }
    }

    fn steps(&self) -> usize {
        self.split.b_halves().len() * self.segment_steps
    }

    /// Sizes the buffer for `n` columns of depth `k`, all zero.
    fn reset(&mut self, split: Split, n: usize, k: usize) {
        self.split = split;
        self.n_tiles = n.div_ceil(TILE);
        self.segment_steps = segment_steps(k);
        self.lines.clear();
        self.lines.resize(self.n_tiles * self.steps() * TILE, ZERO);
    }

    /// Writes the lines of depth pair `q` for one 16-column tile, `lines[half]` holding that
    /// half of every pair, into each segment that takes it.
    #[inline(always)]
    fn put_lines(&mut self, tile: usize, q: usize, lines: &[Line; 2]) {
        let steps = self.steps();
        for (segment, &half) in self.split.b_halves().iter().enumerate() {
            let step = segment * self.segment_steps + q / TILE;
            self.lines[(tile * steps + step) * TILE + q % TILE] = lines[half];
        }
    }

    /// Packs B = Xᵀ for `n` rows of `k` values (`X[col][row]` at `x[col * stride + row]`):
    /// attention's keys. Each 16 × 32 block of X (16 columns of B, one depth step) is turned
    /// into pairs row by row, which vectorizes, and then transposed into the step's 16 lines.
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    pub fn pack_transposed(&mut self, split: Split, x: &[f32], n: usize, k: usize, stride: usize) {
        self.reset(split, n, k);
        let wanted = split.a_halves();
        for tile in 0..self.n_tiles {
            let cols = tile * TILE..n.min((tile + 1) * TILE);
            for step in 0..self.segment_steps {
                let depth = step * DEPTH..k.min((step + 1) * DEPTH);
                // words[half][c][p]: column c's pair p of this step, as two bf16 in one u32.
                let mut words = [[[0u32; TILE]; TILE]; 2];
                for (half, words) in words.iter_mut().enumerate().take(wanted) {
                    for (col, words) in cols.clone().zip(words) {
                        pair_words(&x[col * stride..][depth.clone()], half, words);
                    }
                }
                for p in 0..depth.len().div_ceil(2) {
                    let mut lines = [ZERO; 2];
                    for (line, words) in lines.iter_mut().zip(&words).take(wanted) {
                        for (c, w) in words.iter().enumerate() {
                            [line.0[2 * c], line.0[2 * c + 1]] = [w[p] as u16, (w[p] >> 16) as u16];
                        }
                    }
                    self.put_lines(tile, step * TILE + p, &lines);
                }
            }
        }
    }

    /// Packs B = X for `k` rows of `n` values (`X[row][col]` at `x[row * stride + col]`): a
    /// linear layer's `[in, out]` weight, or attention's values. Each line is built from 16
    /// consecutive values of two rows, which vectorizes.
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    pub fn pack_rows(&mut self, split: Split, x: &[f32], k: usize, n: usize, stride: usize) {
        self.reset(split, n, k);
        let wanted = split.a_halves();
        let zeros = [0f32; TILE];
        for q in 0..k.div_ceil(2) {
            let first = &x[2 * q * stride..2 * q * stride + n];
            let second =
                (2 * q + 1 < k).then(|| &x[(2 * q + 1) * stride..(2 * q + 1) * stride + n]);
            for tile in 0..self.n_tiles {
                let cols = tile * TILE..n.min((tile + 1) * TILE);
                let second = second.map_or(&zeros[..cols.len()], |s| &s[cols.clone()]);
                let mut lines = [ZERO; 2];
                for (half, line) in lines.iter_mut().enumerate().take(wanted) {
                    *line = interleaved(&first[cols.clone()], second, half);
                }
                self.put_lines(tile, q, &lines);
            }
        }
    }
}

/// One half (0 the high part, 1 the remainder) of `x` as bf16.
#[inline(always)]
fn half_of(x: f32, half: usize) -> u16 {
    if half == 0 {
        bf16(x)
    } else {
        halves(x)[1]
    }
}

/// A tile line holding, for each column `c`, the pair (`first[c]`, `second[c]`); columns past
/// the slices' ends (at most 16 long) are zero.
#[inline(always)]
fn interleaved(first: &[f32], second: &[f32], half: usize) -> Line {
    // Whole 16-value arrays, so the loop below compiles to a few vector instructions.
    let (mut a, mut b) = ([0f32; TILE], [0f32; TILE]);
    a[..first.len()].copy_from_slice(first);
    b[..second.len()].copy_from_slice(second);
    let mut line = ZERO;
    for c in 0..TILE {
        line.0[2 * c] = half_of(a[c], half);
        line.0[2 * c + 1] = half_of(b[c], half);
    }
    line
}

/// Consecutive values of `row` (at most one depth step) as pairs, each a u32 with the first
/// value in its low 16 bits, as a line stores it; an odd last value pairs with zero.
#[inline(always)]
fn pair_words(row: &[f32], half: usize, words: &mut [u32; TILE]) {
    let (pairs, odd) = row.as_chunks::<2>();
    for (w, &[a, b]) in words.iter_mut().zip(pairs) {
        *w = u32::from(half_of(a, half)) | (u32::from(half_of(b, half)) << 16);
    }
    if let [last] = odd {
        words[pairs.len()] = u32::from(half_of(*last, half));
    }
}

/// The left-hand matrix A (`m × k`), each row `[hi | lo]` (or `[hi]` for [`Split::One`]), rows
/// padded to whole tiles.
pub struct PackedA {
    lines: Vec<Line>,
    /// With `widen`, [`Split::One`] packs hold their bf16 values as fp32 here instead of in
    /// `lines`, in the same order, for [`matmul_fma`] to broadcast straight from memory.
    widened: Vec<f32>,
    widen: bool,
    split: Split,
    /// Rows packed, before padding to whole tiles.
    rows: usize,
    segment_steps: usize,
}

impl PackedA {
    /// A buffer for [`matmul`] and [`matmul_dots`], or with `widen` for [`matmul_fma`].
    pub fn new(widen: bool) -> PackedA {
        PackedA {
            lines: Vec::new(),
            widened: Vec::new(),
            widen,
            split: Split::One,
            rows: 0,
            segment_steps: 0,
        }
    }

    /// Packs `m` rows of `k` values, row `r` starting at `a[r * stride]`, reusing this buffer.
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    pub fn pack(&mut self, split: Split, a: &[f32], m: usize, k: usize, stride: usize) {
        self.split = split;
        self.segment_steps = segment_steps(k);
        self.rows = m;
        if self.widen {
            assert!(split == Split::One, "only unsplit operands are widened");
            self.pack_widened(a, k, stride);
            return;
        }
        let seg = self.segment_steps * DEPTH;
        let per_row = split.a_halves() * self.segment_steps;
        // Every value is written below (padding as zeros), so the buffer is not cleared first.
        self.lines.resize(self.m_tiles() * TILE * per_row, ZERO);
        for (r, dst) in self.lines.chunks_exact_mut(per_row).enumerate() {
            let dst = values(dst);
            if r >= m {
                dst.fill(0);
                continue;
            }
            let row = &a[r * stride..r * stride + k];
            match split {
                Split::Three => {
                    let (hi, lo) = dst.split_at_mut(seg);
                    for ((x, h), l) in row.iter().zip(hi.iter_mut()).zip(lo.iter_mut()) {
                        [*h, *l] = halves(*x);
                    }
                    hi[k..].fill(0);
                    lo[k..].fill(0);
                }
                Split::One => {
                    for (x, h) in row.iter().zip(dst.iter_mut()) {
                        *h = bf16(*x);
                    }
                    dst[k..].fill(0);
                }
            }
        }
    }

    /// [`Split::One`]'s values as fp32, row `r` at `widened[r * seg..]` (`seg` the depth in
    /// whole steps, zero-padded); only the real rows, which are all [`matmul_fma`] reads.
    #[inline(always)]
    fn pack_widened(&mut self, a: &[f32], k: usize, stride: usize) {
        let seg = self.segment_steps * DEPTH;
        self.widened.resize(self.rows * seg, 0.0);
        for (r, dst) in self.widened.chunks_exact_mut(seg).enumerate() {
            let row = &a[r * stride..r * stride + k];
            for (x, w) in row.iter().zip(dst.iter_mut()) {
                *w = f32::from_bits(u32::from(bf16(*x)) << 16);
            }
            dst[k..].fill(0.0);
        }
    }

    fn m_tiles(&self) -> usize {
        self.rows.div_ceil(TILE)
    }

    /// Rows the product will have, padding included.
    pub fn padded_rows(&self) -> usize {
        self.m_tiles() * TILE
    }
}

/// A run of lines as the bf16 values they hold.
fn values(lines: &mut [Line]) -> &mut [u16] {
    // SAFETY: `Line` is a `repr(C)` array of 32 u16 with no padding (64 bytes, align 64).
    unsafe { std::slice::from_raw_parts_mut(lines.as_mut_ptr().cast::<u16>(), lines.len() * 32) }
}

/// The tile configuration: palette 1, eight tiles of 16 rows × 64 bytes.
#[repr(C, align(64))]
struct Config([u8; 64]);

impl Config {
    fn full_tiles() -> Config {
        let mut c = [0u8; 64];
        c[0] = 1;
        for t in 0..8 {
            c[16 + 2 * t] = 64;
            c[48 + t] = TILE as u8;
        }
        Config(c)
    }
}

/// `c = a · b`, written as `a.padded_rows()` rows of whole 16-column tiles with a row stride
/// of `ldc` floats (so `c` needs `a.padded_rows() * ldc` floats and `ldc` ≥ b's padded width).
///
/// Tiles 0–3 hold a 32×32 block of C, tiles 4–5 two row tiles of A, tiles 6–7 two column
/// tiles of B; edges with a single row or column tile use the 1×2, 2×1 and 1×1 forms. For each
/// column pair of B, every row pair of A passes by: B's panel is read once, A from L2 again
/// for each panel. (Blocking the depth so B's panel stays in L1, with C's tiles stored and
/// reloaded between blocks, measured slower.)
///
/// # Safety
/// The CPU must have AMX-BF16 and the kernel must have granted this process the tile state
/// ([`super::unavailable`] returned None).
pub unsafe fn matmul(a: &PackedA, b: &PackedB, c: &mut [f32], ldc: usize) {
    assert!(
        a.split == b.split && a.segment_steps == b.segment_steps && !a.widen,
        "inner dimensions differ, or A is widened"
    );
    assert!(ldc >= b.n_tiles * TILE && c.len() >= a.padded_rows() * ldc);
    let steps = b.steps();
    let per_segment = b.segment_steps;
    let a_row = a.split.a_halves() * per_segment;
    let config = Config::full_tiles();
    // SAFETY: the tile configuration is loaded first on this thread; `block` stays inside the
    // buffers (see there).
    unsafe {
        asm!("ldtilecfg [{}]", in(reg) config.0.as_ptr(), options(nostack));
    }
    // Where each of B's segments and the A segment it meets start, in lines along a row.
    let mut segments = [(0, 0); 3];
    for (b_segment, pair) in segments
        .iter_mut()
        .enumerate()
        .take(b.split.b_halves().len())
    {
        *pair = (
            a.split.a_segment(b_segment) * per_segment,
            b_segment * per_segment,
        );
    }
    let run = Run {
        segments: &segments[..b.split.b_halves().len()],
        per_segment,
        a_stride: a_row * 64,
        c_stride: ldc * 4,
    };
    for nt in (0..b.n_tiles).step_by(2) {
        let wide = nt + 1 < b.n_tiles;
        let b0 = &b.lines[nt * steps * TILE..];
        let b1 = if wide {
            &b.lines[(nt + 1) * steps * TILE..]
        } else {
            b0
        };
        let m_tiles = a.m_tiles();
        for mt in (0..m_tiles).step_by(2) {
            let tall = mt + 1 < m_tiles;
            let a0 = &a.lines[mt * TILE * a_row..];
            let c0 = &mut c[mt * TILE * ldc + nt * TILE..];
            // SAFETY: A's rows hold `a_row` lines each and the buffer whole row tiles, so 16
            // rows from `a0` (and from the next row tile when `tall`) stay inside it; B's tiles
            // likewise; C's block is inside `c` by the assertion above.
            unsafe {
                match (tall, wide) {
                    (true, true) => block::<true, true>(a0, b0, b1, c0, &run),
                    (true, false) => block::<true, false>(a0, b0, b1, c0, &run),
                    (false, true) => block::<false, true>(a0, b0, b1, c0, &run),
                    (false, false) => block::<false, false>(a0, b0, b1, c0, &run),
                }
            }
        }
    }
    // SAFETY: releases this thread's tile state; no tile is used after this.
    unsafe {
        asm!("tilerelease", options(nostack));
    }
}

/// What every block of one product shares.
struct Run<'a> {
    /// (A's first line, B's first step) of each segment pairing.
    segments: &'a [(usize, usize)],
    per_segment: usize,
    /// Bytes between A's rows and between C's rows.
    a_stride: usize,
    c_stride: usize,
}

/// One 16–32 × 16–32 block of C (two rows of tiles when `TALL`, two columns when `WIDE`): A
/// times B over the whole depth. Safety: the caller keeps every 16-row tile read and written
/// inside the slices' buffers, and has loaded the tile configuration.
#[inline(always)]
unsafe fn block<const TALL: bool, const WIDE: bool>(
    a: &[Line],
    b0: &[Line],
    b1: &[Line],
    c0: &mut [f32],
    run: &Run,
) {
    let (sa, sc) = (run.a_stride, run.c_stride);
    let c0 = c0.as_mut_ptr();
    // Wrapping arithmetic: without `TALL` or `WIDE` these point past C and are never used.
    let c1 = c0.wrapping_byte_add(TILE * sc);
    let (c01, c11) = (c0.wrapping_add(TILE), c1.wrapping_add(TILE));
    // The accumulators stay in tmm0–3 from the `tilezero`s to the stores, across separate
    // `asm!` blocks that neither declare them as outputs nor clobber them (Rust's `tmm_reg`
    // class can only be named as a clobber, and a clobber would say their values are lost).
    // Rust's inline-assembly rules do not promise that registers keep values between blocks;
    // this relies on what LLVM does: it allocates tile registers only for its own AMX
    // intrinsics, which nothing in this crate or its dependencies uses, and the kernel saves
    // and restores tile state across context switches once the process has permission (see
    // `unavailable`). It would break if code using AMX intrinsics were inlined here, or if a
    // call between the blocks ran tile instructions of its own. The sound alternative is one
    // `asm!` block for the zeroing, the loop and the stores. If it breaks, the products come
    // out wrong, and `amx_cpu_products_match_f64_at_fp32_and_bf16_accuracy` (and the parity
    // tests) fail.
    // SAFETY: zeroing tiles needs only the configuration the caller loaded.
    unsafe {
        asm!(
            "tilezero tmm0",
            "tilezero tmm1",
            "tilezero tmm2",
            "tilezero tmm3",
            options(nostack)
        );
    }
    for &(a_line, b_step) in run.segments {
        // SAFETY: `a_line` and `b_step` come from the caller's segment table, which stays
        // inside A's first row tile and B's tiles; the caller keeps those inside their buffers.
        let (a0, b0, b1) = unsafe {
            (
                a.as_ptr().add(a_line),
                b0.as_ptr().add(b_step * TILE),
                b1.as_ptr().add(b_step * TILE),
            )
        };
        let a1 = a0.wrapping_byte_add(TILE * sa);
        // SAFETY: as for this function: every tile read stays inside A's and B's buffers.
        unsafe { block_steps::<TALL, WIDE>(a0, a1, b0, b1, sa, run.per_segment) };
    }
    // SAFETY: C's block (16 rows of `sc` bytes from `c0`, and from `c1`/`c01`/`c11` when
    // `TALL`/`WIDE`) is inside `c0`'s buffer, as the caller guarantees.
    unsafe {
        asm!("tilestored [{c} + {s}*1], tmm0", c = in(reg) c0, s = in(reg) sc, options(nostack));
        if WIDE {
            asm!("tilestored [{c} + {s}*1], tmm1", c = in(reg) c01, s = in(reg) sc, options(nostack));
        }
        if TALL {
            asm!("tilestored [{c} + {s}*1], tmm2", c = in(reg) c1, s = in(reg) sc, options(nostack));
        }
        if TALL && WIDE {
            asm!("tilestored [{c} + {s}*1], tmm3", c = in(reg) c11, s = in(reg) sc, options(nostack));
        }
    }
}

/// `steps` depth steps into C's tiles, A's row tiles at `a0`/`a1` (row stride `sa` bytes), B's
/// column tiles at `b0`/`b1`. Safety: as for [`block`].
#[inline(always)]
unsafe fn block_steps<const TALL: bool, const WIDE: bool>(
    a0: *const Line,
    a1: *const Line,
    b0: *const Line,
    b1: *const Line,
    sa: usize,
    steps: usize,
) {
    let sb = 64usize;
    for k in 0..steps {
        // `a1` points past A when not `TALL` and is then never read, hence wrapping.
        // SAFETY: the caller keeps `steps` steps of A's row tile and B's column tiles inside
        // their buffers, so step `k` is in bounds.
        let (a0, b0, b1) = unsafe { (a0.add(k), b0.add(k * TILE), b1.add(k * TILE)) };
        let a1 = a1.wrapping_add(k);
        // SAFETY: each load reads 16 rows of 64 bytes from a pointer the caller keeps inside
        // its buffer (A's rows `sa` bytes apart, B's tiles packed 64 bytes a row); `a1` and
        // `b1` are read only when `TALL` and `WIDE` say they point at real tiles.
        unsafe {
            asm!(
                "tileloadd tmm4, [{a0} + {sa}*1]",
                "tileloadd tmm6, [{b0} + {sb}*1]",
                "tdpbf16ps tmm0, tmm4, tmm6",
                a0 = in(reg) a0, b0 = in(reg) b0, sa = in(reg) sa, sb = in(reg) sb, options(nostack));
            if WIDE {
                asm!(
                    "tileloadd tmm7, [{b1} + {sb}*1]",
                    "tdpbf16ps tmm1, tmm4, tmm7",
                    b1 = in(reg) b1, sb = in(reg) sb, options(nostack));
            }
            if TALL {
                asm!(
                    "tileloadd tmm5, [{a1} + {sa}*1]",
                    "tdpbf16ps tmm2, tmm5, tmm6",
                    a1 = in(reg) a1, sa = in(reg) sa, options(nostack));
            }
            if TALL && WIDE {
                asm!("tdpbf16ps tmm3, tmm5, tmm7", options(nostack));
            }
        }
    }
}

/// `c = a · b` for [`Split::One`] with AVX-512 BF16 dot products (`vdpbf16ps`) instead of the
/// tile unit, on the same packed layouts: what the bf16 mode runs on a CPU with AVX-512 BF16 and
/// no AMX (AMD Zen 4 and later, Intel Cooper Lake). Each of B's tile lines (one depth pair of 16
/// columns) is one vector, multiplied with a broadcast depth pair of each of [`ROWS`] rows of A
/// into two accumulators per row (32 columns). Only A's real rows are written; C's padding rows
/// keep whatever they held. Every entry of C sums its depth pairs in the same order whatever
/// rows surround it, so a story's numbers do not depend on its batch.
///
/// # Safety
/// The CPU must have AVX-512 F and BF16 ([`super::dots_unavailable`] returned None).
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,avx2,fma")]
pub unsafe fn matmul_dots(a: &PackedA, b: &PackedB, c: &mut [f32], ldc: usize) {
    assert!(
        a.split == Split::One && b.split == Split::One && a.segment_steps == b.segment_steps,
        "the dot-product kernel multiplies unsplit operands of the same depth"
    );
    assert!(
        !a.widen,
        "the dot-product kernel reads bf16 lines, not a widened A"
    );
    assert!(ldc >= b.n_tiles * TILE && c.len() >= a.padded_rows() * ldc);
    let steps = a.segment_steps;
    for (nt, wide, b0, b1) in panel_pairs(b) {
        for r0 in (0..a.rows).step_by(ROWS) {
            let a0 = &a.lines[r0 * steps..];
            let c0 = &mut c[r0 * ldc + nt * TILE..];
            let rows = ROWS.min(a.rows - r0);
            // SAFETY: `rows` rows of `steps` lines from `a0` and of `ldc` floats from `c0` are
            // inside A and C (A holds whole row tiles, C `a.padded_rows()` rows, checked
            // above); B's panels hold `steps * TILE` lines each.
            unsafe {
                match (rows, wide) {
                    (ROWS, true) => dot_block::<ROWS, true>(a0, b0, b1, c0, steps, ldc),
                    (ROWS, false) => dot_block::<ROWS, false>(a0, b0, b1, c0, steps, ldc),
                    (_, true) => dot_rows::<true>(rows, a0, b0, b1, c0, steps, ldc),
                    (_, false) => dot_rows::<false>(rows, a0, b0, b1, c0, steps, ldc),
                }
            }
        }
    }
}

/// B's 16-column tiles two at a time, as the dot-product and FMA kernels take them: the first
/// tile's index, whether a second follows, and the two panels of `steps * TILE` lines (the
/// first twice when it is alone).
fn panel_pairs(b: &PackedB) -> impl Iterator<Item = (usize, bool, &[Line], &[Line])> {
    let panel = b.segment_steps * TILE;
    (0..b.n_tiles).step_by(2).map(move |nt| {
        let wide = nt + 1 < b.n_tiles;
        let b0 = &b.lines[nt * panel..(nt + 1) * panel];
        let b1 = if wide {
            &b.lines[(nt + 1) * panel..(nt + 2) * panel]
        } else {
            b0
        };
        (nt, wide, b0, b1)
    })
}

/// Rows of A that one pass of [`matmul_dots`] multiplies: 16 accumulators, 2 of B's lines and
/// a broadcast in registers. 12 rows (24 accumulators) measured no faster on AMD Zen 4, where
/// this kernel already runs near the rate of one 512-bit `vdpbf16ps` a cycle.
const ROWS: usize = 8;

/// Fewer than [`ROWS`] rows, one at a time (the last rows of a product). Safety: as for
/// [`dot_block`].
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,avx2,fma")]
unsafe fn dot_rows<const WIDE: bool>(
    rows: usize,
    a: &[Line],
    b0: &[Line],
    b1: &[Line],
    c: &mut [f32],
    steps: usize,
    ldc: usize,
) {
    for r in 0..rows {
        // SAFETY: row `r` of A and C is inside the caller's rows.
        unsafe { dot_block::<1, WIDE>(&a[r * steps..], b0, b1, &mut c[r * ldc..], steps, ldc) };
    }
}

/// `R` rows of C, 16 columns (32 when `WIDE`), over the whole depth. Safety: the CPU has
/// AVX-512 BF16; `a` holds `R` rows of `steps` lines, `c` `R` rows of `ldc` floats with 16 (32)
/// columns from its start, `b0` and `b1` `steps * TILE` lines.
#[inline(always)]
unsafe fn dot_block<const R: usize, const WIDE: bool>(
    a: &[Line],
    b0: &[Line],
    b1: &[Line],
    c: &mut [f32],
    steps: usize,
    ldc: usize,
) {
    use std::arch::x86_64::*;
    assert!(a.len() >= (R - 1) * steps + steps && b0.len() >= steps * TILE);
    assert!(b1.len() >= steps * TILE && c.len() >= (R - 1) * ldc + TILE * (1 + WIDE as usize));
    // SAFETY: the caller found AVX-512 F and BF16 on this CPU; every load and store below is
    // inside the slices, by the assertions above.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        for step in 0..steps {
            for pair in 0..TILE {
                let line = step * TILE + pair;
                let w0: __m512bh =
                    std::mem::transmute(_mm512_load_si512(b0[line].0.as_ptr().cast()));
                let w1: __m512bh =
                    std::mem::transmute(_mm512_load_si512(b1[line].0.as_ptr().cast()));
                for (r, acc) in acc.iter_mut().enumerate() {
                    let row = &a[r * steps + step].0;
                    let x = u32::from(row[2 * pair]) | (u32::from(row[2 * pair + 1]) << 16);
                    let x: __m512bh = std::mem::transmute(_mm512_set1_epi32(x as i32));
                    acc[0] = _mm512_dpbf16_ps(acc[0], x, w0);
                    if WIDE {
                        acc[1] = _mm512_dpbf16_ps(acc[1], x, w1);
                    }
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            _mm512_storeu_ps(c[r * ldc..].as_mut_ptr(), acc[0]);
            if WIDE {
                _mm512_storeu_ps(c[r * ldc + TILE..].as_mut_ptr(), acc[1]);
            }
        }
    }
}

/// `c = a · b` for [`Split::One`] with fp32 FMAs, bit for bit what [`matmul_dots`] computes on
/// an Intel CPU: there `vdpbf16ps` adds each depth pair's second product, then its first, each
/// rounded as an FMA rounds (checked on random operands by the `bf16_cpu_` tests). Two FMAs do
/// the work of one `vdpbf16ps`, but Intel runs two FMAs a cycle and one `vdpbf16ps` every
/// other cycle, so this kernel is the faster there. The one difference: a partial sum below
/// fp32's smallest normal number, which `vdpbf16ps` flushes to zero and an FMA keeps. `a` must
/// be a widening [`PackedA`]; B's lines are widened in registers, each shared by [`FMA_ROWS`]
/// rows.
///
/// # Safety
/// The CPU must have AVX-512 F, BW, DQ and VL, AVX2 and FMA ([`super::dots_unavailable`]
/// returned None).
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
pub unsafe fn matmul_fma(a: &PackedA, b: &PackedB, c: &mut [f32], ldc: usize) {
    assert!(
        a.widen && a.split == Split::One && b.split == Split::One,
        "the FMA kernel multiplies a widened A with an unsplit B"
    );
    assert!(
        a.segment_steps == b.segment_steps,
        "inner dimensions differ"
    );
    assert!(ldc >= b.n_tiles * TILE && c.len() >= a.padded_rows() * ldc);
    let steps = a.segment_steps;
    let seg = steps * DEPTH;
    for (nt, wide, b0, b1) in panel_pairs(b) {
        for r0 in (0..a.rows).step_by(FMA_ROWS) {
            let a0 = &a.widened[r0 * seg..];
            let c0 = &mut c[r0 * ldc + nt * TILE..];
            let rows = FMA_ROWS.min(a.rows - r0);
            // SAFETY: `rows` rows of `seg` values from `a0` and of `ldc` floats from `c0` are
            // inside A and C (A holds its real rows, C `a.padded_rows()` rows, checked above);
            // B's panels hold `steps * TILE` lines each.
            unsafe {
                match (rows, wide) {
                    (FMA_ROWS, true) => fma_block::<FMA_ROWS, true>(a0, b0, b1, c0, seg, ldc),
                    (FMA_ROWS, false) => fma_block::<FMA_ROWS, false>(a0, b0, b1, c0, seg, ldc),
                    (_, true) => fma_rows::<true>(rows, a0, b0, b1, c0, seg, ldc),
                    (_, false) => fma_rows::<false>(rows, a0, b0, b1, c0, seg, ldc),
                }
            }
        }
    }
}

/// Rows of A that one pass of [`matmul_fma`] multiplies: 24 accumulators and 4 widened lines of
/// B in registers.
const FMA_ROWS: usize = 12;

/// Fewer than [`FMA_ROWS`] rows, one at a time. Safety: as for [`fma_block`].
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
unsafe fn fma_rows<const WIDE: bool>(
    rows: usize,
    a: &[f32],
    b0: &[Line],
    b1: &[Line],
    c: &mut [f32],
    seg: usize,
    ldc: usize,
) {
    for r in 0..rows {
        // SAFETY: row `r` of A and C is inside the caller's rows.
        unsafe { fma_block::<1, WIDE>(&a[r * seg..], b0, b1, &mut c[r * ldc..], seg, ldc) };
    }
}

/// `R` rows of C, 16 columns (32 when `WIDE`), over the whole depth. Safety: the CPU has
/// AVX-512 F and FMA; `a` holds `R` rows of `seg` values, `c` `R` rows of `ldc` floats with 16
/// (32) columns from its start, `b0` and `b1` `seg / 2` lines.
#[inline(always)]
unsafe fn fma_block<const R: usize, const WIDE: bool>(
    a: &[f32],
    b0: &[Line],
    b1: &[Line],
    c: &mut [f32],
    seg: usize,
    ldc: usize,
) {
    use std::arch::x86_64::*;
    assert!(a.len() >= R * seg && b0.len() >= seg / 2 && b1.len() >= seg / 2);
    assert!(c.len() >= (R - 1) * ldc + TILE * (1 + WIDE as usize));
    // SAFETY: the caller found AVX-512 F and FMA on this CPU; every load and store below is
    // inside the slices, by the assertions above.
    unsafe {
        // A line's 32-bit words hold (first, second) of a depth pair; as fp32, the second is
        // the word with its low half cleared and the first the word shifted up 16 bits.
        let high = _mm512_set1_epi32(-65536);
        let widen = |line: &Line| {
            let w = _mm512_load_si512(line.0.as_ptr().cast());
            (
                _mm512_castsi512_ps(_mm512_slli_epi32::<16>(w)),
                _mm512_castsi512_ps(_mm512_and_si512(w, high)),
            )
        };
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        for line in 0..seg / 2 {
            let (first0, second0) = widen(&b0[line]);
            let (first1, second1) = if WIDE {
                widen(&b1[line])
            } else {
                (first0, second0)
            };
            for (r, acc) in acc.iter_mut().enumerate() {
                let first = _mm512_set1_ps(a[r * seg + 2 * line]);
                let second = _mm512_set1_ps(a[r * seg + 2 * line + 1]);
                acc[0] = _mm512_fmadd_ps(first, first0, _mm512_fmadd_ps(second, second0, acc[0]));
                if WIDE {
                    acc[1] =
                        _mm512_fmadd_ps(first, first1, _mm512_fmadd_ps(second, second1, acc[1]));
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            _mm512_storeu_ps(c[r * ldc..].as_mut_ptr(), acc[0]);
            if WIDE {
                _mm512_storeu_ps(c[r * ldc + TILE..].as_mut_ptr(), acc[1]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `a · b` against an f64 product, for shapes that leave partial tiles on every side; the
    /// error of each entry is bounded relative to the sum of its products' magnitudes (the
    /// split's worst case per product is about 2.3e-5; bf16's about 8e-3).
    /// A product kernel: [`matmul`], [`matmul_dots`] or [`matmul_fma`].
    type Multiply = unsafe fn(&PackedA, &PackedB, &mut [f32], usize);

    /// `widen` packs A for [`matmul_fma`].
    fn check(
        multiply: Multiply,
        widen: bool,
        split: Split,
        m: usize,
        k: usize,
        n: usize,
        bound: f64,
    ) {
        let value =
            |i: usize, salt: usize| ((i * 7919 + salt * 104_729) % 2001) as f32 / 1000.0 - 1.0;
        let a: Vec<f32> = (0..m * k).map(|i| value(i, 1)).collect();
        let b: Vec<f32> = (0..k * n).map(|i| value(i, 2) * 0.3).collect(); // b[k][n]
        let mut pa = PackedA::new(widen);
        let mut pb = PackedB::new();
        let ldc = n.div_ceil(16) * 16;
        let mut c = vec![0f32; m.div_ceil(16) * 16 * ldc];
        // SAFETY: only reached after `unavailable()` found AVX-512 and AMX.
        unsafe {
            pa.pack(split, &a, m, k, k);
            pb.pack_rows(split, &b, k, n, n);
        }
        // SAFETY: as above; `c` holds whole tiles of `ldc` columns.
        unsafe { multiply(&pa, &pb, &mut c, ldc) };
        // B packed from its transpose must give the same bits.
        let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect(); // bt[n][k]
        let mut pbt = PackedB::new();
        let mut ct = vec![0f32; c.len()];
        // SAFETY: as above.
        unsafe {
            pbt.pack_transposed(split, &bt, n, k, k);
            multiply(&pa, &pbt, &mut ct, ldc);
        }
        assert_eq!(c, ct, "{split:?} {m}x{k}x{n}: the two B packers differ");
        for i in 0..m {
            for j in 0..n {
                let products = (0..k).map(|t| f64::from(a[i * k + t]) * f64::from(b[t * n + j]));
                let exact: f64 = products.clone().sum();
                let size: f64 = products.map(f64::abs).sum();
                let err = (f64::from(c[i * ldc + j]) - exact).abs();
                assert!(
                    err <= bound * size,
                    "{split:?} {m}x{k}x{n} [{i},{j}]: error {err}, size {size}"
                );
            }
        }
    }

    /// Products (m, k, n) that leave partial tiles, 8-row passes and 32-column pairs on every
    /// side, and the model's own widths.
    const SHAPES: [(usize, usize, usize); 9] = [
        (1, 1, 1),
        (8, 32, 32),
        (9, 40, 20),
        (17, 40, 20),
        (25, 100, 50),
        (40, 100, 50),
        (40, 384, 96),
        (64, 384, 96),
        (33, 31, 16),
    ];

    #[test]
    #[ignore = "needs a CPU with AMX (Intel Xeon 4th generation or later)"]
    fn amx_cpu_products_match_f64_at_fp32_and_bf16_accuracy() {
        if let Some(why) = super::super::unavailable() {
            panic!("this test needs a CPU with AMX: {why}");
        }
        for (m, k, n) in SHAPES {
            check(matmul, false, Split::Three, m, k, n, 3e-5);
            check(matmul, false, Split::One, m, k, n, 1e-2);
        }
    }

    /// B's layout written out entry by entry: value `B[d][col]`, half `h` of segment `s` sits
    /// in line `(tile · steps + s · segment_steps + step) · 16 + pair % 16` at `2 · (col % 16) +
    /// d % 2`, and everything else is zero.
    fn expected_b(split: Split, b: &[f32], k: usize, n: usize) -> Vec<u16> {
        let segment_steps = segment_steps(k);
        let steps = split.b_halves().len() * segment_steps;
        let mut lines = vec![0u16; n.div_ceil(TILE) * steps * TILE * 32];
        for d in 0..k {
            for col in 0..n {
                let (pair, tile) = (d / 2, col / TILE);
                for (segment, &half) in split.b_halves().iter().enumerate() {
                    let step = segment * segment_steps + pair / TILE;
                    let line = (tile * steps + step) * TILE + pair % TILE;
                    lines[line * 32 + 2 * (col % TILE) + d % 2] = halves(b[d * n + col])[half];
                }
            }
        }
        lines
    }

    #[test]
    #[ignore = "needs a CPU with AVX-512 BF16 (AMD Zen 4, Intel Cooper Lake or Xeon 4th generation, or later)"]
    fn bf16_cpu_b_packers_lay_out_both_splits_entry_by_entry() {
        if let Some(why) = super::super::dots_unavailable() {
            panic!("this test needs a CPU with AVX-512: {why}");
        }
        let value = |i: usize| ((i * 7919) % 2001) as f32 / 997.0 - 1.003;
        for (_, k, n) in SHAPES {
            let b: Vec<f32> = (0..k * n).map(value).collect(); // b[k][n]
            let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect(); // bt[n][k]
            for split in [Split::Three, Split::One] {
                let want = expected_b(split, &b, k, n);
                let (mut rows, mut transposed) = (PackedB::new(), PackedB::new());
                // SAFETY: only reached after `dots_unavailable()` found AVX-512.
                unsafe {
                    rows.pack_rows(split, &b, k, n, n);
                    transposed.pack_transposed(split, &bt, n, k, k);
                }
                assert!(
                    values(&mut rows.lines) == want,
                    "{split:?} {k}x{n}: pack_rows"
                );
                assert!(
                    values(&mut transposed.lines) == want,
                    "{split:?} {k}x{n}: pack_transposed"
                );
            }
        }
    }

    #[test]
    #[ignore = "needs a CPU with AVX-512 BF16 (AMD Zen 4, Intel Cooper Lake or Xeon 4th generation, or later)"]
    fn bf16_cpu_dot_products_match_f64_at_bf16_accuracy() {
        if let Some(why) = super::super::dots_unavailable() {
            panic!("this test needs a CPU with AVX-512 BF16: {why}");
        }
        for (m, k, n) in SHAPES {
            check(matmul_dots, false, Split::One, m, k, n, 1e-2);
            check(matmul_fma, true, Split::One, m, k, n, 1e-2);
        }
    }

    /// Where the engine runs [`matmul_fma`] in place of [`matmul_dots`] (Intel), both give the
    /// same bits, on operands whose magnitudes span 2^-40 to 2^40 and include zeros. (fp32
    /// denormals among them are zeroed when packed, for both kernels alike; no partial sum
    /// here falls below fp32's smallest normal, where the two may differ.)
    #[test]
    #[ignore = "needs a CPU with AVX-512 BF16 (AMD Zen 4, Intel Cooper Lake or Xeon 4th generation, or later)"]
    fn bf16_cpu_fma_products_give_the_dot_products_bits_where_they_replace_them() {
        if let Some(why) = super::super::dots_unavailable() {
            panic!("this test needs a CPU with AVX-512 BF16: {why}");
        }
        if !super::super::dots_by_fma() {
            // Elsewhere the FMA kernel is not used; its accuracy is checked above.
            eprintln!(
                "not an Intel CPU: the engine keeps vdpbf16ps, so there is nothing to compare"
            );
            return;
        }
        let value = |i: usize, salt: usize| {
            let h = (i * 7919 + salt * 104_729) % 100_003;
            match h % 50 {
                0 => 0.0,
                1 => 1e-39, // an fp32 denormal, and a bf16 one
                _ => ((h % 2001) as f32 / 1000.0 - 1.0) * 2f32.powi((h % 81) as i32 - 40),
            }
        };
        // (24, 64, 32): whole passes of 12 rows and none left over.
        for (m, k, n) in SHAPES
            .into_iter()
            .chain([(70, 1536, 40), (33, 200, 200), (24, 64, 32)])
        {
            let a: Vec<f32> = (0..m * k).map(|i| value(i, 1)).collect();
            let b: Vec<f32> = (0..k * n).map(|i| value(i, 2)).collect();
            let ldc = n.div_ceil(16) * 16;
            let (mut lines, mut widened, mut pb) =
                (PackedA::new(false), PackedA::new(true), PackedB::new());
            let mut dots = vec![0f32; m.div_ceil(16) * 16 * ldc];
            let mut fma = dots.clone();
            // SAFETY: only reached after `dots_unavailable()` found AVX-512 BF16 and FMA.
            unsafe {
                lines.pack(Split::One, &a, m, k, k);
                widened.pack(Split::One, &a, m, k, k);
                pb.pack_rows(Split::One, &b, k, n, n);
                matmul_dots(&lines, &pb, &mut dots, ldc);
                matmul_fma(&widened, &pb, &mut fma, ldc);
            }
            let differ = (0..m * ldc)
                .filter(|&i| dots[i].to_bits() != fma[i].to_bits())
                .count();
            assert_eq!(differ, 0, "{m}x{k}x{n}: {differ} entries differ");
        }
    }
}
