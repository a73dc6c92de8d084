//! `plan`'s text: the plan data as a shell script, grouped by stage, every command
//! pasteable (placeholders such as `{LOCAL_PORT}` stand for run-time values).

use std::fmt::Write as _;

use super::steps::line;
use super::{Plan, Step};

fn step(s: &mut String, step: &Step) {
    let _ = writeln!(s, "# {}", step.title);
    if step.wave > 0 {
        let _ = writeln!(
            s,
            "#   wave {}: after the releases it needs are deployed and rolled out",
            step.wave + 1
        );
    }
    if let Some(g) = &step.skip_if {
        let _ = writeln!(s, "#   {}", g.describe());
    }
    step.action.kind().render(s);
}

impl Plan {
    /// The plan as a shell script: grouped by stage, each command pasteable.
    pub fn to_text(&self) -> String {
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
            }
            step(&mut s, st);
        }
        if !self.on_failure.is_empty() {
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
