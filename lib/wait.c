/* Collective completion: dagr_wait_all, dagr_fetch and sizes agreed after a wait. */
#include "lib_impl.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define XFER_CHUNK ((size_t)1 << 30) /* MPI counts are ints */

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
    /* What tasks on devices wrote last goes back to the host copies (lazy write-back). */
    dagr_status_t wb = device_writeback_all(ctx);
    if (st == DAGR_OK) st = wb;
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
    return ctx_run_pending(ctx, ctx_sync(ctx, mine, msg));
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
        DAGR_TRY_MPI(
            MPI_Iallreduce(MPI_IN_PLACE, out + off, cnt, MPI_UINT64_T, MPI_MAX, ctx->comm, &req));
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
