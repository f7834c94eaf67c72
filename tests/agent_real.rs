//! Issue 4's proof with real parts: the agent runs while Harbor's CA is rotated. The Debian
//! docker-registry serves TLS on loopback; skopeo (containers/image: CRI-O, podman) judges
//! the docker and containers `certs.d` dirs the agent maintains, and a private containerd
//! judges its hosts dir. When the registry is reissued by a new CA every client fails with
//! unknown authority; when the CA Secret follows (kubelet's AtomicWriter swap), the trust
//! dirs hold the new CA within one second of the swap (SPEC, Agent) and every client pulls.

mod agent_util;
mod support;

use agent_util::{pem_ders, Agent, Node, SecretVolume};
use regtrust::agent::Options;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use support::{skopeo_inspect, wait_for, Containerd, Pki, Registry};

const UNKNOWN_AUTHORITY: &str = "x509: certificate signed by unknown authority";

#[test]
fn rotating_the_ca_secret_flips_every_runtime_within_a_second() {
    let containerd = Containerd::start();
    let pki = Pki::new();
    let ca_a = pki.root("harbor-ca-a");
    let leaf_a = pki.server(&ca_a, "registry-a", &["127.0.0.1"]);
    let mut registry = Registry::tls(&leaf_a.chain_path, &leaf_a.key_path).start();
    registry.push_tiny_image(Some(&ca_a.cert_path));
    let host = registry.host();
    let image = registry.image_ref();

    let node = Node::new();
    let inputs = tempfile::tempdir().unwrap();
    let vol = SecretVolume::create(
        &inputs.path().join("harbor-ca"),
        &[("ca.crt", ca_a.cert_pem.as_bytes())],
    );
    let agent = Agent::start(
        node.config(&[(&host, vol.path())]),
        Options {
            resync_interval: Duration::from_secs(600),
            probe_interval: Duration::from_secs(600),
            ..Options::default()
        },
    );
    let files = node.ca_files(&host);
    let holds = |pem: &str| {
        let want = pem_ders(pem.as_bytes()).unwrap();
        files
            .iter()
            .all(|f| std::fs::read(f).ok().and_then(|b| pem_ders(&b)).as_ref() == Some(&want))
    };
    let docker_dir: PathBuf = node.path().join("etc/docker/certs.d").join(&host);
    let crio_dir: PathBuf = node.path().join("etc/containers/certs.d").join(&host);
    let containerd_hosts: PathBuf = node.path().join("etc/containerd/certs.d");
    let judge_all = |step: &str, ok: bool| {
        for (runtime, j) in [
            ("docker", skopeo_inspect(&docker_dir, &image)),
            ("crio", skopeo_inspect(&crio_dir, &image)),
            ("containerd", containerd.ctr_pull(&containerd_hosts, &image)),
        ] {
            if ok {
                j.assert_ok(&format!("{step}: {runtime}"));
            } else {
                j.assert_x509(&format!("{step}: {runtime}"), UNKNOWN_AUTHORITY);
            }
        }
    };

    agent.wait_ready();
    wait_for("CA A in every runtime dir", agent_util::DEADLINE, || {
        holds(&ca_a.cert_pem).then_some(())
    });
    judge_all("the agent installed CA A", true);

    // Harbor's CA is rotated: the registry now serves a leaf from CA B.
    let ca_b = pki.root("harbor-ca-b");
    let leaf_b = pki.server(&ca_b, "registry-b", &["127.0.0.1"]);
    registry.restart_with_tls(&leaf_b.chain_path, &leaf_b.key_path);
    judge_all(
        "registry reissued by CA B, the Secret still holds CA A",
        false,
    );

    // The CA Secret follows, as kubelet writes it.
    let swapped = Instant::now();
    vol.update(&[("ca.crt", ca_b.cert_pem.as_bytes())]);
    wait_for(
        "CA B in every runtime dir within one second of the ..data swap",
        Duration::from_secs(1),
        || holds(&ca_b.cert_pem).then_some(()),
    );
    let flipped = swapped.elapsed();
    judge_all("the agent installed CA B", true);
    eprintln!("trust dirs flipped {flipped:?} after the ..data swap");
}
