/* Cholesky (potrf, potrs, posv) at 1-4 ranks over several grids, sizes that the tiles do not
 * divide and tiny tiles, with the failures (not positive definite, NaN, Inf) reported at the
 * wait on every rank with the global column, a NaN or an Inf in B as DAGR_ERR_NONFINITE naming
 * potrs or posv, a NaN in the triangle potrf does not read not reported
 * (tests/linalg/linalg_chol.c computes the LAPACK testers' residuals, for double and float,
 * lower and upper). */
#include <criterion/criterion.h>

#include "mpirun.h"

static void chol(int nranks, const char *args) {
    mpirun_t r;
    mpirun(&r, nranks, NULL, 240, "linalg_chol", args);
    mpirun_assert_clean(&r);
    mpirun_assert_result(&r, "potrf", 4);
    mpirun_assert_result(&r, "potrs", 4);
    mpirun_assert_result(&r, "posv", 4);
    mpirun_assert_result(&r, "not_spd", 2);
    mpirun_assert_result(&r, "nan_inf", 2);
    mpirun_assert_result(&r, "nonfinite", 2);
    mpirun_assert_result(&r, "potrf_view", 2);
    mpirun_assert_result(&r, "errors", 1);
    mpirun_free(&r);
}

/* args: P Q N NRHS NB */
Test(linalg_chol, one_rank, .timeout = 300) {
    chol(1, "1 1 37 5 8");
    chol(1, "1 1 20 3 3"); /* tiny tiles */
    chol(1, "1 1 6 2 16"); /* one tile */
}

Test(linalg_chol, two_ranks, .timeout = 300) {
    chol(2, "1 2 50 7 8");
    chol(2, "2 1 41 1 5");
}

Test(linalg_chol, three_ranks, .timeout = 300) {
    chol(3, "1 3 37 4 5");
}

Test(linalg_chol, four_ranks, .timeout = 300) {
    chol(4, "2 2 64 9 7");
    chol(4, "2 2 2 2 1"); /* 1 x 1 tiles */
}
