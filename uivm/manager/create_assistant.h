/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The "New Virtual Machine" assistant: name, OS type and colour; memory and
 * processors; storage (a new disk, an existing image or none); boot (kernel,
 * initrd, command line, installer ISO); network; a summary; then the work
 * (disk.create, vm.define) with a progress bar. Every field is checked as it
 * is typed (validate.h) and a page with a bad field cannot be left, so an
 * invalid request never reaches hvd.
 */
#pragma once

#include "session.h"

void create_assistant_run(GtkWindow *parent, HvSession *session);
