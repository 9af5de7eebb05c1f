/* SPDX-License-Identifier: MIT */
/*
 * test_notify.c - daemon/notify.c against a fake systemd notify socket
 *
 * Each test binds a datagram socket in a fresh directory, points
 * NOTIFY_SOCKET at it and reads what notify.c sends, as systemd would.
 * No nbdkit is needed: nbdkit_error() and nbdkit_debug() are stubbed.
 *
 * To check that something was NOT sent, without waiting on a clock, a
 * test sends a sentinel datagram to the same socket after the action:
 * datagrams on a unix socket arrive in order, so everything notify.c sent
 * before the sentinel is read before it.
 */

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <check.h>

#include "notify.h"

/* A message is expected within this many ms: generous, a loaded box. */
#define RECV_TIMEOUT_MS 30000
#define SENTINEL	"SENTINEL=1"

static char dir[48];
static char sock_path[96];
static int sock = -1;

static atomic_int probes; /* calls of probe() */
static atomic_int fail_next; /* probe() fails this many more calls */
static atomic_int errors; /* calls of nbdkit_error() */

/* Stubs for the two nbdkit functions notify.c uses. */
void nbdkit_error(const char *fs, ...)
{
	va_list ap;

	atomic_fetch_add(&errors, 1);
	va_start(ap, fs);
	fprintf(stderr, "nbdkit_error: ");
	vfprintf(stderr, fs, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

void nbdkit_debug(const char *fs, ...)
{
	(void)fs;
}

/* Plain calls, so that libcheck's messages stay readable. */
static int nprobes(void)
{
	return atomic_load(&probes);
}

static int nerrors(void)
{
	return atomic_load(&errors);
}

static int probe(void *arg)
{
	ck_assert_ptr_eq(arg, &probes);
	atomic_fetch_add(&probes, 1);
	if (atomic_load(&fail_next) > 0) {
		atomic_fetch_sub(&fail_next, 1);
		return -1;
	}
	return 0;
}

static void status(char *buf, size_t len, void *arg)
{
	(void)arg;
	snprintf(buf, len, "1.20 GiB stored in 412 MiB (2.98x)");
}

static void status_newlines(char *buf, size_t len, void *arg)
{
	(void)arg;
	snprintf(buf, len, "two\nlines\r");
}

static const struct notify_ops ops = {
	.probe = probe,
	.status = status,
	.arg = &probes,
};

static void setup(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	snprintf(dir, sizeof dir, "/tmp/zramd-notify-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(sock_path, sizeof sock_path, "%s/notify", dir);
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock_path);
	sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(sock, 0);
	ck_assert_int_eq(bind(sock, (struct sockaddr *)&sa, sizeof sa), 0);

	setenv("NOTIFY_SOCKET", sock_path, 1);
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	atomic_store(&probes, 0);
	atomic_store(&fail_next, 0);
	atomic_store(&errors, 0);
}

static void teardown(void)
{
	notify_stop();
	close(sock);
	unlink(sock_path);
	rmdir(dir);
}

static void watchdog_env(unsigned usec, pid_t pid)
{
	char buf[32];

	snprintf(buf, sizeof buf, "%u", usec);
	setenv("WATCHDOG_USEC", buf, 1);
	snprintf(buf, sizeof buf, "%ld", (long)pid);
	setenv("WATCHDOG_PID", buf, 1);
}

/* The next datagram, NUL-terminated; fails the test after the timeout. */
static void recv_msg(char *buf, size_t len)
{
	struct pollfd p = {.fd = sock, .events = POLLIN};
	ssize_t n;

	ck_assert_msg(poll(&p, 1, RECV_TIMEOUT_MS) == 1,
		      "no notify message within %d ms", RECV_TIMEOUT_MS);
	n = recv(sock, buf, len - 1, 0);
	ck_assert_int_ge(n, 0);
	buf[n] = '\0';
}

static void send_sentinel(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock_path);
	ck_assert_int_eq(sendto(s, SENTINEL, strlen(SENTINEL), 0,
				(struct sockaddr *)&sa, sizeof sa),
			 (ssize_t)strlen(SENTINEL));
	close(s);
}

/* Nothing was sent to the path socket: the sentinel is the next message. */
static void expect_nothing_sent(void)
{
	char buf[512];

	setenv("NOTIFY_SOCKET", sock_path, 1);
	send_sentinel();
	recv_msg(buf, sizeof buf);
	ck_assert_str_eq(buf, SENTINEL);
}

/* Reads up to the sentinel; returns how many messages equal @what. */
static int drain_count(const char *what)
{
	char buf[512];
	int n = 0;

	send_sentinel();
	for (;;) {
		recv_msg(buf, sizeof buf);
		if (strcmp(buf, SENTINEL) == 0)
			return n;
		if (strcmp(buf, what) == 0)
			n++;
	}
}

START_TEST(test_no_socket_sends_nothing)
{
	unsetenv("NOTIFY_SOCKET");
	watchdog_env(20000, getpid());
	ck_assert_int_eq(notify_start(&ops), 0);
	usleep(200000); /* ten watchdog periods, if a thread had started */
	notify_stop();
	ck_assert_int_eq(nprobes(), 0);
	expect_nothing_sent();
}
END_TEST

START_TEST(test_ready_watchdog_stopping)
{
	char buf[512];
	int pings = 0;

	watchdog_env(100000, getpid()); /* WatchdogSec=100ms: ping every 50 */
	ck_assert_int_eq(notify_start(&ops), 0);

	recv_msg(buf, sizeof buf);
	ck_assert_str_eq(buf, "READY=1\nSTATUS=1.20 GiB stored in 412 MiB "
			      "(2.98x)");
	while (pings < 3) {
		recv_msg(buf, sizeof buf);
		if (strcmp(buf, "WATCHDOG=1") == 0)
			pings++;
		else
			ck_assert_msg(strncmp(buf, "STATUS=", 7) == 0,
				      "unexpected message '%s'", buf);
	}
	ck_assert_int_ge(nprobes(), 3);

	notify_stop();
	send_sentinel();
	for (;;) {
		recv_msg(buf, sizeof buf);
		if (strncmp(buf, "STOPPING=1", 10) == 0)
			break;
		ck_assert_msg(strcmp(buf, "WATCHDOG=1") == 0 ||
				      strncmp(buf, "STATUS=", 7) == 0,
			      "unexpected message '%s'", buf);
	}
	ck_assert_str_eq(buf, "STOPPING=1\nSTATUS=shutting down");
	/* The thread is gone: the sentinel is next, and no probe follows. */
	recv_msg(buf, sizeof buf);
	ck_assert_str_eq(buf, SENTINEL);
	pings = nprobes();
	usleep(200000);
	ck_assert_int_eq(nprobes(), pings);
	ck_assert_int_eq(nerrors(), 0);
}
END_TEST

START_TEST(test_failing_probe_no_watchdog)
{
	char buf[512];

	watchdog_env(20000, getpid());
	atomic_store(&fail_next, 1000000);
	ck_assert_int_eq(notify_start(&ops), 0);
	recv_msg(buf, sizeof buf);
	ck_assert_str_eq(buf, "READY=1\nSTATUS=1.20 GiB stored in 412 MiB "
			      "(2.98x)");

	/* Let the thread probe (and fail) at least five times. */
	for (int i = 0; i < RECV_TIMEOUT_MS / 10; i++) {
		if (nprobes() >= 5)
			break;
		usleep(10000);
	}
	ck_assert_int_ge(nprobes(), 5);
	notify_stop();
	ck_assert_int_eq(drain_count("WATCHDOG=1"), 0);
	/* One error for the whole outage, not one per probe. */
	ck_assert_int_eq(nerrors(), 1);
}
END_TEST

START_TEST(test_probe_recovers)
{
	char buf[512];

	watchdog_env(20000, getpid());
	atomic_store(&fail_next, 3);
	ck_assert_int_eq(notify_start(&ops), 0);
	do
		recv_msg(buf, sizeof buf);
	while (strcmp(buf, "WATCHDOG=1") != 0);
	/* The first three probes failed: the ping came after the fourth. */
	ck_assert_int_ge(nprobes(), 4);
	ck_assert_int_eq(nerrors(), 1);
}
END_TEST

START_TEST(test_status_refresh_no_watchdog)
{
	char buf[512];

	/* WATCHDOG_PID names another process: the watchdog is not ours. */
	watchdog_env(20000, getppid());
	ck_assert_int_eq(notify_start(&ops), 0);
	recv_msg(buf, sizeof buf);
	ck_assert_str_eq(buf, "READY=1\nSTATUS=1.20 GiB stored in 412 MiB "
			      "(2.98x)");
	/* The refresh comes after ~5 s; the watchdog never. */
	recv_msg(buf, sizeof buf);
	ck_assert_str_eq(buf, "STATUS=1.20 GiB stored in 412 MiB (2.98x)");
	ck_assert_int_eq(nprobes(), 0);
}
END_TEST

START_TEST(test_status_is_one_line)
{
	static const struct notify_ops nl_ops = {
		.status = status_newlines,
	};
	char buf[512];

	ck_assert_int_eq(notify_start(&nl_ops), 0);
	recv_msg(buf, sizeof buf);
	ck_assert_str_eq(buf, "READY=1\nSTATUS=two lines ");
}
END_TEST

START_TEST(test_stop_without_start)
{
	char buf[512];

	notify_stop();
	notify_stop();
	recv_msg(buf, sizeof buf);
	ck_assert_str_eq(buf, "STOPPING=1\nSTATUS=shutting down");
	/* Once only. */
	send_sentinel();
	recv_msg(buf, sizeof buf);
	ck_assert_str_eq(buf, SENTINEL);
}
END_TEST

START_TEST(test_start_twice)
{
	char buf[512];

	ck_assert_int_eq(notify_start(&ops), 0);
	ck_assert_int_eq(notify_start(&ops), 0);
	recv_msg(buf, sizeof buf);
	ck_assert_str_eq(buf, "READY=1\nSTATUS=1.20 GiB stored in 412 MiB "
			      "(2.98x)");
	notify_stop();
	ck_assert_int_eq(drain_count("READY=1\nSTATUS=1.20 GiB stored in "
				     "412 MiB (2.98x)"),
			 0);
}
END_TEST

/* NOTIFY_SOCKET may name an abstract socket: "@name". */
START_TEST(test_abstract_socket)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct pollfd p = {.events = POLLIN};
	char name[64], buf[512];
	socklen_t salen;
	ssize_t n;

	snprintf(name, sizeof name, "@zramd-test-notify-%ld-%ld",
		 (long)getpid(), (long)random());
	memcpy(sa.sun_path, name, strlen(name));
	sa.sun_path[0] = '\0';
	salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
			    strlen(name));
	p.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(p.fd, 0);
	ck_assert_int_eq(bind(p.fd, (struct sockaddr *)&sa, salen), 0);
	setenv("NOTIFY_SOCKET", name, 1);

	ck_assert_int_eq(notify_start(&ops), 0);
	ck_assert_int_eq(poll(&p, 1, RECV_TIMEOUT_MS), 1);
	n = recv(p.fd, buf, sizeof buf - 1, 0);
	ck_assert_int_ge(n, 0);
	buf[n] = '\0';
	ck_assert_str_eq(buf, "READY=1\nSTATUS=1.20 GiB stored in 412 MiB "
			      "(2.98x)");
	notify_stop();
	ck_assert_int_eq(poll(&p, 1, RECV_TIMEOUT_MS), 1);
	n = recv(p.fd, buf, sizeof buf - 1, 0);
	ck_assert_int_ge(n, 0);
	buf[n] = '\0';
	ck_assert_str_eq(buf, "STOPPING=1\nSTATUS=shutting down");
	close(p.fd);
	/* Nothing went to the path socket. */
	ck_assert_int_eq(drain_count("READY=1\nSTATUS=1.20 GiB stored in "
				     "412 MiB (2.98x)"),
			 0);
}
END_TEST

/* A WATCHDOG_PID of another process: the watchdog is not ours. */
START_TEST(test_foreign_watchdog_pid)
{
	char buf[512];

	watchdog_env(20000, getpid() + 1);
	ck_assert_int_eq(notify_start(&ops), 0);
	recv_msg(buf, sizeof buf);
	ck_assert_str_eq(buf, "READY=1\nSTATUS=1.20 GiB stored in 412 MiB "
			      "(2.98x)");
	usleep(200000); /* twenty ping periods, had the watchdog been ours */
	notify_stop();
	ck_assert_int_eq(nprobes(), 0);
	ck_assert_int_eq(drain_count("WATCHDOG=1"), 0);

	/* Without WATCHDOG_PID the interval alone enables it. */
	unsetenv("WATCHDOG_PID");
	ck_assert_int_eq(notify_start(&ops), 0);
	for (int i = 0; i < RECV_TIMEOUT_MS / 10 && nprobes() < 2; i++)
		usleep(10000);
	notify_stop();
	ck_assert_int_ge(nprobes(), 2);
}
END_TEST

/* A NOTIFY_SOCKET that is neither a path nor "@name": nothing breaks. */
START_TEST(test_bad_socket_name)
{
	setenv("NOTIFY_SOCKET", "relative/notify", 1);
	ck_assert_int_eq(notify_start(&ops), 0);
	notify_stop();
	ck_assert_int_eq(nerrors(), 0);
	expect_nothing_sent();
}
END_TEST

static Suite *notify_suite(void)
{
	Suite *s = suite_create("notify");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_no_socket_sends_nothing);
	tcase_add_test(tc, test_ready_watchdog_stopping);
	tcase_add_test(tc, test_failing_probe_no_watchdog);
	tcase_add_test(tc, test_probe_recovers);
	tcase_add_test(tc, test_status_refresh_no_watchdog);
	tcase_add_test(tc, test_status_is_one_line);
	tcase_add_test(tc, test_stop_without_start);
	tcase_add_test(tc, test_start_twice);
	tcase_add_test(tc, test_abstract_socket);
	tcase_add_test(tc, test_foreign_watchdog_pid);
	tcase_add_test(tc, test_bad_socket_name);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(notify_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
