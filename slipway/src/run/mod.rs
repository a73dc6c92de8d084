//! Executing a plan: stage by stage, each within its time budget, wave after wave,
//! guards decided by their probes (read once per stage, some read ahead). What a
//! step does is in `steps/<kind>.rs`; this loop knows waves, budgets and the probe
//! cache, nothing else. Every command comes from the plan's data (placeholders
//! filled in the step) and runs through the one executor. A failure is an [`Error`]
//! that says what failed, the command, the tail of its output and what to do next.

pub mod facts;
pub mod lock;
mod preflight;
mod private;
mod probes;
mod provision;
mod rotate;
mod seen;

pub use provision::{adopt_provisioned, oci_capfilter};
pub mod self_check;
mod smoke;
pub use smoke::forward_on;
mod steps;
pub mod tool_cache;
mod watch;
mod waves;

use std::time::{Duration, Instant};

use crate::exec::Executor;
use crate::model::{ms, Error, Event, Outcome, Stage};
use crate::plan::{Plan, Step};

pub struct Runner<'a> {
    pub ex: &'a Executor,
    pub plan: &'a Plan,
    probes: probes::Probes,
    /// What steps hand on to later steps of the run.
    shared: steps::Shared,
}

impl<'a> Runner<'a> {
    pub fn new(ex: &'a Executor, plan: &'a Plan) -> Runner<'a> {
        Runner {
            ex,
            plan,
            probes: probes::Probes::default(),
            shared: steps::Shared::new(plan),
        }
    }

    /// Run every guard probe of the plan at once (they are independent reads), so a
    /// run where nothing changed pays for the slowest probe, not for their sum. The
    /// answers serve the guards until a guarded step runs.
    pub fn prefetch(&self, deadline: Instant) {
        self.probes.prefetch(self.ex, self.plan, deadline)
    }

    /// The helm preflight found, when the plan's helm commands were made for another
    /// (or an assumed) version: the caller re-plans with it before anything else runs.
    pub fn helm_replan(&self) -> Option<semver::Version> {
        let found = self
            .shared
            .helm_found
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()?;
        let planned = self.plan.helm.as_ref()?;
        (planned.dialect.version != Some(found.to_string())).then_some(found)
    }

    /// Run every stage of the plan in order; stop at the first failure.
    pub fn execute(&self) -> Result<(), Error> {
        self.execute_stages(|_| true)
    }

    /// Run the plan's stages that `which` selects, in order.
    pub fn execute_stages(&self, which: impl Fn(Stage) -> bool) -> Result<(), Error> {
        let mut stages: Vec<Stage> = self.plan.steps.iter().map(|s| s.stage).collect();
        stages.dedup();
        stages.retain(|s| which(*s));
        for stage in stages {
            let steps: Vec<&Step> = self
                .plan
                .steps
                .iter()
                .filter(|s| s.stage == stage)
                .collect();
            self.ex.events.emit(Event::StageStarted { stage });
            // Probes are cached within a stage: what a guard saw stays true until the
            // stage's own commands run after it.
            self.probes.clear();
            let started = Instant::now();
            let budget = self.plan.budget(stage);
            let deadline = started + budget;
            let mut result = self.run_groups(&steps, deadline);
            if let Err(e) = &mut result {
                if e.timed_out && Instant::now() + Duration::from_millis(500) >= deadline {
                    e.hint = Some(format!(
                        "the {stage} stage's time budget ({}) ran out; raise [timeouts] {stage} in pipeline.toml if the work is just slow",
                        humantime::format_duration(budget),
                    ));
                }
            }
            self.ex.events.emit(Event::StageFinished {
                stage,
                result: if result.is_err() {
                    Outcome::Failed
                } else {
                    Outcome::Ok
                },
                duration_ms: ms(started.elapsed()),
                commands: self.ex.commands_in(stage),
            });
            result?;
        }
        Ok(())
    }

    /// Waves one after another; within one, steps of different groups run at the
    /// same time, each group's steps (and ungrouped steps) in order.
    fn run_groups(&self, steps: &[&Step], deadline: Instant) -> Result<(), Error> {
        if let Some(done) = steps
            .first()
            .and_then(|s| self.run_graph(s.stage, steps, deadline))
        {
            return done;
        }
        let mut waves: Vec<u32> = steps.iter().map(|s| s.wave).collect();
        waves.sort_unstable();
        waves.dedup();
        for w in waves {
            let wave: Vec<&Step> = steps.iter().copied().filter(|s| s.wave == w).collect();
            self.run_wave(&wave, deadline)?;
        }
        Ok(())
    }

    fn run_wave(&self, steps: &[&Step], deadline: Instant) -> Result<(), Error> {
        let mut groups: Vec<(Option<&str>, Vec<&Step>)> = vec![];
        for s in steps {
            match groups
                .iter_mut()
                .find(|(g, _)| g.is_some() && *g == s.group.as_deref())
            {
                Some((_, v)) => v.push(s),
                None => groups.push((s.group.as_deref(), vec![s])),
            }
        }
        if groups.len() < 2 || groups.iter().any(|(g, _)| g.is_none()) {
            return steps.iter().try_for_each(|s| self.step(s, deadline));
        }
        let stage_of = steps[0].stage;
        std::thread::scope(|scope| {
            let handles: Vec<_> = groups
                .iter()
                .map(|(_, g)| {
                    scope.spawn(move || g.iter().try_for_each(|s| self.step(s, deadline)))
                })
                .collect();
            let results: Vec<Result<(), Error>> = handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(Error::new(stage_of, "a step's thread panicked")))
                })
                .collect();
            results.into_iter().collect()
        })
    }

    fn step(&self, step: &Step, deadline: Instant) -> Result<(), Error> {
        let stage = step.stage;
        if self.ex.cancelled() {
            return Err(Error::interrupted(Some(stage), "interrupted"));
        }
        let cx = steps::Cx {
            ex: self.ex,
            stage,
            deadline,
            cluster: &self.plan.cluster_spec,
            step,
            probes: &self.probes,
            shared: &self.shared,
        };
        if self.skipped(&cx)? {
            return Ok(());
        }
        let (id, title) = (step.id.clone(), step.title.clone());
        self.ex.events.emit(Event::StepStarted {
            stage,
            step: id,
            title,
        });
        let started = Instant::now();
        steps::execute(&cx, &step.action)?;
        self.ex.events.emit(Event::StepFinished {
            stage,
            step: step.id.clone(),
            duration_ms: ms(started.elapsed()),
        });
        Ok(())
    }

    /// The step's guard says it can be skipped (and the skip is reported); else the
    /// step will change what later probes see, unless it is one that changes nothing.
    fn skipped(&self, cx: &steps::Cx) -> Result<bool, Error> {
        let Some(g) = &cx.step.skip_if else {
            return Ok(false);
        };
        if let Some(reason) = steps::guard::verdict(cx, g)? {
            self.ex.events.emit(Event::StepSkipped {
                stage: cx.stage,
                step: cx.step.id.clone(),
                reason,
            });
            return Ok(true);
        }
        if g.changes_probes() {
            self.probes.mark_stale();
        }
        Ok(false)
    }
}
