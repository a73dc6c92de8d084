//! slipway's entrypoint: parse the command line, load the pipeline, and hand over to
//! plan → run → report. Kept thin on purpose.

mod app;
mod cli;
mod cmd;
mod config;
mod digest;
mod exec;
mod ops;
mod plan;
mod preflight;
mod report;
mod run;
mod smoke;
mod tools;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    ExitCode::from(app::main(cli) as u8)
}
