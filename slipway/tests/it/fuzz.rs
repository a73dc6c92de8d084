//! Tier 1, a brief mutation fuzzer on stable Rust (it runs in every `cargo test`):
//! the config loader and every parser of tool output get thousands of inputs made by
//! mutating real ones — the config corpus and captured tool output — and must answer
//! with a value or an error, never a panic. Seeded, so a failure reproduces; set
//! `SLIPWAY_FUZZ_ITERS` for a longer run.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use slipway::config::{self, interp, LoadOptions, Vars};
use slipway::tools::{docker, helm, k8s, kind, minikube};

/// xorshift64*: small, fast, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Tokens that matter to TOML, JSON, interpolation and the parsers.
const TOKENS: &[&str] = &[
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    "=",
    "\"",
    "'",
    "\"\"\"",
    ",",
    ".",
    ":",
    "\n",
    "#",
    "${",
    "${images.",
    "$$",
    ":-",
    "\\u0000",
    "\u{0}",
    "\u{1b}[2J",
    "-1",
    "0",
    "1e400",
    "99999999999999999999",
    "true",
    "null",
    "[]",
    "{}",
    "\"items\":",
    "\"status\":",
    "\"containerStatuses\":[{",
    "\"conditions\":[{\"type\":\"Ready\"",
    "é",
    "\u{FEFF}",
    "inf",
    "nan",
    "1979-05-27T07:32:00Z",
    "\r\n",
    "\t",
    "\\",
];

fn mutate(rng: &mut Rng, input: &str, other: &str) -> String {
    let mut b: Vec<u8> = input.as_bytes().to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(b.len() + 1);
        match rng.below(6) {
            0 => {
                let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                b.splice(at..at, t.iter().copied());
            }
            1 if !b.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(b.len());
                b.drain(at.min(end)..end);
            }
            2 if at < b.len() => b[at] = (rng.next() & 0xff) as u8,
            3 => {
                // Splice a piece of another input in.
                let o = other.as_bytes();
                let s = rng.below(o.len() + 1);
                let e = (s + rng.below(64)).min(o.len());
                b.splice(at..at, o[s..e].iter().copied());
            }
            4 if !b.is_empty() => {
                // Duplicate a stretch (repeated keys and tables).
                let s = rng.below(b.len());
                let e = (s + rng.below(48)).min(b.len());
                let piece = b[s..e].to_vec();
                b.splice(at..at, piece);
            }
            _ => b.truncate(at),
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

fn iters() -> usize {
    std::env::var("SLIPWAY_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4000)
}

/// Run `f` on each mutated input; collect the inputs that panicked.
fn fuzz(seed: u64, seeds: &[String], mut f: impl FnMut(&str)) {
    let mut rng = Rng(seed);
    let mut panics = vec![];
    for _ in 0..iters() {
        let a = &seeds[rng.below(seeds.len())];
        let b = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, a, b);
        if catch_unwind(AssertUnwindSafe(|| f(&input))).is_err() {
            panics.push(input);
        }
    }
    assert!(
        panics.is_empty(),
        "{} input(s) panicked; the first:\n{:?}",
        panics.len(),
        panics[0]
    );
}

fn corpus() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut v: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "toml"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    v.push(
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../pipeline.toml"))
            .unwrap(),
    );
    v.sort();
    v
}

#[test]
fn the_config_loader_never_panics() {
    // Mutated files are loaded from the corpus directory, so relative paths (charts,
    // contexts, values files) resolve as the originals do.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let tmp = tempfile::Builder::new()
        .prefix(".fuzz-")
        .suffix(".toml")
        .tempfile_in(&dir)
        .unwrap();
    let vars = Vars::new(
        BTreeMap::from([("HOME_REGION".into(), "eu".into())]),
        BTreeMap::new(),
    );
    let seeds = corpus();
    fuzz(0x5eed_c0f1, &seeds, |text| {
        std::fs::write(tmp.path(), text).unwrap();
        for profile in [None, Some("ci".to_string())] {
            let _ = config::load(&LoadOptions {
                file: tmp.path().to_path_buf(),
                profile,
                vars: Some(vars.clone()),
            });
        }
        let _ = interp::interpolate(text, &vars);
    });
}

#[test]
fn tool_output_parsers_never_panic() {
    let seeds: Vec<String> = [
        r#"{"name":"sample","info":{"status":"deployed","description":"slipway digest abc"},"version":3}"#,
        r#"{"items":[{"kind":"Deployment","metadata":{"name":"web","generation":3,"annotations":{"meta.helm.sh/release-name":"r"}},"spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}}},"status":{"observedGeneration":3,"replicas":2,"updatedReplicas":2,"availableReplicas":2,"readyReplicas":2,"conditions":[{"type":"Progressing","status":"False","reason":"ProgressDeadlineExceeded"}]}},{"kind":"Job","metadata":{"name":"m","annotations":{"helm.sh/hook":"pre-upgrade","meta.helm.sh/release-name":"r"}},"spec":{"selector":{"matchLabels":{"batch.kubernetes.io/controller-uid":"u"}}},"status":{"conditions":[{"type":"Failed","status":"True","reason":"BackoffLimitExceeded"}]}}]}"#,
        r#"{"items":[{"metadata":{"name":"web-1","labels":{"app":"web"},"creationTimestamp":"2026-01-01T00:00:00Z","deletionTimestamp":null},"spec":{"volumes":[{"persistentVolumeClaim":{"claimName":"d"}}]},"status":{"phase":"Running","conditions":[{"type":"PodScheduled","status":"False","reason":"Unschedulable","message":"0/1"}],"initContainerStatuses":[{"name":"i","restartCount":0,"state":{"terminated":{"reason":"Completed","exitCode":0}}}],"containerStatuses":[{"name":"web","ready":false,"restartCount":3,"state":{"waiting":{"reason":"CrashLoopBackOff","message":"back-off"}},"lastState":{"terminated":{"reason":"Error","exitCode":2}}}]}}]}"#,
        r#"{"items":[{"involvedObject":{"kind":"Pod","name":"web-1"},"reason":"Unhealthy","message":"Readiness probe failed","type":"Warning","count":4,"lastTimestamp":"2026-01-01T00:00:09Z"}]}"#,
        r#"{"contexts":[{"name":"kind-x","context":{"cluster":"kind-x"}}],"clusters":[{"name":"kind-x","cluster":{"server":"https://127.0.0.1:40123","extensions":[{"name":"cluster_info","extension":{"provider":"minikube.sigs.k8s.io"}}]}}]}"#,
        r#"{"clientVersion":{"gitVersion":"v1.34.13"}}"#,
        r#"[{"Name":"m","Host":"Running","Kubelet":"Running","APIServer":"Running"}]"#,
        r#"{"DockerRootDir":"/var/lib/docker"}"#,
        "kind\nslipway-e2e\n",
        "v4.3.1",
        "version.BuildInfo{Version:\"v3.22.0\"}",
        "[{\"Id\":\"sha256:abc\"}]",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    fuzz(0xfa57_7001, &seeds, |s| {
        let _ = helm::parse_status(s);
        let _ = helm::parse_version(s);
        let _ = k8s::parse_workloads(s, "r");
        let _ = k8s::parse_failed_hooks(s);
        let _ = k8s::parse_pods(s);
        let _ = k8s::parse_events(s);
        let _ = k8s::parse_node_ports(s, &["r".to_string()]);
        let _ = k8s::node_port_of(s, "web", 80);
        let _ = k8s::parse_context(s, "kind-x");
        let _ = k8s::parse_client_version(s);
        let _ = kind::parse_clusters(s);
        let _ = kind::parse_nodes(s);
        let _ = kind::parse_image_id(s);
        let _ = minikube::parse_running(s);
        let _ = docker::parse_root_dir(s);
        let _ = slipway::tools::parse_version(s);
    });
}
