# The PS/2 keyboard and mouse behind hv-vmm's i8042 (issue 14): waits for
# the kernel's atkbd (and psmouse, when the module is there) to find them,
# lists every input device on the console, then logs every event of every
# input device with the device it came from (tools/hv-desk.c --all). On the
# desktop flavour it paints fb0 as desk.sh does.
#   hv.colour=RRGGBB hv.name=NAME on the kernel command line
colour=808080 name=guest
for arg in $(cat /proc/cmdline); do
    case "$arg" in
    hv.colour=*) colour="${arg#hv.colour=}" ;;
    hv.name=*) name="${arg#hv.name=}" ;;
    esac
done
for i in $(seq 75); do
    if grep -q "AT .* keyboard" /proc/bus/input/devices; then
        [ -d /sys/module/psmouse ] || break
        grep -q "PS/2.*Mouse" /proc/bus/input/devices && break
    fi
    sleep 0.2
done
sed -n 's/^N: Name="\(.*\)"$/hv-guest: input device \1/p' /proc/bus/input/devices
if [ -e /dev/fb0 ]; then
    for c in /sys/class/vtconsole/vtcon*; do
        grep -q "frame buffer" "$c/name" 2>/dev/null && echo 0 > "$c/bind"
    done
fi
exec hv-desk --all 1 --colour "$colour" --name "$name"
