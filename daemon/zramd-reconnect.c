/* SPDX-License-Identifier: MIT */
/*
 * zramd-reconnect - give the kernel's NBD client a new connection to a
 * restarted zramd, so that a file system or swap on /dev/nbdN lives on
 *
 *   zramd-reconnect [-t DEAD_SECONDS] DEVICE
 *   zramd-reconnect [-t DEAD_SECONDS] [-w WAIT_SECONDS] SOCKET DEVICE
 *   zramd-reconnect --watch [-t DEAD_SECONDS] [-w WAIT_SECONDS] SOCKET DEVICE
 *
 * Why it exists. When the daemon behind /dev/nbdN stops, the kernel sees
 * its socket close and marks the connection dead. What happens to the
 * requests then depends on one setting of the netlink interface, the
 * dead-connection timeout (NBD_ATTR_DEAD_CONN_TIMEOUT):
 *
 *   - 0, the default and all nbd-client 3.24 (Debian 12) can set: every
 *     request is failed at once with EIO, and the device is marked
 *     disconnected for good; ext4 loses writes and aborts its journal
 *     (measured: nbdkit-zramd-plugin(1), RESTARTS). nbd-client's
 *     -persist mode does not help: under netlink (its default) it exits
 *     after the attach and never reconnects, and under the old ioctl
 *     interface (-nonetlink) the kernel still fails every request of the
 *     gap.
 *   - N seconds: requests wait, up to N seconds, for a live connection.
 *     A process that writes blocks (in D state) instead of failing.
 *     NBD_CMD_RECONFIGURE with a new socket replaces the dead one, and
 *     the waiting requests go out on it.
 *
 * The first form sets the dead-connection timeout of DEVICE (attached
 * with `nbd-client -unix SOCKET DEVICE ...`, netlink mode); run it right
 * after the attach. The second form, run once the daemon listens again,
 * connects to SOCKET (retrying for up to WAIT_SECONDS, default 30, while
 * the socket is absent or refuses), does the NBD handshake with libnbd,
 * checks that the export has DEVICE's size, and hands the connected
 * socket to the kernel with NBD_CMD_RECONFIGURE (setting the timeout too
 * when -t is given). The third form stays running (zramd-nbd@.service
 * runs it): it listens for the kernel's NBD_CMD_LINK_DEAD events on the
 * nbd netlink multicast group and, for each one about DEVICE, does what
 * the second form does, in a child process. With systemd's zramd.socket
 * the connect succeeds at once (the socket stays open across the
 * restart) and the handshake completes when the new nbdkit accepts.
 * nbd-client 3.27 and later does the same itself in its netlink -persist
 * mode; this tool is for the releases before it.
 *
 * The data must be there when the new connection serves it: a restart
 * without persist=PATH (nbdkit-zramd-plugin(1)) serves an empty device,
 * and the file system on it is then lost whatever the kernel does.
 *
 * Exit status: 0 done; 1 on failure (the message says which step);
 * 2 on a usage error.
 */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libnbd.h>
#include <linux/nbd-netlink.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>

static const char *prog = "zramd-reconnect";

static void usage(void)
{
	fprintf(stderr,
		"usage: %s [-t DEAD_SECONDS] DEVICE\n"
		"       %s [-t DEAD_SECONDS] [-w WAIT_SECONDS] SOCKET DEVICE\n"
		"       %s --watch [-t DEAD_SECONDS] [-w WAIT_SECONDS] SOCKET DEVICE\n",
		prog, prog, prog);
	exit(2);
}

/* parse_secs() - a count of seconds from -t or -w, or exit 2. */
static long parse_secs(const char *opt, const char *s, long min)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > 86400) {
		fprintf(stderr, "%s: %s %s: not a number of seconds from %ld to 86400\n",
			prog, opt, s, min);
		exit(2);
	}
	return v;
}

/*
 * device_index() - N of /dev/nbdN, and its size in bytes from sysfs.
 * Return: 0, or -1 with a message.
 */
static int device_index(const char *dev, int *index, uint64_t *bytes)
{
	char path[64], tail;
	unsigned long long sectors;
	FILE *f;

	if (sscanf(dev, "/dev/nbd%d%c", index, &tail) != 1 || *index < 0) {
		fprintf(stderr, "%s: %s: not an NBD device (/dev/nbdN)\n", prog, dev);
		return -1;
	}
	snprintf(path, sizeof(path), "/sys/block/nbd%d/size", *index);
	f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "%s: %s: %m (is the nbd module loaded?)\n", prog, path);
		return -1;
	}
	if (fscanf(f, "%llu", &sectors) != 1) {
		fprintf(stderr, "%s: %s: unreadable\n", prog, path);
		fclose(f);
		return -1;
	}
	fclose(f);
	*bytes = (uint64_t)sectors * 512;
	return 0;
}

/*
 * server_connect() - a handshaken libnbd connection to SOCKET, retried
 * until @wait seconds have passed.
 * Return: the handle, or NULL with a message.
 */
static struct nbd_handle *server_connect(const char *sock, long wait)
{
	struct timespec t0, now;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct nbd_handle *h = nbd_create();

		if (!h) {
			fprintf(stderr, "%s: nbd_create: %s\n", prog, nbd_get_error());
			return NULL;
		}
		/*
		 * The kernel reads simple replies only (nbd-client does not
		 * ask for structured ones, and the kernel keeps what it was
		 * told at the attach); libnbd asks by default, and a
		 * structured read reply makes the kernel drop the connection
		 * ("Wrong magic (0x668e33ef)").
		 */
		if (nbd_set_request_structured_replies(h, false) < 0) {
			fprintf(stderr, "%s: nbd_set_request_structured_replies: %s\n",
				prog, nbd_get_error());
			nbd_close(h);
			return NULL;
		}
		if (nbd_connect_unix(h, sock) == 0)
			return h;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec >= wait) {
			fprintf(stderr, "%s: %s: no NBD server after %ld s: %s\n",
				prog, sock, wait, nbd_get_error());
			nbd_close(h);
			return NULL;
		}
		nbd_close(h);
		usleep(100 * 1000);
	}
}

/*
 * reconfigure() - NBD_CMD_RECONFIGURE of nbd device @index: the
 * dead-connection timeout if @dead >= 0, the socket @fd if @fd >= 0 (it
 * replaces a dead connection; with none dead the kernel ignores it).
 * Return: 0, or -1 with a message.
 */
static int reconfigure(int index, long dead, int fd)
{
	struct nl_sock *nl = nl_socket_alloc();
	struct nl_msg *msg = NULL;
	struct nlattr *socks, *item;
	int family, rc = -1, err;

	if (!nl) {
		fprintf(stderr, "%s: nl_socket_alloc failed\n", prog);
		return -1;
	}
	if ((err = genl_connect(nl)) < 0) {
		fprintf(stderr, "%s: genl_connect: %s\n", prog, nl_geterror(err));
		goto out;
	}
	family = genl_ctrl_resolve(nl, NBD_GENL_FAMILY_NAME);
	if (family < 0) {
		fprintf(stderr, "%s: netlink family %s: %s (is the nbd module loaded?)\n",
			prog, NBD_GENL_FAMILY_NAME, nl_geterror(family));
		goto out;
	}
	msg = nlmsg_alloc();
	if (!msg || !genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, family, 0, 0,
				 NBD_CMD_RECONFIGURE, 0))
		goto nomem;
	if (nla_put_u32(msg, NBD_ATTR_INDEX, (uint32_t)index) < 0)
		goto nomem;
	if (dead >= 0 && nla_put_u64(msg, NBD_ATTR_DEAD_CONN_TIMEOUT, (uint64_t)dead) < 0)
		goto nomem;
	if (fd >= 0) {
		socks = nla_nest_start(msg, NBD_ATTR_SOCKETS);
		if (!socks)
			goto nomem;
		item = nla_nest_start(msg, NBD_SOCK_ITEM);
		if (!item || nla_put_u32(msg, NBD_SOCK_FD, (uint32_t)fd) < 0)
			goto nomem;
		nla_nest_end(msg, item);
		nla_nest_end(msg, socks);
	}
	/* nl_send_sync() frees msg, and waits for the kernel's answer. */
	err = nl_send_sync(nl, msg);
	msg = NULL;
	if (err < 0) {
		fprintf(stderr, "%s: NBD_CMD_RECONFIGURE of /dev/nbd%d: %s (see dmesg; "
			"the device must be attached with nbd-client in netlink mode)\n",
			prog, index, nl_geterror(err));
		goto out;
	}
	rc = 0;
	goto out;
nomem:
	fprintf(stderr, "%s: building the netlink message failed\n", prog);
out:
	nlmsg_free(msg);
	nl_socket_free(nl);
	return rc;
}

/*
 * reconnect_once() - connect to @sock, check the size against @bytes,
 * and hand the socket to nbd device @index (with the timeout @dead if
 * >= 0). Return: 0, or 1 with a message.
 */
static int reconnect_once(const char *sock, const char *dev, int index,
			  uint64_t bytes, long dead, long wait)
{
	struct nbd_handle *h;
	int64_t size;
	int fd;

	h = server_connect(sock, wait);
	if (!h)
		return 1;
	size = nbd_get_size(h);
	if (size < 0 || (uint64_t)size != bytes) {
		fprintf(stderr, "%s: %s serves %" PRId64 " bytes, %s has %" PRIu64
			"; refusing to attach another device\n",
			prog, sock, size, dev, bytes);
		nbd_close(h);
		return 1;
	}
	fd = nbd_aio_get_fd(h);
	if (fd < 0 || reconfigure(index, dead, fd) < 0) {
		if (fd < 0)
			fprintf(stderr, "%s: nbd_aio_get_fd: %s\n", prog, nbd_get_error());
		nbd_close(h);
		return 1;
	}
	/*
	 * The kernel holds its own reference to the socket now. The caller
	 * exits without nbd_close(): libnbd owns the descriptor and might
	 * end the connection; the process's exit only drops our reference.
	 */
	printf("%s: %s reconnected to %s\n", prog, dev, sock);
	fflush(stdout);
	return 0;
}

/* The index of the device whose link died, set by on_event(). */
struct watch_state {
	int index;
	int dead;
};

static int on_event(struct nl_msg *msg, void *arg)
{
	struct watch_state *w = arg;
	struct genlmsghdr *g = nlmsg_data(nlmsg_hdr(msg));
	struct nlattr *attrs[NBD_ATTR_MAX + 1];

	if (g->cmd != NBD_CMD_LINK_DEAD)
		return NL_OK;
	if (nla_parse(attrs, NBD_ATTR_MAX, genlmsg_attrdata(g, 0),
		      genlmsg_attrlen(g, 0), NULL) < 0 || !attrs[NBD_ATTR_INDEX])
		return NL_OK;
	if ((int)nla_get_u32(attrs[NBD_ATTR_INDEX]) == w->index)
		w->dead = 1;
	return NL_OK;
}

/*
 * watch() - wait for NBD_CMD_LINK_DEAD events about nbd device @index and
 * reconnect it to @sock after each, in a child process (which exits
 * without closing libnbd's handle, see reconnect_once()).
 * Return: only on a netlink error, 1.
 */
static int watch(const char *sock, const char *dev, int index, uint64_t bytes,
		 long wait)
{
	struct watch_state w = {.index = index};
	struct nl_sock *nl = nl_socket_alloc();
	int grp, err;

	if (!nl) {
		fprintf(stderr, "%s: nl_socket_alloc failed\n", prog);
		return 1;
	}
	nl_socket_disable_seq_check(nl);
	if ((err = genl_connect(nl)) < 0) {
		fprintf(stderr, "%s: genl_connect: %s\n", prog, nl_geterror(err));
		goto fail;
	}
	grp = genl_ctrl_resolve_grp(nl, NBD_GENL_FAMILY_NAME, NBD_GENL_MCAST_GROUP_NAME);
	if (grp < 0) {
		fprintf(stderr, "%s: netlink group %s: %s\n", prog,
			NBD_GENL_MCAST_GROUP_NAME, nl_geterror(grp));
		goto fail;
	}
	if ((err = nl_socket_add_membership(nl, grp)) < 0) {
		fprintf(stderr, "%s: nl_socket_add_membership: %s\n", prog, nl_geterror(err));
		goto fail;
	}
	nl_socket_modify_cb(nl, NL_CB_VALID, NL_CB_CUSTOM, on_event, &w);
	printf("%s: watching %s; a dead link is reconnected to %s\n", prog, dev, sock);
	fflush(stdout);
	for (;;) {
		pid_t pid;
		int status;

		err = nl_recvmsgs_default(nl);
		/* Events lost to a full buffer may include ours: try. */
		if (err == -NLE_NOMEM)
			w.dead = 1;
		else if (err < 0 && err != -NLE_INTR && err != -NLE_AGAIN)
			fprintf(stderr, "%s: netlink: %s\n", prog, nl_geterror(err));
		if (!w.dead)
			continue;
		w.dead = 0;
		fprintf(stderr, "%s: %s: the connection died; reconnecting to %s\n",
			prog, dev, sock);
		pid = fork();
		if (pid < 0) {
			fprintf(stderr, "%s: fork: %m\n", prog);
			continue;
		}
		if (pid == 0) {
			/*
			 * With socket activation the connect succeeds even
			 * if zramd never comes back, and the handshake would
			 * wait for ever: give up a little after -w.
			 */
			alarm((unsigned int)wait + 5);
			_exit(reconnect_once(sock, dev, index, bytes, -1, wait));
		}
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	}
fail:
	nl_socket_free(nl);
	return 1;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"watch", no_argument, NULL, 'W'},
		{NULL, 0, NULL, 0},
	};
	long dead = -1, wait = 30;
	const char *sock = NULL, *dev;
	uint64_t bytes;
	int opt, index, watching = 0;

	while ((opt = getopt_long(argc, argv, "t:w:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 't':
			dead = parse_secs("-t", optarg, 0);
			break;
		case 'w':
			wait = parse_secs("-w", optarg, 0);
			break;
		case 'W':
			watching = 1;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 1 && dead >= 0 && !watching) {
		dev = argv[0];
	} else if (argc == 2) {
		sock = argv[0];
		dev = argv[1];
	} else {
		usage();
	}
	if (device_index(dev, &index, &bytes) < 0)
		return 1;
	if (!sock || (watching && dead >= 0)) {
		if (reconfigure(index, dead, -1) < 0)
			return 1;
		if (!sock)
			return 0;
	}
	if (bytes == 0) {
		fprintf(stderr, "%s: %s is not attached (size 0): attach it with nbd-client\n",
			prog, dev);
		return 1;
	}
	if (watching)
		return watch(sock, dev, index, bytes, wait);
	return reconnect_once(sock, dev, index, bytes, dead, wait);
}
