//! [images.NAME].

use std::collections::BTreeMap;
use std::path::Path;

use super::{path, Cx, Pipeline};
use crate::config::{Image, TagPolicy};

pub(super) fn check(p: &Pipeline, cx: &mut Cx) {
    let mut repos: BTreeMap<String, &str> = BTreeMap::new();
    let repo = super::repo_root(p);
    for img in &p.images {
        image(p, cx, img, repo.as_deref(), &mut repos);
    }
}

/// One image's checks, in order.
fn image<'a>(
    p: &Pipeline,
    cx: &mut Cx,
    img: &'a Image,
    repo: Option<&Path>,
    repos: &mut BTreeMap<String, &'a str>,
) {
    inside_repo(p, cx, img, repo);
    super::check_table_name(cx, "images", &img.name);
    let at = |k: &str| path(&["images", &img.name, k]);
    if let Some(prev) = repos.insert(img.repository().to_string(), &img.name) {
        cx.err(
            &at("repository"),
            format!(
                "images `{prev}` and `{}` both build repository {:?}",
                img.name,
                img.repository()
            ),
            Some("give each image its own repository".into()),
        );
    }
    if !crate::model::names::is_repository(img.repository()) {
        cx.err(
            &at("repository"),
            format!(
                "repository {:?} is not a valid image name: [HOST[:PORT]/]PATH, each path part lowercase letters and digits joined by `.`, `_`, `__` or `-`",
                img.repository()
            ),
            None,
        );
    }
    build_args(cx, img);
    files_exist(p, cx, img);
    tag(cx, img);
    pre_build(cx, img);
}

/// The image's context, Dockerfile and inputs are inside the repository.
fn inside_repo(p: &Pipeline, cx: &mut Cx, img: &Image, repo: Option<&Path>) {
    let who = format!("image `{}`:", img.name);
    super::check_inside_repo(
        p,
        cx,
        repo,
        &path(&["images", &img.name, "context"]),
        &format!("{who} build context"),
        &img.context,
    );
    if img.dockerfile.is_some() {
        super::check_inside_repo(
            p,
            cx,
            repo,
            &path(&["images", &img.name, "dockerfile"]),
            &format!("{who} Dockerfile"),
            &img.dockerfile(),
        );
    }
    for (i, input) in img.inputs.iter().enumerate() {
        super::check_inside_repo(
            p,
            cx,
            repo,
            &path(&["images", &img.name, "inputs", &i.to_string()]),
            &format!("{who} input"),
            input,
        );
    }
}

/// Build arguments: names and values docker accepts.
fn build_args(cx: &mut Cx, img: &Image) {
    for (k, v) in &img.build_args {
        if k.is_empty() || k.contains(['=', '\0']) || k.chars().any(char::is_whitespace) {
            cx.err(
                &path(&["images", &img.name, "build_args", k]),
                format!("build argument name {k:?} is empty or has `=`, a NUL byte or whitespace"),
                None,
            );
        }
        if v.contains('\0') {
            cx.err(
                &path(&["images", &img.name, "build_args", k]),
                format!("build argument {k:?} has a NUL byte in its value"),
                None,
            );
        }
    }
}

/// The context is a directory, the Dockerfile a file, the inputs there.
fn files_exist(p: &Pipeline, cx: &mut Cx, img: &Image) {
    let exists = |rel: &Path| p.path(rel).exists();
    let at = |k: &str| path(&["images", &img.name, k]);
    let is_dir = |rel: &Path| p.path(rel).is_dir();
    let context_is_file = exists(&img.context) && !is_dir(&img.context);
    let dockerfile_is_dir = is_dir(&img.dockerfile());
    if context_is_file {
        cx.err(
            &at("context"),
            format!(
                "image `{}`: build context {} is a file, not a directory",
                img.name,
                img.context.display()
            ),
            None,
        );
    }
    if dockerfile_is_dir {
        cx.err(
            &at("dockerfile"),
            format!(
                "image `{}`: Dockerfile {} is a directory, not a file",
                img.name,
                img.dockerfile().display()
            ),
            None,
        );
    }
    if !exists(&img.context) {
        cx.err(
            &at("context"),
            format!(
                "image `{}`: build context {} does not exist",
                img.name,
                img.context.display()
            ),
            None,
        );
    }
    let df = img.dockerfile();
    if !exists(&df) && !context_is_file {
        cx.err(
            &at(if img.dockerfile.is_some() {
                "dockerfile"
            } else {
                "context"
            }),
            format!(
                "image `{}`: Dockerfile {} does not exist",
                img.name,
                df.display()
            ),
            Some("set `dockerfile` to its path, relative to pipeline.toml".into()),
        );
    }
    for (i, input) in img.inputs.iter().enumerate() {
        if !exists(input) {
            cx.err(
                &path(&["images", &img.name, "inputs", &i.to_string()]),
                format!(
                    "image `{}`: input {} does not exist",
                    img.name,
                    input.display()
                ),
                None,
            );
        }
    }
}

/// `tag` with tag_policy "fixed", and only then; a valid tag.
fn tag(cx: &mut Cx, img: &Image) {
    let at = |k: &str| path(&["images", &img.name, k]);
    match (img.tag_policy, &img.tag) {
        (TagPolicy::Fixed, None) => cx.err(
            &at("tag_policy"),
            format!("image `{}`: tag_policy \"fixed\" needs `tag`", img.name),
            None,
        ),
        (TagPolicy::Fixed, Some(_)) | (_, None) => {}
        (_, Some(_)) => cx.err(
            &at("tag"),
            format!(
                "image `{}`: `tag` only applies with tag_policy = \"fixed\"",
                img.name
            ),
            Some("remove `tag`, or set tag_policy = \"fixed\"".into()),
        ),
    }
    if let Some(t) = &img.tag {
        if !crate::model::names::is_tag(t) {
            cx.err(
                &at("tag"),
                format!("tag {t:?} is not a valid image tag"),
                None,
            );
        }
    }
}

/// pre_build: a command, no NUL bytes, environment names.
fn pre_build(cx: &mut Cx, img: &Image) {
    if let Some(pb) = &img.pre_build {
        if pb.command.is_empty() {
            cx.err(
                &path(&["images", &img.name, "pre_build", "command"]),
                "pre_build.command is empty".into(),
                None,
            );
        }
        // An argv element cannot hold a NUL byte: exec would cut it short.
        for (i, a) in pb.command.iter().enumerate() {
            if a.contains('\0') {
                cx.err(
                    &path(&["images", &img.name, "pre_build", "command", &i.to_string()]),
                    format!("pre_build.command argument {i} has a NUL byte"),
                    None,
                );
            }
        }
        for (k, v) in &pb.env {
            let at = path(&["images", &img.name, "pre_build", "env", k]);
            if !crate::model::names::is_env_name(k) {
                cx.err(
                    &at,
                    format!("pre_build.env key {k:?} is not an environment variable name (letters, digits, _; not starting with a digit)"),
                    None,
                );
            }
            if v.contains('\0') {
                cx.err(
                    &at,
                    format!("pre_build.env value of {k:?} has a NUL byte"),
                    None,
                );
            }
        }
    }
}
