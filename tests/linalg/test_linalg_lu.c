/* LU with partial pivoting at 1-4 ranks over several grids, square, tall and wide arrays, sizes
 * not divisible by the tile size, tiny tiles and more tile rows than one task can name
 * (tests/linalg/linalg_lu.c computes the residuals against serial LAPACK and checks the pivots, the
 * singular cases, NaN and Inf reported as DAGR_ERR_NONFINITE and the argument errors). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "mpirun.h"

/* Runs linalg_lu with "P Q M N NB [NRHS NBB]" and checks every expected result. */
static void lu(int nranks, const char *args) {
    int p, q;
    long m, n, nb;
    cr_assert_eq(sscanf(args, "%d %d %ld %ld %ld", &p, &q, &m, &n, &nb), 5);
    mpirun_t r;
    mpirun(&r, nranks, "DAGR_THREADS=2", 120, "linalg_lu", args);
    mpirun_assert_clean(&r);
    mpirun_assert_result(&r, "factor", 2);
    mpirun_assert_result(&r, "pivots", 2);
    long kmin = m < n ? m : n;
    if (kmin > 0) mpirun_assert_result(&r, "singular_col", 2);
    if (kmin > 0) mpirun_assert_result(&r, "nonfinite", 2);
    if (m == n && n > 0) {
        mpirun_assert_result(&r, "solve", 2);
        mpirun_assert_result(&r, "solve_trans", 2);
        mpirun_assert_result(&r, "singular_row", 2);
    }
    mpirun_assert_result(&r, "errors", 1);
    mpirun_free(&r);
}

Test(linalg_lu, one_rank, .timeout = 300) {
    lu(1, "1 1 37 37 5");
    lu(1, "1 1 40 23 3");     /* tall */
    lu(1, "1 1 23 40 8 4 3"); /* wide, one short tile row */
    lu(1, "1 1 64 64 16 5 16");
    lu(1, "1 1 100 100 3"); /* 34 tile rows: stacks gathered into one block */
}

Test(linalg_lu, two_ranks, .timeout = 300) {
    lu(2, "1 2 37 37 5");
    lu(2, "2 1 37 37 5");
    lu(2, "2 1 40 23 3");
    lu(2, "1 2 23 40 3");
    lu(2, "2 1 66 66 2 3 2"); /* 33 tile rows */
    lu(2, "1 2 100 20 3");
}

Test(linalg_lu, three_ranks, .timeout = 300) {
    lu(3, "1 3 37 37 5 4 3");
    lu(3, "1 3 50 17 4");
}

Test(linalg_lu, four_ranks, .timeout = 300) {
    lu(4, "2 2 37 37 5");
    lu(4, "2 2 17 50 4");
    lu(4, "2 2 45 45 3 2 5");
}

Test(linalg_lu, tiny_and_empty, .timeout = 300) {
    lu(2, "1 2 1 1 3");
    lu(2, "1 2 2 2 1");
    lu(2, "1 2 0 5 3");
    lu(2, "2 1 5 0 3");
}
