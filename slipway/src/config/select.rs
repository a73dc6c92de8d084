//! `--only NAME` (repeatable; a release or a `[groups]` name): the pipeline narrowed
//! to those releases and every release they `need`, the images only they use and
//! the checks of the releases kept. Every job plans the narrowed pipeline, so
//! `deploy-local`, `dev`, `smoke`, `status`, `logs` and `down` all act on the subset.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::{image_refs, nearest, Pipeline};
use crate::model::Error;

/// What `--only` kept, and why each release is in it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Selection {
    /// The names as given (releases or groups).
    pub requested: Vec<String>,
    /// Release → why it is selected ("named", "group G", "needed by R").
    pub releases: BTreeMap<String, String>,
    /// Releases, images and checks left out.
    pub left_out: LeftOut,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct LeftOut {
    pub releases: Vec<String>,
    pub images: Vec<String>,
    pub checks: Vec<String>,
}

/// Narrow `p` to `only` (nothing when `only` is empty). An unknown name is a usage
/// error naming the releases and groups there are.
pub fn select(p: &mut Pipeline, only: &[String]) -> Result<(), Error> {
    if only.is_empty() {
        return Ok(());
    }
    let mut why: BTreeMap<String, String> = BTreeMap::new();
    let mut todo: Vec<String> = vec![];
    for name in only {
        if p.release(name).is_some() {
            why.insert(name.clone(), "named".into());
            todo.push(name.clone());
        } else if let Some(members) = p.groups.get(name) {
            for m in members {
                why.entry(m.clone())
                    .or_insert_with(|| format!("group {name}"));
                todo.push(m.clone());
            }
        } else {
            let mut known: Vec<&str> = p.releases.iter().map(|r| r.name.as_str()).collect();
            known.extend(p.groups.keys().map(String::as_str));
            let mut e = Error::usage(format!(
                "--only {name}: no release or group of that name (there are: {})",
                known.join(", ")
            ));
            if let Some(n) = nearest(name, &known) {
                e = e.hint(format!("did you mean `{n}`?"));
            }
            return Err(e);
        }
    }
    // Everything the named releases need, transitively.
    while let Some(r) = todo.pop() {
        let needs = p.release(&r).map(|r| r.needs.clone()).unwrap_or_default();
        for d in needs {
            if !why.contains_key(&d) {
                why.insert(d.clone(), format!("needed by {r}"));
                todo.push(d);
            }
        }
    }
    let mut left = LeftOut::default();
    // Images: those only left-out releases refer to (`${images.NAME.…}` in their
    // values) go; images no release refers to stay.
    let refs = |r: &super::Release| -> BTreeSet<String> {
        r.set
            .values()
            .chain(r.set_string.values())
            .flat_map(|v| image_refs(v))
            .map(|(name, _)| name)
            .collect()
    };
    let (kept, dropped): (Vec<_>, Vec<_>) =
        p.releases.iter().partition(|r| why.contains_key(&r.name));
    let used_by_kept: BTreeSet<String> = kept.iter().flat_map(|r| refs(r)).collect();
    let used_by_dropped: BTreeSet<String> = dropped.iter().flat_map(|r| refs(r)).collect();
    left.releases = dropped.iter().map(|r| r.name.clone()).collect();
    p.releases.retain(|r| why.contains_key(&r.name));
    p.images.retain(|i| {
        let keep = used_by_kept.contains(&i.name) || !used_by_dropped.contains(&i.name);
        if !keep {
            left.images.push(i.name.clone());
        }
        keep
    });
    // Checks: those of a left-out release go; a check that names no release stays.
    p.smoke.retain(|c| {
        let keep = c.release.as_ref().is_none_or(|r| why.contains_key(r));
        if !keep {
            left.checks.push(c.name.clone());
        }
        keep
    });
    p.selection = Some(Selection {
        requested: only.to_vec(),
        releases: why,
        left_out: left,
    });
    Ok(())
}

impl Selection {
    /// The plan's lines: what is selected and why, and what is left out.
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![format!("--only {}", self.requested.join(" --only "))];
        for (r, why) in &self.releases {
            out.push(format!("  release {r}: {why}"));
        }
        for (what, names) in [
            ("releases", &self.left_out.releases),
            ("images", &self.left_out.images),
            ("checks", &self.left_out.checks),
        ] {
            if !names.is_empty() {
                out.push(format!("  left out ({what}): {}", names.join(", ")));
            }
        }
        out
    }
}
