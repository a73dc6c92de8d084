//! A Secret's data is part of what a release is made of. Its values never leave the
//! executor; what is recorded (in the helm revision's description) and compared is
//! a keyed digest per Secret: HMAC-SHA256 with a random key of this repository's
//! (`target/slipway/secret-digest.key`, 32 bytes, 0600), so the digest of a short
//! token cannot be brute-forced by whoever reads `helm status` or a diagnosis bundle.
//!
//! The trade-off: the key is per repository checkout. Another checkout (a CI job on
//! a fresh clone) has another key, so its first deploy to the same cluster sees
//! every Secret as changed and restarts the release's workloads once; and losing the
//! key (`cargo clean`) does the same, said so in the note.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::exec::Executor;
use crate::model::{Error, SecretInput, Stage};

pub use crate::plan::steps::upgrade::KEY_PATH;

/// The repository's digest key, and whether it was made just now.
pub struct Key {
    bytes: Vec<u8>,
    pub created: bool,
}

/// Read the key, or make it: never through a symlink, never one others may read.
pub fn key(root: &Path) -> Result<Key, String> {
    let path = root.join(KEY_PATH);
    let refuse = |why: String| format!("{}: {why}", path.display());
    let open = |p: &PathBuf| {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(p)
    };
    match open(&path) {
        Ok(mut f) => {
            let meta = f.metadata().map_err(|e| refuse(e.to_string()))?;
            // SAFETY: geteuid(2) cannot fail.
            let me = rustix::process::geteuid().as_raw();
            if !meta.is_file() || meta.uid() != me || meta.permissions().mode() & 0o077 != 0 {
                return Err(refuse(format!(
                    "not a private file of this user (mode {:o}, owner {}): delete it and rerun",
                    meta.permissions().mode() & 0o777,
                    meta.uid()
                )));
            }
            let mut bytes = vec![];
            f.read_to_end(&mut bytes)
                .map_err(|e| refuse(e.to_string()))?;
            if bytes.len() < 32 {
                return Err(refuse("shorter than 32 bytes: delete it and rerun".into()));
            }
            Ok(Key {
                bytes,
                created: false,
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| refuse(e.to_string()))?;
            }
            let mut bytes = vec![0u8; 32];
            getrandom::getrandom(&mut bytes).map_err(|e| refuse(e.to_string()))?;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)
                .map_err(|e| refuse(e.to_string()))?;
            f.write_all(&bytes).map_err(|e| refuse(e.to_string()))?;
            Ok(Key {
                bytes,
                created: true,
            })
        }
        Err(e) => Err(refuse(e.to_string())),
    }
}

/// `NAME=HEX,…`, sorted by name: each Secret's keys and values, keyed-hashed.
pub fn digests(
    ex: &Executor,
    stage: Stage,
    key: &Key,
    secrets: &[SecretInput],
) -> Result<String, Error> {
    let mut out = BTreeMap::new();
    for s in secrets {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&key.bytes).expect("HMAC takes a key of any length");
        for k in &s.keys {
            let value = ex.secret_value(&k.source).map_err(|e| {
                Error::new(stage, format!("secret {}: {e}", s.name)).hint(
                    "set the variable, or run `cargo xtask preflight` to list every missing one",
                )
            })?;
            for part in [k.key.as_bytes(), value.as_bytes()] {
                mac.update(&(part.len() as u64).to_le_bytes());
                mac.update(part);
            }
        }
        let hex: String = mac.finalize().into_bytes()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        out.insert(s.name.clone(), hex);
    }
    Ok(out
        .iter()
        .map(|(n, h)| format!("{n}={h}"))
        .collect::<Vec<_>>()
        .join(","))
}

/// A Secret's digest annotation from its values' keyed digest (`NAME=HEX`): that
/// digest, and a digest of its type and labels.
pub fn annotation(values: &str, s: &SecretInput) -> String {
    use sha2::Digest;
    let values = values.split_once('=').map_or(values, |(_, h)| h);
    let meta = Sha256::digest(format!("{}\n{:?}", s.secret_type, s.labels));
    let meta: String = meta[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("{values}.{meta}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_private_and_kept() {
        let d = tempfile::tempdir().unwrap();
        let k = key(d.path()).unwrap();
        assert!(k.created);
        let path = d.path().join(KEY_PATH);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = key(d.path()).unwrap();
        assert!(!again.created);
        assert_eq!(again.bytes, k.bytes);
        // Readable by others: refused, not used.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(key(d.path()).is_err());
        // A symlink in its place is not followed.
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(d.path().join("elsewhere"), &path).unwrap();
        std::fs::write(d.path().join("elsewhere"), [7u8; 40]).unwrap();
        assert!(key(d.path()).is_err());
    }
}
