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

/* Tasks naming 200 accesses (duplicates included) over handles of every rank: tests/mpi/wide.c
 * against a serial replay, at 1-4 ranks, and with more accesses than the pairwise merge
 * handles (a hash table then). */
static void wide(int nranks, const char *nacc, const char *env) {
    mpirun_t r;
    mpirun(&r, nranks, env, 120, "wide", nacc);
    mpirun_assert_clean(&r);
    mpirun_assert_result(&r, "wide", 1);
    mpirun_free(&r);
}

Test(lib_deps, wide_tasks_one_rank, .timeout = 200) {
    wide(1, "200", "DAGR_THREADS=2");
}
Test(lib_deps, wide_tasks_two_ranks, .timeout = 200) {
    wide(2, "200", "DAGR_THREADS=1");
}
Test(lib_deps, wide_tasks_three_ranks_off_node, .timeout = 200) {
    wide(3, "200", "DAGR_THREADS=1 DAGR_COMM_SHM=0");
}
Test(lib_deps, wide_tasks_four_ranks_many, .timeout = 200) {
    wide(4, "1000", "DAGR_THREADS=1");
}
