//! Marks CI builds (`CI` set and not "false"/"0") with `cfg(slipway_ci)`: tests that
//! need real tools are ignored, with the reason, outside CI and required in CI.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(slipway_ci)");
    println!("cargo::rerun-if-env-changed=CI");
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    if ci {
        println!("cargo::rustc-cfg=slipway_ci");
    }
}
