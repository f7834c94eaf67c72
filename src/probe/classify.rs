//! One runtime's verdict on a captured chain: Go's `Verify` (`crate::go::verify`) over the
//! runtime's trust view, the mapping of Go's refusal onto the report's verdict, the `cause`
//! of an unknown authority with both sides named, and the `fix` an admin can act on. Also
//! the expiry warnings (under 30 days, even when the verdict is a failure). Pure: no I/O;
//! `mod.rs` gathers the inputs.
//!
//! Parsed once: the presented chain per Go release among the runtimes (`Presented::parsed`,
//! shared with every later connection of the probe), each view's trust pool once per probe
//! round (`ViewTrust`, over the system pool parsed once per release). x509-parser reads
//! only the display facts (the report's subject text, dates); it decides nothing.

use super::cause::{self, AuthorityCause};
use crate::ca::{CaBundle, CertFacts};
use crate::go::verify::{
    self as goverify, CertRef, GoVerifyError, ParsedChain, TrustPool, VerifyOptions,
};
use crate::go::x509::Certificate;
use crate::host::RegistryHost;
use crate::report::{rfc3339, ChainAnchor, ChainCert, TrustedCa, Verdict};
use crate::runtime::view::{Anchor, RuntimeView, SystemRoots};
use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};
use time::OffsetDateTime;

impl From<crate::go::verify::Verdict> for Verdict {
    fn from(v: crate::go::verify::Verdict) -> Verdict {
        use crate::go::verify::Verdict as Go;
        match v {
            Go::UnknownAuthority => Verdict::UnknownAuthority,
            Go::Expired => Verdict::Expired,
            Go::HostnameMismatch => Verdict::HostnameMismatch,
            Go::LegacyCommonName => Verdict::LegacyCommonName,
            Go::TlsError => Verdict::TlsError,
        }
    }
}

/// Days left under which an expiry is a warning (SPEC, Probe verdicts).
pub const WARN_DAYS: i64 = 30;

/// The presented chain of one probe: Go's parse of each certificate is made once, and again
/// only for a Go release among the runtimes judging it that a rule the certificate meets
/// tells apart (`parsed`, `ParsedChain::sharing`); it is shared by all of them and by every later connection
/// presenting the same chain; the display facts are read once, on first use.
#[derive(Debug)]
pub struct Presented {
    pub ders: Vec<Vec<u8>>,
    /// `ParseCertificate` of every certificate, per release (usually one).
    parses: Mutex<Vec<Arc<ParsedChain>>>,
    /// Display facts per certificate (x509-parser, for the report's subject format; None
    /// when it cannot read one). They decide nothing.
    facts: OnceLock<Vec<Option<CertFacts>>>,
}

impl Clone for Presented {
    fn clone(&self) -> Presented {
        Presented {
            ders: self.ders.clone(),
            parses: Mutex::new(self.parse_list()),
            facts: self.facts.clone(),
        }
    }
}

impl Presented {
    pub fn new(ders: Vec<Vec<u8>>) -> Presented {
        Presented {
            ders,
            parses: Mutex::new(Vec::new()),
            facts: OnceLock::new(),
        }
    }

    fn parse_list(&self) -> Vec<Arc<ParsedChain>> {
        match self.parses.lock() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The chain as a runtime on `go` parses it: parsed on the first call for that release,
    /// then shared.
    pub fn parsed(&self, go: &GoRuntime) -> Arc<ParsedChain> {
        let (release, godebug) = go.rules();
        let mut parses = match self.parses.lock() {
            Ok(p) => p,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(p) = parses.iter().find(|p| p.release() == (release, godebug)) {
            return p.clone();
        }
        let earlier: Vec<&ParsedChain> = parses.iter().map(|p| p.as_ref()).collect();
        let p = Arc::new(ParsedChain::sharing(&self.ders, release, godebug, &earlier));
        parses.push(p.clone());
        p
    }

    /// Display facts per certificate.
    pub fn facts(&self) -> &[Option<CertFacts>] {
        self.facts.get_or_init(|| {
            self.ders
                .iter()
                .map(|d| CertFacts::from_der(d).ok())
                .collect()
        })
    }

    /// The chain as the report lists it.
    pub fn server_chain(&self) -> Vec<ChainCert> {
        self.ders
            .iter()
            .zip(self.facts())
            .map(|(der, f)| match f {
                Some(f) => f.to_chain_cert(),
                None => ChainCert {
                    subject: "(not parsable by regtrust)".into(),
                    issuer: String::new(),
                    sha256: crate::ca::sha256_hex(der),
                    not_after: String::new(),
                },
            })
            .collect()
    }

    pub fn leaf(&self) -> Option<&CertFacts> {
        self.facts().first().and_then(|f| f.as_ref())
    }

    /// Raw (issuer, subject) names of every certificate, from a Go parse that read them all
    /// (one already made when there is one); None when no release parses the whole chain.
    fn names(&self) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut parses = self.parse_list();
        if parses.is_empty() {
            parses.push(self.parsed(&GoRuntime::default()));
        }
        let whole = parses
            .into_iter()
            .find(|p| p.certs().iter().all(Result::is_ok))?;
        Some(
            whole
                .certs()
                .iter()
                .filter_map(|c| c.as_ref().ok())
                .map(|c| (c.raw_issuer.clone(), c.raw_subject.clone()))
                .collect(),
        )
    }

    /// The top of the presented chain, following issuer names from the leaf: the name it
    /// says it was issued by, and the top certificate's sha256 when it is self-issued (the
    /// server sent its CA). None when regtrust cannot read the chain.
    pub fn top(&self) -> Option<(String, Option<String>)> {
        let names = self.names()?;
        let mut cur = 0;
        let mut seen = vec![0];
        loop {
            let (issuer, subject) = names.get(cur)?;
            if issuer == subject {
                let f = self.facts().get(cur)?.as_ref()?;
                return Some((f.subject.clone(), Some(f.sha256.clone())));
            }
            match (0..names.len()).find(|j| !seen.contains(j) && names[*j].1 == *issuer) {
                Some(j) => {
                    seen.push(j);
                    cur = j;
                }
                None => {
                    let f = self.facts().get(cur)?.as_ref()?;
                    return Some((f.issuer.clone(), None));
                }
            }
        }
    }
}

pub use crate::go::GoRuntime;

/// One runtime view as the probe judges it: the view, the Go its runtime runs on, and its
/// trust pool (the system pool of that release extended with the view's CAs), built once
/// per probe round and reused for every connection the view judges.
#[derive(Debug, Clone)]
pub struct ViewTrust {
    pub view: RuntimeView,
    pub go: GoRuntime,
    pool: Arc<TrustPool>,
}

impl ViewTrust {
    pub fn new(view: RuntimeView, system: &SystemRoots, go: GoRuntime) -> ViewTrust {
        let pool = Arc::new(view.trust_pool(system, &go));
        ViewTrust { view, go, pool }
    }
}

/// What one runtime would decide about the TLS part.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsDecision {
    /// `Ok` when the runtime accepts the server.
    pub verdict: Verdict,
    /// The bare `x509: ...` text (SPEC: `message`).
    pub message: String,
    /// What this runtime prints (Go >= 1.20 wraps Verify errors, see
    /// `GoVerifyError::runtime_message`).
    pub runtime_message: String,
    pub cause: String,
    pub fix: String,
    pub anchor: Option<ChainAnchor>,
}

/// Decide for one runtime view. `expected` is the CA input regtrust manages for the host,
/// used only to word the fix (is it the missing piece?). Builds the view's trust pool: a
/// probe judging several chains with one view keeps a `ViewTrust` and calls `decide`.
pub fn decide_tls(
    view: &RuntimeView,
    system: &SystemRoots,
    chain: &Presented,
    host: &RegistryHost,
    now: OffsetDateTime,
    expected: Option<&CaBundle>,
    go: &GoRuntime,
) -> TlsDecision {
    if view.fatal.is_some() || view.skip_verify {
        // Decided before any TLS: no pool needed.
        let trust = ViewTrust {
            view: view.clone(),
            go: *go,
            pool: Arc::new(TrustPool::new_as(&[] as &[&[u8]], go.go, go.godebug)),
        };
        return decide(&trust, system, chain, host, now, expected);
    }
    decide(
        &ViewTrust::new(view.clone(), system, *go),
        system,
        chain,
        host,
        now,
        expected,
    )
}

/// `decide_tls` with the view's trust pool built once (`ViewTrust::new`), and the chain's
/// parse shared with every other view on the same Go release (`Presented::parsed`).
pub fn decide(
    trust: &ViewTrust,
    system: &SystemRoots,
    chain: &Presented,
    host: &RegistryHost,
    now: OffsetDateTime,
    expected: Option<&CaBundle>,
) -> TlsDecision {
    let view = &trust.view;
    if let Some(fatal) = &view.fatal {
        return TlsDecision {
            verdict: Verdict::TlsError,
            message: fatal.clone(),
            runtime_message: String::new(),
            cause: String::new(),
            fix: fatal_fix(fatal, view),
            anchor: None,
        };
    }
    if view.skip_verify {
        return TlsDecision {
            verdict: Verdict::Ok,
            message: String::new(),
            runtime_message: String::new(),
            cause: String::new(),
            fix: String::new(),
            anchor: None,
        };
    }
    // `CertRef::Root(i)` is `roots[i]`: the pool was built in this order.
    let roots = view.roots(system);
    let mut opts = VerifyOptions::new(host.name(), now).with_go(trust.go.go);
    opts.godebug = trust.go.godebug;
    let parsed = chain.parsed(&trust.go);
    match goverify::verify_chain(&parsed, &trust.pool, &opts) {
        Ok(v) => {
            let anchor = v
                .chains
                .first()
                .and_then(|c| c.last())
                .and_then(|r| match r {
                    CertRef::Root(i) => roots.get(*i).map(|a| ChainAnchor {
                        subject: a.facts().subject.clone(),
                        sha256: a.sha256.clone(),
                        file: a.file.display().to_string(),
                    }),
                    CertRef::Presented(_) => None,
                });
            TlsDecision {
                verdict: Verdict::Ok,
                message: String::new(),
                runtime_message: String::new(),
                cause: String::new(),
                fix: String::new(),
                anchor,
            }
        }
        Err(e) => rejected(e, trust, system, chain, host, &opts, expected, &roots),
    }
}

#[allow(clippy::too_many_arguments)]
fn rejected(
    e: GoVerifyError,
    trust: &ViewTrust,
    system: &SystemRoots,
    chain: &Presented,
    host: &RegistryHost,
    opts: &VerifyOptions<'_>,
    expected: Option<&CaBundle>,
    roots: &[&Anchor],
) -> TlsDecision {
    let view = &trust.view;
    let now = opts.now;
    let verdict = Verdict::from(e.verdict());
    let message = e.message();
    let mut d = TlsDecision {
        verdict,
        runtime_message: e.runtime_message(opts.go),
        message,
        cause: String::new(),
        fix: String::new(),
        anchor: None,
    };
    match &e {
        GoVerifyError::CertificateInvalid { cert, .. } if verdict == Verdict::Expired => {
            d.fix = expiry_fix(*cert, chain, roots, now);
        }
        GoVerifyError::Hostname {
            legacy_common_name, ..
        } => {
            let san = san_for(host);
            d.fix = if *legacy_common_name {
                format!(
                    "the registry's certificate names {} only in its Common Name, which Go ignores: \
                     reissue it with subjectAltName = {san}",
                    host.name()
                )
            } else {
                format!(
                    "reissue the registry's certificate with subjectAltName = {san} \
                     (or pull through a name the certificate is valid for)"
                )
            };
        }
        GoVerifyError::UnknownAuthority { .. } => {
            // The chain and the installed CAs as this runtime's Go parsed them already.
            let parsed = chain.parsed(&trust.go);
            let presented: Vec<&Certificate> = parsed
                .certs()
                .iter()
                .filter_map(|c| c.as_ref().ok())
                .collect();
            let installed: Vec<Arc<Certificate>> = view
                .host_cas
                .iter()
                .filter_map(|a| a.parsed_by(&trust.go).or_else(|| a.parse_as(&trust.go)))
                .collect();
            let installed: Vec<&Certificate> = installed.iter().map(|c| &**c).collect();
            let cause = cause::unknown_authority_cause(&presented, &installed, opts);
            d.cause = cause.code().to_string();
            d.anchor = Some(server_top(chain, &cause));
            d.fix = match hint_fix(&d.message) {
                Some(f) => f,
                None => authority_fix(&cause, trust, system, chain, host, opts, expected),
            };
        }
        GoVerifyError::Undecidable { .. } => {
            d.fix = "regtrust cannot tell what Go would decide for this chain; check the pull with the runtime itself".into();
        }
        _ => {
            d.fix =
                "the registry's certificate is one Go refuses: reissue it (see the message)".into();
        }
    }
    d
}

/// When Go's hint names the reason (`possibly because of "..."`), the fix follows it: it is
/// what the runtime itself says, whatever the chain's shape.
fn hint_fix(message: &str) -> Option<String> {
    if message.contains("insecure algorithm") {
        Some(
            "the registry's certificate (or an intermediate) is signed with SHA-1, which Go refuses: \
             reissue it signed with SHA-256"
                .into(),
        )
    } else if message.contains("parent certificate cannot sign this kind of certificate") {
        Some(
            "the installed CA may not sign certificates for Go (no CA:TRUE basicConstraints, or a \
             key usage without keyCertSign): reissue the CA with them"
                .into(),
        )
    } else if message.contains("x509: certificate has expired or is not yet valid") {
        Some("a CA on the chain is expired or not yet valid: install the registry's current CA (and check this node's clock)".into())
    } else {
        None
    }
}

/// `DNS:name` or `IP:addr`, what the certificate must carry for this host.
fn san_for(host: &RegistryHost) -> String {
    if host.is_ip() {
        format!("IP:{}", host.name())
    } else {
        format!("DNS:{}", host.name())
    }
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(16)]
}

fn expiry_fix(cert: CertRef, chain: &Presented, roots: &[&Anchor], now: OffsetDateTime) -> String {
    let (what, facts, file) = match cert {
        CertRef::Presented(0) => ("the registry's certificate", chain.leaf().cloned(), None),
        CertRef::Presented(i) => (
            "the intermediate the registry serves",
            chain.facts().get(i).cloned().flatten(),
            None,
        ),
        CertRef::Root(i) => (
            "the trusted CA",
            roots.get(i).map(|a| a.facts().clone()),
            roots.get(i).map(|a| a.file.display().to_string()),
        ),
    };
    let Some(f) = facts else {
        return format!("renew {what}");
    };
    let from = file.map(|p| format!(" from {p}")).unwrap_or_default();
    if now < f.not_before {
        format!(
            "{what} {:?}{from} is valid only from {}: check this node's clock (now {}) or reissue it",
            f.subject,
            rfc3339(f.not_before),
            rfc3339(now)
        )
    } else {
        format!(
            "{what} {:?}{from} expired on {}: renew it and reload the registry",
            f.subject,
            rfc3339(f.not_after)
        )
    }
}

/// The top of the presented chain (the other side of an unknown authority), in the
/// report's own subject format; Go's text from the cause when regtrust cannot read the chain.
fn server_top(chain: &Presented, cause: &AuthorityCause) -> ChainAnchor {
    if let Some((subject, sha)) = chain.top() {
        return ChainAnchor {
            subject,
            sha256: sha.unwrap_or_default(),
            file: String::new(),
        };
    }
    let subject = match cause {
        AuthorityCause::CaMismatch { issuer, .. }
        | AuthorityCause::CaNotInstalled { issuer }
        | AuthorityCause::MissingIntermediate { issuer, .. } => issuer.clone(),
        AuthorityCause::CaUnusable { anchor, .. } => anchor.subject.clone(),
    };
    ChainAnchor {
        subject,
        sha256: String::new(),
        file: String::new(),
    }
}

/// An installed CA by sha256, as the report names it: `"CN=..." (sha256 abcd…) from FILE`.
fn installed_label(view: &RuntimeView, sha: &str, go_subject: &str) -> String {
    match view.host_cas.iter().find(|a| a.sha256 == sha) {
        Some(a) => format!(
            "{:?} (sha256 {}…) from {}",
            a.facts().subject,
            short(sha),
            a.file.display()
        ),
        None => format!("{go_subject:?} (sha256 {}…)", short(sha)),
    }
}

fn authority_fix(
    cause: &AuthorityCause,
    trust: &ViewTrust,
    system: &SystemRoots,
    chain: &Presented,
    host: &RegistryHost,
    opts: &VerifyOptions<'_>,
    expected: Option<&CaBundle>,
) -> String {
    let view = &trust.view;
    let dir = view
        .dir
        .as_ref()
        .map(|d| d.display().to_string())
        .or_else(|| view.install_dir.as_ref().map(|d| d.display().to_string()))
        .unwrap_or_else(|| {
            // No host dir yet: where regtrust would install it, as the node spells it.
            match crate::trust::Runtime::parse(&view.runtime) {
                Some(rt) => format!("/{}/{host}", rt.certs_dir()),
                None => format!("the {} certs.d dir for {host}", view.runtime),
            }
        });
    // Would the CA regtrust manages for this host verify the chain, for this runtime? The
    // system pool and the chain's parse are this runtime's, made already.
    let input_verifies = expected.is_some_and(|b| {
        let more: Vec<(&[u8], Option<Arc<Certificate>>)> = b
            .certificates()
            .iter()
            .map(|c| (c.der.as_slice(), None))
            .collect();
        let pool = system.pool(&trust.go).with_more(&more);
        goverify::verify_chain(&chain.parsed(&trust.go), &pool, opts).is_ok()
    });
    let sync_hint = match expected {
        Some(b) if input_verifies => format!(
            "; the CA input {} verifies this chain: run `regtrust sync` to install it",
            b.source()
        ),
        Some(b) => format!(
            "; note the CA input {} does not verify this chain either",
            b.source()
        ),
        None => String::new(),
    };
    if view.ignores_certs_d {
        return format!(
            "containerd's CRI ignores certs.d on this node (config_path unset): set config_path = \
             \"/etc/containerd/certs.d\" in /etc/containerd/config.toml and restart containerd{sync_hint}"
        );
    }
    match cause {
        AuthorityCause::CaNotInstalled { issuer } => {
            let issuer = chain
                .top()
                .map(|(s, _)| s)
                .unwrap_or_else(|| issuer.clone());
            format!(
                "install the registry's CA ({issuer:?}) for {}: {dir}/ca.crt (`regtrust sync --ca {host}=CA.crt`; \
                 Harbor publishes it at https://{host}/api/v2.0/systeminfo/getcert){sync_hint}",
                view.runtime
            )
        }
        AuthorityCause::CaUnusable { anchor, reason } => {
            let ca = installed_label(view, &anchor.sha256, &anchor.subject);
            // Go names the reason in the message already; the fix says what to change.
            if reason.is_empty() {
                format!("the installed CA {ca} is the right one but Go refuses the chain: check its validity and extensions")
            } else {
                format!("the installed CA {ca} is refused: {reason}")
            }
        }
        AuthorityCause::CaMismatch {
            installed,
            issuer,
            server_ca,
        } => {
            let server = match chain.top() {
                Some((subject, Some(sha))) => {
                    format!("{subject:?} (sha256 {}…, sent by the server)", short(&sha))
                }
                Some((subject, None)) => format!("{subject:?} (not sent by the server)"),
                None => "a CA of the same name".into(),
            };
            let node: Vec<String> = installed
                .iter()
                .map(|c| installed_label(view, &c.sha256, &c.subject))
                .collect();
            if !installed.iter().any(|c| c.subject == *issuer) {
                // Another CA altogether (the wrong file, or a CA replaced under a new name).
                let via = server_ca
                    .as_ref()
                    .map(|c| {
                        format!(
                            " (top certificate sent: {:?}, sha256 {}…)",
                            c.subject,
                            short(&c.sha256)
                        )
                    })
                    .unwrap_or_default();
                return format!(
                    "the registry's chain leads to {issuer:?}{via}, another CA than the one {} trusts for this \
                     host, {}; install the registry's CA in the CA secret (the --ca input) and let regtrust sync \
                     install it{sync_hint}",
                    view.runtime,
                    node.join(", ")
                );
            }
            format!(
                "the registry's CA was rotated: its certificate is issued by {server}, under another key than the CA \
                 {} trusts, {}; update the CA secret (the --ca input) with the registry's new CA and let regtrust \
                 sync install it{sync_hint}",
                view.runtime,
                node.join(", ")
            )
        }
        AuthorityCause::MissingIntermediate { issuer, anchors } => {
            let issuer = chain
                .top()
                .map(|(s, _)| s)
                .unwrap_or_else(|| issuer.clone());
            let names: Vec<String> = anchors
                .iter()
                .map(|a| installed_label(view, &a.sha256, &a.subject))
                .collect();
            format!(
                "the registry serves its certificate without the intermediate CA {issuer:?} (the node trusts {}): \
                 configure the registry to send the full chain (leaf, then intermediates), or add the \
                 intermediate to the CA secret",
                names.join(", ")
            )
        }
    }
}

fn fatal_fix(fatal: &str, view: &RuntimeView) -> String {
    let dir = view
        .dir
        .as_ref()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    if fatal.starts_with("missing client certificate") {
        format!("remove the stray key file from {dir} (a CA needs no key on a node)")
    } else if fatal.starts_with("missing key") {
        format!("a CA file in {dir} is named *.cert: rename it to *.crt")
    } else if fatal.starts_with("unable to") {
        format!(
            "replace the CA file named in the message with a PEM certificate, or remove it ({dir})"
        )
    } else if fatal.contains("config") {
        "fix containerd's config.toml (see the message)".into()
    } else {
        format!("fix the files in {dir} (see the message)")
    }
}

/// Expiry warnings for one runtime: the served chain, the runtime's CAs for the host, and
/// the anchor that verified the chain.
pub fn expiry_warnings(
    chain: &Presented,
    view: &RuntimeView,
    anchor: Option<&ChainAnchor>,
    system: &SystemRoots,
    now: OffsetDateTime,
) -> Vec<String> {
    let mut out = Vec::new();
    for (i, f) in chain.facts().iter().enumerate() {
        let Some(f) = f else { continue };
        let what = if i == 0 {
            "the registry's certificate"
        } else {
            "the intermediate the registry serves"
        };
        if let Some(w) = expiry_line(what, f, None, now) {
            out.push(w);
        }
    }
    let mut seen: HashSet<&str> = HashSet::new();
    for a in &view.host_cas {
        if seen.insert(&a.sha256) {
            if let Some(w) = expiry_line("the CA", a.facts(), Some(&a.file), now) {
                out.push(w);
            }
        }
    }
    if let Some(anchor) = anchor {
        if !seen.contains(anchor.sha256.as_str()) {
            if let Some(a) = system.anchors.iter().find(|a| a.sha256 == anchor.sha256) {
                if let Some(w) = expiry_line("the system CA", a.facts(), Some(&a.file), now) {
                    out.push(w);
                }
            }
        }
    }
    out
}

fn expiry_line(
    what: &str,
    f: &CertFacts,
    file: Option<&std::path::PathBuf>,
    now: OffsetDateTime,
) -> Option<String> {
    let days = f.days_left(now);
    if days >= WARN_DAYS {
        return None;
    }
    let from = file
        .map(|p| format!(" ({})", p.display()))
        .unwrap_or_default();
    Some(if now > f.not_after {
        format!(
            "{what} {:?}{from} expired on {} ({} ago)",
            f.subject,
            rfc3339(f.not_after),
            days_text(-days)
        )
    } else {
        format!(
            "{what} {:?}{from} expires on {} (in {})",
            f.subject,
            rfc3339(f.not_after),
            days_text(days)
        )
    })
}

fn days_text(days: i64) -> String {
    if days == 1 {
        "1 day".into()
    } else {
        format!("{days} days")
    }
}

/// The runtime's CAs for the host as the report lists them.
pub fn trusted(view: &RuntimeView, now: OffsetDateTime) -> Vec<TrustedCa> {
    view.host_cas
        .iter()
        .map(|a| TrustedCa {
            subject: a.facts().subject.clone(),
            sha256: a.sha256.clone(),
            not_after: rfc3339(a.facts().not_after),
            days_left: a.facts().days_left(now),
            file: a.file.display().to_string(),
            pem: crate::ca::pem_block(a.der()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::view::{Anchor, RuntimeView};
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    use std::path::PathBuf;
    use time::Duration;

    struct Issued {
        cert: rcgen::Certificate,
        key: KeyPair,
    }

    fn issue(
        cn: &str,
        ca: bool,
        issuer: Option<&Issued>,
        sans: &[&str],
        valid: (i64, i64),
    ) -> Issued {
        let now = OffsetDateTime::now_utc();
        let mut p =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.not_before = now + Duration::days(valid.0);
        p.not_after = now + Duration::days(valid.1);
        if ca {
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        }
        let key = KeyPair::generate().unwrap();
        let cert = match issuer {
            Some(i) => p.signed_by(&key, &i.cert, &i.key).unwrap(),
            None => p.self_signed(&key).unwrap(),
        };
        Issued { cert, key }
    }

    fn anchor(i: &Issued, file: &str) -> Anchor {
        Anchor::new(i.cert.der().to_vec(), &PathBuf::from(file)).unwrap()
    }

    fn view(cas: Vec<Anchor>) -> RuntimeView {
        let mut v = crate::runtime::view::system_only_view();
        v.runtime = "crio".into();
        v.host_cas = cas;
        v
    }

    #[test]
    fn decisions_per_view() {
        let root = issue("Harbor CA", true, None, &[], (-1, 3650));
        let rotated = issue("Harbor CA", true, None, &[], (-1, 3650));
        let other = issue("Other CA", true, None, &[], (-1, 3650));
        let int = issue("Harbor Int", true, Some(&root), &[], (-1, 3650));
        let leaf = issue("reg", false, Some(&int), &["reg.example"], (-1, 20));
        let host = RegistryHost::parse("reg.example:5000").unwrap();
        let now = OffsetDateTime::now_utc();
        let full = Presented::new(vec![leaf.cert.der().to_vec(), int.cert.der().to_vec()]);
        let leaf_only = Presented::new(vec![leaf.cert.der().to_vec()]);
        let noise: Vec<Anchor> = (0..20)
            .map(|i| {
                anchor(
                    &issue(&format!("noise {i}"), true, None, &[], (-1, 10)),
                    "/etc/ssl/certs/noise.pem",
                )
            })
            .collect();
        let system = SystemRoots::with_anchors(noise);
        let cases = [
            (
                "trusted root",
                &full,
                vec![anchor(&root, "/x/ca.crt")],
                Verdict::Ok,
                "",
            ),
            (
                "nothing installed",
                &full,
                vec![],
                Verdict::UnknownAuthority,
                "ca_not_installed",
            ),
            (
                "rotated",
                &full,
                vec![anchor(&rotated, "/x/ca.crt")],
                Verdict::UnknownAuthority,
                "ca_mismatch",
            ),
            (
                // The server sends its intermediate; the node has an unrelated CA: not a
                // missing intermediate.
                "another CA installed",
                &full,
                vec![anchor(&other, "/x/ca.crt")],
                Verdict::UnknownAuthority,
                "ca_mismatch",
            ),
            (
                "missing intermediate",
                &leaf_only,
                vec![anchor(&root, "/x/ca.crt")],
                Verdict::UnknownAuthority,
                "missing_intermediate",
            ),
            (
                "intermediate pinned as the CA",
                &leaf_only,
                vec![anchor(&int, "/x/ca.crt")],
                Verdict::Ok,
                "",
            ),
        ];
        for (name, chain, cas, want, cause) in cases {
            let v = view(cas);
            let d = decide_tls(&v, &system, chain, &host, now, None, &GoRuntime::default());
            assert_eq!(d.verdict, want, "{name}: {d:?}");
            assert_eq!(d.cause, cause, "{name}");
            if want == Verdict::Ok {
                assert_eq!(d.anchor.as_ref().unwrap().file, "/x/ca.crt", "{name}");
            } else {
                assert!(!d.fix.is_empty(), "{name}");
            }
            // The expiry warning (20 days) is there whatever the verdict.
            let w = expiry_warnings(chain, &v, d.anchor.as_ref(), &system, now);
            assert!(w.iter().any(|w| w.contains("expires on")), "{name}: {w:?}");
        }
        // A fatal view is a tls_error in the runtime's words; skip_verify accepts anything.
        let mut fatal = view(vec![]);
        fatal.fatal = Some("missing client certificate ca.cert for key ca.key".into());
        let d = decide_tls(
            &fatal,
            &system,
            &full,
            &host,
            now,
            None,
            &GoRuntime::default(),
        );
        assert_eq!(
            (d.verdict, d.message.as_str()),
            (
                Verdict::TlsError,
                "missing client certificate ca.cert for key ca.key"
            )
        );
        assert!(d.fix.contains("remove the stray key"));
        let mut skip = view(vec![]);
        skip.skip_verify = true;
        assert_eq!(
            decide_tls(
                &skip,
                &system,
                &full,
                &host,
                now,
                None,
                &GoRuntime::default()
            )
            .verdict,
            Verdict::Ok
        );
        // A wrong name is reported before trust, as Go does.
        let other = RegistryHost::parse("other.example").unwrap();
        let d = decide_tls(
            &view(vec![]),
            &system,
            &full,
            &other,
            now,
            None,
            &GoRuntime::default(),
        );
        assert_eq!(d.verdict, Verdict::HostnameMismatch);
        assert!(d.fix.contains("DNS:other.example"), "{}", d.fix);
    }

    #[test]
    fn the_top_of_the_chain() {
        let root = issue("Root", true, None, &[], (-1, 3650));
        let int = issue("Int", true, Some(&root), &[], (-1, 3650));
        let leaf = issue("leaf", false, Some(&int), &["h"], (-1, 90));
        let der = |i: &Issued| i.cert.der().to_vec();
        let root_sha = crate::ca::sha256_hex(&der(&root));
        let cases = [
            (vec![der(&leaf)], ("CN=Int", None)),
            (vec![der(&leaf), der(&int)], ("CN=Root", None)),
            (
                vec![der(&leaf), der(&int), der(&root)],
                ("CN=Root", Some(root_sha.clone())),
            ),
            // Order on the wire does not matter; unrelated extras are ignored.
            (
                vec![der(&leaf), der(&root), der(&int)],
                ("CN=Root", Some(root_sha.clone())),
            ),
        ];
        for (chain, (subject, sha)) in cases {
            assert_eq!(
                Presented::new(chain).top(),
                Some((subject.to_string(), sha))
            );
        }
        assert_eq!(Presented::new(vec![b"junk".to_vec()]).top(), None);
        assert_eq!(Presented::new(vec![]).top(), None);
    }

    #[test]
    fn expiry_lines() {
        let now = OffsetDateTime::now_utc();
        let f = |days: i64| {
            let c = issue("x", false, None, &[], (-100, days));
            CertFacts::from_der(c.cert.der()).unwrap()
        };
        assert_eq!(expiry_line("the CA", &f(365), None, now), None);
        // Measured from the certificate's own notAfter (whole seconds), not from a `now`
        // taken before it was issued: the days left then do not hang on sub-second timing.
        let ten = f(10);
        let at = ten.not_after - time::Duration::hours(9 * 24 + 12);
        assert!(expiry_line("the CA", &ten, None, at)
            .unwrap()
            .contains("in 9 days"));
        assert!(expiry_line("the CA", &f(-2), None, now)
            .unwrap()
            .contains("ago"));
    }
}
