# The desktop guest's desktop (desktop flavour only: needs virtio-gpu):
# paints its colour and name on the virtio-gpu scanout and logs the
# keyboard and tablet events on the console (see tools/hv-desk.c).
#   hv.colour=RRGGBB hv.name=NAME hv.seconds=N on the kernel command line
colour=808080 name=guest seconds=-1
for arg in $(cat /proc/cmdline); do
    case "$arg" in
    hv.colour=*) colour="${arg#hv.colour=}" ;;
    hv.name=*) name="${arg#hv.name=}" ;;
    hv.seconds=*) seconds="${arg#hv.seconds=}" ;;
    esac
done
for i in $(seq 50); do [ -e /dev/fb0 ] && break; sleep 0.2; done
if [ ! -e /dev/fb0 ]; then echo "hv-guest: no fb0"; exit 1; fi
# The framebuffer console would draw its cursor over the picture.
for c in /sys/class/vtconsole/vtcon*; do
    grep -q "frame buffer" "$c/name" 2>/dev/null && echo 0 > "$c/bind"
done
echo "hv-guest: fb0 $(cat /sys/class/graphics/fb0/virtual_size)"
exec hv-desk --colour "$colour" --name "$name" --seconds "$seconds"
