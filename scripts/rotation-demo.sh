#!/usr/bin/env bash
# A Harbor-style CA rotation without an outage, on loopback, with real parts: Debian's
# docker-registry over TLS (standing in for Harbor), the regtrust aggregator, and three
# regtrust agents (scratch host roots) that all read one CA input file (standing in for the
# CA Secret every node mounts). It prints each step's command and its real output; the
# README's rotation walkthrough is this script's output.
#
#   cargo build --bin regtrust && scripts/rotation-demo.sh
#
# Needs: docker-registry, openssl, curl, python3. Everything it starts is stopped by PID.
set -euo pipefail
BIN=${REGTRUST_BIN:-$(pwd)/target/debug/regtrust}
W=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$W"
}
trap cleanup EXIT
for tool in docker-registry openssl curl python3; do
  command -v "$tool" >/dev/null || { echo "rotation-demo: $tool not found (apt-get install $tool)" >&2; exit 2; }
done
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
say() { printf '\n### %s\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
# `run` that shows the exit code and does not stop the script on 1.
run_rc() { printf '$ %s\n' "$*"; set +e; "$@"; local rc=$?; set -e; printf '(exit %s)\n' "$rc"; }
wait_until() { # what, command...
  local what=$1; shift
  for _ in $(seq 1 300); do "$@" && return 0; sleep 0.2; done
  echo "rotation-demo: timed out waiting for $what" >&2; exit 1
}

mkca() { # name cn
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/$1.key" \
    -out "$W/$1.pem" -days 3650 -subj "/CN=$2" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}
mkleaf() { # ca name
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/$2.key" \
    -out "$W/$2.csr" -subj "/CN=harbor.local" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' >"$W/$2.ext"
  openssl x509 -req -in "$W/$2.csr" -CA "$W/$1.pem" -CAkey "$W/$1.key" -CAcreateserial \
    -days 365 -extfile "$W/$2.ext" -out "$W/$2.crt" 2>/dev/null
}
mkca old-ca "Harbor CA 2025"
mkca new-ca "Harbor CA 2026"
mkleaf old-ca old-leaf
mkleaf new-ca new-leaf
cp "$W/new-leaf.crt" "$W/new-chain.pem"

RPORT=$(port)
HOST=127.0.0.1:$RPORT
registry() { # cert key
  cat >"$W/registry.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: "$W/storage"}}
http: {addr: "$HOST", tls: {certificate: "$1", key: "$2"}}
EOF
  docker-registry serve "$W/registry.yml" >>"$W/registry.log" 2>&1 &
  REGISTRY_PID=$!
  PIDS+=("$REGISTRY_PID")
  wait_until "the registry" bash -c "exec 3<>/dev/tcp/127.0.0.1/$RPORT" 2>/dev/null
}
registry "$W/old-leaf.crt" "$W/old-leaf.key"

APORT=$(port)
URL=http://127.0.0.1:$APORT
printf 'write-token-demo\n' >"$W/token"
"$BIN" aggregator --listen "127.0.0.1:$APORT" --db "$W/fleet.db" --token-file "$W/token" >"$W/aggregator.log" 2>&1 &
PIDS+=($!)
wait_until "the aggregator" curl -sf "$URL/healthz" -o /dev/null

# The CA Secret, as every node mounts it: replaced atomically, as kubelet does.
secret() { cat "$@" >"$W/ca-secret.tmp"; mv "$W/ca-secret.tmp" "$W/ca-secret.pem"; }
secret "$W/old-ca.pem"
for node in node-a node-b node-c; do
  mkdir -p "$W/$node/etc/docker" "$W/$node/etc/containerd"
  printf 'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n' >"$W/$node/etc/containerd/config.toml"
  "$BIN" agent --node-name "$node" --host-root "$W/$node" --ca "$HOST=$W/ca-secret.pem" --runtime docker,containerd \
    --probe-interval 1s --report-url "$URL/api/v1/reports" --report-token-file "$W/token" \
    --listen "127.0.0.1:$(port)" >"$W/$node.log" 2>&1 &
  PIDS+=($!)
done
verdicts_are() { # verdict: every node's verdict for HOST
  [ "$("$BIN" report --url "$URL" --registry "$HOST" --output json | grep -c "\"verdict\": \"$1\"")" = 3 ]
}
fingerprints() { # the fingerprint table of the registry page, as text
  curl -s "$URL/registries/$HOST" | sed -n '/<table id="fingerprints"/,/<\/table>/p' |
    sed -e 's/<\/tr>/\n/g' -e 's/<[^>]*>/ /g' -e 's/  */ /g' -e 's/^ //' | grep -v '^ *$' || true
}
new_sha=$(openssl x509 -in "$W/new-ca.pem" -outform der | sha256sum | cut -d' ' -f1)
old_sha=$(openssl x509 -in "$W/old-ca.pem" -outform der | sha256sum | cut -d' ' -f1)
wait_until "three ok nodes" verdicts_are ok

say "0. Today: every node trusts the old CA and pulls from $HOST"
run_rc "$BIN" report --url "$URL"
run_rc "$BIN" report --url "$URL" --image "$HOST/team/app:1"
say "What if the registry switched to the new chain now?"
run_rc "$BIN" report --url "$URL" --preflight "$W/new-chain.pem" --registry "$HOST"

say "1. Add the new CA to the CA Secret as a bundle (old + new)"
run secret "$W/old-ca.pem" "$W/new-ca.pem"
say "2. Watch the fingerprint distribution reach every node (/registries/$HOST)"
wait_until "the new CA on every node" bash -c "curl -s '$URL/registries/$HOST' | grep -q '$new_sha</code></td><td class=\"n\">trusted by 3 nodes'"
fingerprints
say "3. Pre-flight with the new chain: nobody would fail"
run_rc "$BIN" report --url "$URL" --preflight "$W/new-chain.pem" --registry "$HOST"
say "   (and offline, on one node, with its own trust files)"
run_rc "$BIN" probe "$HOST" --chain "$W/new-chain.pem" --host-root "$W/node-a" --runtime docker,containerd

say "4. Switch the registry's certificate"
kill "$REGISTRY_PID"; wait "$REGISTRY_PID" 2>/dev/null || true
registry "$W/new-leaf.crt" "$W/new-leaf.key"
wait_until "a probe of the new chain" bash -c "curl -s '$URL/registries/$HOST' | grep -q 'Harbor CA 2026</span>'"
wait_until "three ok nodes" verdicts_are ok
run_rc "$BIN" report --url "$URL"

say "5. Drop the old CA from the Secret"
run secret "$W/new-ca.pem"
wait_until "the old CA gone" bash -c "! curl -s '$URL/registries/$HOST' | grep -q '$old_sha'"
wait_until "three ok nodes" verdicts_are ok
fingerprints
run_rc "$BIN" report --url "$URL" --image "$HOST/team/app:1" --output json
