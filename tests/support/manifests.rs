//! The shipped manifests as objects: the kustomize base or a Helm preset rendered by
//! `ci/deploy_check.py json` in the venv `ci/check-deploy.sh` installs (helm-sdkpy, PyYAML).

use super::run_ok;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python of `ci/check-deploy.sh`'s venv, or a failure saying how to get it.
pub fn ci_python() -> PathBuf {
    let python = repo().join("target/ci-tools/venv/bin/python");
    assert!(
        python.is_file(),
        "{} missing: run `make check-deploy` (ci/check-deploy.sh) once; it installs kubectl, \
         helm-sdkpy and PyYAML there",
        python.display()
    );
    python
}

/// The objects of a rendering, as JSON: a YAML file, or the chart's default render.
pub fn rendered(source: &Path) -> Vec<Value> {
    let mut c = Command::new(ci_python());
    c.arg(repo().join("ci/deploy_check.py"))
        .arg("json")
        .arg(source);
    let out = run_ok(c, &format!("deploy_check.py json {}", source.display()));
    serde_json::from_slice(&out.stdout).expect("deploy_check.py json prints a JSON array")
}

/// The chart rendered with one of its `ci/*-values.yaml` presets.
pub fn chart_with(values: &str) -> Vec<Value> {
    let mut c = Command::new(ci_python());
    c.arg(repo().join("ci/deploy_check.py"))
        .arg("json")
        .arg(repo().join("packaging/helm/regtrust"))
        .arg(repo().join("packaging/helm/regtrust/ci").join(values));
    serde_json::from_slice(&run_ok(c, &format!("deploy_check.py json chart {values}")).stdout)
        .expect("deploy_check.py json prints a JSON array")
}

/// The one object of `kind` in a rendering.
pub fn workload<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = docs.iter().filter(|d| d["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "one {kind} in the rendering");
    found[0]
}
