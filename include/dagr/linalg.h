/* dagr — dense linear algebra on DArrays (tile algorithms).
 *
 * Every routine is Logically collective (see dagr/task.h) and only inserts tasks, except
 * dagr_pivots_fetch, which is Collective (it waits); routines chain without barriers
 * (dagr_potrf then dagr_potrs is one graph) and numerical failures (a matrix that is not
 * positive definite, an exactly singular one) surface at the next dagr_wait_all on every
 * rank, with the global column in dagr_last_error(). Shape, tile-size or dtype mismatches
 * return DAGR_ERR_ARG before anything is inserted. Arrays are float or double; all operands
 * of one call have the same dtype. Tilings must conform: a k x n operand paired with an m x k
 * one has tiles whose k-side matches, and the factorizations need square tiles (mb == nb).
 * Distributions may differ between operands (tiles move as needed).
 *
 * NaN and Inf: every routine checks its result (the output operand: C, B, A for getrf and
 * geqrf, Q for orgqr; only the uplo triangle for syrk) after computing it; dagr_potrf needs no
 * pass of its own, see below.
 * A NaN or an Inf there (from a NaN or an Inf in the input, or from an overflow) gives
 * DAGR_ERR_NONFINITE at the next wait on every rank, with dagr_last_error() naming the routine
 * and the first non-finite entry found ("gemm: the result has a NaN at global row 5, column 3
 * (1-based); ..."), rows and columns counted in the array passed (a view counts from its own
 * corner). Values a routine does not read (the other triangle of a symmetric or triangular
 * operand, a unit diagonal, C when beta = 0) are not looked at. Where a numerical failure
 * explains the non-finite values, that failure is reported instead: dagr_potrf and dagr_posv
 * report DAGR_ERR_NOT_SPD for any NaN or Inf in the uplo triangle of A (it always reaches the
 * factor's diagonal, which the factorization tests), and an LU solve (dagr_gesv, or dagr_getrs in
 * the graph of its dagr_getrf) reports DAGR_ERR_SINGULAR rather than the Inf of a division by the
 * zero pivot. With DAGR_ERR_NONFINITE the output holds all that was computed, NaN and Inf included.
 * The check costs one read of the output by low-priority tasks (O(n^2) against the routine's O(n^3)
 * work). What the result does not show is not reported: an Inf that is only divided by (x / Inf =
 * 0) leaves a finite result.
 *
 * Each routine has an _ex form taking options; the plain form passes NULL (the defaults). */
#ifndef DAGR_LINALG_H
#define DAGR_LINALG_H

#include <stdint.h>

#include <dagr/darray.h>
#include <dagr/status.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dagr_op {
    DAGR_NO_TRANS = 0,
    DAGR_TRANS = 1,
} dagr_op_t;

typedef enum dagr_uplo {
    DAGR_LOWER = 0,
    DAGR_UPPER = 1,
} dagr_uplo_t;

typedef enum dagr_side {
    DAGR_LEFT = 0,
    DAGR_RIGHT = 1,
} dagr_side_t;

typedef enum dagr_diag {
    DAGR_NON_UNIT = 0,
    DAGR_UNIT = 1,
} dagr_diag_t;

/* Options of the _ex forms (every routine has one). Fill with dagr_linalg_opts_init(). A
 * routine honours the options it uses and refuses (DAGR_ERR_ARG, naming the routine and the
 * option) any other one not left at its default, never ignores one:
 *   lookahead  potrf, potrs, posv, getrf, gesv, trsm, geqrf, gels (>= 0)
 *   ib         geqrf, gels (>= 1; variants 1 and 2 only: variant 3 refuses a non-default ib)
 *   variant    geqrf, gels (0 auto, 1 tree, 2 flat, 3 householder: LAPACK storage)
 * gemm, syrk, symm, trmm, getrs, ormqr and orgqr use none. */
typedef struct dagr_linalg_opts {
    int lookahead; /* panels factored ahead of the trailing update (priority boost); default 1 */
    int ib;        /* inner block size of the QR panel kernels; default 32 */
    int variant;   /* tile-algorithm variant, 0 = the default (see each routine) */
} dagr_linalg_opts_t;

/* Fills *opts with the defaults. Local. */
DAGR_API void dagr_linalg_opts_init(dagr_linalg_opts_t *opts);

/* The tile size (nb x nb tiles) dagr recommends for factoring or multiplying an m x n matrix
 * on this context: the largest of 384, 256, 192, 128, 96 and 64 that still cuts min(m, n)
 * into at least 11 sqrt(W) tiles, W being the worker threads of all ranks together
 * (dagr_job_info's total_threads); 64 when none does, and min(m, n) when that is smaller
 * (1 for an empty matrix). Big tiles run the BLAS kernels near a core's peak, enough of them
 * keep every worker busy: on 2 ranks x 1 worker that is 256 at n = 4096 and 384 at n = 8192
 * (benchmarks/RESULTS.md). Local, and the same on every rank. Errors: DAGR_ERR_ARG (ctx or
 * nb NULL, m or n negative). */
DAGR_API dagr_status_t dagr_linalg_tile_size(const dagr_ctx_t *ctx, int64_t m, int64_t n,
                                             int64_t *nb);

/* What the tiles are for, in dagr_linalg_tile_size_for. */
typedef enum dagr_la_use {
    DAGR_LA_ANY = 0, /* BLAS 3, Cholesky, LU: dagr_linalg_tile_size's rule */
    DAGR_LA_QR = 1   /* geqrf, ormqr, orgqr, gels */
} dagr_la_use_t;

/* The tile size dagr recommends for a use. DAGR_LA_ANY: as dagr_linalg_tile_size.
 * DAGR_LA_QR: the same choice with half as many tiles asked for (5.5 sqrt(W) across
 * min(m, n)): QR's panel kernels (geqrt, tsqrt and their updates, with inner blocks of
 * dagr_linalg_opts_t.ib) run much further below gemm's speed on small tiles than Cholesky's and
 * LU's do, so a QR gains more from big tiles than it loses in parallelism. On 2 ranks x 1
 * thread that is 256 at n = 2048 and 384 at 4096 and 8192 (benchmarks/RESULTS.md). Local, and
 * the same on every rank. Errors: DAGR_ERR_ARG (ctx or nb NULL, m or n negative, use not one
 * of the above). */
DAGR_API dagr_status_t dagr_linalg_tile_size_for(const dagr_ctx_t *ctx, dagr_la_use_t use,
                                                 int64_t m, int64_t n, int64_t *nb);

/* ---- BLAS 3 ---- */

/* C = alpha op(A) op(B) + beta C. Logically collective. */
DAGR_API dagr_status_t dagr_gemm(dagr_op_t ta, dagr_op_t tb, double alpha, const dagr_darray_t *A,
                                 const dagr_darray_t *B, double beta, dagr_darray_t *C);
DAGR_API dagr_status_t dagr_gemm_ex(dagr_op_t ta, dagr_op_t tb, double alpha,
                                    const dagr_darray_t *A, const dagr_darray_t *B, double beta,
                                    dagr_darray_t *C, const dagr_linalg_opts_t *opts);

/* C = alpha op(A) op(A)^T + beta C on the uplo triangle of the square C (the other triangle
 * is not referenced). op(A) is A (n x k) for DAGR_NO_TRANS, A^T (A is k x n) for DAGR_TRANS.
 * Logically collective. */
DAGR_API dagr_status_t dagr_syrk(dagr_uplo_t uplo, dagr_op_t trans, double alpha,
                                 const dagr_darray_t *A, double beta, dagr_darray_t *C);
DAGR_API dagr_status_t dagr_syrk_ex(dagr_uplo_t uplo, dagr_op_t trans, double alpha,
                                    const dagr_darray_t *A, double beta, dagr_darray_t *C,
                                    const dagr_linalg_opts_t *opts);

/* C = alpha A B + beta C (side LEFT) or alpha B A + beta C (RIGHT), A symmetric, stored in its
 * uplo triangle. Logically collective. */
DAGR_API dagr_status_t dagr_symm(dagr_side_t side, dagr_uplo_t uplo, double alpha,
                                 const dagr_darray_t *A, const dagr_darray_t *B, double beta,
                                 dagr_darray_t *C);
DAGR_API dagr_status_t dagr_symm_ex(dagr_side_t side, dagr_uplo_t uplo, double alpha,
                                    const dagr_darray_t *A, const dagr_darray_t *B, double beta,
                                    dagr_darray_t *C, const dagr_linalg_opts_t *opts);

/* B = alpha op(A)^-1 B (LEFT) or alpha B op(A)^-1 (RIGHT), A triangular (uplo, diag).
 * Logically collective. */
DAGR_API dagr_status_t dagr_trsm(dagr_side_t side, dagr_uplo_t uplo, dagr_op_t trans,
                                 dagr_diag_t diag, double alpha, const dagr_darray_t *A,
                                 dagr_darray_t *B);
DAGR_API dagr_status_t dagr_trsm_ex(dagr_side_t side, dagr_uplo_t uplo, dagr_op_t trans,
                                    dagr_diag_t diag, double alpha, const dagr_darray_t *A,
                                    dagr_darray_t *B, const dagr_linalg_opts_t *opts);

/* B = alpha op(A) B (LEFT) or alpha B op(A) (RIGHT), A triangular (uplo, diag).
 * Logically collective. */
DAGR_API dagr_status_t dagr_trmm(dagr_side_t side, dagr_uplo_t uplo, dagr_op_t trans,
                                 dagr_diag_t diag, double alpha, const dagr_darray_t *A,
                                 dagr_darray_t *B);
DAGR_API dagr_status_t dagr_trmm_ex(dagr_side_t side, dagr_uplo_t uplo, dagr_op_t trans,
                                    dagr_diag_t diag, double alpha, const dagr_darray_t *A,
                                    dagr_darray_t *B, const dagr_linalg_opts_t *opts);

/* ---- Cholesky ---- */

/* A = L L^T (LOWER: L overwrites the lower triangle) or U^T U (UPPER). A not positive
 * definite: DAGR_ERR_NOT_SPD at the next wait, naming the global column (LAPACK's info).
 * Logically collective. */
DAGR_API dagr_status_t dagr_potrf(dagr_uplo_t uplo, dagr_darray_t *A);
DAGR_API dagr_status_t dagr_potrf_ex(dagr_uplo_t uplo, dagr_darray_t *A,
                                     const dagr_linalg_opts_t *opts);
/* Solves A X = B with A factored by dagr_potrf; X overwrites B. Logically collective. */
DAGR_API dagr_status_t dagr_potrs(dagr_uplo_t uplo, const dagr_darray_t *A, dagr_darray_t *B);
DAGR_API dagr_status_t dagr_potrs_ex(dagr_uplo_t uplo, const dagr_darray_t *A, dagr_darray_t *B,
                                     const dagr_linalg_opts_t *opts);
/* dagr_potrf then dagr_potrs. Logically collective. */
DAGR_API dagr_status_t dagr_posv(dagr_uplo_t uplo, dagr_darray_t *A, dagr_darray_t *B);
DAGR_API dagr_status_t dagr_posv_ex(dagr_uplo_t uplo, dagr_darray_t *A, dagr_darray_t *B,
                                    const dagr_linalg_opts_t *opts);

/* ---- LU with partial pivoting ---- */

typedef struct dagr_pivots dagr_pivots_t;

/* P A = L U with row pivoting over the whole column (as ScaLAPACK's pdgetrf): L (unit lower)
 * and U overwrite A; *piv_out receives the pivots. An exactly singular A: DAGR_ERR_SINGULAR at
 * the next wait, naming the first zero pivot's global column (the factorization completes, as
 * LAPACK's does). Logically collective. */
DAGR_API dagr_status_t dagr_getrf(dagr_darray_t *A, dagr_pivots_t **piv_out);
DAGR_API dagr_status_t dagr_getrf_ex(dagr_darray_t *A, dagr_pivots_t **piv_out,
                                     const dagr_linalg_opts_t *opts);
/* Solves op(A) X = B with A, piv from dagr_getrf; X overwrites B. Logically collective. */
DAGR_API dagr_status_t dagr_getrs(dagr_op_t trans, const dagr_darray_t *A, const dagr_pivots_t *piv,
                                  dagr_darray_t *B);
DAGR_API dagr_status_t dagr_getrs_ex(dagr_op_t trans, const dagr_darray_t *A,
                                     const dagr_pivots_t *piv, dagr_darray_t *B,
                                     const dagr_linalg_opts_t *opts);
/* dagr_getrf then dagr_getrs (the pivots are released). Logically collective. */
DAGR_API dagr_status_t dagr_gesv(dagr_darray_t *A, dagr_darray_t *B);
DAGR_API dagr_status_t dagr_gesv_ex(dagr_darray_t *A, dagr_darray_t *B,
                                    const dagr_linalg_opts_t *opts);
/* The pivots as LAPACK's ipiv (1-based global row indices, length min(m, n)) on every rank.
 * Collective: waits (as dagr_wait_all). Errors: DAGR_ERR_ARG (piv NULL, ipiv NULL while
 * min(m, n) > 0), and those of dagr_wait_all. */
DAGR_API dagr_status_t dagr_pivots_fetch(const dagr_pivots_t *piv, int64_t *ipiv);
/* Pivots made from LAPACK's ipiv (1-based global rows, length min(m, n), the same on every
 * rank), for dagr_getrs on an A factored elsewhere (by LAPACK, ScaLAPACK, or an earlier run):
 * *piv_out then serves as if dagr_getrf(A) had made it. A must have square tiles.
 * Logically collective. Errors: DAGR_ERR_ARG (NULL arguments, A not float or double, tiles
 * not square, an entry ipiv[i] outside [i + 1, m] — the message names it). */
DAGR_API dagr_status_t dagr_pivots_from_lapack(const dagr_darray_t *A, const int64_t *ipiv,
                                               dagr_pivots_t **piv_out);
/* Releases the pivots. Logically collective; tolerates NULL; sets *piv to NULL. */
DAGR_API dagr_status_t dagr_pivots_destroy(dagr_pivots_t **piv);

/* ---- QR and least squares ---- */

typedef struct dagr_qr dagr_qr_t;

/* A = Q R: R overwrites the upper triangle of A; the reflectors the rest of A and *qr_out, in
 * one of two storages chosen by opts.variant:
 *   3  householder: LAPACK's and ScaLAPACK's dgeqrf/pdgeqrf storage. Below the diagonal of
 *      column i, A holds the Householder vector v_i (v_i(i) = 1 implied); H_i = I - tau_i v_i
 *      v_i^T and Q = H_1 H_2 ... H_min(m,n), with v_i, tau_i and R those of LAPACK's dgeqrf
 *      up to rounding (dagr_qr_tau_fetch gives tau), so ScaLAPACK's pdormqr/pdorgqr can use
 *      them. Blocked right-looking Householder, one tile column per panel, the trailing update
 *      in plain gemms. Refuses a non-default opts.ib.
 *   1  tile QR (as PLASMA's), each rank reducing its own tiles of a panel first and the
 *      per-rank triangles combined in a binary tree: for tall-skinny arrays;
 *   2  tile QR with a flat tree (one elimination per tile below the diagonal).
 *      Variants 1 and 2 store tile reflectors (not LAPACK's): only dagr_ormqr, dagr_orgqr and
 *      dagr_gels can use them.
 *   0  (default, and the plain dagr_geqrf): variant 1 when A is tall and skinny (more than
 *      twice as many tile rows as tile columns), else 2: the plain dagr_geqrf gives the tile
 *      form, not LAPACK's storage. Variant 3 is not the default because the flat tree was
 *      faster in paired runs on 2 ranks at n = 4096, nb = 256 (benchmarks/RESULTS.md, "QR in
 *      LAPACK storage"); ask for it by name when LAPACK's storage is wanted.
 * Errors: DAGR_ERR_ARG (A NULL, dtype, tiles not square, qr_out NULL, an unknown variant, an
 * option out of range). Logically collective. */
DAGR_API dagr_status_t dagr_geqrf(dagr_darray_t *A, dagr_qr_t **qr_out);
DAGR_API dagr_status_t dagr_geqrf_ex(dagr_darray_t *A, dagr_qr_t **qr_out,
                                     const dagr_linalg_opts_t *opts);
/* A factor in LAPACK storage from reflectors already in A: v_i below the diagonal of column i
 * (as LAPACK's or ScaLAPACK's dgeqrf leave them; nothing else of A is read) and tau, min(m, n)
 * values of A's dtype (float or double), the same on every rank (read during the call only).
 * Inserts the tasks forming each panel's block-reflector factor T from V^T V and tau, so that
 * dagr_ormqr and dagr_orgqr apply Q = H_1 ... H_min(m,n) (a ScaLAPACK pdormqr served by dagr).
 * A must not change while qr is in use. Errors: DAGR_ERR_ARG (A or qr_out NULL, tau NULL while
 * min(m, n) > 0, dtype, tiles not square). Logically collective. */
DAGR_API dagr_status_t dagr_qr_from_householder(const dagr_darray_t *A, const void *tau,
                                                dagr_qr_t **qr_out);
/* The min(m, n) tau values of a factor in LAPACK storage (variant 3 or
 * dagr_qr_from_householder), float or double as A, on every rank. Collective: waits (as
 * dagr_wait_all). Errors: DAGR_ERR_ARG (qr NULL, tau NULL while min(m, n) > 0, a tile-form
 * factor of variant 1 or 2, which has no tau), and those of dagr_wait_all. */
DAGR_API dagr_status_t dagr_qr_tau_fetch(const dagr_qr_t *qr, void *tau);
/* C = op(Q) C (LEFT) or C op(Q) (RIGHT) with Q from dagr_geqrf(A) or dagr_qr_from_householder
 * (either storage). Logically collective. */
DAGR_API dagr_status_t dagr_ormqr(dagr_side_t side, dagr_op_t trans, const dagr_darray_t *A,
                                  const dagr_qr_t *qr, dagr_darray_t *C);
DAGR_API dagr_status_t dagr_ormqr_ex(dagr_side_t side, dagr_op_t trans, const dagr_darray_t *A,
                                     const dagr_qr_t *qr, dagr_darray_t *C,
                                     const dagr_linalg_opts_t *opts);
/* Q = the first n columns of Q (Q is m x n, like A). Logically collective. */
DAGR_API dagr_status_t dagr_orgqr(const dagr_darray_t *A, const dagr_qr_t *qr, dagr_darray_t *Q);
DAGR_API dagr_status_t dagr_orgqr_ex(const dagr_darray_t *A, const dagr_qr_t *qr, dagr_darray_t *Q,
                                     const dagr_linalg_opts_t *opts);
/* Least squares min ||A X - B|| for m >= n: X overwrites the first n rows of B; A is
 * overwritten by its QR factorization. A that does not have full rank (R has an exactly zero
 * diagonal entry, as LAPACK's gels tests): DAGR_ERR_SINGULAR at the next wait naming the first
 * such column, and B keeps Q^T B (the solve does not run). Logically collective. */
DAGR_API dagr_status_t dagr_gels(dagr_darray_t *A, dagr_darray_t *B);
DAGR_API dagr_status_t dagr_gels_ex(dagr_darray_t *A, dagr_darray_t *B,
                                    const dagr_linalg_opts_t *opts);
/* Releases the factor. Logically collective; tolerates NULL; sets *qr to NULL. */
DAGR_API dagr_status_t dagr_qr_destroy(dagr_qr_t **qr);

#ifdef __cplusplus
}
#endif
#endif
