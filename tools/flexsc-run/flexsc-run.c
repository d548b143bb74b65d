// SPDX-License-Identifier: GPL-2.0
/*
 * flexsc-run [options] [--] PROGRAM [ARGS...]
 *
 * Runs PROGRAM with libflexsc-run.so preloaded: its system calls, and
 * those of what it forks and executes, go through FlexSC (see
 * docs/flexsc-run.md). The library is looked for next to this program,
 * or where FLEXSC_RUN_LIB says.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fxrun.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: flexsc-run [options] [--] PROGRAM [ARGS...]\n"
		"\n"
		"Runs an unmodified, dynamically linked program with its system calls\n"
		"(and those of what it forks and executes) going through FlexSC.\n"
		"\n"
		"  --stats[=FILE]  at exit, per system call, how many went through FlexSC\n"
		"                  and how many ran directly (stderr, or appended to FILE\n"
		"                  per process)\n"
		"  --no-rewrite    never rewrite call sites: every call takes a SIGSYS\n"
		"  --no-flexsc     intercept, but run every call directly (a baseline)\n"
		"  --spin=N        poll the entry N times before flexsc_wait() (default 2000)\n"
		"  --idle-us=N     systhreads poll N us before they sleep (default: kernel's)\n"
		"  --cpus=LIST     CPUs for the systhreads, e.g. 1 or 0-3,6 (default: the\n"
		"                  process's affinity, one per thread, round robin)\n"
		"  --verbose       say what the interception does\n"
		"  -h, --help      this text\n");
}

static int append(char *opts, size_t cap, const char *s)
{
	size_t n = strlen(opts);

	if (n + strlen(s) + 2 > cap)
		return -1;
	if (n)
		strcat(opts, ",");
	strcat(opts, s);
	return 0;
}

static int numeric(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

int main(int argc, char **argv)
{
	char opts[1024] = "", lib[PATH_MAX], buf[PATH_MAX + 64];
	const char *env_lib = getenv(FX_ENV_LIB), *pre;
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--")) {
			i++;
			break;
		}
		if (a[0] != '-')
			break;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--stats")) {
			append(opts, sizeof(opts), "stats");
		} else if (!strncmp(a, "--stats=", 8)) {
			char path[PATH_MAX];

			if (a[8] == '/') {
				snprintf(path, sizeof(path), "%s", a + 8);
			} else if (getcwd(path, sizeof(path))) {
				size_t n = strlen(path);

				snprintf(path + n, sizeof(path) - n, "/%s", a + 8);
			}
			if (strchr(path, ',')) {
				fprintf(stderr, "flexsc-run: --stats=FILE: no ',' in FILE\n");
				return 125;
			}
			snprintf(buf, sizeof(buf), "stats=%s", path);
			if (append(opts, sizeof(opts), buf)) {
				fprintf(stderr, "flexsc-run: --stats=FILE: too long\n");
				return 125;
			}
		} else if (!strcmp(a, "--no-rewrite")) {
			append(opts, sizeof(opts), "norewrite");
		} else if (!strcmp(a, "--no-flexsc")) {
			append(opts, sizeof(opts), "noflexsc");
		} else if (!strcmp(a, "--verbose")) {
			append(opts, sizeof(opts), "verbose");
		} else if (!strncmp(a, "--spin=", 7) && numeric(a + 7)) {
			snprintf(buf, sizeof(buf), "spin=%s", a + 7);
			append(opts, sizeof(opts), buf);
		} else if (!strncmp(a, "--idle-us=", 10) && numeric(a + 10)) {
			snprintf(buf, sizeof(buf), "idle=%s", a + 10);
			append(opts, sizeof(opts), buf);
		} else if (!strncmp(a, "--cpus=", 7) && a[7]) {
			char *p;

			snprintf(buf, sizeof(buf), "cpus=%s", a + 7);
			for (p = buf; *p; p++) {
				if (*p == ',')
					*p = ':';
				else if ((*p < '0' || *p > '9') && *p != '-' && *p != ':' && p >= buf + 5) {
					fprintf(stderr, "flexsc-run: --cpus: a list like 0-3,6\n");
					return 125;
				}
			}
			append(opts, sizeof(opts), buf);
		} else {
			fprintf(stderr, "flexsc-run: unknown option %s\n", a);
			usage(stderr);
			return 125;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 125;
	}

	if (env_lib && *env_lib) {
		snprintf(lib, sizeof(lib), "%s", env_lib);
	} else {
		ssize_t n = readlink("/proc/self/exe", lib, sizeof(lib) - sizeof(FX_LIB_NAME) - 1);
		char *slash;

		if (n < 0) {
			perror("flexsc-run: /proc/self/exe");
			return 125;
		}
		lib[n] = 0;
		slash = strrchr(lib, '/');
		strcpy(slash ? slash + 1 : lib, FX_LIB_NAME);
	}
	if (access(lib, R_OK)) {
		fprintf(stderr, "flexsc-run: %s: %s\n", lib, strerror(errno));
		return 125;
	}
	pre = getenv("LD_PRELOAD");
	if (pre && *pre) {
		char *v = malloc(strlen(lib) + strlen(pre) + 2);

		if (!v)
			return 125;
		sprintf(v, "%s:%s", lib, pre);
		setenv("LD_PRELOAD", v, 1);
	} else {
		setenv("LD_PRELOAD", lib, 1);
	}
	setenv(FX_ENV_LIB, lib, 1);
	setenv(FX_ENV_OPTS, opts, 1);
	execvp(argv[i], argv + i);
	fprintf(stderr, "flexsc-run: %s: %s\n", argv[i], strerror(errno));
	return errno == ENOENT ? 127 : 126;
}
