/* SPDX-License-Identifier: GPL-2.0 */
/*
 * FlexSC: the functions that cross between glue.c and the Rust crate.
 * The rust_flexsc_*() ones are implemented in Rust (flexsc.rs, where their
 * contracts are documented); the flexsc_trace_*() ones in glue.c, for Rust
 * (trace.rs).
 */
#ifndef _FLEXSC_INTERNAL_H
#define _FLEXSC_INTERNAL_H

#include <linux/types.h>

struct flexsc_params;
struct __kernel_timespec;

long rust_flexsc_register(const struct flexsc_params __user *params,
			  size_t size);
long rust_flexsc_wait(unsigned int min_complete,
		      const struct __kernel_timespec __user *timeout);
long rust_flexsc_exit(void);
u64 rust_flexsc_stat(unsigned int which);

void flexsc_trace_register(pid_t tid, u32 nentries, u32 nsysthreads);
void flexsc_trace_dispatch(pid_t tid, u32 index, u32 nr, int cpu);
void flexsc_trace_complete(pid_t tid, u32 index, u32 nr, s64 ret);
void flexsc_trace_exit(pid_t tid, u64 calls);

#endif /* _FLEXSC_INTERNAL_H */
