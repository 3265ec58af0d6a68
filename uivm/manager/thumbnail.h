/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Live thumbnails of the running VMs (hvd's vm.screenshot), shared by the list
 * rows and the details pane: one per VM every THUMB_REFRESH_MS while the
 * window shows them, never more than one request per VM in flight, so a
 * slow hvd gets no pile of requests.
 */
#pragma once

#include "hvd_client.h"

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define HV_THUMB_W 320 /* the size asked of hvd; rows scale it down */
#define HV_THUMB_H 200

#define HV_TYPE_THUMBS (hv_thumbs_get_type())
G_DECLARE_FINAL_TYPE(HvThumbs, hv_thumbs, HV, THUMBS, GObject)

/* The app's one instance (created on first use). */
HvThumbs *hv_thumbs_get(void);

/* Starts taking thumbnails through client while shown is on screen; once. */
void hv_thumbs_start(HvThumbs *self, HvClient *client, GtkWidget *shown);

/* What the list knows of a VM: thumbnails are taken while it runs. */
void hv_thumbs_watch(HvThumbs *self, const char *name, const char *state);
void hv_thumbs_forget(HvThumbs *self, const char *name);

/* The VM's last thumbnail (borrowed) or NULL, and then why not (a sentence, or NULL). */
GdkPixbuf *hv_thumbs_pixbuf(HvThumbs *self, const char *name);
const char *hv_thumbs_problem(HvThumbs *self, const char *name);

/* Signal "updated" (const char *name): its pixbuf or problem changed. */

G_END_DECLS
