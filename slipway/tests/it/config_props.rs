//! Tier 1, a property test: the valid pipeline files (the repo's, the examples', the
//! fixture's), mutated — a value's type changed, a key dropped, renamed or added,
//! strings with control characters, huge numbers — go through config → plan in
//! process, and each must answer within a second with a valid plan or with errors
//! that each name the file, line and column (exit 2); never a panic or a hang.
//! Seeded by proptest; `PROPTEST_CASES` runs more.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use toml::{Table, Value};

use crate::support::repo;
use slipway::config::{self, LoadOptions, Vars};
use slipway::model::Job;
use slipway::plan::{self, PlanOptions};

fn pipelines() -> Vec<PathBuf> {
    let r = repo();
    let mut out = vec![
        r.join("pipeline.toml"),
        r.join("slipway/tests/fixtures/app/pipeline.toml"),
    ];
    let mut examples: Vec<PathBuf> = std::fs::read_dir(r.join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path().join("pipeline.toml"))
        .filter(|p| p.is_file())
        .collect();
    examples.sort();
    out.extend(examples);
    out
}

#[derive(Clone, Debug)]
enum Mutation {
    /// Replace the value with one of another type (or a huge number).
    Replace(Value),
    Drop,
    Rename(String),
    /// Add a key beside the value (in its table, or the value's own if it is one).
    Add(String, Value),
}

fn control_string() -> impl Strategy<Value = String> {
    let ch = prop_oneof![
        Just('\0'),
        Just('\n'),
        Just('\r'),
        Just('\t'),
        Just('\u{1b}'),
        Just('\u{7f}'),
        Just('\u{feff}'),
        Just('$'),
        Just('{'),
        Just('}'),
        Just('"'),
        Just('\\'),
        Just(','),
        Just('='),
        Just('/'),
        Just('.'),
        Just('é'),
        Just('a'),
        Just('Z'),
        Just('0'),
    ];
    proptest::collection::vec(ch, 0..24).prop_map(|v| v.into_iter().collect())
}

fn value() -> impl Strategy<Value = Value> {
    let datetime: toml::value::Datetime = "1979-05-27T07:32:00Z".parse().unwrap();
    prop_oneof![
        Just(Value::Integer(i64::MAX)),
        Just(Value::Integer(i64::MIN)),
        Just(Value::Integer(-1)),
        Just(Value::Integer(0)),
        Just(Value::Integer(65_536)),
        Just(Value::Integer(4_294_967_296)),
        Just(Value::Float(1e308)),
        Just(Value::Float(-0.5)),
        Just(Value::Boolean(true)),
        Just(Value::Datetime(datetime)),
        Just(Value::Array(vec![])),
        Just(Value::Array(vec![Value::Integer(1), Value::Boolean(false)])),
        Just(Value::Table(Table::new())),
        Just(Value::Table(Table::from_iter([(
            "x".to_string(),
            Value::Integer(1)
        )]))),
        control_string().prop_map(Value::String),
        "[a-z_]{1,8}".prop_map(Value::String),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => value().prop_map(Mutation::Replace),
        1 => Just(Mutation::Drop),
        1 => prop_oneof![control_string(), "[a-z_]{1,10}"].prop_map(Mutation::Rename),
        1 => (prop_oneof![control_string(), "[a-z_]{1,10}"], value())
            .prop_map(|(k, v)| Mutation::Add(k, v)),
    ]
}

/// Every key path in the tree (array elements by index).
fn paths(v: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        Value::Table(t) => {
            for (k, x) in t {
                at.push(k.clone());
                out.push(at.clone());
                paths(x, at, out);
                at.pop();
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                at.push(i.to_string());
                out.push(at.clone());
                paths(x, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

fn get_mut<'a>(v: &'a mut Value, at: &[String]) -> Option<&'a mut Value> {
    let mut cur = v;
    for seg in at {
        cur = match cur {
            Value::Table(t) => t.get_mut(seg)?,
            Value::Array(a) => a.get_mut(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn apply(doc: &mut Value, at: &[String], m: Mutation) {
    let Some((last, parent)) = at.split_last() else {
        return;
    };
    match m {
        Mutation::Replace(v) => {
            if let Some(x) = get_mut(doc, at) {
                *x = v;
            }
        }
        Mutation::Drop => match get_mut(doc, parent) {
            Some(Value::Table(t)) => {
                t.remove(last);
            }
            Some(Value::Array(a)) => {
                if let Ok(i) = last.parse::<usize>() {
                    if i < a.len() {
                        a.remove(i);
                    }
                }
            }
            _ => {}
        },
        Mutation::Rename(new) => {
            if let Some(Value::Table(t)) = get_mut(doc, parent) {
                if let Some(v) = t.remove(last) {
                    t.insert(new, v);
                }
            }
        }
        Mutation::Add(k, v) => {
            let target = match get_mut(doc, at) {
                Some(Value::Table(_)) => at,
                _ => parent,
            };
            if let Some(Value::Table(t)) = get_mut(doc, target) {
                t.insert(k, v);
            }
        }
    }
}

/// What one mutated pipeline came to.
enum Outcome {
    Plan,
    /// The pipeline's errors (all located) or the plan's error (exit 2).
    Refused,
}

fn config_to_plan(file: PathBuf) -> Result<Outcome, String> {
    let loaded = config::load(&LoadOptions {
        file: file.clone(),
        profile: None,
        vars: Some(Vars::new(BTreeMap::new(), BTreeMap::new())),
    });
    match loaded {
        Err(errs) => {
            for d in &errs.0 {
                if d.location.is_none() {
                    return Err(format!("an error without a location: {d}\nin:\n{errs}"));
                }
            }
            if !errs.to_string().contains(&format!("{}:", file.display())) {
                return Err(format!("no `file:line:col` in:\n{errs}"));
            }
            let code = slipway::model::Error::from(errs).exit_code();
            if code != 2 {
                return Err(format!("exit {code}, not 2"));
            }
            Ok(Outcome::Refused)
        }
        Ok(p) => match plan::build(&p, &PlanOptions::new(Job::DeployLocal)) {
            Ok(plan) => {
                let _ = plan.to_text();
                Ok(Outcome::Plan)
            }
            Err(e) if e.exit_code() == 2 => Ok(Outcome::Refused),
            Err(e) => Err(format!("the plan failed with exit {}: {e}", e.exit_code())),
        },
    }
}

/// config → plan on its own thread: a panic is caught, a hang is one past 1 s.
fn within_a_second(file: PathBuf) -> Result<Outcome, String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(|| config_to_plan(file)).unwrap_or_else(|p| {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(format!("panicked: {msg}"))
        });
        let _ = tx.send(r);
    });
    match rx.recv_timeout(Duration::from_secs(1)) {
        Ok(r) => r,
        Err(_) => Err("no answer within 1 s".into()),
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12)
}

#[test]
fn mutated_pipelines_get_a_plan_or_located_errors() {
    let files = pipelines();
    assert!(files.len() >= 7, "{files:?}");
    let mut runner = TestRunner::new(Config {
        cases: cases() * files.len() as u32,
        failure_persistence: None,
        ..Config::default()
    });
    let (planned, refused) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
    let strategy = (
        0..files.len(),
        any::<prop::sample::Index>(),
        mutation(),
        1..=3usize,
    );
    runner
        .run(&strategy, |(which, pick, m, times)| {
            let src = &files[which];
            let text = std::fs::read_to_string(src).unwrap();
            let mut doc = Value::Table(text.parse::<Table>().unwrap());
            // The same kind of mutation at up to three places.
            for i in 0..times {
                let mut all = vec![];
                paths(&doc, &mut vec![], &mut all);
                if all.is_empty() {
                    break;
                }
                let at = all[(pick.index(all.len()) + i * 7919) % all.len()].clone();
                apply(&mut doc, &at, m.clone());
            }
            let Ok(mutated) = toml::to_string(&doc) else {
                return Ok(());
            };
            // Beside the original, so its relative paths resolve; removed on drop.
            let dir: &Path = src.parent().unwrap();
            let mut f = tempfile::Builder::new()
                .prefix(".slipway-props-")
                .suffix(".toml")
                .tempfile_in(dir)
                .unwrap();
            std::io::Write::write_all(&mut f, mutated.as_bytes()).unwrap();
            match within_a_second(f.path().to_path_buf()) {
                Ok(Outcome::Plan) => planned.set(planned.get() + 1),
                Ok(Outcome::Refused) => refused.set(refused.get() + 1),
                Err(e) => {
                    return Err(TestCaseError::fail(format!(
                        "{} mutated with {m:?}:\n{e}\n--- the file:\n{mutated}",
                        src.display()
                    )))
                }
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    // Both outcomes happen: the mutations are neither all harmless nor all fatal.
    let (planned, refused) = (planned.get(), refused.get());
    assert!(
        planned > 0 && refused > 0,
        "planned {planned}, refused {refused}"
    );
}
