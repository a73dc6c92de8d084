//! status: each release's state, workloads and pods (read-only).

use crate::model::Stage;
use crate::plan::{Action, ClusterPresent, Planner, Status};
use crate::tools::{helm, kubectl};

impl Planner<'_> {
    pub(in crate::plan) fn cluster_present(&mut self, stage: Stage) {
        let c = &self.p.cluster;
        let provider = c.provider();
        let probe = provider
            .managed_context(c)
            .and_then(|_| provider.ensure(c, &self.context, self.budget(stage)).probe);
        self.push(
            stage,
            "cluster-present".into(),
            format!("check that {} exists", provider.describe(c)),
            Action::ClusterPresent(ClusterPresent {
                describe: provider.describe(c),
                probe,
            }),
            None,
        );
    }

    pub(in crate::plan) fn status(&mut self) {
        self.cluster_present(Stage::Status);
        for r in &self.p.releases {
            let ns = self.namespace(r);
            let rel = r.release_name().to_string();
            self.push(
                Stage::Status,
                format!("status/{rel}"),
                format!("status of release {rel}"),
                Action::Status(Status {
                    release: rel.clone(),
                    namespace: ns.clone(),
                    status: helm::status(&rel, &ns, &self.context),
                    discover: kubectl::get_workloads(&self.context, &ns),
                    pods: kubectl::get_pods(&self.context, &ns, "{SELECTOR}"),
                }),
                None,
            );
        }
    }
}
