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

#[test]
fn every_malformed_pipeline_reports_its_errors() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("bad-"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 60,
        "the corpus keeps at least 60 malformed files, found {}",
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
                for e in &expects {
                    if !shown.contains(e) {
                        failures.push(format!("{name}: missing {e:?} in:\n{shown}"));
                    }
                }
                // Messages (not hints/locations) each count once: no extra noise.
                let messages = expects
                    .iter()
                    .filter(|e| {
                        !e.starts_with("did you mean")
                            && (!e.contains(".toml:") || e.contains("error:"))
                    })
                    .count();
                if errs.0.len() != messages {
                    failures.push(format!(
                        "{name}: expected {messages} error(s), got {}:\n{shown}",
                        errs.0.len()
                    ));
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
