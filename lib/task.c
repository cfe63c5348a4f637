/* Task insertion (dagr_spawn): argument checks, merging accesses, the divergence hash, the
 * backlog bound, choosing the executing rank and making the node; graph.c then turns its
 * accesses into dependencies and transfers. */
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
 * dagr_spawn
 * ---------------------------------------------------------------------------------------- */

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
        /* Test devices run any kernel; GPUs (after them) only device bodies. */
        bool test_dev = ctx->denv.test_devices > 0, gpu = ctx->ndev > ctx->denv.test_devices;
        DAGR_CHECK(opts->where != DAGR_WHERE_DEVICE || test_dev || (gpu && k->gpu), DAGR_ERR_ARG,
                   "kernel '%s': opts->where = DAGR_WHERE_DEVICE, but rank %d has %s", k->name,
                   ctx->rank,
                   gpu ? "GPUs only, and the kernel has no device body (dagr_kernel_t.gpu)"
                       : "no device (GPUs, or test devices: DAGR_TEST_DEVICES)");
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

/* What the node keeps of its kernel: its name's hash and its declared flops (placement's
 * models, perfmodel.c), and its trace id (meaningful only while ctx->trace is set). */
typedef struct trace_info {
    uint32_t kernel;
    double flops;
    uint64_t name_hash;
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
    n->dev_fn = k->gpu;
    n->done_count = ctx->spawn_done;
    memcpy(n->more, k->cpu_more, sizeof n->more);
    n->name = k->name;
    n->priority = priority;
    n->where = (uint8_t)where;
    n->seq = seq;
    n->flops = ti.flops;
    n->khash = ti.name_hash;
    if (ctx->trace) {
        n->tr_kernel = ti.kernel;
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
    return graph_add_task(ctx, n, u, nu, seq, priority);
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
    trace_info_t ti = {0, opts ? opts->flops : 0, name_hash};
    if (ctx->trace) ti.kernel = trace_kernel(ctx, k->name, name_hash);
    if (runner == ctx->rank)
        return insert_local(ctx, k, args, args_size, naccess, u, nu, map, priority,
                            opts ? (int)opts->where : DAGR_WHERE_ANY, seq, ti);
    return graph_plan_remote(ctx, u, nu, runner, seq);
}
