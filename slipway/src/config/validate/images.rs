//! [images.NAME].

use std::collections::BTreeMap;
use std::path::Path;

use super::{path, Cx, Pipeline};
use crate::config::TagPolicy;

pub(super) fn check(p: &Pipeline, cx: &mut Cx) {
    let exists = |rel: &Path| p.path(rel).exists();
    let mut repos: BTreeMap<String, &str> = BTreeMap::new();
    for img in &p.images {
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
        for (k, v) in &img.build_args {
            if k.is_empty() || k.contains(['=', '\0']) || k.chars().any(char::is_whitespace) {
                cx.err(
                    &path(&["images", &img.name, "build_args", k]),
                    format!(
                        "build argument name {k:?} is empty or has `=`, a NUL byte or whitespace"
                    ),
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
        if let Some(pb) = &img.pre_build {
            if pb.command.is_empty() {
                cx.err(
                    &path(&["images", &img.name, "pre_build", "command"]),
                    "pre_build.command is empty".into(),
                    None,
                );
            }
        }
    }
}
