/* PBLAS level 3: p?gemm_, p?syrk_, p?symm_, p?trsm_, p?trmm_ served by dagr's BLAS 3.
 *
 * Each takes the Fortran arguments plus the hidden lengths of its character arguments
 * (passed on unchanged to ScaLAPACK). A call dagr serves wraps its operands, inserts the
 * routine and waits; dagr's own argument checks (tilings that do not conform) come before
 * anything is inserted, so such a call still goes to ScaLAPACK. */
#include "dropin.h"

typedef const int cint;

static dagr_op_t op_of(char t) {
    return t == 'N' ? DAGR_NO_TRANS : DAGR_TRANS;
}

static bool trans_ok(char t) {
    return t == 'N' || t == 'T' || t == 'C';
}

/* Wraps the operands (desc, local, ia, ja, rows, cols) in order; false when the call was
 * passed on (counted). */
typedef struct operand {
    const sp_desc_t *desc;
    void *local;
    int ia, ja, m, n;
    dagr_darray_t **out;
} operand_t;

static bool wrap_all(sp_call_t *c, int nops, const operand_t *ops) {
    for (int i = 0; i < nops; i++) {
        sp_reason_t why = sp_wrap(c, ops[i].desc, ops[i].local, ops[i].ia, ops[i].ja, ops[i].m,
                                  ops[i].n, ops[i].out);
        if (why != SP_NREASONS) {
            sp_pass(c, why, NULL);
            return false;
        }
    }
    return true;
}

/* Runs a dagr routine's status: DAGR_ERR_ARG (nothing inserted) passes the call on. */
static bool run(sp_call_t *c, const char *name, dagr_status_t st) {
    if (st == DAGR_ERR_ARG) {
        sp_pass(c, SP_PASS_TILES, dagr_last_error());
        return false;
    }
    sp_check_insert(c, name, st);
    sp_wait(c, name, NULL);
    sp_served(c);
    return true;
}

/* ---- gemm ---- */

typedef void gemm_fn(const char *, const char *, cint *, cint *, cint *, const void *, const void *,
                     cint *, cint *, cint *, const void *, cint *, cint *, cint *, const void *,
                     void *, cint *, cint *, cint *, size_t, size_t);

static void gemm(dagr_dtype_t dt, const char *name, const char *ta, const char *tb, cint *m,
                 cint *n, cint *k, const void *alpha, const void *a, cint *ia, cint *ja,
                 cint *desca, const void *b, cint *ib, cint *jb, cint *descb, const void *beta,
                 void *cc, cint *ic, cint *jc, cint *descc, size_t lta, size_t ltb) {
    char TA = sp_char(ta), TB = sp_char(tb);
    sp_call_t c;
    sp_desc_t da, db, dc;
    (void)db, (void)dc;
    if (!sp_begin(&c, SP_GEMM, dt, descc[SP_CTXT])) goto pass;
    int am = TA == 'N' ? *m : *k, an = TA == 'N' ? *k : *m;
    int bm = TB == 'N' ? *k : *n, bn = TB == 'N' ? *n : *k;
    if (!trans_ok(TA) || !trans_ok(TB) || !sp_desc_ok(&c, desca, *ia, *ja, am, an, &da) ||
        !sp_desc_ok(&c, descb, *ib, *jb, bm, bn, &db) ||
        !sp_desc_ok(&c, descc, *ic, *jc, *m, *n, &dc)) {
        sp_pass(&c, SP_PASS_ARGS, NULL);
        goto pass;
    }
    if (*m == 0 || *n == 0 || *k == 0) {
        sp_pass(&c, SP_PASS_EMPTY, NULL);
        goto pass;
    }
    dagr_darray_t *A, *B, *C;
    operand_t ops[3] = {{&da, (void *)a, *ia, *ja, am, an, &A},
                        {&db, (void *)b, *ib, *jb, bm, bn, &B},
                        {&dc, cc, *ic, *jc, *m, *n, &C}};
    if (!wrap_all(&c, 3, ops)) goto pass;
    if (run(&c, name,
            dagr_gemm(op_of(TA), op_of(TB), sp_scalar(dt, alpha), A, B, sp_scalar(dt, beta), C)))
        return;
pass:
    ((gemm_fn *)sp_next(name))(ta, tb, m, n, k, alpha, a, ia, ja, desca, b, ib, jb, descb, beta, cc,
                               ic, jc, descc, lta, ltb);
}

SP_EXPORT void pdgemm_(const char *ta, const char *tb, cint *m, cint *n, cint *k,
                       const double *alpha, const double *a, cint *ia, cint *ja, cint *desca,
                       const double *b, cint *ib, cint *jb, cint *descb, const double *beta,
                       double *c, cint *ic, cint *jc, cint *descc, size_t lta, size_t ltb) {
    gemm(DAGR_DOUBLE, "pdgemm_", ta, tb, m, n, k, alpha, a, ia, ja, desca, b, ib, jb, descb, beta,
         c, ic, jc, descc, lta, ltb);
}

SP_EXPORT void psgemm_(const char *ta, const char *tb, cint *m, cint *n, cint *k,
                       const float *alpha, const float *a, cint *ia, cint *ja, cint *desca,
                       const float *b, cint *ib, cint *jb, cint *descb, const float *beta, float *c,
                       cint *ic, cint *jc, cint *descc, size_t lta, size_t ltb) {
    gemm(DAGR_FLOAT, "psgemm_", ta, tb, m, n, k, alpha, a, ia, ja, desca, b, ib, jb, descb, beta, c,
         ic, jc, descc, lta, ltb);
}

/* ---- syrk ---- */

typedef void syrk_fn(const char *, const char *, cint *, cint *, const void *, const void *, cint *,
                     cint *, cint *, const void *, void *, cint *, cint *, cint *, size_t, size_t);

static void syrk(dagr_dtype_t dt, const char *name, const char *uplo, const char *trans, cint *n,
                 cint *k, const void *alpha, const void *a, cint *ia, cint *ja, cint *desca,
                 const void *beta, void *cc, cint *ic, cint *jc, cint *descc, size_t lu,
                 size_t lt) {
    char U = sp_char(uplo), T = sp_char(trans);
    sp_call_t c;
    sp_desc_t da, db, dc;
    (void)db, (void)dc;
    if (!sp_begin(&c, SP_SYRK, dt, descc[SP_CTXT])) goto pass;
    int am = T == 'N' ? *n : *k, an = T == 'N' ? *k : *n;
    if ((U != 'U' && U != 'L') || !trans_ok(T) || !sp_desc_ok(&c, desca, *ia, *ja, am, an, &da) ||
        !sp_desc_ok(&c, descc, *ic, *jc, *n, *n, &dc)) {
        sp_pass(&c, SP_PASS_ARGS, NULL);
        goto pass;
    }
    if (*n == 0 || *k == 0) {
        sp_pass(&c, SP_PASS_EMPTY, NULL);
        goto pass;
    }
    dagr_darray_t *A, *C;
    operand_t ops[2] = {{&da, (void *)a, *ia, *ja, am, an, &A}, {&dc, cc, *ic, *jc, *n, *n, &C}};
    if (!wrap_all(&c, 2, ops)) goto pass;
    if (run(&c, name,
            dagr_syrk(U == 'U' ? DAGR_UPPER : DAGR_LOWER, op_of(T), sp_scalar(dt, alpha), A,
                      sp_scalar(dt, beta), C)))
        return;
pass:
    ((syrk_fn *)sp_next(name))(uplo, trans, n, k, alpha, a, ia, ja, desca, beta, cc, ic, jc, descc,
                               lu, lt);
}

SP_EXPORT void pdsyrk_(const char *uplo, const char *trans, cint *n, cint *k, const double *alpha,
                       const double *a, cint *ia, cint *ja, cint *desca, const double *beta,
                       double *c, cint *ic, cint *jc, cint *descc, size_t lu, size_t lt) {
    syrk(DAGR_DOUBLE, "pdsyrk_", uplo, trans, n, k, alpha, a, ia, ja, desca, beta, c, ic, jc, descc,
         lu, lt);
}

SP_EXPORT void pssyrk_(const char *uplo, const char *trans, cint *n, cint *k, const float *alpha,
                       const float *a, cint *ia, cint *ja, cint *desca, const float *beta, float *c,
                       cint *ic, cint *jc, cint *descc, size_t lu, size_t lt) {
    syrk(DAGR_FLOAT, "pssyrk_", uplo, trans, n, k, alpha, a, ia, ja, desca, beta, c, ic, jc, descc,
         lu, lt);
}

/* ---- symm ---- */

typedef void symm_fn(const char *, const char *, cint *, cint *, const void *, const void *, cint *,
                     cint *, cint *, const void *, cint *, cint *, cint *, const void *, void *,
                     cint *, cint *, cint *, size_t, size_t);

static void symm(dagr_dtype_t dt, const char *name, const char *side, const char *uplo, cint *m,
                 cint *n, const void *alpha, const void *a, cint *ia, cint *ja, cint *desca,
                 const void *b, cint *ib, cint *jb, cint *descb, const void *beta, void *cc,
                 cint *ic, cint *jc, cint *descc, size_t ls, size_t lu) {
    char S = sp_char(side), U = sp_char(uplo);
    sp_call_t c;
    sp_desc_t da, db, dc;
    (void)db, (void)dc;
    if (!sp_begin(&c, SP_SYMM, dt, descc[SP_CTXT])) goto pass;
    int na = S == 'L' ? *m : *n;
    if ((S != 'L' && S != 'R') || (U != 'U' && U != 'L') ||
        !sp_desc_ok(&c, desca, *ia, *ja, na, na, &da) ||
        !sp_desc_ok(&c, descb, *ib, *jb, *m, *n, &db) ||
        !sp_desc_ok(&c, descc, *ic, *jc, *m, *n, &dc)) {
        sp_pass(&c, SP_PASS_ARGS, NULL);
        goto pass;
    }
    if (*m == 0 || *n == 0) {
        sp_pass(&c, SP_PASS_EMPTY, NULL);
        goto pass;
    }
    dagr_darray_t *A, *B, *C;
    operand_t ops[3] = {{&da, (void *)a, *ia, *ja, na, na, &A},
                        {&db, (void *)b, *ib, *jb, *m, *n, &B},
                        {&dc, cc, *ic, *jc, *m, *n, &C}};
    if (!wrap_all(&c, 3, ops)) goto pass;
    if (run(&c, name,
            dagr_symm(S == 'L' ? DAGR_LEFT : DAGR_RIGHT, U == 'U' ? DAGR_UPPER : DAGR_LOWER,
                      sp_scalar(dt, alpha), A, B, sp_scalar(dt, beta), C)))
        return;
pass:
    ((symm_fn *)sp_next(name))(side, uplo, m, n, alpha, a, ia, ja, desca, b, ib, jb, descb, beta,
                               cc, ic, jc, descc, ls, lu);
}

SP_EXPORT void pdsymm_(const char *side, const char *uplo, cint *m, cint *n, const double *alpha,
                       const double *a, cint *ia, cint *ja, cint *desca, const double *b, cint *ib,
                       cint *jb, cint *descb, const double *beta, double *c, cint *ic, cint *jc,
                       cint *descc, size_t ls, size_t lu) {
    symm(DAGR_DOUBLE, "pdsymm_", side, uplo, m, n, alpha, a, ia, ja, desca, b, ib, jb, descb, beta,
         c, ic, jc, descc, ls, lu);
}

SP_EXPORT void pssymm_(const char *side, const char *uplo, cint *m, cint *n, const float *alpha,
                       const float *a, cint *ia, cint *ja, cint *desca, const float *b, cint *ib,
                       cint *jb, cint *descb, const float *beta, float *c, cint *ic, cint *jc,
                       cint *descc, size_t ls, size_t lu) {
    symm(DAGR_FLOAT, "pssymm_", side, uplo, m, n, alpha, a, ia, ja, desca, b, ib, jb, descb, beta,
         c, ic, jc, descc, ls, lu);
}

/* ---- trsm and trmm ---- */

typedef void trxm_fn(const char *, const char *, const char *, const char *, cint *, cint *,
                     const void *, const void *, cint *, cint *, cint *, void *, cint *, cint *,
                     cint *, size_t, size_t, size_t, size_t);

typedef dagr_status_t trxm_dagr(dagr_side_t, dagr_uplo_t, dagr_op_t, dagr_diag_t, double,
                                const dagr_darray_t *, dagr_darray_t *);

static void trxm(sp_routine_t r, trxm_dagr *fn, dagr_dtype_t dt, const char *name, const char *side,
                 const char *uplo, const char *trans, const char *diag, cint *m, cint *n,
                 const void *alpha, const void *a, cint *ia, cint *ja, cint *desca, void *b,
                 cint *ib, cint *jb, cint *descb, size_t ls, size_t lu, size_t lt, size_t ld) {
    char S = sp_char(side), U = sp_char(uplo), T = sp_char(trans), D = sp_char(diag);
    sp_call_t c;
    sp_desc_t da, db, dc;
    (void)db, (void)dc;
    if (!sp_begin(&c, r, dt, descb[SP_CTXT])) goto pass;
    int na = S == 'L' ? *m : *n;
    if ((S != 'L' && S != 'R') || (U != 'U' && U != 'L') || !trans_ok(T) ||
        (D != 'U' && D != 'N') || !sp_desc_ok(&c, desca, *ia, *ja, na, na, &da) ||
        !sp_desc_ok(&c, descb, *ib, *jb, *m, *n, &db)) {
        sp_pass(&c, SP_PASS_ARGS, NULL);
        goto pass;
    }
    if (*m == 0 || *n == 0) {
        sp_pass(&c, SP_PASS_EMPTY, NULL);
        goto pass;
    }
    dagr_darray_t *A, *B;
    operand_t ops[2] = {{&da, (void *)a, *ia, *ja, na, na, &A}, {&db, b, *ib, *jb, *m, *n, &B}};
    if (!wrap_all(&c, 2, ops)) goto pass;
    if (run(&c, name,
            fn(S == 'L' ? DAGR_LEFT : DAGR_RIGHT, U == 'U' ? DAGR_UPPER : DAGR_LOWER, op_of(T),
               D == 'U' ? DAGR_UNIT : DAGR_NON_UNIT, sp_scalar(dt, alpha), A, B)))
        return;
pass:
    ((trxm_fn *)sp_next(name))(side, uplo, trans, diag, m, n, alpha, a, ia, ja, desca, b, ib, jb,
                               descb, ls, lu, lt, ld);
}

#define TRXM(sym, r, fn, dt, T)                                                                    \
    SP_EXPORT void sym(const char *side, const char *uplo, const char *trans, const char *diag,    \
                       cint *m, cint *n, const T *alpha, const T *a, cint *ia, cint *ja,           \
                       cint *desca, T *b, cint *ib, cint *jb, cint *descb, size_t ls, size_t lu,   \
                       size_t lt, size_t ld) {                                                     \
        trxm(r, fn, dt, #sym, side, uplo, trans, diag, m, n, alpha, a, ia, ja, desca, b, ib, jb,   \
             descb, ls, lu, lt, ld);                                                               \
    }

TRXM(pdtrsm_, SP_TRSM, dagr_trsm, DAGR_DOUBLE, double)
TRXM(pstrsm_, SP_TRSM, dagr_trsm, DAGR_FLOAT, float)
TRXM(pdtrmm_, SP_TRMM, dagr_trmm, DAGR_DOUBLE, double)
TRXM(pstrmm_, SP_TRMM, dagr_trmm, DAGR_FLOAT, float)
