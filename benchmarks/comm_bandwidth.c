/* comm_bandwidth: bytes per second the runtime moves between two ranks, against raw MPI RMA
 * moving the same bytes in the same run.
 *
 * For each tile size (4 KiB .. 16 MiB by powers of 4 by default), K tiles (K * size is about
 * --round-bytes, within [2, --max-tiles]) and three ways of moving them from rank 0 to rank 1,
 * measured in turn in every repeat (interleaved, so that the shared machine's noise hits all
 * three alike); the figure kept is the best round of each:
 *
 *   runtime      rank 0 owns K handles. A round spawns, for each tile, a trivial task on
 *                rank 0 that RWs it (stamping the round number into its first and last 8
 *                bytes: a fresh version, so the tile must move again) and a task on rank 1
 *                that READs it (and checks the stamps); timed from the first spawn to the
 *                return of dagr_wait_all.
 *   raw_alloc    an MPI_Win_allocate window of K tiles on rank 0, locked once (lock_all) for
 *                the whole run; a round is: rank 1 MPI_Gets the K tiles into its own buffers,
 *                MPI_Win_flush, then MPI_Barrier.
 *   raw_dynamic  the same from an MPI_Win_create_dynamic window with the buffer attached.
 *   raw_sendrecv rank 0 MPI_Isends the K tiles from ordinary memory, rank 1 MPI_Irecvs them
 *                into its buffers; MPI_Waitall, then MPI_Barrier.
 * ratio_runtime_best_raw is the runtime against the faster of raw_alloc and raw_sendrecv.
 *
 * --busy: on every rank a thread outside dagr runs 256 x 256 dgemm back to back (OpenBLAS,
 * one thread) during all cases alike, so that the progress engine competes for the cores as
 * it does while the workers compute.
 *
 * Latency (first line): a chain of --hops 4 KiB transfers bouncing between ranks 0 and 1
 * (a task on rank r writes the tile the next task, on the other rank, reads and writes), per
 * hop; against a raw MPI_Send/MPI_Recv ping-pong of 4 KiB in the same run.
 *
 * Fairness: every round starts after an MPI_Barrier and ends with one synchronisation of all
 * ranks (dagr_wait_all, or the MPI_Barrier after the flush), so both sides pay one
 * synchronisation per round; the runtime also pays for inserting 2K tasks and running the
 * K trivial producer tasks, which is part of what it costs to move a tile through it. The
 * data move in the same direction (rank 0's memory into buffers rank 1 allocated and touched)
 * in all three. GB/s are 1e9 bytes per second of the slowest rank's round time.
 *
 * Needs at least 2 ranks (ranks beyond 2 only take part in the collective calls). Prints one
 * JSON object per tile size on rank 0.
 *
 *   mpiexec.mpich -n 2 build/benchmarks/comm_bandwidth [--min BYTES] [--max BYTES]
 *       [--repeat R] [--round-bytes B] [--max-tiles K] [--threads T] [--arena BYTES]
 *       [--busy] [--hops N]
 */
#include <dagr/dagr.h>

#include <cblas.h>
#include <pthread.h>

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bench_opts {
    size_t min, max;
    int repeat;
    size_t round_bytes;
    int max_tiles;
    int threads;
    size_t arena;
    int busy, hops;
} bench_opts_t;

/* --busy: dgemm on a thread of its own until told to stop. */
static atomic_int busy_stop;

static void *busy_main(void *arg) {
    (void)arg;
    enum { N = 256 };
    double *a = calloc(3 * N * N, sizeof *a);
    if (!a) return NULL;
    for (int i = 0; i < 3 * N * N; i++)
        a[i] = 1.0 / (1 + i % 97);
    while (!atomic_load(&busy_stop)) {
        cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, N, N, N, 1.0, a, N, a + N * N, N,
                    0.0, a + 2 * N * N, N);
    }
    free(a);
    return NULL;
}

/* Rounds in which rank 1 saw a tile without the stamp of that round. */
static atomic_int stale_reads;

typedef struct stamp_args {
    uint64_t stamp;
} stamp_args_t;

static void put_stamp(unsigned char *p, size_t bytes, uint64_t stamp) {
    memcpy(p, &stamp, sizeof stamp);
    memcpy(p + bytes - sizeof stamp, &stamp, sizeof stamp);
}

static int has_stamp(const unsigned char *p, size_t bytes, uint64_t stamp) {
    uint64_t a, b;
    memcpy(&a, p, sizeof a);
    memcpy(&b, p + bytes - sizeof b, sizeof b);
    return a == stamp && b == stamp;
}

/* Runs on rank 0: makes a new version of the tile. */
static dagr_task_result_t touch_tile(const dagr_task_view_t *t) {
    const stamp_args_t *a = t->args;
    put_stamp(t->buf[0], t->bytes[0], a->stamp);
    return DAGR_TASK_DONE;
}

/* Runs on rank 1: reads the version just made. */
static dagr_task_result_t read_tile(const dagr_task_view_t *t) {
    const stamp_args_t *a = t->args;
    if (!has_stamp(t->buf[0], t->bytes[0], a->stamp)) atomic_fetch_add(&stale_reads, 1);
    return DAGR_TASK_DONE;
}

static const dagr_kernel_t touch_k = {.name = "bench_touch_tile", .cpu = touch_tile};
static const dagr_kernel_t read_k = {.name = "bench_read_tile", .cpu = read_tile};

/* Slowest rank's value of t. */
static double max_over_ranks(MPI_Comm comm, double t) {
    double m = 0.0;
    MPI_Allreduce(&t, &m, 1, MPI_DOUBLE, MPI_MAX, comm);
    return m;
}

/* One runtime round over the K tiles; returns seconds, or -1 on error (same on all ranks). */
static double runtime_round(dagr_ctx_t *ctx, dagr_data_t **tiles, int k, uint64_t stamp) {
    MPI_Comm comm = dagr_comm(ctx);
    dagr_status_t s = dagr_wait_all(ctx);
    MPI_Barrier(comm);
    double t0 = MPI_Wtime();
    dagr_task_opts_t on_rank1;
    dagr_task_opts_init(&on_rank1);
    on_rank1.rank = 1;
    stamp_args_t a = {.stamp = stamp};
    for (int i = 0; i < k && s == DAGR_OK; i++) {
        s = dagr_spawn(ctx, &touch_k, &a, sizeof a, 1, &(dagr_access_t){tiles[i], DAGR_RW}, NULL);
        if (s == DAGR_OK)
            s = dagr_spawn(ctx, &read_k, &a, sizeof a, 1, &(dagr_access_t){tiles[i], DAGR_READ},
                           &on_rank1);
    }
    dagr_status_t w = dagr_wait_all(ctx);
    double t = MPI_Wtime() - t0;
    s = s != DAGR_OK ? s : w;
    if (s != DAGR_OK) {
        fprintf(stderr, "comm_bandwidth: rank %d: %s (%s)\n", dagr_rank(ctx), dagr_status_str(s),
                dagr_last_error());
        t = 1e300;
    }
    t = max_over_ranks(comm, t);
    return t >= 1e300 ? -1.0 : t;
}

/* One raw round: rank 1 gets K tiles of `bytes` from rank 0 at displacements
 * base + i * bytes, then flushes; everyone meets at a barrier. The epoch is already open. */
static double raw_round(MPI_Comm comm, MPI_Win win, MPI_Aint base, unsigned char *dst, int k,
                        size_t bytes, int me) {
    MPI_Barrier(comm);
    double t0 = MPI_Wtime();
    if (me == 1) {
        for (int i = 0; i < k; i++)
            MPI_Get(dst + (size_t)i * bytes, (int)bytes, MPI_BYTE, 0,
                    MPI_Aint_add(base, (MPI_Aint)((size_t)i * bytes)), (int)bytes, MPI_BYTE, win);
        MPI_Win_flush(0, win);
    }
    MPI_Barrier(comm);
    return max_over_ranks(comm, MPI_Wtime() - t0);
}

/* One raw two-sided round: rank 0 sends the K tiles of src, rank 1 receives them into dst. */
static double sendrecv_round(MPI_Comm comm, const unsigned char *src, unsigned char *dst, int k,
                             size_t bytes, int me) {
    MPI_Request *req = calloc((size_t)k, sizeof *req);
    MPI_Barrier(comm);
    double t0 = MPI_Wtime();
    for (int i = 0; req && me <= 1 && i < k; i++) {
        if (me == 0)
            MPI_Isend(src + (size_t)i * bytes, (int)bytes, MPI_BYTE, 1, i, comm, &req[i]);
        else
            MPI_Irecv(dst + (size_t)i * bytes, (int)bytes, MPI_BYTE, 0, i, comm, &req[i]);
    }
    for (int i = 0; req && me <= 1 && i < k; i++)
        MPI_Wait(&req[i], MPI_STATUS_IGNORE);
    MPI_Barrier(comm);
    free(req);
    return max_over_ranks(comm, MPI_Wtime() - t0);
}

/* The latency chain: the task writes the stamp of its hop into the tile, after checking the
 * previous hop's. */
static dagr_task_result_t hop_tile(const dagr_task_view_t *t) {
    const stamp_args_t *a = t->args;
    if (a->stamp > 1 && !has_stamp(t->buf[0], t->bytes[0], a->stamp - 1))
        atomic_fetch_add(&stale_reads, 1);
    put_stamp(t->buf[0], t->bytes[0], a->stamp);
    return DAGR_TASK_DONE;
}
static const dagr_kernel_t hop_k = {.name = "bench_hop_tile", .cpu = hop_tile};

/* Microseconds per hop of the runtime chain and of a raw ping-pong; -1 on error. */
static void latency(dagr_ctx_t *ctx, int hops, int repeat, double *rt_us, double *raw_us) {
    enum { BYTES = 4096 };
    MPI_Comm comm = dagr_comm(ctx);
    int me = dagr_rank(ctx);
    dagr_data_t *tile = NULL;
    *rt_us = *raw_us = 1e300;
    if (dagr_data_create(ctx, BYTES, 0, &tile) != DAGR_OK) {
        *rt_us = *raw_us = -1;
        return;
    }
    unsigned char buf[BYTES];
    memset(buf, 0, sizeof buf);
    for (int r = -1; r < repeat; r++) {
        dagr_status_t s = dagr_wait_all(ctx);
        MPI_Barrier(comm);
        double t0 = MPI_Wtime();
        for (int i = 0; i < hops && s == DAGR_OK; i++) {
            dagr_task_opts_t o;
            dagr_task_opts_init(&o);
            o.rank = i % 2;
            stamp_args_t a = {.stamp = (uint64_t)i + 1};
            s = dagr_spawn(ctx, &hop_k, &a, sizeof a, 1, &(dagr_access_t){tile, DAGR_RW}, &o);
        }
        dagr_status_t w = dagr_wait_all(ctx);
        double t = max_over_ranks(comm, MPI_Wtime() - t0);
        if (s != DAGR_OK || w != DAGR_OK) {
            *rt_us = -1;
            break;
        }
        if (r >= 0 && t < *rt_us) *rt_us = t;

        MPI_Barrier(comm);
        t0 = MPI_Wtime();
        for (int i = 0; me <= 1 && i < hops; i++) {
            if (i % 2 == me)
                MPI_Send(buf, BYTES, MPI_BYTE, 1 - me, 0, comm);
            else
                MPI_Recv(buf, BYTES, MPI_BYTE, 1 - me, 0, comm, MPI_STATUS_IGNORE);
        }
        MPI_Barrier(comm);
        t = max_over_ranks(comm, MPI_Wtime() - t0);
        if (r >= 0 && t < *raw_us) *raw_us = t;
    }
    dagr_data_destroy(&tile);
    if (*rt_us > 0) *rt_us *= 1e6 / hops;
    *raw_us *= 1e6 / hops;
}

static int parse_size(const char *v, size_t *out) {
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    if (*end == 'K' || *end == 'k')
        x <<= 10, end++;
    else if (*end == 'M' || *end == 'm')
        x <<= 20, end++;
    else if (*end == 'G' || *end == 'g')
        x <<= 30, end++;
    if (*end || end == v) return -1;
    *out = (size_t)x;
    return 0;
}

static int parse_opts(int argc, char **argv, bench_opts_t *o) {
    *o = (bench_opts_t){.min = 4 << 10,
                        .max = 16 << 20,
                        .repeat = 5,
                        .round_bytes = 64 << 20,
                        .max_tiles = 256,
                        .hops = 2000};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--busy")) {
            o->busy = 1;
            continue;
        }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!v) return -1;
        if (!strcmp(argv[i], "--min"))
            bad = parse_size(v, &o->min);
        else if (!strcmp(argv[i], "--max"))
            bad = parse_size(v, &o->max);
        else if (!strcmp(argv[i], "--round-bytes"))
            bad = parse_size(v, &o->round_bytes);
        else if (!strcmp(argv[i], "--arena"))
            bad = parse_size(v, &o->arena);
        else if (!strcmp(argv[i], "--repeat"))
            o->repeat = atoi(v);
        else if (!strcmp(argv[i], "--max-tiles"))
            o->max_tiles = atoi(v);
        else if (!strcmp(argv[i], "--threads"))
            o->threads = atoi(v);
        else if (!strcmp(argv[i], "--hops"))
            o->hops = atoi(v);
        else
            return -1;
        if (bad) return -1;
        i++;
    }
    /* Tiles hold two 8-byte stamps; MPI_Get counts are ints. */
    if (o->min < 16 || o->max < o->min || o->max > (1u << 30) || o->repeat < 1 ||
        o->max_tiles < 2 || o->threads < 0 || o->hops < 2)
        return -1;
    return 0;
}

int main(int argc, char **argv) {
    bench_opts_t o;
    if (parse_opts(argc, argv, &o)) {
        fprintf(stderr,
                "usage: %s [--min BYTES] [--max BYTES] [--repeat R] [--round-bytes B] "
                "[--max-tiles K] [--threads T] [--arena BYTES] [--busy] [--hops N]   (sizes take "
                "K, M, G)\n",
                argv[0]);
        return 2;
    }
    dagr_config_t cfg;
    dagr_config_init(&cfg);
    cfg.threads = o.threads;
    cfg.comm_arena = o.arena;
    dagr_ctx_t *ctx = NULL;
    dagr_status_t s = dagr_init(&argc, &argv, &cfg, &ctx);
    if (s != DAGR_OK) {
        fprintf(stderr, "comm_bandwidth: dagr_init: %s (%s)\n", dagr_status_str(s),
                dagr_last_error());
        return 1;
    }
    const int me = dagr_rank(ctx), nranks = dagr_size(ctx);
    MPI_Comm comm = dagr_comm(ctx);
    int failures = 0;
    if (nranks < 2) {
        if (me == 0)
            fprintf(stderr, "comm_bandwidth: needs at least 2 ranks (mpiexec.mpich -n 2 ...)\n");
        dagr_finalize(&ctx);
        return 1;
    }

    pthread_t busy_thread;
    int busy_started = o.busy && pthread_create(&busy_thread, NULL, busy_main, NULL) == 0;
    if (o.busy && !busy_started) {
        fprintf(stderr, "comm_bandwidth: cannot start the --busy thread\n");
        failures++;
    }
    double lat_rt, lat_raw;
    latency(ctx, o.hops, o.repeat, &lat_rt, &lat_raw);
    if (lat_rt < 0) failures++;
    if (me == 0 && lat_rt >= 0) {
        printf("{\"bench\":\"comm_bandwidth\",\"case\":\"latency\",\"ranks\":%d,\"threads\":%d,"
               "\"busy\":%d,\"tile_bytes\":4096,\"hops\":%d,\"runtime_us_per_hop\":%.2f,"
               "\"raw_sendrecv_us_per_hop\":%.2f,\"ratio_raw_runtime\":%.3f}\n",
               nranks, dagr_threads(ctx), o.busy, o.hops, lat_rt, lat_raw, lat_raw / lat_rt);
        fflush(stdout);
    }

    uint64_t stamp = 1;
    for (size_t bytes = o.min; bytes <= o.max; bytes *= 4) {
        size_t want = o.round_bytes / bytes;
        int k = want < 2 ? 2 : want > (size_t)o.max_tiles ? o.max_tiles : (int)want;
        size_t round = (size_t)k * bytes;

        /* Runtime side: K handles on rank 0. */
        dagr_data_t **tiles = calloc((size_t)k, sizeof *tiles);
        int ok = tiles != NULL, all_ok = 0;
        for (int i = 0; i < k && ok; i++)
            ok = dagr_data_create(ctx, bytes, 0, &tiles[i]) == DAGR_OK;

        /* Raw side: the same K tiles in two windows on rank 0, and rank 1's destination. */
        unsigned char *dst = NULL, *dyn_buf = NULL, *alloc_buf = NULL;
        MPI_Win win_alloc = MPI_WIN_NULL, win_dyn = MPI_WIN_NULL;
        MPI_Aint dyn_base = 0;
        if (me == 1 && ok && (ok = posix_memalign((void **)&dst, 64, round) == 0))
            memset(dst, 0, round);
        if (me == 0 && ok && (ok = posix_memalign((void **)&dyn_buf, 64, round) == 0))
            memset(dyn_buf, 1, round);
        MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_LAND, comm);
        if (!all_ok) {
            if (me == 0)
                fprintf(stderr, "comm_bandwidth: setting up %zu x %zu bytes failed (%s)\n",
                        (size_t)k, bytes, dagr_last_error());
            failures++;
            free(dst);
            free(dyn_buf);
            for (int i = 0; tiles && i < k; i++)
                dagr_data_destroy(&tiles[i]);
            free(tiles);
            break;
        }
        MPI_Win_allocate(me == 0 ? (MPI_Aint)round : 0, 1, MPI_INFO_NULL, comm, &alloc_buf,
                         &win_alloc);
        if (me == 0) memset(alloc_buf, 1, round);
        MPI_Win_create_dynamic(MPI_INFO_NULL, comm, &win_dyn);
        if (me == 0) {
            MPI_Win_attach(win_dyn, dyn_buf, (MPI_Aint)round);
            MPI_Get_address(dyn_buf, &dyn_base);
        }
        MPI_Bcast(&dyn_base, 1, MPI_AINT, 0, comm);
        MPI_Win_lock_all(MPI_MODE_NOCHECK, win_alloc);
        MPI_Win_lock_all(MPI_MODE_NOCHECK, win_dyn);

        /* Best of `repeat` rounds each, after one untimed round each (first-touch, window
         * and arena set-up). */
        double best_rt = 1e300, best_alloc = 1e300, best_dyn = 1e300, best_sr = 1e300;
        int stale_before = atomic_load(&stale_reads), err = 0;
        for (int r = -1; r < o.repeat && !err; r++) {
            double t = runtime_round(ctx, tiles, k, stamp++);
            double ta = raw_round(comm, win_alloc, 0, dst, k, bytes, me);
            double td = raw_round(comm, win_dyn, dyn_base, dst, k, bytes, me);
            double tsr = sendrecv_round(comm, dyn_buf, dst, k, bytes, me);
            if (t < 0)
                err = 1;
            else if (r >= 0) {
                best_rt = t < best_rt ? t : best_rt;
                best_sr = tsr < best_sr ? tsr : best_sr;
                best_alloc = ta < best_alloc ? ta : best_alloc;
                best_dyn = td < best_dyn ? td : best_dyn;
            }
        }
        int stale = atomic_load(&stale_reads) - stale_before, stale_all = 0;
        MPI_Allreduce(&stale, &stale_all, 1, MPI_INT, MPI_SUM, comm);

        MPI_Win_unlock_all(win_dyn);
        MPI_Win_unlock_all(win_alloc);
        if (me == 0) MPI_Win_detach(win_dyn, dyn_buf);
        MPI_Win_free(&win_dyn);
        MPI_Win_free(&win_alloc);
        free(dst);
        free(dyn_buf);
        for (int i = 0; i < k; i++)
            dagr_data_destroy(&tiles[i]);
        free(tiles);
        if (dagr_wait_all(ctx) != DAGR_OK) err = 1;

        if (err || stale_all) failures++;
        if (me == 0 && !err) {
            double gb = (double)round / 1e9;
            double best_raw = best_alloc < best_sr ? best_alloc : best_sr;
            printf("{\"bench\":\"comm_bandwidth\",\"case\":\"rank0_to_rank1\",\"ranks\":%d,"
                   "\"threads\":%d,\"busy\":%d,\"tile_bytes\":%zu,\"tiles\":%d,\"repeat\":%d,"
                   "\"runtime_s\":%.6f,\"runtime_gbps\":%.3f,\"raw_alloc_s\":%.6f,"
                   "\"raw_alloc_gbps\":%.3f,\"raw_dynamic_s\":%.6f,\"raw_dynamic_gbps\":%.3f,"
                   "\"raw_sendrecv_s\":%.6f,\"raw_sendrecv_gbps\":%.3f,"
                   "\"ratio_runtime_raw_alloc\":%.3f,\"ratio_runtime_best_raw\":%.3f,"
                   "\"check\":\"%s\"}\n",
                   nranks, dagr_threads(ctx), o.busy, bytes, k, o.repeat, best_rt, gb / best_rt,
                   best_alloc, gb / best_alloc, best_dyn, gb / best_dyn, best_sr, gb / best_sr,
                   best_alloc / best_rt, best_raw / best_rt, stale_all ? "stale data read" : "ok");
            fflush(stdout);
        }
        if (err) break;
    }

    if (busy_started) {
        atomic_store(&busy_stop, 1);
        pthread_join(busy_thread, NULL);
    }
    int stale_hops = atomic_load(&stale_reads) > 0;
    if (stale_hops) failures++;
    s = dagr_finalize(&ctx);
    if (s != DAGR_OK) {
        fprintf(stderr, "comm_bandwidth: dagr_finalize: %s (%s)\n", dagr_status_str(s),
                dagr_last_error());
        failures++;
    }
    return failures ? 1 : 0;
}
