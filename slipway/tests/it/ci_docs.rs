//! Tier 2: the CI jobs docs/ci.md and examples/ci/ hand to users, run as written.
//! Each job's `slipway` commands run (bash, in the job's working directory) with fake
//! tools on PATH and the variables the CI system sets (`GITHUB_ACTIONS`, `GITLAB_CI`,
//! `GITHUB_STEP_SUMMARY`, `CI_PROJECT_DIR`) plus the job's own; a command of a job that
//! this test does not know how to run fails it. Then what the job keeps must be where
//! it looks: the JUnit report and the diagnosis bundle at the paths it uploads, the
//! cache directory at the path it caches, the stages folded as the host folds them
//! and the failures annotated.

use std::collections::BTreeMap;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use serde_norway::Value;

use crate::fake_tools::STAGES;
use crate::support::{repo, Sandbox};

/// A job as the test runs it.
#[derive(Debug)]
struct Job {
    name: String,
    host: Host,
    env: BTreeMap<String, String>,
    /// The command lines, in order.
    commands: Vec<String>,
    /// Paths it keeps: artifacts (and reports), the cache.
    uploads: Vec<String>,
    junit_report: Option<String>,
    cache: Vec<String>,
    cache_key: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Host {
    GitHub,
    GitLab,
}

/// The fenced ```yaml blocks of docs/ci.md whose first line names `file`.
fn doc_block(file: &str) -> String {
    let text = std::fs::read_to_string(repo().join("docs/ci.md")).unwrap();
    let mut blocks = text
        .split("```yaml\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap());
    blocks
        .find(|b| b.lines().next() == Some(&format!("# {file}")))
        .unwrap_or_else(|| panic!("docs/ci.md has no ```yaml block starting `# {file}`"))
        .to_string()
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

fn env_of(v: &Value) -> BTreeMap<String, String> {
    v.as_mapping()
        .map(|m| m.iter().map(|(k, v)| (s(k), s(v))).collect())
        .unwrap_or_default()
}

fn lines_of(v: &Value) -> Vec<String> {
    match v {
        Value::String(t) => t
            .lines()
            .map(str::to_string)
            .filter(|l| !l.trim().is_empty())
            .collect(),
        Value::Sequence(seq) => seq.iter().flat_map(lines_of).collect(),
        Value::Null => vec![],
        other => panic!("not a command list: {other:?}"),
    }
}

fn github_jobs(yaml: &str) -> Vec<Job> {
    let doc: Value = serde_norway::from_str(yaml).unwrap();
    let top_env = env_of(&doc["env"]);
    let jobs = doc["jobs"].as_mapping().expect("a workflow has jobs");
    jobs.iter()
        .map(|(name, j)| {
            let mut env = top_env.clone();
            env.extend(env_of(&j["env"]));
            let mut job = Job {
                name: s(name),
                host: Host::GitHub,
                env,
                commands: vec![],
                uploads: vec![],
                junit_report: None,
                cache: vec![],
                cache_key: String::new(),
            };
            for step in j["steps"].as_sequence().expect("a job has steps") {
                let uses = step["uses"].as_str().unwrap_or("");
                if uses.starts_with("actions/cache@") {
                    job.cache.extend(lines_of(&step["with"]["path"]));
                    job.cache_key = s(&step["with"]["key"]);
                } else if uses.starts_with("actions/upload-artifact@") {
                    assert_eq!(
                        step["if"].as_str(),
                        Some("always()"),
                        "{}: the artifact step must run when the job fails",
                        job.name
                    );
                    job.uploads.extend(lines_of(&step["with"]["path"]));
                }
                job.commands.extend(lines_of(&step["run"]));
            }
            job
        })
        .collect()
}

fn gitlab_jobs(yaml: &str) -> Vec<Job> {
    let doc: Value = serde_norway::from_str(yaml).unwrap();
    let map = doc.as_mapping().unwrap();
    let top_env = env_of(&doc["variables"]);
    // A job's keys, with what it `extends` underneath.
    let resolved = |j: &Value| -> serde_norway::Mapping {
        let mut m = serde_norway::Mapping::new();
        if let Some(base) = j["extends"].as_str() {
            m.extend(doc[base].as_mapping().unwrap().clone());
        }
        m.extend(j.as_mapping().unwrap().clone());
        m
    };
    map.iter()
        .filter(|(k, v)| {
            let k = s(k);
            !k.starts_with('.') && v.is_mapping() && v.get("script").is_some()
        })
        .map(|(name, j)| {
            let j = Value::Mapping(resolved(j));
            let mut env = top_env.clone();
            env.extend(env_of(&j["variables"]));
            let mut commands = lines_of(&j["before_script"]);
            commands.extend(lines_of(&j["script"]));
            let a = &j["artifacts"];
            assert_eq!(
                a["when"].as_str(),
                Some("always"),
                "{}: artifacts must be kept when the job fails",
                s(name)
            );
            let junit = a["reports"]["junit"].as_str().map(String::from);
            let mut uploads = lines_of(&a["paths"]);
            uploads.extend(junit.clone());
            let key = &j["cache"]["key"];
            Job {
                name: s(name),
                host: Host::GitLab,
                env,
                commands,
                uploads,
                junit_report: junit,
                cache: lines_of(&j["cache"]["paths"]),
                cache_key: match key {
                    Value::Mapping(_) => serde_norway::to_string(key).unwrap(),
                    v => s(v),
                },
            }
        })
        .collect()
}

/// Commands of the jobs that are not slipway's: what a runner needs before slipway
/// runs (installing it, a Docker CLI). Anything else fails the test: it would be a
/// documented command nobody ran.
fn setup_command(line: &str) -> bool {
    let l = line.trim();
    (l.starts_with("curl --proto '=https' --tlsv1.2 -fsSL ")
        && l.contains("/install.sh\" | sh -s -- --version"))
        || l == "echo \"$HOME/.local/bin\" >> \"$GITHUB_PATH\""
        || l.starts_with(
            "apt-get update -qq && apt-get install -y -qq --no-install-recommends docker.io",
        )
}

/// `$VAR` and `${VAR}` from `env` (GitLab expands its variables like this).
fn expand(v: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = v.to_string();
    // Longest names first: `$CI_PROJECT_DIR` is not `$CI` followed by text.
    let mut vars: Vec<(&String, &String)> = env.iter().collect();
    vars.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
    for (k, val) in vars {
        out = out
            .replace(&format!("${{{k}}}"), val)
            .replace(&format!("${k}"), val);
    }
    out
}

struct Ran {
    /// Holds the sandbox's directory until the checks are done (removed on drop).
    _sandbox: Sandbox,
    code: i32,
    log: String,
    summary: String,
    project: PathBuf,
    home: PathBuf,
}

/// Runs `job`'s slipway commands in a fresh sandbox (its fixture project with a
/// `ci` profile), stopping at the first that fails, as a CI job does.
fn run(job: &Job, prepare: impl Fn(&Sandbox)) -> Ran {
    let s = Sandbox::new();
    s.append_config("\n[profiles.ci]\ndescription = \"CI\"\n");
    prepare(&s);
    let bin = s.dir.path().join("slipway-bin");
    std::fs::create_dir_all(&bin).unwrap();
    symlink(env!("CARGO_BIN_EXE_slipway"), bin.join("slipway")).unwrap();
    let summary = s.dir.path().join("step-summary.md");
    let github_path = s.dir.path().join("github-path");
    let base = s.command(&[]);
    let mut env: BTreeMap<String, String> = base
        .get_envs()
        .filter_map(|(k, v)| Some((k.to_str()?.to_string(), v?.to_str()?.to_string())))
        .collect();
    let path = format!("{}:{}", bin.display(), env["PATH"]);
    env.insert("PATH".into(), path);
    env.remove("CI");
    env.insert("CI".into(), "true".into());
    match job.host {
        Host::GitHub => {
            env.insert("GITHUB_ACTIONS".into(), "true".into());
            env.insert("GITHUB_STEP_SUMMARY".into(), summary.display().to_string());
            env.insert("GITHUB_PATH".into(), github_path.display().to_string());
            env.insert("GITHUB_WORKSPACE".into(), s.project.display().to_string());
        }
        Host::GitLab => {
            env.insert("GITLAB_CI".into(), "true".into());
            env.insert("CI_PROJECT_DIR".into(), s.project.display().to_string());
        }
    }
    for (k, v) in &job.env {
        let v = expand(v, &env);
        env.insert(k.clone(), v);
    }
    if job
        .env
        .get("SLIPWAY_PROFILE")
        .is_some_and(|p| p == "remote")
    {
        // The remote profile's cluster is the kube context `staging`: the fakes have it.
        env.insert("FAKE_CONTEXTS".into(), "staging".into());
    }
    let mut log = String::new();
    let mut code = 0;
    for line in &job.commands {
        if !line.trim_start().starts_with("slipway ") {
            assert!(
                setup_command(line),
                "{}: a command this test does not run (teach it, or run it): {line}",
                job.name
            );
            continue;
        }
        let o = Command::new("bash")
            .args(["-euo", "pipefail", "-c", line])
            .current_dir(&s.project)
            .env_clear()
            .envs(&env)
            .output()
            .unwrap();
        log.push_str(&format!("$ {line}\n"));
        log.push_str(&String::from_utf8_lossy(&o.stdout));
        log.push_str(&String::from_utf8_lossy(&o.stderr));
        code = o.status.code().unwrap_or(-1);
        if code != 0 {
            break;
        }
    }
    let summary = std::fs::read_to_string(&summary).unwrap_or_default();
    let project = s.project.clone();
    let home = s.dir.path().to_path_buf();
    Ran {
        _sandbox: s,
        code,
        log,
        summary,
        project,
        home,
    }
}

/// A path a job names, on the runner: `~` is HOME, a relative one is in the project.
fn on_runner(p: &str, r: &Ran) -> PathBuf {
    let env: BTreeMap<String, String> = BTreeMap::from([(
        "CI_PROJECT_DIR".to_string(),
        r.project.display().to_string(),
    )]);
    let p = expand(p, &env);
    if let Some(rest) = p.strip_prefix("~/") {
        return r.home.join(rest);
    }
    let p = Path::new(&p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        r.project.join(p)
    }
}

fn junit_path(job: &Job) -> String {
    let p = job
        .env
        .get("SLIPWAY_JUNIT")
        .unwrap_or_else(|| panic!("{}: SLIPWAY_JUNIT is not set: no JUnit report", job.name))
        .clone();
    assert!(
        job.uploads.iter().any(|u| u == &p),
        "{}: the JUnit report {p} is not uploaded ({:?})",
        job.name,
        job.uploads
    );
    if job.host == Host::GitLab {
        assert_eq!(
            job.junit_report.as_deref(),
            Some(p.as_str()),
            "{}: GitLab's junit report",
            job.name
        );
    }
    p
}

/// The stages folded as the host folds them, in order, each closed.
fn assert_folded(job: &Job, log: &str) {
    let opened: Vec<&str> = log
        .lines()
        .filter_map(|l| match job.host {
            Host::GitHub => l.strip_prefix("::group::slipway "),
            Host::GitLab => l
                .split_once("section_start:")
                .and_then(|(_, r)| r.split_once(":slipway_"))
                .and_then(|(_, r)| r.split_once('[').map(|(n, _)| n)),
        })
        .collect();
    let closed = log
        .lines()
        .filter(|l| match job.host {
            Host::GitHub => *l == "::endgroup::",
            Host::GitLab => l.contains("section_end:") && l.contains(":slipway_"),
        })
        .count();
    assert_eq!(
        closed,
        opened.len(),
        "{}: every group closed:\n{log}",
        job.name
    );
    let slipway: Vec<&String> = job
        .commands
        .iter()
        .filter(|c| c.trim_start().starts_with("slipway ") && !c.contains("self-check"))
        .collect();
    if slipway.len() == 1 && slipway[0].trim() == "slipway ci" {
        assert_eq!(
            opened,
            STAGES.to_vec(),
            "{}: stages folded:\n{log}",
            job.name
        );
    } else {
        // load, deploy, smoke: each folds the stages it runs.
        for want in ["build", "load", "deploy", "rollout", "smoke"] {
            assert!(
                opened.contains(&want),
                "{}: {want} not folded:\n{log}",
                job.name
            );
        }
    }
}

fn check_job(job: &Job) {
    assert!(
        job.commands
            .iter()
            .any(|c| c.trim_start().starts_with("slipway ")),
        "{}: runs no slipway command",
        job.name
    );
    assert!(
        job.cache_key.contains("pipeline.toml"),
        "{}: the cache key is not keyed by pipeline.toml's pins: {}",
        job.name,
        job.cache_key
    );
    let junit = junit_path(job);

    // Passing.
    let ok = run(job, |_| {});
    assert_eq!(ok.code, 0, "{}:\n{}", job.name, ok.log);
    assert_folded(job, &ok.log);
    let report = std::fs::read_to_string(on_runner(&junit, &ok))
        .unwrap_or_else(|e| panic!("{}: no JUnit report at {junit}: {e}\n{}", job.name, ok.log));
    assert!(
        report.contains("<testsuite") && !report.contains("<failure"),
        "{report}"
    );
    for c in &job.cache {
        let dir = on_runner(c, &ok);
        let n = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| {
                panic!(
                    "{}: cached {c} ({}) absent after the job: {e}",
                    job.name,
                    dir.display()
                )
            })
            .count();
        assert!(n > 0, "{}: cached {c} is empty", job.name);
    }
    if job.host == Host::GitHub {
        assert!(
            ok.summary.contains("succeeded") && ok.summary.contains("| smoke | ok |"),
            "{}: job summary:\n{}",
            job.name,
            ok.summary
        );
    }

    // helm upgrade fails: exit 15, annotated, bundle and JUnit where they are uploaded.
    let failed = run(job, |s| {
        s.rule(json!({"tool": "helm", "match": ["upgrade"], "stderr": "boom-deploy\n", "exit": 1}))
    });
    assert_eq!(failed.code, 15, "{}:\n{}", job.name, failed.log);
    if job.host == Host::GitHub {
        assert!(
            failed
                .log
                .lines()
                .any(|l| l.starts_with("::error title=slipway%3A deploy failed::")),
            "{}: no annotation:\n{}",
            job.name,
            failed.log
        );
        assert!(
            failed.summary.contains("| deploy | **FAILED** |"),
            "{}",
            failed.summary
        );
    }
    let report = std::fs::read_to_string(on_runner(&junit, &failed)).unwrap();
    assert!(report.contains("<failure"), "{report}");
    let bundle_root = failed.project.join("target/slipway/diagnosis");
    let bundles: Vec<PathBuf> = std::fs::read_dir(&bundle_root)
        .unwrap_or_else(|e| panic!("{}: no bundle: {e}\n{}", job.name, failed.log))
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(bundles.len(), 1, "{bundles:?}");
    assert!(
        job.uploads
            .iter()
            .any(|u| bundles[0].starts_with(on_runner(u.trim_end_matches('/'), &failed))),
        "{}: the bundle {} is not under an uploaded path {:?}",
        job.name,
        bundles[0].display(),
        job.uploads
    );
}

#[test]
fn the_documented_github_workflow_runs_as_written() {
    let jobs = github_jobs(&doc_block(".github/workflows/deploy.yml"));
    assert_eq!(jobs.len(), 1);
    for job in &jobs {
        check_job(job);
    }
}

#[test]
fn the_documented_gitlab_job_runs_as_written() {
    let jobs = gitlab_jobs(&doc_block(".gitlab-ci.yml"));
    assert_eq!(jobs.len(), 1);
    for job in &jobs {
        check_job(job);
    }
}

#[test]
fn the_example_ci_files_run_as_written() {
    let gh = std::fs::read_to_string(repo().join("examples/ci/github-actions.yml")).unwrap();
    let gl = std::fs::read_to_string(repo().join("examples/ci/gitlab-ci.yml")).unwrap();
    let mut jobs = github_jobs(&gh);
    jobs.extend(gitlab_jobs(&gl));
    let names: Vec<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
    assert_eq!(names, ["deploy", "kind", "deploy"], "{jobs:#?}");
    for job in &jobs {
        check_job(job);
    }
}

/// A pipeline-file error is an annotation at its file, line and column.
#[test]
fn a_pipeline_file_error_is_annotated_at_its_line() {
    let job = &github_jobs(&doc_block(".github/workflows/deploy.yml"))[0];
    let r = run(job, |s| {
        s.append_config("\n[smoke.broken]\nservice = \"web\"\nport = 80\nnot_a_key = 1\n")
    });
    assert_eq!(r.code, 2, "{}", r.log);
    let text = std::fs::read_to_string(r.project.join("pipeline.toml")).unwrap();
    let line = text
        .lines()
        .position(|l| l.starts_with("not_a_key"))
        .unwrap()
        + 1;
    let want = format!("::error file=pipeline.toml,line={line},col=1,");
    assert!(
        r.log.lines().any(|l| l.starts_with(&want)),
        "no {want}…:\n{}",
        r.log
    );
}
