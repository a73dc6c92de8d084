//! Tier 1: a provider's name is written in its own file, not spread as a string
//! across the code (so adding a provider stays one file, one tool declaration and
//! one registration; see CONTRIBUTING.md).
//!
//! The rule, precisely. The names are the stems of `src/providers/*.rs` (not
//! `mod.rs`): `existing`, `kind`, `minikube`, … In the library's non-test code — a
//! file up to its inline test module (a `#[cfg(test)]` line followed by `mod NAME {`),
//! comments left out — no string literal may equal a provider's name, except:
//! - in the provider's own file `providers/NAME.rs`, its tool's adapter
//!   `tools/NAME.rs`, and the tool declarations `tools/registry.rs`;
//! - `"kind"` as the Kubernetes field: a JSON key (the literal followed by `:`), a
//!   serde `tag = "kind"`, a lookup `.get("kind")`;
//! - the (file, name) pairs of [`EXEMPT`], each with its reason; an exemption that no
//!   longer matches anything fails the test too, so the list cannot rot.

use crate::tidy::{files, src};

/// (file under src/, provider name, why it is written there).
const EXEMPT: &[(&str, &str, &str)] = &[
    (
        "model/mutation.rs",
        "kind",
        "which cluster a command changes is judged in model (the executor checks it \
         before each run and may use nothing above model): kind's verbs and its default \
         cluster name",
    ),
    (
        "model/mutation.rs",
        "minikube",
        "the same for minikube's verbs and its default profile",
    ),
    (
        "tools/recipe.rs",
        "minikube",
        "the name of minikube's build recipe (its directory in the cache)",
    ),
    (
        "init/manifests.rs",
        "kind",
        "the Kubernetes field `kind` of the manifests init reads (through a helper)",
    ),
];

/// The provider names: the stems of `src/providers/*.rs`.
fn provider_names() -> Vec<String> {
    files(&src().join("providers"))
        .iter()
        .filter_map(|p| p.file_stem()?.to_str().map(String::from))
        .filter(|s| s != "mod")
        .collect()
}

/// A string literal on a line: where its opening quote is, and its text.
struct Literal {
    start: usize,
    end: usize,
    text: String,
}

/// The string literals of `text`'s code (comments left out), with line numbers;
/// stops at an inline test module.
fn literals(text: &str) -> Vec<(usize, String, Literal)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = vec![];
    for (i, line) in lines.iter().enumerate() {
        let next = lines.get(i + 1).map(|l| l.trim_start()).unwrap_or("");
        if line.trim() == "#[cfg(test)]" && next.starts_with("mod ") && next.ends_with('{') {
            break;
        }
        let chars: Vec<char> = line.chars().collect();
        let mut j = 0;
        while j < chars.len() {
            match chars[j] {
                '/' if chars.get(j + 1) == Some(&'/') => break,
                '\'' => {
                    // A char literal ('"' or '\"'), or a lifetime: skip it.
                    if chars.get(j + 2) == Some(&'\'') {
                        j += 3;
                    } else if chars.get(j + 1) == Some(&'\\') && chars.get(j + 3) == Some(&'\'') {
                        j += 4;
                    } else {
                        j += 1;
                    }
                }
                '"' => {
                    let start = j;
                    let mut s = String::new();
                    j += 1;
                    while j < chars.len() && chars[j] != '"' {
                        if chars[j] == '\\' {
                            j += 1;
                        }
                        if let Some(c) = chars.get(j) {
                            s.push(*c);
                        }
                        j += 1;
                    }
                    out.push((
                        i + 1,
                        line.to_string(),
                        Literal {
                            start,
                            end: j,
                            text: s,
                        },
                    ));
                    j += 1;
                }
                _ => j += 1,
            }
        }
    }
    out
}

/// `"kind"` as the Kubernetes field, not the provider.
fn is_kubernetes_field(line: &str, l: &Literal) -> bool {
    let chars: Vec<char> = line.chars().collect();
    let before: String = chars[..l.start].iter().collect();
    let after: String = chars[(l.end + 1).min(chars.len())..].iter().collect();
    l.text == "kind"
        && (after.trim_start().starts_with(':')
            || before.trim_end().ends_with("tag =")
            || before.ends_with(".get("))
}

/// Every place of the library where a provider's name is a string literal against
/// the rule: `file:line: name: the line`. `file` is relative to src/.
fn offenders(sources: &[(String, String)], names: &[String]) -> Vec<(String, String, String)> {
    let mut out = vec![];
    for (file, text) in sources {
        for (n, line, l) in literals(text) {
            let Some(name) = names.iter().find(|p| **p == l.text) else {
                continue;
            };
            let own = [
                format!("providers/{name}.rs"),
                format!("tools/{name}.rs"),
                "tools/registry.rs".to_string(),
            ];
            if own.contains(file) || is_kubernetes_field(&line, &l) {
                continue;
            }
            out.push((
                file.clone(),
                name.clone(),
                format!("{file}:{n}: {name}: {}", line.trim()),
            ));
        }
    }
    out
}

fn sources() -> Vec<(String, String)> {
    files(&src())
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(src())
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (rel, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

#[test]
fn provider_names_are_written_only_in_their_own_files() {
    let names = provider_names();
    for n in ["existing", "kind", "minikube"] {
        assert!(names.iter().any(|x| x == n), "{n} in {names:?}");
    }
    let found = offenders(&sources(), &names);
    let bad: Vec<&str> = found
        .iter()
        .filter(|(f, n, _)| !EXEMPT.iter().any(|(ef, en, _)| ef == f && en == n))
        .map(|(_, _, l)| l.as_str())
        .collect();
    assert!(
        bad.is_empty(),
        "a provider's name written outside its own file (use the provider, its \
         `ProviderKind`, its `NAME` or the tool's `ToolId`):\n{}",
        bad.join("\n")
    );
    let stale: Vec<String> = EXEMPT
        .iter()
        .filter(|(ef, en, _)| !found.iter().any(|(f, n, _)| f == ef && n == en))
        .map(|(f, n, why)| format!("{f}: {n} ({why})"))
        .collect();
    assert!(
        stale.is_empty(),
        "exemptions that match nothing any more (remove them):\n{}",
        stale.join("\n")
    );
}

/// The rule catches what it is meant to, and lets the rest be.
#[test]
fn the_provider_name_rule_itself() {
    let names: Vec<String> = ["kind", "minikube", "existing"].map(String::from).to_vec();
    let src = |file: &str, text: &str| vec![(file.to_string(), text.to_string())];
    let hits = |file: &str, text: &str| {
        offenders(&src(file, text), &names)
            .into_iter()
            .map(|(_, n, _)| n)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        hits("plan/x.rs", "if tool == \"minikube\" { a(\"kind\") }"),
        ["minikube", "kind"]
    );
    assert_eq!(
        hits("run/x.rs", "let p = \"existing\"; // \"kind\""),
        ["existing"]
    );
    assert!(hits("providers/kind.rs", "Cmd::new(\"kind\", [])").is_empty());
    assert!(hits("tools/registry.rs", "\"minikube\"").is_empty());
    assert_eq!(hits("providers/minikube.rs", "\"kind\""), ["kind"]);
    // The Kubernetes field, comments, longer strings and test modules are not names.
    assert!(hits("checks/x.rs", "json!({\"kind\": \"Job\"})").is_empty());
    assert!(hits("model/x.rs", "#[serde(tag = \"kind\")]").is_empty());
    assert!(hits("init/x.rs", "d.get(\"kind\")").is_empty());
    assert!(hits("run/x.rs", "// provider = \"kind\"").is_empty());
    assert!(hits("run/x.rs", "format!(\"kind-{}\", n); '\"'; \"a \\\" kind\"").is_empty());
    assert!(hits(
        "run/x.rs",
        "fn f() {}\n#[cfg(test)]\nmod tests {\n    const K: &str = \"kind\";\n}"
    )
    .is_empty());
    assert_eq!(
        hits(
            "run/x.rs",
            "#[cfg(test)]\nuse x;\nconst K: &str = \"kind\";"
        ),
        ["kind"]
    );
}
