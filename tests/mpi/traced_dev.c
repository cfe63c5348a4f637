/* Traced scenario with test devices: tasks that run on a device, so that its copy thread copies
 * data in and out, for the test of the trace's device copy rows (tests/lib/test_trace.c; run
 * with DAGR_TEST_DEVICES and DAGR_TRACE).
 *
 * Usage: traced_dev STEPS
 *
 * Each rank owns HANDLES handles of N doubles. Each step inserts, for every rank r and each of
 * its handles, a "dev_scale" task on the device (x = x / 2 + 1) and then a "host_bump" task on
 * the host (x[0] += 1, which makes the device's copy stale, so that the next step copies in
 * again), and then a "dev_mix" task adding the next rank's first handle into r's last (a
 * transfer between ranks, read on the device at even steps, on the host at odd ones). Each rank
 * runs STEPS * (2 * HANDLES + 1) tasks. The final contents are checked against a serial replay.
 *
 * Prints: RANK r RESULT traced_dev ok|FAIL local=L bytes_in=I bytes_out=O copies_in=CI
 * copies_out=CO dev_tasks=T (I, O, CI, CO, T summed over the rank's devices from
 * dagr_device_stats, after the last copy). */
#include "scenario.h"

#include <stdio.h>
#include <stdlib.h>

#define HANDLES 3
#define N 2048 /* 16 KiB a handle */

static dagr_task_result_t dev_scale(const dagr_task_view_t *t) {
    double *x = t->buf[0];
    for (int i = 0; i < N; i++)
        x[i] = x[i] / 2 + 1;
    return DAGR_TASK_DONE;
}

static dagr_task_result_t host_bump(const dagr_task_view_t *t) {
    ((double *)t->buf[0])[0] += 1;
    return DAGR_TASK_DONE;
}

static dagr_task_result_t dev_mix(const dagr_task_view_t *t) {
    double *x = t->buf[0];
    const double *y = t->buf[1];
    for (int i = 0; i < N; i++)
        x[i] += y[i];
    return DAGR_TASK_DONE;
}

int main(int argc, char **argv) {
    int steps = argc > 1 ? atoi(argv[1]) : 5;
    dagr_ctx_t *ctx;
    SC_TRY(dagr_init(&argc, &argv, NULL, &ctx));
    int me = dagr_rank(ctx), P = dagr_size(ctx);
    sc_set_rank(me);
    const dagr_kernel_t ks = {.name = "dev_scale", .cpu = dev_scale},
                        kb = {.name = "host_bump", .cpu = host_bump},
                        km = {.name = "dev_mix", .cpu = dev_mix};
    dagr_data_t **h = calloc((size_t)P * HANDLES, sizeof *h);
    double *ref = calloc((size_t)P * HANDLES * N, sizeof *ref);
    for (int i = 0; i < P * HANDLES; i++)
        SC_TRY(dagr_data_create(ctx, N * sizeof(double), i / HANDLES, &h[i]));
    dagr_task_opts_t dev, host;
    dagr_task_opts_init(&dev);
    dagr_task_opts_init(&host);
    dev.where = DAGR_WHERE_DEVICE;
    host.where = DAGR_WHERE_CPU;
    for (int s = 0; s < steps; s++) {
        for (int i = 0; i < P * HANDLES; i++) {
            SC_TRY(dagr_spawn(ctx, &ks, NULL, 0, 1, &(dagr_access_t){h[i], DAGR_RW}, &dev));
            SC_TRY(dagr_spawn(ctx, &kb, NULL, 0, 1, &(dagr_access_t){h[i], DAGR_RW}, &host));
            double *x = ref + (size_t)i * N;
            for (int j = 0; j < N; j++)
                x[j] = x[j] / 2 + 1;
            x[0] += 1;
        }
        for (int r = 0; r < P; r++) {
            int dst = r * HANDLES + HANDLES - 1, src = ((r + 1) % P) * HANDLES;
            dagr_access_t acc[2] = {{h[dst], DAGR_RW}, {h[src], DAGR_READ}};
            /* On the device at even steps, on the host at odd ones: the summary then gives
             * this kernel's figures per class of worker. */
            SC_TRY(dagr_spawn(ctx, &km, NULL, 0, 2, acc, s % 2 ? &host : &dev));
            for (int j = 0; j < N; j++)
                ref[(size_t)dst * N + j] += ref[(size_t)src * N + j];
        }
    }
    SC_TRY(dagr_wait_all(ctx));
    int bad = 0;
    double *got = malloc(N * sizeof *got);
    for (int i = 0; i < P * HANDLES; i++) {
        SC_TRY(dagr_fetch(h[i], got, -1));
        int wrong = 0;
        for (int j = 0; j < N; j++)
            wrong += got[j] != ref[(size_t)i * N + j];
        bad +=
            !SC_CHECK(wrong == 0, "handle %d: %d of %d values differ from the replay", i, wrong, N);
    }
    for (int i = 0; i < P * HANDLES; i++)
        SC_TRY(dagr_data_destroy(&h[i]));
    /* Last, once nothing can copy any more: a fetch may first copy a device's newer copy out. */
    unsigned long long in = 0, out = 0, cin = 0, cout = 0, tasks = 0;
    for (int d = 0; d < dagr_devices(ctx); d++) {
        dagr_device_stats_t st;
        SC_TRY(dagr_device_stats(ctx, d, &st));
        in += st.bytes_in;
        out += st.bytes_out;
        cin += st.copies_in;
        cout += st.copies_out;
        tasks += st.tasks;
    }
    SC_TRY(dagr_finalize(&ctx));
    sc_result("traced_dev", bad == 0,
              "local=%d bytes_in=%llu bytes_out=%llu copies_in=%llu copies_out=%llu dev_tasks=%llu",
              steps * (2 * HANDLES + 1), in, out, cin, cout, tasks);
    free(got);
    free(h);
    free(ref);
    return sc_exit_code();
}
