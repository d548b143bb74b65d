// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * The host test: what can be checked without a FlexSC kernel.
 *
 * 1. Support detection agrees with /sys/kernel/flexsc/abi_version, and
 *    where FlexSC is absent every entry point fails with ENOSYS without
 *    calling the kernel (463-465 are other calls on kernels from 6.13).
 * 2. The queue's bookkeeping (free list, tags, batches, completions,
 *    for_each, the ring's counters) against a simulated kernel: a thread
 *    that claims SUBMITTED entries by compare-and-swap and completes them,
 *    out of order, as the real one may.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

static int failures;

/* The simulated kernel reads and writes these concurrently. */
#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_ACQUIRE)

#define CHECK(cond, ...)                                                      \
	do {                                                                  \
		if (!(cond)) {                                                \
			printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			printf(__VA_ARGS__);                                  \
			printf("\n");                                         \
			failures++;                                           \
		}                                                             \
	} while (0)

static void test_detection(void)
{
	struct flexsc_queue q;
	struct flexsc_params p;
	int v = flexsc_abi_version();

	if (access(FLEXSC_ABI_VERSION_PATH, F_OK) != 0)
		CHECK(v == -ENOENT, "abi_version %d", v);
	CHECK(flexsc_supported() == (v == FLEXSC_ABI_VERSION), "supported with abi %d", v);
	if (flexsc_supported()) {
		printf("# FlexSC ABI %d here: the unsupported paths are not checked\n", v);
		return;
	}
	memset(&p, 0, sizeof(p));
	errno = 0;
	CHECK(flexsc_register(&p, sizeof(p)) == -1 && errno == ENOSYS, "register errno %d", errno);
	errno = 0;
	CHECK(flexsc_wait(0, NULL) == -1 && errno == ENOSYS, "wait errno %d", errno);
	errno = 0;
	CHECK(flexsc_exit() == -1 && errno == ENOSYS, "exit errno %d", errno);
	CHECK(flexsc_queue_init(8, &q, 0) == -ENOSYS, "queue_init");
	CHECK(flexsc_queue_init(8, &q, FLEXSC_QUEUE_NO_RING) == -ENOSYS, "queue_init v1");
	CHECK(q.region == NULL, "no region after a failed init");
	CHECK(flexsc_queue_exit(&q) == -EINVAL, "exit of a queue never set up");
	printf("# FlexSC not supported here (abi_version: %d): ENOSYS everywhere\n", v);
}

/* The simulated kernel. */
struct sim {
	struct flexsc_queue *q;
	int ring;
	int stop;
	unsigned long completed;
};

static int claim(struct flexsc_sysentry *e)
{
	uint32_t want = FLEXSC_SUBMITTED;

	return __atomic_compare_exchange_n(&e->status, &want, FLEXSC_BUSY, 0,
					   __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}

static void complete(struct sim *s, struct flexsc_sysentry *e)
{
	/* The "call": a value the test can predict from the arguments. */
	e->ret = (int64_t)e->nr * 1000 + (int64_t)e->args[0];
	__atomic_store_n(&e->status, FLEXSC_DONE, __ATOMIC_RELEASE);
	if (s->ring)
		__atomic_fetch_add(&s->q->ring->cq_tail, 1, __ATOMIC_RELEASE);
	__atomic_fetch_add(&s->completed, 1, __ATOMIC_RELEASE);
}

static void *sim_kernel(void *arg)
{
	struct sim *s = arg;
	struct flexsc_queue *q = s->q;
	uint32_t claimed[FLEXSC_MAX_ENTRIES];

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		uint32_t n = 0;

		if (s->ring) {
			uint32_t head = q->ring->sq_head;
			uint32_t tail = __atomic_load_n(&q->ring->sq_tail, __ATOMIC_ACQUIRE);

			for (; head != tail; head++) {
				uint32_t idx = q->ring->sq[head & (q->nentries - 1)];

				if (idx < q->nentries && claim(&q->entries[idx]))
					claimed[n++] = idx;
			}
			__atomic_store_n(&q->ring->sq_head, head, __ATOMIC_RELEASE);
		} else {
			for (uint32_t i = 0; i < q->nentries; i++)
				if (claim(&q->entries[i]))
					claimed[n++] = i;
		}
		/* Last claimed first: completions come in any order. */
		while (n)
			complete(s, &q->entries[claimed[--n]]);
		sched_yield();
	}
	return NULL;
}

static struct flexsc_sysentry *spin_cqe(struct flexsc_queue *q)
{
	struct flexsc_sysentry *e;

	for (long i = 0; i < 100000000; i++) {
		if (flexsc_peek_cqe(q, &e) == 0)
			return e;
		sched_yield();
	}
	return NULL;
}

static void test_queue(int ring, unsigned int n)
{
	struct flexsc_queue q;
	struct sim s = { .q = &q, .ring = ring };
	size_t len = ring ? FLEXSC_RING_REGION_LEN(n) : 64 + 64 * (size_t)n;
	void *region = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			    -1, 0);
	struct flexsc_sysentry *e, *first = NULL;
	pthread_t thread;
	unsigned int seen = 0, rounds = 0;
	uint64_t sum = 0;

	CHECK(region != MAP_FAILED, "mmap");
	CHECK(flexsc__queue_setup(&q, region, len, n, ring ? FLEXSC_FEAT_RING : 0) == 0, "setup");
	CHECK(flexsc_queue_entries(&q) == n, "entries");
	CHECK(!!(flexsc_queue_features(&q) & FLEXSC_FEAT_RING) == ring, "features");
	CHECK(flexsc_peek_cqe(&q, &e) == -EAGAIN && e == NULL, "peek on an empty queue");
	CHECK(flexsc_wait_cqe(&q, &e) == -EAGAIN, "wait with nothing in flight");

	/* Every entry, then none: the free list is FIFO over all of them. */
	for (unsigned int i = 0; i < n; i++) {
		e = flexsc_get_entry(&q);
		CHECK(e == &q.entries[i], "entry %u is %ld", i, e ? (long)(e - q.entries) : -1L);
		if (!e)
			return;
		CHECK(flexsc_get_data64(&q, e) == 0, "tag cleared");
		flexsc_prep_syscall(e, 7, i, 0, 0, 0, 0, 0);
		flexsc_set_data64(&q, e, 0x1000 + i);
		CHECK(e->status == FLEXSC_FREE, "a taken entry stays FREE until submitted");
	}
	CHECK(flexsc_get_entry(&q) == NULL, "no entry beyond %u", n);
	CHECK(flexsc_inflight(&q) == 0, "nothing in flight before submit");

	/* Submit with the kernel stopped: everything SUBMITTED, the ring's
	 * tail published once. */
	CHECK(flexsc_submit(&q) == (int)n, "submit");
	CHECK(flexsc_submit(&q) == 0, "an empty batch");
	CHECK(flexsc_inflight(&q) == n, "in flight");
	for (unsigned int i = 0; i < n; i++)
		CHECK(q.entries[i].status == FLEXSC_SUBMITTED, "entry %u submitted", i);
	if (ring) {
		CHECK(q.ring->sq_tail == n, "sq_tail %u", q.ring->sq_tail);
		for (unsigned int i = 0; i < n; i++)
			CHECK(q.ring->sq[i] == i, "sq[%u] = %u", i, q.ring->sq[i]);
	}
	CHECK(flexsc_peek_cqe(&q, &e) == -EAGAIN, "nothing done yet");
	CHECK(flexsc_cq_ready(&q) == 0, "none ready");

	/* A submitted entry cannot be seen before it is done. */
	flexsc_cqe_seen(&q, &q.entries[0]);
	CHECK(flexsc_inflight(&q) == n && q.entries[0].status == FLEXSC_SUBMITTED,
	      "seen on a SUBMITTED entry is ignored");

	pthread_create(&thread, NULL, sim_kernel, &s);
	while (__atomic_load_n(&s.completed, __ATOMIC_ACQUIRE) < n)
		sched_yield();
	CHECK(flexsc_cq_ready(&q) == n, "all ready: %u", flexsc_cq_ready(&q));

	/* Peek returns the same entry until it is seen. */
	CHECK(flexsc_peek_cqe(&q, &first) == 0, "peek");
	CHECK(flexsc_peek_cqe(&q, &e) == 0 && e == first, "peek again");

	/* for_each, seeing each one inside the loop. */
	flexsc_for_each_cqe(&q, e) {
		unsigned int idx = flexsc_entry_index(&q, e);

		CHECK(e->ret == 7000 + idx, "ret of %u: %lld", idx, (long long)e->ret);
		CHECK(flexsc_get_data64(&q, e) == 0x1000 + idx, "tag of %u", idx);
		sum += idx;
		seen++;
		flexsc_cqe_seen(&q, e);
		CHECK(LOAD(e->status) == FLEXSC_FREE, "seen stores FREE");
	}
	CHECK(seen == n, "for_each saw %u of %u", seen, n);
	CHECK(sum == (uint64_t)n * (n - 1) / 2, "each entry once");
	CHECK(flexsc_inflight(&q) == 0, "none in flight");
	if (ring)
		CHECK(LOAD(q.ring->cq_head) == n && q.cq_head == n, "cq_head %u",
		      LOAD(q.ring->cq_head));
	flexsc_cqe_seen(&q, first);
	CHECK(q.nfree == n, "seeing twice frees once");

	/* Freed entries come back in the order they were seen. */
	e = flexsc_get_entry(&q);
	CHECK(e && flexsc_entry_index(&q, e) == n - 1, "FIFO: the first seen comes first");
	flexsc_prep_getpid(e);
	flexsc_set_data(&q, e, &q);

	/* Many small batches, the counters wrapping through the ring. */
	for (rounds = 0; rounds < 3 * n + 5; rounds++) {
		unsigned int batch = 1 + rounds % (n < 3 ? n : 3);
		unsigned int got = 0;

		for (unsigned int i = (rounds == 0); i < batch; i++) {
			e = flexsc_get_entry(&q);
			if (!e)
				break;
			flexsc_prep_syscall(e, 1, rounds, 0, 0, 0, 0, 0);
			flexsc_set_data64(&q, e, rounds);
		}
		CHECK(flexsc_submit(&q) >= 1, "batch");
		while (flexsc_inflight(&q)) {
			e = spin_cqe(&q);
			CHECK(e != NULL, "completion in round %u", rounds);
			if (!e)
				break;
			if (flexsc_get_data(&q, e) == &q)
				CHECK(e->ret == SYS_getpid * 1000, "getpid ret %lld", (long long)e->ret);
			else
				CHECK(e->ret == 1000 + (int64_t)flexsc_get_data64(&q, e), "ret %lld",
				      (long long)e->ret);
			flexsc_cqe_seen(&q, e);
			got++;
		}
		CHECK(got >= 1, "round %u completed", rounds);
	}
	if (ring)
		CHECK(LOAD(q.ring->cq_head) == LOAD(q.ring->cq_tail) &&
		      LOAD(q.ring->sq_head) == LOAD(q.ring->sq_tail),
		      "ring drained: sq %u/%u cq %u/%u", LOAD(q.ring->sq_head),
		      LOAD(q.ring->sq_tail), LOAD(q.ring->cq_head), LOAD(q.ring->cq_tail));
	CHECK(q.nfree == n, "all free at the end");

	__atomic_store_n(&s.stop, 1, __ATOMIC_RELEASE);
	pthread_join(thread, NULL);
	flexsc__queue_release(&q);
	munmap(region, len);
	printf("# %s queue of %u: %lu simulated calls\n", ring ? "ring" : "v1", n, LOAD(s.completed));
}

int main(void)
{
	test_detection();
	test_queue(0, 1);
	test_queue(0, 5);
	test_queue(0, 64);
	test_queue(1, 1);
	test_queue(1, 4);
	test_queue(1, 64);
	printf("host-test: %s (%d failures)\n", failures ? "FAILED" : "ok", failures);
	return failures ? 1 : 0;
}
