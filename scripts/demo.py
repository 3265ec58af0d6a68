#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The hv demo, run by scripts/demo.sh.

Boots the virtual laptop (QEMU emulating a laptop with an SVM CPU, an IOMMU,
USB and a panel) from the cached hv host image, then, inside it:
  1. loads KVM and boots a Linux guest with hv-vmm (its console is printed);
  2. starts hvd, defines two VMs from files and lists them with hvctl;
  3. starts hv-switch on the laptop's panel (SDL2 on KMSDRM) and two real
     guests with hv-vmm --display (virtio-gpu, virtio-input): each paints its
     name in its colour; switches between them with the hotkeys, opens the
     overlay, and shows keys and the mouse reaching the focused guest only.
The panel is shown in a window when $DISPLAY is set, and saved as PNG files
under build/demo/ in any case.
"""

import os
import sys
import time
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TOP / "tests" / "vlaptop"))

import build_image  # noqa: E402
import vlaptop  # noqa: E402

OUT = TOP / "build" / "demo"


def step(title):
    print(f"\n== {title}", flush=True)


def show(lt, cmd, timeout=120):
    """Runs cmd in the laptop and prints what it printed; returns the Result."""
    print(f"laptop$ {cmd}", flush=True)
    res = lt.run(cmd, timeout=timeout)
    for stream in (res.stdout, res.stderr):
        text = stream.decode(errors="replace") if isinstance(stream, bytes) else stream
        if text.strip():
            print("  " + text.rstrip().replace("\n", "\n  "), flush=True)
    if not res.ok:
        print(f"  (exit status {res.rc})", flush=True)
    return res


def snap(lt, name):
    path = OUT / f"{name}.png"
    lt.screendump(path)
    print(f"  panel saved: {path.relative_to(TOP)}", flush=True)


def demo_guest(lt):
    step("KVM inside the laptop, and a Linux guest on it run by hv-vmm")
    show(lt, "modprobe kvm_amd && ls -l /dev/kvm && grep -o -m1 -w svm /proc/cpuinfo")
    show(lt, f"timeout 180 hv-vmm --name demo --kernel {lt.guest_kernel} "
             f"--initrd {lt.guest_initrd} --memory 256M --cpus 2 "
             f"--cmdline 'console=ttyS0 quiet hv.test=devices' 2>&1 | "
             f"grep -E 'hv-guest|hv-vmm' | head -20", timeout=200)


VM_DEFS = {
    "work": "[vm]\nname=work\nmemory=256M\ncpus=1\nkernel={k}\ninitrd={i}\n"
            "cmdline=console=ttyS0\ncolour=#2060c0\nos=linux\n",
    "personal": "[vm]\nname=personal\nmemory=256M\ncpus=1\nkernel={k}\ninitrd={i}\n"
                "cmdline=console=ttyS0\ncolour=#c03020\nos=linux\n",
}


def demo_toolstack(lt):
    step("hvd, the toolstack daemon, and hvctl")
    show(lt, "mkdir -p /run/hv /var/lib/hv && setsid hvd >/tmp/hvd.log 2>&1 </dev/null & "
             "sleep 2; hvctl list")
    for name, text in VM_DEFS.items():
        lt.put(text.format(k=lt.guest_kernel, i=lt.guest_initrd).encode(),
               f"/tmp/{name}.conf")
        show(lt, f"hvctl define /tmp/{name}.conf")
    show(lt, "hvctl start work; hvctl start personal; sleep 5; hvctl list")
    show(lt, "hvctl console work | tail -3")


DISPLAY_VMS = (("work", "2060c0", 1), ("personal", "c03020", 2))


def wait_painted(lt, names, timeout=300):
    """Waits until each guest's hv-desk says it painted its picture."""
    deadline = time.time() + timeout
    left = set(names)
    while left and time.time() < deadline:
        for name in sorted(left):
            if "hv-desk: painted" in lt.run(f"cat /tmp/desk-{name}.con").stdout:
                print(f"  {name} painted its picture", flush=True)
                left.discard(name)
        time.sleep(2)
    return not left


def wait_panel(lt, pred, what, timeout=60):
    """Waits until the panel's picture satisfies pred (the laptop is emulated:
    a switch can take a second or more there)."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        if pred(lt.screendump()):
            print(f"  the panel shows {what} after {time.time() - t0:.1f} s", flush=True)
            return True
        time.sleep(0.5)
    print(f"  the panel did not show {what} within {timeout} s", flush=True)
    return False


def demo_switch(lt):
    step("hv-switch on the laptop's panel (SDL2 on KMSDRM) and two guests that draw")
    show(lt, "hvctl destroy work; hvctl destroy personal")  # the laptop has two CPUs only
    show(lt, "modprobe virtio_gpu; sleep 1; ls /dev/dri")
    show(lt, "SDL_VIDEODRIVER=kmsdrm setsid hv-switch --socket /run/hv/switch.sock "
             ">/tmp/switch.log 2>&1 < /dev/null & sleep 3; cat /tmp/switch.log")
    for name, colour, slot in DISPLAY_VMS:
        show(lt, f"setsid hv-vmm --name {name} --kernel {lt.desktop_kernel} "
                 f"--initrd {lt.desktop_initrd} --memory 256M "
                 f"--cmdline 'console=ttyS0 quiet hv.test=desk hv.colour={colour} "
                 f"hv.name={name}' --console file:/tmp/desk-{name}.con "
                 f"--display /run/hv/switch.sock,name={name},colour={colour},slot={slot} "
                 f">/tmp/desk-{name}.log 2>&1 < /dev/null &")
    print("  the guests boot (Debian's kernel, virtio-gpu, a minute or two under "
          "emulation)...", flush=True)
    if not wait_painted(lt, [n for n, _, _ in DISPLAY_VMS]):
        print("  a guest did not paint in time", flush=True)
    show(lt, "grep -h 'hv-desk: \\(fb\\|painted\\|input\\)' /tmp/desk-*.con")
    work, personal = bytes.fromhex("2060c0"), bytes.fromhex("c03020")
    lt.send_key("ctrl", "alt", "1")
    wait_panel(lt, lambda s: s.count(work) > s.count(personal) * 10, "work")
    snap(lt, "1-work")
    lt.send_key("ctrl", "alt", "2")
    wait_panel(lt, lambda s: s.count(personal) > s.count(work) * 10, "personal")
    snap(lt, "2-personal")
    lt.send_key("ctrl", "alt", "tab")
    wait_panel(lt, lambda s: min(s.count(work), s.count(personal)) > 0.05 * s.width * s.height,
               "the overlay with both")
    snap(lt, "3-overlay")
    lt.send_key("esc")
    wait_panel(lt, lambda s: s.count(personal) > s.count(work) * 10, "personal")
    step("keys and the mouse reach the focused guest (personal) only")
    lt.type_text("hv")
    lt.mouse_move(16384, 16384)
    time.sleep(3)
    show(lt, "for n in work personal; do echo \"$n:\"; grep 'hv-desk: key' /tmp/desk-$n.con "
             "| grep -v 'key [0-9]* 2' | tail -6; grep 'hv-desk: abs' /tmp/desk-$n.con | tail -2; done")
    show(lt, "grep -E 'connected|focus|latency' /tmp/switch.log | tail -8")


def main():
    keep = "--keep" in sys.argv[1:]
    OUT.mkdir(parents=True, exist_ok=True)
    step("the laptop's host image (built once, then cached)")
    image = build_image.ensure_image()
    print(f"  ready in {image.build_seconds:.1f} s", flush=True)
    extra = ["-display", "gtk,zoom-to-fit=on"] if os.environ.get("DISPLAY") else []
    step("booting the virtual laptop" + (" (its panel opens in a window)" if extra else ""))
    with vlaptop.Laptop(image=image, extra_args=extra, name="hv-demo") as lt:
        print(f"  boot to shell: {lt.boot_seconds:.1f} s", flush=True)
        show(lt, "uname -sr; nproc; ls /usr/local/bin")
        for part in (demo_guest, demo_toolstack, demo_switch):
            try:
                part(lt)
            except vlaptop.LaptopError as e:
                print(f"  this part of the demo failed: {e}", flush=True)
        if keep and sys.stdin.isatty():
            input("\nThe laptop is running; press Enter to stop it. ")
    step(f"done; the panel pictures are in {OUT.relative_to(TOP)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
