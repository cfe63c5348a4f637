/* The application owns MPI: MPI_Init_thread(MULTIPLE), several dagr contexts in a row (one
 * over a sub-communicator), MPI usable after each dagr_finalize: tests/mpi/app_mpi.c. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "mpirun.h"

static void app_mpi(int nranks) {
    mpirun_t r;
    mpirun(&r, nranks, "DAGR_THREADS=1", 90, "app_mpi", NULL);
    mpirun_assert_clean(&r);
    mpirun_assert_result(&r, "app_first", 1);
    mpirun_assert_result(&r, "app_split", 1);
    mpirun_assert_result(&r, "app_again", 1);
    mpirun_assert_result(&r, "app_mpi_after", 1);
    mpirun_free(&r);
}

Test(lib_app_mpi, one_rank, .timeout = 200) {
    app_mpi(1);
}
Test(lib_app_mpi, two_ranks, .timeout = 200) {
    app_mpi(2);
}
Test(lib_app_mpi, three_ranks, .timeout = 200) {
    app_mpi(3);
}
Test(lib_app_mpi, four_ranks, .timeout = 200) {
    app_mpi(4);
}
