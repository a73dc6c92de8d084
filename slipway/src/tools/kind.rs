//! kind: cluster lifecycle and image loading.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Cmd, PROBE};

/// The node image kind v0.30.0 creates clusters from when none is given.
pub const DEFAULT_NODE_IMAGE: &str =
    "kindest/node:v1.34.0@sha256:7416a61b42b1662ca6ca89f02028ac133a309a2a30ba309614e8ec94d976dc5a";

pub fn version() -> Cmd {
    Cmd::new("kind", ["version"]).timeout(PROBE)
}

pub fn get_clusters() -> Cmd {
    Cmd::new("kind", ["get", "clusters"]).timeout(PROBE)
}

/// Cluster names from `kind get clusters` ("No kind clusters found." goes to stderr).
pub fn parse_clusters(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("No kind clusters"))
        .map(String::from)
        .collect()
}

/// A host port mapped into the control-plane node (`[cluster.kind] port_mappings`).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct PortMapping {
    pub container_port: u16,
    pub host_port: u16,
    #[serde(default = "loopback")]
    pub listen_address: String,
    #[serde(default = "tcp")]
    pub protocol: String,
}

fn loopback() -> String {
    "127.0.0.1".into()
}
fn tcp() -> String {
    "TCP".into()
}

/// The kind `Cluster` config passed on stdin to `kind create cluster --config -`.
/// Written as JSON (which is YAML) by a serializer, so no value can add a key.
pub fn cluster_config(disable_default_cni: bool, port_mappings: &[PortMapping]) -> String {
    let mut node = serde_json::json!({"role": "control-plane"});
    if !port_mappings.is_empty() {
        node["extraPortMappings"] = port_mappings
            .iter()
            .map(|m| {
                serde_json::json!({
                    "containerPort": m.container_port,
                    "hostPort": m.host_port,
                    "listenAddress": m.listen_address,
                    "protocol": m.protocol,
                })
            })
            .collect();
    }
    let mut cfg = serde_json::json!({
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "nodes": [node],
    });
    if disable_default_cni {
        cfg["networking"] = serde_json::json!({"disableDefaultCNI": true});
    }
    serde_json::to_string_pretty(&cfg).expect("a kind config serializes")
}

pub fn delete(name: &str) -> Cmd {
    Cmd::new("kind", ["delete", "cluster", "--name", name]).timeout(Duration::from_secs(300))
}

pub fn get_nodes(name: &str) -> Cmd {
    Cmd::new("kind", ["get", "nodes", "--name", name]).timeout(PROBE)
}

pub fn parse_nodes(stdout: &str) -> Vec<String> {
    parse_clusters(stdout)
}

pub fn load(name: &str, reference: &str, timeout: Duration) -> Cmd {
    Cmd::new("kind", ["load", "docker-image", reference, "--name", name]).timeout(timeout)
}

/// The image a kind node holds for a reference, as `crictl inspecti` JSON (the same
/// check `kind load` makes).
pub fn node_image(node: &str, reference: &str) -> Cmd {
    super::docker::exec(node, &["crictl", "inspecti", reference])
}

/// The image ID (`status.id`) from `crictl inspecti` JSON.
pub fn parse_image_id(json: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(json.trim()).ok()?;
    v.pointer("/status/id")?.as_str().map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_image_id() {
        let json = r#"{"status": {"id": "sha256:abc", "repoTags": ["docker.io/slipway/sample:c-1"]}, "info": {}}"#;
        assert_eq!(parse_image_id(json).as_deref(), Some("sha256:abc"));
        assert_eq!(parse_image_id("FATA[0000] no such image"), None);
    }

    #[test]
    fn clusters_are_parsed() {
        assert_eq!(parse_clusters("dev\nslipway\n"), vec!["dev", "slipway"]);
        assert!(parse_clusters("No kind clusters found.\n").is_empty());
    }

    #[test]
    fn config_has_port_mappings_and_escapes_values() {
        let m = vec![PortMapping {
            container_port: 30080,
            host_port: 18080,
            listen_address: "127.0.0.1\"\n  extraMounts: [x]".into(),
            protocol: "TCP".into(),
        }];
        let cfg = cluster_config(true, &m);
        let v: serde_json::Value = serde_json::from_str(&cfg).unwrap();
        assert_eq!(v["networking"]["disableDefaultCNI"], true);
        let pm = &v["nodes"][0]["extraPortMappings"][0];
        assert_eq!(pm["containerPort"], 30080);
        assert_eq!(pm["listenAddress"], "127.0.0.1\"\n  extraMounts: [x]");
        assert!(v["nodes"][0].get("extraMounts").is_none());
    }
}
