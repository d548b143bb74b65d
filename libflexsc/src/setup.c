// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * Support detection, the raw system calls, and a queue's set-up and
 * teardown.
 *
 * Set-up maps a private anonymous region (the kernel refuses any other
 * kind: another process could write it) and registers it. Unless told
 * not to, it first asks for the ring extension, with the entry count
 * rounded up to the power of two the ring needs; a kernel without the
 * extension refuses the flag with EINVAL, and the queue falls back to
 * plain ABI v1, where completions are found by scanning the entries in
 * flight.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

int flexsc_abi_version(void)
{
	char buf[16];
	ssize_t n;
	int fd, err, v = 0;

	fd = open(FLEXSC_ABI_VERSION_PATH, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	err = errno;
	close(fd);
	if (n < 0)
		return -err;
	buf[n] = '\0';
	if (n == 0 || buf[0] < '1' || buf[0] > '9')
		return -EINVAL;
	for (char *c = buf; *c >= '0' && *c <= '9'; c++) {
		if (v > 100000)
			return -EINVAL;
		v = v * 10 + (*c - '0');
	}
	return v;
}

/* 0 not known yet, 1 ABI 1 spoken, 2 not. The answer cannot change while
 * the process runs (the kernel does not change under it). */
static int support_state;

int flexsc_supported(void)
{
	int state = __atomic_load_n(&support_state, __ATOMIC_RELAXED);

	if (state == 0) {
		state = flexsc_abi_version() == FLEXSC_ABI_VERSION ? 1 : 2;
		__atomic_store_n(&support_state, state, __ATOMIC_RELAXED);
	}
	return state == 1;
}

/* The numbers may mean something else on this kernel: never call them
 * unless it said it speaks ABI 1. */
int flexsc_register(const struct flexsc_params *params, size_t size)
{
	if (!flexsc_supported()) {
		errno = ENOSYS;
		return -1;
	}
	return (int)syscall(__NR_flexsc_register, params, size);
}

long flexsc_wait(unsigned int min_complete, const struct __kernel_timespec *timeout)
{
	if (!flexsc_supported()) {
		errno = ENOSYS;
		return -1;
	}
	return syscall(__NR_flexsc_wait, min_complete, timeout);
}

int flexsc_exit(void)
{
	if (!flexsc_supported()) {
		errno = ENOSYS;
		return -1;
	}
	return (int)syscall(__NR_flexsc_exit);
}

long flexsc__sys_wait(unsigned int min_complete, const struct __kernel_timespec *timeout)
{
	long ret = syscall(__NR_flexsc_wait, min_complete, timeout);

	return ret < 0 ? -errno : ret;
}

int flexsc__queue_setup(struct flexsc_queue *q, void *region, size_t region_len,
			unsigned int nentries, unsigned int features)
{
	/* One allocation: the tags, then four arrays of indices. */
	uint64_t *mem = calloc(nentries, sizeof(uint64_t) + 4 * sizeof(uint32_t));

	if (!mem)
		return -ENOMEM;
	memset(q, 0, sizeof(*q));
	q->region = region;
	q->region_len = region_len;
	q->hdr = region;
	q->entries = (struct flexsc_sysentry *)((char *)region + sizeof(struct flexsc_hdr));
	if (features & FLEXSC_FEAT_RING)
		q->ring = (struct flexsc_ring *)((char *)region + FLEXSC_RING_OFFSET(nentries));
	q->nentries = nentries;
	q->features = features;
	q->user_data = mem;
	q->free = (uint32_t *)(mem + nentries);
	q->pending = q->free + nentries;
	q->inflight = q->pending + nentries;
	q->inflight_pos = q->inflight + nentries;
	for (uint32_t i = 0; i < nentries; i++) {
		q->free[i] = i;
		q->inflight_pos[i] = FLEXSC_NOT_INFLIGHT;
	}
	q->nfree = nentries;
	return 0;
}

void flexsc__queue_release(struct flexsc_queue *q)
{
	free(q->user_data);
	memset(q, 0, sizeof(*q));
}

static size_t page_round(size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	return (len + page - 1) & ~(page - 1);
}

/* Maps a region for n entries and registers it with the given flags. */
static int map_and_register(struct flexsc_queue *q, unsigned int n, uint64_t flags,
			    const struct flexsc_queue_params *p)
{
	size_t len = page_round(flags & FLEXSC_REGISTER_RING ? FLEXSC_RING_REGION_LEN(n) :
			     sizeof(struct flexsc_hdr) + n * sizeof(struct flexsc_sysentry));
	struct flexsc_params params;
	void *region;
	int ret;

	region = mmap(NULL, len, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (region == MAP_FAILED)
		return -errno;
	/* The library's state first: nothing to undo in the kernel if it fails. */
	ret = flexsc__queue_setup(q, region, len, n,
				  flags & FLEXSC_REGISTER_RING ? FLEXSC_FEAT_RING : 0);
	if (ret) {
		munmap(region, len);
		return ret;
	}
	memset(&params, 0, sizeof(params));
	params.region = (uintptr_t)region;
	params.nentries = n;
	params.nsysthreads = p->nsysthreads;
	params.cpu_mask = (uintptr_t)p->cpu_mask;
	params.cpu_mask_size = (__u32)p->cpu_mask_size;
	params.idle_us = p->idle_us;
	params.flags = flags;
	if (syscall(__NR_flexsc_register, &params, sizeof(params)) != 0) {
		ret = -errno;
		flexsc__queue_release(q);
		munmap(region, len);
		return ret;
	}
	q->tid = gettid();
	return 0;
}

static unsigned int roundup_pow2(unsigned int n)
{
	unsigned int p = 1;

	while (p < n)
		p <<= 1;
	return p;
}

int flexsc_queue_init_params(unsigned int entries, struct flexsc_queue *q,
			     struct flexsc_queue_params *p)
{
	struct flexsc_queue_params defaults;
	int ret;

	memset(q, 0, sizeof(*q));
	if (!p) {
		memset(&defaults, 0, sizeof(defaults));
		p = &defaults;
	}
	p->features = 0;
	if (!flexsc_supported())
		return -ENOSYS;
	if (entries == 0 || entries > FLEXSC_MAX_ENTRIES || (p->flags & ~FLEXSC_QUEUE_NO_RING) ||
	    p->cpu_mask_size > UINT32_MAX || (!p->cpu_mask && p->cpu_mask_size))
		return -EINVAL;
	for (size_t i = 0; i < sizeof(p->resv) / sizeof(p->resv[0]); i++)
		if (p->resv[i])
			return -EINVAL;

	if (!(p->flags & FLEXSC_QUEUE_NO_RING) && roundup_pow2(entries) <= FLEXSC_MAX_ENTRIES) {
		ret = map_and_register(q, roundup_pow2(entries), FLEXSC_REGISTER_RING, p);
		/* EINVAL: a kernel without the ring (or bad parameters, which
		 * plain v1 then reports again). */
		if (ret != -EINVAL)
			goto out;
	}
	ret = map_and_register(q, entries, 0, p);
out:
	if (ret == 0)
		p->features = q->features;
	return ret;
}

int flexsc_queue_init(unsigned int entries, struct flexsc_queue *q, unsigned int flags)
{
	struct flexsc_queue_params p;

	memset(&p, 0, sizeof(p));
	p.flags = flags;
	return flexsc_queue_init_params(entries, q, &p);
}

int flexsc_queue_exit(struct flexsc_queue *q)
{
	void *region = q->region;
	size_t len = q->region_len;
	int ret = 0;

	if (!region)
		return -EINVAL;
	/* flexsc_exit() ends the calling thread's registration: from any
	 * other thread it would end the wrong one, or none. */
	if (gettid() != q->tid)
		return -EINVAL;
	/* Interrupts the calls in flight and waits for them: afterwards the
	 * kernel touches neither the region nor the calls' buffers. */
	if (syscall(__NR_flexsc_exit) != 0)
		ret = -errno;
	flexsc__queue_release(q);
	munmap(region, len);
	return ret;
}
