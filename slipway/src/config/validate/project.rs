//! [project], [cluster] and [registry].

use super::{is_dns_label, path, Cx, Pipeline};
use crate::config::{Cluster, Provider};
use crate::providers::ToolId;

pub(super) fn check(p: &Pipeline, cx: &mut Cx) {
    tools(p, cx);
    names(p, cx);
    let c = &p.cluster;
    port_mappings(c, cx);
    minikube_and_kind_registry(c, cx);
    registry(p, cx);

    // The context of a cluster slipway creates is the one it creates: another name
    // here would let the context guard wave a foreign cluster through.
    if let (Some(managed), Some(given)) = (c.provider().managed_context(c), &c.context) {
        if *given != managed {
            cx.err(
                &path(&["cluster", "context"]),
                format!(
                    "provider \"{}\" manages context {managed:?}; `cluster.context = {given:?}` would point slipway at another cluster",
                    c.provider
                ),
                Some(format!(
                    "remove `cluster.context` (it is derived), or use provider \"existing\" with context {given:?}"
                )),
            );
        }
    }
}

/// The project's, namespace's and cluster's names, and an existing cluster's context.
fn names(p: &Pipeline, cx: &mut Cx) {
    if !is_dns_label(&p.project.name) {
        cx.err(
            &path(&["project", "name"]),
            format!(
                "project name {:?} must be a DNS label (a-z, 0-9, -; at most 63)",
                p.project.name
            ),
            None,
        );
    }
    if !is_dns_label(&p.project.namespace) {
        cx.err(
            &path(&["project", "namespace"]),
            format!("namespace {:?} is not a DNS label", p.project.namespace),
            None,
        );
    }
    let c = &p.cluster;
    if c.provider == Provider::Existing && c.context.as_deref().unwrap_or("").is_empty() {
        cx.err(
            &path(&["cluster", "provider"]),
            "provider \"existing\" needs `cluster.context`, the kube context to deploy to".into(),
            Some("set cluster.context, or pass --kube-context".into()),
        );
    }
    if c.provider != Provider::Existing && !is_dns_label(&c.name) {
        cx.err(
            &path(&["cluster", "name"]),
            format!("cluster name {:?} must be a DNS label", c.name),
            None,
        );
    }
}

/// kind's port mappings: protocols, ports, addresses, and no two binding the same.
fn port_mappings(c: &Cluster, cx: &mut Cx) {
    let mut host_ports = std::collections::BTreeMap::new();
    for (i, m) in c.kind.port_mappings.iter().enumerate() {
        let at = path(&[
            "cluster",
            Provider::Kind.name(),
            "port_mappings",
            &i.to_string(),
        ]);
        let key = |k: &str| [at.clone(), path(&[k])].concat();
        if !["TCP", "UDP", "SCTP"].contains(&m.protocol.as_str()) {
            cx.err(
                &key("protocol"),
                format!(
                    "port mapping protocol {:?} must be \"TCP\", \"UDP\" or \"SCTP\"",
                    m.protocol
                ),
                None,
            );
        }
        if m.container_port == 0 || m.host_port == 0 {
            cx.err(
                &key(if m.container_port == 0 {
                    "container_port"
                } else {
                    "host_port"
                }),
                "port mapping ports must be 1-65535".into(),
                None,
            );
        }
        if m.listen_address.parse::<std::net::IpAddr>().is_err() {
            cx.err(
                &key("listen_address"),
                format!("listen_address {:?} is not an IP address", m.listen_address),
                None,
            );
        }
        let bind = (m.listen_address.clone(), m.host_port, m.protocol.clone());
        if let Some(prev) = host_ports.insert(bind, i) {
            cx.err(
                &key("host_port"),
                format!(
                    "port mappings {prev} and {i} both bind {}:{}/{}",
                    m.listen_address, m.host_port, m.protocol
                ),
                None,
            );
        }
    }
}

/// minikube's CPUs and memory, and kind's local registry address.
fn minikube_and_kind_registry(c: &Cluster, cx: &mut Cx) {
    if let Some(n) = c.minikube.cpus {
        if n < 2 {
            cx.err(
                &path(&["cluster", Provider::Minikube.name(), "cpus"]),
                format!("minikube needs at least 2 CPUs (cpus = {n})"),
                None,
            );
        }
    }
    if let Some(mem) = &c.minikube.memory {
        match minikube_mib(mem) {
            Some(mib) if mib >= 1800 => {}
            Some(mib) => cx.err(
                &path(&["cluster", Provider::Minikube.name(), "memory"]),
                format!("minikube needs at least 1800 MiB of memory ({mem:?} is {mib} MiB)"),
                None,
            ),
            None => cx.err(
                &path(&["cluster", Provider::Minikube.name(), "memory"]),
                format!("memory {mem:?} is not a size minikube reads (e.g. \"4096\", \"4096mb\", \"4g\")"),
                None,
            ),
        }
    }
    if c.provider == Provider::Kind && c.kind.delivery != crate::providers::kind::Delivery::Load {
        let port = c
            .kind
            .registry
            .strip_prefix("localhost:")
            .map(str::parse::<u16>);
        if !matches!(port, Some(Ok(p)) if p > 0) {
            cx.err(
                &path(&["cluster", Provider::Kind.name(), "registry"]),
                format!(
                    "registry {:?} is not localhost:PORT: the nodes pull through it, and slipway runs it on this machine's loopback",
                    c.kind.registry
                ),
                Some("e.g. \"localhost:5001\" (the default)".into()),
            );
        }
    }
}

/// [registry]: its url, its login, its pull secret, and only with provider "existing".
fn registry(p: &Pipeline, cx: &mut Cx) {
    let c = &p.cluster;
    if let Some(r) = &p.registry {
        // A prefix for image references: HOST[:PORT][/PATH], no scheme.
        if !crate::model::names::is_repository(&format!("{}/x", r.url)) {
            cx.err(
                &path(&["registry", "url"]),
                format!(
                    "registry url {:?} is not an image reference prefix: HOST[:PORT][/PATH], lowercase path, no scheme",
                    r.url
                ),
                Some("e.g. \"registry.example.com/team\" or \"localhost:5000\"".into()),
            );
        }
    }
    if let Some(r) = &p.registry {
        if r.username.is_some() != r.password_env.is_some() {
            // At the half that is there.
            let key = if r.username.is_some() {
                "username"
            } else {
                "password_env"
            };
            cx.err(
                &path(&["registry", key]),
                "a registry login needs both `username` and `password_env`".into(),
                Some("e.g. username = \"ci-bot\", password_env = \"REGISTRY_PASSWORD\"".into()),
            );
        }
        if let Some(var) = &r.password_env {
            if !crate::model::names::is_env_name(var) {
                cx.err(
                    &path(&["registry", "password_env"]),
                    format!(
                        "{var:?} is not an environment variable name (the name, not the password)"
                    ),
                    None,
                );
            }
        }
        if let Some(name) = &r.pull_secret {
            if r.login().is_none() {
                cx.err(
                    &path(&["registry", "pull_secret"]),
                    "a pull secret holds the registry login: set `username` and `password_env` too"
                        .into(),
                    None,
                );
            }
            if !super::is_dns_subdomain(name) {
                cx.err(
                    &path(&["registry", "pull_secret"]),
                    format!("{name:?} is not a Secret name (lowercase DNS subdomain)"),
                    None,
                );
            }
        }
    }
    if p.registry.is_some() && c.provider != Provider::Existing {
        cx.err(
            &path(&["registry"]),
            format!("[registry] pushes images for provider \"existing\"; provider \"{}\" loads them into the cluster", c.provider),
            Some("remove [registry], or set cluster.provider = \"existing\" (see the `remote` profile)".into()),
        );
    }
}

/// A minikube `--memory` value in MiB: a number (MiB) with an optional b/k/m/g unit.
fn minikube_mib(s: &str) -> Option<u64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t
        .strip_suffix('b')
        .filter(|r| !r.is_empty() && !r.ends_with(|c: char| c.is_ascii_digit()))
        .unwrap_or(&t);
    let digits: String = t.chars().take_while(char::is_ascii_digit).collect();
    let n: u64 = digits.parse().ok()?;
    match &t[digits.len()..] {
        "" | "m" => Some(n),
        "g" => n.checked_mul(1024),
        "k" => Some(n / 1024),
        _ => None,
    }
}

/// `[tools]`: versions as their releases name them (`v1.2.3`), a helm slipway
/// supports, a mirror that is a URL.
fn tools(p: &Pipeline, cx: &mut Cx) {
    let t = &p.tools;
    for (id, v) in t.pins() {
        let Some(v) = v else { continue };
        let tool = id.name();
        let parsed = v
            .strip_prefix('v')
            .and_then(|s| semver::Version::parse(s).ok());
        match parsed {
            None => cx.err(
                &path(&["tools", tool]),
                format!("{tool} version {v:?} is not a release version like \"v1.2.3\""),
                Some("write the release's tag, e.g. kind = \"v0.30.0\", or leave the key out for slipway's default".into()),
            ),
            Some(s) if id == ToolId::Helm && !(s.major == 4 || (s.major == 3 && s.minor >= 13)) => cx
                .err(
                    &path(&["tools", tool]),
                    format!("helm {v} is not supported: slipway drives Helm 4, or Helm 3 from 3.13"),
                    Some("use helm = \"v4.3.1\" (the tested default) or a Helm 3 >= v3.13.0".into()),
                ),
            Some(_) => {}
        }
    }
    if let Some(m) = &t.mirror {
        if m.starts_with("http://") {
            cx.err(
                &path(&["tools", "mirror"]),
                format!("mirror {m:?} is plain HTTP: anyone on the way could swap the binaries slipway runs"),
                Some("use an https:// mirror".into()),
            );
        } else if !m.starts_with("https://") {
            cx.err(
                &path(&["tools", "mirror"]),
                format!("mirror {m:?} is not an https:// URL"),
                None,
            );
        }
    }
    for (tool, h) in &t.sha256 {
        let names: Vec<&str> = t.pins().iter().map(|(id, _)| id.name()).collect();
        if !names.contains(&tool.as_str()) {
            cx.err(
                &path(&["tools", "sha256", tool]),
                format!("slipway provisions no tool named {tool:?}"),
                Some(format!("pin one of {}", names.join(", "))),
            );
        } else if !(h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit())) {
            cx.err(
                &path(&["tools", "sha256", tool]),
                format!("{h:?} is not a SHA-256 (64 hex digits)"),
                None,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn minikube_memory_sizes() {
        use super::minikube_mib as m;
        assert_eq!(m("4096"), Some(4096));
        assert_eq!(m("4096mb"), Some(4096));
        assert_eq!(m("4g"), Some(4096));
        assert_eq!(m("4GB"), Some(4096));
        assert_eq!(m("2097152k"), Some(2048));
        assert_eq!(m("lots"), None);
        assert_eq!(m("4t"), None);
        assert_eq!(m(""), None);
    }
}
