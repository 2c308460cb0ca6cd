/* Reading one "suites" entry of a sweep config (format in config.h).
 * Private to harness/measure/config*.c. */
#ifndef ATTN_CONFIG_SUITE_H
#define ATTN_CONFIG_SUITE_H

#include "config_json.h"

/* Reads and validates the entry object o at *w into *s; lists the entry
 * leaves out get their defaults (threads: the config's). On error *s may be
 * partly filled: cfg_suite_free releases it. */
int cfg_suite_parse(const cfg_where *w, const cJSON *o, const cfg_config *cfg, cfg_suite *s);

void cfg_suite_free(cfg_suite *s);

#endif
