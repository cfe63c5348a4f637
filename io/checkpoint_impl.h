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
/* Collective: the live handles and their sizes (waits when some size is a task's). */
dagr_status_t ckpt_layout_collect(dagr_ctx_t *ctx, layout_t *L);
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
    stage_t *stage; /* write, asynchronous: where the task may leave a copy to be written */
    hid_t data;     /* the /data dataset */
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
 * Staging, for asynchronous checkpoints: a write task copies its handle into a block of its
 * own (a memcpy) and leaves the slow part, the checksum and the write (direct where the file
 * system allows: checkpoint_async.c), to the checkpoint's thread. The handle is then free
 * for the next task that overwrites it after the copy rather than after the write, and the
 * workers do not spend their time in the file system. The copies in flight are bounded
 * (cap); past it, a task writes its handle itself.
 * ---------------------------------------------------------------------------------------- */

typedef struct staged {
    struct staged *next;
    ckpt_args_t a;
    void *p; /* n bytes, packed column-major; placed in raw for a direct write */
    void *raw;
    size_t n;
} staged_t;

struct stage {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* a block came */
    staged_t *head, *tail;
    size_t bytes, cap; /* staged and not yet written; at most cap */
    /* Direct writes (see checkpoint_async.c): whether blocks are placed for them and
     * /data's offset in the file, set before the tasks are inserted; "<path>.tmp" opened
     * with O_DIRECT and without, the writing thread's, -1 once the file system refused. */
    bool aligned;
    uint64_t data_off;
    int dfd, bfd;
};

/* Opens "<path>.tmp" for the thread's direct writes of the staged blocks (/data's storage
 * must be allocated). Nothing changes when the file system refuses: blocks then go through
 * HDF5. */
void stage_open_direct(stage_t *st, const char *tmp, hid_t data);
void stage_close_direct(stage_t *st);

/* A copy of the task's handle for the thread; false when over the cap or out of memory. */
bool stage_put(stage_t *st, const ckpt_args_t *a, const void *buf, size_t ld, size_t n);
/* The next staged block, or NULL when none came within ms milliseconds. */
staged_t *stage_take(stage_t *st, long ms);

/* Writes or reads bytes [off, off + n) of /data from / into buf. Any thread. */
dagr_status_t ckpt_move_extent(const ckpt_args_t *a, void *buf, size_t n, bool write, int worker);
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
 * Both forms begin the same way (ckpt_begin: lay out "<path>.tmp" and insert one write task
 * per handle) and end the same way (ckpt_end: the checksums to rank 0, the table, every
 * rank's flush, the close and the rename). dagr_checkpoint waits in between, on the main
 * thread. dagr_checkpoint_async gives the end to a thread of its own on every rank, which
 * waits for that rank's write tasks to complete (ctx_spawn_counted counts them, whether they
 * ran or were skipped for a failed input) and then ends the file collectively over a
 * communicator of its own; the main thread joins it at the next wait (the context's pending
 * work, lib/module.h).
 *
 * HDF5's collective calls of that thread hold the HDF5 lock while they wait for the other
 * ranks. That is safe because every io/ call that uses HDF5 collectively (save, load,
 * checkpoint, resume) first ends the pending checkpoint, and the only HDF5 calls of tasks
 * while the thread waits are that checkpoint's own writes, which have all completed by then.
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
    atomic_int go; /* 0: wait for the start; 1: go; -1: stop at once, no MPI */
    MPI_Comm comm;
    dagr_status_t status;
    char msg[DAGR_ERRMSG_MAX];
} ckpt_t;

void ckpt_free(ckpt_t *ck);
/* Collective over comm: agrees on s (its message is the calling thread's last error); the
 * asynchronous checkpoint's thread waits asleep. */
dagr_status_t ckpt_agree(const ckpt_t *ck, MPI_Comm comm, dagr_status_t s);
/* Collective: checks the path, lays out "<path>.tmp" and inserts the write tasks. */
dagr_status_t ckpt_begin(dagr_ctx_t *ctx, const char *path, bool async, ckpt_t **out);
/* Collective over comm, once no task uses the file: ends it (see checkpoint.c). */
dagr_status_t ckpt_end(ckpt_t *ck, MPI_Comm comm, dagr_status_t s);
/* The status of this rank's writes once they all completed. */
dagr_status_t ckpt_writes_status(ckpt_t *ck);
/* Writes what this rank's tasks staged, until they have all completed (with nothing staged:
 * waits for them). */
void ckpt_write_staged(ckpt_t *ck);

#endif
