//! Content digests: image tags that only change when build inputs change, and the
//! deploy digest recorded on a helm release so an unchanged redeploy can be skipped.
//! Hashing reads the inputs (only inside the repository, never ignored files) and
//! keeps a per-user cache of file digests; nothing else is written.

use std::cell::Cell;
use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use crate::model::repo;

/// The one ignore list, for hashing and for `dev`'s watcher: names never an input
/// (VCS metadata, build output, dependencies) and editors' temporary files. Beyond
/// these, `.gitignore` files (and a build context's own `.dockerignore`, for that
/// context) are honoured.
pub fn always_ignored(name: &str) -> bool {
    matches!(name, ".git" | "target" | "node_modules")
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.starts_with(".#")
        || name == "4913"
}

/// Is `p` (a changed path under `repo`) ignored: by [`always_ignored`] on any of its
/// components, or by a `.gitignore` in a directory from the repository's root down to
/// it? A `.dockerignore` is not consulted here: it speaks only for its own build
/// context ([`docker_ignored`]), not for the sources a pre-build reads beneath it.
pub fn ignored(repo: &Path, p: &Path) -> bool {
    if p.components()
        .any(|c| c.as_os_str().to_str().is_some_and(always_ignored))
    {
        return true;
    }
    let Ok(rel) = p.strip_prefix(repo) else {
        return false;
    };
    // The directories from the repository's root down to `p`'s own.
    let mut dirs = vec![repo.to_path_buf()];
    if let Some(parent) = rel.parent() {
        for c in parent.components() {
            let next = dirs[dirs.len() - 1].join(c);
            dirs.push(next);
        }
    }
    dirs.iter().any(|dir| matched(&dir.join(".gitignore"), p))
}

/// Is `p` left out of build context `context` by the context's own `.dockerignore`
/// (as hashing leaves it out of the context's digest)?
pub fn docker_ignored(context: &Path, p: &Path) -> bool {
    p.starts_with(context) && matched(&context.join(".dockerignore"), p)
}

/// Does the ignore file `f` (gitignore syntax), if it exists, match `p`?
fn matched(f: &Path, p: &Path) -> bool {
    f.is_file()
        && ignore::gitignore::Gitignore::new(f)
            .0
            .matched_path_or_any_parents(p, p.is_dir())
            .is_ignore()
}

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
    /// to `root`: its name and the SHA-256 of its contents (from the digest cache
    /// when the file is unchanged). Ignored files are left out, and nothing outside
    /// the repository is read: a symlink is followed only to a regular file inside it.
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
        let cache = cache();
        for f in files {
            let rel = f
                .strip_prefix(root)
                .unwrap_or(&f)
                .to_string_lossy()
                .replace('\\', "/");
            let digest = file_digest(cache, &f)?;
            self.part(&rel, &digest);
        }
        if let Ok(mut c) = cache.lock() {
            c.save();
        }
        Ok(self)
    }

    /// Inputs that are not regular files inside the repository (FIFOs, devices,
    /// sockets, symlinks to directories or out of the repository): never read, so a
    /// FIFO cannot hang planning and a link to `/` is not walked.
    pub fn skipped(&self) -> &[String] {
        &self.1
    }

    pub fn hex(&self) -> String {
        hex(&self.0.clone().finalize())
    }
}

thread_local! {
    static READS: Cell<u64> = const { Cell::new(0) };
}

/// How many files this thread has read the contents of to hash them (files the
/// digest cache knew unchanged are not read): the test hook for the cache.
pub fn files_read() -> u64 {
    READS.with(Cell::get)
}

/// The SHA-256 of a file, from the cache when its (device, inode, size, mtime,
/// ctime) are unchanged; read and remembered otherwise.
fn file_digest(cache: &Mutex<DigestCache>, f: &Path) -> io::Result<[u8; 32]> {
    let meta = fs::metadata(f)?;
    let key = DigestCache::key(f, &meta);
    if let Some(k) = &key {
        if let Some(d) = cache.lock().ok().and_then(|c| c.map.get(k).copied()) {
            return Ok(d);
        }
    }
    let mut h = Sha256::new();
    io::copy(&mut fs::File::open(f)?, &mut h)?;
    READS.with(|r| r.set(r.get() + 1));
    let d: [u8; 32] = h.finalize().into();
    // A file changed within the last two seconds could change again within the same
    // mtime tick: not remembered (git's "racy" rule).
    let settled = meta
        .modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .is_some_and(|age| age > Duration::from_secs(2));
    if let (Some(k), true) = (key, settled) {
        if let Ok(mut c) = cache.lock() {
            c.insert(k, d);
        }
    }
    Ok(d)
}

/// File digests by (path, device, inode, size, mtime, ctime), kept per user in
/// `<cache>/slipway/digests` (0600, in a 0700 directory), so an unchanged large file
/// is not read again on the next plan.
struct DigestCache {
    file: Option<PathBuf>,
    map: HashMap<String, [u8; 32]>,
    dirty: bool,
}

/// Entries kept at most; past it the cache starts over.
const CACHE_MAX: usize = 50_000;

fn cache() -> &'static Mutex<DigestCache> {
    static CACHE: OnceLock<Mutex<DigestCache>> = OnceLock::new();
    CACHE.get_or_init(|| {
        // Unit tests keep theirs in memory.
        let file = if cfg!(test) {
            None
        } else {
            crate::tools::provision::cache_root().map(|c| c.join("digests"))
        };
        Mutex::new(DigestCache::load(file))
    })
}

impl DigestCache {
    fn load(file: Option<PathBuf>) -> DigestCache {
        let mut map = HashMap::new();
        if let Some(text) = file.as_ref().and_then(|f| fs::read_to_string(f).ok()) {
            for line in text.lines() {
                let Some((k, v)) = line.rsplit_once('\t') else {
                    continue;
                };
                let bytes: Option<Vec<u8>> = (0..v.len())
                    .step_by(2)
                    .map(|i| v.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
                    .collect();
                if let Some(Ok(d)) = bytes.map(<[u8; 32]>::try_from) {
                    map.insert(k.to_string(), d);
                }
            }
        }
        DigestCache {
            file,
            map,
            dirty: false,
        }
    }

    fn key(f: &Path, m: &fs::Metadata) -> Option<String> {
        let path = f.canonicalize().ok()?;
        let path = path.to_str().filter(|p| !p.contains(['\t', '\n', '\r']))?;
        Some(format!(
            "{path}\t{}\t{}\t{}\t{}.{}\t{}.{}",
            m.dev(),
            m.ino(),
            m.size(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec()
        ))
    }

    fn insert(&mut self, k: String, d: [u8; 32]) {
        if self.map.len() >= CACHE_MAX {
            self.map.clear();
        }
        self.map.insert(k, d);
        self.dirty = true;
    }

    /// Write the cache (a temporary file renamed over it); best effort.
    fn save(&mut self) {
        let Some(file) = &self.file else { return };
        if !self.dirty {
            return;
        }
        let Some(dir) = file.parent() else { return };
        let _ = write_private(dir, file, &self.map);
        self.dirty = false;
    }
}

fn write_private(dir: &Path, file: &Path, map: &HashMap<String, [u8; 32]>) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o600))?;
    let mut out = io::BufWriter::new(tmp.as_file_mut());
    for (k, d) in map {
        writeln!(out, "{k}\t{}", hex(d))?;
    }
    out.flush()?;
    drop(out);
    tmp.persist(file).map_err(|e| e.error)?;
    Ok(())
}

/// A walk of `p` by the ignore rules: [`always_ignored`] names, `.gitignore` files,
/// `p`'s own `.dockerignore`; symlinks are not followed.
fn walker(p: &Path) -> ignore::WalkBuilder {
    let mut walk = ignore::WalkBuilder::new(p);
    walk.standard_filters(false)
        .git_ignore(true)
        .require_git(false)
        .parents(true)
        .follow_links(false)
        .filter_entry(|e| !e.file_name().to_str().is_some_and(always_ignored))
        .sort_by_file_name(|a, b| a.cmp(b));
    let docker = p.join(".dockerignore");
    if docker.is_file() {
        walk.add_ignore(docker);
    }
    walk
}

/// The directories under `p` (itself included) that `dev` watches: the walk hashing
/// does, so `target/`, ignored and symlinked directories get no watch.
pub fn watch_dirs(p: &Path) -> Vec<PathBuf> {
    walker(p)
        .build()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_some_and(|t| t.is_dir()))
        .map(|e| e.into_path())
        .collect()
}

/// Regular files under `p`, walked with the ignore rules: [`always_ignored`] names,
/// `.gitignore` files, and `p`'s own `.dockerignore` (a build context's). Symlinks are
/// never descended; one to a regular file inside the repository counts as that file.
/// Anything else goes to `skipped`.
fn collect(p: &Path, out: &mut Vec<PathBuf>, skipped: &mut Vec<PathBuf>) -> io::Result<()> {
    let meta = fs::symlink_metadata(p)?;
    let repo = p
        .parent()
        .and_then(repo::root)
        .unwrap_or_else(|| PathBuf::from("/"));
    let inside_file = |f: &Path| {
        f.canonicalize().is_ok_and(|r| r.starts_with(&repo))
            && fs::metadata(f).is_ok_and(|m| m.is_file())
    };
    if !meta.is_dir() {
        if meta.is_file() || (meta.file_type().is_symlink() && inside_file(p)) {
            out.push(p.to_path_buf());
        } else {
            skipped.push(p.to_path_buf());
        }
        return Ok(());
    }
    for entry in walker(p).build() {
        let entry = entry.map_err(io::Error::other)?;
        let Some(t) = entry.file_type() else { continue };
        let path = entry.path();
        if t.is_dir() {
            continue;
        }
        if t.is_file() || (t.is_symlink() && inside_file(path)) {
            out.push(path.to_path_buf());
        } else {
            skipped.push(path.to_path_buf());
        }
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
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        std::os::unix::fs::symlink(&fifo, d.path().join("src/link-to-pipe")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", d.path().join("src/zero")).unwrap();
        let mut h = Hasher::default();
        h.tree(d.path(), Path::new("src")).unwrap();
        assert_eq!(h.skipped(), ["src/link-to-pipe", "src/pipe", "src/zero"]);
    }

    /// A symlink to `/`, one to the directory above and one to a file outside are not
    /// followed (a link to `/` would have walked the whole machine); a link to a file
    /// inside counts as that file.
    #[test]
    fn symlinks_out_of_the_repository_are_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let repo = d.path().join("repo");
        fs::create_dir_all(repo.join(".git")).unwrap();
        fs::create_dir_all(repo.join("src/sub")).unwrap();
        fs::write(repo.join("src/a.txt"), "a").unwrap();
        fs::write(d.path().join("outside.txt"), "o").unwrap();
        let link = |a: &Path, b: PathBuf| std::os::unix::fs::symlink(a, b);
        link(Path::new("/"), repo.join("src/root")).unwrap();
        link(Path::new(".."), repo.join("src/up")).unwrap();
        link(Path::new("sub"), repo.join("src/sub-link")).unwrap();
        link(&d.path().join("outside.txt"), repo.join("src/out.txt")).unwrap();
        link(Path::new("a.txt"), repo.join("src/in.txt")).unwrap();
        let before = files_read();
        let mut h = Hasher::default();
        h.tree(&repo, Path::new("src")).unwrap();
        assert_eq!(
            h.skipped(),
            ["src/out.txt", "src/root", "src/sub-link", "src/up"]
        );
        assert_eq!(files_read() - before, 2, "a.txt and in.txt only");
    }

    /// `.gitignore` (anywhere from the repository down) and the context's
    /// `.dockerignore` leave files out of the digest; the same rules decide what the
    /// watcher ignores.
    #[test]
    fn ignore_files_are_honoured_by_hashing_and_watching() {
        let d = tempfile::tempdir().unwrap();
        let repo = d.path().canonicalize().unwrap();
        fs::create_dir_all(repo.join(".git")).unwrap();
        fs::create_dir_all(repo.join("ctx/secret")).unwrap();
        fs::create_dir_all(repo.join("ctx/build")).unwrap();
        fs::write(repo.join(".gitignore"), "*.log\n").unwrap();
        fs::write(repo.join("ctx/.dockerignore"), "secret/\n").unwrap();
        fs::write(repo.join("ctx/.gitignore"), "build/\n").unwrap();
        fs::write(repo.join("ctx/main.rs"), "fn main() {}").unwrap();
        let h = || {
            Hasher::default()
                .tree(&repo, Path::new("ctx"))
                .unwrap()
                .hex()
        };
        let first = h();
        for noise in ["ctx/x.log", "ctx/secret/key", "ctx/build/out", "ctx/a.swp"] {
            fs::write(repo.join(noise), "changed").unwrap();
            assert_eq!(h(), first, "{noise} is ignored");
            let p = repo.join(noise);
            assert!(
                ignored(&repo, &p) || docker_ignored(&repo.join("ctx"), &p),
                "{noise}"
            );
        }
        fs::write(repo.join("ctx/main.rs"), "fn main() { }").unwrap();
        assert_ne!(h(), first);
        assert!(!ignored(&repo, &repo.join("ctx/main.rs")));
        assert!(!docker_ignored(
            &repo.join("ctx"),
            &repo.join("ctx/main.rs")
        ));
    }

    /// An unchanged file is not read again: its digest comes from the cache, keyed by
    /// (size, mtime, inode …). A change of contents (even at the same size) is read.
    #[test]
    fn an_unchanged_large_file_is_not_read_again() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("ctx")).unwrap();
        let big = d.path().join("ctx/big.bin");
        let old = SystemTime::now() - Duration::from_secs(60);
        let write = |byte: u8, mtime: SystemTime| {
            fs::write(&big, vec![byte; 4 << 20]).unwrap();
            fs::File::options()
                .write(true)
                .open(&big)
                .unwrap()
                .set_modified(mtime)
                .unwrap();
        };
        write(1, old);
        let h = || {
            Hasher::default()
                .tree(d.path(), Path::new("ctx"))
                .unwrap()
                .hex()
        };
        let n0 = files_read();
        let first = h();
        assert_eq!(files_read() - n0, 1);
        let n1 = files_read();
        assert_eq!(h(), first);
        assert_eq!(files_read() - n1, 0, "the second digest reads no file");
        write(2, old - Duration::from_secs(60));
        let n2 = files_read();
        assert_ne!(h(), first);
        assert_eq!(files_read() - n2, 1);
    }

    #[test]
    fn the_cache_file_round_trips() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("cache/digests");
        let mut c = DigestCache::load(Some(file.clone()));
        c.insert("/a\t1\t2\t3\t4.5\t6.7".into(), [7; 32]);
        c.save();
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(file.parent().unwrap()), 0o700);
        let again = DigestCache::load(Some(file));
        assert_eq!(again.map.get("/a\t1\t2\t3\t4.5\t6.7"), Some(&[7; 32]));
    }

    #[test]
    fn parts_are_delimited() {
        let x = Hasher::default().part("a", b"bc").hex();
        let y = Hasher::default().part("ab", b"c").hex();
        assert_ne!(x, y);
    }
}
