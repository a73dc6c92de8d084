//! The rollout's judge: one snapshot of the release's workloads, pods and events in,
//! a verdict out. What will not fix itself fails within seconds, naming the rule that
//! fired; what can recover (a readiness probe still failing, a pull being retried, a
//! pod being replaced) is waited for, up to the release timeout. Lessons from werf's
//! kubedog and Shopify's krane: judge each failure by how long it has persisted, not
//! by its first sighting, and at the timeout say what was still not ready and why.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::tools::k8s::{self, KubeEvent, PodState, WorkloadState};

/// How long a state may persist before it counts as permanent.
const CONFIG_ERROR_GRACE: Duration = Duration::from_secs(5);
const UNSCHEDULABLE_GRACE: Duration = Duration::from_secs(15);
const PULL_GRACE: Duration = Duration::from_secs(30);

/// A cause that will not fix itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The rule that fired (stable names, in README's troubleshooting).
    pub rule: &'static str,
    pub workload: String,
    pub pod: Option<String>,
    pub container: Option<String>,
    /// One line: what is wrong.
    pub cause: String,
    pub hint: String,
    /// Read the previous instance's logs (the container restarted).
    pub previous_logs: bool,
    /// Also read the current instance's (not when it is only waiting to restart: then
    /// `--previous` is the instance that exited, even if it restarts meanwhile).
    pub current_logs: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Done,
    /// Still going: what is not ready yet, and why as far as can be told.
    Waiting(Vec<String>),
    Failed(Finding),
}

/// When each (pod, state) was first seen, to judge persistence.
#[derive(Default)]
pub struct Seen(HashMap<(String, &'static str), Instant>);

impl Seen {
    fn since(&mut self, pod: &str, what: &'static str, now: Instant) -> Duration {
        now.saturating_duration_since(*self.0.entry((pod.to_string(), what)).or_insert(now))
    }

    /// The state is gone: if it comes back, it is new.
    fn forget(&mut self, pod: &str, what: &'static str) {
        self.0.remove(&(pod.to_string(), what));
    }
}

/// A readiness probe answer that waiting will not change, on a running container:
/// the app does not serve the probe's path (404) or does not listen on its port
/// (connection refused).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DeadProbe {
    NotFound,
    Refused,
}

/// How long a readiness probe may keep getting a [`DeadProbe`] answer before the
/// rollout fails, counted from the first such answer seen (the kubelet probes only
/// after initialDelaySeconds, so that delay is already behind).
///
/// A 404 comes from a server that is up and routes requests: it does not serve the
/// path, and warming up will not change that. Three probe periods (the kubelet's
/// default failureThreshold) and at least 10 s, so one early answer from a router
/// that registers its routes late is not enough; at most 30 s.
/// A refused connection is normal while an app starts (it listens only once it has
/// initialised), so it gets the whole 30 s: an app that needs longer to listen should
/// have a startupProbe, which holds the readiness probe back until it passes.
fn dead_probe_grace(probe: &k8s::ProbeSpec, answer: DeadProbe) -> Duration {
    const MAX: Duration = Duration::from_secs(30);
    match answer {
        DeadProbe::NotFound => Duration::from_secs(3 * probe.period_secs.max(1) as u64)
            .clamp(Duration::from_secs(10), MAX),
        DeadProbe::Refused => MAX,
    }
}

/// The last readiness probe failure the kubelet reported for this container, when it
/// is an answer that will not change by waiting; 503, timeouts and the like can.
fn dead_probe<'a>(
    events: &'a [KubeEvent],
    pod: &str,
    container: &str,
) -> Option<(DeadProbe, &'a KubeEvent)> {
    let e = events.iter().rev().find(|e| {
        e.kind == "Pod"
            && e.name == pod
            && e.reason == "Unhealthy"
            && e.message.starts_with("Readiness probe failed")
            && e.container().is_none_or(|c| c == container)
    })?;
    let answer = if e.message.contains("statuscode: 404") {
        DeadProbe::NotFound
    } else if e.message.contains("connection refused") {
        DeadProbe::Refused
    } else {
        return None;
    };
    Some((answer, e))
}

fn pods_of<'a>(w: &WorkloadState, pods: &'a [PodState]) -> Vec<&'a PodState> {
    pods.iter()
        .filter(|p| !p.terminating && w.selects(&p.labels))
        .collect()
}

/// The last event message about `name` of `kind`, warnings first.
fn last_event<'a>(events: &'a [KubeEvent], kind: &str, name: &str) -> Option<&'a KubeEvent> {
    let of: Vec<&KubeEvent> = events
        .iter()
        .filter(|e| e.kind == kind && e.name == name)
        .collect();
    of.iter()
        .rev()
        .find(|e| e.warning)
        .or_else(|| of.last())
        .copied()
}

/// Decide on one snapshot.
pub fn judge(
    workloads: &[WorkloadState],
    pods: &[PodState],
    events: &[KubeEvent],
    crash_limit: u32,
    seen: &mut Seen,
    now: Instant,
) -> Verdict {
    let mut waiting = vec![];
    let snap = Snap {
        events,
        crash_limit,
        now,
    };
    for w in workloads {
        match snap.workload(w, pods, seen) {
            Err(f) => return Verdict::Failed(*f),
            Ok(Some(line)) => waiting.push(line),
            Ok(None) => {}
        }
    }
    if waiting.is_empty() {
        Verdict::Done
    } else {
        Verdict::Waiting(waiting)
    }
}

/// What one snapshot is judged with, besides the workloads and pods.
struct Snap<'a> {
    events: &'a [KubeEvent],
    crash_limit: u32,
    now: Instant,
}

/// A finding about a workload (the current instance's logs wanted, unless said).
fn finding(
    workload: &str,
    rule: &'static str,
    pod: Option<&PodState>,
    container: Option<&str>,
    cause: String,
    hint: &str,
    previous_logs: bool,
) -> Box<Finding> {
    Box::new(Finding {
        rule,
        workload: workload.to_string(),
        pod: pod.map(|p| p.name.clone()),
        container: container.map(String::from),
        cause,
        hint: hint.to_string(),
        previous_logs,
        current_logs: true,
    })
}

impl Snap<'_> {
    /// One workload: a finding, or what it still waits for (`None`: done).
    fn workload(
        &self,
        w: &WorkloadState,
        pods: &[PodState],
        seen: &mut Seen,
    ) -> Result<Option<String>, Box<Finding>> {
        let id = w.id();
        let mine = pods_of(w, pods);
        if let Some(why) = &w.failed {
            return Err(failed(w, &id, why, &mine));
        }
        for p in &mine {
            self.unschedulable(&id, p, seen)?;
            for c in &p.containers {
                self.container(&id, p, c, seen)?;
            }
        }
        Ok((!w.done).then(|| self.waiting_line(w, &id, &mine)))
    }

    fn unschedulable(&self, id: &str, p: &PodState, seen: &mut Seen) -> Result<(), Box<Finding>> {
        let Some(msg) = &p.unschedulable else {
            return Ok(());
        };
        let t = seen.since(&p.name, "unschedulable", self.now);
        if t < UNSCHEDULABLE_GRACE {
            return Ok(());
        }
        let mut cause = format!(
            "pod {} cannot be scheduled for {}s: {msg}",
            p.name,
            t.as_secs()
        );
        for claim in &p.claims {
            if let Some(e) = last_event(self.events, "PersistentVolumeClaim", claim) {
                cause.push_str(&format!("; PVC {claim}: {} {}", e.reason, e.message));
            }
        }
        let hint = if msg.contains("PersistentVolumeClaim") {
            "a volume claim is not bound: check its storageClassName exists and has a provisioner (`kubectl get storageclass`), or disable persistence in the chart's values"
        } else if msg.contains("Insufficient") {
            "the nodes lack the requested CPU or memory: lower the chart's resources.requests"
        } else {
            "no node matches the pod's nodeSelector, affinity or tolerations: check them against `kubectl get nodes --show-labels`"
        };
        Err(finding(
            id,
            "unschedulable",
            Some(p),
            None,
            cause,
            hint,
            false,
        ))
    }

    fn container(
        &self,
        id: &str,
        p: &PodState,
        c: &k8s::ContainerState,
        seen: &mut Seen,
    ) -> Result<(), Box<Finding>> {
        self.waiting(id, p, c, seen)?;
        self.crashing(id, p, c)?;
        self.dead_probe(id, p, c, seen)
    }

    /// Waiting for a reason that will not change: the image is not there, the
    /// container's config is wrong, the pull keeps failing.
    fn waiting(
        &self,
        id: &str,
        p: &PodState,
        c: &k8s::ContainerState,
        seen: &mut Seen,
    ) -> Result<(), Box<Finding>> {
        let Some((reason, message)) = &c.waiting else {
            return Ok(());
        };
        let fatal_now = matches!(reason.as_str(), "ErrImageNeverPull" | "InvalidImageName");
        let config = matches!(
            reason.as_str(),
            "CreateContainerConfigError" | "CreateContainerError"
        );
        let pull = matches!(reason.as_str(), "ErrImagePull" | "ImagePullBackOff");
        let t = seen.since(&p.name, reason_key(reason), self.now);
        let (rule, hint) = if fatal_now {
            (
                "image-missing",
                crate::tools::kubectl::hint_for(reason).unwrap_or(""),
            )
        } else if config && t >= CONFIG_ERROR_GRACE {
            (
                "config-error",
                crate::tools::kubectl::hint_for("CreateContainerConfigError").unwrap_or(""),
            )
        } else if pull && t >= PULL_GRACE {
            (
                "image-pull",
                crate::tools::kubectl::hint_for(reason).unwrap_or(""),
            )
        } else {
            return Ok(());
        };
        let cause = format!(
            "container {} of pod {}: {reason}{}",
            c.name,
            p.name,
            if message.is_empty() {
                String::new()
            } else {
                format!(": {message}")
            }
        );
        Err(finding(
            id,
            rule,
            Some(p),
            Some(&c.name),
            cause,
            hint,
            false,
        ))
    }

    /// Exited as often as the crash limit, and not ready.
    fn crashing(
        &self,
        id: &str,
        p: &PodState,
        c: &k8s::ContainerState,
    ) -> Result<(), Box<Finding>> {
        let restarted = c.restarts > 0;
        // Times it exited: each restart, plus the exit it is now backing off
        // from (a container waiting in CrashLoopBackOff has not restarted yet).
        let backing_off = c
            .waiting
            .as_ref()
            .is_some_and(|(r, _)| r == "CrashLoopBackOff");
        let crashes = c.restarts + i64::from(backing_off);
        if crashes < i64::from(self.crash_limit) || c.ready {
            return Ok(());
        }
        let last = c
            .last_exit
            .as_ref()
            .map(|(r, code)| format!(", last exit: {r} (code {code})"))
            .unwrap_or_default();
        let cause = format!(
            "container {} of pod {} crashed {} time{}{last}",
            c.name,
            p.name,
            crashes,
            if crashes == 1 { "" } else { "s" }
        );
        let hint = if c.last_exit.as_ref().is_some_and(|(r, _)| r == "OOMKilled") {
            crate::tools::kubectl::hint_for("OOMKilled").unwrap_or("")
        } else {
            "the container keeps exiting: its own output is below"
        };
        // The instance that exited is `--previous` once the container
        // has restarted: waiting to restart again, that is all there is
        // (and stays so if it starts meanwhile); running again, the
        // current instance's output follows. Never restarted, it is the
        // current one.
        let mut f = finding(
            id,
            "crash-loop",
            Some(p),
            Some(&c.name),
            cause,
            hint,
            restarted,
        );
        f.current_logs = !(restarted && backing_off);
        Err(f)
    }

    /// Running, never ready, and every probe gets an answer that waiting
    /// will not change: the probe aims where the app does not serve.
    fn dead_probe(
        &self,
        id: &str,
        p: &PodState,
        c: &k8s::ContainerState,
        seen: &mut Seen,
    ) -> Result<(), Box<Finding>> {
        let key = format!("{}/{}", p.name, c.name);
        let dead = match (&c.readiness, c.running && !c.ready && !c.init) {
            (Some(probe), true) => {
                dead_probe(self.events, &p.name, &c.name).map(|(answer, e)| (probe, answer, e))
            }
            _ => None,
        };
        let Some((probe, answer, e)) = dead else {
            seen.forget(&key, "dead-probe");
            return Ok(());
        };
        // The event's count says how many probes in a row got this answer,
        // when tracking began after they started.
        let repeated =
            Duration::from_secs(((e.count - 1).max(0) * probe.period_secs.max(1)) as u64);
        let t = seen.since(&key, "dead-probe", self.now).max(repeated);
        if t < dead_probe_grace(probe, answer) {
            return Ok(());
        }
        let (what, hint) = match answer {
            DeadProbe::NotFound => (
                format!("path {} is not served (404)", if probe.path.is_empty() { "/" } else { &probe.path }),
                "point readinessProbe at a path the app serves (in the chart or its values), or serve that path; a probe answered 503 or timing out would be waited for, a 404 from a running container will not change",
            ),
            DeadProbe::Refused => (
                format!("nothing listens on port {}", probe.port),
                "point readinessProbe at the port the app listens on (in the chart or its values); an app that needs more than 30 s before it listens should have a startupProbe",
            ),
        };
        let cause = format!(
            "container {} of pod {} is running, but its readiness probe can never pass: {what}, every probe for {}s; probe: {probe}; last event: {} (x{})",
            c.name,
            p.name,
            t.as_secs(),
            e.message,
            e.count
        );
        Err(finding(
            id,
            "readiness-probe-unserved",
            Some(p),
            Some(&c.name),
            cause,
            hint,
            false,
        ))
    }

    /// What a workload that is not done yet still waits for, and why as far as its
    /// pods and their last events tell.
    fn waiting_line(&self, w: &WorkloadState, id: &str, mine: &[&PodState]) -> String {
        let mut line = format!("{id}: {}", w.progress);
        let stuck: Vec<String> = mine
            .iter()
            .filter(|p| !p.ready && p.phase != "Succeeded")
            .map(|p| {
                let state = p
                    .containers
                    .iter()
                    .find_map(|c| c.waiting.as_ref().map(|(r, _)| r.clone()))
                    .unwrap_or_else(|| format!("{}, not Ready", p.phase));
                match last_event(self.events, "Pod", &p.name) {
                    Some(e) => format!(
                        "pod {}: {state}; last event: {} {}",
                        p.name, e.reason, e.message
                    ),
                    None => format!("pod {}: {state}", p.name),
                }
            })
            .collect();
        if !stuck.is_empty() {
            line.push_str(&format!(" ({})", stuck.join("; ")));
        }
        line
    }
}

/// A failed Job (its failed pod's output says why), or a Deployment past its
/// progress deadline.
fn failed(w: &WorkloadState, id: &str, why: &str, mine: &[&PodState]) -> Box<Finding> {
    let pod = mine
        .iter()
        .rev()
        .find(|p| p.phase == "Failed")
        .or(mine.last())
        .copied();
    let container = pod.and_then(|p| {
        p.containers
            .iter()
            .find(|c| !c.init)
            .map(|c| c.name.as_str())
    });
    let (rule, hint) = if w.kind == "job" {
        (
            "job-failed",
            "the Job's pods exited with an error: read their output below",
        )
    } else {
        (
            "progress-deadline",
            "the Deployment stopped progressing: look at its pods and events below",
        )
    };
    finding(
        id,
        rule,
        pod,
        container,
        format!("{id} failed: {why}"),
        hint,
        false,
    )
}

fn reason_key(reason: &str) -> &'static str {
    match reason {
        "CreateContainerConfigError" => "config",
        "CreateContainerError" => "create",
        "ErrImagePull" | "ImagePullBackOff" => "pull",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn labels(app: &str) -> BTreeMap<String, String> {
        [("app".to_string(), app.to_string())].into_iter().collect()
    }

    fn deploy(done: bool) -> WorkloadState {
        WorkloadState {
            kind: "deployment".into(),
            name: "web".into(),
            selector: labels("web"),
            ready: 0,
            desired: 1,
            progress: "0/1 updated, 0 available, 0 old".into(),
            done,
            failed: None,
        }
    }

    fn pod(f: impl FnOnce(&mut PodState)) -> PodState {
        let mut p = PodState {
            name: "web-1".into(),
            labels: labels("web"),
            phase: "Pending".into(),
            ready: false,
            created: String::new(),
            terminating: false,
            synced: None,
            unschedulable: None,
            containers: vec![k8s::ContainerState {
                name: "web".into(),
                init: false,
                ready: false,
                restarts: 0,
                waiting: None,
                last_exit: None,
                terminated: None,
                running: false,
                readiness: None,
            }],
            claims: vec![],
            ..PodState::default()
        };
        f(&mut p);
        p
    }

    fn verdict(p: PodState, events: &[KubeEvent], seen: &mut Seen, now: Instant) -> Verdict {
        judge(&[deploy(false)], &[p], events, 2, seen, now)
    }

    fn rule(v: &Verdict) -> &'static str {
        match v {
            Verdict::Failed(f) => f.rule,
            _ => "",
        }
    }

    #[test]
    fn unrecoverable_causes_fail_at_once_or_after_their_grace() {
        let t0 = Instant::now();
        let mut seen = Seen::default();
        let never = pod(|p| {
            p.containers[0].waiting = Some(("ErrImageNeverPull".into(), "not present".into()))
        });
        assert_eq!(rule(&verdict(never, &[], &mut seen, t0)), "image-missing");

        let cfg = || {
            pod(|p| {
                p.containers[0].waiting = Some((
                    "CreateContainerConfigError".into(),
                    "secret \"db\" not found".into(),
                ))
            })
        };
        assert!(
            matches!(verdict(cfg(), &[], &mut seen, t0), Verdict::Waiting(_)),
            "a config error gets a moment"
        );
        let v = verdict(cfg(), &[], &mut seen, t0 + Duration::from_secs(6));
        assert_eq!(rule(&v), "config-error");
        let Verdict::Failed(f) = v else {
            unreachable!()
        };
        assert!(f.cause.contains("secret \"db\" not found"), "{}", f.cause);

        let pvc_event = KubeEvent {
            kind: "PersistentVolumeClaim".into(),
            name: "data".into(),
            reason: "ProvisioningFailed".into(),
            message: "storageclass.storage.k8s.io \"fast\" not found".into(),
            warning: true,
            count: 3,
            last: "2026-01-01T00:00:01Z".into(),
            field: String::new(),
        };
        let pending = || {
            pod(|p| {
                p.unschedulable = Some(
                    "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims."
                        .into(),
                );
                p.claims = vec!["data".into()];
            })
        };
        let mut seen = Seen::default();
        assert!(matches!(
            verdict(pending(), std::slice::from_ref(&pvc_event), &mut seen, t0),
            Verdict::Waiting(_)
        ));
        let v = verdict(pending(), &[pvc_event], &mut seen, t0 + UNSCHEDULABLE_GRACE);
        let Verdict::Failed(f) = v else {
            panic!("{v:?}")
        };
        assert_eq!(f.rule, "unschedulable");
        assert!(
            f.cause.contains("\"fast\" not found") && f.hint.contains("storageClassName"),
            "{f:?}"
        );
    }

    #[test]
    fn a_crash_loop_fails_naming_the_instance_that_exited() {
        let t0 = Instant::now();
        // Backing off after its second exit (one restart so far): crashed twice; the
        // instance that exited is what `kubectl logs` shows.
        let crash = pod(|p| {
            p.phase = "Running".into();
            p.containers[0].restarts = 1;
            p.containers[0].waiting = Some(("CrashLoopBackOff".into(), "back-off 10s".into()));
            p.containers[0].last_exit = Some(("Error".into(), 3));
        });
        let v = verdict(crash, &[], &mut Seen::default(), t0);
        let Verdict::Failed(f) = v else {
            panic!("{v:?}")
        };
        assert_eq!(
            (f.rule, f.previous_logs, f.current_logs),
            ("crash-loop", true, false),
            "waiting to restart: only `--previous`, the instance that exited"
        );
        // Running again, not ready, after two restarts: the crash is `--previous`.
        let again = pod(|p| {
            p.phase = "Running".into();
            p.containers[0].restarts = 2;
            p.containers[0].last_exit = Some(("Error".into(), 3));
        });
        let Verdict::Failed(g) = verdict(again, &[], &mut Seen::default(), t0) else {
            panic!("running again after 2 restarts is a crash loop")
        };
        assert!(
            g.previous_logs && g.current_logs && g.cause.contains("crashed 2 times"),
            "{g:?}"
        );
        // One exit is not a loop.
        let once = pod(|p| {
            p.phase = "Running".into();
            p.containers[0].waiting = Some(("CrashLoopBackOff".into(), "back-off 10s".into()));
        });
        assert!(matches!(
            verdict(once, &[], &mut Seen::default(), t0),
            Verdict::Waiting(_)
        ));
        assert!(
            f.cause
                .contains("crashed 2 times, last exit: Error (code 3)"),
            "{}",
            f.cause
        );
    }

    #[test]
    fn a_failed_job_fails_with_its_pod() {
        let t0 = Instant::now();
        let mut job = deploy(false);
        job.kind = "job".into();
        job.failed =
            Some("BackoffLimitExceeded: Job has reached the specified backoff limit".into());
        let v = judge(
            &[job],
            &[pod(|p| p.phase = "Failed".into())],
            &[],
            2,
            &mut Seen::default(),
            t0,
        );
        let Verdict::Failed(f) = v else {
            panic!("{v:?}")
        };
        assert_eq!(
            (f.rule, f.pod.as_deref(), f.container.as_deref()),
            ("job-failed", Some("web-1"), Some("web"))
        );
    }

    #[test]
    fn what_can_recover_is_waited_for_and_explained() {
        let t0 = Instant::now();
        let mut seen = Seen::default();
        // Not ready yet, readiness failing: wait, and say why.
        let probe = KubeEvent {
            kind: "Pod".into(),
            name: "web-1".into(),
            reason: "Unhealthy".into(),
            message: "Readiness probe failed: HTTP probe failed with statuscode: 503".into(),
            warning: true,
            count: 7,
            last: "2026-01-01T00:00:09Z".into(),
            field: String::new(),
        };
        let slow = || {
            pod(|p| {
                p.phase = "Running".into();
                p.containers[0].restarts = 1; // below the crash limit
            })
        };
        let v = verdict(slow(), &[probe], &mut seen, t0 + Duration::from_secs(100));
        let Verdict::Waiting(left) = v else {
            panic!("{v:?}")
        };
        assert!(
            left[0].contains("deployment/web: 0/1 updated") && left[0].contains("statuscode: 503"),
            "{left:?}"
        );
        // A pull error is retried for a while before it counts.
        let pulling = || {
            pod(|p| {
                p.containers[0].waiting =
                    Some(("ImagePullBackOff".into(), "Back-off pulling image".into()))
            })
        };
        assert!(matches!(
            verdict(pulling(), &[], &mut seen, t0),
            Verdict::Waiting(_)
        ));
        assert_eq!(
            rule(&verdict(pulling(), &[], &mut seen, t0 + PULL_GRACE)),
            "image-pull"
        );
        // Terminating pods and other workloads' pods are not judged.
        let old = pod(|p| {
            p.terminating = true;
            p.containers[0].waiting = Some(("ErrImageNeverPull".into(), String::new()));
        });
        assert!(matches!(
            verdict(old, &[], &mut Seen::default(), t0),
            Verdict::Waiting(_)
        ));
        let other = pod(|p| {
            p.labels = labels("db");
            p.containers[0].waiting = Some(("ErrImageNeverPull".into(), String::new()));
        });
        assert!(matches!(
            verdict(other, &[], &mut Seen::default(), t0),
            Verdict::Waiting(_)
        ));
        // Done is done.
        assert_eq!(
            judge(&[deploy(true)], &[], &[], 2, &mut Seen::default(), t0),
            Verdict::Done
        );
    }

    /// A readiness probe answered 404 (or refused) on every attempt while the
    /// container runs fails within its grace, naming the probe; 503 is waited for.
    /// A readiness probe the app does not serve, on a running, unready container.
    fn readiness() -> k8s::ProbeSpec {
        k8s::ProbeSpec {
            scheme: "HTTP".into(),
            path: "/healthzz".into(),
            port: "8080".into(),
            initial_delay_secs: 0,
            period_secs: 2,
        }
    }

    fn running() -> PodState {
        pod(|p| {
            p.phase = "Running".into();
            p.containers[0].running = true;
            p.containers[0].readiness = Some(readiness());
        })
    }

    /// The kubelet's event for a failed readiness probe of container web.
    fn unhealthy(message: &str, count: i64) -> KubeEvent {
        KubeEvent {
            kind: "Pod".into(),
            name: "web-1".into(),
            reason: "Unhealthy".into(),
            message: message.into(),
            warning: true,
            count,
            last: "2026-01-01T00:00:09Z".into(),
            field: "spec.containers{web}".into(),
        }
    }

    fn not_found() -> [KubeEvent; 1] {
        [unhealthy(
            "Readiness probe failed: HTTP probe failed with statuscode: 404",
            1,
        )]
    }

    #[test]
    fn a_readiness_probe_that_can_never_pass_fails_within_its_grace() {
        let t0 = Instant::now();
        let not_found = not_found();
        let mut seen = Seen::default();
        assert!(matches!(
            verdict(running(), &not_found, &mut seen, t0),
            Verdict::Waiting(_)
        ));
        // 3 periods of 2 s is less than the 10 s floor.
        assert!(matches!(
            verdict(
                running(),
                &not_found,
                &mut seen,
                t0 + Duration::from_secs(9)
            ),
            Verdict::Waiting(_)
        ));
        let v = verdict(
            running(),
            &not_found,
            &mut seen,
            t0 + Duration::from_secs(10),
        );
        let Verdict::Failed(f) = v else {
            panic!("{v:?}")
        };
        assert_eq!(f.rule, "readiness-probe-unserved");
        assert!(
            f.cause.contains("/healthzz")
                && f.cause.contains("port 8080")
                && f.cause.contains("404")
                && f.cause.contains("HTTP GET"),
            "{}",
            f.cause
        );
        assert_eq!(f.container.as_deref(), Some("web"));
        // Tracking began late: the event's count shows how long it has been so.
        let many = [unhealthy(
            "Readiness probe failed: HTTP probe failed with statuscode: 404",
            6,
        )];
        assert_eq!(
            rule(&verdict(running(), &many, &mut Seen::default(), t0)),
            "readiness-probe-unserved"
        );
    }

    #[test]
    fn a_probe_answer_that_can_change_is_waited_for() {
        let t0 = Instant::now();
        // 503 can recover: waited for, however long.
        let unavailable = [unhealthy(
            "Readiness probe failed: HTTP probe failed with statuscode: 503",
            50,
        )];
        let mut seen = Seen::default();
        for s in [0, 30, 100] {
            assert!(matches!(
                verdict(
                    running(),
                    &unavailable,
                    &mut seen,
                    t0 + Duration::from_secs(s)
                ),
                Verdict::Waiting(_)
            ));
        }
        // So can a probe that times out while the app starts.
        let slow = [unhealthy(
            "Readiness probe failed: Get \"http://10.244.0.5:8080/healthzz\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
            50,
        )];
        assert!(matches!(
            verdict(
                running(),
                &slow,
                &mut Seen::default(),
                t0 + Duration::from_secs(100)
            ),
            Verdict::Waiting(_)
        ));

        // Refused is normal while an app starts: 30 s before it counts.
        let refused = [unhealthy(
            "Readiness probe failed: Get \"http://10.244.0.5:8080/healthzz\": dial tcp 10.244.0.5:8080: connect: connection refused",
            1,
        )];
        let mut seen = Seen::default();
        assert!(matches!(
            verdict(running(), &refused, &mut seen, t0),
            Verdict::Waiting(_)
        ));
        assert!(matches!(
            verdict(running(), &refused, &mut seen, t0 + Duration::from_secs(29)),
            Verdict::Waiting(_)
        ));
        let v = verdict(running(), &refused, &mut seen, t0 + Duration::from_secs(30));
        let Verdict::Failed(f) = v else {
            panic!("{v:?}")
        };
        assert!(
            f.cause.contains("nothing listens on port 8080"),
            "{}",
            f.cause
        );
    }

    #[test]
    fn only_this_containers_unchanged_answer_counts() {
        let t0 = Instant::now();
        let not_found = not_found();
        let probe = readiness();
        let many = [unhealthy(
            "Readiness probe failed: HTTP probe failed with statuscode: 404",
            6,
        )];
        let unavailable = [unhealthy(
            "Readiness probe failed: HTTP probe failed with statuscode: 503",
            50,
        )];
        // An answer that changed in between starts the grace again.
        let mut seen = Seen::default();
        verdict(running(), &not_found, &mut seen, t0);
        verdict(
            running(),
            &unavailable,
            &mut seen,
            t0 + Duration::from_secs(5),
        );
        assert!(matches!(
            verdict(
                running(),
                &not_found,
                &mut seen,
                t0 + Duration::from_secs(12)
            ),
            Verdict::Waiting(_)
        ));
        // Another container's probe, or a container not running, is not this one's.
        let mut other = not_found.clone();
        other[0].field = "spec.containers{sidecar}".into();
        assert!(matches!(
            verdict(
                running(),
                &other,
                &mut Seen::default(),
                t0 + Duration::from_secs(60)
            ),
            Verdict::Waiting(_)
        ));
        let waiting = pod(|p| {
            p.containers[0].readiness = Some(probe.clone());
            p.containers[0].waiting = Some(("ContainerCreating".into(), String::new()));
        });
        assert!(matches!(
            verdict(
                waiting,
                &many,
                &mut Seen::default(),
                t0 + Duration::from_secs(60)
            ),
            Verdict::Waiting(_)
        ));
    }
}
