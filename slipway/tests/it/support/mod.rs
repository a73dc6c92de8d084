//! Test support for tier 2: a sandbox with fake tools first on PATH, a copy of the
//! fixture project, a clean environment, and readers for what the fakes recorded.

#![allow(dead_code)]

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

pub const CANARY: &str = "CANARY-7f3a9c-never-print-me";
pub const TOOLS: &[&str] = &["docker", "kind", "minikube", "helm", "kubectl"];

pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub project: PathBuf,
    pub bin: PathBuf,
    pub log: PathBuf,
    pub state: PathBuf,
    rules: PathBuf,
    pub env: Vec<(String, String)>,
}

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Is this a CI run (`CI` set, not "false"/"0")? Real-tool tests fail instead of
/// skipping there.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The Python interpreter itself, not a launcher: a version manager's shim on `PATH`
/// (pyenv's is a bash script that re-resolves `python3` through `PATH`) would find the
/// sandbox's own entries first once it is linked there.
pub fn python3() -> PathBuf {
    static EXE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    EXE.get_or_init(resolve_python3).clone()
}

fn resolve_python3() -> PathBuf {
    let shim = which::which("python3").expect("python3 runs the fake tools");
    let out = Command::new(&shim)
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "python3 -c failed: {out:?}");
    let exe = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(exe.is_absolute(), "sys.executable is not a path: {exe:?}");
    exe
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
        let support = tests.join("it/support");
        let project = dir.path().join("project");
        copy_dir(&tests.join("fixtures/app"), &project);
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        for t in TOOLS {
            symlink(support.join("fake_tool.py"), bin.join(t)).unwrap();
        }
        // Downloads never leave the sandbox: the fake curl serves only what a test
        // puts in FAKE_DOWNLOAD_DIR.
        symlink(support.join("fake_tool.py"), bin.join("curl")).unwrap();
        symlink(python3(), bin.join("python3")).unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir_all(&state).unwrap();
        let log = dir.path().join("calls.jsonl");
        let rules = dir.path().join("rules.json");
        std::fs::write(&rules, "[]").unwrap();
        Sandbox {
            project,
            bin,
            log,
            state,
            rules,
            env: vec![],
            dir,
        }
    }

    /// Add a fake of `tool` (go, dockerd, runc: see fake_tool.py) to the sandbox's PATH.
    pub fn add_fake(&self, tool: &str) {
        let support = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/support");
        symlink(support.join("fake_tool.py"), self.bin.join(tool)).unwrap();
    }

    /// Take `tool` off the sandbox's PATH.
    pub fn remove_tool(&self, tool: &str) {
        std::fs::remove_file(self.bin.join(tool)).unwrap();
    }

    /// Add a fault-injection rule (see fake_tool.py).
    pub fn rule(&self, rule: Value) {
        let mut all: Vec<Value> =
            serde_json::from_str(&std::fs::read_to_string(&self.rules).unwrap()).unwrap();
        all.push(rule);
        std::fs::write(&self.rules, serde_json::to_string(&all).unwrap()).unwrap();
    }

    pub fn clear_rules(&self) {
        std::fs::write(&self.rules, "[]").unwrap();
    }

    /// Append `text` to the fixture's pipeline.toml (a table the fixture lacks).
    pub fn append_config(&self, text: &str) {
        let p = self.project.join("pipeline.toml");
        let mut t = std::fs::read_to_string(&p).unwrap();
        t.push_str(text);
        std::fs::write(&p, t).unwrap();
    }

    pub fn set_env(&mut self, k: &str, v: &str) {
        self.env.push((k.into(), v.into()));
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_slipway"));
        c.args(args)
            .current_dir(&self.project)
            .env_clear()
            .env("PATH", format!("{}:/usr/bin:/bin", self.bin.display()))
            .env("HOME", self.dir.path())
            .env("TMPDIR", self.dir.path())
            .env("CI", "1")
            .env("NO_COLOR", "1")
            .env("FAKE_LOG", &self.log)
            .env("FAKE_STATE", &self.state)
            .env("FAKE_RULES", &self.rules)
            .env("FIXTURE_TOKEN", CANARY)
            .stdin(Stdio::null());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Out {
        self.run_in(&self.project, args)
    }

    /// [`Sandbox::run`] with another working directory (a repository of the test's own).
    pub fn run_in(&self, dir: &Path, args: &[&str]) -> Out {
        let o = self.command(args).current_dir(dir).output().unwrap();
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Every invocation the fakes recorded, in order. Tests poll this while
    /// fakes are still writing, so only newline-terminated lines count.
    pub fn calls(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
        complete
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Invocations as "tool arg arg…" lines.
    pub fn argv_lines(&self) -> Vec<String> {
        self.calls().iter().filter_map(invocation).collect()
    }

    pub fn ran(&self, needle: &str) -> bool {
        self.argv_lines().iter().any(|l| l.contains(needle))
    }

    pub fn count(&self, needle: &str) -> usize {
        self.argv_lines()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    pub fn port_forward_pids(&self) -> Vec<i32> {
        self.calls()
            .iter()
            .filter_map(|c| c.get("port_forward_pid").and_then(Value::as_i64))
            .map(|p| p as i32)
            .collect()
    }

    pub fn pids_of(&self, needle: &str) -> Vec<i32> {
        self.calls()
            .iter()
            .filter(|c| invocation(c).is_some_and(|l| l.contains(needle)))
            .filter_map(|c| c["pid"].as_i64())
            .map(|p| p as i32)
            .collect()
    }
}

/// "tool arg arg…" for a recorded invocation (not for signal or port-forward notes).
fn invocation(c: &Value) -> Option<String> {
    if c.get("signal").is_some() {
        return None;
    }
    let argv: Vec<&str> = c
        .get("argv")?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    Some(format!("{} {}", c["tool"].as_str()?, argv.join(" ")))
}

/// Is this process still running (zombies count as gone)?
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .next()
                .unwrap_or("");
            state != "Z" && state != "X"
        }
        Err(_) => false,
    }
}

/// Argv lines for a snapshot, tool version probes left out (they vary by machine);
/// local ports are masked by the snapshot's insta filter.
pub fn normalize(lines: &[String]) -> String {
    // Commands slipway runs at the same time (health's two reads, the smoke checks,
    // the NodePort check) start in any order: each run of them is sorted.
    let concurrent = |l: &str| {
        l.contains("get deployments,statefulsets,daemonsets --output")
            || l.contains(
                "get deployments,statefulsets,daemonsets,jobs,horizontalpodautoscalers --output",
            )
            || l.contains("get pods --output json")
            || l.contains(" port-forward ")
            || l.contains(" wait ")
            || l.contains("get --raw")
            || l.contains("get services --output json")
            || l.contains("get services,endpointslices,replicasets --output json")
    };
    let mut out: Vec<String> = vec![];
    let mut run: Vec<String> = vec![];
    for l in lines.iter().filter(|l| !l.contains(" version")) {
        if concurrent(l) {
            run.push(l.clone());
            continue;
        }
        run.sort();
        out.append(&mut run);
        out.push(l.clone());
    }
    run.sort();
    out.append(&mut run);
    out.join("\n")
}

/// Snapshot argv lines with run-time values (a free local port) masked.
#[macro_export]
macro_rules! assert_argv {
    ($text:expr) => {
        insta::with_settings!({filters => vec![
            (r"\b\d{4,5}:(\d+)\b", "LOCALPORT:$1"),
            // Secrets' keyed digests in helm's description (the key is random).
            (r"\b([a-z0-9.-]+)=[0-9a-f]{16}\b", "$1=<keyed-digest>"),
            // minikube's docker driver needs --force as root only.
            (r"(minikube start [^\n]*) --force( |\n|$)", "$1$2"),
        ]}, {
            insta::assert_snapshot!($text);
        })
    };
}

/// Tier-3 tests that run a real cluster take turns: two at once on a 2-core machine
/// would turn timing into noise (and each test's timeouts are set for one).
pub fn real_cluster_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A `during_rollout` check's failure as the fake `kubectl proxy` causes it: requests
/// failed while the releases upgraded, answered 503 by a Service with no endpoint.
pub fn assert_upgrade_requests_failed_with_503(stderr: &str) {
    assert!(
        stderr.contains("requests failed while the releases upgraded"),
        "{stderr}"
    );
    assert!(
        stderr.contains("status 503 (no endpoints available for service)"),
        "{stderr}"
    );
}
