# The laptop's e1000e, passed through by hv-vmm (tests/passthrough): finds the
# interface the e1000e driver bound, prints its MAC, waits for the link, asks
# QEMU's user network for a DHCP lease (udhcpc), pings its gateway, and prints
# the interface's interrupt count (MSI-X or MSI lines of /proc/interrupts)
# before and after the traffic. With hv.ptwait on the command line it then
# stays up (for hvctl destroy) instead of powering off; with hv.ptreboot it
# reboots (and so on, until the test stops the VM).
ifconfig lo up
irqs() {
    # Sum of the per-CPU counts of the lines that name the interface.
    grep "$1" /proc/interrupts | awk '{for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i} END {print s + 0}'
}
iface=""
for i in $(seq 50); do
    for dev in /sys/class/net/*; do
        drv=$(basename "$(readlink "$dev/device/driver" 2>/dev/null)" 2>/dev/null)
        [ "$drv" = e1000e ] && iface=$(basename "$dev")
    done
    [ -n "$iface" ] && break
    sleep 0.2
done
if [ -z "$iface" ]; then
    echo "hv-guest: pt: no interface bound by e1000e"
    lspci 2>/dev/null | sed 's/^/hv-guest: lspci: /'
    exit 2
fi
echo "hv-guest: pt iface $iface driver e1000e"
echo "hv-guest: pt mac $(cat /sys/class/net/$iface/address)"
ifconfig "$iface" up
for i in $(seq 100); do
    [ "$(cat /sys/class/net/$iface/carrier 2>/dev/null)" = 1 ] && break
    sleep 0.1
done
echo "hv-guest: pt carrier $(cat /sys/class/net/$iface/carrier 2>/dev/null)"
# msi_irqs/N holds "msi" or "msix" (/proc/interrupts says PCI-MSI for both).
kind=$(cat /sys/class/net/$iface/device/msi_irqs/* 2>/dev/null | sort -u | tr '\n' ' ')
echo "hv-guest: pt irq kind ${kind:-intx}"
before=$(irqs "$iface")
echo "hv-guest: pt irqs before $before"
printf '%s\n' '#!/bin/sh' \
    'case "$1" in bound|renew) ;; *) exit 0 ;; esac' \
    'ifconfig "$interface" "$ip" netmask "${subnet:-255.255.255.0}" up' \
    'echo "$ip" >/tmp/lease-ip' \
    'echo "${router%% *}" >/tmp/lease-router' >/tmp/udhcpc.sh
chmod 755 /tmp/udhcpc.sh
if ! udhcpc -i "$iface" -n -q -t 10 -T 2 -s /tmp/udhcpc.sh >/tmp/udhcpc.log 2>&1; then
    echo "hv-guest: pt: no DHCP lease"
    sed 's/^/hv-guest: udhcpc: /' /tmp/udhcpc.log
    exit 3
fi
# QEMU's restricted user network leaves the router option out: its gateway is 10.0.2.2.
router=$(cat /tmp/lease-router)
[ -n "$router" ] || router=10.0.2.2
echo "hv-guest: pt lease $(cat /tmp/lease-ip) router $router"
if ping -c 3 -W 3 "$router" >/tmp/ping.log 2>&1; then
    echo "hv-guest: pt ping $router ok"
else
    echo "hv-guest: pt ping $router failed"
    sed 's/^/hv-guest: ping: /' /tmp/ping.log
fi
echo "hv-guest: pt irqs after $(irqs "$iface")"
grep "$iface" /proc/interrupts | sed 's/^/hv-guest: pt interrupts: /'
if grep -qw hv.ptreboot /proc/cmdline; then
    echo "hv-guest: pt rebooting"
    reboot -f
fi
if grep -qw hv.ptwait /proc/cmdline; then
    echo "hv-guest: pt waiting"
    while true; do sleep 3600; done
fi
exit 0
