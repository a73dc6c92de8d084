//! What this machine already has, as far as cheap local facts say (read by the
//! caller, without spawning anything: see `run::facts`), and what the plan decides
//! from them: which tool binary a run will use, and whether the cluster slipway
//! manages is known. A decision made here only shapes what `plan` shows first; the
//! run still decides from its own probes, and every command it may spawn stays in
//! the plan's data (and in `plan --verbose`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::Serialize;

use super::ToolCheck;

/// Local facts, each from a file read or a stat.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct LocalFacts {
    /// Per tool, the binary PATH finds and the version preflight remembered for it
    /// (`tool-versions.json`: only while the binary's size, mtime and inode are the
    /// ones it saw). A tool absent here is not on PATH.
    pub on_path: BTreeMap<String, (PathBuf, Option<String>)>,
    /// Binaries in slipway's cache that its manifest records (their SHA-256 is
    /// verified by the run before use), with a remembered version if any.
    pub cached: BTreeMap<PathBuf, Option<String>>,
    /// The contexts the kubeconfig (`$KUBECONFIG`, else `~/.kube/config`) names.
    pub contexts: BTreeSet<String>,
}

/// Which binary of a tool the run will use, as the facts say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToolUse {
    /// PATH's binary, at a remembered version that will do: no process is spawned.
    Path { path: PathBuf, version: String },
    /// PATH's binary, whose version the run asks (and remembers).
    Ask { path: PathBuf },
    /// None on PATH will do; slipway's cache has the pinned binary (SHA-256 checked
    /// against its manifest first), at a remembered version or asked.
    Cached {
        why: String,
        path: PathBuf,
        version: Option<String>,
    },
    /// None on PATH will do and the cache has none: it is provisioned.
    Provision { why: String },
    /// No facts were read (a plan made without them): PATH's binary is asked.
    Unknown,
}

fn will_do(version: &str, min: &str) -> bool {
    match (
        semver::Version::parse(version),
        semver::Version::parse(min.trim_start_matches('v')),
    ) {
        (Ok(v), Ok(m)) => v >= m,
        _ => false,
    }
}

impl LocalFacts {
    /// What the run will do for `t`, as far as these facts tell.
    pub fn tool_use(&self, t: &ToolCheck) -> ToolUse {
        let why = match self.on_path.get(t.tool.name()) {
            Some((path, Some(v))) if will_do(v, &t.min) => {
                return ToolUse::Path {
                    path: path.clone(),
                    version: v.clone(),
                }
            }
            Some((path, Some(v))) => format!("{v} at {} is older than {}", path.display(), t.min),
            Some((path, None)) => return ToolUse::Ask { path: path.clone() },
            None => "not on PATH".to_string(),
        };
        let Some(s) = &t.supply else {
            // The run fails preflight: the version command is not even asked.
            return ToolUse::Provision { why };
        };
        match self.cached.get(&s.path) {
            Some(version) => ToolUse::Cached {
                why,
                path: s.path.clone(),
                version: version.clone().filter(|v| will_do(v, &t.min)),
            },
            None => ToolUse::Provision { why },
        }
    }

    /// The kubeconfig names `context` (the cluster slipway manages is most likely up).
    pub fn knows_context(&self, context: &str) -> bool {
        self.contexts.contains(context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Cmd;

    fn check(tool: &str, supply: Option<PathBuf>) -> ToolCheck {
        ToolCheck {
            tool: crate::tools::registry::ToolId::named(tool).expect("a declared tool"),
            min: "0.20.0".into(),
            why: "why".into(),
            version: Cmd::new(tool, ["version"]),
            supply: supply.map(|path| super::super::Supply {
                version: "v0.30.0".into(),
                path,
                download: None,
                unpinned: None,
                build: None,
                packages: vec![],
                install_packages: false,
            }),
        }
    }

    #[test]
    fn a_remembered_version_that_will_do_is_used_and_an_older_one_goes_to_the_cache() {
        let cached = PathBuf::from("/c/kind-v0.30.0");
        let mut f = LocalFacts::default();
        let t = check("kind", Some(cached.clone()));
        assert_eq!(
            f.tool_use(&t),
            ToolUse::Provision {
                why: "not on PATH".into()
            }
        );
        f.cached.insert(cached.clone(), Some("0.30.0".into()));
        assert_eq!(
            f.tool_use(&t),
            ToolUse::Cached {
                why: "not on PATH".into(),
                path: cached.clone(),
                version: Some("0.30.0".into())
            }
        );
        f.on_path.insert(
            "kind".into(),
            ("/usr/bin/kind".into(), Some("0.19.0".into())),
        );
        assert!(
            matches!(f.tool_use(&t), ToolUse::Cached { why, .. } if why.contains("older than 0.20.0"))
        );
        f.on_path
            .insert("kind".into(), ("/usr/bin/kind".into(), None));
        assert_eq!(
            f.tool_use(&t),
            ToolUse::Ask {
                path: "/usr/bin/kind".into()
            }
        );
        f.on_path.insert(
            "kind".into(),
            ("/usr/bin/kind".into(), Some("0.30.1".into())),
        );
        assert_eq!(
            f.tool_use(&t),
            ToolUse::Path {
                path: "/usr/bin/kind".into(),
                version: "0.30.1".into()
            }
        );
    }
}
