//! Go's `net/url.Parse`, as far as crypto/x509 depends on it: whether a URI SAN parses (and
//! Go's exact error text when it does not), and the `Host` it yields for name constraints.
//! Also `net.SplitHostPort`, which `matchURIConstraint` applies to a `host:port`. Ported from
//! go1.19.8 src/net/url/url.go (Parse, parse, getScheme, parseAuthority, parseHost,
//! validOptionalPort, validUserinfo, unescape, shouldEscape), unchanged in go1.22.12 and
//! go1.23.5, and src/net/ipsock.go (SplitHostPort). Pure.

use super::x509::go_quote;

/// What a parsed URL says (the fields x509 reads).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Url {
    pub scheme: String,
    pub opaque: String,
    /// Unescaped, with the port (`[::1]:80`, `example.com:8080`).
    pub host: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Path,
    UserPassword,
    Host,
    Zone,
    Fragment,
}

/// `url.Parse(raw)`: the URL, or `url.Error.Error()` (`parse "RAW": ...`).
pub fn parse(raw: &str) -> Result<Url, String> {
    let (u, frag) = match raw.split_once('#') {
        Some((u, f)) => (u, Some(f)),
        None => (raw, None),
    };
    let url = parse_inner(u).map_err(|e| format!("parse {}: {e}", go_quote(u.as_bytes())))?;
    if let Some(f) = frag.filter(|f| !f.is_empty()) {
        unescape(f, Mode::Fragment)
            .map_err(|e| format!("parse {}: {e}", go_quote(raw.as_bytes())))?;
    }
    Ok(url)
}

fn parse_inner(raw: &str) -> Result<Url, String> {
    if raw.bytes().any(|b| b < b' ' || b == 0x7f) {
        return Err("net/url: invalid control character in URL".into());
    }
    let mut url = Url::default();
    if raw == "*" {
        return Ok(url);
    }
    let (scheme, rest) = get_scheme(raw)?;
    url.scheme = scheme.to_ascii_lowercase();
    let mut rest = rest;
    if rest.ends_with('?') && rest.matches('?').count() == 1 {
        rest = &rest[..rest.len() - 1];
    } else if let Some((r, _)) = rest.split_once('?') {
        rest = r;
    }
    if !rest.starts_with('/') {
        if !url.scheme.is_empty() {
            url.opaque = rest.to_string();
            return Ok(url);
        }
        let segment = rest.split('/').next().unwrap_or_default();
        if segment.contains(':') {
            return Err("first path segment in URL cannot contain colon".into());
        }
    }
    if (!url.scheme.is_empty() || !rest.starts_with("///")) && rest.starts_with("//") {
        let authority = &rest[2..];
        let (authority, path) = match authority.find('/') {
            Some(i) => (&authority[..i], &authority[i..]),
            None => (authority, ""),
        };
        url.host = parse_authority(authority)?;
        rest = path;
    }
    unescape(rest, Mode::Path)?;
    Ok(url)
}

/// `getScheme`.
fn get_scheme(raw: &str) -> Result<(&str, &str), String> {
    for (i, c) in raw.bytes().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i == 0 => return Ok(("", raw)),
            b'0'..=b'9' | b'+' | b'-' | b'.' => {}
            b':' if i == 0 => return Err("missing protocol scheme".into()),
            b':' => return Ok((&raw[..i], &raw[i + 1..])),
            _ => return Ok(("", raw)),
        }
    }
    Ok(("", raw))
}

/// `parseAuthority`: the host (the userinfo is checked, not kept).
fn parse_authority(authority: &str) -> Result<String, String> {
    let at = authority.rfind('@');
    let host = parse_host(match at {
        Some(i) => &authority[i + 1..],
        None => authority,
    })?;
    let Some(i) = at else {
        return Ok(host);
    };
    let userinfo = &authority[..i];
    let valid = userinfo.chars().all(|r| {
        r.is_ascii_alphanumeric()
            || matches!(
                r,
                '-' | '.'
                    | '_'
                    | ':'
                    | '~'
                    | '!'
                    | '$'
                    | '&'
                    | '\''
                    | '('
                    | ')'
                    | '*'
                    | '+'
                    | ','
                    | ';'
                    | '='
                    | '%'
                    | '@'
            )
    });
    if !valid {
        return Err("net/url: invalid userinfo".into());
    }
    match userinfo.split_once(':') {
        None => {
            unescape(userinfo, Mode::UserPassword)?;
        }
        Some((user, pass)) => {
            unescape(user, Mode::UserPassword)?;
            unescape(pass, Mode::UserPassword)?;
        }
    }
    Ok(host)
}

fn valid_optional_port(port: &str) -> bool {
    match port.strip_prefix(':') {
        _ if port.is_empty() => true,
        None => false,
        Some(digits) => digits.bytes().all(|b| b.is_ascii_digit()),
    }
}

/// `parseHost`.
fn parse_host(host: &str) -> Result<String, String> {
    if host.starts_with('[') {
        let Some(i) = host.rfind(']') else {
            return Err("missing ']' in host".into());
        };
        let colon_port = &host[i + 1..];
        if !valid_optional_port(colon_port) {
            return Err(format!(
                "invalid port {} after host",
                go_quote(colon_port.as_bytes())
            ));
        }
        if let Some(zone) = host[..i].find("%25") {
            let h1 = unescape(&host[..zone], Mode::Host)?;
            let h2 = unescape(&host[zone..i], Mode::Zone)?;
            let h3 = unescape(&host[i..], Mode::Host)?;
            return Ok(h1 + &h2 + &h3);
        }
    } else if let Some(i) = host.rfind(':') {
        let colon_port = &host[i..];
        if !valid_optional_port(colon_port) {
            return Err(format!(
                "invalid port {} after host",
                go_quote(colon_port.as_bytes())
            ));
        }
    }
    unescape(host, Mode::Host)
}

fn unhex(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}

/// `shouldEscape` for the modes unescape consults.
fn should_escape(c: u8, mode: Mode) -> bool {
    if c.is_ascii_alphanumeric() {
        return false;
    }
    if matches!(mode, Mode::Host | Mode::Zone)
        && matches!(
            c,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'['
                | b']'
                | b'<'
                | b'>'
                | b'"'
        )
    {
        return false;
    }
    match c {
        b'-' | b'_' | b'.' | b'~' => return false,
        b'$' | b'&' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'?' | b'@' => match mode {
            Mode::Path => return c == b'?',
            Mode::UserPassword => return matches!(c, b'@' | b'/' | b'?' | b':'),
            Mode::Fragment => return false,
            _ => {}
        },
        _ => {}
    }
    if mode == Mode::Fragment && matches!(c, b'!' | b'(' | b')' | b'*') {
        return false;
    }
    true
}

/// `unescape`: the unescaped string, or `EscapeError`/`InvalidHostError` text.
fn unescape(s: &str, mode: Mode) -> Result<String, String> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut n = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                n += 1;
                if i + 2 >= b.len()
                    || !b[i + 1].is_ascii_hexdigit()
                    || !b[i + 2].is_ascii_hexdigit()
                {
                    let tail = &b[i..];
                    let tail = &tail[..tail.len().min(3)];
                    return Err(format!("invalid URL escape {}", go_quote(tail)));
                }
                let esc = &b[i..i + 3];
                if mode == Mode::Host && unhex(b[i + 1]) < 8 && esc != b"%25" {
                    return Err(format!("invalid URL escape {}", go_quote(esc)));
                }
                if mode == Mode::Zone {
                    let v = (unhex(b[i + 1]) << 4) | unhex(b[i + 2]);
                    if esc != b"%25" && v != b' ' && should_escape(v, Mode::Host) {
                        return Err(format!("invalid URL escape {}", go_quote(esc)));
                    }
                }
                i += 3;
            }
            c => {
                if matches!(mode, Mode::Host | Mode::Zone) && c < 0x80 && should_escape(c, mode) {
                    return Err(format!(
                        "invalid character {} in host name",
                        go_quote(&b[i..i + 1])
                    ));
                }
                i += 1;
            }
        }
    }
    if n == 0 {
        return Ok(s.to_string());
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push((unhex(b[i + 1]) << 4) | unhex(b[i + 2]));
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    // Go strings hold any bytes; the host is only compared and quoted afterwards.
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// `net.SplitHostPort` (go1.19.8 src/net/ipsock.go): the host, or `AddrError.Error()`.
pub fn split_host_port(hostport: &str) -> Result<(&str, &str), String> {
    let err = |why: &str| Err(format!("address {hostport}: {why}"));
    let Some(i) = hostport.rfind(':') else {
        return err("missing port in address");
    };
    let (host, j, k);
    if hostport.starts_with('[') {
        let Some(end) = hostport.find(']') else {
            return err("missing ']' in address");
        };
        if end + 1 == hostport.len() {
            return err("missing port in address");
        } else if end + 1 != i {
            if hostport.as_bytes()[end + 1] == b':' {
                return err("too many colons in address");
            }
            return err("missing port in address");
        }
        host = &hostport[1..end];
        (j, k) = (1, end + 1);
    } else {
        host = &hostport[..i];
        if host.contains(':') {
            return err("too many colons in address");
        }
        (j, k) = (0, 0);
    }
    if hostport[j..].contains('[') {
        return err("unexpected '[' in address");
    }
    if hostport[k..].contains(']') {
        return err("unexpected ']' in address");
    }
    Ok((host, &hostport[i + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_as_go_does() {
        let host = |s: &str| parse(s).map(|u| u.host);
        assert_eq!(host("https://example.com/x"), Ok("example.com".into()));
        assert_eq!(
            host("https://u:p@example.com:8443/"),
            Ok("example.com:8443".into())
        );
        assert_eq!(
            host("http://[2006:abcd::1]:16/"),
            Ok("[2006:abcd::1]:16".into())
        );
        assert_eq!(host("http://[fe80::1%25en0]/"), Ok("[fe80::1%en0]".into()));
        assert_eq!(host("urn:example:thing"), Ok(String::new()));
        assert_eq!(host("spiffe://td/ns/x#frag"), Ok("td".into()));
        let cases = [
            (
                "https://exa\u{7f}mple.com/",
                "parse \"https://exa\\x7fmple.com/\": net/url: invalid control character in URL",
            ),
            (
                "https://example.com:x/",
                "parse \"https://example.com:x/\": invalid port \":x\" after host",
            ),
            (
                "https://[::1]x/",
                "parse \"https://[::1]x/\": invalid port \"x\" after host",
            ),
            (
                "https://[::1/",
                "parse \"https://[::1/\": missing ']' in host",
            ),
            ("a:b/c", ""),
            (
                "1a:b",
                "parse \"1a:b\": first path segment in URL cannot contain colon",
            ),
            (":x", "parse \":x\": missing protocol scheme"),
            (
                "https://exa mple.com/",
                "parse \"https://exa mple.com/\": invalid character \" \" in host name",
            ),
            (
                "https://exa%41mple.com/",
                "parse \"https://exa%41mple.com/\": invalid URL escape \"%41\"",
            ),
            (
                "https://example.com/%zz",
                "parse \"https://example.com/%zz\": invalid URL escape \"%zz\"",
            ),
            (
                "https://example.com/#%z",
                "parse \"https://example.com/#%z\": invalid URL escape \"%z\"",
            ),
            (
                "https://a\"b@example.com/",
                "parse \"https://a\\\"b@example.com/\": net/url: invalid userinfo",
            ),
        ];
        for (raw, want) in cases {
            match parse(raw) {
                Ok(_) => assert_eq!(want, "", "{raw} parsed"),
                Err(e) => assert_eq!(e, want, "{raw}"),
            }
        }
    }

    #[test]
    fn split_host_port_as_go() {
        assert_eq!(split_host_port("a.b:80"), Ok(("a.b", "80")));
        assert_eq!(split_host_port("[::1]:80"), Ok(("::1", "80")));
        for (hp, why) in [
            ("a.b", "missing port in address"),
            ("a:b:c", "too many colons in address"),
            ("[::1]", "missing port in address"),
            ("[::1]:8:9", "too many colons in address"),
            ("[::1]x:9", "missing port in address"),
            ("[::1:9", "missing ']' in address"),
            ("a[b:9", "unexpected '[' in address"),
            ("ab]:9", "unexpected ']' in address"),
        ] {
            assert_eq!(split_host_port(hp), Err(format!("address {hp}: {why}")));
        }
    }
}
