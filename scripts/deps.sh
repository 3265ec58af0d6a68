#!/usr/bin/env bash
# Install the Debian packages that hv needs: scripts/deps.sh build|test|demo ...
# Idempotent: apt-get runs only when a listed package is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

want=()
for set in "$@"; do
    list="$here/packages-$set.txt"
    [ -f "$list" ] || { echo "deps.sh: no package list $list" >&2; exit 2; }
    while read -r pkg _; do
        case "$pkg" in ''|'#'*) continue ;; esac
        want+=("$pkg")
    done <"$list"
done
[ ${#want[@]} -gt 0 ] || exit 0

missing=()
for pkg in "${want[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    [ "$status" = installed ] || missing+=("$pkg")
done
[ ${#missing[@]} -gt 0 ] || exit 0

echo "deps.sh: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
