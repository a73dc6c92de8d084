//! The capacity preflight's step: first in the deploy stage, before any release is
//! deployed, the nodes' allocatable against what the render stage saved of each
//! release's workloads (their resource requests, times replicas).

use std::path::{Path, PathBuf};

use crate::model::Stage;
use crate::plan::{Action, Capacity, Planner};
use crate::tools::kubectl;

/// The capacity check's group in the deploy stage.
pub const CAPACITY: &str = "capacity";

/// Where the render of the release stamped `stamp` keeps its workloads' requests.
pub fn requests_file(stamp: &Path) -> PathBuf {
    let mut s = stamp.as_os_str().to_owned();
    s.push(".requests.json");
    PathBuf::from(s)
}

impl Planner<'_> {
    /// Plan the check when this job renders the releases (whose requests it reads),
    /// as the group [`CAPACITY`] every release's deploy group waits for.
    pub(in crate::plan) fn capacity(&mut self) {
        if self.p.releases.is_empty() || !self.steps.iter().any(|s| s.stage == Stage::Render) {
            return;
        }
        let requests = self
            .p
            .releases
            .iter()
            .map(|r| {
                let stamp = self.render_stamp(&self.namespace(r), r.release_name());
                (r.release_name().to_string(), requests_file(&stamp))
            })
            .collect();
        self.push(
            Stage::Deploy,
            "capacity".into(),
            "the releases' resource requests against the nodes' allocatable".into(),
            Action::Capacity(Capacity {
                nodes: kubectl::get_nodes(&self.context),
                requests,
                strict: self.o.strict,
            }),
            None,
        );
        if let Some(s) = self.steps.last_mut() {
            s.group = Some(CAPACITY.into());
        }
    }
}
