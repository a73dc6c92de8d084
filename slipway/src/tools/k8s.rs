//! The one model of the Kubernetes objects slipway reads from `kubectl … -o json`:
//! serde types for just the fields it reads (the objects as the API server sends
//! them), and what every reader sees — workloads with whether their rollout is
//! complete, pods with each container's state and the scheduler's verdict, events,
//! NodePorts, the kubeconfig's contexts. Pure parsers; output slipway cannot read is
//! an error, never "nothing there".

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Absent or `null`: the default.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

// ---- The objects, as the API server sends them (only the fields slipway reads) ----

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Meta {
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(deserialize_with = "nullable")]
    pub generation: i64,
    #[serde(deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
    #[serde(deserialize_with = "nullable")]
    pub annotations: BTreeMap<String, String>,
    #[serde(deserialize_with = "nullable")]
    pub creation_timestamp: String,
    pub deletion_timestamp: Option<String>,
}

impl Meta {
    /// The helm release that owns the object (helm annotates every object it owns).
    pub fn release(&self) -> &str {
        self.annotations
            .get("meta.helm.sh/release-name")
            .map_or("", String::as_str)
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type", deserialize_with = "nullable")]
    pub kind: String,
    #[serde(deserialize_with = "nullable")]
    pub status: String,
    #[serde(deserialize_with = "nullable")]
    pub reason: String,
    #[serde(deserialize_with = "nullable")]
    pub message: String,
}

/// The condition of type `kind`, if the list has it.
fn condition<'a>(conditions: &'a [Condition], kind: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.kind == kind)
}

/// A workload (Deployment, StatefulSet, DaemonSet, Job) or a HorizontalPodAutoscaler:
/// one type for the lists that mix them.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Object {
    #[serde(deserialize_with = "nullable")]
    pub kind: String,
    #[serde(deserialize_with = "nullable")]
    pub metadata: Meta,
    #[serde(deserialize_with = "nullable")]
    pub spec: ObjectSpec,
    #[serde(deserialize_with = "nullable")]
    pub status: ObjectStatus,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ObjectSpec {
    pub replicas: Option<i64>,
    #[serde(deserialize_with = "nullable")]
    pub selector: Selector,
    #[serde(deserialize_with = "nullable")]
    pub update_strategy: UpdateStrategy,
    /// A Job's.
    pub completions: Option<i64>,
    /// An autoscaler's.
    pub min_replicas: Option<i64>,
    #[serde(deserialize_with = "nullable")]
    pub scale_target_ref: TargetRef,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Selector {
    #[serde(deserialize_with = "nullable")]
    pub match_labels: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct UpdateStrategy {
    #[serde(rename = "type", deserialize_with = "nullable")]
    pub kind: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct TargetRef {
    #[serde(deserialize_with = "nullable")]
    pub kind: String,
    #[serde(deserialize_with = "nullable")]
    pub name: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ObjectStatus {
    #[serde(deserialize_with = "nullable")]
    pub observed_generation: i64,
    #[serde(deserialize_with = "nullable")]
    pub replicas: i64,
    #[serde(deserialize_with = "nullable")]
    pub updated_replicas: i64,
    #[serde(deserialize_with = "nullable")]
    pub available_replicas: i64,
    #[serde(deserialize_with = "nullable")]
    pub ready_replicas: i64,
    #[serde(deserialize_with = "nullable")]
    pub current_revision: String,
    #[serde(deserialize_with = "nullable")]
    pub update_revision: String,
    #[serde(deserialize_with = "nullable")]
    pub number_ready: i64,
    #[serde(deserialize_with = "nullable")]
    pub desired_number_scheduled: i64,
    #[serde(deserialize_with = "nullable")]
    pub updated_number_scheduled: i64,
    #[serde(deserialize_with = "nullable")]
    pub number_available: i64,
    #[serde(deserialize_with = "nullable")]
    pub succeeded: i64,
    #[serde(deserialize_with = "nullable")]
    pub failed: i64,
    #[serde(deserialize_with = "nullable")]
    pub conditions: Vec<Condition>,
}

impl ObjectStatus {
    /// Its condition of type `kind` is `True`.
    pub fn holds(&self, kind: &str) -> bool {
        condition(&self.conditions, kind).is_some_and(|c| c.status == "True")
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Pod {
    #[serde(deserialize_with = "nullable")]
    pub metadata: Meta,
    #[serde(deserialize_with = "nullable")]
    pub spec: PodSpec,
    #[serde(deserialize_with = "nullable")]
    pub status: PodStatus,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodSpec {
    #[serde(deserialize_with = "nullable")]
    pub containers: Vec<Container>,
    #[serde(deserialize_with = "nullable")]
    pub init_containers: Vec<Container>,
    #[serde(deserialize_with = "nullable")]
    pub volumes: Vec<Volume>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Container {
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    pub image: Option<String>,
    pub readiness_probe: Option<Probe>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Volume {
    pub persistent_volume_claim: Option<ClaimRef>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ClaimRef {
    pub claim_name: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Probe {
    pub http_get: Option<ProbeAction>,
    pub tcp_socket: Option<ProbeAction>,
    pub grpc: Option<ProbeAction>,
    pub exec: Option<Value>,
    #[serde(deserialize_with = "nullable")]
    pub initial_delay_seconds: i64,
    #[serde(deserialize_with = "nullable")]
    pub period_seconds: i64,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ProbeAction {
    #[serde(deserialize_with = "nullable")]
    pub scheme: String,
    #[serde(deserialize_with = "nullable")]
    pub path: String,
    /// A number or a name.
    pub port: Option<Value>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodStatus {
    #[serde(deserialize_with = "nullable")]
    pub phase: String,
    #[serde(deserialize_with = "nullable")]
    pub conditions: Vec<Condition>,
    #[serde(deserialize_with = "nullable")]
    pub init_container_statuses: Vec<ContainerStatus>,
    #[serde(deserialize_with = "nullable")]
    pub container_statuses: Vec<ContainerStatus>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ContainerStatus {
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(deserialize_with = "nullable")]
    pub ready: bool,
    pub restart_count: Option<i64>,
    #[serde(deserialize_with = "nullable")]
    pub state: States,
    #[serde(deserialize_with = "nullable")]
    pub last_state: States,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct States {
    pub waiting: Option<Why>,
    pub running: Option<Value>,
    pub terminated: Option<Why>,
}

/// A container state's reason and message (and exit code, when it ended).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Why {
    pub reason: Option<String>,
    pub message: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub exit_code: i64,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Service {
    #[serde(deserialize_with = "nullable")]
    pub metadata: Meta,
    #[serde(deserialize_with = "nullable")]
    pub spec: ServiceSpec,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ServiceSpec {
    #[serde(rename = "type", deserialize_with = "nullable")]
    pub kind: String,
    #[serde(deserialize_with = "nullable")]
    pub ports: Vec<ServicePort>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ServicePort {
    pub port: Option<u64>,
    pub node_port: Option<u64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Event {
    #[serde(deserialize_with = "nullable")]
    pub metadata: Meta,
    #[serde(deserialize_with = "nullable")]
    pub involved_object: ObjectRef,
    #[serde(deserialize_with = "nullable")]
    pub reason: String,
    #[serde(deserialize_with = "nullable")]
    pub message: String,
    #[serde(rename = "type", deserialize_with = "nullable")]
    pub kind: String,
    #[serde(deserialize_with = "nullable")]
    pub count: i64,
    #[serde(deserialize_with = "nullable")]
    pub last_timestamp: String,
    #[serde(deserialize_with = "nullable")]
    pub event_time: String,
    #[serde(deserialize_with = "nullable")]
    pub series: Series,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ObjectRef {
    #[serde(deserialize_with = "nullable")]
    pub kind: String,
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(deserialize_with = "nullable")]
    pub field_path: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Series {
    #[serde(deserialize_with = "nullable")]
    pub last_observed_time: String,
}

/// `kubectl config view -o json`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Kubeconfig {
    #[serde(deserialize_with = "nullable")]
    pub contexts: Vec<NamedContext>,
    #[serde(deserialize_with = "nullable")]
    pub clusters: Vec<NamedCluster>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct NamedContext {
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(deserialize_with = "nullable")]
    pub context: ContextRef,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ContextRef {
    #[serde(deserialize_with = "nullable")]
    pub cluster: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct NamedCluster {
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(deserialize_with = "nullable")]
    pub cluster: ClusterEntry,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ClusterEntry {
    #[serde(deserialize_with = "nullable")]
    pub server: String,
    /// Named extensions; what each holds is the writer's own (opaque to kubectl).
    #[serde(deserialize_with = "nullable")]
    pub extensions: Vec<NamedExtension>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct NamedExtension {
    pub extension: Option<Value>,
}

/// `kubectl version --client -o json`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct VersionInfo {
    client_version: Option<GitVersion>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct GitVersion {
    git_version: Option<String>,
}

/// The `items` of a `kubectl get -o json` list. Anything else is an error: output
/// slipway cannot read never counts as "nothing there".
pub fn items<T: DeserializeOwned>(json: &str) -> Result<Vec<T>, String> {
    let v: Value = serde_json::from_str(json.trim())
        .map_err(|e| format!("kubectl printed something that is not JSON ({e})"))?;
    match v.get("items") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|i| {
                T::deserialize(i)
                    .map_err(|e| format!("kubectl printed an object slipway cannot read ({e})"))
            })
            .collect(),
        _ => Err("kubectl printed JSON without an `items` list".into()),
    }
}

/// One object (`kubectl get KIND/NAME -o json`).
pub fn object(json: &str) -> Result<Object, String> {
    serde_json::from_str(json.trim()).map_err(|e| e.to_string())
}

pub fn parse_client_version(json: &str) -> Option<semver::Version> {
    let v: VersionInfo = serde_json::from_str(json.trim()).ok()?;
    super::parse_version(&v.client_version?.git_version?)
}

// ---- What the readers see ----

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
    let k: Kubeconfig = serde_json::from_str(json.trim())
        .map_err(|e| format!("`kubectl config view` printed something that is not JSON ({e})"))?;
    let Some(ctx) = k.contexts.iter().find(|c| c.name == context) else {
        return Ok(None);
    };
    let cluster = ctx.context.cluster.clone();
    let c = k.clusters.iter().find(|c| c.name == cluster);
    Ok(Some(ContextTarget {
        server: c.map(|c| c.cluster.server.clone()).unwrap_or_default(),
        provider: c.and_then(|c| {
            c.cluster.extensions.iter().find_map(|e| {
                e.extension
                    .as_ref()?
                    .get("provider")?
                    .as_str()
                    .map(String::from)
            })
        }),
        cluster,
    }))
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkloadState {
    /// `deployment`, `statefulset`, `daemonset` or `job`.
    pub kind: String,
    pub name: String,
    pub selector: BTreeMap<String, String>,
    pub ready: i64,
    pub desired: i64,
    /// How far the rollout is, in the controller's terms ("1/2 updated, 2 available").
    pub progress: String,
    /// The rollout is complete (a Job: it succeeded).
    pub done: bool,
    /// It will not get there by itself: a Deployment past its progress deadline, a
    /// failed Job. The controller's reason and message.
    pub failed: Option<String>,
}

impl WorkloadState {
    pub fn id(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }
    /// Does a pod with these labels belong to this workload?
    pub fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        !self.selector.is_empty() && self.selector.iter().all(|(k, v)| labels.get(k) == Some(v))
    }
    /// Its selector as `--selector` takes it.
    pub fn selector_arg(&self) -> String {
        self.selector
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// A Job's pods are selected by its controller's UID alone.
fn job_selector(o: &Object) -> BTreeMap<String, String> {
    o.spec
        .selector
        .match_labels
        .iter()
        .filter(|(k, _)| *k == "batch.kubernetes.io/controller-uid" || *k == "controller-uid")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Workloads helm created for `release` (helm annotates every object it owns), with
/// whether each finished rolling out, judged as `kubectl rollout status` does.
///
/// A Deployment or StatefulSet an autoscaler of the release targets has rolled out
/// once it runs at least the autoscaler's `minReplicas`: a chart that leaves
/// `replicas` to the HPA starts at 1, and the HPA raises it (without metrics) a few
/// seconds later.
pub fn parse_workloads(json: &str, release: &str) -> Result<Vec<WorkloadState>, String> {
    let all: Vec<Object> = items(json)?;
    let ours: Vec<&Object> = all
        .iter()
        .filter(|i| i.metadata.release() == release)
        .collect();
    let hpa_min: BTreeMap<(String, String), i64> = ours
        .iter()
        .filter(|i| i.kind == "HorizontalPodAutoscaler")
        .map(|i| {
            let t = &i.spec.scale_target_ref;
            (
                (t.kind.to_ascii_lowercase(), t.name.clone()),
                i.spec.min_replicas.unwrap_or(1),
            )
        })
        .collect();
    Ok(ours
        .into_iter()
        .filter_map(|i| {
            let kind = i.kind.to_ascii_lowercase();
            let name = i.metadata.name.clone();
            let st = &i.status;
            let generation_seen = st.observed_generation >= i.metadata.generation;
            let replicas = i.spec.replicas.unwrap_or(1).max(
                hpa_min
                    .get(&(kind.clone(), name.clone()))
                    .copied()
                    .unwrap_or(0),
            );
            let (ready, desired, done, failed, progress) = match kind.as_str() {
                "deployment" => {
                    let (updated, total, available) =
                        (st.updated_replicas, st.replicas, st.available_replicas);
                    let stuck = condition(&st.conditions, "Progressing")
                        .filter(|c| c.reason == "ProgressDeadlineExceeded")
                        .map(|c| format!("{}: {}", c.reason, c.message));
                    (
                        st.ready_replicas,
                        replicas,
                        generation_seen
                            && updated == replicas
                            && total == replicas
                            && available == replicas,
                        stuck,
                        format!(
                            "{updated}/{replicas} updated, {available} available, {} old",
                            (total - updated).max(0)
                        ),
                    )
                }
                "statefulset" => {
                    let (ready, updated) = (st.ready_replicas, st.updated_replicas);
                    let same_revision = st.update_revision == st.current_revision;
                    let on_delete = i.spec.update_strategy.kind == "OnDelete";
                    (
                        ready,
                        replicas,
                        generation_seen
                            && ready == replicas
                            && (on_delete || (updated == replicas && same_revision)),
                        None,
                        format!("{ready}/{replicas} ready, {updated}/{replicas} updated"),
                    )
                }
                "daemonset" => {
                    let desired = st.desired_number_scheduled;
                    (
                        st.number_ready,
                        desired,
                        generation_seen
                            && st.updated_number_scheduled == desired
                            && st.number_available == desired,
                        None,
                        format!(
                            "{}/{desired} updated, {} available",
                            st.updated_number_scheduled, st.number_available
                        ),
                    )
                }
                "job" => {
                    let completions = i.spec.completions.unwrap_or(1);
                    let failed = condition(&st.conditions, "Failed")
                        .filter(|c| c.status == "True")
                        .map(|c| format!("{}: {}", c.reason, c.message));
                    (
                        st.succeeded,
                        completions,
                        st.holds("Complete"),
                        failed,
                        format!("{}/{completions} succeeded", st.succeeded),
                    )
                }
                _ => return None,
            };
            let selector = if kind == "job" {
                job_selector(i)
            } else {
                i.spec.selector.match_labels.clone()
            };
            Some(WorkloadState {
                kind,
                name,
                selector,
                ready,
                desired,
                progress,
                done,
                failed,
            })
        })
        .collect())
}

/// Failed helm hook Jobs (annotated `helm.sh/hook`): (name, reason, their pods'
/// selector).
pub fn parse_failed_hooks(json: &str) -> Result<Vec<WorkloadState>, String> {
    Ok(items::<Object>(json)?
        .iter()
        .filter(|i| {
            i.kind == "Job"
                && !i
                    .metadata
                    .annotations
                    .get("helm.sh/hook")
                    .is_none_or(String::is_empty)
        })
        .filter_map(|i| {
            let c = condition(&i.status.conditions, "Failed").filter(|c| c.status == "True")?;
            Some(WorkloadState {
                kind: "job".into(),
                name: i.metadata.name.clone(),
                selector: job_selector(i),
                ready: 0,
                desired: 1,
                progress: String::new(),
                done: false,
                failed: Some(format!("{}: {}", c.reason, c.message)),
            })
        })
        .collect())
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerState {
    pub name: String,
    pub init: bool,
    pub ready: bool,
    pub restarts: i64,
    /// Waiting: (reason, message).
    pub waiting: Option<(String, String)>,
    /// The last time it ended: (reason, exit code).
    pub last_exit: Option<(String, i64)>,
    /// Ended now (a Job's pod): (reason, exit code).
    pub terminated: Option<(String, i64)>,
    /// Running now (started, not waiting, not ended).
    pub running: bool,
    /// Its readiness probe, from the pod's spec.
    pub readiness: Option<ProbeSpec>,
}

/// A container's readiness probe as the pod's spec has it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProbeSpec {
    /// `HTTP`, `HTTPS`, `TCP`, `gRPC` or `exec`.
    pub scheme: String,
    /// The HTTP path (empty for the other kinds).
    pub path: String,
    /// The port, a number or a name (empty for exec).
    pub port: String,
    pub initial_delay_secs: i64,
    pub period_secs: i64,
}

impl ProbeSpec {
    fn of(p: &Probe) -> Option<ProbeSpec> {
        let port = |a: &ProbeAction| match &a.port {
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(s)) => s.clone(),
            _ => String::new(),
        };
        let (scheme, path, port) = if let Some(h) = &p.http_get {
            (
                if h.scheme.is_empty() {
                    "HTTP".into()
                } else {
                    h.scheme.clone()
                },
                h.path.clone(),
                port(h),
            )
        } else if let Some(t) = &p.tcp_socket {
            ("TCP".into(), String::new(), port(t))
        } else if let Some(g) = &p.grpc {
            ("gRPC".into(), String::new(), port(g))
        } else if p.exec.is_some() {
            ("exec".into(), String::new(), String::new())
        } else {
            return None;
        };
        Some(ProbeSpec {
            scheme,
            path,
            port,
            initial_delay_secs: p.initial_delay_seconds,
            period_secs: if p.period_seconds > 0 {
                p.period_seconds
            } else {
                10
            },
        })
    }
}

impl std::fmt::Display for ProbeSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.scheme.as_str() {
            "HTTP" | "HTTPS" => write!(
                f,
                "{} GET port {} path {}",
                self.scheme,
                self.port,
                if self.path.is_empty() {
                    "/"
                } else {
                    &self.path
                }
            ),
            "exec" => write!(f, "exec"),
            other => write!(f, "{other} port {}", self.port),
        }?;
        write!(
            f,
            " (initialDelaySeconds {}, periodSeconds {})",
            self.initial_delay_secs, self.period_secs
        )
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodState {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub phase: String,
    pub ready: bool,
    pub created: String,
    pub terminating: bool,
    /// The scheduler could not place it: its message.
    pub unschedulable: Option<String>,
    pub containers: Vec<ContainerState>,
    /// Claims of its volumes.
    pub claims: Vec<String>,
    /// Restarts of all its containers.
    pub restarts: i64,
    /// Why a container is not running (or last stopped), e.g. ErrImageNeverPull,
    /// CrashLoopBackOff; each once, in the order met.
    pub reasons: Vec<String>,
    /// What the container states say.
    pub messages: Vec<String>,
    /// The images of its (non-init) containers.
    pub images: Vec<String>,
    /// `dev`'s `slipway.dev/synced` annotation: the pod runs synced files.
    pub synced: Option<String>,
}

impl PodState {
    /// The pod carries every label of a workload's `matchLabels`.
    pub fn selected_by(&self, w: &WorkloadState) -> bool {
        w.selects(&self.labels)
    }
}

fn pod_state(p: &Pod) -> PodState {
    let st = &p.status;
    let mut containers = vec![];
    let (mut reasons, mut messages) = (vec![], vec![]);
    for (statuses, specs, init) in [
        (&st.init_container_statuses, &p.spec.init_containers, true),
        (&st.container_statuses, &p.spec.containers, false),
    ] {
        for c in statuses {
            for (w, last) in [
                (&c.state.waiting, false),
                (&c.state.terminated, false),
                (&c.last_state.terminated, true),
            ] {
                let Some(w) = w else { continue };
                if let Some(r) = &w.reason {
                    let completed_before = last && r == "Completed";
                    if !completed_before && !reasons.contains(r) {
                        reasons.push(r.clone());
                    }
                }
                messages.extend(w.message.clone());
            }
            let ended = |w: &Option<Why>| {
                w.as_ref()
                    .map(|t| (t.reason.clone().unwrap_or_default(), t.exit_code))
            };
            containers.push(ContainerState {
                name: c.name.clone(),
                init,
                ready: c.ready,
                restarts: c.restart_count.unwrap_or(0),
                waiting: c.state.waiting.as_ref().map(|w| {
                    (
                        w.reason.clone().unwrap_or_default(),
                        w.message.clone().unwrap_or_default(),
                    )
                }),
                last_exit: ended(&c.last_state.terminated),
                terminated: ended(&c.state.terminated),
                running: c.state.running.is_some(),
                readiness: specs
                    .iter()
                    .find(|s| s.name == c.name)
                    .and_then(|s| s.readiness_probe.as_ref())
                    .and_then(ProbeSpec::of),
            });
        }
    }
    PodState {
        name: p.metadata.name.clone(),
        labels: p.metadata.labels.clone(),
        phase: st.phase.clone(),
        ready: condition(&st.conditions, "Ready").is_some_and(|c| c.status == "True"),
        created: p.metadata.creation_timestamp.clone(),
        terminating: p.metadata.deletion_timestamp.is_some(),
        synced: p.metadata.annotations.get("slipway.dev/synced").cloned(),
        unschedulable: condition(&st.conditions, "PodScheduled")
            .filter(|c| c.status == "False" && c.reason == "Unschedulable")
            .map(|c| c.message.clone()),
        restarts: containers.iter().map(|c| c.restarts).sum(),
        containers,
        claims: p
            .spec
            .volumes
            .iter()
            .filter_map(|v| v.persistent_volume_claim.as_ref()?.claim_name.clone())
            .collect(),
        reasons,
        messages,
        images: p
            .spec
            .containers
            .iter()
            .filter_map(|c| c.image.clone())
            .collect(),
    }
}

pub fn parse_pods(json: &str) -> Result<Vec<PodState>, String> {
    Ok(items::<Pod>(json)?.iter().map(pod_state).collect())
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubeEvent {
    /// The object it is about: `Pod`, `PersistentVolumeClaim`, …
    pub kind: String,
    pub name: String,
    pub reason: String,
    pub message: String,
    pub warning: bool,
    pub count: i64,
    /// RFC 3339, for ordering.
    pub last: String,
    /// The part of the object it is about (`spec.containers{web}`), if any.
    pub field: String,
}

impl KubeEvent {
    /// The container of a pod this event is about (`spec.containers{NAME}`).
    pub fn container(&self) -> Option<&str> {
        self.field
            .strip_prefix("spec.containers{")
            .or_else(|| self.field.strip_prefix("spec.initContainers{"))?
            .strip_suffix('}')
    }
}

pub fn parse_events(json: &str) -> Result<Vec<KubeEvent>, String> {
    let mut v: Vec<KubeEvent> = items::<Event>(json)?
        .into_iter()
        .map(|e| {
            let last = [
                &e.last_timestamp,
                &e.event_time,
                &e.series.last_observed_time,
                &e.metadata.creation_timestamp,
            ]
            .into_iter()
            .find(|t| !t.is_empty())
            .cloned()
            .unwrap_or_default();
            KubeEvent {
                kind: e.involved_object.kind,
                name: e.involved_object.name,
                reason: e.reason,
                message: e.message.trim().to_string(),
                warning: e.kind == "Warning",
                count: e.count.max(1),
                last,
                field: e.involved_object.field_path,
            }
        })
        .collect();
    v.sort_by(|a, b| a.last.cmp(&b.last));
    Ok(v)
}

/// One NodePort of a Service helm installed for a release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodePort {
    pub service: String,
    pub port: u16,
    pub node_port: u16,
}

fn port16(p: Option<u64>) -> Option<u16> {
    p.and_then(|n| u16::try_from(n).ok())
}

/// The NodePort of `service`'s `port`: `Ok(None)` when the Service is not a
/// NodePort, `Err` when it does not exist or the JSON is unreadable.
pub fn node_port_of(json: &str, service: &str, port: u16) -> Result<Option<u16>, String> {
    let s = items::<Service>(json)?
        .into_iter()
        .find(|s| s.metadata.name == service)
        .ok_or_else(|| format!("service {service} does not exist yet"))?;
    if s.spec.kind != "NodePort" {
        return Ok(None);
    }
    Ok(s.spec
        .ports
        .iter()
        .find(|p| p.port == Some(u64::from(port)))
        .and_then(|p| port16(p.node_port)))
}

/// The NodePorts of the Services `releases` own (helm's release-name annotation).
pub fn parse_node_ports(json: &str, releases: &[String]) -> Result<Vec<NodePort>, String> {
    let mut out = vec![];
    for s in items::<Service>(json)? {
        if !releases.iter().any(|r| r == s.metadata.release()) || s.spec.kind != "NodePort" {
            continue;
        }
        for p in &s.spec.ports {
            if let (Some(port), Some(node_port)) = (port16(p.port), port16(p.node_port)) {
                out.push(NodePort {
                    service: s.metadata.name.clone(),
                    port,
                    node_port,
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::kubectl::{hint_for, server_host};
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

    /// A Deployment sized by its HPA (no `replicas` in the chart): 1/1 is not rolled
    /// out while the HPA's minimum is 2.
    #[test]
    fn an_autoscaled_deployment_waits_for_the_autoscalers_minimum() {
        let json = |ready: i64| {
            format!(
                r#"{{"items":[
          {{"kind":"Deployment","metadata":{{"name":"api","generation":1,"annotations":{{"meta.helm.sh/release-name":"r"}}}},
           "spec":{{"replicas":{ready},"selector":{{"matchLabels":{{"app":"api"}}}}}},
           "status":{{"observedGeneration":1,"replicas":{ready},"updatedReplicas":{ready},"availableReplicas":{ready},"readyReplicas":{ready}}}}},
          {{"kind":"HorizontalPodAutoscaler","metadata":{{"name":"api","annotations":{{"meta.helm.sh/release-name":"r"}}}},
           "spec":{{"minReplicas":2,"maxReplicas":10,"scaleTargetRef":{{"apiVersion":"apps/v1","kind":"Deployment","name":"api"}}}}}},
          {{"kind":"HorizontalPodAutoscaler","metadata":{{"name":"theirs","annotations":{{"meta.helm.sh/release-name":"x"}}}},
           "spec":{{"minReplicas":5,"scaleTargetRef":{{"kind":"Deployment","name":"api"}}}}}}
        ]}}"#
            )
        };
        let w = parse_workloads(&json(1), "r").unwrap();
        assert_eq!(w.len(), 1, "the autoscaler is no workload: {w:?}");
        assert_eq!((w[0].ready, w[0].desired, w[0].done), (1, 2, false));
        let w = parse_workloads(&json(2), "r").unwrap();
        assert_eq!((w[0].ready, w[0].desired, w[0].done), (2, 2, true));
    }

    #[test]
    fn rollout_completion_per_kind() {
        let json = r#"{"items":[
          {"kind":"Deployment","metadata":{"name":"web","generation":3,"annotations":{"meta.helm.sh/release-name":"r"}},
           "spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}}},
           "status":{"observedGeneration":3,"replicas":3,"updatedReplicas":2,"availableReplicas":2,"readyReplicas":2}},
          {"kind":"Deployment","metadata":{"name":"stuck","generation":1,"annotations":{"meta.helm.sh/release-name":"r"}},
           "spec":{"replicas":1,"selector":{"matchLabels":{"app":"stuck"}}},
           "status":{"observedGeneration":1,"conditions":[{"type":"Progressing","status":"False","reason":"ProgressDeadlineExceeded","message":"ReplicaSet \"stuck-1\" has timed out progressing."}]}},
          {"kind":"StatefulSet","metadata":{"name":"db","generation":1,"annotations":{"meta.helm.sh/release-name":"r"}},
           "spec":{"replicas":1,"selector":{"matchLabels":{"app":"db"}}},
           "status":{"observedGeneration":1,"readyReplicas":1,"updatedReplicas":1,"currentRevision":"db-1","updateRevision":"db-1"}},
          {"kind":"Job","metadata":{"name":"migrate","annotations":{"meta.helm.sh/release-name":"r"}},
           "spec":{"selector":{"matchLabels":{"batch.kubernetes.io/controller-uid":"u1"}}},
           "status":{"failed":3,"conditions":[{"type":"Failed","status":"True","reason":"BackoffLimitExceeded","message":"Job has reached the specified backoff limit"}]}},
          {"kind":"Job","metadata":{"name":"other","annotations":{"meta.helm.sh/release-name":"x"}},"spec":{}}
        ]}"#;
        let w = parse_workloads(json, "r").unwrap();
        assert_eq!(w.len(), 4);
        assert!(!w[0].done, "an old replica is still there");
        assert!(w[1]
            .failed
            .as_deref()
            .unwrap()
            .starts_with("ProgressDeadlineExceeded"));
        assert!(w[2].done);
        assert_eq!(w[3].id(), "job/migrate");
        assert!(w[3]
            .failed
            .as_deref()
            .unwrap()
            .contains("BackoffLimitExceeded"));
        let mut l = BTreeMap::new();
        l.insert(
            "batch.kubernetes.io/controller-uid".to_string(),
            "u1".to_string(),
        );
        assert!(w[3].selects(&l));
        assert!(!w[0].selects(&l));
        assert!(parse_workloads("oops", "r").is_err());
    }

    #[test]
    fn pods_with_scheduler_and_container_states() {
        let json = r#"{"items":[
          {"metadata":{"name":"db-0","labels":{"app":"db"},"creationTimestamp":"2026-01-01T00:00:00Z"},
           "spec":{"volumes":[{"name":"data","persistentVolumeClaim":{"claimName":"data-db-0"}}]},
           "status":{"phase":"Pending","conditions":[{"type":"PodScheduled","status":"False","reason":"Unschedulable","message":"0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims."}]}},
          {"metadata":{"name":"web-1","labels":{"app":"web"}},
           "status":{"phase":"Running","conditions":[{"type":"Ready","status":"False"}],
             "initContainerStatuses":[{"name":"migrate","ready":true,"restartCount":0,"state":{"terminated":{"reason":"Completed","exitCode":0}}}],
             "containerStatuses":[{"name":"web","ready":false,"restartCount":3,
               "state":{"waiting":{"reason":"CrashLoopBackOff","message":"back-off 40s"}},
               "lastState":{"terminated":{"reason":"Error","exitCode":2}}}]}}
        ]}"#;
        let p = parse_pods(json).unwrap();
        assert!(p[0]
            .unschedulable
            .as_deref()
            .unwrap()
            .contains("unbound immediate"));
        assert_eq!(p[0].claims, vec!["data-db-0"]);
        let web = &p[1].containers;
        assert_eq!(web.len(), 2);
        assert!(web[0].init && web[0].terminated == Some(("Completed".into(), 0)));
        assert_eq!(web[1].restarts, 3);
        assert_eq!(web[1].waiting.as_ref().unwrap().0, "CrashLoopBackOff");
        assert_eq!(web[1].last_exit, Some(("Error".into(), 2)));
    }

    #[test]
    fn events_in_time_order() {
        let json = r#"{"items":[
          {"involvedObject":{"kind":"Pod","name":"web-1"},"reason":"Unhealthy","message":"Readiness probe failed: HTTP probe failed with statuscode: 503","type":"Warning","count":4,"lastTimestamp":"2026-01-01T00:00:09Z"},
          {"involvedObject":{"kind":"PersistentVolumeClaim","name":"data"},"reason":"ProvisioningFailed","message":"storageclass.storage.k8s.io \"fast\" not found","type":"Warning","eventTime":"2026-01-01T00:00:02Z"}
        ]}"#;
        let e = parse_events(json).unwrap();
        assert_eq!(e[0].kind, "PersistentVolumeClaim");
        assert_eq!(e[0].count, 1);
        assert_eq!(e[1].reason, "Unhealthy");
        assert!(e[1].warning);
    }

    /// The readiness probe comes from the pod's spec, the event's container from its
    /// fieldPath.
    #[test]
    fn readiness_probes_and_event_containers_are_read() {
        let pods = r#"{"items":[{"metadata":{"name":"web-1"},
          "spec":{"containers":[{"name":"web","readinessProbe":{"httpGet":{"path":"/healthzz","port":"http"},"periodSeconds":2}},
                                {"name":"side","readinessProbe":{"tcpSocket":{"port":9000},"initialDelaySeconds":5}}]},
          "status":{"phase":"Running","containerStatuses":[
            {"name":"web","ready":false,"restartCount":0,"state":{"running":{"startedAt":"2026-01-01T00:00:00Z"}}},
            {"name":"side","ready":false,"restartCount":0,"state":{"waiting":{"reason":"ContainerCreating"}}}]}}]}"#;
        let p = &parse_pods(pods).unwrap()[0];
        let web = p.containers[0].readiness.clone().unwrap();
        assert!(p.containers[0].running && !p.containers[1].running);
        assert_eq!(
            web.to_string(),
            "HTTP GET port http path /healthzz (initialDelaySeconds 0, periodSeconds 2)"
        );
        assert_eq!(
            p.containers[1].readiness.as_ref().unwrap().to_string(),
            "TCP port 9000 (initialDelaySeconds 5, periodSeconds 10)"
        );
        let events = r#"{"items":[{"involvedObject":{"kind":"Pod","name":"web-1","fieldPath":"spec.containers{web}"},
          "reason":"Unhealthy","type":"Warning","message":"Readiness probe failed: HTTP probe failed with statuscode: 404","count":4,
          "lastTimestamp":"2026-01-01T00:00:09Z"}]}"#;
        let e = &parse_events(events).unwrap()[0];
        assert_eq!((e.container(), e.count), (Some("web"), 4));
    }

    /// kubectl prints `null` for empty lists and maps (`"contexts": null` in an empty
    /// kubeconfig): read as empty. An item that is no object is unreadable, never
    /// an empty object.
    #[test]
    fn nulls_read_as_empty_and_a_non_object_is_an_error() {
        assert_eq!(
            parse_context(r#"{"contexts":null,"clusters":null}"#, "x"),
            Ok(None)
        );
        let pods = r#"{"items":[{"metadata":{"name":"a","labels":null,"annotations":null},
          "spec":{"containers":null,"volumes":null},
          "status":{"phase":"Pending","conditions":null,"containerStatuses":null}}]}"#;
        let p = &parse_pods(pods).unwrap()[0];
        assert_eq!((p.name.as_str(), p.phase.as_str()), ("a", "Pending"));
        assert!(p.labels.is_empty() && p.containers.is_empty() && p.reasons.is_empty());
        let e = parse_pods(r#"{"items":[42]}"#).unwrap_err();
        assert!(e.contains("cannot read"), "{e}");
    }

    /// Every reader sees the same pod: the tracker's container states and health's
    /// reasons and restarts come from one parse.
    #[test]
    fn one_pod_for_every_reader() {
        let json = r#"{"items":[{"metadata":{"name":"web-1","labels":{"app":"web"}},
          "spec":{"containers":[{"name":"web","image":"web:1"}]},
          "status":{"phase":"Running","containerStatuses":[{"name":"web","ready":false,"restartCount":3,
            "state":{"waiting":{"reason":"CrashLoopBackOff","message":"back-off 40s"}},
            "lastState":{"terminated":{"reason":"Error","exitCode":2,"message":"boom"}}}]}}]}"#;
        let p = &parse_pods(json).unwrap()[0];
        assert_eq!(p.containers[0].restarts, 3);
        assert_eq!(p.restarts, 3);
        assert_eq!(p.reasons, vec!["CrashLoopBackOff", "Error"]);
        assert_eq!(p.messages, vec!["back-off 40s", "boom"]);
        assert_eq!(p.containers[0].last_exit, Some(("Error".into(), 2)));
        let w = WorkloadState {
            kind: "deployment".into(),
            name: "web".into(),
            selector: p.labels.clone(),
            ..WorkloadState::default()
        };
        assert!(p.selected_by(&w));
        assert_eq!(w.selector_arg(), "app=web");
    }
}
