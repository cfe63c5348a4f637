/* QR and least squares: p?geqrf_, p?ormqr_, p?gels_ served by dagr's QR in LAPACK storage
 * (variant 3 of dagr_geqrf), so that the factors dagr leaves are the ones ScaLAPACK's own
 * p?ormqr_ / p?orgqr_ read, and dagr's p?ormqr_ reads ScaLAPACK's.
 *
 * TAU is ScaLAPACK's layout: the entry of global column j (of the whole array) sits at j's
 * local column, on the processes of the process column holding j.
 *
 * Workspace: ScaLAPACK refuses an LWORK below its minimum (INFO < 0), and callers size WORK
 * from a query (LWORK = -1). Queries go to ScaLAPACK; a call dagr serves first asks ScaLAPACK
 * for the minimum the same way (a query of the same arguments, collective over the grid as the
 * call is), passes the call on when LWORK is below it, so that ScaLAPACK reports it, and
 * returns it in WORK(1) as ScaLAPACK does. dagr uses no part of WORK. */
#include "dropin.h"

#include <stdlib.h>

typedef const int cint;

/* Local column of global column j (0-based) and its process column. */
static int col_owner(const int *d, int npcol, int j) {
    return (j / d[SP_NB] + d[SP_CSRC]) % npcol;
}

static int col_local(const int *d, int npcol, int j) {
    return (j / d[SP_NB] / npcol) * d[SP_NB] + j % d[SP_NB];
}

static size_t es_of(dagr_dtype_t dt) {
    return dt == DAGR_DOUBLE ? sizeof(double) : sizeof(float);
}

static void put(dagr_dtype_t dt, void *base, int i, double v) {
    if (dt == DAGR_DOUBLE)
        ((double *)base)[i] = v;
    else
        ((float *)base)[i] = (float)v;
}

static double get(dagr_dtype_t dt, const void *base, int i) {
    return dt == DAGR_DOUBLE ? ((const double *)base)[i] : ((const float *)base)[i];
}

/* The k tau values of columns ja .. ja + k - 1 on every process of the grid: the process row
 * holding row ia answers for its columns, summed over the grid. NULL when out of memory. */
static void *tau_load(sp_call_t *c, const int *d, int ia, int ja, int k, const void *tau) {
    double *all = calloc((size_t)k + 1, sizeof *all);
    void *out = malloc(((size_t)k + 1) * es_of(c->dtype));
    if (!all || !out) {
        free(all);
        free(out);
        return NULL;
    }
    int iarow = ((ia - 1) / d[SP_MB] + d[SP_RSRC]) % c->nprow;
    for (int i = 0; i < k && c->myrow == iarow; i++) {
        int j = ja - 1 + i;
        if (col_owner(d, c->npcol, j) == c->mycol)
            all[i] = get(c->dtype, tau, col_local(d, c->npcol, j));
    }
    MPI_Allreduce(MPI_IN_PLACE, all, k, MPI_DOUBLE, MPI_SUM, dagr_comm(c->ctx));
    for (int i = 0; i < k; i++)
        put(c->dtype, out, i, all[i]);
    free(all);
    return out;
}

/* Writes the k tau values of qr into TAU's entries for columns ja .. ja + k - 1. */
static void tau_store(sp_call_t *c, const char *name, const dagr_qr_t *qr, const int *d, int ja,
                      int k, void *tau) {
    void *all = malloc(((size_t)k + 1) * es_of(c->dtype));
    sp_check_insert(c, name, all ? dagr_qr_tau_fetch(qr, all) : DAGR_ERR_NOMEM);
    for (int i = 0; i < k; i++) {
        int j = ja - 1 + i;
        if (col_owner(d, c->npcol, j) == c->mycol)
            put(c->dtype, tau, col_local(d, c->npcol, j), get(c->dtype, all, i));
    }
    free(all);
}

/* dagr's QR options: LAPACK storage. */
static const dagr_linalg_opts_t *householder(dagr_linalg_opts_t *o) {
    dagr_linalg_opts_init(o);
    o->variant = 3;
    return o;
}

/* ---- geqrf ---- */

typedef void geqrf_fn(cint *, cint *, void *, cint *, cint *, cint *, void *, void *, cint *,
                      int *);

static void geqrf(dagr_dtype_t dt, const char *name, cint *m, cint *n, void *a, cint *ia, cint *ja,
                  cint *desca, void *tau, void *work, cint *lwork, int *info) {
    geqrf_fn *real = (geqrf_fn *)sp_next(name);
    sp_call_t c;
    sp_desc_t da;
    dagr_darray_t *A;
    dagr_qr_t *qr = NULL;
    dagr_linalg_opts_t o;
    if (*lwork == -1) {
        sp_pass_early(SP_GEQRF, dt, desca[SP_CTXT], SP_PASS_QUERY);
        goto pass;
    }
    if (!sp_begin(&c, SP_GEQRF, dt, desca[SP_CTXT])) goto pass;
    if (!sp_desc_ok(&c, desca, *ia, *ja, *m, *n, &da)) {
        sp_pass(&c, SP_PASS_ARGS, NULL);
        goto pass;
    }
    if (*m == 0 || *n == 0) {
        sp_pass(&c, SP_PASS_EMPTY, NULL);
        goto pass;
    }
    double wmin[2] = {0, 0};
    int qinfo = 0, query = -1;
    real(m, n, a, ia, ja, desca, tau, wmin, &query, &qinfo);
    double need = get(dt, wmin, 0);
    if (qinfo != 0 || *lwork < need) {
        sp_pass(&c, SP_PASS_ARGS, NULL);
        goto pass;
    }
    sp_reason_t why = sp_wrap(&c, &da, a, *ia, *ja, *m, *n, &A);
    if (why != SP_NREASONS) {
        sp_pass(&c, why, NULL);
        goto pass;
    }
    dagr_status_t st = dagr_geqrf_ex(A, &qr, householder(&o));
    if (st == DAGR_ERR_ARG) {
        sp_pass(&c, SP_PASS_TILES, dagr_last_error());
        goto pass;
    }
    sp_check_insert(&c, name, st);
    sp_wait(&c, name, NULL);
    tau_store(&c, name, qr, da.d, *ja, *m < *n ? *m : *n, tau);
    dagr_qr_destroy(&qr);
    put(dt, work, 0, need);
    *info = 0;
    sp_served(&c);
    return;
pass:
    real(m, n, a, ia, ja, desca, tau, work, lwork, info);
}

SP_EXPORT void pdgeqrf_(cint *m, cint *n, double *a, cint *ia, cint *ja, cint *desca, double *tau,
                        double *work, cint *lwork, int *info) {
    geqrf(DAGR_DOUBLE, "pdgeqrf_", m, n, a, ia, ja, desca, tau, work, lwork, info);
}
SP_EXPORT void psgeqrf_(cint *m, cint *n, float *a, cint *ia, cint *ja, cint *desca, float *tau,
                        float *work, cint *lwork, int *info) {
    geqrf(DAGR_FLOAT, "psgeqrf_", m, n, a, ia, ja, desca, tau, work, lwork, info);
}

/* ---- ormqr ---- */

typedef void ormqr_fn(const char *, const char *, cint *, cint *, cint *, const void *, cint *,
                      cint *, cint *, const void *, void *, cint *, cint *, cint *, void *, cint *,
                      int *, size_t, size_t);

static void ormqr(dagr_dtype_t dt, const char *name, const char *side, const char *trans, cint *m,
                  cint *n, cint *k, const void *a, cint *ia, cint *ja, cint *desca, const void *tau,
                  void *cc, cint *ic, cint *jc, cint *descc, void *work, cint *lwork, int *info,
                  size_t ls, size_t lt) {
    ormqr_fn *real = (ormqr_fn *)sp_next(name);
    char S = sp_char(side), T = sp_char(trans);
    int nq = S == 'L' ? *m : *n;
    sp_call_t c;
    sp_desc_t da, dc;
    dagr_darray_t *A, *C;
    dagr_qr_t *qr = NULL;
    void *taus = NULL;
    if (*lwork == -1) {
        sp_pass_early(SP_ORMQR, dt, descc[SP_CTXT], SP_PASS_QUERY);
        goto pass;
    }
    if (!sp_begin(&c, SP_ORMQR, dt, descc[SP_CTXT])) goto pass;
    if ((S != 'L' && S != 'R') || (T != 'N' && T != 'T') || *k < 0 || *k > nq ||
        !sp_desc_ok(&c, desca, *ia, *ja, nq, *k, &da) ||
        !sp_desc_ok(&c, descc, *ic, *jc, *m, *n, &dc)) {
        sp_pass(&c, SP_PASS_ARGS, NULL);
        goto pass;
    }
    if (*m == 0 || *n == 0 || *k == 0) {
        sp_pass(&c, SP_PASS_EMPTY, NULL);
        goto pass;
    }
    double wmin[2] = {0, 0};
    int qinfo = 0, query = -1;
    real(side, trans, m, n, k, a, ia, ja, desca, tau, cc, ic, jc, descc, wmin, &query, &qinfo, ls,
         lt);
    double need = get(dt, wmin, 0);
    if (qinfo != 0 || *lwork < need) {
        sp_pass(&c, SP_PASS_ARGS, NULL);
        goto pass;
    }
    sp_reason_t why = sp_wrap(&c, &da, (void *)a, *ia, *ja, nq, *k, &A);
    if (why == SP_NREASONS) why = sp_wrap(&c, &dc, cc, *ic, *jc, *m, *n, &C);
    if (why != SP_NREASONS) {
        sp_pass(&c, why, NULL);
        goto pass;
    }
    taus = tau_load(&c, da.d, *ia, *ja, *k, tau);
    dagr_status_t st = taus ? dagr_qr_from_householder(A, taus, &qr) : DAGR_ERR_NOMEM;
    if (st == DAGR_OK) {
        st = dagr_ormqr(S == 'L' ? DAGR_LEFT : DAGR_RIGHT, T == 'N' ? DAGR_NO_TRANS : DAGR_TRANS, A,
                        qr, C);
        if (st == DAGR_ERR_ARG) {
            /* T's tasks went in and read A: done before ScaLAPACK takes the call */
            dagr_qr_destroy(&qr);
            sp_wait(&c, name, NULL);
        }
    }
    free(taus);
    if (st == DAGR_ERR_ARG) {
        sp_pass(&c, SP_PASS_TILES, dagr_last_error());
        goto pass;
    }
    sp_check_insert(&c, name, st);
    sp_wait(&c, name, NULL);
    dagr_qr_destroy(&qr);
    put(dt, work, 0, need);
    *info = 0;
    sp_served(&c);
    return;
pass:
    real(side, trans, m, n, k, a, ia, ja, desca, tau, cc, ic, jc, descc, work, lwork, info, ls, lt);
}

SP_EXPORT void pdormqr_(const char *side, const char *trans, cint *m, cint *n, cint *k,
                        const double *a, cint *ia, cint *ja, cint *desca, const double *tau,
                        double *c, cint *ic, cint *jc, cint *descc, double *work, cint *lwork,
                        int *info, size_t ls, size_t lt) {
    ormqr(DAGR_DOUBLE, "pdormqr_", side, trans, m, n, k, a, ia, ja, desca, tau, c, ic, jc, descc,
          work, lwork, info, ls, lt);
}
SP_EXPORT void psormqr_(const char *side, const char *trans, cint *m, cint *n, cint *k,
                        const float *a, cint *ia, cint *ja, cint *desca, const float *tau, float *c,
                        cint *ic, cint *jc, cint *descc, float *work, cint *lwork, int *info,
                        size_t ls, size_t lt) {
    ormqr(DAGR_FLOAT, "psormqr_", side, trans, m, n, k, a, ia, ja, desca, tau, c, ic, jc, descc,
          work, lwork, info, ls, lt);
}

/* ---- gels ---- */

typedef void gels_fn(const char *, cint *, cint *, cint *, void *, cint *, cint *, cint *, void *,
                     cint *, cint *, cint *, void *, cint *, int *, size_t);

static void gels(dagr_dtype_t dt, const char *name, const char *trans, cint *m, cint *n, cint *nrhs,
                 void *a, cint *ia, cint *ja, cint *desca, void *b, cint *ib, cint *jb, cint *descb,
                 void *work, cint *lwork, int *info, size_t lt) {
    gels_fn *real = (gels_fn *)sp_next(name);
    char T = sp_char(trans);
    sp_call_t c;
    sp_desc_t da, db;
    dagr_darray_t *A, *B;
    dagr_linalg_opts_t o;
    if (*lwork == -1) {
        sp_pass_early(SP_GELS, dt, desca[SP_CTXT], SP_PASS_QUERY);
        goto pass;
    }
    if (!sp_begin(&c, SP_GELS, dt, desca[SP_CTXT])) goto pass;
    int mb = *m > *n ? *m : *n; /* B holds max(m, n) rows */
    if ((T != 'N' && T != 'T') || !sp_desc_ok(&c, desca, *ia, *ja, *m, *n, &da) ||
        !sp_desc_ok(&c, descb, *ib, *jb, mb, *nrhs, &db)) {
        sp_pass(&c, SP_PASS_ARGS, NULL);
        goto pass;
    }
    if (*m == 0 || *n == 0 || *nrhs == 0) {
        sp_pass(&c, SP_PASS_EMPTY, NULL);
        goto pass;
    }
    if (T != 'N' || *m < *n) {
        sp_pass(&c, SP_PASS_CASE,
                "dagr's least squares is overdetermined (m >= n) with A not transposed");
        goto pass;
    }
    double wmin[2] = {0, 0};
    int qinfo = 0, query = -1;
    real(trans, m, n, nrhs, a, ia, ja, desca, b, ib, jb, descb, wmin, &query, &qinfo, lt);
    double need = get(dt, wmin, 0);
    if (qinfo != 0 || *lwork < need) {
        sp_pass(&c, SP_PASS_ARGS, NULL);
        goto pass;
    }
    sp_reason_t why = sp_wrap(&c, &da, a, *ia, *ja, *m, *n, &A);
    if (why == SP_NREASONS) why = sp_wrap(&c, &db, b, *ib, *jb, *m, *nrhs, &B);
    if (why != SP_NREASONS) {
        sp_pass(&c, why, NULL);
        goto pass;
    }
    dagr_status_t st = dagr_gels_ex(A, B, householder(&o));
    if (st == DAGR_ERR_ARG) {
        sp_pass(&c, SP_PASS_TILES, dagr_last_error());
        goto pass;
    }
    sp_check_insert(&c, name, st);
    int col = 0;
    *info = sp_wait(&c, name, &col) == DAGR_OK ? 0 : col;
    put(dt, work, 0, need);
    sp_served(&c);
    return;
pass:
    real(trans, m, n, nrhs, a, ia, ja, desca, b, ib, jb, descb, work, lwork, info, lt);
}

SP_EXPORT void pdgels_(const char *trans, cint *m, cint *n, cint *nrhs, double *a, cint *ia,
                       cint *ja, cint *desca, double *b, cint *ib, cint *jb, cint *descb,
                       double *work, cint *lwork, int *info, size_t lt) {
    gels(DAGR_DOUBLE, "pdgels_", trans, m, n, nrhs, a, ia, ja, desca, b, ib, jb, descb, work, lwork,
         info, lt);
}
SP_EXPORT void psgels_(const char *trans, cint *m, cint *n, cint *nrhs, float *a, cint *ia,
                       cint *ja, cint *desca, float *b, cint *ib, cint *jb, cint *descb,
                       float *work, cint *lwork, int *info, size_t lt) {
    gels(DAGR_FLOAT, "psgels_", trans, m, n, nrhs, a, ia, ja, desca, b, ib, jb, descb, work, lwork,
         info, lt);
}
