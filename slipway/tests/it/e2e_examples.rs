//! Tier 3: the four examples (the seed systems' shapes) on a real kind cluster, each
//! with its own pipeline.toml, charts and smoke suite.
//!
//! For each: a cold deploy-local (the cluster is created by the first), every smoke
//! check green, a no-change rerun that upgrades nothing, then what that shape is
//! about:
//! - agentsmith: a new dispatcher image while a client polls the NodePort (0 failed
//!   requests, and slipway's own `during_rollout` count says the same), then
//!   `rollback` to the revision before, its smoke suite green;
//! - todo-chatbot: the frontend's NodePort URL printed and reached from this machine,
//!   and an image update with no failed request;
//! - csv-analyst: `POST /runs` makes the API create a Job from the runner image
//!   (loaded, not deployed), answered `succeeded`;
//! - pybase: releases in order (postgres, redis, then the app), migrations by an init
//!   container, the database checks as in-cluster Jobs, and a row that survives the
//!   StatefulSet's pod being deleted.
//!
//! `down` leaves none of a release's objects; the cluster is deleted at the end.
//! Timings and check results go to stderr and target/e2e-report-examples.txt.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::e2e_kind::{events, expect_ok, first_error_line, get, kubectl_in, slipway_in, Run};
use crate::support::repo;

const PROFILE: &str = "e2e";
const CONTEXT: &str = "kind-slipway-e2e";

fn config(example: &str) -> String {
    format!("examples/{example}/pipeline.toml")
}

fn run(example: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let file = config(example);
    let mut all = vec!["--config", file.as_str()];
    all.extend_from_slice(args);
    slipway_in(PROFILE, &all, env)
}

/// What a team does once after cloning: the committed examples of the gitignored
/// files, copied.
fn prepare(example: &str) {
    let dir = repo().join("examples").join(example);
    for (from, to) in [
        (".env.example", ".env"),
        (
            "helm/agentsmith/values.local.yaml.example",
            "helm/agentsmith/values.local.yaml",
        ),
    ] {
        if dir.join(from).exists() && !dir.join(to).exists() {
            std::fs::copy(dir.join(from), dir.join(to)).unwrap();
        }
    }
}

/// The smoke stage's checks: name and detail; all must have passed.
fn checks_passed(r: &Run) -> Vec<(String, String)> {
    let ev = events(&r.stdout);
    let checks: Vec<(String, bool, String)> = ev
        .iter()
        .filter(|e| e["event"] == "check" && e["stage"] == "smoke")
        .map(|e| {
            (
                e["name"].as_str().unwrap_or_default().to_string(),
                e["ok"] == true,
                e["detail"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert!(
        !checks.is_empty() && checks.iter().all(|(_, ok, _)| *ok),
        "smoke checks: {checks:#?}\n{}",
        r.stderr
    );
    checks.into_iter().map(|(n, _, d)| (n, d)).collect()
}

/// A cold deploy and a no-change rerun; the report's line for them.
fn deploy_twice(
    example: &str,
    releases: &[&str],
    report: &mut Vec<String>,
) -> (Vec<(String, String)>, Run) {
    prepare(example);
    let cold = run(example, &["deploy-local", "--output", "json"], &[]);
    expect_ok(&cold, &format!("{example}: deploy-local"));
    let checks = checks_passed(&cold);
    let again = run(example, &["deploy-local", "--output", "json"], &[]);
    expect_ok(&again, &format!("{example}: no-change deploy-local"));
    checks_passed(&again);
    let skipped: Vec<String> = events(&again.stdout)
        .iter()
        .filter(|e| e["event"] == "step_skipped")
        .filter_map(|e| e["step"].as_str().map(String::from))
        .collect();
    for r in releases {
        assert!(
            skipped.contains(&format!("helm/{r}")),
            "{example}: release {r} was upgraded on a no-change rerun: {skipped:?}"
        );
    }
    let ran: Vec<String> = events(&again.stdout)
        .iter()
        .filter(|e| e["event"] == "command")
        .filter_map(|e| e["command"].as_str().map(String::from))
        .collect();
    assert!(
        !ran.iter().any(|c| c.starts_with("docker build")
            || c.starts_with("kind load")
            || c.starts_with("docker push")
            || c.contains(" ctr ")
            || c.starts_with("helm upgrade")),
        "{example}: the no-change rerun rebuilt, reloaded or upgraded: {ran:?}"
    );
    let names: Vec<&str> = checks.iter().map(|(n, _)| n.as_str()).collect();
    report.push(format!(
        "{example}: cold deploy-local {:.1}s, no-change {:.1}s; {} smoke checks passed: {}",
        cold.took.as_secs_f64(),
        again.took.as_secs_f64(),
        checks.len(),
        names.join(", ")
    ));
    (checks, cold)
}

/// `down` removes the release's objects (the namespace may stay).
fn down_leaves_nothing(example: &str, ns: &str, report: &mut Vec<String>) {
    let down = run(example, &["down"], &[]);
    expect_ok(&down, &format!("{example}: down"));
    let end = Instant::now() + Duration::from_secs(90);
    let left = loop {
        let o = kubectl_in(
            ns,
            &[
                "get",
                "deployments,statefulsets,services,configmaps,secrets,jobs,pvc,networkpolicies,poddisruptionbudgets,horizontalpodautoscalers,serviceaccounts,roles,rolebindings",
                "-o",
                "name",
            ],
        );
        // A kubectl that fails lists nothing: that is no evidence of an empty namespace.
        if !o.status.success() {
            assert!(
                Instant::now() < end,
                "{example}: cannot list what down left in {ns}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            std::thread::sleep(Duration::from_secs(2));
            continue;
        }
        let left: Vec<String> = String::from_utf8_lossy(&o.stdout)
            .lines()
            // What Kubernetes itself puts in every namespace.
            .filter(|l| !matches!(*l, "configmap/kube-root-ca.crt" | "serviceaccount/default"))
            .map(String::from)
            .collect();
        if left.is_empty() || Instant::now() > end {
            break left;
        }
        std::thread::sleep(Duration::from_secs(2));
    };
    assert!(left.is_empty(), "{example}: down left {left:?}");
    report.push(format!(
        "{example}: down {:.1}s, nothing of it left in {ns}",
        down.took.as_secs_f64()
    ));
}

/// A client polling `port` while `f` runs: (answered, failures).
fn polled<T>(port: u16, path: &'static str, f: impl FnOnce() -> T) -> (T, u32, Vec<String>) {
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let (mut ok, mut failed) = (0u32, vec![]);
            while !stop.load(Ordering::SeqCst) {
                match get(port, path) {
                    Ok((200, _)) => ok += 1,
                    Ok((s, b)) => failed.push(format!("{s}: {}", b.trim())),
                    Err(e) => failed.push(e),
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            (ok, failed)
        })
    };
    std::thread::sleep(Duration::from_secs(1));
    let out = f();
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::SeqCst);
    let (ok, failed) = poller.join().unwrap();
    (out, ok, failed)
}

/// slipway's own `during_rollout` result for `check`, from a run's events.
fn during_rollout(r: &Run, check: &str) -> String {
    let name = format!("{check} during the upgrade");
    let ev = events(&r.stdout);
    let c = ev
        .iter()
        .find(|e| e["event"] == "check" && e["name"] == name.as_str())
        .unwrap_or_else(|| panic!("no `{name}` check:\n{}", r.stderr));
    assert_eq!(c["ok"], true, "{c}");
    c["detail"].as_str().unwrap_or_default().to_string()
}

fn agentsmith(report: &mut Vec<String>) {
    let (checks, _) = deploy_twice("agentsmith", &["agentsmith"], report);
    let version = |port| match get(port, "/version") {
        Ok((200, b)) => serde_json::from_str::<serde_json::Value>(&b).unwrap(),
        other => panic!("dispatcher /version: {other:?}"),
    };
    let before = version(18093);
    assert_eq!(before["role"], "dispatcher", "{before}");
    assert!(
        checks
            .iter()
            .any(|(n, _)| n == "url agentsmith-dispatcher:80"),
        "{checks:?}"
    );

    // A new dispatcher image while a client polls the dispatcher.
    let (up, ok, failed) = polled(18093, "/version", || {
        run(
            "agentsmith",
            &["deploy-local", "--output", "json"],
            &[("AGENTSMITH_BUILD_NOTE", "second")],
        )
    });
    expect_ok(&up, "agentsmith: the dispatcher's new image");
    checks_passed(&up);
    let own = during_rollout(&up, "steady");
    assert!(
        own.contains(", 0 failed") && own.contains("NodePort 30081"),
        "{own}"
    );
    assert!(ok > 20, "the client barely ran ({ok} requests)");
    assert!(
        failed.is_empty(),
        "{} of {} client requests failed during the upgrade: {:?}",
        failed.len(),
        ok as usize + failed.len(),
        &failed[..failed.len().min(5)]
    );
    let after = version(18093);
    assert_ne!(after["image_tag"], before["image_tag"], "{after}");
    report.push(format!(
        "agentsmith: new dispatcher image {:.1}s; a client's {ok} requests through the NodePort, 0 failed; slipway's own: {}",
        up.took.as_secs_f64(),
        own.split("during the upgrade (").nth(1).unwrap_or(&own)
    ));

    // Back to the revision before, checked.
    let rb = run("agentsmith", &["rollback", "--output", "json"], &[]);
    expect_ok(&rb, "agentsmith: rollback");
    let rb_checks = checks_passed(&rb);
    // Pods of the newer revision may answer while they drain: ask until they are gone.
    let end = Instant::now() + Duration::from_secs(60);
    let mut back = version(18093);
    while back["image_tag"] != before["image_tag"] && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(500));
        back = version(18093);
    }
    assert_eq!(back["image_tag"], before["image_tag"], "{back}");
    report.push(format!(
        "agentsmith: rollback to the image before {:.1}s, {} smoke checks passed (those expecting the new build skipped, said)",
        rb.took.as_secs_f64(),
        rb_checks.len()
    ));
    down_leaves_nothing("agentsmith", "agentsmith", report);
}

fn todo_chatbot(report: &mut Vec<String>) {
    let (checks, _) = deploy_twice("todo-chatbot", &["todo-chatbot"], report);
    let url = checks
        .iter()
        .find(|(n, _)| n == "url frontend-service:3000")
        .map(|(_, d)| d.clone())
        .unwrap_or_else(|| panic!("no NodePort URL check: {checks:?}"));
    assert!(url.contains("http://127.0.0.1:18092"), "{url}");
    let (status, page) = get(18092, "/").expect("the frontend answers on its NodePort");
    assert_eq!(status, 200, "{page}");
    // One rollout wait per Deployment.
    let rollouts = Command::new("kubectl")
        .args([
            "--context",
            CONTEXT,
            "-n",
            "chatbot-dev",
            "get",
            "deployments",
            "-o",
            "name",
        ])
        .output()
        .unwrap();
    let deployments = String::from_utf8_lossy(&rollouts.stdout).lines().count();
    assert_eq!(
        deployments,
        4,
        "{}",
        String::from_utf8_lossy(&rollouts.stdout)
    );

    let (up, ok, failed) = polled(18092, "/healthz", || {
        run(
            "todo-chatbot",
            &["deploy-local", "--output", "json"],
            &[("TODO_BUILD_NOTE", "second")],
        )
    });
    expect_ok(&up, "todo-chatbot: the frontend's new image");
    checks_passed(&up);
    let own = during_rollout(&up, "steady");
    assert!(
        own.contains(", 0 failed") && own.contains("NodePort 30000"),
        "{own}"
    );
    assert!(
        failed.is_empty() && ok > 20,
        "{ok} answered, failed: {:?}",
        &failed[..failed.len().min(5)]
    );
    report.push(format!(
        "todo-chatbot: frontend at {url}; new frontend image {:.1}s, a client's {ok} requests, 0 failed; slipway's own: {}",
        up.took.as_secs_f64(),
        own.split("during the upgrade (").nth(1).unwrap_or(&own)
    ));
    down_leaves_nothing("todo-chatbot", "chatbot-dev", report);
}

fn pybase(report: &mut Vec<String>) {
    let (checks, cold) = deploy_twice("pybase", &["postgres", "redis", "pybase"], report);
    // The app is upgraded only after the database and Redis have rolled out.
    let steps: Vec<String> = events(&cold.stdout)
        .iter()
        .filter(|e| e["event"] == "step_started" || e["event"] == "step_finished")
        .filter_map(|e| Some(format!("{} {}", e["event"].as_str()?, e["step"].as_str()?)))
        .collect();
    let at = |what: &str| {
        steps
            .iter()
            .position(|s| s == what)
            .unwrap_or_else(|| panic!("no `{what}` in {steps:?}"))
    };
    for needed in ["postgres", "redis"] {
        assert!(
            at(&format!("step_finished ready/{needed}")) < at("step_started helm/pybase"),
            "pybase was upgraded before {needed} rolled out: {steps:?}"
        );
    }
    for (name, want) in [
        ("db-migrated", "migrations=001_init;"),
        ("db-seeded", "workspaces=1;"),
        ("workers-process-tasks", "all tasks done"),
    ] {
        let (_, detail) = checks
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no check {name}: {checks:?}"));
        assert!(detail.contains(want), "{name}: {detail}");
    }

    // The StatefulSet's data survives its pod.
    let proof = format!("survives-restart-{}", std::process::id());
    let psql = |sql: &str| {
        let o = kubectl_in(
            "pybase",
            &[
                "exec",
                "postgres-0",
                "--",
                "psql",
                "-X",
                "-A",
                "-t",
                "-U",
                "app",
                "-d",
                "app",
                "-c",
                sql,
            ],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    psql(&format!(
        "INSERT INTO records (workspace_id, data) SELECT id, '{{\"proof\": \"{proof}\"}}' FROM workspaces WHERE name = 'default'"
    ));
    let uid = |_: ()| {
        String::from_utf8_lossy(
            &kubectl_in(
                "pybase",
                &["get", "pod", "postgres-0", "-o", "jsonpath={.metadata.uid}"],
            )
            .stdout,
        )
        .to_string()
    };
    let before = uid(());
    let restarted = Instant::now();
    let del = kubectl_in("pybase", &["delete", "pod", "postgres-0", "--wait=true"]);
    assert!(
        del.status.success(),
        "{}",
        String::from_utf8_lossy(&del.stderr)
    );
    let end = Instant::now() + Duration::from_secs(120);
    while Instant::now() < end {
        let w = kubectl_in(
            "pybase",
            &[
                "wait",
                "pod/postgres-0",
                "--for=condition=Ready",
                "--timeout=10s",
            ],
        );
        if w.status.success() {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let after = uid(());
    assert!(
        !after.is_empty() && after != before,
        "not a new pod: {before} -> {after}"
    );
    let read = psql(&format!(
        "SELECT count(*) FROM records WHERE data->>'proof' = '{proof}'"
    ));
    assert_eq!(read, "1", "the row did not survive the pod");
    report.push(format!(
        "pybase: a row written, pod postgres-0 deleted and Ready again as a new pod in {:.1}s, the row read back from its claim",
        restarted.elapsed().as_secs_f64()
    ));
    down_leaves_nothing("pybase", "pybase", report);
}

fn csv_analyst(report: &mut Vec<String>) {
    let (checks, _) = deploy_twice("csv-analyst", &["csv-analyst"], report);
    let (_, run) = checks
        .iter()
        .find(|(n, _)| n == "run")
        .unwrap_or_else(|| panic!("no check run: {checks:?}"));
    assert!(run.contains("\"status\":\"succeeded\""), "{run}");
    let job = run
        .split("\"job\":\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("no job in {run}"))
        .to_string();
    // The Job the API made, from the runner image that no workload of the chart uses.
    let o = kubectl_in(
        "csv-analyst",
        &[
            "get",
            "job",
            &job,
            "-o",
            "jsonpath={.status.succeeded} {.spec.template.spec.containers[0].image}",
        ],
    );
    let seen = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        // `csv-analyst/runner:TAG`, or `localhost:5001/csv-analyst/runner:TAG` on the
        // local registry's path (kind's `delivery = "auto"` once it is built).
        seen.starts_with("1 csv-analyst/runner:")
            || seen.starts_with("1 localhost:5001/csv-analyst/runner:"),
        "job {job}: {seen} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    report.push(format!(
        "csv-analyst: POST /runs made Job {job} from the runner image ({}), completed; {run}",
        seen.trim_start_matches("1 ")
    ));
    // The runs' Jobs belong to the API's pod: they go with it.
    down_leaves_nothing("csv-analyst", "csv-analyst", report);
}

#[test]
#[cfg_attr(
    not(slipway_ci),
    ignore = "tier 3: needs Docker, kind, helm, kubectl and the node image; runs in CI (CI=true) or with --ignored"
)]
fn the_four_examples_deploy_on_a_real_kind_cluster() {
    if let Err(why) = crate::e2e_kind::ready() {
        panic!("e2e prerequisites missing: {why} (.ci/run provides them)");
    }
    let _one = crate::support::real_cluster_lock();
    let mut report = vec![];
    // A cluster of its own, made with the examples' port mappings by the first deploy.
    let _ = run("todo-chatbot", &["down", "--cluster"], &[]);
    let started = Instant::now();
    todo_chatbot(&mut report);
    agentsmith(&mut report);
    csv_analyst(&mut report);
    pybase(&mut report);
    let down = run("todo-chatbot", &["down", "--cluster"], &[]);
    expect_ok(&down, "down --cluster");
    let _ = first_error_line(&down);
    report.push(format!(
        "the examples on kind, cluster create to delete: {:.0}s",
        started.elapsed().as_secs_f64()
    ));
    let text = report.join("\n");
    eprintln!("examples e2e report:\n{text}");
    let _ = std::fs::write(repo().join("target/e2e-report-examples.txt"), text + "\n");
}
