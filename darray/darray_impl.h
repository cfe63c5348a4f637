/* Internal declarations shared by the files of darray/. Public headers never include this.
 *
 * A DArray is a window onto a tile store: the store holds the data handles of a full array
 * (mt x nt tiles of mb x nb, edge tiles smaller) and is shared, reference-counted, by the
 * array that made it and every view of it. A view starts on a tile boundary (ti0, tj0) of the
 * store; its own last tile row or column may cover only the top or left part of a store tile,
 * which is why kernels always get (rows, cols) in their arguments and the leading dimension
 * from the task view, and why an output tile that does not cover its whole handle is
 * accessed read-write (a write-only access would drop the rest of the handle). */
#ifndef DAGR_DARRAY_IMPL_H
#define DAGR_DARRAY_IMPL_H

#include <dagr/dagr.h>

#include <stdatomic.h>
#include <stdbool.h>

#include "module.h" /* lib/'s interface for modules, errors included */

typedef struct tile_store {
    atomic_int refs;
    dagr_ctx_t *ctx;
    int64_t m, n, mb, nb, mt, nt; /* the full array the handles were made for */
    dagr_data_t **h;              /* tile (ti, tj) at h[ti + tj * mt] */
} tile_store_t;

struct dagr_darray {
    dagr_ctx_t *ctx;
    dagr_dtype_t dtype;
    size_t es; /* element size */
    int64_t m, n, mb, nb, mt, nt;
    int64_t ti0, tj0; /* offset of tile (0, 0) in the store (views) */
    tile_store_t *store;
    dist_t dist; /* the store's (lib/dist.c); a view keeps it, its tile (ti, tj) being the
                    store's (ti0 + ti, tj0 + tj) */
    /* A wrapped ScaLAPACK array (dagr_darray_from_scalapack); desc[1] is its BLACS context. */
    bool wrapped;
    int desc[9];
    void *local;
};

/* ---- darray.c ---- */

/* Makes an array over a new store whose tiles d places (made for its mt x nt tiles); d is
 * taken over after a successful call (the caller frees it after a failed one). attach: NULL
 * for dagr-allocated tiles, or a callback giving each local tile's buffer and leading
 * dimension (ScaLAPACK wrapping). */
typedef void *(*tile_attach_fn)(void *user, int64_t ti, int64_t tj, size_t *ld);
dagr_status_t darray_new(dagr_ctx_t *ctx, dagr_dtype_t dtype, int64_t m, int64_t n, int64_t mb,
                         int64_t nb, dist_t *d, tile_attach_fn attach, void *user,
                         dagr_darray_t **out);

static inline int64_t da_tile_rows(const dagr_darray_t *A, int64_t ti) {
    int64_t r = A->m - ti * A->mb;
    return r < A->mb ? r : A->mb;
}
static inline int64_t da_tile_cols(const dagr_darray_t *A, int64_t tj) {
    int64_t c = A->n - tj * A->nb;
    return c < A->nb ? c : A->nb;
}
static inline dagr_data_t *da_handle(const dagr_darray_t *A, int64_t ti, int64_t tj) {
    return A->store->h[(A->ti0 + ti) + (A->tj0 + tj) * A->store->mt];
}
/* DAGR_WRITE when tile (ti, tj) covers its whole handle, else DAGR_RW. */
dagr_mode_t da_out_mode(const dagr_darray_t *A, int64_t ti, int64_t tj);

/* What a kernel is told about one tile (its leading dimension comes from the task view). */
typedef struct tile_arg {
    int64_t rows, cols, i0, j0;
    int32_t dtype;
} tile_arg_t;
tile_arg_t da_tile_arg(const dagr_darray_t *A, int64_t ti, int64_t tj);
/* The dagr_tile_t of buffer k of a task, described by ta. */
dagr_tile_t da_tile_view(const dagr_task_view_t *t, int k, const tile_arg_t *ta);

/* Collective: every rank returns the status and message of the lowest failing rank (for
 * checks only some ranks can make, such as pointers to local memory). */
dagr_status_t da_agree(dagr_ctx_t *ctx, dagr_status_t mine);

/* Argument checks shared by the operations (messages name `what`). */
dagr_status_t da_check(const dagr_darray_t *A, const char *what);
dagr_status_t da_check_same_shape(const dagr_darray_t *A, const dagr_darray_t *B, const char *a,
                                  const char *b);
dagr_status_t da_check_same_tiles(const dagr_darray_t *A, const dagr_darray_t *B, const char *a,
                                  const char *b);
/* True if the two arrays share a tile store (one is a view of the other or they are one). */
static inline bool da_shares(const dagr_darray_t *A, const dagr_darray_t *B) {
    return A->store == B->store;
}

/* Element access by dtype, for kernels written once for every type. */
static inline double da_load(const void *p, dagr_dtype_t t, int64_t k) {
    switch (t) {
    case DAGR_FLOAT:
        return ((const float *)p)[k];
    case DAGR_INT64:
        return (double)((const int64_t *)p)[k];
    default:
        return ((const double *)p)[k];
    }
}
void da_store(void *p, dagr_dtype_t t, int64_t k, double v); /* int64: rounded to nearest */

/* ---- copy.c ---- */

/* Inserts tasks copying the m x n block of A at (ai, aj) — or its transpose when trans —
 * into B at (bi, bj). Shapes are checked by the caller. */
dagr_status_t darray_copy_block(const dagr_darray_t *A, int64_t ai, int64_t aj, dagr_darray_t *B,
                                int64_t bi, int64_t bj, int64_t m, int64_t n, bool trans);

#endif
