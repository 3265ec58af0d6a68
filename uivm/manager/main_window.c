/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The main window; see main_window.h. */
#include "main_window.h"

#include "create_assistant.h"
#include "i18n.h"
#include "usb_page.h"
#include "vm_details.h"
#include "vm_row.h"

#include <string.h>

typedef struct {
    HvSession session;
    GtkWidget *window, *header, *host_label, *new_vm, *infobar, *infobar_label, *stack;
    GtkWidget *list, *details, *usb;
} MainWindow;

static MainWindow *window_of(gpointer w)
{
    return g_object_get_data(G_OBJECT(w), "hv-main-window");
}

static void main_window_free(gpointer data)
{
    MainWindow *m = data;
    g_signal_handlers_disconnect_by_data(m->session.client, m);
    g_object_unref(m->session.client);
    g_ptr_array_unref(m->session.vm_names);
    g_free(m->session.hostname);
    g_free(m);
}

void hv_show_error(GtkWidget *parent, const char *what, const char *message)
{
    GtkWidget *top = parent ? gtk_widget_get_toplevel(parent) : NULL;
    GtkWidget *dlg = gtk_message_dialog_new(GTK_IS_WINDOW(top) ? GTK_WINDOW(top) : NULL,
                                            GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT,
                                            GTK_MESSAGE_ERROR, GTK_BUTTONS_CLOSE, "%s", what);
    gtk_message_dialog_format_secondary_text(GTK_MESSAGE_DIALOG(dlg), "%s", message);
    g_signal_connect(dlg, "response", G_CALLBACK(gtk_widget_destroy), NULL);
    gtk_widget_show(dlg);
}

/* ---- the list ---- */

static GtkWidget *find_row(MainWindow *m, const char *name)
{
    GtkWidget *found = NULL;
    GList *rows = gtk_container_get_children(GTK_CONTAINER(m->list));
    for (GList *l = rows; l && !found; l = l->next)
        if (strcmp(vm_row_get_name(l->data), name) == 0)
            found = l->data;
    g_list_free(rows);
    return found;
}

static void show_selected(MainWindow *m)
{
    GtkListBoxRow *row = gtk_list_box_get_selected_row(GTK_LIST_BOX(m->list));
    vm_details_show(m->details, row ? vm_row_get_summary(GTK_WIDGET(row)) : NULL);
}

static void vms_listed(JsonNode *result, const HvError *error, gpointer data)
{
    MainWindow *m = window_of(data);
    if (error || !JSON_NODE_HOLDS_OBJECT(result))
        return;
    JsonArray *vms = hv_json_array(json_node_get_object(result), "vms");
    if (!vms)
        return;
    GHashTable *seen = g_hash_table_new(g_str_hash, g_str_equal);
    g_ptr_array_set_size(m->session.vm_names, 0);
    for (guint i = 0; i < json_array_get_length(vms); i++) {
        JsonObject *vm = json_array_get_object_element(vms, i);
        const char *name = vm ? json_object_get_string_member_with_default(vm, "name", NULL) : NULL;
        if (!name)
            continue;
        g_ptr_array_add(m->session.vm_names, g_strdup(name)); /* taken, listed or not */
        /* The UIVM is where this list is shown, not one of the user's
         * machines: a Force Off button for it would turn the screen off. */
        if (g_strcmp0(json_object_get_string_member_with_default(vm, "role", ""), "uivm") == 0)
            continue;
        g_hash_table_add(seen, (gpointer)name);
        GtkWidget *row = find_row(m, name);
        if (row)
            vm_row_update(row, vm);
        else
            gtk_container_add(GTK_CONTAINER(m->list), vm_row_new(vm));
    }
    g_ptr_array_add(m->session.vm_names, NULL);
    GList *rows = gtk_container_get_children(GTK_CONTAINER(m->list));
    for (GList *l = rows; l; l = l->next)
        if (!g_hash_table_contains(seen, vm_row_get_name(l->data)))
            gtk_widget_destroy(l->data);
    g_list_free(rows);
    g_hash_table_unref(seen);
    gtk_list_box_invalidate_sort(GTK_LIST_BOX(m->list));
    if (!gtk_list_box_get_selected_row(GTK_LIST_BOX(m->list))) {
        GtkListBoxRow *first = gtk_list_box_get_row_at_index(GTK_LIST_BOX(m->list), 0);
        if (first)
            gtk_list_box_select_row(GTK_LIST_BOX(m->list), first);
    }
    show_selected(m);
}

static void refresh_list(MainWindow *m)
{
    hv_client_call(m->session.client, "vm.list", NULL, G_OBJECT(m->window), vms_listed, m->window);
}

static int sort_rows(GtkListBoxRow *a, GtkListBoxRow *b, gpointer data)
{
    (void)data;
    return strcmp(vm_row_get_name(GTK_WIDGET(a)), vm_row_get_name(GTK_WIDGET(b)));
}

static void on_row_selected(GtkListBox *list, GtkListBoxRow *row, MainWindow *m)
{
    (void)list;
    (void)row;
    show_selected(m);
}

/* ---- hvd ---- */

static void host_info_done(JsonNode *result, const HvError *error, gpointer data)
{
    MainWindow *m = window_of(data);
    if (error || !JSON_NODE_HOLDS_OBJECT(result))
        return;
    JsonObject *o = json_node_get_object(result);
    g_free(m->session.hostname);
    m->session.hostname = g_strdup(json_object_get_string_member_with_default(o, "hostname", ""));
    m->session.memory_total =
        (guint64)json_object_get_int_member_with_default(o, "memory_total", 0);
    m->session.host_cpus = (guint)json_object_get_int_member_with_default(o, "cpus", 0);
    char *mem = g_format_size_full(m->session.memory_total, G_FORMAT_SIZE_IEC_UNITS);
    char *sub = g_strdup_printf(_("%s · %u processors · %s"), m->session.hostname,
                                m->session.host_cpus, mem);
    gtk_label_set_text(GTK_LABEL(m->host_label), sub);
    g_free(sub);
    g_free(mem);
}

/* vm.switch with no name: bad-params when hvd has the method, unknown-method when not. */
static void switch_probe_done(JsonNode *result, const HvError *error, gpointer data)
{
    MainWindow *m = window_of(data);
    (void)result;
    m->session.has_switch = !error || g_strcmp0(error->code, "unknown-method") != 0;
    if (error && g_strcmp0(error->code, "disconnected") == 0)
        m->session.has_switch = FALSE;
    show_selected(m);
}

static void on_connection_changed(HvClient *c, gboolean connected, MainWindow *m)
{
    (void)c;
    gtk_widget_set_visible(m->infobar, !connected);
    gtk_widget_set_sensitive(m->new_vm, connected);
    if (!connected)
        return;
    hv_client_call(m->session.client, "host.info", NULL, G_OBJECT(m->window), host_info_done,
                   m->window);
    hv_client_call(m->session.client, "vm.switch", NULL, G_OBJECT(m->window), switch_probe_done,
                   m->window);
    refresh_list(m);
    usb_page_refresh(m->usb);
}

static void on_event(HvClient *c, const char *name, JsonObject *params, MainWindow *m)
{
    (void)c;
    if (strcmp(name, "vm.state") == 0) {
        const char *vm = json_object_get_string_member_with_default(params, "name", "");
        const char *state = json_object_get_string_member_with_default(params, "state", NULL);
        GtkWidget *row = find_row(m, vm);
        if (row && state) {
            vm_row_set_state(row, state);
            if (gtk_list_box_get_selected_row(GTK_LIST_BOX(m->list)) == GTK_LIST_BOX_ROW(row))
                show_selected(m);
        }
    }
    if (g_str_has_prefix(name, "vm."))
        refresh_list(m);
}

/* ---- building ---- */

static void on_new_vm(GtkButton *b, MainWindow *m)
{
    (void)b;
    create_assistant_run(GTK_WINDOW(m->window), &m->session);
}

static void on_page_changed(GObject *stack, GParamSpec *pspec, MainWindow *m)
{
    (void)pspec;
    if (g_strcmp0(gtk_stack_get_visible_child_name(GTK_STACK(stack)), "usb") == 0)
        usb_page_refresh(m->usb);
}

static GtkWidget *build_infobar(MainWindow *m)
{
    m->infobar = gtk_info_bar_new();
    gtk_info_bar_set_message_type(GTK_INFO_BAR(m->infobar), GTK_MESSAGE_WARNING);
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
    GtkWidget *spinner = gtk_spinner_new();
    gtk_spinner_start(GTK_SPINNER(spinner));
    char *text =
        g_strdup_printf(_("Reconnecting to hvd at %s…"), hv_client_address(m->session.client));
    m->infobar_label = gtk_label_new(text);
    g_free(text);
    gtk_label_set_xalign(GTK_LABEL(m->infobar_label), 0);
    gtk_box_pack_start(GTK_BOX(box), spinner, FALSE, FALSE, 0);
    gtk_box_pack_start(GTK_BOX(box), m->infobar_label, TRUE, TRUE, 0);
    gtk_container_add(GTK_CONTAINER(gtk_info_bar_get_content_area(GTK_INFO_BAR(m->infobar))), box);
    hv_set_accessible_name(m->infobar, _("Reconnecting"));
    gtk_widget_show_all(m->infobar);
    gtk_widget_set_no_show_all(m->infobar, TRUE);
    return m->infobar;
}

static GtkWidget *build_vm_page(MainWindow *m)
{
    GtkWidget *paned = gtk_paned_new(GTK_ORIENTATION_HORIZONTAL);
    GtkWidget *scroll = gtk_scrolled_window_new(NULL, NULL);
    gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(scroll), GTK_POLICY_NEVER,
                                   GTK_POLICY_AUTOMATIC);
    gtk_widget_set_size_request(scroll, 320, -1);
    m->list = gtk_list_box_new();
    hv_set_accessible_name(m->list, _("Virtual machines"));
    gtk_list_box_set_sort_func(GTK_LIST_BOX(m->list), sort_rows, NULL, NULL);
    GtkWidget *empty = gtk_label_new(_("No virtual machines yet.\nCreate one with the + button."));
    gtk_label_set_justify(GTK_LABEL(empty), GTK_JUSTIFY_CENTER);
    gtk_style_context_add_class(gtk_widget_get_style_context(empty), "dim-label");
    gtk_widget_show(empty);
    gtk_list_box_set_placeholder(GTK_LIST_BOX(m->list), empty);
    g_signal_connect(m->list, "row-selected", G_CALLBACK(on_row_selected), m);
    gtk_container_add(GTK_CONTAINER(scroll), m->list);
    m->details = vm_details_new(&m->session);
    gtk_paned_pack1(GTK_PANED(paned), scroll, FALSE, FALSE);
    gtk_paned_pack2(GTK_PANED(paned), m->details, TRUE, FALSE);
    return paned;
}

GtkWidget *main_window_new(GtkApplication *app, HvClient *client, gboolean kiosk)
{
    MainWindow *m = g_new0(MainWindow, 1);
    m->session.client = g_object_ref(client);
    m->session.vm_names = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(m->session.vm_names, NULL);
    m->window = gtk_application_window_new(app);
    g_object_set_data_full(G_OBJECT(m->window), "hv-main-window", m, main_window_free);
    gtk_window_set_default_size(GTK_WINDOW(m->window), 960, 600);
    gtk_window_set_icon_name(GTK_WINDOW(m->window), "hv-manager");
    hv_set_accessible_name(m->window, _("hv Manager"));

    m->header = gtk_header_bar_new();
    /* Nothing to close to in the UIVM: the manager is all its screen shows. */
    gtk_header_bar_set_show_close_button(GTK_HEADER_BAR(m->header), !kiosk);
    gtk_header_bar_set_title(GTK_HEADER_BAR(m->header), _("hv Manager"));
    m->new_vm = gtk_button_new_from_icon_name("list-add-symbolic", GTK_ICON_SIZE_BUTTON);
    gtk_widget_set_tooltip_text(m->new_vm, _("Create a new virtual machine"));
    hv_set_accessible_name(m->new_vm, _("New virtual machine"));
    gtk_widget_set_sensitive(m->new_vm, FALSE);
    g_signal_connect(m->new_vm, "clicked", G_CALLBACK(on_new_vm), m);
    gtk_header_bar_pack_start(GTK_HEADER_BAR(m->header), m->new_vm);
    m->host_label = gtk_label_new("");
    gtk_style_context_add_class(gtk_widget_get_style_context(m->host_label), "dim-label");
    gtk_header_bar_pack_end(GTK_HEADER_BAR(m->header), m->host_label);
    /* GTK 3 hides a window's title bar while it is full screen, and with it
     * the new-VM button and the page switcher: in kiosk mode the header bar
     * is the first row of the window's content instead. */
    if (!kiosk)
        gtk_window_set_titlebar(GTK_WINDOW(m->window), m->header);

    m->stack = gtk_stack_new();
    gtk_stack_set_transition_type(GTK_STACK(m->stack), GTK_STACK_TRANSITION_TYPE_CROSSFADE);
    gtk_stack_add_titled(GTK_STACK(m->stack), build_vm_page(m), "vms", _("Machines"));
    m->usb = usb_page_new(&m->session);
    gtk_stack_add_titled(GTK_STACK(m->stack), m->usb, "usb", _("USB Devices"));
    GtkWidget *switcher = gtk_stack_switcher_new();
    gtk_stack_switcher_set_stack(GTK_STACK_SWITCHER(switcher), GTK_STACK(m->stack));
    hv_set_accessible_name(switcher, _("Pages"));
    gtk_header_bar_set_custom_title(GTK_HEADER_BAR(m->header), switcher);
    g_signal_connect(m->stack, "notify::visible-child", G_CALLBACK(on_page_changed), m);

    GtkWidget *vbox = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
    if (kiosk) {
        gtk_style_context_add_class(gtk_widget_get_style_context(m->header), "titlebar");
        gtk_box_pack_start(GTK_BOX(vbox), m->header, FALSE, FALSE, 0);
    }
    gtk_box_pack_start(GTK_BOX(vbox), build_infobar(m), FALSE, FALSE, 0);
    gtk_box_pack_start(GTK_BOX(vbox), m->stack, TRUE, TRUE, 0);
    gtk_container_add(GTK_CONTAINER(m->window), vbox);

    g_signal_connect(client, "connection-changed", G_CALLBACK(on_connection_changed), m);
    g_signal_connect(client, "event", G_CALLBACK(on_event), m);
    gtk_widget_show_all(m->window);
    /* After mapping: cage ignored a full-screen request made before it. */
    if (kiosk)
        gtk_window_fullscreen(GTK_WINDOW(m->window));
    gtk_stack_set_visible_child_name(GTK_STACK(m->stack), "vms");
    gtk_widget_set_visible(m->infobar, !hv_client_is_connected(client));
    return m->window;
}
