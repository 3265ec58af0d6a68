/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The VMs connected to hv-switch, their hotkey slots and order. Pure. */
#ifndef HV_SWITCH_REGISTRY_H
#define HV_SWITCH_REGISTRY_H

#include "proto.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REG_MAX_VMS 16
#define REG_KEYS    768 /* evdev KEY_CNT */
#define REG_NO_SLOT (-1)

struct vm {
    int id;   /* unique for hv-switch's lifetime, never 0 */
    int slot; /* 0 UIVM, 1..9, REG_NO_SLOT */
    bool uivm;
    char name[DISP_NAME_MAX];
    uint32_t colour;
    uint8_t held[REG_KEYS / 8]; /* keys pressed in this VM (forwarded, not yet released) */
    void *priv;                 /* the owner's per-VM state */
};

/* VMs in display order: the UIVM, slots 1..9, then the rest in order of connection. */
struct registry {
    struct vm vms[REG_MAX_VMS];
    int count;
    int next_id;
};

void reg_init(struct registry *r);

/* Adds a VM from its hello; NULL with err when its slot or the UIVM is taken or all are full. */
struct vm *reg_add(struct registry *r, const struct disp_hello *h, char *err, size_t errlen);
void reg_remove(struct registry *r, int id);

struct vm *reg_by_id(struct registry *r, int id);
struct vm *reg_by_slot(struct registry *r, int slot);
int reg_index(const struct registry *r, int id); /* -1 when absent */

static inline bool vm_held(const struct vm *v, uint32_t code)
{
    return code < REG_KEYS && (v->held[code / 8] >> (code % 8)) & 1;
}

static inline void vm_set_held(struct vm *v, uint32_t code, bool on)
{
    if (code >= REG_KEYS)
        return;
    if (on)
        v->held[code / 8] |= (uint8_t)(1u << (code % 8));
    else
        v->held[code / 8] &= (uint8_t) ~(1u << (code % 8));
}

#endif
