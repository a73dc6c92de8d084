//! A guard: run its probe (through the cache) and ask the plan's guard what the
//! output means. `Some(reason)` skips the step.

use std::time::Duration;

use super::Cx;
use crate::model::Error;
use crate::plan::steps::guard::Current;
use crate::plan::{Guard, ReleaseCurrent};

pub fn verdict(cx: &Cx, g: &Guard) -> Result<Option<String>, Error> {
    Ok(match g {
        Guard::Always(g) => g.verdict(),
        Guard::Rendered(g) => {
            let root = &cx.shared.root;
            let stamp = std::fs::read_to_string(root.join(&g.stamp)).ok();
            let required = g.requires.as_ref().is_none_or(|r| root.join(r).exists());
            g.verdict(stamp.as_deref(), required)
        }
        Guard::ClusterUp(g) => {
            let out = cx.probe(&g.probe)?;
            g.verdict(cx.stage, cx.cluster, &out, &cx.redact())?
        }
        Guard::RegistryAdvertised(g) => {
            let out = cx.probe(&g.probe)?;
            g.verdict(cx.stage, &out)?
                .filter(|_| registry_answers(&g.host))
        }
        Guard::NamespaceExists(g) => g.verdict(&cx.probe(&g.probe)?),
        Guard::ImageBuilt(g) => g.verdict(&cx.probe(&g.probe)?),
        Guard::ImageOnCluster(g) => {
            let found = cx.image_on_nodes(&g.local_id, &g.probe, true)?;
            g.verdict(cx.cluster, found)
        }
        Guard::ReleaseCurrent(g) => release_current(cx, g)?,
    })
}

fn release_current(cx: &Cx, g: &ReleaseCurrent) -> Result<Option<String>, Error> {
    let out = cx.probe(&g.probe)?;
    let Some(s) = g.deployed(&out) else {
        return Ok(None);
    };
    let now = if g.secrets.is_empty() {
        None
    } else {
        Some(cx.secret_digests(&g.secrets)?)
    };
    match g.verdict(&s, now.as_ref().map(|(d, created)| (d.as_str(), *created))) {
        Current::Skip(reason) => Ok(Some(reason)),
        Current::Upgrade(note) => {
            if let Some(n) = note {
                cx.note(n);
            }
            Ok(None)
        }
    }
}

/// `GET http://HOST/v2/` answers as a registry does (200, or 401 when it wants a login).
fn registry_answers(host: &str) -> bool {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(3)))
        .http_status_as_error(false)
        .build()
        .into();
    agent
        .get(&format!("http://{host}/v2/"))
        .call()
        .is_ok_and(|r| matches!(r.status().as_u16(), 200 | 401))
}
