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

/// Run a command inside a container (a kind node).
pub fn exec(container: &str, argv: &[&str]) -> Cmd {
    Cmd::new("docker", ["exec", container])
        .args(argv.iter().copied())
        .timeout(PROBE)
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
    } else if l.contains("cannot connect to the docker daemon")
        || l.contains("is the docker daemon running")
        || l.contains("no such file or directory")
    {
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
