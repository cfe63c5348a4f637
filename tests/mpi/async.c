/* Task bodies that complete asynchronously (dagr_task_defer, DAGR_TASK_ASYNC,
 * dagr_task_complete), and the worker init hook (dagr_config_t.worker_init).
 *
 * Usage: async chain SEED TASKS | async errors
 *
 * chain: a randomized graph over NH 8-byte handles with owners spread over the ranks; each
 * task, on a random rank, updates one handle (x = 3 x + j + the values it reads of up to two
 * others): a third of them in the body, a third by a helper thread of the rank (the body
 * defers, queues the work and returns; the helper sleeps up to 300 us, writes through the
 * buffer pointer and completes the task), and a third complete themselves before the body
 * returns. Every rank replays the graph serially and checks every value with dagr_fetch. Each
 * rank also checks that worker_init ran once on each of its workers before any task.
 *
 * errors: an asynchronous completion with an error fails the task with that status and
 * message and poisons what depends on it; DAGR_TASK_ASYNC without dagr_task_defer fails the
 * task; a body that defers but answers DAGR_TASK_DONE completes normally.
 *
 * Prints RANK r RESULT async ok|FAIL ... */
#include "scenario.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NH 16
#define MAXIN 2

/* ------------------------------------------------------------------------------------------
 * The helper thread: completes deferred tasks later
 * ---------------------------------------------------------------------------------------- */

typedef struct work {
    dagr_task_token_t *token;
    uint64_t *x;
    uint64_t add;
    int delay_us;
    dagr_status_t status; /* to complete with */
    struct work *next;
} work_t;

static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cond = PTHREAD_COND_INITIALIZER;
static work_t *q_head, **q_tail = &q_head;
static bool q_stop;

static void *helper_main(void *arg) {
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&q_lock);
        while (!q_head && !q_stop)
            pthread_cond_wait(&q_cond, &q_lock);
        work_t *w = q_head;
        if (w) {
            q_head = w->next;
            if (!q_head) q_tail = &q_head;
        }
        pthread_mutex_unlock(&q_lock);
        if (!w) return NULL;
        usleep((useconds_t)w->delay_us);
        if (w->status == DAGR_OK) {
            *w->x = 3 * *w->x + w->add;
            dagr_task_complete(w->token, DAGR_OK, NULL);
        } else {
            dagr_task_complete(w->token, w->status, "the device says: bad pivot %d", 7);
        }
        free(w);
    }
}

static void queue_work(work_t *w) {
    pthread_mutex_lock(&q_lock);
    w->next = NULL;
    *q_tail = w;
    q_tail = &w->next;
    pthread_cond_signal(&q_cond);
    pthread_mutex_unlock(&q_lock);
}

/* ------------------------------------------------------------------------------------------
 * The bodies
 * ---------------------------------------------------------------------------------------- */

enum { HOW_SYNC, HOW_HELPER, HOW_INLINE, HOW_FAIL, HOW_NO_DEFER, HOW_DEFER_DONE };

typedef struct job {
    uint64_t j;
    int how;
    int delay_us;
} job_t;

static atomic_int tasks_before_init; /* tasks that ran on a worker worker_init had not seen */
static _Thread_local bool worker_ready;

static dagr_task_result_t k_job(const dagr_task_view_t *t) {
    job_t jb;
    memcpy(&jb, t->args, sizeof jb);
    if (!worker_ready) atomic_fetch_add(&tasks_before_init, 1);
    uint64_t add = jb.j, *x = t->buf[0];
    for (int i = 1; i < t->nbuf; i++)
        add += *(const uint64_t *)t->buf[i];
    switch (jb.how) {
    case HOW_HELPER:
    case HOW_FAIL: {
        work_t *w = malloc(sizeof *w);
        dagr_task_token_t *tok = dagr_task_defer(t);
        if (!w || !tok) {
            free(w);
            dagr_task_fail(t, DAGR_ERR_NOMEM, "cannot defer");
            return DAGR_TASK_ERROR;
        }
        *w = (work_t){.token = tok,
                      .x = x,
                      .add = add,
                      .delay_us = jb.delay_us,
                      .status = jb.how == HOW_FAIL ? DAGR_ERR_NUMERICAL : DAGR_OK};
        queue_work(w);
        return DAGR_TASK_ASYNC;
    }
    case HOW_INLINE: {
        dagr_task_token_t *tok = dagr_task_defer(t);
        *x = 3 * *x + add;
        dagr_task_complete(tok, DAGR_OK, NULL); /* before the body returns */
        return DAGR_TASK_ASYNC;
    }
    case HOW_NO_DEFER:
        return DAGR_TASK_ASYNC;
    case HOW_DEFER_DONE:
        (void)dagr_task_defer(t);
        *x = 3 * *x + add;
        return DAGR_TASK_DONE;
    default:
        *x = 3 * *x + add;
        return DAGR_TASK_DONE;
    }
}

static const dagr_kernel_t job_kernel = {.name = "async_job", .cpu = k_job};

static atomic_int inits;
static atomic_int init_seen[64];

static void worker_init(int worker, void *arg) {
    (void)arg;
    worker_ready = true;
    atomic_fetch_add(&inits, 1);
    if (worker >= 0 && worker < 64) atomic_fetch_add(&init_seen[worker], 1);
}

static void spawn(dagr_ctx_t *ctx, dagr_data_t *w, dagr_data_t *const *in, int nin, job_t jb,
                  int rank) {
    dagr_access_t acc[1 + MAXIN];
    acc[0] = (dagr_access_t){w, DAGR_RW};
    for (int i = 0; i < nin; i++)
        acc[1 + i] = (dagr_access_t){in[i], DAGR_READ};
    dagr_task_opts_t o;
    dagr_task_opts_init(&o);
    o.rank = rank;
    SC_TRY(dagr_spawn(ctx, &job_kernel, &jb, sizeof jb, 1 + nin, acc, &o));
}

static int chain(dagr_ctx_t *ctx, uint64_t seed, int ntasks) {
    int P = dagr_size(ctx);
    sc_rng_t rng = {seed};
    dagr_data_t *h[NH];
    uint64_t model[NH] = {0};
    for (int k = 0; k < NH; k++)
        SC_TRY(dagr_data_create(ctx, 8, sc_below(&rng, P), &h[k]));
    int counts[3] = {0, 0, 0};
    for (int t = 0; t < ntasks; t++) {
        int w = sc_below(&rng, NH), nin = sc_below(&rng, MAXIN + 1), in[MAXIN];
        dagr_data_t *hin[MAXIN];
        for (int i = 0; i < nin; i++) {
            do
                in[i] = sc_below(&rng, NH);
            while (in[i] == w);
            hin[i] = h[in[i]];
        }
        job_t jb = {.j = sc_next(&rng), .how = sc_below(&rng, 3), .delay_us = sc_below(&rng, 300)};
        counts[jb.how]++;
        spawn(ctx, h[w], hin, nin, jb, sc_below(&rng, P + 1) - 1);
        uint64_t add = jb.j;
        for (int i = 0; i < nin; i++)
            add += model[in[i]];
        model[w] = 3 * model[w] + add;
        if (t % 101 == 100) SC_TRY(dagr_wait_all(ctx));
    }
    SC_TRY(dagr_wait_all(ctx));
    int bad = 0;
    for (int k = 0; k < NH; k++) {
        uint64_t v = 0;
        SC_TRY(dagr_fetch(h[k], &v, -1));
        bad += !SC_CHECK(v == model[k], "handle %d: %llu, the replay has %llu", k,
                         (unsigned long long)v, (unsigned long long)model[k]);
        SC_TRY(dagr_data_destroy(&h[k]));
    }
    /* Host workers and one per device. */
    int threads = dagr_threads(ctx) + dagr_devices(ctx), once = 1;
    for (int i = 0; i < threads && i < 64; i++)
        once &= atomic_load(&init_seen[i]) == 1;
    bool init_ok = atomic_load(&inits) == threads && once && atomic_load(&tasks_before_init) == 0;
    SC_CHECK(init_ok, "worker_init ran %d times for %d workers (each once: %d), %d tasks before",
             atomic_load(&inits), threads, once, atomic_load(&tasks_before_init));
    sc_result("async", bad == 0 && init_ok,
              "tasks=%d sync=%d helper=%d inline=%d bad=%d inits=%d threads=%d", ntasks, counts[0],
              counts[1], counts[2], bad, atomic_load(&inits), threads);
    return bad;
}

static int errors(dagr_ctx_t *ctx) {
    int P = dagr_size(ctx), ok = 1;
    dagr_data_t *a, *b;
    SC_TRY(dagr_data_create(ctx, 8, P - 1, &a));
    SC_TRY(dagr_data_create(ctx, 8, 0, &b));
    /* a = 1 everywhere it matters; then a failing asynchronous task, and b reading a after. */
    spawn(ctx, a, NULL, 0, (job_t){.j = 1, .how = HOW_SYNC}, -1);
    spawn(ctx, a, NULL, 0, (job_t){.j = 5, .how = HOW_FAIL, .delay_us = 500}, -1);
    spawn(ctx, b, &a, 1, (job_t){.j = 0, .how = HOW_SYNC}, 0);
    ok &= SC_EXPECT_WAIT(ctx, DAGR_ERR_NUMERICAL, "the device says: bad pivot 7", "async failure");
    uint64_t va = 0, vb = 0;
    SC_TRY(dagr_fetch(a, &va, -1));
    SC_TRY(dagr_fetch(b, &vb, -1));
    ok &= SC_CHECK(va == 1 && vb == 0, "a = %llu (want 1), b = %llu (want 0: poisoned)",
                   (unsigned long long)va, (unsigned long long)vb);
    spawn(ctx, a, NULL, 0, (job_t){.how = HOW_NO_DEFER}, -1);
    ok &= SC_EXPECT_WAIT(ctx, DAGR_ERR_TASK, "without calling dagr_task_defer", "no defer");
    spawn(ctx, a, NULL, 0, (job_t){.j = 2, .how = HOW_DEFER_DONE}, -1);
    ok &= SC_EXPECT_WAIT(ctx, DAGR_OK, NULL, "defer, then DONE");
    SC_TRY(dagr_fetch(a, &va, -1));
    ok &= SC_CHECK(va == 5, "a = %llu after defer-then-DONE, want 5", (unsigned long long)va);
    ok &= SC_CHECK(dagr_task_defer(NULL) == NULL, "dagr_task_defer(NULL) is not NULL");
    dagr_task_complete(NULL, DAGR_OK, NULL); /* tolerated */
    SC_TRY(dagr_data_destroy(&a));
    SC_TRY(dagr_data_destroy(&b));
    sc_result("async", ok, "errors");
    return !ok;
}

int main(int argc, char **argv) {
    pthread_t helper;
    if (pthread_create(&helper, NULL, helper_main, NULL) != 0) return 2;
    dagr_config_t cfg;
    dagr_config_init(&cfg);
    cfg.worker_init = worker_init;
    dagr_ctx_t *ctx;
    SC_TRY(dagr_init(&argc, &argv, &cfg, &ctx));
    sc_set_rank(dagr_rank(ctx));
    const char *mode = argc > 1 ? argv[1] : "chain";
    if (strcmp(mode, "chain") == 0)
        chain(ctx, argc > 2 ? strtoull(argv[2], NULL, 10) : 1, argc > 3 ? atoi(argv[3]) : 400);
    else if (strcmp(mode, "errors") == 0)
        errors(ctx);
    else
        sc_fail_at(__FILE__, __LINE__, "unknown mode '%s'", mode);
    SC_TRY(dagr_finalize(&ctx));
    pthread_mutex_lock(&q_lock);
    q_stop = true;
    pthread_cond_signal(&q_cond);
    pthread_mutex_unlock(&q_lock);
    pthread_join(helper, NULL);
    return sc_exit_code();
}
