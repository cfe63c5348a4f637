/* The trace's buffers, shared by the two halves of the trace and by no other file: trace.c
 * records into them while the run goes on, trace_write.c merges and writes them at finalize.
 * Included after lib_impl.h. */
#ifndef DAGR_TRACE_BUF_H
#define DAGR_TRACE_BUF_H

#define CHUNK 8192       /* events, graph records or edges per chunk */
#define MAX_KERNELS 1024 /* distinct names; the last id gathers any beyond */
#define KTABLE 4096      /* kernel hash slots (a power of two > MAX_KERNELS) */

enum { EV_TASK, EV_IDLE, EV_SEND, EV_RECV, EV_WAIT, EV_BACKLOG, EV_IO, EV_COPY };

/* An event: ticks while recording; aligned nanoseconds on the way to rank 0. */
typedef struct tev {
    int64_t t0, dur;
    uint64_t b;      /* TASK: seq; SEND, RECV, IO, COPY: bytes */
    int32_t a;       /* TASK: priority; SEND, RECV: peer; IO: worker; COPY: device */
    uint32_t node;   /* the node's graph record, or TRACE_NONE; on the wire: TASK flops (float) */
    uint16_t kernel; /* TASK: kernel id; IO: trace_io_kind_t */
    uint8_t type;
    uint8_t flags; /* TASK: EVF_RETRY; COPY: EVF_TO_NODE */
    union {
        float flops; /* while recording: TASK flops */
        struct {
            uint16_t tid; /* on the wire: the thread */
            uint16_t pad;
        };
    };
} tev_t;

enum {
    EVF_RETRY = 1,   /* the body asked to run again: time spent, but not a task run */
    EVF_TO_NODE = 2, /* a copy into the device's memory (else out of it) */
};

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
    /* Device copy threads, every copy (dropped or not): bytes out of the device [0] and into
     * it [1], and ticks copying (ns after trace_finish's settle). */
    uint64_t copied[2];
    int64_t copy_time;
} tbuf_t;

typedef struct kslot {
    uint64_t hash;
    uint32_t id;
    bool used;
} kslot_t;

struct trace {
    /* Read by every thread, written only at start and finish. */
    /* Buffers: the workers (the host's, then one per device), comm, main, io, then each
     * device's copy thread. */
    int rank, nthreads, ndev, nbufs;
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

/* trace.c's clock and clock alignment, which trace_finish uses once more at the end.
 * trace_mono_ns: CLOCK_MONOTONIC in nanoseconds (shifted for the tests by
 * DAGR_TRACE_TEST_SKEW_NS). */
int64_t trace_mono_ns(void);
/* Collective: this rank's offset to rank 0's clock (rank 0's time minus ours; 0 on rank 0's
 * node). */
int64_t trace_clock_offset(struct dagr_ctx *ctx, bool same_node);

static inline trace_gnode_t *trace_gnode(trace_t *tr, uint32_t i) {
    return &tr->gchunks[i / CHUNK][i % CHUNK];
}

/* Adds a task (ticks in its body) to b's counters: at once for an event the full buffer drops,
 * at finalize for the events recorded. */
static inline void trace_count_task(tbuf_t *b, uint32_t kernel, int64_t ticks, bool done,
                                    double flops) {
    trace_kstat_t *k = &b->ks[kernel < MAX_KERNELS ? kernel : MAX_KERNELS - 1];
    b->busy += ticks;
    k->ns += ticks;
    if (done) {
        k->count++;
        k->flops += flops;
        b->tasks++;
    }
}

#endif
