//! `cargo xtask e2e`: what will run ([`plan`], printed by `--dry-run`), running it phase by
//! phase with teardown and Ctrl-C ([`run`]), and the run's `summary.md` ([`summary`]).
//!
//! The run flows one way: `options` (the flags, resolved for a cell) → `preflight` (returns what
//! it prepared) → `cluster` (returns a client) → the install phases → [`verify`] → `teardown`
//! (from the `Footprint` of what exists) → [`summary`]. [`run`] drives them; each phase takes
//! what the ones before it made, so none reads a shared state.
//!
//! How progress is shown is the caller's ([`run::Frontend`]): the library never draws a spinner.
//! The assert phase runs [`crate::assert`]'s checks in-process and writes their outputs
//! ([`verify`]), so nothing is compiled or spawned while a cluster waits.

pub mod applied;
mod cluster;
mod options;
mod outcome;
pub mod plan;
mod preflight;
pub mod run;
pub mod summary;
mod teardown;
pub mod verify;

pub use teardown::{teardown_actions, TeardownActions};
