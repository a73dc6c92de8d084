//! Tier 3: the real Docker engine and a real helm. Outside CI a missing tool skips
//! the test (with a message); in CI (`CI` set) it fails, because .ci/run provides
//! every tool.

use crate::support::repo;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

/// Fail (never skip) when `tool` cannot be used: these tests only run in CI, where
/// .ci/run provides every tool, or when asked for with `--ignored`.
fn require(tool: &str) {
    let usable = which::which(tool).is_ok()
        && (tool != "docker"
            || Command::new("docker")
                .arg("info")
                .output()
                .is_ok_and(|o| o.status.success()));
    assert!(
        usable,
        "{tool} is required for this test: .ci/run provides it (docs/testing.md)"
    );
}

fn sh(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut s =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    buf.split_whitespace().nth(1)?.parse().ok()
}

fn wait_status(port: u16, path: &str, want: u16) -> Option<u16> {
    let end = Instant::now() + Duration::from_secs(15);
    let mut last = None;
    while Instant::now() < end {
        last = http_status(port, path);
        if last == Some(want) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    last
}

/// slipway builds the sample image with the real engine (pre-build included); the
/// image is small, runs as a numeric non-root user, answers its probes, and exits 0
/// within the grace period on SIGTERM.
#[test]
#[cfg_attr(
    not(slipway_ci),
    ignore = "tier 3: needs a Docker engine; runs in CI (CI=true) or with --ignored"
)]
fn sample_image_builds_offline_and_passes_its_container_test() {
    require("docker");
    let xtask = env!("CARGO_BIN_EXE_slipway");
    let nested = repo().join("target/nested");
    let o = Command::new(xtask)
        .args(["build", "--force"])
        .current_dir(repo())
        .env("CARGO_TARGET_DIR", &nested)
        .env("CI", "1")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "cargo xtask build failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let plan: serde_json::Value = serde_json::from_str(&sh(Command::new(xtask)
        .args(["plan", "--job", "build", "--output", "json"])
        .current_dir(repo())))
    .unwrap();
    let reference = plan["images"][0]["reference"].as_str().unwrap().to_string();

    let size: u64 =
        sh(Command::new("docker").args(["image", "inspect", "--format", "{{.Size}}", &reference]))
            .parse()
            .unwrap();
    eprintln!("{reference}: {size} bytes");
    // For CI's log (.ci/run prints the e2e reports), which docs/benchmarks.md quotes.
    std::fs::create_dir_all(repo().join("target")).unwrap();
    std::fs::write(
        repo().join("target/e2e-report-image.txt"),
        format!("sample image {reference}: {size} bytes\n"),
    )
    .unwrap();
    assert!(
        size < 15 * 1024 * 1024,
        "image is {size} bytes, target is under 15 MB"
    );
    assert_eq!(
        sh(Command::new("docker").args([
            "image",
            "inspect",
            "--format",
            "{{.Config.User}}",
            &reference
        ])),
        "65532:65532"
    );

    let (container, port) = Container::run(
        &reference,
        &["-e", "GREETING=hi", "-e", "SHUTDOWN_DELAY_SECONDS=1"],
    );
    let cid = container.0.clone();
    assert_eq!(wait_status(port, "/healthz", 200), Some(200));
    assert_eq!(wait_status(port, "/readyz", 200), Some(200));
    let started = Instant::now();
    sh(Command::new("docker").args(["stop", "--time", "10", &cid]));
    let took = started.elapsed();
    assert_eq!(
        sh(Command::new("docker").args(["inspect", "--format", "{{.State.ExitCode}}", &cid])),
        "0",
        "SIGTERM must exit cleanly"
    );
    assert!(
        took < Duration::from_secs(10),
        "stopped by SIGKILL after the grace period ({took:?})"
    );
    let logs = sh(Command::new("docker").args(["logs", &cid]));
    assert!(logs.contains("stopped cleanly"), "{logs}");
    drop(container);

    // Missing required config: alive but not ready, and it says why.
    let (_container, port) = Container::run(&reference, &[]);
    assert_eq!(wait_status(port, "/healthz", 200), Some(200));
    assert_eq!(http_status(port, "/readyz"), Some(503));
}

/// A container removed when dropped, whatever the test outcome.
struct Container(String);

impl Container {
    /// `docker run -d` with the service port published on a free loopback port.
    fn run(image: &str, extra: &[&str]) -> (Container, u16) {
        let mut args = vec!["run", "-d", "-p", "127.0.0.1::8080"];
        args.extend_from_slice(extra);
        args.push(image);
        let c = Container(sh(Command::new("docker").args(&args)));
        let published = sh(Command::new("docker").args(["port", &c.0, "8080/tcp"]));
        let port = published.rsplit(':').next().unwrap().parse().unwrap();
        (c, port)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

/// The chart lints strict, renders with defaults and every optional feature, and the
/// manifests validate against the Kubernetes API schemas (scripts/chart-check.sh).
#[test]
#[cfg_attr(
    not(slipway_ci),
    ignore = "tier 3: needs helm, go and python3; runs in CI (CI=true) or with --ignored"
)]
fn chart_lints_renders_and_validates_against_the_api_schemas() {
    for t in ["helm", "go", "python3"] {
        require(t);
    }
    let o = Command::new("bash")
        .arg(repo().join("scripts/chart-check.sh"))
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{all}");
    assert!(
        all.contains("all charts valid") && all.contains("0 invalid"),
        "{all}"
    );
}
