#!/usr/bin/env bash
# `make image`: a static regtrust (musl) in an OCI image built from scratch with buildah, with
# no daemon and no registry, written as an oci-archive:
#
#   target/image/regtrust.oci.tar      tag regtrust:<Cargo.toml version>
#
# Why musl and not glibc +crt-static: a static glibc still dlopen()s NSS modules for
# getaddrinfo and warns about it at link time; with none in the image the lookup path is
# untested glibc behaviour. musl resolves by itself from /etc/resolv.conf and /etc/hosts (the
# files kubelet writes into every pod), and its binary is ~1 MB smaller (README, Deploying).
#
# Environment:
#   REGTRUST_IMAGE_DIR=DIR    output dir (default target/image); the musl build's own cargo
#                             target dir is DIR/cargo, apart from target/ so a `cargo test`
#                             holding target/'s lock can run this script
#   CARGO=cargo               the cargo to run
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
out=${REGTRUST_IMAGE_DIR:-$repo/target/image}
# `cargo` through rustup's proxy, so rust-toolchain.toml picks the toolchain (not $CARGO, which
# cargo test sets to the toolchain's own binary).
cargo=cargo
arch=$(uname -m)
target=$arch-unknown-linux-musl
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
tag=regtrust:$version
bundle=/etc/ssl/certs/ca-certificates.crt

missing() {
    echo "make image: $1" >&2
    exit 1
}
command -v musl-gcc >/dev/null || missing "musl-gcc not found: apt-get install musl-tools"
command -v buildah >/dev/null || missing "buildah not found: apt-get install buildah"
command -v readelf >/dev/null || missing "readelf not found: apt-get install binutils"
[[ -s $bundle ]] || missing "$bundle not found: apt-get install ca-certificates"
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$target"; then
    missing "the Rust target $target is not installed: rustup target add $target"
fi

# musl-gcc compiles the C in ring and in the bundled SQLite. CC_<target> and TARGET_CC apply to
# the target only; build scripts still compile for the host with the host's cc.
# A clean environment: run from `cargo test` (tests/container_e2e.rs), cargo's CARGO_* and
# RUSTUP_* variables would differ from a `make image` run and make build scripts rerun, so
# every alternation would rebuild ring and SQLite. Only what the build needs is passed on.
mkdir -p "$out"
clean_env=(env -i "PATH=$PATH" "HOME=${HOME:-/root}" "TMPDIR=${TMPDIR:-/tmp}"
    TARGET_CC=musl-gcc "CC_${target//-/_}=musl-gcc")
for var in CARGO_HOME RUSTUP_HOME http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
    [[ -n ${!var:-} ]] && clean_env+=("$var=${!var}")
done
"${clean_env[@]}" "$cargo" build --locked --profile image --target "$target" --bin regtrust \
    --target-dir "$out/cargo"
binary=$out/cargo/$target/image/regtrust

rootfs=$out/rootfs
packaging/image/rootfs.sh "$binary" "$bundle" "$rootfs"

# buildah's storage in a scratch dir (vfs: no overlay mounts, works on any filesystem),
# removed afterwards: nothing is left in /var/lib/containers.
store=$(mktemp -d "${TMPDIR:-/tmp}/regtrust-buildah.XXXXXX")
trap 'rm -rf "$store"' EXIT
b=(buildah --root "$store/root" --runroot "$store/runroot" --storage-driver vfs)
ctr=$("${b[@]}" from --quiet scratch)
"${b[@]}" copy --quiet "$ctr" "$rootfs/" /
# The same config as packaging/Dockerfile: numeric user, so kubelet can check runAsNonRoot (the
# agent's pod spec overrides it with uid 0).
"${b[@]}" config \
    --user 65532:65532 \
    --workingdir / \
    --entrypoint '["/usr/local/bin/regtrust"]' \
    --cmd '--help' \
    --port 9810 --port 9811 \
    --label "org.opencontainers.image.title=regtrust" \
    --label "org.opencontainers.image.version=$version" \
    "$ctr"
rm -f "$out/regtrust.oci.tar"
# --timestamp 0: the same sources give the same layer and config digests.
"${b[@]}" commit --quiet --format oci --timestamp 0 --rm "$ctr" \
    "oci-archive:$out/regtrust.oci.tar:$tag" >/dev/null
size=$(stat -c %s "$out/regtrust.oci.tar")
echo "make image: $out/regtrust.oci.tar ($tag), $((size / 1024)) KiB; binary $(( $(stat -c %s "$binary") / 1024 )) KiB"
