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


def assert_counts_continue(before, after):
    """The restored run's console goes on from the saved run's, no count lost or
    repeated. The two are joined as they are, not line by line: a save in the
    middle of the guest writing a line splits it across the two consoles
    ("hv-guest: co" | "unt 27 ..."), and the stream is still whole."""
    nums = [c for c, _ in counts(before + after)]
    last = counts(before)[-1][0] if counts(before) else 0
    assert nums and nums == list(range(nums[0], nums[0] + len(nums))), nums[-20:]
    assert nums[-1] > last, (last, nums[-5:])
    return nums


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
