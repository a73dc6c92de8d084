//! One run at a time per cluster: an advisory lock (flock) on a file named after the
//! cluster's kube context, in this user's own lock directory (see
//! [`super::private::locks_dir`]: 0700, owned by the user, checked on every run). The
//! file is opened without following a symbolic link and never truncated before it is
//! held. The kernel releases the lock when the process ends, however it ends, so a
//! crash, `kill -9` or Ctrl-C never leaves a stale lock behind: there is nothing to
//! remove by hand. A second run waits for it, saying so.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::time::{Duration, Instant};

use rustix::fs::FlockOperation;

use super::private;
use crate::exec::Executor;
use crate::model::{Error, Event, Stage};

/// The longest a run waits for another one on the same cluster.
const MAX_WAIT: Duration = Duration::from_secs(30 * 60);

pub struct Lock {
    _file: File,
}

/// The lock file's name for a kube context.
fn file_name(key: &str) -> String {
    let safe: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}.lock")
}

/// `Ok(false)` while another process holds the lock; an error when the file system
/// cannot lock at all (it must not look like a holder that never lets go).
fn try_lock(f: &File) -> Result<bool, String> {
    match rustix::fs::flock(f, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(false),
        Err(e) => Err(e.to_string()),
    }
}

/// The pid the holder wrote (its first line), for the messages.
fn holder(f: &mut File) -> String {
    let mut text = String::new();
    let _ = f.rewind().and_then(|_| f.read_to_string(&mut text));
    let pid = text.trim();
    if !pid.is_empty() && pid.len() <= 10 && pid.bytes().all(|b| b.is_ascii_digit()) {
        pid.to_string()
    } else {
        "unknown".into()
    }
}

/// Take the lock for `key` (a kube context), waiting while another slipway holds it.
pub fn acquire(ex: &Executor, key: &str) -> Result<Lock, Error> {
    let stage = Stage::Preflight;
    let dir = private::locks_dir();
    let name = file_name(key);
    let refuse = |msg: String| {
        Error::new(stage, format!("cannot open the run lock: {msg}"))
            .hint("slipway keeps its run locks in a directory of its user's that nobody else can enter: fix or remove what is named above")
    };
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| refuse(format!("cannot create {}: {e}", parent.display())))?;
    }
    let dfd = private::open_dir(&dir).map_err(refuse)?;
    let mut f = private::open_file(&dfd, &dir, &name).map_err(refuse)?;
    let path = dir.join(&name);
    let lock = |f: &File| {
        try_lock(f).map_err(|e| {
            Error::new(stage, format!("cannot lock {}: {e}", path.display()))
                .hint("the run lock needs a file system that supports flock: set XDG_CACHE_HOME to a local directory")
        })
    };
    if !lock(&f)? {
        let pid = holder(&mut f);
        ex.events.emit(Event::Note {
            stage,
            step: None,
            message: format!(
                "another slipway run (pid {pid}) is using {key}: waiting for it to finish (Ctrl-C to stop waiting)"
            ),
        });
        let end = Instant::now() + MAX_WAIT;
        loop {
            if !ex.sleep(Duration::from_millis(200)) {
                return Err(Error::interrupted(
                    Some(stage),
                    "interrupted while waiting for another slipway run",
                ));
            }
            if lock(&f)? {
                break;
            }
            if Instant::now() >= end {
                let pid = holder(&mut f);
                return Err(Error::new(
                    stage,
                    format!(
                        "another slipway run (pid {pid}) kept {key} busy for {}m",
                        MAX_WAIT.as_secs() / 60
                    ),
                )
                .hint(format!(
                    "process {pid} still holds the lock (the kernel frees it when that process ends, however it ends): wait for it or stop it"
                )));
            }
        }
    }
    // Held: the file is this user's own, opened without following a link, so
    // rewriting it touches nothing else.
    let _ = f.set_len(0);
    let _ = f.rewind();
    let _ = write!(f, "{}", std::process::id());
    Ok(Lock { _file: f })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_name_keeps_only_safe_characters() {
        assert_eq!(file_name("kind-fx"), "kind-fx.lock");
        assert_eq!(file_name("../../etc/passwd"), ".._.._etc_passwd.lock");
        assert_eq!(file_name("arn:aws/x"), "arn_aws_x.lock");
    }
}
