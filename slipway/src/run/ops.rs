//! `status` and `down`: look at or remove what slipway deployed, from the plan's
//! commands like every other step.

use std::time::{Duration, Instant};

use super::Runner;
use crate::model::{Cmd, Error, Event, PodStatus, ReleaseStatus, Stage, WorkloadStatus};
use crate::plan::Action;
use crate::tools::helm;

fn age(created: &str) -> String {
    humantime::parse_rfc3339(created)
        .ok()
        .and_then(|t| std::time::SystemTime::now().duration_since(t).ok())
        .map(|d| {
            humantime::format_duration(Duration::from_secs(d.as_secs()))
                .to_string()
                .split(' ')
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "?".into())
}

impl Runner<'_> {
    fn absent(&self) -> bool {
        *self
            .cluster_absent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn cluster_present(
        &self,
        stage: Stage,
        describe: &str,
        probe: Option<&Cmd>,
        deadline: Instant,
    ) -> Result<(), Error> {
        let Some(probe) = probe else { return Ok(()) };
        let cluster = &self.pipeline.cluster;
        let out = self.probe(stage, probe, deadline)?;
        let up = cluster
            .provider()
            .is_up(cluster, out.code, &out.stdout)
            .map_err(|e| {
                Error::new(stage, format!("cannot tell whether {describe} exists: {e}"))
            })?;
        if up {
            return Ok(());
        }
        if stage == Stage::Status {
            return Err(Error::new(stage, format!("{describe} does not exist"))
                .hint("create it with `cargo xtask deploy-local`"));
        }
        *self
            .cluster_absent
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = true;
        self.note(
            stage,
            format!("{describe} does not exist: nothing to uninstall"),
        );
        Ok(())
    }

    pub(super) fn status(&self, stage: Stage, a: &Action, deadline: Instant) -> Result<(), Error> {
        let Action::Status {
            release,
            namespace,
            status,
            discover,
            pods,
        } = a
        else {
            return Ok(());
        };
        let st = self
            .ex
            .probe(stage, status, Some(deadline))
            .map_err(|e| e.into_error(stage, &format!("status of {release}")))?;
        let parsed = helm::parse_status(&st.stdout);
        let (state, revision) = match (&parsed, st.ok()) {
            (Some(s), _) => (s.status.clone(), Some(s.version)),
            (None, false) if helm::is_not_found(&st.stderr) => ("not installed".to_string(), None),
            (None, _) => {
                return Err(Error {
                    command: Some(self.ex.redact(&status.display())),
                    child_exit: Some(st.code),
                    tail: crate::model::last_lines(&self.ex.redact(&st.stderr), 10),
                    ..Error::new(
                        stage,
                        format!("cannot read the status of release {release}"),
                    )
                })
            }
        };
        let mut workloads = vec![];
        if parsed.is_some() {
            for w in self.discover(stage, release, discover, deadline)? {
                let pods = self.pods(stage, pods, &w, deadline)?;
                workloads.push(WorkloadStatus {
                    workload: w.id(),
                    ready: w.ready,
                    desired: w.desired,
                    pods: pods
                        .into_iter()
                        .map(|p| PodStatus {
                            age: age(&p.created),
                            name: p.name,
                            ready: p.ready,
                            phase: p.phase,
                            restarts: p.restarts,
                            images: p.images,
                            synced: p.synced,
                        })
                        .collect(),
                });
            }
        }
        self.ex.events.emit(Event::ReleaseStatus(ReleaseStatus {
            context: self.plan.context.clone(),
            release: release.clone(),
            namespace: namespace.clone(),
            status: state,
            revision,
            workloads,
        }));
        Ok(())
    }

    pub(super) fn uninstall(
        &self,
        stage: Stage,
        a: &Action,
        deadline: Instant,
    ) -> Result<(), Error> {
        let Action::Uninstall {
            release,
            namespace,
            status,
            uninstall,
            list_secrets,
            delete_secrets,
        } = a
        else {
            return Ok(());
        };
        if self.absent() {
            return Ok(());
        }
        let st = self
            .ex
            .probe(stage, status, Some(deadline))
            .map_err(|e| e.into_error(stage, &format!("status of {release}")))?;
        if !st.ok() && helm::is_not_found(&st.stderr) {
            self.note(
                stage,
                format!("release {release} is not installed in {namespace}: nothing to do"),
            );
        } else {
            self.ex
                .run(stage, uninstall, Some(deadline))
                .map_err(|e| e.into_error(stage, &format!("uninstall {release}")))?;
            self.note(
                stage,
                format!("uninstalled release {release} from {namespace}"),
            );
        }
        let names = self
            .ex
            .run(stage, list_secrets, Some(deadline))
            .map_err(|e| e.into_error(stage, "list the secrets slipway created"))?;
        let names: Vec<&str> = names
            .stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        if names.is_empty() {
            self.note(
                stage,
                format!("no secrets slipway created for {release} in {namespace}"),
            );
        } else {
            self.ex
                .run(stage, delete_secrets, Some(deadline))
                .map_err(|e| e.into_error(stage, "delete the secrets slipway created"))?;
            self.note(stage, format!("deleted {}", names.join(", ")));
        }
        Ok(())
    }

    pub(super) fn delete_cluster(
        &self,
        stage: Stage,
        describe: &str,
        delete: Option<&Cmd>,
        deadline: Instant,
    ) -> Result<(), Error> {
        match delete {
            None => self.note(
                stage,
                format!("{describe}: slipway does not manage that cluster; left as it is"),
            ),
            Some(_) if self.absent() => self.note(
                stage,
                format!("{describe} does not exist: nothing to delete"),
            ),
            Some(cmd) => {
                self.ex
                    .run(stage, cmd, Some(deadline))
                    .map_err(|e| e.into_error(stage, &format!("delete {describe}")))?;
                self.note(stage, format!("deleted {describe}"));
            }
        }
        Ok(())
    }
}
