/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * libflexsc: exception-less system calls from C, in the style of liburing.
 *
 *   struct flexsc_queue q;
 *   flexsc_queue_init(64, &q, 0);            checks abi_version, maps, registers
 *   e = flexsc_get_entry(&q);                a free entry (NULL: all in use)
 *   flexsc_prep_write(e, fd, buf, len);      number and arguments
 *   flexsc_set_data(&q, e, ptr);             the caller's tag, kept by the library
 *   flexsc_submit(&q);                       the batch, one fence, wake if asked
 *   flexsc_wait_cqe(&q, &e);                 a DONE entry: e->ret, flexsc_get_data()
 *   flexsc_cqe_seen(&q, e);                  back to the free list
 *   flexsc_queue_exit(&q);                   unregisters, unmaps
 *
 * The queue belongs to the thread that initialised it: the kernel ties a
 * registration to one thread, and only that thread may submit, wait and
 * tear it down. A forked child has no registration.
 *
 * Functions return 0 or a count on success and -errno on failure, like
 * liburing; the three raw system call wrappers instead follow libc
 * (-1 and errno), as their section 2 pages say.
 */
#ifndef LIBFLEXSC_H
#define LIBFLEXSC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/socket.h>
#include <time.h>
#include <linux/time_types.h>
#include <linux/flexsc.h>

#ifndef FLEXSC_REGISTER_RING
#error "<linux/flexsc.h> predates FLEXSC_REGISTER_RING: use the headers of a newer FlexSC kernel"
#endif

/* From <asm/unistd_64.h> of a FlexSC kernel; ABI v1 numbers otherwise. */
#ifndef __NR_flexsc_register
#define __NR_flexsc_register	463
#endif
#ifndef __NR_flexsc_wait
#define __NR_flexsc_wait	464
#endif
#ifndef __NR_flexsc_exit
#define __NR_flexsc_exit	465
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define LIBFLEXSC_VERSION_MAJOR	0
#define LIBFLEXSC_VERSION_MINOR	1

/* Where the running kernel says which FlexSC ABI it speaks. */
#define FLEXSC_ABI_VERSION_PATH	"/sys/kernel/flexsc/abi_version"

/* flexsc_queue_params::flags */
#define FLEXSC_QUEUE_NO_RING	(1U << 0)	/* plain ABI v1 even where the ring exists */

/* flexsc_queue::features, flexsc_queue_params::features */
#define FLEXSC_FEAT_RING	(1U << 0)	/* registered with FLEXSC_REGISTER_RING */

/* Optional settings of flexsc_queue_init_params(); zero means default. */
struct flexsc_queue_params {
	unsigned int flags;		/* FLEXSC_QUEUE_* */
	unsigned int features;		/* out: FLEXSC_FEAT_* */
	unsigned int nsysthreads;	/* 0: one per CPU allowed by the mask */
	unsigned int idle_us;		/* poll time of an idle systhread; 0: the kernel's */
	const void *cpu_mask;		/* CPUs for the systhreads, as sched_setaffinity(2) */
	size_t cpu_mask_size;		/* bytes at cpu_mask; 0 with cpu_mask NULL: all */
	unsigned int resv[4];		/* zero */
};

/*
 * A registered queue. The fields are the library's: read them through the
 * functions below. The entries live in the shared region; everything else
 * (free list, tags, what is in flight) is private to the library, so that
 * nothing the kernel can see decides which entry is handed out next.
 */
struct flexsc_queue {
	struct flexsc_hdr *hdr;
	struct flexsc_sysentry *entries;
	struct flexsc_ring *ring;	/* NULL in plain ABI v1 mode */
	void *region;
	size_t region_len;
	unsigned int nentries;
	unsigned int features;

	uint64_t *user_data;		/* per entry */
	uint32_t *free;			/* FIFO of free entry indices */
	uint32_t free_head, nfree;
	uint32_t *pending;		/* taken and prepared, not yet submitted */
	uint32_t npending;
	uint32_t *inflight;		/* submitted, not yet seen */
	uint32_t *inflight_pos;		/* index in inflight, or UINT32_MAX */
	uint32_t ninflight;
	uint32_t sq_tail;		/* ring: our copy of ring->sq_tail */
	uint32_t cq_head;		/* ring: our copy of ring->cq_head */
	uint32_t iter_pos, iter_left;	/* flexsc_for_each_cqe() */
	int tid;			/* the registered thread */
	uint32_t resv[7];
};

/* Support. */
int flexsc_abi_version(void);
int flexsc_supported(void);

/* The system calls, as libc would wrap them: -1 and errno on failure.
 * They fail with ENOSYS, without calling the kernel, when the running
 * kernel does not speak FlexSC ABI 1 (later kernels reuse the numbers). */
int flexsc_register(const struct flexsc_params *params, size_t size);
long flexsc_wait(unsigned int min_complete, const struct __kernel_timespec *timeout);
int flexsc_exit(void);

/* Set-up and teardown. */
int flexsc_queue_init(unsigned int entries, struct flexsc_queue *q, unsigned int flags);
int flexsc_queue_init_params(unsigned int entries, struct flexsc_queue *q,
			     struct flexsc_queue_params *p);
int flexsc_queue_exit(struct flexsc_queue *q);

static inline unsigned int flexsc_queue_entries(const struct flexsc_queue *q)
{
	return q->nentries;
}

static inline unsigned int flexsc_queue_features(const struct flexsc_queue *q)
{
	return q->features;
}

/* Submission. */
struct flexsc_sysentry *flexsc_get_entry(struct flexsc_queue *q);
int flexsc_submit(struct flexsc_queue *q);
int flexsc_submit_and_wait(struct flexsc_queue *q, unsigned int wait_nr);

/* Completion. */
int flexsc_peek_cqe(struct flexsc_queue *q, struct flexsc_sysentry **cqe);
int flexsc_wait_cqe(struct flexsc_queue *q, struct flexsc_sysentry **cqe);
int flexsc_wait_cqe_nr(struct flexsc_queue *q, struct flexsc_sysentry **cqe,
		       unsigned int wait_nr);
int flexsc_wait_cqe_timeout(struct flexsc_queue *q, struct flexsc_sysentry **cqe,
			    const struct __kernel_timespec *timeout);
void flexsc_cqe_seen(struct flexsc_queue *q, struct flexsc_sysentry *cqe);
unsigned int flexsc_cq_ready(struct flexsc_queue *q);
unsigned int flexsc_inflight(const struct flexsc_queue *q);

struct flexsc_sysentry *flexsc__cqe_first(struct flexsc_queue *q);
struct flexsc_sysentry *flexsc__cqe_next(struct flexsc_queue *q);

/*
 * Every completed entry that has not been seen, in no particular order;
 * flexsc_cqe_seen() may be called on the current one inside the loop.
 */
#define flexsc_for_each_cqe(q, cqe) \
	for ((cqe) = flexsc__cqe_first(q); (cqe) != NULL; (cqe) = flexsc__cqe_next(q))

/* The caller's tag of an entry, kept by the library (not in shared memory). */
static inline unsigned int flexsc_entry_index(const struct flexsc_queue *q,
					      const struct flexsc_sysentry *e)
{
	return (unsigned int)(e - q->entries);
}

static inline void flexsc_set_data64(struct flexsc_queue *q, struct flexsc_sysentry *e,
				     uint64_t data)
{
	q->user_data[flexsc_entry_index(q, e)] = data;
}

static inline void flexsc_set_data(struct flexsc_queue *q, struct flexsc_sysentry *e,
				   void *data)
{
	flexsc_set_data64(q, e, (uint64_t)(uintptr_t)data);
}

static inline uint64_t flexsc_get_data64(const struct flexsc_queue *q,
					 const struct flexsc_sysentry *e)
{
	return q->user_data[flexsc_entry_index(q, e)];
}

static inline void *flexsc_get_data(const struct flexsc_queue *q,
				    const struct flexsc_sysentry *e)
{
	return (void *)(uintptr_t)flexsc_get_data64(q, e);
}

/*
 * Preparing an entry taken with flexsc_get_entry(): plain stores, published
 * by flexsc_submit()'s release store of the status. Memory an argument
 * points to must stay valid until the entry completes.
 */
#define flexsc__u64(x)	((uint64_t)(uintptr_t)(x))

static inline void flexsc_prep_syscall(struct flexsc_sysentry *e, long nr,
				       uint64_t a0, uint64_t a1, uint64_t a2,
				       uint64_t a3, uint64_t a4, uint64_t a5)
{
	e->nr = (__u32)nr;
	e->args[0] = a0;
	e->args[1] = a1;
	e->args[2] = a2;
	e->args[3] = a3;
	e->args[4] = a4;
	e->args[5] = a5;
}

static inline void flexsc_prep_read(struct flexsc_sysentry *e, int fd, void *buf, size_t len)
{
	flexsc_prep_syscall(e, SYS_read, (uint64_t)fd, flexsc__u64(buf), len, 0, 0, 0);
}

static inline void flexsc_prep_write(struct flexsc_sysentry *e, int fd, const void *buf,
				     size_t len)
{
	flexsc_prep_syscall(e, SYS_write, (uint64_t)fd, flexsc__u64(buf), len, 0, 0, 0);
}

static inline void flexsc_prep_pread(struct flexsc_sysentry *e, int fd, void *buf, size_t len,
				     uint64_t offset)
{
	flexsc_prep_syscall(e, SYS_pread64, (uint64_t)fd, flexsc__u64(buf), len, offset, 0, 0);
}

static inline void flexsc_prep_pwrite(struct flexsc_sysentry *e, int fd, const void *buf,
				      size_t len, uint64_t offset)
{
	flexsc_prep_syscall(e, SYS_pwrite64, (uint64_t)fd, flexsc__u64(buf), len, offset, 0, 0);
}

static inline void flexsc_prep_readv(struct flexsc_sysentry *e, int fd,
				     const struct iovec *iov, int iovcnt)
{
	flexsc_prep_syscall(e, SYS_readv, (uint64_t)fd, flexsc__u64(iov), (uint64_t)iovcnt,
			    0, 0, 0);
}

static inline void flexsc_prep_writev(struct flexsc_sysentry *e, int fd,
				      const struct iovec *iov, int iovcnt)
{
	flexsc_prep_syscall(e, SYS_writev, (uint64_t)fd, flexsc__u64(iov), (uint64_t)iovcnt,
			    0, 0, 0);
}

static inline void flexsc_prep_openat(struct flexsc_sysentry *e, int dfd, const char *path,
				      int flags, unsigned int mode)
{
	flexsc_prep_syscall(e, SYS_openat, (uint64_t)dfd, flexsc__u64(path),
			    (uint64_t)flags, mode, 0, 0);
}

static inline void flexsc_prep_close(struct flexsc_sysentry *e, int fd)
{
	flexsc_prep_syscall(e, SYS_close, (uint64_t)fd, 0, 0, 0, 0, 0);
}

static inline void flexsc_prep_fsync(struct flexsc_sysentry *e, int fd)
{
	flexsc_prep_syscall(e, SYS_fsync, (uint64_t)fd, 0, 0, 0, 0, 0);
}

static inline void flexsc_prep_fdatasync(struct flexsc_sysentry *e, int fd)
{
	flexsc_prep_syscall(e, SYS_fdatasync, (uint64_t)fd, 0, 0, 0, 0, 0);
}

static inline void flexsc_prep_lseek(struct flexsc_sysentry *e, int fd, int64_t offset,
				     int whence)
{
	flexsc_prep_syscall(e, SYS_lseek, (uint64_t)fd, (uint64_t)offset, (uint64_t)whence,
			    0, 0, 0);
}

static inline void flexsc_prep_statx(struct flexsc_sysentry *e, int dfd, const char *path,
				     int flags, unsigned int mask, void *statxbuf)
{
	flexsc_prep_syscall(e, SYS_statx, (uint64_t)dfd, flexsc__u64(path), (uint64_t)flags,
			    mask, flexsc__u64(statxbuf), 0);
}

static inline void flexsc_prep_accept4(struct flexsc_sysentry *e, int fd,
				       struct sockaddr *addr, socklen_t *addrlen, int flags)
{
	flexsc_prep_syscall(e, SYS_accept4, (uint64_t)fd, flexsc__u64(addr),
			    flexsc__u64(addrlen), (uint64_t)flags, 0, 0);
}

static inline void flexsc_prep_connect(struct flexsc_sysentry *e, int fd,
				       const struct sockaddr *addr, socklen_t addrlen)
{
	flexsc_prep_syscall(e, SYS_connect, (uint64_t)fd, flexsc__u64(addr), addrlen, 0, 0, 0);
}

static inline void flexsc_prep_send(struct flexsc_sysentry *e, int fd, const void *buf,
				    size_t len, int flags)
{
	flexsc_prep_syscall(e, SYS_sendto, (uint64_t)fd, flexsc__u64(buf), len,
			    (uint64_t)flags, 0, 0);
}

static inline void flexsc_prep_recv(struct flexsc_sysentry *e, int fd, void *buf, size_t len,
				    int flags)
{
	flexsc_prep_syscall(e, SYS_recvfrom, (uint64_t)fd, flexsc__u64(buf), len,
			    (uint64_t)flags, 0, 0);
}

static inline void flexsc_prep_nanosleep(struct flexsc_sysentry *e,
					 const struct __kernel_timespec *ts)
{
	flexsc_prep_syscall(e, SYS_nanosleep, flexsc__u64(ts), 0, 0, 0, 0, 0);
}

/* The cheapest real call: what benchmarks measure the path with. */
static inline void flexsc_prep_getpid(struct flexsc_sysentry *e)
{
	flexsc_prep_syscall(e, SYS_getpid, 0, 0, 0, 0, 0, 0);
}

static inline void flexsc_prep_gettid(struct flexsc_sysentry *e)
{
	flexsc_prep_syscall(e, SYS_gettid, 0, 0, 0, 0, 0, 0);
}

#ifdef __cplusplus
}
#endif

#endif /* LIBFLEXSC_H */
