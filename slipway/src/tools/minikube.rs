//! minikube: profile lifecycle and image loading.

use std::time::Duration;

use super::{Cmd, PROBE};

pub fn version() -> Cmd {
    Cmd::new("minikube", ["version", "--short"]).timeout(PROBE)
}

/// `minikube status -o json`; exits non-zero when the profile is stopped or absent.
pub fn status(profile: &str) -> Cmd {
    Cmd::new(
        "minikube",
        ["status", "--profile", profile, "--output", "json"],
    )
    .timeout(PROBE)
}

/// Is the profile's host and API server running, per `minikube status -o json`?
pub fn parse_running(status_json: &str) -> bool {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(status_json.trim()) else {
        return false;
    };
    // Multi-node profiles print an array; the first entry is the control plane.
    let v = v.as_array().and_then(|a| a.first().cloned()).unwrap_or(v);
    v.get("Host").and_then(|h| h.as_str()) == Some("Running")
        && v.get("APIServer").and_then(|h| h.as_str()) == Some("Running")
}

pub struct Start<'a> {
    pub driver: &'a str,
    pub kubernetes_version: Option<&'a str>,
    pub cpus: Option<u32>,
    pub memory: Option<&'a str>,
}

pub fn start(profile: &str, s: &Start, timeout: Duration) -> Cmd {
    let mut c = Cmd::new(
        "minikube",
        ["start", "--profile", profile, "--driver", s.driver],
    );
    if let Some(v) = s.kubernetes_version {
        c = c.arg(format!("--kubernetes-version={v}"));
    }
    if let Some(n) = s.cpus {
        c = c.arg(format!("--cpus={n}"));
    }
    if let Some(m) = s.memory {
        c = c.arg(format!("--memory={m}"));
    }
    c.timeout(timeout).grace(Duration::from_secs(30))
}

pub fn delete(profile: &str) -> Cmd {
    Cmd::new("minikube", ["delete", "--profile", profile]).timeout(Duration::from_secs(300))
}

pub fn image_ls(profile: &str) -> Cmd {
    Cmd::new(
        "minikube",
        ["image", "ls", "--format", "json", "--profile", profile],
    )
    .timeout(PROBE)
}

/// Does `minikube image ls --format json` list this image ID?
pub fn lists_image_id(ls_json: &str, id: &str) -> bool {
    let want = id.trim().trim_start_matches("sha256:");
    let Ok(serde_json::Value::Array(items)) = serde_json::from_str(ls_json.trim()) else {
        return false;
    };
    !want.is_empty()
        && items.iter().any(|i| {
            i.get("id")
                .and_then(|x| x.as_str())
                .is_some_and(|x| x.trim_start_matches("sha256:") == want)
        })
}

pub fn image_load(profile: &str, reference: &str, timeout: Duration) -> Cmd {
    Cmd::new(
        "minikube",
        ["image", "load", reference, "--profile", profile],
    )
    .timeout(timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_running() {
        assert!(parse_running(
            r#"{"Name":"slipway","Host":"Running","Kubelet":"Running","APIServer":"Running"}"#
        ));
        assert!(!parse_running(
            r#"{"Name":"slipway","Host":"Stopped","APIServer":"Stopped"}"#
        ));
        assert!(!parse_running(r#"{"Name":"x","Host":"Nonexistent"}"#));
        assert!(!parse_running("🤷  Profile \"x\" not found."));
    }

    #[test]
    fn image_ids() {
        let ls = r#"[{"id":"abc123","repoTags":["sample:1"]}]"#;
        assert!(lists_image_id(ls, "sha256:abc123"));
        assert!(!lists_image_id(ls, "sha256:def"));
        assert!(!lists_image_id("[]", ""));
    }
}
