# A hostile virtio-gpu driver (desktop flavour): unbinds the kernel's driver
# from the virtio-gpu PCI function and sends bad requests between good ones
# with tools/hv-hostile-gpu.c, which ends by showing a 64x64 picture in
# hv.colour=RRGGBB (default 20c040) and keeps it hv.hold=N seconds (600).
colour=20c040 hold=600
for arg in $(cat /proc/cmdline); do
    case "$arg" in
    hv.colour=*) colour="${arg#hv.colour=}" ;;
    hv.hold=*) hold="${arg#hv.hold=}" ;;
    esac
done
bdf=""
for d in /sys/bus/pci/devices/*; do
    [ "$(cat "$d/vendor")" = 0x1af4 ] && [ "$(cat "$d/device")" = 0x1050 ] && bdf=$(basename "$d")
done
if [ -z "$bdf" ]; then echo "hv-guest: no virtio-gpu"; exit 1; fi
echo "hv-guest: virtio-gpu $bdf driver $(basename "$(readlink /sys/bus/pci/devices/$bdf/driver)")"
[ -e /sys/bus/pci/devices/$bdf/driver ] && echo "$bdf" > /sys/bus/pci/devices/$bdf/driver/unbind
echo 1 > /sys/bus/pci/devices/$bdf/enable
hv-hostile-gpu "$bdf" "$colour" "$hold"
