//! The registry host, validated once where it enters (a pull-secret key, `--registry`,
//! `--ca HOST=`). A `RegistryHost` can always be used as a single path component under a
//! `certs.d` dir: it never holds `/`, `..`, NUL or whitespace. It does not know about
//! credentials or CAs; `pull_secret` and `ca` own those.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Longest DNS name (RFC 1035) and label.
const MAX_NAME: usize = 253;
const MAX_LABEL: usize = 63;

/// Why a string is not a registry host. The caller adds the file and key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("not a registry host (empty)")]
    Empty,
    #[error("not a registry host (contains {0:?})")]
    BadChar(char),
    #[error("not a registry host (label {0:?} is not a DNS label)")]
    BadLabel(String),
    #[error("not a registry host (label of {0} characters; at most 63)")]
    LabelTooLong(usize),
    #[error("not a registry host (name of {0} characters; at most 253)")]
    NameTooLong(usize),
    #[error("not a registry host (port {0:?} is not a number from 1 to 65535)")]
    BadPort(String),
    #[error("not a registry host (bad IPv6 literal {0:?})")]
    BadIpv6(String),
    #[error("not a registry host (has a path {0:?}; give only host[:port])")]
    HasPath(String),
}

/// A registry as an image reference spells it: lower-cased host, port kept as written.
/// `Ord` so that reports and plans list hosts in a stable order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegistryHost {
    /// `name` or `name:port`; IPv6 literals keep their brackets (`[::1]:5000`).
    spelled: String,
    /// Byte offset of the `:` before the port, if any.
    port_at: Option<usize>,
}

impl RegistryHost {
    /// Parse `host[:port]`, also accepting a scheme and a bare trailing `/` (what people
    /// paste from a browser). A path is refused: a registry flag names a host only.
    pub fn parse(raw: &str) -> Result<Self, HostError> {
        let key = parse_key(raw)?;
        if !key.path.is_empty() {
            return Err(HostError::HasPath(key.path));
        }
        match key.scope {
            KeyScope::Host(h) => Ok(h),
            KeyScope::Wildcard(w) => Err(HostError::BadChar(
                w.chars().find(|c| is_glob(*c)).unwrap_or('*'),
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.spelled
    }

    /// The host without the port (IPv6 without brackets), as TLS's ServerName sees it.
    pub fn name(&self) -> &str {
        let host = match self.port_at {
            Some(i) => &self.spelled[..i],
            None => &self.spelled,
        };
        host.trim_start_matches('[').trim_end_matches(']')
    }

    /// The port as written, if any.
    pub fn port(&self) -> Option<&str> {
        self.port_at.map(|i| &self.spelled[i + 1..])
    }

    /// The port to dial.
    pub fn port_number(&self) -> u16 {
        self.port().and_then(|p| p.parse().ok()).unwrap_or(443)
    }

    /// `name:port` always, for dialing.
    pub fn authority(&self) -> String {
        let name = self.name();
        let port = self.port_number();
        if name.contains(':') {
            format!("[{name}]:{port}")
        } else {
            format!("{name}:{port}")
        }
    }

    /// The certs.d directory names every runtime would read for this host. Runtimes use
    /// the host exactly as the image reference spells it, so `harbor.local` and
    /// `harbor.local:443` are different dirs: a host with no port or with `:443` gets
    /// both (SPEC, Outputs).
    pub fn dir_names(&self) -> Vec<String> {
        match self.port() {
            None => vec![self.spelled.clone(), format!("{}:443", self.spelled)],
            Some("443") => {
                let bare = self.spelled[..self.port_at.unwrap_or(self.spelled.len())].to_string();
                vec![bare, self.spelled.clone()]
            }
            Some(_) => vec![self.spelled.clone()],
        }
    }

    /// True for loopback hosts, to which containerd speaks plain HTTP unless a
    /// `hosts.toml` says otherwise (runtime-lab-facts, trap 1).
    pub fn is_loopback(&self) -> bool {
        let n = self.name();
        n == "localhost"
            || n.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
            || n.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// True when the host is an IP literal (matched only against IP SANs by Go).
    pub fn is_ip(&self) -> bool {
        let n = self.name();
        n.parse::<Ipv4Addr>().is_ok() || n.parse::<Ipv6Addr>().is_ok()
    }
}

impl fmt::Display for RegistryHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.spelled)
    }
}

impl std::str::FromStr for RegistryHost {
    type Err = HostError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// What a pull-secret key names after kubelet's normalisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialKey {
    pub scope: KeyScope,
    /// The path after the host (`/team`), empty for none. It only narrows which images the
    /// credentials apply to; it never reaches the filesystem.
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyScope {
    /// A concrete host: managed (CA installed, probed).
    Host(RegistryHost),
    /// A glob such as `*.example.com`: kept for credentials only, nothing is installed.
    Wildcard(String),
}

impl CredentialKey {
    /// The key as kubelet would index it: `host[:port]` plus the path.
    pub fn normalised(&self) -> String {
        let host = match &self.scope {
            KeyScope::Host(h) => h.as_str(),
            KeyScope::Wildcard(w) => w.as_str(),
        };
        format!("{host}{}", self.path)
    }
}

/// Normalise a pull-secret key as kubelet's `BasicDockerKeyring.Add` does
/// (kubernetes pkg/credentialprovider/keyring.go): drop `http://`/`https://`, drop a
/// leading `/v1/` or `/v2/` from the path, the host is what precedes the first `/`.
/// Unlike kubelet we fold case (image references are lower-case) and we refuse what is not
/// a host instead of building a URL from it, because the host becomes a directory name.
/// `https://index.docker.io/v1/` becomes `index.docker.io` (Docker Hub).
pub fn parse_key(raw: &str) -> Result<CredentialKey, HostError> {
    if let Some(c) = raw.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(HostError::BadChar(c));
    }
    let lower = raw.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .unwrap_or(&lower);
    let (host_part, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let mut path = path.to_string();
    if path.starts_with("/v1/") || path.starts_with("/v2/") {
        path = path[3..].to_string();
    }
    if path == "/" {
        path.clear();
    }
    if let Some(c) = path.chars().find(|c| matches!(c, '?' | '#')) {
        return Err(HostError::BadChar(c));
    }
    let scope = parse_host_part(host_part)?;
    Ok(CredentialKey { scope, path })
}

fn is_glob(c: char) -> bool {
    matches!(c, '*' | '?' | '[' | ']')
}

fn parse_host_part(s: &str) -> Result<KeyScope, HostError> {
    if s.is_empty() {
        return Err(HostError::Empty);
    }
    if let Some(c) = s.chars().find(|c| matches!(c, '@' | '\\' | '%' | '/')) {
        return Err(HostError::BadChar(c));
    }
    // IPv6 literal: `[addr]` or `[addr]:port`.
    if let Some(inner) = s.strip_prefix('[') {
        let close = inner
            .find(']')
            .ok_or_else(|| HostError::BadIpv6(s.to_string()))?;
        let addr = &inner[..close];
        if addr.parse::<Ipv6Addr>().is_err() {
            return Err(HostError::BadIpv6(s.to_string()));
        }
        let after = &inner[close + 1..];
        let port_at = match after {
            "" => None,
            p if p.starts_with(':') => {
                check_port(&p[1..])?;
                Some(close + 2)
            }
            _ => return Err(HostError::BadIpv6(s.to_string())),
        };
        return Ok(KeyScope::Host(RegistryHost {
            spelled: s.to_string(),
            port_at,
        }));
    }
    let (name, port_at) = match s.rfind(':') {
        Some(i) => {
            check_port(&s[i + 1..])?;
            (&s[..i], Some(i))
        }
        None => (s, None),
    };
    if name.is_empty() {
        return Err(HostError::Empty);
    }
    if name.len() > MAX_NAME {
        return Err(HostError::NameTooLong(name.len()));
    }
    let mut wildcard = false;
    for label in name.split('.') {
        if label.len() > MAX_LABEL {
            return Err(HostError::LabelTooLong(label.len()));
        }
        if label.chars().any(is_glob) {
            // Globs are allowed per label (`*`, `reg-*`), as kubelet's filepath.Match.
            if label
                .chars()
                .any(|c| !(c.is_ascii_alphanumeric() || c == '-' || is_glob(c)))
            {
                return Err(HostError::BadLabel(label.to_string()));
            }
            wildcard = true;
            continue;
        }
        if !is_dns_label(label) {
            if let Some(c) = label
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
            {
                return Err(HostError::BadChar(c));
            }
            return Err(HostError::BadLabel(label.to_string()));
        }
    }
    if wildcard {
        return Ok(KeyScope::Wildcard(s.to_string()));
    }
    Ok(KeyScope::Host(RegistryHost {
        spelled: s.to_string(),
        port_at,
    }))
}

/// A DNS label as the image-reference grammar allows it: alphanumerics and inner hyphens.
fn is_dns_label(label: &str) -> bool {
    !label.is_empty()
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

fn check_port(p: &str) -> Result<(), HostError> {
    let ok = !p.is_empty()
        && p.len() <= 5
        && p.chars().all(|c| c.is_ascii_digit())
        && p.parse::<u32>().is_ok_and(|n| (1..=65535).contains(&n));
    if ok {
        Ok(())
    } else {
        Err(HostError::BadPort(p.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(s: &str) -> String {
        match parse_key(s).unwrap().scope {
            KeyScope::Host(h) => h.as_str().to_string(),
            KeyScope::Wildcard(w) => format!("wildcard:{w}"),
        }
    }

    #[test]
    fn normalises_like_kubelet() {
        let cases = [
            ("https://index.docker.io/v1/", "index.docker.io", ""),
            ("harbor.example.com/v2/", "harbor.example.com", ""),
            (
                "https://harbor.example.com:8443",
                "harbor.example.com:8443",
                "",
            ),
            (
                "harbor.example.com/library",
                "harbor.example.com",
                "/library",
            ),
            (
                "http://Harbor.Example.COM:5000/v2/team",
                "harbor.example.com:5000",
                "/team",
            ),
            ("harbor.local/v2", "harbor.local", "/v2"),
            ("[::1]:5000", "[::1]:5000", ""),
            ("127.0.0.1:5443", "127.0.0.1:5443", ""),
            ("*.example.com", "wildcard:*.example.com", ""),
            (
                "reg-*.example.com:5000",
                "wildcard:reg-*.example.com:5000",
                "",
            ),
        ];
        for (raw, want_host, want_path) in cases {
            let k = parse_key(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(host(raw), want_host, "{raw}");
            assert_eq!(k.path, want_path, "{raw}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_host() {
        let long_label = format!("{}.com", "a".repeat(64));
        let long_name = format!("{}.com", ["abcdefghi"; 30].join("."));
        let three_hundred = "a".repeat(300);
        let cases: Vec<(&str, HostError)> = vec![
            ("", HostError::Empty),
            ("https://", HostError::Empty),
            ("/etc/passwd", HostError::Empty),
            ("..", HostError::BadLabel(String::new())),
            (".", HostError::BadLabel(String::new())),
            ("../etc", HostError::BadLabel(String::new())),
            ("a b", HostError::BadChar(' ')),
            ("reg\0istry", HostError::BadChar('\0')),
            ("reg\tistry", HostError::BadChar('\t')),
            (" harbor", HostError::BadChar(' ')),
            ("harbor\n", HostError::BadChar('\n')),
            ("user@harbor", HostError::BadChar('@')),
            ("harbor:0", HostError::BadPort("0".into())),
            ("harbor:70000", HostError::BadPort("70000".into())),
            ("harbor:", HostError::BadPort(String::new())),
            ("harbor:x", HostError::BadPort("x".into())),
            ("-harbor", HostError::BadLabel("-harbor".into())),
            ("har_bor", HostError::BadChar('_')),
            ("[::1", HostError::BadIpv6("[::1".into())),
            ("[zz]:5000", HostError::BadIpv6("[zz]:5000".into())),
            (&long_label, HostError::LabelTooLong(64)),
            (&long_name, HostError::NameTooLong(long_name.len() - 4 + 4)),
            (&three_hundred, HostError::NameTooLong(300)),
        ];
        for (raw, want) in cases {
            match parse_key(raw) {
                Err(got) => assert_eq!(
                    std::mem::discriminant(&got),
                    std::mem::discriminant(&want),
                    "{raw:?}: got {got}"
                ),
                Ok(k) => panic!("{raw:?} accepted as {k:?}"),
            }
        }
    }

    #[test]
    fn hosts_are_single_path_components() {
        for raw in [
            "harbor.local",
            "harbor.local:8443",
            "[::1]:5000",
            "10.0.0.1",
        ] {
            let h = RegistryHost::parse(raw).unwrap();
            for d in h.dir_names() {
                assert!(
                    !d.contains('/') && d != "." && d != ".." && !d.is_empty(),
                    "{d}"
                );
            }
        }
    }

    #[test]
    fn dir_names_cover_default_port_spellings() {
        let cases = [
            ("harbor.local", vec!["harbor.local", "harbor.local:443"]),
            ("harbor.local:443", vec!["harbor.local", "harbor.local:443"]),
            ("harbor.local:8443", vec!["harbor.local:8443"]),
            ("[::1]:5000", vec!["[::1]:5000"]),
        ];
        for (raw, want) in cases {
            assert_eq!(RegistryHost::parse(raw).unwrap().dir_names(), want, "{raw}");
        }
    }

    #[test]
    fn parts() {
        let h = RegistryHost::parse("https://Harbor.Local:8443/").unwrap();
        assert_eq!(h.as_str(), "harbor.local:8443");
        assert_eq!(h.name(), "harbor.local");
        assert_eq!(h.port(), Some("8443"));
        assert_eq!(h.authority(), "harbor.local:8443");
        let v6 = RegistryHost::parse("[::1]:5000").unwrap();
        assert_eq!(v6.name(), "::1");
        assert_eq!(v6.authority(), "[::1]:5000");
        assert!(v6.is_loopback() && v6.is_ip());
        assert_eq!(RegistryHost::parse("h").unwrap().authority(), "h:443");
        assert!(RegistryHost::parse("harbor.local/team").is_err());
        assert!(RegistryHost::parse("*.example.com").is_err());
    }
}
