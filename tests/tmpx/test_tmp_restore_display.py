import time
import pytest
from test_hvd import HVCTL, start_hvd, stop_hvd, hvctl_ok, vm_state
from vlaptop import wait_for

pytestmark = pytest.mark.vlaptop


@pytest.fixture(scope="module")
def lt(laptop):
    def setup(l):
        l.check("modprobe kvm_amd && modprobe virtio_gpu; mkdir -p /run/hv")
        l.check("SDL_VIDEODRIVER=kmsdrm setsid hv-switch --socket /run/hv/switch.sock </dev/null >/tmp/switch.log 2>&1 &")
        wait_for(lambda: l.run("test -S /run/hv/switch.sock").rc == 0, 30, "switch")
        start_hvd(l)
    laptop.prepare(setup)
    yield laptop
    stop_hvd(laptop)


def connected(l):
    return int(l.run("grep -c \"vm 'red' connected\" /tmp/switch.log").stdout.strip() or 0)


@pytest.mark.parametrize("restart", [False, True])
def test_restore(lt, restart):
    l = lt
    conf = (f"[vm]\nname=red\nmemory=256M\nkernel={l.desktop_kernel}\ninitrd={l.desktop_initrd}\n"
            f"cmdline=console=ttyS0 panic=-1 quiet hv.test=desk hv.colour=c02020 hv.name=red\nslot=1\n")
    l.put(conf.encode(), "/tmp/red.conf")
    l.run(f"{HVCTL} destroy red; {HVCTL} discard red; {HVCTL} undefine red")
    hvctl_ok(l, "define", "/tmp/red.conf")
    before = connected(l)
    hvctl_ok(l, "start", "red")
    wait_for(lambda: connected(l) > before, 240, lambda: l.run("tail /tmp/switch.log").stdout)
    time.sleep(20)
    hvctl_ok(l, "save", "red", timeout=180)
    wait_for(lambda: vm_state(l, "red") == "saved", 60, "saved")
    if restart:
        l.check("pkill -x hvd; sleep 1")
        start_hvd(l)
    n = connected(l)
    hvctl_ok(l, "start", "red")
    ok = True
    try:
        wait_for(lambda: connected(l) > n, 60, "reconnect")
    except AssertionError:
        ok = False
    print("SWITCH", l.run("tail -15 /tmp/switch.log").stdout)
    print("VMM", l.run("cat /run/hv/vms/red/vmm.log").stdout[-3000:])
    print("HVD", l.run("tail -8 /tmp/hvd.log").stdout)
    assert ok
