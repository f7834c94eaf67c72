//! The OS trust store of every Linux family, as a Go runtime loads it (issue 10 point 5):
//! the first readable of Go's bundle files, plus every file of Go's cert dirs, read inside
//! the host root with symlinks resolved there (RHEL/Fedora/Amazon Linux link
//! `/etc/ssl/certs` into `/etc/pki`, SUSE links `/etc/ssl/ca-bundle.pem` and
//! `/etc/ssl/certs` into `/var/lib/ca-certificates`). `SSL_CERT_FILE`/`SSL_CERT_DIR` in
//! the runtime's own environment are not looked at.

use super::view::{add_pem, read_in_root, SystemRoots, MAX_TRUST_FILE};
use super::HostRoot;
use crate::go::GoRuntime;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Go's `certFiles` for Linux, in order; the first readable one is used
/// (go1.19.8/src/crypto/x509/root_linux.go; unchanged through go1.23).
pub const GO_CERT_FILES: [&str; 6] = [
    "etc/ssl/certs/ca-certificates.crt", // Debian/Ubuntu/Gentoo etc.
    "etc/pki/tls/certs/ca-bundle.crt",   // Fedora/RHEL 6
    "etc/ssl/ca-bundle.pem",             // OpenSUSE
    "etc/pki/tls/cacert.pem",            // OpenELEC
    "etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // CentOS/RHEL 7
    "etc/ssl/cert.pem",                  // Alpine Linux
];

/// Go's `certDirectories` for Linux: every file in them is read (same source). Go 1.19
/// also lists Android's `/system/etc/security/cacerts`, which no node has; it is read too.
pub const GO_CERT_DIRS: [&str; 3] = [
    "etc/ssl/certs",               // SLES10/SLES11
    "etc/pki/tls/certs",           // Fedora/RHEL
    "system/etc/security/cacerts", // Android
];

/// Load the system roots under `host_root` as Go does (`loadSystemRoots`). Unreadable
/// files are skipped, as Go skips them.
pub fn system_roots(host_root: &Path) -> SystemRoots {
    let root = HostRoot::new(host_root);
    let mut out = SystemRoots::default();
    let mut seen = HashSet::new();
    // Go reads the bundle again when it also sits in a cert dir (Debian's
    // /etc/ssl/certs/ca-certificates.crt) and drops the duplicates; reading each resolved
    // file once gives the same pool.
    let mut read: HashSet<PathBuf> = HashSet::new();
    for rel in GO_CERT_FILES {
        let Ok(resolved) = root.resolve(Path::new(rel)) else {
            continue;
        };
        if let Ok(bytes) = read_in_root(&root, Path::new(rel), MAX_TRUST_FILE) {
            let file = host_root.join(rel);
            add_pem(
                &mut out.anchors,
                &mut seen,
                &bytes,
                &file,
                &GoRuntime::default(),
            );
            out.bundle = Some(file);
            read.insert(resolved);
            break;
        }
    }
    for dir in GO_CERT_DIRS {
        let Ok(names) = root.list(Path::new(dir)) else {
            continue;
        };
        for name in names {
            let rel = Path::new(dir).join(&name);
            // Go's readUniqueDirectoryEntries: a symlink whose target has no `/` points
            // into the same dir (the OpenSSL hash links), and is skipped.
            if let Some(target) = root.link_target(&rel) {
                if !target.as_os_str().as_encoded_bytes().contains(&b'/') {
                    continue;
                }
            }
            let fresh = root.resolve(&rel).is_ok_and(|r| read.insert(r));
            if !fresh {
                continue;
            }
            if let Ok(bytes) = read_in_root(&root, &rel, MAX_TRUST_FILE) {
                add_pem(
                    &mut out.anchors,
                    &mut seen,
                    &bytes,
                    &host_root.join(&rel),
                    &GoRuntime::default(),
                );
            }
        }
    }
    out
}

/// The files the system roots come from, each with its size and modification time.
type Signature = Vec<(PathBuf, (u64, i64, i64))>;

/// System roots already loaded, per host root, with the signature they were loaded from.
static SYSTEM_CACHE: Mutex<Vec<(PathBuf, Signature, Arc<SystemRoots>)>> = Mutex::new(Vec::new());
const SYSTEM_CACHE_ROOTS: usize = 4;

fn signature(host_root: &Path) -> Signature {
    let root = HostRoot::new(host_root);
    let mut sig = Vec::new();
    let mut add = |rel: PathBuf| {
        if let Some(stamp) = root.file_stamp(&rel) {
            sig.push((rel, stamp));
        }
    };
    for rel in GO_CERT_FILES {
        add(PathBuf::from(rel));
    }
    for dir in GO_CERT_DIRS {
        for name in root.list(Path::new(dir)).unwrap_or_default() {
            add(Path::new(dir).join(name));
        }
    }
    sig
}

/// [`system_roots`], loaded again only when one of its files changed (size or mtime), a
/// file appeared or one went away. The agent probes every minute; the system bundle
/// rarely changes (and a Go runtime itself loads it once, at start).
pub fn system_roots_cached(host_root: &Path) -> Arc<SystemRoots> {
    let sig = signature(host_root);
    if let Ok(cache) = SYSTEM_CACHE.lock() {
        if let Some((_, _, roots)) = cache.iter().find(|(r, s, _)| r == host_root && *s == sig) {
            return roots.clone();
        }
    }
    let roots = Arc::new(system_roots(host_root));
    if let Ok(mut cache) = SYSTEM_CACHE.lock() {
        cache.retain(|(r, _, _)| r != host_root);
        if cache.len() >= SYSTEM_CACHE_ROOTS {
            cache.remove(0);
        }
        cache.push((host_root.to_path_buf(), sig, roots.clone()));
    }
    roots
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::view::tests::{pem, root_with, sha_of};
    use std::fs;

    #[test]
    fn system_roots_as_go_loads_them() {
        let (a, b, c, d) = (pem("a"), pem("b"), pem("c"), pem("d"));
        let root = root_with(&[
            // The first readable bundle only.
            ("etc/pki/tls/certs/ca-bundle.crt", &a),
            ("etc/ssl/cert.pem", &b),
            // Every file of the cert dirs, any name; an absolute symlink is the node's path.
            ("etc/ssl/certs/extra.pem", &c),
            ("usr/share/ca-certificates/d.crt", &d),
            ("etc/ssl/certs/d.pem", "->/usr/share/ca-certificates/d.crt"),
            ("etc/ssl/certs/garbage", "\u{0}\u{1}junk"),
            (
                "etc/ssl/certs/key.pem",
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            ),
            ("etc/ssl/certs/sub/", ""),
        ]);
        let s = system_roots(root.path());
        let got: Vec<String> = s.anchors.iter().map(|a| a.sha256.clone()).collect();
        // ca-bundle.crt also sits in etc/pki/tls/certs: read once (deduplicated).
        assert_eq!(got, [sha_of(&a), sha_of(&d), sha_of(&c)]);
        assert!(s
            .bundle
            .unwrap()
            .ends_with("etc/pki/tls/certs/ca-bundle.crt"));
        assert!(system_roots(tempfile::tempdir().unwrap().path())
            .anchors
            .is_empty());
    }

    /// Each family's store as the distribution lays it out, links included.
    #[test]
    fn every_family_through_its_links() {
        let a = pem("family root");
        type Layout<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);
        let families: Vec<Layout> = vec![
            (
                "debian",
                vec![("etc/ssl/certs/ca-certificates.crt", a.as_str())],
                "etc/ssl/certs/ca-certificates.crt",
            ),
            (
                // RHEL 8/9, Fedora, Amazon Linux 2/2023: everything links into /etc/pki.
                "rhel",
                vec![
                    (
                        "etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
                        a.as_str(),
                    ),
                    (
                        "etc/pki/tls/certs/ca-bundle.crt",
                        "->/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
                    ),
                    ("etc/ssl/certs", "->/etc/pki/tls/certs"),
                    (
                        "etc/pki/tls/cert.pem",
                        "->/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
                    ),
                    ("etc/ssl/cert.pem", "->/etc/pki/tls/cert.pem"),
                ],
                "etc/pki/tls/certs/ca-bundle.crt",
            ),
            (
                // SLES/openSUSE: the bundle and the dir live in /var/lib/ca-certificates.
                "suse",
                vec![
                    ("var/lib/ca-certificates/ca-bundle.pem", a.as_str()),
                    (
                        "etc/ssl/ca-bundle.pem",
                        "->/var/lib/ca-certificates/ca-bundle.pem",
                    ),
                    ("var/lib/ca-certificates/pem/root.pem", a.as_str()),
                    ("etc/ssl/certs", "->/var/lib/ca-certificates/pem"),
                ],
                "etc/ssl/ca-bundle.pem",
            ),
        ];
        for (name, files, bundle) in families {
            let root = root_with(&files);
            let s = system_roots(root.path());
            assert_eq!(
                s.anchors
                    .iter()
                    .map(|x| x.sha256.clone())
                    .collect::<Vec<_>>(),
                [sha_of(&a)],
                "{name}"
            );
            assert!(
                s.bundle.as_ref().unwrap().ends_with(bundle),
                "{name}: {:?}",
                s.bundle
            );
        }
    }

    #[test]
    fn the_system_cache_notices_changes() {
        let (a, b) = (pem("a"), pem("b"));
        let root = root_with(&[("etc/ssl/certs/ca-certificates.crt", &a)]);
        let first = system_roots_cached(root.path());
        assert!(Arc::ptr_eq(&first, &system_roots_cached(root.path())));
        fs::write(root.path().join("etc/ssl/certs/extra.pem"), &b).unwrap();
        let second = system_roots_cached(root.path());
        let got: Vec<&str> = second.anchors.iter().map(|x| x.sha256.as_str()).collect();
        assert_eq!(got, [sha_of(&a), sha_of(&b)]);
        fs::remove_file(root.path().join("etc/ssl/certs/extra.pem")).unwrap();
        assert_eq!(system_roots_cached(root.path()).anchors.len(), 1);
    }

    #[test]
    fn huge_files_are_not_read() {
        let root = root_with(&[("etc/ssl/certs/", "")]);
        let f = fs::File::create(root.path().join("etc/ssl/certs/huge.pem")).unwrap();
        f.set_len(MAX_TRUST_FILE + 1).unwrap();
        assert!(system_roots(root.path()).anchors.is_empty());
    }
}
