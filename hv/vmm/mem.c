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
    return guest_mem_init_split(mem, ram_size, MEM_LOW_RAM_MAX);
}

int guest_mem_init_split(struct guest_mem *mem, uint64_t ram_size, uint64_t low_max)
{
    memset(mem, 0, sizeof(*mem));
    mem->memfd = -1;
    if (ram_size == 0 || ram_size % (4 * KiB)) {
        log_err("guest memory size must be a positive multiple of 4 KiB");
        return -EINVAL;
    }

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

    void *base = mmap(NULL, ram_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
    if (base == MAP_FAILED) {
        int err = errno;
        log_err("cannot map %llu bytes of guest memory: %s", (unsigned long long)ram_size,
                strerror(err));
        close(fd);
        return -err;
    }
    /* Identical pages of guests (zero pages, the same kernel) are shared by KSM. */
    madvise(base, ram_size, MADV_MERGEABLE);

    mem->memfd = fd;
    mem->base = base;
    mem->size = ram_size;

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

int guest_mem_map_memfd(struct guest_mem *mem)
{
    if (!mem->file_mapped)
        return 0;
    if (mmap(mem->base, mem->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE | MAP_FIXED,
             mem->memfd, 0) == MAP_FAILED) {
        int err = errno;
        log_err("cannot map guest memory back onto its memfd: %s", strerror(err));
        return -err;
    }
    madvise(mem->base, mem->size, MADV_MERGEABLE);
    mem->file_mapped = false;
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
