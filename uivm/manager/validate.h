/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Checks of what a person types into the create assistant and the settings
 * dialog, before anything is sent to hvd. Each returns NULL when the value
 * is fine, else a translated sentence for the inline message (g_free it).
 * The rules are hvd's (hv/hvd/vmdef.c), checked early for a clear message.
 */
#pragma once

#include <glib.h>

#define HV_NAME_MAX       64
#define HV_MIN_MEMORY_MIB 16
#define HV_MAX_CPUS       64

/* existing: the names of the VMs already defined (NULL-terminated, may be NULL). */
char *hv_check_vm_name(const char *name, const char *const *existing);

/* memory_total: the laptop's memory in bytes from host.info (0 if unknown). */
char *hv_check_memory_mib(guint64 mib, guint64 memory_total);

char *hv_check_cpus(guint cpus, guint host_cpus);

/* A path on the host: required ones must be given; all must be absolute. */
char *hv_check_host_path(const char *what, const char *path, gboolean required);

/*
 * A disk to attach: the name of an image in hvd's store (all the UIVM may
 * give), or an absolute path on the host (hvd takes it from local clients).
 */
char *hv_check_disk_entry(const char *what, const char *entry);

/* "1.5 GiB", "512 MiB" for a number of bytes. */
char *hv_format_size(guint64 bytes);
