//! A sync round: the change touched only what `[images.NAME.sync]` rules cover, so
//! instead of deploy-local's steps the loop compiles (the image's pre-build), hands
//! each file to the sync helper in every running pod of the releases that use the
//! image (`kubectl exec -i`, which restarts the image's command after the last file),
//! marks the pods as synced, and runs the smoke checks against the restarted
//! processes. No image build, no load, no helm upgrade, no new ReplicaSet.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::config::Pipeline;
use crate::exec::Executor;
use crate::model::{Cmd, Error, Stage};
use crate::plan::dev::Watched;
use crate::plan::sync::{covered, SyncPlan};
use crate::plan::Plan;
use crate::run::Runner;

/// Which sync rules a change is for, or the file that forces the full round (and why).
pub fn decide<'a>(
    syncs: &'a [SyncPlan],
    changed: &BTreeMap<String, Watched>,
) -> Result<Vec<&'a SyncPlan>, String> {
    let mut hit: Vec<&SyncPlan> = vec![];
    for (path, w) in changed {
        let rule = syncs.iter().find(|s| covered(&s.covers, path));
        match rule {
            // A path that also feeds another image, or a release's chart or values,
            // needs what the full round does for those.
            Some(s) if w.images.contains(&s.image) && w.images.iter().all(|i| *i == s.image) => {
                if !hit.iter().any(|h| h.image == s.image) {
                    hit.push(s);
                }
            }
            Some(s) => {
                return Err(format!(
                    "{path} also feeds image(s) {} beyond `{}`'s sync rule",
                    w.images
                        .iter()
                        .filter(|i| **i != s.image)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", "),
                    s.image
                ))
            }
            None => return Err(format!("{path} is not covered by a sync rule")),
        }
    }
    if hit.is_empty() {
        return Err("nothing changed under a sync rule".into());
    }
    Ok(hit)
}

/// Why a sync round did not serve the new files.
pub enum Failed {
    /// The compile (pre-build) failed: nothing was copied, the pods run what they ran.
    Compile(Error),
    /// The files could not be synced (no pod runs the dev variant, a pod went): the
    /// full round takes over.
    Sync(String),
    /// Synced, and a smoke check failed against the restarted processes.
    Smoke(Error),
}

/// What a good sync round cost.
pub struct Timings {
    pub compile: Duration,
    pub pods: usize,
    /// `kubectl exec` of the files, with the restart the last one asks for.
    pub copy_and_restart: Duration,
    /// The slowest restart the helpers reported (old process stopped, new one started).
    pub restart: Duration,
    pub smoke: Duration,
}

/// Compile, copy, restart, smoke.
pub fn round(
    ex: &Executor,
    pipeline: &Pipeline,
    plan: &Plan,
    syncs: &[&SyncPlan],
    say: &dyn Fn(String),
) -> Result<Timings, Failed> {
    let t0 = Instant::now();
    for s in syncs {
        if let Some(cmd) = &s.pre_build {
            let deadline = Instant::now() + cmd.timeout;
            ex.run(Stage::Build, cmd, Some(deadline)).map_err(|e| {
                Failed::Compile(e.into_error(Stage::Build, &format!("pre-build of {}", s.image)))
            })?;
        }
        for f in &s.files {
            if !pipeline.root.join(f).is_file() {
                return Err(Failed::Sync(format!(
                    "{f} does not exist after the pre-build"
                )));
            }
        }
    }
    let compile = t0.elapsed();
    let t1 = Instant::now();
    let when = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let mut pods = 0;
    let mut restart = Duration::ZERO;
    for s in syncs {
        for t in &s.targets {
            let found = running_pods(ex, &t.pods, &s.reference).map_err(Failed::Sync)?;
            if found.is_empty() {
                return Err(Failed::Sync(format!(
                    "no running pod of release {} runs {}",
                    t.release, s.reference
                )));
            }
            let results: Vec<Result<Duration, String>> = std::thread::scope(|scope| {
                let handles: Vec<_> = found
                    .iter()
                    .map(|(pod, container)| {
                        scope.spawn(move || put_all(ex, &t.puts, pod, container))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .unwrap_or_else(|_| Err("a sync thread panicked".into()))
                    })
                    .collect()
            });
            for r in results {
                restart = restart.max(r.map_err(Failed::Sync)?);
            }
            pods += found.len();
            let synced = format!("{when} {}", s.files.join(","));
            for (pod, _) in &found {
                let cmd = t.annotate.fill(&[("POD", pod), ("SYNCED", &synced)]);
                if let Err(e) = ex.run(Stage::Deploy, &cmd, None) {
                    say(format!("could not mark pod {pod} as synced: {e}"));
                }
            }
        }
    }
    let copy_and_restart = t1.elapsed();
    let t2 = Instant::now();
    Runner::new(ex, plan)
        .execute_stages(|s| s == Stage::Smoke)
        .map_err(Failed::Smoke)?;
    Ok(Timings {
        compile,
        pods,
        copy_and_restart,
        restart,
        smoke: t2.elapsed(),
    })
}

/// Each file to one pod's helper, in order; the restart the helper reported.
fn put_all(ex: &Executor, puts: &[Cmd], pod: &str, container: &str) -> Result<Duration, String> {
    let mut restart = Duration::ZERO;
    for put in puts {
        let cmd = put.fill(&[("POD", pod), ("CONTAINER", container)]);
        let out = ex
            .run(Stage::Deploy, &cmd, Some(Instant::now() + cmd.timeout))
            .map_err(|e| format!("pod {pod}: `{}` {e}", e.command))?;
        restart = restart.max(reported_restart(&out.stdout));
    }
    Ok(restart)
}

/// "…the old one stopped in 20 ms…" from the helper's answer.
fn reported_restart(answer: &str) -> Duration {
    answer
        .split("stopped in ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or_default()
}

/// The running, not terminating pods (and the container in each) that run `reference`.
fn running_pods(
    ex: &Executor,
    cmd: &Cmd,
    reference: &str,
) -> Result<Vec<(String, String)>, String> {
    let out = ex
        .run(Stage::Deploy, cmd, Some(Instant::now() + cmd.timeout))
        .map_err(|e| format!("`{}` {e}", e.command))?;
    parse_pods(&out.stdout, reference)
}

fn parse_pods(json: &str, reference: &str) -> Result<Vec<(String, String)>, String> {
    let v: Value = serde_json::from_str(json).map_err(|e| format!("kubectl get pods: {e}"))?;
    let mut out = vec![];
    for p in v["items"].as_array().into_iter().flatten() {
        if p["status"]["phase"] != "Running" || !p["metadata"]["deletionTimestamp"].is_null() {
            continue;
        }
        let name = p["metadata"]["name"].as_str().unwrap_or_default();
        for c in p["spec"]["containers"].as_array().into_iter().flatten() {
            let image = c["image"].as_str().unwrap_or_default();
            if same_image(image, reference) {
                out.push((
                    name.to_string(),
                    c["name"].as_str().unwrap_or_default().to_string(),
                ));
            }
        }
    }
    Ok(out)
}

/// `slipway/sample:t` is `docker.io/slipway/sample:t` as the node spells it.
fn same_image(image: &str, reference: &str) -> bool {
    image == reference
        || image.strip_prefix("docker.io/") == Some(reference)
        || image.strip_prefix("docker.io/library/") == Some(reference)
}

/// Write the helper where the dev variant's build finds it (once per helper).
pub fn write_helper() -> Result<(), String> {
    let bin = crate::plan::sync::HELPER;
    if bin.is_empty() {
        return Err("this slipway was built without its sync helper (build.rs could not compile slipway-sync statically)".into());
    }
    let path = crate::plan::sync::helper_path();
    if path.is_file() {
        return Ok(());
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    (|| -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(".slipway-sync.{}", std::process::id()));
        std::fs::write(&tmp, bin)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
        std::fs::rename(&tmp, &path)
    })()
    .map_err(|e| format!("cannot write the sync helper to {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_running_pods_of_the_variant_are_synced() {
        let json = r#"{"items":[
          {"metadata":{"name":"a"},"status":{"phase":"Running"},"spec":{"containers":[{"name":"app","image":"docker.io/slipway/x:t-sync-1"},{"name":"side","image":"busybox"}]}},
          {"metadata":{"name":"b","deletionTimestamp":"x"},"status":{"phase":"Running"},"spec":{"containers":[{"name":"app","image":"slipway/x:t-sync-1"}]}},
          {"metadata":{"name":"c"},"status":{"phase":"Pending"},"spec":{"containers":[{"name":"app","image":"slipway/x:t-sync-1"}]}},
          {"metadata":{"name":"d"},"status":{"phase":"Running"},"spec":{"containers":[{"name":"app","image":"slipway/x:old"}]}}
        ]}"#;
        assert_eq!(
            parse_pods(json, "slipway/x:t-sync-1").unwrap(),
            [("a".to_string(), "app".to_string())]
        );
    }

    #[test]
    fn the_helpers_restart_time_is_read_from_its_answer() {
        assert_eq!(
            reported_restart("ok /sample: 5 bytes held in memory; restarted /sample (pid 9; the old one stopped in 42 ms)"),
            Duration::from_millis(42)
        );
        assert_eq!(reported_restart("ok"), Duration::ZERO);
    }
}
