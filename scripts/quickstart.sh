#!/usr/bin/env bash
# regtrust quick start: the whole job on one machine, nothing set up beforehand.
#
# Installs what it needs (Debian packages, as root), builds regtrust, then on loopback only:
# makes a private CA and a registry certificate, starts a real registry (Debian's
# docker-registry) with it, starts the aggregator (embedded SQLite) and an agent against a
# scratch host root, shows the node at `unknown_authority` because it does not have the CA,
# gives the agent the CA the way a Kubernetes Secret volume update does, and shows `ok`.
# Then it prints the fleet page URL and keeps everything running until Ctrl-C, which ends it
# with exit 0 (`--exit` stops at once instead, for scripts and CI: `make demo ARGS=--exit`).
# It installs only what it runs (openssl, docker-registry, curl, python3), not the test suite's
# tools.
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
missing=()
for pair in openssl:openssl docker-registry:docker-registry curl:curl python3:python3; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing ${missing[*]}: run as root, or: sudo apt-get install ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
[ -n "${REGTRUST_BIN:-}" ] || command -v cargo >/dev/null \
  || die "cargo is needed to build regtrust (rustup, or Debian's cargo)"

if [ -n "${REGTRUST_BIN:-}" ]; then
  # A build already made (tests/quickstart.rs passes its own).
  bin=$(realpath "$REGTRUST_BIN")
else
  say "building regtrust"
  cargo build --release --locked --bin regtrust
  bin=$PWD/target/release/regtrust
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/regtrust-quickstart.XXXXXX")
pids=()
tty_mode=
cleanup() {
  [ -n "$tty_mode" ] && stty "$tty_mode" 2>/dev/null
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

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
if [ $stay -eq 0 ]; then
  # --exit: everything stops and $work is removed now; name the files, not where they were.
  echo "installed on the node (in the scratch dir, removed as the demo exits):"
  (cd node && find etc -name ca.crt -o -name hosts.toml) | sed 's/^/  \//'
  say "done: the node went from unknown_authority to ok"
  exit 0
fi
echo "installed on the node:"
find "$work/node/etc" -name ca.crt -o -name hosts.toml | sed 's/^/  /'
say "fleet page: $aggregator/   (agent metrics: http://127.0.0.1:$agent_port/metrics)"
if [ -t 0 ]; then
  # Ctrl-C is read as a key, not sent as SIGINT: make (`make demo`) then sees a clean exit 0
  # instead of dying with "Interrupt" (GNU make re-raises a SIGINT it receives, whatever its
  # recipe exits with). The prompt comes after the switch, so a Ctrl-C it invites is a key.
  # The key is read by dd, not bash's `read -n`/`-d`: those put the terminal in their own
  # one-character mode, which turns ISIG back on (bash-5.2 lib/sh/shtty.c tt_setonechar).
  tty_mode=$(stty -g)
  stty -isig -icanon -echo min 1
  echo "Everything keeps running; Ctrl-C stops it and removes $work."
  while key=$(dd bs=1 count=1 2>/dev/null | od -An -tx1) && [ -n "$key" ]; do
    [ "${key// /}" = 03 ] && break
  done
  echo "stopping"
  exit 0
fi
echo "Everything keeps running; Ctrl-C (SIGINT) or SIGTERM stops it and removes $work."
wait
