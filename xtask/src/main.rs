//! `cargo xtask`: parse the command line and hand over to [`xtask::app`]. Kept thin.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match xtask::cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    ExitCode::from(xtask::app::main(cli) as u8)
}
