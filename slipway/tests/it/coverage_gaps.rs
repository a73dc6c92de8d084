//! Tier 2: behaviour no other test reached: `rollback_on_failure`, `on_pending =
//! "rollback"` on a first install, a rollback that fails (exit 19), Ctrl-C while
//! waiting for the lock, while provisioning, while building the node image and during
//! helm rollback or uninstall, a helm release downloaded and unpacked, the registry
//! guard, `dev` with and without `--cleanup`, `ci` and `completions`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::provision::{go_arch, node_recipe_hash};
use crate::signals::{end_within, sigint, spawn};
use crate::support::{alive, repo, Out, Sandbox};

fn ok(s: &Sandbox, args: &[&str]) -> Out {
    let o = s.run(args);
    assert_eq!(o.code, 0, "`{}` failed:\n{}", args.join(" "), o.all());
    o
}

/// Append `text` to the fixture's pipeline.toml.
fn append(s: &Sandbox, text: &str) {
    s.append_config(text);
}

/// Set a key of the fixture's `[releases.web]`.
fn release_key(s: &Sandbox, line: &str) {
    let cfg = s.project.join("pipeline.toml");
    let t = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        t.replacen("[releases.web]\n", &format!("[releases.web]\n{line}\n"), 1),
    )
    .unwrap();
}

/// Pods of web that never become ready (their image was never loaded).
fn pods_never_ready(s: &Sandbox) {
    let never = json!({"items": [{"metadata": {"name": "web-0", "labels": {"app.kubernetes.io/instance": "web"}}, "spec": {"containers": [{"name": "web", "image": "web:missing"}]},
        "status": {"phase": "Pending", "conditions": [{"type": "Ready", "status": "False"}],
        "containerStatuses": [{"name": "web", "restartCount": 0, "state": {"waiting": {"reason": "ErrImageNeverPull", "message": "Container image \"web:missing\" is not present with pull policy of Never"}}}]}}]});
    s.rule(json!({"tool": "kubectl", "match": ["get", "pods"], "stdout": never.to_string()}));
}

fn lines_after(s: &Sandbox, n: usize) -> Vec<String> {
    s.argv_lines().split_off(n)
}

/// A failed rollout with `rollback_on_failure`: helm rolls the release back to the
/// revision before, the run still fails with the rollout's code and says so.
#[test]
fn rollback_on_failure_rolls_a_failed_rollout_back() {
    let s = Sandbox::new();
    release_key(&s, "rollback_on_failure = true");
    ok(&s, &["deploy-local"]);
    let before = s.argv_lines().len();
    pods_never_ready(&s);
    let o = s.run(&["deploy-local", "--force"]);
    assert_eq!(o.code, 16, "{}", o.all());
    assert!(
        o.stderr.contains(
            "rolled back with `helm rollback web --kube-context kind-fx --namespace apps"
        ),
        "{}",
        o.stderr
    );
    let lines = lines_after(&s, before);
    let up = lines.iter().position(|l| l.starts_with("helm upgrade"));
    let rb: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("helm rollback web"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(rb.len(), 1, "{lines:?}");
    assert!(up.is_some_and(|u| u < rb[0]), "{lines:?}");
    // helm recorded the rollback to revision 1 (the fake's world).
    let world: Value =
        serde_json::from_str(&std::fs::read_to_string(s.state.join("state.json")).unwrap())
            .unwrap();
    assert_eq!(
        world["releases"]["apps/web"]["description"], "Rollback to 1",
        "{world}"
    );

    // Without the setting nothing is rolled back.
    let s = Sandbox::new();
    ok(&s, &["deploy-local"]);
    pods_never_ready(&s);
    let o = s.run(&["deploy-local", "--force"]);
    assert_eq!(o.code, 16, "{}", o.all());
    assert!(!s.ran("helm rollback"), "{:?}", s.argv_lines());
}

/// `rollback_on_failure` on a first install: there is no earlier revision, helm's
/// rollback fails, and the run says both (with the rollout's exit code).
#[test]
fn rollback_on_failure_of_a_first_install_reports_the_failed_rollback() {
    let s = Sandbox::new();
    release_key(&s, "rollback_on_failure = true");
    pods_never_ready(&s);
    let o = s.run(&["deploy-local"]);
    assert_eq!(o.code, 16, "{}", o.all());
    assert!(o.stderr.contains("the rollback failed too"), "{}", o.stderr);
    assert!(s.ran("helm rollback web"), "{:?}", s.argv_lines());
}

/// `rollback` with no earlier revision: helm refuses, and slipway exits 19.
#[test]
fn a_failed_rollback_exits_19() {
    let s = Sandbox::new();
    ok(&s, &["deploy-local"]);
    let before = s.argv_lines().len();
    let o = s.run(&["rollback"]);
    assert_eq!(o.code, 19, "{}", o.all());
    assert!(o.stderr.contains("[rollback]"), "{}", o.stderr);
    assert!(o.stderr.contains("has no 0 version"), "{}", o.stderr);
    // Nothing after the failed rollback ran (no rollout, health or smoke).
    let after = lines_after(&s, before);
    let rb = after
        .iter()
        .position(|l| l.starts_with("helm rollback"))
        .expect("helm rollback ran");
    assert!(
        !after[rb + 1..]
            .iter()
            .any(|l| l.contains("daemonsets,jobs") || l.contains("port-forward")),
        "{after:?}"
    );
}

/// `on_pending = "rollback"` on a first install stuck at revision 1: there is nothing
/// to roll back to, so slipway does not try; it says how to clear it (uninstall).
#[test]
fn on_pending_rollback_of_a_first_install_says_to_uninstall() {
    let s = Sandbox::new();
    ok(&s, &["deploy-local"]);
    let before = s.argv_lines().len();
    let pending = json!({"name": "web", "version": 1, "info": {"status": "pending-install", "description": "Install"}}).to_string();
    s.rule(json!({"tool": "helm", "match": ["status"], "stdout": pending, "times": 1}));
    let o = s.run(&["deploy-local", "--profile", "heal", "--force"]);
    assert_eq!(o.code, 15, "{}", o.all());
    assert!(
        o.stderr.contains("stuck in pending-install at revision 1"),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr
            .contains("helm uninstall web --kube-context kind-fx --namespace apps"),
        "{}",
        o.stderr
    );
    let lines = lines_after(&s, before);
    assert!(
        !lines
            .iter()
            .any(|l| l.starts_with("helm rollback") || l.starts_with("helm upgrade")),
        "{lines:?}"
    );
}

// ------------------------------------------------------------------ Ctrl-C

fn wait_for(s: &Sandbox, needle: &str) {
    wait_for_more(s, needle, 0);
}

/// Wait until `needle` has run more than `before` times.
fn wait_for_more(s: &Sandbox, needle: &str, before: usize) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while s.count(needle) <= before {
        assert!(Instant::now() < deadline, "`{needle}` never started");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGINT, then the exit code and stderr; the run must end within 30 s.
fn interrupt(mut c: Child) -> (Option<i32>, String) {
    sigint(&c);
    let status = end_within(&mut c, Duration::from_secs(30), "Ctrl-C");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut c.stderr.take().unwrap(), &mut err).unwrap();
    (status.code(), err)
}

/// Ctrl-C in a stage: exit 130, the stage named, the hung command gone and nothing of
/// `later` run.
fn ctrl_c_stops(s: &Sandbox, args: &[&str], hang: &str, stage: &str, later: &[&str]) {
    let c = spawn(s, args);
    wait_for(s, hang);
    let (code, err) = interrupt(c);
    assert_eq!(code, Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert!(err.contains(&format!("[{stage}]")), "{err}");
    for l in later {
        assert!(!s.ran(l), "`{l}` ran after Ctrl-C: {:?}", s.argv_lines());
    }
    for pid in s.pids_of(hang) {
        assert!(!alive(pid), "`{hang}` (pid {pid}) outlived slipway");
    }
}

/// Ctrl-C while waiting for another run's lock stops waiting: exit 130, nothing of
/// the waiting run ran, and the first run is unaffected.
#[test]
fn ctrl_c_while_waiting_for_the_lock() {
    let s = Sandbox::new();
    ok(&s, &["deploy-local"]);
    // The first run holds the lock while its image build waits for the test.
    let gate = s.dir.path().join("first-may-go-on");
    s.rule(json!({"tool": "docker", "match": ["build"], "until": gate, "times": 1, "then_simulate": true}));
    let before = s.count("docker build");
    let first = s
        .command(&["deploy-local", "--force"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_more(&s, "docker build", before);
    let mut second = s
        .command(&["deploy-local"])
        .env("FAKE_RUN", "second")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(second.stderr.take().unwrap()).lines();
    let mut said = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        said += &line;
        said.push('\n');
        if line.contains("waiting for it to finish") {
            break;
        }
    }
    assert!(said.contains("waiting for it to finish"), "{said}");
    sigint(&second);
    let t = Instant::now();
    let status = second.wait().unwrap();
    for line in lines {
        said += &line.unwrap();
        said.push('\n');
    }
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    assert_eq!(status.code(), Some(130), "{said}");
    assert!(said.contains("interrupted"), "{said}");
    let by_second: Vec<Value> = s
        .calls()
        .into_iter()
        .filter(|c| c["env"]["FAKE_RUN"] == "second")
        .collect();
    assert!(by_second.is_empty(), "the waiting run ran {by_second:?}");
    std::fs::write(&gate, "").unwrap();
    let first = first.wait_with_output().unwrap();
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
}

/// Ctrl-C while a missing tool is being built (go) or downloaded (curl).
#[test]
fn ctrl_c_while_provisioning_a_tool() {
    let s = Sandbox::new();
    s.remove_tool("kind");
    s.add_fake("go");
    s.rule(json!({"tool": "go", "match": ["install"], "sleep": 120}));
    ctrl_c_stops(
        &s,
        &["deploy-local"],
        "go install",
        "preflight",
        &["kind create", "docker build"],
    );

    let mut s = Sandbox::new();
    s.remove_tool("helm");
    // A download happens only for a pinned digest (slipway's source pins none for
    // this helm): the download hangs long before its digest is compared.
    s.append_config(&format!(
        "\n[tools.sha256]\nhelm = \"{}\"\n",
        "0".repeat(64)
    ));
    let dir = s.dir.path().join("downloads");
    std::fs::create_dir_all(&dir).unwrap();
    s.set_env("FAKE_DOWNLOAD_DIR", dir.to_str().unwrap());
    s.rule(json!({"tool": "curl", "sleep": 120}));
    ctrl_c_stops(
        &s,
        &["deploy-local"],
        "curl",
        "preflight",
        &["kind create", "go "],
    );
}

/// Ctrl-C while the offline node image is being built (the recipe's docker call
/// hangs): the recipe's whole process group goes, and no cluster is created.
#[test]
fn ctrl_c_while_building_the_node_image() {
    let s = Sandbox::new();
    // The packages the recipe needs are installed (slipway installs none unasked).
    s.add_fake("debootstrap");
    s.rule(
        json!({"tool": "docker", "match": ["image", "inspect", "kindest/node"], "exit": 1,
        "stderr": "Error response from daemon: No such image: kindest/node\n"}),
    );
    s.rule(
        json!({"tool": "docker", "match": ["dev.slipway.recipe"], "sleep": 120,
        "stdout": format!("{}\n", node_recipe_hash())}),
    );
    ctrl_c_stops(
        &s,
        &["deploy-local"],
        "dev.slipway.recipe",
        "cluster",
        &["kind create"],
    );
}

/// Ctrl-C during `helm rollback` (the rollback command) and `helm uninstall` (down):
/// helm gets SIGINT first (time to record the release), then slipway exits 130.
#[test]
fn ctrl_c_during_helm_rollback_and_uninstall() {
    for (args, hang, stage, later) in [
        (
            &["rollback"][..],
            "helm rollback",
            "rollback",
            &["port-forward"][..],
        ),
        (
            &["down"][..],
            "helm uninstall",
            "down",
            &["delete secret"][..],
        ),
    ] {
        let s = Sandbox::new();
        ok(&s, &["deploy-local"]);
        ok(&s, &["deploy-local", "--force"]);
        let before = s.count("port-forward");
        let verb = hang.strip_prefix("helm ").unwrap();
        s.rule(json!({"tool": "helm", "match": [verb], "sleep": 120}));
        let c = spawn(&s, args);
        wait_for(&s, hang);
        let (code, err) = interrupt(c);
        assert_eq!(code, Some(130), "{args:?}: {err}");
        assert!(err.contains(&format!("[{stage}]")), "{args:?}: {err}");
        assert!(
            s.calls()
                .iter()
                .any(|c| c["tool"] == "helm" && c["signal"] == "SIGINT"),
            "{args:?}: helm got SIGINT"
        );
        for l in later {
            let n = if *l == "port-forward" { before } else { 0 };
            assert_eq!(s.count(l), n, "{args:?}: `{l}` ran after Ctrl-C");
        }
        for pid in s.pids_of(hang) {
            assert!(!alive(pid), "{args:?}: helm (pid {pid}) outlived slipway");
        }
    }
}

// ------------------------------------------------------------------ provisioning

/// helm's official release is a tarball: downloaded, checksum verified, unpacked, and
/// its `linux-ARCH/helm` installed into the cache and used for every helm call.
#[test]
fn helm_is_downloaded_unpacked_and_used() {
    let mut s = Sandbox::new();
    s.remove_tool("helm");
    let arch = go_arch();
    let dir = s.dir.path().join("downloads");
    let member = dir.join(format!("linux-{arch}"));
    std::fs::create_dir_all(&member).unwrap();
    std::fs::copy(
        repo().join("slipway/tests/it/support/fake_tool.py"),
        member.join("helm"),
    )
    .unwrap();
    let tarball = format!("helm-v4.3.1-linux-{arch}.tar.gz");
    let st = std::process::Command::new("tar")
        .args(["-czf", &tarball, &format!("linux-{arch}/helm")])
        .current_dir(&dir)
        .status()
        .unwrap();
    assert!(st.success());
    let sha = {
        use sha2::Digest;
        format!(
            "{:x}",
            sha2::Sha256::digest(std::fs::read(dir.join(&tarball)).unwrap())
        )
    };
    // Only a digest pinned in slipway's source or in `[tools.sha256]` is trusted.
    s.append_config(&format!("\n[tools.sha256]\nhelm = \"{sha}\"\n"));
    s.set_env("FAKE_DOWNLOAD_DIR", dir.to_str().unwrap());
    let o = s.run(&["--output", "json", "deploy-local"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let detail = o
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["event"] == "check" && e["name"] == "helm")
        .map(|e| e["detail"].as_str().unwrap_or("").to_string())
        .unwrap_or_default();
    assert!(
        detail.contains("downloaded, SHA-256 verified"),
        "{detail}\n{}",
        o.stdout
    );
    let cached = s
        .dir
        .path()
        .join(".cache/slipway/toolchain/bin/helm-v4.3.1");
    assert!(cached.is_file());
    let calls = s.calls();
    let fetched: Vec<String> = calls
        .iter()
        .filter(|c| c["tool"] == "curl")
        .map(|c| c["argv"].as_array().unwrap().last().unwrap().to_string())
        .collect();
    assert!(
        fetched.iter().any(|u| u.contains(&format!(
            "https://get.helm.sh/helm-v4.3.1-linux-{arch}.tar.gz\""
        ))),
        "{fetched:?}"
    );
    let upgrades: Vec<&Value> = calls
        .iter()
        .filter(|c| c["tool"] == "helm" && c["argv"][0] == "upgrade")
        .collect();
    assert_eq!(upgrades.len(), 1);
    assert_eq!(upgrades[0]["exe"], cached.to_str().unwrap());
}

// ------------------------------------------------------------------ registry guard

/// kind with `delivery = "registry"`: a cluster that advertises another registry
/// (KEP-1755) stops the load stage before anything is pushed, naming both and the fix.
#[test]
fn a_cluster_advertising_another_registry_stops_the_load() {
    let s = Sandbox::new();
    append(&s, "\n[cluster.kind]\ndelivery = \"registry\"\n");
    s.rule(json!({"tool": "kubectl", "match": ["configmap/local-registry-hosting"],
        "stdout": "host: \"localhost:5999\"\nhelp: \"https://kind.sigs.k8s.io/docs/user/local-registry/\"\n"}));
    let o = s.run(&["deploy-local"]);
    assert_eq!(o.code, 13, "{}", o.all());
    assert!(
        o.stderr
            .contains("the cluster advertises registry localhost:5999 (ConfigMap kube-public/local-registry-hosting), not localhost:5001"),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr
            .contains("cluster.kind.registry = \"localhost:5999\""),
        "{}",
        o.stderr
    );
    assert!(!s.ran("docker push"), "{:?}", s.argv_lines());
    assert!(!s.ran("helm upgrade"), "{:?}", s.argv_lines());
}

// ------------------------------------------------------------------ dev, ci, completions

/// Spawn `args` with stdout (JSON events) read into a buffer by a thread.
pub(crate) fn spawn_reading(s: &Sandbox, args: &[&str]) -> (Child, Arc<Mutex<String>>) {
    let mut c = s
        .command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let buf = Arc::new(Mutex::new(String::new()));
    let out = c.stdout.take().unwrap();
    let b = Arc::clone(&buf);
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            let mut b = b.lock().unwrap();
            b.push_str(&line);
            b.push('\n');
        }
    });
    (c, buf)
}

pub(crate) fn wait_in(buf: &Arc<Mutex<String>>, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while !buf.lock().unwrap().contains(needle) {
        assert!(
            Instant::now() < deadline,
            "never printed {needle:?}:\n{}",
            buf.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `dev` deploys, then watches; Ctrl-C leaves the releases as they are. With
/// `--cleanup` the same Ctrl-C uninstalls them (and the secrets slipway made).
#[test]
fn dev_cleanup_uninstalls_on_ctrl_c_and_plain_dev_does_not() {
    for cleanup in [false, true] {
        let s = Sandbox::new();
        let mut args = vec!["dev", "--output", "json"];
        if cleanup {
            args.push("--cleanup");
        }
        let (mut c, buf) = spawn_reading(&s, &args);
        wait_in(&buf, "Ctrl-C to stop");
        assert!(s.ran("helm upgrade --install web"));
        sigint(&c);
        let t = Instant::now();
        let status = loop {
            if let Some(st) = c.try_wait().unwrap() {
                break st;
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "dev did not stop:\n{}",
                buf.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(&mut c.stderr.take().unwrap(), &mut err).unwrap();
        assert_eq!(status.code(), Some(0), "cleanup {cleanup}: {err}");
        // The reader thread has the rest once the pipe closes.
        std::thread::sleep(Duration::from_millis(200));
        let out = buf.lock().unwrap().clone();
        if cleanup {
            assert!(
                out.contains("--cleanup: uninstalling the releases"),
                "{out}"
            );
            assert!(
                s.ran("helm uninstall web --kube-context kind-fx --namespace apps"),
                "{:?}",
                s.argv_lines()
            );
            assert!(s.ran("delete secret"), "{:?}", s.argv_lines());
        } else {
            assert!(
                out.contains("the cluster and releases stay as they are"),
                "{out}"
            );
            assert!(!s.ran("helm uninstall"), "{:?}", s.argv_lines());
        }
        for pid in s.port_forward_pids() {
            assert!(!alive(pid), "dev's port-forward (pid {pid}) outlived it");
        }
    }
}

/// `ci` is deploy-local with the `ci` profile (unless one is given), in plain
/// timestamped lines.
#[test]
fn ci_runs_deploy_local_with_the_ci_profile() {
    let s = Sandbox::new();
    append(
        &s,
        "\n[profiles.ci]\nreleases.web.set.replicaCount = \"3\"\n",
    );
    let o = ok(&s, &["ci"]);
    assert!(
        o.stderr.contains("[run] deploy-local fixture: profile ci,"),
        "{}",
        o.stderr
    );
    for stage in crate::fake_tools::STAGES {
        assert!(
            o.stderr.contains(&format!("[{stage}] finished")),
            "{stage}:\n{}",
            o.stderr
        );
    }
    let up = s
        .argv_lines()
        .into_iter()
        .rfind(|l| l.starts_with("helm upgrade"))
        .unwrap();
    assert!(up.contains("--set replicaCount=3"), "{up}");
    // Plain lines, each with its UTC time stamp (2026-12-04T19:43:38Z), no spinner:
    // what CI logs get.
    for line in o.stderr.lines().filter(|l| l.contains("] finished")) {
        let b = line.as_bytes();
        assert!(
            b.len() > 21 && b[4] == b'-' && b[10] == b'T' && &b[19..21] == b"Z ",
            "{line}"
        );
    }
    // A profile given wins.
    let s2 = Sandbox::new();
    append(
        &s2,
        "\n[profiles.ci]\nreleases.web.set.replicaCount = \"3\"\n",
    );
    let o = ok(&s2, &["ci", "--profile", "local-kind"]);
    assert!(o.stderr.contains("profile local-kind,"), "{}", o.stderr);
    let up = s2
        .argv_lines()
        .into_iter()
        .rfind(|l| l.starts_with("helm upgrade"))
        .unwrap();
    assert!(up.contains("--set replicaCount=2"), "{up}");
}

/// `completions SHELL` prints a completion script for the binary it runs as, naming
/// its subcommands; an unknown shell is a usage error.
#[test]
fn completions_name_the_binary_and_its_commands() {
    let s = Sandbox::new();
    for (shell, marker) in [
        ("bash", "complete -F _slipway"),
        ("zsh", "#compdef slipway"),
        ("fish", "complete -c slipway"),
    ] {
        let o = ok(&s, &["completions", shell]);
        assert!(o.stdout.contains(marker), "{shell}:\n{}", o.stdout);
        for cmd in ["deploy-local", "rollback", "completions"] {
            assert!(o.stdout.contains(cmd), "{shell}: {cmd}");
        }
        assert!(o.stderr.is_empty(), "{shell}: {}", o.stderr);
    }
    let o = s.run(&["completions", "tcsh"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(s.calls().is_empty(), "completions ran a tool");
}
