/* In-order queues across ranks: tests/mpi/queue.c at 1-4 ranks, two worker threads (so that
 * tasks without a queue do overlap on a rank). */
#include <criterion/criterion.h>
#include <stdio.h>

#include "mpirun.h"

static void queue(int nranks, int threads) {
    char env[64];
    snprintf(env, sizeof env, "DAGR_THREADS=%d", threads);
    mpirun_t r;
    mpirun(&r, nranks, env, 90, "queue", "12");
    mpirun_assert_clean(&r);
    mpirun_assert_result(&r, "queue", 1);
    mpirun_free(&r);
}

Test(lib_queue, one_rank, .timeout = 200) {
    queue(1, 2);
}
Test(lib_queue, two_ranks, .timeout = 200) {
    queue(2, 2);
}
Test(lib_queue, three_ranks, .timeout = 200) {
    queue(3, 2);
}
Test(lib_queue, four_ranks, .timeout = 200) {
    queue(4, 1);
}

/* The control group of the scenario (same tasks, no queue) must overlap on one rank with two
 * threads; otherwise the scenario could not tell a queue from no queue. */
Test(lib_queue, control_overlaps_without_queue, .timeout = 200) {
    mpirun_t r;
    mpirun(&r, 1, "DAGR_THREADS=2", 90, "queue", "12");
    mpirun_assert_clean(&r);
    long overlaps = -1;
    cr_assert(mpirun_value(mpirun_line(&r, 0, "RESULT queue", 0), "control_overlaps", &overlaps),
              "%s", mpirun_tail(&r));
    cr_expect_gt(overlaps, 0, "tasks without a queue never overlapped with two workers:\n%s",
                 mpirun_tail(&r));
    mpirun_free(&r);
}
