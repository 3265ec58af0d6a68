// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * One NVMe I/O command through Linux's passthrough ioctl, run in the test
 * guest (tests/vmm/test_nvme.py): the status the controller answered.
 *
 *   nvme_passthru DEV OPCODE NSID SLBA NLB [admin]
 *
 * With "admin" (DEV the controller, /dev/nvmeN) the command goes to the admin
 * queue with 4 KiB of data and CDW10 = SLBA: Linux checks the NSID of an I/O
 * command against the namespace node itself, an Identify's reaches the
 * controller.
 * NLB is 0-based as in the command (0: one block); the data buffer is
 * (NLB + 1) * 512 bytes of 0x5a for a write. Prints
 * "status 0xSSSS result 0xRRRRRRRR" (status: what the ioctl returned, the
 * completion's status field with DNR as bit 14; negative: an errno).
 */
#include <fcntl.h>
#include <linux/nvme_ioctl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    bool admin = argc == 7 && strcmp(argv[6], "admin") == 0;
    if (argc != 6 && !admin) {
        fprintf(stderr, "usage: nvme_passthru DEV OPCODE NSID SLBA NLB [admin]\n");
        return 2;
    }
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) {
        perror(argv[1]);
        return 1;
    }
    unsigned opcode = (unsigned)strtoul(argv[2], NULL, 0);
    uint64_t slba = strtoull(argv[4], NULL, 0);
    unsigned nlb = (unsigned)strtoul(argv[5], NULL, 0) & 0xffff;
    uint32_t len = admin ? 4096 : (opcode == 1 || opcode == 2) ? (nlb + 1) * 512 : 0;
    void *buf = NULL;
    if (len && posix_memalign(&buf, 4096, len) != 0)
        return 1;
    if (buf)
        memset(buf, 0x5a, len);
    struct nvme_passthru_cmd cmd = {
        .opcode = (uint8_t)opcode,
        .nsid = (uint32_t)strtoul(argv[3], NULL, 0),
        .addr = (uint64_t)(uintptr_t)buf,
        .data_len = len,
        .cdw10 = (uint32_t)slba,
        .cdw11 = (uint32_t)(slba >> 32),
        .cdw12 = nlb,
        .timeout_ms = 10000,
    };
    int ret = ioctl(fd, admin ? NVME_IOCTL_ADMIN_CMD : NVME_IOCTL_IO_CMD, &cmd);
    printf("status 0x%04x result 0x%08x\n", ret < 0 ? 0xffff : (unsigned)ret, cmd.result);
    free(buf);
    close(fd);
    return 0;
}
