//! cluster: create the cluster slipway manages if it is not up (or check that an
//! existing one answers).

use crate::model::Stage;
use crate::plan::{Action, ClusterUp, CreateCluster, Guard, Planner};
use crate::providers::{self, ProviderKind};

impl Planner<'_> {
    pub(in crate::plan) fn cluster(&mut self) {
        let c = &self.p.cluster;
        let provider = c.provider();
        // A cluster slipway does not create (provider `existing`, or `create = false`)
        // is only checked: what `existing` does, at the context in use.
        let creates = c.create && provider.managed_context(c).is_some();
        let how = if creates {
            provider
        } else {
            providers::get(ProviderKind::Existing)
        };
        let ensure = how.ensure(c, &self.context, self.budget(Stage::Cluster));
        let guard = ensure.probe.map(|probe| {
            Guard::ClusterUp(ClusterUp {
                describe: provider.describe(c),
                probe,
            })
        });
        self.push(
            Stage::Cluster,
            format!("cluster/{}", c.name),
            ensure.title,
            Action::CreateCluster(CreateCluster {
                cmd: ensure.cmd,
                // Building a node image is set-up slipway does only when provisioning.
                node: ensure.node.filter(|_| self.provisioning()).map(|mut n| {
                    n.install_packages = self.o.install_packages;
                    n
                }),
            }),
            guard,
        );
    }
}
