/* SPDX-License-Identifier: MIT */
/* Helpers shared by the unit tests. */
#ifndef ZRAMD_TEST_UTIL_H
#define ZRAMD_TEST_UTIL_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * Sanitizers keep shadow memory that grows with what the program touched,
 * and valgrind keeps its own, so RSS figures mean nothing under them: tests
 * make their RSS assertions only when TEST_RSS_CHECKS is true. It is false
 * in sanitizer builds and when TEST_NO_RSS is set (make check-valgrind).
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TEST_RSS_BUILD 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TEST_RSS_BUILD 0
#endif
#endif
#ifndef TEST_RSS_BUILD
#define TEST_RSS_BUILD 1
#endif
#define TEST_RSS_CHECKS (TEST_RSS_BUILD && !getenv("TEST_NO_RSS"))

/* The process's VmRSS in KiB, or -1. */
static inline long test_rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "VmRSS:", 6) == 0)
			kib = strtol(line + 6, NULL, 10);
	fclose(f);
	return kib;
}

/*
 * The seed of a randomized test: $TEST_SEED if set, else the time. The
 * caller prints it, so any failure can be replayed.
 */
static inline unsigned long test_seed(void)
{
	const char *s = getenv("TEST_SEED");

	return s ? strtoul(s, NULL, 0) : (unsigned long)time(NULL);
}

/* Runs @s with libcheck's normal output; exit status for main(). */
static inline int test_run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
