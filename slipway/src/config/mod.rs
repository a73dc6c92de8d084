//! pipeline.toml → a validated [`Pipeline`].
//!
//! Loading is: parse (every syntax error, with spans) → pick the profile → merge it
//! over the base → interpolate `${VAR}` → deserialize each section strictly →
//! validate meaning (files exist, references resolve, names are unique). Every error
//! found along the way is collected; nothing runs unless the list is empty.

pub mod interp;
mod select;
mod types;
mod validate;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use strum::IntoEnumIterator;
use toml::de::{DeTable, DeValue};
use toml::{Spanned, Table, Value};

use crate::checks;
use crate::model::{Error, Stage};
pub use interp::Vars;
pub use select::{select, Selection};
pub use types::*;

const TOP_LEVEL: &[&str] = &[
    "project", "cluster", "registry", "images", "releases", "smoke", "timeouts", "tools", "groups",
    "profiles",
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
    pub tools: Tools,
    pub vars: Vars,
    /// `[groups]`: a name for a list of releases (`--only NAME`).
    pub groups: BTreeMap<String, Vec<String>>,
    /// What `--only` kept, once [`select`] narrowed the pipeline.
    pub selection: Option<Selection>,
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

    /// The registry images are pushed to, when they travel through one: `[registry]`
    /// (a remote cluster), or the registry a local cluster is wired to (kind's
    /// `delivery = "registry"`).
    pub fn push_registry(&self) -> Option<String> {
        match &self.registry {
            Some(r) => Some(r.url.trim_end_matches('/').to_string()),
            None => self.cluster.provider().registry_host(&self.cluster),
        }
    }

    /// Releases in waves: each release comes after every release it `needs`, as
    /// early as it can; declared order within a wave. A cycle (which validation
    /// reports) leaves its releases in a last wave.
    pub fn release_waves(&self) -> Vec<Vec<&Release>> {
        let mut wave_of: BTreeMap<&str, usize> = BTreeMap::new();
        let mut left: Vec<&Release> = self.releases.iter().collect();
        let mut waves: Vec<Vec<&Release>> = vec![];
        while !left.is_empty() {
            let n = waves.len();
            let (ready, rest): (Vec<&Release>, Vec<&Release>) = left.iter().partition(|r| {
                r.needs.iter().all(|d| {
                    wave_of.get(d.as_str()).is_some_and(|w| *w < n) || self.release(d).is_none()
                })
            });
            if ready.is_empty() {
                waves.push(rest);
                break;
            }
            for r in &ready {
                wave_of.insert(r.name.as_str(), n);
            }
            waves.push(ready);
            left = rest;
        }
        waves
    }

    pub fn release(&self, name: &str) -> Option<&Release> {
        self.releases.iter().find(|r| r.name == name)
    }

    pub fn namespace_of(&self, r: &Release) -> String {
        r.namespace
            .clone()
            .unwrap_or_else(|| self.project.namespace.clone())
    }

    /// The values that feed a Secret, from the environment or an env file: known as
    /// secret for the whole run, whatever the command (values that are not set are
    /// left out; preflight reports them).
    pub fn secret_values(&self) -> Vec<String> {
        self.secret_sources().into_iter().map(|(_, v)| v).collect()
    }

    /// Each value that feeds a Secret with where it comes from (`secret web-secrets,
    /// key API_TOKEN ($FIXTURE_TOKEN)`), never the value in that description.
    pub fn secret_sources(&self) -> Vec<(String, String)> {
        let mut out = vec![];
        if let Some((_, var)) = self.registry.as_ref().and_then(|r| r.login()) {
            out.extend(
                self.vars
                    .get(&var)
                    .map(|v| (format!("the registry password (${var})"), v.to_string())),
            );
        }
        for r in &self.releases {
            for (name, spec) in &r.secrets {
                out.extend(spec.from_env.iter().filter_map(|(key, var)| {
                    let at = format!("release {}, secret {name}, key {key} (${var})", r.name);
                    self.vars.get(var).map(|v| (at, v.to_string()))
                }));
                if let Some(f) = &spec.env_file {
                    out.extend(
                        interp::read_env_file(&self.path(f))
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(key, v)| {
                                let at = format!(
                                    "release {}, secret {name}, key {key} (env_file {})",
                                    r.name,
                                    f.display()
                                );
                                (at, v)
                            }),
                    );
                }
            }
        }
        out
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
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub col: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
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

impl From<ConfigErrors> for Error {
    fn from(e: ConfigErrors) -> Error {
        Error::usage(e.to_string())
    }
}

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
        line_starts: std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect(),
        doc: None,
        profile_path: vec![],
        uninterpolated: BTreeSet::new(),
        errors: vec![],
        reported: Default::default(),
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

    let profile = select_profile(&mut base, opts, &mut cx);

    let vars = read_vars(&base, &root, opts, &mut cx);
    let raw = base.clone();
    let mut merged = Value::Table(base);
    interpolate_tree(&mut merged, &mut vec![], &vars, &mut cx);
    let Value::Table(merged) = merged else {
        unreachable!()
    };

    let p = decode(&merged, &mut cx, root, profile, vars);
    validate::all(&p, &raw, &mut cx);
    if cx.errors.is_empty() {
        Ok(p)
    } else {
        Err(ConfigErrors(cx.errors))
    }
}

/// The profile to use (`--profile`, else `project.default_profile`, else
/// `local-kind`), merged into `base`; `[profiles]` is taken out of it.
fn select_profile(base: &mut Table, opts: &LoadOptions, cx: &mut Cx) -> String {
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
    let named_default = !explicit && default_profile.is_some();
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
                    let allowed = profile_keys();
                    cx.unknown_key(
                        &path(&["profiles", &profile, key]),
                        key,
                        &format!("[profiles.{profile}]"),
                        &allowed,
                    );
                }
            }
            unknown_profile_releases(base, &mut patch, &profile, cx);
            merge(base, patch);
            cx.profile_path = path(&["profiles", &profile]);
        }
        Some(_) => cx.err(
            &path(&["profiles", &profile]),
            format!("profile `{profile}` must be a table"),
            None,
        ),
        None if explicit || named_default || !profiles.is_empty() => {
            let names: Vec<&str> = profiles.keys().map(String::as_str).collect();
            let hint = match nearest(&profile, &names) {
                Some(n) => format!("did you mean `{n}`? defined profiles: {}", names.join(", ")),
                None if names.is_empty() => "this pipeline defines no [profiles]".into(),
                None => format!("defined profiles: {}", names.join(", ")),
            };
            if named_default {
                cx.err(
                    &path(&["project", "default_profile"]),
                    format!("default_profile `{profile}` is not a profile of this pipeline"),
                    Some(hint),
                );
            } else {
                // At the table that lacks it (when there is one).
                cx.err(
                    &path(&["profiles"]),
                    format!("unknown profile `{profile}`"),
                    Some(hint),
                );
            }
        }
        None => {}
    }

    profile
}

/// The variables interpolation reads: given, or the process's and the env file's
/// (the one named in [project], read before anything else).
fn read_vars(base: &Table, root: &Path, opts: &LoadOptions, cx: &mut Cx) -> Vars {
    let env_file = base
        .get("project")
        .and_then(|p| p.get("env_file"))
        .and_then(Value::as_str)
        .unwrap_or(".env");
    match &opts.vars {
        Some(v) => v.clone(),
        None => match Vars::load(&root.join(env_file)) {
            Ok(v) => v,
            Err(e) => {
                cx.err(&path(&["project", "env_file"]), e, None);
                Vars::default()
            }
        },
    }
}

/// Strict, per-section deserialization: one bad section does not hide the others.
/// Sections that failed were reported; the rest is validated anyway (with neutral
/// stand-ins) so one run reports every problem.
fn decode(merged: &Table, cx: &mut Cx, root: PathBuf, profile: String, vars: Vars) -> Pipeline {
    let project: Option<Project> = match merged.get("project") {
        Some(v) => cx.strict(v.clone(), &path(&["project"])),
        None => {
            // No key to point at: the file, from its start.
            let location = Some(cx.loc_of(0));
            cx.errors.push(Diagnostic {
                location,
                message: "missing [project] table".into(),
                hint: Some("add:\n  [project]\n  name = \"my-app\"".into()),
            });
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
        Some(Value::Table(t)) => cx.timeouts(t),
        Some(v) => cx.strict(v.clone(), &path(&["timeouts"])),
        None => Some(Timeouts::default()),
    };
    let tools: Option<Tools> = match merged.get("tools") {
        Some(v) => cx.strict(v.clone(), &path(&["tools"])),
        None => Some(Tools::default_on()),
    };
    let images: Vec<Image> = cx.named_section(merged, "images", |i: &mut Image, n| i.name = n);
    let releases: Vec<Release> =
        cx.named_section(merged, "releases", |r: &mut Release, n| r.name = n);
    let smoke: Vec<Check> = cx.smoke_section(merged);
    let groups: Option<BTreeMap<String, Vec<String>>> = match merged.get("groups") {
        Some(v) => cx.strict(v.clone(), &path(&["groups"])),
        None => Some(BTreeMap::new()),
    };

    // Sections that failed to deserialize were reported; validate the rest anyway
    // (with neutral stand-ins) so one run reports every problem.
    let project = project.unwrap_or_else(|| Project {
        name: "placeholder".into(),
        default_profile: default_profile_name(),
        env_file: ".env".into(),
        namespace: "default".into(),
    });
    Pipeline {
        root,
        profile,
        project,
        cluster: cluster.unwrap_or_default(),
        registry: registry.flatten(),
        images,
        releases,
        smoke,
        timeouts: timeouts.unwrap_or_default(),
        tools: tools.unwrap_or_else(Tools::default_on),
        vars,
        groups: groups.unwrap_or_default(),
        selection: None,
    }
}

/// A profile that sets keys of a release the base does not define would make a new,
/// partial release (a typo of a release's name, most often): report it with the
/// nearest name and leave it out. A profile may add a whole release (with `chart`).
fn unknown_profile_releases(base: &Table, patch: &mut Table, profile: &str, cx: &mut Cx) {
    let Some(Value::Table(rels)) = patch.get_mut("releases") else {
        return;
    };
    let known: Vec<&str> = base
        .get("releases")
        .and_then(Value::as_table)
        .map(|t| t.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let unknown: Vec<String> = rels
        .iter()
        .filter(|(name, v)| {
            !known.contains(&name.as_str()) && v.as_table().is_none_or(|t| !t.contains_key("chart"))
        })
        .map(|(name, _)| name.clone())
        .collect();
    for name in unknown {
        let hint = match nearest(&name, &known) {
            Some(n) => format!("did you mean `{n}`? releases: {}", known.join(", ")),
            None if known.is_empty() => "the base defines no [releases]".into(),
            None => format!(
                "releases: {}; a profile adds a release only with its `chart`",
                known.join(", ")
            ),
        };
        cx.err(
            &path(&["profiles", profile, "releases", &name]),
            format!("profile `{profile}` sets release `{name}`, which the base does not define"),
            Some(hint),
        );
        rels.remove(&name);
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
        Value::String(s) => {
            bare_refs(s, at, cx);
            match interp::interpolate(s, vars) {
                Ok(new) => *s = new,
                Err(errs) => {
                    for e in errs {
                        cx.err(at, e, None);
                    }
                    cx.uninterpolated.insert(at.clone());
                }
            }
        }
        // Decoding would turn a date/time into a string silently.
        Value::Datetime(d) => {
            let message = if at.iter().any(|s| s == "json") {
                format!(
                    "`{}` is a TOML date/time ({d}), which JSON has no form of: it can never equal a JSON value",
                    at.join(".")
                )
            } else {
                format!(
                    "`{}` is a TOML date/time ({d}); no pipeline key takes one",
                    at.join(".")
                )
            };
            cx.err(
                at,
                message,
                Some(format!("quote it to mean the string: \"{d}\"")),
            );
            cx.uninterpolated.insert(at.clone());
        }
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

/// `$NAME` written where `${NAME}` was meant: slipway would pass it on as written.
/// A command's arguments are exempt: there `$NAME` is the shell's (e.g. `sh -c`).
fn bare_refs(s: &str, at: &[String], cx: &mut Cx) {
    if at.iter().any(|seg| seg == "command" || seg == "args") {
        return;
    }
    let names = interp::bare_vars(s);
    for name in &names {
        cx.err(
            at,
            format!("`${name}` is not interpolated: slipway reads `${{{name}}}` (with braces)"),
            Some(format!(
                "write `${{{name}}}` for the variable, or `$${name}` for a literal `$`"
            )),
        );
    }
    // Later checks of this value would only repeat the problem.
    if !names.is_empty() {
        cx.uninterpolated.insert(at.to_vec());
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
    /// Byte offset of each line's start: locating an error is a binary search.
    line_starts: Vec<usize>,
    doc: Option<Spanned<DeTable<'t>>>,
    /// `["profiles", NAME]` when a profile was merged: its keys are looked up first.
    profile_path: Vec<String>,
    /// Paths whose `${VAR}` could not be interpolated: their later checks would only
    /// repeat the same problem.
    uninterpolated: BTreeSet<Vec<String>>,
    errors: Vec<Diagnostic>,
    /// The errors already reported (each is reported once), for a constant-time check.
    reported: std::collections::HashSet<Diagnostic>,
}

impl Cx<'_> {
    fn loc_of(&self, offset: usize) -> Location {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts[line - 1];
        let col = self
            .text
            .get(start..offset)
            .map_or(0, |l| l.chars().count())
            + 1;
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
        // (path, how many of its segments are the profile's prefix)
        let mut candidates = vec![];
        if !self.profile_path.is_empty() {
            let mut p = self.profile_path.clone();
            p.extend_from_slice(at);
            candidates.push((p, self.profile_path.len()));
        }
        candidates.push((at.to_vec(), 0));
        let mut best: Option<(usize, Range<usize>)> = None;
        for (c, prefix) in &candidates {
            if let Some((depth, span)) = find_span(doc.get_ref(), c) {
                // How far into `at` itself it got: the profile's prefix does not count.
                let depth = depth.saturating_sub(*prefix);
                let deeper = best.as_ref().is_none_or(|(d, _)| depth > *d);
                // A profile match counts only if it reaches past the profile header.
                let meaningful = *prefix == 0 || depth > 0;
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
        if self.reported.insert(d.clone()) {
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

    /// Deserialize `v` (found at `at`) into `T`, reporting every unknown key (found
    /// by `serde_ignored`) and every mistyped value (located by
    /// `serde_path_to_error`) rather than only the first.
    fn strict<T: DeserializeOwned>(&mut self, v: Value, at: &[String]) -> Option<T> {
        let (t, unknown) = self.decode_collecting::<T>(v, at);
        for u in &unknown {
            self.unknown_at(at, u, &[]);
        }
        t.filter(|_| unknown.is_empty())
    }

    /// Decode, reporting type errors; return the unknown keys (relative paths) for
    /// the caller to report.
    fn decode_collecting<T: DeserializeOwned>(
        &mut self,
        mut v: Value,
        at: &[String],
    ) -> (Option<T>, Vec<Vec<String>>) {
        let mut failed = false;
        let mut unknown: Vec<Vec<String>> = vec![];
        let mut removed: BTreeSet<Vec<String>> = BTreeSet::new();
        // A bad value is reported, removed and the rest decoded again, so one pass
        // reports every bad value of the section (bounded).
        for _ in 0..64 {
            let mut seen = vec![];
            let result = {
                let mut record = |p: serde_ignored::Path| seen.push(segments(&p));
                let de = serde_ignored::Deserializer::new(v.clone(), &mut record);
                serde_path_to_error::deserialize::<_, T>(de)
            };
            for u in seen {
                if !unknown.contains(&u) {
                    unknown.push(u);
                }
            }
            let e = match result {
                Ok(t) => return ((!failed).then_some(t), unknown),
                Err(e) => e,
            };
            failed = true;
            let rel: Vec<String> = e
                .path()
                .iter()
                .filter_map(|s| match s {
                    serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
                    serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                    _ => None,
                })
                .collect();
            let mut full = at.to_vec();
            full.extend(rel.iter().cloned());
            let raw = e.inner().message().to_string();
            // serde's own wording for a required key ("missing field `x`").
            if let Some(field) = raw
                .strip_prefix("missing field `")
                .and_then(|r| r.split('`').next())
            {
                let mut was = full.clone();
                was.push(field.to_string());
                if !removed.contains(&was) {
                    let table = if full.is_empty() {
                        "the top level".into()
                    } else {
                        format!("[{}]", full.join("."))
                    };
                    self.err(&full, format!("missing key `{field}` in {table}"), None);
                }
                return (None, unknown);
            }
            let msg = clean_serde(&raw);
            self.err(&full, format!("`{}`: {msg}", full.join(".")), None);
            if rel.is_empty() || !remove_at(&mut v, &mut rel.clone(), None) {
                return (None, unknown);
            }
            removed.insert(full);
        }
        (None, unknown)
    }

    /// Report an unknown key at `at` + `rel`, suggesting the keys valid there.
    fn unknown_at(&mut self, at: &[String], rel: &[String], also_valid: &[&str]) {
        let mut full = at.to_vec();
        full.extend(rel.iter().cloned());
        let Some(key) = full.last().cloned() else {
            return;
        };
        let parent = &full[..full.len() - 1];
        let mut valid: Vec<&str> = known_keys(parent).to_vec();
        valid.extend_from_slice(also_valid);
        self.unknown_key(&full, &key, &format!("[{}]", parent.join(".")), &valid);
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

impl Cx<'_> {
    /// `[timeouts]` key by key, so a bad stage name or duration is located at its
    /// key (decoded whole, a map's errors name only the table).
    fn timeouts(&mut self, t: &Table) -> Option<Timeouts> {
        let mut out = BTreeMap::new();
        let mut ok = true;
        for (k, v) in t {
            let at = path(&["timeouts", k]);
            match Stage::iter().find(|s| s.name() == k) {
                None => {
                    let stages: Vec<&str> = Stage::iter().map(Stage::name).collect();
                    self.unknown_key(&at, k, "[timeouts]", &stages);
                    ok = false;
                }
                Some(stage) => match self.strict::<Dur>(v.clone(), &at) {
                    Some(d) => {
                        out.insert(stage, d);
                    }
                    None => ok = false,
                },
            }
        }
        ok.then_some(Timeouts(out))
    }

    /// `[smoke.NAME]`: the keys every check has, then its kind's own keys. A key is
    /// unknown when neither knows it.
    fn smoke_section(&mut self, merged: &Table) -> Vec<Check> {
        let Some(t) = merged.get("smoke").and_then(Value::as_table) else {
            if merged.contains_key("smoke") {
                self.err(
                    &path(&["smoke"]),
                    "`smoke` must be a table of named tables, like [smoke.NAME]".into(),
                    None,
                );
            }
            return vec![];
        };
        let mut out = vec![];
        for (name, item) in t {
            let at = path(&["smoke", name]);
            let Some(table) = item.as_table() else {
                self.err(&at, format!("`smoke.{name}` must be a table"), None);
                continue;
            };
            let kind = match table.get("type") {
                None => "http".to_string(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => {
                    self.err(
                        &[at.clone(), path(&["type"])].concat(),
                        format!("`type` must be a string, found {}", other.type_str()),
                        None,
                    );
                    continue;
                }
            };
            let mut common_table = table.clone();
            common_table.remove("type");
            let (common, common_unknown) =
                self.decode_collecting::<CheckCommon>(Value::Table(common_table), &at);
            let mut spec_table = table.clone();
            for k in CHECK_COMMON_KEYS {
                spec_table.remove(*k);
            }
            let mut decoder = Decoder {
                cx: self,
                at: at.clone(),
                unknown: vec![],
            };
            let Some(spec) = checks::decode(&kind, Value::Table(spec_table), &mut decoder) else {
                let names: Vec<&str> = checks::KINDS.iter().map(|(n, _)| *n).collect();
                let hint = nearest(&kind, &names).map_or_else(
                    || format!("check types: {}", names.join(", ")),
                    |n| format!("did you mean `{n}`? check types: {}", names.join(", ")),
                );
                self.err(
                    &[at.clone(), path(&["type"])].concat(),
                    format!("unknown check type `{kind}`"),
                    Some(hint),
                );
                continue;
            };
            let spec_unknown = std::mem::take(&mut decoder.unknown);
            let mine = checks::fields(&kind);
            let mut bad = false;
            for u in common_unknown
                .iter()
                .filter(|u| !mine.contains(&u[0].as_str()) || u.len() > 1)
            {
                if u.len() > 1 && !spec_unknown.contains(u) {
                    continue;
                }
                bad = true;
                let key = &u[0];
                let other = checks::KINDS
                    .iter()
                    .find(|(n, fields)| *n != kind && fields().contains(&key.as_str()));
                if let (Some((other_kind, _)), 1) = (other, u.len()) {
                    self.err(
                        &[at.clone(), u.clone()].concat(),
                        format!("`{key}` does not apply to a {kind} check (`{name}`); it is a key of {other_kind} checks"),
                        None,
                    );
                } else {
                    let mut valid: Vec<&str> = CHECK_COMMON_KEYS.to_vec();
                    valid.extend_from_slice(mine);
                    let full = [at.clone(), u.clone()].concat();
                    let table = format!("[{}]", full[..full.len() - 1].join("."));
                    self.unknown_key(&full, u.last().unwrap(), &table, &valid);
                }
            }
            if let (Some(c), Some(s), false) = (common, spec, bad) {
                out.push(Check {
                    name: name.clone(),
                    release: c.release,
                    namespace: c.namespace,
                    deadline: c.deadline,
                    interval: c.interval,
                    spec: s,
                });
            }
        }
        out
    }
}

/// Decodes a check kind's keys for [`checks::decode`], collecting unknown keys.
struct Decoder<'a, 't> {
    cx: &'a mut Cx<'t>,
    at: Vec<String>,
    unknown: Vec<Vec<String>>,
}

impl checks::Decode for Decoder<'_, '_> {
    fn decode<T: DeserializeOwned>(&mut self, v: Value) -> Option<T> {
        let (t, unknown) = self.cx.decode_collecting::<T>(v, &self.at);
        self.unknown = unknown;
        t
    }
}

/// A table of pipeline.toml whose keys are a type's fields: its path (`*` for a name
/// the pipeline chooses, or an element of an array of tables) and those keys.
type Section = (&'static [&'static str], fn() -> Vec<&'static str>);

fn fields<T: DeserializeOwned>() -> Vec<&'static str> {
    crate::model::fields_of::<T>().to_vec()
}

// The `[cluster.NAME]` tables of providers with settings, named as the providers are.
const KIND: &str = crate::providers::kind::NAME;
const MINIKUBE: &str = crate::providers::minikube::NAME;

/// Every table whose keys are decided by a type (`[smoke.NAME]` is decided by its
/// check kind, `[profiles.NAME]` by [`profile_keys`]).
const SECTIONS: &[Section] = &[
    (&[], || TOP_LEVEL.to_vec()),
    (&["project"], fields::<Project>),
    (&["cluster"], fields::<Cluster>),
    (&["cluster", KIND], fields::<KindSettings>),
    (
        &["cluster", KIND, "port_mappings", "*"],
        fields::<PortMapping>,
    ),
    (&["cluster", MINIKUBE], fields::<MinikubeSettings>),
    (&["registry"], fields::<Registry>),
    (&["images", "*"], fields::<Image>),
    (&["images", "*", "pre_build"], fields::<PreBuild>),
    (&["images", "*", "sync"], fields::<SyncRule>),
    (&["images", "*", "sync", "files", "*"], fields::<SyncFile>),
    (&["releases", "*"], fields::<Release>),
    (&["releases", "*", "secrets", "*"], fields::<SecretSpec>),
    (&["timeouts"], || Stage::iter().map(Stage::name).collect()),
    (&["tools"], fields::<Tools>),
];

/// The keys valid in the table at `at` (for "did you mean"), from serde's own field
/// lists.
fn known_keys(at: &[String]) -> Vec<&'static str> {
    SECTIONS
        .iter()
        .find(|(p, _)| p.len() == at.len() && p.iter().zip(at).all(|(p, a)| *p == "*" || p == a))
        .map_or_else(Vec::new, |(_, keys)| keys())
}

/// The keys of `[profiles.NAME]`: its own `description` and the tables a profile may
/// merge over the base.
fn profile_keys() -> Vec<&'static str> {
    TOP_LEVEL
        .iter()
        .copied()
        .filter(|k| *k != "profiles" && *k != "project")
        .chain(["description"])
        .collect()
}

/// Every key pipeline.toml accepts, as a dotted path (`*` for a name the pipeline
/// chooses, or an element of an array of tables), with whether it is a table of
/// further keys. Derived from the same lists that decide what is an unknown key, so
/// the documentation can be tested against it.
pub fn accepted_keys() -> Vec<(String, bool)> {
    let is_table = |path: &[&str]| {
        SECTIONS.iter().any(|(p, _)| p.starts_with(path))
            || matches!(path, ["smoke"] | ["profiles"] | ["groups"])
            || matches!(path, ["profiles", "*", k] if TOP_LEVEL.contains(k))
    };
    let mut out = BTreeSet::new();
    let mut add = |parent: &[&str], key: &'static str| {
        let mut path = parent.to_vec();
        path.push(key);
        out.insert((path.join("."), is_table(&path)));
    };
    for (parent, keys) in SECTIONS {
        for key in keys() {
            add(parent, key);
        }
    }
    for key in CHECK_COMMON_KEYS.iter().copied().chain(
        checks::KINDS
            .iter()
            .flat_map(|(_, fields)| fields().iter().copied()),
    ) {
        add(&["smoke", "*"], key);
    }
    for key in profile_keys() {
        add(&["profiles", "*"], key);
    }
    out.into_iter().collect()
}

/// A `serde_ignored` path as segments.
fn segments(p: &serde_ignored::Path) -> Vec<String> {
    use serde_ignored::Path as P;
    let mut out = match p {
        P::Root => return vec![],
        P::Seq { parent, .. }
        | P::Map { parent, .. }
        | P::Some { parent }
        | P::NewtypeStruct { parent }
        | P::NewtypeVariant { parent } => segments(parent),
    };
    match p {
        P::Seq { index, .. } => out.push(index.to_string()),
        P::Map { key, .. } => out.push(key.clone()),
        _ => {}
    }
    out
}

/// Walk the spanned document along `at`; returns how deep it got and the span of the
/// deepest key found.
fn find_span(doc: &DeTable<'_>, at: &[String]) -> Option<(usize, Range<usize>)> {
    let mut table = doc;
    let mut found: Option<(usize, Range<usize>)> = None;
    let mut depth = 0;
    let mut i = 0;
    while i < at.len() {
        // A map lookup, not a scan: locating many errors stays linear.
        // A key that is not written (a default) is located at its table's key.
        let Some((k, v)) = table.get_key_value(at[i].as_str()) else {
            return found;
        };
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

impl Pipeline {
    /// Which releases use an image: their `set`/`set_string` values name it.
    pub fn releases_using(&self, image: &str) -> Vec<String> {
        self.releases
            .iter()
            .filter(|r| {
                r.set
                    .values()
                    .chain(r.set_string.values())
                    .any(|v| image_refs(v).iter().any(|(n, _)| n == image))
            })
            .map(|r| r.name.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
