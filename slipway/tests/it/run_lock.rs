//! The run lock lives in this user's own directory, is never opened through a
//! symbolic link nor truncated before it is held, and is freed by the kernel when
//! its holder dies however it dies.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::Sandbox;

/// Where the lock of the fixture's cluster is: `$HOME/.cache/slipway/locks`.
fn lock_dir(s: &Sandbox) -> PathBuf {
    s.dir.path().join(".cache/slipway/locks")
}

/// A symbolic link planted at the lock's name — where the lock used to live
/// (`$TMPDIR/slipway-locks`) and where it lives now — is not followed: its target
/// keeps its bytes and the run refuses, naming the link.
#[test]
fn a_symlink_at_the_lock_path_is_not_followed() {
    let s = Sandbox::new();
    let victim = s.dir.path().join("victim.txt");
    std::fs::write(&victim, "precious\n").unwrap();
    for dir in [s.dir.path().join("slipway-locks"), lock_dir(&s)] {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::symlink(&victim, dir.join("kind-fx.lock")).unwrap();
    }
    for args in [&["deploy-local"][..], &["down"][..]] {
        let o = s.run(args);
        assert_eq!(
            std::fs::read_to_string(&victim).unwrap(),
            "precious\n",
            "`{}` wrote through the link:\n{}",
            args.join(" "),
            o.all()
        );
        assert_eq!(o.code, 10, "{}", o.all());
        assert!(
            o.stderr.contains("kind-fx.lock is a symbolic link"),
            "{}",
            o.stderr
        );
    }
    assert!(!s.ran("helm"), "nothing ran: {:?}", s.argv_lines());
}

/// The lock directory is made 0700 and the lock file 0600; a lock directory others
/// can enter, or (with no HOME) a `$TMPDIR/slipway-<uid>` that is a link planted by
/// someone else, is refused.
#[test]
fn the_lock_directory_is_the_users_alone() {
    let s = Sandbox::new();
    let o = s.run(&["deploy-local"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let dir = lock_dir(&s);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("kind-fx.lock")), 0o600);
    assert!(
        !s.dir.path().join("slipway-locks").exists(),
        "nothing in the shared temp directory"
    );

    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let o = s.run(&["deploy-local"]);
    assert_eq!(o.code, 10, "{}", o.all());
    assert!(
        o.stderr
            .contains("can be entered by other users (mode 777)"),
        "{}",
        o.stderr
    );
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();

    // No HOME: the lock goes to $TMPDIR/slipway-<uid>, which must be a real
    // directory of this user's.
    let uid = std::fs::metadata(s.dir.path()).unwrap().uid();
    let planted = s.dir.path().join("planted");
    std::fs::create_dir(&planted).unwrap();
    std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o777)).unwrap();
    let fallback = s.dir.path().join(format!("slipway-{uid}"));
    std::os::unix::fs::symlink(&planted, &fallback).unwrap();
    let o = s
        .command(&["down", "--no-provision"])
        .env_remove("HOME")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(10), "{err}");
    assert!(err.contains("does not follow it"), "{err}");
    assert_eq!(std::fs::read_dir(&planted).unwrap().count(), 0, "{err}");
}

/// A holder killed with SIGKILL (no chance to clean up) while its children still run
/// leaves no lock behind: the next run does not wait.
#[test]
fn a_killed_holders_lock_is_free_again() {
    let s = Sandbox::new();
    let o = s.run(&["deploy-local"]);
    assert_eq!(o.code, 0, "{}", o.all());
    s.rule(
        json!({"tool": "helm", "match": ["status"], "sleep": 4, "times": 1, "then_simulate": true}),
    );
    let mut first = s.command(&["deploy-local", "--force"]).spawn().unwrap();
    let lock = lock_dir(&s).join("kind-fx.lock");
    let pid = first.id().to_string();
    let end = Instant::now() + Duration::from_secs(20);
    // Held once the pid is written and the slow helm call has started.
    while !(std::fs::read_to_string(&lock).is_ok_and(|t| t == pid) && s.ran("helm status")) {
        assert!(Instant::now() < end, "the first run never took the lock");
        std::thread::sleep(Duration::from_millis(50));
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let started = Instant::now();
    let second = s.run(&["deploy-local"]);
    assert_eq!(second.code, 0, "{}", second.all());
    assert!(
        !second.stderr.contains("another slipway run"),
        "{}",
        second.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}
