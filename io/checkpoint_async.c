/* dagr_checkpoint_async (see include/dagr/io.h and the top of checkpoint.c): the staged
 * copies its write tasks leave, and the thread that writes them and ends the file.
 *
 * Direct writes. The thread writes each staged block with O_DIRECT straight into /data's
 * storage (contiguous, allocated when the file is laid out: its offset is fixed), the block
 * having been copied to an address aligned as its place in the file is. A buffered write
 * copies the bytes into the page cache, and that copy, then the kernel's writeback at the
 * fsync, is CPU work taken from the workers, which compute on the same cores while the
 * checkpoint writes: on the 2-core VM with 2 ranks (stencil sweeps, 72 MiB a rank a
 * checkpoint, 2026-12-04) the thread spent 25-150 ms of CPU a checkpoint in H5Dwrite and
 * about as much as the whole synchronous checkpoint cost; a direct write has the device
 * move the bytes (12-34 ms of CPU for those 72 MiB there). The parts of a block that do not fill a
 * whole 4 KiB block of the file (its first and last bytes) are written through the page
 * cache, never the same file block as a direct write. Where the file system refuses
 * O_DIRECT (some network and FUSE file systems), or with DAGR_CKPT_DIRECT=0, blocks go
 * through HDF5 as before. */
#include "checkpoint_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DIO_ALIGN ((uint64_t)4096) /* the largest logical block size of common devices */

void stage_open_direct(stage_t *st, const char *tmp, hid_t data) {
    st->dfd = st->bfd = -1;
    const char *env = getenv("DAGR_CKPT_DIRECT");
    if (env && !strcmp(env, "0")) return;
    h5_enter();
    haddr_t off = H5Dget_offset(data);
    h5_leave();
    if (off == HADDR_UNDEF) return;
    st->dfd = open(tmp, O_WRONLY | O_DIRECT);
    st->bfd = st->dfd >= 0 ? open(tmp, O_WRONLY) : -1;
    if (st->bfd < 0) stage_close_direct(st);
    st->data_off = (uint64_t)off;
    st->aligned = st->dfd >= 0;
}

void stage_close_direct(stage_t *st) {
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

/* Writes a staged block into its place in the file: the whole file blocks it covers with
 * O_DIRECT, its ends through the page cache. EINVAL: the file system refused the direct
 * write (nothing was written); 0 or another errno otherwise. */
static int write_direct(stage_t *st, const staged_t *b) {
    uint64_t at = st->data_off + b->a.off, end = at + b->n;
    uint64_t lo = (at + DIO_ALIGN - 1) / DIO_ALIGN * DIO_ALIGN, hi = end / DIO_ALIGN * DIO_ALIGN;
    const char *p = b->p;
    if (hi <= lo) return pwrite_all(st->bfd, p, b->n, at); /* within one or two file blocks */
    int e = pwrite_all(st->dfd, p + (lo - at), hi - lo, lo);
    if (e == 0 && lo > at) e = pwrite_all(st->bfd, p, lo - at, at);
    if (e == 0 && end > hi) e = pwrite_all(st->bfd, p + (hi - at), end - hi, hi);
    return e;
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
     * place in the file. The copies are data buffers like the tiles they copy, from the
     * data pool: huge pages, mostly still resident from the previous checkpoint (n > 0:
     * empty versions are never staged). */
    size_t shift = st->aligned ? (size_t)((st->data_off + a->off) % DIO_ALIGN) : 0;
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
    *b = (staged_t){.next = NULL, .a = *a, .p = p, .raw = raw, .n = n};
    pthread_mutex_lock(&st->lock);
    if (st->tail)
        st->tail->next = b;
    else
        st->head = b;
    st->tail = b;
    pthread_cond_signal(&st->cond);
    pthread_mutex_unlock(&st->lock);
    return true;
}

/* The next staged block, or NULL when none came within ms milliseconds. */
staged_t *stage_take(stage_t *st, long ms) {
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

/* Writes a staged block (checksum, then its extent: directly where it can, else through
 * HDF5) and frees it. The thread's only. */
static dagr_status_t stage_write(stage_t *st, staged_t *b) {
    *b->a.sum = ckpt_checksum(b->p, b->n);
    dagr_status_t s = DAGR_OK;
    int e = EINVAL;
    if (st->dfd >= 0) {
        int64_t t0 = trace_io_begin(b->a.ctx);
        e = write_direct(st, b);
        trace_io_end(b->a.ctx, t0, TRACE_IO_CKPT_WRITE, b->n, -1);
        if (e == EINVAL) stage_close_direct(st); /* refused: HDF5 from now on */
        if (e && e != EINVAL)
            s = DAGR_ERR(DAGR_ERR_IO,
                         "cannot write data handle %lld (%zu bytes) to checkpoint '%s': %s",
                         (long long)b->a.k, b->n, b->a.path, strerror(e));
    }
    if (e == EINVAL) s = ckpt_move_extent(&b->a, b->p, b->n, true, -1);
    if (s == DAGR_OK) atomic_fetch_add(b->a.written, 1);
    pthread_mutex_lock(&st->lock);
    st->bytes -= b->n;
    pthread_mutex_unlock(&st->lock);
    data_buf_free(b->raw);
    free(b);
    return s;
}

/* Writes what this rank's tasks staged, until they have all completed. The thread's loop,
 * or the main thread's when there is no thread (then after a wait). */
void ckpt_write_staged(ckpt_t *ck) {
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
    ckpt_write_staged(ck);
    stage_close_direct(&ck->stage);
    if (atomic_load(&ck->go) < 0) {
        ck->status = DAGR_ERR(DAGR_ERR_STATE, "checkpoint '%s' abandoned", ck->path);
    } else {
        ck->status = ckpt_end(ck, ck->comm, ckpt_agree(ck, ck->comm, ckpt_writes_status(ck)));
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
        ckpt_write_staged(ck);
        stage_close_direct(&ck->stage);
        if (s == DAGR_OK) s = da_agree(ctx, ckpt_writes_status(ck));
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
