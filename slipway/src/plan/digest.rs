//! Content digests: image tags that only change when build inputs change, and the
//! deploy digest recorded on a helm release so an unchanged redeploy can be skipped.
//! Read-only: hashing files is the only I/O here.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Directory names never hashed (build output, VCS metadata).
const SKIP_DIRS: &[&str] = &[".git", "target", "node_modules"];

/// Hashes named parts in order; each part is length-prefixed so parts cannot run
/// into each other.
#[derive(Default)]
pub struct Hasher(Sha256, Vec<String>);

impl Hasher {
    pub fn part(&mut self, label: &str, bytes: &[u8]) -> &mut Self {
        for chunk in [label.as_bytes(), bytes] {
            self.0.update((chunk.len() as u64).to_le_bytes());
            self.0.update(chunk);
        }
        self
    }

    /// Every regular file under `path` (or the file itself), sorted by path relative
    /// to `root`, name and contents.
    pub fn tree(&mut self, root: &Path, path: &Path) -> io::Result<&mut Self> {
        let mut files = vec![];
        let mut skipped = vec![];
        collect(&root.join(path), &mut files, &mut skipped)?;
        self.1.extend(
            skipped
                .iter()
                .map(|f| f.strip_prefix(root).unwrap_or(f).display().to_string()),
        );
        files.sort();
        for f in files {
            let rel = f
                .strip_prefix(root)
                .unwrap_or(&f)
                .to_string_lossy()
                .replace('\\', "/");
            let bytes = fs::read(&f)?;
            self.part(&rel, &bytes);
        }
        Ok(self)
    }

    /// Inputs that are not regular files (FIFOs, devices, sockets, dangling or
    /// directory symlinks): never read, so a FIFO cannot hang planning.
    pub fn skipped(&self) -> &[String] {
        &self.1
    }

    pub fn hex(&self) -> String {
        hex(&self.0.clone().finalize())
    }
}

/// Regular files under `p` (symlinks to regular files included, other symlinks not
/// followed); anything else goes to `skipped`.
fn collect(p: &Path, out: &mut Vec<PathBuf>, skipped: &mut Vec<PathBuf>) -> io::Result<()> {
    let meta = fs::symlink_metadata(p)?;
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = fs::read_dir(p)?
            .map(|e| e.map(|e| e.path()))
            .collect::<io::Result<_>>()?;
        entries.sort();
        for entry in entries {
            if entry
                .file_name()
                .is_some_and(|n| SKIP_DIRS.iter().any(|s| n == *s))
            {
                continue;
            }
            collect(&entry, out, skipped)?;
        }
    } else if meta.is_file()
        || (meta.file_type().is_symlink() && fs::metadata(p).is_ok_and(|m| m.is_file()))
    {
        out.push(p.to_path_buf());
    } else {
        skipped.push(p.to_path_buf());
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The newest modification time under `path`.
fn newest_mtime(p: &Path) -> Option<std::time::SystemTime> {
    let mut files = vec![];
    collect(p, &mut files, &mut vec![]).ok()?;
    files
        .iter()
        .filter_map(|f| fs::metadata(f).ok()?.modified().ok())
        .max()
}

/// The commit HEAD points at, read from `.git` without running git.
pub fn git_head(repo: &Path) -> Option<String> {
    let git = find_git_dir(repo)?;
    let head = fs::read_to_string(git.join("HEAD")).ok()?;
    let head = head.trim();
    let Some(reference) = head.strip_prefix("ref: ") else {
        return Some(head.to_string());
    };
    if let Ok(c) = fs::read_to_string(git.join(reference)) {
        return Some(c.trim().to_string());
    }
    let packed = fs::read_to_string(git.join("packed-refs")).ok()?;
    packed.lines().find_map(|l| {
        let (sha, name) = l.split_once(' ')?;
        (name == reference).then(|| sha.to_string())
    })
}

fn find_git_dir(start: &Path) -> Option<PathBuf> {
    let start = start.canonicalize().ok()?;
    start
        .ancestors()
        .map(|d| d.join(".git"))
        .find(|g| g.join("HEAD").is_file())
}

/// `<12-char commit>` plus `-dirty` when an input was modified after git's index was
/// last written (i.e. after the last checkout, add or commit).
pub fn git_tag(repo: &Path, inputs: &[PathBuf]) -> Option<String> {
    let head = git_head(repo)?;
    let short: String = head.chars().take(12).collect();
    let index = find_git_dir(repo)?.join("index");
    let index_time = fs::metadata(index).and_then(|m| m.modified()).ok();
    let dirty = match index_time {
        None => true,
        Some(t) => inputs
            .iter()
            .filter_map(|i| newest_mtime(&repo.join(i)))
            .any(|m| m > t),
    };
    Some(if dirty {
        format!("{short}-dirty")
    } else {
        short
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_digest_depends_on_names_and_contents_only() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        for d in [a.path(), b.path()] {
            fs::create_dir_all(d.join("src/target")).unwrap();
            fs::write(d.join("src/main.rs"), "fn main() {}").unwrap();
        }
        fs::write(b.path().join("src/target/ignored"), "x").unwrap();
        let h = |d: &Path| Hasher::default().tree(d, Path::new("src")).unwrap().hex();
        assert_eq!(h(a.path()), h(b.path()), "target/ is not an input");
        fs::write(b.path().join("src/main.rs"), "fn main() { }").unwrap();
        assert_ne!(h(a.path()), h(b.path()));
    }

    #[test]
    fn a_fifo_among_the_inputs_is_skipped_not_read() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("src")).unwrap();
        fs::write(d.path().join("src/a.txt"), "a").unwrap();
        let fifo = d.path().join("src/pipe");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        std::os::unix::fs::symlink(&fifo, d.path().join("src/link-to-pipe")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", d.path().join("src/zero")).unwrap();
        let mut h = Hasher::default();
        h.tree(d.path(), Path::new("src")).unwrap();
        assert_eq!(h.skipped(), ["src/link-to-pipe", "src/pipe", "src/zero"]);
    }

    #[test]
    fn parts_are_delimited() {
        let x = Hasher::default().part("a", b"bc").hex();
        let y = Hasher::default().part("ab", b"c").hex();
        assert_ne!(x, y);
    }
}
