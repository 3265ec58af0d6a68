/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "mem.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

int guest_mem_init(struct guest_mem *mem, uint64_t ram_size)
{
    return guest_mem_init_flags(mem, ram_size, MEM_LOW_RAM_MAX, 0);
}

int guest_mem_init_split(struct guest_mem *mem, uint64_t ram_size, uint64_t low_max)
{
    return guest_mem_init_flags(mem, ram_size, low_max, 0);
}

/* The whole of RAM as fresh zeroed memory at addr (NULL: anywhere), of the kind mem has. */
static void *map_ram(struct guest_mem *mem, void *addr)
{
    int fixed = addr ? MAP_FIXED : 0;
    void *p = mem->shared ? mmap(addr, mem->size, PROT_READ | PROT_WRITE,
                                 MAP_SHARED | MAP_NORESERVE | fixed, mem->memfd, 0)
                          : mmap(addr, mem->size, PROT_READ | PROT_WRITE,
                                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | fixed, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    /*
     * Identical pages of guests (zero pages, the same kernel) are shared by
     * KSM. KSM merges private anonymous pages only: on a shared memfd this
     * is accepted and does nothing (docs/memory.md).
     */
    if (mem->merge)
        madvise(p, mem->size, MADV_MERGEABLE);
    return p;
}

int guest_mem_init_flags(struct guest_mem *mem, uint64_t ram_size, uint64_t low_max, unsigned flags)
{
    memset(mem, 0, sizeof(*mem));
    mem->memfd = -1;
    if (ram_size == 0 || ram_size % (4 * KiB)) {
        log_err("guest memory size must be a positive multiple of 4 KiB");
        return -EINVAL;
    }
    mem->shared = flags & GUEST_MEM_SHARED;
    mem->merge = !(flags & GUEST_MEM_NOMERGE);
    mem->size = ram_size;

    if (mem->shared) {
        int fd = memfd_create("hv-guest-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0) {
            int err = errno;
            log_err("cannot create guest memory: %s", strerror(err));
            return -err;
        }
        if (ftruncate(fd, (off_t)ram_size) < 0) {
            int err = errno;
            log_err("cannot size guest memory to %llu bytes: %s", (unsigned long long)ram_size,
                    strerror(err));
            close(fd);
            return -err;
        }
        /* The guest's RAM never changes size: seal it so nothing can truncate it under us. */
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW);
        mem->memfd = fd;
    }
    void *base = map_ram(mem, NULL);
    if (!base) {
        int err = errno;
        log_err("cannot map %llu bytes of guest memory: %s", (unsigned long long)ram_size,
                strerror(err));
        if (mem->memfd >= 0)
            close(mem->memfd);
        memset(mem, 0, sizeof(*mem));
        mem->memfd = -1;
        return -err;
    }
    mem->base = base;

    uint64_t low = MIN(ram_size, MIN(low_max, MEM_LOW_RAM_MAX));
    mem->regions[0] = (struct mem_region){.gpa = 0, .size = low, .hva = mem->base};
    mem->nr_regions = 1;
    if (ram_size > low) {
        mem->regions[1] = (struct mem_region){
            .gpa = MEM_HIGH_RAM_BASE, .size = ram_size - low, .hva = mem->base + low};
        mem->nr_regions = 2;
    }
    return 0;
}

int guest_mem_drop_file_maps(struct guest_mem *mem)
{
    if (!mem->file_mapped)
        return 0;
    if (!map_ram(mem, mem->base)) {
        int err = errno;
        log_err("cannot map fresh guest memory over the save file: %s", strerror(err));
        return -err;
    }
    mem->file_mapped = false;
    return 0;
}

int guest_mem_discard(const struct guest_mem *mem, uint64_t off, uint64_t len)
{
    if (!range_within(off, len, mem->size) || off % (4 * KiB) || len % (4 * KiB))
        return -EINVAL;
    if (len == 0)
        return 0;
    if (mem->shared) {
        /* The pages belong to the memfd: punch them out of it (MADV_DONTNEED would not). */
        if (fallocate(mem->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
                      (off_t)len) < 0)
            return -errno;
        /* A page that maps a save file privately (--instant-on): drop our copy of it. */
        if (mem->file_mapped && madvise(mem->base + off, len, MADV_DONTNEED) < 0)
            return -errno;
        return 0;
    }
    /*
     * Private memory: the pages go back to the host at once and the next
     * access finds a zero page (or, where --instant-on maps the save file,
     * the file's page again).
     */
    if (madvise(mem->base + off, len, MADV_DONTNEED) < 0)
        return -errno;
    return 0;
}

void guest_mem_destroy(struct guest_mem *mem)
{
    if (mem->base)
        munmap(mem->base, mem->size);
    if (mem->memfd >= 0)
        close(mem->memfd);
    memset(mem, 0, sizeof(*mem));
    mem->memfd = -1;
}

int guest_mem_map_kvm(const struct guest_mem *mem, int vm_fd)
{
    for (unsigned i = 0; i < mem->nr_regions; i++) {
        const struct mem_region *r = &mem->regions[i];
        struct kvm_userspace_memory_region slot = {
            .slot = i,
            .guest_phys_addr = r->gpa,
            .memory_size = r->size,
            .userspace_addr = (uint64_t)(uintptr_t)r->hva,
        };
        if (ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0) {
            int err = errno;
            log_err("KVM_SET_USER_MEMORY_REGION for slot %u: %s", i, strerror(err));
            return -err;
        }
    }
    return 0;
}

void *guest_mem_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
    for (unsigned i = 0; i < mem->nr_regions; i++) {
        const struct mem_region *r = &mem->regions[i];
        if (gpa < r->gpa)
            continue;
        uint64_t off = gpa - r->gpa;
        if (range_within(off, len, r->size) && off < r->size)
            return r->hva + off;
    }
    return NULL;
}

int guest_mem_read(const struct guest_mem *mem, uint64_t gpa, void *buf, uint64_t len)
{
    const void *src = guest_mem_ptr(mem, gpa, len);

    if (!src)
        return -1;
    memcpy(buf, src, len);
    return 0;
}

int guest_mem_write(const struct guest_mem *mem, uint64_t gpa, const void *buf, uint64_t len)
{
    void *dst = guest_mem_ptr(mem, gpa, len);

    if (!dst)
        return -1;
    memcpy(dst, buf, len);
    return 0;
}
