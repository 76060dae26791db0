/* proc.c - spawning and reaping tool and MCP server processes. */
#include "config.h"

#include "agent/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

enum { EXTRA_DRAIN = 64 << 20, LINGER_MS = 200, STOP_GRACE_MS = 500 };

long long ech_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

/* Our environment with `add` laid over it (a new array of borrowed strings). */
static char **merged_env(const char *const *add)
{
    size_t n = 0, k = 0;
    while (environ && environ[n])
        n++;
    while (add && add[k])
        k++;
    char **env = calloc(n + k + 1, sizeof *env);
    if (!env)
        return NULL;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(environ[i], '=');
        size_t nl = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        int replaced = 0;
        for (size_t j = 0; j < k && !replaced; j++)
            replaced = strncmp(add[j], environ[i], nl) == 0 && add[j][nl] == '=';
        if (!replaced)
            env[m++] = environ[i];
    }
    for (size_t j = 0; j < k; j++)
        if (strchr(add[j], '='))
            env[m++] = (char *)add[j];
    env[m] = NULL;
    return env;
}

ech_status ech_proc_spawn(const char *const *argv, const char *const *env_add, int stderr_fd,
                          ech_proc *p, ech_error *err)
{
    *p = (ech_proc){.pid = 0, .in_fd = -1, .out_fd = -1, .err_fd = -1};
    if (!argv || !argv[0] || !argv[0][0])
        return ech_error_set(err, ECH_ERR_INVALID, "no command to run");
    int in[2] = {-1, -1}, out[2] = {-1, -1}, er[2] = {-1, -1};
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || (stderr_fd < 0 && pipe2(er, O_CLOEXEC))) {
        int e = errno;
        close_fd(&in[0]), close_fd(&in[1]), close_fd(&out[0]), close_fd(&out[1]);
        return ech_error_set(err, ECH_ERR_IO, "cannot make a pipe: %s", strerror(e));
    }
    char **env = merged_env(env_add);
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, stderr_fd >= 0 ? stderr_fd : er[1], 2);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    pid_t pid = 0;
    int rc = env ? posix_spawnp(&pid, argv[0], &fa, &at, (char *const *)argv, env) : ENOMEM;
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    free(env);
    close_fd(&in[0]), close_fd(&out[1]), close_fd(&er[1]);
    if (rc != 0) {
        close_fd(&in[1]), close_fd(&out[0]), close_fd(&er[0]);
        return ech_error_set(err, rc == ENOENT ? ECH_ERR_NOT_FOUND : ECH_ERR_IO, "cannot run '%s': %s",
                             argv[0], strerror(rc));
    }
    *p = (ech_proc){.pid = pid, .in_fd = in[1], .out_fd = out[0], .err_fd = er[0]};
    return ECH_OK;
}

/* write(2) with SIGPIPE held back: a vanished reader gives EPIPE, and a
 * SIGPIPE raised by this write is consumed before the mask is restored. */
static ssize_t write_nosigpipe(int fd, const void *data, size_t n)
{
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    sigpending(&pending);
    int was_pending = sigismember(&pending, SIGPIPE);
    ssize_t w = write(fd, data, n);
    int e = errno;
    if (w < 0 && e == EPIPE && !was_pending) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR) {
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = e;
    return w;
}

ech_status ech_proc_write(ech_proc *p, const void *data, size_t n, ech_error *err)
{
    const char *s = data;
    while (n) {
        if (p->in_fd < 0)
            return ech_error_set(err, ECH_ERR_IO, "the process's input is closed");
        ssize_t w = write_nosigpipe(p->in_fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            struct pollfd pf = {.fd = p->in_fd, .events = POLLOUT};
            poll(&pf, 1, 100);
            continue;
        }
        if (w < 0)
            return ech_error_set(err, ECH_ERR_IO, "cannot write to the process: %s", strerror(errno));
        s += w;
        n -= (size_t)w;
    }
    return ECH_OK;
}

int ech_proc_reap(ech_proc *p, int timeout_ms)
{
    if (p->pid <= 0)
        return 1;
    long long deadline = ech_now_ms() + timeout_ms;
    for (;;) {
        int st;
        pid_t r = waitpid(p->pid, &st, WNOHANG);
        if (r == p->pid || (r < 0 && errno == ECHILD)) {
            p->status = r == p->pid ? st : 0;
            p->pid = 0;
            return 1;
        }
        long long left = deadline - ech_now_ms();
        if (left <= 0)
            return 0;
        struct timespec ts = {0, (left < 10 ? left : 10) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

long ech_proc_write_some(ech_proc *p, const void *data, size_t n)
{
    if (p->in_fd < 0) {
        errno = EPIPE;
        return -1;
    }
    return (long)write_nosigpipe(p->in_fd, data, n);
}

void ech_proc_stop(ech_proc *p, int wait_ms, int grace_ms)
{
    close_fd(&p->in_fd);
    if (p->pid > 0 && !ech_proc_reap(p, wait_ms)) {
        kill(-p->pid, SIGTERM);
        if (!ech_proc_reap(p, grace_ms)) {
            kill(-p->pid, SIGKILL);
            ech_proc_reap(p, 5000);
        }
    }
    close_fd(&p->out_fd);
    close_fd(&p->err_fd);
}

const char *ech_proc_describe_status(int status, char *buf, size_t n)
{
    if (WIFEXITED(status))
        snprintf(buf, n, "exit status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, n, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(buf, n, "wait status %d", status);
    return buf;
}

/* Read what is there from *fd into b (up to cap; the rest counted in
 * *dropped); closes *fd at end of file. */
static void drain(int *fd, ech_buf *b, size_t cap, size_t *dropped)
{
    char chunk[16384];
    ssize_t r = read(*fd, chunk, sizeof chunk);
    if (r < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (r <= 0) {
        close_fd(fd);
        return;
    }
    size_t room = b->len < cap ? cap - b->len : 0;
    size_t keep = (size_t)r < room ? (size_t)r : room;
    if (keep && ech_buf_append(b, chunk, keep) != ECH_OK)
        keep = 0;
    *dropped += (size_t)r - keep;
}

ech_status ech_proc_run(const char *const *argv, const char *const *env_add, const char *input,
                        size_t input_len, int timeout_ms, size_t cap, ech_proc_result *r,
                        ech_error *err)
{
    memset(r, 0, sizeof *r);
    long long start = ech_now_ms();
    ech_proc p;
    ech_status st = ech_proc_spawn(argv, env_add, -1, &p, err);
    if (st != ECH_OK)
        return st;
    fcntl(p.in_fd, F_SETFL, fcntl(p.in_fd, F_GETFL) | O_NONBLOCK);
    if (!input_len)
        close_fd(&p.in_fd);
    size_t written = 0;
    pid_t group = p.pid;   /* the child leads its own process group */
    long long deadline = timeout_ms > 0 ? start + timeout_ms : 0, exited_at = 0;
    for (;;) {
        if (p.pid > 0 && ech_proc_reap(&p, 0))
            exited_at = ech_now_ms();
        if (p.out_fd < 0 && p.err_fd < 0 && p.pid == 0)
            break;
        long long now = ech_now_ms();
        int flood = r->out_dropped + r->err_dropped > EXTRA_DRAIN;
        if ((deadline && now >= deadline) || flood || (exited_at && now - exited_at > LINGER_MS)) {
            /* out of time, flooding us, or leftovers of an exited command
             * holding the pipes open: end the whole group */
            r->timed_out = !exited_at && !flood;
            if (p.pid > 0) {
                ech_proc_stop(&p, 0, STOP_GRACE_MS);
            } else {
                kill(-group, SIGKILL);
                close_fd(&p.in_fd), close_fd(&p.out_fd), close_fd(&p.err_fd);
            }
            break;
        }
        struct pollfd pf[3];
        int np = 0, io = -1, oo = -1, eo = -1;
        if (p.in_fd >= 0)
            io = np, pf[np++] = (struct pollfd){.fd = p.in_fd, .events = POLLOUT};
        if (p.out_fd >= 0)
            oo = np, pf[np++] = (struct pollfd){.fd = p.out_fd, .events = POLLIN};
        if (p.err_fd >= 0)
            eo = np, pf[np++] = (struct pollfd){.fd = p.err_fd, .events = POLLIN};
        long long wait = 50;
        if (deadline && deadline - now < wait)
            wait = deadline - now;
        if (poll(pf, (nfds_t)np, (int)wait) < 0 && errno != EINTR)
            break;
        if (io >= 0 && pf[io].revents) {
            ssize_t w = write_nosigpipe(p.in_fd, input + written, input_len - written);
            if (w > 0)
                written += (size_t)w;
            if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == input_len)
                close_fd(&p.in_fd);   /* all given, or it stopped reading: not our error */
        }
        if (oo >= 0 && pf[oo].revents)
            drain(&p.out_fd, &r->out, cap, &r->out_dropped);
        if (eo >= 0 && pf[eo].revents)
            drain(&p.err_fd, &r->err, cap, &r->err_dropped);
    }
    if (p.pid > 0)
        ech_proc_stop(&p, 0, STOP_GRACE_MS);
    r->status = p.status;
    r->seconds = (double)(ech_now_ms() - start) / 1e3;
    return ECH_OK;
}

void ech_proc_result_free(ech_proc_result *r)
{
    ech_buf_free(&r->out);
    ech_buf_free(&r->err);
}
