/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The main window: a header bar (new VM, the Machines / USB switcher), a
 * "Reconnecting…" info bar while hvd is away, the VM list and the details
 * of the selected VM. The list follows hvd's events, never a manual refresh.
 * kiosk: full screen with no close button, the header bar inside the window
 * (the UIVM, where hv-manager is all there is on the screen).
 */
#pragma once

#include "session.h"

GtkWidget *main_window_new(GtkApplication *app, HvClient *client, gboolean kiosk);
