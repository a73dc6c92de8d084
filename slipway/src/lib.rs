//! slipway: a deployment pipeline runner, driven by `pipeline.toml`.
//!
//! # Architecture
//!
//! Data flows one way: **config → plan → execute → report**.
//!
//! | module | what it is |
//! |---|---|
//! | [`model`] | the shared vocabulary: stages, jobs, commands, events, the one error, exit codes |
//! | [`tools`] | per external tool: argv builders and output parsers; the tool registry; the one Kubernetes model ([`tools::k8s`]) |
//! | [`providers`] | per cluster kind: settings, create/probe/load/delete commands, managed context |
//! | [`checks`] | per smoke-check kind: keys, validation, commands, one attempt |
//! | [`config`] | load → profile → interpolate → decode → validate (one file per section) |
//! | [`plan`] | every command a run can spawn, as data (one file per stage) |
//! | [`exec`] | the one executor: process groups, deadlines, signals, retries, redaction; the one network client ([`exec::net`]) |
//! | [`init`] | a first pipeline.toml from a repository's Dockerfiles and charts, or from a skaffold.yaml |
//! | [`run`] | executes a plan: guards, rollout, health, preflight, smoke, status, down |
//! | [`dev`] | the dev loop: rounds on change, file sync into running pods, logs and port-forwards between rounds |
//! | [`report`] | renders events for a terminal, plain logs or JSON; the JUnit report and the diagnosis bundle of a run's events |
//! | [`cli`] | clap types and the one dispatch (no rendering of its own) |
//!
//! # Invariants (each is checked by `tests/it/tidy.rs`)
//!
//! 1. **Imports go one way.** A module may use only the modules listed for it:
//!    - `model`: nothing else in this crate;
//!    - `tools`: `model`;
//!    - `exec`, `report`: `model`;
//!    - `checks`: `model`, `tools`, `exec` (a check's own request goes through
//!      [`exec::net`], the one network client);
//!    - `providers`: `model`, `tools`;
//!    - `config`: `model`, `checks`, `providers`;
//!    - `plan`: `model`, `tools`, `checks`, `providers`, `config`;
//!    - `run`: `model`, `tools`, `checks`, `providers`, `config`, `plan`, `exec`;
//!    - `dev`: `model`, `tools`, `config`, `plan`, `exec`, `run` (the command line
//!      hands it its rounds; it never loads, plans or reports a run itself);
//!    - `init`: `model`, `tools`, `config`, `exec` (it reads a repository and asks
//!      `helm template` through the executor; it writes only the files it offers);
//!    - `cli`: everything.
//! 2. **Only `exec` spawns processes** (`std::process::Command`) **and opens
//!    connections**: every request slipway makes itself goes through [`exec::net`]
//!    (a deadline, cancellation by the signals, URLs' credentials masked).
//! 3. **Only `report` writes to stdout or stderr.** Everyone else emits
//!    [`model::Event`]s into a [`model::Sink`]; errors are printed once, by the
//!    reporter, from the `error` event.
//! 4. **Exit codes are decided in `model`** ([`model::exit`], [`model::Error::exit_code`]);
//!    only `cli` turns one into the process exit code. docs/guide.md and `--help`
//!    are tested against [`model::exit::table`].
//! 5. **`plan` runs nothing** and reads only the pipeline's own files (inside its
//!    repository, by the ignore rules of [`plan::digest`]); the one thing it writes is
//!    the per-user cache of file digests. `plan`'s text is rendered from
//!    [`plan::Plan`] alone. The `plan` command also reads, by file reads and stats
//!    only ([`run::facts`]), the local facts it decides what it shows first from
//!    ([`plan::LocalFacts`]): the binary `PATH` finds for each tool and the version
//!    preflight remembered for it (`tool-versions.json`), the binaries slipway's
//!    toolchain manifest records, and the context names in the kubeconfig.
//!
//! # Extension points
//!
//! - a cluster provider: `providers/<name>.rs` + a [`providers::ProviderKind`] variant
//!   and its arm in [`providers::get`], and its tool's [`tools::registry::ToolId`]
//!   variant and row in [`tools::registry::TOOLS`]: 1 file and 5 edits in 2 files,
//!   as the test-only `providers/k3d.rs` measures (CONTRIBUTING.md says what else a
//!   shipped one needs); its name is written in no other file (`tests/it/provider_names.rs`);
//! - a tool: its adapter `tools/<name>.rs` + a [`tools::registry::ToolId`] variant and
//!   its row in [`tools::registry::TOOLS`];
//! - a stage: `plan/stages/<name>.rs` + a [`model::Stage`] variant (name, exit code,
//!   default budget) and its arm in [`plan::build`];
//! - a kind of step: `plan/steps/<name>.rs` (a type implementing
//!   [`plan::StepKind`]: its commands and its lines in `plan`'s text, with what its
//!   commands' output means as pure functions) + a [`plan::Action`] variant and its
//!   arm in [`plan::Action::kind`]; how it runs: `run/steps/<name>.rs` and its arm in
//!   `run::steps::execute`. The runner reads no pipeline config and calls no tool's
//!   output parser (checked by `tests/it/tidy_steps.rs`);
//! - a smoke-check kind: `checks/<name>.rs` + a [`checks::Spec`] variant and its arms
//!   in `checks/mod.rs`.

pub mod checks;
pub mod cli;
pub mod config;
pub mod dev;
pub mod exec;
pub mod init;
pub mod model;
pub mod plan;
pub mod providers;
pub mod report;
pub mod run;
pub mod tools;
