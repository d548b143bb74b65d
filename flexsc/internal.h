/* SPDX-License-Identifier: GPL-2.0 */
/*
 * FlexSC: the functions that cross between glue.c and the Rust crate.
 * The rust_flexsc_*() ones are implemented in Rust (flexsc.rs, where their
 * contracts are documented); the flexsc_*() ones in glue.c, for Rust
 * (ffi.rs and trace.rs).
 */
#ifndef _FLEXSC_INTERNAL_H
#define _FLEXSC_INTERNAL_H

#include <linux/types.h>

struct flexsc_params;
struct __kernel_timespec;
struct flexsc_call;
struct page;
struct pt_regs;
struct seccomp_filter;
struct task_struct;
struct wait_queue_head;

long rust_flexsc_register(const struct flexsc_params __user *params,
			  size_t size);
long rust_flexsc_wait(unsigned int min_complete,
		      const struct __kernel_timespec __user *timeout);
long rust_flexsc_exit(void);
u64 rust_flexsc_stat(unsigned int which);

/* glue.c, for Rust (ffi.rs), documented there. */
int flexsc_may_register(void);
int flexsc_allowed_cpus(unsigned long *bits, unsigned int nbits);
long flexsc_pin_region(unsigned long start, unsigned long npages,
		       struct page **pages);
long flexsc_run_entry(struct task_struct *owner, pid_t tid,
		      struct seccomp_filter **cache, struct pt_regs *regs,
		      const struct flexsc_call *call, int action, long value,
		      unsigned int flags, bool *refused);
void flexsc_process_key(unsigned long key[5]);
bool flexsc_inline_allowed(void);
unsigned int flexsc_this_cpu(void);
void flexsc_pools_lock(void);
void flexsc_pools_unlock(void);
void flexsc_pass_done(void);
void flexsc_init_waitqueue(struct wait_queue_head *wq);
int flexsc_wait_event(struct wait_queue_head *wq, bool (*done)(const void *data),
		      const void *arg, s64 deadline);
int flexsc_wait_teardown(struct wait_queue_head *wq,
			 bool (*done)(const void *data), const void *arg);

void flexsc_trace_register(pid_t tid, u32 nentries, u32 nsysthreads);
void flexsc_trace_exit(pid_t tid, u64 calls);

#endif /* _FLEXSC_INTERNAL_H */
