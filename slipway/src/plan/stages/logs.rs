//! logs: what the release's containers print, each line prefixed with its pod and
//! container — per release by the `app.kubernetes.io/instance` label helm charts
//! set, or one workload (`deployment/NAME`). With `--follow`, releases stream side by
//! side until Ctrl-C.

use crate::model::Stage;
use crate::plan::{Action, Planner};
use crate::tools::kubectl;

impl Planner<'_> {
    pub(in crate::plan) fn logs(&mut self) {
        let (follow, tail) = (self.o.follow, self.o.tail);
        if let Some(w) = self.o.workload.clone() {
            let ns = self
                .o
                .namespace
                .clone()
                .unwrap_or_else(|| self.p.project.namespace.clone());
            let cmd = kubectl::logs_of(&self.context, &ns, &w, tail, follow);
            self.push(
                Stage::Logs,
                format!("logs/{w}"),
                format!("logs of {w}"),
                Action::run(cmd),
                None,
            );
            return;
        }
        let releases: Vec<_> = self.releases().collect();
        for r in releases {
            let ns = self.namespace(r);
            let rel = r.release_name().to_string();
            let cmd = kubectl::logs_of(
                &self.context,
                &ns,
                &format!("--selector=app.kubernetes.io/instance={rel}"),
                tail,
                follow,
            );
            self.push(
                Stage::Logs,
                format!("logs/{rel}"),
                format!("logs of release {rel}"),
                Action::run(cmd),
                None,
            );
            // Followed releases stream at the same time.
            if let Some(s) = self.steps.last_mut() {
                s.group = Some(rel);
            }
        }
    }
}
