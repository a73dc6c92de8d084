//! `dev`'s sync (`[images.NAME.sync]`): the dev variant of an image that `dev` deploys
//! (the image, with slipway's static sync helper as its first process running the
//! image's own command), and the commands a sync round runs: the image's pre-build,
//! then per pod of each release that uses the image a `kubectl exec -i` that hands each
//! file to the helper (which restarts the command after the last one), and an
//! annotation that says the pod runs synced files.

use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::{self, Pipeline};
use crate::model::{Cmd, Error, Stdin};
use crate::plan::Planner;
use crate::tools::kubectl;

/// The sync helper, static (built from `slipway-sync/` by build.rs; empty when it
/// could not be built).
pub static HELPER: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/slipway-sync"));
/// Where the dev variant of an image holds the helper.
pub const HELPER_IN_IMAGE: &str = "/.slipway/sync";
/// The file name of the helper in its build context.
const HELPER_FILE: &str = "slipway-sync";
/// The annotation a synced pod carries: when, and what was synced.
pub const SYNCED_ANNOTATION: &str = "slipway.dev/synced";

/// The helper's digest (12 hex digits): part of the dev variant's tag.
pub fn helper_digest() -> String {
    let d = Sha256::digest(HELPER);
    d.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// The directory `dev` writes the helper into (the dev variant's build context).
pub fn helper_dir() -> PathBuf {
    crate::tools::provision::cache_root()
        .unwrap_or_else(std::env::temp_dir)
        .join("sync-helper")
        .join(helper_digest())
}

/// The helper's path in [`helper_dir`].
pub fn helper_path() -> PathBuf {
    helper_dir().join(HELPER_FILE)
}

#[derive(Clone, Debug, Serialize)]
pub struct SyncPlan {
    pub image: String,
    /// The dev variant the pods run.
    pub reference: String,
    /// A change only under these paths (relative to the pipeline) is synced.
    pub covers: Vec<String>,
    /// The image's pre-build (the compile), run before anything is copied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pre_build: Option<Cmd>,
    /// The files copied (relative to the pipeline), each checked to exist first.
    pub files: Vec<String>,
    pub targets: Vec<SyncTarget>,
}

/// One release that runs the image: how to find its pods and what to run in each.
#[derive(Clone, Debug, Serialize)]
pub struct SyncTarget {
    pub release: String,
    /// Its pods, as JSON.
    pub pods: Cmd,
    /// In order, per pod (`{POD}`, `{CONTAINER}`): each file to the helper, the last
    /// one restarting the command.
    pub puts: Vec<Cmd>,
    /// After the files are in: mark the pod (`{POD}`, `{SYNCED}`).
    pub annotate: Cmd,
}

/// The tag of an image's dev variant.
pub fn variant_tag(tag: &str) -> String {
    format!("{tag}-sync-{}", helper_digest())
}

/// The Dockerfile of an image's dev variant: the image, the helper, and the helper as
/// the entrypoint running the image's own command.
pub fn variant_dockerfile(p: &Pipeline, img: &config::Image, base: &str) -> Result<String, Error> {
    let sync = img
        .sync
        .as_ref()
        .ok_or_else(|| Error::usage("no sync rule"))?;
    let (entrypoint, cmd) = if sync.command.is_empty() {
        let file = img.dockerfile();
        let text = std::fs::read_to_string(p.path(&file)).map_err(|e| {
            Error::usage(format!(
                "image `{}`: cannot read {} for its command: {e}",
                img.name,
                file.display()
            ))
        })?;
        let (e, c) = last_stage_command(&text);
        let e = e.ok_or_else(|| {
            Error::usage(format!(
                "image `{}`: sync needs the image's command, and the last stage of {} has no ENTRYPOINT in exec form (JSON)",
                img.name,
                file.display()
            ))
            .hint(format!(
                "set images.{}.sync.command = [\"/path/to/program\", ...]",
                img.name
            ))
        })?;
        (e, c)
    } else {
        (sync.command.clone(), None)
    };
    let json = |v: &[String]| serde_json::to_string(v).unwrap_or_default();
    let mut entry = vec![HELPER_IN_IMAGE.to_string(), "--".into()];
    entry.extend(entrypoint);
    let mut out = format!(
        "FROM {base}\nCOPY {HELPER_FILE} {HELPER_IN_IMAGE}\nENTRYPOINT {}\n",
        json(&entry)
    );
    if let Some(c) = cmd {
        out.push_str(&format!("CMD {}\n", json(&c)));
    }
    Ok(out)
}

/// The last stage's ENTRYPOINT and CMD, each only in exec (JSON) form.
fn last_stage_command(dockerfile: &str) -> (Option<Vec<String>>, Option<Vec<String>>) {
    let mut entrypoint = None;
    let mut cmd = None;
    // Continuation lines joined, comments dropped.
    let joined = dockerfile
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("\\\n", " ");
    for line in joined.lines() {
        let line = line.trim();
        let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let exec_form = || serde_json::from_str::<Vec<String>>(rest.trim()).ok();
        match word.to_ascii_uppercase().as_str() {
            "FROM" => {
                entrypoint = None;
                cmd = None;
            }
            "ENTRYPOINT" => {
                entrypoint = exec_form();
                // An ENTRYPOINT resets the CMD before it.
                cmd = None;
            }
            "CMD" => cmd = exec_form(),
            _ => {}
        }
    }
    (entrypoint, cmd)
}

/// `docker build` of the dev variant: its Dockerfile on stdin, the helper's directory
/// as the context.
pub fn variant_build(reference: &str, dockerfile: String, timeout: std::time::Duration) -> Cmd {
    Cmd::new("docker", ["build", "--tag", reference, "--file", "-"])
        .arg(helper_dir().display().to_string())
        .stdin(Stdin::Text { text: dockerfile })
        .timeout(timeout)
}

/// Whether `path` (relative to the pipeline) is under one of `covers`.
pub fn covered(covers: &[String], path: &str) -> bool {
    covers.iter().any(|c| Path::new(path).starts_with(c))
}

impl Planner<'_> {
    /// Per image with a sync rule: what a sync round runs.
    pub(in crate::plan) fn sync_plans(&self) -> Vec<SyncPlan> {
        let mut out = vec![];
        for (img, ip) in self.p.images.iter().zip(&self.images) {
            let Some(sync) = &img.sync else { continue };
            let users = self.p.releases_using(&img.name);
            let targets = self
                .releases()
                .filter(|r| users.contains(&r.name))
                .map(|r| {
                    let ns = self.namespace(r);
                    let selector = format!("app.kubernetes.io/instance={}", r.release_name());
                    let n = sync.files.len();
                    let puts = sync
                        .files
                        .iter()
                        .enumerate()
                        .map(|(i, f)| {
                            let grace = sync.restart_grace.0.as_millis().to_string();
                            let mut args = vec![HELPER_IN_IMAGE, "put"];
                            if sync.restart && i + 1 == n {
                                args.extend(["--restart", "--grace-ms", &grace]);
                            }
                            args.push(&f.to);
                            kubectl::at(&self.context, Some(&ns))
                                .args(["exec", "-i", "{POD}", "-c", "{CONTAINER}", "--"])
                                .args(args)
                                .stdin(Stdin::File {
                                    path: f.from.clone(),
                                })
                                .timeout(std::time::Duration::from_secs(60))
                        })
                        .collect();
                    SyncTarget {
                        release: r.release_name().to_string(),
                        pods: kubectl::get_pods(&self.context, &ns, &selector),
                        puts,
                        annotate: kubectl::at(&self.context, Some(&ns))
                            .args(["annotate", "pod", "{POD}", "--overwrite"])
                            .arg(format!("{SYNCED_ANNOTATION}={{SYNCED}}")),
                    }
                })
                .collect();
            out.push(SyncPlan {
                image: img.name.clone(),
                reference: ip.reference.clone(),
                covers: sync
                    .covers
                    .iter()
                    .map(|c| c.display().to_string())
                    .collect(),
                pre_build: img.pre_build.as_ref().map(|pb| {
                    let mut cmd = Cmd::new(&pb.command[0], &pb.command[1..]).timeout(pb.timeout.0);
                    cmd.env = pb.env.clone();
                    cmd
                }),
                files: sync
                    .files
                    .iter()
                    .map(|f| f.from.display().to_string())
                    .collect(),
                targets,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_stage_gives_the_command_in_exec_form() {
        let df = "FROM rust AS build\nENTRYPOINT [\"/bin/false\"]\nFROM scratch\nCOPY bin/app /app\nENTRYPOINT [\"/app\", \"serve\"]\nCMD [\"--port\", \\\n \"80\"]\n";
        let (e, c) = last_stage_command(df);
        assert_eq!(e.unwrap(), ["/app", "serve"]);
        assert_eq!(c.unwrap(), ["--port", "80"]);
        // Shell form (needs a shell) and no ENTRYPOINT in the last stage: none.
        assert_eq!(last_stage_command("FROM x\nENTRYPOINT /app\n").0, None);
        assert_eq!(
            last_stage_command("FROM a\nENTRYPOINT [\"/a\"]\nFROM b\n").0,
            None
        );
    }

    #[test]
    fn covered_paths_are_under_a_cover() {
        let covers = vec!["svc/src".to_string()];
        assert!(covered(&covers, "svc/src/main.rs"));
        assert!(!covered(&covers, "svc/srcx/main.rs"));
        assert!(!covered(&covers, "svc/Cargo.toml"));
    }
}
