/* Block reflectors applied through a table of BLAS operations (qr_blocked.h): LAPACK's
 * dgemqrt/dtpmqrt loops over blocks of ib reflectors, each block applied as dlarfb/dtprfb do
 * it (forward, columnwise), and the CBLAS table.
 *
 * One block of kb reflectors is H = I - V T V^T with V unit lower trapezoidal (gemqrt) or
 * [I; V] with V pentagonal (tpmqrt), so op(H) C = C - V op(T) V^T C (LEFT) and
 * C op(H) = C - C V op(T) V^T (RIGHT). The work block W holds V^T C (kb x n, LEFT) or C V
 * (m x kb, RIGHT); the reflectors' triangular parts are multiplied by trmm, so the ones and
 * zeros dgeqrt does not store are never read. Q = H_1 H_2 ... (blocks in order), hence
 * Q^T C and C Q take the blocks forwards, Q C and C Q^T backwards. */
#include "qr_blocked.h"

#include <cblas.h>
#include <stdlib.h>

/* Element (r, c) of a column-major matrix at p with leading dimension ld. */
#define AT(p, r, c, ld) ((char *)(p) + ((size_t)(r) + (size_t)(c) * (size_t)(ld)) * es)

static size_t es_of(int32_t dtype) {
    return dtype == DAGR_DOUBLE ? sizeof(double) : sizeof(float);
}

static int64_t min64(int64_t a, int64_t b) {
    return a < b ? a : b;
}

/* The table's operations, skipping empty products (k == 0 occurs only with beta == 1). */
static int gemm(const qr_blas_t *b, int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha,
                const void *a, int64_t lda, const void *bm, int64_t ldb, double beta, void *c,
                int64_t ldc) {
    if (m <= 0 || n <= 0 || (k <= 0 && beta == 1.0)) return 0;
    return b->gemm(b->ctx, ta, tb, m, n, k, alpha, a, lda, bm, ldb, beta, c, ldc);
}

static int trmm(const qr_blas_t *b, int side, int uplo, int trans, int diag, int64_t m, int64_t n,
                const void *a, int64_t lda, void *bm, int64_t ldb) {
    if (m <= 0 || n <= 0) return 0;
    return b->trmm(b->ctx, side, uplo, trans, diag, m, n, a, lda, bm, ldb);
}

static int add(const qr_blas_t *b, int64_t m, int64_t n, double alpha, const void *a, int64_t lda,
               double beta, void *bm, int64_t ldb) {
    if (m <= 0 || n <= 0) return 0;
    return b->add(b->ctx, m, n, alpha, a, lda, beta, bm, ldb);
}

#define TRY(call)                                                                                  \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != 0) return rc_;                                                                  \
    } while (0)

/* dlarfb: one block of kb reflectors V (mr x kb for LEFT, nc x kb for RIGHT, unit lower
 * trapezoidal), its T (kb x kb), on C (mr x n for LEFT, m x nc for RIGHT); W is kb x n or
 * m x kb. */
static int larfb(const qr_blas_t *b, int side, int trans, int64_t m, int64_t n, int64_t kb,
                 const void *v, int64_t ldv, const void *t, int64_t ldt, void *c, int64_t ldc,
                 void *w) {
    size_t es = es_of(b->dtype);
    if (side == DAGR_LEFT) {
        /* m rows of C and V: C1, V1 the first kb, C2, V2 the others */
        const void *v2 = AT(v, kb, 0, ldv);
        void *c2 = AT(c, kb, 0, ldc);
        int64_t ldw = kb;
        TRY(add(b, kb, n, 1.0, c, ldc, 0.0, w, ldw));
        TRY(trmm(b, DAGR_LEFT, DAGR_LOWER, DAGR_TRANS, DAGR_UNIT, kb, n, v, ldv, w, ldw));
        TRY(gemm(b, DAGR_TRANS, DAGR_NO_TRANS, kb, n, m - kb, 1.0, v2, ldv, c2, ldc, 1.0, w, ldw));
        TRY(trmm(b, DAGR_LEFT, DAGR_UPPER, trans, DAGR_NON_UNIT, kb, n, t, ldt, w, ldw));
        TRY(gemm(b, DAGR_NO_TRANS, DAGR_NO_TRANS, m - kb, n, kb, -1.0, v2, ldv, w, ldw, 1.0, c2,
                 ldc));
        TRY(trmm(b, DAGR_LEFT, DAGR_LOWER, DAGR_NO_TRANS, DAGR_UNIT, kb, n, v, ldv, w, ldw));
        return add(b, kb, n, -1.0, w, ldw, 1.0, c, ldc);
    }
    /* n columns of C, n rows of V: C1, V1 the first kb, C2, V2 the others */
    const void *v2 = AT(v, kb, 0, ldv);
    void *c2 = AT(c, 0, kb, ldc);
    int64_t ldw = m;
    TRY(add(b, m, kb, 1.0, c, ldc, 0.0, w, ldw));
    TRY(trmm(b, DAGR_RIGHT, DAGR_LOWER, DAGR_NO_TRANS, DAGR_UNIT, m, kb, v, ldv, w, ldw));
    TRY(gemm(b, DAGR_NO_TRANS, DAGR_NO_TRANS, m, kb, n - kb, 1.0, c2, ldc, v2, ldv, 1.0, w, ldw));
    TRY(trmm(b, DAGR_RIGHT, DAGR_UPPER, trans, DAGR_NON_UNIT, m, kb, t, ldt, w, ldw));
    TRY(gemm(b, DAGR_NO_TRANS, DAGR_TRANS, m, n - kb, kb, -1.0, w, ldw, v2, ldv, 1.0, c2, ldc));
    TRY(trmm(b, DAGR_RIGHT, DAGR_LOWER, DAGR_TRANS, DAGR_UNIT, m, kb, v, ldv, w, ldw));
    return add(b, m, kb, -1.0, w, ldw, 1.0, c, ldc);
}

/* dtprfb: one block of kb reflectors, V (mb x kb for LEFT, nb x kb for RIGHT) whose last lb
 * rows are upper trapezoidal, on A (kb x n / m x kb) and B (mb x n / m x nb). */
static int tprfb(const qr_blas_t *b, int side, int trans, int64_t m, int64_t n, int64_t kb,
                 int64_t lb, const void *v, int64_t ldv, const void *t, int64_t ldt, void *a,
                 int64_t lda, void *bm, int64_t ldb, void *w) {
    size_t es = es_of(b->dtype);
    if (side == DAGR_LEFT) {
        /* V = [V1; V2]: V1 the first m - lb rows, V2 = [U R] the last lb, U (lb x lb) upper
         * triangular; B = [B1; B2] alike. W = A + V^T B, rows 0..lb-1 first. */
        int64_t mp = m - lb;
        const void *u = AT(v, mp, 0, ldv), *vr = AT(v, 0, lb, ldv), *r = AT(v, mp, lb, ldv);
        void *b2 = AT(bm, mp, 0, ldb), *wr = AT(w, lb, 0, kb);
        int64_t ldw = kb;
        TRY(add(b, lb, n, 1.0, b2, ldb, 0.0, w, ldw));
        TRY(trmm(b, DAGR_LEFT, DAGR_UPPER, DAGR_TRANS, DAGR_NON_UNIT, lb, n, u, ldv, w, ldw));
        TRY(gemm(b, DAGR_TRANS, DAGR_NO_TRANS, lb, n, mp, 1.0, v, ldv, bm, ldb, 1.0, w, ldw));
        TRY(gemm(b, DAGR_TRANS, DAGR_NO_TRANS, kb - lb, n, m, 1.0, vr, ldv, bm, ldb, 0.0, wr, ldw));
        TRY(add(b, kb, n, 1.0, a, lda, 1.0, w, ldw));
        TRY(trmm(b, DAGR_LEFT, DAGR_UPPER, trans, DAGR_NON_UNIT, kb, n, t, ldt, w, ldw));
        TRY(add(b, kb, n, -1.0, w, ldw, 1.0, a, lda));
        TRY(gemm(b, DAGR_NO_TRANS, DAGR_NO_TRANS, mp, n, kb, -1.0, v, ldv, w, ldw, 1.0, bm, ldb));
        TRY(gemm(b, DAGR_NO_TRANS, DAGR_NO_TRANS, lb, n, kb - lb, -1.0, r, ldv, wr, ldw, 1.0, b2,
                 ldb));
        TRY(trmm(b, DAGR_LEFT, DAGR_UPPER, DAGR_NO_TRANS, DAGR_NON_UNIT, lb, n, u, ldv, w, ldw));
        return add(b, lb, n, -1.0, w, ldw, 1.0, b2, ldb);
    }
    /* V as on the left with n rows; B = [B1 B2] by columns. W = A + B V, columns 0..lb-1
     * first. */
    int64_t np = n - lb;
    const void *u = AT(v, np, 0, ldv), *vr = AT(v, 0, lb, ldv), *r = AT(v, np, lb, ldv);
    void *b2 = AT(bm, 0, np, ldb), *wr = AT(w, 0, lb, m);
    int64_t ldw = m;
    TRY(add(b, m, lb, 1.0, b2, ldb, 0.0, w, ldw));
    TRY(trmm(b, DAGR_RIGHT, DAGR_UPPER, DAGR_NO_TRANS, DAGR_NON_UNIT, m, lb, u, ldv, w, ldw));
    TRY(gemm(b, DAGR_NO_TRANS, DAGR_NO_TRANS, m, lb, np, 1.0, bm, ldb, v, ldv, 1.0, w, ldw));
    TRY(gemm(b, DAGR_NO_TRANS, DAGR_NO_TRANS, m, kb - lb, n, 1.0, bm, ldb, vr, ldv, 0.0, wr, ldw));
    TRY(add(b, m, kb, 1.0, a, lda, 1.0, w, ldw));
    TRY(trmm(b, DAGR_RIGHT, DAGR_UPPER, trans, DAGR_NON_UNIT, m, kb, t, ldt, w, ldw));
    TRY(add(b, m, kb, -1.0, w, ldw, 1.0, a, lda));
    TRY(gemm(b, DAGR_NO_TRANS, DAGR_TRANS, m, np, kb, -1.0, w, ldw, v, ldv, 1.0, bm, ldb));
    TRY(gemm(b, DAGR_NO_TRANS, DAGR_TRANS, m, lb, kb - lb, -1.0, wr, ldw, r, ldv, 1.0, b2, ldb));
    TRY(trmm(b, DAGR_RIGHT, DAGR_UPPER, DAGR_TRANS, DAGR_NON_UNIT, m, lb, u, ldv, w, ldw));
    return add(b, m, lb, -1.0, w, ldw, 1.0, b2, ldb);
}

/* Whether the blocks go first to last: Q^T from the left, Q from the right. */
static int forwards(int side, int trans) {
    return (side == DAGR_LEFT) == (trans == DAGR_TRANS);
}

int qr_blocked_gemqrt(const qr_blas_t *b, int side, int trans, int64_t m, int64_t n, int64_t k,
                      int64_t ib, const void *v, int64_t ldv, const void *t, int64_t ldt, void *c,
                      int64_t ldc) {
    if (k <= 0 || m <= 0 || n <= 0) return 0;
    size_t es = es_of(b->dtype);
    bool left = side == DAGR_LEFT;
    void *w = b->scratch(b->ctx, (size_t)ib * (size_t)(left ? n : m) * es);
    if (!w) return -1;
    bool fwd = forwards(side, trans);
    int64_t last = (k - 1) / ib * ib;
    for (int64_t s = 0; s <= last; s += ib) {
        int64_t i = fwd ? s : last - s, kb = min64(ib, k - i);
        const void *vi = AT(v, i, i, ldv), *ti = AT(t, 0, i, ldt);
        int rc =
            left ? larfb(b, side, trans, m - i, n, kb, vi, ldv, ti, ldt, AT(c, i, 0, ldc), ldc, w)
                 : larfb(b, side, trans, m, n - i, kb, vi, ldv, ti, ldt, AT(c, 0, i, ldc), ldc, w);
        if (rc != 0) return rc;
    }
    return 0;
}

int qr_blocked_tpmqrt(const qr_blas_t *b, int side, int trans, int64_t m, int64_t n, int64_t k,
                      int64_t l, int64_t ib, const void *v, int64_t ldv, const void *t, int64_t ldt,
                      void *a, int64_t lda, void *bm, int64_t ldb) {
    if (k <= 0 || m <= 0 || n <= 0) return 0;
    size_t es = es_of(b->dtype);
    bool left = side == DAGR_LEFT;
    void *w = b->scratch(b->ctx, (size_t)ib * (size_t)(left ? n : m) * es);
    if (!w) return -1;
    bool fwd = forwards(side, trans);
    int64_t last = (k - 1) / ib * ib;
    /* the rows of V (m on the left, n on the right): block i's reflectors reach down to row
     * vrows - l + i + kb - 1 at most (dtpmqrt's MB), the last lb of them in its trapezoid
     * (none once i >= l - 1, 0-based: the columns from l - 1 on are full) */
    int64_t vrows = left ? m : n;
    for (int64_t s = 0; s <= last; s += ib) {
        int64_t i = fwd ? s : last - s, kb = min64(ib, k - i);
        int64_t mb = min64(vrows - l + i + kb, vrows);
        int64_t lb = i + 1 >= l ? 0 : mb - vrows + l - i;
        const void *vi = AT(v, 0, i, ldv), *ti = AT(t, 0, i, ldt);
        int rc = left ? tprfb(b, side, trans, mb, n, kb, lb, vi, ldv, ti, ldt, AT(a, i, 0, lda),
                              lda, bm, ldb, w)
                      : tprfb(b, side, trans, m, mb, kb, lb, vi, ldv, ti, ldt, AT(a, 0, i, lda),
                              lda, bm, ldb, w);
        if (rc != 0) return rc;
    }
    return 0;
}

/* ---- the CBLAS table ---- */

static CBLAS_TRANSPOSE cb_tr(int t) {
    return t == DAGR_TRANS ? CblasTrans : CblasNoTrans;
}

static int cb_gemm(void *ctx, int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha,
                   const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c,
                   int64_t ldc) {
    (void)ctx;
    cblas_dgemm(CblasColMajor, cb_tr(ta), cb_tr(tb), (blasint)m, (blasint)n, (blasint)k, alpha, a,
                (blasint)lda, b, (blasint)ldb, beta, c, (blasint)ldc);
    return 0;
}

static int cb_sgemm(void *ctx, int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha,
                    const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c,
                    int64_t ldc) {
    (void)ctx;
    cblas_sgemm(CblasColMajor, cb_tr(ta), cb_tr(tb), (blasint)m, (blasint)n, (blasint)k,
                (float)alpha, a, (blasint)lda, b, (blasint)ldb, (float)beta, c, (blasint)ldc);
    return 0;
}

static int cb_trmm(void *ctx, int side, int uplo, int trans, int diag, int64_t m, int64_t n,
                   const void *a, int64_t lda, void *b, int64_t ldb) {
    (void)ctx;
    cblas_dtrmm(CblasColMajor, side == DAGR_RIGHT ? CblasRight : CblasLeft,
                uplo == DAGR_UPPER ? CblasUpper : CblasLower, cb_tr(trans),
                diag == DAGR_UNIT ? CblasUnit : CblasNonUnit, (blasint)m, (blasint)n, 1.0, a,
                (blasint)lda, b, (blasint)ldb);
    return 0;
}

static int cb_strmm(void *ctx, int side, int uplo, int trans, int diag, int64_t m, int64_t n,
                    const void *a, int64_t lda, void *b, int64_t ldb) {
    (void)ctx;
    cblas_strmm(CblasColMajor, side == DAGR_RIGHT ? CblasRight : CblasLeft,
                uplo == DAGR_UPPER ? CblasUpper : CblasLower, cb_tr(trans),
                diag == DAGR_UNIT ? CblasUnit : CblasNonUnit, (blasint)m, (blasint)n, 1.0f, a,
                (blasint)lda, b, (blasint)ldb);
    return 0;
}

#define CB_ADD(name, T)                                                                            \
    static int name(void *ctx, int64_t m, int64_t n, double alpha, const void *a, int64_t lda,     \
                    double beta, void *b, int64_t ldb) {                                           \
        (void)ctx;                                                                                 \
        T al = (T)alpha, be = (T)beta;                                                             \
        for (int64_t c = 0; c < n; c++) {                                                          \
            const T *x = (const T *)a + (size_t)c * (size_t)lda;                                   \
            T *y = (T *)b + (size_t)c * (size_t)ldb;                                               \
            for (int64_t r = 0; r < m; r++)                                                        \
                y[r] = beta == 0.0 ? al * x[r] : al * x[r] + be * y[r];                            \
        }                                                                                          \
        return 0;                                                                                  \
    }
CB_ADD(cb_dadd, double)
CB_ADD(cb_sadd, float)

static void *cb_scratch(void *ctx, size_t bytes) {
    qr_blas_cblas_t *s = ctx;
    if (bytes > s->bytes) {
        void *p = realloc(s->buf, bytes);
        if (!p) return NULL;
        s->buf = p;
        s->bytes = bytes;
    }
    return s->buf ? s->buf : (s->buf = malloc(1));
}

void qr_blas_cblas_init(qr_blas_t *b, qr_blas_cblas_t *s, int32_t dtype) {
    *s = (qr_blas_cblas_t){0};
    bool d = dtype == DAGR_DOUBLE;
    *b = (qr_blas_t){.ctx = s,
                     .dtype = dtype,
                     .gemm = d ? cb_gemm : cb_sgemm,
                     .trmm = d ? cb_trmm : cb_strmm,
                     .add = d ? cb_dadd : cb_sadd,
                     .scratch = cb_scratch};
}

void qr_blas_cblas_fini(qr_blas_cblas_t *s) {
    free(s->buf);
    *s = (qr_blas_cblas_t){0};
}
