/* SPDX-License-Identifier: MIT */
/*
 * dump_params - print the plugin's key table, for tests/ops/test-config.sh
 *
 * One line per key: "name<TAB>syntax<TAB>default", the default empty if
 * the key has none. The test checks config/zramd.conf and the man pages
 * against it, so a key added to daemon/params.c without documentation,
 * or a changed default, fails `make check`.
 */
#include <stdio.h>

#include "params.h"

static void print_key(const char *name, const char *syntax, const char *def,
		      const char *help, void *arg)
{
	(void)help;
	(void)arg;
	printf("%s\t%s\t%s\n", name, syntax ? syntax : "", def ? def : "");
}

int main(void)
{
	params_for_each_key(print_key, NULL);
	return 0;
}
