/* dagr jacobi: steady-state 2-D heat by Jacobi iteration over a DArray stencil.
 *
 * A square plate of n x n interior points has its top edge held at temperature 100, its
 * other edges at 0, and a heat source in the middle ninth of the plate. The steady state u
 * solves -laplace(u) = f; Jacobi iteration replaces every point by the mean of its four
 * neighbours plus h^2 f / 4. Each sweep is one dagr_darray_stencil of radius 1 from one array
 * into the other (ping-pong), with the ZERO boundary rule standing for the cold edges; the
 * hot top edge is added by the stencil function where a point's global row is 0. Every
 * `check` sweeps the change between the last two iterates, max |u_new - u_old|, is computed
 * with dagr_darray_copy + dagr_darray_axpby + dagr_darray_norm (DAGR_NORM_MAX), and the
 * iteration stops once it is below the tolerance or after `iters` sweeps.
 *
 * At the end rank 0 repeats the same number of sweeps serially (for n <= 1024) with the same
 * point function, and the program prints "jacobi: ok ..." when the two agree, or exits 1.
 *
 * A long run across batch jobs: with --checkpoint PATH the program first resumes from PATH
 * (none there: a fresh start), writes an asynchronous checkpoint every --every sweeps
 * (dagr_checkpoint_async: the sweeps go on while it writes), and asks dagr_stop_requested
 * after every sweep. Run with DAGR_STOP_SIGNALS=USR1,TERM, a signal (Slurm's
 * `--signal=USR1@60`, or `scancel --signal=USR1`) makes every rank stop after the same sweep,
 * write a synchronous checkpoint and exit with DAGR_EXIT_STOPPED (75); started again, on any
 * number of ranks, it goes on from there and ends exactly as a run that was never stopped.
 * slurm/chain.sbatch runs it that way.
 *
 *   mpiexec.mpich -n 4 build/examples/jacobi [--n N] [--tile T] [--grid P Q] [--iters I]
 *                                           [--check K] [--tol X] [--threads T]
 *                                           [--checkpoint PATH] [--every K]
 */
#include <dagr/dagr.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct jacobi_opts {
    int64_t n, tile;
    int p, q; /* 0 0: the squarest grid */
    int iters, check;
    double tol;
    int threads;
    const char *checkpoint; /* NULL: none */
    int every;
} jacobi_opts_t;

/* The problem, as the stencil function needs it (valid on every rank while tasks run). */
typedef struct problem {
    int64_t n;
    double h2;  /* grid spacing squared */
    double top; /* temperature of the top edge */
} problem_t;

static double source(const problem_t *pb, int64_t i, int64_t j) {
    int64_t lo = pb->n / 3, hi = pb->n - pb->n / 3;
    return i >= lo && i < hi && j >= lo && j < hi ? 1000.0 : 0.0;
}

/* The Jacobi update of one point from its neighbours; the parallel sweep and the serial
 * reference both call it, so that they round identically. */
static inline double jacobi_point(double north, double south, double west, double east,
                                  double h2f) {
    return 0.25 * (north + south + west + east + h2f);
}

/* One tile of a sweep: in has a halo of 1 (zeros outside the plate). */
static void sweep_tile(const dagr_tile_t *in, dagr_tile_t *out, void *user) {
    const problem_t *pb = user;
    const double *u = in->data;
    double *v = out->data;
    for (int64_t c = 0; c < in->cols; c++) {
        for (int64_t r = 0; r < in->rows; r++) {
            int64_t i = in->i0 + r, j = in->j0 + c, k = r + c * in->ld;
            double north = i == 0 ? pb->top : u[k - 1];
            v[r + c * out->ld] = jacobi_point(north, u[k + 1], u[k - in->ld], u[k + in->ld],
                                              pb->h2 * source(pb, i, j));
        }
    }
}

/* The same sweeps on one rank: u is n x n (column-major), overwritten by the result. */
static int serial_jacobi(const problem_t *pb, double *u, int sweeps) {
    int64_t n = pb->n;
    double *v = malloc((size_t)(n * n) * sizeof *v);
    if (!v) return -1;
    for (int s = 0; s < sweeps; s++) {
        for (int64_t j = 0; j < n; j++) {
            for (int64_t i = 0; i < n; i++) {
                double north = i == 0 ? pb->top : u[(i - 1) + j * n];
                double south = i + 1 < n ? u[(i + 1) + j * n] : 0.0;
                double west = j > 0 ? u[i + (j - 1) * n] : 0.0;
                double east = j + 1 < n ? u[i + (j + 1) * n] : 0.0;
                v[i + j * n] = jacobi_point(north, south, west, east, pb->h2 * source(pb, i, j));
            }
        }
        memcpy(u, v, (size_t)(n * n) * sizeof *v);
    }
    free(v);
    return 0;
}

static int parse_opts(int argc, char **argv, jacobi_opts_t *o) {
    *o = (jacobi_opts_t){.n = 256,
                         .tile = 64,
                         .iters = 2000,
                         .check = 50,
                         .tol = 1e-6,
                         .p = 0,
                         .q = 0,
                         .every = 500};
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v && !strcmp(argv[i], "--n")) {
            o->n = atoll(v), i++;
        } else if (v && !strcmp(argv[i], "--tile")) {
            o->tile = atoll(v), i++;
        } else if (v && i + 2 < argc && !strcmp(argv[i], "--grid")) {
            o->p = atoi(v), o->q = atoi(argv[i + 2]), i += 2;
        } else if (v && !strcmp(argv[i], "--iters")) {
            o->iters = atoi(v), i++;
        } else if (v && !strcmp(argv[i], "--check")) {
            o->check = atoi(v), i++;
        } else if (v && !strcmp(argv[i], "--tol")) {
            o->tol = atof(v), i++;
        } else if (v && !strcmp(argv[i], "--threads")) {
            o->threads = atoi(v), i++;
        } else if (v && !strcmp(argv[i], "--checkpoint")) {
            o->checkpoint = v, i++;
        } else if (v && !strcmp(argv[i], "--every")) {
            o->every = atoi(v), i++;
        } else {
            return -1;
        }
    }
    if (o->n < 1 || o->tile < 1 || o->iters < 0 || o->check < 1 || o->p < 0 || o->q < 0 ||
        o->threads < 0 || o->every < 1)
        return -1;
    return 0;
}

/* Reports a failed dagr call on this rank; returns nonzero when s is an error. */
static int failed(dagr_status_t s, const char *what) {
    if (s == DAGR_OK) return 0;
    fprintf(stderr, "jacobi: %s: %s (%s)\n", what, dagr_status_str(s), dagr_last_error());
    return 1;
}

int main(int argc, char **argv) {
    jacobi_opts_t o;
    dagr_ctx_t *ctx = NULL;
    dagr_config_t cfg;
    dagr_darray_t *U[2] = {NULL, NULL}, *D = NULL, *S = NULL;
    double *result = NULL;
    int ok = 0, stopped = 0;

    dagr_config_init(&cfg);
    if (parse_opts(argc, argv, &o)) {
        fprintf(stderr,
                "usage: %s [--n N] [--tile T] [--grid P Q] [--iters I] [--check K] [--tol X] "
                "[--threads T] [--checkpoint PATH] [--every K]\n",
                argv[0]);
        return 2;
    }
    cfg.threads = o.threads;
    if (failed(dagr_init(&argc, &argv, &cfg, &ctx), "dagr_init")) return 1;
    const int rank = dagr_rank(ctx);
    const int64_t n = o.n;
    const problem_t pb = {.n = n, .h2 = 1.0 / (double)((n + 1) * (n + 1)), .top = 100.0};

    /* Collective calls fail alike on every rank, so every rank takes the same exits. */
    dagr_grid_t grid = dagr_grid_2d(o.p, o.q);
    for (int k = 0; k < 2; k++)
        if (failed(dagr_darray_create(ctx, DAGR_DOUBLE, n, n, o.tile, o.tile, grid, &U[k]),
                   "dagr_darray_create"))
            goto out;
    if (failed(dagr_darray_create_like(U[0], DAGR_DOUBLE, &D), "dagr_darray_create_like")) goto out;
    /* The sweep count lives in the state too, so that a checkpoint holds it. */
    if (failed(dagr_darray_create(ctx, DAGR_DOUBLE, 1, 1, 1, 1, grid, &S), "dagr_darray_create"))
        goto out;

    int cur = 0, sweeps = 0;
    if (o.checkpoint) {
        double done = 0.0;
        if (failed(dagr_resume(ctx, o.checkpoint), "dagr_resume") ||
            failed(dagr_darray_fetch(S, 0, 0, &done), "dagr_darray_fetch"))
            goto out;
        sweeps = (int)done;
        cur = sweeps % 2;
        if (rank == 0 && sweeps)
            printf("jacobi: resumed at sweep %d from %s\n", sweeps, o.checkpoint);
    }

    MPI_Barrier(dagr_comm(ctx));
    double t0 = MPI_Wtime(), change = INFINITY;
    while (sweeps < o.iters) {
        if (failed(dagr_darray_stencil(U[cur], 1, DAGR_BOUNDARY_ZERO, sweep_tile, (void *)&pb,
                                       U[1 - cur]),
                   "dagr_darray_stencil") ||
            failed(dagr_darray_shift(S, 1.0), "dagr_darray_shift"))
            goto out;
        cur = 1 - cur;
        sweeps++;
        if (o.checkpoint) {
            if (dagr_stop_requested(ctx)) {
                /* Every rank stops after this same sweep: a complete checkpoint, then out. */
                if (failed(dagr_checkpoint(ctx, o.checkpoint), "dagr_checkpoint")) goto out;
                if (rank == 0)
                    printf("jacobi: stopped at sweep %d, state in %s\n", sweeps, o.checkpoint);
                stopped = 1;
                goto out;
            }
            if (sweeps % o.every == 0 &&
                failed(dagr_checkpoint_async(ctx, o.checkpoint), "dagr_checkpoint_async"))
                goto out;
        }
        if (sweeps % o.check == 0 || sweeps == o.iters) {
            /* D = U_new - U_old; its largest magnitude is the change of the last sweep. */
            if (failed(dagr_darray_copy(U[1 - cur], D), "dagr_darray_copy") ||
                failed(dagr_darray_axpby(1.0, U[cur], -1.0, D), "dagr_darray_axpby") ||
                failed(dagr_darray_norm(D, DAGR_NORM_MAX, &change), "dagr_darray_norm"))
                goto out;
            if (rank == 0 && sweeps % (10 * o.check) == 0)
                printf("  sweep %6d: max change %.3e\n", sweeps, change);
            if (change < o.tol) break;
        }
    }
    if (failed(dagr_wait_all(ctx), "dagr_wait_all")) goto out;
    double seconds = MPI_Wtime() - t0;
    double unorm = 0.0;
    if (failed(dagr_darray_norm(U[cur], DAGR_NORM_MAX, &unorm), "dagr_darray_norm")) goto out;

    int check = n <= 1024;
    if (rank == 0 && check) result = malloc((size_t)(n * n) * sizeof *result);
    if (check && failed(dagr_darray_gather(U[cur], result, n, 0), "dagr_darray_gather")) goto out;
    if (rank == 0) {
        printf("jacobi: %lldx%lld plate, %lldx%lld tiles, %d ranks, %d sweeps in %.3f s "
               "(%.1f M point updates/s), max change %.3e, max temperature %.4g\n",
               (long long)n, (long long)n, (long long)o.tile, (long long)o.tile, dagr_size(ctx),
               sweeps, seconds, (double)(n * n) * sweeps / seconds / 1e6, change, unorm);
        double err = 0.0;
        if (check) {
            double *ref = calloc((size_t)(n * n), sizeof *ref);
            if (!ref || serial_jacobi(&pb, ref, sweeps)) {
                fprintf(stderr, "jacobi: out of memory for the serial check\n");
                err = INFINITY;
            } else {
                for (int64_t k = 0; k < n * n; k++) {
                    double d = fabs(result[k] - ref[k]);
                    err = d > err || d != d ? d : err; /* a NaN counts as an error */
                }
            }
            free(ref);
        }
        /* Identical arithmetic in the same order: any difference is a wrong halo. */
        ok = err <= 1e-12 * (unorm > 1.0 ? unorm : 1.0) && isfinite(unorm) && unorm > 0.0;
        char serial[64] = "serial check skipped (n > 1024)";
        if (check) snprintf(serial, sizeof serial, "serial_error=%.3g", err);
        printf("jacobi: %s n=%lld sweeps=%d change=%.3e %s\n", ok ? "ok" : "FAILED", (long long)n,
               sweeps, change, serial);
        fflush(stdout);
    }
    MPI_Bcast(&ok, 1, MPI_INT, 0, dagr_comm(ctx));

out:
    dagr_darray_destroy(&S);
    dagr_darray_destroy(&D);
    dagr_darray_destroy(&U[0]);
    dagr_darray_destroy(&U[1]);
    if (failed(dagr_finalize(&ctx), "dagr_finalize")) ok = 0;
    free(result);
    if (stopped) return DAGR_EXIT_STOPPED; /* resubmit me: the checkpoint holds the state */
    return ok ? 0 : 1;
}
