//! load: put each image on the cluster's nodes (or push it to the registry), skipped
//! when every node already holds the same image ID. A local registry (kind's
//! `delivery = "registry"`) is started and wired into the nodes first, unless the
//! cluster already advertises it.

use crate::config::Provider;
use crate::model::Stage;
use crate::plan::delivery::{Delivery, DeliveryPath};
use crate::plan::{
    Action, Guard, ImageOnCluster, Planner, Recipe, RegistryAdvertised, VerifyLoaded,
};
use crate::tools::docker;

impl Planner<'_> {
    pub(in crate::plan) fn load(&mut self) {
        let budget = self.budget(Stage::Load);
        let c = &self.p.cluster;
        let provider = c.provider();
        let local = provider.local_registry(c, &self.context);
        if let Some(reg) = &local {
            let title = format!("wire registry {} into {}", reg.host, provider.describe(c));
            let guard = Guard::RegistryAdvertised(RegistryAdvertised {
                host: reg.host.clone(),
                probe: reg.advertised.clone(),
            });
            let guard = (!self.o.force).then_some(guard);
            // No cache directory (no HOME): the registry must already be wired.
            if let (Some(cmd), false) = (&reg.wire, self.images.is_empty()) {
                let action = Action::Recipe(Recipe {
                    recipe: crate::tools::provision::REGISTRY.name.into(),
                    cmd: cmd.clone(),
                });
                self.push(Stage::Load, "registry".into(), title, action, guard);
            }
        }
        let pushes = self.p.push_registry().is_some();
        if let Some(r) = self.p.registry.as_ref().filter(|_| !self.images.is_empty()) {
            if let Some((user, var)) = r.login() {
                self.push(
                    Stage::Load,
                    "registry-login".into(),
                    format!("log in to {} as {user}", r.host()),
                    Action::run(docker::login(
                        r.host(),
                        &user,
                        crate::model::SecretSource::Env { var },
                    )),
                    None,
                );
            }
        }
        for ip in self.images.clone() {
            let guard = if self.o.force {
                None
            } else {
                provider.image_probe(c, &ip.reference).map(|probe| {
                    Guard::ImageOnCluster(ImageOnCluster {
                        reference: ip.reference.clone(),
                        local_id: docker::image_id(&ip.reference),
                        probe,
                    })
                })
            };
            let (title, cmd, path) = match provider.load(c, &ip.reference, budget) {
                Some((title, cmd)) => {
                    let path = match c.provider {
                        Provider::Minikube => DeliveryPath::MinikubeLoad,
                        _ => DeliveryPath::KindLoad,
                    };
                    (title, cmd, path)
                }
                None if pushes => (
                    format!("push {}", ip.reference),
                    docker::push(&ip.reference, budget),
                    if local.is_some() && self.p.registry.is_none() {
                        DeliveryPath::RegistryPush
                    } else {
                        DeliveryPath::Push
                    },
                ),
                None => continue,
            };
            let delivery = Delivery {
                image: ip.name.clone(),
                reference: ip.reference.clone(),
                size: (!path.is_push()).then(|| docker::image_size(&ip.reference)),
                registry: (path == DeliveryPath::RegistryPush)
                    .then(|| local.as_ref().map(|r| r.host.clone()))
                    .flatten(),
                path,
                cmd,
            };
            self.push(
                Stage::Load,
                format!("load/{}", ip.name),
                title,
                Action::Deliver(delivery),
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
                    Action::VerifyLoaded(VerifyLoaded {
                        reference: ip.reference.clone(),
                        local_id: docker::image_id(&ip.reference),
                        probe,
                    }),
                    // Not when the load was skipped because the nodes hold it.
                    guard,
                );
            }
        }
    }
}
