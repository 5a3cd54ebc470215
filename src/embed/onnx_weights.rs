//! The rust-bert backend's weights, converted from the bundled `model.onnx`.
//!
//! rust-bert loads weights into a tch `VarStore` under Hugging Face's parameter names
//! (`encoder.layer.0.attention.self.query.weight`, …), from a `.ot` or `.safetensors` file. The
//! repository ships only `model.onnx`, whose initializers hold the same numbers: embeddings,
//! biases and LayerNorm parameters keep their Hugging Face names, and each linear layer's weight
//! is stored transposed (`[in, out]`, for `MatMul`) under a generated name (`onnx::MatMul_845`).
//! This module reads the initializers with a minimal protobuf reader (no Python, no extra
//! crates), names each `MatMul` weight after the bias its `Add` node adds (`….query.bias` →
//! `….query.weight`), transposes it back to `[out, in]`, and writes a safetensors file.
//!
//! The converted file (90 MB) is never committed: [`prepared_weights`] writes it once into the
//! cache folder (`$FAILUP_CACHE_DIR/rust-bert/`), keyed by the ONNX file's path, size and time,
//! and reuses it afterwards; with the cache off it converts into a temporary file per run.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use sha2::{Digest, Sha256};

use super::ModelDir;
use crate::cache::cache_dir;
use crate::error::{Error, Result};

/// Bumped whenever the conversion changes, so older converted files are not reused.
const CONVERTER_VERSION: u32 = 1;

/// ONNX `TensorProto.DataType.FLOAT`.
const ONNX_FLOAT: u64 = 1;

/// One tensor in Hugging Face layout, ready for safetensors.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Where the converted weights are, and whether this call wrote them.
pub struct PreparedWeights {
    pub path: PathBuf,
    /// True when the file was converted just now (false: reused from the cache).
    pub converted: bool,
    /// Holds a per-run temporary file alive (cache off); None for a cached file.
    temp: Option<tempfile::TempPath>,
}

impl PreparedWeights {
    /// True when the file is a per-run temporary one (no cache folder to keep it in).
    pub fn is_temporary(&self) -> bool {
        self.temp.is_some()
    }
}

/// The converted weights for `model`: from the cache when present, else converted now (into
/// the cache, or a temporary file when there is no cache folder). `force` converts again.
pub fn prepared_weights(model: &ModelDir, force: bool) -> Result<PreparedWeights> {
    let onnx_path = model.dir.join("model.onnx");
    let io = |e: std::io::Error| Error::io(onnx_path.display().to_string(), e);
    let meta = std::fs::metadata(&onnx_path).map_err(io)?;
    let Some(dir) = cache_dir().map(|d| d.join("rust-bert")) else {
        return convert_to_temp(model);
    };
    let path = dir.join(format!(
        "{}-{}.safetensors",
        model.name(),
        cache_key(model, &meta)
    ));
    if path.is_file() && !force {
        return Ok(PreparedWeights {
            path,
            converted: false,
            temp: None,
        });
    }
    // Written beside its final name and renamed, so a reader never sees half a file. A cache
    // folder that cannot be written is no reason to fail: convert for this run only.
    let Ok(temp) = std::fs::create_dir_all(&dir).and_then(|_| {
        tempfile::Builder::new()
            .prefix(".converting-")
            .tempfile_in(&dir)
    }) else {
        return convert_to_temp(model);
    };
    let (file, temp_path) = temp.into_parts();
    convert(model, file, &temp_path)?;
    temp_path
        .persist(&path)
        .map_err(|e| Error::io(path.display().to_string(), e.error))?;
    Ok(PreparedWeights {
        path,
        converted: true,
        temp: None,
    })
}

/// Converts into a temporary file that lives as long as the returned value.
fn convert_to_temp(model: &ModelDir) -> Result<PreparedWeights> {
    let temp = tempfile::Builder::new()
        .prefix("failup-rust-bert-")
        .suffix(".safetensors")
        .tempfile()
        .map_err(|e| Error::io(std::env::temp_dir().display().to_string(), e))?;
    let (file, path) = temp.into_parts();
    convert(model, file, &path)?;
    Ok(PreparedWeights {
        path: path.to_path_buf(),
        converted: true,
        temp: Some(path),
    })
}

/// Cache key: the ONNX file's canonical path, size and modification time, and the converter.
fn cache_key(model: &ModelDir, meta: &std::fs::Metadata) -> String {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let onnx = model.dir.join("model.onnx");
    let where_ = onnx.canonicalize().unwrap_or(onnx);
    let mut h = Sha256::new();
    h.update(format!(
        "failup-rust-bert-weights {CONVERTER_VERSION}\n{}\n{}\n{mtime}\n",
        where_.display(),
        meta.len()
    ));
    hex::encode(&h.finalize()[..8])
}

/// Reads `model.onnx`, converts it and writes safetensors into `file`.
fn convert(model: &ModelDir, file: std::fs::File, shown_as: &Path) -> Result<()> {
    let onnx_path = model.dir.join("model.onnx");
    let bytes =
        std::fs::read(&onnx_path).map_err(|e| Error::io(onnx_path.display().to_string(), e))?;
    let tensors =
        bert_weights_from_onnx(&bytes, WeightLayout::OutIn).map_err(|problem| Error::Model {
            dir: model.dir.clone(),
            problem: format!("model.onnx cannot be converted for the rust-bert backend: {problem}"),
            fix: "re-create model.onnx with models/export_onnx.py, or restore it with \
              git checkout -- models/"
                .into(),
        })?;
    let sha = hex::encode(Sha256::digest(&bytes));
    drop(bytes);
    let metadata = BTreeMap::from([
        ("format".to_string(), "pt".to_string()),
        (
            "converted_by".to_string(),
            format!(
                "failup {} (converter {CONVERTER_VERSION})",
                env!("CARGO_PKG_VERSION")
            ),
        ),
        ("source".to_string(), onnx_path.display().to_string()),
        ("source_sha256".to_string(), sha),
    ]);
    let mut out = std::io::BufWriter::new(file);
    write_safetensors(&tensors, &metadata, &mut out)
        .and_then(|_| out.flush())
        .map_err(|e| Error::io(shown_as.display().to_string(), e))
}

/// How linear layers' weights come out of [`bert_weights_from_onnx`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightLayout {
    /// `[out, in]`, as Hugging Face and rust-bert keep them (transposed from the file).
    OutIn,
    /// `[in, out]`, as the ONNX file keeps them for `MatMul` (no transpose).
    InOut,
}

/// The BERT encoder's parameters under Hugging Face names, from an ONNX export of
/// `BertModel` (as `models/export_onnx.py` makes it), linear weights in `layout`.
pub fn bert_weights_from_onnx(
    bytes: &[u8],
    layout: WeightLayout,
) -> Result<Vec<NamedTensor>, String> {
    let graph = Message::new(bytes)
        .bytes_fields(7)?
        .pop()
        .ok_or("no graph in the ONNX file")?;
    let graph = Message::new(graph);
    let mut initializers: HashMap<String, NamedTensor> = HashMap::new();
    for t in graph.bytes_fields(5)? {
        let t = read_tensor(t)?;
        initializers.insert(t.name.clone(), t);
    }
    let nodes = graph
        .bytes_fields(1)?
        .into_iter()
        .map(read_node)
        .collect::<Result<Vec<_>, _>>()?;

    // Which nodes read each value.
    let mut readers: HashMap<&str, Vec<&Node>> = HashMap::new();
    for n in &nodes {
        for i in &n.inputs {
            readers.entry(i.as_str()).or_default().push(n);
        }
    }
    let mut out: BTreeMap<String, NamedTensor> = BTreeMap::new();
    for n in nodes.iter().filter(|n| n.op_type == "MatMul") {
        let [_, weight] = n.inputs.as_slice() else {
            continue;
        };
        // Taken out of the map: each weight feeds one MatMul, and its data moves as it is.
        let Some(w) = initializers.remove(weight) else {
            continue;
        };
        let bias = n.outputs.first().and_then(|o| {
            readers.get(o.as_str())?.iter().find_map(|add| {
                (add.op_type == "Add")
                    .then(|| add.inputs.iter().find(|i| i.ends_with(".bias")))
                    .flatten()
            })
        });
        let Some(bias) = bias else {
            return Err(format!(
                "the MatMul weight '{weight}' is not followed by an Add of a '*.bias' \
                 initializer, so its layer cannot be named"
            ));
        };
        let [rows, cols] = w.shape[..] else {
            return Err(format!(
                "MatMul weight '{weight}' is not a matrix: {:?}",
                w.shape
            ));
        };
        let name = format!("{}weight", bias.trim_end_matches("bias"));
        let (shape, data) = match layout {
            WeightLayout::InOut => (vec![rows, cols], w.data),
            WeightLayout::OutIn => (vec![cols, rows], transpose(&w.data, rows, cols)),
        };
        out.insert(name.clone(), NamedTensor { name, shape, data });
    }
    for (name, t) in initializers {
        if name.starts_with("onnx::") {
            continue;
        }
        if out.contains_key(&name) {
            return Err(format!("the parameter '{name}' appears twice"));
        }
        out.insert(name, t);
    }
    if !out.contains_key("embeddings.word_embeddings.weight") {
        return Err(
            "no initializer 'embeddings.word_embeddings.weight': this is not an \
                    export of a Hugging Face BertModel"
                .into(),
        );
    }
    Ok(out.into_values().collect())
}

/// `[rows, cols]` → `[cols, rows]`, in 32×32 blocks so reads and writes both stay in cache.
fn transpose(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    const BLOCK: usize = 32;
    let mut out = vec![0f32; data.len()];
    for r0 in (0..rows).step_by(BLOCK) {
        for c0 in (0..cols).step_by(BLOCK) {
            for r in r0..(r0 + BLOCK).min(rows) {
                for c in c0..(c0 + BLOCK).min(cols) {
                    out[c * rows + r] = data[r * cols + c];
                }
            }
        }
    }
    out
}

/// Little-endian f32 values from raw tensor bytes.
fn le_floats(bytes: &[u8]) -> Vec<f32> {
    let mut out = vec![0f32; bytes.len() / 4];
    for (x, b) in out.iter_mut().zip(bytes.as_chunks::<4>().0) {
        *x = f32::from_le_bytes(*b);
    }
    out
}

/// Writes tensors as a safetensors file: an 8-byte header length, a JSON header (padded to a
/// multiple of 8 bytes), then the little-endian data in header order.
pub fn write_safetensors(
    tensors: &[NamedTensor],
    metadata: &BTreeMap<String, String>,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::json!(metadata));
    let mut offset = 0usize;
    for t in tensors {
        let end = offset + 4 * t.data.len();
        header.insert(
            t.name.clone(),
            serde_json::json!({"dtype": "F32", "shape": t.shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let mut json = serde_json::to_vec(&header)?;
    while json.len() % 8 != 0 {
        json.push(b' ');
    }
    out.write_all(&(json.len() as u64).to_le_bytes())?;
    out.write_all(&json)?;
    for t in tensors {
        let bytes: Vec<u8> = t.data.iter().flat_map(|x| x.to_le_bytes()).collect();
        out.write_all(&bytes)?;
    }
    Ok(())
}

struct Node {
    op_type: String,
    inputs: Vec<String>,
    outputs: Vec<String>,
}

/// `NodeProto`: input = 1, output = 2, op_type = 4.
fn read_node(bytes: &[u8]) -> Result<Node, String> {
    let m = Message::new(bytes);
    let strings = |field| -> Result<Vec<String>, String> {
        m.bytes_fields(field)?
            .into_iter()
            .map(|b| String::from_utf8(b.to_vec()).map_err(|_| "a node name is not UTF-8".into()))
            .collect()
    };
    Ok(Node {
        op_type: strings(4)?.pop().unwrap_or_default(),
        inputs: strings(1)?,
        outputs: strings(2)?,
    })
}

/// `TensorProto`: dims = 1, data_type = 2, float_data = 4, name = 8, raw_data = 9,
/// data_location = 14.
fn read_tensor(bytes: &[u8]) -> Result<NamedTensor, String> {
    let mut name = String::new();
    let mut shape = Vec::new();
    let mut data_type = 0;
    let mut raw: Option<&[u8]> = None;
    let mut floats = Vec::new();
    let mut external = false;
    let mut m = Message::new(bytes);
    while let Some((field, value)) = m.next_field()? {
        match (field, value) {
            (1, Value::Varint(d)) => shape.push(d as usize),
            (1, Value::Bytes(packed)) => {
                let mut p = Message::new(packed);
                while !p.at_end() {
                    shape.push(p.varint()? as usize);
                }
            }
            (2, Value::Varint(t)) => data_type = t,
            (4, Value::Fixed32(x)) => floats.push(f32::from_le_bytes(x)),
            (4, Value::Bytes(packed)) => floats.extend(le_floats(packed)),
            (8, Value::Bytes(b)) => {
                name = String::from_utf8(b.to_vec()).map_err(|_| "a tensor name is not UTF-8")?
            }
            (9, Value::Bytes(b)) => raw = Some(b),
            (14, Value::Varint(1)) => external = true,
            _ => {}
        }
    }
    if external {
        return Err(format!(
            "initializer '{name}' keeps its data in an external file; export the model as \
             one file"
        ));
    }
    if data_type != ONNX_FLOAT {
        // Integer constants and the like are not parameters; the prefix keeps them out.
        return Ok(NamedTensor {
            name: format!("onnx::non-float::{name}"),
            shape,
            data: Vec::new(),
        });
    }
    let data = match raw {
        Some(b) => le_floats(b),
        None => floats,
    };
    let expected: usize = shape.iter().product();
    if data.len() != expected {
        return Err(format!(
            "initializer '{name}' has {} values for shape {shape:?}",
            data.len()
        ));
    }
    Ok(NamedTensor { name, shape, data })
}

/// One protobuf field's value (wire types 0, 1, 2 and 5).
enum Value<'a> {
    Varint(u64),
    Fixed64,
    Bytes(&'a [u8]),
    Fixed32([u8; 4]),
}

/// A minimal protobuf reader over one message's bytes.
struct Message<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Message<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Message { buf, pos: 0 }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or("truncated protobuf varint")?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("malformed protobuf varint".into())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or("truncated protobuf field")?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn next_field(&mut self) -> Result<Option<(u32, Value<'a>)>, String> {
        if self.at_end() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = (key >> 3) as u32;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed64
            }
            2 => {
                let len = self.varint()? as usize;
                Value::Bytes(self.take(len)?)
            }
            5 => {
                let b = self.take(4)?;
                Value::Fixed32([b[0], b[1], b[2], b[3]])
            }
            w => return Err(format!("unsupported protobuf wire type {w}")),
        };
        Ok(Some((field, value)))
    }

    /// Every length-delimited value of `field`, in order.
    fn bytes_fields(&self, field: u32) -> Result<Vec<&'a [u8]>, String> {
        let mut m = Message::new(self.buf);
        let mut out = Vec::new();
        while let Some((f, v)) = m.next_field()? {
            if let (true, Value::Bytes(b)) = (f == field, v) {
                out.push(b);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundled_onnx() -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/all-MiniLM-L6-v2/model.onnx");
        std::fs::read(path).expect("bundled model.onnx")
    }

    #[test]
    fn in_out_layout_is_the_transpose_of_out_in() {
        let bytes = bundled_onnx();
        let weight = |layout| {
            bert_weights_from_onnx(&bytes, layout)
                .unwrap()
                .into_iter()
                .find(|t| t.name == "encoder.layer.0.intermediate.dense.weight")
                .unwrap()
        };
        let (out_in, in_out) = (weight(WeightLayout::OutIn), weight(WeightLayout::InOut));
        assert_eq!(
            (out_in.shape.clone(), in_out.shape.clone()),
            (vec![1536, 384], vec![384, 1536])
        );
        for (o, i) in [(0, 0), (5, 17), (1535, 383), (700, 33)] {
            assert_eq!(out_in.data[o * 384 + i], in_out.data[i * 1536 + o]);
        }
    }

    #[test]
    fn transpose_handles_partial_blocks() {
        let data: Vec<f32> = (0..35 * 70).map(|i| i as f32).collect();
        let t = transpose(&data, 35, 70);
        for r in 0..35 {
            for c in 0..70 {
                assert_eq!(t[c * 35 + r], data[r * 70 + c]);
            }
        }
    }

    #[test]
    fn every_bert_parameter_is_recovered_under_its_hugging_face_name() {
        let tensors = bert_weights_from_onnx(&bundled_onnx(), WeightLayout::OutIn).unwrap();
        let by_name: HashMap<&str, &NamedTensor> =
            tensors.iter().map(|t| (t.name.as_str(), t)).collect();
        let shape = |n: &str| by_name.get(n).map(|t| t.shape.clone());
        assert_eq!(
            shape("embeddings.word_embeddings.weight"),
            Some(vec![30522, 384])
        );
        assert_eq!(
            shape("embeddings.position_embeddings.weight"),
            Some(vec![512, 384])
        );
        for layer in 0..6 {
            let p = format!("encoder.layer.{layer}.");
            for (name, dims) in [
                ("attention.self.query", vec![384, 384]),
                ("attention.self.key", vec![384, 384]),
                ("attention.self.value", vec![384, 384]),
                ("attention.output.dense", vec![384, 384]),
                ("intermediate.dense", vec![1536, 384]),
                ("output.dense", vec![384, 1536]),
            ] {
                assert_eq!(shape(&format!("{p}{name}.weight")), Some(dims), "{p}{name}");
                assert!(by_name.contains_key(format!("{p}{name}.bias").as_str()));
            }
            for ln in ["attention.output.LayerNorm", "output.LayerNorm"] {
                assert_eq!(shape(&format!("{p}{ln}.weight")), Some(vec![384]));
            }
        }
        // 5 embedding tensors + 16 per layer; nothing generated is left over.
        assert_eq!(tensors.len(), 5 + 6 * 16);
        assert!(tensors.iter().all(|t| !t.name.starts_with("onnx::")));
    }

    #[test]
    fn safetensors_layout_is_what_readers_expect() {
        let tensors = vec![
            NamedTensor {
                name: "b".into(),
                shape: vec![2],
                data: vec![1.0, 2.0],
            },
            NamedTensor {
                name: "a".into(),
                shape: vec![1, 1],
                data: vec![3.0],
            },
        ];
        let mut out = Vec::new();
        write_safetensors(&tensors, &BTreeMap::new(), &mut out).unwrap();
        let n = u64::from_le_bytes(out[..8].try_into().unwrap()) as usize;
        assert_eq!(n % 8, 0);
        let header: serde_json::Value = serde_json::from_slice(&out[8..8 + n]).unwrap();
        assert_eq!(header["b"]["data_offsets"], serde_json::json!([0, 8]));
        assert_eq!(header["a"]["data_offsets"], serde_json::json!([8, 12]));
        assert_eq!(header["a"]["shape"], serde_json::json!([1, 1]));
        assert_eq!(out.len(), 8 + n + 12);
        assert_eq!(&out[8 + n + 8..], &3.0f32.to_le_bytes());
    }
}
