//! preflight: tools and their versions, the Docker daemon and disk, the kube
//! context (and the guard on it), secret variables.

use crate::model::mutation::Target;
use crate::model::{Cmd, Job, Stage};
use crate::plan::{
    Action, ContextCheck, ContextGuard, DockerStart, Fetch, Guard, GuardRule, Planner, Preflight,
    SecretVar, Supply, ToolCheck,
};
use crate::tools::registry::{Need, ToolId, TOOLS};
use crate::tools::{docker, kubectl, provision};

impl Planner<'_> {
    /// The context guard, when any planned command changes a cluster: derived from
    /// the commands (their tool and verb), never from a list of jobs. Jobs meant for
    /// the local cluster (and any job given --kube-context) change only the cluster
    /// slipway manages unless --allow-context; `deploy` is how clusters slipway does
    /// not manage are deployed to; other jobs may change the pipeline's own context.
    pub(in crate::plan) fn plan_guard(&mut self) {
        let changes: Vec<(String, Target)> = self
            .steps
            .iter()
            .filter(|s| s.stage != Stage::Preflight)
            .flat_map(|s| {
                let mut v = s.skip_if.as_ref().map(Guard::commands).unwrap_or_default();
                v.extend(s.action.commands());
                v
            })
            .filter_map(|c| c.mutation().map(|t| (c.display(), t)))
            .collect();
        let Some((first_change, _)) = changes.first().cloned() else {
            return;
        };
        let job = self.o.job;
        let managed = self.p.cluster.provider().managed_context(&self.p.cluster);
        let rule = if job == Job::Deploy {
            GuardRule::Any
        } else if job.guarded() || self.o.context.is_some() || managed.is_some() {
            GuardRule::Managed
        } else {
            GuardRule::Pipeline
        };
        let mut also: Vec<Target> = changes
            .into_iter()
            .map(|(_, t)| t)
            .filter(|t| matches!(t, Target::Registry(_)))
            .collect();
        also.sort();
        also.dedup();
        let guard = ContextGuard {
            job,
            context: self.context.clone(),
            kubeconfig: managed
                .as_ref()
                .filter(|m| **m == self.context)
                .map(|_| kubectl::config_view()),
            managed,
            allowed: self.o.allow_context,
            rule,
            first_change,
            also,
        };
        for s in &mut self.steps {
            if let Action::Preflight(pf) = &mut s.action {
                pf.guard = Some(guard.clone());
            }
        }
    }

    /// Tools a job needs, with the minimum version and why that minimum (as
    /// [`crate::tools::registry`] declares them).
    fn tool_checks(&self, stages: &[Stage]) -> Vec<ToolCheck> {
        let has = |s: Stage| stages.contains(&s);
        let provider = self.p.cluster.provider();
        let images = !self.p.images.is_empty() && (has(Stage::Build) || has(Stage::Load));
        let cluster_tool = has(Stage::Cluster)
            || (has(Stage::Load) && !self.p.images.is_empty())
            || has(Stage::Down);
        let mut out: Vec<ToolCheck> = TOOLS
            .iter()
            .filter(|t| match t.need {
                Need::Images => images || (provider.needs_docker() && has(Stage::Cluster)),
                Need::Provider => cluster_tool && provider.tool() == Some(t.id),
                Need::Stages(s) => s.iter().copied().any(has),
            })
            .map(|t| ToolCheck {
                tool: t.id,
                min: t.min.to_string(),
                why: t.why.into(),
                version: (t.version)(),
                supply: None,
            })
            .collect();
        for t in &mut out {
            t.supply = self.supply(t.tool);
            if let Some(pin) = self.p.tools.pinned(t.tool) {
                // A pinned version is the least one accepted from PATH.
                t.min = pin.trim_start_matches('v').to_string();
                t.why = format!("pinned in [tools] ({pin})");
            }
        }
        out
    }

    /// How `tool` is provisioned when PATH has none that will do.
    fn supply(&self, tool: ToolId) -> Option<Supply> {
        if !self.provisioning() {
            return None;
        }
        let version = self
            .p
            .tools
            .pinned(tool)
            .or_else(|| provision::default_version(tool))?
            .to_string();
        let cache = provision::cache_root()?;
        let path = provision::tool_path(&cache, tool, &version);
        let dir = cache.join("downloads").join(format!("{tool}-{version}"));
        let arch = provision::go_arch();
        let pin = match self.p.tools.sha256.get(tool.name()) {
            Some(h) => Some((h.to_ascii_lowercase(), format!("[tools.sha256] {tool}"))),
            None => provision::pinned_sha256(tool, &version, arch)
                .map(|h| (h.to_string(), "pinned in slipway's source".to_string())),
        };
        let released = provision::download(tool, &version, arch, self.p.tools.mirror.as_deref());
        let unpinned = (released.is_some() && pin.is_none()).then(|| {
            format!("no SHA-256 is pinned for {tool} {version} linux/{arch} (slipway's source pins none for it: pin one in [tools.sha256] {tool} = \"<hex>\" to allow a download; else slipway builds it)")
        });
        let download = released.zip(pin).map(|(d, (sha256, pinned_by))| {
            let file = dir.join(if d.member.is_some() {
                "archive.tar.gz"
            } else {
                tool.name()
            });
            let unpack = d.member.as_ref().map(|m| {
                Cmd::new(
                    "tar",
                    [
                        "-xzf".to_string(),
                        file.to_string_lossy().into_owned(),
                        "-C".into(),
                        dir.to_string_lossy().into_owned(),
                        m.clone(),
                    ],
                )
            });
            Fetch {
                fetch: provision::curl(&d.url, Some(&file)),
                sha256,
                pinned_by,
                unpacked: d.member.as_ref().map(|m| dir.join(m)),
                unpack,
                file,
            }
        });
        Some(Supply {
            packages: provision::recipe_for(tool, &version)
                .map(crate::providers::recipe_packages)
                .unwrap_or_default(),
            install_packages: self.o.install_packages,
            build: provision::build(tool, &version, &cache),
            version,
            path,
            download,
            unpinned,
        })
    }

    /// Provisioning is on unless `--no-provision` or `[tools] provision = false`.
    pub(in crate::plan) fn provisioning(&self) -> bool {
        self.o.provision && self.p.tools.provision
    }

    pub(in crate::plan) fn preflight(&mut self) {
        let job = self.o.job;
        let stages = job.stages();
        let tools = self.tool_checks(stages);
        let docker_daemon = tools
            .iter()
            .any(|t| t.tool == ToolId::Docker)
            .then(docker::info);
        let docker_start = docker_daemon
            .as_ref()
            .filter(|_| self.provisioning())
            .and_then(|_| provision::cache_root())
            .map(|cache| {
                let dir = cache.join("docker");
                let wrapper = dir.join("runc-capfilter");
                let config = dir.join("daemon.json");
                DockerStart {
                    dockerd: docker::dockerd(&config),
                    config,
                    host_config: std::env::var_os("SLIPWAY_DOCKERD_HOST_CONFIG")
                        .filter(|v| !v.is_empty())
                        .map(Into::into)
                        .unwrap_or_else(|| "/etc/docker/daemon.json".into()),
                    wrapper,
                    filter: dir.join("oci-capfilter"),
                    log: dir.join("dockerd.log"),
                }
            });
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
        // The context guard is planned once every stage is (see `plan_guard`).
        let guard = None;
        let mut secret_vars: Vec<SecretVar> = if stages.contains(&Stage::Secrets) {
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
        // The registry password `docker login` reads (when no pull Secret names it).
        if let Some((_, var)) = self.p.registry.as_ref().and_then(|r| r.login()) {
            let named = secret_vars.iter().any(|v| {
                matches!(&v.source, crate::model::SecretSource::RegistryAuth { var: w, .. } if *w == var)
            });
            if stages.contains(&Stage::Load) && !named {
                secret_vars.push(SecretVar {
                    secret: "registry login".into(),
                    key: "password".into(),
                    source: crate::model::SecretSource::Env { var },
                });
            }
        }
        self.push(
            Stage::Preflight,
            "preflight".into(),
            "check tools, Docker, disk, kube context and secret variables".into(),
            Action::Preflight(Preflight {
                tools,
                docker_daemon,
                docker_start,
                provision: self.provisioning(),
                min_free_gib: 2,
                context,
                guard,
                secret_vars,
            }),
            None,
        );
    }
}
