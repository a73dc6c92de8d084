//! Rollout tracking: poll the release's workloads and pods once a second and decide
//! early. What will not fix itself fails within seconds, naming the rule that fired;
//! what can recover (a readiness probe still failing, a pull being retried, a pod being
//! replaced) is waited for, up to the release timeout. Lessons from werf's kubedog and
//! Shopify's krane: judge each failure by how long it has persisted, not by its first
//! sighting, and at the timeout say what was still not ready and why.
//!
//! [`judge`] is pure (a snapshot in, a verdict out); [`Runner::track`] polls, gathers
//! the evidence (the container's own logs — the previous instance's after a restart —
//! and the pod's events) and builds the error.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::Runner;
use crate::exec::Failure;
use crate::model::{Error, Event, Stage};
use crate::plan::Track;
use crate::tools::k8s::{self, KubeEvent, PodState, WorkloadState};

/// How long a state may persist before it counts as permanent.
const CONFIG_ERROR_GRACE: Duration = Duration::from_secs(5);
const UNSCHEDULABLE_GRACE: Duration = Duration::from_secs(15);
const PULL_GRACE: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_secs(1);

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
    for w in workloads {
        let id = w.id();
        let mine = pods_of(w, pods);
        let finding = |rule,
                       pod: Option<&PodState>,
                       container: Option<&str>,
                       cause: String,
                       hint: &str,
                       previous_logs| Finding {
            rule,
            workload: id.clone(),
            pod: pod.map(|p| p.name.clone()),
            container: container.map(String::from),
            cause,
            hint: hint.to_string(),
            previous_logs,
            current_logs: true,
        };
        if let Some(why) = &w.failed {
            // A failed Job: its failed pod's output says why.
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
            return Verdict::Failed(finding(
                rule,
                pod,
                container,
                format!("{id} failed: {why}"),
                hint,
                false,
            ));
        }
        for p in &mine {
            if let Some(msg) = &p.unschedulable {
                let t = seen.since(&p.name, "unschedulable", now);
                if t >= UNSCHEDULABLE_GRACE {
                    let mut cause = format!(
                        "pod {} cannot be scheduled for {}s: {msg}",
                        p.name,
                        t.as_secs()
                    );
                    for claim in &p.claims {
                        if let Some(e) = last_event(events, "PersistentVolumeClaim", claim) {
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
                    return Verdict::Failed(finding(
                        "unschedulable",
                        Some(p),
                        None,
                        cause,
                        hint,
                        false,
                    ));
                }
            }
            for c in &p.containers {
                let restarted = c.restarts > 0;
                if let Some((reason, message)) = &c.waiting {
                    let fatal_now =
                        matches!(reason.as_str(), "ErrImageNeverPull" | "InvalidImageName");
                    let config = matches!(
                        reason.as_str(),
                        "CreateContainerConfigError" | "CreateContainerError"
                    );
                    let pull = matches!(reason.as_str(), "ErrImagePull" | "ImagePullBackOff");
                    let t = seen.since(&p.name, reason_key(reason), now);
                    let (rule, hint) = if fatal_now {
                        (
                            "image-missing",
                            crate::tools::kubectl::hint_for(reason).unwrap_or(""),
                        )
                    } else if config && t >= CONFIG_ERROR_GRACE {
                        (
                            "config-error",
                            crate::tools::kubectl::hint_for("CreateContainerConfigError")
                                .unwrap_or(""),
                        )
                    } else if pull && t >= PULL_GRACE {
                        (
                            "image-pull",
                            crate::tools::kubectl::hint_for(reason).unwrap_or(""),
                        )
                    } else {
                        ("", "")
                    };
                    if !rule.is_empty() {
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
                        return Verdict::Failed(finding(
                            rule,
                            Some(p),
                            Some(&c.name),
                            cause,
                            hint,
                            false,
                        ));
                    }
                }
                // Times it exited: each restart, plus the exit it is now backing off
                // from (a container waiting in CrashLoopBackOff has not restarted yet).
                let backing_off = c
                    .waiting
                    .as_ref()
                    .is_some_and(|(r, _)| r == "CrashLoopBackOff");
                let crashes = c.restarts + i64::from(backing_off);
                if crashes >= i64::from(crash_limit) && !c.ready {
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
                    let mut f =
                        finding("crash-loop", Some(p), Some(&c.name), cause, hint, restarted);
                    f.current_logs = !(restarted && backing_off);
                    return Verdict::Failed(f);
                }
                // Running, never ready, and every probe gets an answer that waiting
                // will not change: the probe aims where the app does not serve.
                let key = format!("{}/{}", p.name, c.name);
                let dead = match (&c.readiness, c.running && !c.ready && !c.init) {
                    (Some(probe), true) => {
                        dead_probe(events, &p.name, &c.name).map(|(answer, e)| (probe, answer, e))
                    }
                    _ => None,
                };
                let Some((probe, answer, e)) = dead else {
                    seen.forget(&key, "dead-probe");
                    continue;
                };
                // The event's count says how many probes in a row got this answer,
                // when tracking began after they started.
                let repeated =
                    Duration::from_secs(((e.count - 1).max(0) * probe.period_secs.max(1)) as u64);
                let t = seen.since(&key, "dead-probe", now).max(repeated);
                if t >= dead_probe_grace(probe, answer) {
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
                    return Verdict::Failed(finding(
                        "readiness-probe-unserved",
                        Some(p),
                        Some(&c.name),
                        cause,
                        hint,
                        false,
                    ));
                }
            }
        }
        if !w.done {
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
                    match last_event(events, "Pod", &p.name) {
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
            waiting.push(line);
        }
    }
    if waiting.is_empty() {
        Verdict::Done
    } else {
        Verdict::Waiting(waiting)
    }
}

/// How long the rollout's last read may stand in for health's own.
const REUSE_WITHIN: Duration = Duration::from_secs(5);

/// The namespace's pods as the rollout read them last, kept for the health stage:
/// read again only when older than [`REUSE_WITHIN`]. (Health lists the workloads
/// itself: its listing is not the rollout's, which has Jobs and autoscalers.)
pub struct LastRead {
    pods: String,
    at: Instant,
    /// How old it was when health took it.
    age: Duration,
}

impl LastRead {
    pub(super) fn pods(&self, stage: Stage) -> Result<Vec<k8s::PodState>, Error> {
        k8s::parse_pods(&self.pods).map_err(|e| {
            Error::new(
                stage,
                format!("list the namespace's pods (the rollout's last read): {e}"),
            )
            .hint("slipway fails closed on output it cannot read; run the command by hand")
        })
    }

    pub(super) fn said(&self) -> String {
        format!(
            "pods from the rollout's read of {:.1}s before (not read again)",
            self.age.as_secs_f64()
        )
    }
}

fn reason_key(reason: &str) -> &'static str {
    match reason {
        "CreateContainerConfigError" => "config",
        "CreateContainerError" => "create",
        "ErrImagePull" | "ImagePullBackOff" => "pull",
        _ => "other",
    }
}

impl Runner<'_> {
    pub(super) fn keep_last_read(&self, release: &str, pods: &str) {
        self.last_read
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                release.to_string(),
                LastRead {
                    pods: pods.to_string(),
                    at: Instant::now(),
                    age: Duration::ZERO,
                },
            );
    }

    /// The rollout's last read of `release`, once, while it is fresh.
    pub(super) fn reuse_last_read(&self, release: &str) -> Option<LastRead> {
        self.last_read
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(release)
            .map(|r| LastRead {
                age: r.at.elapsed(),
                ..r
            })
            .filter(|r| r.age < REUSE_WITHIN)
    }

    pub(super) fn poll(
        &self,
        stage: Stage,
        cmd: &crate::model::Cmd,
        what: &str,
        deadline: Instant,
    ) -> Result<String, Error> {
        let out = self.ex.run(stage, cmd, Some(deadline)).map_err(|e| {
            let interrupted = e.failure == Failure::Interrupted;
            let err = e.into_error(stage, what);
            if interrupted {
                err
            } else {
                err.or_hint(Some(
                    "the cluster did not answer a read: is it up, and does the kube context work (`kubectl get nodes`)?".into(),
                ))
            }
        })?;
        Ok(out.stdout)
    }

    /// Track one release until its workloads have rolled out.
    pub(super) fn track(&self, stage: Stage, t: &Track, deadline: Instant) -> Result<(), Error> {
        let started = Instant::now();
        let end = deadline.min(started + t.timeout);
        let tracked_at = std::time::SystemTime::now();
        let mut seen = Seen::default();
        let mut announced = false;
        let mut first = true;
        let mut last_pods = None;
        loop {
            let what = format!("list the workloads of {}", t.release);
            // The workloads and the namespace's pods are read at the same time; the
            // first time also the Services' endpoints (a release that is already
            // rolled out is then judged serving without another read).
            let (raw, pods_raw, endpoints) = std::thread::scope(|scope| {
                let pods = scope.spawn(|| {
                    self.poll(
                        stage,
                        &t.pods,
                        &format!("list the pods of {}", t.release),
                        deadline,
                    )
                });
                let endpoints = first.then(|| {
                    scope.spawn(|| {
                        self.poll(
                            stage,
                            &t.serving,
                            &format!("read the endpoints of the Services of {}", t.release),
                            deadline,
                        )
                    })
                });
                let raw = self.poll(stage, &t.workloads, &what, deadline);
                let pods = pods
                    .join()
                    .unwrap_or_else(|_| Err(Error::new(stage, "reading the pods panicked")));
                let endpoints = endpoints.map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(Error::new(stage, "reading the endpoints panicked"))
                    })
                });
                (raw, pods, endpoints)
            });
            let first_read = first;
            first = false;
            let raw = raw?;
            let mut workloads = k8s::parse_workloads(&raw, &t.release).map_err(|e| {
                Error::new(stage, format!("{what}: {e}"))
                    .hint("slipway fails closed on output it cannot read; run the command by hand")
            })?;
            if let Some(only) = &t.only {
                for id in only {
                    if !workloads.iter().any(|w| w.id() == id.to_ascii_lowercase()) {
                        return Err(Error::new(
                            stage,
                            format!(
                                "workload {id} of release {} was not found in namespace {}",
                                t.release, t.namespace
                            ),
                        )
                        .hint(format!(
                            "found: {}",
                            workloads
                                .iter()
                                .map(WorkloadState::id)
                                .collect::<Vec<_>>()
                                .join(", ")
                        )));
                    }
                }
                workloads.retain(|w| only.iter().any(|id| id.to_ascii_lowercase() == w.id()));
            }
            if workloads.is_empty() {
                self.note(
                    stage,
                    format!(
                        "release {} has no Deployment, StatefulSet, DaemonSet or Job to wait for",
                        t.release
                    ),
                );
                return Ok(());
            }
            let pods_now = workloads
                .iter()
                .fold((0, 0), |(r, d), w| (r + w.ready, d + w.desired));
            if last_pods != Some(pods_now) {
                last_pods = Some(pods_now);
                super::seen::pods(self.ex, &t.release, pods_now);
            }
            if !announced {
                announced = true;
                self.ex.events.emit(Event::Progress {
                    stage,
                    message: format!(
                        "tracking {}",
                        workloads
                            .iter()
                            .map(WorkloadState::id)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
            let all_done = workloads.iter().all(|w| w.done);
            let pods_raw = pods_raw?;
            let pods = k8s::parse_pods(&pods_raw)
                .map_err(|e| Error::new(stage, format!("list the pods of {}: {e}", t.release)))?;
            // Events only when something is not there yet (they are what explains it).
            let events_raw = if all_done {
                String::new()
            } else {
                self.poll(stage, &t.events, "list the namespace's events", deadline)
                    .unwrap_or_default()
            };
            let events = k8s::parse_events(&events_raw).unwrap_or_default();
            let keep_raw = || {
                for (name, text) in [("pods.json", &pods_raw), ("events.json", &events_raw)] {
                    self.ex.events.emit(Event::Evidence {
                        name: format!("{}-{name}", t.release),
                        text: self.ex.redact(text),
                    });
                }
            };
            let now = Instant::now();
            match judge(&workloads, &pods, &events, t.crash_limit, &mut seen, now) {
                Verdict::Done => {
                    for w in &workloads {
                        self.note(
                            stage,
                            format!("{} rolled out ({}/{} ready)", w.id(), w.ready, w.desired),
                        );
                    }
                    self.keep_last_read(&t.release, &pods_raw);
                    let endpoints = endpoints.filter(|_| first_read);
                    return self.serving(stage, t, endpoints, &pods_raw, tracked_at, end, deadline);
                }
                Verdict::Failed(f) => {
                    let e = self.failure(stage, t, &f, &pods, &events, started, deadline);
                    keep_raw();
                    return Err(e);
                }
                Verdict::Waiting(left) => {
                    if now + POLL >= end {
                        let mut e = Error::new(
                            stage,
                            format!(
                                "release {} did not roll out within {}: {}",
                                t.release,
                                humantime::format_duration(Duration::from_secs(
                                    started.elapsed().as_secs()
                                )),
                                left.first().cloned().unwrap_or_default()
                            ),
                        );
                        e.timed_out = true;
                        if left.len() > 1 {
                            e.tail = left;
                        }
                        keep_raw();
                        e.hint = Some(format!(
                            "nothing failed for good, it just did not become ready: a readiness probe that keeps failing is the usual cause (its last event is above); see `kubectl --context {} -n {} describe pods`",
                            t.context, t.namespace
                        ));
                        return Err(e);
                    }
                    if !self.ex.sleep(POLL) {
                        return Err(Error::interrupted(
                            Some(stage),
                            "interrupted while waiting for the rollout",
                        ));
                    }
                }
            }
        }
    }

    /// One container's output through a `kubectl logs` template (`{POD}`,
    /// `{CONTAINER}`): kept masked as evidence (`logs-POD-CONTAINER{suffix}.txt`), its
    /// last 20 lines returned.
    fn container_logs(
        &self,
        stage: Stage,
        tmpl: &crate::model::Cmd,
        pod: &str,
        container: &str,
        suffix: &str,
        deadline: Instant,
    ) -> Result<Vec<String>, crate::exec::ExecError> {
        let cmd = tmpl.fill(&[("POD", pod), ("CONTAINER", container)]);
        let out = self.ex.run(stage, &cmd, Some(deadline))?;
        let text = self.ex.redact(&out.stdout);
        let lines = crate::model::last_lines(&text, 20);
        self.ex.events.emit(Event::Evidence {
            name: format!("logs-{pod}-{container}{suffix}.txt"),
            text,
        });
        Ok(lines)
    }

    /// helm failed: if a hook Job failed, say which and show what its pod printed.
    pub(super) fn hook_failures(
        &self,
        stage: Stage,
        jobs: &crate::model::Cmd,
        pods: &crate::model::Cmd,
        logs: &crate::model::Cmd,
        err: &mut Error,
        deadline: Instant,
    ) {
        let deadline = deadline.max(Instant::now() + Duration::from_secs(20));
        let Ok(out) = self.ex.run(stage, jobs, Some(deadline)) else {
            return;
        };
        let Ok(failed) = k8s::parse_failed_hooks(&out.stdout) else {
            return;
        };
        let Some(job) = failed.first() else { return };
        err.message.push_str(&format!(
            " — hook job/{} failed: {}",
            job.name,
            job.failed.clone().unwrap_or_default()
        ));
        let all = self
            .ex
            .run(stage, pods, Some(deadline))
            .ok()
            .and_then(|o| k8s::parse_pods(&o.stdout).ok())
            .unwrap_or_default();
        if let Some(p) = all.iter().rev().find(|p| job.selects(&p.labels)) {
            for c in &p.containers {
                if let Ok(lines) = self.container_logs(stage, logs, &p.name, &c.name, "", deadline)
                {
                    err.tail
                        .push(format!("logs of hook pod {}/{}:", p.name, c.name));
                    err.tail.extend(lines.iter().map(|l| format!("  | {l}")));
                }
            }
        }
        err.hint = Some(format!(
            "the chart's {} hook Job failed before helm changed anything else: its output is above; fix it and rerun",
            job.name
        ));
    }

    /// The error for a finding, with the container's output and the pod's events.
    #[allow(clippy::too_many_arguments)]
    fn failure(
        &self,
        stage: Stage,
        t: &Track,
        f: &Finding,
        pods: &[PodState],
        events: &[KubeEvent],
        started: Instant,
        deadline: Instant,
    ) -> Error {
        let pod = f
            .pod
            .as_deref()
            .and_then(|n| pods.iter().find(|p| p.name == n));
        let age = pod
            .and_then(|p| age_secs(&p.created))
            .map(|s| format!(", {s}s after the pod was created"))
            .unwrap_or_default();
        let mut e = Error::new(
            stage,
            format!(
                "{} cannot roll out: {} [rule {}, detected after {:.0}s of waiting{age}]",
                f.workload,
                f.cause,
                f.rule,
                started.elapsed().as_secs_f64()
            ),
        );
        let flags = format!("--context {} -n {}", t.context, t.namespace);
        let mut more = vec![];
        // A container that never started has no output to show.
        let started_once = !matches!(f.rule, "image-missing" | "image-pull" | "config-error");
        if let (Some(p), Some(c), true) = (&f.pod, &f.container, started_once) {
            let deadline = deadline.max(Instant::now() + Duration::from_secs(20));
            let mut want = vec![];
            if f.previous_logs {
                want.push((true, &t.logs_previous));
            }
            if f.current_logs {
                want.push((false, &t.logs));
            }
            for (previous, tmpl) in want {
                let label = match (previous, f.rule) {
                    (true, "crash-loop") if !f.current_logs => "the instance that exited",
                    (true, _) => "previous instance",
                    (false, "crash-loop") if !f.previous_logs => "the instance that exited",
                    (false, _) => "current instance",
                };
                let suffix = if previous { "-previous" } else { "" };
                match self.container_logs(stage, tmpl, p, c, suffix, deadline) {
                    // What kubectl prints (exit 0) when the node no longer has them.
                    Ok(lines)
                        if lines.len() == 1
                            && lines[0].starts_with("unable to retrieve container logs") =>
                    {
                        e.tail.push(format!(
                            "logs of {p}/{c} ({label}): not available ({})",
                            lines[0]
                        ));
                    }
                    Ok(lines) => {
                        e.tail.push(format!(
                            "logs of {p}/{c} ({label}, last {} lines):",
                            lines.len()
                        ));
                        if lines.is_empty() {
                            e.tail.push("  (no output)".into());
                        }
                        e.tail.extend(lines.iter().map(|l| format!("  | {l}")));
                    }
                    Err(err) if err.failure == Failure::Interrupted => break,
                    Err(err) => e
                        .tail
                        .push(format!("logs of {p}/{c} ({label}): not available ({err})")),
                }
            }
            more.push(format!(
                "kubectl {flags} logs {p} -c {c}{}",
                if f.previous_logs { " --previous" } else { "" }
            ));
        }
        if let Some(p) = &f.pod {
            let mine: Vec<&KubeEvent> = events
                .iter()
                .filter(|ev| ev.name == *p || pod.is_some_and(|pd| pd.claims.contains(&ev.name)))
                .collect();
            if !mine.is_empty() {
                e.tail.push(format!("events of {p}:"));
                for ev in mine.iter().rev().take(6).rev() {
                    e.tail.push(format!(
                        "  {} {}{}: {}",
                        if ev.warning { "Warning" } else { "Normal" },
                        ev.reason,
                        if ev.count > 1 {
                            format!(" (x{})", ev.count)
                        } else {
                            String::new()
                        },
                        self.ex.redact(&ev.message)
                    ));
                }
            }
            more.push(format!("kubectl {flags} describe pod {p}"));
        }
        more.push(format!(
            "kubectl {flags} get events --sort-by=.lastTimestamp"
        ));
        e.hint = Some(format!("{}; see more: {}", f.hint, more.join("  |  ")));
        e
    }
}

/// Seconds since an RFC 3339 UTC timestamp (`2026-01-01T00:00:00Z`).
fn age_secs(ts: &str) -> Option<u64> {
    let t = humantime::parse_rfc3339(ts).ok()?;
    std::time::SystemTime::now()
        .duration_since(t)
        .ok()
        .map(|d| d.as_secs())
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
    #[test]
    fn a_readiness_probe_that_can_never_pass_fails_within_its_grace() {
        let t0 = Instant::now();
        let probe = k8s::ProbeSpec {
            scheme: "HTTP".into(),
            path: "/healthzz".into(),
            port: "8080".into(),
            initial_delay_secs: 0,
            period_secs: 2,
        };
        let running = || {
            pod(|p| {
                p.phase = "Running".into();
                p.containers[0].running = true;
                p.containers[0].readiness = Some(probe.clone());
            })
        };
        let unhealthy = |message: &str, count: i64| KubeEvent {
            kind: "Pod".into(),
            name: "web-1".into(),
            reason: "Unhealthy".into(),
            message: message.into(),
            warning: true,
            count,
            last: "2026-01-01T00:00:09Z".into(),
            field: "spec.containers{web}".into(),
        };
        let not_found = [unhealthy(
            "Readiness probe failed: HTTP probe failed with statuscode: 404",
            1,
        )];
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
