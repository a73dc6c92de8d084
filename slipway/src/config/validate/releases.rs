//! [releases.NAME].

use std::collections::BTreeMap;
use std::path::Path;

use std::collections::BTreeSet;

use toml::Table;

use super::{is_dns_label, is_dns_subdomain, path, Cx, Pipeline};
use crate::config::{interp, Release};

/// Variables whose values feed a Secret: known as secret everywhere.
pub(super) fn secret_vars(p: &Pipeline) -> BTreeSet<String> {
    p.releases
        .iter()
        .flat_map(|r| r.secrets.values())
        .flat_map(|s| s.from_env.values().cloned())
        .chain(p.registry.iter().filter_map(|r| r.password_env.clone()))
        .collect()
}

/// A `--set` key and value helm will take as written.
fn check_set(cx: &mut Cx, at: &[String], k: &str, v: &str) {
    if k.is_empty() || k.contains(['\0', '=', ',']) || k.starts_with('.') || k.ends_with('.') {
        cx.err(
            at,
            format!("{k:?} is not a helm value path (dotted keys, no `=` or `,`)"),
            None,
        );
    }
    if v.contains('\0') {
        cx.err(at, format!("the value of {k:?} has a NUL byte"), None);
    }
    let mut escaped = false;
    for ch in v.chars() {
        if ch == ',' && !escaped {
            cx.err(
                at,
                format!("the value of {k:?} has a comma: helm splits --set values at commas"),
                Some("escape it as `\\,`, or put the value in a values file".into()),
            );
            break;
        }
        escaped = ch == '\\' && !escaped;
    }
}

/// The longest helm release name (helm's own limit).
const MAX_RELEASE_NAME: usize = 53;

pub(super) fn check(p: &Pipeline, raw: &Table, cx: &mut Cx) {
    let secret_vars = secret_vars(p);
    let mut seen_release: BTreeMap<(String, String), &str> = BTreeMap::new();
    let mut seen_secret: BTreeMap<(String, String), &str> = BTreeMap::new();
    needs(p, cx);
    let repo = super::repo_root(p);
    for r in &p.releases {
        inside_repo(p, cx, r, repo.as_deref());
        super::check_table_name(cx, "releases", &r.name);
        let ns = p.namespace_of(r);
        settings(p, cx, r, &ns, &mut seen_release);
        files(p, cx, r);
        sets(p, raw, cx, r, &secret_vars);
        secrets(p, cx, r, &ns, &mut seen_secret);
        workloads(cx, r);
    }
}

/// The release's values files and set_file files are inside the repository.
fn inside_repo(p: &Pipeline, cx: &mut Cx, r: &Release, repo: Option<&Path>) {
    let who = format!("release `{}`:", r.name);
    for (i, v) in r.values.iter().enumerate() {
        super::check_inside_repo(
            p,
            cx,
            repo,
            &path(&["releases", &r.name, "values", &i.to_string()]),
            &format!("{who} values file"),
            v,
        );
    }
    for (k, f) in &r.set_file {
        super::check_inside_repo(
            p,
            cx,
            repo,
            &path(&["releases", &r.name, "set_file", k]),
            &format!("{who} set_file"),
            f,
        );
    }
}

/// Its helm release name, timeout, crash limit, apply mode, namespace; one helm
/// release per name and namespace; a chart.
fn settings<'a>(
    p: &Pipeline,
    cx: &mut Cx,
    r: &'a Release,
    ns: &str,
    seen_release: &mut BTreeMap<(String, String), &'a str>,
) {
    let at = |k: &str| path(&["releases", &r.name, k]);
    let rollout_budget = p.timeouts.budget(crate::model::Stage::Rollout);
    if r.release_name().len() > MAX_RELEASE_NAME {
        cx.err(
            &at("release"),
            format!(
                "release name {:?} is {} characters; helm allows at most {MAX_RELEASE_NAME}",
                r.release_name(),
                r.release_name().len()
            ),
            Some("set a shorter `release` name".into()),
        );
    } else if !is_dns_label(r.release_name()) {
        cx.err(
            &at("release"),
            format!("release name {:?} must be a DNS label", r.release_name()),
            None,
        );
    }
    if r.timeout.0 > rollout_budget {
        cx.err(
            &at("timeout"),
            format!(
                "the release timeout ({}) is longer than the rollout stage's budget ({}), which would cut it short",
                humantime::format_duration(r.timeout.0),
                humantime::format_duration(rollout_budget)
            ),
            Some("raise [timeouts] rollout, or lower the release's timeout".into()),
        );
    }
    if r.crash_limit == 0 {
        cx.err(
            &at("crash_limit"),
            "crash_limit must be at least 1 (the restarts that mean a container is crash-looping)"
                .to_string(),
            None,
        );
    }
    if r.force_conflicts == Some(true) && r.apply != crate::model::helm::Apply::ServerSide {
        cx.err(
            &at("force_conflicts"),
            format!(
                "force_conflicts needs apply = \"server-side\" (this release has apply = \"{}\"); helm rejects --force-conflicts without server-side apply",
                <&str>::from(r.apply)
            ),
            Some("drop force_conflicts, or set apply = \"server-side\"".into()),
        );
    }
    if !is_dns_label(ns) {
        cx.err(
            &at("namespace"),
            format!("namespace {ns:?} is not a DNS label"),
            None,
        );
    }
    if let Some(prev) = seen_release.insert((r.release_name().to_string(), ns.to_string()), &r.name)
    {
        cx.err(
            &at("release"),
            format!(
                "releases `{prev}` and `{}` are both helm release {:?} in namespace {ns:?}",
                r.name,
                r.release_name()
            ),
            Some("give each a distinct `release` name or namespace".into()),
        );
    }
    if !p.path(&r.chart).join("Chart.yaml").is_file() {
        cx.err(
            &at("chart"),
            format!(
                "release `{}`: no Chart.yaml in chart directory {}",
                r.name,
                r.chart.display()
            ),
            None,
        );
    }
}

/// Its values files and set_file files exist and are files.
fn files(p: &Pipeline, cx: &mut Cx, r: &Release) {
    let exists = |rel: &Path| p.path(rel).exists();
    let is_file = |rel: &Path| p.path(rel).is_file();
    for (i, v) in r.values.iter().enumerate() {
        if exists(v) && !is_file(v) {
            cx.err(
                &path(&["releases", &r.name, "values", &i.to_string()]),
                format!(
                    "release `{}`: values file {} is a directory, not a file",
                    r.name,
                    v.display()
                ),
                None,
            );
        } else if !exists(v) {
            // A gitignored local overlay next to its committed example.
            let example = v.with_file_name(format!(
                "{}.example",
                v.file_name().unwrap_or_default().to_string_lossy()
            ));
            cx.err(
                &path(&["releases", &r.name, "values", &i.to_string()]),
                format!(
                    "release `{}`: values file {} does not exist",
                    r.name,
                    v.display()
                ),
                exists(&example).then(|| {
                    format!(
                        "start from the committed example: cp {} {}",
                        p.path(&example).display(),
                        p.path(v).display()
                    )
                }),
            );
        }
    }
    for (k, f) in &r.set_file {
        if exists(f) && !is_file(f) {
            cx.err(
                &path(&["releases", &r.name, "set_file", k]),
                format!(
                    "release `{}`: set_file {} is a directory, not a file",
                    r.name,
                    f.display()
                ),
                None,
            );
        } else if !exists(f) {
            cx.err(
                &path(&["releases", &r.name, "set_file", k]),
                format!(
                    "release `{}`: set_file {} does not exist",
                    r.name,
                    f.display()
                ),
                None,
            );
        }
    }
}

/// `set` and `set_string`: references, helm's syntax, and no variable that feeds a
/// Secret.
fn sets(p: &Pipeline, raw: &Table, cx: &mut Cx, r: &Release, secret_vars: &BTreeSet<String>) {
    for (k, v) in r.set.iter().chain(&r.set_string) {
        let table = if r.set.contains_key(k) {
            "set"
        } else {
            "set_string"
        };
        let kat = path(&["releases", &r.name, table, k]);
        super::check_refs(p, cx, kat.clone(), v);
        check_set(cx, &kat, k, v);
        let raw_value = raw
            .get("releases")
            .and_then(|x| x.get(&r.name))
            .and_then(|x| x.get(table))
            .and_then(|x| x.get(k))
            .and_then(toml::Value::as_str)
            .unwrap_or("");
        for var in interp::var_names(raw_value) {
            if secret_vars.contains(&var) {
                cx.err(
                    &kat,
                    format!("`${{{var}}}` feeds a Secret; in `{table}` it would reach helm's argv, the plan and process listings"),
                    Some(format!("read it in the chart from the Secret slipway creates (e.g. `secret.existingSecret`), not through `{table}`")),
                );
            }
        }
    }
}

/// Its Secrets: one per name and namespace, valid names and keys, their sources.
fn secrets<'a>(
    p: &Pipeline,
    cx: &mut Cx,
    r: &'a Release,
    ns: &str,
    seen_secret: &mut BTreeMap<(String, String), &'a str>,
) {
    let exists = |rel: &Path| p.path(rel).exists();
    let is_file = |rel: &Path| p.path(rel).is_file();
    for (name, s) in &r.secrets {
        let sat = path(&["releases", &r.name, "secrets", name]);
        if let Some(prev) = seen_secret.insert((ns.to_string(), name.clone()), &r.name) {
            cx.err(
                &sat,
                format!("releases `{prev}` and `{}` both create Secret {name:?} in namespace {ns:?}: one would overwrite the other", r.name),
                Some("declare the Secret under one release".into()),
            );
        }
        if !is_dns_subdomain(name) {
            cx.err(
                &sat,
                format!("secret name {name:?} is not a valid Kubernetes name"),
                None,
            );
        }
        for (key, var) in &s.from_env {
            let key_ok = !key.is_empty()
                && key.len() <= 253
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c));
            if !key_ok {
                cx.err(
                    &[sat.clone(), path(&["from_env", key])].concat(),
                    format!(
                        "secret key {key:?} is not a valid Secret key (letters, digits, -, _, .)"
                    ),
                    None,
                );
            }
            if !crate::model::names::is_env_name(var) {
                cx.err(
                    &[sat.clone(), path(&["from_env", key])].concat(),
                    format!("{var:?} is not an environment variable name (letters, digits, _; not starting with a digit)"),
                    None,
                );
            }
        }
        if s.from_env.is_empty() && s.env_file.is_none() {
            cx.err(
                &sat,
                format!("secret `{name}` has neither `from_env` nor `env_file`"),
                None,
            );
        }
        if let Some(f) = &s.env_file {
            if exists(f) && !is_file(f) {
                cx.err(
                    &sat,
                    format!(
                        "secret `{name}`: env_file {} is a directory, not a file",
                        f.display()
                    ),
                    None,
                );
            } else if let Err(e) = interp::read_env_file(&p.path(f)) {
                cx.err(&sat, format!("secret `{name}`: {e}"), None);
            } else if let Ok(keys) = interp::read_env_file(&p.path(f)) {
                for k in keys.keys().filter(|k| s.from_env.contains_key(*k)) {
                    cx.err(
                        &[sat.clone(), path(&["from_env", k])].concat(),
                        format!(
                            "secret `{name}`: key {k:?} comes from both from_env and env_file {}",
                            f.display()
                        ),
                        Some("keep one source per key".into()),
                    );
                }
            }
            if !exists(f) {
                cx.err(
                    &sat,
                    format!("secret `{name}`: env_file {} does not exist", f.display()),
                    None,
                );
            }
        }
    }
}

/// `workloads`: KIND/NAME of a kind the rollout tracks, with a valid name.
fn workloads(cx: &mut Cx, r: &Release) {
    for (i, w) in r.workloads.iter().flatten().enumerate() {
        let wat = path(&["releases", &r.name, "workloads", &i.to_string()]);
        match w.split_once('/') {
            Some((k, n))
                if ["deployment", "statefulset", "daemonset"]
                    .contains(&k.to_ascii_lowercase().as_str())
                    && !n.is_empty() =>
            {
                // Kubernetes names these objects by RFC 1123 subdomain rules; any
                // other name could never be found, so the rollout would wait for
                // nothing.
                if !is_dns_subdomain(n) {
                    cx.err(
                        &wat,
                        format!("workload {w:?}: {n:?} is not a name Kubernetes accepts (lowercase letters, digits, `-` and `.`, at most 253)"),
                        None,
                    );
                }
            }
            _ => cx.err(
                &wat,
                format!(
                    "workload {w:?} must be deployment/NAME, statefulset/NAME or daemonset/NAME"
                ),
                None,
            ),
        }
    }
}

/// `needs`: every entry a release of this pipeline, not itself, and no cycle (named
/// in full, at the release where it closes).
fn needs(p: &Pipeline, cx: &mut Cx) {
    let names: Vec<&str> = p.releases.iter().map(|r| r.name.as_str()).collect();
    for r in &p.releases {
        let at = path(&["releases", &r.name, "needs"]);
        for d in &r.needs {
            if *d == r.name {
                cx.err(&at, format!("release `{}` needs itself", r.name), None);
            } else if p.release(d).is_none() {
                let hint = match crate::config::nearest(d, &names) {
                    Some(n) => format!("did you mean `{n}`? releases: {}", names.join(", ")),
                    None => format!("releases: {}", names.join(", ")),
                };
                cx.err(
                    &at,
                    format!(
                        "release `{}` needs `{d}`, which is not a release of this pipeline",
                        r.name
                    ),
                    Some(hint),
                );
            }
        }
    }
    // A cycle: walk `needs` depth-first; a release met again on the current path
    // closes one.
    fn visit<'a>(
        p: &'a Pipeline,
        name: &'a str,
        stack: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
        found: &mut Vec<Vec<&'a str>>,
    ) {
        if let Some(i) = stack.iter().position(|n| *n == name) {
            let mut cycle = stack[i..].to_vec();
            cycle.push(name);
            found.push(cycle);
            return;
        }
        if !done.insert(name) {
            return;
        }
        let Some(r) = p.release(name) else { return };
        stack.push(name);
        for d in &r.needs {
            if d != name {
                visit(p, d, stack, done, found);
            }
        }
        stack.pop();
    }
    let mut done = BTreeSet::new();
    let mut found = vec![];
    for r in &p.releases {
        visit(p, &r.name, &mut vec![], &mut done, &mut found);
    }
    for cycle in found {
        let last = cycle[cycle.len() - 2];
        cx.err(
            &path(&["releases", last, "needs"]),
            format!(
                "releases need each other in a cycle: {}",
                cycle.join(" -> ")
            ),
            Some("remove one of these `needs`".into()),
        );
    }
}
