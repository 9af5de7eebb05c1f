/* SPDX-License-Identifier: MIT */
/*
 * localswap.c - keeping the daemon out of its own swap's way
 *
 * Most compressed RAM devices are the swap of the very machine they live
 * on. For a block device served from userspace that is a trap. The kernel
 * runs short of memory and swaps a page out to /dev/nbd0; nbdkit reads
 * the request and the plugin allocates to store the page; that
 * allocation finds no free page and enters direct reclaim; reclaim wants
 * to write dirty pages or swap out more anonymous pages, to /dev/nbd0,
 * and waits for the very thread that is waiting for it. The guest of
 * `make check-vm local-swap` without the measures here shows it: the
 * machine goes quiet, every CPU idle, and nothing ever completes.
 * Nothing in the daemon is wrong in itself; the cycle runs through the
 * kernel.
 *
 * What the kernel offers (Linux 5.6 and later) is prctl(PR_SET_IO_FLUSHER):
 * a thread so marked is treated like the kernel's own I/O workers (it
 * gets PF_MEMALLOC_NOIO and PF_LOCAL_THROTTLE). Its allocations never
 * start I/O to reclaim memory, so they cannot wait on the device the
 * thread serves, and it is not throttled for dirtying pages as if it
 * were an ordinary writer. It is per thread, it is inherited by threads
 * created afterwards, and it needs CAP_SYS_RESOURCE. (The other half, a
 * daemon whose own pages could be swapped out to itself, is closed by
 * locking them: nbdkit --swap calls mlockall; see the man page.)
 *
 * What this file does: localswap_thread() sets the flag on the calling
 * thread the first time it runs there, and remembers that in a
 * thread-local flag, so it costs one test per request afterwards. The
 * plugin calls it at the top of every request callback (nbdkit's worker
 * threads are nbdkit's own, so the first request is the first chance),
 * and the shrinker, writeback and background threads call it as they
 * start. The first refusal is logged once, naming the capability, and
 * localswap_status() then gives the words the plugin puts into its
 * sd_notify STATUS= line: "not safe as local swap". The daemon still
 * serves: as a disk for another machine, or as swap with memory to
 * spare, it works without the flag.
 *
 * The other half is the daemon's own memory. Its anonymous pages (heap,
 * stacks, the pool) are swappable like any other process's, and a daemon
 * that must swap in one of its own pages to serve a swap-in waits on
 * itself. So its memory is locked. nbdkit --swap does it with
 * mlockall(MCL_CURRENT | MCL_FUTURE), which faults in and locks every
 * mapping at once: nbdkit 1.32 has a 192 MiB .bss (readelf -S
 * /usr/bin/nbdkit) that is never touched otherwise, so --swap locks
 * about 200 MiB before the first request and is killed by the OOM killer
 * at once in a small machine. mlock=onfault (localswap_lock()) adds
 * MCL_ONFAULT (Linux 4.4): a page is locked when it is first touched, so
 * what is locked is what the daemon really uses, and the untouched .bss,
 * thread stacks and malloc arenas cost nothing.
 */

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#include "localswap.h"

#ifndef MCL_ONFAULT
#define MCL_ONFAULT 4 /* Linux 4.4 */
#endif
#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57 /* Linux 5.6, <linux/prctl.h> */
#endif

static _Thread_local bool thread_done;
static atomic_int refused_errno; /* 0: no refusal seen */
static atomic_flag warned = ATOMIC_FLAG_INIT;
static void (*log_fn)(const char *msg);

void localswap_set_log(void (*log)(const char *msg))
{
	log_fn = log;
}

void localswap_thread(void)
{
	char msg[256];
	int e;

	if (thread_done)
		return;
	thread_done = true;
	if (prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0) == 0)
		return;
	e = errno;
	atomic_store(&refused_errno, e);
	if (atomic_flag_test_and_set(&warned))
		return;
	snprintf(msg, sizeof(msg),
		 "prctl(PR_SET_IO_FLUSHER): %s%s: not safe as local swap "
		 "(the device's own I/O may wait on memory reclaim that "
		 "waits on the device)",
		 strerror(e),
		 e == EPERM ? " (needs CAP_SYS_RESOURCE)"
		 : e == EINVAL ? " (needs Linux 5.6 or later)" : "");
	if (log_fn)
		log_fn(msg);
	else
		fprintf(stderr, "zramd: %s\n", msg);
}

bool localswap_safe(void)
{
	return atomic_load(&refused_errno) == 0;
}

const char *localswap_status(void)
{
	switch (atomic_load(&refused_errno)) {
	case 0:
		return "";
	case EPERM:
		return "not safe as local swap (no CAP_SYS_RESOURCE)";
	case EINVAL:
		return "not safe as local swap (no PR_SET_IO_FLUSHER before Linux 5.6)";
	default:
		return "not safe as local swap (PR_SET_IO_FLUSHER failed)";
	}
}

int localswap_lock(void)
{
	return mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) ? -errno : 0;
}
