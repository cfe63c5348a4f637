/* Task insertion: argument checks, the divergence hash, choosing the executing rank, and
 * turning accesses into local dependencies and planned transfers.
 *
 * Every rank runs this for every task. The executing rank builds a TASK node; the rank
 * holding the latest version of a handle the task reads builds a SEND node for it (unless
 * the executing rank already holds that version); the executing rank builds the matching
 * RECV node. All other ranks only advance version and holder, so planning costs O(1) per
 * access off the executing rank. */
#include "lib_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void dagr_task_opts_init(dagr_task_opts_t *opts) {
    if (!opts) return;
    opts->priority = 0;
    opts->rank = -1;
    opts->queue = NULL;
    opts->flops = 0.0;
    opts->where = DAGR_WHERE_ANY;
}

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

/* ------------------------------------------------------------------------------------------
 * dagr_spawn
 * ---------------------------------------------------------------------------------------- */

typedef struct uniq {
    dagr_data_t *h;
    uint8_t mode;
} uniq_t;

static dagr_status_t check_spawn(dagr_ctx_t *ctx, const dagr_kernel_t *k, const void *args,
                                 size_t args_size, int naccess, const dagr_access_t *access,
                                 const dagr_task_opts_t *opts) {
    DAGR_CHECK(ctx, DAGR_ERR_ARG, "ctx is NULL");
    DAGR_CHECK(!ctx->broken, DAGR_ERR_DIVERGED, "%s", ctx->broken_msg);
    DAGR_CHECK(k, DAGR_ERR_ARG, "kernel is NULL");
    DAGR_CHECK(k->name && k->name[0], DAGR_ERR_ARG, "kernel name is NULL or empty");
    DAGR_CHECK(k->cpu, DAGR_ERR_ARG, "kernel '%s' has no CPU body (cpu is NULL)", k->name);
    for (int i = 1; i < DAGR_KERNEL_MORE_CPU; i++)
        DAGR_CHECK(!k->cpu_more[i] || k->cpu_more[i - 1], DAGR_ERR_ARG,
                   "kernel '%s': cpu_more[%d] is set after a NULL cpu_more[%d]", k->name, i, i - 1);
    DAGR_CHECK(!k->gpu, DAGR_ERR_ARG,
               "kernel '%s': gpu bodies are not supported yet (gpu must be NULL)", k->name);
    DAGR_CHECK(naccess >= 1, DAGR_ERR_ARG, "naccess %d must be >= 1", naccess);
    DAGR_CHECK(access, DAGR_ERR_ARG, "access is NULL while naccess = %d", naccess);
    DAGR_CHECK(args || args_size == 0, DAGR_ERR_ARG, "args is NULL while args_size = %zu",
               args_size);
    DAGR_CHECK(args_size <= DAGR_MAX_ARGS, DAGR_ERR_ARG, "args_size %zu exceeds DAGR_MAX_ARGS (%d)",
               args_size, DAGR_MAX_ARGS);
    for (int i = 0; i < naccess; i++) {
        DAGR_CHECK(access[i].data, DAGR_ERR_ARG, "access[%d].data is NULL", i);
        DAGR_CHECK(access[i].data->ctx == ctx, DAGR_ERR_ARG,
                   "access[%d].data belongs to another context", i);
        DAGR_CHECK(access[i].mode == DAGR_READ || access[i].mode == DAGR_WRITE ||
                       access[i].mode == DAGR_RW,
                   DAGR_ERR_ARG, "access[%d].mode %d is not DAGR_READ, DAGR_WRITE or DAGR_RW", i,
                   (int)access[i].mode);
    }
    if (opts) {
        DAGR_CHECK(opts->rank >= -1 && opts->rank < ctx->size, DAGR_ERR_ARG,
                   "opts->rank %d out of range [-1, %d)", opts->rank, ctx->size);
        DAGR_CHECK(!opts->queue || queue_handle(opts->queue)->ctx == ctx, DAGR_ERR_ARG,
                   "opts->queue belongs to another context");
        DAGR_CHECK(isfinite(opts->flops) && opts->flops >= 0, DAGR_ERR_ARG,
                   "opts->flops %g must be finite and >= 0", opts->flops);
        DAGR_CHECK(opts->where == DAGR_WHERE_ANY || opts->where == DAGR_WHERE_CPU ||
                       opts->where == DAGR_WHERE_DEVICE,
                   DAGR_ERR_ARG, "opts->where %d is not DAGR_WHERE_ANY, _CPU or _DEVICE",
                   (int)opts->where);
        /* Test devices run the CPU bodies; a GPU will need the device body. */
        DAGR_CHECK(opts->where != DAGR_WHERE_DEVICE || k->gpu || ctx->ndev, DAGR_ERR_ARG,
                   "kernel '%s' has no device body and this rank has no test devices: "
                   "opts->where = DAGR_WHERE_DEVICE cannot be served",
                   k->name);
    }
    return DAGR_OK;
}

/* Merges accesses to the same handle (READ + WRITE = RW) and maps user slots to them: u gets
 * the unique handles in order of first appearance, map[i] the slot of access i. A few
 * accesses are compared pairwise; many (a shuffle's fan-in) go through a hash table of
 * slots, so that insertion stays linear. Returns the number of slots, -1 out of memory. */
#define MERGE_PAIRWISE 32
static int merge_accesses(int naccess, const dagr_access_t *access, dagr_queue_t *queue, uniq_t *u,
                          int *map) {
    int nu = 0;
    size_t cap = 0;
    int *slot = NULL; /* open addressing: index into u, -1 empty */
    if (naccess > MERGE_PAIRWISE) {
        for (cap = 64; cap < 2 * (size_t)naccess; cap *= 2)
            ;
        slot = malloc(cap * sizeof *slot);
        if (!slot) return -1;
        memset(slot, 0xff, cap * sizeof *slot);
    }
    for (int i = 0; i < naccess; i++) {
        int j = 0;
        if (slot) {
            uintptr_t x = (uintptr_t)access[i].data;
            size_t b = (size_t)((x >> 6) * 0x9e3779b97f4a7c15ull) & (cap - 1);
            while (slot[b] >= 0 && u[slot[b]].h != access[i].data)
                b = (b + 1) & (cap - 1);
            if (slot[b] < 0) slot[b] = nu;
            j = slot[b];
        } else {
            while (j < nu && u[j].h != access[i].data)
                j++;
        }
        if (j == nu) u[nu++] = (uniq_t){access[i].data, 0};
        u[j].mode |= (uint8_t)access[i].mode;
        map[i] = j;
    }
    free(slot);
    if (queue) u[nu++] = (uniq_t){queue_handle(queue), DAGR_RW};
    return nu;
}

/* The rank given in the options, else the owner of the first handle the caller listed as
 * written, else of the first handle listed (a queue's own handle never decides). */
static int exec_rank(int naccess, const dagr_access_t *access, const dagr_task_opts_t *opts) {
    if (opts && opts->rank >= 0) return opts->rank;
    for (int i = 0; i < naccess; i++)
        if (access[i].mode & DAGR_WRITE) return access[i].data->owner;
    return access[0].data->owner;
}

/* What the trace records of a task (meaningful only while ctx->trace is set). */
typedef struct trace_info {
    uint32_t kernel;
    double flops;
} trace_info_t;

static dagr_status_t insert_local(dagr_ctx_t *ctx, const dagr_kernel_t *k, const void *args,
                                  size_t args_size, int naccess, const uniq_t *u, int nu,
                                  const int *map, int priority, int where, uint64_t seq,
                                  trace_info_t ti) {
    node_t *n = node_new(ctx, NODE_TASK);
    DAGR_CHECK(n, DAGR_ERR_NOMEM, "cannot allocate a task");
    if (!node_reserve(n, nu, naccess)) {
        node_unref(ctx, n);
        return DAGR_ERR(DAGR_ERR_NOMEM, "cannot allocate a task's %d accesses", naccess);
    }
    n->fn = k->cpu;
    memcpy(n->more, k->cpu_more, sizeof n->more);
    n->name = k->name;
    n->priority = priority;
    n->where = (uint8_t)where;
    n->seq = seq;
    if (ctx->trace) {
        n->tr_kernel = ti.kernel;
        n->flops = ti.flops;
        trace_node(ctx, n, NULL);
    }
    n->nuser = naccess;
    memcpy(n->map, map, (size_t)naccess * sizeof *map);
    n->args_size = args_size;
    if (args_size) {
        n->args = args_size <= NODE_INLINE_ARGS ? n->args_inline : malloc(args_size);
        if (!n->args) {
            node_unref(ctx, n);
            return DAGR_ERR(DAGR_ERR_NOMEM, "cannot copy %zu bytes of task arguments", args_size);
        }
        memcpy(n->args, args, args_size);
    }
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

static dagr_status_t insert_remote(dagr_ctx_t *ctx, const uniq_t *u, int nu, int runner,
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

static dagr_status_t spawn_checked(dagr_ctx_t *ctx, const dagr_kernel_t *k, const void *args,
                                   size_t args_size, int naccess, const dagr_access_t *access,
                                   const dagr_task_opts_t *opts, uniq_t *u, int *map);

dagr_status_t dagr_spawn(dagr_ctx_t *ctx, const dagr_kernel_t *k, const void *args,
                         size_t args_size, int naccess, const dagr_access_t *access,
                         const dagr_task_opts_t *opts) {
    DAGR_TRY(check_spawn(ctx, k, args, args_size, naccess, access, opts));

    /* The common few accesses on the stack, more on the heap. */
    enum { STACK_ACC = 16 };
    uniq_t u_stack[STACK_ACC + 1], *u = u_stack;
    int map_stack[STACK_ACC], *map = map_stack;
    if (naccess > STACK_ACC) {
        u = malloc(((size_t)naccess + 1) * sizeof *u);
        map = malloc((size_t)naccess * sizeof *map);
        if (!u || !map) {
            free(u), free(map);
            return DAGR_ERR(DAGR_ERR_NOMEM, "cannot allocate %d accesses", naccess);
        }
    }
    dagr_status_t st = spawn_checked(ctx, k, args, args_size, naccess, access, opts, u, map);
    if (u != u_stack) free(u), free(map);
    return st;
}

/* dagr_spawn once the arguments are checked, with room for the merged accesses. */
static dagr_status_t spawn_checked(dagr_ctx_t *ctx, const dagr_kernel_t *k, const void *args,
                                   size_t args_size, int naccess, const dagr_access_t *access,
                                   const dagr_task_opts_t *opts, uniq_t *u, int *map) {
    dagr_queue_t *queue = opts ? opts->queue : NULL;
    int nu = merge_accesses(naccess, access, queue, u, map);
    DAGR_CHECK(nu > 0, DAGR_ERR_NOMEM, "cannot allocate a table of %d accesses", naccess);
    int runner = exec_rank(naccess, access, opts);
    int priority = opts ? opts->priority : 0;

    divergence_t *d = &ctx->div;
    uint64_t seq = d->count;
    uint64_t name_hash = divergence_hash_str(k->name);
    divergence_mix(d, name_hash);
    divergence_mix(d, ((uint64_t)(uint32_t)naccess << 32) | (uint32_t)runner);
    for (int i = 0; i < naccess; i++)
        divergence_mix(d, (access[i].data->id << 2) | (uint64_t)access[i].mode);
    divergence_mix(d, ((uint64_t)(uint32_t)priority << 32) ^ args_size);
    if (queue) divergence_mix(d, queue_handle(queue)->id);
    if (opts && opts->where != DAGR_WHERE_ANY) divergence_mix(d, 0x77686572ull + opts->where);
    divergence_task_end(d);

    /* Bound the local backlog: a producer far ahead of the workers waits here. */
    if ((size_t)atomic_load_explicit(&ctx->inflight, memory_order_relaxed) >=
        ctx->cfg.max_pending) {
        int64_t t0 = ctx->trace ? trace_ticks() : 0;
        dagr_status_t s = ctx_wait_backlog(ctx, (long)(ctx->cfg.max_pending / 2));
        if (ctx->trace) trace_wait(ctx, t0, true);
        if (s != DAGR_OK) return s;
    }

    /* Every rank interns every kernel name, so the ids agree across ranks. */
    trace_info_t ti = {0, 0.0};
    if (ctx->trace)
        ti = (trace_info_t){trace_kernel(ctx, k->name, name_hash), opts ? opts->flops : 0};
    if (runner == ctx->rank)
        return insert_local(ctx, k, args, args_size, naccess, u, nu, map, priority,
                            opts ? (int)opts->where : DAGR_WHERE_ANY, seq, ti);
    return insert_remote(ctx, u, nu, runner, seq);
}
