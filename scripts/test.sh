#!/usr/bin/env bash
# Build hv and run every test: unit tests under ASan+UBSan (gcc), a clang build
# with the libFuzzer targets (each run briefly on its corpus), and the
# end-to-end tests in the virtual laptop (pytest). The last line printed is
# "N passed, N failed", counting all of them.
#
#   scripts/test.sh                 everything
#   scripts/test.sh -k usb          pytest arguments select end-to-end tests
#   HV_E2E=0 scripts/test.sh        unit tests and fuzz smoke only
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

scripts/deps.sh build test || exit 1

results=()
status=0

setup() { # dir, meson options...
    local dir=$1
    shift
    if [ -f "$dir/build.ninja" ]; then
        meson configure "$dir" "$@" >/dev/null
    else
        meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; return 1; }
    fi
}

echo "== build (gcc): build/"
setup build && ninja -C build || exit 1

echo "== unit tests (gcc, ASan+UBSan): build-san/"
setup build-san -Db_sanitize=address,undefined && ninja -C build-san || exit 1
meson test -C build-san --suite unit --print-errorlogs || status=1
results+=("meson:build-san/meson-logs/testlog.json")

echo "== clang build with fuzz targets: build-clang/"
CC=clang setup build-clang -Dfuzz=true -Db_lundef=false && ninja -C build-clang || exit 1
# (the list is read whole: grep -q would end the pipe early, and pipefail reports that)
if meson test -C build-clang --list 2>/dev/null | grep -c ':fuzz / ' >/dev/null; then
    meson test -C build-clang --suite fuzz --print-errorlogs || status=1
    results+=("meson:build-clang/meson-logs/testlog.json")
fi

if [ "${HV_E2E:-1}" != 0 ]; then
    echo "== end-to-end tests in the virtual laptop"
    export HV_BUILD_DIR="$top/build"
    export HV_ARTIFACTS="${HV_ARTIFACTS:-$top/build/test-artifacts}"
    # A test that failed because the laptop itself died (a rare QEMU TCG
    # nested-SVM crash, see docs/testing.md) or did not boot runs once more
    # on a fresh laptop; any other failure stands.
    rerun=(--reruns 1 --only-rerun 'laptop went down|laptop did not boot|did not boot again|agent channel|agent did not answer|kernel panicked|QEMU exited')
    # Modules that drive a UI through AT-SPI each start their own X server,
    # D-Bus session and accessibility bus; libatspi keeps the first bus it
    # reached for the life of the process, so each such module but the
    # first gets a pytest process of its own.
    own_process=(tests/uivm/test_manager_switch.py)
    /usr/bin/python3 -m pytest tests -v -rsR --junitxml=build/pytest.xml "${rerun[@]}" \
        "${own_process[@]/#/--ignore=}" "$@"
    rc=$?
    # pytest's 5 means no test was collected: that is a failure of this script, not a pass.
    [ $rc -eq 0 ] || status=1
    results+=("junit:build/pytest.xml")
    n=0
    for module in "${own_process[@]}"; do
        n=$((n + 1))
        /usr/bin/python3 -m pytest "$module" -v -rsR --junitxml="build/pytest-own-$n.xml" \
            "${rerun[@]}" "$@"
        rc=$?
        # Here 5 (nothing collected) is fine: the arguments may select other tests.
        [ $rc -eq 0 ] || [ $rc -eq 5 ] || status=1
        [ -f "build/pytest-own-$n.xml" ] && results+=("junit:build/pytest-own-$n.xml")
    done
fi

echo "== summary"
scripts/summarize.py "${results[@]}" || status=1
exit $status
