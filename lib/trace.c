/* Tracing: what every rank did, recorded while it runs and merged on rank 0 at finalize.
 *
 * Recording. Each worker, the progress thread and the main thread own one event buffer and
 * append to it without locks or atomics (I/O events, which may come from any thread, share a
 * buffer under a mutex: I/O is slow next to a lock). A buffer is a table of fixed-size chunks
 * allocated as they fill, up to cfg.trace_events events; past that a thread stops recording,
 * counts what it drops, and says so once on stderr and in the file. Per-kernel counts and
 * times are kept apart from the events, in fixed per-worker arrays, so the summary stays exact
 * when the events are cut short. The main thread also records the graph: a record per local
 * node (created at insertion) and a pair of indices per dependency edge; the thread that runs a
 * node adds its duration to the record (records live in chunks that never move).
 *
 * Time. CLOCK_MONOTONIC in nanoseconds. Ranks on rank 0's node share that clock; other ranks
 * estimate their offset to rank 0 with a few ping-pongs (the one with the smallest round trip
 * wins: offset = rank 0's time - the middle of the round trip) at init and again at finalize,
 * and interpolate linearly between the two to follow drift. Time 0 in the file is rank 0's
 * dagr_init.
 *
 * Merging. At finalize, after the threads have stopped, each rank sends rank 0 its graph and
 * its events in chunks of bounded size (point to point, one rank after the other), so rank 0
 * never holds more than one chunk of another rank's events; rank 0 writes the JSON as they
 * arrive. The graph is gathered whole (it is bounded by trace_events nodes per rank) for the
 * critical path, the DOT file and the summary. */
#include "lib_impl.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define DEFAULT_EVENTS ((size_t)1 << 20)
#define CHUNK 8192          /* events, graph records or edges per chunk */
#define MAX_KERNELS 1024    /* distinct names; the last id gathers any beyond */
#define KTABLE 4096         /* kernel hash slots (a power of two > MAX_KERNELS) */
#define IDLE_MIN_NS 10000.0 /* a shorter gap between two tasks is scheduling */
#define ALIGN_ROUNDS 12
#define TAG_ALIGN 0x7ace
#define TAG_GRAPH 0x7acf
#define TAG_EVENTS 0x7ad0
#define DOT_MAX_NODES 1000 /* dot takes ~7 s on 1000 nodes of a dense graph here */

enum { EV_TASK, EV_IDLE, EV_SEND, EV_RECV, EV_WAIT, EV_BACKLOG, EV_IO };

/* An event: ticks while recording; aligned nanoseconds on the way to rank 0. */
typedef struct tev {
    int64_t t0, dur;
    uint64_t b;      /* TASK: seq; SEND, RECV, IO: bytes */
    int32_t a;       /* TASK: priority; SEND, RECV: peer; IO: worker */
    uint32_t node;   /* the node's graph record, or TRACE_NONE; on the wire: TASK flops (float) */
    uint16_t kernel; /* TASK: kernel id; IO: trace_io_kind_t */
    uint8_t type;
    uint8_t flags; /* TASK: EVF_RETRY */
    union {
        float flops; /* while recording: TASK flops */
        struct {
            uint16_t tid; /* on the wire: the thread */
            uint16_t pad;
        };
    };
} tev_t;

enum { EVF_RETRY = 1 }; /* the body asked to run again: time spent, but not a task run */

/* One thread's buffer, alone on its cache lines (the workers write theirs on every task).
 * Events go to cur until it reaches end, the end of the current chunk (or of the capacity). */
typedef struct tbuf {
    _Alignas(64) tev_t *cur, *end;
    size_t n, cap;
    tev_t **chunks;
    uint64_t dropped;
    int64_t busy; /* ticks in task bodies */
    uint64_t tasks;
    trace_kstat_t *ks; /* workers: per kernel id (ns in ticks until trace_finish) */
} tbuf_t;

typedef struct kslot {
    uint64_t hash;
    uint32_t id;
    bool used;
} kslot_t;

struct trace {
    /* Read by every thread, written only at start and finish. */
    int rank, nthreads, nbufs; /* buffers: workers, comm, main, io */
    tbuf_t *bufs;
    int64_t idle_min; /* ticks: a shorter gap between two tasks is scheduling, not idleness */
    size_t cap;
    atomic_bool warned;
    pthread_mutex_t io_lock;
    int64_t t_start, t_end;            /* ticks */
    int64_t ns0, ns1;                  /* CLOCK_MONOTONIC at t_start and t_end */
    uint64_t io_bytes[TRACE_IO_KINDS]; /* file I/O events recorded (settle sums them) */
    int64_t io_ns[TRACE_IO_KINDS];
    int64_t origin;     /* rank 0's ns0, in rank 0's clock */
    int64_t off0, off1; /* rank 0's clock minus ours, at start and at end */
    bool same_node_as_0;
    char *trace_path, *dot_path;
    FILE *trace_f, *dot_f; /* rank 0 */
    bool summary;
    bool graph; /* record the graph: for the DOT file and the summary's critical path */

    /* The main thread's, on cache lines of their own. */
    _Alignas(64) trace_gnode_t **gchunks;
    size_t ng, capg;
    uint32_t (**echunks)[2];
    size_t ne, cape;
    bool gtrunc;

    char *knames[MAX_KERNELS];
    uint32_t nk;
    kslot_t ktab[KTABLE];
    const char *last_name;
    uint64_t last_hash;
    uint32_t last_id;
};

int trace_clock_tsc = 0;

/* For the tests only: DAGR_TRACE_TEST_SKEW_NS=N makes every rank but 0 read its clock N ns
 * late and count itself on another node than rank 0, so that the alignment of separate
 * clocks (the ping-pongs, the multi-node path) runs on one machine and must take N out. */
static int64_t test_skew;

static int64_t mono_ns(void) {
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
    int64_t n0 = mono_ns(), t0 = trace_ticks(), n1, t1;
    do {
        n1 = mono_ns();
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

static trace_gnode_t *gnode(trace_t *tr, uint32_t i) {
    return &tr->gchunks[i / CHUNK][i % CHUNK];
}

/* Adds a task (ticks in its body) to b's counters. */
static void count_task(tbuf_t *b, uint32_t kernel, int64_t ticks, bool done, double flops) {
    trace_kstat_t *k = &b->ks[kernel < MAX_KERNELS ? kernel : MAX_KERNELS - 1];
    b->busy += ticks;
    k->ns += ticks;
    if (done) {
        k->count++;
        k->flops += flops;
        b->tasks++;
    }
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
    *gnode(tr, n->tr_node) = (trace_gnode_t){
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
    count_task(b, n->tr_kernel, d, done, n->flops);
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
    /* Workers: the host's, then one per device. */
    tr->nthreads = cfg->threads + ctx->denv.test_devices;
    tr->nbufs = tr->nthreads + 3;
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
static int64_t clock_offset(dagr_ctx_t *ctx, bool same_node) {
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
                t = mono_ns();
                MPI_Send(&t, 1, MPI_INT64_T, r, TAG_ALIGN, ctx->comm);
            }
        }
    } else if (remote[ctx->rank]) {
        int64_t best = INT64_MAX;
        for (int k = 0; k < ALIGN_ROUNDS; k++) {
            int64_t a = mono_ns(), t0 = 0;
            MPI_Send(&a, 1, MPI_INT64_T, 0, TAG_ALIGN, ctx->comm);
            MPI_Recv(&t0, 1, MPI_INT64_T, 0, TAG_ALIGN, ctx->comm, MPI_STATUS_IGNORE);
            int64_t b = mono_ns();
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
    tr->off0 = clock_offset(ctx, tr->same_node_as_0);
    MPI_Barrier(ctx->comm);
    choose_clock();
    tr->idle_min = (int64_t)(IDLE_MIN_NS * ticks_per_ns(200000));
    MPI_Barrier(ctx->comm);
    tr->ns0 = mono_ns();
    tr->t_start = trace_ticks();
    tr->origin = tr->ns0 + tr->off0;
    MPI_Bcast(&tr->origin, 1, MPI_INT64_T, 0, ctx->comm);
    return DAGR_OK;
}

/* ------------------------------------------------------------------------------------------
 * Merging at finalize
 * ---------------------------------------------------------------------------------------- */

/* Ticks as nanoseconds (durations). */
static int64_t tick_ns(const trace_t *tr, int64_t ticks) {
    double span = (double)(tr->t_end - tr->t_start);
    return span > 0 ? (int64_t)((double)ticks * (double)(tr->ns1 - tr->ns0) / span) : ticks;
}

/* A tick count as nanoseconds since the origin on rank 0's clock. */
static int64_t aligned(const trace_t *tr, int64_t t) {
    int64_t ns = tr->ns0 + tick_ns(tr, t - tr->t_start);
    double span = (double)(tr->ns1 - tr->ns0);
    double f = span > 0 ? (double)(ns - tr->ns0) / span : 0.0;
    int64_t off = tr->off0 + (int64_t)((double)(tr->off1 - tr->off0) * f);
    return ns + off - tr->origin;
}

/* Local, at finalize: every event's duration into its graph record, the task events into
 * the counters (which until now hold only the dropped ones), then the counters from ticks
 * to nanoseconds. */
static void settle(trace_t *tr) {
    for (int i = 0; i < tr->nbufs; i++) {
        tbuf_t *b = &tr->bufs[i];
        for (size_t j = 0; j < b->n; j++) {
            const tev_t *e = &b->chunks[j / CHUNK][j % CHUNK];
            if (e->node != TRACE_NONE && e->node < tr->ng)
                gnode(tr, e->node)->dur += tick_ns(tr, e->dur);
            if (e->type == EV_TASK && b->ks)
                count_task(b, e->kernel, e->dur, !(e->flags & EVF_RETRY), e->flops);
            if (e->type == EV_IO && e->kernel < TRACE_IO_KINDS) {
                tr->io_bytes[e->kernel] += e->b;
                tr->io_ns[e->kernel] += tick_ns(tr, e->dur);
            }
        }
        b->busy = tick_ns(tr, b->busy);
        for (int k = 0; b->ks && k < MAX_KERNELS; k++)
            b->ks[k].ns = tick_ns(tr, b->ks[k].ns);
    }
}

/* An event as it travels to rank 0: aligned nanoseconds, its thread, a task's flops. */
static tev_t wire(trace_t *tr, const tev_t *src, int tid) {
    tev_t e = *src;
    /* The end through aligned() too, so that an event ending where the next begins (a task
     * and the idle period after it) still does so exactly after the offset's drift. */
    e.t0 = aligned(tr, src->t0);
    e.dur = aligned(tr, src->t0 + src->dur) - e.t0;
    float flops = e.type == EV_TASK ? src->flops : 0.0f;
    memcpy(&e.node, &flops, sizeof flops);
    e.tid = (uint16_t)tid;
    e.pad = 0;
    return e;
}

/* Collective: rank 0 receives every rank's graph (nodes, then local edges) and links the
 * SEND on the holder with the RECV on the reader. Other ranks leave g empty. */
static dagr_status_t gather_graph(dagr_ctx_t *ctx, trace_graph_t *g) {
    trace_t *tr = ctx->trace;
    int P = ctx->size;
    uint64_t hdr[3] = {tr->ng, tr->ne, tr->gtrunc}, *all = NULL;
    if (ctx->rank == 0) {
        all = calloc((size_t)P * 3, sizeof *all);
        g->off = calloc((size_t)P + 1, sizeof *g->off);
    }
    /* Allocation failures on rank 0 are handled after the gather: the others still send. */
    uint64_t scratch[3];
    MPI_Gather(hdr, 3, MPI_UINT64_T, all ? all : scratch, 3, MPI_UINT64_T, 0, ctx->comm);
    if (ctx->rank != 0) {
        for (size_t c = 0; c * CHUNK < tr->ng; c++) {
            size_t k = tr->ng - c * CHUNK < CHUNK ? tr->ng - c * CHUNK : CHUNK;
            MPI_Send(tr->gchunks[c], (int)(k * sizeof(trace_gnode_t)), MPI_BYTE, 0, TAG_GRAPH,
                     ctx->comm);
        }
        for (size_t c = 0; c * CHUNK < tr->ne; c++) {
            size_t k = tr->ne - c * CHUNK < CHUNK ? tr->ne - c * CHUNK : CHUNK;
            MPI_Send(tr->echunks[c], (int)(k * 2), MPI_UINT32_T, 0, TAG_GRAPH, ctx->comm);
        }
        return DAGR_OK;
    }
    g->nranks = P;
    size_t nn = 0, ne = 0;
    for (int r = 0; r < P && all; r++) {
        nn += all[3 * r];
        ne += all[3 * r + 1];
        g->truncated |= all[3 * r + 2] != 0;
    }
    g->nodes = malloc((nn ? nn : 1) * sizeof *g->nodes);
    g->rank_of = malloc((nn ? nn : 1) * sizeof *g->rank_of);
    /* Local edges, then at most one cross edge per RECV (nn bounds them). */
    g->edges = malloc((ne + nn + 1) * sizeof *g->edges);
    uint32_t(*ebuf)[2] = malloc(CHUNK * sizeof *ebuf);
    bool ok = all && g->off && g->nodes && g->rank_of && g->edges && ebuf;
    for (int r = 0; r < P; r++) {
        size_t rn = all ? all[3 * r] : 0, re = all ? all[3 * r + 1] : 0;
        size_t base = g->off ? g->off[r] : 0;
        if (g->off) g->off[r + 1] = base + rn;
        for (size_t c = 0; c * CHUNK < rn; c++) {
            size_t k = rn - c * CHUNK < CHUNK ? rn - c * CHUNK : CHUNK;
            trace_gnode_t *dst = ok ? g->nodes + base + c * CHUNK : NULL;
            if (r == 0) {
                if (ok) memcpy(dst, tr->gchunks[c], k * sizeof *dst);
            } else if (ok) {
                MPI_Recv(dst, (int)(k * sizeof *dst), MPI_BYTE, r, TAG_GRAPH, ctx->comm,
                         MPI_STATUS_IGNORE);
            } else {
                trace_gnode_t tmp[64];
                MPI_Status st;
                MPI_Probe(r, TAG_GRAPH, ctx->comm, &st);
                int bytes = 0;
                MPI_Get_count(&st, MPI_BYTE, &bytes);
                char *sink = malloc((size_t)bytes);
                MPI_Recv(sink ? (void *)sink : (void *)tmp, sink ? bytes : 0, MPI_BYTE, r,
                         TAG_GRAPH, ctx->comm, MPI_STATUS_IGNORE);
                free(sink);
            }
            for (size_t i = 0; ok && i < k; i++)
                g->rank_of[base + c * CHUNK + i] = r;
        }
        for (size_t c = 0; c * CHUNK < re; c++) {
            size_t k = re - c * CHUNK < CHUNK ? re - c * CHUNK : CHUNK;
            if (r == 0) {
                if (ebuf) memcpy(ebuf, tr->echunks[c], k * sizeof *ebuf);
            } else {
                MPI_Recv(ebuf ? (void *)ebuf : NULL, ebuf ? (int)(k * 2) : 0, MPI_UINT32_T, r,
                         TAG_GRAPH, ctx->comm, MPI_STATUS_IGNORE);
            }
            for (size_t i = 0; ok && i < k; i++) {
                g->edges[g->nedges][0] = base + ebuf[i][0];
                g->edges[g->nedges][1] = base + ebuf[i][1];
                g->nedges++;
            }
        }
    }
    free(ebuf);
    free(all);
    if (!ok) return DAGR_ERR(DAGR_ERR_NOMEM, "cannot gather the task graph on rank 0");
    g->n = nn;
    return DAGR_OK;
}

typedef struct xkey {
    uint64_t hid, ver;
    int src, dst;
    size_t idx;
} xkey_t;

static int xkey_cmp(const void *pa, const void *pb) {
    const xkey_t *a = pa, *b = pb;
    if (a->hid != b->hid) return a->hid < b->hid ? -1 : 1;
    if (a->ver != b->ver) return a->ver < b->ver ? -1 : 1;
    if (a->src != b->src) return a->src < b->src ? -1 : 1;
    if (a->dst != b->dst) return a->dst < b->dst ? -1 : 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

/* Pairs the k-th SEND of (handle, version) from A to B with the k-th RECV of it on B: both
 * ranks planned them in the same insertion order. */
static void link_transfers(trace_graph_t *g) {
    size_t ns = 0, nr = 0;
    for (size_t i = 0; i < g->n; i++) {
        ns += g->nodes[i].kind == NODE_SEND;
        nr += g->nodes[i].kind == NODE_RECV;
    }
    xkey_t *s = malloc((ns + 1) * sizeof *s), *r = malloc((nr + 1) * sizeof *r);
    if (!s || !r) {
        free(s), free(r);
        g->truncated = true;
        return;
    }
    ns = nr = 0;
    for (size_t i = 0; i < g->n; i++) {
        const trace_gnode_t *x = &g->nodes[i];
        if (x->kind == NODE_SEND) s[ns++] = (xkey_t){x->hid, x->ver, g->rank_of[i], x->peer, i};
        if (x->kind == NODE_RECV) r[nr++] = (xkey_t){x->hid, x->ver, x->peer, g->rank_of[i], i};
    }
    qsort(s, ns, sizeof *s, xkey_cmp);
    qsort(r, nr, sizeof *r, xkey_cmp);
    size_t i = 0, j = 0;
    while (i < ns && j < nr) {
        xkey_t a = s[i], b = r[j];
        a.idx = b.idx = 0;
        int c = xkey_cmp(&a, &b);
        if (c == 0) {
            g->edges[g->nedges][0] = s[i++].idx;
            g->edges[g->nedges][1] = r[j++].idx;
            g->nedges++;
            g->ncross++;
        } else if (c < 0) {
            i++;
        } else {
            j++;
        }
    }
    free(s);
    free(r);
}

static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

/* Nanoseconds as microseconds with three decimals, exactly. */
static void json_us(FILE *f, int64_t ns) {
    if (ns < 0) {
        fputc('-', f);
        ns = -ns;
    }
    fprintf(f, "%" PRId64 ".%03d", ns / 1000, (int)(ns % 1000));
}

const char *trace_io_name(trace_io_kind_t kind) {
    switch (kind) {
    case TRACE_IO_HDF5_WRITE:
        return "hdf5 write";
    case TRACE_IO_HDF5_READ:
        return "hdf5 read";
    case TRACE_IO_CKPT_WRITE:
        return "checkpoint write";
    case TRACE_IO_CKPT_READ:
        return "checkpoint read";
    case TRACE_IO_SPILL_WRITE:
        return "spill write";
    case TRACE_IO_SPILL_READ:
        return "spill read";
    default:
        return "io";
    }
}

static const char *kname(const trace_t *tr, uint32_t k) {
    if (k < tr->nk) return tr->knames[k];
    return k == MAX_KERNELS - 1 ? "(other kernels)" : "(unknown kernel)";
}

static void write_event(FILE *f, const trace_t *tr, int pid, const tev_t *e) {
    static const char *const names[] = {"",     "idle",          "send",
                                        "recv", "dagr_wait_all", "spawn backlog"};
    static const char *const cats[] = {"task", "idle", "transfer", "transfer", "wait", "wait"};
    fputs(",\n{\"name\":", f);
    if (e->type == EV_TASK)
        json_str(f, kname(tr, e->kernel));
    else
        json_str(f, e->type == EV_IO ? trace_io_name(e->kernel) : names[e->type]);
    fprintf(f, ",\"cat\":\"%s\",\"ph\":\"X\",\"pid\":%d,\"tid\":%d,\"ts\":",
            e->type == EV_IO ? "io" : cats[e->type], pid, e->tid);
    json_us(f, e->t0);
    fputs(",\"dur\":", f);
    json_us(f, e->dur);
    switch (e->type) {
    case EV_TASK:
        fprintf(f, ",\"args\":{\"seq\":%" PRIu64 ",\"priority\":%d", e->b, e->a);
        float flops;
        memcpy(&flops, &e->node, sizeof flops);
        if (flops > 0) fprintf(f, ",\"flops\":%.9g", (double)flops);
        fputs("}}", f);
        break;
    case EV_SEND:
    case EV_RECV:
        fprintf(f, ",\"args\":{\"peer\":%d,\"bytes\":%" PRIu64 "}}", e->a, e->b);
        break;
    case EV_IO:
        fprintf(f, ",\"args\":{\"bytes\":%" PRIu64 ",\"worker\":%d}}", e->b, e->a);
        break;
    default:
        fputs("}", f);
    }
}

/* Rank pid's row names: its host workers, its devices' workers (the last `ndev` of the
 * nthreads), then comm, main and io. */
static void write_meta(FILE *f, int pid, int nthreads, int ndev) {
    fprintf(f,
            ",\n{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":0,"
            "\"args\":{\"name\":\"rank %d\"}}"
            ",\n{\"name\":\"process_sort_index\",\"ph\":\"M\",\"pid\":%d,\"tid\":0,"
            "\"args\":{\"sort_index\":%d}}",
            pid, pid, pid, pid);
    for (int t = 0; t < nthreads + 3; t++) {
        char name[32];
        if (t < nthreads - ndev)
            snprintf(name, sizeof name, "worker %d", t);
        else if (t < nthreads)
            snprintf(name, sizeof name, "device %d", t - (nthreads - ndev));
        else
            snprintf(name, sizeof name, "%s",
                     t == nthreads       ? "comm"
                     : t == nthreads + 1 ? "main"
                                         : "io");
        fprintf(f,
                ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":%d,"
                "\"args\":{\"name\":\"%s\"}}"
                ",\n{\"name\":\"thread_sort_index\",\"ph\":\"M\",\"pid\":%d,\"tid\":%d,"
                "\"args\":{\"sort_index\":%d}}",
                pid, t, name, pid, t, t);
    }
}

/* A walk over this rank's events, buffer after buffer, as they go to rank 0. A worker's idle
 * periods are made up here, from the gaps (of at least idle_min) before, between and after
 * its tasks; after the first dropped event the buffer says nothing of the end. */
typedef struct evwalk {
    int buf;
    size_t j;
    int64_t last_end; /* workers: the end of the previous task */
    bool gap_done;    /* the gap before event j (or after the last) has been looked at */
} evwalk_t;

static evwalk_t evwalk_start(const trace_t *tr) {
    return (evwalk_t){.last_end = tr->t_start};
}

static bool evwalk_next(trace_t *tr, evwalk_t *w, tev_t *out) {
    while (w->buf < tr->nbufs) {
        tbuf_t *b = &tr->bufs[w->buf];
        if (w->buf < tr->nthreads && !w->gap_done) {
            w->gap_done = true;
            bool end = w->j == b->n;
            int64_t next = end ? tr->t_end : b->chunks[w->j / CHUNK][w->j % CHUNK].t0;
            if ((!end || !b->dropped) && next - w->last_end >= tr->idle_min) {
                *out = wire(tr,
                            &(tev_t){.t0 = w->last_end,
                                     .dur = next - w->last_end,
                                     .node = TRACE_NONE,
                                     .type = EV_IDLE},
                            w->buf);
                return true;
            }
        }
        if (w->j < b->n) {
            const tev_t *e = &b->chunks[w->j / CHUNK][w->j % CHUNK];
            w->last_end = e->t0 + e->dur;
            w->j++;
            w->gap_done = false;
            *out = wire(tr, e, w->buf);
            return true;
        }
        *w = (evwalk_t){.buf = w->buf + 1, .last_end = tr->t_start};
    }
    return false;
}

/* Collective: every rank's events, aligned, written by rank 0 as they arrive. */
static void merge_events(dagr_ctx_t *ctx, const trace_rankstat_t *rs) {
    trace_t *tr = ctx->trace;
    tev_t *out = malloc(CHUNK * sizeof *out);
    if (ctx->rank != 0) {
        /* Rank 0 is told the count first, then gets ceil(count / CHUNK) messages. */
        uint64_t total = 0;
        evwalk_t w = evwalk_start(tr);
        tev_t e;
        while (out && evwalk_next(tr, &w, &e))
            total++;
        MPI_Send(&total, 1, MPI_UINT64_T, 0, TAG_EVENTS, ctx->comm);
        size_t k = 0;
        w = evwalk_start(tr);
        while (out && evwalk_next(tr, &w, &out[k])) {
            if (++k == CHUNK) {
                MPI_Send(out, (int)(k * sizeof *out), MPI_BYTE, 0, TAG_EVENTS, ctx->comm);
                k = 0;
            }
        }
        if (k) MPI_Send(out, (int)(k * sizeof *out), MPI_BYTE, 0, TAG_EVENTS, ctx->comm);
        free(out);
        return;
    }
    FILE *f = tr->trace_f;
    fputs("{\"traceEvents\":[\n{\"name\":\"dagr\",\"ph\":\"M\",\"pid\":0,\"tid\":0,\"args\":{}}",
          f);
    for (int r = 0; rs && r < ctx->size; r++) /* rs is NULL when only draining the ranks */
        write_meta(f, r, (int)rs[r].threads, (int)rs[r].devices);
    evwalk_t w = evwalk_start(tr);
    tev_t e;
    while (evwalk_next(tr, &w, &e))
        write_event(f, tr, 0, &e);
    for (int r = 1; r < ctx->size; r++) {
        uint64_t n = 0;
        MPI_Recv(&n, 1, MPI_UINT64_T, r, TAG_EVENTS, ctx->comm, MPI_STATUS_IGNORE);
        for (uint64_t got = 0; got < n;) {
            int bytes = 0;
            MPI_Status st;
            MPI_Recv(out, out ? (int)(CHUNK * sizeof *out) : 0, MPI_BYTE, r, TAG_EVENTS, ctx->comm,
                     &st);
            MPI_Get_count(&st, MPI_BYTE, &bytes);
            size_t k = (size_t)bytes / sizeof *out;
            for (size_t j = 0; j < k; j++)
                write_event(f, tr, r, &out[j]);
            got += out ? k : (n - got < CHUNK ? n - got : CHUNK);
        }
    }
    free(out);
}

dagr_status_t trace_finish(dagr_ctx_t *ctx) {
    trace_t *tr = ctx->trace;
    if (!tr) return DAGR_OK;
    int P = ctx->size;
    tr->t_end = trace_ticks();
    tr->ns1 = mono_ns();
    settle(tr);
    tr->off1 = clock_offset(ctx, tr->same_node_as_0);
    dagr_status_t st = DAGR_OK;
    char msg[DAGR_ERRMSG_MAX] = "";

    /* The graph and its critical path. */
    trace_graph_t g = {0};
    dagr_status_t gs = gather_graph(ctx, &g);
    int64_t cp = -1;
    if (ctx->rank == 0 && gs == DAGR_OK && tr->graph) {
        link_transfers(&g);
        g.kernel_names = (const char *const *)tr->knames;
        g.nkernels = tr->nk;
        cp = trace_critical_path(&g);
    }

    /* Per-kernel figures (ids agree across ranks) and per-rank figures. */
    trace_kstat_t *ks = calloc(MAX_KERNELS, sizeof *ks), *kall = calloc(MAX_KERNELS, sizeof *ks);
    trace_rankstat_t me = {.wall_ns = tr->ns1 - tr->ns0,
                           .threads = tr->nthreads,
                           .devices = ctx->denv.test_devices,
                           .bytes_sent = atomic_load(&ctx->bytes_sent),
                           .bytes_received = atomic_load(&ctx->bytes_received)};
    memcpy(me.io_bytes, tr->io_bytes, sizeof me.io_bytes);
    dagr_memory_stats_t mem;
    dagr_memory_stats(ctx, &mem);
    me.mem_limit = mem.limit;
    me.mem_peak = mem.peak;
    me.mem_over = mem.over_limit;
    memcpy(me.io_ns, tr->io_ns, sizeof me.io_ns);
    for (int i = 0; i < tr->nbufs; i++) {
        tbuf_t *b = &tr->bufs[i];
        me.tasks += b->tasks;
        me.busy_ns += b->busy;
        me.dropped += b->dropped;
        for (int k = 0; ks && b->ks && k < MAX_KERNELS; k++) {
            ks[k].count += b->ks[k].count;
            ks[k].ns += b->ks[k].ns;
            ks[k].flops += b->ks[k].flops;
        }
    }
    /* Three reductions keep the types exact; a failed calloc reduces zeros (rank 0 reports). */
    uint64_t cnt[MAX_KERNELS], cnt_all[MAX_KERNELS];
    int64_t ns[MAX_KERNELS], ns_all[MAX_KERNELS];
    double fl[MAX_KERNELS], fl_all[MAX_KERNELS];
    for (int k = 0; k < MAX_KERNELS; k++) {
        cnt[k] = ks ? ks[k].count : 0;
        ns[k] = ks ? ks[k].ns : 0;
        fl[k] = ks ? ks[k].flops : 0;
    }
    MPI_Reduce(cnt, cnt_all, MAX_KERNELS, MPI_UINT64_T, MPI_SUM, 0, ctx->comm);
    MPI_Reduce(ns, ns_all, MAX_KERNELS, MPI_INT64_T, MPI_SUM, 0, ctx->comm);
    MPI_Reduce(fl, fl_all, MAX_KERNELS, MPI_DOUBLE, MPI_SUM, 0, ctx->comm);
    trace_rankstat_t *rs = ctx->rank == 0 ? calloc((size_t)P, sizeof *rs) : NULL;
    trace_rankstat_t rscratch;
    MPI_Gather(&me, (int)sizeof me, MPI_BYTE, rs ? (void *)rs : (void *)&rscratch, (int)sizeof me,
               MPI_BYTE, 0, ctx->comm);
    if (ctx->rank == 0 && (!rs || !kall || gs != DAGR_OK)) {
        st = DAGR_ERR(DAGR_ERR_NOMEM, "out of memory merging the trace on rank 0");
        snprintf(msg, sizeof msg, "%s", dagr_last_error());
    }
    for (int k = 0; kall && k < MAX_KERNELS; k++)
        kall[k] = (trace_kstat_t){cnt_all[k], ns_all[k], fl_all[k]};
    uint64_t inserted = ctx->div.count;

    if (tr->trace_path) {
        if (ctx->rank == 0 && st == DAGR_OK) {
            FILE *f = tr->trace_f;
            merge_events(ctx, rs);
            fprintf(
                f,
                "\n],\n\"displayTimeUnit\":\"ms\",\n\"otherData\":{\"dagr_version\":\"%d.%d.%d\","
                "\"ranks\":%d,\"clock\":\"CLOCK_MONOTONIC ns; time 0 = rank 0 dagr_init; "
                "ranks off rank 0's node aligned by min-RTT ping-pong at init and finalize\","
                "\"tasks_inserted\":%" PRIu64 ",\"wall_s\":%.9f,\"events_cap_per_thread\":%zu,"
                "\"graph_truncated\":%s,\"critical_path_s\":",
                DAGR_VERSION_MAJOR, DAGR_VERSION_MINOR, DAGR_VERSION_PATCH, P, inserted,
                (double)rs[0].wall_ns * 1e-9, tr->cap, g.truncated ? "true" : "false");
            if (cp >= 0)
                fprintf(f, "%.9f", (double)cp * 1e-9);
            else
                fputs("null", f); /* the graph is recorded only for DAGR_DOT or DAGR_SUMMARY */
            const char *keys[] = {"threads",      "tasks_run",      "busy_s",
                                  "bytes_sent",   "bytes_received", "dropped_events",
                                  "memory_limit", "memory_peak",    "memory_over_limit"};
            for (int key = 0; key < 9; key++) {
                fprintf(f, ",\"%s\":[", keys[key]);
                for (int r = 0; r < P; r++) {
                    const trace_rankstat_t *x = &rs[r];
                    if (r) fputc(',', f);
                    if (key == 0) fprintf(f, "%" PRId64, x->threads);
                    if (key == 1) fprintf(f, "%" PRIu64, x->tasks);
                    if (key == 2) fprintf(f, "%.9f", (double)x->busy_ns * 1e-9);
                    if (key == 3) fprintf(f, "%" PRIu64, x->bytes_sent);
                    if (key == 4) fprintf(f, "%" PRIu64, x->bytes_received);
                    if (key == 5) fprintf(f, "%" PRIu64, x->dropped);
                    if (key == 6) fprintf(f, "%" PRIu64, x->mem_limit);
                    if (key == 7) fprintf(f, "%" PRIu64, x->mem_peak);
                    if (key == 8) fprintf(f, "%" PRIu64, x->mem_over);
                }
                fputc(']', f);
            }
            fputs("}}\n", f);
        } else {
            /* Rank 0 may have failed above; it then still drains the others' events. */
            if (ctx->rank == 0) {
                FILE *keep = tr->trace_f;
                tr->trace_f = fopen("/dev/null", "w");
                if (tr->trace_f) merge_events(ctx, NULL);
                if (tr->trace_f) fclose(tr->trace_f);
                tr->trace_f = keep;
            } else {
                merge_events(ctx, NULL);
            }
        }
        if (ctx->rank == 0) {
            FILE *f = tr->trace_f;
            tr->trace_f = NULL;
            bool bad = ferror(f) != 0;
            bad |= fclose(f) != 0;
            if (bad && st == DAGR_OK) {
                st = DAGR_ERR(DAGR_ERR_IO, "cannot write the trace file '%s'", tr->trace_path);
                snprintf(msg, sizeof msg, "%s", dagr_last_error());
            }
        }
    }
    if (ctx->rank == 0 && tr->dot_f) {
        FILE *f = tr->dot_f;
        tr->dot_f = NULL;
        bool bad = st != DAGR_OK || !dot_write(f, &g, DOT_MAX_NODES);
        bad |= fclose(f) != 0;
        if (bad && st == DAGR_OK) {
            st = DAGR_ERR(DAGR_ERR_IO, "cannot write the DOT file '%s'", tr->dot_path);
            snprintf(msg, sizeof msg, "%s", dagr_last_error());
        }
    }
    if (ctx->rank == 0 && tr->summary && st == DAGR_OK) {
        const char *names[MAX_KERNELS];
        for (int k = 0; k < MAX_KERNELS; k++)
            names[k] = kname(tr, (uint32_t)k);
        summary_print(stderr, kall, names, MAX_KERNELS, rs, P, inserted, cp, g.truncated);
    }
    free(ks);
    free(kall);
    free(rs);
    free(g.nodes);
    free(g.rank_of);
    free(g.off);
    free(g.edges);
    trace_discard(ctx);
    return ctx_agree(ctx->comm, st, msg);
}
