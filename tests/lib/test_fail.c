/* Failing, erroring and retrying task bodies: tests/mpi/fail.c at 1-4 ranks. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "mpirun.h"

static const char *const checks[] = {
    "fail_status",  "fail_message",   "fail_poison",    "fail_independent",
    "fail_recover", "plain_error",    "retry",          "fetch_error",
    "after_error",  "reuse_poisoned", "finalize_error",
};

static void fail(int nranks, int threads, const char *more_env) {
    char env[128];
    snprintf(env, sizeof env, "DAGR_THREADS=%d %s", threads, more_env);
    mpirun_t r;
    mpirun(&r, nranks, env, 90, "fail", NULL);
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++)
        mpirun_assert_result(&r, checks[i], 1);
    mpirun_assert_clean(&r);
    mpirun_free(&r);
}

Test(lib_fail, one_rank, .timeout = 200) {
    fail(1, 1, "");
}
Test(lib_fail, two_ranks, .timeout = 200) {
    fail(2, 1, "");
}
Test(lib_fail, two_ranks_two_threads, .timeout = 200) {
    fail(2, 2, "");
}
Test(lib_fail, three_ranks, .timeout = 200) {
    fail(3, 1, "");
}
Test(lib_fail, four_ranks, .timeout = 200) {
    fail(4, 1, "");
}
Test(lib_fail, three_ranks_mpi_path, .timeout = 200) {
    fail(3, 1, "DAGR_COMM_SHM=0");
}
