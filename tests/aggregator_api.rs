//! The aggregator's HTTP API over real sockets (SPEC, Aggregator): tokens, body limit,
//! report validation, store-then-read, rollups, events, the page's escaping, metrics.

mod aggregator_support;

use aggregator_support::*;
use regtrust::aggregator::fleet::{NodeState, NodesDoc, RegistriesDoc};
use regtrust::report::{Problem, Report, Verdict};
use serde_json::Value;

async fn error_of(resp: reqwest::Response) -> String {
    let v: Value = resp.json().await.expect("error bodies are JSON");
    v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no \"error\" string in {v}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_need_the_bearer_token() {
    let s = InProcess::start(Options::default()).await;
    let body = report("node-a", &[("harbor.local", Verdict::Ok, "", "")]).to_json();
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("x:{WRITE_TOKEN}")
        )
    );
    let cases: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("wrong token", Some("Bearer wrong".into())),
        (
            "prefix of the token",
            Some(format!("Bearer {}", &WRITE_TOKEN[..5])),
        ),
        (
            "token plus newline kept",
            Some(format!("Bearer {WRITE_TOKEN}x")),
        ),
        ("basic is for reading only", Some(basic)),
        ("no scheme", Some(WRITE_TOKEN.to_string())),
    ];
    for (what, auth) in cases {
        let mut req = http().post(s.url("/api/v1/reports")).body(body.clone());
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401, "{what}");
        assert!(
            resp.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer"),
            "{what}"
        );
        assert!(error_of(resp).await.contains("token"), "{what}");
    }
    // Nothing was stored by the refused posts.
    let doc: NodesDoc = http()
        .get(s.url("/api/v1/nodes"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc.nodes.is_empty());
    let ok = post(&s.base, Some(WRITE_TOKEN), body).await;
    assert_eq!(ok.status(), 200);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_are_413() {
    let s = InProcess::start(Options::default()).await;
    // Just under 1 MiB: a valid report padded with a long problem message is accepted.
    let mut r = report("big", &[("harbor.local", Verdict::Ok, "", "")]);
    r.problems.push(Problem::new("pad", "x".repeat(1000)));
    let overhead = r.to_json().len() - 1000;
    r.problems[0].message = "x".repeat((1 << 20) - overhead);
    let exact = r.to_json();
    assert_eq!(exact.len(), 1 << 20);
    assert_eq!(post(&s.base, Some(WRITE_TOKEN), exact).await.status(), 200);
    // One byte more, and a body far larger, are refused.
    r.problems[0].message.push('x');
    let over = r.to_json();
    let resp = post_refused(&s.base, over.into_bytes()).await;
    assert_eq!(resp.status(), 413);
    assert!(error_of(resp).await.contains("body limit"));
    let resp = post_refused(&s.base, vec![b' '; 3 << 20]).await;
    assert_eq!(resp.status(), 413);
    s.stop().await;
}

/// Posts a body the server refuses before reading it. The server answers and closes with
/// the rest of the body unread, and the kernel may then reset the connection before reqwest
/// (which writes the whole body first) reads the answer: a `Broken pipe` on the client, not a
/// different answer. Such a transport error is retried (at most 5 times); any answer is
/// returned for the caller to check.
async fn post_refused(base: &str, body: Vec<u8>) -> reqwest::Response {
    let mut last = None;
    for _ in 0..5 {
        let req = reqwest::Client::new()
            .post(format!("{base}/api/v1/reports"))
            .header("content-type", "application/json")
            .bearer_auth(WRITE_TOKEN)
            .body(body.clone());
        match req.send().await {
            Ok(resp) => return resp,
            Err(e) => last = Some(e),
        }
    }
    panic!("no answer in 5 tries: {last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_reports_are_400_with_an_error() {
    let s = InProcess::start(Options::default()).await;
    let good: Value =
        serde_json::from_str(&report("n", &[("harbor.local", Verdict::Ok, "", "")]).to_json())
            .unwrap();
    let without = |key: &str| {
        let mut v = good.clone();
        v.as_object_mut().unwrap().remove(key);
        v.to_string()
    };
    let with = |key: &str, val: Value| {
        let mut v = good.clone();
        v[key] = val;
        v.to_string()
    };
    let cases: Vec<(&str, String, &str)> = vec![
        ("malformed JSON", "{\"schema\": ".into(), "invalid report"),
        ("not JSON", "hello".into(), "invalid report"),
        ("empty body", String::new(), "invalid report"),
        ("array", "[]".into(), "invalid report"),
        ("deeply nested", "[".repeat(100_000), "invalid report"),
        ("NUL bytes", "\0\0\0".into(), "invalid report"),
        ("missing node", without("node"), "node"),
        ("missing schema", without("schema"), "schema"),
        ("missing registries", without("registries"), "registries"),
        ("missing problems", without("problems"), "problems"),
        (
            "missing generated_at",
            without("generated_at"),
            "generated_at",
        ),
        (
            "missing agent_version",
            without("agent_version"),
            "agent_version",
        ),
        (
            "other schema",
            with("schema", "regtrust.report/v2".into()),
            "schema",
        ),
        ("empty node", with("node", "".into()), "node"),
        (
            "node with newline",
            with("node", "a\nb".into()),
            "control character",
        ),
        (
            "bad time",
            with("generated_at", "yesterday".into()),
            "generated_at",
        ),
        (
            "unknown verdict",
            with(
                "registries",
                serde_json::json!([{"host": "h", "verdict": "great"}]),
            ),
            "great",
        ),
        (
            "path traversal as host",
            with(
                "registries",
                serde_json::json!([{"host": "../../etc", "verdict": "ok"}]),
            ),
            "not a registry host",
        ),
        (
            "registry missing host",
            with("registries", serde_json::json!([{"verdict": "ok"}])),
            "host",
        ),
        // PostgreSQL's text cannot hold U+0000; SQLite could: both refuse it, naming it.
        (
            "NUL in agent_version",
            with("agent_version", "0.1\u{0}".into()),
            "agent_version contains a NUL character",
        ),
        (
            "NUL in a probe's fix",
            {
                let mut v = good.clone();
                v["registries"][0]["probes"][0]["fix"] = "run \u{0}this".into();
                v.to_string()
            },
            "registries[0].probes[0].fix contains a NUL character",
        ),
    ];
    for (what, body, part) in cases {
        let resp = post(&s.base, Some(WRITE_TOKEN), body).await;
        assert_eq!(resp.status(), 400, "{what}");
        let e = error_of(resp).await;
        assert!(e.contains(part), "{what}: {e}");
    }
    let doc: NodesDoc = http()
        .get(s.url("/api/v1/nodes"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc.nodes.is_empty(), "no invalid report was stored");
    let metrics = http()
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("regtrust_fleet_reports_total{result=\"invalid\"} 21"),
        "{metrics}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_reports_are_readable_and_rolled_up() {
    let s = InProcess::start(Options::default()).await;
    let a = report(
        "node-a",
        &[
            ("harbor.local", Verdict::Ok, "", ""),
            ("quay.local:8443", Verdict::Ok, "", ""),
        ],
    );
    let b = report(
        "node-b",
        &[
            (
                "harbor.local",
                Verdict::UnknownAuthority,
                UNKNOWN_CA_MSG,
                UNKNOWN_CA_FIX,
            ),
            ("quay.local:8443", Verdict::Ok, "", ""),
        ],
    );
    for r in [&a, &b] {
        let resp = post(&s.base, Some(WRITE_TOKEN), r.to_json()).await;
        assert_eq!(resp.status(), 200);
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["stored"], true);
        assert_eq!(v["transitions"], 2);
    }

    // One node's latest report, exactly as posted.
    let v: Value = http()
        .get(s.url("/api/v1/nodes/node-b"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let back = Report::from_json(v["report"].to_string().as_bytes()).unwrap();
    assert_eq!(back, b);
    assert_eq!(v["node"]["state"], "failing");
    assert_eq!(v["node"]["worst"], "unknown_authority");
    let missing = http()
        .get(s.url("/api/v1/nodes/node-z"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert!(error_of(missing).await.contains("node-z"));

    let doc: NodesDoc = http()
        .get(s.url("/api/v1/nodes"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let states: Vec<(&str, NodeState)> = doc
        .nodes
        .iter()
        .map(|n| (n.node.as_str(), n.state))
        .collect();
    assert_eq!(
        states,
        vec![("node-a", NodeState::Ok), ("node-b", NodeState::Failing)]
    );
    assert_eq!(doc.stale_after_seconds, 180);

    let failing: NodesDoc = http()
        .get(s.url("/api/v1/nodes?failing=true"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(failing.nodes.len(), 1);
    assert_eq!(failing.nodes[0].registries.len(), 1);
    assert_eq!(failing.nodes[0].registries[0].fix, UNKNOWN_CA_FIX);
    let bad = http()
        .get(s.url("/api/v1/nodes?failing=maybe"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(error_of(bad).await.contains("query"));

    let regs: RegistriesDoc = http()
        .get(s.url("/api/v1/registries"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let harbor = &regs.registries[0];
    assert_eq!(harbor.registry, "harbor.local");
    assert_eq!((harbor.nodes, harbor.ok, harbor.stale), (2, 1, 0));
    assert_eq!(harbor.failing.get("unknown_authority"), Some(&1));
    assert_eq!(harbor.failing_nodes[0].node, "node-b");
    assert_eq!(harbor.failing_nodes[0].message, UNKNOWN_CA_MSG);
    assert_eq!(harbor.failing_nodes[0].cause, "ca_not_installed");
    assert!(harbor.failing_since.is_some());
    let quay = &regs.registries[1];
    assert_eq!(
        (quay.registry.as_str(), quay.nodes, quay.ok),
        ("quay.local:8443", 2, 2)
    );

    // node-b gets the CA: a transition unknown_authority → ok is recorded.
    let fixed = report(
        "node-b",
        &[
            ("harbor.local", Verdict::Ok, "", ""),
            ("quay.local:8443", Verdict::Ok, "", ""),
        ],
    );
    let v: Value = post(&s.base, Some(WRITE_TOKEN), fixed.to_json())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["transitions"], 1);
    let ev: Value = http()
        .get(s.url("/api/v1/events?node=node-b&limit=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let e = &ev["events"][0];
    assert_eq!(
        (&e["node"], &e["registry"], &e["from"], &e["to"]),
        (
            &Value::from("node-b"),
            &Value::from("harbor.local"),
            &Value::from("unknown_authority"),
            &Value::from("ok")
        )
    );
    assert!(e["at"].as_str().unwrap().ends_with('Z'));
    let all: Value = http()
        .get(s.url("/api/v1/events"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all["events"].as_array().unwrap().len(), 5);
    let bad = http()
        .get(s.url("/api/v1/events?since=yesterday"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    let metrics = http().get(s.url("/metrics")).send().await.unwrap();
    assert!(metrics.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let metrics = metrics.text().await.unwrap();
    for line in [
        "regtrust_fleet_nodes{state=\"ok\"} 2",
        "regtrust_fleet_nodes{state=\"failing\"} 0",
        "regtrust_fleet_registry_nodes{registry=\"harbor.local\",verdict=\"ok\"} 2",
        "regtrust_fleet_reports_total{result=\"stored\"} 3",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line}:\n{metrics}"
        );
    }
    let health = http().get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);

    // A decommissioned node can be forgotten with the write token.
    let del = http()
        .delete(s.url("/api/v1/nodes/node-a"))
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 401);
    let del = http()
        .delete(s.url("/api/v1/nodes/node-a"))
        .bearer_auth(WRITE_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 204);
    let gone = http()
        .get(s.url("/api/v1/nodes/node-a"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_escapes_a_hostile_node_name() {
    let s = InProcess::start(Options::default()).await;
    let evil = "<script>alert(1)</script>";
    let r = report(
        evil,
        &[(
            "harbor.local",
            Verdict::UnknownAuthority,
            "<b>bold</b> & \"quoted\"",
            "<a href=x>fix</a>",
        )],
    );
    assert_eq!(
        post(&s.base, Some(WRITE_TOKEN), r.to_json()).await.status(),
        200
    );
    let resp = http().get(s.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let html = resp.text().await.unwrap();
    assert!(
        !html.contains("<script"),
        "raw script tag on the page:\n{html}"
    );
    assert!(!html.contains("<b>bold"), "raw message markup on the page");
    assert!(!html.contains("<a href=x>"), "raw fix markup on the page");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(html.contains("&lt;b&gt;bold&lt;/b&gt; &amp; &quot;quoted&quot;"));
    assert!(html.contains("<meta http-equiv=\"refresh\""));
    // The same name round-trips through the API path, percent-encoded.
    let mut url = reqwest::Url::parse(&s.url("/")).unwrap();
    url.path_segments_mut()
        .unwrap()
        .pop_if_empty()
        .extend(["api", "v1", "nodes", evil]);
    let v: Value = http().get(url).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["node"]["node"], evil);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_need_the_read_token_when_one_is_set() {
    let s = InProcess::start(Options {
        read_token: Some(READ_TOKEN),
        ..Options::default()
    })
    .await;
    let r = report("node-a", &[("harbor.local", Verdict::Ok, "", "")]);
    assert_eq!(
        post(&s.base, Some(WRITE_TOKEN), r.to_json()).await.status(),
        200
    );
    for path in [
        "/api/v1/nodes",
        "/api/v1/nodes/node-a",
        "/api/v1/registries",
        "/api/v1/events",
        "/metrics",
        "/",
    ] {
        let none = http().get(s.url(path)).send().await.unwrap();
        assert_eq!(none.status(), 401, "{path} without token");
        let write = http()
            .get(s.url(path))
            .bearer_auth(WRITE_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(write.status(), 401, "{path} with the write token");
        let ok = http()
            .get(s.url(path))
            .bearer_auth(READ_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200, "{path} with the read token");
    }
    // A browser: the page asks for Basic and takes the read token as the password.
    let page = http().get(s.url("/")).send().await.unwrap();
    assert!(page.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    let page = http()
        .get(s.url("/"))
        .basic_auth("admin", Some(READ_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    // Liveness never needs a token.
    assert_eq!(
        http().get(s.url("/healthz")).send().await.unwrap().status(),
        200
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loopback_accepts_writes_without_a_token() {
    let s = InProcess::start(Options {
        write_token: None,
        ..Options::default()
    })
    .await;
    let r = report("node-a", &[("harbor.local", Verdict::Ok, "", "")]);
    assert_eq!(post(&s.base, None, r.to_json()).await.status(), 200);
    let db = s.db.clone();
    let _dir = s.stop().await;
    // After a graceful stop the database holds the report and reopens cleanly.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM nodes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_are_json_404() {
    let s = InProcess::start(Options::default()).await;
    let resp = http().get(s.url("/api/v2/nodes")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert!(!error_of(resp).await.is_empty());
    s.stop().await;
}
