//! down: uninstall each release (dependents first, then newest first) and the Secrets slipway created for
//! it; with `--cluster`, delete the cluster slipway manages.

use crate::model::Stage;
use crate::plan::{Action, DeleteCluster, Planner, Uninstall};
use crate::tools::{helm, kubectl};

impl Planner<'_> {
    pub(in crate::plan) fn down(&mut self) {
        self.cluster_present(Stage::Down);
        // Dependents first: the waves deploy uses, backwards.
        let order: Vec<_> = self
            .p
            .release_waves()
            .into_iter()
            .rev()
            .flat_map(|w| w.into_iter().rev())
            .collect();
        for r in order {
            let ns = self.namespace(r);
            let rel = r.release_name().to_string();
            let selector =
                format!("app.kubernetes.io/managed-by=slipway,slipway.dev/release={rel}");
            self.push(
                Stage::Down,
                format!("uninstall/{rel}"),
                format!("uninstall release {rel} and its secrets"),
                Action::Uninstall(Uninstall {
                    release: rel.clone(),
                    namespace: ns.clone(),
                    status: helm::status(&rel, &ns, &self.context),
                    uninstall: helm::uninstall(&rel, &ns, &self.context, r.timeout.0),
                    list_secrets: kubectl::get_secret_names(&self.context, &ns, &selector),
                    delete_secrets: kubectl::delete_secrets(&self.context, &ns, &selector),
                }),
                None,
            );
        }
        if self.o.with_cluster {
            let c = &self.p.cluster;
            let provider = c.provider();
            self.push(
                Stage::Down,
                "delete-cluster".into(),
                format!("delete {}", provider.describe(c)),
                Action::DeleteCluster(DeleteCluster {
                    describe: provider.describe(c),
                    delete: provider.delete(c),
                }),
                None,
            );
            // The local registry slipway started beside the cluster goes with it
            // (whether or not the cluster was still there).
            if let Some(reg) = provider.local_registry(c, &self.context) {
                for (i, cmd) in reg.remove.into_iter().enumerate() {
                    self.push(
                        Stage::Down,
                        format!("remove-registry/{i}"),
                        format!(
                            "remove the local registry {} (its container and data)",
                            reg.host
                        ),
                        Action::run(cmd),
                        None,
                    );
                }
            }
        }
    }
}
