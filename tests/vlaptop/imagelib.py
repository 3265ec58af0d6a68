# SPDX-License-Identifier: GPL-2.0-or-later
"""Building blocks shared by the laptop image and the test guest builders.

Everything built here lands in a content-addressed cache:

    ${XDG_CACHE_HOME:-~/.cache}/hv/<kind>-<hash>/

where <hash> covers every input of that step (package lists, builder
sources, package versions, the files copied in). A step is built in a
temporary directory beside its final place and renamed into place when it
is complete, so a half-built entry is never used. One flock serialises the
builders of concurrent test runs.
"""

import contextlib
import fcntl
import hashlib
import lzma
import os
import re
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
STALE_DAYS = 14


class BuildError(Exception):
    """An image could not be built; the message says which step and why."""


def log(msg):
    print(f"vlaptop-build: {msg}", file=sys.stderr, flush=True)


def cache_root():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    root = Path(base) / "hv"
    root.mkdir(parents=True, exist_ok=True)
    return root


@contextlib.contextmanager
def cache_lock():
    """Holds the cache's exclusive lock (waits for other builders)."""
    path = cache_root() / "lock"
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def run(cmd, **kw):
    """Runs cmd; on failure raises BuildError with its output."""
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.STDOUT)
    res = subprocess.run(cmd, check=False, **kw)
    if res.returncode != 0:
        out = res.stdout.decode(errors="replace") if isinstance(res.stdout, bytes) else res.stdout
        raise BuildError(f"command failed ({res.returncode}): {' '.join(map(str, cmd))}\n"
                         f"{(out or '')[-4000:]}")
    return res


def need_tool(name, package):
    if shutil.which(name) is None:
        raise BuildError(f"'{name}' not found: install the Debian package '{package}' "
                         f"(scripts/packages-test.txt lists what the tests need)")


# ---- hashing -------------------------------------------------------------

class Hasher:
    """Collects the inputs of one build step into one short hex key."""

    def __init__(self, kind):
        self.h = hashlib.sha256(kind.encode())
        self.inputs = []  # what went in, for inputs.txt beside the result

    def text(self, label, value):
        self.h.update(f"\0{label}\0{value}".encode())
        if label not in ("path", "link"):
            self.inputs.append(f"{label}: {value}")
        return self

    def file(self, path):
        path = Path(path)
        data = path.read_bytes()
        # Named relative to the checkout, so that build trees in other places
        # (a CI clone, a second worktree) share the cache.
        name = path.resolve().relative_to(REPO) if path.resolve().is_relative_to(REPO) else path
        self.text("file", f"{name} sha256:{hashlib.sha256(data).hexdigest()[:16]}")
        self.h.update(data)
        return self

    def tree(self, root):
        """Paths, modes, link targets and contents of a directory tree."""
        root = Path(root)
        start = self.h.copy()
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames + [d for d in dirnames
                                            if os.path.islink(os.path.join(dirpath, d))]):
                p = Path(dirpath) / name
                st = p.lstat()
                self.text("path", f"{p.relative_to(root)}:{st.st_mode:o}")
                if stat.S_ISLNK(st.st_mode):
                    self.text("link", os.readlink(p))
                elif stat.S_ISREG(st.st_mode):
                    self.h.update(p.read_bytes())
        self.inputs.append(f"tree: {root} (hash so far {self.h.hexdigest()[:16]}, "
                           f"before {start.hexdigest()[:16]})")
        return self

    def key(self):
        return self.h.hexdigest()[:16]


# ---- the cache -----------------------------------------------------------

def cached(kind, hasher, build):
    """Returns (cache_root()/kind-key, built now?), calling build(tmpdir) if absent.

    Callers hold cache_lock(). build() fills the directory it is given; the
    hasher's inputs are written beside it as inputs.txt.
    """
    key = hasher.key()
    final = cache_root() / f"{kind}-{key}"
    if (final / ".complete").exists():
        os.utime(final)  # marks it as used, for prune_stale()
        return final, False
    tmp = Path(tempfile.mkdtemp(prefix=f".{kind}-{key}.", dir=cache_root()))
    try:
        build(tmp)
        (tmp / "inputs.txt").write_text("\n".join(hasher.inputs) + "\n")
        (tmp / ".complete").write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final, True


IN_USE_HOURS = 3


def prune_stale(keep, per_kind=3):
    """Removes cache entries unused for STALE_DAYS, and all but the per_kind
    most recently used entries of each kind; never those in keep.

    Callers hold cache_lock(), so no build is under way; leftovers of a
    killed build (names starting with '.') go too.
    """
    limit = time.time() - STALE_DAYS * 86400
    by_kind = {}
    for entry in cache_root().iterdir():
        if not entry.is_dir() or entry.name == "debs" or entry in keep:
            continue
        if entry.name.startswith(".") or entry.stat().st_mtime < limit:
            log(f"removing stale cache entry {entry.name}")
            shutil.rmtree(entry, ignore_errors=True)
            continue
        by_kind.setdefault(entry.name.rsplit("-", 1)[0], []).append(entry)
    # Entries used in the last hours may belong to a test run going on now
    # (several build trees share one cache): only older ones count as spare.
    recent = time.time() - IN_USE_HOURS * 3600
    for kind, entries in by_kind.items():
        entries.sort(key=lambda e: e.stat().st_mtime, reverse=True)
        kept = sum(1 for k in keep if k.name.startswith(kind + "-"))
        for entry in entries[max(per_kind - kept, 0):]:
            if entry.stat().st_mtime > recent:
                continue
            log(f"removing old cache entry {entry.name}")
            shutil.rmtree(entry, ignore_errors=True)


# ---- Debian packages -----------------------------------------------------

def apt_sources():
    """The host's apt sources, which mmdebstrap reuses (no mirror in the repo)."""
    env = os.environ.get("HV_APT_SOURCES")
    candidates = [env] if env else []
    candidates += ["/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"]
    for c in candidates:
        if c and Path(c).is_file() and Path(c).stat().st_size > 0:
            return Path(c)
    raise BuildError("no apt sources found (set HV_APT_SOURCES to a sources.list or "
                     ".sources file)")


def read_list(path):
    """One name a line; '#' starts a comment."""
    names = []
    for line in Path(path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.append(line)
    return names


def candidate_version(package):
    res = run(["apt-cache", "policy", package])
    for line in res.stdout.decode().splitlines():
        line = line.strip()
        if line.startswith("Candidate:"):
            version = line.split(":", 1)[1].strip()
            if version and version != "(none)":
                return version
    raise BuildError(f"apt knows no version of {package} (run apt-get update?)")


def kernel_package(meta):
    """linux-image-amd64 -> (linux-image-6.1.0-NN-amd64, its version)."""
    res = run(["apt-cache", "depends", meta])
    for line in res.stdout.decode().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "Depends:" and parts[1].startswith("linux-image-"):
            return parts[1], candidate_version(parts[1])
    raise BuildError(f"cannot resolve the kernel behind {meta} with apt-cache depends")


def fetch_deb(package, version):
    """Downloads package=version once into the cache's debs/ folder."""
    debs = cache_root() / "debs"
    debs.mkdir(exist_ok=True)
    safe_version = version.replace(":", "%3a")
    found = list(debs.glob(f"{package}_{safe_version}_*.deb"))
    if found:
        return found[0]
    tmp = Path(tempfile.mkdtemp(dir=debs))
    try:
        os.chmod(tmp, 0o777)  # apt's sandbox user must be able to write there
        run(["apt-get", "download", f"{package}={version}"], cwd=tmp)
        got = list(tmp.glob("*.deb"))
        if len(got) != 1:
            raise BuildError(f"apt-get download {package} gave {got}")
        dest = debs / got[0].name
        got[0].rename(dest)
        return dest
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def extract_kernel(package_meta, dest):
    """Extracts the kernel behind package_meta into dest; runs depmod.

    Returns (kernel version string, path of vmlinuz inside dest).
    """
    pkg, version = kernel_package(package_meta)
    deb = fetch_deb(pkg, version)
    run(["dpkg-deb", "-x", str(deb), str(dest)])
    kvers = [p.name for p in (Path(dest) / "lib/modules").iterdir()]
    if len(kvers) != 1:
        raise BuildError(f"expected one module tree in {deb}, found {kvers}")
    kver = kvers[0]
    run(["depmod", "-b", str(dest), kver])
    return kver, Path(dest) / "boot" / f"vmlinuz-{kver}"


def extract_vmlinux(bzimage, out):
    """Writes the uncompressed ELF kernel inside an xz bzImage to out.

    QEMU boots such an ELF through its PVH entry point, skipping the
    real-mode setup and the in-guest decompression (about 2 s under TCG).
    Returns False when bzimage holds no xz-compressed ELF with a PVH note.
    """
    data = Path(bzimage).read_bytes()
    start = data.find(b"\xfd7zXZ\x00")
    if start < 0:
        return False
    try:
        elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data[start:])
    except lzma.LZMAError:
        return False
    # XEN_ELFNOTE_PHYS32_ENTRY (18) in a "Xen" note marks the PVH entry.
    pvh_note = re.compile(re.escape(struct.pack("<I", 4)) + b"(?:\x04|\x08)\0\0\0" +
                          re.escape(struct.pack("<I", 18) + b"Xen\0"))
    if not elf.startswith(b"\x7fELF") or not pvh_note.search(elf):
        return False
    Path(out).write_bytes(elf)
    return True


def kernel_key(package_meta):
    """What identifies the kernel behind a meta package, for hashing."""
    return "%s=%s" % kernel_package(package_meta)


# ---- kernel modules ------------------------------------------------------

def _modname(path):
    name = Path(path).name
    for suffix in (".xz", ".zst", ".gz"):
        name = name.removesuffix(suffix)
    return name.removesuffix(".ko").replace("-", "_")


def module_load_order(moddir, wanted):
    """Module files (relative to moddir) for wanted names, dependencies first.

    Names that are built into the kernel (modules.builtin) are skipped.
    """
    moddir = Path(moddir)
    deps, paths = {}, {}
    for line in (moddir / "modules.dep").read_text().splitlines():
        mod, _, rest = line.partition(":")
        name = _modname(mod)
        paths[name] = mod
        deps[name] = [_modname(d) for d in rest.split()]
    builtin = {_modname(l) for l in (moddir / "modules.builtin").read_text().split()}
    order, seen = [], set()

    def visit(name):
        if name in seen:
            return
        seen.add(name)
        for dep in deps[name]:
            visit(dep)
        order.append(paths[name])

    for want in wanted:
        name = want.replace("-", "_")
        if name in builtin:
            continue
        if name not in deps:
            raise BuildError(f"module {want} is neither a module nor built in ({moddir})")
        visit(name)
    return order


def copy_modules(moddir, wanted, dest):
    """Copies wanted modules (+deps) flat into dest; writes dest/load-order."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    names = []
    for rel in module_load_order(moddir, wanted):
        src = Path(moddir) / rel
        name = src.name
        if name.endswith(".xz"):
            data = run(["xz", "-dc", str(src)]).stdout
            name = name.removesuffix(".xz")
            (dest / name).write_bytes(data)
        else:
            shutil.copy2(src, dest / name)
        names.append(name)
    (dest / "load-order").write_text("".join(n + "\n" for n in names))
    return names


# ---- initramfs pieces ----------------------------------------------------

def install_busybox(root):
    """Static busybox at root/bin with a link per applet."""
    src = Path("/bin/busybox")
    need_tool("busybox", "busybox-static")
    res = run([str(src), "--list"])
    if b"switch_root" not in res.stdout:
        raise BuildError("/bin/busybox lacks switch_root: install busybox-static")
    bindir = Path(root) / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, bindir / "busybox")
    for applet in res.stdout.decode().split():
        link = bindir / applet
        if applet != "busybox" and not link.exists():
            link.symlink_to("busybox")
    for d in ("dev", "proc", "sys", "tmp", "run", "etc", "root"):
        (Path(root) / d).mkdir(exist_ok=True)
    os.symlink("bin", Path(root) / "sbin")


def make_cpio(root, out):
    """An uncompressed newc archive of root, owned by root:root."""
    need_tool("cpio", "cpio")
    names = subprocess.run(["find", ".", "-mindepth", "1", "-print0"], cwd=root,
                           check=True, stdout=subprocess.PIPE).stdout
    with open(out, "wb") as f:
        res = subprocess.run(["cpio", "--quiet", "--null", "-o", "-H", "newc", "-R", "0:0"],
                             cwd=root, input=names, stdout=f, stderr=subprocess.PIPE)
    if res.returncode != 0:
        raise BuildError(f"cpio failed: {res.stderr.decode(errors='replace')}")


def concat(parts, out):
    """Concatenates files (the kernel accepts a chain of cpio archives)."""
    with open(out, "wb") as f:
        for p in parts:
            with open(p, "rb") as src:
                shutil.copyfileobj(src, f, 1 << 20)
