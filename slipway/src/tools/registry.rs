//! The tools slipway drives, each declared once: its name, how to ask its version and
//! read the answer, the least version slipway accepts, which runs need it, and how
//! slipway provisions it when PATH has none that will do.
//!
//! Everything that used to ask by a tool's name asks here: preflight's checks
//! ([`crate::plan`]), provisioning ([`super::provision`]), `self-check`, the `[tools]`
//! pins. Adding a tool is a [`ToolId`] variant and its row in [`TOOLS`] (a unit test
//! checks every variant has exactly one).

use serde::{Deserialize, Serialize};
use strum::{Display, EnumIter, EnumString, IntoStaticStr};

use super::recipe::{self, Recipe};
use super::{docker, helm, k8s, kind, kubectl, minikube, Cmd};
use crate::model::Stage;

/// A tool slipway drives, by the name of its program.
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
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum ToolId {
    Docker,
    Kind,
    Minikube,
    Helm,
    Kubectl,
    /// Declared for the test that adds a provider with one file and one declaration
    /// (`providers/k3d.rs`); not shipped.
    #[cfg(test)]
    K3d,
}

impl ToolId {
    /// The program's name (what PATH is searched for).
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// Its declaration.
    pub fn tool(self) -> &'static Tool {
        TOOLS
            .iter()
            .find(|t| t.id == self)
            .expect("every ToolId has a row in TOOLS (checked by a unit test)")
    }

    /// The tool named `name`, if slipway drives one by that name.
    pub fn named(name: &str) -> Option<ToolId> {
        name.parse().ok()
    }

    /// Every tool, in the order a run meets them.
    pub fn all() -> impl Iterator<Item = ToolId> {
        TOOLS.iter().map(|t| t.id)
    }

    /// The tools slipway can provision (those with a [`Provision`]).
    pub fn provisioned() -> impl Iterator<Item = (ToolId, &'static Provision)> {
        TOOLS
            .iter()
            .filter_map(|t| t.provision.as_ref().map(|p| (t.id, p)))
    }
}

/// Which runs need a tool.
#[derive(Clone, Copy, Debug)]
pub enum Need {
    /// Images are built or loaded, or the provider runs its cluster in containers
    /// (`Provider::needs_docker`) and the run creates it.
    Images,
    /// The tool of the run's provider (`Provider::tool`), when the run creates the
    /// cluster, loads images into it, or takes it down.
    Provider,
    /// A run with any of these stages.
    Stages(&'static [Stage]),
}

/// An official release binary: its URL with `{version}` and `{arch}` filled in, and
/// for an archive the member that is the binary (`{arch}` filled in too).
#[derive(Clone, Copy, Debug)]
pub struct Release {
    pub url: &'static str,
    pub member: Option<&'static str>,
}

/// How a recipe builds a tool: `bash <recipe> ARG` with `VAR=<version>`.
#[derive(Clone, Copy)]
pub struct Build {
    pub recipe: &'static Recipe,
    pub arg: &'static str,
    pub var: &'static str,
}

/// How slipway provisions a tool into its cache.
#[derive(Clone, Copy)]
pub struct Provision {
    /// The version provisioned unless `[tools]` pins another.
    pub default: &'static str,
    /// Where official releases are published (`None`: built only).
    pub release: Option<Release>,
    /// The SHA-256 of official release artifacts, pinned in the source: (version,
    /// arch, digest of the file downloaded — the archive for helm). A download is
    /// checked against this (or a `[tools.sha256]` pin), never against a checksum
    /// from the server that sent it; a version with neither is not downloaded
    /// (slipway's recipe builds it instead). Each digest here was confirmed against
    /// the release's published `.sha256sum`, as quoted by several independent
    /// projects that verify it.
    pub sha256: &'static [(&'static str, &'static str, &'static str)],
    /// The recipe build of a version.
    pub build: fn(version: &str) -> Build,
}

/// One tool's declaration.
pub struct Tool {
    pub id: ToolId,
    /// The least version accepted from PATH (a `[tools]` pin raises it).
    pub min: semver::Version,
    /// Why that minimum.
    pub why: &'static str,
    /// The command that asks its version.
    pub version: fn() -> Cmd,
    /// The version in what `version` printed (`ok`: it exited 0).
    pub parse: fn(ok: bool, stdout: &str, stderr: &str) -> Option<semver::Version>,
    pub need: Need,
    /// `None`: slipway does not provision it (docker).
    pub provision: Option<Provision>,
}

/// The first `x.y.z` in stdout and stderr.
fn any_version(_ok: bool, stdout: &str, stderr: &str) -> Option<semver::Version> {
    super::parse_version(&format!("{stdout}\n{stderr}"))
}

fn toolchain(arg: &'static str, var: &'static str) -> Build {
    Build {
        recipe: &recipe::TOOLCHAIN,
        arg,
        var,
    }
}

/// Every tool, in the order a run meets them.
pub static TOOLS: &[Tool] = &[
    Tool {
        id: ToolId::Docker,
        min: semver::Version::new(20, 10, 0),
        why: "BuildKit builds and `--format {{json .}}` output",
        version: docker::version,
        parse: any_version,
        need: Need::Images,
        provision: None,
    },
    Tool {
        id: ToolId::Kind,
        min: semver::Version::new(0, 20, 0),
        why: "`--config -` on stdin and image-ID checks in `kind load`",
        version: kind::version,
        parse: any_version,
        need: Need::Provider,
        provision: Some(Provision {
            default: "v0.30.0",
            release: Some(Release {
                url: "https://github.com/kubernetes-sigs/kind/releases/download/{version}/kind-linux-{arch}",
                member: None,
            }),
            sha256: &[
                (
                    "v0.30.0",
                    "amd64",
                    "517ab7fc89ddeed5fa65abf71530d90648d9638ef0c4cde22c2c11f8097b8889",
                ),
                (
                    "v0.30.0",
                    "arm64",
                    "7ea2de9d2d190022ed4a8a4e3ac0636c8a455e460b9a13ccf19f15d07f4f00eb",
                ),
            ],
            build: |_| toolchain("kind", "SLIPWAY_KIND_VERSION"),
        }),
    },
    Tool {
        id: ToolId::Minikube,
        min: semver::Version::new(1, 30, 0),
        why: "`image load` and `image ls --format json`",
        version: minikube::version,
        parse: any_version,
        need: Need::Provider,
        provision: Some(Provision {
            default: "v1.38.1",
            release: Some(Release {
                url: "https://github.com/kubernetes/minikube/releases/download/{version}/minikube-linux-{arch}",
                member: None,
            }),
            sha256: &[],
            build: |_| Build {
                recipe: &recipe::MINIKUBE,
                arg: "build",
                var: "SLIPWAY_MINIKUBE_VERSION",
            },
        }),
    },
    Tool {
        id: ToolId::Helm,
        min: helm::MIN_VERSION,
        why: "`uninstall --ignore-not-found` and the release description in `status -o json`",
        version: helm::version,
        parse: |ok, stdout, _| ok.then(|| helm::parse_version(stdout)).flatten(),
        need: Need::Stages(&[Stage::Deploy, Stage::Rollback, Stage::Down]),
        provision: Some(Provision {
            default: "v4.3.1",
            release: Some(Release {
                url: "https://get.helm.sh/helm-{version}-linux-{arch}.tar.gz",
                member: Some("linux-{arch}/helm"),
            }),
            sha256: &[],
            build: |version| {
                if version.starts_with("v3.") {
                    toolchain("helm3", "SLIPWAY_HELM3_VERSION")
                } else {
                    toolchain("helm", "SLIPWAY_HELM_VERSION")
                }
            },
        }),
    },
    Tool {
        id: ToolId::Kubectl,
        min: semver::Version::new(1, 24, 0),
        why: "`apply --server-side`, `logs --prefix` and `wait --for=condition`",
        version: kubectl::version,
        parse: |_, stdout, _| k8s::parse_client_version(stdout),
        need: Need::Stages(&[
            Stage::Secrets,
            Stage::Rollout,
            Stage::Smoke,
            Stage::Deploy,
            Stage::Down,
            Stage::Rollback,
        ]),
        provision: Some(Provision {
            default: "v1.34.13",
            release: Some(Release {
                url: "https://dl.k8s.io/release/{version}/bin/linux/{arch}/kubectl",
                member: None,
            }),
            sha256: &[],
            build: |_| toolchain("kubectl", "SLIPWAY_KUBE_VERSION"),
        }),
    },
    // Not shipped: the tool of the test-only provider `providers/k3d.rs`.
    #[cfg(test)]
    Tool {
        id: ToolId::K3d,
        min: semver::Version::new(5, 0, 0),
        why: "`cluster create --wait` and `image import`",
        version: || Cmd::new("k3d", ["version"]).timeout(super::PROBE),
        parse: any_version,
        need: Need::Provider,
        provision: None,
    },
];

#[cfg(test)]
mod tests {
    use strum::IntoEnumIterator;

    use super::*;

    #[test]
    fn every_tool_is_declared_once_and_named_by_its_program() {
        for id in ToolId::iter() {
            assert_eq!(TOOLS.iter().filter(|t| t.id == id).count(), 1, "{id}");
            assert_eq!(ToolId::named(id.name()), Some(id));
            assert_eq!(id.tool().id, id);
        }
        assert_eq!(ToolId::named("k9s"), None);
        let names: Vec<&str> = ToolId::all().map(ToolId::name).collect();
        assert_eq!(
            names,
            ["docker", "kind", "minikube", "helm", "kubectl", "k3d"],
            "the order a run meets them"
        );
        assert!(ToolId::provisioned().all(|(id, _)| id != ToolId::Docker));
    }

    #[test]
    fn versions_read_per_tool() {
        let helm = ToolId::Helm.tool();
        assert_eq!(
            (helm.parse)(true, "v3.22.0+g1234abc", "").map(|v| v.to_string()),
            Some("3.22.0".into())
        );
        assert_eq!((helm.parse)(false, "v3.22.0", ""), None);
        let kind = ToolId::Kind.tool();
        assert_eq!(
            (kind.parse)(false, "", "kind v0.30.0 go1.26.8 linux/amd64").map(|v| v.to_string()),
            Some("0.30.0".into())
        );
        assert_eq!((kind.version)().program, "kind");
    }
}
