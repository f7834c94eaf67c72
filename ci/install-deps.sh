#!/usr/bin/env bash
# Installs the real parts the tests run against (Debian packages), only those missing.
# Idempotent and quiet when everything is present; needs root (CI runs as root).
set -euo pipefail

# command-to-check:package
wanted=(
  docker-registry:docker-registry
  skopeo:skopeo
  containerd:containerd
  ctr:containerd
  openssl:openssl
  htpasswd:apache2-utils
  inotifywait:inotify-tools
  hyperfine:hyperfine
  /usr/bin/time:time
  go:golang-go
  curl:curl
  buildah:buildah
  musl-gcc:musl-tools
  readelf:binutils
  ip:iproute2
  tar:tar
  runc:runc
)

missing=()
for pair in "${wanted[@]}"; do
  cmd=${pair%%:*} pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
done
# Extra package lists contributed by other parts of the project (one package per line).
for list in ci/apt-packages.d/*.txt; do
  [ -e "$list" ] || continue
  while read -r pkg cmd; do
    [ -n "${pkg:-}" ] && [ "${pkg#\#}" = "$pkg" ] || continue
    command -v "${cmd:-$pkg}" >/dev/null 2>&1 || missing+=("$pkg")
  done <"$list"
done

# The static image's Rust target (make image, tests/container_e2e.rs): rustup's, not Debian's.
if command -v rustup >/dev/null 2>&1; then
  musl_target="$(uname -m)-unknown-linux-musl"
  if ! rustup target list --installed | grep -qx "$musl_target"; then
    echo "installing the Rust target $musl_target"
    rustup target add "$musl_target"
  fi
fi

# The Go toolchains of the differential suite (tests/go_versions.rs): Go 1.19 from bookworm,
# 1.22 and 1.23 (with their sources, which hold Go's own test tables) from bookworm-backports.
backports=()
for pair in /usr/lib/go-1.19/bin/go:golang-1.19-go \
  /usr/share/go-1.19/src/crypto/x509/verify.go:golang-1.19-src \
  /usr/lib/go-1.22/bin/go:golang-1.22-go \
  /usr/share/go-1.22/src/crypto/x509/verify.go:golang-1.22-src \
  /usr/lib/go-1.23/bin/go:golang-1.23-go \
  /usr/share/go-1.23/src/crypto/x509/verify.go:golang-1.23-src; do
  file=${pair%%:*} pkg=${pair#*:}
  [ -e "$file" ] && continue
  case $pkg in
    golang-1.19-*) missing+=("$pkg") ;;
    *) backports+=("$pkg") ;;
  esac
done
if [ ${#backports[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages (bookworm-backports): ${backports[*]}; run as root: ci/apt-backports.sh && apt-get update && apt-get install -t bookworm-backports ${backports[*]}" >&2
    exit 1
  fi
  ./ci/apt-backports.sh
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  echo "installing Debian packages from bookworm-backports: ${backports[*]}"
  apt-get install -y -qq --no-install-recommends -t bookworm-backports "${backports[@]}" >/dev/null
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${missing[*]}; run as root: apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
