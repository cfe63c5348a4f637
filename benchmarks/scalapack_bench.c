/* scalapack_bench: a plain ScaLAPACK program (MPI, BLACS, ScaLAPACK; no dagr in its source)
 * that times pdpotrf_, pdgetrf_, pdgeqrf_ and pdgemm_. Run it as it is for ScaLAPACK's
 * figures, or with LD_PRELOAD=<build>/scalapack/libdagr-scalapack.so for dagr's through the
 * drop-in library (benchmarks/dropin_bench.sh runs both, interleaved).
 *
 * Usage: scalapack_bench [--op potrf|getrf|geqrf|gemm[,...]] [--n N] [--nb NB] [--reps R]
 *                        [--grid PxQ]
 *
 * Per op: the input is generated before every repetition (from the global indices, so the
 * same matrix on any grid), only the ScaLAPACK call is timed (MPI_Barrier before and after,
 * MPI_Wtime, the slowest rank's time), best of R. Then INFO and a cheap residual are checked:
 *   potrf  solve with pdpotrs_, scaled residual ||A x - b|| / (||A|| ||x|| n eps) (pdgemv_)
 *   getrf  the same with pdgetrs_
 *   geqrf  ||R||_F against ||A||_F (Q is orthogonal: equal up to rounding)
 *   gemm   one column of C = A B recomputed by pdgemv_, scaled by n eps ||A|| max|B|
 * Rank 0 prints one line per op:
 *   op=potrf n=4096 nb=256 grid=1x2 ranks=2 seconds=... gflops=... check=ok residual=...
 * Exits 1 when any check fails (check=FAIL) or an argument is wrong. */
#include <mpi.h>

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* BLACS's C interface and ScaLAPACK's Fortran symbols (Debian ships no headers). */
void Cblacs_pinfo(int *mypnum, int *nprocs);
void Cblacs_get(int ctxt, int what, int *val);
void Cblacs_gridinit(int *ctxt, const char *order, int nprow, int npcol);
void Cblacs_gridinfo(int ctxt, int *nprow, int *npcol, int *myrow, int *mycol);
void Cblacs_gridexit(int ctxt);
void Cblacs_exit(int notdone);
int numroc_(const int *n, const int *nb, const int *iproc, const int *isrc, const int *nprocs);
void descinit_(int *desc, const int *m, const int *n, const int *mb, const int *nb,
               const int *irsrc, const int *icsrc, const int *ictxt, const int *lld, int *info);
void pdpotrf_(const char *uplo, const int *n, double *a, const int *ia, const int *ja,
              const int *desca, int *info);
void pdpotrs_(const char *uplo, const int *n, const int *nrhs, const double *a, const int *ia,
              const int *ja, const int *desca, double *b, const int *ib, const int *jb,
              const int *descb, int *info);
void pdgetrf_(const int *m, const int *n, double *a, const int *ia, const int *ja, const int *desca,
              int *ipiv, int *info);
void pdgetrs_(const char *trans, const int *n, const int *nrhs, const double *a, const int *ia,
              const int *ja, const int *desca, const int *ipiv, double *b, const int *ib,
              const int *jb, const int *descb, int *info);
void pdgeqrf_(const int *m, const int *n, double *a, const int *ia, const int *ja, const int *desca,
              double *tau, double *work, const int *lwork, int *info);
void pdgemm_(const char *transa, const char *transb, const int *m, const int *n, const int *k,
             const double *alpha, const double *a, const int *ia, const int *ja, const int *desca,
             const double *b, const int *ib, const int *jb, const int *descb, const double *beta,
             double *c, const int *ic, const int *jc, const int *descc);
void pdgemv_(const char *trans, const int *m, const int *n, const double *alpha, const double *a,
             const int *ia, const int *ja, const int *desca, const double *x, const int *ix,
             const int *jx, const int *descx, const int *incx, const double *beta, double *y,
             const int *iy, const int *jy, const int *descy, const int *incy);
double pdlange_(const char *norm, const int *m, const int *n, const double *a, const int *ia,
                const int *ja, const int *desca, double *work);

static const int i_one = 1, i_zero = 0;

/* The process grid and this process's place in it (myrow < 0: outside the grid). */
typedef struct grid {
    int ctxt, nprow, npcol, myrow, mycol;
} grid_t;

/* A ScaLAPACK array (m x n, nb x nb blocks, sources 0, 0) and its local part. */
typedef struct array {
    int desc[9];
    int m, n, mloc, nloc, lld;
    double *a;
} array_t;

/* One value from the global indices: the same matrix on any grid. Uniform in [-0.5, 0.5). */
static double value(uint64_t seed, uint64_t i, uint64_t j) {
    uint64_t z =
        seed * 0x9E3779B97F4A7C15ull + i * 0xBF58476D1CE4E5B9ull + j * 0x94D049BB133111EBull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-53 - 0.5;
}

/* Global index of local index l (block-cyclic, source 0). */
static int global_of(int l, int nb, int me, int nprocs) {
    return ((l / nb) * nprocs + me) * nb + l % nb;
}

/* Makes a (allocated, not filled) on the grid; outside the grid an empty array. Returns 0, or
 * -1 when descinit_ refuses or memory runs out. */
static int array_make(array_t *x, const grid_t *g, int m, int n, int nb) {
    memset(x, 0, sizeof *x);
    x->m = m;
    x->n = n;
    if (g->myrow < 0) return 0;
    x->mloc = numroc_(&m, &nb, &g->myrow, &i_zero, &g->nprow);
    x->nloc = numroc_(&n, &nb, &g->mycol, &i_zero, &g->npcol);
    x->lld = x->mloc > 1 ? x->mloc : 1;
    int info = 0;
    descinit_(x->desc, &m, &n, &nb, &nb, &i_zero, &i_zero, &g->ctxt, &x->lld, &info);
    if (info != 0) return -1;
    x->a = malloc((size_t)x->lld * (size_t)(x->nloc > 0 ? x->nloc : 1) * sizeof(double));
    return x->a ? 0 : -1;
}

/* Fills x with random values of seed; symmetric (from the unordered pair of indices) plus
 * shift on the diagonal when spd, which makes it positive definite for shift = n. */
static void array_fill(array_t *x, const grid_t *g, uint64_t seed, int spd, double shift) {
    if (g->myrow < 0) return;
    int nb = x->desc[5];
    for (int lj = 0; lj < x->nloc; lj++) {
        uint64_t j = (uint64_t)global_of(lj, nb, g->mycol, g->npcol);
        double *col = x->a + (size_t)lj * x->lld;
        for (int li = 0; li < x->mloc; li++) {
            uint64_t i = (uint64_t)global_of(li, nb, g->myrow, g->nprow);
            if (!spd)
                col[li] = value(seed, i, j);
            else
                col[li] = (i <= j ? value(seed, i, j) : value(seed, j, i)) + (i == j ? shift : 0);
        }
    }
}

/* Sum of squares of the local entries on or above the diagonal (R of a QR), over the grid. */
static double upper_fro(const array_t *x, const grid_t *g) {
    double s = 0;
    if (g->myrow >= 0) {
        int nb = x->desc[5];
        for (int lj = 0; lj < x->nloc; lj++) {
            int j = global_of(lj, nb, g->mycol, g->npcol);
            for (int li = 0; li < x->mloc; li++) {
                if (global_of(li, nb, g->myrow, g->nprow) > j) continue;
                double v = x->a[li + (size_t)lj * x->lld];
                s += v * v;
            }
        }
    }
    MPI_Allreduce(MPI_IN_PLACE, &s, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    return sqrt(s);
}

typedef struct result {
    double seconds; /* best of the repetitions, slowest rank */
    double residual;
    int ok;
} result_t;

enum op { OP_POTRF, OP_GETRF, OP_GEQRF, OP_GEMM, NOPS };
static const char *op_name[NOPS] = {"potrf", "getrf", "geqrf", "gemm"};

static double flops_of(enum op op, double n) {
    switch (op) {
    case OP_POTRF:
        return n * n * n / 3;
    case OP_GETRF:
        return 2 * n * n * n / 3;
    case OP_GEQRF:
        return 4 * n * n * n / 3;
    default:
        return 2 * n * n * n;
    }
}

static double now_synced(void) {
    MPI_Barrier(MPI_COMM_WORLD);
    return MPI_Wtime();
}

/* The slowest rank's time of one call (every rank timed the same barriers). */
static double slowest(double t) {
    MPI_Allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return t;
}

/* ||A x - b||_inf / (||A||_inf ||x||_inf n eps) for the regenerated A (seed, spd), with x the
 * solution in xb and b regenerated (seed + 1); xb is overwritten. Collective. */
static double solve_residual(array_t *A, array_t *xb, const grid_t *g, uint64_t seed, int spd,
                             int n) {
    double r = 0;
    if (g->myrow >= 0) {
        array_t b;
        double *work = malloc(((size_t)A->mloc + (size_t)A->nloc + 1) * sizeof(double));
        if (array_make(&b, g, n, 1, A->desc[5]) != 0 || !work) {
            fprintf(stderr, "scalapack_bench: out of memory for the check\n");
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        array_fill(&b, g, seed + 1, 0, 0);
        array_fill(A, g, seed, spd, n);
        double xnorm = pdlange_("I", &n, &i_one, xb->a, &i_one, &i_one, xb->desc, work);
        double anorm = pdlange_("I", &n, &n, A->a, &i_one, &i_one, A->desc, work);
        const double one = 1, minus_one = -1;
        /* b = A x - b */
        pdgemv_("N", &n, &n, &one, A->a, &i_one, &i_one, A->desc, xb->a, &i_one, &i_one, xb->desc,
                &i_one, &minus_one, b.a, &i_one, &i_one, b.desc, &i_one);
        double rnorm = pdlange_("I", &n, &i_one, b.a, &i_one, &i_one, b.desc, work);
        r = rnorm / (anorm * xnorm * n * DBL_EPSILON);
        free(b.a);
        free(work);
    }
    MPI_Allreduce(MPI_IN_PLACE, &r, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return r;
}

/* Runs op reps times on the grid; returns its figures. Collective over MPI_COMM_WORLD (the
 * processes outside the grid only take part in the barriers and reductions). */
static result_t run_op(enum op op, int n, int nb, int reps, const grid_t *g) {
    result_t res = {.seconds = INFINITY, .residual = 0, .ok = 1};
    const uint64_t seed = 12345;
    int in = g->myrow >= 0;
    array_t A, B, C, xb;
    int *ipiv = NULL;
    double *tau = NULL, *work = NULL;
    int lwork = 0, info = 0, bad = 0;
    memset(&B, 0, sizeof B);
    memset(&C, 0, sizeof C);
    memset(&xb, 0, sizeof xb);
    bad |= array_make(&A, g, n, n, nb) != 0;
    if (op == OP_GEMM) bad |= array_make(&B, g, n, n, nb) != 0 || array_make(&C, g, n, n, nb) != 0;
    if (op == OP_POTRF || op == OP_GETRF) bad |= array_make(&xb, g, n, 1, nb) != 0;
    if (in && op == OP_GETRF) bad |= !(ipiv = malloc(((size_t)A.mloc + nb) * sizeof(int)));
    if (in && op == OP_GEQRF) {
        bad |= !(tau = malloc(((size_t)A.nloc + 1) * sizeof(double)));
        /* the workspace from a query, as real programs size it */
        double query = 0;
        const int minus_one = -1;
        pdgeqrf_(&n, &n, A.a, &i_one, &i_one, A.desc, tau, &query, &minus_one, &info);
        lwork = (int)query;
        bad |= info != 0 || !(work = malloc(((size_t)lwork + 1) * sizeof(double)));
    }
    MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
    if (bad) {
        fprintf(stderr, "scalapack_bench: %s n=%d: could not allocate or describe the arrays\n",
                op_name[op], n);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }

    double a_fro = 0;
    for (int rep = 0; rep < reps; rep++) {
        array_fill(&A, g, seed, op == OP_POTRF, n);
        if (op == OP_GEMM) {
            array_fill(&B, g, seed + 2, 0, 0);
            array_fill(&C, g, seed + 3, 0, 0);
        }
        if (op == OP_GEQRF && rep == 0) {
            /* every repetition factors the same matrix */
            a_fro = in ? pdlange_("F", &n, &n, A.a, &i_one, &i_one, A.desc, NULL) : 0;
            MPI_Allreduce(MPI_IN_PLACE, &a_fro, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        }
        info = 0;
        double t0 = now_synced();
        if (in) {
            const double one = 1, zero = 0;
            switch (op) {
            case OP_POTRF:
                pdpotrf_("L", &n, A.a, &i_one, &i_one, A.desc, &info);
                break;
            case OP_GETRF:
                pdgetrf_(&n, &n, A.a, &i_one, &i_one, A.desc, ipiv, &info);
                break;
            case OP_GEQRF:
                pdgeqrf_(&n, &n, A.a, &i_one, &i_one, A.desc, tau, work, &lwork, &info);
                break;
            default:
                pdgemm_("N", "N", &n, &n, &n, &one, A.a, &i_one, &i_one, A.desc, B.a, &i_one,
                        &i_one, B.desc, &zero, C.a, &i_one, &i_one, C.desc);
                break;
            }
        }
        double t = slowest(now_synced() - t0);
        if (t < res.seconds) res.seconds = t;
        int info_bad = info != 0;
        MPI_Allreduce(MPI_IN_PLACE, &info_bad, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
        if (info_bad) {
            fprintf(stderr, "scalapack_bench: %s n=%d: INFO = %d on some process\n", op_name[op], n,
                    info);
            res.ok = 0;
        }
    }

    /* The check, on the last repetition's result. */
    if (res.ok) {
        switch (op) {
        case OP_POTRF:
        case OP_GETRF: {
            int sinfo = 0;
            array_fill(&xb, g, seed + 1, 0, 0);
            if (in && op == OP_POTRF)
                pdpotrs_("L", &n, &i_one, A.a, &i_one, &i_one, A.desc, xb.a, &i_one, &i_one,
                         xb.desc, &sinfo);
            else if (in)
                pdgetrs_("N", &n, &i_one, A.a, &i_one, &i_one, A.desc, ipiv, xb.a, &i_one, &i_one,
                         xb.desc, &sinfo);
            MPI_Allreduce(MPI_IN_PLACE, &sinfo, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
            res.residual = solve_residual(&A, &xb, g, seed, op == OP_POTRF, n);
            res.ok = sinfo == 0 && res.residual < 100;
            break;
        }
        case OP_GEQRF: {
            double r_fro = upper_fro(&A, g);
            res.residual = fabs(r_fro - a_fro) / (a_fro * n * DBL_EPSILON);
            res.ok = res.residual < 100;
            break;
        }
        default: {
            /* C(:, j) = A B(:, j) - C(:, j) for one column, then its largest entry */
            int j = n / 2 + 1;
            double r = 0;
            if (in) {
                double *w = malloc(((size_t)A.mloc + (size_t)A.nloc + 1) * sizeof(double));
                if (!w) MPI_Abort(MPI_COMM_WORLD, 1);
                const double one = 1, minus_one = -1;
                double anorm = pdlange_("I", &n, &n, A.a, &i_one, &i_one, A.desc, w);
                double bmax = pdlange_("M", &n, &n, B.a, &i_one, &i_one, B.desc, w);
                pdgemv_("N", &n, &n, &one, A.a, &i_one, &i_one, A.desc, B.a, &i_one, &j, B.desc,
                        &i_one, &minus_one, C.a, &i_one, &j, C.desc, &i_one);
                double diff = pdlange_("M", &n, &i_one, C.a, &i_one, &j, C.desc, w);
                r = diff / (anorm * bmax * n * DBL_EPSILON);
                free(w);
            }
            MPI_Allreduce(MPI_IN_PLACE, &r, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
            res.residual = r;
            res.ok = r < 100;
            break;
        }
        }
    }
    free(A.a);
    free(B.a);
    free(C.a);
    free(xb.a);
    free(ipiv);
    free(tau);
    free(work);
    return res;
}

static void usage(void) {
    fprintf(stderr, "usage: scalapack_bench [--op potrf|getrf|geqrf|gemm[,...]] [--n N] "
                    "[--nb NB] [--reps R] [--grid PxQ]\n");
}

int main(int argc, char **argv) {
    int provided, rank, size;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_SINGLE, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);

    int n = 4096, nb = 256, reps = 3, p = 0, q = 0, want[NOPS] = {0}, any = 0, argbad = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            argbad = 1;
        } else if (!strcmp(argv[i], "--n")) {
            n = atoi(v), i++;
        } else if (!strcmp(argv[i], "--nb")) {
            nb = atoi(v), i++;
        } else if (!strcmp(argv[i], "--reps")) {
            reps = atoi(v), i++;
        } else if (!strcmp(argv[i], "--grid")) {
            if (sscanf(v, "%dx%d", &p, &q) != 2) argbad = 1;
            i++;
        } else if (!strcmp(argv[i], "--op")) {
            char buf[256];
            snprintf(buf, sizeof buf, "%s", v);
            for (char *s = strtok(buf, ","); s; s = strtok(NULL, ",")) {
                int k = 0;
                while (k < NOPS && strcmp(s, op_name[k]) != 0)
                    k++;
                if (k == NOPS)
                    argbad = 1;
                else
                    want[k] = any = 1;
            }
            i++;
        } else {
            argbad = 1;
        }
        if (argbad) break;
    }
    if (!any)
        for (int k = 0; k < NOPS; k++)
            want[k] = 1;
    if (p == 0) {
        /* the squarest grid of all ranks, p <= q */
        for (p = 1; (p + 1) * (p + 1) <= size; p++)
            ;
        while (size % p)
            p--;
        q = size / p;
    }
    if (argbad || n < 1 || nb < 1 || reps < 1 || p < 1 || q < 1 || p * q > size) {
        if (rank == 0) usage();
        MPI_Finalize();
        return 1;
    }

    grid_t g;
    int me, np;
    Cblacs_pinfo(&me, &np);
    Cblacs_get(-1, 0, &g.ctxt);
    Cblacs_gridinit(&g.ctxt, "Row", p, q);
    Cblacs_gridinfo(g.ctxt, &g.nprow, &g.npcol, &g.myrow, &g.mycol);

    int failed = 0;
    for (int k = 0; k < NOPS; k++) {
        if (!want[k]) continue;
        result_t r = run_op((enum op)k, n, nb, reps, &g);
        failed |= !r.ok;
        if (rank == 0) {
            printf("op=%s n=%d nb=%d grid=%dx%d ranks=%d seconds=%.4f gflops=%.2f check=%s "
                   "residual=%.3g\n",
                   op_name[k], n, nb, p, q, size, r.seconds,
                   flops_of((enum op)k, n) / r.seconds / 1e9, r.ok ? "ok" : "FAIL", r.residual);
            fflush(stdout);
        }
    }

    if (g.myrow >= 0) Cblacs_gridexit(g.ctxt);
    Cblacs_exit(1); /* MPI stays up: the program ends it */
    MPI_Finalize();
    return failed;
}
