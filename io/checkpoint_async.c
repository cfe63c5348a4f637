/* dagr_checkpoint_async (see include/dagr/io.h and the top of checkpoint.c): the staged
 * copies its write tasks leave, and the thread that writes them and ends the file. */
#include "checkpoint_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A copy of the task's handle, handed to the thread; false when over the cap or out of memory
 * (the task then writes the handle itself). */
bool stage_put(stage_t *st, const ckpt_args_t *a, const void *buf, size_t ld, size_t n) {
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
        ckpt_repack(a, p, (void *)buf, ld, true);
    else
        memcpy(p, buf, n);
    *b = (staged_t){.next = NULL, .a = *a, .p = p, .n = n};
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

/* Writes a staged block (checksum, then its extent) and frees it. */
static dagr_status_t stage_write(stage_t *st, staged_t *b) {
    *b->a.sum = ckpt_checksum(b->p, b->n);
    dagr_status_t s = ckpt_move_extent(&b->a, b->p, b->n, true, -1);
    if (s == DAGR_OK) atomic_fetch_add(b->a.written, 1);
    pthread_mutex_lock(&st->lock);
    st->bytes -= b->n;
    pthread_mutex_unlock(&st->lock);
    free(b->p);
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
    if (atomic_load(&ck->go) < 0) {
        ck->status = DAGR_ERR(DAGR_ERR_STATE, "checkpoint '%s' abandoned", ck->path);
    } else {
        ck->status = ckpt_end(ck, ck->comm, ckpt_agree(ck->comm, ckpt_writes_status(ck)));
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
