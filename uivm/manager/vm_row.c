/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A row of the VM list; see vm_row.h. */
#include "vm_row.h"

#include "i18n.h"
#include "session.h"
#include "thumbnail.h"

#include <string.h>

#define ROW_THUMB_W 64 /* the VM's screen in its row, from the details pane's thumbnail */
#define ROW_THUMB_H 40

typedef struct {
    JsonObject *summary;
    GdkRGBA colour;
    GtkWidget *os_icon, *swatch, *name, *state_icon, *state, *details, *thumb;
} VmRow;

static VmRow *row_data(GtkWidget *row)
{
    return g_object_get_data(G_OBJECT(row), "hv-vm-row");
}

static void row_free(gpointer data)
{
    VmRow *r = data;
    hv_thumbs_forget(hv_thumbs_get(),
                     json_object_get_string_member_with_default(r->summary, "name", ""));
    json_object_unref(r->summary);
    g_free(r);
}

const char *vm_state_label(const char *state)
{
    if (g_strcmp0(state, "running") == 0)
        return _("Running");
    if (g_strcmp0(state, "paused") == 0)
        return _("Paused");
    if (g_strcmp0(state, "shutting-down") == 0)
        return _("Shutting down");
    if (g_strcmp0(state, "crashed") == 0)
        return _("Crashed");
    if (g_strcmp0(state, "saved") == 0)
        return _("Saved");
    if (g_strcmp0(state, "shutoff") == 0)
        return _("Off");
    return state ? state : _("Unknown");
}

const char *vm_state_icon_name(const char *state)
{
    if (g_strcmp0(state, "running") == 0 || g_strcmp0(state, "shutting-down") == 0)
        return "hv-state-running";
    /* A saved VM is stopped where it was, as a paused one is: the same icon. */
    if (g_strcmp0(state, "paused") == 0 || g_strcmp0(state, "saved") == 0)
        return "hv-state-paused";
    if (g_strcmp0(state, "crashed") == 0)
        return "hv-state-crashed";
    return "hv-state-off";
}

const char *vm_os_icon_name(const char *os)
{
    if (g_strcmp0(os, "windows") == 0)
        return "hv-os-windows";
    if (g_strcmp0(os, "linux") == 0)
        return "hv-os-linux";
    return "hv-os-other";
}

const char *vm_os_label(const char *os)
{
    if (g_strcmp0(os, "windows") == 0)
        return _("Windows");
    if (g_strcmp0(os, "linux") == 0)
        return _("Linux");
    return _("Other");
}

static gboolean draw_swatch(GtkWidget *w, cairo_t *cr, gpointer data)
{
    VmRow *r = data;
    int wd = gtk_widget_get_allocated_width(w), ht = gtk_widget_get_allocated_height(w);
    double rad = 3, x = 1, y = 1, ww = wd - 2, hh = ht - 2;
    cairo_new_sub_path(cr);
    cairo_arc(cr, x + ww - rad, y + rad, rad, -G_PI / 2, 0);
    cairo_arc(cr, x + ww - rad, y + hh - rad, rad, 0, G_PI / 2);
    cairo_arc(cr, x + rad, y + hh - rad, rad, G_PI / 2, G_PI);
    cairo_arc(cr, x + rad, y + rad, rad, G_PI, 3 * G_PI / 2);
    cairo_close_path(cr);
    gdk_cairo_set_source_rgba(cr, &r->colour);
    cairo_fill_preserve(cr);
    cairo_set_source_rgba(cr, 0, 0, 0, 0.25);
    cairo_set_line_width(cr, 1);
    cairo_stroke(cr);
    return FALSE;
}

/* The row's small copy of the VM's thumbnail; hidden while there is none. */
static void show_thumb(VmRow *r, const char *name)
{
    GdkPixbuf *pix = hv_thumbs_pixbuf(hv_thumbs_get(), name);
    if (!pix) {
        gtk_widget_hide(r->thumb);
        return;
    }
    int w = gdk_pixbuf_get_width(pix), h = gdk_pixbuf_get_height(pix);
    double scale = MIN((double)ROW_THUMB_W / w, (double)ROW_THUMB_H / h);
    GdkPixbuf *small = gdk_pixbuf_scale_simple(pix, MAX(1, (int)(w * scale)),
                                               MAX(1, (int)(h * scale)), GDK_INTERP_BILINEAR);
    gtk_image_set_from_pixbuf(GTK_IMAGE(r->thumb), small);
    g_object_unref(small);
    gtk_widget_show(r->thumb);
}

static void on_thumb_updated(HvThumbs *t, const char *name, GtkWidget *row)
{
    (void)t;
    VmRow *r = row_data(row);
    if (r &&
        g_strcmp0(name, json_object_get_string_member_with_default(r->summary, "name", "")) == 0)
        show_thumb(r, name);
}

static void refresh(GtkWidget *row)
{
    VmRow *r = row_data(row);
    JsonObject *s = r->summary;
    const char *name = json_object_get_string_member_with_default(s, "name", "?");
    const char *state = json_object_get_string_member_with_default(s, "state", "shutoff");
    const char *os = json_object_get_string_member_with_default(s, "os", "other");
    const char *colour = json_object_get_string_member_with_default(s, "colour", "#888888");
    if (!gdk_rgba_parse(&r->colour, colour))
        gdk_rgba_parse(&r->colour, "#888888");

    gtk_image_set_from_icon_name(GTK_IMAGE(r->os_icon), vm_os_icon_name(os), GTK_ICON_SIZE_DND);
    gtk_image_set_from_icon_name(GTK_IMAGE(r->state_icon), vm_state_icon_name(state),
                                 GTK_ICON_SIZE_MENU);
    gtk_label_set_text(GTK_LABEL(r->name), name);
    gtk_label_set_text(GTK_LABEL(r->state), vm_state_label(state));
    char *mem = g_format_size_full((guint64)json_object_get_int_member_with_default(s, "memory", 0),
                                   G_FORMAT_SIZE_IEC_UNITS);
    gint64 cpus = json_object_get_int_member_with_default(s, "cpus", 1);
    char *details = g_strdup_printf(
        g_dngettext(NULL, "%s · %s · %d processor", "%s · %s · %d processors", (gulong)cpus),
        vm_os_label(os), mem, (int)cpus);
    gtk_label_set_text(GTK_LABEL(r->details), details);
    gtk_widget_queue_draw(r->swatch);
    hv_thumbs_watch(hv_thumbs_get(), name, state);
    show_thumb(r, name);

    char *acc = g_strdup_printf(_("%s, %s"), name, vm_state_label(state));
    hv_set_accessible_name(row, acc);
    hv_set_accessible_name(r->os_icon, vm_os_label(os));
    hv_set_accessible_name(r->state_icon, vm_state_label(state));
    char *sw = g_strdup_printf(_("Colour %s"), colour);
    hv_set_accessible_name(r->swatch, sw);
    gtk_widget_set_tooltip_text(r->swatch, sw);
    char *screen = g_strdup_printf(_("Screen of %s"), name);
    hv_set_accessible_name(r->thumb, screen);
    g_free(screen);
    g_free(sw);
    g_free(acc);
    g_free(details);
    g_free(mem);
}

GtkWidget *vm_row_new(JsonObject *summary)
{
    VmRow *r = g_new0(VmRow, 1);
    r->summary = json_object_ref(summary);
    GtkWidget *row = gtk_list_box_row_new();
    g_object_set_data_full(G_OBJECT(row), "hv-vm-row", r, row_free);

    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
    g_object_set(box, "margin", 8, NULL);
    r->swatch = gtk_drawing_area_new();
    gtk_widget_set_size_request(r->swatch, 8, 40);
    g_signal_connect(r->swatch, "draw", G_CALLBACK(draw_swatch), r);
    r->os_icon = gtk_image_new();
    gtk_image_set_pixel_size(GTK_IMAGE(r->os_icon), 32);

    GtkWidget *text = gtk_box_new(GTK_ORIENTATION_VERTICAL, 2);
    r->name = gtk_label_new("");
    gtk_label_set_xalign(GTK_LABEL(r->name), 0);
    gtk_label_set_ellipsize(GTK_LABEL(r->name), PANGO_ELLIPSIZE_END);
    gtk_style_context_add_class(gtk_widget_get_style_context(r->name), "heading");
    PangoAttrList *bold = pango_attr_list_new();
    pango_attr_list_insert(bold, pango_attr_weight_new(PANGO_WEIGHT_BOLD));
    gtk_label_set_attributes(GTK_LABEL(r->name), bold);
    pango_attr_list_unref(bold);
    r->details = gtk_label_new("");
    gtk_label_set_xalign(GTK_LABEL(r->details), 0);
    gtk_style_context_add_class(gtk_widget_get_style_context(r->details), "dim-label");
    gtk_box_pack_start(GTK_BOX(text), r->name, FALSE, FALSE, 0);
    gtk_box_pack_start(GTK_BOX(text), r->details, FALSE, FALSE, 0);

    GtkWidget *state_box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
    r->state_icon = gtk_image_new();
    r->state = gtk_label_new("");
    gtk_box_pack_start(GTK_BOX(state_box), r->state_icon, FALSE, FALSE, 0);
    gtk_box_pack_start(GTK_BOX(state_box), r->state, FALSE, FALSE, 0);
    gtk_widget_set_valign(state_box, GTK_ALIGN_CENTER);

    gtk_box_pack_start(GTK_BOX(box), r->swatch, FALSE, FALSE, 0);
    gtk_box_pack_start(GTK_BOX(box), r->os_icon, FALSE, FALSE, 0);
    gtk_box_pack_start(GTK_BOX(box), text, TRUE, TRUE, 0);
    gtk_box_pack_end(GTK_BOX(box), state_box, FALSE, FALSE, 0);
    r->thumb = gtk_image_new();
    gtk_widget_set_size_request(r->thumb, ROW_THUMB_W, ROW_THUMB_H);
    gtk_widget_set_valign(r->thumb, GTK_ALIGN_CENTER);
    gtk_widget_set_no_show_all(r->thumb, TRUE);
    gtk_box_pack_end(GTK_BOX(box), r->thumb, FALSE, FALSE, 0);
    gtk_container_add(GTK_CONTAINER(row), box);
    g_signal_connect_object(hv_thumbs_get(), "updated", G_CALLBACK(on_thumb_updated), row, 0);
    refresh(row);
    gtk_widget_show_all(row);
    return row;
}

void vm_row_update(GtkWidget *row, JsonObject *summary)
{
    VmRow *r = row_data(row);
    json_object_unref(r->summary);
    r->summary = json_object_ref(summary);
    refresh(row);
}

void vm_row_set_state(GtkWidget *row, const char *state)
{
    VmRow *r = row_data(row);
    /* The summary may be shared with a parser's tree: copy before changing. */
    JsonObject *copy = json_object_new();
    GList *members = json_object_get_members(r->summary);
    for (GList *l = members; l; l = l->next)
        json_object_set_member(copy, l->data,
                               json_node_copy(json_object_get_member(r->summary, l->data)));
    g_list_free(members);
    json_object_set_string_member(copy, "state", state);
    json_object_unref(r->summary);
    r->summary = copy;
    refresh(row);
}

const char *vm_row_get_name(GtkWidget *row)
{
    return json_object_get_string_member_with_default(row_data(row)->summary, "name", "");
}

JsonObject *vm_row_get_summary(GtkWidget *row)
{
    return row_data(row)->summary;
}
