/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The settings of one VM (memory, processors, OS type, colour, autostart,
 * kernel command line): vm.get, then vm.define with replace=true. hvd only
 * replaces the definition of a VM that is shut off; the dialog says so.
 */
#pragma once

#include "session.h"

void vm_settings_dialog_run(GtkWindow *parent, HvSession *session, const char *name);
