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
/* Collective over comm, any thread (one at a time per communicator): all ranks return the
 * lowest failing rank's status and message (msg: mine's). No graph check: for work outside
 * the main thread's order of calls. */
dagr_status_t ctx_agree(MPI_Comm comm, dagr_status_t mine, const char *msg);

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

/* ---------------------------------------------------------------------------------------
 * Data handles
 * ------------------------------------------------------------------------------------- */

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

#endif
