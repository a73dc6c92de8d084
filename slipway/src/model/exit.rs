//! The exit-code table: the one place exit codes are decided. docs/guide.md and
//! `--help` are tested against [`TABLE`].

use strum::IntoEnumIterator;

use super::Stage;

pub const OK: i32 = 0;
/// A bad command line or pipeline file (nothing ran).
pub const USAGE: i32 = 2;
/// A panic: a bug in slipway.
pub const BUG: i32 = 101;
/// Ctrl-C or SIGTERM.
pub const INTERRUPTED: i32 = 130;

/// Every exit code slipway uses, with its meaning, in ascending order.
pub fn table() -> Vec<(i32, &'static str)> {
    let mut t = vec![
        (OK, "success"),
        (
            USAGE,
            "bad command line or pipeline file (every error is listed; nothing ran)",
        ),
        (
            BUG,
            "a bug in slipway (a panic): please report it with the output",
        ),
        (INTERRUPTED, "interrupted (Ctrl-C / SIGTERM)"),
    ];
    for s in Stage::iter() {
        if !t.iter().any(|(c, _)| *c == s.exit_code()) {
            t.push((s.exit_code(), s.failure()));
        }
    }
    t.sort_by_key(|(c, _)| *c);
    t
}

/// The table as `--help` prints it.
pub fn help() -> String {
    let mut s = String::from("Exit codes:\n");
    for (code, meaning) in table() {
        s.push_str(&format!("  {code:>3}  {meaning}\n"));
    }
    s
}
