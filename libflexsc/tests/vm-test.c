// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * libflexsc against a FlexSC kernel: built from the installed library
 * with `pkg-config --static --cflags --libs libflexsc`, run in the VM by
 * the suite (clib::installed_library).
 *
 *   libflexsc-test [--expect ring|v1]
 *
 * --expect: the mode the default queue must get; the suite probes the
 * kernel for FLEXSC_REGISTER_RING itself and passes its answer.
 * Prints one line per check and a summary; exits 0 when all passed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libflexsc.h>

static int passed, failed;

#define CHECK(cond, ...)                                                      \
	do {                                                                  \
		if (cond) {                                                   \
			passed++;                                             \
		} else {                                                      \
			failed++;                                             \
			printf("not ok %s:%d: %s: ", __func__, __LINE__, #cond); \
			printf(__VA_ARGS__);                                  \
			printf("\n");                                         \
		}                                                             \
	} while (0)

static const char *mode_of(const struct flexsc_queue *q)
{
	return flexsc_queue_features(q) & FLEXSC_FEAT_RING ? "ring" : "v1";
}

static struct flexsc_sysentry *must_get(struct flexsc_queue *q)
{
	struct flexsc_sysentry *e = flexsc_get_entry(q);

	if (!e) {
		printf("not ok: no free entry\n");
		exit(1);
	}
	return e;
}

/* Eight different calls in one batch; each result checked by its tag. */
enum { T_GETPID, T_GETTID, T_WRITE, T_READ_NULL, T_CLOSE_BAD, T_UNKNOWN, T_SLEEP, T_LSEEK };

static void check_batch(struct flexsc_queue *q)
{
	struct __kernel_timespec ms = { .tv_nsec = 1000000 };
	struct flexsc_sysentry *e;
	char buf[8];
	int fds[2], devnull = open("/dev/null", O_RDONLY), seen = 0, mask = 0;

	CHECK(pipe(fds) == 0, "pipe");
	e = must_get(q);
	flexsc_prep_getpid(e);
	flexsc_set_data64(q, e, T_GETPID);
	e = must_get(q);
	flexsc_prep_gettid(e);
	flexsc_set_data64(q, e, T_GETTID);
	e = must_get(q);
	flexsc_prep_write(e, fds[1], "libflexsc", 9);
	flexsc_set_data64(q, e, T_WRITE);
	e = must_get(q);
	flexsc_prep_read(e, devnull, buf, sizeof(buf));
	flexsc_set_data64(q, e, T_READ_NULL);
	e = must_get(q);
	flexsc_prep_close(e, -1);
	flexsc_set_data64(q, e, T_CLOSE_BAD);
	e = must_get(q);
	flexsc_prep_syscall(e, 500, 0, 0, 0, 0, 0, 0);	/* no such call */
	flexsc_set_data64(q, e, T_UNKNOWN);
	e = must_get(q);
	flexsc_prep_nanosleep(e, &ms);
	flexsc_set_data64(q, e, T_SLEEP);
	e = must_get(q);
	flexsc_prep_lseek(e, fds[0], 0, SEEK_CUR);
	flexsc_set_data64(q, e, T_LSEEK);
	CHECK(flexsc_queue_entries(q) > 8 || flexsc_get_entry(q) == NULL,
	      "a full queue has no free entry");

	CHECK(flexsc_submit(q) == 8, "submit 8");
	CHECK(flexsc_inflight(q) == 8, "8 in flight");
	CHECK(flexsc_submit_and_wait(q, 8) == 0, "wait for all 8");
	CHECK(flexsc_cq_ready(q) == 8, "8 ready: %u", flexsc_cq_ready(q));
	flexsc_for_each_cqe(q, e) {
		uint64_t tag = flexsc_get_data64(q, e);
		long long ret = e->ret;

		mask |= 1 << tag;
		switch (tag) {
		case T_GETPID: CHECK(ret == getpid(), "getpid %lld", ret); break;
		case T_GETTID: CHECK(ret == gettid(), "gettid %lld", ret); break;
		case T_WRITE: CHECK(ret == 9, "write %lld", ret); break;
		case T_READ_NULL: CHECK(ret == 0, "read /dev/null %lld", ret); break;
		case T_CLOSE_BAD: CHECK(ret == -EBADF, "close(-1) %lld", ret); break;
		case T_UNKNOWN: CHECK(ret == -ENOSYS, "call 500 %lld", ret); break;
		case T_SLEEP: CHECK(ret == 0, "nanosleep %lld", ret); break;
		case T_LSEEK: CHECK(ret == -ESPIPE, "lseek on a pipe %lld", ret); break;
		default: CHECK(0, "unknown tag %llu", (unsigned long long)tag);
		}
		flexsc_cqe_seen(q, e);
		seen++;
	}
	CHECK(seen == 8 && mask == 0xff, "for_each saw %d (mask %#x)", seen, mask);
	CHECK(flexsc_inflight(q) == 0, "none in flight");
	CHECK(read(fds[0], buf, sizeof(buf)) == 8 && !memcmp(buf, "libflexs", 8),
	      "the write reached the pipe");
	if (q->ring)
		CHECK(q->ring->cq_head == q->ring->cq_tail && q->ring->sq_head == q->ring->sq_tail,
		      "ring drained: sq %u/%u cq %u/%u", q->ring->sq_head, q->ring->sq_tail,
		      q->ring->cq_head, q->ring->cq_tail);
	close(fds[0]);
	close(fds[1]);
	close(devnull);
}

/* A blocked call: the timeout expires, then a direct write frees it. */
static void check_blocked(struct flexsc_queue *q)
{
	struct __kernel_timespec short_wait = { .tv_nsec = 50 * 1000000 };
	struct __kernel_timespec long_wait = { .tv_sec = 10 };
	struct flexsc_sysentry *e;
	char c = 0;
	int fds[2];

	CHECK(pipe(fds) == 0, "pipe");
	CHECK(flexsc_peek_cqe(q, &e) == -EAGAIN && e == NULL, "peek with nothing in flight");
	CHECK(flexsc_wait_cqe(q, &e) == -EAGAIN, "wait with nothing in flight");
	e = must_get(q);
	flexsc_prep_read(e, fds[0], &c, 1);
	flexsc_submit(q);
	CHECK(flexsc_wait_cqe_timeout(q, &e, &short_wait) == -ETIMEDOUT, "timeout");
	CHECK(flexsc_wait_cqe_nr(q, &e, 2) == -EINVAL, "waiting for more than in flight");
	CHECK(write(fds[1], "x", 1) == 1, "write");
	CHECK(flexsc_wait_cqe_timeout(q, &e, &long_wait) == 0 && e->ret == 1 && c == 'x',
	      "the read completed: %lld", e ? (long long)e->ret : 0LL);
	if (e)
		flexsc_cqe_seen(q, e);
	close(fds[0]);
	close(fds[1]);
}

/* Many batches of every size: the free list and the ring's counters
 * go round many times. */
static void check_rounds(struct flexsc_queue *q)
{
	unsigned int n = flexsc_queue_entries(q), calls = 0, bad = 0;
	struct flexsc_sysentry *e;

	for (unsigned int round = 0; round < 300; round++) {
		unsigned int batch = 1 + round % n, got = 0;

		for (unsigned int i = 0; i < batch; i++) {
			e = must_get(q);
			flexsc_prep_getpid(e);
			flexsc_set_data64(q, e, round);
		}
		flexsc_submit(q);
		while (got < batch) {
			if (flexsc_wait_cqe(q, &e) != 0) {
				bad++;
				break;
			}
			bad += e->ret != getpid() || flexsc_get_data64(q, e) != round;
			flexsc_cqe_seen(q, e);
			got++;
		}
		calls += got;
	}
	CHECK(bad == 0, "%u bad results in %u calls", bad, calls);
	if (q->ring)
		CHECK(q->ring->sq_tail == q->ring->cq_head && q->ring->cq_head == q->cq_head,
		      "ring counters: sq_tail %u cq_head %u", q->ring->sq_tail, q->ring->cq_head);
}

static void *other_thread_exit(void *arg)
{
	return (void *)(intptr_t)flexsc_queue_exit(arg);
}

static void *own_queue(void *arg)
{
	struct flexsc_queue q;
	struct flexsc_sysentry *e;
	intptr_t ok = 0;

	(void)arg;
	if (flexsc_queue_init(4, &q, 0) != 0)
		return (void *)0;
	e = flexsc_get_entry(&q);
	flexsc_prep_gettid(e);
	flexsc_submit(&q);
	ok = flexsc_wait_cqe(&q, &e) == 0 && e->ret == gettid();
	ok &= flexsc_queue_exit(&q) == 0;
	return (void *)ok;
}

int main(int argc, char **argv)
{
	const char *expect = NULL;
	struct flexsc_queue q, q2;
	struct flexsc_sysentry *e;
	pthread_t t;
	void *res;
	int ret;

	/* Line-buffered: where a hang stops the output says where it is. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && !strcmp(argv[1], "--expect"))
		expect = argv[2];
	CHECK(flexsc_abi_version() == FLEXSC_ABI_VERSION, "abi_version %d", flexsc_abi_version());
	CHECK(flexsc_supported() == 1, "supported");
	if (!flexsc_supported()) {
		printf("libflexsc-test: 0 passed, %d failed (no FlexSC)\n", failed);
		return 1;
	}
	CHECK(flexsc_queue_init(0, &q, 0) == -EINVAL, "0 entries");
	CHECK(flexsc_queue_init(FLEXSC_MAX_ENTRIES + 1, &q, 0) == -EINVAL, "too many entries");
	CHECK(flexsc_queue_init(8, &q, 1U << 31) == -EINVAL, "unknown flags");

	/* The default queue: the ring where the kernel has it. */
	ret = flexsc_queue_init(8, &q, 0);
	CHECK(ret == 0, "queue_init: %d", ret);
	if (ret)
		return 1;
	printf("# default queue: %s, %u entries\n", mode_of(&q), flexsc_queue_entries(&q));
	if (expect)
		CHECK(!strcmp(mode_of(&q), expect), "mode %s, expected %s", mode_of(&q), expect);
	CHECK(flexsc_queue_entries(&q) == 8 && q.hdr->nentries == 8, "8 entries");
	CHECK(flexsc_queue_init(8, &q2, FLEXSC_QUEUE_NO_RING) == -EBUSY, "a second registration");
	printf("# check_batch\n");
	check_batch(&q);
	printf("# check_blocked\n");
	check_blocked(&q);
	printf("# check_rounds\n");
	check_rounds(&q);

	/* Only the registered thread may tear it down. */
	printf("# teardown rules\n");
	pthread_create(&t, NULL, other_thread_exit, &q);
	pthread_join(t, &res);
	CHECK((intptr_t)res == -EINVAL, "queue_exit from another thread: %ld", (long)(intptr_t)res);
	e = must_get(&q);
	flexsc_prep_getpid(e);
	flexsc_submit(&q);
	CHECK(flexsc_wait_cqe(&q, &e) == 0 && e->ret == getpid(), "still registered");
	flexsc_cqe_seen(&q, e);

	/* Another thread's queue beside this one. */
	pthread_create(&t, NULL, own_queue, NULL);
	pthread_join(t, &res);
	CHECK(res == (void *)1, "a queue in another thread");

	/* Teardown with a call blocked in flight: interrupted, not waited for. */
	printf("# teardown with a blocked call\n");
	{
		int fds[2];
		char c;

		CHECK(pipe(fds) == 0, "pipe");
		e = must_get(&q);
		flexsc_prep_read(e, fds[0], &c, 1);
		if (q.ring)
			printf("# ring: sq %u/%u, cq %u/%u\n",
			       __atomic_load_n(&q.ring->sq_head, __ATOMIC_ACQUIRE), q.ring->sq_tail,
			       __atomic_load_n(&q.ring->cq_tail, __ATOMIC_ACQUIRE), q.ring->cq_head);
		flexsc_submit(&q);
		printf("# submitted\n");
		CHECK(flexsc_queue_exit(&q) == 0, "queue_exit with a blocked read");
		printf("# exited\n");
		close(fds[0]);
		close(fds[1]);
	}
	errno = 0;
	CHECK(flexsc_wait(0, NULL) == -1 && errno == EINVAL, "unregistered: errno %d", errno);

	/* Plain ABI v1 on request, with an entry count the ring would round. */
	printf("# NO_RING\n");
	ret = flexsc_queue_init(3, &q, FLEXSC_QUEUE_NO_RING);
	CHECK(ret == 0 && flexsc_queue_features(&q) == 0 && !q.ring, "NO_RING: %d", ret);
	if (ret == 0) {
		CHECK(flexsc_queue_entries(&q) == 3, "3 entries");
		check_rounds(&q);
		CHECK(flexsc_queue_exit(&q) == 0, "exit");
	}
	ret = flexsc_queue_init(3, &q, 0);
	CHECK(ret == 0, "default with 3: %d", ret);
	if (ret == 0) {
		CHECK(flexsc_queue_entries(&q) == (q.ring ? 4u : 3u), "%s: %u entries", mode_of(&q),
		      flexsc_queue_entries(&q));
		check_rounds(&q);
		CHECK(flexsc_queue_exit(&q) == 0, "exit");
	}

	printf("libflexsc-test: mode %s, %d passed, %d failed\n", expect ? expect : "?", passed,
	       failed);
	return failed ? 1 : 0;
}
