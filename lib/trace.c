/* Tracing, the recording side: what every rank does, recorded while it runs (trace_write.c
 * merges it on rank 0 and writes it at finalize; trace_buf.h holds the buffers both share).
 *
 * Recording. Each worker, the progress thread, the main thread and each device's copy thread
 * own one event buffer and append to it without locks or atomics (I/O events, which may come
 * from any thread, share a buffer under a mutex: I/O is slow next to a lock). A buffer is a
 * table of fixed-size chunks allocated as they fill, up to cfg.trace_events events; past that a
 * thread stops recording, counts what it drops, and says so once on stderr and in the file.
 * Per-kernel counts and times (and each copy thread's bytes and time) are kept apart from the
 * events, in fixed per-thread counters, so the summary stays exact when the events are cut
 * short. The main thread also records the graph: a record per local
 * node (created at insertion) and a pair of indices per dependency edge; the thread that runs a
 * node adds its duration to the record (records live in chunks that never move).
 *
 * Time. CLOCK_MONOTONIC in nanoseconds. Ranks on rank 0's node share that clock; other ranks
 * estimate their offset to rank 0 with a few ping-pongs (the one with the smallest round trip
 * wins: offset = rank 0's time - the middle of the round trip) at init and again at finalize,
 * and interpolate linearly between the two to follow drift. Time 0 in the file is rank 0's
 * dagr_init. */
#include "lib_impl.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "trace_buf.h"

#define DEFAULT_EVENTS ((size_t)1 << 20)
#define IDLE_MIN_NS 10000.0 /* a shorter gap between two tasks is scheduling */
#define ALIGN_ROUNDS 12
#define TAG_ALIGN 0x7ace

int trace_clock_tsc = 0;

/* For the tests only: DAGR_TRACE_TEST_SKEW_NS=N makes every rank but 0 read its clock N ns
 * late and count itself on another node than rank 0, so that the alignment of separate
 * clocks (the ping-pongs, the multi-node path) runs on one machine and must take N out. */
static int64_t test_skew;

int64_t trace_mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + test_skew;
}

/* The TSC is used only where the kernel keeps time with it: then it is invariant and the
 * same on every core. */
static void choose_clock(void) {
#if defined(__x86_64__)
    FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
    char name[32] = "";
    if (f) {
        if (!fgets(name, sizeof name, f)) name[0] = 0;
        fclose(f);
    }
    trace_clock_tsc = strncmp(name, "tsc", 3) == 0 && (name[3] == '\n' || name[3] == 0);
#endif
}

/* Ticks per nanosecond, measured over `ns` nanoseconds of spinning (1 for clock_gettime). */
static double ticks_per_ns(int64_t ns) {
    if (!trace_clock_tsc) return 1.0;
    int64_t n0 = trace_mono_ns(), t0 = trace_ticks(), n1, t1;
    do {
        n1 = trace_mono_ns();
        t1 = trace_ticks();
    } while (n1 - n0 < ns);
    return (double)(t1 - t0) / (double)(n1 - n0);
}

/* ------------------------------------------------------------------------------------------
 * Recording
 * ---------------------------------------------------------------------------------------- */

static void warn_full(trace_t *tr, const char *what) {
    /* A plain load first: a full buffer calls this for every event it drops. */
    if (atomic_load_explicit(&tr->warned, memory_order_relaxed) ||
        atomic_exchange(&tr->warned, true))
        return;
    fprintf(stderr,
            "dagr: rank %d: the trace is full (%zu %s); later ones are not recorded (the "
            "summary's per-kernel figures stay exact; raise DAGR_TRACE_EVENTS)\n",
            tr->rank, tr->cap, what);
}

/* A chunk's memory comes straight from the kernel with its pages already mapped
 * (MAP_POPULATE): one call instead of a page fault every hundred events, which on a virtual
 * machine costs more than recording the events. */
static void *chunk_alloc(size_t bytes) {
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
                   -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void chunk_free(void *p, size_t bytes) {
    if (p) munmap(p, bytes);
}

/* b's current chunk is used up: starts the next one, or counts the event as dropped and
 * returns NULL when b is full (or memory ran out). */
static tev_t *tbuf_grow(trace_t *tr, tbuf_t *b) {
    if (b->n >= b->cap) {
        b->dropped++;
        warn_full(tr, "events per thread");
        return NULL;
    }
    size_t c = b->n / CHUNK; /* b->n is a multiple of CHUNK here */
    if (!(b->chunks[c] = chunk_alloc(CHUNK * sizeof(tev_t)))) {
        b->cap = b->n; /* out of memory: stop here as if full */
        b->dropped++;
        warn_full(tr, "events per thread, or out of memory");
        return NULL;
    }
    size_t room = b->cap - b->n < CHUNK ? b->cap - b->n : CHUNK;
    b->cur = b->chunks[c];
    b->end = b->cur + room;
    return b->cur;
}

/* Where b's next event goes (NULL: dropped); the caller fills it, then calls tbuf_push. */
static inline tev_t *tbuf_slot(trace_t *tr, tbuf_t *b) {
    return __builtin_expect(b->cur != b->end, 1) ? b->cur : tbuf_grow(tr, b);
}

static inline void tbuf_push(tbuf_t *b) {
    /* Asks for the line of an event four ahead: a store still waiting for its line holds up
     * the worker's next atomic operation (which drains the store buffer); about 1.5 % of a
     * worker's samples on empty tasks. Past the chunk's end it is a harmless hint. */
    __builtin_prefetch(b->cur + 4, 1);
    b->cur++;
    b->n++;
}

static void tbuf_add(trace_t *tr, tbuf_t *b, const tev_t *ev) {
    tev_t *e = tbuf_slot(tr, b);
    if (!e) return;
    *e = *ev;
    tbuf_push(b);
}

uint32_t trace_kernel(dagr_ctx_t *ctx, const char *name, uint64_t name_hash) {
    trace_t *tr = ctx->trace;
    if (name == tr->last_name && name_hash == tr->last_hash) return tr->last_id;
    size_t i = (size_t)name_hash & (KTABLE - 1);
    uint32_t id = MAX_KERNELS - 1;
    for (; tr->ktab[i].used; i = (i + 1) & (KTABLE - 1)) {
        if (tr->ktab[i].hash == name_hash && !strcmp(tr->knames[tr->ktab[i].id], name)) {
            id = tr->ktab[i].id;
            goto found;
        }
    }
    if (tr->nk < MAX_KERNELS - 1 && (tr->knames[tr->nk] = strdup(name))) {
        id = tr->nk++;
        tr->ktab[i] = (kslot_t){name_hash, id, true};
    }
found:
    tr->last_name = name;
    tr->last_hash = name_hash;
    tr->last_id = id;
    return id;
}

void trace_node(dagr_ctx_t *ctx, node_t *n, const dagr_data_t *h) {
    trace_t *tr = ctx->trace;
    n->tr_node = TRACE_NONE;
    if (!tr->graph) return;
    if (tr->ng >= tr->capg) {
        if (!tr->gtrunc) warn_full(tr, "graph nodes");
        tr->gtrunc = true;
        return;
    }
    size_t c = tr->ng / CHUNK;
    if (!tr->gchunks[c] && !(tr->gchunks[c] = chunk_alloc(CHUNK * sizeof(trace_gnode_t)))) {
        tr->capg = tr->ng;
        tr->gtrunc = true;
        return;
    }
    n->tr_node = (uint32_t)tr->ng++;
    *trace_gnode(tr, n->tr_node) = (trace_gnode_t){
        .seq = n->seq,
        .hid = h ? h->id : 0,
        .ver = n->version,
        .bytes = h ? h->bytes : 0,
        .flops = n->kind == NODE_TASK ? n->flops : 0.0,
        .kernel = n->kind == NODE_TASK ? n->tr_kernel : 0,
        .peer = n->kind == NODE_TASK ? -1 : n->peer,
        .kind = n->kind,
    };
}

void trace_edge(dagr_ctx_t *ctx, const node_t *pred, const node_t *succ) {
    trace_t *tr = ctx->trace;
    if (pred->tr_node == TRACE_NONE || succ->tr_node == TRACE_NONE) return;
    if (tr->ne >= tr->cape) {
        if (!tr->gtrunc) warn_full(tr, "graph edges");
        tr->gtrunc = true;
        return;
    }
    size_t c = tr->ne / CHUNK;
    if (!tr->echunks[c] && !(tr->echunks[c] = chunk_alloc(CHUNK * sizeof *tr->echunks[c]))) {
        tr->cape = tr->ne;
        tr->gtrunc = true;
        return;
    }
    tr->echunks[c][tr->ne % CHUNK][0] = pred->tr_node;
    tr->echunks[c][tr->ne % CHUNK][1] = succ->tr_node;
    tr->ne++;
}

/* Every task pays for this, so it does as little as it can: one clock read (the caller took
 * the other) and one event written in place. The worker touches only its own buffer, never
 * memory the main thread writes: the graph record learns the duration from the event at
 * finalize, idle periods are the gaps between a worker's consecutive tasks (evwalk_next), and
 * the summary's counters are summed from the events (settle). Only an event the full buffer
 * drops goes to the counters here, so that the summary stays exact. */
void trace_task(dagr_ctx_t *ctx, const node_t *n, int worker, int64_t t0, bool done) {
    trace_t *tr = ctx->trace;
    int64_t d = trace_ticks() - t0;
    tbuf_t *b = &tr->bufs[worker];
    tev_t *e = tbuf_slot(tr, b);
    if (__builtin_expect(e != NULL, 1)) {
        *e = (tev_t){.t0 = t0,
                     .dur = d,
                     .b = n->seq,
                     .a = n->priority,
                     .node = n->tr_node,
                     .kernel = (uint16_t)n->tr_kernel,
                     .type = EV_TASK,
                     .flags = done ? 0 : EVF_RETRY,
                     .flops = (float)n->flops};
        tbuf_push(b);
        return;
    }
    trace_count_task(b, n->tr_kernel, d, done, n->flops);
}

void trace_send(dagr_ctx_t *ctx, const node_t *s, int64_t t0, uint64_t bytes) {
    trace_t *tr = ctx->trace;
    tbuf_add(tr, &tr->bufs[tr->nthreads],
             &(tev_t){.t0 = t0,
                      .dur = trace_ticks() - t0,
                      .b = bytes,
                      .a = s->peer,
                      .node = s->tr_node,
                      .type = EV_SEND});
}

void trace_recv(dagr_ctx_t *ctx, const node_t *r, uint64_t bytes) {
    trace_t *tr = ctx->trace;
    tbuf_add(tr, &tr->bufs[tr->nthreads],
             &(tev_t){.t0 = r->tr_t0,
                      .dur = trace_ticks() - r->tr_t0,
                      .b = bytes,
                      .a = r->peer,
                      .node = r->tr_node,
                      .type = EV_RECV});
}

void trace_wait(dagr_ctx_t *ctx, int64_t t0, bool backlog) {
    trace_t *tr = ctx->trace;
    tbuf_add(tr, &tr->bufs[tr->nthreads + 1],
             &(tev_t){.t0 = t0,
                      .dur = trace_ticks() - t0,
                      .node = TRACE_NONE,
                      .type = backlog ? EV_BACKLOG : EV_WAIT});
}

/* The device's copy thread alone writes its buffer. Its counters take every copy, recorded or
 * dropped: copies are few next to tasks, and the summary's byte counts stay exact. */
void trace_copy(dagr_ctx_t *ctx, int device, bool to_node, int64_t t0, uint64_t bytes) {
    trace_t *tr = ctx->trace;
    if (device < 0 || device >= tr->ndev) return;
    tbuf_t *b = &tr->bufs[tr->nthreads + 3 + device];
    int64_t d = trace_ticks() - t0;
    b->copied[to_node] += bytes;
    b->copy_time += d;
    tbuf_add(tr, b,
             &(tev_t){.t0 = t0,
                      .dur = d,
                      .b = bytes,
                      .a = device,
                      .node = TRACE_NONE,
                      .type = EV_COPY,
                      .flags = to_node ? EVF_TO_NODE : 0});
}

int64_t trace_io_begin(dagr_ctx_t *ctx) {
    return ctx && ctx->trace ? trace_ticks() : 0;
}

void trace_io_end(dagr_ctx_t *ctx, int64_t t0, trace_io_kind_t kind, uint64_t bytes, int worker) {
    if (!ctx || !ctx->trace) return;
    trace_t *tr = ctx->trace;
    tev_t ev = {.t0 = t0,
                .dur = trace_ticks() - t0,
                .b = bytes,
                .a = worker,
                .node = TRACE_NONE,
                .kernel = (uint16_t)kind,
                .type = EV_IO};
    pthread_mutex_lock(&tr->io_lock);
    tbuf_add(tr, &tr->bufs[tr->nthreads + 2], &ev);
    pthread_mutex_unlock(&tr->io_lock);
}

/* ------------------------------------------------------------------------------------------
 * Set-up and clocks
 * ---------------------------------------------------------------------------------------- */

void trace_discard(dagr_ctx_t *ctx) {
    trace_t *tr = ctx->trace;
    if (!tr) return;
    for (int i = 0; tr->bufs && i < tr->nbufs; i++) {
        tbuf_t *b = &tr->bufs[i];
        for (size_t c = 0; b->chunks && c < (b->cap + CHUNK - 1) / CHUNK; c++)
            chunk_free(b->chunks[c], CHUNK * sizeof(tev_t));
        free(b->chunks);
        free(b->ks);
    }
    free(tr->bufs);
    for (size_t c = 0; tr->gchunks && c * CHUNK < tr->ng; c++)
        chunk_free(tr->gchunks[c], CHUNK * sizeof(trace_gnode_t));
    for (size_t c = 0; tr->echunks && c * CHUNK < tr->ne; c++)
        chunk_free(tr->echunks[c], CHUNK * sizeof *tr->echunks[c]);
    free(tr->gchunks);
    free(tr->echunks);
    for (uint32_t k = 0; k < tr->nk; k++)
        free(tr->knames[k]);
    if (tr->trace_f) fclose(tr->trace_f);
    if (tr->dot_f) fclose(tr->dot_f);
    free(tr->trace_path);
    free(tr->dot_path);
    pthread_mutex_destroy(&tr->io_lock);
    free(tr);
    ctx->trace = NULL;
}

/* Local part of the set-up: memory, and the output files on rank 0. */
static dagr_status_t trace_alloc(dagr_ctx_t *ctx, trace_t **out) {
    const dagr_config_t *cfg = &ctx->cfg;
    trace_t *tr = aligned_alloc(64, sizeof *tr);
    DAGR_CHECK(tr, DAGR_ERR_NOMEM, "cannot allocate the trace");
    memset(tr, 0, sizeof *tr);
    pthread_mutex_init(&tr->io_lock, NULL);
    ctx->trace = tr; /* trace_discard frees what follows, however far it got */
    tr->rank = ctx->rank;
    /* Workers: the host's, then one per device; after comm, main and io, one buffer per
     * device's copy thread. */
    tr->ndev = device_planned(ctx);
    tr->nthreads = cfg->threads + tr->ndev;
    tr->nbufs = tr->nthreads + 3 + tr->ndev;
    tr->cap = cfg->trace_events ? cfg->trace_events : DEFAULT_EVENTS;
    tr->summary = cfg->summary;
    /* The graph costs about 60 bytes a task more than the events: only when it is used. */
    tr->graph = cfg->dot_path || cfg->summary;
    tr->bufs = aligned_alloc(64, (size_t)tr->nbufs * sizeof *tr->bufs);
    DAGR_CHECK(tr->bufs, DAGR_ERR_NOMEM, "cannot allocate the trace buffers");
    memset(tr->bufs, 0, (size_t)tr->nbufs * sizeof *tr->bufs);
    for (int i = 0; i < tr->nbufs; i++) {
        tr->bufs[i].cap = tr->cap;
        tr->bufs[i].chunks = calloc((tr->cap + CHUNK - 1) / CHUNK, sizeof(tev_t *));
        tr->bufs[i].ks = i < tr->nthreads ? calloc(MAX_KERNELS, sizeof(trace_kstat_t)) : NULL;
        DAGR_CHECK(tr->bufs[i].chunks && (i >= tr->nthreads || tr->bufs[i].ks), DAGR_ERR_NOMEM,
                   "cannot allocate the trace buffers");
    }
    tr->capg = tr->cap;
    tr->cape = 4 * tr->cap;
    tr->gchunks = calloc((tr->capg + CHUNK - 1) / CHUNK, sizeof *tr->gchunks);
    tr->echunks = calloc((tr->cape + CHUNK - 1) / CHUNK, sizeof *tr->echunks);
    DAGR_CHECK(tr->gchunks && tr->echunks, DAGR_ERR_NOMEM, "cannot allocate the trace graph");
    if (cfg->trace_path) {
        tr->trace_path = strdup(cfg->trace_path);
        DAGR_CHECK(tr->trace_path, DAGR_ERR_NOMEM, "cannot copy the trace path");
    }
    if (cfg->dot_path) {
        tr->dot_path = strdup(cfg->dot_path);
        DAGR_CHECK(tr->dot_path, DAGR_ERR_NOMEM, "cannot copy the DOT path");
    }
    /* The strings in the caller's config (or the environment) need not outlive dagr_init. */
    ctx->cfg.trace_path = tr->trace_path;
    ctx->cfg.dot_path = tr->dot_path;
    if (ctx->rank == 0 && tr->trace_path) {
        tr->trace_f = fopen(tr->trace_path, "w");
        DAGR_CHECK(tr->trace_f, DAGR_ERR_IO, "cannot open the trace file '%s' (DAGR_TRACE): %m",
                   tr->trace_path);
    }
    if (ctx->rank == 0 && tr->dot_path) {
        tr->dot_f = fopen(tr->dot_path, "w");
        DAGR_CHECK(tr->dot_f, DAGR_ERR_IO, "cannot open the DOT file '%s' (DAGR_DOT): %m",
                   tr->dot_path);
    }
    *out = tr;
    return DAGR_OK;
}

/* Collective: this rank's offset to rank 0's clock (0 on rank 0's node, where the clock is
 * the same). Ping-pong with rank 0, keeping the exchange with the shortest round trip. */
int64_t trace_clock_offset(dagr_ctx_t *ctx, bool same_node) {
    trace_t *tr = ctx->trace;
    char mine = same_node ? 0 : 1, *remote = calloc((size_t)ctx->size, 1);
    if (!remote) return 0; /* cannot agree on who aligns: all ranks would have to fail alike */
    MPI_Allgather(&mine, 1, MPI_CHAR, remote, 1, MPI_CHAR, ctx->comm);
    int64_t off = 0;
    if (ctx->rank == 0) {
        for (int r = 1; r < ctx->size; r++) {
            for (int k = 0; k < ALIGN_ROUNDS && remote[r]; k++) {
                int64_t t;
                MPI_Recv(&t, 1, MPI_INT64_T, r, TAG_ALIGN, ctx->comm, MPI_STATUS_IGNORE);
                t = trace_mono_ns();
                MPI_Send(&t, 1, MPI_INT64_T, r, TAG_ALIGN, ctx->comm);
            }
        }
    } else if (remote[ctx->rank]) {
        int64_t best = INT64_MAX;
        for (int k = 0; k < ALIGN_ROUNDS; k++) {
            int64_t a = trace_mono_ns(), t0 = 0;
            MPI_Send(&a, 1, MPI_INT64_T, 0, TAG_ALIGN, ctx->comm);
            MPI_Recv(&t0, 1, MPI_INT64_T, 0, TAG_ALIGN, ctx->comm, MPI_STATUS_IGNORE);
            int64_t b = trace_mono_ns();
            if (b - a < best) {
                best = b - a;
                off = t0 - (a + (b - a) / 2);
            }
        }
    }
    (void)tr;
    free(remote);
    return off;
}

dagr_status_t trace_start(dagr_ctx_t *ctx) {
    const dagr_config_t *cfg = &ctx->cfg;
    /* Every rank must agree on what is on: the merge and the progress line are collective. */
    int mine = (cfg->trace_path ? 1 : 0) | (cfg->dot_path ? 2 : 0) | (cfg->summary ? 4 : 0) |
               (cfg->progress ? 8 : 0);
    int both[2] = {mine, ~mine}, agreed[2];
    DAGR_TRY_MPI(MPI_Allreduce(both, agreed, 2, MPI_INT, MPI_BAND, ctx->comm));
    DAGR_CHECK(agreed[0] == mine && agreed[1] == ~mine, DAGR_ERR_ARG,
               "DAGR_TRACE, DAGR_DOT, DAGR_SUMMARY and DAGR_PROGRESS (or the matching config "
               "fields) must be set alike on every rank");
    if (!(mine & 7)) return DAGR_OK;

    trace_t *tr = NULL;
    dagr_status_t s = trace_alloc(ctx, &tr);
    char msg[DAGR_ERRMSG_MAX];
    snprintf(msg, sizeof msg, "%s", s == DAGR_OK ? "" : dagr_last_error());
    s = ctx_agree(ctx->comm, s, msg);
    if (s != DAGR_OK) {
        if (tr && tr->trace_f) remove(tr->trace_path);
        if (tr && tr->dot_f) remove(tr->dot_path);
        trace_discard(ctx);
        return s;
    }

    MPI_Comm node;
    int min_rank = 0;
    DAGR_TRY_MPI(MPI_Comm_split_type(ctx->comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
    MPI_Allreduce(&ctx->rank, &min_rank, 1, MPI_INT, MPI_MIN, node);
    MPI_Comm_free(&node);
    const char *skew = getenv("DAGR_TRACE_TEST_SKEW_NS");
    test_skew = ctx->rank != 0 && skew ? strtoll(skew, NULL, 10) : 0;
    tr->same_node_as_0 = min_rank == 0 && !test_skew;
    tr->off0 = trace_clock_offset(ctx, tr->same_node_as_0);
    MPI_Barrier(ctx->comm);
    choose_clock();
    tr->idle_min = (int64_t)(IDLE_MIN_NS * ticks_per_ns(200000));
    MPI_Barrier(ctx->comm);
    tr->ns0 = trace_mono_ns();
    tr->t_start = trace_ticks();
    tr->origin = tr->ns0 + tr->off0;
    MPI_Bcast(&tr->origin, 1, MPI_INT64_T, 0, ctx->comm);
    return DAGR_OK;
}
