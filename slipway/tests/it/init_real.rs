//! Tier 3 for `slipway init`:
//! - every Skaffold example project whose deploy is helm (the Skaffold v2.16.1 module,
//!   from the Go module proxy; downloaded here when the module cache lacks it) converts
//!   with `--from`, its `plan` is valid, and what it could not map is listed;
//! - the synthetic repositories of `init.rs`, with the real helm: `init` then
//!   `deploy-local` on a real kind cluster of this test's own (`slipway-init-e2e`, on
//!   the offline node image), every smoke check init wrote green. The only addition to
//!   what init wrote is a profile naming that cluster and node image. The cluster is
//!   deleted at the end.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::init::{nested_repo, one_image_repo, secret_repo, umbrella_repo};
use crate::support::{repo, Out, Sandbox};

const SKAFFOLD: &str = "github.com/GoogleContainerTools/skaffold/v2@v2.16.1";
const CLUSTER: &str = "slipway-init-e2e";

/// The Skaffold module's directory, downloaded into the module cache if missing.
fn skaffold_module() -> PathBuf {
    let out = Command::new("go")
        .args(["mod", "download", "-json", SKAFFOLD])
        .env("GOFLAGS", "-mod=mod")
        .current_dir(std::env::temp_dir())
        .output()
        .expect("go runs (the benchmark's recipe needs it too)");
    assert!(
        out.status.success(),
        "go mod download {SKAFFOLD} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    PathBuf::from(
        v["Dir"]
            .as_str()
            .expect("go mod download -json names the Dir"),
    )
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        let t = e.file_type().unwrap();
        if t.is_dir() {
            copy_dir(&e.path(), &dest);
        } else if t.is_file() {
            std::fs::write(&dest, std::fs::read(e.path()).unwrap()).unwrap();
        }
    }
}

fn run_in(sb: &Sandbox, dir: &Path, args: &[&str]) -> Out {
    sb.run_in(dir, args)
}

/// Features slipway cannot map, as they appear in a skaffold.yaml (comments left
/// out), and a word of what init must list for each.
const UNMAPPABLE: &[(&str, &str)] = &[
    ("jib:", "jib"),
    ("bazel:", "bazel"),
    ("buildpacks:", "buildpacks"),
    ("kustomize:", "kustomize"),
    ("rawYaml:", "rawYaml"),
    ("sync:", "sync rules"),
    ("remoteChart:", "remoteChart"),
    ("patches:", "patches"),
    ("requires:", "requires"),
    ("activation:", "activation"),
];

#[test]
#[cfg_attr(
    not(slipway_ci),
    ignore = "tier 3: needs go and the Go module proxy (Skaffold v2.16.1's examples); runs in CI (CI=true) or with --ignored"
)]
fn skaffold_helm_examples_convert_and_plan() {
    let module = skaffold_module();
    let mut converted = vec![];
    for parent in ["examples", "integration/examples"] {
        let Ok(rd) = std::fs::read_dir(module.join(parent)) else {
            continue;
        };
        let mut dirs: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        dirs.sort();
        for ex in dirs {
            let file = ex.join("skaffold.yaml");
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            let code: String = text
                .lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .collect::<Vec<_>>()
                .join("\n");
            if !code.lines().any(|l| l.trim() == "helm:") {
                continue;
            }
            let name = format!("{parent}/{}", ex.file_name().unwrap().to_string_lossy());
            let sb = Sandbox::new();
            let dir = sb.dir.path().join("ex");
            copy_dir(&ex, &dir);
            let init = run_in(&sb, &dir, &["init", "--from", "skaffold.yaml"]);
            assert_eq!(init.code, 0, "{name}: init --from failed:\n{}", init.all());
            let plan = run_in(&sb, &dir, &["plan"]);
            assert_eq!(
                plan.code,
                0,
                "{name}: plan of the converted pipeline failed:\n{}\n{}",
                std::fs::read_to_string(dir.join("pipeline.toml")).unwrap_or_default(),
                plan.all()
            );
            let listed: Vec<&str> = init
                .stderr
                .lines()
                .filter(|l| l.starts_with("init: not converted: "))
                .collect();
            for (key, word) in UNMAPPABLE {
                if code.contains(key) {
                    assert!(
                        listed.iter().any(|l| l.contains(word)),
                        "{name}: uses {key} but init does not list it:\n{}",
                        init.stderr
                    );
                }
            }
            converted.push(format!("{name}: {} not converted", listed.len()));
        }
    }
    assert!(
        converted.len() >= 3,
        "expected Skaffold's helm examples, found {converted:?}"
    );
    eprintln!("converted:\n{}", converted.join("\n"));
}

/// The sample service as a static binary (what scripts/build-static.sh makes).
fn sample_binary() -> PathBuf {
    let dest = repo().join("target/nested/init-e2e/sample");
    let st = Command::new(repo().join("scripts/build-static.sh"))
        .args(["sample", dest.to_str().unwrap()])
        .env("CARGO_TARGET_DIR", repo().join("target/nested"))
        .current_dir(repo())
        .status()
        .unwrap();
    assert!(st.success(), "scripts/build-static.sh sample failed");
    dest
}

/// Every Dockerfile of a synthetic repository becomes the sample image: FROM scratch
/// and the static binary, serving /healthz on 8080.
fn with_sample_images(root: &Path, binary: &Path) {
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "Dockerfile") {
                std::fs::write(
                    &p,
                    "FROM scratch AS build\nFROM scratch\nCOPY sample /sample\nUSER 65532:65532\nENV PORT=8080\nENTRYPOINT [\"/sample\"]\n",
                )
                .unwrap();
                std::fs::copy(binary, p.parent().unwrap().join("sample")).unwrap();
            }
        }
    }
}

struct DeleteCluster;

impl Drop for DeleteCluster {
    fn drop(&mut self) {
        let _ = Command::new("kind")
            .args(["delete", "cluster", "--name", CLUSTER])
            .status();
    }
}

#[test]
#[cfg_attr(
    not(slipway_ci),
    ignore = "tier 3: needs Docker, kind, helm, kubectl and the node image; runs in CI (CI=true) or with --ignored"
)]
fn init_then_deploy_local_on_kind() {
    if let Err(why) = crate::e2e_kind::ready() {
        panic!("e2e prerequisites missing: {why} (.ci/run provides them)");
    }
    let _one = crate::support::real_cluster_lock();
    let binary = sample_binary();
    let tmp = tempfile::tempdir().unwrap();
    let _cleanup = DeleteCluster;
    type Make = fn(&Path);
    let repos: [(&str, Make); 4] = [
        ("init-one", one_image_repo),
        ("init-umbrella", umbrella_repo),
        ("init-nested", nested_repo),
        ("init-secret", secret_repo),
    ];
    let mut report = vec![];
    for (name, make) in repos {
        let dir = tmp.path().join(name);
        make(&dir);
        with_sample_images(&dir, &binary);
        let slipway = |args: &[&str]| {
            let o = Command::new(env!("CARGO_BIN_EXE_slipway"))
                .args(args)
                .current_dir(&dir)
                .env("VAULT_APP_API_TOKEN", "init-e2e-token")
                .output()
                .unwrap();
            Out {
                code: o.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            }
        };
        let init = slipway(&["init"]);
        assert_eq!(init.code, 0, "{name}: init:\n{}", init.all());
        assert!(
            !init.stderr.contains("helm was not found"),
            "{name}: the real helm was not used:\n{}",
            init.stderr
        );
        let text = std::fs::read_to_string(dir.join("pipeline.toml")).unwrap();
        assert!(text.contains("[smoke."), "{name}: no smoke check:\n{text}");
        // This test's own cluster on the offline node image: the only addition.
        let mut file = text.clone();
        file.push_str(&format!(
            "\n[profiles.init-e2e]\ndescription = \"the init e2e test's cluster\"\ncluster.provider = \"kind\"\ncluster.name = \"{CLUSTER}\"\ncluster.kind.node_image = \"${{SLIPWAY_KIND_NODE_IMAGE:-slipway-local/kind-node:v1.34.4}}\"\ncluster.kind.disable_default_cni = true\ntimeouts.cluster = \"15m\"\n"
        ));
        std::fs::write(dir.join("pipeline.toml"), file).unwrap();
        let started = std::time::Instant::now();
        let deploy = slipway(&["deploy-local", "--profile", "init-e2e", "--output", "json"]);
        assert_eq!(
            deploy.code,
            0,
            "{name}: deploy-local of\n{text}\nfailed:\n{}",
            deploy.all()
        );
        // Every smoke check init wrote ran, and passed.
        let written = text.matches("\n[smoke.").count();
        let passed: Vec<String> = crate::e2e_kind::events(&deploy.stdout)
            .iter()
            .filter(|e| e["event"] == "check" && e["stage"] == "smoke" && e["ok"] == true)
            .filter_map(|e| e["name"].as_str().map(String::from))
            .collect();
        assert_eq!(
            passed.len(),
            written,
            "{name}: smoke checks passed {passed:?}, written {written}:\n{}",
            deploy.all()
        );
        report.push(format!(
            "{name}: init + deploy-local green in {:.1}s, smoke checks {passed:?}",
            started.elapsed().as_secs_f64()
        ));
    }
    eprintln!("{}", report.join("\n"));
}
