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

/// A file's module path (`src/plan/stages/build.rs` -> `plan::stages::build`,
/// `src/cli/mod.rs` -> `cli`); `None` for the binary's files.
fn module_path(file: &Path) -> Option<Vec<String>> {
    let rel = file.strip_prefix(src()).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.first().is_some_and(|p| p == "bin") {
        return None;
    }
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    Some(parts)
}

/// Every library file: its module path and the paths to this crate's items it writes.
fn library() -> Vec<(PathBuf, Vec<String>, Vec<Ref>)> {
    files(&src())
        .into_iter()
        .filter_map(|f| {
            let m = module_path(&f)?;
            let r = refs(&m, &std::fs::read_to_string(&f).unwrap());
            Some((f, m, r))
        })
        .collect()
}

/// Uses of another top-level module against `rules`: "file:line: `a` uses `b`".
fn import_violations(
    rules: &BTreeMap<String, BTreeSet<String>>,
    file: &str,
    module: &[String],
    refs: &[Ref],
) -> Vec<String> {
    let Some(m) = module.first() else {
        return vec![];
    };
    let Some(allowed) = rules.get(m) else {
        return vec![];
    };
    refs.iter()
        .filter_map(|r| {
            let t = r.path.first()?;
            (t != m && rules.contains_key(t) && !allowed.contains(t))
                .then(|| format!("{file}:{}: `{m}` uses `{t}`", r.line))
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[test]
fn imports_go_one_way() {
    let rules = allowed_imports();
    let mut bad = vec![];
    for (f, m, r) in library() {
        bad.extend(import_violations(&rules, &f.display().to_string(), &m, &r));
    }
    assert!(
        bad.is_empty(),
        "imports against lib.rs invariant 1:\n{}",
        bad.join("\n")
    );
}

/// The strongly connected groups (more than one member) of a directed graph.
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<Vec<String>> {
    let reach = |from: &String| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(n) = todo.pop() {
            for m in edges.get(&n).into_iter().flatten() {
                if seen.insert(m.clone()) {
                    todo.push(m.clone());
                }
            }
        }
        seen
    };
    let reached: BTreeMap<&String, BTreeSet<String>> =
        edges.keys().map(|n| (n, reach(n))).collect();
    let mut out = BTreeSet::new();
    for (a, from_a) in &reached {
        let group: Vec<String> = from_a
            .iter()
            .filter(|b| reached.get(b).is_some_and(|r| r.contains(*a)))
            .cloned()
            .collect();
        if group.len() > 1 {
            out.insert(group);
        }
    }
    out
}

/// The graphs the code's paths make: between top-level modules, and between files'
/// modules (a module and its own ancestors or descendants do not count: a parent
/// and its children using each other is how Rust modules work).
fn graphs(
    library: &[(Vec<String>, Vec<Ref>)],
) -> (
    BTreeMap<String, BTreeSet<String>>,
    BTreeMap<String, BTreeSet<String>>,
) {
    let known: BTreeSet<&[String]> = library.iter().map(|(m, _)| m.as_slice()).collect();
    let (mut top, mut files) = (BTreeMap::new(), BTreeMap::new());
    for (m, refs) in library {
        let Some(own) = m.first() else { continue };
        for r in refs {
            let Some(t) = r.path.first() else { continue };
            if t != own && known.contains(&r.path[..1]) {
                top.entry(own.clone())
                    .or_insert_with(BTreeSet::new)
                    .insert(t.clone());
            }
            // The longest module that holds what the path names.
            let Some(target) = (1..=r.path.len())
                .rev()
                .map(|n| &r.path[..n])
                .find(|p| known.contains(p))
            else {
                continue;
            };
            let related = target.starts_with(m) || m.starts_with(target);
            if !related {
                files
                    .entry(m.join("::"))
                    .or_insert_with(BTreeSet::new)
                    .insert(target.join("::"));
            }
        }
    }
    (top, files)
}

#[test]
fn no_module_cycles() {
    let lib: Vec<(Vec<String>, Vec<Ref>)> = library().into_iter().map(|(_, m, r)| (m, r)).collect();
    let (top, files) = graphs(&lib);
    let top = cycles(&top);
    assert!(
        top.is_empty(),
        "top-level modules that use each other: {top:?}"
    );
    let files = cycles(&files);
    assert!(files.is_empty(), "modules that use each other: {files:?}");
}

/// Source text with comments and the contents of string and char literals blanked
/// (newlines kept, so a byte offset is on the same line as in the source).
fn clean(src: &str) -> String {
    let b = src.as_bytes();
    let blank = |c: u8| if c == b'\n' { b'\n' } else { b' ' };
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == b'/' && next == Some(b'/') {
            while i < b.len() && b[i] != b'\n' {
                out.push(b' ');
                i += 1;
            }
        } else if c == b'/' && next == Some(b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                } else {
                    out.push(blank(b[i]));
                    i += 1;
                    continue;
                }
                out.extend_from_slice(b"  ");
                i += 2;
                if depth == 0 {
                    break;
                }
            }
        } else if c == b'r'
            && matches!(next, Some(b'"' | b'#'))
            && (i == 0 || !ident(b[i - 1]))
            && b[i + 1..]
                .iter()
                .find(|&&x| x != b'#')
                .is_some_and(|&x| x == b'"')
        {
            let hashes = b[i + 1..].iter().take_while(|&&x| x == b'#').count();
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            let open = i + 1 + hashes;
            out.extend_from_slice(&b[i..=open]);
            let mut j = open + 1;
            while j < b.len() && !b[j..].starts_with(&close) {
                out.push(blank(b[j]));
                j += 1;
            }
            out.extend_from_slice(&close);
            i = j + close.len();
        } else if c == b'"' {
            out.push(b'"');
            i += 1;
            while i < b.len() && b[i] != b'"' {
                let n = if b[i] == b'\\' { 2 } else { 1 };
                out.extend(b[i..(i + n).min(b.len())].iter().map(|&x| blank(x)));
                i += n;
            }
            out.push(b'"');
            i += 1;
        } else if c == b'\'' {
            // A char literal ('x', '\n', '\'', 'é'); otherwise a lifetime.
            let end = if next == Some(b'\\') {
                b[i + 3..]
                    .iter()
                    .position(|&x| x == b'\'')
                    .map(|p| i + 3 + p)
            } else {
                let len = src[i + 1..].chars().next().map_or(1, char::len_utf8);
                (b.get(i + 1 + len) == Some(&b'\'')).then_some(i + 1 + len)
            };
            match end {
                Some(e) => {
                    out.push(b'\'');
                    out.extend(std::iter::repeat_n(b' ', e - i - 1));
                    out.push(b'\'');
                    i = e + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A path to an item of this crate, as written somewhere: its line and the
/// absolute module path it names (`["plan", "render", "step"]`).
#[derive(Debug)]
struct Ref {
    line: usize,
    path: Vec<String>,
}

/// Every path in `src` that starts at `crate::`, `super::` or `self::` (in `use`
/// items, multi-line groups included, and in expressions), resolved from `module`
/// (the file's module path; inline `mod x { … }` blocks are followed).
fn refs(module: &[String], src: &str) -> Vec<Ref> {
    let text = clean(src);
    let t = text.as_bytes();
    let line_of = |at: usize| t[..at].iter().filter(|&&c| c == b'\n').count() + 1;
    let mut out = vec![];
    let mut depth = 0usize;
    let mut inline: Vec<(String, usize)> = vec![];
    let mut pending_mod: Option<String> = None;
    let mut i = 0;
    while i < t.len() {
        let c = t[i];
        if c == b'{' {
            if let Some(m) = pending_mod.take() {
                inline.push((m, depth));
            }
            depth += 1;
            i += 1;
            continue;
        }
        if c == b'}' {
            depth = depth.saturating_sub(1);
            if inline.last().is_some_and(|(_, d)| *d == depth) {
                inline.pop();
            }
            i += 1;
            continue;
        }
        if c == b';' {
            pending_mod = None;
        }
        let starts = is_ident(c) && (i == 0 || !is_ident(t[i - 1]));
        if !starts {
            i += 1;
            continue;
        }
        let word = ident_at(t, i);
        let after = i + word.len();
        if word == "mod" {
            let j = skip_ws(t, after);
            let name = ident_at(t, j);
            if !name.is_empty() {
                pending_mod = Some(name.to_string());
            }
            i = j + name.len();
            continue;
        }
        let qualified = t[..i].ends_with(b"::");
        if !qualified
            && ["crate", "super", "self"].contains(&word)
            && t[skip_ws(t, after)..].starts_with(b"::")
        {
            let (paths, end) = tree(t, i);
            let here: Vec<String> = module
                .iter()
                .cloned()
                .chain(inline.iter().map(|(m, _)| m.clone()))
                .collect();
            for (p, at) in paths {
                out.push(Ref {
                    line: line_of(at),
                    path: resolve(&here, &p),
                });
            }
            i = end;
            continue;
        }
        i = after;
    }
    out
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn ident_at(t: &[u8], i: usize) -> &str {
    let n = t[i.min(t.len())..]
        .iter()
        .take_while(|&&c| is_ident(c))
        .count();
    std::str::from_utf8(&t[i..i + n]).unwrap_or("")
}

fn skip_ws(t: &[u8], mut i: usize) -> usize {
    while i < t.len() && t[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// A use tree (or an expression's path) from `i`: every path it names, each with
/// where its own part starts, and where the tree ends. `a::{b, c::{d, e as f}, *}`
/// is `a::b`, `a::c::d`, `a::c::e`, `a`.
fn tree(t: &[u8], i: usize) -> (Vec<(Vec<String>, usize)>, usize) {
    let mut prefix: Vec<String> = vec![];
    let mut i = skip_ws(t, i);
    let start = i;
    loop {
        if t.get(i) == Some(&b'{') {
            let mut all = vec![];
            i += 1;
            loop {
                i = skip_ws(t, i);
                match t.get(i) {
                    None => return (all, i),
                    Some(b'}') => return (all, i + 1),
                    Some(b',') => {
                        i += 1;
                        continue;
                    }
                    _ => {}
                }
                let (subs, end) = tree(t, i);
                for (s, at) in subs {
                    all.push((prefix.iter().cloned().chain(s).collect(), at));
                }
                i = skip_ws(t, end.max(i + 1));
                if ident_at(t, i) == "as" {
                    i = skip_ws(t, i + 2);
                    i += ident_at(t, i).len();
                }
            }
        }
        let word = ident_at(t, i);
        if word.is_empty() {
            // `*`, or the end of the path.
            let end = if t.get(i) == Some(&b'*') { i + 1 } else { i };
            return (vec![(prefix, start)], end);
        }
        if word != "self" || prefix.is_empty() {
            prefix.push(word.to_string());
        }
        i += word.len();
        let j = skip_ws(t, i);
        if !t[j..].starts_with(b"::") {
            return (vec![(prefix, start)], i);
        }
        i = skip_ws(t, j + 2);
    }
}

/// `path` as written in module `here`, from the crate's root.
fn resolve(here: &[String], path: &[String]) -> Vec<String> {
    let mut base: Vec<String> = here.to_vec();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        _ => {}
    }
    while rest.first().is_some_and(|s| s == "super") {
        base.pop();
        rest = &rest[1..];
    }
    base.extend(rest.iter().cloned());
    base
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

/// Every `unsafe` in `src` (code, not comments or strings) without a `// SAFETY:`
/// comment on its line or in the comment lines right above it (or above the
/// statement it starts on, up to two lines up): their line numbers.
fn unsafe_without_safety(src: &str) -> Vec<usize> {
    let text = clean(src);
    let raw: Vec<&str> = src.lines().collect();
    let mut bad = vec![];
    for (n, line) in text.lines().enumerate() {
        let has = line
            .split(|c: char| !c.is_alphanumeric() && c != '_')
            .any(|w| w == "unsafe");
        if !has {
            continue;
        }
        let mut explained = raw[n].contains("SAFETY:");
        let mut k = n;
        let mut code_lines = 0;
        while !explained && k > 0 && code_lines <= 2 {
            k -= 1;
            let l = raw[k].trim_start();
            if l.starts_with("//") {
                explained = l.contains("SAFETY:");
            } else if l.ends_with(';') || l.ends_with('}') || l.is_empty() {
                break;
            } else {
                code_lines += 1;
            }
        }
        if !explained {
            bad.push(n + 1);
        }
    }
    bad
}

#[test]
fn every_unsafe_says_why_it_is_sound() {
    let mut bad = vec![];
    for f in files(&src()) {
        for n in unsafe_without_safety(&std::fs::read_to_string(&f).unwrap()) {
            bad.push(format!("{}:{n}", f.display()));
        }
    }
    assert!(
        bad.is_empty(),
        "`unsafe` without a `// SAFETY:` comment:\n{}",
        bad.join("\n")
    );
}

/// The longest a function may be, in lines from `fn` to its closing brace.
const MAX_FN_LINES: usize = 120;

/// Every function in `src` longer than `max` lines: (name, first line, lines).
fn long_functions(src: &str, max: usize) -> Vec<(String, usize, usize)> {
    let text = clean(src);
    let t = text.as_bytes();
    let line_of = |at: usize| t[..at].iter().filter(|&&c| c == b'\n').count() + 1;
    let mut out = vec![];
    let mut i = 0;
    while i < t.len() {
        let starts = is_ident(t[i]) && (i == 0 || !is_ident(t[i - 1]));
        if !starts {
            i += 1;
            continue;
        }
        let word = ident_at(t, i);
        if word != "fn" {
            i += word.len();
            continue;
        }
        let name_at = skip_ws(t, i + 2);
        let name = ident_at(t, name_at).to_string();
        // The body: the first `{` before any `;` (a declaration has none).
        let Some(open) = t[name_at..]
            .iter()
            .position(|&c| c == b'{' || c == b';')
            .map(|p| name_at + p)
            .filter(|&p| t[p] == b'{')
        else {
            i = name_at;
            continue;
        };
        let mut depth = 0;
        let mut close = open;
        for (k, &c) in t.iter().enumerate().skip(open) {
            match c {
                b'{' => depth += 1,
                b'}' => depth -= 1,
                _ => continue,
            }
            if depth == 0 {
                close = k;
                break;
            }
        }
        let (first, last) = (line_of(i), line_of(close));
        if last - first + 1 > max {
            out.push((name, first, last - first + 1));
        }
        i = name_at;
    }
    out
}

#[test]
fn no_function_is_longer_than_the_limit() {
    let mut bad = vec![];
    for f in files(&src()) {
        let rel = f
            .strip_prefix(src())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let source = std::fs::read_to_string(&f).unwrap();
        for (name, line, n) in long_functions(&source, MAX_FN_LINES) {
            bad.push(format!("src/{rel}:{line}: fn {name} is {n} lines"));
        }
    }
    assert!(
        bad.is_empty(),
        "functions longer than {MAX_FN_LINES} lines (split them into named steps):\n{}",
        bad.join("\n")
    );
}

/// The checks above on small sources: each catches what it claims to.
mod checks_catch_violations {
    use super::*;

    fn m(p: &str) -> Vec<String> {
        p.split("::").map(String::from).collect()
    }

    fn rules() -> BTreeMap<String, BTreeSet<String>> {
        let mut r = BTreeMap::new();
        r.insert("model".into(), BTreeSet::new());
        r.insert("exec".into(), ["model".to_string()].into());
        r.insert("plan".into(), ["model".to_string()].into());
        r
    }

    fn violations(module: &str, src: &str) -> Vec<String> {
        let module = m(module);
        import_violations(&rules(), "f.rs", &module, &refs(&module, src))
    }

    #[test]
    fn a_multi_line_use_group_is_read() {
        let src = "use crate::{\n    model::Cmd,\n    exec::{self, Executor},\n};\n";
        assert_eq!(violations("plan::x", src), ["f.rs:3: `plan` uses `exec`"]);
    }

    #[test]
    fn super_paths_are_resolved() {
        // plan/stages/build.rs: `super::super::` is `plan`, one more is the root.
        let ok = "use super::super::render;\nuse super::Stage;\n";
        assert!(violations("plan::stages::build", ok).is_empty());
        let bad = "fn f() {\n    super::super::super::exec::run();\n}\n";
        assert_eq!(
            violations("plan::stages::build", bad),
            ["f.rs:2: `plan` uses `exec`"]
        );
        // From a mod.rs, `super::` is the root already.
        assert_eq!(
            violations("plan", "use super::exec::Executor;"),
            ["f.rs:1: `plan` uses `exec`"]
        );
        // `super::*` in a file's tests is the file itself.
        let tests = "mod tests {\n    use super::*;\n    use super::super::x;\n}\n";
        assert!(violations("plan::a", tests).is_empty());
    }

    #[test]
    fn paths_in_expressions_count_and_comments_and_strings_do_not() {
        let src = "fn f() {\n    let s = \"crate::exec\"; // crate::exec\n    /* crate::exec */\n    let x = crate::exec::backoff(1);\n}\n";
        assert_eq!(violations("plan::a", src), ["f.rs:4: `plan` uses `exec`"]);
        assert_eq!(
            violations("plan::a", "let c = '\"'; crate::exec::x();").len(),
            1
        );
        assert!(violations("plan::a", "pub(crate) fn f() {}").is_empty());
    }

    #[test]
    fn cycles_are_found_in_the_code() {
        let lib = vec![
            (
                m("cli::dev"),
                refs(&m("cli::dev"), "use super::dispatch::run;"),
            ),
            (
                m("cli::dispatch"),
                refs(&m("cli::dispatch"), "fn f() { super::dev::main(); }"),
            ),
            (
                m("cli"),
                refs(&m("cli"), "mod dev; mod dispatch; use dispatch::run;"),
            ),
            (m("model"), refs(&m("model"), "use crate::report::Line;")),
            (
                m("report"),
                refs(&m("report"), "use crate::model::{\n  Event,\n};"),
            ),
            (m("plan"), refs(&m("plan"), "use crate::model::Cmd;")),
        ];
        let (top, files) = graphs(&lib);
        assert_eq!(
            cycles(&top),
            [vec!["model".to_string(), "report".into()]].into()
        );
        assert!(cycles(&files).contains(&vec!["cli::dev".to_string(), "cli::dispatch".into()]));
        // A parent and its child are not a cycle.
        let family = vec![
            (
                m("plan"),
                refs(&m("plan"), "use crate::plan::render::step;"),
            ),
            (
                m("plan::render"),
                refs(&m("plan::render"), "use super::Plan;"),
            ),
        ];
        assert!(cycles(&graphs(&family).1).is_empty());
    }

    #[test]
    fn an_unsafe_without_a_safety_comment_is_found() {
        let src = "fn a() {\n    // SAFETY: the pid is ours.\n    unsafe { kill(1) };\n    let x =\n        unsafe { geteuid() };\n    // unsafe in a comment, \"unsafe\" in a string\n}\n";
        assert_eq!(unsafe_without_safety(src), [5]);
    }

    #[test]
    fn a_long_function_is_found() {
        let body = "    let x = 1;\n".repeat(5);
        let src = format!("fn short() {{\n{body}}}\n\nfn long(a: u8) -> u8 {{\n{body}{body}    let s = \"}}\";\n}}\ntrait T {{ fn decl(&self); }}\n");
        assert_eq!(long_functions(&src, 8), [("long".to_string(), 9, 13)]);
    }
}

#[test]
fn only_exec_opens_connections() {
    let bad = offenders(
        &[
            "ureq::Agent",
            "ureq::get",
            "ureq::post",
            ".call()",
            "TcpStream",
            "UnixStream",
            "to_socket_addrs",
            "agent.run(",
        ],
        &["exec"],
    );
    assert!(
        bad.is_empty(),
        "a network call outside exec::net (invariant 2):\n{}",
        bad.join("\n")
    );
}
