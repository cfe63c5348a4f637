/* Traced scenario: a known number of tasks of two kernels, with transfers between ranks, for
 * the tests of DAGR_TRACE, DAGR_DOT, DAGR_SUMMARY and DAGR_PROGRESS (tests/lib/test_trace.c).
 *
 * Usage: traced STEPS [SPIN_US]
 *
 * Each rank owns one handle of two doubles. Each step inserts, for every rank r, an "alpha"
 * task on r's handle (x[0] += 1, declaring 1000 flops) and then a "beta" task on r's handle
 * reading the next rank's (x[1] += next[0]), so every step moves data between neighbours.
 * Tasks spin SPIN_US microseconds (default 50) so that their durations are visible. Inserted:
 * 2 * STEPS * ranks tasks; each rank runs 2 * STEPS. The final contents are checked against a
 * serial replay.
 *
 * Prints: RANK r RESULT traced ok|FAIL local=L inserted=N */
#include "scenario.h"

#include <stdio.h>
#include <stdlib.h>

static int spin_us = 50;

static void spin(void) {
    double t0 = sc_now();
    while ((sc_now() - t0) * 1e6 < spin_us) {
    }
}

static dagr_task_result_t alpha(const dagr_task_view_t *t) {
    ((double *)t->buf[0])[0] += 1.0;
    spin();
    return DAGR_TASK_DONE;
}

static dagr_task_result_t beta(const dagr_task_view_t *t) {
    ((double *)t->buf[0])[1] += ((const double *)t->buf[1])[0];
    spin();
    return DAGR_TASK_DONE;
}

int main(int argc, char **argv) {
    int steps = argc > 1 ? atoi(argv[1]) : 10;
    if (argc > 2) spin_us = atoi(argv[2]);
    dagr_ctx_t *ctx;
    SC_TRY(dagr_init(&argc, &argv, NULL, &ctx));
    int me = dagr_rank(ctx), P = dagr_size(ctx);
    sc_set_rank(me);
    const dagr_kernel_t ka = {.name = "alpha", .cpu = alpha}, kb = {.name = "beta", .cpu = beta};
    dagr_data_t **h = calloc((size_t)P, sizeof *h);
    double(*ref)[2] = calloc((size_t)P, sizeof *ref);
    for (int r = 0; r < P; r++)
        SC_TRY(dagr_data_create(ctx, 2 * sizeof(double), r, &h[r]));
    dagr_task_opts_t fo;
    dagr_task_opts_init(&fo);
    fo.flops = 1000;
    for (int s = 0; s < steps; s++) {
        for (int r = 0; r < P; r++) {
            SC_TRY(dagr_spawn(ctx, &ka, NULL, 0, 1, &(dagr_access_t){h[r], DAGR_RW}, &fo));
            ref[r][0] += 1.0;
        }
        for (int r = 0; r < P; r++) {
            dagr_access_t acc[2] = {{h[r], DAGR_RW}, {h[(r + 1) % P], DAGR_READ}};
            SC_TRY(dagr_spawn(ctx, &kb, NULL, 0, 2, acc, NULL));
            ref[r][1] += ref[(r + 1) % P][0];
        }
    }
    int bad = 0;
    for (int r = 0; r < P; r++) {
        double got[2] = {0, 0};
        SC_TRY(dagr_fetch(h[r], got, -1));
        bad += !SC_CHECK(got[0] == ref[r][0] && got[1] == ref[r][1],
                         "handle %d holds (%g, %g), expected (%g, %g)", r, got[0], got[1],
                         ref[r][0], ref[r][1]);
    }
    for (int r = 0; r < P; r++)
        SC_TRY(dagr_data_destroy(&h[r]));
    SC_TRY(dagr_finalize(&ctx));
    sc_result("traced", bad == 0, "local=%d inserted=%d", 2 * steps, 2 * steps * P);
    free(h);
    free(ref);
    return sc_exit_code();
}
