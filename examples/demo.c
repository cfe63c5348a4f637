/* dagr demo: 1-D heat diffusion over blocks owned by different ranks.
 *
 * A rod of `cells` cells is cut into `blocks` blocks. Each block is a data handle owned by one
 * rank (contiguous ranges of blocks by default, round-robin with --cyclic), and so are its two
 * edge values: a task that updates block b for one time step writes the new block and its new
 * left and right edges, and reads the old block plus the old right edge of block b-1 and the
 * old left edge of block b+1. So a step's tasks depend only on their neighbours' previous
 * step (no global barrier), and only 8-byte edges cross ranks, as a halo exchange would.
 * The runtime infers every dependency from the access modes and moves the edges itself.
 *
 * Rank 0 then fetches the blocks, repeats the computation serially, and prints both; the
 * program exits 1 if they differ.
 *
 *   mpiexec.mpich -n 2 build/examples/demo [--cells N] [--blocks B] [--steps S] [--cyclic]
 *                                          [--threads T]
 */
#include <dagr/dagr.h>

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Tasks this rank has run (each kernel body counts itself). */
static atomic_long tasks_run;

typedef struct demo_opts {
    int64_t cells;
    int blocks;
    int steps;
    int cyclic;
    int threads;
} demo_opts_t;

/* Explicit finite-difference step of du/dt = d2u/dx2, stable for r <= 1/2. Shared by the
 * tasks and the serial reference so that both round identically. */
static inline double heat_point(double left, double mid, double right, double r) {
    return mid + r * (left - 2.0 * mid + right);
}

/* The initial hot spots: [first, first + width) at temperature t, all else at 0. Narrow spots
 * cool visibly within a few thousand steps (the diffusion length is sqrt(2 r steps) cells). */
typedef struct hot_spot {
    int64_t first, width;
    double t;
} hot_spot_t;

static void hot_spots(int64_t cells, hot_spot_t spot[3]) {
    spot[0] = (hot_spot_t){cells / 4, cells / 16 > 1 ? cells / 16 : 1, 50.0};
    spot[1] = (hot_spot_t){cells / 2, cells / 256 > 1 ? cells / 256 : 1, 100.0};
    spot[2] = (hot_spot_t){3 * cells / 4, cells / 1024 > 1 ? cells / 1024 : 1, 100.0};
}

static double initial_temperature(int64_t i, int64_t cells) {
    hot_spot_t spot[3];
    hot_spots(cells, spot);
    for (int k = 0; k < 3; k++)
        if (i >= spot[k].first && i < spot[k].first + spot[k].width) return spot[k].t;
    return 0.0;
}

/* First global cell of block b. */
static int64_t block_first(const demo_opts_t *o, int b) {
    return o->cells * b / o->blocks;
}

static int block_owner(const demo_opts_t *o, int b, int nranks) {
    return o->cyclic ? b % nranks : (int)((int64_t)b * nranks / o->blocks);
}

typedef struct init_args {
    int64_t first;
    int64_t cells;
} init_args_t;

/* Accesses: 0 WRITE block, 1 WRITE left edge, 2 WRITE right edge. */
static dagr_task_result_t init_block(const dagr_task_view_t *t) {
    const init_args_t *a = t->args;
    double *u = t->buf[0];
    size_t n = t->bytes[0] / sizeof(double);
    for (size_t i = 0; i < n; i++)
        u[i] = initial_temperature(a->first + (int64_t)i, a->cells);
    *(double *)t->buf[1] = u[0];
    *(double *)t->buf[2] = u[n - 1];
    atomic_fetch_add_explicit(&tasks_run, 1, memory_order_relaxed);
    return DAGR_TASK_DONE;
}

typedef struct step_args {
    double r;
    int has_left, has_right; /* the rod's ends are held at 0 */
} step_args_t;

/* Accesses: 0 WRITE new block, 1 READ old block, 2 WRITE new left edge, 3 WRITE new right
 * edge, then READ old right edge of the left neighbour (if has_left) and READ old left edge
 * of the right neighbour (if has_right). */
static dagr_task_result_t heat_step(const dagr_task_view_t *t) {
    const step_args_t *a = t->args;
    double *out = t->buf[0];
    const double *in = t->buf[1];
    size_t n = t->bytes[0] / sizeof(double);
    int next = 4;
    double left = a->has_left ? *(const double *)t->buf[next++] : 0.0;
    double right = a->has_right ? *(const double *)t->buf[next++] : 0.0;

    if (n == 1) {
        out[0] = heat_point(left, in[0], right, a->r);
    } else {
        out[0] = heat_point(left, in[0], in[1], a->r);
        for (size_t i = 1; i + 1 < n; i++)
            out[i] = heat_point(in[i - 1], in[i], in[i + 1], a->r);
        out[n - 1] = heat_point(in[n - 2], in[n - 1], right, a->r);
    }
    *(double *)t->buf[2] = out[0];
    *(double *)t->buf[3] = out[n - 1];
    atomic_fetch_add_explicit(&tasks_run, 1, memory_order_relaxed);
    return DAGR_TASK_DONE;
}

/* The same computation on one rank, in place of the tasks. */
static void serial_heat(double *u, int64_t cells, int steps, double r) {
    double *v = malloc((size_t)cells * sizeof(double));
    if (!v) return;
    for (int s = 0; s < steps; s++) {
        for (int64_t i = 0; i < cells; i++) {
            double left = i > 0 ? u[i - 1] : 0.0;
            double right = i + 1 < cells ? u[i + 1] : 0.0;
            v[i] = heat_point(left, u[i], right, r);
        }
        memcpy(u, v, (size_t)cells * sizeof(double));
    }
    free(v);
}

/* Prints the temperature along the rod as one line of characters, each the hottest cell of
 * its stretch of the rod; denser = hotter. */
static void print_profile(const char *label, const double *u, int64_t cells, double scale) {
    static const char shades[] = " .:-=+*#%@";
    const int width = 64, nshades = (int)sizeof shades - 1;
    char line[65];
    for (int c = 0; c < width; c++) {
        int64_t lo = cells * c / width, hi = cells * (c + 1) / width;
        double hottest = 0.0;
        for (int64_t i = lo; i < hi; i++)
            hottest = u[i] > hottest ? u[i] : hottest;
        int k = (int)(hottest / scale * (nshades - 1) + 0.5);
        line[c] = shades[k < 0 ? 0 : k >= nshades ? nshades - 1 : k];
    }
    line[width] = '\0';
    printf("  %-8s |%s|\n", label, line);
}

static double total(const double *u, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += u[i];
    return s;
}

static int parse_opts(int argc, char **argv, demo_opts_t *o) {
    *o = (demo_opts_t){.cells = 1 << 15, .blocks = 16, .steps = 2000, .cyclic = 0, .threads = 0};
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--cyclic")) {
            o->cyclic = 1;
        } else if (v && !strcmp(argv[i], "--cells")) {
            o->cells = atoll(v), i++;
        } else if (v && !strcmp(argv[i], "--blocks")) {
            o->blocks = atoi(v), i++;
        } else if (v && !strcmp(argv[i], "--steps")) {
            o->steps = atoi(v), i++;
        } else if (v && !strcmp(argv[i], "--threads")) {
            o->threads = atoi(v), i++;
        } else {
            return -1;
        }
    }
    if (o->blocks < 1 || o->cells < o->blocks || o->steps < 0 || o->threads < 0) return -1;
    return 0;
}

/* Reports a failed dagr call on this rank; returns nonzero when s is an error. */
static int failed(dagr_status_t s, const char *what) {
    if (s == DAGR_OK) return 0;
    fprintf(stderr, "demo: %s: %s (%s)\n", what, dagr_status_str(s), dagr_last_error());
    return 1;
}

int main(int argc, char **argv) {
    demo_opts_t o;
    dagr_ctx_t *ctx = NULL;
    dagr_config_t cfg;
    int ok = 0;

    dagr_config_init(&cfg);
    if (parse_opts(argc, argv, &o)) {
        fprintf(stderr,
                "usage: %s [--cells N] [--blocks B] [--steps S] [--cyclic] "
                "[--threads T]\n",
                argv[0]);
        return 2;
    }
    cfg.threads = o.threads;
    if (failed(dagr_init(&argc, &argv, &cfg, &ctx), "dagr_init")) return 1;

    const int rank = dagr_rank(ctx), nranks = dagr_size(ctx), nb = o.blocks;
    const double r = 0.25;
    /* Two generations of every handle: step s reads generation s % 2, writes the other. */
    dagr_data_t **u = calloc(6 * (size_t)nb, sizeof *u);
    dagr_data_t **u_gen[2] = {u, u + nb};
    dagr_data_t **left[2] = {u + 2 * nb, u + 3 * nb};
    dagr_data_t **right[2] = {u + 4 * nb, u + 5 * nb};
    double *result = rank == 0 ? malloc((size_t)o.cells * sizeof(double)) : NULL;
    double *reference = rank == 0 ? malloc((size_t)o.cells * sizeof(double)) : NULL;
    int oom = !u || (rank == 0 && (!result || !reference)), any_oom = 0;
    MPI_Allreduce(&oom, &any_oom, 1, MPI_INT, MPI_LOR, dagr_comm(ctx));
    if (any_oom) {
        fprintf(stderr, "demo: out of memory\n");
        goto out; /* every rank leaves here, so all reach the collective dagr_finalize */
    }

    for (int g = 0; g < 2; g++) {
        for (int b = 0; b < nb; b++) {
            size_t bytes = (size_t)(block_first(&o, b + 1) - block_first(&o, b)) * sizeof(double);
            int owner = block_owner(&o, b, nranks);
            if (failed(dagr_data_create(ctx, bytes, owner, &u_gen[g][b]), "dagr_data_create") ||
                failed(dagr_data_create(ctx, sizeof(double), owner, &left[g][b]), "edge") ||
                failed(dagr_data_create(ctx, sizeof(double), owner, &right[g][b]), "edge"))
                goto out;
        }
    }

    static const dagr_kernel_t init_k = {.name = "demo_init", .cpu = init_block};
    static const dagr_kernel_t step_k = {.name = "demo_heat_step", .cpu = heat_step};
    MPI_Barrier(dagr_comm(ctx));
    double t0 = MPI_Wtime();
    for (int b = 0; b < nb; b++) {
        init_args_t a = {.first = block_first(&o, b), .cells = o.cells};
        dagr_access_t acc[3] = {
            {u_gen[0][b], DAGR_WRITE}, {left[0][b], DAGR_WRITE}, {right[0][b], DAGR_WRITE}};
        if (failed(dagr_spawn(ctx, &init_k, &a, sizeof a, 3, acc, NULL), "dagr_spawn")) goto out;
    }
    for (int s = 0; s < o.steps; s++) {
        int cur = s % 2, nxt = 1 - cur;
        for (int b = 0; b < nb; b++) {
            step_args_t a = {.r = r, .has_left = b > 0, .has_right = b + 1 < nb};
            dagr_access_t acc[6] = {{u_gen[nxt][b], DAGR_WRITE},
                                    {u_gen[cur][b], DAGR_READ},
                                    {left[nxt][b], DAGR_WRITE},
                                    {right[nxt][b], DAGR_WRITE}};
            int n = 4;
            if (a.has_left) acc[n++] = (dagr_access_t){right[cur][b - 1], DAGR_READ};
            if (a.has_right) acc[n++] = (dagr_access_t){left[cur][b + 1], DAGR_READ};
            if (failed(dagr_spawn(ctx, &step_k, &a, sizeof a, n, acc, NULL), "dagr_spawn"))
                goto out;
        }
    }
    if (failed(dagr_wait_all(ctx), "dagr_wait_all")) goto out;
    double seconds = MPI_Wtime() - t0, max_seconds = 0.0;

    /* Bring the final generation to rank 0. */
    int fin = o.steps % 2;
    for (int b = 0; b < nb; b++) {
        double *dst = rank == 0 ? result + block_first(&o, b) : NULL;
        if (failed(dagr_fetch(u_gen[fin][b], dst, 0), "dagr_fetch")) goto out;
    }

    long mine = atomic_load(&tasks_run), *per_rank = NULL;
    if (rank == 0) per_rank = malloc((size_t)nranks * sizeof *per_rank);
    MPI_Gather(&mine, 1, MPI_LONG, per_rank, 1, MPI_LONG, 0, dagr_comm(ctx));
    MPI_Reduce(&seconds, &max_seconds, 1, MPI_DOUBLE, MPI_MAX, 0, dagr_comm(ctx));

    if (rank == 0) {
        long inserted = (long)nb * (o.steps + 1), ran = 0;
        for (int i = 0; i < nranks; i++)
            ran += per_rank ? per_rank[i] : 0;
        for (int64_t i = 0; i < o.cells; i++)
            reference[i] = initial_temperature(i, o.cells);
        printf("dagr demo: 1-D heat diffusion, %lld cells in %d blocks (%s layout), "
               "%d steps, r = %g\n",
               (long long)o.cells, nb, o.cyclic ? "cyclic" : "block", o.steps, r);
        printf("ranks %d, threads per rank %d, tasks %ld inserted, %ld run (", nranks,
               dagr_threads(ctx), inserted, ran);
        for (int i = 0; i < nranks && per_rank; i++)
            printf("%srank %d: %ld", i ? ", " : "", i, per_rank[i]);
        printf(")\n");
        printf("time %.4f s, %.2f us per task, %.1f M cell updates/s\n", max_seconds,
               max_seconds * 1e6 / (double)inserted, (double)o.cells * o.steps / max_seconds / 1e6);
        print_profile("start", reference, o.cells, 100.0);
        print_profile("end", result, o.cells, 100.0);
        hot_spot_t spot[3];
        hot_spots(o.cells, spot);
        printf("heat: total %.6g -> %.6g\n", total(reference, o.cells), total(result, o.cells));
        printf("hot spots, centre temperature:");
        for (int k = 0; k < 3; k++) {
            int64_t c = spot[k].first + spot[k].width / 2;
            printf("%s %.4g -> %.4g (%lld cells wide)", k ? "," : "", reference[c], result[c],
                   (long long)spot[k].width);
        }
        printf("\n");

        serial_heat(reference, o.cells, o.steps, r);
        double err = 0.0, scale = 1.0;
        for (int64_t i = 0; i < o.cells; i++)
            scale = reference[i] > scale ? reference[i] : scale;
        for (int64_t i = 0; i < o.cells; i++) {
            double d = result[i] - reference[i];
            d = d < 0 ? -d : d;
            err = d > err || d != d ? d : err; /* a NaN counts as an error */
        }
        ok = err <= 1e-12 * scale && ran == inserted;
        printf("check against a serial computation: max error %g%s — %s\n", err,
               ran == inserted ? "" : ", task count mismatch", ok ? "OK" : "FAILED");
        fflush(stdout);
    }
    free(per_rank);
    MPI_Bcast(&ok, 1, MPI_INT, 0, dagr_comm(ctx));

out:
    if (failed(dagr_finalize(&ctx), "dagr_finalize")) ok = 0;
    free(u);
    free(result);
    free(reference);
    return ok ? 0 : 1;
}
