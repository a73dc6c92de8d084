//! cluster: create the cluster slipway manages if it is not up (or check that an
//! existing one answers).

use crate::model::Stage;
use crate::plan::{Action, Guard, Planner};

impl Planner<'_> {
    pub(in crate::plan) fn cluster(&mut self) {
        let c = &self.p.cluster;
        let provider = c.provider();
        let mut ensure = provider.ensure(c, self.budget(Stage::Cluster));
        if provider.managed_context(c).is_none() {
            // A cluster slipway does not manage is checked at the context in use.
            ensure.cmd = crate::tools::kubectl::readyz(&self.context);
            ensure.title = format!("check that context {} answers", self.context);
        } else if !c.create {
            ensure.probe = None;
        }
        let guard = ensure.probe.map(|probe| Guard::ClusterUp {
            describe: provider.describe(c),
            probe,
        });
        self.push(
            Stage::Cluster,
            format!("cluster/{}", c.name),
            ensure.title,
            Action::Run { cmd: ensure.cmd },
            guard,
        );
    }
}
