//! render: before anything is built or the cluster is touched, `helm dependency build`
//! where a chart has dependencies, then `helm template` of each release with exactly
//! the values the upgrade will use — so a values-schema violation, a template error or
//! a missing required value fails in seconds. A release whose inputs (the deploy
//! digest) rendered fine before is not rendered again.

use std::path::{Path, PathBuf};

use crate::config;
use crate::model::{Error, Stage};
use crate::plan::digest::Hasher;
use crate::plan::{Action, Guard, Planner, Render, Rendered};
use crate::tools::helm;

/// The local charts a Chart.yaml depends on (`repository: "file://PATH"`), relative
/// to the chart.
fn file_dependencies(chart_yaml: &str) -> Vec<PathBuf> {
    chart_yaml
        .lines()
        .filter_map(|l| {
            let v = l.trim().strip_prefix("repository:")?.trim();
            let v = v.trim_matches(|c| c == '"' || c == '\'');
            v.strip_prefix("file://").map(PathBuf::from)
        })
        .collect()
}

/// A release input that cannot be read, as a planning error.
fn unreadable(r: &config::Release, what: &Path, e: std::io::Error) -> Error {
    Error::usage(format!(
        "release `{}`: cannot read {}: {e}",
        r.name,
        what.display()
    ))
}

impl Planner<'_> {
    /// A release's chart into the deploy digest. A chart with dependencies is hashed
    /// without what `helm dependency build` writes into it (`Chart.lock`, the
    /// `charts/*.tgz` archives, whose bytes differ on every build) and with the local
    /// charts it depends on instead; subcharts unpacked under `charts/` count.
    pub(in crate::plan) fn hash_chart(
        &self,
        h: &mut Hasher,
        r: &config::Release,
    ) -> Result<(), Error> {
        let root = &self.p.root;
        let err = |what: &Path, e: std::io::Error| unreadable(r, what, e);
        let chart_yaml =
            std::fs::read_to_string(self.p.path(&r.chart).join("Chart.yaml")).unwrap_or_default();
        if !chart_yaml.lines().any(|l| l.starts_with("dependencies:")) {
            h.tree(root, &r.chart).map_err(|e| err(&r.chart, e))?;
            return Ok(());
        }
        let listing = |dir: &Path| -> Result<Vec<String>, Error> {
            let mut v: Vec<String> = std::fs::read_dir(root.join(dir))
                .map_err(|e| err(dir, e))?
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect();
            v.sort();
            Ok(v)
        };
        for name in listing(&r.chart)? {
            let p = r.chart.join(&name);
            match name.as_str() {
                "Chart.lock" => {}
                "charts" if root.join(&p).is_dir() => {
                    for sub in listing(&p)?.into_iter().filter(|n| !n.ends_with(".tgz")) {
                        let q = p.join(sub);
                        h.tree(root, &q).map_err(|e| err(&q, e))?;
                    }
                }
                _ => {
                    h.tree(root, &p).map_err(|e| err(&p, e))?;
                }
            }
        }
        for dep in file_dependencies(&chart_yaml) {
            let p = r.chart.join(dep);
            h.tree(root, &p).map_err(|e| err(&p, e))?;
        }
        Ok(())
    }

    /// What a release's rendering depends on: its chart (and the local charts it
    /// depends on), values files and values — with image references left as written:
    /// a new image tag renders as well as the old one did, so an edit that only
    /// rebuilds an image does not render again (the deploy digest still changes).
    fn render_digest(
        &self,
        r: &config::Release,
        ns: &str,
        chart_yaml: &str,
    ) -> Result<String, Error> {
        let root = &self.p.root;
        let err = |what: &Path, e: std::io::Error| unreadable(r, what, e);
        let mut h = Hasher::default();
        h.part("release", r.release_name().as_bytes())
            .part("namespace", ns.as_bytes());
        // The chart without what `helm dependency build` writes into it (its bytes
        // differ on every build).
        let mut entries: Vec<String> = std::fs::read_dir(root.join(&r.chart))
            .map_err(|e| err(&r.chart, e))?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n != "charts" && n != "Chart.lock")
            .collect();
        entries.sort();
        for name in entries {
            let p = r.chart.join(name);
            h.tree(root, &p).map_err(|e| err(&p, e))?;
        }
        for dep in file_dependencies(chart_yaml) {
            let p = r.chart.join(dep);
            h.tree(root, &p).map_err(|e| err(&p, e))?;
        }
        for v in r.values.iter().chain(r.set_file.values()) {
            h.tree(root, v).map_err(|e| err(v, e))?;
        }
        for (flag, m) in [("set", &r.set), ("set_string", &r.set_string)] {
            for (k, v) in m {
                let v = if config::image_refs(v).is_empty() {
                    self.resolve(v)
                } else {
                    v.clone()
                };
                h.part(flag, format!("{k}={v}").as_bytes());
            }
        }
        for k in r.set_file.keys() {
            h.part("set_file", k.as_bytes());
        }
        Ok(h.hex()[..16].to_string())
    }

    /// Where a release's render is stamped, relative to the pipeline's root.
    pub(in crate::plan) fn render_stamp(&self, namespace: &str, release: &str) -> PathBuf {
        Path::new("target/slipway/rendered").join(format!("{}-{namespace}-{release}", self.context))
    }

    pub(in crate::plan) fn render(&mut self) -> Result<(), Error> {
        for r in &self.p.releases {
            let input = self.release_input(r)?;
            let rel = input.release.clone();
            let chart = self.p.path(&r.chart);
            let chart_yaml = std::fs::read_to_string(chart.join("Chart.yaml")).unwrap_or_default();
            let digest = self.render_digest(r, &input.namespace, &chart_yaml)?;
            let stamp = self.render_stamp(&input.namespace, &rel);
            let guard = |requires: Option<PathBuf>| {
                (!self.o.force).then(|| {
                    Guard::Rendered(Rendered {
                        release: rel.clone(),
                        digest: digest.clone(),
                        stamp: stamp.clone(),
                        requires,
                    })
                })
            };
            if chart_yaml.lines().any(|l| l.starts_with("dependencies:")) {
                let cmd = helm::dependency_build(&input.chart, self.budget(Stage::Render));
                // Not again while the chart and the local charts it depends on are
                // what rendered fine before, and what it built is still there.
                self.push(
                    Stage::Render,
                    format!("deps/{rel}"),
                    format!("helm dependency build {}", r.chart.display()),
                    Action::run(cmd),
                    guard(Some(r.chart.join("charts"))),
                );
            }
            self.push(
                Stage::Render,
                format!("render/{rel}"),
                format!("render {rel} with its values (helm template)"),
                Action::Render(Render {
                    release: rel.clone(),
                    chart: input.chart.clone(),
                    cmd: helm::template(&input.upgrade(&self.context, r)),
                    digest: digest.clone(),
                    stamp: stamp.clone(),
                }),
                guard(None),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn local_chart_dependencies_are_found() {
        let yaml = "apiVersion: v2\ndependencies:\n  - name: sample\n    repository: \"file://../../../helm/sample\"\n  - name: redis\n    repository: https://charts.example\n  - name: x\n    repository: 'file://x'\n";
        assert_eq!(
            super::file_dependencies(yaml),
            vec![
                std::path::PathBuf::from("../../../helm/sample"),
                std::path::PathBuf::from("x")
            ]
        );
    }
}
