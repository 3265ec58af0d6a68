/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The settings dialog of one VM; see vm_settings_dialog.h. */
#include "vm_settings_dialog.h"

#include "form.h"
#include "i18n.h"
#include "validate.h"

#include <string.h>

typedef struct {
    HvSession *session;
    GtkWidget *dialog;
    char *name;
    JsonObject *definition; /* from vm.get; a private copy */
    GtkWidget *memory, *memory_msg, *cpus, *cpus_msg, *os, *colour, *autostart, *cmdline;
    GtkWidget *status, *save, *progress;
} Settings;

static void settings_free(gpointer data)
{
    Settings *s = data;
    if (s->definition)
        json_object_unref(s->definition);
    g_free(s->name);
    g_free(s);
}

static void validate(Settings *s)
{
    char *mem =
        hv_check_memory_mib((guint64)gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(s->memory)),
                            s->session->memory_total);
    char *cpus = hv_check_cpus((guint)gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(s->cpus)),
                               s->session->host_cpus);
    form_set_message(s->memory_msg, s->memory, mem);
    form_set_message(s->cpus_msg, s->cpus, cpus);
    gtk_widget_set_sensitive(s->save, s->definition && !mem && !cpus);
    g_free(mem);
    g_free(cpus);
}

static void on_changed(GtkWidget *w, Settings *s)
{
    (void)w;
    validate(s);
}

static void define_done(JsonNode *result, const HvError *error, gpointer data)
{
    Settings *s = g_object_get_data(G_OBJECT(data), "hv-settings");
    (void)result;
    gtk_widget_hide(s->progress);
    if (error) {
        gtk_label_set_text(GTK_LABEL(s->status), error->message);
        gtk_widget_show(s->status);
        validate(s);
        return;
    }
    gtk_widget_destroy(s->dialog);
}

static void save(Settings *s)
{
    JsonObject *def = json_object_new();
    GList *members = json_object_get_members(s->definition);
    for (GList *l = members; l; l = l->next)
        json_object_set_member(def, l->data,
                               json_node_copy(json_object_get_member(s->definition, l->data)));
    g_list_free(members);
    json_object_set_int_member(
        def, "memory",
        (gint64)gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(s->memory)) * 1024 * 1024);
    json_object_set_int_member(def, "cpus",
                               gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(s->cpus)));
    json_object_set_string_member(def, "os", gtk_combo_box_get_active_id(GTK_COMBO_BOX(s->os)));
    GdkRGBA c;
    gtk_color_chooser_get_rgba(GTK_COLOR_CHOOSER(s->colour), &c);
    char *hex = g_strdup_printf("#%02x%02x%02x", (int)(c.red * 255 + 0.5),
                                (int)(c.green * 255 + 0.5), (int)(c.blue * 255 + 0.5));
    json_object_set_string_member(def, "colour", hex);
    g_free(hex);
    json_object_set_boolean_member(def, "autostart",
                                   gtk_switch_get_active(GTK_SWITCH(s->autostart)));
    const char *cmdline = gtk_entry_get_text(GTK_ENTRY(s->cmdline));
    if (*cmdline)
        json_object_set_string_member(def, "cmdline", cmdline);
    else
        json_object_remove_member(def, "cmdline");

    JsonObject *p = json_object_new();
    json_object_set_object_member(p, "definition", def);
    json_object_set_boolean_member(p, "replace", TRUE);
    gtk_widget_set_sensitive(s->save, FALSE);
    gtk_widget_show(s->progress);
    gtk_progress_bar_pulse(GTK_PROGRESS_BAR(s->progress));
    hv_client_call(s->session->client, "vm.define", p, G_OBJECT(s->dialog), define_done, s->dialog);
}

static void on_response(GtkDialog *dlg, int response, Settings *s)
{
    if (response == GTK_RESPONSE_APPLY)
        save(s);
    else
        gtk_widget_destroy(GTK_WIDGET(dlg));
}

static void get_done(JsonNode *result, const HvError *error, gpointer data)
{
    Settings *s = g_object_get_data(G_OBJECT(data), "hv-settings");
    if (error) {
        gtk_label_set_text(GTK_LABEL(s->status), error->message);
        gtk_widget_show(s->status);
        return;
    }
    JsonObject *o = json_node_get_object(result);
    JsonObject *def = hv_json_object(o, "definition");
    if (!def)
        return;
    s->definition = json_object_ref(def);
    gint64 mem = json_object_get_int_member_with_default(def, "memory", 256 << 20);
    gtk_spin_button_set_value(GTK_SPIN_BUTTON(s->memory), (double)(mem >> 20));
    gtk_spin_button_set_value(GTK_SPIN_BUTTON(s->cpus),
                              (double)json_object_get_int_member_with_default(def, "cpus", 1));
    gtk_combo_box_set_active_id(GTK_COMBO_BOX(s->os),
                                json_object_get_string_member_with_default(def, "os", "linux"));
    GdkRGBA c;
    if (gdk_rgba_parse(&c, json_object_get_string_member_with_default(def, "colour", "#3465a4")))
        gtk_color_chooser_set_rgba(GTK_COLOR_CHOOSER(s->colour), &c);
    gtk_switch_set_active(GTK_SWITCH(s->autostart),
                          json_object_get_boolean_member_with_default(def, "autostart", FALSE));
    gtk_entry_set_text(GTK_ENTRY(s->cmdline),
                       json_object_get_string_member_with_default(def, "cmdline", ""));
    validate(s);
}

void vm_settings_dialog_run(GtkWindow *parent, HvSession *session, const char *name)
{
    Settings *s = g_new0(Settings, 1);
    s->session = session;
    s->name = g_strdup(name);
    char *title = g_strdup_printf(_("Settings of “%s”"), name);
    s->dialog = gtk_dialog_new_with_buttons(
        title, parent,
        GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT | GTK_DIALOG_USE_HEADER_BAR, _("_Cancel"),
        GTK_RESPONSE_CANCEL, _("_Save"), GTK_RESPONSE_APPLY, NULL);
    g_free(title);
    g_object_set_data_full(G_OBJECT(s->dialog), "hv-settings", s, settings_free);
    s->save = gtk_dialog_get_widget_for_response(GTK_DIALOG(s->dialog), GTK_RESPONSE_APPLY);
    gtk_style_context_add_class(gtk_widget_get_style_context(s->save), "suggested-action");
    gtk_widget_set_sensitive(s->save, FALSE);

    GtkWidget *grid = gtk_grid_new();
    gtk_grid_set_row_spacing(GTK_GRID(grid), 4);
    gtk_grid_set_column_spacing(GTK_GRID(grid), 12);
    g_object_set(grid, "margin", 18, NULL);
    int row = 0;
    s->memory = gtk_spin_button_new_with_range(HV_MIN_MEMORY_MIB, 1024 * 1024, 64);
    s->memory_msg = form_add_field(GTK_GRID(grid), &row, _("_Memory (MiB)"), s->memory);
    s->cpus = gtk_spin_button_new_with_range(1, HV_MAX_CPUS, 1);
    s->cpus_msg = form_add_field(GTK_GRID(grid), &row, _("_Processors"), s->cpus);
    s->os = form_combo(_("Operating system"), "linux", _("Linux"), "windows", _("Windows"), "other",
                       _("Other"), NULL);
    form_add_field(GTK_GRID(grid), &row, _("_Operating system"), s->os);
    s->colour = gtk_color_button_new();
    form_add_field(GTK_GRID(grid), &row, _("_Colour"), s->colour);
    s->autostart = gtk_switch_new();
    gtk_widget_set_halign(s->autostart, GTK_ALIGN_START);
    form_add_field(GTK_GRID(grid), &row, _("Start _automatically"), s->autostart);
    s->cmdline = gtk_entry_new();
    form_add_field(GTK_GRID(grid), &row, _("_Kernel command line"), s->cmdline);

    s->progress = gtk_progress_bar_new();
    hv_set_accessible_name(s->progress, _("Saving"));
    gtk_widget_set_no_show_all(s->progress, TRUE);
    gtk_grid_attach(GTK_GRID(grid), s->progress, 0, row++, 2, 1);
    s->status = gtk_label_new("");
    gtk_label_set_line_wrap(GTK_LABEL(s->status), TRUE);
    gtk_label_set_max_width_chars(GTK_LABEL(s->status), 50);
    gtk_widget_set_no_show_all(s->status, TRUE);
    gtk_grid_attach(GTK_GRID(grid), s->status, 0, row++, 2, 1);
    gtk_container_add(GTK_CONTAINER(gtk_dialog_get_content_area(GTK_DIALOG(s->dialog))), grid);

    g_signal_connect(s->memory, "value-changed", G_CALLBACK(on_changed), s);
    g_signal_connect(s->cpus, "value-changed", G_CALLBACK(on_changed), s);
    g_signal_connect(s->dialog, "response", G_CALLBACK(on_response), s);
    gtk_widget_show_all(s->dialog);

    JsonObject *p = json_object_new();
    json_object_set_string_member(p, "name", name);
    hv_client_call(session->client, "vm.get", p, G_OBJECT(s->dialog), get_done, s->dialog);
}
