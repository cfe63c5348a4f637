/* Large handles (MiB, odd sizes) moving between ranks: tests/mpi/bigdata.c at 1-4 ranks,
 * through shared memory and through MPI one-sided transfers (DAGR_COMM_SHM=0), with the
 * default receive arena and with one too small for the data (DAGR_COMM_ARENA=64K). */
#include <criterion/criterion.h>
#include <stdio.h>

#include "mpirun.h"

static void bigdata(int nranks, const char *env) {
    char fullenv[256];
    snprintf(fullenv, sizeof fullenv, "DAGR_THREADS=1 %s", env);
    mpirun_t r;
    mpirun(&r, nranks, fullenv, 120, "bigdata", "6");
    mpirun_assert_clean(&r);
    mpirun_assert_result(&r, "bigdata", 1);
    mpirun_free(&r);
}

Test(lib_transfer, one_rank, .timeout = 200) {
    bigdata(1, "");
}
Test(lib_transfer, two_ranks, .timeout = 200) {
    bigdata(2, "");
}
Test(lib_transfer, three_ranks, .timeout = 200) {
    bigdata(3, "");
}
Test(lib_transfer, four_ranks, .timeout = 200) {
    bigdata(4, "");
}
Test(lib_transfer, two_ranks_mpi_path, .timeout = 200) {
    bigdata(2, "DAGR_COMM_SHM=0");
}
Test(lib_transfer, three_ranks_mpi_path, .timeout = 200) {
    bigdata(3, "DAGR_COMM_SHM=0");
}
Test(lib_transfer, two_ranks_small_arena, .timeout = 200) {
    bigdata(2, "DAGR_COMM_ARENA=64K");
}
Test(lib_transfer, three_ranks_small_arena_mpi_path, .timeout = 200) {
    bigdata(3, "DAGR_COMM_ARENA=64K DAGR_COMM_SHM=0");
}
