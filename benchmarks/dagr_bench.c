/* dagr-bench: dense linear algebra, dagr against ScaLAPACK and single-node BLAS, in one run.
 *
 *   mpiexec.mpich -n 2 build/benchmarks/dagr-bench --op potrf --n 8192 --nb 256 --grid 1x2 \
 *       --repeat 3 --ref scalapack,blas
 *
 * Ops: gemm (C = A B + C), syrk (lower, C = A A^T + C), trsm (left, lower, no-trans,
 * non-unit, n right-hand sides), potrf (lower), posv (nrhs = nb), getrf, gesv (nrhs = nb),
 * geqrf, gels (square, nrhs = nb; --variant picks dagr's QR variant). Inputs are n x n double
 * DArrays of nb x nb tiles on the P x Q grid, filled with dagr_darray_random (SPD or diagonally
 * dominant where the op needs).
 *
 * Without --nb, the tiles are the size dagr_linalg_tile_size_for recommends for the op (QR's
 * rule for geqrf and gels) and n on the ranks and threads given (the ScaLAPACK reference then uses
 * it too: to compare against ScaLAPACK at its own best nb, run it again with --nb).
 *
 * Each repeat runs dagr and then each reference on fresh copies of the same inputs:
 *   dagr       the dagr routine + dagr_wait_all;
 *   scalapack  the same ScaLAPACK routine (pdgemm, pdsyrk, pdtrsm, pdpotrf, pdposv, pdgetrf,
 *              pdgesv, pdgeqrf, pdgels) on the same data layout (same nb and grid; the arrays
 *              are handed over with dagr_darray_scalapack_acquire before timing);
 *   blas       rank 0 alone runs multithreaded OpenBLAS/LAPACK (all the cores of the
 *              node) on the whole gathered matrix while the other ranks sleep: the machine's
 *              limit;
 *   cublas, cusolver (built with CUDA; either name asks for the vendor's GPU library) rank 0
 *              alone makes one call on the whole matrices in its GPU's memory: gemm
 *              cublasDgemm, potrf cusolverDnXpotrf (64-bit API, workspace sized before);
 *              timed with CUDA events around that call only (uploads excluded: the inputs
 *              are uploaded from the pristine arrays, column panel by panel, before it).
 *              Needs a GPU: without one (dagr_job_info's gpus is 0 on rank 0) the program
 *              says so and exits 3 before making any array. Its line adds
 *              "ratio_dagr_vendor": dagr's GFLOP/s over the vendor's (1 = as fast).
 * The arrays that the op only reads (gemm's A and B, syrk's and trsm's A) are not copied:
 * each run reads the pristine array itself. Gathers (the residual, the vendor's uploads) go
 * by column panels of at most 512 MiB, so rank 0 never holds a whole matrix for gemm and
 * potrf (n = 65536 potrf: the two n x n arrays, 64 GiB, and a panel).
 * Times: from an MPI_Barrier to the end on every rank, the slowest rank's; best of --repeat.
 * The residual (dagr only) is a random-projection one computed on rank 0 from the gathered
 * inputs and outputs, as the LAPACK testers scale it (should be O(1); NaN is a failure):
 *   gemm  ||C x - (A (B x) + C0 x)|| / ((||A|| ||B|| + ||C0||) ||x|| n eps), and likewise
 *   factorizations ||A0 x - L (L^T x)||, ||P A0 x - L (U x)||, ||A0^T (A0 x) - R^T (R x)||
 *   (over ||A0||^2 for QR), solves ||B0 x - A0 (X x)|| / (||A0|| ||X|| ||x|| n eps); 1-norms.
 *
 * Prints one JSON object per implementation and repeat set on rank 0:
 *   {"op","n","nb","grid","ranks","threads","seconds","seconds_median","gflops","residual",
 *    "impl"} (and "variant" for dagr's geqrf and gels)
 */
#include <dagr/dagr.h>

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef DAGR_BENCH_CUDA
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>
#endif

/* ScaLAPACK (Fortran interfaces; Debian ships no C header). */
void pdgemm_(const char *, const char *, const int *, const int *, const int *, const double *,
             const double *, const int *, const int *, const int *, const double *, const int *,
             const int *, const int *, const double *, double *, const int *, const int *,
             const int *);
void pdsyrk_(const char *, const char *, const int *, const int *, const double *, const double *,
             const int *, const int *, const int *, const double *, double *, const int *,
             const int *, const int *);
void pdtrsm_(const char *, const char *, const char *, const char *, const int *, const int *,
             const double *, const double *, const int *, const int *, const int *, double *,
             const int *, const int *, const int *);
void pdpotrf_(const char *, const int *, double *, const int *, const int *, const int *, int *);
void pdposv_(const char *, const int *, const int *, double *, const int *, const int *,
             const int *, double *, const int *, const int *, const int *, int *);
void pdgetrf_(const int *, const int *, double *, const int *, const int *, const int *, int *,
              int *);
void pdgesv_(const int *, const int *, double *, const int *, const int *, const int *, int *,
             double *, const int *, const int *, const int *, int *);
void pdgeqrf_(const int *, const int *, double *, const int *, const int *, const int *, double *,
              double *, const int *, int *);
void pdgels_(const char *, const int *, const int *, const int *, double *, const int *,
             const int *, const int *, double *, const int *, const int *, const int *, double *,
             const int *, int *);
int numroc_(const int *, const int *, const int *, const int *, const int *);

typedef struct opts {
    const char *op;
    int64_t n, nb;
    int p, q, repeat, threads;
    int ref_scalapack, ref_blas;
    int ref_vendor;  /* cublas or cusolver: the vendor's GPU library */
    int require_gpu; /* --require-gpu: exit 3 when rank 0 has no GPU */
    int warmup;      /* untimed runs of each implementation before the timed ones */
    int variant;     /* geqrf, gels: opts.variant (0 = dagr's default) */
    int ib;          /* geqrf, gels: opts.ib (0 = dagr's default) */
} opts_t;

static dagr_ctx_t *ctx;
static MPI_Comm comm;
static int me, nranks;
static opts_t O;

/* ---- inputs ---- */

typedef struct inputs {
    dagr_darray_t *A0, *B0, *C0; /* pristine inputs */
    dagr_darray_t *A, *B, *C;    /* working copies (the pristine ones where the op reads only) */
    int64_t nrhs;
    int a_shared, b_shared; /* A is A0, B is B0 */
} inputs_t;

static int has_b(const char *op) {
    return !strcmp(op, "gemm") || !strcmp(op, "trsm") || !strcmp(op, "posv") ||
           !strcmp(op, "gesv") || !strcmp(op, "gels");
}
static int has_c(const char *op) {
    return !strcmp(op, "gemm") || !strcmp(op, "syrk");
}
static int spd(const char *op) {
    return !strcmp(op, "potrf") || !strcmp(op, "posv");
}
/* Ops that only read A (and B): their runs use the pristine arrays, no copy. */
static int reads_a(const char *op) {
    return !strcmp(op, "gemm") || !strcmp(op, "syrk") || !strcmp(op, "trsm");
}

static void die(const char *what, dagr_status_t s) {
    fprintf(stderr, "dagr-bench: %s: %s: %s\n", what, dagr_status_str(s), dagr_last_error());
    MPI_Abort(MPI_COMM_WORLD, 1);
}
#define TRY(call)                                                                                  \
    do {                                                                                           \
        dagr_status_t s_ = (call);                                                                 \
        if (s_ != DAGR_OK) die(#call, s_);                                                         \
    } while (0)

static dagr_darray_t *mk(int64_t m, int64_t n) {
    dagr_darray_t *X = NULL;
    TRY(dagr_darray_create(ctx, DAGR_DOUBLE, m, n, O.nb, O.nb, dagr_grid_2d(O.p, O.q), &X));
    return X;
}

/* Adds n to the diagonal (and symmetrises for SPD): diagonally dominant, well conditioned. */
static void dominant(const dagr_tile_t *in, dagr_tile_t *out, void *user) {
    double n = *(const double *)user;
    for (int64_t c = 0; c < in->cols; c++)
        for (int64_t r = 0; r < in->rows; r++) {
            int64_t i = in->i0 + r, j = in->j0 + c;
            double *o = (double *)out->data + r + c * out->ld;
            double x = ((const double *)in->data)[r + c * in->ld];
            *o = x + (i == j ? n : 0);
        }
}

static double sym_fn(int64_t i, int64_t j, void *user) {
    (void)user;
    /* A symmetric random-looking matrix in [0, 1) from a hash of the unordered pair. */
    uint64_t a = (uint64_t)(i < j ? i : j), b = (uint64_t)(i < j ? j : i);
    uint64_t z = a * 0x9e3779b97f4a7c15ull ^ (b + 0x632be59bd9b4e019ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (double)((z ^ (z >> 31)) >> 11) * 0x1.0p-53;
}

static void setup(inputs_t *in) {
    int64_t n = O.n;
    in->nrhs = !strcmp(O.op, "trsm") ? n : O.nb;
    if (!strcmp(O.op, "gemm")) in->nrhs = n;
    in->A0 = mk(n, n);
    in->a_shared = reads_a(O.op);
    in->A = in->a_shared ? in->A0 : mk(n, n);
    double dn = (double)n;
    if (spd(O.op)) {
        TRY(dagr_darray_from_fn(in->A0, sym_fn, NULL));
        TRY(dagr_darray_map(in->A0, in->A0, dominant, &dn));
    } else {
        TRY(dagr_darray_random(in->A0, 1));
        if (!strcmp(O.op, "trsm") || !strcmp(O.op, "getrf") || !strcmp(O.op, "gesv"))
            TRY(dagr_darray_map(in->A0, in->A0, dominant, &dn));
    }
    if (has_b(O.op)) {
        in->B0 = mk(n, in->nrhs);
        in->b_shared = !strcmp(O.op, "gemm");
        in->B = in->b_shared ? in->B0 : mk(n, in->nrhs);
        TRY(dagr_darray_random(in->B0, 2));
    }
    if (has_c(O.op)) {
        in->C0 = mk(n, n);
        in->C = mk(n, n);
        TRY(dagr_darray_random(in->C0, 3));
    }
    TRY(dagr_wait_all(ctx));
}

static void refresh(inputs_t *in) {
    if (!in->a_shared) TRY(dagr_darray_copy(in->A0, in->A));
    if (in->B && !in->b_shared) TRY(dagr_darray_copy(in->B0, in->B));
    if (in->C) TRY(dagr_darray_copy(in->C0, in->C));
    TRY(dagr_wait_all(ctx));
}

static double flops(int64_t nrhs) {
    double n = (double)O.n, r = (double)nrhs;
    if (!strcmp(O.op, "gemm")) return 2 * n * n * n;
    if (!strcmp(O.op, "syrk")) return n * n * n;
    if (!strcmp(O.op, "trsm")) return n * n * r;
    if (!strcmp(O.op, "potrf")) return n * n * n / 3;
    if (!strcmp(O.op, "posv")) return n * n * n / 3 + 2 * n * n * r;
    if (!strcmp(O.op, "getrf")) return 2 * n * n * n / 3;
    if (!strcmp(O.op, "gesv")) return 2 * n * n * n / 3 + 2 * n * n * r;
    if (!strcmp(O.op, "geqrf")) return 4 * n * n * n / 3;
    return 4 * n * n * n / 3 + 4 * n * n * r; /* gels */
}

/* ---- the three implementations ---- */

static double slowest(double t0) {
    double t = MPI_Wtime() - t0, tmax = 0;
    MPI_Allreduce(&t, &tmax, 1, MPI_DOUBLE, MPI_MAX, comm);
    return tmax;
}

static double run_dagr(inputs_t *in) {
    refresh(in);
    MPI_Barrier(comm);
    double t0 = MPI_Wtime();
    const char *op = O.op;
    dagr_status_t s = DAGR_OK;
    if (!strcmp(op, "gemm"))
        s = dagr_gemm(DAGR_NO_TRANS, DAGR_NO_TRANS, 1.0, in->A, in->B, 1.0, in->C);
    else if (!strcmp(op, "syrk"))
        s = dagr_syrk(DAGR_LOWER, DAGR_NO_TRANS, 1.0, in->A, 1.0, in->C);
    else if (!strcmp(op, "trsm"))
        s = dagr_trsm(DAGR_LEFT, DAGR_LOWER, DAGR_NO_TRANS, DAGR_NON_UNIT, 1.0, in->A, in->B);
    else if (!strcmp(op, "potrf"))
        s = dagr_potrf(DAGR_LOWER, in->A);
    else if (!strcmp(op, "posv"))
        s = dagr_posv(DAGR_LOWER, in->A, in->B);
    else if (!strcmp(op, "getrf") || !strcmp(op, "gesv")) {
        dagr_pivots_t *piv = NULL;
        s = !strcmp(op, "gesv") ? dagr_gesv(in->A, in->B) : dagr_getrf(in->A, &piv);
        if (s == DAGR_OK) s = dagr_wait_all(ctx);
        double t = slowest(t0);
        if (s != DAGR_OK) die(op, s);
        dagr_pivots_destroy(&piv);
        return t;
    } else if (!strcmp(op, "geqrf")) {
        dagr_qr_t *qr = NULL;
        dagr_linalg_opts_t lo;
        dagr_linalg_opts_init(&lo);
        lo.variant = O.variant;
        if (O.ib) lo.ib = O.ib;
        s = dagr_geqrf_ex(in->A, &qr, &lo);
        if (s == DAGR_OK) s = dagr_wait_all(ctx);
        double t = slowest(t0);
        if (s != DAGR_OK) die(op, s);
        dagr_qr_destroy(&qr);
        return t;
    } else {
        dagr_linalg_opts_t lo;
        dagr_linalg_opts_init(&lo);
        lo.variant = O.variant;
        if (O.ib) lo.ib = O.ib;
        s = dagr_gels_ex(in->A, in->B, &lo);
    }
    if (s == DAGR_OK) s = dagr_wait_all(ctx);
    double t = slowest(t0);
    if (s != DAGR_OK) die(op, s);
    return t;
}

typedef struct sl {
    int desc[9];
    void *local;
} sl_t;

static double run_scalapack(inputs_t *in) {
    refresh(in);
    sl_t a = {0}, b = {0}, c = {0};
    TRY(dagr_darray_scalapack_acquire(in->A, a.desc, &a.local));
    if (in->B) TRY(dagr_darray_scalapack_acquire(in->B, b.desc, &b.local));
    if (in->C) TRY(dagr_darray_scalapack_acquire(in->C, c.desc, &c.local));
    int n = (int)O.n, nrhs = (int)in->nrhs, one = 1, info = 0;
    double done = 1.0;
    double *A = a.local, *B = b.local, *C = c.local;
    /* Workspace and pivots sized before timing. */
    int nb = (int)O.nb, zero = 0, myrow = me / O.q, mycol = me % O.q;
    int mloc = me < O.p * O.q ? numroc_(&n, &nb, &myrow, &zero, &O.p) : 0;
    int *ipiv = calloc((size_t)mloc + (size_t)nb + 1, sizeof *ipiv);
    int nloc = me < O.p * O.q ? numroc_(&n, &nb, &mycol, &zero, &O.q) : 0;
    double *tau = calloc((size_t)nloc + 1, sizeof *tau), wq = 0;
    int lwork = -1;
    if (!strcmp(O.op, "geqrf")) pdgeqrf_(&n, &n, A, &one, &one, a.desc, tau, &wq, &lwork, &info);
    if (!strcmp(O.op, "gels"))
        pdgels_("N", &n, &n, &nrhs, A, &one, &one, a.desc, B, &one, &one, b.desc, &wq, &lwork,
                &info);
    lwork = (int)wq + 1;
    double *work = malloc((size_t)lwork * sizeof *work);
    MPI_Barrier(comm);
    double t0 = MPI_Wtime();
    if (me < O.p * O.q) {
        const char *op = O.op;
        if (!strcmp(op, "gemm"))
            pdgemm_("N", "N", &n, &n, &n, &done, A, &one, &one, a.desc, B, &one, &one, b.desc,
                    &done, C, &one, &one, c.desc);
        else if (!strcmp(op, "syrk"))
            pdsyrk_("L", "N", &n, &n, &done, A, &one, &one, a.desc, &done, C, &one, &one, c.desc);
        else if (!strcmp(op, "trsm"))
            pdtrsm_("L", "L", "N", "N", &n, &nrhs, &done, A, &one, &one, a.desc, B, &one, &one,
                    b.desc);
        else if (!strcmp(op, "potrf"))
            pdpotrf_("L", &n, A, &one, &one, a.desc, &info);
        else if (!strcmp(op, "posv"))
            pdposv_("L", &n, &nrhs, A, &one, &one, a.desc, B, &one, &one, b.desc, &info);
        else if (!strcmp(op, "getrf"))
            pdgetrf_(&n, &n, A, &one, &one, a.desc, ipiv, &info);
        else if (!strcmp(op, "gesv"))
            pdgesv_(&n, &nrhs, A, &one, &one, a.desc, ipiv, B, &one, &one, b.desc, &info);
        else if (!strcmp(op, "geqrf"))
            pdgeqrf_(&n, &n, A, &one, &one, a.desc, tau, work, &lwork, &info);
        else
            pdgels_("N", &n, &n, &nrhs, A, &one, &one, a.desc, B, &one, &one, b.desc, work, &lwork,
                    &info);
    }
    double t = slowest(t0);
    if (info != 0) fprintf(stderr, "dagr-bench: ScaLAPACK %s: info = %d\n", O.op, info);
    free(work);
    free(tau);
    free(ipiv);
    TRY(dagr_darray_scalapack_release(in->A, a.desc, &a.local, 0));
    if (in->B) TRY(dagr_darray_scalapack_release(in->B, b.desc, &b.local, 0));
    if (in->C) TRY(dagr_darray_scalapack_release(in->C, c.desc, &c.local, 0));
    return t;
}

/* Gathers X to rank 0 (NULL elsewhere). */
static double *gather0(const dagr_darray_t *X) {
    int64_t m = dagr_darray_rows(X), n = dagr_darray_cols(X);
    double *buf = me == 0 ? malloc((size_t)(m * n) * sizeof *buf) : NULL;
    TRY(dagr_darray_gather(X, buf, m, 0));
    return buf;
}

/* Column panels of X gathered to rank 0, one at a time: fn(panel, j0, w, user) on rank 0 for
 * columns j0 .. j0 + w - 1 (panel: m x w, ld m; w a multiple of nb, at most 512 MiB a panel
 * unless one tile column is more). Collective. The buffer is pinned when CUDA is there (the
 * vendor's uploads from it are then at the bus's speed); it is kept for the next call. */
typedef void (*panel_fn)(const double *panel, int64_t j0, int64_t w, void *user);
static double *panel_buf;
static size_t panel_cap;
static int panel_pinned;

static void free_panel(void) {
#ifdef DAGR_BENCH_CUDA
    if (panel_pinned) {
        cudaFreeHost(panel_buf);
        panel_buf = NULL;
    }
#endif
    free(panel_buf);
    panel_buf = NULL;
    panel_cap = 0;
    panel_pinned = 0;
}

static void for_panels(const dagr_darray_t *X, panel_fn fn, void *user) {
    int64_t m = dagr_darray_rows(X), n = dagr_darray_cols(X), nb = dagr_darray_tile_cols(X);
    int64_t w = ((int64_t)(512 << 20) / (int64_t)sizeof(double) / (m > 0 ? m : 1)) / nb * nb;
    if (w < nb) w = nb;
    if (w > n) w = n;
    size_t need = (size_t)(m * w) * sizeof(double);
    if (me == 0 && need > panel_cap) {
        free_panel();
#ifdef DAGR_BENCH_CUDA
        panel_pinned = cudaMallocHost((void **)&panel_buf, need) == cudaSuccess;
        if (!panel_pinned) (void)cudaGetLastError();
#endif
        if (!panel_pinned) panel_buf = malloc(need);
        if (!panel_buf) {
            fprintf(stderr, "dagr-bench: no memory for a %zu-byte panel\n", need);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        panel_cap = need;
    }
    for (int64_t j0 = 0; j0 < n; j0 += w) {
        int64_t wj = n - j0 < w ? n - j0 : w;
        dagr_darray_t *V = NULL;
        TRY(dagr_darray_view(X, 0, j0, m, wj, &V));
        TRY(dagr_darray_gather(V, panel_buf, m, 0));
        dagr_darray_destroy(&V);
        if (me == 0) fn(panel_buf, j0, wj, user);
    }
}

/* Waits for the other ranks without spinning, so rank 0's BLAS threads have every core. */
static void idle_barrier(void) {
    MPI_Request rq;
    MPI_Ibarrier(comm, &rq);
    int done = 0;
    while (!done) {
        MPI_Test(&rq, &done, MPI_STATUS_IGNORE);
        if (!done) nanosleep(&(struct timespec){0, 2000000}, NULL);
    }
}

static double run_blas(inputs_t *in) {
    double *A = gather0(in->A0), *B = in->B0 ? gather0(in->B0) : NULL;
    double *C = in->C0 ? gather0(in->C0) : NULL;
    double t = 0;
    if (me == 0) {
        int n = (int)O.n, nrhs = (int)in->nrhs;
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        openblas_set_num_threads((int)cores);
        lapack_int *ipiv = malloc((size_t)n * sizeof *ipiv);
        double *tau = malloc((size_t)n * sizeof *tau);
        double t0 = MPI_Wtime();
        const char *op = O.op;
        if (!strcmp(op, "gemm"))
            cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, A, n, B, n, 1, C, n);
        else if (!strcmp(op, "syrk"))
            cblas_dsyrk(CblasColMajor, CblasLower, CblasNoTrans, n, n, 1, A, n, 1, C, n);
        else if (!strcmp(op, "trsm"))
            cblas_dtrsm(CblasColMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, n, nrhs,
                        1, A, n, B, n);
        else if (!strcmp(op, "potrf"))
            LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', n, A, n);
        else if (!strcmp(op, "posv"))
            LAPACKE_dposv(LAPACK_COL_MAJOR, 'L', n, nrhs, A, n, B, n);
        else if (!strcmp(op, "getrf"))
            LAPACKE_dgetrf(LAPACK_COL_MAJOR, n, n, A, n, ipiv);
        else if (!strcmp(op, "gesv"))
            LAPACKE_dgesv(LAPACK_COL_MAJOR, n, nrhs, A, n, ipiv, B, n);
        else if (!strcmp(op, "geqrf"))
            LAPACKE_dgeqrf(LAPACK_COL_MAJOR, n, n, A, n, tau);
        else
            LAPACKE_dgels(LAPACK_COL_MAJOR, 'N', n, n, nrhs, A, n, B, n);
        t = MPI_Wtime() - t0;
        openblas_set_num_threads(1);
        free(ipiv);
        free(tau);
    }
    idle_barrier();
    MPI_Bcast(&t, 1, MPI_DOUBLE, 0, comm);
    free(A);
    free(B);
    free(C);
    return t;
}

/* ---- the vendor's GPU library (rank 0, one call on the whole matrices) ---- */

#ifdef DAGR_BENCH_CUDA
typedef struct vendor {
    double *A, *B, *C; /* device copies, n x n, ld n */
    void *work;        /* cuSOLVER's device workspace, and its host one */
    void *hwork;
    size_t work_bytes, hwork_bytes;
    int *info;
    cublasHandle_t blas;
    cusolverDnHandle_t solver;
    cusolverDnParams_t params;
    int uploaded_ab; /* gemm's A and B never change: uploaded once */
} vendor_t;
static vendor_t V;

static void cuda_die(const char *what, const char *why) {
    fprintf(stderr, "dagr-bench: %s: %s\n", what, why);
    MPI_Abort(MPI_COMM_WORLD, 1);
}
#define CU(call)                                                                                   \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) cuda_die(#call, cudaGetErrorString(e_));                            \
    } while (0)
#define CUBLAS(call)                                                                               \
    do {                                                                                           \
        cublasStatus_t e_ = (call);                                                                \
        if (e_ != CUBLAS_STATUS_SUCCESS) cuda_die(#call, cublasGetStatusName(e_));                 \
    } while (0)
#define CUSOLVER(call)                                                                             \
    do {                                                                                           \
        cusolverStatus_t e_ = (call);                                                              \
        if (e_ != CUSOLVER_STATUS_SUCCESS) {                                                       \
            char b_[32];                                                                           \
            snprintf(b_, sizeof b_, "cusolverStatus_t %d", (int)e_);                               \
            cuda_die(#call, b_);                                                                   \
        }                                                                                          \
    } while (0)

static void upload_panel(const double *panel, int64_t j0, int64_t w, void *user) {
    double *dst = user;
    CU(cudaMemcpy(dst + j0 * O.n, panel, (size_t)(O.n * w) * sizeof *panel,
                  cudaMemcpyHostToDevice));
}

/* Device memory and handles, once, on rank 0; cuSOLVER's workspace sized here, untimed. */
static void vendor_init(void) {
    size_t bytes = (size_t)(O.n * O.n) * sizeof(double);
    CU(cudaSetDevice(0));
    CU(cudaMalloc((void **)&V.A, bytes));
    if (!strcmp(O.op, "gemm")) {
        CU(cudaMalloc((void **)&V.B, bytes));
        CU(cudaMalloc((void **)&V.C, bytes));
        CUBLAS(cublasCreate(&V.blas));
    } else {
        CUSOLVER(cusolverDnCreate(&V.solver));
        CUSOLVER(cusolverDnCreateParams(&V.params));
        CUSOLVER(cusolverDnXpotrf_bufferSize(V.solver, V.params, CUBLAS_FILL_MODE_LOWER, O.n,
                                             CUDA_R_64F, V.A, O.n, CUDA_R_64F, &V.work_bytes,
                                             &V.hwork_bytes));
        CU(cudaMalloc(&V.work, V.work_bytes ? V.work_bytes : 1));
        CU(cudaMalloc((void **)&V.info, sizeof(int)));
        V.hwork = malloc(V.hwork_bytes ? V.hwork_bytes : 1);
    }
}

static void vendor_free(void) {
    if (V.blas) cublasDestroy(V.blas);
    if (V.params) cusolverDnDestroyParams(V.params);
    if (V.solver) cusolverDnDestroy(V.solver);
    cudaFree(V.A);
    cudaFree(V.B);
    cudaFree(V.C);
    cudaFree(V.work);
    cudaFree(V.info);
    free(V.hwork);
    V = (vendor_t){0};
}

static double run_vendor(inputs_t *in) {
    if (me == 0 && !V.A) vendor_init();
    /* Uploads (collective gathers by panels), untimed. */
    if (!strcmp(O.op, "gemm")) {
        if (!V.uploaded_ab) {
            for_panels(in->A0, upload_panel, V.A);
            for_panels(in->B0, upload_panel, V.B);
            V.uploaded_ab = 1;
        }
        for_panels(in->C0, upload_panel, V.C);
    } else {
        for_panels(in->A0, upload_panel, V.A);
    }
    double t = 0;
    if (me == 0) {
        cudaEvent_t e0, e1;
        CU(cudaEventCreate(&e0));
        CU(cudaEventCreate(&e1));
        CU(cudaDeviceSynchronize());
        CU(cudaEventRecord(e0, 0));
        if (!strcmp(O.op, "gemm")) {
            const double one = 1.0;
            int n = (int)O.n;
            CUBLAS(cublasDgemm(V.blas, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, V.A, n, V.B, n,
                               &one, V.C, n));
        } else {
            CUSOLVER(cusolverDnXpotrf(V.solver, V.params, CUBLAS_FILL_MODE_LOWER, O.n, CUDA_R_64F,
                                      V.A, O.n, CUDA_R_64F, V.work, V.work_bytes, V.hwork,
                                      V.hwork_bytes, V.info));
        }
        CU(cudaEventRecord(e1, 0));
        CU(cudaEventSynchronize(e1));
        float ms = 0;
        CU(cudaEventElapsedTime(&ms, e0, e1));
        t = ms * 1e-3;
        if (V.info) {
            int info = 0;
            CU(cudaMemcpy(&info, V.info, sizeof info, cudaMemcpyDeviceToHost));
            if (info != 0) fprintf(stderr, "dagr-bench: cusolverDnXpotrf: info = %d\n", info);
        }
        cudaEventDestroy(e0);
        cudaEventDestroy(e1);
    }
    idle_barrier();
    MPI_Bcast(&t, 1, MPI_DOUBLE, 0, comm);
    return t;
}
#else
static double run_vendor(inputs_t *in) {
    (void)in;
    return NAN; /* never called: --ref cublas is refused without CUDA */
}
static void vendor_free(void) {}
#endif

static const char *vendor_name(void) {
    return !strcmp(O.op, "gemm") ? "cublas" : "cusolver";
}

/* ---- residuals (rank 0, after a dagr run; serial, O(n^2)) ---- */

static double norm1(const double *A, int64_t m, int64_t n) {
    double best = 0;
    for (int64_t j = 0; j < n; j++) {
        double s = 0;
        for (int64_t i = 0; i < m; i++)
            s += fabs(A[i + j * m]);
        best = s > best ? s : best;
    }
    return best;
}
static double vnorm1(const double *x, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += fabs(x[i]);
    return s;
}

/* y = A x for a dense m x n A (ld m). */
static void mv(const double *A, int64_t m, int64_t n, const double *x, double *y) {
    cblas_dgemv(CblasColMajor, CblasNoTrans, (int)m, (int)n, 1, A, (int)m, x, 1, 0, y, 1);
}

/* The residual of gemm and potrf from column panels (for_panels), so that rank 0 holds
 * vectors and one panel, not whole matrices (n = 65536: 32 GiB each):
 *   gemm   y = C x; w = B0 x; z = A0 w + C0 x; scale ||A0|| ||B0|| + ||C0||
 *   potrf  y = A0 x; z = L (L^T x), panel by panel: for the columns J of a panel,
 *          v = L(:, J)^T x and z += L(:, J) v (L(:, J) is lower trapezoidal); scale ||A0||.
 * y += X(:, J) x(J) accumulates a product; the 1-norm is the largest column sum. */
typedef struct acc {
    const double *x; /* the vector multiplied */
    double *y;       /* += X x */
    double norm;     /* ||X||_1 so far */
    int lower;       /* potrf's L: v = L(:, J)^T x, y += L(:, J) v */
    double *v;
} acc_t;

static void acc_panel(const double *P, int64_t j0, int64_t w, void *user) {
    acc_t *a = user;
    int64_t n = O.n;
    if (!a->lower) {
        for (int64_t j = 0; j < w; j++) {
            double s = 0;
            for (int64_t i = 0; i < n; i++)
                s += fabs(P[i + j * n]);
            a->norm = s > a->norm ? s : a->norm;
        }
        cblas_dgemv(CblasColMajor, CblasNoTrans, (int)n, (int)w, 1, P, (int)n, a->x + j0, 1, 1,
                    a->y, 1);
        return;
    }
    /* T = P(j0 .. j0 + w), lower triangular; R = the rows below it. */
    const double *T = P + j0, *R = P + j0 + w;
    int64_t below = n - j0 - w;
    memcpy(a->v, a->x + j0, (size_t)w * sizeof *a->v);
    cblas_dtrmv(CblasColMajor, CblasLower, CblasTrans, CblasNonUnit, (int)w, T, (int)n, a->v, 1);
    if (below > 0)
        cblas_dgemv(CblasColMajor, CblasTrans, (int)below, (int)w, 1, R, (int)n, a->x + j0 + w, 1,
                    1, a->v, 1);
    double *t = a->v + w; /* T v, added to y(J) */
    memcpy(t, a->v, (size_t)w * sizeof *t);
    cblas_dtrmv(CblasColMajor, CblasLower, CblasNoTrans, CblasNonUnit, (int)w, T, (int)n, t, 1);
    cblas_daxpy((int)w, 1, t, 1, a->y + j0, 1);
    if (below > 0)
        cblas_dgemv(CblasColMajor, CblasNoTrans, (int)below, (int)w, 1, R, (int)n, a->v, 1, 1,
                    a->y + j0 + w, 1);
}

static double residual_panels(inputs_t *in) {
    int64_t n = O.n;
    double *x = malloc((size_t)n * sizeof *x), *y = calloc((size_t)n, sizeof *y);
    double *z = calloc((size_t)n, sizeof *z), *w = calloc((size_t)n, sizeof *w);
    double *v = malloc((size_t)(2 * n) * sizeof *v);
    if (!x || !y || !z || !w || !v) {
        fprintf(stderr, "dagr-bench: no memory for the residual's vectors\n");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    for (int64_t i = 0; i < n; i++)
        x[i] = 1.0 / (double)(1 + i % 7) - 0.4;
    if (me == 0) openblas_set_num_threads((int)sysconf(_SC_NPROCESSORS_ONLN));
    double scale;
    if (!strcmp(O.op, "gemm")) {
        acc_t c = {x, y, 0, 0, NULL}, b0 = {x, w, 0, 0, NULL}, a0 = {w, z, 0, 0, NULL};
        acc_t c0 = {x, z, 0, 0, NULL};
        for_panels(in->C, acc_panel, &c);
        for_panels(in->B0, acc_panel, &b0);
        for_panels(in->A0, acc_panel, &a0); /* after B0: w complete */
        for_panels(in->C0, acc_panel, &c0);
        scale = a0.norm * b0.norm + c0.norm;
    } else {
        acc_t a0 = {x, y, 0, 0, NULL}, l = {x, z, 0, 1, v};
        for_panels(in->A0, acc_panel, &a0);
        for_panels(in->A, acc_panel, &l);
        scale = a0.norm;
    }
    double r = NAN;
    if (me == 0) {
        openblas_set_num_threads(1);
        double d = 0;
        for (int64_t i = 0; i < n; i++)
            d += fabs(y[i] - z[i]);
        r = d / (scale * vnorm1(x, n) * (double)n * 0x1p-52);
    }
    MPI_Bcast(&r, 1, MPI_DOUBLE, 0, comm);
    free(x);
    free(y);
    free(z);
    free(w);
    free(v);
    return r;
}

static double residual(inputs_t *in) {
    if (!strcmp(O.op, "gemm") || !strcmp(O.op, "potrf")) return residual_panels(in);
    double *A0 = gather0(in->A0), *A = gather0(in->A);
    double *B0 = in->B0 ? gather0(in->B0) : NULL, *B = in->B ? gather0(in->B) : NULL;
    double *C0 = in->C0 ? gather0(in->C0) : NULL, *C = in->C ? gather0(in->C) : NULL;
    int64_t *piv = NULL;
    if (!strcmp(O.op, "getrf")) {
        /* the pivots come from a separate factorization of the same input */
        dagr_pivots_t *p = NULL;
        refresh(in);
        TRY(dagr_getrf(in->A, &p));
        piv = malloc((size_t)O.n * sizeof *piv);
        TRY(dagr_pivots_fetch(p, piv));
        dagr_pivots_destroy(&p);
        free(A);
        A = gather0(in->A);
    }
    double r = NAN;
    if (me == 0) {
        int64_t n = O.n, k = in->nrhs;
        double eps = 0x1p-52, *x = malloc((size_t)(n > k ? n : k) * sizeof *x);
        double *y = calloc((size_t)n, sizeof *y), *z = calloc((size_t)n, sizeof *z);
        double *w = calloc((size_t)n, sizeof *w);
        for (int64_t i = 0; i < (n > k ? n : k); i++)
            x[i] = 1.0 / (double)(1 + i % 7) - 0.4;
        const char *op = O.op;
        double scale = 1;
        if (!strcmp(op, "syrk")) { /* lower triangle of C vs A A^T + C0 */
            cblas_dsymv(CblasColMajor, CblasLower, (int)n, 1, C, (int)n, x, 1, 0, y, 1);
            cblas_dgemv(CblasColMajor, CblasTrans, (int)n, (int)n, 1, A0, (int)n, x, 1, 0, w, 1);
            mv(A0, n, n, w, z);
            cblas_dsymv(CblasColMajor, CblasLower, (int)n, 1, C0, (int)n, x, 1, 1, z, 1);
            scale = norm1(A0, n, n) * norm1(A0, n, n) + norm1(C0, n, n);
        } else if (!strcmp(op, "getrf")) { /* P A0 x vs L (U x) */
            mv(A0, n, n, x, y);
            for (int64_t i = 0; i < n; i++) { /* apply the interchanges in order */
                int64_t p = piv[i] - 1;
                double t = y[i];
                y[i] = y[p];
                y[p] = t;
            }
            memcpy(z, x, (size_t)n * sizeof *z);
            cblas_dtrmv(CblasColMajor, CblasUpper, CblasNoTrans, CblasNonUnit, (int)n, A, (int)n, z,
                        1);
            cblas_dtrmv(CblasColMajor, CblasLower, CblasNoTrans, CblasUnit, (int)n, A, (int)n, z,
                        1);
            scale = norm1(A0, n, n);
        } else if (!strcmp(op, "geqrf")) { /* A0^T A0 x vs R^T R x */
            mv(A0, n, n, x, w);
            cblas_dgemv(CblasColMajor, CblasTrans, (int)n, (int)n, 1, A0, (int)n, w, 1, 0, y, 1);
            memcpy(z, x, (size_t)n * sizeof *z);
            cblas_dtrmv(CblasColMajor, CblasUpper, CblasNoTrans, CblasNonUnit, (int)n, A, (int)n, z,
                        1);
            cblas_dtrmv(CblasColMajor, CblasUpper, CblasTrans, CblasNonUnit, (int)n, A, (int)n, z,
                        1);
            scale = norm1(A0, n, n) * norm1(A0, n, n);
        } else { /* solves (trsm, posv, gesv, gels): B0 x vs A0 (X x) */
            const double *X = B;
            mv(B0, n, k, x, y);
            mv(X, n, k, x, w);
            if (!strcmp(op, "trsm")) { /* only A0's lower triangle is the triangular A */
                memcpy(z, w, (size_t)n * sizeof *z);
                cblas_dtrmv(CblasColMajor, CblasLower, CblasNoTrans, CblasNonUnit, (int)n, A0,
                            (int)n, z, 1);
            } else {
                mv(A0, n, n, w, z);
            }
            scale = norm1(A0, n, n) * norm1(X, n, k);
        }
        double d = 0;
        for (int64_t i = 0; i < n; i++)
            d += fabs(y[i] - z[i]);
        r = d / (scale * vnorm1(x, n) * (double)n * eps);
        free(x);
        free(y);
        free(z);
        free(w);
    }
    MPI_Bcast(&r, 1, MPI_DOUBLE, 0, comm);
    free(A0);
    free(A);
    free(B0);
    free(B);
    free(C0);
    free(C);
    free(piv);
    return r;
}

/* ---- driver ---- */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double dagr_best = NAN; /* dagr's best time, for the vendor's ratio */

static void report(const char *impl, double *t, int nt, double residual, int64_t nrhs) {
    qsort(t, (size_t)nt, sizeof *t, cmp_double);
    if (!strcmp(impl, "dagr")) dagr_best = t[0];
    if (me != 0) return;
    printf("{\"op\":\"%s\",\"n\":%lld,\"nb\":%lld,\"grid\":\"%dx%d\",\"ranks\":%d,\"threads\":%d,"
           "\"seconds\":%.6f,\"seconds_median\":%.6f,\"gflops\":%.3f,",
           O.op, (long long)O.n, (long long)O.nb, O.p, O.q, nranks,
           strcmp(impl, "blas") ? dagr_threads(ctx) : (int)sysconf(_SC_NPROCESSORS_ONLN), t[0],
           t[nt / 2], flops(nrhs) / t[0] * 1e-9);
    if (isnan(residual))
        printf("\"residual\":null,");
    else
        printf("\"residual\":%.3g,", residual);
    if (!strcmp(impl, "dagr") && (!strcmp(O.op, "geqrf") || !strcmp(O.op, "gels")))
        printf("\"variant\":%d,\"ib\":%d,", O.variant, O.ib);
    if (!strcmp(impl, "cublas") || !strcmp(impl, "cusolver")) {
        printf("\"ratio_dagr_vendor\":%.4f,", t[0] / dagr_best);
        fprintf(stderr,
                "dagr-bench: %s n=%lld: dagr %.3f s (%.1f GFLOP/s), %s %.3f s (%.1f GFLOP/s): "
                "dagr runs at %.3f of %s's speed\n",
                O.op, (long long)O.n, dagr_best, flops(nrhs) / dagr_best * 1e-9, impl, t[0],
                flops(nrhs) / t[0] * 1e-9, t[0] / dagr_best, impl);
    }
    printf("\"impl\":\"%s\"}\n", impl);
    fflush(stdout);
}

static void usage(void) {
    if (me == 0)
        fprintf(stderr, "usage: dagr-bench --op gemm|syrk|trsm|potrf|posv|getrf|gesv|geqrf|gels "
                        "[--n N] [--nb NB] [--grid PxQ] [--repeat R] [--threads T] "
                        "[--ref scalapack,blas,cublas,cusolver] [--warmup W] [--require-gpu 0|1] "
                        "[--ib IB] [--variant "
                        "V (geqrf, gels: dagr's QR variant, "
                        "0 = default)]\n");
}

int main(int argc, char **argv) {
    O = (opts_t){.op = "gemm", .n = 2048, .nb = 0, .repeat = 3, .warmup = 1}; /* nb 0: dagr's */
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &(int){0});
    MPI_Comm_rank(MPI_COMM_WORLD, &me);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            usage();
            return 2;
        }
        if (!strcmp(a, "--op"))
            O.op = v;
        else if (!strcmp(a, "--n"))
            O.n = atoll(v);
        else if (!strcmp(a, "--nb"))
            O.nb = atoll(v);
        else if (!strcmp(a, "--grid"))
            sscanf(v, "%dx%d", &O.p, &O.q);
        else if (!strcmp(a, "--repeat"))
            O.repeat = atoi(v);
        else if (!strcmp(a, "--threads"))
            O.threads = atoi(v);
        else if (!strcmp(a, "--variant"))
            O.variant = atoi(v);
        else if (!strcmp(a, "--ib"))
            O.ib = atoi(v);
        else if (!strcmp(a, "--warmup"))
            O.warmup = atoi(v);
        else if (!strcmp(a, "--require-gpu"))
            O.require_gpu = atoi(v);
        else if (!strcmp(a, "--ref")) {
            char list[256];
            snprintf(list, sizeof list, "%s", v);
            for (char *save = NULL, *r = strtok_r(list, ",", &save); r;
                 r = strtok_r(NULL, ",", &save)) {
                if (!strcmp(r, "scalapack"))
                    O.ref_scalapack = 1;
                else if (!strcmp(r, "blas"))
                    O.ref_blas = 1;
                else if (!strcmp(r, "cublas") || !strcmp(r, "cusolver"))
                    O.ref_vendor = 1;
                else {
                    if (me == 0) fprintf(stderr, "dagr-bench: unknown reference '%s'\n", r);
                    usage();
                    return 2;
                }
            }
        } else {
            usage();
            return 2;
        }
        i++;
    }
    const char *ops = " gemm syrk trsm potrf posv getrf gesv geqrf gels ";
    char key[32];
    snprintf(key, sizeof key, " %s ", O.op);
    if (!strstr(ops, key) || O.n <= 0 || O.nb < 0 || O.repeat <= 0 || O.warmup < 0) {
        usage();
        return 2;
    }
#ifndef DAGR_BENCH_CUDA
    if (O.ref_vendor) {
        if (me == 0)
            fprintf(stderr, "dagr-bench: --ref cublas/cusolver: this dagr-bench was built without "
                            "CUDA\n");
        MPI_Finalize();
        return 3;
    }
#endif
    if (O.ref_vendor && strcmp(O.op, "gemm") && strcmp(O.op, "potrf")) {
        if (me == 0)
            fprintf(stderr, "dagr-bench: --ref cublas/cusolver: only for --op gemm (cublasDgemm) "
                            "and --op potrf (cusolverDnXpotrf); that reference is skipped\n");
        O.ref_vendor = 0;
    }
    if (O.p <= 0 || O.q <= 0) { /* default: 1 x ranks */
        O.p = 1;
        O.q = nranks;
    }
    dagr_config_t cfg;
    dagr_config_init(&cfg);
    cfg.threads = O.threads;
    TRY(dagr_init(&argc, &argv, &cfg, &ctx));
    comm = dagr_comm(ctx);
    if (O.ref_vendor || O.require_gpu) { /* rank 0's GPU: none, no run (exit 3) */
        dagr_job_info_t job;
        TRY(dagr_job_info(ctx, &job));
        int gpus = job.gpus;
        MPI_Bcast(&gpus, 1, MPI_INT, 0, comm);
        if (gpus == 0) {
            if (me == 0)
                fprintf(stderr,
                        "dagr-bench: %s needs a GPU on rank 0, which has none (%s): "
                        "nothing run\n",
                        O.ref_vendor ? (!strcmp(O.op, "gemm") ? "--ref cublas" : "--ref cusolver")
                                     : "--require-gpu 1",
                        job.gpu_note);
            dagr_finalize(&ctx);
            MPI_Finalize();
            return 3;
        }
    }
    if (O.nb == 0) {
        bool qr = !strcmp(O.op, "geqrf") || !strcmp(O.op, "gels");
        TRY(dagr_linalg_tile_size_for(ctx, qr ? DAGR_LA_QR : DAGR_LA_ANY, O.n, O.n, &O.nb));
    }
    inputs_t in = {0};
    setup(&in);
    double *td = calloc((size_t)O.repeat, sizeof *td), *ts = calloc((size_t)O.repeat, sizeof *ts);
    double *tb = calloc((size_t)O.repeat, sizeof *tb), *tv = calloc((size_t)O.repeat, sizeof *tv);
    for (int r = 0; r < O.warmup; r++) { /* first-touch of the tiles, the transfer paths */
        run_dagr(&in);
        if (O.ref_vendor) run_vendor(&in); /* its kernels' first load */
    }
    for (int r = 0; r < O.repeat; r++) {
        td[r] = run_dagr(&in);
        if (O.ref_scalapack) ts[r] = run_scalapack(&in);
        if (O.ref_blas) tb[r] = run_blas(&in);
        if (O.ref_vendor) tv[r] = run_vendor(&in);
        if (me == 0 && O.ref_vendor) /* a run cut short by a time limit still says this much */
            fprintf(stderr, "dagr-bench: repeat %d: dagr %.3f s, %s %.3f s\n", r + 1, td[r],
                    vendor_name(), tv[r]);
        else if (me == 0 && O.require_gpu)
            fprintf(stderr, "dagr-bench: repeat %d: dagr %.3f s\n", r + 1, td[r]);
    }
    /* The residual is dagr's last result: run it again only if the ScaLAPACK reference
     * (whose refresh reset the working arrays) ran after it. */
    if (O.ref_scalapack) run_dagr(&in);
    double res = residual(&in);
    report("dagr", td, O.repeat, res, in.nrhs);
    if (O.ref_scalapack) report("scalapack", ts, O.repeat, NAN, in.nrhs);
    if (O.ref_blas) report("blas", tb, O.repeat, NAN, in.nrhs);
    if (O.ref_vendor) report(vendor_name(), tv, O.repeat, NAN, in.nrhs);
    int bad = !(res < 100);
    if (bad && me == 0) fprintf(stderr, "dagr-bench: residual %g is too large\n", res);
    if (me == 0 && O.ref_vendor) vendor_free();
    free_panel();
    if (in.a_shared) in.A = NULL;
    if (in.b_shared) in.B = NULL;
    dagr_darray_destroy(&in.A0);
    dagr_darray_destroy(&in.A);
    dagr_darray_destroy(&in.B0);
    dagr_darray_destroy(&in.B);
    dagr_darray_destroy(&in.C0);
    dagr_darray_destroy(&in.C);
    free(td);
    free(ts);
    free(tb);
    free(tv);
    dagr_finalize(&ctx);
    MPI_Finalize();
    return bad;
}
