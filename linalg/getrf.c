/* LU with partial pivoting over the whole column (as ScaLAPACK's pdgetrf), and the solves.
 *
 * Step k of the factorization (k < min(mt, nt)):
 *   1. lu_panel factors tile column k from tile row k down in one task (LAPACK getrf on a
 *      contiguous copy), recording the step's pivots in a small handle;
 *   2. lu_swap applies those interchanges to every other tile column from tile row k down:
 *      right of k it also solves the top tile with L(k, k) (giving U's block row), left of k
 *      it keeps L in the row order LAPACK's dgetrf leaves it;
 *   3. gemm updates the trailing tiles, A(i, j) -= A(i, k) A(k, j).
 * The tasks of the next `lookahead` tile columns get a higher priority so that the next panel
 * is ready while the rest of the trailing update runs. opts.ib is refused unless at its
 * default: LAPACK's getrf (recursive in OpenBLAS) chooses its own blocking inside the panel.
 *
 * A stack (one tile column from the diagonal down) of more than LU_MAX_STACK tiles is first
 * gathered into one contiguous block by lu_copy tasks (LU_COPY_CHUNK tiles each), worked on
 * there, and scattered back: the same tiles travel
 * to the same rank as in the one-task case, plus two local copies.
 *
 * Last, the result (A for getrf, X for getrs and gesv) is checked for NaN and Inf
 * (la_check_finite), after the task reporting a zero pivot (see getrf_insert). */
#include "linalg_impl.h"
#include "stack.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Pivots one piv_set task writes (its argument block stays under DAGR_MAX_ARGS). */
#define PIV_SET_MAX 480

struct dagr_pivots {
    dagr_ctx_t *ctx;
    int64_t m, n, nb, kt;
    dagr_data_t **piv; /* kt handles of int64 global rows (0-based) */
    dagr_data_t *info; /* int64: first zero pivot's global column (1-based), 0 if none */
};

enum { PRIO_PANEL = 3, PRIO_NEXT = 2, PRIO_TRAIL = 0, PRIO_LEFT = -1 };

static int64_t min64(int64_t a, int64_t b) {
    return a < b ? a : b;
}

/* Pivots of step k of an m x n array of nb-tiles. */
static int64_t step_npiv(int64_t m, int64_t n, int64_t nb, int64_t k) {
    return min64(min64(m, n) - k * nb, nb);
}

/* Inserts the interchanges of step k on tile column j of X (tile rows k down); with L, also
 * the solve of the top tile with the unit lower triangle of L's tile (k, k). */
static dagr_status_t insert_swap(const dagr_darray_t *X, int64_t k, int64_t j, dagr_data_t *piv,
                                 int64_t npiv, int reverse, const dagr_darray_t *L, int prio) {
    lu_op_t o = la_stack_op(X, k, j, npiv);
    o.reverse = reverse;
    o.trsm = L != NULL;
    dagr_access_t extra[2] = {{piv, DAGR_READ}, {L ? da_handle(L, k, k) : NULL, DAGR_READ}};
    return la_stack_spawn(&la_lu_swap_kernel, o, X, k, j, L ? 2 : 1, extra, prio,
                          L ? (double)npiv * (double)npiv * (double)o.cols : 0);
}

/* C(i, j) -= op(A(ai, aj)) B(bi, bj) with inner dimension kk. */
static dagr_status_t insert_gemm(const dagr_darray_t *A, int64_t ai, int64_t aj, int ta,
                                 const dagr_darray_t *B, int64_t bi, int64_t bj,
                                 const dagr_darray_t *C, int64_t i, int64_t j, int64_t kk,
                                 int prio) {
    tile_op_t op = {0};
    op.dtype = (int32_t)C->dtype;
    op.ta = ta;
    op.tb = DAGR_NO_TRANS;
    op.m = da_tile_rows(C, i);
    op.n = da_tile_cols(C, j);
    op.k = kk;
    op.alpha = -1.0;
    op.beta = 1.0;
    dagr_access_t acc[3] = {{da_handle(C, i, j), DAGR_RW},
                            {da_handle(A, ai, aj), DAGR_READ},
                            {da_handle(B, bi, bj), DAGR_READ}};
    return la_spawn(&la_gemm_kernel, &op, 3, acc, prio, 2.0 * (double)(op.m * op.n * kk), C->ctx);
}

/* B(k, j) = op(A(k, k))^-1 B(k, j) for the triangle (uplo, diag) of A's diagonal tile. */
static dagr_status_t insert_trsm(const dagr_darray_t *A, int64_t k, int uplo, int trans, int diag,
                                 const dagr_darray_t *B, int64_t j, int prio) {
    tile_op_t op = {0};
    op.dtype = (int32_t)B->dtype;
    op.side = DAGR_LEFT;
    op.uplo = uplo;
    op.ta = trans;
    op.diag = diag;
    op.m = da_tile_rows(B, k);
    op.n = da_tile_cols(B, j);
    op.alpha = 1.0;
    dagr_access_t acc[2] = {{da_handle(B, k, j), DAGR_RW}, {da_handle(A, k, k), DAGR_READ}};
    return la_spawn(&la_trsm_kernel, &op, 2, acc, prio, (double)(op.m * op.m * op.n), B->ctx);
}

dagr_status_t dagr_pivots_destroy(dagr_pivots_t **piv) {
    if (!piv || !*piv) return DAGR_OK;
    dagr_pivots_t *p = *piv;
    dagr_status_t st = DAGR_OK;
    for (int64_t k = 0; k < p->kt; k++) {
        dagr_status_t s = dagr_data_destroy(&p->piv[k]);
        if (st == DAGR_OK) st = s;
    }
    dagr_status_t s = dagr_data_destroy(&p->info);
    if (st == DAGR_OK) st = s;
    free(p->piv);
    free(p);
    *piv = NULL;
    return st;
}

/* Makes the pivot handles of A's factorization: step k's on the owner of the diagonal tile
 * (k, k), where its panel runs. */
static dagr_status_t pivots_new(const dagr_darray_t *A, dagr_pivots_t **out) {
    dagr_pivots_t *p = calloc(1, sizeof *p);
    int64_t kt = min64(A->mt, A->nt);
    DAGR_CHECK(p, DAGR_ERR_NOMEM, "cannot allocate the pivots");
    p->ctx = A->ctx;
    p->m = A->m;
    p->n = A->n;
    p->nb = A->nb;
    p->piv = calloc((size_t)kt + 1, sizeof *p->piv);
    dagr_status_t st = DAGR_OK;
    if (!p->piv) {
        free(p);
        return DAGR_ERR(DAGR_ERR_NOMEM, "cannot allocate the pivots");
    }
    for (int64_t k = 0; k < kt && st == DAGR_OK; k++) {
        int owner = dagr_data_owner(da_handle(A, k, k));
        st = dagr_data_create(A->ctx, (size_t)step_npiv(A->m, A->n, A->nb, k) * sizeof(int64_t),
                              owner, &p->piv[k]);
        if (st == DAGR_OK) p->kt = k + 1;
    }
    if (st == DAGR_OK) st = dagr_data_create(A->ctx, sizeof(int64_t), 0, &p->info);
    if (st != DAGR_OK) {
        dagr_pivots_destroy(&p);
        return st;
    }
    *out = p;
    return DAGR_OK;
}

static dagr_status_t getrf_check(const dagr_darray_t *A) {
    DAGR_TRY(la_check_dtype(A, "A"));
    DAGR_CHECK(A->mb == A->nb, DAGR_ERR_ARG, "A has %lld x %lld tiles: LU needs square tiles",
               (long long)A->mb, (long long)A->nb);
    return DAGR_OK;
}

static dagr_status_t getrf_insert(dagr_darray_t *A, const dagr_pivots_t *p, int lookahead) {
    int64_t nb = A->nb;
    for (int64_t k = 0; k < p->kt; k++) {
        int64_t npiv = step_npiv(A->m, A->n, nb, k);
        lu_op_t o = la_stack_op(A, k, k, npiv);
        dagr_access_t extra[2] = {{p->piv[k], DAGR_WRITE}, {p->info, DAGR_RW}};
        double rows = (double)(A->m - k * nb), cols = (double)o.cols, mn = (double)npiv;
        double flops =
            2.0 * (rows * cols * mn - (rows + cols) * mn * mn / 2.0 + mn * mn * mn / 3.0);
        DAGR_TRY(la_stack_spawn(&la_lu_panel_kernel, o, A, k, k, 2, extra, PRIO_PANEL,
                                flops >= 0 ? flops : 0));

        for (int64_t j = k + 1; j < A->nt; j++) {
            int prio = j - k <= lookahead ? PRIO_NEXT : PRIO_TRAIL;
            DAGR_TRY(insert_swap(A, k, j, p->piv[k], npiv, 0, A, prio));
            for (int64_t i = k + 1; i < A->mt; i++)
                DAGR_TRY(insert_gemm(A, i, k, DAGR_NO_TRANS, A, k, j, A, i, j, npiv, prio));
        }
        /* The interchanges of step k reach the L part now rather than at the end: nothing
         * else touches those tiles any more, so these tasks only fill idle time. */
        for (int64_t j = 0; j < k; j++)
            DAGR_TRY(insert_swap(A, k, j, p->piv[k], npiv, 0, NULL, PRIO_LEFT));
    }
    /* Only the checks of the results (la_check_finite) depend on this task: the factors and
     * the solves do not read info. It writes info so that they come after it and are poisoned
     * when it fails: a zero pivot makes the solve divide by zero, and the wait then reports
     * the singular column rather than, depending on timing, the Inf it produced. */
    info_op_t op = {.factor = 'U'};
    dagr_access_t acc = {p->info, DAGR_RW};
    return dagr_spawn(A->ctx, &la_lu_info_kernel, &op, sizeof op, 1, &acc, NULL);
}

/* dagr_getrf_ex without the check of the result: gesv checks X only. */
static dagr_status_t getrf_factor(dagr_darray_t *A, dagr_pivots_t **piv_out,
                                  const dagr_linalg_opts_t *opts) {
    DAGR_TRY(getrf_check(A));
    dagr_linalg_opts_t o;
    DAGR_TRY(la_opts(opts, LA_USES_LOOKAHEAD, "dagr_getrf_ex", &o));
    dagr_pivots_t *p = NULL;
    DAGR_TRY(pivots_new(A, &p));
    dagr_status_t st = getrf_insert(A, p, o.lookahead);
    if (st != DAGR_OK) {
        dagr_pivots_destroy(&p);
        return st;
    }
    *piv_out = p;
    return DAGR_OK;
}

dagr_status_t dagr_getrf_ex(dagr_darray_t *A, dagr_pivots_t **piv_out,
                            const dagr_linalg_opts_t *opts) {
    DAGR_CHECK(piv_out, DAGR_ERR_ARG, "piv_out is NULL");
    dagr_pivots_t *p = NULL;
    DAGR_TRY(getrf_factor(A, &p, opts));
    dagr_status_t st = la_check_finite(A, LA_FULL, p->info, "getrf");
    if (st != DAGR_OK) {
        dagr_pivots_destroy(&p);
        return st;
    }
    *piv_out = p;
    return DAGR_OK;
}

dagr_status_t dagr_getrf(dagr_darray_t *A, dagr_pivots_t **piv_out) {
    return dagr_getrf_ex(A, piv_out, NULL);
}

static dagr_status_t getrs_check(dagr_op_t trans, const dagr_darray_t *A, const dagr_pivots_t *piv,
                                 const dagr_darray_t *B) {
    DAGR_TRY(la_check_same(A, B, "A", "B"));
    DAGR_CHECK(trans == DAGR_NO_TRANS || trans == DAGR_TRANS, DAGR_ERR_ARG,
               "trans %d is not DAGR_NO_TRANS or DAGR_TRANS", (int)trans);
    DAGR_CHECK(piv, DAGR_ERR_ARG, "piv is NULL");
    DAGR_CHECK(A->m == A->n, DAGR_ERR_ARG, "A is %lld x %lld: the solve needs a square A",
               (long long)A->m, (long long)A->n);
    DAGR_CHECK(A->mb == A->nb, DAGR_ERR_ARG, "A has %lld x %lld tiles: LU needs square tiles",
               (long long)A->mb, (long long)A->nb);
    DAGR_CHECK(piv->ctx == A->ctx && piv->m == A->m && piv->n == A->n && piv->nb == A->nb,
               DAGR_ERR_ARG, "piv (of a %lld x %lld array of %lld-tiles) is not A's",
               (long long)piv->m, (long long)piv->n, (long long)piv->nb);
    DAGR_CHECK(B->m == A->n, DAGR_ERR_ARG, "B has %lld rows but A has %lld columns",
               (long long)B->m, (long long)A->n);
    DAGR_CHECK(B->mb == A->nb, DAGR_ERR_ARG,
               "B has tiles of %lld rows but A's tiles have %lld columns", (long long)B->mb,
               (long long)A->nb);
    DAGR_CHECK(!da_shares(A, B), DAGR_ERR_ARG, "A and B share tiles");
    return DAGR_OK;
}

/* Solves op(A) X = B, A = P^T L U holding L and U, B holding X afterwards. */
static dagr_status_t getrs_insert(dagr_op_t trans, const dagr_darray_t *A, const dagr_pivots_t *p,
                                  dagr_darray_t *B) {
    int64_t kt = p->kt, mt = A->mt;
    for (int64_t j = 0; j < B->nt; j++) {
        if (trans == DAGR_NO_TRANS) {
            /* X = U^-1 L^-1 P B */
            for (int64_t k = 0; k < kt; k++)
                DAGR_TRY(
                    insert_swap(B, k, j, p->piv[k], step_npiv(p->m, p->n, p->nb, k), 0, NULL, 0));
            for (int64_t k = 0; k < mt; k++) {
                DAGR_TRY(insert_trsm(A, k, DAGR_LOWER, DAGR_NO_TRANS, DAGR_UNIT, B, j, 1));
                for (int64_t i = k + 1; i < mt; i++)
                    DAGR_TRY(insert_gemm(A, i, k, DAGR_NO_TRANS, B, k, j, B, i, j,
                                         da_tile_rows(B, k), 0));
            }
            for (int64_t k = mt - 1; k >= 0; k--) {
                DAGR_TRY(insert_trsm(A, k, DAGR_UPPER, DAGR_NO_TRANS, DAGR_NON_UNIT, B, j, 1));
                for (int64_t i = 0; i < k; i++)
                    DAGR_TRY(insert_gemm(A, i, k, DAGR_NO_TRANS, B, k, j, B, i, j,
                                         da_tile_rows(B, k), 0));
            }
        } else {
            /* A^T = U^T L^T P, so X = P^T L^-T U^-T B */
            for (int64_t k = 0; k < mt; k++) {
                DAGR_TRY(insert_trsm(A, k, DAGR_UPPER, DAGR_TRANS, DAGR_NON_UNIT, B, j, 1));
                for (int64_t i = k + 1; i < mt; i++)
                    DAGR_TRY(
                        insert_gemm(A, k, i, DAGR_TRANS, B, k, j, B, i, j, da_tile_rows(B, k), 0));
            }
            for (int64_t k = mt - 1; k >= 0; k--) {
                DAGR_TRY(insert_trsm(A, k, DAGR_LOWER, DAGR_TRANS, DAGR_UNIT, B, j, 1));
                for (int64_t i = 0; i < k; i++)
                    DAGR_TRY(
                        insert_gemm(A, k, i, DAGR_TRANS, B, k, j, B, i, j, da_tile_rows(B, k), 0));
            }
            for (int64_t k = kt - 1; k >= 0; k--)
                DAGR_TRY(
                    insert_swap(B, k, j, p->piv[k], step_npiv(p->m, p->n, p->nb, k), 1, NULL, 0));
        }
    }
    return DAGR_OK;
}

dagr_status_t dagr_getrs(dagr_op_t trans, const dagr_darray_t *A, const dagr_pivots_t *piv,
                         dagr_darray_t *B) {
    return dagr_getrs_ex(trans, A, piv, B, NULL);
}

dagr_status_t dagr_getrs_ex(dagr_op_t trans, const dagr_darray_t *A, const dagr_pivots_t *piv,
                            dagr_darray_t *B, const dagr_linalg_opts_t *opts) {
    dagr_linalg_opts_t o;
    DAGR_TRY(la_opts(opts, 0, "dagr_getrs_ex", &o));
    DAGR_TRY(getrs_check(trans, A, piv, B));
    DAGR_TRY(getrs_insert(trans, A, piv, B));
    return la_check_finite(B, LA_FULL, piv->info, "getrs");
}

dagr_status_t dagr_gesv_ex(dagr_darray_t *A, dagr_darray_t *B, const dagr_linalg_opts_t *opts) {
    DAGR_TRY(getrf_check(A));
    /* Everything getrs would refuse is refused before getrf inserts anything. */
    DAGR_TRY(la_check_same(A, B, "A", "B"));
    DAGR_CHECK(A->m == A->n, DAGR_ERR_ARG, "A is %lld x %lld: the solve needs a square A",
               (long long)A->m, (long long)A->n);
    DAGR_CHECK(B->m == A->n, DAGR_ERR_ARG, "B has %lld rows but A has %lld columns",
               (long long)B->m, (long long)A->n);
    DAGR_CHECK(B->mb == A->nb, DAGR_ERR_ARG,
               "B has tiles of %lld rows but A's tiles have %lld columns", (long long)B->mb,
               (long long)A->nb);
    DAGR_CHECK(!da_shares(A, B), DAGR_ERR_ARG, "A and B share tiles");
    dagr_pivots_t *p = NULL;
    DAGR_TRY(getrf_factor(A, &p, opts));
    dagr_status_t st = getrs_insert(DAGR_NO_TRANS, A, p, B);
    if (st == DAGR_OK) st = la_check_finite(B, LA_FULL, p->info, "gesv");
    dagr_status_t s2 = dagr_pivots_destroy(&p);
    return st != DAGR_OK ? st : s2;
}

dagr_status_t dagr_gesv(dagr_darray_t *A, dagr_darray_t *B) {
    return dagr_gesv_ex(A, B, NULL);
}

/* Writes pivots first .. first + count - 1 of a step's handle (buffer 0, RW) from the
 * argument block: rows are 0-based. A step of more pivots than one block holds takes several
 * tasks. */
typedef struct piv_set_op {
    int64_t first, count;
    int64_t rows[PIV_SET_MAX];
} piv_set_op_t;

static dagr_task_result_t k_piv_set(const dagr_task_view_t *t) {
    const piv_set_op_t *o = t->args;
    memcpy((int64_t *)t->buf[0] + o->first, o->rows, (size_t)o->count * sizeof(int64_t));
    return DAGR_TASK_DONE;
}

static const dagr_kernel_t piv_set_kernel = {.name = "piv_set", .cpu = k_piv_set};

dagr_status_t dagr_pivots_from_lapack(const dagr_darray_t *A, const int64_t *ipiv,
                                      dagr_pivots_t **piv_out) {
    DAGR_CHECK(A, DAGR_ERR_ARG, "A is NULL");
    DAGR_CHECK(piv_out, DAGR_ERR_ARG, "piv_out is NULL");
    DAGR_TRY(getrf_check(A));
    int64_t total = min64(A->m, A->n);
    DAGR_CHECK(ipiv || total == 0, DAGR_ERR_ARG, "ipiv is NULL");
    /* LAPACK's rule: row i (1-based) is interchanged with a row at or below it. */
    for (int64_t i = 0; i < total; i++)
        DAGR_CHECK(ipiv[i] >= i + 1 && ipiv[i] <= A->m, DAGR_ERR_ARG,
                   "ipiv[%lld] = %lld: pivot %lld must be a row in [%lld, %lld] (1-based)",
                   (long long)i, (long long)ipiv[i], (long long)(i + 1), (long long)(i + 1),
                   (long long)A->m);
    dagr_pivots_t *p = NULL;
    DAGR_TRY(pivots_new(A, &p));
    dagr_status_t st = DAGR_OK;
    for (int64_t k = 0; k < p->kt && st == DAGR_OK; k++) {
        int64_t npiv = step_npiv(A->m, A->n, A->nb, k);
        for (int64_t f = 0; f < npiv && st == DAGR_OK; f += PIV_SET_MAX) {
            piv_set_op_t o = {.first = f, .count = min64(npiv - f, PIV_SET_MAX)};
            for (int64_t i = 0; i < o.count; i++)
                o.rows[i] = ipiv[k * A->nb + f + i] - 1;
            dagr_access_t acc = {p->piv[k], DAGR_RW};
            size_t size = offsetof(piv_set_op_t, rows) + (size_t)o.count * sizeof(int64_t);
            st = dagr_spawn(A->ctx, &piv_set_kernel, &o, size, 1, &acc, NULL);
        }
    }
    if (st != DAGR_OK) {
        dagr_pivots_destroy(&p);
        return st;
    }
    *piv_out = p;
    return DAGR_OK;
}

dagr_status_t dagr_pivots_fetch(const dagr_pivots_t *piv, int64_t *ipiv) {
    DAGR_CHECK(piv, DAGR_ERR_ARG, "piv is NULL");
    int64_t total = min64(piv->m, piv->n);
    DAGR_CHECK(ipiv || total == 0, DAGR_ERR_ARG, "ipiv is NULL");
    for (int64_t k = 0; k < piv->kt; k++) {
        DAGR_TRY(dagr_fetch(piv->piv[k], ipiv + k * piv->nb, -1));
        for (int64_t i = 0; i < step_npiv(piv->m, piv->n, piv->nb, k); i++)
            ipiv[k * piv->nb + i] += 1; /* LAPACK's 1-based rows */
    }
    if (piv->kt == 0) DAGR_TRY(dagr_wait_all(piv->ctx));
    return DAGR_OK;
}
