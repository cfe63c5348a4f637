/* BLAS 3 on DArrays: gemm, syrk, symm, trsm, trmm as tile algorithms (as PLASMA's pd*).
 *
 * Each routine checks dtypes, shapes and tilings, then inserts one task per tile operation;
 * the runtime orders them by their accesses. Last come the checks of the result for NaN and
 * Inf (la_check_finite: C, syrk's uplo triangle of C, trsm's and trmm's B). An output tile is
 * always accessed read-write: either beta C is read, or the tile is only partly covered by an edge
 * tile of a view. Tile (i, j) of op(X) is X(i, j) or X(j, i) transposed, which is how every
 * transpose variant is written once: the tile kernel gets the transpose flag. */
#include "linalg_impl.h"

static const char *opname(dagr_op_t t) {
    return t == DAGR_TRANS ? "T" : "N";
}

static dagr_status_t check_enums(int ta, int tb, int uplo, int side, int diag) {
    DAGR_CHECK(ta == DAGR_NO_TRANS || ta == DAGR_TRANS, DAGR_ERR_ARG, "trans %d is not a dagr_op_t",
               ta);
    DAGR_CHECK(tb == DAGR_NO_TRANS || tb == DAGR_TRANS, DAGR_ERR_ARG, "trans %d is not a dagr_op_t",
               tb);
    DAGR_CHECK(uplo == DAGR_LOWER || uplo == DAGR_UPPER, DAGR_ERR_ARG,
               "uplo %d is not a dagr_uplo_t", uplo);
    DAGR_CHECK(side == DAGR_LEFT || side == DAGR_RIGHT, DAGR_ERR_ARG,
               "side %d is not a dagr_side_t", side);
    DAGR_CHECK(diag == DAGR_NON_UNIT || diag == DAGR_UNIT, DAGR_ERR_ARG,
               "diag %d is not a dagr_diag_t", diag);
    return DAGR_OK;
}

int la_prio(int64_t nsteps, int64_t s, int64_t dist, int lookahead) {
    if (dist <= lookahead) return (int)(2 * nsteps - s - dist);
    return (int)(nsteps - s);
}

dagr_status_t la_check_apart(const dagr_darray_t *out, const dagr_darray_t *in, const char *o,
                             const char *i) {
    if (!da_shares(out, in) || out->mt == 0 || out->nt == 0 || in->mt == 0 || in->nt == 0)
        return DAGR_OK;
    bool rows = out->ti0 < in->ti0 + in->mt && in->ti0 < out->ti0 + out->mt;
    bool cols = out->tj0 < in->tj0 + in->nt && in->tj0 < out->tj0 + out->nt;
    DAGR_CHECK(!(rows && cols), DAGR_ERR_ARG,
               "%s shares tiles with %s: the output must not overlap an input", o, i);
    return DAGR_OK;
}

static tile_op_t op_of(const dagr_darray_t *C) {
    tile_op_t op = {0};
    op.dtype = (int32_t)C->dtype;
    return op;
}

dagr_status_t la_tile_gemm(dagr_op_t ta, dagr_op_t tb, double alpha, const dagr_darray_t *A,
                           int64_t ai, int64_t aj, const dagr_darray_t *B, int64_t bi, int64_t bj,
                           double beta, dagr_darray_t *C, int64_t ci, int64_t cj, int prio) {
    tile_op_t op = op_of(C);
    op.ta = ta;
    op.tb = tb;
    op.m = da_tile_rows(C, ci);
    op.n = da_tile_cols(C, cj);
    op.k = ta == DAGR_TRANS ? da_tile_rows(A, ai) : da_tile_cols(A, aj);
    op.alpha = alpha;
    op.beta = beta;
    dagr_access_t acc[3] = {{da_handle(C, ci, cj), DAGR_RW},
                            {da_handle(A, ai, aj), DAGR_READ},
                            {da_handle(B, bi, bj), DAGR_READ}};
    return la_spawn(&la_gemm_kernel, &op, 3, acc, prio, 2.0 * op.m * op.n * op.k, C->ctx);
}

dagr_status_t la_tile_syrk(dagr_uplo_t uplo, dagr_op_t trans, double alpha, const dagr_darray_t *A,
                           int64_t ai, int64_t aj, double beta, dagr_darray_t *C, int64_t ci,
                           int prio) {
    tile_op_t op = op_of(C);
    op.uplo = uplo;
    op.ta = trans;
    op.n = da_tile_rows(C, ci);
    op.k = trans == DAGR_TRANS ? da_tile_rows(A, ai) : da_tile_cols(A, aj);
    op.alpha = alpha;
    op.beta = beta;
    dagr_access_t acc[2] = {{da_handle(C, ci, ci), DAGR_RW}, {da_handle(A, ai, aj), DAGR_READ}};
    return la_spawn(&la_syrk_kernel, &op, 2, acc, prio, (double)op.k * op.n * (op.n + 1), C->ctx);
}

/* One triangular tile kernel (trsm or trmm: the same arguments and accesses) on B(bi, bj)
 * with the diagonal tile A(ak, ak). */
static dagr_status_t tile_triangular(const dagr_kernel_t *k, dagr_side_t side, dagr_uplo_t uplo,
                                     dagr_op_t trans, dagr_diag_t diag, double alpha,
                                     const dagr_darray_t *A, int64_t ak, dagr_darray_t *B,
                                     int64_t bi, int64_t bj, int prio) {
    tile_op_t op = op_of(B);
    op.side = side;
    op.uplo = uplo;
    op.ta = trans;
    op.diag = diag;
    op.m = da_tile_rows(B, bi);
    op.n = da_tile_cols(B, bj);
    op.alpha = alpha;
    dagr_access_t acc[2] = {{da_handle(B, bi, bj), DAGR_RW}, {da_handle(A, ak, ak), DAGR_READ}};
    double tri = side == DAGR_LEFT ? (double)op.m : (double)op.n;
    return la_spawn(k, &op, 2, acc, prio, tri * op.m * op.n, B->ctx);
}

dagr_status_t la_tile_trsm(dagr_side_t side, dagr_uplo_t uplo, dagr_op_t trans, dagr_diag_t diag,
                           double alpha, const dagr_darray_t *A, int64_t ak, dagr_darray_t *B,
                           int64_t bi, int64_t bj, int prio) {
    return tile_triangular(&la_trsm_kernel, side, uplo, trans, diag, alpha, A, ak, B, bi, bj, prio);
}

static dagr_status_t tile_trmm(dagr_side_t side, dagr_uplo_t uplo, dagr_op_t trans,
                               dagr_diag_t diag, double alpha, const dagr_darray_t *A, int64_t ak,
                               dagr_darray_t *B, int64_t bi, int64_t bj, int prio) {
    return tile_triangular(&la_trmm_kernel, side, uplo, trans, diag, alpha, A, ak, B, bi, bj, prio);
}

static dagr_status_t tile_symm(dagr_side_t side, dagr_uplo_t uplo, double alpha,
                               const dagr_darray_t *A, int64_t ak, const dagr_darray_t *B,
                               int64_t bi, int64_t bj, double beta, dagr_darray_t *C, int64_t ci,
                               int64_t cj) {
    tile_op_t op = op_of(C);
    op.side = side;
    op.uplo = uplo;
    op.m = da_tile_rows(C, ci);
    op.n = da_tile_cols(C, cj);
    op.alpha = alpha;
    op.beta = beta;
    dagr_access_t acc[3] = {{da_handle(C, ci, cj), DAGR_RW},
                            {da_handle(A, ak, ak), DAGR_READ},
                            {da_handle(B, bi, bj), DAGR_READ}};
    double sq = side == DAGR_LEFT ? (double)op.m : (double)op.n;
    return la_spawn(&la_symm_kernel, &op, 3, acc, 0, 2.0 * sq * op.m * op.n, C->ctx);
}

/* C = beta C on every tile (uplo LA_FULL) or on the uplo triangle of a square C. */
static dagr_status_t scale_tiles(dagr_darray_t *C, double beta, int uplo) {
    if (beta == 1) return DAGR_OK;
    for (int64_t j = 0; j < C->nt; j++) {
        for (int64_t i = 0; i < C->mt; i++) {
            if ((uplo == DAGR_LOWER && i < j) || (uplo == DAGR_UPPER && i > j)) continue;
            tile_op_t op = op_of(C);
            op.uplo = i == j ? uplo : LA_FULL;
            op.m = da_tile_rows(C, i);
            op.n = da_tile_cols(C, j);
            op.alpha = beta;
            dagr_access_t acc = {da_handle(C, i, j), DAGR_RW};
            DAGR_TRY(la_spawn(&la_scale_kernel, &op, 1, &acc, 0, (double)op.m * op.n, C->ctx));
        }
    }
    return DAGR_OK;
}

/* ---- gemm ---- */

dagr_status_t dagr_gemm_ex(dagr_op_t ta, dagr_op_t tb, double alpha, const dagr_darray_t *A,
                           const dagr_darray_t *B, double beta, dagr_darray_t *C,
                           const dagr_linalg_opts_t *opts) {
    dagr_linalg_opts_t o;
    DAGR_TRY(la_opts(opts, 0, "dagr_gemm_ex", &o));
    DAGR_TRY(check_enums(ta, tb, DAGR_LOWER, DAGR_LEFT, DAGR_NON_UNIT));
    DAGR_TRY(la_check_same(A, C, "A", "C"));
    DAGR_TRY(la_check_same(B, C, "B", "C"));
    bool at = ta == DAGR_TRANS, bt = tb == DAGR_TRANS;
    int64_t am = at ? A->n : A->m, ak = at ? A->m : A->n;
    int64_t amb = at ? A->nb : A->mb, akb = at ? A->mb : A->nb, kt = at ? A->mt : A->nt;
    int64_t bk = bt ? B->n : B->m, bn = bt ? B->m : B->n;
    int64_t bkb = bt ? B->nb : B->mb, bnb = bt ? B->mb : B->nb;
    DAGR_CHECK(am == C->m && ak == bk && bn == C->n, DAGR_ERR_ARG,
               "gemm(%s, %s): op(A) is %lld x %lld, op(B) %lld x %lld and C %lld x %lld: the "
               "shapes do not conform",
               opname(ta), opname(tb), (long long)am, (long long)ak, (long long)bk, (long long)bn,
               (long long)C->m, (long long)C->n);
    DAGR_CHECK(amb == C->mb && akb == bkb && bnb == C->nb, DAGR_ERR_ARG,
               "gemm(%s, %s): op(A) has %lld x %lld tiles, op(B) %lld x %lld and C %lld x %lld: "
               "the tilings do not conform (op(A) and C need the same tile rows, op(A) tile "
               "columns must equal op(B) tile rows, op(B) and C the same tile columns)",
               opname(ta), opname(tb), (long long)amb, (long long)akb, (long long)bkb,
               (long long)bnb, (long long)C->mb, (long long)C->nb);
    DAGR_TRY(la_check_apart(C, A, "C", "A"));
    DAGR_TRY(la_check_apart(C, B, "C", "B"));
    if (ak == 0 || alpha == 0) {
        DAGR_TRY(scale_tiles(C, beta, LA_FULL));
    } else {
        for (int64_t j = 0; j < C->nt; j++)
            for (int64_t i = 0; i < C->mt; i++)
                for (int64_t l = 0; l < kt; l++)
                    DAGR_TRY(la_tile_gemm(ta, tb, alpha, A, at ? l : i, at ? i : l, B, bt ? j : l,
                                          bt ? l : j, l == 0 ? beta : 1.0, C, i, j, 0));
    }
    return la_check_finite(C, LA_FULL, NULL, "gemm");
}

dagr_status_t dagr_gemm(dagr_op_t ta, dagr_op_t tb, double alpha, const dagr_darray_t *A,
                        const dagr_darray_t *B, double beta, dagr_darray_t *C) {
    return dagr_gemm_ex(ta, tb, alpha, A, B, beta, C, NULL);
}

/* ---- syrk ---- */

dagr_status_t dagr_syrk_ex(dagr_uplo_t uplo, dagr_op_t trans, double alpha, const dagr_darray_t *A,
                           double beta, dagr_darray_t *C, const dagr_linalg_opts_t *opts) {
    dagr_linalg_opts_t o;
    DAGR_TRY(la_opts(opts, 0, "dagr_syrk_ex", &o));
    DAGR_TRY(check_enums(trans, DAGR_NO_TRANS, uplo, DAGR_LEFT, DAGR_NON_UNIT));
    DAGR_TRY(la_check_same(A, C, "A", "C"));
    bool t = trans == DAGR_TRANS;
    int64_t an = t ? A->n : A->m, ak = t ? A->m : A->n, anb = t ? A->nb : A->mb;
    int64_t kt = t ? A->mt : A->nt;
    DAGR_CHECK(C->m == C->n, DAGR_ERR_ARG, "syrk: C is %lld x %lld, not square", (long long)C->m,
               (long long)C->n);
    DAGR_CHECK(C->mb == C->nb, DAGR_ERR_ARG, "syrk: C has %lld x %lld tiles, not square",
               (long long)C->mb, (long long)C->nb);
    DAGR_CHECK(an == C->m, DAGR_ERR_ARG,
               "syrk(%s): op(A) is %lld x %lld but C is %lld x %lld: the shapes do not conform",
               opname(trans), (long long)an, (long long)ak, (long long)C->m, (long long)C->n);
    DAGR_CHECK(anb == C->mb, DAGR_ERR_ARG,
               "syrk(%s): op(A) has tile rows %lld but C has %lld x %lld tiles: the tilings do "
               "not conform",
               opname(trans), (long long)anb, (long long)C->mb, (long long)C->nb);
    DAGR_TRY(la_check_apart(C, A, "C", "A"));
    if (ak == 0 || alpha == 0) {
        DAGR_TRY(scale_tiles(C, beta, uplo));
        return la_check_finite(C, uplo, NULL, "syrk");
    }
    for (int64_t j = 0; j < C->nt; j++) {
        int64_t i0 = uplo == DAGR_LOWER ? j : 0, i1 = uplo == DAGR_LOWER ? C->mt : j + 1;
        for (int64_t i = i0; i < i1; i++) {
            for (int64_t l = 0; l < kt; l++) {
                double b = l == 0 ? beta : 1.0;
                if (i == j)
                    DAGR_TRY(la_tile_syrk(uplo, trans, alpha, A, t ? l : i, t ? i : l, b, C, i, 0));
                else if (t)
                    DAGR_TRY(la_tile_gemm(DAGR_TRANS, DAGR_NO_TRANS, alpha, A, l, i, A, l, j, b, C,
                                          i, j, 0));
                else
                    DAGR_TRY(la_tile_gemm(DAGR_NO_TRANS, DAGR_TRANS, alpha, A, i, l, A, j, l, b, C,
                                          i, j, 0));
            }
        }
    }
    return la_check_finite(C, uplo, NULL, "syrk");
}

dagr_status_t dagr_syrk(dagr_uplo_t uplo, dagr_op_t trans, double alpha, const dagr_darray_t *A,
                        double beta, dagr_darray_t *C) {
    return dagr_syrk_ex(uplo, trans, alpha, A, beta, C, NULL);
}

/* ---- symm ---- */

dagr_status_t dagr_symm_ex(dagr_side_t side, dagr_uplo_t uplo, double alpha, const dagr_darray_t *A,
                           const dagr_darray_t *B, double beta, dagr_darray_t *C,
                           const dagr_linalg_opts_t *opts) {
    dagr_linalg_opts_t o;
    DAGR_TRY(la_opts(opts, 0, "dagr_symm_ex", &o));
    DAGR_TRY(check_enums(DAGR_NO_TRANS, DAGR_NO_TRANS, uplo, side, DAGR_NON_UNIT));
    DAGR_TRY(la_check_same(A, C, "A", "C"));
    DAGR_TRY(la_check_same(B, C, "B", "C"));
    bool left = side == DAGR_LEFT;
    DAGR_CHECK(A->m == A->n, DAGR_ERR_ARG, "symm: A is %lld x %lld, not square", (long long)A->m,
               (long long)A->n);
    DAGR_CHECK(A->mb == A->nb, DAGR_ERR_ARG, "symm: A has %lld x %lld tiles, not square",
               (long long)A->mb, (long long)A->nb);
    DAGR_CHECK(B->m == C->m && B->n == C->n && A->m == (left ? C->m : C->n), DAGR_ERR_ARG,
               "symm(%s): A is %lld x %lld, B %lld x %lld and C %lld x %lld: the shapes do not "
               "conform",
               left ? "left" : "right", (long long)A->m, (long long)A->n, (long long)B->m,
               (long long)B->n, (long long)C->m, (long long)C->n);
    DAGR_CHECK(B->mb == C->mb && B->nb == C->nb && A->mb == (left ? C->mb : C->nb), DAGR_ERR_ARG,
               "symm(%s): A has %lld x %lld tiles, B %lld x %lld and C %lld x %lld: the tilings "
               "do not conform",
               left ? "left" : "right", (long long)A->mb, (long long)A->nb, (long long)B->mb,
               (long long)B->nb, (long long)C->mb, (long long)C->nb);
    DAGR_TRY(la_check_apart(C, A, "C", "A"));
    DAGR_TRY(la_check_apart(C, B, "C", "B"));
    if (A->m == 0 || alpha == 0) {
        DAGR_TRY(scale_tiles(C, beta, LA_FULL));
        return la_check_finite(C, LA_FULL, NULL, "symm");
    }
    bool lower = uplo == DAGR_LOWER;
    for (int64_t j = 0; j < C->nt; j++) {
        for (int64_t i = 0; i < C->mt; i++) {
            for (int64_t l = 0; l < A->mt; l++) {
                double b = l == 0 ? beta : 1.0;
                if (left) {
                    /* C(i, j) += A(i, l) B(l, j), A(i, l) stored or A(l, i)^T */
                    if (l == i)
                        DAGR_TRY(tile_symm(side, uplo, alpha, A, i, B, i, j, b, C, i, j));
                    else if (lower == (i > l))
                        DAGR_TRY(la_tile_gemm(DAGR_NO_TRANS, DAGR_NO_TRANS, alpha, A, i, l, B, l, j,
                                              b, C, i, j, 0));
                    else
                        DAGR_TRY(la_tile_gemm(DAGR_TRANS, DAGR_NO_TRANS, alpha, A, l, i, B, l, j, b,
                                              C, i, j, 0));
                } else {
                    /* C(i, j) += B(i, l) A(l, j) */
                    if (l == j)
                        DAGR_TRY(tile_symm(side, uplo, alpha, A, j, B, i, j, b, C, i, j));
                    else if (lower == (l > j))
                        DAGR_TRY(la_tile_gemm(DAGR_NO_TRANS, DAGR_NO_TRANS, alpha, B, i, l, A, l, j,
                                              b, C, i, j, 0));
                    else
                        DAGR_TRY(la_tile_gemm(DAGR_NO_TRANS, DAGR_TRANS, alpha, B, i, l, A, j, l, b,
                                              C, i, j, 0));
                }
            }
        }
    }
    return la_check_finite(C, LA_FULL, NULL, "symm");
}

dagr_status_t dagr_symm(dagr_side_t side, dagr_uplo_t uplo, double alpha, const dagr_darray_t *A,
                        const dagr_darray_t *B, double beta, dagr_darray_t *C) {
    return dagr_symm_ex(side, uplo, alpha, A, B, beta, C, NULL);
}

/* ---- trsm and trmm ---- */

/* Shape and tiling checks shared by trsm and trmm (`what` names the routine). */
static dagr_status_t check_tri(const char *what, dagr_side_t side, dagr_uplo_t uplo,
                               dagr_op_t trans, dagr_diag_t diag, const dagr_darray_t *A,
                               const dagr_darray_t *B) {
    DAGR_TRY(check_enums(trans, DAGR_NO_TRANS, uplo, side, diag));
    DAGR_TRY(la_check_same(A, B, "A", "B"));
    bool left = side == DAGR_LEFT;
    DAGR_CHECK(A->m == A->n, DAGR_ERR_ARG, "%s: A is %lld x %lld, not square", what,
               (long long)A->m, (long long)A->n);
    DAGR_CHECK(A->mb == A->nb, DAGR_ERR_ARG, "%s: A has %lld x %lld tiles, not square", what,
               (long long)A->mb, (long long)A->nb);
    DAGR_CHECK(A->m == (left ? B->m : B->n), DAGR_ERR_ARG,
               "%s(%s): A is %lld x %lld and B %lld x %lld: the shapes do not conform", what,
               left ? "left" : "right", (long long)A->m, (long long)A->n, (long long)B->m,
               (long long)B->n);
    DAGR_CHECK(A->mb == (left ? B->mb : B->nb), DAGR_ERR_ARG,
               "%s(%s): A has %lld x %lld tiles and B %lld x %lld: the tilings do not conform",
               what, left ? "left" : "right", (long long)A->mb, (long long)A->nb, (long long)B->mb,
               (long long)B->nb);
    DAGR_TRY(la_check_apart(B, A, "B", "A"));
    return DAGR_OK;
}

dagr_status_t la_trsm_check(dagr_side_t side, dagr_uplo_t uplo, dagr_op_t trans, dagr_diag_t diag,
                            const dagr_darray_t *A, const dagr_darray_t *B) {
    return check_tri("trsm", side, uplo, trans, diag, A, B);
}

/* op(A) is lower triangular for (LOWER, N) and (UPPER, T). Tile (i, k) of op(A) is A(i, k), or
 * A(k, i) used transposed. Left: solve op(A) X = alpha B by block rows, forward for a lower
 * op(A), backward for an upper one; after the diagonal solve of block row k, every block row
 * still to come gets B(i) -= op(A)(i, k) X(k). Right: the same by block columns (X op(A) =
 * alpha B: forward for an upper op(A)). alpha is applied once per block: by the first step,
 * as the trsm scalar for the first block and as the gemm's beta for the others. */
dagr_status_t la_trsm_insert(dagr_side_t side, dagr_uplo_t uplo, dagr_op_t trans, dagr_diag_t diag,
                             double alpha, const dagr_darray_t *A, dagr_darray_t *B,
                             int lookahead) {
    if (B->m == 0 || B->n == 0) return DAGR_OK;
    if (alpha == 0) return scale_tiles(B, 0.0, LA_FULL);
    bool t = trans == DAGR_TRANS, left = side == DAGR_LEFT;
    bool oplower = (uplo == DAGR_LOWER) != t;
    int64_t nk = A->mt;
    /* Left: forward for a lower op(A); right: forward for an upper one. */
    bool forward = left ? oplower : !oplower;
    for (int64_t s = 0; s < nk; s++) {
        int64_t k = forward ? s : nk - 1 - s;
        double la = s == 0 ? alpha : 1.0;
        if (left) {
            for (int64_t j = 0; j < B->nt; j++)
                DAGR_TRY(la_tile_trsm(side, uplo, trans, diag, la, A, k, B, k, j,
                                      la_prio(nk, s, 0, lookahead)));
            for (int64_t d = 1; d < nk - s; d++) {
                int64_t i = forward ? k + d : k - d;
                for (int64_t j = 0; j < B->nt; j++)
                    DAGR_TRY(la_tile_gemm(trans, DAGR_NO_TRANS, -1.0, A, t ? k : i, t ? i : k, B, k,
                                          j, la, B, i, j, la_prio(nk, s, d, lookahead)));
            }
        } else {
            for (int64_t i = 0; i < B->mt; i++)
                DAGR_TRY(la_tile_trsm(side, uplo, trans, diag, la, A, k, B, i, k,
                                      la_prio(nk, s, 0, lookahead)));
            for (int64_t d = 1; d < nk - s; d++) {
                int64_t j = forward ? k + d : k - d;
                for (int64_t i = 0; i < B->mt; i++)
                    DAGR_TRY(la_tile_gemm(DAGR_NO_TRANS, trans, -1.0, B, i, k, A, t ? j : k,
                                          t ? k : j, la, B, i, j, la_prio(nk, s, d, lookahead)));
            }
        }
    }
    return DAGR_OK;
}

dagr_status_t dagr_trsm_ex(dagr_side_t side, dagr_uplo_t uplo, dagr_op_t trans, dagr_diag_t diag,
                           double alpha, const dagr_darray_t *A, dagr_darray_t *B,
                           const dagr_linalg_opts_t *opts) {
    dagr_linalg_opts_t o;
    DAGR_TRY(la_opts(opts, LA_USES_LOOKAHEAD, "dagr_trsm_ex", &o));
    DAGR_TRY(la_trsm_check(side, uplo, trans, diag, A, B));
    DAGR_TRY(la_trsm_insert(side, uplo, trans, diag, alpha, A, B, o.lookahead));
    return la_check_finite(B, LA_FULL, NULL, "trsm");
}

dagr_status_t dagr_trsm(dagr_side_t side, dagr_uplo_t uplo, dagr_op_t trans, dagr_diag_t diag,
                        double alpha, const dagr_darray_t *A, dagr_darray_t *B) {
    return dagr_trsm_ex(side, uplo, trans, diag, alpha, A, B, NULL);
}

/* Left: B(i) = alpha sum_l op(A)(i, l) B(l) over the l of op(A)'s triangle. Block rows are
 * overwritten in the order that keeps the B(l) they need intact: upward-reading (upper op(A))
 * rows from the top, lower ones from the bottom; in each, the diagonal trmm first (it scales
 * B(i) in place), then the gemm's adding the other blocks. Right: the same by block columns
 * (B(:, j) = alpha sum_l B(:, l) op(A)(l, j)). */
static dagr_status_t trmm_insert(dagr_side_t side, dagr_uplo_t uplo, dagr_op_t trans,
                                 dagr_diag_t diag, double alpha, const dagr_darray_t *A,
                                 dagr_darray_t *B) {
    if (B->m == 0 || B->n == 0) return DAGR_OK;
    if (alpha == 0) return scale_tiles(B, 0.0, LA_FULL);
    bool t = trans == DAGR_TRANS, left = side == DAGR_LEFT;
    bool oplower = (uplo == DAGR_LOWER) != t;
    int64_t nk = A->mt;
    /* Left, upper op(A): block row i reads rows l >= i, so go top down; right, lower op(A):
     * block column j reads columns l >= j, likewise. */
    bool forward = left ? !oplower : oplower;
    for (int64_t s = 0; s < nk; s++) {
        int64_t k = forward ? s : nk - 1 - s;
        if (left) {
            for (int64_t j = 0; j < B->nt; j++) {
                DAGR_TRY(tile_trmm(side, uplo, trans, diag, alpha, A, k, B, k, j, 0));
                for (int64_t d = 1; d < nk - s; d++) {
                    int64_t l = forward ? k + d : k - d;
                    DAGR_TRY(la_tile_gemm(trans, DAGR_NO_TRANS, alpha, A, t ? l : k, t ? k : l, B,
                                          l, j, 1.0, B, k, j, 0));
                }
            }
        } else {
            for (int64_t i = 0; i < B->mt; i++) {
                DAGR_TRY(tile_trmm(side, uplo, trans, diag, alpha, A, k, B, i, k, 0));
                for (int64_t d = 1; d < nk - s; d++) {
                    int64_t l = forward ? k + d : k - d;
                    DAGR_TRY(la_tile_gemm(DAGR_NO_TRANS, trans, alpha, B, i, l, A, t ? k : l,
                                          t ? l : k, 1.0, B, i, k, 0));
                }
            }
        }
    }
    return DAGR_OK;
}

dagr_status_t dagr_trmm_ex(dagr_side_t side, dagr_uplo_t uplo, dagr_op_t trans, dagr_diag_t diag,
                           double alpha, const dagr_darray_t *A, dagr_darray_t *B,
                           const dagr_linalg_opts_t *opts) {
    dagr_linalg_opts_t o;
    DAGR_TRY(la_opts(opts, 0, "dagr_trmm_ex", &o));
    DAGR_TRY(check_tri("trmm", side, uplo, trans, diag, A, B));
    DAGR_TRY(trmm_insert(side, uplo, trans, diag, alpha, A, B));
    return la_check_finite(B, LA_FULL, NULL, "trmm");
}

dagr_status_t dagr_trmm(dagr_side_t side, dagr_uplo_t uplo, dagr_op_t trans, dagr_diag_t diag,
                        double alpha, const dagr_darray_t *A, dagr_darray_t *B) {
    return dagr_trmm_ex(side, uplo, trans, diag, alpha, A, B, NULL);
}
