/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The USB devices and auto-assign rules; see usb_page.h. */
#include "usb_page.h"

#include "i18n.h"

#include <string.h>

typedef struct {
    HvSession *session;
    GtkWidget *root; /* a GtkStack: "loading" | "unavailable" | "devices" */
    GtkWidget *unavailable_detail;
    GtkWidget *devices, *rules; /* GtkListBox */
    JsonArray *rule_list;       /* the last usb.rules result */
} UsbPage;

static UsbPage *page_of(gpointer w)
{
    return g_object_get_data(G_OBJECT(w), "hv-usb-page");
}

static void page_free(gpointer data)
{
    UsbPage *u = data;
    if (u->rule_list)
        json_array_unref(u->rule_list);
    g_free(u);
}

static void clear_list(GtkWidget *list)
{
    GList *children = gtk_container_get_children(GTK_CONTAINER(list));
    for (GList *l = children; l; l = l->next)
        gtk_widget_destroy(l->data);
    g_list_free(children);
}

static void show_unavailable(UsbPage *u, const HvError *error)
{
    char *detail;
    if (g_strcmp0(error->code, "unknown-method") == 0)
        detail = g_strdup(_("This hvd does not offer USB device management yet. Devices stay "
                            "with the host."));
    else if (g_strcmp0(error->code, "disconnected") == 0)
        detail = g_strdup(_("Not connected to hvd."));
    else
        detail = g_strdup_printf(_("hvd could not list USB devices: %s"), error->message);
    gtk_label_set_text(GTK_LABEL(u->unavailable_detail), detail);
    g_free(detail);
    gtk_stack_set_visible_child_name(GTK_STACK(u->root), "unavailable");
}

static void op_done(JsonNode *result, const HvError *error, gpointer data)
{
    (void)result;
    UsbPage *u = page_of(data);
    if (error && g_strcmp0(error->code, "disconnected") != 0)
        hv_show_error(u->root, _("The USB operation failed"), error->message);
    usb_page_refresh(u->root);
}

static void on_assign(GtkButton *b, UsbPage *u)
{
    GtkWidget *combo = g_object_get_data(G_OBJECT(b), "hv-target");
    const char *vm = gtk_combo_box_get_active_id(GTK_COMBO_BOX(combo));
    if (!vm)
        return;
    JsonObject *p = json_object_new();
    json_object_set_string_member(p, "busid", g_object_get_data(G_OBJECT(b), "hv-busid"));
    json_object_set_string_member(p, "vm", vm);
    hv_client_call(u->session->client, "usb.attach", p, G_OBJECT(u->root), op_done, u->root);
}

static void on_unassign(GtkButton *b, UsbPage *u)
{
    JsonObject *p = json_object_new();
    json_object_set_string_member(p, "busid", g_object_get_data(G_OBJECT(b), "hv-busid"));
    hv_client_call(u->session->client, "usb.detach", p, G_OBJECT(u->root), op_done, u->root);
}

static void set_rules(UsbPage *u, JsonArray *rules)
{
    JsonObject *p = json_object_new();
    json_object_set_array_member(p, "set", rules);
    hv_client_call(u->session->client, "usb.rules", p, G_OBJECT(u->root), op_done, u->root);
}

static void on_always(GtkButton *b, UsbPage *u)
{
    GtkWidget *combo = g_object_get_data(G_OBJECT(b), "hv-target");
    const char *vm = gtk_combo_box_get_active_id(GTK_COMBO_BOX(combo));
    if (!vm)
        return;
    JsonArray *rules = json_array_new();
    for (guint i = 0; u->rule_list && i < json_array_get_length(u->rule_list); i++)
        json_array_add_element(rules, json_node_copy(json_array_get_element(u->rule_list, i)));
    JsonObject *rule = json_object_new();
    json_object_set_string_member(rule, "id", g_object_get_data(G_OBJECT(b), "hv-id"));
    json_object_set_string_member(rule, "target", vm);
    json_array_add_object_element(rules, rule);
    set_rules(u, rules);
}

static void on_remove_rule(GtkButton *b, UsbPage *u)
{
    guint skip = GPOINTER_TO_UINT(g_object_get_data(G_OBJECT(b), "hv-index"));
    JsonArray *rules = json_array_new();
    for (guint i = 0; u->rule_list && i < json_array_get_length(u->rule_list); i++)
        if (i != skip)
            json_array_add_element(rules, json_node_copy(json_array_get_element(u->rule_list, i)));
    set_rules(u, rules);
}

static GtkWidget *vm_combo(UsbPage *u)
{
    GtkWidget *c = gtk_combo_box_text_new();
    const char *const *names = hv_session_vm_names(u->session);
    for (size_t i = 0; names[i]; i++)
        gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(c), names[i], names[i]);
    gtk_combo_box_set_active(GTK_COMBO_BOX(c), 0);
    hv_set_accessible_name(c, _("Virtual machine"));
    return c;
}

static GtkWidget *device_row(UsbPage *u, JsonObject *dev)
{
    const char *busid = json_object_get_string_member_with_default(dev, "busid", "?");
    const char *id = json_object_get_string_member_with_default(dev, "id", "");
    const char *vendor = json_object_get_string_member_with_default(dev, "vendor", "");
    const char *product = json_object_get_string_member_with_default(dev, "product", "");
    const char *owner = json_object_get_string_member_with_default(dev, "owner", NULL);

    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
    g_object_set(box, "margin", 8, NULL);
    char *title = g_strdup_printf("%s %s", vendor, product);
    char *sub =
        g_strdup_printf(_("Port %s · %s · %s"), busid, id, owner ? owner : _("with the host"));
    GtkWidget *text = gtk_box_new(GTK_ORIENTATION_VERTICAL, 2);
    GtkWidget *t = gtk_label_new(g_strstrip(title));
    gtk_label_set_xalign(GTK_LABEL(t), 0);
    GtkWidget *s = gtk_label_new(sub);
    gtk_label_set_xalign(GTK_LABEL(s), 0);
    gtk_style_context_add_class(gtk_widget_get_style_context(s), "dim-label");
    gtk_box_pack_start(GTK_BOX(text), t, FALSE, FALSE, 0);
    gtk_box_pack_start(GTK_BOX(text), s, FALSE, FALSE, 0);
    gtk_box_pack_start(GTK_BOX(box), text, TRUE, TRUE, 0);

    if (owner) {
        GtkWidget *un = gtk_button_new_with_label(_("Unassign"));
        g_object_set_data_full(G_OBJECT(un), "hv-busid", g_strdup(busid), g_free);
        g_signal_connect(un, "clicked", G_CALLBACK(on_unassign), u);
        gtk_box_pack_end(GTK_BOX(box), un, FALSE, FALSE, 0);
    } else {
        GtkWidget *combo = vm_combo(u);
        GtkWidget *as = gtk_button_new_with_label(_("Assign"));
        GtkWidget *always = gtk_button_new_with_label(_("Always"));
        gtk_widget_set_tooltip_text(always, _("Give this device to that VM whenever it is "
                                              "plugged in"));
        GtkWidget *buttons[] = {as, always};
        for (size_t i = 0; i < 2; i++) {
            g_object_set_data(G_OBJECT(buttons[i]), "hv-target", combo);
            g_object_set_data_full(G_OBJECT(buttons[i]), "hv-busid", g_strdup(busid), g_free);
            g_object_set_data_full(G_OBJECT(buttons[i]), "hv-id", g_strdup(id), g_free);
        }
        g_signal_connect(as, "clicked", G_CALLBACK(on_assign), u);
        g_signal_connect(always, "clicked", G_CALLBACK(on_always), u);
        gtk_box_pack_end(GTK_BOX(box), always, FALSE, FALSE, 0);
        gtk_box_pack_end(GTK_BOX(box), as, FALSE, FALSE, 0);
        gtk_box_pack_end(GTK_BOX(box), combo, FALSE, FALSE, 0);
    }
    GtkWidget *row = gtk_list_box_row_new();
    gtk_container_add(GTK_CONTAINER(row), box);
    char *acc = g_strdup_printf("%s, %s", title, sub);
    hv_set_accessible_name(row, acc);
    g_free(acc);
    g_free(title);
    g_free(sub);
    return row;
}

static void rules_listed(JsonNode *result, const HvError *error, gpointer data)
{
    UsbPage *u = page_of(data);
    clear_list(u->rules);
    if (u->rule_list)
        g_clear_pointer(&u->rule_list, json_array_unref);
    if (error || !JSON_NODE_HOLDS_OBJECT(result))
        return;
    JsonArray *rules = hv_json_array(json_node_get_object(result), "rules");
    if (!rules)
        return;
    u->rule_list = json_array_ref(rules);
    for (guint i = 0; i < json_array_get_length(rules); i++) {
        JsonObject *r = json_array_get_object_element(rules, i);
        if (!r)
            continue;
        char *text = g_strdup_printf(
            _("Device %s → %s"), json_object_get_string_member_with_default(r, "id", "*"),
            json_object_get_string_member_with_default(r, "target", "host"));
        GtkWidget *box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
        g_object_set(box, "margin", 6, NULL);
        GtkWidget *l = gtk_label_new(text);
        gtk_label_set_xalign(GTK_LABEL(l), 0);
        GtkWidget *rm = gtk_button_new_with_label(_("Remove"));
        g_object_set_data(G_OBJECT(rm), "hv-index", GUINT_TO_POINTER(i));
        g_signal_connect(rm, "clicked", G_CALLBACK(on_remove_rule), u);
        gtk_box_pack_start(GTK_BOX(box), l, TRUE, TRUE, 0);
        gtk_box_pack_end(GTK_BOX(box), rm, FALSE, FALSE, 0);
        gtk_container_add(GTK_CONTAINER(u->rules), box);
        g_free(text);
    }
    gtk_widget_show_all(u->rules);
}

static void devices_listed(JsonNode *result, const HvError *error, gpointer data)
{
    UsbPage *u = page_of(data);
    if (error) {
        show_unavailable(u, error);
        return;
    }
    clear_list(u->devices);
    JsonArray *devs = JSON_NODE_HOLDS_OBJECT(result)
                          ? hv_json_array(json_node_get_object(result), "devices")
                          : NULL;
    for (guint i = 0; devs && i < json_array_get_length(devs); i++) {
        JsonObject *dev = json_array_get_object_element(devs, i);
        if (dev)
            gtk_container_add(GTK_CONTAINER(u->devices), device_row(u, dev));
    }
    gtk_widget_show_all(u->devices);
    gtk_stack_set_visible_child_name(GTK_STACK(u->root), "devices");
    hv_client_call(u->session->client, "usb.rules", NULL, G_OBJECT(u->root), rules_listed, u->root);
}

void usb_page_refresh(GtkWidget *page)
{
    UsbPage *u = page_of(page);
    hv_client_call(u->session->client, "usb.list", NULL, G_OBJECT(u->root), devices_listed,
                   u->root);
}

static GtkWidget *section(const char *title, GtkWidget *list)
{
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
    GtkWidget *l = gtk_label_new(NULL);
    char *markup = g_markup_printf_escaped("<b>%s</b>", title);
    gtk_label_set_markup(GTK_LABEL(l), markup);
    g_free(markup);
    gtk_label_set_xalign(GTK_LABEL(l), 0);
    gtk_list_box_set_selection_mode(GTK_LIST_BOX(list), GTK_SELECTION_NONE);
    GtkWidget *frame = gtk_frame_new(NULL);
    gtk_container_add(GTK_CONTAINER(frame), list);
    hv_set_accessible_name(list, title);
    gtk_box_pack_start(GTK_BOX(box), l, FALSE, FALSE, 0);
    gtk_box_pack_start(GTK_BOX(box), frame, FALSE, FALSE, 0);
    return box;
}

GtkWidget *usb_page_new(HvSession *session)
{
    UsbPage *u = g_new0(UsbPage, 1);
    u->session = session;
    u->root = gtk_stack_new();
    g_object_set_data_full(G_OBJECT(u->root), "hv-usb-page", u, page_free);
    hv_set_accessible_name(u->root, _("USB devices"));

    GtkWidget *loading = gtk_spinner_new();
    gtk_spinner_start(GTK_SPINNER(loading));
    gtk_stack_add_named(GTK_STACK(u->root), loading, "loading");

    /* A status page, as in the HIG: an icon, a title, a sentence. */
    GtkWidget *un = gtk_box_new(GTK_ORIENTATION_VERTICAL, 12);
    gtk_widget_set_valign(un, GTK_ALIGN_CENTER);
    GtkWidget *icon = gtk_image_new_from_icon_name("hv-state-off", GTK_ICON_SIZE_DIALOG);
    gtk_image_set_pixel_size(GTK_IMAGE(icon), 64);
    gtk_widget_set_opacity(icon, 0.5);
    GtkWidget *title = gtk_label_new(NULL);
    char *markup = g_markup_printf_escaped("<big><b>%s</b></big>", _("USB service not available"));
    gtk_label_set_markup(GTK_LABEL(title), markup);
    g_free(markup);
    u->unavailable_detail = gtk_label_new("");
    gtk_label_set_line_wrap(GTK_LABEL(u->unavailable_detail), TRUE);
    gtk_label_set_max_width_chars(GTK_LABEL(u->unavailable_detail), 50);
    gtk_label_set_justify(GTK_LABEL(u->unavailable_detail), GTK_JUSTIFY_CENTER);
    gtk_style_context_add_class(gtk_widget_get_style_context(u->unavailable_detail), "dim-label");
    gtk_box_pack_start(GTK_BOX(un), icon, FALSE, FALSE, 0);
    gtk_box_pack_start(GTK_BOX(un), title, FALSE, FALSE, 0);
    gtk_box_pack_start(GTK_BOX(un), u->unavailable_detail, FALSE, FALSE, 0);
    gtk_stack_add_named(GTK_STACK(u->root), un, "unavailable");

    GtkWidget *scroll = gtk_scrolled_window_new(NULL, NULL);
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 18);
    g_object_set(box, "margin", 18, NULL);
    u->devices = gtk_list_box_new();
    u->rules = gtk_list_box_new();
    GtkWidget *none = gtk_label_new(_("No USB devices"));
    gtk_widget_show(none);
    gtk_list_box_set_placeholder(GTK_LIST_BOX(u->devices), none);
    GtkWidget *norules = gtk_label_new(_("No rules: new devices stay with the host"));
    gtk_widget_show(norules);
    gtk_list_box_set_placeholder(GTK_LIST_BOX(u->rules), norules);
    gtk_box_pack_start(GTK_BOX(box), section(_("Devices"), u->devices), FALSE, FALSE, 0);
    gtk_box_pack_start(GTK_BOX(box), section(_("Auto-assign rules"), u->rules), FALSE, FALSE, 0);
    gtk_container_add(GTK_CONTAINER(scroll), box);
    gtk_stack_add_named(GTK_STACK(u->root), scroll, "devices");
    gtk_widget_show_all(u->root);
    gtk_stack_set_visible_child_name(GTK_STACK(u->root), "loading");
    return u->root;
}
