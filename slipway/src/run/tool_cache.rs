//! Tool versions, remembered per binary: preflight asks each tool for its version
//! once, and again only when the binary changes (its path, size, modification time or
//! inode). Planning reads the remembered helm version, without spawning anything, to
//! choose helm's flags.
//!
//! The cache is `$XDG_CACHE_HOME/slipway/tool-versions.json` (or `~/.cache/…`); a
//! missing or unreadable cache only means asking the tools again.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    size: u64,
    mtime_ns: i128,
    ino: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Entry {
    stamp: Stamp,
    version: String,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        size: m.len(),
        mtime_ns: m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
        ino: m.ino(),
    })
}

/// The cache file.
pub struct Cache(pub PathBuf);

impl Cache {
    /// `$XDG_CACHE_HOME/slipway/tool-versions.json`, else under `~/.cache`.
    pub fn user() -> Option<Cache> {
        Some(Cache(
            crate::tools::provision::cache_root()?.join("tool-versions.json"),
        ))
    }

    fn read(&self) -> BTreeMap<String, Entry> {
        std::fs::read(&self.0)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// The remembered version of the binary at `path`, if it has not changed since.
    pub fn lookup(&self, path: &Path) -> Option<semver::Version> {
        let e = self.read().remove(path.to_str()?)?;
        (stamp(path)? == e.stamp)
            .then(|| semver::Version::parse(&e.version).ok())
            .flatten()
    }

    /// Remember `version` for the binary at `path` (best effort: a cache that cannot
    /// be written only costs a probe next time).
    pub fn store(&self, path: &Path, version: &semver::Version) {
        let (Some(key), Some(stamp), Some(dir)) = (path.to_str(), stamp(path), self.0.parent())
        else {
            return;
        };
        let mut all = self.read();
        all.insert(
            key.to_string(),
            Entry {
                stamp,
                version: version.to_string(),
            },
        );
        if std::fs::create_dir_all(dir).is_err() {
            return;
        }
        let Ok(mut tmp) = tempfile::NamedTempFile::new_in(dir) else {
            return;
        };
        if serde_json::to_writer(&mut tmp, &all).is_ok() {
            let _ = tmp.persist(&self.0);
        }
    }
}

/// Create `dir` (and its parents) and make it 0700, owned by this user: what lives
/// under it is run.
pub fn private_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let m = std::fs::symlink_metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // SAFETY: geteuid has no preconditions.
    if !m.is_dir() || m.uid() != rustix::process::geteuid().as_raw() {
        return Err(format!(
            "{} is not a directory this user owns",
            dir.display()
        ));
    }
    if m.mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    Ok(())
}

/// The SHA-256 of every binary slipway provisioned into its cache (downloaded and
/// checked against its pin, or built by its recipe), recorded when it was put there:
/// `<cache>/toolchain/manifest.json` (0600, in a 0700 directory). A cached binary is
/// used only while its digest is still the recorded one.
pub struct Manifest(pub PathBuf);

impl Manifest {
    pub fn user() -> Option<Manifest> {
        Some(Manifest(
            crate::tools::provision::cache_root()?
                .join("toolchain")
                .join("manifest.json"),
        ))
    }

    fn read(&self) -> BTreeMap<String, String> {
        std::fs::read(&self.0)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// The binaries it records a digest for.
    pub fn recorded(&self) -> Vec<PathBuf> {
        self.read().into_keys().map(PathBuf::from).collect()
    }

    /// Record the digest of the binary at `path` as it is now.
    pub fn record(&self, path: &Path) -> Result<(), String> {
        let key = path.to_str().ok_or("a path that is not UTF-8")?;
        let digest = sha256_file(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let dir = self.0.parent().ok_or("no manifest directory")?;
        private_dir(dir)?;
        let mut all = self.read();
        all.insert(key.to_string(), digest);
        // NamedTempFile is created 0600.
        let mut tmp =
            tempfile::NamedTempFile::new_in(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        serde_json::to_writer_pretty(&mut tmp, &all).map_err(|e| e.to_string())?;
        tmp.persist(&self.0)
            .map(drop)
            .map_err(|e| format!("{}: {e}", self.0.display()))
    }

    /// `Ok` when the binary at `path` still has the recorded digest; `Err` says what
    /// is wrong (never recorded, or changed since).
    pub fn verify(&self, path: &Path) -> Result<(), String> {
        let key = path.to_str().ok_or("a path that is not UTF-8")?;
        let Some(want) = self.read().remove(key) else {
            return Err(format!(
                "{} was not put there by slipway (no SHA-256 recorded in {})",
                path.display(),
                self.0.display()
            ));
        };
        let got = sha256_file(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if got == want {
            Ok(())
        } else {
            Err(format!(
                "{}'s SHA-256 is {got}, not the {want} recorded when slipway put it there",
                path.display()
            ))
        }
    }
}

/// The remembered version of `tool` as found on PATH (no process is spawned).
pub fn cached(tool: &str) -> Option<semver::Version> {
    Cache::user()?.lookup(&which::which(tool).ok()?)
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("{:x}", h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_catches_a_changed_binary_and_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let m = Manifest(dir.path().join("toolchain/manifest.json"));
        let bin = dir.path().join("kind");
        std::fs::write(&bin, "one").unwrap();
        assert!(m
            .verify(&bin)
            .unwrap_err()
            .contains("not put there by slipway"));
        m.record(&bin).unwrap();
        assert_eq!(m.verify(&bin), Ok(()));
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&m.0), 0o600);
        assert_eq!(mode(m.0.parent().unwrap()), 0o700);
        std::fs::write(&bin, "two").unwrap();
        assert!(m.verify(&bin).unwrap_err().contains("not the"));
    }

    #[test]
    fn a_changed_binary_is_asked_again() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache(dir.path().join("c/tool-versions.json"));
        let bin = dir.path().join("helm");
        std::fs::write(&bin, "one").unwrap();
        assert_eq!(cache.lookup(&bin), None);
        let v = semver::Version::new(4, 3, 1);
        cache.store(&bin, &v);
        assert_eq!(cache.lookup(&bin), Some(v));
        std::fs::write(&bin, "a longer binary").unwrap();
        assert_eq!(cache.lookup(&bin), None, "a replaced binary is asked again");
        assert_eq!(cache.lookup(&dir.path().join("missing")), None);
        std::fs::write(&cache.0, "not json").unwrap();
        assert_eq!(cache.lookup(&bin), None, "a broken cache is only a miss");
    }
}
