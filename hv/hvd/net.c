/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The NAT network "nat": bridge hvbr0 (10.77.0.1/24), one TAP per VM on it,
 * dnsmasq for DHCP and DNS, and an nftables masquerade to the uplink. Set up
 * on the first start of a VM with net=nat; left in place afterwards.
 */
#include "hvd.h"

#include "log.h"

#include <glib.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BRIDGE  "hvbr0"
#define SUBNET  "10.77.0.0/24"
#define GATEWAY "10.77.0.1"

static bool bridge_up(void)
{
    return if_nametoindex(BRIDGE) != 0;
}

char *net_tap_name(const struct hvd_vm *vm)
{
    uint32_t h = 2166136261u;
    for (const char *p = vm->def->name; *p; p++) {
        h ^= (uint8_t)*p;
        h *= 16777619u;
    }
    return g_strdup_printf("hvt%08x", h);
}

static int run_quiet(const char *const *argv, struct api_error *e)
{
    char *err = NULL;
    int rc = run_cmd(argv, NULL, &err);
    if (rc != 0 && e)
        api_fail(e, "internal", "Setting up the NAT network: '%s %s' failed: %s.", argv[0], argv[1],
                 err && *err ? err : "no message");
    free(err);
    return rc == 0 ? 0 : -1;
}

static int setup_bridge(struct hvd *d, struct api_error *e)
{
    if (bridge_up())
        return 0;
    const char *add[] = {"ip", "link", "add", BRIDGE, "type", "bridge", NULL};
    const char *addr[] = {"ip", "addr", "add", GATEWAY "/24", "dev", BRIDGE, NULL};
    const char *up[] = {"ip", "link", "set", BRIDGE, "up", NULL};
    if (run_quiet(add, e) < 0 || run_quiet(addr, e) < 0 || run_quiet(up, e) < 0)
        return -1;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_forward", "we");
    if (f) {
        fputs("1\n", f);
        fclose(f);
    }
    /* Masquerade what leaves the subnet by any interface but the bridge. */
    char *rules = g_strdup_printf("table ip hv {\n"
                                  " chain postrouting {\n"
                                  "  type nat hook postrouting priority 100;\n"
                                  "  ip saddr %s oifname != \"%s\" masquerade\n"
                                  " }\n"
                                  "}\n",
                                  SUBNET, BRIDGE);
    char *rules_path = g_strdup_printf("%s/nat.nft", d->run_dir);
    g_file_set_contents(rules_path, rules, -1, NULL);
    const char *nft_file[] = {"nft", "-f", rules_path, NULL};
    if (run_quiet(nft_file, NULL) < 0)
        log_warn("nft failed: VMs on the NAT network reach only the host");
    char *pid = g_strdup_printf("%s/dnsmasq.pid", d->run_dir);
    char *pidopt = g_strdup_printf("--pid-file=%s", pid);
    const char *dnsmasq[] = {"dnsmasq",
                             "--conf-file=/dev/null",
                             "--interface=" BRIDGE,
                             "--bind-interfaces",
                             "--except-interface=lo",
                             "--dhcp-range=10.77.0.10,10.77.0.250,12h",
                             pidopt,
                             NULL};
    if (run_quiet(dnsmasq, NULL) < 0)
        log_warn("dnsmasq failed: VMs on the NAT network get no DHCP");
    g_free(pid);
    g_free(pidopt);
    g_free(rules);
    g_free(rules_path);
    return 0;
}

/*
 * TAPs need /dev/net/tun. With systemd, kmod-static-nodes creates it and its
 * first open loads tun; without (a minimal host, the virtual laptop) nothing
 * does, so load the module, which makes devtmpfs create the node.
 */
static void ensure_tun(void)
{
    if (access("/dev/net/tun", F_OK) == 0)
        return;
    const char *modprobe[] = {"modprobe", "tun", NULL};
    if (run_quiet(modprobe, NULL) < 0)
        log_warn("/dev/net/tun is missing and 'modprobe tun' failed");
}

char *net_attach(struct hvd *d, struct hvd_vm *vm, struct api_error *e)
{
    ensure_tun();
    if (setup_bridge(d, e) < 0)
        return NULL;
    char *tap = net_tap_name(vm);
    const char *del[] = {"ip", "link", "del", tap, NULL};
    run_quiet(del, NULL);
    const char *add[] = {"ip", "tuntap", "add", "dev", tap, "mode", "tap", NULL};
    const char *master[] = {"ip", "link", "set", tap, "master", BRIDGE, "up", NULL};
    if (run_quiet(add, e) < 0 || run_quiet(master, e) < 0) {
        run_quiet(del, NULL);
        g_free(tap);
        return NULL;
    }
    return tap;
}

void net_detach(struct hvd *d, struct hvd_vm *vm)
{
    (void)d;
    if (!vm->tap)
        return;
    const char *del[] = {"ip", "link", "del", vm->tap, NULL};
    run_quiet(del, NULL);
    g_free(vm->tap);
    vm->tap = NULL;
}

struct json_object *net_list(struct hvd *d)
{
    struct json_object *n = json_object_new_object();
    json_object_object_add(n, "name", json_object_new_string("nat"));
    json_object_object_add(n, "bridge", json_object_new_string(BRIDGE));
    json_object_object_add(n, "subnet", json_object_new_string(SUBNET));
    json_object_object_add(n, "gateway", json_object_new_string(GATEWAY));
    json_object_object_add(n, "active", json_object_new_boolean(bridge_up()));
    struct json_object *vms = json_object_new_array();
    for (struct hvd_vm *vm = d->vms; vm; vm = vm->next)
        if (strcmp(vm->def->net, "nat") == 0)
            json_object_array_add(vms, json_object_new_string(vm->def->name));
    json_object_object_add(n, "vms", vms);
    struct json_object *list = json_object_new_array();
    json_object_array_add(list, n);
    struct json_object *r = json_object_new_object();
    json_object_object_add(r, "networks", list);
    return r;
}
