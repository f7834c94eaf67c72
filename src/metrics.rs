//! The agent's Prometheus text (`/metrics`, exposition format 0.0.4), rendered from the
//! current report and a few counters. Labels are bounded: registries come from the
//! configuration, runtimes and verdicts from fixed sets; file paths, messages and problem
//! sources never become labels. It owns the metric names (SPEC, Agent); it does not decide
//! verdicts or states, and it serves nothing (the agent does).

use crate::report::{Report, TrustState, Verdict};
use crate::trust::Runtime;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Monotonic counters the agent bumps as it works.
#[derive(Debug, Default)]
pub struct Counters {
    sync_ok: AtomicU64,
    sync_problem: AtomicU64,
    push_ok: AtomicU64,
    push_error: AtomicU64,
}

impl Counters {
    /// One sync pass finished; `problem` when its report lists problems or a trust file
    /// that needs attention.
    pub fn sync(&self, problem: bool) {
        let c = if problem {
            &self.sync_problem
        } else {
            &self.sync_ok
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn push(&self, ok: bool) {
        let c = if ok { &self.push_ok } else { &self.push_error };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn syncs(&self) -> u64 {
        self.sync_ok.load(Ordering::Relaxed) + self.sync_problem.load(Ordering::Relaxed)
    }
}

/// Everything `/metrics` shows, borrowed from the agent's state for one render.
pub struct View<'a> {
    pub report: &'a Report,
    /// The runtimes regtrust manages here (a registry not probed yet shows `unknown` for
    /// each of them).
    pub runtimes: &'a [Runtime],
    /// Registries whose CA input is invalid now (the last good CA stays installed).
    pub invalid_ca: &'a BTreeSet<String>,
    /// Registries that have a CA input at all.
    pub with_ca: &'a BTreeSet<String>,
    pub counters: &'a Counters,
    pub ready: bool,
    /// Unix seconds of the last finished sync.
    pub last_sync: Option<i64>,
}

const TRUST_STATES: [TrustState; 6] = [
    TrustState::Installed,
    TrustState::Unchanged,
    TrustState::Conflict,
    TrustState::Error,
    TrustState::Missing,
    TrustState::Removed,
];

pub fn render(v: &View) -> String {
    let mut out = String::with_capacity(4096);
    let r = v.report;

    header(
        &mut out,
        "regtrust_registry_verdict",
        "gauge",
        "Probe verdict per registry and runtime trust view: 1 for the current verdict, 0 for the others.",
    );
    for reg in &r.registries {
        let mut current: BTreeMap<&str, Verdict> = BTreeMap::new();
        for p in &reg.probes {
            let e = current.entry(p.runtime.as_str()).or_insert(p.verdict);
            *e = (*e).max(p.verdict);
        }
        if current.is_empty() {
            for rt in v.runtimes {
                current.insert(rt.as_str(), reg.verdict);
            }
        }
        for (runtime, verdict) in current {
            for candidate in Verdict::ALL {
                sample(
                    &mut out,
                    "regtrust_registry_verdict",
                    &[
                        ("registry", &reg.host),
                        ("runtime", runtime),
                        ("verdict", candidate.as_str()),
                    ],
                    i64::from(candidate == verdict),
                );
            }
        }
    }

    header(
        &mut out,
        "regtrust_ca_not_after_seconds",
        "gauge",
        "Earliest notAfter of the CA certificates regtrust installs for the registry, Unix seconds.",
    );
    for reg in &r.registries {
        let earliest = reg
            .ca
            .iter()
            .flat_map(|ca| &ca.certificates)
            .filter_map(|c| unix(&c.not_after))
            .min();
        if let Some(t) = earliest {
            sample(
                &mut out,
                "regtrust_ca_not_after_seconds",
                &[("registry", &reg.host)],
                t,
            );
        }
    }

    header(
        &mut out,
        "regtrust_server_cert_not_after_seconds",
        "gauge",
        "notAfter of the server certificate the registry presented at the last probe, Unix seconds.",
    );
    for reg in &r.registries {
        let earliest = reg
            .probes
            .iter()
            .filter_map(|p| p.server_chain.first())
            .filter_map(|c| unix(&c.not_after))
            .min();
        if let Some(t) = earliest {
            sample(
                &mut out,
                "regtrust_server_cert_not_after_seconds",
                &[("registry", &reg.host)],
                t,
            );
        }
    }

    header(
        &mut out,
        "regtrust_ca_input_valid",
        "gauge",
        "1 when the registry's CA input is valid, 0 when it is invalid and the last good CA stays installed.",
    );
    for host in v.with_ca {
        sample(
            &mut out,
            "regtrust_ca_input_valid",
            &[("registry", host)],
            i64::from(!v.invalid_ca.contains(host)),
        );
    }

    header(
        &mut out,
        "regtrust_trust_files",
        "gauge",
        "Trust files per registry, runtime and state after the last sync.",
    );
    for reg in &r.registries {
        let mut counts: BTreeMap<(&str, &str), i64> = BTreeMap::new();
        for t in &reg.trust {
            *counts
                .entry((t.runtime.as_str(), t.state.as_str()))
                .or_default() += 1;
        }
        let runtimes: BTreeSet<&str> = reg.trust.iter().map(|t| t.runtime.as_str()).collect();
        for runtime in runtimes {
            for state in TRUST_STATES {
                let n = counts.get(&(runtime, state.as_str())).copied().unwrap_or(0);
                sample(
                    &mut out,
                    "regtrust_trust_files",
                    &[
                        ("registry", &reg.host),
                        ("runtime", runtime),
                        ("state", state.as_str()),
                    ],
                    n,
                );
            }
        }
    }

    header(
        &mut out,
        "regtrust_problems",
        "gauge",
        "Problems in the current report: invalid inputs, conflicts, runtime configuration, watch trouble.",
    );
    sample(&mut out, "regtrust_problems", &[], r.problems.len() as i64);

    header(
        &mut out,
        "regtrust_sync_total",
        "counter",
        "Sync passes by result: ok, or problem when the report lists problems or a trust file needing attention.",
    );
    let c = v.counters;
    for (result, n) in [("ok", &c.sync_ok), ("problem", &c.sync_problem)] {
        sample(
            &mut out,
            "regtrust_sync_total",
            &[("result", result)],
            load(n),
        );
    }

    header(
        &mut out,
        "regtrust_report_push_total",
        "counter",
        "Report pushes to --report-url by result.",
    );
    for (result, n) in [("ok", &c.push_ok), ("error", &c.push_error)] {
        sample(
            &mut out,
            "regtrust_report_push_total",
            &[("result", result)],
            load(n),
        );
    }

    header(
        &mut out,
        "regtrust_last_sync_timestamp_seconds",
        "gauge",
        "When the last sync pass finished, Unix seconds.",
    );
    if let Some(t) = v.last_sync {
        sample(&mut out, "regtrust_last_sync_timestamp_seconds", &[], t);
    }

    header(
        &mut out,
        "regtrust_ready",
        "gauge",
        "1 once the first sync finished.",
    );
    sample(&mut out, "regtrust_ready", &[], i64::from(v.ready));
    out
}

fn load(n: &AtomicU64) -> i64 {
    i64::try_from(n.load(Ordering::Relaxed)).unwrap_or(i64::MAX)
}

fn unix(rfc3339: &str) -> Option<i64> {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: i64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            escape_label(out, v);
            out.push('"');
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// Label values escape `\`, `"` and newline (exposition format 0.0.4). The one escaper for
/// every Prometheus text regtrust serves (agent and aggregator).
pub fn escape_label(out: &mut String, v: &str) {
    for ch in v.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{
        CaCert, CaSummary, ChainCert, ProbeEntry, Problem, RegistryReport, TrustEntry,
    };

    fn registry(host: &str) -> RegistryReport {
        RegistryReport {
            host: host.into(),
            verdict: Verdict::Unknown,
            message: String::new(),
            trust: vec![],
            probes: vec![],
            ca: None,
            harbor: None,
        }
    }

    fn probe(runtime: &str, verdict: Verdict, not_after: Option<&str>) -> ProbeEntry {
        ProbeEntry {
            runtime: runtime.into(),
            verdict,
            message: String::new(),
            cause: String::new(),
            latency_ms: 1,
            server_chain: not_after
                .map(|n| ChainCert {
                    subject: "CN=leaf".into(),
                    issuer: "CN=ca".into(),
                    sha256: "00".into(),
                    not_after: n.into(),
                })
                .into_iter()
                .collect(),
            server_days_left: None,
            warnings: vec![],
            fix: String::new(),
            ca_days_left: None,
            trusted: vec![],
            anchor: None,
            runtime_version: String::new(),
            go_version: String::new(),
            runtime_message: String::new(),
        }
    }

    fn render_with(report: &Report, invalid: &[&str], with_ca: &[&str]) -> String {
        let counters = Counters::default();
        counters.sync(false);
        counters.sync(true);
        counters.sync(true);
        counters.push(false);
        let invalid: BTreeSet<String> = invalid.iter().map(|s| s.to_string()).collect();
        let with_ca: BTreeSet<String> = with_ca.iter().map(|s| s.to_string()).collect();
        render(&View {
            report,
            runtimes: &[Runtime::Docker, Runtime::Crio],
            invalid_ca: &invalid,
            with_ca: &with_ca,
            counters: &counters,
            ready: true,
            last_sync: Some(1_700_000_000),
        })
    }

    fn lines(text: &str) -> BTreeSet<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    #[test]
    fn samples_per_case() {
        let mut unprobed = Report::new("n", time::OffsetDateTime::UNIX_EPOCH);
        let mut r = registry("harbor.local");
        r.ca = Some(CaSummary {
            source: "/ca".into(),
            certificates: vec![
                CaCert {
                    subject: "CN=a".into(),
                    sha256: "a".into(),
                    not_after: "2030-01-01T00:00:00Z".into(),
                    days_left: None,
                },
                CaCert {
                    subject: "CN=b".into(),
                    sha256: "b".into(),
                    not_after: "2029-01-01T00:00:00Z".into(),
                    days_left: None,
                },
            ],
            notes: Vec::new(),
        });
        r.trust = vec![TrustEntry {
            runtime: "docker".into(),
            path: "/etc/docker/certs.d/harbor.local/ca.crt".into(),
            state: TrustState::Installed,
            detail: String::new(),
        }];
        unprobed.registries.push(r);
        unprobed.problems.push(Problem::new("/ca", "bad"));

        let mut probed = Report::new("n", time::OffsetDateTime::UNIX_EPOCH);
        let mut p = registry("reg:5000");
        p.verdict = Verdict::UnknownAuthority;
        p.probes = vec![
            probe("docker", Verdict::Ok, Some("2031-01-01T00:00:00Z")),
            probe(
                "crio",
                Verdict::UnknownAuthority,
                Some("2030-06-01T00:00:00Z"),
            ),
        ];
        probed.registries.push(p);

        /// (report, invalid CA inputs, hosts with a CA input, lines present, text absent)
        type Case<'a> = (
            &'a Report,
            &'a [&'a str],
            &'a [&'a str],
            &'a [&'a str],
            &'a [&'a str],
        );
        let cases: [Case; 2] = [
            (
                &unprobed,
                &["harbor.local"],
                &["harbor.local"],
                &[
                    r#"regtrust_registry_verdict{registry="harbor.local",runtime="docker",verdict="unknown"} 1"#,
                    r#"regtrust_registry_verdict{registry="harbor.local",runtime="crio",verdict="unknown"} 1"#,
                    r#"regtrust_registry_verdict{registry="harbor.local",runtime="crio",verdict="ok"} 0"#,
                    r#"regtrust_ca_not_after_seconds{registry="harbor.local"} 1861920000"#,
                    r#"regtrust_ca_input_valid{registry="harbor.local"} 0"#,
                    r#"regtrust_trust_files{registry="harbor.local",runtime="docker",state="installed"} 1"#,
                    r#"regtrust_trust_files{registry="harbor.local",runtime="docker",state="conflict"} 0"#,
                    "regtrust_problems 1",
                    r#"regtrust_sync_total{result="ok"} 1"#,
                    r#"regtrust_sync_total{result="problem"} 2"#,
                    r#"regtrust_report_push_total{result="ok"} 0"#,
                    r#"regtrust_report_push_total{result="error"} 1"#,
                    "regtrust_last_sync_timestamp_seconds 1700000000",
                    "regtrust_ready 1",
                ],
                &["regtrust_server_cert_not_after_seconds{"],
            ),
            (
                &probed,
                &[],
                &["reg:5000"],
                &[
                    r#"regtrust_registry_verdict{registry="reg:5000",runtime="docker",verdict="ok"} 1"#,
                    r#"regtrust_registry_verdict{registry="reg:5000",runtime="crio",verdict="unknown_authority"} 1"#,
                    r#"regtrust_registry_verdict{registry="reg:5000",runtime="crio",verdict="ok"} 0"#,
                    r#"regtrust_server_cert_not_after_seconds{registry="reg:5000"} 1906502400"#,
                    r#"regtrust_ca_input_valid{registry="reg:5000"} 1"#,
                    "regtrust_problems 0",
                ],
                &["regtrust_ca_not_after_seconds{", "unknown\"} 1"],
            ),
        ];
        for (report, invalid, with_ca, present, absent) in cases {
            let text = render_with(report, invalid, with_ca);
            let got = lines(&text);
            for want in present {
                assert!(got.contains(want), "missing {want}\n{text}");
            }
            for bad in absent {
                assert!(!text.contains(bad), "unexpected {bad}\n{text}");
            }
            // Exactly one current verdict per registry and runtime.
            let ones = got
                .iter()
                .filter(|l| l.starts_with("regtrust_registry_verdict") && l.ends_with(" 1"))
                .count();
            assert_eq!(ones, 2, "{text}");
        }
    }

    #[test]
    fn labels_are_escaped_and_every_family_is_typed() {
        let mut r = Report::new("n", time::OffsetDateTime::UNIX_EPOCH);
        r.registries.push(registry("a\"b\\c\nd"));
        let text = render_with(&r, &[], &[]);
        assert!(text.contains(r#"registry="a\"b\\c\nd""#), "{text}");
        let typed: BTreeSet<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .collect();
        for l in lines(&text) {
            let name = l.split(['{', ' ']).next().unwrap();
            assert!(typed.contains(name), "{name} has no TYPE line");
        }
    }
}
