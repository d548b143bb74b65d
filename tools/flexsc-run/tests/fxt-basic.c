// SPDX-License-Identifier: GPL-2.0
/* Ordinary calls, their errors, and the signal state the interception
 * must keep as it is (SIGSYS hidden from the program but never blocked). */
#include "fxt.h"
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>

static volatile sig_atomic_t got;

static void on_usr1(int sig)
{
	(void)sig;
	got++;
	/* a call from inside a handler */
	got += getppid() > 0 ? 10 : 0;
}

int main(void)
{
	char path[] = "/tmp/fxt-basic-XXXXXX", buf[64];
	int fd, p[2];
	struct stat st;
	struct sigaction sa, old;
	sigset_t set, cur;
	stack_t ss, oss;
	void *m;

	fxt_start();

	/* files */
	fd = mkstemp(path);
	fxt_ok(fd >= 0, "mkstemp");
	FXT_EQ(write(fd, "hello flexsc", 12), 12, "write");
	FXT_EQ(lseek(fd, 0, SEEK_SET), 0, "lseek");
	memset(buf, 0, sizeof(buf));
	FXT_EQ(read(fd, buf, sizeof(buf)), 12, "read");
	fxt_ok(!strcmp(buf, "hello flexsc"), "read back what was written");
	FXT_EQ(fstat(fd, &st), 0, "fstat");
	FXT_EQ(st.st_size, 12, "st_size");
	FXT_EQ(close(fd), 0, "close");
	FXT_EQ(unlink(path), 0, "unlink");
	errno = 0;
	FXT_EQ(close(fd), -1, "close of a closed fd fails");
	FXT_EQ(errno, EBADF, "with EBADF");
	errno = 0;
	FXT_EQ(open("/nonexistent/x", O_RDONLY), -1, "open of a missing path fails");
	FXT_EQ(errno, ENOENT, "with ENOENT");

	/* pipes, dup2 */
	FXT_EQ(pipe(p), 0, "pipe");
	FXT_EQ(dup2(p[1], 100), 100, "dup2");
	FXT_EQ(write(100, "x", 1), 1, "write to the dup");
	FXT_EQ(read(p[0], buf, 1), 1, "read the pipe");
	close(100);
	close(p[1]);
	FXT_EQ(read(p[0], buf, 1), 0, "EOF once the writers are closed");
	close(p[0]);

	/* memory, identity, cwd */
	m = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	fxt_ok(m != MAP_FAILED, "mmap");
	memset(m, 1, 1 << 20);
	FXT_EQ(munmap(m, 1 << 20), 0, "munmap");
	FXT_EQ(syscall(SYS_gettid), getpid(), "gettid is the pid in the main thread");
	FXT_EQ(chdir("/tmp"), 0, "chdir");
	fxt_ok(getcwd(buf, sizeof(buf)) && !strcmp(buf, "/tmp"), "getcwd follows chdir");
	{
		struct utsname u;

		FXT_EQ(uname(&u), 0, "uname");
	}
	errno = 0;
	FXT_EQ(syscall(500), -1, "an unknown system call number fails");
	FXT_EQ(errno, ENOSYS, "with ENOSYS");

	/* signals: a handler's own calls, raise() delivering at once */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigfillset(&sa.sa_mask);
	FXT_EQ(sigaction(SIGUSR1, &sa, NULL), 0, "sigaction SIGUSR1 (mask: all)");
	FXT_EQ(raise(SIGUSR1), 0, "raise");
	FXT_EQ(got, 11, "the handler ran before raise() returned, and made a call");
	FXT_EQ(sigaction(SIGUSR1, NULL, &old), 0, "sigaction query");
	fxt_ok(old.sa_handler == on_usr1, "the handler reads back");

	/* SIGSYS: the program sees its own disposition */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	FXT_EQ(sigaction(SIGSYS, &sa, NULL), 0, "sigaction SIGSYS -> SIG_IGN");
	FXT_EQ(sigaction(SIGSYS, NULL, &old), 0, "query SIGSYS");
	fxt_ok(old.sa_handler == SIG_IGN, "SIGSYS reads back SIG_IGN");

	/* masks: block everything, calls still work, the mask reads back */
	sigfillset(&set);
	FXT_EQ(sigprocmask(SIG_SETMASK, &set, NULL), 0, "block every signal");
	FXT_EQ(getppid() > 0, 1, "calls work with every signal blocked");
	FXT_EQ(sigprocmask(SIG_SETMASK, NULL, &cur), 0, "read the mask");
	fxt_ok(sigismember(&cur, SIGUSR1) && sigismember(&cur, SIGTERM), "the mask stayed");
	sigemptyset(&set);
	FXT_EQ(sigprocmask(SIG_SETMASK, &set, NULL), 0, "unblock");
	FXT_EQ(sigprocmask(SIG_SETMASK, NULL, &cur), 0, "read the mask");
	fxt_ok(!sigismember(&cur, SIGUSR1), "unblocked stays unblocked");
	sigaddset(&set, SIGUSR2);
	FXT_EQ(sigprocmask(SIG_BLOCK, &set, NULL), 0, "block SIGUSR2");
	FXT_EQ(kill(getpid(), SIGUSR2), 0, "send SIGUSR2 to ourselves");
	FXT_EQ(sigpending(&cur), 0, "sigpending");
	fxt_ok(sigismember(&cur, SIGUSR2), "SIGUSR2 is pending");
	{
		int sig = 0;

		FXT_EQ(sigwait(&set, &sig), 0, "sigwait");
		FXT_EQ(sig, SIGUSR2, "took SIGUSR2");
	}

	/* the alternate signal stack reads back */
	ss.ss_sp = malloc(SIGSTKSZ * 4);
	ss.ss_size = SIGSTKSZ * 4;
	ss.ss_flags = 0;
	FXT_EQ(sigaltstack(&ss, NULL), 0, "sigaltstack set");
	FXT_EQ(sigaltstack(NULL, &oss), 0, "sigaltstack query");
	fxt_ok(oss.ss_sp == ss.ss_sp && oss.ss_size == ss.ss_size, "the alternate stack stayed");

	/* a process: exit status */
	{
		pid_t c = fork();
		int status = 0;

		if (c == 0)
			_exit(getppid() > 0 ? 7 : 1);
		FXT_EQ(waitpid(c, &status, 0), c, "waitpid");
		fxt_ok(WIFEXITED(status) && WEXITSTATUS(status) == 7, "the child's exit status");
	}
	errno = 0;
	FXT_EQ(prctl(PR_GET_DUMPABLE), 1, "prctl");
	return fxt_done();
}
