// SPDX-License-Identifier: GPL-2.0
/*
 * libflexsc-run.so: runs an unmodified dynamically linked program's system
 * calls through FlexSC (see docs/flexsc-run.md).
 *
 * Interception: Syscall User Dispatch (prctl PR_SET_SYSCALL_USER_DISPATCH)
 * sends every `syscall` outside this library's section flexsc_allowed to
 * the SIGSYS handler, per thread; with page 0 mappable, the handler
 * rewrites the site (`syscall`, 0f 05) into `call *%rax` (ff d0), which
 * lands in a nop sled at address nr and reaches fx_tramp (entry.S)
 * without a signal, as zpoline and lazypoline do.
 *
 * Each intercepted call is submitted to the calling thread's FlexSC
 * registration (made on its first call) and waited for, or run directly
 * when FlexSC refuses it or when the interception needs it so.
 *
 * Everything reachable from the handler and the trampoline uses only the
 * raw system call stub fx_sys6(), no libc function (libc's calls would
 * trap again), no floating-point or vector register (the trampoline
 * saves only the general registers: -mgeneral-regs-only).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <ucontext.h>
#include <linux/flexsc.h>
#include <linux/prctl.h>
#include <asm/unistd.h>

#include "fxrun.h"
#include "syscall-names.h"

#ifndef __NR_flexsc_register
#define __NR_flexsc_register 463
#define __NR_flexsc_wait 464
#define __NR_flexsc_exit 465
#endif
#ifndef SYS_USER_DISPATCH
#define SYS_USER_DISPATCH 2
#endif
#define FX_CLONE_VM 0x00000100UL
#define FX_CLONE_VFORK 0x00004000UL
#define FX_CLONE_SETTLS 0x00080000UL
#define FX_SA_RESTORER 0x04000000UL
#define FX_CLOSE_RANGE_UNSHARE 2

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define HIDDEN __attribute__((visibility("hidden")))

/* entry.S */
long fx_sys6(long nr, long a1, long a2, long a3, long a4, long a5, long a6) HIDDEN;
void fx_restorer(void) HIDDEN;
void fx_sigreturn_at(unsigned long rsp) HIDDEN __attribute__((noreturn));
void fx_tramp(void) HIDDEN;
void fx_child_entry(void) HIDDEN;
long fx_tramp_dispatch(struct fx_regs *r) HIDDEN;
void fx_child_init(struct fx_regs *r) HIDDEN;
extern char __start_flexsc_allowed[] HIDDEN, __stop_flexsc_allowed[] HIDDEN;

#define sys0(n) fx_sys6((n), 0, 0, 0, 0, 0, 0)
#define sys1(n, a) fx_sys6((n), (long)(a), 0, 0, 0, 0, 0)
#define sys2(n, a, b) fx_sys6((n), (long)(a), (long)(b), 0, 0, 0, 0)
#define sys3(n, a, b, c) fx_sys6((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define sys4(n, a, b, c, d) fx_sys6((n), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define sys6(n, a, b, c, d, e, f) \
	fx_sys6((n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))

/*
 * The compiler may emit calls to these for struct copies; libc's would be
 * fine to call (they make no system call) but may use vector registers,
 * which the trampoline does not save.
 */
HIDDEN void *memcpy(void *d, const void *s, size_t n)
{
	char *dp = d;
	const char *sp = s;

	while (n--)
		*dp++ = *sp++;
	return d;
}

HIDDEN void *memset(void *d, int c, size_t n)
{
	char *dp = d;

	while (n--)
		*dp++ = (char)c;
	return d;
}

static size_t fx_strlen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

static int fx_strncmp(const char *a, const char *b, size_t n)
{
	for (; n; n--, a++, b++) {
		if (*a != *b)
			return (unsigned char)*a - (unsigned char)*b;
		if (!*a)
			return 0;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* State */

enum fx_state { FX_UNREG, FX_REG, FX_FAILED, FX_PROGRAM };

/* Why a call ran directly (for --stats). */
enum fx_why {
	W_REFUSED,	/* FlexSC refuses it (its policy, kept here too) */
	W_TOOL,		/* the interception runs it itself (signals, clone, exec, exit) */
	W_SELF,		/* its meaning is "this thread" beyond FlexSC's table */
	W_NESTED,	/* this thread's entry was in flight (signal handler) */
	W_UNAVAIL,	/* no FlexSC: kernel, registration failed, --no-flexsc */
	W_FALLBACK,	/* FlexSC completed it with -ENOSYS: run again directly */
	W_VFORK,	/* a vfork child (shares the parent's memory) */
	W_NR
};

static const char *const fx_why_name[W_NR] = {
	"refused by FlexSC", "run by the interception", "per-thread meaning",
	"nested in a handler", "FlexSC unavailable", "-ENOSYS fallback", "vfork child",
};

struct fx_thread {
	uint8_t selector;	/* SUD selector: BLOCK while the program runs */
	uint8_t state;		/* enum fx_state */
	uint8_t busy;		/* entry 0 in flight */
	uint8_t in_vfork;	/* a vfork-like child may be running on our memory */
	uint8_t sud;		/* SUD is on for this thread */
	uint8_t reg_err;	/* errno of a failed registration */
	uint8_t colocated;	/* its systhread is on its CPU: no spinning */
	struct flexsc_hdr *region;
	uintptr_t busy_sp;	/* where the owner of the busy entry keeps... */
	uint64_t busy_canary;	/* ...this value */
	uint64_t seq;
	uint32_t sig_seen;	/* the program's handlers run on this thread */
	uint32_t sig_norestart;	/* ... of them without SA_RESTART */
};

static __thread struct fx_thread fx_t __attribute__((tls_model("initial-exec")));

#define FX_NR_MAX 512
#define FX_MAX_CPUS 1024

static struct {
	int verbose, want_stats, rewrite, use_flexsc;
	int stats_fd;		/* --stats without a file: our copy of stderr */
	uint64_t stats_dev, stats_ino;	/* ... and what it is */
	unsigned int spin, idle_us;
	uint64_t maxrewrite;	/* (debugging: rewrite the first N sites only) */
	int abi_ok;
	int page0;
	long pid;
	long sel_off;		/* tp offset of fx_t.selector */
	char stats_path[512];
	char comm[64];
	char lib[512];
	char opts[1024];
	uint16_t cpus[FX_MAX_CPUS];
	unsigned int ncpus;
	unsigned int rr;
	int printed;
	int rewrite_lock;
	int nthreads;		/* threads we saw start and not exit */
	/* the program's SIGSYS disposition (we keep the real one) */
	struct ksigaction {
		uint64_t handler, flags, restorer, mask;
	} prog_sigsys;
} fx;

static uint64_t fx_cnt[FX_NR_MAX + 1][2];	/* [nr][0: FlexSC, 1: direct] */
static uint64_t fx_why[W_NR];
static uint64_t fx_sites_rewritten, fx_sites_refused, fx_traps;

static inline void count(uint64_t nr, int direct)
{
	if (nr > FX_NR_MAX)
		nr = FX_NR_MAX;
	__atomic_fetch_add(&fx_cnt[nr][direct], 1, __ATOMIC_RELAXED);
}

static inline void count_direct(uint64_t nr, enum fx_why w)
{
	if (unlikely(fx_t.in_vfork) && w == W_TOOL)
		w = W_VFORK; /* (in the parent, in_vfork is cleared first) */
	count(nr, 1);
	__atomic_fetch_add(&fx_why[w], 1, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------------ */
/* Output without libc */

struct fx_buf {
	char *p;
	size_t len, cap;
};

static void put(struct fx_buf *b, const char *s)
{
	while (*s && b->len < b->cap)
		b->p[b->len++] = *s++;
}

static void putu(struct fx_buf *b, uint64_t v, int width)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (width-- > n && b->len < b->cap)
		b->p[b->len++] = ' ';
	while (n && b->len < b->cap)
		b->p[b->len++] = tmp[--n];
}

static void putpad(struct fx_buf *b, const char *s, int width)
{
	int n = (int)fx_strlen(s);

	put(b, s);
	while (n++ < width && b->len < b->cap)
		b->p[b->len++] = ' ';
}

static void fx_write_all(int fd, const char *p, size_t n)
{
	while (n) {
		long r = sys3(__NR_write, fd, p, n);

		if (r == -EINTR)
			continue;
		if (r <= 0)
			return;
		p += r;
		n -= (size_t)r;
	}
}

static void fx_log(const char *a, const char *b, long v)
{
	char m[512];
	struct fx_buf buf = { m, 0, sizeof(m) - 1 };

	put(&buf, "flexsc-run[");
	putu(&buf, (uint64_t)sys0(__NR_getpid), 0);
	put(&buf, "]: ");
	put(&buf, a);
	if (b)
		put(&buf, b);
	if (v >= 0)
		putu(&buf, (uint64_t)v, 0);
	put(&buf, "\n");
	fx_write_all(2, m, buf.len);
}

#define VLOG(...) do { if (fx.verbose) fx_log(__VA_ARGS__); } while (0)

/* ------------------------------------------------------------------ */
/* Statistics */

static const char *fx_name(uint64_t nr, char *tmp)
{
	if (nr < FX_NR_MAX && nr < sizeof(fx_names) / sizeof(fx_names[0]) && fx_names[nr])
		return fx_names[nr];
	if (nr == __NR_flexsc_register)
		return "flexsc_register";
	if (nr == __NR_flexsc_wait)
		return "flexsc_wait";
	if (nr == __NR_flexsc_exit)
		return "flexsc_exit";
	if (nr >= FX_NR_MAX)
		return "(512 and above)";
	{
		struct fx_buf b = { tmp, 0, 15 };

		put(&b, "nr_");
		putu(&b, nr, 0);
		tmp[b.len] = 0;
	}
	return tmp;
}

static void fx_print_stats(const char *when)
{
	uint64_t tot[2] = { 0, 0 };
	size_t cap = 256 * 1024;
	char *m;
	struct fx_buf b;
	int fd = fx.stats_fd;

	if (!fx.want_stats)
		return;
	m = (char *)sys6(__NR_mmap, 0, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if ((long)m < 0 && (long)m > -4096)
		return;
	b = (struct fx_buf){ m, 0, cap };
	for (int i = 0; i <= FX_NR_MAX; i++) {
		tot[0] += __atomic_load_n(&fx_cnt[i][0], __ATOMIC_RELAXED);
		tot[1] += __atomic_load_n(&fx_cnt[i][1], __ATOMIC_RELAXED);
	}
	put(&b, "flexsc-run: pid ");
	putu(&b, (uint64_t)sys0(__NR_getpid), 0);
	put(&b, " (");
	put(&b, fx.comm);
	put(&b, ") at ");
	put(&b, when);
	put(&b, ": ");
	putu(&b, tot[0] + tot[1], 0);
	put(&b, " system calls, ");
	putu(&b, tot[0], 0);
	put(&b, " through FlexSC, ");
	putu(&b, tot[1], 0);
	put(&b, " direct");
	if (!fx.abi_ok)
		put(&b, " (this kernel has no FlexSC ABI v1)");
	put(&b, "\n  direct:");
	for (int w = 0; w < W_NR; w++) {
		uint64_t v = __atomic_load_n(&fx_why[w], __ATOMIC_RELAXED);

		if (!v)
			continue;
		put(&b, " ");
		putu(&b, v, 0);
		put(&b, " ");
		put(&b, fx_why_name[w]);
		put(&b, ";");
	}
	put(&b, "\n  interception: ");
	putu(&b, fx_traps, 0);
	put(&b, " SIGSYS, sites rewritten ");
	putu(&b, fx_sites_rewritten, 0);
	put(&b, ", left to SIGSYS ");
	putu(&b, fx_sites_refused, 0);
	put(&b, fx.page0 ? "" : " (no rewriting: page 0 not mapped)");
	put(&b, "\n  syscall                   flexsc     direct\n");
	for (int i = 0; i <= FX_NR_MAX; i++) {
		uint64_t f = __atomic_load_n(&fx_cnt[i][0], __ATOMIC_RELAXED);
		uint64_t d = __atomic_load_n(&fx_cnt[i][1], __ATOMIC_RELAXED);
		char tmp[16];

		if (!f && !d)
			continue;
		put(&b, "  ");
		putpad(&b, fx_name((uint64_t)i, tmp), 22);
		putu(&b, f, 10);
		putu(&b, d, 11);
		put(&b, "\n");
	}
	if (fx.stats_path[0])
		/* (a process that changed its user may not open it: then its
		 * statistics are lost, rather than written into its stderr) */
		fd = (int)sys4(__NR_openat, AT_FDCWD, fx.stats_path,
			       O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd == fx.stats_fd && fd != 2) {
		/* The program may have closed it and opened something else
		 * there since. */
		struct stat st;

		if (sys2(__NR_fstat, fd, &st) || st.st_dev != fx.stats_dev ||
		    st.st_ino != fx.stats_ino)
			fd = 2;
	}
	if (fd >= 0)
		fx_write_all(fd, m, b.len);
	if (fx.stats_path[0] && fd >= 0)
		sys1(__NR_close, fd);
	sys2(__NR_munmap, m, cap);
}

/* ------------------------------------------------------------------ */
/* FlexSC's policy (flexsc/dispatch.rs, docs/semantics.md): calls it
 * completes with -ENOSYS unrun. They are run directly without a round
 * trip; a refusal this copy misses is caught by the -ENOSYS fallback. */

static int fx_refused(uint64_t nr, const uint64_t *a)
{
	switch (nr) {
	case __NR_exit: case __NR_exit_group: case __NR_fork: case __NR_vfork:
	case __NR_clone: case __NR_clone3: case __NR_execve: case __NR_execveat:
	case __NR_rt_sigreturn: case __NR_rt_sigprocmask: case __NR_rt_sigsuspend:
	case __NR_rt_sigpending: case __NR_rt_sigtimedwait: case __NR_sigaltstack:
	case __NR_pause: case __NR_restart_syscall: case __NR_signalfd: case __NR_signalfd4:
	case __NR_set_tid_address: case __NR_set_robust_list: case __NR_rseq:
	case __NR_arch_prctl: case __NR_set_thread_area: case __NR_get_thread_area:
	case __NR_modify_ldt: case __NR_iopl: case __NR_ioperm: case __NR_prctl:
	case __NR_personality: case __NR_seccomp: case __NR_unshare: case __NR_setns:
	case __NR_landlock_restrict_self: case __NR_ptrace: case __NR_capset:
	case __NR_setuid: case __NR_setgid: case __NR_setreuid: case __NR_setregid:
	case __NR_setresuid: case __NR_setresgid: case __NR_setfsuid: case __NR_setfsgid:
	case __NR_setgroups: case __NR_set_mempolicy: case __NR_get_mempolicy:
	case __NR_pkey_alloc: case __NR_pkey_free: case __NR_pkey_mprotect:
	case __NR_io_uring_setup: case __NR_io_uring_enter: case __NR_io_uring_register:
	case __NR_flexsc_register: case __NR_flexsc_wait: case __NR_flexsc_exit:
	case 459: case 460: /* lsm_get_self_attr, lsm_set_self_attr */
	case 453:	    /* map_shadow_stack */
	case 335:	    /* uretprobe */
		return 1;
	case __NR_futex:
		switch (a[1] & 0x7f) {
		case 6: case 7: case 8: case 11: case 12: case 13:
			return 1;
		}
		return 0;
	case __NR_getrusage:
		return a[0] == 1; /* RUSAGE_THREAD */
	case __NR_ioctl: {
		uint64_t cmd = a[1] & 0xffffffffu;

		return ((cmd >> 8) & 0xff) == 0xae || cmd == 0x540e || cmd == 0x5410 ||
		       cmd == 0x5422;
	}
	}
	return nr >= FX_NR_MAX;
}

/* Calls whose meaning through a systhread differs in a way the engine
 * does not emulate (docs/semantics.md, "differences"): run directly. */
static int fx_self(uint64_t nr, const uint64_t *a)
{
	switch (nr) {
	case __NR_sched_yield:
	case __NR_getcpu:
		return 1;
	case __NR_close_range:
		return (a[2] & FX_CLOSE_RANGE_UNSHARE) != 0;
	}
	return 0;
}

/* Interrupted by a signal handler, these fail with EINTR even under
 * SA_RESTART (signal(7)). */
static int fx_never_restarted(uint64_t nr)
{
	switch (nr) {
	case __NR_poll: case __NR_ppoll: case __NR_select: case __NR_pselect6:
	case __NR_epoll_wait: case __NR_epoll_pwait: case __NR_epoll_pwait2:
	case __NR_nanosleep: case __NR_clock_nanosleep: case __NR_msgrcv:
	case __NR_msgsnd: case __NR_semop: case __NR_semtimedop:
	case __NR_io_getevents: case __NR_io_pgetevents:
		return 1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Registration and the round trip */

/* Picks the systhread's CPU; returns whether it is the caller's. */
static int fx_pick_cpu(uint64_t *mask)
{
	unsigned int n = fx.ncpus, i, cur = ~0u;

	if (!n)
		return 0;
	{
		unsigned int c = 0;

		if (sys3(__NR_getcpu, &c, 0, 0) == 0)
			cur = c;
	}
	i = __atomic_fetch_add(&fx.rr, 1, __ATOMIC_RELAXED) % n;
	if (fx.cpus[i] == cur)
		i = (i + 1) % n;
	mask[fx.cpus[i] / 64] |= 1ULL << (fx.cpus[i] % 64);
	return fx.cpus[i] == cur;
}

static void fx_register(struct fx_thread *t)
{
	uint64_t mask[FX_MAX_CPUS / 64] = { 0 };
	struct flexsc_params p = { 0 };
	long r;

	t->state = FX_FAILED; /* while registering: nested calls go direct */
	if (!t->region) {
		long m = sys6(__NR_mmap, 0, 4096, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

		if (m < 0 && m > -4096) {
			t->reg_err = (uint8_t)-m;
			return;
		}
		t->region = (struct flexsc_hdr *)m;
	}
	((struct flexsc_sysentry *)(t->region + 1))->status = FLEXSC_FREE;
	t->colocated = (uint8_t)fx_pick_cpu(mask);
	p.region = (uint64_t)(uintptr_t)t->region;
	p.nentries = 1;
	p.nsysthreads = 1;
	p.cpu_mask = fx.ncpus ? (uint64_t)(uintptr_t)mask : 0;
	p.cpu_mask_size = fx.ncpus ? sizeof(mask) : 0;
	/* On the caller's own CPU an idle systhread's polling only delays
	 * the caller it polls for: let it sleep at once. */
	p.idle_us = fx.idle_us ? fx.idle_us : t->colocated ? 1 : 0;
	r = sys2(__NR_flexsc_register, &p, sizeof(p));
	if (r == 0) {
		t->state = FX_REG;
		return;
	}
	t->reg_err = (uint8_t)-r;
	VLOG("flexsc_register failed, this thread runs its calls directly: errno ", 0, -r);
}

/* Ends this thread's registration: calls in flight complete (-EINTR or
 * their own result) before flexsc_exit returns. */
static void fx_unregister(struct fx_thread *t)
{
	if (t->state == FX_REG)
		sys0(__NR_flexsc_exit);
	t->state = FX_UNREG;
}

/*
 * Whether the frame that owns the busy entry was abandoned: a signal
 * handler longjmp()ed out of its wait. A live owner is only ever above us
 * on the stack, when we run in a handler that interrupted it (or on the
 * alternate stack, in a handler that interrupted it on the main one). So
 * it was abandoned if we run at or above it on the same stack, or on the
 * main stack while it was on the alternate one, or if the canary it keeps
 * in its frame is gone: calls made since overwrote it.
 */
static int fx_abandoned(struct fx_thread *t)
{
	uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
	uint64_t canary = 0;
	struct iovec local = { &canary, sizeof(canary) };
	struct iovec remote = { (void *)t->busy_sp, sizeof(canary) };
	stack_t ss;
	int cur_alt, busy_alt;
	long r;

	if (sys2(__NR_sigaltstack, 0, &ss) < 0)
		return 0;
	cur_alt = (ss.ss_flags & SS_ONSTACK) != 0;
	busy_alt = !(ss.ss_flags & SS_DISABLE) && t->busy_sp >= (uintptr_t)ss.ss_sp &&
		   t->busy_sp < (uintptr_t)ss.ss_sp + ss.ss_size;
	if (cur_alt != busy_alt)
		return busy_alt;
	if (sp >= t->busy_sp)
		return 1;
	/* Read the canary without faulting if the stack is gone (a
	 * coroutine's, say); without process_vm_readv (CONFIG_CROSS_MEMORY_ATTACH),
	 * only where it is surely the stack we run on. */
	r = sys6(__NR_process_vm_readv, fx.pid, &local, 1, &remote, 1, 0);
	if (r == -ENOSYS || r == -EPERM) {
		if (t->busy_sp - sp > (1 << 20))
			return 0;
		canary = *(volatile uint64_t *)t->busy_sp;
	} else if (r != sizeof(canary)) {
		return 1;
	}
	return canary != t->busy_canary;
}

/* Submits (nr, a) to this thread's entry and waits. Returns 1 with *ret
 * set, or 0 if the call must run directly (*why says why). */
static int fx_flexsc(struct fx_thread *t, uint64_t nr, const uint64_t *a, long *ret,
		     enum fx_why *why)
{
	struct flexsc_sysentry *e;
	volatile uint64_t canary;
	uint32_t st, seen, norestart;

	if (t->state == FX_UNREG)
		fx_register(t);
	if (t->state != FX_REG) {
		*why = W_UNAVAIL;
		return 0;
	}
	e = (struct flexsc_sysentry *)(t->region + 1);
	if (t->busy) {
		if (!fx_abandoned(t)) {
			*why = W_NESTED;
			return 0;
		}
		/* Its call would go on (a read stealing data, say): end it. */
		fx_unregister(t);
		e->status = FLEXSC_FREE;
		t->busy = 0;
		fx_register(t);
		if (t->state != FX_REG) {
			*why = W_UNAVAIL;
			return 0;
		}
	}
	canary = ++t->seq | 1;
	t->busy_sp = (uintptr_t)&canary;
	t->busy_canary = canary;
	t->busy = 1;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);

	e->nr = (uint32_t)nr;
	for (int i = 0; i < 6; i++)
		e->args[i] = a[i];
	__atomic_store_n(&e->status, FLEXSC_SUBMITTED, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);

	if (!t->colocated &&
	    !(__atomic_load_n(&t->region->flags, __ATOMIC_RELAXED) & FLEXSC_NEED_WAKEUP)) {
		/* A systhread is awake (polling): a short call is done
		 * before a flexsc_wait() would even get there. */
		for (unsigned int i = 0; i < fx.spin; i++) {
			if (__atomic_load_n(&e->status, __ATOMIC_ACQUIRE) == FLEXSC_DONE)
				goto done;
			__asm__ __volatile__("pause");
		}
	}
	for (;;) {
		long w;

		st = __atomic_load_n(&e->status, __ATOMIC_ACQUIRE);
		if (st == FLEXSC_DONE)
			break;
		if (unlikely(st == FLEXSC_FREE))
			break; /* taken from us (never by design): as interrupted */
		seen = t->sig_seen;
		norestart = t->sig_norestart;
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		w = sys2(__NR_flexsc_wait, 1, 0);
		if (w >= 0)
			continue;
		if (__atomic_load_n(&e->status, __ATOMIC_ACQUIRE) == FLEXSC_DONE)
			break;
		/* A signal came in. A handler without SA_RESTART interrupts
		 * the call, as does any for a call never restarted; a stop,
		 * or a handler with SA_RESTART, leaves it going on. */
		if (w == -EINTR && t->sig_norestart == norestart &&
		    (t->sig_seen == seen || !fx_never_restarted(nr)))
			continue;
		/* Interrupted as a direct call would be (or the registration
		 * is gone): end the call in flight. */
		fx_unregister(t);
		break;
	}
done:
	st = __atomic_load_n(&e->status, __ATOMIC_ACQUIRE);
	*ret = st == FLEXSC_DONE ? (long)e->ret : -EINTR; /* never claimed: never ran */
	__atomic_store_n(&e->status, FLEXSC_FREE, __ATOMIC_RELAXED);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	t->busy = 0;
	if (*ret == -ENOSYS) {
		*why = W_FALLBACK;
		return 0;
	}
	return 1;
}

/* ------------------------------------------------------------------ */
/* Syscall User Dispatch and rewriting */

static int fx_sud_on(struct fx_thread *t)
{
	long r;

	t->selector = SYSCALL_DISPATCH_FILTER_BLOCK;
	r = sys6(__NR_prctl, PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON,
		 (uintptr_t)__start_flexsc_allowed,
		 __stop_flexsc_allowed - __start_flexsc_allowed, &t->selector, 0);
	t->sud = r == 0;
	return (int)r;
}

/* Per (site, child mode) thunks: run a clone, fork or vfork natively at a site's
 * place, then continue at the site's next instruction. The selector
 * (not the allowed range) lets their `syscall` through. */
#define THUNK_SIZE 80
#define THUNK_TABLE 4096
static struct {
	uint64_t key;
	uint64_t code;
} fx_thunks[THUNK_TABLE];
static char *fx_pool;
static size_t fx_pool_used, fx_pool_size;

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static void put64(unsigned char *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

/* What the child of a clone run natively is (the thunk tells it). */
enum { FX_CHILD_PROCESS = 1, FX_CHILD_THREAD, FX_CHILD_SHARED };

static uint64_t fx_make_thunk(uint64_t next, uint32_t mode)
{
	size_t off = __atomic_fetch_add(&fx_pool_used, THUNK_SIZE, __ATOMIC_RELAXED);
	unsigned char *c;

	if (!fx_pool || off + THUNK_SIZE > fx_pool_size)
		return 0;
	c = (unsigned char *)fx_pool + off;
	/* movb $ALLOW, %fs:sel_off */
	c[0] = 0x64; c[1] = 0xc6; c[2] = 0x04; c[3] = 0x25;
	put32(c + 4, (uint32_t)fx.sel_off); c[8] = SYSCALL_DISPATCH_FILTER_ALLOW;
	/* syscall */
	c[9] = 0x0f; c[10] = 0x05;
	/* movb $BLOCK, %fs:sel_off */
	c[11] = 0x64; c[12] = 0xc6; c[13] = 0x04; c[14] = 0x25;
	put32(c + 15, (uint32_t)fx.sel_off); c[19] = SYSCALL_DISPATCH_FILTER_BLOCK;
	/* test %rax,%rax; jnz done */
	c[20] = 0x48; c[21] = 0x85; c[22] = 0xc0;
	c[23] = 0x75; c[24] = 50 - 25;
	/* lea -0x80(%rsp),%rsp */
	c[25] = 0x48; c[26] = 0x8d; c[27] = 0x64; c[28] = 0x24; c[29] = 0x80;
	/* mov $mode,%r11d */
	c[30] = 0x41; c[31] = 0xbb; put32(c + 32, mode);
	/* call *child(%rip) */
	c[36] = 0xff; c[37] = 0x15; put32(c + 38, 64 - 42);
	/* lea 0x80(%rsp),%rsp */
	c[42] = 0x48; c[43] = 0x8d; c[44] = 0xa4; c[45] = 0x24; put32(c + 46, 0x80);
	/* done: jmp *target(%rip) */
	c[50] = 0xff; c[51] = 0x25; put32(c + 52, 0);
	put64(c + 56, next);
	put64(c + 64, (uint64_t)(uintptr_t)fx_child_entry);
	return (uint64_t)(uintptr_t)c;
}

static uint64_t fx_thunk(uint64_t next, uint32_t mode)
{
	/* user addresses are below 2^47: the mode goes in the top byte */
	uint64_t key = next | (uint64_t)mode << 56;
	uint64_t h = (key * 0x9e3779b97f4a7c15ULL) >> 20;

	for (unsigned int i = 0; i < THUNK_TABLE; i++) {
		unsigned int k = (unsigned int)(h + i) % THUNK_TABLE;
		uint64_t cur = __atomic_load_n(&fx_thunks[k].key, __ATOMIC_ACQUIRE);
		uint64_t code;

		if (cur == 0 && __atomic_compare_exchange_n(&fx_thunks[k].key, &cur, key, 0,
							    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
			code = fx_make_thunk(next, mode);
			/* 1: none could be made (the pool is full) */
			__atomic_store_n(&fx_thunks[k].code, code ? code : 1, __ATOMIC_RELEASE);
			return code;
		}
		if (cur != key)
			continue;
		while (!(code = __atomic_load_n(&fx_thunks[k].code, __ATOMIC_ACQUIRE)))
			__asm__ __volatile__("pause");
		return code == 1 ? 0 : code;
	}
	return 0;
}

/* Sites that are not rewritten, so that each is judged once. */
#define NOREWRITE_TABLE 2048
static uint64_t fx_norewrite[NOREWRITE_TABLE];

static int fx_norewrite_has(uint64_t site, int add)
{
	uint64_t h = (site * 0x9e3779b97f4a7c15ULL) >> 20;

	for (unsigned int i = 0; i < 64; i++) {
		uint64_t *p = &fx_norewrite[(h + i) % NOREWRITE_TABLE];
		uint64_t cur = __atomic_load_n(p, __ATOMIC_RELAXED);

		if (cur == site)
			return 1;
		if (cur == 0) {
			if (!add)
				return 0;
			if (__atomic_compare_exchange_n(p, &cur, site, 0, __ATOMIC_RELAXED,
							__ATOMIC_RELAXED) || cur == site)
				return 1;
		}
	}
	return add; /* full: give up remembering */
}

struct fx_map {
	uint64_t start, end;
	int prot, file;
};

static uint64_t fx_hex(const char **s)
{
	uint64_t v = 0;

	for (;; (*s)++) {
		char c = **s;

		if (c >= '0' && c <= '9')
			v = v * 16 + (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v * 16 + (uint64_t)(c - 'a' + 10);
		else
			return v;
	}
}

/* The mapping that holds addr, from /proc/self/maps. The buffer is not
 * on the stack: a handler may run on a small alternate stack (Python's is
 * 16 KiB) with a signal frame already on it. Under the rewrite lock. */
static char fx_maps_buf[4096];

static int fx_find_map(uint64_t addr, struct fx_map *m)
{
	char *buf = fx_maps_buf;
	size_t have = 0;
	int fd = (int)sys4(__NR_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC, 0);
	int found = 0;

	if (fd < 0)
		return 0;
	for (;;) {
		long r = sys3(__NR_read, fd, buf + have, sizeof(fx_maps_buf) - 1 - have);
		size_t start = 0;

		if (r == -EINTR)
			continue;
		if (r <= 0)
			break;
		have += (size_t)r;
		for (size_t i = 0; i < have; i++) {
			const char *s;

			if (buf[i] != '\n')
				continue;
			buf[i] = 0;
			s = buf + start;
			start = i + 1;
			m->start = fx_hex(&s);
			if (*s++ != '-')
				continue;
			m->end = fx_hex(&s);
			if (addr < m->start || addr >= m->end || *s++ != ' ')
				continue;
			m->prot = (s[0] == 'r' ? PROT_READ : 0) | (s[1] == 'w' ? PROT_WRITE : 0) |
				  (s[2] == 'x' ? PROT_EXEC : 0);
			m->file = s[3] == 'p';
			/* "perms offset dev inode path": a path starting with '/' */
			{
				const char *p = s;
				int fields = 0;

				while (*p && fields < 4) {
					while (*p && *p != ' ')
						p++;
					while (*p == ' ')
						p++;
					fields++;
				}
				m->file = m->file && *p == '/';
			}
			found = 1;
			goto out;
		}
		for (size_t i = start; i < have; i++)
			buf[i - start] = buf[i];
		have -= start;
		if (have >= sizeof(fx_maps_buf) - 1)
			have = 0; /* a line longer than the buffer: drop it */
	}
out:
	sys1(__NR_close, fd);
	return found;
}

/*
 * Would `call *%rax` clobber live data? It writes the return address at
 * -8(%rsp), inside the red zone a leaf function may use (glibc's
 * __longjmp_chk passes sigaltstack() a stack_t at -0x18(%rsp)). Refuse a
 * site near which an instruction addresses below %rsp: a common opcode,
 * then ModRM mod 01 or 10 with a SIB of base %rsp and no index, and a
 * negative displacement. A byte scan, not a decoder: a false positive
 * costs a signal per call; a red zone used further away, or through
 * %rbp in a frame-pointer leaf function, is missed (docs/flexsc-run.md).
 */
static int fx_opcode(unsigned char b)
{
	switch (b) {
	case 0x01: case 0x03: case 0x10: case 0x11: case 0x12: case 0x13:
	case 0x16: case 0x17: case 0x28: case 0x29: case 0x2b: case 0x2e:
	case 0x31: case 0x33: case 0x39: case 0x3b: case 0x63: case 0x6f:
	case 0x7f: case 0x80: case 0x81: case 0x83: case 0x85: case 0x88:
	case 0x89: case 0x8a: case 0x8b: case 0x8d: case 0xb6: case 0xb7:
	case 0xbe: case 0xbf: case 0xc6: case 0xc7: case 0xd6: case 0xd7:
	case 0xf7: case 0xff:
		return 1;
	}
	return 0;
}

static int fx_uses_red_zone(const unsigned char *lo, const unsigned char *hi)
{
	for (const unsigned char *p = lo + 1; p + 2 < hi; p++) {
		if (!fx_opcode(p[-1]) || p[1] != 0x24)
			continue;
		if ((p[0] & 0xc7) == 0x44 && p[2] >= 0x80)
			return 1;
		if ((p[0] & 0xc7) == 0x84 && p + 5 < hi && p[5] >= 0x80)
			return 1;
	}
	return 0;
}

static void fx_maybe_rewrite(uint64_t site)
{
	unsigned char *p = (unsigned char *)(uintptr_t)site;
	struct fx_map m;
	uint64_t page, lo, hi;
	int ok = 0;

	if (fx_norewrite_has(site, 0))
		return;
	if (__atomic_exchange_n(&fx.rewrite_lock, 1, __ATOMIC_ACQUIRE))
		return; /* another thread (or an interrupted us) is at it: later */
	if (p[0] != 0x0f || p[1] != 0x05)
		goto out_ok; /* rewritten meanwhile */
	/* A store that straddles cache lines is not atomic for a thread
	 * executing the site meanwhile: only while we are the only one. */
	if (((site & 63) == 63 && __atomic_load_n(&fx.nthreads, __ATOMIC_RELAXED) != 1) ||
	    !fx_find_map(site, &m) || !m.file ||
	    m.prot != (PROT_READ | PROT_EXEC) || site + 2 > m.end) {
		VLOG("not rewritten (mapping): site ", 0, (long)site);
		goto out;
	}
	lo = site - 192 < m.start || site < 192 ? m.start : site - 192;
	hi = site + 64 > m.end ? m.end : site + 64;
	if (fx_uses_red_zone((unsigned char *)(uintptr_t)lo, (unsigned char *)(uintptr_t)hi)) {
		VLOG("not rewritten (red zone): site ", 0, (long)site);
		goto out;
	}
	page = site & ~4095ULL;
	if (sys3(__NR_mprotect, page, (site + 2 > page + 4096) ? 8192 : 4096,
		 PROT_READ | PROT_WRITE | PROT_EXEC) < 0)
		goto out;
	if (fx_sites_rewritten >= fx.maxrewrite)
		goto out;
	__atomic_store_n((uint16_t *)p, (uint16_t)0xd0ff, __ATOMIC_RELEASE);
	VLOG("rewritten: site ", 0, (long)site);
	sys3(__NR_mprotect, page, (site + 2 > page + 4096) ? 8192 : 4096, m.prot);
	__atomic_fetch_add(&fx_sites_rewritten, 1, __ATOMIC_RELAXED);
out_ok:
	ok = 1;
out:
	if (!ok) {
		fx_norewrite_has(site, 1);
		__atomic_fetch_add(&fx_sites_refused, 1, __ATOMIC_RELAXED);
	}
	__atomic_store_n(&fx.rewrite_lock, 0, __ATOMIC_RELEASE);
}

/* ------------------------------------------------------------------ */
/* The calls the interception runs itself */

static int fx_has_lib(const char *v)
{
	size_t n = fx_strlen(fx.lib);

	for (const char *p = v; *p; p++)
		if (!fx_strncmp(p, fx.lib, n) && (p[n] == 0 || p[n] == ':' || p[n] == ' '))
			return 1;
	return 0;
}

/* execve/execveat: keep LD_PRELOAD and our options in the new program's
 * environment, even where the program built a fresh one. */
static long fx_exec(uint64_t nr, const uint64_t *a)
{
	char **envp = (char **)(uintptr_t)(nr == __NR_execve ? a[2] : a[3]);
	size_t n = 0, need, len;
	char *pre = NULL;
	int has_opts = 0;
	long r, m;
	char **ne;
	char *s;
	uint64_t b[6];

	if (fx.lib[0] == 0)
		goto plain;
	if (envp) {
		for (; envp[n]; n++) {
			if (!fx_strncmp(envp[n], "LD_PRELOAD=", 11))
				pre = envp[n];
			else if (!fx_strncmp(envp[n], FX_ENV_OPTS "=", sizeof(FX_ENV_OPTS)))
				has_opts = 1;
		}
	}
	if (pre && fx_has_lib(pre + 11) && has_opts)
		goto plain;
	len = sizeof("LD_PRELOAD=") + fx_strlen(fx.lib) + 1 + (pre ? fx_strlen(pre) : 0) +
	      sizeof(FX_ENV_OPTS) + 1 + fx_strlen(fx.opts) + 1 +
	      sizeof(FX_ENV_LIB) + 1 + fx_strlen(fx.lib) + 1;
	need = (n + 4) * sizeof(char *) + len;
	m = sys6(__NR_mmap, 0, need, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m < 0 && m > -4096)
		goto plain;
	ne = (char **)m;
	s = (char *)(ne + n + 4);
	{
		size_t k = 0;
		struct fx_buf buf = { s, 0, len };

		for (size_t i = 0; i < n; i++)
			if (envp[i] != pre && fx_strncmp(envp[i], FX_ENV_OPTS "=", sizeof(FX_ENV_OPTS)) &&
			    fx_strncmp(envp[i], FX_ENV_LIB "=", sizeof(FX_ENV_LIB)))
				ne[k++] = envp[i];
		ne[k++] = buf.p + buf.len;
		put(&buf, "LD_PRELOAD=");
		put(&buf, fx.lib);
		if (pre && !fx_has_lib(pre + 11)) {
			put(&buf, ":");
			put(&buf, pre + 11);
		} else if (pre) {
			buf.len -= fx_strlen(fx.lib);
			put(&buf, pre + 11);
		}
		buf.p[buf.len++] = 0;
		ne[k++] = buf.p + buf.len;
		put(&buf, FX_ENV_OPTS "=");
		put(&buf, fx.opts);
		buf.p[buf.len++] = 0;
		ne[k++] = buf.p + buf.len;
		put(&buf, FX_ENV_LIB "=");
		put(&buf, fx.lib);
		buf.p[buf.len++] = 0;
		ne[k] = NULL;
	}
	for (int i = 0; i < 6; i++)
		b[i] = a[i];
	b[nr == __NR_execve ? 2 : 3] = (uint64_t)(uintptr_t)ne;
	r = fx_sys6((long)nr, (long)b[0], (long)b[1], (long)b[2], (long)b[3], (long)b[4], (long)b[5]);
	sys2(__NR_munmap, m, need);
	return r;
plain:
	return fx_sys6((long)nr, (long)a[0], (long)a[1], (long)a[2], (long)a[3], (long)a[4],
		       (long)a[5]);
}

/*
 * The program's signal handlers run through fx_handler(), which counts
 * them per thread before calling the program's: after flexsc_wait()
 * fails with EINTR, that says whether a handler ran and whether it had
 * SA_RESTART, so a call in flight is interrupted or goes on exactly as a
 * direct call would. sigaction() reads back the program's own handler.
 */
static struct ksigaction fx_acts[65];	/* the program's, where ours is installed */
static int fx_acts_lock;

static void fx_handler(int sig, siginfo_t *si, void *uc)
{
	struct fx_thread *t = &fx_t;
	struct ksigaction a = fx_acts[(unsigned int)sig <= 64 ? sig : 0];

	t->sig_seen++;
	if (!(a.flags & SA_RESTART))
		t->sig_norestart++;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (a.handler == (uint64_t)(uintptr_t)SIG_DFL || a.handler == (uint64_t)(uintptr_t)SIG_IGN)
		return; /* changed as it was being delivered */
	if (a.flags & SA_SIGINFO)
		((void (*)(int, siginfo_t *, void *))(uintptr_t)a.handler)(sig, si, uc);
	else
		((void (*)(int))(uintptr_t)a.handler)(sig);
}

static long fx_sigaction(const uint64_t *a, int vchild)
{
	int sig = (int)a[0];
	const struct ksigaction *act = (const void *)(uintptr_t)a[1];
	struct ksigaction *oact = (void *)(uintptr_t)a[2], k, prog, old, prev;
	uint64_t all = ~0ULL & ~(1ULL << (SIGSYS - 1)), mask;
	long r;

	if (sig == SIGSYS) {
		/* Ours stays installed; the program's is kept aside. */
		if (a[3] != 8)
			return -EINVAL;
		if (oact)
			*oact = fx.prog_sigsys;
		if (act && !vchild)
			fx.prog_sigsys = *act;
		return 0;
	}
	if (sig < 1 || sig > 64 || sig == SIGKILL || sig == SIGSTOP || a[3] != 8)
		return fx_sys6(__NR_rt_sigaction, (long)a[0], (long)a[1], (long)a[2], (long)a[3], 0, 0);
	if (act) {
		prog = *act;
		prog.mask &= ~(1ULL << (SIGSYS - 1)); /* a handler must not block SIGSYS */
		k = prog;
		/* A vfork child shares our table: it must not change it (it
		 * resets handlers before exec), and runs directly anyway. */
		if (!vchild && k.handler != (uint64_t)(uintptr_t)SIG_DFL &&
		    k.handler != (uint64_t)(uintptr_t)SIG_IGN) {
			k.handler = (uint64_t)(uintptr_t)fx_handler;
			k.flags |= SA_SIGINFO;
		}
	}
	if (vchild) {
		prev = fx_acts[sig];
		r = sys4(__NR_rt_sigaction, sig, act ? &k : NULL, &old, 8);
		goto out;
	}
	/* The table and the kernel change together: no handler (of this
	 * thread) in between, no other thread's sigaction. */
	sys4(__NR_rt_sigprocmask, SIG_BLOCK, &all, &mask, 8);
	while (__atomic_exchange_n(&fx_acts_lock, 1, __ATOMIC_ACQUIRE))
		__asm__ __volatile__("pause");
	prev = fx_acts[sig];
	r = sys4(__NR_rt_sigaction, sig, act ? &k : NULL, &old, 8);
	if (r == 0 && act)
		fx_acts[sig] = prog;
	__atomic_store_n(&fx_acts_lock, 0, __ATOMIC_RELEASE);
	sys4(__NR_rt_sigprocmask, SIG_SETMASK, &mask, 0, 8);
out:
	if (r == 0 && oact)
		*oact = old.handler == (uint64_t)(uintptr_t)fx_handler ? prev : old;
	return r;
}

static long fx_sigprocmask(const uint64_t *a, ucontext_t *uc)
{
	uint64_t set, *setp = (uint64_t *)(uintptr_t)a[1];
	long r;

	if (setp && a[3] == 8 && (a[0] == SIG_BLOCK || a[0] == SIG_SETMASK)) {
		set = *setp & ~(1ULL << (SIGSYS - 1));
		setp = &set;
	}
	r = sys4(__NR_rt_sigprocmask, a[0], setp, a[2], a[3]);
	if (r == 0 && uc) {
		/* The handler's sigreturn restores uc_sigmask: make it the new mask. */
		uint64_t cur;

		if (sys4(__NR_rt_sigprocmask, SIG_BLOCK, 0, &cur, 8) == 0)
			memcpy(&uc->uc_sigmask, &cur, 8);
	}
	return r;
}

static long fx_sigaltstack(const uint64_t *a, ucontext_t *uc)
{
	long r = sys2(__NR_sigaltstack, a[0], a[1]);

	if (r == 0 && a[0] && uc) {
		/* Likewise, sigreturn restores uc_stack. */
		stack_t cur;

		if (sys2(__NR_sigaltstack, 0, &cur) == 0)
			uc->uc_stack = cur;
	}
	return r;
}

static long fx_sigsuspend(const uint64_t *a)
{
	uint64_t set;

	if (a[0] && a[1] == 8) {
		set = *(uint64_t *)(uintptr_t)a[0] & ~(1ULL << (SIGSYS - 1));
		return sys2(__NR_rt_sigsuspend, &set, 8);
	}
	return sys2(__NR_rt_sigsuspend, a[0], a[1]);
}

/* ------------------------------------------------------------------ */
/* The dispatcher */

enum { FX_RETURN, FX_NATIVE };

struct fx_call {
	uint64_t nr;
	uint64_t a[6];
	uint64_t next;		/* the address after the syscall instruction */
	ucontext_t *uc;		/* the SIGSYS frame, or NULL (trampoline) */
	long ret;
	uint64_t thunk;
};

static long fx_direct(const struct fx_call *c)
{
	return fx_sys6((long)c->nr, (long)c->a[0], (long)c->a[1], (long)c->a[2], (long)c->a[3],
		       (long)c->a[4], (long)c->a[5]);
}

static int fx_syscall(struct fx_call *c)
{
	struct fx_thread *t = &fx_t;
	uint64_t nr = c->nr;
	int vchild = 0;
	enum fx_why why;

	if (unlikely(t->in_vfork)) {
		/* Our memory is shared with a vfork-like child: which are we? */
		if (sys0(__NR_getpid) == fx.pid)
			t->in_vfork = 0;
		else
			vchild = 1;
	}

	switch (nr) {
	case __NR_clone:
	case __NR_clone3:
	case __NR_fork:
	case __NR_vfork: {
		uint64_t flags = nr == __NR_clone ? c->a[0] :
				 nr == __NR_clone3 ? (c->a[0] && c->a[1] >= 8 ?
						      *(uint64_t *)(uintptr_t)c->a[0] : 0) :
				 nr == __NR_vfork ? FX_CLONE_VM | FX_CLONE_VFORK : 0;

		/* The child learns what it is from the thunk (its registers
		 * may point at memory the parent changes meanwhile). */
		uint32_t mode = !(flags & FX_CLONE_VM) ? FX_CHILD_PROCESS :
				(flags & FX_CLONE_SETTLS) ? FX_CHILD_THREAD : FX_CHILD_SHARED;

		count_direct(nr, W_TOOL);
		c->thunk = fx_thunk(c->next, mode);
		if (!c->thunk) {
			c->ret = -EAGAIN;
			return FX_RETURN;
		}
		if ((flags & FX_CLONE_VM) && !(flags & FX_CLONE_SETTLS) && !vchild)
			t->in_vfork = 1;
		if ((flags & FX_CLONE_VM) && (flags & FX_CLONE_SETTLS))
			/* counted before it can run (a failed clone over-counts:
			 * that only stops cache-line-straddling rewrites) */
			__atomic_fetch_add(&fx.nthreads, 1, __ATOMIC_RELAXED);
		return FX_NATIVE;
	}
	case __NR_execve:
	case __NR_execveat:
		count_direct(nr, W_TOOL);
		if (!vchild)
			fx_print_stats("execve");
		c->ret = fx_exec(nr, c->a);
		return FX_RETURN;
	case __NR_exit_group:
		count_direct(nr, W_TOOL);
		if (!vchild && !__atomic_exchange_n(&fx.printed, 1, __ATOMIC_RELAXED))
			fx_print_stats("exit");
		c->ret = fx_direct(c);
		return FX_RETURN;
	case __NR_exit:
		count_direct(nr, W_TOOL);
		if (!vchild) {
			__atomic_fetch_sub(&fx.nthreads, 1, __ATOMIC_RELAXED);
			fx_unregister(t);
			if (t->region)
				sys2(__NR_munmap, t->region, 4096);
			t->region = NULL;
		}
		c->ret = fx_direct(c);
		return FX_RETURN;
	case __NR_rt_sigaction:
		count_direct(nr, W_TOOL);
		c->ret = fx_sigaction(c->a, vchild);
		return FX_RETURN;
	case __NR_rt_sigprocmask:
		count_direct(nr, W_TOOL);
		c->ret = fx_sigprocmask(c->a, c->uc);
		return FX_RETURN;
	case __NR_sigaltstack:
		count_direct(nr, W_TOOL);
		c->ret = fx_sigaltstack(c->a, c->uc);
		return FX_RETURN;
	case __NR_rt_sigsuspend:
		count_direct(nr, W_TOOL);
		c->ret = fx_sigsuspend(c->a);
		return FX_RETURN;
	case __NR_prctl:
		if (c->a[0] == PR_SET_SYSCALL_USER_DISPATCH) {
			count_direct(nr, W_TOOL);
			c->ret = -EBUSY; /* ours */
			return FX_RETURN;
		}
		break;
	case __NR_flexsc_register:
	case __NR_flexsc_wait:
	case __NR_flexsc_exit:
		if (!fx.abi_ok)
			break;
		/* The program uses FlexSC itself: give it the thread. */
		count_direct(nr, W_TOOL);
		if (nr == __NR_flexsc_register && !vchild) {
			fx_unregister(t);
			t->state = FX_PROGRAM;
		}
		c->ret = fx_direct(c);
		if (!vchild && ((nr == __NR_flexsc_register && c->ret < 0) ||
				(nr == __NR_flexsc_exit && c->ret == 0)))
			t->state = FX_UNREG;
		return FX_RETURN;
	}

	if (fx_refused(nr, c->a)) {
		why = W_REFUSED;
	} else if (fx_self(nr, c->a)) {
		why = W_SELF;
	} else if (vchild) {
		why = W_VFORK;
	} else if (!fx.use_flexsc || !fx.abi_ok || t->state == FX_PROGRAM) {
		why = W_UNAVAIL;
	} else if (fx_flexsc(t, nr, c->a, &c->ret, &why)) {
		count(nr, 0);
		return FX_RETURN;
	}
	count_direct(nr, why);
	c->ret = fx_direct(c);
	return FX_RETURN;
}

/* From entry.S: a rewritten site. */
long fx_tramp_dispatch(struct fx_regs *r)
{
	struct fx_call c = {
		.nr = r->rax,
		.a = { r->rdi, r->rsi, r->rdx, r->r10, r->r8, r->r9 },
		.next = *(uint64_t *)((char *)(r + 1) + FX_TRAMP_GAP),
	};

	if (fx_syscall(&c) == FX_NATIVE) {
		r->r11 = c.thunk;
		return 1;
	}
	r->rax = (uint64_t)c.ret;
	r->rcx = c.next;	/* as `syscall` leaves them */
	r->r11 = r->rflags;
	return 0;
}

/* From a thunk, in the child of a natively run clone/fork/vfork. */
void fx_child_init(struct fx_regs *r)
{
	uint32_t mode = (uint32_t)r->r11;
	struct fx_thread *t = &fx_t;

	if (mode == FX_CHILD_SHARED)
		return; /* shares our TLS: runs directly until it execs */
	if (mode == FX_CHILD_PROCESS) {
		/* A new process: its copy of our state is the parent's. */
		fx.pid = sys0(__NR_getpid);
		t->state = FX_UNREG;
		t->busy = 0;
		t->in_vfork = 0;
		if (t->region)
			((struct flexsc_sysentry *)(t->region + 1))->status = FLEXSC_FREE;
		memset(fx_cnt, 0, sizeof(fx_cnt));
		memset(fx_why, 0, sizeof(fx_why));
		fx_traps = 0;
		fx.printed = 0;
		fx.nthreads = 1;
	}
	/* A new thread's TLS is fresh (FX_UNREG); Syscall User Dispatch is
	 * not inherited by either. */
	fx_sud_on(t);
}

static void fx_sigsys(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	greg_t *g = uc->uc_mcontext.gregs;
	struct fx_call c;

	if (si->si_code != SYS_USER_DISPATCH) {
		/* Not ours (a seccomp filter's SECCOMP_RET_TRAP, kill()...):
		 * the program's disposition. */
		uint64_t h = fx.prog_sigsys.handler;

		if (h == (uint64_t)(uintptr_t)SIG_IGN)
			return;
		if (h == (uint64_t)(uintptr_t)SIG_DFL) {
			struct ksigaction dfl = { 0 };

			sys4(__NR_rt_sigaction, SIGSYS, &dfl, 0, 8);
			sys3(__NR_tgkill, sys0(__NR_getpid), sys0(__NR_gettid), SIGSYS);
			return;
		}
		if (fx.prog_sigsys.flags & SA_SIGINFO)
			((void (*)(int, siginfo_t *, void *))(uintptr_t)h)(sig, si, ucv);
		else
			((void (*)(int))(uintptr_t)h)(sig);
		return;
	}
	__atomic_fetch_add(&fx_traps, 1, __ATOMIC_RELAXED);
	c = (struct fx_call){
		.nr = (uint64_t)g[REG_RAX],
		.a = { (uint64_t)g[REG_RDI], (uint64_t)g[REG_RSI], (uint64_t)g[REG_RDX],
		       (uint64_t)g[REG_R10], (uint64_t)g[REG_R8], (uint64_t)g[REG_R9] },
		.next = (uint64_t)g[REG_RIP],
		.uc = uc,
	};
	if (fx.page0)
		fx_maybe_rewrite(c.next - 2);
	if (c.nr == __NR_rt_sigreturn) {
		count_direct(c.nr, W_TOOL);
		fx_sigreturn_at((unsigned long)g[REG_RSP]);
	}
	if (fx_syscall(&c) == FX_NATIVE)
		g[REG_RIP] = (greg_t)c.thunk;
	else
		g[REG_RAX] = (greg_t)c.ret;
}

/* ------------------------------------------------------------------ */
/* Setup */

static void fx_parse_opts(const char *o)
{
	while (o && *o) {
		const char *end = o;
		size_t n;

		while (*end && *end != ',')
			end++;
		n = (size_t)(end - o);
		if (n == 5 && !fx_strncmp(o, "stats", 5)) {
			fx.want_stats = 1;
		} else if (n > 6 && !fx_strncmp(o, "stats=", 6)) {
			fx.want_stats = 1;
			if (n - 6 < sizeof(fx.stats_path)) {
				memcpy(fx.stats_path, o + 6, n - 6);
				fx.stats_path[n - 6] = 0;
			}
		} else if (n == 9 && !fx_strncmp(o, "norewrite", 9)) {
			fx.rewrite = 0;
		} else if (n == 8 && !fx_strncmp(o, "noflexsc", 8)) {
			fx.use_flexsc = 0;
		} else if (n == 7 && !fx_strncmp(o, "verbose", 7)) {
			fx.verbose = 1;
		} else if (n > 5 && !fx_strncmp(o, "spin=", 5)) {
			fx.spin = (unsigned int)strtoul(o + 5, NULL, 10);
		} else if (n > 11 && !fx_strncmp(o, "maxrewrite=", 11)) {
			fx.maxrewrite = strtoul(o + 11, NULL, 10);
		} else if (n > 5 && !fx_strncmp(o, "idle=", 5)) {
			fx.idle_us = (unsigned int)strtoul(o + 5, NULL, 10);
		} else if (n > 5 && !fx_strncmp(o, "cpus=", 5)) {
			/* a list like 0-3:6 (':' separates: ',' separates options) */
			const char *p = o + 5;

			fx.ncpus = 0;
			while (p < end && fx.ncpus < FX_MAX_CPUS) {
				char *q;
				unsigned long a = strtoul(p, &q, 10), b = a;

				if (q == p)
					break;
				if (*q == '-')
					b = strtoul(q + 1, &q, 10);
				for (; a <= b && a < FX_MAX_CPUS && fx.ncpus < FX_MAX_CPUS; a++)
					fx.cpus[fx.ncpus++] = (uint16_t)a;
				p = *q == ':' ? q + 1 : end;
			}
		}
		o = *end ? end + 1 : end;
	}
}

static void fx_map_page0(void)
{
	long m = sys6(__NR_mmap, 0, 4096, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	unsigned char *z = (unsigned char *)0;

	if (m != 0) {
		if (!(m < 0 && m > -4096))
			sys2(__NR_munmap, m, 4096);
		VLOG("page 0 cannot be mapped (vm.mmap_min_addr): every call takes a SIGSYS", 0, -1);
		return;
	}
	/* A nop sled over every call number, then movabs $fx_tramp,%r11;
	 * jmp *%r11; the rest traps. The asm keeps the compiler from
	 * treating the null pointer writes as undefined. */
	__asm__ __volatile__("" : "+r"(z));
	for (int i = 0; i < 4096; i++)
		z[i] = i < FX_NR_MAX ? 0x90 : 0xcc;
	z[FX_NR_MAX] = 0x49;
	z[FX_NR_MAX + 1] = 0xbb;
	put64(z + FX_NR_MAX + 2, (uint64_t)(uintptr_t)fx_tramp);
	z[FX_NR_MAX + 10] = 0x41;
	z[FX_NR_MAX + 11] = 0xff;
	z[FX_NR_MAX + 12] = 0xe3;
	if (sys3(__NR_mprotect, 0, 4096, PROT_READ | PROT_EXEC) < 0) {
		sys2(__NR_munmap, 0, 4096);
		return;
	}
	fx.page0 = 1;
}

static void fx_read_abi(void)
{
	char b[16] = { 0 };
	int fd = (int)sys4(__NR_openat, AT_FDCWD, "/sys/kernel/flexsc/abi_version",
			   O_RDONLY | O_CLOEXEC, 0);

	if (fd < 0)
		return;
	if (sys3(__NR_read, fd, b, sizeof(b) - 1) > 0 && b[0] == '0' + FLEXSC_ABI_VERSION &&
	    (b[1] == '\n' || b[1] == 0))
		fx.abi_ok = 1;
	sys1(__NR_close, fd);
}

__attribute__((constructor)) static void fx_init(int argc, char **argv, char **envp)
{
	const char *o = getenv(FX_ENV_OPTS), *lib = getenv(FX_ENV_LIB), *name;
	struct ksigaction sa = { 0 };
	uint64_t aff[FX_MAX_CPUS / 64] = { 0 };
	long r;

	(void)argc;
	(void)envp;
	fx.rewrite = 1;
	fx.use_flexsc = 1;
	fx.maxrewrite = ~0ULL;
	fx.spin = 2000;
	if (o && fx_strlen(o) < sizeof(fx.opts)) {
		memcpy(fx.opts, o, fx_strlen(o) + 1);
		fx_parse_opts(o);
	}
	if (lib && fx_strlen(lib) < sizeof(fx.lib))
		memcpy(fx.lib, lib, fx_strlen(lib) + 1);
	name = argv && argv[0] ? argv[0] : "?";
	for (const char *p = name; *p; p++)
		if (*p == '/')
			name = p + 1;
	for (size_t i = 0; name[i] && i < sizeof(fx.comm) - 1; i++)
		fx.comm[i] = name[i];
	fx.pid = sys0(__NR_getpid);
	fx.nthreads = 1;
	fx.stats_fd = 2;
	if (fx.want_stats && !fx.stats_path[0]) {
		/* Programs close stderr before they exit (ls does): keep a
		 * copy, out of the way, for the statistics. */
		struct stat st;

		r = sys3(__NR_fcntl, 2, F_DUPFD_CLOEXEC, 1000);
		if (r >= 0 && sys2(__NR_fstat, r, &st) == 0) {
			fx.stats_fd = (int)r;
			fx.stats_dev = st.st_dev;
			fx.stats_ino = st.st_ino;
		}
	}
	fx_read_abi();
	if (!fx.ncpus) {
		r = sys3(__NR_sched_getaffinity, 0, sizeof(aff), aff);
		for (unsigned int c = 0; r > 0 && c < (unsigned int)r * 8; c++)
			if (aff[c / 64] >> (c % 64) & 1)
				fx.cpus[fx.ncpus++] = (uint16_t)c;
	}
	fx.sel_off = (long)((char *)&fx_t.selector - (char *)__builtin_thread_pointer());

	/* Thunks for clone/fork/vfork run natively. */
	fx_pool_size = 1 << 20;
	r = sys6(__NR_mmap, 0, fx_pool_size, PROT_READ | PROT_WRITE | PROT_EXEC,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	fx_pool = (r < 0 && r > -4096) ? NULL : (char *)r;

	if (fx.rewrite)
		fx_map_page0();

	sa.handler = (uint64_t)(uintptr_t)fx_sigsys;
	sa.flags = SA_SIGINFO | SA_NODEFER | FX_SA_RESTORER;
	sa.restorer = (uint64_t)(uintptr_t)fx_restorer;
	sa.mask = 0;
	if (sys4(__NR_rt_sigaction, SIGSYS, &sa, &fx.prog_sigsys, 8) < 0) {
		fx_log("cannot install the SIGSYS handler: not intercepting", 0, -1);
		return;
	}
	{
		/* SIGSYS must never be blocked. */
		uint64_t s = 1ULL << (SIGSYS - 1);

		sys4(__NR_rt_sigprocmask, SIG_UNBLOCK, &s, 0, 8);
	}
	r = fx_sud_on(&fx_t);
	if (r < 0) {
		fx_log("Syscall User Dispatch unavailable (prctl errno ", 0, -r);
		return;
	}
	VLOG(fx.abi_ok ? "intercepting; FlexSC ABI v1 present" :
			 "intercepting; no FlexSC ABI v1: every call runs directly", 0, -1);
}
