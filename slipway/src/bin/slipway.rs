//! The `slipway` binary: the same command line as `cargo xtask`, for repositories
//! that are not Rust. Reads the nearest pipeline.toml.

fn main() -> std::process::ExitCode {
    slipway::cli::main("slipway")
}
