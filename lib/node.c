/* Nodes: creation, reference counting, dependency edges and completion.
 *
 * Life of a node: created by the inserting thread with npred = 1 (the insertion guard) and
 * refs = 1 (released at completion); each edge from an unfinished predecessor adds one to
 * npred; dropping the guard makes it ready if nothing else is pending. Completion marks it
 * done under its lock, so an edge added concurrently either lands in the successor list
 * (and is honoured) or sees `done` and is skipped. */
#include "lib_impl.h"

#include <stdlib.h>
#include <string.h>

node_t *node_new(struct dagr_ctx *ctx, node_kind_t kind) {
    node_pool_t *p = &ctx->nodes;
    if (!p->spare) p->spare = atomic_exchange_explicit(&p->returned, NULL, memory_order_acquire);
    node_t *n = p->spare;
    if (n) {
        p->spare = n->next_free; /* its lock is still initialised */
        atomic_fetch_sub_explicit(&p->pooled, 1, memory_order_relaxed);
    } else {
        n = malloc(sizeof *n);
        if (!n) return NULL;
        pthread_mutex_init(&n->lock, NULL);
    }
    /* Only the header needs clearing: acc/map/args are filled by the inserter. */
    memset(n, 0, offsetof(node_t, acc));
    n->acc = n->acc_inline;
    n->map = n->map_inline;
    atomic_init(&n->npred, 1);
    atomic_init(&n->refs, 1);
    atomic_init(&n->done, false);
    atomic_init(&n->poisoned, false);
    n->kind = (uint8_t)kind;
    n->succ = n->succ_inline;
    n->capsucc = NODE_INLINE_SUCC;
    n->nacc = 0;
    n->args = NULL;
    n->staging = NULL;
    n->p2p_left = 0;
    n->staging_heap = false;
    n->pinned = false;
    n->tr_node = TRACE_NONE;
    return n;
}

bool node_reserve(node_t *n, int nacc, int nuser) {
    if (nacc <= NODE_INLINE_ACC + 1 && nuser <= NODE_INLINE_ACC) return true;
    /* One block: the accesses, then the map. */
    node_access_t *acc = malloc((size_t)nacc * sizeof *acc + (size_t)nuser * sizeof(int));
    if (!acc) return false;
    n->acc = acc;
    n->map = (int *)(acc + nacc);
    return true;
}

void node_ref(node_t *n) {
    atomic_fetch_add_explicit(&n->refs, 1, memory_order_relaxed);
}

void node_unref(struct dagr_ctx *ctx, node_t *n) {
    if (atomic_fetch_sub_explicit(&n->refs, 1, memory_order_acq_rel) != 1) return;
    for (int i = 0; i < n->nacc; i++)
        data_unref(n->acc[i].h);
    if (n->acc != n->acc_inline) free(n->acc);
    if (n->succ != n->succ_inline) free(n->succ);
    if (n->args != n->args_inline) free(n->args);
    node_pool_t *p = &ctx->nodes;
    if (atomic_load_explicit(&p->pooled, memory_order_relaxed) >= NODE_POOL_MAX) {
        pthread_mutex_destroy(&n->lock);
        free(n);
        return;
    }
    atomic_fetch_add_explicit(&p->pooled, 1, memory_order_relaxed);
    node_t *head = atomic_load_explicit(&p->returned, memory_order_relaxed);
    do
        n->next_free = head;
    while (!atomic_compare_exchange_weak_explicit(&p->returned, &head, n, memory_order_release,
                                                  memory_order_relaxed));
}

static void free_list(node_t *n) {
    for (node_t *next; n; n = next) {
        next = n->next_free;
        pthread_mutex_destroy(&n->lock);
        free(n);
    }
}

void node_pool_fini(node_pool_t *p) {
    free_list(p->spare);
    free_list(atomic_exchange(&p->returned, NULL));
    p->spare = NULL;
}

void node_edge(struct dagr_ctx *ctx, node_t *pred, node_t *succ) {
    pthread_mutex_lock(&pred->lock);
    if (atomic_load_explicit(&pred->done, memory_order_relaxed)) {
        bool bad = pred->failed || atomic_load(&pred->poisoned);
        pthread_mutex_unlock(&pred->lock);
        if (bad) atomic_store(&succ->poisoned, true);
        return;
    }
    if (pred->nsucc == pred->capsucc) {
        int cap = pred->capsucc * 2;
        node_t **s = malloc((size_t)cap * sizeof *s);
        if (!s) {
            /* Without the edge the successor could run too early: fail it instead, so the
             * user sees DAGR_ERR_NOMEM at the next wait rather than wrong data. */
            pthread_mutex_unlock(&pred->lock);
            atomic_store(&succ->poisoned, true);
            ctx_record_failure(ctx, DAGR_ERR_NOMEM, "out of memory recording a dependency");
            return;
        }
        memcpy(s, pred->succ, (size_t)pred->nsucc * sizeof *s);
        if (pred->succ != pred->succ_inline) free(pred->succ);
        pred->succ = s;
        pred->capsucc = cap;
    }
    pred->succ[pred->nsucc++] = succ;
    atomic_fetch_add_explicit(&succ->npred, 1, memory_order_relaxed);
    pthread_mutex_unlock(&pred->lock);
}

static void node_ready(struct dagr_ctx *ctx, node_t *n) {
    if (n->kind == NODE_TASK)
        sched_push(ctx, n);
    else
        comm_push(ctx, n);
}

void node_release_guard(struct dagr_ctx *ctx, node_t *n) {
    if (atomic_fetch_sub_explicit(&n->npred, 1, memory_order_acq_rel) == 1) node_ready(ctx, n);
}

void node_complete(struct dagr_ctx *ctx, node_t *n) {
    for (int i = 0; i < n->nacc; i++)
        data_pending_done(n->acc[i].h);
    bool bad = n->failed || atomic_load(&n->poisoned);

    pthread_mutex_lock(&n->lock);
    atomic_store_explicit(&n->done, true, memory_order_release);
    int nsucc = n->nsucc;
    node_t **succ = n->succ;
    n->nsucc = 0;
    pthread_mutex_unlock(&n->lock);

    /* The successor list is ours now: nobody appends to a done node. */
    for (int i = 0; i < nsucc; i++) {
        if (bad) atomic_store(&succ[i]->poisoned, true);
        node_release_guard(ctx, succ[i]);
    }
    if (n->kind == NODE_TASK && n->done_count) atomic_fetch_add(n->done_count, 1);
    /* A done node needs its handles no more, though the node itself may live on for long in
     * the reader list of a handle it read: a task that reads a long-lived table partition
     * and writes temporary buckets would otherwise keep the buckets' memory until that
     * partition is next written. Every use of acc ends here (node_complete is each path's
     * last step), and node_unref finds nothing left to drop.
     * Our references go first, so that a wait this completion ends finds the data of the
     * handles destroyed meanwhile freed (and their spill slots back). */
    for (int i = 0; i < n->nacc; i++)
        data_unref(n->acc[i].h);
    n->nacc = 0;
    node_unref(ctx, n);
    ctx_node_finished(ctx);
}
