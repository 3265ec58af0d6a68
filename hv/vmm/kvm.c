/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "kvm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

int kvm_check_cap(int fd, long cap)
{
    int r = ioctl(fd, KVM_CHECK_EXTENSION, cap);
    return r < 0 ? 0 : r;
}

size_t kvm_vcpu_mmap_size(int kvm_fd)
{
    int r = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    return r < 0 ? 0 : (size_t)r;
}

/* A whole word of the flags line: "svm" but not "svm_lock". */
static bool has_word(const char *line, size_t len, const char *word)
{
    size_t wl = strlen(word);

    for (size_t i = 0; i + wl <= len; i++) {
        bool start = i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t' || line[i - 1] == ':';
        bool end = i + wl == len || line[i + wl] == ' ' || line[i + wl] == '\n';
        if (start && end && memcmp(line + i, word, wl) == 0)
            return true;
    }
    return false;
}

bool kvm_cpuinfo_has_virt(const char *cpuinfo)
{
    const char *p = cpuinfo;

    while (p && *p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (strncmp(p, "flags", 5) == 0 && (has_word(p, len, "vmx") || has_word(p, len, "svm")))
            return true;
        p = eol ? eol + 1 : NULL;
    }
    return false;
}

static char *read_text_file(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0)
            break;
        if (len + 1 == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf)
        buf[len] = '\0';
    return buf;
}

/*
 * A KVM without VMX/SVM underneath (e.g. the paravirtual kvm_pvm of cloud
 * VMs) opens and creates VMs, but a 64-bit Linux never comes up on it: refuse
 * early instead of hanging. HV_VMM_SKIP_CPU_CHECK=1 overrides for developers.
 */
static bool host_can_virtualise(void)
{
    const char *skip = getenv("HV_VMM_SKIP_CPU_CHECK");
    if (skip && strcmp(skip, "1") == 0)
        return true;
    char *info = read_text_file("/proc/cpuinfo");
    if (!info)
        return true; /* cannot tell: let KVM decide */
    bool ok = kvm_cpuinfo_has_virt(info);
    free(info);
    return ok;
}

int kvm_open(void)
{
    static const struct {
        long cap;
        const char *name;
    } needed[] = {
        {KVM_CAP_IRQCHIP, "in-kernel irqchip"},     {KVM_CAP_USER_MEMORY, "user memory"},
        {KVM_CAP_SET_TSS_ADDR, "TSS address"},      {KVM_CAP_PIT2, "in-kernel PIT"},
        {KVM_CAP_IRQ_ROUTING, "GSI routing"},       {KVM_CAP_IRQFD, "irqfd"},
        {KVM_CAP_IOEVENTFD, "ioeventfd"},           {KVM_CAP_EXT_CPUID, "CPUID"},
        {KVM_CAP_IMMEDIATE_EXIT, "immediate exit"}, {KVM_CAP_MP_STATE, "MP state"},
    };
    const char *path = getenv("HV_KVM_DEVICE");
    if (!path)
        path = "/dev/kvm";

    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        if (err == ENOENT)
            log_err("%s does not exist: this host has no KVM (load the kvm-intel or kvm-amd "
                    "module, and enable virtualisation in the firmware)",
                    path);
        else if (err == EACCES || err == EPERM)
            log_err("cannot open %s: permission denied (run as root or join the kvm group)", path);
        else
            log_err("cannot open %s: %s", path, strerror(err));
        return -1;
    }
    int version = ioctl(fd, KVM_GET_API_VERSION, 0);
    if (version != KVM_API_VERSION) {
        log_err("%s speaks KVM API version %d, hv-vmm needs %d", path, version, KVM_API_VERSION);
        close(fd);
        return -1;
    }
    for (size_t i = 0; i < ARRAY_SIZE(needed); i++) {
        if (!kvm_check_cap(fd, needed[i].cap)) {
            log_err("this KVM lacks a feature hv-vmm needs: %s", needed[i].name);
            close(fd);
            return -1;
        }
    }
    if (!host_can_virtualise()) {
        log_err("this host's KVM cannot run guests: the CPU shows neither vmx nor svm in "
                "/proc/cpuinfo (a paravirtual KVM, as in many cloud VMs, cannot boot a 64-bit "
                "kernel); run hv on hardware with VT-x or AMD-V, or in the virtual laptop");
        close(fd);
        return -1;
    }
    return fd;
}
