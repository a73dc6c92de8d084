//! Tier 2: "the new version is serving" is judged from the Services' EndpointSlices,
//! not from the workloads' rollout status. While a ready endpoint is a pod of an old
//! ReplicaSet the round waits (and the smoke stage has not started); it passes once
//! only current pods remain, and fails at the release's timeout naming the old pods.

use serde_json::json;

use crate::support::Sandbox;

const SERVING: &str = "get services,endpointslices,replicasets";

/// Release `web`'s Service with one ready endpoint of the old ReplicaSet and one of
/// the current one.
fn mixed() -> String {
    json!({"items": [
        {"kind": "Service", "metadata": {"name": "web", "annotations": {"meta.helm.sh/release-name": "web"}},
         "spec": {"selector": {"app.kubernetes.io/instance": "web"}}},
        {"kind": "EndpointSlice", "metadata": {"name": "web-x", "labels": {"kubernetes.io/service-name": "web"}},
         "endpoints": [
            {"conditions": {"ready": true}, "targetRef": {"kind": "Pod", "name": "web-6b7f9-old01"}},
            {"conditions": {"ready": true}, "targetRef": {"kind": "Pod", "name": "web-5d8c4-new01"}}
         ]},
        {"kind": "ReplicaSet", "metadata": {"name": "web-6b7f9", "annotations": {"deployment.kubernetes.io/revision": "1"},
         "ownerReferences": [{"kind": "Deployment", "name": "web"}]}},
        {"kind": "ReplicaSet", "metadata": {"name": "web-5d8c4", "annotations": {"deployment.kubernetes.io/revision": "2"},
         "ownerReferences": [{"kind": "Deployment", "name": "web"}]}}
    ]})
    .to_string()
}

/// Index of the first invocation containing `needle` after (or before, `last`) the others.
fn positions(s: &Sandbox, needle: &str) -> Vec<usize> {
    s.argv_lines()
        .iter()
        .enumerate()
        .filter(|(_, l)| l.contains(needle))
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn an_old_pod_that_still_serves_is_waited_for_and_smoke_starts_after() {
    let s = Sandbox::new();
    s.rule(json!({"tool": "kubectl", "match": [SERVING], "stdout": mixed(), "times": 3}));
    let o = s.run(&["deploy-local"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let reads = positions(&s, SERVING);
    assert!(
        reads.len() >= 4,
        "the round did not wait for the old pod to leave the endpoints ({} read(s)):\n{}",
        reads.len(),
        o.stderr
    );
    assert!(
        o.stderr.contains("web serving: all 2 ready endpoint(s) of service web are pods of the new revision (old pods left the endpoints"),
        "{}",
        o.stderr
    );
    // No smoke request before the judgement: every port-forward starts after the
    // last endpoints read.
    let forwards = positions(&s, "port-forward");
    assert!(!forwards.is_empty(), "{}", o.stderr);
    assert!(
        forwards.iter().all(|f| f > reads.last().unwrap()),
        "a smoke check ran before the new pods alone were serving: reads {reads:?}, forwards {forwards:?}"
    );
}

#[test]
fn old_pods_that_keep_serving_fail_the_round_at_the_deadline_naming_them() {
    let s = Sandbox::new();
    s.rule(json!({"tool": "kubectl", "match": [SERVING], "stdout": mixed()}));
    s.append_config("[profiles.short]\nreleases.web.timeout = \"6s\"\n");
    let o = s.run(&["--profile", "short", "deploy-local"]);
    assert_ne!(o.code, 0, "{}", o.all());
    assert!(
        o.stderr.contains("release web rolled out, but its Services still send requests to pods of the old revision"),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr.contains(
            "service web → old pod web-6b7f9-old01 (replicaset web-6b7f9, current web-5d8c4)"
        ),
        "{}",
        o.stderr
    );
    assert!(
        !o.stderr.contains("web-5d8c4-new01 (replicaset"),
        "{}",
        o.stderr
    );
    assert!(
        positions(&s, "port-forward").is_empty(),
        "smoke ran: {}",
        o.stderr
    );
}

/// Secret applies (kubectl apply with a Secret on stdin) the fakes recorded.
fn secret_applies(s: &Sandbox) -> usize {
    s.calls()
        .iter()
        .filter(|c| {
            c["tool"] == "kubectl"
                && c["stdin"]
                    .as_str()
                    .is_some_and(|i| i.contains("\"kind\": \"Secret\""))
        })
        .count()
}

/// A Secret whose digest annotation is the keyed digest of the values it would be
/// applied with is not applied again (the step says why); a changed value, or
/// --force, applies it.
#[test]
fn a_secret_that_already_holds_its_values_is_not_applied_again() {
    let mut s = Sandbox::new();
    let first = s.run(&["deploy-local"]);
    assert_eq!(first.code, 0, "{}", first.all());
    assert_eq!(secret_applies(&s), 1);
    let again = s.run(&["deploy-local"]);
    assert_eq!(again.code, 0, "{}", again.all());
    assert_eq!(secret_applies(&s), 1, "applied again:\n{}", again.stderr);
    assert!(
        again.stderr.contains("skipped: secret web-secrets in apps already holds these values (its slipway.dev/digest annotation is their keyed digest "),
        "{}",
        again.stderr
    );
    // The annotation is a digest, never the value.
    let state = std::fs::read_to_string(s.state.join("state.json")).unwrap();
    assert!(!state.contains(crate::support::CANARY), "{state}");
    s.set_env("FIXTURE_TOKEN", "a-rotated-token-value");
    let rotated = s.run(&["deploy-local"]);
    assert_eq!(rotated.code, 0, "{}", rotated.all());
    assert_eq!(secret_applies(&s), 2, "a changed value was not applied");
    let forced = s.run(&["deploy-local", "--force"]);
    assert_eq!(forced.code, 0, "{}", forced.all());
    assert_eq!(secret_applies(&s), 3, "--force did not apply it");
}

/// Every round prints its critical path, and the steps of the JSON `critical_path`
/// event sum to the run's wall time within 5 %.
#[test]
fn the_critical_path_sums_to_the_wall_time() {
    let s = Sandbox::new();
    let o = s.run(&["--output", "json", "deploy-local"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let events: Vec<serde_json::Value> = o
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        events.iter().all(|e| e["elapsed_ms"].is_u64()),
        "an event without elapsed_ms"
    );
    let path = events
        .iter()
        .find(|e| e["event"] == "critical_path")
        .expect("a critical_path event");
    let wall = events
        .iter()
        .find(|e| e["event"] == "run_finished")
        .unwrap()["duration_ms"]
        .as_u64()
        .unwrap() as f64;
    let steps = path["steps"].as_array().unwrap();
    let sum: u64 = steps.iter().map(|s| s["ms"].as_u64().unwrap()).sum();
    assert!(
        (sum as f64 - wall).abs() <= 0.05 * wall,
        "the critical path sums to {sum} ms, the run took {wall} ms: {path}"
    );
    // The stages that ran are on it: the rollout's step and the start.
    let names: Vec<&str> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"rollout/web"), "{names:?}");
    assert!(names.contains(&"start: config, plan, lock"), "{names:?}");
    let plain = s.run(&["deploy-local"]);
    assert!(
        plain
            .stderr
            .lines()
            .any(|l| l.trim_start().starts_with("critical path ") && l.contains(" → ")),
        "{}",
        plain.stderr
    );
}
