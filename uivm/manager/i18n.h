/* SPDX-License-Identifier: GPL-2.0-or-later */
/* gettext for hv-manager: _() translates, N_() marks for later translation. */
#pragma once

#include <glib/gi18n.h>

#define HV_GETTEXT_PACKAGE "hv-manager"
