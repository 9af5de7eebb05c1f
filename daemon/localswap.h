/* SPDX-License-Identifier: MIT */
/*
 * localswap.h - what makes the daemon safe as its own machine's swap
 *
 * See localswap.c for the deadlock and what the kernel offers against it.
 */
#ifndef ZRAMD_LOCALSWAP_H
#define ZRAMD_LOCALSWAP_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Set PR_SET_IO_FLUSHER on the calling thread, once per thread (later
 * calls on the same thread return at once, so it can sit at the top of
 * every request callback). The first thread that finds it refused
 * (EPERM: no CAP_SYS_RESOURCE; EINVAL: a kernel before 5.6) logs that
 * once through the function given to localswap_set_log().
 */
void localswap_thread(void);

/* Where the one warning goes (NULL: stderr). Call before any thread runs. */
void localswap_set_log(void (*log)(const char *msg));

/*
 * False once any thread was refused PR_SET_IO_FLUSHER: the device is
 * not safe as local swap. True while no attempt failed.
 */
bool localswap_safe(void);

/* "" if safe, else "not safe as local swap (...)" for STATUS= lines. */
const char *localswap_status(void);

/*
 * mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT): every page of the
 * process stays in RAM once touched, and untouched reservations (nbdkit's
 * .bss, thread stacks, malloc arenas) cost nothing. Returns 0 or -errno.
 */
int localswap_lock(void);

#endif
