//! Issue 9 point 6 against the in-process aggregator on SQLite: newest truth (an older
//! report is not applied and records no transition), clock-skew refusal, the fleet bounds
//! (--max-nodes, --max-registries, --max-registries-per-report) and a bounded /metrics.
//! The same rules on PostgreSQL are in `aggregator_postgres`.

mod aggregator_support;

use aggregator_support::*;
use regtrust::aggregator::{store::Limits, Bounds};
use regtrust::report::{Report, Verdict};
use serde_json::Value;
use std::time::Duration;

fn at(mut r: Report, offset_secs: i64) -> Report {
    let t = time::OffsetDateTime::now_utc() + time::Duration::seconds(offset_secs);
    r.generated_at = regtrust::report::rfc3339(t);
    r
}

fn one(node: &str, host: &str, v: Verdict) -> Report {
    report(node, &[(host, v, "m", "")])
}

async fn send(s: &InProcess, r: &Report) -> (u16, Value) {
    let resp = post(&s.base, Some(WRITE_TOKEN), r.to_json()).await;
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn get(s: &InProcess, path: &str) -> Value {
    http()
        .get(s.url(path))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn metrics(s: &InProcess) -> String {
    http()
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_older_report_is_not_applied_and_records_no_transition() {
    let s = InProcess::start(Options::default()).await;
    let newer = at(one("n1", "harbor.local", Verdict::UnknownAuthority), -10);
    assert_eq!(send(&s, &newer).await.0, 200);
    // Delivered late (a retry queue, a replica's backlog): generated a minute earlier.
    let older = at(one("n1", "harbor.local", Verdict::Ok), -70);
    let (status, body) = send(&s, &older).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stored"], false, "{body}");
    assert_eq!(body["outcome"], "superseded", "{body}");
    assert_eq!(body["stored_generated_at"], newer.generated_at.as_str());
    let node = get(&s, "/api/v1/nodes/n1").await;
    assert_eq!(
        node["node"]["registries"][0]["verdict"], "unknown_authority",
        "{node}"
    );
    let events = get(&s, "/api/v1/events?node=n1").await;
    assert_eq!(events["events"].as_array().unwrap().len(), 1, "{events}");
    // The same report again (a retry) and a newer one are applied.
    assert_eq!(send(&s, &newer).await.1["stored"], true);
    let newest = at(one("n1", "harbor.local", Verdict::Ok), 0);
    let (status, body) = send(&s, &newest).await;
    assert_eq!((status, &body["outcome"]), (200, &Value::from("stored")));
    let events = get(&s, "/api/v1/events?node=n1").await;
    assert_eq!(events["events"].as_array().unwrap().len(), 2, "{events}");
    let m = metrics(&s).await;
    assert!(
        m.contains("regtrust_fleet_reports_total{result=\"superseded\"} 1"),
        "{m}"
    );
}

#[tokio::test]
async fn a_report_from_the_future_is_refused() {
    let s = InProcess::start(Options::default()).await;
    let (status, body) = send(&s, &at(one("n1", "h.example", Verdict::Ok), 600)).await;
    assert_eq!(status, 400, "{body}");
    let err = body["error"].as_str().unwrap();
    assert!(
        err.contains("--max-clock-skew") && err.contains("ahead"),
        "{err}"
    );
    assert_eq!(
        get(&s, "/api/v1/nodes").await["nodes"],
        Value::from(vec![] as Vec<Value>)
    );
    // Within the skew: accepted.
    assert_eq!(
        send(&s, &at(one("n1", "h.example", Verdict::Ok), 120))
            .await
            .0,
        200
    );
    let tight = InProcess::start(Options {
        bounds: Bounds {
            max_clock_skew: Duration::from_secs(30),
            ..Bounds::default()
        },
        ..Options::default()
    })
    .await;
    assert_eq!(
        send(&tight, &at(one("n1", "h.example", Verdict::Ok), 120))
            .await
            .0,
        400
    );
}

#[tokio::test]
async fn the_fleet_is_bounded_with_clear_errors() {
    let s = InProcess::start(Options {
        bounds: Bounds {
            limits: Limits {
                max_nodes: 3,
                max_registries: 4,
            },
            max_registries_per_report: 3,
            ..Bounds::default()
        },
        ..Options::default()
    })
    .await;
    for n in ["a", "b", "c"] {
        assert_eq!(send(&s, &one(n, "r1.example", Verdict::Ok)).await.0, 200);
    }
    let (status, body) = send(&s, &one("d", "r1.example", Verdict::Ok)).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("--max-nodes"),
        "{body}"
    );
    // A known node is still updated; a forgotten one frees its place.
    assert_eq!(
        send(&s, &one("a", "r1.example", Verdict::Expired)).await.0,
        200
    );
    let del = http()
        .delete(s.url("/api/v1/nodes/c"))
        .bearer_auth(WRITE_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 204);
    assert_eq!(send(&s, &one("d", "r1.example", Verdict::Ok)).await.0, 200);

    // Registries: r1 plus three more is the bound of 4.
    let three =
        |node: &str, hosts: [&str; 3]| report(node, &hosts.map(|h| (h, Verdict::Ok, "", "")));
    assert_eq!(
        send(&s, &three("b", ["r2.example", "r3.example", "r4.example"]))
            .await
            .0,
        200
    );
    let (status, body) = send(&s, &three("d", ["r1.example", "r2.example", "r5.example"])).await;
    assert_eq!(status, 422, "{body}");
    let err = body["error"].as_str().unwrap();
    assert!(
        err.contains("--max-registries") && err.contains("r5.example"),
        "{err}"
    );
    // Nothing of the refused report was stored: d still reports r1 only.
    let d = get(&s, "/api/v1/nodes/d").await;
    assert_eq!(d["node"]["registries"].as_array().unwrap().len(), 1, "{d}");
    // b drops r4 (only b had it): r5 fits.
    assert_eq!(
        send(&s, &three("b", ["r2.example", "r3.example", "r5.example"]))
            .await
            .0,
        200
    );
    // Per report: four registries in one report is 400, naming the flag.
    let four = report(
        "a",
        &[
            ("r1.example", Verdict::Ok, "", ""),
            ("r2.example", Verdict::Ok, "", ""),
            ("r3.example", Verdict::Ok, "", ""),
            ("r5.example", Verdict::Ok, "", ""),
        ],
    );
    let (status, body) = send(&s, &four).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("--max-registries-per-report"),
        "{body}"
    );
    let m = metrics(&s).await;
    assert!(
        m.contains("regtrust_fleet_reports_total{result=\"over_bound\"} 2"),
        "{m}"
    );
}

/// A fleet at the default registry bound: /metrics is a few thousand series of
/// per-(registry, verdict) counts, no node names, however many nodes report them; per-node
/// series only when asked for.
#[tokio::test]
async fn metrics_stay_bounded_unless_per_node_series_are_asked_for() {
    for per_node in [false, true] {
        let s = InProcess::start(Options {
            bounds: Bounds {
                metrics_per_node: per_node,
                ..Bounds::default()
            },
            ..Options::default()
        })
        .await;
        // 100 nodes x 10 registries of their own = 1,000 distinct registries, the default
        // --max-registries.
        for n in 0..100 {
            let hosts: Vec<String> = (0..10).map(|i| format!("r{n}-{i}.example")).collect();
            let regs: Vec<(&str, Verdict, &str, &str)> = hosts
                .iter()
                .map(|h| (h.as_str(), Verdict::UnknownAuthority, "m", "f"))
                .collect();
            let (status, body) = send(&s, &report(&format!("node-{n}"), &regs)).await;
            assert_eq!(status, 200, "{body}");
        }
        let (status, body) = send(&s, &one("node-100", "one-more.example", Verdict::Ok)).await;
        assert_eq!(status, 422, "the 1,001st registry: {body}");
        let m = metrics(&s).await;
        let series = m.lines().filter(|l| !l.starts_with('#')).count();
        let node_series = m.lines().filter(|l| l.contains("node=\"")).count();
        if per_node {
            assert_eq!(node_series, 1000);
        } else {
            assert_eq!(node_series, 0, "no node label by default");
            // 1,000 registries x (ok, unknown, stale, unknown_authority) + fleet + reports.
            assert!(series <= 4 * 1000 + 20, "{series} series");
            assert!(m.len() < 400_000, "{} bytes", m.len());
        }
    }
}
