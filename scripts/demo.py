#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The hv demo, run by scripts/demo.sh.

Boots the virtual laptop (QEMU emulating a laptop with an SVM CPU, an IOMMU,
USB and a panel) from the cached hv host image, then, inside it:
  1. loads KVM and boots a Linux guest with hv-vmm (its console is printed);
  2. runs the product: hv-switch on the laptop's panel (SDL2 on KMSDRM),
     hvd, and the UIVM (hv-manager full screen in its own VM, talking to
     hvd over vsock) started by hvd from its definition; then defines two
     VMs with hvctl and starts them (real guests on virtio-gpu and
     virtio-input, each paints its name in its colour); shows the manager
     listing them (Ctrl+Alt+0), each VM on its hotkey, the overlay, and keys
     and the mouse reaching the focused VM only.
The panel is shown in a window when $DISPLAY is set, and saved as PNG files
under build/demo/ in any case.
"""

import os
import sys
import time
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TOP / "tests" / "vlaptop"))
sys.path.insert(0, str(TOP / "tests" / "uivm"))

import build_image  # noqa: E402
import uivm_image  # noqa: E402
import uivm_laptop  # noqa: E402
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


DISPLAY_VMS = (("work", "2060c0", 1), ("personal", "c03020", 2))


def wait_painted(lt, names, timeout=300):
    """Waits until each guest's hv-desk says it painted its picture."""
    deadline = time.time() + timeout
    left = set(names)
    while left and time.time() < deadline:
        for name in sorted(left):
            if "hv-desk: painted" in lt.run(f"hvctl console {name} --bytes 65536").stdout:
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


def demo_product(lt, uivm_files):
    step("hv-switch on the panel, hvd, and the UIVM started by hvd (hv-manager in its own VM)")
    print("  the UIVM boots (Debian, cage, GTK: two to three minutes under emulation)...",
          flush=True)
    try:
        seconds = uivm_laptop.bring_up(lt, uivm_files)
        print(f"  hv-manager in the UIVM reached hvd over vsock after {seconds:.0f} s", flush=True)
    except uivm_laptop.UivmError as e:
        print(f"  the UIVM did not come up: {e}", flush=True)
    show(lt, "grep -E 'connected|focus' /tmp/switch.log")
    step("two VMs defined and started with hvctl, each with a screen and a hotkey")
    for name, colour, slot in DISPLAY_VMS:
        conf = (f"[vm]\nname={name}\nmemory=256M\nkernel={lt.desktop_kernel}\n"
                f"initrd={lt.desktop_initrd}\ncmdline=console=ttyS0 quiet hv.test=desk "
                f"hv.colour={colour} hv.name={name}\ncolour=#{colour}\nslot={slot}\n")
        lt.put(conf.encode(), f"/tmp/{name}.conf")
        show(lt, f"hvctl define /tmp/{name}.conf && hvctl start {name}")
    show(lt, "hvctl list")
    print("  the guests boot (Debian's kernel, virtio-gpu, a minute or two under "
          "emulation)...", flush=True)
    if not wait_painted(lt, [n for n, _, _ in DISPLAY_VMS]):
        print("  a guest did not paint in time", flush=True)
    work, personal = bytes.fromhex("2060c0"), bytes.fromhex("c03020")
    white = bytes.fromhex("ffffff")
    lt.send_key("ctrl", "alt", "0")
    wait_panel(lt, lambda s: s.count(white) > 0.1 * s.width * s.height, "the manager")
    snap(lt, "0-manager")
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
    step("keys and the mouse reach the focused VM (personal) only")
    lt.type_text("hv")
    lt.mouse_move(16384, 16384)
    time.sleep(3)
    show(lt, "for n in work personal; do echo \"$n:\"; hvctl console $n --bytes 65536 "
             "| grep 'hv-desk: key' | grep -v 'key [0-9]* 2' | tail -6; "
             "hvctl console $n --bytes 65536 | grep 'hv-desk: abs' | tail -2; done")
    show(lt, "grep -E 'connected|focus|latency' /tmp/switch.log | tail -8")


def main():
    keep = "--keep" in sys.argv[1:]
    OUT.mkdir(parents=True, exist_ok=True)
    step("the laptop's host image (built once, then cached)")
    image = build_image.ensure_image()
    print(f"  ready in {image.build_seconds:.1f} s", flush=True)
    step("the UIVM's image (its Debian base built once, then cached; hv-manager added)")
    uivm_files, _ = uivm_image.make_uivm(OUT / "uivm")
    extra = uivm_laptop.laptop_args(uivm_files)
    if os.environ.get("DISPLAY"):
        extra += ["-display", "gtk,zoom-to-fit=on"]
    step("booting the virtual laptop" + (" (its panel opens in a window)" if extra else ""))
    with vlaptop.Laptop(image=image, extra_args=extra, name="hv-demo") as lt:
        print(f"  boot to shell: {lt.boot_seconds:.1f} s", flush=True)
        show(lt, "uname -sr; nproc; ls /usr/local/bin")
        for part in (demo_guest, lambda lt: demo_product(lt, uivm_files)):
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
