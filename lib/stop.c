/* Stopping a long job cleanly when its batch system warns it (dagr_stop_requested).
 *
 * Slurm sends a signal before a job's time limit (`--signal=USR1@120`), at preemption and at
 * `scancel --signal`: a program that checkpoints then and exits resumes in the next job
 * instead of losing everything since its last checkpoint. dagr_init installs a handler for
 * the signals of DAGR_STOP_SIGNALS / dagr_config_t.stop_signals that only records that one
 * came; dagr_stop_requested agrees on it across the ranks, since a signal may reach some
 * ranks and not others, or reach them between two calls: every rank must stop after the
 * same step, or the checkpoint that follows would be collective on some ranks only. */
#include "lib_impl.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The first stop signal caught by this process (0: none yet). A signal handler may write
 * only a volatile sig_atomic_t; the workers and the progress thread never read it. */
static volatile sig_atomic_t stop_caught;
/* The actions dagr replaced, by signal number, for the handler to pass the signal on: MPICH
 * itself installs a SIGUSR1 handler at MPI_Init. Written only while no stop handler is
 * installed. */
static struct sigaction chained[NSIG];

static void on_stop_signal(int sig, siginfo_t *info, void *uctx) {
    if (!stop_caught) stop_caught = sig;
    const struct sigaction *old = &chained[sig];
    if (old->sa_flags & SA_SIGINFO) {
        if (old->sa_sigaction) old->sa_sigaction(sig, info, uctx);
    } else if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN && old->sa_handler) {
        old->sa_handler(sig); /* never the default action: that would end the process */
    }
}

static const struct {
    const char *name;
    int sig;
} SIGNALS[] = {{"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"TERM", SIGTERM}, {"INT", SIGINT},
               {"HUP", SIGHUP},   {"XCPU", SIGXCPU}, {"ALRM", SIGALRM}, {"CONT", SIGCONT}};

/* "USR1", "SIGUSR1", "usr1" or "10": the signal number, or 0. */
static int signal_number(const char *tok, size_t len) {
    char name[16];
    if (len == 0 || len >= sizeof name) return 0;
    for (size_t i = 0; i < len; i++)
        name[i] = (char)(tok[i] >= 'a' && tok[i] <= 'z' ? tok[i] - 'a' + 'A' : tok[i]);
    name[len] = 0;
    const char *n = strncmp(name, "SIG", 3) == 0 ? name + 3 : name;
    for (size_t i = 0; i < sizeof SIGNALS / sizeof *SIGNALS; i++)
        if (!strcmp(n, SIGNALS[i].name)) return SIGNALS[i].sig;
    char *end;
    long v = strtol(name, &end, 10);
    if (*end || v <= 0 || v >= NSIG || v == SIGKILL || v == SIGSTOP) return 0;
    /* Signals that mean a fault must keep their default action. */
    if (v == SIGSEGV || v == SIGBUS || v == SIGILL || v == SIGFPE || v == SIGABRT) return 0;
    return (int)v;
}

dagr_status_t stop_parse(const char *spec, stop_signals_t *out) {
    memset(out, 0, sizeof *out);
    if (!spec || !*spec) return DAGR_OK;
    for (const char *p = spec; *p;) {
        size_t len = strcspn(p, ", ");
        if (len) {
            int sig = signal_number(p, len);
            DAGR_CHECK(sig, DAGR_ERR_ARG,
                       "stop signals '%s': '%.*s' is not a signal dagr can catch (USR1, USR2, "
                       "TERM, INT, HUP, XCPU, ALRM, CONT or a number; not KILL, STOP or a "
                       "fault)",
                       spec, (int)len, p);
            bool dup = false;
            for (int i = 0; i < out->n; i++)
                dup |= out->sig[i] == sig;
            if (!dup) {
                DAGR_CHECK(out->n < STOP_MAX_SIGNALS, DAGR_ERR_ARG,
                           "stop signals '%s': more than %d signals", spec, STOP_MAX_SIGNALS);
                out->sig[out->n++] = sig;
            }
        }
        p += len;
        p += strspn(p, ", ");
    }
    return DAGR_OK;
}

void stop_names(const stop_signals_t *s, char *buf, size_t size) {
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < s->n && used < size; i++) {
        const char *name = NULL;
        for (size_t k = 0; k < sizeof SIGNALS / sizeof *SIGNALS; k++)
            if (SIGNALS[k].sig == s->sig[i]) name = SIGNALS[k].name;
        int w = name ? snprintf(buf + used, size - used, "%s%s", i ? "," : "", name)
                     : snprintf(buf + used, size - used, "%s%d", i ? "," : "", s->sig[i]);
        if (w > 0) used += (size_t)w;
    }
}

dagr_status_t stop_install(stop_signals_t *s) {
    stop_caught = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART | SA_SIGINFO; /* a read or write interrupted by it goes on */
    for (int i = 0; i < s->n; i++) {
        sigaction(s->sig[i], NULL, &chained[s->sig[i]]);
        if (sigaction(s->sig[i], &sa, &s->old[i]) != 0) {
            int failed = s->sig[i];
            s->n = i;
            stop_restore(s);
            return DAGR_ERR(DAGR_ERR_ARG, "cannot catch signal %d: %m", failed);
        }
    }
    return DAGR_OK;
}

void stop_restore(stop_signals_t *s) {
    for (int i = 0; i < s->n; i++)
        sigaction(s->sig[i], &s->old[i], NULL);
}

/* The answer lags one call: each call posts the allreduce of what this rank knows now and
 * returns the result of the previous call's, which has nearly always arrived by then. A
 * blocking allreduce at every step would hold each rank's main thread until the slowest rank
 * came, and stop it from inserting the next steps ahead of the workers (measured on Jacobi
 * sweeps of 1.8 ms at 2 ranks: 24 % slower). Every rank still gets the same answer from the
 * same call. When the previous one has not arrived (the main threads held back by the
 * backlog, DAGR_MAX_PENDING, come at the workers' pace, each rank's its own), the wait sleeps
 * between tests: spinning there took each rank's main thread 10-20 ms of CPU a second from
 * the workers (2 ranks on 2 cores, stencil sweeps, 2026-12-04), and the main thread is ahead
 * of the workers anyway. The allreduces go on a communicator of their own: they never meet
 * dagr's other collectives. */
bool dagr_stop_requested(dagr_ctx_t *ctx) {
    if (!ctx || ctx->broken) return true;
    int any = 0;
    if (ctx->stop_req != MPI_REQUEST_NULL) {
        if (ctx_wait_patient(&ctx->stop_req) != MPI_SUCCESS) return true;
        any = ctx->stop_out;
    }
    ctx->stop_in = stop_caught;
    if (MPI_Iallreduce(&ctx->stop_in, &ctx->stop_out, 1, MPI_INT, MPI_MAX, ctx->stop_comm,
                       &ctx->stop_req) != MPI_SUCCESS)
        return true;
    if (any && !ctx->stop_seen) {
        ctx->stop_seen = true;
        if (ctx->cfg.verbose && ctx->rank == 0)
            fprintf(stderr, "dagr: stop requested (signal %d on at least one rank)\n", any);
    }
    return ctx->stop_seen;
}

void stop_fini(struct dagr_ctx *ctx) {
    if (ctx->stop_req != MPI_REQUEST_NULL) MPI_Wait(&ctx->stop_req, MPI_STATUS_IGNORE);
    if (ctx->stop_comm != MPI_COMM_NULL) MPI_Comm_free(&ctx->stop_comm);
}
