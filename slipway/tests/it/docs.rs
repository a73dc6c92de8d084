//! Tier 1: the documentation against the code. The exit-code table in docs/guide.md
//! is `model::exit::table()` (and `--help` lists it too).

use crate::support::repo;

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
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
