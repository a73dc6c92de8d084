//! docker: engine checks, image builds, inspection, push.

use std::path::Path;
use std::time::Duration;

use super::{Cmd, PROBE};

pub fn version() -> Cmd {
    Cmd::new("docker", ["version", "--format", "{{.Client.Version}}"]).timeout(PROBE)
}

/// `docker info` as JSON: answers only when the daemon does.
pub fn info() -> Cmd {
    Cmd::new("docker", ["info", "--format", "{{json .}}"]).timeout(PROBE)
}

/// Docker's data root from `docker info --format {{json .}}`.
pub fn parse_root_dir(info_json: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(info_json.trim()).ok()?;
    v.get("DockerRootDir")?.as_str().map(String::from)
}

/// The local image ID of a reference (fails when the image is absent).
pub fn image_id(reference: &str) -> Cmd {
    Cmd::new(
        "docker",
        ["image", "inspect", "--format", "{{.Id}}", reference],
    )
    .timeout(PROBE)
}

/// The image's size in bytes: what `docker save` (and so `kind load`) sends.
pub fn image_size(reference: &str) -> Cmd {
    Cmd::new(
        "docker",
        ["image", "inspect", "--format", "{{.Size}}", reference],
    )
    .timeout(PROBE)
}

/// From `docker push`'s output: the short IDs of the layers it pushed, how many
/// layers it named, and the manifest's digest.
pub fn parse_push(stdout: &str) -> PushReport {
    let mut r = PushReport::default();
    for line in stdout.lines().map(str::trim) {
        if let Some((id, status)) = line.split_once(": ") {
            let id_like = id.len() >= 12 && id.chars().all(|c| c.is_ascii_hexdigit());
            match status {
                "Pushed" if id_like => {
                    r.pushed.push(id.to_string());
                    r.layers += 1;
                }
                s if id_like && (s == "Layer already exists" || s.starts_with("Mounted from")) => {
                    r.layers += 1
                }
                _ => {}
            }
        }
        if let Some(d) = line.split("digest: ").nth(1) {
            r.digest = d.split_whitespace().next().map(str::to_string);
        }
    }
    r
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PushReport {
    pub pushed: Vec<String>,
    pub layers: u32,
    pub digest: Option<String>,
}

pub struct Build<'a> {
    pub reference: &'a str,
    pub dockerfile: &'a Path,
    pub context: &'a Path,
    pub target: Option<&'a str>,
    pub build_args: &'a std::collections::BTreeMap<String, String>,
    pub labels: &'a [(String, String)],
    pub timeout: Duration,
}

pub fn build(b: &Build) -> Cmd {
    let mut c = Cmd::new("docker", ["build", "--tag", b.reference])
        .args(["--file", &b.dockerfile.display().to_string()]);
    if let Some(t) = b.target {
        c = c.args(["--target", t]);
    }
    for (k, v) in b.build_args {
        c = c.args(["--build-arg".to_string(), format!("{k}={v}")]);
    }
    for (k, v) in b.labels {
        c = c.args(["--label".to_string(), format!("{k}={v}")]);
    }
    c.arg(b.context.display().to_string()).timeout(b.timeout)
}

pub fn push(reference: &str, timeout: Duration) -> Cmd {
    Cmd::new("docker", ["push", reference])
        .timeout(timeout)
        .retries(2)
}

/// `docker login HOST --username USER --password-stdin`, the password on stdin.
pub fn login(host: &str, username: &str, password: crate::model::SecretSource) -> Cmd {
    Cmd::new(
        "docker",
        ["login", host, "--username", username, "--password-stdin"],
    )
    .stdin(crate::model::Stdin::Value { source: password })
    .timeout(Duration::from_secs(60))
    .retries(1)
}

/// Run a command inside a container (a kind node).
pub fn exec(container: &str, argv: &[&str]) -> Cmd {
    Cmd::new("docker", ["exec", container])
        .args(argv.iter().copied())
        .timeout(PROBE)
}

/// Remove a container, running or not (nothing when there is none).
pub fn remove_container(name: &str) -> Cmd {
    Cmd::new("docker", ["rm", "--force", "--volumes", name]).timeout(Duration::from_secs(60))
}

/// Remove a named volume (nothing when there is none).
pub fn remove_volume(name: &str) -> Cmd {
    Cmd::new("docker", ["volume", "rm", "--force", name]).timeout(Duration::from_secs(60))
}

/// `docker pull REF` (a node image kind would otherwise pull itself).
pub fn pull(reference: &str) -> Cmd {
    Cmd::new("docker", ["pull", reference]).timeout(Duration::from_secs(600))
}

/// Is the daemon simply not running (as opposed to refusing this user)?
pub fn is_not_running(stderr: &str) -> bool {
    let l = stderr.to_ascii_lowercase();
    !l.contains("permission denied")
        && (l.contains("cannot connect to the docker daemon")
            || l.contains("is the docker daemon running"))
}

/// The runtime name slipway registers with a dockerd it starts.
pub const RUNTIME: &str = "slipway-capfilter";

/// `dockerd` as slipway starts it: the default socket, and its configuration file
/// (see [`daemon_config`]).
pub fn dockerd(config: &Path) -> Cmd {
    Cmd::new(
        "dockerd",
        [
            "--host".to_string(),
            "unix:///var/run/docker.sock".into(),
            "--config-file".into(),
            config.display().to_string(),
        ],
    )
}

/// The daemon.json of a dockerd slipway starts: the host's own configuration
/// (`host`, the text of /etc/docker/daemon.json when there is one) with every key
/// kept, plus slipway's runtime (see [`runtime_wrapper`]), the default unless the host
/// names another default. `Err` when the host's file is not a JSON object, or sets
/// what slipway's command line sets (`hosts`: dockerd refuses both).
pub fn daemon_config(wrapper: &Path, host: Option<&str>) -> Result<String, String> {
    let mut cfg = match host.map(str::trim).filter(|h| !h.is_empty()) {
        None => serde_json::Map::new(),
        Some(h) => match serde_json::from_str::<serde_json::Value>(h) {
            Ok(serde_json::Value::Object(m)) => m,
            Ok(_) => return Err("it is not a JSON object".into()),
            Err(e) => return Err(format!("it is not JSON: {e}")),
        },
    };
    if cfg.contains_key("hosts") {
        return Err("it sets `hosts`, and slipway starts dockerd on the default socket only: start the engine yourself".into());
    }
    let runtimes = cfg
        .entry("runtimes")
        .or_insert_with(|| serde_json::json!({}));
    let Some(runtimes) = runtimes.as_object_mut() else {
        return Err("its `runtimes` is not an object".into());
    };
    runtimes.insert(
        RUNTIME.into(),
        serde_json::json!({"path": wrapper.display().to_string()}),
    );
    cfg.entry("default-runtime")
        .or_insert_with(|| RUNTIME.into());
    Ok(serde_json::to_string_pretty(&cfg).expect("a daemon.json serializes"))
}

/// A runc wrapper for dockerd. Some VMs cannot grant every capability (seen:
/// CAP_SYS_RESOURCE), and runc refuses a container that asks for one it cannot have —
/// every `--privileged` container, which includes kind's nodes. The wrapper has
/// `filter` (a copy of slipway: `__oci-capfilter`) drop, from the OCI spec as JSON,
/// the capabilities the host's bounding set (`CapBnd` in /proc/self/status) lacks,
/// then runs the real runc. A container loses nothing it could have had, and nothing
/// else in its spec changes.
pub fn runtime_wrapper(filter: &Path, runc: &Path) -> String {
    let q = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', r"'\''"));
    format!(
        r#"#!/bin/sh
# Written by slipway: drop the capabilities this host cannot grant, then run runc.
if [ -x {filter} ]; then {filter} __oci-capfilter -- "$@" || exit 1; fi
exec {runc} "$@"
"#,
        filter = q(filter),
        runc = runc.display()
    )
}

/// Where the engine is, when the environment names one other than the local default:
/// `DOCKER_HOST`, `DOCKER_CONTEXT`, or the `currentContext` of the docker CLI's
/// config.json (`config`, its text) naming a context other than `default`. slipway
/// never starts a daemon then.
pub fn engine_named_elsewhere(
    docker_host: Option<&str>,
    docker_context: Option<&str>,
    config: Option<&str>,
) -> Option<String> {
    fn set(v: Option<&str>) -> Option<&str> {
        v.map(str::trim).filter(|v| !v.is_empty())
    }
    if let Some(h) = set(docker_host) {
        return Some(format!("DOCKER_HOST={h}"));
    }
    if let Some(c) = set(docker_context).filter(|c| *c != "default") {
        return Some(format!("DOCKER_CONTEXT={c}"));
    }
    let current = config
        .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
        .and_then(|v| v.get("currentContext")?.as_str().map(String::from));
    match current.as_deref().map(str::trim) {
        Some(c) if !c.is_empty() && c != "default" => Some(format!(
            "the docker context {c:?} (currentContext in the docker CLI's config.json)"
        )),
        _ => None,
    }
}

/// Why `docker info` failed, from what it printed: (what is wrong, how to fix it).
pub fn daemon_problem(stderr: &str) -> (String, String) {
    let l = stderr.to_ascii_lowercase();
    let last = stderr
        .lines()
        .rev()
        .find(|x| !x.trim().is_empty())
        .unwrap_or("")
        .trim();
    if l.contains("permission denied") {
        (
            format!("the Docker daemon runs, but this user may not use its socket ({last})"),
            "add yourself to the docker group (`sudo usermod -aG docker $USER`, then log in again), or run as a user who may".into(),
        )
    } else if is_not_running(stderr) || l.contains("no such file or directory") {
        (
            format!("no Docker daemon answers ({last})"),
            "start it: `sudo systemctl start docker`; without systemd, `sudo dockerd &` (see README, Prerequisites); if DOCKER_HOST or a docker context points elsewhere, check it".into(),
        )
    } else {
        (
            format!("`docker info` failed: {last}"),
            "start the Docker daemon and check that `docker info` answers".into(),
        )
    }
}

#[cfg(test)]
mod tests {
    /// docker's push output without a TTY: the layers it pushed, those the registry
    /// had, and the manifest's digest.
    #[test]
    fn a_push_says_which_layers_it_sent() {
        let out = "The push refers to repository [localhost:5001/web]\n1f0c715530d8: Preparing\n5f70bf18a086: Preparing\n1f0c715530d8: Pushed\n5f70bf18a086: Layer already exists\n3c1d2e4f5a6b: Mounted from other/repo\nc-1: digest: sha256:88fa size: 739\n";
        assert_eq!(
            super::parse_push(out),
            super::PushReport {
                pushed: vec!["1f0c715530d8".into()],
                layers: 3,
                digest: Some("sha256:88fa".into()),
            }
        );
        assert_eq!(super::parse_push(""), super::PushReport::default());
    }

    use super::*;

    #[test]
    fn root_dir_from_info() {
        assert_eq!(
            parse_root_dir(r#"{"ServerVersion":"28.2.2","DockerRootDir":"/var/lib/docker"}"#)
                .as_deref(),
            Some("/var/lib/docker")
        );
        assert_eq!(parse_root_dir("Cannot connect to the Docker daemon"), None);
    }

    #[test]
    fn the_hosts_daemon_json_is_merged_not_replaced() {
        let w = Path::new("/c/docker/runc-capfilter");
        let fresh: serde_json::Value =
            serde_json::from_str(&daemon_config(w, None).unwrap()).unwrap();
        assert_eq!(fresh["default-runtime"], RUNTIME);
        let host = r#"{"log-driver":"journald","runtimes":{"nvidia":{"path":"/n"}},"insecure-registries":["r:5000"]}"#;
        let m: serde_json::Value =
            serde_json::from_str(&daemon_config(w, Some(host)).unwrap()).unwrap();
        assert_eq!(m["log-driver"], "journald");
        assert_eq!(m["insecure-registries"][0], "r:5000");
        assert_eq!(m["runtimes"]["nvidia"]["path"], "/n");
        assert_eq!(m["runtimes"][RUNTIME]["path"], "/c/docker/runc-capfilter");
        let own: serde_json::Value = serde_json::from_str(
            &daemon_config(w, Some(r#"{"default-runtime":"nvidia"}"#)).unwrap(),
        )
        .unwrap();
        assert_eq!(
            own["default-runtime"], "nvidia",
            "the host's default is kept"
        );
        assert!(daemon_config(w, Some("[1]")).is_err());
        assert!(daemon_config(w, Some("{oops")).is_err());
        assert!(daemon_config(w, Some(r#"{"hosts":["tcp://0.0.0.0:2375"]}"#)).is_err());
    }

    #[test]
    fn an_engine_named_elsewhere() {
        assert!(
            engine_named_elsewhere(Some("tcp://10.0.0.1:2376"), None, None)
                .unwrap()
                .contains("DOCKER_HOST")
        );
        assert!(engine_named_elsewhere(None, Some("remote"), None).is_some());
        assert_eq!(
            engine_named_elsewhere(Some(""), Some("default"), None),
            None
        );
        assert!(
            engine_named_elsewhere(None, None, Some(r#"{"currentContext":"ci"}"#))
                .unwrap()
                .contains("\"ci\"")
        );
        assert_eq!(
            engine_named_elsewhere(None, None, Some(r#"{"currentContext":"default"}"#)),
            None
        );
        assert_eq!(engine_named_elsewhere(None, None, Some("{}")), None);
    }

    #[test]
    fn daemon_problems() {
        let (what, fix) = super::daemon_problem("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n");
        assert!(
            what.starts_with("no Docker daemon answers") && fix.contains("dockerd"),
            "{what} {fix}"
        );
        let (what, fix) = super::daemon_problem("permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock: Get \"http://%2Fvar%2Frun%2Fdocker.sock/v1.47/info\": dial unix /var/run/docker.sock: connect: permission denied\n");
        assert!(
            what.contains("may not use its socket") && fix.contains("docker group"),
            "{what} {fix}"
        );
        let (what, _) = super::daemon_problem("something else\n");
        assert!(what.contains("something else"));
    }
}
