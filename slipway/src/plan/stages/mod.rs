//! One file per stage: each adds its steps to the plan.

mod build;
pub(crate) mod build_waves;
mod capacity;
pub use capacity::{requests_file, CAPACITY};
mod cluster;
mod deploy;
mod down;
mod health;
mod load;
mod logs;
mod preflight;
mod render;
mod rollback;
mod rollout;
mod secrets;
mod smoke;
mod status;
