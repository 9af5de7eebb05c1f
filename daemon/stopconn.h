/* SPDX-License-Identifier: MIT */
/*
 * stopconn.h - end the clients' connections on SIGTERM/SIGINT, before
 * nbdkit answers their next request with ESHUTDOWN (see stopconn.c)
 */
#ifndef ZRAMD_STOPCONN_H
#define ZRAMD_STOPCONN_H

/**
 * stopconn_install() - put a SIGTERM/SIGINT handler in front of the one
 * installed before (nbdkit's): it shuts down every accepted connection,
 * then calls the old handler. Call once, after nbdkit set its handlers
 * (.after_fork).
 *
 * Return: 0, or -errno of sigaction().
 */
int stopconn_install(void);

/**
 * stopconn_drop() - shutdown(SHUT_RDWR) every accepted stream connection
 * of this process (a non-listening stream socket with the address of one
 * of its listening sockets). Async-signal-safe; keeps errno.
 *
 * Return: how many connections were shut down.
 */
int stopconn_drop(void);

#endif
