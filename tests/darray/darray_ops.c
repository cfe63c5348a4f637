/* DArray operations against serial computations on the gathered matrix.
 *
 * Usage: darray_ops P Q M N MB NB
 *
 * Builds M x N arrays of MB x NB tiles on a P x Q block-cyclic grid (P = Q = 0: the default
 * grid) and checks, for double, float and int64: fill, zeros, identity, random (identical bit
 * for bit on another tiling and distribution; the hash of the double matrix is printed so that
 * runs at different rank counts can be compared), from_fn, scatter/gather from and to one rank
 * and all ranks, set/get, map (in place and to another distribution), scale, shift, axpby,
 * add, mul (with a broadcast scalar too), sum/min/max and the four norms (also with entries
 * of 1e200 and with a NaN), copy to another tiling and grid, redistribute, transpose, views
 * (writes through a view reach the parent) and copied sub-arrays; and the argument errors.
 *
 * Prints RANK r RESULT <name> ok|FAIL ... lines, and RESULT random ok hash=H. */
#include "scenario.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static dagr_ctx_t *ctx;
static int P, Q, me, nranks;
static int64_t M, N, MB, NB;

/* Counts the elements of got that differ from want by more than tol * (1 + |want|). */
static long mismatches(const double *got, const double *want, int64_t count, double tol) {
    long bad = 0;
    for (int64_t k = 0; k < count; k++) {
        double d = fabs(got[k] - want[k]);
        if (!(d <= tol * (1 + fabs(want[k]))) && !(isnan(got[k]) && isnan(want[k]))) {
            if (bad < 3)
                sc_say("mismatch at %lld: got %.17g want %.17g", (long long)k, got[k], want[k]);
            bad++;
        }
    }
    return bad;
}

static void expect_matrix(const char *name, const dagr_darray_t *A, const double *want,
                          double tol) {
    double *got = sc_gather(A);
    int64_t m = dagr_darray_rows(A), n = dagr_darray_cols(A);
    long bad = mismatches(got, want, (m > 1 ? m : 1) * n * (m > 0), tol);
    sc_result(name, bad == 0, "dtype=%s mismatches=%ld", sc_dtype_name(dagr_darray_dtype(A)), bad);
    free(got);
}

static double tol_of(dagr_dtype_t t) {
    return t == DAGR_FLOAT ? 1e-5 : t == DAGR_INT64 ? 0 : 1e-13;
}

/* Values that fit every dtype exactly enough: small integers and halves. */
static double val(int64_t i, int64_t j, void *user) {
    (void)user;
    return (double)((i * 7 + j * 13) % 41) - 20;
}

static void map_square_plus_row(const dagr_tile_t *in, dagr_tile_t *out, void *user) {
    double add = *(const double *)user;
    for (int64_t c = 0; c < in->cols; c++) {
        for (int64_t r = 0; r < in->rows; r++) {
            double x = in->dtype == DAGR_FLOAT   ? ((float *)in->data)[r + c * in->ld]
                       : in->dtype == DAGR_INT64 ? (double)((int64_t *)in->data)[r + c * in->ld]
                                                 : ((double *)in->data)[r + c * in->ld];
            double y = x * x + (double)(in->i0 + r) + add;
            if (out->dtype == DAGR_DOUBLE) ((double *)out->data)[r + c * out->ld] = y;
            if (out->dtype == DAGR_FLOAT) ((float *)out->data)[r + c * out->ld] = (float)y;
            if (out->dtype == DAGR_INT64) ((int64_t *)out->data)[r + c * out->ld] = (int64_t)y;
        }
    }
}

static uint64_t fnv(const void *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t k = 0; k < n; k++)
        h = (h ^ ((const unsigned char *)p)[k]) * 1099511628211ull;
    return h;
}

static dagr_darray_t *make(dagr_dtype_t t, int64_t m, int64_t n, int64_t mb, int64_t nb,
                           dagr_grid_t g) {
    dagr_darray_t *A = NULL;
    SC_TRY(dagr_darray_create(ctx, t, m, n, mb, nb, g, &A));
    return A;
}

static int rank_of_reverse(int64_t ti, int64_t tj, void *user) {
    (void)user;
    return (int)((ti * 3 + tj) % nranks);
}

/* ---- the checks ---- */

static void check_fill(dagr_dtype_t t) {
    int64_t ld = M > 1 ? M : 1, cnt = ld * N;
    double *want = calloc((size_t)cnt + 1, sizeof *want);
    dagr_darray_t *A = make(t, M, N, MB, NB, dagr_grid_2d(P, Q));
    SC_TRY(dagr_darray_fill(A, 2.5));
    for (int64_t k = 0; k < cnt; k++)
        want[k] = t == DAGR_INT64 ? 3 : 2.5; /* rounded */
    expect_matrix("fill", A, want, 0);
    SC_TRY(dagr_darray_zeros(A));
    memset(want, 0, (size_t)cnt * sizeof *want);
    expect_matrix("zeros", A, want, 0);
    SC_TRY(dagr_darray_identity(A));
    for (int64_t j = 0; j < N; j++)
        for (int64_t i = 0; i < M; i++)
            want[i + j * ld] = i == j;
    expect_matrix("identity", A, want, 0);
    SC_TRY(dagr_darray_from_fn(A, val, NULL));
    for (int64_t j = 0; j < N; j++)
        for (int64_t i = 0; i < M; i++)
            want[i + j * ld] = val(i, j, NULL);
    expect_matrix("from_fn", A, want, 0);
    dagr_darray_destroy(&A);
    free(want);
}

static void check_random(dagr_dtype_t t) {
    dagr_darray_t *A = make(t, M, N, MB, NB, dagr_grid_2d(P, Q));
    dagr_darray_t *B = make(t, M, N, MB + 3, 2 * NB + 1, dagr_grid_row_cyclic());
    dagr_darray_t *C = make(t, M, N, 1 + MB / 2, NB, dagr_grid_custom(rank_of_reverse, NULL));
    SC_TRY(dagr_darray_random(A, 42));
    SC_TRY(dagr_darray_random(B, 42));
    SC_TRY(dagr_darray_random(C, 42));
    int64_t ld = M > 1 ? M : 1;
    size_t bytes = (size_t)(ld * N) * dagr_dtype_size(t);
    void *a = calloc(bytes + 8, 1), *b = calloc(bytes + 8, 1), *c = calloc(bytes + 8, 1);
    SC_TRY(dagr_darray_gather(A, a, ld, -1));
    SC_TRY(dagr_darray_gather(B, b, ld, -1));
    SC_TRY(dagr_darray_gather(C, c, ld, 0));
    int ok = SC_CHECK(memcmp(a, b, bytes) == 0, "random differs between tilings");
    if (me == 0) ok &= SC_CHECK(memcmp(a, c, bytes) == 0, "random differs on a custom grid");
    /* Range and a crude uniformity check on the double matrix. */
    double *d = sc_gather(A), lo = 1e300, hi = -1e300, mean = 0;
    int64_t cnt = M * N;
    for (int64_t j = 0; j < N; j++)
        for (int64_t i = 0; i < M; i++) {
            double x = d[i + j * ld];
            lo = fmin(lo, x);
            hi = fmax(hi, x);
            mean += x / (double)cnt;
        }
    double top = t == DAGR_INT64 ? 0x1p62 : 1.0;
    if (cnt > 0) ok &= SC_CHECK(lo >= 0 && hi < top, "random outside [0, %g): %g %g", top, lo, hi);
    if (cnt >= 1000)
        ok &= SC_CHECK(fabs(mean / top - 0.5) < 0.05, "random mean %g of %g", mean, top);
    /* Another seed gives other numbers. */
    SC_TRY(dagr_darray_random(B, 43));
    SC_TRY(dagr_darray_gather(B, b, ld, -1));
    if (cnt > 4) ok &= SC_CHECK(memcmp(a, b, bytes) != 0, "seeds 42 and 43 agree");
    sc_result("random", ok, "dtype=%s hash=%llu", sc_dtype_name(t),
              (unsigned long long)fnv(a, bytes));
    free(a);
    free(b);
    free(c);
    free(d);
    dagr_darray_destroy(&A);
    dagr_darray_destroy(&B);
    dagr_darray_destroy(&C);
}

static void check_scatter_gather(dagr_dtype_t t) {
    int64_t ld = M + 3, cnt = ld * N; /* a leading dimension larger than m */
    size_t es = dagr_dtype_size(t);
    char *src = calloc((size_t)cnt + 1, es), *dst = calloc((size_t)cnt + 1, es);
    for (int64_t k = 0; k < cnt; k++) {
        double v = (double)(k % 1000) - 500;
        if (t == DAGR_DOUBLE) ((double *)src)[k] = v;
        if (t == DAGR_FLOAT) ((float *)src)[k] = (float)v;
        if (t == DAGR_INT64) ((int64_t *)src)[k] = (int64_t)v;
    }
    dagr_darray_t *A = make(t, M, N, MB, NB, dagr_grid_2d(P, Q));
    int ok = 1;
    for (int root = -1; root < nranks; root++) {
        SC_TRY(dagr_darray_zeros(A));
        /* Only the root's src is read: others pass NULL. */
        SC_TRY(dagr_darray_scatter(A, root == -1 || root == me ? src : NULL, ld, root));
        memset(dst, 0x5a, (size_t)cnt * es);
        int groot = (root + 1) % nranks; /* gather to another rank */
        SC_TRY(dagr_darray_gather(A, groot == me ? dst : NULL, ld, groot));
        if (me == groot) {
            for (int64_t j = 0; j < N; j++) {
                ok &= SC_CHECK(memcmp(src + (size_t)(j * ld) * es, dst + (size_t)(j * ld) * es,
                                      (size_t)M * es) == 0,
                               "root %d: column %lld differs", root, (long long)j);
                /* The padding rows between columns are left alone. */
                for (int64_t i = M; i < ld && j < N - 1; i++)
                    ok &= SC_CHECK((unsigned char)dst[(size_t)(i + j * ld) * es] == 0x5a,
                                   "padding written at (%lld, %lld)", (long long)i, (long long)j);
            }
        }
    }
    sc_result("scatter_gather", ok, "dtype=%s", sc_dtype_name(t));

    /* set / get one element, then everything else unchanged. */
    ok = 1;
    if (M > 0 && N > 0) {
        SC_TRY(dagr_darray_from_fn(A, val, NULL));
        int64_t i = M - 1, j = N / 2;
        unsigned char v[8], got[8];
        double x = 17;
        if (t == DAGR_DOUBLE) memcpy(v, &x, 8);
        if (t == DAGR_FLOAT) {
            float f = 17;
            memcpy(v, &f, 4);
        }
        if (t == DAGR_INT64) {
            int64_t n = 17;
            memcpy(v, &n, 8);
        }
        SC_TRY(dagr_darray_set(A, i, j, v));
        SC_TRY(dagr_darray_fetch(A, i, j, got));
        ok &= SC_CHECK(memcmp(v, got, es) == 0, "get after set");
        SC_TRY(dagr_darray_fetch(A, 0, 0, got));
        double g0 = t == DAGR_FLOAT   ? *(float *)got
                    : t == DAGR_INT64 ? (double)*(int64_t *)got
                                      : *(double *)got;
        ok &= SC_CHECK(g0 == val(0, 0, NULL) || (i == 0 && j == 0), "get(0, 0) = %g", g0);
        double *all = sc_gather(A);
        int64_t gl = M > 1 ? M : 1;
        for (int64_t c = 0; c < N; c++)
            for (int64_t r = 0; r < M; r++)
                if (!(r == i && c == j))
                    ok &= SC_CHECK(all[r + c * gl] == val(r, c, NULL), "(%lld, %lld) changed",
                                   (long long)r, (long long)c);
        free(all);
    }
    sc_result("set_get", ok, "dtype=%s", sc_dtype_name(t));
    dagr_darray_destroy(&A);
    free(src);
    free(dst);
}

static void check_elementwise(dagr_dtype_t t) {
    int64_t ld = M > 1 ? M : 1, cnt = ld * N;
    double *x = calloc((size_t)cnt + 1, sizeof *x), *y = calloc((size_t)cnt + 1, sizeof *y);
    double *w = calloc((size_t)cnt + 1, sizeof *w);
    for (int64_t j = 0; j < N; j++)
        for (int64_t i = 0; i < M; i++) {
            x[i + j * ld] = val(i, j, NULL);
            y[i + j * ld] = val(j, i + 3, NULL);
        }
    double tol = tol_of(t);
    dagr_darray_t *X = make(t, M, N, MB, NB, dagr_grid_2d(P, Q));
    dagr_darray_t *Y = make(t, M, N, MB, NB, dagr_grid_col_cyclic());
    dagr_darray_t *Z = make(t, M, N, MB, NB, dagr_grid_row_cyclic());
    dagr_darray_t *S = make(t, 1, 1, 1, 1, dagr_grid_2d(1, 1));
    sc_scatter(X, x);
    sc_scatter(Y, y);

    /* map to another distribution and dtype, and in place */
    double add = 0.5;
    dagr_darray_t *D = make(DAGR_DOUBLE, M, N, MB, NB, dagr_grid_col_cyclic());
    SC_TRY(dagr_darray_map(X, D, map_square_plus_row, &add));
    for (int64_t j = 0; j < N; j++)
        for (int64_t i = 0; i < M; i++)
            w[i + j * ld] = x[i + j * ld] * x[i + j * ld] + i + 0.5;
    expect_matrix("map", D, w, 1e-15);
    dagr_darray_destroy(&D);
    add = 0;
    SC_TRY(dagr_darray_copy(X, Z));
    SC_TRY(dagr_darray_map(Z, Z, map_square_plus_row, &add));
    for (int64_t k = 0; k < cnt; k++)
        w[k] -= 0.5;
    expect_matrix("map_inplace", Z, w, tol);

    /* scale, shift */
    SC_TRY(dagr_darray_copy(X, Z));
    SC_TRY(dagr_darray_scale(Z, -2));
    SC_TRY(dagr_darray_shift(Z, 3));
    for (int64_t k = 0; k < cnt; k++)
        w[k] = -2 * x[k] + 3;
    expect_matrix("scale_shift", Z, w, tol);

    /* axpby with beta = 0 and not */
    SC_TRY(dagr_darray_copy(Y, Z));
    SC_TRY(dagr_darray_axpby(2, X, -3, Z));
    for (int64_t k = 0; k < cnt; k++)
        w[k] = 2 * x[k] - 3 * y[k];
    expect_matrix("axpby", Z, w, tol);
    SC_TRY(dagr_darray_axpby(4, X, 0, Z));
    for (int64_t k = 0; k < cnt; k++)
        w[k] = 4 * x[k];
    expect_matrix("axpby_beta0", Z, w, tol);

    /* add, mul, in place, broadcast */
    SC_TRY(dagr_darray_add(X, Y, Z));
    for (int64_t k = 0; k < cnt; k++)
        w[k] = x[k] + y[k];
    expect_matrix("add", Z, w, tol);
    SC_TRY(dagr_darray_mul(Z, Y, Z));
    for (int64_t k = 0; k < cnt; k++)
        w[k] = (x[k] + y[k]) * y[k];
    expect_matrix("mul_inplace", Z, w, tol);
    SC_TRY(dagr_darray_fill(S, 3));
    SC_TRY(dagr_darray_add(X, S, Z));
    SC_TRY(dagr_darray_mul(Z, S, Z));
    for (int64_t k = 0; k < cnt; k++)
        w[k] = (x[k] + 3) * 3;
    expect_matrix("broadcast", Z, w, tol);

    /* errors: nothing is inserted, the same status on every rank */
    dagr_darray_t *W = make(t, M + 1, N, MB, NB, dagr_grid_2d(P, Q));
    dagr_darray_t *T = make(t, M, N, MB + 1, NB, dagr_grid_2d(P, Q));
    dagr_darray_t *F =
        make(t == DAGR_DOUBLE ? DAGR_FLOAT : DAGR_DOUBLE, M, N, MB, NB, dagr_grid_2d(P, Q));
    int ok = 1;
    ok &= SC_EXPECT_STATUS(dagr_darray_axpby(1, X, 1, W), DAGR_ERR_ARG);
    ok &= SC_CHECK(strstr(dagr_last_error(), "X is") != NULL, "message: %s", dagr_last_error());
    ok &= SC_EXPECT_STATUS(dagr_darray_axpby(1, X, 1, T), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_darray_axpby(1, X, 1, F), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_darray_add(X, W, Z), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_darray_map(X, Z, NULL, NULL), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_darray_from_fn(X, NULL, NULL), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_darray_scale(NULL, 1), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_wait_all(ctx), DAGR_OK);
    expect_matrix("errors_change_nothing", Z, w, tol);
    sc_result("elementwise_errors", ok, "dtype=%s", sc_dtype_name(t));
    dagr_darray_destroy(&W);
    dagr_darray_destroy(&T);
    dagr_darray_destroy(&F);
    dagr_darray_destroy(&X);
    dagr_darray_destroy(&Y);
    dagr_darray_destroy(&Z);
    dagr_darray_destroy(&S);
    free(x);
    free(y);
    free(w);
}

/* Serial reductions of the m x n matrix x (ld) */
static void serial_reduce(const double *x, int64_t m, int64_t n, int64_t ld, double out[7]) {
    double sum = 0, mn = INFINITY, mx = -INFINITY, one = 0, inf = 0, amax = 0, fro = 0, scale = 0;
    bool nan = false;
    for (int64_t j = 0; j < n; j++) {
        double cs = 0;
        for (int64_t i = 0; i < m; i++) {
            double v = x[i + j * ld];
            sum += v;
            nan |= isnan(v);
            mn = fmin(mn, v);
            mx = fmax(mx, v);
            cs += fabs(v);
            amax = fmax(amax, fabs(v));
        }
        one = fmax(one, cs);
    }
    for (int64_t i = 0; i < m; i++) {
        double rs = 0;
        for (int64_t j = 0; j < n; j++)
            rs += fabs(x[i + j * ld]);
        inf = fmax(inf, rs);
    }
    scale = amax > 0 ? amax : 1;
    for (int64_t j = 0; j < n; j++)
        for (int64_t i = 0; i < m; i++)
            fro += (x[i + j * ld] / scale) * (x[i + j * ld] / scale);
    fro = scale * sqrt(fro);
    out[DAGR_REDUCE_SUM] = sum;
    out[DAGR_REDUCE_MIN] = nan ? NAN : mn;
    out[DAGR_REDUCE_MAX] = nan ? NAN : mx;
    out[DAGR_NORM_ONE] = nan ? NAN : one;
    out[DAGR_NORM_INF] = nan ? NAN : inf;
    out[DAGR_NORM_MAX] = nan ? NAN : amax;
    out[DAGR_NORM_FRO] = nan ? NAN : fro;
}

static int expect_reductions(const char *name, const dagr_darray_t *A, const double *x,
                             double tol) {
    int64_t ld = M > 1 ? M : 1;
    double want[7];
    serial_reduce(x, M, N, ld, want);
    int ok = 1;
    for (int op = DAGR_REDUCE_SUM; op <= DAGR_NORM_FRO; op++) {
        if (M * N == 0 && (op == DAGR_REDUCE_MIN || op == DAGR_REDUCE_MAX)) {
            double v;
            ok &= SC_EXPECT_STATUS(dagr_darray_reduce_value(A, op, &v), DAGR_ERR_ARG);
            continue;
        }
        if (M * N == 0) want[op] = 0;
        double got = -1;
        SC_TRY(dagr_darray_reduce_value(A, (dagr_reduce_t)op, &got));
        double scale = fabs(want[op]) > 0 ? fabs(want[op]) : 1;
        ok &= SC_CHECK(fabs(got - want[op]) <= tol * scale || (isnan(got) && isnan(want[op])),
                       "%s op %d: got %.17g want %.17g", name, op, got, want[op]);
    }
    sc_result(name, ok, "dtype=%s", sc_dtype_name(dagr_darray_dtype(A)));
    return ok;
}

static void check_reductions(dagr_dtype_t t) {
    int64_t ld = M > 1 ? M : 1, cnt = ld * N;
    double *x = calloc((size_t)cnt + 1, sizeof *x);
    for (int64_t j = 0; j < N; j++)
        for (int64_t i = 0; i < M; i++)
            x[i + j * ld] = val(i, j, NULL) * (t == DAGR_INT64 ? 1 : 0.25);
    dagr_darray_t *A = make(t, M, N, MB, NB, dagr_grid_2d(P, Q));
    sc_scatter(A, x);
    expect_reductions("reduce", A, x, t == DAGR_FLOAT ? 1e-5 : 1e-12);
    /* The result as a task output: R is read by a later operation (sum into a 1 x 1 array,
     * then broadcast-added). */
    if (M * N > 0) {
        dagr_darray_t *R = make(t, 1, 1, 1, 1, dagr_grid_2d(1, 1));
        SC_TRY(dagr_darray_reduce(A, DAGR_REDUCE_MAX, R));
        dagr_darray_t *B = make(t, M, N, MB, NB, dagr_grid_2d(P, Q));
        SC_TRY(dagr_darray_add(A, R, B));
        double want[7], *w = calloc((size_t)cnt + 1, sizeof *w);
        serial_reduce(x, M, N, ld, want);
        for (int64_t k = 0; k < cnt; k++)
            w[k] = x[k] + want[DAGR_REDUCE_MAX];
        expect_matrix("reduce_into_array", B, w, tol_of(t));
        free(w);
        dagr_darray_destroy(&R);
        dagr_darray_destroy(&B);
    }
    if (t == DAGR_DOUBLE && M * N > 0) {
        /* Huge entries: the Frobenius norm must not overflow. */
        for (int64_t k = 0; k < cnt; k++)
            x[k] *= 1e200;
        SC_TRY(dagr_darray_scale(A, 1e200));
        double fro;
        SC_TRY(dagr_darray_norm(A, DAGR_NORM_FRO, &fro));
        double want[7];
        serial_reduce(x, M, N, ld, want);
        int ok = SC_CHECK(isfinite(fro) &&
                              fabs(fro - want[DAGR_NORM_FRO]) <= 1e-12 * want[DAGR_NORM_FRO],
                          "fro %g want %g", fro, want[DAGR_NORM_FRO]);
        /* Tiny entries: no underflow to 0. */
        SC_TRY(dagr_darray_scale(A, 1e-250));
        SC_TRY(dagr_darray_scale(A, 1e-250));
        SC_TRY(dagr_darray_norm(A, DAGR_NORM_FRO, &fro));
        double tiny_want = want[DAGR_NORM_FRO] * 1e-250 * 1e-250;
        ok &= SC_CHECK(fro > 0 && fabs(fro - tiny_want) <= 1e-12 * tiny_want, "tiny fro %g want %g",
                       fro, tiny_want);
        /* A NaN reaches min, max and every norm. */
        double nan = NAN;
        SC_TRY(dagr_darray_set(A, M / 2, N / 2, &nan));
        for (int op = DAGR_REDUCE_MIN; op <= DAGR_NORM_FRO; op++) {
            double v = 0;
            SC_TRY(dagr_darray_reduce_value(A, (dagr_reduce_t)op, &v));
            ok &= SC_CHECK(isnan(v), "op %d ignores a NaN: %g", op, v);
        }
        sc_result("reduce_extremes", ok, "fro=%g", fro);
    }
    /* errors */
    dagr_darray_t *R2 = make(DAGR_DOUBLE, 2, 1, 1, 1, dagr_grid_2d(1, 1));
    int ok = SC_EXPECT_STATUS(dagr_darray_reduce(A, DAGR_REDUCE_SUM, R2), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_darray_reduce(A, (dagr_reduce_t)99, R2), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_darray_norm(A, DAGR_REDUCE_SUM, x), DAGR_ERR_ARG);
    sc_result("reduce_errors", ok, "dtype=%s", sc_dtype_name(t));
    dagr_darray_destroy(&R2);
    dagr_darray_destroy(&A);
    free(x);
}

static void check_copies(dagr_dtype_t t) {
    int64_t ld = M > 1 ? M : 1, cnt = ld * N;
    double *x = calloc((size_t)cnt + 1, sizeof *x);
    for (int64_t j = 0; j < N; j++)
        for (int64_t i = 0; i < M; i++)
            x[i + j * ld] = val(i, j, NULL) + (double)i * 100;
    dagr_darray_t *A = make(t, M, N, MB, NB, dagr_grid_2d(P, Q));
    sc_scatter(A, x);

    /* copy and redistribute to other tilings and grids */
    int64_t tiles[][2] = {
        {MB, NB}, {MB + 2, NB + 1}, {3, 2}, {M > 0 ? M : 1, 1}, {1, N > 0 ? N : 1}};
    dagr_grid_t grids[] = {dagr_grid_2d(0, 0), dagr_grid_row_cyclic(), dagr_grid_col_cyclic(),
                           dagr_grid_custom(rank_of_reverse, NULL), dagr_grid_2d(1, 1)};
    int ok = 1;
    for (int k = 0; k < 5; k++) {
        dagr_darray_t *B = NULL;
        SC_TRY(dagr_darray_redistribute(A, tiles[k][0], tiles[k][1], grids[k], &B));
        double *g = sc_gather(B);
        ok &= SC_CHECK(mismatches(g, x, cnt * (M > 0), 0) == 0, "redistribute %d", k);
        free(g);
        /* and back with copy */
        dagr_darray_t *C = make(t, M, N, MB, NB, dagr_grid_2d(P, Q));
        SC_TRY(dagr_darray_copy(B, C));
        g = sc_gather(C);
        ok &= SC_CHECK(mismatches(g, x, cnt * (M > 0), 0) == 0, "copy back %d", k);
        free(g);
        dagr_darray_destroy(&B);
        dagr_darray_destroy(&C);
    }
    sc_result("copy_redistribute", ok, "dtype=%s", sc_dtype_name(t));

    /* transpose into several tilings */
    int64_t tld = N > 1 ? N : 1;
    double *xt = calloc((size_t)(tld * M) + 1, sizeof *xt);
    for (int64_t j = 0; j < N; j++)
        for (int64_t i = 0; i < M; i++)
            xt[j + i * tld] = x[i + j * ld];
    ok = 1;
    for (int k = 0; k < 3; k++) {
        dagr_darray_t *B = make(t, N, M, tiles[k][1], tiles[k][0], grids[k]);
        SC_TRY(dagr_darray_transpose(A, B));
        double *g = sc_gather(B);
        ok &= SC_CHECK(mismatches(g, xt, tld * M * (N > 0), 0) == 0, "transpose %d", k);
        free(g);
        dagr_darray_destroy(&B);
    }
    sc_result("transpose", ok, "dtype=%s", sc_dtype_name(t));
    free(xt);

    /* views share tiles; writes through them reach A */
    ok = 1;
    if (M > MB && N > NB) {
        dagr_darray_t *V = NULL, *V2 = NULL;
        int64_t vm = M - MB - 1 > 0 ? M - MB - 1 : 1, vn = N - NB;
        SC_TRY(dagr_darray_view(A, MB, NB, vm, vn, &V));
        ok &= SC_CHECK(dagr_darray_rows(V) == vm && dagr_darray_cols(V) == vn, "view shape");
        double *g = sc_gather(V);
        for (int64_t j = 0; j < vn; j++)
            for (int64_t i = 0; i < vm; i++)
                ok &= SC_CHECK(g[i + j * (vm > 1 ? vm : 1)] == x[MB + i + (NB + j) * ld],
                               "view element (%lld, %lld)", (long long)i, (long long)j);
        free(g);
        SC_TRY(dagr_darray_fill(V, -1)); /* partial edge tiles keep the rest of A */
        SC_TRY(dagr_darray_view(V, 0, 0, 1, 1, &V2));
        SC_TRY(dagr_darray_scale(V2, 5));
        for (int64_t j = 0; j < vn; j++)
            for (int64_t i = 0; i < vm; i++)
                x[MB + i + (NB + j) * ld] = -1;
        x[MB + NB * ld] = -5;
        dagr_darray_destroy(&V); /* the parent's tiles stay */
        g = sc_gather(A);
        ok &= SC_CHECK(mismatches(g, x, cnt, 0) == 0, "writes through a view");
        free(g);
        dagr_darray_destroy(&V2);
    }
    ok &= SC_EXPECT_STATUS(dagr_darray_view(A, 1, 0, 1, 1, NULL), DAGR_ERR_ARG);
    dagr_darray_t *bad = NULL;
    if (M > 1)
        ok &= SC_EXPECT_STATUS(dagr_darray_view(A, 1, 0, 1, 1, &bad),
                               MB == 1 ? DAGR_OK : DAGR_ERR_ARG);
    dagr_darray_destroy(&bad);
    ok &= SC_EXPECT_STATUS(dagr_darray_view(A, 0, 0, M + 1, 1, &bad), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_darray_view(A, 0, 0, -1, 1, &bad), DAGR_ERR_ARG);
    sc_result("views", ok, "dtype=%s", sc_dtype_name(t));

    /* sub-arrays at arbitrary offsets */
    ok = 1;
    int64_t i0 = M / 3, j0 = N / 4, sm = M - i0 - (M > 2), sn = N - j0;
    dagr_darray_t *S = NULL;
    SC_TRY(dagr_darray_subarray(A, i0, j0, sm, sn, &S));
    double *g = sc_gather(S);
    for (int64_t j = 0; j < sn; j++)
        for (int64_t i = 0; i < sm; i++)
            ok &= SC_CHECK(g[i + j * (sm > 1 ? sm : 1)] == x[i0 + i + (j0 + j) * ld],
                           "subarray (%lld, %lld)", (long long)i, (long long)j);
    free(g);
    dagr_darray_destroy(&S);
    ok &= SC_EXPECT_STATUS(dagr_darray_subarray(A, 1, 0, M, N, &S), DAGR_ERR_ARG);
    dagr_darray_t *B = make(t, N + 1, M, MB, NB, dagr_grid_2d(P, Q));
    ok &= SC_EXPECT_STATUS(dagr_darray_transpose(A, B), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_darray_copy(A, B), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_darray_transpose(A, A), DAGR_ERR_ARG);
    dagr_darray_destroy(&B);
    sc_result("subarray", ok, "dtype=%s", sc_dtype_name(t));
    dagr_darray_destroy(&A);
    free(x);
}

static void check_create_errors(void) {
    dagr_darray_t *A = NULL;
    int ok = 1;
    ok &= SC_EXPECT_STATUS(dagr_darray_create(ctx, DAGR_DOUBLE, 4, 4, 0, 2, dagr_grid_2d(0, 0), &A),
                           DAGR_ERR_ARG);
    ok &= SC_CHECK(strstr(dagr_last_error(), "tile size 0x2") != NULL, "message: %s",
                   dagr_last_error());
    ok &= SC_EXPECT_STATUS(
        dagr_darray_create(ctx, DAGR_DOUBLE, 4, 4, 2, -1, dagr_grid_2d(0, 0), &A), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(
        dagr_darray_create(ctx, DAGR_DOUBLE, -1, 4, 2, 2, dagr_grid_2d(0, 0), &A), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(
        dagr_darray_create(ctx, (dagr_dtype_t)9, 4, 4, 2, 2, dagr_grid_2d(0, 0), &A), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(
        dagr_darray_create(ctx, DAGR_DOUBLE, 4, 4, 2, 2, dagr_grid_2d(nranks + 1, 1), &A),
        DAGR_ERR_ARG);
    ok &= SC_CHECK(strstr(dagr_last_error(), "needs") != NULL, "message: %s", dagr_last_error());
    ok &= SC_EXPECT_STATUS(dagr_darray_create(ctx, DAGR_DOUBLE, 4, 4, 2, 2, dagr_grid_2d(1, 0), &A),
                           DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(
        dagr_darray_create(ctx, DAGR_DOUBLE, 4, 4, 2, 2, dagr_grid_custom(NULL, NULL), &A),
        DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(
        dagr_darray_create(NULL, DAGR_DOUBLE, 4, 4, 2, 2, dagr_grid_2d(0, 0), &A), DAGR_ERR_ARG);
    ok &= SC_CHECK(A == NULL, "out set on failure");
    /* the default grid is the squarest */
    SC_TRY(dagr_darray_create(ctx, DAGR_DOUBLE, 64, 64, 1, 1, dagr_grid_2d(0, 0), &A));
    int owners[64] = {0};
    for (int64_t ti = 0; ti < 8; ti++)
        for (int64_t tj = 0; tj < 8; tj++)
            owners[dagr_darray_tile_rank(A, ti, tj)]++;
    for (int r = 0; r < nranks; r++)
        ok &= SC_CHECK(owners[r] == 64 / nranks || nranks == 3, "rank %d owns %d", r, owners[r]);
    ok &= SC_CHECK(dagr_darray_tile(A, 64, 0) == NULL && dagr_darray_tile_rank(A, 0, -1) == -1,
                   "out-of-range tiles");
    dagr_darray_destroy(&A);
    ok &= SC_EXPECT_STATUS(dagr_darray_destroy(&A), DAGR_OK);
    sc_result("create_errors", ok, "ranks=%d", nranks);
}

int main(int argc, char **argv) {
    if (argc < 7) {
        fprintf(stderr, "usage: darray_ops P Q M N MB NB\n");
        return 2;
    }
    P = atoi(argv[1]);
    Q = atoi(argv[2]);
    M = atoll(argv[3]);
    N = atoll(argv[4]);
    MB = atoll(argv[5]);
    NB = atoll(argv[6]);
    SC_TRY(dagr_init(&argc, &argv, NULL, &ctx));
    me = dagr_rank(ctx);
    nranks = dagr_size(ctx);
    sc_set_rank(me);
    check_create_errors();
    dagr_dtype_t types[] = {DAGR_DOUBLE, DAGR_FLOAT, DAGR_INT64};
    for (int k = 0; k < 3; k++) {
        check_fill(types[k]);
        check_random(types[k]);
        check_scatter_gather(types[k]);
        check_elementwise(types[k]);
        check_reductions(types[k]);
        check_copies(types[k]);
    }
    SC_TRY(dagr_wait_all(ctx));
    int code = sc_exit_code();
    dagr_finalize(&ctx);
    return code;
}
