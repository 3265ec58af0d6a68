/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Who a display producer is. A producer running as root or as hv-switch's
 * own user is trusted to say so in its HELLO (a developer's hv-vmm, the
 * tests). Any other user is a VM's hv-vmm started by hvd, which leaves a
 * record for that user in the "displays" folder beside the producer socket:
 * the record, not the HELLO, gives the name, colour, slot and UIVM flag, so
 * that a compromised hv-vmm cannot pass itself off as the UIVM or as another
 * VM (docs/switch.md, "Who a producer is").
 *
 * A record is text, one "key value" per line:
 *   name NAME       1..31 printable ASCII characters
 *   colour RRGGBB
 *   slot N          0..9, 0 = the first free one
 *   uivm yes|no
 */
#ifndef HV_SWITCH_PRODUCER_H
#define HV_SWITCH_PRODUCER_H

#include <stddef.h>

#include "proto.h"

#define PRODUCER_RECORDS_DIR "displays"
#define PRODUCER_RECORD_MAX  512 /* bytes: a record is a few short lines */

/*
 * Parses a record into h's name, colour, slot and flags (type and version
 * untouched). Every key must be there once; anything else is an error.
 * 0, or -1 with the reason in err.
 */
int producer_record_parse(const char *text, size_t len, struct disp_hello *h, char *err,
                          size_t errlen);

#endif
