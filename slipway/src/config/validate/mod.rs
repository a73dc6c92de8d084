//! Meaning checks on an otherwise well-typed pipeline, one file per section. Each
//! reports every problem it finds, located, with the valid form where one is near.

mod groups;
mod images;
mod project;
mod releases;
mod smoke;
mod sync;

use toml::Table;

use super::{image_refs, nearest, path, Cx, Pipeline, IMAGE_FIELDS};

/// `raw` is the merged pipeline before `${VAR}` interpolation.
pub(super) fn all(p: &Pipeline, raw: &Table, cx: &mut Cx) {
    unresolved_image_refs(raw, &mut vec![], cx);
    project::check(p, cx);
    images::check(p, cx);
    sync::check(p, cx);
    releases::check(p, raw, cx);
    smoke::check(p, raw, cx);
    groups::check(p, cx);
}

pub(super) use crate::model::names::{is_dns_label, is_dns_subdomain};

/// `${images.…}` is resolved in release values and smoke checks only: anywhere else it
/// would reach a tool as written.
fn unresolved_image_refs(t: &Table, at: &mut Vec<String>, cx: &mut Cx) {
    for (k, v) in t {
        at.push(k.clone());
        let resolved_here = matches!(
            at.iter().map(String::as_str).collect::<Vec<_>>().as_slice(),
            ["releases", _, "set" | "set_string", ..] | ["smoke", ..] | ["profiles", ..]
        );
        match v {
            toml::Value::Table(inner) => unresolved_image_refs(inner, at, cx),
            toml::Value::String(s) if !resolved_here && s.contains("${images.") => {
                not_resolved_here(at, cx)
            }
            toml::Value::Array(items) if !resolved_here => {
                for (i, item) in items.iter().enumerate() {
                    if item.as_str().is_some_and(|s| s.contains("${images.")) {
                        at.push(i.to_string());
                        not_resolved_here(at, cx);
                        at.pop();
                    }
                }
            }
            _ => {}
        }
        at.pop();
    }
}

fn not_resolved_here(at: &[String], cx: &mut Cx) {
    cx.err(
        at,
        format!(
            "`{}` is not resolved here: `${{images.…}}` works in a release's `set`/`set_string` and in smoke checks",
            at.join(".")
        ),
        None,
    );
    // Later checks of this value would only repeat the problem.
    cx.uninterpolated.insert(at.to_vec());
}

/// The repository the pipeline belongs to (see [`crate::model::repo::root`]).
pub(crate) fn repo_root(p: &Pipeline) -> Option<std::path::PathBuf> {
    crate::model::repo::root(&p.root)
}

/// A path the pipeline names (a build context, an input …) must stay inside the
/// repository: after `..` and symlinks are resolved, not above it. What it resolves
/// to when it leaves; `None` when it stays in or does not exist (reported elsewhere).
pub(super) fn outside_repo(
    p: &Pipeline,
    repo: Option<&std::path::Path>,
    rel: &std::path::Path,
) -> Option<std::path::PathBuf> {
    crate::model::repo::escapes(repo?, &p.path(rel))
}

/// Report `rel` (a `what` at `at`) when it leaves the repository.
pub(super) fn check_inside_repo(
    p: &Pipeline,
    cx: &mut Cx,
    repo: Option<&std::path::Path>,
    at: &[String],
    what: &str,
    rel: &std::path::Path,
) {
    if let Some(real) = outside_repo(p, repo, rel) {
        cx.err(
            at,
            format!(
                "{what} {} is outside the repository: it resolves to {}, not under {}",
                rel.display(),
                real.display(),
                repo.map(|r| r.display().to_string()).unwrap_or_default()
            ),
            Some("keep build inputs and values files inside the repository (slipway hashes and watches them); copy or vendor what is outside".into()),
        );
    }
}

/// A `[SECTION.NAME]` key is printed and used in step ids: no spaces or escapes.
fn check_table_name(cx: &mut Cx, section: &str, name: &str) {
    if !crate::model::names::is_plain_name(name) {
        cx.err(
            &path(&[section, name]),
            format!(
                "{section} name {name:?} must be letters, digits, `.`, `_` or `-` (at most 63)"
            ),
            None,
        );
    }
}

/// `${images.NAME.FIELD}` references in `s` must name a defined image and field.
pub(super) fn check_refs(p: &Pipeline, cx: &mut Cx, at: Vec<String>, s: &str) {
    let image_names: Vec<&str> = p.images.iter().map(|i| i.name.as_str()).collect();
    for (name, field) in image_refs(s) {
        if !image_names.contains(&name.as_str()) {
            let hint = match nearest(&name, &image_names) {
                Some(n) => format!("did you mean `{n}`?"),
                None if image_names.is_empty() => "this pipeline defines no [images]".into(),
                None => format!("defined images: {}", image_names.join(", ")),
            };
            cx.err(
                &at,
                format!("`${{images.{name}.{field}}}` refers to an undefined image `{name}`"),
                Some(hint),
            );
        } else if !IMAGE_FIELDS.contains(&field.as_str()) {
            cx.err(
                &at,
                format!("`${{images.{name}.{field}}}`: an image has `repository`, `tag` and `ref`"),
                None,
            );
        }
    }
}
