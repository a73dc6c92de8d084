//! Guards: a condition under which a step is skipped, the probe that decides it, and
//! — as a pure function of that probe's output — the verdict: skip (with the reason),
//! run, or a finding that stops the run.

use std::path::PathBuf;

use serde::Serialize;

use super::{short_id, Redact};
use crate::model::{Cmd, Error, Output, SecretInput, Stage, TAIL_LINES};
use crate::providers::{Cluster, ImageProbe};
use crate::tools::{helm, kubectl};

/// A condition under which a step is skipped, with the probe that decides it.
#[derive(Clone, Debug, Serialize)]
#[allow(clippy::large_enum_variant)] // one per step
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Guard {
    /// The provider's probe says the cluster is up.
    ClusterUp(ClusterUp),
    /// The image reference already exists locally (content-addressed tags only).
    ImageBuilt(ImageBuilt),
    /// Every one of the image references exists locally (a pre-build shared by
    /// several images: it runs when any of them is to be built).
    ImagesBuilt(ImagesBuilt),
    /// Every node of the cluster holds the image with the local image ID.
    ImageOnCluster(ImageOnCluster),
    /// The deployed revision carries this digest and is `deployed`.
    ReleaseCurrent(ReleaseCurrent),
    /// The namespace exists and is Active.
    NamespaceExists(NamespaceExists),
    /// The Secret's digest annotation (what `probe` prints) is the keyed digest of
    /// the values it would be applied with now.
    SecretCurrent(SecretCurrent),
    /// The cluster advertises this local registry (KEP-1755) and it answers on
    /// `http://HOST/v2/`. Another advertised host stops the run.
    RegistryAdvertised(RegistryAdvertised),
    /// Decided when planning: always skipped, for this reason.
    Always(Always),
    /// The release rendered fine with inputs of this digest before (a stamp file,
    /// relative to the pipeline's root, slipway writes after `helm template`
    /// succeeds).
    Rendered(Rendered),
}

#[derive(Clone, Debug, Serialize)]
pub struct ClusterUp {
    pub describe: String,
    pub probe: Cmd,
}

#[derive(Clone, Debug, Serialize)]
pub struct ImageBuilt {
    pub reference: String,
    pub probe: Cmd,
}

#[derive(Clone, Debug, Serialize)]
pub struct ImagesBuilt {
    pub references: Vec<String>,
    pub probes: Vec<Cmd>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SecretCurrent {
    pub secret: SecretInput,
    pub probe: Cmd,
}

#[derive(Clone, Debug, Serialize)]
pub struct ImageOnCluster {
    pub reference: String,
    pub local_id: Cmd,
    pub probe: ImageProbe,
}

#[derive(Clone, Debug, Serialize)]
pub struct ReleaseCurrent {
    pub release: String,
    pub digest: String,
    pub probe: Cmd,
    /// The Secrets the release reads (values read at run time): their keyed
    /// digests must also match what the deployed revision recorded.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretInput>,
}

#[derive(Clone, Debug, Serialize)]
pub struct NamespaceExists {
    pub namespace: String,
    pub probe: Cmd,
}

#[derive(Clone, Debug, Serialize)]
pub struct RegistryAdvertised {
    pub host: String,
    pub probe: Cmd,
}

#[derive(Clone, Debug, Serialize)]
pub struct Always {
    pub reason: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Rendered {
    pub release: String,
    pub digest: String,
    pub stamp: PathBuf,
    /// Also only while this path (relative to the pipeline's root) exists: what
    /// the guarded step made (`helm dependency build`'s `charts/`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requires: Option<PathBuf>,
}

impl Guard {
    /// Every command the guard may spawn.
    pub fn commands(&self) -> Vec<&Cmd> {
        match self {
            Guard::ClusterUp(ClusterUp { probe, .. })
            | Guard::ImageBuilt(ImageBuilt { probe, .. })
            | Guard::NamespaceExists(NamespaceExists { probe, .. })
            | Guard::SecretCurrent(SecretCurrent { probe, .. })
            | Guard::RegistryAdvertised(RegistryAdvertised { probe, .. })
            | Guard::ReleaseCurrent(ReleaseCurrent { probe, .. }) => vec![probe],
            Guard::Always(_) | Guard::Rendered(_) => vec![],
            Guard::ImagesBuilt(g) => g.probes.iter().collect(),
            Guard::ImageOnCluster(g) => super::verify_loaded::probe_commands(&g.local_id, &g.probe),
        }
    }

    /// One line for the plan: when the step is skipped, and how that is decided.
    pub fn describe(&self) -> String {
        match self {
            Guard::ClusterUp(ClusterUp { describe, probe }) => {
                format!("skipped if `{}` says {describe} is up", probe.display())
            }
            Guard::ImageBuilt(ImageBuilt { reference, probe }) => format!(
                "skipped if {reference} is already built (`{}`)",
                probe.display()
            ),
            Guard::ImagesBuilt(ImagesBuilt { references, probes }) => format!(
                "skipped if {} are all already built ({})",
                references.join(", "),
                probes
                    .iter()
                    .map(|p| format!("`{}`", p.display()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Guard::ImageOnCluster(g) => g.describe(),
            Guard::Always(Always { reason }) => format!("skipped: {reason}"),
            Guard::RegistryAdvertised(RegistryAdvertised { host, probe }) => format!(
                "skipped if `{}` shows the cluster advertises registry {host} (KEP-1755) and http://{host}/v2/ answers; another registry stops the run",
                probe.display()
            ),
            Guard::NamespaceExists(NamespaceExists { namespace, probe }) => format!(
                "skipped if `{}` says namespace {namespace} is Active",
                probe.display()
            ),
            Guard::SecretCurrent(SecretCurrent { secret, probe }) => format!(
                "skipped if `{}` prints the keyed digest of the values secret {} would be applied with",
                probe.display(),
                secret.name
            ),
            Guard::Rendered(g) => g.describe(),
            Guard::ReleaseCurrent(g) => g.describe(),
        }
    }

    /// Running the guarded step changes what later probes may see (rendering a chart
    /// changes nothing).
    pub fn changes_probes(&self) -> bool {
        !matches!(self, Guard::Rendered(_))
    }
}

impl ClusterUp {
    /// Skip when the provider's probe says the cluster is up.
    pub fn verdict(
        &self,
        stage: Stage,
        cluster: &Cluster,
        out: &Output,
        redact: Redact,
    ) -> Result<Option<String>, Error> {
        let describe = &self.describe;
        let up = cluster
            .provider()
            .is_up(cluster, out.code, &out.stdout)
            .map_err(|e| {
                Error {
                    command: Some(redact(&self.probe.display())),
                    tail: crate::model::last_lines(&redact(&out.stderr), TAIL_LINES),
                    ..Error::new(stage, format!("cannot tell whether {describe} is up: {e}"))
                }
                .hint("is Docker running? `docker info` should answer")
            })?;
        Ok(up.then(|| format!("{describe} is up")))
    }
}

impl ImageBuilt {
    pub fn verdict(&self, out: &Output) -> Option<String> {
        out.ok().then(|| {
            format!(
                "{} is already built ({})",
                self.reference,
                short_id(&out.stdout)
            )
        })
    }
}

impl ImagesBuilt {
    /// One image's probe: `Some("REFERENCE (ID)")` when it is built.
    pub fn built(reference: &str, out: &Output) -> Option<String> {
        out.ok()
            .then(|| format!("{reference} ({})", short_id(&out.stdout)))
    }

    /// All are built: these.
    pub fn verdict(built: &[String]) -> String {
        format!("{} are already built", built.join(", "))
    }
}

impl SecretCurrent {
    /// Skip when the Secret's annotation (`out`) is `want`, the keyed digest of the
    /// values it would be applied with.
    pub fn verdict(&self, out: &Output, want: &str) -> Option<String> {
        (out.stdout.trim() == want).then(|| {
            format!(
                "secret {} in {} already holds these values (its {} annotation is their keyed digest {want}); not applied again, --force applies it",
                self.secret.name,
                self.secret.namespace,
                kubectl::SECRET_DIGEST
            )
        })
    }

    /// The probe found an annotation to compare.
    pub fn annotated(out: &Output) -> bool {
        out.ok() && !out.stdout.trim().is_empty()
    }
}

impl ImageOnCluster {
    fn describe(&self) -> String {
        let mut how = String::new();
        if let Some(n) = &self.probe.nodes {
            how.push_str(&format!("`{}`, then ", n.display()));
        }
        how.push_str(&format!("`{}`", self.probe.per_node.display()));
        format!(
            "skipped if every node already holds the image ID of `{}` ({how})",
            self.local_id.display()
        )
    }

    /// `found`: the image's ID and how many nodes hold it, when all do.
    pub fn verdict(&self, cluster: &Cluster, found: Option<(String, usize)>) -> Option<String> {
        found.map(|(id, nodes)| {
            format!(
                "{} ({}) is already on all {nodes} node(s) of {}",
                self.reference,
                short_id(&id),
                cluster.provider().describe(cluster),
            )
        })
    }
}

impl NamespaceExists {
    pub fn verdict(&self, out: &Output) -> Option<String> {
        (out.ok() && out.stdout.trim() == "Active")
            .then(|| format!("namespace {} exists", self.namespace))
    }
}

impl RegistryAdvertised {
    /// Skip (once the registry answers) when the cluster advertises this host; another
    /// advertised host is a finding.
    pub fn verdict(&self, stage: Stage, out: &Output) -> Result<Option<String>, Error> {
        let host = &self.host;
        match kubectl::parse_registry_host(&out.stdout) {
            _ if !out.ok() => Ok(None),
            None => Ok(None),
            Some(h) if h == *host => Ok(Some(format!(
                "the cluster advertises registry {host} (KEP-1755) and it answers"
            ))),
            Some(h) => {
                let (ns, name) = kubectl::REGISTRY_HOSTING;
                Err(Error::new(
                    stage,
                    format!("the cluster advertises registry {h} (ConfigMap {ns}/{name}), not {host}: its nodes may not pull from {host}"),
                )
                .hint(format!("push to the advertised one: set cluster.kind.registry = \"{h}\" in pipeline.toml")))
            }
        }
    }
}

impl Always {
    pub fn verdict(&self) -> Option<String> {
        Some(self.reason.clone())
    }
}

impl Rendered {
    fn describe(&self) -> String {
        format!(
            "skipped if {} records that inputs with digest {} rendered before{}",
            self.stamp.display(),
            self.digest,
            self.requires
                .as_ref()
                .map_or(String::new(), |r| format!(" and {} exists", r.display()))
        )
    }

    /// `stamp`: what the stamp file holds; `required`: whether `requires` exists.
    pub fn verdict(&self, stamp: Option<&str>, required: bool) -> Option<String> {
        (stamp.is_some_and(|s| s.trim() == self.digest) && required).then(|| {
            format!(
                "{} rendered with these inputs before (digest {})",
                self.release, self.digest
            )
        })
    }
}

/// What the deployed revision says about a release whose Secrets are digested.
#[derive(Debug, PartialEq, Eq)]
pub enum Current {
    /// Skip, for this reason.
    Skip(String),
    /// Upgrade (saying this first, if anything).
    Upgrade(Option<String>),
}

impl ReleaseCurrent {
    fn describe(&self) -> String {
        format!(
            "skipped if `{}` shows revision deployed with digest {}{}",
            self.probe.display(),
            self.digest,
            if self.secrets.is_empty() {
                String::new()
            } else {
                let names: Vec<&str> = self.secrets.iter().map(|s| s.name.as_str()).collect();
                format!(" and the same keyed digests of secret {}", names.join(", "))
            }
        )
    }

    /// The deployed revision, when it is `deployed` with this digest.
    pub fn deployed(&self, out: &Output) -> Option<helm::ReleaseStatus> {
        helm::parse_status(&out.stdout)
            .filter(|s| s.status == "deployed" && s.digest() == Some(&self.digest))
    }

    /// With the Secrets' digests now (`None`: the release reads none) and whether
    /// their key was made just now.
    pub fn verdict(&self, s: &helm::ReleaseStatus, now: Option<(&str, bool)>) -> Current {
        if let Some((now, key_created)) = now {
            let names = super::upgrade::changed(s.secrets(), now);
            if !names.is_empty() {
                return Current::Upgrade(Some(format!(
                    "release {} revision {} has these chart files, values and images, but {}: upgrading it and restarting its workloads",
                    self.release,
                    s.version,
                    super::upgrade::reason(&names, s.secrets(), key_created)
                )));
            }
        }
        Current::Skip(format!("release {} revision {} already has these chart files, values and images (digest {}){}; --force redeploys", self.release, s.version, self.digest, if self.secrets.is_empty() { "" } else { " and secrets" }))
    }
}
