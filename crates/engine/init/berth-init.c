/*
 * berth-init: the process 1 of a container started with `--init` (what
 * tini is for docker). It runs its arguments as a child, forwards the
 * signals it receives to it, reaps every zombie re-parented to it, and
 * exits with the child's status (128 + signal when the child was killed).
 * Built static at build time (crates/engine/build.rs), bind-mounted read-only
 * at /sbin/docker-init.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
	if (argc < 3 || strcmp(argv[1], "--") != 0) {
		fprintf(stderr, "usage: docker-init -- COMMAND [ARG...]\n");
		return 125;
	}
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid_t child = fork();
	if (child < 0) {
		perror("docker-init: fork");
		return 125;
	}
	if (child == 0) {
		setpgid(0, 0);
		sigprocmask(SIG_SETMASK, &old, NULL);
		execvp(argv[2], argv + 2);
		fprintf(stderr, "docker-init: exec %s: %s\n", argv[2], strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	/* the child leads its own group, in the terminal's foreground if any */
	setpgid(child, child);
	if (isatty(0))
		tcsetpgrp(0, child);
	for (;;) {
		struct timespec ts = {1, 0};
		siginfo_t si;
		int sig = sigtimedwait(&all, &si, &ts);
		if (sig > 0 && sig != SIGCHLD)
			kill(child, sig);
		int status;
		pid_t p;
		while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
			if (p != child)
				continue;
			if (WIFEXITED(status))
				return WEXITSTATUS(status);
			if (WIFSIGNALED(status))
				return 128 + WTERMSIG(status);
		}
	}
}
