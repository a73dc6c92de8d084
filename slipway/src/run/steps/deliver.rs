//! Delivering an image to the cluster and saying what moved: the path it took and
//! the bytes (a load: the archive, the image's size; a push: the layers docker
//! pushed, their sizes read back from a registry on this machine).

use std::time::{Duration, Instant};

use super::Cx;
use crate::exec::net;
use crate::model::{ms, Error, Event};
use crate::plan::Delivery;

pub fn run(cx: &Cx, d: &Delivery) -> Result<(), Error> {
    let started = Instant::now();
    let out = cx.run_step_cmd_output(&d.cmd, cx.deadline)?;
    let took = started.elapsed();
    let (bytes, layers_sent, layers) = if d.path.is_push() {
        let r = Delivery::pushed(&out);
        let bytes = match (&d.registry, &r.digest) {
            (Some(host), Some(digest)) => {
                pushed_bytes(cx.ex.signals(), host, &d.reference, digest, &r.pushed)
            }
            _ => None,
        };
        (bytes, Some(r.pushed.len() as u32), Some(r.layers))
    } else {
        // The size is a report, not a condition: a failed read says "unknown".
        let bytes = d.size.as_ref().and_then(|size| {
            let o = cx.ex.probe(cx.stage, size, Some(cx.deadline)).ok()?;
            o.stdout.trim().parse::<u64>().ok()
        });
        (bytes, None, None)
    };
    cx.ex.events.emit(Event::Delivered {
        stage: cx.stage,
        image: d.image.clone(),
        reference: d.reference.clone(),
        path: d.path.to_string(),
        bytes,
        layers_sent,
        layers,
        duration_ms: ms(took),
        why: d.why.clone(),
    });
    Ok(())
}

/// The bytes of the layers docker pushed: the manifest `digest` of `reference`
/// and its config, read from the registry at `host` (plain HTTP, on this machine),
/// pair each layer (compressed size) with its diff ID, whose short form docker
/// printed as "Pushed". `None` when the registry does not answer as expected.
fn pushed_bytes(
    signals: &crate::exec::Signals,
    host: &str,
    reference: &str,
    digest: &str,
    pushed: &[String],
) -> Option<u64> {
    let repo = reference
        .strip_prefix(&format!("{host}/"))?
        .rsplit_once(':')
        .map_or(reference, |(r, _)| r);
    let client = net::Client::new(Duration::from_secs(5), signals);
    let get = |path: &str, accept: &str| -> Option<serde_json::Value> {
        let mut req = net::Request::new(
            "GET",
            net::Target::Url(format!("http://{host}/v2/{repo}/{path}")),
        );
        req.headers.push(("Accept".into(), accept.into()));
        req.limit = 1 << 20;
        let r = client.send(&req).ok().filter(|r| r.status == 200)?;
        serde_json::from_str(&r.body).ok()
    };
    let manifest = get(
        &format!("manifests/{digest}"),
        "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json",
    )?;
    let config = manifest["config"]["digest"].as_str()?;
    let config = get(&format!("blobs/{config}"), "application/json")?;
    let diff_ids = config["rootfs"]["diff_ids"].as_array()?;
    let layers = manifest["layers"].as_array()?;
    Some(
        layers
            .iter()
            .zip(diff_ids)
            .filter(|(_, id)| {
                let short: String = id
                    .as_str()
                    .unwrap_or_default()
                    .trim_start_matches("sha256:")
                    .chars()
                    .take(12)
                    .collect();
                pushed
                    .iter()
                    .any(|p| p.starts_with(&short) || short.starts_with(p.as_str()))
            })
            .filter_map(|(l, _)| l["size"].as_u64())
            .sum(),
    )
}
