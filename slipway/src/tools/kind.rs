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

/// Make a kind node pull an image from the local registry now, through containerd's
/// own client in the CRI's namespace and the registry hosts `hosts.toml` wires in
/// (`ctr` is in every kind node image; `crictl pull` is not in slipway's offline
/// one). Its progress names the image's config digest, which is the image ID.
pub fn node_pull(node: &str, reference: &str) -> Cmd {
    super::docker::exec(
        node,
        &[
            "ctr",
            "--namespace",
            "k8s.io",
            "images",
            "pull",
            "--hosts-dir",
            "/etc/containerd/certs.d",
            reference,
        ],
    )
    .timeout(Duration::from_secs(300))
}

/// The image ID from `ctr images pull`'s progress: its `config-sha256:HEX` line.
pub fn parse_pulled_id(out: &str) -> Option<String> {
    let at = out.find("config-sha256:")? + "config-".len();
    let id: String = out[at + "sha256:".len()..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    (id.len() == 64).then(|| format!("sha256:{id}"))
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
    fn pulled_image_id() {
        let out = "localhost:5001/slipway/sample:c-1: resolved |++++++|\n\
            manifest-sha256:585d2f3b83d0fe130d70329862c54cbd12c5cb27c086e02c829cd0438762ae67: done |++|\n\
            layer-sha256:2bc25436917cb895b31b3eb2d9c479615dd4b7a7136ce9cedd9b72b45d7eb916: done |++|\n\
            config-sha256:94af4d88ef0858d26a2ebccd85a039a0747bc9c7794cee34fd0bb2038f32e64d:   \x1b[32mdone\x1b[0m |++|\n\
            elapsed: 0.1 s total: 0.0 B (0.0 B/s)\n";
        assert_eq!(
            parse_pulled_id(out).as_deref(),
            Some("sha256:94af4d88ef0858d26a2ebccd85a039a0747bc9c7794cee34fd0bb2038f32e64d")
        );
        assert_eq!(parse_pulled_id("config-sha256:94af4d88: done"), None);
        assert_eq!(parse_pulled_id("ctr: failed to resolve reference"), None);
    }

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
