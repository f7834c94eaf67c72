//! Pushing the report to `--report-url` (the aggregator's `POST /api/v1/reports`): one task
//! that always sends the latest report it was given, with the bearer token re-read from
//! `--report-token-file` before every attempt (so a rotated token is used at once), and
//! that backs off with jitter up to 5 minutes while the aggregator is down. Reports that
//! arrive meanwhile replace the pending one; nothing here ever waits on a sync or makes a
//! sync wait. Credentials never reach a log or an error: the token file is named, never
//! echoed, and a URL holding credentials is refused.

use super::{random_unit, Shared, StopRx};
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

/// Where and how reports are pushed.
pub struct Target {
    url: reqwest::Url,
    token_file: Option<PathBuf>,
    client: reqwest::Client,
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("--report-url {url:?}: {why}")]
    Url { url: String, why: String },
    #[error("--report-ca-file {}: {why}", path.display())]
    Ca { path: PathBuf, why: String },
    #[error("--report-url {url}: https needs the CA that signs the aggregator's certificate: give --report-ca-file (no system bundle found in {tried})")]
    NoRoots { url: String, tried: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

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

/// Bundles tried for an https URL without `--report-ca-file` (`SSL_CERT_FILE` first).
pub(crate) const SYSTEM_BUNDLES: [&str; 3] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];
const MAX_CA_FILE_BYTES: u64 = 4 << 20;
/// How much of an error answer is read (the aggregator's are `{"error": "..."}`).
const MAX_ERROR_BODY: usize = 4096;
const MAX_ERROR_TEXT: usize = 300;

impl Target {
    pub fn new(
        url: &str,
        token_file: Option<PathBuf>,
        ca_file: Option<&Path>,
    ) -> Result<Target, TargetError> {
        let bad = |why: &str| TargetError::Url {
            url: url.to_string(),
            why: why.to_string(),
        };
        let parsed = reqwest::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(bad("expected an http:// or https:// URL"));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(bad("no host"));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(TargetError::Url {
                url: "(not shown: it holds credentials)".into(),
                why: "credentials in the URL would end up in logs; put the token in --report-token-file".into(),
            });
        }
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .user_agent(concat!("regtrust-agent/", env!("CARGO_PKG_VERSION")));
        if parsed.scheme() == "https" {
            let (path, pem) = match ca_file {
                Some(p) => (
                    p.to_path_buf(),
                    crate::ca::read_capped(p, MAX_CA_FILE_BYTES).map_err(|e| TargetError::Ca {
                        path: p.to_path_buf(),
                        why: e.to_string(),
                    })?,
                ),
                None => system_bundle().ok_or_else(|| TargetError::NoRoots {
                    url: parsed.to_string(),
                    tried: SYSTEM_BUNDLES.join(", "),
                })?,
            };
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| TargetError::Ca {
                    path: path.clone(),
                    why: format!("not a PEM bundle: {e}"),
                })?;
            if certs.is_empty() {
                return Err(TargetError::Ca {
                    path,
                    why: "no PEM certificate in it".into(),
                });
            }
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        let client = b.build().map_err(|e| TargetError::Client(chain(&e)))?;
        Ok(Target {
            url: parsed,
            token_file,
            client,
        })
    }

    pub fn url(&self) -> &reqwest::Url {
        &self.url
    }

    /// One POST of `report`.
    pub async fn push(&self, report: &Report) -> Result<(), PushError> {
        let body = serde_json::to_vec(report).map_err(|e| PushError::Send(e.to_string()))?;
        let mut req = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(path) = &self.token_file {
            // A file read: off the agent's (single) async thread, like every other one.
            let path = path.clone();
            let token = tokio::task::spawn_blocking(move || read_token(&path))
                .await
                .map_err(|e| PushError::Send(format!("reading the token: {e}")))??;
            req = req.bearer_auth(token);
        }
        let mut resp = req.send().await.map_err(|e| PushError::Send(chain(&e)))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let mut body = Vec::new();
        while body.len() < MAX_ERROR_BODY {
            match resp.chunk().await {
                Ok(Some(c)) => body.extend_from_slice(&c),
                _ => break,
            }
        }
        let mut error = error_text(&body);
        if status == reqwest::StatusCode::METHOD_NOT_ALLOWED {
            // POST to the aggregator's base URL hits the page (GET only).
            error.push_str(
                "; --report-url must be the aggregator's reports endpoint: add /api/v1/reports \
                 (e.g. http://regtrust-aggregator.regtrust-system:9811/api/v1/reports)",
            );
        }
        Err(PushError::Status { status, error })
    }
}

pub(crate) fn system_bundle() -> Option<(PathBuf, Vec<u8>)> {
    let from_env = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
    from_env
        .into_iter()
        .chain(SYSTEM_BUNDLES.iter().map(PathBuf::from))
        .find_map(|p| {
            crate::ca::read_capped(&p, MAX_CA_FILE_BYTES)
                .ok()
                .map(|pem| (p, pem))
        })
}

/// The token: the file's one line, its trailing newline (`\n` or `\r\n`) stripped (SPEC,
/// Aggregator). Errors name the file and what is wrong, never the content.
pub fn read_token(path: &Path) -> Result<String, PushError> {
    use crate::aggregator::ConfigError;
    // The aggregator owns the token-file rules; the agent reads its file the same way.
    crate::aggregator::read_token_file(path).map_err(|e| PushError::Token {
        path: path.to_path_buf(),
        why: match e {
            ConfigError::TokenRead { source, .. } => source.to_string(),
            ConfigError::TokenBad { what, .. } => what,
            other => other.to_string(),
        },
    })
}

/// The `error` of a `{"error": "..."}` answer, shortened and made printable; nothing else
/// of the body is kept.
fn error_text(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return String::new();
    };
    let Some(e) = v.get("error").and_then(|e| e.as_str()) else {
        return String::new();
    };
    e.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_ERROR_TEXT)
        .collect()
}

/// An error and its causes, once each (reqwest's Display hides the cause).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let s_text = s.to_string();
        if !out.contains(&s_text) {
            out.push_str(": ");
            out.push_str(&s_text);
        }
        cur = s.source();
    }
    out
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

    #[test]
    fn error_answers_keep_only_the_error_field() {
        let cases: [(&[u8], &str); 5] = [
            (
                br#"{"error":"invalid report: node is empty"}"#,
                "invalid report: node is empty",
            ),
            (br#"{"error":"a\nb"}"#, "a b"),
            (b"<html>proxy error</html>", ""),
            (br#"{"message":"x"}"#, ""),
            (b"", ""),
        ];
        for (body, want) in cases {
            assert_eq!(error_text(body), want);
        }
        let long = format!(r#"{{"error":"{}"}}"#, "x".repeat(10_000));
        assert_eq!(error_text(long.as_bytes()).len(), MAX_ERROR_TEXT);
    }
}
