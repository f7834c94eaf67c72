//! The image the judges pull: a one-layer OCI image layout built by hand (an uncompressed
//! ustar layer with one small file, digests from ring), pushed once to a `Registry` with
//! `skopeo copy`. Uncompressed keeps it dependency-free: skopeo compresses it on push (the
//! registry stores a gzip layer and an updated manifest) and containerd unpacks either.

use super::registry::{Registry, TINY_REPO, TINY_TAG};
use super::skopeo::{isolate, policy_file};
use super::{require_tool, run_ok};
use serde_json::json;
use std::path::Path;
use std::process::Command;

impl Registry {
    /// Push the tiny image as `HOST/library/tiny:1`, trusting `trust` (a PEM file: the CA, or
    /// the self-signed leaf) for TLS; `None` for a plain-HTTP registry. Uses the registry's
    /// credentials when auth is on. Pushing is part of setup: it panics on failure.
    pub fn push_tiny_image(&self, trust: Option<&Path>) {
        assert!(
            self.ip().is_ipv4(),
            "skopeo 1.9 cannot parse an image reference with an IPv6 literal ({}); push to a 127.0.0.1 registry",
            self.host()
        );
        let work = tempfile::tempdir().expect("temp dir for the image layout");
        let layout = work.path().join("layout");
        write_oci_layout(&layout);
        let (policy_dir, policy) = policy_file();
        let mut c = Command::new(require_tool("skopeo", "skopeo"));
        isolate(&mut c, policy_dir.path());
        c.arg("--policy")
            .arg(&policy)
            .arg("copy")
            .arg("--retry-times")
            .arg("0");
        match trust {
            Some(pem) => {
                let certs = work.path().join("certs");
                std::fs::create_dir(&certs).expect("create the push cert dir");
                std::fs::copy(pem, certs.join("ca.crt"))
                    .unwrap_or_else(|e| panic!("copying {} for the push: {e}", pem.display()));
                c.arg("--dest-cert-dir").arg(certs);
            }
            None => {
                c.arg("--dest-tls-verify=false");
            }
        }
        match self.creds() {
            Some(creds) => c.arg("--dest-creds").arg(creds),
            None => c.arg("--dest-no-creds"),
        };
        c.arg(format!("oci:{}", layout.display()))
            .arg(format!("docker://{}", self.image_ref()));
        run_ok(
            c,
            &format!("pushing {}/{TINY_REPO}:{TINY_TAG}", self.host()),
        );
    }
}

/// Write a one-layer OCI image layout for this machine's architecture into `dir`.
pub fn write_oci_layout(dir: &Path) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("create the layout's blob dir");
    let put = |bytes: &[u8]| -> String {
        let hex = super::pki::sha256_hex(bytes);
        std::fs::write(blobs.join(&hex), bytes).expect("write a blob");
        format!("sha256:{hex}")
    };

    let layer = tar_one_file("hello.txt", b"regtrust test image\n");
    let layer_digest = put(&layer);
    let config = serde_json::to_vec(&json!({
        "architecture": go_arch(),
        "os": "linux",
        "config": {},
        // Uncompressed layer: its diff_id is its digest.
        "rootfs": { "type": "layers", "diff_ids": [layer_digest] },
    }))
    .expect("serialise the image config");
    let config_digest = put(&config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest,
            "size": layer.len(),
        }],
    }))
    .expect("serialise the manifest");
    let manifest_digest = put(&manifest);
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest.len(),
        }],
    });
    std::fs::write(dir.join("index.json"), index.to_string()).expect("write index.json");
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("write oci-layout");
}

/// GOARCH for this machine, as image configs name it.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// A ustar archive holding one regular file (mode 0644, owner 0:0, mtime 0).
fn tar_one_file(name: &str, contents: &[u8]) -> Vec<u8> {
    assert!(name.len() < 100, "tar name fits the ustar name field");
    let mut header = [0u8; 512];
    let field =
        |h: &mut [u8; 512], at: usize, value: &[u8]| h[at..at + value.len()].copy_from_slice(value);
    field(&mut header, 0, name.as_bytes());
    field(&mut header, 100, b"0000644\0");
    field(&mut header, 108, b"0000000\0");
    field(&mut header, 116, b"0000000\0");
    field(
        &mut header,
        124,
        format!("{:011o}\0", contents.len()).as_bytes(),
    );
    field(&mut header, 136, b"00000000000\0");
    header[156] = b'0';
    field(&mut header, 257, b"ustar\0");
    field(&mut header, 263, b"00");
    // The checksum is computed with its own field read as spaces.
    field(&mut header, 148, b"        ");
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    field(&mut header, 148, format!("{sum:06o}\0 ").as_bytes());

    let mut tar = header.to_vec();
    tar.extend_from_slice(contents);
    tar.resize(tar.len().div_ceil(512) * 512, 0);
    tar.resize(tar.len() + 1024, 0);
    tar
}
