#!/usr/bin/env bash
# Build hv and show it running: the virtual laptop boots the hv host image,
# hv runs guests on the laptop's KVM, hv-switch drives the laptop's panel.
# With $DISPLAY set the laptop's panel opens in a window; without, the panel
# is saved as pictures under build/demo/. Idempotent.
#
#   scripts/demo.sh              the demo
#   scripts/demo.sh --keep       leave the laptop running until Enter is pressed
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

scripts/deps.sh build test demo
if [ -f build/build.ninja ]; then :; else meson setup build; fi
ninja -C build
exec /usr/bin/python3 scripts/demo.py "$@"
