//! "The new version is serving": a rollout is done when every ready endpoint of each
//! of the release's Services is a pod of its Deployment's current ReplicaSet (the
//! pod-template hash), read from the EndpointSlices, not when the workloads' status
//! says the rollout completed (old pods can still be endpoints then). Smoke checks
//! start only after this judgement, so none of their requests reaches an old pod
//! through the Service.
//!
//! [`judge`] is pure; the runner (`run/steps/rollout.rs`) reads until it passes or
//! the release's timeout, and says what readiness cost ([`readiness_cost`]: the
//! probe's period, how long the new pods took to become Ready after their
//! containers started).

use std::time::{Duration, SystemTime};

use crate::model::{Error, Stage};
use crate::tools::serving::{self, Serving};

#[derive(Debug, PartialEq, Eq)]
pub enum Judged {
    /// Every ready endpoint is a current pod: how many there are.
    Serving { endpoints: usize },
    /// Ready endpoints that are old pods (`service → pod`), or a Service that has
    /// endpoints but none ready yet.
    Waiting(Vec<String>),
}

/// Decide on one read of the Services' endpoints.
pub fn judge(s: &Serving) -> Judged {
    let mut left = vec![];
    let mut ready = 0;
    for svc in &s.services {
        let mine: Vec<_> = s.endpoints.iter().filter(|e| &e.service == svc).collect();
        for e in mine.iter().filter(|e| e.ready) {
            let pod = e.pod.as_deref().unwrap_or_default();
            if s.is_old(pod) == Some(true) {
                let rs = s.replicaset_of(pod).map(|r| r.name.as_str()).unwrap_or("");
                let current = s
                    .replicaset_of(pod)
                    .and_then(|r| s.current(&r.deployment))
                    .map(|r| r.name.as_str())
                    .unwrap_or("");
                left.push(format!(
                    "service {svc} → old pod {pod} (replicaset {rs}, current {current})"
                ));
            } else {
                ready += 1;
            }
        }
        if !mine.is_empty() && !mine.iter().any(|e| e.ready) {
            left.push(format!(
                "service {svc}: {} endpoint(s), none ready yet",
                mine.len()
            ));
        }
    }
    if left.is_empty() {
        Judged::Serving { endpoints: ready }
    } else {
        Judged::Waiting(left)
    }
}

/// One read of the Services, EndpointSlices and ReplicaSets (`what` names it).
pub fn read(raw: &str, release: &str, stage: Stage, what: &str) -> Result<Serving, Error> {
    serving::parse_serving(raw, release).map_err(|e| {
        Error::new(stage, format!("{what}: {e}"))
            .hint("slipway fails closed on output it cannot read; run the command by hand")
    })
}

/// What readiness cost the current pods that became Ready during this round: the
/// readiness probe's period and how long after their containers started.
pub fn readiness_cost(s: &Serving, pods_raw: &str, since: SystemTime) -> Option<String> {
    let since = since - Duration::from_secs(2);
    let fresh: Vec<_> = serving::parse_readiness(pods_raw)
        .ok()?
        .into_iter()
        .filter(|r| s.is_old(&r.pod) == Some(false))
        .filter(|r| humantime::parse_rfc3339(&r.ready_at).is_ok_and(|t| t >= since))
        .collect();
    if fresh.is_empty() {
        return None;
    }
    let min = fresh.iter().map(|r| r.ready_after_secs).min()?;
    let max = fresh.iter().map(|r| r.ready_after_secs).max()?;
    let after = if min == max {
        format!("{max} s")
    } else {
        format!("{min}–{max} s")
    };
    let probe = match fresh.iter().find_map(|r| r.probe_period_secs) {
        Some(p) => format!("readiness probe period {p} s"),
        None => "no readiness probe".to_string(),
    };
    Some(format!(
        "{probe}: {} new pod(s) Ready {after} after their containers started",
        fresh.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::serving::{Endpoint, ReplicaSet};

    fn world(pods: &[(&str, bool)]) -> Serving {
        let rs = |name: &str, revision| ReplicaSet {
            name: name.into(),
            deployment: "web".into(),
            revision,
            template_hash: None,
        };
        Serving {
            services: vec!["web".into()],
            endpoints: pods
                .iter()
                .map(|(p, ready)| Endpoint {
                    service: "web".into(),
                    pod: Some(p.to_string()),
                    ready: *ready,
                })
                .collect(),
            replicasets: vec![rs("web-old", 1), rs("web-new", 2)],
        }
    }

    #[test]
    fn an_old_ready_endpoint_keeps_the_round_waiting() {
        let mixed = world(&[("web-old-a", true), ("web-new-b", true)]);
        let Judged::Waiting(left) = judge(&mixed) else {
            panic!("an old pod still serves")
        };
        assert_eq!(
            left,
            ["service web → old pod web-old-a (replicaset web-old, current web-new)"]
        );
        // Terminating (not ready) old endpoints do not count.
        let leaving = world(&[("web-old-a", false), ("web-new-b", true)]);
        assert_eq!(judge(&leaving), Judged::Serving { endpoints: 1 });
        // Endpoints, none ready: not serving yet.
        let none = world(&[("web-new-b", false)]);
        assert!(matches!(judge(&none), Judged::Waiting(_)));
    }

    #[test]
    fn readiness_cost_names_the_probe_period() {
        let s = world(&[("web-new-b", true)]);
        let pods = r#"{"items": [{"metadata": {"name": "web-new-b"},
          "spec": {"containers": [{"name": "web", "readinessProbe": {"periodSeconds": 2}}]},
          "status": {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:03Z"}],
                     "containerStatuses": [{"state": {"running": {"startedAt": "2026-01-01T00:00:01Z"}}}]}}]}"#;
        let at = humantime::parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
        assert_eq!(
            readiness_cost(&s, pods, at).as_deref(),
            Some(
                "readiness probe period 2 s: 1 new pod(s) Ready 2 s after their containers started"
            )
        );
        // Pods that were Ready before this round cost it nothing.
        let later = humantime::parse_rfc3339("2026-01-01T00:01:00Z").unwrap();
        assert_eq!(readiness_cost(&s, pods, later), None);
    }
}
