/* Internal to io/'s checkpoints: the file's layout, the write and read tasks, and the
 * checkpoint shared by the synchronous form (checkpoint.c), the asynchronous one
 * (checkpoint_async.c) and resume (resume.c). The file format is described at the top of
 * checkpoint.c. */
#ifndef DAGR_CHECKPOINT_IMPL_H
#define DAGR_CHECKPOINT_IMPL_H

#include "io_impl.h"

#include <pthread.h>
#include <stdatomic.h>

#define CKPT_FORMAT 1
#define TABLE_COLS 4 /* rows, cols, elsize, checksum */

/* The root attributes, in this order. */
enum { A_FORMAT, A_RANKS, A_TASKS, A_HANDLES, NATTRS };
extern const char *const ckpt_attrs[NATTRS];

/* A 64-bit hash of n bytes (checkpoint.c). */
uint64_t ckpt_checksum(const void *p, size_t n);

typedef struct layout {
    dagr_data_t **h; /* live handles (queues left out), by creation number */
    int64_t n;
    uint64_t *table; /* n x TABLE_COLS */
    uint64_t *off;   /* extent of handle k in /data: [off[k], off[k] + bytes) */
    uint64_t total;
} layout_t;

void ckpt_layout_free(layout_t *L);
/* Local: the live handles (every rank finds the same), their table and offsets allocated. */
dagr_status_t ckpt_layout_handles(dagr_ctx_t *ctx, layout_t *L);
/* Collective, once ckpt_layout_handles succeeded on every rank: the handles' sizes (waits
 * when some size is a task's), the table's shapes and the offsets. */
dagr_status_t ckpt_layout_sizes(dagr_ctx_t *ctx, layout_t *L);
/* Local: the table's shapes from each handle's size in L->off[k], and the offsets. */
void ckpt_layout_rows(layout_t *L);
/* Local: the offsets in /data from the table's shapes. */
void ckpt_layout_offsets(layout_t *L);

/* Bytes of a table row's handle. */
static inline uint64_t row_bytes(const uint64_t *row) {
    return row[2] ? row[0] * row[1] * row[2] : row[0];
}

typedef struct stage stage_t;

typedef struct ckpt_args {
    dagr_ctx_t *ctx;
    stage_t *stage; /* write: the file's descriptors, and where the task may leave a copy */
    hid_t data;     /* read: the /data dataset */
    uint64_t off;   /* extent in /data */
    uint64_t rows, cols, elsize;
    uint64_t *sum;        /* write: where this rank keeps the checksum (a slot of its own) */
    atomic_long *written; /* write: counts this rank's writes that succeeded */
    uint64_t want;        /* read: the checksum the table holds */
    int64_t k;            /* the handle's place in creation order (for messages) */
    bool dynamic;         /* read: a handle whose size tasks decide, resized to rows bytes */
    const char *path;     /* outlives the task (the call's, or the pending checkpoint's) */
} ckpt_args_t;

/* ------------------------------------------------------------------------------------------
 * Writing /data. Every rank writes its handles' extents with pwrite into "<path>.tmp", which
 * rank 0 created and laid out alone (checkpoint.c); no MPI-IO, so that nothing in a
 * checkpoint waits in a collective call that spins (MPI-IO's opens, flushes and closes do).
 *
 * Staging, for asynchronous checkpoints: a write task leaves the slow part, the checksum and
 * the write (direct where the file system allows: checkpoint_async.c), to the checkpoint's
 * thread, and the workers do not spend their time in the file system. Where its handle's
 * buffer can be written as it lies (packed, placed in memory as in the file, see stage_lend)
 * the task lends it to the thread and completes when the thread has written it (a deferred
 * task): no copy. Otherwise it copies the handle into a block of its own (a memcpy): the
 * handle is then free for the next task that overwrites it after the copy rather than after
 * the write. The copies in flight are bounded (cap); past it, a task writes its handle itself
 * (as every task of a synchronous one does).
 * ---------------------------------------------------------------------------------------- */

/* The thread writes the copies in batches of this many bytes (or what is left at the end). */
#define STAGE_BATCH ((size_t)16 << 20)

typedef struct staged {
    struct staged *next;
    ckpt_args_t a;
    void *p; /* n bytes, packed column-major; placed in raw for a direct write */
    void *raw;
    size_t n;
    /* A lent block: p is the task's own buffer (raw NULL), and the task completes with this
     * token once the block is written. */
    dagr_task_token_t *token;
} staged_t;

struct stage {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* a block came */
    staged_t *head, *tail;
    size_t bytes, cap; /* copies staged and not yet written; at most cap */
    size_t queued;     /* staged (copies and lent) and not yet taken by the thread */
    long lent;         /* lent blocks not yet written: their tasks have not completed */
    /* Whether tasks may lend their buffers: only with a thread to write them (set before the
     * tasks are inserted). */
    bool lend;
    /* Set before the tasks are inserted (stage_plan): whether blocks are placed for direct
     * writes (see checkpoint_async.c). */
    bool aligned;
    /* Set when the file is open (stage_open, then stage_opened; an asynchronous checkpoint's
     * tasks may run before): 1 open, -1 the opening failed, 0 not yet; /data's offset in the
     * file; "<path>.tmp" opened for buffered writes (bfd: the tasks' and the ends of direct
     * writes) and with O_DIRECT (dfd: the thread's, -1 when not wanted or once the file
     * system refused). */
    int opened;
    pthread_cond_t opened_cond;
    uint64_t data_off;
    int dfd, bfd;
};

/* Local, before any task stages a block: whether copies are placed for direct writes, for a
 * /data of total bytes (direct writes where the file system allows them and DAGR_CKPT_DIRECT
 * is not 0). */
void stage_plan(stage_t *st, uint64_t total);
/* Local: opens "<path>.tmp" for writing /data, which starts at data_off in it (also with
 * O_DIRECT when stage_plan said so and data_off allows it). */
dagr_status_t stage_open(stage_t *st, const char *tmp, uint64_t data_off);
/* Local: the opening's outcome, for the tasks that wait for it (stage_wait_opened). */
void stage_opened(stage_t *st, bool ok);
/* Waits until the file is open or its opening failed; whether it is open. Any thread. */
bool stage_wait_opened(stage_t *st);
void stage_close(stage_t *st);
/* A task's own write of its handle's extent (packed, n bytes): buffered. Any thread. */
dagr_status_t stage_write_extent(stage_t *st, const ckpt_args_t *a, const void *p, size_t n,
                                 int worker);

/* The task's handle lent to the thread, which writes it and then completes the task; false
 * when it cannot be (not packed, not placed for a direct write, no thread, or not deferred):
 * the task copies it then. */
bool stage_lend(stage_t *st, const ckpt_args_t *a, const dagr_task_view_t *t, size_t n);
/* A copy of the task's handle for the thread; false when over the cap or out of memory. */
bool stage_put(stage_t *st, const ckpt_args_t *a, const void *buf, size_t ld, size_t n);
/* Every staged block not taken yet (a list through next), once STAGE_BATCH bytes are there,
 * or lent blocks are and no block came within ms milliseconds, or, with ms == 0, at once;
 * NULL when no batch came within ms milliseconds. The thread's only. */
staged_t *stage_take_all(stage_t *st, long ms);

/* Reads bytes [off, off + n) of /data into buf through HDF5 (resume). Any thread. */
dagr_status_t ckpt_read_extent(const ckpt_args_t *a, void *buf, size_t n, int worker);
/* Copies between the packed column-major block p and buf with leading dimension ld. */
void ckpt_repack(const ckpt_args_t *a, void *p, void *buf, size_t ld, bool pack);
/* Collective: one task per handle with contents, on its owner (see checkpoint.c). */
dagr_status_t ckpt_insert_extents(dagr_ctx_t *ctx, const layout_t *L, hid_t data, bool write,
                                  uint64_t *sums, atomic_long *written, atomic_long *ended,
                                  long *local, stage_t *stage, const char *path);
/* Rank 0, under h5_enter: reads the attributes (DAGR_ERR_FORMAT: not a dagr checkpoint). */
dagr_status_t ckpt_read_attrs(hid_t file, const char *path, int64_t v[NATTRS]);

/* ------------------------------------------------------------------------------------------
 * Checkpoint, synchronous and asynchronous
 *
 * Both forms begin the same way (ckpt_prepare: the checks and the layout; ckpt_open: rank 0
 * lays out "<path>.tmp", every rank opens it; one write task per handle) and end the same way
 * (ckpt_end: the checksums to rank 0, every rank's fsync, the table, rank 0's close and
 * rename). dagr_checkpoint does it all on the main thread and waits in between.
 * dagr_checkpoint_async does only the checks (so that errors in the arguments come back at
 * once) and the tasks on the main thread, and gives the rest to a thread of its own on every
 * rank, which opens the file, writes the staged copies, waits for that rank's write tasks to
 * complete (ctx_spawn_counted counts them, whether they ran or were skipped for a failed
 * input) and then ends the file, over a communicator of its own; the main thread joins it at
 * the next wait (the context's pending work, lib/module.h). Each collective on the main
 * thread waits for the slowest rank's main thread, which the backlog may hold for a few
 * sweeps: seven of them there took 5-54 ms a checkpoint, while the workers ran out of tasks
 * (2 ranks, stencil sweeps, 2026-12-05). The waits for the other ranks sleep (patient): the
 * workers compute on the same cores.
 *
 * Only rank 0 uses HDF5 for a checkpoint, and never collectively.
 * ---------------------------------------------------------------------------------------- */

typedef struct ckpt {
    layout_t L;
    char *tmp, *path;
    hid_t file, table, data;
    uint64_t *sums;      /* this rank's checksums (the others' slots stay 0) */
    long local;          /* write tasks on this rank */
    atomic_long written; /* of them, those that succeeded */
    atomic_long ended;   /* of them, those that completed in any way */
    /* Asynchronous: the copies its tasks staged, a failure writing one, the thread that
     * writes them and ends the file, its communicator, and what it found. */
    stage_t stage; /* cap 0 (synchronous, or under a memory limit): nothing is staged */
    dagr_status_t werr;
    char wmsg[DAGR_ERRMSG_MAX];
    pthread_t thread;
    bool threaded;
    bool inserted; /* the call has inserted the tasks (under stage.lock; inserted_cond) */
    pthread_cond_t inserted_cond;
    bool patient;  /* asynchronous: waits for the other ranks sleep (ctx_wait_patient) */
    atomic_int go; /* 1: go on; -1: stop writing at once, and no more MPI */
    MPI_Comm comm; /* asynchronous: its own (MPI_Comm_idup, request dup) */
    MPI_Request dup;
    int64_t ranks, tasks; /* the root attributes, as at the call */
    dagr_status_t status;
    char msg[DAGR_ERRMSG_MAX];
} ckpt_t;

void ckpt_free(ckpt_t *ck);
/* Collective over comm: agrees on s (its message is the calling thread's last error); an
 * asynchronous checkpoint's waits sleep. */
dagr_status_t ckpt_agree(const ckpt_t *ck, MPI_Comm comm, dagr_status_t s);
/* Collective: checks the path (rank 0: that it holds no file other than a checkpoint), lists
 * the handles and lays out /data, without the file; async: with staging and patient waits.
 * On failure nothing is left. */
dagr_status_t ckpt_prepare(dagr_ctx_t *ctx, const char *path, bool async, ckpt_t **out);
/* Collective over comm: rank 0 creates "<path>.tmp" and lays it out, every rank opens it;
 * mine: this rank's failure before (which fails it everywhere, with its message). */
dagr_status_t ckpt_open(ckpt_t *ck, MPI_Comm comm, dagr_status_t mine);
/* Collective: ckpt_prepare, ckpt_open and the write tasks (the synchronous form's start). */
dagr_status_t ckpt_begin(dagr_ctx_t *ctx, const char *path, ckpt_t **out);
/* Collective over comm, once no task uses the file: ends it (see checkpoint.c). */
dagr_status_t ckpt_end(ckpt_t *ck, MPI_Comm comm, dagr_status_t s);
/* The status of this rank's writes once they all completed. */
dagr_status_t ckpt_writes_status(ckpt_t *ck);
/* Writes what this rank's tasks staged, until they have all completed (with nothing staged:
 * waits for them). */
void ckpt_write_staged(ckpt_t *ck);

#endif
