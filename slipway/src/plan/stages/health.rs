//! health: every pod of each release Ready and not crash-looping. The release's
//! workloads and the namespace's pods are read at the same time (two commands, not
//! one per workload); pods are matched to workloads by selector in process.

use crate::model::Stage;
use crate::plan::{Action, Health, Planner};
use crate::tools::kubectl;

impl Planner<'_> {
    pub(in crate::plan) fn health(&mut self) {
        let releases: Vec<_> = self.releases().collect();
        for r in releases {
            let ns = self.namespace(r);
            let rel = r.release_name().to_string();
            self.push(
                Stage::Health,
                format!("health/{rel}"),
                format!("check every pod of {rel} is Ready and not restarting"),
                Action::Health(Health {
                    release: rel.clone(),
                    namespace: ns.clone(),
                    context: self.context.clone(),
                    discover: kubectl::get_workloads(&self.context, &ns),
                    pods: kubectl::get_all_pods(&self.context, &ns),
                    rollback: self.rollback_for(r),
                }),
                None,
            );
            // Each release's pods are judged on their own: at the same time (--jobs).
            if let Some(s) = self.steps.last_mut() {
                s.group = Some(format!("health/{rel}"));
            }
        }
    }
}
