//! A guard: run its probe (through the cache) and ask the plan's guard what the
//! output means. `Some(reason)` skips the step.

use std::time::Duration;

use super::Cx;
use crate::model::Error;
use crate::plan::steps::guard::Current;
use crate::plan::{Guard, ImagesBuilt, ReleaseCurrent, SecretCurrent};

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
                .filter(|_| registry_answers(&g.host, cx.ex.signals()))
        }
        Guard::NamespaceExists(g) => g.verdict(&cx.probe(&g.probe)?),
        Guard::SecretCurrent(g) => {
            let out = cx.probe(&g.probe)?;
            if !SecretCurrent::annotated(&out) {
                return Ok(None);
            }
            g.verdict(&out, &cx.secret_annotation(&g.secret)?)
        }
        Guard::ImagesBuilt(g) => images_built(cx, g)?,
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

/// Every image of a shared pre-build is built already.
fn images_built(cx: &Cx, g: &ImagesBuilt) -> Result<Option<String>, Error> {
    let mut built = vec![];
    for (reference, probe) in g.references.iter().zip(&g.probes) {
        match ImagesBuilt::built(reference, &cx.probe(probe)?) {
            Some(b) => built.push(b),
            None => return Ok(None),
        }
    }
    Ok(Some(ImagesBuilt::verdict(&built)))
}

/// `GET http://HOST/v2/` answers as a registry does (200, or 401 when it wants a login).
fn registry_answers(host: &str, signals: &crate::exec::Signals) -> bool {
    use crate::exec::net;
    let url = net::Target::Url(format!("http://{host}/v2/"));
    net::Client::new(Duration::from_secs(3), signals)
        .send(&net::Request::new("GET", url))
        .is_ok_and(|r| matches!(r.status, 200 | 401))
}
