#!/usr/bin/env bash
# Regenerate src/radguard/data/audit/audit-message-2023b.rng (RELAX NG XML, shipped package data)
# from the shared PS3.15 2023b A.5.1.1 schema in RELAX NG compact syntax, with Debian's trang.
#
# The compact schema as printed in the standard puts "##" documentation comments *after* the value
# they describe ("C" | ## Create), which trang rejects as a syntax error (a "##" comment must precede
# its item). They are turned into plain "#" comments first; the grammar itself is not touched.
#
# Usage: scripts/gen_audit_rng.sh [path/to/ps3.15-2023b-audit-message.rnc]
# Needs: trang (apt-get install -y trang).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
src=${1:-"$root/../shared/domain/ps3.15-2023b-audit-message.rnc"}
out="$root/src/radguard/data/audit/audit-message-2023b.rng"
command -v trang >/dev/null || { echo "trang not found: apt-get install -y trang" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed 's/##/#/g' "$src" > "$tmp/audit-message.rnc"
trang -I rnc -O rng "$tmp/audit-message.rnc" "$tmp/audit-message.rng"
mv "$tmp/audit-message.rng" "$out"
echo "wrote $out"
