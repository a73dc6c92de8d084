//! The one integration-test binary: tier 1 (config corpus, plan snapshots, the
//! architecture's invariants), tier 2 (fake tools on PATH) and tier 3 (real tools;
//! ignored with a reason outside CI, required in CI).

mod support;

mod adoption;
mod config_corpus;
mod docs;
mod e2e_examples;
mod e2e_kind;
mod e2e_minikube;
mod fake_tools;
mod fuzz;
mod init;
mod init_real;
mod plan_snapshots;
mod provision;
mod real_tools;
mod releases;
mod signals;
mod tidy;
