//! `down`: uninstall a release (if installed) and the Secrets slipway made for it.

use serde::Serialize;

use crate::plan::brief::View;
use crate::plan::Step;

use super::StepKind;
use crate::model::{Cmd, Output};
use crate::tools::helm;

#[derive(Clone, Debug, Serialize)]
pub struct Uninstall {
    pub release: String,
    pub namespace: String,
    pub status: Cmd,
    pub uninstall: Cmd,
    pub list_secrets: Cmd,
    pub delete_secrets: Cmd,
}

impl StepKind for Uninstall {
    fn commands(&self) -> Vec<&Cmd> {
        vec![
            &self.status,
            &self.uninstall,
            &self.list_secrets,
            &self.delete_secrets,
        ]
    }

    fn render(&self, s: &mut String, v: &mut View, _step: &Step) {
        v.line(s, &self.status, "");
        v.line(s, &self.uninstall, "unless the release is not installed");
        v.line(s, &self.list_secrets, "");
        v.line(s, &self.delete_secrets, "if any are listed");
    }
}

impl Uninstall {
    /// From `status`'s output: is the release there to uninstall?
    pub fn installed(&self, st: &Output) -> bool {
        st.ok() || !helm::is_not_found(&st.stderr)
    }

    /// The Secrets `list_secrets` printed.
    pub fn secret_names(out: &str) -> Vec<&str> {
        out.lines().filter(|l| !l.trim().is_empty()).collect()
    }
}
