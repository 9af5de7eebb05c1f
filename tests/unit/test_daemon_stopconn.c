/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of stopconn.c: on SIGTERM the connections accepted on this
 * process's listening sockets are shut down, and nothing else is; then
 * the handler that was there before runs.
 *
 * Each test works with real sockets of its own: a listening unix socket
 * (in a temporary directory), a client connected to it, and the accepted
 * side. The client stands for the kernel's NBD client; after
 * stopconn_drop() it must read end-of-file. Sockets that are not
 * accepted connections (the client's own side, a socketpair standing for
 * the journal's stream, a listening socket) must stay usable. TCP on
 * loopback too: the accepted socket's own address is the client's
 * destination, not the listener's wildcard.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "stopconn.h"
#include "test_util.h"

static char dir[] = "/tmp/zramd-stopconn.XXXXXX";
static char path[sizeof(dir) + 16];

static void make_dir(void)
{
	strcpy(dir, "/tmp/zramd-stopconn.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sock", dir);
}

static void remove_dir(void)
{
	unlink(path);
	rmdir(dir);
}

/* A listening unix socket at path. */
static int listener(void)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	strcpy(a.sun_path, path);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(fd, 4), 0);
	return fd;
}

static int client(void)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	strcpy(a.sun_path, path);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

/* 0 if fd reads end-of-file at once, 1 if it has data or would block. */
static int at_eof(int fd)
{
	char c;
	ssize_t r = recv(fd, &c, 1, MSG_DONTWAIT);

	return r == 0 ? 0 : 1;
}

START_TEST(test_drop_accepted_only)
{
	int l = listener(), c = client(), s = accept(l, NULL, NULL), p[2];
	char c1;

	ck_assert_int_ge(s, 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, p), 0);
	ck_assert_int_eq(at_eof(c), 1); /* connected, idle */

	ck_assert_int_eq(stopconn_drop(), 1);
	/* The client (the kernel, in life) finds the connection closed. */
	ck_assert_int_eq(at_eof(c), 0);
	ck_assert_int_eq(send(s, "x", 1, MSG_NOSIGNAL), -1);
	ck_assert_int_eq(errno, EPIPE);
	/* Not an accepted connection: untouched. */
	ck_assert_int_eq(send(p[0], "y", 1, MSG_NOSIGNAL), 1);
	ck_assert_int_eq(recv(p[1], &c1, 1, 0), 1);
	ck_assert_int_eq(c1, 'y');
	/* The listener still accepts (nbdkit closes it itself). */
	{
		int c2 = client(), s2 = accept(l, NULL, NULL);

		ck_assert_int_ge(s2, 0);
		ck_assert_int_eq(send(c2, "z", 1, MSG_NOSIGNAL), 1);
		ck_assert_int_eq(recv(s2, &c1, 1, 0), 1);
		close(c2);
		close(s2);
	}
	close(p[0]);
	close(p[1]);
	close(s);
	close(c);
	close(l);
}
END_TEST

START_TEST(test_no_listener_no_drop)
{
	int p[2];

	/* Without a listening socket nothing counts as accepted. */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, p), 0);
	ck_assert_int_eq(stopconn_drop(), 0);
	ck_assert_int_eq(send(p[0], "y", 1, MSG_NOSIGNAL), 1);
	close(p[0]);
	close(p[1]);
}
END_TEST

static volatile sig_atomic_t old_ran, eof_when_old_ran = -1;
static int client_fd = -1;

static void old_handler(int sig)
{
	(void)sig;
	old_ran++;
	eof_when_old_ran = at_eof(client_fd) == 0;
}

START_TEST(test_sigterm_chains)
{
	struct sigaction sa = {.sa_handler = old_handler};
	int l = listener(), s;

	client_fd = client();
	s = accept(l, NULL, NULL);
	ck_assert_int_ge(s, 0);
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGTERM, &sa, NULL), 0);
	ck_assert_int_eq(stopconn_install(), 0);

	ck_assert_int_eq(raise(SIGTERM), 0);
	/* The old handler (nbdkit's) ran, after the connection was closed. */
	ck_assert_int_eq(old_ran, 1);
	ck_assert_int_eq(eof_when_old_ran, 1);
	close(s);
	close(client_fd);
	close(l);
}
END_TEST

/* TCP on loopback: a listener on the wildcard address, a client on
 * 127.0.0.1; the accepted socket's own address is 127.0.0.1:PORT. */
START_TEST(test_drop_tcp)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t alen = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM, 0), c, s;

	ck_assert_int_ge(l, 0);
	a.sin_addr.s_addr = htonl(INADDR_ANY);
	ck_assert_int_eq(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(l, 4), 0);
	ck_assert_int_eq(getsockname(l, (struct sockaddr *)&a, &alen), 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_eq(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
	s = accept(l, NULL, NULL);
	ck_assert_int_ge(s, 0);

	/* The client's own side (an ephemeral port) is not dropped. */
	ck_assert_int_eq(stopconn_drop(), 1);
	ck_assert_int_eq(at_eof(c), 0);
	close(s);
	close(c);
	close(l);
}
END_TEST

static Suite *stopconn_suite(void)
{
	Suite *s = suite_create("stopconn");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, make_dir, remove_dir);
	tcase_add_test(tc, test_drop_accepted_only);
	tcase_add_test(tc, test_no_listener_no_drop);
	tcase_add_test(tc, test_sigterm_chains);
	tcase_add_test(tc, test_drop_tcp);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(stopconn_suite());
}
