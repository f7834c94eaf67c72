//! Whole-tree tests of the trust writers: the host root before, the inputs, the host root
//! after, compared file by file (STYLE: spegel's mirror_test, done with atomic writes).
//! Every test also checks that nothing was written outside the trust dirs and the state dir.

use regtrust::report::{Report, TrustState};
use regtrust::sync::{sync_once, CaSpec, Config};
use regtrust::trust::Runtime;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// One entry of a tree snapshot: kind, mode, content (files) or target (links), mtime.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    kind: char,
    mode: u32,
    body: Vec<u8>,
    mtime_ns: i128,
}

type Tree = BTreeMap<PathBuf, Node>;

fn snapshot(root: &Path) -> Tree {
    let mut out = Tree::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Tree) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        let m = fs::symlink_metadata(&p).unwrap();
        let rel = p.strip_prefix(root).unwrap().to_path_buf();
        // The state dir's lock and kept copies are ledger's business (tests/ownership.rs);
        // the ledger itself is compared here.
        if rel == Path::new("var/lib/regtrust/lock")
            || rel == Path::new("var/lib/regtrust/last-good")
        {
            continue;
        }
        let mtime_ns = m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128;
        let mode = m.permissions().mode() & 0o7777;
        if m.file_type().is_symlink() {
            let t = fs::read_link(&p).unwrap();
            out.insert(
                rel,
                Node {
                    kind: 'l',
                    mode: 0,
                    body: t.to_string_lossy().as_bytes().to_vec(),
                    mtime_ns: 0,
                },
            );
        } else if m.is_dir() {
            out.insert(
                rel,
                Node {
                    kind: 'd',
                    mode,
                    body: vec![],
                    mtime_ns: 0,
                },
            );
            walk(root, &p, out);
        } else {
            out.insert(
                rel,
                Node {
                    kind: 'f',
                    mode,
                    body: fs::read(&p).unwrap(),
                    mtime_ns,
                },
            );
        }
    }
}

/// Paths added, removed or changed between two snapshots (mtime included).
fn diff(before: &Tree, after: &Tree) -> Vec<String> {
    let mut out = Vec::new();
    for (p, n) in after {
        match before.get(p) {
            None => out.push(format!("+ {}", p.display())),
            Some(b) if b != n => out.push(format!("~ {}", p.display())),
            _ => {}
        }
    }
    for p in before.keys() {
        if !after.contains_key(p) {
            out.push(format!("- {}", p.display()));
        }
    }
    out.sort();
    out
}

fn ca_pem(cn: &str) -> String {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let key = rcgen::KeyPair::generate().unwrap();
    p.self_signed(&key).unwrap().pem()
}

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    inputs: PathBuf,
}

impl Fixture {
    /// A host root with all three runtimes' etc dirs and a containerd config that reads certs.d.
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("host");
        let inputs = tmp.path().join("inputs");
        for d in ["etc/docker", "etc/containerd", "etc/containers"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        fs::write(
            root.join("etc/containerd/config.toml"),
            "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n",
        )
        .unwrap();
        fs::create_dir_all(&inputs).unwrap();
        Fixture {
            _tmp: tmp,
            root,
            inputs,
        }
    }

    fn input(&self, name: &str, content: &str) -> PathBuf {
        let p = self.inputs.join(name);
        fs::write(&p, content).unwrap();
        p
    }

    fn config_with_secrets(&self, secrets: &[&Path], global_ca: &Path) -> Config {
        let mut cfg = self.config(&[], false);
        cfg.pull_secrets = secrets.iter().map(|p| p.to_path_buf()).collect();
        cfg.cas = vec![CaSpec::parse(&global_ca.display().to_string()).unwrap()];
        cfg
    }

    fn config(&self, cas: &[(&str, &Path)], replace_foreign: bool) -> Config {
        Config {
            host_root: self.root.clone(),
            state_dir: self.root.join("var/lib/regtrust"),
            runtimes: Runtime::ALL.to_vec(),
            replace_foreign,
            node: "test-node".into(),
            pull_secrets: vec![],
            cas: cas
                .iter()
                .map(|(h, p)| CaSpec::parse(&format!("{h}={}", p.display())).unwrap())
                .collect(),
            registries: vec![],
            go_versions: Vec::new(),
        }
    }

    fn sync(&self, cas: &[(&str, &Path)], replace_foreign: bool) -> Report {
        sync_once(
            &self.config(cas, replace_foreign),
            time::OffsetDateTime::now_utc(),
        )
        .report
    }

    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.root.join(rel)).unwrap()
    }
}

fn states(r: &Report, host: &str) -> Vec<(String, TrustState)> {
    let reg = r
        .registries
        .iter()
        .find(|x| x.host == host)
        .unwrap_or_else(|| panic!("{host} not in {r:#?}"));
    reg.trust
        .iter()
        .map(|t| {
            (
                t.path
                    .rsplit_once("certs.d/")
                    .map(|x| x.1)
                    .unwrap_or(&t.path)
                    .to_string()
                    + " "
                    + &t.runtime,
                t.state,
            )
        })
        .collect()
}

const H: &str = "127.0.0.1:5000";

#[test]
fn first_sync_writes_exactly_the_runtime_files() {
    let fx = Fixture::new();
    let pem = ca_pem("Test CA");
    let ca = fx.input("ca.pem", &pem);
    let before = snapshot(&fx.root);
    let report = fx.sync(&[(H, &ca)], false);
    let after = snapshot(&fx.root);
    assert_eq!(
        diff(&before, &after),
        [
            "+ etc/containerd/certs.d",
            "+ etc/containerd/certs.d/127.0.0.1:5000",
            "+ etc/containerd/certs.d/127.0.0.1:5000/ca.crt",
            "+ etc/containerd/certs.d/127.0.0.1:5000/hosts.toml",
            "+ etc/containers/certs.d",
            "+ etc/containers/certs.d/127.0.0.1:5000",
            "+ etc/containers/certs.d/127.0.0.1:5000/ca.crt",
            "+ etc/docker/certs.d",
            "+ etc/docker/certs.d/127.0.0.1:5000",
            "+ etc/docker/certs.d/127.0.0.1:5000/ca.crt",
            "+ var",
            "+ var/lib",
            "+ var/lib/regtrust",
            "+ var/lib/regtrust/ledger.json",
        ]
    );
    for (p, n) in &after {
        if p.starts_with("etc") && !before.contains_key(p) {
            let want = if n.kind == 'd' { 0o755 } else { 0o644 };
            assert_eq!(n.mode, want, "{}", p.display());
        }
    }
    // The CA is written as clean PEM with the same certificate.
    let written = fx.read("etc/docker/certs.d/127.0.0.1:5000/ca.crt");
    assert!(
        written.starts_with("-----BEGIN CERTIFICATE-----\n"),
        "{written}"
    );
    assert_eq!(der_of(&written), der_of(&pem));
    assert_eq!(
        written,
        fx.read("etc/containers/certs.d/127.0.0.1:5000/ca.crt")
    );
    assert_eq!(
        written,
        fx.read("etc/containerd/certs.d/127.0.0.1:5000/ca.crt")
    );
    assert!(fx
        .read("etc/containerd/certs.d/127.0.0.1:5000/hosts.toml")
        .contains("server = \"https://127.0.0.1:5000\""));
    assert!(
        states(&report, H)
            .iter()
            .all(|(_, s)| *s == TrustState::Installed),
        "{report:#?}"
    );
    assert!(!report.needs_attention(), "{:#?}", report.problems);

    // A second pass changes nothing on disk, mtimes included.
    let report = fx.sync(&[(H, &ca)], false);
    assert_eq!(diff(&after, &snapshot(&fx.root)), Vec::<String>::new());
    assert!(
        states(&report, H)
            .iter()
            .all(|(_, s)| *s == TrustState::Unchanged),
        "{report:#?}"
    );
}

fn der_of(pem: &str) -> Vec<Vec<u8>> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .map(|c| c.unwrap().to_vec())
        .collect()
}

#[test]
fn default_port_hosts_get_both_spellings() {
    let fx = Fixture::new();
    let ca = fx.input("ca.pem", &ca_pem("Test CA"));
    fx.sync(&[("harbor.local", &ca)], false);
    for d in ["harbor.local", "harbor.local:443"] {
        for rt in ["docker", "containers", "containerd"] {
            assert!(
                fx.root
                    .join(format!("etc/{rt}/certs.d/{d}/ca.crt"))
                    .is_file(),
                "{rt} {d}"
            );
        }
    }
}

#[test]
fn foreign_files_are_left_alone_unless_taken_over() {
    let fx = Fixture::new();
    let ca = fx.input("ca.pem", &ca_pem("Wanted CA"));
    let foreign = ca_pem("Someone else's CA");
    let docker_ca = format!("etc/docker/certs.d/{H}/ca.crt");
    fs::create_dir_all(fx.root.join(format!("etc/docker/certs.d/{H}"))).unwrap();
    fs::write(fx.root.join(&docker_ca), &foreign).unwrap();
    let before = snapshot(&fx.root);

    let report = fx.sync(&[(H, &ca)], false);
    let after = snapshot(&fx.root);
    assert_eq!(
        after[Path::new(&docker_ca)],
        before[Path::new(&docker_ca)],
        "foreign file touched"
    );
    let st = states(&report, H);
    assert!(
        st.contains(&(format!("{H}/ca.crt docker"), TrustState::Conflict)),
        "{st:?}"
    );
    assert!(
        st.contains(&(format!("{H}/ca.crt crio"), TrustState::Installed)),
        "{st:?}"
    );
    assert!(report.needs_attention());

    // Taking over replaces it and owns it from then on.
    let report = fx.sync(&[(H, &ca)], true);
    assert!(states(&report, H).contains(&(format!("{H}/ca.crt docker"), TrustState::Installed)));
    assert_eq!(
        fx.read(&docker_ca),
        fx.read(&format!("etc/containers/certs.d/{H}/ca.crt"))
    );
    let report = fx.sync(&[(H, &ca)], false);
    assert!(
        states(&report, H)
            .iter()
            .all(|(_, s)| *s == TrustState::Unchanged),
        "{report:#?}"
    );
}

#[test]
fn a_foreign_file_with_the_same_certificates_is_fine() {
    let fx = Fixture::new();
    let pem = ca_pem("Test CA");
    let ca = fx.input("ca.pem", &pem);
    let docker_ca = fx.root.join(format!("etc/docker/certs.d/{H}/ca.crt"));
    fs::create_dir_all(docker_ca.parent().unwrap()).unwrap();
    let same = format!("# our ansible copy\r\n{}", pem.replace('\n', "\r\n"));
    fs::write(&docker_ca, &same).unwrap();
    let report = fx.sync(&[(H, &ca)], false);
    assert_eq!(fs::read_to_string(&docker_ca).unwrap(), same);
    assert!(states(&report, H).contains(&(format!("{H}/ca.crt docker"), TrustState::Unchanged)));
    assert!(!report.needs_attention(), "{report:#?}");
}

#[test]
fn a_foreign_hosts_toml_is_never_replaced_and_is_checked() {
    let fx = Fixture::new();
    let ca = fx.input("ca.pem", &ca_pem("Test CA"));
    let hosts = fx
        .root
        .join(format!("etc/containerd/certs.d/{H}/hosts.toml"));
    fs::create_dir_all(hosts.parent().unwrap()).unwrap();
    let mirror = "server = \"https://127.0.0.1:5000\"\n[host.\"https://mirror.local\"]\n  capabilities = [\"pull\"]\n";
    fs::write(&hosts, mirror).unwrap();
    let report = fx.sync(&[(H, &ca)], false);
    assert_eq!(fs::read_to_string(&hosts).unwrap(), mirror);
    let entry = report.registries[0]
        .trust
        .iter()
        .find(|t| t.path.ends_with("hosts.toml"))
        .unwrap();
    assert_eq!(entry.state, TrustState::Conflict);
    assert!(entry.detail.contains("ignores the CA"), "{}", entry.detail);
}

#[test]
fn owned_files_deleted_or_edited_are_restored() {
    let fx = Fixture::new();
    let ca = fx.input("ca.pem", &ca_pem("Test CA"));
    fx.sync(&[(H, &ca)], false);
    let good = snapshot(&fx.root);
    let docker_ca = fx.root.join(format!("etc/docker/certs.d/{H}/ca.crt"));
    let crio_ca = fx.root.join(format!("etc/containers/certs.d/{H}/ca.crt"));
    fs::remove_file(&docker_ca).unwrap();
    fs::write(&crio_ca, "edited by hand\n").unwrap();
    let report = fx.sync(&[(H, &ca)], false);
    let now = snapshot(&fx.root);
    for p in [&docker_ca, &crio_ca] {
        let rel = p.strip_prefix(&fx.root).unwrap();
        assert_eq!(now[rel].body, good[rel].body, "{}", rel.display());
    }
    let st = states(&report, H);
    assert!(
        st.contains(&(format!("{H}/ca.crt docker"), TrustState::Installed)),
        "{st:?}"
    );
    assert!(
        st.contains(&(format!("{H}/ca.crt crio"), TrustState::Installed)),
        "{st:?}"
    );
}

#[test]
fn stale_owned_files_go_and_foreign_ones_stay() {
    let fx = Fixture::new();
    let ca = fx.input("ca.pem", &ca_pem("Test CA"));
    fx.sync(&[(H, &ca), ("other.local:5000", &ca)], false);
    // A file of someone else's in one of the dirs regtrust made.
    let keep = fx
        .root
        .join("etc/docker/certs.d/other.local:5000/notes.txt");
    fs::write(&keep, "mine").unwrap();
    let before = snapshot(&fx.root);
    let report = fx.sync(&[(H, &ca)], false);
    let after = snapshot(&fx.root);
    assert_eq!(
        diff(&before, &after),
        [
            "- etc/containerd/certs.d/other.local:5000",
            "- etc/containerd/certs.d/other.local:5000/ca.crt",
            "- etc/containerd/certs.d/other.local:5000/hosts.toml",
            "- etc/containers/certs.d/other.local:5000",
            "- etc/containers/certs.d/other.local:5000/ca.crt",
            "- etc/docker/certs.d/other.local:5000/ca.crt",
            "~ var/lib/regtrust/ledger.json",
        ]
    );
    let st = states(&report, "other.local:5000");
    assert!(st.iter().all(|(_, s)| *s == TrustState::Removed), "{st:?}");
}

#[test]
fn an_input_turned_invalid_keeps_the_last_good_ca() {
    let fx = Fixture::new();
    let ca = fx.input("ca.pem", &ca_pem("Test CA"));
    fx.sync(&[(H, &ca)], false);
    let good = snapshot(&fx.root);
    let bad_inputs: [&[u8]; 5] = [
        b"",
        b"garbage",
        b"-----BEGIN CERTIFICATE-----\nMIIB",
        b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIB0=\n-----END PRIVATE KEY-----\n",
        &[0x30, 0x82, 0x01, 0x0a, 0x02],
    ];
    for bad in bad_inputs {
        fs::write(&ca, bad).unwrap();
        let report = fx.sync(&[(H, &ca)], false);
        assert_eq!(
            diff(&good, &snapshot(&fx.root)),
            Vec::<String>::new(),
            "input {bad:?}"
        );
        assert!(report.needs_attention());
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.source == format!("CA input {}", ca.display())),
            "{:#?}",
            report.problems
        );
        assert!(
            states(&report, H)
                .iter()
                .all(|(_, s)| *s == TrustState::Unchanged),
            "{report:#?}"
        );
    }
    // And the input vanishing altogether.
    fs::remove_file(&ca).unwrap();
    fx.sync(&[(H, &ca)], false);
    assert_eq!(diff(&good, &snapshot(&fx.root)), Vec::<String>::new());
}

#[test]
fn symlinks_in_the_trust_dirs_are_never_written_through() {
    let fx = Fixture::new();
    let ca = fx.input("ca.pem", &ca_pem("Test CA"));
    let outside = fx.inputs.join("outside");
    fs::create_dir_all(&outside).unwrap();
    // certs.d itself a link out of the host root, and a host dir that is a link.
    std::os::unix::fs::symlink(&outside, fx.root.join("etc/docker/certs.d")).unwrap();
    fs::create_dir_all(fx.root.join("etc/containers/certs.d")).unwrap();
    std::os::unix::fs::symlink(
        &outside,
        fx.root.join(format!("etc/containers/certs.d/{H}")),
    )
    .unwrap();
    let report = fx.sync(&[(H, &ca)], false);
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        0,
        "wrote through a symlink"
    );
    let st = states(&report, H);
    assert!(
        st.contains(&(format!("{H}/ca.crt docker"), TrustState::Error)),
        "{st:?}"
    );
    assert!(
        st.contains(&(format!("{H}/ca.crt crio"), TrustState::Error)),
        "{st:?}"
    );
    assert!(
        st.contains(&(format!("{H}/ca.crt containerd"), TrustState::Installed)),
        "{st:?}"
    );
    // A ca.crt that is a link to a file outside: left alone, and its target untouched.
    let target = fx.inputs.join("precious");
    fs::write(&target, "precious").unwrap();
    let dir = fx.root.join("etc/containerd/certs.d/linked.local:5000");
    fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(&target, dir.join("ca.crt")).unwrap();
    fx.sync(&[("linked.local:5000", &ca)], true);
    assert_eq!(fs::read_to_string(&target).unwrap(), "precious");
}

#[test]
fn hosts_from_pull_secrets_get_the_global_ca_and_survive_a_broken_secret() {
    let fx = Fixture::new();
    let ca = fx.input("ca.pem", &ca_pem("Harbor CA"));
    // A mounted Secret volume, as kubelet lays it out.
    let vol = fx.inputs.join("pull");
    let data = vol.join("..2026_11_21_00_00_00.000000001");
    fs::create_dir_all(&data).unwrap();
    let secret = r#"{"auths":{"https://Harbor.Local:8443/v2/":{"auth":"dXNlcjpwYXNz"},"*.corp.local":{"auth":"dXNlcjpwYXNz"},"../etc":{"auth":"dXNlcjpwYXNz"}}}"#;
    fs::write(data.join(".dockerconfigjson"), secret).unwrap();
    std::os::unix::fs::symlink("..2026_11_21_00_00_00.000000001", vol.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/.dockerconfigjson", vol.join(".dockerconfigjson")).unwrap();

    let cfg = fx.config_with_secrets(&[&vol], &ca);
    let empty = snapshot(&fx.root);
    let report = sync_once(&cfg, time::OffsetDateTime::now_utc()).report;
    let hosts: Vec<&str> = report.registries.iter().map(|r| r.host.as_str()).collect();
    assert_eq!(
        hosts,
        ["harbor.local:8443"],
        "wildcards and bad keys install nothing"
    );
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.message.contains("\"../etc\"")),
        "{:#?}",
        report.problems
    );
    // A key that is not a registry holds the whole pass (issue 15 point 1).
    assert_eq!(diff(&empty, &snapshot(&fx.root)), Vec::<String>::new());
    let secret = secret.replace(r#","../etc":{"auth":"dXNlcjpwYXNz"}"#, "");
    fs::write(data.join(".dockerconfigjson"), secret).unwrap();
    sync_once(&cfg, time::OffsetDateTime::now_utc());
    assert!(fx
        .root
        .join("etc/docker/certs.d/harbor.local:8443/ca.crt")
        .is_file());
    assert!(!fx.root.join("etc/docker/etc").exists() && !fx.root.join("etc/etc").exists());
    let good = snapshot(&fx.root);

    // The secret turns to garbage: nothing is removed, and it is reported.
    fs::write(data.join(".dockerconfigjson"), "{not json").unwrap();
    let report = sync_once(&cfg, time::OffsetDateTime::now_utc()).report;
    assert_eq!(diff(&good, &snapshot(&fx.root)), Vec::<String>::new());
    assert!(report.needs_attention());
    // The secret vanishes: the same.
    fs::remove_file(data.join(".dockerconfigjson")).unwrap();
    sync_once(&cfg, time::OffsetDateTime::now_utc());
    assert_eq!(diff(&good, &snapshot(&fx.root)), Vec::<String>::new());

    // A valid secret that no longer names the host: the host's files go. (One that names
    // no registry at all removes nothing: tests/ownership.rs.)
    fs::write(
        data.join(".dockerconfigjson"),
        r#"{"auths":{"other.local":{"auth":"dXNlcjpwYXNz"}}}"#,
    )
    .unwrap();
    let report = sync_once(&cfg, time::OffsetDateTime::now_utc()).report;
    assert!(!fx
        .root
        .join("etc/docker/certs.d/harbor.local:8443")
        .exists());
    assert!(
        states(&report, "harbor.local:8443")
            .iter()
            .all(|(_, s)| *s == TrustState::Removed),
        "{report:#?}"
    );
}

#[test]
fn hostile_pull_secret_keys_write_nothing_outside_the_trust_dirs() {
    let fx = Fixture::new();
    let ca = fx.input("ca.pem", &ca_pem("Harbor CA"));
    let long = "a".repeat(300);
    let keys = [
        "../../../../etc/cron.d",
        "..",
        ".",
        "/etc/passwd",
        "harbor/../../x",
        "har bor.local",
        "harbor.local\u{0}evil",
        "\tharbor.local",
        long.as_str(),
        "https://",
        "",
        "[::1",
        "good.local:5000",
    ];
    let auths: serde_json::Map<String, serde_json::Value> = keys
        .iter()
        .map(|k| (k.to_string(), serde_json::json!({"auth": "dXNlcjpwYXNz"})))
        .collect();
    let secret = fx.input(
        "config.json",
        &serde_json::json!({ "auths": auths }).to_string(),
    );
    let before = snapshot(fx.root.parent().unwrap());
    let cfg = fx.config_with_secrets(&[&secret], &ca);
    let report = sync_once(&cfg, time::OffsetDateTime::now_utc()).report;
    let after = snapshot(fx.root.parent().unwrap());
    for line in diff(&before, &after) {
        let p = line[2..].to_string();
        let allowed = [
            "host/etc/docker/certs.d",
            "host/etc/containerd/certs.d",
            "host/etc/containers/certs.d",
            "host/var",
        ];
        assert!(
            allowed.iter().any(|a| p.starts_with(a)),
            "wrote outside the trust dirs: {line}"
        );
        assert!(!p.contains("..") && !p.contains('\0'), "{line}");
    }
    let hosts: Vec<&str> = report.registries.iter().map(|r| r.host.as_str()).collect();
    // `harbor/../../x` is host `harbor` with a path, as kubelet reads it: the path only
    // narrows which images the credentials apply to and never reaches the filesystem.
    assert_eq!(hosts, ["good.local:5000", "harbor"]);
    // Keys that are not registries hold the pass: nothing written at all (issue 15).
    assert!(!fx.root.join("etc/docker/certs.d/harbor/ca.crt").exists());
    assert!(
        diff(&before, &after).is_empty(),
        "{:?}",
        diff(&before, &after)
    );
    // Every bad key is reported, naming the file and the key.
    let bad = keys.len() - 2;
    let named: Vec<_> = report
        .problems
        .iter()
        .filter(|p| {
            p.source.contains(&secret.display().to_string()) && p.message.starts_with("key ")
        })
        .collect();
    assert_eq!(named.len(), bad, "{:#?}", report.problems);
    assert!(report.needs_attention());
}

#[test]
fn a_secret_with_too_many_hosts_manages_a_bounded_set() {
    let fx = Fixture::new();
    let ca = fx.input("ca.pem", &ca_pem("Harbor CA"));
    let auths: serde_json::Map<String, serde_json::Value> = (0..300)
        .map(|i| {
            (
                format!("r{i:03}.example.com"),
                serde_json::json!({"auth": "dXNlcjpwYXNz"}),
            )
        })
        .collect();
    let secret = fx.input(
        "config.json",
        &serde_json::json!({ "auths": auths }).to_string(),
    );
    let cfg = fx.config_with_secrets(&[&secret], &ca);
    let report = sync_once(&cfg, time::OffsetDateTime::now_utc()).report;
    assert_eq!(report.registries.len(), regtrust::sync::MAX_MANAGED_HOSTS);
    assert_eq!(report.registries.last().unwrap().host, "r255.example.com");
    assert!(!fx.root.join("etc/docker/certs.d/r256.example.com").exists());
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.message.contains("300 registries named")),
        "{:#?}",
        report.problems
    );
}

/// One node shape: the files its distribution leaves (beside the empty dirs the DaemonSet's
/// DirectoryOrCreate mounts create on every node), and exactly what one `--runtime auto`
/// pass adds for `127.0.0.1:5000` (the state dir aside), and the problems it reports.
struct Shape {
    name: &'static str,
    files: Vec<(&'static str, &'static str)>,
    added: Vec<&'static str>,
    problems: Vec<&'static str>,
}

const CONFIG_V2: &str = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n";

fn shapes() -> Vec<Shape> {
    let k3s = "var/lib/rancher/k3s/agent/etc/containerd/config.toml";
    vec![
        Shape {
            name: "kubeadm + containerd 1.x with config_path",
            files: vec![("etc/containerd/config.toml", CONFIG_V2)],
            added: vec![
                "etc/containerd/certs.d/127.0.0.1:5000",
                "etc/containerd/certs.d/127.0.0.1:5000/ca.crt",
                "etc/containerd/certs.d/127.0.0.1:5000/hosts.toml",
            ],
            problems: vec![],
        },
        Shape {
            name: "containerd 1.x stock config (no config_path): nothing installed",
            files: vec![("etc/containerd/config.toml", "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"\"\n")],
            added: vec![],
            problems: vec!["config_path is unset"],
        },
        Shape {
            name: "containerd 2.x, version 3, custom root",
            files: vec![("etc/containerd/config.toml", "version = 3\n[plugins.'io.containerd.cri.v1.images'.registry]\n  config_path = '/etc/containerd/hosts.d'\n")],
            added: vec![
                "etc/containerd/hosts.d",
                "etc/containerd/hosts.d/127.0.0.1:5000",
                "etc/containerd/hosts.d/127.0.0.1:5000/ca.crt",
                "etc/containerd/hosts.d/127.0.0.1:5000/hosts.toml",
            ],
            problems: vec![],
        },
        Shape {
            name: "config_path only in an imports drop-in",
            files: vec![
                ("etc/containerd/config.toml", "version = 2\nimports = [\"conf.d/*.toml\"]\n"),
                ("etc/containerd/conf.d/50-registry.toml", "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/registry.d\"\n"),
            ],
            added: vec![
                "etc/containerd/registry.d",
                "etc/containerd/registry.d/127.0.0.1:5000",
                "etc/containerd/registry.d/127.0.0.1:5000/ca.crt",
                "etc/containerd/registry.d/127.0.0.1:5000/hosts.toml",
            ],
            problems: vec![],
        },
        Shape {
            name: "k3s",
            files: vec![(k3s, "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/var/lib/rancher/k3s/agent/etc/containerd/certs.d\"\n")],
            added: vec![
                "var/lib/rancher/k3s/agent/etc/containerd/certs.d",
                "var/lib/rancher/k3s/agent/etc/containerd/certs.d/127.0.0.1:5000",
                "var/lib/rancher/k3s/agent/etc/containerd/certs.d/127.0.0.1:5000/ca.crt",
                "var/lib/rancher/k3s/agent/etc/containerd/certs.d/127.0.0.1:5000/hosts.toml",
            ],
            problems: vec![],
        },
        Shape {
            name: "k3s with the host in registries.yaml: the distribution's, nothing written",
            files: vec![
                (k3s, "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/var/lib/rancher/k3s/agent/etc/containerd/certs.d\"\n"),
                ("etc/rancher/k3s/registries.yaml", "configs:\n  \"127.0.0.1:5000\":\n    auth:\n      username: robot\n"),
            ],
            added: vec![],
            problems: vec!["configs.\"127.0.0.1:5000\".tls.ca_file"],
        },
        Shape {
            name: "rke2",
            files: vec![("var/lib/rancher/rke2/agent/etc/containerd/config.toml", "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/var/lib/rancher/rke2/agent/etc/containerd/certs.d\"\n")],
            added: vec![
                "var/lib/rancher/rke2/agent/etc/containerd/certs.d",
                "var/lib/rancher/rke2/agent/etc/containerd/certs.d/127.0.0.1:5000",
                "var/lib/rancher/rke2/agent/etc/containerd/certs.d/127.0.0.1:5000/ca.crt",
                "var/lib/rancher/rke2/agent/etc/containerd/certs.d/127.0.0.1:5000/hosts.toml",
            ],
            problems: vec![],
        },
        Shape {
            name: "microk8s",
            files: vec![("var/snap/microk8s/current/args/containerd-template.toml", "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"${SNAP_DATA}/args/certs.d\"\n")],
            added: vec![
                "var/snap/microk8s/current/args/certs.d",
                "var/snap/microk8s/current/args/certs.d/127.0.0.1:5000",
                "var/snap/microk8s/current/args/certs.d/127.0.0.1:5000/ca.crt",
                "var/snap/microk8s/current/args/certs.d/127.0.0.1:5000/hosts.toml",
            ],
            problems: vec![],
        },
        Shape {
            name: "CRI-O (OpenShift-like)",
            files: vec![
                ("etc/crio/crio.conf", "[crio.image]\n"),
                ("etc/containers/registries.conf", "unqualified-search-registries = [\"registry.access.redhat.com\"]\n"),
            ],
            added: vec![
                "etc/containers/certs.d/127.0.0.1:5000",
                "etc/containers/certs.d/127.0.0.1:5000/ca.crt",
            ],
            problems: vec![],
        },
        Shape {
            name: "CRI-O with the host insecure and mirrored",
            files: vec![
                ("etc/crio/crio.conf", "[crio.image]\n"),
                ("etc/containers/registries.conf.d/10-h.conf", "[[registry]]\nlocation = \"127.0.0.1:5000\"\ninsecure = true\n[[registry.mirror]]\nlocation = \"mirror.local:5000\"\n"),
            ],
            added: vec![
                "etc/containers/certs.d/127.0.0.1:5000",
                "etc/containers/certs.d/127.0.0.1:5000/ca.crt",
            ],
            problems: vec!["insecure = true", "tries mirror \"mirror.local:5000\""],
        },
        Shape {
            name: "Docker with the host in insecure-registries",
            files: vec![("etc/docker/daemon.json", "{\"insecure-registries\": [\"127.0.0.0/8\"]}\n")],
            added: vec![
                "etc/docker/certs.d/127.0.0.1:5000",
                "etc/docker/certs.d/127.0.0.1:5000/ca.crt",
            ],
            problems: vec!["insecure-registries lists \"127.0.0.0/8\""],
        },
    ]
}

#[test]
fn every_node_shape_before_inputs_after() {
    let pem = ca_pem("Shape CA");
    for shape in shapes() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("host");
        for d in [
            "etc/docker/certs.d",
            "etc/containerd/certs.d",
            "etc/containers/certs.d",
        ] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        for (rel, text) in &shape.files {
            let p = root.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        }
        let ca = tmp.path().join("ca.pem");
        fs::write(&ca, &pem).unwrap();
        let cfg = Config {
            host_root: root.clone(),
            state_dir: tmp.path().join("state"),
            runtimes: regtrust::trust::layout::select_runtimes("auto", &root).unwrap(),
            replace_foreign: false,
            node: "shape".into(),
            pull_secrets: vec![],
            cas: vec![CaSpec::parse(&format!("{H}={}", ca.display())).unwrap()],
            registries: vec![],
            go_versions: Vec::new(),
        };
        let before = snapshot(&root);
        let report = sync_once(&cfg, time::OffsetDateTime::now_utc()).report;
        let after = snapshot(&root);
        let want: Vec<String> = shape.added.iter().map(|p| format!("+ {p}")).collect();
        assert_eq!(diff(&before, &after), want, "{}", shape.name);
        for rel in shape.added.iter().filter(|p| p.ends_with("ca.crt")) {
            assert_eq!(
                der_of(&fs::read_to_string(root.join(rel)).unwrap()),
                der_of(&pem),
                "{}",
                shape.name
            );
        }
        let messages: Vec<&str> = report.problems.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(
            messages.len(),
            shape.problems.len(),
            "{}: {messages:#?}",
            shape.name
        );
        for w in &shape.problems {
            assert!(
                messages.iter().any(|m| m.contains(w)),
                "{}: {w} not in {messages:#?}",
                shape.name
            );
        }
        assert_eq!(
            report.runtimes.len(),
            1,
            "{}: {:?}",
            shape.name,
            report.runtimes
        );
    }
}

/// A node's containerd config that turns unreadable mid-life removes nothing regtrust
/// installed (it may name the same dir again once fixed), and a config that moves the
/// hosts dir (an upgrade to k3s's layout, or a fixed config_path) moves regtrust's files:
/// written in the new dir, removed from the old one.
#[test]
fn a_broken_containerd_config_removes_nothing_and_a_moved_one_moves_the_files() {
    let fx = Fixture::new();
    let ca = fx.input("ca.pem", &ca_pem("Move CA"));
    let mut cfg = fx.config(&[(H, &ca)], false);
    cfg.runtimes = vec![Runtime::Containerd];
    let now = time::OffsetDateTime::now_utc;
    sync_once(&cfg, now());
    let installed = snapshot(&fx.root);
    assert!(installed.contains_key(Path::new("etc/containerd/certs.d/127.0.0.1:5000/ca.crt")));

    fs::write(fx.root.join("etc/containerd/config.toml"), "version = [[[").unwrap();
    let report = sync_once(&cfg, now()).report;
    let after = snapshot(&fx.root);
    assert_eq!(diff(&installed, &after), ["~ etc/containerd/config.toml"]);
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.message.contains("containerd cannot use its config")),
        "{:#?}",
        report.problems
    );

    fs::write(
        fx.root.join("etc/containerd/config.toml"),
        "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/hosts.d\"\n",
    )
    .unwrap();
    let before = snapshot(&fx.root);
    sync_once(&cfg, now());
    let mut got = diff(&before, &snapshot(&fx.root));
    got.retain(|l| !l.contains("var/lib/regtrust"));
    assert_eq!(
        got,
        [
            "+ etc/containerd/hosts.d",
            "+ etc/containerd/hosts.d/127.0.0.1:5000",
            "+ etc/containerd/hosts.d/127.0.0.1:5000/ca.crt",
            "+ etc/containerd/hosts.d/127.0.0.1:5000/hosts.toml",
            "- etc/containerd/certs.d/127.0.0.1:5000",
            "- etc/containerd/certs.d/127.0.0.1:5000/ca.crt",
            "- etc/containerd/certs.d/127.0.0.1:5000/hosts.toml",
        ]
    );
}
