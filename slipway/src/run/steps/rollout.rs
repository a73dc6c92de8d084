//! Rollout tracking: poll the release's workloads and pods once a second and let
//! the plan's judge decide on each snapshot (`plan::steps::rollout::judge`); gather
//! the evidence (the container's own logs — the previous instance's after a restart
//! — and the pod's events) and build the error. On failure, the rollback.

use std::time::{Duration, Instant, SystemTime};

use super::Cx;
use crate::exec::Failure;
use crate::model::{Cmd, Error, Event};
use crate::plan::steps::rollout::judge::{judge, Finding, Seen, Verdict};
use crate::plan::steps::rollout::serving::{self, Judged};
use crate::plan::{Rollout, Track};
use crate::tools::k8s::{KubeEvent, PodState, WorkloadState};

const POLL: Duration = Duration::from_secs(1);
/// How often the endpoints are read again while old pods still serve.
const SERVING_POLL: Duration = Duration::from_millis(250);

pub fn run(cx: &Cx, s: &Rollout) -> Result<(), Error> {
    let r = track(cx, &s.track);
    cx.rollback_on_err(r, s.rollback.as_ref())
}

/// One read of the cluster while tracking (shared with the other releases'
/// trackers reading the same namespace at the same time).
fn poll(cx: &Cx, cmd: &Cmd, what: &str) -> Result<String, Error> {
    let out = cx.ex.read_shared(cx.stage, cmd, Some(cx.deadline)).map_err(|e| {
        let interrupted = e.failure == Failure::Interrupted;
        let err = e.into_error(cx.stage, what);
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

/// One snapshot: the workloads to wait for, the namespace's pods and (when
/// something is not there yet: they are what explains it) its events, with the raw
/// pods and events kept for the evidence.
struct Snapshot {
    workloads: Vec<WorkloadState>,
    pods: Vec<PodState>,
    events: Vec<KubeEvent>,
    pods_raw: String,
    events_raw: String,
    /// The first read only: the Services' endpoints, read along with it.
    endpoints: Option<Result<String, Error>>,
}

/// Read a snapshot; `None` when the release has nothing to wait for. The workloads
/// and the namespace's pods are read at the same time; the first time also the
/// Services' endpoints (a release that is already rolled out is then judged serving
/// without another read).
fn snapshot(cx: &Cx, t: &Track, round: &mut Round) -> Result<Option<Snapshot>, Error> {
    let stage = cx.stage;
    let what = format!("list the workloads of {}", t.release);
    let first = round.first;
    round.first = false;
    let (raw, pods_raw, endpoints) = std::thread::scope(|scope| {
        let pods = scope.spawn(|| poll(cx, &t.pods, &format!("list the pods of {}", t.release)));
        let endpoints = first.then(|| {
            scope.spawn(|| {
                let what = format!("read the endpoints of the Services of {}", t.release);
                poll(cx, &t.serving, &what)
            })
        });
        let raw = poll(cx, &t.workloads, &what);
        let pods = pods
            .join()
            .unwrap_or_else(|_| Err(Error::new(stage, "reading the pods panicked")));
        let endpoints = endpoints.map(|h| {
            h.join()
                .unwrap_or_else(|_| Err(Error::new(stage, "reading the endpoints panicked")))
        });
        (raw, pods, endpoints)
    });
    let workloads = t.workloads(stage, &raw?)?;
    if workloads.is_empty() {
        cx.note(format!(
            "release {} has no Deployment, StatefulSet, DaemonSet or Job to wait for",
            t.release
        ));
        return Ok(None);
    }
    round.saw(cx, t, &workloads);
    let all_done = workloads.iter().all(|w| w.done);
    let pods_raw = pods_raw?;
    let pods = t.pods(stage, &pods_raw)?;
    let events_raw = if all_done {
        String::new()
    } else {
        poll(cx, &t.events, "list the namespace's events").unwrap_or_default()
    };
    let events = Track::events(&events_raw);
    Ok(Some(Snapshot {
        workloads,
        pods,
        events,
        pods_raw,
        events_raw,
        endpoints,
    }))
}

/// What tracking one release remembers between reads.
struct Round {
    first: bool,
    announced: bool,
    last_pods: Option<(i64, i64)>,
}

impl Round {
    /// Say what is tracked (once), and the ready and desired pods when they change.
    fn saw(&mut self, cx: &Cx, t: &Track, workloads: &[WorkloadState]) {
        let pods_now = workloads
            .iter()
            .fold((0, 0), |(r, d), w| (r + w.ready, d + w.desired));
        if self.last_pods != Some(pods_now) {
            self.last_pods = Some(pods_now);
            crate::run::seen::pods(cx.ex, &t.release, pods_now);
        }
        if !self.announced {
            self.announced = true;
            let ids: Vec<String> = workloads.iter().map(WorkloadState::id).collect();
            cx.ex.events.emit(Event::Progress {
                stage: cx.stage,
                message: format!("tracking {}", ids.join(", ")),
            });
        }
    }
}

/// Track one release until its workloads have rolled out and its Services send
/// requests only to the new pods.
fn track(cx: &Cx, t: &Track) -> Result<(), Error> {
    let started = Instant::now();
    let end = cx.deadline.min(started + t.timeout);
    let tracked_at = SystemTime::now();
    let mut seen = Seen::default();
    let mut round = Round {
        first: true,
        announced: false,
        last_pods: None,
    };
    loop {
        let Some(snap) = snapshot(cx, t, &mut round)? else {
            return Ok(());
        };
        let keep_raw = || {
            for (name, text) in [
                ("pods.json", &snap.pods_raw),
                ("events.json", &snap.events_raw),
            ] {
                cx.ex.events.emit(Event::Evidence {
                    name: format!("{}-{name}", t.release),
                    text: cx.ex.redact(text),
                });
            }
        };
        let now = Instant::now();
        let (workloads, pods, events) = (&snap.workloads, &snap.pods, &snap.events);
        match judge(workloads, pods, events, t.crash_limit, &mut seen, now) {
            Verdict::Done => {
                for w in workloads {
                    cx.note(format!(
                        "{} rolled out ({}/{} ready)",
                        w.id(),
                        w.ready,
                        w.desired
                    ));
                }
                cx.keep_last_read(&t.release, &snap.pods_raw);
                let first = snap.endpoints;
                return serving(cx, t, first, &snap.pods_raw, tracked_at, end);
            }
            Verdict::Failed(f) => {
                let e = failure(cx, t, &f, pods, events, started);
                keep_raw();
                return Err(e);
            }
            Verdict::Waiting(left) if now + POLL >= end => {
                let e = timed_out(t, cx, left, started);
                keep_raw();
                return Err(e);
            }
            Verdict::Waiting(_) => {
                if !cx.ex.sleep(POLL) {
                    return Err(Error::interrupted(
                        Some(cx.stage),
                        "interrupted while waiting for the rollout",
                    ));
                }
            }
        }
    }
}

/// Wait until the release's Services send requests only to its current pods.
/// `first`: a read made along with the rollout's first one; `pods_raw`: the
/// rollout's last read of the pods, for what readiness cost.
fn serving(
    cx: &Cx,
    t: &Track,
    first: Option<Result<String, Error>>,
    pods_raw: &str,
    tracked_at: SystemTime,
    end: Instant,
) -> Result<(), Error> {
    let stage = cx.stage;
    let started = Instant::now();
    let what = format!("read the endpoints of the Services of {}", t.release);
    let mut first = first;
    let mut reads = 0u32;
    let mut took = Duration::ZERO;
    let (s, endpoints) = loop {
        let read_at = Instant::now();
        let raw = match first.take() {
            Some(r) => r?,
            None => poll(cx, &t.serving, &what)?,
        };
        reads += 1;
        took = took.max(read_at.elapsed());
        let s = serving::read(&raw, &t.release, stage, &what)?;
        match serving::judge(&s) {
            Judged::Serving { endpoints } => break (s, endpoints),
            // Not another read that the deadline would cut short: what this one
            // saw is the answer.
            Judged::Waiting(left) if Instant::now() + SERVING_POLL + took >= end => {
                return Err(still_old(cx, t, left, started));
            }
            Judged::Waiting(_) => {
                if !cx.ex.sleep(SERVING_POLL) {
                    return Err(Error::interrupted(
                        Some(stage),
                        "interrupted while waiting for the new pods to serve",
                    ));
                }
            }
        }
    };
    if !s.services.is_empty() {
        let waited = if reads > 1 {
            format!(
                " (old pods left the endpoints {:.1}s after the rollout completed)",
                started.elapsed().as_secs_f64()
            )
        } else {
            String::new()
        };
        cx.note(format!(
            "{} serving: all {endpoints} ready endpoint(s) of service {} are pods of the new revision{waited}",
            t.release,
            s.services.join(", ")
        ));
    }
    if let Some(line) = serving::readiness_cost(&s, pods_raw, tracked_at) {
        cx.note(format!("{}: {line}", t.release));
    }
    Ok(())
}

/// Old pods still serve when the time is up.
fn still_old(cx: &Cx, t: &Track, left: Vec<String>, started: Instant) -> Error {
    let mut e = Error::new(
        cx.stage,
        format!(
            "release {} rolled out, but its Services still send requests to pods of the old revision after {:.1}s: {}",
            t.release,
            started.elapsed().as_secs_f64(),
            left.first().cloned().unwrap_or_default()
        ),
    );
    e.timed_out = true;
    e.tail = left;
    e.hint = Some(format!(
        "an old pod stays a ready endpoint while it runs and passes its readiness probe: look at why it is not terminating (`kubectl --context {} -n {} get pods,endpointslices`), or at a second Deployment selected by the same Service",
        t.context, t.namespace
    ));
    e
}

/// Nothing failed for good, but the rollout did not finish in time.
fn timed_out(t: &Track, cx: &Cx, left: Vec<String>, started: Instant) -> Error {
    let mut e = Error::new(
        cx.stage,
        format!(
            "release {} did not roll out within {}: {}",
            t.release,
            humantime::format_duration(Duration::from_secs(started.elapsed().as_secs())),
            left.first().cloned().unwrap_or_default()
        ),
    );
    e.timed_out = true;
    if left.len() > 1 {
        e.tail = left;
    }
    e.hint = Some(format!(
        "nothing failed for good, it just did not become ready: a readiness probe that keeps failing is the usual cause (its last event is above); see `kubectl --context {} -n {} describe pods`",
        t.context, t.namespace
    ));
    e
}

/// The error for a finding, with the container's output and the pod's events.
fn failure(
    cx: &Cx,
    t: &Track,
    f: &Finding,
    pods: &[PodState],
    events: &[KubeEvent],
    started: Instant,
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
        cx.stage,
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
        logs(cx, t, f, (p, c), &mut e);
        more.push(format!(
            "kubectl {flags} logs {p} -c {c}{}",
            if f.previous_logs { " --previous" } else { "" }
        ));
    }
    if let Some(p) = &f.pod {
        pod_events(cx, p, pod, events, &mut e);
        more.push(format!("kubectl {flags} describe pod {p}"));
    }
    more.push(format!(
        "kubectl {flags} get events --sort-by=.lastTimestamp"
    ));
    e.hint = Some(format!("{}; see more: {}", f.hint, more.join("  |  ")));
    e
}

/// The failing container's output (the instance that exited, the current one) into
/// the error's tail.
fn logs(cx: &Cx, t: &Track, f: &Finding, (p, c): (&str, &str), e: &mut Error) {
    let deadline = cx.deadline.max(Instant::now() + Duration::from_secs(20));
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
        match cx.container_logs(tmpl, p, c, suffix, deadline) {
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
}

/// The pod's (and its volume claims') last events into the error's tail.
fn pod_events(cx: &Cx, p: &str, pod: Option<&PodState>, events: &[KubeEvent], e: &mut Error) {
    let mine: Vec<&KubeEvent> = events
        .iter()
        .filter(|ev| ev.name == *p || pod.is_some_and(|pd| pd.claims.contains(&ev.name)))
        .collect();
    if mine.is_empty() {
        return;
    }
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
            cx.ex.redact(&ev.message)
        ));
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
