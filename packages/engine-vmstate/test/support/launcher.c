/*
 * Test stand-in for the stasis-vmm executable. The registry checks a VMM
 * pid against its executable (/proc/<pid>/exe), which for a script would be
 * the interpreter; so this small binary stays the "VMM" process and runs
 * the Node fake (FAKE_VMM_SCRIPT) as its child, passing signals on and
 * exiting with the child's status.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t child;

static void forward(int sig) {
  if (child > 0) kill(child, sig);
}

int main(int argc, char **argv) {
  const char *node = getenv("FAKE_VMM_NODE");
  const char *script = getenv("FAKE_VMM_SCRIPT");
  if (!node || !script) return 2;
  /* Like the real VMM with STASIS_PDEATHSIG=1: die with the process that started us. */
  if (getenv("STASIS_PDEATHSIG")) prctl(PR_SET_PDEATHSIG, SIGKILL);
  child = fork();
  if (child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    char **a = calloc((size_t)argc + 2, sizeof(char *));
    a[0] = (char *)node;
    a[1] = (char *)script;
    for (int i = 1; i < argc; i++) a[i + 1] = argv[i];
    execv(node, a);
    _exit(127);
  }
  signal(SIGTERM, forward);
  signal(SIGINT, forward);
  signal(SIGUSR1, forward);
  int status;
  while (waitpid(child, &status, 0) < 0) {
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}
