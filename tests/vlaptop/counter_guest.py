# SPDX-License-Identifier: GPL-2.0-or-later
"""The counting guest of the save/restore tests (tests/vmm/test_save.py,
tests/hvd/test_hvd_save.py): its /test.sh, and reading its console."""

import re
import time

import pytest

# Counts forever: each count is written to its own sector of /dev/vda
# (fsync'd) before it is printed with the guest's time.
COUNTER_SH = """\
i=0
while :; do
    i=$((i + 1))
    if printf 'count %08d' $i | dd of=/dev/vda bs=512 seek=$i conv=sync,fsync 2>/dev/null; then
        echo "hv-guest: wrote $i"
    fi
    echo "hv-guest: count $i $(date +%s)"
    sleep 0.3
done
"""


def counts(text):
    """(count, guest time) of each count line, in order."""
    return [(int(m.group(1)), int(m.group(2)))
            for m in re.finditer(r"hv-guest: count (\d+) (\d+)", text)]


def writes(text):
    """The counts whose sector write succeeded, in order."""
    return [int(m.group(1)) for m in re.finditer(r"hv-guest: wrote (\d+)", text)]


def wait_count(read_console, above, timeout, describe):
    """Waits for a count above `above` in read_console()'s text. Returns
    (counts, before, after): this machine's time just before the last read
    that did not show it yet and just after the one that did, which bound
    when the guest printed it. describe() gives the failure's details."""
    deadline = time.time() + timeout
    before = time.time()
    while time.time() < deadline:
        seen = counts(read_console())
        now = time.time()
        if seen and seen[-1][0] > above:
            return seen, before, now
        before = now
        time.sleep(0.5)
    pytest.fail(f"no count above {above} on the console:\n{describe()}")
