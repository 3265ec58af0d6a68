/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The USB page: the laptop's USB devices with assign/unassign, and the
 * auto-assign rules. It uses usb.list, usb.attach, usb.detach and usb.rules
 * (hvd fronting hv-usbd, docs/usb.md); while hvd answers unknown-method it
 * shows "USB service not available".
 */
#pragma once

#include "session.h"

GtkWidget *usb_page_new(HvSession *session);
/* Asks hvd again (on connect, on showing the page). */
void usb_page_refresh(GtkWidget *page);
