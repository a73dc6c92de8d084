//! Tier 1: what issue #23 asked of steps, checked against the source. Each kind of
//! step owns what its commands' output means (`plan::steps`), so the runner reads no
//! pipeline config (the plan already decided) and calls no tool's output parser; the
//! two places that hand a step to its file stay small. (No function in `src` is
//! over 120 lines: `tidy.rs`, `no_function_is_longer_than_the_limit`.)

use std::path::Path;

use crate::tidy::{files, src};

fn rel(file: &Path) -> String {
    file.strip_prefix(src())
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// The source with comments, string and char literals blanked out (each replaced
/// by spaces, newlines kept), so braces and paths in them do not count.
fn code_only(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |out: &mut String, ch: char| out.push(if ch == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < c.len() {
        if c[i] == '/' && at(&c, i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                blank(&mut out, c[i]);
                i += 1;
            }
        } else if c[i] == '/' && at(&c, i + 1) == '*' {
            let mut depth = 0;
            loop {
                if i >= c.len() {
                    break;
                }
                if c[i] == '/' && at(&c, i + 1) == '*' {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && at(&c, i + 1) == '/' {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
        } else if c[i] == 'r'
            && (at(&c, i + 1) == '"'
                || (at(&c, i + 1) == '#' && !is_ident(c.get(i.wrapping_sub(1)).copied())))
            && !is_ident(c.get(i.wrapping_sub(1)).copied())
        {
            // A raw string: r"…", r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if c.get(j) != Some(&'"') {
                out.push(c[i]);
                i += 1;
                continue;
            }
            j += 1;
            while j < c.len() && !(c[j] == '"' && (1..=hashes).all(|k| c.get(j + k) == Some(&'#')))
            {
                j += 1;
            }
            let end = (j + 1 + hashes).min(c.len());
            for &ch in &c[i..end] {
                blank(&mut out, ch);
            }
            i = end;
        } else if c[i] == '"' {
            blank(&mut out, c[i]);
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    blank(&mut out, c[i]);
                    i += 1;
                }
                if i < c.len() {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
            if i < c.len() {
                blank(&mut out, c[i]);
                i += 1;
            }
        } else if c[i] == '\'' && (at(&c, i + 1) == '\\' || at(&c, i + 2) == '\'') {
            // A char literal ('x', '\n', '\u{..}'); a lifetime ('a) is left alone.
            let mut j = i + 1;
            if c[j] == '\\' {
                j += 1;
            }
            j += 1;
            while j < c.len() && c[j] != '\'' {
                j += 1;
            }
            for &ch in &c[i..=j.min(c.len() - 1)] {
                blank(&mut out, ch);
            }
            i = j + 1;
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

fn at(c: &[char], i: usize) -> char {
    c.get(i).copied().unwrap_or('\0')
}

fn is_ident(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || c == '_')
}

/// Every function with a body in a file: its name and length in lines.
fn functions(text: &str) -> Vec<(String, usize)> {
    let code = code_only(text);
    let c: Vec<char> = code.chars().collect();
    let mut out = vec![];
    let mut i = 0;
    while i + 2 < c.len() {
        let starts = c[i] == 'f'
            && c[i + 1] == 'n'
            && c[i + 2].is_whitespace()
            && !is_ident(i.checked_sub(1).map(|k| c[k]));
        if !starts {
            i += 1;
            continue;
        }
        let mut j = i + 2;
        while j < c.len() && c[j].is_whitespace() {
            j += 1;
        }
        let name: String = c[j..]
            .iter()
            .take_while(|ch| is_ident(Some(**ch)))
            .collect();
        // The body's `{`, or the `;` of a declaration (outside parentheses and
        // brackets: `[u8; 4]`).
        let mut depth = 0i32;
        while j < c.len() {
            match c[j] {
                '(' | '[' => depth += 1,
                ')' | ']' => depth -= 1,
                '{' | ';' if depth == 0 => break,
                _ => {}
            }
            j += 1;
        }
        if j >= c.len() || c[j] == ';' {
            i = j;
            continue;
        }
        let mut braces = 0;
        let mut k = j;
        while k < c.len() {
            match c[k] {
                '{' => braces += 1,
                '}' => {
                    braces -= 1;
                    if braces == 0 {
                        break;
                    }
                }
                _ => {}
            }
            k += 1;
        }
        let lines = c[i..=k.min(c.len() - 1)]
            .iter()
            .filter(|ch| **ch == '\n')
            .count()
            + 1;
        out.push((name, lines));
        // Nested functions are measured too.
        i = j;
    }
    out
}

#[test]
fn the_length_check_counts_what_it_should() {
    let text = "fn a() {\n    let s = \"}\"; // }\n    let c = '}';\n    let r = r#\"{\"#;\n}\nfn b(x: [u8; 2]) -> u8 {\n    fn inner<'a>(y: &'a str) -> &'a str { y }\n    x[0]\n}\ntrait T { fn d(&self); }\n";
    assert_eq!(
        functions(text),
        vec![
            ("a".to_string(), 5),
            ("b".to_string(), 4),
            ("inner".to_string(), 1),
        ]
    );
}

/// The `use crate::…;` statements of a file's code, each as one line.
fn uses(code: &str) -> Vec<String> {
    let mut out = vec![];
    let mut rest = code;
    while let Some(at) = rest.find("use ") {
        let before = rest[..at].chars().last();
        let tail = &rest[at..];
        let end = tail.find(';').unwrap_or(tail.len());
        if !is_ident(before) {
            out.push(tail[..end].split_whitespace().collect::<Vec<_>>().join(" "));
        }
        rest = &tail[end.min(tail.len())..];
        if rest.is_empty() {
            break;
        }
        rest = &rest[1.min(rest.len())..];
    }
    out
}

/// `name::` where `name` is a whole identifier.
fn paths_into(code: &str, name: &str) -> usize {
    let pat = format!("{name}::");
    code.match_indices(&pat)
        .filter(|(at, _)| !is_ident(code[..*at].chars().last()))
        .count()
}

fn run_files() -> Vec<(String, String)> {
    files(&src().join("run"))
        .into_iter()
        .map(|f| (rel(&f), code_only(&std::fs::read_to_string(&f).unwrap())))
        .collect()
}

#[test]
fn the_runner_reads_no_pipeline_config() {
    let mut found = vec![];
    for (path, code) in run_files() {
        let n = paths_into(&code, "config");
        if n > 0 {
            found.push(format!("{path}: {n} path(s) into config"));
        }
        for u in uses(&code) {
            let group = u.contains("crate::{") || u.contains("super::{");
            if group && u.split(|c: char| !is_ident(Some(c))).any(|w| w == "config") {
                found.push(format!("{path}: {u}"));
            }
        }
        // The config's type, by its own name (a variant such as
        // `GuardRule::Pipeline` is the plan's).
        let named = code.match_indices("Pipeline").any(|(at, _)| {
            !is_ident(code[..at].chars().last())
                && !code[..at].ends_with("::")
                && !is_ident(code[at + "Pipeline".len()..].chars().next())
        });
        if named {
            found.push(format!("{path}: names Pipeline"));
        }
    }
    assert!(
        found.is_empty(),
        "run/ reads the pipeline config; the plan has decided: put what the runner needs into the plan's data:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_runner_calls_no_tool_output_parser() {
    // The tool modules: `tools/<name>.rs` or `tools/<name>/mod.rs`.
    let mut modules: Vec<String> = vec!["tools".into()];
    for e in std::fs::read_dir(src().join("tools")).unwrap() {
        let p = e.unwrap().path();
        let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
        if stem != "mod" {
            modules.push(stem);
        }
    }
    assert!(modules.iter().any(|m| m == "kubectl"), "{modules:?}");
    let mut found = vec![];
    for (path, code) in run_files() {
        for m in &modules {
            let pat = format!("{m}::parse");
            for (at, _) in code.match_indices(&pat) {
                if !is_ident(code[..at].chars().last()) {
                    let line = code[..at].matches('\n').count() + 1;
                    found.push(format!("{path}:{line}: {m}::parse…"));
                }
            }
        }
        for u in uses(&code).iter().filter(|u| u.contains("tools")) {
            if u.split(|c: char| !is_ident(Some(c)))
                .any(|w| w.starts_with("parse"))
            {
                found.push(format!("{path}: {u}"));
            }
        }
    }
    assert!(
        found.is_empty(),
        "run/ calls a tool's output parser; let the plan step's verdict read the output:\n{}",
        found.join("\n")
    );
}

/// The runner's two entry points into a step stay small: what a step does is in
/// its own files.
#[test]
fn the_step_dispatchers_are_short() {
    for (file, name) in [("plan/render.rs", "step"), ("run/mod.rs", "step")] {
        let text = std::fs::read_to_string(src().join(file)).unwrap();
        let lines = functions(&text)
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, l)| l)
            .unwrap_or_else(|| panic!("no fn {name} in {file}"));
        assert!(
            lines <= 40,
            "{file}: fn {name} is {lines} lines (at most 40)"
        );
    }
}
