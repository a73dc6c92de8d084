//! existing: a cluster slipway does not manage, reached only through its kube
//! context. Images reach it through a registry (`[registry]`), never a load.

use std::time::Duration;

use super::{Cluster, Ensure, ImageProbe, Provider, ToolId};
use crate::model::Cmd;
use crate::tools::kubectl;

pub struct Existing;

impl Provider for Existing {
    fn managed_context(&self, _c: &Cluster) -> Option<String> {
        None
    }

    fn tool(&self) -> Option<ToolId> {
        None
    }

    fn ensure(&self, _c: &Cluster, context: &str, _budget: Duration) -> Ensure {
        Ensure {
            title: format!("check that context {context} answers"),
            cmd: kubectl::readyz(context),
            probe: None,
            node: None,
        }
    }

    fn is_up(&self, _c: &Cluster, code: i32, _stdout: &str) -> Result<bool, String> {
        Ok(code == 0)
    }

    fn load(&self, _c: &Cluster, _reference: &str, _budget: Duration) -> Option<(String, Cmd)> {
        None
    }

    fn image_probe(&self, _c: &Cluster, _reference: &str) -> Option<ImageProbe> {
        None
    }

    fn holds_image(&self, _stdout: &str, _id: &str) -> bool {
        false
    }

    fn delete(&self, _c: &Cluster) -> Option<Cmd> {
        None
    }

    fn describe(&self, c: &Cluster) -> String {
        format!(
            "existing cluster at context {}",
            c.context.as_deref().unwrap_or("")
        )
    }
}
