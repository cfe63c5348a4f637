/* On a GPU (skipped, as Criterion's skips, where the rank has none): DArray's element-wise
 * operations and reductions with tiles on the GPU (gpu/darray_ops.cu), for double, float and
 * int64, against the same operations computed serially here: int64 exactly, float and double
 * to a few ulps (the GPU may fuse a multiply and an add, and sums add in another order).
 * NaN makes min and max NaN there as on the CPU. One rank; sizes that do not divide by the
 * tile; some tasks must have run on the GPU. */
#include <criterion/criterion.h>
#include <dagr/dagr.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "gpu_ctx.h"
TestSuite(gpu_darray, .init = setup, .fini = teardown, .timeout = 240);

enum { M = 700, N = 530, NB = 256 };

static double val_a(int64_t i, int64_t j, void *u) {
    (void)u;
    return (double)((i * 7 + j * 3) % 11) - 5.0;
}
static double val_b(int64_t i, int64_t j, void *u) {
    (void)u;
    return (double)((i * 5 + j * 11) % 13) - 6.0;
}

static dagr_darray_t *make(dagr_dtype_t t, int64_t m, int64_t n, dagr_elem_fn fn) {
    dagr_darray_t *X = NULL;
    cr_assert_eq(dagr_darray_create(ctx, t, m, n, NB, NB, dagr_grid_2d(1, 1), &X), DAGR_OK, "%s",
                 dagr_last_error());
    if (fn) cr_assert_eq(dagr_darray_from_fn(X, fn, NULL), DAGR_OK, "%s", dagr_last_error());
    return X;
}

static double *gather_double(const dagr_darray_t *X, dagr_dtype_t t) {
    size_t n = (size_t)(M * N), es = t == DAGR_FLOAT ? 4 : 8;
    void *raw = malloc(n * es);
    double *x = malloc(n * sizeof *x);
    cr_assert(raw && x);
    cr_assert_eq(dagr_darray_gather(X, raw, M, 0), DAGR_OK, "%s", dagr_last_error());
    for (size_t k = 0; k < n; k++)
        x[k] = t == DAGR_DOUBLE  ? ((double *)raw)[k]
               : t == DAGR_FLOAT ? (double)((float *)raw)[k]
                                 : (double)((int64_t *)raw)[k];
    free(raw);
    return x;
}

static void close_to(double got, double want, double rel, const char *what) {
    cr_expect(fabs(got - want) <= rel * fmax(1.0, fabs(want)), "%s: %.17g, expected %.17g", what,
              got, want);
}

/* Y = 2 X + 0.5 Y, then Y = Y + 3, Y = -1.5 Y, C = X + Y, C = C .* X, C = C + b (1 x 1). */
static void elementwise(dagr_dtype_t t) {
    dagr_darray_t *X = make(t, M, N, val_a), *Y = make(t, M, N, val_b), *C = make(t, M, N, NULL);
    dagr_darray_t *b = make(t, 1, 1, NULL);
    cr_assert_eq(dagr_darray_fill(b, 4.0), DAGR_OK);
    bool i64 = t == DAGR_INT64;
    double a1 = 2, b1 = i64 ? 1 : 0.5, sh = 3, sc = i64 ? -2 : -1.5;
    for (int rep = 0; rep < 3; rep++) { /* repeated: placement tries the GPU, then chooses */
        cr_assert_eq(dagr_darray_axpby(a1, X, b1, Y), DAGR_OK, "%s", dagr_last_error());
        cr_assert_eq(dagr_darray_shift(Y, sh), DAGR_OK);
        cr_assert_eq(dagr_darray_scale(Y, sc), DAGR_OK);
    }
    cr_assert_eq(dagr_darray_add(X, Y, C), DAGR_OK);
    cr_assert_eq(dagr_darray_mul(C, X, C), DAGR_OK);
    cr_assert_eq(dagr_darray_add(C, b, C), DAGR_OK);
    double *c = gather_double(C, t);
    double rel = t == DAGR_FLOAT ? 1e-5 : t == DAGR_DOUBLE ? 1e-13 : 0;
    int bad = 0;
    for (int64_t j = 0; j < N && bad < 5; j++) {
        for (int64_t i = 0; i < M && bad < 5; i++) {
            double x = val_a(i, j, NULL), y = val_b(i, j, NULL);
            for (int rep = 0; rep < 3; rep++)
                y = sc * (a1 * x + b1 * y + sh);
            double want = (x + y) * x + 4.0, got = c[i + j * M];
            if (fabs(got - want) > rel * fmax(1.0, fabs(want))) {
                bad++;
                cr_expect_fail("(%lld, %lld): %.17g, expected %.17g", (long long)i, (long long)j,
                               got, want);
            }
        }
    }
    free(c);
    cr_expect_gt(gpu_tasks(), 0, "no task ran on the GPU");
    dagr_darray_destroy(&X);
    dagr_darray_destroy(&Y);
    dagr_darray_destroy(&C);
    dagr_darray_destroy(&b);
}

Test(gpu_darray, elementwise_double) {
    elementwise(DAGR_DOUBLE);
}
Test(gpu_darray, elementwise_float) {
    elementwise(DAGR_FLOAT);
}
Test(gpu_darray, elementwise_int64) {
    elementwise(DAGR_INT64);
}

/* Every reduction of X (on the GPU after a scale there) against a serial one. */
static void reductions(dagr_dtype_t t) {
    dagr_darray_t *X = make(t, M, N, val_a);
    cr_assert_eq(dagr_darray_scale(X, 3.0), DAGR_OK);
    double sum = 0, mn = INFINITY, mx = -INFINITY, nmax = 0, ss = 0, one = 0, inf = 0;
    double *rows = calloc(M, sizeof *rows);
    for (int64_t j = 0; j < N; j++) {
        double col = 0;
        for (int64_t i = 0; i < M; i++) {
            double v = 3.0 * val_a(i, j, NULL);
            sum += v, mn = fmin(mn, v), mx = fmax(mx, v), nmax = fmax(nmax, fabs(v));
            ss += v * v, col += fabs(v), rows[i] += fabs(v);
        }
        one = fmax(one, col);
    }
    for (int64_t i = 0; i < M; i++)
        inf = fmax(inf, rows[i]);
    free(rows);
    double rel = t == DAGR_FLOAT ? 1e-5 : 1e-12;
    const struct {
        dagr_reduce_t op;
        double want;
        const char *name;
    } cases[] = {{DAGR_REDUCE_SUM, sum, "sum"},        {DAGR_REDUCE_MIN, mn, "min"},
                 {DAGR_REDUCE_MAX, mx, "max"},         {DAGR_NORM_MAX, nmax, "norm max"},
                 {DAGR_NORM_ONE, one, "norm one"},     {DAGR_NORM_INF, inf, "norm inf"},
                 {DAGR_NORM_FRO, sqrt(ss), "norm fro"}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        double got = NAN;
        cr_assert_eq(dagr_darray_reduce_value(X, cases[k].op, &got), DAGR_OK, "%s: %s",
                     cases[k].name, dagr_last_error());
        close_to(got, cases[k].want, t == DAGR_INT64 && k == 0 ? 0 : rel, cases[k].name);
    }
    if (t != DAGR_INT64) { /* a NaN makes min and max NaN */
        double nan = NAN;
        cr_assert_eq(
            dagr_darray_set(X, 300, 400, t == DAGR_FLOAT ? (void *)&(float){NAN} : (void *)&nan),
            DAGR_OK, "%s", dagr_last_error());
        cr_assert_eq(dagr_darray_scale(X, 1.0), DAGR_OK);
        double got = 0;
        cr_assert_eq(dagr_darray_min(X, &got), DAGR_OK);
        cr_expect(isnan(got), "min with a NaN: %g", got);
        cr_assert_eq(dagr_darray_max(X, &got), DAGR_OK);
        cr_expect(isnan(got), "max with a NaN: %g", got);
    }
    dagr_darray_destroy(&X);
}

Test(gpu_darray, reductions_double) {
    reductions(DAGR_DOUBLE);
}
Test(gpu_darray, reductions_float) {
    reductions(DAGR_FLOAT);
}
Test(gpu_darray, reductions_int64) {
    reductions(DAGR_INT64);
}
