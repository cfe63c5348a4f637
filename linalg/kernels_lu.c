/* CPU kernels of LU with partial pivoting: the panel factorization of a stack of tiles, the
 * row interchanges (with the triangular solve of the top tile), and the singularity report.
 * See linalg_impl.h for the buffers of each. */
#include "linalg_impl.h"

#include <cblas.h>
#include <lapacke.h>
#include <stdlib.h>
#include <string.h>

/* Address of row r (0-based in the stack), column c of a stack of tiles. */
static inline char *stack_at(const dagr_task_view_t *t, const lu_op_t *o, size_t es, int64_t r,
                             int64_t c) {
    int64_t ti = r / o->nb;
    return (char *)t->buf[ti] + ((size_t)(r % o->nb) + (size_t)c * t->ld[ti]) * es;
}

static int64_t stack_rows(const lu_op_t *o) {
    return (int64_t)(o->ntiles - 1) * o->nb + o->last_rows;
}

static dagr_task_result_t k_lu_panel(const dagr_task_view_t *t) {
    const lu_op_t *o = t->args;
    size_t es = o->dtype == DAGR_DOUBLE ? sizeof(double) : sizeof(float);
    int64_t M = stack_rows(o), N = o->cols;
    int64_t *piv = t->buf[o->ntiles], *info = t->buf[o->ntiles + 1];
    /* The stack is copied into one column-major block so that LAPACK's recursive getrf (much
     * faster than a tile-by-tile panel) can factor it in one call. */
    char *w = malloc((size_t)(M * N) * es + 1);
    lapack_int *ip = malloc((size_t)o->npiv * sizeof *ip + 1);
    if (!w || !ip) {
        free(w);
        free(ip);
        dagr_task_fail(t, DAGR_ERR_NOMEM, "lu panel: cannot allocate %lld x %lld scratch",
                       (long long)M, (long long)N);
        return DAGR_TASK_ERROR;
    }
    for (int32_t ti = 0; ti < o->ntiles; ti++) {
        int64_t rows = ti == o->ntiles - 1 ? o->last_rows : o->nb;
        for (int64_t c = 0; c < N; c++)
            memcpy(w + ((size_t)(ti * o->nb) + (size_t)(c * M)) * es,
                   (char *)t->buf[ti] + (size_t)c * t->ld[ti] * es, (size_t)rows * es);
    }
    lapack_int r = o->dtype == DAGR_DOUBLE
                       ? LAPACKE_dgetrf_work(LAPACK_COL_MAJOR, (lapack_int)M, (lapack_int)N,
                                             (double *)w, (lapack_int)M, ip)
                       : LAPACKE_sgetrf_work(LAPACK_COL_MAJOR, (lapack_int)M, (lapack_int)N,
                                             (float *)w, (lapack_int)M, ip);
    for (int32_t ti = 0; ti < o->ntiles; ti++) {
        int64_t rows = ti == o->ntiles - 1 ? o->last_rows : o->nb;
        for (int64_t c = 0; c < N; c++)
            memcpy((char *)t->buf[ti] + (size_t)c * t->ld[ti] * es,
                   w + ((size_t)(ti * o->nb) + (size_t)(c * M)) * es, (size_t)rows * es);
    }
    for (int64_t i = 0; i < o->npiv; i++)
        piv[i] = o->row0 + (int64_t)ip[i] - 1;
    free(w);
    free(ip);
    if (r < 0) {
        dagr_task_fail(t, DAGR_ERR_INTERNAL, "lu panel: LAPACKE argument %d is invalid", (int)-r);
        return DAGR_TASK_ERROR;
    }
    /* An exactly zero pivot is not an error here: the factorization completes, as LAPACK's
     * does, and lu_info reports the first one once every panel has run. */
    if (r > 0 && *info == 0) *info = o->j0 + r;
    return DAGR_TASK_DONE;
}

#define SWAP_ROWS(T)                                                                               \
    static void swap_rows_##T(const dagr_task_view_t *t, const lu_op_t *o, int64_t a, int64_t b) { \
        for (int64_t c = 0; c < o->cols; c++) {                                                    \
            T *x = (T *)stack_at(t, o, sizeof(T), a, c),                                           \
              *y = (T *)stack_at(t, o, sizeof(T), b, c);                                           \
            T v = *x;                                                                              \
            *x = *y;                                                                               \
            *y = v;                                                                                \
        }                                                                                          \
    }
SWAP_ROWS(double)
SWAP_ROWS(float)

static dagr_task_result_t k_lu_swap(const dagr_task_view_t *t) {
    const lu_op_t *o = t->args;
    const int64_t *piv = t->buf[o->ntiles];
    for (int64_t s = 0; s < o->npiv; s++) {
        int64_t i = o->reverse ? o->npiv - 1 - s : s;
        int64_t p = piv[i] - o->row0;
        if (p == i) continue;
        if (o->dtype == DAGR_DOUBLE)
            swap_rows_double(t, o, i, p);
        else
            swap_rows_float(t, o, i, p);
    }
    if (o->trsm && o->npiv > 0 && o->cols > 0) {
        int k = o->ntiles + 1;
        if (o->dtype == DAGR_DOUBLE)
            cblas_dtrsm(CblasColMajor, CblasLeft, CblasLower, CblasNoTrans, CblasUnit,
                        (blasint)o->npiv, (blasint)o->cols, 1.0, t->buf[k], (blasint)t->ld[k],
                        t->buf[0], (blasint)t->ld[0]);
        else
            cblas_strsm(CblasColMajor, CblasLeft, CblasLower, CblasNoTrans, CblasUnit,
                        (blasint)o->npiv, (blasint)o->cols, 1.0f, t->buf[k], (blasint)t->ld[k],
                        t->buf[0], (blasint)t->ld[0]);
    }
    return DAGR_TASK_DONE;
}

static dagr_task_result_t k_lu_copy(const dagr_task_view_t *t) {
    const lu_op_t *o = t->args;
    size_t es = o->dtype == DAGR_DOUBLE ? sizeof(double) : sizeof(float);
    char *w = t->buf[o->ntiles];
    size_t wld = t->ld[o->ntiles];
    for (int32_t ti = 0; ti < o->ntiles; ti++) {
        int64_t rows = ti == o->ntiles - 1 ? o->last_rows : o->nb;
        for (int64_t c = 0; c < o->cols; c++) {
            char *tile = (char *)t->buf[ti] + (size_t)c * t->ld[ti] * es;
            char *wc = w + ((size_t)(o->woff + ti * o->nb) + (size_t)c * wld) * es;
            if (o->gather)
                memcpy(wc, tile, (size_t)rows * es);
            else
                memcpy(tile, wc, (size_t)rows * es);
        }
    }
    return DAGR_TASK_DONE;
}

const dagr_kernel_t la_lu_panel_kernel = {.name = "lu_panel", .cpu = k_lu_panel};
const dagr_kernel_t la_lu_swap_kernel = {
    .name = "lu_swap", .cpu = k_lu_swap, .gpu = LA_GPU(la_lu_swap_gpu)};
const dagr_kernel_t la_lu_copy_kernel = {
    .name = "lu_copy", .cpu = k_lu_copy, .gpu = LA_GPU(la_lu_copy_gpu)};
