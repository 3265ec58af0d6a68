/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The pane beside the VM list: the selected VM's thumbnail (vm.screenshot,
 * or a placeholder when it has no display), its facts, and the actions
 * (start, shut down, force off, pause/resume, switch to, settings, delete).
 */
#pragma once

#include "session.h"

#include <json-glib/json-glib.h>

GtkWidget *vm_details_new(HvSession *session);
/* summary: the selected VM's VMSUMMARY, or NULL when none is selected. */
void vm_details_show(GtkWidget *details, JsonObject *summary);
