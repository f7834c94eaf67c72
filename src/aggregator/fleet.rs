//! The fleet view: what the aggregator's stored rows mean at a given moment. Pure functions
//! over rows the store returns (staleness, worst verdict per node, per-registry rollups,
//! filters, Prometheus text), so every rule here is testable without SQLite or sockets.
//! It does not read or write the database (`store`) and does not speak HTTP (`api`).

use crate::report::{rfc3339, Verdict};
use serde::{Deserialize, Serialize};
use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// One node as stored: its latest report's facts, times in Unix milliseconds on the
/// aggregator's clock (node clocks are not trusted for staleness).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRow {
    pub node: String,
    pub received_ms: i64,
    /// As the node wrote it (RFC 3339).
    pub generated_at: String,
    pub agent_version: String,
    pub problems: u32,
    /// Sorted by registry.
    pub registries: Vec<RegistryRow>,
}

/// One (node, registry) pair as stored: the current verdict and when it started.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistryRow {
    pub registry: String,
    pub verdict: Verdict,
    /// When the aggregator first saw this verdict for this pair (Unix ms).
    pub since_ms: i64,
    pub message: String,
    pub cause: String,
    pub fix: String,
}

/// A node's state, one word for dashboards and exit codes. The wire codes are written here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// Every registry verdict is `ok` (or the node manages none).
    Ok,
    /// Nothing fails, but some registry was not probed yet (a sync-only report).
    Unknown,
    /// Some registry verdict is a failure.
    Failing,
    /// Silent for longer than `--stale-after`: its verdicts are old news.
    Stale,
}

impl NodeState {
    pub const ALL: [NodeState; 4] = [
        NodeState::Ok,
        NodeState::Unknown,
        NodeState::Failing,
        NodeState::Stale,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Ok => "ok",
            NodeState::Unknown => "unknown",
            NodeState::Failing => "failing",
            NodeState::Stale => "stale",
        }
    }

    /// `regtrust report` exits 1 for these (SPEC: any node fails or is stale).
    pub fn needs_attention(self) -> bool {
        matches!(self, NodeState::Failing | NodeState::Stale)
    }
}

/// A node as `GET /api/v1/nodes` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeView {
    pub node: String,
    pub state: NodeState,
    /// The worst registry verdict of the last report (`ok` when it names no registry).
    pub worst: Verdict,
    pub stale: bool,
    /// When the aggregator received the last report.
    pub last_report_at: String,
    pub last_report_age_seconds: u64,
    pub generated_at: String,
    pub agent_version: String,
    /// How many `problems` the last report carried (invalid inputs, conflicts).
    pub problems: u32,
    pub registries: Vec<NodeRegistryView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRegistryView {
    pub registry: String,
    pub verdict: Verdict,
    pub since: String,
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cause: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fix: String,
}

/// The body of `GET /api/v1/nodes` (and `regtrust report --output json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodesDoc {
    pub generated_at: String,
    pub stale_after_seconds: u64,
    pub nodes: Vec<NodeView>,
}

/// A failing (node, registry) pair inside a registry rollup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailingNode {
    pub node: String,
    pub verdict: Verdict,
    pub since: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cause: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fix: String,
}

/// One registry across the fleet. Every node that reports the registry is counted in
/// exactly one bucket: `ok`, `unknown`, one failing verdict, or `stale` (a stale node's
/// verdicts are not current, so they are not counted as ok or failing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistryView {
    pub registry: String,
    pub nodes: usize,
    pub ok: usize,
    pub unknown: usize,
    pub stale: usize,
    /// Failing verdict code → number of nodes.
    pub failing: BTreeMap<String, usize>,
    /// The earliest `since` among failing nodes: how long this registry has been broken
    /// somewhere.
    pub failing_since: Option<String>,
    pub failing_nodes: Vec<FailingNode>,
    pub stale_nodes: Vec<String>,
}

/// The body of `GET /api/v1/registries`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistriesDoc {
    pub generated_at: String,
    pub stale_after_seconds: u64,
    pub registries: Vec<RegistryView>,
}

/// A verdict transition for one (node, registry). `from: null` means the registry appeared
/// in the node's reports; `to: null` means it disappeared from them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub node: String,
    pub registry: String,
    pub from: Option<Verdict>,
    pub to: Option<Verdict>,
    pub at: String,
}

/// Which part of the fleet a reader asks for (`?node=&registry=&failing=true`, and the
/// flags of `regtrust report`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Filter {
    pub node: Option<String>,
    pub registry: Option<String>,
    #[serde(default)]
    pub failing: bool,
}

/// Unix milliseconds → RFC 3339 (whole seconds, UTC), the way the report writes times
/// (`report::rfc3339`).
pub fn ms_to_rfc3339(ms: i64) -> String {
    match rfc3339_bytes(ms) {
        Some(b) => b.iter().map(|&c| char::from(c)).collect(),
        None => rfc3339(datetime_of_ms(ms)),
    }
}

fn datetime_of_ms(ms: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// `ms_to_rfc3339` written digit by digit into a buffer (ASCII), for years 0 to 9999;
/// `None` outside them. A fleet view writes one time per (node, registry): going through
/// `time`'s format descriptions, or `fmt`, cost a sixth of a fleet read.
fn rfc3339_bytes(ms: i64) -> Option<[u8; 20]> {
    // Whole seconds, floored as `rfc3339` truncates (i64 arithmetic: the i128 nanosecond
    // path cost half of this function).
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).ok()?;
    let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
    let (h, m, s) = t.to_hms();
    let mut b = *b"0000-00-00T00:00:00Z";
    let put = |b: &mut [u8; 20], at: usize, width: usize, mut v: u32| {
        for i in (at..at + width).rev() {
            b[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(&mut b, 0, 4, year);
    put(&mut b, 5, 2, u32::from(u8::from(t.month())));
    put(&mut b, 8, 2, u32::from(t.day()));
    put(&mut b, 11, 2, u32::from(h));
    put(&mut b, 14, 2, u32::from(m));
    put(&mut b, 17, 2, u32::from(s));
    Some(b)
}

/// A time in Unix milliseconds that serialises as `ms_to_rfc3339` would write it, without
/// allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsTime(pub i64);

impl Serialize for MsTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match rfc3339_bytes(self.0) {
            Some(b) => s.serialize_str(std::str::from_utf8(&b).unwrap_or_default()),
            None => s.serialize_str(&ms_to_rfc3339(self.0)),
        }
    }
}

/// Now on the aggregator's clock, in Unix milliseconds.
pub fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
        .unwrap_or(i64::MAX)
}

fn state_of(worst: Verdict, stale: bool) -> NodeState {
    if stale {
        NodeState::Stale
    } else if worst.is_failure() {
        NodeState::Failing
    } else if worst == Verdict::Ok {
        NodeState::Ok
    } else {
        NodeState::Unknown
    }
}

/// A node is stale when it has been silent for strictly longer than `stale_after`.
pub fn is_stale(received_ms: i64, now_ms: i64, stale_after: Duration) -> bool {
    let limit = i64::try_from(stale_after.as_millis()).unwrap_or(i64::MAX);
    now_ms.saturating_sub(received_ms) > limit
}

/// A `NodeView` borrowing its strings from the rows: the same JSON (see the test
/// `borrowed_views_serialise_as_the_owned_ones`) without copying every string of the
/// fleet for a read that only serialises them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeViewRef<'a> {
    pub node: &'a str,
    pub state: NodeState,
    pub worst: Verdict,
    pub stale: bool,
    pub last_report_at: MsTime,
    pub last_report_age_seconds: u64,
    pub generated_at: &'a str,
    pub agent_version: &'a str,
    pub problems: u32,
    pub registries: Vec<NodeRegistryViewRef<'a>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeRegistryViewRef<'a> {
    pub registry: &'a str,
    pub verdict: Verdict,
    pub since: MsTime,
    pub message: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub cause: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub fix: &'a str,
}

impl NodeViewRef<'_> {
    pub fn to_owned(&self) -> NodeView {
        NodeView {
            node: self.node.to_string(),
            state: self.state,
            worst: self.worst,
            stale: self.stale,
            last_report_at: ms_to_rfc3339(self.last_report_at.0),
            last_report_age_seconds: self.last_report_age_seconds,
            generated_at: self.generated_at.to_string(),
            agent_version: self.agent_version.to_string(),
            problems: self.problems,
            registries: self
                .registries
                .iter()
                .map(|r| NodeRegistryView {
                    registry: r.registry.to_string(),
                    verdict: r.verdict,
                    since: ms_to_rfc3339(r.since.0),
                    message: r.message.to_string(),
                    cause: r.cause.to_string(),
                    fix: r.fix.to_string(),
                })
                .collect(),
        }
    }
}

/// The body of `GET /api/v1/nodes` as served: `NodesDoc` over borrowed views.
#[derive(Debug, Serialize)]
pub struct NodesDocRef<'a> {
    pub generated_at: String,
    pub stale_after_seconds: u64,
    pub nodes: Vec<NodeViewRef<'a>>,
}

/// The rows seen through a filter: `node` keeps that node; `registry` keeps that registry
/// (and drops nodes that do not report it); `failing` keeps stale nodes whole and, of the
/// others, only failing registries. Node state is then judged on what is left, so
/// `--registry X` exits 1 only for trouble with X.
pub fn node_views<R: Borrow<NodeRow>>(
    rows: &[R],
    filter: &Filter,
    now_ms: i64,
    stale_after: Duration,
) -> Vec<NodeView> {
    node_view_refs(rows, filter, now_ms, stale_after)
        .iter()
        .map(NodeViewRef::to_owned)
        .collect()
}

/// `node_views`, borrowing from the rows.
pub fn node_view_refs<'a, R: Borrow<NodeRow>>(
    rows: &'a [R],
    filter: &Filter,
    now_ms: i64,
    stale_after: Duration,
) -> Vec<NodeViewRef<'a>> {
    let mut out = Vec::new();
    for row in rows {
        let row: &NodeRow = row.borrow();
        if filter.node.as_deref().is_some_and(|n| n != row.node) {
            continue;
        }
        let stale = is_stale(row.received_ms, now_ms, stale_after);
        let mut regs: Vec<&RegistryRow> = row
            .registries
            .iter()
            .filter(|r| {
                filter
                    .registry
                    .as_deref()
                    .is_none_or(|want| want.eq_ignore_ascii_case(&r.registry))
            })
            .collect();
        if filter.registry.is_some() && regs.is_empty() {
            continue;
        }
        // The worst verdict; `ok` when the node reports no registry (nothing fails).
        let worst = regs.iter().map(|r| r.verdict).max().unwrap_or(Verdict::Ok);
        let state = state_of(worst, stale);
        if filter.failing {
            if !state.needs_attention() {
                continue;
            }
            if state == NodeState::Failing {
                regs.retain(|r| r.verdict.is_failure());
            }
        }
        out.push(NodeViewRef {
            node: &row.node,
            state,
            worst,
            stale,
            last_report_at: MsTime(row.received_ms),
            last_report_age_seconds: u64::try_from(now_ms.saturating_sub(row.received_ms) / 1000)
                .unwrap_or(0),
            generated_at: &row.generated_at,
            agent_version: &row.agent_version,
            problems: row.problems,
            registries: regs
                .into_iter()
                .map(|r| NodeRegistryViewRef {
                    registry: &r.registry,
                    verdict: r.verdict,
                    since: MsTime(r.since_ms),
                    message: &r.message,
                    cause: &r.cause,
                    fix: &r.fix,
                })
                .collect(),
        });
    }
    out
}

/// Per-registry rollups over all rows, sorted by registry; failing nodes listed longest
/// failing first.
pub fn registry_views<R: Borrow<NodeRow>>(
    rows: &[R],
    now_ms: i64,
    stale_after: Duration,
) -> Vec<RegistryView> {
    let mut by_reg: BTreeMap<&str, RegistryView> = BTreeMap::new();
    let mut earliest: BTreeMap<&str, i64> = BTreeMap::new();
    let mut failing_ms: BTreeMap<&str, Vec<(i64, FailingNode)>> = BTreeMap::new();
    for row in rows {
        let row: &NodeRow = row.borrow();
        let stale = is_stale(row.received_ms, now_ms, stale_after);
        for r in &row.registries {
            let v = by_reg
                .entry(r.registry.as_str())
                .or_insert_with(|| RegistryView {
                    registry: r.registry.clone(),
                    nodes: 0,
                    ok: 0,
                    unknown: 0,
                    stale: 0,
                    failing: BTreeMap::new(),
                    failing_since: None,
                    failing_nodes: Vec::new(),
                    stale_nodes: Vec::new(),
                });
            v.nodes += 1;
            if stale {
                v.stale += 1;
                v.stale_nodes.push(row.node.clone());
            } else if r.verdict.is_failure() {
                *v.failing.entry(r.verdict.as_str().to_string()).or_insert(0) += 1;
                let e = earliest.entry(r.registry.as_str()).or_insert(r.since_ms);
                *e = (*e).min(r.since_ms);
                failing_ms.entry(r.registry.as_str()).or_default().push((
                    r.since_ms,
                    FailingNode {
                        node: row.node.clone(),
                        verdict: r.verdict,
                        since: ms_to_rfc3339(r.since_ms),
                        message: r.message.clone(),
                        cause: r.cause.clone(),
                        fix: r.fix.clone(),
                    },
                ));
            } else if r.verdict == Verdict::Ok {
                v.ok += 1;
            } else {
                v.unknown += 1;
            }
        }
    }
    for (reg, mut list) in failing_ms {
        list.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.node.cmp(&b.1.node)));
        if let Some(v) = by_reg.get_mut(reg) {
            v.failing_nodes = list.into_iter().map(|(_, f)| f).collect();
        }
    }
    for (reg, ms) in earliest {
        if let Some(v) = by_reg.get_mut(reg) {
            v.failing_since = Some(ms_to_rfc3339(ms));
        }
    }
    by_reg.into_values().collect()
}

/// The nodes reporting `host`, grouped by (verdict, cause), worst verdict first; a stale
/// node's verdict is old news, so its cause reads `node stale`.
pub fn nodes_by_verdict<R: Borrow<NodeRow>>(
    rows: &[R],
    host: &str,
    now_ms: i64,
    stale_after: Duration,
) -> Vec<((Verdict, String), Vec<String>)> {
    let mut by: BTreeMap<(std::cmp::Reverse<Verdict>, String), Vec<String>> = BTreeMap::new();
    for row in rows {
        let row: &NodeRow = row.borrow();
        let Ok(i) = row
            .registries
            .binary_search_by(|r| r.registry.as_str().cmp(host))
        else {
            continue;
        };
        let r = &row.registries[i];
        let cause = if is_stale(row.received_ms, now_ms, stale_after) {
            "node stale".to_string()
        } else {
            r.cause.clone()
        };
        by.entry((std::cmp::Reverse(r.verdict), cause))
            .or_default()
            .push(row.node.clone());
    }
    by.into_iter()
        .map(|((v, cause), nodes)| ((v.0, cause), nodes))
        .collect()
}

/// Nodes per state, every state present (zero included) so dashboards see a steady series.
pub fn state_counts(nodes: &[NodeView]) -> BTreeMap<NodeState, usize> {
    let mut counts: BTreeMap<NodeState, usize> = NodeState::ALL.iter().map(|s| (*s, 0)).collect();
    for n in nodes {
        *counts.entry(n.state).or_insert(0) += 1;
    }
    counts
}

/// `state_counts` of every node, judged straight from the rows (as `node_views` with no
/// filter judges them) without building the views.
pub fn row_state_counts<R: Borrow<NodeRow>>(
    rows: &[R],
    now_ms: i64,
    stale_after: Duration,
) -> BTreeMap<NodeState, usize> {
    let mut counts: BTreeMap<NodeState, usize> = NodeState::ALL.iter().map(|s| (*s, 0)).collect();
    for row in rows {
        let row: &NodeRow = row.borrow();
        let worst = row
            .registries
            .iter()
            .map(|r| r.verdict)
            .max()
            .unwrap_or(Verdict::Ok);
        let state = state_of(worst, is_stale(row.received_ms, now_ms, stale_after));
        *counts.entry(state).or_insert(0) += 1;
    }
    counts
}

/// Counters of the write endpoint, for `/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    pub stored: std::sync::atomic::AtomicU64,
    pub invalid: std::sync::atomic::AtomicU64,
    pub unauthorized: std::sync::atomic::AtomicU64,
    pub too_large: std::sync::atomic::AtomicU64,
    pub store_error: std::sync::atomic::AtomicU64,
}

/// A Prometheus label value, escaped as the text exposition format requires.
fn label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    crate::metrics::escape_label(&mut s, v);
    s
}

/// Prometheus text. Labels are bounded: node state (4 values), registry (validated hosts
/// the fleet reports) and verdict (the fixed codes plus `stale`); never the node name.
pub fn to_prometheus(
    states: &BTreeMap<NodeState, usize>,
    registries: &[RegistryView],
    c: &Counters,
) -> String {
    use std::sync::atomic::Ordering::Relaxed;
    let mut out = String::new();
    out.push_str("# HELP regtrust_fleet_nodes Nodes by state (ok, unknown, failing, stale).\n");
    out.push_str("# TYPE regtrust_fleet_nodes gauge\n");
    for (state, n) in states {
        let _ = writeln!(
            out,
            "regtrust_fleet_nodes{{state=\"{}\"}} {n}",
            state.as_str()
        );
    }
    out.push_str(
        "# HELP regtrust_fleet_registry_nodes Nodes per registry by their current verdict (stale nodes counted as verdict=\"stale\").\n",
    );
    out.push_str("# TYPE regtrust_fleet_registry_nodes gauge\n");
    for r in registries {
        let reg = label(&r.registry);
        let mut buckets: Vec<(&str, usize)> =
            vec![("ok", r.ok), ("unknown", r.unknown), ("stale", r.stale)];
        for (v, n) in &r.failing {
            buckets.push((v.as_str(), *n));
        }
        for (v, n) in buckets {
            let _ = writeln!(
                out,
                "regtrust_fleet_registry_nodes{{registry=\"{reg}\",verdict=\"{}\"}} {n}",
                label(v)
            );
        }
    }
    out.push_str(
        "# HELP regtrust_fleet_reports_total Reports posted to the aggregator, by outcome.\n",
    );
    out.push_str("# TYPE regtrust_fleet_reports_total counter\n");
    for (result, n) in [
        ("stored", c.stored.load(Relaxed)),
        ("invalid", c.invalid.load(Relaxed)),
        ("unauthorized", c.unauthorized.load(Relaxed)),
        ("too_large", c.too_large.load(Relaxed)),
        ("store_error", c.store_error.load(Relaxed)),
    ] {
        let _ = writeln!(
            out,
            "regtrust_fleet_reports_total{{result=\"{result}\"}} {n}"
        );
    }
    out
}

/// An age the way kubectl prints one (`45s`, `5m10s`, `3h`, `2d4h`, `400d`).
pub fn human_age(secs: u64) -> String {
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86400);
    if secs < 120 {
        format!("{secs}s")
    } else if m < 10 {
        let s = secs % 60;
        if s == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{s}s")
        }
    } else if h < 3 {
        format!("{m}m")
    } else if h < 8 {
        let mm = m % 60;
        if mm == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{mm}m")
        }
    } else if h < 48 {
        format!("{h}h")
    } else if d < 8 {
        let hh = h % 24;
        if hh == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{hh}h")
        }
    } else {
        format!("{d}d")
    }
}

/// Seconds from an RFC 3339 time to `now_ms` (0 when unparsable or in the future).
pub fn age_of(rfc: &str, now_ms: i64) -> u64 {
    time::OffsetDateTime::parse(rfc, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| now_ms / 1000 - t.unix_timestamp())
        .and_then(|s| u64::try_from(s).ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn reg(name: &str, v: Verdict, since: i64) -> RegistryRow {
        RegistryRow {
            registry: name.into(),
            verdict: v,
            since_ms: since,
            message: format!("{v} on {name}"),
            cause: String::new(),
            fix: String::new(),
        }
    }

    fn node(name: &str, received: i64, regs: Vec<RegistryRow>) -> NodeRow {
        NodeRow {
            node: name.into(),
            received_ms: received,
            generated_at: "1970-01-01T00:00:00Z".into(),
            agent_version: "0.1.0".into(),
            problems: 0,
            registries: regs,
        }
    }

    fn fleet() -> Vec<NodeRow> {
        vec![
            node("a", 100 * MIN, vec![reg("h1", Verdict::Ok, 0)]),
            node(
                "b",
                100 * MIN,
                vec![
                    reg("h1", Verdict::UnknownAuthority, 50 * MIN),
                    reg("h2", Verdict::Ok, 0),
                ],
            ),
            node("c", 90 * MIN, vec![reg("h1", Verdict::Expired, 10 * MIN)]),
            node("d", 100 * MIN, vec![reg("h2", Verdict::Unknown, 0)]),
            node("e", 100 * MIN, vec![]),
            node("f", 100 * MIN, vec![reg("h1", Verdict::Expired, 40 * MIN)]),
        ]
    }

    #[test]
    fn ms_to_rfc3339_writes_what_report_rfc3339_writes() {
        for ms in [
            0,
            1,
            999,
            -1,
            -1000,
            -62_167_219_200_000, // 0000-01-01
            -62_167_219_200_001, // year -1: not RFC 3339, as report::rfc3339 falls back
            253_402_300_799_999, // 9999-12-31T23:59:59.999
            253_402_300_800_000, // year 10000
            951_782_400_000,     // 2000-02-29
            1_700_000_000_123,
            1_763_700_000_000,
            i64::MAX,
            i64::MIN,
        ] {
            let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            assert_eq!(ms_to_rfc3339(ms), rfc3339(t), "{ms}");
        }
        assert_eq!(ms_to_rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn borrowed_views_serialise_as_the_owned_ones() {
        let rows = fleet();
        for filter in [
            Filter::default(),
            Filter {
                failing: true,
                ..Filter::default()
            },
            Filter {
                registry: Some("H1".into()),
                ..Filter::default()
            },
        ] {
            let refs = node_view_refs(&rows, &filter, 100 * MIN, Duration::from_secs(180));
            let owned = node_views(&rows, &filter, 100 * MIN, Duration::from_secs(180));
            assert_eq!(
                serde_json::to_string(&refs).unwrap(),
                serde_json::to_string(&owned).unwrap(),
                "{filter:?}"
            );
        }
        for ms in [0, 1_763_700_000_123, -62_167_219_200_001, i64::MAX] {
            assert_eq!(
                serde_json::to_value(MsTime(ms)).unwrap(),
                serde_json::Value::String(ms_to_rfc3339(ms)),
                "{ms}"
            );
        }
    }

    #[test]
    fn staleness_is_strictly_longer_than_stale_after() {
        let three = Duration::from_secs(180);
        for (received, now, want) in [
            (0, 3 * MIN, false),
            (0, 3 * MIN + 1, true),
            (10 * MIN, 0, false), // clock went back: not stale
            (i64::MIN, i64::MAX, true),
        ] {
            assert_eq!(is_stale(received, now, three), want, "{received} {now}");
        }
    }

    #[test]
    fn node_states_and_filters() {
        let now = 100 * MIN;
        let three = Duration::from_secs(180);
        type Want = Vec<(&'static str, NodeState, Vec<&'static str>)>;
        let cases: Vec<(Filter, Want)> = vec![
            (
                Filter::default(),
                vec![
                    ("a", NodeState::Ok, vec!["h1"]),
                    ("b", NodeState::Failing, vec!["h1", "h2"]),
                    ("c", NodeState::Stale, vec!["h1"]),
                    ("d", NodeState::Unknown, vec!["h2"]),
                    ("e", NodeState::Ok, vec![]),
                    ("f", NodeState::Failing, vec!["h1"]),
                ],
            ),
            (
                Filter {
                    failing: true,
                    ..Filter::default()
                },
                vec![
                    ("b", NodeState::Failing, vec!["h1"]),
                    ("c", NodeState::Stale, vec!["h1"]),
                    ("f", NodeState::Failing, vec!["h1"]),
                ],
            ),
            (
                Filter {
                    registry: Some("H2".into()),
                    ..Filter::default()
                },
                vec![
                    ("b", NodeState::Ok, vec!["h2"]),
                    ("d", NodeState::Unknown, vec!["h2"]),
                ],
            ),
            (
                Filter {
                    registry: Some("h2".into()),
                    failing: true,
                    ..Filter::default()
                },
                vec![],
            ),
            (
                Filter {
                    node: Some("b".into()),
                    ..Filter::default()
                },
                vec![("b", NodeState::Failing, vec!["h1", "h2"])],
            ),
            (
                Filter {
                    node: Some("nope".into()),
                    ..Filter::default()
                },
                vec![],
            ),
        ];
        for (filter, want) in cases {
            let got: Vec<(String, NodeState, Vec<String>)> =
                node_views(&fleet(), &filter, now, three)
                    .into_iter()
                    .map(|n| {
                        (
                            n.node,
                            n.state,
                            n.registries.into_iter().map(|r| r.registry).collect(),
                        )
                    })
                    .collect();
            let want: Vec<(String, NodeState, Vec<String>)> = want
                .into_iter()
                .map(|(n, s, r)| (n.to_string(), s, r.into_iter().map(String::from).collect()))
                .collect();
            assert_eq!(got, want, "{filter:?}");
        }
    }

    #[test]
    fn registry_rollups_put_each_node_in_one_bucket() {
        let views = registry_views(&fleet(), 100 * MIN, Duration::from_secs(180));
        assert_eq!(views.len(), 2);
        let h1 = &views[0];
        assert_eq!(h1.registry, "h1");
        assert_eq!((h1.nodes, h1.ok, h1.unknown, h1.stale), (4, 1, 0, 1));
        assert_eq!(h1.failing.get("unknown_authority"), Some(&1));
        assert_eq!(h1.failing.get("expired"), Some(&1));
        assert_eq!(h1.stale_nodes, vec!["c"]);
        // Longest failing first; the stale node's old failure does not count.
        let names: Vec<&str> = h1.failing_nodes.iter().map(|f| f.node.as_str()).collect();
        assert_eq!(names, vec!["f", "b"]);
        assert_eq!(h1.failing_since.as_deref(), Some("1970-01-01T00:40:00Z"));
        let h2 = &views[1];
        assert_eq!((h2.nodes, h2.ok, h2.unknown, h2.stale), (2, 1, 1, 0));
        assert!(h2.failing.is_empty() && h2.failing_since.is_none());
    }

    #[test]
    fn prometheus_text_has_bounded_escaped_labels() {
        let rows = fleet();
        let nodes = node_views(
            &rows,
            &Filter::default(),
            100 * MIN,
            Duration::from_secs(180),
        );
        let regs = registry_views(&rows, 100 * MIN, Duration::from_secs(180));
        let states = row_state_counts(&rows, 100 * MIN, Duration::from_secs(180));
        assert_eq!(
            states,
            state_counts(&nodes),
            "counted from rows as from views"
        );
        let text = to_prometheus(&states, &regs, &Counters::default());
        for line in [
            "regtrust_fleet_nodes{state=\"ok\"} 2",
            "regtrust_fleet_nodes{state=\"failing\"} 2",
            "regtrust_fleet_nodes{state=\"stale\"} 1",
            "regtrust_fleet_nodes{state=\"unknown\"} 1",
            "regtrust_fleet_registry_nodes{registry=\"h1\",verdict=\"expired\"} 1",
            "regtrust_fleet_registry_nodes{registry=\"h1\",verdict=\"stale\"} 1",
            "regtrust_fleet_registry_nodes{registry=\"h2\",verdict=\"ok\"} 1",
            "regtrust_fleet_reports_total{result=\"stored\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
        assert!(!text.contains("node="), "node names are unbounded labels");
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn ages_read_like_kubectl() {
        for (secs, want) in [
            (0, "0s"),
            (119, "119s"),
            (120, "2m"),
            (310, "5m10s"),
            (3600, "60m"),
            (3 * 3600 + 60, "3h1m"),
            (10 * 3600, "10h"),
            (2 * 86400 + 3600, "2d1h"),
            (400 * 86400, "400d"),
        ] {
            assert_eq!(human_age(secs), want, "{secs}");
        }
        assert_eq!(age_of("1970-01-01T00:01:00Z", 120_000), 60);
        assert_eq!(age_of("garbage", 120_000), 0);
        assert_eq!(age_of("1970-01-01T00:05:00Z", 120_000), 0);
    }
}
