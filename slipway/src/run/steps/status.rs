//! `status`: one release's state, workloads and pods, as an event.

use std::time::Duration;

use super::Cx;
use crate::model::{Error, Event, PodStatus, ReleaseStatus, WorkloadStatus};
use crate::plan::Status;

fn age(created: &str) -> String {
    humantime::parse_rfc3339(created)
        .ok()
        .and_then(|t| std::time::SystemTime::now().duration_since(t).ok())
        .map(|d| {
            humantime::format_duration(Duration::from_secs(d.as_secs()))
                .to_string()
                .split(' ')
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "?".into())
}

pub fn run(cx: &Cx, s: &Status) -> Result<(), Error> {
    let release = &s.release;
    let st = cx
        .ex
        .probe(cx.stage, &s.status, Some(cx.deadline))
        .map_err(|e| e.into_error(cx.stage, &format!("status of {release}")))?;
    let (state, revision) = s.state(cx.stage, &st, &cx.redact())?;
    let mut workloads = vec![];
    if revision.is_some() {
        for w in cx.discover(release, &s.discover)? {
            let pods = cx.pods(&s.pods, &w)?;
            workloads.push(WorkloadStatus {
                workload: w.id(),
                ready: w.ready,
                desired: w.desired,
                pods: pods
                    .into_iter()
                    .map(|p| PodStatus {
                        age: age(&p.created),
                        name: p.name,
                        ready: p.ready,
                        phase: p.phase,
                        restarts: p.restarts,
                        images: p.images,
                        synced: p.synced,
                    })
                    .collect(),
            });
        }
    }
    cx.ex.events.emit(Event::ReleaseStatus(ReleaseStatus {
        context: cx.shared.context.clone(),
        release: release.clone(),
        namespace: s.namespace.clone(),
        status: state,
        revision,
        workloads,
    }));
    Ok(())
}
