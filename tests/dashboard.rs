//! The Grafana dashboard (packaging/grafana/regtrust.json) loads as a dashboard and every
//! query names only metrics the binaries export: the names are read from the code that
//! renders them (src/metrics.rs for the agent, src/aggregator/ for the fleet), outside its
//! tests. tests/container_e2e.rs checks the same queries against the /metrics the running
//! containers serve.

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn dashboard() -> Value {
    let path = repo().join("packaging/grafana/regtrust.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()))
}

/// `regtrust_*` words in `text`.
fn metric_words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("regtrust_"))
}

/// Every metric name the code renders: words in the non-test part of the files that write
/// Prometheus text.
fn exported() -> BTreeSet<String> {
    let mut files = vec![repo().join("src/metrics.rs")];
    for e in std::fs::read_dir(repo().join("src/aggregator")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "rs") {
            files.push(p);
        }
    }
    let mut out = BTreeSet::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        if code.contains("# TYPE") || code.contains("\"gauge\"") || code.contains("\"counter\"") {
            out.extend(metric_words(code).map(str::to_string));
        }
    }
    out
}

fn queries(d: &Value) -> Vec<(String, String)> {
    let mut out = vec![];
    for p in d["panels"].as_array().expect("panels") {
        let title = p["title"]
            .as_str()
            .expect("every panel has a title")
            .to_string();
        for t in p["targets"].as_array().expect("every panel has targets") {
            out.push((
                title.clone(),
                t["expr"]
                    .as_str()
                    .expect("every target has an expr")
                    .to_string(),
            ));
        }
    }
    out
}

#[test]
fn every_query_names_an_exported_metric() {
    let d = dashboard();
    let exported = exported();
    // The code scan finds the metrics at all (a renamed file would otherwise pass vacuously).
    for known in [
        "regtrust_registry_verdict",
        "regtrust_fleet_nodes",
        "regtrust_fleet_registry_nodes",
    ] {
        assert!(
            exported.contains(known),
            "{known} not found in the metrics code: {exported:?}"
        );
    }
    let qs = queries(&d);
    assert!(
        qs.len() >= 10,
        "the dashboard has its queries: {}",
        qs.len()
    );
    for (title, expr) in &qs {
        let names: Vec<&str> = metric_words(expr).collect();
        assert!(
            !names.is_empty(),
            "panel {title:?}: query names no regtrust metric: {expr}"
        );
        for n in names {
            assert!(
                exported.contains(n),
                "panel {title:?}: {n} is not exported by the binaries (query {expr})"
            );
        }
    }
}

#[test]
fn the_dashboard_covers_what_issue_12_asks_and_is_well_formed() {
    let d = dashboard();
    assert!(d["title"].is_string() && d["uid"].is_string() && d["schemaVersion"].is_u64());
    let vars = d["templating"]["list"].as_array().unwrap();
    assert!(vars
        .iter()
        .any(|v| v["name"] == "datasource" && v["type"] == "datasource"));
    let mut ids = BTreeSet::new();
    for p in d["panels"].as_array().unwrap() {
        assert!(
            ids.insert(p["id"].as_u64().expect("panel id")),
            "duplicate panel id {}",
            p["id"]
        );
        assert_eq!(
            p["datasource"]["uid"], "${datasource}",
            "panel {}",
            p["title"]
        );
        for k in ["x", "y", "w", "h"] {
            assert!(
                p["gridPos"][k].is_u64(),
                "panel {}: gridPos.{k}",
                p["title"]
            );
        }
        let refs: Vec<&str> = p["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["refId"].as_str().unwrap())
            .collect();
        let unique: BTreeSet<&&str> = refs.iter().collect();
        assert_eq!(
            unique.len(),
            refs.len(),
            "panel {}: duplicate refId",
            p["title"]
        );
    }
    let all: String = queries(&d).into_iter().map(|(_, e)| e + "\n").collect();
    // Fleet verdicts by registry, failing nodes, push failures, and each expiry horizon.
    for needle in [
        "regtrust_fleet_registry_nodes",
        "state=\"failing\"",
        "regtrust_report_push_total{result=\"error\"}",
        "regtrust_ca_not_after_seconds",
        "regtrust_server_cert_not_after_seconds",
    ] {
        assert!(all.contains(needle), "no query uses {needle}");
    }
    for days in [30, 14, 7, 3, 1] {
        assert!(
            all.contains(&format!("< {days} * 86400")),
            "no expiry query for {days} days"
        );
    }
    let _ = Path::new("");
}
