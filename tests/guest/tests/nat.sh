# Brings eth0 up, asks for a DHCP lease (busybox udhcpc) and pings the
# router the lease names (hvd's NAT bridge). Prints the MAC, the lease and the
# ping result on the console.
ifconfig lo up
if ! ifconfig eth0 up 2>/dev/null; then
    echo "hv-guest: nat: no eth0"
    exit 2
fi
echo "hv-guest: nat mac $(cat /sys/class/net/eth0/address)"
printf '%s\n' '#!/bin/sh' \
    'case "$1" in bound|renew) ;; *) exit 0 ;; esac' \
    'ifconfig "$interface" "$ip" netmask "${subnet:-255.255.255.0}" up' \
    'echo "$ip" >/tmp/lease-ip' \
    'echo "${router%% *}" >/tmp/lease-router' >/tmp/udhcpc.sh
chmod 755 /tmp/udhcpc.sh
if ! udhcpc -i eth0 -n -q -t 10 -T 2 -s /tmp/udhcpc.sh >/tmp/udhcpc.log 2>&1; then
    echo "hv-guest: nat: no DHCP lease"
    sed 's/^/hv-guest: udhcpc: /' /tmp/udhcpc.log
    exit 3
fi
router=$(cat /tmp/lease-router)
echo "hv-guest: nat lease $(cat /tmp/lease-ip) router $router"
if ping -c 3 -W 3 "$router" >/tmp/ping.log 2>&1; then
    echo "hv-guest: nat ping $router ok"
else
    echo "hv-guest: nat ping $router failed"
    sed 's/^/hv-guest: ping: /' /tmp/ping.log
    exit 4
fi
exit 0
