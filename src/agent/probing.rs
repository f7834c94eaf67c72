//! THE PROBE SEAM. The agent runs every probe round through `probe_round` and nothing else,
//! so wiring the probe module is a change to this one file.
//!
//! INTEGRATOR: not wired yet. Until it is, a round returns the sync's registries unchanged:
//! verdict `unknown`, no probe entries, no `regtrust_server_cert_not_after_seconds`. No
//! verdict is invented here.

use crate::report::{RegistryReport, Report};
use crate::sync::{Config, Inputs};

/// One probe round over every managed registry: what the container runtimes on this node
/// would see when pulling (SPEC, Probe verdicts).
///
/// Called at start (after the first sync), every `--probe-interval` (jittered) and after
/// every change. `synced` is the latest sync report (its trust entries say what is
/// installed where); `inputs` carries the pull secrets and CA choices read by that sync.
///
/// From each returned registry, matched by `host`, the agent takes `verdict`, `message` and
/// `probes`; `trust` and `ca` always come from the latest sync. The round runs on the async
/// threads: it must bound its own time (a timeout per connection) and put blocking work
/// behind `spawn_blocking`.
pub async fn probe_round(cfg: &Config, inputs: &Inputs, synced: &Report) -> Vec<RegistryReport> {
    // INTEGRATOR: replace with the probe module's round, e.g.
    // `crate::probe::round(cfg, inputs, synced).await`.
    let _ = (cfg, inputs);
    synced.registries.clone()
}
