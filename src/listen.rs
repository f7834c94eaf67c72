//! The HTTP server loop the agent and the aggregator both run, so that no client can starve
//! them: a bound on concurrent connections (derived from the file-descriptor limit, leaving
//! descriptors for the agent's sync loop and the aggregator's database), a bound per peer
//! address, a header-read timeout that also closes idle keep-alive connections, and a
//! maximum connection age. A connection past a bound is accepted and closed at once (it
//! never waits in the kernel's backlog holding a legitimate client's place); an accept
//! error such as `EMFILE` pauses accepting briefly instead of spinning. Also owns raising
//! the soft `RLIMIT_NOFILE` to the hard limit at start, as Go runtimes do since 1.19
//! (go1.19 release notes, "os: On Unix ... raise the open file soft limit"; src/os/rlimit.go).
//!
//! axum 0.8's `axum::serve` accepts without bound and has no header timeout, hence this
//! loop over hyper's http1 connection builder (hyper 1.x `header_read_timeout` arms when the
//! connection waits for a request head, also between keep-alive requests:
//! hyper v1.12.0 src/proto/h1/conn.rs `poll_read_head`).

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// The bounds one server keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once (before [`Limits::fitted`] lowers it to the fd limit).
    pub max_connections: usize,
    /// Connections served at once from one peer address.
    pub max_per_peer: usize,
    /// A request head must arrive within this (from accept, or from the previous response
    /// on a keep-alive connection): slow or idle connections are closed.
    pub header_read_timeout: Duration,
    /// A connection is closed after this long whatever it does.
    pub max_connection_age: Duration,
    /// File descriptors kept free for the rest of the process.
    pub reserve_fds: u64,
}

impl Limits {
    /// The agent: kubelet's probes and a Prometheus scraper are its only clients; most of
    /// the descriptors stay with the sync loop (trust dirs, inotify, probes, the push).
    pub const AGENT: Limits = Limits {
        max_connections: 64,
        max_per_peer: 16,
        header_read_timeout: Duration::from_secs(5),
        max_connection_age: Duration::from_secs(120),
        reserve_fds: 512,
    };

    /// The aggregator: every node pushes (short requests); readers and the page.
    pub const AGGREGATOR: Limits = Limits {
        max_connections: 4096,
        max_per_peer: 64,
        header_read_timeout: Duration::from_secs(10),
        max_connection_age: Duration::from_secs(300),
        reserve_fds: 128,
    };

    /// These limits with `max_connections` lowered so that connections never use more than
    /// the soft fd limit `nofile` minus `reserve_fds` (at least 1 connection).
    pub fn fitted(mut self, nofile: Option<u64>) -> Limits {
        if let Some(n) = nofile {
            let room = n.saturating_sub(self.reserve_fds).max(1);
            self.max_connections = self
                .max_connections
                .min(usize::try_from(room).unwrap_or(usize::MAX));
            self.max_per_peer = self.max_per_peer.min(self.max_connections);
        }
        self
    }
}

/// Raise the soft `RLIMIT_NOFILE` to the hard limit; returns the soft limit now in force
/// (`None` when unlimited or unreadable). Never fails the process: a refusal is logged.
pub fn raise_nofile_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let current = getrlimit(Resource::Nofile);
    if current.current != current.maximum {
        let raised = Rlimit {
            current: current.maximum,
            maximum: current.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(error = %e, soft = ?current.current, hard = ?current.maximum,
                "cannot raise the open-file soft limit to the hard limit");
        }
    }
    getrlimit(Resource::Nofile).current
}

/// The soft `RLIMIT_NOFILE` in force (`None` when unlimited).
pub fn nofile_soft_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// Counts connections per peer address; a guard gives its place back on drop.
#[derive(Default)]
struct Peers {
    count: Mutex<HashMap<IpAddr, usize>>,
}

struct PeerGuard {
    peers: Arc<Peers>,
    ip: IpAddr,
}

impl Peers {
    fn take(self: &Arc<Peers>, ip: IpAddr, max: usize) -> Option<PeerGuard> {
        let mut m = self.count.lock().ok()?;
        let n = m.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(PeerGuard {
            peers: self.clone(),
            ip,
        })
    }
}

impl Drop for PeerGuard {
    fn drop(&mut self) {
        if let Ok(mut m) = self.peers.count.lock() {
            if let Some(n) = m.get_mut(&self.ip) {
                *n -= 1;
                if *n == 0 {
                    m.remove(&self.ip);
                }
            }
        }
    }
}

/// Pause after an accept error (EMFILE, ENFILE, ENOBUFS): the listener stays, the loop does
/// not spin, and descriptors freed meanwhile go to the sync loop first.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// Serve `app` on `listener` within `limits` (fitted to the fd limit now) until `shutdown` resolves; then stop accepting
/// and wait for the connections in flight (idle ones are closed at once). `what` names the
/// server in logs.
pub async fn serve(
    what: &'static str,
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let limits = limits.fitted(nofile_soft_limit());
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let peers = Arc::new(Peers::default());
    let service = TowerToHyperService::new(app);
    let mut refused: u64 = 0;
    tokio::pin!(shutdown);
    tracing::debug!(server = what, limits = ?limits, "serving");
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            a = listener.accept() => a,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(server = what, error = %e, "accept failed; pausing");
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tokio::time::sleep(ACCEPT_PAUSE) => {}
                }
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            refused += 1;
            if refused.is_power_of_two() {
                tracing::warn!(server = what, peer = %peer, refused,
                    max = limits.max_connections, "too many connections; closing new ones");
            }
            continue;
        };
        let Some(place) = peers.take(peer.ip(), limits.max_per_peer) else {
            refused += 1;
            if refused.is_power_of_two() {
                tracing::warn!(server = what, peer = %peer.ip(), refused,
                    max = limits.max_per_peer, "too many connections from one address; closing new ones");
            }
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .keep_alive(true)
            .serve_connection(TokioIo::new(tcp), service.clone());
        let conn = graceful.watch(conn);
        let age = limits.max_connection_age;
        tokio::spawn(async move {
            let _held = (slot, place);
            // An error here is the client's (reset, bad request, header timeout).
            let _ = tokio::time::timeout(age, conn).await;
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_leave_descriptors_for_the_rest() {
        let a = Limits::AGENT.fitted(Some(1024));
        assert_eq!(a.max_connections, 64);
        let tight = Limits::AGENT.fitted(Some(520));
        assert_eq!(tight.max_connections, 8);
        assert_eq!(tight.max_per_peer, 8);
        assert_eq!(Limits::AGENT.fitted(Some(10)).max_connections, 1);
        assert_eq!(Limits::AGGREGATOR.fitted(Some(1024)).max_connections, 896);
        assert_eq!(Limits::AGGREGATOR.fitted(None).max_connections, 4096);
    }

    #[test]
    fn peers_are_bounded_and_given_back() {
        let peers = Arc::new(Peers::default());
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let a = peers.take(ip, 2).expect("first");
        let _b = peers.take(ip, 2).expect("second");
        assert!(peers.take(ip, 2).is_none());
        assert!(peers.take("10.0.0.2".parse().unwrap(), 2).is_some());
        drop(a);
        assert!(peers.take(ip, 2).is_some());
    }

    #[test]
    fn the_soft_limit_reaches_the_hard_limit() {
        let soft = raise_nofile_limit();
        let now = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        assert_eq!(soft, now.current);
        assert_eq!(now.current, now.maximum);
    }
}
