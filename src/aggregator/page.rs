//! The fleet page at `/`: server-rendered HTML with no script and no build step. On top a
//! registry × verdict summary, then failing (node, registry) pairs with the message and the
//! fix, stale nodes, and recent transitions; it refreshes itself. Every value that came
//! from a report goes through `esc`. It does not fetch data (`api` hands it the views).

use super::fleet::{human_age, Event, NodeState, NodeView, RegistryView};
use crate::report::Verdict;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// Everything one rendering shows.
pub struct PageData {
    pub now_ms: i64,
    pub stale_after: Duration,
    pub refresh_secs: u32,
    /// Nodes per state, over the whole fleet (`fleet::row_state_counts`).
    pub counts: BTreeMap<NodeState, usize>,
    /// The nodes the page lists: failing and stale ones are listed, others may be left
    /// out (`Filter { failing: true }` gives exactly those).
    pub nodes: Vec<NodeView>,
    pub registries: Vec<RegistryView>,
    /// Newest first.
    pub events: Vec<Event>,
}

/// HTML-escape text for element content and quoted attribute values; control, bidi and
/// zero-width characters are written visibly (`\u{202e}`).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Bidi controls and invisible characters shown, not obeyed (an entity would
            // still reorder the text).
            c if (c.is_control() && c != '\n') || crate::report::needs_escape(c) => {
                out.extend(c.escape_default())
            }
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.6em 0 .4em}
table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.n{text-align:right}
.ok{color:#11772d}.fail{color:#b00020;font-weight:600}.stale{color:#8a5a00}.muted{color:#777}
code{font-size:.95em}
";

fn verdict_class(v: Verdict) -> &'static str {
    if v.is_failure() {
        "fail"
    } else if v == Verdict::Ok {
        "ok"
    } else {
        "muted"
    }
}

fn age(now_ms: i64, rfc: &str) -> String {
    human_age(super::fleet::age_of(rfc, now_ms))
}

pub fn render(d: &PageData) -> String {
    let mut h = String::with_capacity(16 * 1024);
    let count = |s: NodeState| d.counts.get(&s).copied().unwrap_or(0);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{}\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>regtrust fleet</title><style>{STYLE}</style></head><body>\n",
        d.refresh_secs
    );
    let _ = write!(
        h,
        "<h1>regtrust fleet</h1><p id=\"totals\">{} nodes: \
         <span class=\"ok\">{} ok</span>, <span class=\"fail\">{} failing</span>, \
         <span class=\"stale\">{} stale</span>, <span class=\"muted\">{} unknown</span>. \
         <span class=\"muted\">Stale after {}; generated {}; refreshes every {}s.</span></p>",
        d.counts.values().sum::<usize>(),
        count(NodeState::Ok),
        count(NodeState::Failing),
        count(NodeState::Stale),
        count(NodeState::Unknown),
        human_age(d.stale_after.as_secs()),
        esc(&super::fleet::ms_to_rfc3339(d.now_ms)),
        d.refresh_secs,
    );
    h.push('\n');

    // Registry × verdict: only the failing verdicts that occur get a column.
    let mut failing_cols: Vec<Verdict> = Verdict::ALL
        .into_iter()
        .filter(|v| v.is_failure())
        .filter(|v| {
            d.registries
                .iter()
                .any(|r| r.failing.contains_key(v.as_str()))
        })
        .collect();
    failing_cols.reverse(); // worst first
    h.push_str("<h2>Registries</h2>\n");
    if d.registries.is_empty() {
        h.push_str("<p id=\"summary\" class=\"muted\">No node has reported a registry yet.</p>\n");
    } else {
        h.push_str("<table id=\"summary\"><thead><tr><th>registry</th><th>nodes</th><th>ok</th>");
        for v in &failing_cols {
            let _ = write!(h, "<th>{}</th>", esc(v.as_str()));
        }
        h.push_str("<th>unknown</th><th>stale</th><th>failing since</th></tr></thead><tbody>\n");
        for r in &d.registries {
            let _ = write!(
                h,
                "<tr><td><code>{}</code></td><td class=\"n\">{}</td><td class=\"n ok\">{}</td>",
                esc(&r.registry),
                r.nodes,
                r.ok
            );
            for v in &failing_cols {
                let n = r.failing.get(v.as_str()).copied().unwrap_or(0);
                let class = if n > 0 { "n fail" } else { "n muted" };
                let _ = write!(h, "<td class=\"{class}\">{n}</td>");
            }
            let since = r
                .failing_since
                .as_deref()
                .map(|s| format!("{} ({} ago)", esc(s), age(d.now_ms, s)))
                .unwrap_or_default();
            let _ = writeln!(
                h,
                "<td class=\"n muted\">{}</td><td class=\"n stale\">{}</td><td>{since}</td></tr>",
                r.unknown, r.stale
            );
        }
        h.push_str("</tbody></table>\n");
    }

    h.push_str("<h2>Failing</h2>\n");
    let failing: Vec<(&NodeView, &super::fleet::NodeRegistryView)> = d
        .nodes
        .iter()
        .filter(|n| n.state == NodeState::Failing)
        .flat_map(|n| {
            n.registries
                .iter()
                .filter(|r| r.verdict.is_failure())
                .map(move |r| (n, r))
        })
        .collect();
    if failing.is_empty() {
        h.push_str("<p id=\"failing\" class=\"ok\">No node is failing.</p>\n");
    } else {
        h.push_str(
            "<table id=\"failing\"><thead><tr><th>node</th><th>registry</th><th>verdict</th>\
             <th>since</th><th>message</th><th>fix</th></tr></thead><tbody>\n",
        );
        for (n, r) in failing {
            let verdict = if r.cause.is_empty() {
                esc(r.verdict.as_str())
            } else {
                format!(
                    "{} <span class=\"muted\">({})</span>",
                    esc(r.verdict.as_str()),
                    esc(&r.cause)
                )
            };
            let _ = writeln!(
                h,
                "<tr class=\"failing-row\"><td class=\"node\">{}</td><td class=\"registry\"><code>{}</code></td>\
                 <td class=\"{}\">{verdict}</td><td title=\"{}\">{} ago</td><td>{}</td><td>{}</td></tr>",
                esc(&n.node),
                esc(&r.registry),
                verdict_class(r.verdict),
                esc(&r.since),
                age(d.now_ms, &r.since),
                esc(&r.message),
                esc(&r.fix),
            );
        }
        h.push_str("</tbody></table>\n");
    }

    h.push_str("<h2>Stale nodes</h2>\n");
    let stale: Vec<&NodeView> = d
        .nodes
        .iter()
        .filter(|n| n.state == NodeState::Stale)
        .collect();
    if stale.is_empty() {
        h.push_str("<p id=\"stale\" class=\"ok\">Every node reported recently.</p>\n");
    } else {
        h.push_str(
            "<table id=\"stale\"><thead><tr><th>node</th><th>last report</th><th>silent for</th>\
             <th>last worst verdict</th></tr></thead><tbody>\n",
        );
        for n in stale {
            let _ = writeln!(
                h,
                "<tr><td class=\"node\">{}</td><td>{}</td><td class=\"stale\">{}</td><td class=\"{}\">{}</td></tr>",
                esc(&n.node),
                esc(&n.last_report_at),
                human_age(n.last_report_age_seconds),
                verdict_class(n.worst),
                esc(n.worst.as_str()),
            );
        }
        h.push_str("</tbody></table>\n");
    }

    h.push_str("<h2>Recent transitions</h2>\n");
    if d.events.is_empty() {
        h.push_str("<p id=\"events\" class=\"muted\">No transitions recorded.</p>\n");
    } else {
        h.push_str(
            "<table id=\"events\"><thead><tr><th>at</th><th>node</th><th>registry</th>\
             <th>from</th><th>to</th></tr></thead><tbody>\n",
        );
        for e in &d.events {
            let cell = |v: Option<Verdict>| match v {
                Some(v) => format!(
                    "<td class=\"{}\">{}</td>",
                    verdict_class(v),
                    esc(v.as_str())
                ),
                None => "<td class=\"muted\">(none)</td>".to_string(),
            };
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td class=\"node\">{}</td><td><code>{}</code></td>{}{}</tr>",
                esc(&e.at),
                esc(&e.node),
                esc(&e.registry),
                cell(e.from),
                cell(e.to),
            );
        }
        h.push_str("</tbody></table>\n");
    }
    h.push_str(
        "<p class=\"muted\">JSON: <a href=\"/api/v1/nodes\">/api/v1/nodes</a> · \
         <a href=\"/api/v1/registries\">/api/v1/registries</a> · \
         <a href=\"/api/v1/events\">/api/v1/events</a> · <a href=\"/metrics\">/metrics</a></p>\n\
         </body></html>\n",
    );
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregator::fleet::{
        node_views, registry_views, row_state_counts, Filter, NodeRow, RegistryRow,
    };

    #[test]
    fn escaping_table() {
        for (input, want) in [
            ("plain", "plain"),
            (
                "<script>alert(1)</script>",
                "&lt;script&gt;alert(1)&lt;/script&gt;",
            ),
            ("a&b", "a&amp;b"),
            ("\"'", "&quot;&#39;"),
            ("&amp;", "&amp;amp;"),
            ("", ""),
        ] {
            assert_eq!(esc(input), want);
        }
    }

    #[test]
    fn every_report_value_is_escaped() {
        let evil = "<img src=x onerror=alert(1)>\"'&";
        let rows = vec![
            NodeRow {
                node: evil.into(),
                received_ms: 1_000_000,
                generated_at: evil.into(),
                agent_version: evil.into(),
                problems: 0,
                registries: vec![RegistryRow {
                    registry: evil.into(),
                    verdict: Verdict::UnknownAuthority,
                    since_ms: 0,
                    message: evil.into(),
                    cause: evil.into(),
                    fix: evil.into(),
                }],
            },
            NodeRow {
                node: format!("stale{evil}"),
                received_ms: 0,
                generated_at: evil.into(),
                agent_version: evil.into(),
                problems: 0,
                registries: vec![],
            },
        ];
        let now = 1_000_000;
        let stale_after = Duration::from_secs(180);
        let html = render(&PageData {
            now_ms: now,
            stale_after,
            refresh_secs: 30,
            counts: row_state_counts(&rows, now, stale_after),
            nodes: node_views(&rows, &Filter::default(), now, stale_after),
            registries: registry_views(&rows, now, stale_after),
            events: vec![Event {
                node: evil.into(),
                registry: evil.into(),
                from: None,
                to: Some(Verdict::UnknownAuthority),
                at: evil.into(),
            }],
        });
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("\"'&<"), "{html}");
        // node in failing, stale and events; registry in summary, failing and events
        assert!(
            html.matches("&lt;img src=x onerror=alert(1)&gt;").count() >= 6,
            "{html}"
        );
        assert!(html.contains("<meta http-equiv=\"refresh\" content=\"30\">"));
        assert!(html.contains("<table id=\"summary\">"));
        assert!(html.contains("<table id=\"failing\">"));
        assert!(html.contains("<table id=\"stale\">"));
        assert!(html.contains("<table id=\"events\">"));
    }

    #[test]
    fn listing_only_the_nodes_that_need_attention_renders_the_same_page() {
        let reg = |name: &str, verdict: Verdict| RegistryRow {
            registry: name.into(),
            verdict,
            since_ms: 500_000,
            message: format!("{verdict} on {name}"),
            cause: String::new(),
            fix: "fix it".into(),
        };
        let node = |name: &str, received_ms: i64, registries: Vec<RegistryRow>| NodeRow {
            node: name.into(),
            received_ms,
            generated_at: "1970-01-01T00:00:00Z".into(),
            agent_version: "0.1.0".into(),
            problems: 0,
            registries,
        };
        let rows = vec![
            node("ok", 1_000_000, vec![reg("h1", Verdict::Ok)]),
            node(
                "failing",
                1_000_000,
                vec![reg("h1", Verdict::Expired), reg("h2", Verdict::Ok)],
            ),
            node("unknown", 1_000_000, vec![reg("h2", Verdict::Unknown)]),
            node("stale", 0, vec![reg("h1", Verdict::UnknownAuthority)]),
            node("empty", 1_000_000, vec![]),
        ];
        let now = 1_000_000;
        let stale_after = Duration::from_secs(180);
        let page = |filter: &Filter| {
            render(&PageData {
                now_ms: now,
                stale_after,
                refresh_secs: 30,
                counts: row_state_counts(&rows, now, stale_after),
                nodes: node_views(&rows, filter, now, stale_after),
                registries: registry_views(&rows, now, stale_after),
                events: vec![],
            })
        };
        let all = page(&Filter::default());
        assert_eq!(
            all,
            page(&Filter {
                failing: true,
                ..Filter::default()
            })
        );
        assert!(all.contains("5 nodes"), "{all}");
    }

    #[test]
    fn an_empty_fleet_renders() {
        let html = render(&PageData {
            now_ms: 0,
            stale_after: Duration::from_secs(180),
            refresh_secs: 30,
            counts: BTreeMap::new(),
            nodes: vec![],
            registries: vec![],
            events: vec![],
        });
        assert!(html.contains("0 nodes"));
        assert!(html.contains("No node is failing."));
    }
}
