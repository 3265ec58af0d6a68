#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Run every libFuzzer target for a while and write docs/fuzzing.md.

    bench/fuzz/run.py [-t SECONDS] [-b BUILD_DIR] [-k PATTERN] [--no-doc | --doc-only]

Builds the clang fuzz build if needed (CC=clang meson setup BUILD_DIR
-Dfuzz=true -Db_lundef=false; default build-fuzz), finds the targets as the
tests of meson's `fuzz` suite, and runs each one after the other (default
60 s each) from its seed corpus into a fresh corpus under
BUILD_DIR/bench-fuzz/TARGET/, where crashing inputs land too. Then it
regenerates docs/fuzzing.md from what libFuzzer printed: executions,
exec/s, coverage (cov:, ft:), corpus size and crashes. Not part of the
test suite. The figures are also kept in BUILD_DIR/bench-fuzz/results.json:
--doc-only writes the page again from them without running anything.
"""

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOAL = 10**7  # executions per target (issue 12)

# What each target drives, for the table (the source's header says more).
WHAT = {
    'fuzz_virtqueue': 'split virtqueue walker (hv/vmm/virtio/queue.c)',
    'fuzz_blk': 'virtio-blk request parser',
    'fuzz_gpu': 'virtio-gpu command parser',
    'fuzz_qcow2': 'qcow2 images (hv/vmm/block)',
    'fuzz_vhd': 'VHD images, fixed, dynamic and differencing (hv/vmm/block)',
    'fuzz-switch-proto': "hv-switch's display protocol parser",
    'fuzz_usbip': 'USB/IP parser',
    'fuzz_transport': 'virtio PCI transport, PCI config (CF8/CFC, ECAM), BARs, MSI-X',
    'fuzz_devices': 'virtio-net, -console, -balloon, -input, -vsock via the transport',
    'fuzz_pio': 'port I/O: 8250, i8042, ACPI PM, 0xCF9, RTC/CMOS',
    'fuzz_state': 'loading saved state: 8250, RTC, i8042, ACPI PM, virtio-gpu resources',
    'fuzz_display': "hv-vmm's display connection (display.c) against hv-switch's parser",
    'fuzz_vfio': 'VFIO config space virtualisation, trapped BARs, MSI-X table',
    'fuzz_fw_cfg': 'fw_cfg ports and DMA (selector, data, DMA access structures)',
    'fuzz_hvd_api': "hvd's JSON framing, request checks, VM definition validator",
    'fuzz_ahci': 'AHCI command lists, FISes, PRDTs, ATA commands, ATAPI packets, saved state',
}


def build(build_dir):
    if not os.path.exists(os.path.join(build_dir, 'build.ninja')):
        env = dict(os.environ, CC='clang')
        subprocess.run(['meson', 'setup', build_dir, '-Dfuzz=true', '-Db_lundef=false'],
                       cwd=TOP, env=env, check=True)
    subprocess.run(['ninja', '-C', build_dir], check=True)


def targets(build_dir):
    """(name, fuzzer, seed dirs/files) of each test in the fuzz suite."""
    out = subprocess.run(['meson', 'introspect', '--tests', build_dir], check=True,
                         capture_output=True, text=True).stdout
    found = []
    for t in json.loads(out):
        if not any(s.split(':')[-1] == 'fuzz' for s in t['suite']):
            continue
        fuzzer, seeds = None, []
        for arg in t['cmd']:
            if not arg.startswith('-') and not os.path.isabs(arg) and os.path.exists(
                    os.path.join(build_dir, arg)):
                arg = os.path.join(build_dir, arg)  # built programs are named from the build dir
            if arg.startswith('-seed_inputs='):
                seeds += arg.split('=', 1)[1].split(',')
            elif (not fuzzer and os.path.basename(arg).startswith('fuzz') and
                  os.path.isfile(arg) and os.access(arg, os.X_OK)):
                fuzzer = arg
            elif os.path.isdir(arg) and not os.path.realpath(arg).startswith(
                    os.path.realpath(build_dir)):
                seeds.append(arg)
        if fuzzer:
            found.append((t['name'], fuzzer, seeds))
    return sorted(found)


def count_inputs(paths):
    n = 0
    for p in paths:
        n += len(os.listdir(p)) if os.path.isdir(p) else 1
    return n


def run_one(name, fuzzer, seeds, seconds, work):
    shutil.rmtree(work, ignore_errors=True)
    corpus = os.path.join(work, 'corpus')
    os.makedirs(corpus)
    cmd = [fuzzer, f'-max_total_time={seconds}', '-rss_limit_mb=2048', '-print_final_stats=1',
           '-artifact_prefix=' + work + '/', corpus]
    dirs = [s for s in seeds if os.path.isdir(s)]
    files = [s for s in seeds if not os.path.isdir(s)]
    cmd += dirs
    if files:
        cmd.append('-seed_inputs=' + ','.join(files))
    print(f'== {name}: {seconds} s', flush=True)
    with open(os.path.join(work, 'log'), 'w') as log:
        rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=work).returncode
    text = open(os.path.join(work, 'log'), errors='replace').read()
    r = {'name': name, 'seeds': count_inputs(seeds), 'rc': rc}
    status = [l for l in text.splitlines() if re.match(r'#\d+\s', l) and 'cov:' in l]
    if status:
        last = status[-1]
        for key in ('cov', 'ft'):
            m = re.search(key + r': (\d+)', last)
            r[key] = int(m.group(1)) if m else 0
        m = re.search(r'corp: (\d+)/(\S+)', last)
        r['corpus'], r['corpus_size'] = (int(m.group(1)), m.group(2)) if m else (0, '?')
    for key, stat in (('execs', 'number_of_executed_units'), ('rate', 'average_exec_per_sec')):
        m = re.search(r'stat::' + stat + r':\s*(\d+)', text)
        r[key] = int(m.group(1)) if m else 0
    r['crashes'] = len([f for f in os.listdir(work)
                        if re.match(r'(crash|leak|timeout|oom|slow-unit)-', f)])
    print(f"   {r.get('execs', 0)} runs, {r.get('rate', 0)}/s, cov {r.get('cov')}, "
          f"ft {r.get('ft')}, corpus {r.get('corpus')}, crashes {r['crashes']}", flush=True)
    return r


def cpu_model():
    try:
        for line in open('/proc/cpuinfo'):
            if line.startswith('model name'):
                return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return 'unknown'


def duration(seconds):
    if seconds < 120:
        return f'{seconds:.0f} s'
    if seconds < 7200:
        return f'{seconds / 60:.0f} min'
    return f'{seconds / 3600:.1f} h'


def write_doc(results, seconds, now):
    clang = subprocess.run(['clang', '--version'], capture_output=True,
                           text=True).stdout.splitlines()[0]
    lines = [
        '<!-- Generated by bench/fuzz/run.py: do not edit, run it again. -->',
        '# Fuzzing',
        '',
        'The parsers that a guest, an API client or hv-switch feeds have libFuzzer',
        "targets (ASan + UBSan), each a test of meson's `fuzz` suite in the clang",
        'build: `meson test --suite fuzz` runs each briefly (10 to 30 s) from its seed',
        "corpus in the repository. Each target's source says at its top what it",
        'checks besides memory safety. This page is a longer run of `bench/fuzz/run.py`,',
        'each target from its seeds only, one after the other.',
        '',
        f'- date: {now}',
        f'- machine: {os.cpu_count()} CPUs, {cpu_model()}',
        f'- compiler: {clang}',
        f'- time per target: {seconds} s (`bench/fuzz/run.py -t {seconds}`)',
        '',
        '| target | drives | seeds | executions | exec/s | cov | ft | corpus | crashes |'
        ' 10^7 executions in |',
        '|---|---|---|---|---|---|---|---|---|---|',
    ]
    for r in results:
        rate = r.get('rate', 0)
        eta = duration(GOAL / rate) if rate else '-'
        lines.append(f"| {r['name']} | {WHAT.get(r['name'], '')} | {r['seeds']} | "
                     f"{r.get('execs', 0)} | {rate} | {r.get('cov', '-')} | {r.get('ft', '-')} | "
                     f"{r.get('corpus', '-')} ({r.get('corpus_size', '-')}) | {r['crashes']} | "
                     f"{eta} |")
    total = sum(GOAL / r['rate'] for r in results if r.get('rate'))
    lines += [
        '',
        'cov and ft are libFuzzer\'s last status line: covered edges and "features"',
        '(edges with hit counts) of the instrumented code. A target stops at its first',
        'crash; the input is then in `BUILD_DIR/bench-fuzz/TARGET/`.',
        '',
        '## Reaching 10^7 executions',
        '',
        'The goal is 10^7 executions per target. At the rates above that takes',
        f'{duration(total)} for all targets one after the other on this machine (the',
        'last column per target; fuzz_transport and fuzz_devices zero and check',
        '4 MiB of guest RAM per input, which bounds their rate). Targets can run side by side,',
        'one per CPU, and libFuzzer can put several workers on one target. To run',
        'longer:',
        '',
        '    bench/fuzz/run.py -t 3600               # an hour per target, this page again',
        '    bench/fuzz/run.py -t 600 -k transport   # only the targets matching transport',
        '    cd build-fuzz && hv/vmm/virtio/fuzz/fuzz_transport -max_total_time=36000 \\',
        '        -jobs=2 -workers=2 /tmp/transport-corpus ../hv/vmm/virtio/fuzz/corpus/transport',
        '',
        'Inputs worth keeping (new coverage, crashes once fixed) go into the seed',
        'corpus next to the target. The VM-level targets (transport, devices, pio)',
        'have seed generators (`hv/vmm/virtio/fuzz/seeds.py`, `hv/vmm/fuzz/seeds.py`)',
        'that write hand-made guest drivers; `FUZZ_TRACE=1 FUZZ_LOGS=1 TARGET INPUT`',
        'shows what an input does.',
        '',
    ]
    with open(os.path.join(TOP, 'docs', 'fuzzing.md'), 'w') as f:
        f.write('\n'.join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('-t', type=int, default=60, help='seconds per target (default 60)')
    ap.add_argument('-b', default=os.path.join(TOP, 'build-fuzz'), help='the clang fuzz build')
    ap.add_argument('-k', help='only targets whose name contains this')
    ap.add_argument('--no-doc', action='store_true', help='do not write docs/fuzzing.md')
    ap.add_argument('--doc-only', action='store_true',
                    help='write docs/fuzzing.md from the last run, run nothing')
    a = ap.parse_args()
    build_dir = os.path.abspath(a.b)
    saved = os.path.join(build_dir, 'bench-fuzz', 'results.json')
    if a.doc_only:
        with open(saved) as f:
            last = json.load(f)
        write_doc(last['results'], last['seconds'], last['date'])
        return
    build(build_dir)
    found = [t for t in targets(build_dir) if not a.k or a.k in t[0]]
    if not found:
        sys.exit('no fuzz targets: is the build configured with -Dfuzz=true?')
    results = [run_one(n, f, s, a.t, os.path.join(build_dir, 'bench-fuzz', n))
               for n, f, s in found]
    now = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')
    with open(saved, 'w') as f:
        json.dump({'results': results, 'seconds': a.t, 'date': now}, f, indent=1)
    if not a.no_doc:
        write_doc(results, a.t, now)
        print('docs/fuzzing.md written')
    sys.exit(1 if any(r['crashes'] for r in results) else 0)


if __name__ == '__main__':
    main()
