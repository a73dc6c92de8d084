//! What a person sees at many services (tier 2, issue #24): on a terminal, a run of
//! the generated fixture shows one row per service — its build, delivery, deploy,
//! readiness, smoke check and time — and the table stays on the screen when the run
//! ends: after a first deploy, a deploy that changes nothing and a failed one.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::e2e_forty::fixture_gen;
use crate::support::Sandbox;
use crate::what_a_person_sees::{assert_screen, screen_of_sized, tty_command_sized, Screen};

/// Services in the fixture: more than the table's threshold, three layers.
const N: usize = 6;

/// The generated fixture in the sandbox (the fakes do not run the binary: any file
/// does for it), its directory.
fn forty(s: &Sandbox) -> PathBuf {
    let dir = s.project.join("forty");
    let binary = s.dir.path().join("sample");
    std::fs::write(&binary, "not a binary: the fakes never run it\n").unwrap();
    fixture_gen::generate(&dir, N, "fx", &binary, &s.project.join("chart")).unwrap();
    dir
}

/// The terminal's size: tall enough for every line of a run, as wide as the other
/// screens' `COLUMNS`. The table is redrawn in place, so the screen must wrap lines
/// where the terminal slipway asked does.
const ROWS: u16 = 300;
const COLS: u16 = 100;

fn tty_in(s: &Sandbox, dir: &Path, args: &[&str]) -> Screen {
    let o = tty_command_sized(s, args, Some((ROWS, COLS)))
        .current_dir(dir)
        .output()
        .expect("script(1) runs");
    Screen {
        code: o.status.code(),
        text: screen_of_sized(&o.stdout, ROWS, COLS),
    }
}

/// The table's lines on a screen: from its header to its legend.
fn table_of(text: &str) -> Vec<&str> {
    text.lines()
        .skip_while(|l| !l.starts_with("service "))
        .take_while(|l| !l.starts_with("· not run"))
        .collect()
}

/// A row's five cells (build, deliver, deploy, ready, smoke), by their columns:
/// the name is 7 wide (`service`), each cell 8, two spaces between.
fn cells(row: &str) -> Vec<String> {
    let chars: Vec<char> = row.chars().collect();
    (0..5)
        .map(|k| {
            let from = (9 + 10 * k).min(chars.len());
            let to = (from + 8).min(chars.len());
            chars[from..to]
                .iter()
                .collect::<String>()
                .trim()
                .to_string()
        })
        .collect()
}

#[test]
fn many_services_show_one_row_each_and_the_table_stays() {
    let s = Sandbox::new();
    let dir = forty(&s);
    let first = tty_in(&s, &dir, &["deploy-local"]);
    assert_eq!(first.code, Some(0), "{}", first.text);
    let table = table_of(&first.text);
    assert_eq!(table.len(), N + 1, "{}", first.text);
    for (i, row) in table[1..].iter().enumerate() {
        let name = fixture_gen::name(i);
        assert!(row.starts_with(&format!("{name} ")), "{row}");
        // Built, delivered, deployed, ready, checked: five marks, then the time.
        assert_eq!(row.matches('✓').count(), 5, "{row}");
    }
    // The stage lines do not list the services one by one.
    assert!(
        !first.text.contains("rolled out (1/1 ready)"),
        "{}",
        first.text
    );
    assert_screen!("first_deploy_of_six", &first.text);

    let again = tty_in(&s, &dir, &["deploy-local"]);
    assert_eq!(again.code, Some(0), "{}", again.text);
    let table = table_of(&again.text);
    assert_eq!(table.len(), N + 1, "{}", again.text);
    for row in &table[1..] {
        // Nothing built, delivered or upgraded: skipped; readiness and the check ran.
        assert_eq!(&cells(row)[..3], ["=", "=", "="], "{row}");
    }
    assert_screen!("no_change_deploy_of_six", &again.text);
}

#[test]
fn a_failed_service_and_its_dependants_in_the_table() {
    let s = Sandbox::new();
    let dir = forty(&s);
    // svc02 is a base: svc03 and svc05 need it (layers of 6: 2, 3, 1).
    let needs: Vec<(String, Vec<String>)> = fixture_gen::services(N)
        .into_iter()
        .map(|x| (x.name, x.needs))
        .collect();
    let dependants: Vec<&str> = needs
        .iter()
        .filter(|(_, n)| n.iter().any(|d| d == "svc02"))
        .map(|(name, _)| name.as_str())
        .collect();
    assert!(!dependants.is_empty(), "{needs:?}");
    s.rule(json!({"tool": "helm", "match": ["upgrade --install svc02 "], "stderr": "Error: svc02 is broken\n", "exit": 1}));
    let o = tty_in(&s, &dir, &["deploy-local"]);
    assert_eq!(o.code, Some(15), "{}", o.text);
    let table = table_of(&o.text);
    assert_eq!(table.len(), N + 1, "{}", o.text);
    let row = |name: &str| {
        *table
            .iter()
            .find(|r| r.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no row {name}:\n{}", o.text))
    };
    assert!(cells(row("svc02"))[2].starts_with("✗ "), "{}", o.text);
    for d in &dependants {
        let r = row(d);
        assert_eq!(cells(r)[2], "–", "{r}");
        assert!(r.contains("not attempted"), "{r}");
        assert!(r.contains("svc02"), "{r}");
    }
    assert_screen!("failed_service_of_six", &o.text);
}

/// Ctrl-C while one release's upgrade hangs: the table as the run left it stays on
/// the screen (no half-drawn rows), above what the run left and the next command.
#[test]
fn ctrl_c_leaves_the_table_and_a_sane_screen() {
    let s = Sandbox::new();
    let dir = forty(&s);
    let never = s.dir.path().join("never");
    s.rule(json!({"tool": "helm", "match": ["upgrade --install svc01 "], "until": never, "then_simulate": true}));
    let mut c = tty_command_sized(&s, &["deploy-local"], Some((ROWS, COLS)))
        .current_dir(&dir)
        .spawn()
        .expect("script(1) runs");
    let mut out = c.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut b = vec![];
        let _ = std::io::Read::read_to_end(&mut out, &mut b);
        b
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while !s.ran("upgrade --install svc01 ") {
        assert!(Instant::now() < deadline, "svc01's upgrade never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    std::io::Write::write_all(c.stdin.as_mut().unwrap(), b"\x03").unwrap();
    let status = c.wait().unwrap();
    let text = screen_of_sized(&reader.join().unwrap(), ROWS, COLS);
    assert_eq!(status.code(), Some(130), "{text}");
    let table = table_of(&text);
    assert_eq!(table.len(), N + 1, "{text}");
    assert!(
        cells(table[1])[2].starts_with("✗ "),
        "svc01's upgrade was stopped:\n{text}"
    );
    // Nothing drawn twice: one header, and the table above the error.
    assert_eq!(text.matches("service  build").count(), 1, "{text}");
    let (above, below) = text.split_once("· not run").unwrap();
    assert!(above.contains("✗ deploy"), "{text}");
    assert!(below.contains("interrupted"), "{text}");
    assert!(
        text.trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("next: "),
        "{text}"
    );
}
