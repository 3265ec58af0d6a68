# Lists what the guest sees: block devices, network links, virtio and PCI devices.
echo "hv-guest: block $(ls /sys/class/block | tr '\n' ' ')"
echo "hv-guest: net $(ls /sys/class/net | tr '\n' ' ')"
for d in /sys/bus/virtio/devices/*; do
    [ -e "$d" ] && echo "hv-guest: virtio $(basename "$d") device $(cat "$d/device")"
done
# Each PCI function, its device id and, for a disk, its first 8 bytes.
for d in /sys/bus/pci/devices/*; do
    blk=$(ls "$d"/virtio*/block 2>/dev/null)
    first=""
    [ -n "$blk" ] && first=$(head -c 8 "/dev/$blk")
    echo "hv-guest: pci $(basename "$d") $(cat "$d/device") $first"
done
exit 0
