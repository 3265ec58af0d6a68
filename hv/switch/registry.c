/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "registry.h"

#include <stdio.h>
#include <string.h>

void reg_init(struct registry *r)
{
    memset(r, 0, sizeof(*r));
    r->next_id = 1;
}

static int order_key(const struct vm *v)
{
    return v->slot == REG_NO_SLOT ? 10 : v->slot;
}

struct vm *reg_add(struct registry *r, const struct disp_hello *h, char *err, size_t errlen)
{
    int slot = h->slot, pos;
    struct vm *v;

    if (r->count == REG_MAX_VMS) {
        snprintf(err, errlen, "already %d VMs connected", REG_MAX_VMS);
        return NULL;
    }
    if (h->flags & DISP_HELLO_UIVM) {
        if (reg_by_slot(r, 0)) {
            snprintf(err, errlen, "a UIVM is already connected");
            return NULL;
        }
        slot = 0;
    } else if (slot) {
        if (reg_by_slot(r, slot)) {
            snprintf(err, errlen, "slot %d is taken", slot);
            return NULL;
        }
    } else {
        for (slot = 1; slot <= 9 && reg_by_slot(r, slot); slot++)
            ;
        if (slot > 9)
            slot = REG_NO_SLOT;
    }

    /* Insert after every VM that sorts before or with it (keeps connection order for ties). */
    for (pos = 0; pos < r->count && order_key(&r->vms[pos]) <= (slot < 0 ? 10 : slot); pos++)
        ;
    memmove(&r->vms[pos + 1], &r->vms[pos], (size_t)(r->count - pos) * sizeof(r->vms[0]));
    r->count++;
    v = &r->vms[pos];
    memset(v, 0, sizeof(*v));
    v->id = r->next_id++;
    v->slot = slot;
    v->uivm = slot == 0;
    memcpy(v->name, h->name, sizeof(v->name));
    v->name[DISP_NAME_MAX - 1] = '\0';
    v->colour = h->colour;
    return v;
}

void reg_remove(struct registry *r, int id)
{
    int i = reg_index(r, id);

    if (i < 0)
        return;
    memmove(&r->vms[i], &r->vms[i + 1], (size_t)(r->count - i - 1) * sizeof(r->vms[0]));
    r->count--;
}

int reg_index(const struct registry *r, int id)
{
    for (int i = 0; i < r->count; i++) {
        if (r->vms[i].id == id)
            return i;
    }
    return -1;
}

struct vm *reg_by_id(struct registry *r, int id)
{
    int i = reg_index(r, id);

    return i < 0 ? NULL : &r->vms[i];
}

struct vm *reg_by_slot(struct registry *r, int slot)
{
    for (int i = 0; i < r->count; i++) {
        if (r->vms[i].slot == slot)
            return &r->vms[i];
    }
    return NULL;
}
