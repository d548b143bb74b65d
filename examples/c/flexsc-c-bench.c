// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * getpid through libflexsc against the direct system call, from C.
 *
 *   flexsc-c-bench [--ms N] [--batch N] [--no-ring] [--json]
 *
 * Three cases, each run for --ms milliseconds (default 500) after a
 * warm-up of a tenth of that:
 *   direct          syscall(SYS_getpid) in a loop;
 *   libflexsc-poll  batches of --batch (default 32) getpid entries,
 *                   submitted at once, reaped by polling the completions;
 *   libflexsc-wait  the same, blocking in flexsc_wait() for the batch.
 * Prints ns per call for each, or with --json one JSON object per line:
 *   {"workload":"getpid","engine":"libflexsc-poll","mode":"ring",
 *    "batch":32,"calls":N,"secs":S,"ns_per_call":X}
 * Every result is checked against getpid(); a wrong one fails the run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libflexsc.h>

struct result {
	const char *engine;
	unsigned int batch;
	unsigned long calls;
	double secs;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long pid;
static unsigned long wrong;

static unsigned long run_direct(unsigned long iterations)
{
	for (unsigned long i = 0; i < iterations; i++)
		if (syscall(SYS_getpid) != pid)
			wrong++;
	return iterations;
}

/* One batch: batch getpid entries, submitted together, all reaped. */
static int run_batch(struct flexsc_queue *q, unsigned int batch, int wait)
{
	struct flexsc_sysentry *e;
	unsigned int left = batch;
	int ret;

	for (unsigned int i = 0; i < batch; i++)
		flexsc_prep_getpid(flexsc_get_entry(q));
	if (wait) {
		ret = flexsc_submit_and_wait(q, batch);
		if (ret < 0)
			return ret;
	} else {
		flexsc_submit(q);
	}
	while (left) {
		flexsc_for_each_cqe(q, e) {
			if (e->ret != pid)
				wrong++;
			flexsc_cqe_seen(q, e);
			left--;
		}
	}
	return 0;
}

static int measure(struct result *r, struct flexsc_queue *q, unsigned int ms)
{
	double warm = now() + ms / 10000.0, start, end;
	unsigned long calls = 0;
	int wait = q && strcmp(r->engine, "libflexsc-wait") == 0;

	for (int measuring = 0; measuring < 2; measuring++) {
		start = now();
		end = measuring ? start + ms / 1000.0 : warm;
		calls = 0;
		do {
			if (!q) {
				calls += run_direct(1000);
			} else {
				int ret = run_batch(q, r->batch, wait);

				if (ret < 0)
					return ret;
				calls += r->batch;
			}
		} while (now() < end);
	}
	r->calls = calls;
	r->secs = now() - start;
	return 0;
}

static void print(const struct result *r, const char *mode, int json)
{
	double ns = r->secs * 1e9 / (double)r->calls;

	if (json)
		printf("{\"workload\":\"getpid\",\"engine\":\"%s\",\"mode\":\"%s\",\"batch\":%u,"
		       "\"calls\":%lu,\"secs\":%.6f,\"ns_per_call\":%.1f}\n",
		       r->engine, mode, r->batch, r->calls, r->secs, ns);
	else
		printf("getpid %-15s %-5s batch %3u: %9.1f ns/call (%lu calls)\n", r->engine,
		       mode, r->batch, ns, r->calls);
}

int main(int argc, char **argv)
{
	unsigned int ms = 500, batch = 32, flags = 0;
	struct result direct = { .engine = "direct", .batch = 1 };
	struct result poll = { .engine = "libflexsc-poll" };
	struct result wait = { .engine = "libflexsc-wait" };
	struct flexsc_queue q;
	const char *mode;
	int json = 0, ret;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--ms") && i + 1 < argc) {
			ms = (unsigned int)atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--batch") && i + 1 < argc) {
			batch = (unsigned int)atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--no-ring")) {
			flags |= FLEXSC_QUEUE_NO_RING;
		} else if (!strcmp(argv[i], "--json")) {
			json = 1;
		} else {
			fprintf(stderr, "usage: %s [--ms N] [--batch N] [--no-ring] [--json]\n",
				argv[0]);
			return 2;
		}
	}
	if (ms == 0 || batch == 0 || batch > FLEXSC_MAX_ENTRIES) {
		fprintf(stderr, "--ms must be positive, --batch 1..%d\n", FLEXSC_MAX_ENTRIES);
		return 2;
	}
	pid = getpid();
	poll.batch = wait.batch = batch;

	ret = flexsc_queue_init(batch, &q, flags);
	if (ret < 0) {
		fprintf(stderr, "flexsc_queue_init: %s\n", strerror(-ret));
		return 1;
	}
	mode = flexsc_queue_features(&q) & FLEXSC_FEAT_RING ? "ring" : "v1";

	if (measure(&direct, NULL, ms) == 0)
		print(&direct, "-", json);
	ret = measure(&poll, &q, ms);
	if (ret == 0)
		print(&poll, mode, json);
	if (ret == 0)
		ret = measure(&wait, &q, ms);
	if (ret == 0)
		print(&wait, mode, json);
	if (ret < 0)
		fprintf(stderr, "flexsc: %s\n", strerror(-ret));
	if (flexsc_queue_exit(&q) < 0)
		ret = -1;
	if (wrong) {
		fprintf(stderr, "%lu calls returned something other than getpid()\n", wrong);
		ret = -1;
	}
	return ret < 0 ? 1 : 0;
}
