/* DArray objects: creation over a tile store, views, destruction, shape queries and the
 * helpers every operation uses to describe tiles to kernels. */
#include "darray_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t dagr_dtype_size(dagr_dtype_t t) {
    switch (t) {
    case DAGR_FLOAT:
        return sizeof(float);
    case DAGR_DOUBLE:
        return sizeof(double);
    case DAGR_INT64:
        return sizeof(int64_t);
    }
    return 0;
}

static int64_t ceil_div(int64_t a, int64_t b) {
    return a == 0 ? 0 : (a + b - 1) / b;
}

static void store_unref(tile_store_t *s) {
    if (atomic_fetch_sub(&s->refs, 1) != 1) return;
    /* Every rank drops its last reference at the same call, so these destroys are issued
     * in the same order everywhere, as dagr_data_destroy requires. */
    for (int64_t k = 0; k < s->mt * s->nt; k++)
        dagr_data_destroy(&s->h[k]);
    free(s->h);
    free(s);
}

dagr_status_t darray_new(dagr_ctx_t *ctx, dagr_dtype_t dtype, int64_t m, int64_t n, int64_t mb,
                         int64_t nb, dist_t *d, tile_attach_fn attach, void *user,
                         dagr_darray_t **out) {
    dagr_darray_t *A = calloc(1, sizeof *A);
    tile_store_t *s = calloc(1, sizeof *s);
    int64_t mt = ceil_div(m, mb), nt = ceil_div(n, nb);
    dagr_data_t **h = calloc((size_t)(mt * nt) + 1, sizeof *h);
    if (!A || !s || !h) {
        free(A);
        free(s);
        free(h);
        return DAGR_ERR(DAGR_ERR_NOMEM, "cannot allocate a %lldx%lld-tile array", (long long)mt,
                        (long long)nt);
    }
    *s = (tile_store_t){.ctx = ctx, .m = m, .n = n, .mb = mb, .nb = nb, .mt = mt, .nt = nt, .h = h};
    atomic_init(&s->refs, 1);
    *A = (dagr_darray_t){.ctx = ctx,
                         .dtype = dtype,
                         .es = dagr_dtype_size(dtype),
                         .m = m,
                         .n = n,
                         .mb = mb,
                         .nb = nb,
                         .mt = mt,
                         .nt = nt,
                         .store = s,
                         .dist = *d};
    dagr_status_t st = DAGR_OK;
    for (int64_t tj = 0; tj < nt && st == DAGR_OK; tj++) {
        for (int64_t ti = 0; ti < mt && st == DAGR_OK; ti++) {
            int owner = dist_rank_of(d, ti, tj);
            size_t rows = (size_t)da_tile_rows(A, ti), cols = (size_t)da_tile_cols(A, tj);
            dagr_data_t **hp = &h[ti + tj * mt];
            if (attach) {
                size_t ld = rows;
                void *p = owner == dagr_rank(ctx) ? attach(user, ti, tj, &ld) : NULL;
                st = dagr_data_attach_2d(ctx, p, rows, cols, ld, A->es, owner, hp);
            } else {
                st = dagr_data_create_2d(ctx, rows, cols, A->es, owner, hp);
            }
        }
    }
    if (st != DAGR_OK) {
        store_unref(s);
        free(A);
        return st;
    }
    *out = A;
    return DAGR_OK;
}

dagr_status_t dagr_darray_create(dagr_ctx_t *ctx, dagr_dtype_t dtype, int64_t m, int64_t n,
                                 int64_t mb, int64_t nb, dagr_grid_t grid, dagr_darray_t **out) {
    DAGR_CHECK(ctx, DAGR_ERR_ARG, "ctx is NULL");
    DAGR_CHECK(out, DAGR_ERR_ARG, "out is NULL");
    DAGR_CHECK(dagr_dtype_size(dtype), DAGR_ERR_ARG, "dtype %d is not a dagr_dtype_t", (int)dtype);
    DAGR_CHECK(m >= 0 && n >= 0, DAGR_ERR_ARG, "size %lldx%lld: m and n must be >= 0", (long long)m,
               (long long)n);
    DAGR_CHECK(mb > 0 && nb > 0, DAGR_ERR_ARG, "tile size %lldx%lld: mb and nb must be > 0",
               (long long)mb, (long long)nb);
    dist_t d;
    DAGR_TRY(dist_resolve(grid, dagr_size(ctx), ceil_div(m, mb), ceil_div(n, nb), &d));
    return darray_new(ctx, dtype, m, n, mb, nb, &d, NULL, NULL, out);
}

dagr_status_t dagr_darray_create_like(const dagr_darray_t *A, dagr_dtype_t dtype,
                                      dagr_darray_t **out) {
    DAGR_TRY(da_check(A, "A"));
    DAGR_CHECK(out, DAGR_ERR_ARG, "out is NULL");
    DAGR_CHECK(dagr_dtype_size(dtype), DAGR_ERR_ARG, "dtype %d is not a dagr_dtype_t", (int)dtype);
    /* Each new tile sits where A's does: A's tiles are the store's from (ti0, tj0) on. */
    dist_t d;
    DAGR_TRY(dist_shift(&A->dist, A->ti0, A->tj0, A->mt, A->nt, &d));
    dagr_status_t s = darray_new(A->ctx, dtype, A->m, A->n, A->mb, A->nb, &d, NULL, NULL, out);
    if (s != DAGR_OK) dist_free(&d);
    return s;
}

dagr_status_t dagr_darray_destroy(dagr_darray_t **Ap) {
    if (!Ap || !*Ap) return DAGR_OK;
    dagr_darray_t *A = *Ap;
    *Ap = NULL;
    store_unref(A->store);
    dist_free(&A->dist);
    free(A);
    return DAGR_OK;
}

dagr_status_t dagr_darray_view(const dagr_darray_t *A, int64_t i0, int64_t j0, int64_t m, int64_t n,
                               dagr_darray_t **out) {
    DAGR_TRY(da_check(A, "A"));
    DAGR_CHECK(out, DAGR_ERR_ARG, "out is NULL");
    DAGR_CHECK(m >= 0 && n >= 0 && i0 >= 0 && j0 >= 0 && i0 <= A->m - m && j0 <= A->n - n,
               DAGR_ERR_ARG, "view %lldx%lld at (%lld, %lld) is outside the %lldx%lld array",
               (long long)m, (long long)n, (long long)i0, (long long)j0, (long long)A->m,
               (long long)A->n);
    bool empty = m == 0 || n == 0;
    DAGR_CHECK(empty || (i0 % A->mb == 0 && j0 % A->nb == 0), DAGR_ERR_ARG,
               "view at (%lld, %lld) does not start on a %lldx%lld tile boundary (use "
               "dagr_darray_subarray to copy an arbitrary block)",
               (long long)i0, (long long)j0, (long long)A->mb, (long long)A->nb);
    dagr_darray_t *V = malloc(sizeof *V);
    DAGR_CHECK(V, DAGR_ERR_NOMEM, "cannot allocate a view");
    *V = *A;
    if (dist_copy(&A->dist, &V->dist) != DAGR_OK) {
        free(V);
        return DAGR_ERR_NOMEM;
    }
    V->m = m;
    V->n = n;
    V->mt = ceil_div(m, A->mb);
    V->nt = ceil_div(n, A->nb);
    V->ti0 = A->ti0 + (empty ? 0 : i0 / A->mb);
    V->tj0 = A->tj0 + (empty ? 0 : j0 / A->nb);
    V->wrapped = false; /* a view is not the ScaLAPACK array itself */
    atomic_fetch_add(&A->store->refs, 1);
    *out = V;
    return DAGR_OK;
}

dagr_ctx_t *dagr_darray_ctx(const dagr_darray_t *A) {
    return A ? A->ctx : NULL;
}
dagr_dtype_t dagr_darray_dtype(const dagr_darray_t *A) {
    return A ? A->dtype : (dagr_dtype_t)0;
}
int64_t dagr_darray_rows(const dagr_darray_t *A) {
    return A ? A->m : 0;
}
int64_t dagr_darray_cols(const dagr_darray_t *A) {
    return A ? A->n : 0;
}
int64_t dagr_darray_tile_rows(const dagr_darray_t *A) {
    return A ? A->mb : 0;
}
int64_t dagr_darray_tile_cols(const dagr_darray_t *A) {
    return A ? A->nb : 0;
}
int64_t dagr_darray_mt(const dagr_darray_t *A) {
    return A ? A->mt : 0;
}
int64_t dagr_darray_nt(const dagr_darray_t *A) {
    return A ? A->nt : 0;
}

dagr_data_t *dagr_darray_tile(const dagr_darray_t *A, int64_t ti, int64_t tj) {
    if (!A || ti < 0 || tj < 0 || ti >= A->mt || tj >= A->nt) return NULL;
    return da_handle(A, ti, tj);
}

int dagr_darray_tile_rank(const dagr_darray_t *A, int64_t ti, int64_t tj) {
    dagr_data_t *h = dagr_darray_tile(A, ti, tj);
    return h ? dagr_data_owner(h) : -1;
}

/* ------------------------------------------------------------------------------------------
 * Helpers for the operations
 * ---------------------------------------------------------------------------------------- */

dagr_mode_t da_out_mode(const dagr_darray_t *A, int64_t ti, int64_t tj) {
    const tile_store_t *s = A->store;
    int64_t sti = A->ti0 + ti, stj = A->tj0 + tj;
    int64_t full_rows = s->m - sti * s->mb < s->mb ? s->m - sti * s->mb : s->mb;
    int64_t full_cols = s->n - stj * s->nb < s->nb ? s->n - stj * s->nb : s->nb;
    return da_tile_rows(A, ti) == full_rows && da_tile_cols(A, tj) == full_cols ? DAGR_WRITE
                                                                                : DAGR_RW;
}

tile_arg_t da_tile_arg(const dagr_darray_t *A, int64_t ti, int64_t tj) {
    return (tile_arg_t){.rows = da_tile_rows(A, ti),
                        .cols = da_tile_cols(A, tj),
                        .i0 = ti * A->mb,
                        .j0 = tj * A->nb,
                        .dtype = A->dtype};
}

dagr_tile_t da_tile_view(const dagr_task_view_t *t, int k, const tile_arg_t *ta) {
    return (dagr_tile_t){.data = t->buf[k],
                         .dtype = (dagr_dtype_t)ta->dtype,
                         .rows = ta->rows,
                         .cols = ta->cols,
                         .ld = (int64_t)t->ld[k],
                         .i0 = ta->i0,
                         .j0 = ta->j0};
}

dagr_status_t da_agree(dagr_ctx_t *ctx, dagr_status_t mine) {
    char msg[DAGR_ERRMSG_MAX];
    snprintf(msg, sizeof msg, "%s", mine == DAGR_OK ? "" : dagr_last_error());
    return ctx_sync(ctx, mine, msg);
}

dagr_status_t da_check(const dagr_darray_t *A, const char *what) {
    DAGR_CHECK(A, DAGR_ERR_ARG, "%s is NULL", what);
    return DAGR_OK;
}

dagr_status_t da_check_same_shape(const dagr_darray_t *A, const dagr_darray_t *B, const char *a,
                                  const char *b) {
    DAGR_TRY(da_check(A, a));
    DAGR_TRY(da_check(B, b));
    DAGR_CHECK(A->ctx == B->ctx, DAGR_ERR_ARG, "%s and %s belong to different contexts", a, b);
    DAGR_CHECK(A->m == B->m && A->n == B->n, DAGR_ERR_ARG, "%s is %lldx%lld but %s is %lldx%lld", a,
               (long long)A->m, (long long)A->n, b, (long long)B->m, (long long)B->n);
    return DAGR_OK;
}

dagr_status_t da_check_same_tiles(const dagr_darray_t *A, const dagr_darray_t *B, const char *a,
                                  const char *b) {
    DAGR_TRY(da_check_same_shape(A, B, a, b));
    DAGR_CHECK(A->mb == B->mb && A->nb == B->nb, DAGR_ERR_ARG,
               "%s has %lldx%lld tiles but %s has %lldx%lld tiles (use dagr_darray_copy to "
               "retile)",
               a, (long long)A->mb, (long long)A->nb, b, (long long)B->mb, (long long)B->nb);
    return DAGR_OK;
}

void da_store(void *p, dagr_dtype_t t, int64_t k, double v) {
    switch (t) {
    case DAGR_FLOAT:
        ((float *)p)[k] = (float)v;
        break;
    case DAGR_INT64:
        ((int64_t *)p)[k] = (int64_t)llround(v);
        break;
    default:
        ((double *)p)[k] = v;
        break;
    }
}
