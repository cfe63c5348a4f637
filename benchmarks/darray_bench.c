/* darray_bench: DArray throughput against plain loops over the same bytes, in one run.
 *
 * Three cases on n x n double arrays in tile x tile tiles (default 8192 x 8192 = 512 MiB per
 * array, 256 x 256 tiles), each timed round of dagr interleaved with a round of the plain
 * reference:
 *
 *   axpby   Y = 0.5 X + 0.5 Y (dagr_darray_axpby + dagr_wait_all). Bytes: X and Y read, Y
 *           written: 3 x 8 n^2.
 *   norm    Frobenius norm of X (dagr_darray_norm, which waits). Bytes: 8 n^2 read.
 *   redist  dagr_darray_copy from X (tile x tile tiles on a 1 x ranks grid) into an array of
 *           --tile2 tiles (200) on a ranks x 1 grid, + dagr_wait_all: a redistribution.
 *           Bytes: 8 n^2 moved. The destination is created (and zero-filled) before timing.
 *
 * The plain reference: every rank at once runs a plain C loop over its own share of the same
 * bytes (n^2 / ranks elements, in one contiguous malloc'ed block per operand, touched before
 * timing) — y[k] = 0.5 x[k] + 0.5 y[k]; s += x[k]^2 (four partial sums) then an
 * MPI_Allreduce and sqrt; memcpy for the redistribution — so both sides use the same number
 * of processes and the same memory bandwidth. dagr runs with its default worker count
 * (cores / ranks per rank) unless --threads says otherwise.
 *
 * Times are taken with MPI_Wtime from an MPI_Barrier to the end of the operation on every
 * rank; the figure is the slowest rank's, best (and median) of --repeat rounds after one
 * untimed warm-up round. GB/s = 1e9 bytes / s. ratio = dagr GB/s / plain GB/s.
 *
 * Checks: X = 1 and Y = 2 initially, so Y after r rounds of axpby is 1 + 2^-r (checked at a
 * few elements with dagr_darray_fetch), the norm is n, and a few elements of the redistributed
 * array match the source.
 *
 * Prints one JSON object per case on rank 0.
 *
 *   mpiexec.mpich -n 2 build/benchmarks/darray_bench [--n N] [--tile T] [--tile2 T2]
 *       [--repeat R] [--threads T] [--case axpby|norm|redist]
 */
#include <dagr/dagr.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bench_opts {
    int64_t n, tile, tile2;
    int repeat, threads;
    const char *only;
} bench_opts_t;

static dagr_ctx_t *ctx;
static MPI_Comm comm;
static int me, nranks;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The slowest rank's elapsed time since t0. */
static double slowest(double t0) {
    double t = MPI_Wtime() - t0, tmax = 0;
    MPI_Allreduce(&t, &tmax, 1, MPI_DOUBLE, MPI_MAX, comm);
    return tmax;
}

static int failed(dagr_status_t s, const char *what) {
    if (s == DAGR_OK) return 0;
    if (me == 0)
        fprintf(stderr, "darray_bench: %s: %s (%s)\n", what, dagr_status_str(s), dagr_last_error());
    return 1;
}

/* ---- the plain loops ---- */

static void plain_axpby(const double *restrict x, double *restrict y, size_t len) {
    for (size_t k = 0; k < len; k++)
        y[k] = 0.5 * x[k] + 0.5 * y[k];
}

static double plain_sumsq(const double *x, size_t len) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t k = 0;
    for (; k + 4 <= len; k += 4) {
        s0 += x[k] * x[k];
        s1 += x[k + 1] * x[k + 1];
        s2 += x[k + 2] * x[k + 2];
        s3 += x[k + 3] * x[k + 3];
    }
    for (; k < len; k++)
        s0 += x[k] * x[k];
    return (s0 + s1) + (s2 + s3);
}

enum bench_case { CASE_AXPBY, CASE_NORM, CASE_REDIST, NCASES };
static const char *case_names[NCASES] = {"axpby", "norm", "redist"};

typedef struct run_state {
    dagr_darray_t *X, *Y, *Z; /* Z: the redistribution's destination */
    double *x, *y;            /* this rank's plain share */
    size_t share;
    double norm, plain_norm;
} run_state_t;

/* One timed dagr round of case c; < 0 on error. */
static double dagr_round(enum bench_case c, run_state_t *st) {
    MPI_Barrier(comm);
    double t0 = MPI_Wtime();
    dagr_status_t s = DAGR_OK;
    switch (c) {
    case CASE_AXPBY:
        s = dagr_darray_axpby(0.5, st->X, 0.5, st->Y);
        if (s == DAGR_OK) s = dagr_wait_all(ctx);
        break;
    case CASE_NORM:
        s = dagr_darray_norm(st->X, DAGR_NORM_FRO, &st->norm);
        break;
    case CASE_REDIST:
        s = dagr_darray_copy(st->X, st->Z);
        if (s == DAGR_OK) s = dagr_wait_all(ctx);
        break;
    default:
        break;
    }
    double t = slowest(t0);
    return failed(s, case_names[c]) ? -1.0 : t;
}

static double plain_round(enum bench_case c, run_state_t *st) {
    MPI_Barrier(comm);
    double t0 = MPI_Wtime();
    switch (c) {
    case CASE_AXPBY:
        plain_axpby(st->x, st->y, st->share);
        break;
    case CASE_NORM: {
        double s = plain_sumsq(st->x, st->share), sum = 0;
        MPI_Allreduce(&s, &sum, 1, MPI_DOUBLE, MPI_SUM, comm);
        st->plain_norm = sqrt(sum);
        break;
    }
    case CASE_REDIST:
        memcpy(st->y, st->x, st->share * sizeof(double));
        break;
    default:
        break;
    }
    return slowest(t0);
}

/* Checks after the rounds; returns NULL when fine, or what was wrong. */
static const char *check_case(enum bench_case c, run_state_t *st, int rounds, int64_t n) {
    static const int64_t probes[][2] = {{0, 0}, {1, 2}, {-1, -1}, {-2, 7}, {5, -3}};
    for (size_t k = 0; k < sizeof probes / sizeof probes[0]; k++) {
        int64_t i = (probes[k][0] + n) % n, j = (probes[k][1] + n) % n;
        double a = 0, b = 0;
        if (c == CASE_AXPBY) {
            if (dagr_darray_fetch(st->Y, i, j, &a) != DAGR_OK) return "dagr_darray_fetch failed";
            if (fabs(a - (1.0 + ldexp(1.0, -rounds))) > 1e-15) return "wrong axpby result";
        } else if (c == CASE_REDIST) {
            if (dagr_darray_fetch(st->X, i, j, &a) != DAGR_OK ||
                dagr_darray_fetch(st->Z, i, j, &b) != DAGR_OK)
                return "dagr_darray_fetch failed";
            if (a != b) return "redistributed element differs";
        }
    }
    if (c == CASE_NORM && fabs(st->norm - (double)n) > 1e-12 * (double)n) return "wrong norm";
    if (c == CASE_NORM && fabs(st->plain_norm - (double)n) > 1e-9 * (double)n)
        return "wrong plain norm";
    return NULL;
}

static int parse_opts(int argc, char **argv, bench_opts_t *o) {
    *o = (bench_opts_t){.n = 8192, .tile = 256, .tile2 = 200, .repeat = 5};
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return -1;
        if (!strcmp(argv[i], "--n"))
            o->n = atoll(v);
        else if (!strcmp(argv[i], "--tile"))
            o->tile = atoll(v);
        else if (!strcmp(argv[i], "--tile2"))
            o->tile2 = atoll(v);
        else if (!strcmp(argv[i], "--repeat"))
            o->repeat = atoi(v);
        else if (!strcmp(argv[i], "--threads"))
            o->threads = atoi(v);
        else if (!strcmp(argv[i], "--case"))
            o->only = v;
        else
            return -1;
        i++;
    }
    return o->n < 8 || o->tile < 1 || o->tile2 < 1 || o->repeat < 1 || o->threads < 0 ? -1 : 0;
}

int main(int argc, char **argv) {
    bench_opts_t o;
    if (parse_opts(argc, argv, &o)) {
        fprintf(stderr,
                "usage: %s [--n N] [--tile T] [--tile2 T2] [--repeat R] [--threads T] "
                "[--case axpby|norm|redist]\n",
                argv[0]);
        return 2;
    }
    dagr_config_t cfg;
    dagr_config_init(&cfg);
    cfg.threads = o.threads;
    dagr_status_t s = dagr_init(&argc, &argv, &cfg, &ctx);
    if (s != DAGR_OK) {
        fprintf(stderr, "darray_bench: dagr_init: %s (%s)\n", dagr_status_str(s),
                dagr_last_error());
        return 1;
    }
    comm = dagr_comm(ctx);
    me = dagr_rank(ctx);
    nranks = dagr_size(ctx);
    int failures = 0;
    const int64_t n = o.n;
    const double elems = (double)n * (double)n;

    run_state_t st = {0};
    st.share = (size_t)((n * n + nranks - 1) / nranks);
    st.x = malloc(st.share * sizeof(double));
    st.y = malloc(st.share * sizeof(double));
    double *times = calloc((size_t)o.repeat, sizeof *times);
    double *ptimes = calloc((size_t)o.repeat, sizeof *ptimes);
    if (!st.x || !st.y || !times || !ptimes) {
        fprintf(stderr, "darray_bench: out of memory\n");
        dagr_finalize(&ctx);
        return 1;
    }
    /* X on a 1 x ranks grid (the redistribution's source grid; also the squarest at 2). */
    dagr_grid_t g1 = dagr_grid_2d(1, nranks), g2 = dagr_grid_2d(nranks, 1);
    if (failed(dagr_darray_create(ctx, DAGR_DOUBLE, n, n, o.tile, o.tile, g1, &st.X), "create X"))
        goto finish;

    for (int c = 0; c < NCASES; c++) {
        if (o.only && strcmp(o.only, case_names[c])) continue;
        /* Fresh operands: X = 1, Y = 2 (and plain x = 1, y = 2), all pages touched. */
        for (size_t k = 0; k < st.share; k++) {
            st.x[k] = 1.0;
            st.y[k] = 2.0;
        }
        s = dagr_darray_fill(st.X, 1.0);
        if (s == DAGR_OK && c == CASE_AXPBY) {
            s = dagr_darray_create(ctx, DAGR_DOUBLE, n, n, o.tile, o.tile, g1, &st.Y);
            if (s == DAGR_OK) s = dagr_darray_fill(st.Y, 2.0);
        }
        if (s == DAGR_OK && c == CASE_REDIST) {
            s = dagr_darray_create(ctx, DAGR_DOUBLE, n, n, o.tile2, o.tile2, g2, &st.Z);
            if (s == DAGR_OK) s = dagr_darray_random(st.X, 7);
            if (s == DAGR_OK) s = dagr_darray_fill(st.Z, 0.0);
        }
        if (s == DAGR_OK) s = dagr_wait_all(ctx);
        if (failed(s, "setup")) {
            failures++;
            break;
        }
        /* Warm-up round of each, then interleaved timed rounds. */
        double t = dagr_round(c, &st);
        plain_round(c, &st);
        for (int r = 0; r < o.repeat && t >= 0; r++) {
            t = dagr_round(c, &st);
            times[r] = t;
            ptimes[r] = plain_round(c, &st);
        }
        if (t < 0) {
            failures++;
            break;
        }
        const char *bad = check_case(c, &st, o.repeat + 1, n);
        if (bad) failures++;
        qsort(times, (size_t)o.repeat, sizeof *times, cmp_double);
        qsort(ptimes, (size_t)o.repeat, sizeof *ptimes, cmp_double);
        double bytes = (c == CASE_AXPBY ? 24.0 : 8.0) * elems;
        double gbps = bytes / times[0] / 1e9, pgbps = bytes / ptimes[0] / 1e9;
        if (me == 0) {
            printf("{\"bench\":\"darray_bench\",\"case\":\"%s\",\"ranks\":%d,\"threads\":%d,"
                   "\"n\":%lld,\"tile\":%lld,",
                   case_names[c], nranks, dagr_threads(ctx), (long long)n, (long long)o.tile);
            if (c == CASE_REDIST)
                printf("\"tile_to\":%lld,\"grid_from\":\"1x%d\",\"grid_to\":\"%dx1\",",
                       (long long)o.tile2, nranks, nranks);
            printf("\"repeat\":%d,\"bytes\":%.0f,\"seconds\":%.6f,\"seconds_median\":%.6f,"
                   "\"gbps\":%.3f,\"plain_seconds\":%.6f,\"plain_seconds_median\":%.6f,"
                   "\"plain_gbps\":%.3f,\"ratio_dagr_plain\":%.3f,\"check\":\"%s\"}\n",
                   o.repeat, bytes, times[0], times[o.repeat / 2], gbps, ptimes[0],
                   ptimes[o.repeat / 2], pgbps, gbps / pgbps, bad ? bad : "ok");
            fflush(stdout);
        }
        dagr_darray_destroy(&st.Y);
        dagr_darray_destroy(&st.Z);
    }

finish:
    dagr_darray_destroy(&st.X);
    s = dagr_finalize(&ctx);
    if (s != DAGR_OK) {
        fprintf(stderr, "darray_bench: dagr_finalize: %s (%s)\n", dagr_status_str(s),
                dagr_last_error());
        failures++;
    }
    free(st.x);
    free(st.y);
    free(times);
    free(ptimes);
    return failures ? 1 : 0;
}
