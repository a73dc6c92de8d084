//! Helm settings a release can choose; `tools::helm::Dialect` turns them into the
//! flags of the detected Helm major.

use serde::{Deserialize, Serialize};

/// How helm waits for resources (`--wait`): Helm 4's kstatus `watcher` (what its bare
/// `--wait` means) or the `legacy` Helm 3 behaviour. Helm 3 only has `legacy`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, strum::IntoStaticStr,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum WaitStrategy {
    #[default]
    Watcher,
    Legacy,
}

/// How Helm 4 applies objects: server-side apply (its default for new installs),
/// client-side (Helm 3's three-way merge), or `auto` (whatever the release used
/// last). Helm 3 always applies client-side.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, strum::IntoStaticStr,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Apply {
    #[default]
    ServerSide,
    ClientSide,
    Auto,
}
