//! The repository a pipeline belongs to: what its paths may name, and what hashing
//! and watching stay inside.

use std::path::{Path, PathBuf};

/// The nearest directory at or above `dir` that holds `.git` (a directory, or a
/// worktree's file), else `dir` itself; resolved (symlinks followed). `None` when
/// `dir` cannot be resolved.
pub fn root(dir: &Path) -> Option<PathBuf> {
    let dir = dir.canonicalize().ok()?;
    let repo = dir
        .ancestors()
        .find(|d| d.join(".git").symlink_metadata().is_ok())
        .unwrap_or(&dir)
        .to_path_buf();
    Some(repo)
}

/// Where `path` really is (after `..` and symlinks) when that is outside `repo`.
pub fn escapes(repo: &Path, path: &Path) -> Option<PathBuf> {
    let real = path.canonicalize().ok()?;
    (!real.starts_with(repo)).then_some(real)
}
