/* SPDX-License-Identifier: MIT */
/*
 * notify.c - systemd service notification (sd_notify) for the plugin
 *
 * Under systemd with Type=notify, the service manager learns from us, and
 * not from a fork or a pid file, when the device can be used. The plugin
 * calls notify_start() from .after_fork, the first callback that runs
 * after nbdkit has bound and listen()ed on its sockets (or received them
 * by socket activation) and after any fork into the background, and just
 * before nbdkit starts accepting connections. A client that connects
 * after READY=1 is queued in the listen backlog and served.
 *
 * What is sent, and when:
 *
 *   notify_start   READY=1 and a first STATUS= line, in one datagram
 *   every 5 s      STATUS=<ops->status()>, the plugin's one-line summary,
 *                  e.g. "zsmalloc: 1024 MiB stored in 310 MiB (3.30x), ..."
 *   every T/2      WATCHDOG=1, where T is WatchdogSec= (WATCHDOG_USEC),
 *                  but only if ops->probe() returned 0 just before: a
 *                  data path that hangs stops the pings, and systemd
 *                  kills and restarts the service after T
 *   notify_stop    STOPPING=1 and a last STATUS= line
 *
 * Without NOTIFY_SOCKET in the environment (not under systemd, or not
 * Type=notify) nothing is sent and no thread starts. nbdkit itself (1.32)
 * never talks to the service manager, so these are the only messages.
 *
 * The messages are sent by notify_send() below, not by libsystemd's
 * sd_notify(). The protocol is one datagram of newline-separated
 * assignments on an AF_UNIX socket whose path (or, with a leading '@',
 * abstract name) is in NOTIFY_SOCKET, and systemd documents it as a
 * stable interface (sd_notify(3), "NOTES"). Linking libsystemd cost the
 * idle daemon about 0.7 MiB of resident memory (libsystemd and the
 * libgcrypt, liblzma, libzstd, libcap and libgpg-error it pulls in), a
 * sixth of the 4 MiB budget of an idle device: see docs/BENCHMARKS.md.
 *
 * One thread does both periodic jobs. It sleeps on a condition variable
 * with CLOCK_MONOTONIC deadlines, so notify_stop() wakes it at once, and
 * a change of the wall clock does not stall the watchdog.
 *
 * Lock ordering: notify.lock is a leaf. It is never held while calling
 * ops->probe() or ops->status(), which take the data path's locks.
 */

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <nbdkit-plugin.h>

#include "notify.h"

/* How often STATUS= is refreshed. */
#define NOTIFY_STATUS_USEC (5 * UINT64_C(1000000))
/* Longest STATUS= line kept; longer summaries are cut. */
#define NOTIFY_STATUS_MAX 256
_Static_assert(NOTIFY_STATUS_MAX >= 64, "status buffer too small to be useful");

static struct {
	pthread_mutex_t lock; /* protects stop, running, stopping */
	pthread_cond_t wake; /* signalled by notify_stop() */
	bool stop; /* the thread must exit */
	bool running; /* a thread was started and not yet joined */
	bool stopping; /* STOPPING=1 was sent */
	pthread_t thread;
	/* Written before the thread starts, read-only afterwards. */
	struct notify_ops ops;
	uint64_t watchdog_usec; /* interval between pings; 0: no watchdog */
	bool probe_failing; /* thread-private: last probe failed */
} notify = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
};

static uint64_t now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/**
 * notify_send() - send one message to the service manager
 * @state: newline-separated assignments, e.g. "READY=1\nSTATUS=..."
 *
 * Sends @state as one datagram to the socket named by NOTIFY_SOCKET: a
 * path if it starts with '/', an abstract name if it starts with '@'.
 * Credentials are attached by the kernel (systemd checks the sender's
 * pid against NotifyAccess=).
 *
 * Return: 1 if sent, 0 without NOTIFY_SOCKET, or a negative errno:
 * -EINVAL if NOTIFY_SOCKET is neither form or too long, or what socket()
 * or sendto() failed with.
 */
static int notify_send(const char *state)
{
	const char *name = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n, len = strlen(state);
	socklen_t salen;
	ssize_t r;
	int fd, err = 0;

	if (name == NULL || name[0] == '\0')
		return 0;
	n = strlen(name);
	if ((name[0] != '/' && name[0] != '@') || n >= sizeof sa.sun_path)
		return -EINVAL;
	memcpy(sa.sun_path, name, n);
	if (name[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract: no trailing NUL counted */
	salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
			    (name[0] == '/'));

	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	do
		r = sendto(fd, state, len, MSG_NOSIGNAL,
			   (struct sockaddr *)&sa, salen);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		err = -errno;
	else if ((size_t)r != len)
		err = -EMSGSIZE;
	close(fd);
	return err ? err : 1;
}

/**
 * watchdog_interval() - WatchdogSec= as systemd passed it
 *
 * systemd sets WATCHDOG_USEC to the interval and WATCHDOG_PID to the pid
 * that must ping; a WATCHDOG_PID of another process (an inherited
 * environment) means the watchdog is not ours.
 *
 * Return: the interval in microseconds, or 0 if there is none for us.
 */
static uint64_t watchdog_interval(void)
{
	const char *u = getenv("WATCHDOG_USEC"), *p = getenv("WATCHDOG_PID");
	unsigned long long usec, pid;
	char *end;

	if (u == NULL || *u < '0' || *u > '9')
		return 0;
	errno = 0;
	usec = strtoull(u, &end, 10);
	if (errno || *end != '\0')
		return 0;
	if (p != NULL) {
		if (*p < '0' || *p > '9')
			return 0;
		pid = strtoull(p, &end, 10);
		if (errno || *end != '\0' || pid != (unsigned long long)getpid())
			return 0;
	}
	return usec;
}

/* Sends one message; a failure is only worth a debug line. */
static void send_state(const char *state)
{
	int r = notify_send(state);

	if (r < 0)
		nbdkit_debug("notify: %s: %s", getenv("NOTIFY_SOCKET"),
			     strerror(-r));
}

/*
 * Asks ops->status() for a summary and formats "STATUS=<summary>" into
 * @buf, preceded by @prefix (e.g. "READY=1\n"). The summary is made one
 * line: a newline inside it would start a new assignment.
 */
static void format_status(char *buf, size_t len, const char *prefix)
{
	char line[NOTIFY_STATUS_MAX] = "";
	char *p;

	if (notify.ops.status)
		notify.ops.status(line, sizeof line, notify.ops.arg);
	line[sizeof line - 1] = '\0';
	for (p = line; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	snprintf(buf, len, "%sSTATUS=%s", prefix, line);
}

static void send_status(const char *prefix)
{
	char msg[NOTIFY_STATUS_MAX + 64];

	format_status(msg, sizeof msg, prefix);
	send_state(msg);
}

/* One watchdog period: ping only if the data path answers. */
static void watchdog_tick(void)
{
	int r = notify.ops.probe ? notify.ops.probe(notify.ops.arg) : 0;

	if (r != 0) {
		if (!notify.probe_failing)
			nbdkit_error("watchdog: the data path does not answer; "
				     "no longer pinging systemd");
		notify.probe_failing = true;
		return;
	}
	if (notify.probe_failing)
		nbdkit_debug("watchdog: the data path answers again");
	notify.probe_failing = false;
	send_state("WATCHDOG=1");
}

static void *notify_thread(void *unused)
{
	uint64_t next_status = now_usec() + NOTIFY_STATUS_USEC;
	uint64_t next_watchdog = notify.watchdog_usec ? now_usec() : UINT64_MAX;

	(void)unused;
	for (;;) {
		uint64_t now, deadline;
		struct timespec ts;
		bool stop;

		now = now_usec();
		if (now >= next_watchdog) {
			watchdog_tick();
			next_watchdog = now_usec() + notify.watchdog_usec;
		}
		if (now >= next_status) {
			send_status("");
			next_status = now_usec() + NOTIFY_STATUS_USEC;
		}

		deadline = next_status < next_watchdog ? next_status
						       : next_watchdog;
		ts.tv_sec = deadline / 1000000;
		ts.tv_nsec = (deadline % 1000000) * 1000;
		pthread_mutex_lock(&notify.lock);
		while (!notify.stop && now_usec() < deadline)
			if (pthread_cond_timedwait(&notify.wake, &notify.lock,
						   &ts) == ETIMEDOUT)
				break;
		stop = notify.stop;
		pthread_mutex_unlock(&notify.lock);
		if (stop)
			return NULL;
	}
}

/**
 * notify_start() - tell systemd we are ready, then keep it informed
 * @ops: callbacks; copied
 *
 * Call it once, from .after_fork: only then is nbdkit's listening socket
 * open, and only then do threads survive (nbdkit may fork before). Sends
 * READY=1 with a first STATUS=, then starts the thread that refreshes
 * STATUS= and, if WatchdogSec= is set, sends WATCHDOG=1 at half that
 * interval whenever ops->probe() returns 0 (a NULL probe always passes).
 * Does nothing without NOTIFY_SOCKET, or while a thread runs already
 * (nbdkit calls .after_fork once; tests may start again after
 * notify_stop()).
 *
 * Return: 0, or -1 after nbdkit_error() if the thread could not start
 * (READY=1 was sent all the same; the caller should fail .after_fork).
 */
int notify_start(const struct notify_ops *ops)
{
	pthread_condattr_t attr;
	sigset_t all, saved;
	uint64_t usec = 0;
	int err;

	if (getenv("NOTIFY_SOCKET") == NULL)
		return 0;

	pthread_mutex_lock(&notify.lock);
	if (notify.running) {
		pthread_mutex_unlock(&notify.lock);
		return 0;
	}
	notify.ops = *ops;
	notify.stop = false;
	notify.stopping = false;
	notify.probe_failing = false;
	notify.watchdog_usec = 0;
	usec = watchdog_interval();
	if (usec > 0)
		notify.watchdog_usec = usec / 2 ? usec / 2 : 1;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&notify.wake, &attr);
	pthread_condattr_destroy(&attr);

	send_status("READY=1\n");
	if (notify.watchdog_usec)
		nbdkit_debug("systemd watchdog: pinging every %" PRIu64 " ms",
			     notify.watchdog_usec / 1000);

	/* nbdkit's signals (SIGTERM, SIGINT...) belong to its own threads. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &saved);
	err = pthread_create(&notify.thread, NULL, notify_thread, NULL);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	if (err) {
		pthread_mutex_unlock(&notify.lock);
		errno = err;
		nbdkit_error("pthread_create: systemd notification thread: %m");
		return -1;
	}
	notify.running = true;
	pthread_mutex_unlock(&notify.lock);
	return 0;
}

/**
 * notify_stop() - send STOPPING=1 and stop the thread
 *
 * STOPPING=1 goes first, so that systemd knows at once even if the thread
 * is stuck in a probe. Safe to call whether or not notify_start() ran,
 * and more than once: STOPPING=1 is sent once, and only with
 * NOTIFY_SOCKET set.
 */
void notify_stop(void)
{
	bool running, stopping;

	if (getenv("NOTIFY_SOCKET") == NULL)
		return;

	pthread_mutex_lock(&notify.lock);
	running = notify.running;
	stopping = notify.stopping;
	notify.stopping = true;
	if (running) {
		notify.stop = true;
		pthread_cond_signal(&notify.wake);
	}
	pthread_mutex_unlock(&notify.lock);

	if (!stopping)
		send_state("STOPPING=1\nSTATUS=shutting down");
	if (!running)
		return;
	pthread_join(notify.thread, NULL);

	pthread_mutex_lock(&notify.lock);
	notify.running = false;
	pthread_cond_destroy(&notify.wake);
	pthread_mutex_unlock(&notify.lock);
}

void notify_status_now(const char *line)
{
	char msg[NOTIFY_STATUS_MAX + 16];
	char *p;

	if (getenv("NOTIFY_SOCKET") == NULL)
		return;
	snprintf(msg, sizeof msg, "STATUS=%s", line);
	for (p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	send_state(msg);
}
