//! `dev`: what the loop watches and what each watched path affects, and the commands
//! it keeps running between rounds (a log stream per release, a port-forward per
//! service the smoke checks use). Each round is deploy-local's own steps, so an
//! image whose inputs did not change is not rebuilt and a release whose chart, values
//! and images did not change is not upgraded — each skip says why.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::model::Cmd;
use crate::plan::{Action, Planner};
use crate::tools::kubectl;

/// The first local port dev's port-forwards ask for; each service gets the next.
pub const FIRST_LOCAL_PORT: u16 = 8080;

#[derive(Clone, Debug, Serialize)]
pub struct DevPlan {
    /// Watched paths (relative to the pipeline's directory), each with the images
    /// and releases a change under it affects.
    pub watch: Vec<Watched>,
    /// Per release: its pods' logs, followed from `{SINCE}` (the start of the
    /// round that rolled them out).
    pub logs: Vec<Follow>,
    /// Per service the smoke checks reach: a port-forward on a fixed local port
    /// (`{LOCAL_PORT}`: the first free one from [`FIRST_LOCAL_PORT`]), started again
    /// when its pod goes.
    pub forwards: Vec<Forward>,
    /// Per image with a sync rule: what a round that only touched its `covers` runs
    /// instead of deploy-local's steps.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sync: Vec<crate::plan::sync::SyncPlan>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Watched {
    pub path: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    pub releases: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Follow {
    pub release: String,
    pub cmd: Cmd,
}

#[derive(Clone, Debug, Serialize)]
pub struct Forward {
    pub release: String,
    pub service: String,
    pub port: u16,
    pub cmd: Cmd,
}

impl Planner<'_> {
    pub(in crate::plan) fn dev(&self) -> DevPlan {
        let p = self.p;
        let all: Vec<String> = p.releases.iter().map(|r| r.name.clone()).collect();
        let mut watch: BTreeMap<String, Watched> = BTreeMap::new();
        let mut add = |path: PathBuf, images: &[String], releases: &[String]| {
            let key = path.display().to_string();
            let w = watch.entry(key.clone()).or_insert_with(|| Watched {
                path: key,
                images: vec![],
                releases: vec![],
            });
            for i in images {
                if !w.images.contains(i) {
                    w.images.push(i.clone());
                }
            }
            for r in releases {
                if !w.releases.contains(r) {
                    w.releases.push(r.clone());
                }
            }
        };
        for i in &p.images {
            let users = p.releases_using(&i.name);
            for input in i.inputs() {
                add(input, std::slice::from_ref(&i.name), &users);
            }
        }
        for r in &p.releases {
            let me = std::slice::from_ref(&r.name);
            add(r.chart.clone(), &[], me);
            for v in &r.values {
                add(v.clone(), &[], me);
            }
            for f in r.set_file.values() {
                add(f.clone(), &[], me);
            }
            for s in r.secrets.values() {
                if let Some(f) = &s.env_file {
                    add(f.clone(), &[], me);
                }
            }
        }
        // The pipeline itself and the env file its secrets and values read.
        add("pipeline.toml".into(), &[], &all);
        add(p.project.env_file.clone(), &[], &all);

        let logs = self
            .releases()
            .map(|r| {
                let mut cmd = kubectl::logs_of(
                    &self.context,
                    &self.namespace(r),
                    &format!("--selector=app.kubernetes.io/instance={}", r.release_name()),
                    0,
                    true,
                );
                // Everything since the round began (a selector alone means 10 lines).
                cmd.args.retain(|a| !a.starts_with("--tail="));
                let cmd = cmd.args(["--tail=-1", "--since={SINCE}"]);
                Follow {
                    release: r.release_name().to_string(),
                    cmd,
                }
            })
            .collect();
        let mut forwards: Vec<Forward> = vec![];
        for s in &self.steps {
            let Action::Smoke(c) = &s.action else {
                continue;
            };
            let Some((service, port)) = c.spec.kind().service() else {
                continue;
            };
            if forwards
                .iter()
                .any(|f| f.service == service && f.port == port)
            {
                continue;
            }
            let release = p
                .releases
                .iter()
                .find(|r| self.namespace(r) == c.namespace)
                .map(|r| r.release_name().to_string())
                .unwrap_or_default();
            forwards.push(Forward {
                release,
                service: service.to_string(),
                port,
                cmd: kubectl::port_forward(&c.context, &c.namespace, service, "{LOCAL_PORT}", port),
            });
        }
        DevPlan {
            watch: watch.into_values().collect(),
            logs,
            forwards,
            sync: self.sync_plans(),
        }
    }
}
