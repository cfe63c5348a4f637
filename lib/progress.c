/* The progress line (DAGR_PROGRESS=1): rank 0 shows tasks done of inserted, the recent rate
 * and the elapsed time on stderr, rewritten in place at most every half second on a
 * terminal, and as a plain line every five seconds otherwise (batch logs).
 *
 * Every rank runs a small reporter thread. Ranks other than 0 put their count of tasks run
 * into a slot of a window on rank 0 four times a second; rank 0's reporter adds them up. Only
 * the reporters touch this window, in one lock_all epoch, so the workers and the progress
 * engine never wait on it. "Inserted" is rank 0's count: every rank inserts every task. */
#include "lib_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define TTY_PERIOD 0.5
#define LOG_PERIOD 5.0

struct progress {
    dagr_ctx_t *ctx;
    MPI_Win win;
    uint64_t *slots; /* rank 0: tasks run per rank */
    MPI_Comm comm;   /* rank 0 pokes MPI's progress engine on it */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop, tty, have_win, have_thread;
    bool started; /* set up on every rank: the final count is a collective */
    pthread_t thread;
    double t0, last_print, last_done_t;
    uint64_t last_done;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void print_line(progress_t *p, uint64_t done, bool final) {
    dagr_ctx_t *ctx = p->ctx;
    double t = now_s(), elapsed = t - p->t0;
    uint64_t inserted = __atomic_load_n(&ctx->div.count, __ATOMIC_RELAXED);
    double dt = final ? elapsed : t - p->last_done_t;
    double rate = dt > 0 ? (double)(final ? done : done - p->last_done) / dt : 0.0;
    char line[256];
    snprintf(line, sizeof line,
             "dagr: %" PRIu64 " / %" PRIu64 " tasks done (%.1f %%), %.0f tasks/s, %.1f s elapsed%s",
             done, inserted, inserted ? 100.0 * (double)done / (double)inserted : 100.0, rate,
             elapsed, final ? ", finished" : "");
    if (p->tty)
        fprintf(stderr, "\r%s\033[K%s", line, final ? "\n" : "");
    else
        fprintf(stderr, "%s\n", line);
    fflush(stderr);
    p->last_print = t;
    p->last_done = done;
    p->last_done_t = t;
}

static void *reporter_main(void *arg) {
    progress_t *p = arg;
    dagr_ctx_t *ctx = p->ctx;
    long period_ns = ctx->rank == 0 ? 100000000L : 250000000L;
    pthread_mutex_lock(&p->lock);
    while (!p->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += period_ns;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        int e = 0;
        while (!p->stop && e != ETIMEDOUT)
            e = pthread_cond_timedwait(&p->cond, &p->lock, &ts);
        if (p->stop) break;
        pthread_mutex_unlock(&p->lock);
        uint64_t mine = atomic_load_explicit(&ctx->tasks_run, memory_order_relaxed);
        if (ctx->rank != 0) {
            MPI_Put(&mine, 1, MPI_UINT64_T, 0, ctx->rank, 1, MPI_UINT64_T, p->win);
            MPI_Win_flush(0, p->win);
        } else {
            int flag;
            MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, p->comm, &flag, MPI_STATUS_IGNORE);
            MPI_Win_sync(p->win);
            uint64_t done = mine;
            for (int r = 1; r < ctx->size; r++)
                done += __atomic_load_n(&p->slots[r], __ATOMIC_RELAXED);
            double since = now_s() - p->last_print;
            if (since >= (p->tty ? TTY_PERIOD : LOG_PERIOD)) print_line(p, done, false);
        }
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static void progress_free(dagr_ctx_t *ctx) {
    progress_t *p = ctx->progress;
    if (p->have_win) {
        MPI_Win_unlock_all(p->win);
        MPI_Win_free(&p->win);
    }
    if (p->comm != MPI_COMM_NULL) MPI_Comm_free(&p->comm);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    free(p);
    ctx->progress = NULL;
}

dagr_status_t progress_start(dagr_ctx_t *ctx) {
    if (!ctx->cfg.progress) return DAGR_OK;
    progress_t *p = calloc(1, sizeof *p);
    dagr_status_t s = p ? DAGR_OK : DAGR_ERR(DAGR_ERR_NOMEM, "cannot allocate the progress line");
    if (p) {
        ctx->progress = p;
        p->ctx = ctx;
        p->comm = MPI_COMM_NULL;
        pthread_mutex_init(&p->lock, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&p->cond, &ca);
        pthread_condattr_destroy(&ca);
        int mode = ctx->cfg.progress;
        p->tty = ctx->rank == 0 && (mode == DAGR_PROGRESS_TTY ||
                                    (mode == DAGR_PROGRESS_AUTO && isatty(STDERR_FILENO)));
        p->t0 = p->last_print = p->last_done_t = now_s();
    }
    /* Collective calls come first and in the same order everywhere, whatever failed. */
    MPI_Aint bytes = ctx->rank == 0 ? (MPI_Aint)ctx->size * 8 : 0;
    uint64_t *slots = NULL;
    MPI_Win win = MPI_WIN_NULL;
    MPI_Comm comm = MPI_COMM_NULL;
    int e = MPI_Comm_dup(ctx->comm, &comm);
    if (e == MPI_SUCCESS) e = MPI_Win_allocate(bytes, 8, MPI_INFO_NULL, ctx->comm, &slots, &win);
    if (e == MPI_SUCCESS && s == DAGR_OK) {
        p->comm = comm;
        p->win = win;
        p->slots = slots;
        p->have_win = true;
        for (int r = 0; ctx->rank == 0 && r < ctx->size; r++)
            slots[r] = 0;
        MPI_Win_lock_all(MPI_MODE_NOCHECK, win);
        MPI_Barrier(ctx->comm); /* slots are zero before anyone puts */
        if (pthread_create(&p->thread, NULL, reporter_main, p) == 0)
            p->have_thread = true;
        else
            s = DAGR_ERR(DAGR_ERR_NOMEM, "cannot start the progress thread");
    } else if (s == DAGR_OK) {
        s = dagr_error_mpi(e, __FILE__, __LINE__, "setting up the progress line");
    }
    char msg[DAGR_ERRMSG_MAX];
    snprintf(msg, sizeof msg, "%s", s == DAGR_OK ? "" : dagr_last_error());
    s = ctx_agree(ctx->comm, s, msg);
    if (p) p->started = s == DAGR_OK;
    if (s != DAGR_OK && p) {
        progress_stop(ctx);
    } else if (s != DAGR_OK) {
        if (win != MPI_WIN_NULL) MPI_Win_free(&win);
        if (comm != MPI_COMM_NULL) MPI_Comm_free(&comm);
    }
    return s;
}

void progress_stop(dagr_ctx_t *ctx) {
    progress_t *p = ctx->progress;
    if (!p) return;
    if (p->have_thread) {
        pthread_mutex_lock(&p->lock);
        p->stop = true;
        pthread_cond_signal(&p->cond);
        pthread_mutex_unlock(&p->lock);
        pthread_join(p->thread, NULL);
    }
    if (p->started) {
        /* The final line counts exactly: everything has run by now. */
        uint64_t mine = atomic_load(&ctx->tasks_run), done = 0;
        MPI_Reduce(&mine, &done, 1, MPI_UINT64_T, MPI_SUM, 0, ctx->comm);
        if (ctx->rank == 0) print_line(p, done, true);
    }
    progress_free(ctx);
}
