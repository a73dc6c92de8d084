//! Tier 1: the documentation against the code. The exit-code table in docs/guide.md
//! is `model::exit::table()` (and `--help` lists it too); every key the config model
//! accepts is in docs/pipeline-reference.md and every key there is accepted;
//! README.md stays a front door (short, its first command on screen one); every
//! relative link in README.md, CONTRIBUTING.md, ARCHITECTURE.md and docs/ resolves to
//! a file and, with `#anchor`, to a heading in it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::support::repo;

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The lines of a Markdown text outside fenced code blocks, with their line numbers.
fn prose(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut out = vec![];
    for (i, l) in text.lines().enumerate() {
        if l.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            out.push((i + 1, l));
        }
    }
    out
}

/// The cells of a Markdown table row.
fn cells(row: &str) -> Vec<&str> {
    row.trim()
        .trim_matches('|')
        .split('|')
        .map(str::trim)
        .collect()
}

#[test]
fn guide_and_help_list_exactly_the_exit_codes() {
    let table = slipway::model::exit::table();
    let guide = read("docs/guide.md");
    let section = guide
        .split("\n## Exit codes")
        .nth(1)
        .expect("docs/guide.md has a `## Exit codes` section");
    let rows: Vec<(i32, String)> = section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| {
            let c = cells(l);
            Some((c.first()?.parse().ok()?, c.get(1)?.to_string()))
        })
        .collect();
    let want: Vec<(i32, String)> = table.iter().map(|(c, m)| (*c, m.to_string())).collect();
    assert_eq!(
        rows, want,
        "docs/guide.md's exit-code table is model::exit::table()"
    );

    let help = std::process::Command::new(env!("CARGO_BIN_EXE_slipway"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for (code, meaning) in &table {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{code} ")) && l.contains(meaning)),
            "--help lacks exit code {code} ({meaning}):\n{help}"
        );
    }
}

/// A key path with the segments that are names the pipeline chooses (`*` in the
/// code, `NAME`/`SECRET` in the docs) left out: `images.NAME.pre_build.command` and
/// `images.*.pre_build.command` are both `images.pre_build.command`.
fn normal(path: &str) -> String {
    path.split('.')
        .filter(|s| *s != "*" && !(s.len() > 1 && s.chars().all(|c| c.is_ascii_uppercase())))
        .collect::<Vec<_>>()
        .join(".")
}

/// The keys docs/pipeline-reference.md documents: under each heading that names a
/// table (`` ## `[images.NAME]` ``), the first cell of every row of a table whose
/// header's first cell is `key`, each backticked name in it a key relative to that
/// table. Returns the normalized path and the line it is on.
fn documented_keys(text: &str) -> Vec<(String, usize)> {
    let mut out = vec![];
    let mut section: Option<String> = None;
    let mut in_key_table = false;
    for (n, l) in prose(text) {
        if l.starts_with('#') {
            in_key_table = false;
            section = l
                .split('`')
                .nth(1)
                .filter(|t| t.starts_with('['))
                .map(|t| t.trim_matches(|c| c == '[' || c == ']').to_string());
            continue;
        }
        if !l.starts_with('|') {
            in_key_table = false;
            continue;
        }
        let c = cells(l);
        if c.first() == Some(&"key") {
            in_key_table = true;
            continue;
        }
        if !in_key_table || c.iter().all(|x| x.chars().all(|ch| ch == '-' || ch == ' ')) {
            continue;
        }
        let Some(sec) = &section else {
            panic!("docs/pipeline-reference.md:{n}: a key table outside a `[table]` heading");
        };
        for key in c[0].split('`').skip(1).step_by(2) {
            out.push((normal(&format!("{sec}.{key}")), n));
        }
    }
    out
}

#[test]
fn the_reference_documents_exactly_the_keys_the_config_accepts() {
    let accepted = slipway::config::accepted_keys();
    assert!(
        accepted.len() > 50,
        "accepted_keys() is suspiciously short: {accepted:?}"
    );
    let all: BTreeSet<String> = accepted.iter().map(|(k, _)| normal(k)).collect();
    let leaves: BTreeSet<String> = accepted
        .iter()
        .filter(|(_, table)| !table)
        .map(|(k, _)| normal(k))
        .collect();
    let text = read("docs/pipeline-reference.md");
    let documented = documented_keys(&text);
    let doc_set: BTreeSet<&str> = documented.iter().map(|(k, _)| k.as_str()).collect();

    let missing: Vec<&String> = leaves
        .iter()
        .filter(|k| !doc_set.contains(k.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "keys pipeline.toml accepts that docs/pipeline-reference.md does not document \
         (add each to the `key` table of its section): {missing:?}"
    );
    let unknown: Vec<String> = documented
        .iter()
        .filter(|(k, _)| !all.contains(k))
        .map(|(k, n)| format!("docs/pipeline-reference.md:{n}: {k}"))
        .collect();
    assert!(
        unknown.is_empty(),
        "keys docs/pipeline-reference.md documents that pipeline.toml does not accept:\n{}",
        unknown.join("\n")
    );
}

#[test]
fn the_key_parser_sees_what_the_reference_writes() {
    // The parser above, on the shapes the reference uses: a nested key, several keys
    // in one cell, a non-key table and a name placeholder.
    let text = "## `[releases.NAME]`\n\n| key | default | meaning |\n| --- | --- | --- |\n\
                | `set` / `set_string` | `{}` | x |\n| `secrets.SECRET.from_env` | `{}` | `not_a_key` |\n\n\
                | profile | what |\n| --- | --- |\n| `local-kind` | x |\n";
    let keys: Vec<String> = documented_keys(text).into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        [
            "releases.set",
            "releases.set_string",
            "releases.secrets.from_env"
        ]
    );
}

#[test]
fn readme_is_a_front_door() {
    let readme = read("README.md");
    let lines = readme.lines().count();
    assert!(
        lines <= 250,
        "README.md has {lines} lines; keep it at most 250 and move the rest to docs/"
    );
    let first_sh = readme
        .lines()
        .position(|l| l.trim() == "```sh")
        .expect("README.md has a ```sh block");
    assert!(
        first_sh < 40,
        "README.md's first command block starts at line {}: keep it within the first 40",
        first_sh + 1
    );
    let block: Vec<&str> = readme
        .lines()
        .skip(first_sh + 1)
        .take_while(|l| l.trim() != "```")
        .collect();
    assert!(
        block.iter().any(|l| l.trim() == "cargo xtask deploy-local")
            && block.iter().any(|l| l.starts_with("cp .env.example .env")),
        "README.md's first command block is the main job (cp .env.example .env, cargo xtask deploy-local): {block:?}"
    );
    // The same two lines .ci/run's fresh-machine phase runs.
    let ci = read(".ci/run");
    assert!(
        ci.contains("\n  cp .env.example .env\n") && ci.contains(" cargo xtask deploy-local\n"),
        ".ci/run's fresh-machine phase no longer runs README's two lines"
    );
}

/// GitHub's anchor for a heading: lowercase, punctuation other than `-` and `_`
/// dropped, spaces as `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown file's headings (a repeated one gets `-1`, `-2`, …).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    for (_, l) in prose(text) {
        let Some(h) = l.strip_prefix('#') else {
            continue;
        };
        let h = h.trim_start_matches('#');
        if !h.starts_with(' ') {
            continue;
        }
        let s = slug(h);
        let n = seen.entry(s.clone()).or_default();
        out.insert(if *n == 0 {
            s.clone()
        } else {
            format!("{s}-{n}")
        });
        *n += 1;
    }
    out
}

/// The targets of `[text](target)` links on a line, outside inline code.
fn link_targets(line: &str) -> Vec<String> {
    let mut out = vec![];
    for (i, part) in line.split('`').enumerate() {
        if i % 2 == 1 {
            continue;
        }
        let mut rest = part;
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else {
                break;
            };
            out.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    out
}

fn doc_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = ["README.md", "CONTRIBUTING.md", "ARCHITECTURE.md"]
        .iter()
        .map(|f| repo().join(f))
        .collect();
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .expect("docs/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

fn broken_links(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let name = file
        .strip_prefix(repo())
        .unwrap_or(file)
        .display()
        .to_string();
    let mut bad = vec![];
    for (n, line) in prose(&text) {
        for target in link_targets(line) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = match target.split_once('#') {
                Some((p, a)) => (p, Some(a)),
                None => (target.as_str(), None),
            };
            let to = if path.is_empty() {
                file.to_path_buf()
            } else {
                file.parent().unwrap().join(path)
            };
            if !to.exists() {
                bad.push(format!("{name}:{n}: {target}: no such file"));
                continue;
            }
            if let Some(a) = anchor {
                let body = std::fs::read_to_string(&to).unwrap_or_default();
                if !anchors(&body).contains(a) {
                    bad.push(format!("{name}:{n}: {target}: no heading with that anchor"));
                }
            }
        }
    }
    bad
}

#[test]
fn every_relative_link_in_the_docs_resolves() {
    let files = doc_files();
    assert!(files.len() >= 10, "{files:?}");
    let bad: Vec<String> = files.iter().flat_map(|f| broken_links(f)).collect();
    assert!(bad.is_empty(), "broken links:\n{}", bad.join("\n"));
}

#[test]
fn the_link_checker_finds_a_broken_link() {
    assert_eq!(
        slug("`[images.NAME]`"),
        "imagesname",
        "GitHub's anchor for a table heading"
    );
    assert_eq!(
        slug("The sample service — and the template to copy"),
        "the-sample-service--and-the-template-to-copy"
    );
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.md");
    std::fs::write(
        &f,
        "# Top\n\n## Two words\n\n[ok](#two-words) [file](a.md#top) `[code](nowhere.md)`\n\
         [gone](b.md) [no anchor](#three)\n```\n[fenced](nowhere.md)\n```\n",
    )
    .unwrap();
    let bad = broken_links(&f);
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(bad[0].ends_with("b.md: no such file"), "{bad:?}");
    assert!(
        bad[1].ends_with("#three: no heading with that anchor"),
        "{bad:?}"
    );
}
