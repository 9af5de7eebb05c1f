/* SPDX-License-Identifier: MIT */
/*
 * fuzz_pressure.c - the shrinker's parsers of kernel files and settings
 *
 * The pressure sources (daemon/pressure.c, daemon/cgroup.c) read text the
 * kernel writes: PSI files, cgroup memory files, /proc/self/cgroup and
 * /proc/self/mountinfo. Byte 0 % 6 picks what is fed:
 *
 *  0  psi_parse() of any text: 0 only with a valid "some" line.
 *  1  psi_parse() of a PSI file written here from the input's numbers
 *     (the kernel's format, with some spacing and extra lines): every
 *     value must come back exactly.
 *  2  cgroup_parse_value() against a reference written from cgroup.h:
 *     a decimal count or "max", one optional newline, values at or
 *     above CGROUP_NO_LIMIT meaning none.
 *  3  pressure_parse_psi() against a reference from pressure.h.
 *  4  cgroup_near() against the same sum in 128-bit arithmetic.
 *  5  cgroup_find() on a fake proc tree: the input is the text of
 *     self/cgroup, a NUL, then self/mountinfo; '@' in them stands for a
 *     directory made here, where cgroup "a" has memory.current (v2) and
 *     "b" memory.usage_in_bytes (v1). A cgroup found must be a v2 one
 *     with memory.current or a v1 one with memory.usage_in_bytes, under
 *     its mount point.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup.h"
#include "fuzz.h"
#include "pressure.h"

/* A NUL-terminated copy of the rest of the input. */
static char *rest_str(struct fin *in)
{
	char *s = malloc(in->n + 1);

	FUZZ_CHECK(s, "out of memory");
	memcpy(s, in->p, in->n);
	s[in->n] = '\0';
	return s;
}

static void psi_any(struct fin *in)
{
	char *s = rest_str(in);
	struct psi_stats st;
	int r = psi_parse(s, &st);

	FUZZ_CHECK(r == 0 || r == -EINVAL, "psi_parse returned %d", r);
	FUZZ_CHECK((r == 0) == st.some.valid, "psi_parse %d, some.valid %d",
		   r, st.some.valid);
	free(s);
}

/* Appends one PSI line of @l, with the fields as the input says. */
static size_t put_line(char *buf, size_t n, size_t cap, const char *name,
		       const struct psi_line *l, uint8_t style)
{
	const char *sp = style & 1 ? "  " : " ";
	uint32_t v[3] = { l->avg10, l->avg60, l->avg300 };
	const char *keys[3] = { "avg10", "avg60", "avg300" };

	n += (size_t)snprintf(buf + n, cap - n, "%s", name);
	for (int i = 0; i < 3; i++) {
		if ((style & 2) && v[i] % 10 == 0) /* one decimal */
			n += (size_t)snprintf(buf + n, cap - n, "%s%s=%u.%u",
					      sp, keys[i], v[i] / 100,
					      v[i] % 100 / 10);
		else
			n += (size_t)snprintf(buf + n, cap - n, "%s%s=%u.%02u",
					      sp, keys[i], v[i] / 100,
					      v[i] % 100);
	}
	n += (size_t)snprintf(buf + n, cap - n, "%stotal=%llu\n", sp,
			      (unsigned long long)l->total);
	return n;
}

static void psi_round_trip(struct fin *in)
{
	struct psi_line want[2];
	struct psi_stats got;
	uint8_t style = fin_u8(in);
	char buf[512];
	size_t n = 0;
	int r;

	for (int k = 0; k < 2; k++) {
		want[k].valid = true;
		want[k].avg10 = fin_u16(in) % 10100;
		want[k].avg60 = fin_u16(in) % 10100;
		want[k].avg300 = fin_u16(in) % 10100;
		want[k].total = fin_u64(in);
	}
	if (style & 4)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n,
				      "something else\n");
	n = put_line(buf, n, sizeof(buf), "some", &want[0], style);
	if (style & 8)
		n = put_line(buf, n, sizeof(buf), "full", &want[1], style >> 4);
	if (style & 16) /* the last newline missing */
		buf[n - 1] = '\0';
	r = psi_parse(buf, &got);
	FUZZ_CHECK(r == 0, "psi_parse refuses:\n%s", buf);
	FUZZ_CHECK(got.some.valid && got.some.avg10 == want[0].avg10 &&
			   got.some.avg60 == want[0].avg60 &&
			   got.some.avg300 == want[0].avg300 &&
			   got.some.total == want[0].total,
		   "some line read back as %u %u %u %llu:\n%s", got.some.avg10,
		   got.some.avg60, got.some.avg300,
		   (unsigned long long)got.some.total, buf);
	if (style & 8)
		FUZZ_CHECK(got.full.valid && got.full.avg10 == want[1].avg10 &&
				   got.full.avg60 == want[1].avg60 &&
				   got.full.avg300 == want[1].avg300 &&
				   got.full.total == want[1].total,
			   "full line read back wrong:\n%s", buf);
	else
		FUZZ_CHECK(!got.full.valid, "a full line that is not there");
}

/* Digits only, as a 128-bit value (saturating); -1 if not digits. */
static int ref_digits(const char *s, size_t len, unsigned __int128 *v)
{
	*v = 0;
	if (!len)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (*v < ((unsigned __int128)1 << 100))
			*v = *v * 10 + (unsigned)(s[i] - '0');
	}
	return 0;
}

static void cgroup_value(struct fin *in)
{
	char *s = rest_str(in);
	size_t len = strlen(s);
	unsigned __int128 x;
	uint64_t v = 0, want = 0;
	int r, rr;

	if (len && s[len - 1] == '\n')
		len--;
	if (len == 3 && memcmp(s, "max", 3) == 0) {
		rr = 0;
		want = UINT64_MAX;
	} else if (ref_digits(s, len, &x) == 0 && x <= UINT64_MAX) {
		rr = 0;
		want = x >= CGROUP_NO_LIMIT ? UINT64_MAX : (uint64_t)x;
	} else {
		rr = -EINVAL;
	}
	r = cgroup_parse_value(s, &v);
	FUZZ_CHECK(r == rr, "cgroup_parse_value(\"%s\") returned %d, the "
		   "reference %d", s, r, rr);
	if (r == 0)
		FUZZ_CHECK(v == want, "cgroup_parse_value(\"%s\") = %llu, the "
			   "reference %llu", s, (unsigned long long)v,
			   (unsigned long long)want);
	free(s);
}

static void psi_setting(struct fin *in)
{
	char *s = rest_str(in);
	enum pressure_mode mode = PRESSURE_AUTO, want_mode = PRESSURE_AUTO;
	unsigned int pct = 0, want_pct = PRESSURE_PSI_DEFAULT_PCT;
	unsigned __int128 x;
	int r, rr = 0;

	if (strcmp(s, "on") == 0)
		want_mode = PRESSURE_ON;
	else if (strcmp(s, "off") == 0)
		want_mode = PRESSURE_OFF;
	else if (strcmp(s, "auto") == 0)
		want_mode = PRESSURE_AUTO;
	else if (ref_digits(s, strlen(s), &x) == 0 && x >= 1 && x <= 100)
		want_mode = PRESSURE_ON, want_pct = (unsigned int)x;
	else
		rr = -EINVAL;
	r = pressure_parse_psi(s, &mode, &pct);
	FUZZ_CHECK(r == rr, "pressure_parse_psi(\"%s\") returned %d, the "
		   "reference %d", s, r, rr);
	if (r == 0)
		FUZZ_CHECK(mode == want_mode && pct == want_pct,
			   "pressure_parse_psi(\"%s\"): mode %d pct %u, the "
			   "reference %d %u", s, (int)mode, pct,
			   (int)want_mode, want_pct);
	free(s);
}

static void near(struct fin *in)
{
	uint64_t cur = fin_u64(in), limit = fin_u64(in), excess = 1;
	unsigned int margin = fin_u8(in) % 100;
	unsigned __int128 line;
	bool r, want;

	if (fin_u8(in) & 1)
		limit = UINT64_MAX;
	r = cgroup_near(cur, limit, margin, &excess);
	if (limit == UINT64_MAX) {
		FUZZ_CHECK(!r && excess == 0, "near an absent limit");
		return;
	}
	line = (unsigned __int128)limit -
	       (unsigned __int128)limit * margin / 100;
	want = cur >= line;
	FUZZ_CHECK(r == want && excess == (want ? (uint64_t)(cur - line) : 0),
		   "cgroup_near(%llu, %llu, %u): %d excess %llu",
		   (unsigned long long)cur, (unsigned long long)limit, margin,
		   r, (unsigned long long)excess);
}

/* --- cgroup_find() on a fake proc tree ---------------------------------- */

static char fake[512]; /* the tree's root; '@' in the input */

static void write_file(const char *path, const char *text, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	FUZZ_CHECK(fd >= 0, "create %s", path);
	FUZZ_CHECK(write(fd, text, len) == (ssize_t)len, "write %s", path);
	close(fd);
}

/* The fake tree, made for each input and removed after it. */
static bool make_tree(void)
{
	char p[700];

	snprintf(fake, sizeof(fake), "%s/cg-%d", fuzz_tmpdir(), (int)getpid());
	snprintf(p, sizeof(p), "%s/proc", fake);
	if (mkdir(fake, 0755) || mkdir(p, 0755))
		return false;
	snprintf(p, sizeof(p), "%s/proc/self", fake);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/a", fake);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/a/memory.current", fake);
	write_file(p, "4096\n", 5);
	snprintf(p, sizeof(p), "%s/b", fake);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/b/memory.usage_in_bytes", fake);
	write_file(p, "4096\n", 5);
	return true;
}

/* Writes @len bytes of @s to the fake proc file @name, '@' expanded. */
static void put_proc(const char *name, const uint8_t *s, size_t len)
{
	size_t cap = len * (strlen(fake) + 1) + 1, n = 0;
	char *text = malloc(cap), path[700];

	FUZZ_CHECK(text, "out of memory");
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '@') {
			memcpy(text + n, fake, strlen(fake));
			n += strlen(fake);
		} else {
			text[n++] = (char)s[i];
		}
	}
	snprintf(path, sizeof(path), "%s/proc/self/%s", fake, name);
	write_file(path, text, n);
	free(text);
}

static void find(struct fin *in)
{
	const uint8_t *nul = memchr(in->p, 0, in->n);
	size_t n1 = nul ? (size_t)(nul - in->p) : in->n;
	char proc[600], *dir = NULL, *top = NULL;
	int version = 0, r;

	if (!make_tree()) {
		fuzz_remove_tree(fake);
		FUZZ_CHECK(0, "cannot make the fake tree %s", fake);
	}
	put_proc("cgroup", in->p, n1);
	put_proc("mountinfo", nul ? nul + 1 : in->p + n1,
		 nul ? in->n - n1 - 1 : 0);
	snprintf(proc, sizeof(proc), "%s/proc", fake);
	r = cgroup_find(proc, &dir, &top, &version);
	FUZZ_TRACE("cgroup_find -> %d: %s (v%d), mount %s", r,
		   r == 0 ? dir : "-", r == 0 ? version : 0, r == 0 ? top : "-");
	fuzz_remove_tree(fake);
	FUZZ_CHECK(r == 0 || r == -ENOENT || r == -ENOMEM, "cgroup_find: %d",
		   r);
	if (r != 0)
		return;
	FUZZ_CHECK(dir && top, "found, but no dir or top");
	FUZZ_CHECK(version == 1 || version == 2, "version %d", version);
	/* The tree is gone: check the names, not the files. */
	FUZZ_CHECK(strcmp(dir + strlen(dir) - 2, version == 2 ? "/a" : "/b") ==
			   0 ||
			   strstr(dir, version == 2 ? "/a/" : "/b/"),
		   "%s found as v%d, but only %s/a has memory.current and "
		   "%s/b memory.usage_in_bytes",
		   dir, version, fake, fake);
	FUZZ_CHECK(strncmp(dir, top, strlen(top)) == 0,
		   "cgroup %s is not under its mount point %s", dir, top);
	free(dir);
	free(top);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fin in = { data, size };
	uint8_t mode = fin_u8(&in);

	fuzz_op_index = 0;
	switch (mode % 6) {
	case 0:
		psi_any(&in);
		break;
	case 1:
		psi_round_trip(&in);
		break;
	case 2:
		cgroup_value(&in);
		break;
	case 3:
		psi_setting(&in);
		break;
	case 4:
		near(&in);
		break;
	default:
		find(&in);
		break;
	}
	return 0;
}
