#!/usr/bin/env bash
# Prepares what the OpenSCAP comparison (agent/tests/openscap.rs) needs and prints the
# environment to export:
#   - the Debian packages openscap-scanner (oscap, oscap-chroot) and debootstrap;
#   - the SCAP Security Guide content for Debian 12 (fetch-ssg.sh: the next release's
#     ssg-debian package, unpacked, never installed);
#   - a Debian 12 root: `debootstrap --variant=minbase bookworm` plus openssh-server (so that
#     the SSH rules have something to judge), linux-base (the SCAP content judges kernel and
#     SSH rules only on a "system with kernel") and openscap-scanner itself (oscap runs inside
#     the root so that its dpkg probe reads the root's database), installed with service starts
#     disabled.
# Everything is cached under DIR (default target/openscap); a second run takes no time.
# Needs root and the Debian archive. Usage: tests/openscap/prepare.sh [DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."

dir=${1:-target/openscap}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
export DEBIAN_FRONTEND=noninteractive

missing=()
command -v oscap >/dev/null 2>&1 || missing+=(openscap-scanner)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v unshare >/dev/null 2>&1 || missing+=(util-linux)
if [ ${#missing[@]} -gt 0 ]; then
    echo "prepare: installing ${missing[*]}" >&2
    apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null \
        || { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
fi

ds=$(tests/openscap/fetch-ssg.sh "$dir")

root="$dir/debian-bookworm"
if [ ! -e "$root/.vigil-ready" ]; then
    rm -rf "$root"
    echo "prepare: debootstrap --variant=minbase bookworm $root (about 30 s)" >&2
    debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >/dev/null
    # No daemon may start inside the chroot while packages install.
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
    chmod +x "$root/usr/sbin/policy-rc.d"
    chroot "$root" apt-get install -y --no-install-recommends openssh-server linux-base openscap-scanner \
        >/dev/null 2>"$dir/chroot-install.log" || { cat "$dir/chroot-install.log" >&2; exit 1; }
    rm -f "$root/usr/sbin/policy-rc.d"
    touch "$root/.vigil-ready"
fi

echo "VIGIL_OPENSCAP_DS=$ds"
echo "VIGIL_OPENSCAP_DEBIAN_ROOT=$root"
