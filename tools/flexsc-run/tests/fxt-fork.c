// SPDX-License-Identifier: GPL-2.0
/* fork, vfork, posix_spawn, exec: children run, report, and stay
 * intercepted after exec, even with an empty environment. */
#include "fxt.h"
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

static int status_of(pid_t pid)
{
	int st = 0;

	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static volatile sig_atomic_t usr1;

static void on_usr1(int sig)
{
	(void)sig;
	usr1++;
}

static void *sleeper(void *p)
{
	(void)p;
	usleep(300 * 1000);
	return NULL;
}

int main(int argc, char **argv)
{
	int want = getenv("FXT_INTERCEPTED") && *getenv("FXT_INTERCEPTED") == '1' ? 42 : 43;
	char *const probe[] = { argv[0], "probe", NULL };
	char *const empty[] = { NULL };
	volatile int shared = 0;
	pid_t pid;

	if (argc > 1 && !strcmp(argv[1], "probe"))
		return fxt_preloaded() ? 42 : 43;

	fxt_start();
	pid = fork();
	if (pid == 0)
		_exit(getppid() > 0 ? 5 : 1);
	FXT_EQ(status_of(pid), 5, "fork: the child ran and exited 5");

	pid = fork();
	if (pid == 0) {
		execve(argv[0], probe, environ);
		_exit(127);
	}
	FXT_EQ(status_of(pid), want, "fork + execve: the new program is intercepted as we are");

	pid = fork();
	if (pid == 0) {
		execve(argv[0], probe, empty);
		_exit(127);
	}
	FXT_EQ(status_of(pid), want, "execve with an empty environment: still intercepted");

	pid = vfork();
	if (pid == 0) {
		shared = 1;
		execve(argv[0], probe, environ);
		_exit(127);
	}
	FXT_EQ(status_of(pid), want, "vfork + execve");
	FXT_EQ(shared, 1, "the vfork child wrote our memory before exec");

	pid = vfork();
	if (pid == 0)
		_exit(9);
	FXT_EQ(status_of(pid), 9, "vfork + _exit");

	signal(SIGUSR1, on_usr1);
	pid = vfork();
	if (pid == 0) {
		/* as a child does before exec: our handler must stay ours */
		signal(SIGUSR1, SIG_DFL);
		_exit(8);
	}
	FXT_EQ(status_of(pid), 8, "vfork: the child resets SIGUSR1 and exits");
	raise(SIGUSR1);
	FXT_EQ(usr1, 1, "our SIGUSR1 handler still runs");

	{
		char *const av[] = { "/bin/sh", "-c", "exit 4", NULL };

		FXT_EQ(posix_spawn(&pid, "/bin/sh", NULL, NULL, av, environ), 0, "posix_spawn");
		FXT_EQ(status_of(pid), 4, "the spawned shell exited 4");
		FXT_EQ(posix_spawn(&pid, "/nonexistent/prog", NULL, NULL, av, environ), ENOENT,
		       "posix_spawn of a missing program returns ENOENT");
	}
	FXT_EQ(WEXITSTATUS(system("exit 3")), 3, "system(\"exit 3\")");
	{
		FILE *f = popen("echo popen-works", "r");
		char line[64] = "";

		fxt_ok(f && fgets(line, sizeof(line), f) && !strcmp(line, "popen-works\n"),
		       "popen reads the child's output");
		if (f)
			FXT_EQ(pclose(f), 0, "pclose");
	}
	{
		pthread_t t;

		FXT_EQ(pthread_create(&t, NULL, sleeper, NULL), 0, "a second thread");
		pid = fork();
		if (pid == 0) {
			char b[8];
			int p[2];

			if (pipe(p) || write(p[1], "ok", 2) != 2 || read(p[0], b, 2) != 2)
				_exit(1);
			_exit(6);
		}
		FXT_EQ(status_of(pid), 6, "fork from a threaded process: the child's calls work");
		pthread_join(t, NULL);
	}
	return fxt_done();
}
