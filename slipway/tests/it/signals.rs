//! Tier 2: Ctrl-C in every stage (and while planning), a second Ctrl-C, and a
//! grandchild that keeps a child's stdout open.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{alive, Sandbox};

fn spawn(s: &Sandbox, args: &[&str]) -> Child {
    s.command(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_for(s: &Sandbox, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !s.ran(needle) {
        assert!(Instant::now() < deadline, "`{needle}` never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
}

fn sigint(c: &Child) {
    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(c.id() as i32, libc::SIGINT) };
}

fn finish(mut c: Child) -> (Option<i32>, String) {
    let status = c.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut c.stderr.take().unwrap(), &mut err).unwrap();
    (status.code(), err)
}

/// Each stage, stopped by Ctrl-C while its command hangs: exit 130, said so, nothing of
/// a later stage run, the hung child gone.
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
        ("smoke", "kubectl", "port-forward", "no later stage"),
    ];
    std::thread::scope(|scope| {
        for (stage, tool, hang, later) in cases {
            scope.spawn(move || {
                let s = Sandbox::new();
                let words = hang.strip_prefix(tool).unwrap_or(hang).trim();
                s.rule(json!({"tool": tool, "match": [words], "sleep": 60}));
                let c = spawn(&s, &["deploy-local"]);
                wait_for(&s, hang);
                let t = Instant::now();
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
                assert!(!s.ran(later), "{stage}: `{later}` ran after Ctrl-C");
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

/// Ctrl-C before the plan is made ends slipway at once.
#[test]
fn ctrl_c_while_planning_ends_at_once() {
    let s = Sandbox::new();
    let c = spawn(&s, &["deploy-local"]);
    std::thread::sleep(Duration::from_millis(5));
    sigint(&c);
    let t = Instant::now();
    let mut c = c;
    let status = c.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert!(
        status.code() == Some(130) || status.signal() == Some(libc::SIGINT),
        "{status:?}"
    );
    assert!(t.elapsed() < Duration::from_secs(10));
    assert!(!s.ran("helm upgrade"));
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
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        s.calls()
            .iter()
            .any(|c| c["tool"] == "helm" && c["signal"] == "SIGINT"),
        "helm got SIGINT first"
    );
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
    s.rule(json!({"tool": "docker", "match": ["build"], "grandchild": 40, "then_simulate": true}));
    let t = Instant::now();
    let o = s.run(&["deploy-local"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        t.elapsed() < Duration::from_secs(35),
        "the run waited for the grandchild: {:?}",
        t.elapsed()
    );
}
