//! The admin's pages: server-rendered HTML with no script and no build step.
//! - `/`: a registry × verdict summary, certificates expiring within 30 days (highlighted
//!   at 14/7/3/1 days), failing (node, registry) pairs with the message and the fix, stale
//!   nodes and recent transitions, every node and registry linked to its page; `?q=`
//!   narrows every section that names nodes, and the node lists are paginated (`?page=`).
//! - `/nodes/{node}`: one node's latest report in full.
//! - `/registries/{host}`: one registry across the fleet: nodes by verdict and cause, the
//!   distribution of trusted CA fingerprints, the server chains nodes see.
//!
//! Every value that came from a report goes through `esc`; links through `seg`. It does not
//! fetch data (`api` hands it the views).

use super::facts::{self, CaCount, ChainSeen, Expiring};
use super::fleet::{human_age, Event, NodeState, NodeView, RegistryView};
use crate::report::{Report, Verdict};
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
    /// Certificates expiring within `EXPIRY_DAYS`, soonest first.
    pub expiring: Vec<Expiring>,
    /// `?q=`: the node-name filter the lists were narrowed by (already applied to `nodes`,
    /// `events`, `expiring` and `matching`).
    pub q: String,
    /// Every node whose name matches `q` (all states), when `q` is set.
    pub matching: Vec<NodeView>,
    /// 1-based page of the node lists.
    pub page: usize,
}

/// Nodes per page in each node list of `/`.
pub const PAGE_NODES: usize = 100;
/// Certificates expiring within this many days are listed.
pub const EXPIRY_DAYS: i64 = 30;
/// Names listed in one cell before "and N more".
const NAMES_SHOWN: usize = 50;

/// Does a node name match `?q=` (case-insensitive substring; an empty filter matches all)?
pub fn matches_q(node: &str, q: &str) -> bool {
    q.is_empty() || node.to_lowercase().contains(&q.to_lowercase())
}

/// A path segment percent-encoded (RFC 3986 `pchar` kept as is, so a registry host reads
/// raw: `/registries/harbor.local:8443`).
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:@!$()*+,;=".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn node_link(node: &str) -> String {
    format!(
        "<a class=\"node-link\" href=\"/nodes/{}\">{}</a>",
        esc(&seg(node)),
        esc(node)
    )
}

fn registry_link(host: &str) -> String {
    format!(
        "<a class=\"registry-link\" href=\"/registries/{}\"><code>{}</code></a>",
        esc(&seg(host)),
        esc(host)
    )
}

/// Days left as the interface reads them: `N days`, rounded down.
pub fn days(n: i64) -> String {
    if n < 0 {
        format!("{n} days (expired)")
    } else {
        format!("{n} days")
    }
}

/// A `<td>` with days left, classed by its highlight step (`exp-1`, `exp-3`, ...).
fn days_cell(n: Option<i64>) -> String {
    match n {
        None => "<td class=\"muted\">-</td>".into(),
        Some(n) => match facts::expiry_step(n) {
            Some(step) => format!("<td class=\"days exp-{step}\">{}</td>", days(n)),
            None => format!("<td class=\"days\">{}</td>", days(n)),
        },
    }
}

/// Up to `NAMES_SHOWN` node links, then how many more.
fn node_list(nodes: &[String]) -> String {
    let mut out: Vec<String> = nodes
        .iter()
        .take(NAMES_SHOWN)
        .map(|n| node_link(n))
        .collect();
    if nodes.len() > NAMES_SHOWN {
        out.push(format!(
            "<span class=\"muted\">and {} more</span>",
            nodes.len() - NAMES_SHOWN
        ));
    }
    out.join(", ")
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
code{font-size:.95em}code.sha,code.path{overflow-wrap:anywhere}a{color:#0645ad}
td.days{white-space:nowrap}.exp-14{background:#fff4d6}.exp-7{background:#ffe0b2}
.exp-3{background:#ffb4a2}.exp-1{background:#ff7b7b;font-weight:600}
form{margin:.6em 0}nav{margin:.6em 0}
";

fn head(h: &mut String, title: &str, refresh_secs: Option<u32>) {
    let refresh = refresh_secs
        .map(|s| format!("<meta http-equiv=\"refresh\" content=\"{s}\">"))
        .unwrap_or_default();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">{refresh}\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n",
        esc(title)
    );
}

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
    let mut h = String::with_capacity(64 * 1024);
    let count = |s: NodeState| d.counts.get(&s).copied().unwrap_or(0);
    head(&mut h, "regtrust fleet", Some(d.refresh_secs));
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
    let _ = writeln!(
        h,
        "\n<form id=\"filter\" method=\"get\" action=\"/\"><label>Node name contains \
         <input type=\"search\" name=\"q\" value=\"{}\"></label> <button>Filter</button>{}</form>",
        esc(&d.q),
        if d.q.is_empty() {
            String::new()
        } else {
            " <a href=\"/\">clear</a>".to_string()
        }
    );

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
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n ok\">{}</td>",
                registry_link(&r.registry),
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

    h.push_str("<h2>Expiring within 30 days</h2>\n");
    if d.expiring.is_empty() {
        h.push_str("<p id=\"expiring\" class=\"ok\">No certificate a node trusts or is shown expires within 30 days.</p>\n");
    } else {
        h.push_str(
            "<table id=\"expiring\"><thead><tr><th>days left</th><th>kind</th><th>subject</th>\
             <th>sha256</th><th>registries</th><th>nodes</th></tr></thead><tbody>\n",
        );
        for e in &d.expiring {
            let regs: Vec<String> = e.registries.iter().map(|r| registry_link(r)).collect();
            let _ = writeln!(
                h,
                "<tr class=\"expiring-row\">{}<td>{}</td><td>{}</td><td><code class=\"sha\">{}</code></td><td>{}</td><td class=\"n\">{}</td></tr>",
                days_cell(Some(e.days_left)),
                e.kind,
                esc(&e.cert.subject),
                esc(&e.cert.sha256),
                regs.join(" "),
                e.nodes
            );
        }
        h.push_str("</tbody></table>\n");
    }

    if !d.q.is_empty() {
        let _ = writeln!(h, "<h2>Nodes matching “{}”</h2>", esc(&d.q));
        let shown = paged(&d.matching, d.page);
        if shown.is_empty() {
            h.push_str("<p id=\"matching\" class=\"muted\">No node name matches.</p>\n");
        } else {
            h.push_str(
                "<table id=\"matching\"><thead><tr><th>node</th><th>state</th><th>worst verdict</th>\
                 <th>last report</th></tr></thead><tbody>\n",
            );
            for n in shown {
                let _ = writeln!(
                    h,
                    "<tr><td class=\"node\">{}</td><td>{}</td><td class=\"{}\">{}</td><td>{} ago</td></tr>",
                    node_link(&n.node),
                    n.state.as_str(),
                    verdict_class(n.worst),
                    esc(n.worst.as_str()),
                    human_age(n.last_report_age_seconds),
                );
            }
            h.push_str("</tbody></table>\n");
        }
    }

    let failing_nodes: Vec<NodeView> = d
        .nodes
        .iter()
        .filter(|n| n.state == NodeState::Failing)
        .cloned()
        .collect();
    let stale_nodes: Vec<NodeView> = d
        .nodes
        .iter()
        .filter(|n| n.state == NodeState::Stale)
        .cloned()
        .collect();
    h.push_str("<h2>Failing</h2>\n");
    let failing: Vec<(&NodeView, &super::fleet::NodeRegistryView)> = paged(&failing_nodes, d.page)
        .iter()
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
        let _ = writeln!(
            h,
            "<p class=\"muted\">{} failing nodes{}.</p>",
            failing_nodes.len(),
            page_note(failing_nodes.len(), d.page)
        );
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
                "<tr class=\"failing-row\"><td class=\"node\">{}</td><td class=\"registry\">{}</td>\
                 <td class=\"{}\">{verdict}</td><td title=\"{}\">{} ago</td><td>{}</td><td>{}</td></tr>",
                node_link(&n.node),
                registry_link(&r.registry),
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
    let stale = paged(&stale_nodes, d.page);
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
                node_link(&n.node),
                esc(&n.last_report_at),
                human_age(n.last_report_age_seconds),
                verdict_class(n.worst),
                esc(n.worst.as_str()),
            );
        }
        h.push_str("</tbody></table>\n");
    }
    let longest = failing_nodes
        .len()
        .max(stale_nodes.len())
        .max(d.matching.len());
    pagination(&mut h, &d.q, d.page, longest);

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
                "<tr><td>{}</td><td class=\"node\">{}</td><td>{}</td>{}{}</tr>",
                esc(&e.at),
                node_link(&e.node),
                registry_link(&e.registry),
                cell(e.from),
                cell(e.to),
            );
        }
        h.push_str("</tbody></table>\n");
    }
    footer(&mut h);
    h
}

fn footer(h: &mut String) {
    h.push_str(
        "<p class=\"muted\"><a href=\"/\">fleet</a> · JSON: <a href=\"/api/v1/nodes\">/api/v1/nodes</a> · \
         <a href=\"/api/v1/registries\">/api/v1/registries</a> · \
         <a href=\"/api/v1/events\">/api/v1/events</a> · <a href=\"/metrics\">/metrics</a></p>\n\
         </body></html>\n",
    );
}

/// The slice of `items` on 1-based `page`.
fn paged<T>(items: &[T], page: usize) -> &[T] {
    let start = page.saturating_sub(1).saturating_mul(PAGE_NODES);
    if start >= items.len() {
        return &[];
    }
    &items[start..(start + PAGE_NODES).min(items.len())]
}

fn page_count(n: usize) -> usize {
    n.div_ceil(PAGE_NODES).max(1)
}

fn page_note(n: usize, page: usize) -> String {
    if n <= PAGE_NODES {
        String::new()
    } else {
        format!("; page {page} of {}", page_count(n))
    }
}

/// Links to the previous and next page of the node lists, keeping `?q=`.
fn pagination(h: &mut String, q: &str, page: usize, longest: usize) {
    let pages = page_count(longest);
    if pages <= 1 && page <= 1 {
        return;
    }
    let href = |p: usize| {
        let mut s = format!("/?page={p}");
        if !q.is_empty() {
            s.push_str("&q=");
            s.push_str(&query_escape(q));
        }
        esc(&s)
    };
    h.push_str("<nav id=\"pages\">");
    if page > 1 {
        let _ = write!(
            h,
            "<a id=\"prev\" rel=\"prev\" href=\"{}\">previous page</a> ",
            href(page - 1)
        );
    }
    let _ = write!(h, "page {page} of {pages}");
    if page < pages {
        let _ = write!(
            h,
            " <a id=\"next\" rel=\"next\" href=\"{}\">next page</a>",
            href(page + 1)
        );
    }
    h.push_str("</nav>\n");
}

/// A query value percent-encoded (application/x-www-form-urlencoded).
fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b' ' => out.push('+'),
            b if b.is_ascii_alphanumeric() || b"-._~".contains(&b) => out.push(char::from(b)),
            b => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// What `/nodes/{node}` shows.
pub struct NodePage<'a> {
    pub now_ms: i64,
    pub view: &'a NodeView,
    pub report: &'a Report,
}

pub fn render_node(p: &NodePage<'_>) -> String {
    let now_s = p.now_ms.div_euclid(1000);
    let r = p.report;
    let v = p.view;
    let mut h = String::with_capacity(16 * 1024);
    head(&mut h, &format!("node {} · regtrust", v.node), None);
    let _ = writeln!(
        h,
        "<p><a href=\"/\">← fleet</a></p><h1>node <span id=\"node-name\">{}</span></h1>\
         <p id=\"node-state\">state <span class=\"{}\">{}</span>; last report {} ({} ago); generated at {}; agent {}.</p>",
        esc(&v.node),
        match v.state {
            NodeState::Failing => "fail",
            NodeState::Stale => "stale",
            NodeState::Ok => "ok",
            NodeState::Unknown => "muted",
        },
        v.state.as_str(),
        esc(&v.last_report_at),
        human_age(v.last_report_age_seconds),
        esc(&r.generated_at),
        esc(&r.agent_version),
    );
    // Runtime → (its version, its Go), as the probes reported them.
    let mut runtimes: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
    for g in &r.registries {
        for t in &g.trust {
            runtimes.entry(t.runtime.as_str()).or_insert(("", ""));
        }
        for p in &g.probes {
            let e = runtimes.entry(p.runtime.as_str()).or_insert(("", ""));
            if e.0.is_empty() {
                e.0 = &p.runtime_version;
            }
            if e.1.is_empty() {
                e.1 = &p.go_version;
            }
        }
    }
    let shown: Vec<String> = runtimes
        .iter()
        .map(|(rt, (version, go))| {
            let mut s = format!("<code>{}</code>", esc(rt));
            if !version.is_empty() {
                let _ = write!(s, " {}", esc(version));
            }
            if !go.is_empty() {
                let _ = write!(s, " <span class=\"muted\">({})</span>", esc(go));
            }
            s
        })
        .collect();
    let _ = writeln!(
        h,
        "<p id=\"runtimes\">Runtimes detected: {}.</p>",
        if shown.is_empty() {
            "none reported".to_string()
        } else {
            shown.join(", ")
        }
    );

    h.push_str("<h2>Registries</h2>\n");
    if r.registries.is_empty() {
        h.push_str("<p class=\"muted\">This node manages no registry.</p>\n");
    } else {
        h.push_str(
            "<table id=\"verdicts\"><thead><tr><th>registry</th><th>runtime</th><th>verdict</th>\
             <th>cause</th><th>message</th><th>fix</th><th>warnings</th></tr></thead><tbody>\n",
        );
        for g in &r.registries {
            if g.probes.is_empty() {
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td class=\"muted\">-</td><td class=\"{}\">{}</td><td></td><td>{}</td><td></td><td></td></tr>",
                    registry_link(&g.host),
                    verdict_class(g.verdict),
                    esc(g.verdict.as_str()),
                    esc(&g.message)
                );
            }
            for pr in &g.probes {
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td><code>{}</code></td><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    registry_link(&g.host),
                    esc(&pr.runtime),
                    verdict_class(pr.verdict),
                    esc(pr.verdict.as_str()),
                    esc(&pr.cause),
                    esc(&pr.message),
                    esc(&pr.fix),
                    pr.warnings.iter().map(|w| esc(w)).collect::<Vec<_>>().join("<br>"),
                );
            }
        }
        h.push_str("</tbody></table>\n");
    }

    h.push_str("<h2>Trust files</h2>\n");
    let files: Vec<_> = r
        .registries
        .iter()
        .flat_map(|g| g.trust.iter().map(move |t| (g, t)))
        .collect();
    if files.is_empty() {
        h.push_str("<p id=\"trust-files\" class=\"muted\">No trust file reported.</p>\n");
    } else {
        h.push_str(
            "<table id=\"trust-files\"><thead><tr><th>registry</th><th>runtime</th><th>path</th>\
             <th>state</th><th>detail</th></tr></thead><tbody>\n",
        );
        for (g, t) in files {
            let _ = writeln!(
                h,
                "<tr><td><code>{}</code></td><td><code>{}</code></td><td><code class=\"path\">{}</code></td><td class=\"{}\">{}</td><td>{}</td></tr>",
                esc(&g.host),
                esc(&t.runtime),
                esc(&t.path),
                if t.state.needs_attention() { "fail" } else { "ok" },
                t.state.as_str(),
                esc(&t.detail)
            );
        }
        h.push_str("</tbody></table>\n");
    }

    h.push_str("<h2>Trusted CAs</h2>\n");
    let cas: Vec<_> = r
        .registries
        .iter()
        .flat_map(|g| {
            g.probes
                .iter()
                .flat_map(move |pr| pr.trusted.iter().map(move |t| (g, pr, t)))
        })
        .collect();
    if cas.is_empty() {
        h.push_str("<p id=\"trusted\" class=\"muted\">No runtime reported a registry CA.</p>\n");
    } else {
        h.push_str(
            "<table id=\"trusted\"><thead><tr><th>registry</th><th>runtime</th><th>subject</th>\
             <th>sha256</th><th>days left</th><th>file</th></tr></thead><tbody>\n",
        );
        for (g, pr, t) in cas {
            let left = super::facts::Cert {
                sha256: String::new(),
                subject: String::new(),
                issuer: String::new(),
                not_after: String::new(),
                not_after_s: rfc_seconds(&t.not_after),
                der: None,
            }
            .days_left(now_s)
            .or(Some(t.days_left));
            let _ = writeln!(
                h,
                "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td><code class=\"sha\">{}</code></td>{}<td><code class=\"path\">{}</code></td></tr>",
                esc(&g.host),
                esc(&pr.runtime),
                esc(&t.subject),
                esc(&t.sha256),
                days_cell(left),
                esc(&t.file)
            );
        }
        h.push_str("</tbody></table>\n");
    }

    h.push_str("<h2>Server chain</h2>\n");
    let chains: Vec<_> = r
        .registries
        .iter()
        .filter_map(|g| {
            g.probes
                .iter()
                .find(|p| !p.server_chain.is_empty())
                .map(|p| (g, p))
        })
        .collect();
    if chains.is_empty() {
        h.push_str(
            "<p id=\"chain\" class=\"muted\">No server chain seen (not probed, or no TLS).</p>\n",
        );
    } else {
        h.push_str(
            "<table id=\"chain\"><thead><tr><th>registry</th><th>#</th><th>subject</th><th>issuer</th>\
             <th>sha256</th><th>days left</th></tr></thead><tbody>\n",
        );
        for (g, pr) in chains {
            for (i, c) in pr.server_chain.iter().enumerate() {
                let left = rfc_seconds(&c.not_after).map(|t| (t - now_s).div_euclid(86_400));
                let _ = writeln!(
                    h,
                    "<tr><td><code>{}</code></td><td class=\"n\">{i}</td><td>{}</td><td>{}</td><td><code class=\"sha\">{}</code></td>{}</tr>",
                    esc(&g.host),
                    esc(&c.subject),
                    esc(&c.issuer),
                    esc(&c.sha256),
                    days_cell(left),
                );
            }
        }
        h.push_str("</tbody></table>\n");
    }

    h.push_str("<h2>Problems</h2>\n");
    if r.problems.is_empty() {
        h.push_str("<p id=\"problems\" class=\"ok\">None.</p>\n");
    } else {
        h.push_str("<table id=\"problems\"><thead><tr><th>source</th><th>message</th></tr></thead><tbody>\n");
        for pb in &r.problems {
            let _ = writeln!(
                h,
                "<tr><td><code>{}</code></td><td>{}</td></tr>",
                esc(&pb.source),
                esc(&pb.message)
            );
        }
        h.push_str("</tbody></table>\n");
    }
    footer(&mut h);
    h
}

fn rfc_seconds(rfc: &str) -> Option<i64> {
    time::OffsetDateTime::parse(rfc, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// What `/registries/{host}` shows.
pub struct RegistryPage<'a> {
    pub now_ms: i64,
    pub host: &'a str,
    /// The registry's rollup; None when no node reports it.
    pub view: Option<&'a RegistryView>,
    /// (verdict, cause) → nodes, worst first.
    pub by_verdict: Vec<((Verdict, String), Vec<String>)>,
    pub fingerprints: Vec<CaCount>,
    pub chains: Vec<ChainSeen>,
}

pub fn render_registry(p: &RegistryPage<'_>) -> String {
    let now_s = p.now_ms.div_euclid(1000);
    let mut h = String::with_capacity(16 * 1024);
    head(&mut h, &format!("registry {} · regtrust", p.host), None);
    let _ = writeln!(
        h,
        "<p><a href=\"/\">← fleet</a></p><h1>registry <code id=\"registry-name\">{}</code></h1>",
        esc(p.host)
    );
    match p.view {
        None => h.push_str(
            "<p id=\"registry-totals\" class=\"muted\">No node reports this registry.</p>\n",
        ),
        Some(v) => {
            let failing: usize = v.failing.values().sum();
            let _ = writeln!(
                h,
                "<p id=\"registry-totals\">{} nodes: <span class=\"ok\">{} ok</span>, <span class=\"fail\">{failing} failing</span>, \
                 <span class=\"stale\">{} stale</span>, <span class=\"muted\">{} unknown</span>.</p>",
                v.nodes, v.ok, v.stale, v.unknown
            );
        }
    }

    h.push_str("<h2>Nodes by verdict</h2>\n");
    if p.by_verdict.is_empty() {
        h.push_str("<p id=\"by-verdict\" class=\"muted\">None.</p>\n");
    } else {
        h.push_str("<table id=\"by-verdict\"><thead><tr><th>verdict</th><th>cause</th><th>nodes</th><th>which</th></tr></thead><tbody>\n");
        for ((verdict, cause), nodes) in &p.by_verdict {
            let _ = writeln!(
                h,
                "<tr><td class=\"{}\">{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                verdict_class(*verdict),
                esc(verdict.as_str()),
                esc(cause),
                nodes.len(),
                node_list(nodes)
            );
        }
        h.push_str("</tbody></table>\n");
    }

    h.push_str("<h2>Trusted CA fingerprints</h2>\n<p class=\"muted\">A node counts as trusting a CA when every runtime on it that reports this registry trusts it; nodes where only some runtimes do are listed apart.</p>\n");
    if p.fingerprints.is_empty() {
        h.push_str(
            "<p id=\"fingerprints\" class=\"muted\">No node reported a CA for this registry.</p>\n",
        );
    } else {
        h.push_str("<table id=\"fingerprints\"><thead><tr><th>CA</th><th>sha256</th><th>trusted by</th><th>days left</th><th>nodes</th><th>only some runtimes</th></tr></thead><tbody>\n");
        for f in &p.fingerprints {
            let _ = writeln!(
                h,
                "<tr class=\"fingerprint-row\"><td>CA {}</td><td><code class=\"sha\">{}</code></td><td class=\"n\">trusted by {} nodes</td>{}<td>{}</td><td>{}</td></tr>",
                esc(&f.cert.subject),
                esc(&f.cert.sha256),
                f.nodes.len(),
                days_cell(f.cert.days_left(now_s)),
                node_list(&f.nodes),
                if f.partial_nodes.is_empty() {
                    String::new()
                } else {
                    format!("{}: {}", f.partial_nodes.len(), node_list(&f.partial_nodes))
                }
            );
        }
        h.push_str("</tbody></table>\n");
    }

    h.push_str("<h2>Server chains nodes see</h2>\n");
    if p.chains.is_empty() {
        h.push_str("<p id=\"chains\" class=\"muted\">No node saw a server chain (not probed, or no TLS).</p>\n");
    } else {
        h.push_str("<table id=\"chains\"><thead><tr><th>chain (leaf first)</th><th>seen by</th><th>nodes</th></tr></thead><tbody>\n");
        for c in &p.chains {
            let certs: Vec<String> = c
                .chain
                .iter()
                .map(|x| {
                    format!(
                        "{} <span class=\"muted\">issued by {}</span> <code class=\"sha\">{}</code> ({})",
                        esc(&x.subject),
                        esc(&x.issuer),
                        esc(&x.sha256),
                        x.days_left(now_s).map_or("?".into(), days)
                    )
                })
                .collect();
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td class=\"n\">{} nodes</td><td>{}</td></tr>",
                certs.join("<br>"),
                c.nodes.len(),
                node_list(&c.nodes)
            );
        }
        h.push_str("</tbody></table>\n");
    }
    footer(&mut h);
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
            expiring: vec![],
            q: evil.into(),
            matching: node_views(&rows, &Filter::default(), now, stale_after),
            page: 1,
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
                expiring: vec![],
                q: String::new(),
                matching: vec![],
                page: 1,
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
    fn node_lists_are_paginated_with_links_that_keep_the_filter() {
        let rows: Vec<NodeRow> = (0..250)
            .map(|i| NodeRow {
                node: format!("node-{i:03}"),
                received_ms: 1_000_000,
                generated_at: "1970-01-01T00:00:00Z".into(),
                agent_version: "0.1.0".into(),
                problems: 0,
                registries: vec![RegistryRow {
                    registry: "h".into(),
                    verdict: Verdict::Expired,
                    since_ms: 0,
                    message: String::new(),
                    cause: String::new(),
                    fix: String::new(),
                }],
            })
            .collect();
        let now = 1_000_000;
        let stale_after = Duration::from_secs(180);
        let page = |n: usize, q: &str| {
            let listed: Vec<&NodeRow> = rows.iter().filter(|r| matches_q(&r.node, q)).collect();
            render(&PageData {
                now_ms: now,
                stale_after,
                refresh_secs: 30,
                counts: row_state_counts(&rows, now, stale_after),
                nodes: node_views(&listed, &Filter::default(), now, stale_after),
                registries: registry_views(&rows, now, stale_after),
                events: vec![],
                expiring: vec![],
                q: q.into(),
                matching: if q.is_empty() {
                    vec![]
                } else {
                    node_views(&listed, &Filter::default(), now, stale_after)
                },
                page: n,
            })
        };
        let first = page(1, "");
        assert!(first.contains("href=\"/nodes/node-099\""));
        assert!(!first.contains("node-100"));
        assert!(
            first.contains("<a id=\"next\" rel=\"next\" href=\"/?page=2\">"),
            "{first}"
        );
        assert!(first.contains("page 1 of 3"));
        let third = page(3, "");
        assert!(third.contains("node-249") && !third.contains("node-199<"));
        assert!(third.contains("href=\"/?page=2\"") && !third.contains("id=\"next\""));
        // ?q= finds a node that is on page 2 of the unfiltered list, on page 1.
        let found = page(1, "NODE-15");
        assert!(found.contains("href=\"/nodes/node-150\""), "{found}");
        assert!(!found.contains("node-001"));
        assert!(!found.contains("id=\"pages\""), "11 nodes fit one page");
        assert_eq!(seg("harbor.local:8443"), "harbor.local:8443");
        assert_eq!(seg("a b/<c>"), "a%20b%2F%3Cc%3E");
        assert_eq!(days(0), "0 days");
        assert_eq!(days(1), "1 days");
        assert_eq!(days(-2), "-2 days (expired)");
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
            expiring: vec![],
            q: String::new(),
            matching: vec![],
            page: 1,
        });
        assert!(html.contains("0 nodes"));
        assert!(html.contains("No node is failing."));
    }
}
