// SPDX-License-Identifier: GPL-2.0
/*
 * FlexSC: the C glue of the engine.
 *
 * Only what C macros force to be C lives here: the system call
 * definitions, the sysfs attributes of /sys/kernel/flexsc/, the trace
 * points and the initcall. Everything else is the Rust crate in flexsc.rs,
 * which implements the rust_flexsc_*() functions declared below (their
 * contracts are documented there).
 */

#include <linux/flexsc.h>
#include <linux/init.h>
#include <linux/kobject.h>
#include <linux/syscalls.h>
#include <linux/sysfs.h>
#include <uapi/linux/flexsc.h>

#include "internal.h"

#define CREATE_TRACE_POINTS
#include <trace/events/flexsc.h>

SYSCALL_DEFINE2(flexsc_register, const struct flexsc_params __user *, params,
		size_t, size)
{
	return rust_flexsc_register(params, size);
}

SYSCALL_DEFINE2(flexsc_wait, unsigned int, min_complete,
		const struct __kernel_timespec __user *, timeout)
{
	return rust_flexsc_wait(min_complete, timeout);
}

SYSCALL_DEFINE0(flexsc_exit)
{
	return rust_flexsc_exit();
}

/*
 * Trace points, called from Rust: the TRACE_EVENT() macros generate
 * static inlines that Rust cannot call.
 */
void flexsc_trace_register(pid_t tid, u32 nentries, u32 nsysthreads)
{
	trace_register(tid, nentries, nsysthreads);
}

void flexsc_trace_dispatch(pid_t tid, u32 index, u32 nr, int cpu)
{
	trace_dispatch(tid, index, nr, cpu);
}

void flexsc_trace_complete(pid_t tid, u32 index, u32 nr, s64 ret)
{
	trace_complete(tid, index, nr, ret);
}

void flexsc_trace_exit(pid_t tid, u64 calls)
{
	trace_exit(tid, calls);
}

/* /sys/kernel/flexsc/: the ABI version and the engine's counters. */

enum flexsc_stat {		/* the order of rust_flexsc_stat()'s `which` */
	FLEXSC_STAT_REGISTRATIONS,
	FLEXSC_STAT_SYSTHREADS,
	FLEXSC_STAT_CALLS,
	FLEXSC_STAT_REFUSED,
	FLEXSC_STAT_PINNED_PAGES,
};

static ssize_t abi_version_show(struct kobject *kobj,
				struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%d\n", FLEXSC_ABI_VERSION);
}
static struct kobj_attribute abi_version_attr = __ATTR_RO(abi_version);

#define FLEXSC_STAT_ATTR(_name, _which)					\
static ssize_t _name##_show(struct kobject *kobj,			\
			    struct kobj_attribute *attr, char *buf)	\
{									\
	return sysfs_emit(buf, "%llu\n", rust_flexsc_stat(_which));	\
}									\
static struct kobj_attribute _name##_attr = __ATTR_RO(_name)

FLEXSC_STAT_ATTR(registrations, FLEXSC_STAT_REGISTRATIONS);
FLEXSC_STAT_ATTR(systhreads, FLEXSC_STAT_SYSTHREADS);
FLEXSC_STAT_ATTR(calls_run, FLEXSC_STAT_CALLS);
FLEXSC_STAT_ATTR(calls_refused, FLEXSC_STAT_REFUSED);
FLEXSC_STAT_ATTR(pinned_pages, FLEXSC_STAT_PINNED_PAGES);

static struct attribute *flexsc_attrs[] = {
	&abi_version_attr.attr,
	&registrations_attr.attr,
	&systhreads_attr.attr,
	&calls_run_attr.attr,
	&calls_refused_attr.attr,
	&pinned_pages_attr.attr,
	NULL,
};

static const struct attribute_group flexsc_attr_group = {
	.attrs = flexsc_attrs,
};

static int __init flexsc_init(void)
{
	struct kobject *kobj;
	int err;

	kobj = kobject_create_and_add("flexsc", kernel_kobj);
	if (!kobj)
		return -ENOMEM;
	err = sysfs_create_group(kobj, &flexsc_attr_group);
	if (err) {
		kobject_put(kobj);
		return err;
	}
	pr_info("flexsc: exception-less system calls, ABI %d (syscalls 463-465)\n",
		FLEXSC_ABI_VERSION);
	return 0;
}
late_initcall(flexsc_init);
