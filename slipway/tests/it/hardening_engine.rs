//! Tier 2: the Docker engine, provisioned tools and node images are what the user
//! asked for. slipway never starts a dockerd when DOCKER_HOST or a docker context names
//! the engine, merges the host's daemon.json, edits OCI specs as JSON (dropping only
//! the capabilities the host's bounding set lacks), installs no package unasked,
//! refuses plain-HTTP mirrors, verifies every download against the SHA-256 pinned in
//! its source and every cached binary against the digest it recorded, and never
//! replaces a pinned node image or Kubernetes version with its own offline image.

use serde_json::Value;

use crate::support::Sandbox;

fn calls_of<'a>(calls: &'a [Value], tool: &str) -> Vec<&'a Value> {
    calls.iter().filter(|c| c["tool"] == tool).collect()
}

fn append(s: &Sandbox, text: &str) {
    s.append_config(text);
}

/// A recipe started in the sandbox stops at its first step: the node-image recipe at
/// its `docker info` (preflight's `docker info --format …` still answers), minikube's
/// at `go` (not on the sandbox's PATH). Its progress lines show that it ran.
fn recipes_stop_early(s: &Sandbox) {
    // The Debian packages the recipes need are installed (see
    // `no_package_is_installed_without_consent` for when they are not).
    s.add_fake("debootstrap");
    recipes_stop_at_docker_info(s);
}

fn recipes_stop_at_docker_info(s: &Sandbox) {
    s.rule(
        serde_json::json!({"tool": "docker", "match": ["info", "--format"],
        "stdout": "{\"ServerVersion\": \"27.3.1\", \"DockerRootDir\": \"/\"}\n"}),
    );
    s.rule(
        serde_json::json!({"tool": "docker", "match": ["info"], "exit": 1,
        "stderr": "stopped by the test\n"}),
    );
}

const KIND_RECIPE_RAN: &str = "the Docker daemon does not answer (docker info)";
const MINIKUBE_RECIPE_RAN: &str = "phase image: start";

fn unpullable(s: &Sandbox, image: &str) {
    s.rule(
        serde_json::json!({"tool": "docker", "match": ["image", "inspect", image], "exit": 1,
        "stderr": format!("Error response from daemon: No such image: {image}\n")}),
    );
}

// ------------------------------------------------------------ pinned node images

#[test]
fn a_pinned_kind_node_image_that_cannot_be_pulled_fails_with_the_pull_error() {
    let s = Sandbox::new();
    recipes_stop_early(&s);
    append(
        &s,
        "\n[cluster.kind]\nnode_image = \"kindest/node:v1.31.0\"\n",
    );
    unpullable(&s, "kindest/node");
    let o = s.run(&["deploy-local"]);
    assert_ne!(o.code, 0, "{}", o.all());
    assert!(
        o.stderr.contains("kindest/node:v1.31.0") && o.stderr.contains("no such host"),
        "the pull's error is shown: {}",
        o.stderr
    );
    assert!(
        o.stderr.contains("scripts/kind-node-image.sh"),
        "{}",
        o.stderr
    );
    let calls = s.calls();
    assert!(
        !calls_of(&calls, "kind")
            .iter()
            .any(|c| c["argv"][0] == "create"),
        "no cluster was created"
    );
    assert!(
        !o.all().contains(KIND_RECIPE_RAN),
        "the offline image was not built"
    );
}

#[test]
fn the_default_kind_node_image_still_falls_back_to_the_offline_one() {
    let s = Sandbox::new();
    recipes_stop_early(&s);
    unpullable(&s, "kindest/node");
    let o = s.run(&["--output", "json", "deploy-local"]);
    // The offline recipe runs (its fake bash fails) rather than the run stopping at
    // the pull.
    assert!(
        o.stdout.contains("building slipway's offline node image"),
        "{}",
        o.all()
    );
    assert!(o.all().contains(KIND_RECIPE_RAN), "{}", o.all());
}

#[test]
fn a_pinned_minikube_kubernetes_version_is_never_replaced() {
    let s = Sandbox::new();
    recipes_stop_early(&s);
    append(
        &s,
        "\n[cluster.minikube]\nkubernetes_version = \"v1.31.0\"\n",
    );
    unpullable(&s, "kicbase");
    let o = s.run(&["deploy-local", "--profile", "local-minikube"]);
    assert_ne!(o.code, 0, "{}", o.all());
    assert!(
        o.stderr.contains("kubernetes_version = \"v1.31.0\"") && o.stderr.contains("no such host"),
        "{}",
        o.stderr
    );
    let calls = s.calls();
    assert!(
        !calls_of(&calls, "minikube")
            .iter()
            .any(|c| c["argv"][0] == "start"),
        "no profile was started"
    );
    assert!(!o.all().contains(MINIKUBE_RECIPE_RAN), "{}", o.all());
}

#[test]
fn the_default_minikube_kubernetes_still_falls_back() {
    let s = Sandbox::new();
    recipes_stop_early(&s);
    unpullable(&s, "kicbase");
    let o = s.run(&[
        "--output",
        "json",
        "deploy-local",
        "--profile",
        "local-minikube",
    ]);
    assert!(
        o.stdout.contains("building slipway's offline node image"),
        "{}",
        o.all()
    );
    assert!(o.all().contains(MINIKUBE_RECIPE_RAN), "{}", o.all());
}

// ------------------------------------------------------------ the Docker engine

fn engine_stopped(s: &Sandbox, at: &str) {
    s.add_fake("dockerd");
    s.add_fake("runc");
    s.rule(serde_json::json!({"tool": "docker", "match": ["info"], "times": 1, "exit": 1,
        "stderr": format!("Cannot connect to the Docker daemon at {at}. Is the docker daemon running?\n")}));
}

/// May slipway start an engine here at all (root, no systemd)? The tests that need it
/// say so and stop otherwise.
fn may_start_engine() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    root && !std::path::Path::new("/run/systemd/system").is_dir()
}

fn refused_elsewhere(s: &Sandbox, named: &str) {
    let o = s.run(&["preflight"]);
    assert_eq!(o.code, 10, "{}", o.all());
    assert!(
        calls_of(&s.calls(), "dockerd").is_empty(),
        "no dockerd was started: {}",
        o.all()
    );
    assert!(
        o.stderr.contains(named) && o.stderr.contains("starts none here"),
        "a clear error naming {named}: {}",
        o.stderr
    );
    assert!(!s
        .dir
        .path()
        .join(".cache/slipway/docker/daemon.json")
        .exists());
}

#[test]
fn docker_host_pointing_elsewhere_never_starts_a_daemon() {
    let mut s = Sandbox::new();
    s.set_env("DOCKER_HOST", "tcp://unreachable.invalid:2376");
    engine_stopped(&s, "tcp://unreachable.invalid:2376");
    refused_elsewhere(&s, "DOCKER_HOST=tcp://unreachable.invalid:2376");
}

#[test]
fn a_docker_context_never_starts_a_daemon() {
    // The docker CLI's current context, in ~/.docker/config.json.
    let s = Sandbox::new();
    let d = s.dir.path().join(".docker");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("config.json"), r#"{"currentContext": "build-box"}"#).unwrap();
    engine_stopped(&s, "unix:///var/run/docker.sock");
    refused_elsewhere(&s, "\"build-box\"");
    // DOCKER_CONTEXT names one too.
    let mut s = Sandbox::new();
    s.set_env("DOCKER_CONTEXT", "build-box");
    engine_stopped(&s, "unix:///var/run/docker.sock");
    refused_elsewhere(&s, "DOCKER_CONTEXT=build-box");
}

#[test]
fn the_plan_shows_the_daemon_start_and_when_it_happens() {
    let s = Sandbox::new();
    let o = s.run(&["plan"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout
            .contains("dockerd --host unix:///var/run/docker.sock")
            && o.stdout
                .contains("DOCKER_HOST and docker contexts name no other engine")
            && o.stdout.contains("/etc/docker/daemon.json"),
        "{}",
        o.stdout
    );
}

fn oci_spec(args: &str) -> String {
    format!(
        r#"{{"ociVersion":"1.2.0","process":{{"user":{{"uid":0,"gid":0}},"args":{args},"env":["A=[1,]"],"capabilities":{{"bounding":["CAP_CHOWN","CAP_SYS_RESOURCE","CAP_BPF","CAP_PERFMON","CAP_CHECKPOINT_RESTORE"],"effective":["CAP_CHOWN","CAP_SYS_RESOURCE","CAP_BPF"],"permitted":["CAP_SYS_RESOURCE"]}}}},"root":{{"path":"rootfs"}}}}"#
    )
}

const ARGS: &str = r#"["sh","-c","echo [1,] \"CAP_BPF\",x ,]"]"#;

fn caps(spec: &Value, set: &str) -> Vec<String> {
    spec["process"]["capabilities"][set]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_capfilter_edits_the_spec_as_json_and_drops_only_what_the_bounding_set_lacks() {
    let s = Sandbox::new();
    let bundle = s.dir.path().join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    let spec = bundle.join("config.json");
    std::fs::write(&spec, oci_spec(ARGS)).unwrap();
    // Everything up to CAP_CHECKPOINT_RESTORE (40) but CAP_SYS_RESOURCE (24).
    let bnd = format!("{:x}", ((1u64 << 41) - 1) & !(1 << 24));
    let o = s.run(&[
        "__oci-capfilter",
        "--cap-bnd",
        &bnd,
        "--",
        "--root",
        "/run/runc",
        "create",
        "--bundle",
        bundle.to_str().unwrap(),
        "c1",
    ]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert_eq!(o.stdout, "", "it prints nothing");
    let text = std::fs::read_to_string(&spec).unwrap();
    assert!(
        text.contains(&format!("\"args\":{ARGS}")),
        "the args are byte-identical: {text}"
    );
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["process"]["env"][0], "A=[1,]");
    assert_eq!(
        caps(&v, "bounding"),
        [
            "CAP_CHOWN",
            "CAP_BPF",
            "CAP_PERFMON",
            "CAP_CHECKPOINT_RESTORE"
        ]
    );
    assert_eq!(caps(&v, "effective"), ["CAP_CHOWN", "CAP_BPF"]);
    assert!(caps(&v, "permitted").is_empty());
    assert_eq!(v["root"]["path"], "rootfs");

    // A spec with nothing to drop is not rewritten at all.
    let full = format!("{:x}", (1u64 << 41) - 1);
    let untouched = oci_spec(ARGS).replace("[1,]", "[2,]");
    std::fs::write(&spec, &untouched).unwrap();
    let o = s.run(&[
        "__oci-capfilter",
        "--cap-bnd",
        &full,
        "--",
        "run",
        "-b",
        bundle.to_str().unwrap(),
        "c2",
    ]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert_eq!(std::fs::read_to_string(&spec).unwrap(), untouched);
}

#[test]
fn a_started_engine_merges_the_hosts_daemon_json_and_its_wrapper_filters_as_json() {
    if !may_start_engine() {
        eprintln!("skipped: slipway starts an engine only as root without systemd");
        return;
    }
    let mut s = Sandbox::new();
    let host = s.dir.path().join("host-daemon.json");
    std::fs::write(
        &host,
        r#"{"log-driver": "local", "registry-mirrors": ["https://mirror.example"], "runtimes": {"other": {"path": "/opt/other-runc"}}}"#,
    )
    .unwrap();
    s.set_env("SLIPWAY_DOCKERD_HOST_CONFIG", host.to_str().unwrap());
    engine_stopped(&s, "unix:///var/run/docker.sock");
    let o = s.run(&["--output", "json", "preflight"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let dir = s.dir.path().join(".cache/slipway/docker");
    let cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("daemon.json")).unwrap()).unwrap();
    assert_eq!(cfg["log-driver"], "local", "{cfg}");
    assert_eq!(cfg["registry-mirrors"][0], "https://mirror.example");
    assert_eq!(cfg["runtimes"]["other"]["path"], "/opt/other-runc");
    assert_eq!(cfg["default-runtime"], "slipway-capfilter");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "dockerd runs what is in it as root");
        assert!(dir.join("oci-capfilter").is_file(), "a copy of slipway");
    }

    // Announced before it ran, as an event.
    let events: Vec<Value> = o
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let announce = events
        .iter()
        .position(|e| {
            e["event"] == "note"
                && e["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("starting dockerd") && m.contains("merged from"))
        })
        .unwrap_or_else(|| panic!("no announcement: {}", o.stdout));
    let started = events
        .iter()
        .position(|e| {
            e["event"] == "note"
                && e["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("started dockerd (pid"))
        })
        .expect("started");
    assert!(announce < started);

    // The wrapper dockerd runs: the spec's args survive byte for byte, and only the
    // capabilities this host's bounding set lacks are dropped.
    let bundle = s.dir.path().join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    std::fs::write(bundle.join("config.json"), oci_spec(ARGS)).unwrap();
    let w = std::process::Command::new(dir.join("runc-capfilter"))
        .args(["create", "--bundle", bundle.to_str().unwrap(), "c1"])
        .env("FAKE_LOG", s.dir.path().join("calls.jsonl"))
        .env("FAKE_STATE", s.dir.path().join("state"))
        .env("FAKE_RULES", s.dir.path().join("rules.json"))
        .env("PATH", format!("{}:/usr/bin:/bin", s.bin.display()))
        .output()
        .unwrap();
    assert!(w.status.success(), "{w:?}");
    let text = std::fs::read_to_string(bundle.join("config.json")).unwrap();
    assert!(text.contains(&format!("\"args\":{ARGS}")), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let bnd = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .map(|h| u64::from_str_radix(h.trim(), 16).unwrap())
        .unwrap();
    let index = |c: &str| match c {
        "CAP_CHOWN" => 0,
        "CAP_SYS_RESOURCE" => 24,
        "CAP_PERFMON" => 38,
        "CAP_BPF" => 39,
        "CAP_CHECKPOINT_RESTORE" => 40,
        _ => unreachable!(),
    };
    let want: Vec<&str> = [
        "CAP_CHOWN",
        "CAP_SYS_RESOURCE",
        "CAP_BPF",
        "CAP_PERFMON",
        "CAP_CHECKPOINT_RESTORE",
    ]
    .into_iter()
    .filter(|c| (bnd >> index(c)) & 1 == 1)
    .collect();
    assert_eq!(caps(&v, "bounding"), want, "CapBnd {bnd:x}");
    // runc ran after the filter, with the same arguments.
    let runc = calls_of(&s.calls(), "runc")
        .last()
        .map(|c| c["argv"].clone())
        .expect("runc ran");
    assert_eq!(runc[1], "--bundle");
}

// ------------------------------------------------------------ provisioned tools

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(bytes))
}

#[test]
fn a_plain_http_mirror_is_refused() {
    let s = Sandbox::new();
    append(
        &s,
        "\n[tools]\nmirror = \"http://mirror.internal/releases\"\n",
    );
    let o = s.run(&["plan"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr
            .contains("mirror \"http://mirror.internal/releases\" is plain HTTP")
            && o.stderr.contains("use an https:// mirror"),
        "{}",
        o.stderr
    );
    assert!(s.calls().is_empty(), "nothing ran");
}

#[test]
fn a_download_that_does_not_match_the_source_pin_is_refused_whatever_the_mirror_says() {
    if provision_arch() != "amd64" {
        return;
    }
    let mut s = Sandbox::new();
    s.remove_tool("kind");
    // The mirror serves a kind and, beside it, a checksum file that matches it.
    let dir = s.dir.path().join("downloads");
    std::fs::create_dir_all(&dir).unwrap();
    let evil = b"#!/bin/sh\necho kind v0.30.0 go1.24 linux/amd64\n";
    std::fs::write(dir.join("kind-linux-amd64"), evil).unwrap();
    std::fs::write(
        dir.join("kind-linux-amd64.sha256sum"),
        format!("{}  kind-linux-amd64\n", sha256_hex(evil)),
    )
    .unwrap();
    s.set_env("FAKE_DOWNLOAD_DIR", dir.to_str().unwrap());
    let o = s.run(&["preflight"]);
    assert_eq!(o.code, 10, "{}", o.all());
    assert!(
        o.stderr
            .contains("517ab7fc89ddeed5fa65abf71530d90648d9638ef0c4cde22c2c11f8097b8889")
            && o.stderr.contains("pinned in slipway's source")
            && o.stderr.contains("not installed"),
        "{}",
        o.stderr
    );
    let cached = s
        .dir
        .path()
        .join(".cache/slipway/toolchain/bin/kind-v0.30.0");
    assert!(!cached.exists(), "nothing unverified is installed");
}

#[test]
fn a_version_with_no_pin_is_not_downloaded() {
    let mut s = Sandbox::new();
    s.remove_tool("kind");
    append(&s, "\n[tools]\nkind = \"v0.29.0\"\n");
    let dir = s.dir.path().join("downloads");
    std::fs::create_dir_all(&dir).unwrap();
    let file = format!("kind-linux-{}", provision_arch());
    std::fs::write(dir.join(&file), b"#!/bin/sh\n").unwrap();
    s.set_env("FAKE_DOWNLOAD_DIR", dir.to_str().unwrap());
    let o = s.run(&["preflight"]);
    assert_eq!(o.code, 10, "{}", o.all());
    assert!(
        o.stderr.contains("no SHA-256 is pinned for kind v0.29.0")
            && o.stderr.contains("[tools.sha256]"),
        "{}",
        o.stderr
    );
    assert!(
        calls_of(&s.calls(), "curl").is_empty(),
        "nothing was fetched"
    );
}

fn provision_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Replace the file at `path` (a link or a file) with an executable holding `bytes`.
fn plant(path: &std::path::Path, bytes: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::remove_file(path).unwrap();
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_tampered_cached_binary_is_detected_and_rebuilt() {
    let s = Sandbox::new();
    s.remove_tool("kind");
    s.add_fake("go");
    let o = s.run(&["preflight"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let cache = s.dir.path().join(".cache/slipway");
    let manifest = cache.join("toolchain/manifest.json");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&manifest), 0o600);
        assert_eq!(mode(manifest.parent().unwrap()), 0o700);
    }
    let kind = cache.join("toolchain/bin/kind-v0.30.0");
    let m: Value = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    assert_eq!(
        m[kind.to_str().unwrap()],
        sha256_hex(&std::fs::read(&kind).unwrap()),
        "the build's SHA-256 is recorded"
    );
    // Someone swaps the cached binary (same name, still a working kind).
    let real = std::fs::read(&kind).unwrap();
    let mut tampered = real.clone();
    tampered.extend_from_slice(b"\n# tampered\n");
    plant(&kind, &tampered);
    let builds = |s: &Sandbox| calls_of(&s.calls(), "go").len();
    assert_eq!(builds(&s), 1);
    let o = s.run(&["--output", "json", "preflight"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout.contains("not the") && o.stdout.contains("recorded when slipway put it there"),
        "the mismatch is said: {}",
        o.stdout
    );
    assert_eq!(builds(&s), 2, "rebuilt, not used");
    assert_ne!(std::fs::read(&kind).unwrap(), tampered);

    // `status` (no preflight) does not adopt a tampered binary either.
    plant(&kind, &tampered);
    let before = s.calls().len();
    s.run(&["status"]);
    assert!(
        s.calls()[before..]
            .iter()
            .all(|c| c["exe"] != kind.to_str().unwrap()),
        "the tampered binary never ran"
    );
}

// ------------------------------------------------------------ tier 3

/// Tier 3, the real Docker engine and kind: a pinned node image that this machine
/// cannot pull stops the run at the cluster stage with docker's own error, before
/// any cluster exists (cheap: nothing is created or built).
#[test]
#[cfg_attr(
    not(slipway_ci),
    ignore = "tier 3: needs Docker, kind, helm and kubectl; runs in CI (CI=true) or with --ignored"
)]
fn tier3_a_pinned_node_image_that_cannot_be_pulled_fails_before_any_cluster_exists() {
    use std::process::Command;
    for tool in ["docker", "kind", "helm", "kubectl"] {
        assert!(
            which::which(tool).is_ok(),
            "{tool} is required for this test: .ci/run provides it"
        );
    }
    let work = tempfile::tempdir().unwrap();
    let project = work.path().join("project");
    let status = Command::new("cp")
        .arg("-a")
        .arg(crate::support::repo().join("slipway/tests/fixtures/app"))
        .arg(&project)
        .status()
        .unwrap();
    assert!(status.success());
    let image = "kindest/node:v1.0.0-slipway-pin-check";
    let cfg = project.join("pipeline.toml");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("name = \"fx\"", "name = \"slipway-pin-t3\"");
    std::fs::write(
        &cfg,
        format!("{text}\n[cluster.kind]\nnode_image = \"{image}\"\n"),
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args(["deploy-local"])
        .current_dir(&project)
        .env("CI", "1")
        .env("FIXTURE_TOKEN", "tier3-token-value-1234")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_ne!(o.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(image) && stderr.contains("docker pull"),
        "the pull and its error are shown: {stderr}"
    );
    assert!(
        !stderr.contains("building slipway's offline node image"),
        "{stderr}"
    );
    let clusters = Command::new("kind")
        .args(["get", "clusters"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&clusters.stdout).contains("slipway-pin-t3"),
        "no cluster was created"
    );
}

// ------------------------------------------------------------ packages

#[test]
fn no_package_is_installed_without_consent() {
    let s = Sandbox::new();
    recipes_stop_at_docker_info(&s);
    unpullable(&s, "kindest/node");
    // debootstrap is not on the sandbox's PATH: the node image's recipe would
    // apt-get install it.
    let o = s.run(&["deploy-local"]);
    assert_ne!(o.code, 0, "{}", o.all());
    assert!(
        o.stderr.contains("apt-get install -y debootstrap")
            && o.stderr.contains("--install-packages"),
        "the command to run is given: {}",
        o.stderr
    );
    assert!(!o.all().contains(KIND_RECIPE_RAN), "the recipe did not run");
    // Asked: the recipe runs (and may install what it needs).
    let o = s.run(&["--install-packages", "deploy-local"]);
    assert!(o.all().contains(KIND_RECIPE_RAN), "{}", o.all());
}
