/* Checkpoints: the format, and dagr_checkpoint (see include/dagr/io.h).
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
 * rank's fsync, then rank 0's close, fsync and rename, then fsync of the directory): a crash
 * or a failure while writing leaves the previous checkpoint as it was. Rank 0 alone creates
 * the file with HDF5 (its default driver) and lays it out, /data's storage allocated at once
 * so that its place in the file is known; every rank then writes its handles' extents of
 * /data with pwrite. Each handle is one task on its owner, which computes the checksum and
 * writes the extent; rank 0 writes the table once the checksums are in. The ranks must see
 * the same file (a shared file system across nodes). No MPI-IO: its collective open, flush
 * and close spin in MPI while they wait for the slowest rank, which an asynchronous
 * checkpoint's start and end did on the cores its workers computed on (40-75 ms of CPU a
 * rank a checkpoint, 2 ranks on 2 cores, 2026-12-04). dagr_checkpoint_async inserts the same
 * tasks before the file exists and returns; its thread creates and opens the file
 * (checkpoint_async.c). Resume is in resume.c, which reads through MPI-IO.
 *
 * This file: the checksum, the layout, the tasks, the file's helpers, and the synchronous
 * checkpoint. */
#include "checkpoint_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------------
 * Checksums
 * ---------------------------------------------------------------------------------------- */

/* A 64-bit hash of n bytes, four independent lanes of 8-byte words so that it runs at memory
 * speed; not cryptographic, meant to catch torn and corrupted files. */
uint64_t ckpt_checksum(const void *p, size_t n) {
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

void ckpt_layout_free(layout_t *L) {
    free(L->h);
    free(L->table);
    free(L->off);
    memset(L, 0, sizeof *L);
}

/* Collective (every rank finds the same). The sizes of handles whose size tasks decide are
 * known only once their writers ran: with any such handle, this waits and agrees on them.
 * Checksums are left 0. */
dagr_status_t ckpt_layout_sizes(dagr_ctx_t *ctx, layout_t *L) {
    dagr_status_t s = DAGR_OK;
    bool dynamic = false;
    for (int64_t k = 0; k < L->n; k++)
        dynamic |= data_shape(L->h[k]).dynamic;
    if (dynamic) s = dagr_wait_all(ctx);
    /* off serves as the sizes' room until the offsets go in. */
    if (s == DAGR_OK) s = data_sizes_agree(ctx, L->h, (size_t)L->n, L->off);
    if (s == DAGR_OK) ckpt_layout_rows(L);
    return s;
}

/* Local: the table's shapes from each handle's size in L->off[k], and the offsets in /data
 * (which replace the sizes). */
void ckpt_layout_rows(layout_t *L) {
    for (int64_t k = 0; k < L->n; k++) {
        data_shape_t sh = data_shape(L->h[k]);
        uint64_t *row = L->table + k * TABLE_COLS, bytes = L->off[k];
        row[0] = sh.dynamic ? bytes : bytes ? sh.rows : 0;
        row[1] = sh.dynamic ? 1 : bytes ? sh.cols : 0;
        row[2] = sh.dynamic ? 0 : bytes ? sh.elsize : 0;
    }
    ckpt_layout_offsets(L);
}

/* Local: the offsets in /data from the table's shapes. */
void ckpt_layout_offsets(layout_t *L) {
    L->total = 0;
    for (int64_t k = 0; k < L->n; k++) {
        L->off[k] = L->total;
        L->total += row_bytes(L->table + k * TABLE_COLS);
    }
}

/* Local: the live handles (every rank finds the same), their table and offsets allocated. */
dagr_status_t ckpt_layout_handles(dagr_ctx_t *ctx, layout_t *L) {
    memset(L, 0, sizeof *L);
    DAGR_TRY(ctx_live_data(ctx, &L->h, &L->n));
    size_t n = (size_t)L->n ? (size_t)L->n : 1;
    L->table = calloc(n * TABLE_COLS, sizeof *L->table);
    L->off = malloc(n * sizeof *L->off);
    if (!L->table || !L->off) {
        ckpt_layout_free(L);
        return DAGR_ERR(DAGR_ERR_NOMEM, "cannot allocate the table of %lld data handles",
                        (long long)n);
    }
    return DAGR_OK;
}

/* ------------------------------------------------------------------------------------------
 * The tasks: one handle's extent of /data
 * ---------------------------------------------------------------------------------------- */

/* Reads bytes [off, off + n) of /data into buf through HDF5 (resume). Any thread. */
dagr_status_t ckpt_read_extent(const ckpt_args_t *a, void *buf, size_t n, int worker) {
    hsize_t start = a->off, count = n;
    dagr_status_t s = DAGR_OK;
    h5_enter();
    hid_t fspace = H5Dget_space(a->data);
    hid_t mspace = H5Screate_simple(1, &count, NULL);
    herr_t e = fspace >= 0 && mspace >= 0 ? 0 : -1;
    if (e >= 0) e = H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &start, NULL, &count, NULL);
    if (e >= 0) {
        int64_t t0 = trace_io_begin(a->ctx);
        e = H5Dread(a->data, H5T_NATIVE_UCHAR, mspace, fspace, H5P_DEFAULT, buf);
        trace_io_end(a->ctx, t0, TRACE_IO_CKPT_READ, n, worker);
    }
    if (e < 0)
        s = h5_error(DAGR_ERR_IO, "cannot read data handle %lld (%zu bytes) from checkpoint '%s'",
                     (long long)a->k, n, a->path);
    if (mspace >= 0) H5Sclose(mspace);
    if (fspace >= 0) H5Sclose(fspace);
    h5_leave();
    return s;
}

/* Copies between the packed column-major block p and buf with leading dimension ld. */
void ckpt_repack(const ckpt_args_t *a, void *p, void *buf, size_t ld, bool pack) {
    size_t col = a->rows * a->elsize, stride = ld * a->elsize;
    for (size_t j = 0; j < a->cols; j++) {
        if (pack)
            memcpy((char *)p + j * col, (char *)buf + j * stride, col);
        else
            memcpy((char *)buf + j * stride, (char *)p + j * col, col);
    }
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
    if (write && stage_lend(a->stage, a, t, n))
        return DAGR_TASK_ASYNC; /* the thread writes it, counts it and completes the task */
    if (write && stage_put(a->stage, a, t->buf[0], t->ld[0], n))
        return DAGR_TASK_DONE; /* the thread writes it, and counts it */
    /* An asynchronous checkpoint's file may not be open yet. Where it could not be opened,
     * the checkpoint has failed and says why at the next wait: the task has nothing to do. */
    if (write && !stage_wait_opened(a->stage)) return DAGR_TASK_DONE;
    bool strided = t->ld[0] != a->rows;
    void *p = strided ? malloc(n) : t->buf[0];
    if (!p) {
        dagr_task_fail(t, DAGR_ERR_NOMEM, "cannot allocate %zu bytes to pack data handle %lld", n,
                       (long long)a->k);
        return DAGR_TASK_ERROR;
    }
    if (write && strided) ckpt_repack(a, p, t->buf[0], t->ld[0], true);
    if (write) *a->sum = ckpt_checksum(p, n);
    dagr_status_t s = write ? stage_write_extent(a->stage, a, p, n, t->worker)
                            : ckpt_read_extent(a, p, n, t->worker);
    if (s == DAGR_OK && !write) {
        if (ckpt_checksum(p, n) != a->want)
            s = DAGR_ERR(DAGR_ERR_FORMAT,
                         "checkpoint '%s' is damaged: the contents of data handle %lld do not "
                         "match their checksum",
                         a->path, (long long)a->k);
        else if (strided)
            ckpt_repack(a, p, t->buf[0], t->ld[0], false);
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
dagr_status_t ckpt_insert_extents(dagr_ctx_t *ctx, const layout_t *L, hid_t data, bool write,
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

const char *const ckpt_attrs[NATTRS] = {"dagr_checkpoint", "ranks", "tasks", "handles"};

/* Rank 0, under h5_enter: the attributes and the two datasets. */
static dagr_status_t create_layout(const ckpt_t *ck, const layout_t *L, hid_t file, const char *tmp,
                                   hid_t *table, hid_t *data) {
    int64_t v[NATTRS] = {CKPT_FORMAT, ck->ranks, ck->tasks, L->n};
    hid_t scalar = H5Screate(H5S_SCALAR);
    herr_t e = scalar >= 0 ? 0 : -1;
    for (int i = 0; i < NATTRS && e >= 0; i++) {
        hid_t at = H5Acreate2(file, ckpt_attrs[i], H5T_STD_I64LE, scalar, H5P_DEFAULT, H5P_DEFAULT);
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
    /* Its storage placed now, so that its offset in the file is known before any write
     * (asynchronous checkpoints write it directly: checkpoint_async.c). */
    if (e >= 0) e = H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY);
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

/* Puts this rank's writes of "<path>.tmp" on disk (and, on rank 0 after the close, HDF5's
 * metadata). */
static dagr_status_t sync_file(const char *tmp) {
    int fd = open(tmp, O_RDONLY);
    if (fd < 0 || fsync(fd) != 0) {
        dagr_status_t s = DAGR_ERR(DAGR_ERR_IO, "cannot flush '%s' to disk: %m", tmp);
        if (fd >= 0) close(fd);
        return s;
    }
    close(fd);
    return DAGR_OK;
}

/* Rank 0: makes the complete "<path>.tmp" the checkpoint: fsync, rename, fsync of the
 * directory (so that the rename itself survives a crash). */
static dagr_status_t commit(const char *tmp, const char *path) {
    DAGR_TRY(sync_file(tmp));
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
dagr_status_t ckpt_read_attrs(hid_t file, const char *path, int64_t v[NATTRS]) {
    for (int i = 0; i < NATTRS; i++) {
        htri_t there = H5Aexists(file, ckpt_attrs[i]);
        if (there < 0) return h5_error(DAGR_ERR_IO, "cannot read '%s'", path);
        if (there == 0)
            return DAGR_ERR(DAGR_ERR_FORMAT,
                            "'%s' is an HDF5 file but not a dagr checkpoint (it has no "
                            "attribute '%s')",
                            path, ckpt_attrs[i]);
        hid_t at = H5Aopen(file, ckpt_attrs[i], H5P_DEFAULT);
        herr_t e = at >= 0 ? H5Aread(at, H5T_NATIVE_INT64, &v[i]) : -1;
        if (at >= 0) H5Aclose(at);
        if (e < 0)
            return h5_error(DAGR_ERR_FORMAT, "cannot read attribute '%s' of '%s'", ckpt_attrs[i],
                            path);
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
        s = H5Aexists(file, ckpt_attrs[A_FORMAT]) > 0
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
 * The checkpoint, both forms (see checkpoint_impl.h), and the synchronous one
 * ---------------------------------------------------------------------------------------- */

void ckpt_free(ckpt_t *ck) {
    for (staged_t *b = stage_take_all(&ck->stage, 0), *next; b; b = next) {
        next = b->next;
        data_buf_free(b->raw);
        free(b);
    }
    stage_close(&ck->stage);
    pthread_mutex_destroy(&ck->stage.lock);
    pthread_cond_destroy(&ck->stage.cond);
    pthread_cond_destroy(&ck->stage.opened_cond);
    pthread_cond_destroy(&ck->inserted_cond);
    ckpt_layout_free(&ck->L);
    free(ck->tmp);
    free(ck->path);
    free(ck->sums);
    free(ck);
}

static int ckpt_wait(bool patient, MPI_Request *req) {
    return patient ? ctx_wait_patient(req) : ctx_wait_request(req);
}

dagr_status_t ckpt_agree(const ckpt_t *ck, MPI_Comm comm, dagr_status_t s) {
    const char *msg = s == DAGR_OK ? "" : dagr_last_error();
    return ck->patient ? ctx_agree_patient(comm, s, msg) : ctx_agree(comm, s, msg);
}

/* Collective over comm, once no task uses the file: the checksums to rank 0, every rank's
 * fsync and rank 0's table when `s` is DAGR_OK; then rank 0's close, and the rename or the
 * removal of "<path>.tmp". Keeps `s` and its message when it is not DAGR_OK. Frees nothing. */
dagr_status_t ckpt_end(ckpt_t *ck, MPI_Comm comm, dagr_status_t s) {
    layout_t *L = &ck->L;
    int rank = 0;
    MPI_Comm_rank(comm, &rank);
    if (s == DAGR_OK && L->n) {
        MPI_Request req;
        int e = MPI_Ireduce(rank ? ck->sums : MPI_IN_PLACE, ck->sums, (int)L->n, MPI_UINT64_T,
                            MPI_BOR, 0, comm, &req);
        if (e == MPI_SUCCESS) e = ckpt_wait(ck->patient, &req);
        if (e != MPI_SUCCESS) s = dagr_error_mpi(e, __FILE__, __LINE__, "MPI_Ireduce");
        s = ckpt_agree(ck, comm, s);
    }
    if (s == DAGR_OK) {
        /* This rank's writes on disk, by itself: a collective flush would have the first
         * ranks wait for the slowest one's. */
        s = sync_file(ck->tmp);
        if (s == DAGR_OK && rank == 0 && L->n) {
            for (int64_t k = 0; k < L->n; k++)
                L->table[k * TABLE_COLS + 3] = ck->sums[k];
            h5_enter();
            s = write_table(ck->table, L, ck->tmp);
            h5_leave();
        }
        s = ckpt_agree(ck, comm, s);
    }
    stage_close(&ck->stage);
    char msg[DAGR_ERRMSG_MAX];
    snprintf(msg, sizeof msg, "%s", dagr_last_error());
    /* Rank 0: the close (HDF5 writes the file's metadata then; a failed close means they may
     * be missing), and the rename once every rank's data are on disk. */
    dagr_status_t c = DAGR_OK;
    if (rank == 0) {
        h5_enter();
        if (ck->table >= 0 && H5Dclose(ck->table) < 0)
            c = h5_error(DAGR_ERR_IO, "cannot close a dataset of '%s'", ck->tmp);
        if (ck->data >= 0 && H5Dclose(ck->data) < 0 && c == DAGR_OK)
            c = h5_error(DAGR_ERR_IO, "cannot close a dataset of '%s'", ck->tmp);
        if (ck->file >= 0 && H5Fclose(ck->file) < 0 && c == DAGR_OK)
            c = h5_error(DAGR_ERR_IO, "cannot close '%s'", ck->tmp);
        h5_leave();
        if (s == DAGR_OK && c == DAGR_OK) c = commit(ck->tmp, ck->path);
        /* The previous checkpoint is untouched. */
        if (s != DAGR_OK) unlink(ck->tmp);
    }
    ck->table = ck->data = ck->file = -1;
    c = ckpt_agree(ck, comm, c);
    if (s == DAGR_OK) return c;
    if (c == DAGR_OK) dagr_error_set_raw(msg); /* the failure's own status and message */
    return s;
}

/* Rank 0, at the call: DAGR_ERR_IO when path's directory cannot take a new file (an
 * asynchronous checkpoint creates it later, in its thread), DAGR_ERR_FORMAT when path holds
 * something other than a checkpoint. */
static dagr_status_t check_path(const char *path) {
    char *dir = strdup(path);
    if (!dir) return DAGR_ERR(DAGR_ERR_NOMEM, "cannot copy path '%s'", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        strcpy(dir, ".");
    else if (slash == dir)
        dir[1] = 0;
    else
        *slash = 0;
    dagr_status_t s = DAGR_OK;
    if (access(dir, W_OK | X_OK) != 0)
        s = DAGR_ERR(DAGR_ERR_IO, "cannot create checkpoint '%s' in directory '%s': %m", path, dir);
    free(dir);
    DAGR_TRY(s);
    int exists;
    DAGR_TRY(io_probe_local(path, "dagr_checkpoint", &exists));
    return exists ? check_replaceable(path) : DAGR_OK;
}

/* Rank 0: makes "<path>.tmp" alone (HDF5's default driver) and lays it out (the call checked
 * the path: check_path); /data's offset in the file goes to *off. The file stays open: rank 0
 * writes the table at the end. */
static dagr_status_t create_file(ckpt_t *ck, uint64_t *off) {
    h5_enter();
    dagr_status_t s = DAGR_OK;
    /* /data starts on a 4 KiB boundary of the file: handles of a multiple of 4 KiB then
     * meet on such boundaries, where adjacent ones go out in one direct write. */
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl >= 0 && H5Pset_alignment(fapl, 64 << 10, 4096) >= 0)
        ck->file = H5Fcreate(ck->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (fapl >= 0) H5Pclose(fapl);
    if (ck->file < 0) s = h5_error(DAGR_ERR_IO, "cannot create '%s'", ck->tmp);
    if (s == DAGR_OK) s = create_layout(ck, &ck->L, ck->file, ck->tmp, &ck->table, &ck->data);
    haddr_t at = s == DAGR_OK && ck->L.total ? H5Dget_offset(ck->data) : 0;
    if (at == HADDR_UNDEF)
        s = h5_error(DAGR_ERR_IO, "cannot place the data of checkpoint '%s'", ck->tmp);
    *off = (uint64_t)at;
    h5_leave();
    return s;
}

/* Collective: rank 0's status (with its message) and /data's offset, for every rank. */
static dagr_status_t share_layout(MPI_Comm comm, bool patient, dagr_status_t mine, uint64_t *off) {
    struct {
        uint64_t off;
        int status;
        char msg[DAGR_ERRMSG_MAX];
    } note = {.off = *off, .status = mine};
    snprintf(note.msg, sizeof note.msg, "%s", mine == DAGR_OK ? "" : dagr_last_error());
    MPI_Request req;
    DAGR_TRY_MPI(MPI_Ibcast(&note, (int)sizeof note, MPI_BYTE, 0, comm, &req));
    DAGR_TRY_MPI(ckpt_wait(patient, &req));
    *off = note.off;
    if (note.status == DAGR_OK) return DAGR_OK;
    dagr_error_set_raw(note.msg);
    return (dagr_status_t)note.status;
}

static ckpt_t *ckpt_new(dagr_ctx_t *ctx, const char *path, bool async) {
    ckpt_t *ck = calloc(1, sizeof *ck);
    if (!ck) return NULL;
    size_t len = strlen(path) + 5;
    ck->tmp = malloc(len);
    ck->path = strdup(path);
    if (ck->tmp) snprintf(ck->tmp, len, "%s.tmp", path);
    ck->file = ck->table = ck->data = -1;
    ck->comm = MPI_COMM_NULL;
    ck->patient = async;
    atomic_init(&ck->written, 0);
    atomic_init(&ck->ended, 0);
    atomic_init(&ck->go, 1);
    ck->dup = MPI_REQUEST_NULL;
    ck->stage.dfd = ck->stage.bfd = -1;
    pthread_mutex_init(&ck->stage.lock, NULL);
    pthread_cond_init(&ck->stage.cond, NULL);
    pthread_cond_init(&ck->stage.opened_cond, NULL);
    pthread_cond_init(&ck->inserted_cond, NULL);
    /* Staged copies live outside the memory limit: none under one. At most an eighth of the
     * node's memory per node. */
    dagr_job_info_t j;
    if (async && dagr_job_info(ctx, &j) == DAGR_OK && j.memory_limit == 0)
        ck->stage.cap = j.node_memory / 8 / (size_t)(j.ranks_on_node > 0 ? j.ranks_on_node : 1);
    return ck;
}

dagr_status_t ckpt_prepare(dagr_ctx_t *ctx, const char *path, bool async, ckpt_t **out) {
    *out = NULL;
    DAGR_TRY(ctx_usable(ctx));
    /* This rank's failures go into the checks' agreement: one collective for both. */
    dagr_status_t s = DAGR_OK;
    ckpt_t *ck = NULL;
    if (path && *path) { /* otherwise io_check_names_and says what is wrong */
        ck = ckpt_new(ctx, path, async);
        if (!ck || !ck->tmp || !ck->path)
            s = DAGR_ERR(DAGR_ERR_NOMEM, "cannot allocate a checkpoint");
        if (s == DAGR_OK) s = ckpt_layout_handles(ctx, &ck->L);
        if (s == DAGR_OK) {
            size_t n = (size_t)ck->L.n ? (size_t)ck->L.n : 1;
            ck->sums = calloc(n, sizeof *ck->sums);
            if (!ck->sums) s = DAGR_ERR(DAGR_ERR_NOMEM, "cannot allocate %zu checksums", n);
        }
        if (s == DAGR_OK && dagr_rank(ctx) == 0) s = check_path(path);
    }
    s = io_check_names_and(ctx, path, NULL, false, async, s);
    if (s == DAGR_OK) s = ckpt_layout_sizes(ctx, &ck->L);
    if (s != DAGR_OK) {
        if (ck) ckpt_free(ck);
        return s;
    }
    ck->ranks = dagr_size(ctx);
    ck->tasks = (int64_t)ctx_tasks_inserted(ctx); /* before the write tasks */
    *out = ck;
    return DAGR_OK;
}

dagr_status_t ckpt_open(ckpt_t *ck, MPI_Comm comm, dagr_status_t mine) {
    int rank = 0;
    MPI_Comm_rank(comm, &rank);
    uint64_t off = 0;
    char msg[DAGR_ERRMSG_MAX];
    snprintf(msg, sizeof msg, "%s", mine == DAGR_OK ? "" : dagr_last_error());
    dagr_status_t made = rank == 0 && mine == DAGR_OK ? create_file(ck, &off) : mine;
    dagr_status_t s = share_layout(comm, ck->patient, made, &off);
    if (s == DAGR_OK && mine != DAGR_OK) {
        s = mine;
        dagr_error_set_raw(msg);
    }
    if (s == DAGR_OK) s = stage_open(&ck->stage, ck->tmp, off);
    s = ckpt_agree(ck, comm, s); /* share_layout's failure is every rank's: agreed as well */
    stage_opened(&ck->stage, s == DAGR_OK);
    return s;
}

/* On failure nothing is left (no task, no file). */
dagr_status_t ckpt_begin(dagr_ctx_t *ctx, const char *path, ckpt_t **out) {
    ckpt_t *ck;
    DAGR_TRY(ckpt_prepare(ctx, path, false, &ck));
    dagr_status_t s = ckpt_open(ck, ctx_comm(ctx), DAGR_OK);
    if (s == DAGR_OK) {
        s = ckpt_insert_extents(ctx, &ck->L, -1, true, ck->sums, &ck->written, &ck->ended,
                                &ck->local, &ck->stage, ck->tmp);
        /* No task may still use the file at the end: wait for those inserted. */
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

/* The status of this rank's writes once they all completed. */
dagr_status_t ckpt_writes_status(ckpt_t *ck) {
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
    DAGR_TRY(ckpt_begin(ctx, path, &ck));
    dagr_status_t s = dagr_wait_all(ctx);
    if (s == DAGR_OK) s = da_agree(ctx, ckpt_writes_status(ck));
    s = ckpt_end(ck, ctx_comm(ctx), s);
    ckpt_free(ck);
    return s;
}
