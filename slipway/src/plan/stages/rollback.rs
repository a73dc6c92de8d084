//! rollback: `helm rollback` each selected release to its previous revision (or the
//! one `--to` names), newest-deployed release first. Rollout, health and smoke
//! then check the result as after a deploy.

use crate::model::Stage;
use crate::plan::{Action, Planner};

impl Planner<'_> {
    pub(in crate::plan) fn rollback(&mut self) {
        let to = self.o.revision.map(|r| r.to_string());
        let releases: Vec<_> = self.releases().rev().collect();
        for r in releases {
            let rel = r.release_name().to_string();
            let cmd = self.helm_rollback(r, to.as_deref());
            self.push(
                Stage::Rollback,
                format!("rollback/{rel}"),
                match &to {
                    Some(n) => format!("helm rollback {rel} to revision {n}"),
                    None => format!("helm rollback {rel} to its previous revision"),
                },
                Action::run(cmd),
                None,
            );
        }
    }
}
