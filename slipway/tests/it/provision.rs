//! Tier 2: the set-up a run does for itself, with fake tools. A missing tool is
//! provisioned into slipway's cache (a fake `go` builds it; a fake `curl` serves an
//! official release) and used for every call without touching PATH; a tool older
//! than the pin is replaced; `--no-provision` refuses; a node image that cannot be
//! pulled is built offline; a stopped Docker engine is started.

use serde_json::Value;

use crate::support::{repo, Sandbox};

fn calls_of<'a>(calls: &'a [Value], tool: &str) -> Vec<&'a Value> {
    calls.iter().filter(|c| c["tool"] == tool).collect()
}

fn json_events(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn notes(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["event"] == "note")
        .map(|e| e["message"].as_str().unwrap_or("").to_string())
        .collect()
}

fn check_detail(events: &[Value], name: &str) -> String {
    events
        .iter()
        .find(|e| e["event"] == "check" && e["name"] == name)
        .map(|e| e["detail"].as_str().unwrap_or("").to_string())
        .unwrap_or_else(|| panic!("no check {name}"))
}

#[test]
fn a_missing_tool_is_built_into_the_cache_and_used_for_every_call() {
    let s = Sandbox::new();
    s.remove_tool("kind");
    s.add_fake("go");
    let o = s.run(&["--output", "json", "deploy-local"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let ev = json_events(&o.stdout);
    let cache = s
        .dir
        .path()
        .join(".cache/slipway/toolchain/bin/kind-v0.30.0");
    let calls = s.calls();

    let go = calls_of(&calls, "go");
    assert_eq!(go.len(), 1, "one build: {go:?}");
    assert_eq!(go[0]["argv"][0], "install");
    assert_eq!(
        go[0]["argv"].as_array().unwrap().last().unwrap(),
        "sigs.k8s.io/kind@v0.30.0"
    );
    // No official release could be fetched (the fake curl is offline), so it was built.
    assert!(calls_of(&calls, "curl")
        .iter()
        .any(|c| c["argv"].to_string().contains("kind-linux-")));

    // Every kind call ran the provisioned binary; nobody's PATH changed.
    let kind = calls_of(&calls, "kind");
    assert!(kind.len() >= 3, "{kind:?}");
    for c in &kind {
        assert_eq!(c["exe"], cache.to_str().unwrap(), "{c}");
        let path = c["env"]["PATH"].as_str().unwrap();
        assert!(
            path.ends_with(&format!("{}:/usr/bin:/bin", s.bin.display()))
                && !path.contains(".cache/slipway"),
            "{path}"
        );
    }
    let d = check_detail(&ev, "kind");
    assert!(
        d.contains("0.30.0") && d.contains("built from the Go module proxy"),
        "{d}"
    );
    // The recipe's phases came out as progress notes.
    let n = notes(&ev);
    assert!(
        n.iter().any(|m| m == "kind: start") && n.iter().any(|m| m.starts_with("kind: done in")),
        "{n:?}"
    );
    assert!(
        n.iter()
            .any(|m| m.starts_with("kind: building v0.30.0 from the Go module proxy")),
        "{n:?}"
    );

    // The second run finds it in the cache and builds nothing.
    let before = s.calls().len();
    let o = s.run(&["--output", "json", "deploy-local"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let again = &s.calls()[before..];
    assert!(calls_of(again, "go").is_empty() && calls_of(again, "curl").is_empty());
    assert!(
        check_detail(&json_events(&o.stdout), "kind").contains("slipway's cache"),
        "{}",
        o.stdout
    );
}

/// Go's name for this machine's architecture, as the release URLs use it.
pub(crate) fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// A fake "official release" of `tool` at `version` in a download dir, with its
/// checksum file; `sha` overrides the published digest.
fn publish(s: &Sandbox, file: &str, sum_file: &str, sha: Option<&str>) -> std::path::PathBuf {
    let dir = s.dir.path().join("downloads");
    std::fs::create_dir_all(&dir).unwrap();
    let fake = repo().join("slipway/tests/it/support/fake_tool.py");
    std::fs::copy(&fake, dir.join(file)).unwrap();
    let real = {
        use sha2::Digest;
        format!(
            "{:x}",
            sha2::Sha256::digest(std::fs::read(dir.join(file)).unwrap())
        )
    };
    std::fs::write(
        dir.join(sum_file),
        format!("{}  {file}\n", sha.unwrap_or(&real)),
    )
    .unwrap();
    dir
}

#[test]
fn a_tool_older_than_the_pin_is_replaced_by_the_verified_release() {
    let mut s = Sandbox::new();
    let cfg = s.project.join("pipeline.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    let dir = publish(&s, "kubectl", "kubectl.sha256", None);
    // slipway's source pins no SHA-256 for this kubectl: the pipeline does.
    let digest = std::fs::read_to_string(dir.join("kubectl.sha256")).unwrap();
    let digest = digest.split_whitespace().next().unwrap();
    text.push_str(&format!(
        "\n[tools]\nkubectl = \"v1.34.13\"\n[tools.sha256]\nkubectl = \"{digest}\"\n"
    ));
    std::fs::write(&cfg, text).unwrap();
    s.set_env("FAKE_DOWNLOAD_DIR", dir.to_str().unwrap());
    let o = s.run(&["--output", "json", "deploy-local"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let ev = json_events(&o.stdout);
    let d = check_detail(&ev, "kubectl");
    assert!(
        d.contains("1.34.13") && d.contains("downloaded, SHA-256 verified"),
        "{d}"
    );
    let n = notes(&ev);
    assert!(
        n.iter()
            .any(|m| m.contains("1.31.2") && m.contains("older than 1.34.13")),
        "the reason for provisioning is said: {n:?}"
    );
    let calls = s.calls();
    let fetched: Vec<String> = calls_of(&calls, "curl")
        .iter()
        .map(|c| c["argv"].as_array().unwrap().last().unwrap().to_string())
        .collect();
    assert!(
        fetched
            .iter()
            .any(|u| u.contains("https://dl.k8s.io/release/v1.34.13/bin/linux/")),
        "{fetched:?}"
    );
    let apply = calls_of(&calls, "kubectl")
        .into_iter()
        .filter(|c| c["argv"].to_string().contains("apply"))
        .collect::<Vec<_>>();
    assert!(!apply.is_empty());
    for c in apply {
        assert!(
            c["exe"]
                .as_str()
                .unwrap()
                .ends_with(".cache/slipway/toolchain/bin/kubectl-v1.34.13"),
            "{c}"
        );
    }
}

#[test]
fn a_release_whose_checksum_does_not_match_is_not_installed() {
    let mut s = Sandbox::new();
    s.remove_tool("helm");
    s.append_config(&format!(
        "\n[tools.sha256]\nhelm = \"{}\"\n",
        "0".repeat(64)
    ));
    // Published for this machine's architecture, so the check below holds on any.
    let arch = go_arch();
    let dir = publish(
        &s,
        &format!("helm-v4.3.1-linux-{arch}.tar.gz"),
        &format!("helm-v4.3.1-linux-{arch}.tar.gz.sha256sum"),
        Some(&"0".repeat(64)),
    );
    s.set_env("FAKE_DOWNLOAD_DIR", dir.to_str().unwrap());
    let o = s.run(&["preflight"]);
    assert_eq!(o.code, 10, "{}", o.all());
    let helm = s
        .dir
        .path()
        .join(".cache/slipway/toolchain/bin/helm-v4.3.1");
    assert!(!helm.exists(), "nothing unverified is installed");
    assert!(
        o.stderr.contains("SHA-256") && o.stderr.contains("not installed"),
        "{}",
        o.stderr
    );
    // Without Go there is no build to fall back on, and preflight says so.
    assert!(o.stderr.contains("needs Go"), "{}", o.stderr);
}

#[test]
fn no_provision_refuses_instead_of_provisioning() {
    for how in ["flag", "env"] {
        let mut s = Sandbox::new();
        s.remove_tool("kind");
        s.add_fake("go");
        let o = if how == "flag" {
            s.run(&["--no-provision", "preflight"])
        } else {
            s.set_env("SLIPWAY_NO_PROVISION", "1");
            s.run(&["preflight"])
        };
        assert_eq!(o.code, 10, "{how}: {}", o.all());
        assert!(
            o.stderr.contains("kind") && o.stderr.contains("not found on PATH"),
            "{}",
            o.stderr
        );
        assert!(o.stderr.contains("drop --no-provision"), "{}", o.stderr);
        let calls = s.calls();
        assert!(calls_of(&calls, "go").is_empty() && calls_of(&calls, "curl").is_empty());
    }
}

/// The recipe hash the node-image script computes for itself.
pub(crate) fn node_recipe_hash() -> String {
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg("cat kind-node-image.sh kind-node/* | sha256sum | cut -c1-12")
        .current_dir(repo().join("slipway/recipes"))
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn a_node_image_that_cannot_be_pulled_is_built_offline_and_used() {
    let s = Sandbox::new();
    // The packages the recipe needs are installed (slipway installs none unasked).
    s.add_fake("debootstrap");
    s.rule(serde_json::json!({"tool": "docker", "match": ["image", "inspect", "kindest/node"], "exit": 1,
        "stderr": "Error response from daemon: No such image: kindest/node\n"}));
    s.rule(
        serde_json::json!({"tool": "docker", "match": ["dev.slipway.recipe"],
        "stdout": format!("{}\n", node_recipe_hash())}),
    );
    let o = s.run(&["--output", "json", "deploy-local"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let n = notes(&json_events(&o.stdout));
    assert!(
        n.iter().any(|m| m.contains("cannot be pulled")
            && m.contains("no such host")
            && m.contains("slipway-local/kind-node:v1.34.4")),
        "{n:?}"
    );
    // The recipe ran (and found its image up to date: its own progress line).
    assert!(
        n.iter().any(|m| m.contains("is up to date (recipe")),
        "{n:?}"
    );
    let calls = s.calls();
    let create = calls_of(&calls, "kind")
        .into_iter()
        .find(|c| c["argv"][0] == "create")
        .expect("kind create");
    let argv = create["argv"].to_string();
    assert!(
        argv.contains("\"--image\",\"slipway-local/kind-node:v1.34.4\""),
        "{argv}"
    );
    assert!(
        create["stdin"]
            .as_str()
            .unwrap()
            .contains("disableDefaultCNI"),
        "the offline image brings its own CNI"
    );
    // The pull was tried once, before anything was built.
    let pulls = calls_of(&calls, "docker")
        .into_iter()
        .filter(|c| c["argv"][0] == "pull")
        .count();
    assert_eq!(pulls, 1);
}

/// A sandbox whose Docker engine does not answer the first `docker info`, on a host
/// that is root or not and runs systemd or not (whatever this machine is).
fn stopped_engine(euid: &str, systemd: &str) -> Sandbox {
    let mut s = Sandbox::new();
    s.add_fake("dockerd");
    s.add_fake("runc");
    s.set_env("SLIPWAY_TEST_EUID", euid);
    s.set_env("SLIPWAY_TEST_SYSTEMD", systemd);
    s.rule(serde_json::json!({"tool": "docker", "match": ["info"], "times": 1, "exit": 1,
        "stderr": "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n"}));
    s
}

/// Not ours to start (systemd owns the engine, or slipway is not root): the fix is
/// printed instead, and nothing is started.
#[test]
fn a_stopped_docker_engine_that_is_not_ours_gets_its_fix() {
    for (euid, systemd, fix) in [
        ("0", "1", "start it: `sudo systemctl start docker`"),
        ("1000", "1", "start it: `sudo systemctl start docker`"),
        ("1000", "0", "start it as root (`sudo dockerd &`)"),
    ] {
        let s = stopped_engine(euid, systemd);
        let o = s.run(&["preflight"]);
        assert_eq!(o.code, 10, "euid {euid}, systemd {systemd}: {}", o.all());
        assert!(
            o.stderr.contains(fix),
            "euid {euid}, systemd {systemd}: {}",
            o.stderr
        );
        assert!(calls_of(&s.calls(), "dockerd").is_empty());
        assert!(!s.dir.path().join(".cache/slipway/docker").exists());
    }
}

#[test]
fn a_stopped_docker_engine_is_started() {
    let s = stopped_engine("0", "0");
    let o = s.run(&["--output", "json", "preflight"]);
    let calls = s.calls();
    assert_eq!(o.code, 0, "{}", o.all());
    let d = calls_of(&calls, "dockerd");
    assert_eq!(d.len(), 1, "{d:?}");
    let dir = s.dir.path().join(".cache/slipway/docker");
    let wrapper = dir.join("runc-capfilter");
    assert_eq!(
        d[0]["argv"],
        serde_json::json!([
            "--host",
            "unix:///var/run/docker.sock",
            "--config-file",
            dir.join("daemon.json").to_str().unwrap()
        ])
    );
    let cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("daemon.json")).unwrap()).unwrap();
    assert_eq!(cfg["default-runtime"], "slipway-capfilter");
    assert_eq!(
        cfg["runtimes"]["slipway-capfilter"]["path"],
        wrapper.to_str().unwrap()
    );
    let text = std::fs::read_to_string(&wrapper).unwrap();
    assert!(
        text.contains(&format!("exec {}", s.bin.join("runc").display())),
        "{text}"
    );
    let detail = check_detail(&json_events(&o.stdout), "docker daemon");
    assert!(detail.starts_with("started by slipway"), "{detail}");
}

#[test]
fn a_running_docker_engine_is_never_touched() {
    let s = Sandbox::new();
    s.add_fake("dockerd");
    s.add_fake("runc");
    let o = s.run(&["preflight"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(calls_of(&s.calls(), "dockerd").is_empty());
    assert!(!s.dir.path().join(".cache/slipway/docker").exists());
}

/// The runtime wrapper slipway gives a dockerd it starts: the capabilities this
/// host's bounding set lacks leave the OCI spec (and only those), everything else
/// stays, and runc runs.
#[test]
fn the_runtime_wrapper_strips_capabilities_from_a_spec() {
    let dir = tempfile::tempdir().unwrap();
    let fake_runc = dir.path().join("runc");
    std::fs::write(&fake_runc, "#!/bin/sh\necho ran \"$@\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake_runc, std::fs::Permissions::from_mode(0o755)).unwrap();
    let wrapper = dir.path().join("wrapper");
    std::fs::write(
        &wrapper,
        slipway::tools::docker::runtime_wrapper(
            std::path::Path::new(env!("CARGO_BIN_EXE_slipway")),
            &fake_runc,
        ),
    )
    .unwrap();
    let bundle = dir.path().join("b");
    std::fs::create_dir(&bundle).unwrap();
    let spec = r#"{"process":{"capabilities":{"bounding":["CAP_CHOWN","CAP_BPF","CAP_SYS_ADMIN","CAP_PERFMON","CAP_SYS_RESOURCE"],"effective":["CAP_CHECKPOINT_RESTORE"]}},"x":"CAP_BPFX"}"#;
    std::fs::write(bundle.join("config.json"), spec).unwrap();
    let mut c = std::process::Command::new("sh");
    c.arg(&wrapper)
        .args(["create", "--bundle"])
        .arg(&bundle)
        .arg("id");
    let out = c.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ran create --bundle"));
    let after: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bundle.join("config.json")).unwrap())
            .unwrap();
    let bnd =
        slipway::tools::oci::parse_cap_bnd(&std::fs::read_to_string("/proc/self/status").unwrap())
            .unwrap();
    let has = |c: &&str| slipway::tools::oci::grantable(c, bnd);
    let bounding: Vec<&str> = [
        "CAP_CHOWN",
        "CAP_BPF",
        "CAP_SYS_ADMIN",
        "CAP_PERFMON",
        "CAP_SYS_RESOURCE",
    ]
    .into_iter()
    .filter(has)
    .collect();
    let effective: Vec<&str> = ["CAP_CHECKPOINT_RESTORE"].into_iter().filter(has).collect();
    assert_eq!(
        after["process"]["capabilities"]["bounding"],
        serde_json::json!(bounding)
    );
    assert_eq!(
        after["process"]["capabilities"]["effective"],
        serde_json::json!(effective)
    );
    assert_eq!(after["x"], "CAP_BPFX");
}

/// `status` and `logs` have no preflight: a tool slipway provisioned earlier still
/// serves them when PATH has none.
#[test]
fn jobs_without_a_preflight_use_the_provisioned_tools_too() {
    let s = Sandbox::new();
    s.remove_tool("kind");
    s.add_fake("go");
    // slipway provisions kind (and records its SHA-256) on the first run.
    assert_eq!(s.run(&["deploy-local"]).code, 0);
    let cached = s
        .dir
        .path()
        .join(".cache/slipway/toolchain/bin/kind-v0.30.0");
    assert!(cached.exists());
    let before = s.calls().len();
    let o = s.run(&["status"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let kind: Vec<Value> = s.calls()[before..]
        .iter()
        .filter(|c| c["tool"] == "kind")
        .cloned()
        .collect();
    assert!(
        !kind.is_empty(),
        "status asks kind whether the cluster is up"
    );
    assert!(kind.iter().all(|c| c["exe"] == cached.to_str().unwrap()));
}
