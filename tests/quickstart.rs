//! `make demo` (scripts/quickstart.sh) stopped as an operator stops it (issue 15 point 7):
//! Ctrl-C at a terminal ends `make` with exit 0 and no `make: ***` line, and the registry,
//! aggregator and agent it started are gone; outside a terminal, SIGINT to the script's
//! process group (a CI cancel, `timeout -s INT`) ends it with exit 0 and the same cleanup.
//!
//! The terminal is a real pseudo-terminal (util-linux `script`, which makes the command the
//! session leader with the pty as its controlling terminal): the test types Ctrl-C into it
//! and the line discipline decides what that becomes, as it does for a person. GNU make
//! re-raises any SIGINT it receives once its recipe ends, whatever the recipe's status, so
//! the script turns the terminal's ISIG off and reads Ctrl-C as a key (README, Quick start).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(120);

/// Everything the child printed so far, read by a thread as it arrives.
fn collect(stream: impl std::io::Read + Send + 'static) -> Arc<Mutex<String>> {
    let out = Arc::new(Mutex::new(String::new()));
    let sink = out.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
    out
}

fn wait_until(
    what: &str,
    child: &mut Child,
    out: &Mutex<String>,
    mut ok: impl FnMut(&str) -> bool,
) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if ok(&out.lock().unwrap()) {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("exited ({status}) before {what}:\n{}", out.lock().unwrap());
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}:\n{}",
            out.lock().unwrap()
        );
        std::thread::park_timeout(Duration::from_millis(100));
    }
}

fn wait_exit(child: &mut Child, out: &Mutex<String>) -> std::process::ExitStatus {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "still running after the stop:\n{}",
            out.lock().unwrap()
        );
        std::thread::park_timeout(Duration::from_millis(100));
    }
}

/// The processes whose working directory is under `dir` (the script runs its parts from
/// its scratch dir, which it makes under `$TMPDIR`): pid and command line.
fn processes_under(dir: &Path) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cwd) = std::fs::read_link(e.path().join("cwd")) else {
            continue;
        };
        if cwd.starts_with(dir) {
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            out.push((pid, cmdline.trim().to_string()));
        }
    }
    out
}

/// The registry, the aggregator and the agent are up; their pids and command lines.
fn demo_parts(tmp: &Path) -> Vec<(u32, String)> {
    let parts = processes_under(tmp);
    for want in [
        "docker-registry serve",
        "regtrust aggregator",
        "regtrust agent",
    ] {
        assert!(
            parts.iter().any(|(_, c)| c.contains(want)),
            "no {want:?} among {parts:?}"
        );
    }
    parts
}

/// Each recorded process is gone (its pid free, or reused by another command).
fn assert_gone(parts: &[(u32, String)]) {
    for (pid, cmdline) in parts {
        let now = std::fs::read(format!("/proc/{pid}/cmdline")).ok().map(|c| {
            String::from_utf8_lossy(&c)
                .replace('\0', " ")
                .trim()
                .to_string()
        });
        assert!(
            now.as_deref() != Some(cmdline.as_str()),
            "still running: {pid} {cmdline}"
        );
    }
}

/// No scratch dir is left in `tmp`.
fn assert_scratch_removed(tmp: &Path) {
    let left: Vec<PathBuf> = std::fs::read_dir(tmp)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains("regtrust-quickstart."))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// The demo's environment: this build of regtrust, scratch dirs in `tmp`, and nothing of
/// a make that may be running the tests (its jobserver fds are not ours).
fn demo_env(c: &mut Command, tmp: &Path) {
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("REGTRUST_BIN", env!("CARGO_BIN_EXE_regtrust"))
        .env("TMPDIR", tmp)
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("MAKELEVEL")
        .env_remove("ARGS");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("REGTRUST_") && k != "REGTRUST_BIN" {
            c.env_remove(k);
        }
    }
}

#[test]
fn ctrl_c_at_a_terminal_ends_make_demo_with_exit_0() {
    let tmp = tempfile::Builder::new()
        .prefix("regtrust-demo-tty-")
        .tempdir()
        .unwrap();
    let mut c = Command::new("script");
    // -e: script exits with make's status; -f: output as it comes; -q: no banner.
    c.args(["-qefc", "make demo", "/dev/null"]);
    demo_env(&mut c, tmp.path());
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("script (Debian package bsdutils)");
    // The pty carries make's stdout and stderr both; script's own errors come on stderr.
    let out = collect(child.stdout.take().unwrap());
    let err = collect(child.stderr.take().unwrap());
    wait_until("the demo to be up", &mut child, &out, |o| {
        o.contains("Everything keeps running; Ctrl-C stops it")
    });
    let parts = demo_parts(tmp.path());

    // Ctrl-C, typed at the terminal.
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"\x03").unwrap();
    stdin.flush().unwrap();
    let status = wait_exit(&mut child, &out);
    drop(stdin);
    let shown = format!("{}{}", out.lock().unwrap(), err.lock().unwrap());
    assert_eq!(status.code(), Some(0), "{status}:\n{shown}");
    assert!(shown.contains("stopping"), "{shown}");
    for line in shown.lines() {
        assert!(
            !line.contains("make: ***") && !line.contains("Interrupt"),
            "{line}\n{shown}"
        );
    }
    assert_gone(&parts);
    assert_scratch_removed(tmp.path());
}

#[test]
fn sigint_to_the_process_group_outside_a_terminal_ends_the_demo_with_exit_0() {
    let tmp = tempfile::Builder::new()
        .prefix("regtrust-demo-notty-")
        .tempdir()
        .unwrap();
    let mut c = Command::new("./scripts/quickstart.sh");
    demo_env(&mut c, tmp.path());
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let out = collect(child.stdout.take().unwrap());
    let err = collect(child.stderr.take().unwrap());
    wait_until("the demo to be up", &mut child, &out, |o| {
        o.contains("Everything keeps running; Ctrl-C (SIGINT) or SIGTERM stops it")
    });
    let parts = demo_parts(tmp.path());
    let group = format!("-{}", child.id());
    let kill = Command::new("kill")
        .args(["-INT", "--", &group])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = wait_exit(&mut child, &out);
    let shown = format!("{}{}", out.lock().unwrap(), err.lock().unwrap());
    assert_eq!(status.code(), Some(0), "{status}:\n{shown}");
    assert_gone(&parts);
    assert_scratch_removed(tmp.path());
}
