/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The VM creation assistant; see create_assistant.h. */
#include "create_assistant.h"

#include "form.h"
#include "i18n.h"
#include "validate.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_MEMORY_MIB 1024
#define DEFAULT_DISK_GIB   16
#define IMAGE_NAME_MAX     64

typedef struct {
    HvSession *session;
    GtkWidget *assistant;
    GPtrArray *images; /* names from disk.list */
    /* pages */
    GtkWidget *p_name, *p_memory, *p_storage, *p_boot, *p_network, *p_summary, *p_progress;
    /* name page */
    GtkWidget *name, *name_msg, *os, *colour;
    /* memory page */
    GtkWidget *memory, *memory_msg, *cpus, *cpus_msg, *host_hint;
    /* storage page */
    GtkWidget *disk_new, *disk_existing, *disk_none, *disk_size, *disk_format, *disk_image,
        *disk_copy, *disk_forget, *storage_msg;
    /* boot page */
    GtkWidget *kernel, *kernel_msg, *initrd, *initrd_msg, *cmdline, *iso, *iso_msg;
    /* network page */
    GtkWidget *network;
    /* summary and progress */
    GtkWidget *summary, *summary_error, *progress, *progress_label;
    guint pulse_timer;
    char *created_image;   /* created by us: deleted again if vm.define fails */
    gboolean disk_pending; /* disk.create / disk.clone sent, not answered yet */
} Assistant;

static void assistant_free(gpointer data)
{
    Assistant *a = data;
    if (a->pulse_timer)
        g_source_remove(a->pulse_timer);
    g_ptr_array_unref(a->images);
    g_free(a->created_image);
    g_free(a);
}

static Assistant *assistant_of(gpointer widget)
{
    return g_object_get_data(G_OBJECT(widget), "hv-assistant");
}

/* ---- reading the fields ---- */

/* The number typed in a spin button (its text, not its last committed value), or -1. */
static gint64 spin_typed(GtkWidget *spin)
{
    const char *t = gtk_entry_get_text(GTK_ENTRY(spin));
    while (*t == ' ')
        t++;
    if (!g_ascii_isdigit(*t))
        return -1;
    char *end;
    guint64 v = g_ascii_strtoull(t, &end, 10);
    while (*end == ' ')
        end++;
    if (*end || v > G_MAXINT32)
        return -1;
    return (gint64)v;
}

static char *image_name_for(const char *vm)
{
    return g_strdup_printf("%.*s.img", IMAGE_NAME_MAX - 4, vm);
}

static gboolean image_exists(Assistant *a, const char *name)
{
    for (guint i = 0; i < a->images->len; i++)
        if (strcmp(g_ptr_array_index(a->images, i), name) == 0)
            return TRUE;
    return FALSE;
}

static char *colour_hex(Assistant *a)
{
    GdkRGBA c;
    gtk_color_chooser_get_rgba(GTK_COLOR_CHOOSER(a->colour), &c);
    return g_strdup_printf("#%02x%02x%02x", (int)(c.red * 255 + 0.5), (int)(c.green * 255 + 0.5),
                           (int)(c.blue * 255 + 0.5));
}

/* ---- checking each page ---- */

static void check_name_page(Assistant *a)
{
    char *msg =
        hv_check_vm_name(gtk_entry_get_text(GTK_ENTRY(a->name)), hv_session_vm_names(a->session));
    form_set_message(a->name_msg, a->name, msg);
    gtk_assistant_set_page_complete(GTK_ASSISTANT(a->assistant), a->p_name, msg == NULL);
    g_free(msg);
}

static void check_memory_page(Assistant *a)
{
    gint64 mib = spin_typed(a->memory), cpus = spin_typed(a->cpus);
    char *mmsg = mib < 0 ? g_strdup(_("Enter the memory as a whole number of MiB."))
                         : hv_check_memory_mib((guint64)mib, a->session->memory_total);
    char *cmsg = cpus < 0 ? g_strdup(_("Enter the number of processors."))
                          : hv_check_cpus((guint)cpus, a->session->host_cpus);
    form_set_message(a->memory_msg, a->memory, mmsg);
    form_set_message(a->cpus_msg, a->cpus, cmsg);
    gtk_assistant_set_page_complete(GTK_ASSISTANT(a->assistant), a->p_memory, !mmsg && !cmsg);
    g_free(mmsg);
    g_free(cmsg);
}

/* "Use an existing image" with "Forget changes": the image is only read (hvd's nonpersistent). */
static gboolean want_forget(Assistant *a)
{
    return gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(a->disk_existing)) &&
           gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(a->disk_forget));
}

/* "Use an existing image" with "Copy it": the VM gets a copy named after it. */
static gboolean want_copy(Assistant *a)
{
    return gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(a->disk_existing)) &&
           gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(a->disk_copy));
}

static void check_storage_page(Assistant *a)
{
    gboolean want_new = gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(a->disk_new));
    gboolean want_existing = gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(a->disk_existing));
    gtk_widget_set_sensitive(a->disk_size, want_new);
    gtk_widget_set_sensitive(a->disk_format, want_new);
    gtk_widget_set_sensitive(a->disk_image, want_existing);
    gtk_widget_set_sensitive(a->disk_copy, want_existing);
    gtk_widget_set_sensitive(a->disk_forget, want_existing);
    char *msg = NULL;
    if (want_new) {
        gint64 gib = spin_typed(a->disk_size);
        char *img = image_name_for(gtk_entry_get_text(GTK_ENTRY(a->name)));
        if (gib < 1)
            msg = g_strdup(_("Enter the disk size as a whole number of GiB (at least 1)."));
        else if (gib > 16 * 1024)
            msg = g_strdup(_("A disk can be at most 16384 GiB (16 TiB)."));
        else if (image_exists(a, img))
            msg = g_strdup_printf(_("An image named “%s” already exists: choose “Use an "
                                    "existing image” or another name."),
                                  img);
        g_free(img);
    } else if (want_existing && !gtk_combo_box_get_active_id(GTK_COMBO_BOX(a->disk_image))) {
        msg = g_strdup(a->images->len ? _("Choose an image.")
                                      : _("There are no disk images yet: create a new disk."));
    } else if (want_copy(a)) {
        char *img = image_name_for(gtk_entry_get_text(GTK_ENTRY(a->name)));
        if (image_exists(a, img))
            msg = g_strdup_printf(_("An image named “%s” already exists: use the image "
                                    "without copying it, or choose another name."),
                                  img);
        g_free(img);
    }
    form_set_message(a->storage_msg, want_new ? a->disk_size : a->disk_image, msg);
    gtk_assistant_set_page_complete(GTK_ASSISTANT(a->assistant), a->p_storage, msg == NULL);
    g_free(msg);
}

static void check_boot_page(Assistant *a)
{
    char *k = hv_check_host_path(_("kernel"), gtk_entry_get_text(GTK_ENTRY(a->kernel)), TRUE);
    char *i = hv_check_host_path(_("initrd"), gtk_entry_get_text(GTK_ENTRY(a->initrd)), FALSE);
    char *iso = hv_check_disk_entry(_("installer ISO"), gtk_entry_get_text(GTK_ENTRY(a->iso)));
    form_set_message(a->kernel_msg, a->kernel, k);
    form_set_message(a->initrd_msg, a->initrd, i);
    form_set_message(a->iso_msg, a->iso, iso);
    gtk_assistant_set_page_complete(GTK_ASSISTANT(a->assistant), a->p_boot, !k && !i && !iso);
    g_free(k);
    g_free(i);
    g_free(iso);
}

static void on_name_changed(GtkWidget *w, Assistant *a)
{
    (void)w;
    check_name_page(a);
    check_storage_page(a); /* the new image's name follows the VM's */
}

static void on_memory_changed(GtkWidget *w, Assistant *a)
{
    (void)w;
    check_memory_page(a);
}

static void on_storage_changed(GtkWidget *w, Assistant *a)
{
    (void)w;
    check_storage_page(a);
}

static void on_boot_changed(GtkWidget *w, Assistant *a)
{
    (void)w;
    check_boot_page(a);
}

/* ---- the summary ---- */

static void fill_summary(Assistant *a)
{
    GString *s = g_string_new(NULL);
    gint64 mib = spin_typed(a->memory);
    g_string_append_printf(s, _("Name: %s\n"), gtk_entry_get_text(GTK_ENTRY(a->name)));
    g_string_append_printf(s, _("Operating system: %s\n"),
                           gtk_combo_box_text_get_active_text(GTK_COMBO_BOX_TEXT(a->os)));
    g_string_append_printf(s, _("Memory: %d MiB\n"), (int)mib);
    g_string_append_printf(s, _("Processors: %d\n"), (int)spin_typed(a->cpus));
    if (gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(a->disk_new))) {
        char *img = image_name_for(gtk_entry_get_text(GTK_ENTRY(a->name)));
        g_string_append_printf(s, _("Disk: new %s image “%s”, %d GiB\n"),
                               gtk_combo_box_get_active_id(GTK_COMBO_BOX(a->disk_format)), img,
                               (int)spin_typed(a->disk_size));
        g_free(img);
    } else if (want_copy(a)) {
        char *img = image_name_for(gtk_entry_get_text(GTK_ENTRY(a->name)));
        g_string_append_printf(s, _("Disk: a copy of “%s” named “%s”\n"),
                               gtk_combo_box_get_active_id(GTK_COMBO_BOX(a->disk_image)), img);
        g_free(img);
    } else if (gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(a->disk_existing))) {
        g_string_append_printf(s, _("Disk: existing image “%s”\n"),
                               gtk_combo_box_get_active_id(GTK_COMBO_BOX(a->disk_image)));
    } else {
        g_string_append(s, _("Disk: none\n"));
    }
    if (want_forget(a))
        g_string_append(s, _("Changes to the disk are forgotten at each start\n"));
    g_string_append_printf(s, _("Kernel: %s\n"), gtk_entry_get_text(GTK_ENTRY(a->kernel)));
    if (*gtk_entry_get_text(GTK_ENTRY(a->iso)))
        g_string_append_printf(s, _("Installer ISO: %s\n"), gtk_entry_get_text(GTK_ENTRY(a->iso)));
    g_string_append_printf(s, _("Network: %s"),
                           gtk_combo_box_text_get_active_text(GTK_COMBO_BOX_TEXT(a->network)));
    gtk_label_set_text(GTK_LABEL(a->summary), s->str);
    g_string_free(s, TRUE);
}

static void on_prepare(GtkAssistant *assistant, GtkWidget *page, Assistant *a)
{
    (void)assistant;
    if (page == a->p_summary)
        fill_summary(a);
}

/* ---- the work: disk.create, then vm.define ---- */

static gboolean pulse(gpointer data)
{
    gtk_progress_bar_pulse(GTK_PROGRESS_BAR(data));
    return G_SOURCE_CONTINUE;
}

static void stop_pulse(Assistant *a)
{
    if (a->pulse_timer) {
        g_source_remove(a->pulse_timer);
        a->pulse_timer = 0;
    }
}

/* hvd's disk.progress for the image being made: a real fraction replaces the pulse. */
static void on_hvd_event(HvClient *client, const char *name, JsonObject *params, gpointer data)
{
    (void)client;
    Assistant *a = assistant_of(data);
    if (!a->disk_pending || strcmp(name, "disk.progress") != 0 ||
        g_strcmp0(json_object_get_string_member_with_default(params, "name", NULL),
                  a->created_image) != 0)
        return;
    JsonNode *f = json_object_get_member(params, "fraction");
    if (!f || !JSON_NODE_HOLDS_VALUE(f))
        return;
    GType t = json_node_get_value_type(f);
    double fraction = t == G_TYPE_DOUBLE  ? json_node_get_double(f)
                      : t == G_TYPE_INT64 ? (double)json_node_get_int(f)
                                          : -1;
    if (!(fraction >= 0 && fraction <= 1))
        return;
    stop_pulse(a);
    gtk_progress_bar_set_fraction(GTK_PROGRESS_BAR(a->progress), fraction);
    /* TRANSLATORS: how much of a disk image is done, e.g. "42 %" */
    char *text = g_strdup_printf(_("%d %%"), (int)(fraction * 100));
    gtk_progress_bar_set_text(GTK_PROGRESS_BAR(a->progress), text);
    gtk_progress_bar_set_show_text(GTK_PROGRESS_BAR(a->progress), TRUE);
    g_free(text);
}

static void work_failed(Assistant *a, const char *message)
{
    stop_pulse(a);
    gtk_progress_bar_set_show_text(GTK_PROGRESS_BAR(a->progress), FALSE);
    gtk_progress_bar_set_fraction(GTK_PROGRESS_BAR(a->progress), 0);
    gtk_label_set_text(GTK_LABEL(a->summary_error), message);
    gtk_widget_show(a->summary_error);
    /* Back to the summary, where the person can go back and fix the field hvd named. */
    gtk_assistant_previous_page(GTK_ASSISTANT(a->assistant));
}

static void define_done(JsonNode *result, const HvError *error, gpointer data)
{
    Assistant *a = assistant_of(data);
    (void)result;
    if (error) {
        if (a->created_image) {
            JsonObject *p = json_object_new();
            json_object_set_string_member(p, "name", a->created_image);
            hv_client_call(a->session->client, "disk.delete", p, NULL, NULL, NULL);
            g_clear_pointer(&a->created_image, g_free);
        }
        work_failed(a, error->message);
        return;
    }
    gtk_progress_bar_set_fraction(GTK_PROGRESS_BAR(a->progress), 1.0);
    gtk_label_set_text(GTK_LABEL(a->progress_label), _("The virtual machine was created."));
    gtk_assistant_set_page_complete(GTK_ASSISTANT(a->assistant), a->p_progress, TRUE);
    gtk_widget_destroy(a->assistant);
}

static void send_define(Assistant *a, const char *image)
{
    stop_pulse(a);
    gtk_progress_bar_set_show_text(GTK_PROGRESS_BAR(a->progress), FALSE);
    /* After a disk was made the bar stays full; it never goes back. */
    if (gtk_progress_bar_get_fraction(GTK_PROGRESS_BAR(a->progress)) < 0.75)
        gtk_progress_bar_set_fraction(GTK_PROGRESS_BAR(a->progress), 0.75);
    gtk_label_set_text(GTK_LABEL(a->progress_label), _("Defining the virtual machine…"));

    JsonObject *def = json_object_new();
    json_object_set_string_member(def, "name", gtk_entry_get_text(GTK_ENTRY(a->name)));
    json_object_set_int_member(def, "memory", spin_typed(a->memory) * 1024 * 1024);
    json_object_set_int_member(def, "cpus", spin_typed(a->cpus));
    json_object_set_string_member(def, "os", gtk_combo_box_get_active_id(GTK_COMBO_BOX(a->os)));
    char *hex = colour_hex(a);
    json_object_set_string_member(def, "colour", hex);
    g_free(hex);
    json_object_set_string_member(def, "kernel", gtk_entry_get_text(GTK_ENTRY(a->kernel)));
    const char *initrd = gtk_entry_get_text(GTK_ENTRY(a->initrd));
    if (*initrd)
        json_object_set_string_member(def, "initrd", initrd);
    const char *cmdline = gtk_entry_get_text(GTK_ENTRY(a->cmdline));
    if (*cmdline)
        json_object_set_string_member(def, "cmdline", cmdline);
    JsonArray *disks = json_array_new();
    if (image && want_forget(a)) {
        char *np = g_strdup_printf("%s,nonpersistent", image);
        json_array_add_string_element(disks, np);
        g_free(np);
    } else if (image) {
        json_array_add_string_element(disks, image);
    }
    const char *iso = gtk_entry_get_text(GTK_ENTRY(a->iso));
    if (*iso) {
        char *ro = g_strdup_printf("%s,ro", iso);
        json_array_add_string_element(disks, ro);
        g_free(ro);
    }
    json_object_set_array_member(def, "disk", disks);
    json_object_set_string_member(def, "net",
                                  gtk_combo_box_get_active_id(GTK_COMBO_BOX(a->network)));
    JsonObject *p = json_object_new();
    json_object_set_object_member(p, "definition", def);
    hv_client_call(a->session->client, "vm.define", p, G_OBJECT(a->assistant), define_done,
                   a->assistant);
}

static void disk_created(JsonNode *result, const HvError *error, gpointer data)
{
    Assistant *a = assistant_of(data);
    (void)result;
    a->disk_pending = FALSE;
    if (error) {
        g_clear_pointer(&a->created_image, g_free);
        work_failed(a, error->message);
        return;
    }
    gtk_progress_bar_set_fraction(GTK_PROGRESS_BAR(a->progress), 1.0);
    send_define(a, a->created_image);
}

static void on_apply(GtkAssistant *assistant, Assistant *a)
{
    (void)assistant;
    gtk_widget_hide(a->summary_error);
    gtk_progress_bar_set_fraction(GTK_PROGRESS_BAR(a->progress), 0);
    if (gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(a->disk_new))) {
        g_free(a->created_image);
        a->created_image = image_name_for(gtk_entry_get_text(GTK_ENTRY(a->name)));
        char *label = g_strdup_printf(_("Creating the disk image “%s”…"), a->created_image);
        gtk_label_set_text(GTK_LABEL(a->progress_label), label);
        g_free(label);
        a->pulse_timer = g_timeout_add(100, pulse, a->progress);
        JsonObject *p = json_object_new();
        json_object_set_string_member(p, "name", a->created_image);
        json_object_set_int_member(p, "size", spin_typed(a->disk_size) << 30);
        json_object_set_string_member(p, "format",
                                      gtk_combo_box_get_active_id(GTK_COMBO_BOX(a->disk_format)));
        a->disk_pending = TRUE;
        hv_client_call(a->session->client, "disk.create", p, G_OBJECT(a->assistant), disk_created,
                       a->assistant);
    } else if (want_copy(a)) {
        const char *source = gtk_combo_box_get_active_id(GTK_COMBO_BOX(a->disk_image));
        g_free(a->created_image);
        a->created_image = image_name_for(gtk_entry_get_text(GTK_ENTRY(a->name)));
        char *label =
            g_strdup_printf(_("Copying the disk image “%s” to “%s”…"), source, a->created_image);
        gtk_label_set_text(GTK_LABEL(a->progress_label), label);
        g_free(label);
        a->pulse_timer = g_timeout_add(100, pulse, a->progress);
        JsonObject *p = json_object_new();
        json_object_set_string_member(p, "source", source);
        json_object_set_string_member(p, "name", a->created_image);
        json_object_set_string_member(p, "mode", "copy");
        a->disk_pending = TRUE;
        hv_client_call(a->session->client, "disk.clone", p, G_OBJECT(a->assistant), disk_created,
                       a->assistant);
    } else if (gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(a->disk_existing))) {
        send_define(a, gtk_combo_box_get_active_id(GTK_COMBO_BOX(a->disk_image)));
    } else {
        send_define(a, NULL);
    }
}

static void on_cancel(GtkAssistant *assistant, gpointer data)
{
    (void)data;
    Assistant *a = assistant_of(assistant);
    if (a->disk_pending && a->created_image) {
        /* Stop the copy in hvd too; it removes the partial image. */
        JsonObject *p = json_object_new();
        json_object_set_string_member(p, "name", a->created_image);
        hv_client_call(a->session->client, "disk.cancel", p, NULL, NULL, NULL);
    }
    gtk_widget_destroy(GTK_WIDGET(assistant));
}

/* ---- lists from hvd ---- */

static void disks_listed(JsonNode *result, const HvError *error, gpointer data)
{
    Assistant *a = assistant_of(data);
    if (!error && JSON_NODE_HOLDS_OBJECT(result)) {
        JsonArray *imgs = hv_json_array(json_node_get_object(result), "images");
        for (guint i = 0; imgs && i < json_array_get_length(imgs); i++) {
            JsonObject *img = json_array_get_object_element(imgs, i);
            const char *name = json_object_get_string_member_with_default(img, "name", NULL);
            if (!name)
                continue;
            g_ptr_array_add(a->images, g_strdup(name));
            char *size = g_format_size_full(
                (guint64)json_object_get_int_member_with_default(img, "virtual_size", 0),
                G_FORMAT_SIZE_IEC_UNITS);
            char *label = g_strdup_printf("%s (%s)", name, size);
            gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(a->disk_image), name, label);
            g_free(label);
            g_free(size);
        }
    }
    check_storage_page(a);
}

static void networks_listed(JsonNode *result, const HvError *error, gpointer data)
{
    Assistant *a = assistant_of(data);
    if (!error && JSON_NODE_HOLDS_OBJECT(result)) {
        JsonArray *nets = hv_json_array(json_node_get_object(result), "networks");
        for (guint i = 0; nets && i < json_array_get_length(nets); i++) {
            JsonObject *n = json_array_get_object_element(nets, i);
            const char *name = json_object_get_string_member_with_default(n, "name", NULL);
            if (!name || strcmp(name, "none") == 0)
                continue;
            const char *subnet = json_object_get_string_member_with_default(n, "subnet", "");
            char *label = g_strdup_printf(_("%s (%s, shared with the host)"), name, subnet);
            gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(a->network), name, label);
            g_free(label);
        }
    }
}

/* ---- building the pages ---- */

static GtkWidget *page_grid(void)
{
    GtkWidget *grid = gtk_grid_new();
    gtk_grid_set_row_spacing(GTK_GRID(grid), 4);
    gtk_grid_set_column_spacing(GTK_GRID(grid), 12);
    g_object_set(grid, "margin", 18, NULL);
    return grid;
}

static void add_page(Assistant *a, GtkWidget *page, const char *title, GtkAssistantPageType type)
{
    gtk_assistant_append_page(GTK_ASSISTANT(a->assistant), page);
    gtk_assistant_set_page_title(GTK_ASSISTANT(a->assistant), page, title);
    gtk_assistant_set_page_type(GTK_ASSISTANT(a->assistant), page, type);
    hv_set_accessible_name(page, title);
}

static GtkWidget *hint_label(const char *text)
{
    GtkWidget *l = gtk_label_new(text);
    gtk_label_set_xalign(GTK_LABEL(l), 0);
    gtk_label_set_line_wrap(GTK_LABEL(l), TRUE);
    gtk_label_set_max_width_chars(GTK_LABEL(l), 60);
    gtk_style_context_add_class(gtk_widget_get_style_context(l), "dim-label");
    return l;
}

static void build_name_page(Assistant *a)
{
    GtkWidget *g = page_grid();
    int row = 0;
    a->name = gtk_entry_new();
    gtk_entry_set_max_length(GTK_ENTRY(a->name), HV_NAME_MAX + 1);
    gtk_entry_set_placeholder_text(GTK_ENTRY(a->name), _("for example: work"));
    a->name_msg = form_add_field(GTK_GRID(g), &row, _("_Name"), a->name);
    a->os = form_combo(_("Operating system"), "linux", _("Linux"), "windows", _("Windows"), "other",
                       _("Other"), NULL);
    form_add_field(GTK_GRID(g), &row, _("_Operating system"), a->os);
    a->colour = gtk_color_button_new();
    GdkRGBA blue;
    gdk_rgba_parse(&blue, "#3465a4");
    gtk_color_chooser_set_rgba(GTK_COLOR_CHOOSER(a->colour), &blue);
    gtk_widget_set_halign(a->colour, GTK_ALIGN_START);
    form_add_field(GTK_GRID(g), &row, _("_Colour"), a->colour);
    gtk_grid_attach(GTK_GRID(g),
                    hint_label(_("The colour labels the virtual machine on screen, so that one "
                                 "machine cannot pass itself off as another.")),
                    0, row++, 2, 1);
    g_signal_connect(a->name, "changed", G_CALLBACK(on_name_changed), a);
    a->p_name = g;
    add_page(a, g, _("Name and Type"), GTK_ASSISTANT_PAGE_CONTENT);
}

static void build_memory_page(Assistant *a)
{
    GtkWidget *g = page_grid();
    int row = 0;
    a->memory = gtk_spin_button_new_with_range(HV_MIN_MEMORY_MIB, 1024 * 1024, 256);
    gtk_spin_button_set_value(GTK_SPIN_BUTTON(a->memory), DEFAULT_MEMORY_MIB);
    a->memory_msg = form_add_field(GTK_GRID(g), &row, _("_Memory (MiB)"), a->memory);
    a->cpus = gtk_spin_button_new_with_range(1, HV_MAX_CPUS, 1);
    gtk_spin_button_set_value(GTK_SPIN_BUTTON(a->cpus), 1);
    a->cpus_msg = form_add_field(GTK_GRID(g), &row, _("_Processors"), a->cpus);
    char *mem = a->session->memory_total ? hv_format_size(a->session->memory_total)
                                         : g_strdup(_("an unknown amount of"));
    char *hint = g_strdup_printf(_("This laptop has %s memory and %u processors."), mem,
                                 a->session->host_cpus);
    a->host_hint = hint_label(hint);
    gtk_grid_attach(GTK_GRID(g), a->host_hint, 0, row++, 2, 1);
    g_free(hint);
    g_free(mem);
    g_signal_connect(a->memory, "changed", G_CALLBACK(on_memory_changed), a);
    g_signal_connect(a->cpus, "changed", G_CALLBACK(on_memory_changed), a);
    a->p_memory = g;
    add_page(a, g, _("Memory and Processors"), GTK_ASSISTANT_PAGE_CONTENT);
}

static void build_storage_page(Assistant *a)
{
    GtkWidget *g = page_grid();
    int row = 0;
    a->disk_new = gtk_radio_button_new_with_mnemonic(NULL, _("Create a _new disk"));
    a->disk_existing = gtk_radio_button_new_with_mnemonic_from_widget(GTK_RADIO_BUTTON(a->disk_new),
                                                                      _("Use an _existing image"));
    a->disk_none = gtk_radio_button_new_with_mnemonic_from_widget(GTK_RADIO_BUTTON(a->disk_new),
                                                                  _("No _disk"));
    gtk_grid_attach(GTK_GRID(g), a->disk_new, 0, row++, 2, 1);
    a->disk_size = gtk_spin_button_new_with_range(1, 16 * 1024, 1);
    gtk_spin_button_set_value(GTK_SPIN_BUTTON(a->disk_size), DEFAULT_DISK_GIB);
    form_add_field(GTK_GRID(g), &row, _("_Size (GiB)"), a->disk_size);
    a->disk_format =
        form_combo(_("Format"), "qcow2", _("qcow2 (grows as used)"), "raw", _("raw (fastest)"),
                   "vhd", _("VHD (grows as used; Hyper-V reads it)"), NULL);
    form_add_field(GTK_GRID(g), &row, _("_Format"), a->disk_format);
    gtk_grid_attach(GTK_GRID(g), a->disk_existing, 0, row++, 2, 1);
    a->disk_image = gtk_combo_box_text_new();
    form_add_field(GTK_GRID(g), &row, _("_Image"), a->disk_image);
    a->disk_copy = gtk_check_button_new_with_mnemonic(_("_Copy it for this machine"));
    gtk_widget_set_tooltip_text(a->disk_copy, _("The machine gets its own copy of the image, "
                                                "named after it; the original stays unchanged."));
    gtk_grid_attach(GTK_GRID(g), a->disk_copy, 1, row++, 1, 1);
    a->disk_forget =
        gtk_check_button_new_with_mnemonic(_("_Forget changes at each start (non-persistent)"));
    gtk_widget_set_tooltip_text(a->disk_forget,
                                _("The machine starts from the image as it is every time; what it "
                                  "writes is thrown away when it stops. The image is only read."));
    gtk_grid_attach(GTK_GRID(g), a->disk_forget, 1, row++, 1, 1);
    gtk_grid_attach(GTK_GRID(g), a->disk_none, 0, row++, 2, 1);
    /* One message for the page, under everything. */
    a->storage_msg = form_message_label();
    gtk_grid_attach(GTK_GRID(g), a->storage_msg, 0, row++, 2, 1);
    g_signal_connect(a->disk_new, "toggled", G_CALLBACK(on_storage_changed), a);
    g_signal_connect(a->disk_existing, "toggled", G_CALLBACK(on_storage_changed), a);
    g_signal_connect(a->disk_size, "changed", G_CALLBACK(on_storage_changed), a);
    g_signal_connect(a->disk_image, "changed", G_CALLBACK(on_storage_changed), a);
    g_signal_connect(a->disk_copy, "toggled", G_CALLBACK(on_storage_changed), a);
    g_signal_connect(a->disk_forget, "toggled", G_CALLBACK(on_storage_changed), a);
    a->p_storage = g;
    add_page(a, g, _("Storage"), GTK_ASSISTANT_PAGE_CONTENT);
}

static void build_boot_page(Assistant *a)
{
    GtkWidget *g = page_grid();
    int row = 0;
    gtk_grid_attach(GTK_GRID(g),
                    hint_label(_("hv boots a Linux kernel directly. Paths are on the host; from "
                                 "the UIVM, kernels are in /var/lib/hv/kernels. An installer ISO, "
                                 "attached as a read-only disk, is an image in hvd's store.")),
                    0, row++, 2, 1);
    a->kernel = gtk_entry_new();
    gtk_entry_set_placeholder_text(GTK_ENTRY(a->kernel), "/var/lib/hv/kernels/vmlinuz");
    a->kernel_msg = form_add_field(GTK_GRID(g), &row, _("_Kernel"), a->kernel);
    a->initrd = gtk_entry_new();
    gtk_entry_set_placeholder_text(GTK_ENTRY(a->initrd), _("optional"));
    a->initrd_msg = form_add_field(GTK_GRID(g), &row, _("_Initrd"), a->initrd);
    a->cmdline = gtk_entry_new();
    gtk_entry_set_text(GTK_ENTRY(a->cmdline), "console=ttyS0");
    form_add_field(GTK_GRID(g), &row, _("Command _line"), a->cmdline);
    a->iso = gtk_entry_new();
    gtk_entry_set_placeholder_text(GTK_ENTRY(a->iso), _("optional"));
    a->iso_msg = form_add_field(GTK_GRID(g), &row, _("Installer I_SO"), a->iso);
    g_signal_connect(a->kernel, "changed", G_CALLBACK(on_boot_changed), a);
    g_signal_connect(a->initrd, "changed", G_CALLBACK(on_boot_changed), a);
    g_signal_connect(a->iso, "changed", G_CALLBACK(on_boot_changed), a);
    a->p_boot = g;
    add_page(a, g, _("Boot"), GTK_ASSISTANT_PAGE_CONTENT);
}

static void build_network_page(Assistant *a)
{
    GtkWidget *g = page_grid();
    int row = 0;
    a->network = form_combo(_("Network"), "none", _("No network"), NULL);
    form_add_field(GTK_GRID(g), &row, _("_Network"), a->network);
    a->p_network = g;
    add_page(a, g, _("Network"), GTK_ASSISTANT_PAGE_CONTENT);
    gtk_assistant_set_page_complete(GTK_ASSISTANT(a->assistant), g, TRUE);
}

static void build_summary_pages(Assistant *a)
{
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 12);
    g_object_set(box, "margin", 18, NULL);
    a->summary = gtk_label_new("");
    gtk_label_set_xalign(GTK_LABEL(a->summary), 0);
    a->summary_error = gtk_label_new("");
    gtk_label_set_xalign(GTK_LABEL(a->summary_error), 0);
    gtk_label_set_line_wrap(GTK_LABEL(a->summary_error), TRUE);
    gtk_style_context_add_class(gtk_widget_get_style_context(a->summary_error), "error");
    PangoAttrList *attrs = pango_attr_list_new();
    pango_attr_list_insert(attrs, pango_attr_foreground_new(0xc000, 0x1c00, 0x2800));
    gtk_label_set_attributes(GTK_LABEL(a->summary_error), attrs);
    pango_attr_list_unref(attrs);
    gtk_widget_set_no_show_all(a->summary_error, TRUE);
    gtk_box_pack_start(GTK_BOX(box), a->summary, FALSE, FALSE, 0);
    gtk_box_pack_start(GTK_BOX(box), a->summary_error, FALSE, FALSE, 0);
    a->p_summary = box;
    add_page(a, box, _("Summary"), GTK_ASSISTANT_PAGE_CONFIRM);
    gtk_assistant_set_page_complete(GTK_ASSISTANT(a->assistant), box, TRUE);

    GtkWidget *pbox = gtk_box_new(GTK_ORIENTATION_VERTICAL, 12);
    g_object_set(pbox, "margin", 18, NULL);
    gtk_widget_set_valign(pbox, GTK_ALIGN_CENTER);
    a->progress_label = gtk_label_new("");
    a->progress = gtk_progress_bar_new();
    hv_set_accessible_name(a->progress, _("Progress"));
    gtk_box_pack_start(GTK_BOX(pbox), a->progress_label, FALSE, FALSE, 0);
    gtk_box_pack_start(GTK_BOX(pbox), a->progress, FALSE, FALSE, 0);
    a->p_progress = pbox;
    add_page(a, pbox, _("Creating"), GTK_ASSISTANT_PAGE_PROGRESS);
}

void create_assistant_run(GtkWindow *parent, HvSession *session)
{
    Assistant *a = g_new0(Assistant, 1);
    a->session = session;
    a->images = g_ptr_array_new_with_free_func(g_free);
    a->assistant = g_object_new(GTK_TYPE_ASSISTANT, "use-header-bar", 1, NULL);
    g_object_set_data_full(G_OBJECT(a->assistant), "hv-assistant", a, assistant_free);
    gtk_window_set_title(GTK_WINDOW(a->assistant), _("New Virtual Machine"));
    gtk_window_set_transient_for(GTK_WINDOW(a->assistant), parent);
    gtk_window_set_modal(GTK_WINDOW(a->assistant), TRUE);
    gtk_window_set_default_size(GTK_WINDOW(a->assistant), 640, 440);
    hv_set_accessible_name(a->assistant, _("New Virtual Machine"));

    build_name_page(a);
    build_memory_page(a);
    build_storage_page(a);
    build_boot_page(a);
    build_network_page(a);
    build_summary_pages(a);
    check_name_page(a);
    check_memory_page(a);
    check_storage_page(a);
    check_boot_page(a);
    /* No message before the person has typed anything. */
    form_set_message(a->name_msg, a->name, NULL);
    form_set_message(a->kernel_msg, a->kernel, NULL);

    g_signal_connect(a->assistant, "prepare", G_CALLBACK(on_prepare), a);
    g_signal_connect(a->assistant, "apply", G_CALLBACK(on_apply), a);
    g_signal_connect(a->assistant, "cancel", G_CALLBACK(on_cancel), NULL);
    g_signal_connect(a->assistant, "close", G_CALLBACK(on_cancel), NULL);
    g_signal_connect_object(session->client, "event", G_CALLBACK(on_hvd_event), a->assistant, 0);
    gtk_widget_show_all(a->assistant);

    hv_client_call(session->client, "disk.list", NULL, G_OBJECT(a->assistant), disks_listed,
                   a->assistant);
    hv_client_call(session->client, "net.list", NULL, G_OBJECT(a->assistant), networks_listed,
                   a->assistant);
}
