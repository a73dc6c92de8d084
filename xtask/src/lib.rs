//! slipway: a deployment pipeline runner, driven by `pipeline.toml`.
//!
//! Data flows one way: [`config`] (parse and validate) → [`plan`] (steps with exact
//! argv, no side effects) → [`run`] via the one [`exec::Executor`] → [`report`].
//! Each external tool has an adapter under [`tools`].

pub mod app;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod digest;
pub mod exec;
pub mod ops;
pub mod plan;
pub mod preflight;
pub mod report;
pub mod run;
pub mod smoke;
pub mod tools;
