/* Cholesky and LU: p?potrf_, p?potrs_, p?posv_, p?getrf_, p?getrs_, p?gesv_ served by dagr.
 *
 * INFO is ScaLAPACK's: the leading minor that is not positive definite, or the first exactly
 * zero pivot, counted from the submatrix's corner (dagr's views count the same way). A
 * factorization that fails leaves the solve of p?posv_ / p?gesv_ undone and B untouched, as
 * ScaLAPACK does.
 *
 * IPIV is ScaLAPACK's layout: local row i of this process (of the whole array, not only the
 * submatrix) holds the global row (1-based, of the whole array) that it was interchanged
 * with, for the first min(M, N) rows of the submatrix, on every process column. */
#include "dropin.h"

#include <stdlib.h>

typedef const int cint;

/* Where global row g (0-based) of an array with descriptor d lives: its process row and its
 * index among that process's local rows. */
static int row_owner(const int *d, int nprow, int g) {
    return (g / d[SP_MB] + d[SP_RSRC]) % nprow;
}

static int row_local(const int *d, int nprow, int g) {
    return (g / d[SP_MB] / nprow) * d[SP_MB] + g % d[SP_MB];
}

/* Writes dagr's pivots of the factorization of the submatrix at row ia into IPIV. */
static void ipiv_store(const sp_call_t *c, const dagr_pivots_t *piv, int npiv, const int *d, int ia,
                       int *ipiv, const char *name) {
    int64_t *all = malloc(((size_t)npiv + 1) * sizeof *all);
    if (!all) sp_check_insert((sp_call_t *)c, name, DAGR_ERR_NOMEM);
    sp_check_insert((sp_call_t *)c, name, dagr_pivots_fetch(piv, all));
    for (int k = 0; k < npiv; k++) {
        int g = ia - 1 + k;
        if (row_owner(d, c->nprow, g) == c->myrow)
            ipiv[row_local(d, c->nprow, g)] = (int)(all[k] + ia - 1);
    }
    free(all);
}

/* dagr's pivots from IPIV (ScaLAPACK's layout): each process row gives its own rows (the
 * process column holding the submatrix's first column answers), summed over the grid. */
static dagr_pivots_t *ipiv_load(sp_call_t *c, const dagr_darray_t *A, int npiv, const int *d,
                                int ia, int ja, const int *ipiv, const char *name) {
    int64_t *all = calloc((size_t)npiv + 1, sizeof *all);
    if (!all) sp_check_insert(c, name, DAGR_ERR_NOMEM);
    int iacol = ((ja - 1) / d[SP_NB] + d[SP_CSRC]) % c->npcol;
    for (int k = 0; k < npiv && c->mycol == iacol; k++) {
        int g = ia - 1 + k;
        if (row_owner(d, c->nprow, g) == c->myrow)
            all[k] = ipiv[row_local(d, c->nprow, g)] - (ia - 1);
    }
    MPI_Allreduce(MPI_IN_PLACE, all, npiv, MPI_INT64_T, MPI_SUM, dagr_comm(c->ctx));
    dagr_pivots_t *piv = NULL;
    dagr_status_t st = dagr_pivots_from_lapack(A, all, &piv);
    free(all);
    /* IPIV from anything but p?getrf_ on this submatrix: not dagr's to judge */
    return st == DAGR_OK ? piv : NULL;
}

static bool uplo_ok(char u) {
    return u == 'U' || u == 'L';
}

static dagr_uplo_t uplo_of(char u) {
    return u == 'U' ? DAGR_UPPER : DAGR_LOWER;
}

/* Wraps operand A and, when descb is not NULL, B; false when the call was passed on. */
static bool wrap2(sp_call_t *c, const sp_desc_t *desca, void *a, int ia, int ja, int am, int an,
                  dagr_darray_t **A, const sp_desc_t *descb, void *b, int ib, int jb, int bm,
                  int bn, dagr_darray_t **B) {
    sp_reason_t why = sp_wrap(c, desca, a, ia, ja, am, an, A);
    if (why == SP_NREASONS && descb) why = sp_wrap(c, descb, b, ib, jb, bm, bn, B);
    if (why == SP_NREASONS) return true;
    sp_pass(c, why, NULL);
    return false;
}

/* DAGR_ERR_ARG from the routine (nothing inserted): passed on. */
static bool refused(sp_call_t *c, dagr_status_t st, const char *name) {
    if (st == DAGR_ERR_ARG) {
        sp_pass(c, SP_PASS_TILES, dagr_last_error());
        return true;
    }
    sp_check_insert(c, name, st);
    return false;
}

/* ---- Cholesky ---- */

typedef void potrf_fn(const char *, cint *, void *, cint *, cint *, cint *, int *, size_t);
typedef void potrs_fn(const char *, cint *, cint *, const void *, cint *, cint *, cint *, void *,
                      cint *, cint *, cint *, int *, size_t);

static void potrf(dagr_dtype_t dt, const char *name, const char *uplo, cint *n, void *a, cint *ia,
                  cint *ja, cint *desca, int *info, size_t lu) {
    char U = sp_char(uplo);
    sp_call_t c;
    sp_desc_t da, db, dc;
    (void)db, (void)dc;
    dagr_darray_t *A;
    if (!sp_begin(&c, SP_POTRF, dt, desca[SP_CTXT])) goto pass;
    if (!uplo_ok(U) || !sp_desc_ok(&c, desca, *ia, *ja, *n, *n, &da)) {
        sp_pass(&c, SP_PASS_ARGS, NULL);
        goto pass;
    }
    if (*n == 0) {
        sp_pass(&c, SP_PASS_EMPTY, NULL);
        goto pass;
    }
    if (!wrap2(&c, &da, a, *ia, *ja, *n, *n, &A, NULL, NULL, 0, 0, 0, 0, NULL)) goto pass;
    if (refused(&c, dagr_potrf(uplo_of(U), A), name)) goto pass;
    int col = 0;
    *info = sp_wait(&c, name, &col) == DAGR_OK ? 0 : col;
    sp_served(&c);
    return;
pass:
    ((potrf_fn *)sp_next(name))(uplo, n, a, ia, ja, desca, info, lu);
}

static void potrs(dagr_dtype_t dt, const char *name, bool factor, const char *uplo, cint *n,
                  cint *nrhs, void *a, cint *ia, cint *ja, cint *desca, void *b, cint *ib, cint *jb,
                  cint *descb, int *info, size_t lu) {
    char U = sp_char(uplo);
    sp_call_t c;
    sp_desc_t da, db, dc;
    (void)db, (void)dc;
    dagr_darray_t *A, *B;
    if (!sp_begin(&c, factor ? SP_POSV : SP_POTRS, dt, desca[SP_CTXT])) goto pass;
    if (!uplo_ok(U) || !sp_desc_ok(&c, desca, *ia, *ja, *n, *n, &da) ||
        !sp_desc_ok(&c, descb, *ib, *jb, *n, *nrhs, &db)) {
        sp_pass(&c, SP_PASS_ARGS, NULL);
        goto pass;
    }
    if (*n == 0 || *nrhs == 0) {
        sp_pass(&c, SP_PASS_EMPTY, NULL);
        goto pass;
    }
    if (!wrap2(&c, &da, a, *ia, *ja, *n, *n, &A, &db, b, *ib, *jb, *n, *nrhs, &B)) goto pass;
    /* Both checked before anything goes in, so that a refused solve passes the whole call. */
    if (factor) {
        if (refused(&c, dagr_potrf(uplo_of(U), A), name)) goto pass;
        int col = 0;
        if (sp_wait(&c, name, &col) != DAGR_OK) {
            *info = col;
            sp_served(&c);
            return;
        }
    }
    if (refused(&c, dagr_potrs(uplo_of(U), A, B), name)) {
        /* p?posv_ with a factor already made in A: ScaLAPACK's p?potrs_ finishes the call */
        if (factor) {
            ((potrs_fn *)sp_next(dt == DAGR_DOUBLE ? "pdpotrs_" : "pspotrs_"))(
                uplo, n, nrhs, a, ia, ja, desca, b, ib, jb, descb, info, lu);
            return;
        }
        goto pass;
    }
    sp_wait(&c, name, NULL);
    *info = 0;
    sp_served(&c);
    return;
pass:
    ((potrs_fn *)sp_next(name))(uplo, n, nrhs, a, ia, ja, desca, b, ib, jb, descb, info, lu);
}

SP_EXPORT void pdpotrf_(const char *uplo, cint *n, double *a, cint *ia, cint *ja, cint *desca,
                        int *info, size_t lu) {
    potrf(DAGR_DOUBLE, "pdpotrf_", uplo, n, a, ia, ja, desca, info, lu);
}
SP_EXPORT void pspotrf_(const char *uplo, cint *n, float *a, cint *ia, cint *ja, cint *desca,
                        int *info, size_t lu) {
    potrf(DAGR_FLOAT, "pspotrf_", uplo, n, a, ia, ja, desca, info, lu);
}
SP_EXPORT void pdpotrs_(const char *uplo, cint *n, cint *nrhs, const double *a, cint *ia, cint *ja,
                        cint *desca, double *b, cint *ib, cint *jb, cint *descb, int *info,
                        size_t lu) {
    potrs(DAGR_DOUBLE, "pdpotrs_", false, uplo, n, nrhs, (void *)a, ia, ja, desca, b, ib, jb, descb,
          info, lu);
}
SP_EXPORT void pspotrs_(const char *uplo, cint *n, cint *nrhs, const float *a, cint *ia, cint *ja,
                        cint *desca, float *b, cint *ib, cint *jb, cint *descb, int *info,
                        size_t lu) {
    potrs(DAGR_FLOAT, "pspotrs_", false, uplo, n, nrhs, (void *)a, ia, ja, desca, b, ib, jb, descb,
          info, lu);
}
SP_EXPORT void pdposv_(const char *uplo, cint *n, cint *nrhs, double *a, cint *ia, cint *ja,
                       cint *desca, double *b, cint *ib, cint *jb, cint *descb, int *info,
                       size_t lu) {
    potrs(DAGR_DOUBLE, "pdposv_", true, uplo, n, nrhs, a, ia, ja, desca, b, ib, jb, descb, info,
          lu);
}
SP_EXPORT void psposv_(const char *uplo, cint *n, cint *nrhs, float *a, cint *ia, cint *ja,
                       cint *desca, float *b, cint *ib, cint *jb, cint *descb, int *info,
                       size_t lu) {
    potrs(DAGR_FLOAT, "psposv_", true, uplo, n, nrhs, a, ia, ja, desca, b, ib, jb, descb, info, lu);
}

/* ---- LU ---- */

typedef void getrf_fn(cint *, cint *, void *, cint *, cint *, cint *, int *, int *);
typedef void getrs_fn(const char *, cint *, cint *, const void *, cint *, cint *, cint *,
                      const int *, void *, cint *, cint *, cint *, int *, size_t);
typedef void gesv_fn(cint *, cint *, void *, cint *, cint *, cint *, int *, void *, cint *, cint *,
                     cint *, int *);

static void getrf(dagr_dtype_t dt, const char *name, cint *m, cint *n, void *a, cint *ia, cint *ja,
                  cint *desca, int *ipiv, int *info) {
    sp_call_t c;
    sp_desc_t da, db, dc;
    (void)db, (void)dc;
    dagr_darray_t *A;
    dagr_pivots_t *piv = NULL;
    if (!sp_begin(&c, SP_GETRF, dt, desca[SP_CTXT])) goto pass;
    if (!sp_desc_ok(&c, desca, *ia, *ja, *m, *n, &da)) {
        sp_pass(&c, SP_PASS_ARGS, NULL);
        goto pass;
    }
    if (*m == 0 || *n == 0) {
        sp_pass(&c, SP_PASS_EMPTY, NULL);
        goto pass;
    }
    if (!wrap2(&c, &da, a, *ia, *ja, *m, *n, &A, NULL, NULL, 0, 0, 0, 0, NULL)) goto pass;
    if (refused(&c, dagr_getrf(A, &piv), name)) goto pass;
    int col = 0;
    *info = sp_wait(&c, name, &col) == DAGR_OK ? 0 : col;
    ipiv_store(&c, piv, *m < *n ? *m : *n, da.d, *ia, ipiv, name);
    dagr_pivots_destroy(&piv);
    sp_served(&c);
    return;
pass:
    ((getrf_fn *)sp_next(name))(m, n, a, ia, ja, desca, ipiv, info);
}

/* p?getrs_ (factor false: A holds getrf's factors and ipiv its pivots) and p?gesv_. */
static void getrs(dagr_dtype_t dt, const char *name, bool factor, const char *trans, cint *n,
                  cint *nrhs, void *a, cint *ia, cint *ja, cint *desca, int *ipiv, void *b,
                  cint *ib, cint *jb, cint *descb, int *info, size_t lt) {
    char T = factor ? 'N' : sp_char(trans);
    sp_call_t c;
    sp_desc_t da, db, dc;
    (void)db, (void)dc;
    dagr_darray_t *A, *B;
    dagr_pivots_t *piv = NULL;
    if (!sp_begin(&c, factor ? SP_GESV : SP_GETRS, dt, desca[SP_CTXT])) goto pass;
    if ((T != 'N' && T != 'T' && T != 'C') || !sp_desc_ok(&c, desca, *ia, *ja, *n, *n, &da) ||
        !sp_desc_ok(&c, descb, *ib, *jb, *n, *nrhs, &db)) {
        sp_pass(&c, SP_PASS_ARGS, NULL);
        goto pass;
    }
    if (*n == 0 || *nrhs == 0) {
        sp_pass(&c, SP_PASS_EMPTY, NULL);
        goto pass;
    }
    if (!wrap2(&c, &da, a, *ia, *ja, *n, *n, &A, &db, b, *ib, *jb, *n, *nrhs, &B)) goto pass;
    if (factor) {
        if (refused(&c, dagr_getrf(A, &piv), name)) goto pass;
        int col = 0;
        dagr_status_t st = sp_wait(&c, name, &col);
        ipiv_store(&c, piv, *n, da.d, *ia, ipiv, name);
        if (st != DAGR_OK) {
            *info = col;
            dagr_pivots_destroy(&piv);
            sp_served(&c);
            return;
        }
    } else if (!(piv = ipiv_load(&c, A, *n, da.d, *ia, *ja, ipiv, name))) {
        sp_pass(&c, SP_PASS_ARGS, "IPIV is not a set of pivots of this submatrix");
        goto pass;
    }
    dagr_status_t st = dagr_getrs(T == 'N' ? DAGR_NO_TRANS : DAGR_TRANS, A, piv, B);
    if (st == DAGR_ERR_ARG && factor) {
        /* B's blocks do not pair with A's: ScaLAPACK solves with dagr's factors */
        dagr_pivots_destroy(&piv);
        sp_pass(&c, SP_PASS_TILES, dagr_last_error());
        ((getrs_fn *)sp_next(dt == DAGR_DOUBLE ? "pdgetrs_" : "psgetrs_"))(
            "N", n, nrhs, a, ia, ja, desca, ipiv, b, ib, jb, descb, info, 1);
        return;
    }
    dagr_pivots_destroy(&piv);
    if (refused(&c, st, name)) goto pass;
    sp_wait(&c, name, NULL);
    *info = 0;
    sp_served(&c);
    return;
pass:
    if (factor)
        ((gesv_fn *)sp_next(name))(n, nrhs, a, ia, ja, desca, ipiv, b, ib, jb, descb, info);
    else
        ((getrs_fn *)sp_next(name))(trans, n, nrhs, a, ia, ja, desca, ipiv, b, ib, jb, descb, info,
                                    lt);
}

SP_EXPORT void pdgetrf_(cint *m, cint *n, double *a, cint *ia, cint *ja, cint *desca, int *ipiv,
                        int *info) {
    getrf(DAGR_DOUBLE, "pdgetrf_", m, n, a, ia, ja, desca, ipiv, info);
}
SP_EXPORT void psgetrf_(cint *m, cint *n, float *a, cint *ia, cint *ja, cint *desca, int *ipiv,
                        int *info) {
    getrf(DAGR_FLOAT, "psgetrf_", m, n, a, ia, ja, desca, ipiv, info);
}
SP_EXPORT void pdgetrs_(const char *trans, cint *n, cint *nrhs, const double *a, cint *ia, cint *ja,
                        cint *desca, const int *ipiv, double *b, cint *ib, cint *jb, cint *descb,
                        int *info, size_t lt) {
    getrs(DAGR_DOUBLE, "pdgetrs_", false, trans, n, nrhs, (void *)a, ia, ja, desca, (int *)ipiv, b,
          ib, jb, descb, info, lt);
}
SP_EXPORT void psgetrs_(const char *trans, cint *n, cint *nrhs, const float *a, cint *ia, cint *ja,
                        cint *desca, const int *ipiv, float *b, cint *ib, cint *jb, cint *descb,
                        int *info, size_t lt) {
    getrs(DAGR_FLOAT, "psgetrs_", false, trans, n, nrhs, (void *)a, ia, ja, desca, (int *)ipiv, b,
          ib, jb, descb, info, lt);
}
SP_EXPORT void pdgesv_(cint *n, cint *nrhs, double *a, cint *ia, cint *ja, cint *desca, int *ipiv,
                       double *b, cint *ib, cint *jb, cint *descb, int *info) {
    getrs(DAGR_DOUBLE, "pdgesv_", true, NULL, n, nrhs, a, ia, ja, desca, ipiv, b, ib, jb, descb,
          info, 0);
}
SP_EXPORT void psgesv_(cint *n, cint *nrhs, float *a, cint *ia, cint *ja, cint *desca, int *ipiv,
                       float *b, cint *ib, cint *jb, cint *descb, int *info) {
    getrs(DAGR_FLOAT, "psgesv_", true, NULL, n, nrhs, a, ia, ja, desca, ipiv, b, ib, jb, descb,
          info, 0);
}
