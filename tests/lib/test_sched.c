/* Scheduling on one rank with one worker thread: priorities, DAGR_TASK_RETRY, the task view.
 *
 * The trick: a "blocker" task occupies the only worker, spinning until the test sets a flag,
 * so that every task inserted meanwhile is ready at the same moment; the order in which they
 * then run is the scheduler's choice alone. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <dagr/dagr.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static atomic_int go, blocker_started, blocker_timed_out;

static dagr_task_result_t k_block(const dagr_task_view_t *t) {
    (void)t;
    atomic_store(&blocker_started, 1);
    double t0 = now();
    while (!atomic_load(&go)) {
        if (now() - t0 > 20) {
            atomic_store(&blocker_timed_out, 1);
            break;
        }
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    return DAGR_TASK_DONE;
}

static const dagr_kernel_t K_BLOCK = {.name = "sched_block", .cpu = k_block};

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static int log_v[256];
static int log_n;

static void log_push(int v) {
    pthread_mutex_lock(&log_mu);
    if (log_n < 256) log_v[log_n++] = v;
    pthread_mutex_unlock(&log_mu);
}

/* Appends its int argument to the log. */
static dagr_task_result_t k_record(const dagr_task_view_t *t) {
    int v;
    memcpy(&v, t->args, sizeof v);
    log_push(v);
    return DAGR_TASK_DONE;
}

static const dagr_kernel_t K_RECORD = {.name = "sched_record", .cpu = k_record};

static dagr_ctx_t *ctx;

static void start_one_worker(void) {
    setenv("DAGR_THREADS", "1", 1);
    cr_assert_eq(dagr_init(NULL, NULL, NULL, &ctx), DAGR_OK, "%s", dagr_last_error());
    cr_assert_eq(dagr_threads(ctx), 1);
}

/* Spawns the blocker on its own handle and waits until it runs. */
static void block_worker(void) {
    dagr_data_t *b = NULL;
    cr_assert_eq(dagr_data_create(ctx, 0, 0, &b), DAGR_OK);
    dagr_access_t acc[1] = {{b, DAGR_RW}};
    dagr_task_opts_t o;
    dagr_task_opts_init(&o);
    o.priority = 1000;
    cr_assert_eq(dagr_spawn(ctx, &K_BLOCK, NULL, 0, 1, acc, &o), DAGR_OK, "%s", dagr_last_error());
    double t0 = now();
    while (!atomic_load(&blocker_started) && now() - t0 < 20) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    cr_assert_eq(atomic_load(&blocker_started), 1,
                 "the first task did not start within 20 s of dagr_spawn (tasks run only "
                 "inside dagr_wait_all?)");
}

static void release_worker_and_wait(void) {
    atomic_store(&go, 1);
    cr_assert_eq(dagr_wait_all(ctx), DAGR_OK, "%s", dagr_last_error());
    cr_assert_eq(atomic_load(&blocker_timed_out), 0, "blocker timed out");
}

/* Priorities in scrambled order, with ties; each task writes its own handle. */
static const int prios[] = {3, -2, 7, 0, 7, 5, -2, 1, 9, 0, 3, -5, 7, 2};
#define NP ((int)(sizeof prios / sizeof prios[0]))

static void run_priorities(void) {
    start_one_worker();
    block_worker();
    for (int i = 0; i < NP; i++) {
        dagr_data_t *h = NULL;
        cr_assert_eq(dagr_data_create(ctx, 8, 0, &h), DAGR_OK);
        dagr_access_t acc[1] = {{h, DAGR_WRITE}};
        dagr_task_opts_t o;
        dagr_task_opts_init(&o);
        o.priority = prios[i];
        cr_assert_eq(dagr_spawn(ctx, &K_RECORD, &i, sizeof i, 1, acc, &o), DAGR_OK);
    }
    release_worker_and_wait();
    cr_assert_eq(log_n, NP, "%d tasks ran, %d inserted", log_n, NP);
}

static void log_str(char *buf, size_t cap) {
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < log_n && n + 16 < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "#%d(p%d) ", log_v[i], prios[log_v[i]]);
}

Test(lib_sched, higher_priority_runs_first, .timeout = 60) {
    run_priorities();
    char s[1024];
    log_str(s, sizeof s);
    for (int i = 1; i < NP; i++)
        cr_expect_geq(prios[log_v[i - 1]], prios[log_v[i]], "run order by priority: %s", s);
    cr_expect_eq(dagr_finalize(&ctx), DAGR_OK);
}

/* Not in the header's words, but the natural rule: equal priorities run in insertion order. */
Test(lib_sched, equal_priorities_run_in_insertion_order, .timeout = 60) {
    run_priorities();
    char s[1024];
    log_str(s, sizeof s);
    for (int i = 1; i < NP; i++)
        if (prios[log_v[i - 1]] == prios[log_v[i]])
            cr_expect_lt(log_v[i - 1], log_v[i], "ties out of insertion order: %s", s);
    cr_expect_eq(dagr_finalize(&ctx), DAGR_OK);
}

/* RETRY: "run the body again later (after other ready tasks)". R (high priority) retries
 * twice; X and Y (lower priorities) are ready when it first returns RETRY, so they run before
 * R's second attempt. Expected log: R X Y R R. */
static atomic_int r_runs;

static dagr_task_result_t k_retry(const dagr_task_view_t *t) {
    (void)t;
    log_push('R');
    return atomic_fetch_add(&r_runs, 1) < 2 ? DAGR_TASK_RETRY : DAGR_TASK_DONE;
}

static const dagr_kernel_t K_RETRY = {.name = "sched_retry", .cpu = k_retry};

Test(lib_sched, retry_runs_again_after_other_ready_tasks, .timeout = 60) {
    start_one_worker();
    block_worker();
    dagr_data_t *hr = NULL, *hx = NULL, *hy = NULL;
    cr_assert_eq(dagr_data_create(ctx, 8, 0, &hr), DAGR_OK);
    cr_assert_eq(dagr_data_create(ctx, 8, 0, &hx), DAGR_OK);
    cr_assert_eq(dagr_data_create(ctx, 8, 0, &hy), DAGR_OK);
    dagr_task_opts_t o;
    dagr_task_opts_init(&o);
    o.priority = 10;
    dagr_access_t ar[1] = {{hr, DAGR_RW}};
    cr_assert_eq(dagr_spawn(ctx, &K_RETRY, NULL, 0, 1, ar, &o), DAGR_OK);
    int x = 'X', y = 'Y';
    o.priority = 2;
    dagr_access_t ax[1] = {{hx, DAGR_RW}};
    cr_assert_eq(dagr_spawn(ctx, &K_RECORD, &x, sizeof x, 1, ax, &o), DAGR_OK);
    o.priority = 1;
    dagr_access_t ay[1] = {{hy, DAGR_RW}};
    cr_assert_eq(dagr_spawn(ctx, &K_RECORD, &y, sizeof y, 1, ay, &o), DAGR_OK);
    release_worker_and_wait();
    char got[16] = {0};
    for (int i = 0; i < log_n && i < 15; i++)
        got[i] = (char)log_v[i];
    cr_expect_eq(atomic_load(&r_runs), 3, "the retrying body ran %d times", atomic_load(&r_runs));
    cr_expect_str_eq(got, "RXYRR", "run order %s", got);
    cr_expect_eq(dagr_finalize(&ctx), DAGR_OK);
}

/* A retrying task's dependents wait for its final DONE. */
static dagr_task_result_t k_retry_then_write(const dagr_task_view_t *t) {
    int n = atomic_fetch_add(&r_runs, 1) + 1;
    if (n < 3) return DAGR_TASK_RETRY;
    uint64_t v = 100 + (uint64_t)n;
    memcpy(t->buf[0], &v, 8);
    return DAGR_TASK_DONE;
}

static uint64_t seen_by_dependent;

static dagr_task_result_t k_read(const dagr_task_view_t *t) {
    memcpy(&seen_by_dependent, t->buf[0], 8);
    return DAGR_TASK_DONE;
}

Test(lib_sched, dependents_wait_for_retry_to_finish, .timeout = 60) {
    setenv("DAGR_THREADS", "2", 1);
    cr_assert_eq(dagr_init(NULL, NULL, NULL, &ctx), DAGR_OK, "%s", dagr_last_error());
    static const dagr_kernel_t kw = {.name = "sched_retry_write", .cpu = k_retry_then_write};
    static const dagr_kernel_t kr = {.name = "sched_read", .cpu = k_read};
    dagr_data_t *h = NULL, *out = NULL;
    cr_assert_eq(dagr_data_create(ctx, 8, 0, &h), DAGR_OK);
    cr_assert_eq(dagr_data_create(ctx, 8, 0, &out), DAGR_OK);
    dagr_access_t aw[1] = {{h, DAGR_WRITE}};
    dagr_access_t ar[2] = {{h, DAGR_READ}, {out, DAGR_WRITE}};
    cr_assert_eq(dagr_spawn(ctx, &kw, NULL, 0, 1, aw, NULL), DAGR_OK);
    cr_assert_eq(dagr_spawn(ctx, &kr, NULL, 0, 2, ar, NULL), DAGR_OK);
    cr_assert_eq(dagr_wait_all(ctx), DAGR_OK, "%s", dagr_last_error());
    cr_expect_eq(seen_by_dependent, 103, "dependent saw %llu",
                 (unsigned long long)seen_by_dependent);
    cr_expect_eq(dagr_finalize(&ctx), DAGR_OK);
}

/* What a task body sees: its private copy of the arguments (taken at dagr_spawn), its seq,
 * rank and worker, and the same pointer for a handle named twice. */
typedef struct view_seen {
    int args_good, ok_null_args, ok_same_ptr, ok_bytes;
    uint64_t seq[3];
    int rank, worker;
} view_seen_t;
static view_seen_t seen;

static dagr_task_result_t k_view(const dagr_task_view_t *t) {
    int which;
    if (t->args_size == 0) {
        seen.ok_null_args = t->args == NULL;
        which = 2;
    } else {
        char expect[64];
        memset(expect, 'a', sizeof expect);
        seen.args_good += t->args_size == sizeof expect && memcmp(t->args, expect, 64) == 0;
        which = t->nbuf == 3 ? 1 : 0;
    }
    if (t->nbuf == 3) {
        seen.ok_same_ptr = t->buf[0] == t->buf[2] && t->buf[0] != t->buf[1];
        seen.ok_bytes = t->bytes[0] == 24 && t->bytes[1] == 0 && t->bytes[2] == 24;
    }
    seen.seq[which] = t->seq;
    seen.rank = t->rank;
    seen.worker = t->worker;
    return DAGR_TASK_DONE;
}

Test(lib_sched, task_view_contents, .timeout = 60) {
    start_one_worker();
    static const dagr_kernel_t kv = {.name = "sched_view", .cpu = k_view};
    dagr_data_t *a = NULL, *z = NULL, *b = NULL;
    cr_assert_eq(dagr_data_create(ctx, 24, 0, &a), DAGR_OK);
    cr_assert_eq(dagr_data_create(ctx, 0, 0, &z), DAGR_OK);
    cr_assert_eq(dagr_data_create(ctx, 8, 0, &b), DAGR_OK);
    block_worker(); /* task #0 */
    char args[64];
    memset(args, 'a', sizeof args);
    dagr_access_t a0[1] = {{b, DAGR_RW}};
    cr_assert_eq(dagr_spawn(ctx, &kv, args, sizeof args, 1, a0, NULL), DAGR_OK); /* #1 */
    dagr_access_t a1[3] = {{a, DAGR_READ}, {z, DAGR_RW}, {a, DAGR_RW}};
    cr_assert_eq(dagr_spawn(ctx, &kv, args, sizeof args, 3, a1, NULL), DAGR_OK); /* #2 */
    memset(args, 'b', sizeof args); /* the tasks must see their own copies */
    cr_assert_eq(dagr_spawn(ctx, &kv, NULL, 0, 1, a0, NULL), DAGR_OK); /* #3 */
    release_worker_and_wait();
    cr_expect_eq(seen.args_good, 2, "the tasks did not see private copies of their arguments");
    cr_expect(seen.ok_null_args, "args is not NULL when args_size is 0");
    cr_expect(seen.ok_same_ptr, "a handle named twice did not give the same pointer twice");
    cr_expect(seen.ok_bytes, "bytes[] do not match the handles");
    cr_expect_eq(seen.seq[0], 1);
    cr_expect_eq(seen.seq[1], 2);
    cr_expect_eq(seen.seq[2], 3);
    cr_expect_eq(seen.rank, 0);
    cr_expect_eq(seen.worker, 0);
    cr_expect_eq(dagr_finalize(&ctx), DAGR_OK);
}
