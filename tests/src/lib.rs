//! xenolith's end-to-end scenarios, described as data, and the checker for their serial logs.
//!
//! A [`Scenario`] names the domains to boot in one run of the hypervisor (their xl.cfg texts and
//! the module files those need), extra hypervisor command-line words, a wall-clock limit and the
//! [`Expectation`]s its serial log must meet. The host tool (`xenolith-tools`, crate `tools`)
//! turns a scenario into an ISO, boots it in an emulator and hands the log to [`check`].
//!
//! The lines checked here are fixed by `docs/protocol.md`.
//!
//! To add a scenario, write a function returning a [`Scenario`] in [`scenarios`] and list it in
//! [`scenarios::all`].

#![forbid(unsafe_code)]

pub mod check;
pub mod scenario;
pub mod scenarios;

pub use check::{check, Verdict};
pub use scenario::{
    DomainSpec, Expectation, GuestFile, Module, ModuleSource, NumCheck, Scenario, TypedInput,
};
pub use scenarios::{all, find, DEFAULT_SCENARIO};
