/* Randomized stress of lib/ (dependencies, data movement, attach, queues, priorities):
 * tests/mpi/stress.c run at 1-4 ranks, several seeds, one and two worker threads, and with
 * the knobs that force the rarer paths: DAGR_COMM_SHM=0 (MPI one-sided transfers instead of
 * shared memory between ranks of one node), a tiny DAGR_COMM_ARENA (transfers that do not fit
 * the receive arena), a tiny DAGR_MAX_PENDING (dagr_spawn waiting for room). */
#include <criterion/criterion.h>
#include <stdio.h>

#include "mpirun.h"

#define NTASKS 300 /* per phase; two phases per seed */
#define NHANDLES 40

static void stress_n(int nranks, const char *env, int threads, const char *seeds, int nseeds,
                     int ntasks, int nhandles) {
    char fullenv[256], args[128];
    snprintf(fullenv, sizeof fullenv, "DAGR_THREADS=%d %s", threads, env);
    snprintf(args, sizeof args, "%d %d %s", ntasks, nhandles, seeds);
    mpirun_t r;
    mpirun(&r, nranks, fullenv, 150, "stress", args);
    mpirun_assert_clean(&r);
    mpirun_assert_result(&r, "stress", nseeds);
    for (int rank = 0; rank < nranks; rank++) {
        for (int s = 0; s < nseeds; s++) {
            const char *line = mpirun_line(&r, rank, "RESULT stress", s);
            long mism = -1, ran = -1, size = -1, th = -1;
            cr_assert(mpirun_value(line, "mismatches", &mism) && mpirun_value(line, "ran", &ran) &&
                          mpirun_value(line, "size", &size) && mpirun_value(line, "threads", &th),
                      "rank %d: malformed result line\n%s", rank, mpirun_tail(&r));
            cr_expect_eq(mism, 0, "rank %d seed #%d: %ld mismatches", rank, s, mism);
            cr_expect_eq(ran, 2 * ntasks, "rank %d seed #%d: %ld tasks ran, %d inserted", rank, s,
                         ran, 2 * ntasks);
            cr_expect_eq(size, nranks, "rank %d: world size %ld", rank, size);
            cr_expect_eq(th, threads, "rank %d: %ld threads, DAGR_THREADS=%d", rank, th, threads);
        }
    }
    mpirun_free(&r);
}

static void stress(int nranks, const char *env, int threads, const char *seeds, int nseeds) {
    stress_n(nranks, env, threads, seeds, nseeds, NTASKS, NHANDLES);
}

Test(lib_stress, one_rank, .timeout = 300) {
    stress(1, "", 1, "1 2 3", 3);
}
Test(lib_stress, two_ranks, .timeout = 300) {
    stress(2, "", 1, "1 2 3", 3);
}
Test(lib_stress, three_ranks, .timeout = 300) {
    stress(3, "", 1, "4 5 6", 3);
}
Test(lib_stress, four_ranks, .timeout = 300) {
    stress(4, "", 1, "7 8", 2);
}
Test(lib_stress, one_rank_two_threads, .timeout = 300) {
    stress(1, "", 2, "11 12 13", 3);
}
Test(lib_stress, two_ranks_two_threads, .timeout = 300) {
    stress(2, "", 2, "14 15 16", 3);
}
Test(lib_stress, three_ranks_two_threads, .timeout = 300) {
    stress(3, "", 2, "17", 1);
}
Test(lib_stress, two_ranks_mpi_path, .timeout = 300) {
    stress(2, "DAGR_COMM_SHM=0", 1, "21 22", 2);
}
Test(lib_stress, three_ranks_mpi_path_two_threads, .timeout = 300) {
    stress(3, "DAGR_COMM_SHM=0", 2, "23", 1);
}
Test(lib_stress, two_ranks_tiny_arena, .timeout = 300) {
    stress(2, "DAGR_COMM_ARENA=4096", 1, "31 32", 2);
}
Test(lib_stress, two_ranks_tiny_arena_mpi_path, .timeout = 300) {
    stress(2, "DAGR_COMM_ARENA=4096 DAGR_COMM_SHM=0", 2, "33", 1);
}
Test(lib_stress, two_ranks_tiny_max_pending, .timeout = 300) {
    stress(2, "DAGR_MAX_PENDING=4", 1, "41 42", 2);
}
Test(lib_stress, one_rank_tiny_max_pending, .timeout = 300) {
    stress(1, "DAGR_MAX_PENDING=1", 2, "43", 1);
}
/* Few handles: long dependency chains hopping between ranks, many readers per version. */
Test(lib_stress, three_ranks_few_handles, .timeout = 300) {
    stress_n(3, "", 2, "51 52", 2, NTASKS, 6);
}
Test(lib_stress, two_ranks_long, .timeout = 300) {
    stress_n(2, "", 2, "61 62", 2, 3000, 30);
}
