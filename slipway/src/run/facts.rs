//! The local facts `plan` is made with ([`crate::plan::LocalFacts`]): read from
//! files and stats only, never by spawning a tool, so `plan` stays fast and changes
//! nothing. Which facts, exactly:
//!
//! - per tool, the binary `PATH` finds (a stat per `PATH` entry) and the version
//!   preflight remembered for it (`tool-versions.json`, see [`super::tool_cache`]);
//! - the binaries slipway's cache manifest records (`toolchain/manifest.json`), that
//!   exist (a stat each; their SHA-256 is checked by the run, not here);
//! - the context names in the kubeconfig (`$KUBECONFIG`'s files, else
//!   `~/.kube/config`).
//!
//! A fact that cannot be read is absent: the plan then shows every command that may
//! run.

use std::path::PathBuf;

use crate::plan::LocalFacts;

use super::tool_cache::{Cache, Manifest};

pub fn read() -> LocalFacts {
    let cache = Cache::user();
    let remembered = |p: &std::path::Path| {
        cache
            .as_ref()
            .and_then(|c| c.lookup(p))
            .map(|v| v.to_string())
    };
    let mut f = LocalFacts::default();
    for t in crate::tools::registry::ToolId::all().map(|t| t.name()) {
        if let Ok(path) = which::which(t) {
            let v = remembered(&path);
            f.on_path.insert(t.to_string(), (path, v));
        }
    }
    if let Some(m) = Manifest::user() {
        for path in m.recorded() {
            if path.is_file() {
                let v = remembered(&path);
                f.cached.insert(path, v);
            }
        }
    }
    f.contexts = kubeconfig_files()
        .into_iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|text| contexts(&text))
        .collect();
    f
}

/// The local registry's binary, when its recipe has built it into slipway's cache (a
/// stat): kind's `delivery = "auto"` then delivers through the registry.
pub fn registry_built() -> Option<PathBuf> {
    let bin = crate::tools::provision::registry_binary(&crate::tools::provision::cache_root()?);
    bin.is_file().then_some(bin)
}

fn kubeconfig_files() -> Vec<PathBuf> {
    match std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        Some(v) => std::env::split_paths(&v).collect(),
        None => std::env::var_os("HOME")
            .map(|h| vec![PathBuf::from(h).join(".kube/config")])
            .unwrap_or_default(),
    }
}

/// The context names of one kubeconfig file (none when it does not parse).
fn contexts(text: &str) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Named {
        name: String,
    }
    #[derive(serde::Deserialize)]
    struct Config {
        #[serde(default)]
        contexts: Option<Vec<Named>>,
    }
    serde_norway::from_str::<Config>(text)
        .ok()
        .and_then(|c| c.contexts)
        .unwrap_or_default()
        .into_iter()
        .map(|n| n.name)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn contexts_are_read_from_a_kubeconfig_and_a_broken_one_is_none() {
        let text = "apiVersion: v1\nkind: Config\ncontexts:\n- name: kind-slipway\n  context: {cluster: kind-slipway, user: kind-slipway}\n- name: prod\n  context: {cluster: p}\n";
        assert_eq!(super::contexts(text), vec!["kind-slipway", "prod"]);
        assert!(super::contexts("contexts: [").is_empty());
        assert!(super::contexts("apiVersion: v1\ncontexts: null\n").is_empty());
    }
}
