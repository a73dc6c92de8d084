//! Tier 3, end to end: slipway against a real kind cluster on this machine.
//!
//! 1. (.ci/run) Docker engine and the toolchain, including the offline node image
//! 2. deploy-local creates the cluster, builds and loads the sample, installs the
//!    chart, waits for the rollout and passes the smoke suite over a real port-forward
//! 3. a rerun with nothing changed skips build, load and the helm upgrade
//! 4. a config change rolls the pods while a client polls the Service through its
//!    NodePort, and not one request fails
//! 5. an image that was never loaded fails the rollout stage within its timeout with
//!    the pod's reason and a hint
//! 6. down --cluster leaves no kind containers and no port-forwards
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

fn ready() -> Result<(), String> {
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

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    took: Duration,
}

fn slipway(args: &[&str], env: &[(&str, &str)]) -> Run {
    let started = Instant::now();
    let mut c = Command::new(env!("CARGO_BIN_EXE_slipway"));
    c.args(args)
        .args(["--profile", &profile()])
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
        "$ cargo xtask {} --profile {} -> exit {} in {:.1}s",
        args.join(" "),
        profile(),
        r.code,
        r.took.as_secs_f64()
    );
    r
}

fn expect_ok(r: &Run, what: &str) {
    assert_eq!(r.code, 0, "{what} failed:\n{}\n{}", r.stdout, r.stderr);
}

/// GET on a new connection each time (so a request cannot ride a dying keep-alive).
fn get(port: u16, path: &str) -> Result<(u16, String), String> {
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

fn events(stdout: &str) -> Vec<serde_json::Value> {
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
    let mut report = vec![];
    // Start from nothing (a leftover from an interrupted run is removed first).
    let _ = slipway(&["down", "--cluster"], &[]);

    // 2. The whole pipeline, cluster included.
    let first = slipway(&["deploy-local", "--output", "json"], &[]);
    expect_ok(&first, "first deploy-local");
    let ev = events(&first.stdout);
    let checks: Vec<_> = ev
        .iter()
        .filter(|e| e["event"] == "check" && e["stage"] == "smoke")
        .collect();
    assert!(
        checks.len() >= 5 && checks.iter().all(|c| c["ok"] == true),
        "smoke checks: {checks:?}"
    );
    report.push(format!(
        "first deploy-local (cluster create included): {:.1}s",
        first.took.as_secs_f64()
    ));
    // kube-proxy programs the NodePort asynchronously: give it a moment.
    let end = Instant::now() + Duration::from_secs(60);
    let mut last = get(NODE_PORT, "/version");
    while !matches!(last, Ok((200, _))) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(500));
        last = get(NODE_PORT, "/version");
    }
    let (status, body) = last.expect("the NodePort answers");
    assert_eq!(status, 200, "{body}");

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
            || c.starts_with("helm upgrade")),
        "{ran:?}"
    );
    report.push(format!(
        "no-change deploy-local: {:.1}s ({:.1}x faster than the first)",
        second.took.as_secs_f64(),
        first.took.as_secs_f64() / second.took.as_secs_f64()
    ));

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
    let third = slipway(
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
    report.push(format!(
        "rolling update (config change): {:.1}s, {ok} requests through the NodePort, 0 failed",
        third.took.as_secs_f64()
    ));

    // 5. A tag that never reached the node: the rollout stage fails in time, with the reason.
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

    // 6. down --cluster leaves nothing behind.
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
