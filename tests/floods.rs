//! Issue 9 point 3's proof, with the real binary under `ulimit -n 1024` (soft and hard, as
//! a container's default): 1,100 TCP connections from another loopback address
//! (127.0.0.2), half idle and half stuck in the middle of a request head, against the
//! agent's listener and against the aggregator's. While flooded, the agent's node loop still
//! restores a deleted `ca.crt` (within 1 s, a deadline wait) and answers `/healthz`, and an
//! agent's push still lands at the aggregator; afterwards every flood connection has been
//! closed by the server (header-read timeout). Without the bounds the flood takes every
//! descriptor (`Too many open files`) or every connection slot.

mod agent_util;
mod aggregator_support;
mod support;

use agent_util::{all_hold, new_ca, Node, SecretVolume, DEADLINE};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::wait_for;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const HOST: &str = "harbor.test";
const FLOOD: usize = 1100;
const FLOODER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// Longer than both servers' header-read timeouts (5 s and 10 s) with room for a slow CI.
const CLOSE_DEADLINE: Duration = Duration::from_secs(40);

/// `regtrust ARGS` under `ulimit -n 1024`, output to `log`; killed by PID on drop.
struct Limited {
    child: Child,
    log: PathBuf,
}

impl Limited {
    fn spawn(args: &[&str], log: &Path) -> Limited {
        let file = std::fs::File::create(log).unwrap();
        let child = Command::new("sh")
            .arg("-c")
            .arg("ulimit -n 1024 && exec \"$0\" \"$@\"")
            .arg(env!("CARGO_BIN_EXE_regtrust"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("start regtrust under sh");
        Limited {
            child,
            log: log.to_path_buf(),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The `addr` field of the first JSON log line whose message is `message`.
    fn wait_addr(&mut self, message: &str) -> SocketAddr {
        wait_for(&format!("the {message:?} log line"), DEADLINE, || {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("regtrust exited ({status}):\n{}", self.log());
            }
            self.log().lines().find_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).ok()?;
                if !v["fields"]["message"].as_str()?.starts_with(message) {
                    return None;
                }
                v["fields"]["addr"].as_str()?.parse().ok()
            })
        })
    }
}

impl Drop for Limited {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The test process itself holds the flood: its soft fd limit goes up to the hard one.
fn room_for_the_flood() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let want = (FLOOD as u64) + 512;
    let mut soft = regtrust::listen::raise_nofile_limit().unwrap_or(u64::MAX);
    if soft < want {
        // Root (CI) may raise the hard limit too.
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(want),
                maximum: Some(want),
            },
        );
        soft = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    }
    assert!(
        soft >= want,
        "this test holds {FLOOD} sockets: raise the hard open-file limit (ulimit -Hn) above {}",
        FLOOD + 512
    );
}

/// Open `FLOOD` connections from 127.0.0.2 to `target`; every other one sends half a
/// request head. They are opened 64 at a time, so that each one reaches the server's accept
/// queue (a burst past the backlog leaves client-side "connected" sockets the server never
/// heard of); a connection the server never accepts is given up after a while. The rest are
/// held open by the returned sockets.
async fn flood(target: SocketAddr) -> Vec<tokio::net::TcpStream> {
    let mut out = Vec::new();
    for batch in (0..FLOOD).collect::<Vec<_>>().chunks(64) {
        out.extend(flood_batch(target, batch).await);
    }
    assert!(
        out.len() >= FLOOD / 2,
        "only {} flood connections connected",
        out.len()
    );
    out
}

async fn flood_batch(target: SocketAddr, batch: &[usize]) -> Vec<tokio::net::TcpStream> {
    let mut set = tokio::task::JoinSet::new();
    for &i in batch {
        set.spawn(async move {
            let sock = tokio::net::TcpSocket::new_v4().ok()?;
            sock.bind(SocketAddr::new(FLOODER, 0)).ok()?;
            let mut s = tokio::time::timeout(Duration::from_secs(3), sock.connect(target))
                .await
                .ok()?
                .ok()?;
            if i % 2 == 1 {
                let _ = s
                    .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                    .await;
            }
            Some(s)
        });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        if let Ok(Some(s)) = r {
            out.push(s);
        }
    }
    out
}

/// Wait until the server has closed every flood connection (EOF or reset).
async fn all_closed(streams: Vec<tokio::net::TcpStream>) -> usize {
    let mut set = tokio::task::JoinSet::new();
    for mut s in streams {
        set.spawn(async move {
            let mut buf = [0u8; 512];
            let end = tokio::time::Instant::now() + CLOSE_DEADLINE;
            loop {
                match tokio::time::timeout_at(end, s.read(&mut buf)).await {
                    Err(_) => return false,
                    Ok(Ok(0)) | Ok(Err(_)) => return true,
                    // A 408 or 400 answer before the close.
                    Ok(Ok(_)) => continue,
                }
            }
        });
    }
    let mut open = 0;
    while let Some(r) = set.join_next().await {
        if !r.unwrap_or(false) {
            open += 1;
        }
    }
    open
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_flooded_agent_still_restores_its_cas_and_answers() {
    room_for_the_flood();
    let node = Node::new();
    let inputs = tempfile::tempdir().unwrap();
    let ca = new_ca("flood-ca");
    let vol = SecretVolume::create(
        &inputs.path().join("harbor-ca"),
        &[("ca.crt", ca.pem.as_bytes())],
    );
    let ca_flag = format!("{HOST}={}", vol.path().display());
    let root = node.path().display().to_string();
    let mut agent = Limited::spawn(
        &[
            "--log-format",
            "json",
            "agent",
            "--ca",
            &ca_flag,
            "--host-root",
            &root,
            "--listen",
            "127.0.0.1:0",
            "--probe-interval",
            "10m",
            "--resync-interval",
            "10m",
            "--node-name",
            "flooded-node",
        ],
        &inputs.path().join("agent.log"),
    );
    let addr = agent.wait_addr("agent started");
    let files = node.ca_files(HOST);
    wait_for("the CAs installed", DEADLINE, || {
        all_hold(&files, &ca).then_some(())
    });

    let rt = runtime();
    let streams = rt.block_on(flood(addr));

    // The node loop still has descriptors: a deleted ca.crt is back within 1 s.
    for (i, f) in files.iter().enumerate() {
        std::fs::remove_file(f).unwrap();
        wait_for(
            &format!("restore #{i} of {} under the flood", f.display()),
            Duration::from_secs(1),
            || all_hold(&files, &ca).then_some(()),
        );
    }
    // And kubelet's probe (another address) still gets an answer.
    let (status, body) = agent_util::http_get(addr, "/healthz");
    assert_eq!((status, body.as_str()), (200, "ok\n"));

    // Idle and half-sent connections are closed by the agent (header-read timeout).
    let open = rt.block_on(all_closed(streams));
    assert_eq!(open, 0, "flood connections still open:\n{}", agent.log());
    let log = agent.log();
    assert!(!log.contains("Too many open files"), "{log}");
    assert!(!log.contains("no CA was installed before"), "{log}");
}

#[test]
fn a_flooded_aggregator_still_takes_an_agents_push() {
    room_for_the_flood();
    let tmp = tempfile::tempdir().unwrap();
    let (write, read) = aggregator_support::token_files(tmp.path());
    let db = tmp.path().join("fleet.db");
    let mut aggregator = Limited::spawn(
        &[
            "--log-format",
            "json",
            "aggregator",
            "--listen",
            "127.0.0.1:0",
            "--db",
            &db.display().to_string(),
            "--token-file",
            &write.display().to_string(),
            "--read-token-file",
            &read.display().to_string(),
        ],
        &tmp.path().join("aggregator.log"),
    );
    let addr = aggregator.wait_addr("aggregator listening");

    let rt = runtime();
    let streams = rt.block_on(flood(addr));

    // A real agent pushes through the flood.
    let node = Node::new();
    let root = node.path().display().to_string();
    let mut agent = Limited::spawn(
        &[
            "--log-format",
            "json",
            "agent",
            "--registry",
            HOST,
            "--host-root",
            &root,
            "--listen",
            "127.0.0.1:0",
            "--node-name",
            "pushing-node",
            "--report-url",
            &format!("http://{addr}/api/v1/reports"),
            "--report-token-file",
            &write.display().to_string(),
        ],
        &tmp.path().join("agent.log"),
    );
    agent.wait_addr("agent started");
    let url = format!("http://{addr}/api/v1/nodes");
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let end = tokio::time::Instant::now() + DEADLINE;
        loop {
            let got = client
                .get(&url)
                .bearer_auth(aggregator_support::READ_TOKEN)
                .send()
                .await;
            if let Ok(resp) = got {
                let body = resp.text().await.unwrap_or_default();
                if body.contains("\"pushing-node\"") {
                    break;
                }
            }
            assert!(
                tokio::time::Instant::now() < end,
                "the agent's push never landed under the flood:\nagent:\n{}\naggregator:\n{}",
                agent.log(),
                aggregator.log()
            );
            // Poll interval of the wait, not a synchronisation.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });

    let open = rt.block_on(all_closed(streams));
    assert_eq!(
        open,
        0,
        "flood connections still open:\n{}",
        aggregator.log()
    );
    assert!(
        !aggregator.log().contains("Too many open files"),
        "{}",
        aggregator.log()
    );
}
