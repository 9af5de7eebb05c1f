/* SPDX-License-Identifier: MIT */
/*
 * notify.h - systemd service notification (sd_notify) for the plugin
 *
 * The plugin calls notify_start() once it is ready to serve and
 * notify_stop() when it shuts down. Without NOTIFY_SOCKET in the
 * environment both do nothing (and start no thread).
 */
#ifndef ZRAMD_NOTIFY_H
#define ZRAMD_NOTIFY_H

#include <stddef.h>

struct notify_ops {
	/*
	 * Returns 0 if the data path answers: it takes, briefly, the locks a
	 * request takes. WATCHDOG=1 is sent only after it returned 0.
	 */
	int (*probe)(void *arg);
	/* Writes a one-line human summary (for STATUS=) into @buf. */
	void (*status)(char *buf, size_t len, void *arg);
	void *arg;
};

/**
 * notify_start() - tell systemd we are ready, then keep it informed
 * @ops: callbacks; copied
 *
 * Sends READY=1 and a first STATUS=, then starts a thread that sends
 * STATUS= every few seconds and, if WATCHDOG_USEC (for our pid) says so,
 * WATCHDOG=1 at half the interval systemd asks for, each time probe()
 * returned 0.
 *
 * Return: 0, or -1 after nbdkit_error() if the thread could not start.
 */
int notify_start(const struct notify_ops *ops);

/**
 * notify_stop() - send STOPPING=1 and stop the thread
 *
 * Safe to call whether or not notify_start() ran.
 */
void notify_stop(void);

/**
 * notify_status_now() - send STATUS=@line once, at once
 * @line: one line (a newline in it is sent as a space)
 *
 * For progress before notify_start() (a snapshot loading) or after
 * notify_stop() (a snapshot being written). Does nothing without
 * NOTIFY_SOCKET.
 */
void notify_status_now(const char *line);

#endif /* ZRAMD_NOTIFY_H */
