//! How an image reaches the cluster, as plan data: the path it takes (a load into
//! the nodes or a push the nodes pull from), the command, and how the bytes that
//! moved are measured (a load sends the whole image as an archive: the image's size;
//! a push sends the layers the registry lacks: read back from the registry).

use std::fmt::Write as _;

use serde::Serialize;

use super::StepKind;
use crate::model::Cmd;
use crate::plan::brief::View;
use crate::plan::Step;
use crate::tools::docker;

/// Which way an image went (the `path` field of the `delivered` event).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, strum::Display, strum::IntoStaticStr)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum DeliveryPath {
    /// `kind load docker-image`: the whole image, as an archive, into every node.
    KindLoad,
    /// `minikube image load`: the whole image, as an archive.
    MinikubeLoad,
    /// `docker push` to the local registry wired into the nodes: only the layers it
    /// lacks travel, and the nodes pull only the layers they lack.
    RegistryPush,
    /// `docker push` to the pipeline's registry (`[registry]`).
    Push,
}

impl DeliveryPath {
    pub fn is_push(self) -> bool {
        matches!(self, DeliveryPath::RegistryPush | DeliveryPath::Push)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Delivery {
    /// Why this path (kind's `delivery = "auto"` says what it chose and why).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    pub image: String,
    pub reference: String,
    pub path: DeliveryPath,
    pub cmd: Cmd,
    /// A load: the image's size in bytes (`docker image inspect --format
    /// {{.Size}}`), what the archive holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<Cmd>,
    /// A push to a registry on this machine (plain HTTP): the pushed layers' sizes
    /// are read back from its manifest (`GET /v2/REPO/manifests/DIGEST`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
}

impl StepKind for Delivery {
    fn commands(&self) -> Vec<&Cmd> {
        let mut v = vec![&self.cmd];
        v.extend(self.size.iter());
        v
    }

    fn render(&self, s: &mut String, _v: &mut View, _step: &Step) {
        if let Some(why) = &self.why {
            let _ = writeln!(s, "# delivery {}: {why}", self.path);
        }
        let _ = writeln!(s, "{}", self.cmd.script());
        match (&self.size, &self.registry) {
            (Some(size), _) => {
                let _ = writeln!(
                    s,
                    "{}  # bytes moved ({}): the image's size, what the archive holds",
                    size.script(),
                    self.path
                );
            }
            (None, Some(host)) => {
                let _ = writeln!(
                    s,
                    "#   bytes moved ({}): the layers docker says it pushed, their sizes from http://{host}/v2/ (the image's manifest)",
                    self.path
                );
            }
            (None, None) => {
                let _ = writeln!(
                    s,
                    "#   bytes moved ({}): the layers docker says it pushed (the registry is not read back)",
                    self.path
                );
            }
        }
    }
}

impl Delivery {
    /// What a push printed: the manifest digest and the layers it pushed.
    pub fn pushed(out: &crate::model::Output) -> docker::PushReport {
        docker::parse_push(&out.stdout)
    }
}
