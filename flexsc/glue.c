// SPDX-License-Identifier: GPL-2.0
/*
 * FlexSC: the C glue of the engine.
 *
 * Only what C macros and inline functions force to be C lives here: the
 * system call definitions, the sysfs attributes of /sys/kernel/flexsc/,
 * the kernel.flexsc_disabled sysctl, the trace points, the initcall, and
 * the checks a systhread makes of its owner's state, which read
 * task_struct, cred and mm fields that Rust must not lay out itself.
 * Everything else is the Rust crate in flexsc.rs, which implements the
 * rust_flexsc_*() functions declared in internal.h (their contracts are
 * documented in flexsc.rs) and declares the flexsc_*() ones below in ffi.rs.
 */

#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/compat.h>
#include <linux/cpuset.h>
#include <linux/cred.h>
#include <linux/flexsc.h>
#include <linux/hrtimer.h>
#include <linux/init.h>
#include <linux/kobject.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/pkeys.h>
#include <linux/resume_user_mode.h>
#include <linux/sched/task.h>
#include <linux/seccomp.h>
#include <linux/sched/signal.h>
#include <linux/syscalls.h>
#include <linux/sysctl.h>
#include <linux/sysfs.h>
#include <linux/task_work.h>
#include <linux/wait.h>
#include <asm/syscall.h>
#include <uapi/linux/flexsc.h>
#include <uapi/linux/keyctl.h>

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
 * kernel.flexsc_disabled, as io_uring_disabled: 0 anyone may register,
 * 1 only with CAP_SYS_ADMIN, 2 nobody.
 */
static int flexsc_disabled;

static struct ctl_table flexsc_sysctl_table[] = {
	{
		.procname	= "flexsc_disabled",
		.data		= &flexsc_disabled,
		.maxlen		= sizeof(flexsc_disabled),
		.mode		= 0644,
		.proc_handler	= proc_dointvec_minmax,
		.extra1		= SYSCTL_ZERO,
		.extra2		= SYSCTL_TWO,
	},
};

/*
 * Whether current may register: -EPERM as kernel.flexsc_disabled says,
 * -EINVAL from an x32 process (only the 64-bit ABI has FlexSC entries).
 */
int flexsc_may_register(void)
{
	int disabled = READ_ONCE(flexsc_disabled);

	if (disabled == 2 || (disabled == 1 && !capable(CAP_SYS_ADMIN)))
		return -EPERM;
	if (in_x32_syscall())
		return -EINVAL;
	return 0;
}

/*
 * The CPUs current's systhreads may use: those of its cpuset that are
 * online, into @bits (@nbits bits, at least nr_cpu_ids).
 */
int flexsc_allowed_cpus(unsigned long *bits, unsigned int nbits)
{
	cpumask_var_t allowed;

	if (nbits < nr_cpu_ids)
		return -EINVAL;
	if (!alloc_cpumask_var(&allowed, GFP_KERNEL))
		return -ENOMEM;
	cpuset_cpus_allowed(current, allowed);
	cpumask_and(allowed, allowed, cpu_online_mask);
	bitmap_zero(bits, nbits);
	bitmap_copy(bits, cpumask_bits(allowed), nr_cpu_ids);
	free_cpumask_var(allowed);
	return 0;
}

/*
 * Pins the @npages pages at @start of current's memory into @pages, for a
 * registration. They must be private anonymous memory: shared memory
 * (MAP_SHARED, a memfd, a file) could be written by another process, which
 * would then submit calls with current's rights. The check and the pin are
 * made under one mmap_lock, so the mapping cannot change between them;
 * later changes to the mapping do not reach the pinned pages, and fork()
 * copies pinned anonymous pages for the child.
 *
 * Returns the number of pages pinned, -EFAULT if a page is not mapped,
 * -EINVAL if one is not private anonymous memory.
 */
long flexsc_pin_region(unsigned long start, unsigned long npages,
		       struct page **pages)
{
	struct mm_struct *mm = current->mm;
	unsigned long end = start + npages * PAGE_SIZE, addr;
	struct vm_area_struct *vma;
	long ret;

	if (mmap_read_lock_killable(mm))
		return -EINTR;
	for (addr = start; addr < end; addr = vma->vm_end) {
		vma = vma_lookup(mm, addr);
		if (!vma) {
			ret = -EFAULT;
			goto out;
		}
		if (!vma_is_anonymous(vma) || (vma->vm_flags & VM_SHARED)) {
			ret = -EINVAL;
			goto out;
		}
	}
	ret = pin_user_pages(start, npages, FOLL_WRITE | FOLL_LONGTERM, pages);
out:
	mmap_read_unlock(mm);
	return ret;
}

/*
 * Before each call, a systhread (current) follows its owner: it takes on
 * the owner's credentials when they changed, and refuses with -EPERM when
 * the owner no longer shares the systhread's file table, fs (root, cwd) or
 * namespaces (it unshared, chrooted or setns'd after registering: the
 * systhread would keep the reach the owner gave up), or when the process
 * uses protection keys (a systhread's PKRU is not its owner's, and kernel
 * accesses to user memory obey PKRU). Only pointers are compared.
 */
static int flexsc_follow_owner(struct task_struct *owner)
{
	struct task_struct *tsk = current;

	if (unlikely(rcu_access_pointer(owner->real_cred) != tsk->real_cred)) {
		const struct cred *cred = get_task_cred(owner);

		flexsc_install_creds(cred);
		put_cred(cred);
	}
	if (unlikely(READ_ONCE(owner->files) != tsk->files ||
		     READ_ONCE(owner->fs) != tsk->fs ||
		     READ_ONCE(owner->nsproxy) != tsk->nsproxy))
		return -EPERM;
#ifdef CONFIG_ARCH_HAS_PKEYS
	if (unlikely(mm_pkey_allocation_map(tsk->mm) != 0x1))
		return -EPERM;
#endif
	return 0;
}

#ifdef CONFIG_KEYS
/* Whether naming @id would install that keyring into current's creds. */
static bool flexsc_key_installs(u64 arg)
{
	const struct cred *cred = current_cred();

	switch ((s32)arg) {
	case KEY_SPEC_THREAD_KEYRING:
		return !cred->thread_keyring;
	case KEY_SPEC_PROCESS_KEYRING:
		return !cred->process_keyring;
	case KEY_SPEC_SESSION_KEYRING:
		return !cred->session_keyring;
	}
	return false;
}
#endif

/*
 * Whether a key call must be refused: it would change "this thread's"
 * keyrings, which for a systhread are not its owner's (joining or
 * replacing a session keyring, setting the default request-key keyring,
 * creating the thread, process or session keyring). Any argument that
 * names a keyring the owner does not have yet counts.
 */
static bool flexsc_key_call_refused(unsigned int nr, const u64 *args)
{
#ifdef CONFIG_KEYS
	int i;

	if (nr == __NR_keyctl) {
		switch (args[0]) {
		case KEYCTL_JOIN_SESSION_KEYRING:
		case KEYCTL_SET_REQKEY_KEYRING:
		case KEYCTL_SESSION_TO_PARENT:
			return true;
		}
		for (i = 1; i < 5; i++)
			if (flexsc_key_installs(args[i]))
				return true;
		return false;
	}
	if (nr == __NR_add_key)
		return flexsc_key_installs(args[4]);
	if (nr == __NR_request_key)
		return flexsc_key_installs(args[3]);
#endif
	return false;
}

/* The audit exit record of an entry, as the syscall exit makes it. */
static void flexsc_audit_exit(long ret)
{
#ifdef CONFIG_AUDITSYSCALL
	if (unlikely(audit_context()))
		__audit_syscall_exit(!IS_ERR_VALUE(ret), ret);
#endif
}

/*
 * A call copied out of an entry (struct Call of entry.rs): its number,
 * the entry's index, its arguments.
 */
struct flexsc_call {
	u32 nr;
	u32 index;
	u64 args[6];
};

/* What dispatch.rs's policy made of a call (enum Action there). */
enum flexsc_action {
	FLEXSC_ACT_RUN,		/* through the kernel's table */
	FLEXSC_ACT_REFUSE,	/* refused as an unknown number, unrun */
	FLEXSC_ACT_VALUE,	/* complete with @value, unrun (gettid) */
	FLEXSC_ACT_KEYS,	/* run unless flexsc_key_call_refused() */
};

/*
 * flexsc_run_entry()'s result for a call refused as an unknown number
 * (a seccomp verdict that acts on the calling thread, FlexSC's policy):
 * dispatch.rs completes the entry as sys_ni_syscall() would.
 */
#define FLEXSC_REFUSED_UNKNOWN	LONG_MIN

/* flexsc_run_entry()'s @flags. */
#define FLEXSC_RUN_INLINE	BIT(0)	/* current is the owner, in flexsc_wait() */
#define FLEXSC_RUN_NONBLOCK	BIT(1)	/* interruptible sleeps return at once */

/* Whether a systhread's signal state needs flexsc_signals_after_call(). */
static inline bool flexsc_signals_dirty(void)
{
	struct task_struct *tsk = current;

	return test_restore_sigmask() ||
	       READ_ONCE(tsk->pending.signal.sig[0]) ||
	       tsk->blocked.sig[0] != ~(sigmask(SIGKILL) | sigmask(SIGSTOP));
}

/*
 * Runs one entry for @owner, from the owner's seccomp verdict to the
 * result: the engine's one call into C per entry. In order: the owner's
 * seccomp filter (ip 0; skipped without a load when it has none), the
 * policy's refusal, following the owner (credentials, files, fs,
 * namespaces, pkeys), the emulated value, the audit entry record, the
 * trace point, x64_sys_call(), the systhread's signals put back in order
 * (only when the call left something), deferred work, the audit exit
 * record. @regs is current's scratch pt_regs: only the argument registers
 * are written (x64_sys_call() reads nothing else of them), so no entry
 * pays for clearing it.
 *
 * With FLEXSC_RUN_INLINE, current is @owner itself, in flexsc_wait() with
 * no audit context: nothing to follow, and its signals are its own.
 *
 * Returns the result (FLEXSC_REFUSED_UNKNOWN for a call refused as an
 * unknown number); *@refused tells whether the call was refused unrun.
 */
long flexsc_run_entry(struct task_struct *owner, pid_t tid,
		      struct seccomp_filter **cache, struct pt_regs *regs,
		      const struct flexsc_call *call, int action, long value,
		      unsigned int flags, bool *refused)
{
	const u64 *args = call->args;
	long ret;

	*refused = true;
#ifdef CONFIG_SECCOMP
	if (unlikely(READ_ONCE(owner->seccomp.mode) != SECCOMP_MODE_DISABLED)) {
		switch (seccomp_flexsc_verdict(owner, cache, call->nr, args, &ret)) {
		case SECCOMP_FLEXSC_RUN:
			break;
		case SECCOMP_FLEXSC_SKIP:
			return ret;
		default:
			return FLEXSC_REFUSED_UNKNOWN;
		}
	}
#endif
	if (action == FLEXSC_ACT_REFUSE)
		return FLEXSC_REFUSED_UNKNOWN;
	if (!(flags & FLEXSC_RUN_INLINE)) {
		ret = flexsc_follow_owner(owner);
		if (unlikely(ret))
			return ret;
	}
	if (action == FLEXSC_ACT_VALUE) {
		*refused = false;
		return value;
	}
	if (unlikely(action == FLEXSC_ACT_KEYS) &&
	    flexsc_key_call_refused(call->nr, args))
		return FLEXSC_REFUSED_UNKNOWN;
	*refused = false;

	regs->di = args[0];
	regs->si = args[1];
	regs->dx = args[2];
	regs->r10 = args[3];
	regs->r8 = args[4];
	regs->r9 = args[5];
	regs->orig_ax = call->nr;
	if (!(flags & FLEXSC_RUN_INLINE))
		audit_syscall_entry(call->nr, args[0], args[1], args[2], args[3]);
	trace_dispatch(tid, call->index, call->nr, raw_smp_processor_id());
	/*
	 * Current's own flag: set_notify_signal() would also try to wake
	 * current, which runs. A call that would sleep interruptibly sees a
	 * signal pending and returns at once.
	 */
	if (flags & FLEXSC_RUN_NONBLOCK)
		set_thread_flag(TIF_NOTIFY_SIGNAL);
	ret = x64_sys_call(regs, call->nr);
	if (flags & FLEXSC_RUN_NONBLOCK) {
		clear_notify_signal();
		/* Task work queued meanwhile asked for the notification. */
		if (task_work_pending(current))
			set_thread_flag(TIF_NOTIFY_SIGNAL);
	}
	if (!(flags & FLEXSC_RUN_INLINE)) {
		if (unlikely(flexsc_signals_dirty()))
			flexsc_signals_after_call(owner);
		if (unlikely(task_work_pending(current)))
			task_work_run();
		flexsc_audit_exit(ret);
	}
	trace_complete(tid, call->index, call->nr, ret);
	return ret;
}

/*
 * What makes two threads able to share systhreads: one thread group, and
 * the same memory, file table, fs and namespaces (a systhread has those
 * of the thread that created it, and refuses entries of an owner that
 * left them). Written to @key for current, as opaque words.
 */
void flexsc_process_key(unsigned long key[5])
{
	struct task_struct *tsk = current;

	key[0] = (unsigned long)tsk->signal;
	key[1] = (unsigned long)tsk->mm;
	key[2] = (unsigned long)READ_ONCE(tsk->files);
	key[3] = (unsigned long)READ_ONCE(tsk->fs);
	key[4] = (unsigned long)READ_ONCE(tsk->nsproxy);
}

/*
 * Whether current, the owner in flexsc_wait(), may run its entries
 * itself: no signal or notification pending (the calls run with one
 * set, to return at once rather than sleep) and no audit context (the
 * records of its own flexsc_wait() are open).
 */
bool flexsc_inline_allowed(void)
{
	return !signal_pending(current) && !audit_context();
}

/* The CPU current runs on (a hint: it may move). */
unsigned int flexsc_this_cpu(void)
{
	return raw_smp_processor_id();
}

/* The registry of per-process pools (pool.rs) is under this mutex. */
static DEFINE_MUTEX(flexsc_pools_mutex);

void flexsc_pools_lock(void)
{
	mutex_lock(&flexsc_pools_mutex);
}

void flexsc_pools_unlock(void)
{
	mutex_unlock(&flexsc_pools_mutex);
}

/*
 * Once per scan pass: the work a task does on its way back to user mode,
 * which a systhread never takes (memcg and blkcg throttling, task work).
 */
void flexsc_pass_done(void)
{
	if (test_thread_flag(TIF_NOTIFY_RESUME))
		resume_user_mode_work(NULL);
}

/* init_waitqueue_head() is a macro (with a lock class per call site). */
void flexsc_init_waitqueue(struct wait_queue_head *wq)
{
	init_waitqueue_head(wq);
}

/*
 * flexsc_wait()'s sleep: until done(arg), a signal (-EINTR) or the
 * absolute CLOCK_MONOTONIC @deadline in ns (-ETIMEDOUT; none if negative),
 * on an hrtimer so that sub-millisecond timeouts are honoured.
 */
int flexsc_wait_event(struct wait_queue_head *wq, bool (*done)(const void *data),
		      const void *arg, s64 deadline)
{
	DEFINE_WAIT(wait);
	ktime_t expires = ns_to_ktime(deadline);
	int ret = 0;

	for (;;) {
		prepare_to_wait(wq, &wait, TASK_INTERRUPTIBLE);
		if (done(arg))
			break;
		if (signal_pending(current)) {
			ret = -EINTR;
			break;
		}
		if (deadline < 0) {
			schedule();
		} else if (!schedule_hrtimeout_range(&expires, 0,
						     HRTIMER_MODE_ABS)) {
			if (!done(arg))
				ret = -ETIMEDOUT;
			break;
		}
	}
	finish_wait(wq, &wait);
	return ret;
}

/*
 * Teardown's wait until done(arg): killable, but not interruptible and
 * not counted as load (TASK_KILLABLE | TASK_NOLOAD, shown as 'I', not
 * 'D'). Ordinary signals do not end it, so that flexsc_exit() returns
 * only when no call is in flight (the caller may then free the buffers
 * its calls used); a fatal signal does (the process is dying, and what
 * the remaining systhreads use is held by reference). Returns -EINTR
 * then.
 */
int flexsc_wait_teardown(struct wait_queue_head *wq,
			 bool (*done)(const void *data), const void *arg)
{
	return wait_event_state(*wq, done(arg), TASK_KILLABLE | TASK_NOLOAD);
}

/*
 * Trace points, called from Rust: the TRACE_EVENT() macros generate
 * static inlines that Rust cannot call. (dispatch and complete fire in
 * flexsc_run_entry(), behind their static keys.)
 */
void flexsc_trace_register(pid_t tid, u32 nentries, u32 nsysthreads)
{
	trace_register(tid, nentries, nsysthreads);
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
	register_sysctl_init("kernel", flexsc_sysctl_table);
	pr_info("flexsc: exception-less system calls, ABI %d (syscalls 463-465)\n",
		FLEXSC_ABI_VERSION);
	return 0;
}
late_initcall(flexsc_init);
