//! Tier 2, many services (issue #24): releases as a DAG run in parallel within a
//! bound, a failure stopping only what depends on it, `--only` with `needs` and
//! `[groups]`, and the capacity preflight.

use crate::support::{Out, Sandbox};
use serde_json::{json, Value};

const BASE: &str = "[project]\nname = \"fixture\"\nnamespace = \"apps\"\n[cluster]\nprovider = \"kind\"\nname = \"fx\"\n";

/// Two branches: a1 → b1 → c1 and a2 → b2.
const FIVE: &[(&str, &[&str])] = &[
    ("a1", &[]),
    ("a2", &[]),
    ("b1", &["a1"]),
    ("b2", &["a2"]),
    ("c1", &["b1"]),
];

/// A pipeline of chart-only releases, `(name, needs)`, written as `dag.toml`.
fn dag(s: &Sandbox, releases: &[(&str, &[&str])], extra: &str) {
    let mut t = BASE.to_string();
    for (name, needs) in releases {
        let needs: Vec<String> = needs.iter().map(|n| format!("\"{n}\"")).collect();
        t.push_str(&format!(
            "[releases.{name}]\nchart = \"chart\"\ntimeout = \"30s\"\nneeds = [{}]\n",
            needs.join(", ")
        ));
    }
    t.push_str(extra);
    std::fs::write(s.project.join("dag.toml"), t).unwrap();
}

/// `helm upgrade` of `release` takes `secs` before the fake answers.
fn slow_upgrade(s: &Sandbox, release: &str, secs: f64) {
    s.rule(json!({"tool": "helm", "match": [format!("upgrade --install {release} ")], "sleep": secs, "then_simulate": true}));
}

/// When each release's `helm upgrade` was spawned (seconds since the epoch).
fn upgrade_started(s: &Sandbox) -> std::collections::BTreeMap<String, f64> {
    s.calls()
        .iter()
        .filter(|c| c["tool"] == "helm" && c["argv"][0] == "upgrade")
        .map(|c| {
            (
                c["argv"][2].as_str().unwrap().to_string(),
                c["started"].as_f64().unwrap(),
            )
        })
        .collect()
}

fn events(o: &Out) -> Vec<Value> {
    crate::e2e_kind::events(&o.stdout)
}

/// A release starts as soon as the releases it needs are deployed and rolled out,
/// not when the whole layer before it is: `b2` needs only `a2`, so it upgrades while
/// `a1` still does (a1's upgrade lasts until the test has seen b2's start); `b1`
/// waits for `a1`, `c1` for `b1`.
#[test]
fn releases_follow_their_needs_not_their_layer() {
    let s = Sandbox::new();
    dag(&s, FIVE, "");
    let gate = s.dir.path().join("a1-may-finish");
    s.rule(json!({"tool": "helm", "match": ["upgrade --install a1 "], "until": gate, "then_simulate": true}));
    for r in ["a2", "b1", "b2", "c1"] {
        slow_upgrade(&s, r, 0.3);
    }
    let mut child = s
        .command(&["deploy-local", "--config", "dag.toml"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !upgrade_started(&s).contains_key("b2") && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let seen = upgrade_started(&s);
    std::fs::write(&gate, "").unwrap();
    let done = std::time::Instant::now();
    let status = child.wait().unwrap();
    assert!(status.success(), "deploy-local failed: {status:?}");
    assert!(
        seen.contains_key("b2") && !seen.contains_key("b1"),
        "b2 waited for a1, which it does not need: {seen:?}"
    );
    let t = upgrade_started(&s);
    assert_eq!(t.len(), 5, "{t:?}");
    assert!(
        t["b2"] >= t["a2"] + 0.3,
        "b2 started before a2 was deployed: {t:?}"
    );
    // b1 after a1's upgrade ended (the gate), c1 after b1's.
    let epoch = |i: std::time::Instant| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        now - i.elapsed().as_secs_f64()
    };
    assert!(
        t["b1"] >= epoch(done) - 0.1,
        "b1 started before a1 was deployed: {t:?}"
    );
    assert!(
        t["c1"] >= t["b1"] + 0.3,
        "c1 started before b1 was deployed: {t:?}"
    );
}

/// `--jobs 2`: four independent releases, never more than two upgrades at a time,
/// and two at a time indeed.
#[test]
fn parallel_releases_stay_within_the_bound() {
    let s = Sandbox::new();
    let names = ["r1", "r2", "r3", "r4"];
    let rels: Vec<(&str, &[&str])> = names.iter().map(|n| (*n, &[][..])).collect();
    dag(&s, &rels, "");
    for r in names {
        slow_upgrade(&s, r, 1.0);
    }
    let o = s.run(&["deploy-local", "--config", "dag.toml", "--jobs", "2"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let t: Vec<f64> = upgrade_started(&s).into_values().collect();
    assert_eq!(t.len(), 4);
    // Each upgrade runs for at least 1 s from its start: count overlaps.
    let most = t
        .iter()
        .map(|a| t.iter().filter(|b| **b <= *a && *a < **b + 1.0).count())
        .max()
        .unwrap();
    assert_eq!(most, 2, "upgrades at once: {t:?}");
}

/// A middle-layer release that fails stops its dependants only: the other branch
/// is deployed, the summary says what was not attempted and why, and the run fails
/// with the deploy stage's exit code.
#[test]
fn a_failed_middle_release_stops_only_its_dependants() {
    let s = Sandbox::new();
    dag(
        &s,
        &[
            ("a1", &[]),
            ("a2", &[]),
            ("b1", &["a1"]),
            ("b2", &["a2"]),
            ("c1", &["b1"]),
            ("d1", &["c1"]),
            ("c2", &["b2"]),
        ],
        "",
    );
    s.rule(json!({"tool": "helm", "match": ["upgrade --install b1 "], "stderr": "Error: b1 is broken\n", "exit": 1}));
    let o = s.run(&["deploy-local", "--config", "dag.toml"]);
    assert_eq!(o.code, 15, "{}", o.all());
    let t = upgrade_started(&s);
    for r in ["a1", "a2", "b1", "b2", "c2"] {
        assert!(t.contains_key(r), "{r} was not attempted: {t:?}");
    }
    for r in ["c1", "d1"] {
        assert!(!t.contains_key(r), "{r} was attempted after b1 failed");
    }
    for m in [
        "not attempted: deploy/c1 needs deploy/b1, which did not succeed",
        "not attempted: deploy/d1 needs deploy/c1, which did not succeed",
        "b1 is broken",
    ] {
        assert!(o.stderr.contains(m), "{m:?} not in:\n{}", o.stderr);
    }
    // In JSON, the same as skipped steps.
    let j = s.run(&["deploy-local", "--config", "dag.toml", "--output", "json"]);
    let skipped: Vec<String> = events(&j)
        .iter()
        .filter(|e| e["event"] == "step_skipped")
        .filter_map(|e| e["reason"].as_str().map(String::from))
        .filter(|r| r.starts_with("not attempted"))
        .collect();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
}

/// `--only` deploys the release and what it needs (transitively), says so in the
/// plan, and every job acts on the same subset; an unknown name is a usage error.
#[test]
fn only_selects_a_release_and_what_it_needs_for_every_job() {
    let s = Sandbox::new();
    dag(
        &s,
        FIVE,
        "[smoke.c1]\ntype = \"kubectl\"\nrelease = \"c1\"\nresource = \"deployment/c1\"\ncondition = \"Available\"\n\
         [smoke.b2]\ntype = \"kubectl\"\nrelease = \"b2\"\nresource = \"deployment/b2\"\ncondition = \"Available\"\n",
    );
    let p = s.run(&["plan", "--config", "dag.toml", "--only", "c1"]);
    assert_eq!(p.code, 0, "{}", p.all());
    for l in [
        "# --only c1",
        "#   release a1: needed by b1",
        "#   release b1: needed by c1",
        "#   release c1: named",
        "#   left out (releases): a2, b2",
        "#   left out (checks): b2",
    ] {
        assert!(p.stdout.contains(l), "{l:?} not in:\n{}", p.stdout);
    }
    let o = s.run(&["deploy-local", "--config", "dag.toml", "--only", "c1"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let t = upgrade_started(&s);
    assert_eq!(t.keys().collect::<Vec<_>>(), ["a1", "b1", "c1"], "{t:?}");
    assert!(
        !s.ran("deployment/b2"),
        "the left-out check ran:\n{:?}",
        s.argv_lines()
    );
    // status, logs, smoke and down see the same subset.
    for job in [&["status"][..], &["logs"], &["smoke"], &["down"]] {
        let before = s.calls().len();
        let mut args = job.to_vec();
        args.extend(["--config", "dag.toml", "--only", "c1"]);
        let o = s.run(&args);
        assert_eq!(o.code, 0, "{args:?}: {}", o.all());
        let lines: Vec<String> = s.argv_lines()[before..].to_vec();
        assert!(
            lines
                .iter()
                .any(|l| l.contains(" c1 ") || l.ends_with(" c1") || l.contains("c1 ")),
            "{args:?} did not touch c1: {lines:?}"
        );
        for l in &lines {
            assert!(
                !l.contains(" a2") && !l.contains(" b2") && !l.contains("deployment/b2"),
                "{args:?} touched a left-out release: {l}"
            );
        }
    }
    let bad = s.run(&["plan", "--config", "dag.toml", "--only", "c11"]);
    assert_eq!(bad.code, 2, "{}", bad.all());
    assert!(
        bad.stderr
            .contains("--only c11: no release or group of that name"),
        "{}",
        bad.stderr
    );
    assert!(bad.stderr.contains("did you mean `c1`?"), "{}", bad.stderr);
}

/// `[groups]`: `--only GROUP` is its releases plus what they need; a group naming
/// no release of the pipeline, or named like a release, is a located config error.
#[test]
fn groups_select_their_releases_and_are_validated() {
    let s = Sandbox::new();
    let rels: &[(&str, &[&str])] = &[("a1", &[]), ("a2", &[]), ("b1", &["a1"]), ("b2", &["a2"])];
    dag(
        &s,
        rels,
        "[groups]\nfront = [\"b1\"]\nbases = [\"a1\", \"a2\"]\n",
    );
    let p = s.run(&["plan", "--config", "dag.toml", "--only", "front"]);
    assert_eq!(p.code, 0, "{}", p.all());
    assert!(
        p.stdout.contains("#   release b1: group front"),
        "{}",
        p.stdout
    );
    assert!(
        p.stdout.contains("#   release a1: needed by b1"),
        "{}",
        p.stdout
    );
    assert!(
        p.stdout.contains("#   left out (releases): a2, b2"),
        "{}",
        p.stdout
    );
    let both = s.run(&[
        "plan", "--config", "dag.toml", "--only", "front", "--only", "bases",
    ]);
    assert!(
        both.stdout.contains("#   left out (releases): b2"),
        "{}",
        both.stdout
    );

    dag(
        &s,
        rels,
        "[groups]\nfront = [\"b3\"]\nb1 = [\"a1\"]\nnone = []\n",
    );
    let bad = s.run(&["plan", "--config", "dag.toml"]);
    assert_eq!(bad.code, 2, "{}", bad.all());
    for m in [
        "group `front` lists `b3`, which is not a release of this pipeline",
        "group `b1` has the name of a release",
        "group `none` lists no release",
        "dag.toml:",
    ] {
        assert!(bad.stderr.contains(m), "{m:?} not in:\n{}", bad.stderr);
    }
}

/// The capacity preflight: the rendered requests of the selected releases against
/// the nodes' allocatable — a warning naming the biggest consumers, a failure before
/// any release is deployed with `--strict`, and `--only` counting only its subset.
#[test]
fn capacity_preflight_warns_or_fails_with_strict() {
    let s = Sandbox::new();
    dag(&s, &[("a1", &[]), ("b1", &["a1"]), ("c1", &[])], "");
    let manifest = |cpu: &str| {
        format!("---\napiVersion: v1\nkind: Service\nmetadata:\n  name: x\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n  replicas: 2\n  template:\n    spec:\n      containers:\n        - name: app\n          resources:\n            requests:\n              cpu: {cpu}\n              memory: 256Mi\n")
    };
    // c1 asks for the most.
    s.rule(json!({"tool": "helm", "match": ["template c1 "], "stdout": manifest("900m")}));
    for r in ["a1", "b1"] {
        s.rule(json!({"tool": "helm", "match": [format!("template {r} ")], "stdout": manifest("500m")}));
    }
    s.rule(json!({"tool": "kubectl", "match": ["get nodes --output json"],
        "stdout": json!({"items": [{"metadata": {"name": "fx-control-plane"}, "status": {"allocatable": {"cpu": "2", "memory": "4Gi"}}}]}).to_string()}));
    let o = s.run(&["deploy-local", "--config", "dag.toml"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stderr.contains("warning: capacity: 3 releases request 3800m CPU and 1536 MiB of memory; 1 node allocate 2000m and 4096 MiB: they do not fit (CPU over); biggest: c1 (1800m, 512 MiB), a1 (1000m, 512 MiB), b1 (1000m, 512 MiB)"),
        "{}",
        o.stderr
    );
    assert_eq!(upgrade_started(&s).len(), 3);

    // --strict: nothing is deployed (the renders are skipped now: what they saved
    // the last time counts).
    let before = s.calls().len();
    let f = s.run(&[
        "deploy-local",
        "--config",
        "dag.toml",
        "--strict",
        "--force",
    ]);
    assert_eq!(f.code, 15, "{}", f.all());
    assert!(
        f.stderr.contains("they do not fit (CPU over)"),
        "{}",
        f.stderr
    );
    let later = &s.calls()[before..];
    assert!(
        !later
            .iter()
            .any(|c| c["tool"] == "helm" && c["argv"][0] == "upgrade"),
        "a release was deployed although the capacity check failed"
    );
    let again = s.run(&["deploy-local", "--config", "dag.toml", "--strict"]);
    assert_eq!(again.code, 15, "{}", again.all());

    // Only b1 and what it needs: 2000m fits.
    let only = s.run(&[
        "deploy-local",
        "--config",
        "dag.toml",
        "--strict",
        "--only",
        "b1",
    ]);
    assert_eq!(only.code, 0, "{}", only.all());
    assert!(
        only.stderr.contains("capacity: 2 releases request 2000m CPU and 1024 MiB of memory; 1 node allocate 2000m and 4096 MiB"),
        "{}",
        only.stderr
    );
}
