/* dagr cholesky: solve A X = B for a symmetric positive definite A with dagr_posv, and check
 * the backward error.
 *
 * A is n x n, a symmetric matrix of values in [0, 1) plus n on the diagonal (so it is SPD
 * and well conditioned); B is n x nrhs, random. Both are DArrays of nb x nb tiles on a
 * P x Q block-cyclic grid. dagr_posv factors A = L L^T (dagr_potrf) and solves with L and
 * L^T (dagr_potrs) in one task graph; nothing waits in between. The program then forms
 * R = B - A X with dagr_gemm and prints the backward error as LAPACK's testers do,
 *
 *   ||B - A X||_1 / (||A||_1 ||X||_1 n eps),
 *
 * which must be below 60 ("cholesky: ok"), or exits 1.
 *
 *   mpiexec.mpich -n 2 build/examples/cholesky [--n N] [--nb NB] [--nrhs K] [--grid P Q]
 *                                             [--threads T]
 *
 * With DAGR_TRACE=chol.json the run is traced; tools/dagr-trace chol.json --png chol.png
 * draws its Gantt chart (the README shows one).
 */
#include <dagr/dagr.h>

#include <float.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct chol_opts {
    int64_t n, nb, nrhs;
    int p, q; /* 0 0: the squarest grid */
    int threads;
} chol_opts_t;

static int parse(int argc, char **argv, chol_opts_t *o) {
    *o = (chol_opts_t){.n = 2000, .nb = 200, .nrhs = 10};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) return -1;
        if (!strcmp(a, "--n"))
            o->n = atoll(argv[++i]);
        else if (!strcmp(a, "--nb"))
            o->nb = atoll(argv[++i]);
        else if (!strcmp(a, "--nrhs"))
            o->nrhs = atoll(argv[++i]);
        else if (!strcmp(a, "--threads"))
            o->threads = atoi(argv[++i]);
        else if (!strcmp(a, "--grid") && i + 2 < argc) {
            o->p = atoi(argv[++i]);
            o->q = atoi(argv[++i]);
        } else
            return -1;
    }
    return o->n < 1 || o->nb < 1 || o->nrhs < 1 || o->p < 0 || o->q < 0 || o->threads < 0 ? -1 : 0;
}

/* A symmetric matrix of values in [0, 1): a hash of the unordered pair (i, j). */
static double sym_value(int64_t i, int64_t j, void *user) {
    (void)user;
    uint64_t a = (uint64_t)(i < j ? i : j), b = (uint64_t)(i < j ? j : i);
    uint64_t z = a * 0x9e3779b97f4a7c15ull ^ (b + 0x632be59bd9b4e019ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (double)((z ^ (z >> 31)) >> 11) * 0x1.0p-53;
}

#define TRY(call)                                                                                  \
    do {                                                                                           \
        dagr_status_t s_ = (call);                                                                 \
        if (s_ != DAGR_OK) {                                                                       \
            fprintf(stderr, "cholesky: %s: %s (%s)\n", #call, dagr_status_str(s_),                 \
                    dagr_last_error());                                                            \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

int main(int argc, char **argv) {
    chol_opts_t o;
    if (parse(argc, argv, &o)) {
        fprintf(stderr, "usage: %s [--n N] [--nb NB] [--nrhs K] [--grid P Q] [--threads T]\n",
                argv[0]);
        return 2;
    }
    dagr_config_t cfg;
    dagr_config_init(&cfg);
    cfg.threads = o.threads;
    dagr_ctx_t *ctx = NULL;
    dagr_status_t s = dagr_init(&argc, &argv, &cfg, &ctx);
    if (s != DAGR_OK) {
        fprintf(stderr, "cholesky: dagr_init: %s (%s)\n", dagr_status_str(s), dagr_last_error());
        return 1;
    }
    int ok = 0;
    dagr_grid_t grid = dagr_grid_2d(o.p, o.q);
    dagr_darray_t *A0 = NULL, *A = NULL, *I = NULL, *B = NULL, *X = NULL;
    const int64_t n = o.n;

    /* A0 = sym + n I, B random; A and X are the copies posv overwrites. */
    TRY(dagr_darray_create(ctx, DAGR_DOUBLE, n, n, o.nb, o.nb, grid, &A0));
    TRY(dagr_darray_create_like(A0, DAGR_DOUBLE, &A));
    TRY(dagr_darray_create_like(A0, DAGR_DOUBLE, &I));
    TRY(dagr_darray_create(ctx, DAGR_DOUBLE, n, o.nrhs, o.nb, o.nb, grid, &B));
    TRY(dagr_darray_create_like(B, DAGR_DOUBLE, &X));
    TRY(dagr_darray_from_fn(A0, sym_value, NULL));
    TRY(dagr_darray_identity(I));
    TRY(dagr_darray_axpby((double)n, I, 1.0, A0));
    TRY(dagr_darray_random(B, 7));
    TRY(dagr_darray_copy(A0, A));
    TRY(dagr_darray_copy(B, X));
    TRY(dagr_wait_all(ctx));

    double t0 = MPI_Wtime();
    TRY(dagr_posv(DAGR_LOWER, A, X));
    TRY(dagr_wait_all(ctx));
    double secs = MPI_Wtime() - t0;

    /* B := B - A0 X, then the backward error. */
    double norm_r, norm_a, norm_x;
    TRY(dagr_gemm(DAGR_NO_TRANS, DAGR_NO_TRANS, -1.0, A0, X, 1.0, B));
    TRY(dagr_darray_norm(B, DAGR_NORM_ONE, &norm_r));
    TRY(dagr_darray_norm(A0, DAGR_NORM_ONE, &norm_a));
    TRY(dagr_darray_norm(X, DAGR_NORM_ONE, &norm_x));
    double err = norm_r / (norm_a * norm_x * (double)n * DBL_EPSILON);
    ok = err < 60.0; /* NaN fails too */
    if (dagr_rank(ctx) == 0) {
        double fl = (double)n * n * n / 3 + 2.0 * n * n * (double)o.nrhs;
        printf("cholesky: %s n=%lld nb=%lld nrhs=%lld ranks=%d threads=%d posv %.3f s "
               "(%.2f GFLOP/s), backward error %.3g (must be < 60)\n",
               ok ? "ok" : "FAILED", (long long)n, (long long)o.nb, (long long)o.nrhs,
               dagr_size(ctx), dagr_threads(ctx), secs, fl / secs * 1e-9, err);
    }

out:
    dagr_darray_destroy(&X);
    dagr_darray_destroy(&B);
    dagr_darray_destroy(&I);
    dagr_darray_destroy(&A);
    dagr_darray_destroy(&A0);
    s = dagr_finalize(&ctx);
    if (s != DAGR_OK) {
        fprintf(stderr, "cholesky: dagr_finalize: %s (%s)\n", dagr_status_str(s),
                dagr_last_error());
        ok = 0;
    }
    return ok ? 0 : 1;
}
