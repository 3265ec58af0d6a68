/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The connection to hvd (docs/hvd-api.md): one JSON object per line over a
 * unix socket or vsock, asynchronous on GIO. Sends "hello" and
 * "events.subscribe" after each connect, reconnects with backoff when hvd
 * goes away, and fails the requests in flight with code "disconnected".
 * Replies are matched by id: hvd answers long disk work when it ends and
 * the other requests meanwhile ("async-replies" in hello).
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

#define HV_TYPE_CLIENT (hv_client_get_type())
G_DECLARE_FINAL_TYPE(HvClient, hv_client, HV, CLIENT, GObject)

/* An error reply, or code "disconnected" when the connection was lost. */
typedef struct {
    const char *code;
    const char *message;
} HvError;

/* result is NULL exactly when error is not NULL. Neither is owned by the callee. */
typedef void (*HvReplyFunc)(JsonNode *result, const HvError *error, gpointer user_data);

/* "unix:PATH" or "vsock:CID:PORT". */
HvClient *hv_client_new(const char *address);
void hv_client_start(HvClient *self);
gboolean hv_client_is_connected(HvClient *self);
const char *hv_client_address(HvClient *self);

/*
 * Sends a request; params (may be NULL) is consumed. The callback runs once,
 * unless owner (may be NULL) has been finalized by then, in which case it is
 * skipped: widgets pass themselves so a late reply never touches a dead one.
 */
void hv_client_call(HvClient *self, const char *method, JsonObject *params, GObject *owner,
                    HvReplyFunc callback, gpointer user_data);

/* The member key of o if it is an object / array, else NULL (json-glib's getters warn). */
JsonObject *hv_json_object(JsonObject *o, const char *key);
JsonArray *hv_json_array(JsonObject *o, const char *key);

/*
 * Signals:
 *   "connection-changed" (gboolean connected)
 *   "event"              (const char *name, JsonObject *params)
 */

G_END_DECLS
