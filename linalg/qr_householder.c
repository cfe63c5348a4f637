/* QR in LAPACK's storage (opts.variant 3): blocked right-looking Householder, as LAPACK's
 * dgeqrf and ScaLAPACK's pdgeqrf, one tile column per panel.
 *
 * A keeps R in its upper triangle and the Householder vectors v_i below the diagonal (v_i(i)
 * = 1 implied), with H_i = I - tau_i v_i v_i^T and Q = H_1 H_2 ... H_k: a ScaLAPACK program's
 * pdormqr/pdorgqr can use the factors, and dagr can use ScaLAPACK's (dagr_qr_from_householder).
 * Per panel k the factor keeps T (dlarft's triangle, H_(k) = I - V T V^T, tau_i = T(i, i))
 * and Vd, a copy of the diagonal tile's reflectors with the unit diagonal and the zeros above
 * it stored, so that every product below is a plain gemm.
 *
 * Step k:
 *   1. panel: one task over the stack of tiles (k.., k) (la_stack_spawn, shared with LU)
 *      runs LAPACK's geqrt on it: the reflectors and tau of dgeqrf, and T of the panel;
 *   2. each tile column j > k: W = V^T C_j. The tiles of C_j are grouped by owner: on each
 *      owning rank a chain of tile tasks accumulates its partial sum of V_i^T C_ij in one block
 *      there, so that only the kk x nb partials travel, to the rank owning C(k, j), where one
 *      task sums them and forms Y = T^T W (with a single owner, the chain's last task does
 *      that itself); then C_ij -= V_i Y, one gemm task per tile on its owner. No block travels
 *      back and forth along a chain of ranks: each partial makes one trip, Y one trip per
 *      owning rank.
 *   3. priorities (hh_prio): the next lookahead columns' updates come with the next panel,
 *      ahead of the rest of step k's update, and beyond the lookahead nearer columns first.
 * ormqr/orgqr apply the same block reflectors to any C from either side, forwards or
 * backwards (qr_hh_apply). */
#include "linalg_impl.h"
#include "qr_impl.h"
#include "stack.h"

#include <stdlib.h>
#include <string.h>

static int64_t min64(int64_t a, int64_t b) {
    return a < b ? a : b;
}

/* Scratch for grouping the tiles of one block column by owner. */
typedef struct hh_scratch {
    int nranks;
    int *slot;           /* per rank: index of its group, -1 if none */
    int *grank;          /* per group: its rank */
    int64_t *gcount;     /* per group: its tiles */
    int64_t *order;      /* tile indices sorted by group, in increasing order within one */
    int64_t *gstart;     /* per group: its first entry in order */
    dagr_access_t *acc;  /* accesses of one task */
    dagr_data_t **parts; /* per group: its partial W */
} hh_scratch_t;

static void scratch_free(hh_scratch_t *s) {
    free(s->slot);
    free(s->grank);
    free(s->gcount);
    free(s->order);
    free(s->gstart);
    free(s->acc);
    free(s->parts);
}

static dagr_status_t scratch_new(hh_scratch_t *s, dagr_ctx_t *ctx, int64_t mt) {
    *s = (hh_scratch_t){.nranks = dagr_size(ctx)};
    size_t g = (size_t)s->nranks + 1, t = (size_t)mt + 1;
    s->slot = malloc(g * sizeof *s->slot);
    s->grank = malloc(g * sizeof *s->grank);
    s->gcount = malloc(g * sizeof *s->gcount);
    s->gstart = malloc(g * sizeof *s->gstart);
    s->parts = calloc(g, sizeof *s->parts);
    s->order = malloc(t * sizeof *s->order);
    s->acc = malloc((2 * t + g + 2) * sizeof *s->acc);
    if (!s->slot || !s->grank || !s->gcount || !s->gstart || !s->parts || !s->order || !s->acc) {
        scratch_free(s);
        return DAGR_ERR(DAGR_ERR_NOMEM, "no memory for the QR update of %lld tile rows",
                        (long long)mt);
    }
    for (int r = 0; r < s->nranks; r++)
        s->slot[r] = -1;
    return DAGR_OK;
}

/* The tile of C paired with reflector tile i for free index j: (i, j) on the left, (j, i) on
 * the right. */
static dagr_data_t *c_tile(const dagr_darray_t *C, dagr_side_t side, int64_t i, int64_t j) {
    return side == DAGR_LEFT ? da_handle(C, i, j) : da_handle(C, j, i);
}

/* V_i of panel k: the stored copy for the diagonal tile, A's tile below it. */
static dagr_data_t *v_tile(const dagr_darray_t *A, const dagr_qr_t *qr, int64_t k, int64_t i) {
    return i == k ? qr->Vd[k] : da_handle(A, i, k);
}

/* Groups tiles k .. mt-1 of C's free index j by owner (ranks in order of first tile, tiles
 * in increasing order within a group); returns the number of groups. */
static int group_tiles(hh_scratch_t *s, const dagr_darray_t *C, dagr_side_t side, int64_t k,
                       int64_t mt, int64_t j) {
    int ng = 0;
    for (int64_t i = k; i < mt; i++) {
        int o = dagr_data_owner(c_tile(C, side, i, j));
        if (s->slot[o] < 0) {
            s->slot[o] = ng;
            s->grank[ng] = o;
            s->gcount[ng++] = 0;
        }
        s->gcount[s->slot[o]]++;
    }
    int64_t at = 0;
    for (int g = 0; g < ng; g++) {
        s->gstart[g] = at;
        at += s->gcount[g];
        s->gcount[g] = 0;
    }
    for (int64_t i = k; i < mt; i++) {
        int g = s->slot[dagr_data_owner(c_tile(C, side, i, j))];
        s->order[s->gstart[g] + s->gcount[g]++] = i;
    }
    for (int g = 0; g < ng; g++)
        s->slot[s->grank[g]] = -1;
    return ng;
}

/* Inserts W_g = sum over group g's tiles of V_i^T C_i (LEFT) or C_i V_i (RIGHT) into a new
 * handle on the group's rank (*out), followed by op(T) when T is given. With C == NULL the
 * pairs are (V_i, V_i): the Gram matrix V^T V. One task per tile, accumulating in turn into
 * the same block on the same rank: a worker is never held by a whole column's product, so a
 * task on the critical path (the next panel's) waits at most one tile gemm for it. */
static dagr_status_t insert_partial(hh_scratch_t *s, int g, const dagr_darray_t *A,
                                    const dagr_qr_t *qr, int64_t k, const dagr_darray_t *C,
                                    dagr_side_t side, dagr_op_t trans, int64_t j, int64_t nfree,
                                    dagr_data_t *T, int prio, dagr_data_t **out) {
    int64_t kk = qr_hh_kk(A, k);
    size_t wr = (size_t)(side == DAGR_LEFT ? kk : nfree),
           wc = (size_t)(side == DAGR_LEFT ? nfree : kk);
    DAGR_TRY(dagr_data_create_2d(A->ctx, wr, wc, A->es, s->grank[g], out));
    int64_t n = s->gcount[g];
    for (int64_t e = 0; e < n; e++) {
        int64_t i = s->order[s->gstart[g] + e];
        bool last = e == n - 1;
        int na = 0;
        dagr_access_t acc[4];
        acc[na++] = (dagr_access_t){*out, e == 0 ? DAGR_WRITE : DAGR_RW};
        if (T && last) acc[na++] = (dagr_access_t){T, DAGR_READ};
        acc[na++] = (dagr_access_t){v_tile(A, qr, k, i), DAGR_READ};
        acc[na++] = (dagr_access_t){C ? c_tile(C, side, i, j) : v_tile(A, qr, k, i), DAGR_READ};
        double rows = (double)da_tile_rows(A, i);
        hh_op_t op = {.dtype = (int32_t)A->dtype,
                      .side = side,
                      .trans = trans,
                      .apply_t = T != NULL && last,
                      .accumulate = e > 0,
                      .ntiles = 1,
                      .kk = kk,
                      .nfree = nfree,
                      .nb = A->mb,
                      .last_rows = da_tile_rows(A, i)};
        double fl = 2.0 * rows * (double)kk * (double)nfree +
                    (op.apply_t ? (double)kk * (double)kk * (double)nfree : 0);
        DAGR_TRY(la_spawn_args(&la_qr_hh_w_kernel, &op, sizeof op, na, acc, prio, fl, A->ctx));
    }
    return DAGR_OK;
}

/* Applies block reflector k of qr (from A) to C's free index j: C_j = (I - V op(T) V^T) C_j
 * for side LEFT (C_j the tile rows k.. of tile column j) or C_j (I - V op(T) V^T) for RIGHT
 * (the tile columns k.. of tile row j); op = trans. */
static dagr_status_t hh_apply_one(hh_scratch_t *s, const dagr_darray_t *A, const dagr_qr_t *qr,
                                  int64_t k, dagr_side_t side, dagr_op_t trans,
                                  const dagr_darray_t *C, int64_t j, int prio) {
    int64_t kk = qr_hh_kk(A, k);
    int64_t nfree = side == DAGR_LEFT ? da_tile_cols(C, j) : da_tile_rows(C, j);
    int ng = group_tiles(s, C, side, k, A->mt, j);
    dagr_data_t *Y = NULL;
    dagr_status_t st = DAGR_OK;
    if (ng == 1) {
        st = insert_partial(s, 0, A, qr, k, C, side, trans, j, nfree, qr->T[k], prio, &Y);
    } else {
        for (int g = 0; g < ng && st == DAGR_OK; g++)
            st = insert_partial(s, g, A, qr, k, C, side, trans, j, nfree, NULL, prio, &s->parts[g]);
        /* the sum on the rank of the first tile (C(k, j) on the left), which holds the
         * largest share of a column under a block-cyclic distribution */
        if (st == DAGR_OK)
            st = dagr_data_create_2d(A->ctx, (size_t)(side == DAGR_LEFT ? kk : nfree),
                                     (size_t)(side == DAGR_LEFT ? nfree : kk), A->es, s->grank[0],
                                     &Y);
        if (st == DAGR_OK) {
            int na = 0;
            s->acc[na++] = (dagr_access_t){Y, DAGR_WRITE};
            s->acc[na++] = (dagr_access_t){qr->T[k], DAGR_READ};
            for (int g = 0; g < ng; g++)
                s->acc[na++] = (dagr_access_t){s->parts[g], DAGR_READ};
            hh_op_t op = {.dtype = (int32_t)A->dtype,
                          .side = side,
                          .trans = trans,
                          .ntiles = ng,
                          .kk = kk,
                          .nfree = nfree};
            st = la_spawn_args(&la_qr_hh_sum_kernel, &op, sizeof op, na, s->acc, prio,
                               (double)kk * (double)kk * (double)nfree, A->ctx);
        }
        for (int g = 0; g < ng; g++) {
            dagr_status_t ds = dagr_data_destroy(&s->parts[g]);
            if (st == DAGR_OK) st = ds;
        }
    }
    /* C_i -= V_i Y (LEFT) or Y V_i^T (RIGHT), one gemm per tile on its owner */
    for (int64_t i = k; i < A->mt && st == DAGR_OK; i++) {
        int64_t ri = da_tile_rows(A, i);
        tile_op_t op = {.dtype = (int32_t)A->dtype, .k = kk, .alpha = -1.0, .beta = 1.0};
        dagr_access_t acc[3] = {
            {c_tile(C, side, i, j), DAGR_RW}, {NULL, DAGR_READ}, {NULL, DAGR_READ}};
        if (side == DAGR_LEFT) {
            op.ta = op.tb = DAGR_NO_TRANS;
            op.m = ri;
            op.n = nfree;
            acc[1].data = v_tile(A, qr, k, i);
            acc[2].data = Y;
        } else {
            op.ta = DAGR_NO_TRANS;
            op.tb = DAGR_TRANS;
            op.m = nfree;
            op.n = ri;
            acc[1].data = Y;
            acc[2].data = v_tile(A, qr, k, i);
        }
        st = la_spawn(&la_gemm_kernel, &op, 3, acc, prio,
                      2.0 * (double)ri * (double)nfree * (double)kk, A->ctx);
    }
    dagr_status_t ds = dagr_data_destroy(&Y);
    return st != DAGR_OK ? st : ds;
}

/* The panel task of step k and its T and Vd handles, on the owner of the diagonal tile. */
static dagr_status_t hh_panel(dagr_darray_t *A, dagr_qr_t *qr, int64_t k, int prio) {
    int64_t kk = qr_hh_kk(A, k), rk = da_tile_rows(A, k);
    int owner = dagr_data_owner(da_handle(A, k, k));
    DAGR_TRY(dagr_data_create_2d(A->ctx, (size_t)kk, (size_t)kk, A->es, owner, &qr->T[k]));
    DAGR_TRY(dagr_data_create_2d(A->ctx, (size_t)rk, (size_t)kk, A->es, owner, &qr->Vd[k]));
    lu_op_t o = la_stack_op(A, k, k, kk);
    dagr_access_t extra[2] = {{qr->T[k], DAGR_WRITE}, {qr->Vd[k], DAGR_WRITE}};
    double M = (double)(A->m - k * A->mb), N = (double)o.cols, K = (double)kk;
    double flops = 2.0 * K * K * (M - K / 3.0) + 2.0 * (N - K) * M * K + M * K * K;
    return la_stack_spawn(&la_qr_hh_panel_kernel, o, A, k, k, 2, extra, prio,
                          flops > 0 ? flops : 0);
}

/* Priority of step k's tasks on tile column j (the panel: j = k): as la_prio within the
 * lookahead (2 nk - j), but beyond it ordered by column too (nk - j) rather than by step, so
 * that a worker always brings the nearest future panel column up to date first. With la_prio's
 * by-step order an update of column k + 1 from step k - 1 (beyond the lookahead then) waited
 * behind every update of step k - 2, and the panel of step k + 1 with it. */
static int hh_prio(int64_t nk, int64_t k, int64_t j, int lookahead) {
    return (int)(j - k <= lookahead ? 2 * nk - j : nk - j);
}

dagr_status_t qr_hh_factor(dagr_darray_t *A, dagr_qr_t *qr, int lookahead) {
    hh_scratch_t s;
    DAGR_TRY(scratch_new(&s, A->ctx, A->mt));
    dagr_status_t st = DAGR_OK;
    int64_t nk = qr->nk;
    for (int64_t k = 0; k < nk && st == DAGR_OK; k++) {
        st = hh_panel(A, qr, k, hh_prio(nk, k, k, lookahead));
        for (int64_t j = k + 1; j < A->nt && st == DAGR_OK; j++)
            st = hh_apply_one(&s, A, qr, k, DAGR_LEFT, DAGR_TRANS, A, j,
                              hh_prio(nk, k, j, lookahead));
    }
    scratch_free(&s);
    return st;
}

/* Q = H_(0) H_(1) ... H_(nk-1) (the panels' block reflectors): Q^T C and C Q take them in
 * order, Q C and C Q^T in reverse. */
dagr_status_t qr_hh_apply(dagr_side_t side, dagr_op_t trans, const dagr_darray_t *A,
                          const dagr_qr_t *qr, dagr_darray_t *C) {
    hh_scratch_t s;
    DAGR_TRY(scratch_new(&s, A->ctx, A->mt));
    dagr_status_t st = DAGR_OK;
    bool forward = (side == DAGR_LEFT) == (trans == DAGR_TRANS);
    int64_t nfree = side == DAGR_LEFT ? C->nt : C->mt;
    for (int64_t step = 0; step < qr->nk && st == DAGR_OK; step++) {
        int64_t k = forward ? step : qr->nk - 1 - step;
        for (int64_t j = 0; j < nfree && st == DAGR_OK; j++)
            st = hh_apply_one(&s, A, qr, k, side, trans, C, j, 0);
    }
    scratch_free(&s);
    return st;
}

/* T of panel k from the reflectors in A and tau: the diagonal from tau, Vd from the diagonal
 * tile, G = V^T V reduced over the owners of the panel's tiles as W is, then dlarft's
 * recurrence on G in one task. */
static dagr_status_t hh_t_from_v(hh_scratch_t *s, const dagr_darray_t *A, dagr_qr_t *qr, int64_t k,
                                 const void *tau) {
    int64_t kk = qr_hh_kk(A, k), rk = da_tile_rows(A, k);
    int owner = dagr_data_owner(da_handle(A, k, k));
    DAGR_TRY(dagr_data_create_2d(A->ctx, (size_t)kk, (size_t)kk, A->es, owner, &qr->T[k]));
    DAGR_TRY(dagr_data_create_2d(A->ctx, (size_t)rk, (size_t)kk, A->es, owner, &qr->Vd[k]));
    /* tau travels in the tasks' arguments, HH_SETDIAG_MAX values a task */
    for (int64_t off = 0; off < kk; off += HH_SETDIAG_MAX) {
        hh_diag_op_t d = {
            .dtype = (int32_t)A->dtype, .off = off, .cnt = min64(kk - off, HH_SETDIAG_MAX)};
        for (int64_t e = 0; e < d.cnt; e++) {
            int64_t at = k * A->mb + off + e;
            d.vals[e] = A->dtype == DAGR_DOUBLE ? ((const double *)tau)[at]
                                                : (double)((const float *)tau)[at];
        }
        dagr_access_t acc = {qr->T[k], DAGR_RW};
        DAGR_TRY(la_spawn_args(&la_qr_hh_setdiag_kernel, &d, sizeof d, 1, &acc, 0, 0, A->ctx));
    }
    hh_op_t vo = {.dtype = (int32_t)A->dtype, .kk = kk};
    dagr_access_t va[2] = {{qr->Vd[k], DAGR_WRITE}, {da_handle(A, k, k), DAGR_READ}};
    DAGR_TRY(la_spawn_args(&la_qr_hh_vdiag_kernel, &vo, sizeof vo, 2, va, 0, 0, A->ctx));
    int ng = group_tiles(s, A, DAGR_LEFT, k, A->mt, k);
    dagr_status_t st = DAGR_OK;
    for (int g = 0; g < ng && st == DAGR_OK; g++)
        st = insert_partial(s, g, A, qr, k, NULL, DAGR_LEFT, DAGR_TRANS, k, kk, NULL, 0,
                            &s->parts[g]);
    if (st == DAGR_OK) {
        int na = 0;
        s->acc[na++] = (dagr_access_t){qr->T[k], DAGR_RW};
        for (int g = 0; g < ng; g++)
            s->acc[na++] = (dagr_access_t){s->parts[g], DAGR_READ};
        hh_op_t op = {.dtype = (int32_t)A->dtype, .ntiles = ng, .kk = kk};
        st = la_spawn_args(&la_qr_hh_tgram_kernel, &op, sizeof op, na, s->acc, 0,
                           (double)kk * (double)kk * (double)kk / 3.0, A->ctx);
    }
    for (int g = 0; g < ng; g++) {
        dagr_status_t ds = dagr_data_destroy(&s->parts[g]);
        if (st == DAGR_OK) st = ds;
    }
    return st;
}

dagr_status_t dagr_qr_from_householder(const dagr_darray_t *A, const void *tau,
                                       dagr_qr_t **qr_out) {
    DAGR_CHECK(qr_out, DAGR_ERR_ARG, "qr_out is NULL");
    DAGR_TRY(la_check_dtype(A, "A"));
    DAGR_CHECK(A->mb == A->nb, DAGR_ERR_ARG, "A has %lld x %lld tiles: QR needs square tiles",
               (long long)A->mb, (long long)A->nb);
    DAGR_CHECK(tau || A->m == 0 || A->n == 0, DAGR_ERR_ARG, "tau is NULL");
    dagr_qr_t *qr = NULL;
    DAGR_TRY(qr_alloc(A, QR_FORM_HH, A->nb, &qr));
    hh_scratch_t s;
    dagr_status_t st = scratch_new(&s, A->ctx, A->mt);
    if (st != DAGR_OK) {
        dagr_qr_destroy(&qr);
        return st;
    }
    for (int64_t k = 0; k < qr->nk && st == DAGR_OK; k++)
        st = hh_t_from_v(&s, A, qr, k, tau);
    scratch_free(&s);
    if (st != DAGR_OK) {
        dagr_qr_destroy(&qr);
        return st;
    }
    *qr_out = qr;
    return DAGR_OK;
}

dagr_status_t dagr_qr_tau_fetch(const dagr_qr_t *qr, void *tau) {
    DAGR_CHECK(qr, DAGR_ERR_ARG, "qr is NULL");
    DAGR_CHECK(qr->form == QR_FORM_HH, DAGR_ERR_ARG,
               "qr is a tile-form factor (QR variant 1 or 2): it has no LAPACK tau; factor "
               "with opts.variant = 3 (LAPACK storage) for one");
    int64_t total = min64(qr->m, qr->n);
    DAGR_CHECK(tau || total == 0, DAGR_ERR_ARG, "tau is NULL");
    size_t es = qr->dtype == DAGR_DOUBLE ? sizeof(double) : sizeof(float);
    char *buf = malloc((size_t)(qr->mb * qr->mb) * es + 1);
    DAGR_CHECK(buf, DAGR_ERR_NOMEM, "no memory for a %lld x %lld T factor", (long long)qr->mb,
               (long long)qr->mb);
    dagr_status_t st = DAGR_OK;
    for (int64_t k = 0; k < qr->nk && st == DAGR_OK; k++) {
        int64_t kk = min64(qr->m - k * qr->mb, min64(qr->n - k * qr->mb, qr->mb));
        st = dagr_fetch(qr->T[k], buf, -1);
        for (int64_t i = 0; i < kk && st == DAGR_OK; i++)
            memcpy((char *)tau + (size_t)(k * qr->mb + i) * es, buf + (size_t)(i * (kk + 1)) * es,
                   es);
    }
    free(buf);
    if (st == DAGR_OK && qr->nk == 0) st = dagr_wait_all(qr->ctx);
    return st;
}
