/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* Shared between the library's files and its host test; not installed. */
#ifndef LIBFLEXSC_INTERNAL_H
#define LIBFLEXSC_INTERNAL_H

#include "libflexsc.h"

#define FLEXSC_NOT_INFLIGHT	UINT32_MAX

/*
 * The library-side state of a queue of nentries entries over a region the
 * caller has mapped (and registered, or, in the host test, not): entries
 * all free, none in flight. Returns 0 or -ENOMEM.
 */
int flexsc__queue_setup(struct flexsc_queue *q, void *region, size_t region_len,
			unsigned int nentries, unsigned int features);
void flexsc__queue_release(struct flexsc_queue *q);

/* flexsc_wait(2) without the support check: -errno on failure. */
long flexsc__sys_wait(unsigned int min_complete, const struct __kernel_timespec *timeout);

#endif /* LIBFLEXSC_INTERNAL_H */
