//! `skopeo` as a judge: what a real Go client (containers/image, the library inside CRI-O and
//! podman) says about a registry given one cert dir. It reports, it does not decide: tests
//! compare its verdict with regtrust's.

use super::{require_tool, run, Judge};
use std::path::{Path, PathBuf};
use std::process::Command;
use tempfile::TempDir;

/// `skopeo inspect --raw` of `image_ref` (`HOST:PORT/repo:tag`) trusting what `cert_dir`
/// holds (`*.crt`, one flat dir, as `--cert-dir` reads it; a missing dir trusts nothing extra)
/// plus the system roots, anonymously.
pub fn skopeo_inspect(cert_dir: &Path, image_ref: &str) -> Judge {
    skopeo_inspect_with_creds(cert_dir, image_ref, None)
}

/// Like [`skopeo_inspect`], with `user:password` when given.
pub fn skopeo_inspect_with_creds(cert_dir: &Path, image_ref: &str, creds: Option<&str>) -> Judge {
    let (_work, policy) = policy_file();
    let mut c = Command::new(require_tool("skopeo", "skopeo"));
    isolate(&mut c, policy.parent().expect("policy file has a parent"));
    c.arg("--policy")
        .arg(&policy)
        .args(["inspect", "--raw", "--retry-times", "0", "--cert-dir"])
        .arg(cert_dir);
    match creds {
        Some(creds) => c.arg("--creds").arg(creds),
        None => c.arg("--no-creds"),
    };
    c.arg(format!("docker://{image_ref}"));
    let out = run(c);
    Judge {
        ok: out.status.success(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A temp dir holding an accept-anything signature policy (skopeo refuses to run without
/// one, and the machine's `/etc/containers/policy.json` may be absent or strict) and an empty
/// `registries.conf`. Keep the dir alive while skopeo runs.
pub fn policy_file() -> (TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("regtrust-skopeo-")
        .tempdir()
        .expect("temp dir for the skopeo policy");
    let policy = dir.path().join("policy.json");
    std::fs::write(
        &policy,
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .expect("write policy.json");
    std::fs::write(dir.path().join("registries.conf"), "").expect("write registries.conf");
    std::fs::create_dir(dir.path().join("registries.d")).expect("create registries.d");
    (dir, policy)
}

/// Keep the machine's containers configuration out of the verdict: a `registries.conf` that
/// marks 127.0.0.1 insecure would make every TLS case pass.
pub(super) fn isolate(c: &mut Command, work: &Path) {
    c.env("CONTAINERS_REGISTRIES_CONF", work.join("registries.conf"))
        .arg("--registries.d")
        .arg(work.join("registries.d"))
        .arg("--tmpdir")
        .arg(work);
}
