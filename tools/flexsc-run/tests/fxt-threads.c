// SPDX-License-Identifier: GPL-2.0
/* Threads: each registers on its first call; calls from many at once;
 * thread identity; cancellation of a thread blocked in read(). */
#include "fxt.h"
#include <fcntl.h>
#include <pthread.h>
#include <sys/syscall.h>

#define NTHREADS 8
#define ITERS 2000

struct arg {
	int idx;
	int bad;
	pid_t tid;
};

static void *worker(void *p)
{
	struct arg *a = p;
	char path[64], buf[16];
	int fd;

	a->tid = (pid_t)syscall(SYS_gettid);
	snprintf(path, sizeof(path), "/tmp/fxt-thr-%d-%d", (int)getpid(), a->idx);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) {
		a->bad++;
		return NULL;
	}
	for (int i = 0; i < ITERS; i++) {
		if (getppid() <= 0)
			a->bad++;
		if (pwrite(fd, &i, sizeof(i), 0) != sizeof(i))
			a->bad++;
		if (pread(fd, buf, sizeof(i), 0) != sizeof(i) || memcmp(buf, &i, sizeof(i)))
			a->bad++;
	}
	if (syscall(SYS_gettid) != a->tid)
		a->bad++;
	close(fd);
	unlink(path);
	return NULL;
}

static int cleaned;

static void cleanup(void *p)
{
	(void)p;
	cleaned = 1;
}

static void *reader(void *p)
{
	int fd = *(int *)p;
	char c;

	pthread_cleanup_push(cleanup, NULL);
	for (;;)
		if (read(fd, &c, 1) <= 0)
			break;
	pthread_cleanup_pop(0);
	return (void *)1;
}

int main(void)
{
	pthread_t th[NTHREADS];
	struct arg args[NTHREADS];
	int bad = 0, distinct = 1, p[2];
	void *ret;

	fxt_start();
	for (int i = 0; i < NTHREADS; i++) {
		args[i] = (struct arg){ .idx = i };
		if (pthread_create(&th[i], NULL, worker, &args[i]))
			bad++;
	}
	FXT_EQ(bad, 0, "pthread_create x8");
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < NTHREADS; i++) {
		bad += args[i].bad;
		for (int j = 0; j < i; j++)
			if (args[i].tid == args[j].tid || args[i].tid == getpid())
				distinct = 0;
	}
	FXT_EQ(bad, 0, "8 threads x 2000 x (getppid, pwrite, pread): every result right");
	fxt_ok(distinct, "every thread has its own tid");

	/* cancellation unwinds through a call in flight */
	FXT_EQ(pipe(p), 0, "pipe");
	FXT_EQ(pthread_create(&th[0], NULL, reader, &p[0]), 0, "a thread blocks in read()");
	usleep(200 * 1000);
	FXT_EQ(pthread_cancel(th[0]), 0, "pthread_cancel");
	FXT_EQ(pthread_join(th[0], &ret), 0, "pthread_join");
	fxt_ok(ret == PTHREAD_CANCELED, "the thread was cancelled");
	FXT_EQ(cleaned, 1, "its cleanup handler ran");
	/* the pipe still works: no read of the cancelled thread left over */
	FXT_EQ(write(p[1], "ab", 2), 2, "write 2 bytes");
	{
		char b[4] = { 0 };

		FXT_EQ(read(p[0], b, sizeof(b)), 2, "both bytes are read here");
	}
	return fxt_done();
}
