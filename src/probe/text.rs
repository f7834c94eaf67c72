//! `regtrust probe --output text`: the report for an admin at a terminal. One line per
//! registry with its verdict and message; then, indented, each runtime's verdict (with the
//! cause), which build of each runtime judged (its version and Go) and what it prints when
//! that differs from Go's bare text, the chain the server presented (subject ← issuer, sha256 prefix, not_after),
//! what each runtime trusts and from which file, Harbor's health, warnings, and `fix:`
//! lines. Lines said alike by every runtime are printed once. It renders; it decides
//! nothing.

use crate::report::{ProbeEntry, RegistryReport, Report};
use std::fmt::Write as _;

/// Characters of a sha256 shown in text (the JSON has all 64).
const SHA_SHOWN: usize = 16;

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    for r in &report.registries {
        registry(&mut out, r);
    }
    if !report.problems.is_empty() {
        let _ = writeln!(out, "problems:");
        for p in &report.problems {
            let _ = writeln!(out, "  {}: {}", p.source, p.message);
        }
    }
    out
}

fn sha(s: &str) -> &str {
    &s[..s.len().min(SHA_SHOWN)]
}

fn registry(out: &mut String, r: &RegistryReport) {
    let msg = if r.message.is_empty() {
        String::new()
    } else {
        format!("  {}", r.message)
    };
    let _ = writeln!(out, "{}  {}{msg}", r.host, r.verdict);
    let width = r.probes.iter().map(|p| p.runtime.len()).max().unwrap_or(0);
    let all_same = r.probes.windows(2).all(|w| {
        w[0].verdict == w[1].verdict && w[0].message == w[1].message && w[0].cause == w[1].cause
    });
    for p in &r.probes {
        let cause = if p.cause.is_empty() {
            String::new()
        } else {
            format!(" ({})", p.cause)
        };
        // The registry line already carries the message when every runtime agrees.
        let msg = if p.message.is_empty() || (all_same && p.message == r.message) {
            String::new()
        } else {
            format!("  {}", p.message)
        };
        let _ = writeln!(
            out,
            "  {:<width$}  {}{cause}{msg}  ({} ms)",
            p.runtime, p.verdict, p.latency_ms
        );
    }
    // Which build of each runtime judged (its Go decides the rules and the words).
    let built: Vec<String> = r
        .probes
        .iter()
        .filter(|p| !p.go_version.is_empty() || !p.runtime_version.is_empty())
        .map(|p| {
            let v = if p.runtime_version.is_empty() {
                String::new()
            } else {
                format!(" {}", p.runtime_version)
            };
            let g = if p.go_version.is_empty() {
                String::new()
            } else {
                format!(" ({})", p.go_version)
            };
            format!("{}{v}{g}", p.runtime)
        })
        .collect();
    if !built.is_empty() {
        let _ = writeln!(out, "  built:  {}", built.join(", "));
    }
    for p in r.probes.iter().filter(|p| !p.runtime_message.is_empty()) {
        let _ = writeln!(out, "  {} prints: {}", p.runtime, p.runtime_message);
    }
    if let Some(p) = r.probes.iter().find(|p| !p.server_chain.is_empty()) {
        for (i, c) in p.server_chain.iter().enumerate() {
            let label = if i == 0 { "chain:" } else { "" };
            let _ = writeln!(
                out,
                "  {label:<8}{} ← {}  sha256 {}  not_after {}",
                c.subject,
                c.issuer,
                sha(&c.sha256),
                c.not_after
            );
        }
    }
    trusts(out, &r.probes);
    if let Some(h) = &r.harbor {
        let comps: Vec<String> = h
            .components
            .iter()
            .map(|c| format!("{} {}", c.name, c.status))
            .collect();
        let _ = writeln!(out, "  harbor: {} ({})", h.status, comps.join(", "));
    }
    per_runtime(out, "verified by", &r.probes, |p| match &p.anchor {
        Some(a) if !a.file.is_empty() => vec![format!("{} from {}", a.subject, a.file)],
        _ => Vec::new(),
    });
    per_runtime(out, "chain ends at", &r.probes, |p| match &p.anchor {
        Some(a) if a.file.is_empty() && !p.cause.is_empty() => vec![if a.sha256.is_empty() {
            format!("{} (not sent by the server)", a.subject)
        } else {
            format!("{}  sha256 {}", a.subject, sha(&a.sha256))
        }],
        _ => Vec::new(),
    });
    per_runtime(out, "warning", &r.probes, |p| p.warnings.clone());
    per_runtime(out, "fix", &r.probes, |p| {
        if p.fix.is_empty() {
            Vec::new()
        } else {
            vec![p.fix.clone()]
        }
    });
}

/// What each runtime trusts for the host, and what verified the chain.
fn trusts(out: &mut String, probes: &[ProbeEntry]) {
    let lines: Vec<(String, Vec<String>)> = probes
        .iter()
        .map(|p| {
            let mut v: Vec<String> = p
                .trusted
                .iter()
                .map(|t| {
                    format!(
                        "{}  sha256 {}  not_after {} ({} days)  from {}",
                        t.subject,
                        sha(&t.sha256),
                        t.not_after,
                        t.days_left,
                        t.file
                    )
                })
                .collect();
            if v.is_empty() {
                v.push("no CA file for this host: system roots only".into());
            }
            (p.runtime.clone(), v)
        })
        .collect();
    let same = lines.windows(2).all(|w| w[0].1 == w[1].1);
    if same && lines.len() > 1 {
        for l in &lines[0].1 {
            let _ = writeln!(out, "  trusts: {l}");
        }
        return;
    }
    for (rt, ls) in &lines {
        for l in ls {
            let _ = writeln!(out, "  trusts ({rt}): {l}");
        }
    }
}

/// `label: text` once when every runtime says it, else `label (runtime): text`.
fn per_runtime(
    out: &mut String,
    label: &str,
    probes: &[ProbeEntry],
    get: impl Fn(&ProbeEntry) -> Vec<String>,
) {
    let per: Vec<(String, Vec<String>)> =
        probes.iter().map(|p| (p.runtime.clone(), get(p))).collect();
    let mut printed: Vec<&String> = Vec::new();
    for (_, lines) in &per {
        for l in lines {
            if printed.contains(&l) {
                continue;
            }
            printed.push(l);
            let holders: Vec<&str> = per
                .iter()
                .filter(|(_, ls)| ls.contains(l))
                .map(|(rt, _)| rt.as_str())
                .collect();
            if holders.len() == per.len() {
                let _ = writeln!(out, "  {label}: {l}");
            } else {
                let _ = writeln!(out, "  {label} ({}): {l}", holders.join(", "));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{ChainAnchor, ChainCert, TrustedCa, Verdict};

    fn probe(runtime: &str, verdict: Verdict, cause: &str, fix: &str) -> ProbeEntry {
        ProbeEntry {
            runtime: runtime.into(),
            verdict,
            message: if verdict == Verdict::Ok {
                String::new()
            } else {
                "x509: certificate signed by unknown authority".into()
            },
            cause: cause.into(),
            latency_ms: 7,
            server_chain: vec![ChainCert {
                subject: "CN=registry".into(),
                issuer: "CN=Harbor CA".into(),
                sha256: "ab".repeat(32),
                not_after: "2030-01-01T00:00:00Z".into(),
            }],
            server_days_left: Some(100),
            warnings: vec![],
            fix: fix.into(),
            ca_days_left: None,
            trusted: vec![],
            anchor: None,
            runtime_version: String::new(),
            go_version: String::new(),
            runtime_message: String::new(),
        }
    }

    #[test]
    fn one_registry_reads_top_down() {
        let mut report = Report::new("n", time::OffsetDateTime::UNIX_EPOCH);
        let mut docker = probe("docker", Verdict::Ok, "", "");
        docker.trusted = vec![TrustedCa {
            subject: "CN=Harbor CA".into(),
            sha256: "cd".repeat(32),
            not_after: "2031-01-01T00:00:00Z".into(),
            days_left: 400,
            file: "/etc/docker/certs.d/h:5000/ca.crt".into(),
            pem: String::new(),
        }];
        docker.anchor = Some(ChainAnchor {
            subject: "CN=Harbor CA".into(),
            sha256: "cd".repeat(32),
            file: "/etc/docker/certs.d/h:5000/ca.crt".into(),
        });
        docker.runtime_version = "20.10.24".into();
        docker.go_version = "go1.19.8".into();
        let mut crio = probe(
            "crio",
            Verdict::UnknownAuthority,
            "ca_not_installed",
            "install the registry's CA",
        );
        crio.go_version = "go1.23.4".into();
        crio.runtime_message =
            "tls: failed to verify certificate: x509: certificate signed by unknown authority"
                .into();
        report.registries.push(RegistryReport {
            host: "h:5000".into(),
            verdict: Verdict::UnknownAuthority,
            message: "x509: certificate signed by unknown authority".into(),
            trust: vec![],
            probes: vec![docker, crio],
            ca: None,
            harbor: None,
        });
        let text = render(&report);
        let want = "\
h:5000  unknown_authority  x509: certificate signed by unknown authority
  docker  ok  (7 ms)
  crio    unknown_authority (ca_not_installed)  x509: certificate signed by unknown authority  (7 ms)
  built:  docker 20.10.24 (go1.19.8), crio (go1.23.4)
  crio prints: tls: failed to verify certificate: x509: certificate signed by unknown authority
  chain:  CN=registry ← CN=Harbor CA  sha256 abababababababab  not_after 2030-01-01T00:00:00Z
  trusts (docker): CN=Harbor CA  sha256 cdcdcdcdcdcdcdcd  not_after 2031-01-01T00:00:00Z (400 days)  from /etc/docker/certs.d/h:5000/ca.crt
  trusts (crio): no CA file for this host: system roots only
  verified by (docker): CN=Harbor CA from /etc/docker/certs.d/h:5000/ca.crt
  fix (crio): install the registry's CA
";
        assert_eq!(text, want);
    }
}
