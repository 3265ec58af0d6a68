// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The VFIO container of a VM (Documentation/driver-api/vfio.rst): one type1
 * IOMMU context shared by every passed-through device's group, with all of
 * guest RAM mapped at its guest-physical address, so the device's DMA
 * addresses are the guest's. Mapping pins the RAM (it is all allocated).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/vfio.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "log.h"
#include "vfio.h"
#include "vm.h"

int vfio_container_open(struct vm *vm)
{
    int fd = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        log_err("cannot open /dev/vfio/vfio: %s (is the vfio module loaded?)", strerror(errno));
        return -1;
    }
    if (ioctl(fd, VFIO_GET_API_VERSION) != VFIO_API_VERSION) {
        log_err("/dev/vfio/vfio speaks another VFIO API version than %d", VFIO_API_VERSION);
        close(fd);
        return -1;
    }
    if (ioctl(fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) <= 0 &&
        ioctl(fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU) <= 0) {
        log_err("VFIO has no type1 IOMMU backend: modprobe vfio_iommu_type1");
        close(fd);
        return -1;
    }
    vm->vfio->container_fd = fd;
    return 0;
}

int vfio_group_attach(struct vm *vm, int group, int *group_fd)
{
    char path[64];
    struct vfio_group_status st = {.argsz = sizeof(st)};
    int cfd = vm->vfio->container_fd;

    snprintf(path, sizeof(path), "/dev/vfio/%d", group);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        log_err("cannot open %s: %s%s", path, strerror(errno),
                errno == EBUSY ? " (another process, maybe another VM, has this IOMMU group)" : "");
        return -1;
    }
    if (ioctl(fd, VFIO_GROUP_GET_STATUS, &st) < 0 || !(st.flags & VFIO_GROUP_FLAGS_VIABLE)) {
        log_err("IOMMU group %d is not viable: every device in it must be on vfio-pci or "
                "unbound (hv-pci check says which is not)",
                group);
        close(fd);
        return -1;
    }
    if (!(st.flags & VFIO_GROUP_FLAGS_CONTAINER_SET) &&
        ioctl(fd, VFIO_GROUP_SET_CONTAINER, &cfd) < 0) {
        log_err("cannot add IOMMU group %d to the VFIO container: %s", group, strerror(errno));
        close(fd);
        return -1;
    }
    /* The IOMMU model is chosen once a first group is in the container. */
    if (!vm->vfio->iommu_set) {
        unsigned long type = ioctl(cfd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) > 0
                                 ? VFIO_TYPE1v2_IOMMU
                                 : VFIO_TYPE1_IOMMU;
        if (ioctl(cfd, VFIO_SET_IOMMU, type) < 0) {
            log_err("cannot set the VFIO IOMMU type: %s", strerror(errno));
            close(fd);
            return -1;
        }
        vm->vfio->iommu_set = true;
    }
    *group_fd = fd;
    return 0;
}

int vfio_dma_map_ram(struct vm *vm)
{
    for (unsigned i = 0; i < vm->mem.nr_regions; i++) {
        const struct mem_region *r = &vm->mem.regions[i];
        struct vfio_iommu_type1_dma_map map = {
            .argsz = sizeof(map),
            .flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
            .vaddr = (uint64_t)(uintptr_t)r->hva,
            .iova = r->gpa,
            .size = r->size,
        };
        if (ioctl(vm->vfio->container_fd, VFIO_IOMMU_MAP_DMA, &map) < 0) {
            log_err("cannot map guest RAM at 0x%llx (%llu MiB) for device DMA: %s%s",
                    (unsigned long long)r->gpa, (unsigned long long)(r->size >> 20),
                    strerror(errno),
                    errno == ENOMEM ? " (pinned memory limit: run hv-vmm as root, it drops "
                                      "to --user after this)"
                                    : "");
            return -1;
        }
    }
    return 0;
}
