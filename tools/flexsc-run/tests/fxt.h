/* SPDX-License-Identifier: GPL-2.0 */
/* A tiny TAP harness for flexsc-run's tests: they pass natively and under
 * flexsc-run alike; FXT_INTERCEPTED=1 also asks that libflexsc-run.so be
 * loaded. */
#ifndef FXT_H
#define FXT_H
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fxt_n, fxt_failed;
#define FXT_UNUSED __attribute__((unused))

FXT_UNUSED static void fxt_ok(int cond, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	printf("%s %d - ", cond ? "ok" : "not ok", ++fxt_n);
	vprintf(fmt, ap);
	printf("\n");
	fflush(stdout);
	va_end(ap);
	if (!cond)
		fxt_failed++;
}

#define FXT_EQ(got, want, what) do { \
	long long g_ = (long long)(got), w_ = (long long)(want); \
	fxt_ok(g_ == w_, "%s (got %lld, want %lld)", what, g_, w_); \
} while (0)

FXT_UNUSED static int fxt_preloaded(void)
{
	char line[512];
	int found = 0;
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "libflexsc-run.so"))
			found = 1;
	fclose(f);
	return found;
}

FXT_UNUSED static void fxt_start(void)
{
	const char *e = getenv("FXT_INTERCEPTED");

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (e && *e == '1')
		fxt_ok(fxt_preloaded(), "libflexsc-run.so is loaded");
}

FXT_UNUSED static int fxt_done(void)
{
	printf("1..%d\n", fxt_n);
	if (fxt_failed)
		printf("# %d failed\n", fxt_failed);
	return fxt_failed ? 1 : 0;
}
#endif
