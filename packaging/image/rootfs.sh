#!/usr/bin/env bash
# Lays out the regtrust image's whole filesystem in a directory, for both builds: `make image`
# (packaging/image/build.sh, buildah from scratch) and packaging/Dockerfile (FROM scratch).
# One script, so the two images hold the same files with the same owners and modes.
#
#   packaging/image/rootfs.sh BINARY CA_BUNDLE OUTDIR
#
# The tree (everything root-owned):
#   /usr/local/bin/regtrust                 0755, the static binary
#   /etc/passwd, /etc/group                 0644, root (0) and nonroot (65532), as distroless has
#   /etc/ssl/certs/ca-certificates.crt      0644, the public roots (Debian's ca-certificates)
#   /tmp                                    1777, a mount point: the pods mount an emptyDir there
set -euo pipefail
if [[ $# -ne 3 ]]; then
    echo "usage: $0 BINARY CA_BUNDLE OUTDIR" >&2
    exit 2
fi
binary=$1 bundle=$2 out=$3
for f in "$binary" "$bundle"; do
    [[ -s $f ]] || { echo "$0: $f: missing or empty" >&2; exit 1; }
done
# A dynamically linked binary would need a loader and a libc, which the image does not have.
if LC_ALL=C readelf -lW "$binary" | grep -q 'program interpreter'; then
    echo "$0: $binary is dynamically linked (it names a program interpreter); build it static" >&2
    exit 1
fi
rm -rf "$out"
install -d -m 0755 "$out" "$out/etc" "$out/etc/ssl" "$out/etc/ssl/certs" "$out/usr" \
    "$out/usr/local" "$out/usr/local/bin"
install -d -m 1777 "$out/tmp"
install -m 0755 "$binary" "$out/usr/local/bin/regtrust"
install -m 0644 "$bundle" "$out/etc/ssl/certs/ca-certificates.crt"
# Numeric ids are what kubelet checks runAsNonRoot against; the names are for humans and ps.
printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' \
    'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' > "$out/etc/passwd"
printf '%s\n' 'root:x:0:' 'nonroot:x:65532:' > "$out/etc/group"
chmod 0644 "$out/etc/passwd" "$out/etc/group"
if [[ $EUID -eq 0 ]]; then
    chown -R 0:0 "$out"
fi
