//! rollout: wait for each workload of a release to roll out.

use crate::model::Stage;
use crate::plan::{Action, Planner};
use crate::tools::kubectl;

impl Planner<'_> {
    pub(in crate::plan) fn rollout(&mut self) {
        for r in &self.p.releases {
            let ns = self.namespace(r);
            let rel = r.release_name().to_string();
            self.push(
                Stage::Rollout,
                format!("rollout/{rel}"),
                format!("wait for the workloads of {rel} to roll out"),
                Action::Rollout {
                    release: rel.clone(),
                    namespace: ns.clone(),
                    context: self.context.clone(),
                    discover: kubectl::get_workloads(&self.context, &ns),
                    rollout: kubectl::rollout_status(
                        &self.context,
                        &ns,
                        "{WORKLOAD}",
                        "{TIMEOUT}",
                        r.timeout.0,
                    ),
                    pods: kubectl::get_pods(&self.context, &ns, "{SELECTOR}"),
                    workloads: r.workloads.clone(),
                    timeout: r.timeout.0,
                    rollback: self.rollback_for(r),
                },
                None,
            );
        }
    }
}
