//! What a Helm chart says about itself, read without helm: its values (and its
//! subcharts'), the values its templates put into `image:` and `imagePullPolicy:`,
//! values that name a Secret or hold a credential, values it `required`s.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

/// Every YAML document of a text, as JSON values (documents that do not parse are skipped).
pub fn yaml_docs(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .filter_map(|d| Value::deserialize(d).ok())
        .filter(|v| !v.is_null())
        .collect()
}

/// The value at a dotted path.
pub fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .filter(|p| !p.is_empty())
        .try_fold(v, |v, p| v.get(p))
}

/// A dependency of a chart on a local chart (`file://`) or one unpacked in `charts/`.
#[derive(Debug, Clone)]
pub struct Sub {
    /// The key its values live under in the parent (alias or name).
    pub key: String,
    pub chart: Chart,
}

#[derive(Debug, Clone)]
pub struct Chart {
    /// Relative to the repository root.
    pub dir: PathBuf,
    pub name: String,
    pub values: Value,
    /// Every template and helper, concatenated.
    pub templates: String,
    pub subs: Vec<Sub>,
    /// Whether Chart.yaml declares dependencies (helm dependency build runs first).
    pub has_dependencies: bool,
    /// `values.*.yaml` / `values-*.yaml` next to values.yaml: (profile name, path).
    pub extra_values: Vec<(String, PathBuf)>,
}

fn read_templates(dir: &Path) -> String {
    let mut out = String::new();
    let mut stack = vec![dir.join("templates")];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                // helm test hooks are not what the release runs
                if p.file_name().is_some_and(|n| n != "tests") {
                    stack.push(p);
                }
            } else if let Ok(t) = std::fs::read_to_string(&p) {
                out.push_str(&t);
                out.push('\n');
            }
        }
    }
    out
}

impl Chart {
    /// Read the chart at `root/dir`.
    pub fn read(root: &Path, dir: &Path) -> Option<Chart> {
        Chart::read_depth(root, dir, 0)
    }

    fn read_depth(root: &Path, dir: &Path, depth: usize) -> Option<Chart> {
        let abs = root.join(dir);
        let meta = yaml_docs(&std::fs::read_to_string(abs.join("Chart.yaml")).ok()?)
            .into_iter()
            .next()?;
        let name = meta.get("name")?.as_str()?.to_string();
        let values = std::fs::read_to_string(abs.join("values.yaml"))
            .ok()
            .and_then(|t| yaml_docs(&t).into_iter().next())
            .unwrap_or(Value::Object(Default::default()));
        let mut subs = vec![];
        let deps = meta
            .get("dependencies")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut seen = BTreeSet::new();
        if depth < 4 {
            for d in &deps {
                let Some(dname) = d.get("name").and_then(Value::as_str) else {
                    continue;
                };
                let key = d
                    .get("alias")
                    .and_then(Value::as_str)
                    .unwrap_or(dname)
                    .to_string();
                let repo = d.get("repository").and_then(Value::as_str).unwrap_or("");
                let sub_dir = if let Some(p) = repo.strip_prefix("file://") {
                    Some(normalize(&dir.join(p)))
                } else if abs.join("charts").join(dname).is_dir() {
                    Some(dir.join("charts").join(dname))
                } else {
                    None
                };
                if let Some(sd) = sub_dir {
                    if let Some(c) = Chart::read_depth(root, &sd, depth + 1) {
                        seen.insert(c.name.clone());
                        subs.push(Sub { key, chart: c });
                    }
                }
            }
            // Subcharts unpacked in charts/ without a dependency entry.
            if let Ok(rd) = std::fs::read_dir(abs.join("charts")) {
                let mut dirs: Vec<PathBuf> = rd
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.join("Chart.yaml").is_file())
                    .collect();
                dirs.sort();
                for p in dirs {
                    let rel = dir.join("charts").join(p.file_name()?);
                    if let Some(c) = Chart::read_depth(root, &rel, depth + 1) {
                        if seen.insert(c.name.clone()) {
                            subs.push(Sub {
                                key: c.name.clone(),
                                chart: c,
                            });
                        }
                    }
                }
            }
        }
        let mut extra_values = vec![];
        if let Ok(rd) = std::fs::read_dir(&abs) {
            let mut names: Vec<String> = rd
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect();
            names.sort();
            for n in names {
                let stem = n
                    .strip_suffix(".yaml")
                    .or_else(|| n.strip_suffix(".yml"))
                    .and_then(|s| s.strip_prefix("values.").or(s.strip_prefix("values-")));
                if let Some(s) = stem {
                    let profile = super::draft::label(s);
                    if !profile.is_empty() && s != "schema" {
                        extra_values.push((profile, dir.join(&n)));
                    }
                }
            }
        }
        Some(Chart {
            dir: dir.to_path_buf(),
            name,
            values,
            templates: read_templates(&abs),
            subs,
            has_dependencies: !deps.is_empty(),
            extra_values,
        })
    }
}

/// `a/b/../c` -> `a/c` (lexically; paths stay relative).
pub fn normalize(p: &Path) -> PathBuf {
    let mut out: Vec<std::path::Component> = vec![];
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir
                if out
                    .last()
                    .is_some_and(|l| matches!(l, std::path::Component::Normal(_))) =>
            {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.iter().collect()
}

/// `.Values.a.b` references in a piece of template text.
pub fn value_refs(text: &str) -> Vec<String> {
    let mut out = vec![];
    let mut rest = text;
    while let Some(i) = rest.find(".Values.") {
        let after = &rest[i + ".Values.".len()..];
        let path: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
            .collect();
        let path = path.trim_end_matches('.').to_string();
        if !path.is_empty() && !out.contains(&path) {
            out.push(path);
        }
        rest = after;
    }
    out
}

/// The body of `{{ define "NAME" }}` … `{{ end }}` in the templates, if any.
fn define<'a>(templates: &'a str, name: &str) -> Option<&'a str> {
    let needle = format!("define \"{name}\"");
    let start = templates.find(&needle)?;
    let body = &templates[start..];
    let end = body.find("{{- end").or_else(|| body.find("{{ end"))?;
    Some(&body[..end])
}

/// Template lines `key:` (e.g. `image:`), with helper includes expanded once.
fn lines_for(templates: &str, field: &str) -> Vec<String> {
    let mut out = vec![];
    for l in templates.lines() {
        let t = l.trim_start().trim_start_matches("- ").trim_start();
        let Some(v) = t.strip_prefix(field) else {
            continue;
        };
        let mut text = v.to_string();
        // include "helper" …: the helper's own references count
        let mut rest = v;
        while let Some(i) = rest.find("include \"") {
            let after = &rest[i + "include \"".len()..];
            if let Some(name) = after.split('"').next() {
                if let Some(body) = define(templates, name) {
                    text.push(' ');
                    text.push_str(body);
                }
            }
            rest = after;
        }
        out.push(text);
    }
    out
}

/// Where a chart takes an image from.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageKeys {
    /// repository and tag apart (`image.repository` + `image.tag`).
    Split {
        repository: String,
        tag: Option<String>,
        registry: Option<String>,
    },
    /// one value holds the whole reference (`image: nginx:1.27`).
    Whole(String),
}

#[derive(Debug, Clone)]
pub struct Slot {
    /// Values prefix for a subchart (`api.`), empty for the chart itself.
    pub prefix: String,
    /// The chart (or subchart) it belongs to.
    pub owner: String,
    pub keys: ImageKeys,
    pub pull_policy: Option<String>,
    /// The chart's default, for messages.
    pub default: String,
    /// How it was found.
    pub found: &'static str,
}

impl Slot {
    /// The path that identifies the slot (its repository or whole key).
    pub fn path(&self) -> String {
        match &self.keys {
            ImageKeys::Split { repository, .. } => format!("{}{repository}", self.prefix),
            ImageKeys::Whole(p) => format!("{}{p}", self.prefix),
        }
    }
}

fn is_tagish(s: &str) -> bool {
    let s = s.to_ascii_lowercase();
    s == "tag" || s.ends_with("tag") || s == "version" || s.ends_with("version")
}

fn is_registryish(s: &str) -> bool {
    let s = s.to_ascii_lowercase();
    s == "registry" || s.ends_with("registry") || s == "host"
}

fn last(path: &str) -> &str {
    path.rsplit('.').next().unwrap_or(path)
}

fn parent(path: &str) -> &str {
    path.rsplit_once('.').map_or("", |(p, _)| p)
}

fn join(p: &str, k: &str) -> String {
    if p.is_empty() {
        k.into()
    } else {
        format!("{p}.{k}")
    }
}

/// An image mapping's keys (`repository`/`repo`/`name`, `tag`, `registry`, `pullPolicy`).
fn split_of(values: &Value, path: &str) -> Option<(ImageKeys, Option<String>)> {
    let m = at(values, path)?.as_object()?;
    let find = |names: &[&str]| {
        names
            .iter()
            .find(|n| m.contains_key(**n))
            .map(|n| join(path, n))
    };
    let repository = find(&["repository", "repo", "name"])?;
    Some((
        ImageKeys::Split {
            repository,
            tag: find(&["tag", "version"]),
            registry: find(&["registry"]),
        },
        find(&["pullPolicy", "imagePullPolicy"]),
    ))
}

fn show(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    }
}

/// The image slots of a chart's own templates (or, when they name none, of its values).
fn own_slots(c: &Chart, prefix: &str) -> Vec<Slot> {
    let mut slots: Vec<Slot> = vec![];
    let policies: Vec<String> = lines_for(&c.templates, "imagePullPolicy:")
        .iter()
        .flat_map(|l| value_refs(l))
        .filter(|p| at(&c.values, p).is_some())
        .collect();
    let policy_near = |base: &str| -> Option<String> {
        policies
            .iter()
            .find(|p| parent(p) == base || (base.is_empty() && !p.contains('.')))
            .cloned()
    };
    for line in lines_for(&c.templates, "image:") {
        let refs: Vec<String> = value_refs(&line)
            .into_iter()
            .filter(|r| !r.starts_with("global"))
            .filter(|r| at(&c.values, r).is_some())
            .collect();
        let mut found: Option<(ImageKeys, Option<String>)> = None;
        for r in &refs {
            if let Some(s) = split_of(&c.values, r) {
                found = Some(s);
                break;
            }
        }
        if found.is_none() && !refs.is_empty() {
            let tag = refs.iter().find(|r| is_tagish(last(r))).cloned();
            let registry = refs.iter().find(|r| is_registryish(last(r))).cloned();
            let repo = refs
                .iter()
                .find(|r| Some(*r) != tag.as_ref() && Some(*r) != registry.as_ref())
                .cloned();
            if let Some(repo) = repo {
                let keys = if tag.is_none() {
                    ImageKeys::Whole(repo.clone())
                } else {
                    ImageKeys::Split {
                        repository: repo.clone(),
                        tag,
                        registry,
                    }
                };
                let pp = policy_near(parent(&repo));
                found = Some((keys, pp));
            }
        }
        if let Some((keys, pp)) = found {
            let pp = pp.or_else(|| {
                let base = match &keys {
                    ImageKeys::Split { repository, .. } => parent(repository).to_string(),
                    ImageKeys::Whole(p) => parent(p).to_string(),
                };
                policy_near(&base).or_else(|| (policies.len() == 1).then(|| policies[0].clone()))
            });
            let slot = make_slot(c, prefix, keys, pp, "the templates' image:");
            if !slots.iter().any(|s| s.path() == slot.path()) {
                slots.push(slot);
            }
        }
    }
    if slots.is_empty() {
        // No template names one: mappings called *image* with a repository.
        let mut stack = vec![(String::new(), &c.values)];
        while let Some((path, v)) = stack.pop() {
            let Some(m) = v.as_object() else { continue };
            for (k, child) in m {
                let p = join(&path, k);
                if k.to_ascii_lowercase().contains("image") {
                    if let Some((keys, pp)) = split_of(&c.values, &p) {
                        slots.push(make_slot(c, prefix, keys, pp, "values.yaml"));
                        continue;
                    }
                }
                stack.push((p, child));
            }
        }
        slots.sort_by_key(|s| s.path());
    }
    slots
}

fn make_slot(
    c: &Chart,
    prefix: &str,
    keys: ImageKeys,
    pull_policy: Option<String>,
    found: &'static str,
) -> Slot {
    let default = match &keys {
        ImageKeys::Split {
            repository, tag, ..
        } => {
            let t = show(tag.as_deref().and_then(|t| at(&c.values, t)));
            let r = show(at(&c.values, repository));
            if t.is_empty() {
                r
            } else {
                format!("{r}:{t}")
            }
        }
        ImageKeys::Whole(p) => show(at(&c.values, p)),
    };
    let pre = |p: String| format!("{prefix}{p}");
    Slot {
        prefix: prefix.into(),
        owner: c.name.clone(),
        keys,
        pull_policy: pull_policy.map(pre),
        default,
        found,
    }
}

/// Image slots of a chart and its subcharts (with their values prefixes).
pub fn image_slots(c: &Chart) -> Vec<Slot> {
    let mut out = own_slots(c, "");
    for s in &c.subs {
        for mut slot in image_slots(&s.chart) {
            slot.prefix = format!("{}.{}", s.key, slot.prefix);
            slot.pull_policy = slot.pull_policy.map(|p| format!("{}.{p}", s.key));
            out.push(slot);
        }
    }
    out
}

/// A value that names a Secret the chart reads instead of making one.
#[derive(Debug, Clone)]
pub struct SecretRef {
    /// Full values path (with subchart prefix).
    pub path: String,
    pub default: String,
    /// Sibling values that name keys inside it (`existingSecretKey: API_TOKEN`).
    pub key_names: Vec<String>,
    /// Sibling credential values it replaces.
    pub credentials: Vec<String>,
}

/// Credential-looking values (`*_KEY`, `*TOKEN*`, `password`, `apiKey`) that are strings.
pub fn is_credential(k: &str) -> bool {
    let l = k.to_ascii_lowercase();
    !l.contains("existingsecret")
        && (l.contains("token")
            || l.contains("password")
            || l.contains("passwd")
            || l.ends_with("_key")
            || l == "apikey"
            || l == "secretkey"
            || l.ends_with("accesskey")
            || l == "secret")
}

fn is_secret_name(k: &str) -> bool {
    let l = k.to_ascii_lowercase();
    l.starts_with("existingsecret") && !l.ends_with("key") && !l.ends_with("keys")
}

/// Leaf string values, by path.
fn leaves(v: &Value, path: &str, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                leaves(c, &join(path, k), out);
            }
        }
        v => out.push((path.to_string(), v.clone())),
    }
}

/// Secrets and credentials of a chart and its subcharts.
pub fn secrets(c: &Chart, prefix: &str) -> (Vec<SecretRef>, Vec<String>) {
    let mut all = vec![];
    leaves(&c.values, "", &mut all);
    let mut refs: Vec<SecretRef> = vec![];
    for (p, v) in &all {
        if !is_secret_name(last(p)) || !(v.is_string() || v.is_null()) {
            continue;
        }
        let base = parent(p);
        let siblings: Vec<&(String, Value)> =
            all.iter().filter(|(q, _)| parent(q) == base).collect();
        let key_names = siblings
            .iter()
            .filter(|(q, v)| {
                let l = last(q).to_ascii_lowercase();
                q != p && l.ends_with("key") && v.as_str().is_some_and(|s| !s.is_empty())
            })
            .filter_map(|(_, v)| v.as_str().map(String::from))
            .collect();
        let credentials = all
            .iter()
            .filter(|(q, v)| {
                (base.is_empty() || q.starts_with(&format!("{base}.")))
                    && is_credential(last(q))
                    && (v.is_string() || v.is_null())
                    && !last(q).to_ascii_lowercase().ends_with("key")
            })
            .map(|(q, _)| format!("{prefix}{q}"))
            .collect();
        refs.push(SecretRef {
            path: format!("{prefix}{p}"),
            default: show(Some(v)),
            key_names,
            credentials,
        });
    }
    // Everything under a mapping that names an existing Secret is that Secret's
    // business: the credentials it replaces and the names of its keys.
    let bases: Vec<String> = refs
        .iter()
        .map(|r| parent(&r.path[prefix.len()..]).to_string())
        .collect();
    let covered: BTreeSet<String> = all
        .iter()
        .map(|(q, _)| q)
        .filter(|q| {
            bases
                .iter()
                .any(|b| b.is_empty() || q.starts_with(&format!("{b}.")))
        })
        .map(|q| format!("{prefix}{q}"))
        .collect();
    let mut loose: Vec<String> = all
        .iter()
        .filter(|(q, v)| is_credential(last(q)) && (v.is_string() || v.is_null()))
        .map(|(q, _)| format!("{prefix}{q}"))
        .filter(|q| !covered.contains(q))
        .collect();
    for s in &c.subs {
        let (r, l) = secrets(&s.chart, &format!("{prefix}{}.", s.key));
        refs.extend(r);
        loose.extend(l);
    }
    loose.sort();
    loose.dedup();
    (refs, loose)
}

/// Values the templates `required` that have no default: (path, message).
pub fn required(c: &Chart, prefix: &str) -> Vec<String> {
    let mut out = vec![];
    let mut rest = c.templates.as_str();
    while let Some(i) = rest.find("required ") {
        let after = &rest[i + "required ".len()..];
        let close = after.find("}}").unwrap_or(after.len());
        for r in value_refs(&after[..close]) {
            let empty = match at(&c.values, &r) {
                None | Some(Value::Null) => true,
                Some(Value::String(s)) => s.is_empty(),
                _ => false,
            };
            let full = format!("{prefix}{r}");
            if empty && !out.contains(&full) {
                out.push(full);
            }
        }
        rest = after;
    }
    for s in &c.subs {
        out.extend(required(&s.chart, &format!("{prefix}{}.", s.key)));
    }
    out
}

/// Without helm: the Service port and the probe path values.yaml and the templates
/// suggest.
pub fn guess_service(c: &Chart) -> Option<(u16, Option<String>)> {
    let port = at(&c.values, "service.port")
        .and_then(Value::as_u64)
        .or_else(|| {
            at(&c.values, "service.ports")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .and_then(|p| p.get("port"))
                .and_then(Value::as_u64)
        })?;
    let lines: Vec<&str> = c.templates.lines().collect();
    let mut path = None;
    for (i, l) in lines.iter().enumerate() {
        if !l.contains("httpGet") {
            continue;
        }
        let window = lines[i..(i + 4).min(lines.len())].join(" ");
        let Some(at_path) = window.find("path:") else {
            continue;
        };
        let v = window[at_path + "path:".len()..].trim_start();
        let v = if v.starts_with("{{") {
            &v[..v.find("}}").map_or(v.len(), |e| e + 2)]
        } else {
            v.split(|c: char| c == ',' || c == '}' || c.is_whitespace())
                .next()
                .unwrap_or("")
        };
        let v = v.trim_matches('"').trim_matches('\'');
        if v.starts_with('/') {
            path = Some(v.to_string());
        } else if let Some(r) = value_refs(v).first() {
            path = at(&c.values, r).and_then(Value::as_str).map(String::from);
        }
        if path.is_some() {
            break;
        }
    }
    if path.is_none() {
        // probes given whole in values.yaml
        for k in ["readinessProbe", "livenessProbe"] {
            if let Some(p) = at(&c.values, &format!("{k}.httpGet.path")).and_then(Value::as_str) {
                path = Some(p.to_string());
                break;
            }
        }
    }
    Some((u16::try_from(port).ok()?, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_and_keys() {
        assert_eq!(
            value_refs("\"{{ .Values.app.img.repo }}:{{ .Values.app.img.version | default .Chart.AppVersion }}\""),
            vec!["app.img.repo", "app.img.version"]
        );
        assert!(is_credential("API_KEY"));
        assert!(is_credential("adminPassword"));
        assert!(is_credential("githubToken"));
        assert!(!is_credential("existingSecret"));
        assert!(!is_credential("tokenKey") || is_credential("tokenKey"));
        assert!(is_secret_name("existingSecret"));
        assert!(!is_secret_name("existingSecretKey"));
        assert_eq!(
            normalize(Path::new("charts/umbrella/../api")),
            PathBuf::from("charts/api")
        );
    }
}
