//! `slipway init`: a first pipeline.toml for a repository slipway has never seen (from
//! its Dockerfiles, Helm charts and scripts), or converted from a `skaffold.yaml`.
//! Every decision is returned with its reason; what cannot be decided is written as a
//! commented choice. The file is checked with [`crate::config::load`] before it is
//! offered, so `plan` accepts it.

pub mod chart;
pub mod draft;
pub mod manifests;
mod repo;
pub mod skaffold;

use std::path::{Path, PathBuf};

use crate::exec::Executor;
use crate::model::{Error, Stage, Vars};

pub use draft::Draft;
pub use repo::detect;

/// The files `init` offers.
#[derive(Debug, Clone, Default)]
pub struct Generated {
    pub pipeline: String,
    pub env_example: Option<String>,
    pub decisions: Vec<String>,
    pub unmapped: Vec<String>,
}

/// `helm template` through the executor (the only place processes start).
pub struct Helm<'a> {
    pub ex: &'a Executor,
}

impl Helm<'_> {
    /// Is helm there to ask?
    pub fn available(&self) -> bool {
        self.ex.locate("helm").is_some()
    }

    /// Render `chart` as release `release` with its defaults and `set_string`:
    /// the manifests, or helm's error.
    pub fn render(
        &self,
        chart: &chart::Chart,
        release: &str,
        namespace: &str,
        set_string: &[(String, String)],
    ) -> Result<String, String> {
        let dir = chart.dir.display().to_string();
        if chart.has_dependencies {
            let c = crate::tools::helm::dependency_build(&dir, std::time::Duration::from_secs(120));
            match self.ex.probe(Stage::Render, &c, None) {
                Ok(o) if o.ok() => {}
                Ok(o) => return Err(format!("helm dependency build {dir}: {}", o.stderr.trim())),
                Err(e) => return Err(format!("helm dependency build {dir}: {e}")),
            }
        }
        let c = crate::tools::helm::template_defaults(release, &dir, namespace, set_string);
        match self.ex.probe(Stage::Render, &c, None) {
            Ok(o) if o.ok() => Ok(o.stdout),
            Ok(o) => Err(o.stderr.trim().to_string()),
            Err(e) => Err(format!("helm template {e}")),
        }
    }
}

/// The header comment of a file `init` wrote.
fn header(from: Option<&Path>) -> Vec<String> {
    match from {
        Some(f) => vec![format!(
            "slipway pipeline converted by `slipway init --from {}`: read it, then run\n`slipway plan` and `slipway deploy-local`.",
            f.display()
        )],
        None => vec![
            "slipway pipeline written by `slipway init` from this repository's Dockerfiles,\nHelm charts and scripts: read it, then run `slipway plan` and `slipway deploy-local`."
                .into(),
        ],
    }
}

/// Render a draft and check it as `plan` will load it.
pub fn finish(root: &Path, d: &Draft, from: Option<&Path>) -> Result<Generated, Error> {
    let mut header = header(from);
    if !d.unmapped.is_empty() {
        let mut s = String::from("Not converted (see `slipway init` output):");
        for u in &d.unmapped {
            s.push_str("\n  - ");
            s.push_str(u);
        }
        header.push(s);
    }
    let pipeline = d.to_toml(&header);
    check(root, &pipeline)?;
    Ok(Generated {
        pipeline,
        env_example: d.env_example(),
        decisions: d.decisions.clone(),
        unmapped: d.unmapped.clone(),
    })
}

/// Load `text` as `root/pipeline.toml` would be, with every variable unset except
/// those with a default: a placeholder for a value the chart requires is the only
/// error allowed, and it names its line.
fn check(root: &Path, text: &str) -> Result<(), Error> {
    let tmp = tempfile::Builder::new()
        .prefix(".slipway-init-")
        .suffix(".toml")
        .tempfile_in(root)
        .map_err(|e| Error::usage(format!("cannot write in {}: {e}", root.display())))?;
    std::fs::write(tmp.path(), text)
        .map_err(|e| Error::usage(format!("cannot write {}: {e}", tmp.path().display())))?;
    let placeholders: Vec<String> = text
        .lines()
        .filter(|l| l.contains("${INIT_REQUIRED_"))
        .map(String::from)
        .collect();
    match crate::config::load(&crate::config::LoadOptions {
        file: tmp.path().to_path_buf(),
        profile: None,
        vars: Some(Vars::default()),
    }) {
        Ok(_) => Ok(()),
        Err(e) => {
            let all_placeholders = !placeholders.is_empty()
                && e.0.iter().all(|d| d.message.contains("INIT_REQUIRED_"));
            if all_placeholders {
                Ok(())
            } else {
                Err(Error::usage(format!(
                    "slipway init produced a pipeline it cannot load (a bug in init): {e}"
                )))
            }
        }
    }
}

/// Write pipeline.toml (never over an existing one without `force`) and
/// `.env.example` (an existing one is kept without `force`); the paths written.
/// An empty `g` writes nothing and only says whether writing would be refused.
pub fn write(root: &Path, g: &Generated, force: bool) -> Result<Vec<PathBuf>, Error> {
    let file = root.join("pipeline.toml");
    if !force && file.exists() {
        return Err(Error::usage(format!(
            "{} already exists: slipway init does not overwrite",
            file.display()
        ))
        .hint("pass --force to replace it, or --dry-run to see what init would write"));
    }
    let mut written = vec![];
    if g.pipeline.is_empty() {
        return Ok(written);
    }
    let mut files = vec![(file, g.pipeline.clone())];
    if let Some(env) = &g.env_example {
        let p = root.join(".env.example");
        if force || !p.exists() {
            files.push((p, env.clone()));
        }
    }
    for (p, text) in files {
        std::fs::write(&p, text)
            .map_err(|e| Error::usage(format!("cannot write {}: {e}", p.display())))?;
        written.push(p);
    }
    Ok(written)
}
