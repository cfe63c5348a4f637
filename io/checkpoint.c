/* Checkpoint and resume: dagr_checkpoint and dagr_resume (see include/dagr/io.h).
 *
 * A checkpoint holds the latest contents of every live data handle of the context (the tiles
 * of every DArray, plain and attached handles; not queues), in creation order. Restoring
 * matches handles by that order and by shape, not by owner, so a run may resume on another
 * number of ranks or another grid as long as it creates the same data in the same order.
 *
 * The file (format 1) is ordinary HDF5:
 *   /            attributes dagr_checkpoint (the format, 1), ranks (that wrote it), tasks
 *                (inserted before it), handles (how many)
 *   /handles     handles x 4 uint64: rows, cols, element size, checksum of the contents; a
 *                handle whose size tasks decide (dagr_data_create_dynamic) is bytes, 1, 0
 *                (element size 0 marks it; an empty fixed-size handle is 0, 0, 0)
 *   /data        uint8: every handle's contents, column-major and packed, one after the other
 * It is written as "<path>.tmp" and renamed to path only once complete and flushed (every
 * rank's MPI_File_sync, then fsync and rename on rank 0, then fsync of the directory): a crash
 * or a failure while writing leaves the previous checkpoint as it was. Each handle is one task
 * on its owner, which computes the checksum and writes its extent of /data with an independent
 * H5Dwrite; rank 0 writes the table once the checksums are in. dagr_checkpoint_async inserts
 * the same tasks and returns: the end (checksums, table, flush, rename) is the context's
 * pending action (lib/module.h), run collectively once the writes are done. On resume each
 * handle is one task on its (new) owner that reads its extent into the handle and checks the
 * checksum. */
#include "io_impl.h"

#include <stdatomic.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CKPT_FORMAT 1
#define TABLE_COLS 4 /* rows, cols, elsize, checksum */

/* ------------------------------------------------------------------------------------------
 * Checksums
 * ---------------------------------------------------------------------------------------- */

/* A 64-bit hash of n bytes, four independent lanes of 8-byte words so that it runs at memory
 * speed; not cryptographic, meant to catch torn and corrupted files. */
static uint64_t checksum(const void *p, size_t n) {
    const unsigned char *b = p;
    const uint64_t k = 0x9e3779b97f4a7c15ull;
    uint64_t h[4] = {0x243f6a8885a308d3ull, 0x13198a2e03707344ull, 0xa4093822299f31d0ull,
                     0x082efa98ec4e6c89ull};
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        for (int l = 0; l < 4; l++) {
            uint64_t w;
            memcpy(&w, b + i + 8 * l, 8);
            h[l] = (h[l] ^ w) * k;
            h[l] ^= h[l] >> 29;
        }
    }
    uint64_t tail[4] = {0, 0, 0, 0};
    memcpy(tail, b + i, n - i);
    uint64_t x = n;
    for (int l = 0; l < 4; l++) {
        h[l] = ((h[l] ^ tail[l]) * k) ^ (h[l] >> 29);
        x = ((x ^ h[l]) * k) ^ (x >> 31);
    }
    return x ^ (x >> 29);
}

/* ------------------------------------------------------------------------------------------
 * The live handles, in creation order
 * ---------------------------------------------------------------------------------------- */

typedef struct layout {
    dagr_data_t **h; /* live handles (queues left out), by creation number */
    int64_t n;
    uint64_t *table; /* n x TABLE_COLS */
    uint64_t *off;   /* extent of handle k in /data: [off[k], off[k] + bytes) */
    uint64_t total;
} layout_t;

static void layout_free(layout_t *L) {
    free(L->h);
    free(L->table);
    free(L->off);
    memset(L, 0, sizeof *L);
}

static dagr_status_t layout_handles(dagr_ctx_t *ctx, layout_t *L);
static void layout_rows(layout_t *L);
static void layout_offsets(layout_t *L);

/* Bytes of a table row's handle. */
static uint64_t row_bytes(const uint64_t *row) {
    return row[2] ? row[0] * row[1] * row[2] : row[0];
}

/* Collective (every rank finds the same). The sizes of handles whose size tasks decide are
 * known only once their writers ran: with any such handle, this waits and agrees on them.
 * Checksums are left 0. */
static dagr_status_t layout_collect(dagr_ctx_t *ctx, layout_t *L) {
    dagr_status_t s = da_agree(ctx, layout_handles(ctx, L));
    if (s != DAGR_OK) return s;
    bool dynamic = false;
    for (int64_t k = 0; k < L->n; k++)
        dynamic |= data_shape(L->h[k]).dynamic;
    if (dynamic) s = dagr_wait_all(ctx);
    /* off serves as the sizes' room until the offsets go in. */
    if (s == DAGR_OK) s = data_sizes_agree(ctx, L->h, (size_t)L->n, L->off);
    if (s != DAGR_OK) {
        layout_free(L);
        return s;
    }
    layout_rows(L);
    return DAGR_OK;
}

/* Local: the table's shapes from each handle's size in L->off[k], and the offsets in /data
 * (which replace the sizes). */
static void layout_rows(layout_t *L) {
    for (int64_t k = 0; k < L->n; k++) {
        data_shape_t sh = data_shape(L->h[k]);
        uint64_t *row = L->table + k * TABLE_COLS, bytes = L->off[k];
        row[0] = sh.dynamic ? bytes : bytes ? sh.rows : 0;
        row[1] = sh.dynamic ? 1 : bytes ? sh.cols : 0;
        row[2] = sh.dynamic ? 0 : bytes ? sh.elsize : 0;
    }
    layout_offsets(L);
}

/* Local: the offsets in /data from the table's shapes. */
static void layout_offsets(layout_t *L) {
    L->total = 0;
    for (int64_t k = 0; k < L->n; k++) {
        L->off[k] = L->total;
        L->total += row_bytes(L->table + k * TABLE_COLS);
    }
}

/* Local: the live handles (every rank finds the same), their table and offsets allocated. */
static dagr_status_t layout_handles(dagr_ctx_t *ctx, layout_t *L) {
    memset(L, 0, sizeof *L);
    DAGR_TRY(ctx_live_data(ctx, &L->h, &L->n));
    size_t n = (size_t)L->n ? (size_t)L->n : 1;
    L->table = calloc(n * TABLE_COLS, sizeof *L->table);
    L->off = malloc(n * sizeof *L->off);
    if (!L->table || !L->off) {
        layout_free(L);
        return DAGR_ERR(DAGR_ERR_NOMEM, "cannot allocate the table of %lld data handles",
                        (long long)n);
    }
    return DAGR_OK;
}

/* ------------------------------------------------------------------------------------------
 * The tasks: one handle's extent of /data
 * ---------------------------------------------------------------------------------------- */

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

/* Writes or reads bytes [off, off + n) of /data from / into buf. Any thread. */
static dagr_status_t move_extent(const ckpt_args_t *a, void *buf, size_t n, bool write,
                                 int worker) {
    hsize_t start = a->off, count = n;
    dagr_status_t s = DAGR_OK;
    h5_enter();
    hid_t fspace = H5Dget_space(a->data);
    hid_t mspace = H5Screate_simple(1, &count, NULL);
    herr_t e = fspace >= 0 && mspace >= 0 ? 0 : -1;
    if (e >= 0) e = H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &start, NULL, &count, NULL);
    if (e >= 0) {
        int64_t t0 = trace_io_begin(a->ctx);
        if (write)
            e = H5Dwrite(a->data, H5T_NATIVE_UCHAR, mspace, fspace, H5P_DEFAULT, buf);
        else
            e = H5Dread(a->data, H5T_NATIVE_UCHAR, mspace, fspace, H5P_DEFAULT, buf);
        trace_io_end(a->ctx, t0, write ? TRACE_IO_CKPT_WRITE : TRACE_IO_CKPT_READ, n, worker);
    }
    if (e < 0)
        s = h5_error(DAGR_ERR_IO, "cannot %s data handle %lld (%zu bytes) %s checkpoint '%s'",
                     write ? "write" : "read", (long long)a->k, n, write ? "to" : "from", a->path);
    if (mspace >= 0) H5Sclose(mspace);
    if (fspace >= 0) H5Sclose(fspace);
    h5_leave();
    return s;
}

/* Copies between the packed column-major block p and buf with leading dimension ld. */
static void repack(const ckpt_args_t *a, void *p, void *buf, size_t ld, bool pack) {
    size_t col = a->rows * a->elsize, stride = ld * a->elsize;
    for (size_t j = 0; j < a->cols; j++) {
        if (pack)
            memcpy((char *)p + j * col, (char *)buf + j * stride, col);
        else
            memcpy((char *)buf + j * stride, (char *)p + j * col, col);
    }
}

/* ------------------------------------------------------------------------------------------
 * Staging, for asynchronous checkpoints: a write task copies its handle into a block of its
 * own (a memcpy) and leaves the slow part, the checksum and the H5Dwrite, to the checkpoint's
 * thread. The handle is then free for the next task that overwrites it after the copy rather
 * than after the write, and the workers do not spend their time in the file system. The
 * copies in flight are bounded (cap); past it, a task writes its handle itself.
 * ---------------------------------------------------------------------------------------- */

typedef struct staged {
    struct staged *next;
    ckpt_args_t a;
    void *p; /* n bytes, packed column-major */
    size_t n;
} staged_t;

struct stage {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* a block came */
    staged_t *head, *tail;
    size_t bytes, cap; /* staged and not yet written; at most cap */
    long copies;       /* blocks staged in all (for the benchmark's curiosity: none read it) */
};

/* A copy of the task's handle, handed to the thread; false when over the cap or out of memory
 * (the task then writes the handle itself). */
static bool stage_put(stage_t *st, const ckpt_args_t *a, const void *buf, size_t ld, size_t n) {
    pthread_mutex_lock(&st->lock);
    bool room = st->bytes + n <= st->cap;
    if (room) st->bytes += n;
    pthread_mutex_unlock(&st->lock);
    if (!room) return false;
    staged_t *b = malloc(sizeof *b);
    void *p = b ? malloc(n) : NULL;
    if (!p) {
        free(b);
        pthread_mutex_lock(&st->lock);
        st->bytes -= n;
        pthread_mutex_unlock(&st->lock);
        return false;
    }
    if (ld != a->rows)
        repack(a, p, (void *)buf, ld, true);
    else
        memcpy(p, buf, n);
    *b = (staged_t){.next = NULL, .a = *a, .p = p, .n = n};
    pthread_mutex_lock(&st->lock);
    if (st->tail)
        st->tail->next = b;
    else
        st->head = b;
    st->tail = b;
    st->copies++;
    pthread_cond_signal(&st->cond);
    pthread_mutex_unlock(&st->lock);
    return true;
}

/* The next staged block, or NULL when none came within ms milliseconds. */
static staged_t *stage_take(stage_t *st, long ms) {
    pthread_mutex_lock(&st->lock);
    if (!st->head && ms > 0) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += ms * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&st->cond, &st->lock, &until);
    }
    staged_t *b = st->head;
    if (b) {
        st->head = b->next;
        if (!st->head) st->tail = NULL;
    }
    pthread_mutex_unlock(&st->lock);
    return b;
}

/* Writes a staged block (checksum, then its extent) and frees it. */
static dagr_status_t stage_write(stage_t *st, staged_t *b) {
    *b->a.sum = checksum(b->p, b->n);
    dagr_status_t s = move_extent(&b->a, b->p, b->n, true, -1);
    if (s == DAGR_OK) atomic_fetch_add(b->a.written, 1);
    pthread_mutex_lock(&st->lock);
    st->bytes -= b->n;
    pthread_mutex_unlock(&st->lock);
    free(b->p);
    free(b);
    return s;
}

/* buf 0: the handle (read for a checkpoint, written on resume). */
static dagr_task_result_t extent_io(const dagr_task_view_t *t, bool write) {
    const ckpt_args_t *a = t->args;
    if (!write && a->dynamic && dagr_task_resize(t, 0, a->rows) != DAGR_OK)
        return DAGR_TASK_ERROR; /* the task fails with resize's reason */
    size_t n = t->bytes[0];
    if (n == 0) { /* an empty version of such a handle: nothing to move */
        if (write) atomic_fetch_add(a->written, 1);
        return DAGR_TASK_DONE;
    }
    if (write && a->stage && stage_put(a->stage, a, t->buf[0], t->ld[0], n))
        return DAGR_TASK_DONE; /* the thread writes it, and counts it */
    bool strided = t->ld[0] != a->rows;
    void *p = strided ? malloc(n) : t->buf[0];
    if (!p) {
        dagr_task_fail(t, DAGR_ERR_NOMEM, "cannot allocate %zu bytes to pack data handle %lld", n,
                       (long long)a->k);
        return DAGR_TASK_ERROR;
    }
    if (write && strided) repack(a, p, t->buf[0], t->ld[0], true);
    if (write) *a->sum = checksum(p, n);
    dagr_status_t s = move_extent(a, p, n, write, t->worker);
    if (s == DAGR_OK && !write) {
        if (checksum(p, n) != a->want)
            s = DAGR_ERR(DAGR_ERR_FORMAT,
                         "checkpoint '%s' is damaged: the contents of data handle %lld do not "
                         "match their checksum",
                         a->path, (long long)a->k);
        else if (strided)
            repack(a, p, t->buf[0], t->ld[0], false);
    }
    if (strided) free(p);
    if (s != DAGR_OK) {
        dagr_task_fail(t, s, "%s", dagr_last_error());
        return DAGR_TASK_ERROR;
    }
    if (write) atomic_fetch_add(a->written, 1);
    return DAGR_TASK_DONE;
}

static dagr_task_result_t k_write(const dagr_task_view_t *t) {
    return extent_io(t, true);
}
static dagr_task_result_t k_read(const dagr_task_view_t *t) {
    return extent_io(t, false);
}

static const dagr_kernel_t write_kernel = {.name = "checkpoint_write", .cpu = k_write};
static const dagr_kernel_t read_kernel = {.name = "checkpoint_read", .cpu = k_read};

/* One task per handle with contents, on its owner, and on resume one per handle whose size
 * tasks decide even when empty (its size is restored too). sums: this rank's checksums
 * (write). */
static dagr_status_t insert_extents(dagr_ctx_t *ctx, const layout_t *L, hid_t data, bool write,
                                    uint64_t *sums, atomic_long *written, atomic_long *ended,
                                    long *local, stage_t *stage, const char *path) {
    for (int64_t k = 0; k < L->n; k++) {
        dagr_data_t *h = L->h[k];
        const uint64_t *row = L->table + k * TABLE_COLS;
        if (!row_bytes(row) && (write || !data_shape(h).dynamic)) continue;
        ckpt_args_t a = {.ctx = ctx,
                         .stage = stage,
                         .data = data,
                         .off = L->off[k],
                         .rows = row[0],
                         .cols = row[1],
                         .elsize = row[2],
                         .sum = sums ? sums + k : NULL,
                         .written = written,
                         .want = row[3],
                         .k = k,
                         .dynamic = data_shape(h).dynamic,
                         .path = path};
        dagr_task_opts_t o;
        dagr_task_opts_init(&o);
        o.rank = data_shape(h).owner;
        if (local && o.rank == dagr_rank(ctx)) (*local)++;
        dagr_access_t acc = {h, write ? DAGR_READ : DAGR_WRITE};
        DAGR_TRY(ctx_spawn_counted(ctx, write ? &write_kernel : &read_kernel, &a, sizeof a, 1, &acc,
                                   &o, ended));
    }
    return DAGR_OK;
}

/* ------------------------------------------------------------------------------------------
 * The file
 * ---------------------------------------------------------------------------------------- */

static const char *const ATTRS[] = {"dagr_checkpoint", "ranks", "tasks", "handles"};
enum { A_FORMAT, A_RANKS, A_TASKS, A_HANDLES, NATTRS };

/* Collective, under h5_enter: the attributes (every rank writes the same values, as parallel
 * HDF5 requires) and the two datasets. */
static dagr_status_t create_layout(dagr_ctx_t *ctx, const layout_t *L, hid_t file, const char *tmp,
                                   hid_t *table, hid_t *data) {
    int64_t v[NATTRS] = {CKPT_FORMAT, dagr_size(ctx), (int64_t)ctx_tasks_inserted(ctx), L->n};
    hid_t scalar = H5Screate(H5S_SCALAR);
    herr_t e = scalar >= 0 ? 0 : -1;
    for (int i = 0; i < NATTRS && e >= 0; i++) {
        hid_t at = H5Acreate2(file, ATTRS[i], H5T_STD_I64LE, scalar, H5P_DEFAULT, H5P_DEFAULT);
        e = at >= 0 ? H5Awrite(at, H5T_NATIVE_INT64, &v[i]) : -1;
        if (at >= 0) H5Aclose(at);
    }
    if (scalar >= 0) H5Sclose(scalar);
    hsize_t tdims[2] = {(hsize_t)L->n, TABLE_COLS}, ddims = L->total;
    hid_t tspace = H5Screate_simple(2, tdims, NULL), dspace = H5Screate_simple(1, &ddims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (e >= 0 && (tspace < 0 || dspace < 0 || dcpl < 0)) e = -1;
    /* Every byte of /data is written by a task: writing the fill value first would double
     * the bytes written. */
    if (e >= 0) e = H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER);
    if (e >= 0)
        *table = H5Dcreate2(file, "handles", H5T_STD_U64LE, tspace, H5P_DEFAULT, H5P_DEFAULT,
                            H5P_DEFAULT);
    if (e >= 0 && *table >= 0)
        *data = H5Dcreate2(file, "data", H5T_STD_U8LE, dspace, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (e >= 0 && (*table < 0 || *data < 0)) e = -1;
    if (dcpl >= 0) H5Pclose(dcpl);
    if (tspace >= 0) H5Sclose(tspace);
    if (dspace >= 0) H5Sclose(dspace);
    return e >= 0 ? DAGR_OK : h5_error(DAGR_ERR_IO, "cannot lay out checkpoint '%s'", tmp);
}

/* Rank 0, under h5_enter: the table, with the checksums of every rank. */
static dagr_status_t write_table(hid_t table, const layout_t *L, const char *tmp) {
    if (L->n == 0) return DAGR_OK;
    if (H5Dwrite(table, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, L->table) < 0)
        return h5_error(DAGR_ERR_IO, "cannot write the table of checkpoint '%s'", tmp);
    return DAGR_OK;
}

/* Rank 0: makes the complete "<path>.tmp" the checkpoint: fsync, rename, fsync of the
 * directory (so that the rename itself survives a crash). */
static dagr_status_t commit(const char *tmp, const char *path) {
    int fd = open(tmp, O_RDONLY);
    if (fd < 0 || fsync(fd) != 0) {
        dagr_status_t s = DAGR_ERR(DAGR_ERR_IO, "cannot flush '%s' to disk: %m", tmp);
        if (fd >= 0) close(fd);
        return s;
    }
    close(fd);
    if (rename(tmp, path) != 0)
        return DAGR_ERR(DAGR_ERR_IO, "cannot rename '%s' to '%s': %m", tmp, path);
    char *copy = strdup(path);
    DAGR_CHECK(copy, DAGR_ERR_NOMEM, "cannot allocate a path");
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    dagr_status_t s = DAGR_OK;
    if (dfd < 0 || fsync(dfd) != 0)
        s = DAGR_ERR(DAGR_ERR_IO, "'%s' is written, but its directory cannot be flushed: %m", path);
    if (dfd >= 0) close(dfd);
    free(copy);
    return s;
}

/* Rank 0, under h5_enter: reads the attributes; DAGR_ERR_FORMAT when one is missing (not a
 * dagr checkpoint) or the format is not ours. */
static dagr_status_t read_attrs(hid_t file, const char *path, int64_t v[NATTRS]) {
    for (int i = 0; i < NATTRS; i++) {
        htri_t there = H5Aexists(file, ATTRS[i]);
        if (there < 0) return h5_error(DAGR_ERR_IO, "cannot read '%s'", path);
        if (there == 0)
            return DAGR_ERR(DAGR_ERR_FORMAT,
                            "'%s' is an HDF5 file but not a dagr checkpoint (it has no "
                            "attribute '%s')",
                            path, ATTRS[i]);
        hid_t at = H5Aopen(file, ATTRS[i], H5P_DEFAULT);
        herr_t e = at >= 0 ? H5Aread(at, H5T_NATIVE_INT64, &v[i]) : -1;
        if (at >= 0) H5Aclose(at);
        if (e < 0)
            return h5_error(DAGR_ERR_FORMAT, "cannot read attribute '%s' of '%s'", ATTRS[i], path);
    }
    if (v[A_FORMAT] != CKPT_FORMAT)
        return DAGR_ERR(DAGR_ERR_FORMAT,
                        "'%s' is a dagr checkpoint of format %lld; this dagr reads format %d", path,
                        (long long)v[A_FORMAT], CKPT_FORMAT);
    if (v[A_HANDLES] < 0)
        return DAGR_ERR(DAGR_ERR_FORMAT, "checkpoint '%s' is damaged: it claims %lld handles", path,
                        (long long)v[A_HANDLES]);
    return DAGR_OK;
}

/* Rank 0: whether path is a dagr checkpoint that a new one may replace. */
static dagr_status_t check_replaceable(const char *path) {
    h5_enter();
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    dagr_status_t s;
    if (file < 0) {
        s = h5_error(DAGR_ERR_IO, "cannot open '%s'", path);
    } else {
        s = H5Aexists(file, ATTRS[A_FORMAT]) > 0
                ? DAGR_OK
                : DAGR_ERR(DAGR_ERR_FORMAT,
                           "'%s' exists and is an HDF5 file but not a dagr checkpoint "
                           "(dagr_checkpoint leaves it as it is)",
                           path);
        H5Fclose(file);
    }
    h5_leave();
    return s;
}

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
    stage_t stage;
    bool staging;
    dagr_status_t werr;
    char wmsg[DAGR_ERRMSG_MAX];
    pthread_t thread;
    bool threaded;
    atomic_int go; /* 0: wait for the start; 1: go; -1: stop at once, no MPI */
    MPI_Comm comm;
    dagr_status_t status;
    char msg[DAGR_ERRMSG_MAX];
} ckpt_t;

static void ckpt_free(ckpt_t *ck) {
    if (ck->staging) {
        for (staged_t *b; (b = stage_take(&ck->stage, 0));) {
            free(b->p);
            free(b);
        }
        pthread_mutex_destroy(&ck->stage.lock);
        pthread_cond_destroy(&ck->stage.cond);
    }
    layout_free(&ck->L);
    free(ck->tmp);
    free(ck->path);
    free(ck->sums);
    free(ck);
}

static dagr_status_t agree(MPI_Comm comm, dagr_status_t s) {
    return ctx_agree(comm, s, s == DAGR_OK ? "" : dagr_last_error());
}

/* Collective over comm, once no task uses the file: the checksums, the table and every
 * rank's flush when `s` is DAGR_OK; then the close, and the rename or the removal of
 * "<path>.tmp". Keeps `s` and its message when it is not DAGR_OK. Frees nothing. */
static dagr_status_t ckpt_end(ckpt_t *ck, MPI_Comm comm, dagr_status_t s) {
    layout_t *L = &ck->L;
    int rank = 0;
    MPI_Comm_rank(comm, &rank);
    if (s == DAGR_OK && L->n) {
        int e = MPI_Reduce(rank ? ck->sums : MPI_IN_PLACE, ck->sums, (int)L->n, MPI_UINT64_T,
                           MPI_BOR, 0, comm);
        if (e != MPI_SUCCESS) s = dagr_error_mpi(e, __FILE__, __LINE__, "MPI_Reduce");
        for (int64_t k = 0; k < L->n; k++)
            L->table[k * TABLE_COLS + 3] = ck->sums[k];
        if (s == DAGR_OK && rank == 0) {
            h5_enter();
            s = write_table(ck->table, L, ck->tmp);
            h5_leave();
        }
        s = agree(comm, s);
    }
    if (s == DAGR_OK) {
        /* Collective: every rank's MPI_File_sync, so that the data are on disk before the
         * rename. */
        h5_enter();
        if (H5Fflush(ck->file, H5F_SCOPE_GLOBAL) < 0)
            s = h5_error(DAGR_ERR_IO, "cannot flush checkpoint '%s'", ck->tmp);
        h5_leave();
        s = agree(comm, s);
    }
    char msg[DAGR_ERRMSG_MAX];
    snprintf(msg, sizeof msg, "%s", dagr_last_error());
    /* Collective: the close (a failed close means the file's last data may be missing). */
    dagr_status_t c = DAGR_OK;
    h5_enter();
    if (ck->table >= 0 && H5Dclose(ck->table) < 0)
        c = h5_error(DAGR_ERR_IO, "cannot close a dataset of '%s'", ck->tmp);
    if (ck->data >= 0 && H5Dclose(ck->data) < 0 && c == DAGR_OK)
        c = h5_error(DAGR_ERR_IO, "cannot close a dataset of '%s'", ck->tmp);
    if (ck->file >= 0 && H5Fclose(ck->file) < 0 && c == DAGR_OK)
        c = h5_error(DAGR_ERR_IO, "cannot close '%s'", ck->tmp);
    h5_leave();
    ck->table = ck->data = ck->file = -1;
    c = agree(comm, c);
    if (s == DAGR_OK) s = c;
    if (s == DAGR_OK) {
        s = agree(comm, rank == 0 ? commit(ck->tmp, ck->path) : DAGR_OK);
    } else {
        /* Keep the status and message of the failure; the previous checkpoint is untouched. */
        if (c == DAGR_OK) dagr_error_set_raw(msg);
        if (rank == 0) unlink(ck->tmp);
    }
    return s;
}

/* Collective: checks the path, lays out "<path>.tmp" and inserts the write tasks. On
 * failure nothing is left (no task, no file). */
static dagr_status_t ckpt_begin(dagr_ctx_t *ctx, const char *path, bool async, ckpt_t **out) {
    *out = NULL;
    DAGR_TRY(ctx_usable(ctx));
    DAGR_TRY(io_check_names(ctx, path, NULL, false));
    int exists;
    DAGR_TRY(io_probe_file(ctx, path, "dagr_checkpoint", &exists));
    if (exists) DAGR_TRY(da_agree(ctx, dagr_rank(ctx) == 0 ? check_replaceable(path) : DAGR_OK));

    ckpt_t *ck = calloc(1, sizeof *ck);
    size_t len = strlen(path) + 5;
    if (ck) {
        ck->tmp = malloc(len);
        ck->path = strdup(path);
        ck->file = ck->table = ck->data = -1;
        ck->comm = MPI_COMM_NULL;
        atomic_init(&ck->written, 0);
        atomic_init(&ck->ended, 0);
        atomic_init(&ck->go, 0);
        dagr_job_info_t j;
        /* Staged copies live outside the memory limit: none under one. At most an eighth of
         * the node's memory per node. */
        if (async && dagr_job_info(ctx, &j) == DAGR_OK && j.memory_limit == 0) {
            ck->staging = true;
            pthread_mutex_init(&ck->stage.lock, NULL);
            pthread_cond_init(&ck->stage.cond, NULL);
            ck->stage.cap = j.node_memory / 8 / (size_t)(j.ranks_on_node > 0 ? j.ranks_on_node : 1);
        }
    }
    dagr_status_t s = da_agree(ctx, ck && ck->tmp && ck->path
                                        ? DAGR_OK
                                        : DAGR_ERR(DAGR_ERR_NOMEM, "cannot allocate a checkpoint"));
    if (s != DAGR_OK) {
        if (ck) ckpt_free(ck);
        return s;
    }
    snprintf(ck->tmp, len, "%s.tmp", path);
    s = layout_collect(ctx, &ck->L);
    if (s != DAGR_OK) {
        ckpt_free(ck);
        return s;
    }
    size_t n = (size_t)ck->L.n ? (size_t)ck->L.n : 1;
    ck->sums = calloc(n, sizeof *ck->sums);
    s = da_agree(ctx,
                 ck->sums ? DAGR_OK : DAGR_ERR(DAGR_ERR_NOMEM, "cannot allocate %zu checksums", n));
    if (s == DAGR_OK) s = io_open_file(ctx, ck->tmp, IO_CREATE, &ck->file);
    if (s == DAGR_OK) {
        h5_enter();
        s = create_layout(ctx, &ck->L, ck->file, ck->tmp, &ck->table, &ck->data);
        h5_leave();
        s = da_agree(ctx, s);
    }
    if (s == DAGR_OK) {
        s = insert_extents(ctx, &ck->L, ck->data, true, ck->sums, &ck->written, &ck->ended,
                           &ck->local, ck->staging ? &ck->stage : NULL, ck->tmp);
        /* No task may still use the file at the close: wait for those inserted. */
        if (s != DAGR_OK) (void)dagr_wait_all(ctx);
    }
    if (s != DAGR_OK) {
        s = ckpt_end(ck, ctx_comm(ctx), s);
        ckpt_free(ck);
        return s;
    }
    *out = ck;
    return DAGR_OK;
}

/* Writes what this rank's tasks staged, until they have all completed. The thread's loop,
 * or the main thread's when there is no thread (then after a wait). */
static void write_staged(ckpt_t *ck) {
    while (atomic_load(&ck->go) >= 0) {
        staged_t *b = stage_take(&ck->stage, 2);
        if (!b && atomic_load(&ck->ended) < ck->local) continue;
        /* Every task completed after staging its copy: what is left is all there is. */
        if (!b) b = stage_take(&ck->stage, 0);
        if (!b) return;
        dagr_status_t s = stage_write(&ck->stage, b);
        if (s != DAGR_OK && ck->werr == DAGR_OK) {
            ck->werr = s;
            snprintf(ck->wmsg, sizeof ck->wmsg, "%s", dagr_last_error());
        }
    }
}

/* The status of this rank's writes once they all completed. */
static dagr_status_t writes_status(ckpt_t *ck) {
    if (ck->werr != DAGR_OK) return DAGR_ERR(ck->werr, "%s", ck->wmsg);
    if (atomic_load(&ck->written) == ck->local) return DAGR_OK;
    return DAGR_ERR(DAGR_ERR_TASK,
                    "checkpoint '%s' is not written: %ld of this rank's %ld writes failed, or "
                    "the tasks computing their data did (the previous checkpoint is kept)",
                    ck->path, ck->local - atomic_load(&ck->written), ck->local);
}

dagr_status_t dagr_checkpoint(dagr_ctx_t *ctx, const char *path) {
    DAGR_CHECK(ctx, DAGR_ERR_ARG, "ctx is NULL");
    /* One checkpoint at a time: an asynchronous one still writing ends first. */
    if (ctx_has_pending(ctx)) DAGR_TRY(ctx_run_pending(ctx, DAGR_OK));
    ckpt_t *ck;
    DAGR_TRY(ckpt_begin(ctx, path, false, &ck));
    dagr_status_t s = dagr_wait_all(ctx);
    if (s == DAGR_OK) s = da_agree(ctx, writes_status(ck));
    s = ckpt_end(ck, ctx_comm(ctx), s);
    ckpt_free(ck);
    return s;
}

/* The asynchronous checkpoint's thread: waits for this rank's writes, then ends the file
 * with the other ranks' threads. */
static void *ckpt_thread(void *arg) {
    ckpt_t *ck = arg;
    long nap = 100; /* us, doubling to 5 ms, until the go */
    while (atomic_load(&ck->go) == 0) {
        struct timespec ts = {0, nap * 1000};
        nanosleep(&ts, NULL);
        nap = nap < 5000 ? nap * 2 : 5000;
    }
    if (ck->staging) write_staged(ck);
    nap = 100; /* a write is a tile: the wait is short */
    while (atomic_load(&ck->go) > 0 && atomic_load(&ck->ended) < ck->local) {
        struct timespec ts = {0, nap * 1000};
        nanosleep(&ts, NULL);
        nap = nap < 5000 ? nap * 2 : 5000;
    }
    if (atomic_load(&ck->go) < 0) {
        ck->status = DAGR_ERR(DAGR_ERR_STATE, "checkpoint '%s' abandoned", ck->path);
    } else {
        ck->status = ckpt_end(ck, ck->comm, agree(ck->comm, writes_status(ck)));
        MPI_Comm_free(&ck->comm);
    }
    snprintf(ck->msg, sizeof ck->msg, "%s", dagr_last_error());
    return NULL;
}

/* The pending work's end, at the next wait or checkpoint call: joins the thread. */
static dagr_status_t ckpt_finish(dagr_ctx_t *ctx, void *arg, dagr_status_t waited) {
    (void)waited; /* the writes' failures are the wait's too; the file's end is its own */
    ckpt_t *ck = arg;
    if (ck->threaded) {
        pthread_join(ck->thread, NULL);
    } else {
        /* No thread could be started: the main thread waits, writes and ends it. */
        dagr_status_t s = dagr_wait_all(ctx);
        if (ck->staging) write_staged(ck);
        if (s == DAGR_OK) s = da_agree(ctx, writes_status(ck));
        ck->status = ckpt_end(ck, ctx_comm(ctx), s);
        snprintf(ck->msg, sizeof ck->msg, "%s", dagr_last_error());
    }
    dagr_status_t s = ck->status;
    if (s != DAGR_OK) dagr_error_set_raw(ck->msg);
    ckpt_free(ck);
    return s;
}

static void ckpt_drop(void *arg) {
    ckpt_t *ck = arg;
    if (ck->threaded) {
        atomic_store(&ck->go, -1);
        pthread_join(ck->thread, NULL);
    }
    ckpt_free(ck); /* its HDF5 objects stay open: the file is left as "<path>.tmp" */
}

dagr_status_t dagr_checkpoint_async(dagr_ctx_t *ctx, const char *path) {
    DAGR_CHECK(ctx, DAGR_ERR_ARG, "ctx is NULL");
    if (ctx_has_pending(ctx)) DAGR_TRY(ctx_run_pending(ctx, DAGR_OK));
    ckpt_t *ck;
    DAGR_TRY(ckpt_begin(ctx, path, true, &ck));
    int e = MPI_Comm_dup(ctx_comm(ctx), &ck->comm);
    if (e == MPI_SUCCESS) ck->threaded = pthread_create(&ck->thread, NULL, ckpt_thread, ck) == 0;
    /* Every rank ends it the same way: by its thread only if every rank has one (a thread
     * waits for the go before any MPI call). */
    int mine = ck->threaded, all = 0;
    MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, ctx_comm(ctx));
    if (ck->threaded && !all) {
        atomic_store(&ck->go, -1);
        pthread_join(ck->thread, NULL);
        ck->threaded = false;
    }
    atomic_store(&ck->go, 1); /* also what write_staged on the main thread needs */
    if (!ck->threaded && ck->comm != MPI_COMM_NULL) MPI_Comm_free(&ck->comm);
    ctx_set_pending(ctx, &(ctx_pending_t){.finish = ckpt_finish, .drop = ckpt_drop, .arg = ck});
    return DAGR_OK;
}

/* ------------------------------------------------------------------------------------------
 * Resume
 * ---------------------------------------------------------------------------------------- */

/* Collective: rank 0 reads the attributes, the table and the size of /data, and broadcasts
 * them; *table is malloc'ed on every rank. */
static dagr_status_t read_header(dagr_ctx_t *ctx, hid_t file, const char *path, int64_t v[NATTRS],
                                 uint64_t **table, uint64_t *data_bytes) {
    dagr_status_t s = DAGR_OK;
    *table = NULL;
    uint64_t dbytes = 0;
    if (dagr_rank(ctx) == 0) {
        h5_enter();
        s = read_attrs(file, path, v);
        if (s == DAGR_OK) {
            *table = malloc(((size_t)v[A_HANDLES] + 1) * TABLE_COLS * sizeof **table);
            if (!*table) s = DAGR_ERR(DAGR_ERR_NOMEM, "cannot allocate the table of '%s'", path);
        }
        hid_t t = -1, d = -1;
        if (s == DAGR_OK) {
            t = H5Dopen2(file, "handles", H5P_DEFAULT);
            d = H5Dopen2(file, "data", H5P_DEFAULT);
            if (t < 0 || d < 0)
                s = h5_error(DAGR_ERR_FORMAT, "checkpoint '%s' is damaged: %s is missing", path,
                             t < 0 ? "/handles" : "/data");
        }
        if (s == DAGR_OK) {
            hid_t ts = H5Dget_space(t), ds = H5Dget_space(d);
            hsize_t tdims[2] = {0, 0}, ddims = 0;
            int tr = ts >= 0 ? H5Sget_simple_extent_ndims(ts) : -1;
            if (tr == 2) H5Sget_simple_extent_dims(ts, tdims, NULL);
            if (ds >= 0 && H5Sget_simple_extent_ndims(ds) == 1)
                H5Sget_simple_extent_dims(ds, &ddims, NULL);
            dbytes = ddims;
            if (tr != 2 || tdims[0] != (hsize_t)v[A_HANDLES] || tdims[1] != TABLE_COLS)
                s = DAGR_ERR(DAGR_ERR_FORMAT,
                             "checkpoint '%s' is damaged: its table is not %lld x %d", path,
                             (long long)v[A_HANDLES], TABLE_COLS);
            else if (v[A_HANDLES] &&
                     H5Dread(t, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, *table) < 0)
                s = h5_error(DAGR_ERR_FORMAT, "cannot read the table of checkpoint '%s'", path);
            if (ts >= 0) H5Sclose(ts);
            if (ds >= 0) H5Sclose(ds);
        }
        if (t >= 0) H5Dclose(t);
        if (d >= 0) H5Dclose(d);
        h5_leave();
    }
    s = da_agree(ctx, s);
    if (s != DAGR_OK) {
        free(*table);
        *table = NULL;
        return s;
    }
    int64_t head[NATTRS + 1];
    memcpy(head, v, NATTRS * sizeof *v);
    head[NATTRS] = (int64_t)dbytes;
    DAGR_TRY_MPI(MPI_Bcast(head, NATTRS + 1, MPI_INT64_T, 0, ctx_comm(ctx)));
    memcpy(v, head, NATTRS * sizeof *v);
    *data_bytes = (uint64_t)head[NATTRS];
    if (dagr_rank(ctx) != 0) {
        *table = malloc(((size_t)v[A_HANDLES] + 1) * TABLE_COLS * sizeof **table);
        s = da_agree(ctx, *table ? DAGR_OK : DAGR_ERR(DAGR_ERR_NOMEM, "cannot allocate a table"));
    } else {
        s = da_agree(ctx, DAGR_OK);
    }
    if (s == DAGR_OK && v[A_HANDLES]) {
        int e = MPI_Bcast(*table, (int)(v[A_HANDLES] * TABLE_COLS), MPI_UINT64_T, 0, ctx_comm(ctx));
        if (e != MPI_SUCCESS) s = dagr_error_mpi(e, __FILE__, __LINE__, "MPI_Bcast");
    }
    if (s != DAGR_OK) {
        free(*table);
        *table = NULL;
    }
    return s;
}

/* Local: the live handles must be the file's, in the same order with the same shapes. */
static dagr_status_t match(const layout_t *L, const uint64_t *table, int64_t n, uint64_t dbytes,
                           const char *path) {
    if (L->n != n)
        return DAGR_ERR(DAGR_ERR_FORMAT,
                        "checkpoint '%s' holds %lld data handles but %lld are live here: resume "
                        "when the program has created the same DArrays and handles, in the same "
                        "order, as when it wrote the checkpoint",
                        path, (long long)n, (long long)L->n);
    uint64_t total = 0;
    for (int64_t k = 0; k < n; k++) {
        const uint64_t *f = table + k * TABLE_COLS, *h = L->table + k * TABLE_COLS;
        bool file_dynamic = f[2] == 0 && f[1] == 1;
        if (data_shape(L->h[k]).dynamic != file_dynamic)
            return DAGR_ERR(
                DAGR_ERR_FORMAT,
                "data handle %lld (in creation order) is %s in checkpoint '%s' but "
                "%s here",
                (long long)k, file_dynamic ? "a handle whose size tasks decide" : "of fixed size",
                path, file_dynamic ? "of fixed size" : "a handle whose size tasks decide");
        if (!file_dynamic && (f[0] != h[0] || f[1] != h[1] || f[2] != h[2]))
            return DAGR_ERR(DAGR_ERR_FORMAT,
                            "data handle %lld (in creation order) is %llu x %llu of %llu-byte "
                            "elements in checkpoint '%s' but %llu x %llu of %llu-byte elements "
                            "here",
                            (long long)k, (unsigned long long)f[0], (unsigned long long)f[1],
                            (unsigned long long)f[2], path, (unsigned long long)h[0],
                            (unsigned long long)h[1], (unsigned long long)h[2]);
        total += row_bytes(f);
    }
    if (total != dbytes)
        return DAGR_ERR(DAGR_ERR_FORMAT,
                        "checkpoint '%s' is damaged: its data hold %llu bytes, its table says "
                        "%llu",
                        path, (unsigned long long)dbytes, (unsigned long long)total);
    return DAGR_OK;
}

dagr_status_t dagr_resume(dagr_ctx_t *ctx, const char *path) {
    DAGR_CHECK(ctx, DAGR_ERR_ARG, "ctx is NULL");
    if (ctx_has_pending(ctx)) DAGR_TRY(ctx_run_pending(ctx, DAGR_OK));
    DAGR_TRY(ctx_usable(ctx));
    DAGR_TRY(io_check_names(ctx, path, NULL, false));
    int exists;
    DAGR_TRY(io_probe_file(ctx, path, "dagr_resume", &exists));
    if (!exists) return DAGR_OK; /* a fresh start */

    /* Finish what was inserted before: it must not overwrite what is restored. */
    DAGR_TRY(dagr_wait_all(ctx));
    hid_t file = -1, data = -1;
    DAGR_TRY(da_agree(ctx, dagr_rank(ctx) == 0 && access(path, R_OK) != 0
                               ? DAGR_ERR(DAGR_ERR_IO, "cannot read '%s': %m", path)
                               : DAGR_OK));
    if (io_open_file(ctx, path, IO_READ, &file) != DAGR_OK) {
        /* A readable HDF5 file that HDF5 cannot open: cut short, or its metadata damaged. */
        char why[DAGR_ERRMSG_MAX];
        snprintf(why, sizeof why, "%s", dagr_last_error());
        return DAGR_ERR(DAGR_ERR_FORMAT, "checkpoint '%s' is damaged or cut short (%s)", path, why);
    }
    int64_t v[NATTRS] = {0};
    uint64_t *table = NULL, dbytes = 0;
    layout_t L = {0};
    dagr_status_t s = read_header(ctx, file, path, v, &table, &dbytes);
    if (s == DAGR_OK) s = da_agree(ctx, layout_handles(ctx, &L));
    if (s == DAGR_OK) {
        /* The shapes here; a handle whose size tasks decide takes the file's. */
        for (int64_t k = 0; k < L.n; k++)
            L.off[k] = data_shape(L.h[k]).dynamic ? 0 : dagr_data_bytes(L.h[k]);
        layout_rows(&L);
        s = da_agree(ctx, match(&L, table, v[A_HANDLES], dbytes, path));
    }
    if (s == DAGR_OK) {
        memcpy(L.table, table, (size_t)L.n * TABLE_COLS * sizeof *table);
        layout_offsets(&L);
        h5_enter();
        data = H5Dopen2(file, "data", H5P_DEFAULT);
        s = data >= 0 ? DAGR_OK : h5_error(DAGR_ERR_FORMAT, "cannot open /data of '%s'", path);
        h5_leave();
        s = da_agree(ctx, s);
    }
    if (s == DAGR_OK) {
        s = insert_extents(ctx, &L, data, false, NULL, NULL, NULL, NULL, NULL, path);
        dagr_status_t w = dagr_wait_all(ctx);
        if (s == DAGR_OK) s = w;
    }
    dagr_status_t c = io_close(ctx, data, file, path);
    if (s == DAGR_OK) s = c;
    free(table);
    layout_free(&L);
    return s;
}
