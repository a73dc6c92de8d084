//! The one integration-test binary: tier 1 (config corpus, plan snapshots, the
//! architecture's invariants), tier 2 (fake tools on PATH) and tier 3 (real tools;
//! ignored with a reason outside CI, required in CI).

mod support;

mod adoption;
mod build_waves;
mod ci_docs;
mod config_corpus;
mod config_props;
mod coverage_gaps;
mod dev_sync;
mod digest_cache;
mod dist;
mod docs;
mod e2e_examples;
mod e2e_forty;
mod e2e_kind;
mod e2e_minikube;
mod e2e_rotation;
mod e2e_sync;
mod fake_cluster;
mod fake_tools;
mod forty;
mod fuzz;
mod hardening_engine;
mod hardening_guard;
mod init;
mod init_real;
mod live_table;
mod local_registry;
mod plan_snapshots;
mod provider_names;
mod provision;
mod real_tools;
mod releases;
mod rollout_probe;
mod run_lock;
mod secret_sinks;
mod self_check;
mod serving;
mod signals;
mod tidy;
mod tidy_steps;
mod what_a_person_sees;
