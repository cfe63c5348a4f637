/* ScaLAPACK interoperability scenario: dagr_darray_from_scalapack,
 * dagr_darray_scalapack_acquire and dagr_darray_scalapack_release against ScaLAPACK itself.
 *
 * Usage: darray_scalapack
 *
 * Runs over every grid of 1x1, 1x2, 2x1, 2x2, 1x3 that fits the rank count (ranks left out of
 * a grid take part as ranks outside it):
 *   wrap          ScaLAPACK arrays made with descinit_ (grids from Cblacs_gridinit and from a
 *                 permuted Cblacs_gridmap; sizes not dividing evenly; nonzero RSRC/CSRC; LLD
 *                 larger than the local rows) wrapped as DArrays: tile owners, every local
 *                 element against the global element it must hold (an independent index
 *                 computation), tasks seeing the local array itself (zero copy), dagr writes
 *                 landing in the local array, direct writes between acquire and release
 *                 reaching dagr, padding rows never touched.
 *   gemm          C = alpha A B + beta C by pdgemm_ on dagr-made arrays (non-square, tiles
 *                 not square, and A and C as views at a tile offset) acquired, released with
 *                 writeback and checked against cblas_dgemm on the gathered inputs.
 *   gemm_custom   the same with A on a custom distribution (acquired through a copy) and
 *                 writeback = 0 leaving an array unchanged.
 *   gemm_wrapped  the same on wrapped arrays (acquire returns the user's own arrays).
 *   bad_desc      malformed descriptors give DAGR_ERR_ARG with one message on every rank.
 * Prints RANK r RESULT <name> ok|FAIL ... once per name. */
#include "scenario.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* BLACS and ScaLAPACK (no C headers on Debian). */
void Cblacs_get(int ctxt, int what, int *val);
void Cblacs_gridinit(int *ctxt, const char *order, int nprow, int npcol);
void Cblacs_gridmap(int *ctxt, int *usermap, int ldumap, int nprow, int npcol);
void Cblacs_gridinfo(int ctxt, int *nprow, int *npcol, int *myrow, int *mycol);
void Cblacs_gridexit(int ctxt);
int numroc_(const int *n, const int *nb, const int *iproc, const int *isrc, const int *nprocs);
void descinit_(int *desc, const int *m, const int *n, const int *mb, const int *nb,
               const int *irsrc, const int *icsrc, const int *ictxt, const int *lld, int *info);
void pdgemm_(const char *transa, const char *transb, const int *m, const int *n, const int *k,
             const double *alpha, const double *a, const int *ia, const int *ja, const int *desca,
             const double *b, const int *ib, const int *jb, const int *descb, const double *beta,
             double *c, const int *ic, const int *jc, const int *descc);

static dagr_ctx_t *ctx;
static int rank, size;

static const int grids[][2] = {{1, 1}, {1, 2}, {2, 1}, {2, 2}, {1, 3}};
#define NGRIDS ((int)(sizeof grids / sizeof grids[0]))

#define SENTINEL (-7.25)

static int numroc(int n, int nb, int iproc, int isrc, int nprocs) {
    return numroc_(&n, &nb, &iproc, &isrc, &nprocs);
}

/* Rank of grid process (r, c) in a user grid: "Row" order, or reversed ranks when permuted. */
static int grid_rank(int p, int q, int r, int c, int permuted) {
    (void)p;
    return permuted ? size - 1 - (r * q + c) : r * q + c;
}

/* A BLACS grid over MPI_COMM_WORLD (the context's ranks); -1 on ranks outside it. */
static int make_grid(int p, int q, int permuted) {
    int ctxt;
    Cblacs_get(-1, 0, &ctxt);
    if (!permuted) {
        Cblacs_gridinit(&ctxt, "Row", p, q);
    } else {
        int umap[16];
        for (int r = 0; r < p; r++)
            for (int c = 0; c < q; c++)
                umap[r + c * p] = grid_rank(p, q, r, c, 1);
        Cblacs_gridmap(&ctxt, umap, p, p, q);
    }
    return ctxt;
}

/* A ScaLAPACK array on grid ctxt (any rank), its local part filled with SENTINEL. */
typedef struct sl_array {
    int desc[9];
    int p, q, myrow, mycol, mloc, nloc, lld;
    double *local;
} sl_array_t;

static void sl_make(sl_array_t *a, int ctxt, int m, int n, int mb, int nb, int rsrc, int csrc,
                    int pad) {
    int nprow, npcol;
    memset(a, 0, sizeof *a);
    Cblacs_gridinfo(ctxt, &nprow, &npcol, &a->myrow, &a->mycol);
    if (a->myrow >= 0) {
        a->p = nprow;
        a->q = npcol;
        a->mloc = numroc(m, mb, a->myrow, rsrc, nprow);
        a->nloc = numroc(n, nb, a->mycol, csrc, npcol);
        a->lld = (a->mloc > 1 ? a->mloc : 1) + pad;
        int info = 0;
        descinit_(a->desc, &m, &n, &mb, &nb, &rsrc, &csrc, &ctxt, &a->lld, &info);
        SC_CHECK(info == 0, "descinit_ info %d", info);
    } else {
        /* Outside the grid: ScaLAPACK's convention is CTXT -1; the rest is the shape. */
        int d[9] = {1, -1, m, n, mb, nb, rsrc, csrc, 1};
        memcpy(a->desc, d, sizeof d);
        a->lld = 1;
    }
    size_t elems = (size_t)a->lld * (size_t)(a->nloc > 0 ? a->nloc : 1);
    a->local = malloc(elems * sizeof(double));
    for (size_t k = 0; k < elems; k++)
        a->local[k] = SENTINEL;
}

/* Global index of local row li (or column) of a block-cyclic array. */
static int global_of(int li, int nb, int me, int src, int nprocs) {
    int lb = li / nb, proc_off = (me - src + nprocs) % nprocs;
    return (lb * nprocs + proc_off) * nb + li % nb;
}

/* The m x n matrix a DArray filled by dagr_darray_random(seed) holds (independent of tiling),
 * on every rank. */
static double *random_matrix(int64_t m, int64_t n, uint64_t seed) {
    dagr_darray_t *R = NULL;
    double *g = malloc((size_t)(m * n > 0 ? m * n : 1) * sizeof(double));
    SC_TRY(dagr_darray_create(ctx, DAGR_DOUBLE, m, n, 7, 7, dagr_grid_2d(0, 0), &R));
    SC_TRY(dagr_darray_random(R, seed));
    SC_TRY(dagr_darray_gather(R, g, m > 0 ? m : 1, -1));
    dagr_darray_destroy(&R);
    return g;
}

static double *gather_all(const dagr_darray_t *A) {
    int64_t m = dagr_darray_rows(A), n = dagr_darray_cols(A);
    double *g = malloc((size_t)(m * n > 0 ? m * n : 1) * sizeof(double));
    SC_TRY(dagr_darray_gather(A, g, m > 0 ? m : 1, -1));
    return g;
}

/* Checks every local element of a against want(global) * mul + add, and the padding rows
 * against SENTINEL. Returns the number of mismatches. */
static long check_local(const sl_array_t *a, const double *want, double mul, double add) {
    if (a->myrow < 0) return 0;
    const int *d = a->desc;
    long bad = 0;
    for (int lj = 0; lj < a->nloc; lj++) {
        for (int li = 0; li < a->lld; li++) {
            double got = a->local[li + (size_t)lj * a->lld];
            if (li >= a->mloc) {
                bad += got != SENTINEL;
                continue;
            }
            int i = global_of(li, d[4], a->myrow, d[6], a->p);
            int j = global_of(lj, d[5], a->mycol, d[7], a->q);
            double w = want[i + (size_t)j * d[2]] * mul + add;
            if (got != w && bad++ < 3)
                sc_say("local (%d, %d) = global (%d, %d): %g, want %g", li, lj, i, j, got, w);
        }
    }
    return bad;
}

/* ---- tasks reporting where a tile's buffer is (zero-copy check) ---- */

#define MAX_TILES 4096
static void *seen_ptr[MAX_TILES];
static size_t seen_ld[MAX_TILES];

static dagr_task_result_t k_where(const dagr_task_view_t *t) {
    int64_t k;
    memcpy(&k, t->args, sizeof k);
    seen_ptr[k] = t->buf[0];
    seen_ld[k] = t->ld[0];
    return DAGR_TASK_DONE;
}
static const dagr_kernel_t where_kernel = {.name = "sl_where", .cpu = k_where};

/* One wrap case; returns 1 when every check passed on this rank. */
static int wrap_case(int p, int q, int permuted, int m, int n, int mb, int nb, int rsrc, int csrc,
                     uint64_t seed) {
    int fails0 = sc_failures();
    int ctxt = make_grid(p, q, permuted);
    sl_array_t a;
    sl_make(&a, ctxt, m, n, mb, nb, rsrc, csrc, 3);
    dagr_darray_t *A = NULL;
    SC_TRY(dagr_darray_from_scalapack(ctx, DAGR_DOUBLE, a.desc, a.local, &A));
    SC_CHECK(dagr_darray_rows(A) == m && dagr_darray_cols(A) == n, "shape");
    SC_CHECK(dagr_darray_tile_rows(A) == mb && dagr_darray_tile_cols(A) == nb, "tiles");
    int64_t mt = dagr_darray_mt(A), nt = dagr_darray_nt(A);
    SC_CHECK(mt * nt <= MAX_TILES, "too many tiles for the test");
    long bad_owner = 0;
    for (int64_t tj = 0; tj < nt; tj++)
        for (int64_t ti = 0; ti < mt; ti++)
            bad_owner += dagr_darray_tile_rank(A, ti, tj) !=
                         grid_rank(p, q, (int)((ti + rsrc) % p), (int)((tj + csrc) % q), permuted);
    SC_CHECK(bad_owner == 0, "%ld tiles on the wrong rank", bad_owner);

    /* dagr fills the wrapped array: the values must be in the local arrays, in place. */
    SC_TRY(dagr_darray_random(A, seed));
    SC_TRY(dagr_wait_all(ctx));
    double *G = random_matrix(m, n, seed);
    long bad = check_local(&a, G, 1.0, 0.0);
    SC_CHECK(bad == 0, "%ld local elements wrong after random (grid %dx%d%s)", bad, p, q,
             permuted ? " permuted" : "");

    /* Tasks on a tile see the local array itself. */
    for (int64_t tj = 0; tj < nt; tj++) {
        for (int64_t ti = 0; ti < mt; ti++) {
            int64_t k = ti + tj * mt;
            seen_ptr[k] = NULL;
            dagr_access_t acc = {dagr_darray_tile(A, ti, tj), DAGR_READ};
            SC_TRY(dagr_spawn(ctx, &where_kernel, &k, sizeof k, 1, &acc, NULL));
        }
    }
    SC_TRY(dagr_wait_all(ctx));
    long bad_ptr = 0;
    for (int64_t tj = 0; tj < nt; tj++) {
        for (int64_t ti = 0; ti < mt; ti++) {
            if (dagr_darray_tile_rank(A, ti, tj) != rank) continue;
            int64_t k = ti + tj * mt;
            double *want = a.local + (ti / p) * mb + (tj / q) * nb * (int64_t)a.lld;
            bad_ptr += seen_ptr[k] != (void *)want || seen_ld[k] != (size_t)a.lld;
        }
    }
    SC_CHECK(bad_ptr == 0, "%ld tiles not run on the local array itself", bad_ptr);

    /* dagr writes land in the local array; dagr reads what is there. */
    SC_TRY(dagr_darray_scale(A, 2.0));
    SC_TRY(dagr_wait_all(ctx));
    bad = check_local(&a, G, 2.0, 0.0);
    SC_CHECK(bad == 0, "%ld local elements wrong after scale", bad);
    double *H = gather_all(A);
    long badg = 0;
    for (int64_t k = 0; k < (int64_t)m * n; k++)
        badg += H[k] != 2.0 * G[k];
    SC_CHECK(badg == 0, "%ld gathered elements wrong after scale", badg);

    /* Acquire gives the array itself; direct writes reach dagr after release, even on ranks
     * that cached a copy of a tile for the gather above. */
    int desc2[9];
    void *loc2 = NULL;
    SC_TRY(dagr_darray_scalapack_acquire(A, desc2, &loc2));
    SC_CHECK(loc2 == (void *)a.local, "acquire of a wrapped array copied it");
    SC_CHECK(memcmp(desc2, a.desc, sizeof desc2) == 0, "acquire changed the descriptor");
    for (int lj = 0; lj < a.nloc; lj++)
        for (int li = 0; li < a.mloc; li++)
            a.local[li + (size_t)lj * a.lld] += 1.0;
    SC_TRY(dagr_darray_scalapack_release(A, desc2, &loc2, 1));
    SC_CHECK(loc2 == NULL, "release did not clear local");
    double *H2 = gather_all(A);
    badg = 0;
    for (int64_t k = 0; k < (int64_t)m * n; k++)
        badg += H2[k] != 2.0 * G[k] + 1.0;
    SC_CHECK(badg == 0, "%ld gathered elements miss the direct writes", badg);

    dagr_darray_destroy(&A);
    bad = check_local(&a, G, 2.0, 1.0);
    SC_CHECK(bad == 0, "%ld local elements changed by destroy", bad);
    free(H);
    free(H2);
    free(G);
    free(a.local);
    if (ctxt >= 0) Cblacs_gridexit(ctxt);
    return sc_failures() == fails0;
}

/* ---- pdgemm ---- */

/* max |got - want| / max |want| over m x n. */
static double rel_err(const double *got, const double *want, int64_t count) {
    double e = 0, w = 0;
    for (int64_t k = 0; k < count; k++) {
        e = fmax(e, fabs(got[k] - want[k]));
        w = fmax(w, fabs(want[k]));
    }
    return w > 0 ? e / w : e;
}

/* C = alpha A B + beta C through ScaLAPACK on the acquired arrays; checks C against
 * cblas_dgemm on the gathered inputs and that A and B did not change. Returns the error. */
static double gemm_check(dagr_darray_t *A, dagr_darray_t *B, dagr_darray_t *C) {
    int m = (int)dagr_darray_rows(C), n = (int)dagr_darray_cols(C), k = (int)dagr_darray_cols(A);
    const double alpha = 0.75, beta = -1.5;
    double *Ag = gather_all(A), *Bg = gather_all(B), *Cg = gather_all(C);
    int da[9], db[9], dc[9];
    void *la = NULL, *lb = NULL, *lc = NULL;
    SC_TRY(dagr_darray_scalapack_acquire(A, da, &la));
    SC_TRY(dagr_darray_scalapack_acquire(B, db, &lb));
    SC_TRY(dagr_darray_scalapack_acquire(C, dc, &lc));
    SC_CHECK(da[1] == db[1] && db[1] == dc[1], "contexts %d %d %d differ", da[1], db[1], dc[1]);
    if (dc[1] >= 0) {
        const int one = 1;
        pdgemm_("N", "N", &m, &n, &k, &alpha, la, &one, &one, da, lb, &one, &one, db, &beta, lc,
                &one, &one, dc);
    }
    SC_TRY(dagr_darray_scalapack_release(A, da, &la, 0));
    SC_TRY(dagr_darray_scalapack_release(B, db, &lb, 0));
    SC_TRY(dagr_darray_scalapack_release(C, dc, &lc, 1));
    double *Cr = gather_all(C), *A2 = gather_all(A), *B2 = gather_all(B);
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, m, n, k, alpha, Ag, m > 0 ? m : 1, Bg,
                k > 0 ? k : 1, beta, Cg, m > 0 ? m : 1);
    double err = rel_err(Cr, Cg, (int64_t)m * n);
    SC_CHECK(rel_err(A2, Ag, (int64_t)m * k) == 0, "A changed by release without writeback");
    SC_CHECK(rel_err(B2, Bg, (int64_t)k * n) == 0, "B changed by release without writeback");
    free(Ag);
    free(Bg);
    free(Cg);
    free(Cr);
    free(A2);
    free(B2);
    return err;
}

/* dagr-made operands on grid g: A m x k in mb x kb tiles, B k x n in kb x nb, C m x n in
 * mb x nb. With views, A and C are views at one tile row and column into bigger arrays. */
static double gemm_case(dagr_grid_t g, int m, int n, int k, int mb, int nb, int kb, int views) {
    dagr_darray_t *Abig = NULL, *Cbig = NULL, *A = NULL, *B = NULL, *C = NULL;
    int off = views ? 1 : 0;
    SC_TRY(dagr_darray_create(ctx, DAGR_DOUBLE, m + off * mb, k + off * kb, mb, kb, g, &Abig));
    SC_TRY(dagr_darray_create(ctx, DAGR_DOUBLE, k, n, kb, nb, g, &B));
    SC_TRY(dagr_darray_create(ctx, DAGR_DOUBLE, m + off * mb, n + off * nb + 3, mb, nb, g, &Cbig));
    SC_TRY(dagr_darray_random(Abig, 11));
    SC_TRY(dagr_darray_random(B, 12));
    SC_TRY(dagr_darray_random(Cbig, 13));
    SC_TRY(dagr_darray_view(Abig, off * mb, off * kb, m, k, &A));
    SC_TRY(dagr_darray_view(Cbig, off * mb, off * nb, m, n, &C));
    double *before = gather_all(Cbig);
    double err = gemm_check(A, B, C);
    /* Writeback through a view changes only the view's part of the parent. */
    double *after = gather_all(Cbig);
    int64_t M = dagr_darray_rows(Cbig), N = dagr_darray_cols(Cbig);
    long outside = 0;
    for (int64_t j = 0; j < N; j++)
        for (int64_t i = 0; i < M; i++) {
            int in = i >= off * mb && i < off * mb + m && j >= off * nb && j < off * nb + n;
            if (!in) outside += after[i + j * M] != before[i + j * M];
        }
    SC_CHECK(outside == 0, "%ld elements outside the view changed", outside);
    free(before);
    free(after);
    dagr_darray_destroy(&A);
    dagr_darray_destroy(&C);
    dagr_darray_destroy(&Abig);
    dagr_darray_destroy(&Cbig);
    dagr_darray_destroy(&B);
    return err;
}

static int custom_owner(int64_t ti, int64_t tj, void *user) {
    int n = *(int *)user;
    return (int)((ti * 7 + tj * 3) % n);
}

/* ---- checks of agreed errors ---- */

/* 1 when every rank returned `want` with the same message. */
static int same_error(dagr_status_t got, dagr_status_t want, const char *must_contain) {
    int ok =
        SC_CHECK(got == want, "status %d (%s), want %d", (int)got, dagr_last_error(), (int)want);
    const char *msg = dagr_last_error();
    if (must_contain)
        ok &= SC_CHECK(strstr(msg, must_contain) != NULL, "message '%s' does not name %s", msg,
                       must_contain);
    uint64_t h = 1469598103934665603ull;
    for (const char *c = msg; *c; c++)
        h = (h ^ (uint64_t)(unsigned char)*c) * 1099511628211ull;
    long lo = (long)(h >> 1), hi = lo;
    MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_LONG, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_LONG, MPI_MAX, MPI_COMM_WORLD);
    ok &= SC_CHECK(lo == hi, "ranks disagree on the message (mine: '%s')", msg);
    return ok;
}

static int bad_desc_case(int p, int q) {
    int fails0 = sc_failures();
    int ctxt = make_grid(p, q, 0);
    sl_array_t a;
    sl_make(&a, ctxt, 37, 53, 8, 5, p - 1, 0, 0);
    int d[9];
    dagr_darray_t *A = NULL;

    memcpy(d, a.desc, sizeof d);
    d[0] = 2;
    same_error(dagr_darray_from_scalapack(ctx, DAGR_DOUBLE, d, a.local, &A), DAGR_ERR_ARG,
               "DTYPE_");
    memcpy(d, a.desc, sizeof d);
    d[4] = 0;
    same_error(dagr_darray_from_scalapack(ctx, DAGR_DOUBLE, d, a.local, &A), DAGR_ERR_ARG, "MB_");
    memcpy(d, a.desc, sizeof d);
    d[7] = q; /* CSRC outside the grid */
    same_error(dagr_darray_from_scalapack(ctx, DAGR_DOUBLE, d, a.local, &A), DAGR_ERR_ARG, "CSRC_");
    memcpy(d, a.desc, sizeof d);
    if (rank == 0) d[8] = a.mloc - 1; /* LLD too small on one rank only */
    same_error(dagr_darray_from_scalapack(ctx, DAGR_DOUBLE, d, a.local, &A), DAGR_ERR_ARG, "LLD_");
    if (p * q > 1) {
        memcpy(d, a.desc, sizeof d);
        if (rank == 0) d[2] = 38; /* grid ranks disagree on M */
        same_error(dagr_darray_from_scalapack(ctx, DAGR_DOUBLE, d, a.local, &A), DAGR_ERR_ARG,
                   "M_");
    }
    same_error(dagr_darray_from_scalapack(ctx, DAGR_DOUBLE, a.desc, rank == 0 ? NULL : a.local, &A),
               DAGR_ERR_ARG, "local is NULL");
    SC_CHECK(A == NULL, "out set on failure");

    /* Releasing a buffer acquire did not give. */
    dagr_darray_t *B = NULL;
    SC_TRY(dagr_darray_create(ctx, DAGR_DOUBLE, 10, 10, 4, 4, dagr_grid_2d(0, 0), &B));
    int db[9];
    void *lb = NULL;
    SC_TRY(dagr_darray_scalapack_acquire(B, db, &lb));
    void *wrong = a.local;
    same_error(dagr_darray_scalapack_release(B, db, &wrong, 1), DAGR_ERR_ARG, "acquire");
    SC_TRY(dagr_darray_scalapack_release(B, db, &lb, 1));
    same_error(dagr_darray_scalapack_acquire(B, NULL, &lb), DAGR_ERR_ARG, "desc");
    dagr_darray_destroy(&B);

    free(a.local);
    if (ctxt >= 0) Cblacs_gridexit(ctxt);
    return sc_failures() == fails0;
}

int main(int argc, char **argv) {
    SC_TRY(dagr_init(&argc, &argv, NULL, &ctx));
    rank = dagr_rank(ctx);
    size = dagr_size(ctx);
    sc_set_rank(rank);
    {
        /* A build without ScaLAPACK refuses everything: say so and stop. */
        dagr_darray_t *T = NULL;
        int d[9];
        void *l = NULL;
        SC_TRY(dagr_darray_create(ctx, DAGR_DOUBLE, 4, 4, 2, 2, dagr_grid_2d(0, 0), &T));
        dagr_status_t s = dagr_darray_scalapack_acquire(T, d, &l);
        if (s == DAGR_ERR_UNSUPPORTED) {
            sc_say("SKIP %s", dagr_last_error());
            dagr_darray_destroy(&T);
            dagr_finalize(&ctx);
            return 0;
        }
        SC_TRY(s);
        SC_TRY(dagr_darray_scalapack_release(T, d, &l, 0));
        dagr_darray_destroy(&T);
    }
    char done[256] = "";
    size_t len = 0;

    /* wrap */
    int ok = 1;
    for (int g = 0; g < NGRIDS; g++) {
        int p = grids[g][0], q = grids[g][1];
        if (p * q > size) continue;
        ok &= wrap_case(p, q, 0, 37, 53, 8, 5, p - 1, q - 1, 100 + (uint64_t)g);
        ok &= wrap_case(p, q, 1, 37, 53, 8, 5, p > 1 ? 1 : 0, 0, 200 + (uint64_t)g);
        ok &= wrap_case(p, q, 0, 16, 9, 4, 3, 0, q > 1 ? 1 : 0, 300 + (uint64_t)g);
        ok &= wrap_case(p, q, 1, 0, 7, 4, 4, 0, 0, 400);
        len += (size_t)snprintf(done + len, sizeof done - len, "%s%dx%d", len ? "," : "", p, q);
    }
    sc_result("wrap", ok, "grids=%s", done);

    /* gemm on dagr-made arrays */
    double worst = 0;
    for (int g = 0; g < NGRIDS; g++) {
        int p = grids[g][0], q = grids[g][1];
        if (p * q > size) continue;
        double e1 = gemm_case(dagr_grid_2d(p, q), 45, 29, 38, 8, 5, 6, 0);
        double e2 = gemm_case(dagr_grid_2d(p, q), 45, 29, 38, 8, 5, 6, 1);
        double e3 = gemm_case(dagr_grid_2d(p, q), 17, 40, 3, 4, 8, 2, 1);
        worst = fmax(worst, fmax(e1, fmax(e2, e3)));
    }
    sc_result("gemm", SC_CHECK(worst < 1e-12, "relative error %g", worst), "rel_err=%.3g grids=%s",
              worst, done);

    /* gemm with A on a custom distribution (acquired through a block-cyclic copy) */
    {
        dagr_darray_t *A = NULL, *B = NULL, *C = NULL;
        SC_TRY(dagr_darray_create(ctx, DAGR_DOUBLE, 33, 21, 8, 4,
                                  dagr_grid_custom(custom_owner, &size), &A));
        SC_TRY(dagr_darray_create(ctx, DAGR_DOUBLE, 21, 26, 4, 6, dagr_grid_2d(0, 0), &B));
        SC_TRY(dagr_darray_create(ctx, DAGR_DOUBLE, 33, 26, 8, 6, dagr_grid_2d(0, 0), &C));
        SC_TRY(dagr_darray_random(A, 21));
        SC_TRY(dagr_darray_random(B, 22));
        SC_TRY(dagr_darray_random(C, 23));
        double err = gemm_check(A, B, C);
        /* Custom C written back through the temporary copy. */
        dagr_darray_t *C2 = NULL;
        SC_TRY(dagr_darray_create(ctx, DAGR_DOUBLE, 33, 26, 8, 6,
                                  dagr_grid_custom(custom_owner, &size), &C2));
        SC_TRY(dagr_darray_random(C2, 23));
        double err2 = gemm_check(A, B, C2);
        sc_result("gemm_custom", SC_CHECK(err < 1e-12 && err2 < 1e-12, "errors %g %g", err, err2),
                  "rel_err=%.3g,%.3g", err, err2);
        dagr_darray_destroy(&A);
        dagr_darray_destroy(&B);
        dagr_darray_destroy(&C);
        dagr_darray_destroy(&C2);
    }

    /* gemm on wrapped arrays */
    worst = 0;
    for (int g = 0; g < NGRIDS; g++) {
        int p = grids[g][0], q = grids[g][1];
        if (p * q > size) continue;
        int ctxt = make_grid(p, q, g % 2);
        sl_array_t a, b, c;
        sl_make(&a, ctxt, 45, 38, 8, 6, p - 1, 0, 1);
        sl_make(&b, ctxt, 38, 29, 6, 5, 0, q - 1, 0);
        sl_make(&c, ctxt, 45, 29, 8, 5, p - 1, q - 1, 2);
        dagr_darray_t *A = NULL, *B = NULL, *C = NULL;
        SC_TRY(dagr_darray_from_scalapack(ctx, DAGR_DOUBLE, a.desc, a.local, &A));
        SC_TRY(dagr_darray_from_scalapack(ctx, DAGR_DOUBLE, b.desc, b.local, &B));
        SC_TRY(dagr_darray_from_scalapack(ctx, DAGR_DOUBLE, c.desc, c.local, &C));
        SC_TRY(dagr_darray_random(A, 31));
        SC_TRY(dagr_darray_random(B, 32));
        SC_TRY(dagr_darray_random(C, 33));
        worst = fmax(worst, gemm_check(A, B, C));
        dagr_darray_destroy(&A);
        dagr_darray_destroy(&B);
        dagr_darray_destroy(&C);
        free(a.local);
        free(b.local);
        free(c.local);
        if (ctxt >= 0) Cblacs_gridexit(ctxt);
    }
    sc_result("gemm_wrapped", SC_CHECK(worst < 1e-12, "relative error %g", worst),
              "rel_err=%.3g grids=%s", worst, done);

    /* malformed descriptors */
    ok = 1;
    for (int g = 0; g < NGRIDS; g++) {
        int p = grids[g][0], q = grids[g][1];
        if (p * q > size) continue;
        ok &= bad_desc_case(p, q);
    }
    sc_result("bad_desc", ok, "grids=%s", done);

    SC_TRY(dagr_finalize(&ctx));
    return sc_exit_code();
}
