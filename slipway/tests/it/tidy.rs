//! Tier 1: the architecture's invariants, as written at the top of `src/lib.rs`,
//! checked against the source (as rust-analyzer's tidy tests do). The exit-code
//! table is checked against docs/guide.md and `--help` in `docs.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub(crate) fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every .rs file under a directory.
pub(crate) fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Code lines (comments and doc comments dropped) of a file, with line numbers.
fn code(file: &Path) -> Vec<(usize, String)> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .map(|(i, l)| (i + 1, l.to_string()))
        .collect()
}

/// The top-level module a file belongs to (`src/plan/stages/x.rs` -> `plan`).
fn module_of(file: &Path) -> String {
    let rel = file.strip_prefix(src()).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// Invariant 1 as lib.rs states it: module -> the modules it may use.
fn allowed_imports() -> BTreeMap<String, BTreeSet<String>> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let modules: BTreeSet<String> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';').to_string())
        .collect();
    let ticked =
        |s: &str| -> Vec<String> { s.split('`').skip(1).step_by(2).map(String::from).collect() };
    let mut rules = BTreeMap::new();
    for l in lib.lines() {
        let Some(rule) = l.strip_prefix("//!    - ") else {
            continue;
        };
        let Some((who, may)) = rule.split_once(':') else {
            continue;
        };
        let allowed: BTreeSet<String> = if may.contains("everything") {
            modules.clone()
        } else {
            ticked(may).into_iter().collect()
        };
        for m in ticked(who) {
            rules.insert(m, allowed.clone());
        }
    }
    assert_eq!(
        rules.keys().cloned().collect::<BTreeSet<_>>(),
        modules,
        "lib.rs states an import rule for every module, and only for modules"
    );
    rules
}

#[test]
fn imports_go_one_way() {
    let rules = allowed_imports();
    let mut bad = vec![];
    for f in files(&src()) {
        let m = module_of(&f);
        let Some(allowed) = rules.get(&m) else {
            continue;
        };
        for (n, line) in code(&f) {
            let mut rest = line.as_str();
            while let Some(i) = rest.find("crate::") {
                let after = &rest[i + "crate::".len()..];
                let mut targets = vec![];
                if let Some(group) = after.strip_prefix('{') {
                    let inner = group.split('}').next().unwrap_or("");
                    targets.extend(
                        inner
                            .split(',')
                            .map(|t| t.trim().split("::").next().unwrap_or("").to_string()),
                    );
                } else {
                    targets.push(
                        after
                            .split(|c: char| !c.is_alphanumeric() && c != '_')
                            .next()
                            .unwrap_or("")
                            .to_string(),
                    );
                }
                for t in targets.into_iter().filter(|t| !t.is_empty()) {
                    if t != m && !allowed.contains(&t) {
                        bad.push(format!("{}:{n}: `{m}` uses `{t}`", f.display()));
                    }
                }
                rest = after;
            }
        }
    }
    assert!(
        bad.is_empty(),
        "imports against lib.rs invariant 1:\n{}",
        bad.join("\n")
    );
}

#[test]
fn no_module_cycles() {
    // With the rules above, a cycle would need two modules allowed to use each other.
    let rules = allowed_imports();
    for (a, uses) in &rules {
        for b in uses {
            if a != b && rules.get(b).is_some_and(|u| u.contains(a)) && a != "cli" && b != "cli" {
                panic!("`{a}` and `{b}` may use each other");
            }
        }
    }
}

/// Lines of the library that match `needle` outside the allowed modules.
fn offenders(needles: &[&str], allowed: &[&str]) -> Vec<String> {
    let mut out = vec![];
    for f in files(&src()) {
        let m = module_of(&f);
        if allowed.contains(&m.as_str()) {
            continue;
        }
        for (n, line) in code(&f) {
            if needles.iter().any(|x| line.contains(x)) {
                out.push(format!("{}:{n}: {}", f.display(), line.trim()));
            }
        }
    }
    out
}

#[test]
fn only_exec_spawns_processes() {
    let bad = offenders(
        &["process::Command", "Command::new(", "process::{"],
        &["exec"],
    );
    assert!(
        bad.is_empty(),
        "spawning outside exec (invariant 2):\n{}",
        bad.join("\n")
    );
}

#[test]
fn only_report_writes_to_stdout_or_stderr() {
    let bad = offenders(
        &[
            "println!",
            "eprintln!",
            "print!(",
            "eprint!(",
            "dbg!(",
            "io::stdout",
            "io::stderr",
        ],
        &["report"],
    );
    assert!(
        bad.is_empty(),
        "printing outside report (invariant 3):\n{}",
        bad.join("\n")
    );
}

#[test]
fn only_cli_ends_the_process_and_only_model_maps_exit_codes() {
    let bad = offenders(
        &["process::exit", "ExitCode::from", "ExitCode::SUCCESS"],
        &["cli", "bin"],
    );
    assert!(
        bad.is_empty(),
        "exit codes outside cli (invariant 4):\n{}",
        bad.join("\n")
    );
    let bad = offenders(&["fn exit_code("], &["model"]);
    assert!(
        bad.is_empty(),
        "an exit-code mapping outside model:\n{}",
        bad.join("\n")
    );
}

#[test]
fn plan_runs_nothing() {
    let bad: Vec<String> = offenders(&["crate::exec", "crate::run", "std::net", "ureq::"], &[])
        .into_iter()
        .filter(|l| l.contains("/src/plan/"))
        .collect();
    assert!(
        bad.is_empty(),
        "plan reaches for execution (invariant 5):\n{}",
        bad.join("\n")
    );
}

#[test]
fn every_stage_has_a_distinct_documented_exit_code() {
    use strum::IntoEnumIterator;
    let mut seen = BTreeMap::new();
    for s in slipway::model::Stage::iter() {
        let c = s.exit_code();
        assert!((10..100).contains(&c), "{s}: {c}");
        if let Some(prev) = seen.insert(c, s) {
            // Only the read/remove commands share one.
            assert!(
                [prev.name(), s.name()]
                    .iter()
                    .all(|n| ["status", "down", "logs"].contains(n)),
                "{prev} and {s} share exit code {c}"
            );
        }
    }
}
