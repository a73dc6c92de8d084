//! kubectl: namespace and secret application, workload discovery, pod
//! health, port-forwards. Every call is pinned with `--context`.

use std::time::Duration;

use super::{Cmd, PROBE};
use crate::model::Stdin;

/// `kubectl --context C [--namespace N]`: every kubectl call starts here.
pub(crate) fn at(context: &str, namespace: Option<&str>) -> Cmd {
    let c = Cmd::new("kubectl", ["--context", context]);
    match namespace {
        Some(ns) => c.args(["--namespace", ns]),
        None => c,
    }
}

pub fn version() -> Cmd {
    Cmd::new("kubectl", ["version", "--client", "--output", "json"]).timeout(PROBE)
}

/// The kubeconfig as JSON (certificates and tokens are redacted by kubectl).
pub fn config_view() -> Cmd {
    Cmd::new("kubectl", ["config", "view", "--output", "json"]).timeout(PROBE)
}

/// The host of an API server URL (`https://127.0.0.1:6443` -> `127.0.0.1`).
pub fn server_host(server: &str) -> &str {
    let rest = server.split_once("://").map_or(server, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or("");
    match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    }
}

pub fn contexts() -> Cmd {
    Cmd::new("kubectl", ["config", "get-contexts", "--output", "name"]).timeout(PROBE)
}

/// Ask the API server whether it is ready.
pub fn readyz(context: &str) -> Cmd {
    at(context, None)
        .args(["get", "--raw", "/readyz"])
        .timeout(PROBE)
}

/// Server-side apply of a manifest on stdin (no last-applied annotation, so a
/// Secret's values are not copied into an annotation).
/// `kubectl rollout restart {WORKLOAD}`: new pods, which read Secrets afresh.
pub fn rollout_restart(context: &str, namespace: &str) -> Cmd {
    at(context, Some(namespace))
        .args(["rollout", "restart", "{WORKLOAD}"])
        .timeout(PROBE)
}

pub fn apply(context: &str, stdin: Stdin) -> Cmd {
    at(context, None)
        .args([
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=slipway",
            "--filename",
            "-",
        ])
        .stdin(stdin)
        .timeout(Duration::from_secs(60))
}

/// Exits 0 when the namespace exists (and is not being deleted: its phase).
/// The annotation a Secret slipway applies carries: the keyed digest of its values.
pub const SECRET_DIGEST: &str = "slipway.dev/digest";

/// One annotation of a Secret (empty when it has none; exit 1 when there is no Secret).
pub fn get_secret_annotation(context: &str, namespace: &str, name: &str, key: &str) -> Cmd {
    at(context, Some(namespace))
        .args([
            "get".to_string(),
            format!("secret/{name}"),
            "--output".into(),
            format!(
                "jsonpath={{.metadata.annotations.{}}}",
                key.replace('.', "\\.")
            ),
        ])
        .timeout(PROBE)
}

pub fn get_namespace(context: &str, name: &str) -> Cmd {
    at(context, None)
        .args([
            "get".to_string(),
            format!("namespace/{name}"),
            "--output".into(),
            "jsonpath={.status.phase}".into(),
        ])
        .timeout(PROBE)
}

/// Every node, as JSON (the capacity preflight reads `status.allocatable`).
pub fn get_nodes(context: &str) -> Cmd {
    at(context, None)
        .args(["get", "nodes", "--output", "json"])
        .timeout(PROBE)
}

/// The ConfigMap a cluster advertises its local registry with (KEP-1755).
pub const REGISTRY_HOSTING: (&str, &str) = ("kube-public", "local-registry-hosting");

/// The local registry a cluster advertises (KEP-1755): the ConfigMap's
/// `localRegistryHosting.v1` document, empty when there is none.
pub fn get_registry_hosting(context: &str) -> Cmd {
    let (ns, name) = REGISTRY_HOSTING;
    at(context, Some(ns))
        .args([
            "get".to_string(),
            format!("configmap/{name}"),
            "--ignore-not-found".into(),
            "--output".into(),
            "jsonpath={.data.localRegistryHosting\\.v1}".into(),
        ])
        .timeout(PROBE)
}

/// `host` of a `localRegistryHosting.v1` document (YAML, one key per line).
pub fn parse_registry_host(doc: &str) -> Option<String> {
    doc.lines().find_map(|l| {
        let v = l.trim().strip_prefix("host:")?.trim();
        let v = v.trim_matches(|c| c == '"' || c == '\'');
        (!v.is_empty()).then(|| v.to_string())
    })
}

pub fn namespace_manifest(name: &str) -> String {
    serde_json::to_string_pretty(&serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}
    }))
    .expect("serializes")
}

pub fn get_workloads(context: &str, namespace: &str) -> Cmd {
    at(context, Some(namespace))
        .args([
            "get",
            "deployments,statefulsets,daemonsets",
            "--output",
            "json",
        ])
        .timeout(PROBE)
}

pub fn get_pods(context: &str, namespace: &str, selector: &str) -> Cmd {
    at(context, Some(namespace))
        .args(["get", "pods", "--selector", selector, "--output", "json"])
        .timeout(PROBE)
}

/// The namespace's Services (for their NodePorts).
pub fn get_services(context: &str, namespace: &str) -> Cmd {
    at(context, Some(namespace))
        .args(["get", "services", "--output", "json"])
        .timeout(PROBE)
}

/// Every pod of the namespace (matched to workloads by their selectors in process).
pub fn get_all_pods(context: &str, namespace: &str) -> Cmd {
    at(context, Some(namespace))
        .args(["get", "pods", "--output", "json"])
        .timeout(PROBE)
}

/// The release's workloads, Jobs included, and the autoscalers that size them.
pub fn get_rollout_objects(context: &str, namespace: &str) -> Cmd {
    at(context, Some(namespace))
        .args([
            "get",
            "deployments,statefulsets,daemonsets,jobs,horizontalpodautoscalers",
            "--output",
            "json",
        ])
        .timeout(PROBE)
}

/// The namespace's events.
pub fn get_events(context: &str, namespace: &str) -> Cmd {
    at(context, Some(namespace))
        .args(["get", "events", "--output", "json"])
        .timeout(PROBE)
}

/// The last lines a container printed; `previous` for the instance before a restart.
pub fn logs(context: &str, namespace: &str, pod: &str, container: &str, previous: bool) -> Cmd {
    let mut c = at(context, Some(namespace)).args([
        "logs".to_string(),
        pod.into(),
        "--container".into(),
        container.into(),
        "--tail=20".into(),
    ]);
    if previous {
        c = c.arg("--previous");
    }
    c.timeout(Duration::from_secs(20))
}

/// `kubectl logs` of a workload (`deployment/NAME`) or a `--selector=…`, every
/// container, each line prefixed with its pod and container; streamed to stdout.
pub fn logs_of(context: &str, namespace: &str, what: &str, tail: u32, follow: bool) -> Cmd {
    let mut c = at(context, Some(namespace)).args([
        "logs".to_string(),
        what.into(),
        "--all-containers".into(),
        "--prefix".into(),
        format!("--tail={tail}"),
        "--max-log-requests=20".into(),
    ]);
    if follow {
        c = c.arg("--follow");
    }
    c.timeout(if follow {
        Duration::from_secs(86_400)
    } else {
        PROBE
    })
    .streamed()
}

/// What to do about a container state reason.
pub fn hint_for(reason: &str) -> Option<&'static str> {
    Some(match reason {
        "ErrImageNeverPull" => "the image is not on the node and pullPolicy is Never: it was never loaded. Run `cargo xtask load` or check the image reference the chart renders",
        "ImagePullBackOff" | "ErrImagePull" => "the node cannot pull the image: for kind/minikube it must be loaded (`cargo xtask load`); for a registry, check the reference and pull credentials",
        "CrashLoopBackOff" | "Error" => "the container keeps exiting: read its logs with `kubectl logs --previous`",
        "CreateContainerConfigError" => "a referenced Secret or ConfigMap (or a key in it) is missing: check the release's secrets in pipeline.toml and that their variables are set",
        "OOMKilled" => "the container ran out of memory: raise resources.limits.memory",
        "InvalidImageName" => "the image reference is malformed: check the repository and tag values",
        _ => return None,
    })
}

/// `kubectl proxy` on a unix socket, `{SOCKET}` (filled at run time with a path in a
/// directory only this user can enter; it prints `Starting to serve on PATH`): the
/// API server's service proxy with the deployer's credentials, so nothing listens
/// where another local user could connect (a TCP port, even on 127.0.0.1, is open
/// to every local user). It forwards only `accept_path` (a path prefix) and only
/// GET and HEAD.
pub fn proxy(context: &str, accept_path: &str) -> Cmd {
    at(context, None).args([
        "proxy".to_string(),
        "--unix-socket={SOCKET}".into(),
        format!("--accept-paths=^{}(/.*)?$", regex_escape(accept_path)),
        "--reject-methods=^(POST|PUT|PATCH|DELETE|CONNECT|OPTIONS|TRACE)$".into(),
    ])
}

/// `s` as a Go regular expression that matches it literally.
fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The prefix of every path through the API server's service proxy to a Service's
/// port.
pub fn service_proxy_prefix(namespace: &str, service: &str, port: u16) -> String {
    format!("/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy")
}

/// The path of a Service's port through the API server's service proxy.
pub fn service_proxy_path(namespace: &str, service: &str, port: u16, path: &str) -> String {
    format!("{}{path}", service_proxy_prefix(namespace, service, port))
}

pub fn port_forward(
    context: &str,
    namespace: &str,
    service: &str,
    local: &str,
    remote: u16,
) -> Cmd {
    at(context, Some(namespace))
        .args([
            "port-forward".to_string(),
            "--address".into(),
            "127.0.0.1".into(),
            format!("service/{service}"),
            format!("{local}:{remote}"),
        ])
        .timeout(Duration::from_secs(3600))
}

pub fn wait_condition(
    context: &str,
    namespace: &str,
    resource: &str,
    condition: &str,
    timeout: Duration,
) -> Cmd {
    at(context, Some(namespace))
        .args([
            "wait".to_string(),
            resource.into(),
            format!("--for=condition={condition}"),
            format!("--timeout={}s", timeout.as_secs()),
        ])
        .timeout(timeout + Duration::from_secs(15))
}

pub fn get_resource(context: &str, namespace: &str, resource: &str) -> Cmd {
    at(context, Some(namespace))
        .args(["get", resource, "--output", "name"])
        .timeout(PROBE)
}

pub fn delete_secrets(context: &str, namespace: &str, selector: &str) -> Cmd {
    at(context, Some(namespace))
        .args([
            "delete",
            "secret",
            "--selector",
            selector,
            "--ignore-not-found",
        ])
        .timeout(Duration::from_secs(60))
}

pub fn get_secret_names(context: &str, namespace: &str, selector: &str) -> Cmd {
    at(context, Some(namespace))
        .args(["get", "secret", "--selector", selector, "--output", "name"])
        .timeout(PROBE)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What kind's local-registry guide, ctlptl and slipway's recipe write.
    #[test]
    fn the_advertised_registry_host() {
        let doc = "host: \"localhost:5001\"\nhostFromContainerRuntime: \"slipway-registry:5000\"\nhelp: \"https://kind.sigs.k8s.io/docs/user/local-registry/\"\n";
        assert_eq!(parse_registry_host(doc).as_deref(), Some("localhost:5001"));
        assert_eq!(
            parse_registry_host("  host: localhost:5005\n").as_deref(),
            Some("localhost:5005")
        );
        assert_eq!(
            parse_registry_host("hostFromClusterNetwork: \"r:5000\"\n"),
            None
        );
        assert_eq!(parse_registry_host(""), None);
        assert_eq!(parse_registry_host("host: \"\"\n"), None);
    }
}
