/* CPU tile kernels: CBLAS and LAPACKE on OpenBLAS, float and double. Each reads its shapes and
 * scalars from a tile_op_t (the check of results: a finite_op_t) and its leading dimensions
 * from the task view; see linalg_impl.h for the buffer order of each. */
#include "linalg_impl.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>

static CBLAS_TRANSPOSE tr(int32_t t) {
    return t == DAGR_TRANS ? CblasTrans : CblasNoTrans;
}
static CBLAS_UPLO up(int32_t u) {
    return u == DAGR_UPPER ? CblasUpper : CblasLower;
}
static CBLAS_SIDE sd(int32_t s) {
    return s == DAGR_RIGHT ? CblasRight : CblasLeft;
}
static CBLAS_DIAG dg(int32_t d) {
    return d == DAGR_UNIT ? CblasUnit : CblasNonUnit;
}

#define LD(t, i) ((blasint)(t)->ld[i])

static dagr_task_result_t k_gemm(const dagr_task_view_t *t) {
    const tile_op_t *o = t->args;
    if (o->dtype == DAGR_DOUBLE)
        cblas_dgemm(CblasColMajor, tr(o->ta), tr(o->tb), (blasint)o->m, (blasint)o->n,
                    (blasint)o->k, o->alpha, t->buf[1], LD(t, 1), t->buf[2], LD(t, 2), o->beta,
                    t->buf[0], LD(t, 0));
    else
        cblas_sgemm(CblasColMajor, tr(o->ta), tr(o->tb), (blasint)o->m, (blasint)o->n,
                    (blasint)o->k, (float)o->alpha, t->buf[1], LD(t, 1), t->buf[2], LD(t, 2),
                    (float)o->beta, t->buf[0], LD(t, 0));
    return DAGR_TASK_DONE;
}

static dagr_task_result_t k_syrk(const dagr_task_view_t *t) {
    const tile_op_t *o = t->args;
    if (o->dtype == DAGR_DOUBLE)
        cblas_dsyrk(CblasColMajor, up(o->uplo), tr(o->ta), (blasint)o->n, (blasint)o->k, o->alpha,
                    t->buf[1], LD(t, 1), o->beta, t->buf[0], LD(t, 0));
    else
        cblas_ssyrk(CblasColMajor, up(o->uplo), tr(o->ta), (blasint)o->n, (blasint)o->k,
                    (float)o->alpha, t->buf[1], LD(t, 1), (float)o->beta, t->buf[0], LD(t, 0));
    return DAGR_TASK_DONE;
}

static dagr_task_result_t k_symm(const dagr_task_view_t *t) {
    const tile_op_t *o = t->args;
    if (o->dtype == DAGR_DOUBLE)
        cblas_dsymm(CblasColMajor, sd(o->side), up(o->uplo), (blasint)o->m, (blasint)o->n, o->alpha,
                    t->buf[1], LD(t, 1), t->buf[2], LD(t, 2), o->beta, t->buf[0], LD(t, 0));
    else
        cblas_ssymm(CblasColMajor, sd(o->side), up(o->uplo), (blasint)o->m, (blasint)o->n,
                    (float)o->alpha, t->buf[1], LD(t, 1), t->buf[2], LD(t, 2), (float)o->beta,
                    t->buf[0], LD(t, 0));
    return DAGR_TASK_DONE;
}

static dagr_task_result_t k_trsm(const dagr_task_view_t *t) {
    const tile_op_t *o = t->args;
    if (o->dtype == DAGR_DOUBLE)
        cblas_dtrsm(CblasColMajor, sd(o->side), up(o->uplo), tr(o->ta), dg(o->diag), (blasint)o->m,
                    (blasint)o->n, o->alpha, t->buf[1], LD(t, 1), t->buf[0], LD(t, 0));
    else
        cblas_strsm(CblasColMajor, sd(o->side), up(o->uplo), tr(o->ta), dg(o->diag), (blasint)o->m,
                    (blasint)o->n, (float)o->alpha, t->buf[1], LD(t, 1), t->buf[0], LD(t, 0));
    return DAGR_TASK_DONE;
}

static dagr_task_result_t k_trmm(const dagr_task_view_t *t) {
    const tile_op_t *o = t->args;
    if (o->dtype == DAGR_DOUBLE)
        cblas_dtrmm(CblasColMajor, sd(o->side), up(o->uplo), tr(o->ta), dg(o->diag), (blasint)o->m,
                    (blasint)o->n, o->alpha, t->buf[1], LD(t, 1), t->buf[0], LD(t, 0));
    else
        cblas_strmm(CblasColMajor, sd(o->side), up(o->uplo), tr(o->ta), dg(o->diag), (blasint)o->m,
                    (blasint)o->n, (float)o->alpha, t->buf[1], LD(t, 1), t->buf[0], LD(t, 0));
    return DAGR_TASK_DONE;
}

static dagr_task_result_t k_potrf(const dagr_task_view_t *t) {
    const tile_op_t *o = t->args;
    char u = o->uplo == DAGR_UPPER ? 'U' : 'L';
    lapack_int info = o->dtype == DAGR_DOUBLE
                          ? LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, u, (lapack_int)o->n, t->buf[0],
                                                (lapack_int)t->ld[0])
                          : LAPACKE_spotrf_work(LAPACK_COL_MAJOR, u, (lapack_int)o->n, t->buf[0],
                                                (lapack_int)t->ld[0]);
    return la_potrf_verdict(t, o, info, t->buf[0], t->ld[0] + 1, "LAPACKE");
}

dagr_task_result_t la_potrf_verdict(const dagr_task_view_t *t, const tile_op_t *o, int64_t info,
                                    const void *diag, size_t stride, const char *lib) {
    if (info == 0) {
        /* OpenBLAS's own potf2 tests only ajj <= 0, which a NaN passes, and LAPACK lets an
         * infinite diagonal through: a non-finite diagonal of the factor means the input had a
         * NaN or an Inf that reached it (every entry of a factor row feeds its diagonal), so it
         * fails as LAPACK's dpotrf does on a NaN rather than report success. */
        for (int64_t d = 0; d < o->n; d++) {
            double v = o->dtype == DAGR_DOUBLE ? ((const double *)diag)[(size_t)d * stride]
                                               : ((const float *)diag)[(size_t)d * stride];
            if (!isfinite(v)) {
                dagr_task_fail(t, DAGR_ERR_NOT_SPD,
                               "the matrix is not positive definite: the factor's diagonal at "
                               "global column %lld (1-based) is %s (a NaN or Inf in the input)",
                               (long long)(o->j0 + d + 1), isnan(v) ? "NaN" : "infinite");
                return DAGR_TASK_ERROR;
            }
        }
    }
    if (info > 0) {
        dagr_task_fail(t, DAGR_ERR_NOT_SPD,
                       "the matrix is not positive definite: the leading minor of order %lld "
                       "(global column %lld, 1-based as LAPACK's info) is not positive",
                       (long long)(o->j0 + info), (long long)(o->j0 + info));
        return DAGR_TASK_ERROR;
    }
    if (info < 0) {
        dagr_task_fail(t, DAGR_ERR_INTERNAL, "potrf tile: %s argument %d is invalid", lib,
                       (int)-info);
        return DAGR_TASK_ERROR;
    }
    return DAGR_TASK_DONE;
}

/* Scales the m x n tile by alpha, on the uplo triangle (diagonal included) or on the whole
 * tile (LA_FULL). alpha == 0 stores zeros, so that NaNs in the old contents do not survive
 * (BLAS's beta == 0 and trsm/trmm's alpha == 0). */
static dagr_task_result_t k_scale(const dagr_task_view_t *t) {
    const tile_op_t *o = t->args;
    size_t ld = t->ld[0];
    for (int64_t c = 0; c < o->n; c++) {
        int64_t r0 = o->uplo == DAGR_LOWER ? c : 0;
        int64_t r1 = o->uplo == DAGR_UPPER ? (c + 1 < o->m ? c + 1 : o->m) : o->m;
        if (o->dtype == DAGR_DOUBLE) {
            double *a = (double *)t->buf[0] + (size_t)c * ld;
            for (int64_t r = r0; r < r1; r++)
                a[r] = o->alpha == 0 ? 0.0 : a[r] * o->alpha;
        } else {
            float *a = (float *)t->buf[0] + (size_t)c * ld;
            for (int64_t r = r0; r < r1; r++)
                a[r] = o->alpha == 0 ? 0.0f : a[r] * (float)o->alpha;
        }
    }
    return DAGR_TASK_DONE;
}

/* Row of the first NaN or Inf among rows r0 .. r1 - 1 of a column, or -1. */
static int64_t first_nonfinite(const void *col, int32_t dtype, int64_t r0, int64_t r1) {
    if (dtype == DAGR_DOUBLE) {
        const double *a = col;
        for (int64_t r = r0; r < r1; r++)
            if (!isfinite(a[r])) return r;
    } else {
        const float *a = col;
        for (int64_t r = r0; r < r1; r++)
            if (!isfinite(a[r])) return r;
    }
    return -1;
}

/* The check of la_check_finite: the tile's part of the region, column by column. The
 * triangle is that of the whole array: in column c the diagonal is at local row
 * j0 + c - i0. */
static dagr_task_result_t k_finite(const dagr_task_view_t *t) {
    const finite_op_t *o = t->args;
    size_t es = o->dtype == DAGR_DOUBLE ? sizeof(double) : sizeof(float);
    for (int64_t c = 0; c < o->n; c++) {
        int64_t d = o->j0 + c - o->i0;
        int64_t r0 = o->region == DAGR_LOWER ? (d > 0 ? d : 0) : 0;
        int64_t r1 = o->region == DAGR_UPPER ? (d + 1 < o->m ? d + 1 : o->m) : o->m;
        const char *col = (const char *)t->buf[0] + (size_t)c * t->ld[0] * es;
        int64_t r = first_nonfinite(col, o->dtype, r0, r1);
        if (r < 0) continue;
        double v = o->dtype == DAGR_DOUBLE ? ((const double *)col)[r] : ((const float *)col)[r];
        dagr_task_fail(t, DAGR_ERR_NONFINITE,
                       "%s: the result has %s at global row %lld, column %lld (1-based); the "
                       "input had NaN or Inf values, or the computation overflowed",
                       o->routine, isnan(v) ? "a NaN" : "an infinite value",
                       (long long)(o->i0 + r + 1), (long long)(o->j0 + c + 1));
        return DAGR_TASK_ERROR;
    }
    return DAGR_TASK_DONE;
}

const dagr_kernel_t la_gemm_kernel = {.name = "gemm", .cpu = k_gemm, .gpu = LA_GPU(la_gemm_gpu)};
const dagr_kernel_t la_syrk_kernel = {.name = "syrk", .cpu = k_syrk, .gpu = LA_GPU(la_syrk_gpu)};
const dagr_kernel_t la_symm_kernel = {.name = "symm", .cpu = k_symm, .gpu = LA_GPU(la_symm_gpu)};
static dagr_task_result_t k_info(const dagr_task_view_t *t) {
    const info_op_t *o = t->args;
    int64_t info = *(const int64_t *)t->buf[0];
    if (info == 0) return DAGR_TASK_DONE;
    if (o->factor == 'R')
        dagr_task_fail(t, DAGR_ERR_SINGULAR,
                       "gels: A does not have full rank: R(%lld,%lld) is zero (first zero "
                       "diagonal entry at global column %lld, 1-based as LAPACK's info); no "
                       "solution computed",
                       (long long)info, (long long)info, (long long)info);
    else
        dagr_task_fail(t, DAGR_ERR_SINGULAR,
                       "the matrix is exactly singular: U(%lld,%lld) is zero (first zero pivot "
                       "at global column %lld, 1-based as LAPACK's info)",
                       (long long)info, (long long)info, (long long)info);
    return DAGR_TASK_ERROR;
}

const dagr_kernel_t la_trsm_kernel = {.name = "trsm", .cpu = k_trsm, .gpu = LA_GPU(la_trsm_gpu)};
const dagr_kernel_t la_trmm_kernel = {.name = "trmm", .cpu = k_trmm, .gpu = LA_GPU(la_trmm_gpu)};
const dagr_kernel_t la_potrf_kernel = {
    .name = "potrf", .cpu = k_potrf, .gpu = LA_GPU(la_potrf_gpu)};
const dagr_kernel_t la_scale_kernel = {.name = "scale", .cpu = k_scale};
const dagr_kernel_t la_finite_kernel = {.name = "check_finite", .cpu = k_finite};
const dagr_kernel_t la_lu_info_kernel = {.name = "lu_info", .cpu = k_info};
const dagr_kernel_t la_gels_info_kernel = {.name = "gels_info", .cpu = k_info};
