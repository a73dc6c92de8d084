//! Tier 2: the Docker engine, provisioned tools and node images are what the user
//! asked for. slipway never starts a dockerd when DOCKER_HOST or a docker context names
//! the engine, merges the host's daemon.json, edits OCI specs as JSON (dropping only
//! the capabilities the host's bounding set lacks), installs no package unasked,
//! refuses plain-HTTP mirrors, verifies every download against the SHA-256 pinned in
//! its source and every cached binary against the digest it recorded, and never
//! replaces a pinned node image or Kubernetes version with its own offline image.

use serde_json::Value;

use crate::support::Sandbox;

fn calls_of<'a>(calls: &'a [Value], tool: &str) -> Vec<&'a Value> {
    calls.iter().filter(|c| c["tool"] == tool).collect()
}

fn append(s: &Sandbox, text: &str) {
    let p = s.project.join("pipeline.toml");
    let mut t = std::fs::read_to_string(&p).unwrap();
    t.push_str(text);
    std::fs::write(&p, t).unwrap();
}

/// A recipe started in the sandbox stops at its first step: the node-image recipe at
/// its `docker info` (preflight's `docker info --format …` still answers), minikube's
/// at `go` (not on the sandbox's PATH). Its progress lines show that it ran.
fn recipes_stop_early(s: &Sandbox) {
    s.rule(
        serde_json::json!({"tool": "docker", "match": ["info", "--format"],
        "stdout": "{\"ServerVersion\": \"27.3.1\", \"DockerRootDir\": \"/\"}\n"}),
    );
    s.rule(
        serde_json::json!({"tool": "docker", "match": ["info"], "exit": 1,
        "stderr": "stopped by the test\n"}),
    );
}

const KIND_RECIPE_RAN: &str = "the Docker daemon does not answer (docker info)";
const MINIKUBE_RECIPE_RAN: &str = "phase image: start";

fn unpullable(s: &Sandbox, image: &str) {
    s.rule(
        serde_json::json!({"tool": "docker", "match": ["image", "inspect", image], "exit": 1,
        "stderr": format!("Error response from daemon: No such image: {image}\n")}),
    );
}

// ------------------------------------------------------------ pinned node images

#[test]
fn a_pinned_kind_node_image_that_cannot_be_pulled_fails_with_the_pull_error() {
    let s = Sandbox::new();
    recipes_stop_early(&s);
    append(
        &s,
        "\n[cluster.kind]\nnode_image = \"kindest/node:v1.31.0\"\n",
    );
    unpullable(&s, "kindest/node");
    let o = s.run(&["deploy-local"]);
    assert_ne!(o.code, 0, "{}", o.all());
    assert!(
        o.stderr.contains("kindest/node:v1.31.0") && o.stderr.contains("no such host"),
        "the pull's error is shown: {}",
        o.stderr
    );
    assert!(
        o.stderr.contains("scripts/kind-node-image.sh"),
        "{}",
        o.stderr
    );
    let calls = s.calls();
    assert!(
        !calls_of(&calls, "kind")
            .iter()
            .any(|c| c["argv"][0] == "create"),
        "no cluster was created"
    );
    assert!(
        !o.all().contains(KIND_RECIPE_RAN),
        "the offline image was not built"
    );
}

#[test]
fn the_default_kind_node_image_still_falls_back_to_the_offline_one() {
    let s = Sandbox::new();
    recipes_stop_early(&s);
    unpullable(&s, "kindest/node");
    let o = s.run(&["--output", "json", "deploy-local"]);
    // The offline recipe runs (its fake bash fails) rather than the run stopping at
    // the pull.
    assert!(
        o.stdout.contains("building slipway's offline node image"),
        "{}",
        o.all()
    );
    assert!(o.all().contains(KIND_RECIPE_RAN), "{}", o.all());
}

#[test]
fn a_pinned_minikube_kubernetes_version_is_never_replaced() {
    let s = Sandbox::new();
    recipes_stop_early(&s);
    append(
        &s,
        "\n[cluster.minikube]\nkubernetes_version = \"v1.31.0\"\n",
    );
    unpullable(&s, "kicbase");
    let o = s.run(&["deploy-local", "--profile", "local-minikube"]);
    assert_ne!(o.code, 0, "{}", o.all());
    assert!(
        o.stderr.contains("kubernetes_version = \"v1.31.0\"") && o.stderr.contains("no such host"),
        "{}",
        o.stderr
    );
    let calls = s.calls();
    assert!(
        !calls_of(&calls, "minikube")
            .iter()
            .any(|c| c["argv"][0] == "start"),
        "no profile was started"
    );
    assert!(!o.all().contains(MINIKUBE_RECIPE_RAN), "{}", o.all());
}

#[test]
fn the_default_minikube_kubernetes_still_falls_back() {
    let s = Sandbox::new();
    recipes_stop_early(&s);
    unpullable(&s, "kicbase");
    let o = s.run(&[
        "--output",
        "json",
        "deploy-local",
        "--profile",
        "local-minikube",
    ]);
    assert!(
        o.stdout.contains("building slipway's offline node image"),
        "{}",
        o.all()
    );
    assert!(o.all().contains(MINIKUBE_RECIPE_RAN), "{}", o.all());
}
