//! A private PostgreSQL server for the aggregator's tests and bench: Debian's `postgresql`
//! binaries (`initdb`, `postgres`), a data dir in a temp dir, a free port on 127.0.0.1,
//! password (scram) authentication, started and stopped by PID. As root the server runs
//! as the `postgres` user (`setpriv`), since PostgreSQL refuses to run as root.
//! `initdb` runs once per checkout (a template data dir under the target dir, reused);
//! each server copies it, so a server starts in well under a second.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const PG_USER: &str = "regtrust";
pub const PG_PASSWORD: &str = "pg-Pa55word-7f3a";

fn bin_dir() -> PathBuf {
    for v in ["15", "16", "17", "14", "13"] {
        let d = PathBuf::from(format!("/usr/lib/postgresql/{v}/bin"));
        if d.join("initdb").exists() && d.join("postgres").exists() {
            return d;
        }
    }
    panic!("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: install Debian's postgresql (apt-get install postgresql; ci/install-deps.sh does)");
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("run id -u");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// `cmd` as the postgres user when we are root.
fn as_pg(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=postgres",
            "--regid=postgres",
            "--clear-groups",
            "--",
        ])
        .arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn chown_pg(path: &Path) {
    if is_root() {
        let st = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(path)
            .status()
            .unwrap();
        assert!(st.success(), "chown {}", path.display());
    }
}

fn chmod(path: &Path, mode: &str) {
    let st = Command::new("chmod").arg(mode).arg(path).status().unwrap();
    assert!(st.success());
}

/// The template data dir, made once per machine: in the system temp dir, which the
/// `postgres` user can reach (a checkout under /root could not be), built in a private
/// dir and renamed into place, so two test binaries starting at once cannot clash.
fn template() -> PathBuf {
    static T: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        let root = std::env::temp_dir().join(format!(
            "regtrust-pg-template-{}",
            bin_dir()
                .parent()
                .and_then(|p| p.file_name())
                .map_or("x".into(), |v| v.to_string_lossy().into_owned())
        ));
        let data = root.join("data");
        if data.join("regtrust-template-ok").exists() {
            return data;
        }
        let build = tempfile::Builder::new()
            .prefix("regtrust-pg-template-build-")
            .tempdir()
            .unwrap()
            .keep();
        chmod(&build, "0755");
        let pwfile = build.join("pw");
        std::fs::write(&pwfile, PG_PASSWORD).unwrap();
        chown_pg(&build);
        let out = as_pg(&bin_dir().join("initdb"))
            .arg("-D")
            .arg(build.join("data"))
            .args([
                "-U",
                PG_USER,
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(build.join("data").join("regtrust-template-ok"), "").unwrap();
        // Another binary may have won the race: then its template is used, ours removed.
        if std::fs::rename(&build, &root).is_err() {
            let _ = std::fs::remove_dir_all(&build);
        }
        assert!(
            data.join("regtrust-template-ok").exists(),
            "no PostgreSQL template at {}",
            data.display()
        );
        data
    })
    .clone()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One running (or stopped) server; killed on drop.
pub struct Postgres {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// "ready" lines seen in the (appended) log so far.
    readies: usize,
    /// Extra `-c NAME=VALUE` settings (TLS).
    settings: Vec<String>,
}

impl Postgres {
    pub fn start() -> Postgres {
        Postgres::start_with(None)
    }

    /// A server with `ssl=on` presenting `chain` (PEM, leaf first) with `key`; clients
    /// may still connect in clear (the template's `pg_hba.conf` has `host` lines).
    pub fn start_tls(chain: &Path, key: &Path) -> Postgres {
        Postgres::start_with(Some((chain, key)))
    }

    /// A server that counts time per statement (`pg_stat_statements`, shipped with
    /// Debian's postgresql): the bench prints where the database's time went.
    pub fn start_profiled() -> Postgres {
        let mut pg = Postgres::start_with(None);
        pg.stop();
        pg.settings.extend([
            "shared_preload_libraries=pg_stat_statements".to_string(),
            "pg_stat_statements.track=all".to_string(),
            "pg_stat_statements.track_planning=on".to_string(),
        ]);
        // More server settings for an experiment (`NAME=VALUE`, space-separated).
        if let Ok(extra) = std::env::var("REGTRUST_BENCH_PG_SETTINGS") {
            pg.settings
                .extend(extra.split_whitespace().map(str::to_string));
        }
        pg.resume();
        pg
    }

    /// The statements that took the most server time (executing and planning), one line
    /// each (after `start_profiled`).
    pub async fn top_statements(&self, db: &str, n: usize) -> Vec<String> {
        self.query(db, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            .await;
        self.query(
            db,
            &format!(
                "SELECT round(total_exec_time)::text || ' ms (+' || round(total_plan_time) || ' ms planning), '
                   || calls || ' calls, ' || rows || ' rows: '
                   || left(regexp_replace(query, '[[:space:]]+', ' ', 'g'), 100)
                 FROM pg_stat_statements ORDER BY total_exec_time + total_plan_time DESC LIMIT {n}"
            ),
        )
        .await
    }

    fn start_with(tls: Option<(&Path, &Path)>) -> Postgres {
        let tpl = template();
        let dir = tempfile::tempdir().unwrap();
        chmod(dir.path(), "0755");
        let data = dir.path().join("data");
        let st = Command::new("cp")
            .arg("-a")
            .arg(&tpl)
            .arg(&data)
            .status()
            .unwrap();
        assert!(st.success(), "copying the template data dir");
        let mut settings = Vec::new();
        if let Some((chain, key)) = tls {
            let (crt, k) = (dir.path().join("server.crt"), dir.path().join("server.key"));
            std::fs::copy(chain, &crt).unwrap();
            std::fs::copy(key, &k).unwrap();
            // PostgreSQL refuses a key file others can read.
            chmod(&k, "0600");
            settings.push("ssl=on".to_string());
            settings.push(format!("ssl_cert_file={}", crt.display()));
            settings.push(format!("ssl_key_file={}", k.display()));
        }
        chown_pg(dir.path());
        chmod(&data, "0700");
        let mut pg = Postgres {
            port: free_port(),
            dir,
            child: None,
            readies: 0,
            settings,
        };
        pg.resume();
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Start the server (again) on its port and wait until it answers.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .unwrap();
        let child = as_pg(&bin_dir().join("postgres"))
            .arg("-D")
            .arg(self.data())
            .args([
                "-p",
                &self.port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
            ])
            .arg("-c")
            .arg(format!(
                "unix_socket_directories={}",
                self.dir.path().display()
            ))
            .args(["-c", "max_connections=200", "-c", "fsync=on"])
            .args(self.settings.iter().flat_map(|s| ["-c", s.as_str()]))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start postgres");
        self.child = Some(child);
        // Ready once the server says so in its log (no client runtime needed here, so this
        // can be called from inside a test's async code through a plain thread).
        let deadline = Instant::now() + Duration::from_secs(30);
        let before = self.readies;
        loop {
            let log = self.log();
            let readies = log.matches("ready to accept connections").count();
            if readies > before {
                self.readies = readies;
                return;
            }
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("postgres exited {st}: {log}");
            }
            assert!(
                Instant::now() < deadline,
                "postgres did not get ready within 30 s: {log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The postmaster's PID (0 when stopped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Fast shutdown (SIGINT to the postmaster, by PID), waited for.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-INT", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }

    /// The URL of `db` without the password.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{PG_USER}@127.0.0.1:{}/{db}", self.port)
    }

    pub fn url_with_password(&self, db: &str) -> String {
        format!(
            "postgres://{PG_USER}:{PG_PASSWORD}@127.0.0.1:{}/{db}",
            self.port
        )
    }

    async fn try_query(
        &self,
        db: &str,
        sql: &str,
    ) -> Result<Vec<tokio_postgres::SimpleQueryMessage>, String> {
        let (client, conn) =
            tokio_postgres::connect(&self.url_with_password(db), tokio_postgres::NoTls)
                .await
                .map_err(|e| e.to_string())?;
        let task = tokio::spawn(conn);
        let r = client.simple_query(sql).await.map_err(|e| e.to_string());
        drop(client);
        let _ = task.await;
        r
    }

    /// Run `sql` on `db` and return the first column of every row.
    pub async fn query(&self, db: &str, sql: &str) -> Vec<String> {
        self.try_query(db, sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => {
                    Some(r.get(0).unwrap_or("NULL").to_string())
                }
                _ => None,
            })
            .collect()
    }

    /// A new, empty database.
    pub async fn create_db(&self, name: &str) {
        self.query("postgres", &format!("CREATE DATABASE {name}"))
            .await;
    }

    /// The store target for `db`, password from the URL.
    pub fn target(&self, db: &str) -> regtrust::aggregator::store::DbTarget {
        regtrust::aggregator::store::DbTarget::Postgres(Box::new(
            regtrust::aggregator::store::postgres::Target::parse(
                &self.url_with_password(db),
                None,
                None,
                None,
            )
            .unwrap(),
        ))
    }
}

impl Drop for Postgres {
    /// Immediate shutdown (SIGQUIT, by PID): the server and its backends exit at once.
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-QUIT", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }
}
