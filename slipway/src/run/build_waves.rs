//! The guard of a pre-build several images share (see `plan/stages/build_waves.rs`).

use std::time::Instant;

use super::{short_id, Runner};
use crate::model::{Cmd, Error, Stage};

impl Runner<'_> {
    /// `Some(reason)` when every one of `references` is already built: the shared
    /// pre-build is skipped only when no image of it is to be built.
    pub(super) fn images_built(
        &self,
        stage: Stage,
        references: &[String],
        probes: &[Cmd],
        deadline: Instant,
    ) -> Result<Option<String>, Error> {
        let mut ids = vec![];
        for (reference, probe) in references.iter().zip(probes) {
            let out = self.probe(stage, probe, deadline)?;
            if !out.ok() {
                return Ok(None);
            }
            ids.push(format!("{reference} ({})", short_id(&out.stdout)));
        }
        Ok(Some(format!("{} are already built", ids.join(", "))))
    }
}
