/* ScaLAPACK interoperability: wrapping a ScaLAPACK array as a DArray (zero copy), and handing
 * any DArray to ScaLAPACK through an acquire/release pair.
 *
 * A ScaLAPACK array is 2-D block-cyclic: block (ti, tj) lives on grid process
 * ((ti + RSRC) mod P, (tj + CSRC) mod Q), at local block (ti / P, tj / Q) of that process's
 * column-major local array with leading dimension LLD. That is exactly a DArray whose
 * distribution is block-cyclic with a process map (pmap) and whose tiles are strided handles
 * over the local array (dagr_data_attach_2d). Wrapping builds such an array; acquiring a
 * block-cyclic DArray builds the matching BLACS grid (Cblacs_gridmap over the context's ranks)
 * and copies each tile into its place in a new local array on the rank that already owns the
 * tile, so no data crosses the network. Other distributions go through a temporary
 * block-cyclic copy first.
 *
 * Debian's ScaLAPACK ships no C headers: the few BLACS and ScaLAPACK entry points used here
 * are declared below (32-bit integers, as the library was built). */
#include "darray_impl.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#ifndef DAGR_HAVE_SCALAPACK

dagr_status_t dagr_darray_from_scalapack(dagr_ctx_t *ctx, dagr_dtype_t dtype, const int desc[9],
                                         void *local, dagr_darray_t **out) {
    (void)ctx, (void)dtype, (void)desc, (void)local, (void)out;
    return DAGR_ERR(DAGR_ERR_UNSUPPORTED, "dagr was built without ScaLAPACK");
}
dagr_status_t dagr_darray_scalapack_acquire(dagr_darray_t *A, int desc[9], void **local) {
    (void)A, (void)desc, (void)local;
    return DAGR_ERR(DAGR_ERR_UNSUPPORTED, "dagr was built without ScaLAPACK");
}
dagr_status_t dagr_darray_scalapack_release(dagr_darray_t *A, int desc[9], void **local,
                                            int writeback) {
    (void)A, (void)desc, (void)local, (void)writeback;
    return DAGR_ERR(DAGR_ERR_UNSUPPORTED, "dagr was built without ScaLAPACK");
}

#else

/* BLACS (C interface) and ScaLAPACK tools. */
void Cblacs_pinfo(int *mypnum, int *nprocs);
void Cblacs_gridinfo(int ctxt, int *nprow, int *npcol, int *myrow, int *mycol);
void Cblacs_gridmap(int *ctxt, int *usermap, int ldumap, int nprow, int npcol);
void Cblacs_gridexit(int ctxt);
int Csys2blacs_handle(MPI_Comm comm);
void Cfree_blacs_system_handle(int handle);
int numroc_(const int *n, const int *nb, const int *iproc, const int *isrcproc, const int *nprocs);

/* Descriptor fields (ScaLAPACK's DTYPE_, CTXT_, ... minus one). */
enum { D_DTYPE, D_CTXT, D_M, D_N, D_MB, D_NB, D_RSRC, D_CSRC, D_LLD };
static const char *const field_name[9] = {"DTYPE_", "CTXT_", "M_",    "N_",  "MB_",
                                          "NB_",    "RSRC_", "CSRC_", "LLD_"};

static int numroc(int n, int nb, int iproc, int isrc, int nprocs) {
    return numroc_(&n, &nb, &iproc, &isrc, &nprocs);
}

/* ---- copying tiles between a DArray and a local array ---- */

typedef struct tile_copy_args {
    int64_t rows, cols;
    int64_t es;
} tile_copy_args_t;

/* buffer 0 <- buffer 1, both rows x cols with their own leading dimensions. */
static dagr_task_result_t k_tile_copy(const dagr_task_view_t *task) {
    const tile_copy_args_t *a = task->args;
    char *d = task->buf[0];
    const char *s = task->buf[1];
    size_t es = (size_t)a->es;
    for (int64_t c = 0; c < a->cols; c++)
        memcpy(d + (size_t)c * task->ld[0] * es, s + (size_t)c * task->ld[1] * es,
               (size_t)a->rows * es);
    return DAGR_TASK_DONE;
}

/* A no-op that writes a tile: gives a wrapped tile a new version after ScaLAPACK changed the
 * local array behind the runtime's back, so that no rank keeps using a cached copy of the
 * old contents. */
static dagr_task_result_t k_touch(const dagr_task_view_t *task) {
    (void)task;
    return DAGR_TASK_DONE;
}

static const dagr_kernel_t to_local_kernel = {.name = "scalapack_to_local", .cpu = k_tile_copy};
static const dagr_kernel_t from_local_kernel = {.name = "scalapack_from_local", .cpu = k_tile_copy};
static const dagr_kernel_t touch_kernel = {.name = "scalapack_touch", .cpu = k_touch};

/* Where tile (ti, tj) of a block-cyclic array sits in its owner's local array. */
typedef struct local_layout {
    char *base;
    int64_t lld, mb, nb;
    int p, q;
    size_t es;
} local_layout_t;

static char *tile_in_local(const local_layout_t *L, int64_t ti, int64_t tj) {
    int64_t r0 = (ti / L->p) * L->mb, c0 = (tj / L->q) * L->nb;
    return L->base + (size_t)(r0 + c0 * L->lld) * L->es;
}

/* The attach callback of darray_new for a wrapped array. */
static void *attach_local(void *user, int64_t ti, int64_t tj, size_t *ld) {
    const local_layout_t *L = user;
    *ld = (size_t)L->lld;
    return tile_in_local(L, ti, tj);
}

/* Inserts one task per tile of A copying between the tile and its place in the local array
 * (on the tile's owner, which is the rank holding that place: nothing moves). The strided
 * handles over the local array are released at once; the tasks keep them alive. */
static dagr_status_t copy_tiles(dagr_darray_t *A, const local_layout_t *L, bool to_local) {
    int me = dagr_rank(A->ctx);
    for (int64_t tj = 0; tj < A->nt; tj++) {
        for (int64_t ti = 0; ti < A->mt; ti++) {
            dagr_data_t *tile = da_handle(A, ti, tj), *h = NULL;
            int owner = dagr_data_owner(tile);
            tile_copy_args_t a = {da_tile_rows(A, ti), da_tile_cols(A, tj), (int64_t)A->es};
            void *p = owner == me ? tile_in_local(L, ti, tj) : NULL;
            DAGR_TRY(dagr_data_attach_2d(A->ctx, p, (size_t)a.rows, (size_t)a.cols, (size_t)L->lld,
                                         A->es, owner, &h));
            dagr_status_t s;
            if (to_local) {
                dagr_access_t acc[2] = {{h, DAGR_WRITE}, {tile, DAGR_READ}};
                s = dagr_spawn(A->ctx, &to_local_kernel, &a, sizeof a, 2, acc, NULL);
            } else {
                dagr_access_t acc[2] = {{tile, da_out_mode(A, ti, tj)}, {h, DAGR_READ}};
                s = dagr_spawn(A->ctx, &from_local_kernel, &a, sizeof a, 2, acc, NULL);
            }
            dagr_data_destroy(&h);
            DAGR_TRY(s);
        }
    }
    return DAGR_OK;
}

/* ------------------------------------------------------------------------------------------
 * Wrapping
 * ---------------------------------------------------------------------------------------- */

/* What each rank tells the others about its part of the array. */
enum { I_ROW, I_COL, I_NPROW, I_NPCOL, I_HASLOCAL, I_DESC, I_COUNT = I_DESC + 9 };

/* Checks the gathered descriptors (info[k * I_COUNT ...] from rank k) and fills p, q and
 * pmap. Every rank runs it on the same data, so every rank finds the same error. */
static dagr_status_t check_grid(const int *info, int size, int *p_out, int *q_out, int *pmap) {
    int ref = -1;
    for (int k = 0; k < size && ref < 0; k++)
        if (info[k * I_COUNT + I_ROW] >= 0) ref = k;
    DAGR_CHECK(ref >= 0, DAGR_ERR_ARG,
               "desc CTXT_ (desc[1]) is not a BLACS grid on any rank of the context");
    const int *r0 = &info[ref * I_COUNT];
    const int *d = r0 + I_DESC;
    int p = r0[I_NPROW], q = r0[I_NPCOL];
    DAGR_CHECK((long)p * q <= size, DAGR_ERR_ARG,
               "the BLACS grid is %dx%d but the context has %d ranks", p, q, size);
    DAGR_CHECK(d[D_DTYPE] == 1, DAGR_ERR_ARG,
               "desc DTYPE_ (desc[0]) is %d, must be 1 (a dense block-cyclic array)", d[D_DTYPE]);
    DAGR_CHECK(d[D_M] >= 0, DAGR_ERR_ARG, "desc M_ (desc[2]) is %d, must be >= 0", d[D_M]);
    DAGR_CHECK(d[D_N] >= 0, DAGR_ERR_ARG, "desc N_ (desc[3]) is %d, must be >= 0", d[D_N]);
    DAGR_CHECK(d[D_MB] > 0, DAGR_ERR_ARG, "desc MB_ (desc[4]) is %d, must be > 0", d[D_MB]);
    DAGR_CHECK(d[D_NB] > 0, DAGR_ERR_ARG, "desc NB_ (desc[5]) is %d, must be > 0", d[D_NB]);
    DAGR_CHECK(d[D_RSRC] >= 0 && d[D_RSRC] < p, DAGR_ERR_ARG,
               "desc RSRC_ (desc[6]) is %d, outside the grid's rows [0, %d)", d[D_RSRC], p);
    DAGR_CHECK(d[D_CSRC] >= 0 && d[D_CSRC] < q, DAGR_ERR_ARG,
               "desc CSRC_ (desc[7]) is %d, outside the grid's columns [0, %d)", d[D_CSRC], q);
    /* The shape first, so that a rank with another M is not reported as a bad LLD. */
    for (int k = 0; k < size; k++) {
        const int *rk = &info[k * I_COUNT];
        if (rk[I_ROW] < 0) continue; /* outside the grid: holds no tiles */
        for (int f = 0; f < 9; f++) {
            if (f == D_CTXT || f == D_LLD) continue;
            DAGR_CHECK(rk[I_DESC + f] == d[f], DAGR_ERR_ARG,
                       "desc %s (desc[%d]) is %d on rank %d but %d on rank %d", field_name[f], f,
                       d[f], ref, rk[I_DESC + f], k);
        }
    }
    for (int i = 0; i < p * q; i++)
        pmap[i] = -1;
    for (int k = 0; k < size; k++) {
        const int *rk = &info[k * I_COUNT];
        if (rk[I_ROW] < 0) continue;
        DAGR_CHECK(rk[I_NPROW] == p && rk[I_NPCOL] == q, DAGR_ERR_ARG,
                   "desc CTXT_ (desc[1]) is a %dx%d grid on rank %d but a %dx%d grid on rank %d", p,
                   q, ref, rk[I_NPROW], rk[I_NPCOL], k);
        int *slot = &pmap[rk[I_ROW] * q + rk[I_COL]];
        DAGR_CHECK(*slot < 0, DAGR_ERR_ARG,
                   "ranks %d and %d are both grid process (%d, %d): desc CTXT_ names different "
                   "BLACS grids on different ranks",
                   *slot, k, rk[I_ROW], rk[I_COL]);
        *slot = k;
        int lrows = numroc(d[D_M], d[D_MB], rk[I_ROW], d[D_RSRC], p);
        int lcols = numroc(d[D_N], d[D_NB], rk[I_COL], d[D_CSRC], q);
        int need = lrows > 1 ? lrows : 1;
        DAGR_CHECK(rk[I_DESC + D_LLD] >= need, DAGR_ERR_ARG,
                   "desc LLD_ (desc[8]) is %d on rank %d, must be >= max(1, local rows) = %d",
                   rk[I_DESC + D_LLD], k, need);
        DAGR_CHECK(rk[I_HASLOCAL] || (long)lrows * lcols == 0, DAGR_ERR_ARG,
                   "local is NULL on rank %d, which holds %dx%d elements of the array", k, lrows,
                   lcols);
    }
    for (int i = 0; i < p * q; i++)
        DAGR_CHECK(pmap[i] >= 0, DAGR_ERR_ARG,
                   "grid process (%d, %d) of desc CTXT_ (desc[1]) is not a rank of the context",
                   i / q, i % q);
    *p_out = p;
    *q_out = q;
    return DAGR_OK;
}

dagr_status_t dagr_darray_from_scalapack(dagr_ctx_t *ctx, dagr_dtype_t dtype, const int desc[9],
                                         void *local, dagr_darray_t **out) {
    DAGR_CHECK(ctx, DAGR_ERR_ARG, "ctx is NULL");
    int size = dagr_size(ctx), me = dagr_rank(ctx);
    /* Pointer arguments are checked locally but agreed on, so that no rank goes on alone. */
    dagr_status_t s = DAGR_OK;
    if (!desc)
        s = DAGR_ERR(DAGR_ERR_ARG, "desc is NULL on rank %d", me);
    else if (!out)
        s = DAGR_ERR(DAGR_ERR_ARG, "out is NULL on rank %d", me);
    else if (!dagr_dtype_size(dtype))
        s = DAGR_ERR(DAGR_ERR_ARG, "dtype %d is not a dagr_dtype_t", (int)dtype);
    DAGR_TRY(da_agree(ctx, s));

    int mine[I_COUNT];
    int nprow, npcol, myrow, mycol;
    Cblacs_gridinfo(desc[D_CTXT], &nprow, &npcol, &myrow, &mycol);
    bool in_grid = nprow > 0 && npcol > 0 && myrow >= 0 && mycol >= 0;
    mine[I_ROW] = in_grid ? myrow : -1;
    mine[I_COL] = in_grid ? mycol : -1;
    mine[I_NPROW] = nprow;
    mine[I_NPCOL] = npcol;
    mine[I_HASLOCAL] = local != NULL;
    memcpy(&mine[I_DESC], desc, 9 * sizeof(int));

    int *info = malloc((size_t)size * I_COUNT * sizeof *info);
    int *pmap = malloc((size_t)size * sizeof *pmap);
    s = info && pmap ? DAGR_OK : DAGR_ERR(DAGR_ERR_NOMEM, "cannot allocate %d grid entries", size);
    s = da_agree(ctx, s);
    if (s == DAGR_OK) {
        int e = MPI_Allgather(mine, I_COUNT, MPI_INT, info, I_COUNT, MPI_INT, ctx_comm(ctx));
        if (e != MPI_SUCCESS) s = dagr_error_mpi(e, __FILE__, __LINE__, "MPI_Allgather");
    }
    int p = 0, q = 0;
    if (s == DAGR_OK) s = check_grid(info, size, &p, &q, pmap);
    if (s != DAGR_OK) goto free_info;

    /* Out-of-grid ranks take the shape from the lowest grid rank: their own desc is
     * whatever they were given (ScaLAPACK never reads it there). */
    const int *d = &info[pmap[0] * I_COUNT + I_DESC];
    local_layout_t L = {.base = local,
                        .lld = in_grid ? desc[D_LLD] : 1,
                        .mb = d[D_MB],
                        .nb = d[D_NB],
                        .p = p,
                        .q = q,
                        .es = dagr_dtype_size(dtype)};
    dist_t dist;
    int64_t mt = ((int64_t)d[D_M] + d[D_MB] - 1) / d[D_MB];
    int64_t nt = ((int64_t)d[D_N] + d[D_NB] - 1) / d[D_NB];
    s = dist_block_cyclic(size, mt, nt, p, q, d[D_RSRC], d[D_CSRC], pmap, &dist);
    if (s != DAGR_OK) goto free_info;
    dagr_darray_t *A = NULL;
    s = darray_new(ctx, dtype, d[D_M], d[D_N], d[D_MB], d[D_NB], &dist, attach_local, &L, &A);
    if (s != DAGR_OK) {
        dist_free(&dist);
        goto free_info;
    }
    A->wrapped = true;
    memcpy(A->desc, desc, 9 * sizeof(int));
    A->local = local;
    free(info);
    free(pmap);
    *out = A;
    return DAGR_OK;

free_info:
    free(info);
    free(pmap);
    return s;
}

/* ------------------------------------------------------------------------------------------
 * Acquire and release
 * ---------------------------------------------------------------------------------------- */

/* A BLACS grid made by acquire. Grids are shared: every array acquired with the same
 * process map gets the same BLACS context, as ScaLAPACK routines require of their operands
 * (pdgemm refuses A, B and C on different contexts). The lookup key is the same on every rank,
 * so every rank finds or makes the grid at the same call, as Cblacs_gridmap needs. */
typedef struct blacs_grid {
    struct blacs_grid *next;
    const dagr_ctx_t *ctx;
    int p, q;
    int *umap;     /* USERMAP, column-major p x q: rank of grid process (r, c) */
    int refs;      /* leases using it */
    MPI_Comm comm; /* private duplicate of the context's communicator for BLACS */
    int sys;       /* its BLACS system handle */
    int ctxt;      /* the grid (-1 on ranks outside it) */
} blacs_grid_t;

/* What one acquire of a non-wrapped array made, found again at release by (A, local). */
typedef struct lease {
    struct lease *next;
    const dagr_darray_t *A;
    void *local;        /* the local array (at least one element, so that it is a key) */
    dagr_darray_t *tmp; /* block-cyclic copy of A, when A's distribution was not */
    blacs_grid_t *grid;
    local_layout_t L;
} lease_t;

/* Grids and leases are only touched by the main thread of each context, but contexts may
 * live in different threads. */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static blacs_grid_t *grids;
static lease_t *leases;

static void grid_unref(blacs_grid_t *g) {
    pthread_mutex_lock(&registry_lock);
    bool last = --g->refs == 0;
    if (last) {
        blacs_grid_t **pp = &grids;
        while (*pp != g)
            pp = &(*pp)->next;
        *pp = g->next;
    }
    pthread_mutex_unlock(&registry_lock);
    if (!last) return;
    if (g->ctxt >= 0) Cblacs_gridexit(g->ctxt);
    if (g->sys >= 0) Cfree_blacs_system_handle(g->sys);
    if (g->comm != MPI_COMM_NULL) MPI_Comm_free(&g->comm);
    free(g->umap);
    free(g);
}

/* Finds or makes the grid of block-cyclic B. Collective. */
static dagr_status_t grid_get(const dagr_darray_t *B, blacs_grid_t **out) {
    dagr_ctx_t *ctx = B->ctx;
    int p = B->dist.p, q = B->dist.q;
    int *umap = malloc((size_t)p * q * sizeof *umap);
    blacs_grid_t *g = calloc(1, sizeof *g);
    dagr_status_t s =
        umap && g ? DAGR_OK : DAGR_ERR(DAGR_ERR_NOMEM, "cannot allocate a %dx%d BLACS grid", p, q);
    s = da_agree(ctx, s);
    if (s != DAGR_OK) goto fail;
    for (int r = 0; r < p; r++)
        for (int c = 0; c < q; c++)
            umap[r + c * p] = dist_grid_rank(&B->dist, r, c);
    pthread_mutex_lock(&registry_lock);
    blacs_grid_t *found = grids;
    while (found && !(found->ctx == ctx && found->p == p && found->q == q &&
                      !memcmp(found->umap, umap, (size_t)p * q * sizeof *umap)))
        found = found->next;
    if (found) found->refs++;
    pthread_mutex_unlock(&registry_lock);
    if (found) {
        free(umap);
        free(g);
        *out = found;
        return DAGR_OK;
    }
    *g = (blacs_grid_t){.ctx = ctx, .p = p, .q = q, .umap = umap, .refs = 1, .sys = -1, .ctxt = -1};
    int e = MPI_Comm_dup(ctx_comm(ctx), &g->comm);
    if (e != MPI_SUCCESS) {
        s = dagr_error_mpi(e, __FILE__, __LINE__, "MPI_Comm_dup");
        goto fail;
    }
    /* Cblacs_gridmap is collective over the system handle's communicator: every rank of the
     * context calls it, and those outside the grid get -1. It reads umap and keeps nothing of
     * it, but we keep it as the lookup key. */
    int me, np;
    Cblacs_pinfo(&me, &np);
    g->sys = Csys2blacs_handle(g->comm);
    g->ctxt = g->sys;
    Cblacs_gridmap(&g->ctxt, umap, p, p, q);
    pthread_mutex_lock(&registry_lock);
    g->next = grids;
    grids = g;
    pthread_mutex_unlock(&registry_lock);
    *out = g;
    return DAGR_OK;

fail:
    free(umap);
    free(g);
    return s;
}

static void lease_free(lease_t *l) {
    if (l->grid) grid_unref(l->grid);
    dagr_darray_destroy(&l->tmp);
    free(l->local);
    free(l);
}

/* A's tile (0, 0) as a ScaLAPACK array sees it: a view starts ti0 tiles into the store. */
static void bc_origin(const dagr_darray_t *A, int *rsrc, int *csrc) {
    *rsrc = (int)((A->ti0 + A->dist.rsrc) % A->dist.p);
    *csrc = (int)((A->tj0 + A->dist.csrc) % A->dist.q);
}

/* Gets the BLACS grid matching block-cyclic B, allocates the local array and copies B into
 * it. Collective; on failure the caller frees what l holds. */
static dagr_status_t lease_block_cyclic(dagr_darray_t *B, lease_t *l, int desc[9]) {
    dagr_ctx_t *ctx = B->ctx;
    int p = B->dist.p, q = B->dist.q, rsrc, csrc;
    bc_origin(B, &rsrc, &csrc);
    DAGR_TRY(grid_get(B, &l->grid));
    int ctxt = l->grid->ctxt;
    int nprow = -1, npcol = -1, myrow = -1, mycol = -1;
    if (ctxt >= 0) Cblacs_gridinfo(ctxt, &nprow, &npcol, &myrow, &mycol);
    int M = (int)B->m, N = (int)B->n, MB = (int)B->mb, NB = (int)B->nb;
    int lrows = myrow >= 0 ? numroc(M, MB, myrow, rsrc, p) : 0;
    int lcols = mycol >= 0 ? numroc(N, NB, mycol, csrc, q) : 0;
    int lld = lrows > 1 ? lrows : 1;
    size_t elems = (size_t)lld * (size_t)lcols;
    l->local = malloc((elems ? elems : 1) * B->es);
    dagr_status_t s =
        l->local ? DAGR_OK
                 : DAGR_ERR(DAGR_ERR_NOMEM, "cannot allocate a %dx%d local array", lld, lcols);
    DAGR_TRY(da_agree(ctx, s));
    l->L = (local_layout_t){
        .base = l->local, .lld = lld, .mb = B->mb, .nb = B->nb, .p = p, .q = q, .es = B->es};
    DAGR_TRY(copy_tiles(B, &l->L, true));
    DAGR_TRY(dagr_wait_all(ctx));
    int d[9] = {1, ctxt, M, N, MB, NB, rsrc, csrc, lld};
    memcpy(desc, d, sizeof d);
    return DAGR_OK;
}

static bool block_cyclic(const dagr_darray_t *A) {
    return A->dist.kind == DAGR_DIST_BLOCK_CYCLIC;
}

dagr_status_t dagr_darray_scalapack_acquire(dagr_darray_t *A, int desc[9], void **local) {
    DAGR_TRY(da_check(A, "A"));
    dagr_ctx_t *ctx = A->ctx;
    dagr_status_t s = DAGR_OK;
    if (!desc)
        s = DAGR_ERR(DAGR_ERR_ARG, "desc is NULL on rank %d", dagr_rank(ctx));
    else if (!local)
        s = DAGR_ERR(DAGR_ERR_ARG, "local is NULL on rank %d", dagr_rank(ctx));
    DAGR_TRY(da_agree(ctx, s));
    /* ScaLAPACK indexes with int: every extent must fit. */
    DAGR_CHECK(A->m <= INT_MAX && A->n <= INT_MAX && A->mb <= INT_MAX && A->nb <= INT_MAX,
               DAGR_ERR_ARG,
               "A is %lldx%lld in %lldx%lld tiles: ScaLAPACK needs sizes that fit in an int",
               (long long)A->m, (long long)A->n, (long long)A->mb, (long long)A->nb);
    DAGR_TRY(dagr_wait_all(ctx));
    if (A->wrapped) {
        /* After the wait the local array holds every tile's latest contents. */
        memcpy(desc, A->desc, 9 * sizeof(int));
        *local = A->local;
        return DAGR_OK;
    }
    lease_t *l = calloc(1, sizeof *l);
    s = l ? DAGR_OK : DAGR_ERR(DAGR_ERR_NOMEM, "cannot allocate a ScaLAPACK lease");
    DAGR_TRY(da_agree(ctx, s));
    l->A = A;
    dagr_darray_t *B = A;
    if (!block_cyclic(A)) {
        /* A custom distribution has no BLACS equivalent: go through the squarest grid. */
        s = dagr_darray_create(ctx, A->dtype, A->m, A->n, A->mb, A->nb, dagr_grid_2d(0, 0),
                               &l->tmp);
        if (s == DAGR_OK) s = dagr_darray_copy(A, l->tmp);
        B = l->tmp;
    }
    if (s == DAGR_OK) s = lease_block_cyclic(B, l, desc);
    if (s != DAGR_OK) {
        lease_free(l);
        return s;
    }
    pthread_mutex_lock(&registry_lock);
    l->next = leases;
    leases = l;
    pthread_mutex_unlock(&registry_lock);
    *local = l->local;
    return DAGR_OK;
}

dagr_status_t dagr_darray_scalapack_release(dagr_darray_t *A, int desc[9], void **local,
                                            int writeback) {
    DAGR_TRY(da_check(A, "A"));
    dagr_ctx_t *ctx = A->ctx;
    int me = dagr_rank(ctx);
    dagr_status_t s = DAGR_OK;
    if (!desc)
        s = DAGR_ERR(DAGR_ERR_ARG, "desc is NULL on rank %d", me);
    else if (!local)
        s = DAGR_ERR(DAGR_ERR_ARG, "local is NULL on rank %d", me);
    DAGR_TRY(da_agree(ctx, s));
    if (A->wrapped) {
        /* The local array is A's memory: whatever ScaLAPACK wrote is A's contents already.
         * New versions of the local tiles retire the copies other ranks may have cached. */
        for (int64_t tj = 0; tj < A->nt; tj++) {
            for (int64_t ti = 0; ti < A->mt; ti++) {
                dagr_access_t acc = {da_handle(A, ti, tj), DAGR_RW};
                DAGR_TRY(dagr_spawn(ctx, &touch_kernel, NULL, 0, 1, &acc, NULL));
            }
        }
        *local = NULL;
        return dagr_wait_all(ctx);
    }
    pthread_mutex_lock(&registry_lock);
    lease_t **pp = &leases;
    while (*pp && !((*pp)->A == A && (*pp)->local == *local))
        pp = &(*pp)->next;
    lease_t *l = *pp;
    if (l) *pp = l->next;
    pthread_mutex_unlock(&registry_lock);
    s = l ? DAGR_OK
          : DAGR_ERR(DAGR_ERR_ARG,
                     "local %p on rank %d was not given by dagr_darray_scalapack_acquire of "
                     "this array (or was released already)",
                     *local, me);
    s = da_agree(ctx, s);
    if (s != DAGR_OK) {
        if (l) { /* found here but not elsewhere: keep it for a correct release */
            pthread_mutex_lock(&registry_lock);
            l->next = leases;
            leases = l;
            pthread_mutex_unlock(&registry_lock);
        }
        return s;
    }
    if (writeback) {
        dagr_darray_t *B = l->tmp ? l->tmp : A;
        s = copy_tiles(B, &l->L, false);
        if (s == DAGR_OK && l->tmp) s = dagr_darray_copy(l->tmp, A);
        /* The wait runs even after an insertion error, so the local array is no longer in
         * use when it is freed below. */
        dagr_status_t w = dagr_wait_all(ctx);
        if (s == DAGR_OK) s = w;
    }
    lease_free(l);
    *local = NULL;
    return s;
}

#endif
