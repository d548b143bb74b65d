// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * Submission and completion.
 *
 * An entry's life, on the library's side and in the shared region:
 *
 *   free list --get--> pending --submit--> in flight --seen--> free list
 *   (FREE)             (FREE, filled)      (SUBMITTED, BUSY, DONE)   (FREE)
 *
 * The free list, the pending batch, the set in flight and the tags are
 * the library's own memory: the kernel (or a bug writing into the region)
 * cannot make the library hand out an entry that is still in flight.
 *
 * Plain ABI v1: submitting stores SUBMITTED (release) in each entry; the
 * kernel finds them by scanning, and the library finds completions by
 * scanning the entries in flight for DONE (acquire). With the ring, the
 * entry indices also go into sq[] and sq_tail is stored once per batch
 * (release); cq_tail - cq_head says how many completions wait, so the
 * library scans only when there is something to find, and stores cq_head
 * forward as each is seen. Either way the batch ends with one full fence
 * and a look at FLEXSC_NEED_WAKEUP, as the protocol asks: without the
 * fence the systhreads could go to sleep after we read the flag and
 * before they see the batch.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>

#include "internal.h"

static inline uint32_t load_acquire(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void store_release(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

static inline int is_done(const struct flexsc_sysentry *e)
{
	return load_acquire(&e->status) == FLEXSC_DONE;
}

struct flexsc_sysentry *flexsc_get_entry(struct flexsc_queue *q)
{
	uint32_t idx;

	if (q->nfree == 0)
		return NULL;
	idx = q->free[q->free_head];
	q->free_head = q->free_head + 1 == q->nentries ? 0 : q->free_head + 1;
	q->nfree--;
	q->pending[q->npending++] = idx;
	q->user_data[idx] = 0;
	return &q->entries[idx];
}

static void inflight_add(struct flexsc_queue *q, uint32_t idx)
{
	q->inflight_pos[idx] = q->ninflight;
	q->inflight[q->ninflight++] = idx;
}

static void inflight_remove(struct flexsc_queue *q, uint32_t idx)
{
	uint32_t pos = q->inflight_pos[idx];
	uint32_t last = q->inflight[--q->ninflight];

	q->inflight[pos] = last;
	q->inflight_pos[last] = pos;
	q->inflight_pos[idx] = FLEXSC_NOT_INFLIGHT;
}

static void wake_if_needed(struct flexsc_queue *q)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&q->hdr->flags, __ATOMIC_RELAXED) & FLEXSC_NEED_WAKEUP)
		flexsc__sys_wait(0, NULL);
}

/*
 * The slot for sq_tail is ours once the kernel has taken the index
 * nentries places before it. With no more entries in flight than slots
 * that is all but certain; the exception is a kernel that completed an
 * entry (which we then reused) before storing sq_head past its slot.
 */
static void wait_for_slot(struct flexsc_queue *q, uint32_t tail)
{
	while (tail - load_acquire(&q->ring->sq_head) >= q->nentries) {
		wake_if_needed(q);
		sched_yield();
	}
}

int flexsc_submit(struct flexsc_queue *q)
{
	uint32_t n = q->npending;

	if (n == 0)
		return 0;
	if (q->ring) {
		uint32_t tail = q->sq_tail;

		for (uint32_t i = 0; i < n; i++) {
			uint32_t idx = q->pending[i];

			store_release(&q->entries[idx].status, FLEXSC_SUBMITTED);
			wait_for_slot(q, tail);
			q->ring->sq[tail & (q->nentries - 1)] = idx;
			tail++;
			inflight_add(q, idx);
		}
		/* One store publishes the batch: entries and slots before it. */
		store_release(&q->ring->sq_tail, tail);
		q->sq_tail = tail;
	} else {
		for (uint32_t i = 0; i < n; i++) {
			uint32_t idx = q->pending[i];

			store_release(&q->entries[idx].status, FLEXSC_SUBMITTED);
			inflight_add(q, idx);
		}
	}
	q->npending = 0;
	wake_if_needed(q);
	return (int)n;
}

/* Completions the kernel has counted and we have not seen (ring). */
static uint32_t ring_ready(struct flexsc_queue *q)
{
	return load_acquire(&q->ring->cq_tail) - q->cq_head;
}

unsigned int flexsc_cq_ready(struct flexsc_queue *q)
{
	unsigned int n = 0;

	if (q->ring)
		return ring_ready(q);
	for (uint32_t i = 0; i < q->ninflight; i++)
		n += is_done(&q->entries[q->inflight[i]]);
	return n;
}

unsigned int flexsc_inflight(const struct flexsc_queue *q)
{
	return q->ninflight;
}

int flexsc_peek_cqe(struct flexsc_queue *q, struct flexsc_sysentry **cqe)
{
	/* With the ring, scan only when the kernel says there is a
	 * completion; and never consume more than it counted, so that
	 * cq_head never passes cq_tail. */
	if (!q->ring || ring_ready(q) != 0) {
		for (uint32_t i = 0; i < q->ninflight; i++) {
			struct flexsc_sysentry *e = &q->entries[q->inflight[i]];

			if (is_done(e)) {
				*cqe = e;
				return 0;
			}
		}
	}
	*cqe = NULL;
	return -EAGAIN;
}

/* Blocks until wait_nr completions are ready (counting unseen ones). */
static int wait_ready(struct flexsc_queue *q, unsigned int wait_nr,
		      const struct __kernel_timespec *timeout)
{
	while (flexsc_cq_ready(q) < wait_nr) {
		long ret;

		if (wait_nr > q->ninflight)
			return q->ninflight ? -EINVAL : -EAGAIN;
		ret = flexsc__sys_wait(wait_nr, timeout);
		if (ret < 0)
			return (int)ret;
	}
	return 0;
}

int flexsc_wait_cqe_nr(struct flexsc_queue *q, struct flexsc_sysentry **cqe,
		       unsigned int wait_nr)
{
	int ret;

	*cqe = NULL;
	if (wait_nr) {
		ret = wait_ready(q, wait_nr, NULL);
		if (ret)
			return ret;
	}
	return flexsc_peek_cqe(q, cqe);
}

int flexsc_wait_cqe(struct flexsc_queue *q, struct flexsc_sysentry **cqe)
{
	if (flexsc_peek_cqe(q, cqe) == 0)
		return 0;
	return flexsc_wait_cqe_nr(q, cqe, 1);
}

int flexsc_wait_cqe_timeout(struct flexsc_queue *q, struct flexsc_sysentry **cqe,
			    const struct __kernel_timespec *timeout)
{
	int ret;

	if (flexsc_peek_cqe(q, cqe) == 0)
		return 0;
	ret = wait_ready(q, 1, timeout);
	if (ret)
		return ret;
	return flexsc_peek_cqe(q, cqe);
}

int flexsc_submit_and_wait(struct flexsc_queue *q, unsigned int wait_nr)
{
	int submitted = flexsc_submit(q);
	int ret = wait_nr ? wait_ready(q, wait_nr, NULL) : 0;

	return ret ? ret : submitted;
}

void flexsc_cqe_seen(struct flexsc_queue *q, struct flexsc_sysentry *cqe)
{
	uint32_t idx = (uint32_t)(cqe - q->entries);

	/* Only a completed entry in flight: freeing one the kernel still
	 * holds would let us submit over a call that is running. */
	if (idx >= q->nentries || q->inflight_pos[idx] == FLEXSC_NOT_INFLIGHT || !is_done(cqe))
		return;
	inflight_remove(q, idx);
	store_release(&cqe->status, FLEXSC_FREE);
	q->free[(q->free_head + q->nfree) % q->nentries] = idx;
	q->nfree++;
	if (q->ring)
		store_release(&q->ring->cq_head, ++q->cq_head);
}

/*
 * flexsc_for_each_cqe(): walks the entries in flight from the last one
 * down, so that seeing the current entry (which moves the last one into
 * its place) skips nothing; with the ring, yields no more than the
 * kernel counted when the walk began.
 */
struct flexsc_sysentry *flexsc__cqe_next(struct flexsc_queue *q)
{
	if (q->iter_pos > q->ninflight)
		q->iter_pos = q->ninflight;
	while (q->iter_left && q->iter_pos > 0) {
		struct flexsc_sysentry *e = &q->entries[q->inflight[--q->iter_pos]];

		if (is_done(e)) {
			q->iter_left--;
			return e;
		}
	}
	return NULL;
}

struct flexsc_sysentry *flexsc__cqe_first(struct flexsc_queue *q)
{
	q->iter_pos = q->ninflight;
	q->iter_left = q->ring ? ring_ready(q) : UINT32_MAX;
	return flexsc__cqe_next(q);
}
