/* dagr — distributed dense arrays (DArray).
 *
 * A DArray is an m x n matrix (a vector is n x 1) of float, double or int64 cut into mb x nb
 * tiles; tiles at the bottom and right edges may be smaller. Each tile is a data handle of the
 * runtime owned by one rank, chosen by a distribution (2-D block-cyclic over a P x Q grid by
 * default). Tiles are column-major.
 *
 * Each function below is labelled Collective, Logically collective or Local (see dagr/task.h).
 * All but the Local ones are called by all ranks of the context in the same order with the same
 * arguments (pointers to local memory excepted). A Logically collective operation inserts tasks
 * and returns at once; the work runs when the graph runs, so operations compose without
 * barriers, and errors found while running surface at the next dagr_wait_all. A Collective one
 * waits. Bad arguments are refused before anything is inserted, with the same status and
 * message on every rank, and nothing changes. */
#ifndef DAGR_DARRAY_H
#define DAGR_DARRAY_H

#include <stdint.h>

#include <dagr/runtime.h>
#include <dagr/status.h>
#include <dagr/task.h>
#include <dagr/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dagr_darray dagr_darray_t;

/* An array's tiles are placed by a dagr_grid_t (dagr_grid_2d, dagr_grid_row_cyclic,
 * dagr_grid_col_cyclic, dagr_grid_custom), declared in dagr/types.h: tables share it. */

/* ------------------------------------------------------------------------------------------
 * Creation and shape
 * ---------------------------------------------------------------------------------------- */

/* Creates a zero-filled m x n array of mb x nb tiles. m or n may be 0 (an empty array); mb and
 * nb must be > 0 (they may exceed m and n). Logically collective. Errors: DAGR_ERR_ARG (NULL
 * ctx/out, unknown dtype, negative size, tile size <= 0, a grid needing more ranks than exist
 * or with p or q < 0, a custom grid without rank_of or whose rank_of returns a rank out of
 * range), DAGR_ERR_NOMEM. */
DAGR_API dagr_status_t dagr_darray_create(dagr_ctx_t *ctx, dagr_dtype_t dtype, int64_t m, int64_t n,
                                          int64_t mb, int64_t nb, dagr_grid_t grid,
                                          dagr_darray_t **out);

/* Creates an array with the shape, tiling and distribution of A (zero-filled).
 * Logically collective. */
DAGR_API dagr_status_t dagr_darray_create_like(const dagr_darray_t *A, dagr_dtype_t dtype,
                                               dagr_darray_t **out);

/* Releases A (tasks already inserted still run). A view keeps the tiles it shares alive, so
 * views and their parent may be destroyed in any order. Logically collective; tolerates NULL;
 * sets *A to NULL. */
DAGR_API dagr_status_t dagr_darray_destroy(dagr_darray_t **A);

/* Shape queries. Local. */
DAGR_API dagr_ctx_t *dagr_darray_ctx(const dagr_darray_t *A);
DAGR_API dagr_dtype_t dagr_darray_dtype(const dagr_darray_t *A);
DAGR_API int64_t dagr_darray_rows(const dagr_darray_t *A);
DAGR_API int64_t dagr_darray_cols(const dagr_darray_t *A);
DAGR_API int64_t dagr_darray_tile_rows(const dagr_darray_t *A); /* mb */
DAGR_API int64_t dagr_darray_tile_cols(const dagr_darray_t *A); /* nb */
DAGR_API int64_t dagr_darray_mt(const dagr_darray_t *A);        /* tile rows */
DAGR_API int64_t dagr_darray_nt(const dagr_darray_t *A);        /* tile columns */
/* The data handle of tile (ti, tj) (borrowed), for tasks of the user's own; NULL when out of
 * range. Its buffer is a column-major tile with leading dimension task->ld[i]. Local. */
DAGR_API dagr_data_t *dagr_darray_tile(const dagr_darray_t *A, int64_t ti, int64_t tj);
/* The rank owning tile (ti, tj), or -1 when out of range. Local. */
DAGR_API int dagr_darray_tile_rank(const dagr_darray_t *A, int64_t ti, int64_t tj);

/* ------------------------------------------------------------------------------------------
 * Filling
 * ---------------------------------------------------------------------------------------- */

/* A = 0; A = value (converted to A's dtype); A = I (ones on the diagonal, any shape).
 * Logically collective. */
DAGR_API dagr_status_t dagr_darray_zeros(dagr_darray_t *A);
DAGR_API dagr_status_t dagr_darray_fill(dagr_darray_t *A, double value);
DAGR_API dagr_status_t dagr_darray_identity(dagr_darray_t *A);

/* Fills A from a counter-based generator (Philox-4x32-10) keyed by (seed, global i, global j):
 * the values do not depend on the tile size, grid or rank count. float and double get values
 * uniform in [0, 1); int64 gets values uniform in [0, 2^62). Logically collective. */
DAGR_API dagr_status_t dagr_darray_random(dagr_darray_t *A, uint64_t seed);

/* A(i, j) = fn(i, j, user) for global indices i, j (converted to A's dtype). fn runs on the
 * rank owning each tile, on worker threads concurrently, so it must be thread-safe, and user
 * must be valid on every rank until the tasks have run. Logically collective. Errors:
 * DAGR_ERR_ARG (fn NULL). */
typedef double (*dagr_elem_fn)(int64_t i, int64_t j, void *user);
DAGR_API dagr_status_t dagr_darray_from_fn(dagr_darray_t *A, dagr_elem_fn fn, void *user);

/* ------------------------------------------------------------------------------------------
 * Moving whole arrays in and out
 * ---------------------------------------------------------------------------------------- */

/* A = src, a column-major m x n matrix with leading dimension ld >= max(1, m) of A's dtype on
 * rank root (root = -1: every rank passes its own src, identical or not — each tile is taken
 * from its owner's src). Collective: waits (as dagr_wait_all), and returns when src may be
 * reused. Errors: DAGR_ERR_ARG (root out of range, ld < m, src NULL on a rank that must read
 * it), and those of dagr_wait_all. */
DAGR_API dagr_status_t dagr_darray_scatter(dagr_darray_t *A, const void *src, int64_t ld, int root);
/* dst = A on rank root (root = -1: on every rank), column-major with leading dimension ld.
 * Collective: waits for every task inserted so far (as dagr_wait_all). Errors: as scatter. */
DAGR_API dagr_status_t dagr_darray_gather(const dagr_darray_t *A, void *dst, int64_t ld, int root);

/* A(i, j) = *value (a value of A's dtype, read on every rank; they must agree).
 * Logically collective: inserts a task. Errors: DAGR_ERR_ARG (index out of range, value
 * NULL). */
DAGR_API dagr_status_t dagr_darray_set(dagr_darray_t *A, int64_t i, int64_t j, const void *value);
/* *value = A(i, j) on every rank (a value of A's dtype). Collective: waits (as
 * dagr_wait_all). Errors: as set, and those of dagr_wait_all. */
DAGR_API dagr_status_t dagr_darray_fetch(const dagr_darray_t *A, int64_t i, int64_t j, void *value);

/* ------------------------------------------------------------------------------------------
 * Element-wise work
 * ---------------------------------------------------------------------------------------- */

/* One tile as a callback sees it: data points at element (0, 0) of the tile; element (r, c)
 * is at data[r + c * ld]; i0, j0 are the global indices of element (0, 0). */
typedef struct dagr_tile {
    void *data;
    dagr_dtype_t dtype;
    int64_t rows, cols, ld;
    int64_t i0, j0;
} dagr_tile_t;

/* Tile-wise map: for each tile, fn(&in, &out, user) with in from A and out the matching tile
 * of B (B may be A for an in-place map; dtypes may differ). A and B must have the same shape
 * and tile size; their distributions may differ (tiles move). fn runs on worker threads
 * concurrently and must be thread-safe; user must be valid on every rank until the tasks have
 * run. Logically collective. Errors: DAGR_ERR_ARG (NULL fn, mismatched shapes or tiles). */
typedef void (*dagr_map_fn)(const dagr_tile_t *in, dagr_tile_t *out, void *user);
DAGR_API dagr_status_t dagr_darray_map(const dagr_darray_t *A, dagr_darray_t *B, dagr_map_fn fn,
                                       void *user);

/* A = alpha * A. Logically collective. */
DAGR_API dagr_status_t dagr_darray_scale(dagr_darray_t *A, double alpha);
/* A = A + alpha (a scalar broadcast to every element). Logically collective. */
DAGR_API dagr_status_t dagr_darray_shift(dagr_darray_t *A, double alpha);
/* Y = alpha * X + beta * Y. X and Y: same dtype, shape and tile size. Logically collective. */
DAGR_API dagr_status_t dagr_darray_axpby(double alpha, const dagr_darray_t *X, double beta,
                                         dagr_darray_t *Y);
/* C = A + B and C = A .* B (element-wise). All three have the same dtype and tile size; A and
 * C have the same shape; B has that shape too, or is 1 x 1 and is broadcast. C may be A or B.
 * Logically collective. */
DAGR_API dagr_status_t dagr_darray_add(const dagr_darray_t *A, const dagr_darray_t *B,
                                       dagr_darray_t *C);
DAGR_API dagr_status_t dagr_darray_mul(const dagr_darray_t *A, const dagr_darray_t *B,
                                       dagr_darray_t *C);

/* ------------------------------------------------------------------------------------------
 * Reductions
 * ---------------------------------------------------------------------------------------- */

typedef enum dagr_reduce {
    DAGR_REDUCE_SUM = 0,
    DAGR_REDUCE_MIN = 1, /* NaN if any element is NaN */
    DAGR_REDUCE_MAX = 2, /* NaN if any element is NaN */
    DAGR_NORM_ONE = 3,   /* max column sum of |a_ij| */
    DAGR_NORM_INF = 4,   /* max row sum of |a_ij| */
    DAGR_NORM_MAX = 5,   /* max |a_ij| */
    DAGR_NORM_FRO = 6,   /* sqrt(sum a_ij^2), with scaled sums of squares (no overflow) */
} dagr_reduce_t;

/* R(0, 0) = op(A), where R is a 1 x 1 array of any dtype (the result is computed in double —
 * in int64 for the sum of an int64 array — and converted). Logically collective: inserts
 * tasks, and later tasks may read R. Sums and norms of an empty array are 0. Errors:
 * DAGR_ERR_ARG (unknown op, R not 1 x 1, min or max of an empty array). */
DAGR_API dagr_status_t dagr_darray_reduce(const dagr_darray_t *A, dagr_reduce_t op,
                                          dagr_darray_t *R);
/* *out = op(A) on every rank. Collective: waits (as dagr_wait_all). Errors: as
 * dagr_darray_reduce, and those of dagr_wait_all. */
DAGR_API dagr_status_t dagr_darray_reduce_value(const dagr_darray_t *A, dagr_reduce_t op,
                                                double *out);
/* Shorthands for dagr_darray_reduce_value. Collective: they wait, as it does. */
DAGR_API dagr_status_t dagr_darray_sum(const dagr_darray_t *A, double *out);
DAGR_API dagr_status_t dagr_darray_min(const dagr_darray_t *A, double *out);
DAGR_API dagr_status_t dagr_darray_max(const dagr_darray_t *A, double *out);
DAGR_API dagr_status_t dagr_darray_norm(const dagr_darray_t *A, dagr_reduce_t norm, double *out);

/* ------------------------------------------------------------------------------------------
 * Copies, transposes, redistribution and views
 * ---------------------------------------------------------------------------------------- */

/* B = A. Same shape and dtype; tile sizes and distributions may differ (a redistribution).
 * Logically collective. */
DAGR_API dagr_status_t dagr_darray_copy(const dagr_darray_t *A, dagr_darray_t *B);
/* B = A^T (out of place: B must not share tiles with A). B is n x m, same dtype, any tiling.
 * Logically collective. */
DAGR_API dagr_status_t dagr_darray_transpose(const dagr_darray_t *A, dagr_darray_t *B);
/* Creates a copy of A with another tile size and grid and copies A into it.
 * Logically collective. */
DAGR_API dagr_status_t dagr_darray_redistribute(const dagr_darray_t *A, int64_t mb, int64_t nb,
                                                dagr_grid_t grid, dagr_darray_t **out);
/* Creates a view of the m x n block of A starting at (i0, j0), sharing A's tiles: i0 and j0
 * must be multiples of the tile size (m and n are free within A). Writes through the view
 * change A. Logically collective: it inserts no task, but every rank must make the same views,
 * as a view keeps A's tiles alive. Errors: DAGR_ERR_ARG (negative sizes, a block outside A, i0
 * or j0 not on a tile boundary — use dagr_darray_subarray for those). */
DAGR_API dagr_status_t dagr_darray_view(const dagr_darray_t *A, int64_t i0, int64_t j0, int64_t m,
                                        int64_t n, dagr_darray_t **out);
/* Creates a new array holding a copy of the m x n block of A starting at (i0, j0) (any
 * offsets), with A's tile size and grid. Logically collective. Errors: DAGR_ERR_ARG (a block
 * outside A). */
DAGR_API dagr_status_t dagr_darray_subarray(const dagr_darray_t *A, int64_t i0, int64_t j0,
                                            int64_t m, int64_t n, dagr_darray_t **out);

/* ------------------------------------------------------------------------------------------
 * Stencils
 * ---------------------------------------------------------------------------------------- */

typedef enum dagr_boundary {
    DAGR_BOUNDARY_ZERO = 0,    /* outside elements are 0 */
    DAGR_BOUNDARY_WRAP = 1,    /* periodic: index mod size */
    DAGR_BOUNDARY_CLAMP = 2,   /* the nearest edge element */
    DAGR_BOUNDARY_REFLECT = 3, /* mirrored about the edge element: a[-1] = a[1] */
} dagr_boundary_t;

/* For each tile of B, fn(&in, &out, user) where in is the matching tile of A with a halo of
 * `radius` elements on every side: in.data points at the tile's element (0, 0), and elements
 * in.data[r + c * in.ld] exist for r in [-radius, rows + radius), c in [-radius,
 * cols + radius), filled from the neighbouring tiles or by the boundary rule (for REFLECT on a
 * dimension of size 1, every index maps to its only element). A and B have the same shape and
 * tile size and must be different arrays; their distributions and dtypes may differ. Only
 * halo strips cross ranks. Logically collective. Errors: DAGR_ERR_ARG (NULL fn, radius < 0,
 * unknown boundary, shape or tile mismatch, B == A or sharing tiles with A),
 * DAGR_ERR_UNSUPPORTED (a halo needing more than 31 source tiles: use larger tiles). */
typedef void (*dagr_stencil_fn)(const dagr_tile_t *in, dagr_tile_t *out, void *user);
DAGR_API dagr_status_t dagr_darray_stencil(const dagr_darray_t *A, int radius,
                                           dagr_boundary_t boundary, dagr_stencil_fn fn, void *user,
                                           dagr_darray_t *B);

/* ------------------------------------------------------------------------------------------
 * ScaLAPACK interoperability
 * ---------------------------------------------------------------------------------------- */

/* Wraps a ScaLAPACK array — its descriptor desc[9] (DTYPE 1, CTXT, M, N, MB, NB, RSRC, CSRC,
 * LLD) and this rank's local buffer — as a DArray without copying: tiles are the local
 * array's blocks, read and written in place (local must outlive the DArray, which never frees
 * it). Tile (ti, tj) is owned by the rank that is grid process ((ti + RSRC) mod P,
 * (tj + CSRC) mod Q) of the BLACS grid, whatever order the grid was made in. The grid must be
 * made of the context's ranks; ranks of the context outside it (CTXT -1) hold no tiles, and
 * their desc is not read beyond CTXT. After dagr work on A and a dagr_wait_all the local
 * buffer holds A's contents; change it directly only between an acquire and a release.
 * Collective. Errors: DAGR_ERR_ARG (NULL ctx, desc or out, unknown dtype; a malformed
 * descriptor — the message names the field, its value and the rank: DTYPE_ not 1, M_ or N_
 * < 0, MB_ or NB_ <= 0, RSRC_/CSRC_ outside the grid, LLD_ < max(1, local rows), fields that
 * differ between the grid's ranks; no rank in a grid, a grid process that is not a rank of
 * the context, local NULL while this rank holds elements), DAGR_ERR_UNSUPPORTED (dagr built
 * without ScaLAPACK). */
DAGR_API dagr_status_t dagr_darray_from_scalapack(dagr_ctx_t *ctx, dagr_dtype_t dtype,
                                                  const int desc[9], void *local,
                                                  dagr_darray_t **out);

/* Hands A to ScaLAPACK: waits for A's pending work, then fills desc[9] and *local with a
 * ScaLAPACK array holding A. When A wraps a ScaLAPACK array this is that array (no copy);
 * otherwise a BLACS grid matching A's distribution is made (or A is first copied to a
 * block-cyclic layout on the squarest grid) and each tile is copied, on the rank that owns
 * it, into a new local buffer. Arrays acquired at the same time with the same grid share one
 * BLACS context, so they can be operands of one ScaLAPACK call; ranks outside the grid get
 * CTXT -1 and must not call ScaLAPACK. Pair with dagr_darray_scalapack_release. Collective.
 * Errors: DAGR_ERR_UNSUPPORTED (no ScaLAPACK), DAGR_ERR_ARG (NULL arguments, sizes beyond
 * int), DAGR_ERR_NOMEM, and those of dagr_wait_all. */
DAGR_API dagr_status_t dagr_darray_scalapack_acquire(dagr_darray_t *A, int desc[9], void **local);
/* Ends an acquire: when writeback is non-zero, what ScaLAPACK wrote into the local buffer
 * becomes A's contents (writeback 0 drops it). For a wrapped array the buffer is A's own
 * memory, so what was written is A's contents either way. Frees what acquire allocated (and
 * the BLACS grid once no acquired array uses it) and sets *local to NULL. Collective.
 * Errors: DAGR_ERR_ARG (NULL arguments, a local buffer that acquire did not give for A),
 * those of dagr_wait_all. */
DAGR_API dagr_status_t dagr_darray_scalapack_release(dagr_darray_t *A, int desc[9], void **local,
                                                     int writeback);

#ifdef __cplusplus
}
#endif
#endif
