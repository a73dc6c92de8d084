//! rollout: track each release's workloads until they have rolled out, failing early
//! on causes that will not fix themselves (see `run/track.rs`).

use crate::model::Stage;
use crate::plan::{Action, Planner, Rollout, Track};
use crate::tools::kubectl;

impl Planner<'_> {
    /// Track `r`'s workloads until they have rolled out.
    pub(in crate::plan) fn rollout_action(&self, r: &crate::config::Release) -> Action {
        let ns = self.namespace(r);
        let ctx = self.context.clone();
        Action::Rollout(Rollout {
            track: Track {
                release: r.release_name().to_string(),
                namespace: ns.clone(),
                context: ctx.clone(),
                workloads: kubectl::get_rollout_objects(&ctx, &ns),
                pods: kubectl::get_all_pods(&ctx, &ns),
                events: kubectl::get_events(&ctx, &ns),
                serving: crate::tools::serving::get_serving(&ctx, &ns),
                logs: kubectl::logs(&ctx, &ns, "{POD}", "{CONTAINER}", false),
                logs_previous: kubectl::logs(&ctx, &ns, "{POD}", "{CONTAINER}", true),
                only: r.workloads.clone(),
                timeout: r.timeout.0,
                crash_limit: r.crash_limit,
            },
            rollback: self.rollback_for(r),
        })
    }

    pub(in crate::plan) fn rollout(&mut self) {
        let releases: Vec<_> = self.releases().collect();
        for r in releases {
            let rel = r.release_name().to_string();
            let action = self.rollout_action(r);
            self.push(
                Stage::Rollout,
                format!("rollout/{rel}"),
                format!("wait for the workloads of {rel} to roll out"),
                action,
                None,
            );
            // Releases roll out independently: tracked at the same time (--jobs).
            if let Some(s) = self.steps.last_mut() {
                s.group = Some(format!("rollout/{rel}"));
            }
        }
    }
}
