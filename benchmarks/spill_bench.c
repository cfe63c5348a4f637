/* spill_bench: out of core. The same dagr computation in one run without a memory limit and
 * under limits that are fractions of each rank's data, with POSIX I/O on the spill directory
 * as the disk's reference.
 *
 *   mpiexec.mpich -n 1 build/benchmarks/spill_bench --op potrf --n 8192 --nb 512 --threads 2 \
 *       --fractions 0.5,0.25 --repeat 3 [--dir /tmp]
 *
 * Ops: potrf (lower Cholesky of an n x n SPD double array) and gemm (C = A B + C, all n x n).
 * Each round runs every case, each in its own dagr_init .. dagr_finalize with
 * cfg.memory_limit = fraction x the rank's share of the arrays (0: no limit); the order of
 * the cases is reversed every other round, since the machine's speed drifts. A case's time
 * runs from a barrier after its inputs exist to the end of the wait, on the slowest rank; the
 * best over the rounds is reported. The inputs are made under the limit too, so the run
 * starts with part of them on disk.
 *
 * The reference ("posix"): rank by rank, the same number of bytes as the rank's data written
 * with pwrite in tile-sized pieces to an unlinked file in the spill directory and read back
 * with pread, no fsync (the spill file is never synced either): what the file system gives.
 *
 * One JSON object per case on rank 0:
 *   {"bench":"spill_bench","case":"spill","op","n","nb","ranks","threads","repeat",
 *    "check" ("ok": the result has the same bits as in memory),"fraction","limit_mb","seconds",
 *    "gflops","vs_in_memory" (in-memory time / this time),"spilled_mb","read_mb",
 *    "io_seconds","io_gbs" ((spilled + read) / io_seconds),"peak_mb","over_limit"}
 * (the spill figures are rank 0's, and the timed operation's, not the inputs'; peak_mb is the
 * whole case's), then {"bench":"spill_bench","case":"posix","mb","write_gbs","read_gbs"}. */
#include <dagr/dagr.h>

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct {
    const char *op, *dir;
    int64_t n, nb;
    int threads, repeat, nfrac;
    double frac[16];
} O = {"potrf", NULL, 4096, 256, 0, 3, 2, {0.5, 0.25}};

static int me, nranks;

static void die(const char *what, dagr_status_t s) {
    fprintf(stderr, "spill_bench: %s: %s: %s\n", what, dagr_status_str(s), dagr_last_error());
    MPI_Abort(MPI_COMM_WORLD, 1);
}
#define TRY(call)                                                                                  \
    do {                                                                                           \
        dagr_status_t s_ = (call);                                                                 \
        if (s_ != DAGR_OK) die(#call, s_);                                                         \
    } while (0)

static void dominant(const dagr_tile_t *in, dagr_tile_t *out, void *user) {
    double n = *(const double *)user;
    for (int64_t c = 0; c < in->cols; c++)
        for (int64_t r = 0; r < in->rows; r++) {
            double x = ((const double *)in->data)[r + c * in->ld];
            ((double *)out->data)[r + c * out->ld] = x + (in->i0 + r == in->j0 + c ? n : 0);
        }
}

static int narrays(void) {
    return !strcmp(O.op, "gemm") ? 3 : 1;
}

/* The rank's share of the arrays' bytes (every rank alike: the tiles are spread evenly
 * enough for a limit; the largest share is taken). */
static size_t share_bytes(dagr_darray_t *A) {
    size_t mine = 0;
    int64_t nt = (O.n + O.nb - 1) / O.nb;
    for (int64_t j = 0; j < nt; j++)
        for (int64_t i = 0; i < nt; i++) {
            dagr_data_t *t = dagr_darray_tile(A, i, j);
            if (dagr_data_owner(t) == me) mine += dagr_data_bytes(t);
        }
    size_t most = 0;
    MPI_Allreduce(&mine, &most, 1, MPI_UNSIGNED_LONG, MPI_MAX, MPI_COMM_WORLD);
    return most * (size_t)narrays();
}

typedef struct result {
    double seconds;
    dagr_memory_stats_t m;
    uint64_t hash; /* of the result, on rank 0: every case must compute the same bits */
    int threads;
} result_t;

static uint64_t hash_of(const dagr_darray_t *X) {
    size_t n = (size_t)(O.n * O.n);
    double *x = me == 0 ? malloc(n * sizeof *x) : NULL;
    if (me == 0 && !x) die("malloc for the check", DAGR_ERR_NOMEM);
    TRY(dagr_darray_gather(X, x, O.n, 0));
    uint64_t h = 0x9e3779b97f4a7c15ull;
    for (size_t k = 0; me == 0 && k < n; k++) {
        uint64_t w;
        memcpy(&w, &x[k], sizeof w);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
    }
    free(x);
    return h;
}

/* One case: a fresh context with the limit, inputs, the timed op. */
static result_t run_case(double fraction, size_t *data_bytes) {
    dagr_config_t cfg;
    dagr_config_init(&cfg);
    cfg.threads = O.threads;
    cfg.spill_dir = O.dir;
    /* The share is known only once an array exists; it does not depend on the limit. */
    cfg.memory_limit = fraction > 0 && *data_bytes ? (size_t)(fraction * (double)*data_bytes) : 0;
    dagr_ctx_t *ctx = NULL;
    TRY(dagr_init(NULL, NULL, &cfg, &ctx));
    dagr_darray_t *A = NULL, *B = NULL, *C = NULL;
    dagr_grid_t g = dagr_grid_2d(0, 0);
    TRY(dagr_darray_create(ctx, DAGR_DOUBLE, O.n, O.n, O.nb, O.nb, g, &A));
    if (!*data_bytes) *data_bytes = share_bytes(A);
    TRY(dagr_darray_random(A, 1));
    if (!strcmp(O.op, "potrf")) {
        double dn = (double)O.n;
        TRY(dagr_darray_map(A, A, dominant, &dn));
    } else {
        TRY(dagr_darray_create(ctx, DAGR_DOUBLE, O.n, O.n, O.nb, O.nb, g, &B));
        TRY(dagr_darray_create(ctx, DAGR_DOUBLE, O.n, O.n, O.nb, O.nb, g, &C));
        TRY(dagr_darray_random(B, 2));
        TRY(dagr_darray_random(C, 3));
    }
    TRY(dagr_wait_all(ctx));
    dagr_memory_stats_t m0;
    TRY(dagr_memory_stats(ctx, &m0));
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    if (!strcmp(O.op, "potrf"))
        TRY(dagr_potrf(DAGR_LOWER, A));
    else
        TRY(dagr_gemm(DAGR_NO_TRANS, DAGR_NO_TRANS, 1.0, A, B, 1.0, C));
    TRY(dagr_wait_all(ctx));
    double t = MPI_Wtime() - t0, tmax = 0;
    MPI_Allreduce(&t, &tmax, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    result_t r = {tmax, {0}, 0, dagr_threads(ctx)};
    TRY(dagr_memory_stats(ctx, &r.m));
    /* The operation's own I/O: making the inputs under the limit spilled too. */
    r.m.spill_writes -= m0.spill_writes;
    r.m.spill_bytes -= m0.spill_bytes;
    r.m.reads -= m0.reads;
    r.m.read_bytes -= m0.read_bytes;
    r.m.io_seconds -= m0.io_seconds;
    r.m.over_limit -= m0.over_limit;
    r.hash = hash_of(C ? C : A);
    dagr_darray_destroy(&A);
    dagr_darray_destroy(&B);
    dagr_darray_destroy(&C);
    TRY(dagr_finalize(&ctx));
    return r;
}

/* pwrite then pread of `bytes` in tile-sized pieces on an unlinked file in the directory. */
static void posix_ref(size_t bytes, double *wgbs, double *rgbs) {
    const char *dir = O.dir ? O.dir : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char path[1024];
    snprintf(path, sizeof path, "%s/spill_bench.%d.XXXXXX", dir, me);
    int fd = mkstemp(path);
    if (fd < 0) die("mkstemp in the spill directory", DAGR_ERR_IO);
    unlink(path);
    size_t piece = (size_t)(O.nb * O.nb) * sizeof(double);
    char *buf = aligned_alloc(4096, (piece + 4095) / 4096 * 4096);
    memset(buf, 1, piece);
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    for (size_t off = 0; off < bytes; off += piece)
        if (pwrite(fd, buf, piece, (off_t)off) != (ssize_t)piece) die("pwrite", DAGR_ERR_IO);
    double tw = MPI_Wtime() - t0, tr;
    MPI_Allreduce(MPI_IN_PLACE, &tw, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    MPI_Barrier(MPI_COMM_WORLD);
    t0 = MPI_Wtime();
    for (size_t off = 0; off < bytes; off += piece)
        if (pread(fd, buf, piece, (off_t)off) != (ssize_t)piece) die("pread", DAGR_ERR_IO);
    tr = MPI_Wtime() - t0;
    MPI_Allreduce(MPI_IN_PLACE, &tr, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    close(fd);
    free(buf);
    *wgbs = (double)bytes / tw * 1e-9;
    *rgbs = (double)bytes / tr * 1e-9;
}

static double flops(void) {
    double n = (double)O.n;
    return !strcmp(O.op, "gemm") ? 2 * n * n * n : n * n * n / 3;
}

int main(int argc, char **argv) {
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &me);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) goto usage;
        if (!strcmp(a, "--op"))
            O.op = v;
        else if (!strcmp(a, "--n"))
            O.n = atoll(v);
        else if (!strcmp(a, "--nb"))
            O.nb = atoll(v);
        else if (!strcmp(a, "--threads"))
            O.threads = atoi(v);
        else if (!strcmp(a, "--repeat"))
            O.repeat = atoi(v);
        else if (!strcmp(a, "--dir"))
            O.dir = v;
        else if (!strcmp(a, "--fractions")) {
            O.nfrac = 0;
            for (char *s = (char *)v, *e; *s && O.nfrac < 16; s = *e ? e + 1 : e) {
                O.frac[O.nfrac++] = strtod(s, &e);
                if (e == s) goto usage;
            }
        } else
            goto usage;
        i++;
    }
    if ((strcmp(O.op, "potrf") && strcmp(O.op, "gemm")) || O.n < 1 || O.nb < 1 || O.repeat < 1)
        goto usage;

    int ncase = O.nfrac + 1;
    result_t best[17];
    for (int c = 0; c < ncase; c++)
        best[c].seconds = INFINITY;
    size_t data = 0;
    for (int round = 0; round < O.repeat; round++)
        for (int k = 0; k < ncase; k++) {
            int c = round % 2 ? ncase - 1 - k : k;
            result_t r = run_case(c ? O.frac[c - 1] : 0, &data);
            if (r.seconds < best[c].seconds) best[c] = r;
        }
    double wg, rg;
    posix_ref(data, &wg, &rg);
    if (me == 0) {
        for (int c = 0; c < ncase; c++) {
            const dagr_memory_stats_t *m = &best[c].m;
            double io = (double)(m->spill_bytes + m->read_bytes);
            printf("{\"bench\":\"spill_bench\",\"case\":\"spill\",\"op\":\"%s\",\"n\":%lld,"
                   "\"nb\":%lld,\"ranks\":%d,\"threads\":%d,\"repeat\":%d,\"check\":\"%s\","
                   "\"fraction\":%.3f,\"limit_mb\":%.1f,\"seconds\":%.4f,"
                   "\"gflops\":%.2f,\"vs_in_memory\":%.3f,\"spilled_mb\":%.1f,\"read_mb\":%.1f,"
                   "\"io_seconds\":%.3f,\"io_gbs\":%.2f,\"peak_mb\":%.1f,\"over_limit\":%llu}\n",
                   O.op, (long long)O.n, (long long)O.nb, nranks, best[c].threads, O.repeat,
                   best[c].hash == best[0].hash ? "ok" : "result differs from the in-memory run",
                   c ? O.frac[c - 1] : 0.0, (double)m->limit * 1e-6, best[c].seconds,
                   flops() / best[c].seconds * 1e-9, best[0].seconds / best[c].seconds,
                   (double)m->spill_bytes * 1e-6, (double)m->read_bytes * 1e-6, m->io_seconds,
                   m->io_seconds > 0 ? io / m->io_seconds * 1e-9 : 0.0, (double)m->peak * 1e-6,
                   (unsigned long long)m->over_limit);
        }
        printf("{\"bench\":\"spill_bench\",\"case\":\"posix\",\"mb\":%.1f,\"write_gbs\":%.2f,"
               "\"read_gbs\":%.2f}\n",
               (double)data * 1e-6, wg, rg);
    }
    int bad = 0;
    for (int c = 0; c < ncase; c++)
        bad |= best[c].hash != best[0].hash;
    MPI_Bcast(&bad, 1, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Finalize();
    return bad;
usage:
    if (me == 0)
        fprintf(stderr, "usage: spill_bench [--op potrf|gemm] [--n N] [--nb NB] [--threads T] "
                        "[--fractions F1,F2,...] [--repeat R] [--dir DIR]\n");
    MPI_Finalize();
    return 2;
}
