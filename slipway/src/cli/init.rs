//! `slipway init`: detect or convert, check, then print or write. The decisions go to
//! stderr, a `--dry-run` file to stdout.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Global;
use crate::exec::{Executor, Signals};
use crate::init::{self, Helm};
use crate::model::{exit, Error, Event, Sink};
use crate::report::Reporter;

/// Where pipeline.toml goes: next to `--config`, else here.
fn root_of(g: &Global) -> PathBuf {
    g.config
        .as_deref()
        .and_then(Path::parent)
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

pub(super) fn run(
    g: &Global,
    from: Option<&Path>,
    force: bool,
    dry_run: bool,
    reporter: &Arc<Reporter>,
) -> i32 {
    let root = root_of(g);
    let result = (|| -> Result<(), Error> {
        if !dry_run {
            // Refuse before reading anything.
            init::write(&root, &init::Generated::default(), force).map(|_| ())?;
        }
        let mut from_rel: Option<PathBuf> = None;
        let draft = match from {
            Some(f) => {
                // Given from here; paths in the pipeline are relative to its directory.
                let abs_root = std::fs::canonicalize(&root).unwrap_or(root.clone());
                let f = std::fs::canonicalize(f)
                    .ok()
                    .and_then(|a| a.strip_prefix(&abs_root).ok().map(Path::to_path_buf))
                    .ok_or_else(|| {
                        Error::usage(format!(
                            "{}: not a file inside {} (where pipeline.toml goes)",
                            f.display(),
                            abs_root.display()
                        ))
                    })?;
                let d = init::skaffold::convert(&root, &f)?;
                from_rel = Some(f);
                d
            }
            None => {
                let sink: Arc<dyn Sink> = reporter.clone();
                let ex = Executor::new(root.clone(), sink, Default::default(), Signals::install());
                // A helm slipway provisioned earlier serves when PATH has none.
                crate::run::adopt_provisioned(&ex, &|_| None);
                init::detect(&root, Some(&Helm { ex: &ex }))
            }
        };
        let out = init::finish(&root, &draft, from_rel.as_deref())?;
        for d in &out.decisions {
            reporter.line(&format!("init: {d}"));
        }
        for u in &out.unmapped {
            reporter.line(&format!("init: not converted: {u}"));
        }
        if dry_run {
            let mut text = out.pipeline.clone();
            if let Some(env) = &out.env_example {
                text.push_str("\n# ---- .env.example ----\n");
                text.push_str(env);
            }
            reporter.emit(Event::Output { text });
            reporter.line("init: --dry-run: nothing written");
            return Ok(());
        }
        let written = init::write(&root, &out, force)?;
        for p in &written {
            reporter.line(&format!("init: wrote {}", p.display()));
        }
        if out.env_example.is_some() && written.len() == 1 {
            let vars: Vec<&str> = out
                .env_example
                .as_deref()
                .unwrap_or("")
                .lines()
                .filter_map(|l| l.strip_suffix('='))
                .collect();
            reporter.line(&format!(
                "init: kept the existing .env.example (--force replaces it); pipeline.toml reads {}",
                vars.join(", ")
            ));
        }
        reporter.line("init: next: `slipway plan`, then `slipway deploy-local`");
        Ok(())
    })();
    match result {
        Ok(()) => exit::OK,
        Err(e) => {
            let code = e.exit_code();
            reporter.emit(Event::error(&e));
            code
        }
    }
}
