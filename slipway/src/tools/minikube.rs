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

/// `minikube ip`: the node's address, where its NodePorts answer (what `minikube
/// service --url` prints for the docker driver on Linux).
pub fn ip(profile: &str) -> Cmd {
    Cmd::new("minikube", ["ip", "--profile", profile]).timeout(PROBE)
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

/// What `minikube status -o json` says of a profile, from its exit code and output
/// (recorded from minikube v1.38.1): 0 and a status object when it runs; a bitmask of
/// what is stopped (1 host, 2 kubelet/cluster, 4 kubeconfig: 7 when all are) with the
/// same object; 85 with "profile not found" event lines for a profile that does not
/// exist. Anything else cannot be told apart from a broken minikube: an error.
pub fn status_up(code: i32, stdout: &str) -> Result<bool, String> {
    match code {
        0 if parse_running(stdout) => Ok(true),
        0 => Err(format!(
            "minikube status exited 0 but its output is not a running profile: {}",
            stdout.trim()
        )),
        85 => Ok(false),
        1..=7 => Ok(false),
        _ => Err(format!(
            "minikube status exited {code}: {}",
            stdout.lines().next().unwrap_or("").trim()
        )),
    }
}

pub struct Start<'a> {
    pub driver: &'a str,
    pub kubernetes_version: Option<&'a str>,
    pub cpus: Option<u32>,
    pub memory: Option<&'a str>,
    /// Start from slipway's offline base image: nothing is downloaded (no preload,
    /// no image cache), containerd, a bridge CNI (kindnet's image cannot come).
    pub offline_base: Option<&'a str>,
    /// slipway runs as root: the docker driver refuses that without `--force`.
    pub root: bool,
}

/// minikube's own base image (kicbase) for the docker driver, which it pulls.
pub const KICBASE: &str = "gcr.io/k8s-minikube/kicbase:v0.0.50";

pub fn start(profile: &str, s: &Start, timeout: Duration) -> Cmd {
    let mut c = Cmd::new(
        "minikube",
        ["start", "--profile", profile, "--driver", s.driver],
    );
    if s.root {
        c = c.arg("--force");
    }
    if let Some(base) = s.offline_base {
        c = c.args([
            format!("--base-image={base}"),
            "--container-runtime=containerd".into(),
            "--preload=false".into(),
            "--cache-images=false".into(),
            "--cni=bridge".into(),
            "--force-systemd".into(),
            "--interactive=false".into(),
        ]);
    }
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

    /// Real output of minikube v1.38.1 (running, after `minikube stop`, deleted).
    #[test]
    fn status_of_a_real_minikube() {
        let running = include_str!("fixtures/minikube/status-running.json");
        let stopped = include_str!("fixtures/minikube/status-stopped.json");
        let deleted = include_str!("fixtures/minikube/status-deleted.json");
        assert_eq!(status_up(0, running), Ok(true));
        assert_eq!(status_up(7, stopped), Ok(false));
        assert_eq!(status_up(85, deleted), Ok(false));
        assert!(status_up(0, deleted).is_err());
        assert!(status_up(1, "").is_ok_and(|up| !up));
        assert!(status_up(139, "segfault").is_err());
    }

    #[test]
    fn image_ids() {
        let ls = r#"[{"id":"abc123","repoTags":["sample:1"]}]"#;
        assert!(lists_image_id(ls, "sha256:abc123"));
        assert!(!lists_image_id(ls, "sha256:def"));
        assert!(!lists_image_id("[]", ""));
    }
}
