/* LU with partial pivoting against serial LAPACK, as LAPACK's testers judge it.
 *
 * Usage: linalg_lu P Q M N NB [NRHS NBB]
 *
 * On an M x N array of NB x NB tiles over a P x Q block-cyclic grid, for double and float:
 *   factor       (getrf_ex) ||P A - L U||_1 / (||A||_1 n eps) < 60 from the gathered L, U and ipiv;
 *   pivots       ipiv equals serial LAPACKE getrf's on the gathered matrix (ties improbable);
 *   singular_col a zero column c: DAGR_ERR_SINGULAR naming column c + 1 on every rank;
 * and when M == N, with an M x NRHS right-hand side of NB x NBB tiles:
 *   solve        gesv: ||B - A X||_1 / (||A||_1 ||X||_1 n eps) < 60;
 *   solve_trans  getrs(TRANS) after getrf: the same with A^T;
 *   singular_row a zero row: DAGR_ERR_SINGULAR naming column N;
 * and, when min(M, N) > 0, nonfinite: a NaN in A gives DAGR_ERR_NONFINITE naming getrf (and,
 * square, gesv), an Inf or a NaN in B naming gesv or getrs, and gesv on a zero row still
 * DAGR_ERR_SINGULAR; once: errors (shape, tile and dtype mismatches give DAGR_ERR_ARG).
 *
 * Prints RANK r RESULT <name> ok|FAIL ... lines. */
#include "scenario.h"

#include <cblas.h>
#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static dagr_ctx_t *ctx;
static int P, Q;
static int64_t M, N, NB, NRHS = 3, NBB = 2;

static dagr_darray_t *random_array(dagr_dtype_t t, int64_t m, int64_t n, int64_t mb, int64_t nb,
                                   uint64_t seed) {
    dagr_darray_t *A = NULL;
    SC_TRY(dagr_darray_create(ctx, t, m, n, mb, nb, dagr_grid_2d(P, Q), &A));
    SC_TRY(dagr_darray_random(A, seed));
    return A;
}

/* ||P A - L U||_1 / (||A||_1 n eps) from the original A0 and the factored LU (m x n). */
static double factor_residual(const double *A0, const double *LU, const int64_t *ipiv, int64_t m,
                              int64_t n, double eps) {
    int64_t kmin = m < n ? m : n, ld = sc_ld(m);
    double *PA = malloc(sizeof(double) * (size_t)(ld * n + 1));
    double *L = calloc((size_t)(ld * kmin + 1), sizeof(double));
    double *U = calloc((size_t)(sc_ld(kmin) * n + 1), sizeof(double));
    memcpy(PA, A0, sizeof(double) * (size_t)(ld * n));
    for (int64_t i = 0; i < kmin; i++) {
        int64_t p = ipiv[i] - 1;
        for (int64_t j = 0; j < n && p != i; j++) {
            double v = PA[i + j * ld];
            PA[i + j * ld] = PA[p + j * ld];
            PA[p + j * ld] = v;
        }
    }
    for (int64_t j = 0; j < kmin; j++)
        for (int64_t i = 0; i < m; i++)
            L[i + j * ld] = i == j ? 1 : i > j ? LU[i + j * ld] : 0;
    for (int64_t j = 0; j < n; j++)
        for (int64_t i = 0; i < kmin && i <= j; i++)
            U[i + j * sc_ld(kmin)] = LU[i + j * ld];
    if (kmin > 0)
        cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)kmin, -1.0, L,
                    (int)ld, U, (int)sc_ld(kmin), 1.0, PA, (int)ld);
    double an = sc_norm1(A0, m, n, ld), rn = sc_norm1(PA, m, n, ld);
    free(PA);
    free(L);
    free(U);
    if (an == 0) return rn;
    return rn / (an * (double)(n > 0 ? n : 1) * eps);
}

/* ||B - op(A) X||_1 / (||A||_1 ||X||_1 n eps). */
static double solve_residual(const double *A, const double *B, const double *X, int trans,
                             int64_t n, int64_t nrhs, double eps) {
    int64_t ld = sc_ld(n);
    double *R = malloc(sizeof(double) * (size_t)(ld * nrhs + 1));
    memcpy(R, B, sizeof(double) * (size_t)(ld * nrhs));
    cblas_dgemm(CblasColMajor, trans ? CblasTrans : CblasNoTrans, CblasNoTrans, (int)n, (int)nrhs,
                (int)n, -1.0, A, (int)ld, X, (int)ld, 1.0, R, (int)ld);
    double rn = sc_norm1(R, n, nrhs, ld), an = sc_norm1(A, n, n, ld), xn = sc_norm1(X, n, nrhs, ld);
    free(R);
    if (an == 0 || xn == 0) return rn;
    return rn / (an * xn * (double)n * eps);
}

static void test_factor(dagr_dtype_t t) {
    dagr_darray_t *A = random_array(t, M, N, NB, NB, 11);
    double *A0 = sc_gather(A);
    int64_t kmin = M < N ? M : N;
    int64_t *ipiv = calloc((size_t)kmin + 1, sizeof *ipiv);
    dagr_pivots_t *piv = NULL;
    /* the float run also covers the _ex form (no lookahead); getrf has no inner blocking, so
     * an inner block size is refused rather than ignored, and nothing is inserted */
    dagr_linalg_opts_t opts;
    dagr_linalg_opts_init(&opts);
    if (t == DAGR_FLOAT) {
        dagr_linalg_opts_t bad = opts;
        bad.ib = 7;
        SC_EXPECT_STATUS(dagr_getrf_ex(A, &piv, &bad), DAGR_ERR_ARG);
        SC_CHECK(strstr(dagr_last_error(), "opts->ib"), "message: %s", dagr_last_error());
        SC_CHECK(piv == NULL, "a refused getrf_ex made pivots");
        opts.lookahead = 0;
    }
    SC_TRY(dagr_getrf_ex(A, &piv, &opts));
    SC_TRY(dagr_wait_all(ctx));
    SC_TRY(dagr_pivots_fetch(piv, ipiv));
    double *LU = sc_gather(A);
    double res = factor_residual(A0, LU, ipiv, M, N, sc_eps(t));
    sc_result("factor", res < 60, "dtype=%s resid=%.3g", sc_dtype_name(t), res);

    /* serial LAPACK on the gathered matrix, in A's own precision */
    int64_t ld = sc_ld(M);
    lapack_int *ref = calloc((size_t)kmin + 1, sizeof *ref);
    lapack_int info;
    if (t == DAGR_DOUBLE) {
        double *w = malloc(sizeof(double) * (size_t)(ld * N + 1));
        memcpy(w, A0, sizeof(double) * (size_t)(ld * N));
        info =
            LAPACKE_dgetrf(LAPACK_COL_MAJOR, (lapack_int)M, (lapack_int)N, w, (lapack_int)ld, ref);
        free(w);
    } else {
        float *w = malloc(sizeof(float) * (size_t)(ld * N + 1));
        for (int64_t k = 0; k < ld * N; k++)
            w[k] = (float)A0[k];
        info =
            LAPACKE_sgetrf(LAPACK_COL_MAJOR, (lapack_int)M, (lapack_int)N, w, (lapack_int)ld, ref);
        free(w);
    }
    long bad = 0;
    for (int64_t i = 0; i < kmin; i++)
        if (ipiv[i] != (int64_t)ref[i]) {
            if (bad < 3)
                sc_say("pivot %lld: got %lld, LAPACK %d", (long long)i, (long long)ipiv[i],
                       (int)ref[i]);
            bad++;
        }
    sc_result("pivots", bad == 0 && info == 0, "dtype=%s mismatches=%ld info=%d", sc_dtype_name(t),
              bad, (int)info);
    SC_TRY(dagr_pivots_destroy(&piv));
    SC_CHECK(piv == NULL, "pivots_destroy sets NULL");
    SC_TRY(dagr_darray_destroy(&A));
    free(A0);
    free(LU);
    free(ipiv);
    free(ref);
}

static void test_solve(dagr_dtype_t t) {
    dagr_darray_t *A = random_array(t, N, N, NB, NB, 21);
    dagr_darray_t *B = random_array(t, N, NRHS, NB, NBB, 22);
    double *A0 = sc_gather(A), *B0 = sc_gather(B);
    SC_TRY(dagr_gesv(A, B));
    double *X = sc_gather(B);
    double res = solve_residual(A0, B0, X, 0, N, NRHS, sc_eps(t));
    sc_result("solve", res < 60, "dtype=%s resid=%.3g", sc_dtype_name(t), res);
    free(X);

    /* getrs with the transpose, after getrf, in one graph */
    SC_TRY(dagr_darray_random(A, 21));
    SC_TRY(dagr_darray_random(B, 23));
    double *B1 = sc_gather(B);
    dagr_pivots_t *piv = NULL;
    SC_TRY(dagr_getrf(A, &piv));
    SC_TRY(dagr_getrs(DAGR_TRANS, A, piv, B));
    X = sc_gather(B);
    res = solve_residual(A0, B1, X, 1, N, NRHS, sc_eps(t));
    sc_result("solve_trans", res < 60, "dtype=%s resid=%.3g", sc_dtype_name(t), res);
    SC_TRY(dagr_pivots_destroy(&piv));
    SC_TRY(dagr_darray_destroy(&A));
    SC_TRY(dagr_darray_destroy(&B));
    free(A0);
    free(B0);
    free(B1);
    free(X);
}

typedef struct zero_at {
    int64_t row, col; /* -1: none */
    uint64_t seed;
} zero_at_t;

/* Uniform [0, 1) entries from a hash, except a zero row or column. */
static double zero_fn(int64_t i, int64_t j, void *user) {
    const zero_at_t *z = user;
    if (i == z->row || j == z->col) return 0;
    uint64_t h = sc_mix(z->seed ^ sc_mix((uint64_t)i * 0x100000001b3ull + (uint64_t)j));
    return (double)(h >> 11) * 0x1.0p-53;
}

/* Expects getrf of A (zero row or column per z) to report the singular column `want`. */
static void expect_singular(const char *name, dagr_dtype_t t, int64_t m, int64_t n, zero_at_t z,
                            int64_t want) {
    dagr_darray_t *A = NULL;
    SC_TRY(dagr_darray_create(ctx, t, m, n, NB, NB, dagr_grid_2d(P, Q), &A));
    SC_TRY(dagr_darray_from_fn(A, zero_fn, &z));
    dagr_pivots_t *piv = NULL;
    SC_TRY(dagr_getrf(A, &piv));
    dagr_status_t st = dagr_wait_all(ctx);
    long got = -1;
    const char *msg = dagr_last_error();
    const char *at = msg ? strstr(msg, "global column ") : NULL;
    if (at) got = strtol(at + strlen("global column "), NULL, 10);
    int ok = SC_CHECK(st == DAGR_ERR_SINGULAR, "status %s (%s)", dagr_status_str(st), msg) &&
             SC_CHECK(got == want, "column %ld, want %lld (%s)", got, (long long)want, msg);
    /* the factorization completed: the pivots can be read after the error */
    int64_t *ipiv = calloc((size_t)(m < n ? m : n) + 1, sizeof *ipiv);
    SC_TRY(dagr_pivots_fetch(piv, ipiv));
    free(ipiv);
    sc_result(name, ok, "dtype=%s column=%ld", sc_dtype_name(t), got);
    SC_TRY(dagr_pivots_destroy(&piv));
    SC_TRY(dagr_darray_destroy(&A));
}

/* The results of getrf, getrs and gesv are checked for NaN and Inf: a NaN or an Inf in A or
 * B gives DAGR_ERR_NONFINITE on every rank naming the routine; an exactly singular A in gesv
 * (whose solve divides by the zero pivot) still gives DAGR_ERR_SINGULAR. */
static void test_nonfinite(dagr_dtype_t t) {
    int ok = 1;
    int64_t r = M / 2, c = N / 2;
    dagr_darray_t *A = random_array(t, M, N, NB, NB, 31);
    double *a = sc_gather(A);
    a[r + c * sc_ld(M)] = NAN;
    sc_scatter(A, a);
    dagr_pivots_t *piv = NULL;
    SC_TRY(dagr_getrf(A, &piv));
    ok &= SC_EXPECT_WAIT(ctx, DAGR_ERR_NONFINITE, "getrf: the result has", "getrf, NaN in A");
    SC_TRY(dagr_pivots_destroy(&piv));
    if (M == N) {
        dagr_darray_t *B = random_array(t, N, NRHS, NB, NBB, 32);
        double *b = sc_gather(B);
        sc_scatter(A, a);
        SC_TRY(dagr_gesv(A, B));
        ok &= SC_EXPECT_WAIT(ctx, DAGR_ERR_NONFINITE, "gesv: the result has", "gesv, NaN in A");
        a[r + c * sc_ld(M)] = 0.5;
        b[(N - 1) + (NRHS - 1) * sc_ld(N)] = INFINITY;
        sc_scatter(A, a);
        sc_scatter(B, b);
        SC_TRY(dagr_gesv(A, B));
        ok &= SC_EXPECT_WAIT(ctx, DAGR_ERR_NONFINITE, "gesv: the result has", "gesv, Inf in B");
        /* getrs on a clean factorization, a NaN in B */
        b[(N - 1) + (NRHS - 1) * sc_ld(N)] = NAN;
        sc_scatter(A, a);
        sc_scatter(B, b);
        SC_TRY(dagr_getrf(A, &piv));
        ok &= SC_EXPECT_WAIT(ctx, DAGR_OK, NULL, "getrf, finite A");
        SC_TRY(dagr_getrs(DAGR_TRANS, A, piv, B));
        ok &= SC_EXPECT_WAIT(ctx, DAGR_ERR_NONFINITE, "getrs: the result has", "getrs, NaN in B");
        SC_TRY(dagr_pivots_destroy(&piv));
        /* a zero row: the zero pivot is what the wait reports, not the Inf it makes in X */
        zero_at_t z = {N / 3, -1, 6};
        SC_TRY(dagr_darray_from_fn(A, zero_fn, &z));
        SC_TRY(dagr_darray_random(B, 33));
        SC_TRY(dagr_gesv(A, B));
        ok &= SC_EXPECT_WAIT(ctx, DAGR_ERR_SINGULAR, "is exactly singular", "gesv, singular A");
        free(b);
        SC_TRY(dagr_darray_destroy(&B));
    }
    sc_result("nonfinite", ok, "dtype=%s", sc_dtype_name(t));
    free(a);
    SC_TRY(dagr_darray_destroy(&A));
}

static void test_errors(void) {
    int ok = 1;
    dagr_darray_t *A = NULL, *R = NULL, *Ii = NULL, *W = NULL, *B = NULL, *Bf = NULL;
    dagr_pivots_t *piv = NULL;
    SC_TRY(dagr_darray_create(ctx, DAGR_DOUBLE, 8, 8, 4, 4, dagr_grid_2d(P, Q), &A));
    SC_TRY(dagr_darray_create(ctx, DAGR_DOUBLE, 8, 8, 4, 2, dagr_grid_2d(P, Q), &R));
    SC_TRY(dagr_darray_create(ctx, DAGR_INT64, 8, 8, 4, 4, dagr_grid_2d(P, Q), &Ii));
    SC_TRY(dagr_darray_create(ctx, DAGR_DOUBLE, 8, 6, 4, 4, dagr_grid_2d(P, Q), &W));
    SC_TRY(dagr_darray_create(ctx, DAGR_DOUBLE, 8, 2, 2, 2, dagr_grid_2d(P, Q), &B));
    SC_TRY(dagr_darray_create(ctx, DAGR_FLOAT, 8, 2, 4, 2, dagr_grid_2d(P, Q), &Bf));
    ok &= SC_EXPECT_STATUS(dagr_getrf(R, &piv), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_getrf(Ii, &piv), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_getrf(NULL, &piv), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_getrf(A, NULL), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_gesv(W, B), DAGR_ERR_ARG);  /* not square */
    ok &= SC_EXPECT_STATUS(dagr_gesv(A, B), DAGR_ERR_ARG);  /* B's tile rows differ */
    ok &= SC_EXPECT_STATUS(dagr_gesv(A, Bf), DAGR_ERR_ARG); /* dtypes differ */
    ok &= SC_CHECK(piv == NULL, "piv_out untouched on error");
    SC_TRY(dagr_getrf(A, &piv));
    ok &= SC_EXPECT_STATUS(dagr_getrs(DAGR_NO_TRANS, A, piv, B), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_getrs(DAGR_NO_TRANS, A, NULL, A), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_getrs((dagr_op_t)7, A, piv, A), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_getrs(DAGR_NO_TRANS, A, piv, A), DAGR_ERR_ARG); /* shares */
    ok &= SC_EXPECT_STATUS(dagr_pivots_fetch(NULL, NULL), DAGR_ERR_ARG);
    /* A is zero: singular at column 1 */
    ok &= SC_EXPECT_STATUS(dagr_wait_all(ctx), DAGR_ERR_SINGULAR);
    SC_TRY(dagr_pivots_destroy(&piv));
    SC_TRY(dagr_pivots_destroy(&piv)); /* tolerates NULL */
    dagr_darray_destroy(&A);
    dagr_darray_destroy(&R);
    dagr_darray_destroy(&Ii);
    dagr_darray_destroy(&W);
    dagr_darray_destroy(&B);
    dagr_darray_destroy(&Bf);
    sc_result("errors", ok, "checked=%d", 13);
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: linalg_lu P Q M N NB [NRHS NBB]\n");
        return 2;
    }
    P = atoi(argv[1]);
    Q = atoi(argv[2]);
    M = atoll(argv[3]);
    N = atoll(argv[4]);
    NB = atoll(argv[5]);
    if (argc > 7) {
        NRHS = atoll(argv[6]);
        NBB = atoll(argv[7]);
    }
    SC_TRY(dagr_init(&argc, &argv, NULL, &ctx));
    int me = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &me);
    sc_set_rank(me);
    dagr_dtype_t types[2] = {DAGR_DOUBLE, DAGR_FLOAT};
    for (int d = 0; d < 2; d++) {
        dagr_dtype_t t = types[d];
        test_factor(t);
        int64_t kmin = M < N ? M : N;
        if (kmin > 0)
            expect_singular("singular_col", t, M, N, (zero_at_t){-1, kmin / 2, 5}, kmin / 2 + 1);
        if (M == N && N > 0) {
            test_solve(t);
            expect_singular("singular_row", t, N, N, (zero_at_t){N / 3, -1, 6}, N);
        }
        if (kmin > 0) test_nonfinite(t);
    }
    test_errors();
    dagr_finalize(&ctx);
    return sc_exit_code();
}
