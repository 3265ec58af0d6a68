// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * hv-img: makes the images qemu-img cannot, with hv-vmm's own block code
 * (docs/disks.md). Today one thing: VHDs, a differencing VHD over a parent
 * in the same directory included (qemu-img's vpc driver makes only fixed
 * and dynamic ones). hvd runs it for an overlay on a VHD.
 *
 *   hv-img create [--fixed] FILE SIZE       a fixed or dynamic VHD of exactly SIZE
 *   hv-img create --parent PARENT FILE      a differencing VHD over PARENT
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/block.h"
#include "block/vhd.h"
#include "util.h"

static int usage(FILE *f)
{
    fprintf(f, "Usage: hv-img create [--fixed] FILE SIZE\n"
               "       hv-img create --parent PARENT FILE\n"
               "Makes a VHD (fixed, dynamic, or differencing over PARENT, an image in FILE's\n"
               "directory). The file must not exist. See docs/disks.md.\n");
    return f == stdout ? 0 : 2;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"fixed", no_argument, NULL, 'f'},
        {"parent", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool fixed = false;
    const char *parent = NULL;
    if (argc < 2 || strcmp(argv[1], "create") != 0)
        return usage(argc >= 2 && !strcmp(argv[1], "--help") ? stdout : stderr);
    optind = 2;
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        if (c == 'f')
            fixed = true;
        else if (c == 'p')
            parent = optarg;
        else
            return usage(c == 'h' ? stdout : stderr);
    }
    int left = argc - optind;
    if ((parent && (fixed || left != 1)) || (!parent && left != 2))
        return usage(stderr);
    uint64_t size = 0;
    const char *why = NULL;
    if (!parent && parse_size(argv[optind + 1], &size, &why) < 0) {
        fprintf(stderr, "hv-img: size %s: %s\n", argv[optind + 1], why);
        return 2;
    }
    char err[BDEV_ERR_LEN];
    enum vhd_type type = parent ? VHD_DIFF : fixed ? VHD_FIXED : VHD_DYNAMIC;
    if (vhd_create(argv[optind], type, size, parent, err) < 0) {
        fprintf(stderr, "hv-img: %s\n", err);
        return 1;
    }
    return 0;
}
