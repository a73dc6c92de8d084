//! The capacity preflight: each release's saved requests, the nodes' allocatable,
//! and the plan's verdict on them.

use std::path::Path;

use super::Cx;
use crate::model::{Error, Event};
use crate::plan::steps::capacity::{workloads, Capacity, Fit, Requested, Workload};

pub fn run(cx: &Cx, s: &Capacity) -> Result<(), Error> {
    let mut per_release: Requested = vec![];
    let mut unknown: Vec<&str> = vec![];
    for (release, file) in &s.requests {
        let read = std::fs::read_to_string(cx.shared.root.join(file))
            .ok()
            .and_then(|t| serde_json::from_str::<Vec<Workload>>(&t).ok());
        match read {
            Some(w) => per_release.push((
                release.clone(),
                w.iter().map(|w| w.cpu_m * w.pods).sum(),
                w.iter().map(|w| w.memory * w.pods).sum(),
            )),
            None => unknown.push(release),
        }
    }
    if !unknown.is_empty() {
        cx.note(format!(
            "capacity: no rendered requests for {} (rendered by an older slipway; `--force` renders again)",
            unknown.join(", ")
        ));
    }
    let out = cx
        .ex
        .probe(cx.stage, &s.nodes, Some(cx.deadline))
        .map_err(|e| e.into_error(cx.stage, "capacity"))?;
    let allocatable = match s.nodes_read(cx.stage, &out) {
        Ok(a) => a,
        Err(Ok(note)) => {
            cx.note(note);
            return Ok(());
        }
        Err(Err(e)) => return Err(e),
    };
    match s.verdict(cx.stage, &per_release, allocatable)? {
        // What fits is progress (plain logs and the spinner say it), not a note the
        // summary repeats on every run.
        Fit::Fits(summary) => cx.ex.events.emit(Event::Progress {
            stage: cx.stage,
            message: summary,
        }),
        Fit::Warning(w) => cx.note(w),
    }
    Ok(())
}

/// Keep what the release just rendered requests, for this run's and later runs'
/// checks (a render that is skipped leaves the last one in place). Best effort.
pub fn save(root: &Path, stamp: &Path, manifests: &str) {
    let file = root.join(crate::plan::requests_file(stamp));
    if let Some(dir) = file.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match workloads(manifests) {
        Ok(w) => {
            let _ = std::fs::write(file, serde_json::to_string(&w).unwrap_or_default());
        }
        Err(_) => {
            let _ = std::fs::remove_file(file);
        }
    }
}
