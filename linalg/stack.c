/* Tasks over a stack of tiles (see stack.h), for the LU panel and interchanges (getrf.c) and
 * the Householder QR panel (qr_householder.c). */
#include "stack.h"

static int64_t min64(int64_t a, int64_t b) {
    return a < b ? a : b;
}

lu_op_t la_stack_op(const dagr_darray_t *X, int64_t k, int64_t j, int64_t npiv) {
    lu_op_t o = {0};
    o.dtype = (int32_t)X->dtype;
    o.ntiles = (int32_t)(X->mt - k);
    o.nb = X->mb;
    o.last_rows = da_tile_rows(X, X->mt - 1);
    o.cols = da_tile_cols(X, j);
    o.row0 = k * X->mb;
    o.npiv = npiv;
    o.j0 = j * X->nb;
    return o;
}

dagr_status_t la_stack_spawn(const dagr_kernel_t *kern, lu_op_t o, const dagr_darray_t *X,
                             int64_t k, int64_t j, int nextra, const dagr_access_t *extra, int prio,
                             double flops) {
    dagr_access_t acc[LU_COPY_CHUNK + 2 + 8];
    int na = 0;
    DAGR_CHECK(nextra >= 0 && nextra <= 8, DAGR_ERR_INTERNAL, "%d extra accesses on a stack",
               nextra);
    if (X->mt - k <= LU_MAX_STACK) {
        for (int64_t i = k; i < X->mt; i++)
            acc[na++] = (dagr_access_t){da_handle(X, i, j), DAGR_RW};
        for (int e = 0; e < nextra; e++)
            acc[na++] = extra[e];
        return la_spawn_args(kern, &o, sizeof o, na, acc, prio, flops, X->ctx);
    }
    int64_t rows = X->m - k * X->mb;
    dagr_data_t *W = NULL;
    DAGR_TRY(dagr_data_create_2d(X->ctx, (size_t)rows, (size_t)o.cols, X->es,
                                 dagr_data_owner(da_handle(X, k, j)), &W));
    dagr_status_t st = DAGR_OK;
    /* gather (pass 0) and scatter (pass 1) chunks of LU_COPY_CHUNK tiles around the kernel,
     * which sees the block as a stack of one tile */
    for (int pass = 0; pass < 2 && st == DAGR_OK; pass++) {
        if (pass == 1) {
            lu_op_t ow = o;
            ow.ntiles = 1;
            ow.nb = ow.last_rows = rows;
            na = 0;
            acc[na++] = (dagr_access_t){W, DAGR_RW};
            for (int e = 0; e < nextra; e++)
                acc[na++] = extra[e];
            st = la_spawn_args(kern, &ow, sizeof ow, na, acc, prio, flops, X->ctx);
        }
        for (int64_t c0 = k; c0 < X->mt && st == DAGR_OK; c0 += LU_COPY_CHUNK) {
            int64_t c1 = min64(X->mt, c0 + LU_COPY_CHUNK);
            lu_op_t oc = o;
            oc.ntiles = (int32_t)(c1 - c0);
            oc.last_rows = da_tile_rows(X, c1 - 1);
            oc.woff = (c0 - k) * X->mb;
            oc.gather = pass == 0;
            na = 0;
            for (int64_t i = c0; i < c1; i++)
                acc[na++] = (dagr_access_t){da_handle(X, i, j),
                                            pass == 0 ? DAGR_READ : da_out_mode(X, i, j)};
            acc[na++] = (dagr_access_t){W, pass == 0 ? DAGR_RW : DAGR_READ};
            st = la_spawn_args(&la_lu_copy_kernel, &oc, sizeof oc, na, acc, prio, 0, X->ctx);
        }
    }
    dagr_status_t s2 = dagr_data_destroy(&W);
    return st != DAGR_OK ? st : s2;
}
