//! `status`: one release's state, workloads and pods.

use serde::Serialize;

use crate::plan::brief::View;
use crate::plan::Step;

use super::{Redact, StepKind};
use crate::model::{Cmd, Error, Output, Stage};
use crate::tools::helm;

#[derive(Clone, Debug, Serialize)]
pub struct Status {
    pub release: String,
    pub namespace: String,
    pub status: Cmd,
    pub discover: Cmd,
    pub pods: Cmd,
}

impl StepKind for Status {
    fn commands(&self) -> Vec<&Cmd> {
        vec![&self.status, &self.discover, &self.pods]
    }

    fn render(&self, s: &mut String, v: &mut View, _step: &Step) {
        v.line(s, &self.status, "");
        v.line(s, &self.discover, "");
        v.line(s, &self.pods, "per workload");
    }
}

impl Status {
    /// The release's state and revision (`None`: not installed) from `status`'s output.
    pub fn state(
        &self,
        stage: Stage,
        st: &Output,
        redact: Redact,
    ) -> Result<(String, Option<u32>), Error> {
        match (helm::parse_status(&st.stdout), st.ok()) {
            (Some(s), _) => Ok((s.status, Some(s.version))),
            (None, false) if helm::is_not_found(&st.stderr) => {
                Ok(("not installed".to_string(), None))
            }
            (None, _) => Err(Error {
                command: Some(redact(&self.status.display())),
                child_exit: Some(st.code),
                tail: crate::model::last_lines(&redact(&st.stderr), 10),
                ..Error::new(
                    stage,
                    format!("cannot read the status of release {}", self.release),
                )
            }),
        }
    }
}
