//! render: before anything is built or the cluster is touched, `helm dependency build`
//! where a chart has dependencies, then `helm template` of each release with exactly
//! the values the upgrade will use — so a values-schema violation, a template error or
//! a missing required value fails in seconds. A release whose inputs (the deploy
//! digest) rendered fine before is not rendered again.

use crate::model::{Error, Stage};
use crate::plan::{Action, Guard, Planner};
use crate::tools::helm;

impl Planner<'_> {
    pub(in crate::plan) fn render(&mut self) -> Result<(), Error> {
        for r in &self.p.releases {
            let input = self.release_input(r)?;
            let rel = input.release.clone();
            let chart = self.p.path(&r.chart);
            let chart_yaml = std::fs::read_to_string(chart.join("Chart.yaml")).unwrap_or_default();
            if chart_yaml.lines().any(|l| l.starts_with("dependencies:")) {
                let cmd = helm::dependency_build(&input.chart, self.budget(Stage::Render));
                self.push(
                    Stage::Render,
                    format!("deps/{rel}"),
                    format!("helm dependency build {}", r.chart.display()),
                    Action::Run { cmd },
                    None,
                );
            }
            // Relative to the pipeline's root.
            let stamp = std::path::Path::new("target/slipway/rendered")
                .join(format!("{}-{}-{rel}", self.context, input.namespace));
            let guard = (!self.o.force).then(|| Guard::Rendered {
                release: rel.clone(),
                digest: input.digest.clone(),
                stamp: stamp.clone(),
            });
            self.push(
                Stage::Render,
                format!("render/{rel}"),
                format!("render {rel} with its values (helm template)"),
                Action::Render {
                    release: rel.clone(),
                    chart: input.chart.clone(),
                    cmd: helm::template(&input.upgrade(&self.context, r)),
                    digest: input.digest.clone(),
                    stamp,
                },
                guard,
            );
        }
        Ok(())
    }
}
