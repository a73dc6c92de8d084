//! What `init` decided, as data, and its one rendering: a commented pipeline.toml and
//! the `.env.example` for the variables it references.

use std::fmt::Write as _;

/// A `pipeline.toml` in the making.
#[derive(Debug, Default, Clone)]
pub struct Draft {
    pub project: String,
    pub namespace: String,
    /// `kind` or `minikube`.
    pub provider: String,
    pub cluster_comments: Vec<String>,
    pub images: Vec<Image>,
    pub releases: Vec<Release>,
    pub smoke: Vec<Smoke>,
    pub profiles: Vec<Profile>,
    /// Variables the file references, with what they are for (`.env.example`).
    pub vars: Vec<(String, String)>,
    /// What was decided and why, for the user (printed, not written).
    pub decisions: Vec<String>,
    /// What could not be mapped (with `--from`), with the reason.
    pub unmapped: Vec<String>,
}

#[derive(Debug, Default, Clone)]
pub struct Image {
    pub name: String,
    pub comments: Vec<String>,
    pub repository: Option<String>,
    pub context: String,
    pub dockerfile: Option<String>,
    pub target: Option<String>,
    /// Commented-out lines offered instead of a decision.
    pub choices: Vec<String>,
    pub build_args: Vec<(String, String)>,
    pub inputs: Vec<String>,
    pub pre_build: Option<Vec<String>>,
}

/// One `key = value` line (value already TOML), with a comment above it, or
/// commented out entirely when `active` is false.
#[derive(Debug, Clone)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub comment: Option<String>,
    pub active: bool,
}

impl Entry {
    pub fn new(key: &str, value: &str, comment: Option<String>) -> Entry {
        Entry {
            key: key.into(),
            value: quote(value),
            comment,
            active: true,
        }
    }

    pub fn commented(key: &str, value: &str, comment: Option<String>) -> Entry {
        Entry {
            active: false,
            ..Entry::new(key, value, comment)
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct Release {
    pub name: String,
    pub comments: Vec<String>,
    pub chart: String,
    pub namespace: Option<String>,
    pub values: Vec<String>,
    pub timeout: Option<String>,
    pub wait: bool,
    pub needs: Vec<String>,
    /// Lines offered in the release table, commented out.
    pub choices: Vec<String>,
    pub set: Vec<Entry>,
    pub set_string: Vec<Entry>,
    pub secrets: Vec<Secret>,
}

#[derive(Debug, Default, Clone)]
pub struct Secret {
    pub name: String,
    pub comment: Option<String>,
    /// Secret key -> variable.
    pub keys: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub enum Check {
    Http {
        service: String,
        port: u16,
        path: String,
    },
    Kubectl {
        resource: String,
        condition: Option<String>,
    },
}

#[derive(Debug, Clone)]
pub struct Smoke {
    pub name: String,
    pub comments: Vec<String>,
    pub release: String,
    pub check: Check,
}

#[derive(Debug, Default, Clone)]
pub struct Profile {
    pub name: String,
    pub description: String,
    pub comments: Vec<String>,
    /// Dotted key -> TOML value.
    pub lines: Vec<(String, String)>,
}

/// A TOML basic string.
pub fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A TOML key: bare when it can be, quoted otherwise.
pub fn key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        quote(k)
    }
}

/// A TOML array of strings.
pub fn array(items: &[String]) -> String {
    let v: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", v.join(", "))
}

/// Lowercase letters, digits and `-`: a DNS label made of `s` (empty when nothing is left).
pub fn label(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let mut out = out.trim_matches('-').to_string();
    out.truncate(53);
    out.trim_end_matches('-').to_string()
}

/// `SOME_VARIABLE` made of the parts.
pub fn var_name(parts: &[&str]) -> String {
    let mut out = String::new();
    for p in parts {
        let mut prev = ' ';
        for c in p.chars() {
            if c.is_ascii_alphanumeric() {
                // camelCase boundaries become `_`
                if c.is_ascii_uppercase() && (prev.is_ascii_lowercase() || prev.is_ascii_digit()) {
                    out.push('_');
                }
                out.push(c.to_ascii_uppercase());
            } else if !out.ends_with('_') && !out.is_empty() {
                out.push('_');
            }
            prev = c;
        }
        if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    let out = out.trim_matches('_').to_string();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        format!("V_{out}")
    } else {
        out
    }
}

fn comments(out: &mut String, lines: &[String]) {
    for l in lines {
        for part in l.lines() {
            let _ = writeln!(out, "# {part}");
        }
    }
}

fn entries(out: &mut String, table: &str, es: &[Entry]) {
    if es.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n[{table}]");
    for e in es {
        if let Some(c) = &e.comment {
            comments(out, std::slice::from_ref(c));
        }
        let hash = if e.active { "" } else { "# " };
        let _ = writeln!(out, "{hash}{} = {}", key(&e.key), e.value);
    }
}

impl Draft {
    pub fn add_var(&mut self, name: &str, what: &str) {
        if !self.vars.iter().any(|(n, _)| n == name) {
            self.vars.push((name.into(), what.into()));
        }
    }

    /// The pipeline file.
    pub fn to_toml(&self, header: &[String]) -> String {
        let mut o = String::new();
        comments(&mut o, header);
        let _ = writeln!(
            o,
            "# Every key is documented in slipway's docs/pipeline-reference.md.\n"
        );
        let _ = writeln!(o, "[project]");
        let _ = writeln!(o, "name = {}", quote(&self.project));
        let _ = writeln!(o, "namespace = {}", quote(&self.namespace));
        let _ = writeln!(o, "env_file = \".env\"");
        if !self.profiles.is_empty() {
            let _ = writeln!(
                o,
                "# Without --profile: [profiles.default], the pipeline as written."
            );
            let _ = writeln!(o, "default_profile = \"default\"");
        }
        o.push('\n');
        comments(&mut o, &self.cluster_comments);
        let _ = writeln!(o, "[cluster]");
        let _ = writeln!(o, "provider = {}", quote(&self.provider));
        let _ = writeln!(o, "name = {}", quote(&self.project));
        for i in &self.images {
            image(&mut o, i);
        }
        for r in &self.releases {
            release(&mut o, r);
        }
        for s in &self.smoke {
            smoke(&mut o, s);
        }
        if !self.profiles.is_empty() {
            let _ = writeln!(o, "\n[profiles.default]");
            let _ = writeln!(o, "description = \"the pipeline as written above\"");
        }
        for p in &self.profiles {
            o.push('\n');
            comments(&mut o, &p.comments);
            let _ = writeln!(o, "[profiles.{}]", key(&p.name));
            let _ = writeln!(o, "description = {}", quote(&p.description));
            for (k, v) in &p.lines {
                let _ = writeln!(o, "{k} = {v}");
            }
        }
        o
    }

    /// `.env.example`: every variable the file references, empty.
    pub fn env_example(&self) -> Option<String> {
        if self.vars.is_empty() {
            return None;
        }
        let mut o = String::from(
            "# Variables pipeline.toml references. Copy to .env (keep it out of git) or\n\
             # export them; secret values never appear in argv, logs or reports.\n",
        );
        for (n, what) in &self.vars {
            let _ = writeln!(o, "\n# {what}\n{n}=");
        }
        Some(o)
    }
}

/// An `[images.NAME]` table.
fn image(o: &mut String, i: &Image) {
    o.push('\n');
    comments(o, &i.comments);
    let _ = writeln!(o, "[images.{}]", key(&i.name));
    if let Some(r) = &i.repository {
        let _ = writeln!(o, "repository = {}", quote(r));
    }
    let _ = writeln!(o, "context = {}", quote(&i.context));
    if let Some(d) = &i.dockerfile {
        let _ = writeln!(o, "dockerfile = {}", quote(d));
    }
    if let Some(t) = &i.target {
        let _ = writeln!(o, "target = {}", quote(t));
    }
    for c in &i.choices {
        let _ = writeln!(o, "# {c}");
    }
    if !i.inputs.is_empty() {
        let _ = writeln!(o, "inputs = {}", array(&i.inputs));
    }
    if !i.build_args.is_empty() {
        let kv: Vec<String> = i
            .build_args
            .iter()
            .map(|(k, v)| format!("{} = {}", key(k), quote(v)))
            .collect();
        let _ = writeln!(o, "build_args = {{ {} }}", kv.join(", "));
    }
    if let Some(cmd) = &i.pre_build {
        let _ = writeln!(o, "\n[images.{}.pre_build]", key(&i.name));
        let _ = writeln!(o, "command = {}", array(cmd));
    }
}

/// A `[releases.NAME]` table, its `set`/`set_string` entries and its Secrets.
fn release(o: &mut String, r: &Release) {
    o.push('\n');
    comments(o, &r.comments);
    let _ = writeln!(o, "[releases.{}]", key(&r.name));
    let _ = writeln!(o, "chart = {}", quote(&r.chart));
    if let Some(n) = &r.namespace {
        let _ = writeln!(o, "namespace = {}", quote(n));
    }
    if !r.values.is_empty() {
        let _ = writeln!(o, "values = {}", array(&r.values));
    }
    if let Some(t) = &r.timeout {
        let _ = writeln!(o, "timeout = {}", quote(t));
    }
    if r.wait {
        let _ = writeln!(o, "wait = true");
    }
    if !r.needs.is_empty() {
        let _ = writeln!(o, "needs = {}", array(&r.needs));
    }
    for c in &r.choices {
        let _ = writeln!(o, "# {c}");
    }
    entries(o, &format!("releases.{}.set", key(&r.name)), &r.set);
    entries(
        o,
        &format!("releases.{}.set_string", key(&r.name)),
        &r.set_string,
    );
    for s in &r.secrets {
        o.push('\n');
        if let Some(c) = &s.comment {
            comments(o, std::slice::from_ref(c));
        }
        let _ = writeln!(o, "[releases.{}.secrets.{}]", key(&r.name), key(&s.name));
        let kv: Vec<String> = s
            .keys
            .iter()
            .map(|(k, v)| format!("{} = {}", key(k), quote(v)))
            .collect();
        let _ = writeln!(o, "from_env = {{ {} }}", kv.join(", "));
    }
}

/// A `[smoke.NAME]` table.
fn smoke(o: &mut String, s: &Smoke) {
    o.push('\n');
    comments(o, &s.comments);
    let _ = writeln!(o, "[smoke.{}]", key(&s.name));
    match &s.check {
        Check::Http {
            service,
            port,
            path,
        } => {
            let _ = writeln!(o, "release = {}", quote(&s.release));
            let _ = writeln!(o, "service = {}", quote(service));
            let _ = writeln!(o, "port = {port}");
            let _ = writeln!(o, "path = {}", quote(path));
        }
        Check::Kubectl {
            resource,
            condition,
        } => {
            let _ = writeln!(o, "type = \"kubectl\"");
            let _ = writeln!(o, "release = {}", quote(&s.release));
            let _ = writeln!(o, "resource = {}", quote(resource));
            if let Some(c) = condition {
                let _ = writeln!(o, "condition = {}", quote(c));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(label("My_App.v2"), "my-app-v2");
        assert_eq!(label("--"), "");
        assert_eq!(var_name(&["api", "apiKey"]), "API_API_KEY");
        assert_eq!(var_name(&["web-ui", "DB_PASSWORD"]), "WEB_UI_DB_PASSWORD");
        assert_eq!(key("image.tag"), "\"image.tag\"");
        assert_eq!(key("api-1"), "api-1");
    }
}
