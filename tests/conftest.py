# SPDX-License-Identifier: GPL-2.0-or-later
"""pytest fixtures for hv's end-to-end tests (see docs/testing.md).

    laptop_image   session: the cached laptop image (built if needed)
    laptop         module: one booted virtual laptop per test module
    laptop_options module: extra keyword arguments for that laptop (a module
                   overrides it, e.g. to plug in another disk)

The laptop is always stopped (QEMU killed, its temp folder removed), and when
a test of the module failed, or the boot itself did, its console and QEMU
logs are copied to $HV_ARTIFACTS (default build/test-artifacts/).
"""

import os
import sys
import time
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS / "vlaptop"))

import build_image  # noqa: E402
import vlaptop  # noqa: E402

_timings = []      # lines for the terminal summary
_failed_modules = set()


def artifacts_dir():
    return Path(os.environ.get("HV_ARTIFACTS") or TESTS.parent / "build" / "test-artifacts")


def note_timing(line):
    """Adds a line to the 'vlaptop timings' section of pytest's summary."""
    _timings.append(line)


def pytest_configure(config):
    config.addinivalue_line("markers", "vlaptop: needs the virtual laptop (QEMU TCG)")


def _give_a_crash_line(rep, item, call):
    """A failure from pytest.fail(..., pytrace=False) has no crash line
    (reprcrash is None); pytest-rerunfailures 10.2 (Debian 12) reads its
    message for --only-rerun and ends the whole session with an
    INTERNALERROR. Each such report gets one, holding the failure's message."""
    longrepr = rep.longrepr
    if getattr(longrepr, "reprcrash", False) is not None or call.excinfo is None:
        return
    from _pytest._code.code import ReprFileLocation
    path, line = item.location[0], item.location[1] or 0
    longrepr.reprcrash = ReprFileLocation(path, line, call.excinfo.exconly())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        _failed_modules.add(item.module.__name__)
        _give_a_crash_line(rep, item, call)
        # A test that failed because the laptop died under it (its assertion
        # then only says that something timed out) says so in its message:
        # scripts/test.sh reruns those (--only-rerun 'laptop went down').
        lt = getattr(item, "funcargs", {}).get("laptop")
        why = lt.crashed() if isinstance(lt, vlaptop.Laptop) else None
        crash = getattr(rep.longrepr, "reprcrash", None)
        if why and crash is not None and "laptop went down" not in crash.message:
            crash.message = f"the laptop went down ({why}): {crash.message}"


def pytest_terminal_summary(terminalreporter):
    if _timings:
        terminalreporter.ensure_newline()
        terminalreporter.section("vlaptop timings")
        for line in _timings:
            terminalreporter.write(line + "\n")


@pytest.fixture(scope="session")
def laptop_image():
    try:
        img = build_image.ensure_image()
    except build_image.BuildError as e:
        pytest.fail(f"cannot build the laptop image: {e}", pytrace=False)
    note_timing(f"vlaptop: image ready in {img.build_seconds:.1f} s "
                f"(rebuilt: {', '.join(img.rebuilt) or 'nothing'})")
    return img


@pytest.fixture(scope="module")
def laptop_options():
    """Keyword arguments of vlaptop.Laptop beyond the image; {} unless a module overrides it."""
    return {}


@pytest.fixture(scope="module")
def laptop(request, laptop_image, laptop_options):
    """A booted laptop shared by the tests of one module."""
    module = request.module.__name__
    lt = vlaptop.Laptop(image=laptop_image, name=f"vlaptop-{module}", **laptop_options)

    def keep_crash(dead, why):
        # Each crash of the module's laptop keeps its own console.
        prefix = f"{module}-crash" + (f"{dead.restarts + 1}" if dead.restarts else "")
        dead.save_artifacts(artifacts_dir(), prefix=prefix)
        note_timing(f"vlaptop: CRASHED in {module} ({why}); booted it again")

    lt.on_restart = keep_crash
    try:
        try:
            lt.start()
        except vlaptop.LaptopError as e:
            lt.save_artifacts(artifacts_dir(), prefix=module)
            pytest.fail(f"the laptop did not boot: {e}", pytrace=False)
        note_timing(f"vlaptop: boot to shell {lt.boot_seconds:.1f} s ({module})")
        print(f"\nvlaptop: boot to shell {lt.boot_seconds:.1f} s")
        yield lt
        if module in _failed_modules:
            lt.save_artifacts(artifacts_dir(), prefix=module)
    finally:
        lt.stop()


@pytest.fixture(autouse=True)
def _revive_crashed_laptop(request):
    """Boots the module's laptop again when it died under an earlier test.

    QEMU's emulation of nested SVM now and then panics the laptop's kernel
    (docs/testing.md, 'Known flakes'); the tests after it then get a fresh
    laptop, set up again with what the module prepare()'d, instead of
    failing one after another. The crash is kept as an artifact and named in
    the summary, never hidden. (A module fixture that runs on a dead laptop
    is covered by Laptop.prepare(), which revives it first.)
    """
    if "laptop" not in request.fixturenames:
        return
    lt = request.getfixturevalue("laptop")
    why = lt.crashed()
    if not why:
        return
    try:
        lt.restart(why)
    except vlaptop.LaptopError as e:
        pytest.fail(f"the laptop crashed ({why}) and did not boot again: {e}", pytrace=False)


@pytest.fixture(scope="session")
def timed():
    """timed(label) as a context manager: records how long a step took."""
    class _Timed:
        def __init__(self, label):
            self.label = label

        def __enter__(self):
            self.t0 = time.monotonic()
            return self

        def __exit__(self, *exc):
            self.seconds = time.monotonic() - self.t0
            note_timing(f"vlaptop: {self.label} {self.seconds:.1f} s")
    return _Timed
