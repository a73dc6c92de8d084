//! preflight: tools and their versions, the Docker daemon and disk, the kube
//! context (and the guard on it), secret variables.

use crate::model::Stage;
use crate::plan::{Action, ContextCheck, ContextGuard, Planner, Preflight, SecretVar, ToolCheck};
use crate::tools::{docker, helm, kubectl};

impl Planner<'_> {
    /// Tools a job needs, with the minimum version and why that minimum.
    fn tool_checks(&self, stages: &[Stage]) -> Vec<ToolCheck> {
        let has = |s: Stage| stages.contains(&s);
        let provider = self.p.cluster.provider();
        let mut out = vec![];
        let images = !self.p.images.is_empty() && (has(Stage::Build) || has(Stage::Load));
        if images || (provider.needs_docker() && has(Stage::Cluster)) {
            out.push(ToolCheck {
                tool: "docker".into(),
                min: "20.10.0".into(),
                why: "BuildKit builds and `--format {{json .}}` output".into(),
                version: docker::version(),
            });
        }
        let cluster_tool = has(Stage::Cluster) || (has(Stage::Load) && !self.p.images.is_empty());
        if cluster_tool {
            if let Some(t) = provider.tool() {
                out.push(ToolCheck {
                    tool: t.tool,
                    min: t.min,
                    why: t.why,
                    version: t.version,
                });
            }
        }
        if has(Stage::Deploy) {
            out.push(ToolCheck {
                tool: "helm".into(),
                min: helm::MIN_VERSION.to_string(),
                why:
                    "`uninstall --ignore-not-found` and the release description in `status -o json`"
                        .into(),
                version: helm::version(),
            });
        }
        if has(Stage::Secrets) || has(Stage::Rollout) || has(Stage::Smoke) || has(Stage::Deploy) {
            out.push(ToolCheck {
                tool: "kubectl".into(),
                min: "1.24.0".into(),
                why: "`apply --server-side`, `logs --prefix` and `wait --for=condition`".into(),
                version: kubectl::version(),
            });
        }
        out
    }

    pub(in crate::plan) fn preflight(&mut self) {
        let job = self.o.job;
        let stages = job.stages();
        let tools = self.tool_checks(stages);
        let docker_daemon = tools.iter().any(|t| t.tool == "docker").then(docker::info);
        let touches_cluster = stages.iter().any(|s| *s >= Stage::Secrets);
        let context = (touches_cluster
            && self
                .p
                .cluster
                .provider()
                .managed_context(&self.p.cluster)
                .is_none())
        .then(|| ContextCheck {
            context: self.context.clone(),
            list: kubectl::contexts(),
            ready: kubectl::readyz(&self.context),
        });
        // The guard: jobs that change a cluster only touch the one slipway manages,
        // unless told. `deploy` is how remote clusters are deployed to.
        let managed = self.p.cluster.provider().managed_context(&self.p.cluster);
        let guard = job.guarded().then(|| ContextGuard {
            job,
            context: self.context.clone(),
            kubeconfig: managed
                .as_ref()
                .filter(|m| **m == self.context)
                .map(|_| kubectl::config_view()),
            managed,
            allowed: self.o.allow_context,
        });
        let secret_vars = if stages.contains(&Stage::Secrets) {
            self.secret_inputs()
                .into_iter()
                .flat_map(|s| {
                    s.keys.into_iter().map(move |k| SecretVar {
                        secret: s.name.clone(),
                        key: k.key,
                        source: k.source,
                    })
                })
                .collect()
        } else {
            vec![]
        };
        self.push(
            Stage::Preflight,
            "preflight".into(),
            "check tools, Docker, disk, kube context and secret variables".into(),
            Action::Preflight(Preflight {
                tools,
                docker_daemon,
                min_free_gib: 2,
                context,
                guard,
                secret_vars,
            }),
            None,
        );
    }
}
