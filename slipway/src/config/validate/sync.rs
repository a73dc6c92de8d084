//! [images.NAME.sync]: what `dev` may copy into running pods instead of rebuilding.

use std::path::{Component, Path};

use super::{path, Cx, Pipeline};

/// The directory in the dev variant of an image that holds the sync helper.
const HELPER_DIR: &str = "/.slipway/";

pub(super) fn check(p: &Pipeline, cx: &mut Cx) {
    let repo = super::repo_root(p);
    for img in &p.images {
        let Some(sync) = &img.sync else { continue };
        let at = |keys: &[&str]| {
            let mut k = vec!["images", img.name.as_str(), "sync"];
            k.extend_from_slice(keys);
            path(&k)
        };
        let who = format!("image `{}`: sync", img.name);
        if sync.covers.is_empty() {
            cx.err(
                &at(&["covers"]),
                format!("{who}.covers is empty: no change would ever be synced"),
                Some("list the sources a sync covers, e.g. covers = [\"src\"]".into()),
            );
        }
        let inputs = img.inputs();
        for (i, c) in sync.covers.iter().enumerate() {
            let key = at(&["covers", &i.to_string()]);
            super::check_inside_repo(p, cx, repo.as_deref(), &key, &format!("{who} path"), c);
            // dev watches an image's inputs: a path outside them never changes for it.
            if !inputs.iter().any(|input| c.starts_with(input)) {
                cx.err(
                    &key,
                    format!(
                        "{who}.covers {} is not under any of the image's inputs, so dev never sees it change",
                        c.display()
                    ),
                    Some("add it to the image's `inputs`, or cover a path under them".into()),
                );
            }
        }
        if sync.files.is_empty() {
            cx.err(
                &at(&["files"]),
                format!("{who}.files is empty: nothing would be copied"),
                Some("files = [{ from = \"bin/app\", to = \"/app\" }]".into()),
            );
        }
        for (i, f) in sync.files.iter().enumerate() {
            let n = i.to_string();
            if f.from.as_os_str().is_empty() || f.from.is_absolute() {
                cx.err(
                    &at(&["files", &n, "from"]),
                    format!(
                        "{who}.files: from {:?} must be a path relative to the pipeline's directory",
                        f.from.display().to_string()
                    ),
                    None,
                );
            } else {
                super::check_inside_repo(
                    p,
                    cx,
                    repo.as_deref(),
                    &at(&["files", &n, "from"]),
                    &format!("{who} file"),
                    &f.from,
                );
            }
            if let Some(problem) = container_path_problem(&f.to) {
                cx.err(
                    &at(&["files", &n, "to"]),
                    format!("{who}.files: to {:?} {problem}", f.to),
                    None,
                );
            }
        }
        for (i, a) in sync.command.iter().enumerate() {
            if a.is_empty() || a.contains('\0') {
                cx.err(
                    &at(&["command", &i.to_string()]),
                    format!("{who}.command argument {i} is empty or has a NUL byte"),
                    None,
                );
            }
        }
    }
}

/// Why a path in the container cannot take a synced file, if it cannot.
fn container_path_problem(to: &str) -> Option<&'static str> {
    let p = Path::new(to);
    if !p.is_absolute() {
        return Some("must be an absolute path in the container");
    }
    if to.ends_with('/') || p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Some("must name a file, with no `..`");
    }
    if to.contains(['\t', '\n', '\0']) {
        return Some("has a tab, newline or NUL byte");
    }
    if to.starts_with(HELPER_DIR) {
        return Some("is the sync helper's own directory");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::container_path_problem;

    #[test]
    fn container_paths_are_absolute_files_outside_the_helper() {
        assert_eq!(container_path_problem("/sample"), None);
        assert_eq!(container_path_problem("/srv/www/index.html"), None);
        for bad in [
            "sample",
            "/srv/",
            "/srv/../etc/passwd",
            "/.slipway/sync",
            "/a\tb",
        ] {
            assert!(container_path_problem(bad).is_some(), "{bad}");
        }
    }
}
