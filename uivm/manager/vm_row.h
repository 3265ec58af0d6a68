/* SPDX-License-Identifier: GPL-2.0-or-later */
/* One row of the VM list: OS icon, colour swatch, name, state icon and text. */
#pragma once

#include <gtk/gtk.h>
#include <json-glib/json-glib.h>

/* summary: a VMSUMMARY of vm.list (docs/hvd-api.md). */
GtkWidget *vm_row_new(JsonObject *summary);
void vm_row_update(GtkWidget *row, JsonObject *summary);
void vm_row_set_state(GtkWidget *row, const char *state);
const char *vm_row_get_name(GtkWidget *row);
/* The last summary (with the state updated by events); owned by the row. */
JsonObject *vm_row_get_summary(GtkWidget *row);

/* Shared by the list and the details pane. */
const char *vm_state_label(const char *state);
const char *vm_state_icon_name(const char *state);
const char *vm_os_icon_name(const char *os);
const char *vm_os_label(const char *os);
