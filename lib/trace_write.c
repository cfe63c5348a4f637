/* Tracing, the finalize side: merging what trace.c recorded on every rank, and writing it on
 * rank 0 (the JSON trace here, the DOT file through dot.c, the summary through summary.c).
 *
 * Merging. At finalize, after the threads have stopped, each rank sends rank 0 its graph and
 * its events in chunks of bounded size (point to point, one rank after the other), so rank 0
 * never holds more than one chunk of another rank's events; rank 0 writes the JSON as they
 * arrive. The graph is gathered whole (it is bounded by trace_events nodes per rank) for the
 * critical path, the DOT file and the summary.
 *
 * The critical path is the longest chain of dependencies through the graph every rank
 * recorded, linked across ranks by each transfer's SEND and RECV: a task weighs what its body
 * took, a SEND what its copy or put took, a RECV nothing (its time is the sender's and the
 * wait for it). It is the time the run would take with unlimited workers and free scheduling,
 * against which the wall time says how much parallelism was left unused. */
#include "lib_impl.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "trace_buf.h"

#define TAG_GRAPH 0x7acf
#define TAG_EVENTS 0x7ad0
#define DOT_MAX_NODES 1000 /* dot takes ~7 s on 1000 nodes of a dense graph here */

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
                trace_gnode(tr, e->node)->dur += tick_ns(tr, e->dur);
            if (e->type == EV_TASK && b->ks)
                trace_count_task(b, e->kernel, e->dur, !(e->flags & EVF_RETRY), e->flops);
            if (e->type == EV_IO && e->kernel < TRACE_IO_KINDS) {
                tr->io_bytes[e->kernel] += e->b;
                tr->io_ns[e->kernel] += tick_ns(tr, e->dur);
            }
        }
        b->busy = tick_ns(tr, b->busy);
        b->copy_time = tick_ns(tr, b->copy_time);
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

/* The longest path (see the top of the file). */
int64_t trace_critical_path(const trace_graph_t *g) {
    size_t n = g->n;
    if (n == 0) return 0;
    size_t *first = calloc(n + 1, sizeof *first), *succ = malloc((g->nedges + 1) * sizeof *succ);
    uint32_t *indeg = calloc(n, sizeof *indeg);
    int64_t *start = calloc(n, sizeof *start);
    size_t *queue = malloc(n * sizeof *queue);
    int64_t best = -1;
    if (!first || !succ || !indeg || !start || !queue) goto out;
    /* Successor lists in one array (CSR), then Kahn's topological order. */
    for (size_t e = 0; e < g->nedges; e++) {
        first[g->edges[e][0] + 1]++;
        indeg[g->edges[e][1]]++;
    }
    for (size_t i = 0; i < n; i++)
        first[i + 1] += first[i];
    size_t *fill = queue; /* borrowed as a cursor per node before the queue is used */
    for (size_t i = 0; i < n; i++)
        fill[i] = first[i];
    for (size_t e = 0; e < g->nedges; e++)
        succ[fill[g->edges[e][0]]++] = g->edges[e][1];
    size_t head = 0, tail = 0;
    for (size_t i = 0; i < n; i++)
        if (!indeg[i]) queue[tail++] = i;
    best = 0;
    while (head < tail) {
        size_t v = queue[head++];
        int64_t w = g->nodes[v].kind == NODE_RECV ? 0 : g->nodes[v].dur;
        int64_t fin = start[v] + (w > 0 ? w : 0);
        if (fin > best) best = fin;
        for (size_t k = first[v]; k < first[v + 1]; k++) {
            size_t s = succ[k];
            if (fin > start[s]) start[s] = fin;
            if (--indeg[s] == 0) queue[tail++] = s;
        }
    }
out:
    free(first), free(succ), free(indeg), free(start), free(queue);
    return best;
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
    static const char *const names[] = {
        "", "idle", "send", "recv", "dagr_wait_all", "spawn backlog", "io", "copy"};
    static const char *const cats[] = {"task", "idle", "transfer", "transfer",
                                       "wait", "wait", "io",       "copy"};
    fputs(",\n{\"name\":", f);
    if (e->type == EV_TASK)
        json_str(f, kname(tr, e->kernel));
    else if (e->type == EV_IO)
        json_str(f, trace_io_name(e->kernel));
    else if (e->type == EV_COPY)
        json_str(f, e->flags & EVF_TO_NODE ? "copy in" : "copy out");
    else
        json_str(f, names[e->type]);
    fprintf(f, ",\"cat\":\"%s\",\"ph\":\"X\",\"pid\":%d,\"tid\":%d,\"ts\":", cats[e->type], pid,
            e->tid);
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
    case EV_COPY:
        fprintf(f, ",\"args\":{\"bytes\":%" PRIu64 ",\"device\":%d}}", e->b, e->a);
        break;
    default:
        fputs("}", f);
    }
}

/* Rank pid's row names, by tid: its host workers, its devices' workers (the last `ndev` of
 * the nthreads), comm, main, io, then its devices' copy threads. Sorted with each device's
 * copies just below its worker. */
static void write_meta(FILE *f, int pid, int nthreads, int ndev) {
    fprintf(f,
            ",\n{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":0,"
            "\"args\":{\"name\":\"rank %d\"}}"
            ",\n{\"name\":\"process_sort_index\",\"ph\":\"M\",\"pid\":%d,\"tid\":0,"
            "\"args\":{\"sort_index\":%d}}",
            pid, pid, pid, pid);
    int host = nthreads - ndev;
    for (int t = 0; t < nthreads + 3 + ndev; t++) {
        char name[32];
        int sort = t;
        if (t < host) {
            snprintf(name, sizeof name, "worker %d", t);
        } else if (t < nthreads) {
            snprintf(name, sizeof name, "device %d", t - host);
            sort = host + 2 * (t - host);
        } else if (t < nthreads + 3) {
            snprintf(name, sizeof name, "%s",
                     t == nthreads       ? "comm"
                     : t == nthreads + 1 ? "main"
                                         : "io");
            sort = t + ndev;
        } else {
            snprintf(name, sizeof name, "device %d copies", t - nthreads - 3);
            sort = host + 2 * (t - nthreads - 3) + 1;
        }
        fprintf(f,
                ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":%d,"
                "\"args\":{\"name\":\"%s\"}}"
                ",\n{\"name\":\"thread_sort_index\",\"ph\":\"M\",\"pid\":%d,\"tid\":%d,"
                "\"args\":{\"sort_index\":%d}}",
                pid, t, name, pid, t, sort);
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
    tr->ns1 = trace_mono_ns();
    settle(tr);
    tr->off1 = trace_clock_offset(ctx, tr->same_node_as_0);
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

    /* Per-kernel figures (ids agree across ranks), per class of worker that ran them (host,
     * test device, GPU: ks[class * MAX_KERNELS + id]), and per-rank figures. */
    enum { NKS = PM_CLASSES * MAX_KERNELS };
    trace_kstat_t *ks = calloc(NKS, sizeof *ks), *kall = calloc(NKS, sizeof *ks);
    trace_rankstat_t me = {.wall_ns = tr->ns1 - tr->ns0,
                           .threads = tr->nthreads,
                           .devices = tr->ndev,
                           .bytes_sent = atomic_load(&ctx->bytes_sent),
                           .bytes_received = atomic_load(&ctx->bytes_received)};
    memcpy(me.io_bytes, tr->io_bytes, sizeof me.io_bytes);
    dagr_memory_stats_t mem;
    dagr_memory_stats(ctx, &mem);
    me.mem_limit = mem.limit;
    me.mem_peak = mem.peak;
    me.mem_over = mem.over_limit;
    memcpy(me.io_ns, tr->io_ns, sizeof me.io_ns);
    int host = tr->nthreads - tr->ndev; /* the device workers' buffers follow the host's */
    for (int d = 0; d < tr->ndev && d < TRACE_MAX_DEVICES; d++) {
        const tbuf_t *b = &tr->bufs[tr->nthreads + 3 + d];
        me.copy_in[d] = b->copied[1];
        me.copy_out[d] = b->copied[0];
        me.copy_ns[d] = b->copy_time;
        me.dev_busy_ns[d] = tr->bufs[host + d].busy;
        me.dev_gpu[d] = d >= ctx->denv.test_devices;
    }
    for (int i = 0; i < tr->nbufs; i++) {
        tbuf_t *b = &tr->bufs[i];
        me.tasks += b->tasks;
        me.busy_ns += b->busy;
        me.dropped += b->dropped;
        int cls = i < host || i >= tr->nthreads       ? PM_HOST
                  : i - host < ctx->denv.test_devices ? PM_TEST
                                                      : PM_GPU;
        trace_kstat_t *kc = ks ? ks + cls * MAX_KERNELS : NULL;
        for (int k = 0; kc && b->ks && k < MAX_KERNELS; k++) {
            kc[k].count += b->ks[k].count;
            kc[k].ns += b->ks[k].ns;
            kc[k].flops += b->ks[k].flops;
        }
    }
    /* Three reductions keep the types exact; a failed calloc reduces zeros (rank 0 reports).
     * On the stack: 144 KiB, at finalize, on the caller's thread. */
    uint64_t cnt[NKS], cnt_all[NKS];
    int64_t ns[NKS], ns_all[NKS];
    double fl[NKS], fl_all[NKS];
    for (int k = 0; k < NKS; k++) {
        cnt[k] = ks ? ks[k].count : 0;
        ns[k] = ks ? ks[k].ns : 0;
        fl[k] = ks ? ks[k].flops : 0;
    }
    MPI_Reduce(cnt, cnt_all, NKS, MPI_UINT64_T, MPI_SUM, 0, ctx->comm);
    MPI_Reduce(ns, ns_all, NKS, MPI_INT64_T, MPI_SUM, 0, ctx->comm);
    MPI_Reduce(fl, fl_all, NKS, MPI_DOUBLE, MPI_SUM, 0, ctx->comm);
    trace_rankstat_t *rs = ctx->rank == 0 ? calloc((size_t)P, sizeof *rs) : NULL;
    trace_rankstat_t rscratch;
    MPI_Gather(&me, (int)sizeof me, MPI_BYTE, rs ? (void *)rs : (void *)&rscratch, (int)sizeof me,
               MPI_BYTE, 0, ctx->comm);
    if (ctx->rank == 0 && (!rs || !kall || gs != DAGR_OK)) {
        st = DAGR_ERR(DAGR_ERR_NOMEM, "out of memory merging the trace on rank 0");
        snprintf(msg, sizeof msg, "%s", dagr_last_error());
    }
    for (int k = 0; kall && k < NKS; k++)
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
