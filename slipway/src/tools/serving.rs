//! Who serves a release's Services: its Services, their EndpointSlices (which pods
//! are ready endpoints right now) and the ReplicaSets the pods belong to, read with
//! one `kubectl get`, and the readiness timings of pods. Pure parsers; output slipway
//! cannot read is an error, never "nothing there".

use serde_json::Value;

use super::k8s::items;
use super::{Cmd, PROBE};

/// The namespace's Services, EndpointSlices and ReplicaSets, in one process.
pub fn get_serving(context: &str, namespace: &str) -> Cmd {
    super::kubectl::at(context, Some(namespace))
        .args([
            "get",
            "services,endpointslices,replicasets",
            "--output",
            "json",
        ])
        .timeout(PROBE)
}

/// One endpoint of a Service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub service: String,
    /// The pod behind it (`targetRef`), when it is one.
    pub pod: Option<String>,
    /// Receives new connections (`conditions.ready`, unset meaning ready).
    pub ready: bool,
}

/// A Deployment's ReplicaSet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaSet {
    pub name: String,
    pub deployment: String,
    /// `deployment.kubernetes.io/revision`: the highest is the Deployment's current
    /// template (a rollback makes an old ReplicaSet the highest again).
    pub revision: u64,
    pub template_hash: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Serving {
    /// The release's Services (helm's annotation) that select pods.
    pub services: Vec<String>,
    pub endpoints: Vec<Endpoint>,
    pub replicasets: Vec<ReplicaSet>,
}

impl Serving {
    /// The ReplicaSet `pod` belongs to (a Deployment's pods are named after it).
    pub fn replicaset_of(&self, pod: &str) -> Option<&ReplicaSet> {
        self.replicasets
            .iter()
            .filter(|rs| {
                pod.strip_prefix(rs.name.as_str())
                    .is_some_and(|rest| rest.starts_with('-'))
            })
            .max_by_key(|rs| rs.name.len())
    }

    /// The Deployment's current ReplicaSet.
    pub fn current(&self, deployment: &str) -> Option<&ReplicaSet> {
        self.replicasets
            .iter()
            .filter(|rs| rs.deployment == deployment)
            .max_by_key(|rs| rs.revision)
    }

    /// Is the pod of an older template than its Deployment's current one? `None`
    /// when it is not a Deployment's pod (nothing to tell it by).
    pub fn is_old(&self, pod: &str) -> Option<bool> {
        let rs = self.replicaset_of(pod)?;
        let current = self.current(&rs.deployment)?;
        Some(current.name != rs.name)
    }
}

/// `kubectl get services,endpointslices,replicasets -o json` for `release`.
pub fn parse_serving(json: &str, release: &str) -> Result<Serving, String> {
    let mut s = Serving::default();
    let str_at = |v: &Value, p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
    let all: Vec<Value> = items(json)?;
    for i in &all {
        if i.get("kind").and_then(Value::as_str) == Some("Service")
            && str_at(i, "/metadata/annotations/meta.helm.sh~1release-name").as_deref()
                == Some(release)
            && i.pointer("/spec/selector")
                .and_then(Value::as_object)
                .is_some_and(|m| !m.is_empty())
        {
            s.services.extend(str_at(i, "/metadata/name"));
        }
    }
    for i in &all {
        match i.get("kind").and_then(Value::as_str) {
            Some("EndpointSlice") => {
                let Some(service) = str_at(i, "/metadata/labels/kubernetes.io~1service-name")
                else {
                    continue;
                };
                if !s.services.contains(&service) {
                    continue;
                }
                for e in i
                    .get("endpoints")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let pod = (str_at(e, "/targetRef/kind").as_deref() == Some("Pod"))
                        .then(|| str_at(e, "/targetRef/name"))
                        .flatten();
                    let ready = e
                        .pointer("/conditions/ready")
                        .and_then(Value::as_bool)
                        .unwrap_or(true);
                    s.endpoints.push(Endpoint {
                        service: service.clone(),
                        pod,
                        ready,
                    });
                }
            }
            Some("ReplicaSet") => {
                let Some(deployment) = i
                    .pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .find(|o| o.get("kind").and_then(Value::as_str) == Some("Deployment"))
                    .and_then(|o| str_at(o, "/name"))
                else {
                    continue;
                };
                s.replicasets.push(ReplicaSet {
                    name: str_at(i, "/metadata/name").unwrap_or_default(),
                    deployment,
                    revision: str_at(
                        i,
                        "/metadata/annotations/deployment.kubernetes.io~1revision",
                    )
                    .and_then(|r| r.parse().ok())
                    .unwrap_or(0),
                    template_hash: str_at(i, "/metadata/labels/pod-template-hash"),
                });
            }
            Some("Service") => {}
            Some(other) => return Err(format!("kubectl listed a {other}, not asked for")),
            None => return Err("kubectl listed an object without a kind".into()),
        }
    }
    Ok(s)
}

/// How long a pod took to become Ready after its containers started, and the
/// readiness probe period that paced it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Readiness {
    pub pod: String,
    /// Seconds from the last container start to the Ready condition (the API's
    /// timestamps have one-second resolution).
    pub ready_after_secs: i64,
    /// When it became Ready (RFC 3339).
    pub ready_at: String,
    /// The first readiness probe's `periodSeconds` (10 when unset); `None`: no probe.
    pub probe_period_secs: Option<i64>,
}

/// Ready pods' readiness timings, from `kubectl get pods -o json`.
pub fn parse_readiness(json: &str) -> Result<Vec<Readiness>, String> {
    let secs = |t: &str| humantime::parse_rfc3339(t).ok();
    let mut out = vec![];
    for p in items::<Value>(json)? {
        if p.pointer("/metadata/deletionTimestamp").is_some() {
            continue;
        }
        let Some(ready_at) = p
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|c| {
                c.get("type").and_then(Value::as_str) == Some("Ready")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
            .and_then(|c| c.get("lastTransitionTime").and_then(Value::as_str))
        else {
            continue;
        };
        let started = p
            .pointer("/status/containerStatuses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| {
                c.pointer("/state/running/startedAt")
                    .and_then(Value::as_str)
            })
            .filter_map(secs)
            .max();
        let (Some(started), Some(ready)) = (started, secs(ready_at)) else {
            continue;
        };
        let after = match ready.duration_since(started) {
            Ok(d) => d.as_secs() as i64,
            Err(e) => -(e.duration().as_secs() as i64),
        };
        let probe_period_secs = p
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find_map(|c| c.get("readinessProbe"))
            .map(|r| r.get("periodSeconds").and_then(Value::as_i64).unwrap_or(10));
        out.push(Readiness {
            pod: p
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            ready_after_secs: after,
            ready_at: ready_at.to_string(),
            probe_period_secs,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIXED: &str = r#"{"items": [
      {"kind": "Service", "metadata": {"name": "web", "annotations": {"meta.helm.sh/release-name": "web"}}, "spec": {"selector": {"app": "web"}}},
      {"kind": "Service", "metadata": {"name": "other", "annotations": {"meta.helm.sh/release-name": "other"}}, "spec": {"selector": {"app": "o"}}},
      {"kind": "EndpointSlice", "metadata": {"name": "web-x", "labels": {"kubernetes.io/service-name": "web"}},
       "endpoints": [
         {"addresses": ["10.0.0.1"], "conditions": {"ready": true}, "targetRef": {"kind": "Pod", "name": "web-7d9f-aaaaa"}},
         {"addresses": ["10.0.0.2"], "conditions": {"ready": false, "terminating": true}, "targetRef": {"kind": "Pod", "name": "web-7d9f-bbbbb"}},
         {"addresses": ["10.0.0.3"], "conditions": {}, "targetRef": {"kind": "Pod", "name": "web-5c44-ccccc"}}
       ]},
      {"kind": "EndpointSlice", "metadata": {"name": "other-x", "labels": {"kubernetes.io/service-name": "other"}}, "endpoints": []},
      {"kind": "ReplicaSet", "metadata": {"name": "web-7d9f", "labels": {"pod-template-hash": "7d9f"}, "annotations": {"deployment.kubernetes.io/revision": "1"}, "ownerReferences": [{"kind": "Deployment", "name": "web"}]}},
      {"kind": "ReplicaSet", "metadata": {"name": "web-5c44", "labels": {"pod-template-hash": "5c44"}, "annotations": {"deployment.kubernetes.io/revision": "2"}, "ownerReferences": [{"kind": "Deployment", "name": "web"}]}}
    ]}"#;

    #[test]
    fn endpoints_of_the_release_and_the_current_replicaset() {
        let s = parse_serving(MIXED, "web").unwrap();
        assert_eq!(s.services, ["web"]);
        assert_eq!(s.endpoints.len(), 3);
        assert!(s.endpoints[0].ready && !s.endpoints[1].ready && s.endpoints[2].ready);
        assert_eq!(s.current("web").unwrap().name, "web-5c44");
        assert_eq!(s.is_old("web-7d9f-aaaaa"), Some(true));
        assert_eq!(s.is_old("web-5c44-ccccc"), Some(false));
        assert_eq!(s.is_old("db-0"), None);
    }

    #[test]
    fn unreadable_output_is_an_error() {
        assert!(parse_serving("nope", "web").is_err());
        assert!(parse_serving(r#"{"items": [{"kind": "Pod"}]}"#, "web").is_err());
    }

    #[test]
    fn readiness_is_measured_from_the_last_container_start() {
        let pods = r#"{"items": [{"metadata": {"name": "web-5c44-ccccc", "labels": {"pod-template-hash": "5c44"}},
          "spec": {"containers": [{"name": "web", "readinessProbe": {"periodSeconds": 2}}]},
          "status": {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:03Z"}],
                     "containerStatuses": [{"state": {"running": {"startedAt": "2026-01-01T00:00:01Z"}}}]}},
          {"metadata": {"name": "web-5c44-ddddd"}, "spec": {"containers": [{"name": "web"}]},
           "status": {"conditions": [{"type": "Ready", "status": "False"}]}}]}"#;
        let r = parse_readiness(pods).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].ready_after_secs, 2);
        assert_eq!(r[0].probe_period_secs, Some(2));
    }
}
