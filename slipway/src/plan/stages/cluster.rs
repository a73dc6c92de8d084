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

#[cfg(test)]
mod tests {
    use crate::config::{load, LoadOptions};
    use crate::model::{Job, Vars};
    use crate::plan::{build, PlanOptions};

    /// A provider is one file, its tool's declaration and its registration: the
    /// test-only k3d provider (`providers/k3d.rs`) plans a whole deploy-local.
    #[test]
    fn a_provider_added_with_one_file_plans_a_deploy_local() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("app")).unwrap();
        std::fs::create_dir_all(root.join("chart")).unwrap();
        std::fs::write(root.join("app/Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(
            root.join("chart/Chart.yaml"),
            "apiVersion: v2\nname: web\nversion: 0.1.0\n",
        )
        .unwrap();
        std::fs::write(
            root.join("pipeline.toml"),
            r#"
[project]
name = "fixture"
namespace = "apps"
[cluster]
provider = "k3d"
name = "fx"
[images.web]
context = "app"
[releases.web]
chart = "chart"
"#,
        )
        .unwrap();
        let p = load(&LoadOptions {
            file: root.join("pipeline.toml"),
            profile: None,
            vars: Some(Vars::default()),
        })
        .unwrap();
        let plan = build(&p, &PlanOptions::new(Job::DeployLocal)).unwrap();
        assert_eq!(plan.context, "k3d-fx");
        let cmds: Vec<String> = plan.commands().iter().map(|c| c.display()).collect();
        let has = |prefix: &str| {
            assert!(
                cmds.iter().any(|c| c.starts_with(prefix)),
                "no `{prefix}…` in:\n{}",
                cmds.join("\n")
            )
        };
        has("k3d version");
        has("k3d cluster get fx");
        has("k3d cluster create fx --wait");
        has("k3d image import ");
        has("docker exec k3d-fx-server-0 crictl inspecti ");
        has("helm upgrade --install web ");
        assert!(
            cmds.iter()
                .filter(|c| c.starts_with("helm ") || c.starts_with("kubectl "))
                .all(|c| !c.contains("--context") || c.contains("k3d-fx")),
            "every cluster call is pinned to k3d's context:\n{}",
            cmds.join("\n")
        );
        assert!(!cmds.iter().any(|c| c.starts_with("kind ")));
    }
}
