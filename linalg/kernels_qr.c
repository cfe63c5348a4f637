/* CPU tile kernels of the Householder QR: LAPACK's compact-WY tile routines (geqrt, gemqrt,
 * tpqrt, tpmqrt), float and double. Each reads its shapes from a qr_op_t and its leading
 * dimensions from the task view; see linalg_impl.h for the buffer order of each.
 *
 * The LAPACKE _work forms are used: they neither allocate behind our back nor scan the input
 * for NaNs (a NaN must propagate to the residual, as LAPACK's own routines let it). */
#include "linalg_impl.h"

#include <lapacke.h>
#include <stdlib.h>

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

const dagr_kernel_t la_qr_rdiag_kernel = {.name = "qr_rdiag", .cpu = k_qr_rdiag};
const dagr_kernel_t la_geqrt_kernel = {.name = "geqrt", .cpu = k_geqrt};
const dagr_kernel_t la_gemqrt_kernel = {.name = "gemqrt", .cpu = k_gemqrt};
const dagr_kernel_t la_tpqrt_kernel = {.name = "tpqrt", .cpu = k_tpqrt};
const dagr_kernel_t la_tpmqrt_kernel = {.name = "tpmqrt", .cpu = k_tpmqrt};
