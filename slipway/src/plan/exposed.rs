//! No secret value in a plan. Every argv and env element of every planned command
//! (and every other text of the plan: smoke checks' requests, `dev`'s streams) is
//! visible to every local user (`ps`, `/proc/PID/cmdline`) and printed by `plan`, so
//! a plan that holds the value of a secret — whichever way it got there: a variable
//! that feeds a Secret, a dotenv alias of one, a secret's `env_file`, a literal — is
//! refused before anything runs. Decided by value, not by variable name.

use serde_json::Value;

use super::Plan;
use crate::model::{Error, Redactor, MASK};

/// Where in a plan a text sits, said for people: the step and the command's part.
fn place(plan: &Value, path: &[String]) -> String {
    let mut at = String::new();
    let mut node = plan;
    let mut program: Option<String> = None;
    let mut rest: Vec<String> = vec![];
    for (i, p) in path.iter().enumerate() {
        node = match node {
            Value::Object(o) => o.get(p).unwrap_or(&Value::Null),
            Value::Array(a) => p
                .parse::<usize>()
                .ok()
                .and_then(|n| a.get(n))
                .unwrap_or(&Value::Null),
            _ => &Value::Null,
        };
        if i == 1 && path[0] == "steps" {
            let id = node.get("id").and_then(Value::as_str).unwrap_or("?");
            at = format!("step {id}");
            rest.clear();
            continue;
        }
        if let Some(prog) = node.get("program").and_then(Value::as_str) {
            if node.get("args").is_some() {
                program = Some(prog.to_string());
                rest.clear();
                continue;
            }
        }
        rest.push(p.clone());
    }
    let what = match (program.as_deref(), rest.as_slice()) {
        (Some(prog), [a, n]) if a == "args" => {
            // Counted as a shell does: `$1` is the first argument.
            let n = n.parse::<usize>().map_or(0, |n| n + 1);
            format!("`{prog}` argument {n}")
        }
        (Some(prog), [e, k]) if e == "env" => format!("`{prog}` environment variable {k}"),
        (Some(prog), r) => format!("`{prog}` {}", r.join(".")),
        (None, r) => r.join("."),
    };
    if at.is_empty() {
        format!("plan {}", path.join("."))
    } else {
        format!("{at}, {what}")
    }
}

fn walk(
    v: &Value,
    path: &mut Vec<String>,
    found: &mut Vec<(Vec<String>, String)>,
    hit: &dyn Fn(&str) -> bool,
) {
    match v {
        Value::String(s) if hit(s) => found.push((path.clone(), s.clone())),
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                path.push(i.to_string());
                walk(x, path, found, hit);
                path.pop();
            }
        }
        Value::Object(o) => {
            for (k, x) in o {
                path.push(k.clone());
                if hit(k) {
                    found.push((path.clone(), k.clone()));
                }
                walk(x, path, found, hit);
                path.pop();
            }
        }
        _ => {}
    }
}

/// Refuse `plan` if any of its texts holds one of `secrets` (description, value).
pub(super) fn refuse_secrets(plan: &Plan, secrets: &[(String, String)]) -> Result<(), Error> {
    let secrets: Vec<&(String, String)> = secrets
        .iter()
        .filter(|(_, v)| v.len() >= Redactor::MIN_LEN)
        .collect();
    if secrets.is_empty() {
        return Ok(());
    }
    let v = serde_json::to_value(plan).unwrap_or_default();
    let mut found = vec![];
    walk(&v, &mut vec![], &mut found, &|s: &str| {
        secrets.iter().any(|(_, x)| s.contains(x.as_str()))
    });
    if found.is_empty() {
        return Ok(());
    }
    let mut lines: Vec<String> = vec![];
    for (path, text) in &found {
        let mut shown = text.clone();
        let mut whose = vec![];
        for (what, x) in &secrets {
            if shown.contains(x.as_str()) || text.contains(x.as_str()) {
                shown = shown.replace(x.as_str(), MASK);
                whose.push(what.as_str());
            }
        }
        let line = format!(
            "{}: {} holds the value of {}",
            place(&v, path),
            serde_json::to_string(&shown).unwrap_or_default(),
            whose.join(" and ")
        );
        if !lines.contains(&line) {
            lines.push(line);
        }
    }
    let mut e = Error::usage(format!(
        "the value of a secret would be on a command line (visible to every local user, and printed by `plan`):\n  {}",
        lines.join("\n  ")
    ));
    e.tail = vec![];
    Err(e.hint(
        "pass a secret only through a Secret slipway creates (`[releases.NAME.secrets]`) and read it there (the chart's `secret.existingSecret`); for an image build use a BuildKit secret, not `build_args`; a variable whose value equals a secret's is that secret",
    ))
}
