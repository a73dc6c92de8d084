//! One external command, fully described: what the planner produces and the executor
//! runs. Secrets never live in a `Cmd`; stdin that carries secrets names its sources
//! and the executor resolves them at run time.
//!
//! A value known only at run time (a free local port, a workload or node name) is a
//! placeholder `{NAME}` in an argument; the plan shows it as is and the runner fills
//! it with [`Cmd::fill`] just before the executor spawns the command.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Cmd {
    pub program: String,
    pub args: Vec<String>,
    /// Extra environment for the child (plain values only).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Variables the child does not inherit from slipway's environment (helm's
    /// `HELM_KUBE*`, which would point it at another cluster than the guard checked).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub clear_env: Vec<String>,
    #[serde(skip_serializing_if = "Stdin::is_none")]
    pub stdin: Stdin,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwd: Option<PathBuf>,
    #[serde(with = "super::secs")]
    pub timeout: Duration,
    /// Extra attempts after a failure (for flaky network fetches and probes).
    #[serde(skip_serializing_if = "is_zero")]
    pub retries: u32,
    /// Never echo this command's output (it may contain secrets).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub secret_output: bool,
    /// Its stdout is the answer, printed as it comes (`logs`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
    /// A long build whose stderr lines `[name HH:MM:SS] phase…` report progress:
    /// each becomes a note (which phase, how long it took).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub progress: bool,
    /// On Ctrl-C the child gets SIGINT and this long to exit before SIGKILL
    /// (helm needs time to mark the release failed instead of leaving it pending).
    #[serde(with = "super::secs")]
    pub interrupt_grace: Duration,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Stdin {
    #[default]
    None,
    /// Plain text (a kind config, a Namespace manifest).
    Text { text: String },
    /// A Secret manifest whose values are read from the environment or an env file
    /// when the command runs. Printed with every value masked.
    Secret(SecretInput),
    /// One secret value, read when the command runs (`docker login --password-stdin`).
    Value { source: SecretSource },
    /// A file's bytes (relative to the run's directory), read when the command runs
    /// (`dev`'s sync hands a compiled binary to a pod).
    File { path: PathBuf },
}

impl Stdin {
    pub fn is_none(&self) -> bool {
        matches!(self, Stdin::None)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SecretInput {
    pub name: String,
    /// The Secret's `type`: `Opaque`, or `kubernetes.io/dockerconfigjson` for a
    /// registry login.
    #[serde(rename = "type")]
    pub secret_type: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    /// `slipway.dev/digest`: `{DIGEST}` in the plan, the keyed digest of the values
    /// (and of the type and labels) when it runs: a Secret that already carries it
    /// is not applied again.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    pub keys: Vec<SecretKey>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SecretKey {
    pub key: String,
    pub source: SecretSource,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum SecretSource {
    /// An environment variable (or the pipeline's env file).
    Env { var: String },
    /// One entry of a dotenv file.
    EnvFile { path: PathBuf, var: String },
    /// A registry login as a `.dockerconfigjson` document; the password from `var`.
    RegistryAuth {
        host: String,
        username: String,
        var: String,
    },
}

impl SecretSource {
    /// The variable that holds the value, for messages.
    pub fn describe(&self) -> String {
        match self {
            SecretSource::Env { var } => format!("${var}"),
            SecretSource::EnvFile { path, var } => format!("{var} in {}", path.display()),
            SecretSource::RegistryAuth { var, .. } => format!("${var}"),
        }
    }
}

/// The `.dockerconfigjson` of one registry login (what `kubectl create secret
/// docker-registry` writes).
pub fn docker_config_json(host: &str, username: &str, password: &str) -> String {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    serde_json::json!({"auths": {host: {"username": username, "password": password, "auth": auth}}})
        .to_string()
}

pub const MASK: &str = "********";

impl SecretInput {
    /// The Secret as a JSON manifest, values produced by `value` (masked for display).
    pub fn manifest(&self, mut value: impl FnMut(&SecretSource) -> String) -> String {
        let data: serde_json::Map<String, serde_json::Value> = self
            .keys
            .iter()
            .map(|k| (k.key.clone(), serde_json::Value::String(value(&k.source))))
            .collect();
        let mut m = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": self.name, "namespace": self.namespace, "labels": self.labels},
            "type": self.secret_type,
            "stringData": data,
        });
        if !self.annotations.is_empty() {
            m["metadata"]["annotations"] = serde_json::json!(self.annotations);
        }
        serde_json::to_string_pretty(&m).expect("manifest serializes")
    }

    pub fn masked(&self) -> String {
        self.manifest(|_| MASK.to_string())
    }
}

impl Cmd {
    pub fn new(program: &str, args: impl IntoIterator<Item = impl Into<String>>) -> Cmd {
        Cmd {
            program: program.to_string(),
            args: args.into_iter().map(Into::into).collect(),
            env: BTreeMap::new(),
            clear_env: vec![],
            stdin: Stdin::None,
            cwd: None,
            timeout: Duration::from_secs(60),
            retries: 0,
            secret_output: false,
            stream: false,
            progress: false,
            interrupt_grace: Duration::from_secs(5),
        }
    }

    /// Which cluster this command changes, if any (see [`super::mutation`]).
    pub fn mutation(&self) -> Option<super::mutation::Target> {
        super::mutation::of(self)
    }

    /// The child does not inherit these variables.
    pub fn clear_env(mut self, names: &[&str]) -> Cmd {
        self.clear_env.extend(names.iter().map(|n| n.to_string()));
        self
    }

    pub fn arg(mut self, a: impl Into<String>) -> Cmd {
        self.args.push(a.into());
        self
    }

    pub fn args(mut self, a: impl IntoIterator<Item = impl Into<String>>) -> Cmd {
        self.args.extend(a.into_iter().map(Into::into));
        self
    }

    pub fn timeout(mut self, t: Duration) -> Cmd {
        self.timeout = t;
        self
    }

    pub fn retries(mut self, n: u32) -> Cmd {
        self.retries = n;
        self
    }

    pub fn stdin(mut self, s: Stdin) -> Cmd {
        self.stdin = s;
        self
    }

    pub fn grace(mut self, g: Duration) -> Cmd {
        self.interrupt_grace = g;
        self
    }

    /// Print its stdout as it comes.
    pub fn streamed(mut self) -> Cmd {
        self.stream = true;
        self
    }

    /// Its stderr reports phases (see [`Cmd::progress`]).
    pub fn progress(mut self) -> Cmd {
        self.progress = true;
        self
    }

    /// Replace `{NAME}` placeholders in the arguments with run-time values.
    pub fn fill(&self, values: &[(&str, &str)]) -> Cmd {
        let mut c = self.clone();
        for a in &mut c.args {
            for (name, v) in values {
                let key = format!("{{{name}}}");
                if a.contains(&key) {
                    *a = a.replace(&key, v);
                }
            }
        }
        c
    }

    /// The placeholders still in the arguments.
    pub fn placeholders(&self) -> Vec<String> {
        let mut out = vec![];
        for a in &self.args {
            let mut rest = a.as_str();
            while let Some(start) = rest.find('{') {
                let tail = &rest[start + 1..];
                let Some(end) = tail.find('}') else { break };
                let name = &tail[..end];
                if !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
                    out.push(name.to_string());
                }
                rest = &tail[end..];
            }
        }
        out
    }

    /// The command line as a shell would take it: env assignments, program, args.
    pub fn display(&self) -> String {
        let mut parts: Vec<String> = self
            .env
            .iter()
            .map(|(k, v)| format!("{k}={}", shell_words::quote(v)))
            .collect();
        parts.push(shell_words::quote(&self.program).into_owned());
        parts.extend(self.args.iter().map(|a| shell_words::quote(a).into_owned()));
        parts.join(" ")
    }

    /// `display()` plus a heredoc for stdin and a `cd` for the working directory:
    /// something that can be pasted into a shell.
    pub fn script(&self) -> String {
        let mut line = self.display();
        if let Some(cwd) = &self.cwd {
            line = format!(
                "(cd {} && {line})",
                shell_words::quote(&cwd.display().to_string())
            );
        }
        match &self.stdin {
            Stdin::None => line,
            Stdin::Text { text } => format!("{line} <<'EOF'\n{}\nEOF", text.trim_end()),
            Stdin::Secret(s) => format!("{line} <<'EOF'\n{}\nEOF", s.masked()),
            Stdin::Value { source } => format!("{line} <<< \"{}\"", source.describe()),
            Stdin::File { path } => format!(
                "{line} < {}",
                shell_words::quote(&path.display().to_string())
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_for_the_shell() {
        let mut c = Cmd::new("helm", ["upgrade", "--set", "a=b c", "it's"]);
        c.env.insert("X".into(), "1 2".into());
        assert_eq!(c.display(), "X='1 2' helm upgrade --set 'a=b c' 'it'\\''s'");
    }

    #[test]
    fn placeholders_are_listed_and_filled() {
        let c = Cmd::new(
            "kubectl",
            ["port-forward", "{LOCAL_PORT}:80", "--format", "{{json .}}"],
        );
        assert_eq!(c.placeholders(), vec!["LOCAL_PORT"]);
        let f = c.fill(&[("LOCAL_PORT", "4242")]);
        assert_eq!(f.args[1], "4242:80");
        assert!(f.placeholders().is_empty());
        assert_eq!(f.args[3], "{{json .}}");
    }

    #[test]
    fn secret_stdin_is_masked_in_scripts() {
        let c = Cmd::new("kubectl", ["apply", "-f", "-"]).stdin(Stdin::Secret(SecretInput {
            secret_type: "Opaque".into(),
            name: "s".into(),
            namespace: "ns".into(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            keys: vec![SecretKey {
                key: "TOKEN".into(),
                source: SecretSource::Env {
                    var: "TOKEN".into(),
                },
            }],
        }));
        let s = c.script();
        assert!(s.contains("\"TOKEN\": \"********\""), "{s}");
    }
}

/// What a command printed, and how it exited.
#[derive(Clone, Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn ok(&self) -> bool {
        self.code == 0
    }
}
