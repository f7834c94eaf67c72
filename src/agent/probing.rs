//! The probe seam: the agent runs every probe round through `probe_round` and nothing else.
//! The round itself is `probe::probe_all` (trust views read in `spawn_blocking`, hosts
//! probed concurrently, each bounded by its own timeout).

use crate::report::{RegistryReport, Report};
use crate::sync::{Config, Inputs};
use std::time::Duration;

/// How long one registry may take in a round; the whole round costs about the slowest one.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// One probe round over every managed registry: what the container runtimes on this node
/// would see when pulling (SPEC, Probe verdicts).
///
/// Called at start (after the first sync), every `--probe-interval` (jittered) and after
/// every change. From each returned registry, matched by `host`, the agent takes `verdict`,
/// `message` and `probes`; `trust` and `ca` always come from the latest sync (`synced`).
pub async fn probe_round(cfg: &Config, inputs: &Inputs, synced: &Report) -> Vec<RegistryReport> {
    let hosts: Vec<_> = inputs.hosts.keys().cloned().collect();
    if hosts.is_empty() {
        return synced.registries.clone();
    }
    crate::probe::probe_all(cfg, inputs, &hosts, PROBE_TIMEOUT).await
}
