/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The details and actions of the selected VM; see vm_details.h. */
#include "vm_details.h"

#include "i18n.h"
#include "thumbnail.h"
#include "vm_row.h"
#include "vm_settings_dialog.h"

#include <string.h>

#define THUMB_W HV_THUMB_W
#define THUMB_H HV_THUMB_H

typedef struct {
    HvSession *session;
    GtkWidget *root;
    char *name;       /* the VM shown, or NULL */
    char *state;      /* its state */
    GtkWidget *stack; /* "empty" | "vm" */
    GtkWidget *title, *os_icon, *facts;
    GtkWidget *thumb_stack, *thumb_image, *thumb_placeholder_label;
    GtkWidget *start, *shutdown, *destroy, *pause, *save, *switch_to, *settings, *undefine;
} Details;

static Details *details_of(GtkWidget *w)
{
    return g_object_get_data(G_OBJECT(w), "hv-details");
}

static void details_free(gpointer data)
{
    Details *d = data;
    g_free(d->name);
    g_free(d->state);
    g_free(d);
}

/* ---- actions ---- */

typedef struct {
    GtkWidget *root;
    char *what;
} ActionCtx;

static void action_done(JsonNode *result, const HvError *error, gpointer data)
{
    ActionCtx *ctx = data;
    (void)result;
    if (error && g_strcmp0(error->code, "disconnected") != 0)
        hv_show_error(ctx->root, ctx->what, error->message);
    g_free(ctx->what);
    g_free(ctx);
}

static void run_action(Details *d, const char *method, const char *what)
{
    if (!d->name)
        return;
    JsonObject *p = json_object_new();
    json_object_set_string_member(p, "name", d->name);
    ActionCtx *ctx = g_new0(ActionCtx, 1);
    ctx->root = d->root;
    ctx->what = g_strdup(what);
    hv_client_call(d->session->client, method, p, G_OBJECT(d->root), action_done, ctx);
}

static void on_start(GtkButton *b, Details *d)
{
    (void)b;
    if (g_strcmp0(d->state, "paused") == 0)
        run_action(d, "vm.resume", _("Could not resume the virtual machine"));
    else
        run_action(d, "vm.start", _("Could not start the virtual machine"));
}

/* The VM into a file and stopped; Start continues it where it was (vm.start restores). */
static void on_save(GtkButton *b, Details *d)
{
    (void)b;
    run_action(d, "vm.save", _("Could not save the virtual machine"));
}

static void on_shutdown(GtkButton *b, Details *d)
{
    (void)b;
    run_action(d, "vm.shutdown", _("Could not shut down the virtual machine"));
}

static void on_destroy(GtkButton *b, Details *d)
{
    (void)b;
    run_action(d, "vm.destroy", _("Could not force off the virtual machine"));
}

static void on_pause(GtkButton *b, Details *d)
{
    (void)b;
    if (g_strcmp0(d->state, "paused") == 0)
        run_action(d, "vm.resume", _("Could not resume the virtual machine"));
    else
        run_action(d, "vm.pause", _("Could not pause the virtual machine"));
}

static void on_switch(GtkButton *b, Details *d)
{
    (void)b;
    run_action(d, "vm.switch", _("Could not switch to the virtual machine"));
}

static void on_settings(GtkButton *b, Details *d)
{
    (void)b;
    if (d->name)
        vm_settings_dialog_run(GTK_WINDOW(gtk_widget_get_toplevel(d->root)), d->session, d->name);
}

static void on_undefine(GtkButton *b, Details *d)
{
    (void)b;
    if (!d->name)
        return;
    GtkWidget *dlg = gtk_message_dialog_new(
        GTK_WINDOW(gtk_widget_get_toplevel(d->root)), GTK_DIALOG_MODAL, GTK_MESSAGE_QUESTION,
        GTK_BUTTONS_NONE, _("Delete the virtual machine “%s”?"), d->name);
    gtk_message_dialog_format_secondary_text(
        GTK_MESSAGE_DIALOG(dlg), _("Its definition is removed. Its disk images are kept."));
    gtk_dialog_add_buttons(GTK_DIALOG(dlg), _("_Cancel"), GTK_RESPONSE_CANCEL, _("_Delete"),
                           GTK_RESPONSE_ACCEPT, NULL);
    GtkWidget *del = gtk_dialog_get_widget_for_response(GTK_DIALOG(dlg), GTK_RESPONSE_ACCEPT);
    gtk_style_context_add_class(gtk_widget_get_style_context(del), "destructive-action");
    int resp = gtk_dialog_run(GTK_DIALOG(dlg));
    gtk_widget_destroy(dlg);
    if (resp == GTK_RESPONSE_ACCEPT)
        run_action(d, "vm.undefine", _("Could not delete the virtual machine"));
}

/* ---- thumbnail ---- */

static void show_placeholder(Details *d, const char *text)
{
    gtk_label_set_text(GTK_LABEL(d->thumb_placeholder_label), text);
    gtk_stack_set_visible_child_name(GTK_STACK(d->thumb_stack), "placeholder");
}

static gboolean has_screen(const char *state)
{
    return !g_strcmp0(state, "running") || !g_strcmp0(state, "paused") ||
           !g_strcmp0(state, "shutting-down");
}

/* Shows the VM's last thumbnail (thumbnail.c keeps them fresh), or why there is none. */
static void show_thumb(Details *d)
{
    if (!d->name)
        return;
    HvThumbs *t = hv_thumbs_get();
    GdkPixbuf *pix = hv_thumbs_pixbuf(t, d->name);
    const char *problem = hv_thumbs_problem(t, d->name);
    if (!has_screen(d->state)) {
        show_placeholder(d, g_strcmp0(d->state, "saved") == 0
                                ? _("Saved: Start continues it where it was")
                                : _("Not running"));
    } else if (pix) {
        int w = gdk_pixbuf_get_width(pix), h = gdk_pixbuf_get_height(pix);
        double scale = MIN(1.0, MIN((double)THUMB_W / w, (double)THUMB_H / h));
        GdkPixbuf *fit = gdk_pixbuf_scale_simple(pix, MAX(1, (int)(w * scale)),
                                                 MAX(1, (int)(h * scale)), GDK_INTERP_BILINEAR);
        gtk_image_set_from_pixbuf(GTK_IMAGE(d->thumb_image), fit);
        g_object_unref(fit);
        gtk_stack_set_visible_child_name(GTK_STACK(d->thumb_stack), "image");
    } else {
        show_placeholder(d, problem ? problem : _("Waiting for the screen…"));
    }
}

/* Connected with G_CONNECT_SWAPPED: the root widget comes first. */
static void on_thumb_updated(GtkWidget *root, const char *name, HvThumbs *t)
{
    (void)t;
    Details *d = details_of(root);
    if (d && g_strcmp0(name, d->name) == 0)
        show_thumb(d);
}

/* ---- building ---- */

static GtkWidget *action_button(const char *label, const char *tooltip, GCallback cb, Details *d)
{
    GtkWidget *b = gtk_button_new_with_mnemonic(label);
    gtk_widget_set_tooltip_text(b, tooltip);
    g_signal_connect(b, "clicked", cb, d);
    return b;
}

static void update_buttons(Details *d)
{
    const char *s = d->state ? d->state : "";
    gboolean off = !strcmp(s, "shutoff") || !strcmp(s, "crashed");
    gboolean running = !strcmp(s, "running");
    gboolean paused = !strcmp(s, "paused");
    gboolean saved = !strcmp(s, "saved");
    gboolean connected = hv_client_is_connected(d->session->client);
    gtk_widget_set_sensitive(d->start, connected && (off || paused || saved));
    gtk_widget_set_tooltip_text(d->start, saved ? _("Continue this virtual machine where it was "
                                                    "saved")
                                                : _("Start this virtual machine"));
    /* hvd refuses a VM with passed-through PCI devices, and says why. */
    gtk_widget_set_sensitive(d->save, connected && (running || paused));
    gtk_button_set_label(GTK_BUTTON(d->start), paused ? _("_Resume") : _("_Start"));
    gtk_button_set_use_underline(GTK_BUTTON(d->start), TRUE);
    gtk_widget_set_sensitive(d->shutdown, connected && (running || paused));
    gtk_widget_set_sensitive(d->destroy, connected && !off && !saved);
    gtk_widget_set_sensitive(d->pause, connected && (running || paused));
    gtk_button_set_label(GTK_BUTTON(d->pause), paused ? _("Res_ume") : _("_Pause"));
    gtk_widget_set_sensitive(d->settings, connected);
    gtk_widget_set_sensitive(d->undefine, connected && off);
    if (!d->session->has_switch) {
        gtk_widget_set_sensitive(d->switch_to, FALSE);
        gtk_widget_set_tooltip_text(d->switch_to,
                                    _("Switching needs hv-switch, which this hvd does not offer "
                                      "yet"));
    } else {
        gtk_widget_set_sensitive(d->switch_to, connected && (running || paused));
        gtk_widget_set_tooltip_text(d->switch_to, _("Show this virtual machine on the screen"));
    }
}

void vm_details_show(GtkWidget *details, JsonObject *summary)
{
    Details *d = details_of(details);
    const char *name =
        summary ? json_object_get_string_member_with_default(summary, "name", NULL) : NULL;
    gboolean same = g_strcmp0(name, d->name) == 0;
    g_free(d->name);
    g_free(d->state);
    d->name = g_strdup(name);
    d->state =
        summary ? g_strdup(json_object_get_string_member_with_default(summary, "state", "shutoff"))
                : NULL;
    if (!summary) {
        gtk_stack_set_visible_child_name(GTK_STACK(d->stack), "empty");
        return;
    }
    gtk_stack_set_visible_child_name(GTK_STACK(d->stack), "vm");
    const char *os = json_object_get_string_member_with_default(summary, "os", "other");
    gtk_label_set_text(GTK_LABEL(d->title), name);
    gtk_image_set_from_icon_name(GTK_IMAGE(d->os_icon), vm_os_icon_name(os), GTK_ICON_SIZE_DIALOG);
    hv_set_accessible_name(d->os_icon, vm_os_label(os));
    char *mem =
        g_format_size_full((guint64)json_object_get_int_member_with_default(summary, "memory", 0),
                           G_FORMAT_SIZE_IEC_UNITS);
    /* The balloon (vm.memory): what the running guest keeps and is asked to keep. */
    gint64 memory = json_object_get_int_member_with_default(summary, "memory", 0);
    gint64 target = json_object_get_int_member_with_default(summary, "memory_target", -1);
    gint64 actual = json_object_get_int_member_with_default(summary, "memory_actual", -1);
    char *balloon = NULL;
    if (target >= 0 && actual >= 0 && (target != memory || actual != memory)) {
        char *t = g_format_size_full((guint64)target, G_FORMAT_SIZE_IEC_UNITS);
        char *a = g_format_size_full((guint64)actual, G_FORMAT_SIZE_IEC_UNITS);
        balloon = g_strdup_printf(_(" (now %s, target %s)"), a, t);
        g_free(t);
        g_free(a);
    }
    char *facts = g_strdup_printf(
        _("State: %s\nMemory: %s%s\nProcessors: %d\nOperating system: %s"),
        vm_state_label(d->state), mem, balloon ? balloon : "",
        (int)json_object_get_int_member_with_default(summary, "cpus", 1), vm_os_label(os));
    g_free(balloon);
    gtk_label_set_text(GTK_LABEL(d->facts), facts);
    g_free(facts);
    g_free(mem);
    update_buttons(d);
    if (!same)
        gtk_image_clear(GTK_IMAGE(d->thumb_image));
    show_thumb(d);
}

/* Connected with G_CONNECT_SWAPPED: the root widget comes first. */
static void on_connection_changed(GtkWidget *root, gboolean connected, HvClient *c)
{
    (void)c;
    (void)connected;
    Details *d = details_of(root);
    if (d && d->name)
        update_buttons(d);
}

GtkWidget *vm_details_new(HvSession *session)
{
    Details *d = g_new0(Details, 1);
    d->session = session;
    d->stack = gtk_stack_new();
    d->root = d->stack;
    g_object_set_data_full(G_OBJECT(d->root), "hv-details", d, details_free);
    hv_set_accessible_name(d->root, _("Virtual machine details"));

    GtkWidget *empty = gtk_label_new(_("Select a virtual machine"));
    gtk_style_context_add_class(gtk_widget_get_style_context(empty), "dim-label");
    gtk_stack_add_named(GTK_STACK(d->stack), empty, "empty");

    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 12);
    g_object_set(box, "margin", 18, NULL);

    GtkWidget *head = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
    d->os_icon = gtk_image_new();
    gtk_image_set_pixel_size(GTK_IMAGE(d->os_icon), 48);
    d->title = gtk_label_new("");
    gtk_label_set_xalign(GTK_LABEL(d->title), 0);
    gtk_style_context_add_class(gtk_widget_get_style_context(d->title), "title");
    PangoAttrList *big = pango_attr_list_new();
    pango_attr_list_insert(big, pango_attr_scale_new(1.4));
    pango_attr_list_insert(big, pango_attr_weight_new(PANGO_WEIGHT_BOLD));
    gtk_label_set_attributes(GTK_LABEL(d->title), big);
    pango_attr_list_unref(big);
    gtk_box_pack_start(GTK_BOX(head), d->os_icon, FALSE, FALSE, 0);
    gtk_box_pack_start(GTK_BOX(head), d->title, TRUE, TRUE, 0);
    gtk_box_pack_start(GTK_BOX(box), head, FALSE, FALSE, 0);

    /* The thumbnail: the VM's screen, or a placeholder. */
    d->thumb_stack = gtk_stack_new();
    gtk_widget_set_size_request(d->thumb_stack, THUMB_W, THUMB_H);
    gtk_widget_set_halign(d->thumb_stack, GTK_ALIGN_START);
    hv_set_accessible_name(d->thumb_stack, _("Screen thumbnail"));
    GtkWidget *frame = gtk_frame_new(NULL);
    GtkWidget *ph = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
    gtk_widget_set_valign(ph, GTK_ALIGN_CENTER);
    GtkWidget *ph_icon = gtk_image_new_from_icon_name("hv-state-off", GTK_ICON_SIZE_DIALOG);
    gtk_image_set_pixel_size(GTK_IMAGE(ph_icon), 48);
    gtk_widget_set_opacity(ph_icon, 0.5);
    d->thumb_placeholder_label = gtk_label_new(_("Not running"));
    gtk_label_set_line_wrap(GTK_LABEL(d->thumb_placeholder_label), TRUE);
    gtk_label_set_max_width_chars(GTK_LABEL(d->thumb_placeholder_label), 36);
    gtk_label_set_justify(GTK_LABEL(d->thumb_placeholder_label), GTK_JUSTIFY_CENTER);
    gtk_style_context_add_class(gtk_widget_get_style_context(d->thumb_placeholder_label),
                                "dim-label");
    gtk_box_pack_start(GTK_BOX(ph), ph_icon, FALSE, FALSE, 0);
    gtk_box_pack_start(GTK_BOX(ph), d->thumb_placeholder_label, FALSE, FALSE, 0);
    gtk_container_add(GTK_CONTAINER(frame), ph);
    gtk_stack_add_named(GTK_STACK(d->thumb_stack), frame, "placeholder");
    d->thumb_image = gtk_image_new();
    hv_set_accessible_name(d->thumb_image, _("Screenshot of the virtual machine"));
    gtk_stack_add_named(GTK_STACK(d->thumb_stack), d->thumb_image, "image");
    gtk_box_pack_start(GTK_BOX(box), d->thumb_stack, FALSE, FALSE, 0);

    d->facts = gtk_label_new("");
    gtk_label_set_xalign(GTK_LABEL(d->facts), 0);
    gtk_label_set_selectable(GTK_LABEL(d->facts), FALSE);
    gtk_box_pack_start(GTK_BOX(box), d->facts, FALSE, FALSE, 0);

    GtkWidget *bb = gtk_flow_box_new();
    gtk_flow_box_set_selection_mode(GTK_FLOW_BOX(bb), GTK_SELECTION_NONE);
    gtk_flow_box_set_max_children_per_line(GTK_FLOW_BOX(bb), 4);
    gtk_flow_box_set_column_spacing(GTK_FLOW_BOX(bb), 6);
    gtk_flow_box_set_row_spacing(GTK_FLOW_BOX(bb), 6);
    gtk_flow_box_set_homogeneous(GTK_FLOW_BOX(bb), TRUE);
    d->start = action_button(_("_Start"), _("Start this virtual machine"), G_CALLBACK(on_start), d);
    gtk_style_context_add_class(gtk_widget_get_style_context(d->start), "suggested-action");
    d->shutdown = action_button(_("Shut _Down"), _("Ask the guest to power off (power button)"),
                                G_CALLBACK(on_shutdown), d);
    d->destroy = action_button(_("_Force Off"), _("Stop at once, like pulling the plug"),
                               G_CALLBACK(on_destroy), d);
    gtk_style_context_add_class(gtk_widget_get_style_context(d->destroy), "destructive-action");
    d->pause = action_button(_("_Pause"), _("Stop or continue the virtual processors"),
                             G_CALLBACK(on_pause), d);
    d->save = action_button(_("Sa_ve"),
                            _("Save this virtual machine to disk and stop it; Start continues it"),
                            G_CALLBACK(on_save), d);
    d->switch_to = action_button(_("S_witch To"), NULL, G_CALLBACK(on_switch), d);
    d->settings = action_button(_("Se_ttings…"), _("Change memory, processors, colour…"),
                                G_CALLBACK(on_settings), d);
    d->undefine = action_button(_("De_lete…"), _("Remove this virtual machine's definition"),
                                G_CALLBACK(on_undefine), d);
    /* Save last: the others keep their places (tests/uivm/test_uivm_laptop.py clicks Switch To). */
    GtkWidget *buttons[] = {d->start,     d->shutdown, d->destroy,  d->pause,
                            d->switch_to, d->settings, d->undefine, d->save};
    for (size_t i = 0; i < G_N_ELEMENTS(buttons); i++)
        gtk_container_add(GTK_CONTAINER(bb), buttons[i]);
    gtk_box_pack_start(GTK_BOX(box), bb, FALSE, FALSE, 0);

    gtk_stack_add_named(GTK_STACK(d->stack), box, "vm");
    gtk_widget_show_all(d->stack);
    gtk_stack_set_visible_child_name(GTK_STACK(d->stack), "empty");
    g_signal_connect_object(session->client, "connection-changed",
                            G_CALLBACK(on_connection_changed), d->root, G_CONNECT_SWAPPED);
    hv_thumbs_start(hv_thumbs_get(), session->client, d->root);
    g_signal_connect_object(hv_thumbs_get(), "updated", G_CALLBACK(on_thumb_updated), d->root,
                            G_CONNECT_SWAPPED);
    return d->root;
}
