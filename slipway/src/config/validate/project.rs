//! [project], [cluster] and [registry].

use super::{is_dns_label, path, Cx, Pipeline};
use crate::config::Provider;

pub(super) fn check(p: &Pipeline, cx: &mut Cx) {
    if !is_dns_label(&p.project.name) {
        cx.err(
            &path(&["project", "name"]),
            format!(
                "project name {:?} must be a DNS label (a-z, 0-9, -; at most 63)",
                p.project.name
            ),
            None,
        );
    }
    if !is_dns_label(&p.project.namespace) {
        cx.err(
            &path(&["project", "namespace"]),
            format!("namespace {:?} is not a DNS label", p.project.namespace),
            None,
        );
    }
    let c = &p.cluster;
    if c.provider == Provider::Existing && c.context.as_deref().unwrap_or("").is_empty() {
        cx.err(
            &path(&["cluster", "provider"]),
            "provider \"existing\" needs `cluster.context`, the kube context to deploy to".into(),
            Some("set cluster.context, or pass --kube-context".into()),
        );
    }
    if c.provider != Provider::Existing && !is_dns_label(&c.name) {
        cx.err(
            &path(&["cluster", "name"]),
            format!("cluster name {:?} must be a DNS label", c.name),
            None,
        );
    }
    if p.registry.is_some() && c.provider != Provider::Existing {
        cx.err(
            &path(&["registry"]),
            format!("[registry] pushes images for provider \"existing\"; provider \"{}\" loads them into the cluster", c.provider),
            Some("remove [registry], or set cluster.provider = \"existing\" (see the `remote` profile)".into()),
        );
    }

    // The context of a cluster slipway creates is the one it creates: another name
    // here would let the context guard wave a foreign cluster through.
    if let (Some(managed), Some(given)) = (c.provider().managed_context(c), &c.context) {
        if *given != managed {
            cx.err(
                &path(&["cluster", "context"]),
                format!(
                    "provider \"{}\" manages context {managed:?}; `cluster.context = {given:?}` would point slipway at another cluster",
                    c.provider
                ),
                Some(format!(
                    "remove `cluster.context` (it is derived), or use provider \"existing\" with context {given:?}"
                )),
            );
        }
    }
}
