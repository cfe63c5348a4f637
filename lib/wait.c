/* Collective completion: dagr_wait_all, dagr_fetch, and agreeing on one error everywhere. */
#include "lib_impl.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define XFER_CHUNK ((size_t)1 << 30) /* MPI counts are ints */

int ctx_wait_request(MPI_Request *req) {
    /* Waiting ranks used to spin inside MPI_Allreduce for as long as the slowest rank
     * computed: a core taken from the workers, and MPICH's lock from the progress thread
     * (whose transfers then stalled; a 2-rank gemm in MPICH's network mode ran at half
     * speed). Test in a loop for up to 20 ms, which covers ranks arriving nearly together at
     * full speed (sleeping sooner cost a short wait_all up to 2x), then sleep between tests,
     * longer and longer up to 200 us. */
    double until = dagr_now() + 20e-3;
    long ns = 0;
    for (int spins = 1;; spins++) {
        int done = 0;
        int e = MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (e != MPI_SUCCESS || done) return e;
        if (ns == 0 && (spins % 256 || dagr_now() < until)) continue;
        ns = ns ? (ns < 100000 ? 2 * ns : 200000) : 20000;
        struct timespec ts = {0, ns};
        nanosleep(&ts, NULL);
    }
}

/* The lowest failing rank `first` (< size) sends its status and message to every rank. */
static dagr_status_t share_failure(MPI_Comm comm, int first, dagr_status_t mine, const char *msg) {
    int rank;
    MPI_Comm_rank(comm, &rank);
    struct {
        int status;
        char msg[DAGR_ERRMSG_MAX];
    } note = {.status = mine};
    if (rank == first) snprintf(note.msg, sizeof note.msg, "%s", msg ? msg : "");
    MPI_Request req;
    DAGR_TRY_MPI(MPI_Ibcast(&note, (int)sizeof note, MPI_BYTE, first, comm, &req));
    DAGR_TRY_MPI(ctx_wait_request(&req));
    dagr_error_set_raw(note.msg);
    return (dagr_status_t)note.status;
}

/* Collective: every rank passes its own status and message; all return the status of the
 * lowest-numbered failing rank, with its message, or DAGR_OK. */
dagr_status_t ctx_agree(MPI_Comm comm, dagr_status_t mine, const char *msg) {
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    int bad = mine != DAGR_OK ? rank : size, first = size;
    MPI_Request req;
    DAGR_TRY_MPI(MPI_Iallreduce(&bad, &first, 1, MPI_INT, MPI_MIN, comm, &req));
    DAGR_TRY_MPI(ctx_wait_request(&req));
    if (first == size) return DAGR_OK;
    return share_failure(comm, first, mine, msg);
}

dagr_status_t ctx_sync(dagr_ctx_t *ctx, dagr_status_t mine, const char *msg) {
    if (ctx->broken) {
        dagr_error_set_raw(ctx->broken_msg);
        return DAGR_ERR_DIVERGED;
    }
    divergence_enter(ctx);
    int first = ctx->size;
    DAGR_TRY(divergence_check(ctx, mine != DAGR_OK ? ctx->rank : ctx->size, &first));
    if (first == ctx->size) return DAGR_OK;
    return share_failure(ctx->comm, first, mine, msg);
}

void ctx_record_failure(dagr_ctx_t *ctx, dagr_status_t s, const char *msg) {
    pthread_mutex_lock(&ctx->err_lock);
    if (ctx->err_status == DAGR_OK) {
        ctx->err_status = s;
        snprintf(ctx->err_msg, sizeof ctx->err_msg, "%s", msg);
    }
    pthread_mutex_unlock(&ctx->err_lock);
}

/* Waits until at most target nodes are in flight, or until ms milliseconds have passed (ms <
 * 0: no limit). Returns whether the target was reached. */
static bool wait_inflight(dagr_ctx_t *ctx, long target, long ms) {
    if (atomic_load(&ctx->inflight) <= target) return true;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&ctx->wait_lock);
    ctx->wait_target = target;
    atomic_store(&ctx->waiter, true);
    int e = 0;
    while (atomic_load(&ctx->inflight) > target && e != ETIMEDOUT) {
        if (ms < 0)
            pthread_cond_wait(&ctx->wait_cond, &ctx->wait_lock);
        else
            e = pthread_cond_timedwait(&ctx->wait_cond, &ctx->wait_lock, &until);
    }
    atomic_store(&ctx->waiter, false);
    pthread_mutex_unlock(&ctx->wait_lock);
    return atomic_load(&ctx->inflight) <= target;
}

void ctx_wait_inflight(dagr_ctx_t *ctx, long target) {
    wait_inflight(ctx, target, -1);
}

dagr_status_t ctx_wait_backlog(dagr_ctx_t *ctx, long target) {
    long ms = 10;
    while (!wait_inflight(ctx, target, ms)) {
        /* A peer's collective proves the graphs differ: join its check (every rank then gets
         * DAGR_ERR_DIVERGED). Otherwise look again later, less often. */
        if (divergence_peer_behind(ctx)) {
            dagr_status_t s = ctx_sync(ctx, DAGR_OK, NULL);
            if (s != DAGR_OK) return s;
        }
        ms = ms < 500 ? 2 * ms : 1000;
    }
    return DAGR_OK;
}

void ctx_node_finished(dagr_ctx_t *ctx) {
    long left = atomic_fetch_sub(&ctx->inflight, 1) - 1;
    /* Pairs with the waiter's store-then-load: one of the two sees the other. */
    if (atomic_load(&ctx->waiter) && left <= ctx->wait_target) {
        pthread_mutex_lock(&ctx->wait_lock);
        pthread_cond_signal(&ctx->wait_cond);
        pthread_mutex_unlock(&ctx->wait_lock);
    }
}

dagr_status_t dagr_wait_all(dagr_ctx_t *ctx) {
    DAGR_CHECK(ctx, DAGR_ERR_ARG, "ctx is NULL");
    int64_t t0 = ctx->trace ? trace_ticks() : 0;
    /* Compare graphs before waiting: ranks with different graphs could wait forever. */
    DAGR_TRY(ctx_sync(ctx, DAGR_OK, NULL));
    dagr_status_t st = DAGR_OK;
    for (dagr_data_t *h = ctx->live; h; h = h->next) {
        dagr_status_t s = graph_migrate_home(ctx, h);
        if (st == DAGR_OK) st = s;
    }
    ctx_wait_inflight(ctx, 0);
    if (ctx->trace) trace_wait(ctx, t0, false);
    for (dagr_data_t *h = ctx->live; h; h = h->next) {
        graph_forget_nodes(ctx, h);
        data_flush_copies(h);
    }
    pthread_mutex_lock(&ctx->err_lock);
    dagr_status_t mine = ctx->err_status;
    char msg[DAGR_ERRMSG_MAX];
    snprintf(msg, sizeof msg, "%s", ctx->err_msg);
    ctx->err_status = DAGR_OK;
    ctx->err_msg[0] = 0;
    pthread_mutex_unlock(&ctx->err_lock);
    if (mine == DAGR_OK && st != DAGR_OK) {
        mine = st;
        snprintf(msg, sizeof msg, "%s", dagr_last_error());
    }
    return ctx_sync(ctx, mine, msg);
}

static dagr_status_t fetch_move(dagr_ctx_t *ctx, const dagr_data_t *data, size_t bytes, void *src,
                                void *dst, int root);
static dagr_status_t fetch_pinned(dagr_ctx_t *ctx, dagr_data_t *data, size_t bytes, void *dst,
                                  int root);

dagr_status_t data_sizes_agree(dagr_ctx_t *ctx, dagr_data_t *const *hs, size_t n, uint64_t *out) {
    bool any = false;
    for (size_t k = 0; k < n; k++) {
        const dagr_data_t *h = hs[k];
        any |= h->dynamic;
        out[k] = !h->dynamic || h->owner == ctx->rank ? h->bytes : 0;
    }
    /* Whether any handle is dynamic is the same everywhere: so is taking part below. */
    if (!any) return DAGR_OK;
    enum { CHUNK = 1 << 20 };
    for (size_t off = 0; off < n; off += CHUNK) {
        int cnt = (int)(n - off < CHUNK ? n - off : CHUNK);
        MPI_Request req;
        DAGR_TRY_MPI(MPI_Iallreduce(MPI_IN_PLACE, out + off, cnt, MPI_UINT64_T, MPI_MAX, ctx->comm,
                                    &req));
        DAGR_TRY_MPI(ctx_wait_request(&req));
    }
    return DAGR_OK;
}

dagr_status_t dagr_data_bytes_fetch(dagr_data_t *data, size_t *bytes) {
    DAGR_CHECK(data, DAGR_ERR_ARG, "data is NULL");
    DAGR_CHECK(bytes, DAGR_ERR_ARG, "bytes is NULL");
    DAGR_TRY(dagr_wait_all(data->ctx));
    uint64_t b;
    DAGR_TRY(data_sizes_agree(data->ctx, &data, 1, &b));
    *bytes = (size_t)b;
    return DAGR_OK;
}

dagr_status_t dagr_fetch(dagr_data_t *data, void *dst, int root) {
    DAGR_CHECK(data, DAGR_ERR_ARG, "data is NULL");
    dagr_ctx_t *ctx = data->ctx;
    DAGR_CHECK(root >= -1 && root < ctx->size, DAGR_ERR_ARG, "root %d out of range [-1, %d)", root,
               ctx->size);
    DAGR_TRY(dagr_wait_all(ctx));
    uint64_t b;
    DAGR_TRY(data_sizes_agree(ctx, &data, 1, &b));
    size_t bytes = (size_t)b;

    bool receiving = root == -1 || root == ctx->rank;
    int owner = data->owner;
    bool is_owner = ctx->rank == owner;
    dagr_status_t mine = DAGR_OK;
    char msg[DAGR_ERRMSG_MAX] = "";
    if (receiving && !dst && bytes) {
        mine = DAGR_ERR_ARG;
        snprintf(msg, sizeof msg,
                 "wait.c: dst is NULL on receiving rank %d while the data has %zu bytes", ctx->rank,
                 bytes);
    }
    /* Out of core the owner's home may be on disk: read back and held for the copy. */
    bool pinned = false;
    if (mine == DAGR_OK && is_owner && ctx->store) {
        mine = data_pin(data, PIN_READ);
        pinned = mine == DAGR_OK;
        if (!pinned) snprintf(msg, sizeof msg, "%s", dagr_last_error());
    }
    mine = ctx_sync(ctx, mine, msg);
    if (mine != DAGR_OK) {
        if (pinned) data_unpin(data);
        return mine;
    }
    dagr_status_t s = fetch_pinned(ctx, data, bytes, dst, root);
    if (pinned) data_unpin(data);
    return s;
}

/* dagr_fetch once the owner's home is in memory. */
static dagr_status_t fetch_pinned(dagr_ctx_t *ctx, dagr_data_t *data, size_t bytes, void *dst,
                                  int root) {
    bool receiving = root == -1 || root == ctx->rank;
    int owner = data->owner;
    bool is_owner = ctx->rank == owner;
    dagr_status_t mine;
    char msg[DAGR_ERRMSG_MAX];
    /* After the wait the owner's home buffer holds the latest version. */
    if (is_owner && receiving && bytes && dst != data->home) {
        if (data_strided(data))
            data_pack(data, dst);
        else
            memcpy(dst, data->home, bytes);
    }
    if (root == owner || bytes == 0) return DAGR_OK;
    /* The owner sends packed contents: a strided home is packed into a scratch copy first
     * (only the owner knows whether its home is strided, hence the agreement). */
    void *packed = is_owner && data_strided(data) ? (receiving ? dst : malloc(bytes)) : NULL;
    mine = !is_owner || !data_strided(data) || packed ? DAGR_OK : DAGR_ERR_NOMEM;
    snprintf(msg, sizeof msg, "wait.c: cannot allocate %zu bytes to pack data #%llu", bytes,
             (unsigned long long)data->id);
    DAGR_TRY(ctx_sync(ctx, mine, msg));
    if (packed && packed != dst) data_pack(data, packed);
    dagr_status_t s = fetch_move(ctx, data, bytes, packed ? packed : data->home, dst, root);
    if (packed != dst) free(packed);
    return s;
}

/* Moves the owner's packed contents `src` to dst on root (every rank when root is -1). */
static dagr_status_t fetch_move(dagr_ctx_t *ctx, const dagr_data_t *data, size_t bytes, void *src,
                                void *dst, int root) {
    int owner = data->owner;
    bool is_owner = ctx->rank == owner;
    for (size_t off = 0; off < bytes; off += XFER_CHUNK) {
        int n = (int)(bytes - off < XFER_CHUNK ? bytes - off : XFER_CHUNK);
        char *mybuf = is_owner ? (char *)src + off : dst ? (char *)dst + off : NULL;
        if (root == -1) {
            DAGR_TRY_MPI(MPI_Bcast(mybuf, n, MPI_BYTE, owner, ctx->comm));
        } else if (is_owner) {
            DAGR_TRY_MPI(MPI_Send(mybuf, n, MPI_BYTE, root, 0, ctx->comm));
        } else if (ctx->rank == root) {
            DAGR_TRY_MPI(MPI_Recv(mybuf, n, MPI_BYTE, owner, 0, ctx->comm, MPI_STATUS_IGNORE));
        }
    }
    return DAGR_OK;
}
