//! Where each container runtime on the node reads a registry's trust, and the one host-root
//! type every read and write under `--host-root` goes through.
//!
//! - `root`: `HostRoot`, dir-handle (`openat`) reads and writes with one symlink policy.

pub mod root;

pub use root::HostRoot;
