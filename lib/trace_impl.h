/* Observability, private to lib/: the trace (recorded by trace.c, merged and written by
 * trace_write.c), DOT (dot.c) and the summary (summary.c). Included by lib_impl.h. */
#ifndef DAGR_TRACE_IMPL_H
#define DAGR_TRACE_IMPL_H

/* ---------------------------------------------------------------------------------------
 * The trace (trace.c records, trace_write.c writes), DOT (dot.c), summary (summary.c)
 *
 * ctx->trace is non-NULL when DAGR_TRACE, DAGR_DOT or DAGR_SUMMARY is on. The hooks in the
 * hot paths test that one pointer and do nothing else when it is NULL. Each worker, the
 * progress thread, the main thread and each device's copy thread write events into their own
 * buffers without locks; the main thread alone records the graph (nodes at insertion, edges
 * as dependencies are inferred); the executing thread adds a node's duration to its record.
 * Everything is merged on rank 0 at finalize.
 * ------------------------------------------------------------------------------------- */

#define TRACE_NONE UINT32_MAX
/* Devices a rank's summary row has room for: DAGR_TEST_DEVICES's upper bound (device.c). */
#define TRACE_MAX_DEVICES 8

typedef struct trace trace_t;
typedef struct progress progress_t;

/* Collective: sets up ctx->trace from ctx->cfg (NULL if nothing is asked for), opens the
 * output files on rank 0 and aligns the ranks' clocks. Returns the same status everywhere. */
dagr_status_t trace_start(struct dagr_ctx *ctx);
/* Collective, after the workers and the progress thread have stopped (trace_write.c): merges
 * and writes the trace, the DOT file and the summary, and frees ctx->trace. Returns the same
 * status everywhere (DAGR_ERR_IO if rank 0 could not write a file). */
dagr_status_t trace_finish(struct dagr_ctx *ctx);
/* Local: frees ctx->trace without writing anything (init failed half-way). */
void trace_discard(struct dagr_ctx *ctx);
/* The trace's clock, in ticks: the CPU's time-stamp counter where the kernel itself keeps time
 * with it (invariant and synchronised across cores; half the cost of clock_gettime), else
 * CLOCK_MONOTONIC nanoseconds. trace_finish converts ticks to nanoseconds against
 * CLOCK_MONOTONIC read at start and at end. */
extern int trace_clock_tsc;
static inline int64_t trace_ticks(void) {
#if defined(__x86_64__)
    if (trace_clock_tsc) return (int64_t)__rdtsc();
#endif
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Main thread, at dagr_spawn (every rank, every task): the kernel's id, identical on every
 * rank because every rank interns the same names in the same order. */
uint32_t trace_kernel(struct dagr_ctx *ctx, const char *name, uint64_t name_hash);
/* Main thread: records a new local node (sets n->tr_node; h is the handle a SEND or RECV
 * moves, NULL for a task) and a dependency edge. */
void trace_node(struct dagr_ctx *ctx, node_t *n, const struct dagr_data *h);
void trace_edge(struct dagr_ctx *ctx, const node_t *pred, const node_t *succ);
/* Worker `worker`: a task body ran from t0 to now; done = it did not ask to be retried. */
void trace_task(struct dagr_ctx *ctx, const node_t *n, int worker, int64_t t0, bool done);
/* Progress thread: a SEND copied or put its data (t0 to now); a RECV got its data. */
void trace_send(struct dagr_ctx *ctx, const node_t *s, int64_t t0, uint64_t bytes);
void trace_recv(struct dagr_ctx *ctx, const node_t *r, uint64_t bytes);
/* A device's copy thread: a copy into the device's memory (to_node) or out of it ran from t0
 * to now. */
void trace_copy(struct dagr_ctx *ctx, int device, bool to_node, int64_t t0, uint64_t bytes);
/* Main thread: a wait (dagr_wait_all, or dagr_spawn held back by the backlog) from t0. */
void trace_wait(struct dagr_ctx *ctx, int64_t t0, bool backlog);
/* The graph as rank 0 gathers it at finalize (dot.c and summary.c read it). */
typedef struct trace_gnode {
    uint64_t seq, hid, ver, bytes;
    int64_t dur;  /* ns the node ran (task body, or the SEND's copy/put); 0 if not recorded */
    double flops; /* TASK: as declared */
    uint32_t kernel;
    int32_t peer;
    uint8_t kind; /* node_kind_t */
    uint8_t pad[7];
} trace_gnode_t;

typedef struct trace_graph {
    int nranks;
    size_t n, nedges;
    trace_gnode_t *nodes; /* rank r's nodes at [off[r], off[r + 1]) */
    int *rank_of;         /* per node */
    size_t *off;          /* nranks + 1 */
    uint64_t (*edges)[2]; /* global node indices, from -> to (local and cross-rank) */
    size_t ncross;        /* of which the last ncross are SEND -> RECV pairs */
    bool truncated;       /* some rank hit its node or edge cap */
    const char *const *kernel_names;
    uint32_t nkernels;
} trace_graph_t;

/* Longest path through the graph weighting tasks and sends by their durations (ns)
 * (trace_write.c). */
int64_t trace_critical_path(const trace_graph_t *g);
/* Rank 0: writes the DOT file; returns false on a write error. */
bool dot_write(FILE *f, const trace_graph_t *g, size_t max_nodes);

/* Per-kernel and per-rank figures for the summary. */
typedef struct trace_kstat {
    uint64_t count;
    int64_t ns;
    double flops;
} trace_kstat_t;

typedef struct trace_rankstat {
    uint64_t tasks;
    int64_t busy_ns;
    int64_t wall_ns;
    uint64_t bytes_sent, bytes_received;
    uint64_t dropped;
    int64_t threads; /* workers: the host's, then one per device */
    int64_t devices;
    uint64_t io_bytes[TRACE_IO_KINDS]; /* file I/O recorded, by trace_io_kind_t */
    int64_t io_ns[TRACE_IO_KINDS];
    uint64_t mem_limit, mem_peak, mem_over; /* the tile store's (0 without a memory limit) */
    /* Per device (the first TRACE_MAX_DEVICES): bytes its copy thread copied into the device's
     * memory and out of it, and the time those copies took. */
    uint64_t copy_in[TRACE_MAX_DEVICES], copy_out[TRACE_MAX_DEVICES];
    int64_t copy_ns[TRACE_MAX_DEVICES];
    int64_t dev_busy_ns[TRACE_MAX_DEVICES]; /* its worker's time in task bodies */
    uint8_t dev_gpu[TRACE_MAX_DEVICES];     /* a GPU, else a test device */
} trace_rankstat_t;

/* Rank 0: prints the summary table. ks holds PM_CLASSES tables of nk kernels, one per class of
 * worker that ran them (host, test device, GPU). cp_ns < 0: no critical path (graph not
 * recorded). */
void summary_print(FILE *f, const trace_kstat_t *ks, const char *const *names, uint32_t nk,
                   const trace_rankstat_t *rs, int nranks, uint64_t inserted, int64_t cp_ns,
                   bool cp_partial);

#endif
