/* SPDX-License-Identifier: MIT */
/*
 * params.h - the configuration keys of a device, from the command line and
 *            from a config file
 *
 * One table (params.c) lists every key: its name, how its value is parsed
 * and checked, its default, and its help text. The plugin's .config and
 * the config file (config=PATH) both go through it, so they accept the
 * same keys and the same values, and refuse bad ones with the same words.
 *
 * The config file is an INI file read with libinih: "key = value" lines,
 * either before any section or in a [zramd] section (other sections are
 * refused). Lines starting with '#' or ';' are comments; a comment after a
 * value must start with " ;". The "config" key is not allowed in the file.
 * A key given on the command line wins over the file, whatever the order
 * of the arguments. A key given twice (on the command line, or in the
 * file) is an error. Relative paths in the file are relative to the
 * file's directory, on the command line to the current directory.
 *
 * Sizes (size, mem_limit, backing_size) are a decimal number with an
 * optional suffix, as nbdkit_parse_size() reads them: b or none (bytes),
 * s (512-byte sectors), k, m, g, t, p, e (powers of 1024, either case).
 *
 * Errors are reported as ONE line written into a caller's buffer, naming
 * the key, the bad value and what is allowed; for the file, prefixed with
 * "FILE:LINE: ". Functions here do not print.
 */
#ifndef ZRAMD_PARAMS_H
#define ZRAMD_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PARAMS_ERR_LEN 512

/* Where a value came from; a later source may not override an earlier one. */
enum params_origin {
	PARAMS_UNSET = 0,
	PARAMS_DEFAULT,
	PARAMS_FILE,
	PARAMS_CMDLINE,
};

/* psi= */
#define PARAMS_PSI_OFF	   0u
#define PARAMS_PSI_DEFAULT 10u /* psi=on: "some" stall above 10% of 1 s */

struct shrinker_config;

struct zramd_params {
	uint64_t size;			/* bytes */
	char *allocator;		/* a registered zpool type */
	char *compressor;		/* "lz4", "zstd" or "zstd:LEVEL" */
	unsigned int acceleration;	/* LZ4, 1..65537 */
	unsigned int huge_threshold;	/* bytes, 1..4095 */
	char *stats;			/* stats file, absolute; NULL: none */
	unsigned int stats_interval;	/* seconds; 0: only at exit */
	uint64_t mem_limit;		/* bytes; 0: none */
	char *config;			/* config file, absolute; NULL: none */
	char *backing;			/* backing file, absolute; NULL: none */
	uint64_t backing_size;		/* bytes; 0: as large as needed */
	unsigned int writeback_idle;	/* seconds; 0: off */
	unsigned int mem_high;		/* percent of mem_limit */
	unsigned int mem_low;		/* percent of mem_limit */
	unsigned int psi;		/* percent of time stalled; 0: off */
	char *mlock;			/* "off" or "onfault" (localswap.c) */
	char *backing_force;		/* "yes": overwrite a signature */
	char *persist;			/* snapshot file, absolute; NULL: none */
	char *promote;			/* "off": hot sectors stay on disk */
	char *recompress;		/* "off", "zstd" or "zstd:LEVEL" */
	unsigned int recompress_idle;	/* seconds; 0: only under pressure */
	unsigned int pack_sectors;	/* sectors of a pack at most */

	/* Internal: per-key origin, the directory of the config file. */
	unsigned char origin[32];
	char *config_dir;
};

/**
 * params_init() - fill in the defaults
 * @p: the parameters; free with params_free()
 *
 * Return: 0, or -ENOMEM.
 */
int params_init(struct zramd_params *p);

/* Free the strings of @p. */
void params_free(struct zramd_params *p);

/**
 * params_set() - set one key from the command line
 * @p:     the parameters
 * @key:   the key ("size" for a bare argument)
 * @value: its value
 * @err:   where an error message goes, PARAMS_ERR_LEN bytes
 *
 * Return: 0, or -1 with a message in @err: unknown key, key given twice,
 * bad value (not a number, out of range, bad size suffix, unknown choice).
 */
int params_set(struct zramd_params *p, const char *key, const char *value,
	       char *err);

/**
 * params_finish() - read the config file, if any, and check the whole
 * @p:   the parameters
 * @err: where an error message goes, PARAMS_ERR_LEN bytes
 *
 * Keys set on the command line keep their values; the file fills in the
 * others. Then the cross checks: size given; a non-zero backing_size or
 * writeback_idle without backing; the backing file's or the stats file's
 * directory missing; mem_limit too small to hold a sector; mem_low not
 * below mem_high.
 *
 * Return: 0, or -1 with a message in @err (for the file: missing or
 * unreadable file, syntax error, unknown section, unknown key, a key given
 * twice, a bad value, with the file name and line).
 */
int params_finish(struct zramd_params *p, char *err);

/**
 * params_shrinker_config() - the shrinker's configuration from the keys
 * @p:   the parameters, after params_finish()
 * @cfg: filled in
 *
 * mem_limit, mem_high and mem_low go straight through; writeback_idle is
 * the idle age. psi=off turns PSI off; psi not given watches PSI where the
 * kernel has it (PRESSURE_AUTO, 10%); psi given (on or a percentage)
 * requires it (PRESSURE_ON), so a machine without PSI refuses to start.
 * The cgroup limits are always watched where there are any.
 */
void params_shrinker_config(const struct zramd_params *p,
			    struct shrinker_config *cfg);

/**
 * params_parse_size() - parse a size as nbdkit_parse_size() does
 * @str: the text
 * @out: the size in bytes, at most 2^63-1
 * @why: on error, the reason ("not a number", "bad size suffix 'x'", ...)
 *
 * Return: 0, or -1 with @why set to a static string.
 */
int params_parse_size(const char *str, uint64_t *out, const char **why);

/* size=N%: a share of the machine's RAM, from 1% to this (zram-generator's
 * "ram / 2" is size=50%; more than 100% is allowed, as swap on zram may
 * hold more data than RAM once compressed). */
#define PARAMS_RAM_PCT_MAX     400
#define PARAMS_RAM_PCT_MAX_STR "400"

/**
 * params_parse_ram_share() - parse "N%" as N percent of the machine's RAM
 * @str: the text, a whole number followed by '%'
 * @out: the size in bytes, rounded down to 4 KiB
 * @why: on error, the reason
 *
 * RAM is MemTotal, as sysconf(_SC_PHYS_PAGES) gives it.
 *
 * Return: 0, or -1 with @why set to a static string (not a whole number
 * of percent; out of range, 1..PARAMS_RAM_PCT_MAX; RAM unknown).
 */
int params_parse_ram_share(const char *str, uint64_t *out, const char **why);

/* The machine's RAM in bytes (0 if unknown). */
uint64_t params_ram_bytes(void);

/**
 * params_help() - the help text of every key, for nbdkit --help
 *
 * Return: a static, NUL-terminated text: one "key=VALUE  help (default)"
 * line per key.
 */
const char *params_help(void);

/* Calls @fn for each key, with its name, value syntax, default and help. */
void params_for_each_key(void (*fn)(const char *name, const char *syntax,
				    const char *def, const char *help,
				    void *arg),
			 void *arg);

#endif /* ZRAMD_PARAMS_H */
