//! A stage's groups as a graph, run at most [`Plan::parallel`] at a time.
//!
//! A group of steps (an image's build, a release's deploy) starts once every group it
//! depends on has finished: a release's deploy group after the deploy groups of the
//! releases it `needs` (which end with their rollout, so they are healthy), any other
//! group after every group of an earlier wave; every release's after the capacity
//! check. Groups that do not depend on each
//! other run at the same time, no more than the bound. When a group fails, the groups
//! that depend on it (directly or not) are not attempted, each reported as a skipped
//! step that says why; every other group still runs, and the stage then fails with
//! the first failure.
//!
//! [`Plan::parallel`]: crate::plan::Plan::parallel

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use super::Runner;
use crate::model::{Error, Event, Stage};
use crate::plan::Step;

/// One group and what it waits for.
struct Node<'s> {
    /// The group's name (`build/api`, `deploy/db` …).
    name: &'s str,
    steps: Vec<&'s Step>,
    deps: Vec<usize>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Waiting,
    Running,
    Done,
    /// Failed, or not attempted because something it depends on failed.
    Failed,
}

/// The groups of `steps` with their dependencies; `None` when a step has no group
/// (the caller runs the stage as before, in order).
fn graph<'s>(runner: &Runner, stage: Stage, steps: &[&'s Step]) -> Option<Vec<Node<'s>>> {
    let mut nodes: Vec<(Node<'s>, u32)> = vec![];
    for s in steps {
        let g = s.group.as_deref()?;
        match nodes.iter_mut().find(|(n, _)| n.name == g) {
            Some((n, _)) => n.steps.push(s),
            None => nodes.push((
                Node {
                    name: g,
                    steps: vec![s],
                    deps: vec![],
                },
                s.wave,
            )),
        }
    }
    // A release's deploy group: the releases it needs (by their helm names).
    let release_of = |group: &str| -> Option<&Vec<String>> {
        let rel = group.strip_prefix("deploy/")?;
        runner.plan.needs.get(rel)
    };
    let index: BTreeMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, (n, _))| (n.name, i))
        .collect();
    let deps: Vec<Vec<usize>> = nodes
        .iter()
        .map(|(n, wave)| {
            let release = (stage == Stage::Deploy)
                .then(|| release_of(n.name))
                .flatten();
            let mut d: Vec<usize> = nodes
                .iter()
                .enumerate()
                .filter(|(_, (m, w))| {
                    w < wave && (release.is_none() || release_of(m.name).is_none())
                })
                .map(|(i, _)| i)
                .collect();
            // Every release waits for the capacity check (which may stop them all).
            if release.is_some() {
                d.extend(index.get(crate::plan::CAPACITY).copied());
            }
            for need in release.into_iter().flatten() {
                let group = format!("deploy/{need}");
                if let Some(i) = index.get(group.as_str()).copied() {
                    d.push(i);
                }
            }
            d
        })
        .collect();
    Some(
        nodes
            .into_iter()
            .zip(deps)
            .map(|((mut n, _), d)| {
                n.deps = d;
                n
            })
            .collect(),
    )
}

impl Runner<'_> {
    /// Run `steps` (one stage's) as a graph of groups; `false` when they are not all
    /// grouped (see [`graph`]).
    pub(super) fn run_graph(
        &self,
        stage: Stage,
        steps: &[&Step],
        deadline: Instant,
    ) -> Option<Result<(), Error>> {
        let nodes = graph(self, stage, steps)?;
        let bound = self.plan.parallel.max(1).min(nodes.len().max(1));
        let state = Mutex::new(vec![State::Waiting; nodes.len()]);
        let changed = Condvar::new();
        let errors: Mutex<Vec<Error>> = Mutex::new(vec![]);
        let worker = || loop {
            let next = {
                let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    // What can no longer run: something it depends on failed.
                    let mut again = true;
                    while again {
                        again = false;
                        for (i, n) in nodes.iter().enumerate() {
                            if st[i] != State::Waiting {
                                continue;
                            }
                            if let Some(&f) = n.deps.iter().find(|&&d| st[d] == State::Failed) {
                                st[i] = State::Failed;
                                again = true;
                                self.not_attempted(stage, n, nodes[f].name);
                            }
                        }
                    }
                    if let Some(i) = (0..nodes.len()).find(|&i| {
                        st[i] == State::Waiting
                            && nodes[i].deps.iter().all(|&d| st[d] == State::Done)
                    }) {
                        st[i] = State::Running;
                        break Some(i);
                    }
                    if !st.contains(&State::Running) {
                        break None;
                    }
                    st = changed.wait(st).unwrap_or_else(|e| e.into_inner());
                }
            };
            let Some(i) = next else {
                changed.notify_all();
                return;
            };
            let result = nodes[i]
                .steps
                .iter()
                .try_for_each(|s| self.step(s, deadline));
            let ok = result.is_ok();
            if let Err(e) = result {
                errors.lock().unwrap_or_else(|e| e.into_inner()).push(e);
            }
            state.lock().unwrap_or_else(|e| e.into_inner())[i] =
                if ok { State::Done } else { State::Failed };
            changed.notify_all();
        };
        std::thread::scope(|scope| {
            for _ in 0..bound {
                scope.spawn(worker);
            }
        });
        let mut errors = errors.into_inner().unwrap_or_else(|e| e.into_inner());
        let st = state.into_inner().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = st.iter().position(|s| *s == State::Waiting) {
            // Only a cycle leaves a group waiting (validation refuses those).
            errors.push(Error::new(
                stage,
                format!("{} waits for a group that waits for it", nodes[i].name),
            ));
        }
        Some(if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.remove(0))
        })
    }

    /// A group that will not run because `failed` (which it depends on) failed.
    fn not_attempted(&self, stage: Stage, n: &Node, failed: &str) {
        self.ex.events.emit(Event::StepSkipped {
            stage,
            step: n
                .steps
                .first()
                .map_or(n.name, |s| s.id.as_str())
                .to_string(),
            reason: format!(
                "not attempted: {} needs {failed}, which did not succeed",
                n.name
            ),
        });
    }
}
