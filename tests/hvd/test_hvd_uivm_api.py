# SPDX-License-Identifier: GPL-2.0-or-later
"""The UIVM's narrower API over real vsock, in the virtual laptop (issue 12,
docs/hvd-api.md "Privilege levels").

A test guest that hvd knows as the UIVM (role=uivm, vsock=3) runs a static
client (tests/hvd/uivm_api_client.c) that calls hvd over vsock as a hostile
UIVM would: vm.define with disk=/dev/vda, with an image given as an absolute
path, with a kernel outside hvd's kernels folder, with the UIVM's CID,
with role=uivm, a replace of the UIVM's own definition: each is refused;
a definition from hvd's stores is accepted. Then it holds 17 connections:
16 are answered, the 17th closed, and hvctl on the laptop is answered
meanwhile. The guest prints the answers on its console; the test reads them
with hvctl console.

Run alone:  /usr/bin/python3 -m pytest tests/hvd/test_hvd_uivm_api.py -v
"""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from vlaptop import hvctl, hvctl_ok, newc, wait_for

pytestmark = pytest.mark.vlaptop

HVD = "/usr/local/sbin/hvd"
VMM = "/usr/local/bin/hv-vmm"
HVCTL = "/usr/local/bin/hvctl"
GUEST = "/var/lib/hv/test-guest"
KERNELS = "/var/lib/hv/kernels"
IMAGES = "/var/lib/hv/images"
W = "/tmp/uivm-api"
UIVM_CID = 3
PORT = 5140


def request(i, method, **params):
    return json.dumps({"id": i, "method": method, "params": params})


def definition(name, **fields):
    d = {"name": name, "memory": 128 << 20, "kernel": f"{KERNELS}/vmlinuz", "display": False}
    d.update(fields)
    return d


# id → (what, expected error code or None for success)
CASES = {
    1: ("disk=/dev/vda", "not-allowed", definition("bad1", disk=["/dev/vda"])),
    2: ("an image as an absolute path", "not-allowed",
        definition("bad2", disk=[f"{IMAGES}/legit.img"])),
    3: ("a kernel outside the kernels folder", "not-allowed",
        definition("bad3", kernel=f"{GUEST}/vmlinuz")),
    4: ("the UIVM's CID", "invalid-definition", definition("bad4", vsock=UIVM_CID)),
    5: ("role=uivm", "not-allowed", definition("bad5", role="uivm", vsock=44)),
    6: ("a PCI device not on the allow list", "not-allowed",
        definition("bad6", pci=["0000:00:02.0"])),
    7: ("a definition from hvd's stores", None,
        definition("legit", disk=["legit.img"], vsock=45)),
}

GUEST_SH = f"""#!/bin/sh
/uivm_api_client 2 {PORT} /requests.jsonl
/uivm_api_client 2 {PORT} /replace.jsonl
/uivm_api_client 2 {PORT} hold 17 40
"""


def replies(console):
    """{id: reply} from the guest's 'uivm-api: reply JSON' lines."""
    out = {}
    for line in console.replace("\r", "").split("\n")[:-1]:
        line = line.strip()
        if line.startswith("uivm-api: reply "):
            try:
                msg = json.loads(line[len("uivm-api: reply "):])
            except ValueError:
                continue
            out[msg.get("id")] = msg
    return out


def console(lt):
    rc, out, _ = hvctl(lt, "console", "uivm", "--bytes", "262144")
    return out["data"] if rc == 0 and isinstance(out, dict) else ""


@pytest.fixture(scope="module")
def uivm(laptop, tmp_path_factory):
    """hvd with vsock, and the test guest defined as the UIVM with the client inside."""
    if laptop.run(f"test -x {VMM} && test -x {HVD}").rc != 0:
        pytest.fail("hv-vmm or hvd is not installed in the laptop image")
    cc = shutil.which("gcc") or shutil.which("cc")
    exe = tmp_path_factory.mktemp("uivm-api") / "uivm_api_client"
    subprocess.run([cc, "-static", "-O2", "-std=c17", "-D_GNU_SOURCE", "-Wall", "-Wextra",
                    "-Werror", "-o", str(exe), str(Path(__file__).with_name("uivm_api_client.c"))],
                   check=True)
    reqs = "\n".join(request(i, "vm.define", definition=d) for i, (_, _, d) in CASES.items())
    replace = request(8, "vm.define", replace=True,
                      definition=definition("uivm", role="uivm", vsock=UIVM_CID,
                                            kernel=f"{GUEST}/vmlinuz", disk=["/dev/vda"]))
    cpio = newc({"test.sh": (0o100755, GUEST_SH.encode()),
                 "requests.jsonl": (0o100644, (reqs + "\n").encode()),
                 "replace.jsonl": (0o100644, (replace + "\n").encode()),
                 "uivm_api_client": (0o100755, exe.read_bytes())})

    def setup(lt):
        lt.check("modprobe kvm_amd && { [ -e /dev/vhost-vsock ] || modprobe vhost_vsock; }")
        lt.check(f"rm -rf {W}; mkdir -p {W} {KERNELS} {IMAGES} /run/hv")
        lt.put(cpio, f"{W}/api.cpio")
        lt.check(f"cat {GUEST}/initrd.img {W}/api.cpio > {W}/api.initrd")
        # What the host admin provides: a kernel in hvd's folder, an image in the store.
        lt.check(f"cp {GUEST}/vmlinuz {KERNELS}/vmlinuz && truncate -s 16M {IMAGES}/legit.img")
        lt.check(f"setsid {HVD} --vsock-port {PORT} </dev/null >>/tmp/hvd.log 2>&1 &")
        wait_for(lambda: hvctl(lt, "list")[0] == 0, 20, "hvd to answer")
        conf = (f"[vm]\nname=uivm\nrole=uivm\nvsock={UIVM_CID}\nmemory=256M\ncpus=1\n"
                f"kernel={GUEST}/vmlinuz\ninitrd={W}/api.initrd\ndisplay=false\n"
                f"cmdline=console=ttyS0 panic=-1 quiet\n")
        lt.put(conf.encode(), f"{W}/uivm.conf")
        hvctl_ok(lt, "define", f"{W}/uivm.conf", "--replace")
    laptop.prepare(setup)
    yield laptop
    if not laptop.crashed():
        print(console(laptop)[-6000:])
        print(laptop.run("tail -30 /tmp/hvd.log").stdout)
        laptop.run(f"for vm in $({HVCTL} list | awk 'NR>1 {{print $1}}'); do "
                   f"{HVCTL} destroy $vm; done; pkill -x hvd", timeout=60)


def test_hostile_uivm_is_refused_over_vsock(uivm):
    lt = uivm
    hvctl_ok(lt, "start", "uivm")
    got = wait_for(lambda: (lambda r: r if len(r) >= len(CASES) + 1 else None)(
        replies(console(lt))), 240,
        lambda: f"the guest's answers on its console:\n{console(lt)[-3000:]}\n--- hvd ---\n"
                f"{lt.run('tail -20 /tmp/hvd.log').stdout}")
    assert "the UIVM connected over vsock (CID 3)" in lt.check("cat /tmp/hvd.log").stdout
    for i, (what, code, _) in CASES.items():
        r = got[i]
        if code is None:
            assert "result" in r, (what, r)
        else:
            assert r.get("error", {}).get("code") == code, (what, r)
    assert "Not allowed from the UIVM" in got[1]["error"]["message"], got[1]
    assert got[8].get("error", {}).get("code") == "not-allowed", ("replace of the UIVM", got[8])

    names = {v["name"] for v in hvctl_ok(lt, "list")["vms"]}
    assert names == {"uivm", "legit"}, names
    uivm_def = hvctl_ok(lt, "show", "uivm")
    assert "/dev/vda" not in json.dumps(uivm_def), uivm_def


def test_a_full_vsock_side_leaves_hvctl_served(uivm):
    lt = uivm
    wait_for(lambda: "uivm-api: holding" in console(lt), 120,
             lambda: f"the guest to hold its connections:\n{console(lt)[-3000:]}")
    held = [l for l in console(lt).split("\n") if "uivm-api: hold answered" in l]
    assert held and held[-1].split("uivm-api: ")[1].strip() == "hold answered 16 closed 1", held
    assert "released" not in console(lt)
    rc, out, err = hvctl(lt, "list")
    assert rc == 0 and "legit" in {v["name"] for v in out["vms"]}, (rc, out, err)
    wait_for(lambda: "hv-guest: test test.sh exit 0" in console(lt), 120,
             lambda: f"the guest's test to end:\n{console(lt)[-3000:]}")
