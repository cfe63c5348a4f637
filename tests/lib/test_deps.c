/* Write-after-read, write-after-write and read-after-write across ranks: tests/mpi/deps.c
 * at 1-4 ranks with one and two worker threads, and over MPI one-sided transfers
 * (DAGR_COMM_SHM=0) instead of shared memory. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "mpirun.h"

static void deps(int nranks, int threads, const char *more_env) {
    char env[128];
    snprintf(env, sizeof env, "DAGR_THREADS=%d %s", threads, more_env);
    mpirun_t r;
    mpirun(&r, nranks, env, 90, "deps", "3");
    mpirun_assert_clean(&r);
    mpirun_assert_result(&r, "war", 1);
    mpirun_assert_result(&r, "raw_cache", 1);
    mpirun_assert_result(&r, "waw", 1);
    mpirun_assert_result(&r, "rwchain", 1);
    mpirun_free(&r);
}

Test(lib_deps, one_rank_one_thread, .timeout = 200) {
    deps(1, 1, "");
}
Test(lib_deps, one_rank_two_threads, .timeout = 200) {
    deps(1, 2, "");
}
Test(lib_deps, two_ranks_one_thread, .timeout = 200) {
    deps(2, 1, "");
}
Test(lib_deps, two_ranks_two_threads, .timeout = 200) {
    deps(2, 2, "");
}
Test(lib_deps, three_ranks, .timeout = 200) {
    deps(3, 1, "");
}
Test(lib_deps, four_ranks, .timeout = 200) {
    deps(4, 1, "");
}
Test(lib_deps, two_ranks_mpi_path, .timeout = 200) {
    deps(2, 2, "DAGR_COMM_SHM=0");
}
Test(lib_deps, three_ranks_mpi_path, .timeout = 200) {
    deps(3, 1, "DAGR_COMM_SHM=0");
}
