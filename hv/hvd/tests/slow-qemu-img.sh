#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# A qemu-img for hvd's tests, copied as "qemu-img" into a folder put first in
# hvd's PATH: the real one ($REAL_QEMU_IMG), except that `convert` prints
# progress records slowly, with junk among them, as the file "mode" next to
# it says: "slow" (10 steps, 0.3 s each), "gate" (runs to 50 %, waits there
# until a file "go" appears next to it, at most 60 s, then 0.2 s a step),
# "fail" (an I/O error at 30 %).
# Empty or missing: just the real qemu-img.
dir=$(dirname "$0")
mode=$(cat "$dir/mode" 2>/dev/null)
if [ "$1" != convert ] || [ -z "$mode" ]; then
    exec "$REAL_QEMU_IMG" "$@"
fi
for a; do out=$a; done
printf 'partial' >"$out"
for pct in 0.00 10.00 20.00 30.00 40.00 50.00 60.00 70.00 80.00 90.00; do
    printf '    (%s/100%%)\r' "$pct"
    printf '(999.00/100%%)\r(nan/100%%)\r\001\377 junk\n    (5.00/100%%)\r'
    if [ "$mode" = gate ] && [ "$pct" = 50.00 ]; then
        n=0
        while [ ! -e "$dir/go" ] && [ $n -lt 600 ]; do
            sleep 0.1
            n=$((n + 1))
        done
    fi
    if [ "$mode" != gate ]; then
        sleep 0.3
    elif [ -e "$dir/go" ]; then
        sleep 0.2
    fi
    if [ "$mode" = fail ] && [ "$pct" = 30.00 ]; then
        echo "qemu-img: error while reading at byte 4194304: Input/output error" >&2
        exit 1
    fi
done
"$REAL_QEMU_IMG" "$@" >/dev/null
