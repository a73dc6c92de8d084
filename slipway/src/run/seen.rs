//! What the run read of each release, as events ([`Event::ReleaseSeen`]): a failed
//! or interrupted run says from them the state it left, without reading again.

use crate::exec::Executor;
use crate::model::{Event, ReleaseSeen};

/// helm's revision and status of `release`, as the release gate read them.
pub(super) fn status(ex: &Executor, release: &str, revision: Option<u32>, status: &str) {
    ex.events.emit(Event::ReleaseSeen(ReleaseSeen {
        release: release.into(),
        revision,
        status: Some(status.into()),
        ..ReleaseSeen::default()
    }));
}

/// `helm upgrade --install` of `release` finished: helm recorded a new revision.
pub(super) fn upgraded(ex: &Executor, release: &str) {
    ex.events.emit(Event::ReleaseSeen(ReleaseSeen {
        release: release.into(),
        upgraded: true,
        ..ReleaseSeen::default()
    }));
}

/// Pods ready and wanted over `release`'s workloads, as the rollout tracker read them.
pub(super) fn pods(ex: &Executor, release: &str, pods: (i64, i64)) {
    ex.events.emit(Event::ReleaseSeen(ReleaseSeen {
        release: release.into(),
        pods: Some(pods),
        ..ReleaseSeen::default()
    }));
}
