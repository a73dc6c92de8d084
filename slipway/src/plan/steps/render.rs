//! `helm template` a release; on success remember its digest in `stamp`.

use std::path::PathBuf;

use serde::Serialize;

use crate::plan::brief::View;
use crate::plan::Step;

use super::StepKind;
use crate::model::{Cmd, Error};

#[derive(Clone, Debug, Serialize)]
pub struct Render {
    pub release: String,
    pub chart: String,
    pub cmd: Cmd,
    pub digest: String,
    pub stamp: PathBuf,
}

impl StepKind for Render {
    fn commands(&self) -> Vec<&Cmd> {
        vec![&self.cmd]
    }

    fn render(&self, s: &mut String, v: &mut View, _step: &Step) {
        v.line(
            s,
            &self.cmd,
            "its workloads' resource requests are kept for the capacity check",
        )
    }
}

impl Render {
    /// A chart that does not render: the error located by what helm says (the values
    /// schema's paths, the template and line).
    pub fn finding(&self, mut err: Error) -> Error {
        let (release, chart) = (&self.release, &self.chart);
        let problems: Vec<String> = err
            .tail
            .iter()
            .map(|l| {
                l.trim()
                    .trim_start_matches("Error: ")
                    .trim_start_matches("- ")
                    .to_string()
            })
            .filter(|l| !l.is_empty() && !l.ends_with(':') && !l.starts_with("Use --debug"))
            .collect();
        err.message = format!(
            "release {release}: chart {chart} does not render with the pipeline's values: {}",
            problems
                .first()
                .cloned()
                .unwrap_or_else(|| "see helm's output".into())
        );
        err.hint = Some(format!(
            "fix the value helm names in pipeline.toml ([releases.{release}] set / set_string / values) or in the chart; nothing was built or deployed. Reproduce with the command above"
        ));
        err
    }
}
