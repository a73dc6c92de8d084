//! helm: releases. Every call is pinned with `--kube-context` and `--namespace`.
//!
//! Helm 3 and Helm 4 differ in flags; [`Dialect`] is the one place that knows how,
//! chosen from the detected version. Nothing parses helm's error texts beyond
//! "release: not found", which both majors print.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Cmd, PROBE};

/// The oldest Helm slipway supports: `uninstall --ignore-not-found` and the release
/// description in `status -o json`.
pub const MIN_VERSION: semver::Version = semver::Version::new(3, 13, 0);
/// The Helm major slipway is tested against by default and assumes until it has seen
/// the installed one.
pub const DEFAULT_MAJOR: u64 = 4;

pub use crate::model::helm::{Apply, WaitStrategy};

/// Which helm the flags are for: the detected version, or the default major when
/// none was detected yet (`assumed`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Dialect {
    pub version: Option<String>,
    pub major: u64,
}

impl Dialect {
    pub fn detected(v: &semver::Version) -> Dialect {
        Dialect {
            version: Some(v.to_string()),
            major: v.major,
        }
    }
    /// Flags for the default major, before helm was seen.
    pub fn assumed() -> Dialect {
        Dialect {
            version: None,
            major: DEFAULT_MAJOR,
        }
    }
    pub fn v4(&self) -> bool {
        self.major >= 4
    }
    /// "helm 4.3.1" or "helm 4 (assumed: not detected yet)".
    pub fn describe(&self) -> String {
        match &self.version {
            Some(v) => format!("helm {v}"),
            None => format!(
                "helm {} (assumed until preflight detects it; a different major re-plans)",
                self.major
            ),
        }
    }
    /// `--wait` for a strategy.
    fn wait_flag(&self, w: WaitStrategy) -> String {
        if self.v4() {
            format!("--wait={}", <&str>::from(w))
        } else {
            "--wait".into()
        }
    }
    /// The flags a release's apply settings become.
    fn apply_flags(&self, apply: Apply, force_conflicts: bool) -> Vec<String> {
        if !self.v4() {
            return vec![];
        }
        let mut v = vec![format!(
            "--server-side={}",
            match apply {
                Apply::ServerSide => "true",
                Apply::ClientSide => "false",
                Apply::Auto => "auto",
            }
        )];
        if force_conflicts {
            v.push("--force-conflicts".into());
        }
        v
    }
    /// What these flags decided for one release, in words (for `plan` and the run).
    pub fn decisions(&self, r: &ReleaseFlags) -> Vec<String> {
        let mut d = vec![];
        if self.v4() {
            if r.atomic {
                d.push("--rollback-on-failure (Helm 4's name for --atomic)".into());
            }
            if r.wait || r.atomic {
                d.push(format!("--wait={}", <&str>::from(r.wait_strategy)));
            }
            d.push(match r.apply {
                Apply::ServerSide => "server-side apply".into(),
                Apply::ClientSide => "client-side apply".into(),
                Apply::Auto => "the release's stored apply method".into(),
            });
            if r.force_conflicts {
                d.push(
                    "--force-conflicts (a field changed with kubectl does not block the upgrade)"
                        .into(),
                );
            }
        } else {
            if r.atomic {
                d.push("--atomic".into());
            }
            if r.wait && r.wait_strategy == WaitStrategy::Watcher {
                d.push("--wait (Helm 3 only has the legacy strategy)".into());
            }
            d.push("client-side apply (Helm 3 has no server-side apply)".into());
        }
        d
    }
}

/// A release's helm settings that depend on the dialect.
#[derive(Clone, Copy, Debug)]
pub struct ReleaseFlags {
    pub wait: bool,
    pub atomic: bool,
    pub wait_strategy: WaitStrategy,
    pub apply: Apply,
    pub force_conflicts: bool,
}

/// helm gets SIGINT on Ctrl-C and this long to record the release as failed rather
/// than leave it pending-upgrade.
pub const HELM_GRACE: Duration = Duration::from_secs(60);

/// Prefix of the release description slipway writes; the rest is the deploy digest,
/// then, for a release that reads Secrets slipway applies, [`SECRETS_INFIX`] and
/// their keyed digests (`NAME=HEX,…`).
pub const DESCRIPTION_PREFIX: &str = "slipway digest ";
pub const SECRETS_INFIX: &str = " secrets ";

/// What helm reads from the environment to pick a cluster, a namespace or
/// credentials other than the kube context's (`helm env`): a child never inherits
/// them, so helm talks to the cluster the context guard checked, as it named it.
pub const CLUSTER_ENV: &[&str] = &[
    "HELM_KUBEAPISERVER",
    "HELM_KUBEASGROUPS",
    "HELM_KUBEASUSER",
    "HELM_KUBECAFILE",
    "HELM_KUBECONTEXT",
    "HELM_KUBEINSECURE_SKIP_TLS_VERIFY",
    "HELM_KUBETLS_SERVER_NAME",
    "HELM_KUBETOKEN",
    "HELM_NAMESPACE",
];

/// Every helm command starts here.
fn helm<I: Into<String>>(args: impl IntoIterator<Item = I>) -> Cmd {
    Cmd::new("helm", args).clear_env(CLUSTER_ENV)
}

fn pinned(args: &[&str], context: &str, namespace: &str) -> Cmd {
    helm(args.iter().copied()).args(["--kube-context", context, "--namespace", namespace])
}

/// `helm version --template`: prints just "v3.22.0" / "v4.3.1" on both majors (Helm 2
/// has no such flag and fails, which preflight reports as unsupported).
pub fn version() -> Cmd {
    helm(["version", "--template", "{{.Version}}"]).timeout(PROBE)
}

pub fn status(release: &str, namespace: &str, context: &str) -> Cmd {
    pinned(&["status", release], context, namespace)
        .args(["--output", "json"])
        .timeout(PROBE)
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ReleaseStatus {
    pub name: String,
    pub version: u32,
    pub status: String,
    pub description: String,
}

/// Parse `helm status -o json`.
pub fn parse_status(json: &str) -> Option<ReleaseStatus> {
    #[derive(Deserialize)]
    struct Raw {
        name: String,
        version: u32,
        info: Info,
    }
    #[derive(Deserialize)]
    struct Info {
        status: String,
        #[serde(default)]
        description: String,
    }
    let r: Raw = serde_json::from_str(json.trim()).ok()?;
    Some(ReleaseStatus {
        name: r.name,
        version: r.version,
        status: r.info.status,
        description: r.info.description,
    })
}

impl ReleaseStatus {
    pub fn is_pending(&self) -> bool {
        self.status.starts_with("pending-")
    }
    /// The digest slipway recorded when it deployed this revision.
    pub fn digest(&self) -> Option<&str> {
        let rest = self.description.strip_prefix(DESCRIPTION_PREFIX)?;
        Some(rest.split_once(SECRETS_INFIX).map_or(rest, |(d, _)| d))
    }
    /// The Secrets' digests recorded with this revision (`NAME=HEX,…`), if any.
    pub fn secrets(&self) -> Option<&str> {
        self.description
            .strip_prefix(DESCRIPTION_PREFIX)?
            .split_once(SECRETS_INFIX)
            .map(|(_, s)| s)
    }
}

/// Did `helm status` fail because the release does not exist?
pub fn is_not_found(stderr: &str) -> bool {
    stderr.contains("release: not found")
}

pub fn dependency_build(chart: &str, timeout: Duration) -> Cmd {
    helm(["dependency", "build", chart])
        .timeout(timeout)
        .retries(2)
}

pub struct Upgrade<'a> {
    pub release: &'a str,
    pub chart: &'a str,
    pub namespace: &'a str,
    pub context: &'a str,
    pub values: Vec<String>,
    pub set: Vec<(String, String)>,
    pub set_string: Vec<(String, String)>,
    pub set_file: Vec<(String, String)>,
    pub flags: ReleaseFlags,
    pub timeout: Duration,
    pub digest: &'a str,
    /// The release reads Secrets slipway applies: the description also records
    /// their keyed digests, filled in at run time for `{SECRETS}`.
    pub secrets: bool,
}

/// `helm template` with exactly the chart and values `upgrade` gets: renders and
/// validates against the chart's values schema, offline.
pub fn template(u: &Upgrade) -> Cmd {
    let mut c = pinned(&["template", u.release, u.chart], u.context, u.namespace);
    c = value_args(c, u);
    c.timeout(PROBE)
}

/// `helm template` of a chart with its own defaults and a few `--set-string`s, no
/// kube context (what `slipway init` reads a chart's Services and probes from).
pub fn template_defaults(
    release: &str,
    chart: &str,
    namespace: &str,
    set_string: &[(String, String)],
) -> Cmd {
    let mut c = Cmd::new(
        "helm",
        ["template", release, chart, "--namespace", namespace],
    );
    for (k, v) in set_string {
        c = c.args(["--set-string".to_string(), format!("{k}={v}")]);
    }
    c.timeout(PROBE)
}

fn value_args(mut c: Cmd, u: &Upgrade) -> Cmd {
    for v in &u.values {
        c = c.args(["--values", v]);
    }
    for (flag, pairs) in [
        ("--set", &u.set),
        ("--set-string", &u.set_string),
        ("--set-file", &u.set_file),
    ] {
        for (k, v) in pairs {
            c = c.args([flag.to_string(), format!("{k}={v}")]);
        }
    }
    c
}

pub fn upgrade(d: &Dialect, u: &Upgrade) -> Cmd {
    let mut c = pinned(
        &["upgrade", "--install", u.release, u.chart],
        u.context,
        u.namespace,
    )
    .arg("--create-namespace");
    c = value_args(c, u);
    let f = &u.flags;
    if f.wait || f.atomic {
        c = c.arg(d.wait_flag(f.wait_strategy));
    }
    if f.atomic {
        c = c.arg(if d.v4() {
            "--rollback-on-failure"
        } else {
            "--atomic"
        });
    }
    c = c.args(d.apply_flags(f.apply, f.force_conflicts));
    c.arg(format!("--timeout={}s", u.timeout.as_secs()))
        .arg(format!(
            "--description={DESCRIPTION_PREFIX}{}{}",
            u.digest,
            if u.secrets {
                format!("{SECRETS_INFIX}{{SECRETS}}")
            } else {
                String::new()
            }
        ))
        // helm's own --timeout bounds its work; ours adds room for it to clean up.
        .timeout(u.timeout + Duration::from_secs(60))
        .grace(HELM_GRACE)
}

/// `helm rollback` to the previous revision, or to `to`. On Helm 4 it applies the
/// way the release's settings say (a rollback after `kubectl set image` must not stop
/// at a field conflict either).
pub fn rollback(
    d: &Dialect,
    r: &ReleaseFlags,
    (release, namespace, context): (&str, &str, &str),
    to: Option<&str>,
    timeout: Duration,
) -> Cmd {
    let mut c = pinned(&["rollback", release], context, namespace);
    if let Some(rev) = to {
        c = c.arg(rev);
    }
    c.arg(d.wait_flag(r.wait_strategy))
        .args(d.apply_flags(r.apply, r.force_conflicts))
        .arg(format!("--timeout={}s", timeout.as_secs()))
        .timeout(timeout + Duration::from_secs(30))
        .grace(HELM_GRACE)
}

/// `helm history -o json`: the revisions `rollback --to` can name.
pub fn history(release: &str, namespace: &str, context: &str) -> Cmd {
    pinned(&["history", release], context, namespace)
        .args(["--max", "20", "--output", "json"])
        .timeout(PROBE)
}

pub fn uninstall(release: &str, namespace: &str, context: &str, timeout: Duration) -> Cmd {
    pinned(&["uninstall", release], context, namespace)
        .args([
            "--ignore-not-found",
            "--wait",
            &format!("--timeout={}s", timeout.as_secs()),
        ])
        .timeout(timeout + Duration::from_secs(30))
        .grace(HELM_GRACE)
}

/// The version `helm version --template {{.Version}}` printed.
pub fn parse_version(out: &str) -> Option<semver::Version> {
    let w = out.trim().trim_start_matches('v');
    let core = w.split(['+', '-']).next()?;
    semver::Version::parse(core).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags() -> ReleaseFlags {
        ReleaseFlags {
            wait: true,
            atomic: true,
            wait_strategy: WaitStrategy::Watcher,
            apply: Apply::ServerSide,
            force_conflicts: true,
        }
    }

    fn up(d: &Dialect, f: ReleaseFlags) -> Vec<String> {
        upgrade(
            d,
            &Upgrade {
                release: "r",
                chart: "c",
                namespace: "n",
                context: "k",
                values: vec![],
                set: vec![],
                set_string: vec![],
                set_file: vec![],
                flags: f,
                timeout: Duration::from_secs(60),
                digest: "d",
                secrets: false,
            },
        )
        .args
    }

    #[test]
    fn flags_per_major() {
        let v4 = Dialect::detected(&semver::Version::new(4, 3, 1));
        let v3 = Dialect::detected(&semver::Version::new(3, 22, 0));
        let a4 = up(&v4, flags());
        assert!(a4.contains(&"--wait=watcher".into()), "{a4:?}");
        assert!(a4.contains(&"--rollback-on-failure".into()));
        assert!(a4.contains(&"--server-side=true".into()));
        assert!(a4.contains(&"--force-conflicts".into()));
        assert!(!a4.contains(&"--atomic".into()));
        let a3 = up(&v3, flags());
        assert!(
            a3.contains(&"--wait".into()) && a3.contains(&"--atomic".into()),
            "{a3:?}"
        );
        assert!(!a3.iter().any(|a| a.starts_with("--server-side")
            || a == "--force-conflicts"
            || a.starts_with("--wait=")));
        let legacy = up(
            &v4,
            ReleaseFlags {
                wait_strategy: WaitStrategy::Legacy,
                atomic: false,
                apply: Apply::Auto,
                force_conflicts: false,
                ..flags()
            },
        );
        assert!(legacy.contains(&"--wait=legacy".into()));
        assert!(legacy.contains(&"--server-side=auto".into()));
        assert!(!legacy.contains(&"--force-conflicts".into()));
        let rb = rollback(
            &v4,
            &flags(),
            ("r", "n", "k"),
            Some("3"),
            Duration::from_secs(5),
        )
        .args;
        assert_eq!(&rb[..2], ["rollback", "r"]);
        assert!(rb.contains(&"3".into()) && rb.contains(&"--force-conflicts".into()));
    }

    #[test]
    fn version_template_output() {
        assert_eq!(parse_version("v4.3.1"), Some(semver::Version::new(4, 3, 1)));
        assert_eq!(
            parse_version("v3.22.0+gabc\n"),
            Some(semver::Version::new(3, 22, 0))
        );
        assert_eq!(
            parse_version("v4.0.0-rc.1"),
            Some(semver::Version::new(4, 0, 0))
        );
        assert_eq!(parse_version("Error: unknown flag: --template"), None);
        assert!(Dialect::assumed().v4());
        assert!(Dialect::assumed().describe().contains("assumed"));
    }

    #[test]
    fn status_json() {
        let s = parse_status(
            r#"{"name":"sample","info":{"status":"deployed","description":"slipway digest abc"},"version":3,"namespace":"x"}"#,
        )
        .unwrap();
        assert_eq!(s.version, 3);
        assert!(!s.is_pending());
        assert_eq!(s.digest(), Some("abc"));
        let p = parse_status(r#"{"name":"s","info":{"status":"pending-upgrade","description":"Upgrade"},"version":4}"#).unwrap();
        assert!(p.is_pending());
        assert_eq!(p.digest(), None);
        assert!(parse_status("Error: release: not found").is_none());
        let r = parse_status(r#"{"name":"s","info":{"status":"deployed","description":"slipway digest abc secrets a=01,b=02"},"version":5}"#).unwrap();
        assert_eq!((r.digest(), r.secrets()), (Some("abc"), Some("a=01,b=02")));
        assert_eq!(s.secrets(), None);
    }
}
