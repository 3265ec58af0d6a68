/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The save file (docs/save-format.md): a header, named sections with CRCs,
 * and guest RAM as runs of non-zero pages. This layer knows bytes and files,
 * not KVM: vm_save.c fills it from a VM and applies it to one.
 */
#ifndef HV_VMM_SAVEFILE_H
#define HV_VMM_SAVEFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SAVE_MAGIC        "HVSAVE\r\n"
#define SAVE_VERSION      1
#define SAVE_PAGE_SIZE    4096u
#define SAVE_ID_LEN       32
#define SAVE_HEADER_MAX   65536u       /* header and layout string */
#define SAVE_SECTION_MAX  (64u << 20)  /* one section */
#define SAVE_SECTIONS_MAX (256u << 20) /* all sections together */
#define SAVE_MAX_SECTIONS 1024u
#define SAVE_MERGE_GAP    8u /* zero pages between two runs that are stored anyway */

struct save_section {
    char id[SAVE_ID_LEN + 1];
    uint8_t *data;
    uint64_t len;
};

struct save_run {
    uint64_t first_page;
    uint64_t nr_pages;
};

/* What one file holds. Filled by the writer's caller, or by save_file_read(). */
struct save_image {
    uint64_t ram_size;
    uint32_t nr_vcpus;
    uint64_t saved_realtime_ns;
    char *layout; /* NUL-terminated */
    unsigned nr_sections;
    struct save_section *sections; /* without "ram" */
    unsigned nr_runs;
    struct save_run *runs;
    uint64_t ram_pages;
    uint64_t ram_offset; /* set by save_file_read */
    uint32_t ram_crc;    /* set by save_file_read */
};

void save_image_free(struct save_image *img);
/* Append a section; data is taken over (freed with the image). 0 or -1. */
int save_image_add(struct save_image *img, const char *id, uint8_t *data, uint64_t len);
const struct save_section *save_image_find(const struct save_image *img, const char *id);

/* The runs of pages of ram[0, size) that are not all zero. 0 or -1 (out of memory). */
int save_find_runs(const uint8_t *ram, uint64_t size, struct save_image *img);

/*
 * Write img and the pages its runs name from ram to fd (an empty file, from
 * offset 0). Returns the bytes written, or -1 with why set.
 */
int64_t save_file_write(int fd, const struct save_image *img, const uint8_t *ram, char *why,
                        size_t whylen);

/*
 * Read and check the header, every section and the runs (not the pages):
 * magic, version, CRCs, lengths against the file's size. 0, or -1 with why
 * set and img empty.
 */
int save_file_read(int fd, struct save_image *img, char *why, size_t whylen);

/*
 * Read the pages into ram (ram_size bytes, zero where no run is) and check
 * the RAM CRC. 0, or -1 with why set.
 */
int save_file_read_ram(int fd, const struct save_image *img, uint8_t *ram, uint64_t ram_size,
                       char *why, size_t whylen);

/*
 * Instant-on: map each run of the file privately over ram instead of
 * reading it, so the guest can start before its memory is read. The RAM
 * CRC is not checked (it would need every page read). 0, or -1 with why.
 */
int save_file_map_ram(int fd, const struct save_image *img, uint8_t *ram, uint64_t ram_size,
                      char *why, size_t whylen);

#endif
