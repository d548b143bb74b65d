// SPDX-License-Identifier: GPL-2.0
/* fxt-bench [N]: the time of one system call, natively or under
 * flexsc-run: N getppid() and N pread() of 64 bytes, ns per call. */
#include "fxt.h"
#include <fcntl.h>
#include <sys/syscall.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 100000, bad = 0;
	char path[] = "/tmp/fxt-bench-XXXXXX", buf[64] = { 0 };
	int fd = mkstemp(path);
	double t0, t1, t2;

	if (fd < 0 || write(fd, buf, sizeof(buf)) != sizeof(buf))
		return 1;
	unlink(path);
	/* warm up: registration, rewriting */
	for (int i = 0; i < 100; i++)
		bad += syscall(SYS_getppid) <= 0;
	t0 = now();
	for (long i = 0; i < n; i++)
		bad += syscall(SYS_getppid) <= 0;
	t1 = now();
	for (long i = 0; i < n; i++)
		bad += pread(fd, buf, sizeof(buf), 0) != sizeof(buf);
	t2 = now();
	printf("getppid %.0f ns/call, pread(64) %.0f ns/call (%ld calls each)\n",
	       (t1 - t0) / n, (t2 - t1) / n, n);
	return bad != 0;
}
