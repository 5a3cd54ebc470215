//! The AMX engine: failup's own BERT encoder, for CPUs with Intel AMX (Xeon 4th generation and
//! later).
//!
//! rten spends about 80% of an fp32 run in matrix products already near the AVX-512 FMA peak, so
//! no operator tuning inside it can go much faster (docs/src/performance.md). AMX multiplies bf16
//! tiles at many times that rate; [`tiles`] splits every fp32 operand in two bf16 parts so the
//! sums of products stay within about 1e-6 of fp32's (embeddings at cosine ≥ 0.99999 to
//! rten's, 1.0000000 to the reference). Around the
//! products this module runs the rest of BERT itself: embeddings, attention, GELU and layer
//! norms in fp32.
//!
//! On a CPU without AMX but with AVX-512 BF16 (AMD Zen 4 and later), the bf16 mode runs the
//! same packed products on `vdpbf16ps` dot products instead ([`tiles::matmul_dots`]): about
//! twice rten's fp32 speed there. Exact fp32 would need three such products per product, slower
//! than rten's FMA, so it stays AMX-only.
//!
//! Layers see the batch's stories end to end, without padding: only attention needs to know
//! where one story stops, and it runs story by story. Weights come from `model.onnx` (read
//! with the same converter as the rust-bert engine), are packed once at load, and each lane
//! (one per `--threads`) keeps its scratch buffers between batches.

mod math;
mod tiles;

use serde::Deserialize;

use super::lanes::Lanes;
use super::model_dir::read_json;
use super::onnx_weights::{bert_weights_from_onnx, NamedTensor, WeightLayout};
use super::Precision;
use super::{Embedder, ModelDir, Pooling, Tokenized};
use crate::error::{Error, Result};
use tiles::{matmul, matmul_dots, matmul_fma, PackedA, PackedB, Split};

/// Why this machine cannot run the AMX engine, or None when it can. Asks the CPU (AMX-TILE,
/// AMX-BF16, AVX-512) and the kernel, which must grant the process the tile state once
/// (Linux 5.16 and later).
pub fn unavailable() -> Option<String> {
    static CHECK: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    CHECK.get_or_init(check).clone()
}

fn check() -> Option<String> {
    let leaf7 = std::arch::x86_64::__cpuid_count(7, 0);
    let amx = leaf7.edx & (1 << 22) != 0 && leaf7.edx & (1 << 24) != 0;
    if !amx {
        return Some(
            "this CPU has no AMX-BF16 tile unit (Intel Xeon 4th generation or later)".into(),
        );
    }
    // Everything the engine's code is compiled for (its `target_feature`s); a virtual machine
    // may hide some of it even on a CPU with AMX.
    let vector = std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512dq")
        && std::arch::is_x86_feature_detected!("avx512vl")
        && std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma");
    if !vector {
        return Some("this CPU reports AMX but not all of AVX-512 F/BW/DQ/VL, AVX2 and FMA".into());
    }
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // SAFETY: arch_prctl with these arguments only asks the kernel to allow tile state for
    // this process; it reads no memory of ours.
    let granted = unsafe {
        libc::syscall(
            libc::SYS_arch_prctl,
            ARCH_REQ_XCOMP_PERM,
            XFEATURE_XTILEDATA,
        )
    };
    if granted != 0 {
        return Some(format!(
            "the kernel refused AMX tile state ({}); Linux 5.16 or later is needed",
            std::io::Error::last_os_error()
        ));
    }
    None
}

/// Why this CPU cannot run the bf16 mode on AVX-512 BF16 dot products instead of AMX tiles, or
/// None when it can.
pub fn dots_unavailable() -> Option<String> {
    let dots = std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512dq")
        && std::arch::is_x86_feature_detected!("avx512vl")
        && std::arch::is_x86_feature_detected!("avx512bf16")
        && std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma");
    (!dots).then(|| {
        "this CPU has neither AMX nor AVX-512 BF16 (Intel Xeon 4th generation or later, AMD \
         Zen 4 or later)"
            .into()
    })
}

/// Whether the bf16 mode without AMX runs its products as fp32 FMAs ([`tiles::matmul_fma`])
/// rather than `vdpbf16ps`: on Intel CPUs, where `vdpbf16ps` ran at half the FMA rate (one
/// every other cycle) and gave the FMAs' bits, measured on a Xeon (family 6, model 207) whose
/// AMX was hidden by its hypervisor; the `bf16_cpu_` tests check the bits on every CPU that
/// runs them. AMD's Zen 4 runs `vdpbf16ps` about once a cycle, twice its FMA rate, and keeps it.
pub fn dots_by_fma() -> bool {
    let leaf = std::arch::x86_64::__cpuid(0);
    [leaf.ebx, leaf.edx, leaf.ecx] == [0x756e_6547, 0x4965_6e69, 0x6c65_746e] // "GenuineIntel"
}

/// What multiplies the matrices: AMX tiles, or, for bf16 on a CPU without AMX, AVX-512 BF16
/// dot products or the FMAs that give their bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Tiles,
    Dots,
    Fma,
}

/// The parts of `config.json` the encoder's shape comes from.
#[derive(Deserialize)]
struct Config {
    /// The Hugging Face architecture name; this engine implements `bert` only.
    model_type: String,
    hidden_size: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    layer_norm_eps: f32,
    hidden_act: String,
    max_position_embeddings: usize,
}

impl Config {
    /// Why this engine cannot run the model `config.json` describes, if it cannot.
    fn unsupported(&self, pooled_dim: usize) -> Option<String> {
        if self.model_type != "bert" {
            return Some(format!(
                "model_type '{}' (the AMX engine runs BERT models only; use --backend rten)",
                self.model_type
            ));
        }
        if self.hidden_act != "gelu" {
            return Some(format!(
                "hidden_act '{}' (the AMX engine runs BERT's exact gelu only)",
                self.hidden_act
            ));
        }
        if self.hidden_size != pooled_dim {
            return Some(format!(
                "hidden_size {} is not the pooling width {pooled_dim} of \
                 1_Pooling/config.json",
                self.hidden_size
            ));
        }
        let heads = self.num_attention_heads;
        if heads == 0 || !self.hidden_size.is_multiple_of(heads) {
            return Some(format!(
                "num_attention_heads {heads} does not divide hidden_size {} into heads of one \
                 width",
                self.hidden_size
            ));
        }
        // The products write whole 16-column tiles into rows as wide as these.
        let tiled = [self.hidden_size, self.intermediate_size]
            .iter()
            .all(|w| w.is_multiple_of(16));
        if !tiled {
            return Some(format!(
                "hidden_size {} and intermediate_size {} (the AMX engine needs both in multiples \
                 of 16; use --backend rten)",
                self.hidden_size, self.intermediate_size
            ));
        }
        // BERT's is 1e-12; past about 1e-3 the norm no longer normalises, and every story
        // comes out alike.
        if !(self.layer_norm_eps > 0.0 && self.layer_norm_eps <= 1e-3) {
            return Some(format!(
                "layer_norm_eps {} (a BERT model's is a small positive number, such as 1e-12)",
                self.layer_norm_eps
            ));
        }
        None
    }
}

struct Linear {
    weight: PackedB,
    bias: Vec<f32>,
}

struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

/// One encoder layer; `L` is [`RawLinear`] while loading, [`Linear`] once packed.
struct Layer<L = Linear> {
    /// Query, key and value projections side by side: one product instead of three.
    qkv: L,
    attention_out: L,
    attention_norm: Norm,
    up: L,
    down: L,
    output_norm: Norm,
}

/// A linear layer's weight as the file has it (`[in, out]`), not yet packed.
struct RawLinear {
    weight: Vec<f32>,
    bias: Vec<f32>,
    inputs: usize,
}

impl RawLinear {
    fn pack(self, split: Split) -> Linear {
        let outputs = self.bias.len();
        let mut weight = PackedB::new();
        // SAFETY: packing runs only inside `load`, after `unavailable()` or
        // `dots_unavailable()` found AVX-512.
        unsafe { weight.pack_rows(split, &self.weight, self.inputs, outputs, outputs) };
        Linear {
            weight,
            bias: self.bias,
        }
    }
}

impl Layer<RawLinear> {
    fn pack(self, split: Split) -> Layer {
        Layer {
            qkv: self.qkv.pack(split),
            attention_out: self.attention_out.pack(split),
            attention_norm: self.attention_norm,
            up: self.up.pack(split),
            down: self.down.pack(split),
            output_norm: self.output_norm,
        }
    }
}

/// Packs the layers on up to `threads` threads: packing is most of the load time.
fn pack_layers(raw: Vec<Layer<RawLinear>>, split: Split, threads: usize) -> Vec<Layer> {
    let per_thread = raw.len().div_ceil(threads.max(1)).max(1);
    let mut groups: Vec<Vec<Layer<RawLinear>>> = Vec::new();
    let mut raw = raw.into_iter().peekable();
    while raw.peek().is_some() {
        groups.push(raw.by_ref().take(per_thread).collect());
    }
    std::thread::scope(|scope| {
        let packing: Vec<_> = groups
            .into_iter()
            .map(|group| {
                scope.spawn(move || group.into_iter().map(|l| l.pack(split)).collect::<Vec<_>>())
            })
            .collect();
        packing
            .into_iter()
            .flat_map(|p| p.join().expect("a weight-packing thread panicked"))
            .collect()
    })
}

/// One lane's scratch buffers, kept between batches so large buffers are not re-allocated.
struct Scratch {
    x: Vec<f32>,
    qkv: Vec<f32>,
    context: Vec<f32>,
    product: Vec<f32>,
    a: PackedA,
    b: PackedB,
}

pub struct AmxEmbedder {
    word: Vec<f32>,
    position: Vec<f32>,
    /// Token type 0's embedding: failup feeds single segments, so every token has type 0.
    token_type: Vec<f32>,
    embedding_norm: Norm,
    layers: Vec<Layer>,
    hidden: usize,
    heads: usize,
    intermediate: usize,
    eps: f32,
    max_positions: usize,
    vocab: usize,
    pooling: Pooling,
    split: Split,
    unit: Unit,
    scratch: Lanes<Scratch>,
}

impl AmxEmbedder {
    /// Loads `model.onnx`'s weights for `precision`, fp32 or bf16. The caller,
    /// [`super::load`], says what to do instead on a CPU without AMX or for int8.
    pub fn load(dir: &ModelDir, threads: usize, precision: Precision) -> Result<AmxEmbedder> {
        // Checked here too, where the safety of everything below rests on it (cached: cheap).
        let unit = match (unavailable(), precision) {
            (None, _) => Unit::Tiles,
            (Some(_), Precision::Bf16) if dots_unavailable().is_none() => {
                if dots_by_fma() {
                    Unit::Fma
                } else {
                    Unit::Dots
                }
            }
            (Some(why), _) => {
                return Err(Error::Usage(format!(
                    "the AMX engine cannot run here: {why}"
                )))
            }
        };
        let split = match precision {
            Precision::Fp32 => Split::Three,
            Precision::Bf16 => Split::One,
            Precision::Int8 => unreachable!("embed::load refuses int8 on the AMX engine"),
        };
        let broken = |problem: String| Error::Model {
            dir: dir.dir.clone(),
            problem,
            fix: "re-create model.onnx with models/export_onnx.py, or restore the folder with \
                  git checkout -- models/"
                .into(),
        };
        let bad_config = |problem: String| Error::Model {
            dir: dir.dir.clone(),
            problem,
            fix: "copy config.json again from the model's sentence-transformers folder (the \
                  bundled one: git checkout -- models/)"
                .into(),
        };
        let config: Config = read_json(&dir.dir, "config.json").map_err(bad_config)?;
        if let Some(problem) = config.unsupported(dir.dim) {
            return Err(bad_config(format!("config.json: {problem}")));
        }
        let path = dir.onnx_path(Precision::Fp32);
        let bytes = std::fs::read(&path).map_err(|e| Error::io(path.display().to_string(), e))?;
        let tensors = bert_weights_from_onnx(&bytes, WeightLayout::InOut)
            .map_err(|e| broken(format!("model.onnx could not be loaded: {e}")))?;
        drop(bytes);
        let mut weights = Weights {
            tensors: tensors
                .into_iter()
                .map(|mut t| (std::mem::take(&mut t.name), t))
                .collect(),
            split,
        };
        let engine = weights
            .build(&config, dir.pooling, threads, unit)
            .map_err(broken)?;
        Ok(engine)
    }

    /// One batch: its stories' token rows end to end, through every layer; the last hidden
    /// states per story.
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    fn forward(&self, s: &mut Scratch, batch: &[&Tokenized]) -> Vec<Vec<f32>> {
        let h = self.hidden;
        let total: usize = batch.iter().map(|t| t.ids.len()).sum();
        s.x.clear();
        s.x.resize(total * h, 0.0);
        let mut row = 0;
        for story in batch {
            for (pos, &id) in story.ids.iter().enumerate() {
                let x = &mut s.x[row * h..(row + 1) * h];
                let word = &self.word[id as usize * h..(id as usize + 1) * h];
                let position = &self.position[pos * h..(pos + 1) * h];
                for (((x, w), p), t) in x.iter_mut().zip(word).zip(position).zip(&self.token_type) {
                    *x = w + p + t;
                }
                let n = &self.embedding_norm;
                math::norm(x, &n.gamma, &n.beta, self.eps);
                row += 1;
            }
        }
        for layer in &self.layers {
            self.layer(s, layer, batch, total);
        }
        let mut start = 0;
        batch
            .iter()
            .map(|story| {
                let len = story.ids.len();
                let rows = &s.x[start * h..(start + len) * h];
                start += len;
                rows.to_vec()
            })
            .collect()
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    fn layer(&self, s: &mut Scratch, layer: &Layer, batch: &[&Tokenized], total: usize) {
        let (h, eps) = (self.hidden, self.eps);
        // Query, key, value.
        let width = 3 * h;
        s.a.pack(self.split, &s.x, total, h, h);
        self.product(&s.a, &layer.qkv.weight, &mut s.product, width);
        // The product becomes the QKV buffer (rows past `total` are tile padding), and the old
        // QKV buffer is the next product's: a swap, not a copy.
        std::mem::swap(&mut s.qkv, &mut s.product);
        for row in s.qkv.chunks_exact_mut(width).take(total) {
            row.iter_mut()
                .zip(&layer.qkv.bias)
                .for_each(|(x, b)| *x += b);
        }
        // Attention, story by story and head by head.
        s.context.clear();
        s.context.resize(total * h, 0.0);
        let head = h / self.heads;
        let scale = 1.0 / (head as f32).sqrt();
        let mut start = 0;
        for story in batch {
            let len = story.ids.len();
            for hd in 0..self.heads {
                let q = start * width + hd * head;
                let (k, v) = (q + h, q + 2 * h);
                s.a.pack(self.split, &s.qkv[q..], len, head, width);
                s.b.pack_transposed(self.split, &s.qkv[k..], len, head, width);
                let ld = len.div_ceil(16) * 16;
                self.product(&s.a, &s.b, &mut s.product, ld);
                for r in s.product.chunks_exact_mut(ld).take(len) {
                    math::scaled_softmax(&mut r[..len], scale);
                }
                s.a.pack(self.split, &s.product, len, len, ld);
                s.b.pack_rows(self.split, &s.qkv[v..], len, head, width);
                let ld = head.div_ceil(16) * 16;
                self.product(&s.a, &s.b, &mut s.product, ld);
                for (r, out) in s
                    .product
                    .chunks_exact(ld)
                    .zip(s.context[start * h..].chunks_exact_mut(h))
                    .take(len)
                {
                    out[hd * head..(hd + 1) * head].copy_from_slice(&r[..head]);
                }
            }
            start += len;
        }
        // Attention output, residual, norm.
        s.a.pack(self.split, &s.context, total, h, h);
        self.product(&s.a, &layer.attention_out.weight, &mut s.product, h);
        let n = &layer.attention_norm;
        for (x, y) in s.x.chunks_exact_mut(h).zip(s.product.chunks_exact(h)) {
            math::residual_norm(x, y, &layer.attention_out.bias, &n.gamma, &n.beta, eps);
        }
        // Feed-forward.
        let inner = self.intermediate;
        s.a.pack(self.split, &s.x, total, h, h);
        self.product(&s.a, &layer.up.weight, &mut s.product, inner);
        for row in s.product.chunks_exact_mut(inner).take(total) {
            math::bias_gelu(row, &layer.up.bias);
        }
        s.a.pack(self.split, &s.product, total, inner, inner);
        self.product(&s.a, &layer.down.weight, &mut s.product, h);
        let n = &layer.output_norm;
        for (x, y) in s.x.chunks_exact_mut(h).zip(s.product.chunks_exact(h)) {
            math::residual_norm(x, y, &layer.down.bias, &n.gamma, &n.beta, eps);
        }
    }
}

impl AmxEmbedder {
    /// `c = a · b` into `c` with row stride `ldc`, growing `c` to the padded size.
    fn product(&self, a: &PackedA, b: &PackedB, c: &mut Vec<f32>, ldc: usize) {
        c.resize(a.padded_rows() * ldc, 0.0);
        // SAFETY: an engine exists only after `load` found what its unit needs: AMX and the
        // tile state granted (`unavailable()`), or AVX-512 BF16 and FMA (`dots_unavailable()`)
        // for the dot-product and FMA kernels; only the FMA unit widens its A.
        unsafe {
            match self.unit {
                Unit::Tiles => matmul(a, b, c, ldc),
                Unit::Dots => matmul_dots(a, b, c, ldc),
                Unit::Fma => matmul_fma(a, b, c, ldc),
            }
        }
    }
}

/// The ONNX file's tensors by Hugging Face name, taken out as the engine is built.
struct Weights {
    tensors: std::collections::HashMap<String, NamedTensor>,
    split: Split,
}

impl Weights {
    fn take(&mut self, name: &str, shape: &[usize]) -> std::result::Result<Vec<f32>, String> {
        let t = self
            .tensors
            .remove(name)
            .ok_or_else(|| format!("model.onnx has no tensor {name}"))?;
        if t.shape != shape {
            return Err(format!(
                "model.onnx: {name} has shape {:?}, expected {shape:?}",
                t.shape
            ));
        }
        Ok(t.data)
    }

    /// A `[rows, width]` table whose row count the file decides (vocabulary, token types).
    fn table(
        &mut self,
        name: &str,
        width: usize,
    ) -> std::result::Result<(usize, Vec<f32>), String> {
        let rows = match self.tensors.get(name).map(|t| t.shape.as_slice()) {
            Some(&[rows, w]) if w == width && rows > 0 => rows,
            Some(shape) => {
                return Err(format!(
                    "model.onnx: {name} has shape {shape:?}, expected [rows, {width}]"
                ))
            }
            None => return Err(format!("model.onnx has no tensor {name}")),
        };
        Ok((rows, self.take(name, &[rows, width])?))
    }

    fn norm(&mut self, prefix: &str, h: usize) -> std::result::Result<Norm, String> {
        Ok(Norm {
            gamma: self.take(&format!("{prefix}.weight"), &[h])?,
            beta: self.take(&format!("{prefix}.bias"), &[h])?,
        })
    }

    /// Linear layers `prefixes` (weights `[in, out]`) side by side along their outputs.
    fn linear(
        &mut self,
        prefixes: &[String],
        out: usize,
        inp: usize,
    ) -> std::result::Result<RawLinear, String> {
        let mut parts = Vec::with_capacity(prefixes.len());
        let mut bias = Vec::with_capacity(prefixes.len() * out);
        for p in prefixes {
            parts.push(self.take(&format!("{p}.weight"), &[inp, out])?);
            bias.extend(self.take(&format!("{p}.bias"), &[out])?);
        }
        let weight = if let [one] = &mut parts[..] {
            std::mem::take(one)
        } else {
            (0..inp)
                .flat_map(|row| {
                    parts
                        .iter()
                        .flat_map(move |w| &w[row * out..(row + 1) * out])
                })
                .copied()
                .collect()
        };
        Ok(RawLinear {
            weight,
            bias,
            inputs: inp,
        })
    }

    fn build(
        &mut self,
        c: &Config,
        pooling: Pooling,
        threads: usize,
        unit: Unit,
    ) -> std::result::Result<AmxEmbedder, String> {
        let (h, inner) = (c.hidden_size, c.intermediate_size);
        let (vocab, word) = self.table("embeddings.word_embeddings.weight", h)?;
        let position = self.take(
            "embeddings.position_embeddings.weight",
            &[c.max_position_embeddings, h],
        )?;
        let (_, mut token_type) = self.table("embeddings.token_type_embeddings.weight", h)?;
        token_type.truncate(h);
        let embedding_norm = self.norm("embeddings.LayerNorm", h)?;
        let raw = (0..c.num_hidden_layers)
            .map(|i| {
                let p = format!("encoder.layer.{i}");
                Ok(Layer {
                    qkv: self.linear(
                        &["query", "key", "value"].map(|n| format!("{p}.attention.self.{n}")),
                        h,
                        h,
                    )?,
                    attention_out: self.linear(&[format!("{p}.attention.output.dense")], h, h)?,
                    attention_norm: self.norm(&format!("{p}.attention.output.LayerNorm"), h)?,
                    up: self.linear(&[format!("{p}.intermediate.dense")], inner, h)?,
                    down: self.linear(&[format!("{p}.output.dense")], h, inner)?,
                    output_norm: self.norm(&format!("{p}.output.LayerNorm"), h)?,
                })
            })
            .collect::<std::result::Result<Vec<_>, String>>()?;
        // Layers past the count would be left out without a word, and every embedding changed.
        let count = c.num_hidden_layers;
        if self
            .tensors
            .keys()
            .any(|n| n.starts_with(&format!("encoder.layer.{count}.")))
        {
            return Err(format!(
                "model.onnx has more encoder layers than config.json's num_hidden_layers {count}; \
                 config.json is not this model's"
            ));
        }
        let layers = pack_layers(raw, self.split, threads);
        Ok(AmxEmbedder {
            word,
            position,
            token_type,
            embedding_norm,
            layers,
            hidden: h,
            heads: c.num_attention_heads,
            intermediate: inner,
            eps: c.layer_norm_eps,
            max_positions: c.max_position_embeddings,
            vocab,
            pooling,
            split: self.split,
            unit,
            scratch: Lanes::new(
                (0..threads.max(1))
                    .map(|_| Scratch {
                        x: Vec::new(),
                        qkv: Vec::new(),
                        context: Vec::new(),
                        product: Vec::new(),
                        a: PackedA::new(unit == Unit::Fma),
                        b: PackedB::new(),
                    })
                    .collect(),
            ),
        })
    }
}

impl Embedder for AmxEmbedder {
    fn dim(&self) -> usize {
        self.hidden
    }

    fn lanes(&self) -> usize {
        self.scratch.count()
    }

    /// 2 measured fastest on the benchmark corpus (fp32: 1 and 4 within 3%, bf16: 4 and 8
    /// slower by 4% and 14%): the stories' rows are laid end to end, so a batch pads nothing,
    /// but bigger ones spill the L2 cache the products read A from.
    fn preferred_batch_size(&self) -> usize {
        2
    }

    fn kernel(&self) -> &'static str {
        // Tiles and dot products round differently in bf16, so they keep separate prototype
        // caches. The FMA kernel gave the dot products' bits on the Intel CPU measured; its own
        // name keeps a model where that might not hold from ever reading their prototypes.
        match self.unit {
            Unit::Tiles => "amx",
            Unit::Dots => "amx-dots",
            Unit::Fma => "amx-fma",
        }
    }

    fn pooling(&self) -> Pooling {
        self.pooling
    }

    fn hidden_states(&self, batch: &[&Tokenized]) -> Result<Vec<Vec<f32>>> {
        for story in batch {
            if story.ids.len() > self.max_positions {
                return Err(Error::Inference(format!(
                    "a window of {} tokens is longer than the model's {} positions",
                    story.ids.len(),
                    self.max_positions
                )));
            }
            if let Some(&id) = story.ids.iter().find(|&&id| id as usize >= self.vocab) {
                return Err(Error::Inference(format!(
                    "token id {id} is outside the vocabulary"
                )));
            }
        }
        let mut scratch = self.scratch.take()?;
        // SAFETY: an engine exists only after `load` found AVX-512, and AMX with the tile state
        // granted or AVX-512 BF16.
        Ok(unsafe { self.forward(&mut scratch, batch) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundled_config() -> Config {
        let dir = ModelDir::resolve(None).expect("bundled model");
        read_json(&dir.dir, "config.json").expect("config.json parses")
    }

    #[test]
    fn the_bundled_bert_is_accepted_and_other_architectures_are_refused() {
        let config = bundled_config();
        assert_eq!(config.unsupported(384), None);
        let mpnet = Config {
            model_type: "mpnet".into(),
            ..bundled_config()
        };
        let why = mpnet.unsupported(384).expect("refused");
        assert!(
            why.contains("'mpnet'") && why.contains("--backend rten"),
            "{why}"
        );
        let wide = config.unsupported(768).expect("refused");
        assert!(wide.contains("pooling width 768"), "{wide}");
        // Each size is blamed for its own fault: 384 is a multiple of 16, but not of 7 heads.
        let heads = Config {
            num_attention_heads: 7,
            ..bundled_config()
        };
        let why = heads.unsupported(384).expect("refused");
        assert!(
            why.contains("num_attention_heads 7 does not divide hidden_size 384"),
            "{why}"
        );
        let untiled = Config {
            intermediate_size: 1540,
            ..bundled_config()
        };
        let why = untiled.unsupported(384).expect("refused");
        assert!(why.contains("multiples of 16"), "{why}");
        // An edited epsilon made every story come out alike, with exit 0.
        for eps in [1e6, 0.0, -1e-12, f32::NAN] {
            let edited = Config {
                layer_norm_eps: eps,
                ..bundled_config()
            };
            let why = edited.unsupported(384).expect("refused");
            assert!(why.contains("layer_norm_eps"), "{eps}: {why}");
        }
    }
}
