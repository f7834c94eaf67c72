//! Pushing the report to `--report-url` (the aggregator's `POST /api/v1/reports`): one task
//! that always sends the latest report it was given, with the bearer token re-read from
//! `--report-token-file` before every attempt (so a rotated token is used at once), and
//! that backs off with jitter up to 5 minutes while the aggregator is down. Reports that
//! arrive meanwhile replace the pending one; nothing here ever waits on a sync or makes a
//! sync wait. Credentials never reach a log or an error: the token file is named, never
//! echoed, and a URL holding credentials is refused.

use super::{random_unit, Shared, StopRx};
use crate::fleetapi::{self, ApiClient, CallError};
use crate::report::Report;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Exponential backoff with jitter between failed pushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failure (before jitter).
    pub base: Duration,
    /// The longest wait.
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(300),
        }
    }
}

impl Backoff {
    /// The wait after `failures` failures in a row: `base * 2^(failures-1)`, capped, of which
    /// half is fixed and half random (`unit` in [0, 1)), so a fleet of nodes that lost the
    /// aggregator together does not retry in step.
    pub fn delay(&self, failures: u32, unit: f64) -> Duration {
        let doublings = failures.saturating_sub(1).min(30);
        let full = self
            .base
            .saturating_mul(1u32 << doublings.min(20))
            .min(self.cap);
        full / 2 + full.mul_f64(unit.clamp(0.0, 1.0) / 2.0)
    }
}

/// Where and how reports are pushed: the shared aggregator client (`fleetapi`), so the
/// agent and `regtrust report` follow one CA rule, one token rule and one body cap.
pub struct Target {
    url: reqwest::Url,
    client: ApiClient,
}

/// Why `--report-url` and its flags cannot be used.
pub type TargetError = fleetapi::SetupError;

/// Why one push failed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("--report-token-file {}: {why}", path.display())]
    Token { path: PathBuf, why: String },
    #[error("{0}")]
    Send(String),
    #[error("the aggregator answered {status}{}", if error.is_empty() { String::new() } else { format!(": {error}") })]
    Status {
        status: reqwest::StatusCode,
        error: String,
    },
}

/// The aggregator's answer to a push is a few bytes of JSON.
const MAX_ANSWER: usize = 64 << 10;

impl Target {
    pub fn new(
        url: &str,
        token_file: Option<PathBuf>,
        ca_file: Option<&Path>,
    ) -> Result<Target, TargetError> {
        let parsed = fleetapi::parse_url("--report-url", url)?;
        let spec = fleetapi::Spec {
            url_flag: "--report-url",
            ca_flag: "--report-ca-file",
            ca_file,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(15),
            user_agent: concat!("regtrust-agent/", env!("CARGO_PKG_VERSION")),
        };
        let client = ApiClient::new(&parsed, &spec, token_file)?;
        Ok(Target {
            url: parsed,
            client,
        })
    }

    pub fn url(&self) -> &reqwest::Url {
        &self.url
    }

    /// One POST of `report`.
    pub async fn push(&self, report: &Report) -> Result<(), PushError> {
        let body = serde_json::to_vec(report).map_err(|e| PushError::Send(e.to_string()))?;
        let answer = self
            .client
            .call(
                reqwest::Method::POST,
                self.url.clone(),
                Some(body),
                MAX_ANSWER,
            )
            .await
            .map_err(|e| match e {
                CallError::Token { path, why } => PushError::Token { path, why },
                other => PushError::Send(other.to_string()),
            })?;
        if answer.status.is_success() {
            return Ok(());
        }
        Err(PushError::Status {
            status: answer.status,
            error: answer.error_text(),
        })
    }
}

/// The token: the file's one line, its trailing newline (`\n` or `\r\n`) stripped (SPEC,
/// Aggregator). Errors name the file and what is wrong, never the content.
pub fn read_token(path: &Path) -> Result<String, PushError> {
    fleetapi::read_token(path).map_err(|e| match e {
        CallError::Token { path, why } => PushError::Token { path, why },
        other => PushError::Send(other.to_string()),
    })
}

/// The push task: waits for a report, pushes the latest one, backs off on failure.
pub(super) async fn run(
    target: Target,
    backoff: Backoff,
    mut latest: watch::Receiver<Option<Arc<Report>>>,
    shared: Arc<Shared>,
    mut stop: StopRx,
) {
    let url = target.url().to_string();
    let mut failures: u32 = 0;
    loop {
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => return,
            changed = latest.changed() => if changed.is_err() { return },
        }
        loop {
            let Some(report) = latest.borrow_and_update().clone() else {
                break;
            };
            let result = tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => return,
                r = target.push(&report) => r,
            };
            match result {
                Ok(()) => {
                    shared.counters.push(true);
                    if failures > 0 {
                        tracing::info!(url = %url, failed_attempts = failures, "report push works again");
                    }
                    failures = 0;
                    break;
                }
                Err(e) => {
                    shared.counters.push(false);
                    failures = failures.saturating_add(1);
                    let wait = backoff.delay(failures, random_unit());
                    if failures == 1 {
                        tracing::warn!(url = %url, error = %e, "report push failed; retrying with backoff (only the latest report is kept)");
                    } else {
                        tracing::debug!(url = %url, error = %e, attempt = failures, wait_ms = wait.as_millis() as u64, "report push failed again");
                    }
                    tokio::select! {
                        biased;
                        _ = stop.wait_for(|s| *s) => return,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_jitters() {
        let b = Backoff::default();
        let cases = [
            (1, 0.0, Duration::from_millis(500)),
            (1, 0.999_999, Duration::from_millis(1000)),
            (2, 0.0, Duration::from_secs(1)),
            (3, 0.5, Duration::from_secs(3)),
            (9, 1.0, Duration::from_secs(256)),
            (10, 1.0, Duration::from_secs(300)),
            (10, 0.0, Duration::from_secs(150)),
            (u32::MAX, 1.0, Duration::from_secs(300)),
            (0, 0.0, Duration::from_millis(500)),
        ];
        for (failures, unit, want) in cases {
            let got = b.delay(failures, unit);
            let diff = got.abs_diff(want);
            assert!(
                diff < Duration::from_millis(2),
                "{failures} {unit}: {got:?} != {want:?}"
            );
        }
    }

    #[test]
    fn token_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("token");
        let ok: [(&[u8], &str); 4] = [
            (b"s3cret\n", "s3cret"),
            (b"s3cret\r\n", "s3cret"),
            (b"s3cret", "s3cret"),
            (b"a.b-c_d~e+f/g=\n", "a.b-c_d~e+f/g="),
        ];
        for (bytes, want) in ok {
            std::fs::write(&p, bytes).unwrap();
            assert_eq!(read_token(&p).unwrap(), want);
        }
        let huge = vec![b'a'; 64 << 10];
        let bad: [(&[u8], &str); 7] = [
            (b"", "empty"),
            (b"\n", "empty"),
            (b"one\ntwo\n", "more than one line"),
            (b"sp ace\n", "printable ASCII"),
            (b"\xff\xfe\n", "not UTF-8"),
            (b"tab\there", "printable ASCII"),
            (&huge, "larger than"),
        ];
        for (bytes, why) in bad {
            std::fs::write(&p, bytes).unwrap();
            let err = read_token(&p).unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
            assert!(err.contains("token"), "{err}");
            // Never the content.
            assert!(!err.contains("two") && !err.contains("sp ace"), "{err}");
        }
        let err = read_token(&dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing"), "{err}");
    }

    #[test]
    fn targets() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "garbage").unwrap();
        let ok = [
            "http://aggregator.regtrust-system:8080/api/v1/reports",
            "http://127.0.0.1:1/api/v1/reports",
            "http://[::1]:8080/x",
        ];
        for u in ok {
            assert!(Target::new(u, None, None).is_ok(), "{u}");
        }
        let bad = [
            ("", "relative URL"),
            ("aggregator:8080", "http"),
            ("ftp://agg/x", "expected an http"),
            ("file:///etc/passwd", "expected an http"),
            ("http://user:pw@agg/x", "credentials"),
            ("http://tok@agg/x", "credentials"),
        ];
        for (u, why) in bad {
            let err = Target::new(u, None, None).err().expect(u).to_string();
            assert!(err.contains(why), "{u}: {err}");
            assert!(!err.contains("pw@"), "{err}");
        }
        let err = Target::new("https://agg/x", None, Some(&ca))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("ca.pem") && err.contains("--report-ca-file"),
            "{err}"
        );
        let err = Target::new("https://agg/x", None, Some(&dir.path().join("none")))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("none"), "{err}");
    }
}
