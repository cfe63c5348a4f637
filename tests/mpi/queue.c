/* In-order queue scenario.
 *
 * Usage: queue [NTASKS]
 *
 * Two queues; their tasks share no data (each writes its own output handle) and run on
 * ranks chosen round-robin with opts.rank. Earlier tasks sleep longer and later tasks have
 * higher priorities, so a runtime ignoring the queue would finish them out of order. Each
 * task records its start and end times (CLOCK_MONOTONIC, one clock for all processes on the
 * host) in its handle; every task must start after the previous task of its queue ended.
 * The queues are destroyed before the wait (their tasks must still run in order).
 * A third set of tasks with no queue runs alongside, as a control that the check can fail:
 * it only reports how many of them overlapped.
 * Prints RANK r RESULT queue ok|FAIL ... */
#include "scenario.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct stamp_args {
    int32_t sleep_ms;
} stamp_args_t;

static dagr_task_result_t k_stamp(const dagr_task_view_t *t) {
    stamp_args_t a;
    memcpy(&a, t->args, sizeof a);
    double times[2];
    times[0] = sc_now();
    sc_sleep_ms(a.sleep_ms);
    times[1] = sc_now();
    memcpy(t->buf[0], times, sizeof times);
    return DAGR_TASK_DONE;
}

static const dagr_kernel_t K_STAMP = {.name = "queue_stamp", .cpu = k_stamp};

#define MAXN 64

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 12;
    if (n > MAXN) n = MAXN;
    dagr_ctx_t *ctx = NULL;
    SC_TRY(dagr_init(&argc, &argv, NULL, &ctx));
    const int rank = dagr_rank(ctx), size = dagr_size(ctx);
    sc_set_rank(rank);

    dagr_queue_t *q[2] = {NULL, NULL};
    SC_TRY(dagr_queue_create(ctx, &q[0]));
    SC_TRY(dagr_queue_create(ctx, &q[1]));
    dagr_data_t *out[3][MAXN];
    /* Interleave insertion: queue 0, queue 1, no queue. */
    for (int i = 0; i < n; i++) {
        for (int s = 0; s < 3; s++) {
            int on = (i + s) % size;
            SC_TRY(dagr_data_create(ctx, 2 * sizeof(double), on, &out[s][i]));
            stamp_args_t a = {.sleep_ms = 5 + 4 * (n - i)};
            dagr_access_t acc[1] = {{out[s][i], DAGR_WRITE}};
            dagr_task_opts_t o;
            dagr_task_opts_init(&o);
            o.rank = on;
            o.priority = i;
            o.queue = s < 2 ? q[s] : NULL;
            SC_TRY(dagr_spawn(ctx, &K_STAMP, &a, sizeof a, 1, acc, &o));
        }
    }
    SC_TRY(dagr_queue_destroy(&q[0]));
    SC_TRY(dagr_queue_destroy(&q[1]));
    SC_CHECK(q[0] == NULL && q[1] == NULL, "dagr_queue_destroy did not set NULL");
    SC_TRY(dagr_wait_all(ctx));

    int ok = 1, control_overlaps = 0;
    double t[3][MAXN][2];
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < n; i++)
            SC_TRY(dagr_fetch(out[s][i], t[s][i], -1));
    for (int s = 0; s < 3; s++) {
        for (int i = 0; i < n; i++) {
            ok &= SC_CHECK(t[s][i][0] > 0 && t[s][i][1] >= t[s][i][0],
                           "queue %d task %d has no valid stamps (%.6f, %.6f)", s, i, t[s][i][0],
                           t[s][i][1]);
            if (i == 0) continue;
            if (s == 2) {
                control_overlaps += t[s][i][0] < t[s][i - 1][1];
                continue;
            }
            ok &= SC_CHECK(t[s][i][0] >= t[s][i - 1][1],
                           "queue %d: task %d (rank %d) started %.6f s before task %d (rank %d) "
                           "ended",
                           s, i, (i + s) % size, t[s][i - 1][1] - t[s][i][0], i - 1,
                           (i - 1 + s) % size);
        }
    }
    sc_result("queue", ok, "size=%d threads=%d n=%d control_overlaps=%d", size, dagr_threads(ctx),
              n, control_overlaps);
    SC_EXPECT_STATUS(dagr_finalize(&ctx), DAGR_OK);
    return sc_exit_code();
}
