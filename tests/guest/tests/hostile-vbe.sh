# A hostile driver of the Bochs VBE display (desktop flavour, hv-vmm
# --display ...,gpu=bochs): unbinds the kernel's bochs driver and pokes the
# DISPI registers with tools/hv-hostile-vbe.c, holding each state
# hv.hold=N seconds (15), the last one hv.lasthold=N (600); it paints
# hv.colour (first) and hv.colour2 (last).
colour=20c040 colour2=c08020 hold=15 lasthold=600
for arg in $(cat /proc/cmdline); do
    case "$arg" in
    hv.colour=*) colour="${arg#hv.colour=}" ;;
    hv.colour2=*) colour2="${arg#hv.colour2=}" ;;
    hv.hold=*) hold="${arg#hv.hold=}" ;;
    hv.lasthold=*) lasthold="${arg#hv.lasthold=}" ;;
    esac
done
bdf=""
for d in /sys/bus/pci/devices/*; do
    [ "$(cat "$d/vendor")" = 0x1234 ] && [ "$(cat "$d/device")" = 0x1111 ] && bdf=$(basename "$d")
done
if [ -z "$bdf" ]; then echo "hv-guest: no bochs display"; exit 1; fi
echo "hv-guest: bochs $bdf driver $(basename "$(readlink /sys/bus/pci/devices/$bdf/driver)")"
for c in /sys/class/vtconsole/vtcon*; do
    grep -q "frame buffer" "$c/name" 2>/dev/null && echo 0 > "$c/bind"
done
[ -e /sys/bus/pci/devices/$bdf/driver ] && echo "$bdf" > /sys/bus/pci/devices/$bdf/driver/unbind
echo 1 > /sys/bus/pci/devices/$bdf/enable
hv-hostile-vbe "$bdf" "$colour" "$colour2" "$hold" "$lasthold"
