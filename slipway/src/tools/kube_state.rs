//! What a rollout tracker reads off the cluster, parsed from `kubectl get -o json`:
//! workloads (with whether their rollout is complete), pods (with each container's
//! state and the scheduler's verdict) and events. Pure parsers; output slipway cannot
//! read is an error, never "nothing there".

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::kubectl::items;
use super::{Cmd, PROBE};

fn at(context: &str, namespace: &str) -> Cmd {
    super::kubectl::at(context, Some(namespace))
}

/// The release's workloads, Jobs included, and the autoscalers that size them.
pub fn get_workloads(context: &str, namespace: &str) -> Cmd {
    at(context, namespace)
        .args([
            "get",
            "deployments,statefulsets,daemonsets,jobs,horizontalpodautoscalers",
            "--output",
            "json",
        ])
        .timeout(PROBE)
}

/// Every pod of the namespace (matched to workloads by their selectors here).
pub fn get_pods(context: &str, namespace: &str) -> Cmd {
    at(context, namespace)
        .args(["get", "pods", "--output", "json"])
        .timeout(PROBE)
}

/// The namespace's events.
pub fn get_events(context: &str, namespace: &str) -> Cmd {
    at(context, namespace)
        .args(["get", "events", "--output", "json"])
        .timeout(PROBE)
}

/// The last lines a container printed; `previous` for the instance before a restart.
pub fn logs(context: &str, namespace: &str, pod: &str, container: &str, previous: bool) -> Cmd {
    let mut c = at(context, namespace).args([
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
    let mut c = at(context, namespace).args([
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

fn s(v: &Value, ptr: &str) -> String {
    v.pointer(ptr)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn n(v: &Value, ptr: &str) -> i64 {
    v.pointer(ptr).and_then(Value::as_i64).unwrap_or(0)
}

/// The condition of `type` in `/status/conditions`: (status, reason, message).
fn condition(v: &Value, ty: &str) -> Option<(String, String, String)> {
    v.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(ty))
        .map(|c| (s(c, "/status"), s(c, "/reason"), s(c, "/message")))
}

#[derive(Clone, Debug, PartialEq, Eq)]
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
}

fn labels(v: &Value, ptr: &str) -> BTreeMap<String, String> {
    v.pointer(ptr)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Workloads helm created for `release` (helm annotates every object it owns), with
/// whether each finished rolling out, judged as `kubectl rollout status` does.
///
/// A Deployment or StatefulSet an autoscaler of the release targets has rolled out
/// once it runs at least the autoscaler's `minReplicas`: a chart that leaves
/// `replicas` to the HPA starts at 1, and the HPA raises it (without metrics) a few
/// seconds later.
pub fn parse_workloads(json: &str, release: &str) -> Result<Vec<WorkloadState>, String> {
    let all = items(json)?;
    let ours: Vec<&Value> = all
        .iter()
        .filter(|i| s(i, "/metadata/annotations/meta.helm.sh~1release-name") == release)
        .collect();
    let hpa_min: BTreeMap<(String, String), i64> = ours
        .iter()
        .filter(|i| i.get("kind").and_then(Value::as_str) == Some("HorizontalPodAutoscaler"))
        .map(|i| {
            (
                (
                    s(i, "/spec/scaleTargetRef/kind").to_ascii_lowercase(),
                    s(i, "/spec/scaleTargetRef/name"),
                ),
                i.pointer("/spec/minReplicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(1),
            )
        })
        .collect();
    Ok(ours
        .into_iter()
        .filter_map(|i| {
            let kind = i.get("kind")?.as_str()?.to_ascii_lowercase();
            let name = s(i, "/metadata/name");
            let generation_seen =
                n(i, "/status/observedGeneration") >= n(i, "/metadata/generation");
            let replicas = i
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1)
                .max(
                    hpa_min
                        .get(&(kind.clone(), name.clone()))
                        .copied()
                        .unwrap_or(0),
                );
            let (ready, desired, done, failed, progress) = match kind.as_str() {
                "deployment" => {
                    let updated = n(i, "/status/updatedReplicas");
                    let total = n(i, "/status/replicas");
                    let available = n(i, "/status/availableReplicas");
                    let stuck = condition(i, "Progressing")
                        .filter(|(_, r, _)| r == "ProgressDeadlineExceeded")
                        .map(|(_, r, m)| format!("{r}: {m}"));
                    (
                        n(i, "/status/readyReplicas"),
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
                    let ready = n(i, "/status/readyReplicas");
                    let updated = n(i, "/status/updatedReplicas");
                    let same_revision =
                        s(i, "/status/updateRevision") == s(i, "/status/currentRevision");
                    let on_delete = s(i, "/spec/updateStrategy/type") == "OnDelete";
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
                    let desired = n(i, "/status/desiredNumberScheduled");
                    (
                        n(i, "/status/numberReady"),
                        desired,
                        generation_seen
                            && n(i, "/status/updatedNumberScheduled") == desired
                            && n(i, "/status/numberAvailable") == desired,
                        None,
                        format!(
                            "{}/{desired} updated, {} available",
                            n(i, "/status/updatedNumberScheduled"),
                            n(i, "/status/numberAvailable")
                        ),
                    )
                }
                "job" => {
                    let completions = i
                        .pointer("/spec/completions")
                        .and_then(Value::as_i64)
                        .unwrap_or(1);
                    let failed = condition(i, "Failed")
                        .filter(|(st, _, _)| st == "True")
                        .map(|(_, r, m)| format!("{r}: {m}"));
                    let complete = condition(i, "Complete").is_some_and(|(st, _, _)| st == "True");
                    let succeeded = n(i, "/status/succeeded");
                    (
                        succeeded,
                        completions,
                        complete,
                        failed,
                        format!("{succeeded}/{completions} succeeded"),
                    )
                }
                _ => return None,
            };
            let selector = if kind == "job" {
                labels(i, "/spec/selector/matchLabels")
                    .into_iter()
                    .filter(|(k, _)| {
                        k == "batch.kubernetes.io/controller-uid" || k == "controller-uid"
                    })
                    .collect()
            } else {
                labels(i, "/spec/selector/matchLabels")
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
    Ok(items(json)?
        .iter()
        .filter(|i| {
            i.get("kind").and_then(Value::as_str) == Some("Job")
                && !s(i, "/metadata/annotations/helm.sh~1hook").is_empty()
        })
        .filter_map(|i| {
            let (_, r, m) = condition(i, "Failed").filter(|(st, _, _)| st == "True")?;
            Some(WorkloadState {
                kind: "job".into(),
                name: s(i, "/metadata/name"),
                selector: labels(i, "/spec/selector/matchLabels")
                    .into_iter()
                    .filter(|(k, _)| {
                        k == "batch.kubernetes.io/controller-uid" || k == "controller-uid"
                    })
                    .collect(),
                ready: 0,
                desired: 1,
                progress: String::new(),
                done: false,
                failed: Some(format!("{r}: {m}")),
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
    fn parse(v: &Value) -> Option<ProbeSpec> {
        let port = |p: &str| match v.pointer(p) {
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(s)) => s.clone(),
            _ => String::new(),
        };
        let (scheme, path, port) = if v.get("httpGet").is_some() {
            let scheme = s(v, "/httpGet/scheme");
            (
                if scheme.is_empty() {
                    "HTTP".into()
                } else {
                    scheme
                },
                s(v, "/httpGet/path"),
                port("/httpGet/port"),
            )
        } else if v.get("tcpSocket").is_some() {
            ("TCP".into(), String::new(), port("/tcpSocket/port"))
        } else if v.get("grpc").is_some() {
            ("gRPC".into(), String::new(), port("/grpc/port"))
        } else if v.get("exec").is_some() {
            ("exec".into(), String::new(), String::new())
        } else {
            return None;
        };
        let period = n(v, "/periodSeconds");
        Some(ProbeSpec {
            scheme,
            path,
            port,
            initial_delay_secs: n(v, "/initialDelaySeconds"),
            period_secs: if period > 0 { period } else { 10 },
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

#[derive(Clone, Debug, PartialEq, Eq)]
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
}

pub fn parse_pods(json: &str) -> Result<Vec<PodState>, String> {
    Ok(items(json)?
        .iter()
        .map(|p| {
            let mut containers = vec![];
            for (key, init) in [
                ("initContainerStatuses", true),
                ("containerStatuses", false),
            ] {
                for c in p
                    .pointer(&format!("/status/{key}"))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let state = |which: &str| -> Option<(String, i64)> {
                        let t = c.pointer(which)?;
                        Some((s(t, "/reason"), n(t, "/exitCode")))
                    };
                    containers.push(ContainerState {
                        name: s(c, "/name"),
                        init,
                        ready: c.get("ready").and_then(Value::as_bool).unwrap_or(false),
                        restarts: n(c, "/restartCount"),
                        waiting: c
                            .pointer("/state/waiting")
                            .map(|w| (s(w, "/reason"), s(w, "/message"))),
                        last_exit: state("/lastState/terminated"),
                        terminated: state("/state/terminated"),
                        running: c.pointer("/state/running").is_some(),
                        readiness: p
                            .pointer(&format!(
                                "/spec/{}",
                                if init { "initContainers" } else { "containers" }
                            ))
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                            .find(|sc| sc.get("name") == c.get("name"))
                            .and_then(|sc| sc.get("readinessProbe"))
                            .and_then(ProbeSpec::parse),
                    });
                }
            }
            let unschedulable = condition(p, "PodScheduled")
                .filter(|(st, r, _)| st == "False" && r == "Unschedulable")
                .map(|(_, _, m)| m);
            PodState {
                name: s(p, "/metadata/name"),
                labels: labels(p, "/metadata/labels"),
                phase: s(p, "/status/phase"),
                ready: condition(p, "Ready").is_some_and(|(st, _, _)| st == "True"),
                created: s(p, "/metadata/creationTimestamp"),
                terminating: p.pointer("/metadata/deletionTimestamp").is_some(),
                unschedulable,
                containers,
                claims: p
                    .pointer("/spec/volumes")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|v| {
                        Some(
                            v.pointer("/persistentVolumeClaim/claimName")?
                                .as_str()?
                                .to_string(),
                        )
                    })
                    .collect(),
            }
        })
        .collect())
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
    let mut v: Vec<KubeEvent> = items(json)?
        .iter()
        .map(|e| {
            let last = [
                "/lastTimestamp",
                "/eventTime",
                "/series/lastObservedTime",
                "/metadata/creationTimestamp",
            ]
            .iter()
            .map(|p| s(e, p))
            .find(|t| !t.is_empty())
            .unwrap_or_default();
            KubeEvent {
                kind: s(e, "/involvedObject/kind"),
                name: s(e, "/involvedObject/name"),
                reason: s(e, "/reason"),
                message: s(e, "/message").trim().to_string(),
                warning: s(e, "/type") == "Warning",
                count: n(e, "/count").max(1),
                last,
                field: s(e, "/involvedObject/fieldPath"),
            }
        })
        .collect();
    v.sort_by(|a, b| a.last.cmp(&b.last));
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
