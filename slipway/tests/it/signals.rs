//! Tier 2: Ctrl-C in every stage (and while planning), a second Ctrl-C, and a
//! grandchild that keeps a child's stdout open.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{alive, Sandbox};

/// slipway as a terminal starts it: SIGINT and SIGTERM at their default action, even
/// when this test process inherited them ignored (a suite started in the background
/// by a non-interactive shell, or under `nohup`, ignores SIGINT, and slipway keeps
/// the default until it installs its handlers: Ctrl-C while planning would then
/// never end it).
pub(crate) fn spawn(s: &Sandbox, args: &[&str]) -> Child {
    use std::os::unix::process::CommandExt;
    let mut c = s.command(args);
    // SAFETY: between fork and exec only `signal`, which is async-signal-safe.
    unsafe {
        c.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
            Ok(())
        });
    }
    c.stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Wait until a fake recorded `needle`'s invocation. The fakes install their signal
/// handlers before they record a call, and slipway installs its own before it runs
/// anything, so a signal sent after this returns reaches both.
fn wait_for(s: &Sandbox, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while !s.ran(needle) {
        assert!(Instant::now() < deadline, "`{needle}` never started");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Seconds since the epoch, as the fakes record when they were spawned (`started`).
fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Invocations spawned after `t` (signal notes left out). `started` is read from
/// /proc to 10 ms: a command spawned just before `t` may read up to 20 ms late.
fn started_after(s: &Sandbox, t: f64) -> Vec<String> {
    s.calls()
        .iter()
        .filter(|c| {
            c.get("signal").is_none() && c["started"].as_f64().is_some_and(|x| x > t + 0.05)
        })
        .map(|c| format!("{} {}", c["tool"], c["argv"]))
        .collect()
}

pub(crate) fn sigint(c: &Child) {
    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(c.id() as i32, libc::SIGINT) };
}

/// `c`'s exit status, once it ends within `limit` (else it is killed and the test
/// fails, naming `what` should have ended it).
pub(crate) fn end_within(c: &mut Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    let t = Instant::now();
    loop {
        if let Some(st) = c.try_wait().unwrap() {
            return st;
        }
        if t.elapsed() > limit {
            let _ = c.kill();
            let _ = c.wait();
            panic!("{what} did not end slipway within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn finish(mut c: Child) -> (Option<i32>, String) {
    let status = c.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut c.stderr.take().unwrap(), &mut err).unwrap();
    (status.code(), err)
}

/// Each stage, stopped by Ctrl-C while its command hangs: exit 130, said so, nothing
/// started after the Ctrl-C (so nothing of a later stage, and no retry in this one),
/// the hung child gone.
#[test]
fn ctrl_c_in_every_stage_stops_the_run() {
    // (stage, tool, what its hanging command contains, a command of a later stage)
    let cases = [
        ("preflight", "docker", "docker info", "helm template web"),
        ("render", "helm", "helm template web", "kind create"),
        ("cluster", "kind", "kind create", "docker build"),
        ("build", "docker", "docker build", "kind load"),
        ("load", "kind", "kind load", "apply --server-side"),
        ("secrets", "kubectl", "apply --server-side", "helm upgrade"),
        ("deploy", "helm", "helm upgrade", "daemonsets,jobs"),
        (
            "rollout",
            "kubectl",
            "daemonsets,jobs",
            "daemonsets --output",
        ),
        ("health", "kubectl", "daemonsets --output", "port-forward"),
        // Smoke is the last stage: the check below that nothing started after the
        // Ctrl-C is what says it stopped (a check that went on would retry).
        ("smoke", "kubectl", "port-forward", "port-forward"),
    ];
    std::thread::scope(|scope| {
        for (stage, tool, hang, later) in cases {
            scope.spawn(move || {
                let s = Sandbox::new();
                let words = hang.strip_prefix(tool).unwrap_or(hang).trim();
                s.rule(json!({"tool": tool, "match": [words], "sleep": 60}));
                let c = spawn(&s, &["deploy-local"]);
                wait_for(&s, hang);
                let hung = s.count(later);
                let t = Instant::now();
                let sent = now();
                sigint(&c);
                let (code, err) = finish(c);
                assert_eq!(code, Some(130), "{stage}: {err}");
                assert!(
                    t.elapsed() < Duration::from_secs(30),
                    "{stage}: took {:?}",
                    t.elapsed()
                );
                assert!(err.contains("interrupted"), "{stage}: {err}");
                assert!(err.contains(&format!("[{stage}]")), "{stage}: {err}");
                assert_eq!(
                    s.count(later),
                    if later == hang { hung } else { 0 },
                    "{stage}: `{later}` ran after Ctrl-C"
                );
                let after = started_after(&s, sent);
                assert!(after.is_empty(), "{stage}: started after Ctrl-C: {after:?}");
                for pid in s.pids_of(hang) {
                    assert!(
                        !alive(pid),
                        "{stage}: `{hang}` (pid {pid}) outlived slipway"
                    );
                }
            });
        }
    });
}

/// Ctrl-C before the plan is made ends slipway at once. The pipeline file is a FIFO
/// the test holds open without writing, so slipway is certainly still loading it
/// (planning) when the signal comes: it must die of it or exit 130 at once, having
/// run nothing.
#[test]
fn ctrl_c_while_planning_ends_at_once() {
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::process::ExitStatusExt;
    let s = Sandbox::new();
    let fifo = s.dir.path().join("pipeline-fifo.toml");
    let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    let mut c = spawn(&s, &["--config", fifo.to_str().unwrap(), "deploy-local"]);
    // A non-blocking open for writing succeeds once slipway has the FIFO open for
    // reading; slipway's read then blocks (no data, a writer present).
    let deadline = Instant::now() + Duration::from_secs(60);
    let _writer = loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
        {
            Ok(w) => break w,
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                assert!(Instant::now() < deadline, "slipway never opened {fifo:?}");
                assert!(c.try_wait().unwrap().is_none(), "slipway ended early");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("{e}"),
        }
    };
    sigint(&c);
    let status = end_within(&mut c, Duration::from_secs(10), "Ctrl-C while planning");
    assert!(
        status.code() == Some(130) || status.signal() == Some(libc::SIGINT),
        "{status:?}"
    );
    assert!(s.calls().is_empty(), "{:?}", s.argv_lines());
}

/// helm gets SIGINT and time to record the release; a second Ctrl-C does not wait for
/// it: helm is killed and slipway exits 130 at once.
#[test]
fn a_second_ctrl_c_stops_waiting_for_helm() {
    let s = Sandbox::new();
    // The fake helm takes 40 s to exit after SIGINT.
    s.rule(json!({"tool": "helm", "match": ["upgrade"], "sleep": 120, "signal_delay": 40}));
    let c = spawn(&s, &["deploy-local"]);
    wait_for(&s, "helm upgrade");
    sigint(&c);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !s
        .calls()
        .iter()
        .any(|c| c["tool"] == "helm" && c["signal"] == "SIGINT")
    {
        assert!(Instant::now() < deadline, "helm never got SIGINT");
        std::thread::sleep(Duration::from_millis(20));
    }
    let t = Instant::now();
    sigint(&c);
    let (code, err) = finish(c);
    assert_eq!(code, Some(130), "{err}");
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "the second Ctrl-C did not cut the wait: {:?}",
        t.elapsed()
    );
    for pid in s.pids_of("helm upgrade") {
        assert!(!alive(pid), "helm (pid {pid}) outlived slipway");
    }
}

/// A child that leaves a grandchild (outside its process group) holding its stdout:
/// slipway goes on when the child exits, it does not wait for the pipe to close.
#[test]
fn a_grandchild_holding_stdout_does_not_hold_the_run() {
    let s = Sandbox::new();
    // The grandchild outlives any plausible run on a loaded machine by far: a run
    // that ended before it did not wait for it.
    s.rule(json!({"tool": "docker", "match": ["build"], "grandchild": 300, "then_simulate": true}));
    let t = Instant::now();
    let o = s.run(&["deploy-local"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        t.elapsed() < Duration::from_secs(240),
        "the run waited for the grandchild: {:?}",
        t.elapsed()
    );
}
