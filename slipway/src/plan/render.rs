//! `plan`'s text: the plan data as a shell script, grouped by stage, every command
//! pasteable (placeholders such as `{LOCAL_PORT}` stand for run-time values). Each
//! kind of step renders itself (`steps/<kind>.rs`); this file renders the header,
//! the stages and what a step's title and guard say.

use std::fmt::Write as _;

use super::brief::{self, View};
use super::{Action, Plan, Step};
use crate::model::Cmd;

fn line_as(s: &mut String, cmd: &Cmd, comment: &str, verbose: bool) {
    let text = brief::script(cmd, verbose);
    if comment.is_empty() {
        let _ = writeln!(s, "{text}");
    } else {
        let _ = writeln!(s, "{text}  # {comment}");
    }
}

fn line(s: &mut String, cmd: &Cmd, comment: &str) {
    line_as(s, cmd, comment, true)
}

impl View<'_> {
    /// One line of a step: a command (shortened unless verbose) and what it is for.
    pub(crate) fn line(&self, s: &mut String, cmd: &Cmd, comment: &str) {
        line_as(s, cmd, comment, self.verbose)
    }
}

fn step(s: &mut String, step: &Step, v: &mut View) {
    // By default a smoke check's title goes with what it expects, after its
    // commands, the capacity check's with its one command's comment, and a guard
    // on its step's title line.
    let smoke = !v.verbose && matches!(step.action, Action::Smoke(_) | Action::Capacity(_));
    match &step.skip_if {
        Some(g) if !v.verbose => {
            let _ = writeln!(s, "# {}: {}", step.title, g.describe());
        }
        _ if smoke => {}
        _ => {
            let _ = writeln!(s, "# {}", step.title);
        }
    }
    if step.wave > 0 {
        let _ = writeln!(
            s,
            "#   wave {}: after the releases it needs are deployed and rolled out",
            step.wave + 1
        );
    }
    if let Some(g) = step.skip_if.as_ref().filter(|_| v.verbose) {
        let _ = writeln!(s, "#   {}", g.describe());
    }
    step.action.kind().render(s, v, step);
}

impl Plan {
    /// The plan as a shell script, grouped by stage, each command pasteable: what
    /// will run in full; what runs only if something is missing or fails, one line
    /// each (decided from the plan's [`super::LocalFacts`] when it has them).
    pub fn to_text(&self) -> String {
        self.render(false)
    }

    /// Every command the run may spawn, in full (`plan --verbose`).
    pub fn to_text_verbose(&self) -> String {
        self.render(true)
    }

    fn render(&self, verbose: bool) -> String {
        let mut view = View {
            verbose,
            local: self.local.as_ref(),
            context: self.context.clone(),
            seen: Default::default(),
        };
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# slipway plan: {} — job {}, profile {}",
            self.project, self.job, self.profile
        );
        let _ = writeln!(
            s,
            "# provider {}, cluster {}, kube context {}",
            self.provider,
            self.cluster,
            if self.context.is_empty() {
                "(none)"
            } else {
                &self.context
            }
        );
        for l in self.selection.iter().flat_map(|x| x.lines()) {
            let _ = writeln!(s, "# {l}");
        }
        for i in &self.images {
            let _ = writeln!(s, "# image {} -> {}", i.name, i.reference);
            if !i.skipped_inputs.is_empty() {
                let _ = writeln!(
                    s,
                    "#   not hashed (not regular files): {}",
                    i.skipped_inputs.join(", ")
                );
            }
        }
        if let Some(h) = &self.helm {
            let _ = writeln!(s, "# {}", h.dialect.describe());
            for (release, d) in &h.decisions {
                let _ = writeln!(s, "#   release {release}: {}", d.join("; "));
            }
        }
        let mut stage = None;
        for st in &self.steps {
            if stage != Some(st.stage) {
                stage = Some(st.stage);
                let _ = write!(
                    s,
                    "\n## {} (exit code {} on failure, budget {})\n",
                    st.stage,
                    st.stage.exit_code(),
                    humantime::format_duration(self.budget(st.stage))
                );
                if let Some(l) = (st.stage == crate::model::Stage::Build)
                    .then(|| super::stages::build_waves::describe(self))
                    .flatten()
                {
                    let _ = writeln!(s, "# {l}");
                }
            }
            step(&mut s, st, &mut view);
        }
        if !self.on_failure.is_empty() && !verbose {
            let _ = writeln!(
                s,
                "\n## if the job fails: each release's `helm status` and `helm history`, for the diagnosis bundle (plan --verbose)"
            );
        } else if !self.on_failure.is_empty() {
            let _ = writeln!(s, "\n## if the job fails: for the diagnosis bundle");
            for c in &self.on_failure {
                line(&mut s, c, "");
            }
        }
        if let Some(d) = &self.dev {
            let _ = writeln!(
                s,
                "\n## dev: the steps above run again on a change to a watched path"
            );
            for w in &d.watch {
                let mut affects: Vec<String> =
                    w.images.iter().map(|i| format!("image {i}")).collect();
                affects.extend(w.releases.iter().map(|r| format!("release {r}")));
                let _ = writeln!(s, "# watch {}  -> {}", w.path, affects.join(", "));
            }
            for f in &d.logs {
                line(
                    &mut s,
                    &f.cmd,
                    &format!("logs of release {}, restarted when it rolls out", f.release),
                );
            }
            for f in &d.forwards {
                line(
                    &mut s,
                    &f.cmd,
                    &format!("service {}: started again when its pod goes", f.service),
                );
            }
        }
        s
    }
}
