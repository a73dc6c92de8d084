//! kind: cluster lifecycle and image loading.

use std::time::Duration;

use super::{Cmd, PROBE};
use crate::cmd::Stdin;
use crate::config::KindSettings;

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

/// The kind `Cluster` config passed on stdin to `kind create cluster --config -`.
pub fn cluster_config(s: &KindSettings) -> String {
    let mut y = String::from("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n");
    if s.disable_default_cni {
        y.push_str("networking:\n  disableDefaultCNI: true\n");
    }
    y.push_str("nodes:\n- role: control-plane\n");
    if !s.port_mappings.is_empty() {
        y.push_str("  extraPortMappings:\n");
        for m in &s.port_mappings {
            y.push_str(&format!(
                "  - containerPort: {}\n    hostPort: {}\n    listenAddress: \"{}\"\n    protocol: {}\n",
                m.container_port, m.host_port, m.listen_address, m.protocol
            ));
        }
    }
    y
}

pub fn create(name: &str, s: &KindSettings, timeout: Duration) -> Cmd {
    let mut c = Cmd::new(
        "kind",
        ["create", "cluster", "--name", name, "--config", "-"],
    );
    if let Some(img) = &s.node_image {
        c = c.args(["--image", img]);
    }
    c.arg(format!("--wait={}s", s.wait.0.as_secs()))
        .stdin(Stdin::Text {
            text: cluster_config(s),
        })
        .timeout(timeout)
        .grace(Duration::from_secs(30))
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
    use crate::config::{Dur, PortMapping};

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
    fn config_has_port_mappings() {
        let s = KindSettings {
            node_image: None,
            port_mappings: vec![PortMapping {
                container_port: 30080,
                host_port: 18080,
                listen_address: "127.0.0.1".into(),
                protocol: "TCP".into(),
            }],
            disable_default_cni: true,
            wait: Dur::secs(60),
        };
        insta::assert_snapshot!(cluster_config(&s), @r#"
        kind: Cluster
        apiVersion: kind.x-k8s.io/v1alpha4
        networking:
          disableDefaultCNI: true
        nodes:
        - role: control-plane
          extraPortMappings:
          - containerPort: 30080
            hostPort: 18080
            listenAddress: "127.0.0.1"
            protocol: TCP
        "#);
    }
}
