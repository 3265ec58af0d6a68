# Lists what the guest sees: block devices, network links, virtio devices.
echo "hv-guest: block $(ls /sys/class/block | tr '\n' ' ')"
echo "hv-guest: net $(ls /sys/class/net | tr '\n' ' ')"
for d in /sys/bus/virtio/devices/*; do
    [ -e "$d" ] && echo "hv-guest: virtio $(basename "$d") device $(cat "$d/device")"
done
exit 0
