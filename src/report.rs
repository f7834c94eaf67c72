//! The `regtrust.report/v1` document (SPEC, Report document): the one data model that
//! `sync`, `probe`, the agent's pushes, `/report` and the aggregator all speak. It owns the
//! wire names of verdicts and trust states; it does not decide them (`trust` and `probe` do).
//! A report never carries credentials, tokens or key material: nothing here has a field
//! for them.

use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

pub const SCHEMA: &str = "regtrust.report/v1";

/// Probe verdicts, worst last (the order `worst` relies on). The wire codes are written
/// once, here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Ok,
    /// Not probed yet (a sync-only report).
    Unknown,
    AuthFailed,
    NotARegistry,
    RegistryError,
    Timeout,
    ConnectionRefused,
    DnsError,
    TlsError,
    LegacyCommonName,
    HostnameMismatch,
    Expired,
    UnknownAuthority,
}

impl Verdict {
    pub const ALL: [Verdict; 13] = [
        Verdict::Ok,
        Verdict::Unknown,
        Verdict::AuthFailed,
        Verdict::NotARegistry,
        Verdict::RegistryError,
        Verdict::Timeout,
        Verdict::ConnectionRefused,
        Verdict::DnsError,
        Verdict::TlsError,
        Verdict::LegacyCommonName,
        Verdict::HostnameMismatch,
        Verdict::Expired,
        Verdict::UnknownAuthority,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Unknown => "unknown",
            Verdict::AuthFailed => "auth_failed",
            Verdict::NotARegistry => "not_a_registry",
            Verdict::RegistryError => "registry_error",
            Verdict::Timeout => "timeout",
            Verdict::ConnectionRefused => "connection_refused",
            Verdict::DnsError => "dns_error",
            Verdict::TlsError => "tls_error",
            Verdict::LegacyCommonName => "legacy_common_name",
            Verdict::HostnameMismatch => "hostname_mismatch",
            Verdict::Expired => "expired",
            Verdict::UnknownAuthority => "unknown_authority",
        }
    }

    pub fn parse(s: &str) -> Option<Verdict> {
        Verdict::ALL.into_iter().find(|v| v.as_str() == s)
    }

    pub fn is_failure(self) -> bool {
        !matches!(self, Verdict::Ok | Verdict::Unknown)
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state of one trust file after a sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrustState {
    Installed,
    Unchanged,
    Conflict,
    Error,
    Missing,
    Removed,
}

impl TrustState {
    pub fn as_str(self) -> &'static str {
        match self {
            TrustState::Installed => "installed",
            TrustState::Unchanged => "unchanged",
            TrustState::Conflict => "conflict",
            TrustState::Error => "error",
            TrustState::Missing => "missing",
            TrustState::Removed => "removed",
        }
    }

    /// States that need an operator (exit code 1).
    pub fn needs_attention(self) -> bool {
        matches!(
            self,
            TrustState::Conflict | TrustState::Error | TrustState::Missing
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    pub node: String,
    pub agent_version: String,
    /// RFC 3339.
    pub generated_at: String,
    pub registries: Vec<RegistryReport>,
    pub problems: Vec<Problem>,
    /// The container runtimes found on the node and why (the files that show each), and
    /// whether regtrust manages it this pass. Absent in reports from older agents.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runtimes: Vec<RuntimeDetection>,
}

/// A runtime `--runtime auto` found (or `--runtime` named), with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeDetection {
    pub runtime: String,
    pub selected: bool,
    /// Node paths of the config files, sockets or binaries seen (`--runtime` when named
    /// on the command line without any).
    #[serde(default)]
    pub evidence: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistryReport {
    pub host: String,
    pub verdict: Verdict,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub trust: Vec<TrustEntry>,
    #[serde(default)]
    pub probes: Vec<ProbeEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<CaSummary>,
    /// Harbor's `/api/v2.0/health` when the registry is a Harbor (probe only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub harbor: Option<HarborHealth>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrustEntry {
    pub runtime: String,
    pub path: String,
    pub state: TrustState,
    #[serde(default)]
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeEntry {
    pub runtime: String,
    pub verdict: Verdict,
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cause: String,
    #[serde(default)]
    pub latency_ms: u64,
    #[serde(default)]
    pub server_chain: Vec<ChainCert>,
    /// Days until the server leaf expires (negative once expired).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_days_left: Option<i64>,
    /// Anything the admin should know even when the verdict is ok (expiry within 30 days).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fix: String,
    /// Days until the first of this runtime's CAs for the host expires (negative once
    /// expired); none when the runtime has no CA file for the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_days_left: Option<i64>,
    /// The CAs this runtime reads for the host (system roots aside), with their files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted: Vec<TrustedCa>,
    /// What the server chain leads to: the trusted certificate that verified it, or, when
    /// it did not verify, the top of the presented chain (`unknown_authority`'s other side).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor: Option<ChainAnchor>,
    /// The runtime's own version, from its binary's build info or the distribution's
    /// package database (empty when unknown).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub runtime_version: String,
    /// The Go release its binary was built with (`go1.19.8`), or `--go-version`'s; the
    /// verdict follows that Go's rules (the newest modelled when empty).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub go_version: String,
    /// What the runtime prints when it differs from `message` (Go >= 1.20:
    /// `tls: failed to verify certificate: x509: ...`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub runtime_message: String,
}

/// A CA a runtime trusts for a host, and the file it reads it from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrustedCa {
    pub subject: String,
    pub sha256: String,
    pub not_after: String,
    pub days_left: i64,
    pub file: String,
    /// The certificate itself (PEM; public material only), so the aggregator can judge a
    /// chain this node has not seen yet (rotation pre-flight). Empty from older agents.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pem: String,
}

/// One end of a chain: a certificate's subject and, when its bytes are known, its sha256
/// and the file it was trusted from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainAnchor {
    pub subject: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sha256: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub file: String,
}

/// Harbor's own health report (it answers 200 even when unhealthy: `status` says).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HarborHealth {
    pub status: String,
    #[serde(default)]
    pub components: Vec<HarborComponent>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HarborComponent {
    pub name: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainCert {
    pub subject: String,
    pub issuer: String,
    pub sha256: String,
    pub not_after: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaSummary {
    pub source: String,
    pub certificates: Vec<CaCert>,
    /// What regtrust dropped or normalised reading the input (a BOM, CRLF, text between
    /// blocks, non-certificate blocks, duplicates); the files are written without them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaCert {
    pub subject: String,
    pub sha256: String,
    pub not_after: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_left: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The file, host or config the problem is about.
    pub source: String,
    pub message: String,
}

impl Problem {
    pub fn new(source: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            source: source.into(),
            message: message.into(),
        }
    }
}

/// Text from outside (a certificate's subject, a registry's error message) made safe to
/// print and to log: control characters (ESC, CR, BEL, newline, ...), bidirectional
/// controls (U+202E RIGHT-TO-LEFT OVERRIDE, the isolates) and zero-width or other invisible
/// format characters are written escaped (`\u{1b}`, `\u{202e}`), so such text can neither
/// drive an admin's terminal, nor fake report lines, nor show one thing and be another.
pub fn printable(s: &str) -> String {
    if !s.chars().any(needs_escape) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if needs_escape(c) {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Control characters, and the Unicode format characters (category Cf) that reorder or
/// hide text: bidi embeddings, overrides, isolates and marks; zero-width space, joiners,
/// word joiner, invisible operators, BOM; soft hyphen; Arabic/Syriac format marks; tags.
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{ad}'
                | '\u{600}'..='\u{605}'
                | '\u{61c}'
                | '\u{6dd}'
                | '\u{70f}'
                | '\u{890}'..='\u{891}'
                | '\u{8e2}'
                | '\u{180e}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206f}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
                | '\u{110bd}'
                | '\u{110cd}'
                | '\u{13430}'..='\u{1343f}'
                | '\u{1bca0}'..='\u{1bca3}'
                | '\u{1d173}'..='\u{1d17a}'
                | '\u{e0001}'
                | '\u{e0020}'..='\u{e007f}'
        )
}

/// `s` with the userinfo of every URL in it (`https://robot:PASSWORD@harbor.local`) replaced
/// by `***` (SPEC: a report never carries credentials). A string without whitespace and
/// without a scheme is read as a pull-secret key (`robot:PASSWORD@harbor.local/path`, which
/// kubelet reads as `https://...`): its userinfo goes too.
pub fn redact_userinfo(s: &str) -> String {
    fn authority_end(rest: &str) -> usize {
        rest.find(|c: char| {
            matches!(
                c,
                '/' | '?' | '#' | '"' | '\'' | '<' | '>' | '`' | ')' | ']' | ','
            ) || c.is_whitespace()
                || c.is_control()
        })
        .unwrap_or(rest.len())
    }
    fn redact_authority(out: &mut String, authority: &str) {
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
    }
    if !s.contains('@') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    if !s.contains("://") {
        if s.chars().any(|c| c.is_whitespace()) {
            return s.to_string();
        }
        let end = authority_end(s);
        redact_authority(&mut out, &s[..end]);
        out.push_str(&s[end..]);
        return out;
    }
    let mut rest = s;
    while let Some(i) = rest.find("://") {
        out.push_str(&rest[..i + 3]);
        rest = &rest[i + 3..];
        let end = authority_end(rest);
        redact_authority(&mut out, &rest[..end]);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// RFC 3339 in UTC with whole seconds, the way every timestamp in the report is written.
pub fn rfc3339(t: time::OffsetDateTime) -> String {
    let t = t
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

impl Report {
    pub fn new(node: impl Into<String>, now: time::OffsetDateTime) -> Self {
        Report {
            schema: SCHEMA.to_string(),
            node: node.into(),
            agent_version: env!("CARGO_PKG_VERSION").to_string(),
            generated_at: rfc3339(now),
            registries: Vec::new(),
            problems: Vec::new(),
            runtimes: Vec::new(),
        }
    }

    /// Exit code 1 (SPEC): a verdict other than ok, a conflict, an invalid input.
    pub fn needs_attention(&self) -> bool {
        !self.problems.is_empty()
            || self.registries.iter().any(|r| {
                r.verdict.is_failure() || r.trust.iter().any(|t| t.state.needs_attention())
            })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// Parse and check a report the way the aggregator must: the schema and every fixed key.
    pub fn from_json(bytes: &[u8]) -> Result<Report, String> {
        // serde quotes an unknown variant or field raw: made printable before it is logged
        // or answered.
        let r: Report = serde_json::from_slice(bytes).map_err(|e| printable(&e.to_string()))?;
        if r.schema != SCHEMA {
            return Err(format!("schema is {:?}, expected {SCHEMA:?}", r.schema));
        }
        if r.node.trim().is_empty() {
            return Err("node is empty".into());
        }
        time::OffsetDateTime::parse(
            &r.generated_at,
            &time::format_description::well_known::Rfc3339,
        )
        .map_err(|e| format!("generated_at {:?} is not RFC 3339: {e}", r.generated_at))?;
        Ok(r)
    }

    /// Text for people: one line per registry and runtime, then the problems.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for r in &self.registries {
            for note in r.ca.iter().flat_map(|c| &c.notes) {
                let _ = writeln!(out, "{:<28} ca note: {note}", r.host);
            }
            for t in &r.trust {
                let detail = if t.detail.is_empty() {
                    String::new()
                } else {
                    format!("  ({})", t.detail)
                };
                let _ = writeln!(
                    out,
                    "{:<28} {:<11} {:<10} {}{}",
                    r.host,
                    t.runtime,
                    t.state.as_str(),
                    t.path,
                    detail
                );
            }
            for p in &r.probes {
                let msg = if p.message.is_empty() {
                    String::new()
                } else {
                    format!("  {}", p.message)
                };
                let _ = writeln!(
                    out,
                    "{:<28} {:<11} {:<10}{}",
                    r.host,
                    p.runtime,
                    p.verdict.as_str(),
                    msg
                );
                for w in &p.warnings {
                    let _ = writeln!(out, "{:<28} {:<11} warning: {w}", "", "");
                }
                if !p.fix.is_empty() {
                    let _ = writeln!(out, "{:<28} {:<11} fix: {}", "", "", p.fix);
                }
            }
        }
        if !self.problems.is_empty() {
            let _ = writeln!(out, "problems:");
            for p in &self.problems {
                let _ = writeln!(out, "  {}: {}", p.source, p.message);
            }
        }
        out
    }
}

/// The worst of a set of verdicts (`Unknown` when empty).
pub fn worst(verdicts: impl IntoIterator<Item = Verdict>) -> Verdict {
    verdicts.into_iter().max().unwrap_or(Verdict::Unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_bidi_and_zero_width() {
        // "evil\u{202e}gpj.exe" shows as "evilexe.jpg" in a terminal or a browser.
        let cases = [
            ("evil\u{202e}gpj.exe", "evil\\u{202e}gpj.exe"),
            (
                "a\u{200b}b\u{200d}c\u{2060}d\u{feff}",
                "a\\u{200b}b\\u{200d}c\\u{2060}d\\u{feff}",
            ),
            (
                "\u{2066}x\u{2069}\u{200e}\u{61c}",
                "\\u{2066}x\\u{2069}\\u{200e}\\u{61c}",
            ),
            ("tag\u{e0041}", "tag\\u{e0041}"),
            ("ünïcødé 日本 ok", "ünïcødé 日本 ok"),
        ];
        for (input, want) in cases {
            assert_eq!(printable(input), want, "{input:?}");
        }
    }

    #[test]
    fn userinfo_is_redacted() {
        let cases = [
            (
                "https://robot:PASSWORD@harbor.local",
                "https://***@harbor.local",
            ),
            ("robot:PASSWORD@harbor.local/v2/", "***@harbor.local/v2/"),
            ("http://u:p@h:5000/x?y=a@b", "http://***@h:5000/x?y=a@b"),
            (
                "GET https://a:b@realm/token: x and https://c@d/e",
                "GET https://***@realm/token: x and https://***@d/e",
            ),
            (
                "key \"https://u:p@h\" is bad",
                "key \"https://***@h\" is bad",
            ),
            ("mail me at a@b.c", "mail me at a@b.c"),
            ("harbor.local:5000", "harbor.local:5000"),
            ("https://u:p:q@@h", "https://***@h"),
        ];
        for (input, want) in cases {
            assert_eq!(redact_userinfo(input), want, "{input}");
            assert!(!redact_userinfo(input).contains("PASSWORD"));
        }
    }

    #[test]
    fn printable_escapes_control_characters() {
        assert_eq!(printable("CN=harbor"), "CN=harbor");
        assert_eq!(
            printable("a\u{1b}[2Jb\nc\r\u{7}"),
            "a\\u{1b}[2Jb\\nc\\r\\u{7}"
        );
        assert!(!printable("DENIED: \u{1b}]0;pwned\u{7}")
            .chars()
            .any(char::is_control));
    }

    #[test]
    fn verdict_codes_round_trip() {
        for v in Verdict::ALL {
            assert_eq!(Verdict::parse(v.as_str()), Some(v));
            let json = serde_json::to_string(&v).unwrap();
            assert_eq!(json, format!("\"{}\"", v.as_str()));
        }
    }

    #[test]
    fn worst_prefers_trust_failures() {
        assert_eq!(
            worst([Verdict::Ok, Verdict::UnknownAuthority]),
            Verdict::UnknownAuthority
        );
        assert_eq!(worst([Verdict::Ok, Verdict::Ok]), Verdict::Ok);
        assert_eq!(worst([]), Verdict::Unknown);
    }

    #[test]
    fn json_has_the_fixed_keys() {
        let mut r = Report::new("node-1", time::OffsetDateTime::UNIX_EPOCH);
        r.registries.push(RegistryReport {
            host: "harbor.local".into(),
            verdict: Verdict::Ok,
            message: String::new(),
            trust: vec![TrustEntry {
                runtime: "docker".into(),
                path: "/etc/docker/certs.d/harbor.local/ca.crt".into(),
                state: TrustState::Installed,
                detail: String::new(),
            }],
            probes: vec![],
            ca: None,
            harbor: None,
        });
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        for k in [
            "schema",
            "node",
            "agent_version",
            "generated_at",
            "registries",
            "problems",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
        assert_eq!(v["generated_at"], "1970-01-01T00:00:00Z");
        assert_eq!(v["registries"][0]["trust"][0]["state"], "installed");
        assert_eq!(Report::from_json(r.to_json().as_bytes()).unwrap(), r);
    }

    #[test]
    fn from_json_rejects_bad_documents() {
        let cases = [
            "",
            "{",
            "[]",
            r#"{"schema":"regtrust.report/v1"}"#,
            r#"{"schema":"other","node":"n","agent_version":"1","generated_at":"1970-01-01T00:00:00Z","registries":[],"problems":[]}"#,
            r#"{"schema":"regtrust.report/v1","node":"","agent_version":"1","generated_at":"1970-01-01T00:00:00Z","registries":[],"problems":[]}"#,
            r#"{"schema":"regtrust.report/v1","node":"n","agent_version":"1","generated_at":"yesterday","registries":[],"problems":[]}"#,
            r#"{"schema":"regtrust.report/v1","node":"n","agent_version":"1","generated_at":"1970-01-01T00:00:00Z","registries":[{"host":"h","verdict":"great"}],"problems":[]}"#,
        ];
        for c in cases {
            assert!(Report::from_json(c.as_bytes()).is_err(), "{c}");
        }
    }
}
