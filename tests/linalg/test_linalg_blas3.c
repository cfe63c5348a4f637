/* BLAS 3 on DArrays at 1-4 ranks over several grids, sizes that the tiles do not divide, tall
 * and wide shapes and tiny tiles (tests/linalg/linalg_blas3.c checks each routine against
 * serial CBLAS on the gathered matrices, for double and float, and that a NaN or an Inf in the
 * input gives DAGR_ERR_NONFINITE naming the routine while a NaN it must not read does not). */
#include <criterion/criterion.h>

#include "mpirun.h"

static void blas3(int nranks, const char *args) {
    mpirun_t r;
    mpirun(&r, nranks, NULL, 240, "linalg_blas3", args);
    mpirun_assert_clean(&r);
    const char *names[] = {"gemm", "gemm_view", "syrk", "symm", "trsm", "trmm", "nonfinite"};
    for (size_t k = 0; k < sizeof names / sizeof *names; k++)
        mpirun_assert_result(&r, names[k], 2);
    mpirun_assert_result(&r, "errors", 1);
    mpirun_assert_result(&r, "tile_size", 1);
    mpirun_free(&r);
}

/* args: P Q M N K NB */
Test(linalg_blas3, one_rank, .timeout = 300) {
    blas3(1, "1 1 37 29 23 8");
    blas3(1, "1 1 17 13 11 3"); /* tiny tiles */
    blas3(1, "1 1 5 6 4 16");   /* one tile */
}

Test(linalg_blas3, two_ranks, .timeout = 300) {
    blas3(2, "1 2 37 50 19 8"); /* wide */
    blas3(2, "2 1 50 21 31 5"); /* tall */
}

Test(linalg_blas3, three_ranks, .timeout = 300) {
    blas3(3, "1 3 23 31 17 5");
}

Test(linalg_blas3, four_ranks, .timeout = 300) {
    blas3(4, "2 2 29 26 33 6");
    blas3(4, "2 2 9 10 0 3"); /* k = 0: C = beta C */
}
