// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The save file's bytes (docs/save-format.md). The reader trusts nothing:
 * a save file was written by a process a guest may have taken over, so
 * every length and offset is checked against the file and the limits here
 * before anything is allocated or read.
 */
#include "savefile.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "state.h"

/* magic, version, header_len, ram_size, nr_vcpus, nr_sections, realtime, ram_offset, ram_pages,
 * layout_len */
#define HEADER_FIXED   (8 + 4 + 4 + 8 + 4 + 4 + 8 + 8 + 8 + 4)
#define SECTION_HEADER (SAVE_ID_LEN + 8 + 4)
#define CRC_CHUNK      (64u << 20) /* zlib's crc32 takes an unsigned int length */

static int fail(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return -1;
}

static uint32_t crc_of(uint32_t crc, const uint8_t *p, uint64_t len)
{
    while (len) {
        unsigned n = len > CRC_CHUNK ? CRC_CHUNK : (unsigned)len;
        crc = (uint32_t)crc32(crc, p, n);
        p += n;
        len -= n;
    }
    return crc;
}

void save_image_free(struct save_image *img)
{
    for (unsigned i = 0; i < img->nr_sections; i++)
        free(img->sections[i].data);
    free(img->sections);
    free(img->runs);
    free(img->layout);
    memset(img, 0, sizeof(*img));
}

int save_image_add(struct save_image *img, const char *id, uint8_t *data, uint64_t len)
{
    if (strlen(id) > SAVE_ID_LEN || img->nr_sections >= SAVE_MAX_SECTIONS)
        return -1;
    struct save_section *s = realloc(img->sections, (img->nr_sections + 1) * sizeof(*s));
    if (!s)
        return -1;
    img->sections = s;
    s = &img->sections[img->nr_sections++];
    memset(s, 0, sizeof(*s));
    strcpy(s->id, id);
    s->data = data;
    s->len = len;
    return 0;
}

const struct save_section *save_image_find(const struct save_image *img, const char *id)
{
    for (unsigned i = 0; i < img->nr_sections; i++)
        if (strcmp(img->sections[i].id, id) == 0)
            return &img->sections[i];
    return NULL;
}

static bool page_is_zero(const uint8_t *p)
{
    const uint64_t *w = (const uint64_t *)(const void *)p;
    uint64_t acc = 0;
    for (unsigned i = 0; i < SAVE_PAGE_SIZE / 8; i += 8)
        acc |= w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] | w[i + 7];
    return acc == 0;
}

int save_find_runs(const uint8_t *ram, uint64_t size, struct save_image *img)
{
    uint64_t pages = size / SAVE_PAGE_SIZE;
    unsigned cap = 0;

    free(img->runs);
    img->runs = NULL;
    img->nr_runs = 0;
    img->ram_pages = 0;
    for (uint64_t p = 0; p < pages;) {
        if (page_is_zero(ram + p * SAVE_PAGE_SIZE)) {
            p++;
            continue;
        }
        uint64_t start = p;
        /* A short gap of zero pages is stored too: fewer runs, fewer mappings for --instant-on. */
        for (uint64_t zeros = 0; p < pages && zeros <= SAVE_MERGE_GAP; p++)
            zeros = page_is_zero(ram + p * SAVE_PAGE_SIZE) ? zeros + 1 : 0;
        while (p > start && page_is_zero(ram + (p - 1) * SAVE_PAGE_SIZE))
            p--;
        if (img->nr_runs == cap) {
            unsigned ncap = cap ? cap * 2 : 64;
            struct save_run *r = realloc(img->runs, ncap * sizeof(*r));
            if (!r)
                return -1;
            img->runs = r;
            cap = ncap;
        }
        img->runs[img->nr_runs++] = (struct save_run){start, p - start};
        img->ram_pages += p - start;
    }
    return 0;
}

static int write_all(int fd, const void *buf, uint64_t len, uint64_t off)
{
    const uint8_t *p = buf;
    while (len) {
        size_t n = len > (1u << 30) ? (1u << 30) : (size_t)len;
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : -EIO;
        p += w;
        off += (uint64_t)w;
        len -= (uint64_t)w;
    }
    return 0;
}

static void put_id(struct state_out *o, const char *id)
{
    char buf[SAVE_ID_LEN] = {0};
    memcpy(buf, id, strnlen(id, SAVE_ID_LEN));
    state_put_bytes(o, buf, SAVE_ID_LEN);
}

/* The CRC covers the name and length too: a damaged name must not pass for another section. */
static uint32_t section_crc(const uint8_t *id_and_len, const uint8_t *data, uint64_t len)
{
    return crc_of(crc_of(0, id_and_len, SAVE_ID_LEN + 8), data, len);
}

static void put_section(struct state_out *o, const char *id, const uint8_t *data, uint64_t len)
{
    size_t start = o->len;
    put_id(o, id);
    state_put_u64(o, len);
    state_put_u32(o, o->failed ? 0 : section_crc(o->buf + start, data, len));
    state_put_bytes(o, data, len);
}

int64_t save_file_write(int fd, const struct save_image *img, const uint8_t *ram, char *why,
                        size_t whylen)
{
    struct state_out o, ramsec;
    size_t layout_len = strlen(img->layout ? img->layout : "");
    int64_t ret = -1;

    if (HEADER_FIXED + layout_len > SAVE_HEADER_MAX)
        return fail(why, whylen, "the device layout is too long for the header");
    state_out_init(&o);
    state_out_init(&ramsec);

    /* The pages first, at an offset computed from the sizes, so that one pass gives the CRC. */
    uint64_t meta = HEADER_FIXED + layout_len + 4;
    for (unsigned i = 0; i < img->nr_sections; i++)
        meta += SECTION_HEADER + img->sections[i].len;
    meta += SECTION_HEADER + (uint64_t)img->nr_runs * 16 + 4;
    uint64_t ram_offset = (meta + SAVE_PAGE_SIZE - 1) / SAVE_PAGE_SIZE * SAVE_PAGE_SIZE;

    uint32_t crc = 0;
    uint64_t off = ram_offset;
    for (unsigned i = 0; i < img->nr_runs; i++) {
        const uint8_t *p = ram + img->runs[i].first_page * SAVE_PAGE_SIZE;
        uint64_t len = img->runs[i].nr_pages * SAVE_PAGE_SIZE;
        crc = crc_of(crc, p, len);
        int err = write_all(fd, p, len, off);
        if (err < 0) {
            fail(why, whylen, "cannot write guest memory to the file: %s", strerror(-err));
            goto out;
        }
        off += len;
    }

    for (unsigned i = 0; i < img->nr_runs; i++) {
        state_put_u64(&ramsec, img->runs[i].first_page);
        state_put_u64(&ramsec, img->runs[i].nr_pages);
    }
    state_put_u32(&ramsec, crc);

    state_put_bytes(&o, SAVE_MAGIC, 8);
    state_put_u32(&o, SAVE_VERSION);
    state_put_u32(&o, (uint32_t)(HEADER_FIXED + layout_len));
    state_put_u64(&o, img->ram_size);
    state_put_u32(&o, img->nr_vcpus);
    state_put_u32(&o, img->nr_sections + 1);
    state_put_u64(&o, img->saved_realtime_ns);
    state_put_u64(&o, ram_offset);
    state_put_u64(&o, img->ram_pages);
    state_put_u32(&o, (uint32_t)layout_len);
    state_put_bytes(&o, img->layout, layout_len);
    state_put_u32(&o, o.failed ? 0 : crc_of(0, o.buf, o.len));
    for (unsigned i = 0; i < img->nr_sections; i++)
        put_section(&o, img->sections[i].id, img->sections[i].data, img->sections[i].len);
    put_section(&o, "ram", ramsec.buf, ramsec.len);
    if (o.failed || ramsec.failed) {
        fail(why, whylen, "cannot build the file's header: out of memory");
        goto out;
    }
    /* Zero padding up to the pages, so the file's size is exact even with no pages. */
    uint8_t zero[SAVE_PAGE_SIZE] = {0};
    int err = write_all(fd, o.buf, o.len, 0);
    if (err == 0 && ram_offset > o.len)
        err = write_all(fd, zero, ram_offset - o.len, o.len);
    if (err < 0) {
        fail(why, whylen, "cannot write the file's header: %s", strerror(-err));
        goto out;
    }
    ret = (int64_t)off;
out:
    state_out_free(&o);
    state_out_free(&ramsec);
    return ret;
}

static int read_exact(int fd, void *buf, uint64_t len, uint64_t off)
{
    uint8_t *p = buf;
    while (len) {
        size_t n = len > (1u << 30) ? (1u << 30) : (size_t)len;
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return -ENODATA;
        p += r;
        off += (uint64_t)r;
        len -= (uint64_t)r;
    }
    return 0;
}

static int parse_ram(struct save_image *img, const struct save_section *s, char *why, size_t whylen)
{
    if (s->len < 4 || (s->len - 4) % 16 != 0)
        return fail(why, whylen, "the ram section's length (%llu) is not a list of runs",
                    (unsigned long long)s->len);
    uint64_t n = (s->len - 4) / 16, pages = img->ram_size / SAVE_PAGE_SIZE, next = 0, sum = 0;
    if (n > pages)
        return fail(why, whylen, "the ram section lists more runs than the VM has pages");
    img->runs = calloc(n ? n : 1, sizeof(*img->runs));
    if (!img->runs)
        return fail(why, whylen, "out of memory");
    struct state_in in;
    state_in_init(&in, s->data, s->len);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t first = state_get_u64(&in), count = state_get_u64(&in);
        if (count == 0 || first < next || first > pages || count > pages - first)
            return fail(why, whylen,
                        "ram run %llu (page %llu, %llu pages) is empty, out of order or "
                        "outside the VM's %llu pages",
                        (unsigned long long)i, (unsigned long long)first, (unsigned long long)count,
                        (unsigned long long)pages);
        img->runs[i] = (struct save_run){first, count};
        next = first + count;
        sum += count;
    }
    img->nr_runs = (unsigned)n;
    img->ram_crc = state_get_u32(&in);
    if (sum != img->ram_pages)
        return fail(why, whylen, "the ram runs hold %llu pages, the header says %llu",
                    (unsigned long long)sum, (unsigned long long)img->ram_pages);
    return 0;
}

static int read_checked(int fd, struct save_image *img, uint64_t fsize, char *why, size_t whylen)
{
    uint8_t fixed[HEADER_FIXED];
    struct state_in in;

    if (fsize < HEADER_FIXED + 4 || read_exact(fd, fixed, HEADER_FIXED, 0) < 0)
        return fail(why, whylen, "the file is too short to be a save file (%llu bytes)",
                    (unsigned long long)fsize);
    if (memcmp(fixed, SAVE_MAGIC, 8) != 0)
        return fail(why, whylen, "this is not an hv save file (no HVSAVE magic)");
    state_in_init(&in, fixed + 8, HEADER_FIXED - 8);
    uint32_t version = state_get_u32(&in), header_len = state_get_u32(&in);
    if (version != SAVE_VERSION)
        return fail(why, whylen, "the file is in save format version %u; this hv-vmm reads %u",
                    version, SAVE_VERSION);
    if (header_len < HEADER_FIXED || header_len > SAVE_HEADER_MAX || header_len + 4u > fsize)
        return fail(why, whylen, "the header's length (%u) is wrong: the file is damaged",
                    header_len);
    uint8_t *hdr = malloc(header_len + 4u);
    if (!hdr)
        return fail(why, whylen, "out of memory");
    if (read_exact(fd, hdr, header_len + 4u, 0) < 0) {
        free(hdr);
        return fail(why, whylen, "cannot read the header");
    }
    state_in_init(&in, hdr + header_len, 4);
    uint32_t want = state_get_u32(&in);
    if (crc_of(0, hdr, header_len) != want) {
        free(hdr);
        return fail(why, whylen, "the header's checksum does not match: the file is damaged");
    }
    state_in_init(&in, hdr + 16, header_len - 16);
    img->ram_size = state_get_u64(&in);
    img->nr_vcpus = state_get_u32(&in);
    uint32_t nr_sections = state_get_u32(&in);
    img->saved_realtime_ns = state_get_u64(&in);
    img->ram_offset = state_get_u64(&in);
    img->ram_pages = state_get_u64(&in);
    uint32_t layout_len = state_get_u32(&in);
    if (layout_len != header_len - HEADER_FIXED) {
        free(hdr);
        return fail(why, whylen, "the header's layout length is wrong: the file is damaged");
    }
    img->layout = calloc(1, layout_len + 1u);
    if (!img->layout) {
        free(hdr);
        return fail(why, whylen, "out of memory");
    }
    state_get_bytes(&in, img->layout, layout_len);
    free(hdr);
    if (strlen(img->layout) != layout_len)
        return fail(why, whylen, "the device layout holds a NUL byte: the file is damaged");
    if (img->ram_size == 0 || img->ram_size % SAVE_PAGE_SIZE)
        return fail(why, whylen, "the saved RAM size (%llu) is not a whole number of pages",
                    (unsigned long long)img->ram_size);
    if (nr_sections == 0 || nr_sections > SAVE_MAX_SECTIONS)
        return fail(why, whylen, "the header lists %u sections", nr_sections);

    uint64_t off = header_len + 4u, total = 0;
    bool have_ram = false;
    for (uint32_t i = 0; i < nr_sections; i++) {
        uint8_t sh[SECTION_HEADER];
        if (off > fsize || fsize - off < SECTION_HEADER || read_exact(fd, sh, SECTION_HEADER, off))
            return fail(why, whylen, "the file ends inside section %u of %u: it is truncated",
                        i + 1, nr_sections);
        char id[SAVE_ID_LEN + 1] = {0};
        memcpy(id, sh, SAVE_ID_LEN);
        size_t idlen = strlen(id);
        bool ok = idlen > 0;
        for (size_t k = 0; k < SAVE_ID_LEN; k++)
            if (k < idlen ? (id[k] < 0x21 || id[k] > 0x7e) : sh[k] != 0)
                ok = false;
        if (!ok)
            return fail(why, whylen, "section %u has no valid name: the file is damaged", i + 1);
        state_in_init(&in, sh + SAVE_ID_LEN, 12);
        uint64_t len = state_get_u64(&in);
        uint32_t crc = state_get_u32(&in);
        off += SECTION_HEADER;
        if (len > SAVE_SECTION_MAX || len > SAVE_SECTIONS_MAX - total)
            return fail(why, whylen, "section %s is %llu bytes, larger than any hv-vmm writes", id,
                        (unsigned long long)len);
        if (len > fsize - off)
            return fail(why, whylen, "the file ends inside section %s: it is truncated", id);
        if (have_ram)
            return fail(why, whylen, "section %s follows the ram section", id);
        if (save_image_find(img, id))
            return fail(why, whylen, "section %s appears twice", id);
        uint8_t *data = malloc(len ? len : 1);
        if (!data)
            return fail(why, whylen, "out of memory");
        if (read_exact(fd, data, len, off) < 0 || section_crc(sh, data, len) != crc) {
            free(data);
            return fail(why, whylen, "section %s's checksum does not match: the file is damaged",
                        id);
        }
        off += len;
        total += len;
        if (strcmp(id, "ram") == 0) {
            struct save_section s = {.data = data, .len = len};
            int r = parse_ram(img, &s, why, whylen);
            free(data);
            if (r < 0)
                return -1;
            have_ram = true;
        } else if (save_image_add(img, id, data, len) < 0) {
            free(data);
            return fail(why, whylen, "out of memory");
        }
    }
    if (!have_ram)
        return fail(why, whylen, "the file has no ram section");
    if (img->ram_offset % SAVE_PAGE_SIZE || img->ram_offset < off)
        return fail(why, whylen, "the RAM pages start at a wrong offset: the file is damaged");
    if (img->ram_pages > (fsize - img->ram_offset) / SAVE_PAGE_SIZE || img->ram_offset > fsize)
        return fail(
            why, whylen, "the file is truncated: it holds %llu bytes, the pages need %llu more",
            (unsigned long long)fsize,
            (unsigned long long)(img->ram_offset + img->ram_pages * SAVE_PAGE_SIZE - fsize));
    if (fsize != img->ram_offset + img->ram_pages * SAVE_PAGE_SIZE)
        return fail(
            why, whylen, "the file has %llu bytes after its last page: it is damaged",
            (unsigned long long)(fsize - img->ram_offset - img->ram_pages * SAVE_PAGE_SIZE));
    return 0;
}

int save_file_read(int fd, struct save_image *img, char *why, size_t whylen)
{
    struct stat st;

    memset(img, 0, sizeof(*img));
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        return fail(why, whylen, "not a regular file");
    if (read_checked(fd, img, (uint64_t)st.st_size, why, whylen) < 0) {
        save_image_free(img);
        return -1;
    }
    return 0;
}

/* Read each run into ram (checking the CRC), or map it there privately (instant-on). */
static int load_ram(int fd, const struct save_image *img, uint8_t *ram, uint64_t ram_size, bool map,
                    char *why, size_t whylen)
{
    uint32_t crc = 0;
    uint64_t off = img->ram_offset;

    if (ram_size != img->ram_size)
        return fail(why, whylen, "the VM has %llu bytes of RAM, the file %llu",
                    (unsigned long long)ram_size, (unsigned long long)img->ram_size);
    for (unsigned i = 0; i < img->nr_runs; i++) {
        uint8_t *p = ram + img->runs[i].first_page * SAVE_PAGE_SIZE;
        uint64_t len = img->runs[i].nr_pages * SAVE_PAGE_SIZE;
        if (map) {
            /* Private: the guest's writes stay in this process, the file is never changed. */
            if (mmap(p, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE, fd,
                     (off_t)off) == MAP_FAILED)
                return fail(why, whylen, "cannot map guest memory from the file: %s",
                            strerror(errno));
            madvise(p, len, MADV_MERGEABLE);
        } else {
            int err = read_exact(fd, p, len, off);
            if (err < 0)
                return fail(why, whylen, "cannot read guest memory from the file: %s",
                            err == -ENODATA ? "it is truncated" : strerror(-err));
            crc = crc_of(crc, p, len);
        }
        off += len;
    }
    if (!map && crc != img->ram_crc)
        return fail(why, whylen, "guest memory's checksum does not match: the file is damaged");
    return 0;
}

int save_file_read_ram(int fd, const struct save_image *img, uint8_t *ram, uint64_t ram_size,
                       char *why, size_t whylen)
{
    return load_ram(fd, img, ram, ram_size, false, why, whylen);
}

int save_file_map_ram(int fd, const struct save_image *img, uint8_t *ram, uint64_t ram_size,
                      char *why, size_t whylen)
{
    return load_ram(fd, img, ram, ram_size, true, why, whylen);
}
