//! [smoke.NAME]: where each check runs, and its kind's own rules.

use toml::Table;

use super::{is_dns_label, path, Cx, Pipeline};
use crate::config::interp;

pub(super) fn check(p: &Pipeline, raw: &Table, cx: &mut Cx) {
    let release_names: Vec<&str> = p.releases.iter().map(|r| r.name.as_str()).collect();
    let secret_vars = super::releases::secret_vars(p);
    for ch in &p.smoke {
        super::check_table_name(cx, "smoke", &ch.name);
        let at = |k: &str| path(&["smoke", &ch.name, k]);
        if let Some(r) = &ch.release {
            if !release_names.contains(&r.as_str()) {
                let hint =
                    super::nearest(r, &release_names).map(|n| format!("did you mean `{n}`?"));
                cx.err(
                    &at("release"),
                    format!("check `{}` refers to an undefined release `{r}`", ch.name),
                    hint,
                );
            }
        } else if ch.namespace.is_none() && p.releases.len() > 1 {
            cx.err(
                &path(&["smoke", &ch.name]),
                format!(
                    "check `{}`: several releases exist; say which with `release` or `namespace`",
                    ch.name
                ),
                None,
            );
        }
        if let Some(ns) = &ch.namespace {
            if !is_dns_label(ns) {
                cx.err(
                    &at("namespace"),
                    format!("namespace {ns:?} is not a DNS label"),
                    None,
                );
            }
        }
        let mut spec = ch.spec.clone();
        let mut templated: Vec<&str> = vec![];
        for (key, value) in spec.kind_mut().templated() {
            super::check_refs(p, cx, at(key), value);
            templated.push(key);
        }
        let raw_check = raw.get("smoke").and_then(|s| s.get(&ch.name));
        let mut strings = vec![];
        if let Some(t) = raw_check {
            collect_strings(t, &mut vec![], &mut strings);
        }
        // `${images.…}` is resolved in the check's templated keys only.
        for (key, s) in &strings {
            if s.contains("${images.")
                && !templated.contains(&key.first().map_or("", String::as_str))
            {
                let full = [path(&["smoke", &ch.name]), key.clone()].concat();
                cx.err(
                    &full,
                    format!(
                        "`{}` is not resolved here: in smoke checks `${{images.…}}` works in an http check's path, body, body_contains and json, and a job check's image, command, args, env and output_contains",
                        full.join(".")
                    ),
                    None,
                );
                // The kind's own checks of this value would only repeat the problem.
                cx.uninterpolated.insert(full);
            }
        }
        for (key, message, hint) in ch.spec.kind().validate() {
            // A problem's key may be dotted (`json.FIELD`, `headers.NAME`): located at
            // the deepest part written.
            let mut kat = path(&["smoke", &ch.name]);
            kat.extend(key.split('.').map(String::from));
            cx.err(&kat, message, hint);
        }
        // A secret's variable in a check would be sent in a request and printed in
        // the plan: refuse it.
        {
            for (key, s) in strings {
                for var in interp::var_names(&s) {
                    if secret_vars.contains(&var) {
                        cx.err(
                            &[path(&["smoke", &ch.name]), key.clone()].concat(),
                            format!("`${{{var}}}` feeds a Secret; a smoke check would send it and the plan would print it"),
                            Some("check that the service uses the secret (e.g. a field saying it is present) instead".into()),
                        );
                    }
                }
            }
        }
    }
}

fn collect_strings(v: &toml::Value, at: &mut Vec<String>, out: &mut Vec<(Vec<String>, String)>) {
    match v {
        toml::Value::String(s) => out.push((at.clone(), s.clone())),
        toml::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                at.push(i.to_string());
                collect_strings(x, at, out);
                at.pop();
            }
        }
        toml::Value::Table(t) => {
            for (k, x) in t {
                at.push(k.clone());
                collect_strings(x, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}
