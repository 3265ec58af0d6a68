// SPDX-License-Identifier: GPL-2.0-or-later
/* virtio-blk requests against a temporary image, good and malformed. */
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blk.h"
#include "check.h"
#include "util.h"
#include "virtio.h"

#define DISK_BYTES (1 * MiB)

static char path[] = "/tmp/hv-test-blk-XXXXXX";

/* One request: header, optional out data | optional in data, status. */
static uint8_t req(struct blk_disk *d, uint32_t type, uint64_t sector, void *out, size_t out_len,
                   void *in, size_t in_len, uint32_t *written)
{
    uint8_t hdr[16] = {0}, status = 0xee;
    le32_put(hdr, type);
    le64_put(hdr + 8, sector);
    struct iovec iov[4];
    unsigned n = 0, nr_out;
    iov[n++] = (struct iovec){hdr, sizeof(hdr)};
    if (out_len)
        iov[n++] = (struct iovec){out, out_len};
    nr_out = n;
    if (in_len)
        iov[n++] = (struct iovec){in, in_len};
    iov[n++] = (struct iovec){&status, 1};
    uint32_t w = blk_disk_request(d, iov, nr_out, n - nr_out);
    if (written)
        *written = w;
    return status;
}

static void test_rw(void)
{
    struct blk_disk d = {.name = "test"};
    CHECK(blk_disk_open(&d, path, false, "raw", NULL) == 0);
    CHECK(d.sectors == DISK_BYTES / 512);

    uint8_t wbuf[1024], rbuf[1024] = {0}, file[1024];
    for (unsigned i = 0; i < sizeof(wbuf); i++)
        wbuf[i] = (uint8_t)(i * 7 + 1);
    uint32_t w;
    CHECK(req(&d, VIRTIO_BLK_T_OUT, 2, wbuf, sizeof(wbuf), NULL, 0, &w) == VIRTIO_BLK_S_OK);
    CHECK(w == 1);
    CHECK(req(&d, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, NULL, 0, NULL) == VIRTIO_BLK_S_OK);
    /* The bytes are in the image, where the host sees them. */
    int fd = open(path, O_RDONLY);
    CHECK(pread(fd, file, sizeof(file), 1024) == (ssize_t)sizeof(file));
    CHECK(memcmp(file, wbuf, sizeof(wbuf)) == 0);
    close(fd);
    CHECK(req(&d, VIRTIO_BLK_T_IN, 2, NULL, 0, rbuf, sizeof(rbuf), &w) == VIRTIO_BLK_S_OK);
    CHECK(w == sizeof(rbuf) + 1);
    CHECK(memcmp(rbuf, wbuf, sizeof(wbuf)) == 0);

    /* Split header and data across odd segments (no layout assumptions). */
    uint8_t hdr[16] = {0}, status = 0xee, part[3][512];
    le32_put(hdr, VIRTIO_BLK_T_IN);
    le64_put(hdr + 8, 2);
    struct iovec iov[] = {{hdr, 5},       {hdr + 5, 11},  {part[0], 100},
                          {part[1], 412}, {part[2], 512}, {&status, 1}};
    CHECK(blk_disk_request(&d, iov, 2, 4) == 1025);
    CHECK(status == 0 && memcmp(part[0], wbuf, 100) == 0 && memcmp(part[2], wbuf + 512, 512) == 0);

    /* GET_ID gives the image's file name. */
    char id[20] = {0};
    CHECK(req(&d, VIRTIO_BLK_T_GET_ID, 0, NULL, 0, id, sizeof(id), &w) == VIRTIO_BLK_S_OK);
    CHECK(w == 21 && strncmp(id, "hv-test-blk-", 12) == 0);

    /* Out of range and malformed requests fail cleanly. */
    CHECK(req(&d, VIRTIO_BLK_T_IN, d.sectors - 1, NULL, 0, rbuf, 1024, NULL) == VIRTIO_BLK_S_IOERR);
    CHECK(req(&d, VIRTIO_BLK_T_IN, d.sectors, NULL, 0, rbuf, 512, NULL) == VIRTIO_BLK_S_IOERR);
    CHECK(req(&d, VIRTIO_BLK_T_OUT, UINT64_MAX, wbuf, 512, NULL, 0, NULL) == VIRTIO_BLK_S_IOERR);
    CHECK(req(&d, VIRTIO_BLK_T_OUT, UINT64_MAX / 512, wbuf, 1024, NULL, 0, NULL) ==
          VIRTIO_BLK_S_IOERR);
    CHECK(req(&d, VIRTIO_BLK_T_IN, 0, NULL, 0, rbuf, 100, NULL) == VIRTIO_BLK_S_IOERR);
    CHECK(req(&d, 77, 0, NULL, 0, NULL, 0, NULL) == VIRTIO_BLK_S_UNSUPP);

    uint8_t shorthdr[8] = {0}, st = 0xee;
    struct iovec bad[] = {{shorthdr, 8}, {&st, 1}};
    CHECK(blk_disk_request(&d, bad, 1, 1) == 0 && st == 0xee); /* header too short */
    uint8_t h2[16] = {0};
    struct iovec nostatus[] = {{h2, 16}};
    CHECK(blk_disk_request(&d, nostatus, 1, 0) == 0);

    /* Discard and write-zeroes: the range reads back as zeros. */
    uint8_t seg[16] = {0}, zero[1024] = {0};
    le64_put(seg, 2);
    le32_put(seg + 8, 2);
    CHECK(req(&d, VIRTIO_BLK_T_WRITE_ZEROES, 0, seg, 16, NULL, 0, NULL) == VIRTIO_BLK_S_OK);
    CHECK(req(&d, VIRTIO_BLK_T_IN, 2, NULL, 0, rbuf, sizeof(rbuf), NULL) == VIRTIO_BLK_S_OK);
    CHECK(memcmp(rbuf, zero, sizeof(zero)) == 0);
    CHECK(req(&d, VIRTIO_BLK_T_OUT, 8, wbuf, 1024, NULL, 0, NULL) == VIRTIO_BLK_S_OK);
    le64_put(seg, 8);
    CHECK(req(&d, VIRTIO_BLK_T_DISCARD, 0, seg, 16, NULL, 0, NULL) == VIRTIO_BLK_S_OK);
    CHECK(req(&d, VIRTIO_BLK_T_IN, 8, NULL, 0, rbuf, sizeof(rbuf), NULL) == VIRTIO_BLK_S_OK);
    CHECK(memcmp(rbuf, zero, sizeof(zero)) == 0);
    le64_put(seg, d.sectors - 1);
    CHECK(req(&d, VIRTIO_BLK_T_DISCARD, 0, seg, 16, NULL, 0, NULL) == VIRTIO_BLK_S_IOERR);
    CHECK(req(&d, VIRTIO_BLK_T_DISCARD, 0, seg, 10, NULL, 0, NULL) == VIRTIO_BLK_S_UNSUPP);

    /* A second writer is refused. */
    struct blk_disk d2 = {.name = "test2"};
    CHECK(blk_disk_open(&d2, path, false, "raw", NULL) < 0);
    blk_disk_close(&d);
}

static void test_readonly(void)
{
    struct blk_disk d = {.name = "ro"};
    CHECK(blk_disk_open(&d, path, true, NULL, NULL) == 0);
    uint8_t before[1024], after[1024], junk[1024], seg[16] = {0};
    memset(junk, 0x5a, sizeof(junk));
    CHECK(req(&d, VIRTIO_BLK_T_IN, 0, NULL, 0, before, sizeof(before), NULL) == VIRTIO_BLK_S_OK);
    CHECK(req(&d, VIRTIO_BLK_T_OUT, 0, junk, sizeof(junk), NULL, 0, NULL) == VIRTIO_BLK_S_IOERR);
    le32_put(seg + 8, 2);
    CHECK(req(&d, VIRTIO_BLK_T_DISCARD, 0, seg, 16, NULL, 0, NULL) == VIRTIO_BLK_S_IOERR);
    CHECK(req(&d, VIRTIO_BLK_T_WRITE_ZEROES, 0, seg, 16, NULL, 0, NULL) == VIRTIO_BLK_S_IOERR);
    CHECK(req(&d, VIRTIO_BLK_T_IN, 0, NULL, 0, after, sizeof(after), NULL) == VIRTIO_BLK_S_OK);
    CHECK(memcmp(before, after, sizeof(after)) == 0);
    blk_disk_close(&d);
}

int main(void)
{
    int fd = mkstemp(path);
    CHECK(fd >= 0 && ftruncate(fd, DISK_BYTES) == 0);
    uint8_t pat[512];
    memset(pat, 0xa5, sizeof(pat));
    CHECK(pwrite(fd, pat, sizeof(pat), 0) == (ssize_t)sizeof(pat));
    close(fd);
    test_rw();
    test_readonly();
    unlink(path);
    CHECK_DONE();
}
