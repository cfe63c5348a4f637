/* Cholesky on DArrays: potrf, potrs, posv, with LAPACK testers' residuals.
 *
 * Usage: linalg_chol P Q N NRHS NB
 *
 * A (N x N, NB x NB tiles) lives on a P x Q block-cyclic grid, B (N x NRHS) on the Q x P one.
 * A = R R^T + N I for a random R in [-1, 1). For double and float, lower and upper:
 *   potrf  ||A - L L^T||_1 / (||A||_1 N eps) < 60 (U^T U for upper), the other triangle
 *          untouched; potrf then potrs inserted together (no wait between them);
 *   potrs  ||B - A X||_1 / (||A||_1 ||X||_1 N eps) < 60;
 *   posv   the same residual, through one call; lookahead 0, 1 (default) and 3.
 * Failures: a negative diagonal at global column c, a NaN on the diagonal, an infinite
 * diagonal entry and a NaN below it (each DAGR_ERR_NOT_SPD at the next wait on every rank,
 * naming column c + 1 where it is known); the solve chained after a failed potrf is poisoned,
 * not run. nonfinite: a NaN in the triangle potrf must not read is not reported; a NaN or an
 * Inf in B gives DAGR_ERR_NONFINITE naming potrs or posv. potrf on a view (the trailing block
 * of a larger SPD array). Argument errors:
 * DAGR_ERR_ARG before anything is inserted. A NaN residual fails.
 *
 * Prints RANK r RESULT <potrf|potrs|posv> ok|FAIL dtype=... uplo=... resid=..., and RESULT
 * not_spd, nan_inf, nonfinite, potrf_view, errors. */
#include "scenario.h"

#include <cblas.h>
#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static dagr_ctx_t *ctx;
static int P, Q;
static int64_t N, NRHS, NB;
static const double TOL = 60;

static double *gen(dagr_dtype_t t, int64_t m, int64_t n, uint64_t seed) {
    sc_rng_t r = {seed * 104729 + 3};
    double *x = calloc((size_t)(sc_ld(m) * n) + 1, sizeof *x);
    for (int64_t k = 0; k < sc_ld(m) * n; k++) {
        double v = (double)(sc_next(&r) >> 11) * 0x1p-53 * 2 - 1;
        x[k] = t == DAGR_FLOAT ? (double)(float)v : v;
    }
    return x;
}

/* A = R R^T + n I, rounded to the dtype (so the residual uses what the DArray holds). */
static double *gen_spd(dagr_dtype_t t, int64_t n, uint64_t seed) {
    double *r = gen(t, n, n, seed);
    double *a = calloc((size_t)(sc_ld(n) * n) + 1, sizeof *a);
    if (n > 0)
        cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, (int)n, (int)n, (int)n, 1.0, r,
                    (int)sc_ld(n), r, (int)sc_ld(n), 0.0, a, (int)sc_ld(n));
    for (int64_t k = 0; k < sc_ld(n) * n; k++) {
        if (k % sc_ld(n) == k / sc_ld(n)) a[k] += (double)n;
        if (t == DAGR_FLOAT) a[k] = (double)(float)a[k];
    }
    free(r);
    return a;
}

static dagr_darray_t *make(dagr_dtype_t t, int64_t m, int64_t n, int64_t mb, int64_t nb,
                           dagr_grid_t g) {
    dagr_darray_t *A = NULL;
    SC_TRY(dagr_darray_create(ctx, t, m, n, mb, nb, g, &A));
    return A;
}

/* ||A - L L^T||_1 / (||A||_1 n eps) from the factored f (L = the lower triangle of f; for
 * upper, U = the upper triangle and A - U^T U); *moved counts changed entries of the other
 * triangle. */
static double potrf_resid(dagr_dtype_t t, int uplo, const double *a, const double *f, long *moved) {
    int64_t n = N, ld = sc_ld(n);
    double *l = calloc((size_t)(ld * n) + 1, sizeof *l);
    double *r = calloc((size_t)(ld * n) + 1, sizeof *r);
    *moved = 0;
    for (int64_t j = 0; j < n; j++)
        for (int64_t i = 0; i < n; i++) {
            bool in = uplo == DAGR_LOWER ? i >= j : i <= j;
            if (in)
                l[i + j * ld] = f[i + j * ld];
            else if (f[i + j * ld] != a[i + j * ld])
                (*moved)++;
        }
    memcpy(r, a, sizeof *r * (size_t)(ld * n));
    if (n > 0) {
        if (uplo == DAGR_LOWER)
            cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, (int)n, (int)n, (int)n, -1.0, l,
                        (int)ld, l, (int)ld, 1.0, r, (int)ld);
        else
            cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, (int)n, (int)n, (int)n, -1.0, l,
                        (int)ld, l, (int)ld, 1.0, r, (int)ld);
    }
    double res = n == 0 ? 0
                        : sc_norm1(r, n, n, sc_ld(n)) /
                              (sc_norm1(a, n, n, sc_ld(n)) * (double)n * sc_eps(t));
    free(l), free(r);
    return res;
}

/* ||B - A X||_1 / (||A||_1 ||X||_1 n eps). */
static double solve_resid(dagr_dtype_t t, const double *a, const double *b, const double *x) {
    int64_t n = N, ld = sc_ld(n);
    double *r = calloc((size_t)(ld * NRHS) + 1, sizeof *r);
    memcpy(r, b, sizeof *r * (size_t)(ld * NRHS));
    if (n > 0 && NRHS > 0)
        cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)NRHS, (int)n, -1.0, a,
                    (int)ld, x, (int)ld, 1.0, r, (int)ld);
    double num = sc_norm1(r, n, NRHS, sc_ld(n));
    double res = num == 0 ? 0
                          : num / (sc_norm1(a, n, n, sc_ld(n)) * sc_norm1(x, n, NRHS, sc_ld(n)) *
                                   (double)n * sc_eps(t));
    free(r);
    return res;
}

static void check_factor_solve(dagr_dtype_t t, int uplo) {
    double *a = gen_spd(t, N, 11 + (uint64_t)uplo), *b = gen(t, N, NRHS, 12);
    dagr_darray_t *A = make(t, N, N, NB, NB, dagr_grid_2d(P, Q));
    dagr_darray_t *B = make(t, N, NRHS, NB, NB, dagr_grid_2d(Q, P));
    sc_scatter(A, a);
    sc_scatter(B, b);
    /* one graph: the solve is inserted before anything has run */
    SC_TRY(dagr_potrf(uplo, A));
    SC_TRY(dagr_potrs(uplo, A, B));
    double *f = sc_gather(A), *x = sc_gather(B);
    long moved;
    double r1 = potrf_resid(t, uplo, a, f, &moved);
    double r2 = solve_resid(t, a, b, x);
    sc_result("potrf", r1 < TOL && moved == 0, "dtype=%s uplo=%s resid=%g moved=%ld",
              sc_dtype_name(t), uplo ? "upper" : "lower", r1, moved);
    sc_result("potrs", r2 < TOL, "dtype=%s uplo=%s resid=%g", sc_dtype_name(t),
              uplo ? "upper" : "lower", r2);
    free(f), free(x);
    /* posv on fresh copies, at three lookaheads */
    int las[] = {0, 1, 3};
    double worst = 0;
    for (int k = 0; k < 3; k++) {
        sc_scatter(A, a);
        sc_scatter(B, b);
        dagr_linalg_opts_t o;
        dagr_linalg_opts_init(&o);
        o.lookahead = las[k];
        SC_TRY(dagr_posv_ex(uplo, A, B, &o));
        x = sc_gather(B);
        double r = solve_resid(t, a, b, x);
        if (!(r <= worst)) worst = r;
        free(x);
    }
    sc_result("posv", worst < TOL, "dtype=%s uplo=%s resid=%g", sc_dtype_name(t),
              uplo ? "upper" : "lower", worst);
    free(a), free(b);
    dagr_darray_destroy(&A), dagr_darray_destroy(&B);
}

/* True if the last error names "global column <col>" (not a longer number). */
static bool names_column(int64_t col) {
    char key[64];
    snprintf(key, sizeof key, "global column %lld", (long long)col);
    const char *e = dagr_last_error();
    const char *p = e ? strstr(e, key) : NULL;
    return p && !isdigit((unsigned char)p[strlen(key)]);
}

/* Factors a (with a solve chained after it) and expects DAGR_ERR_NOT_SPD at the wait, naming
 * column col (1-based) when col > 0. */
static int expect_fail(dagr_dtype_t t, int uplo, const double *a, int64_t col, const char *what) {
    dagr_darray_t *A = make(t, N, N, NB, NB, dagr_grid_2d(P, Q));
    dagr_darray_t *B = make(t, N, NRHS, NB, NB, dagr_grid_2d(Q, P));
    sc_scatter(A, a);
    int ok = SC_EXPECT_STATUS(dagr_posv(uplo, A, B), DAGR_OK);
    ok &= SC_EXPECT_STATUS(dagr_wait_all(ctx), DAGR_ERR_NOT_SPD);
    if (col > 0)
        ok &= SC_CHECK(
            names_column(col), "%s %s %s: the error does not name global column %lld: %s", what,
            sc_dtype_name(t), uplo ? "upper" : "lower", (long long)col, dagr_last_error());
    /* the context is usable afterwards */
    ok &= SC_EXPECT_STATUS(dagr_wait_all(ctx), DAGR_OK);
    dagr_darray_destroy(&A), dagr_darray_destroy(&B);
    return ok;
}

static void check_not_spd(dagr_dtype_t t) {
    int ok = 1;
    /* a column inside a tile past the first, and the very first and last columns */
    int64_t cols[] = {N / 2 + (NB > 2 ? 1 : 0), 0, N - 1};
    for (int uplo = 0; uplo < 2; uplo++)
        for (int k = 0; k < 3; k++) {
            int64_t c = cols[k] < N ? cols[k] : N - 1;
            double *a = gen_spd(t, N, 21);
            a[c + c * sc_ld(N)] = -1.0;
            ok &= expect_fail(t, uplo, a, c + 1, "negative diagonal");
            free(a);
        }
    sc_result("not_spd", ok, "dtype=%s", sc_dtype_name(t));
}

static void check_nan_inf(dagr_dtype_t t) {
    int ok = 1;
    int64_t c = N / 2 + (NB > 2 ? 1 : 0);
    if (c >= N) c = N - 1;
    for (int uplo = 0; uplo < 2; uplo++) {
        double *a = gen_spd(t, N, 31);
        a[c + c * sc_ld(N)] = NAN;
        ok &= expect_fail(t, uplo, a, c + 1, "NaN diagonal");
        a[c + c * sc_ld(N)] = INFINITY;
        ok &= expect_fail(t, uplo, a, c + 1, "infinite diagonal");
        free(a);
        if (N > 1) {
            /* a NaN in the referenced triangle, off the diagonal, at (c2, 0) or (0, c2): it
             * spreads to factor row c2, whose diagonal is the first to become NaN */
            a = gen_spd(t, N, 32);
            int64_t c2 = c > 0 ? c : 1;
            int64_t i = uplo == DAGR_LOWER ? c2 : 0, j = uplo == DAGR_LOWER ? 0 : c2;
            a[i + j * sc_ld(N)] = NAN;
            ok &= expect_fail(t, uplo, a, c2 + 1, "NaN off the diagonal");
            free(a);
        }
    }
    sc_result("nan_inf", ok, "dtype=%s", sc_dtype_name(t));
}

/* The results of potrf, potrs and posv are checked for NaN and Inf: a NaN in the triangle
 * potrf must not read is not reported (nor touched); a NaN or an Inf in B gives
 * DAGR_ERR_NONFINITE naming potrs or posv on every rank (the NaN and Inf in A are
 * check_nan_inf's: DAGR_ERR_NOT_SPD). */
static void check_nonfinite(dagr_dtype_t t) {
    int ok = 1;
    int64_t ld = sc_ld(N), r = N / 2, c = NRHS / 2;
    double *b = gen(t, N, NRHS, 52);
    dagr_darray_t *A = make(t, N, N, NB, NB, dagr_grid_2d(P, Q));
    dagr_darray_t *B = make(t, N, NRHS, NB, NB, dagr_grid_2d(Q, P));
    for (int uplo = 0; uplo < 2; uplo++) {
        double *a = gen_spd(t, N, 51);
        long nans = 0;
        for (int64_t j = 0; j < N; j++)
            for (int64_t i = 0; i < N; i++)
                if (uplo == DAGR_LOWER ? i < j : i > j) a[i + j * ld] = NAN, nans++;
        sc_scatter(A, a);
        SC_TRY(dagr_potrf(uplo, A));
        ok &= SC_EXPECT_WAIT(ctx, DAGR_OK, NULL, "potrf, NaN in the other triangle");
        double *f = sc_gather(A);
        long kept = 0;
        for (int64_t k = 0; k < ld * N; k++)
            kept += isnan(f[k]);
        ok &= SC_CHECK(kept == nans, "potrf %s: %ld NaNs in A after, %ld before",
                       uplo ? "upper" : "lower", kept, nans);
        free(f);
        if (NRHS > 0) {
            /* A is factored (the other triangle still NaN): a NaN in B, then an Inf through
             * posv, which factors again from a fresh A */
            b[r + c * ld] = NAN;
            sc_scatter(B, b);
            SC_TRY(dagr_potrs(uplo, A, B));
            ok &=
                SC_EXPECT_WAIT(ctx, DAGR_ERR_NONFINITE, "potrs: the result has", "potrs, NaN in B");
            b[r + c * ld] = INFINITY;
            sc_scatter(A, a);
            sc_scatter(B, b);
            SC_TRY(dagr_posv(uplo, A, B));
            ok &= SC_EXPECT_WAIT(ctx, DAGR_ERR_NONFINITE, "posv: the result has", "posv, Inf in B");
            b[r + c * ld] = 0.5;
        }
        free(a);
    }
    sc_result("nonfinite", ok, "dtype=%s", sc_dtype_name(t));
    free(b);
    dagr_darray_destroy(&A), dagr_darray_destroy(&B);
}

/* potrf on the trailing N x N view (at NB, NB) of an (N + NB) x (N + NB) SPD array: the
 * residual of the block, the rest of the array untouched; then a negative diagonal at view
 * column c, reported as column c + 1 (columns count from the array passed). */
static void check_view(dagr_dtype_t t) {
    int64_t bn = N + NB, lb = sc_ld(bn), ld = sc_ld(N);
    double *big = gen_spd(t, bn, 41);
    double *a = calloc((size_t)(ld * N) + 1, sizeof *a);
    for (int64_t j = 0; j < N; j++)
        for (int64_t i = 0; i < N; i++)
            a[i + j * ld] = big[(NB + i) + (NB + j) * lb];
    dagr_darray_t *G = make(t, bn, bn, NB, NB, dagr_grid_2d(P, Q)), *A = NULL;
    sc_scatter(G, big);
    SC_TRY(dagr_darray_view(G, NB, NB, N, N, &A));
    SC_TRY(dagr_potrf(DAGR_LOWER, A));
    double *g = sc_gather(G);
    double *f = calloc((size_t)(ld * N) + 1, sizeof *f);
    long outside = 0, moved = 0;
    for (int64_t j = 0; j < bn; j++)
        for (int64_t i = 0; i < bn; i++) {
            if (i >= NB && j >= NB)
                f[(i - NB) + (j - NB) * ld] = g[i + j * lb];
            else if (g[i + j * lb] != big[i + j * lb])
                outside++;
        }
    double r = potrf_resid(t, DAGR_LOWER, a, f, &moved);
    int ok = SC_CHECK(r < TOL && moved == 0 && outside == 0,
                      "potrf on a view: resid %g, %ld moved in the upper triangle, %ld outside", r,
                      moved, outside);
    int64_t c = N / 2;
    big[(NB + c) + (NB + c) * lb] = -1;
    sc_scatter(G, big);
    SC_TRY(dagr_potrf(DAGR_LOWER, A));
    ok &= SC_EXPECT_STATUS(dagr_wait_all(ctx), DAGR_ERR_NOT_SPD);
    ok &= SC_CHECK(names_column(c + 1), "view: the error does not name global column %lld: %s",
                   (long long)(c + 1), dagr_last_error());
    sc_result("potrf_view", ok, "dtype=%s resid=%g", sc_dtype_name(t), r);
    free(big), free(a), free(g), free(f);
    dagr_darray_destroy(&A), dagr_darray_destroy(&G);
}

static void check_errors(void) {
    dagr_grid_t g = dagr_grid_2d(P, Q);
    dagr_darray_t *A = make(DAGR_DOUBLE, 7, 7, 3, 3, g), *B = make(DAGR_DOUBLE, 7, 2, 3, 3, g);
    dagr_darray_t *R = make(DAGR_DOUBLE, 7, 8, 3, 3, g); /* not square */
    dagr_darray_t *T = make(DAGR_DOUBLE, 7, 7, 3, 4, g); /* tiles not square */
    dagr_darray_t *Z = make(DAGR_INT64, 7, 7, 3, 3, g);  /* not float/double */
    dagr_darray_t *F = make(DAGR_FLOAT, 7, 2, 3, 3, g);  /* dtype mismatch */
    dagr_darray_t *W = make(DAGR_DOUBLE, 8, 2, 3, 3, g); /* wrong rows */
    dagr_darray_t *V = make(DAGR_DOUBLE, 7, 2, 4, 3, g); /* wrong tile rows */
    SC_TRY(dagr_darray_identity(A));
    int ok = 1;
    ok &= SC_EXPECT_STATUS(dagr_potrf(DAGR_LOWER, R), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_potrf(DAGR_LOWER, T), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_potrf(DAGR_LOWER, Z), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_potrf(DAGR_LOWER, NULL), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_potrf((dagr_uplo_t)5, A), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_potrs(DAGR_LOWER, A, F), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_potrs(DAGR_UPPER, A, W), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_potrs(DAGR_UPPER, A, V), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_potrs(DAGR_UPPER, A, A), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_posv(DAGR_LOWER, A, W), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_posv(DAGR_LOWER, T, B), DAGR_ERR_ARG);
    /* nothing ran: A is still I (a factorization of I is I too, so check B, then A via the
     * refused posv's operand staying exactly the identity after a diagonal change) */
    double v = 4.0, got = 0;
    SC_TRY(dagr_darray_set(A, 1, 1, &v));
    ok &= SC_EXPECT_STATUS(dagr_posv(DAGR_LOWER, A, W), DAGR_ERR_ARG);
    SC_TRY(dagr_darray_fetch(A, 1, 1, &got));
    ok &= SC_CHECK(got == 4.0, "A(1, 1) = %g after a refused posv (want 4)", got);
    sc_result("errors", ok, "-");
    dagr_darray_t *all[] = {A, B, R, T, Z, F, W, V};
    for (size_t k = 0; k < sizeof all / sizeof *all; k++)
        dagr_darray_destroy(&all[k]);
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: linalg_chol P Q N NRHS NB\n");
        return 2;
    }
    P = atoi(argv[1]);
    Q = atoi(argv[2]);
    N = atoll(argv[3]);
    NRHS = atoll(argv[4]);
    NB = atoll(argv[5]);
    SC_TRY(dagr_init(&argc, &argv, NULL, &ctx));
    sc_set_rank(dagr_rank(ctx));
    check_errors();
    dagr_dtype_t types[] = {DAGR_DOUBLE, DAGR_FLOAT};
    for (int k = 0; k < 2; k++) {
        for (int uplo = 0; uplo < 2; uplo++)
            check_factor_solve(types[k], uplo);
        if (N > 0) {
            check_not_spd(types[k]);
            check_nan_inf(types[k]);
            check_view(types[k]);
            check_nonfinite(types[k]);
        }
    }
    SC_TRY(dagr_wait_all(ctx));
    int code = sc_exit_code();
    dagr_finalize(&ctx);
    return code;
}
