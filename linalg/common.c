/* What the linear algebra routines share: options, argument checks, spawning, checking
 * results. */
#include "linalg_impl.h"

#include <math.h>
#include <stdio.h>

void dagr_linalg_opts_init(dagr_linalg_opts_t *opts) {
    if (!opts) return;
    opts->lookahead = 1;
    opts->ib = 32;
    opts->variant = 0;
}

dagr_status_t dagr_linalg_tile_size_for(const dagr_ctx_t *ctx, dagr_la_use_t use, int64_t m,
                                        int64_t n, int64_t *nb) {
    DAGR_CHECK(ctx, DAGR_ERR_ARG, "ctx is NULL");
    DAGR_CHECK(nb, DAGR_ERR_ARG, "nb is NULL");
    DAGR_CHECK(m >= 0 && n >= 0, DAGR_ERR_ARG, "the matrix is %lld x %lld: sizes must be >= 0",
               (long long)m, (long long)n);
    DAGR_CHECK(use == DAGR_LA_ANY || use == DAGR_LA_QR, DAGR_ERR_ARG,
               "use %d is neither DAGR_LA_ANY (0) nor DAGR_LA_QR (1)", (int)use);
    dagr_job_info_t ji;
    DAGR_TRY(dagr_job_info(ctx, &ji));
    static const int64_t sizes[] = {384, 256, 192, 128, 96, 64};
    int64_t t = m < n ? m : n;
    double tiles = use == DAGR_LA_QR ? 5.5 : 11.0;
    double want = tiles * sqrt((double)(ji.total_threads > 0 ? ji.total_threads : 1));
    int64_t pick = 64;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        if ((double)((t + sizes[i] - 1) / sizes[i]) >= want) {
            pick = sizes[i];
            break;
        }
    }
    *nb = pick < t ? pick : t > 0 ? t : 1;
    return DAGR_OK;
}

dagr_status_t dagr_linalg_tile_size(const dagr_ctx_t *ctx, int64_t m, int64_t n, int64_t *nb) {
    return dagr_linalg_tile_size_for(ctx, DAGR_LA_ANY, m, n, nb);
}

dagr_status_t la_opts(const dagr_linalg_opts_t *opts, unsigned uses, const char *routine,
                      dagr_linalg_opts_t *out) {
    dagr_linalg_opts_t d;
    dagr_linalg_opts_init(&d);
    *out = opts ? *opts : d;
    if (uses & LA_USES_LOOKAHEAD)
        DAGR_CHECK(out->lookahead >= 0, DAGR_ERR_ARG, "%s: opts->lookahead %d must be >= 0",
                   routine, out->lookahead);
    else
        DAGR_CHECK(out->lookahead == d.lookahead, DAGR_ERR_ARG,
                   "%s does not use opts->lookahead (it has no panels to factor ahead): leave it "
                   "at its default %d (dagr_linalg_opts_init), not %d",
                   routine, d.lookahead, out->lookahead);
    if (uses & LA_USES_IB)
        DAGR_CHECK(out->ib >= 1, DAGR_ERR_ARG, "%s: opts->ib %d must be >= 1", routine, out->ib);
    else
        DAGR_CHECK(out->ib == d.ib, DAGR_ERR_ARG,
                   "%s does not use opts->ib (it has no inner blocking): leave it at its default "
                   "%d (dagr_linalg_opts_init), not %d",
                   routine, d.ib, out->ib);
    if (!(uses & LA_USES_VARIANT))
        DAGR_CHECK(out->variant == d.variant, DAGR_ERR_ARG,
                   "%s has no variants: opts->variant must be %d, not %d", routine, d.variant,
                   out->variant);
    return DAGR_OK;
}

dagr_status_t la_check_dtype(const dagr_darray_t *A, const char *name) {
    DAGR_CHECK(A, DAGR_ERR_ARG, "%s is NULL", name);
    DAGR_CHECK(A->dtype == DAGR_FLOAT || A->dtype == DAGR_DOUBLE, DAGR_ERR_ARG,
               "%s has dtype %d: linear algebra takes DAGR_FLOAT or DAGR_DOUBLE", name,
               (int)A->dtype);
    return DAGR_OK;
}

dagr_status_t la_check_same(const dagr_darray_t *A, const dagr_darray_t *B, const char *a,
                            const char *b) {
    DAGR_TRY(la_check_dtype(A, a));
    DAGR_TRY(la_check_dtype(B, b));
    DAGR_CHECK(A->ctx == B->ctx, DAGR_ERR_ARG, "%s and %s belong to different contexts", a, b);
    DAGR_CHECK(A->dtype == B->dtype, DAGR_ERR_ARG, "%s has dtype %d but %s has dtype %d", a,
               (int)A->dtype, b, (int)B->dtype);
    return DAGR_OK;
}

dagr_status_t la_spawn_args(const dagr_kernel_t *k, const void *args, size_t args_size, int naccess,
                            const dagr_access_t *acc, int prio, double flops, dagr_ctx_t *ctx) {
    dagr_task_opts_t o;
    dagr_task_opts_init(&o);
    o.priority = prio;
    o.flops = flops;
    return dagr_spawn(ctx, k, args, args_size, naccess, acc, &o);
}

dagr_status_t la_spawn(const dagr_kernel_t *k, const tile_op_t *op, int naccess,
                       const dagr_access_t *acc, int prio, double flops, dagr_ctx_t *ctx) {
    return la_spawn_args(k, op, sizeof *op, naccess, acc, prio, flops, ctx);
}

dagr_status_t la_check_finite(const dagr_darray_t *A, int region, dagr_data_t *after,
                              const char *routine) {
    for (int64_t j = 0; j < A->nt; j++) {
        for (int64_t i = 0; i < A->mt; i++) {
            finite_op_t op = {.dtype = (int32_t)A->dtype, .region = region};
            op.m = da_tile_rows(A, i);
            op.n = da_tile_cols(A, j);
            op.i0 = i * A->mb;
            op.j0 = j * A->nb;
            /* a tile wholly outside the triangle: every row above (lower) or below (upper)
             * every column */
            if (region == DAGR_LOWER && op.i0 + op.m <= op.j0) continue;
            if (region == DAGR_UPPER && op.j0 + op.n <= op.i0) continue;
            snprintf(op.routine, sizeof op.routine, "%s", routine);
            dagr_access_t acc[2] = {{da_handle(A, i, j), DAGR_READ}, {after, DAGR_READ}};
            DAGR_TRY(la_spawn_args(&la_finite_kernel, &op, sizeof op, after ? 2 : 1, acc,
                                   LA_PRIO_CHECK, 0, A->ctx));
        }
    }
    return DAGR_OK;
}
