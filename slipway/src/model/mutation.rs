//! Which cluster a command changes, read from its tool and verb (never listed per
//! call site): the executor runs such a command only for a target the context guard
//! approved, and planning asks for the guard whenever a plan holds one.
//!
//! kind's cluster `N` is the kube context `kind-N` and minikube's profile `P` is the
//! context `P`, so every cluster is named by its context.

use serde::Serialize;

use super::Cmd;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Target {
    /// The cluster behind a kube context.
    Context(String),
    /// A registry images are pushed to, which a cluster pulls from.
    Registry(String),
    /// A command that changes a cluster but does not say which (it would use the
    /// kubeconfig's current context): never approved.
    Unpinned,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Context(c) => write!(f, "context {c}"),
            Target::Registry(h) => write!(f, "registry {h}"),
            Target::Unpinned => write!(f, "the kubeconfig's current context (no context given)"),
        }
    }
}

/// kubectl verbs that change objects (`rollout` only with the sub-verbs below).
const KUBECTL_VERBS: &[&str] = &[
    "apply",
    "create",
    "delete",
    "patch",
    "replace",
    "scale",
    "set",
    "annotate",
    "label",
    "edit",
    "expose",
    "run",
    "autoscale",
    "taint",
    "drain",
    "cordon",
    "uncordon",
    "certificate",
    "debug",
    // Into a running pod: `dev`'s sync replaces files and restarts the process.
    "exec",
    "cp",
];
const KUBECTL_ROLLOUT: &[&str] = &["restart", "undo", "pause", "resume"];
/// kubectl's global flags that take a value (before the verb).
const KUBECTL_VALUED: &[&str] = &[
    "--context",
    "--namespace",
    "-n",
    "--kubeconfig",
    "--cluster",
    "--user",
    "--server",
    "-s",
    "--as",
    "--token",
];
const HELM_VERBS: &[&str] = &[
    "upgrade",
    "install",
    "uninstall",
    "delete",
    "rollback",
    "test",
];

/// The value of `--name VALUE` / `--name=VALUE`.
fn flag<'a>(args: &'a [String], names: &[&str]) -> Option<&'a str> {
    args.iter().enumerate().find_map(|(i, a)| {
        names.iter().find_map(|n| {
            if a == n {
                args.get(i + 1).map(String::as_str)
            } else {
                a.strip_prefix(n).and_then(|r| r.strip_prefix('='))
            }
        })
    })
}

/// The positional arguments, global flags (and their values) skipped.
fn positional<'a>(args: &'a [String], valued: &[&str]) -> Vec<&'a str> {
    let mut out = vec![];
    let mut skip = false;
    for a in args {
        if std::mem::take(&mut skip) {
            continue;
        }
        if valued.contains(&a.as_str()) {
            skip = true;
        } else if !a.starts_with('-') {
            out.push(a.as_str());
        }
    }
    out
}

fn context(c: Option<&str>) -> Target {
    c.map_or(Target::Unpinned, |c| Target::Context(c.to_string()))
}

/// The registry a `docker push REF` writes to (Docker Hub when the first part of
/// the reference is not a host).
fn registry_of(reference: &str) -> String {
    match reference.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first.into(),
        _ => "docker.io".into(),
    }
}

/// Which cluster `cmd` changes, if it changes one.
pub fn of(cmd: &Cmd) -> Option<Target> {
    let a = &cmd.args;
    let program = std::path::Path::new(&cmd.program)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(&cmd.program);
    match program {
        "kubectl" => {
            let pos = positional(a, KUBECTL_VALUED);
            let verb = *pos.first()?;
            let changes = KUBECTL_VERBS.contains(&verb)
                || (verb == "rollout" && pos.get(1).is_some_and(|s| KUBECTL_ROLLOUT.contains(s)));
            changes.then(|| context(flag(a, &["--context"])))
        }
        "helm" => {
            let verb = *positional(a, &["--kube-context", "--namespace", "-n"]).first()?;
            HELM_VERBS
                .contains(&verb)
                .then(|| context(flag(a, &["--kube-context"])))
        }
        "kind" => {
            let pos = positional(a, &["--name", "-n"]);
            let changes = matches!(
                pos.get(..2),
                Some(["create", "cluster"] | ["delete", "cluster"] | ["load", _])
            );
            changes.then(|| {
                Target::Context(format!(
                    "kind-{}",
                    flag(a, &["--name", "-n"]).unwrap_or("kind")
                ))
            })
        }
        "minikube" => {
            let pos = positional(a, &["--profile", "-p"]);
            let changes = matches!(
                pos.get(..1),
                Some(["start"] | ["delete"] | ["stop"] | ["pause"] | ["addons"])
            ) || matches!(
                pos.get(..2),
                Some(["image", "load" | "rm" | "build" | "push"])
            );
            changes.then(|| {
                Target::Context(
                    flag(a, &["--profile", "-p"])
                        .unwrap_or("minikube")
                        .to_string(),
                )
            })
        }
        "docker" => {
            let pos = positional(a, &[]);
            (pos.first() == Some(&"push"))
                .then(|| pos.get(1).map(|r| Target::Registry(registry_of(r))))
                .flatten()
        }
        // A script told which context to change (slipway's registry recipe).
        _ => cmd
            .env
            .get("KUBE_CONTEXT")
            .map(|c| Target::Context(c.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of_argv(program: &str, args: &[&str]) -> Option<Target> {
        of(&Cmd::new(program, args.iter().copied()))
    }

    fn ctx(c: &str) -> Option<Target> {
        Some(Target::Context(c.into()))
    }

    #[test]
    fn verbs_that_change_a_cluster() {
        assert_eq!(
            of_argv(
                "kubectl",
                &["--context", "x", "--namespace", "n", "apply", "-f", "-"]
            ),
            ctx("x")
        );
        assert_eq!(
            of_argv(
                "kubectl",
                &["--context=y", "rollout", "restart", "deployment/a"]
            ),
            ctx("y")
        );
        assert_eq!(
            of_argv(
                "kubectl",
                &["--context", "x", "rollout", "status", "deployment/a"]
            ),
            None
        );
        assert_eq!(of_argv("kubectl", &["--context", "x", "get", "pods"]), None);
        assert_eq!(of_argv("kubectl", &["config", "view"]), None);
        assert_eq!(
            of_argv("kubectl", &["delete", "job/a"]),
            Some(Target::Unpinned)
        );
        assert_eq!(
            of_argv(
                "helm",
                &[
                    "upgrade",
                    "r",
                    "chart",
                    "--kube-context",
                    "k",
                    "--namespace",
                    "n"
                ]
            ),
            ctx("k")
        );
        assert_eq!(
            of_argv("helm", &["status", "r", "--kube-context", "k"]),
            None
        );
        assert_eq!(of_argv("helm", &["template", "r", "chart"]), None);
        assert_eq!(of_argv("helm", &["rollback", "r"]), Some(Target::Unpinned));
        assert_eq!(
            of_argv(
                "kind",
                &["create", "cluster", "--name", "a", "--config", "-"]
            ),
            ctx("kind-a")
        );
        assert_eq!(
            of_argv("kind", &["load", "docker-image", "i:1", "--name", "a"]),
            ctx("kind-a")
        );
        assert_eq!(of_argv("kind", &["get", "nodes", "--name", "a"]), None);
        assert_eq!(
            of_argv("minikube", &["image", "load", "i:1", "--profile", "p"]),
            ctx("p")
        );
        assert_eq!(of_argv("minikube", &["status", "--profile", "p"]), None);
        assert_eq!(
            of_argv("docker", &["push", "localhost:5001/app:1"]),
            Some(Target::Registry("localhost:5001".into()))
        );
        assert_eq!(
            of_argv("docker", &["push", "me/app:1"]),
            Some(Target::Registry("docker.io".into()))
        );
        assert_eq!(of_argv("docker", &["build", "."]), None);
        let mut script = Cmd::new("bash", ["/cache/registry.sh"]);
        assert_eq!(of(&script), None);
        script.env.insert("KUBE_CONTEXT".into(), "kind-a".into());
        assert_eq!(of(&script), ctx("kind-a"));
    }
}
