/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Small helpers to lay out labelled fields with an inline message under
 * each, shared by the create assistant and the settings dialog.
 */
#pragma once

#include <gtk/gtk.h>

/* Adds "label" + field at row *row of grid (and the message below), advancing *row.
 * Returns the message label (hidden until form_set_message). */
GtkWidget *form_add_field(GtkGrid *grid, int *row, const char *label, GtkWidget *field);
/* A hidden, red, wrapping label for an inline error message. */
GtkWidget *form_message_label(void);
/* Shows msg (an error) under the field and marks the field, or clears both when msg is NULL. */
void form_set_message(GtkWidget *message, GtkWidget *field, const char *msg);
/* A GtkComboBoxText with ids. items: id, label, id, label, …, NULL. */
GtkWidget *form_combo(const char *accessible_name, ...) G_GNUC_NULL_TERMINATED;
