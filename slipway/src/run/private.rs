//! Directories only this user can enter, for what slipway keeps between or during
//! runs (run locks, `kubectl proxy`'s socket): never a shared directory such as
//! `/tmp` itself, where another local user can plant a symbolic link or a file of
//! their own at the name slipway is about to open.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags};

/// Create `path` (mode 0700) unless it exists, then open it without following a
/// symbolic link and check it is a directory of this user's that nobody else can
/// enter. The parent must exist.
pub fn open_dir(path: &Path) -> Result<OwnedFd, String> {
    match rustix::fs::mkdir(path, Mode::RWXU) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
        Err(e) => return Err(format!("cannot create {}: {e}", path.display())),
    }
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR => format!(
            "{} is not a directory (a symbolic link or a file is in its place): slipway does not follow it",
            path.display()
        ),
        e => format!("cannot open {}: {e}", path.display()),
    })?;
    let st = rustix::fs::fstat(&fd).map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
    let me = rustix::process::geteuid().as_raw();
    if st.st_uid != me {
        return Err(format!(
            "{} belongs to uid {}, not to this user (uid {me}): slipway keeps its files only in a directory of its user's",
            path.display(),
            st.st_uid
        ));
    }
    let mode = st.st_mode & 0o7777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{} can be entered by other users (mode {mode:o}): slipway keeps its files only in a directory that is its user's alone (`chmod 700 {}`)",
            path.display(),
            path.display()
        ));
    }
    Ok(fd)
}

/// Open (or create, mode 0600) `name` in the private directory `dir` for reading and
/// writing: never through a symbolic link, never truncated, and only a regular file
/// of this user's with no other name (a hard link) is accepted.
pub fn open_file(dir: &OwnedFd, dir_path: &Path, name: &str) -> Result<File, String> {
    let path = dir_path.join(name);
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::RUSR | Mode::WUSR,
    )
    .map_err(|e| match e {
        rustix::io::Errno::LOOP => format!(
            "{} is a symbolic link: slipway does not follow it (remove it)",
            path.display()
        ),
        e => format!("cannot open {}: {e}", path.display()),
    })?;
    let st = rustix::fs::fstat(&fd).map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
    let me = rustix::process::geteuid().as_raw();
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile
        || st.st_uid != me
        || st.st_nlink != 1
    {
        return Err(format!(
            "{} is not a regular file of this user's with one name: slipway does not use it (remove it)",
            path.display()
        ));
    }
    Ok(File::from(fd))
}

/// Where this user's run locks live: `<cache>/locks` (`$XDG_CACHE_HOME/slipway`,
/// else `~/.cache/slipway`), else, with neither variable set, `$TMPDIR/slipway-<uid>`
/// (created 0700 and checked like the other).
pub fn locks_dir() -> PathBuf {
    match crate::tools::provision::cache_root() {
        Some(cache) => cache.join("locks"),
        None => {
            std::env::temp_dir().join(format!("slipway-{}", rustix::process::geteuid().as_raw()))
        }
    }
}

/// A new directory of this user's (mode 0700, a fresh random name under `$TMPDIR`),
/// removed when dropped.
pub fn temp_dir(prefix: &str) -> Result<tempfile::TempDir, String> {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
        .map_err(|e| {
            format!(
                "cannot create a private directory in {}: {e}",
                std::env::temp_dir().display()
            )
        })?;
    // mkdir created it (it did not exist), with the mode asked for less the umask:
    // check what came out all the same.
    open_dir(dir.path())?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_private_dir_is_made_0700_and_a_shared_or_linked_one_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("locks");
        open_dir(&d).unwrap();
        let mode = std::fs::metadata(&d).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = open_dir(&d).unwrap_err();
        assert!(e.contains("mode 755"), "{e}");
        let target = t.path().join("elsewhere");
        std::fs::create_dir(&target).unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o700)).unwrap();
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = open_dir(&link).unwrap_err();
        assert!(e.contains("does not follow it"), "{e}");
    }

    #[test]
    fn a_private_file_is_never_a_link_nor_truncated() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("p");
        let fd = open_dir(&d).unwrap();
        std::fs::write(d.join("kept"), "12345").unwrap();
        let f = open_file(&fd, &d, "kept").unwrap();
        assert_eq!(f.metadata().unwrap().len(), 5, "not truncated");
        let victim = t.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        std::os::unix::fs::symlink(&victim, d.join("link")).unwrap();
        let e = open_file(&fd, &d, "link").unwrap_err();
        assert!(e.contains("symbolic link"), "{e}");
        std::fs::hard_link(&victim, d.join("hard")).unwrap();
        let e = open_file(&fd, &d, "hard").unwrap_err();
        assert!(e.contains("one name"), "{e}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        let new = open_file(&fd, &d, "new").unwrap();
        assert_eq!(new.metadata().unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn a_temp_dir_is_private_and_goes_away() {
        let d = temp_dir("slipway-test-").unwrap();
        let p = d.path().to_path_buf();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o700
        );
        drop(d);
        assert!(!p.exists());
    }
}
