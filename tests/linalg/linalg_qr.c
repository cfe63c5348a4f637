/* Tile QR and least squares against LAPACK-style residuals on the gathered matrices.
 *
 * Usage: linalg_qr P Q M N NB IB VARIANT NRHS [P Q M N NB IB VARIANT NRHS]...
 *
 * For each problem (a group of eight numbers; several run one after the other in one
 * process, which saves a start of dagr per problem: at 4 ranks on 2 cores, most of a small
 * problem's time): on an M x N array of NB x NB tiles over a P x Q block-cyclic grid
 * (P = Q = 0: the default grid), for double and float, with inner block size IB and QR
 * variant VARIANT (0 auto, 1 tree, 2 flat, 3 LAPACK storage):
 *   qr     dagr_geqrf then dagr_orgqr: ||A - Q R||_1 / (||A||_1 M eps) < 60 and
 *          ||I - Q^T Q||_1 / (M eps) < 60 (qr_view: the same, double only, on a view of a
 *          larger array);
 *   ormqr  Q C, Q^T C (C M x NRHS) and C Q, C Q^T (C NRHS x M) against products with the
 *          explicit M x M Q of dagr_orgqr: ||got - want||_1 / (||C||_1 M eps) < 60;
 *   gels   (M >= N) min ||A X - B||: ||A^T (B - A X)||_1 / (||A||_1 (||A||_1 ||X||_1 +
 *          ||B||_1) M eps) < 60 (the normal equations, a bound free of the condition number);
 *   qr_nonfinite  a NaN or an Inf that geqrf, ormqr, orgqr or gels reads gives
 *          DAGR_ERR_NONFINITE naming the routine;
 * with VARIANT 3 (LAPACK storage) also:
 *   qr_lapack  dagr_geqrf against LAPACK's geqrf on the gathered matrix: R (relative to
 *          ||A||_1), the reflectors V and tau (dagr_qr_tau_fetch) agree to 1e-10 (double) or
 *          1e-3 (float);
 *   qr_from_hh  LAPACK's geqrf factors scattered into a DArray, dagr_qr_from_householder,
 *          then dagr_ormqr (4 side/trans cases) and dagr_orgqr against LAPACK's ormqr/orgqr:
 *          ||got - want||_1 / (||C||_1 M eps) < 60, and dagr_qr_tau_fetch gives tau back;
 * and once, on the first problem's grid, the argument errors with their exact codes. A NaN
 * anywhere else fails.
 *
 * Prints "RANK r problem P Q M N NB IB VARIANT NRHS" before each problem's
 * RANK r RESULT <name> ok|FAIL ... lines. */
#include "scenario.h"

#include <cblas.h>
#include <lapacke.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static dagr_ctx_t *ctx;
static int P, Q, me;
static int64_t M, N, NB, NRHS;
static dagr_linalg_opts_t opts;

#define LIMIT 60.0

static int64_t imax(int64_t a, int64_t b) {
    return a > b ? a : b;
}

static dagr_darray_t *make(dagr_dtype_t t, int64_t m, int64_t n, int64_t mb, int64_t nb) {
    dagr_darray_t *A = NULL;
    SC_TRY(dagr_darray_create(ctx, t, m, n, mb, nb, dagr_grid_2d(P, Q), &A));
    return A;
}

/* A ratio passes when it is a number below LIMIT (a NaN fails). */
static int pass(double r) {
    return r < LIMIT;
}

/* view: factor an M x N view starting at tile (1, 1) of a larger array whose tiles extend
 * past the view's last row and column (partial handles at the edges). */
static void check_qr(dagr_dtype_t t, int view) {
    int64_t kmin = M < N ? M : N, ld = imax(M, 1);
    dagr_darray_t *Big = NULL, *A = NULL, *Qa = make(t, M, kmin, NB, NB);
    if (view) {
        Big = make(t, M + NB + 2, N + NB + 1, NB, NB);
        SC_TRY(dagr_darray_fill(Big, 5.0));
        SC_TRY(dagr_darray_view(Big, NB, NB, M, N, &A));
    } else {
        A = make(t, M, N, NB, NB);
    }
    SC_TRY(dagr_darray_random(A, 7));
    double *a0 = sc_gather(A);
    dagr_qr_t *qr = NULL;
    SC_TRY(dagr_geqrf_ex(A, &qr, &opts));
    SC_TRY(dagr_orgqr(A, qr, Qa));
    double *f = sc_gather(A), *q = sc_gather(Qa);
    /* R: the upper triangle of the first kmin rows */
    double *r = calloc((size_t)(imax(kmin, 1) * N) + 1, sizeof *r);
    for (int64_t j = 0; j < N; j++)
        for (int64_t i = 0; i < kmin && i <= j; i++)
            r[i + j * imax(kmin, 1)] = f[i + j * ld];
    double eps = sc_eps(t), res = 0, orth = 0;
    if (kmin > 0) {
        /* a0 - Q R */
        double anorm = sc_norm1(a0, M, N, ld);
        cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)kmin, -1.0, q,
                    (int)ld, r, (int)kmin, 1.0, a0, (int)ld);
        res = sc_norm1(a0, M, N, ld) / (anorm * (double)M * eps);
        /* I - Q^T Q */
        double *e = calloc((size_t)(kmin * kmin), sizeof *e);
        for (int64_t i = 0; i < kmin; i++)
            e[i + i * kmin] = 1;
        cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, (int)kmin, (int)kmin, (int)M, -1.0, q,
                    (int)ld, q, (int)ld, 1.0, e, (int)kmin);
        orth = sc_norm1(e, kmin, kmin, kmin) / ((double)M * eps);
        free(e);
    }
    long outside = 0; /* entries of the larger array outside the view that changed */
    if (view) {
        double *big = sc_gather(Big);
        int64_t bm = M + NB + 2, bn = N + NB + 1;
        for (int64_t j = 0; j < bn; j++)
            for (int64_t i = 0; i < bm; i++)
                if (!(i >= NB && i < NB + M && j >= NB && j < NB + N))
                    outside += big[i + j * bm] != 5.0;
        free(big);
    }
    sc_result(view ? "qr_view" : "qr",
              SC_CHECK(pass(res) && pass(orth) && outside == 0,
                       "residual %g orthogonality %g, %ld entries outside the view changed", res,
                       orth, outside),
              "dtype=%s resid=%.3g orth=%.3g", sc_dtype_name(t), res, orth);
    free(a0);
    free(f);
    free(q);
    free(r);
    SC_TRY(dagr_qr_destroy(&qr));
    SC_CHECK(qr == NULL, "dagr_qr_destroy left the handle set");
    dagr_darray_destroy(&A);
    dagr_darray_destroy(&Big);
    dagr_darray_destroy(&Qa);
}

static void check_ormqr(dagr_dtype_t t) {
    int64_t ld = imax(M, 1);
    dagr_darray_t *A = make(t, M, N, NB, NB), *Qf = make(t, M, M, NB, NB);
    SC_TRY(dagr_darray_random(A, 11));
    dagr_qr_t *qr = NULL;
    SC_TRY(dagr_geqrf_ex(A, &qr, &opts));
    SC_TRY(dagr_orgqr(A, qr, Qf));
    double *q = sc_gather(Qf), eps = sc_eps(t), worst = 0;
    int ok = 1;
    for (int side = 0; side < 2; side++) {
        for (int tr = 0; tr < 2; tr++) {
            /* LEFT: C is M x NRHS in NB x 5 tiles; RIGHT: NRHS x M in 4 x NB tiles */
            int64_t cm = side == DAGR_LEFT ? M : NRHS, cn = side == DAGR_LEFT ? NRHS : M;
            dagr_darray_t *C = side == DAGR_LEFT ? make(t, cm, cn, NB, 5) : make(t, cm, cn, 4, NB);
            SC_TRY(dagr_darray_random(C, 13));
            double *c = sc_gather(C);
            int64_t ldc = imax(cm, 1);
            SC_TRY(dagr_ormqr((dagr_side_t)side, (dagr_op_t)tr, A, qr, C));
            double *got = sc_gather(C), *want = calloc((size_t)(ldc * cn) + 1, sizeof *want);
            if (cm > 0 && cn > 0) {
                if (side == DAGR_LEFT)
                    cblas_dgemm(CblasColMajor, tr ? CblasTrans : CblasNoTrans, CblasNoTrans,
                                (int)cm, (int)cn, (int)M, 1.0, q, (int)ld, c, (int)ldc, 0.0, want,
                                (int)ldc);
                else
                    cblas_dgemm(CblasColMajor, CblasNoTrans, tr ? CblasTrans : CblasNoTrans,
                                (int)cm, (int)cn, (int)M, 1.0, c, (int)ldc, q, (int)ld, 0.0, want,
                                (int)ldc);
            }
            for (int64_t k = 0; k < ldc * cn; k++)
                got[k] -= want[k];
            double cnorm = sc_norm1(c, cm, cn, ldc);
            double r =
                cm > 0 && cn > 0 ? sc_norm1(got, cm, cn, ldc) / (cnorm * (double)M * eps) : 0;
            ok &= SC_CHECK(pass(r), "ormqr side=%d trans=%d ratio %g", side, tr, r);
            if (!(r <= worst)) worst = r;
            free(c);
            free(got);
            free(want);
            dagr_darray_destroy(&C);
        }
    }
    sc_result("ormqr", ok, "dtype=%s worst=%.3g", sc_dtype_name(t), worst);
    free(q);
    SC_TRY(dagr_qr_destroy(&qr));
    dagr_darray_destroy(&A);
    dagr_darray_destroy(&Qf);
}

static void check_gels(dagr_dtype_t t) {
    if (M < N) return;
    int64_t ld = imax(M, 1);
    dagr_darray_t *A = make(t, M, N, NB, NB), *B = make(t, M, NRHS, NB, 3);
    SC_TRY(dagr_darray_random(A, 17));
    SC_TRY(dagr_darray_random(B, 19));
    double *a = sc_gather(A), *b = sc_gather(B);
    SC_TRY(dagr_gels_ex(A, B, &opts));
    double *xb = sc_gather(B), eps = sc_eps(t);
    double *x = calloc((size_t)(imax(N, 1) * NRHS) + 1, sizeof *x);
    for (int64_t j = 0; j < NRHS; j++)
        for (int64_t i = 0; i < N; i++)
            x[i + j * imax(N, 1)] = xb[i + j * ld];
    double ratio = 0;
    if (M > 0 && N > 0 && NRHS > 0) {
        double anorm = sc_norm1(a, M, N, ld), bnorm = sc_norm1(b, M, NRHS, ld);
        double xnorm = sc_norm1(x, N, NRHS, N);
        /* r = B - A X, then A^T r */
        cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)NRHS, (int)N, -1.0, a,
                    (int)ld, x, (int)N, 1.0, b, (int)ld);
        double *atr = calloc((size_t)(N * NRHS), sizeof *atr);
        cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, (int)N, (int)NRHS, (int)M, 1.0, a,
                    (int)ld, b, (int)ld, 0.0, atr, (int)N);
        ratio = sc_norm1(atr, N, NRHS, N) / (anorm * (anorm * xnorm + bnorm) * (double)M * eps);
        free(atr);
    }
    sc_result("gels", SC_CHECK(pass(ratio), "normal-equations residual %g", ratio),
              "dtype=%s ratio=%.3g", sc_dtype_name(t), ratio);
    free(a);
    free(b);
    free(xb);
    free(x);
    dagr_darray_destroy(&A);
    dagr_darray_destroy(&B);
}

/* The results of geqrf, ormqr, orgqr and gels are checked for NaN and Inf: each gives
 * DAGR_ERR_NONFINITE on every rank naming the routine when what it reads holds one; gels on a
 * rank-deficient A gives DAGR_ERR_SINGULAR naming the first zero column of R. */
static void check_nonfinite(dagr_dtype_t t) {
    int ok = 1;
    int64_t kmin = M < N ? M : N, ld = imax(M, 1);
    dagr_darray_t *A = make(t, M, N, NB, NB);
    SC_TRY(dagr_darray_random(A, 23));
    double *a = sc_gather(A);
    dagr_qr_t *qr = NULL;
    if (kmin > 0) {
        a[M / 2 + (N / 2) * ld] = NAN;
        sc_scatter(A, a);
        SC_TRY(dagr_geqrf_ex(A, &qr, &opts));
        ok &= SC_EXPECT_WAIT(ctx, DAGR_ERR_NONFINITE, "geqrf: the result has", "geqrf, NaN in A");
        SC_TRY(dagr_qr_destroy(&qr));
        a[M / 2 + (N / 2) * ld] = 0.5;
        sc_scatter(A, a);
    }
    /* a finite factorization; then a NaN in C for ormqr */
    SC_TRY(dagr_geqrf_ex(A, &qr, &opts));
    ok &= SC_EXPECT_WAIT(ctx, DAGR_OK, NULL, "geqrf, finite A");
    if (M > 0 && NRHS > 0) {
        dagr_darray_t *C = make(t, M, NRHS, NB, 3);
        SC_TRY(dagr_darray_random(C, 24));
        double *c = sc_gather(C);
        c[M - 1] = NAN;
        sc_scatter(C, c);
        SC_TRY(dagr_ormqr(DAGR_LEFT, DAGR_TRANS, A, qr, C));
        ok &= SC_EXPECT_WAIT(ctx, DAGR_ERR_NONFINITE, "ormqr: the result has", "ormqr, NaN in C");
        free(c);
        dagr_darray_destroy(&C);
    }
    /* orgqr: an Inf in a reflector (below the diagonal of the first column) */
    if (M > 1 && N > 0) {
        double *f = sc_gather(A);
        f[M - 1] = INFINITY;
        sc_scatter(A, f);
        dagr_darray_t *Qa = make(t, M, kmin, NB, NB);
        SC_TRY(dagr_orgqr(A, qr, Qa));
        ok &= SC_EXPECT_WAIT(ctx, DAGR_ERR_NONFINITE, "orgqr: the result has", "orgqr, Inf in A");
        free(f);
        dagr_darray_destroy(&Qa);
    }
    SC_TRY(dagr_qr_destroy(&qr));
    if (M >= N && M > 0 && NRHS > 0) {
        dagr_darray_t *B = make(t, M, NRHS, NB, 3);
        SC_TRY(dagr_darray_random(B, 25));
        double *b = sc_gather(B);
        b[M - 1 + (NRHS - 1) * ld] = NAN; /* the last row: not part of X, but it reaches X */
        sc_scatter(A, a);
        sc_scatter(B, b);
        SC_TRY(dagr_gels_ex(A, B, &opts));
        ok &= SC_EXPECT_WAIT(ctx, DAGR_ERR_NONFINITE, "gels: the result has", "gels, NaN in B");
        b[M - 1 + (NRHS - 1) * ld] = 0.5;
        /* (an Inf would not do on a 1 x 1 A: X = B / Inf = 0 is finite) */
        if (N > 0) a[0] = NAN;
        sc_scatter(A, a);
        sc_scatter(B, b);
        SC_TRY(dagr_gels_ex(A, B, &opts));
        ok &= SC_EXPECT_WAIT(ctx, N > 0 ? DAGR_ERR_NONFINITE : DAGR_OK,
                             N > 0 ? "gels: the result has" : NULL, "gels, NaN in A");
        /* Rank deficient: a zero column gives an exactly zero R(c, c), which gels reports as
         * LAPACK's does (DAGR_ERR_SINGULAR naming the column) instead of dividing by it. With
         * two zero columns the first is named. */
        for (int64_t c = N > 1 ? N / 2 : 0; N > 0 && c >= 0; c = -1) {
            SC_TRY(dagr_darray_random(A, 26));
            free(a);
            a = sc_gather(A);
            for (int64_t i = 0; i < M; i++) {
                a[i + c * ld] = 0.0;
                a[i + (N - 1) * ld] = 0.0;
            }
            sc_scatter(A, a);
            SC_TRY(dagr_darray_random(B, 27));
            SC_TRY(dagr_gels_ex(A, B, &opts));
            char want[96];
            snprintf(want, sizeof want, "R(%lld,%lld) is zero", (long long)c + 1, (long long)c + 1);
            ok &= SC_EXPECT_WAIT(ctx, DAGR_ERR_SINGULAR, want, "gels, zero columns");
        }
        free(b);
        dagr_darray_destroy(&B);
    }
    sc_result("qr_nonfinite", ok, "dtype=%s", sc_dtype_name(t));
    free(a);
    dagr_darray_destroy(&A);
}

/* LAPACK's geqrf on the column-major M x N doubles a (in place, ld = sc_ld(M)) in dtype t;
 * tau (min(M, N) doubles) receives tau. The float case runs sgeqrf on a float copy. */
static void lapack_geqrf(dagr_dtype_t t, double *a, double *tau) {
    int64_t ld = sc_ld(M), kmin = M < N ? M : N;
    if (kmin == 0) return;
    if (t == DAGR_DOUBLE) {
        SC_CHECK(LAPACKE_dgeqrf(LAPACK_COL_MAJOR, (int)M, (int)N, a, (int)ld, tau) == 0, "dgeqrf");
        return;
    }
    float *af = malloc((size_t)(ld * N) * sizeof *af), *tf = malloc((size_t)kmin * sizeof *tf);
    for (int64_t k = 0; k < ld * N; k++)
        af[k] = (float)a[k];
    SC_CHECK(LAPACKE_sgeqrf(LAPACK_COL_MAJOR, (int)M, (int)N, af, (int)ld, tf) == 0, "sgeqrf");
    for (int64_t k = 0; k < ld * N; k++)
        a[k] = af[k];
    for (int64_t k = 0; k < kmin; k++)
        tau[k] = tf[k];
    free(af);
    free(tf);
}

/* tau as dagr_qr_tau_fetch writes it (dtype t) from / to doubles. */
static void *tau_in(dagr_dtype_t t, const double *tau, int64_t n) {
    void *v = calloc((size_t)n + 1, sizeof(double));
    for (int64_t k = 0; k < n; k++)
        if (t == DAGR_DOUBLE)
            ((double *)v)[k] = tau[k];
        else
            ((float *)v)[k] = (float)tau[k];
    return v;
}
static double tau_at(dagr_dtype_t t, const void *v, int64_t k) {
    return t == DAGR_DOUBLE ? ((const double *)v)[k] : ((const float *)v)[k];
}

static void check_lapack(dagr_dtype_t t) {
    int64_t ld = sc_ld(M), kmin = M < N ? M : N;
    dagr_darray_t *A = make(t, M, N, NB, NB);
    SC_TRY(dagr_darray_random(A, 29));
    double *l = sc_gather(A), *taul = calloc((size_t)kmin + 1, sizeof *taul);
    double anorm = sc_norm1(l, M, N, ld);
    void *tau = calloc((size_t)kmin + 1, sizeof(double));
    dagr_qr_t *qr = NULL;
    SC_TRY(dagr_geqrf_ex(A, &qr, &opts));
    SC_TRY(dagr_qr_tau_fetch(qr, tau));
    double *f = sc_gather(A);
    lapack_geqrf(t, l, taul);
    double dr = 0, dv = 0, dt = 0;
    for (int64_t j = 0; j < N; j++)
        for (int64_t i = 0; i < M; i++) {
            double d = fabs(f[i + j * ld] - l[i + j * ld]);
            if (i <= j) {
                d /= anorm > 0 ? anorm : 1;
                if (!(d <= dr)) dr = d;
            } else if (!(d <= dv)) {
                dv = d;
            }
        }
    for (int64_t k = 0; k < kmin; k++) {
        double d = fabs(tau_at(t, tau, k) - taul[k]);
        if (!(d <= dt)) dt = d;
    }
    double tol = t == DAGR_DOUBLE ? 1e-10 : 1e-3;
    sc_result("qr_lapack",
              SC_CHECK(dr < tol && dv < tol && dt < tol, "R %g V %g tau %g (tolerance %g)", dr, dv,
                       dt, tol),
              "dtype=%s R=%.3g V=%.3g tau=%.3g", sc_dtype_name(t), dr, dv, dt);
    free(l);
    free(f);
    free(taul);
    free(tau);
    SC_TRY(dagr_qr_destroy(&qr));
    dagr_darray_destroy(&A);
}

/* LAPACK's ormqr (side, trans) of the reflectors in a (ld = sc_ld(M)) on c (cm x cn), in
 * dtype t, in place. */
static void lapack_ormqr(dagr_dtype_t t, int side, int tr, int64_t cm, int64_t cn, const double *a,
                         const double *tau, double *c) {
    int64_t ld = sc_ld(M), ldc = sc_ld(cm), kmin = M < N ? M : N;
    char sd = side == DAGR_LEFT ? 'L' : 'R', tc = tr ? 'T' : 'N';
    if (cm == 0 || cn == 0 || kmin == 0) return;
    if (t == DAGR_DOUBLE) {
        SC_CHECK(LAPACKE_dormqr(LAPACK_COL_MAJOR, sd, tc, (int)cm, (int)cn, (int)kmin, a, (int)ld,
                                tau, c, (int)ldc) == 0,
                 "dormqr");
        return;
    }
    float *af = malloc((size_t)(ld * N) * sizeof *af), *tf = malloc((size_t)kmin * sizeof *tf);
    float *cf = malloc((size_t)(ldc * cn) * sizeof *cf);
    for (int64_t k = 0; k < ld * N; k++)
        af[k] = (float)a[k];
    for (int64_t k = 0; k < kmin; k++)
        tf[k] = (float)tau[k];
    for (int64_t k = 0; k < ldc * cn; k++)
        cf[k] = (float)c[k];
    SC_CHECK(LAPACKE_sormqr(LAPACK_COL_MAJOR, sd, tc, (int)cm, (int)cn, (int)kmin, af, (int)ld, tf,
                            cf, (int)ldc) == 0,
             "sormqr");
    for (int64_t k = 0; k < ldc * cn; k++)
        c[k] = cf[k];
    free(af);
    free(tf);
    free(cf);
}

static void check_from_hh(dagr_dtype_t t) {
    int64_t ld = sc_ld(M), kmin = M < N ? M : N;
    dagr_darray_t *A = make(t, M, N, NB, NB);
    SC_TRY(dagr_darray_random(A, 31));
    double *a = sc_gather(A), *tau = calloc((size_t)kmin + 1, sizeof *tau), eps = sc_eps(t);
    /* rank 0's factors, so that every rank passes the same tau */
    lapack_geqrf(t, a, tau);
    MPI_Bcast(a, (int)(ld * N), MPI_DOUBLE, 0, dagr_comm(ctx));
    MPI_Bcast(tau, (int)kmin, MPI_DOUBLE, 0, dagr_comm(ctx));
    sc_scatter(A, a);
    void *tv = tau_in(t, tau, kmin), *back = calloc((size_t)kmin + 1, sizeof(double));
    dagr_qr_t *qr = NULL;
    SC_TRY(dagr_qr_from_householder(A, tv, &qr));
    free(tv);
    SC_TRY(dagr_qr_tau_fetch(qr, back));
    int ok = 1;
    for (int64_t k = 0; k < kmin; k++)
        ok &= SC_CHECK(tau_at(t, back, k) == tau[k], "tau %lld: %g fetched, %g given", (long long)k,
                       tau_at(t, back, k), tau[k]);
    double worst = 0;
    for (int side = 0; side < 2; side++)
        for (int tr = 0; tr < 2; tr++) {
            int64_t cm = side == DAGR_LEFT ? M : NRHS, cn = side == DAGR_LEFT ? NRHS : M;
            dagr_darray_t *C = side == DAGR_LEFT ? make(t, cm, cn, NB, 5) : make(t, cm, cn, 4, NB);
            SC_TRY(dagr_darray_random(C, 37));
            double *c = sc_gather(C);
            SC_TRY(dagr_ormqr((dagr_side_t)side, (dagr_op_t)tr, A, qr, C));
            double *got = sc_gather(C), cnorm = sc_norm1(c, cm, cn, sc_ld(cm));
            lapack_ormqr(t, side, tr, cm, cn, a, tau, c);
            for (int64_t k = 0; k < sc_ld(cm) * cn; k++)
                got[k] -= c[k];
            double r = cm > 0 && cn > 0 && kmin > 0
                           ? sc_norm1(got, cm, cn, sc_ld(cm)) / (cnorm * (double)M * eps)
                           : 0;
            ok &= SC_CHECK(pass(r), "ormqr side=%d trans=%d against LAPACK: ratio %g", side, tr, r);
            if (!(r <= worst)) worst = r;
            free(c);
            free(got);
            dagr_darray_destroy(&C);
        }
    /* orgqr: Q's first kmin columns against LAPACK's ormqr on the identity */
    if (kmin > 0) {
        dagr_darray_t *Qa = make(t, M, kmin, NB, NB);
        SC_TRY(dagr_orgqr(A, qr, Qa));
        double *q = sc_gather(Qa), *e = calloc((size_t)(ld * kmin), sizeof *e);
        for (int64_t k = 0; k < kmin; k++)
            e[k + k * ld] = 1;
        lapack_ormqr(t, DAGR_LEFT, 0, M, kmin, a, tau, e);
        for (int64_t k = 0; k < ld * kmin; k++)
            q[k] -= e[k];
        double r = sc_norm1(q, M, kmin, ld) / ((double)M * eps);
        ok &= SC_CHECK(pass(r), "orgqr against LAPACK: ratio %g", r);
        if (!(r <= worst)) worst = r;
        free(q);
        free(e);
        dagr_darray_destroy(&Qa);
    }
    sc_result("qr_from_hh", ok, "dtype=%s worst=%.3g", sc_dtype_name(t), worst);
    free(a);
    free(tau);
    free(back);
    SC_TRY(dagr_qr_destroy(&qr));
    dagr_darray_destroy(&A);
}

static void check_errors(void) {
    int ok = 1;
    dagr_qr_t *qr = NULL;
    dagr_darray_t *rect = make(DAGR_DOUBLE, 12, 8, 4, 3);
    ok &= SC_EXPECT_STATUS(dagr_geqrf(rect, &qr), DAGR_ERR_ARG); /* tiles not square */
    dagr_darray_t *ints = make(DAGR_INT64, 8, 8, 4, 4);
    ok &= SC_EXPECT_STATUS(dagr_geqrf(ints, &qr), DAGR_ERR_ARG); /* dtype */
    dagr_darray_t *A = make(DAGR_DOUBLE, 12, 8, 4, 4);
    ok &= SC_EXPECT_STATUS(dagr_geqrf(A, NULL), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_geqrf(NULL, &qr), DAGR_ERR_ARG);
    dagr_linalg_opts_t bad;
    dagr_linalg_opts_init(&bad);
    bad.variant = 7;
    ok &= SC_EXPECT_STATUS(dagr_geqrf_ex(A, &qr, &bad), DAGR_ERR_ARG);
    ok &= SC_CHECK(qr == NULL, "qr set by a failed call");
    bad.variant = 4;
    ok &= SC_EXPECT_STATUS(dagr_geqrf_ex(A, &qr, &bad), DAGR_ERR_ARG);
    ok &= SC_CHECK(strstr(dagr_last_error(), "QR variant 4 is unknown") != NULL, "%s",
                   dagr_last_error());
    /* variant 3 has no inner blocking: an ib is refused, not ignored */
    bad.variant = 3;
    bad.ib = 16;
    ok &= SC_EXPECT_STATUS(dagr_geqrf_ex(A, &qr, &bad), DAGR_ERR_ARG);
    ok &= SC_CHECK(strstr(dagr_last_error(), "opts->ib") != NULL, "%s", dagr_last_error());
    dagr_darray_t *B12 = make(DAGR_DOUBLE, 12, 2, 4, 4);
    ok &= SC_EXPECT_STATUS(dagr_gels_ex(A, B12, &bad), DAGR_ERR_ARG);
    ok &= SC_CHECK(strstr(dagr_last_error(), "opts->ib") != NULL, "%s", dagr_last_error());
    dagr_darray_destroy(&B12);
    ok &= SC_CHECK(qr == NULL, "qr set by a failed call");
    /* tau exists only in LAPACK storage */
    dagr_linalg_opts_init(&bad);
    bad.variant = 2;
    double tau[8];
    SC_TRY(dagr_darray_random(A, 3));
    SC_TRY(dagr_geqrf_ex(A, &qr, &bad));
    ok &= SC_EXPECT_STATUS(dagr_qr_tau_fetch(qr, tau), DAGR_ERR_ARG);
    ok &= SC_CHECK(strstr(dagr_last_error(), "tile-form factor") != NULL, "%s", dagr_last_error());
    SC_TRY(dagr_qr_destroy(&qr));
    ok &= SC_EXPECT_STATUS(dagr_qr_tau_fetch(NULL, tau), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_qr_from_householder(A, tau, NULL), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_qr_from_householder(A, NULL, &qr), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_qr_from_householder(NULL, tau, &qr), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_qr_from_householder(rect, tau, &qr), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_qr_from_householder(ints, tau, &qr), DAGR_ERR_ARG);
    ok &= SC_CHECK(qr == NULL, "qr set by a failed call");
    /* Options are honoured or refused, never ignored: an out-of-range one, and one the routine
     * does not use, name the option. */
    dagr_linalg_opts_init(&bad);
    bad.ib = 0;
    ok &= SC_EXPECT_STATUS(dagr_geqrf_ex(A, &qr, &bad), DAGR_ERR_ARG);
    ok &= SC_CHECK(strstr(dagr_last_error(), "opts->ib") != NULL, "%s", dagr_last_error());
    dagr_linalg_opts_init(&bad);
    bad.lookahead = -1;
    ok &= SC_EXPECT_STATUS(dagr_geqrf_ex(A, &qr, &bad), DAGR_ERR_ARG);
    ok &= SC_CHECK(strstr(dagr_last_error(), "opts->lookahead") != NULL, "%s", dagr_last_error());
    dagr_linalg_opts_init(&bad);
    bad.variant = 1;
    ok &= SC_EXPECT_STATUS(dagr_gemm_ex(DAGR_NO_TRANS, DAGR_NO_TRANS, 1.0, A, A, 0.0, A, &bad),
                           DAGR_ERR_ARG);
    ok &= SC_CHECK(strstr(dagr_last_error(), "dagr_gemm_ex has no variants") != NULL, "%s",
                   dagr_last_error());
    SC_TRY(dagr_darray_random(A, 3));
    SC_TRY(dagr_geqrf(A, &qr));
    dagr_darray_t *Cbad = make(DAGR_DOUBLE, 12, 2, 3, 3); /* row tiles differ */
    ok &= SC_EXPECT_STATUS(dagr_ormqr(DAGR_LEFT, DAGR_TRANS, A, qr, Cbad), DAGR_ERR_ARG);
    dagr_darray_t *Cshort = make(DAGR_DOUBLE, 11, 2, 4, 4); /* rows differ */
    ok &= SC_EXPECT_STATUS(dagr_ormqr(DAGR_LEFT, DAGR_TRANS, A, qr, Cshort), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_ormqr(DAGR_RIGHT, DAGR_TRANS, A, qr, Cshort), DAGR_ERR_ARG);
    dagr_linalg_opts_init(&bad);
    bad.lookahead = 2;
    ok &= SC_EXPECT_STATUS(dagr_ormqr_ex(DAGR_LEFT, DAGR_TRANS, A, qr, Cshort, &bad), DAGR_ERR_ARG);
    ok &= SC_CHECK(strstr(dagr_last_error(), "dagr_ormqr_ex does not use opts->lookahead") != NULL,
                   "%s", dagr_last_error());
    dagr_linalg_opts_init(&bad);
    bad.ib = 16;
    ok &= SC_EXPECT_STATUS(dagr_orgqr_ex(A, qr, Cshort, &bad), DAGR_ERR_ARG);
    dagr_darray_t *Cf = make(DAGR_FLOAT, 12, 2, 4, 4); /* dtype differs */
    ok &= SC_EXPECT_STATUS(dagr_ormqr(DAGR_LEFT, DAGR_TRANS, A, qr, Cf), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_ormqr((dagr_side_t)5, DAGR_TRANS, A, qr, Cshort), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_ormqr(DAGR_LEFT, DAGR_TRANS, A, NULL, Cshort), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_ormqr(DAGR_LEFT, DAGR_TRANS, rect, qr, Cshort), DAGR_ERR_ARG);
    dagr_darray_t *Qwide = make(DAGR_DOUBLE, 12, 13, 4, 4); /* more columns than rows */
    ok &= SC_EXPECT_STATUS(dagr_orgqr(A, qr, Qwide), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_orgqr(A, qr, Cf), DAGR_ERR_ARG);
    SC_TRY(dagr_qr_destroy(&qr));
    ok &= SC_EXPECT_STATUS(dagr_qr_destroy(&qr), DAGR_OK); /* NULL tolerated */
    ok &= SC_EXPECT_STATUS(dagr_qr_destroy(NULL), DAGR_OK);
    /* gels: m < n, B rows or tiles that do not match, dtype */
    dagr_darray_t *W = make(DAGR_DOUBLE, 8, 12, 4, 4), *BW = make(DAGR_DOUBLE, 8, 2, 4, 4);
    ok &= SC_EXPECT_STATUS(dagr_gels(W, BW), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_gels(A, Cshort), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_gels(A, Cbad), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_gels(A, Cf), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_gels(rect, Cbad), DAGR_ERR_ARG);
    SC_TRY(dagr_wait_all(ctx));
    sc_result("qr_errors", ok, "codes=checked");
    dagr_darray_t *all[] = {rect, ints, A, Cbad, Cshort, Cf, Qwide, W, BW};
    for (size_t k = 0; k < sizeof all / sizeof *all; k++)
        dagr_darray_destroy(&all[k]);
}

/* Reads problem k's eight numbers from argv into the globals. */
static void set_problem(char **argv, int k) {
    char **a = argv + 1 + 8 * k;
    P = atoi(a[0]);
    Q = atoi(a[1]);
    M = atoll(a[2]);
    N = atoll(a[3]);
    NB = atoll(a[4]);
    dagr_linalg_opts_init(&opts);
    opts.ib = atoi(a[5]);
    opts.variant = atoi(a[6]);
    NRHS = atoll(a[7]);
}

int main(int argc, char **argv) {
    if (argc < 9 || (argc - 1) % 8 != 0) {
        fprintf(stderr, "usage: linalg_qr P Q M N NB IB VARIANT NRHS [P Q M N NB IB VARIANT "
                        "NRHS]...\n");
        return 2;
    }
    int problems = (argc - 1) / 8;
    /* dagr_init may take MPI's arguments out of argv: keep the problems' */
    char **args = malloc((size_t)argc * sizeof *args);
    memcpy(args, argv, (size_t)argc * sizeof *args);
    SC_TRY(dagr_init(&argc, &argv, NULL, &ctx));
    me = dagr_rank(ctx);
    sc_set_rank(me);
    set_problem(args, 0);
    check_errors();
    for (int p = 0; p < problems; p++) {
        set_problem(args, p);
        sc_say("problem %d %d %lld %lld %lld %d %d %lld", P, Q, (long long)M, (long long)N,
               (long long)NB, opts.ib, opts.variant, (long long)NRHS);
        check_qr(DAGR_DOUBLE, 1);
        dagr_dtype_t types[] = {DAGR_DOUBLE, DAGR_FLOAT};
        for (int k = 0; k < 2; k++) {
            check_qr(types[k], 0);
            check_ormqr(types[k]);
            check_gels(types[k]);
            check_nonfinite(types[k]);
            if (opts.variant == 3) {
                check_lapack(types[k]);
                check_from_hh(types[k]);
            }
        }
    }
    SC_TRY(dagr_wait_all(ctx));
    free(args);
    int code = sc_exit_code();
    dagr_finalize(&ctx);
    return code;
}
