/* linalg/qr_blocked.c on its CBLAS table against LAPACKE's dgemqrt/dtpmqrt (and the s
 * versions), on reflectors made by LAPACKE's dgeqrt/dtpqrt from random data: both sides, both
 * transposes, several shapes (ib not dividing k, k = 1, l = 0, l = k, rectangular), leading
 * dimensions larger than the rows. What neither routine may read (the upper part of V, the
 * part of a pentagonal V below its trapezoid, T below each block's triangle, the padding
 * rows) holds NaN, and the padding of the outputs must come back untouched. The difference
 * is normwise: max |ours - LAPACK's| / max |LAPACK's| < 1e-12 (double), 1e-5 (float). */
#include <criterion/criterion.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qr_blocked.h"

TestSuite(linalg_qr_blocked, .timeout = 120);

/* A column-major matrix of either precision with padding rows (ld = rows + PAD). */
#define PAD 3

typedef struct mat {
    int32_t dtype;
    int64_t rows, cols, ld;
    void *p;
} mat_t;

static double get(const mat_t *a, int64_t r, int64_t c) {
    size_t at = (size_t)(r + c * a->ld);
    return a->dtype == DAGR_DOUBLE ? ((double *)a->p)[at] : ((float *)a->p)[at];
}

static void set(mat_t *a, int64_t r, int64_t c, double v) {
    size_t at = (size_t)(r + c * a->ld);
    if (a->dtype == DAGR_DOUBLE)
        ((double *)a->p)[at] = v;
    else
        ((float *)a->p)[at] = (float)v;
}

/* A rows x cols matrix: uniform in [-1, 1], NaN in the padding. */
static mat_t mat_new(int32_t dtype, int64_t rows, int64_t cols) {
    mat_t a = {dtype, rows, cols, rows + PAD, NULL};
    size_t es = dtype == DAGR_DOUBLE ? sizeof(double) : sizeof(float);
    a.p = malloc((size_t)(a.ld * (cols > 0 ? cols : 1)) * es);
    cr_assert(a.p);
    for (int64_t c = 0; c < cols; c++)
        for (int64_t r = 0; r < a.ld; r++)
            set(&a, r, c, r < rows ? 2.0 * rand() / RAND_MAX - 1.0 : NAN);
    return a;
}

static mat_t mat_copy(const mat_t *a) {
    mat_t b = *a;
    size_t bytes = (size_t)(a->ld * (a->cols > 0 ? a->cols : 1)) *
                   (a->dtype == DAGR_DOUBLE ? sizeof(double) : sizeof(float));
    b.p = malloc(bytes);
    cr_assert(b.p);
    memcpy(b.p, a->p, bytes);
    return b;
}

/* max |x - ref| / max |ref| over the rows x cols part; the padding of x must still be NaN. */
static double rel_diff(const mat_t *x, const mat_t *ref) {
    double num = 0, den = 0;
    for (int64_t c = 0; c < x->cols; c++) {
        for (int64_t r = 0; r < x->rows; r++) {
            double d = fabs(get(x, r, c) - get(ref, r, c));
            num = d > num || isnan(d) ? d : num;
            den = fmax(den, fabs(get(ref, r, c)));
        }
        for (int64_t r = x->rows; r < x->ld; r++)
            cr_assert(isnan(get(x, r, c)), "padding row %lld, column %lld was written",
                      (long long)r, (long long)c);
    }
    return den > 0 ? num / den : num;
}

static double tol(int32_t dtype) {
    return dtype == DAGR_DOUBLE ? 1e-12 : 1e-5;
}

/* T (ib x k from geqrt/tpqrt): NaN below the triangle of each block of ib columns. */
static void poison_t(mat_t *t, int64_t k, int64_t ib) {
    for (int64_t c = 0; c < k; c++)
        for (int64_t r = c % ib + 1; r < t->rows; r++)
            set(t, r, c, NAN);
}

/* Runs qr_blocked_gemqrt on a copy of c and LAPACK's on another; returns the difference. */
static double gemqrt_diff(int side, int trans, const mat_t *v, const mat_t *t, const mat_t *c,
                          int64_t k, int64_t ib) {
    mat_t ours = mat_copy(c), ref = mat_copy(c);
    int32_t dt = c->dtype;
    char sd = side == DAGR_LEFT ? 'L' : 'R', tr = trans == DAGR_TRANS ? 'T' : 'N';
    size_t es = dt == DAGR_DOUBLE ? sizeof(double) : sizeof(float);
    void *work = malloc((size_t)(ib * (side == DAGR_LEFT ? c->cols : c->rows) + 1) * es);
    cr_assert(work);
    lapack_int m = (lapack_int)c->rows, n = (lapack_int)c->cols;
    lapack_int info =
        dt == DAGR_DOUBLE
            ? LAPACKE_dgemqrt_work(LAPACK_COL_MAJOR, sd, tr, m, n, (lapack_int)k, (lapack_int)ib,
                                   v->p, (lapack_int)v->ld, t->p, (lapack_int)t->ld, ref.p,
                                   (lapack_int)ref.ld, work)
            : LAPACKE_sgemqrt_work(LAPACK_COL_MAJOR, sd, tr, m, n, (lapack_int)k, (lapack_int)ib,
                                   v->p, (lapack_int)v->ld, t->p, (lapack_int)t->ld, ref.p,
                                   (lapack_int)ref.ld, work);
    cr_assert_eq(info, 0, "LAPACKE gemqrt info %d", (int)info);
    qr_blas_t b;
    qr_blas_cblas_t s;
    qr_blas_cblas_init(&b, &s, dt);
    int rc = qr_blocked_gemqrt(&b, side, trans, c->rows, c->cols, k, ib, v->p, v->ld, t->p, t->ld,
                               ours.p, ours.ld);
    qr_blas_cblas_fini(&s);
    cr_assert_eq(rc, 0);
    double d = rel_diff(&ours, &ref);
    free(work);
    free(ours.p);
    free(ref.p);
    return d;
}

/* The reflectors of the QR of a random vrows x k matrix with blocks of ib (V with NaN on and
 * above its diagonal, T with NaN below its triangles). */
static void make_geqrt(int32_t dt, int64_t vrows, int64_t k, int64_t ib, mat_t *v, mat_t *t) {
    *v = mat_new(dt, vrows, k);
    *t = mat_new(dt, ib, k);
    size_t es = dt == DAGR_DOUBLE ? sizeof(double) : sizeof(float);
    void *work = malloc((size_t)(ib * k) * es);
    cr_assert(work);
    lapack_int info = dt == DAGR_DOUBLE
                          ? LAPACKE_dgeqrt_work(LAPACK_COL_MAJOR, (lapack_int)vrows, (lapack_int)k,
                                                (lapack_int)ib, v->p, (lapack_int)v->ld, t->p,
                                                (lapack_int)t->ld, work)
                          : LAPACKE_sgeqrt_work(LAPACK_COL_MAJOR, (lapack_int)vrows, (lapack_int)k,
                                                (lapack_int)ib, v->p, (lapack_int)v->ld, t->p,
                                                (lapack_int)t->ld, work);
    cr_assert_eq(info, 0, "LAPACKE geqrt info %d", (int)info);
    free(work);
    for (int64_t c = 0; c < k; c++)
        for (int64_t r = 0; r <= c && r < vrows; r++)
            set(v, r, c, NAN);
    poison_t(t, k, ib);
}

/* Shapes: the rows of V (m on the left, n on the right), the free dimension, k, ib. */
static const int64_t ge_shapes[][4] = {
    {7, 5, 5, 2}, {10, 3, 4, 3}, {6, 4, 1, 1},    {5, 6, 5, 5},    {9, 9, 9, 4},
    {1, 4, 1, 1}, {12, 1, 7, 7}, {40, 33, 17, 5}, {64, 48, 32, 8}, {25, 7, 20, 6},
};

static void check_gemqrt(int32_t dt) {
    for (size_t s = 0; s < sizeof ge_shapes / sizeof ge_shapes[0]; s++) {
        int64_t vrows = ge_shapes[s][0], nfree = ge_shapes[s][1], k = ge_shapes[s][2],
                ib = ge_shapes[s][3];
        mat_t v, t;
        make_geqrt(dt, vrows, k, ib, &v, &t);
        for (int side = DAGR_LEFT; side <= DAGR_RIGHT; side++) {
            mat_t c = side == DAGR_LEFT ? mat_new(dt, vrows, nfree) : mat_new(dt, nfree, vrows);
            for (int trans = DAGR_NO_TRANS; trans <= DAGR_TRANS; trans++) {
                double d = gemqrt_diff(side, trans, &v, &t, &c, k, ib);
                cr_expect(d < tol(dt),
                          "gemqrt %s side %c trans %c m %lld n %lld k %lld ib %lld: relative "
                          "difference %g",
                          dt == DAGR_DOUBLE ? "double" : "float", side == DAGR_LEFT ? 'L' : 'R',
                          trans == DAGR_TRANS ? 'T' : 'N', (long long)c.rows, (long long)c.cols,
                          (long long)k, (long long)ib, d);
            }
            free(c.p);
        }
        free(v.p);
        free(t.p);
    }
}

Test(linalg_qr_blocked, gemqrt_double) {
    srand(1);
    check_gemqrt(DAGR_DOUBLE);
}

Test(linalg_qr_blocked, gemqrt_float) {
    srand(2);
    check_gemqrt(DAGR_FLOAT);
}

/* The reflectors of the QR of [R; B], R k x k upper triangular, B vrows x k pentagonal (its
 * last l rows upper trapezoidal), blocks of ib: V (= the new B) with NaN below its trapezoid
 * and T with NaN below its triangles. */
static void make_tpqrt(int32_t dt, int64_t vrows, int64_t k, int64_t l, int64_t ib, mat_t *v,
                       mat_t *t) {
    mat_t r = mat_new(dt, k, k);
    *v = mat_new(dt, vrows, k);
    *t = mat_new(dt, ib, k);
    for (int64_t c = 0; c < k; c++) {
        set(&r, c, c, get(&r, c, c) + (get(&r, c, c) < 0 ? -2.0 : 2.0));
        for (int64_t i = c + 1; i < k; i++)
            set(&r, i, c, 0.0);
        for (int64_t i = vrows - l + c + 1; i < vrows; i++)
            set(v, i, c, 0.0);
    }
    size_t es = dt == DAGR_DOUBLE ? sizeof(double) : sizeof(float);
    void *work = malloc((size_t)(ib * k) * es);
    cr_assert(work);
    lapack_int info =
        dt == DAGR_DOUBLE
            ? LAPACKE_dtpqrt_work(LAPACK_COL_MAJOR, (lapack_int)vrows, (lapack_int)k, (lapack_int)l,
                                  (lapack_int)ib, r.p, (lapack_int)r.ld, v->p, (lapack_int)v->ld,
                                  t->p, (lapack_int)t->ld, work)
            : LAPACKE_stpqrt_work(LAPACK_COL_MAJOR, (lapack_int)vrows, (lapack_int)k, (lapack_int)l,
                                  (lapack_int)ib, r.p, (lapack_int)r.ld, v->p, (lapack_int)v->ld,
                                  t->p, (lapack_int)t->ld, work);
    cr_assert_eq(info, 0, "LAPACKE tpqrt info %d", (int)info);
    free(work);
    free(r.p);
    for (int64_t c = 0; c < k; c++)
        for (int64_t i = vrows - l + c + 1; i < vrows; i++)
            set(v, i, c, NAN);
    poison_t(t, k, ib);
}

/* Runs qr_blocked_tpmqrt on copies of a and b and LAPACK's on others; returns the larger
 * difference of the two outputs. */
static double tpmqrt_diff(int side, int trans, const mat_t *v, const mat_t *t, const mat_t *a,
                          const mat_t *bm, int64_t k, int64_t l, int64_t ib) {
    mat_t oa = mat_copy(a), ob = mat_copy(bm), ra = mat_copy(a), rb = mat_copy(bm);
    int32_t dt = a->dtype;
    char sd = side == DAGR_LEFT ? 'L' : 'R', tr = trans == DAGR_TRANS ? 'T' : 'N';
    size_t es = dt == DAGR_DOUBLE ? sizeof(double) : sizeof(float);
    void *work = malloc((size_t)(ib * (side == DAGR_LEFT ? bm->cols : bm->rows) + 1) * es);
    cr_assert(work);
    lapack_int m = (lapack_int)bm->rows, n = (lapack_int)bm->cols;
    lapack_int info =
        dt == DAGR_DOUBLE
            ? LAPACKE_dtpmqrt_work(LAPACK_COL_MAJOR, sd, tr, m, n, (lapack_int)k, (lapack_int)l,
                                   (lapack_int)ib, v->p, (lapack_int)v->ld, t->p, (lapack_int)t->ld,
                                   ra.p, (lapack_int)ra.ld, rb.p, (lapack_int)rb.ld, work)
            : LAPACKE_stpmqrt_work(LAPACK_COL_MAJOR, sd, tr, m, n, (lapack_int)k, (lapack_int)l,
                                   (lapack_int)ib, v->p, (lapack_int)v->ld, t->p, (lapack_int)t->ld,
                                   ra.p, (lapack_int)ra.ld, rb.p, (lapack_int)rb.ld, work);
    cr_assert_eq(info, 0, "LAPACKE tpmqrt info %d", (int)info);
    qr_blas_t b;
    qr_blas_cblas_t s;
    qr_blas_cblas_init(&b, &s, dt);
    int rc = qr_blocked_tpmqrt(&b, side, trans, bm->rows, bm->cols, k, l, ib, v->p, v->ld, t->p,
                               t->ld, oa.p, oa.ld, ob.p, ob.ld);
    qr_blas_cblas_fini(&s);
    cr_assert_eq(rc, 0);
    double da = rel_diff(&oa, &ra), db = rel_diff(&ob, &rb);
    free(work);
    free(oa.p);
    free(ob.p);
    free(ra.p);
    free(rb.p);
    return isnan(da) || da > db ? da : db;
}

/* Shapes: the rows of V (m on the left, n on the right), the free dimension, k, l, ib. */
static const int64_t tp_shapes[][5] = {
    {6, 5, 4, 0, 2},     {4, 7, 4, 4, 3},    {9, 6, 5, 3, 2},    {1, 3, 1, 1, 1},
    {5, 1, 1, 0, 1},     {12, 10, 8, 8, 3},  {7, 4, 7, 5, 7},    {3, 8, 6, 2, 4},
    {40, 23, 16, 16, 5}, {33, 17, 16, 0, 6}, {20, 20, 12, 7, 5}, {8, 3, 8, 1, 3},
};

static void check_tpmqrt(int32_t dt) {
    for (size_t s = 0; s < sizeof tp_shapes / sizeof tp_shapes[0]; s++) {
        int64_t vrows = tp_shapes[s][0], nfree = tp_shapes[s][1], k = tp_shapes[s][2],
                l = tp_shapes[s][3], ib = tp_shapes[s][4];
        mat_t v, t;
        make_tpqrt(dt, vrows, k, l, ib, &v, &t);
        for (int side = DAGR_LEFT; side <= DAGR_RIGHT; side++) {
            bool left = side == DAGR_LEFT;
            mat_t a = left ? mat_new(dt, k, nfree) : mat_new(dt, nfree, k);
            mat_t bm = left ? mat_new(dt, vrows, nfree) : mat_new(dt, nfree, vrows);
            for (int trans = DAGR_NO_TRANS; trans <= DAGR_TRANS; trans++) {
                double d = tpmqrt_diff(side, trans, &v, &t, &a, &bm, k, l, ib);
                cr_expect(d < tol(dt),
                          "tpmqrt %s side %c trans %c m %lld n %lld k %lld l %lld ib %lld: "
                          "relative difference %g",
                          dt == DAGR_DOUBLE ? "double" : "float", left ? 'L' : 'R',
                          trans == DAGR_TRANS ? 'T' : 'N', (long long)bm.rows, (long long)bm.cols,
                          (long long)k, (long long)l, (long long)ib, d);
            }
            free(a.p);
            free(bm.p);
        }
        free(v.p);
        free(t.p);
    }
}

Test(linalg_qr_blocked, tpmqrt_double) {
    srand(3);
    check_tpmqrt(DAGR_DOUBLE);
}

Test(linalg_qr_blocked, tpmqrt_float) {
    srand(4);
    check_tpmqrt(DAGR_FLOAT);
}

/* The measure catches a wrong formulation: the other transpose, or the blocks taken with a
 * different ib than T was made with, is far off. */
Test(linalg_qr_blocked, a_wrong_application_is_caught) {
    srand(5);
    mat_t v, t;
    make_geqrt(DAGR_DOUBLE, 9, 6, 4, &v, &t);
    mat_t c = mat_new(DAGR_DOUBLE, 9, 5), ours = mat_copy(&c), ref = mat_copy(&c);
    qr_blas_t b;
    qr_blas_cblas_t s;
    qr_blas_cblas_init(&b, &s, DAGR_DOUBLE);
    cr_assert_eq(qr_blocked_gemqrt(&b, DAGR_LEFT, DAGR_TRANS, 9, 5, 6, 4, v.p, v.ld, t.p, t.ld,
                                   ours.p, ours.ld),
                 0);
    cr_assert_eq(qr_blocked_gemqrt(&b, DAGR_LEFT, DAGR_NO_TRANS, 9, 5, 6, 4, v.p, v.ld, t.p, t.ld,
                                   ref.p, ref.ld),
                 0);
    qr_blas_cblas_fini(&s);
    cr_expect(rel_diff(&ours, &ref) > 1e-3, "Q^T C and Q C agree: the test cannot tell them apart");
    free(v.p);
    free(t.p);
    free(c.p);
    free(ours.p);
    free(ref.p);
}
