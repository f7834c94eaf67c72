//! The network half of a probe, up to a finished TLS handshake: resolve, connect (each
//! address in turn, as Go's dialer falls back), handshake with the capture verifier, and
//! hand back the presented chain. Failures come back classified, in Go's words where the
//! runtime would print them (`dial tcp: lookup HOST: no such host`, `connect: connection
//! refused`, `http: server gave HTTP response to HTTPS client`, `remote error: tls: ...`).
//!
//! It does not judge the chain (`classify` and `goverify` do) and speaks no HTTP
//! (`registry` does).

use crate::host::RegistryHost;
use crate::report::Verdict;
use rustls::pki_types::ServerName;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A finished handshake: what the server presented, and where.
#[derive(Debug, Clone)]
pub struct Handshake {
    /// The presented chain, leaf first, as sent (DER).
    pub chain: Vec<Vec<u8>>,
    pub addr: SocketAddr,
}

/// A probe that stopped before a TLS session existed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetFailure {
    pub verdict: Verdict,
    /// What a Go runtime would print (after `Get "https://HOST/v2/": `).
    pub message: String,
}

impl NetFailure {
    fn new(verdict: Verdict, message: impl Into<String>) -> NetFailure {
        NetFailure {
            verdict,
            message: message.into(),
        }
    }
}

/// Resolve `host` as Go would before dialing: an IP literal as is, a name through the
/// system resolver.
pub async fn resolve(
    host: &RegistryHost,
    deadline: Instant,
) -> Result<Vec<SocketAddr>, NetFailure> {
    let port = host.port_number();
    if let Ok(ip) = host.name().parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let name = host.name().to_string();
    let lookup = tokio::net::lookup_host((name.clone(), port));
    match tokio::time::timeout_at(deadline.into(), lookup).await {
        Err(_) => Err(NetFailure::new(
            Verdict::Timeout,
            format!("dial tcp: lookup {name}: i/o timeout"),
        )),
        Ok(Err(e)) => Err(NetFailure::new(Verdict::DnsError, dns_message(&name, &e))),
        Ok(Ok(addrs)) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() {
                Err(NetFailure::new(
                    Verdict::DnsError,
                    format!("dial tcp: lookup {name}: no such host"),
                ))
            } else {
                Ok(addrs)
            }
        }
    }
}

/// getaddrinfo's answer in Go's words: NXDOMAIN and "no address" are `no such host`;
/// anything else (no resolver reachable) keeps the resolver's reason, in glibc's words
/// whichever libc the binary links (the image's is musl: packaging/image/build.sh).
fn dns_message(name: &str, e: &std::io::Error) -> String {
    let text = e.to_string();
    // glibc (resolv/gai_strerror-strs.h), BSD/macOS, and musl 1.2.3
    // (src/network/gai_strerror.c: EAI_NONAME "Name does not resolve", EAI_NODATA "Name has
    // no usable address").
    let not_found = [
        "Name or service not known",
        "No address associated with hostname",
        "nodename nor servname provided",
        "Name has no usable address",
        "Name does not resolve",
    ];
    if not_found.iter().any(|n| text.contains(n)) {
        format!("dial tcp: lookup {name}: no such host")
    } else {
        let reason = text
            .strip_prefix("failed to lookup address information: ")
            .unwrap_or(&text);
        // musl's EAI_AGAIN text; glibc's for the same answer (no resolver reachable, SERVFAIL).
        let reason = if reason == "Try again" {
            "Temporary failure in name resolution"
        } else {
            reason
        };
        format!("dial tcp: lookup {name}: {reason}")
    }
}

/// Connect to the first address that accepts (Go's dialer tries them in turn and reports
/// the first error when all fail).
pub async fn connect(addrs: &[SocketAddr], deadline: Instant) -> Result<TcpStream, NetFailure> {
    let mut first_err: Option<NetFailure> = None;
    for &addr in addrs {
        match tokio::time::timeout_at(deadline.into(), TcpStream::connect(addr)).await {
            Err(_) => {
                return Err(first_err.unwrap_or_else(|| {
                    NetFailure::new(Verdict::Timeout, format!("dial tcp {addr}: i/o timeout"))
                }))
            }
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Ok(Err(e)) => {
                let f = connect_failure(addr, &e);
                first_err.get_or_insert(f);
            }
        }
    }
    Err(first_err
        .unwrap_or_else(|| NetFailure::new(Verdict::ConnectionRefused, "no address to dial")))
}

/// `dial tcp ADDR: connect: REASON` with Go's (libc's) lower-case reason. Anything that
/// fails at once is `connection_refused` (refused, unreachable, reset): nothing answers
/// there; only silence is `timeout`.
fn connect_failure(addr: SocketAddr, e: &std::io::Error) -> NetFailure {
    use std::io::ErrorKind as K;
    let reason = match e.kind() {
        K::ConnectionRefused => "connection refused".to_string(),
        K::TimedOut => {
            return NetFailure::new(Verdict::Timeout, format!("dial tcp {addr}: i/o timeout"))
        }
        _ => errno_text(e),
    };
    NetFailure::new(
        Verdict::ConnectionRefused,
        format!("dial tcp {addr}: connect: {reason}"),
    )
}

/// The libc text of an OS error, lower-cased as Go prints errno strings ("no route to
/// host"), without Rust's " (os error N)" suffix.
fn errno_text(e: &std::io::Error) -> String {
    let t = e.to_string();
    let t = match t.find(" (os error") {
        Some(i) => t[..i].to_string(),
        None => t,
    };
    let mut chars = t.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => t,
    }
}

/// Resolve, connect and handshake with `config` (built around a capture verifier, which
/// `captured` reads afterwards). SNI is the host name; none for an IP literal, as Go does.
pub async fn handshake(
    host: &RegistryHost,
    config: Arc<rustls::ClientConfig>,
    captured: impl FnOnce() -> Option<Vec<Vec<u8>>>,
    deadline: Instant,
) -> Result<Handshake, NetFailure> {
    let addrs = resolve(host, deadline).await?;
    let tcp = connect(&addrs, deadline).await?;
    let addr = tcp.peer_addr().unwrap_or(addrs[0]);
    let server_name = server_name(host)?;
    let first = Arc::new(std::sync::Mutex::new(Vec::with_capacity(5)));
    let recorder = FirstBytes {
        inner: tcp,
        first: first.clone(),
    };
    let connector = tokio_rustls::TlsConnector::from(config);
    let conn = connector.connect(server_name, recorder);
    let result = tokio::time::timeout_at(deadline.into(), conn).await;
    match result {
        Err(_) => Err(NetFailure::new(
            Verdict::Timeout,
            "net/http: TLS handshake timeout",
        )),
        Ok(Ok(mut tls)) => {
            let chain = captured().unwrap_or_default();
            // Be polite: close the session; the HTTP check uses its own connection.
            let _ = tokio::time::timeout(
                std::time::Duration::from_millis(50),
                tokio::io::AsyncWriteExt::shutdown(&mut tls),
            )
            .await;
            if chain.is_empty() {
                return Err(NetFailure::new(
                    Verdict::TlsError,
                    "tls: server sent no certificate",
                ));
            }
            Ok(Handshake { chain, addr })
        }
        Ok(Err(e)) => {
            let first = first.lock().map(|f| f.clone()).unwrap_or_default();
            Err(tls_failure(&e, &first, addr))
        }
    }
}

fn server_name(host: &RegistryHost) -> Result<ServerName<'static>, NetFailure> {
    if let Ok(ip) = host.name().parse::<IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(host.name().to_string()).map_err(|_| {
        NetFailure::new(
            Verdict::TlsError,
            format!("tls: {:?} is not a valid server name", host.name()),
        )
    })
}

/// A handshake error in Go's words. `first` holds the first bytes the server sent.
fn tls_failure(e: &std::io::Error, first: &[u8], addr: SocketAddr) -> NetFailure {
    // net/http (client.go): a first record whose header reads "HTTP/" is a plain HTTP
    // server on the port.
    if first.len() >= 5 && &first[..5] == b"HTTP/" {
        return NetFailure::new(
            Verdict::TlsError,
            "http: server gave HTTP response to HTTPS client",
        );
    }
    if first.len() >= 5 && !looks_like_tls_record(first) {
        return NetFailure::new(
            Verdict::TlsError,
            "tls: first record does not look like a TLS handshake",
        );
    }
    use std::io::ErrorKind as K;
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    if let Some(err) = inner {
        return NetFailure::new(Verdict::TlsError, rustls_message(err));
    }
    let message = match e.kind() {
        K::UnexpectedEof => "EOF".to_string(),
        K::ConnectionReset => format!("read tcp {addr}: read: connection reset by peer"),
        _ => format!("tls: {}", errno_text(e)),
    };
    NetFailure::new(Verdict::TlsError, message)
}

/// A TLS record header: content type 20..=24, major version 3.
fn looks_like_tls_record(h: &[u8]) -> bool {
    (20..=24).contains(&h[0]) && h[1] == 3
}

fn rustls_message(e: &rustls::Error) -> String {
    match e {
        rustls::Error::AlertReceived(a) => {
            format!("remote error: tls: {}", go_alert_text(u8::from(*a)))
        }
        rustls::Error::PeerIncompatible(p) => {
            format!("tls: the server's TLS is incompatible: {p:?}")
        }
        rustls::Error::InvalidMessage(_) | rustls::Error::PeerMisbehaved(_) => {
            format!("tls: {e}")
        }
        other => format!("tls: {other}"),
    }
}

/// Go's `alert.String()` texts (crypto/tls/alert.go).
fn go_alert_text(code: u8) -> String {
    let t = match code {
        0 => "close notify",
        10 => "unexpected message",
        20 => "bad record MAC",
        21 => "decryption failed",
        22 => "record overflow",
        30 => "decompression failure",
        40 => "handshake failure",
        42 => "bad certificate",
        43 => "unsupported certificate",
        44 => "revoked certificate",
        45 => "expired certificate",
        46 => "unknown certificate",
        47 => "illegal parameter",
        48 => "unknown certificate authority",
        49 => "access denied",
        50 => "error decoding message",
        51 => "error decrypting message",
        60 => "export restriction",
        70 => "protocol version not supported",
        71 => "insufficient security level",
        80 => "internal error",
        86 => "inappropriate fallback",
        90 => "user canceled",
        100 => "no renegotiation",
        109 => "missing extension",
        110 => "unsupported extension",
        111 => "certificate unobtainable",
        112 => "unrecognized name",
        113 => "bad certificate status response",
        114 => "bad certificate hash value",
        115 => "unknown PSK identity",
        116 => "certificate required",
        120 => "no application protocol",
        121 => "encrypted client hello required",
        other => return format!("alert({other})"),
    };
    t.to_string()
}

/// A transport that remembers the first five bytes the server sent (a TLS record header,
/// or "HTTP/" from a plain HTTP server), where the caller can read them after a failed
/// handshake has consumed the transport.
struct FirstBytes {
    inner: TcpStream,
    first: Arc<std::sync::Mutex<Vec<u8>>>,
}

impl AsyncRead for FirstBytes {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = res {
            if let Ok(mut first) = self.first.lock() {
                let want = 5usize.saturating_sub(first.len());
                let got = &buf.filled()[before..];
                first.extend_from_slice(&got[..want.min(got.len())]);
            }
        }
        res
    }
}

impl AsyncWrite for FirstBytes {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_messages_read_like_go() {
        let cases = [
            (
                "failed to lookup address information: Name or service not known",
                "dial tcp: lookup h.invalid: no such host",
            ),
            (
                "failed to lookup address information: No address associated with hostname",
                "dial tcp: lookup h.invalid: no such host",
            ),
            (
                "failed to lookup address information: Temporary failure in name resolution",
                "dial tcp: lookup h.invalid: Temporary failure in name resolution",
            ),
            // musl (the static image): the same answers in musl's words read the same.
            (
                "failed to lookup address information: Name does not resolve",
                "dial tcp: lookup h.invalid: no such host",
            ),
            (
                "failed to lookup address information: Name has no usable address",
                "dial tcp: lookup h.invalid: no such host",
            ),
            (
                "failed to lookup address information: Try again",
                "dial tcp: lookup h.invalid: Temporary failure in name resolution",
            ),
        ];
        for (io, want) in cases {
            let e = std::io::Error::other(io);
            assert_eq!(dns_message("h.invalid", &e), want, "{io}");
        }
    }

    #[test]
    fn connect_failures_read_like_go() {
        let addr: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(
            connect_failure(addr, &refused),
            NetFailure::new(
                Verdict::ConnectionRefused,
                "dial tcp 127.0.0.1:5000: connect: connection refused"
            )
        );
        let unreachable = std::io::Error::from_raw_os_error(113);
        assert_eq!(
            connect_failure(addr, &unreachable).message,
            "dial tcp 127.0.0.1:5000: connect: no route to host"
        );
        let timed = std::io::Error::from(std::io::ErrorKind::TimedOut);
        assert_eq!(connect_failure(addr, &timed).verdict, Verdict::Timeout);
    }

    #[test]
    fn first_record_decides_the_plain_http_text() {
        let addr: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let e = std::io::Error::other("whatever rustls said");
        let cases: [(&[u8], &str); 5] = [
            (
                b"HTTP/1.1 400 Bad Request",
                "http: server gave HTTP response to HTTPS client",
            ),
            (
                b"SSH-2.0-OpenSSH",
                "tls: first record does not look like a TLS handshake",
            ),
            (
                b"\x00\x00\x00\x00\x00",
                "tls: first record does not look like a TLS handshake",
            ),
            (b"\x15\x03\x03\x00\x02", "tls: whatever rustls said"),
            (b"", "tls: whatever rustls said"),
        ];
        for (first, want) in cases {
            let f = tls_failure(&e, first, addr);
            assert_eq!(f.verdict, Verdict::TlsError);
            assert_eq!(f.message, want, "{first:?}");
        }
        let eof = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
        assert_eq!(tls_failure(&eof, b"", addr).message, "EOF");
    }

    #[test]
    fn alerts_read_like_go() {
        let e = rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure);
        assert_eq!(rustls_message(&e), "remote error: tls: handshake failure");
        let e = rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired);
        assert_eq!(
            rustls_message(&e),
            "remote error: tls: certificate required"
        );
        assert_eq!(go_alert_text(250), "alert(250)");
    }
}
