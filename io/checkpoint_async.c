/* Writing /data's extents (both forms), and dagr_checkpoint_async (see include/dagr/io.h and
 * the top of checkpoint.c): the staged copies its write tasks leave, and the thread that
 * writes them and ends the file.
 *
 * Direct writes. The thread writes the staged blocks with O_DIRECT straight into /data's
 * storage (contiguous, allocated when the file is laid out: its offset is fixed), each block
 * having been copied to an address aligned as its place in the file is. A buffered write
 * copies the bytes into the page cache, and that copy, then the kernel's writeback at the
 * fsync, is CPU work taken from the workers, which compute on the same cores while the
 * checkpoint writes: on the 2-core VM with 2 ranks (stencil sweeps, 72 MiB a rank a
 * checkpoint, 2026-12-04) the thread spent 25-150 ms of CPU a checkpoint in H5Dwrite and
 * about as much as the whole synchronous checkpoint cost; a direct write has the device
 * move the bytes. It takes the blocks in batches (STAGE_BATCH) and writes each batch in file
 * order, a run of blocks adjacent in the file in one pwritev: a call's cost is mostly fixed
 * (pinning the pages, one device request), and a column of tiles under a 1 x Q grid is one
 * rank's and adjacent (72 MiB in 144 calls: 8-16 ms of CPU; in runs: 2-4 ms). The parts of a
 * run that do not fill a whole 4 KiB block of the file (its first and last bytes) are written
 * through the page cache, never the same file block as a direct write. Where the file system
 * refuses O_DIRECT (some network and FUSE file systems), or with DAGR_CKPT_DIRECT=0, blocks go
 * through the page cache as a task's own writes do.
 *
 * Lent blocks. A handle whose buffer already lies as a copy would be placed (packed, at its
 * file offset's distance from a 4 KiB boundary: the data pool starts buffers of 256 KiB and
 * more on one, so tiles of a 4 KiB multiple qualify until the first extent that is not) is not
 * copied: its task defers (dagr_task_defer), and the thread writes the buffer itself and then
 * completes the task, whose read access holds off the handle's next writer until then. That
 * saves the copy, its memory (the state's size a rank, kept in the pool between checkpoints)
 * and its memory traffic (2 x 72 MiB a rank a checkpoint in ckpt_bench); the next writer may
 * wait longer (the thread writes 16 MiB batches in 2-4 ms each here). In ckpt_bench the two
 * measured the same at a checkpoint every 30 sweeps, and lending 10 % less at every 10
 * (2026-12-05); what decides is the memory. */
#include "checkpoint_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <limits.h>
#include <sys/uio.h>
#include <unistd.h>

#define DIO_ALIGN ((uint64_t)4096) /* the largest logical block size of common devices */

void stage_plan(stage_t *st, uint64_t total) {
    /* HDF5 places /data on a 4 KiB boundary from 64 KiB on (checkpoint.c's create_file):
     * a copy's place in the file is then known from its offset in /data alone, before the
     * file exists. Smaller checkpoints gain nothing from direct writes. */
    const char *env = getenv("DAGR_CKPT_DIRECT");
    st->aligned = st->cap > 0 && total >= ((uint64_t)64 << 10) && !(env && !strcmp(env, "0"));
}

dagr_status_t stage_open(stage_t *st, const char *tmp, uint64_t data_off) {
    st->data_off = data_off;
    st->bfd = open(tmp, O_WRONLY);
    if (st->bfd < 0)
        return DAGR_ERR(DAGR_ERR_IO,
                        "cannot open checkpoint '%s' for writing: %m (rank 0 created it: the "
                        "checkpoint's directory must be one that every rank sees)",
                        tmp);
    /* Copies were placed for a /data on a 4 KiB boundary: otherwise through the page cache. */
    if (st->aligned && data_off % DIO_ALIGN == 0) st->dfd = open(tmp, O_WRONLY | O_DIRECT);
    return DAGR_OK;
}

void stage_opened(stage_t *st, bool ok) {
    pthread_mutex_lock(&st->lock);
    st->opened = ok ? 1 : -1;
    pthread_cond_broadcast(&st->opened_cond);
    pthread_mutex_unlock(&st->lock);
}

bool stage_wait_opened(stage_t *st) {
    pthread_mutex_lock(&st->lock);
    while (st->opened == 0)
        pthread_cond_wait(&st->opened_cond, &st->lock);
    bool ok = st->opened > 0;
    pthread_mutex_unlock(&st->lock);
    return ok;
}

void stage_close(stage_t *st) {
    if (st->dfd >= 0) close(st->dfd);
    if (st->bfd >= 0) close(st->bfd);
    st->dfd = st->bfd = -1;
}

/* Writes n bytes at off through fd, however many calls it takes; 0, or the errno. */
static int pwrite_all(int fd, const char *p, size_t n, uint64_t off) {
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return w < 0 ? errno : EIO;
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

/* Writes n iovecs at off through fd, however many calls it takes; 0, or the errno. */
static int pwritev_all(int fd, struct iovec *iov, int n, uint64_t off) {
    while (n > 0) {
        ssize_t w = pwritev(fd, iov, n < IOV_MAX ? n : IOV_MAX, (off_t)off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return w < 0 ? errno : EIO;
        off += (uint64_t)w;
        for (; n > 0 && (size_t)w >= iov->iov_len; iov++, n--)
            w -= (ssize_t)iov->iov_len;
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

/* Writes a run of m staged blocks, adjacent in the file and meeting on 4 KiB boundaries, into
 * their place: the whole file blocks they cover with O_DIRECT in as few calls as the system
 * allows, the ends through the page cache. EINVAL: the file system refused the direct write
 * (nothing was written); 0 or another errno otherwise. */
static int write_run(stage_t *st, staged_t *const *b, int m) {
    uint64_t at = st->data_off + b[0]->a.off, end = st->data_off + b[m - 1]->a.off + b[m - 1]->n;
    uint64_t lo = (at + DIO_ALIGN - 1) / DIO_ALIGN * DIO_ALIGN, hi = end / DIO_ALIGN * DIO_ALIGN;
    if (hi <= lo) { /* no whole file block: small blocks, through the page cache */
        int e = 0;
        for (int i = 0; i < m && !e; i++)
            e = pwrite_all(st->bfd, b[i]->p, b[i]->n, st->data_off + b[i]->a.off);
        return e;
    }
    struct iovec *iov = malloc((size_t)m * sizeof *iov);
    if (!iov) return ENOMEM;
    for (int i = 0; i < m; i++) { /* each block's part of [lo, hi) */
        uint64_t fa = st->data_off + b[i]->a.off, fe = fa + b[i]->n;
        uint64_t pa = fa > lo ? fa : lo, pe = fe < hi ? fe : hi;
        iov[i] = (struct iovec){(char *)b[i]->p + (pa - fa), (size_t)(pe - pa)};
    }
    int e = pwritev_all(st->dfd, iov, m, lo);
    free(iov);
    if (e == 0 && lo > at) e = pwrite_all(st->bfd, b[0]->p, lo - at, at);
    const staged_t *z = b[m - 1];
    uint64_t za = st->data_off + z->a.off;
    if (e == 0 && end > hi) e = pwrite_all(st->bfd, (char *)z->p + (hi - za), end - hi, hi);
    return e;
}

static dagr_status_t write_failed(const ckpt_args_t *a, size_t n, int e) {
    return DAGR_ERR(DAGR_ERR_IO, "cannot write data handle %lld (%zu bytes) to checkpoint '%s': %s",
                    (long long)a->k, n, a->path, strerror(e));
}

dagr_status_t stage_write_extent(stage_t *st, const ckpt_args_t *a, const void *p, size_t n,
                                 int worker) {
    int64_t t0 = trace_io_begin(a->ctx);
    int e = pwrite_all(st->bfd, p, n, st->data_off + a->off);
    trace_io_end(a->ctx, t0, TRACE_IO_CKPT_WRITE, n, worker);
    return e ? write_failed(a, n, e) : DAGR_OK;
}

/* Hands block b to the thread. */
static void enqueue(stage_t *st, staged_t *b) {
    pthread_mutex_lock(&st->lock);
    if (st->tail)
        st->tail->next = b;
    else
        st->head = b;
    st->tail = b;
    st->queued += b->n;
    if (b->token) st->lent++;
    if (st->queued >= STAGE_BATCH) pthread_cond_signal(&st->cond);
    pthread_mutex_unlock(&st->lock);
}

bool stage_lend(stage_t *st, const ckpt_args_t *a, const dagr_task_view_t *t, size_t n) {
    /* Lent where a direct write can take the buffer as it lies: packed, at the same offset from
     * a 4 KiB boundary as its place in the file (the data pool starts big blocks on one), and
     * at least a block of the file. Not on a device (a test device runs CPU bodies on copies of
     * its own): a device admits few tasks at a time, by its memory, and a lent block would hold
     * its room until written. */
    void *p = t->buf[0];
    if (!st->lend || !st->aligned || t->device >= 0 || t->ld[0] != a->rows || n < DIO_ALIGN ||
        (uintptr_t)p % DIO_ALIGN != a->off % DIO_ALIGN)
        return false;
    staged_t *b = malloc(sizeof *b);
    dagr_task_token_t *token = b ? dagr_task_defer(t) : NULL;
    if (!token) {
        free(b);
        return false;
    }
    *b = (staged_t){.a = *a, .p = p, .n = n, .token = token};
    enqueue(st, b);
    return true;
}

/* A copy of the task's handle, handed to the thread; false when over the cap or out of memory
 * (the task then writes the handle itself). */
bool stage_put(stage_t *st, const ckpt_args_t *a, const void *buf, size_t ld, size_t n) {
    pthread_mutex_lock(&st->lock);
    bool room = st->bytes + n <= st->cap;
    if (room) st->bytes += n;
    pthread_mutex_unlock(&st->lock);
    if (!room) return false;
    staged_t *b = malloc(sizeof *b);
    /* For a direct write the block sits at the same offset from a 4 KiB boundary as its
     * place in the file (/data starts on one: stage_plan). The copies are data buffers like
     * the tiles they copy, from the data pool: huge pages, mostly still resident from the
     * previous checkpoint (n > 0: empty versions are never staged). */
    size_t shift = st->aligned ? (size_t)(a->off % DIO_ALIGN) : 0;
    size_t pad = st->aligned ? DIO_ALIGN - 1 + shift : 0;
    char *raw = b ? data_buf_alloc(n + pad) : NULL, *p = raw;
    if (raw && st->aligned)
        p = (char *)(((uintptr_t)raw + DIO_ALIGN - 1) / DIO_ALIGN * DIO_ALIGN) + shift;
    if (!p) {
        free(b);
        pthread_mutex_lock(&st->lock);
        st->bytes -= n;
        pthread_mutex_unlock(&st->lock);
        return false;
    }
    if (ld != a->rows)
        ckpt_repack(a, p, (void *)buf, ld, true);
    else
        memcpy(p, buf, n);
    *b = (staged_t){.a = *a, .p = p, .raw = raw, .n = n};
    enqueue(st, b);
    return true;
}

staged_t *stage_take_all(stage_t *st, long ms) {
    pthread_mutex_lock(&st->lock);
    size_t before = st->queued;
    if (st->queued < STAGE_BATCH && ms > 0) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += ms * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&st->cond, &st->lock, &until);
    }
    /* Lent blocks hold their tasks, and what waits for those (the handles' next writers; the
     * memory a task needs to run): once no block came during the wait, they go, batch or not
     * (all lent blocks not written are queued: only this thread writes them). */
    bool stalled = st->lent > 0 && st->queued == before;
    staged_t *b = st->queued >= STAGE_BATCH || ms == 0 || stalled ? st->head : NULL;
    if (b) {
        st->head = st->tail = NULL;
        st->queued = 0;
    }
    pthread_mutex_unlock(&st->lock);
    return b;
}

static int by_offset(const void *x, const void *y) {
    const staged_t *a = *(staged_t *const *)x, *b = *(staged_t *const *)y;
    return a->a.off < b->a.off ? -1 : a->a.off > b->a.off;
}

/* Whether b can follow a in one direct write: adjacent in the file, meeting on a 4 KiB
 * boundary (so that b's copy starts on one too). */
static bool joins(const stage_t *st, const staged_t *a, const staged_t *b) {
    return a->a.off + a->n == b->a.off && (st->data_off + b->a.off) % DIO_ALIGN == 0;
}

/* Records a block's outcome and frees it; a lent block's task completes (successfully: a
 * failed write fails the checkpoint, at the next wait, not the task's successors). */
static void block_done(ckpt_t *ck, staged_t *b, dagr_status_t s) {
    if (s == DAGR_OK) atomic_fetch_add(b->a.written, 1);
    if (s != DAGR_OK && ck->werr == DAGR_OK) {
        ck->werr = s;
        snprintf(ck->wmsg, sizeof ck->wmsg, "%s", dagr_last_error());
    }
    pthread_mutex_lock(&ck->stage.lock);
    if (b->token)
        ck->stage.lent--;
    else
        ck->stage.bytes -= b->n;
    pthread_mutex_unlock(&ck->stage.lock);
    if (b->token) dagr_task_complete(b->token, DAGR_OK, NULL);
    data_buf_free(b->raw);
    free(b);
}

/* Writes a list of staged blocks (checksums, then the extents in file order: runs of
 * adjacent blocks in one direct write where the file system allows it, else through the page
 * cache) and frees them; frees them only when the file could not be opened (the checkpoint
 * has failed). The thread's only. */
static void write_blocks(ckpt_t *ck, staged_t *list) {
    stage_t *st = &ck->stage;
    if (!stage_wait_opened(st)) {
        for (staged_t *b = list, *next; b; b = next) {
            next = b->next;
            block_done(ck, b, DAGR_ERR(DAGR_ERR_IO, "checkpoint '%s' is not open", ck->path));
        }
        return;
    }
    int m = 0;
    for (staged_t *b = list; b; b = b->next)
        m++;
    staged_t **v = malloc((size_t)m * sizeof *v);
    if (!v) { /* the checkpoint fails; the previous one stays */
        for (staged_t *b = list, *next; b; b = next) {
            next = b->next;
            block_done(ck, b, DAGR_ERR(DAGR_ERR_NOMEM, "cannot sort %d staged copies", m));
        }
        return;
    }
    m = 0;
    for (staged_t *b = list; b; b = b->next) {
        *b->a.sum = ckpt_checksum(b->p, b->n);
        v[m++] = b;
    }
    qsort(v, (size_t)m, sizeof *v, by_offset);
    for (int i = 0, j; i < m; i = j) {
        for (j = i + 1; j < m && st->dfd >= 0 && joins(st, v[j - 1], v[j]); j++)
            ;
        int e = EINVAL;
        if (st->dfd >= 0) {
            uint64_t bytes = v[j - 1]->a.off + v[j - 1]->n - v[i]->a.off;
            int64_t t0 = trace_io_begin(v[i]->a.ctx);
            e = write_run(st, v + i, j - i);
            trace_io_end(v[i]->a.ctx, t0, TRACE_IO_CKPT_WRITE, (size_t)bytes, -1);
            if (e == EINVAL) { /* refused: the page cache from now on */
                close(st->dfd);
                st->dfd = -1;
            }
        }
        for (int k = i; k < j; k++) {
            dagr_status_t s = DAGR_OK;
            if (e == EINVAL)
                s = stage_write_extent(st, &v[k]->a, v[k]->p, v[k]->n, -1);
            else if (e)
                s = write_failed(&v[k]->a, v[k]->n, e);
            block_done(ck, v[k], s);
        }
    }
    free(v);
}

/* Whether every write task of this rank has completed or lent its block (which the thread
 * has not written yet: its task completes once it has). */
static bool all_staged(ckpt_t *ck) {
    pthread_mutex_lock(&ck->stage.lock);
    long lent = ck->stage.lent;
    pthread_mutex_unlock(&ck->stage.lock);
    return atomic_load(&ck->ended) + lent >= ck->local;
}

/* Writes what this rank's tasks staged, until they have all completed. The thread's loop,
 * or the main thread's when there is no thread (then after a wait; no task lends then). */
void ckpt_write_staged(ckpt_t *ck) {
    while (atomic_load(&ck->go) >= 0) {
        /* A batch at a time: adjacent blocks then go out in one write. */
        staged_t *list = stage_take_all(&ck->stage, 2);
        if (!list && !all_staged(ck)) continue;
        /* Every task staged its block: what is left is all there is. */
        if (!list) list = stage_take_all(&ck->stage, 0);
        if (!list) return;
        write_blocks(ck, list);
    }
}

/* Opens the file with the other ranks (their threads, or their main threads where they
 * have none). ck->status and ck->msg: this rank's failure at the call, then the outcome. */
static void async_open(ckpt_t *ck) {
    dagr_status_t mine = ck->status;
    int e = ctx_wait_patient(&ck->dup);
    if (e != MPI_SUCCESS) {
        /* No communicator: nothing collective can follow (MPI's failures are fatal in
         * practice); this rank's tasks find the file unopened. */
        ck->status = dagr_error_mpi(e, __FILE__, __LINE__, "MPI_Comm_idup");
        ck->comm = MPI_COMM_NULL;
        stage_opened(&ck->stage, false);
    } else {
        if (mine != DAGR_OK) dagr_error_set_raw(ck->msg);
        ck->status = ckpt_open(ck, ck->comm, mine);
    }
    snprintf(ck->msg, sizeof ck->msg, "%s", dagr_last_error());
}

/* Writes what this rank's tasks staged once they all completed, then ends the file with the
 * other ranks (unless abandoned, or without a communicator). */
static void async_end(ckpt_t *ck) {
    ckpt_write_staged(ck);
    if (atomic_load(&ck->go) < 0) {
        ck->status = DAGR_ERR(DAGR_ERR_STATE, "checkpoint '%s' abandoned", ck->path);
    } else if (ck->comm != MPI_COMM_NULL) {
        dagr_status_t s = ck->status;
        if (s == DAGR_OK)
            s = ckpt_agree(ck, ck->comm, ckpt_writes_status(ck));
        else
            dagr_error_set_raw(ck->msg);
        ck->status = ckpt_end(ck, ck->comm, s);
        MPI_Comm_free(&ck->comm);
    }
    snprintf(ck->msg, sizeof ck->msg, "%s", dagr_last_error());
}

/* The asynchronous checkpoint's thread: opens the file, writes this rank's copies, and ends
 * the file with the other ranks' threads. */
static void *ckpt_thread(void *arg) {
    ckpt_t *ck = arg;
    /* The call starts the thread before it inserts the tasks (so that they may lend their
     * buffers to it), and their insertion's outcome is ck->status. */
    pthread_mutex_lock(&ck->stage.lock);
    while (!ck->inserted)
        pthread_cond_wait(&ck->inserted_cond, &ck->stage.lock);
    pthread_mutex_unlock(&ck->stage.lock);
    async_open(ck);
    async_end(ck);
    return NULL;
}

/* The pending work's end, at the next wait or checkpoint call: joins the thread. */
static dagr_status_t ckpt_finish(dagr_ctx_t *ctx, void *arg, dagr_status_t waited) {
    (void)waited; /* the writes' failures are the wait's too; the file's end is its own */
    ckpt_t *ck = arg;
    if (ck->threaded) {
        pthread_join(ck->thread, NULL);
    } else {
        /* No thread could be started: the main thread opened the file at the call; it waits
         * for the tasks and writes and ends it now. */
        (void)dagr_wait_all(ctx);
        async_end(ck);
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

/* What this rank's staged copies take from the data pool, at most the cap. Handles that
 * start on a file block and live in pool buffers that start on a page are lent, not copied
 * (a strided one is copied all the same, only without memory kept for it). */
static size_t staged_bytes(dagr_ctx_t *ctx, const ckpt_t *ck) {
    size_t sum = 0;
    for (int64_t k = 0; k < ck->L.n; k++) {
        size_t n = (size_t)row_bytes(ck->L.table + k * TABLE_COLS);
        bool lent = n >= DATA_BUF_PAGE_MIN && ck->L.off[k] % DIO_ALIGN == 0;
        if (n && !lent && data_shape(ck->L.h[k]).owner == dagr_rank(ctx))
            sum += (n + DIO_ALIGN + 127) / 64 * 64; /* the alignment's pad, the block's header */
    }
    return sum < ck->stage.cap ? sum : ck->stage.cap;
}

dagr_status_t dagr_checkpoint_async(dagr_ctx_t *ctx, const char *path) {
    DAGR_CHECK(ctx, DAGR_ERR_ARG, "ctx is NULL");
    if (ctx_has_pending(ctx)) DAGR_TRY(ctx_run_pending(ctx, DAGR_OK));
    ckpt_t *ck;
    DAGR_TRY(ckpt_prepare(ctx, path, true, &ck));
    stage_plan(&ck->stage, ck->L.total);
    /* The copies' memory stays resident until the next checkpoint, which will want it. */
    data_buf_hold(staged_bytes(ctx, ck));
    /* Started here, in the same order on every rank; completed by the thread. */
    int e = MPI_Comm_idup(ctx_comm(ctx), &ck->comm, &ck->dup);
    if (e != MPI_SUCCESS) {
        ckpt_free(ck);
        return dagr_error_mpi(e, __FILE__, __LINE__, "MPI_Comm_idup");
    }
    ck->threaded = pthread_create(&ck->thread, NULL, ckpt_thread, ck) == 0;
    /* Lending needs the thread: without it the main thread writes the blocks only after a
     * wait, which lent blocks' tasks would keep from ending. */
    ck->stage.lend = ck->threaded;
    /* The tasks go in before the file exists: they lend or copy their handles (a task that
     * can do neither waits for the file, stage_wait_opened). A failure to insert them all
     * fails the checkpoint on every rank, at the next wait; the thread waits for those
     * inserted. */
    ck->status = ckpt_insert_extents(ctx, &ck->L, -1, true, ck->sums, &ck->written, &ck->ended,
                                     &ck->local, &ck->stage, ck->tmp);
    if (ck->status != DAGR_OK) snprintf(ck->msg, sizeof ck->msg, "%s", dagr_last_error());
    pthread_mutex_lock(&ck->stage.lock);
    ck->inserted = true;
    pthread_cond_broadcast(&ck->inserted_cond);
    pthread_mutex_unlock(&ck->stage.lock);
    /* Without a thread this rank's main thread opens the file with the others now (they wait
     * for it in their threads), and ends it at the next wait. */
    if (!ck->threaded) async_open(ck);
    ctx_set_pending(ctx, &(ctx_pending_t){.finish = ckpt_finish, .drop = ckpt_drop, .arg = ck});
    return DAGR_OK;
}
