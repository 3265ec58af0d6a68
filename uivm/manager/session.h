/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the windows of hv-manager share: the connection to hvd and what is
 * known about the host and its VMs (refreshed by the main window).
 */
#pragma once

#include "hvd_client.h"

#include <gtk/gtk.h>

typedef struct {
    HvClient *client;
    char *hostname;
    guint64 memory_total; /* bytes, from host.info; 0 until known */
    guint host_cpus;
    GPtrArray *vm_names; /* char *, NULL-terminated, from the last vm.list */
    gboolean has_switch; /* hvd answers vm.switch */
} HvSession;

/* A NULL-terminated view of the names, valid until the next list refresh. */
static inline const char *const *hv_session_vm_names(HvSession *s)
{
    return (const char *const *)s->vm_names->pdata;
}

/* Sets a widget's accessible name (what AT-SPI and screen readers read). */
static inline void hv_set_accessible_name(GtkWidget *w, const char *name)
{
    atk_object_set_name(gtk_widget_get_accessible(w), name);
}

/* A modal error dialog for a failed request. */
void hv_show_error(GtkWidget *parent, const char *what, const char *message);
