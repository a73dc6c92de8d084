//! The probe cache: what a guard's probe printed stays true within a stage until a
//! guarded step runs; probes read ahead (all at once, before the stages) serve until
//! then too.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use crate::exec::{Executor, Output};
use crate::model::{Cmd, Error, Stage};
use crate::plan::{Guard, Plan};

#[derive(Default)]
pub struct Probes {
    /// This stage's answers.
    cache: Mutex<HashMap<String, Output>>,
    /// Read ahead by [`Probes::prefetch`].
    prefetched: Mutex<HashMap<String, Output>>,
    /// Set once a guarded step runs (it may change what the probes saw): from then on
    /// every probe is asked again.
    stale: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Probes {
    /// A new stage: its own commands have not run yet.
    pub fn clear(&self) {
        lock(&self.cache).clear();
    }

    /// Something changed what the probes saw.
    pub fn mark_stale(&self) {
        self.stale.store(true, Ordering::SeqCst);
    }

    /// Run a probe once per stage (until a command changes something).
    pub fn get(
        &self,
        ex: &Executor,
        stage: Stage,
        cmd: &Cmd,
        deadline: Instant,
    ) -> Result<Output, Error> {
        let key = cmd.display();
        if let Some(o) = lock(&self.cache).get(&key) {
            return Ok(o.clone());
        }
        if !self.stale.load(Ordering::SeqCst) {
            if let Some(o) = lock(&self.prefetched).get(&key).cloned() {
                lock(&self.cache).insert(key, o.clone());
                return Ok(o);
            }
        }
        let out = ex
            .probe(stage, cmd, Some(deadline))
            .map_err(|e| e.into_error(stage, "probe"))?;
        lock(&self.cache).insert(key, out.clone());
        Ok(out)
    }

    fn keep(&self, c: &Cmd, out: Output) {
        lock(&self.prefetched).insert(c.display(), out);
    }

    /// Every guard probe of the plan, at once; first the cluster's: when it is not
    /// up, the stages will change everything and there is nothing worth reading ahead.
    pub fn prefetch(&self, ex: &Executor, plan: &Plan, deadline: Instant) {
        let cmds = ahead(plan);
        if cmds.len() < 2 {
            return;
        }
        let cluster_up = plan.steps.iter().find_map(|s| match &s.skip_if {
            Some(Guard::ClusterUp(g)) => Some(g),
            _ => None,
        });
        // A cluster slipway does not manage is not read ahead (its guards are few).
        let Some(g) = cluster_up else { return };
        let Ok(out) = ex.probe(Stage::Cluster, &g.probe, Some(deadline)) else {
            return;
        };
        let up = g
            .verdict(Stage::Cluster, &plan.cluster_spec, &out, &|s| s.to_string())
            .is_ok_and(|v| v.is_some());
        self.keep(&g.probe, out);
        if !up {
            return;
        }
        let mut cmds = cmds;
        cmds.retain(|(_, c)| c.display() != g.probe.display());
        self.fetch_all(ex, plan, cmds, deadline);
    }

    fn fetch_all(&self, ex: &Executor, plan: &Plan, cmds: Vec<(Stage, &Cmd)>, deadline: Instant) {
        let fetch = |stage: Stage, c: &Cmd| {
            if let Ok(out) = ex.probe(stage, c, Some(deadline)) {
                self.keep(c, out);
            }
        };
        let provider = plan.cluster_spec.provider();
        std::thread::scope(|scope| {
            for (stage, c) in cmds {
                scope.spawn(move || fetch(stage, c));
            }
            // Per-node image checks, once the node list is known.
            for s in &plan.steps {
                let Some(Guard::ImageOnCluster(g)) = &s.skip_if else {
                    continue;
                };
                let (stage, probe) = (s.stage, &g.probe);
                scope.spawn(move || {
                    let nodes = match &probe.nodes {
                        Some(list) => {
                            let Ok(out) = ex.probe(stage, list, Some(deadline)) else {
                                return;
                            };
                            let names = provider.node_names(&out.stdout);
                            self.keep(list, out);
                            names
                        }
                        None => vec![String::new()],
                    };
                    std::thread::scope(|inner| {
                        for n in nodes {
                            inner
                                .spawn(move || fetch(stage, &probe.per_node.fill(&[("NODE", &n)])));
                        }
                    });
                });
            }
        });
    }
}

/// The guard probes worth reading ahead: those without run-time placeholders, each
/// once, not the node lists (read by the per-node image checks).
fn ahead(plan: &Plan) -> Vec<(Stage, &Cmd)> {
    let node_lists: Vec<String> = plan
        .steps
        .iter()
        .filter_map(|s| match &s.skip_if {
            Some(Guard::ImageOnCluster(g)) => g.probe.nodes.as_ref().map(Cmd::display),
            _ => None,
        })
        .collect();
    let mut cmds: Vec<(Stage, &Cmd)> = vec![];
    for s in plan.steps.iter().filter(|s| s.stage != Stage::Preflight) {
        for c in s.skip_if.iter().flat_map(|g| g.commands()) {
            if c.placeholders().is_empty()
                && !node_lists.contains(&c.display())
                && !cmds.iter().any(|(_, x)| x.display() == c.display())
            {
                cmds.push((s.stage, c));
            }
        }
    }
    cmds
}
