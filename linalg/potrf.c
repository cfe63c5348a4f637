/* Cholesky: right-looking tile potrf, potrs as two triangular solves, posv as both in one
 * graph.
 *
 * Step k of potrf factors the diagonal tile, solves the panel tiles against it and updates the
 * trailing matrix (syrk on diagonal tiles, gemm elsewhere). The panel is on the critical
 * path, so its tasks outrank every update; the updates of the next `lookahead` tile columns
 * are boosted to the level of their panel, so that panel k + 1 can start while the rest of
 * step k's update still runs (la_prio). A tile that is not positive definite fails its task
 * with DAGR_ERR_NOT_SPD and the global column; the runtime poisons what depends on it and
 * every rank sees the error at the next wait.
 *
 * The factor needs no separate NaN/Inf pass (la_check_finite) as other routines' results do:
 * a non-finite entry in row i of the factor reaches its diagonal entry (L(i, i)^2 = A(i, i) -
 * sum L(i, k)^2 turns NaN or -Inf), so a NaN or an Inf in the triangle of A, or an overflow,
 * always makes a potrf tile task fail with DAGR_ERR_NOT_SPD and the column, as LAPACK's info
 * would. posv checks X: every tile of X depends on the last diagonal tile (the backward solve
 * starts from it), so after a failed factorization those checks are poisoned, not run. */
#include "linalg_impl.h"

static dagr_status_t check_potrf(dagr_uplo_t uplo, const dagr_darray_t *A) {
    DAGR_CHECK(uplo == DAGR_LOWER || uplo == DAGR_UPPER, DAGR_ERR_ARG,
               "uplo %d is not a dagr_uplo_t", (int)uplo);
    DAGR_TRY(la_check_dtype(A, "A"));
    DAGR_CHECK(A->m == A->n, DAGR_ERR_ARG, "potrf: A is %lld x %lld, not square", (long long)A->m,
               (long long)A->n);
    DAGR_CHECK(A->mb == A->nb, DAGR_ERR_ARG, "potrf: A has %lld x %lld tiles, not square",
               (long long)A->mb, (long long)A->nb);
    return DAGR_OK;
}

static dagr_status_t tile_potrf(dagr_uplo_t uplo, dagr_darray_t *A, int64_t k, int prio) {
    tile_op_t op = {0};
    op.dtype = (int32_t)A->dtype;
    op.uplo = uplo;
    op.n = da_tile_rows(A, k);
    op.j0 = k * A->nb;
    dagr_access_t acc = {da_handle(A, k, k), DAGR_RW};
    return la_spawn(&la_potrf_kernel, &op, 1, &acc, prio, (double)op.n * op.n * op.n / 3.0, A->ctx);
}

/* Lower: A(k, k) = L L^T; A(i, k) = A(i, k) L^-T; A(i, j) -= A(i, k) A(j, k)^T for
 * k < j <= i. Upper is its transpose: A(k, k) = U^T U; A(k, j) = U^-T A(k, j);
 * A(i, j) -= A(k, i)^T A(k, j) for k < i <= j. */
static dagr_status_t potrf_insert(dagr_uplo_t uplo, dagr_darray_t *A, int lookahead) {
    int64_t nt = A->nt;
    bool lower = uplo == DAGR_LOWER;
    for (int64_t k = 0; k < nt; k++) {
        int panel = la_prio(nt, k, 0, lookahead);
        DAGR_TRY(tile_potrf(uplo, A, k, panel));
        for (int64_t i = k + 1; i < nt; i++) {
            if (lower)
                DAGR_TRY(la_tile_trsm(DAGR_RIGHT, DAGR_LOWER, DAGR_TRANS, DAGR_NON_UNIT, 1.0, A, k,
                                      A, i, k, panel));
            else
                DAGR_TRY(la_tile_trsm(DAGR_LEFT, DAGR_UPPER, DAGR_TRANS, DAGR_NON_UNIT, 1.0, A, k,
                                      A, k, i, panel));
        }
        for (int64_t j = k + 1; j < nt; j++) {
            int prio = la_prio(nt, k, j - k, lookahead);
            if (lower)
                DAGR_TRY(la_tile_syrk(DAGR_LOWER, DAGR_NO_TRANS, -1.0, A, j, k, 1.0, A, j, prio));
            else
                DAGR_TRY(la_tile_syrk(DAGR_UPPER, DAGR_TRANS, -1.0, A, k, j, 1.0, A, j, prio));
            for (int64_t i = j + 1; i < nt; i++) {
                if (lower)
                    DAGR_TRY(la_tile_gemm(DAGR_NO_TRANS, DAGR_TRANS, -1.0, A, i, k, A, j, k, 1.0, A,
                                          i, j, prio));
                else
                    DAGR_TRY(la_tile_gemm(DAGR_TRANS, DAGR_NO_TRANS, -1.0, A, k, j, A, k, i, 1.0, A,
                                          j, i, prio));
            }
        }
    }
    return DAGR_OK;
}

dagr_status_t dagr_potrf_ex(dagr_uplo_t uplo, dagr_darray_t *A, const dagr_linalg_opts_t *opts) {
    dagr_linalg_opts_t o;
    DAGR_TRY(la_opts(opts, LA_USES_LOOKAHEAD, "dagr_potrf_ex", &o));
    DAGR_TRY(check_potrf(uplo, A));
    return potrf_insert(uplo, A, o.lookahead);
}

dagr_status_t dagr_potrf(dagr_uplo_t uplo, dagr_darray_t *A) {
    return dagr_potrf_ex(uplo, A, NULL);
}

static dagr_status_t check_potrs(dagr_uplo_t uplo, const dagr_darray_t *A, const dagr_darray_t *B) {
    DAGR_TRY(check_potrf(uplo, A));
    DAGR_TRY(la_check_same(A, B, "A", "B"));
    DAGR_CHECK(B->m == A->m, DAGR_ERR_ARG, "potrs: A is %lld x %lld but B is %lld x %lld",
               (long long)A->m, (long long)A->n, (long long)B->m, (long long)B->n);
    DAGR_CHECK(B->mb == A->mb, DAGR_ERR_ARG,
               "potrs: A has %lld x %lld tiles but B %lld x %lld: B's tile rows must match",
               (long long)A->mb, (long long)A->nb, (long long)B->mb, (long long)B->nb);
    DAGR_TRY(la_trsm_check(DAGR_LEFT, uplo, DAGR_NO_TRANS, DAGR_NON_UNIT, A, B));
    return DAGR_OK;
}

/* Lower: L Y = B, then L^T X = Y. Upper: U^T Y = B, then U X = Y. */
static dagr_status_t potrs_insert(dagr_uplo_t uplo, const dagr_darray_t *A, dagr_darray_t *B,
                                  int lookahead) {
    dagr_op_t first = uplo == DAGR_LOWER ? DAGR_NO_TRANS : DAGR_TRANS;
    dagr_op_t second = uplo == DAGR_LOWER ? DAGR_TRANS : DAGR_NO_TRANS;
    DAGR_TRY(la_trsm_insert(DAGR_LEFT, uplo, first, DAGR_NON_UNIT, 1.0, A, B, lookahead));
    return la_trsm_insert(DAGR_LEFT, uplo, second, DAGR_NON_UNIT, 1.0, A, B, lookahead);
}

dagr_status_t dagr_potrs_ex(dagr_uplo_t uplo, const dagr_darray_t *A, dagr_darray_t *B,
                            const dagr_linalg_opts_t *opts) {
    dagr_linalg_opts_t o;
    DAGR_TRY(la_opts(opts, LA_USES_LOOKAHEAD, "dagr_potrs_ex", &o));
    DAGR_TRY(check_potrs(uplo, A, B));
    DAGR_TRY(potrs_insert(uplo, A, B, o.lookahead));
    return la_check_finite(B, LA_FULL, NULL, "potrs");
}

dagr_status_t dagr_potrs(dagr_uplo_t uplo, const dagr_darray_t *A, dagr_darray_t *B) {
    return dagr_potrs_ex(uplo, A, B, NULL);
}

dagr_status_t dagr_posv_ex(dagr_uplo_t uplo, dagr_darray_t *A, dagr_darray_t *B,
                           const dagr_linalg_opts_t *opts) {
    dagr_linalg_opts_t o;
    DAGR_TRY(la_opts(opts, LA_USES_LOOKAHEAD, "dagr_posv_ex", &o));
    /* Both checks before anything is inserted: a bad B must not leave A half factored. */
    DAGR_TRY(check_potrs(uplo, A, B));
    DAGR_TRY(potrf_insert(uplo, A, o.lookahead));
    DAGR_TRY(potrs_insert(uplo, A, B, o.lookahead));
    return la_check_finite(B, LA_FULL, NULL, "posv");
}

dagr_status_t dagr_posv(dagr_uplo_t uplo, dagr_darray_t *A, dagr_darray_t *B) {
    return dagr_posv_ex(uplo, A, B, NULL);
}
