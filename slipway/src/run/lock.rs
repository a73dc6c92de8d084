//! One run at a time per cluster: an advisory lock (flock) on a file named after the
//! cluster's kube context. The kernel releases it when the process ends, however it
//! ends, so a crash or Ctrl-C never leaves it behind. A second run waits for it,
//! saying so.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::exec::Executor;
use crate::model::{Error, Event, Stage};

/// The longest a run waits for another one on the same cluster.
const MAX_WAIT: Duration = Duration::from_secs(30 * 60);

pub struct Lock {
    _file: File,
}

fn path(key: &str) -> PathBuf {
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
    std::env::temp_dir()
        .join("slipway-locks")
        .join(format!("{safe}.lock"))
}

fn try_lock(f: &File) -> bool {
    // SAFETY: flock on a file descriptor we own.
    unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// Take the lock for `key` (a kube context), waiting while another slipway holds it.
pub fn acquire(ex: &Executor, key: &str) -> Result<Lock, Error> {
    let stage = Stage::Preflight;
    let p = path(key);
    let open = || -> std::io::Result<File> {
        std::fs::create_dir_all(p.parent().unwrap_or(&p))?;
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&p)
    };
    let mut f = open().map_err(|e| {
        Error::new(
            stage,
            format!("cannot open the run lock {}: {e}", p.display()),
        )
    })?;
    if !try_lock(&f) {
        let mut holder = String::new();
        let _ = f.read_to_string(&mut holder);
        ex.events.emit(Event::Note {
            stage,
            message: format!(
                "another slipway run (pid {}) is using {key}: waiting for it to finish (Ctrl-C to stop waiting)",
                holder.trim()
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
            if try_lock(&f) {
                break;
            }
            if Instant::now() >= end {
                return Err(Error::new(
                    stage,
                    format!(
                        "another slipway run (pid {}) kept {key} busy for {}m",
                        holder.trim(),
                        MAX_WAIT.as_secs() / 60
                    ),
                )
                .hint(format!("if no slipway is running, remove {}", p.display())));
            }
        }
    }
    let _ = f.set_len(0);
    let _ = f.rewind();
    let _ = write!(f, "{}", std::process::id());
    Ok(Lock { _file: f })
}
