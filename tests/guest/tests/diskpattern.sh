# Writes a byte pattern to the guest's first disk and reads it back:
# hv.pattern=NNN on the kernel command line is the byte, in octal (241 = 0xa1).
# MiB 1 of /dev/vda is overwritten with it (fsync'd), then read back from
# the disk (page cache dropped) and compared; the md5 of MiB 0 (left alone:
# what the disk held before, e.g. a golden image's data) is printed so the
# host can check it.
pat=""
for arg in $(cat /proc/cmdline); do
    case "$arg" in
    hv.pattern=*) pat="${arg#hv.pattern=}" ;;
    esac
done
if [ -z "$pat" ]; then
    echo "hv-guest: diskpattern needs hv.pattern=OCTAL on the command line"
    exit 2
fi
if [ ! -b /dev/vda ]; then
    echo "hv-guest: diskpattern: no /dev/vda"
    exit 3
fi
dd if=/dev/zero bs=1048576 count=1 2>/dev/null | tr '\000' "\\$pat" >/tmp/pattern
dd if=/tmp/pattern of=/dev/vda bs=1048576 seek=1 count=1 conv=fsync 2>/dev/null || exit 4
sync
echo 3 >/proc/sys/vm/drop_caches
dd if=/dev/vda of=/tmp/readback bs=1048576 skip=1 count=1 2>/dev/null || exit 5
if ! cmp -s /tmp/pattern /tmp/readback; then
    echo "hv-guest: diskpattern: read back differs from what was written"
    exit 6
fi
echo "hv-guest: diskpattern wrote $pat md5 $(md5sum </tmp/pattern | cut -d' ' -f1)"
echo "hv-guest: diskpattern mib0 md5 $(dd if=/dev/vda bs=1048576 count=1 2>/dev/null | md5sum | cut -d' ' -f1)"
exit 0
