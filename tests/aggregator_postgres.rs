//! The aggregator on a real PostgreSQL (Debian's server, started per test on a free
//! loopback port, stopped by PID; see `aggregator_support::pg`): schema setup by replicas
//! starting at once, the same behaviour as SQLite, several replicas serving one fleet,
//! transitions recorded once, kill -9 of a replica under 20 writers, the database stopped
//! and restarted under load, the password kept out of logs and errors, and TLS (rustls) to
//! a server whose certificate a CA made at test time issued.

mod aggregator_support;
mod support;

use aggregator_support::pg::{Postgres, PG_PASSWORD, PG_USER};
use aggregator_support::*;
use regtrust::aggregator::store::{EventQuery, Limits, Options as StoreOptions, Store, StoreError};
use regtrust::report::{Report, Verdict};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// How `nodes.report` is compressed: `l` lz4, `p` pglz (`pg_attribute.attcompression`).
const REPORT_COMPRESSION: &str = "SELECT attcompression::text FROM pg_attribute
     WHERE attrelid = 'nodes'::regclass AND attname = 'report'";

fn store_opts() -> StoreOptions {
    StoreOptions {
        retention: Duration::from_secs(3600),
        limits: Limits::default(),
        writers: regtrust::aggregator::store::DEFAULT_PG_WRITERS,
    }
}

fn one(node: &str, regs: &[(&str, Verdict)]) -> Report {
    let regs: Vec<(&str, Verdict, &str, &str)> =
        regs.iter().map(|(h, v)| (*h, *v, "message", "")).collect();
    report(node, &regs)
}

fn aged(mut r: Report, secs: i64) -> Report {
    r.generated_at =
        regtrust::report::rfc3339(time::OffsetDateTime::now_utc() - time::Duration::seconds(secs));
    r
}

#[test]
fn replicas_starting_at_once_create_the_schema_once_and_refuse_a_newer_one() {
    let pg = Postgres::start();
    rt().block_on(async {
        // An existing, empty database, as a DBA would hand it over.
        pg.create_db("fleet").await;
        let opens: Vec<_> = (0..6)
            .map(|_| {
                let t = pg.target("fleet");
                tokio::spawn(async move { Store::open(&t, store_opts()).await })
            })
            .collect();
        let mut closers = Vec::new();
        for o in opens {
            let (store, closer) = o.await.unwrap().expect("a replica failed to start");
            drop(store);
            closers.push(closer);
        }
        for c in closers {
            c.finish().await;
        }
        assert_eq!(
            pg.query("fleet", "SELECT version FROM regtrust_schema ORDER BY version")
                .await,
            vec!["1", "2"]
        );
        // Version 2: the report documents are lz4-compressed (Debian's server has lz4).
        assert_eq!(pg.query("fleet", REPORT_COMPRESSION).await, vec!["l"]);
        let types = pg
            .query(
                "fleet",
                "SELECT table_name || '.' || column_name || ' ' || data_type FROM information_schema.columns
                 WHERE column_name IN ('node', 'registry') AND table_schema = 'public' ORDER BY 1",
            )
            .await;
        assert_eq!(
            types,
            vec![
                "events.node text",
                "events.registry text",
                "node_registries.node text",
                "node_registries.registry text",
                "nodes.node text"
            ]
        );
        // A version-1 database (as regtrust before the lz4 step left it) with a node in
        // it walks forward to version 2 and keeps the node.
        let (store, closer) = Store::open(&pg.target("fleet"), store_opts())
            .await
            .unwrap();
        let r = one("v1-node", &[("harbor.local", Verdict::Ok)]);
        let raw = r.to_json();
        let now = regtrust::aggregator::fleet::now_ms();
        store.put(r, raw, now).await.unwrap();
        drop(store);
        closer.finish().await;
        pg.query(
            "fleet",
            "DELETE FROM regtrust_schema WHERE version = 2;
             ALTER TABLE nodes ALTER COLUMN report SET COMPRESSION pglz",
        )
        .await;
        assert_eq!(pg.query("fleet", REPORT_COMPRESSION).await, vec!["p"]);
        let (store, closer) = Store::open(&pg.target("fleet"), store_opts())
            .await
            .expect("a version-1 database opens");
        assert_eq!(
            pg.query("fleet", "SELECT version FROM regtrust_schema ORDER BY version")
                .await,
            vec!["1", "2"]
        );
        assert_eq!(pg.query("fleet", REPORT_COMPRESSION).await, vec!["l"]);
        assert_eq!(
            pg.query("fleet", "SELECT node FROM nodes").await,
            vec!["v1-node"]
        );
        drop(store);
        closer.finish().await;

        pg.query("fleet", "UPDATE regtrust_schema SET version = 99")
            .await;
        match Store::open(&pg.target("fleet"), store_opts()).await {
            Err(e @ StoreError::NewerSchema { found: 99, .. }) => {
                let msg = e.to_string();
                assert!(msg.contains("newer than this regtrust"), "{msg}");
                assert!(!msg.contains(PG_PASSWORD), "{msg}");
            }
            Err(e) => panic!("unexpected error: {e}"),
            Ok(_) => panic!("a newer schema was accepted"),
        }
    });
}

/// One script of writes, applied to a SQLite store and to a PostgreSQL store, one by one
/// and all at once (batched): the answers, the fleet, the events and retention come out the
/// same.
#[test]
fn both_backends_give_the_same_answers() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        pg.create_db("same").await;
        let opts = StoreOptions {
            retention: Duration::from_secs(3600),
            limits: Limits {
                max_nodes: 3,
                max_registries: 4,
            },
            // One writer: its batches (however the queue splits them) must answer at once
            // as one by one. Two writers keep each node's order (the burst test below)
            // and decide the fleet bounds between their concurrent batches as replicas
            // do, in commit order.
            writers: 1,
        };
        let sqlite = regtrust::aggregator::store::DbTarget::Sqlite(dir.path().join("a.db"));
        let mut runs = Vec::new();
        let base = regtrust::aggregator::fleet::now_ms();
        let script: Vec<(Report, i64)> = vec![
            (
                aged(one("n1", &[("h1", Verdict::Ok), ("h2", Verdict::Ok)]), 50),
                0,
            ),
            (
                aged(one("n1", &[("h1", Verdict::Ok), ("h2", Verdict::Ok)]), 40),
                1,
            ),
            (
                aged(
                    one(
                        "n1",
                        &[("h1", Verdict::UnknownAuthority), ("h2", Verdict::Ok)],
                    ),
                    30,
                ),
                2,
            ),
            // Older than the stored one: not applied.
            (aged(one("n1", &[("h1", Verdict::Ok)]), 45), 3),
            (aged(one("n1", &[("h1", Verdict::UnknownAuthority)]), 20), 4),
            (
                aged(
                    one("n2", &[("h1", Verdict::Expired), ("h3", Verdict::Ok)]),
                    20,
                ),
                5,
            ),
            (aged(one("n3", &[("h4", Verdict::Ok)]), 20), 6),
            // A fourth node, and a fifth registry: bounds.
            (aged(one("n4", &[("h1", Verdict::Ok)]), 20), 7),
            (
                aged(
                    one(
                        "n2",
                        &[
                            ("h1", Verdict::Ok),
                            ("h3", Verdict::Ok),
                            ("h5", Verdict::Ok),
                            ("h6", Verdict::Ok),
                        ],
                    ),
                    12,
                ),
                8,
            ),
            // Dropping h3 (only n2 had it) makes room for h5.
            (
                aged(one("n2", &[("h1", Verdict::Ok), ("h5", Verdict::Ok)]), 10),
                9,
            ),
        ];
        pg.create_db("same_at_once").await;
        let sqlite_at_once = regtrust::aggregator::store::DbTarget::Sqlite(dir.path().join("b.db"));
        for (target, at_once) in [
            (sqlite, false),
            (pg.target("same"), false),
            (sqlite_at_once, true),
            (pg.target("same_at_once"), true),
        ] {
            let (store, closer) = Store::open(&target, opts).await.unwrap();
            let script = script.clone();
            let mut answers = Vec::new();
            let mut outcomes = Vec::new();
            if at_once {
                // Every put queued before any is answered (join_all polls them in order):
                // the writer takes them in batches, which must answer as one by one.
                let puts = script.into_iter().map(|(r, i)| {
                    let raw = r.to_json();
                    store.put(r, raw, base + i * 1000)
                });
                outcomes = futures_util::future::join_all(puts).await;
            } else {
                for (r, i) in script {
                    let raw = r.to_json();
                    outcomes.push(store.put(r, raw, base + i * 1000).await);
                }
            }
            for outcome in outcomes {
                answers.push(match outcome {
                    Ok(out) => format!(
                        "stored={} transitions={:?}",
                        out.superseded_by.is_none(),
                        out.transitions
                            .iter()
                            .map(|e| (e.registry.clone(), e.from, e.to))
                            .collect::<Vec<_>>()
                    ),
                    Err(e) => format!("refused: {e}"),
                });
            }
            answers.push(format!(
                "deleted n3: {}",
                store.delete("n3".into()).await.unwrap()
            ));
            let fleet: Vec<_> = store
                .fleet()
                .await
                .unwrap()
                .iter()
                .map(|n| {
                    let mut n = (**n).clone();
                    n.received_ms -= base;
                    for r in &mut n.registries {
                        r.since_ms -= base;
                    }
                    format!("{n:?}")
                })
                .collect();
            let events: Vec<_> = store
                .events(EventQuery {
                    limit: 100,
                    ..EventQuery::default()
                })
                .await
                .unwrap()
                .into_iter()
                .map(|e| (e.node, e.registry, e.from, e.to))
                .collect();
            let node = store.node("n1".into()).await.unwrap().unwrap();
            let pruned = store.prune(base + 3600 * 1000 + 4500).await.unwrap();
            let after: Vec<String> = store
                .fleet()
                .await
                .unwrap()
                .iter()
                .map(|n| n.node.clone())
                .collect();
            drop(store);
            closer.finish().await;
            runs.push(format!(
                "{answers:#?}\n{fleet:#?}\n{events:#?}\n{}\n{pruned:?} {after:?}",
                node.report_json.len()
            ));
        }
        assert_eq!(
            runs[0], runs[1],
            "SQLite (left) and PostgreSQL (right) differ"
        );
        assert_eq!(
            runs[0], runs[2],
            "SQLite one by one (left) and all at once (right) differ"
        );
        assert_eq!(
            runs[1], runs[3],
            "PostgreSQL one by one (left) and all at once (right) differ"
        );
        assert!(runs[0].contains("--max-nodes") && runs[0].contains("--max-registries"));
        assert!(runs[0].contains("stored=false"));
    });
}

fn node_of(v: &Value) -> Option<(String, String)> {
    Some((
        v["node"]["registries"][0]["verdict"].as_str()?.to_string(),
        v["report"]["generated_at"].as_str()?.to_string(),
    ))
}

/// Two replicas on one database: a post to one is read from the other; the same new node
/// posted to both at once (the race lost on purpose, 40 times) gets its first transition
/// recorded once, and every node's event chain is consistent.
#[test]
fn two_replicas_serve_one_fleet_and_record_each_transition_once() {
    let pg = Postgres::start();
    rt().block_on(async {
        pg.create_db("ha").await;
        let start = |db: &str| {
            let t = pg.target(db);
            async move {
                InProcess::start(Options {
                    db: Some(t),
                    ..Options::default()
                })
                .await
            }
        };
        let a = start("ha").await;
        let b = start("ha").await;
        let r = one("n1", &[("harbor.local", Verdict::UnknownAuthority)]);
        let resp = post(&a.base, Some(WRITE_TOKEN), r.to_json()).await;
        assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
        let url = b.url("/api/v1/nodes/n1");
        eventually("replica b sees a's report", Duration::from_secs(5), || {
            let url = url.clone();
            async move {
                let resp = http().get(url).send().await.unwrap();
                resp.status() == 200
            }
        })
        .await;
        // Concurrent first reports of the same node to both replicas, and then flips.
        for i in 0..40 {
            let node = format!("race-{i}");
            let v = if i % 2 == 0 {
                Verdict::Ok
            } else {
                Verdict::Expired
            };
            let ra = one(&node, &[("r.example", v)]);
            let rb = ra.clone();
            let (x, y) = tokio::join!(
                post(&a.base, Some(WRITE_TOKEN), ra.to_json()),
                post(&b.base, Some(WRITE_TOKEN), rb.to_json())
            );
            assert_eq!((x.status().as_u16(), y.status().as_u16()), (200, 200));
            let flip = one(&node, &[("r.example", Verdict::UnknownAuthority)]);
            let (x, y) = tokio::join!(
                post(&a.base, Some(WRITE_TOKEN), flip.to_json()),
                post(&b.base, Some(WRITE_TOKEN), flip.to_json())
            );
            assert_eq!((x.status().as_u16(), y.status().as_u16()), (200, 200));
            let ev: Value = http()
                .get(b.url(&format!("/api/v1/events?node={node}")))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let ev = ev["events"].as_array().unwrap();
            assert_eq!(ev.len(), 2, "{node}: one first report, one change: {ev:?}");
            // Newest first: the change, then the first report.
            assert_eq!(ev[1]["from"], Value::Null, "{node}: {ev:?}");
            assert_eq!(ev[1]["to"], v.as_str(), "{node}: {ev:?}");
            assert_eq!(ev[0]["from"], v.as_str(), "{node}: {ev:?}");
            assert_eq!(ev[0]["to"], "unknown_authority", "{node}: {ev:?}");
        }
        // Both replicas serve the same fleet, within the 5 s bound.
        let fleet = |base: String| async move {
            let v: Value = http()
                .get(format!("{base}/api/v1/nodes"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["nodes"].as_array().unwrap().len()
        };
        let (ab, bb) = (a.base.clone(), b.base.clone());
        eventually(
            "both replicas list 41 nodes",
            Duration::from_secs(5),
            || {
                let (ab, bb) = (ab.clone(), bb.clone());
                async move { fleet(ab).await == 41 && fleet(bb).await == 41 }
            },
        )
        .await;
        let _ = node_of;
        a.stop().await;
        b.stop().await;
    });
}

/// The real binary: two replicas on one database, 40 concurrent writers posting to both
/// (so each replica's writers commit batches of several reports), kill -9 of one while
/// requests to it are in flight, i.e. mid-batch: some posts to it are cut off, and after
/// its restart every acknowledged report is present (read from the restarted replica).
#[test]
fn kill_9_of_a_replica_mid_batch_under_40_writers_loses_no_acknowledged_report() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let pwfile = dir.path().join("pgpass");
    std::fs::write(&pwfile, format!("{PG_PASSWORD}\n")).unwrap();
    rt().block_on(pg.create_db("kill"));
    let url = pg.url("kill");
    let args = [
        "--allow-open-loopback",
        "--db-password-file",
        pwfile.to_str().unwrap(),
    ];
    let mut a = Binary::start(Path::new(&url), &args);
    let b = Binary::start(Path::new(&url), &args);
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let killed = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    // Posts to replica a that got no answer: in flight when it was killed.
    let cut = Arc::new(AtomicUsize::new(0));
    rt().block_on(async {
        let mut writers = Vec::new();
        for w in 0..40 {
            let bases = [a.base.clone(), b.base.clone()];
            let (acked, sent, cut) = (acked.clone(), sent.clone(), cut.clone());
            writers.push(tokio::spawn(async move {
                for k in 0..30 {
                    let to_a = (w + k) % 2 == 0;
                    let base = &bases[usize::from(!to_a)];
                    let node = format!("w{w}-n{}", k % 5);
                    let v = [Verdict::Ok, Verdict::UnknownAuthority, Verdict::Expired][k % 3];
                    let r = one(&node, &[("harbor.local", v)]);
                    sent.fetch_add(1, Ordering::SeqCst);
                    let resp = http()
                        .post(format!("{base}/api/v1/reports"))
                        .body(r.to_json())
                        .send()
                        .await;
                    match resp {
                        Ok(resp) if resp.status() == 200 => {
                            if let Ok(body) = resp.json::<Value>().await {
                                if body["stored"] == true {
                                    acked.lock().unwrap().push((node, r.generated_at.clone()));
                                }
                            }
                        }
                        Ok(_) => {}
                        Err(_) if to_a => {
                            cut.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => panic!("replica b failed a post: {e}"),
                    }
                }
            }));
        }
        // kill -9 replica a once a third of the posts went out: every writer is in the
        // middle of a request then, about half of them to a.
        eventually("writers under way", Duration::from_secs(60), || {
            let sent = sent.clone();
            async move { sent.load(Ordering::SeqCst) >= 400 }
        })
        .await;
        a.kill9();
        killed.store(true, Ordering::SeqCst);
        for w in writers {
            w.await.unwrap();
        }
    });
    assert!(
        cut.load(Ordering::SeqCst) > 0,
        "no post to the killed replica was in flight: the race was not lost"
    );
    assert!(killed.load(Ordering::SeqCst));
    let a2 = Binary::start(Path::new(&url), &args);
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 200, "only {} acknowledged", acked.len());
    // Per node, the newest acknowledged generated_at; the stored one is at least that.
    let mut newest: BTreeMap<String, String> = BTreeMap::new();
    for (n, g) in acked {
        let e = newest.entry(n).or_default();
        if g > *e {
            *e = g;
        }
    }
    rt().block_on(async {
        for (node, g) in newest {
            let v: Value = http()
                .get(format!("{}/api/v1/nodes/{node}", a2.base))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let stored = v["report"]["generated_at"].as_str().unwrap_or("");
            assert!(
                stored >= g.as_str(),
                "{node}: acknowledged {g}, stored {stored:?}"
            );
        }
    });
    drop(b);
}

/// The database stopped and restarted under load: posts get 503 saying the database is
/// unavailable, /healthz says why, the replica recovers by itself, nothing acknowledged
/// is lost.
#[test]
fn the_database_stopped_under_load_gives_503_then_recovers_by_itself() {
    let mut pg = Postgres::start();
    let runtime = rt();
    runtime.block_on(pg.create_db("down"));
    let s = runtime.block_on(InProcess::start(Options {
        db: Some(pg.target("down")),
        ..Options::default()
    }));
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let statuses: Arc<Mutex<BTreeMap<u16, usize>>> = Arc::default();
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (base, stop, acked, statuses) = (
                s.base.clone(),
                stop.clone(),
                acked.clone(),
                statuses.clone(),
            );
            runtime.spawn(async move {
                let mut k = 0;
                while !stop.load(Ordering::SeqCst) && k < 100_000 {
                    k += 1;
                    let node = format!("d{w}-{}", k % 7);
                    let r = one(&node, &[("harbor.local", Verdict::Ok)]);
                    let resp = post(&base, Some(WRITE_TOKEN), r.to_json()).await;
                    let st = resp.status().as_u16();
                    *statuses.lock().unwrap().entry(st).or_default() += 1;
                    if st == 200 {
                        acked.lock().unwrap().push((node, r.generated_at));
                    } else {
                        assert_eq!(st, 503, "only 503 while the database is away");
                        let body: Value = resp.json().await.unwrap();
                        let e = body["error"].as_str().unwrap();
                        assert!(e.contains("database unavailable"), "{e}");
                        assert!(!e.contains(PG_PASSWORD), "{e}");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            })
        })
        .collect();
    let count = |st: u16| *statuses.lock().unwrap().get(&st).unwrap_or(&0);
    let wait = |what: &str, f: &dyn Fn() -> bool| {
        let end = std::time::Instant::now() + Duration::from_secs(60);
        while !f() {
            assert!(std::time::Instant::now() < end, "timed out: {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait("some posts stored", &|| count(200) >= 50);
    pg.stop();
    wait("503s while the database is down", &|| count(503) >= 20);
    let health = runtime.block_on(async { http().get(s.url("/healthz")).send().await.unwrap() });
    assert_eq!(health.status(), 503);
    let why = runtime.block_on(health.text()).unwrap();
    assert!(why.contains("database unavailable"), "{why}");
    let before = count(200);
    pg.resume();
    wait("posts stored again after the restart", &|| {
        count(200) >= before + 50
    });
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        runtime.block_on(w).unwrap();
    }
    let health =
        runtime.block_on(async { http().get(s.url("/healthz")).send().await.unwrap().status() });
    assert_eq!(health, 200);
    let mut newest: BTreeMap<String, String> = BTreeMap::new();
    for (n, g) in acked.lock().unwrap().iter() {
        let e = newest.entry(n.clone()).or_default();
        if g > e {
            *e = g.clone();
        }
    }
    let stored = runtime.block_on(pg.query(
        "down",
        "SELECT node || ' ' || generated_at FROM nodes ORDER BY node",
    ));
    let stored: BTreeMap<String, String> = stored
        .iter()
        .filter_map(|l| l.split_once(' '))
        .map(|(n, g)| (n.to_string(), g.to_string()))
        .collect();
    for (n, g) in newest {
        let s = stored.get(&n).map(String::as_str).unwrap_or("");
        assert!(s >= g.as_str(), "{n}: acknowledged {g}, stored {s:?}");
    }
    runtime.block_on(s.stop());
}

/// The password (from the URL or a file) shows in no log line and no error, whether the
/// database accepts it, refuses a wrong one, or goes away.
#[test]
fn the_database_password_never_shows_in_logs_or_errors() {
    let mut pg = Postgres::start();
    rt().block_on(pg.create_db("secret"));
    let dir = tempfile::tempdir().unwrap();
    // A wrong password in the URL: exit 2, the reason, not the password.
    let wrong = format!(
        "postgres://{PG_USER}:Wr0ngPa55-zz9@127.0.0.1:{}/secret",
        pg.port
    );
    let (code, err) = run_to_exit(&wrong, &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("password authentication failed"), "{err}");
    // (The user may be masked as `***` by the output's userinfo redaction.)
    assert!(
        err.contains(&format!("127.0.0.1:{}/secret", pg.port)),
        "names the database: {err}"
    );
    assert!(!err.contains("Wr0ngPa55"), "{err}");
    // The right one from a file: serves; then the database goes away and comes back.
    let pwfile = dir.path().join("pw");
    std::fs::write(&pwfile, format!("{PG_PASSWORD}\n")).unwrap();
    let mut agg = Binary::start(
        Path::new(&pg.url("secret")),
        &[
            "--allow-open-loopback",
            "--db-password-file",
            pwfile.to_str().unwrap(),
        ],
    );
    let mut answers = String::new();
    rt().block_on(async {
        let r = one("n1", &[("harbor.local", Verdict::Ok)]);
        let resp = post(&agg.base, None, r.to_json()).await;
        assert_eq!(resp.status(), 200);
        answers.push_str(&resp.text().await.unwrap());
    });
    pg.stop();
    rt().block_on(async {
        let r = one("n1", &[("harbor.local", Verdict::Ok)]);
        let resp = post(&agg.base, None, r.to_json()).await;
        assert_eq!(resp.status(), 503);
        answers.push_str(&resp.text().await.unwrap());
        let h = http()
            .get(format!("{}/healthz", agg.base))
            .send()
            .await
            .unwrap();
        assert_eq!(h.status(), 503);
        answers.push_str(&h.text().await.unwrap());
    });
    let log = agg.kill9_and_drain();
    assert!(log.contains("report not stored"), "{log}");
    for text in [&answers, &log] {
        assert!(!text.contains(PG_PASSWORD), "the password leaks: {text}");
    }
}

/// The aggregator binary on `db` with `args`, run to its exit: (exit code, stderr).
fn run_to_exit(db: &str, args: &[&str]) -> (Option<i32>, String) {
    let out = std::process::Command::new(bin())
        .args([
            "aggregator",
            "--listen",
            "127.0.0.1:0",
            "--allow-open-loopback",
            "--db",
            db,
        ])
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Post one report for `node` to `agg` and see it stored in `db`, with none of the
/// aggregator's connections in clear.
async fn stored_over_tls(pg: &Postgres, db: &str, agg: &Binary, token: Option<&str>, node: &str) {
    let r = one(node, &[("harbor.local", Verdict::Ok)]);
    let resp = post(&agg.base, token, r.to_json()).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    assert_eq!(pg.query(db, "SELECT node FROM nodes").await, vec![node]);
    let plain = pg
        .query(
            "postgres",
            "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid)
             WHERE NOT ssl AND application_name = 'regtrust-aggregator'",
        )
        .await;
    assert_eq!(plain, vec!["0"], "a connection in clear");
}

/// TLS through rustls against Debian's PostgreSQL with `ssl=on` and a certificate from a CA
/// made now: verify-full with that CA serves and stores a report over TLS; a wrong CA, a
/// host the certificate does not name (verify-full) and sslmode=require against a server
/// without TLS each stop the start with exit 2 and a reason naming the database, never the
/// password; verify-ca accepts the certificate under the other name.
#[test]
fn tls_verify_full_serves_and_a_wrong_ca_name_or_plain_server_is_refused() {
    let pki = support::pki::Pki::new();
    let ca = pki.root("db-ca");
    let other = pki.root("other-ca");
    let leaf = pki.server(&ca, "db", &["127.0.0.1", "db.regtrust.test"]);
    let pg = Postgres::start_tls(&leaf.chain_path, &leaf.key_path);
    rt().block_on(pg.create_db("tls"));
    let dir = tempfile::tempdir().unwrap();
    let pwfile = dir.path().join("pw");
    std::fs::write(&pwfile, format!("{PG_PASSWORD}\n")).unwrap();
    let port = pg.port;
    let ca_file = ca.cert_path.to_str().unwrap();
    let verify_full = format!("postgres://{PG_USER}@127.0.0.1:{port}/tls?sslmode=verify-full");

    // The right CA: serves, stores, over TLS.
    let mut agg = Binary::start(
        Path::new(&verify_full),
        &[
            "--allow-open-loopback",
            "--db-password-file",
            pwfile.to_str().unwrap(),
            "--db-ca-file",
            ca_file,
        ],
    );
    rt().block_on(async {
        stored_over_tls(&pg, "tls", &agg, None, "tls-node").await;
        let tls = pg
            .query(
                "postgres",
                "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid)
                 WHERE ssl AND application_name = 'regtrust-aggregator'",
            )
            .await;
        assert_ne!(tls, vec!["0"], "the aggregator's connections are not TLS");
    });
    let log = agg.kill9_and_drain();
    assert!(!log.contains(PG_PASSWORD), "the password leaks: {log}");

    // A wrong CA: exit 2, naming the database and the certificate problem.
    let with_pw =
        format!("postgres://{PG_USER}:{PG_PASSWORD}@127.0.0.1:{port}/tls?sslmode=verify-full");
    let (code, err) = run_to_exit(
        &with_pw,
        &["--db-ca-file", other.cert_path.to_str().unwrap()],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port}/tls")), "{err}");
    assert!(err.contains("UnknownIssuer"), "{err}");
    assert!(!err.contains(PG_PASSWORD), "the password leaks: {err}");

    // A host the certificate does not name (dialed at 127.0.0.1 through hostaddr).
    let wrong_name = format!(
        "postgres://{PG_USER}:{PG_PASSWORD}@wrong.regtrust.test:{port}/tls?hostaddr=127.0.0.1&sslmode=verify-full"
    );
    let (code, err) = run_to_exit(&wrong_name, &["--db-ca-file", ca_file]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!("wrong.regtrust.test:{port}/tls")),
        "{err}"
    );
    assert!(
        err.contains("not valid for name \"wrong.regtrust.test\""),
        "{err}"
    );
    assert!(!err.contains(PG_PASSWORD), "the password leaks: {err}");
    // verify-ca checks the chain only: the same URL serves.
    let verify_ca = wrong_name.replace("sslmode=verify-full", "sslmode=verify-ca");
    let agg = Binary::start(
        Path::new(&verify_ca),
        &["--allow-open-loopback", "--db-ca-file", ca_file],
    );
    drop(agg);

    // sslmode=require against a server without TLS.
    let plain = Postgres::start();
    rt().block_on(plain.create_db("plain"));
    let require = format!(
        "postgres://{PG_USER}:{PG_PASSWORD}@127.0.0.1:{}/plain?sslmode=require",
        plain.port
    );
    let (code, err) = run_to_exit(&require, &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{}/plain?sslmode=require", plain.port)),
        "{err}"
    );
    assert!(err.contains("server does not support TLS"), "{err}");
    assert!(!err.contains(PG_PASSWORD), "the password leaks: {err}");
}

/// One report PostgreSQL refuses (a NUL character, which a `text` column cannot hold)
/// queued with others in one batch: the batch fails, and is committed report by report,
/// so only that report is refused; the others are stored and nothing of the refused one is.
#[test]
fn a_report_the_database_refuses_does_not_fail_the_rest_of_its_batch() {
    let pg = Postgres::start();
    rt().block_on(async {
        pg.create_db("refuse").await;
        let (store, closer) = Store::open(&pg.target("refuse"), store_opts())
            .await
            .unwrap();
        let good = |n: &str| one(n, &[("harbor.local", Verdict::Ok)]);
        let mut bad = one("bad", &[("harbor.local", Verdict::Expired)]);
        bad.registries[0].message = "expired\u{0}".into();
        let reports = [good("g1"), bad, good("g2")];
        let now = regtrust::aggregator::fleet::now_ms();
        let puts = reports.into_iter().map(|r| {
            let raw = r.to_json();
            store.put(r, raw, now)
        });
        let out = futures_util::future::join_all(puts).await;
        assert!(out[0].is_ok(), "{:?}", out[0]);
        assert!(out[2].is_ok(), "{:?}", out[2]);
        let e = out[1].as_ref().unwrap_err();
        assert!(!e.is_unavailable(), "{e}");
        assert!(e.to_string().contains("SQLSTATE"), "{e}");
        assert_eq!(
            pg.query("refuse", "SELECT node FROM nodes ORDER BY node")
                .await,
            vec!["g1", "g2"]
        );
        assert_eq!(
            pg.query("refuse", "SELECT count(*) FROM events WHERE node = 'bad'")
                .await,
            vec!["0"]
        );
        drop(store);
        closer.finish().await;
    });
}

/// A new node's registry rows are plain INSERTs (no conflict probe); rows left under its
/// name by a node row deleted outside the store (by hand in psql) must not make them fail:
/// the node's report is stored, the rows it names replace the stale ones, the rest go.
#[test]
fn registry_rows_left_by_a_node_deleted_by_hand_do_not_refuse_its_next_report() {
    let pg = Postgres::start();
    rt().block_on(async {
        pg.create_db("orphans").await;
        let (store, closer) = Store::open(&pg.target("orphans"), store_opts())
            .await
            .unwrap();
        let put = |r: Report| {
            let raw = r.to_json();
            store.put(r, raw, regtrust::aggregator::fleet::now_ms())
        };
        put(aged(
            one("n1", &[("a.local", Verdict::Ok), ("b.local", Verdict::Ok)]),
            60,
        ))
        .await
        .unwrap();
        put(one("n2", &[("a.local", Verdict::Ok)])).await.unwrap();
        pg.query("orphans", "DELETE FROM nodes WHERE node = 'n1'")
            .await;
        let rows = "SELECT node || ' ' || registry || ' ' || verdict FROM node_registries ORDER BY node, registry";
        assert_eq!(
            pg.query("orphans", rows).await,
            vec!["n1 a.local ok", "n1 b.local ok", "n2 a.local ok"]
        );
        let out = put(one(
            "n1",
            &[("a.local", Verdict::Expired), ("c.local", Verdict::Ok)],
        ))
        .await;
        assert!(out.is_ok(), "{out:?}");
        assert_eq!(
            pg.query("orphans", rows).await,
            vec!["n1 a.local expired", "n1 c.local ok", "n2 a.local ok"]
        );
        // A node never seen before still takes the plain INSERT, and its rows read back.
        put(one("n3", &[("a.local", Verdict::Ok)])).await.unwrap();
        let n3 = store.node("n3".into()).await.unwrap().expect("n3 stored");
        assert_eq!(n3.row.registries.len(), 1, "{:?}", n3.row.registries);
        drop(store);
        closer.finish().await;
    });
}

/// The chart's PostgreSQL preset (`ci/postgres-values.yaml`: verify-full, the password and the
/// database CA from Secrets) as a kubelet would run it: the aggregator container's env and
/// its Secret volumes, read from the rendering, files at the mount paths (under a temp dir),
/// against a real `ssl=on` PostgreSQL whose certificate names the chart's host,
/// `postgres.db.svc` (dialed at 127.0.0.1 through `hostaddr`, the only change to the URL
/// besides the port). A report is stored over TLS; without the CA the start is refused.
#[test]
fn the_charts_postgres_pod_spec_serves_over_verify_full_tls() {
    use support::manifests::{chart_with, workload};
    let docs = chart_with("postgres-values.yaml");
    let deploy = workload(&docs, "Deployment");
    let pod = &deploy["spec"]["template"]["spec"];
    let container = pod["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "aggregator")
        .expect("the aggregator container");

    let pki = support::pki::Pki::new();
    let ca = pki.root("db-ca");
    let leaf = pki.server(&ca, "db", &["postgres.db.svc"]);
    let pg = Postgres::start_tls(&leaf.chain_path, &leaf.key_path);
    rt().block_on(pg.create_db("regtrust"));

    // Each Secret volume's items written where the container mounts it: the password and
    // the CA the test's database needs; any other Secret (the report token) a token.
    let root = tempfile::tempdir().unwrap();
    let ca_pem = std::fs::read_to_string(&ca.cert_path).unwrap();
    let token = "chart-report-token-0123456789";
    let mounts: Vec<(String, String)> = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_string(),
                m["mountPath"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut secrets_seen = Vec::new();
    for vol in pod["volumes"].as_array().unwrap() {
        let Some(secret) = vol["secret"].as_object() else {
            continue;
        };
        let name = vol["name"].as_str().unwrap();
        let secret_name = secret["secretName"].as_str().unwrap();
        let (_, mount) = mounts
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("volume {name} is not mounted"));
        let dir = root.path().join(mount.trim_start_matches('/'));
        std::fs::create_dir_all(&dir).unwrap();
        for item in secret["items"].as_array().unwrap() {
            let content = match secret_name {
                "regtrust-db" => format!("{PG_PASSWORD}\n"),
                "regtrust-db-ca" => ca_pem.clone(),
                _ => format!("{token}\n"),
            };
            std::fs::write(dir.join(item["path"].as_str().unwrap()), content).unwrap();
        }
        secrets_seen.push(secret_name.to_string());
    }
    for wanted in ["regtrust-db", "regtrust-db-ca"] {
        assert!(
            secrets_seen.iter().any(|s| s == wanted),
            "the pod mounts no Secret {wanted}: {secrets_seen:?}"
        );
    }

    // The container's env, its paths moved under the temp dir; the URL's host dialed here.
    let mut db = String::new();
    let mut env = Vec::new();
    for e in container["env"].as_array().unwrap() {
        let name = e["name"].as_str().unwrap().to_string();
        let Some(value) = e["value"].as_str() else {
            continue;
        };
        if name == "REGTRUST_DB" {
            db = value.to_string();
            continue;
        }
        let value = match mounts.iter().find(|(_, m)| value.starts_with(m.as_str())) {
            Some(_) => root
                .path()
                .join(value.trim_start_matches('/'))
                .to_string_lossy()
                .into_owned(),
            None => value.to_string(),
        };
        env.push((name, value));
    }
    assert_eq!(
        db,
        "postgres://regtrust@postgres.db.svc:5432/regtrust?sslmode=verify-full"
    );
    let db = db.replace(
        "postgres.db.svc:5432/regtrust?",
        &format!("postgres.db.svc:{}/regtrust?hostaddr=127.0.0.1&", pg.port),
    );
    let agg = Binary::start_env(Path::new(&db), &[], &env);
    rt().block_on(stored_over_tls(
        &pg,
        "regtrust",
        &agg,
        Some(token),
        "chart-node",
    ));
    drop(agg);

    // The same pod spec without the CA Secret's file: the server is not trusted.
    let without_ca: Vec<(String, String)> = env
        .iter()
        .filter(|(k, _)| k != "REGTRUST_DB_CA_FILE")
        .cloned()
        .collect();
    assert_ne!(
        without_ca.len(),
        env.len(),
        "the pod spec sets REGTRUST_DB_CA_FILE"
    );
    let out = std::process::Command::new(bin())
        .args(["aggregator", "--listen", "127.0.0.1:0", "--db", &db])
        .envs(without_ca)
        .env_remove("SSL_CERT_FILE")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("UnknownIssuer"), "{err}");
}

/// One replica given a burst of one node's reports at once (queued together, as an agent's
/// retries after a lost connection can be): each is applied in arrival order, none is
/// superseded by a later one committed first, and every flip is one transition. With one
/// queue shared by the writers, they could split a burst and commit the later half first;
/// 30 bursts of 40 reports give that race many chances every run.
#[test]
fn a_burst_of_one_nodes_reports_is_applied_in_arrival_order() {
    let pg = Postgres::start();
    rt().block_on(async {
        pg.create_db("burst").await;
        // Two writers (the default is one): each node's reports must still keep their order.
        let opts = StoreOptions {
            writers: 2,
            ..store_opts()
        };
        let (store, closer) = Store::open(&pg.target("burst"), opts).await.unwrap();
        let mut age = 10_000;
        for burst in 0..30 {
            let reports: Vec<Report> = (0..40)
                .map(|i| {
                    age -= 1;
                    let v = if i % 2 == 0 {
                        Verdict::Ok
                    } else {
                        Verdict::UnknownAuthority
                    };
                    aged(one("burst-node", &[("h1", v)]), age)
                })
                .collect();
            let now = regtrust::aggregator::fleet::now_ms();
            let puts = reports.into_iter().map(|r| {
                let raw = r.to_json();
                store.put(r, raw, now)
            });
            for (i, out) in futures_util::future::join_all(puts)
                .await
                .into_iter()
                .enumerate()
            {
                let out = out.unwrap();
                assert_eq!(
                    out.superseded_by, None,
                    "burst {burst}, report {i}: superseded"
                );
                assert_eq!(out.transitions.len(), 1, "burst {burst}, report {i}");
            }
        }
        drop(store);
        closer.finish().await;
    });
}

/// Schema step 2 where the ALTER for lz4 is refused (here: the aggregator's role does not
/// own the tables a DBA created, as happens with a managed database): the step is recorded
/// anyway, the report documents stay pglz-compressed, and the store serves.
#[test]
fn the_lz4_step_refused_leaves_pglz_and_the_store_serves() {
    let pg = Postgres::start();
    rt().block_on(async {
        pg.create_db("managed").await;
        // The DBA's tables, at version 1, owned by the superuser; the aggregator's role may
        // read and write them (and create in the schema), not alter them.
        let (store, closer) = Store::open(&pg.target("managed"), store_opts())
            .await
            .unwrap();
        drop(store);
        closer.finish().await;
        pg.query(
            "managed",
            "DELETE FROM regtrust_schema WHERE version = 2;
             ALTER TABLE nodes ALTER COLUMN report SET COMPRESSION pglz;
             CREATE ROLE limited LOGIN PASSWORD 'limited-pw-1';
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO limited;
             GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO limited;
             GRANT USAGE, CREATE ON SCHEMA public TO limited",
        )
        .await;
        let url = format!(
            "postgres://limited:limited-pw-1@127.0.0.1:{}/managed",
            pg.port
        );
        let target = regtrust::aggregator::store::DbTarget::Postgres(Box::new(
            regtrust::aggregator::store::postgres::Target::parse(&url, None, None, None).unwrap(),
        ));
        let (store, closer) = Store::open(&target, store_opts())
            .await
            .expect("the store opens without lz4");
        assert_eq!(
            pg.query(
                "managed",
                "SELECT version FROM regtrust_schema ORDER BY version"
            )
            .await,
            vec!["1", "2"]
        );
        assert_eq!(pg.query("managed", REPORT_COMPRESSION).await, vec!["p"]);
        let r = one("managed-node", &[("harbor.local", Verdict::Ok)]);
        let raw = r.to_json();
        let out = store
            .put(r, raw, regtrust::aggregator::fleet::now_ms())
            .await
            .expect("stored");
        assert_eq!(out.superseded_by, None);
        assert_eq!(
            pg.query("managed", "SELECT node FROM nodes").await,
            vec!["managed-node"]
        );
        drop(store);
        closer.finish().await;
    });
}

/// The batch's reads run with generic plans (made once per connection, perhaps while the
/// tables are still empty) under `BY_KEY`: their plans must read through indexes only,
/// else they scan whole tables once the fleet has grown. And the claim's fleet count runs
/// only in a batch that created a node. Checked on the schema the store creates, with the
/// settings and texts the store sends.
#[test]
fn the_batch_reads_plan_by_key_on_empty_tables() {
    use regtrust::aggregator::store::postgres::{BEGIN_GENERIC, BY_KEY, CLAIM, HEADS, SHARED};
    let pg = Postgres::start();
    rt().block_on(async {
        pg.create_db("plans").await;
        let (store, closer) = Store::open(&pg.target("plans"), store_opts())
            .await
            .unwrap();
        drop(store);
        closer.finish().await;
        let explain = "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)";
        let lines = pg
            .query(
                "plans",
                &format!(
                    "PREPARE claim(text[]) AS {CLAIM};
                     PREPARE heads(text[]) AS {HEADS};
                     PREPARE shared(text[], text[]) AS {SHARED};
                     {BEGIN_GENERIC};
                     SELECT '-- claim, creating';
                     {explain} EXECUTE claim('{{n1,n2}}');
                     SELECT '-- claim, nothing created';
                     {explain} EXECUTE claim('{{n1,n2}}');
                     {BY_KEY};
                     SELECT '-- heads';
                     {explain} EXECUTE heads('{{n1,n2}}');
                     SELECT '-- shared';
                     {explain} EXECUTE shared('{{h1}}', '{{n1}}');
                     ROLLBACK"
                ),
            )
            .await;
        let mut plans: BTreeMap<String, String> = BTreeMap::new();
        let mut at = String::new();
        for l in lines {
            if let Some(name) = l.strip_prefix("-- ") {
                at = name.to_string();
            } else {
                plans
                    .entry(at.clone())
                    .or_default()
                    .push_str(&format!("{l}\n"));
            }
        }
        let plan = |name: &str| plans.get(name).cloned().unwrap_or_default();
        let creating = plan("claim, creating");
        assert!(
            creating.contains("Seq Scan on nodes (actual rows=0 loops=1)"),
            "a claim that creates nodes counts the fleet:\n{creating}"
        );
        let idle = plan("claim, nothing created");
        assert!(
            idle.contains("Seq Scan on nodes (never executed)"),
            "a claim that creates nothing must not scan the fleet:\n{idle}"
        );
        let heads = plan("heads");
        assert!(
            !heads.contains("Seq Scan")
                && heads.contains("nodes_pkey")
                && heads.contains("node_registries_pkey"),
            "the heads read must go through both primary keys:\n{heads}"
        );
        let shared = plan("shared");
        assert!(
            !shared.contains("Seq Scan") && shared.contains("node_registries_registry"),
            "the shared read must probe the registry index:\n{shared}"
        );
    });
}

/// Retention and deletes wait for a batch that holds a node's row (the store's own `CLAIM`)
/// and decide on what it committed: here a transaction holding n1's row, as a batch would
/// while n1 reports, makes both wait (seen in `pg_locks`), then writes what such a batch
/// writes and commits.
/// Retention must then spare n1, which reported meanwhile (and remove the silent n2), and
/// the delete must remove n1 with every registry row the batch wrote (no row left behind
/// under its name). Several rounds, each losing the race on purpose.
#[test]
fn retention_and_deletes_wait_for_a_reporting_nodes_lock() {
    use regtrust::aggregator::store::postgres::CLAIM;
    let pg = Postgres::start();
    rt().block_on(async {
        pg.create_db("locks").await;
        let (store, closer) = Store::open(&pg.target("locks"), store_opts())
            .await
            .unwrap();
        let store = Arc::new(store);
        let (client, conn) =
            tokio_postgres::connect(&pg.url_with_password("locks"), tokio_postgres::NoTls)
                .await
                .unwrap();
        let conn = tokio::spawn(conn);
        let waiting = "SELECT count(*) FROM pg_locks WHERE NOT granted";
        let wait_for_waiter = || async {
            for _ in 0..500 {
                if pg.query("locks", waiting).await == vec!["1"] {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            panic!("nobody waited for the claimed node row within 10 s");
        };
        let old = regtrust::aggregator::fleet::now_ms() - 2 * 3600 * 1000;
        for round in 0..5 {
            let (n1, n2) = (format!("n1-{round}"), format!("n2-{round}"));
            for n in [&n1, &n2] {
                let r = aged(one(n, &[("a.local", Verdict::Ok)]), 7200);
                let raw = r.to_json();
                store.put(r, raw, old).await.unwrap();
            }

            // Retention against a batch of n1.
            client.batch_execute("BEGIN").await.unwrap();
            client.query(CLAIM, &[&vec![n1.as_str()]]).await.unwrap();
            let prune = tokio::spawn({
                let store = store.clone();
                async move { store.prune(regtrust::aggregator::fleet::now_ms()).await }
            });
            wait_for_waiter().await;
            client
                .execute(
                    "UPDATE nodes SET received_ms = $2 WHERE node = $1",
                    &[&n1, &regtrust::aggregator::fleet::now_ms()],
                )
                .await
                .unwrap();
            client.batch_execute("COMMIT").await.unwrap();
            let (_, nodes) = prune.await.unwrap().unwrap();
            assert_eq!(nodes, 1, "round {round}: only the silent node goes");
            let left = pg
                .query(
                    "locks",
                    &format!("SELECT node FROM nodes WHERE node IN ('{n1}', '{n2}')"),
                )
                .await;
            assert_eq!(left, vec![n1.clone()], "round {round}");

            // A delete against a batch of n1 that adds a registry row.
            client.batch_execute("BEGIN").await.unwrap();
            client.query(CLAIM, &[&vec![n1.as_str()]]).await.unwrap();
            let delete = tokio::spawn({
                let (store, n1) = (store.clone(), n1.clone());
                async move { store.delete(n1).await }
            });
            wait_for_waiter().await;
            client
                .execute(
                    "INSERT INTO node_registries VALUES ($1, 'b.local', 'ok', 0, '', '', '')",
                    &[&n1],
                )
                .await
                .unwrap();
            client.batch_execute("COMMIT").await.unwrap();
            assert!(
                delete.await.unwrap().unwrap(),
                "round {round}: n1 was known"
            );
            let rows = pg
                .query(
                    "locks",
                    &format!("SELECT registry FROM node_registries WHERE node IN ('{n1}', '{n2}')"),
                )
                .await;
            assert!(rows.is_empty(), "round {round}: rows left: {rows:?}");
        }
        drop(client);
        let _ = conn.await;
        drop(store);
        closer.finish().await;
    });
}
