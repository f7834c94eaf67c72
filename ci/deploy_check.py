"""Checks of the deployment artefacts that need a little code; ci/check-deploy.sh runs them.

  deploy_check.py helm CHART OUTDIR   lint the chart, render it, check its schema refuses bad values
  deploy_check.py skips DIR           every checkov skip in the rendered YAML under DIR has a reason
  deploy_check.py drift BASE HELM     the kustomize base and the chart's default render agree on
                                      what matters (mounts, security, probes, resources, settings)
  deploy_check.py json FILE|CHART [CHART/ci/X-values.yaml]
                                      print the objects of a rendered YAML file, or of CHART's
                                      default (or X-values) render, as one JSON array
                                      (tests/container_e2e.rs reads the pod specs it runs from this)

helm: no helm binary is packaged for this machine; PyPI's helm-sdkpy bundles Helm's Go library.
- Lint: Helm's lint action (chart metadata, values against values.schema.json, every template
  rendered with the default values and parsed). Any finding at warning level or above fails,
  as `helm lint --strict` would.
- Render: helm-sdkpy has no `template`, so the chart is rendered by Helm's install action
  against a stub Kubernetes API on 127.0.0.1 that only answers discovery, says "not found" to
  every read and echoes every create, with the in-memory release driver (HELM_DRIVER=memory):
  Helm renders the chart exactly as `helm install` would, and the release's manifest is written
  to OUTDIR/helm-<case>.yaml for kubernetes-validate and checkov. Nothing leaves this machine.
- Schema: a table of bad values, each of which the install must refuse.
Exit status 1 on any failure.
"""

import asyncio
import glob
import json
import os
import shutil
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The API groups and kinds the chart uses (and a few it may come to use).
RESOURCES = {
    "v1": [
        ("namespaces", "Namespace", False),
        ("secrets", "Secret", True),
        ("services", "Service", True),
        ("serviceaccounts", "ServiceAccount", True),
        ("persistentvolumeclaims", "PersistentVolumeClaim", True),
        ("configmaps", "ConfigMap", True),
        ("resourcequotas", "ResourceQuota", True),
        ("pods", "Pod", True),
    ],
    "apps/v1": [("daemonsets", "DaemonSet", True), ("deployments", "Deployment", True)],
    "networking.k8s.io/v1": [("networkpolicies", "NetworkPolicy", True)],
    "policy/v1": [("poddisruptionbudgets", "PodDisruptionBudget", True)],
    "rbac.authorization.k8s.io/v1": [
        ("roles", "Role", True),
        ("rolebindings", "RoleBinding", True),
    ],
}
KUBE_VERSION = {"major": "1", "minor": "31", "gitVersion": "v1.31.0", "platform": "linux/amd64"}

# Values the schema must refuse: (case, values).
BAD_VALUES = [
    ("unknown runtime", {"runtimes": ["podman"]}),
    ("runtime word other than auto", {"runtimes": "all"}),
    ("host with a path", {"ca": {"perHost": [{"host": "harbor.example.com/team", "secretName": "x"}]}}),
    ("host with a comma", {"registries": ["a.example.com,b.example.com"]}),
    ("per-host CA without a secret", {"ca": {"perHost": [{"host": "harbor.example.com"}]}}),
    ("digest that is a tag", {"image": {"digest": "latest"}}),
    ("misspelt key", {"agent": {"hostNetwrok": False}}),
    ("interval without a unit", {"agent": {"probeInterval": "60"}}),
    ("maxUnavailable as a word", {"agent": {"maxUnavailable": "ten"}}),
    ("secret name with a path", {"pullSecrets": ["../etc"]}),
    ("report URL without a scheme", {"agent": {"report": {"url": "aggregator:9811"}}}),
    ("unknown trust dir shape", {"hostPaths": {"trustDirs": ["podman"]}}),
    ("relative extra trust dir", {"hostPaths": {"extraTrustDirs": ["etc/containerd/hosts.d"]}}),
    ("report CA secret with a path", {"agent": {"report": {"caSecret": "../ca"}}}),
    ("database CA secret with a path", {"aggregator": {"database": {"caSecret": "../ca"}}}),
]

PG_URL = "postgres://regtrust@postgres.db.svc:5432/regtrust"
# Values the templates must refuse (a `fail`, the combination is wrong, each value alone is
# fine): (case, values, a part of the message).
BAD_COMBINATIONS = [
    ("database URL without a password secret",
     {"aggregator": {"database": {"url": PG_URL + "?sslmode=verify-full"}}},
     "set aggregator.database.passwordSecret"),
    ("database CA without a database URL",
     {"aggregator": {"database": {"caSecret": "db-ca"}}},
     "aggregator.database.caSecret is set but aggregator.database.url is empty"),
    ("database CA with sslmode=disable",
     {"aggregator": {"database": {"url": PG_URL + "?sslmode=disable", "passwordSecret": "db",
                                  "caSecret": "db-ca"}}},
     "says sslmode=disable"),
]


class StubApi(BaseHTTPRequestHandler):
    """Discovery and 404s: enough for Helm's install action to render and 'create'."""

    def log_message(self, *args):
        pass

    def _send(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/version":
            return self._send(200, KUBE_VERSION)
        if path == "/api":
            return self._send(200, {"kind": "APIVersions", "versions": ["v1"]})
        if path == "/apis":
            groups = []
            for gv in RESOURCES:
                if "/" in gv:
                    group, version = gv.split("/")
                    entry = {"groupVersion": gv, "version": version}
                    groups.append({"name": group, "versions": [entry], "preferredVersion": entry})
            return self._send(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        for prefix in ("/api/", "/apis/"):
            gv = path[len(prefix):] if path.startswith(prefix) else None
            if gv in RESOURCES:
                verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
                return self._send(200, {
                    "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                    "resources": [
                        {"name": n, "singularName": "", "namespaced": ns, "kind": k, "verbs": verbs}
                        for n, k, ns in RESOURCES[gv]
                    ],
                })
        return self._send(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                "reason": "NotFound", "code": 404, "message": "not found"})

    def do_POST(self):
        # "Created": echo the object back in the encoding it came in (JSON or protobuf).
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(201)
        self.send_header("Content-Type", self.headers.get("Content-Type", "application/json"))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_PUT = do_PATCH = do_POST


def load_values(path):
    # PyYAML comes with kubernetes-validate in the same venv.
    import yaml

    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f) or {}


def check_helm(chart, outdir, cases_only=None):
    os.makedirs(outdir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="regtrust-helm-")
    # Helm's home dirs in a scratch dir; the stub API on loopback, never through a proxy.
    os.environ.update({
        "HOME": work, "HELM_CACHE_HOME": f"{work}/cache", "HELM_CONFIG_HOME": f"{work}/config",
        "HELM_DATA_HOME": f"{work}/data", "HELM_DRIVER": "memory",
        "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
    })
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "KUBECONFIG"):
        os.environ.pop(var, None)

    server = ThreadingHTTPServer(("127.0.0.1", 0), StubApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    kubeconfig = f"{work}/kubeconfig"
    with open(kubeconfig, "w", encoding="utf-8") as f:
        f.write(
            "apiVersion: v1\nkind: Config\n"
            f"clusters: [{{name: stub, cluster: {{server: 'http://127.0.0.1:{server.server_address[1]}'}}}}]\n"
            "users: [{name: stub, user: {}}]\n"
            "contexts: [{name: stub, context: {cluster: stub, user: stub, namespace: regtrust-system}}]\n"
            "current-context: stub\n"
        )

    import helm_sdkpy

    failures = 0

    def config():
        return helm_sdkpy.Configuration(namespace="regtrust-system", kubeconfig=kubeconfig)

    # 1. Lint. helm-sdkpy drops the Go error text of each message (it serialises as {}), so
    # a finding names its file and severity; rendering below prints the text of any error.
    severity = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}
    lint = asyncio.run(helm_sdkpy.Lint(config()).run(chart))
    for msg in lint.get("Messages") or []:
        level = msg.get("Severity", 0)
        print(f"  lint {severity.get(level, level)}: {msg.get('Path')}")
        if level >= 2:
            failures += 1
    print(f"helm lint {chart}: {lint.get('TotalChartsLinted')} chart, "
          f"{'FAILED' if failures else 'ok'} (warnings and errors fail, as with --strict)")

    # 2. Render the defaults and every ci/*-values.yaml.
    cases = [("default", {})]
    for path in sorted(glob.glob(os.path.join(chart, "ci", "*-values.yaml"))):
        cases.append((os.path.basename(path)[: -len("-values.yaml")], load_values(path)))
    if cases_only is not None:
        cases = [c for c in cases if c[0] in cases_only]
    for name, values in cases:
        try:
            release = asyncio.run(helm_sdkpy.Install(config()).run(
                "regtrust", chart, values=values or None, wait=False, timeout=60))
        except helm_sdkpy.HelmError as e:
            print(f"helm render {name}: FAILED: {e}")
            failures += 1
            continue
        out = os.path.join(outdir, f"helm-{name}.yaml")
        with open(out, "w", encoding="utf-8") as f:
            f.write(release["manifest"])
        kinds = release["manifest"].count("\nkind: ")
        print(f"helm render {name}: ok, {kinds} objects -> {out}")

    def install_error(values):
        """The error rendering `values` gives, or None when it renders."""
        try:
            asyncio.run(helm_sdkpy.Install(config()).run(
                "regtrust", chart, values=values, wait=False, timeout=60))
        except helm_sdkpy.HelmError as e:
            return str(e)
        return None

    # 3. The schema refuses bad values; 4. the templates refuse wrong combinations (a
    # `fail`: each value alone is fine), saying what to change.
    checks = [("schema", [(n, v, "schema") for n, v in BAD_VALUES], True),
              ("fail", BAD_COMBINATIONS, False)]
    for kind, bad, fold in ([] if cases_only is not None else checks):
        refused = 0
        for name, values, says in bad:
            e = install_error(values)
            if e is None:
                print(f"helm {kind} {name!r}: FAILED: values {values} were accepted")
            elif says in (e.lower() if fold else e):
                refused += 1
                continue
            else:
                print(f"helm {kind} {name!r}: refused, but without {says!r}: {e}")
            failures += 1
        print(f"helm {kind}: {refused}/{len(bad)} bad value sets refused")

    server.shutdown()
    shutil.rmtree(work, ignore_errors=True)
    return failures


def render_case(chart, case="default"):
    """One of check_helm's renders ("default", or a ci/CASE-values.yaml), as a list of objects."""
    import io

    out = tempfile.mkdtemp(prefix="regtrust-render-")
    saved = sys.stdout
    sys.stdout = io.StringIO()  # check_helm's progress lines would corrupt the JSON
    try:
        failures = check_helm(chart, out, cases_only=(case,))
    finally:
        log, sys.stdout = sys.stdout.getvalue(), saved
    rendered = os.path.join(out, f"helm-{case}.yaml")
    if failures or not os.path.exists(rendered):
        sys.exit(f"rendering {chart} ({case}) failed:\n{log}")
    docs = documents(rendered)
    shutil.rmtree(out, ignore_errors=True)
    return docs


def print_json(source, values=None):
    if os.path.isdir(source):
        case = "default"
        if values:
            name = os.path.basename(values)
            if os.path.dirname(os.path.abspath(values)) != os.path.join(os.path.abspath(source), "ci") \
                    or not name.endswith("-values.yaml"):
                sys.exit(f"{values}: only the chart's own ci/*-values.yaml files are rendered")
            case = name[: -len("-values.yaml")]
        docs = render_case(source, case)
    else:
        docs = documents(source)
    json.dump(docs, sys.stdout)
    return 0


def documents(path):
    import yaml

    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def check_skips(directory):
    """Every checkov.io/skipN annotation reads CHECK_ID=reason, with a real reason."""
    import re

    failures = 0
    seen = {}  # (kind/name, check, reason) -> files
    for path in sorted(glob.glob(os.path.join(directory, "*.yaml"))):
        for doc in documents(path):
            meta = doc.get("metadata", {})
            for key, value in sorted((meta.get("annotations") or {}).items()):
                if not key.startswith("checkov.io/skip"):
                    continue
                m = re.fullmatch(r"(CKV2?_[A-Z0-9]+_[0-9]+)=(.{20,})", str(value))
                obj = f"{doc.get('kind')}/{meta.get('name')}"
                if m:
                    seen.setdefault((obj, m.group(1), m.group(2)), []).append(
                        os.path.basename(path)[: -len(".yaml")])
                else:
                    print(f"  {os.path.basename(path)} {obj}: {key}: not CHECK_ID=reason "
                          "(a reason of 20+ characters)")
                    failures += 1
    for (obj, check, reason), files in sorted(seen.items()):
        print(f"  skip {check} on {obj} ({', '.join(files)}): {reason}")
    print(f"checkov skips: {len(seen)} distinct, {'FAILED' if failures else 'each with a reason'}")
    return failures


def pick(obj, *path):
    for key in path:
        obj = (obj or {}).get(key)
    return obj


def workload_facts(docs, kind):
    """What must not differ between the kustomize base and the chart, for one workload."""
    (w,) = [d for d in docs if d.get("kind") == kind]
    pod = w["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}
    facts = {
        "strategy": w["spec"].get("updateStrategy") or w["spec"].get("strategy"),
        "pod": {k: pod.get(k) for k in (
            "hostNetwork", "dnsPolicy", "priorityClassName", "tolerations", "securityContext",
            "automountServiceAccountToken", "terminationGracePeriodSeconds")},
        "container": {k: c.get(k) for k in (
            "args", "securityContext", "livenessProbe", "readinessProbe", "resources", "ports")},
        # Host mounts: the node paths, their types, where they appear and whether read-only.
        "host mounts": sorted(
            (volumes[m["name"]]["hostPath"]["path"], volumes[m["name"]]["hostPath"].get("type"),
             m["mountPath"], bool(m.get("readOnly")))
            for m in c.get("volumeMounts", []) if "hostPath" in volumes.get(m["name"], {})),
        # Secret volumes: which keys reach the pod (items) and whether optional.
        "secret volumes": sorted(
            (json.dumps(v["secret"].get("items")), v["secret"].get("optional", False),
             v["secret"].get("defaultMode"))
            for v in volumes.values() if "secret" in v),
        "env": {k: v for k, v in env.items() if k not in (
            "REGTRUST_PULL_SECRET", "REGTRUST_CA", "REGTRUST_PROBE_INTERVAL",
            "REGTRUST_RESYNC_INTERVAL")},
    }
    return facts


def check_drift(base, helm):
    base_docs, helm_docs = documents(base), documents(helm)
    # Helm hooks (the pre-delete uninstall DaemonSet) run only on `helm uninstall`; the base
    # has their one-liner in README instead of an object.
    helm_docs = [d for d in helm_docs
                 if "helm.sh/hook" not in (d["metadata"].get("annotations") or {})]
    failures = 0
    kinds = lambda docs: sorted((d["kind"], d["metadata"]["name"]) for d in docs)
    # The base has the Namespace; the chart creates the token Secret (the base cannot).
    want = sorted(set(kinds(base_docs)) - {("Namespace", "regtrust-system")}
                  | {("Secret", "regtrust-report-token")})
    if kinds(helm_docs) != want:
        print(f"  objects differ: base (+token secret) {want} vs chart {kinds(helm_docs)}")
        failures += 1
    for kind in ("DaemonSet", "Deployment"):
        b, h = workload_facts(base_docs, kind), workload_facts(helm_docs, kind)
        for key in b:
            if b[key] != h[key]:
                print(f"  {kind} {key} differ:\n    base:  {b[key]}\n    chart: {h[key]}")
                failures += 1
    print(f"drift {base} vs {helm}: {'FAILED' if failures else 'ok'}")
    return failures


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    checks = {"helm": check_helm, "skips": check_skips, "drift": check_drift, "json": print_json}
    if cmd not in checks:
        sys.exit("usage: deploy_check.py helm CHART OUTDIR | skips DIR | drift BASE HELM | json FILE|CHART [VALUES]")
    sys.exit(1 if checks[cmd](*args) else 0)


if __name__ == "__main__":
    main()
