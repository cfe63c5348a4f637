/* ckpt_bench: what checkpoints cost an iterative program, synchronous against asynchronous.
 *
 * The program: Jacobi-like sweeps of a 5-point stencil (dagr_darray_stencil, radius 1) over
 * an n x n double array, ping-pong between two arrays, with the sweep counter in a 1 x 1
 * array (the state a real solver checkpoints: 16 n^2 bytes). One run times, in rounds that
 * alternate the three forms (the machine is shared and noisy):
 *
 *   none   --sweeps sweeps and a final dagr_wait_all;
 *   sync   the same with dagr_checkpoint after every --every sweeps but the last (the
 *          pipeline drains, the file is written, flushed to disk and renamed, then the sweeps
 *          go on);
 *   async  the same with dagr_checkpoint_async instead (and dagr_stop_requested after every
 *          sweep, as a program that can be stopped asks): the sweeps go on while the file
 *          writes, and dagr's thread flushes and renames it. No checkpoint comes after the
 *          last sweep: a final one has nothing to overlap with in either form (it is the
 *          program's output, not its overhead).
 *   raw    none's sweeps, and at each checkpoint step a thread of the benchmark's own (no dagr
 *          in it) writes as many bytes as the rank's share of the state to a file of its own,
 *          made anew (O_TRUNC: its blocks are freed and allocated again, as a new checkpoint
 *          file's are while the previous one is kept until the rename), with O_DIRECT
 *          (buffered where refused) and an fsync, the next one waiting for it as an
 *          asynchronous checkpoint waits for the previous: what writing those bytes as a new
 *          file costs the computation at all, the floor under the asynchronous form.
 *          On a virtual machine whose host does the guest's I/O on the same cores, it is far
 *          from zero.
 *
 * Each timed span is from an MPI_Barrier to the end of the final wait on every rank (the
 * slowest rank's). overhead = time - none's time of the same round; the figure the issue asks
 * for is async_over_sync = async overhead / sync overhead (target <= 1/3); raw_over_sync is
 * the same ratio for the raw form (the lowest async_over_sync any checkpoint could reach on
 * this machine) and async_over_raw what dagr's checkpoint costs beyond the bare writes.
 * Checkpoints go to --dir (default $TMPDIR or /tmp). Check: every form ends with the same
 * array, bitwise.
 *
 * CPU time too: the processes' user + system seconds over the same span, summed over the
 * ranks (getrusage), and its overhead over none's in the same round (cpu_async_over_sync);
 * by form, the medians of the CPU seconds and of the page faults (every rank's) of a run.
 * Where every core computes, the CPU a checkpoint takes is taken from the computation; and on
 * a shared machine it varies much less from run to run than the wall time does.
 *
 *   mpiexec.mpich -n 2 build/benchmarks/ckpt_bench [--n 2048] [--tile 256] [--sweeps 60]
 *                                                  [--every 10] [--rounds 3] [--dir D]
 *                                                  [--threads T] [--only FORM] [--backlog B]
 *
 * --only FORM runs that form alone (to profile it: `perf stat` or `perf record` of the run);
 * no ratios then.
 *
 * Two things to hold equal between the forms (RESULTS.md, 2026-12-04):
 *   - the sweeps after the last checkpoint: give --sweeps = --every x (checkpoints + 1)
 *     (e.g. 120 and 30), so that the last asynchronous checkpoint has as many sweeps to
 *     overlap with as the others, rather than ending inside the final wait;
 *   - how far the main thread runs ahead: --backlog B sets dagr_config_t.max_pending for all
 *     three forms. With the default backlog the main thread inserts the whole run at once, and
 *     a graph of 100 sweeps ran 10 % slower here than one held to 1000 tasks: a synchronous
 *     checkpoint's wait (and an asynchronous one's, which waits for the one before) then
 *     makes the run faster by holding the graph back, and that gain hides part of what the
 *     checkpoint costs. --backlog 2000 (about 15 sweeps at 2 ranks) takes it out.
 *
 * Prints one JSON object per form on rank 0 (best and median of the rounds), then one with
 * the ratios. */
#include <dagr/dagr.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

typedef struct opts {
    int64_t n, tile;
    int sweeps, every, rounds, threads, only, backlog;
    const char *dir;
} opts_t;

static void sweep_tile(const dagr_tile_t *in, dagr_tile_t *out, void *user) {
    (void)user;
    const double *u = in->data;
    double *v = out->data;
    for (int64_t c = 0; c < in->cols; c++)
        for (int64_t r = 0; r < in->rows; r++) {
            int64_t k = r + c * in->ld;
            v[r + c * out->ld] =
                0.25 * (u[k - 1] + u[k + 1] + u[k - in->ld] + u[k + in->ld]) + 1e-3;
        }
}

static int check(dagr_status_t s, const char *what) {
    if (s == DAGR_OK) return 0;
    fprintf(stderr, "ckpt_bench: %s: %s (%s)\n", what, dagr_status_str(s), dagr_last_error());
    return 1;
}

enum { NONE, SYNC, ASYNC, RAW, FORMS };
static const char *const FORM[FORMS] = {"none", "sync", "async", "raw"};

/* The raw form's writer: bytes of buf to the file at path, made anew, O_DIRECT where the file
 * system takes it, then fsync. */
typedef struct raw_write {
    const char *path;
    const char *buf;
    size_t bytes;
    int err; /* errno of a failure, 0 */
    pthread_t thread;
    bool running;
} raw_write_t;

static void *raw_writer(void *arg) {
    raw_write_t *w = arg;
    int fd = open(w->path, O_CREAT | O_TRUNC | O_WRONLY | O_DIRECT, 0600);
    if (fd < 0) fd = open(w->path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    w->err = fd < 0 ? errno : 0;
    /* Chunks of 8 MiB, a multiple of the file system's block; the last one rounded up. */
    for (size_t off = 0; fd >= 0 && !w->err && off < w->bytes;) {
        size_t n = w->bytes - off < ((size_t)8 << 20) ? w->bytes - off : (size_t)8 << 20;
        ssize_t m = pwrite(fd, w->buf + off, (n + 4095) / 4096 * 4096, (off_t)off);
        if (m < 0 && errno == EINTR) continue;
        if (m <= 0) w->err = m < 0 ? errno : EIO;
        off += m > 0 ? (size_t)m : 0;
    }
    if (fd >= 0 && fsync(fd) != 0 && !w->err) w->err = errno;
    if (fd >= 0) close(fd);
    return NULL;
}

/* Waits for the raw form's write in flight, if any; -1 when it failed. */
static int raw_wait(raw_write_t *w) {
    if (!w->running) return 0;
    pthread_join(w->thread, NULL);
    w->running = false;
    if (w->err) fprintf(stderr, "ckpt_bench: raw write of %s: %s\n", w->path, strerror(w->err));
    return w->err ? -1 : 0;
}

/* This process's CPU seconds so far, every thread's, user and system; *faults: its page
 * faults so far (minor: memory touched for the first time). */
static double cpu_seconds(long *faults) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *faults = ru.ru_minflt;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           1e-6 * (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* One run of the program in form f from the initial state, in arrays made once for every
 * run (as a long program keeps its arrays: making them anew each run moved the pool's blocks,
 * and only the asynchronous form's staged copies then faulted their pages in again); the
 * slowest rank's seconds, or a negative number on error. *sum: a checksum of the final array;
 * *cpu: the CPU seconds of every rank over the same span. */
static double run(dagr_ctx_t *ctx, const opts_t *o, int f, const char *path, dagr_darray_t *U[2],
                  dagr_darray_t *S, raw_write_t *raw, double *sum, double *cpu, double *faults) {
    double t = -1;
    if (check(dagr_darray_random(U[0], 7), "random") || check(dagr_darray_zeros(U[1]), "zeros") ||
        check(dagr_darray_zeros(S), "zeros") || check(dagr_wait_all(ctx), "wait"))
        return -1;
    MPI_Barrier(dagr_comm(ctx));
    long f0, f1;
    double t0 = MPI_Wtime(), c0 = cpu_seconds(&f0);
    int cur = 0;
    for (int s = 1; s <= o->sweeps; s++) {
        if (check(dagr_darray_stencil(U[cur], 1, DAGR_BOUNDARY_ZERO, sweep_tile, NULL, U[1 - cur]),
                  "stencil") ||
            check(dagr_darray_shift(S, 1.0), "shift"))
            return -1;
        cur = 1 - cur;
        if (f == ASYNC) (void)dagr_stop_requested(ctx);
        bool due = s % o->every == 0 && s < o->sweeps; /* none at the end: see the top */
        if (due && f == SYNC && check(dagr_checkpoint(ctx, path), "checkpoint")) return -1;
        if (due && f == ASYNC && check(dagr_checkpoint_async(ctx, path), "checkpoint_async"))
            return -1;
        if (due && f == RAW) {
            if (raw_wait(raw) || pthread_create(&raw->thread, NULL, raw_writer, raw)) return -1;
            raw->running = true;
        }
    }
    if (check(dagr_wait_all(ctx), "wait") || raw_wait(raw)) return -1;
    double mine = MPI_Wtime() - t0, cmine = cpu_seconds(&f1) - c0, fmine = (double)(f1 - f0);
    MPI_Allreduce(&mine, &t, 1, MPI_DOUBLE, MPI_MAX, dagr_comm(ctx));
    MPI_Allreduce(&cmine, cpu, 1, MPI_DOUBLE, MPI_SUM, dagr_comm(ctx));
    MPI_Allreduce(&fmine, faults, 1, MPI_DOUBLE, MPI_SUM, dagr_comm(ctx));
    if (check(dagr_darray_sum(U[cur], sum), "sum")) t = -1;
    return t;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    const char *tmp = getenv("TMPDIR");
    opts_t o = {.n = 2048,
                .tile = 256,
                .sweeps = 60,
                .every = 10,
                .rounds = 3,
                .only = -1,
                .dir = tmp && *tmp ? tmp : "/tmp"};
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v && !strcmp(argv[i], "--n"))
            o.n = atoll(v), i++;
        else if (v && !strcmp(argv[i], "--tile"))
            o.tile = atoll(v), i++;
        else if (v && !strcmp(argv[i], "--sweeps"))
            o.sweeps = atoi(v), i++;
        else if (v && !strcmp(argv[i], "--every"))
            o.every = atoi(v), i++;
        else if (v && !strcmp(argv[i], "--rounds"))
            o.rounds = atoi(v), i++;
        else if (v && !strcmp(argv[i], "--dir"))
            o.dir = v, i++;
        else if (v && !strcmp(argv[i], "--threads"))
            o.threads = atoi(v), i++;
        else if (v && !strcmp(argv[i], "--backlog"))
            o.backlog = atoi(v), i++;
        else if (v && !strcmp(argv[i], "--only")) {
            for (int f = 0; f < FORMS; f++)
                if (!strcmp(v, FORM[f])) o.only = f;
            if (o.only < 0) {
                fprintf(stderr, "ckpt_bench: --only takes none, sync, async or raw\n");
                return 2;
            }
            i++;
        } else {
            fprintf(stderr,
                    "usage: ckpt_bench [--n N] [--tile T] [--sweeps S] [--every K] [--rounds R] "
                    "[--dir D] [--threads T] [--only FORM] [--backlog B]\n");
            return 2;
        }
    }
    if (o.n < 1 || o.tile < 1 || o.sweeps < 1 || o.every < 1 || o.rounds < 1 || o.threads < 0 ||
        o.backlog < 0) {
        fprintf(stderr, "ckpt_bench: sizes and counts must be positive\n");
        return 2;
    }
    dagr_config_t cfg;
    dagr_config_init(&cfg);
    cfg.threads = o.threads;
    cfg.max_pending = (size_t)o.backlog; /* 0: the default */
    dagr_ctx_t *ctx = NULL;
    if (check(dagr_init(&argc, &argv, &cfg, &ctx), "dagr_init")) return 1;
    int rank = dagr_rank(ctx);
    char path[4096];
    snprintf(path, sizeof path, "%s/ckpt_bench.%d.ckpt", o.dir, (int)getpid());
    MPI_Bcast(path, (int)sizeof path, MPI_CHAR, 0, dagr_comm(ctx));

    /* by form and round: seconds, CPU seconds, page faults */
    double *t[FORMS], *ct[FORMS], *ft[FORMS], sums[FORMS] = {0};
    for (int f = 0; f < FORMS; f++) {
        t[f] = calloc((size_t)o.rounds, sizeof **t);
        ct[f] = calloc((size_t)o.rounds, sizeof **ct);
        ft[f] = calloc((size_t)o.rounds, sizeof **ft);
    }
    /* over[k], cover[k]: the wall and CPU overheads of sync (k = 0), async (1) and raw (2),
     * by round */
    double *over[3], *cover[3];
    for (int k = 0; k < 3; k++) {
        over[k] = calloc((size_t)o.rounds, sizeof(double));
        cover[k] = calloc((size_t)o.rounds, sizeof(double));
    }
    int rc = 0;
    double warm = 0, wcpu, wfaults;
    dagr_grid_t g = dagr_grid_2d(0, 0);
    dagr_darray_t *U[2] = {NULL, NULL}, *S = NULL;
    for (int k = 0; k < 2; k++)
        if (check(dagr_darray_create(ctx, DAGR_DOUBLE, o.n, o.n, o.tile, o.tile, g, &U[k]),
                  "create"))
            rc = 1;
    if (check(dagr_darray_create(ctx, DAGR_DOUBLE, 1, 1, 1, 1, g, &S), "create")) rc = 1;
    /* The raw form's bytes: this rank's share of the state, in memory touched once here. */
    char rawpath[4200];
    snprintf(rawpath, sizeof rawpath, "%s.raw.%d", path, rank);
    size_t rawbytes = (size_t)(16.0 * (double)o.n * (double)o.n / dagr_size(ctx));
    raw_write_t raw = {.path = rawpath, .bytes = rawbytes};
    char *rawbuf = aligned_alloc(4096, (rawbytes + 4095) / 4096 * 4096);
    if (!rawbuf) {
        fprintf(stderr, "ckpt_bench: cannot allocate %zu bytes\n", rawbytes);
        rc = 1;
    } else {
        memset(rawbuf, 0x5a, (rawbytes + 4095) / 4096 * 4096);
        raw.buf = rawbuf;
    }
    if (!rc && run(ctx, &o, NONE, path, U, S, &raw, &warm, &wcpu, &wfaults) < 0)
        rc = 1; /* warm-up */
    for (int r = 0; r < o.rounds && !rc; r++) {
        for (int f = 0; f < FORMS && !rc; f++) {
            if (o.only >= 0 && f != o.only) continue;
            t[f][r] = run(ctx, &o, f, path, U, S, &raw, &sums[f], &ct[f][r], &ft[f][r]);
            if (t[f][r] < 0) rc = 1;
            if (rank == 0) unlink(path);
            unlink(rawpath);
        }
        for (int k = 0; k < 3; k++) {
            over[k][r] = t[SYNC + k][r] - t[NONE][r];
            cover[k][r] = ct[SYNC + k][r] - ct[NONE][r];
        }
    }
    if (!rc && o.only < 0 &&
        (sums[SYNC] != sums[NONE] || sums[ASYNC] != sums[NONE] || sums[RAW] != sums[NONE])) {
        if (rank == 0)
            fprintf(stderr, "ckpt_bench: the forms end differently: %.17g %.17g %.17g %.17g\n",
                    sums[NONE], sums[SYNC], sums[ASYNC], sums[RAW]);
        rc = 1;
    }
    if (!rc && rank == 0) {
        double bytes = 16.0 * (double)o.n * (double)o.n + 8.0;
        int ckpts = (o.sweeps - 1) / o.every;
        double med[3], cmed[3];
        for (int f = 0; f < FORMS; f++) {
            if (o.only >= 0 && f != o.only) continue;
            qsort(t[f], (size_t)o.rounds, sizeof **t, cmp);
            qsort(ct[f], (size_t)o.rounds, sizeof **ct, cmp);
            qsort(ft[f], (size_t)o.rounds, sizeof **ft, cmp);
            printf("{\"bench\": \"ckpt\", \"form\": \"%s\", \"ranks\": %d, \"n\": %lld, \"tile\": "
                   "%lld, \"sweeps\": %d, \"checkpoints\": %d, \"state_mib\": %.1f, "
                   "\"backlog\": %d, \"best_s\": %.3f, \"median_s\": %.3f, \"cpu_median_s\": %.3f, "
                   "\"faults_median\": %.0f}\n",
                   FORM[f], dagr_size(ctx), (long long)o.n, (long long)o.tile, o.sweeps,
                   f == NONE ? 0 : ckpts, bytes / (1 << 20), o.backlog, t[f][0], t[f][o.rounds / 2],
                   ct[f][o.rounds / 2], ft[f][o.rounds / 2]);
        }
        for (int k = 0; k < 3; k++) {
            qsort(over[k], (size_t)o.rounds, sizeof(double), cmp);
            qsort(cover[k], (size_t)o.rounds, sizeof(double), cmp);
            med[k] = over[k][o.rounds / 2];
            cmed[k] = cover[k][o.rounds / 2];
        }
        if (o.only < 0)
            printf("{\"bench\": \"ckpt\", \"sync_overhead_s\": %.3f, \"async_overhead_s\": %.3f, "
                   "\"async_over_sync\": %.3f, \"per_checkpoint_sync_s\": %.3f, "
                   "\"per_checkpoint_async_s\": %.3f, \"target\": 0.333, "
                   "\"cpu_sync_overhead_s\": %.3f, \"cpu_async_overhead_s\": %.3f, "
                   "\"cpu_async_over_sync\": %.3f, \"raw_overhead_s\": %.3f, "
                   "\"raw_over_sync\": %.3f, \"async_over_raw\": %.3f}\n",
                   med[0], med[1], med[0] > 0 ? med[1] / med[0] : 0.0, med[0] / ckpts,
                   med[1] / ckpts, cmed[0], cmed[1], cmed[0] > 0 ? cmed[1] / cmed[0] : 0.0, med[2],
                   med[0] > 0 ? med[2] / med[0] : 0.0, med[2] > 0 ? med[1] / med[2] : 0.0);
    }
    free(rawbuf);
    for (int k = 0; k < 3; k++) {
        free(cover[k]);
        free(over[k]);
    }
    for (int f = 0; f < FORMS; f++) {
        free(ft[f]);
        free(ct[f]);
        free(t[f]);
    }
    dagr_darray_destroy(&S);
    dagr_darray_destroy(&U[1]);
    dagr_darray_destroy(&U[0]);
    if (check(dagr_finalize(&ctx), "dagr_finalize")) rc = 1;
    return rc;
}
