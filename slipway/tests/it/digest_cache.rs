//! Tier 1: a plan made again with nothing touched reads no input file's contents —
//! the digests come from the per-user cache, keyed by (path, device, inode, size,
//! mtime, ctime) — and a changed file is read again.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::support::{copy_dir, repo};
use slipway::config::{self, LoadOptions, Vars};
use slipway::model::Job;
use slipway::plan::{self, digest, PlanOptions};

/// Every file's mtime well in the past (a file changed in the last two seconds is
/// never cached: it could change again within the same mtime tick).
fn age(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            age(&p);
        } else {
            std::fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(SystemTime::now() - Duration::from_secs(3600))
                .unwrap();
        }
    }
}

/// Load and plan; how many files it read the contents of.
fn plan_reads(file: &Path) -> u64 {
    let p = config::load(&LoadOptions {
        file: file.to_path_buf(),
        profile: None,
        vars: Some(Vars::new(BTreeMap::new(), BTreeMap::new())),
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let before = digest::files_read();
    plan::build(&p, &PlanOptions::new(Job::DeployLocal)).unwrap();
    digest::files_read() - before
}

#[test]
fn a_plan_with_nothing_touched_reads_no_file_again() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    copy_dir(&repo().join("slipway/tests/fixtures/app"), &app);
    std::fs::create_dir_all(app.join(".git")).unwrap();
    age(&app);
    let file = app.join("pipeline.toml");
    let first = plan_reads(&file);
    assert!(
        first >= 3,
        "the image's inputs and the chart are read: {first}"
    );
    assert_eq!(plan_reads(&file), 0, "nothing touched, nothing read");
    // A change is read (only the changed file).
    std::fs::write(app.join("app/main.txt"), "changed\n").unwrap();
    assert_eq!(plan_reads(&file), 1);
}
