//! `plan`'s default text: what will run, in full; what would run only if something is
//! missing (a tool, the cluster, the node image) or failed, one `if …:` line each.
//! `plan --verbose` prints every command instead ([`super::Plan::to_text_verbose`]).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::{LocalFacts, Supply, ToolCheck, ToolUse};
use crate::model::{Cmd, Stdin};

/// How much a rendering shows, and what it has shown already.
pub struct View<'a> {
    pub verbose: bool,
    pub local: Option<&'a LocalFacts>,
    /// The plan's kube context.
    pub context: String,
    /// Commands printed already (a smoke stage's shared port-forwards).
    pub seen: BTreeSet<String>,
}

/// A command as a pasteable script; JSON on stdin as a one-line here-string unless
/// verbose (a heredoc of the indented JSON then).
pub(super) fn script(cmd: &Cmd, verbose: bool) -> String {
    let json = match &cmd.stdin {
        _ if verbose => None,
        Stdin::Text { text } => serde_json::from_str::<serde_json::Value>(text).ok(),
        Stdin::Secret(s) => serde_json::from_str::<serde_json::Value>(&s.masked()).ok(),
        _ => None,
    };
    match json {
        Some(v) => {
            let mut c = cmd.clone();
            c.stdin = Stdin::None;
            format!("{} <<< {}", c.script(), shell_words::quote(&v.to_string()))
        }
        None => cmd.script(),
    }
}

fn line(s: &mut String, cmd: &Cmd, comment: &str) {
    let text = script(cmd, false);
    let _ = if comment.is_empty() {
        writeln!(s, "{text}")
    } else {
        writeln!(s, "{text}  # {comment}")
    };
}

/// How a tool would be provisioned, in one clause.
fn supply_clause(t: &ToolCheck, p: &Supply) -> String {
    let how = match (&p.download, &p.build) {
        (Some(_), Some(_)) => "download its release (SHA-256 pinned), else build it",
        (Some(_), None) => "download its release (SHA-256 pinned)",
        (None, Some(_)) => "build it with slipway's recipe",
        (None, None) => "no way to get it here: preflight fails",
    };
    format!(
        "provision {} {} into {} ({how}; plan --verbose shows the commands)",
        t.tool,
        p.version,
        p.path.display()
    )
}

/// One tool of preflight, as the local facts decide; `false` when provisioning's
/// commands, which will run, are to follow in full.
pub(super) fn tool(s: &mut String, t: &ToolCheck, local: Option<&LocalFacts>) -> bool {
    let need = format!("{} >= {}: {}", t.tool, t.min, t.why);
    let used = local.map_or(ToolUse::Unknown, |f| f.tool_use(t));
    match used {
        ToolUse::Path { path, version } => {
            let _ = writeln!(
                s,
                "# {} {version} at {} will do (version remembered; {need})",
                t.tool,
                path.display()
            );
        }
        ToolUse::Ask { .. } | ToolUse::Unknown => {
            let otherwise = t.supply.as_ref().map_or(String::new(), |p| {
                format!("; if PATH has none that will do: {}", supply_clause(t, p))
            });
            line(s, &t.version, &format!("{need}{otherwise}"));
        }
        ToolUse::Cached { why, path, version } => {
            match version {
                Some(v) => {
                    let _ = writeln!(
                        s,
                        "# {} {v} at {} (slipway's cache, SHA-256 checked against its manifest first): {why} on PATH; {need}",
                        t.tool,
                        path.display()
                    );
                }
                None => {
                    let mut ask = t.version.clone();
                    ask.program = path.to_string_lossy().into_owned();
                    line(
                        s,
                        &ask,
                        &format!(
                            "slipway's cache, SHA-256 checked against its manifest first: {why} on PATH; {need}"
                        ),
                    );
                }
            }
            if let Some(p) = &t.supply {
                let _ = writeln!(
                    s,
                    "#   if its SHA-256 no longer matches: {}",
                    supply_clause(t, p)
                );
            }
        }
        ToolUse::Provision { why } => {
            if t.supply.is_some() {
                let _ = writeln!(s, "# {need}: {why}");
                return false;
            }
            let _ = writeln!(
                s,
                "# {need}: {why}, and provisioning is off: preflight fails"
            );
        }
    }
    true
}

/// The cluster's creation. `known`: the kubeconfig names the context, so it runs
/// only if the cluster is missing after all.
pub(super) fn create_cluster(
    s: &mut String,
    cmd: &Cmd,
    node: Option<&crate::providers::NodeImage>,
    known: bool,
) {
    if known {
        let from = node.map_or(String::new(), |n| {
            format!(
                " from {} (pulled if absent; {} built offline if it cannot be pulled)",
                n.image, n.offline
            )
        });
        let _ = writeln!(
            s,
            "#   if missing: {}{from}; plan --verbose shows every command",
            cmd.display()
        );
        return;
    }
    match node {
        None => line(s, cmd, ""),
        Some(n) => {
            line(s, &n.inspect, "the node image is here");
            let _ = writeln!(s, "#   if missing: {}", n.pull.display());
            line(s, cmd, "");
            let _ = writeln!(
                s,
                "#   if it cannot be pulled (no registry): build {} offline with slipway's recipe and create from it (plan --verbose)",
                n.offline
            );
        }
    }
}
