/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzzes what a producer can send: a sequence of datagrams, each run through
 * disp_parse, disp_check_scanout and disp_conn_apply as hv-switch does, with
 * hellos registered in a registry. Input: records of
 *   u16 length, u8 nfds, u64 memfd size, u8 fd flags (bit 0 regular, bit 1 sealed), bytes.
 */
#include "focus.h"
#include "proto.h"
#include "registry.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct registry reg;
    static struct focus foc;
    static struct focus_out out;
    struct disp_conn conn = {0};
    char err[256];

    reg_init(&reg);
    focus_init(&foc);
    while (size >= 12) {
        uint16_t len;
        uint64_t fdsize;
        struct disp_msg m;
        struct disp_fdinfo fd;
        int nfds = data[2] % 3;

        memcpy(&len, data, 2);
        memcpy(&fdsize, data + 3, 8);
        fd = (struct disp_fdinfo){data[11] & 1, fdsize, (data[11] & 2) != 0};
        data += 12;
        size -= 12;
        len = (uint16_t)(len % (DISP_MAX_MSG + 1));
        if (len > size)
            len = (uint16_t)size;

        if (disp_parse(data, len, nfds, &m, err, sizeof(err)) == 0 &&
            (m.type != DISP_SCANOUT ||
             disp_check_scanout(&m.u.scanout, &fd, err, sizeof(err)) == 0) &&
            disp_conn_apply(&conn, &m, err, sizeof(err)) == 0 && m.type == DISP_HELLO) {
            struct vm *v = reg_add(&reg, &m.u.hello, err, sizeof(err));
            if (v) {
                focus_vm_added(&foc, &reg, v->id, &out);
                if (!disp_name_valid(v->name))
                    abort();
            }
        }
        if (strlen(err) >= sizeof(err))
            abort();
        data += len;
        size -= len;
    }
    return 0;
}
