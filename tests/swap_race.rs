//! Issue 9 point 1: a pod with hostPath write access to one `certs.d` host dir cannot steer
//! regtrust's writes or removals elsewhere. A swapper thread exchanges the host dir with a
//! symlink to a victim dir (`renameat2(RENAME_EXCHANGE)`, atomically, as fast as it can)
//! while regtrust installs, restores and removes stale files there, thousands of times; the
//! victim (a dir holding a `ca.crt` with exactly the bytes regtrust writes, so a remover that
//! walked the path again would delete it) is never written or removed.

use regtrust::host::RegistryHost;
use regtrust::trust::apply::{apply, ApplyRequest};
use regtrust::trust::layout::targets_for;
use regtrust::trust::Runtime;
use rustix::fs::{renameat_with, unlinkat, AtFlags, RenameFlags, CWD};
use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

const ITERATIONS: usize = 2000;

/// Everything about the victim dir a write or a removal would change.
fn victim_state(dir: &Path) -> Vec<(String, Vec<u8>, i64, i64, u64)> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).expect("the victim dir still exists") {
        let e = e.unwrap();
        let m = fs::symlink_metadata(e.path()).unwrap();
        out.push((
            e.file_name().to_string_lossy().into_owned(),
            fs::read(e.path()).unwrap_or_default(),
            m.mtime(),
            m.mtime_nsec(),
            m.ino(),
        ));
    }
    out.sort();
    out
}

#[test]
fn a_host_dir_swapped_for_a_symlink_never_redirects_a_write_or_a_removal() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("host");
    let certs_d = root.join("etc/docker/certs.d");
    fs::create_dir_all(&certs_d).unwrap();
    let state = tmp.path().join("state");
    fs::create_dir_all(&state).unwrap();

    let host = RegistryHost::parse("h:5000").unwrap();
    let pem = b"-----BEGIN CERTIFICATE-----\nnot parsed by apply\n-----END CERTIFICATE-----\n";
    let targets = targets_for(&host, Runtime::Docker, pem);
    assert_eq!(targets.len(), 1);

    // The victim: the node's kubernetes CA dir, holding regtrust's exact bytes.
    let victim = root.join("etc/kubernetes/pki");
    fs::create_dir_all(&victim).unwrap();
    fs::write(victim.join("ca.crt"), pem).unwrap();
    let empty_victim = root.join("etc/kubernetes/empty");
    fs::create_dir_all(&empty_victim).unwrap();
    let victim_before = victim_state(&victim);

    let host_dir = certs_d.join("h:5000");
    fs::create_dir_all(&host_dir).unwrap();
    let decoy = certs_d.join(".decoy");
    let decoy2 = certs_d.join(".decoy2");
    symlink(&victim, &decoy).unwrap();
    symlink(&empty_victim, &decoy2).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicU64::new(0));
    let swapper = {
        let (stop, swaps) = (stop.clone(), swaps.clone());
        let (host_dir, decoy, decoy2) = (host_dir.clone(), decoy.clone(), decoy2.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let other = if n % 2 == 0 { &decoy } else { &decoy2 };
                // Swap the link in and back out at once, so that regtrust's calls land on
                // either side of each exchange. Fails (ENOENT) while the host dir is
                // removed; the writer recreates it.
                if renameat_with(CWD, &host_dir, CWD, other, RenameFlags::EXCHANGE).is_ok() {
                    swaps.fetch_add(1, Ordering::Relaxed);
                    let _ = renameat_with(CWD, &host_dir, CWD, other, RenameFlags::EXCHANGE);
                }
                for _ in 0..2000 {
                    std::hint::spin_loop();
                }
                n += 1;
            }
        })
    };

    let retained = BTreeSet::new();
    let (mut installed, mut removed) = (0, 0);
    for _ in 0..ITERATIONS {
        // Install (or restore), then delete our own file through whichever name is the
        // real dir right now (never through the link), restore, then stale removal.
        for (step, wanted) in [&targets[..], &targets[..], &[]].into_iter().enumerate() {
            let out = apply(&ApplyRequest {
                host_root: &root,
                state_dir: &state,
                targets: wanted,
                retained_hosts: &retained,
                remove_stale: true,
                replace_foreign: false,
                hold: None,
            });
            for f in &out.files {
                match f.state {
                    regtrust::report::TrustState::Installed => installed += 1,
                    regtrust::report::TrustState::Removed => removed += 1,
                    _ => {}
                }
            }
            for name in ["h:5000", ".decoy", ".decoy2"]
                .into_iter()
                .filter(|_| step == 0)
            {
                if let Ok(dir) = regtrust::runtime::HostRoot::new(&root)
                    .open_dir(&Path::new("etc/docker/certs.d").join(name))
                {
                    let _ = unlinkat(&dir, "ca.crt", AtFlags::empty());
                }
            }
        }
        assert_eq!(
            victim_state(&victim),
            victim_before,
            "the victim was written"
        );
        assert!(empty_victim.is_dir(), "the empty victim dir was removed");
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    let swaps = swaps.load(Ordering::Relaxed);
    eprintln!("{swaps} swaps, {installed} installs, {removed} removals");
    assert!(
        swaps > 0 && installed > 0 && removed > 0,
        "the race never ran: {swaps} swaps, {installed} installs, {removed} removals"
    );
    assert_eq!(victim_state(&victim), victim_before);
    assert!(fs::read_dir(&empty_victim).unwrap().next().is_none());
}
