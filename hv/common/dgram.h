/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One datagram on a SOCK_SEQPACKET socket, with file descriptors passed as
 * SCM_RIGHTS: the display protocol and hv-switch's control socket.
 */
#ifndef HV_COMMON_DGRAM_H
#define HV_COMMON_DGRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Sends msg (len bytes) with fd attached when fd >= 0; flags as for
 * sendmsg (MSG_NOSIGNAL is always added). Returns what sendmsg returns. */
ssize_t dgram_send(int sock, const void *msg, size_t len, int fd, int flags);

/*
 * Receives one datagram into buf, without blocking. The descriptors that
 * came with it: the first max_fds are stored in fds[] (*nfds of them), any
 * more are closed. When the datagram or its descriptors did not fit,
 * *truncated is set and the descriptors are closed (*nfds = 0). Returns
 * recvmsg's result: the length, 0 at the end, -1 with errno.
 */
ssize_t dgram_recv(int sock, void *buf, size_t len, int *fds, int max_fds, int *nfds,
                   bool *truncated);

#endif
