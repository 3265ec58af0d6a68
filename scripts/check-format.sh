#!/usr/bin/env bash
# Fails, naming the files, when a C file of the tree is not formatted with
# the project's .clang-format. Fix with: clang-format -i FILE
set -uo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "clang-format is not installed" >&2; exit 77; }
bad=()
while IFS= read -r f; do
    [ -f "$f" ] || continue
    clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done < <(git ls-files '*.c' '*.h' 2>/dev/null || find hv usb uivm tests -name '*.[ch]')
if [ ${#bad[@]} -gt 0 ]; then
    printf 'not clang-formatted: %s\n' "${bad[@]}" >&2
    exit 1
fi
echo "all C files are clang-formatted"
