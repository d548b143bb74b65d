// SPDX-License-Identifier: GPL-2.0
/* Signals that arrive while a call is in flight: EINTR or restart as
 * natively, a handler that longjmp()s out, handlers on the alternate
 * stack, SIGPIPE, a fault handler. */
#include "fxt.h"
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <sys/times.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>

static volatile sig_atomic_t hits;
static sigjmp_buf jb;

static void on_alrm(int sig)
{
	(void)sig;
	hits++;
}

static void on_alrm_jump(int sig)
{
	(void)sig;
	siglongjmp(jb, 1);
}

static void on_segv(int sig)
{
	(void)sig;
	siglongjmp(jb, 2);
}

static char *alt_lo, *alt_hi;
static volatile int on_alt;

static void on_usr1_alt(int sig)
{
	char here;
	struct sysinfo si;
	struct tms t;

	(void)sig;
	/* calls made for the first time here: their sites trap (a signal
	 * frame) and are rewritten, on a small stack */
	on_alt = &here >= alt_lo && &here < alt_hi && getppid() >= 0 && getpgrp() >= 0 &&
		 getsid(0) >= 0 && times(&t) != (clock_t)-1 && sysinfo(&si) == 0;
}

static void set(int sig, void (*h)(int), int flags)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = h;
	sa.sa_flags = flags;
	sigaction(sig, &sa, NULL);
}

/* A child that writes to fd after ms milliseconds. */
static pid_t later(int fd, int ms, const char *what)
{
	pid_t p = fork();

	if (p == 0) {
		usleep((useconds_t)ms * 1000);
		if (write(fd, what, strlen(what)) < 0)
			_exit(1);
		_exit(0);
	}
	return p;
}

int main(void)
{
	int p[2];
	char buf[16];
	ssize_t n;
	pid_t c;

	fxt_start();
	FXT_EQ(pipe(p), 0, "pipe");

	/* no SA_RESTART: read fails with EINTR */
	set(SIGALRM, on_alrm, 0);
	ualarm(100 * 1000, 0);
	errno = 0;
	n = read(p[0], buf, sizeof(buf));
	FXT_EQ(n, -1, "a blocked read interrupted by a handler without SA_RESTART fails");
	FXT_EQ(errno, EINTR, "with EINTR");
	FXT_EQ(hits, 1, "the handler ran once");

	/* SA_RESTART: read goes on and gets the data */
	set(SIGALRM, on_alrm, SA_RESTART);
	c = later(p[1], 300, "late");
	ualarm(100 * 1000, 0);
	memset(buf, 0, sizeof(buf));
	n = read(p[0], buf, sizeof(buf));
	FXT_EQ(n, 4, "with SA_RESTART the read goes on and returns the data");
	FXT_EQ(hits, 2, "the handler ran");
	waitpid(c, NULL, 0);

	/* nanosleep is never restarted */
	{
		struct timespec ts = { 2, 0 }, rem = { 0, 0 };

		ualarm(100 * 1000, 0);
		errno = 0;
		FXT_EQ(nanosleep(&ts, &rem), -1, "nanosleep interrupted even under SA_RESTART");
		FXT_EQ(errno, EINTR, "with EINTR");
		fxt_ok(rem.tv_sec >= 1, "and the time left (%ld s)", (long)rem.tv_sec);
	}

	/* a handler that leaves by siglongjmp while read() is in flight */
	set(SIGALRM, on_alrm_jump, 0);
	if (sigsetjmp(jb, 1) == 0) {
		ualarm(100 * 1000, 0);
		n = read(p[0], buf, sizeof(buf));
		fxt_ok(0, "siglongjmp out of a blocked read: read returned %zd", n);
	} else {
		fxt_ok(1, "siglongjmp out of a blocked read");
	}
	set(SIGALRM, SIG_DFL, 0);
	FXT_EQ(write(p[1], "xy", 2), 2, "write 2 bytes after it");
	memset(buf, 0, sizeof(buf));
	FXT_EQ(read(p[0], buf, sizeof(buf)), 2, "both are read here: the abandoned read took none");

	/* a handler on a small alternate stack (a guard page below) makes
	 * calls: room for two signal frames (the handler's, a SIGSYS) and 2 KiB */
	{
		size_t size = 2 * (size_t)sysconf(_SC_MINSIGSTKSZ) + 2048;
		char *m = mmap(NULL, 4096 + size, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		stack_t ss = { .ss_sp = m + 4096, .ss_size = size };

		mprotect(m, 4096, PROT_NONE);

		alt_lo = ss.ss_sp;
		alt_hi = alt_lo + ss.ss_size;
		FXT_EQ(sigaltstack(&ss, NULL), 0, "sigaltstack");
		set(SIGUSR1, on_usr1_alt, SA_ONSTACK);
		raise(SIGUSR1);
		FXT_EQ(on_alt, 1, "an SA_ONSTACK handler runs on a small alternate stack and calls");
	}

	/* SIGPIPE */
	close(p[0]);
	set(SIGPIPE, SIG_IGN, 0);
	errno = 0;
	FXT_EQ(write(p[1], "z", 1), -1, "write to a pipe without readers fails");
	FXT_EQ(errno, EPIPE, "with EPIPE");
	close(p[1]);
	c = fork();
	if (c == 0) {
		int q[2];

		set(SIGPIPE, SIG_DFL, 0);
		if (pipe(q))
			_exit(1);
		close(q[0]);
		if (write(q[1], "z", 1) < 0)
			_exit(2);
		_exit(3);
	}
	{
		int st = 0;

		waitpid(c, &st, 0);
		fxt_ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGPIPE, "SIGPIPE kills the writer by default");
	}

	/* a fault handler */
	{
		char *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		set(SIGSEGV, on_segv, 0);
		if (sigsetjmp(jb, 1) == 0) {
			ro[0] = 1;
			fxt_ok(0, "a write to a read-only page faults");
		} else {
			fxt_ok(1, "a write to a read-only page faults, the handler jumps out");
		}
		FXT_EQ(getppid() > 0, 1, "calls work after");
	}

	/* a child killed by a signal */
	c = fork();
	if (c == 0) {
		pause();
		_exit(0);
	}
	usleep(50 * 1000);
	kill(c, SIGTERM);
	{
		int st = 0;

		waitpid(c, &st, 0);
		fxt_ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM, "SIGTERM ends a child in pause()");
	}
	return fxt_done();
}
