# SPDX-License-Identifier: GPL-2.0-or-later
"""The UIVM on the virtual laptop, as the product runs it: hv-switch on the
panel, hvd, and the UIVM defined (role=uivm, autostart) and started by hvd.
Used by tests/uivm/test_uivm_laptop.py and scripts/demo.py.

    laptop_args(uivm_files)  QEMU arguments that plug the UIVM's disk in
    bring_up(laptop, uivm_files, timeout)  everything else; returns the seconds
                             from `hvctl start uivm` to hv-manager connecting
"""

import time

HVD = "/usr/local/sbin/hvd"
HVCTL = "/usr/local/bin/hvctl"
SWITCH_SOCK = "/run/hv/switch.sock"
UIVM_DIR = "/var/lib/hv/uivm"  # the UIVM's kernel and initrd inside the laptop
DISK_SERIAL = "uivmroot"
UIVM_COLOUR = (0x4A, 0x90, 0xD9)  # the UIVM's label bar on hv-switch
CONNECTED = "the UIVM connected over vsock (CID 3)"  # hvd's log line


class UivmError(Exception):
    """The UIVM could not be brought up; the message says where it stopped."""


def hexcol(c):
    return "%02x%02x%02x" % c


def laptop_args(uivm_files):
    # snapshot=on: the guest's writes go to a temporary file, never the image.
    return ["-drive", f"if=none,id=uivm,file={uivm_files}/rootfs.ext4,format=raw,snapshot=on",
            "-device", f"virtio-blk-pci,drive=uivm,serial={DISK_SERIAL}"]


def logs(laptop):
    parts = []
    for name, cmd in (("hvd", "tail -20 /tmp/hvd.log"),
                      ("hv-switch", "tail -20 /tmp/switch.log"),
                      # cage's "Basic output test failed" lines are harmless on
                      # virtio-gpu (docs/uivm.md) and would hide the rest.
                      ("uivm console", f"{HVCTL} console uivm --bytes 60000 2>&1 "
                       "| grep -v 'Basic output test failed' | tail -c 3000")):
        parts.append(f"\n--- {name} ---\n{laptop.run(cmd).stdout}")
    return "".join(parts)


def _wait(fn, timeout, what, laptop):
    deadline = time.time() + timeout
    while not fn():
        if time.time() > deadline:
            raise UivmError(f"timed out after {timeout:.0f} s waiting for {what}{logs(laptop)}")
        time.sleep(2)


def _check(laptop, cmd):
    res = laptop.run(cmd, timeout=60)
    if res.rc != 0:
        raise UivmError(f"'{cmd}' failed ({res.rc}): {res.stdout} {res.stderr}")
    return res.stdout


def bring_up(laptop, uivm_files, timeout=600):
    _check(laptop, "modprobe kvm_amd && modprobe virtio_gpu && modprobe vhost_vsock "
                   "&& test -e /dev/dri/card0 && test -e /dev/vhost-vsock")
    _check(laptop, f"mkdir -p {UIVM_DIR} /run/hv")
    for f in ("vmlinuz", "initrd.img"):
        laptop.put((uivm_files / f).read_bytes(), f"{UIVM_DIR}/{f}")
    _check(laptop, f"SDL_VIDEODRIVER=kmsdrm setsid hv-switch --socket {SWITCH_SOCK} "
                   f"</dev/null >/tmp/switch.log 2>&1 &")
    _wait(lambda: laptop.run(f"test -S {SWITCH_SOCK}").rc == 0, 30, "hv-switch's socket", laptop)
    _check(laptop, f"setsid {HVD} </dev/null >/tmp/hvd.log 2>&1 &")
    _wait(lambda: laptop.run(f"{HVCTL} list").rc == 0, 30, "hvd", laptop)
    disk = laptop.run(f"for b in /sys/block/vd*; do [ \"$(cat $b/serial)\" = {DISK_SERIAL} ] "
                      f"&& echo /dev/${{b##*/}}; done").stdout.strip()
    if not disk.startswith("/dev/vd"):
        raise UivmError("the UIVM's disk is not in the laptop (laptop_args() not given?)")
    cmdline = (uivm_files / "cmdline").read_text().strip()
    conf = (f"[vm]\nname=uivm\nrole=uivm\nvsock=3\nmemory=768M\ncpus=1\n"
            f"kernel={UIVM_DIR}/vmlinuz\ninitrd={UIVM_DIR}/initrd.img\n"
            f"cmdline={cmdline} panic=-1 systemd.journald.forward_to_console=1\n"
            f"disk={disk}\ncolour=#{hexcol(UIVM_COLOUR)}\nautostart=true\n")
    laptop.put(conf.encode(), "/tmp/uivm.conf")
    _check(laptop, f"{HVCTL} define /tmp/uivm.conf && {HVCTL} start uivm")
    t0 = time.time()
    _wait(lambda: CONNECTED in laptop.run("cat /tmp/hvd.log").stdout, timeout,
          "hv-manager in the UIVM to connect to hvd over vsock", laptop)
    return time.time() - t0


def stop(laptop):
    laptop.run(f"for vm in $({HVCTL} list | awk 'NR>1 {{print $1}}'); do "
               f"{HVCTL} destroy $vm; done; pkill -x hvd; pkill -x hv-switch", timeout=60)
