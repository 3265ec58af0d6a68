/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Field checks for the create assistant and the settings dialog; see validate.h. */
#include "validate.h"

#include "i18n.h"

#include <string.h>

char *hv_check_vm_name(const char *name, const char *const *existing)
{
    size_t n = strlen(name);
    if (n == 0)
        return g_strdup(_("Enter a name for the virtual machine."));
    if (n > HV_NAME_MAX)
        return g_strdup_printf(_("The name is too long: at most %d characters."), HV_NAME_MAX);
    if (!g_ascii_isalnum(name[0]))
        return g_strdup(_("The name must start with a letter or a digit."));
    for (size_t i = 0; i < n; i++) {
        if (!g_ascii_isalnum(name[i]) && !strchr("._-", name[i]))
            return g_strdup(
                _("The name may contain only letters, digits, dots, hyphens and underscores."));
    }
    for (size_t i = 0; existing && existing[i]; i++) {
        if (strcmp(existing[i], name) == 0)
            return g_strdup_printf(_("A virtual machine named “%s” already exists."), name);
    }
    return NULL;
}

char *hv_check_memory_mib(guint64 mib, guint64 memory_total)
{
    if (mib < HV_MIN_MEMORY_MIB)
        return g_strdup_printf(_("A virtual machine needs at least %d MiB of memory."),
                               HV_MIN_MEMORY_MIB);
    if (memory_total > 0 && mib * 1024 * 1024 > memory_total) {
        char *have = hv_format_size(memory_total);
        char *msg = g_strdup_printf(_("This laptop has only %s of memory."), have);
        g_free(have);
        return msg;
    }
    return NULL;
}

char *hv_check_cpus(guint cpus, guint host_cpus)
{
    if (cpus < 1)
        return g_strdup(_("A virtual machine needs at least one processor."));
    if (cpus > HV_MAX_CPUS)
        return g_strdup_printf(_("At most %d processors."), HV_MAX_CPUS);
    if (host_cpus > 0 && cpus > host_cpus)
        return g_strdup_printf(g_dngettext(NULL, "This laptop has only %u processor.",
                                           "This laptop has only %u processors.", host_cpus),
                               host_cpus);
    return NULL;
}

char *hv_check_host_path(const char *what, const char *path, gboolean required)
{
    if (!path || !*path) {
        if (required)
            return g_strdup_printf(_("Enter the path of the %s on the host."), what);
        return NULL;
    }
    if (path[0] != '/')
        return g_strdup_printf(_("The %s must be an absolute path (starting with /)."), what);
    return NULL;
}

char *hv_check_disk_entry(const char *what, const char *entry)
{
    if (!entry || !*entry || entry[0] == '/')
        return NULL;
    if (strlen(entry) > HV_NAME_MAX || !g_ascii_isalnum(entry[0]) ||
        strspn(entry, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
            strlen(entry))
        return g_strdup_printf(
            _("The %s must be the name of an image in hvd's store or an absolute path."), what);
    return NULL;
}

char *hv_format_size(guint64 bytes)
{
    const guint64 gib = 1024ull * 1024 * 1024;
    if (bytes >= gib && bytes % gib == 0)
        return g_strdup_printf(_("%.0f GiB"), (double)(bytes / gib));
    if (bytes >= gib)
        return g_strdup_printf(_("%.1f GiB"), (double)bytes / (double)gib);
    return g_strdup_printf(_("%.0f MiB"), (double)(bytes / (1024 * 1024)));
}
