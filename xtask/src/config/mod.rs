//! pipeline.toml → a validated [`Pipeline`].
//!
//! Loading is: parse (every syntax error, with spans) → pick the profile → merge it
//! over the base → interpolate `${VAR}` → deserialize each section strictly →
//! validate meaning (files exist, references resolve, names are unique). Every error
//! found along the way is collected; nothing runs unless the list is empty.

pub mod interp;
mod types;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue};
use toml::{Spanned, Table, Value};

pub use interp::Vars;
pub use types::*;

const TOP_LEVEL: &[&str] = &[
    "project", "cluster", "registry", "images", "releases", "smoke", "timeouts", "profiles",
];

/// The validated pipeline for one profile.
#[derive(Clone, Debug)]
pub struct Pipeline {
    /// Directory of the pipeline file; relative paths resolve against it.
    pub root: PathBuf,
    pub profile: String,
    pub project: Project,
    pub cluster: Cluster,
    pub registry: Option<Registry>,
    pub images: Vec<Image>,
    pub releases: Vec<Release>,
    pub smoke: Vec<Check>,
    pub timeouts: Timeouts,
    pub vars: Vars,
}

impl Pipeline {
    /// A path from the pipeline file, resolved against its directory.
    pub fn path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.root.join(p)
        }
    }

    pub fn release(&self, name: &str) -> Option<&Release> {
        self.releases.iter().find(|r| r.name == name)
    }

    pub fn namespace_of(&self, r: &Release) -> String {
        r.namespace
            .clone()
            .unwrap_or_else(|| self.project.namespace.clone())
    }

    /// Namespace a smoke check runs in.
    pub fn check_namespace(&self, c: &Check) -> String {
        if let Some(ns) = &c.namespace {
            return ns.clone();
        }
        let rel = match &c.release {
            Some(r) => self.release(r),
            None => self.releases.first(),
        };
        rel.map(|r| self.namespace_of(r))
            .unwrap_or_else(|| self.project.namespace.clone())
    }
}

/// Where a diagnostic points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub col: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub location: Option<Location>,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(l) = &self.location {
            write!(f, "{}:{}:{}: ", l.file, l.line, l.col)?;
        }
        write!(f, "error: {}", self.message)?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

/// Every problem found in a pipeline file.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<Diagnostic>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "{d}")?;
        }
        let n = self.0.len();
        write!(
            f,
            "{n} error{} in the pipeline file; nothing was run",
            if n == 1 { "" } else { "s" }
        )
    }
}

impl std::error::Error for ConfigErrors {}

pub struct LoadOptions {
    pub file: PathBuf,
    pub profile: Option<String>,
    /// Variables for interpolation; `None` reads the process env and the env file.
    pub vars: Option<Vars>,
}

/// Load, merge, interpolate and validate a pipeline file.
pub fn load(opts: &LoadOptions) -> Result<Pipeline, ConfigErrors> {
    let shown = opts.file.display().to_string();
    let text = std::fs::read_to_string(&opts.file).map_err(|e| {
        ConfigErrors(vec![Diagnostic {
            location: None,
            message: format!("cannot read pipeline file {shown}: {e}"),
            hint: Some("run from the directory that holds pipeline.toml, or pass --config PATH (env SLIPWAY_CONFIG)".into()),
        }])
    })?;
    let root = opts
        .file
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let mut cx = Cx {
        file: shown,
        text: &text,
        doc: None,
        profile_path: vec![],
        uninterpolated: BTreeSet::new(),
        errors: vec![],
    };

    let (doc, syntax) = DeTable::parse_recoverable(&text);
    if !syntax.is_empty() {
        for e in syntax {
            let loc = e.span().map(|s| cx.loc_of(s.start));
            cx.errors.push(Diagnostic {
                location: loc,
                message: format!("invalid TOML: {}", e.message().trim()),
                hint: None,
            });
        }
        return Err(ConfigErrors(cx.errors));
    }
    cx.doc = Some(doc);
    let mut base: Table = match toml::from_str(&text) {
        Ok(t) => t,
        Err(e) => {
            cx.err(&[], format!("invalid TOML: {}", e.message()), None);
            return Err(ConfigErrors(cx.errors));
        }
    };

    for key in base.keys() {
        if !TOP_LEVEL.contains(&key.as_str()) {
            cx.unknown_key(std::slice::from_ref(key), key, "the top level", TOP_LEVEL);
        }
    }

    // Profile selection and merge.
    let profiles = match base.remove("profiles") {
        None => Table::new(),
        Some(Value::Table(t)) => t,
        Some(_) => {
            cx.err(
                &path(&["profiles"]),
                "`profiles` must be a table of tables".into(),
                None,
            );
            Table::new()
        }
    };
    let default_profile = base
        .get("project")
        .and_then(|p| p.get("default_profile"))
        .and_then(Value::as_str)
        .map(String::from);
    let explicit = opts.profile.is_some();
    let profile = opts
        .profile
        .clone()
        .or(default_profile)
        .unwrap_or_else(|| "local-kind".into());
    match profiles.get(&profile) {
        Some(Value::Table(patch)) => {
            let mut patch = patch.clone();
            patch.remove("description");
            for key in patch.keys() {
                if !TOP_LEVEL.contains(&key.as_str()) || key == "profiles" || key == "project" {
                    let allowed: Vec<&str> = TOP_LEVEL
                        .iter()
                        .copied()
                        .filter(|k| *k != "profiles" && *k != "project")
                        .chain(["description"])
                        .collect();
                    cx.unknown_key(
                        &path(&["profiles", &profile, key]),
                        key,
                        &format!("[profiles.{profile}]"),
                        &allowed,
                    );
                }
            }
            merge(&mut base, patch);
            cx.profile_path = path(&["profiles", &profile]);
        }
        Some(_) => cx.err(
            &path(&["profiles", &profile]),
            format!("profile `{profile}` must be a table"),
            None,
        ),
        None if explicit || !profiles.is_empty() => {
            let names: Vec<&str> = profiles.keys().map(String::as_str).collect();
            let hint = match nearest(&profile, &names) {
                Some(n) => format!("did you mean `{n}`? defined profiles: {}", names.join(", ")),
                None if names.is_empty() => "this pipeline defines no [profiles]".into(),
                None => format!("defined profiles: {}", names.join(", ")),
            };
            cx.err(&[], format!("unknown profile `{profile}`"), Some(hint));
        }
        None => {}
    }

    // Interpolation needs the env file named in [project], before anything else.
    let env_file = base
        .get("project")
        .and_then(|p| p.get("env_file"))
        .and_then(Value::as_str)
        .unwrap_or(".env");
    let vars = match &opts.vars {
        Some(v) => v.clone(),
        None => match Vars::load(&root.join(env_file)) {
            Ok(v) => v,
            Err(e) => {
                cx.err(&path(&["project", "env_file"]), e, None);
                Vars::default()
            }
        },
    };
    let mut merged = Value::Table(base);
    interpolate_tree(&mut merged, &mut vec![], &vars, &mut cx);
    let Value::Table(merged) = merged else {
        unreachable!()
    };

    // Strict, per-section deserialization: one bad section does not hide the others.
    let project: Option<Project> = match merged.get("project") {
        Some(v) => cx.strict(v.clone(), &path(&["project"])),
        None => {
            cx.err(
                &[],
                "missing [project] table".into(),
                Some("add:\n  [project]\n  name = \"my-app\"".into()),
            );
            None
        }
    };
    let cluster: Option<Cluster> = match merged.get("cluster") {
        Some(v) => cx.strict(v.clone(), &path(&["cluster"])),
        None => Some(Cluster::default()),
    };
    let registry: Option<Option<Registry>> = match merged.get("registry") {
        Some(v) => cx.strict(v.clone(), &path(&["registry"])).map(Some),
        None => Some(None),
    };
    let timeouts: Option<Timeouts> = match merged.get("timeouts") {
        Some(v) => cx.strict(v.clone(), &path(&["timeouts"])),
        None => Some(Timeouts::default()),
    };
    let images: Vec<Image> = cx.named_section(&merged, "images", |i: &mut Image, n| i.name = n);
    let releases: Vec<Release> =
        cx.named_section(&merged, "releases", |r: &mut Release, n| r.name = n);
    let smoke: Vec<Check> = cx.named_section(&merged, "smoke", |c: &mut Check, n| c.name = n);

    // Sections that failed to deserialize were reported; validate the rest anyway
    // (with neutral stand-ins) so one run reports every problem.
    let project = project.unwrap_or_else(|| Project {
        name: "placeholder".into(),
        default_profile: default_profile_name(),
        env_file: ".env".into(),
        namespace: "default".into(),
    });
    let p = Pipeline {
        root,
        profile,
        project,
        cluster: cluster.unwrap_or_default(),
        registry: registry.flatten(),
        images,
        releases,
        smoke,
        timeouts: timeouts.unwrap_or_default(),
        vars,
    };
    validate(&p, &merged, &mut cx);
    if cx.errors.is_empty() {
        Ok(p)
    } else {
        Err(ConfigErrors(cx.errors))
    }
}

fn path(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

/// Deep-merge `patch` into `base`: tables merge key by key, anything else replaces.
fn merge(base: &mut Table, patch: Table) {
    for (k, v) in patch {
        match (base.get_mut(&k), v) {
            (Some(Value::Table(b)), Value::Table(p)) => merge(b, p),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

fn interpolate_tree(v: &mut Value, at: &mut Vec<String>, vars: &Vars, cx: &mut Cx) {
    match v {
        Value::String(s) => match interp::interpolate(s, vars) {
            Ok(new) => *s = new,
            Err(errs) => {
                for e in errs {
                    cx.err(at, e, None);
                }
                cx.uninterpolated.insert(at.clone());
            }
        },
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                at.push(i.to_string());
                interpolate_tree(item, at, vars, cx);
                at.pop();
            }
        }
        Value::Table(t) => {
            for (k, item) in t.iter_mut() {
                at.push(k.clone());
                interpolate_tree(item, at, vars, cx);
                at.pop();
            }
        }
        _ => {}
    }
}

/// The closest candidate by edit similarity, if it is close enough to be a typo.
pub fn nearest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(word, c), *c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Loading context: the source text for locations and the growing error list.
struct Cx<'t> {
    file: String,
    text: &'t str,
    doc: Option<Spanned<DeTable<'t>>>,
    /// `["profiles", NAME]` when a profile was merged: its keys are looked up first.
    profile_path: Vec<String>,
    /// Paths whose `${VAR}` could not be interpolated: their later checks would only
    /// repeat the same problem.
    uninterpolated: BTreeSet<Vec<String>>,
    errors: Vec<Diagnostic>,
}

impl Cx<'_> {
    fn loc_of(&self, offset: usize) -> Location {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Location {
            file: self.file.clone(),
            line,
            col,
        }
    }

    /// Location of the deepest key of `at` that exists in the source, preferring the
    /// selected profile's copy of the path.
    fn locate(&self, at: &[String]) -> Option<Location> {
        let doc = self.doc.as_ref()?;
        let mut candidates = vec![];
        if !self.profile_path.is_empty() {
            let mut p = self.profile_path.clone();
            p.extend_from_slice(at);
            candidates.push(p);
        }
        candidates.push(at.to_vec());
        let mut best: Option<(usize, Range<usize>)> = None;
        for c in &candidates {
            if let Some((depth, span)) = find_span(doc.get_ref(), c) {
                let deeper = best.as_ref().is_none_or(|(d, _)| depth > *d);
                // A profile match counts only if it reaches past the profile header.
                let meaningful = !c.starts_with(&self.profile_path)
                    || self.profile_path.is_empty()
                    || depth > self.profile_path.len();
                if deeper && meaningful {
                    best = Some((depth, span));
                }
            }
        }
        best.map(|(_, s)| self.loc_of(s.start))
    }

    fn err(&mut self, at: &[String], message: String, hint: Option<String>) {
        // Interpolation reports its own errors before marking the path.
        if self.uninterpolated.contains(at) {
            return;
        }
        let location = self.locate(at).or_else(|| {
            Some(Location {
                file: self.file.clone(),
                line: 1,
                col: 1,
            })
            .filter(|_| !at.is_empty())
        });
        let d = Diagnostic {
            location,
            message,
            hint,
        };
        if !self.errors.contains(&d) {
            self.errors.push(d);
        }
    }

    fn unknown_key(&mut self, at: &[String], key: &str, table: &str, allowed: &[&str]) {
        let hint = match nearest(key, allowed) {
            Some(n) => format!("did you mean `{n}`? valid keys: {}", allowed.join(", ")),
            None => format!("valid keys: {}", allowed.join(", ")),
        };
        self.err(at, format!("unknown key `{key}` in {table}"), Some(hint));
    }

    /// Deserialize `v` (found at `at`) into `T`, reporting every unknown key and
    /// every mistyped value rather than only the first.
    fn strict<T: DeserializeOwned>(&mut self, mut v: Value, at: &[String]) -> Option<T> {
        let mut failed = false;
        let mut removed: BTreeSet<Vec<String>> = BTreeSet::new();
        for _ in 0..256 {
            let e = match serde_path_to_error::deserialize::<_, T>(v.clone()) {
                Ok(t) => return (!failed).then_some(t),
                Err(e) => e,
            };
            failed = true;
            let mut rel: Vec<String> = e
                .path()
                .iter()
                .filter_map(|s| match s {
                    serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
                    serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                    _ => None,
                })
                .collect();
            let msg = e.inner().message().to_string();
            let mut full = at.to_vec();
            if let Some((field, expected)) = parse_unknown_field(&msg) {
                if rel.last() == Some(&field) {
                    rel.pop();
                }
                full.extend(rel.iter().cloned());
                let table = format!("[{}]", full.join("."));
                full.push(field.clone());
                let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
                self.unknown_key(&full, &field, &table, &expected);
                let mut parent = rel.clone();
                if !remove_at(&mut v, &mut parent, Some(&field)) {
                    return None;
                }
                continue;
            }
            if let Some(field) = parse_missing_field(&msg) {
                full.extend(rel.iter().cloned());
                let mut was = full.clone();
                was.push(field.clone());
                if !removed.contains(&was) {
                    self.err(
                        &full,
                        format!("missing key `{field}` in [{}]", full.join(".")),
                        None,
                    );
                }
                return None;
            }
            full.extend(rel.iter().cloned());
            let key = full.join(".");
            self.err(&full, format!("`{key}`: {}", clean_serde(&msg)), None);
            if rel.is_empty() || !remove_at(&mut v, &mut rel.clone(), None) {
                return None;
            }
            removed.insert(full);
        }
        None
    }

    /// A table of named tables (`[images.NAME]`), each deserialized on its own.
    fn named_section<T: DeserializeOwned>(
        &mut self,
        merged: &Table,
        section: &str,
        set_name: impl Fn(&mut T, String),
    ) -> Vec<T> {
        let Some(v) = merged.get(section) else {
            return vec![];
        };
        let Some(t) = v.as_table() else {
            self.err(
                &path(&[section]),
                format!("`{section}` must be a table of named tables, like [{section}.NAME]"),
                None,
            );
            return vec![];
        };
        let mut out = vec![];
        for (name, item) in t {
            if !item.is_table() {
                self.err(
                    &path(&[section, name]),
                    format!("`{section}.{name}` must be a table"),
                    Some(format!("write it as [{section}.{name}] with keys below it")),
                );
                continue;
            }
            if let Some(mut x) = self.strict::<T>(item.clone(), &path(&[section, name])) {
                set_name(&mut x, name.clone());
                out.push(x);
            }
        }
        out
    }
}

/// Walk the spanned document along `at`; returns how deep it got and the span of the
/// deepest key found.
fn find_span(doc: &DeTable<'_>, at: &[String]) -> Option<(usize, Range<usize>)> {
    let mut table = doc;
    let mut found: Option<(usize, Range<usize>)> = None;
    let mut depth = 0;
    let mut i = 0;
    while i < at.len() {
        let (k, v) = table
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == at[i].as_str())?;
        depth += 1;
        found = Some((depth, k.span()));
        let mut value = v;
        // Arrays: an index segment picks the element.
        while let DeValue::Array(items) = value.get_ref() {
            let Some(idx) = at.get(i + 1).and_then(|s| s.parse::<usize>().ok()) else {
                return found;
            };
            let Some(item) = items.get(idx) else {
                return found;
            };
            i += 1;
            depth += 1;
            found = Some((depth, item.span()));
            value = item;
        }
        match value.get_ref() {
            DeValue::Table(t) => table = t,
            _ => return found,
        }
        i += 1;
    }
    found
}

/// Remove `key` from the table at `parent` (or, with no key, the value at `parent`).
fn remove_at(v: &mut Value, parent: &mut Vec<String>, key: Option<&str>) -> bool {
    let last = match key {
        Some(k) => k.to_string(),
        None => match parent.pop() {
            Some(k) => k,
            None => return false,
        },
    };
    let mut cur = v;
    for seg in parent.iter() {
        cur = match cur {
            Value::Table(t) => match t.get_mut(seg) {
                Some(x) => x,
                None => return false,
            },
            Value::Array(a) => match seg.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                Some(x) => x,
                None => return false,
            },
            _ => return false,
        };
    }
    match cur {
        Value::Table(t) => t.remove(&last).is_some(),
        Value::Array(a) => match last.parse::<usize>() {
            Ok(i) if i < a.len() => {
                a.remove(i);
                true
            }
            _ => false,
        },
        _ => false,
    }
}

/// serde's wording: "unknown field `x`, expected one of `a`, `b`" / "expected `a`" /
/// "there are no fields".
fn parse_unknown_field(msg: &str) -> Option<(String, Vec<String>)> {
    let rest = msg.strip_prefix("unknown field `")?;
    let (field, tail) = rest.split_once('`')?;
    let expected = tail
        .split('`')
        .skip(1)
        .step_by(2)
        .map(String::from)
        .collect();
    Some((field.to_string(), expected))
}

fn parse_missing_field(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_string())
}

fn clean_serde(msg: &str) -> String {
    msg.replace("invalid type: ", "expected a different type: found ")
        .replace("unknown variant", "unknown value")
}

/// The `${images.NAME.FIELD}` references in a string.
pub fn image_refs(s: &str) -> Vec<(String, String)> {
    let mut out = vec![];
    let mut rest = s;
    while let Some(start) = rest.find("${images.") {
        let body = &rest[start + 2..];
        let Some(end) = body.find('}') else { break };
        let inner = &body["images.".len()..end];
        let (name, field) = inner.rsplit_once('.').unwrap_or((inner, ""));
        out.push((name.to_string(), field.to_string()));
        rest = &body[end + 1..];
    }
    out
}

pub const IMAGE_FIELDS: &[&str] = &["repository", "tag", "ref"];

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// Meaning checks on an otherwise well-typed pipeline.
fn validate(p: &Pipeline, merged: &Table, cx: &mut Cx) {
    let exists = |rel: &Path| p.path(rel).exists();
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

    let mut repos: BTreeMap<String, &str> = BTreeMap::new();
    for img in &p.images {
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
        let repo_ok = !img.repository().is_empty()
            && img
                .repository()
                .chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-/:".contains(ch));
        if !repo_ok {
            cx.err(
                &at("repository"),
                format!(
                    "repository {:?} is not a valid image name (lowercase, digits, . _ - /)",
                    img.repository()
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
        if !exists(&df) {
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
            if t.is_empty()
                || t.len() > 128
                || !t
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "._-".contains(ch))
            {
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

    let image_names: Vec<&str> = p.images.iter().map(|i| i.name.as_str()).collect();
    let check_refs = |cx: &mut Cx, at: Vec<String>, s: &str| {
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
                    format!(
                        "`${{images.{name}.{field}}}`: an image has `repository`, `tag` and `ref`"
                    ),
                    None,
                );
            }
        }
    };

    let mut seen_release: BTreeMap<(String, String), &str> = BTreeMap::new();
    for r in &p.releases {
        let at = |k: &str| path(&["releases", &r.name, k]);
        let ns = p.namespace_of(r);
        if !is_dns_label(r.release_name()) {
            cx.err(
                &at("release"),
                format!("release name {:?} must be a DNS label", r.release_name()),
                None,
            );
        }
        if !is_dns_label(&ns) {
            cx.err(
                &at("namespace"),
                format!("namespace {ns:?} is not a DNS label"),
                None,
            );
        }
        if let Some(prev) = seen_release.insert((r.release_name().to_string(), ns.clone()), &r.name)
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
        for (i, v) in r.values.iter().enumerate() {
            if !exists(v) {
                cx.err(
                    &path(&["releases", &r.name, "values", &i.to_string()]),
                    format!(
                        "release `{}`: values file {} does not exist",
                        r.name,
                        v.display()
                    ),
                    None,
                );
            }
        }
        for (k, f) in &r.set_file {
            if !exists(f) {
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
        for (k, v) in r.set.iter().chain(&r.set_string) {
            let table = if r.set.contains_key(k) {
                "set"
            } else {
                "set_string"
            };
            check_refs(cx, path(&["releases", &r.name, table, k]), v);
        }
        for (name, s) in &r.secrets {
            let sat = path(&["releases", &r.name, "secrets", name]);
            if !is_dns_subdomain(name) {
                cx.err(
                    &sat,
                    format!("secret name {name:?} is not a valid Kubernetes name"),
                    None,
                );
            }
            if s.from_env.is_empty() && s.env_file.is_none() {
                cx.err(
                    &sat,
                    format!("secret `{name}` has neither `from_env` nor `env_file`"),
                    None,
                );
            }
            if let Some(f) = &s.env_file {
                if !exists(f) {
                    cx.err(
                        &sat,
                        format!("secret `{name}`: env_file {} does not exist", f.display()),
                        None,
                    );
                }
            }
        }
        for (i, w) in r.workloads.iter().flatten().enumerate() {
            let ok = w.split_once('/').is_some_and(|(k, n)| {
                ["deployment", "statefulset", "daemonset"]
                    .contains(&k.to_ascii_lowercase().as_str())
                    && !n.is_empty()
            });
            if !ok {
                cx.err(
                    &path(&["releases", &r.name, "workloads", &i.to_string()]),
                    format!("workload {w:?} must be deployment/NAME, statefulset/NAME or daemonset/NAME"),
                    None,
                );
            }
        }
    }

    let release_names: Vec<&str> = p.releases.iter().map(|r| r.name.as_str()).collect();
    for ch in &p.smoke {
        let at = |k: &str| path(&["smoke", &ch.name, k]);
        let raw = merged
            .get("smoke")
            .and_then(|s| s.get(&ch.name))
            .and_then(Value::as_table);
        let has = |k: &str| raw.is_some_and(|t| t.contains_key(k));
        if let Some(r) = &ch.release {
            if !release_names.contains(&r.as_str()) {
                let hint = nearest(r, &release_names).map(|n| format!("did you mean `{n}`?"));
                cx.err(
                    &at("release"),
                    format!("check `{}` refers to an undefined release `{r}`", ch.name),
                    hint,
                );
            }
        } else if ch.namespace.is_none() && p.releases.len() > 1 {
            cx.err(
                &at("type"),
                format!(
                    "check `{}`: several releases exist; say which with `release` or `namespace`",
                    ch.name
                ),
                None,
            );
        }
        let (needs, foreign): (&[&str], &[&str]) = match ch.kind {
            CheckType::Http => (&["service", "port"], &["resource", "condition"]),
            CheckType::Kubectl => (
                &["resource"],
                &[
                    "service",
                    "port",
                    "method",
                    "path",
                    "body",
                    "headers",
                    "expect_status",
                    "body_contains",
                    "json",
                ],
            ),
        };
        let kind = match ch.kind {
            CheckType::Http => "http",
            CheckType::Kubectl => "kubectl",
        };
        for k in needs {
            if !has(k) {
                cx.err(
                    &at("type"),
                    format!("{kind} check `{}` needs `{k}`", ch.name),
                    None,
                );
            }
        }
        for k in foreign {
            if has(k) {
                cx.err(
                    &at(k),
                    format!("`{k}` does not apply to a {kind} check (`{}`)", ch.name),
                    None,
                );
            }
        }
        if let Some(m) = &ch.method {
            if !["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"].contains(&m.as_str()) {
                cx.err(
                    &at("method"),
                    format!("method {m:?} must be GET, POST, PUT, PATCH, DELETE or HEAD"),
                    None,
                );
            }
        }
        if let Some(pth) = &ch.path {
            if !pth.starts_with('/') {
                cx.err(&at("path"), format!("path {pth:?} must start with /"), None);
            }
            check_refs(cx, at("path"), pth);
        }
        for (k, v) in &ch.json {
            if let Some(s) = v.as_str() {
                check_refs(cx, path(&["smoke", &ch.name, "json", k]), s);
            }
        }
        if let Some(s) = &ch.body_contains {
            check_refs(cx, at("body_contains"), s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_field_message_is_parsed() {
        let (f, exp) =
            parse_unknown_field("unknown field `chartt`, expected one of `chart`, `values`")
                .unwrap();
        assert_eq!(f, "chartt");
        assert_eq!(exp, vec!["chart", "values"]);
        let (f, exp) = parse_unknown_field("unknown field `x`, there are no fields").unwrap();
        assert_eq!(f, "x");
        assert!(exp.is_empty());
    }

    #[test]
    fn merge_is_deep() {
        let mut base: Table = toml::from_str("[a]\nx = 1\ny = 2\n[b]\nz = 3").unwrap();
        let patch: Table = toml::from_str("[a]\ny = 20\n[c]\nw = 4").unwrap();
        merge(&mut base, patch);
        assert_eq!(
            toml::to_string(&base).unwrap(),
            "[a]\nx = 1\ny = 20\n\n[b]\nz = 3\n\n[c]\nw = 4\n"
        );
    }

    #[test]
    fn image_refs_are_found() {
        assert_eq!(
            image_refs("${images.api.repository}:${images.api.tag} ${images.web.ref}"),
            vec![
                ("api".into(), "repository".into()),
                ("api".into(), "tag".into()),
                ("web".into(), "ref".into())
            ]
        );
    }
}
