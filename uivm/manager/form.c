/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Labelled fields with inline messages; see form.h. */
#include "form.h"

#include "session.h"

#include <stdarg.h>

GtkWidget *form_add_field(GtkGrid *grid, int *row, const char *label, GtkWidget *field)
{
    GtkWidget *l = gtk_label_new_with_mnemonic(label);
    gtk_label_set_xalign(GTK_LABEL(l), 1);
    gtk_label_set_mnemonic_widget(GTK_LABEL(l), field);
    gtk_style_context_add_class(gtk_widget_get_style_context(l), "dim-label");
    gtk_widget_set_hexpand(field, TRUE);
    gtk_grid_attach(grid, l, 0, *row, 1, 1);
    gtk_grid_attach(grid, field, 1, *row, 1, 1);
    (*row)++;
    /* The accessible name of the field is its label, without the mnemonic. */
    hv_set_accessible_name(field, gtk_label_get_text(GTK_LABEL(l)));

    GtkWidget *msg = form_message_label();
    gtk_grid_attach(grid, msg, 1, *row, 1, 1);
    (*row)++;
    return msg;
}

GtkWidget *form_message_label(void)
{
    GtkWidget *msg = gtk_label_new("");
    gtk_label_set_xalign(GTK_LABEL(msg), 0);
    gtk_label_set_line_wrap(GTK_LABEL(msg), TRUE);
    gtk_label_set_max_width_chars(GTK_LABEL(msg), 50);
    gtk_style_context_add_class(gtk_widget_get_style_context(msg), "error");
    PangoAttrList *attrs = pango_attr_list_new();
    pango_attr_list_insert(attrs, pango_attr_foreground_new(0xc000, 0x1c00, 0x2800));
    pango_attr_list_insert(attrs, pango_attr_scale_new(PANGO_SCALE_SMALL));
    gtk_label_set_attributes(GTK_LABEL(msg), attrs);
    pango_attr_list_unref(attrs);
    gtk_widget_set_no_show_all(msg, TRUE);
    return msg;
}

void form_set_message(GtkWidget *message, GtkWidget *field, const char *msg)
{
    GtkStyleContext *sc = gtk_widget_get_style_context(field);
    if (msg && *msg) {
        gtk_label_set_text(GTK_LABEL(message), msg);
        gtk_widget_show(message);
        gtk_style_context_add_class(sc, "error");
    } else {
        gtk_label_set_text(GTK_LABEL(message), "");
        gtk_widget_hide(message);
        gtk_style_context_remove_class(sc, "error");
    }
}

GtkWidget *form_combo(const char *accessible_name, ...)
{
    GtkWidget *c = gtk_combo_box_text_new();
    va_list ap;
    va_start(ap, accessible_name);
    const char *id;
    while ((id = va_arg(ap, const char *))) {
        const char *label = va_arg(ap, const char *);
        gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(c), id, label);
    }
    va_end(ap);
    gtk_combo_box_set_active(GTK_COMBO_BOX(c), 0);
    hv_set_accessible_name(c, accessible_name);
    return c;
}
