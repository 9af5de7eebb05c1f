/* SPDX-License-Identifier: MIT */
/*
 * fuzz.h - what every fuzz target in tests/fuzz/ shares
 *
 * A target defines LLVMFuzzerTestOneInput() (and may define
 * LLVMFuzzerInitialize()). It is linked twice: with libFuzzer for
 * `make fuzz`, and with replay.c, a plain main() that runs every file of a
 * corpus directory through it, for `make check-fuzz`. Either way one input
 * is one run from a clean state: a target creates what it tests (pool,
 * device, backing file) and destroys it before returning, so an input
 * replays the same way alone or after a million others.
 *
 * Inputs are read with a small cursor (struct fin) that never fails: past
 * the end it yields zeroes, so every byte string is a valid program.
 * Targets read an op code and its arguments from it and check the result
 * against a model of what the code under test must do. A broken property
 * is reported with FUZZ_CHECK(): a message naming the op, then abort(), so
 * libFuzzer saves the input and the replay driver names the file.
 */
#ifndef ZRAMD_FUZZ_H
#define ZRAMD_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* The op number within the current input, for failure messages. */
extern unsigned long fuzz_op_index;

#define FUZZ_CHECK(cond, ...)                                              \
	do {                                                               \
		if (!(cond)) {                                             \
			fprintf(stderr, "%s:%d: op %lu: check failed: %s: ", \
				__FILE__, __LINE__, fuzz_op_index, #cond);  \
			fprintf(stderr, __VA_ARGS__);                      \
			fputc('\n', stderr);                               \
			abort();                                           \
		}                                                          \
	} while (0)

/* With FUZZ_TRACE=1 in the environment, targets narrate their ops. */
extern int fuzz_trace;
#define FUZZ_TRACE(...)                                                    \
	do {                                                               \
		if (fuzz_trace) {                                          \
			fprintf(stderr, "op %lu: ", fuzz_op_index);        \
			fprintf(stderr, __VA_ARGS__);                      \
			fputc('\n', stderr);                               \
		}                                                          \
	} while (0)

/* A read cursor over the input; reads past the end return zeroes. */
struct fin {
	const uint8_t *p;
	size_t n;
};

static inline size_t fin_left(const struct fin *in)
{
	return in->n;
}

static inline uint8_t fin_u8(struct fin *in)
{
	uint8_t v;

	if (!in->n)
		return 0;
	v = *in->p++;
	in->n--;
	return v;
}

static inline uint16_t fin_u16(struct fin *in)
{
	uint16_t v = fin_u8(in);

	return (uint16_t)(v | (uint16_t)fin_u8(in) << 8);
}

static inline uint32_t fin_u32(struct fin *in)
{
	uint32_t v = fin_u16(in);

	return v | (uint32_t)fin_u16(in) << 16;
}

static inline uint64_t fin_u64(struct fin *in)
{
	uint64_t v = fin_u32(in);

	return v | (uint64_t)fin_u32(in) << 32;
}

/* Copies up to @len input bytes to @dst; returns how many were left. */
static inline size_t fin_bytes(struct fin *in, void *dst, size_t len)
{
	size_t n = len < in->n ? len : in->n;

	memcpy(dst, in->p, n);
	in->p += n;
	in->n -= n;
	return n;
}

/* splitmix64, for bulk data derived from a few input bytes. */
static inline uint64_t fuzz_rand(uint64_t *state)
{
	uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* Fills @buf with pseudo-random bytes from @seed. */
static inline void fuzz_fill_random(void *buf, size_t len, uint64_t seed)
{
	unsigned char *p = buf;
	uint64_t w = 0;

	for (size_t i = 0; i < len; i++) {
		if (i % 8 == 0)
			w = fuzz_rand(&seed);
		p[i] = (unsigned char)(w >> (8 * (i % 8)));
	}
}

/* True if @len bytes at @p are all zero (memcmp: fast, uninstrumented). */
static inline bool fuzz_all_zero(const void *p, size_t len)
{
	static const unsigned char zeroes[4096];
	const unsigned char *c = p;

	while (len) {
		size_t n = len < sizeof(zeroes) ? len : sizeof(zeroes);

		if (memcmp(c, zeroes, n) != 0)
			return false;
		c += n;
		len -= n;
	}
	return true;
}

/*
 * A directory for the files a target needs (backing files), shared by
 * every run of this user: $FUZZ_TMPDIR, /dev/shm or /tmp, then
 * zramd-fuzz-UID. Targets name their files with their process id and
 * remove them after each input, so nothing is left behind even when
 * libFuzzer ends a process without running exit handlers; the directory
 * itself is removed at exit when empty.
 * Return: its path; if none can be made, the run fails (abort()).
 */
const char *fuzz_tmpdir(void);

/* Removes @path and everything under it. */
void fuzz_remove_tree(const char *path);

#endif /* ZRAMD_FUZZ_H */
