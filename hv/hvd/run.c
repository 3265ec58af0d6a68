/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Running helper programs (qemu-img, ip, nft, dnsmasq) and capturing their output. */
#include "hvd.h"

#include <glib.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

int run_cmd(const char *const *argv, char **out, char **errout)
{
    char *o = NULL, *e = NULL;
    int status = 0;
    GError *gerr = NULL;

    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &o, &e, &status,
                      &gerr)) {
        if (errout)
            *errout = strdup(gerr->message);
        g_error_free(gerr);
        return -1;
    }
    if (out)
        *out = strdup(o ? o : "");
    if (errout) {
        *errout = strdup(e ? g_strstrip(e) : "");
    }
    g_free(o);
    g_free(e);
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}
