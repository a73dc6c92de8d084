//! Tier 3, many services (issue #24): the generated fixture at N = 10 (three layers
//! of `needs`) on a real kind cluster of its own (slipway-e2e-forty, no host port),
//! deleted afterwards. One cluster for every step:
//!
//! 1. cold: every image built and loaded, every release installed, each layer after
//!    the releases it needs, every smoke check passed;
//! 2. no change: nothing built, loaded or upgraded;
//! 3. one service's source changed: only its image built and only its release
//!    upgraded;
//! 4. `--only` with `needs`: `down --only X` then `deploy-local --only X` touch X and
//!    what it needs, nothing else;
//! 5. a middle-layer release that cannot become ready: its dependants are not
//!    attempted, every other release is deployed, the run fails with exit 15.
//!
//! Wall time per step goes to stderr and target/e2e-forty-report.txt.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::e2e_kind::{events, ready, Run};
use crate::support::repo;

#[allow(dead_code)]
#[path = "../../../xtask/src/fixture_gen.rs"]
pub(crate) mod fixture_gen;

const CLUSTER: &str = "slipway-e2e-forty";
const N: usize = 10;

fn slipway(dir: &Path, args: &[&str]) -> Run {
    let started = Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args(args)
        .args(["--output", "json"])
        .current_dir(dir)
        .env("CI", "1")
        .output()
        .unwrap();
    let r = Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        took: started.elapsed(),
    };
    eprintln!(
        "$ slipway {} -> exit {} in {:.1}s",
        args.join(" "),
        r.code,
        r.took.as_secs_f64()
    );
    r
}

/// The ids of the steps a run started (not skipped) with `prefix` (`helm/`, `build/`).
fn started(r: &Run, prefix: &str) -> BTreeSet<String> {
    events(&r.stdout)
        .iter()
        .filter(|e| e["event"] == "step_started")
        .filter_map(|e| e["step"].as_str())
        .filter_map(|s| s.strip_prefix(prefix))
        .map(String::from)
        .collect()
}

fn expect_ok(r: &Run, what: &str) {
    assert_eq!(r.code, 0, "{what} failed:\n{}\n{}", r.stdout, r.stderr);
}

/// The sample's static binary (built like the pipeline's pre_build does).
fn sample_binary() -> PathBuf {
    let bin = repo().join("services/sample/bin/sample");
    if !bin.is_file() {
        let ok = Command::new("bash")
            .args([
                "scripts/build-static.sh",
                "sample",
                "services/sample/bin/sample",
            ])
            .current_dir(repo())
            .env("CARGO_TARGET_DIR", repo().join("target/nested"))
            .status()
            .unwrap()
            .success();
        assert!(ok, "scripts/build-static.sh failed");
    }
    bin
}

/// Deletes the cluster and this run's fixture images however the test ends.
struct Cluster;
impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("kind")
            .args(["delete", "cluster", "--name", CLUSTER])
            .output();
        let ids = Command::new("docker")
            .args(["images", "--filter", "reference=forty/*", "-q"])
            .output();
        if let Ok(ids) = ids {
            let ids: Vec<String> = String::from_utf8_lossy(&ids.stdout)
                .split_whitespace()
                .map(String::from)
                .collect();
            if !ids.is_empty() {
                let _ = Command::new("docker")
                    .args(["rmi", "-f"])
                    .args(&ids)
                    .output();
            }
        }
    }
}

/// Writes `note` into every service's `service.txt` (part of its image's context),
/// so no image an earlier run left in the engine matches this run's content tags.
fn stamp(dir: &Path, name: &str, note: &str) {
    let f = dir.join("services").join(name).join("service.txt");
    std::fs::write(&f, format!("{name}\n{note}\n")).unwrap();
}

#[test]
#[cfg_attr(
    not(slipway_ci),
    ignore = "tier 3: needs Docker, kind, helm, kubectl and the node image; runs in CI (CI=true) or with --ignored"
)]
fn forty_services_at_ten_on_a_real_cluster() {
    if let Err(why) = ready() {
        panic!("e2e prerequisites missing: {why} (.ci/run provides them)");
    }
    let _one = crate::support::real_cluster_lock();
    let t0 = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fixture");
    fixture_gen::generate(
        &dir,
        N,
        CLUSTER,
        &sample_binary(),
        &repo().join("helm/sample"),
    )
    .unwrap();
    let svcs = fixture_gen::services(N);
    let all: BTreeSet<String> = svcs.iter().map(|s| s.name.clone()).collect();
    // A cold run builds every image: an engine that kept `forty/*` images from an
    // earlier run (same generator, same content) would otherwise skip the builds.
    let nonce = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    for s in &svcs {
        stamp(&dir, &s.name, &format!("run {nonce}"));
    }
    let _cluster = Cluster;
    let mut report = vec![];

    // 1. cold
    let cold = slipway(&dir, &["deploy-local"]);
    expect_ok(&cold, "cold deploy-local");
    report.push(format!(
        "cold deploy-local: {:.1}s",
        cold.took.as_secs_f64()
    ));
    assert_eq!(started(&cold, "helm/"), all);
    assert_eq!(started(&cold, "build/"), all);
    let passed = events(&cold.stdout)
        .iter()
        .filter(|e| e["event"] == "check" && e["ok"] == true && e["stage"] == "smoke")
        .count();
    assert_eq!(passed, N, "every service's smoke check passes");
    // Each release's upgrade started after the rollouts of those it needs finished.
    let ev = events(&cold.stdout);
    let at = |event: &str, step: &str| {
        ev.iter()
            .position(|e| e["event"] == event && e["step"] == step)
            .unwrap_or_else(|| panic!("no {event} {step}"))
    };
    for s in &svcs {
        for d in &s.needs {
            assert!(
                at("step_finished", &format!("ready/{d}"))
                    < at("step_started", &format!("helm/{}", s.name)),
                "{} upgraded before {d} was ready",
                s.name
            );
        }
    }

    // 2. no change
    let again = slipway(&dir, &["deploy-local"]);
    expect_ok(&again, "no-change deploy-local");
    report.push(format!(
        "no-change deploy-local: {:.1}s",
        again.took.as_secs_f64()
    ));
    assert_eq!(started(&again, "helm/"), BTreeSet::new());
    assert_eq!(started(&again, "build/"), BTreeSet::new());
    assert_eq!(started(&again, "load/"), BTreeSet::new());

    // 3. one service's source changed: a leaf
    let leaf = &svcs[N - 1].name;
    stamp(&dir, leaf, &format!("run {nonce} changed"));
    let one = slipway(&dir, &["deploy-local"]);
    expect_ok(&one, "one-changed deploy-local");
    report.push(format!(
        "one service changed: {:.1}s",
        one.took.as_secs_f64()
    ));
    let just = BTreeSet::from([leaf.clone()]);
    assert_eq!(started(&one, "helm/"), just);
    assert_eq!(started(&one, "build/"), just);

    // 4. --only with needs: a layer-2 service and what it needs (transitively)
    let target = &svcs[N - 2];
    let mut want: BTreeSet<String> = BTreeSet::from([target.name.clone()]);
    let mut todo: Vec<String> = target.needs.clone();
    while let Some(d) = todo.pop() {
        if want.insert(d.clone()) {
            todo.extend(svcs.iter().find(|s| s.name == d).unwrap().needs.clone());
        }
    }
    let down = slipway(&dir, &["down", "--only", &target.name]);
    expect_ok(&down, "down --only");
    assert_eq!(started(&down, "uninstall/"), want);
    let only = slipway(&dir, &["deploy-local", "--only", &target.name]);
    expect_ok(&only, "deploy-local --only");
    report.push(format!(
        "deploy-local --only {} ({} releases): {:.1}s",
        target.name,
        want.len(),
        only.took.as_secs_f64()
    ));
    assert_eq!(started(&only, "helm/"), want);

    // 5. a middle-layer release that cannot become ready
    let middle = svcs.iter().find(|s| s.layer == 1).unwrap().name.clone();
    let dependants: BTreeSet<String> = svcs
        .iter()
        .filter(|s| s.needs.contains(&middle))
        .map(|s| s.name.clone())
        .collect();
    assert!(!dependants.is_empty());
    let mut t = std::fs::read_to_string(dir.join("pipeline.toml")).unwrap();
    t.push_str(&format!(
        "\n[profiles.broken]\ndescription = \"{middle} deploys a tag that was never loaded\"\nreleases.{middle}.timeout = \"45s\"\nreleases.{middle}.set_string.\"image.tag\" = \"never-loaded\"\n"
    ));
    std::fs::write(dir.join("pipeline.toml"), t).unwrap();
    let broken = slipway(&dir, &["deploy-local", "--profile", "broken"]);
    report.push(format!(
        "a failing middle release: {:.1}s",
        broken.took.as_secs_f64()
    ));
    assert_eq!(broken.code, 15, "{}\n{}", broken.stdout, broken.stderr);
    let not_attempted: BTreeSet<String> = events(&broken.stdout)
        .iter()
        .filter(|e| e["event"] == "step_skipped")
        .filter_map(|e| e["reason"].as_str())
        .filter_map(|r| r.strip_prefix("not attempted: deploy/"))
        .filter_map(|r| r.split_once(' ').map(|(n, _)| n.to_string()))
        .collect();
    assert_eq!(not_attempted, dependants, "{}", broken.stdout);
    assert_eq!(
        started(&broken, "helm/"),
        BTreeSet::from([middle.clone()]),
        "only the broken release changed, so only it is upgraded"
    );

    report.push(format!("total: {:.1}s", t0.elapsed().as_secs_f64()));
    let text = report.join("\n") + "\n";
    eprint!("{text}");
    let _ = std::fs::create_dir_all(repo().join("target"));
    let _ = std::fs::write(repo().join("target/e2e-forty-report.txt"), text);
}
