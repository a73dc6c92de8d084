//! helm: releases. Every call is pinned with `--kube-context` and `--namespace`.

use std::time::Duration;

use serde::Deserialize;

use super::{Cmd, PROBE};

/// helm gets SIGINT on Ctrl-C and this long to record the release as failed rather
/// than leave it pending-upgrade.
pub const HELM_GRACE: Duration = Duration::from_secs(60);

/// Prefix of the release description slipway writes; the rest is the deploy digest.
pub const DESCRIPTION_PREFIX: &str = "slipway digest ";

fn pinned(args: &[&str], context: &str, namespace: &str) -> Cmd {
    Cmd::new("helm", args.iter().copied()).args([
        "--kube-context",
        context,
        "--namespace",
        namespace,
    ])
}

pub fn version() -> Cmd {
    Cmd::new("helm", ["version", "--short"]).timeout(PROBE)
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
        self.description.strip_prefix(DESCRIPTION_PREFIX)
    }
}

/// Did `helm status` fail because the release does not exist?
pub fn is_not_found(stderr: &str) -> bool {
    stderr.contains("release: not found")
}

pub fn dependency_build(chart: &str, timeout: Duration) -> Cmd {
    Cmd::new("helm", ["dependency", "build", chart])
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
    pub wait: bool,
    pub atomic: bool,
    pub timeout: Duration,
    pub digest: &'a str,
}

pub fn upgrade(u: &Upgrade) -> Cmd {
    let mut c = pinned(
        &["upgrade", "--install", u.release, u.chart],
        u.context,
        u.namespace,
    )
    .arg("--create-namespace");
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
    if u.wait || u.atomic {
        c = c.arg("--wait");
    }
    if u.atomic {
        c = c.arg("--atomic");
    }
    c.arg(format!("--timeout={}s", u.timeout.as_secs()))
        .arg(format!("--description={DESCRIPTION_PREFIX}{}", u.digest))
        // helm's own --timeout bounds its work; ours adds room for it to clean up.
        .timeout(u.timeout + Duration::from_secs(60))
        .grace(HELM_GRACE)
}

pub fn rollback(release: &str, namespace: &str, context: &str, timeout: Duration) -> Cmd {
    pinned(&["rollback", release], context, namespace)
        .args([
            "--wait".to_string(),
            format!("--timeout={}s", timeout.as_secs()),
        ])
        .timeout(timeout + Duration::from_secs(30))
        .grace(HELM_GRACE)
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

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
