/* dagr gpu_kernel: a hand-written CUDA kernel as the device body of a user kernel, in one task
 * graph with dagr_gemm.
 *
 * A (n x n) and B (n x n) are random DArrays of nb x nb tiles. The user kernel scale_shift
 * (X := alpha X + beta I on one tile) has two bodies: a CPU body, below, and a device body,
 * gpu_kernel_body.cu, which launches a __global__ function on the task's CUDA stream over the
 * device's copy of the tile. The graph, inserted without waiting in between:
 *
 *   A := 0.5 A + 2 I          scale_shift on every tile of A
 *   C := A B                  dagr_gemm (its tile kernel has a cuBLAS body)
 *   C := -C + n I             scale_shift on every tile of C
 *
 * On a rank with a GPU, tiles go to it, and a tile that scale_shift changed there is an
 * input of the gemm tasks on the GPU without a trip to the host. Without one the CPU bodies
 * do the same work; on a test device (DAGR_TEST_DEVICES=1) the device body answers
 * DAGR_TASK_NEXT and the CPU body runs on the device's copy. Rank 0 then repeats the
 * computation serially from the gathered A and B and prints
 *
 *   ||C - C_serial||_1 / (||A'||_1 ||B||_1 n eps)      (A' = 0.5 A + 2 I)
 *
 * which must be below 60 ("gpu_kernel: ok"), or exits 1. It says how many tasks each device
 * ran, or that the rank had no GPU and why.
 *
 *   mpiexec.mpich -n 2 build/examples/gpu_kernel [--n N] [--nb NB] [--threads T]
 */
#include <dagr/dagr.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_kernel.h"

typedef struct gk_opts {
    int64_t n, nb;
    int threads;
} gk_opts_t;

static int parse(int argc, char **argv, gk_opts_t *o) {
    *o = (gk_opts_t){.n = 1000, .nb = 256};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) return -1;
        if (!strcmp(a, "--n"))
            o->n = atoll(argv[++i]);
        else if (!strcmp(a, "--nb"))
            o->nb = atoll(argv[++i]);
        else if (!strcmp(a, "--threads"))
            o->threads = atoi(argv[++i]);
        else
            return -1;
    }
    return o->n < 1 || o->nb < 1 || o->threads < 0 ? -1 : 0;
}

/* The CPU body: the same update as the __global__ function, on host memory. */
static dagr_task_result_t scale_shift_cpu(const dagr_task_view_t *t) {
    const scale_shift_args_t *a = t->args;
    double *x = t->buf[0];
    const int64_t ld = (int64_t)t->ld[0];
    for (int64_t c = 0; c < a->cols; c++)
        for (int64_t r = 0; r < a->rows; r++) {
            double v = a->alpha * x[r + c * ld];
            if (a->i0 + r == a->j0 + c) v += a->beta;
            x[r + c * ld] = v;
        }
    return DAGR_TASK_DONE;
}

static const dagr_kernel_t SCALE_SHIFT = {"scale_shift", scale_shift_cpu, scale_shift_gpu, {NULL}};

/* Spawns scale_shift on every tile of X (every rank inserts every task; each runs on its
 * tile's owner, on the host or on a device). Logically collective. */
static dagr_status_t scale_shift(dagr_darray_t *X, double alpha, double beta) {
    dagr_ctx_t *ctx = dagr_darray_ctx(X);
    const int64_t m = dagr_darray_rows(X), n = dagr_darray_cols(X);
    const int64_t mb = dagr_darray_tile_rows(X), nb = dagr_darray_tile_cols(X);
    for (int64_t tj = 0; tj < dagr_darray_nt(X); tj++)
        for (int64_t ti = 0; ti < dagr_darray_mt(X); ti++) {
            scale_shift_args_t a = {alpha, beta, ti * mb, tj * nb, 0, 0};
            a.rows = m - a.i0 < mb ? m - a.i0 : mb;
            a.cols = n - a.j0 < nb ? n - a.j0 : nb;
            dagr_access_t acc[1] = {{dagr_darray_tile(X, ti, tj), DAGR_RW}};
            dagr_status_t s = dagr_spawn(ctx, &SCALE_SHIFT, &a, sizeof a, 1, acc, NULL);
            if (s != DAGR_OK) return s;
        }
    return DAGR_OK;
}

static double norm1(const double *x, int64_t n) {
    double best = 0;
    for (int64_t j = 0; j < n; j++) {
        double s = 0;
        for (int64_t i = 0; i < n; i++)
            s += fabs(x[i + j * n]);
        best = s > best ? s : best;
    }
    return best;
}

/* The serial reference on rank 0: a := 0.5 a + 2 I, c := -(a b) + n I; returns the residual
 * of got against it. */
static double serial_residual(double *a, const double *b, const double *got, int64_t n) {
    double *c = calloc((size_t)(n * n), sizeof *c);
    if (!c) return NAN;
    for (int64_t i = 0; i < n * n; i++)
        a[i] *= 0.5;
    for (int64_t i = 0; i < n; i++)
        a[i + i * n] += 2.0;
    for (int64_t j = 0; j < n; j++)
        for (int64_t k = 0; k < n; k++) {
            const double bkj = b[k + j * n];
            for (int64_t i = 0; i < n; i++)
                c[i + j * n] += a[i + k * n] * bkj;
        }
    for (int64_t i = 0; i < n * n; i++)
        c[i] = -c[i];
    for (int64_t i = 0; i < n; i++)
        c[i + i * n] += (double)n;
    for (int64_t i = 0; i < n * n; i++)
        c[i] -= got[i];
    double r = norm1(c, n) / (norm1(a, n) * norm1(b, n) * (double)n * DBL_EPSILON);
    free(c);
    return r;
}

#define TRY(call)                                                                                  \
    do {                                                                                           \
        dagr_status_t s_ = (call);                                                                 \
        if (s_ != DAGR_OK) {                                                                       \
            fprintf(stderr, "gpu_kernel: %s: %s (%s)\n", #call, dagr_status_str(s_),               \
                    dagr_last_error());                                                            \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

int main(int argc, char **argv) {
    gk_opts_t o;
    if (parse(argc, argv, &o)) {
        fprintf(stderr, "usage: %s [--n N] [--nb NB] [--threads T]\n", argv[0]);
        return 2;
    }
    dagr_config_t cfg;
    dagr_config_init(&cfg);
    cfg.threads = o.threads;
    dagr_ctx_t *ctx = NULL;
    dagr_status_t s = dagr_init(&argc, &argv, &cfg, &ctx);
    if (s != DAGR_OK) {
        fprintf(stderr, "gpu_kernel: dagr_init: %s (%s)\n", dagr_status_str(s), dagr_last_error());
        return 1;
    }
    int ok = 0;
    const int64_t n = o.n;
    const int me = dagr_rank(ctx);
    dagr_darray_t *A = NULL, *B = NULL, *C = NULL;
    double *a = NULL, *b = NULL, *c = NULL;
    dagr_job_info_t job;
    TRY(dagr_job_info(ctx, &job));

    TRY(dagr_darray_create(ctx, DAGR_DOUBLE, n, n, o.nb, o.nb, dagr_grid_2d(0, 0), &A));
    TRY(dagr_darray_create_like(A, DAGR_DOUBLE, &B));
    TRY(dagr_darray_create_like(A, DAGR_DOUBLE, &C));
    TRY(dagr_darray_random(A, 11));
    TRY(dagr_darray_random(B, 12));
    if (me == 0) {
        a = malloc(sizeof *a * (size_t)(n * n));
        b = malloc(sizeof *b * (size_t)(n * n));
        c = malloc(sizeof *c * (size_t)(n * n));
        if (!a || !b || !c) fprintf(stderr, "gpu_kernel: out of memory on rank 0\n");
    }
    TRY(dagr_darray_gather(A, a, n, 0)); /* the inputs, for the serial check */
    TRY(dagr_darray_gather(B, b, n, 0));

    double t0 = MPI_Wtime();
    TRY(scale_shift(A, 0.5, 2.0));
    TRY(dagr_gemm(DAGR_NO_TRANS, DAGR_NO_TRANS, 1.0, A, B, 0.0, C));
    TRY(scale_shift(C, -1.0, (double)n));
    TRY(dagr_wait_all(ctx));
    double secs = MPI_Wtime() - t0;
    TRY(dagr_darray_gather(C, c, n, 0));

    /* What ran where: each device's task count (summed over ranks). */
    int ndev = dagr_devices(ctx), gpus = job.gpus, any_gpu = 0;
    unsigned long long tasks[2] = {0, 0}, all[2]; /* on GPUs, on test devices */
    for (int d = 0; d < ndev; d++) {
        dagr_device_stats_t st;
        TRY(dagr_device_stats(ctx, d, &st));
        tasks[strcmp(st.kind, "cuda") ? 1 : 0] += st.tasks;
    }
    MPI_Allreduce(tasks, all, 2, MPI_UNSIGNED_LONG_LONG, MPI_SUM, dagr_comm(ctx));
    MPI_Allreduce(&gpus, &any_gpu, 1, MPI_INT, MPI_MAX, dagr_comm(ctx));
    if (me == 0) {
        double res = a && b && c ? serial_residual(a, b, c, n) : NAN;
        ok = res < 60.0; /* NaN fails too */
        if (any_gpu)
            printf("gpu_kernel: GPU tasks %llu (scale_shift's __global__ kernel and cuBLAS gemm "
                   "tiles)\n",
                   all[0]);
        else
            printf("gpu_kernel: %s; the CPU bodies ran%s\n", job.gpu_note,
                   all[1] ? ", on test devices through DAGR_TASK_NEXT too" : "");
        if (all[1]) printf("gpu_kernel: test device tasks %llu\n", all[1]);
        printf("gpu_kernel: %s n=%lld nb=%lld ranks=%d threads=%d graph %.3f s, residual %.3g "
               "(must be < 60)\n",
               ok ? "ok" : "FAILED", (long long)n, (long long)o.nb, dagr_size(ctx),
               dagr_threads(ctx), secs, res);
    }
    MPI_Bcast(&ok, 1, MPI_INT, 0, dagr_comm(ctx));

out:
    free(a);
    free(b);
    free(c);
    dagr_darray_destroy(&C);
    dagr_darray_destroy(&B);
    dagr_darray_destroy(&A);
    s = dagr_finalize(&ctx);
    if (s != DAGR_OK) {
        fprintf(stderr, "gpu_kernel: dagr_finalize: %s (%s)\n", dagr_status_str(s),
                dagr_last_error());
        ok = 0;
    }
    return ok ? 0 : 1;
}
