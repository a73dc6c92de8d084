//! The local registry (kind's `delivery = "registry"`): published on loopback only,
//! on the kind network only, with no restart policy, and removed by `down --cluster`.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;

use crate::support::{repo, Sandbox};

/// `down --cluster` removes the registry's container and its data volume along with
/// the cluster, so nothing others could push to outlives it.
#[test]
fn down_cluster_removes_the_local_registry() {
    let s = Sandbox::new();
    let pipeline = s.project.join("pipeline.toml");
    let mut text = std::fs::read_to_string(&pipeline).unwrap();
    text.push_str("[profiles.kind-registry]\ncluster.kind.delivery = \"registry\"\n");
    std::fs::write(&pipeline, text).unwrap();
    let o = s.run(&["deploy-local"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let o = s.run(&["down", "--cluster", "--profile", "kind-registry"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let lines = s.argv_lines();
    let at = |needle: &str| {
        lines
            .iter()
            .position(|l| l == needle)
            .unwrap_or_else(|| panic!("no `{needle}` in {lines:#?}"))
    };
    let delete = at("kind delete cluster --name fx");
    let container = at("docker rm --force --volumes slipway-registry");
    let volume = at("docker volume rm --force slipway-registry-data");
    assert!(delete < container && container < volume, "{lines:#?}");
    // Without --cluster the registry stays (it serves the cluster that stays).
    let o = s.run(&["down", "--profile", "kind-registry"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert_eq!(
        s.argv_lines()
            .iter()
            .filter(|l| l.starts_with("docker rm"))
            .count(),
        1
    );
}

/// A stand-in for docker, kind and kubectl that records its argv and answers what
/// the recipe asks: no registry container yet, the cluster `fx` with one node whose
/// containerd is already configured.
const STUB: &str = r#"#!/bin/bash
echo "$(basename "$0") $*" >> "$STUB_LOG"
[[ " $* " == *" -i "* || "$(basename "$0")" == kubectl ]] && cat > /dev/null
case "$(basename "$0") $1 $2" in
  "docker inspect -f") [[ "$3" == *State.Status* ]] && exit 1
                       [[ "$3" == *Networks.kind* ]] && echo '{"NetworkID":"n1"}' ;;
  "docker image inspect")
    # A hostile user who sees the build context's directory appear in the shared
    # TMPDIR plants a link beside it, at the name a log could be given.
    for d in "$TMPDIR"/tmp.*; do [[ -d "$d" ]] && ln -s "$VICTIM" "$d.log"; done
    exit 1 ;;
  "kind get clusters") echo fx ;;
  "kind get nodes") echo fx-control-plane ;;
esac
exit 0
"#;

/// The recipe starts the registry published on 127.0.0.1 only, on the kind network
/// only, with no restart policy (`--restart=no`): it does not come back by itself
/// after `down` or an engine restart. What it writes in TMPDIR is mktemp's, never a
/// name another user could have planted a link at.
#[test]
fn the_registry_container_binds_loopback_only_and_never_restarts_itself() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    for tool in ["docker", "kind", "kubectl"] {
        let p = bin.join(tool);
        std::fs::write(&p, STUB).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    // The registry binary the recipe would build with go: present already.
    let cache = dir.path().join("cache");
    let reg_bin = cache.join("registry/v3.1.2/registry");
    std::fs::create_dir_all(reg_bin.parent().unwrap()).unwrap();
    std::fs::write(
        &reg_bin,
        "#!/bin/sh\necho 'registry github.com/distribution/distribution/v3 v3.1.2'\n",
    )
    .unwrap();
    std::fs::set_permissions(&reg_bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    // What answers on the published port once the container "runs".
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in listener.incoming().take(20) {
            let Ok(mut c) = c else { return };
            let mut b = [0u8; 512];
            let _ = c.read(&mut b);
            let _ = c.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}");
        }
    });
    let log = dir.path().join("calls.log");
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "precious\n").unwrap();
    let o = std::process::Command::new("bash")
        .arg(repo().join("slipway/recipes/registry.sh"))
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env("HOME", dir.path())
        .env("TMPDIR", dir.path())
        .env("STUB_LOG", &log)
        .env("VICTIM", &victim)
        .env("SLIPWAY_CACHE", &cache)
        .env("CLUSTER", "fx")
        .env("REG_PORT", port.to_string())
        .output()
        .unwrap();
    let calls = std::fs::read_to_string(&log).unwrap_or_default();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}\n{calls}");
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "precious\n",
        "the recipe wrote through a planted link"
    );
    assert!(calls.contains("docker build"), "{calls}");
    let run: Vec<&str> = calls
        .lines()
        .filter(|l| l.starts_with("docker run"))
        .collect();
    assert_eq!(run.len(), 1, "{calls}");
    let args: Vec<&str> = run[0].split_whitespace().collect();
    let publish = args
        .windows(2)
        .filter(|w| w[0] == "-p" || w[0] == "--publish")
        .map(|w| w[1])
        .collect::<Vec<_>>();
    assert_eq!(publish, [format!("127.0.0.1:{port}:5000")], "{}", run[0]);
    assert!(args.contains(&"--restart=no"), "{}", run[0]);
    assert!(!run[0].contains("unless-stopped") && !run[0].contains("always"));
    let network = args.windows(2).find(|w| w[0] == "--network").map(|w| w[1]);
    assert_eq!(network, Some("kind"), "{}", run[0]);
}
