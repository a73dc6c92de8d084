//! `${VAR}` / `${VAR:-default}` interpolation from the environment and a dotenv file.
//!
//! `${images.NAME.FIELD}` is not an environment reference: it is left in place and
//! resolved by the planner once image tags are known. `$$` writes a literal `$`.

pub use crate::model::vars::{read_env_file, Vars};

/// Is this `${...}` body a reference to a built image rather than a variable?
pub fn is_image_ref(body: &str) -> bool {
    body.starts_with("images.")
}

/// The variable names a string refers to with `${VAR}` / `${VAR:-default}`.
pub fn var_names(input: &str) -> Vec<String> {
    let mut out = vec![];
    let mut rest = input;
    while let Some(pos) = rest.find("${") {
        let body = &rest[pos + 2..];
        let Some(end) = body.find('}') else { break };
        let name = body[..end].split(":-").next().unwrap_or("");
        if !is_image_ref(name) && !name.is_empty() {
            out.push(name.to_string());
        }
        rest = &body[end + 1..];
    }
    out
}

/// The names written `$NAME` (no braces) in a string: slipway interpolates only
/// `${NAME}`, so these would reach a tool as written. `$$` (a literal `$`) is skipped.
pub fn bare_vars(input: &str) -> Vec<String> {
    let mut out = vec![];
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            rest = tail;
            continue;
        }
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            out.push(name.clone());
        }
        rest = &after[name.len()..];
    }
    out
}

/// Interpolate one string. Unset variables without a default are returned as errors
/// (all of them), never replaced by an empty string.
pub fn interpolate(input: &str, vars: &Vars) -> Result<String, Vec<String>> {
    let mut out = String::with_capacity(input.len());
    let mut errors = Vec::new();
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }
        let Some(body_start) = after.strip_prefix('{') else {
            out.push('$');
            rest = after;
            continue;
        };
        let Some(end) = body_start.find('}') else {
            errors.push(format!("unclosed `${{` in {input:?}"));
            out.push_str(&rest[pos..]);
            rest = "";
            break;
        };
        let body = &body_start[..end];
        rest = &body_start[end + 1..];
        if is_image_ref(body) {
            out.push_str("${");
            out.push_str(body);
            out.push('}');
            continue;
        }
        let (name, default) = match body.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (body, None),
        };
        if default.is_some_and(|d| d.contains("${")) {
            errors.push(format!(
                "`${{{body}}}…`: a default cannot hold another `${{…}}` reference; write the value itself"
            ));
            // Skip the rest of the nested reference.
            if let Some(close) = rest.find('}') {
                rest = &rest[close + 1..];
            }
            continue;
        }
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            errors.push(format!(
                "`${{{body}}}` is not a variable name (letters, digits, _)"
            ));
            continue;
        }
        match (vars.get(name), default) {
            (Some(v), _) if !v.is_empty() || default.is_none() => out.push_str(v),
            (_, Some(d)) => out.push_str(d),
            (None, None) => errors.push(format!(
                "`${{{name}}}` is not set; export {name}, add it to the env file, or write `${{{name}:-default}}`"
            )),
            (Some(_), None) => unreachable!(),
        }
    }
    out.push_str(rest);
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        Vars::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            BTreeMap::from([
                ("FROM_FILE".into(), "file".into()),
                ("BOTH".into(), "file".into()),
            ]),
        )
    }

    #[test]
    fn substitutes_defaults_and_escapes() {
        let v = vars(&[("A", "1"), ("BOTH", "env"), ("EMPTY", "")]);
        assert_eq!(interpolate("x${A}y", &v).unwrap(), "x1y");
        assert_eq!(interpolate("${B:-two}", &v).unwrap(), "two");
        assert_eq!(interpolate("${EMPTY:-d}", &v).unwrap(), "d");
        assert_eq!(interpolate("${EMPTY}", &v).unwrap(), "");
        assert_eq!(interpolate("$$A $A", &v).unwrap(), "$A $A");
        assert_eq!(interpolate("${FROM_FILE}", &v).unwrap(), "file");
        assert_eq!(
            interpolate("${BOTH}", &v).unwrap(),
            "env",
            "process env wins"
        );
        assert_eq!(
            interpolate("${images.app.tag}", &v).unwrap(),
            "${images.app.tag}"
        );
    }

    #[test]
    fn reports_every_unset_variable() {
        let errs = interpolate("${X}-${Y}-${Z:-ok}", &vars(&[])).unwrap_err();
        assert_eq!(errs.len(), 2);
        assert!(errs[0].contains("`${X}` is not set"));
        assert!(errs[1].contains("`${Y}` is not set"));
    }

    #[test]
    fn finds_bare_references() {
        assert_eq!(bare_vars("$A ${B} $$C $_d $1 $ x$E9"), ["A", "_d", "E9"]);
        assert!(bare_vars("${A}$$B$$").is_empty());
    }

    #[test]
    fn rejects_malformed_references() {
        assert!(interpolate("${a b}", &vars(&[])).is_err());
        assert!(interpolate("${open", &vars(&[])).is_err());
    }
}
