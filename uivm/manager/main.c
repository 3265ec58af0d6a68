/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * hv-manager: the GTK 3 management app of hv (docs/uivm.md).
 *   hv-manager [--socket PATH | --vsock CID:PORT] [--fullscreen]
 */
#include "hvd_client.h"
#include "i18n.h"
#include "main_window.h"

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>

#define DEFAULT_SOCKET "/run/hv/hvd.sock"

static char *opt_socket;
static char *opt_vsock;
static gboolean opt_fullscreen;
static HvClient *client;

static void on_startup(GApplication *app, gpointer data)
{
    (void)app;
    (void)data;
    gtk_icon_theme_add_resource_path(gtk_icon_theme_get_default(), "/org/hv/Manager/icons");
}

static void on_activate(GtkApplication *app, gpointer data)
{
    (void)data;
    GList *windows = gtk_application_get_windows(app);
    if (windows) {
        gtk_window_present(windows->data);
        return;
    }
    main_window_new(app, client, opt_fullscreen);
    hv_client_start(client);
}

int main(int argc, char **argv)
{
    setlocale(LC_ALL, "");
    bindtextdomain(HV_GETTEXT_PACKAGE, HV_LOCALEDIR);
    bind_textdomain_codeset(HV_GETTEXT_PACKAGE, "UTF-8");
    textdomain(HV_GETTEXT_PACKAGE);

    GOptionEntry entries[] = {
        {"socket", 's', 0, G_OPTION_ARG_FILENAME, &opt_socket,
         N_("hvd's unix socket (default " DEFAULT_SOCKET ")"), N_("PATH")},
        {"vsock", 'v', 0, G_OPTION_ARG_STRING, &opt_vsock,
         N_("connect to hvd over vsock (inside the UIVM: 2:5140)"), N_("CID:PORT")},
        {"fullscreen", 'f', 0, G_OPTION_ARG_NONE, &opt_fullscreen,
         N_("fill the screen, no close button (kiosk use in the UIVM)"), NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    GError *error = NULL;
    GOptionContext *ctx = g_option_context_new(NULL);
    g_option_context_set_summary(ctx, _("Manage hv's virtual machines."));
    g_option_context_add_main_entries(ctx, entries, HV_GETTEXT_PACKAGE);
    g_option_context_add_group(ctx, gtk_get_option_group(FALSE));
    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        fprintf(stderr, "hv-manager: %s\n", error->message);
        g_option_context_free(ctx);
        return 2;
    }
    g_option_context_free(ctx);
    if (opt_socket && opt_vsock) {
        fprintf(stderr, "hv-manager: give --socket or --vsock, not both\n");
        return 2;
    }
    char *address = opt_vsock
                        ? g_strdup_printf("vsock:%s", opt_vsock)
                        : g_strdup_printf("unix:%s", opt_socket ? opt_socket : DEFAULT_SOCKET);
    if (opt_vsock) {
        unsigned cid, port;
        char extra;
        if (sscanf(opt_vsock, "%u:%u%c", &cid, &port, &extra) != 2) {
            fprintf(stderr, "hv-manager: --vsock wants CID:PORT, e.g. 2:5140 (got '%s')\n",
                    opt_vsock);
            return 2;
        }
    }

    GtkApplication *app = gtk_application_new("org.hv.Manager", G_APPLICATION_NON_UNIQUE);
    g_set_application_name(_("hv Manager"));
    client = hv_client_new(address);
    g_free(address);
    g_signal_connect(app, "activate", G_CALLBACK(on_activate), NULL);
    /* The icons are built in, so the app looks right installed or not. */
    g_signal_connect(app, "startup", G_CALLBACK(on_startup), NULL);
    int status = g_application_run(G_APPLICATION(app), 1, argv);
    g_object_unref(app);
    g_object_unref(client);
    return status;
}
