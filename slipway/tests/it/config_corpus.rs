//! Tier 1: every malformed pipeline in tests/corpus produces exactly the errors its
//! `# expect:` lines name (and no others), and the valid one loads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use slipway::config::{self, LoadOptions, Vars};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn load(file: &Path, profile: Option<String>) -> Result<config::Pipeline, config::ConfigErrors> {
    let vars = Vars::new(
        BTreeMap::from([("HOME_REGION".into(), "eu".into())]),
        BTreeMap::new(),
    );
    config::load(&LoadOptions {
        file: file.to_path_buf(),
        profile,
        vars: Some(vars),
    })
}

#[test]
fn valid_pipeline_loads() {
    let p = load(&corpus().join("ok.toml"), None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.project.name, "corpus");
    assert_eq!(p.profile, "local-kind");
    assert_eq!(p.images.len(), 1);
    assert_eq!(p.releases[0].name, "app");
    let ci = load(&corpus().join("ok.toml"), Some("ci".into())).unwrap();
    assert_eq!(ci.cluster.name, "ci", "the profile overrides the base");
    assert_eq!(ci.cluster.kube_context(), "kind-ci");
}

/// One `# expect:` line of a corpus file: `LINE:COL: MESSAGE` (the error's location
/// is the key it is about), `-:-: MESSAGE` (an error about the file as a whole), or
/// free text that the printed errors contain (a hint, a `file:line:col`).
enum Expect<'a> {
    At(Option<(usize, usize)>, &'a str),
    Shown(&'a str),
}

fn parse_expect(e: &str) -> Expect<'_> {
    if let Some(rest) = e.strip_prefix("-:-: ") {
        return Expect::At(None, rest);
    }
    let mut parts = e.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(l), Some(c), Some(rest)) if rest.starts_with(' ') => {
            match (l.parse::<usize>(), c.parse::<usize>()) {
                (Ok(l), Ok(c)) => Expect::At(Some((l, c)), &rest[1..]),
                _ => Expect::Shown(e),
            }
        }
        _ => Expect::Shown(e),
    }
}

#[test]
fn every_malformed_pipeline_reports_its_errors() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("bad-"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 80,
        "the corpus keeps at least 80 malformed files, found {}",
        files.len()
    );
    let mut failures = vec![];
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let expects: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .collect();
        let profile = text
            .lines()
            .find_map(|l| l.strip_prefix("# profile: "))
            .map(String::from);
        assert!(
            !expects.is_empty(),
            "{} has no `# expect:` lines",
            f.display()
        );
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        match load(f, profile) {
            Ok(_) => failures.push(format!("{name}: loaded without errors")),
            Err(errs) => {
                let shown = errs.to_string();
                // Every error is expected, at its key's line and column, exactly once:
                // no extra noise, no error located only at its table.
                let mut unmatched: Vec<&config::Diagnostic> = errs.0.iter().collect();
                for e in &expects {
                    match parse_expect(e) {
                        Expect::Shown(text) => {
                            if !shown.contains(text) {
                                failures.push(format!("{name}: missing {text:?} in:\n{shown}"));
                            }
                        }
                        Expect::At(at, message) => {
                            let found = unmatched.iter().position(|d| {
                                d.message.contains(message)
                                    && d.location.as_ref().map(|l| (l.line, l.col)) == at
                            });
                            match found {
                                Some(i) => {
                                    unmatched.remove(i);
                                }
                                None => failures.push(format!(
                                    "{name}: no error {message:?} at {} in:\n{shown}",
                                    at.map_or("no location".into(), |(l, c)| format!("{l}:{c}"))
                                )),
                            }
                        }
                    }
                }
                for d in unmatched {
                    failures.push(format!("{name}: unexpected error: {d}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Thousands of unknown keys: every one reported once, each at its own line (locating
/// is a map lookup per error, so this stays linear).
#[test]
fn many_unknown_keys_are_each_located() {
    let dir = tempfile::tempdir().unwrap();
    let n = 3000;
    let mut text = String::from("[project]\nname = \"many\"\n");
    for i in 0..n {
        text.push_str(&format!("typo_{i} = 1\n"));
    }
    let f = dir.path().join("pipeline.toml");
    std::fs::write(&f, &text).unwrap();
    let errs = load(&f, None).expect_err("unknown keys are errors");
    assert_eq!(errs.0.len(), n);
    for (i, e) in errs.0.iter().enumerate() {
        assert!(
            e.message.contains(&format!("unknown key `typo_{i}`")),
            "{}",
            e.message
        );
        assert_eq!(e.location.as_ref().map(|l| l.line), Some(i + 3), "{e}");
    }
}

/// A values file that is gitignored and not made yet, next to its committed example:
/// the error says which file to copy.
#[test]
fn a_missing_local_overlay_points_at_its_example() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("chart")).unwrap();
    std::fs::write(
        d.join("chart/Chart.yaml"),
        "apiVersion: v2\nname: c\nversion: 0.1.0\n",
    )
    .unwrap();
    std::fs::write(d.join("values.local.yaml.example"), "replicas: 1\n").unwrap();
    std::fs::write(
        d.join("pipeline.toml"),
        "[project]\nname = \"t\"\n[releases.app]\nchart = \"chart\"\nvalues = [\"values.local.yaml\", \"values.prod.yaml\"]\n",
    )
    .unwrap();
    let shown = load(&d.join("pipeline.toml"), None)
        .unwrap_err()
        .to_string();
    let example = d.join("values.local.yaml.example");
    assert!(
        shown.contains(&format!(
            "hint: start from the committed example: cp {} {}",
            example.display(),
            d.join("values.local.yaml").display()
        )),
        "{shown}"
    );
    // No example, no hint.
    assert_eq!(shown.matches("hint:").count(), 1, "{shown}");
    assert!(
        shown.contains("values file values.prod.yaml does not exist"),
        "{shown}"
    );
}

/// A build context (or input) that leaves the repository through a symlink — to `/`,
/// or to the repository's parent — is refused at its key; a symlink that stays inside
/// is fine. (The corpus covers `..` and absolute paths; a symlink to `/` is made here
/// rather than committed.)
#[test]
fn a_context_that_leaves_through_a_symlink_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let d = repo.as_path();
    std::fs::create_dir_all(d.join(".git")).unwrap();
    std::fs::create_dir_all(d.join("app")).unwrap();
    std::fs::create_dir_all(d.join("chart")).unwrap();
    std::fs::write(d.join("app/Dockerfile"), "FROM scratch\n").unwrap();
    std::fs::write(
        d.join("chart/Chart.yaml"),
        "apiVersion: v2\nname: c\nversion: 0.1.0\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("/", d.join("root")).unwrap();
    std::os::unix::fs::symlink("..", d.join("up")).unwrap();
    std::os::unix::fs::symlink("app", d.join("inside")).unwrap();
    std::fs::write(
        d.join("pipeline.toml"),
        "[project]\nname = \"t\"\n\
         [images.a]\ncontext = \"root\"\ndockerfile = \"app/Dockerfile\"\n\
         [images.b]\ncontext = \"up\"\ndockerfile = \"app/Dockerfile\"\n\
         [images.c]\ncontext = \"inside\"\ninputs = [\"inside/Dockerfile\", \"root/etc\"]\n\
         [releases.app]\nchart = \"chart\"\n",
    )
    .unwrap();
    let errs = load(&d.join("pipeline.toml"), None).expect_err("contexts leave the repo");
    let got: Vec<(usize, usize, &str)> = errs
        .0
        .iter()
        .map(|e| {
            let l = e.location.as_ref().expect("located");
            (l.line, l.col, e.message.as_str())
        })
        .collect();
    assert_eq!(got.len(), 3, "{errs}");
    assert_eq!((got[0].0, got[0].1), (4, 1), "{errs}");
    assert!(
        got[0].2.starts_with(
            "image `a`: build context root is outside the repository: it resolves to /,"
        ),
        "{errs}"
    );
    assert_eq!((got[1].0, got[1].1), (7, 1), "{errs}");
    assert!(
        got[1]
            .2
            .starts_with("image `b`: build context up is outside the repository"),
        "{errs}"
    );
    assert_eq!((got[2].0, got[2].1), (11, 32), "{errs}");
    assert!(
        got[2]
            .2
            .starts_with("image `c`: input root/etc is outside the repository"),
        "{errs}"
    );
}
