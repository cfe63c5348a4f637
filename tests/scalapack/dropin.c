/* libdagr-scalapack against the real ScaLAPACK: a ScaLAPACK program (no dagr in it) linked
 * with libdagr-scalapack before ScaLAPACK, so that its p?..._ calls go to dagr, and the real
 * routines reached through the ScaLAPACK library itself (dlopen) as the reference.
 *
 * Usage: scalapack_dropin
 *
 * Over every grid of 1x1, 1x2, 2x1, 2x2, 1x3 that fits the rank count (ranks left out of a
 * grid do not call, as in any ScaLAPACK program):
 *   thread     MPI_Init_thread(MPI_THREAD_SINGLE) gave MPI_THREAD_MULTIPLE.
 *   getrf      p?getrf_ (double and float; a submatrix at a block offset; m > n and m < n):
 *              the factors match the real p?getrf_'s, IPIV is identical on every process
 *              (ScaLAPACK's layout), then p?getrs_ (both transposes) with those pivots matches
 *              the real solve.
 *   geqrf      pdgeqrf_: A and TAU match the real pdgeqrf_'s; pdormqr_ (all four side and
 *              transpose cases) with the REAL routine's factors matches the real pdormqr_;
 *              pdgels_ matches the real solution.
 *   potrf      pdpotrf_/pdpotrs_/pdposv_ (both triangles) match the real ones; a matrix that
 *              is not positive definite gives the real INFO.
 *   blas3      pdgemm_, pdsyrk_, pdsymm_, pdtrsm_, pdtrmm_ (some argument mixes) match.
 *   passed     calls dagr passes on still give the real answer: a submatrix off a block
 *              boundary (pdgemm_), MB != NB (pdgetrf_), a singular pdgesv_ (INFO and B
 *              untouched), invalid arguments (ScaLAPACK's INFO < 0).
 * Prints RANK r RESULT <name> ok|FAIL once per name. */
#include "scenario.h"

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef const int cint;

void Cblacs_get(int ctxt, int what, int *val);
void Cblacs_gridinit(int *ctxt, const char *order, int nprow, int npcol);
void Cblacs_gridinfo(int ctxt, int *nprow, int *npcol, int *myrow, int *mycol);
void Cblacs_gridexit(int ctxt);
int numroc_(cint *n, cint *nb, cint *iproc, cint *isrc, cint *nprocs);
void descinit_(int *desc, cint *m, cint *n, cint *mb, cint *nb, cint *irsrc, cint *icsrc,
               cint *ictxt, cint *lld, int *info);

/* The entry points, declared once as the generic pointer types the tests call through. */
typedef void getrf_t(cint *, cint *, void *, cint *, cint *, cint *, int *, int *);
typedef void getrs_t(const char *, cint *, cint *, const void *, cint *, cint *, cint *,
                     const int *, void *, cint *, cint *, cint *, int *);
typedef void gesv_t(cint *, cint *, void *, cint *, cint *, cint *, int *, void *, cint *, cint *,
                    cint *, int *);
typedef void geqrf_t(cint *, cint *, void *, cint *, cint *, cint *, void *, void *, cint *, int *);
typedef void ormqr_t(const char *, const char *, cint *, cint *, cint *, const void *, cint *,
                     cint *, cint *, const void *, void *, cint *, cint *, cint *, void *, cint *,
                     int *);
typedef void gels_t(const char *, cint *, cint *, cint *, void *, cint *, cint *, cint *, void *,
                    cint *, cint *, cint *, void *, cint *, int *);
typedef void potrf_t(const char *, cint *, void *, cint *, cint *, cint *, int *);
typedef void potrs_t(const char *, cint *, cint *, void *, cint *, cint *, cint *, void *, cint *,
                     cint *, cint *, int *);
typedef void gemm_t(const char *, const char *, cint *, cint *, cint *, const void *, const void *,
                    cint *, cint *, cint *, const void *, cint *, cint *, cint *, const void *,
                    void *, cint *, cint *, cint *);
typedef void syrk_t(const char *, const char *, cint *, cint *, const void *, const void *, cint *,
                    cint *, cint *, const void *, void *, cint *, cint *, cint *);
typedef void symm_t(const char *, const char *, cint *, cint *, const void *, const void *, cint *,
                    cint *, cint *, const void *, cint *, cint *, cint *, const void *, void *,
                    cint *, cint *, cint *);
typedef void trxm_t(const char *, const char *, const char *, const char *, cint *, cint *,
                    const void *, const void *, cint *, cint *, cint *, void *, cint *, cint *,
                    cint *);

static void *scalapack; /* the real library */
static int rank, size;

/* The program's own call (through the normal symbol lookup: libdagr-scalapack first). */
static void *mine(const char *name) {
    void *f = dlsym(RTLD_DEFAULT, name);
    if (!f) {
        sc_say("FAIL no symbol %s", name);
        exit(2);
    }
    return f;
}

/* The real ScaLAPACK's. */
static void *real(const char *name) {
    void *f = dlsym(scalapack, name);
    if (!f) {
        sc_say("FAIL no symbol %s in ScaLAPACK", name);
        exit(2);
    }
    return f;
}

static const int grids[][2] = {{1, 1}, {1, 2}, {2, 1}, {2, 2}, {1, 3}};
#define NGRIDS ((int)(sizeof grids / sizeof grids[0]))

/* A local array of an m x n ScaLAPACK array (es-byte elements) on grid ctxt, with global
 * element (i, j) set to f(i, j) (seeded). */
typedef struct arr {
    int desc[9];
    int lr, lc, lld;
    size_t es;
    char *a;
} arr_t;

static double value(uint64_t seed, int i, int j) {
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + (uint64_t)i * 0xBF58476D1CE4E5B9ull +
                 (uint64_t)j * 0x94D049BB133111EBull;
    x ^= x >> 31;
    x *= 0xD6E8CD0CEB53A5A5ull;
    x ^= x >> 29;
    return (double)(x >> 11) / 9007199254740992.0 - 0.5;
}

static void arr_make(arr_t *x, int ctxt, int m, int n, int mb, int nb, size_t es) {
    int p, q, r, c, zero = 0, info;
    Cblacs_gridinfo(ctxt, &p, &q, &r, &c);
    x->lr = numroc_(&m, &mb, &r, &zero, &p);
    x->lc = numroc_(&n, &nb, &c, &zero, &q);
    x->lld = x->lr > 1 ? x->lr : 1;
    x->es = es;
    descinit_(x->desc, &m, &n, &mb, &nb, &zero, &zero, &ctxt, &x->lld, &info);
    x->a = calloc((size_t)x->lld * (size_t)(x->lc > 0 ? x->lc : 1), es);
}

/* Global index of local row (or column) l of process p with blocks nb over np processes. */
static int global_of(int l, int nb, int p, int np) {
    return (l / nb) * nb * np + p * nb + l % nb;
}

/* Fills x with the seeded values; diag != 0: symmetric, diag added to the diagonal. */
static void arr_fill(arr_t *x, uint64_t seed, double diag) {
    int p, q, r, c;
    Cblacs_gridinfo(x->desc[1], &p, &q, &r, &c);
    for (int lj = 0; lj < x->lc; lj++)
        for (int li = 0; li < x->lr; li++) {
            int i = global_of(li, x->desc[4], r, p), j = global_of(lj, x->desc[5], c, q);
            /* with a diagonal shift the matrix is symmetric (potrf, symm) */
            double v = diag != 0 ? value(seed, i < j ? i : j, i < j ? j : i) + (i == j ? diag : 0)
                                 : value(seed, i, j);
            size_t k = (size_t)li + (size_t)lj * (size_t)x->lld;
            if (x->es == 8)
                ((double *)x->a)[k] = v;
            else
                ((float *)x->a)[k] = (float)v;
        }
}

static void arr_copy(arr_t *dst, const arr_t *src) {
    *dst = *src;
    size_t bytes = (size_t)src->lld * (size_t)(src->lc > 0 ? src->lc : 1) * src->es;
    dst->a = malloc(bytes);
    memcpy(dst->a, src->a, bytes);
}

/* Largest |x - y| over the local arrays, relative to max |y| (at least 1), reduced over the
 * grid so that every process of it sees the same answer. */
static double arr_diff(int ctxt, const arr_t *x, const arr_t *y, MPI_Comm comm) {
    double d = 0, big = 1;
    for (int lj = 0; lj < x->lc; lj++)
        for (int li = 0; li < x->lr; li++) {
            size_t k = (size_t)li + (size_t)lj * (size_t)x->lld;
            double a = x->es == 8 ? ((double *)x->a)[k] : ((float *)x->a)[k];
            double b = y->es == 8 ? ((double *)y->a)[k] : ((float *)y->a)[k];
            if (isnan(a) != isnan(b) || fabs(a - b) > d) d = isnan(a - b) ? INFINITY : fabs(a - b);
            if (fabs(b) > big) big = fabs(b);
        }
    (void)ctxt;
    double in[2] = {d, big}, out[2];
    MPI_Allreduce(in, out, 2, MPI_DOUBLE, MPI_MAX, comm);
    return out[0] / out[1];
}

static void arr_free(arr_t *x) {
    free(x->a);
    x->a = NULL;
}

/* ---- the cases, on one grid (ctxt valid here; comm: the grid's processes) ---- */

typedef struct grid {
    int ctxt, p, q;
    MPI_Comm comm;
} grid_t;

static double tol(size_t es) {
    return es == 8 ? 1e-10 : 2e-3;
}

static int case_getrf(const grid_t *g, size_t es, int m, int n, int nb, int off) {
    int ok = 1;
    const char *pre = es == 8 ? "pd" : "ps";
    char name[32];
    arr_t a, b;
    int M = m + off, N = n + off, ia = off + 1, info1 = -99, info2 = -99;
    arr_make(&a, g->ctxt, M, N, nb, nb, es);
    arr_fill(&a, 11 + (uint64_t)m, 0);
    arr_copy(&b, &a);
    int lp = a.lr + nb;
    int *ip1 = calloc((size_t)lp, sizeof *ip1), *ip2 = calloc((size_t)lp, sizeof *ip2);
    snprintf(name, sizeof name, "%sgetrf_", pre);
    ((getrf_t *)mine(name))(&m, &n, a.a, &ia, &ia, a.desc, ip1, &info1);
    ((getrf_t *)real(name))(&m, &n, b.a, &ia, &ia, b.desc, ip2, &info2);
    ok &= SC_CHECK(info1 == info2, "%s info %d vs %d", name, info1, info2);
    double d = arr_diff(g->ctxt, &a, &b, g->comm);
    ok &= SC_CHECK(d < tol(es), "%s %dx%d nb %d off %d: factors differ by %.3g", name, m, n, nb,
                   off, d);
    /* Only the entries of the local rows among the submatrix's first min(m, n): ScaLAPACK's
     * p?getrf_ also uses IPIV's last MB entries as scratch space. */
    int same = 1, all, pr, pc, r, c, k = m < n ? m : n;
    Cblacs_gridinfo(g->ctxt, &pr, &pc, &r, &c);
    for (int li = 0; li < a.lr; li++) {
        int gi = global_of(li, nb, r, pr);
        if (gi >= off && gi < off + k && ip1[li] != ip2[li]) {
            same = 0;
            sc_say("%s ipiv[%d] (row %d) %d vs ScaLAPACK's %d", name, li, gi + 1, ip1[li], ip2[li]);
        }
    }
    MPI_Allreduce(&same, &all, 1, MPI_INT, MPI_MIN, g->comm);
    ok &=
        SC_CHECK(all, "%s %dx%d nb %d off %d: IPIV differs from ScaLAPACK's", name, m, n, nb, off);
    if (m == n) {
        /* solve with the real factors and pivots (from ScaLAPACK) through dagr and real */
        for (int t = 0; t < 2; t++) {
            arr_t x1, x2;
            int nrhs = 5, info3 = -99, info4 = -99;
            arr_make(&x1, g->ctxt, M, nrhs + 3, nb, 3, es);
            arr_fill(&x1, 29, 0);
            arr_copy(&x2, &x1);
            snprintf(name, sizeof name, "%sgetrs_", pre);
            const char *tr = t ? "T" : "N";
            int one = 1;
            ((getrs_t *)mine(name))(tr, &n, &nrhs, b.a, &ia, &ia, b.desc, ip2, x1.a, &ia, &one,
                                    x1.desc, &info3);
            ((getrs_t *)real(name))(tr, &n, &nrhs, b.a, &ia, &ia, b.desc, ip2, x2.a, &ia, &one,
                                    x2.desc, &info4);
            d = arr_diff(g->ctxt, &x1, &x2, g->comm);
            ok &=
                SC_CHECK(info3 == 0 && info4 == 0 && d < tol(es) * 100,
                         "%s %s: solutions differ by %.3g (info %d %d)", name, tr, d, info3, info4);
            arr_free(&x1);
            arr_free(&x2);
        }
    }
    free(ip1);
    free(ip2);
    arr_free(&a);
    arr_free(&b);
    return ok;
}

static int case_geqrf(const grid_t *g, int m, int n, int nb) {
    int ok = 1, ia = 1, info1 = -99, info2 = -99, lwork = -1;
    arr_t a, b;
    arr_make(&a, g->ctxt, m, n, nb, nb, 8);
    arr_fill(&a, 5 + (uint64_t)n, 0);
    arr_copy(&b, &a);
    int ltau = a.lc + nb;
    double *tau1 = calloc((size_t)ltau, 8), *tau2 = calloc((size_t)ltau, 8), wq;
    ((geqrf_t *)real("pdgeqrf_"))(&m, &n, b.a, &ia, &ia, b.desc, tau2, &wq, &lwork, &info2);
    lwork = (int)wq;
    double *work = malloc((size_t)lwork * 8 + 8);
    ((geqrf_t *)mine("pdgeqrf_"))(&m, &n, a.a, &ia, &ia, a.desc, tau1, work, &lwork, &info1);
    ((geqrf_t *)real("pdgeqrf_"))(&m, &n, b.a, &ia, &ia, b.desc, tau2, work, &lwork, &info2);
    double d = arr_diff(g->ctxt, &a, &b, g->comm), dt = 0;
    for (int i = 0; i < a.lc; i++)
        if (fabs(tau1[i] - tau2[i]) > dt) dt = fabs(tau1[i] - tau2[i]);
    MPI_Allreduce(MPI_IN_PLACE, &dt, 1, MPI_DOUBLE, MPI_MAX, g->comm);
    ok &= SC_CHECK(info1 == 0 && d < 1e-10 && dt < 1e-10,
                   "pdgeqrf_ %dx%d nb %d: A differs by %.3g, TAU by %.3g (info %d)", m, n, nb, d,
                   dt, info1);
    /* pdormqr_ through dagr with the real factors (b, tau2) */
    int k = m < n ? m : n;
    for (int s = 0; s < 2; s++)
        for (int t = 0; t < 2; t++) {
            const char *side = s ? "R" : "L", *tr = t ? "T" : "N";
            int cm = s ? 7 : m, cn = s ? m : 6, info3 = -99, info4 = -99, lw = -1;
            arr_t c1, c2;
            arr_make(&c1, g->ctxt, cm, cn, nb, nb, 8);
            arr_fill(&c1, 77, 0);
            arr_copy(&c2, &c1);
            ((ormqr_t *)real("pdormqr_"))(side, tr, &cm, &cn, &k, b.a, &ia, &ia, b.desc, tau2, c2.a,
                                          &ia, &ia, c2.desc, &wq, &lw, &info4);
            lw = (int)wq;
            double *w = malloc((size_t)lw * 8 + 8);
            ((ormqr_t *)mine("pdormqr_"))(side, tr, &cm, &cn, &k, b.a, &ia, &ia, b.desc, tau2, c1.a,
                                          &ia, &ia, c1.desc, w, &lw, &info3);
            ((ormqr_t *)real("pdormqr_"))(side, tr, &cm, &cn, &k, b.a, &ia, &ia, b.desc, tau2, c2.a,
                                          &ia, &ia, c2.desc, w, &lw, &info4);
            d = arr_diff(g->ctxt, &c1, &c2, g->comm);
            ok &= SC_CHECK(info3 == 0 && info4 == 0 && d < 1e-10,
                           "pdormqr_ %s%s: C differs by %.3g (info %d %d)", side, tr, d, info3,
                           info4);
            free(w);
            arr_free(&c1);
            arr_free(&c2);
        }
    if (m >= n) {
        arr_t x1, x2, a1, a2;
        int nrhs = 3, info3 = -99, info4 = -99, lw = -1;
        arr_make(&a1, g->ctxt, m, n, nb, nb, 8);
        arr_fill(&a1, 5 + (uint64_t)n, 0);
        arr_copy(&a2, &a1);
        arr_make(&x1, g->ctxt, m, nrhs, nb, nb, 8);
        arr_fill(&x1, 3, 0);
        arr_copy(&x2, &x1);
        ((gels_t *)real("pdgels_"))("N", &m, &n, &nrhs, a2.a, &ia, &ia, a2.desc, x2.a, &ia, &ia,
                                    x2.desc, &wq, &lw, &info4);
        lw = (int)wq;
        double *w = malloc((size_t)lw * 8 + 8);
        ((gels_t *)mine("pdgels_"))("N", &m, &n, &nrhs, a1.a, &ia, &ia, a1.desc, x1.a, &ia, &ia,
                                    x1.desc, w, &lw, &info3);
        ((gels_t *)real("pdgels_"))("N", &m, &n, &nrhs, a2.a, &ia, &ia, a2.desc, x2.a, &ia, &ia,
                                    x2.desc, w, &lw, &info4);
        d = arr_diff(g->ctxt, &x1, &x2, g->comm);
        ok &= SC_CHECK(info3 == 0 && info4 == 0 && d < 1e-9, "pdgels_: B differs by %.3g", d);
        free(w);
        arr_free(&a1);
        arr_free(&a2);
        arr_free(&x1);
        arr_free(&x2);
    }
    free(work);
    free(tau1);
    free(tau2);
    arr_free(&a);
    arr_free(&b);
    return ok;
}

static int case_potrf(const grid_t *g, int n, int nb) {
    int ok = 1, one = 1;
    for (int u = 0; u < 2; u++) {
        const char *uplo = u ? "U" : "L";
        arr_t a, b, x1, x2;
        int info1 = -99, info2 = -99, nrhs = 4;
        arr_make(&a, g->ctxt, n, n, nb, nb, 8);
        arr_fill(&a, 3, n);
        arr_copy(&b, &a);
        arr_make(&x1, g->ctxt, n, nrhs, nb, nb, 8);
        arr_fill(&x1, 8, 0);
        arr_copy(&x2, &x1);
        ((potrf_t *)mine("pdpotrf_"))(uplo, &n, a.a, &one, &one, a.desc, &info1);
        ((potrf_t *)real("pdpotrf_"))(uplo, &n, b.a, &one, &one, b.desc, &info2);
        /* only the uplo triangle is the factor; the other is untouched by both */
        double d = arr_diff(g->ctxt, &a, &b, g->comm);
        ok &= SC_CHECK(info1 == 0 && info2 == 0 && d < 1e-10, "pdpotrf_ %s: differs by %.3g", uplo,
                       d);
        ((potrs_t *)mine("pdpotrs_"))(uplo, &n, &nrhs, a.a, &one, &one, a.desc, x1.a, &one, &one,
                                      x1.desc, &info1);
        ((potrs_t *)real("pdpotrs_"))(uplo, &n, &nrhs, b.a, &one, &one, b.desc, x2.a, &one, &one,
                                      x2.desc, &info2);
        d = arr_diff(g->ctxt, &x1, &x2, g->comm);
        ok &= SC_CHECK(info1 == 0 && d < 1e-10, "pdpotrs_ %s: differs by %.3g", uplo, d);
        /* posv on a fresh matrix */
        arr_fill(&a, 3, n);
        arr_fill(&x1, 8, 0);
        ((potrs_t *)mine("pdposv_"))(uplo, &n, &nrhs, a.a, &one, &one, a.desc, x1.a, &one, &one,
                                     x1.desc, &info1);
        d = arr_diff(g->ctxt, &x1, &x2, g->comm);
        ok &= SC_CHECK(info1 == 0 && d < 1e-10, "pdposv_ %s: differs by %.3g", uplo, d);
        /* not positive definite: the diagonal shifted down, INFO as ScaLAPACK's */
        arr_fill(&a, 3, -0.5);
        arr_fill(&b, 3, -0.5);
        ((potrf_t *)mine("pdpotrf_"))(uplo, &n, a.a, &one, &one, a.desc, &info1);
        ((potrf_t *)real("pdpotrf_"))(uplo, &n, b.a, &one, &one, b.desc, &info2);
        ok &= SC_CHECK(info1 == info2 && info1 > 0, "pdpotrf_ not SPD: info %d vs ScaLAPACK's %d",
                       info1, info2);
        arr_free(&a);
        arr_free(&b);
        arr_free(&x1);
        arr_free(&x2);
    }
    return ok;
}

static int case_blas3(const grid_t *g, int nb) {
    int ok = 1, one = 1, m = 37, n = 29, k = 45;
    double alpha = 1.5, beta = -0.5;
    arr_t a, b, c1, c2;
    /* gemm N T: A m x k, B n x k */
    arr_make(&a, g->ctxt, m, k, nb, nb, 8);
    arr_fill(&a, 1, 0);
    arr_make(&b, g->ctxt, n, k, nb, nb, 8);
    arr_fill(&b, 2, 0);
    arr_make(&c1, g->ctxt, m, n, nb, nb, 8);
    arr_fill(&c1, 4, 0);
    arr_copy(&c2, &c1);
    ((gemm_t *)mine("pdgemm_"))("N", "T", &m, &n, &k, &alpha, a.a, &one, &one, a.desc, b.a, &one,
                                &one, b.desc, &beta, c1.a, &one, &one, c1.desc);
    ((gemm_t *)real("pdgemm_"))("N", "T", &m, &n, &k, &alpha, a.a, &one, &one, a.desc, b.a, &one,
                                &one, b.desc, &beta, c2.a, &one, &one, c2.desc);
    double d = arr_diff(g->ctxt, &c1, &c2, g->comm);
    ok &= SC_CHECK(d < 1e-12, "pdgemm_ NT: differs by %.3g", d);
    arr_free(&a);
    arr_free(&b);
    arr_free(&c1);
    arr_free(&c2);
    /* syrk U T: A k x n, C n x n; symm R L: A n x n, B, C m x n; trsm and trmm L U T U */
    arr_make(&a, g->ctxt, k, n, nb, nb, 8);
    arr_fill(&a, 6, 0);
    arr_make(&c1, g->ctxt, n, n, nb, nb, 8);
    arr_fill(&c1, 7, 0);
    arr_copy(&c2, &c1);
    ((syrk_t *)mine("pdsyrk_"))("U", "T", &n, &k, &alpha, a.a, &one, &one, a.desc, &beta, c1.a,
                                &one, &one, c1.desc);
    ((syrk_t *)real("pdsyrk_"))("U", "T", &n, &k, &alpha, a.a, &one, &one, a.desc, &beta, c2.a,
                                &one, &one, c2.desc);
    d = arr_diff(g->ctxt, &c1, &c2, g->comm);
    ok &= SC_CHECK(d < 1e-12, "pdsyrk_ UT: differs by %.3g", d);
    arr_free(&a);
    arr_free(&c1);
    arr_free(&c2);
    arr_make(&a, g->ctxt, n, n, nb, nb, 8);
    arr_fill(&a, 9, 4);
    arr_make(&b, g->ctxt, m, n, nb, nb, 8);
    arr_fill(&b, 10, 0);
    arr_make(&c1, g->ctxt, m, n, nb, nb, 8);
    arr_fill(&c1, 12, 0);
    arr_copy(&c2, &c1);
    ((symm_t *)mine("pdsymm_"))("R", "L", &m, &n, &alpha, a.a, &one, &one, a.desc, b.a, &one, &one,
                                b.desc, &beta, c1.a, &one, &one, c1.desc);
    ((symm_t *)real("pdsymm_"))("R", "L", &m, &n, &alpha, a.a, &one, &one, a.desc, b.a, &one, &one,
                                b.desc, &beta, c2.a, &one, &one, c2.desc);
    d = arr_diff(g->ctxt, &c1, &c2, g->comm);
    ok &= SC_CHECK(d < 1e-12, "pdsymm_ RL: differs by %.3g", d);
    for (int f = 0; f < 2; f++) {
        const char *fn = f ? "pdtrmm_" : "pdtrsm_";
        arr_fill(&c1, 12, 0);
        arr_fill(&c2, 12, 0);
        ((trxm_t *)mine(fn))("R", "U", "T", "N", &m, &n, &alpha, a.a, &one, &one, a.desc, c1.a,
                             &one, &one, c1.desc);
        ((trxm_t *)real(fn))("R", "U", "T", "N", &m, &n, &alpha, a.a, &one, &one, a.desc, c2.a,
                             &one, &one, c2.desc);
        d = arr_diff(g->ctxt, &c1, &c2, g->comm);
        ok &= SC_CHECK(d < 1e-11, "%s RUTN: differs by %.3g", fn, d);
    }
    arr_free(&a);
    arr_free(&b);
    arr_free(&c1);
    arr_free(&c2);
    return ok;
}

static int case_passed(const grid_t *g, int nb) {
    int ok = 1, one = 1, two = 2, m = 20, n = 18, k = 16;
    double alpha = 1, beta = 0;
    arr_t a, b, c1, c2;
    /* pdgemm_ on a submatrix at row 2: not on a block boundary */
    arr_make(&a, g->ctxt, m + 1, k, nb, nb, 8);
    arr_fill(&a, 1, 0);
    arr_make(&b, g->ctxt, k, n, nb, nb, 8);
    arr_fill(&b, 2, 0);
    arr_make(&c1, g->ctxt, m + 1, n, nb, nb, 8);
    arr_copy(&c2, &c1);
    ((gemm_t *)mine("pdgemm_"))("N", "N", &m, &n, &k, &alpha, a.a, &two, &one, a.desc, b.a, &one,
                                &one, b.desc, &beta, c1.a, &two, &one, c1.desc);
    ((gemm_t *)real("pdgemm_"))("N", "N", &m, &n, &k, &alpha, a.a, &two, &one, a.desc, b.a, &one,
                                &one, b.desc, &beta, c2.a, &two, &one, c2.desc);
    ok &= SC_CHECK(arr_diff(g->ctxt, &c1, &c2, g->comm) < 1e-12, "pdgemm_ off-block differs");
    arr_free(&a);
    arr_free(&b);
    arr_free(&c1);
    arr_free(&c2);
    /* pdgetrf_ with MB != NB */
    int info1 = -99, info2 = -99;
    arr_make(&a, g->ctxt, n, n, nb, nb + 1, 8);
    arr_fill(&a, 4, 0);
    arr_copy(&b, &a);
    int *ip1 = calloc((size_t)a.lr + (size_t)nb, sizeof *ip1),
        *ip2 = calloc((size_t)a.lr + (size_t)nb, sizeof *ip2);
    ((getrf_t *)mine("pdgetrf_"))(&n, &n, a.a, &one, &one, a.desc, ip1, &info1);
    ((getrf_t *)real("pdgetrf_"))(&n, &n, b.a, &one, &one, b.desc, ip2, &info2);
    ok &= SC_CHECK(info1 == info2 && arr_diff(g->ctxt, &a, &b, g->comm) == 0,
                   "pdgetrf_ MB != NB differs (passed on, it must be ScaLAPACK's own result)");
    arr_free(&a);
    arr_free(&b);
    /* a singular pdgesv_: column 3 is zero; INFO as ScaLAPACK's, B untouched */
    arr_make(&a, g->ctxt, n, n, nb, nb, 8);
    arr_fill(&a, 4, 0);
    {
        int p, q, r, c;
        Cblacs_gridinfo(g->ctxt, &p, &q, &r, &c);
        for (int lj = 0; lj < a.lc; lj++)
            if (global_of(lj, nb, c, q) == 2)
                for (int li = 0; li < a.lr; li++)
                    ((double *)a.a)[li + (size_t)lj * (size_t)a.lld] = 0;
    }
    arr_copy(&b, &a);
    arr_make(&c1, g->ctxt, n, 2, nb, nb, 8);
    arr_fill(&c1, 5, 0);
    arr_copy(&c2, &c1);
    int nrhs = 2;
    ((gesv_t *)mine("pdgesv_"))(&n, &nrhs, a.a, &one, &one, a.desc, ip1, c1.a, &one, &one, c1.desc,
                                &info1);
    ((gesv_t *)real("pdgesv_"))(&n, &nrhs, b.a, &one, &one, b.desc, ip2, c2.a, &one, &one, c2.desc,
                                &info2);
    ok &= SC_CHECK(info1 == info2 && info1 == 3, "pdgesv_ singular: info %d vs ScaLAPACK's %d",
                   info1, info2);
    ok &= SC_CHECK(arr_diff(g->ctxt, &c1, &c2, g->comm) == 0, "pdgesv_ singular: B changed");
    /* invalid arguments: ScaLAPACK's own INFO (it prints its message too) */
    int bad = -3;
    info1 = info2 = 0;
    ((getrf_t *)mine("pdgetrf_"))(&bad, &n, a.a, &one, &one, a.desc, ip1, &info1);
    ((getrf_t *)real("pdgetrf_"))(&bad, &n, b.a, &one, &one, b.desc, ip2, &info2);
    ok &= SC_CHECK(info1 == info2 && info1 < 0, "pdgetrf_ M < 0: info %d vs ScaLAPACK's %d", info1,
                   info2);
    free(ip1);
    free(ip2);
    arr_free(&a);
    arr_free(&b);
    arr_free(&c1);
    arr_free(&c2);
    return ok;
}

int main(int argc, char **argv) {
    int provided = -1;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_SINGLE, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    sc_set_rank(rank);
    scalapack = dlopen("libscalapack-mpich.so.2.2", RTLD_NOW | RTLD_NOLOAD);
    if (!scalapack) scalapack = dlopen("libscalapack-mpich.so", RTLD_NOW | RTLD_NOLOAD);
    if (!scalapack) {
        sc_say("FAIL ScaLAPACK is not loaded: %s", dlerror());
        MPI_Finalize();
        return 2;
    }
    int q;
    MPI_Query_thread(&q);
    sc_result("thread",
              SC_CHECK(provided == MPI_THREAD_MULTIPLE && q == MPI_THREAD_MULTIPLE,
                       "MPI_THREAD_SINGLE asked, %d given", provided),
              "provided %d", provided);

    int ok_getrf = 1, ok_geqrf = 1, ok_potrf = 1, ok_blas3 = 1, ok_passed = 1;
    for (int gi = 0; gi < NGRIDS; gi++) {
        int p = grids[gi][0], qq = grids[gi][1];
        if (p * qq > size) continue;
        grid_t g = {.p = p, .q = qq};
        Cblacs_get(-1, 0, &g.ctxt);
        Cblacs_gridinit(&g.ctxt, "Row", p, qq);
        int in = rank < p * qq;
        MPI_Comm_split(MPI_COMM_WORLD, in, rank, &g.comm);
        if (in) {
            ok_getrf &= case_getrf(&g, 8, 45, 45, 8, 0);
            ok_getrf &= case_getrf(&g, 8, 40, 27, 6, 6);
            ok_getrf &= case_getrf(&g, 4, 27, 40, 6, 0);
            ok_getrf &= case_getrf(&g, 4, 33, 33, 5, 5);
            ok_geqrf &= case_geqrf(&g, 45, 30, 8);
            ok_geqrf &= case_geqrf(&g, 30, 45, 8);
            ok_potrf &= case_potrf(&g, 43, 7);
            ok_blas3 &= case_blas3(&g, 8);
            ok_passed &= case_passed(&g, 4);
            Cblacs_gridexit(g.ctxt);
        }
        MPI_Comm_free(&g.comm);
        MPI_Barrier(MPI_COMM_WORLD);
    }
    sc_result("getrf", ok_getrf, "-");
    sc_result("geqrf", ok_geqrf, "-");
    sc_result("potrf", ok_potrf, "-");
    sc_result("blas3", ok_blas3, "-");
    sc_result("passed", ok_passed, "-");
    int code = sc_exit_code();
    MPI_Finalize();
    return code;
}
