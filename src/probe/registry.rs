//! The registry API half of a probe, once TLS is known to be acceptable: `GET /v2/` (200, or
//! 401 with a `WWW-Authenticate` challenge, is a live registry), and with the pull secret's
//! credentials the check the runtime's login would make: a Bearer challenge → a token
//! request with basic auth and no scope (Harbor answers 401 to bad credentials only when no
//! scope is asked), a Basic challenge → `/v2/` again with basic auth (semantics-protocols.md
//! §1). kubelet tries every matching credential in turn, so one accepted is enough.
//!
//! It does not dial or judge TLS (`net`, `classify`); the client it is given verifies every
//! connection with the judged runtimes' trust (`credtls`), so credentials only go where a
//! runtime would send them. They never go over plain HTTP: a token realm `http://...` is
//! not asked, and the auth is reported as not checked, as a warning (the runtime would send
//! the password in clear); a redirect to `http://` is not followed. Credentials never appear
//! in a message: only the user name and the pull-secret file.

use crate::report::Verdict;
use std::fmt;
use std::time::Instant;

/// Largest response body read (error bodies, token answers, Harbor health).
pub const MAX_BODY: usize = 256 << 10;

/// One credential to try, as a pull secret gave it.
#[derive(Clone)]
pub struct Cred {
    pub username: String,
    password: String,
    /// The pull-secret file it came from.
    pub source: String,
}

impl Cred {
    pub fn new(
        username: impl Into<String>,
        password: impl Into<String>,
        source: impl Into<String>,
    ) -> Cred {
        Cred {
            username: username.into(),
            password: password.into(),
            source: source.into(),
        }
    }
}

impl fmt::Debug for Cred {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cred")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("source", &self.source)
            .finish()
    }
}

/// One `WWW-Authenticate` challenge: the scheme (lower case) and its parameters (names
/// lower case, values unquoted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Most parameters kept per header: a hostile server cannot make us build a huge list.
const MAX_PARAMS: usize = 32;

/// Parse a `WWW-Authenticate` value (RFC 7235 §4.1): one or more challenges, each a scheme
/// then `name=value` parameters (values a token or a quoted string, which may hold commas),
/// or a token68. Malformed tails are dropped, never an error.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let b = header.as_bytes();
    let mut i = 0;
    let mut out: Vec<Challenge> = Vec::new();
    let is_tchar = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c);
    let skip = |i: &mut usize, set: &[u8]| {
        while *i < b.len() && set.contains(&b[*i]) {
            *i += 1;
        }
    };
    let token = |i: &mut usize| -> String {
        let start = *i;
        while *i < b.len() && is_tchar(b[*i]) {
            *i += 1;
        }
        header[start..*i].to_string()
    };
    let mut count = 0;
    while i < b.len() && count < MAX_PARAMS {
        skip(&mut i, b" \t,");
        if i >= b.len() {
            break;
        }
        let word = token(&mut i);
        if word.is_empty() {
            // Not a token: skip one character (never half of one) and resynchronise.
            i += utf8_len(b[i]);
            continue;
        }
        let after_word = i;
        skip(&mut i, b" \t");
        let is_param = i < b.len() && b[i] == b'=' && !out.is_empty() && {
            // `name=value`, not a token68 ending in `=`.
            let mut j = i;
            while j < b.len() && b[j] == b'=' {
                j += 1;
            }
            j == i + 1
        };
        if is_param {
            i += 1;
            skip(&mut i, b" \t");
            let value = if i < b.len() && b[i] == b'"' {
                i += 1;
                let mut v = String::new();
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        i += 1;
                    }
                    let ch_len = utf8_len(b[i]);
                    let end = (i + ch_len).min(b.len());
                    v.push_str(header.get(i..end).unwrap_or(""));
                    i = end;
                }
                i += 1;
                v
            } else {
                token(&mut i)
            };
            count += 1;
            if let Some(c) = out.last_mut() {
                c.params.push((word.to_ascii_lowercase(), value));
            }
        } else {
            i = after_word;
            count += 1;
            out.push(Challenge {
                scheme: word.to_ascii_lowercase(),
                params: Vec::new(),
            });
            // A token68 after the scheme (`Negotiate abc==`) is skipped; a `name=value`
            // is left for the loop.
            skip(&mut i, b" \t");
            let start = i;
            let mut j = i;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b"-._~+/".contains(&b[j])) {
                j += 1;
            }
            let body_end = j;
            while j < b.len() && b[j] == b'=' {
                j += 1;
            }
            let mut k = j;
            skip(&mut k, b" \t");
            let at_end = k >= b.len() || b[k] == b',';
            i = if body_end > start && at_end { j } else { start };
        }
    }
    out
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// What the HTTP part of a probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpVerdict {
    pub verdict: Verdict,
    pub message: String,
    pub fix: String,
    /// The challenges `/v2/` answered with (to recognise Harbor).
    pub challenges: Vec<Challenge>,
    /// What the admin should know although the verdict stands (auth not checked).
    pub warnings: Vec<String>,
}

impl HttpVerdict {
    fn new(verdict: Verdict, message: impl Into<String>, fix: impl Into<String>) -> HttpVerdict {
        HttpVerdict {
            verdict,
            message: message.into(),
            fix: fix.into(),
            challenges: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

/// Most redirects followed (Go's http.Client stops after 10).
const MAX_REDIRECTS: usize = 10;

/// Follow up to [`MAX_REDIRECTS`] redirects, never one to a URL that is not `https`: the
/// request may carry the pull secret's credentials (reqwest drops `Authorization` only when
/// the host or port changes, not the scheme).
pub fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        if attempt.url().scheme() != "https" {
            let to = crate::report::redact_userinfo(attempt.url().as_str());
            attempt.error(format!(
                "refusing to follow a redirect to {to}: not HTTPS (credentials would go in clear)"
            ))
        } else if attempt.previous().len() >= MAX_REDIRECTS {
            attempt.error(format!("stopped after {MAX_REDIRECTS} redirects"))
        } else {
            attempt.follow()
        }
    })
}

/// A response, its body capped at [`MAX_BODY`].
pub struct Answer {
    pub status: reqwest::StatusCode,
    pub challenges: Vec<Challenge>,
    pub body: Vec<u8>,
    /// The `Docker-Distribution-API-Version` header was sent (registries send
    /// `registry/2.0` on `/v2/`).
    pub api_version: bool,
}

/// GET `url`, optionally with basic auth, within the deadline.
pub async fn get(
    client: &reqwest::Client,
    url: &str,
    auth: Option<&Cred>,
    deadline: Instant,
) -> Result<Answer, GetError> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        return Err(GetError::Timeout);
    }
    let mut req = client.get(url).timeout(remaining);
    if let Some(c) = auth {
        req = req.basic_auth(&c.username, Some(&c.password));
    }
    let send = async {
        let mut resp = req.send().await?;
        let status = resp.status();
        let challenges = resp
            .headers()
            .get_all(reqwest::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(parse_challenges)
            .collect();
        let api_version = resp
            .headers()
            .contains_key("docker-distribution-api-version");
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await? {
            let room = MAX_BODY.saturating_sub(body.len());
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() >= MAX_BODY {
                break;
            }
        }
        Ok::<_, reqwest::Error>(Answer {
            status,
            challenges,
            body,
            api_version,
        })
    };
    match tokio::time::timeout_at(deadline.into(), send).await {
        Err(_) => Err(GetError::Timeout),
        Ok(Err(e)) if e.is_timeout() => Err(GetError::Timeout),
        Ok(Err(e)) => Err(GetError::Other(error_chain(&e))),
        Ok(Ok(a)) => Ok(a),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GetError {
    Timeout,
    Other(String),
}

/// The error and its causes, one `: ` apart, without repeating a cause already in the text.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        cur = s.source();
    }
    out
}

fn status_text(s: reqwest::StatusCode) -> String {
    format!("{} {}", s.as_u16(), s.canonical_reason().unwrap_or(""))
        .trim_end()
        .to_string()
}

/// The `errors[0]` of a distribution error body, as `CODE: message`.
fn registry_error_text(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let e = v.get("errors")?.get(0)?;
    let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
    let msg = e.get("message").and_then(|c| c.as_str()).unwrap_or("");
    // The registry's words, shortened, with no control character reaching a terminal or log.
    let text: String = format!("{code}: {msg}").chars().take(200).collect();
    Some(crate::report::printable(&text))
}

fn timeout(url: &str, deadline_what: &str) -> HttpVerdict {
    HttpVerdict::new(
        Verdict::Timeout,
        format!("GET {url}: no answer in time ({deadline_what})"),
        "the registry accepted TLS but did not answer in time: check the registry's load and any proxy in between",
    )
}

/// Check `base` (`https://HOST`) as a registry, with `creds` when the pull secret has some.
pub async fn check(
    client: &reqwest::Client,
    base: &str,
    creds: &[Cred],
    deadline: Instant,
) -> HttpVerdict {
    let url = format!("{base}/v2/");
    let answer = match get(client, &url, None, deadline).await {
        Ok(a) => a,
        Err(GetError::Timeout) => return timeout(&url, "GET /v2/"),
        Err(GetError::Other(e)) => {
            return HttpVerdict::new(
                Verdict::RegistryError,
                format!("GET {url}: {e}"),
                "TLS was accepted but the HTTP exchange failed: check the registry's logs and any proxy in between",
            )
        }
    };
    let mut out = classify_v2(&url, &answer);
    out.challenges = answer.challenges.clone();
    if out.verdict != Verdict::Ok || creds.is_empty() {
        return out;
    }
    let status = answer.status.as_u16();
    let bearer = answer.challenges.iter().find(|c| c.scheme == "bearer");
    let basic = answer.challenges.iter().any(|c| c.scheme == "basic");
    let mut rejected = Vec::new();
    for cred in creds {
        let attempt = if status == 200 {
            // Open registry: nothing to log in to; credentials are not checked.
            return out;
        } else if let Some(ch) = bearer {
            token_request(client, ch, cred, deadline).await
        } else if basic {
            basic_request(client, &url, cred, deadline).await
        } else {
            return out;
        };
        match attempt {
            Attempt::Accepted => return out,
            Attempt::NotChecked(warning) => {
                out.warnings.push(warning);
                return out;
            }
            Attempt::Rejected(message) => rejected.push((cred, message)),
            Attempt::Failed(mut v) => {
                v.challenges = out.challenges;
                return v;
            }
        }
    }
    let who: Vec<String> = rejected
        .iter()
        .map(|(c, _)| format!("user {:?} from {}", c.username, c.source))
        .collect();
    let message = rejected.first().map(|(_, m)| m.clone()).unwrap_or_default();
    HttpVerdict {
        verdict: Verdict::AuthFailed,
        message,
        fix: format!(
            "the registry rejected the pull secret's credentials ({}): fix the pull secret's password \
             (a Harbor robot account's secret, or an OIDC user's CLI secret, not the web password)",
            who.join("; ")
        ),
        challenges: out.challenges,
        warnings: Vec::new(),
    }
}

fn looks_like_html(body: &[u8]) -> bool {
    let head: Vec<u8> = body
        .iter()
        .skip_while(|b| b.is_ascii_whitespace())
        .take(1)
        .copied()
        .collect();
    // `<!doctype html`, `<html`, or any other markup.
    head.starts_with(b"<")
}

/// `/v2/` without credentials: is this a live registry?
fn classify_v2(url: &str, a: &Answer) -> HttpVerdict {
    let status = a.status;
    if status.as_u16() == 200 {
        // A registry says so in a header, or at least answers JSON (`{}`); a web page or a
        // proxy's default answer does neither.
        let json_object =
            serde_json::from_slice::<serde_json::Value>(&a.body).is_ok_and(|v| v.is_object());
        if a.api_version || json_object {
            return HttpVerdict::new(Verdict::Ok, "", "");
        }
        let kind = if looks_like_html(&a.body) {
            "an HTML page"
        } else {
            "no registry answer"
        };
        return HttpVerdict::new(
            Verdict::NotARegistry,
            format!(
                "GET {url}: 200 OK with {kind} and no Docker-Distribution-API-Version header: not a registry API"
            ),
            "something other than a registry answers on this port (a web server or a reverse proxy's default page): point the host at the registry, or route /v2/ to it",
        );
    }
    if status.as_u16() == 401 {
        if a.challenges.is_empty() {
            return HttpVerdict::new(
                Verdict::NotARegistry,
                format!("GET {url}: 401 Unauthorized without a WWW-Authenticate challenge: not a registry API"),
                "something other than a registry answers on this port (a reverse proxy or web app?): point the host at the registry",
            );
        }
        return HttpVerdict::new(Verdict::Ok, "", "");
    }
    if status.is_server_error() {
        let detail = registry_error_text(&a.body)
            .map(|t| format!(" ({t})"))
            .unwrap_or_default();
        return HttpVerdict::new(
            Verdict::RegistryError,
            format!("GET {url}: {}{detail}", status_text(status)),
            "the registry is up but failing: check its logs (and Harbor's health below, if any)",
        );
    }
    HttpVerdict::new(
        Verdict::NotARegistry,
        format!(
            "GET {url}: {}: not a registry API (a registry answers 200, or 401 with a challenge)",
            status_text(status)
        ),
        "this host and port do not serve the registry API at /v2/: check the host, the port, and any reverse proxy's routes",
    )
}

enum Attempt {
    Accepted,
    /// Not asked, on purpose: the warning says why.
    NotChecked(String),
    /// The credentials were refused: the message says where.
    Rejected(String),
    /// Something else went wrong: that is the verdict.
    Failed(HttpVerdict),
}

/// `GET realm?service=SERVICE` with basic auth and no scope (what `docker login` does).
async fn token_request(
    client: &reqwest::Client,
    ch: &Challenge,
    cred: &Cred,
    deadline: Instant,
) -> Attempt {
    let Some(realm) = ch.param("realm") else {
        return Attempt::Failed(HttpVerdict::new(
            Verdict::RegistryError,
            "the Bearer challenge names no realm",
            "the registry's token auth is misconfigured (no realm in WWW-Authenticate)",
        ));
    };
    let mut url = match reqwest::Url::parse(realm) {
        Ok(u) if matches!(u.scheme(), "https" | "http") => u,
        _ => {
            return Attempt::Failed(HttpVerdict::new(
                Verdict::RegistryError,
                format!(
                    "the Bearer challenge's realm {:?} is not an http(s) URL",
                    crate::report::printable(&crate::report::redact_userinfo(realm))
                ),
                "the registry's token auth is misconfigured (check Harbor's external_url)",
            ))
        }
    };
    if let Some(service) = ch.param("service") {
        url.query_pairs_mut().append_pair("service", service);
    }
    let shown = crate::report::redact_userinfo(url.as_str());
    if url.scheme() != "https" {
        // containerd and docker would send the password to a plain-HTTP realm; we do not.
        return Attempt::NotChecked(format!(
            "auth not checked: the registry's Bearer challenge names the token realm {shown}, \
             which is plain HTTP; regtrust does not send the pull secret's password (user {:?} \
             from {}) there, but the runtime would, in clear, on every pull: serve the token \
             service over HTTPS (Harbor: an https:// external_url)",
            cred.username, cred.source
        ));
    }
    match get(client, url.as_str(), Some(cred), deadline).await {
        Err(GetError::Timeout) => Attempt::Failed(timeout(&shown, "token request")),
        Err(GetError::Other(e)) => Attempt::Failed(HttpVerdict::new(
            Verdict::RegistryError,
            format!("failed to fetch oauth token: GET {shown}: {e}"),
            "the token service named by the registry's challenge is unreachable: check Harbor's external_url",
        )),
        Ok(a) => match a.status.as_u16() {
            200..=299 => Attempt::Accepted,
            401 | 403 => Attempt::Rejected(format!(
                "failed to fetch oauth token: unexpected status from GET request to {shown}: {}",
                status_text(a.status)
            )),
            _ if a.status.is_server_error() => Attempt::Failed(HttpVerdict::new(
                Verdict::RegistryError,
                format!(
                    "failed to fetch oauth token: unexpected status from GET request to {shown}: {}",
                    status_text(a.status)
                ),
                "the registry's token service is failing: check its logs",
            )),
            _ => Attempt::Failed(HttpVerdict::new(
                Verdict::RegistryError,
                format!(
                    "failed to fetch oauth token: unexpected status from GET request to {shown}: {}",
                    status_text(a.status)
                ),
                "the registry's token service refused the request: check the realm and service of its challenge",
            )),
        },
    }
}

/// `/v2/` again with basic auth.
async fn basic_request(
    client: &reqwest::Client,
    url: &str,
    cred: &Cred,
    deadline: Instant,
) -> Attempt {
    match get(client, url, Some(cred), deadline).await {
        Err(GetError::Timeout) => Attempt::Failed(timeout(url, "GET /v2/ with basic auth")),
        Err(GetError::Other(e)) => Attempt::Failed(HttpVerdict::new(
            Verdict::RegistryError,
            format!("GET {url}: {e}"),
            "the HTTP exchange failed: check the registry's logs",
        )),
        Ok(a) => match a.status.as_u16() {
            200..=299 => Attempt::Accepted,
            401 | 403 => Attempt::Rejected(format!(
                "GET {url} with basic auth: {}",
                status_text(a.status)
            )),
            _ if a.status.is_server_error() => Attempt::Failed(HttpVerdict::new(
                Verdict::RegistryError,
                format!("GET {url} with basic auth: {}", status_text(a.status)),
                "the registry is failing: check its logs",
            )),
            _ => Attempt::Failed(HttpVerdict::new(
                Verdict::NotARegistry,
                format!("GET {url} with basic auth: {}", status_text(a.status)),
                "this host does not serve the registry API at /v2/",
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(scheme: &str, params: &[(&str, &str)]) -> Challenge {
        Challenge {
            scheme: scheme.into(),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn challenges_parse() {
        let cases: Vec<(&str, Vec<Challenge>)> = vec![
            (
                r#"Bearer realm="https://harbor.test/service/token",service="harbor-registry""#,
                vec![ch(
                    "bearer",
                    &[
                        ("realm", "https://harbor.test/service/token"),
                        ("service", "harbor-registry"),
                    ],
                )],
            ),
            (
                r#"Basic realm="harbor""#,
                vec![ch("basic", &[("realm", "harbor")])],
            ),
            (
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push""#,
                vec![ch(
                    "bearer",
                    &[
                        ("realm", "https://auth.docker.io/token"),
                        ("service", "registry.docker.io"),
                        ("scope", "repository:samalba/my-app:pull,push"),
                    ],
                )],
            ),
            (
                r#"Basic realm="a", Bearer realm="b",service=svc"#,
                vec![
                    ch("basic", &[("realm", "a")]),
                    ch("bearer", &[("realm", "b"), ("service", "svc")]),
                ],
            ),
            (
                r#"BASIC Realm = "x\"y""#,
                vec![ch("basic", &[("realm", "x\"y")])],
            ),
            ("Negotiate abc==", vec![ch("negotiate", &[])]),
            ("Basic", vec![ch("basic", &[])]),
            ("", vec![]),
            ("===,,,", vec![]),
            (
                r#"Bearer realm="unterminated"#,
                vec![ch("bearer", &[("realm", "unterminated")])],
            ),
            (
                "Bearer realm=\"ünï\"",
                vec![ch("bearer", &[("realm", "ünï")])],
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse_challenges(input), want, "{input}");
        }
    }

    #[test]
    fn hostile_challenges_stay_small() {
        let huge = format!("Bearer {}", "a=b,".repeat(100_000));
        let got = parse_challenges(&huge);
        assert_eq!(got.len(), 1);
        assert!(got[0].params.len() <= MAX_PARAMS);
        let garbage: String = (0u8..=255).map(|b| b as char).collect();
        let _ = parse_challenges(&garbage);
        let _ = parse_challenges("\"\"\"\"\\");
        let _ = parse_challenges("Bearer realm=\"\\");
    }

    #[test]
    fn cred_debug_hides_the_password() {
        let c = Cred::new("robot$ci", "s3cret-value", "/pull/.dockerconfigjson");
        let d = format!("{c:?}");
        assert!(!d.contains("s3cret"), "{d}");
        assert!(d.contains("robot$ci"), "{d}");
    }

    #[test]
    fn v2_answers() {
        let a = |status: u16, challenges: Vec<Challenge>, body: &str| Answer {
            status: reqwest::StatusCode::from_u16(status).unwrap(),
            challenges,
            body: body.as_bytes().to_vec(),
            api_version: false,
        };
        let url = "https://h/v2/";
        let cases = [
            (a(200, vec![], "{}"), Verdict::Ok),
            (
                a(
                    200,
                    vec![],
                    "<!DOCTYPE html><html><body>Welcome</body></html>",
                ),
                Verdict::NotARegistry,
            ),
            (a(200, vec![], ""), Verdict::NotARegistry),
            (a(200, vec![], "true"), Verdict::NotARegistry),
            (
                Answer {
                    api_version: true,
                    ..a(200, vec![], "true")
                },
                Verdict::Ok,
            ),
            (
                a(401, vec![ch("basic", &[("realm", "r")])], ""),
                Verdict::Ok,
            ),
            (a(401, vec![], ""), Verdict::NotARegistry),
            (a(404, vec![], "404 page not found"), Verdict::NotARegistry),
            (a(302, vec![], ""), Verdict::NotARegistry),
            (a(403, vec![], ""), Verdict::NotARegistry),
            (
                a(
                    500,
                    vec![],
                    r#"{"errors":[{"code":"UNKNOWN","message":"boom"}]}"#,
                ),
                Verdict::RegistryError,
            ),
            (a(503, vec![], "<html>"), Verdict::RegistryError),
        ];
        for (ans, want) in cases {
            let v = classify_v2(url, &ans);
            assert_eq!(v.verdict, want, "{}", ans.status);
        }
        let v = classify_v2(
            url,
            &a(
                500,
                vec![],
                r#"{"errors":[{"code":"UNKNOWN","message":"boom"}]}"#,
            ),
        );
        assert_eq!(
            v.message,
            "GET https://h/v2/: 500 Internal Server Error (UNKNOWN: boom)"
        );
        let v = classify_v2(url, &a(200, vec![], "\n <html><title>nginx</title>"));
        assert_eq!(
            v.message,
            "GET https://h/v2/: 200 OK with an HTML page and no Docker-Distribution-API-Version header: not a registry API"
        );
    }
}
