//! The aggregator's API as both of its sides speak it: the route paths, the token file, and
//! the ONE HTTP client that the agent's push (`agent::push`) and `regtrust report`
//! (`aggregator::client`) use. One CA rule (the given CA file, else the node's system
//! bundle; never reqwest's built-in roots), no redirects, timeouts, and every answer read
//! with a cap checked while it streams in, so a hostile or broken server cannot make a
//! client buffer more than the cap (issue 9 point 7). The server (`aggregator::api`) routes
//! on the same path constants, so a path is spelled once.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Every path the aggregator serves. Path parameters in axum's `{name}` syntax.
pub mod routes {
    pub const REPORTS: &str = "/api/v1/reports";
    pub const NODES: &str = "/api/v1/nodes";
    pub const NODE: &str = "/api/v1/nodes/{node}";
    pub const REGISTRIES: &str = "/api/v1/registries";
    pub const EVENTS: &str = "/api/v1/events";
    pub const PREFLIGHT: &str = "/api/v1/preflight";
    pub const PAGE: &str = "/";
    pub const PAGE_NODE: &str = "/nodes/{node}";
    pub const PAGE_REGISTRY: &str = "/registries/{host}";
    pub const METRICS: &str = "/metrics";
    pub const HEALTHZ: &str = "/healthz";
}

/// Largest CA file read to verify an https aggregator.
pub const MAX_CA_FILE: u64 = 4 << 20;
/// How much of an error answer is read (the aggregator's are `{"error": "..."}`).
pub const MAX_ERROR_BODY: usize = 64 << 10;
/// How much of an error message is kept.
pub const MAX_ERROR_TEXT: usize = 300;

/// Bundles tried for an https URL without a CA file (`SSL_CERT_FILE` first), as Go's
/// `crypto/x509` looks for them on Linux.
pub(crate) const SYSTEM_BUNDLES: [&str; 3] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// Why a client cannot be built. Errors name the flag the value came from.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{flag} {url:?}: {why}")]
    Url {
        flag: &'static str,
        url: String,
        why: String,
    },
    #[error("{flag} {}: {why}", path.display())]
    Ca {
        flag: &'static str,
        path: PathBuf,
        why: String,
    },
    #[error("{url_flag} {url}: https needs the CA that signs the aggregator's certificate: give {ca_flag} (no system bundle found in {tried})")]
    NoRoots {
        url_flag: &'static str,
        ca_flag: &'static str,
        url: String,
        tried: String,
    },
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// Why one call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("token file {}: {why}", path.display())]
    Token { path: PathBuf, why: String },
    #[error("no answer within {}s", .0.as_secs_f64())]
    Timeout(Duration),
    #[error("{0}")]
    Send(String),
    #[error("answer larger than {limit} bytes; stopped reading it")]
    TooLarge { limit: usize },
}

/// How a client is set up: the flag names (for errors), the CA file, the timeouts.
#[derive(Debug, Clone)]
pub struct Spec<'a> {
    pub url_flag: &'static str,
    pub ca_flag: &'static str,
    pub ca_file: Option<&'a Path>,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub user_agent: &'static str,
}

/// Parse and check an aggregator URL: http or https, a host, and no credentials (they
/// would end up in logs; the token goes in a file).
pub fn parse_url(flag: &'static str, raw: &str) -> Result<reqwest::Url, SetupError> {
    let bad = |why: &str| SetupError::Url {
        flag,
        url: raw.to_string(),
        why: why.to_string(),
    };
    let url = reqwest::Url::parse(raw).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(&format!(
            "scheme {:?}; expected an http:// or https:// URL",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(SetupError::Url {
            flag,
            url: "(not shown: it holds credentials)".into(),
            why: "credentials in the URL would end up in logs; put the token in a token file"
                .into(),
        });
    }
    Ok(url)
}

/// The one client: an HTTP client set up by the rules above, and the token file it reads
/// before every call (so a rotated token is picked up without a restart).
#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    token_file: Option<PathBuf>,
    timeout: Duration,
    /// For an https URL: what a refused certificate was verified with, and what to do.
    roots_hint: Option<String>,
}

/// An answer, read within its cap.
#[derive(Debug)]
pub struct Answer {
    pub status: reqwest::StatusCode,
    pub body: Vec<u8>,
}

impl Answer {
    /// The `error` of a `{"error": "..."}` answer, shortened and made printable; empty when
    /// the body is not one.
    pub fn error_text(&self) -> String {
        error_text(&self.body)
    }
}

impl ApiClient {
    pub fn new(
        url: &reqwest::Url,
        spec: &Spec<'_>,
        token_file: Option<PathBuf>,
    ) -> Result<ApiClient, SetupError> {
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(spec.connect_timeout)
            .timeout(spec.timeout)
            .user_agent(spec.user_agent);
        let mut roots_hint = None;
        if url.scheme() == "https" || spec.ca_file.is_some() {
            let (path, pem) = match spec.ca_file {
                Some(p) => (
                    p.to_path_buf(),
                    crate::ca::read_capped(p, MAX_CA_FILE).map_err(|e| SetupError::Ca {
                        flag: spec.ca_flag,
                        path: p.to_path_buf(),
                        why: match e {
                            crate::ca::ReadCappedError::TooLarge { .. } => {
                                format!("larger than {MAX_CA_FILE} bytes")
                            }
                            other => other.to_string(),
                        },
                    })?,
                ),
                None => system_bundle().ok_or_else(|| SetupError::NoRoots {
                    url_flag: spec.url_flag,
                    ca_flag: spec.ca_flag,
                    url: url.to_string(),
                    tried: SYSTEM_BUNDLES.join(", "),
                })?,
            };
            let ca = |why: String| SetupError::Ca {
                flag: spec.ca_flag,
                path: path.clone(),
                why,
            };
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| ca(format!("not a PEM certificate bundle: {e}")))?;
            if certs.is_empty() {
                return Err(ca("no PEM certificate in it".into()));
            }
            for c in certs {
                b = b.add_root_certificate(c);
            }
            roots_hint = Some(match spec.ca_file {
                Some(p) => format!(
                    "verified with {} {}: is it the CA that signs the aggregator's certificate?",
                    spec.ca_flag,
                    p.display()
                ),
                None => format!(
                    "verified with the system bundle {}: give {} with the CA that signs the \
                     aggregator's certificate",
                    path.display(),
                    spec.ca_flag
                ),
            });
        }
        let http = b.build().map_err(|e| SetupError::Client(chain(&e)))?;
        Ok(ApiClient {
            http,
            token_file,
            timeout: spec.timeout,
            roots_hint,
        })
    }

    /// One call: `method url` with an optional JSON body and the token as a bearer. A
    /// success is read up to `max_body` (more fails the call as it streams in); an error
    /// answer is read up to `MAX_ERROR_BODY` and the rest dropped.
    pub async fn call(
        &self,
        method: reqwest::Method,
        url: reqwest::Url,
        json_body: Option<Vec<u8>>,
        max_body: usize,
    ) -> Result<Answer, CallError> {
        let mut req = self.http.request(method, url);
        if let Some(body) = json_body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        if let Some(path) = &self.token_file {
            // A file read: off the async threads (the agent has a single one).
            let path = path.clone();
            let token = tokio::task::spawn_blocking(move || read_token(&path))
                .await
                .map_err(|e| CallError::Send(format!("reading the token: {e}")))??;
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.map_err(|e| self.failed(&e))?;
        let status = resp.status();
        let body = if status.is_success() {
            read_capped_body(resp, max_body, false).await
        } else {
            read_capped_body(resp, MAX_ERROR_BODY.min(max_body), true).await
        }
        .map_err(|e| match e {
            BodyError::TooLarge(limit) => CallError::TooLarge { limit },
            BodyError::Read(e) => self.failed(&e),
        })?;
        Ok(Answer { status, body })
    }

    fn failed(&self, e: &reqwest::Error) -> CallError {
        if e.is_timeout() {
            return CallError::Timeout(self.timeout);
        }
        match &self.roots_hint {
            Some(hint) if certificate_refused(e) => {
                CallError::Send(format!("{}; {hint}", chain(e)))
            }
            _ => CallError::Send(chain(e)),
        }
    }
}

/// Whether `e` failed because rustls refused the server's certificate. Read from the text:
/// the rustls error travels boxed through hyper-util and reqwest, where a downcast did not
/// find it, and rustls 0.23 prints `Error::InvalidCertificate` as "invalid peer certificate: ...".
fn certificate_refused(e: &reqwest::Error) -> bool {
    chain(e).contains("invalid peer certificate")
}

enum BodyError {
    TooLarge(usize),
    Read(reqwest::Error),
}

/// Read a body chunk by chunk, never holding more than `cap` bytes: past it, the
/// connection is dropped (`truncate`: the first `cap` bytes are kept and the rest is not
/// read). A `Content-Length` above the cap fails before any byte is read.
async fn read_capped_body(
    mut resp: reqwest::Response,
    cap: usize,
    truncate: bool,
) -> Result<Vec<u8>, BodyError> {
    let announced = resp.content_length().and_then(|n| usize::try_from(n).ok());
    if !truncate && announced.is_some_and(|n| n > cap) {
        return Err(BodyError::TooLarge(cap));
    }
    let mut body = Vec::with_capacity(announced.unwrap_or(0).min(cap).min(16 << 20));
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Read)? {
        if body.len() + chunk.len() > cap {
            if truncate {
                body.extend_from_slice(&chunk[..cap - body.len()]);
                return Ok(body);
            }
            return Err(BodyError::TooLarge(cap));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The first system CA bundle found (`SSL_CERT_FILE` first), as Go looks for it on Linux;
/// also the PostgreSQL client's default roots (`aggregator::store::postgres`).
pub(crate) fn system_bundle() -> Option<(PathBuf, Vec<u8>)> {
    let from_env = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
    from_env
        .into_iter()
        .chain(SYSTEM_BUNDLES.iter().map(PathBuf::from))
        .find_map(|p| {
            crate::ca::read_capped(&p, MAX_CA_FILE)
                .ok()
                .map(|pem| (p, pem))
        })
}

/// The token: the file's one line, its trailing newline stripped (SPEC, Aggregator); the
/// aggregator's own rules (`read_token_file`). Errors name the file, never the content.
pub fn read_token(path: &Path) -> Result<String, CallError> {
    use crate::aggregator::ConfigError;
    crate::aggregator::read_token_file(path).map_err(|e| CallError::Token {
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
pub fn error_text(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return String::new();
    };
    let Some(e) = v.get("error").and_then(|e| e.as_str()) else {
        return String::new();
    };
    let short: String = e.chars().take(MAX_ERROR_TEXT).collect();
    crate::report::printable(&short)
}

/// An error and its causes, once each (reqwest's Display hides the cause).
pub fn chain(e: &dyn std::error::Error) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read as _, Write as _};

    fn spec() -> Spec<'static> {
        Spec {
            url_flag: "--url",
            ca_flag: "--ca-file",
            ca_file: None,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(20),
            user_agent: "regtrust-test",
        }
    }

    #[test]
    fn urls() {
        for u in [
            "http://aggregator.regtrust-system:8080/api/v1/reports",
            "http://[::1]:8080/x",
            "https://agg",
        ] {
            assert!(parse_url("--url", u).is_ok(), "{u}");
        }
        for (u, why) in [
            ("", "relative URL"),
            ("ftp://agg/x", "expected an http"),
            ("file:///etc/passwd", "expected an http"),
            ("http://user:pw@agg/x", "credentials"),
            ("http://tok@agg/x", "credentials"),
        ] {
            let err = parse_url("--url", u).unwrap_err().to_string();
            assert!(err.contains(why), "{u}: {err}");
            assert!(!err.contains("pw@"), "{err}");
        }
    }

    #[test]
    fn error_answers_keep_only_the_error_field() {
        let cases: [(&[u8], &str); 5] = [
            (
                br#"{"error":"invalid report: node is empty"}"#,
                "invalid report: node is empty",
            ),
            (br#"{"error":"a\nb\u001b[2J"}"#, "a\\nb\\u{1b}[2J"),
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

    /// A server that answers 200 with a chunked body that never ends: the client stops at
    /// its cap, holding no more than the cap, instead of buffering until some far limit.
    /// Returns how many bytes the server managed to write before the client hung up.
    fn endless_server(content_length: Option<u64>) -> (String, std::thread::JoinHandle<u64>) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/api/v1/nodes", l.local_addr().unwrap());
        let h = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            // A client that never reads must not hang the test.
            s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let head = match content_length {
                Some(n) => format!("HTTP/1.1 200 OK\r\ncontent-length: {n}\r\n\r\n"),
                None => "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_string(),
            };
            s.write_all(head.as_bytes()).unwrap();
            let chunk = vec![b'x'; 64 << 10];
            let mut sent = 0u64;
            // Stop on our own after 64 MiB: a client that buffers that far has failed.
            while sent < 64 << 20 {
                let ok = match content_length {
                    Some(_) => s.write_all(&chunk).is_ok(),
                    None => s
                        .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                        .and_then(|_| s.write_all(&chunk))
                        .and_then(|_| s.write_all(b"\r\n"))
                        .is_ok(),
                };
                if !ok {
                    break;
                }
                sent += chunk.len() as u64;
            }
            sent
        });
        (url, h)
    }

    #[test]
    fn a_body_is_capped_while_it_streams() {
        for announced in [None, Some(1u64 << 40)] {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let (url, server) = endless_server(announced);
            let url = reqwest::Url::parse(&url).unwrap();
            let client = ApiClient::new(&url, &spec(), None).unwrap();
            let err = rt
                .block_on(client.call(reqwest::Method::GET, url, None, 1 << 20))
                .unwrap_err();
            assert!(
                matches!(err, CallError::TooLarge { limit } if limit == 1 << 20),
                "{err}"
            );
            // The connection lives in the runtime's tasks: dropping it closes the socket.
            drop(client);
            drop(rt);
            let sent = server.join().unwrap();
            // The client hung up long before the server's own 64 MiB stop (socket
            // buffers hold a few MiB at most).
            assert!(sent < 32 << 20, "{announced:?}: server wrote {sent} bytes");
        }
    }
}
