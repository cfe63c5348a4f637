/* Tile QR, ormqr/orgqr and least squares at 1-4 ranks over several grids, shapes (square,
 * tall-skinny, wide, sizes not divisible by the tile size, tiny tiles) and both reduction
 * trees (tests/linalg/linalg_qr.c computes the LAPACK-style residuals and checks that NaN and
 * Inf give DAGR_ERR_NONFINITE naming the routine). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "mpirun.h"

/* Runs linalg_qr once with one or more problems "P Q M N NB IB VARIANT NRHS" (one launch:
 * starting dagr costs seconds at 3-4 ranks on 2 cores); every check of every problem must pass
 * on every rank. */
static void qr(int nranks, const char *args) {
    mpirun_t r;
    mpirun(&r, nranks, NULL, 120, "linalg_qr", args);
    mpirun_assert_clean(&r);
    mpirun_assert_result(&r, "qr_errors", 1);
    int problems = 0, gels = 0, lapack = 0, used = 0, p, q, m, n, nb, ib, v, nrhs;
    for (const char *a = args;
         sscanf(a, "%d %d %d %d %d %d %d %d%n", &p, &q, &m, &n, &nb, &ib, &v, &nrhs, &used) == 8;
         a += used) {
        problems++;
        gels += m >= n;   /* gels runs when M >= N */
        lapack += v == 3; /* LAPACK storage: against LAPACK's own geqrf and ormqr/orgqr */
    }
    cr_assert(problems > 0, "no problem in \"%s\"", args);
    mpirun_assert_result(&r, "qr", 2 * problems);
    mpirun_assert_result(&r, "qr_view", problems);
    mpirun_assert_result(&r, "ormqr", 2 * problems);
    mpirun_assert_result(&r, "qr_nonfinite", 2 * problems);
    mpirun_assert_result(&r, "gels", 2 * gels);
    mpirun_assert_result(&r, "qr_lapack", 2 * lapack);
    mpirun_assert_result(&r, "qr_from_hh", 2 * lapack);
    mpirun_free(&r);
}

Test(linalg_qr, one_rank, .timeout = 300) {
    qr(1, "1 1 37 29 8 4 2 3 "  /* flat, edge tiles */
          "1 1 200 20 8 3 0 2 " /* tall-skinny: the tree (one group per panel) */
          "1 1 13 30 5 2 0 2 "  /* wide */
          "1 1 23 23 3 2 1 4 "  /* tiny tiles, tree forced */
          "1 1 1 1 3 1 0 1 "    /* one element */
          "1 1 0 5 4 2 0 2");   /* empty */
}

Test(linalg_qr, two_ranks, .timeout = 300) {
    qr(2, "1 2 37 29 8 4 0 3 "
          "2 1 200 20 8 3 0 2 "  /* tree: two per-rank groups combined by TT */
          "2 1 31 31 5 40 2 2"); /* ib > nb (clamped) */
}

Test(linalg_qr, three_ranks, .timeout = 300) {
    qr(3, "1 3 31 17 5 2 1 3 "
          "3 1 46 9 5 5 1 2"); /* last tile row of 1 row: a short triangle in TT */
}

Test(linalg_qr, four_ranks, .timeout = 300) {
    qr(4, "2 2 200 20 8 3 1 2 "
          "4 1 101 12 4 2 0 2 " /* four groups per panel, short last tile row */
          "2 2 26 40 5 3 0 2 "  /* wide */
          "4 1 26 40 5 3 1 2"); /* wide, tree */
}

/* Variant 3 (LAPACK storage) at 1-4 ranks: tall, wide, square with a last tile of one row,
 * tiny tiles (several owners per tile column, so the partial sums of W are reduced), a stack
 * of more than LU_MAX_STACK tiles (gathered into one block for the panel). Tiles of 64 at one
 * rank; at 2-4 ranks the same shapes in tiles of 32 (5 x 4 and 4 x 5 tiles, more panels than
 * the lookahead), which cost a fraction of the time. */
Test(linalg_qr, householder_one_rank, .timeout = 300) {
    qr(1, "1 1 300 200 64 32 3 3 "
          "1 1 200 300 64 32 3 2 "
          "1 1 257 257 32 32 3 2 "
          "1 1 250 16 8 32 3 2 " /* 32 tile rows: the panel is gathered */
          "1 1 1 1 3 32 3 1 "
          "1 1 0 5 4 32 3 2");
}

Test(linalg_qr, householder_two_ranks, .timeout = 300) {
    qr(2, "1 2 130 100 32 32 3 3 "
          "2 1 100 130 32 32 3 2 "
          "2 1 97 97 32 32 3 2 "
          "2 1 37 29 8 32 0 3"); /* the default (tile form): no tau, no LAPACK checks */
}

Test(linalg_qr, householder_three_ranks, .timeout = 300) {
    qr(3, "3 1 130 100 32 32 3 3 "
          "1 3 97 97 32 32 3 2 "
          "3 1 46 9 5 32 3 2"); /* a last tile row of 1 row */
}

Test(linalg_qr, householder_four_ranks, .timeout = 300) {
    qr(4, "2 2 130 100 32 32 3 3 "
          "4 1 100 130 32 32 3 2 "
          "2 2 97 97 32 32 3 2 "
          "4 1 101 12 4 32 3 2"); /* four owners per tile column */
}
