#!/usr/bin/env bash
# Downloads the SCAP Security Guide content for Debian 12 (`ssg-debian12-ds.xml`) and prints
# the path of the data stream.
#
# Debian 12's own `ssg-debian` ships only Debian 10/11 content, which marks every rule
# not-applicable on Debian 12. The next release's `ssg-debian` package has the Debian 12 data
# stream: it is fetched with a private apt state directory (the host's apt lists and sources
# stay untouched) and unpacked with `dpkg-deb -x`, never installed.
#
# Usage: tests/openscap/fetch-ssg.sh [CACHE_DIR]   (default: target/openscap)
set -euo pipefail
cd "$(dirname "$0")/../.."

cache=${1:-target/openscap}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
ds="$cache/content/usr/share/xml/scap/ssg/content/ssg-debian12-ds.xml"
if [ -s "$ds" ]; then
    echo "$ds"
    exit 0
fi

state="$cache/apt"
mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$state/etc/preferences.d"
cat >"$state/etc/sources.list" <<SOURCES
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
SOURCES
apt_private=(
    -o Dir::State="$state"
    -o Dir::State::Lists="$state/lists"
    -o Dir::State::status=/dev/null
    -o Dir::Cache="$state/cache"
    -o Dir::Cache::pkgcache=
    -o Dir::Cache::srcpkgcache=
    -o Dir::Etc::SourceList="$state/etc/sources.list"
    -o Dir::Etc::SourceParts=/dev/null
    -o Dir::Etc::Preferences=/dev/null
    -o Dir::Etc::PreferencesParts="$state/etc/preferences.d"
    -o APT::Architecture=amd64
    -o Acquire::Languages=none
    -o Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false
)
apt-get "${apt_private[@]}" -qq update >&2
(cd "$cache" && apt-get "${apt_private[@]}" -qq download ssg-debian >&2)
deb=$(ls -t "$cache"/ssg-debian_*.deb | head -n1)
rm -rf "$cache/content"
dpkg-deb -x "$deb" "$cache/content"
if [ ! -s "$ds" ]; then
    echo "fetch-ssg: $deb has no ssg-debian12-ds.xml" >&2
    exit 1
fi
echo "$ds"
