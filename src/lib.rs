//! regtrust: keeps nodes able to pull from registries that use a private CA.
//!
//! Layout (one module per concept):
//! - `host`: a validated registry host (`harbor.local:8443`), parsed once at the edge.
//! - `pull_secret`: pull-secret files and mounted Secret dirs, read the way kubelet reads them.
//! - `ca`: CA bundle validation and certificate facts.
//! - `go`: the ground-floor Go port (DER, x509 parsing, Verify, signatures, PEM and base64),
//!   no `crate::` imports.
//! - `trust`: the runtimes' trust-dir layouts, a pure `plan`, an `apply` that writes, the
//!   ownership `ledger`, and containerd config checks.
//! - `probe`: the runtime's own TLS verdict (Go's `Verify` mirrored) for each registry.
//! - `runtime`: where each runtime reads a registry's trust (one module per runtime) and
//!   `HostRoot`, the one symlink policy for every read and write under `--host-root`.
//! - `report`: the `regtrust.report/v1` model and its text/JSON renderers.
//! - `watch`: which dirs the agent watches, and the watcher that turns events into a signal.
//! - `agent`: the DaemonSet loop (sync, watch, probe, push, HTTP); `metrics`: its Prometheus text.
//! - `listen`: the bounded HTTP server loop of the agent and the aggregator, RLIMIT_NOFILE.
//! - `aggregator`: the central service (store, fleet view, API, pages, pre-flight) and
//!   `regtrust report`; `fleetapi`: its routes and the one client agents and admins use.

pub mod agent;
pub mod aggregator;
pub mod ca;
pub mod cli;
pub mod fleetapi;
pub mod go;
pub mod host;
pub mod listen;
pub mod metrics;
pub mod probe;
pub mod pull_secret;
pub mod report;
pub mod runtime;
pub mod sync;
pub mod sync_mode;
pub mod trust;
pub mod uninstall;
pub mod watch;
