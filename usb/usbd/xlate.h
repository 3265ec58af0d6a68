/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libusb results to what a USB/IP client expects (Linux URB status, speeds). */
#ifndef HV_USB_XLATE_H
#define HV_USB_XLATE_H

#include <libusb.h>
#include <stdint.h>

/* A transfer's completion status as a Linux URB status (0 or -errno). */
int xlate_transfer_status(enum libusb_transfer_status st, int short_not_ok, int short_read);
/* A libusb_error from a synchronous call or a submit as -errno. */
int xlate_error(int libusb_err);
/* libusb speed to Linux enum usb_device_speed (what vhci's attach wants). */
uint32_t xlate_speed(int libusb_speed);
/* Linux URB transfer_flags to libusb transfer flags. */
uint8_t xlate_flags(uint32_t urb_flags, int dir_in);

#endif
