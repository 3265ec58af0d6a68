/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The save file's format (savefile.c, docs/save-format.md): what is written
 * reads back byte for byte, and a truncated file, any flipped byte, extra
 * bytes or another version are refused with a sentence, never half-read.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "savefile.h"
#include "state.h"

#define RAM_SIZE (64u * SAVE_PAGE_SIZE)

static uint8_t *make_ram(void)
{
    return calloc(1, RAM_SIZE);
}

/* Pages 0-1, 5, 30 and 60-63 hold data. */
static void fill(uint8_t *ram)
{
    const unsigned pages[] = {0, 1, 5, 60, 61, 62, 63};
    for (unsigned i = 0; i < sizeof(pages) / sizeof(pages[0]); i++)
        for (unsigned k = 0; k < SAVE_PAGE_SIZE; k++)
            ram[pages[i] * SAVE_PAGE_SIZE + k] = (uint8_t)(pages[i] * 7 + k);
    ram[30 * SAVE_PAGE_SIZE + 4095] = 1; /* one byte is enough to keep a page */
}

static uint8_t *dup_bytes(const char *s)
{
    return (uint8_t *)strdup(s);
}

/* A file in memory: write an image with two sections and RAM. Returns the fd. */
static int write_sample(const uint8_t *ram, int64_t *size)
{
    struct save_image img;
    char why[256] = "";

    memset(&img, 0, sizeof(img));
    img.ram_size = RAM_SIZE;
    img.nr_vcpus = 2;
    img.saved_realtime_ns = 1234567890123ull;
    img.layout = strdup("serial8250@-,virtio-blk0@01");
    CHECK(save_image_add(&img, "vm", dup_bytes("chips and clock"), 15) == 0);
    CHECK(save_image_add(&img, "virtio-blk0", dup_bytes(""), 0) == 0);
    CHECK(save_find_runs(ram, RAM_SIZE, &img) == 0);
    CHECK(img.nr_runs == 3); /* 0-5 (the gap 2-4 is short), 30, 60-63 */
    CHECK(img.ram_pages == 11);
    int fd = memfd_create("save", MFD_CLOEXEC);
    *size = save_file_write(fd, &img, ram, why, sizeof(why));
    CHECK(*size > 0);
    CHECK(*size % SAVE_PAGE_SIZE == 0);
    save_image_free(&img);
    return fd;
}

static void test_round_trip(void)
{
    uint8_t *ram = make_ram(), *back = calloc(1, RAM_SIZE);
    struct save_image img;
    char why[256] = "";
    int64_t size;

    fill(ram);
    int fd = write_sample(ram, &size);
    CHECK(save_file_read(fd, &img, why, sizeof(why)) == 0);
    CHECK(img.ram_size == RAM_SIZE && img.nr_vcpus == 2);
    CHECK(img.saved_realtime_ns == 1234567890123ull);
    CHECK(strcmp(img.layout, "serial8250@-,virtio-blk0@01") == 0);
    CHECK(img.nr_sections == 2);
    const struct save_section *s = save_image_find(&img, "vm");
    CHECK(s && s->len == 15 && memcmp(s->data, "chips and clock", 15) == 0);
    s = save_image_find(&img, "virtio-blk0");
    CHECK(s && s->len == 0);
    CHECK(save_file_read_ram(fd, &img, back, RAM_SIZE, why, sizeof(why)) == 0);
    CHECK(memcmp(ram, back, RAM_SIZE) == 0);
    /* Another VM's memory size. */
    CHECK(save_file_read_ram(fd, &img, back, RAM_SIZE / 2, why, sizeof(why)) == -1);

    /* Instant-on: the same bytes, mapped; a write to RAM does not reach the file. */
    uint8_t *mapped =
        mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(mapped != MAP_FAILED);
    CHECK(save_file_map_ram(fd, &img, mapped, RAM_SIZE, why, sizeof(why)) == 0);
    CHECK(memcmp(ram, mapped, RAM_SIZE) == 0);
    mapped[5 * SAVE_PAGE_SIZE] ^= 0xff;
    memset(back, 0, RAM_SIZE);
    CHECK(save_file_read_ram(fd, &img, back, RAM_SIZE, why, sizeof(why)) == 0);
    CHECK(memcmp(ram, back, RAM_SIZE) == 0);
    munmap(mapped, RAM_SIZE);
    save_image_free(&img);
    close(fd);
    free(ram);
    free(back);
}

/* A copy of the file with a change, and what the reader says of it. */
static int read_variant(const uint8_t *file, size_t len, char *why, size_t whylen)
{
    struct save_image img;
    uint8_t *back = calloc(1, RAM_SIZE);
    int fd = memfd_create("variant", MFD_CLOEXEC);

    CHECK(write(fd, file, len) == (ssize_t)len);
    int r = save_file_read(fd, &img, why, whylen);
    if (r == 0) {
        r = save_file_read_ram(fd, &img, back, RAM_SIZE, why, whylen);
        save_image_free(&img);
    } else {
        CHECK(img.nr_sections == 0 && img.sections == NULL && img.layout == NULL);
    }
    close(fd);
    free(back);
    return r;
}

static void test_every_damage_is_refused(void)
{
    uint8_t *ram = make_ram();
    int64_t size;
    char why[256];

    fill(ram);
    int fd = write_sample(ram, &size);
    uint8_t *file = malloc((size_t)size), *copy = malloc((size_t)size);
    CHECK(pread(fd, file, (size_t)size, 0) == size);
    close(fd);

    /* The untouched copy reads. */
    why[0] = '\0';
    CHECK(read_variant(file, (size_t)size, why, sizeof(why)) == 0);

    /* Truncated anywhere. */
    unsigned refused = 0, tried = 0;
    for (int64_t cut = 0; cut < size; cut += cut < 512 ? 1 : 509) {
        tried++;
        why[0] = '\0';
        if (read_variant(file, (size_t)cut, why, sizeof(why)) == -1 && why[0])
            refused++;
    }
    CHECK(refused == tried);

    /*
     * One flipped bit in any byte that is not padding: the header, each
     * section and each stored page are covered by a CRC. The padding
     * between the sections and the pages is all that may change unseen.
     */
    refused = tried = 0;
    unsigned pad_from = 0, pad_to = 0;
    {
        struct save_image img;
        int f2 = memfd_create("x", MFD_CLOEXEC);
        CHECK(write(f2, file, (size_t)size) == size);
        CHECK(save_file_read(f2, &img, why, sizeof(why)) == 0);
        pad_to = (unsigned)img.ram_offset;
        save_image_free(&img);
        close(f2);
        /* the last section ("ram") ends where the padding begins: find it from its tail */
        pad_from = pad_to;
        while (pad_from > 0 && file[pad_from - 1] == 0)
            pad_from--;
    }
    for (int64_t i = 0; i < size; i += i < 1024 ? 1 : 97) {
        if (i >= pad_from && i < pad_to)
            continue;
        memcpy(copy, file, (size_t)size);
        copy[i] ^= 0x10;
        tried++;
        why[0] = '\0';
        if (read_variant(copy, (size_t)size, why, sizeof(why)) == -1 && why[0])
            refused++;
        else
            fprintf(stderr, "a flip at byte %lld was not seen\n", (long long)i);
    }
    CHECK(refused == tried);

    /* Bytes after the last page. */
    uint8_t *longer = calloc(1, (size_t)size + 4096);
    memcpy(longer, file, (size_t)size);
    CHECK(read_variant(longer, (size_t)size + 4096, why, sizeof(why)) == -1);
    CHECK(strstr(why, "after its last page") != NULL);
    free(longer);

    /* Another format version (with the header's CRC made right again, as a newer hv-vmm would). */
    memcpy(copy, file, (size_t)size);
    copy[8] = 2;
    CHECK(read_variant(copy, (size_t)size, why, sizeof(why)) == -1);
    CHECK(strstr(why, "version 2") != NULL);

    /* Not a save file at all. */
    memcpy(copy, "#!/bin/sh\n", 10);
    CHECK(read_variant(copy, (size_t)size, why, sizeof(why)) == -1);
    CHECK(strstr(why, "not an hv save file") != NULL);
    free(file);
    free(copy);
    free(ram);
}

/* An all-zero guest stores no page; a full one stores one run. */
static void test_runs(void)
{
    struct save_image img;
    uint8_t *ram = calloc(1, RAM_SIZE);

    memset(&img, 0, sizeof(img));
    CHECK(save_find_runs(ram, RAM_SIZE, &img) == 0);
    CHECK(img.nr_runs == 0 && img.ram_pages == 0);
    memset(ram, 0xff, RAM_SIZE);
    CHECK(save_find_runs(ram, RAM_SIZE, &img) == 0);
    CHECK(img.nr_runs == 1 && img.runs[0].first_page == 0 && img.runs[0].nr_pages == 64);
    save_image_free(&img);
    free(ram);
}

static void test_state_sections(void)
{
    struct state_out o;
    struct state_in in;

    state_out_init(&o);
    state_put_u8(&o, 0xab);
    state_put_u16(&o, 0x1234);
    state_put_u32(&o, 0xdeadbeef);
    state_put_u64(&o, 0x0102030405060708ull);
    state_put_bool(&o, true);
    CHECK(!o.failed && o.len == 16);
    CHECK(o.buf[1] == 0x34 && o.buf[2] == 0x12); /* little-endian */

    state_in_init(&in, o.buf, o.len);
    CHECK(state_get_u8(&in) == 0xab);
    CHECK(state_get_u16(&in) == 0x1234);
    CHECK(state_get_u32(&in) == 0xdeadbeef);
    CHECK(state_get_u64(&in) == 0x0102030405060708ull);
    CHECK(state_get_bool(&in) == true);
    CHECK(state_in_end(&in) == 0);

    /* Short: sticky error, zeros after it. */
    state_in_init(&in, o.buf, 5);
    CHECK(state_get_u8(&in) == 0xab);
    CHECK(state_get_u64(&in) == 0);
    CHECK(state_get_u8(&in) == 0);
    CHECK(!state_in_ok(&in) && strstr(in.why, "ends early"));

    /* Left over bytes, and a bool that is 2. */
    state_in_init(&in, o.buf, o.len);
    CHECK(state_get_u8(&in) == 0xab);
    CHECK(state_in_end(&in) == -1 && strstr(in.why, "were not read"));
    uint8_t two = 2;
    state_in_init(&in, &two, 1);
    state_get_bool(&in);
    CHECK(state_in_end(&in) == -1 && strstr(in.why, "not 0 or 1"));

    state_out_clear(&o);
    CHECK(state_fail(&o, "a %s device", "passed-through") == -1);
    state_put_u32(&o, 1);
    CHECK(o.failed && o.len == 0 && strcmp(o.why, "a passed-through device") == 0);
    state_out_free(&o);
}

int main(void)
{
    test_state_sections();
    test_runs();
    test_round_trip();
    test_every_damage_is_refused();
    CHECK_DONE();
}
