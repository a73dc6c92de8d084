//! `[groups]`: each a plain name that is not also a release's (`--only NAME` would be
//! ambiguous), listing at least one release, each a release of this pipeline.

use super::{nearest, path, Cx, Pipeline};

pub(super) fn check(p: &Pipeline, cx: &mut Cx) {
    let releases: Vec<&str> = p.releases.iter().map(|r| r.name.as_str()).collect();
    for (name, members) in &p.groups {
        super::check_table_name(cx, "groups", name);
        let at = path(&["groups", name]);
        if releases.contains(&name.as_str()) {
            cx.err(
                &at,
                format!(
                    "group `{name}` has the name of a release: `--only {name}` would mean either"
                ),
                Some("rename the group".into()),
            );
        }
        if members.is_empty() {
            cx.err(&at, format!("group `{name}` lists no release"), None);
        }
        for m in members {
            if !releases.contains(&m.as_str()) {
                cx.err(
                    &at,
                    format!("group `{name}` lists `{m}`, which is not a release of this pipeline"),
                    nearest(m, &releases).map(|n| format!("did you mean `{n}`?")),
                );
            }
        }
    }
}
