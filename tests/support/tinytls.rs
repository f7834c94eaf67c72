//! `TinyTls`: a tiny blocking rustls HTTPS server for the probe's credential-path tests (a
//! token realm on another loopback address, a registry whose later connections present
//! another certificate). It serves one connection at a time, answers each request head with
//! a handler and `Connection: close`, records every request head it read, and chooses the
//! certificate per connection (by the connection's number, from 0). Stopped and joined on
//! drop. A plain-TCP `Silent` listener records whether anything connected at all.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::io::{Read as _, Write as _};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the server answers to one request head (`GET /path HTTP/1.1` and headers).
pub type Handler = Arc<dyn Fn(&str) -> Vec<u8> + Send + Sync>;

/// A certificate chain and its key, as a server presents them.
pub fn certified(cert: &Path, key: &Path) -> Arc<rustls::sign::CertifiedKey> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .expect("read the server certificate")
        .collect::<Result<_, _>>()
        .expect("parse the server certificate");
    let key = PrivateKeyDer::from_pem_file(key).expect("read the server key");
    let signer = rustls::crypto::ring::sign::any_supported_type(&key).expect("signing key");
    Arc::new(rustls::sign::CertifiedKey::new(chain, signer))
}

/// Presents `certs[min(n, len-1)]` on the n-th handshake.
#[derive(Debug)]
struct PerConnection {
    certs: Vec<Arc<rustls::sign::CertifiedKey>>,
    handshakes: AtomicUsize,
}

impl rustls::server::ResolvesServerCert for PerConnection {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        let n = self.handshakes.fetch_add(1, Ordering::SeqCst);
        self.certs.get(n.min(self.certs.len() - 1)).cloned()
    }
}

pub struct TinyTls {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TinyTls {
    /// Serve on `ip` (port chosen by the kernel); the handler is built from the address.
    pub fn start(
        ip: IpAddr,
        certs: Vec<Arc<rustls::sign::CertifiedKey>>,
        handler: impl FnOnce(SocketAddr) -> Handler,
    ) -> TinyTls {
        assert!(!certs.is_empty(), "TinyTls needs a certificate");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(PerConnection {
            certs,
            handshakes: AtomicUsize::new(0),
        }));
        let mut config = config;
        // No resumption: each connection is a fresh handshake presenting its certificate
        // (as another backend behind a load balancer would).
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
        let config = Arc::new(config);
        let listener = TcpListener::bind(SocketAddr::new(ip, 0))
            .unwrap_or_else(|e| panic!("bind {ip}: {e} (loopback addresses 127.0.0.0/8)"));
        let addr = listener.local_addr().expect("local addr");
        listener.set_nonblocking(true).expect("nonblocking");
        let handler = handler(addr);
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (stop2, requests2) = (stop.clone(), requests.clone());
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                let (sock, _) = match listener.accept() {
                    Ok(s) => s,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        // Polling interval of the accept loop, not a synchronisation.
                        std::thread::sleep(Duration::from_millis(2));
                        continue;
                    }
                    Err(_) => break,
                };
                let _ = serve_one(config.clone(), sock, &handler, &requests2);
            }
        });
        TinyTls {
            addr,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    /// Every request head read so far.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// The request heads that carried an `Authorization` header.
    pub fn authorized(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| {
                r.lines()
                    .any(|l| l.to_ascii_lowercase().starts_with("authorization:"))
            })
            .collect()
    }
}

fn serve_one(
    config: Arc<rustls::ServerConfig>,
    mut sock: TcpStream,
    handler: &Handler,
    requests: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    sock.set_nonblocking(false)?;
    sock.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut conn = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tls.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        req.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&req).into_owned();
    if let Ok(mut r) = requests.lock() {
        r.push(head.clone());
    }
    tls.write_all(&handler(&head))?;
    tls.flush()?;
    conn.send_close_notify();
    let _ = conn.complete_io(&mut sock);
    Ok(())
}

impl Drop for TinyTls {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An HTTP/1.1 response with `Connection: close`.
pub fn response(status: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("\r\n");
    r.push_str(body);
    r.into_bytes()
}

/// A listener that accepts nothing by itself: [`Silent::connected`] says whether a client
/// reached it (the connection waits in the backlog).
pub struct Silent {
    pub addr: SocketAddr,
    listener: TcpListener,
}

impl Silent {
    pub fn bind(ip: IpAddr) -> Silent {
        let listener = TcpListener::bind(SocketAddr::new(ip, 0)).expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        Silent {
            addr: listener.local_addr().expect("addr"),
            listener,
        }
    }

    /// Whether any connection is waiting (call after the client finished).
    pub fn connected(&self) -> bool {
        self.listener.accept().is_ok()
    }
}
