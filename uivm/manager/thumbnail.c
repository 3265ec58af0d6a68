/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Live VM thumbnails; see thumbnail.h. */
#include "thumbnail.h"

#include "i18n.h"

#include <string.h>

#define THUMB_REFRESH_MS 2000

typedef struct {
    gboolean live;      /* running or paused: refreshed on each tick */
    gboolean in_flight; /* a vm.screenshot is on its way */
    guint generation;   /* bumped when the VM stops: older replies are stale */
    GdkPixbuf *pix;
    char *problem;
} Entry;

struct _HvThumbs {
    GObject parent;
    HvClient *client;
    GtkWidget *shown;
    GHashTable *vms; /* name → Entry */
    guint timer;
};

G_DEFINE_TYPE(HvThumbs, hv_thumbs, G_TYPE_OBJECT)

enum { SIG_UPDATED, N_SIGNALS };
static guint signals[N_SIGNALS];

static void entry_free(gpointer data)
{
    Entry *e = data;
    g_clear_object(&e->pix);
    g_free(e->problem);
    g_free(e);
}

static void set_result(HvThumbs *self, const char *name, Entry *e, GdkPixbuf *pix,
                       const char *problem)
{
    g_clear_object(&e->pix);
    e->pix = pix ? g_object_ref(pix) : NULL;
    g_free(e->problem);
    e->problem = g_strdup(problem);
    g_signal_emit(self, signals[SIG_UPDATED], 0, name);
}

/* ---- requests ---- */

typedef struct {
    HvThumbs *self;
    char *name;
    guint generation;
} Request;

static GdkPixbuf *decode(JsonNode *result)
{
    JsonObject *o = JSON_NODE_HOLDS_OBJECT(result) ? json_node_get_object(result) : NULL;
    const char *b64 = o ? json_object_get_string_member_with_default(o, "data", NULL) : NULL;
    if (!b64)
        return NULL;
    gsize len = 0;
    guchar *bytes = g_base64_decode(b64, &len);
    GdkPixbufLoader *loader = gdk_pixbuf_loader_new();
    GdkPixbuf *pix = NULL;
    gboolean ok = gdk_pixbuf_loader_write(loader, bytes, len, NULL);
    if (gdk_pixbuf_loader_close(loader, NULL) && ok && gdk_pixbuf_loader_get_pixbuf(loader))
        pix = g_object_ref(gdk_pixbuf_loader_get_pixbuf(loader));
    g_object_unref(loader);
    g_free(bytes);
    return pix;
}

static const char *problem_of(const HvError *error)
{
    if (g_strcmp0(error->code, "no-display") == 0)
        return _("This virtual machine has no display");
    if (g_strcmp0(error->code, "no-switch") == 0)
        return _("This virtual machine has no display here: the screen switcher (hv-switch) is "
                 "not running");
    if (g_strcmp0(error->code, "unknown-method") == 0)
        return _("This hvd cannot take screenshots");
    return error->message;
}

static void screenshot_done(JsonNode *result, const HvError *error, gpointer data)
{
    Request *rq = data;
    Entry *e = g_hash_table_lookup(rq->self->vms, rq->name);
    if (e && e->generation == rq->generation) {
        e->in_flight = FALSE;
        if (!error) {
            GdkPixbuf *pix = decode(result);
            set_result(rq->self, rq->name, e, pix, pix ? NULL : _("The screenshot is damaged"));
            g_clear_object(&pix);
        } else if (g_strcmp0(error->code, "disconnected") != 0) {
            set_result(rq->self, rq->name, e, NULL, problem_of(error));
        }
    } else if (e) {
        e->in_flight = FALSE; /* the VM stopped (and maybe started again) meanwhile */
    }
    g_free(rq->name);
    g_free(rq);
}

static gboolean on_screen(HvThumbs *self)
{
    if (!self->shown || !gtk_widget_get_mapped(self->shown))
        return FALSE;
    GdkWindow *w = gtk_widget_get_window(gtk_widget_get_toplevel(self->shown));
    return w &&
           !(gdk_window_get_state(w) & (GDK_WINDOW_STATE_ICONIFIED | GDK_WINDOW_STATE_WITHDRAWN));
}

static void request(HvThumbs *self, const char *name, Entry *e)
{
    if (!self->client || e->in_flight || !e->live || !hv_client_is_connected(self->client) ||
        !on_screen(self))
        return;
    JsonObject *p = json_object_new();
    json_object_set_string_member(p, "name", name);
    json_object_set_int_member(p, "max_width", HV_THUMB_W);
    json_object_set_int_member(p, "max_height", HV_THUMB_H);
    Request *rq = g_new0(Request, 1);
    rq->self = self;
    rq->name = g_strdup(name);
    rq->generation = e->generation;
    e->in_flight = TRUE;
    hv_client_call(self->client, "vm.screenshot", p, G_OBJECT(self), screenshot_done, rq);
}

static gboolean tick(gpointer data)
{
    HvThumbs *self = data;
    GHashTableIter it;
    gpointer name, e;
    g_hash_table_iter_init(&it, self->vms);
    while (g_hash_table_iter_next(&it, &name, &e))
        request(self, name, e);
    return G_SOURCE_CONTINUE;
}

/* Back on screen (or reconnected): no need to wait for the next tick. */
static void on_map(GtkWidget *w, HvThumbs *self)
{
    (void)w;
    tick(self);
}

/* ---- the API ---- */

void hv_thumbs_start(HvThumbs *self, HvClient *client, GtkWidget *shown)
{
    if (self->client)
        return;
    self->client = g_object_ref(client);
    self->shown = shown;
    g_object_add_weak_pointer(G_OBJECT(shown), (gpointer *)&self->shown);
    g_signal_connect_object(shown, "map", G_CALLBACK(on_map), self, 0);
    self->timer = g_timeout_add(THUMB_REFRESH_MS, tick, self);
}

void hv_thumbs_watch(HvThumbs *self, const char *name, const char *state)
{
    gboolean live = g_strcmp0(state, "running") == 0 || g_strcmp0(state, "paused") == 0 ||
                    g_strcmp0(state, "shutting-down") == 0;
    Entry *e = g_hash_table_lookup(self->vms, name);
    if (!e) {
        e = g_new0(Entry, 1);
        g_hash_table_insert(self->vms, g_strdup(name), e);
    }
    gboolean was_live = e->live;
    e->live = live;
    if (!live && was_live) {
        e->generation++; /* a reply still on its way is of the run that ended */
        if (e->pix || e->problem)
            set_result(self, name, e, NULL, NULL);
    }
    if (live && !was_live)
        request(self, name, e);
}

void hv_thumbs_forget(HvThumbs *self, const char *name)
{
    g_hash_table_remove(self->vms, name);
}

GdkPixbuf *hv_thumbs_pixbuf(HvThumbs *self, const char *name)
{
    Entry *e = g_hash_table_lookup(self->vms, name);
    return e ? e->pix : NULL;
}

const char *hv_thumbs_problem(HvThumbs *self, const char *name)
{
    Entry *e = g_hash_table_lookup(self->vms, name);
    return e ? e->problem : NULL;
}

HvThumbs *hv_thumbs_get(void)
{
    static HvThumbs *one;
    if (!one)
        one = g_object_new(HV_TYPE_THUMBS, NULL);
    return one;
}

static void hv_thumbs_init(HvThumbs *self)
{
    self->vms = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, entry_free);
}

static void hv_thumbs_finalize(GObject *obj)
{
    HvThumbs *self = HV_THUMBS(obj);
    if (self->timer)
        g_source_remove(self->timer);
    if (self->shown)
        g_object_remove_weak_pointer(G_OBJECT(self->shown), (gpointer *)&self->shown);
    g_clear_object(&self->client);
    g_hash_table_unref(self->vms);
    G_OBJECT_CLASS(hv_thumbs_parent_class)->finalize(obj);
}

static void hv_thumbs_class_init(HvThumbsClass *klass)
{
    G_OBJECT_CLASS(klass)->finalize = hv_thumbs_finalize;
    signals[SIG_UPDATED] = g_signal_new("updated", HV_TYPE_THUMBS, G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                                        NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
}
