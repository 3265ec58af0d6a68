#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Builds the UIVM: a minimal Debian 12 guest that boots straight into
# hv-manager, full screen under the cage kiosk compositor, talking to hvd
# over vsock (CID 2, port 5140). Output, for hv-vmm's direct kernel boot:
#   $OUT/vmlinuz  $OUT/initrd.img  $OUT/rootfs.ext4  $OUT/cmdline
# OUT defaults to ${XDG_CACHE_HOME:-$HOME/.cache}/hv/uivm.
#
# Two stages, so that a new hv-manager does not cost a new Debian tree:
#   base     Debian, cage, the kiosk service (everything but hv-manager);
#            rebuilt only when this script changes ($OUT/base, or --base-only)
#   manager  a copy of the base's root file system with hv-manager written
#            into it (debugfs, no mount, no root needed): seconds
#
# usage: build-uivm.sh [--manager PATH] [--out DIR] [--force]
#        build-uivm.sh --base-only [--out DIR] [--force]   the base, into DIR
#        build-uivm.sh --base DIR [--manager PATH] --out DIR  add hv-manager to
#                                                          the base in DIR
# needs (as root, or with mmdebstrap's unshare mode): mmdebstrap, e2fsprogs.
# The Debian mirror comes from the host's own apt sources; no hostname here.
set -eu

manager=${HV_MANAGER:-build/uivm/manager/hv-manager}
out=${XDG_CACHE_HOME:-$HOME/.cache}/hv/uivm
force=0
mode=all
base=
sources=/etc/apt/sources.list.d/debian.sources
while [ $# -gt 0 ]; do
    case $1 in
    --manager) manager=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --force) force=1; shift ;;
    --base-only) mode=base; shift ;;
    --base) mode=manager; base=$2; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "build-uivm: unknown option $1" >&2; exit 2 ;;
    esac
done

die() { echo "build-uivm: $*" >&2; exit 1; }
need_manager() {
    [ -x "$manager" ] || die "hv-manager not found at $manager (ninja -C build, or --manager PATH)"
    command -v debugfs >/dev/null || die "debugfs is not installed (apt-get install e2fsprogs)"
}

# The base's stamp: this script, minus nothing (any change rebuilds it).
base_stamp=$(sha256sum "$0" | cut -c1-16)

# install_manager BASE_DIR OUT_DIR: the base's kernel, initrd and command
# line, and a copy of its root file system with hv-manager in it.
install_manager() {
    [ -f "$1/stamp" ] || die "$1 is not a built UIVM base (no stamp; build it with --base-only)"
    mkdir -p "$2"
    stamp=$( (cat "$1/stamp"; cat "$manager") | sha256sum | cut -c1-16)
    if [ "$force" = 0 ] && [ -f "$2/stamp" ] && [ "$(cat "$2/stamp")" = "$stamp" ]; then
        echo "build-uivm: $2 is up to date"
        return
    fi
    for f in vmlinuz initrd.img cmdline; do
        cp "$1/$f" "$2/$f.tmp" && mv "$2/$f.tmp" "$2/$f"
    done
    cp --sparse=always "$1/rootfs.ext4" "$2/rootfs.ext4.tmp"
    # debugfs keeps going after a failed command, so check what it wrote.
    debugfs -w -R "write $manager /usr/local/bin/hv-manager" "$2/rootfs.ext4.tmp" >/dev/null 2>&1
    debugfs -R "stat /usr/local/bin/hv-manager" "$2/rootfs.ext4.tmp" 2>/dev/null |
        grep -q "Size: $(stat -c %s "$manager")\b" ||
        die "could not write hv-manager into $2/rootfs.ext4"
    mv "$2/rootfs.ext4.tmp" "$2/rootfs.ext4"
    echo "$stamp" > "$2/stamp"
}

if [ "$mode" = manager ]; then
    need_manager
    install_manager "$base" "$out"
    echo "build-uivm: $out has hv-manager $manager"
    exit 0
fi
if [ "$mode" = all ]; then
    need_manager
    base_out=$out/base
else
    base_out=$out
fi
[ -r "$sources" ] || die "$sources is missing: it names the Debian mirror to use"
command -v mmdebstrap >/dev/null || die "mmdebstrap is not installed (apt-get install mmdebstrap)"
command -v mkfs.ext4 >/dev/null || die "mkfs.ext4 is not installed (apt-get install e2fsprogs)"

if [ "$force" = 0 ] && [ -f "$base_out/stamp" ] && [ "$(cat "$base_out/stamp")" = "$base_stamp" ]; then
    echo "build-uivm: the base in $base_out is up to date"
    if [ "$mode" = all ]; then
        install_manager "$base_out" "$out"
        echo "build-uivm: $out is ready"
    fi
    exit 0
fi
mkdir -p "$base_out"
work=$(mktemp -d "${TMPDIR:-/tmp}/hv-uivm.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

# The guest: the generic kernel (virtio-gpu DRM, virtio-input and vsock are
# modules there), cage, the GTK 3 and json-glib libraries hv-manager links,
# fonts, and nothing a user logs into. Debian's cage will not start without
# the Xwayland binary (wlroots starts it lazily, so it never runs here).
# hv-vmm's virtio-gpu is 2D only, so wlroots renders with pixman
# (WLR_RENDERER=pixman) and drives the DRM device through the legacy API
# (WLR_DRM_NO_ATOMIC=1): with atomic KMS the output test fails on virtio-gpu
# and the screen stays black; Mesa's kms_swrast segfaults in cage. The Mesa
# DRI drivers are still installed (the only combination seen working; try
# without them next, it would save ~150 MiB).
packages=linux-image-amd64,initramfs-tools,systemd-sysv,udev,cage,xwayland,seatd,libgl1-mesa-dri,libgtk-3-0,libjson-glib-1.0-0,librsvg2-common,adwaita-icon-theme,fonts-dejavu-core,dbus,kmod

# What a kiosk never reads (manual pages, documentation but the copyright
# files, translations: the UIVM speaks English) is left out at unpacking,
# and the kernel's modules for hardware a VM never has (sound, radios,
# physical NICs and GPUs, cameras, InfiniBand) are removed before the
# initramfs is made: together about 300 MiB.
prune_modules='cd "$1"/usr/lib/modules/* && rm -rf kernel/sound kernel/net/wireless \
kernel/net/mac80211 kernel/net/bluetooth kernel/drivers/net/wireless \
kernel/drivers/net/ethernet kernel/drivers/media kernel/drivers/infiniband \
kernel/drivers/staging kernel/drivers/iio kernel/drivers/bluetooth \
kernel/drivers/gpu/drm/amd kernel/drivers/gpu/drm/i915 kernel/drivers/gpu/drm/nouveau \
kernel/drivers/gpu/drm/radeon kernel/drivers/isdn kernel/drivers/net/can && \
chroot "$1" depmod -a "${PWD##*/}"'

mmdebstrap --variant=minbase --include="$packages" \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --customize-hook='mkdir -p "$1/usr/local/bin"' \
    --customize-hook='echo uivm > "$1/etc/hostname"' \
    --customize-hook='chroot "$1" useradd -m -G video,input,render -s /usr/sbin/nologin hv' \
    --customize-hook='printf "%s\n" virtio_gpu virtio_input evdev vmw_vsock_virtio_transport virtio_blk >> "$1/etc/initramfs-tools/modules"' \
    --customize-hook='cat > "$1/etc/systemd/system/hv-manager.service" <<UNIT
[Unit]
Description=hv Manager (kiosk)
After=systemd-user-sessions.service seatd.service
Wants=seatd.service
StartLimitIntervalSec=0

[Service]
User=hv
PAMName=login
TTYPath=/dev/tty1
StandardInput=tty
StandardOutput=journal
StandardError=journal
Environment=XDG_RUNTIME_DIR=/run/hv-manager LANG=C.UTF-8
Environment=LIBSEAT_BACKEND=seatd WLR_NO_HARDWARE_CURSORS=1 WLR_RENDERER=pixman WLR_DRM_NO_ATOMIC=1
Environment=GDK_BACKEND=wayland NO_AT_BRIDGE=1
RuntimeDirectory=hv-manager
RuntimeDirectoryMode=0700
ExecStart=/usr/bin/cage -- /usr/local/bin/hv-manager --vsock 2:5140 --fullscreen
Restart=always
RestartSec=1

[Install]
WantedBy=multi-user.target
UNIT' \
    --customize-hook='chroot "$1" systemctl enable hv-manager.service seatd.service' \
    --customize-hook='chroot "$1" systemctl mask getty@tty1.service' \
    --customize-hook="$prune_modules" \
    --customize-hook='chroot "$1" update-initramfs -u -k all' \
    --customize-hook='rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/*_Packages' \
    bookworm "$work/root" "$sources"

cp "$(ls "$work"/root/boot/vmlinuz-* | head -1)" "$base_out/vmlinuz"
cp "$(ls "$work"/root/boot/initrd.img-* | head -1)" "$base_out/initrd.img"
# The root file system: what the tree holds plus a quarter, at least 256 MiB
# free for logs; sparse, so the file takes only what is used.
used=$(du -sm "$work/root" | cut -f1)
truncate -s "$((used + used / 4 + 256))M" "$work/rootfs.ext4"
mkfs.ext4 -q -L uivm-root -d "$work/root" "$work/rootfs.ext4"
mv "$work/rootfs.ext4" "$base_out/rootfs.ext4"
echo "root=/dev/vda rw console=ttyS0 quiet" > "$base_out/cmdline"
echo "$base_stamp" > "$base_out/stamp"
echo "build-uivm: built the base in $base_out"
[ "$mode" = base ] && exit 0
install_manager "$base_out" "$out"
cat <<MSG
build-uivm: built $out
  define it for hvd, e.g.:
    [vm]
    name=uivm
    role=uivm
    vsock=3
    memory=768M
    kernel=$out/vmlinuz
    initrd=$out/initrd.img
    cmdline=$(cat "$out/cmdline")
    disk=$out/rootfs.ext4
MSG
