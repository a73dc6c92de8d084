//! Stages (what a run is made of) and jobs (which stages a command runs).
//!
//! A stage is registered here once: its name (strum), its exit code and its default
//! time budget. Its planning lives in `plan/stages/<name>.rs`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use strum::{Display, EnumIter, EnumString, IntoStaticStr};

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    Display,
    EnumIter,
    EnumString,
    IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Stage {
    Preflight,
    Render,
    Cluster,
    Build,
    Load,
    Secrets,
    Deploy,
    Rollout,
    Health,
    Smoke,
    Status,
    Down,
    Rollback,
    Logs,
}

impl Stage {
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// slipway's exit code when this stage fails. The whole table, with 0, 2, 101
    /// and 130, is [`crate::model::exit::TABLE`].
    pub const fn exit_code(self) -> i32 {
        match self {
            Stage::Preflight => 10,
            Stage::Cluster => 11,
            Stage::Build => 12,
            Stage::Load => 13,
            Stage::Secrets => 14,
            Stage::Deploy => 15,
            Stage::Rollout => 16,
            Stage::Health => 17,
            Stage::Smoke => 18,
            Stage::Rollback => 19,
            Stage::Render => 21,
            Stage::Status | Stage::Down | Stage::Logs => 20,
        }
    }

    /// What a failure of this stage means, for the exit-code table.
    pub const fn failure(self) -> &'static str {
        match self {
            Stage::Preflight => "preflight failed",
            Stage::Cluster => "cluster stage failed",
            Stage::Build => "build failed",
            Stage::Load => "load (or push) failed",
            Stage::Secrets => "namespace/secrets failed",
            Stage::Deploy => "helm failed (or the release is stuck pending)",
            Stage::Rollout => "rollout failed or timed out",
            Stage::Health => "pod health failed",
            Stage::Smoke => "a smoke check failed",
            Stage::Rollback => "helm rollback failed",
            Stage::Render => {
                "a chart does not render with the pipeline's values (nothing was built or deployed)"
            }
            Stage::Status | Stage::Down | Stage::Logs => "`status`, `down` or `logs` failed",
        }
    }

    /// The stage's time budget unless `[timeouts]` says otherwise.
    pub const fn default_budget(self) -> Duration {
        Duration::from_secs(match self {
            Stage::Preflight => 60,
            Stage::Cluster => 600,
            Stage::Build => 1800,
            Stage::Load => 600,
            Stage::Secrets => 120,
            Stage::Deploy => 900,
            Stage::Rollout => 600,
            Stage::Health => 120,
            Stage::Smoke => 300,
            Stage::Status => 120,
            Stage::Down => 900,
            Stage::Rollback => 900,
            Stage::Render => 300,
            Stage::Logs => 86_400,
        })
    }
}

/// Which job a plan is for; each runs a fixed list of stages.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, Display, EnumIter, EnumString, IntoStaticStr,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Job {
    DeployLocal,
    Build,
    Load,
    Deploy,
    Smoke,
    Preflight,
    Status,
    Down,
    Rollback,
    Logs,
    /// deploy-local, then again on every change to an image's inputs or a chart.
    Dev,
}

impl Job {
    pub fn stages(self) -> &'static [Stage] {
        use Stage::*;
        match self {
            Job::DeployLocal | Job::Dev => &[
                Preflight, Render, Cluster, Build, Load, Secrets, Deploy, Rollout, Health, Smoke,
            ],
            Job::Build => &[Preflight, Build],
            Job::Load => &[Preflight, Cluster, Build, Load],
            Job::Deploy => &[Preflight, Render, Secrets, Deploy, Rollout, Health],
            Job::Smoke => &[Preflight, Smoke],
            Job::Preflight => &[Preflight],
            Job::Status => &[Status],
            Job::Down => &[Preflight, Down],
            Job::Rollback => &[Preflight, Rollback, Rollout, Health, Smoke],
            Job::Logs => &[Logs],
        }
    }

    /// Jobs meant for the local cluster slipway manages: their context guard
    /// accepts no other context unless --allow-context. (Whether a job's plan has a
    /// context guard at all is decided by its commands: see `plan::ContextGuard`;
    /// `deploy` is the way to a cluster slipway does not manage.)
    pub fn guarded(self) -> bool {
        matches!(
            self,
            Job::DeployLocal | Job::Dev | Job::Down | Job::Rollback
        )
    }

    pub fn name(self) -> &'static str {
        self.into()
    }
}
