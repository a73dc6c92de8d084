//! The last lines of a failed or interrupted run: the state it left each release in
//! (from what the run read: [`ReleaseSeen`] events) and the next command to run.

use std::collections::BTreeMap;

use crate::model::{ReleaseSeen, Stage};

#[derive(Clone, Debug, Default)]
struct Fold {
    revision: Option<u32>,
    status: Option<String>,
    upgraded: bool,
    pods: Option<(i64, i64)>,
}

/// What the run read of each release, latest first.
#[derive(Debug, Default)]
pub(super) struct Left {
    releases: BTreeMap<String, Fold>,
}

/// How a person runs slipway here: `cargo xtask` in this repository's xtask.
pub(super) fn me() -> String {
    let argv0 = std::env::args_os().next().unwrap_or_default();
    let name = std::path::Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name == "xtask" {
        "cargo xtask".into()
    } else {
        "slipway".into()
    }
}

/// Jobs that only read: they print their answer, not a stage table or a next step.
pub(super) fn read_only(job: &str) -> bool {
    matches!(job, "status" | "logs" | "plan")
}

impl Left {
    pub fn see(&mut self, r: &ReleaseSeen) {
        let f = self.releases.entry(r.release.clone()).or_default();
        if r.status.is_some() {
            f.revision = r.revision;
            f.status = r.status.clone();
        }
        f.upgraded |= r.upgraded;
        if r.pods.is_some() {
            f.pods = r.pods;
        }
    }

    /// The lines that end a failed run of `job` (stopped in `stage`).
    pub fn lines(
        &self,
        me: &str,
        job: &str,
        stage: Option<Stage>,
        interrupted: bool,
    ) -> Vec<String> {
        let mut out = vec![];
        let mut resume = None;
        let mut stuck = None;
        let deploys = matches!(job, "deploy-local" | "deploy" | "dev" | "rollback");
        if self.releases.is_empty() {
            if deploys && stage.is_none_or(|s| s < Stage::Deploy) {
                out.push("left: no release changed (the run stopped before deploy)".to_string());
            }
        } else {
            out.push("left in the cluster:".to_string());
        }
        for (name, f) in &self.releases {
            let pending = f
                .status
                .as_deref()
                .is_some_and(|s| s.starts_with("pending"));
            let mut state = match (&f.status, f.revision) {
                _ if f.upgraded => {
                    let first = f.status.as_deref() == Some("not installed");
                    let rev = match f.revision.filter(|_| !pending) {
                        Some(r) => format!("revision {}", r + 1),
                        None if first => "revision 1".to_string(),
                        None => "a new revision".to_string(),
                    };
                    if f.revision.is_some() && !pending {
                        resume.get_or_insert((name.clone(), f.revision));
                    } else {
                        resume.get_or_insert((name.clone(), None));
                    }
                    format!("{rev} deployed (helm recorded it)")
                }
                (Some(s), Some(r)) if stage == Some(Stage::Deploy) && interrupted => format!(
                    "revision {r} {s} before its upgrade, which was interrupted: helm records the next one as failed, or leaves it pending"
                ),
                (Some(s), Some(r)) => {
                    if pending {
                        stuck.get_or_insert((name.clone(), s.clone()));
                    }
                    format!("revision {r} {s}, not changed by this run")
                }
                (Some(s), None) => s.clone(),
                (None, _) => "not read".to_string(),
            };
            if let Some((ready, want)) = f.pods {
                state.push_str(&format!("; pods {ready}/{want} ready"));
            }
            out.push(format!("  release {name}: {state}"));
        }
        let again = format!("`{me} {job}`");
        let next = if let Some((release, status)) = stuck {
            format!("`{me} rollback {release}` (it is stuck in {status}), then {again}")
        } else if let Some((release, before)) = resume {
            let back = before.map_or(String::new(), |r| {
                format!(", or `{me} rollback {release}` to return to revision {r}")
            });
            format!(
                "{again} again to resume the checks (the upgrade is recorded and is skipped){back}"
            )
        } else if interrupted {
            format!("{again} again: what is already done is skipped")
        } else {
            format!("fix what the error says, then {again} again")
        };
        out.push(format!("next: {next}"));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(release: &str) -> ReleaseSeen {
        ReleaseSeen {
            release: release.into(),
            ..ReleaseSeen::default()
        }
    }

    #[test]
    fn an_upgrade_interrupted_during_the_rollout_says_its_revision_pods_and_both_ways_on() {
        let mut l = Left::default();
        l.see(&ReleaseSeen {
            revision: Some(1),
            status: Some("deployed".into()),
            ..seen("web")
        });
        l.see(&ReleaseSeen {
            upgraded: true,
            ..seen("web")
        });
        l.see(&ReleaseSeen {
            pods: Some((1, 2)),
            ..seen("web")
        });
        assert_eq!(
            l.lines("slipway", "deploy-local", Some(Stage::Rollout), true),
            vec![
                "left in the cluster:",
                "  release web: revision 2 deployed (helm recorded it); pods 1/2 ready",
                "next: `slipway deploy-local` again to resume the checks (the upgrade is recorded and is skipped), or `slipway rollback web` to return to revision 1",
            ]
        );
    }

    #[test]
    fn a_first_install_is_revision_1_with_no_rollback_to_offer() {
        let mut l = Left::default();
        l.see(&ReleaseSeen {
            status: Some("not installed".into()),
            ..seen("web")
        });
        l.see(&ReleaseSeen {
            upgraded: true,
            ..seen("web")
        });
        let lines = l.lines("slipway", "deploy-local", Some(Stage::Smoke), false);
        assert_eq!(
            lines[1],
            "  release web: revision 1 deployed (helm recorded it)"
        );
        assert!(!lines[2].contains("rollback"), "{}", lines[2]);
    }

    #[test]
    fn a_failure_before_deploy_changed_no_release_and_a_pending_one_is_rolled_back_first() {
        let l = Left::default();
        assert_eq!(
            l.lines("slipway", "deploy-local", Some(Stage::Build), false),
            vec![
                "left: no release changed (the run stopped before deploy)",
                "next: fix what the error says, then `slipway deploy-local` again",
            ]
        );
        let mut l = Left::default();
        l.see(&ReleaseSeen {
            revision: Some(3),
            status: Some("pending-upgrade".into()),
            ..seen("api")
        });
        let lines = l.lines("cargo xtask", "deploy-local", Some(Stage::Deploy), false);
        assert_eq!(
            lines[1],
            "  release api: revision 3 pending-upgrade, not changed by this run"
        );
        assert_eq!(
            lines[2],
            "next: `cargo xtask rollback api` (it is stuck in pending-upgrade), then `cargo xtask deploy-local`"
        );
    }
}
