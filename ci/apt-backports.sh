#!/usr/bin/env bash
# Adds Debian's bookworm-backports suite to apt's sources, on the mirror the machine's own
# debian.sources names (golang-1.22-go and golang-1.23-go, the Go toolchains of the
# differential suite tests/go_versions.rs, come from there). Idempotent; needs root to write.
# Prints nothing when the suite is already configured.
set -euo pipefail

dir=/etc/apt/sources.list.d
target=$dir/bookworm-backports.sources
if grep -rqs 'bookworm-backports' "$dir" /etc/apt/sources.list 2>/dev/null; then
  exit 0
fi
# The mirror of the stanza that carries the `bookworm` suite (deb822), else of sources.list.
mirror=""
if [ -e "$dir/debian.sources" ]; then
  mirror=$(awk '
    /^URIs:/ { uris = $2 }
    /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == "bookworm") found = uris }
    /^$/ { uris = "" }
    END { print found }' "$dir/debian.sources")
fi
if [ -z "$mirror" ] && [ -e /etc/apt/sources.list ]; then
  mirror=$(awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' /etc/apt/sources.list)
fi
mirror=${mirror:-http://deb.debian.org/debian}
if [ "$(id -u)" -ne 0 ]; then
  echo "bookworm-backports is not in apt's sources; as root, write $target naming $mirror" >&2
  exit 1
fi
cat >"$target" <<SOURCES
Types: deb
URIs: $mirror
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
echo "added bookworm-backports ($mirror) to apt's sources: $target"
