//! deploy: `helm dependency build` where the chart has dependencies, a gate on
//! releases stuck pending, then `helm upgrade --install` — skipped when the deployed
//! revision carries the same deploy digest (chart files, values, image references).

use std::path::Path;

use crate::config;
use crate::model::{Cmd, Error, Stage};
use crate::plan::digest::Hasher;
use crate::plan::{Action, Guard, Planner};
use crate::tools::helm;

impl Planner<'_> {
    pub(in crate::plan) fn deploy(&mut self) -> Result<(), Error> {
        let root = self.p.root.clone();
        for r in &self.p.releases {
            let ns = self.namespace(r);
            let rel = r.release_name().to_string();
            let chart = self.p.path(&r.chart);
            let chart_yaml = std::fs::read_to_string(chart.join("Chart.yaml")).unwrap_or_default();
            if chart_yaml.lines().any(|l| l.starts_with("dependencies:")) {
                let cmd = helm::dependency_build(&self.rel(&r.chart), self.budget(Stage::Deploy));
                self.push(
                    Stage::Deploy,
                    format!("deps/{rel}"),
                    format!("helm dependency build {}", r.chart.display()),
                    Action::Run { cmd },
                    None,
                );
            }
            let set: Vec<(String, String)> = r
                .set
                .iter()
                .map(|(k, v)| (k.clone(), self.resolve(v)))
                .collect();
            let set_string: Vec<(String, String)> = r
                .set_string
                .iter()
                .map(|(k, v)| (k.clone(), self.resolve(v)))
                .collect();
            let set_file: Vec<(String, String)> = r
                .set_file
                .iter()
                .map(|(k, v)| (k.clone(), self.rel(v)))
                .collect();
            let values: Vec<String> = r.values.iter().map(|v| self.rel(v)).collect();

            let mut h = Hasher::default();
            h.part("release", rel.as_bytes())
                .part("namespace", ns.as_bytes());
            let hash_err = |what: &Path, e: std::io::Error| {
                Error::usage(format!(
                    "release `{}`: cannot read {}: {e}",
                    r.name,
                    what.display()
                ))
            };
            h.tree(&root, &r.chart).map_err(|e| hash_err(&r.chart, e))?;
            for v in r.values.iter().chain(r.set_file.values()) {
                h.tree(&root, v).map_err(|e| hash_err(v, e))?;
            }
            for (flag, pairs) in [
                ("set", &set),
                ("set_string", &set_string),
                ("set_file", &set_file),
            ] {
                for (k, v) in pairs {
                    h.part(flag, format!("{k}={v}").as_bytes());
                }
            }
            h.part(
                "flags",
                format!("wait={} atomic={}", r.wait, r.atomic).as_bytes(),
            );
            let digest = h.hex()[..16].to_string();

            let status = helm::status(&rel, &ns, &self.context);
            self.push(
                Stage::Deploy,
                format!("gate/{rel}"),
                format!("check release {rel} is not stuck pending"),
                Action::ReleaseGate {
                    release: rel.clone(),
                    status: status.clone(),
                    on_pending: r.on_pending,
                    rollback: helm::rollback(&rel, &ns, &self.context, r.timeout.0),
                },
                None,
            );
            let cmd = helm::upgrade(&helm::Upgrade {
                release: &rel,
                chart: &self.rel(&r.chart),
                namespace: &ns,
                context: &self.context,
                values,
                set,
                set_string,
                set_file,
                wait: r.wait,
                atomic: r.atomic,
                timeout: r.timeout.0,
                digest: &digest,
            });
            let guard = (!self.o.force).then(|| Guard::ReleaseCurrent {
                release: rel.clone(),
                digest: digest.clone(),
                probe: status,
            });
            self.push(
                Stage::Deploy,
                format!("helm/{rel}"),
                format!("helm upgrade --install {rel}"),
                Action::Run { cmd },
                guard,
            );
        }
        Ok(())
    }

    pub(in crate::plan) fn rollback_for(&self, r: &config::Release) -> Option<Cmd> {
        r.rollback_on_failure.then(|| {
            helm::rollback(
                r.release_name(),
                &self.namespace(r),
                &self.context,
                r.timeout.0,
            )
        })
    }
}
