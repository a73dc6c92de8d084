//! Tier 3: a rotated secret reaches the pods of a real kind cluster. The sample reads
//! SAMPLE_API_TOKEN (Secret sample-credentials) as env and answers `POST /api/echo`
//! with the first 6 bytes of its SHA-256: after a rerun with another value, every pod
//! answers with the new one. Cluster slipway-e2e-rot (profile e2e-rotation, host port
//! 18093), deleted afterwards.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::e2e_kind::{expect_ok, ready, slipway_in};

const NODE_PORT: u16 = 18093;
const PROFILE: &str = "e2e-rotation";

/// What the sample says of its token: `secret_sha256` of `POST /api/echo`.
fn token_sha() -> Result<String, String> {
    let mut s =
        TcpStream::connect_timeout(&([127, 0, 0, 1], NODE_PORT).into(), Duration::from_secs(2))
            .map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(3)))
        .map_err(|e| e.to_string())?;
    let body = "{}";
    write!(
        s,
        "POST /api/echo HTTP/1.1\r\nhost: e2e\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| e.to_string())?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).map_err(|e| e.to_string())?;
    let json = buf.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| format!("{e}: {buf}"))?;
    v["secret_sha256"]
        .as_str()
        .map(String::from)
        .ok_or_else(|| format!("no secret_sha256: {buf}"))
}

fn short_sha(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Twenty answers in a row (both replicas, through the NodePort) with `want`.
fn all_answer(want: &str) -> Result<(), String> {
    let end = Instant::now() + Duration::from_secs(60);
    let mut streak = 0;
    let mut last = String::new();
    while Instant::now() < end {
        match token_sha() {
            Ok(s) if s == want => streak += 1,
            Ok(s) => {
                streak = 0;
                last = s;
            }
            Err(e) => {
                streak = 0;
                last = e;
            }
        }
        if streak >= 20 {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("pods still answer {last:?}, not {want}"))
}

#[test]
#[cfg_attr(
    not(slipway_ci),
    ignore = "tier 3: needs Docker, kind, helm, kubectl and the node image; runs in CI (CI=true) or with --ignored"
)]
fn a_rotated_secret_reaches_the_pods_of_a_real_cluster() {
    if let Err(why) = ready() {
        panic!("e2e prerequisites missing: {why} (.ci/run provides them)");
    }
    let _one = crate::support::real_cluster_lock();
    let first = "rotation-token-first-0001";
    let second = "rotation-token-second-0002";
    let r = slipway_in(PROFILE, &["deploy-local"], &[("SAMPLE_API_TOKEN", first)]);
    expect_ok(&r, "deploy-local with the first token");
    let checked = all_answer(&short_sha(first));
    let r2 = slipway_in(PROFILE, &["deploy-local"], &[("SAMPLE_API_TOKEN", second)]);
    let rotated = all_answer(&short_sha(second));
    let _ = slipway_in(PROFILE, &["down", "--cluster"], &[]);
    checked.expect("the first token reached the pods");
    expect_ok(&r2, "deploy-local with the rotated token");
    assert!(
        r2.stderr.contains("secret sample-credentials changed"),
        "{}",
        r2.stderr
    );
    assert!(!r2.stderr.contains(second) && !r2.stdout.contains(second));
    rotated.expect("the rotated token reached every pod");
}
