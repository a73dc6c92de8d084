//! Tier 3, end to end on a real minikube (docker driver) on this machine:
//!
//! 1. deploy-local creates profile slipway-e2e-mk: minikube's own base image cannot be
//!    pulled here, so slipway builds its offline one (slipway/recipes/minikube.sh) and
//!    starts from it (minikube itself is provisioned by the same recipe when it is not
//!    on PATH); then build, load (checked on the node: `minikube image load` exits 0
//!    when it fails), deploy, rollout, health and the smoke suite through a
//!    port-forward
//! 2. a rerun with nothing changed skips build, load and the helm upgrade
//! 3. a config change rolls the release
//! 4. an image that was never loaded fails the rollout stage with the pod's reason
//! 5. down --cluster deletes the profile (`minikube status` then exits 85) and its
//!    node container
//!
//! Needs Docker and Go (its module proxy); outside CI a missing piece skips the test,
//! in CI it fails. Timings go to stderr and target/e2e-minikube-report.txt.

use std::process::Command;

use crate::e2e_kind::{assert_smoke_passed, events, expect_ok, first_error_line, slipway_in, Run};
use crate::support::repo;

const PROFILE: &str = "slipway-e2e-mk";

fn ready() -> Result<(), String> {
    for t in ["docker", "go"] {
        which::which(t).map_err(|_| format!("{t} is not on PATH"))?;
    }
    let docker = Command::new("docker")
        .arg("info")
        .output()
        .map_err(|e| e.to_string())?;
    if !docker.status.success() {
        return Err("the Docker daemon does not answer".into());
    }
    Ok(())
}

/// minikube from PATH, else the one slipway provisioned into its cache.
fn minikube_bin() -> std::path::PathBuf {
    which::which("minikube").unwrap_or_else(|_| {
        let bin = std::path::PathBuf::from(std::env::var("HOME").unwrap_or_default())
            .join(".cache/slipway/toolchain/bin");
        std::fs::read_dir(&bin)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("minikube-v"))
            })
            .unwrap_or_else(|| panic!("no minikube on PATH or in {}", bin.display()))
    })
}

fn run(profile: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    slipway_in(profile, args, env)
}

fn node_container() -> String {
    let o = Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            &format!("name=^{PROFILE}$"),
            "--format",
            "{{.Names}}",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn skipped_stages(r: &Run) -> Vec<String> {
    events(&r.stdout)
        .iter()
        .filter(|e| e["event"] == "step_skipped")
        .filter_map(|e| e["stage"].as_str().map(String::from))
        .collect()
}

#[test]
#[cfg_attr(
    not(slipway_ci),
    ignore = "tier 3: needs Docker and Go (it builds minikube and its base image offline); runs in CI (CI=true) or with --ignored"
)]
fn deploy_local_end_to_end_on_a_real_minikube() {
    if let Err(why) = ready() {
        panic!("e2e prerequisites missing: {why} (.ci/run provides them)");
    }
    let _one = crate::support::real_cluster_lock();
    let mut report = vec![];
    let _ = run("e2e-minikube", &["down", "--cluster"], &[]);

    // 1. The whole pipeline, profile included.
    let first = run("e2e-minikube", &["deploy-local", "--output", "json"], &[]);
    expect_ok(&first, "first deploy-local on minikube");
    let ev = events(&first.stdout);
    // The NodePort answers at the node's address, as `minikube service --url` says.
    let url = assert_smoke_passed(&ev);
    let mk = Command::new(minikube_bin())
        .args([
            "service",
            "sample",
            "--url",
            "--profile",
            PROFILE,
            "--namespace",
            "slipway-sample",
        ])
        .output()
        .unwrap();
    let service_url = String::from_utf8_lossy(&mk.stdout).trim().to_string();
    assert!(
        !service_url.is_empty() && url.starts_with(&format!("{service_url} ")),
        "slipway checked {url}; minikube service --url says {service_url:?} ({})",
        String::from_utf8_lossy(&mk.stderr)
    );
    let notes: Vec<String> = ev
        .iter()
        .filter(|e| e["event"] == "note")
        .filter_map(|e| e["message"].as_str().map(String::from))
        .collect();
    assert!(
        notes.iter().any(|n| n.contains("is on all 1 node(s)")),
        "the load was not checked on the node: {notes:?}"
    );
    assert_eq!(node_container(), PROFILE, "no node container");
    report.push(format!(
        "NodePort checked by slipway: {url}; `minikube service --url`: {service_url}"
    ));
    report.push(format!(
        "first deploy-local (minikube profile, base image and tools included): {:.1}s",
        first.took.as_secs_f64()
    ));

    // 2. Nothing changed: nothing rebuilt, reloaded or upgraded.
    let again = run("e2e-minikube", &["deploy-local", "--output", "json"], &[]);
    expect_ok(&again, "no-change deploy-local on minikube");
    let skipped = skipped_stages(&again);
    for stage in ["cluster", "build", "load", "deploy"] {
        assert!(
            skipped.iter().any(|s| s == stage),
            "{stage} was not skipped: {skipped:?}"
        );
    }
    // By step, not only by stage: the image's build and load and the release's
    // upgrade were skipped, and none of their commands ran.
    let ev = events(&again.stdout);
    let skipped_steps: Vec<&str> = ev
        .iter()
        .filter(|e| e["event"] == "step_skipped")
        .filter_map(|e| e["step"].as_str())
        .collect();
    for step in ["build/sample", "load/sample", "helm/sample"] {
        assert!(
            skipped_steps.contains(&step),
            "{step} was not skipped on a no-change rerun: {skipped_steps:?}"
        );
    }
    let ran: Vec<&str> = ev
        .iter()
        .filter(|e| e["event"] == "command")
        .filter_map(|e| e["command"].as_str())
        .collect();
    assert!(
        !ran.iter().any(|c| c.starts_with("docker build")
            || c.starts_with("minikube image load")
            || c.starts_with("helm upgrade")),
        "{ran:?}"
    );
    report.push(format!(
        "no-change deploy-local: {:.1}s",
        again.took.as_secs_f64()
    ));

    // 3. A config change rolls the release.
    let change = run(
        "e2e-minikube",
        &["deploy-local"],
        &[("SAMPLE_GREETING", "hello from minikube")],
    );
    expect_ok(&change, "config change on minikube");
    report.push(format!("config change: {:.1}s", change.took.as_secs_f64()));

    // 4. An image that never reached the node.
    let broken = run("e2e-minikube-broken", &["deploy-local"], &[]);
    assert_eq!(broken.code, 16, "broken image:\n{}", broken.stderr);
    let line = first_error_line(&broken);
    assert!(
        broken.stderr.contains("ErrImageNeverPull"),
        "the pod's reason is not named: {line}\n{}",
        broken.stderr
    );
    report.push(format!(
        "broken image: exit 16 in {:.1}s ({line})",
        broken.took.as_secs_f64()
    ));

    // 4b. The todo chatbot (seed 004 deploys to minikube): four images loaded and
    // checked on the node, the umbrella release, the frontend's NodePort at the node's
    // address, and an image update with no failed request through it.
    todo_chatbot(&mut report);

    // 5. down --cluster deletes the profile.
    let down = run("e2e-minikube", &["down", "--cluster"], &[]);
    expect_ok(&down, "down --cluster on minikube");
    assert_eq!(node_container(), "", "the node container is left");
    let again = run("e2e-minikube", &["down", "--cluster"], &[]);
    expect_ok(&again, "second down --cluster on minikube");
    report.push(format!("down --cluster: {:.1}s", down.took.as_secs_f64()));

    let text = report.join("\n");
    eprintln!("e2e minikube report:\n{text}");
    let _ = std::fs::write(repo().join("target/e2e-minikube-report.txt"), text + "\n");
}

fn todo_chatbot(report: &mut Vec<String>) {
    let dir = repo().join("examples/todo-chatbot");
    if !dir.join(".env").exists() {
        std::fs::copy(dir.join(".env.example"), dir.join(".env")).unwrap();
    }
    let todo = |args: &[&str], env: &[(&str, &str)]| {
        let mut all = vec!["--config", "examples/todo-chatbot/pipeline.toml"];
        all.extend_from_slice(args);
        run("e2e-minikube", &all, env)
    };
    let first = todo(&["deploy-local", "--output", "json"], &[]);
    expect_ok(&first, "todo-chatbot on minikube");
    let ev = events(&first.stdout);
    let checks: Vec<&serde_json::Value> = ev
        .iter()
        .filter(|e| e["event"] == "check" && e["stage"] == "smoke")
        .collect();
    assert!(
        checks.len() >= 5 && checks.iter().all(|c| c["ok"] == true),
        "{checks:?}"
    );
    let url = checks
        .iter()
        .find(|c| c["name"] == "url frontend-service:3000")
        .and_then(|c| c["detail"].as_str())
        .unwrap_or_else(|| panic!("no NodePort check: {checks:?}"))
        .to_string();
    let mk = Command::new(minikube_bin())
        .args([
            "service",
            "frontend-service",
            "--url",
            "--profile",
            PROFILE,
            "--namespace",
            "chatbot-dev",
        ])
        .output()
        .unwrap();
    let service_url = String::from_utf8_lossy(&mk.stdout).trim().to_string();
    assert!(
        !service_url.is_empty() && url.starts_with(&format!("{service_url} ")),
        "slipway checked {url}; minikube service --url says {service_url:?}"
    );
    let update = todo(
        &["deploy-local", "--output", "json"],
        &[("TODO_BUILD_NOTE", "minikube")],
    );
    expect_ok(&update, "todo-chatbot: a new frontend image on minikube");
    let own = events(&update.stdout)
        .into_iter()
        .find(|e| e["event"] == "check" && e["name"] == "steady during the upgrade")
        .unwrap_or_else(|| panic!("no during-the-upgrade check:\n{}", update.stderr));
    let detail = own["detail"].as_str().unwrap_or_default().to_string();
    assert!(
        own["ok"] == true && detail.contains(", 0 failed") && detail.contains("NodePort 30000"),
        "{own}"
    );
    report.push(format!(
        "todo-chatbot on minikube: cold {:.1}s, frontend at {service_url} (= minikube service --url); new frontend image {:.1}s, {}",
        first.took.as_secs_f64(),
        update.took.as_secs_f64(),
        detail.split("during the upgrade (").nth(1).unwrap_or(&detail)
    ));
    expect_ok(&todo(&["down"], &[]), "todo-chatbot down on minikube");
}
