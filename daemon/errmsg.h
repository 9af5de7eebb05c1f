/* SPDX-License-Identifier: MIT */
/*
 * errmsg.h - the one way daemon/ functions fill in an error message
 *
 * Functions that can fail for a reason a user must read take a buffer
 * (@err, @errlen; NULL or 0 when the caller does not want the words) and
 * return a negative errno. errmsg() formats the message and gives back
 * -@e, so a failure is one line: return errmsg(err, errlen, EIO, "...").
 */
#ifndef ZRAMD_ERRMSG_H
#define ZRAMD_ERRMSG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

static inline void errmsg_v(char *err, size_t errlen, const char *fmt,
			    va_list ap)
{
	if (err && errlen)
		vsnprintf(err, errlen, fmt, ap);
}

static inline int __attribute__((format(printf, 4, 5)))
errmsg(char *err, size_t errlen, int e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	errmsg_v(err, errlen, fmt, ap);
	va_end(ap);
	return -e;
}

#endif /* ZRAMD_ERRMSG_H */
