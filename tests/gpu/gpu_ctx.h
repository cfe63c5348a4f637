/* The context of the real-GPU tests (tests/gpu): one rank's, made before each test and ended
 * after it; a test on a rank without a GPU is skipped (reported as skipped, never failed), with
 * dagr's reason. Include once per test program, after <criterion/criterion.h>. */
#ifndef DAGR_TESTS_GPU_CTX_H
#define DAGR_TESTS_GPU_CTX_H

#include <dagr/dagr.h>
#include <stdio.h>
#include <string.h>

static dagr_ctx_t *ctx;

static void setup(void) {
    cr_assert_eq(dagr_init(NULL, NULL, NULL, &ctx), DAGR_OK, "%s", dagr_last_error());
    dagr_job_info_t j;
    cr_assert_eq(dagr_job_info(ctx, &j), DAGR_OK);
    if (j.gpus == 0) {
        char why[256]; /* the note lives as long as the context */
        snprintf(why, sizeof why, "%s", j.gpu_note);
        dagr_finalize(&ctx);
        cr_skip_test("no GPU on this rank: %s", why);
    }
}
static void teardown(void) {
    if (ctx) dagr_finalize(&ctx);
}

/* Tasks the rank's GPUs ran so far: every device of kind "cuda" (test devices, which
 * DAGR_TEST_DEVICES may add, come first; a rank may have several GPUs). */
static inline uint64_t gpu_tasks(void) {
    uint64_t n = 0;
    for (int d = 0; d < dagr_devices(ctx); d++) {
        dagr_device_stats_t st;
        cr_assert_eq(dagr_device_stats(ctx, d, &st), DAGR_OK);
        if (!strcmp(st.kind, "cuda")) n += st.tasks;
    }
    return n;
}

#endif
