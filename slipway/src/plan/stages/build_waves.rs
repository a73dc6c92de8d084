//! build waves: which build steps run once and which run at the same time.
//!
//! Images are put in *units*: images with the same build context, or with the same
//! pre-build (command and environment), are one unit. A unit's steps run one after
//! another, its shared pre-build once (before the first of its images), so two
//! builds of one context never run at once and a workspace's cargo build is not run
//! per image. Units are spread over at most [`BUILD_CONCURRENCY`] lanes; the lanes
//! run at the same time (each lane is a step group, see [`crate::plan::Step::group`]).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use crate::config;
use crate::model::Stage;
use crate::plan::Plan;

/// How many builds run at the same time.
///
/// Measured on this project's 2-core machine with real `docker build`s (legacy
/// builder, `--no-cache`, other work on the machine: load 5–19), medians of 3–6
/// rounds, see docs/benchmarks.md "Concurrent builds": a copy-only image (the
/// sample's kind): 2 serial 1.92 s, 2 at once 1.30 s; 3 serial 3.76 s, 3 at once
/// 2.30 s, 3 in 2 lanes 2.67 s. A RUN step (gzip of 150 MB): 2 serial 4.25 s, at
/// once 3.27 s; 3 serial 6.32 s, at once 5.04 s, in 2 lanes 6.69 s. Four: at once
/// 3.22 s / 7.62 s, 2 lanes 3.01 s / 8.50 s, 3 lanes 3.61 s / 8.53 s: no
/// consistent gain past three. A build waits on the engine (context upload, layer
/// commit) as much as it computes, so three overlap well on two cores; a fourth
/// only adds contention. Again with `cargo xtask bench --builds-only --rounds 3`
/// (load 29–35): copy, 3 at once 4.35 s, in 2 lanes 5.99 s, serial 7.93 s; run,
/// 10.11 s, 11.79 s, 15.79 s.
pub const BUILD_CONCURRENCY: usize = 3;

/// One lane: the images it builds, in declaration order, as units (indices into
/// the pipeline's images).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lane {
    pub units: Vec<Vec<usize>>,
}

/// A pre-build's identity: the same command with the same environment is one step.
pub(in crate::plan) fn pre_build_key(
    pb: &config::PreBuild,
) -> (Vec<String>, Vec<(String, String)>) {
    (
        pb.command.clone(),
        pb.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
    )
}

/// `a/./b/../c` as `a/c`, without reading the file system (planning reads only the
/// pipeline's own files).
fn lexical(p: &Path) -> PathBuf {
    let mut out: Vec<Component> = vec![];
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.iter().collect()
}

/// Images in units: one context or one pre-build puts images in the same unit
/// (transitively), in the order the pipeline declares them.
pub fn units(images: &[config::Image]) -> Vec<Vec<usize>> {
    let mut parent: Vec<usize> = (0..images.len()).collect();
    fn root(parent: &mut [usize], i: usize) -> usize {
        let mut r = i;
        while parent[r] != r {
            r = parent[r];
        }
        parent[i] = r;
        r
    }
    let mut by_context: BTreeMap<PathBuf, usize> = BTreeMap::new();
    let mut by_pre_build = BTreeMap::new();
    for (i, img) in images.iter().enumerate() {
        let mut firsts = vec![*by_context.entry(lexical(&img.context)).or_insert(i)];
        if let Some(pb) = &img.pre_build {
            firsts.push(*by_pre_build.entry(pre_build_key(pb)).or_insert(i));
        }
        for f in firsts {
            let (a, b) = (root(&mut parent, f), root(&mut parent, i));
            // The earlier image stays the unit's root.
            parent[a.max(b)] = a.min(b);
        }
    }
    let mut out: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..images.len() {
        let r = root(&mut parent, i);
        out.entry(r).or_default().push(i);
    }
    out.into_values().collect()
}

/// Units spread over at most `bound` lanes: each to the lane with the fewest images
/// so far (the first such), in declaration order.
pub fn lanes(images: &[config::Image], bound: usize) -> Vec<Lane> {
    let units = units(images);
    let n = bound.max(1).min(units.len());
    let mut lanes = vec![Lane { units: vec![] }; n];
    for u in units {
        let size = |l: &Lane| l.units.iter().map(Vec::len).sum::<usize>();
        if let Some(l) = lanes.iter_mut().min_by_key(|l| size(l)) {
            l.units.push(u);
        }
    }
    lanes
}

/// The build stage's header line in `plan`, from the plan's steps alone: which
/// lanes run at the same time and the steps of each, in order. `None` with fewer
/// than two images to build.
pub fn describe(plan: &Plan) -> Option<String> {
    let mut lanes: Vec<(&str, Vec<&str>)> = vec![];
    for s in plan.steps.iter().filter(|s| s.stage == Stage::Build) {
        let Some(g) = s.group.as_deref() else {
            continue;
        };
        match lanes.iter_mut().find(|(name, _)| *name == g) {
            Some((_, ids)) => ids.push(&s.id),
            None => lanes.push((g, vec![&s.id])),
        }
    }
    let builds = lanes
        .iter()
        .flat_map(|(_, ids)| ids)
        .filter(|id| id.starts_with("build/"))
        .count();
    if builds < 2 {
        return None;
    }
    if let [(_, ids)] = lanes.as_slice() {
        return Some(format!(
            "one lane (one build context or one pre-build): {}, one after another",
            ids.join(" -> ")
        ));
    }
    let text: Vec<String> = lanes
        .iter()
        .map(|(name, ids)| format!("lane {name}: {}", ids.join(" -> ")))
        .collect();
    Some(format!(
        "{} lanes at the same time (at most {BUILD_CONCURRENCY}: docs/benchmarks.md), each one step after another; {}",
        lanes.len(),
        text.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(name: &str, context: &str, pre_build: Option<&str>) -> config::Image {
        let mut text = format!("context = {context:?}\n");
        if let Some(cmd) = pre_build {
            text.push_str(&format!("[pre_build]\ncommand = [{cmd:?}]\n"));
        }
        let mut i: config::Image = toml::from_str(&text).unwrap();
        i.name = name.into();
        i
    }

    #[test]
    fn one_context_or_one_pre_build_is_one_unit() {
        let imgs = [
            image("api", "../../services/sample", Some("build.sh")),
            image("web", "web", None),
            image("worker", "../../services/./sample", Some("other.sh")),
            image("cli", "cli", Some("build.sh")),
            image("docs", "docs/../docs2", None),
        ];
        assert_eq!(units(&imgs), vec![vec![0, 2, 3], vec![1], vec![4]]);
    }

    #[test]
    fn lanes_are_bounded_and_balanced() {
        let imgs: Vec<_> = ["a", "b", "c"].iter().map(|n| image(n, n, None)).collect();
        let l = lanes(&imgs, 2);
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].units, vec![vec![0], vec![2]]);
        assert_eq!(l[1].units, vec![vec![1]]);
        assert_eq!(lanes(&imgs, 5).len(), 3);
        assert_eq!(lanes(&imgs[..1], 2).len(), 1);
        assert!(lanes(&[], 2).is_empty());
    }
}
