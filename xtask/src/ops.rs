//! `status` and `down`: look at or remove what slipway deployed. Both go through the
//! same executor and tool adapters as a deploy.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::{Pipeline, Provider};
use crate::exec::Executor;
use crate::plan::Stage;
use crate::report::{Event, Mode};
use crate::run::StageError;
use crate::tools::{helm, kind, kubectl, minikube};

/// Exit code when `status` or `down` fails.
pub const OPS_EXIT: i32 = 20;
/// Events of these commands are reported under the stage they touch.
const STAGE: Stage = Stage::Deploy;

fn ctx(p: &Pipeline, over: &Option<String>) -> String {
    over.clone().unwrap_or_else(|| p.cluster.kube_context())
}

fn ns(p: &Pipeline, r: &crate::config::Release, over: &Option<String>) -> String {
    over.clone().unwrap_or_else(|| p.namespace_of(r))
}

fn err(e: impl std::fmt::Display) -> StageError {
    StageError::new(STAGE, e.to_string())
}

/// Does the local cluster this pipeline manages exist? (`None` for `existing`.)
fn cluster_exists(
    ex: &Executor,
    p: &Pipeline,
    deadline: Instant,
) -> Result<Option<bool>, StageError> {
    Ok(match p.cluster.provider {
        Provider::Kind => {
            let o = ex
                .run(Stage::Cluster, &kind::get_clusters(), Some(deadline))
                .map_err(err)?;
            Some(kind::parse_clusters(&o.stdout).contains(&p.cluster.name))
        }
        Provider::Minikube => {
            let o = ex
                .probe(
                    Stage::Cluster,
                    &minikube::status(&p.cluster.name),
                    Some(deadline),
                )
                .map_err(err)?;
            Some(
                !o.stdout.contains("Nonexistent")
                    && !o.stdout.trim().is_empty()
                    && !o.stderr.contains("not found"),
            )
        }
        Provider::Existing => None,
    })
}

#[derive(Serialize)]
struct ReleaseReport {
    release: String,
    namespace: String,
    status: String,
    revision: Option<u32>,
    workloads: Vec<WorkloadReport>,
}

#[derive(Serialize)]
struct WorkloadReport {
    workload: String,
    ready: i64,
    desired: i64,
    pods: Vec<PodReport>,
}

#[derive(Serialize)]
struct PodReport {
    name: String,
    ready: bool,
    phase: String,
    restarts: i64,
    age: String,
    images: Vec<String>,
}

fn age(created: &str) -> String {
    humantime::parse_rfc3339(created)
        .ok()
        .and_then(|t| std::time::SystemTime::now().duration_since(t).ok())
        .map(|d| {
            humantime::format_duration(Duration::from_secs(d.as_secs()))
                .to_string()
                .split(' ')
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "?".into())
}

pub fn status(
    ex: &Executor,
    p: &Pipeline,
    context: &Option<String>,
    namespace: &Option<String>,
) -> Result<(), StageError> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let c = ctx(p, context);
    if cluster_exists(ex, p, deadline)? == Some(false) {
        return Err(StageError::new(
            STAGE,
            format!(
                "{} cluster {} does not exist",
                p.cluster.provider, p.cluster.name
            ),
        )
        .hint("create it with `cargo xtask deploy-local`"));
    }
    let mut reports = vec![];
    for r in &p.releases {
        let n = ns(p, r, namespace);
        let rel = r.release_name();
        let st = ex
            .probe(STAGE, &helm::status(rel, &n, &c), Some(deadline))
            .map_err(err)?;
        let parsed = helm::parse_status(&st.stdout);
        let (status, revision) = match (&parsed, st.ok()) {
            (Some(s), _) => (s.status.clone(), Some(s.version)),
            (None, false) if helm::is_not_found(&st.stderr) => ("not installed".to_string(), None),
            (None, _) => (
                format!("unknown: {}", st.stderr.lines().last().unwrap_or("").trim()),
                None,
            ),
        };
        let mut workloads = vec![];
        if parsed.is_some() {
            let w = ex
                .run(STAGE, &kubectl::get_workloads(&c, &n), Some(deadline))
                .map_err(err)?;
            for w in kubectl::parse_workloads(&w.stdout, rel) {
                let pods = ex
                    .run(
                        STAGE,
                        &kubectl::get_pods(&c, &n, &w.selector_arg()),
                        Some(deadline),
                    )
                    .map_err(err)?;
                workloads.push(WorkloadReport {
                    workload: w.id(),
                    ready: w.ready,
                    desired: w.desired,
                    pods: kubectl::parse_pods(&pods.stdout)
                        .into_iter()
                        .map(|p| PodReport {
                            age: age(&p.created),
                            name: p.name,
                            ready: p.ready,
                            phase: p.phase,
                            restarts: p.restarts,
                            images: p.images,
                        })
                        .collect(),
                });
            }
        }
        reports.push(ReleaseReport {
            release: rel.to_string(),
            namespace: n,
            status,
            revision,
            workloads,
        });
    }
    if ex.reporter.mode == Mode::Json {
        println!(
            "{}",
            ex.redact(
                &serde_json::json!({"event": "status", "context": c, "releases": reports})
                    .to_string()
            )
        );
        return Ok(());
    }
    let mut out = format!("kube context {c}\n");
    for r in &reports {
        out.push_str(&format!(
            "release {} (namespace {}): {}{}\n",
            r.release,
            r.namespace,
            r.status,
            r.revision
                .map(|v| format!(", revision {v}"))
                .unwrap_or_default()
        ));
        for w in &r.workloads {
            out.push_str(&format!(
                "  {:<32} {}/{} ready\n",
                w.workload, w.ready, w.desired
            ));
            for p in &w.pods {
                out.push_str(&format!(
                    "    {:<40} {:<9} restarts {:<3} age {:<8} {}\n",
                    p.name,
                    if p.ready { "Ready" } else { p.phase.as_str() },
                    p.restarts,
                    p.age,
                    p.images.join(", ")
                ));
            }
        }
    }
    print!("{}", ex.redact(&out));
    Ok(())
}

pub fn down(
    ex: &Executor,
    p: &Pipeline,
    context: &Option<String>,
    namespace: &Option<String>,
    with_cluster: bool,
) -> Result<(), StageError> {
    let deadline = Instant::now() + Duration::from_secs(900);
    let note = |message: String| {
        ex.reporter.emit(Event::Note {
            stage: STAGE,
            message,
        })
    };
    let c = ctx(p, context);
    let exists = cluster_exists(ex, p, deadline)?;
    if exists == Some(false) {
        note(format!(
            "{} cluster {} does not exist: nothing to uninstall",
            p.cluster.provider, p.cluster.name
        ));
    } else {
        for r in &p.releases {
            let n = ns(p, r, namespace);
            let rel = r.release_name();
            let st = ex
                .probe(STAGE, &helm::status(rel, &n, &c), Some(deadline))
                .map_err(err)?;
            if !st.ok() && helm::is_not_found(&st.stderr) {
                note(format!(
                    "release {rel} is not installed in {n}: nothing to do"
                ));
            } else {
                ex.run(
                    STAGE,
                    &helm::uninstall(rel, &n, &c, r.timeout.0),
                    Some(deadline),
                )
                .map_err(|e| StageError::from_exec(STAGE, &format!("uninstall {rel}"), e))?;
                note(format!("uninstalled release {rel} from {n}"));
            }
            let selector =
                format!("app.kubernetes.io/managed-by=slipway,slipway.dev/release={rel}");
            let names = ex
                .run(
                    STAGE,
                    &kubectl::get_secret_names(&c, &n, &selector),
                    Some(deadline),
                )
                .map_err(err)?;
            let names: Vec<&str> = names
                .stdout
                .lines()
                .filter(|l| !l.trim().is_empty())
                .collect();
            if names.is_empty() {
                note(format!("no secrets slipway created for {rel} in {n}"));
            } else {
                ex.run(
                    STAGE,
                    &kubectl::delete_secrets(&c, &n, &selector),
                    Some(deadline),
                )
                .map_err(err)?;
                note(format!("deleted {}", names.join(", ")));
            }
        }
    }
    if with_cluster {
        match (p.cluster.provider, exists) {
            (Provider::Existing, _) => note(
                "provider \"existing\": slipway does not manage that cluster; left as it is".into(),
            ),
            (_, Some(false)) => note(format!(
                "{} cluster {} does not exist: nothing to delete",
                p.cluster.provider, p.cluster.name
            )),
            (Provider::Kind, _) => {
                ex.run(
                    Stage::Cluster,
                    &kind::delete(&p.cluster.name),
                    Some(deadline),
                )
                .map_err(err)?;
                note(format!("deleted kind cluster {}", p.cluster.name));
            }
            (Provider::Minikube, _) => {
                ex.run(
                    Stage::Cluster,
                    &minikube::delete(&p.cluster.name),
                    Some(deadline),
                )
                .map_err(err)?;
                note(format!("deleted minikube profile {}", p.cluster.name));
            }
        }
    }
    Ok(())
}
