#!/usr/bin/python3
"""Count every test that ran (meson's testlog.json files and pytest's JUnit XML)
and print the closing line 'N passed, N failed'. Exit 1 if any failed."""
import json
import sys
import xml.etree.ElementTree as ET


def meson_counts(path):
    passed = failed = skipped = 0
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            result = json.loads(line).get("result")
            if result in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif result == "SKIP":
                skipped += 1
            else:
                failed += 1
    return passed, failed, skipped


def junit_counts(path):
    passed = failed = skipped = 0
    root = ET.parse(path).getroot()
    for case in root.iter("testcase"):
        tags = {child.tag for child in case}
        if tags & {"failure", "error"}:
            failed += 1
        elif "skipped" in tags:
            skipped += 1
        else:
            passed += 1
    return passed, failed, skipped


def main(args):
    total = [0, 0, 0]
    for arg in args:
        kind, _, path = arg.partition(":")
        try:
            counts = meson_counts(path) if kind == "meson" else junit_counts(path)
        except (OSError, ValueError, ET.ParseError) as e:
            print(f"summarize: cannot read {path}: {e}", file=sys.stderr)
            counts = (0, 1, 0)  # a run that left no results counts as a failure
        print(f"summarize: {path}: {counts[0]} passed, {counts[1]} failed, {counts[2]} skipped")
        total = [t + c for t, c in zip(total, counts)]
    line = f"{total[0]} passed, {total[1]} failed"
    if total[2]:
        line += f", {total[2]} skipped"
    print(line)
    return 1 if total[1] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
