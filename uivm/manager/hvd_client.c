/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The asynchronous JSON-lines connection to hvd; see hvd_client.h. */
#include "hvd_client.h"

#include <errno.h>
#include <gio/gunixsocketaddress.h>
#include <linux/vm_sockets.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BACKOFF_FIRST_MS 250
#define BACKOFF_MAX_MS   3000

typedef struct {
    gint64 id;
    GWeakRef owner;
    gboolean has_owner;
    HvReplyFunc callback;
    gpointer user_data;
} Pending;

struct _HvClient {
    GObject parent;
    char *address;
    GSocketConnection *conn;
    GDataInputStream *in;
    GOutputStream *out;
    GCancellable *cancel; /* of the current connection (or connect attempt) */
    GQueue *outgoing;     /* GBytes, one line each */
    gboolean writing;
    gboolean connected; /* connected and hello answered */
    gint64 next_id;
    GQueue *pending; /* Pending, in request order; replies are matched by id */
    guint retry_source;
    guint backoff_ms;
};

G_DEFINE_TYPE(HvClient, hv_client, G_TYPE_OBJECT)

enum { SIG_CONNECTION_CHANGED, SIG_EVENT, N_SIGNALS };
static guint signals[N_SIGNALS];

static void connect_now(HvClient *self);
static void read_next(HvClient *self);

static void pending_finish(Pending *p, JsonNode *result, const HvError *error)
{
    GObject *owner = p->has_owner ? g_weak_ref_get(&p->owner) : NULL;
    if (p->callback && (!p->has_owner || owner))
        p->callback(result, error, p->user_data);
    if (owner)
        g_object_unref(owner);
    g_weak_ref_clear(&p->owner);
    g_free(p);
}

static void fail_all_pending(HvClient *self)
{
    HvError err = {"disconnected", "The connection to hvd was lost."};
    Pending *p;
    while ((p = g_queue_pop_head(self->pending)))
        pending_finish(p, NULL, &err);
}

static void set_connected(HvClient *self, gboolean connected)
{
    if (self->connected == connected)
        return;
    self->connected = connected;
    g_signal_emit(self, signals[SIG_CONNECTION_CHANGED], 0, connected);
}

static gboolean retry_cb(gpointer data)
{
    HvClient *self = data;
    self->retry_source = 0;
    connect_now(self);
    return G_SOURCE_REMOVE;
}

static void schedule_retry(HvClient *self)
{
    if (self->retry_source)
        return;
    self->retry_source = g_timeout_add(self->backoff_ms, retry_cb, self);
    self->backoff_ms = MIN(self->backoff_ms * 2, BACKOFF_MAX_MS);
}

/* Drops the connection (if any), fails what was in flight, and plans a retry. */
static void drop_connection(HvClient *self)
{
    if (self->cancel) {
        g_cancellable_cancel(self->cancel);
        g_clear_object(&self->cancel);
    }
    if (self->conn)
        g_io_stream_close(G_IO_STREAM(self->conn), NULL, NULL);
    g_clear_object(&self->in);
    self->out = NULL;
    g_clear_object(&self->conn);
    g_queue_clear_full(self->outgoing, (GDestroyNotify)g_bytes_unref);
    self->writing = FALSE;
    fail_all_pending(self);
    set_connected(self, FALSE);
    schedule_retry(self);
}

/* ---- writing ---- */

typedef struct {
    HvClient *self;
    GCancellable *cancel;
    GBytes *bytes;
} WriteOp;

static void write_next(HvClient *self);

static void write_done(GObject *src, GAsyncResult *res, gpointer data)
{
    WriteOp *op = data;
    GError *error = NULL;
    gboolean ok = g_output_stream_write_all_finish(G_OUTPUT_STREAM(src), res, NULL, &error);
    gboolean stale = g_cancellable_is_cancelled(op->cancel);
    HvClient *self = op->self;
    if (!stale) {
        self->writing = FALSE;
        if (ok)
            write_next(self);
        else
            drop_connection(self);
    }
    g_clear_error(&error);
    g_bytes_unref(op->bytes);
    g_object_unref(op->cancel);
    g_object_unref(self);
    g_free(op);
}

static void write_next(HvClient *self)
{
    if (self->writing || !self->out || g_queue_is_empty(self->outgoing))
        return;
    WriteOp *op = g_new0(WriteOp, 1);
    op->self = g_object_ref(self);
    op->cancel = g_object_ref(self->cancel);
    op->bytes = g_queue_pop_head(self->outgoing);
    self->writing = TRUE;
    gsize len;
    const void *buf = g_bytes_get_data(op->bytes, &len);
    g_output_stream_write_all_async(self->out, buf, len, G_PRIORITY_DEFAULT, op->cancel, write_done,
                                    op);
}

static void send_request(HvClient *self, const char *method, JsonObject *params, GObject *owner,
                         HvReplyFunc callback, gpointer user_data)
{
    Pending *p = g_new0(Pending, 1);
    p->id = self->next_id++;
    p->callback = callback;
    p->user_data = user_data;
    g_weak_ref_init(&p->owner, owner);
    p->has_owner = owner != NULL;

    JsonObject *req = json_object_new();
    json_object_set_int_member(req, "id", p->id);
    json_object_set_string_member(req, "method", method);
    json_object_set_object_member(req, "params", params ? params : json_object_new());
    JsonNode *node = json_node_init_object(json_node_alloc(), req);
    gsize len;
    char *text = json_to_string(node, FALSE);
    len = strlen(text);
    json_node_unref(node);
    json_object_unref(req);
    char *line = g_strconcat(text, "\n", NULL);
    g_free(text);
    g_queue_push_tail(self->outgoing, g_bytes_new_take(line, len + 1));
    g_queue_push_tail(self->pending, p);
    write_next(self);
}

void hv_client_call(HvClient *self, const char *method, JsonObject *params, GObject *owner,
                    HvReplyFunc callback, gpointer user_data)
{
    if (!self->connected) {
        if (params)
            json_object_unref(params);
        HvError err = {"disconnected", "Not connected to hvd."};
        Pending p = {.callback = callback, .user_data = user_data};
        g_weak_ref_init(&p.owner, owner);
        p.has_owner = owner != NULL;
        GObject *alive = owner ? g_weak_ref_get(&p.owner) : NULL;
        if (callback && (!owner || alive))
            callback(NULL, &err, user_data);
        if (alive)
            g_object_unref(alive);
        g_weak_ref_clear(&p.owner);
        return;
    }
    send_request(self, method, params, owner, callback, user_data);
}

/* ---- reading ---- */

static void handle_message(HvClient *self, JsonObject *msg)
{
    if (json_object_has_member(msg, "event")) {
        const char *name = json_object_get_string_member_with_default(msg, "event", "");
        JsonObject *params = hv_json_object(msg, "params");
        JsonObject *empty = NULL;
        if (!params)
            params = empty = json_object_new();
        g_signal_emit(self, signals[SIG_EVENT], 0, name, params);
        if (empty)
            json_object_unref(empty);
        return;
    }
    JsonNode *idn = json_object_get_member(msg, "id");
    if (!idn || JSON_NODE_HOLDS_NULL(idn)) {
        g_warning("hvd: reply without id: %s",
                  json_object_has_member(msg, "error") ? "error" : "result");
        return;
    }
    /*
     * With "async-replies" (asked for in hello), hvd answers a long request
     * (a disk copy) when it ends and the others meanwhile: match by id.
     */
    GList *link = NULL;
    if (json_node_get_value_type(idn) == G_TYPE_INT64) {
        gint64 id = json_node_get_int(idn);
        for (link = self->pending->head; link; link = link->next)
            if (((Pending *)link->data)->id == id)
                break;
    }
    if (!link) {
        g_warning("hvd: a reply that matches no request");
        return;
    }
    Pending *p = link->data;
    g_queue_delete_link(self->pending, link);
    JsonObject *eo = hv_json_object(msg, "error");
    if (eo) {
        HvError err = {
            json_object_get_string_member_with_default(eo, "code", "internal"),
            json_object_get_string_member_with_default(eo, "message", "hvd reported an error."),
        };
        pending_finish(p, NULL, &err);
    } else {
        JsonNode *res = json_object_get_member(msg, "result");
        JsonNode *null_node = NULL;
        if (!res)
            res = null_node = json_node_new(JSON_NODE_NULL);
        pending_finish(p, res, NULL);
        if (null_node)
            json_node_unref(null_node);
    }
}

typedef struct {
    HvClient *self;
    GCancellable *cancel;
} ReadOp;

static void read_done(GObject *src, GAsyncResult *res, gpointer data)
{
    ReadOp *op = data;
    HvClient *self = op->self;
    GError *error = NULL;
    gsize len = 0;
    char *line =
        g_data_input_stream_read_line_finish_utf8(G_DATA_INPUT_STREAM(src), res, &len, &error);
    if (g_cancellable_is_cancelled(op->cancel)) {
        g_free(line);
    } else if (!line) {
        /* EOF or an error: hvd went away, or sent what cannot be read. */
        if (error)
            g_warning("the connection to hvd failed: %s", error->message);
        else
            g_message("hvd closed the connection");
        drop_connection(self);
    } else {
        if (len > 0) {
            JsonParser *parser = json_parser_new_immutable();
            if (json_parser_load_from_data(parser, line, (gssize)len, NULL) &&
                JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser)))
                handle_message(self, json_node_get_object(json_parser_get_root(parser)));
            else
                g_warning("hvd sent a line that is not a JSON object");
            g_object_unref(parser);
        }
        g_free(line);
        if (!g_cancellable_is_cancelled(op->cancel))
            read_next(self);
    }
    g_clear_error(&error);
    g_object_unref(op->cancel);
    g_object_unref(self);
    g_free(op);
}

static void read_next(HvClient *self)
{
    ReadOp *op = g_new0(ReadOp, 1);
    op->self = g_object_ref(self);
    op->cancel = g_object_ref(self->cancel);
    g_data_input_stream_read_line_async(self->in, G_PRIORITY_DEFAULT, op->cancel, read_done, op);
}

/* ---- connecting ---- */

static void hello_done(JsonNode *result, const HvError *error, gpointer data)
{
    HvClient *self = data;
    if (error) {
        if (g_strcmp0(error->code, "disconnected") != 0) {
            g_warning("hvd refused hello: %s", error->message);
            drop_connection(self);
        }
        return;
    }
    (void)result;
    self->backoff_ms = BACKOFF_FIRST_MS;
    set_connected(self, TRUE);
}

static void attach_connection(HvClient *self, GSocketConnection *conn)
{
    /*
     * The connect timeout of g_socket_client_set_timeout() stays on the
     * socket and would end every read after 5 quiet seconds: hvd is quiet
     * whenever nothing happens, so reads wait without one.
     */
    g_socket_set_timeout(g_socket_connection_get_socket(conn), 0);
    self->conn = conn;
    self->in = g_data_input_stream_new(g_io_stream_get_input_stream(G_IO_STREAM(conn)));
    g_data_input_stream_set_newline_type(self->in, G_DATA_STREAM_NEWLINE_TYPE_LF);
    g_buffered_input_stream_set_buffer_size(G_BUFFERED_INPUT_STREAM(self->in), 65536);
    self->out = g_io_stream_get_output_stream(G_IO_STREAM(conn));
    read_next(self);

    JsonObject *hello = json_object_new();
    json_object_set_string_member(hello, "client", "hv-manager");
    JsonArray *versions = json_array_new();
    json_array_add_int_element(versions, 1);
    json_object_set_array_member(hello, "versions", versions);
    JsonArray *features = json_array_new();
    json_array_add_string_element(features, "async-replies");
    json_object_set_array_member(hello, "features", features);
    send_request(self, "hello", hello, NULL, hello_done, self);
    send_request(self, "events.subscribe", NULL, NULL, NULL, NULL);
}

typedef struct {
    HvClient *self;
    GCancellable *cancel;
} ConnectOp;

static void connect_finish_common(ConnectOp *op, GSocketConnection *conn, GError *error)
{
    HvClient *self = op->self;
    if (g_cancellable_is_cancelled(op->cancel)) {
        g_clear_object(&conn);
    } else if (!conn) {
        g_debug("cannot connect to hvd at %s: %s", self->address,
                error ? error->message : "unknown");
        g_clear_object(&self->cancel);
        schedule_retry(self);
    } else {
        attach_connection(self, conn);
    }
    g_clear_error(&error);
    g_object_unref(op->cancel);
    g_object_unref(self);
    g_free(op);
}

static void unix_connected(GObject *src, GAsyncResult *res, gpointer data)
{
    GError *error = NULL;
    GSocketConnection *conn = g_socket_client_connect_finish(G_SOCKET_CLIENT(src), res, &error);
    g_object_unref(src);
    connect_finish_common(data, conn, error);
}

/* GIO has no vsock address type: connect a plain socket in a worker thread. */
static void vsock_connect_thread(GTask *task, gpointer source, gpointer data, GCancellable *c)
{
    (void)source;
    (void)c;
    const char *spec = data; /* "CID:PORT" */
    unsigned cid = 0, port = 0;
    if (sscanf(spec, "%u:%u", &cid, &port) != 2) {
        g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                                "bad vsock address '%s' (expected CID:PORT)", spec);
        return;
    }
    int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        g_task_return_new_error(task, G_IO_ERROR, g_io_error_from_errno(errno), "vsock socket: %s",
                                g_strerror(errno));
        return;
    }
    struct sockaddr_vm sa = {.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port};
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        close(fd);
        g_task_return_new_error(task, G_IO_ERROR, g_io_error_from_errno(e), "vsock %s: %s", spec,
                                g_strerror(e));
        return;
    }
    GError *error = NULL;
    GSocket *sock = g_socket_new_from_fd(fd, &error);
    if (!sock) {
        close(fd);
        g_task_return_error(task, error);
        return;
    }
    g_task_return_pointer(task, g_socket_connection_factory_create_connection(sock),
                          g_object_unref);
    g_object_unref(sock);
}

static void vsock_connected(GObject *src, GAsyncResult *res, gpointer data)
{
    (void)src;
    GError *error = NULL;
    GSocketConnection *conn = g_task_propagate_pointer(G_TASK(res), &error);
    connect_finish_common(data, conn, error);
}

static void connect_now(HvClient *self)
{
    if (self->conn || self->cancel)
        return;
    self->cancel = g_cancellable_new();
    ConnectOp *op = g_new0(ConnectOp, 1);
    op->self = g_object_ref(self);
    op->cancel = g_object_ref(self->cancel);
    if (g_str_has_prefix(self->address, "vsock:")) {
        GTask *task = g_task_new(NULL, op->cancel, vsock_connected, op);
        g_task_set_task_data(task, g_strdup(self->address + 6), g_free);
        g_task_run_in_thread(task, vsock_connect_thread);
        g_object_unref(task);
    } else {
        const char *path = self->address;
        if (g_str_has_prefix(path, "unix:"))
            path += 5;
        GSocketClient *client = g_socket_client_new();
        g_socket_client_set_timeout(client, 5);
        GSocketAddress *addr = g_unix_socket_address_new(path);
        g_socket_client_connect_async(client, G_SOCKET_CONNECTABLE(addr), op->cancel,
                                      unix_connected, op);
        g_object_unref(addr);
    }
}

/* ---- JSON helpers ---- */

JsonObject *hv_json_object(JsonObject *o, const char *key)
{
    JsonNode *n = o ? json_object_get_member(o, key) : NULL;
    return n && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
}

JsonArray *hv_json_array(JsonObject *o, const char *key)
{
    JsonNode *n = o ? json_object_get_member(o, key) : NULL;
    return n && JSON_NODE_HOLDS_ARRAY(n) ? json_node_get_array(n) : NULL;
}

/* ---- object ---- */

void hv_client_start(HvClient *self)
{
    connect_now(self);
}

gboolean hv_client_is_connected(HvClient *self)
{
    return self->connected;
}

const char *hv_client_address(HvClient *self)
{
    return self->address;
}

HvClient *hv_client_new(const char *address)
{
    HvClient *self = g_object_new(HV_TYPE_CLIENT, NULL);
    self->address = g_strdup(address);
    return self;
}

static void hv_client_finalize(GObject *obj)
{
    HvClient *self = HV_CLIENT(obj);
    if (self->retry_source)
        g_source_remove(self->retry_source);
    if (self->cancel)
        g_cancellable_cancel(self->cancel);
    g_clear_object(&self->cancel);
    g_clear_object(&self->in);
    g_clear_object(&self->conn);
    g_queue_free_full(self->outgoing, (GDestroyNotify)g_bytes_unref);
    Pending *p;
    while ((p = g_queue_pop_head(self->pending))) {
        g_weak_ref_clear(&p->owner);
        g_free(p);
    }
    g_queue_free(self->pending);
    g_free(self->address);
    G_OBJECT_CLASS(hv_client_parent_class)->finalize(obj);
}

static void hv_client_init(HvClient *self)
{
    self->outgoing = g_queue_new();
    self->pending = g_queue_new();
    self->next_id = 1;
    self->backoff_ms = BACKOFF_FIRST_MS;
}

static void hv_client_class_init(HvClientClass *klass)
{
    G_OBJECT_CLASS(klass)->finalize = hv_client_finalize;
    signals[SIG_CONNECTION_CHANGED] =
        g_signal_new("connection-changed", HV_TYPE_CLIENT, G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                     G_TYPE_NONE, 1, G_TYPE_BOOLEAN);
    signals[SIG_EVENT] = g_signal_new("event", HV_TYPE_CLIENT, G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                                      NULL, G_TYPE_NONE, 2, G_TYPE_STRING, JSON_TYPE_OBJECT);
}
