/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "xlate.h"

#include "usbip.h"

#include <errno.h>

int xlate_transfer_status(enum libusb_transfer_status st, int short_not_ok, int short_read)
{
    switch (st) {
    case LIBUSB_TRANSFER_COMPLETED:
        return short_not_ok && short_read ? -EREMOTEIO : 0;
    case LIBUSB_TRANSFER_ERROR:
        /* libusb reports a short read with SHORT_NOT_OK as an error too. */
        return short_not_ok && short_read ? -EREMOTEIO : -EPROTO;
    case LIBUSB_TRANSFER_TIMED_OUT:
        return -ETIMEDOUT;
    case LIBUSB_TRANSFER_CANCELLED:
        return -ECONNRESET;
    case LIBUSB_TRANSFER_STALL:
        return -EPIPE;
    case LIBUSB_TRANSFER_NO_DEVICE:
        return -ENODEV;
    case LIBUSB_TRANSFER_OVERFLOW:
        return -EOVERFLOW;
    }
    return -EPROTO;
}

int xlate_error(int e)
{
    switch (e) {
    case LIBUSB_SUCCESS:
        return 0;
    case LIBUSB_ERROR_IO:
        return -EPROTO;
    case LIBUSB_ERROR_INVALID_PARAM:
        return -EINVAL;
    case LIBUSB_ERROR_ACCESS:
        return -EACCES;
    case LIBUSB_ERROR_NO_DEVICE:
        return -ENODEV;
    case LIBUSB_ERROR_NOT_FOUND:
        return -ENOENT;
    case LIBUSB_ERROR_BUSY:
        return -EBUSY;
    case LIBUSB_ERROR_TIMEOUT:
        return -ETIMEDOUT;
    case LIBUSB_ERROR_OVERFLOW:
        return -EOVERFLOW;
    case LIBUSB_ERROR_PIPE:
        return -EPIPE;
    case LIBUSB_ERROR_INTERRUPTED:
        return -EINTR;
    case LIBUSB_ERROR_NO_MEM:
        return -ENOMEM;
    case LIBUSB_ERROR_NOT_SUPPORTED:
        return -EOPNOTSUPP;
    }
    return -EPROTO;
}

uint32_t xlate_speed(int s)
{
    switch (s) {
    case LIBUSB_SPEED_LOW:
        return 1;
    case LIBUSB_SPEED_FULL:
        return 2;
    case LIBUSB_SPEED_HIGH:
        return 3;
    case LIBUSB_SPEED_SUPER:
        return 5;
    case LIBUSB_SPEED_SUPER_PLUS:
        return 6;
    }
    return 0;
}

uint8_t xlate_flags(uint32_t urb_flags, int dir_in)
{
    uint8_t f = 0;

    if ((urb_flags & USBIP_URB_SHORT_NOT_OK) && dir_in)
        f |= LIBUSB_TRANSFER_SHORT_NOT_OK;
    if ((urb_flags & USBIP_URB_ZERO_PACKET) && !dir_in)
        f |= LIBUSB_TRANSFER_ADD_ZERO_PACKET;
    return f;
}
