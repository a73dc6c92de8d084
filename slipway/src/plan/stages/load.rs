//! load: put each image on the cluster's nodes (or push it to a registry), skipped
//! when every node already holds the same image ID. A local registry (kind's
//! `delivery = "registry"`, or `"auto"` once it is built) is started and wired into
//! the nodes first, unless the cluster already advertises it; after each push every
//! node pulls the image, so pods start without a pull (`imagePullPolicy: Never` too).

use crate::config::Provider;
use crate::model::Stage;
use crate::plan::delivery::{Delivery, DeliveryPath};
use crate::plan::{
    Action, Guard, ImageOnCluster, Planner, Recipe, RegistryAdvertised, VerifyLoaded,
};
use crate::tools::docker;

impl Planner<'_> {
    /// The local registry wired into the nodes (unless the cluster advertises it),
    /// and a login to the pipeline's registry: before any image travels.
    fn load_registry(&mut self) -> Option<crate::providers::LocalRegistry> {
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
        local
    }

    pub(in crate::plan) fn load(&mut self) {
        let budget = self.budget(Stage::Load);
        let local = self.load_registry();
        let c = &self.p.cluster;
        let provider = c.provider();
        let pushes = self.p.push_registry().is_some();
        // Said once, with the first image: every image takes the same path.
        let mut why = c
            .kind
            .delivery_why
            .clone()
            .filter(|_| c.provider == Provider::Kind);
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
            let pull = (path == DeliveryPath::RegistryPush)
                .then(|| provider.registry_pull(c, &ip.reference))
                .flatten();
            let delivery = Delivery {
                why: why.take(),
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
            let (name, title) = match pull {
                Some(_) => ("pull", format!("pull {} into the nodes", ip.reference)),
                None => (
                    "verify-load",
                    format!("check {} is on the nodes now", ip.reference),
                ),
            };
            if let Some(probe) = pull.clone().or(verify) {
                self.push(
                    Stage::Load,
                    format!("{name}/{}", ip.name),
                    title,
                    Action::VerifyLoaded(VerifyLoaded {
                        reference: ip.reference.clone(),
                        local_id: docker::image_id(&ip.reference),
                        probe,
                        pull: pull.is_some(),
                    }),
                    // Not when the load was skipped because the nodes hold it.
                    guard,
                );
            }
        }
    }
}
