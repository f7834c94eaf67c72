//! Where each container runtime reads a registry's CA, and how regtrust puts it there.
//!
//! - `layout`: the exact file names regtrust writes in a runtime's host dir (`ca.crt`, and
//!   containerd's `hosts.toml`); where the host dirs are is `runtime::Node`'s answer.
//! - `plan`: a pure decision, per target file, from what is wanted, what is on disk and what
//!   regtrust owns; table-tested without a filesystem.
//! - `apply`: looks at the disk, runs the plan, writes atomically through `runtime::HostRoot`
//!   dir handles; never follows a symlink.
//! - `ledger`: what regtrust wrote (path and digest), kept in the state dir.
//! - `hosts_toml` (re-exported from `runtime`): containerd's hosts.toml, read by its rules.
//! - `checks`: trust-dir problems that make a correctly written CA useless, plus each
//!   runtime module's config problems.
//!
//! This module does not read inputs (see `pull_secret`, `ca`) and does not probe.

pub mod apply;
pub mod checks;
pub mod layout;
pub mod ledger;
pub mod plan;

pub use crate::runtime::hosts_toml;
pub use layout::Runtime;
