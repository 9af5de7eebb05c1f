/* SPDX-License-Identifier: MIT */
/*
 * stopconn.c - on SIGTERM/SIGINT, end the clients' connections before
 * nbdkit starts refusing their requests
 *
 * Why. nbdkit (1.32, Debian 12) handles SIGTERM by setting its quit flag
 * and then waiting for every connection to end. A connection ends only
 * after its thread has read one more request, and nbdkit answers that
 * request with ESHUTDOWN instead of passing it to the plugin
 * (server/protocol.c: "if (quit ...) error = ESHUTDOWN"). Two things
 * follow for the kernel's NBD client, which keeps its connection open
 * and idle between requests:
 *
 *   - the first request after the signal fails. The kernel reports
 *     "Other side returned error (108)" and fails it with EIO: ext4 aborts
 *     its journal, swap loses a page. No setting of the kernel client can
 *     hide an error the server sent.
 *   - an idle device does not stop at all until the kernel sends a
 *     request (systemd then kills nbdkit after TimeoutStopSec=, and
 *     .cleanup, with the snapshot of persist=, never runs).
 *
 * What. stopconn_install(), called from .after_fork (nbdkit sets its own
 * handlers just before), puts a handler in front of nbdkit's for SIGTERM
 * and SIGINT. The handler shuts down (shutdown(2), SHUT_RDWR) every
 * accepted connection of the process, and then calls nbdkit's handler.
 * The connection threads then read end-of-file, not a request, and end
 * without answering anything. A request the kernel had sent but not yet
 * seen answered stays pending in the kernel: with a dead-connection
 * timeout set (zramd-reconnect -t), it waits for the next connection and
 * is sent again on it. A request whose answer was lost was already
 * applied here, and applying it again writes the same bytes. So a
 * restart costs the kernel client a pause, and no error.
 *
 * Which sockets. An accepted connection is a stream socket that is not
 * listening (SO_ACCEPTCONN 0) and whose own address is that of a
 * listening socket of this process (-U PATH, -p PORT, or the socket
 * systemd passes): Linux gives an accepted unix socket the listener's
 * path, and an accepted TCP socket the listener's port. Everything else is left alone, notably the journal's stream
 * on stderr, whose own address is unnamed. The handler only calls
 * getsockopt, getsockname and shutdown, which POSIX lists as
 * async-signal-safe.
 *
 * Limits. Descriptors from 3 up to MAX_FDS (or RLIMIT_NOFILE if lower)
 * are looked at; nbdkit does not have more in practice. nbdkit's handler
 * is called as a plain handler (nbdkit installs it without SA_SIGINFO).
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stopconn.h"

#define MAX_FDS	      4096
#define MAX_LISTENERS 16

static struct sigaction old_term, old_int;
static int nfds = MAX_FDS;
static volatile sig_atomic_t dropped;

/*
 * Is a (an accepted socket's own address) the address listener b listens
 * on? A unix path must match exactly (an unnamed socket is nobody's); for
 * TCP the port and family do, since a listener on the wildcard address
 * hands out sockets with the specific address the client reached.
 */
static int same_addr(const struct sockaddr_storage *a, socklen_t alen,
		     const struct sockaddr_storage *b, socklen_t blen)
{
	if (a->ss_family != b->ss_family)
		return 0;
	switch (a->ss_family) {
	case AF_UNIX:
		if (alen <= sizeof(sa_family_t) || alen != blen)
			return 0;
		return memcmp(a, b, alen) == 0;
	case AF_INET:
		return ((const struct sockaddr_in *)a)->sin_port ==
		       ((const struct sockaddr_in *)b)->sin_port;
	case AF_INET6:
		return ((const struct sockaddr_in6 *)a)->sin6_port ==
		       ((const struct sockaddr_in6 *)b)->sin6_port;
	default:
		return 0;
	}
}

static int sockopt(int fd, int opt)
{
	int v = -1;
	socklen_t len = sizeof(v);

	if (getsockopt(fd, SOL_SOCKET, opt, &v, &len) < 0)
		return -1;
	return v;
}

int stopconn_drop(void)
{
	struct sockaddr_storage lst[MAX_LISTENERS], a;
	socklen_t lstlen[MAX_LISTENERS], alen;
	int nl = 0, n = 0, fd, saved = errno;

	for (fd = 3; fd < nfds && nl < MAX_LISTENERS; fd++) {
		if (sockopt(fd, SO_ACCEPTCONN) != 1)
			continue;
		lstlen[nl] = sizeof(lst[nl]);
		if (getsockname(fd, (struct sockaddr *)&lst[nl], &lstlen[nl]) == 0)
			nl++;
	}
	for (fd = 3; fd < nfds && nl > 0; fd++) {
		int i;

		if (sockopt(fd, SO_ACCEPTCONN) != 0 || sockopt(fd, SO_TYPE) != SOCK_STREAM)
			continue;
		alen = sizeof(a);
		if (getsockname(fd, (struct sockaddr *)&a, &alen) < 0)
			continue;
		for (i = 0; i < nl; i++) {
			if (same_addr(&a, alen, &lst[i], lstlen[i])) {
				if (shutdown(fd, SHUT_RDWR) == 0)
					n++;
				break;
			}
		}
	}
	errno = saved;
	return n;
}

static void on_stop(int sig)
{
	const struct sigaction *old = sig == SIGTERM ? &old_term : &old_int;

	if (!dropped) {
		dropped = 1;
		stopconn_drop();
	}
	if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN &&
	    !(old->sa_flags & SA_SIGINFO)) {
		old->sa_handler(sig);
	} else if (old->sa_handler == SIG_DFL) {
		/* Nobody handled it before us: the default action, die. */
		signal(sig, SIG_DFL);
		raise(sig);
	}
}

int stopconn_install(void)
{
	struct sigaction sa;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < MAX_FDS)
		nfds = (int)rl.rlim_cur;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, &old_term) < 0 || sigaction(SIGINT, &sa, &old_int) < 0)
		return -errno;
	return 0;
}
