//! Tool versions, remembered per binary: preflight asks each tool for its version
//! once, and again only when the binary changes (its path, size, modification time or
//! inode). Planning reads the remembered helm version, without spawning anything, to
//! choose helm's flags.
//!
//! The cache is `$XDG_CACHE_HOME/slipway/tool-versions.json` (or `~/.cache/…`); a
//! missing or unreadable cache only means asking the tools again.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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

/// The remembered version of `tool` as found on PATH (no process is spawned).
pub fn cached(tool: &str) -> Option<semver::Version> {
    Cache::user()?.lookup(&which::which(tool).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

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
