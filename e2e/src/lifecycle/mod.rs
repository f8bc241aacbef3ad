//! `cargo xtask e2e`: what will run ([`plan`], printed by `--dry-run`), running it phase by
//! phase with teardown and Ctrl-C ([`run`]), and the run's `summary.md` ([`summary`]).
//!
//! How progress is shown and how the assert phase runs the cluster tests are the caller's
//! ([`run::Frontend`]): the library never draws a spinner or spawns `cargo`.

pub mod applied;
pub mod plan;
mod preflight;
pub mod run;
pub mod summary;
mod teardown;

pub use teardown::{teardown_actions, TeardownActions};
