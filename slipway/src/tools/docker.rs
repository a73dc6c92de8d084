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

/// The daemon.json of a dockerd slipway starts: a default runtime that drops the
/// capabilities this host cannot grant (see [`runtime_wrapper`]).
pub fn daemon_config(wrapper: &Path) -> String {
    let cfg = serde_json::json!({
        "runtimes": {RUNTIME: {"path": wrapper.display().to_string()}},
        "default-runtime": RUNTIME,
    });
    serde_json::to_string_pretty(&cfg).expect("a daemon.json serializes")
}

/// A runc wrapper for dockerd. Some VMs cannot grant every capability (seen:
/// CAP_SYS_RESOURCE, CAP_BPF, CAP_PERFMON, CAP_CHECKPOINT_RESTORE), and runc refuses
/// a container that asks for one it cannot have — every `--privileged` container,
/// which includes kind's nodes. This drops, from the OCI spec (`--bundle DIR` or
/// `--process FILE`), those four and whatever the host's bounding set lacks, then
/// runs the real runc. A container loses nothing it could have had.
pub fn runtime_wrapper(runc: &Path) -> String {
    format!(
        r#"#!/usr/bin/env bash
# Written by slipway: drop capabilities this host cannot grant, then run runc.
names=(CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP
  LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER
  SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE
  SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP
  MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF
  CHECKPOINT_RESTORE)
bnd=0
while read -r k v; do [[ $k == CapBnd: ]] && bnd=$((16#$v)); done </proc/self/status
drop=(SYS_RESOURCE BPF PERFMON CHECKPOINT_RESTORE)
for i in "${{!names[@]}}"; do (((bnd >> i) & 1)) || drop+=("${{names[$i]}}"); done
expr=""
for c in "${{drop[@]}}"; do expr="$expr;s/\"CAP_$c\",\{{0,1\}}//g"; done
expr="${{expr#;}};s/,\]/]/g"
args=("$@")
for ((i = 0; i < ${{#args[@]}}; i++)); do
  f=""
  case "${{args[$i]}}" in
    --bundle | -b) f="${{args[$((i + 1))]}}/config.json" ;;
    --process | -p) f="${{args[$((i + 1))]}}" ;;
  esac
  if [[ -n "$f" && -f "$f" ]]; then sed -i "$expr" "$f"; fi
done
exec {runc} "$@"
"#,
        runc = runc.display()
    )
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
