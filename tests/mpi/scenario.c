/* Helpers shared by the scenario programs (see scenario.h). */
#include "scenario.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int sc_rank_ = -1;
static int sc_failures_ = 0;

void sc_set_rank(int rank) {
    sc_rank_ = rank;
}

int sc_failures(void) {
    return sc_failures_;
}

/* Formats "RANK r <prefix><text>\n" into one buffer and writes it at once, so that lines of
 * different ranks do not interleave in mpiexec's output. */
static void sc_vline(const char *prefix, const char *fmt, va_list ap) {
    char buf[4096];
    int n = snprintf(buf, sizeof buf, "RANK %d %s", sc_rank_, prefix);
    if (n < 0 || (size_t)n >= sizeof buf) n = 0;
    vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
    size_t len = strlen(buf);
    buf[len] = '\n';
    fwrite(buf, 1, len + 1, stdout);
    fflush(stdout);
}

void sc_say(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sc_vline("", fmt, ap);
    va_end(ap);
}

void sc_fail_at(const char *file, int line, const char *fmt, ...) {
    char prefix[512];
    snprintf(prefix, sizeof prefix, "FAIL %s:%d: ", file, line);
    sc_failures_++;
    va_list ap;
    va_start(ap, fmt);
    sc_vline(prefix, fmt, ap);
    va_end(ap);
}

void sc_result(const char *name, int ok, const char *fmt, ...) {
    char prefix[256];
    snprintf(prefix, sizeof prefix, "RESULT %s %s ", name, ok ? "ok" : "FAIL");
    if (!ok) sc_failures_++;
    va_list ap;
    va_start(ap, fmt);
    sc_vline(prefix, fmt, ap);
    va_end(ap);
}

int sc_expect_status_at(const char *file, int line, const char *what, dagr_status_t got,
                        dagr_status_t want) {
    if (got == want) return 1;
    sc_fail_at(file, line, "%s returned %d (%s), expected %d (%s); last error: \"%s\"", what,
               (int)got, dagr_status_str(got), (int)want, dagr_status_str(want), dagr_last_error());
    return 0;
}

int sc_expect_wait_at(const char *file, int line, dagr_ctx_t *ctx, dagr_status_t want,
                      const char *has, const char *what) {
    dagr_status_t got = dagr_wait_all(ctx);
    const char *msg = dagr_last_error();
    if (got == want && (!has || strstr(msg, has))) return 1;
    sc_fail_at(file, line,
               "%s: the wait returned %d (%s), expected %d (%s)%s%s%s; last error: \"%s\"", what,
               (int)got, dagr_status_str(got), (int)want, dagr_status_str(want),
               has ? " with \"" : "", has ? has : "", has ? "\" in the message" : "", msg);
    return 0;
}

void sc_try_at(const char *file, int line, const char *what, dagr_status_t st) {
    if (st == DAGR_OK) return;
    sc_fail_at(file, line, "%s returned %d (%s); last error: \"%s\"; giving up", what, (int)st,
               dagr_status_str(st), dagr_last_error());
    exit(2);
}

int sc_exit_code(void) {
    sc_say("DONE failures=%d", sc_failures_);
    return sc_failures_ ? 1 : 0;
}

double sc_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void sc_sleep_ms(int ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

long sc_rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kib;
}

long sc_allreduce_sum(MPI_Comm comm, long v) {
    long out = 0;
    MPI_Allreduce(&v, &out, 1, MPI_LONG, MPI_SUM, comm);
    return out;
}

long sc_allreduce_max(MPI_Comm comm, long v) {
    long out = 0;
    MPI_Allreduce(&v, &out, 1, MPI_LONG, MPI_MAX, comm);
    return out;
}

dagr_task_result_t sc_k_rw(const dagr_task_view_t *t) {
    uint64_t j, x;
    memcpy(&j, t->args, 8);
    memcpy(&x, t->buf[0], 8);
    x = 3 * x + j;
    memcpy(t->buf[0], &x, 8);
    return DAGR_TASK_DONE;
}
