//! kubectl: namespace and secret application, workload discovery, pod
//! health, port-forwards. Every call is pinned with `--context`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

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

pub fn parse_client_version(json: &str) -> Option<semver::Version> {
    let v: Value = serde_json::from_str(json.trim()).ok()?;
    super::parse_version(v.get("clientVersion")?.get("gitVersion")?.as_str()?)
}

/// The kubeconfig as JSON (certificates and tokens are redacted by kubectl).
pub fn config_view() -> Cmd {
    Cmd::new("kubectl", ["config", "view", "--output", "json"]).timeout(PROBE)
}

/// What a kubeconfig context points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContextTarget {
    pub cluster: String,
    pub server: String,
    /// `provider` of the cluster's `cluster_info` extension (minikube sets it).
    pub provider: Option<String>,
}

/// The cluster a context points at, from `kubectl config view -o json`: `Ok(None)` when
/// the context is not there, `Err` when the output cannot be read.
pub fn parse_context(json: &str, context: &str) -> Result<Option<ContextTarget>, String> {
    let v: Value = serde_json::from_str(json.trim())
        .map_err(|e| format!("`kubectl config view` printed something that is not JSON ({e})"))?;
    let find = |list: &str, name: &str| {
        v.get(list)
            .and_then(Value::as_array)
            .and_then(|a| {
                a.iter()
                    .find(|x| x.get("name").and_then(Value::as_str) == Some(name))
            })
            .cloned()
    };
    let Some(ctx) = find("contexts", context) else {
        return Ok(None);
    };
    let cluster = ctx
        .pointer("/context/cluster")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let c = find("clusters", &cluster);
    let server = c
        .as_ref()
        .and_then(|c| c.pointer("/cluster/server"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let provider = c
        .as_ref()
        .and_then(|c| c.pointer("/cluster/extensions"))
        .and_then(Value::as_array)
        .and_then(|a| {
            a.iter()
                .find_map(|e| e.pointer("/extension/provider").and_then(Value::as_str))
        })
        .map(String::from);
    Ok(Some(ContextTarget {
        cluster,
        server,
        provider,
    }))
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

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    /// `deployment`, `statefulset` or `daemonset`.
    pub kind: String,
    pub name: String,
    pub selector: BTreeMap<String, String>,
    pub ready: i64,
    pub desired: i64,
}

impl Workload {
    pub fn id(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }
    pub fn selector_arg(&self) -> String {
        self.selector
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The `items` of a `kubectl get -o json` list. Anything else is an error: output
/// slipway cannot read never counts as "nothing there".
pub(super) fn items(json: &str) -> Result<Vec<Value>, String> {
    let v: Value = serde_json::from_str(json.trim())
        .map_err(|e| format!("kubectl printed something that is not JSON ({e})"))?;
    match v.get("items") {
        Some(Value::Array(a)) => Ok(a.clone()),
        _ => Err("kubectl printed JSON without an `items` list".into()),
    }
}

/// Workloads helm created for `release` (helm annotates every object it owns).
pub fn parse_workloads(json: &str, release: &str) -> Result<Vec<Workload>, String> {
    let items = items(json)?;
    Ok(items
        .iter()
        .filter(|i| {
            i.pointer("/metadata/annotations/meta.helm.sh~1release-name")
                .and_then(Value::as_str)
                == Some(release)
        })
        .filter_map(|i| {
            let kind = i.get("kind")?.as_str()?.to_ascii_lowercase();
            let name = i.pointer("/metadata/name")?.as_str()?.to_string();
            let selector = i
                .pointer("/spec/selector/matchLabels")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                        .collect()
                })
                .unwrap_or_default();
            let num = |p: &str| i.pointer(p).and_then(Value::as_i64).unwrap_or(0);
            let (ready, desired) = if kind == "daemonset" {
                (
                    num("/status/numberReady"),
                    num("/status/desiredNumberScheduled"),
                )
            } else {
                (
                    num("/status/readyReplicas"),
                    i.pointer("/spec/replicas")
                        .and_then(Value::as_i64)
                        .unwrap_or(1),
                )
            };
            Some(Workload {
                kind,
                name,
                selector,
                ready,
                desired,
            })
        })
        .collect())
}

pub fn get_pods(context: &str, namespace: &str, selector: &str) -> Cmd {
    at(context, Some(namespace))
        .args(["get", "pods", "--selector", selector, "--output", "json"])
        .timeout(PROBE)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pod {
    pub name: String,
    pub phase: String,
    pub ready: bool,
    pub restarts: i64,
    /// Why a container is not running, e.g. ErrImageNeverPull, CrashLoopBackOff.
    pub reasons: Vec<String>,
    pub messages: Vec<String>,
    pub images: Vec<String>,
    pub created: String,
    pub terminating: bool,
    pub labels: BTreeMap<String, String>,
}

impl Pod {
    /// The pod carries every label of a workload's `matchLabels`.
    pub fn selected_by(&self, w: &Workload) -> bool {
        !w.selector.is_empty()
            && w.selector
                .iter()
                .all(|(k, v)| self.labels.get(k) == Some(v))
    }
}

/// Every pod of the namespace (matched to workloads by their selectors in process).
/// The namespace's Services (for their NodePorts).
pub fn get_services(context: &str, namespace: &str) -> Cmd {
    at(context, Some(namespace))
        .args(["get", "services", "--output", "json"])
        .timeout(PROBE)
}

/// One NodePort of a Service helm installed for a release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodePort {
    pub service: String,
    pub port: u16,
    pub node_port: u16,
}

/// The NodePort of `service`'s `port`: `Ok(None)` when the Service is not a
/// NodePort, `Err` when it does not exist or the JSON is unreadable.
pub fn node_port_of(json: &str, service: &str, port: u16) -> Result<Option<u16>, String> {
    let s = items(json)?
        .into_iter()
        .find(|s| s.pointer("/metadata/name").and_then(|v| v.as_str()) == Some(service))
        .ok_or_else(|| format!("service {service} does not exist yet"))?;
    if s.pointer("/spec/type").and_then(|v| v.as_str()) != Some("NodePort") {
        return Ok(None);
    }
    Ok(s.pointer("/spec/ports")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .find(|p| p.get("port").and_then(|v| v.as_u64()) == Some(u64::from(port)))
        .and_then(|p| p.get("nodePort")?.as_u64())
        .and_then(|n| u16::try_from(n).ok()))
}

/// The NodePorts of the Services `releases` own (helm's release-name annotation).
pub fn parse_node_ports(json: &str, releases: &[String]) -> Result<Vec<NodePort>, String> {
    let mut out = vec![];
    for s in items(json)? {
        let owner = s
            .pointer("/metadata/annotations/meta.helm.sh~1release-name")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        if !releases.iter().any(|r| r == owner)
            || s.pointer("/spec/type").and_then(|v| v.as_str()) != Some("NodePort")
        {
            continue;
        }
        let name = s
            .pointer("/metadata/name")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        for p in s
            .pointer("/spec/ports")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
        {
            let num = |k: &str| {
                p.get(k)
                    .and_then(|v| v.as_u64())
                    .and_then(|n| u16::try_from(n).ok())
            };
            if let (Some(port), Some(node_port)) = (num("port"), num("nodePort")) {
                out.push(NodePort {
                    service: name.to_string(),
                    port,
                    node_port,
                });
            }
        }
    }
    Ok(out)
}

pub fn get_all_pods(context: &str, namespace: &str) -> Cmd {
    at(context, Some(namespace))
        .args(["get", "pods", "--output", "json"])
        .timeout(PROBE)
}

pub fn parse_pods(json: &str) -> Result<Vec<Pod>, String> {
    let items = items(json)?;
    Ok(items
        .iter()
        .map(|p| {
            let s = |ptr: &str| {
                p.pointer(ptr)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            let statuses: Vec<&Value> = ["initContainerStatuses", "containerStatuses"]
                .iter()
                .filter_map(|k| p.pointer(&format!("/status/{k}")).and_then(Value::as_array))
                .flatten()
                .collect();
            let mut reasons = vec![];
            let mut messages = vec![];
            for c in &statuses {
                for state in [
                    "/state/waiting",
                    "/state/terminated",
                    "/lastState/terminated",
                ] {
                    if let Some(w) = c.pointer(state) {
                        if let Some(r) = w.get("reason").and_then(Value::as_str) {
                            if state == "/lastState/terminated" && r == "Completed" {
                                continue;
                            }
                            if !reasons.iter().any(|x| x == r) {
                                reasons.push(r.to_string());
                            }
                        }
                        if let Some(m) = w.get("message").and_then(Value::as_str) {
                            messages.push(m.to_string());
                        }
                    }
                }
            }
            let ready = p
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|cs| {
                    cs.iter().any(|c| {
                        c.get("type").and_then(Value::as_str) == Some("Ready")
                            && c.get("status").and_then(Value::as_str) == Some("True")
                    })
                });
            Pod {
                name: s("/metadata/name"),
                phase: s("/status/phase"),
                ready,
                restarts: statuses
                    .iter()
                    .filter_map(|c| c.get("restartCount").and_then(Value::as_i64))
                    .sum(),
                reasons,
                messages,
                images: p
                    .pointer("/spec/containers")
                    .and_then(Value::as_array)
                    .map(|cs| {
                        cs.iter()
                            .filter_map(|c| c.get("image")?.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default(),
                created: s("/metadata/creationTimestamp"),
                terminating: p.pointer("/metadata/deletionTimestamp").is_some(),
                labels: p
                    .pointer("/metadata/labels")
                    .and_then(Value::as_object)
                    .map(|m| {
                        m.iter()
                            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect())
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

    #[test]
    fn the_node_port_of_one_service_port() {
        let json = r#"{"items":[
          {"metadata":{"name":"frontend"},
           "spec":{"type":"NodePort","ports":[{"port":80,"nodePort":30080},{"port":443,"nodePort":30443}]}},
          {"metadata":{"name":"api"},"spec":{"type":"ClusterIP","ports":[{"port":8000}]}}
        ]}"#;
        assert_eq!(node_port_of(json, "frontend", 443), Ok(Some(30443)));
        assert_eq!(node_port_of(json, "frontend", 8080), Ok(None));
        assert_eq!(node_port_of(json, "api", 8000), Ok(None));
        assert_eq!(
            node_port_of(json, "db", 5432),
            Err("service db does not exist yet".into())
        );
        assert!(node_port_of("oops", "api", 80).is_err());
    }

    #[test]
    fn node_ports_of_the_releases_services() {
        let json = r#"{"items":[
          {"metadata":{"name":"frontend","annotations":{"meta.helm.sh/release-name":"todo"}},
           "spec":{"type":"NodePort","ports":[{"port":80,"nodePort":30080},{"port":443,"nodePort":30443}]}},
          {"metadata":{"name":"api","annotations":{"meta.helm.sh/release-name":"todo"}},
           "spec":{"type":"ClusterIP","ports":[{"port":8000}]}},
          {"metadata":{"name":"theirs","annotations":{"meta.helm.sh/release-name":"other"}},
           "spec":{"type":"NodePort","ports":[{"port":80,"nodePort":30090}]}}
        ]}"#;
        let np = parse_node_ports(json, &["todo".into()]).unwrap();
        assert_eq!(
            np,
            vec![
                NodePort {
                    service: "frontend".into(),
                    port: 80,
                    node_port: 30080
                },
                NodePort {
                    service: "frontend".into(),
                    port: 443,
                    node_port: 30443
                },
            ]
        );
        assert!(parse_node_ports("not json", &[]).is_err());
    }

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

    #[test]
    fn workloads_of_a_release() {
        let json = r#"{"items":[
          {"kind":"Deployment","metadata":{"name":"sample","annotations":{"meta.helm.sh/release-name":"sample"}},
           "spec":{"replicas":2,"selector":{"matchLabels":{"app.kubernetes.io/name":"sample","app.kubernetes.io/instance":"sample"}}},
           "status":{"readyReplicas":1}},
          {"kind":"Deployment","metadata":{"name":"other","annotations":{"meta.helm.sh/release-name":"other"}},"spec":{"selector":{"matchLabels":{"a":"b"}}}},
          {"kind":"DaemonSet","metadata":{"name":"agent","annotations":{"meta.helm.sh/release-name":"sample"}},
           "spec":{"selector":{"matchLabels":{"app":"agent"}}},"status":{"numberReady":3,"desiredNumberScheduled":3}}
        ]}"#;
        let w = parse_workloads(json, "sample").unwrap();
        assert!(parse_workloads("Error from server", "sample").is_err());
        assert!(parse_workloads("{}", "sample").is_err());
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].id(), "deployment/sample");
        assert_eq!(
            w[0].selector_arg(),
            "app.kubernetes.io/instance=sample,app.kubernetes.io/name=sample"
        );
        assert_eq!((w[0].ready, w[0].desired), (1, 2));
        assert_eq!(w[1].id(), "daemonset/agent");
        assert_eq!((w[1].ready, w[1].desired), (3, 3));
    }

    #[test]
    fn pod_reasons() {
        let json = r#"{"items":[{"metadata":{"name":"sample-1","creationTimestamp":"2026-01-01T00:00:00Z"},
          "spec":{"containers":[{"image":"sample:never"}]},
          "status":{"phase":"Pending","conditions":[{"type":"Ready","status":"False"}],
            "containerStatuses":[{"restartCount":0,"state":{"waiting":{"reason":"ErrImageNeverPull","message":"Container image \"sample:never\" is not present with pull policy of Never"}}}]}}]}"#;
        let pods = parse_pods(json).unwrap();
        assert!(parse_pods("not json").is_err());
        assert_eq!(pods.len(), 1);
        assert!(!pods[0].ready);
        assert_eq!(pods[0].reasons, vec!["ErrImageNeverPull"]);
        assert_eq!(pods[0].images, vec!["sample:never"]);
        assert!(hint_for("ErrImageNeverPull")
            .unwrap()
            .contains("never loaded"));
    }

    #[test]
    fn contexts_and_their_clusters() {
        let cfg = r#"{"contexts":[{"name":"kind-x","context":{"cluster":"kind-x"}}],
          "clusters":[{"name":"kind-x","cluster":{"server":"https://127.0.0.1:40123",
          "extensions":[{"name":"cluster_info","extension":{"provider":"minikube.sigs.k8s.io"}}]}}]}"#;
        let t = parse_context(cfg, "kind-x").unwrap().unwrap();
        assert_eq!(t.cluster, "kind-x");
        assert_eq!(server_host(&t.server), "127.0.0.1");
        assert_eq!(t.provider.as_deref(), Some("minikube.sigs.k8s.io"));
        assert_eq!(parse_context(cfg, "other").unwrap(), None);
        assert!(parse_context("error: boom", "kind-x").is_err());
        assert_eq!(server_host("https://[::1]:6443/x"), "::1");
    }

    #[test]
    fn client_version() {
        assert_eq!(
            parse_client_version(r#"{"clientVersion":{"gitVersion":"v1.34.13"}}"#)
                .unwrap()
                .to_string(),
            "1.34.13"
        );
    }
}
