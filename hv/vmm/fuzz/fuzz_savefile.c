// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: the save file reader (savefile.c), which hv-vmm runs on
 * a file a compromised hv-vmm may have written. Two kinds of input:
 *   byte 0 even: the rest is a whole file, read as it is;
 *   byte 0 odd:  the rest builds a valid file (sections and RAM from the
 *                input, written by save_file_write), then bytes 1-4 pick
 *                one offset to change and byte 5 the new value, so that the
 *                fuzzer reaches every check behind the CRCs.
 * The reader must refuse or accept without a crash, leak or read past
 * what it was given; what it accepts must read its RAM within bounds.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "savefile.h"

#define FUZZ_RAM_PAGES 16u
#define FUZZ_RAM       (FUZZ_RAM_PAGES * SAVE_PAGE_SIZE)

static void read_file(int fd)
{
    struct save_image img;
    char why[256];

    if (save_file_read(fd, &img, why, sizeof(why)) < 0)
        return;
    if (img.ram_size <= FUZZ_RAM) {
        uint8_t *ram = calloc(1, img.ram_size);
        if (ram)
            save_file_read_ram(fd, &img, ram, img.ram_size, why, sizeof(why));
        free(ram);
    }
    save_image_free(&img);
}

static int build_valid(int fd, const uint8_t *data, size_t size)
{
    struct save_image img;
    char why[256];
    uint8_t *ram = calloc(1, FUZZ_RAM);

    memset(&img, 0, sizeof(img));
    img.ram_size = FUZZ_RAM;
    img.nr_vcpus = 1;
    img.layout = strdup("serial8250@-,virtio-blk0@01");
    /* Up to four sections, then pages: from the input, in that order. */
    size_t pos = 0;
    for (unsigned i = 0; i < 4 && pos < size; i++) {
        size_t len = data[pos++] % 64;
        if (len > size - pos)
            len = size - pos;
        uint8_t *copy = malloc(len ? len : 1);
        memcpy(copy, data + pos, len);
        char id[8] = {'s', (char)('0' + i), 0};
        save_image_add(&img, id, copy, len);
        pos += len;
    }
    for (unsigned p = 0; pos < size && p < FUZZ_RAM_PAGES; p++) {
        uint8_t page = data[pos++];
        if (page & 1)
            memset(ram + p * SAVE_PAGE_SIZE, page, SAVE_PAGE_SIZE);
    }
    int r = save_find_runs(ram, FUZZ_RAM, &img) == 0 &&
                    save_file_write(fd, &img, ram, why, sizeof(why)) >= 0
                ? 0
                : -1;
    save_image_free(&img);
    free(ram);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int fd = memfd_create("fuzz-save", MFD_CLOEXEC);
    if (fd < 0)
        abort();
    if (!(data[0] & 1)) {
        if (write(fd, data + 1, size - 1) != (ssize_t)(size - 1))
            abort();
    } else if (size >= 6 && build_valid(fd, data + 6, size - 6) == 0) {
        off_t end = lseek(fd, 0, SEEK_END);
        uint32_t at;
        memcpy(&at, data + 1, 4);
        if (end > 0) {
            uint8_t v = data[5];
            if (pwrite(fd, &v, 1, (off_t)(at % (uint32_t)end)) != 1)
                abort();
            if (data[1] & 0x80 && ftruncate(fd, (off_t)(at % (uint32_t)end)) < 0)
                abort();
        }
    }
    read_file(fd);
    close(fd);
    return 0;
}
