//! load: put each image on the cluster's nodes (or push it to the registry), skipped
//! when every node already holds the same image ID.

use crate::model::Stage;
use crate::plan::{Action, Guard, Planner};
use crate::tools::docker;

impl Planner<'_> {
    pub(in crate::plan) fn load(&mut self) {
        let budget = self.budget(Stage::Load);
        let c = &self.p.cluster;
        let provider = c.provider();
        for ip in self.images.clone() {
            let guard = if self.o.force {
                None
            } else {
                provider
                    .image_probe(c, &ip.reference)
                    .map(|probe| Guard::ImageOnCluster {
                        reference: ip.reference.clone(),
                        local_id: docker::image_id(&ip.reference),
                        probe,
                    })
            };
            let (title, cmd) = match provider.load(c, &ip.reference, budget) {
                Some(l) => l,
                None if self.p.registry.is_some() => (
                    format!("push {}", ip.reference),
                    docker::push(&ip.reference, budget),
                ),
                None => continue,
            };
            self.push(
                Stage::Load,
                format!("load/{}", ip.name),
                title,
                Action::Run { cmd },
                guard.clone(),
            );
            let verify = provider
                .load_unverified()
                .then(|| provider.image_probe(c, &ip.reference))
                .flatten();
            if let Some(probe) = verify {
                self.push(
                    Stage::Load,
                    format!("verify-load/{}", ip.name),
                    format!("check {} is on the nodes now", ip.reference),
                    Action::VerifyLoaded {
                        reference: ip.reference.clone(),
                        local_id: docker::image_id(&ip.reference),
                        probe,
                    },
                    // Not when the load was skipped because the nodes hold it.
                    guard,
                );
            }
        }
    }
}
