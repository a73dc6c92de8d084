//! `helm upgrade --install`: with the Secrets' digests recorded, the release's
//! workloads restarted when one changed, and a failure explained (a server-side
//! apply conflict, a failed hook Job and what its pod printed).

use std::time::{Duration, Instant};

use super::{hint_for_step, Cx};
use crate::exec::Failure;
use crate::model::Error;
use crate::plan::steps::upgrade::conflict_manager;
use crate::plan::{Rotate, Upgrade};

pub fn run(cx: &Cx, s: &Upgrade) -> Result<(), Error> {
    // A Secret that changed since the deployed revision: recorded with this one,
    // and its pods replaced after the upgrade.
    let (cmd, restart) = match &s.rotate {
        None => (s.cmd.clone(), None),
        Some(r) => {
            let (now, key_created) = cx.secret_digests(&r.secrets)?;
            let before = cx.probe(&r.status)?;
            let why = Rotate::restart_reason(&before, &now, key_created);
            (s.cmd.fill(&[("SECRETS", &now)]), why.map(|why| (r, why)))
        }
    };
    if let Err(e) = cx.ex.run(cx.stage, &cmd, Some(cx.deadline)) {
        let interrupted = e.failure == Failure::Interrupted;
        let mut err = e.into_error(cx.stage, &cx.step.title);
        if interrupted {
            err.hint = Some(format!(
                "helm was given time to record release {} as failed rather than leave it pending; rerun to continue (a release left pending is reported first, or rolled back with on_pending = \"rollback\")",
                s.release
            ));
        } else if let Some(manager) = conflict_manager(&err.tail) {
            err.message.push_str(&format!(
                " — a field helm applies was changed by \"{manager}\" (server-side apply conflict)"
            ));
            err.hint = Some(format!(
                "something other than helm (\"{manager}\", e.g. `kubectl set`/`edit`) changed a field of the release: let helm take it back with force_conflicts = true (the default with apply = \"server-side\"), or undo the change"
            ));
        } else {
            hook_failures(cx, s, &mut err);
            err = err.or_hint(hint_for_step(cx.step));
        }
        return Err(err);
    }
    crate::run::seen::upgraded(cx.ex, &s.release);
    if let Some((r, why)) = restart {
        restart_workloads(cx, &s.release, r, &why)?;
    }
    Ok(())
}

/// `kubectl rollout restart` every Deployment, StatefulSet and DaemonSet of the
/// release: their pods read the changed Secret when they start.
fn restart_workloads(cx: &Cx, release: &str, r: &Rotate, why: &str) -> Result<(), Error> {
    let workloads = cx.discover(release, &r.discover)?;
    for w in &workloads {
        let cmd = r.restart.fill(&[("WORKLOAD", &w.id())]);
        cx.run(&cmd, &format!("restart {}", w.id()))?;
    }
    let ids: Vec<String> = workloads.iter().map(|w| w.id()).collect();
    cx.note(format!(
        "release {release}: {why}; restarted {}",
        if ids.is_empty() {
            "nothing (no Deployment, StatefulSet or DaemonSet)".to_string()
        } else {
            ids.join(", ")
        }
    ));
    Ok(())
}

/// helm failed: if a hook Job failed, say which and show what its pod printed.
fn hook_failures(cx: &Cx, s: &Upgrade, err: &mut Error) {
    let deadline = cx.deadline.max(Instant::now() + Duration::from_secs(20));
    let Ok(out) = cx.ex.run(cx.stage, &s.jobs, Some(deadline)) else {
        return;
    };
    let Some(job) = Upgrade::failed_hook(&out) else {
        return;
    };
    err.message.push_str(&format!(
        " — hook job/{} failed: {}",
        job.name,
        job.failed.clone().unwrap_or_default()
    ));
    let all = cx
        .ex
        .run(cx.stage, &s.pods, Some(deadline))
        .map(|o| Upgrade::hook_pods(&o))
        .unwrap_or_default();
    if let Some(p) = all.iter().rev().find(|p| job.selects(&p.labels)) {
        for c in &p.containers {
            if let Ok(lines) = cx.container_logs(&s.logs, &p.name, &c.name, "", deadline) {
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
