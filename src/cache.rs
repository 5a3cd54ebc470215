//! A small on-disk cache of prototype embeddings.
//!
//! Embedding the built-in taxonomy's ~300 prototypes costs seconds, which would dominate
//! `failup advise` and every short run. The result depends only on the model, the failup
//! version and the prototype texts, so it is stored once per combination under
//! `$FAILUP_CACHE_DIR` (default `$XDG_CACHE_HOME/failup` or `~/.cache/failup`; `off` disables
//! it). The cache is only ever an optimisation: a file that cannot be read, or is not whole,
//! is embedded again, and one that cannot be written is warned of; the run goes on.

use std::io::Write;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::taxonomy::Taxonomy;

pub struct PrototypeCache {
    file: PathBuf,
    dim: usize,
}

/// The cache folder, or None when caching is off or there is no home folder to put it in.
pub fn cache_dir() -> Option<PathBuf> {
    let value = std::env::var_os("FAILUP_CACHE_DIR");
    // Spaces at the ends are a slip of the shell (`=" off"`), not part of a folder's name: one
    // was made, named " off", in the folder failup ran in.
    match value.as_ref().map(|v| v.to_str().map(str::trim).ok_or(v)) {
        Some(Ok(v)) if v.eq_ignore_ascii_case("off") => None,
        Some(Ok(v)) if !v.is_empty() => Some(PathBuf::from(v)),
        // Not UTF-8: a path as given.
        Some(Err(v)) => Some(PathBuf::from(v)),
        // The XDG rules ignore a relative path, which would put a cache in every folder.
        _ => std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .filter(|v| v.is_absolute())
            .map(|v| v.join("failup"))
            .or_else(|| {
                // A home that is not there (`/nonexistent`, as system accounts have) is not
                // made: such an account writes nothing of its own.
                std::env::var_os("HOME")
                    .map(PathBuf::from)
                    .filter(|h| h.is_dir())
                    .map(|h| h.join(".cache/failup"))
            }),
    }
}

impl PrototypeCache {
    /// The cache file for `taxonomy`'s prototypes embedded by the model that `model_identity`
    /// names ([`crate::embed::ModelDir::identity`]), `dim` wide; None when caching is off.
    pub fn new(taxonomy: &Taxonomy, model_identity: &str, dim: usize) -> Option<PrototypeCache> {
        let dir = cache_dir()?;
        let mut h = Sha256::new();
        // v3: the file ends in a checksum of its name and numbers.
        h.update(concat!(
            "failup-prototypes v3 ",
            env!("CARGO_PKG_VERSION"),
            "\n"
        ));
        h.update(format!("{model_identity}\n"));
        for s in &taxonomy.scenarios {
            h.update(format!("{}\n", s.prototypes.len()));
            for p in &s.prototypes {
                h.update(format!("{}\n{p}\n", p.len()));
            }
        }
        let key = hex::encode(h.finalize());
        Some(PrototypeCache {
            file: dir.join(format!("prototypes-{}.f32", &key[..32])),
            dim,
        })
    }

    /// Keeps each kernel's embeddings apart (see [`crate::embed::Embedder::kernel`]): `tag`
    /// (e.g. `rten-avx2`) is added to the file name.
    pub fn tagged(mut self, tag: &str) -> PrototypeCache {
        if let Some(name) = self
            .file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
        {
            self.file.set_file_name(format!("{name}-{tag}.f32"));
        }
        self
    }

    /// The cached embeddings, if present, of the expected shape and whole: the file ends in
    /// the SHA-256 of its name and the numbers before it, so a damaged file (zeros after a
    /// crash, flipped bits) is embedded again rather than trusted, and so is another key's
    /// file copied under this one's name (another taxonomy's, engine's or precision's).
    pub fn load(&self, taxonomy: &Taxonomy) -> Option<Vec<Vec<Vec<f32>>>> {
        let bytes = std::fs::read(&self.file).ok()?;
        let total: usize = taxonomy.scenarios.iter().map(|s| s.prototypes.len()).sum();
        let (bytes, sum) = bytes.split_at_checked(total * self.dim * 4)?;
        if sum != self.checksum(bytes).as_slice() {
            return None;
        }
        let floats: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let mut vectors = floats.chunks_exact(self.dim).map(<[f32]>::to_vec);
        Some(
            taxonomy
                .scenarios
                .iter()
                .map(|s| (&mut vectors).take(s.prototypes.len()).collect())
                .collect(),
        )
    }

    /// Stores embeddings and their checksum; written to a temporary file, flushed to disk and
    /// renamed, so readers never see half.
    pub fn store(&self, embeddings: &[Vec<Vec<f32>>]) {
        let Some(dir) = self.file.parent() else {
            return;
        };
        let mut bytes: Vec<u8> = embeddings
            .iter()
            .flatten()
            .flatten()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let sum = self.checksum(&bytes);
        bytes.extend_from_slice(&sum);
        let stored = std::fs::create_dir_all(dir).and_then(|_| {
            let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
            tmp.write_all(&bytes)?;
            tmp.as_file().sync_all()?;
            tmp.persist(&self.file).map_err(|e| e.error)?;
            Ok(())
        });
        // The run goes on without the cache; only the next run's few seconds are lost.
        if let Err(e) = stored {
            // create_dir_all says only "File exists" of a file, or a dangling link, at the name.
            let why = match std::fs::symlink_metadata(dir) {
                Ok(m) if !dir.is_dir() => match m.is_symlink() {
                    true => "a link to no folder".to_string(),
                    false => "not a folder".to_string(),
                },
                _ => e.to_string(),
            };
            eprintln!(
                "warning: cannot cache the prototype embeddings in {} ({why}), so each run \
                 embeds them again; set FAILUP_CACHE_DIR to a writable folder, or to off",
                crate::input::escaped(&dir.display().to_string())
            );
        }
    }

    /// The file's name is summed with its numbers: its name is its key.
    fn checksum(&self, numbers: &[u8]) -> [u8; 32] {
        let name = self.file.file_name().unwrap_or_default();
        let mut h = Sha256::new();
        h.update(name.as_encoded_bytes());
        h.update(numbers);
        h.finalize().into()
    }
}
