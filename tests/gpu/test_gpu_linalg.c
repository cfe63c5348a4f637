/* On a GPU (skipped, as Criterion's skips, where the rank has none): LU and QR with tiles on
 * the GPU (their kernels that have device bodies run there), checked by the residuals of the
 * CPU tests (tests/linalg/linalg_lu.c, linalg_qr.c) on the gathered matrices, each < 60:
 *   getrf  ||P A - L U||_1 / (||A||_1 n eps)
 *   gesv   ||B - A X||_1 / (||A||_1 ||X||_1 n eps)
 *   geqrf  ||A - Q R||_1 / (||A||_1 m eps) and ||I - Q^T Q||_1 / (m eps) (Q from dagr_orgqr)
 *   gels   ||A^T (B - A X)||_1 / (||A||_1 (||A||_1 ||X||_1 + ||B||_1) m eps) (m > n)
 * and some tasks ran on the GPU. Sizes that do not divide by the tile; one rank. */
#include <criterion/criterion.h>
#include <cblas.h>
#include <dagr/dagr.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_ctx.h"
TestSuite(gpu_linalg, .init = setup, .fini = teardown, .timeout = 240);

enum { NB = 256 };

static dagr_darray_t *make(int64_t m, int64_t n) {
    dagr_darray_t *X = NULL;
    cr_assert_eq(dagr_darray_create(ctx, DAGR_DOUBLE, m, n, NB, NB, dagr_grid_2d(1, 1), &X),
                 DAGR_OK, "%s", dagr_last_error());
    return X;
}
static double *gather(const dagr_darray_t *X) {
    int64_t m = dagr_darray_rows(X), n = dagr_darray_cols(X);
    double *x = malloc(sizeof *x * (size_t)(m * n));
    cr_assert(x);
    cr_assert_eq(dagr_darray_gather(X, x, m, 0), DAGR_OK, "%s", dagr_last_error());
    return x;
}
static double norm1(const double *x, int64_t m, int64_t n) {
    double best = 0;
    for (int64_t j = 0; j < n; j++) {
        double s = 0;
        for (int64_t i = 0; i < m; i++)
            s += fabs(x[i + j * m]);
        best = fmax(best, s);
    }
    return best;
}
static void expect_on_gpu(void) {
    uint64_t n = gpu_tasks();
    cr_expect_gt(n, 0, "no task ran on the GPU");
    cr_log_info("%llu tasks on the GPU", (unsigned long long)n);
}

/* Adds n to the diagonal: well conditioned, pivots still move rows (random off-diagonal). */
static void dominant(const dagr_tile_t *in, dagr_tile_t *out, void *user) {
    double add = *(const double *)user;
    for (int64_t c = 0; c < in->cols; c++)
        for (int64_t r = 0; r < in->rows; r++)
            ((double *)out->data)[r + c * out->ld] =
                ((const double *)in->data)[r + c * in->ld] + (in->i0 + r == in->j0 + c ? add : 0);
}

Test(gpu_linalg, getrf_residual) {
    const int64_t n = 1300;
    dagr_darray_t *A = make(n, n);
    cr_assert_eq(dagr_darray_random(A, 5), DAGR_OK);
    double *a0 = gather(A);
    dagr_pivots_t *piv = NULL;
    cr_assert_eq(dagr_getrf(A, &piv), DAGR_OK, "%s", dagr_last_error());
    cr_assert_eq(dagr_wait_all(ctx), DAGR_OK, "%s", dagr_last_error());
    int64_t *ipiv = malloc(sizeof *ipiv * (size_t)n);
    cr_assert(ipiv);
    cr_assert_eq(dagr_pivots_fetch(piv, ipiv), DAGR_OK, "%s", dagr_last_error());
    double *lu = gather(A), *l = calloc((size_t)(n * n), sizeof *l);
    double *u = calloc((size_t)(n * n), sizeof *u);
    cr_assert(l && u);
    for (int64_t j = 0; j < n; j++)
        for (int64_t i = 0; i < n; i++) {
            if (i > j) l[i + j * n] = lu[i + j * n];
            if (i == j) l[i + j * n] = 1;
            if (i <= j) u[i + j * n] = lu[i + j * n];
        }
    double anorm = norm1(a0, n, n);
    for (int64_t i = 0; i < n; i++) { /* P A: the interchanges in order */
        int64_t p = ipiv[i] - 1;
        cr_assert(p >= i && p < n, "ipiv[%lld] = %lld", (long long)i, (long long)ipiv[i]);
        if (p != i) cblas_dswap((int)n, a0 + i, (int)n, a0 + p, (int)n);
    }
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)n, (int)n, -1.0, l, (int)n,
                u, (int)n, 1.0, a0, (int)n);
    double res = norm1(a0, n, n) / (anorm * (double)n * DBL_EPSILON);
    cr_expect(res < 60, "||P A - L U|| / (||A|| n eps) = %g", res);
    cr_log_info("getrf residual %g", res);
    expect_on_gpu();
    free(a0), free(lu), free(l), free(u), free(ipiv);
    dagr_pivots_destroy(&piv);
    dagr_darray_destroy(&A);
}

Test(gpu_linalg, gesv_residual) {
    const int64_t n = 1500, nrhs = 100;
    dagr_darray_t *A = make(n, n), *B = make(n, nrhs);
    double add = (double)n;
    cr_assert_eq(dagr_darray_random(A, 6), DAGR_OK);
    cr_assert_eq(dagr_darray_map(A, A, dominant, &add), DAGR_OK);
    cr_assert_eq(dagr_darray_random(B, 7), DAGR_OK);
    double *a0 = gather(A), *b0 = gather(B);
    cr_assert_eq(dagr_gesv(A, B), DAGR_OK, "%s", dagr_last_error());
    cr_assert_eq(dagr_wait_all(ctx), DAGR_OK, "%s", dagr_last_error());
    double *x = gather(B);
    double anorm = norm1(a0, n, n), xnorm = norm1(x, n, nrhs);
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)nrhs, (int)n, -1.0, a0,
                (int)n, x, (int)n, 1.0, b0, (int)n);
    double res = norm1(b0, n, nrhs) / (anorm * xnorm * (double)n * DBL_EPSILON);
    cr_expect(res < 60, "||B - A X|| / (||A|| ||X|| n eps) = %g", res);
    cr_log_info("gesv residual %g", res);
    expect_on_gpu();
    free(a0), free(b0), free(x);
    dagr_darray_destroy(&A);
    dagr_darray_destroy(&B);
}

Test(gpu_linalg, geqrf_residual) {
    const int64_t m = 1500, n = 1100;
    dagr_darray_t *A = make(m, n), *Q = make(m, n);
    cr_assert_eq(dagr_darray_random(A, 8), DAGR_OK);
    double *a0 = gather(A);
    dagr_qr_t *qr = NULL;
    cr_assert_eq(dagr_geqrf(A, &qr), DAGR_OK, "%s", dagr_last_error());
    cr_assert_eq(dagr_orgqr(A, qr, Q), DAGR_OK, "%s", dagr_last_error());
    cr_assert_eq(dagr_wait_all(ctx), DAGR_OK, "%s", dagr_last_error());
    double *f = gather(A), *q = gather(Q), *r = calloc((size_t)(n * n), sizeof *r);
    double *e = calloc((size_t)(n * n), sizeof *e);
    cr_assert(r && e);
    for (int64_t j = 0; j < n; j++)
        for (int64_t i = 0; i <= j; i++)
            r[i + j * n] = f[i + j * m];
    double anorm = norm1(a0, m, n);
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)n, -1.0, q, (int)m,
                r, (int)n, 1.0, a0, (int)m);
    double res = norm1(a0, m, n) / (anorm * (double)m * DBL_EPSILON);
    for (int64_t i = 0; i < n; i++)
        e[i + i * n] = 1;
    cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, (int)n, (int)n, (int)m, -1.0, q, (int)m, q,
                (int)m, 1.0, e, (int)n);
    double orth = norm1(e, n, n) / ((double)m * DBL_EPSILON);
    cr_expect(res < 60, "||A - Q R|| / (||A|| m eps) = %g", res);
    cr_expect(orth < 60, "||I - Q^T Q|| / (m eps) = %g", orth);
    cr_log_info("geqrf residual %g orthogonality %g", res, orth);
    expect_on_gpu();
    free(a0), free(f), free(q), free(r), free(e);
    dagr_qr_destroy(&qr);
    dagr_darray_destroy(&A);
    dagr_darray_destroy(&Q);
}

Test(gpu_linalg, gels_residual) {
    const int64_t m = 1500, n = 900, nrhs = 40;
    dagr_darray_t *A = make(m, n), *B = make(m, nrhs);
    cr_assert_eq(dagr_darray_random(A, 9), DAGR_OK);
    cr_assert_eq(dagr_darray_random(B, 10), DAGR_OK);
    double *a = gather(A), *b = gather(B);
    cr_assert_eq(dagr_gels(A, B), DAGR_OK, "%s", dagr_last_error());
    cr_assert_eq(dagr_wait_all(ctx), DAGR_OK, "%s", dagr_last_error());
    double *xb = gather(B), *x = malloc(sizeof *x * (size_t)(n * nrhs));
    double *atr = calloc((size_t)(n * nrhs), sizeof *atr);
    cr_assert(x && atr);
    for (int64_t j = 0; j < nrhs; j++) /* X is the first n rows of B */
        memcpy(x + j * n, xb + j * m, sizeof *x * (size_t)n);
    double anorm = norm1(a, m, n), bnorm = norm1(b, m, nrhs), xnorm = norm1(x, n, nrhs);
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)nrhs, (int)n, -1.0, a,
                (int)m, x, (int)n, 1.0, b, (int)m); /* b := B - A X */
    cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, (int)n, (int)nrhs, (int)m, 1.0, a, (int)m,
                b, (int)m, 0.0, atr, (int)n);
    double res = norm1(atr, n, nrhs) / (anorm * (anorm * xnorm + bnorm) * (double)m * DBL_EPSILON);
    cr_expect(res < 60, "||A^T (B - A X)|| / (||A|| (||A|| ||X|| + ||B||) m eps) = %g", res);
    cr_log_info("gels residual %g", res);
    expect_on_gpu();
    free(a), free(b), free(xb), free(x), free(atr);
    dagr_darray_destroy(&A);
    dagr_darray_destroy(&B);
}
