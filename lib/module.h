/* What lib/ offers the modules built on it (darray/, linalg/, io/; dtable/ and gpu/ to come).
 * They see the context and the data handles only through this header and the public API: the
 * structs stay private to lib/ (lib_impl.h), so that lib/ can change them alone. */
#ifndef DAGR_MODULE_H
#define DAGR_MODULE_H

#include <dagr/dagr.h>

#include <mpi.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* ---------------------------------------------------------------------------------------
 * The context
 * ------------------------------------------------------------------------------------- */

/* dagr's own communicator, for collectives every rank makes in the same order (never the one
 * dagr_comm hands the user). Local. */
MPI_Comm ctx_comm(const dagr_ctx_t *ctx);
/* DAGR_OK, or DAGR_ERR_DIVERGED with the divergence's message once one was found (the context
 * can then only be finalised). Local. */
dagr_status_t ctx_usable(const dagr_ctx_t *ctx);
/* Tasks inserted since dagr_init (the same on every rank). Local. */
uint64_t ctx_tasks_inserted(const dagr_ctx_t *ctx);
/* Collective: every collective call of a context (after dagr_init) begins here. It checks that
 * every rank inserted the same graph (DAGR_ERR_DIVERGED otherwise), then agrees on one status:
 * all ranks return the lowest failing rank's status and message. */
dagr_status_t ctx_sync(dagr_ctx_t *ctx, dagr_status_t mine, const char *msg);
/* The same, asleep between tests from the start (ctx_wait_patient): for a call whose latency
 * matters little and whose ranks may come far apart while the workers compute on the same
 * cores (an asynchronous checkpoint's start). */
dagr_status_t ctx_sync_patient(dagr_ctx_t *ctx, dagr_status_t mine, const char *msg);
/* Collective over comm, any thread (one at a time per communicator): all ranks return the
 * lowest failing rank's status and message (msg: mine's). No graph check: for work outside
 * the main thread's order of calls. */
dagr_status_t ctx_agree(MPI_Comm comm, dagr_status_t mine, const char *msg);
/* The same for a background thread, which sleeps between tests from the start instead of
 * spinning a while as the main thread does. */
dagr_status_t ctx_agree_patient(MPI_Comm comm, dagr_status_t mine, const char *msg);
/* Completes a nonblocking MPI operation without spinning in MPI the whole time (the main
 * thread's collectives): tests, then sleeps between tests. Returns MPI's error code. The
 * patient form, for background threads, sleeps from the start. */
int ctx_wait_request(MPI_Request *req);
int ctx_wait_patient(MPI_Request *req);

/* Work that goes on in the background and ends at the next dagr_wait_all (dagr_finalize's
 * included): io/'s asynchronous checkpoint, whose own thread flushes and renames the file.
 * One at a time. */
typedef struct ctx_pending {
    /* Collective, at the wait (after it) with the wait's agreed status: ends the work and
     * returns an agreed status; keeps `waited` and its message when that is not DAGR_OK. */
    dagr_status_t (*finish)(dagr_ctx_t *ctx, void *arg, dagr_status_t waited);
    /* Local, when the context ends without reaching a wait (after a divergence): stops the
     * work and frees it, without MPI. */
    void (*drop)(void *arg);
    void *arg;
} ctx_pending_t;
/* Local: sets the work (none must be set). */
void ctx_set_pending(dagr_ctx_t *ctx, const ctx_pending_t *p);
/* Local: whether work is pending. */
bool ctx_has_pending(const dagr_ctx_t *ctx);
/* Collective: ends the pending work now, if any (finish), and clears it; returns `waited`
 * when it is not DAGR_OK, else finish's status (DAGR_OK without work). */
dagr_status_t ctx_run_pending(dagr_ctx_t *ctx, dagr_status_t waited);

/* As dagr_spawn; when the task runs on this rank, *done goes up by one as it completes,
 * whether it succeeded, failed, or was skipped because an input failed. Logically
 * collective, as dagr_spawn. */
dagr_status_t ctx_spawn_counted(dagr_ctx_t *ctx, const dagr_kernel_t *k, const void *args,
                                size_t args_size, int naccess, const dagr_access_t *access,
                                const dagr_task_opts_t *opts, atomic_long *done);

/* As dagr_task_resize, but the bytes past the old size are left unset rather than zeroed:
 * for a body that writes every byte of what it resizes (dtable's partitions, hundreds of MB
 * whose zeroing would be a pass for nothing). On a device, as dagr_task_resize. Local. */
dagr_status_t task_resize_raw(const dagr_task_view_t *task, int i, size_t bytes);

/* ---------------------------------------------------------------------------------------
 * Data handles
 * ------------------------------------------------------------------------------------- */

/* Big scratch memory where data buffers live (the data pool from POOL_MIN bytes on, which
 * gives unused pages back, lib/pool.c; malloc below that or with DAGR_POOL=0): 64-byte
 * aligned, and the pool's from DATA_BUF_PAGE_MIN bytes on start on a 4 KiB boundary (a
 * checkpoint writes such tiles with O_DIRECT from where they lie). data_buf_free and
 * data_buf_realloc take either kind, and malloc's too, so code may mix them; realloc moves a
 * block between kinds as its size crosses POOL_MIN. */
#define DATA_BUF_PAGE_MIN ((size_t)256 << 10)
void *data_buf_alloc(size_t bytes);
void *data_buf_realloc(void *p, size_t bytes);
void data_buf_free(void *p);
/* The pool keeps up to this many bytes of freed buffers resident, on top of DAGR_POOL_KEEP,
 * for buffers of that size that come back (an asynchronous checkpoint's staged copies, at
 * every checkpoint: faulting 72 MiB of them in again cost a rank 10-50 ms of CPU a
 * checkpoint); the last call counts, 0 ends it, and so does dagr_finalize. Process-wide. */
void data_buf_hold(size_t bytes);

/* The live handles in creation order, in-order queues left out (the same on every rank):
 * *out is malloc'ed (free it; NULL when *n is 0). Local. Errors: DAGR_ERR_NOMEM. */
dagr_status_t ctx_live_data(dagr_ctx_t *ctx, dagr_data_t ***out, int64_t *n);

/* What every rank knows of a handle from its creation. Local. */
typedef struct data_shape {
    size_t rows, cols, elsize; /* a column-major matrix; plain handles are bytes x 1 x 1 */
    int owner;
    bool dynamic; /* dagr_data_create_dynamic: the size is each version's writer's */
} data_shape_t;
data_shape_t data_shape(const dagr_data_t *h);

/* Collective, after a wait: out[k] = the size of hs[k]'s latest version (its owner's copy's
 * for a handle whose size tasks decide), the same on every rank. */
dagr_status_t data_sizes_agree(dagr_ctx_t *ctx, dagr_data_t *const *hs, size_t n, uint64_t *out);

/* ---------------------------------------------------------------------------------------
 * Divergence, workers and the trace's I/O events
 * ------------------------------------------------------------------------------------- */

/* A 64-bit hash of a string, for mixing names into what the divergence check compares. */
uint64_t divergence_hash_str(const char *s);

/* The calling thread's worker index, -1 off the workers (for I/O trace events). */
int sched_worker_index(void);

/* I/O kinds for trace_io_end: HDF5 files (io/: dagr_darray_save and load), checkpoints
 * (io/checkpoint.c: dagr_checkpoint and dagr_resume) and the tile store's spill to disk. */
typedef enum trace_io_kind {
    TRACE_IO_HDF5_WRITE,
    TRACE_IO_HDF5_READ,
    TRACE_IO_CKPT_WRITE,
    TRACE_IO_CKPT_READ,
    TRACE_IO_SPILL_WRITE,
    TRACE_IO_SPILL_READ,
    TRACE_IO_KINDS
} trace_io_kind_t;
/* "hdf5 write", "hdf5 read", "checkpoint write", "checkpoint read", "spill write", "spill
 * read": the event's name in the trace. */
const char *trace_io_name(trace_io_kind_t kind);

/* Any thread: brackets an HDF5 or spill read or write. trace_io_begin returns the start
 * time (0 when tracing is off); trace_io_end records the event with the bytes moved and the
 * worker doing it (-1 when it is not a worker). Locks: I/O is slow next to a mutex. */
int64_t trace_io_begin(struct dagr_ctx *ctx);
void trace_io_end(struct dagr_ctx *ctx, int64_t t0, trace_io_kind_t kind, uint64_t bytes,
                  int worker);

/* ---------------------------------------------------------------------------------------
 * Distributions: which rank owns each tile (lib/dist.c)
 * ------------------------------------------------------------------------------------- */

/* A distribution resolved for an mt x nt grid of tiles over `size` ranks — an array's tiles,
 * a table's row partitions (mt x 1). Every rank resolves the same one from the same arguments,
 * so every rank knows who owns every tile without a message. It has one of two forms:
 *
 * - block-cyclic (kind DAGR_DIST_BLOCK_CYCLIC; the 1-D kinds resolve to it, as size x 1 and
 *   1 x size grids): tile (ti, tj) is on grid process (r, c) = ((ti + rsrc) mod p,
 *   (tj + csrc) mod q), which is rank pmap[r * q + c], or r * q + c without a pmap. Ranks
 *   past the grid (p * q < size) own nothing.
 * - a table (kind DAGR_DIST_CUSTOM): the owner of each tile, asked of the user's rank_of once
 *   when resolved (the public header promises it is called at creation only) and kept.
 *
 * A rank's tiles are numbered k = 0, 1, ... in column-major order (tj outer, ti inner: the
 * order of darray's loops); dist_local_tile and dist_tile_of go between (ti, tj) and k. The
 * fields are read-only outside lib/dist.c (darray/scalapack.c reads the grid's); a dist_t
 * never changes once made, so threads may share one. Every function here is Local. */
typedef struct dist {
    dagr_dist_t kind; /* DAGR_DIST_BLOCK_CYCLIC or DAGR_DIST_CUSTOM */
    int size;         /* ranks it spreads over */
    int64_t mt, nt;   /* the tiles it was made for */
    /* block-cyclic */
    int p, q;
    int rsrc, csrc; /* grid process holding tile (0, 0) (ScaLAPACK arrays, array views) */
    int *pmap;      /* rank of grid process (r, c) at pmap[r * q + c]; NULL: r * q + c */
    int *gpos;      /* with pmap: the grid process r * q + c of each rank, -1 outside it */
    /* table */
    int *owner;     /* owner of tile (ti, tj) at owner[ti + tj * mt] */
    int64_t *first; /* rank r's tiles are tiles[first[r] .. first[r + 1]) */
    int64_t *tiles; /* tile numbers ti + tj * mt, by rank, each rank's in column-major order */
    int64_t *slot;  /* tile (ti, tj)'s k on its owner at slot[ti + tj * mt] */
} dist_t;

/* Checks grid for `size` ranks and an mt x nt grid of tiles and makes *out (free it with
 * dist_free). A custom grid's rank_of is called once per tile, here. Errors, with the message
 * naming the bad field: DAGR_ERR_ARG (p or q < 0, only one of them 0, p * q > size, a custom
 * grid without rank_of or whose rank_of returns a rank outside [0, size), an unknown kind,
 * size <= 0, mt or nt < 0), DAGR_ERR_NOMEM. *out is set only on success. */
dagr_status_t dist_resolve(dagr_grid_t grid, int size, int64_t mt, int64_t nt, dist_t *out);
/* A block-cyclic distribution on a p x q grid whose process (r, c) is rank pmap[r * q + c]
 * (pmap: p * q distinct ranks in [0, size), copied; NULL: r * q + c) and whose tile (0, 0) is
 * on process (rsrc, csrc): a ScaLAPACK array's. Errors: DAGR_ERR_ARG (a grid that does not fit
 * these rules), DAGR_ERR_NOMEM. */
dagr_status_t dist_block_cyclic(int size, int64_t mt, int64_t nt, int p, int q, int rsrc, int csrc,
                                const int *pmap, dist_t *out);
/* The distribution of an mt x nt grid of tiles whose tile (ti, tj) is placed as d places
 * (ti0 + ti, tj0 + tj): a view's tiles, or another grid of tiles laid out alike. Block-cyclic:
 * any mt x nt (the origin moves); a table: the block must lie inside d's tiles. Errors:
 * DAGR_ERR_ARG (negative arguments, a block outside a table), DAGR_ERR_NOMEM. */
dagr_status_t dist_shift(const dist_t *d, int64_t ti0, int64_t tj0, int64_t mt, int64_t nt,
                         dist_t *out);
/* A copy of d (dist_shift by nothing). Errors: DAGR_ERR_NOMEM. */
dagr_status_t dist_copy(const dist_t *d, dist_t *out);
/* Frees what d holds and clears it; tolerates a cleared one. */
void dist_free(dist_t *d);

/* The rank owning tile (ti, tj), for 0 <= ti < mt and 0 <= tj < nt (-1 outside). */
int dist_rank_of(const dist_t *d, int64_t ti, int64_t tj);
/* The tile's number k among its owner's tiles (column-major), -1 outside: the inverse of
 * dist_local_tile, where a rank keeps a tile in a list of its own. */
int64_t dist_tile_of(const dist_t *d, int64_t ti, int64_t tj);
/* How many tiles rank owns (0 for a rank outside [0, size) or outside the grid). */
int64_t dist_local_count(const dist_t *d, int rank);
/* Sets (*ti, *tj) to rank's k-th tile (column-major) and returns true, for 0 <= k <
 * dist_local_count(d, rank); returns false otherwise, leaving them alone. So a rank's tiles
 * are visited with
 *     for (int64_t k = 0; dist_local_tile(d, rank, k, &ti, &tj); k++) ...
 * O(1) each. */
bool dist_local_tile(const dist_t *d, int rank, int64_t k, int64_t *ti, int64_t *tj);
/* The rank of grid process (r, c) of a block-cyclic distribution. */
int dist_grid_rank(const dist_t *d, int r, int c);

#endif
