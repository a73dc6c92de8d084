//! Tier 3, end to end: slipway against a real kind cluster on this machine.
//!
//! 1. (.ci/run) Docker engine and the toolchain, including the offline node image
//! 2. deploy-local creates the cluster, builds and loads the sample, installs the
//!    chart, waits for the rollout and passes the smoke suite over a real port-forward
//! 3. a rerun with nothing changed skips build, load and the helm upgrade
//! 4. a config change rolls the pods while a client polls the Service through its
//!    NodePort, and not one request fails
//! 5. rollback returns to the previous revision and passes rollout, health and smoke
//! 6. an image that was never loaded fails the rollout stage within its timeout with
//!    the pod's reason and a hint
//!    then a failure corpus (crash loop, missing Secret key, unschedulable pod, a pod
//!    that never turns ready): each cause named in the first error line, fast, with
//!    the container's logs or the pod's events, and a diagnosis bundle
//! 7. a field changed with kubectl (`set env`) makes Helm 4 stop at a field-manager
//!    conflict without `force_conflicts`, and the default redeploys through it
//! 8. the Helm 3 leg: the same cycle (deploy, no-change rerun, change, rollback,
//!    drift and redeploy, down) with Helm 3 first on PATH
//! 9. down --cluster leaves no kind containers and no port-forwards
//!
//! Needs docker, kind, helm, kubectl and the node image (scripts/kind-node-image.sh).
//! Outside CI a missing piece skips the test; in CI it fails. Timings go to stderr
//! and to target/e2e-report.txt.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const NODE_PORT: u16 = 18091;
const CLUSTER: &str = "slipway-e2e";

use crate::support::repo;

fn profile() -> String {
    std::env::var("SLIPWAY_E2E_PROFILE").unwrap_or_else(|_| "e2e".into())
}

fn node_image() -> String {
    std::env::var("SLIPWAY_KIND_NODE_IMAGE")
        .unwrap_or_else(|_| "slipway-local/kind-node:v1.34.4".into())
}

pub(crate) fn ready() -> Result<(), String> {
    for t in ["docker", "kind", "helm", "kubectl"] {
        which::which(t).map_err(|_| format!("{t} is not on PATH"))?;
    }
    let docker = Command::new("docker")
        .arg("info")
        .output()
        .map_err(|e| e.to_string())?;
    if !docker.status.success() {
        return Err("the Docker daemon does not answer".into());
    }
    if profile() == "e2e" {
        let img = Command::new("docker")
            .args(["image", "inspect", &node_image()])
            .output()
            .map_err(|e| e.to_string())?;
        if !img.status.success() {
            return Err(format!(
                "node image {} is missing: run scripts/kind-node-image.sh",
                node_image()
            ));
        }
    }
    Ok(())
}

pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) took: Duration,
}

fn slipway(args: &[&str], env: &[(&str, &str)]) -> Run {
    slipway_in(&profile(), args, env)
}

pub(crate) fn slipway_in(profile: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let started = Instant::now();
    let mut c = Command::new(env!("CARGO_BIN_EXE_slipway"));
    c.args(args)
        .args(["--profile", profile])
        .current_dir(repo())
        .env("CI", "1")
        .env("CARGO_TARGET_DIR", repo().join("target/nested"))
        .env("SAMPLE_API_TOKEN", "e2e-token-value-1234");
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    let r = Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        took: started.elapsed(),
    };
    eprintln!(
        "$ cargo xtask {} --profile {profile} -> exit {} in {:.1}s",
        args.join(" "),
        r.code,
        r.took.as_secs_f64()
    );
    r
}

/// The directory holding Helm 3 for the compatibility leg.
fn helm3_dir() -> std::path::PathBuf {
    std::env::var_os("SLIPWAY_HELM3_DIR")
        .map(Into::into)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/slipway/toolchain/helm3")
        })
}

/// PATH with Helm 3 first.
fn helm3_path() -> String {
    format!(
        "{}:{}",
        helm3_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// kubectl against the e2e cluster in namespace `ns`, whatever it says.
pub(crate) fn kubectl_in(ns: &str, args: &[&str]) -> std::process::Output {
    Command::new("kubectl")
        .args(["--context", &format!("kind-{CLUSTER}"), "-n", ns])
        .args(args)
        .output()
        .unwrap()
}

/// kubectl against the e2e cluster; its stdout.
fn kubectl(args: &[&str]) -> String {
    let o = Command::new("kubectl")
        .args([
            "--context",
            &format!("kind-{CLUSTER}"),
            "-n",
            "slipway-sample",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "kubectl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn deployed_env(name: &str) -> String {
    kubectl(&[
        "get",
        "deployment/sample",
        "-o",
        &format!("jsonpath={{.spec.template.spec.containers[0].env[?(@.name==\"{name}\")].value}}"),
    ])
}

/// Change a field helm owns with kubectl (and restart the pods), as a user debugging
/// by hand does; the chart's value before.
fn drift() -> String {
    let chart_value = deployed_env("SHUTDOWN_DELAY_SECONDS");
    kubectl(&[
        "set",
        "env",
        "deployment/sample",
        "SHUTDOWN_DELAY_SECONDS=1",
    ]);
    kubectl(&["rollout", "restart", "deployment/sample"]);
    kubectl(&["rollout", "status", "deployment/sample", "--timeout=120s"]);
    assert_eq!(deployed_env("SHUTDOWN_DELAY_SECONDS"), "1");
    chart_value
}

/// A redeploy with a changed value after [`drift`] must succeed.
/// Helm 4 (server-side apply, forcing conflicts) and Helm 3 (three-way merge against
/// the live object) both take the field back.
fn redeploy_after_drift(path: Option<&str>, greeting: &str, chart_value: &str) -> Run {
    let mut env = vec![("SAMPLE_GREETING", greeting)];
    if let Some(p) = path {
        env.push(("PATH", p));
    }
    let r = slipway(&["deploy-local"], &env);
    expect_ok(&r, "redeploy after kubectl changed the deployment");
    assert_eq!(
        deployed_env("SHUTDOWN_DELAY_SECONDS"),
        chart_value,
        "helm puts the chart's value back"
    );
    r
}

/// `rollback`, then the previous greeting is served again.
fn rollback_to(path: Option<&str>, greeting: &str) -> Run {
    let env: Vec<(&str, &str)> = path.map(|p| vec![("PATH", p)]).unwrap_or_default();
    let r = slipway(&["rollback"], &env);
    expect_ok(&r, "rollback");
    assert!(r.stderr.contains("[smoke] finished"), "{}", r.stderr);
    let cm = kubectl(&["get", "configmap/sample", "-o", "jsonpath={.data}"]);
    assert!(cm.contains(greeting), "rolled back to {greeting:?}: {cm}");
    r
}

/// The line an error block starts with (it names the cause).
pub(crate) fn first_error_line(r: &Run) -> String {
    r.stderr
        .lines()
        .find(|l| l.contains("error["))
        .unwrap_or_default()
        .to_string()
}

pub(crate) fn expect_ok(r: &Run, what: &str) {
    assert_eq!(r.code, 0, "{what} failed:\n{}\n{}", r.stdout, r.stderr);
}

/// GET on a new connection each time (so a request cannot ride a dying keep-alive).
pub(crate) fn get(port: u16, path: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2))
        .map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(3)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: e2e\r\nconnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).map_err(|e| e.to_string())?;
    let status = buf
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad response: {buf:?}"))?;
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// All five smoke checks ran in the smoke stage, and passed.
/// The smoke suite passed, including the check that the sample's NodePort answers
/// from this machine; that check's detail (its URL).
pub(crate) fn assert_smoke_passed(ev: &[serde_json::Value]) -> String {
    let checks: Vec<_> = ev
        .iter()
        .filter(|e| e["event"] == "check" && e["stage"] == "smoke")
        .collect();
    assert!(
        checks.len() >= 6 && checks.iter().all(|c| c["ok"] == true),
        "smoke checks: {checks:?}"
    );
    checks
        .iter()
        .find(|c| c["name"] == "url sample:80")
        .and_then(|c| c["detail"].as_str())
        .unwrap_or_else(|| panic!("no NodePort check: {checks:?}"))
        .to_string()
}

pub(crate) fn events(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn kind_containers() -> String {
    let o = Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            &format!("label=io.x-k8s.kind.cluster={CLUSTER}"),
            "--format",
            "{{.Names}}",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn port_forwards() -> Vec<String> {
    let o = Command::new("ps")
        .args(["-eo", "pid,args"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.contains("port-forward") && l.contains(&format!("kind-{CLUSTER}")))
        .map(String::from)
        .collect()
}

#[test]
#[cfg_attr(
    not(slipway_ci),
    ignore = "tier 3: needs Docker, kind, helm, kubectl and the node image; runs in CI (CI=true) or with --ignored"
)]
fn deploy_local_end_to_end_on_a_real_kind_cluster() {
    if let Err(why) = ready() {
        panic!("e2e prerequisites missing: {why} (.ci/run provides them)");
    }
    // One real cluster at a time on this 2-core machine (see e2e_minikube.rs).
    let _one = crate::support::real_cluster_lock();
    let mut report = vec![];
    // Start from nothing (a leftover from an interrupted run is removed first).
    let _ = slipway(&["down", "--cluster"], &[]);

    // 2. The whole pipeline, cluster included.
    let first = slipway(&["deploy-local", "--output", "json"], &[]);
    expect_ok(&first, "first deploy-local");
    let ev = events(&first.stdout);
    assert_smoke_passed(&ev);
    report.push(format!(
        "first deploy-local (cluster create included): {:.1}s",
        first.took.as_secs_f64()
    ));
    auto_delivery(&ev, &mut report);
    // kube-proxy programs the NodePort asynchronously: give it a moment.
    let end = Instant::now() + Duration::from_secs(60);
    let mut last = get(NODE_PORT, "/version");
    while !matches!(last, Ok((200, _))) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(500));
        last = get(NODE_PORT, "/version");
    }
    let (status, body) = last.expect("the NodePort answers");
    assert_eq!(status, 200, "{body}");
    in_cluster_checks(&mut report);

    // 3. Nothing changed: nothing rebuilt, reloaded or upgraded.
    let second = slipway(&["deploy-local", "--output", "json"], &[]);
    expect_ok(&second, "second deploy-local");
    let ev = events(&second.stdout);
    let skipped: Vec<&str> = ev
        .iter()
        .filter(|e| e["event"] == "step_skipped")
        .filter_map(|e| e["step"].as_str())
        .collect();
    for step in [
        "cluster/slipway-e2e",
        "pre-build/sample",
        "build/sample",
        "load/sample",
        "helm/sample",
    ] {
        assert!(
            skipped.contains(&step),
            "{step} was not skipped on a no-change rerun: {skipped:?}"
        );
    }
    let ran: Vec<String> = ev
        .iter()
        .filter(|e| e["event"] == "command")
        .filter_map(|e| e["command"].as_str().map(String::from))
        .collect();
    assert!(
        !ran.iter().any(|c| c.starts_with("docker build")
            || c.starts_with("kind load")
            || c.starts_with("docker push")
            || c.contains(" ctr ")
            || c.starts_with("helm upgrade")),
        "{ran:?}"
    );
    report.push(format!(
        "no-change deploy-local: {:.1}s ({:.1}x faster than the first)",
        second.took.as_secs_f64(),
        first.took.as_secs_f64() / second.took.as_secs_f64()
    ));

    // `logs`: the containers' own output, prefixed with pod and container.
    let logs = slipway(&["logs"], &[]);
    expect_ok(&logs, "logs");
    assert!(
        logs.stdout.contains("[pod/sample-") && logs.stdout.contains("listening on"),
        "{}",
        logs.stdout
    );

    // 4. A config change rolls the pods; a client polling the NodePort sees no failure.
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let (mut ok, mut failed, mut samples) = (0u32, Vec::new(), 0u32);
            // Bounded: stops when told, or after 10 minutes / 20k requests at most.
            let end = Instant::now() + Duration::from_secs(600);
            while !stop.load(Ordering::SeqCst) && Instant::now() < end && samples < 20_000 {
                samples += 1;
                // A client's request (not /readyz, which is meant to turn 503 while a
                // terminating pod drains, so that it leaves the Service).
                match get(NODE_PORT, "/version") {
                    Ok((200, _)) => ok += 1,
                    Ok((s, b)) => failed.push(format!("{s}: {}", b.trim())),
                    Err(e) => failed.push(e),
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            (ok, failed)
        })
    };
    std::thread::sleep(Duration::from_secs(2));
    // The same profile plus a `during_rollout` check: slipway's own count.
    let third = slipway_in(
        "e2e-rollout",
        &["deploy-local"],
        &[("SAMPLE_GREETING", "hello after a rolling update")],
    );
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::SeqCst);
    let (ok, failed) = poller.join().unwrap();
    expect_ok(&third, "redeploy with a changed config value");
    assert!(
        third.stderr.contains("check echo: passed"),
        "{}",
        third.stderr
    );
    assert!(ok > 50, "the poller barely ran ({ok} requests)");
    assert!(
        failed.is_empty(),
        "{} of {} requests failed during the rolling update: {:?}",
        failed.len(),
        ok as usize + failed.len(),
        &failed[..failed.len().min(5)]
    );
    let own = third
        .stderr
        .lines()
        .find(|l| l.contains("check steady during the upgrade: passed"))
        .unwrap_or_else(|| panic!("no during-the-upgrade result:\n{}", third.stderr));
    assert!(
        own.contains("through NodePort 30080 from this machine") && own.contains(", 0 failed"),
        "{own}"
    );
    report.push(format!(
        "rolling update (config change): {:.1}s, {ok} requests of a client through the NodePort, 0 failed; slipway's own: {}",
        third.took.as_secs_f64(),
        own.split("during the upgrade (").nth(1).unwrap_or(own)
    ));

    // 5. rollback to the revision before (the default greeting).
    let rb = rollback_to(None, "hello from slipway");
    report.push(format!(
        "helm 4: rollback + rollout + health + smoke: {:.1}s",
        rb.took.as_secs_f64()
    ));

    // 6. A tag that never reached the node: the rollout stage fails in time, with the reason.
    let broken = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args(["deploy-local", "--profile", "e2e-broken"])
        .current_dir(repo())
        .env("CI", "1")
        .env("CARGO_TARGET_DIR", repo().join("target/nested"))
        .env("SAMPLE_API_TOKEN", "e2e-token-value-1234")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&broken.stderr);
    assert_eq!(
        broken.status.code(),
        Some(16),
        "expected the rollout stage to fail:\n{err}"
    );
    assert!(
        err.contains("ErrImageNeverPull") || err.contains("ImagePullBackOff"),
        "no pod reason:\n{err}"
    );
    assert!(
        err.contains("hint:") && err.contains("never loaded"),
        "no hint:\n{err}"
    );
    report.push("broken image: rollout stage failed with ErrImageNeverPull and a hint".into());

    // 6b. The failure corpus: each cause named in the first error line, the
    // unrecoverable ones within 30 s of the pod being created, with evidence.
    for (profile, rule, cause, evidence, max) in [
        (
            "e2e-crash",
            "crash-loop",
            "crashed 2 times",
            "invalid LISTEN_ADDR/PORT",
            45,
        ),
        (
            "e2e-missing-key",
            "config-error",
            "couldn't find key NO_SUCH_KEY",
            "events of",
            30,
        ),
        (
            "e2e-unschedulable",
            "unschedulable",
            "didn't match Pod's node affinity/selector",
            "events of",
            40,
        ),
    ] {
        let r = slipway_in(profile, &["deploy-local"], &[]);
        let first = first_error_line(&r);
        assert_eq!(
            r.code, 16,
            "{profile}: expected the rollout stage to fail:\n{}",
            r.stderr
        );
        assert!(
            first.contains(&format!("[rule {rule}")) && first.contains(cause),
            "{profile}: the first error line names the cause: {first}\n{}",
            r.stderr
        );
        assert!(
            r.stderr.contains(evidence),
            "{profile}: evidence {evidence:?} missing:\n{}",
            r.stderr
        );
        assert!(
            r.stderr.contains("diagnosis bundle:"),
            "{profile}: no bundle:\n{}",
            r.stderr
        );
        let detected = first
            .split("after the pod was created")
            .next()
            .and_then(|h| h.rsplit(", ").next())
            .unwrap_or("?")
            .trim()
            .to_string();
        // The error as a user sees it, for README's troubleshooting section.
        let _ = std::fs::create_dir_all(repo().join("target/e2e-failures"));
        let _ = std::fs::write(
            repo().join(format!("target/e2e-failures/{profile}.txt")),
            &r.stderr,
        );
        assert!(
            r.took < Duration::from_secs(max),
            "{profile}: took {:.1}s",
            r.took.as_secs_f64()
        );
        report.push(format!(
            "failure {profile}: exit 16 in {:.1}s, rule {rule}, detected {detected} after the pod was created",
            r.took.as_secs_f64()
        ));
    }
    let bad = slipway_in("e2e-bad-values", &["deploy-local", "--output", "json"], &[]);
    assert_eq!(bad.code, 21, "{}", bad.stdout);
    let ev = events(&bad.stdout);
    let err = ev
        .iter()
        .find(|e| e["event"] == "error")
        .expect("an error event");
    assert!(
        err["message"]
            .as_str()
            .unwrap_or("")
            .contains("at '/replicaCount': got string, want integer"),
        "the schema violation, located: {err}"
    );
    assert!(
        !ev.iter().any(|e| e["event"] == "command"
            && ["docker build", "helm upgrade", "kind load", "docker push"]
                .iter()
                .any(|c| e["command"].as_str().unwrap_or("").starts_with(c))),
        "nothing was built or deployed"
    );
    report.push(format!(
        "failure e2e-bad-values: exit 21 in {:.1}s (helm template, before build/load/deploy): {}",
        bad.took.as_secs_f64(),
        err["message"].as_str().unwrap_or("")
    ));
    let never = slipway_in("e2e-never-ready", &["deploy-local"], &[]);
    let _ = std::fs::write(
        repo().join("target/e2e-failures/e2e-never-ready.txt"),
        &never.stderr,
    );
    assert_eq!(never.code, 16, "{}", never.stderr);
    assert!(
        never.stderr.contains("did not roll out within")
            && never.stderr.contains("Readiness probe failed"),
        "at the timeout it says what was not ready and why:\n{}",
        never.stderr
    );
    report.push(format!(
        "failure e2e-never-ready: exit 16 at its 25s release timeout ({:.1}s in all), naming the failing readiness probe",
        never.took.as_secs_f64()
    ));

    // 6c. Other workload kinds, from the failure fixture (slipway/tests/fixtures/failures),
    // with the sample image this test loaded.
    let plan = slipway(&["plan", "--output", "json"], &[]);
    let image: serde_json::Value = serde_json::from_str(&plan.stdout).expect("plan JSON");
    let image = image["images"][0]["reference"]
        .as_str()
        .unwrap()
        .to_string();
    let fixture = repo().join("slipway/tests/fixtures/failures/pipeline.toml");
    let fixture = fixture.to_str().unwrap();
    for (profile, code, says, evidence) in [
        ("job-fails", 16, "[rule job-failed", "127.0.0.1:1"),
        (
            "hook-fails",
            15,
            "hook job/fx-pre-upgrade failed",
            "127.0.0.1:1",
        ),
        ("pvc-unbound", 16, "[rule unschedulable", "does-not-exist"),
    ] {
        let r = slipway_in(
            profile,
            &["--config", fixture, "deploy-local"],
            &[("SAMPLE_IMAGE", &image)],
        );
        let _ = std::fs::write(
            repo().join(format!("target/e2e-failures/{profile}.txt")),
            &r.stderr,
        );
        assert_eq!(r.code, code, "{profile}:\n{}", r.stderr);
        let first = first_error_line(&r);
        assert!(first.contains(says), "{profile}: {first}\n{}", r.stderr);
        assert!(
            r.stderr.contains(evidence),
            "{profile}: evidence {evidence:?}:\n{}",
            r.stderr
        );
        report.push(format!(
            "failure {profile}: exit {code} in {:.1}s: {}",
            r.took.as_secs_f64(),
            first.trim()
        ));
        let _ = slipway_in(
            profile,
            &["--config", fixture, "down"],
            &[("SAMPLE_IMAGE", &image)],
        );
    }
    // The node image's volume provisioner: a claim on the default StorageClass binds.
    let env = [("SAMPLE_IMAGE", image.as_str())];
    // The unbound case's claim outlives its StatefulSet (claims are retained): gone first.
    let _ = kubectl_in(
        "slipway-failures",
        &[
            "delete",
            "pvc",
            "data-fx-db-0",
            "--ignore-not-found",
            "--wait=true",
        ],
    );
    let bound = slipway_in("pvc-bound", &["--config", fixture, "deploy-local"], &env);
    expect_ok(
        &bound,
        "a StatefulSet with a claim on the default StorageClass",
    );
    let pvc = kubectl_in(
        "slipway-failures",
        &[
            "get",
            "pvc",
            "data-fx-db-0",
            "-o",
            "jsonpath={.status.phase} {.spec.storageClassName}",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&pvc.stdout),
        "Bound standard",
        "{}",
        String::from_utf8_lossy(&pvc.stderr)
    );
    report.push(format!(
        "a StatefulSet's claim on the default StorageClass (local-path-provisioner): bound and rolled out in {:.1}s",
        bound.took.as_secs_f64()
    ));
    let _ = slipway_in("pvc-bound", &["--config", fixture, "down"], &env);

    // 6d. Slow is not broken: pods that turn ready only after a 20 s probe delay pass.
    let slow = slipway_in("e2e-slow-start", &["deploy-local"], &[]);
    expect_ok(&slow, "a slow-starting release");
    assert!(
        slow.took >= Duration::from_secs(20),
        "{:.1}s",
        slow.took.as_secs_f64()
    );
    report.push(format!(
        "slow start (readiness after 20 s): passed in {:.1}s, nothing failed early",
        slow.took.as_secs_f64()
    ));

    // 6e. Pods that exit at once on SIGTERM while kube-proxy still sends them
    // requests: slipway's own during-the-upgrade probe counts the failures. The first
    // deploy only puts such pods in place (the pods it replaces drain properly).
    let abrupt = |greeting: &str| {
        slipway_in(
            "e2e-rollout-abrupt",
            &["deploy-local"],
            &[("SAMPLE_GREETING", greeting)],
        )
    };
    expect_ok(
        &abrupt("abrupt one"),
        "deploy pods without a shutdown delay",
    );
    let caught = abrupt("abrupt two");
    assert_eq!(
        caught.code, 18,
        "replacing pods that exit at once passed the zero-downtime check:\n{}",
        caught.stderr
    );
    let line = first_error_line(&caught);
    assert!(
        line.contains("requests failed while the releases upgraded"),
        "{line}"
    );
    report.push(format!(
        "pods that exit at once on SIGTERM (maxUnavailable 1): {line}"
    ));

    // 6f. The same probe through the API server's service proxy (no port mapping in
    // this profile, so the NodePort is out of reach): `kubectl proxy` serves on a
    // unix socket in a private directory, never on a TCP port. The first run brings
    // back pods that drain properly; the second is measured.
    let through_proxy = |greeting: &str| {
        slipway_in(
            "e2e-rollout-proxy",
            &["deploy-local"],
            &[("SAMPLE_GREETING", greeting)],
        )
    };
    expect_ok(
        &through_proxy("proxy one"),
        "deploy pods that drain, probed through the service proxy",
    );
    let proxied = through_proxy("proxy two");
    expect_ok(&proxied, "an upgrade probed through the service proxy");
    let own = proxied
        .stderr
        .lines()
        .find(|l| l.contains("check steady during the upgrade: passed"))
        .unwrap_or_else(|| panic!("no during-the-upgrade result:\n{}", proxied.stderr));
    assert!(
        own.contains("through the API server's service proxy") && own.contains(", 0 failed"),
        "{own}"
    );
    let requests: u32 = own
        .split(" requests through ")
        .next()
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no request count in {own}"));
    assert!(requests >= 10, "the probe barely ran: {own}");
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("slipway-proxy-"))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "kubectl proxy's socket directories left: {left:?}"
    );
    report.push(format!(
        "upgrade probed through kubectl proxy's unix socket: {:.1}s; slipway's own: {}",
        proxied.took.as_secs_f64(),
        own.split("during the upgrade (").nth(1).unwrap_or(own)
    ));

    // 7. kubectl changed a field helm owns: Helm 4 stops at the conflict unless
    // force_conflicts (the default with server-side apply) lets it take the field back.
    expect_ok(
        &slipway(&["deploy-local"], &[]),
        "deploy-local after the broken image",
    );
    let chart_value = drift();
    let refused = slipway_in(
        "e2e-no-force",
        &["deploy-local"],
        &[("SAMPLE_GREETING", "hello without force")],
    );
    let _ = std::fs::write(
        repo().join("target/e2e-failures/no-force-conflicts.txt"),
        &refused.stderr,
    );
    assert_eq!(
        refused.code, 15,
        "Helm 4 without --force-conflicts:\n{}",
        refused.stderr
    );
    assert!(
        first_error_line(&refused).contains("changed by \"kubectl-set\"")
            && refused.stderr.contains("force_conflicts = true"),
        "the conflict and its manager are named, with the fix:\n{}",
        refused.stderr
    );
    let redeployed = redeploy_after_drift(None, "hello after drift", &chart_value);
    report.push(format!(
        "helm 4: kubectl set env, then redeploy: refused without force_conflicts (exit 15), {:.1}s with it",
        redeployed.took.as_secs_f64()
    ));

    // 8. The Helm 3 leg, on the same cluster: the releases are removed first so Helm 3
    // installs its own.
    let path3 = helm3_path();
    let v = Command::new(helm3_dir().join("helm"))
        .args(["version", "--template", "{{.Version}}"])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "helm 3 in {}: {e} (scripts/toolchain.sh helm3)",
                helm3_dir().display()
            )
        });
    let v3 = String::from_utf8_lossy(&v.stdout).into_owned();
    assert!(
        v3.starts_with("v3."),
        "{} is not Helm 3: {v3}",
        helm3_dir().display()
    );
    expect_ok(&slipway(&["down"], &[]), "down before the Helm 3 leg");
    let env3 = [("PATH", path3.as_str())];
    let d3 = slipway(&["deploy-local"], &env3);
    expect_ok(&d3, "helm 3: deploy-local");
    assert!(
        d3.stderr
            .contains(&format!("helm {}", v3.trim_start_matches('v'))),
        "{}",
        d3.stderr
    );
    let n3 = slipway(&["deploy-local", "--output", "json"], &env3);
    expect_ok(&n3, "helm 3: no-change deploy-local");
    assert!(
        events(&n3.stdout)
            .iter()
            .any(|e| e["event"] == "step_skipped" && e["step"] == "helm/sample"),
        "helm 3: the no-change rerun skips the upgrade"
    );
    let c3 = slipway(
        &["deploy-local"],
        &[
            ("PATH", path3.as_str()),
            ("SAMPLE_GREETING", "hello from helm 3"),
        ],
    );
    expect_ok(&c3, "helm 3: config change");
    let rb3 = rollback_to(Some(&path3), "hello from slipway");
    let chart3 = drift();
    let dr3 = redeploy_after_drift(Some(&path3), "hello from helm 3 after drift", &chart3);
    let down3 = slipway(&["down"], &env3);
    expect_ok(&down3, "helm 3: down");
    report.push(format!(
        "helm 3 leg ({}): deploy {:.1}s, no-change {:.1}s, change {:.1}s, drift+redeploy {:.1}s, rollback {:.1}s, down {:.1}s",
        v3.trim(),
        d3.took.as_secs_f64(),
        n3.took.as_secs_f64(),
        c3.took.as_secs_f64(),
        dr3.took.as_secs_f64(),
        rb3.took.as_secs_f64(),
        down3.took.as_secs_f64()
    ));

    // 9. dev: edit -> new pods serving, a broken edit reported, the next one recovers.
    dev_loop(&mut report);

    // 10. The cluster as a remote one, through a real registry.
    remote_through_a_registry(&mut report);

    // 11. down --cluster leaves nothing behind.
    let down = slipway(&["down", "--cluster"], &[]);
    expect_ok(&down, "down --cluster");
    assert_eq!(kind_containers(), "", "kind containers left behind");
    assert!(
        port_forwards().is_empty(),
        "port-forwards left: {:?}",
        port_forwards()
    );
    let again = slipway(&["down", "--cluster"], &[]);
    expect_ok(&again, "second down --cluster");
    assert!(again.stderr.contains("nothing"), "{}", again.stderr);

    let text = report.join("\n");
    eprintln!("e2e report:\n{text}");
    let _ = std::fs::write(repo().join("target/e2e-report.txt"), text + "\n");
}

/// Smoke checks of kind `job` (profile e2e-in-cluster): a Job from the sample's image
/// reaches the Service by its DNS name and passes; one whose image is not on the nodes
/// fails within seconds, naming why; neither Job is left behind.
fn in_cluster_checks(report: &mut Vec<String>) {
    let r = slipway_in("e2e-in-cluster", &["smoke", "--output", "json"], &[]);
    assert_eq!(
        r.code, 18,
        "smoke with a check that cannot pass:\n{}\n{}",
        r.stdout, r.stderr
    );
    let ev = events(&r.stdout);
    let check = |name: &str| {
        ev.iter()
            .find(|e| e["event"] == "check" && e["name"] == name)
            .unwrap_or_else(|| panic!("no check {name}:\n{}", r.stdout))
            .clone()
    };
    let ok = check("in-cluster");
    assert_eq!(ok["ok"], true, "{ok}");
    let detail = ok["detail"].as_str().unwrap();
    assert!(
        detail.contains("completed") && detail.contains(": 200"),
        "{detail}"
    );
    let missing = check("in-cluster-missing-image");
    assert_eq!(missing["ok"], false, "{missing}");
    let why = missing["detail"].as_str().unwrap();
    assert!(why.contains("ErrImageNeverPull"), "{why}");
    let missing_ms = missing["duration_ms"].as_u64().unwrap();
    // A cause that another Job would meet too: one attempt, not retries to the deadline.
    assert_eq!(missing["attempts"], 1, "{missing}");
    assert!(
        missing_ms < 15_000,
        "the missing image took {missing_ms} ms to report"
    );
    // Each attempt deletes its Job (in the background): none stays.
    let end = Instant::now() + Duration::from_secs(30);
    let mut left = String::from("?");
    while !left.is_empty() && Instant::now() < end {
        left = kubectl(&["get", "jobs", "-l", "slipway.dev/check=job", "-o", "name"]);
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(left, "", "check Jobs left behind");
    report.push(format!(
        "in-cluster Job check: passed in {:.1}s ({detail}); a missing image reported in {:.1}s, at the first attempt",
        ok["duration_ms"].as_u64().unwrap_or(0) as f64 / 1000.0,
        missing_ms as f64 / 1000.0,
    ));
}

/// A `slipway dev` that is stopped as a user would stop it (Ctrl-C, then a kill) when
/// the test ends, also when it fails: an orphaned dev loop would react to later edits
/// and keep its port-forwards.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            // SAFETY: a plain kill(2) of our own child.
            unsafe { libc::kill(self.0.id() as i32, libc::SIGINT) };
            let end = Instant::now() + Duration::from_secs(10);
            while matches!(self.0.try_wait(), Ok(None)) && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Puts a source file back as it was, whatever happens to the test.
struct Restore(std::path::PathBuf, String);

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.0, &self.1);
    }
}

/// `dev` on the e2e cluster: the sample's `/version` names the image tag its pod runs,
/// so "new pods serving" is observable through the NodePort.
fn dev_loop(report: &mut Vec<String>) {
    use std::io::BufRead;
    let src = repo().join("services/sample/src/main.rs");
    let original = std::fs::read_to_string(&src).unwrap();
    let _restore = Restore(src.clone(), original.clone());
    let mut child = Stopped(
        Command::new(env!("CARGO_BIN_EXE_slipway"))
            .args(["dev", "--profile", &profile(), "--output", "json"])
            .current_dir(repo())
            .env("CI", "1")
            .env("CARGO_TARGET_DIR", repo().join("target/nested"))
            .env("SAMPLE_API_TOKEN", "e2e-token-value-1234")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (tx, rx) = std::sync::mpsc::channel::<serde_json::Value>();
    let out = child.0.stdout.take().unwrap();
    let all = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let keep = Arc::clone(&all);
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            keep.lock().unwrap().push(line.clone());
            if let Ok(v) = serde_json::from_str(&line) {
                let _ = tx.send(v);
            }
        }
    });
    let dump = || all.lock().unwrap().join("\n");
    // The next `dev` event whose message contains `what`.
    let wait_for = |what: &str, within: Duration| -> serde_json::Value {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if let Ok(v) = rx.recv_timeout(Duration::from_millis(200)) {
                if v["event"] == "dev" && v["message"].as_str().unwrap_or("").contains(what) {
                    return v;
                }
            }
        }
        panic!("dev: no `{what}` within {within:?}:\n{}", dump());
    };
    let tag_served = || -> String {
        get(NODE_PORT, "/version")
            .ok()
            .and_then(|(_, b)| serde_json::from_str::<serde_json::Value>(&b).ok())
            .and_then(|v| v["image_tag"].as_str().map(String::from))
            .unwrap_or_default()
    };
    // Round 1 deploys; then dev watches.
    let first = Instant::now();
    let status = wait_for("sample: ", Duration::from_secs(600));
    let forward = status["message"]
        .as_str()
        .unwrap()
        .split("http://127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("no port-forward in {status}"));
    wait_for("watching", Duration::from_secs(30));
    let first_took = first.elapsed();
    let before = tag_served();
    assert!(before.starts_with("c-"), "served tag before: {before:?}");
    assert_eq!(
        get(forward, "/healthz").map(|r| r.0),
        Ok(200),
        "dev's port-forward"
    );

    // A good edit: new pods serve the new image.
    let edited = Instant::now();
    std::fs::write(
        &src,
        format!("{original}\n// dev e2e edit {}\n", std::process::id()),
    )
    .unwrap();
    wait_for(
        "round 2: services/sample/src/main.rs changed",
        Duration::from_secs(10),
    );
    let mut served = before.clone();
    let end = Instant::now() + Duration::from_secs(300);
    while served == before && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
        served = tag_served();
    }
    let edit_took = edited.elapsed();
    assert_ne!(served, before, "the edit was never served:\n{}", dump());
    wait_for("watching", Duration::from_secs(60));
    // The port-forward was moved to the new pods, and said so with its time.
    assert_eq!(
        get(forward, "/healthz").map(|r| r.0),
        Ok(200),
        "port-forward after the rollout:\n{}",
        dump()
    );
    let moved = dump()
        .lines()
        .find_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            let m = v["message"].as_str()?;
            m.contains("moved to the new revision's pods in")
                .then(|| m.to_string())
        })
        .unwrap_or_else(|| panic!("the port-forward did not say it moved:\n{}", dump()));
    report.push(format!("dev: {moved}"));

    // A broken edit: the round fails and says so; the release keeps serving.
    let broken = Instant::now();
    std::fs::write(&src, format!("{original}\nfn broken( {{\n")).unwrap();
    wait_for("failed", Duration::from_secs(300));
    let broken_took = broken.elapsed();
    assert_eq!(
        tag_served(),
        served,
        "the release changed after a broken edit"
    );
    assert!(
        dump().contains("unclosed delimiter"),
        "the compiler's error is not shown:\n{}",
        dump()
    );

    // The next good edit recovers.
    std::fs::write(
        &src,
        format!("{original}\n// dev e2e fix {}\n", std::process::id()),
    )
    .unwrap();
    let fixed_at = Instant::now();
    // The failed round's own "watching" line is still queued: wait for this round's
    // start, so the next "watching" is the one after it.
    wait_for(
        "round 4: services/sample/src/main.rs changed",
        Duration::from_secs(10),
    );
    let mut now_served = served.clone();
    let end = Instant::now() + Duration::from_secs(300);
    while (now_served == served || now_served == before) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
        now_served = tag_served();
    }
    assert!(
        now_served != served && now_served != before,
        "the fix was never served:\n{}",
        dump()
    );
    wait_for("watching", Duration::from_secs(60));
    let fix_took = fixed_at.elapsed();
    let logs = all
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("\"event\":\"log\""))
        .count();
    assert!(logs > 0, "no log lines streamed:\n{}", dump());

    // Ctrl-C: streams and forwards stop, the release stays.
    // SAFETY: a plain kill(2) of our own child.
    unsafe { libc::kill(child.0.id() as i32, libc::SIGINT) };
    let status = child.0.wait().unwrap();
    assert_eq!(status.code(), Some(0), "dev after Ctrl-C:\n{}", dump());
    assert!(
        port_forwards().is_empty(),
        "port-forwards left: {:?}",
        port_forwards()
    );
    // The release stays as the last round left it: its Deployment names that tag,
    // and the NodePort answers from it (kube-proxy may still route a request or two
    // to a terminating old pod, which keeps serving through its shutdown delay).
    let image = deployed_image();
    assert!(
        image.ends_with(&format!(":{now_served}")),
        "the release did not stay: {image}, last served {now_served}"
    );
    let end = Instant::now() + Duration::from_secs(15);
    let mut after = tag_served();
    while after != now_served && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(200));
        after = tag_served();
    }
    assert_eq!(after, now_served, "the release did not stay");
    report.push(format!(
        "dev: first round {:.1}s, edit -> new pods serving {:.1}s, broken edit reported in {:.1}s, fix -> serving {:.1}s, {logs} log lines streamed",
        first_took.as_secs_f64(),
        edit_took.as_secs_f64(),
        broken_took.as_secs_f64(),
        fix_took.as_secs_f64()
    ));
}

/// The release's pod template runs the image pushed to `registry` (pods of the
/// previous revision may still be draining).
/// kind's default `delivery = "auto"`: with the local registry built (.ci/run builds
/// it before the tests), the image was pushed and every node pulled it right after,
/// so the release's `imagePullPolicy: Never` pods started from it; without it,
/// `kind load`, saying why.
fn auto_delivery(ev: &[serde_json::Value], report: &mut Vec<String>) {
    let built = std::env::var_os("HOME")
        .map(|h| std::path::PathBuf::from(h).join(".cache/slipway/registry/v3.1.2/registry"))
        .is_some_and(|p| p.is_file());
    assert!(
        built || !crate::support::in_ci(),
        "the local registry is not built: .ci/run builds it (scripts/registry.sh build)"
    );
    let d: Vec<&serde_json::Value> = ev.iter().filter(|e| e["event"] == "delivered").collect();
    assert_eq!(d.len(), 1, "one image delivered: {d:?}");
    let want = if built { "registry-push" } else { "kind-load" };
    assert_eq!(d[0]["path"], want, "{}", d[0]);
    assert!(
        d[0]["why"].as_str().unwrap_or("").starts_with("auto: "),
        "{}",
        d[0]
    );
    if built {
        assert!(
            ev.iter()
                .any(|e| e["event"] == "step_finished" && e["step"] == "pull/sample"),
            "every node pulled the image after the push"
        );
        assert_runs_pushed_image("localhost:5001");
        let policy = kubectl(&[
            "get",
            "deployment/sample",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].imagePullPolicy}",
        ]);
        assert_eq!(policy, "Never", "the profile's pods never pull at start");
    }
    report.push(format!(
        "delivery auto: {want} ({}), {} bytes moved in {} ms",
        d[0]["why"].as_str().unwrap_or(""),
        d[0]["bytes"],
        d[0]["duration_ms"]
    ));
}

/// The image the release's Deployment runs.
fn deployed_image() -> String {
    kubectl(&[
        "get",
        "deployment/sample",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ])
}

fn assert_runs_pushed_image(registry: &str) {
    let image = deployed_image();
    assert!(
        image.starts_with(&format!("{registry}/slipway/sample:")),
        "the release does not run the image pushed to {registry}: {image}"
    );
}

/// The registry's access log (distribution logs to stderr).
fn registry_log(container: &str) -> String {
    let log = Command::new("docker")
        .args(["logs", container])
        .output()
        .unwrap();
    String::from_utf8_lossy(&log.stderr).into_owned() + &String::from_utf8_lossy(&log.stdout)
}

/// A containerd on a node fetched `repo`'s manifest from the registry at `host`
/// (logged as `ns=` the name the node asked for), as `user` when given.
fn node_pulled(log: &str, host: &str, repo: &str, user: Option<&str>) -> bool {
    let ns = format!("ns={}", host.replace(':', "%3A"));
    log.lines().any(|l| {
        l.contains(&format!("GET /v2/{repo}/manifests/"))
            && l.contains(&ns)
            && l.contains("containerd/")
            && user.is_none_or(|u| {
                l.contains(&format!("auth.user.name={u}"))
                    || l.contains(&format!("auth.user.name=\"{u}\""))
            })
    }) || log.lines().any(|l| {
        // The request line and the auth fields may be on the request's own log line.
        l.contains("response completed")
            && l.contains(&format!("/v2/{repo}/manifests/"))
            && l.contains("containerd/")
            && user.is_none_or(|u| l.contains(u))
    })
}

/// Through a real registry: kind's `delivery = "registry"` (slipway starts the
/// registry and wires it into the nodes), the cluster addressed as a remote one
/// (`existing` + `[registry]`), and a registry that wants a login.
fn remote_through_a_registry(report: &mut Vec<String>) {
    // 10a. deploy-local, images through the local registry slipway wires in. The
    // default profile's `auto` may have pushed this image already: --force wires,
    // pushes and pulls again.
    let wired = slipway_in(
        "e2e-registry",
        &["deploy-local", "--force", "--output", "json"],
        &[],
    );
    expect_ok(&wired, "deploy-local through the local registry");
    let ev = events(&wired.stdout);
    let ran = |step: &str| {
        ev.iter()
            .any(|e| e["event"] == "step_finished" && e["step"] == step)
    };
    let skipped = |step: &str| {
        ev.iter()
            .find(|e| e["event"] == "step_skipped" && e["step"] == step)
            .map(|e| e["reason"].as_str().unwrap_or("").to_string())
    };
    let pushed = |ev: &[serde_json::Value], prefix: &str| {
        ev.iter().any(|e| {
            e["event"] == "command"
                && e["command"].as_str().is_some_and(|c| {
                    c.starts_with(&format!("docker push {prefix}/slipway/sample:"))
                })
        })
    };
    assert!(
        ran("registry") || skipped("registry").is_some(),
        "no registry step:\n{}",
        wired.stdout
    );
    assert!(
        pushed(&ev, "localhost:5001"),
        "nothing was pushed:\n{}",
        wired.stdout
    );
    let url = assert_smoke_passed(&ev);
    assert!(url.starts_with("http://127.0.0.1:18091 "), "{url}");
    assert_runs_pushed_image("localhost:5001");
    let advertised = kubectl_in(
        "kube-public",
        &[
            "get",
            "configmap/local-registry-hosting",
            "-o",
            "jsonpath={.data.localRegistryHosting\\.v1}",
        ],
    );
    assert!(
        String::from_utf8_lossy(&advertised.stdout).contains("host: \"localhost:5001\""),
        "the cluster does not advertise the registry (KEP-1755): {}",
        String::from_utf8_lossy(&advertised.stderr)
    );
    // The node's containerd pulled it from the registry right after the push (its
    // access log), before any pod asked.
    assert!(ran("pull/sample"), "no pull step:\n{}", wired.stdout);
    let log = registry_log("slipway-registry");
    assert!(
        node_pulled(&log, "localhost:5001", "slipway/sample", None),
        "no node pulled from the registry:\n{log}"
    );
    // Nothing changed: the registry is advertised and answers, the nodes hold the image.
    let again = slipway_in("e2e-registry", &["deploy-local", "--output", "json"], &[]);
    expect_ok(&again, "no-change deploy-local through the local registry");
    let ev2 = events(&again.stdout);
    let reason = ev2
        .iter()
        .find(|e| e["event"] == "step_skipped" && e["step"] == "registry")
        .map(|e| e["reason"].as_str().unwrap_or("").to_string())
        .unwrap_or_else(|| panic!("registry wiring not skipped:\n{}", again.stdout));
    assert!(
        reason.contains("advertises registry localhost:5001"),
        "{reason}"
    );
    assert!(
        !pushed(&ev2, "localhost:5001"),
        "pushed again:\n{}",
        again.stdout
    );

    // 10a'. `delivery = "load"` still takes `kind load` (the default `auto` takes the
    // registry in CI, where it is built): the image under its plain name, loaded,
    // and the release's `Never` pods start from it.
    let loaded = slipway_in("e2e-load", &["deploy-local", "--output", "json"], &[]);
    expect_ok(&loaded, "deploy-local with delivery = \"load\"");
    let ev3 = events(&loaded.stdout);
    let d: Vec<&serde_json::Value> = ev3.iter().filter(|e| e["event"] == "delivered").collect();
    assert_eq!(d.len(), 1, "{}", loaded.stdout);
    assert_eq!(d[0]["path"], "kind-load", "{}", d[0]);
    assert!(
        d[0]["why"].is_null(),
        "a path the pipeline names is not explained: {}",
        d[0]
    );
    assert_smoke_passed(&ev3);
    let image = deployed_image();
    assert!(image.starts_with("slipway/sample:"), "{image}");
    report.push(format!(
        "delivery = \"load\": kind-load, {} bytes in {} ms",
        d[0]["bytes"], d[0]["duration_ms"]
    ));

    // 10b. The cluster as a remote one: deploy-local is for clusters slipway manages,
    // refused with the way out.
    let refused = slipway_in("e2e-remote", &["deploy-local"], &[]);
    assert_eq!(
        refused.code, 10,
        "deploy-local on a remote context:\n{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("context guard"),
        "{}",
        refused.stderr
    );
    let load = slipway_in("e2e-remote", &["load", "--output", "json"], &[]);
    expect_ok(&load, "load (push) to the registry");
    assert!(
        pushed(&events(&load.stdout), "localhost:5001"),
        "load pushed nothing:\n{}",
        load.stdout
    );
    let deploy = slipway_in("e2e-remote", &["deploy"], &[]);
    expect_ok(&deploy, "deploy to the remote context");
    // The release runs the image from the registry, which a node's containerd pulled.
    assert_runs_pushed_image("localhost:5001");
    let log = registry_log("slipway-registry");
    assert!(
        node_pulled(&log, "localhost:5001", "slipway/sample", None),
        "no node pulled from the registry:\n{log}"
    );
    let smoke = slipway_in("e2e-remote", &["smoke"], &[]);
    expect_ok(&smoke, "smoke on the remote context");
    // A second load pushes nothing new (the registry has every layer): the registry's
    // log has no blob upload from it.
    let uploads = |log: &str| {
        log.lines()
            .filter(|l| l.contains("POST /v2/slipway/sample/blobs/uploads/"))
            .count()
    };
    let before = uploads(&registry_log("slipway-registry"));
    let second = slipway_in("e2e-remote", &["load"], &[]);
    expect_ok(&second, "second load");
    let after = registry_log("slipway-registry");
    assert_eq!(
        uploads(&after),
        before,
        "the second load uploaded layers again:\n{after}"
    );

    // 10c. A registry that wants a login: slipway logs in with the password on stdin
    // and gives the nodes a pull Secret; the password is in no output.
    let password = format!("e2e-registry-pw-{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(
        &htpasswd,
        format!("slipway-e2e:{}\n", bcrypt::hash(&password, 5).unwrap()),
    )
    .unwrap();
    let auth_env = [
        ("CLUSTER", CLUSTER),
        ("REG_NAME", "slipway-registry-auth"),
        ("REG_PORT", "5002"),
        ("REG_ADVERTISE", "0"),
    ];
    let reg = Command::new("bash")
        .arg(repo().join("scripts/registry.sh"))
        .envs(auth_env)
        .env("REG_HTPASSWD", &htpasswd)
        .output()
        .unwrap();
    assert!(
        reg.status.success(),
        "scripts/registry.sh (login):\n{}",
        String::from_utf8_lossy(&reg.stderr)
    );
    // Without a login it refuses.
    assert_eq!(
        get(5002, "/v2/").map(|r| r.0),
        Ok(401),
        "the registry does not want a login"
    );
    let wrong = slipway_in(
        "e2e-remote-auth",
        &["load"],
        &[("SLIPWAY_E2E_REGISTRY_PASSWORD", "not-the-password")],
    );
    assert_eq!(
        wrong.code, 13,
        "load with a wrong password:\n{}",
        wrong.stderr
    );
    assert!(
        wrong.stderr.contains("log in to localhost:5002")
            && !wrong.stderr.contains("not-the-password"),
        "{}",
        wrong.stderr
    );
    let pw = [("SLIPWAY_E2E_REGISTRY_PASSWORD", password.as_str())];
    let aload = slipway_in("e2e-remote-auth", &["load", "--output", "json"], &pw);
    expect_ok(&aload, "load with a registry login");
    assert!(
        pushed(&events(&aload.stdout), "localhost:5002"),
        "nothing pushed:\n{}",
        aload.stdout
    );
    let adeploy = slipway_in("e2e-remote-auth", &["deploy", "--output", "json"], &pw);
    expect_ok(&adeploy, "deploy with a pull Secret");
    let asmoke = slipway_in("e2e-remote-auth", &["smoke"], &pw);
    expect_ok(&asmoke, "smoke through the login registry");
    assert_runs_pushed_image("localhost:5002");
    assert_eq!(
        kubectl(&["get", "secret/registry-login", "-o", "jsonpath={.type}"]),
        "kubernetes.io/dockerconfigjson"
    );
    let alog = registry_log("slipway-registry-auth");
    assert!(
        node_pulled(
            &alog,
            "localhost:5002",
            "slipway/sample",
            Some("slipway-e2e")
        ),
        "no node pulled with the login:\n{alog}"
    );
    for r in [&wrong, &aload, &adeploy, &asmoke] {
        assert!(
            !r.stdout.contains(&password) && !r.stderr.contains(&password),
            "the registry password was printed"
        );
    }
    // Nor in the diagnosis bundle the failed login left, or any file slipway wrote.
    for secret in [password.as_str(), "not-the-password"] {
        let files = Command::new("grep")
            .args(["-rl", secret])
            .arg(repo().join("target/slipway"))
            .output()
            .unwrap();
        assert!(
            files.stdout.is_empty(),
            "a registry password is in a file under target/slipway: {}",
            String::from_utf8_lossy(&files.stdout)
        );
    }
    let _ = Command::new("docker")
        .args(["logout", "localhost:5002"])
        .output();
    for name in ["slipway-registry-auth", "slipway-registry"] {
        let stop = Command::new("bash")
            .arg(repo().join("scripts/registry.sh"))
            .arg("stop")
            .env("CLUSTER", CLUSTER)
            .env("REG_NAME", name)
            .output()
            .unwrap();
        assert!(stop.status.success());
    }
    report.push(format!(
        "registry delivery (kind): first deploy-local (registry wired, push, deploy, smoke) {:.1}s, no-change {:.1}s; remote: load (push) {:.1}s, deploy {:.1}s, smoke {:.1}s, second load {:.1}s; with a login: load {:.1}s, deploy {:.1}s",
        wired.took.as_secs_f64(),
        again.took.as_secs_f64(),
        load.took.as_secs_f64(),
        deploy.took.as_secs_f64(),
        smoke.took.as_secs_f64(),
        second.took.as_secs_f64(),
        aload.took.as_secs_f64(),
        adeploy.took.as_secs_f64(),
    ));
}
