#!/usr/bin/env bash
# regtrust quick start: the whole job on one machine, nothing set up beforehand.
#
# Installs what it needs (Debian packages, as root), builds regtrust, then on loopback only:
# makes a private CA and a registry certificate, starts a real registry (Debian's
# docker-registry) with it, starts the aggregator (embedded SQLite) and an agent against a
# scratch host root, shows the node at `unknown_authority` because it does not have the CA,
# gives the agent the CA the way a Kubernetes Secret volume update does, and shows `ok`.
# Then it prints the fleet page URL and keeps everything running until Ctrl-C
# (`--exit` stops at once instead, for scripts and CI).
set -euo pipefail
cd "$(dirname "$0")/.."

stay=1
[ "${1:-}" = "--exit" ] && stay=0

if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
say() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
die() {
  printf 'quickstart: %s\n' "$*" >&2
  for log in "${work:-/nonexistent}"/*.log; do
    [ -e "$log" ] && { printf '\n--- %s\n' "$log" >&2; tail -n 20 "$log" >&2; }
  done
  exit 1
}

say "installing what the quick start needs (Debian packages; only the missing ones)"
./ci/install-deps.sh
command -v python3 >/dev/null || die "python3 is needed to pick free ports"

say "building regtrust"
cargo build --release --locked --bin regtrust
bin=$PWD/target/release/regtrust

work=$(mktemp -d "${TMPDIR:-/tmp}/regtrust-quickstart.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# wait_for DESCRIPTION SECONDS COMMAND...: poll until the command succeeds.
wait_for() {
  local what=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "timed out after ${secs}s waiting for $what"
    sleep 0.2
  done
}

say "a private CA and a registry certificate for 127.0.0.1 (openssl)"
cd "$work"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
  -subj "/CN=regtrust quickstart CA" -keyout ca.key -out ca.crt \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
  -keyout registry.key -out registry.csr 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >registry.ext
openssl x509 -req -in registry.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
  -extfile registry.ext -out registry.crt 2>/dev/null

reg_port=$(free_port)
registry=127.0.0.1:$reg_port
say "the registry at https://$registry (Debian's docker-registry, the CNCF distribution)"
cat >registry.yml <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: "$work/registry-data"
http:
  addr: "$registry"
  tls:
    certificate: "$work/registry.crt"
    key: "$work/registry.key"
EOF
env -u REGISTRY_HTTP_ADDR docker-registry serve registry.yml >registry.log 2>&1 &
pids+=($!)
wait_for "the registry" 20 bash -c "exec 3<>/dev/tcp/127.0.0.1/$reg_port"

agg_port=$(free_port)
aggregator=http://127.0.0.1:$agg_port
say "the aggregator at $aggregator (SQLite in $work/fleet.db)"
openssl rand -hex 24 >token
"$bin" aggregator --listen "127.0.0.1:$agg_port" --db fleet.db --token-file token >aggregator.log 2>&1 &
pids+=($!)
wait_for "the aggregator" 20 curl -fsS "$aggregator/healthz"

say "an agent for node 'quickstart-node' against the scratch host root $work/node"
# A node with all three runtimes, containerd set to read certs.d.
mkdir -p node/etc/docker node/etc/containers node/etc/containerd ca-secret
cat >node/etc/containerd/config.toml <<'EOF'
version = 2
[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "/etc/containerd/certs.d"
EOF
# `--runtime auto` finds a runtime by its config file (an empty dir is no evidence).
echo '{}' >node/etc/docker/daemon.json
mkdir -p node/etc/crio && echo '[crio]' >node/etc/crio/crio.conf
agent_port=$(free_port)
"$bin" agent --host-root node --node-name quickstart-node \
  --registry "$registry" --ca "$registry=$work/ca-secret" \
  --report-url "$aggregator/api/v1/reports" --report-token-file token \
  --listen "127.0.0.1:$agent_port" --probe-interval 5s >agent.log 2>&1 &
pids+=($!)

# `regtrust report` exits 1 while a node fails: only its output matters here.
fleet_says() { { "$bin" report --url "$aggregator" --output json 2>/dev/null || true; } | grep -q "\"$1\""; }
wait_for "the node's first report" 30 fleet_says unknown_authority
say "the node cannot pull yet: it does not have the registry's CA"
"$bin" report --url "$aggregator" || true

say "giving the agent the CA, the way kubelet updates a mounted Secret (..data swap)"
ts=..$(date -u +%Y_%m_%d_%H_%M_%S.%N)
mkdir "ca-secret/$ts"
cp ca.crt "ca-secret/$ts/ca.crt"
ln -s "$ts" ca-secret/..data_tmp
mv -T ca-secret/..data_tmp ca-secret/..data
ln -s ..data/ca.crt ca-secret/ca.crt
wait_for "the node to turn ok" 30 "$bin" report --url "$aggregator"
"$bin" report --url "$aggregator"
echo
echo "installed on the node:"
find node/etc -name ca.crt -o -name hosts.toml | sed 's/^/  /'

say "fleet page: $aggregator/   (agent metrics: http://127.0.0.1:$agent_port/metrics)"
if [ $stay -eq 1 ]; then
  echo "Everything keeps running; Ctrl-C stops it and removes $work."
  wait
fi
