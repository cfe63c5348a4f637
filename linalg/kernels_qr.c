/* CPU tile kernels of the Householder QR: LAPACK's compact-WY tile routines (geqrt, gemqrt,
 * tpqrt, tpmqrt), float and double. Each reads its shapes from a qr_op_t and its leading
 * dimensions from the task view; see linalg_impl.h for the buffer order of each.
 *
 * The kernels of the LAPACK-form QR (variant 3, qr_hh_*) follow: the panel and the pieces of
 * a block reflector's application, each a gemm or a triangular product.
 *
 * The LAPACKE _work forms are used: they neither allocate behind our back nor scan the input
 * for NaNs (a NaN must propagate to the residual, as LAPACK's own routines let it). */
#include "linalg_impl.h"
#include "qr_impl.h"

#include <cblas.h>
#include <lapacke.h>
#include <stdlib.h>
#include <string.h>

#define LD(t, i) ((lapack_int)(t)->ld[i])

static int64_t min64(int64_t a, int64_t b) {
    return a < b ? a : b;
}

/* The inner block size LAPACK accepts for k reflectors: 1 <= ib <= k. The factor and the apply
 * kernels clamp alike, so T is always read with the block size it was written with. */
static lapack_int ib_for(int64_t ib, int64_t k) {
    return (lapack_int)(ib < 1 ? 1 : ib > k ? k : ib);
}

static dagr_task_result_t finish(const dagr_task_view_t *t, const char *what, lapack_int info) {
    if (info == 0) return DAGR_TASK_DONE;
    dagr_task_fail(t, DAGR_ERR_INTERNAL, "%s tile: LAPACKE argument %d is invalid", what,
                   (int)-info);
    return DAGR_TASK_ERROR;
}

/* Work space of `count` elements of the task's dtype; NULL (and the task failed) if none. */
static void *work_alloc(const dagr_task_view_t *t, int32_t dtype, int64_t count) {
    size_t es = dtype == DAGR_DOUBLE ? sizeof(double) : sizeof(float);
    void *w = malloc((size_t)(count > 0 ? count : 1) * es);
    if (!w) dagr_task_fail(t, DAGR_ERR_NOMEM, "no memory for %lld work elements", (long long)count);
    return w;
}

static dagr_task_result_t k_geqrt(const dagr_task_view_t *t) {
    const qr_op_t *o = t->args;
    int64_t kk = min64(o->m, o->n);
    if (kk == 0) return DAGR_TASK_DONE;
    lapack_int ib = ib_for(o->ib, kk);
    void *w = work_alloc(t, o->dtype, (int64_t)ib * o->n);
    if (!w) return DAGR_TASK_ERROR;
    lapack_int info =
        o->dtype == DAGR_DOUBLE
            ? LAPACKE_dgeqrt_work(LAPACK_COL_MAJOR, (lapack_int)o->m, (lapack_int)o->n, ib,
                                  t->buf[0], LD(t, 0), t->buf[1], LD(t, 1), w)
            : LAPACKE_sgeqrt_work(LAPACK_COL_MAJOR, (lapack_int)o->m, (lapack_int)o->n, ib,
                                  t->buf[0], LD(t, 0), t->buf[1], LD(t, 1), w);
    free(w);
    return finish(t, "geqrt", info);
}

static dagr_task_result_t k_gemqrt(const dagr_task_view_t *t) {
    const qr_op_t *o = t->args;
    if (o->k == 0 || o->m == 0 || o->n == 0) return DAGR_TASK_DONE;
    lapack_int ib = ib_for(o->ib, o->k);
    char side = o->side == DAGR_RIGHT ? 'R' : 'L', trans = o->trans == DAGR_TRANS ? 'T' : 'N';
    void *w = work_alloc(t, o->dtype, (int64_t)ib * (o->side == DAGR_RIGHT ? o->m : o->n));
    if (!w) return DAGR_TASK_ERROR;
    lapack_int info =
        o->dtype == DAGR_DOUBLE
            ? LAPACKE_dgemqrt_work(LAPACK_COL_MAJOR, side, trans, (lapack_int)o->m,
                                   (lapack_int)o->n, (lapack_int)o->k, ib, t->buf[1], LD(t, 1),
                                   t->buf[2], LD(t, 2), t->buf[0], LD(t, 0), w)
            : LAPACKE_sgemqrt_work(LAPACK_COL_MAJOR, side, trans, (lapack_int)o->m,
                                   (lapack_int)o->n, (lapack_int)o->k, ib, t->buf[1], LD(t, 1),
                                   t->buf[2], LD(t, 2), t->buf[0], LD(t, 0), w);
    free(w);
    return finish(t, "gemqrt", info);
}

static dagr_task_result_t k_tpqrt(const dagr_task_view_t *t) {
    const qr_op_t *o = t->args;
    if (o->m == 0 || o->n == 0) return DAGR_TASK_DONE;
    lapack_int ib = ib_for(o->ib, o->n);
    void *w = work_alloc(t, o->dtype, (int64_t)ib * o->n);
    if (!w) return DAGR_TASK_ERROR;
    lapack_int info =
        o->dtype == DAGR_DOUBLE
            ? LAPACKE_dtpqrt_work(LAPACK_COL_MAJOR, (lapack_int)o->m, (lapack_int)o->n,
                                  (lapack_int)o->l, ib, t->buf[1], LD(t, 1), t->buf[0], LD(t, 0),
                                  t->buf[2], LD(t, 2), w)
            : LAPACKE_stpqrt_work(LAPACK_COL_MAJOR, (lapack_int)o->m, (lapack_int)o->n,
                                  (lapack_int)o->l, ib, t->buf[1], LD(t, 1), t->buf[0], LD(t, 0),
                                  t->buf[2], LD(t, 2), w);
    free(w);
    return finish(t, "tpqrt", info);
}

static dagr_task_result_t k_tpmqrt(const dagr_task_view_t *t) {
    const qr_op_t *o = t->args;
    if (o->k == 0 || o->m == 0 || o->n == 0) return DAGR_TASK_DONE;
    lapack_int ib = ib_for(o->ib, o->k);
    char side = o->side == DAGR_RIGHT ? 'R' : 'L', trans = o->trans == DAGR_TRANS ? 'T' : 'N';
    void *w = work_alloc(t, o->dtype, (int64_t)ib * (o->side == DAGR_RIGHT ? o->m : o->n));
    if (!w) return DAGR_TASK_ERROR;
    lapack_int info =
        o->dtype == DAGR_DOUBLE
            ? LAPACKE_dtpmqrt_work(LAPACK_COL_MAJOR, side, trans, (lapack_int)o->m,
                                   (lapack_int)o->n, (lapack_int)o->k, (lapack_int)o->l, ib,
                                   t->buf[2], LD(t, 2), t->buf[3], LD(t, 3), t->buf[1], LD(t, 1),
                                   t->buf[0], LD(t, 0), w)
            : LAPACKE_stpmqrt_work(LAPACK_COL_MAJOR, side, trans, (lapack_int)o->m,
                                   (lapack_int)o->n, (lapack_int)o->k, (lapack_int)o->l, ib,
                                   t->buf[2], LD(t, 2), t->buf[3], LD(t, 3), t->buf[1], LD(t, 1),
                                   t->buf[0], LD(t, 0), w);
    free(w);
    return finish(t, "tpmqrt", info);
}

static dagr_task_result_t k_qr_rdiag(const dagr_task_view_t *t) {
    const rdiag_op_t *o = t->args;
    int64_t *info = t->buf[0];
    if (*info != 0) return DAGR_TASK_DONE; /* an earlier column is zero already */
    for (int64_t d = 0; d < o->n; d++) {
        size_t at = (size_t)d * (t->ld[1] + 1);
        double r = o->dtype == DAGR_DOUBLE ? ((const double *)t->buf[1])[at]
                                           : ((const float *)t->buf[1])[at];
        if (r == 0.0) {
            *info = o->j0 + d + 1;
            break;
        }
    }
    return DAGR_TASK_DONE;
}

/* ---- LAPACK-form QR (variant 3) ---- */

static size_t es_of(int32_t dtype) {
    return dtype == DAGR_DOUBLE ? sizeof(double) : sizeof(float);
}

/* C = alpha op(A) op(B) + beta C in the task's dtype. */
static void gemm_t(int32_t dtype, int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha,
                   const void *a, size_t lda, const void *b, size_t ldb, double beta, void *c,
                   size_t ldc) {
    if (m == 0 || n == 0) return;
    enum CBLAS_TRANSPOSE oa = ta ? CblasTrans : CblasNoTrans, ob = tb ? CblasTrans : CblasNoTrans;
    if (dtype == DAGR_DOUBLE)
        cblas_dgemm(CblasColMajor, oa, ob, (blasint)m, (blasint)n, (blasint)k, alpha, a,
                    (blasint)lda, b, (blasint)ldb, beta, c, (blasint)ldc);
    else
        cblas_sgemm(CblasColMajor, oa, ob, (blasint)m, (blasint)n, (blasint)k, (float)alpha, a,
                    (blasint)lda, b, (blasint)ldb, (float)beta, c, (blasint)ldc);
}

/* W = op(T) W (LEFT, W kk x nfree) or W op(T) (RIGHT, W nfree x kk), T upper triangular. */
static void apply_t(const hh_op_t *o, const void *tm, size_t ldt, void *w, size_t ldw) {
    enum CBLAS_SIDE sd = o->side == DAGR_RIGHT ? CblasRight : CblasLeft;
    enum CBLAS_TRANSPOSE tr = o->trans == DAGR_TRANS ? CblasTrans : CblasNoTrans;
    blasint m = (blasint)(o->side == DAGR_RIGHT ? o->nfree : o->kk);
    blasint n = (blasint)(o->side == DAGR_RIGHT ? o->kk : o->nfree);
    if (m == 0 || n == 0) return;
    if (o->dtype == DAGR_DOUBLE)
        cblas_dtrmm(CblasColMajor, sd, CblasUpper, tr, CblasNonUnit, m, n, 1.0, tm, (blasint)ldt, w,
                    (blasint)ldw);
    else
        cblas_strmm(CblasColMajor, sd, CblasUpper, tr, CblasNonUnit, m, n, 1.0f, tm, (blasint)ldt,
                    w, (blasint)ldw);
}

static dagr_task_result_t k_qr_hh_panel(const dagr_task_view_t *t) {
    const lu_op_t *o = t->args;
    size_t es = es_of(o->dtype);
    int64_t M = (int64_t)(o->ntiles - 1) * o->nb + o->last_rows, N = o->cols;
    int64_t kk = min64(M, N);
    int it = o->ntiles, iv = o->ntiles + 1;
    if (kk == 0) return DAGR_TASK_DONE;
    /* One tile is factored in place; a taller stack is copied into one column-major block so
     * that LAPACK's recursive geqrt3 (all BLAS 3) factors it in one call, as the LU panel. */
    char *w = t->buf[0];
    size_t ldw = t->ld[0];
    char *copy = NULL;
    if (o->ntiles > 1) {
        copy = malloc((size_t)(M * N) * es);
        if (!copy) {
            dagr_task_fail(t, DAGR_ERR_NOMEM, "qr panel: cannot allocate %lld x %lld scratch",
                           (long long)M, (long long)N);
            return DAGR_TASK_ERROR;
        }
        for (int32_t ti = 0; ti < o->ntiles; ti++) {
            int64_t rows = ti == o->ntiles - 1 ? o->last_rows : o->nb;
            for (int64_t c = 0; c < N; c++)
                memcpy(copy + ((size_t)(ti * o->nb) + (size_t)(c * M)) * es,
                       (char *)t->buf[ti] + (size_t)c * t->ld[ti] * es, (size_t)rows * es);
        }
        w = copy;
        ldw = (size_t)M;
    }
    void *work = work_alloc(t, o->dtype, kk * N);
    if (!work) {
        free(copy);
        return DAGR_TASK_ERROR;
    }
    /* geqrt with a block of all kk columns: one T for the whole panel, and the reflectors
     * and tau (T's diagonal) of dlarfg, as dgeqrf makes them */
    lapack_int info =
        o->dtype == DAGR_DOUBLE
            ? LAPACKE_dgeqrt_work(LAPACK_COL_MAJOR, (lapack_int)M, (lapack_int)N, (lapack_int)kk,
                                  (double *)w, (lapack_int)ldw, t->buf[it], LD(t, it), work)
            : LAPACKE_sgeqrt_work(LAPACK_COL_MAJOR, (lapack_int)M, (lapack_int)N, (lapack_int)kk,
                                  (float *)w, (lapack_int)ldw, t->buf[it], LD(t, it), work);
    free(work);
    if (copy) {
        for (int32_t ti = 0; ti < o->ntiles; ti++) {
            int64_t rows = ti == o->ntiles - 1 ? o->last_rows : o->nb;
            for (int64_t c = 0; c < N; c++)
                memcpy((char *)t->buf[ti] + (size_t)c * t->ld[ti] * es,
                       copy + ((size_t)(ti * o->nb) + (size_t)(c * M)) * es, (size_t)rows * es);
        }
    }
    /* Vd: the top rows of V (those of the diagonal tile) with the unit diagonal and the zeros
     * above it stored */
    int64_t vr = (int64_t)t->ld[iv];
    for (int64_t c = 0; c < kk; c++)
        for (int64_t r = 0; r < vr; r++) {
            double v = r > c ? da_load(w, (dagr_dtype_t)o->dtype, r + c * (int64_t)ldw)
                             : (r == c ? 1.0 : 0.0);
            da_store(t->buf[iv], (dagr_dtype_t)o->dtype, r + c * vr, v);
        }
    free(copy);
    return finish(t, "qr panel (geqrt)", info);
}

static dagr_task_result_t k_qr_hh_w(const dagr_task_view_t *t) {
    const hh_op_t *o = t->args;
    int p0 = o->apply_t ? 2 : 1;
    bool left = o->side != DAGR_RIGHT;
    for (int32_t s = 0; s < o->ntiles; s++) {
        int iv = p0 + 2 * s, ic = iv + 1;
        int64_t rows = s == o->ntiles - 1 ? o->last_rows : o->nb;
        double beta = s == 0 && !o->accumulate ? 0.0 : 1.0;
        if (left) /* W (kk x nfree) += V_s^T C_s */
            gemm_t(o->dtype, 1, 0, o->kk, o->nfree, rows, 1.0, t->buf[iv], t->ld[iv], t->buf[ic],
                   t->ld[ic], beta, t->buf[0], t->ld[0]);
        else /* W (nfree x kk) += C_s V_s */
            gemm_t(o->dtype, 0, 0, o->nfree, o->kk, rows, 1.0, t->buf[ic], t->ld[ic], t->buf[iv],
                   t->ld[iv], beta, t->buf[0], t->ld[0]);
    }
    if (o->apply_t) apply_t(o, t->buf[1], t->ld[1], t->buf[0], t->ld[0]);
    return DAGR_TASK_DONE;
}

/* Y = the sum of the ntiles blocks from buffer first on, each m x n. */
static void sum_blocks(const dagr_task_view_t *t, int32_t dtype, int first, int32_t nblocks,
                       int64_t m, int64_t n) {
    size_t ldy = t->ld[0];
    for (int64_t c = 0; c < n; c++)
        for (int64_t r = 0; r < m; r++) {
            double v = 0;
            for (int32_t s = 0; s < nblocks; s++)
                v += da_load(t->buf[first + s], (dagr_dtype_t)dtype,
                             r + c * (int64_t)t->ld[first + s]);
            da_store(t->buf[0], (dagr_dtype_t)dtype, r + c * (int64_t)ldy, v);
        }
}

static dagr_task_result_t k_qr_hh_sum(const dagr_task_view_t *t) {
    const hh_op_t *o = t->args;
    bool left = o->side != DAGR_RIGHT;
    sum_blocks(t, o->dtype, 2, o->ntiles, left ? o->kk : o->nfree, left ? o->nfree : o->kk);
    apply_t(o, t->buf[1], t->ld[1], t->buf[0], t->ld[0]);
    return DAGR_TASK_DONE;
}

static dagr_task_result_t k_qr_hh_vdiag(const dagr_task_view_t *t) {
    const hh_op_t *o = t->args;
    int64_t vr = (int64_t)t->ld[0], lda = (int64_t)t->ld[1];
    for (int64_t c = 0; c < o->kk; c++)
        for (int64_t r = 0; r < vr; r++) {
            double v = r > c ? da_load(t->buf[1], (dagr_dtype_t)o->dtype, r + c * lda)
                             : (r == c ? 1.0 : 0.0);
            da_store(t->buf[0], (dagr_dtype_t)o->dtype, r + c * vr, v);
        }
    return DAGR_TASK_DONE;
}

static dagr_task_result_t k_qr_hh_setdiag(const dagr_task_view_t *t) {
    const hh_diag_op_t *o = t->args;
    int64_t ld = (int64_t)t->ld[0];
    for (int64_t s = 0; s < o->cnt; s++)
        da_store(t->buf[0], (dagr_dtype_t)o->dtype, (o->off + s) * (ld + 1), o->vals[s]);
    return DAGR_TASK_DONE;
}

/* dlarft (forward, columnwise) from G = V^T V: T(0:i, i) = -tau_i T(0:i, 0:i) G(0:i, i),
 * computed in double (kk^3 / 3 operations against the panel's m kk^2). */
static dagr_task_result_t k_qr_hh_tgram(const dagr_task_view_t *t) {
    const hh_op_t *o = t->args;
    int64_t kk = o->kk, ldt = (int64_t)t->ld[0];
    dagr_dtype_t dt = (dagr_dtype_t)o->dtype;
    double *g = malloc((size_t)(kk * kk) * sizeof *g), *tt = calloc((size_t)(kk * kk), sizeof *tt);
    double *col = malloc((size_t)kk * sizeof *col);
    if (!g || !tt || !col) {
        free(g);
        free(tt);
        free(col);
        dagr_task_fail(t, DAGR_ERR_NOMEM, "qr T factor: no memory for %lld x %lld", (long long)kk,
                       (long long)kk);
        return DAGR_TASK_ERROR;
    }
    for (int64_t c = 0; c < kk; c++)
        for (int64_t r = 0; r < kk; r++) {
            double v = 0;
            for (int32_t s = 0; s < o->ntiles; s++)
                v += da_load(t->buf[1 + s], dt, r + c * (int64_t)t->ld[1 + s]);
            g[r + c * kk] = v;
        }
    for (int64_t i = 0; i < kk; i++) {
        double tau = da_load(t->buf[0], dt, i * (ldt + 1));
        for (int64_t r = 0; r < i; r++)
            col[r] = -tau * g[r + i * kk];
        for (int64_t r = 0; r < i; r++) { /* T(0:i, i) = T(0:i, 0:i) col, T upper */
            double v = 0;
            for (int64_t c = r; c < i; c++)
                v += tt[r + c * kk] * col[c];
            tt[r + i * kk] = v;
        }
        tt[i + i * kk] = tau;
    }
    for (int64_t c = 0; c < kk; c++)
        for (int64_t r = 0; r <= c; r++)
            da_store(t->buf[0], dt, r + c * ldt, tt[r + c * kk]);
    free(g);
    free(tt);
    free(col);
    return DAGR_TASK_DONE;
}

const dagr_kernel_t la_qr_hh_panel_kernel = {.name = "qr_panel", .cpu = k_qr_hh_panel};
const dagr_kernel_t la_qr_hh_w_kernel = {
    .name = "qr_w", .cpu = k_qr_hh_w, .gpu = LA_GPU(la_qr_hh_w_gpu)};
const dagr_kernel_t la_qr_hh_sum_kernel = {
    .name = "qr_wsum", .cpu = k_qr_hh_sum, .gpu = LA_GPU(la_qr_hh_sum_gpu)};
const dagr_kernel_t la_qr_hh_vdiag_kernel = {.name = "qr_vdiag", .cpu = k_qr_hh_vdiag};
const dagr_kernel_t la_qr_hh_setdiag_kernel = {.name = "qr_setdiag", .cpu = k_qr_hh_setdiag};
const dagr_kernel_t la_qr_hh_tgram_kernel = {.name = "qr_tgram", .cpu = k_qr_hh_tgram};
const dagr_kernel_t la_qr_rdiag_kernel = {.name = "qr_rdiag", .cpu = k_qr_rdiag};
const dagr_kernel_t la_geqrt_kernel = {.name = "geqrt", .cpu = k_geqrt};
const dagr_kernel_t la_gemqrt_kernel = {
    .name = "gemqrt", .cpu = k_gemqrt, .gpu = LA_GPU(la_gemqrt_gpu)};
const dagr_kernel_t la_tpqrt_kernel = {.name = "tpqrt", .cpu = k_tpqrt};
const dagr_kernel_t la_tpmqrt_kernel = {
    .name = "tpmqrt", .cpu = k_tpmqrt, .gpu = LA_GPU(la_tpmqrt_gpu)};
