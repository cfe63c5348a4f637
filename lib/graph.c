/* The graph: turning a task's accesses into local dependencies and planned transfers, and
 * bringing data home (task.c checks and makes the tasks).
 *
 * Every rank runs this for every task. The executing rank builds a TASK node; the rank
 * holding the latest version of a handle the task reads builds a SEND node for it (unless
 * the executing rank already holds that version); the executing rank builds the matching
 * RECV node. All other ranks only advance version and holder, so planning costs O(1) per
 * access off the executing rank. */
#include "lib_impl.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------
 * Per-handle dependency tracking on this rank (main thread only)
 * ---------------------------------------------------------------------------------------- */

static dagr_status_t readers_append(dagr_ctx_t *ctx, dagr_data_t *h, node_t *n) {
    if (h->nreaders == h->capreaders) {
        /* Drop finished readers before growing: a long run of reads stays small. */
        int kept = 0;
        for (int i = 0; i < h->nreaders; i++) {
            node_t *r = h->readers[i];
            if (atomic_load_explicit(&r->done, memory_order_acquire))
                node_unref(ctx, r);
            else
                h->readers[kept++] = r;
        }
        h->nreaders = kept;
    }
    if (h->nreaders == h->capreaders) {
        int cap = h->capreaders ? 2 * h->capreaders : 4;
        node_t **r = realloc(h->readers, (size_t)cap * sizeof *r);
        DAGR_CHECK(r, DAGR_ERR_NOMEM, "cannot grow the reader list of data #%llu",
                   (unsigned long long)h->id);
        h->readers = r;
        h->capreaders = cap;
    }
    node_ref(n);
    h->readers[h->nreaders++] = n;
    return DAGR_OK;
}

/* n reads the local buffer: after the last local writer. */
static dagr_status_t dep_read(dagr_ctx_t *ctx, dagr_data_t *h, node_t *n) {
    if (h->last_writer) node_edge(ctx, h->last_writer, n);
    if (ctx->trace && h->last_writer) trace_edge(ctx, h->last_writer, n);
    return readers_append(ctx, h, n);
}

/* n overwrites the local buffer: after the last writer and every reader since (WAW, WAR). */
static void dep_write(dagr_ctx_t *ctx, dagr_data_t *h, node_t *n) {
    if (h->last_writer) {
        node_edge(ctx, h->last_writer, n);
        if (ctx->trace) trace_edge(ctx, h->last_writer, n);
        node_unref(ctx, h->last_writer);
    }
    for (int i = 0; i < h->nreaders; i++) {
        node_edge(ctx, h->readers[i], n);
        if (ctx->trace) trace_edge(ctx, h->readers[i], n);
        node_unref(ctx, h->readers[i]);
    }
    h->nreaders = 0;
    node_ref(n);
    h->last_writer = n;
}

void graph_forget_nodes(dagr_ctx_t *ctx, dagr_data_t *h) {
    if (h->last_writer) node_unref(ctx, h->last_writer);
    h->last_writer = NULL;
    for (int i = 0; i < h->nreaders; i++)
        node_unref(ctx, h->readers[i]);
    h->nreaders = 0;
}

/* Registers n as a local user of h (keeps h and its buffer alive until n finishes). */
static void node_use(dagr_ctx_t *ctx, node_t *n, dagr_data_t *h, uint8_t mode) {
    (void)ctx;
    data_ref(h);
    data_pending_add(h);
    n->acc[n->nacc].h = h;
    n->acc[n->nacc].mode = mode;
    n->nacc++;
}

/* ------------------------------------------------------------------------------------------
 * Transfers
 * ---------------------------------------------------------------------------------------- */

static void inflight_add(dagr_ctx_t *ctx) {
    atomic_fetch_add_explicit(&ctx->inflight, 1, memory_order_relaxed);
}

/* On the holder: send the latest version of h to `dest`, after its local writer. */
static dagr_status_t plan_send(dagr_ctx_t *ctx, dagr_data_t *h, int dest, uint64_t seq) {
    node_t *s = node_new(ctx, NODE_SEND);
    DAGR_CHECK(s, DAGR_ERR_NOMEM, "cannot allocate a send node");
    s->seq = seq;
    s->version = h->version;
    s->peer = dest;
    s->priority = 0;
    if (ctx->trace) trace_node(ctx, s, h);
    node_use(ctx, s, h, DAGR_READ);
    inflight_add(ctx);
    dagr_status_t st = dep_read(ctx, h, s);
    data_have_set(h, dest);
    node_release_guard(ctx, s);
    return st;
}

/* On a reader that lacks the latest version: receive it from the holder into the local
 * buffer, after every local use of the previous contents. */
static dagr_status_t plan_recv(dagr_ctx_t *ctx, dagr_data_t *h, uint64_t seq, int priority) {
    node_t *r = node_new(ctx, NODE_RECV);
    DAGR_CHECK(r, DAGR_ERR_NOMEM, "cannot allocate a receive node");
    r->seq = seq;
    r->version = h->version;
    r->peer = h->holder;
    r->priority = priority;
    if (ctx->trace) trace_node(ctx, r, h);
    node_use(ctx, r, h, DAGR_WRITE);
    inflight_add(ctx);
    dep_write(ctx, h, r);
    pthread_mutex_lock(&h->lock);
    h->local_version = (int64_t)h->version;
    pthread_mutex_unlock(&h->lock);
    node_release_guard(ctx, r);
    return DAGR_OK;
}

/* This rank writes the next version of h. */
static void local_write(dagr_ctx_t *ctx, dagr_data_t *h) {
    pthread_mutex_lock(&h->lock);
    h->version++;
    h->local_version = (int64_t)h->version;
    pthread_mutex_unlock(&h->lock);
    h->holder = ctx->rank;
    data_have_reset(h, ctx->rank);
}

dagr_status_t graph_migrate_home(dagr_ctx_t *ctx, dagr_data_t *h) {
    if (h->holder == h->owner) return DAGR_OK;
    /* The owner may hold the latest version already (an earlier read fetched it): the same
     * test on both sides, as for any read, keeps the two plans matched. */
    dagr_status_t s = DAGR_OK;
    if (ctx->rank == h->owner && h->local_version != (int64_t)h->version)
        s = plan_recv(ctx, h, ctx->div.count, 0);
    else if (ctx->rank == h->holder && !data_have_test(h, h->owner))
        s = plan_send(ctx, h, h->owner, ctx->div.count);
    /* Both now hold the latest version; the owner becomes the one others fetch from. */
    h->holder = h->owner;
    data_have_reset(h, h->owner);
    return s;
}

/* Unlinks the handle from the live list, brings its latest contents home and drops the
 * user's reference; nodes still using it keep it alive. */
dagr_status_t data_retire(dagr_data_t *h) {
    dagr_ctx_t *ctx = h->ctx;
    dagr_status_t s = DAGR_OK;
    if (!ctx->broken) s = graph_migrate_home(ctx, h);
    graph_forget_nodes(ctx, h);
    if (h->prev)
        h->prev->next = h->next;
    else
        ctx->live = h->next;
    if (h->next) h->next->prev = h->prev;
    h->prev = h->next = NULL;
    data_unref(h);
    return s;
}

/* ------------------------------------------------------------------------------------------
 * Tasks in the graph (task.c makes them)
 * ---------------------------------------------------------------------------------------- */

/* The local task n (its node made, its accesses merged in u): a RECV for each version it
 * reads that this rank lacks, and its local dependencies; then it may run. */
dagr_status_t graph_add_task(dagr_ctx_t *ctx, node_t *n, const uniq_t *u, int nu, uint64_t seq,
                             int priority) {
    inflight_add(ctx);

    dagr_status_t st = DAGR_OK;
    for (int j = 0; j < nu && st == DAGR_OK; j++) {
        dagr_data_t *h = u[j].h;
        if ((u[j].mode & DAGR_READ) && h->local_version != (int64_t)h->version)
            st = plan_recv(ctx, h, seq, priority);
        node_use(ctx, n, h, u[j].mode);
        if (u[j].mode == DAGR_READ) {
            if (st == DAGR_OK) st = dep_read(ctx, h, n);
        } else {
            dep_write(ctx, h, n);
            local_write(ctx, h);
        }
    }
    if (st != DAGR_OK) {
        /* The graph is incomplete now: fail the task so the user hears of it at the wait. */
        n->failed = true;
        ctx_record_failure(ctx, st, dagr_last_error());
    }
    node_release_guard(ctx, n);
    return st;
}

/* Another rank's task: a SEND for each version it reads that this rank holds and the runner
 * lacks; the handles it writes move on. */
dagr_status_t graph_plan_remote(dagr_ctx_t *ctx, const uniq_t *u, int nu, int runner,
                                uint64_t seq) {
    dagr_status_t st = DAGR_OK;
    for (int j = 0; j < nu; j++) {
        dagr_data_t *h = u[j].h;
        if ((u[j].mode & DAGR_READ) && h->holder == ctx->rank && !data_have_test(h, runner)) {
            dagr_status_t s = plan_send(ctx, h, runner, seq);
            if (st == DAGR_OK) st = s;
        }
        if (u[j].mode & DAGR_WRITE) data_superseded(h, runner);
    }
    if (st != DAGR_OK) ctx_record_failure(ctx, st, dagr_last_error());
    return st;
}
