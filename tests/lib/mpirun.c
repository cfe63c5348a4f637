/* Running scenario programs under mpiexec (see mpirun.h). */
#include "mpirun.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#ifndef SCENARIO_DIR
#error "SCENARIO_DIR must be defined by the build"
#endif
#ifndef MPIEXEC
#error "MPIEXEC must be defined by the build"
#endif

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void mpirun(mpirun_t *r, int nranks, const char *env, int limit_s, const char *prog,
            const char *args) {
    memset(r, 0, sizeof *r);
    r->nranks = nranks;
    /* timeout(1) sends TERM to mpiexec, which takes its ranks down; KILL 5 s later if not.
     * The caller's settings do not leak into a scenario: it gets only `env`. (To run the
     * whole suite out of core, add DAGR_MEMORY_LIMIT here by hand: the spill tests then
     * fail, since their in-memory runs are not; every other test must pass.) */
    snprintf(r->cmd, sizeof r->cmd,
             "env -u DAGR_THREADS -u DAGR_COMM_ARENA -u DAGR_MAX_PENDING -u DAGR_VERBOSE "
             "-u DAGR_COMM_SHM -u DAGR_GPUS -u DAGR_GPU_MEMORY -u DAGR_MEMORY_LIMIT "
             "-u DAGR_SPILL_DIR -u DAGR_SPILL_TEST_FAIL_READ -u DAGR_SPILL_TEST_FAIL_WRITE "
             "-u DAGR_CKPT_DIRECT %s timeout -k 5 %d %s -n %d %s/%s %s </dev/null 2>&1",
             env ? env : "", limit_s, MPIEXEC, nranks, SCENARIO_DIR, prog, args ? args : "");
    double t0 = now();
    FILE *p = popen(r->cmd, "r");
    cr_assert_not_null(p, "popen(%s) failed", r->cmd);
    size_t cap = 1 << 16, len = 0;
    r->output = malloc(cap);
    for (;;) {
        if (cap - len < 4096) {
            cap *= 2;
            r->output = realloc(r->output, cap);
        }
        size_t got = fread(r->output + len, 1, cap - len - 1, p);
        if (got == 0) break;
        len += got;
    }
    r->output[len] = '\0';
    int ws = pclose(p);
    r->seconds = now() - t0;
    if (ws == -1)
        r->status = -1;
    else if (WIFEXITED(ws))
        r->status = WEXITSTATUS(ws);
    else if (WIFSIGNALED(ws))
        r->status = 128 + WTERMSIG(ws);
    else
        r->status = -1;
    cr_log_info("%s: exit %d after %.1f s", r->cmd, r->status, r->seconds);
}

void mpirun_free(mpirun_t *r) {
    free(r->output);
    r->output = NULL;
}

/* Counts the lines starting with "RANK <rank> <prefix>" and points *nth at the nth of them
 * (counted from 0) when there is one. */
static int each_line(const mpirun_t *r, int rank, const char *prefix, int n, const char **nth) {
    char head[256];
    snprintf(head, sizeof head, "RANK %d %s", rank, prefix);
    size_t hl = strlen(head);
    int count = 0;
    const char *s = r->output;
    while (s && *s) {
        if (strncmp(s, head, hl) == 0) {
            if (count == n && nth) *nth = s;
            count++;
        }
        s = strchr(s, '\n');
        if (s) s++;
    }
    return count;
}

const char *mpirun_line(const mpirun_t *r, int rank, const char *prefix, int n) {
    const char *line = NULL;
    each_line(r, rank, prefix, n, &line);
    return line;
}

int mpirun_count(const mpirun_t *r, int rank, const char *prefix) {
    return each_line(r, rank, prefix, 0, NULL);
}

int mpirun_value(const char *line, const char *key, long *v) {
    if (!line) return 0;
    const char *end = strchr(line, '\n');
    size_t kl = strlen(key);
    for (const char *s = line; *s && (!end || s < end); s++) {
        if ((s == line || s[-1] == ' ') && strncmp(s, key, kl) == 0 && s[kl] == '=') {
            char *e;
            *v = strtol(s + kl + 1, &e, 10);
            return e != s + kl + 1;
        }
    }
    return 0;
}

const char *mpirun_tail(const mpirun_t *r) {
    size_t len = strlen(r->output), keep = 8000;
    return len > keep ? r->output + len - keep : r->output;
}

void mpirun_assert_exit(const mpirun_t *r, int code) {
    cr_assert_eq(r->status, code, "%s\nexited with %d%s, expected %d\n---- output (tail) ----\n%s",
                 r->cmd, r->status, (r->status == 124 || r->status == 137) ? " (TIME LIMIT)" : "",
                 code, mpirun_tail(r));
}

void mpirun_assert_clean(const mpirun_t *r) {
    mpirun_assert_exit(r, 0);
    for (int rank = 0; rank < r->nranks; rank++) {
        cr_assert_eq(mpirun_count(r, rank, "DONE failures=0"), 1,
                     "%s\nrank %d did not print 'DONE failures=0' once\n---- output ----\n%s",
                     r->cmd, rank, mpirun_tail(r));
    }
    for (int rank = r->nranks; rank < r->nranks + 8; rank++)
        cr_assert_eq(mpirun_count(r, rank, ""), 0, "%s\nrank %d exists in a %d-rank run\n%s",
                     r->cmd, rank, r->nranks, mpirun_tail(r));
    cr_assert_null(strstr(r->output, " FAIL"), "%s\na line says FAIL\n---- output ----\n%s", r->cmd,
                   mpirun_tail(r));
}

void mpirun_assert_result(const mpirun_t *r, const char *name, int times) {
    char prefix[256];
    snprintf(prefix, sizeof prefix, "RESULT %s ok ", name);
    for (int rank = 0; rank < r->nranks; rank++) {
        int n = mpirun_count(r, rank, prefix);
        cr_assert_eq(n, times,
                     "%s\nrank %d printed '%s' %d times, expected %d\n---- output "
                     "----\n%s",
                     r->cmd, rank, prefix, n, times, mpirun_tail(r));
    }
}

void mpirun_tmpdir(char *dir, size_t n, const char *tag) {
    snprintf(dir, n, "/tmp/dagr-%s-XXXXXX", tag);
    cr_assert_not_null(mkdtemp(dir), "mkdtemp(%s) failed", dir);
}

void mpirun_rmdir(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

int mpirun_sh(const char *cmd, char *out, size_t n) {
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "popen(%s)", cmd);
    size_t len = out ? strlen(out) : 0;
    char buf[4096];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, p)) > 0) {
        if (out && len + got < n) {
            memcpy(out + len, buf, got);
            len += got;
            out[len] = 0;
        }
    }
    int ws = pclose(p);
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
}
