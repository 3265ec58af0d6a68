/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit test of hv-manager's field checks (uivm/manager/validate.c). */
#include "validate.h"

#include <stdio.h>
#include <string.h>

static int failures;

static void expect(const char *what, char *msg, const char *want_substring)
{
    gboolean ok = want_substring ? (msg && strstr(msg, want_substring)) : msg == NULL;
    printf("%s: %s (%s)\n", ok ? "ok" : "FAIL", what, msg ? msg : "no message");
    if (!ok)
        failures++;
    g_free(msg);
}

int main(void)
{
    const char *existing[] = {"work", "play", NULL};
    expect("empty name", hv_check_vm_name("", existing), "Enter a name");
    expect("duplicate name", hv_check_vm_name("work", existing), "already exists");
    expect("bad character", hv_check_vm_name("my vm", existing), "only letters");
    expect("leading dot", hv_check_vm_name(".x", existing), "start with a letter");
    char longname[80];
    memset(longname, 'a', 65);
    longname[65] = 0;
    expect("65 characters", hv_check_vm_name(longname, existing), "too long");
    longname[64] = 0;
    expect("64 characters", hv_check_vm_name(longname, existing), NULL);
    expect("good name", hv_check_vm_name("Work-2.test_x", existing), NULL);
    expect("no list", hv_check_vm_name("work", NULL), NULL);

    guint64 eight_gib = 8ull << 30;
    expect("too little memory", hv_check_memory_mib(8, eight_gib), "at least 16 MiB");
    expect("more than the laptop", hv_check_memory_mib(8193, eight_gib), "only 8 GiB");
    expect("all of it", hv_check_memory_mib(8192, eight_gib), NULL);
    expect("unknown host memory", hv_check_memory_mib(1 << 20, 0), NULL);

    expect("zero cpus", hv_check_cpus(0, 4), "at least one");
    expect("more cpus than host", hv_check_cpus(5, 4), "only 4 processors");
    expect("too many cpus", hv_check_cpus(65, 0), "At most 64");
    expect("cpus ok", hv_check_cpus(4, 4), NULL);

    expect("kernel missing", hv_check_host_path("kernel", "", TRUE), "Enter the path");
    expect("kernel relative", hv_check_host_path("kernel", "vmlinuz", TRUE), "absolute");
    expect("initrd optional", hv_check_host_path("initrd", "", FALSE), NULL);
    expect("kernel ok", hv_check_host_path("kernel", "/boot/vmlinuz", TRUE), NULL);
    expect("ISO from the store", hv_check_disk_entry("ISO", "debian.iso"), NULL);
    expect("ISO on the host", hv_check_disk_entry("ISO", "/srv/debian.iso"), NULL);
    expect("no ISO", hv_check_disk_entry("ISO", ""), NULL);
    expect("ISO in a folder", hv_check_disk_entry("ISO", "isos/debian.iso"), "image in hvd");
    expect("ISO ..", hv_check_disk_entry("ISO", "../x.iso"), "image in hvd");

    char *s = hv_format_size(1536ull << 20);
    expect("1.5 GiB", strcmp(s, "1.5 GiB") == 0 ? NULL : g_strdup(s), NULL);
    g_free(s);
    return failures ? 1 : 0;
}
