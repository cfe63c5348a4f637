/* BLAS 3 on DArrays against serial CBLAS on the gathered matrices.
 *
 * Usage: linalg_blas3 P Q M N K NB
 *
 * A and C live on a P x Q block-cyclic grid, B on the Q x P one (distributions may differ
 * between operands). Tiles are NB x NB, except in gemm's second pass where A, B and C get
 * three different tile sizes that conform. For double and float it checks:
 *   gemm  all four transpose pairs, alpha/beta, beta = 0 over a NaN C, alpha = 0; into a
 *         view of a larger array (the rest untouched);
 *   syrk  both triangles, both transposes (the other triangle must stay untouched);
 *   symm  both sides, both triangles (the unreferenced triangle of A holds NaNs);
 *   trsm, trmm  all 16 side/uplo/trans/diag combinations on well-conditioned triangular
 *         matrices (the unreferenced triangle holds NaNs, and the diagonal too for UNIT);
 * and the argument errors (DAGR_ERR_ARG before anything runs); nonfinite: a NaN or an Inf
 * in what gemm, syrk, trsm, trmm, symm read gives DAGR_ERR_NONFINITE at the wait on every
 * rank, naming the routine (and the entry, counted from the array passed, when it is the only
 * one), and a NaN they must not read gives DAGR_OK. Errors are normwise,
 * ||C - C_ref||_F / ((|alpha| ||A||_F ||B||_F + |beta| ||C0||_F) max(k, 1) eps), < 10, and a
 * NaN error fails.
 *
 * Prints RANK r RESULT <gemm|gemm_view|syrk|symm|trsm|trmm> ok|FAIL dtype=... worst=..., and
 * RESULT nonfinite, errors. */
#include "scenario.h"

#include <cblas.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static dagr_ctx_t *ctx;
static int P, Q;
static int64_t M, N, K, NB;
static const double TOL = 10;

/* A deterministic m x n matrix (the same on every rank) with entries in [-1, 1), rounded to
 * the dtype so that the reference sees exactly what the DArray holds. */
static double *gen(dagr_dtype_t t, int64_t m, int64_t n, uint64_t seed) {
    sc_rng_t r = {seed * 7919 + 17};
    double *x = calloc((size_t)(sc_ld(m) * n) + 1, sizeof *x);
    for (int64_t k = 0; k < sc_ld(m) * n; k++) {
        double v = (double)(sc_next(&r) >> 11) * 0x1p-53 * 2 - 1;
        x[k] = t == DAGR_FLOAT ? (double)(float)v : v;
    }
    return x;
}

static dagr_darray_t *make(dagr_dtype_t t, int64_t m, int64_t n, int64_t mb, int64_t nb,
                           dagr_grid_t g) {
    dagr_darray_t *A = NULL;
    SC_TRY(dagr_darray_create(ctx, t, m, n, mb, nb, g, &A));
    return A;
}

/* Frobenius norm of the m x n matrix x (ld = sc_ld(m)); NaN entries give NaN. */
static double fro(const double *x, int64_t m, int64_t n) {
    double s = 0;
    for (int64_t j = 0; j < n; j++)
        for (int64_t i = 0; i < m; i++)
            s += x[i + j * sc_ld(m)] * x[i + j * sc_ld(m)];
    return sqrt(s);
}

/* ||got - want||_F over the entries where keep(i, j) (all when uplo < 0; else the uplo
 * triangle). */
static double diff(const double *got, const double *want, int64_t m, int64_t n, int uplo) {
    double s = 0;
    for (int64_t j = 0; j < n; j++)
        for (int64_t i = 0; i < m; i++) {
            if ((uplo == DAGR_LOWER && i < j) || (uplo == DAGR_UPPER && i > j)) continue;
            double d = got[i + j * sc_ld(m)] - want[i + j * sc_ld(m)];
            s += d * d;
        }
    return sqrt(s);
}

/* The worst scaled error of a group of checks, with the first failures named. */
typedef struct worst {
    double w;
    int bad;
} worst_t;

static void judge(worst_t *w, const char *what, double err) {
    if (!(err < TOL)) {
        if (w->bad++ < 5) sc_say("%s: scaled error %g", what, err);
        w->w = INFINITY;
    } else if (err > w->w) {
        w->w = err;
    }
}

/* ---- gemm ---- */

static void gemm_case(worst_t *w, dagr_dtype_t t, dagr_op_t ta, dagr_op_t tb, double alpha,
                      double beta, bool nan_c, int64_t mb, int64_t kb, int64_t nb) {
    bool at = ta == DAGR_TRANS, bt = tb == DAGR_TRANS;
    int64_t am = at ? K : M, an = at ? M : K, bm = bt ? N : K, bn = bt ? K : N;
    double *a = gen(t, am, an, 1), *b = gen(t, bm, bn, 2), *c = gen(t, M, N, 3);
    if (nan_c)
        for (int64_t k = 0; k < sc_ld(M) * N; k++)
            c[k] = NAN;
    dagr_darray_t *A = make(t, am, an, at ? kb : mb, at ? mb : kb, dagr_grid_2d(P, Q));
    dagr_darray_t *B = make(t, bm, bn, bt ? nb : kb, bt ? kb : nb, dagr_grid_2d(Q, P));
    dagr_darray_t *C = make(t, M, N, mb, nb, dagr_grid_2d(P, Q));
    sc_scatter(A, a);
    sc_scatter(B, b);
    sc_scatter(C, c);
    SC_TRY(dagr_gemm(ta, tb, alpha, A, B, beta, C));
    double *got = sc_gather(C);
    double *want = malloc(sizeof *want * (size_t)(sc_ld(M) * N + 1));
    memcpy(want, c, sizeof *want * (size_t)(sc_ld(M) * N + 1));
    if (beta == 0)
        for (int64_t k = 0; k < sc_ld(M) * N; k++)
            want[k] = 0;
    if (M > 0 && N > 0)
        cblas_dgemm(CblasColMajor, at ? CblasTrans : CblasNoTrans, bt ? CblasTrans : CblasNoTrans,
                    (int)M, (int)N, (int)K, alpha, a, (int)sc_ld(am), b, (int)sc_ld(bm),
                    beta == 0 ? 0.0 : beta, want, (int)sc_ld(M));
    double den = (fabs(alpha) * fro(a, am, an) * fro(b, bm, bn) +
                  (beta == 0 ? 0 : fabs(beta) * fro(c, M, N))) *
                 (double)(K > 1 ? K : 1) * sc_eps(t);
    double num = diff(got, want, M, N, -1);
    char what[160];
    snprintf(what, sizeof what, "gemm %s%s alpha=%g beta=%g nan_c=%d tiles %lldx%lldx%lld %s",
             at ? "T" : "N", bt ? "T" : "N", alpha, beta, (int)nan_c, (long long)mb, (long long)kb,
             (long long)nb, sc_dtype_name(t));
    judge(w, what, num == 0 ? 0 : num / den);
    free(a), free(b), free(c), free(got), free(want);
    dagr_darray_destroy(&A), dagr_darray_destroy(&B), dagr_darray_destroy(&C);
}

static void check_gemm(dagr_dtype_t t) {
    worst_t w = {0, 0};
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            gemm_case(&w, t, ta, tb, 1.5, -0.5, false, NB, NB, NB);
            gemm_case(&w, t, ta, tb, -1.0, 0.0, true, NB, NB + 2, NB + 1);
        }
    gemm_case(&w, t, DAGR_NO_TRANS, DAGR_NO_TRANS, 0.0, 2.0, false, NB, NB, NB);
    gemm_case(&w, t, DAGR_TRANS, DAGR_NO_TRANS, 0.0, 0.0, true, NB + 1, NB, NB + 2);
    sc_result("gemm", w.bad == 0, "dtype=%s worst=%g", sc_dtype_name(t), w.w);
}

/* gemm into a view: C is the M x N block at (NB, 0) of a larger array whose edge tiles the
 * view covers only in part; the rest of the array must stay as it was. */
static void check_gemm_view(dagr_dtype_t t) {
    int64_t bm = M + NB + 2, bn = N + 3, lb = sc_ld(bm);
    double alpha = 0.5, beta = 2.0;
    double *a = gen(t, M, K, 13), *b = gen(t, K, N, 14), *big = gen(t, bm, bn, 15);
    dagr_darray_t *A = make(t, M, K, NB, NB, dagr_grid_2d(Q, P));
    dagr_darray_t *B = make(t, K, N, NB, NB, dagr_grid_2d(P, Q));
    dagr_darray_t *G = make(t, bm, bn, NB, NB, dagr_grid_2d(P, Q)), *C = NULL;
    sc_scatter(A, a);
    sc_scatter(B, b);
    sc_scatter(G, big);
    SC_TRY(dagr_darray_view(G, NB, 0, M, N, &C));
    SC_TRY(dagr_gemm(DAGR_NO_TRANS, DAGR_NO_TRANS, alpha, A, B, beta, C));
    double *got = sc_gather(G);
    double *want = malloc(sizeof *want * (size_t)(lb * bn + 1));
    memcpy(want, big, sizeof *want * (size_t)(lb * bn + 1));
    if (M > 0 && N > 0)
        cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)K, alpha, a,
                    (int)sc_ld(M), b, (int)sc_ld(K), beta, want + NB, (int)lb);
    long moved = 0;
    for (int64_t j = 0; j < bn; j++)
        for (int64_t i = 0; i < bm; i++)
            if ((i < NB || i >= NB + M || j >= N) && got[i + j * lb] != big[i + j * lb]) moved++;
    double den = (fabs(alpha) * fro(a, M, K) * fro(b, K, N) + fabs(beta) * fro(big, bm, bn)) *
                 (double)(K > 1 ? K : 1) * sc_eps(t);
    double num = diff(got, want, bm, bn, -1);
    double err = moved ? INFINITY : num == 0 ? 0 : num / den;
    sc_result("gemm_view", err < TOL, "dtype=%s err=%g moved=%ld", sc_dtype_name(t), err, moved);
    free(a), free(b), free(big), free(got), free(want);
    dagr_darray_destroy(&C), dagr_darray_destroy(&A), dagr_darray_destroy(&B);
    dagr_darray_destroy(&G);
}

/* ---- syrk ---- */

static void check_syrk(dagr_dtype_t t) {
    worst_t w = {0, 0};
    for (int uplo = 0; uplo < 2; uplo++)
        for (int tr = 0; tr < 2; tr++) {
            int64_t am = tr ? K : N, an = tr ? N : K;
            double alpha = 0.75, beta = -1.25;
            double *a = gen(t, am, an, 4), *c = gen(t, N, N, 5);
            dagr_darray_t *A = make(t, am, an, NB, NB, dagr_grid_2d(Q, P));
            dagr_darray_t *C = make(t, N, N, NB, NB, dagr_grid_2d(P, Q));
            sc_scatter(A, a);
            sc_scatter(C, c);
            SC_TRY(dagr_syrk(uplo, tr, alpha, A, beta, C));
            double *got = sc_gather(C);
            double *want = malloc(sizeof *want * (size_t)(sc_ld(N) * N + 1));
            memcpy(want, c, sizeof *want * (size_t)(sc_ld(N) * N + 1));
            if (N > 0)
                cblas_dsyrk(CblasColMajor, uplo ? CblasUpper : CblasLower,
                            tr ? CblasTrans : CblasNoTrans, (int)N, (int)K, alpha, a,
                            (int)sc_ld(am), beta, want, (int)sc_ld(N));
            /* the other triangle (diagonal excluded) is exactly as it was */
            long moved = 0;
            for (int64_t j = 0; j < N; j++)
                for (int64_t i = 0; i < N; i++)
                    if ((uplo == DAGR_LOWER ? i < j : i > j) &&
                        got[i + j * sc_ld(N)] != c[i + j * sc_ld(N)])
                        moved++;
            double den =
                (fabs(alpha) * fro(a, am, an) * fro(a, am, an) + fabs(beta) * fro(c, N, N)) *
                (double)(K > 1 ? K : 1) * sc_eps(t);
            double num = diff(got, want, N, N, uplo);
            char what[96];
            snprintf(what, sizeof what, "syrk %s %s %s", uplo ? "upper" : "lower", tr ? "T" : "N",
                     sc_dtype_name(t));
            judge(&w, what, moved ? INFINITY : num == 0 ? 0 : num / den);
            free(a), free(c), free(got), free(want);
            dagr_darray_destroy(&A), dagr_darray_destroy(&C);
        }
    sc_result("syrk", w.bad == 0, "dtype=%s worst=%g", sc_dtype_name(t), w.w);
}

/* ---- symm ---- */

/* Sets the triangle of the n x n matrix x opposite uplo (diagonal excluded) to NaN, after
 * saving the symmetric matrix it stands for in full (if full is not NULL). */
static void poison_other(double *x, int64_t n, int uplo, double *full) {
    for (int64_t j = 0; j < n; j++)
        for (int64_t i = 0; i < n; i++) {
            int64_t si = uplo == DAGR_LOWER ? (i > j ? i : j) : (i < j ? i : j);
            int64_t sj = uplo == DAGR_LOWER ? (i > j ? j : i) : (i < j ? j : i);
            if (full) full[i + j * sc_ld(n)] = x[si + sj * sc_ld(n)];
        }
    for (int64_t j = 0; j < n; j++)
        for (int64_t i = 0; i < n; i++)
            if (uplo == DAGR_LOWER ? i < j : i > j) x[i + j * sc_ld(n)] = NAN;
}

static void check_symm(dagr_dtype_t t) {
    worst_t w = {0, 0};
    for (int side = 0; side < 2; side++)
        for (int uplo = 0; uplo < 2; uplo++) {
            int64_t an = side == DAGR_LEFT ? M : N;
            double alpha = -0.5, beta = 1.5;
            double *a = gen(t, an, an, 6), *b = gen(t, M, N, 7), *c = gen(t, M, N, 8);
            double *full = calloc((size_t)(sc_ld(an) * an) + 1, sizeof *full);
            poison_other(a, an, uplo, full);
            dagr_darray_t *A = make(t, an, an, NB, NB, dagr_grid_2d(Q, P));
            dagr_darray_t *B = make(t, M, N, NB, NB, dagr_grid_2d(Q, P));
            dagr_darray_t *C = make(t, M, N, NB, NB, dagr_grid_2d(P, Q));
            sc_scatter(A, a);
            sc_scatter(B, b);
            sc_scatter(C, c);
            SC_TRY(dagr_symm(side, uplo, alpha, A, B, beta, C));
            double *got = sc_gather(C);
            double *want = malloc(sizeof *want * (size_t)(sc_ld(M) * N + 1));
            memcpy(want, c, sizeof *want * (size_t)(sc_ld(M) * N + 1));
            if (M > 0 && N > 0) {
                if (side == DAGR_LEFT)
                    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)M,
                                alpha, full, (int)sc_ld(M), b, (int)sc_ld(M), beta, want,
                                (int)sc_ld(M));
                else
                    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)N,
                                alpha, b, (int)sc_ld(M), full, (int)sc_ld(N), beta, want,
                                (int)sc_ld(M));
            }
            double den =
                (fabs(alpha) * fro(full, an, an) * fro(b, M, N) + fabs(beta) * fro(c, M, N)) *
                (double)(an > 1 ? an : 1) * sc_eps(t);
            double num = diff(got, want, M, N, -1);
            char what[96];
            snprintf(what, sizeof what, "symm %s %s %s", side ? "right" : "left",
                     uplo ? "upper" : "lower", sc_dtype_name(t));
            judge(&w, what, num == 0 ? 0 : num / den);
            free(a), free(b), free(c), free(full), free(got), free(want);
            dagr_darray_destroy(&A), dagr_darray_destroy(&B), dagr_darray_destroy(&C);
        }
    sc_result("symm", w.bad == 0, "dtype=%s worst=%g", sc_dtype_name(t), w.w);
}

/* ---- trsm, trmm ---- */

/* A well-conditioned n x n triangular matrix: off-diagonal entries in [-1/n, 1/n), diagonal
 * in [1.5, 2.5) (NaN for UNIT: it must not be read), the other triangle NaN. *ref gets the
 * matrix as BLAS sees it (diagonal 1 for UNIT, the other triangle 0). */
static double *gen_tri(dagr_dtype_t t, int64_t n, int uplo, int diag, double **ref) {
    double *a = gen(t, n, n, 9);
    double *r = calloc((size_t)(sc_ld(n) * n) + 1, sizeof *r);
    for (int64_t j = 0; j < n; j++)
        for (int64_t i = 0; i < n; i++) {
            double *x = &a[i + j * sc_ld(n)];
            if (i == j) {
                *x = t == DAGR_FLOAT ? (double)(float)(2 + *x / 2) : 2 + *x / 2;
                r[i + j * sc_ld(n)] = diag == DAGR_UNIT ? 1 : *x;
                if (diag == DAGR_UNIT) *x = NAN;
            } else if (uplo == DAGR_LOWER ? i > j : i < j) {
                *x = t == DAGR_FLOAT ? (double)(float)(*x / (double)n) : *x / (double)n;
                r[i + j * sc_ld(n)] = *x;
            } else {
                *x = NAN;
            }
        }
    *ref = r;
    return a;
}

static void check_tri(dagr_dtype_t t, bool solve) {
    worst_t w = {0, 0};
    for (int side = 0; side < 2; side++)
        for (int uplo = 0; uplo < 2; uplo++)
            for (int tr = 0; tr < 2; tr++)
                for (int diag = 0; diag < 2; diag++) {
                    int64_t an = side == DAGR_LEFT ? M : N;
                    double alpha = diag ? -0.75 : 1.25;
                    double *ref;
                    double *a = gen_tri(t, an, uplo, diag, &ref), *b = gen(t, M, N, 10);
                    dagr_darray_t *A = make(t, an, an, NB, NB, dagr_grid_2d(Q, P));
                    dagr_darray_t *B = make(t, M, N, NB, NB, dagr_grid_2d(P, Q));
                    sc_scatter(A, a);
                    sc_scatter(B, b);
                    if (solve)
                        SC_TRY(dagr_trsm(side, uplo, tr, diag, alpha, A, B));
                    else
                        SC_TRY(dagr_trmm(side, uplo, tr, diag, alpha, A, B));
                    double *got = sc_gather(B);
                    double *want = malloc(sizeof *want * (size_t)(sc_ld(M) * N + 1));
                    memcpy(want, b, sizeof *want * (size_t)(sc_ld(M) * N + 1));
                    if (M > 0 && N > 0)
                        (solve ? cblas_dtrsm : cblas_dtrmm)(
                            CblasColMajor, side ? CblasRight : CblasLeft,
                            uplo ? CblasUpper : CblasLower, tr ? CblasTrans : CblasNoTrans,
                            diag ? CblasUnit : CblasNonUnit, (int)M, (int)N, alpha, ref,
                            (int)sc_ld(an), want, (int)sc_ld(M));
                    /* A is well conditioned (diagonally dominant), so the solution's error is
                     * of the order of the product's. */
                    double den = (fabs(alpha) * fro(ref, an, an) * fro(b, M, N) + fro(want, M, N)) *
                                 (double)(an > 1 ? an : 1) * sc_eps(t);
                    double num = diff(got, want, M, N, -1);
                    char what[96];
                    snprintf(what, sizeof what, "%s %s %s %s %s %s", solve ? "trsm" : "trmm",
                             side ? "right" : "left", uplo ? "upper" : "lower", tr ? "T" : "N",
                             diag ? "unit" : "non-unit", sc_dtype_name(t));
                    judge(&w, what, num == 0 ? 0 : num / den);
                    free(a), free(ref), free(b), free(got), free(want);
                    dagr_darray_destroy(&A), dagr_darray_destroy(&B);
                }
    sc_result(solve ? "trsm" : "trmm", w.bad == 0, "dtype=%s worst=%g", sc_dtype_name(t), w.w);
}

/* ---- NaN and Inf ---- */

/* "<routine>: the result has a NaN at global row <i + 1>, column <j + 1>" in buf: the message
 * of a NaN found at (i, j), 0-based, of the output. */
static const char *nan_at(char *buf, size_t size, const char *routine, int64_t i, int64_t j) {
    snprintf(buf, size, "%s: the result has a NaN at global row %lld, column %lld (1-based)",
             routine, (long long)(i + 1), (long long)(j + 1));
    return buf;
}

/* Each routine's result is checked: a NaN or an Inf in what it reads gives DAGR_ERR_NONFINITE
 * at the wait on every rank, naming the routine (and the entry when only one is non-finite);
 * a NaN where the routine must not read (syrk's other triangle of C, trsm's other triangle of
 * A and its diagonal for UNIT) is not reported; beta = 0 clears a NaN in C. */
static void check_nonfinite(dagr_dtype_t t) {
    int ok = 1;
    char key[160];
    dagr_grid_t g = dagr_grid_2d(P, Q), gt = dagr_grid_2d(Q, P);
    int64_t r = M / 2, c = N / 2, k = K / 2, ldm = sc_ld(M), ldk = sc_ld(K);
    /* gemm: C = A B + 0.5 C */
    double *a = gen(t, M, K, 1), *b = gen(t, K, N, 2), *cc = gen(t, M, N, 3);
    dagr_darray_t *A = make(t, M, K, NB, NB, g), *B = make(t, K, N, NB, NB, gt);
    dagr_darray_t *C = make(t, M, N, NB, NB, g);
    sc_scatter(B, b);
    if (M > 0 && N > 0 && K > 0) {
        a[r + k * ldm] = NAN;
        sc_scatter(A, a);
        sc_scatter(C, cc);
        SC_TRY(dagr_gemm(DAGR_NO_TRANS, DAGR_NO_TRANS, 1.0, A, B, 0.5, C));
        ok &= SC_EXPECT_WAIT(ctx, DAGR_ERR_NONFINITE, "gemm: the result has", "gemm, NaN in A");
        a[r + k * ldm] = 0.5;
        b[k + c * ldk] = INFINITY;
        sc_scatter(A, a);
        sc_scatter(B, b);
        sc_scatter(C, cc);
        SC_TRY(dagr_gemm(DAGR_NO_TRANS, DAGR_NO_TRANS, 1.0, A, B, 0.5, C));
        ok &= SC_EXPECT_WAIT(ctx, DAGR_ERR_NONFINITE, "gemm: the result has", "gemm, Inf in B");
        b[k + c * ldk] = 0.5;
        sc_scatter(B, b);
    }
    sc_scatter(A, a);
    if (M > 0 && N > 0) {
        /* a NaN in C stays where it is: the message names it */
        cc[r + c * ldm] = NAN;
        sc_scatter(C, cc);
        SC_TRY(dagr_gemm(DAGR_NO_TRANS, DAGR_NO_TRANS, 1.0, A, B, 0.5, C));
        ok &= SC_EXPECT_WAIT(ctx, DAGR_ERR_NONFINITE, nan_at(key, sizeof key, "gemm", r, c),
                             "gemm, NaN in C");
        /* alpha = 0 does not read A or B, but the result is still checked */
        sc_scatter(C, cc);
        SC_TRY(dagr_gemm(DAGR_NO_TRANS, DAGR_NO_TRANS, 0.0, A, B, 1.0, C));
        ok &= SC_EXPECT_WAIT(ctx, DAGR_ERR_NONFINITE, nan_at(key, sizeof key, "gemm", r, c),
                             "gemm, alpha = 0, NaN in C");
        /* beta = 0: C is not read */
        sc_scatter(C, cc);
        SC_TRY(dagr_gemm(DAGR_NO_TRANS, DAGR_NO_TRANS, 1.0, A, B, 0.0, C));
        ok &= SC_EXPECT_WAIT(ctx, DAGR_OK, NULL, "gemm, beta = 0 over a NaN in C");
        /* into a view (at row NB of a larger array): rows and columns count from the view */
        int64_t bm = M + NB + 2, lb = sc_ld(bm);
        double *big = gen(t, bm, N, 15);
        big[(NB + r) + c * lb] = NAN;
        dagr_darray_t *G = make(t, bm, N, NB, NB, g), *V = NULL;
        sc_scatter(G, big);
        SC_TRY(dagr_darray_view(G, NB, 0, M, N, &V));
        SC_TRY(dagr_gemm(DAGR_NO_TRANS, DAGR_NO_TRANS, 1.0, A, B, 0.5, V));
        ok &= SC_EXPECT_WAIT(ctx, DAGR_ERR_NONFINITE, nan_at(key, sizeof key, "gemm", r, c),
                             "gemm into a view, NaN in C");
        /* a NaN in the larger array outside the view is not the result */
        big[(NB + r) + c * lb] = 0.5;
        big[0] = NAN;
        big[(bm - 1) + (N - 1) * lb] = NAN;
        sc_scatter(G, big);
        SC_TRY(dagr_gemm(DAGR_NO_TRANS, DAGR_NO_TRANS, 1.0, A, B, 0.5, V));
        ok &= SC_EXPECT_WAIT(ctx, DAGR_OK, NULL, "gemm into a view, NaN outside it");
        free(big);
        dagr_darray_destroy(&V), dagr_darray_destroy(&G);
    }
    free(a), free(b), free(cc);
    dagr_darray_destroy(&A), dagr_darray_destroy(&B), dagr_darray_destroy(&C);

    /* syrk: C (N x N) = A A^T + C on one triangle, A N x K */
    int64_t ldn = sc_ld(N);
    for (int uplo = 0; uplo < 2 && N > 0; uplo++) {
        a = gen(t, N, K, 4), cc = gen(t, N, N, 5);
        A = make(t, N, K, NB, NB, gt), C = make(t, N, N, NB, NB, g);
        for (int64_t j = 0; j < N; j++)
            for (int64_t i = 0; i < N; i++)
                if (uplo == DAGR_LOWER ? i < j : i > j) cc[i + j * ldn] = NAN;
        sc_scatter(A, a);
        sc_scatter(C, cc);
        SC_TRY(dagr_syrk(uplo, DAGR_NO_TRANS, 1.0, A, 1.0, C));
        ok &= SC_EXPECT_WAIT(ctx, DAGR_OK, NULL, "syrk, NaN in the other triangle of C");
        /* the far corner of the triangle */
        int64_t ci = uplo == DAGR_LOWER ? N - 1 : 0, cj = uplo == DAGR_LOWER ? 0 : N - 1;
        cc[ci + cj * ldn] = NAN;
        sc_scatter(C, cc);
        SC_TRY(dagr_syrk(uplo, DAGR_NO_TRANS, 1.0, A, 1.0, C));
        ok &= SC_EXPECT_WAIT(ctx, DAGR_ERR_NONFINITE, nan_at(key, sizeof key, "syrk", ci, cj),
                             "syrk, NaN in C's triangle");
        cc[ci + cj * ldn] = 0.5;
        if (K > 0) {
            a[(N - 1) + (K - 1) * ldn] = INFINITY;
            sc_scatter(A, a);
            sc_scatter(C, cc);
            SC_TRY(dagr_syrk(uplo, DAGR_NO_TRANS, 1.0, A, 1.0, C));
            ok &= SC_EXPECT_WAIT(ctx, DAGR_ERR_NONFINITE, "syrk: the result has", "syrk, Inf in A");
        }
        free(a), free(cc);
        dagr_darray_destroy(&A), dagr_darray_destroy(&C);
    }

    /* trsm, trmm (left, lower, A M x M) and symm (left, lower) */
    if (M > 0 && N > 0) {
        for (int diag = 0; diag < 2; diag++) {
            /* gen_tri puts NaNs in the other triangle, and on the diagonal for UNIT */
            double *ref;
            a = gen_tri(t, M, DAGR_LOWER, diag, &ref), b = gen(t, M, N, 10);
            A = make(t, M, M, NB, NB, gt), B = make(t, M, N, NB, NB, g);
            sc_scatter(A, a);
            sc_scatter(B, b);
            SC_TRY(dagr_trsm(DAGR_LEFT, DAGR_LOWER, DAGR_NO_TRANS, diag, 1.0, A, B));
            ok &= SC_EXPECT_WAIT(ctx, DAGR_OK, NULL, "trsm, NaN where A is not referenced");
            /* a NaN in the referenced triangle: row M - 1 of column 0 (the diagonal when M = 1,
             * referenced for NON_UNIT only) */
            if (diag == DAGR_NON_UNIT || M > 1) {
                a[M - 1] = NAN;
                sc_scatter(A, a);
                sc_scatter(B, b);
                SC_TRY(dagr_trsm(DAGR_LEFT, DAGR_LOWER, DAGR_NO_TRANS, diag, 1.0, A, B));
                ok &= SC_EXPECT_WAIT(ctx, DAGR_ERR_NONFINITE, "trsm: the result has",
                                     "trsm, NaN in A");
                a[M - 1] = ref[M - 1];
                sc_scatter(A, a);
            }
            b[r + c * ldm] = INFINITY;
            sc_scatter(B, b);
            SC_TRY(dagr_trsm(DAGR_LEFT, DAGR_LOWER, DAGR_NO_TRANS, diag, 1.0, A, B));
            ok &= SC_EXPECT_WAIT(ctx, DAGR_ERR_NONFINITE, "trsm: the result has", "trsm, Inf in B");
            b[r + c * ldm] = NAN;
            sc_scatter(B, b);
            SC_TRY(dagr_trmm(DAGR_LEFT, DAGR_LOWER, DAGR_NO_TRANS, diag, 1.0, A, B));
            ok &= SC_EXPECT_WAIT(ctx, DAGR_ERR_NONFINITE, "trmm: the result has", "trmm, NaN in B");
            if (diag == DAGR_NON_UNIT) {
                /* symm reads the lower triangle of A, diagonal included (finite here) */
                dagr_darray_t *S = make(t, M, N, NB, NB, g);
                sc_scatter(S, b);
                SC_TRY(dagr_symm(DAGR_LEFT, DAGR_LOWER, 1.0, A, B, 0.0, S));
                ok &= SC_EXPECT_WAIT(ctx, DAGR_ERR_NONFINITE, "symm: the result has",
                                     "symm, NaN in B");
                dagr_darray_destroy(&S);
            }
            free(a), free(ref), free(b);
            dagr_darray_destroy(&A), dagr_darray_destroy(&B);
        }
    }
    sc_result("nonfinite", ok, "dtype=%s", sc_dtype_name(t));
}

/* ---- argument errors ---- */

static void check_errors(void) {
    dagr_grid_t g = dagr_grid_2d(P, Q);
    int64_t n = 7;
    dagr_darray_t *A = make(DAGR_DOUBLE, n, n, 3, 3, g), *B = make(DAGR_DOUBLE, n, n, 3, 3, g);
    dagr_darray_t *C = make(DAGR_DOUBLE, n, n, 3, 3, g), *F = make(DAGR_FLOAT, n, n, 3, 3, g);
    dagr_darray_t *W = make(DAGR_DOUBLE, n + 1, n, 3, 3, g); /* wrong shape */
    dagr_darray_t *T = make(DAGR_DOUBLE, n, n, 3, 4, g);     /* wrong tiles */
    dagr_darray_t *Z = make(DAGR_INT64, n, n, 3, 3, g);
    dagr_darray_t *R = make(DAGR_DOUBLE, n, n + 2, 3, 3, g); /* not square */
    int ok = 1;
    ok &= SC_EXPECT_STATUS(dagr_gemm(DAGR_NO_TRANS, DAGR_NO_TRANS, 1, A, W, 0, C), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_gemm(DAGR_NO_TRANS, DAGR_NO_TRANS, 1, A, T, 0, C), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_gemm(DAGR_TRANS, DAGR_NO_TRANS, 1, T, B, 0, C), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_gemm(DAGR_NO_TRANS, DAGR_NO_TRANS, 1, A, B, 0, F), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_gemm(DAGR_NO_TRANS, DAGR_NO_TRANS, 1, Z, Z, 0, Z), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_gemm(DAGR_NO_TRANS, DAGR_NO_TRANS, 1, A, B, 0, A), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_gemm((dagr_op_t)7, DAGR_NO_TRANS, 1, A, B, 0, C), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_gemm(DAGR_NO_TRANS, DAGR_NO_TRANS, 1, NULL, B, 0, C), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_syrk(DAGR_LOWER, DAGR_NO_TRANS, 1, A, 0, R), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_syrk(DAGR_LOWER, DAGR_NO_TRANS, 1, W, 0, C), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_syrk(DAGR_LOWER, DAGR_NO_TRANS, 1, A, 0, T), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_syrk(DAGR_LOWER, DAGR_NO_TRANS, 1, F, 0, C), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_symm(DAGR_LEFT, DAGR_LOWER, 1, R, B, 0, C), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_symm(DAGR_LEFT, DAGR_LOWER, 1, A, W, 0, C), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_symm(DAGR_RIGHT, DAGR_UPPER, 1, T, B, 0, C), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_symm(DAGR_LEFT, DAGR_LOWER, 1, A, B, 0, B), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_trsm(DAGR_LEFT, DAGR_LOWER, DAGR_NO_TRANS, DAGR_NON_UNIT, 1, R, B),
                           DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_trsm(DAGR_LEFT, DAGR_LOWER, DAGR_NO_TRANS, DAGR_NON_UNIT, 1, T, B),
                           DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_trsm(DAGR_LEFT, DAGR_LOWER, DAGR_NO_TRANS, DAGR_NON_UNIT, 1, A, W),
                           DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_trsm(DAGR_RIGHT, DAGR_LOWER, DAGR_NO_TRANS, DAGR_NON_UNIT, 1, A, F),
                           DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_trsm(DAGR_LEFT, DAGR_LOWER, DAGR_NO_TRANS, DAGR_NON_UNIT, 1, A, A),
                           DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_trsm(DAGR_LEFT, DAGR_LOWER, DAGR_NO_TRANS, (dagr_diag_t)3, 1, A, B),
                           DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_trmm(DAGR_RIGHT, DAGR_UPPER, DAGR_TRANS, DAGR_UNIT, 1, A, T),
                           DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_trmm((dagr_side_t)2, DAGR_UPPER, DAGR_TRANS, DAGR_UNIT, 1, A, B),
                           DAGR_ERR_ARG);
    /* nothing was inserted: C is still zero */
    double nrm = -1;
    SC_TRY(dagr_darray_norm(C, DAGR_NORM_MAX, &nrm));
    ok &= SC_CHECK(nrm == 0, "C changed: max %g", nrm);
    SC_TRY(dagr_wait_all(ctx));
    sc_result("errors", ok, "-");
    dagr_darray_t *all[] = {A, B, C, F, W, T, Z, R};
    for (size_t k = 0; k < sizeof all / sizeof *all; k++)
        dagr_darray_destroy(&all[k]);
}

/* ---- the recommended tile size ---- */

/* dagr_linalg_tile_size and dagr_linalg_tile_size_for against their documented rule, the
 * same on every rank. */
static void check_tile_size(void) {
    int ok = 1, threads = dagr_threads(ctx), total = 0;
    MPI_Allreduce(&threads, &total, 1, MPI_INT, MPI_SUM, dagr_comm(ctx));
    dagr_job_info_t ji;
    SC_TRY(dagr_job_info(ctx, &ji));
    ok &= SC_CHECK(ji.total_threads == total, "total_threads %d, the ranks have %d",
                   ji.total_threads, total);
    const int64_t sizes[] = {384, 256, 192, 128, 96, 64};
    const int64_t ns[][2] = {{4096, 4096}, {8192, 8192}, {100000, 3000},
                             {1500, 700},  {2048, 2048}, {300, 300}};
    for (int qr = 0; qr <= 1; qr++) {
        /* QR asks for half as many tiles across min(m, n) */
        double want = (qr ? 5.5 : 11.0) * sqrt((double)total);
        for (size_t i = 0; i < sizeof ns / sizeof *ns; i++) {
            int64_t nb = 0, any = 0, t = ns[i][0] < ns[i][1] ? ns[i][0] : ns[i][1];
            SC_TRY(dagr_linalg_tile_size_for(ctx, qr ? DAGR_LA_QR : DAGR_LA_ANY, ns[i][0], ns[i][1],
                                             &nb));
            /* the largest size giving enough tiles across min(m, n); 64 when none does */
            int64_t expect = 64;
            for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++)
                if ((double)((t + sizes[k] - 1) / sizes[k]) >= want) {
                    expect = sizes[k];
                    break;
                }
            ok &= SC_CHECK(nb == expect, "%s, %lld x %lld on %d threads: nb %lld, expected %lld",
                           qr ? "QR" : "any", (long long)ns[i][0], (long long)ns[i][1], total,
                           (long long)nb, (long long)expect);
            SC_TRY(dagr_linalg_tile_size(ctx, ns[i][0], ns[i][1], &any));
            if (!qr)
                ok &= SC_CHECK(any == nb, "tile_size %lld, tile_size_for(ANY) %lld", (long long)any,
                               (long long)nb);
            int64_t lo = 0, hi = 0;
            MPI_Allreduce(&nb, &lo, 1, MPI_INT64_T, MPI_MIN, dagr_comm(ctx));
            MPI_Allreduce(&nb, &hi, 1, MPI_INT64_T, MPI_MAX, dagr_comm(ctx));
            ok &=
                SC_CHECK(lo == hi, "ranks got nb from %lld to %lld", (long long)lo, (long long)hi);
        }
    }
    if (total == 2) { /* the figures in RESULTS.md */
        int64_t a = 0, b = 0, q2 = 0, q4 = 0;
        SC_TRY(dagr_linalg_tile_size(ctx, 4096, 4096, &a));
        SC_TRY(dagr_linalg_tile_size(ctx, 8192, 8192, &b));
        ok &= SC_CHECK(a == 256 && b == 384, "2 threads: nb %lld at 4096, %lld at 8192",
                       (long long)a, (long long)b);
        SC_TRY(dagr_linalg_tile_size_for(ctx, DAGR_LA_QR, 2048, 2048, &q2));
        SC_TRY(dagr_linalg_tile_size_for(ctx, DAGR_LA_QR, 4096, 4096, &q4));
        ok &= SC_CHECK(q2 == 256 && q4 == 384, "2 threads, QR: nb %lld at 2048, %lld at 4096",
                       (long long)q2, (long long)q4);
    }
    int64_t nb = 0;
    SC_TRY(dagr_linalg_tile_size(ctx, 10, 5000, &nb)); /* smaller than the smallest tile */
    ok &= SC_CHECK(nb == 10, "10 x 5000: nb %lld, expected 10", (long long)nb);
    SC_TRY(dagr_linalg_tile_size(ctx, 0, 7, &nb));
    ok &= SC_CHECK(nb == 1, "0 x 7: nb %lld, expected 1", (long long)nb);
    ok &= SC_EXPECT_STATUS(dagr_linalg_tile_size(NULL, 8, 8, &nb), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_linalg_tile_size(ctx, 8, 8, NULL), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_linalg_tile_size(ctx, -1, 8, &nb), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_linalg_tile_size(ctx, 8, -3, &nb), DAGR_ERR_ARG);
    ok &=
        SC_EXPECT_STATUS(dagr_linalg_tile_size_for(ctx, (dagr_la_use_t)2, 8, 8, &nb), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_linalg_tile_size_for(ctx, DAGR_LA_QR, 8, 8, NULL), DAGR_ERR_ARG);
    SC_TRY(dagr_linalg_tile_size_for(ctx, DAGR_LA_QR, 10, 5000, &nb));
    ok &= SC_CHECK(nb == 10, "QR, 10 x 5000: nb %lld, expected 10", (long long)nb);
    sc_result("tile_size", ok, "-");
}

int main(int argc, char **argv) {
    if (argc < 7) {
        fprintf(stderr, "usage: linalg_blas3 P Q M N K NB\n");
        return 2;
    }
    P = atoi(argv[1]);
    Q = atoi(argv[2]);
    M = atoll(argv[3]);
    N = atoll(argv[4]);
    K = atoll(argv[5]);
    NB = atoll(argv[6]);
    SC_TRY(dagr_init(&argc, &argv, NULL, &ctx));
    sc_set_rank(dagr_rank(ctx));
    check_errors();
    check_tile_size();
    dagr_dtype_t types[] = {DAGR_DOUBLE, DAGR_FLOAT};
    for (int k = 0; k < 2; k++) {
        check_gemm(types[k]);
        check_gemm_view(types[k]);
        check_syrk(types[k]);
        check_symm(types[k]);
        check_tri(types[k], true);
        check_tri(types[k], false);
        check_nonfinite(types[k]);
    }
    SC_TRY(dagr_wait_all(ctx));
    int code = sc_exit_code();
    dagr_finalize(&ctx);
    return code;
}
