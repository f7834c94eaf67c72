//! Where the pull secret's credentials may go: every TLS connection of the HTTP check (the
//! registry's `/v2/`, the token realm, Harbor's health; first and later connections alike)
//! is verified, with Go's rules, against the trust view of each runtime being judged, the
//! view of the *registry* host also for a realm on another host. That is what the runtimes
//! do:
//!
//! - containerd builds one `http.Client` per registry host from its `hosts.toml` (CA files,
//!   `skip_verify`) and gives the same client to the token authorizer
//!   (containerd v1.6.38 remotes/docker/config/hosts.go:184 `tr := defaultTransport.Clone()`
//!   and :242 `docker.NewDockerAuthorizer(append(authOpts, docker.WithAuthClient(&c))...)`);
//!   `auth.FetchToken` then sends `SetBasicAuth` over it (remotes/docker/auth/fetch.go:188).
//! - docker builds the registry transport from `certs.d/<registry>` (`endpoint.TLSConfig`) and
//!   the token handler uses that same transport (moby v27.5.1 distribution/registry.go:95
//!   `TLSClientConfig: endpoint.TLSConfig`, :101 `authTransport := transport.NewTransport(base,
//!   ...)`, :121 `Transport: authTransport`).
//!
//! A runtime stops at the first connection it does not trust, so [`ViewJudge`] keeps, per
//! view, the first rejection, and accepts a connection only while some view still following
//! the exchange trusts it: credentials are never written to a connection no judged runtime
//! would use. A view with a rejection gets that rejection as its verdict (with the cause
//! [`CAUSE_REALM`] or [`CAUSE_CONNECTION`]), never `ok`.
//!
//! When no view accepts the first handshake there is no HTTP check and no credential goes
//! anywhere; the probe's only request then is `harbor::identify` (is it Harbor, for the
//! getcert hint), anonymous, over a connection no one verified, its answer trusted for
//! nothing else.

use super::capture::ConnectionJudge;
use super::classify::{self, Presented, ViewTrust};
use crate::host::RegistryHost;
use crate::report::Verdict;
use crate::runtime::view::SystemRoots;
use rustls::pki_types::ServerName;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;

/// Cause of a view that refused the token realm's certificate.
pub const CAUSE_REALM: &str = "realm_untrusted";
/// Cause of a view that refused a later connection to the registry itself.
pub const CAUSE_CONNECTION: &str = "connection_untrusted";

/// Why one runtime view refused one connection of the HTTP check.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub verdict: Verdict,
    /// Go's text for the refused certificate (`x509: ...`).
    pub message: String,
    pub cause: String,
    pub fix: String,
}

/// Judges each connection against the views whose first handshake was accepted.
#[derive(Debug)]
pub struct ViewJudge {
    registry: RegistryHost,
    /// Each accepting view with the Go its runtime runs on and its trust pool (the same as
    /// for its first handshake, not built again).
    views: Vec<ViewTrust>,
    system: Arc<SystemRoots>,
    now: OffsetDateTime,
    /// The chains seen so far (the first handshake's among them), each parsed once however
    /// many connections present it.
    chains: Mutex<Vec<Arc<Presented>>>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    rejected: Vec<Option<Rejection>>,
    /// After the runtime's part (Harbor's health is ours): no more rejections recorded.
    frozen: bool,
}

impl ViewJudge {
    /// `registry` is the host dialed (its trust applies to every connection); `first` the
    /// chain of the first handshake, already parsed for these views.
    pub fn new(
        registry: &RegistryHost,
        views: Vec<ViewTrust>,
        system: Arc<SystemRoots>,
        now: OffsetDateTime,
        first: Option<Arc<Presented>>,
    ) -> Arc<ViewJudge> {
        let n = views.len();
        Arc::new(ViewJudge {
            registry: registry.clone(),
            views,
            system,
            now,
            chains: Mutex::new(first.into_iter().collect()),
            state: Mutex::new(State {
                rejected: vec![None; n],
                frozen: false,
            }),
        })
    }

    /// Stop recording rejections: what follows is not something the runtime does.
    pub fn freeze(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.frozen = true;
        }
    }

    /// The first connection view `i` refused, if any.
    pub fn rejection(&self, i: usize) -> Option<Rejection> {
        self.state
            .lock()
            .ok()
            .and_then(|s| s.rejected.get(i).cloned().flatten())
    }

    fn decide(&self, trust: &ViewTrust, chain: &Presented, name: &str) -> Option<Rejection> {
        let view = &trust.view;
        let host = RegistryHost::parse(name).ok()?;
        let d = classify::decide(trust, &self.system, chain, &host, self.now, None);
        if d.verdict == Verdict::Ok {
            return None;
        }
        let realm = host.name() != self.registry.name();
        let (cause, fix) = if realm {
            (
                CAUSE_REALM,
                format!(
                    "the token service {name} named by {}'s Bearer challenge presents a certificate \
                     that {}'s trust for {} does not accept ({}); the runtime fetches the realm \
                     with the registry's TLS configuration and would fail the pull: give the \
                     token service a certificate from the registry's CA (or a public one), or \
                     point the challenge's realm at the registry (Harbor: external_url)",
                    self.registry,
                    view.runtime,
                    self.registry,
                    d.verdict.as_str()
                ),
            )
        } else {
            (
                CAUSE_CONNECTION,
                format!(
                    "a later connection to {} presented a certificate {}'s trust does not accept \
                     ({}) although the first one was accepted: a load balancer or a backend \
                     serves another certificate (or something intercepts); make every backend \
                     serve the registry's certificate",
                    self.registry,
                    view.runtime,
                    d.verdict.as_str()
                ),
            )
        };
        Some(Rejection {
            verdict: d.verdict,
            message: d.message,
            cause: cause.to_string(),
            fix,
        })
    }
}

impl ViewJudge {
    /// The chain as seen before (parsed already), or a new one remembered.
    fn presented(&self, chain: &[Vec<u8>]) -> Arc<Presented> {
        let mut chains = match self.chains.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(p) = chains.iter().find(|p| p.ders == chain) {
            return p.clone();
        }
        let p = Arc::new(Presented::new(chain.to_vec()));
        chains.push(p.clone());
        p
    }
}

impl ConnectionJudge for ViewJudge {
    fn judge(&self, chain: &[Vec<u8>], server: &ServerName<'_>) -> Result<(), String> {
        let name = match server {
            ServerName::DnsName(d) => d.as_ref().to_string(),
            ServerName::IpAddress(ip) => match IpAddr::from(*ip) {
                IpAddr::V6(v6) => format!("[{v6}]"),
                v4 => v4.to_string(),
            },
            _ => return Err("tls: unsupported server name".into()),
        };
        let presented = self.presented(chain);
        let mut state = self
            .state
            .lock()
            .map_err(|_| "tls: the connection judge failed".to_string())?;
        let mut accepted = false;
        let mut first_refusal = None;
        for (i, view) in self.views.iter().enumerate() {
            if state.rejected[i].is_some() {
                // This runtime stopped at an earlier connection: it sends nothing more.
                continue;
            }
            match self.decide(view, &presented, &name) {
                None => accepted = true,
                Some(r) => {
                    first_refusal.get_or_insert_with(|| r.message.clone());
                    if !state.frozen {
                        state.rejected[i] = Some(r);
                    }
                }
            }
        }
        if accepted {
            Ok(())
        } else {
            Err(format!(
                "{name}: {}",
                first_refusal.unwrap_or_else(|| "no runtime trusts this connection".into())
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::pki::{Key, Spec};
    use crate::runtime::view::{self as trustview, Anchor};
    use std::path::Path;

    fn view(name: &str, cas: &[&[u8]]) -> ViewTrust {
        let mut v = trustview::system_only_view();
        v.runtime = name.to_string();
        v.host_cas = cas
            .iter()
            .map(|der| Anchor::new(der.to_vec(), Path::new("/ca.crt")).expect("anchor"))
            .collect();
        ViewTrust::new(v, &SystemRoots::default(), classify::GoRuntime::default())
    }

    fn dns(name: &str) -> ServerName<'static> {
        ServerName::try_from(name.to_string()).unwrap()
    }

    /// Each view stops at the first connection it refuses, and keeps that refusal; a
    /// connection is accepted while one view still following the exchange trusts it; after
    /// `freeze` nothing more is recorded.
    #[test]
    fn each_view_keeps_its_first_refusal() {
        let now = OffsetDateTime::now_utc();
        let ca_a = Spec::ca("CA A", now).self_signed(Key::ecdsa());
        let ca_b = Spec::ca("CA B", now).self_signed(Key::ecdsa());
        let registry_leaf =
            Spec::leaf("registry.test", &["registry.test"], now).signed_by(Key::ecdsa(), &ca_a);
        let realm_leaf =
            Spec::leaf("realm.test", &["realm.test"], now).signed_by(Key::ecdsa(), &ca_b);
        let host = RegistryHost::parse("registry.test").unwrap();
        let views = vec![
            view("docker", &[&ca_a.der()]),
            view("crio", &[&ca_a.der(), &ca_b.der()]),
        ];
        let judge = ViewJudge::new(&host, views.clone(), Arc::default(), now, None);

        assert_eq!(
            judge.judge(&[registry_leaf.der()], &dns("registry.test")),
            Ok(())
        );
        assert_eq!((judge.rejection(0), judge.rejection(1)), (None, None));

        // The realm: crio trusts CA B, docker does not.
        assert_eq!(judge.judge(&[realm_leaf.der()], &dns("realm.test")), Ok(()));
        let r = judge.rejection(0).expect("docker refused the realm");
        assert_eq!(r.verdict, Verdict::UnknownAuthority);
        assert_eq!(r.cause, CAUSE_REALM);
        assert!(r.fix.contains("realm.test"), "{}", r.fix);
        assert_eq!(judge.rejection(1), None);

        // The realm's certificate on the registry's name: crio refuses (wrong name); docker
        // stopped already; nobody is left, so the connection is refused.
        let err = judge
            .judge(&[realm_leaf.der()], &dns("registry.test"))
            .unwrap_err();
        assert!(err.starts_with("registry.test: x509: "), "{err}");
        assert_eq!(judge.rejection(0).unwrap().cause, CAUSE_REALM);
        let r = judge.rejection(1).expect("crio refused the connection");
        assert_eq!(r.verdict, Verdict::HostnameMismatch);
        assert_eq!(r.cause, CAUSE_CONNECTION);

        // Frozen: refused, not recorded.
        let judge = ViewJudge::new(&host, views, Arc::default(), now, None);
        judge.freeze();
        assert!(judge
            .judge(&[realm_leaf.der()], &dns("registry.test"))
            .is_err());
        assert_eq!((judge.rejection(0), judge.rejection(1)), (None, None));
    }

    /// A chain the first handshake presented is not parsed again for later connections,
    /// nor is a chain two connections present.
    #[test]
    fn chains_seen_before_are_not_parsed_again() {
        use crate::go::x509::parse_count;
        let now = OffsetDateTime::now_utc();
        let ca = Spec::ca("CA", now).self_signed(Key::ecdsa());
        let leaf =
            Spec::leaf("registry.test", &["registry.test"], now).signed_by(Key::ecdsa(), &ca);
        let realm = Spec::leaf("realm.test", &["realm.test"], now).signed_by(Key::ecdsa(), &ca);
        let host = RegistryHost::parse("registry.test").unwrap();
        let views = vec![view("docker", &[&ca.der()]), view("crio", &[&ca.der()])];
        let first = Arc::new(Presented::new(vec![leaf.der()]));
        for v in &views {
            assert_eq!(
                classify::decide(v, &SystemRoots::default(), &first, &host, now, None).verdict,
                Verdict::Ok
            );
        }
        assert_eq!(parse_count::of(&leaf.der()), 1);
        let judge = ViewJudge::new(&host, views, Arc::default(), now, Some(first));
        for _ in 0..3 {
            assert_eq!(judge.judge(&[leaf.der()], &dns("registry.test")), Ok(()));
            assert_eq!(judge.judge(&[realm.der()], &dns("realm.test")), Ok(()));
        }
        assert_eq!(
            parse_count::of(&leaf.der()),
            1,
            "the first handshake's chain"
        );
        assert_eq!(parse_count::of(&realm.der()), 1, "the realm's chain");
    }
}
