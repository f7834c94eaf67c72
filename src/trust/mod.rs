//! Where each container runtime reads a registry's CA, and how regtrust puts it there.
//!
//! - `layout`: the runtimes and the exact file names they read (Docker's `certs.d`,
//!   containerd's hosts dir with its `hosts.toml`, containers/image's `certs.d`).
//! - `plan`: a pure decision, per target file, from what is wanted, what is on disk and what
//!   regtrust owns; table-tested without a filesystem.
//! - `apply`: looks at the disk, runs the plan, writes atomically; never follows a symlink.
//! - `ledger`: what regtrust wrote (path and digest), kept in the state dir.
//! - `hosts_toml`: containerd's hosts.toml, read by its rules (used by `plan` and the probe).
//! - `checks`: runtime-config problems that make a correctly written CA useless.
//!
//! This module does not read inputs (see `pull_secret`, `ca`) and does not probe.

pub mod apply;
pub mod checks;
pub mod hosts_toml;
pub mod layout;
pub mod ledger;
pub mod plan;

pub use layout::Runtime;
