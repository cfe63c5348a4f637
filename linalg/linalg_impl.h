/* Internal declarations shared by the files of linalg/. Public headers never include this.
 *
 * Algorithms (gemm.c, potrf.c, getrf.c, geqrf.c, ...) insert tasks over DArray tiles; the
 * task bodies are tile kernels kept apart in kernels_*.c (CBLAS/LAPACKE on OpenBLAS, one
 * thread per worker). A kernel learns its tile shapes and scalars from a tile_op_t argument
 * block and the leading dimensions from the task view. */
#ifndef DAGR_LINALG_IMPL_H
#define DAGR_LINALG_IMPL_H

#include <dagr/dagr.h>
#include <dagr/linalg.h>

#include "darray_impl.h"

/* The arguments of a BLAS-3 / LAPACK tile kernel. Buffers are those of the task's accesses,
 * in the order each kernel documents. */
typedef struct tile_op {
    int32_t dtype; /* DAGR_FLOAT or DAGR_DOUBLE */
    int32_t ta, tb, uplo, side, diag;
    int64_t m, n, k; /* the BLAS dimensions of this call */
    double alpha, beta;
    int64_t j0; /* global column of the tile's first column (for error messages) */
    int64_t ib; /* inner block size (panel kernels) */
} tile_op_t;

/* Tile kernels (kernels_cpu.c). Buffers:
 *   gemm:  C(m x n) += ... : 0 = C (RW), 1 = A, 2 = B; C = alpha op(A) op(B) + beta C
 *   syrk:  0 = C (n x n, RW), 1 = A; C = alpha op(A) op(A)^T + beta C on uplo
 *   symm:  0 = C (m x n, RW), 1 = A (symmetric), 2 = B
 *   trsm:  0 = B (m x n, RW), 1 = A (triangular)
 *   trmm:  0 = B (m x n, RW), 1 = A (triangular)
 *   potrf: 0 = A (n x n, RW); fails with DAGR_ERR_NOT_SPD naming global column j0 + info,
 *          or the first non-finite diagonal entry of the factor (a NaN or Inf in A)
 *   scale: 0 = A (m x n, RW); A = alpha A on the uplo triangle, or everywhere for LA_FULL
 *          (alpha == 0 stores zeros) */
/* The end of a potrf tile on any device: fails as described above from LAPACK's info (a
 * non-positive minor, info > 0; lib's invalid argument, info < 0) or from the factor's diagonal,
 * diag[d * stride] of the tile's dtype, in host memory. */
dagr_task_result_t la_potrf_verdict(const dagr_task_view_t *t, const tile_op_t *o, int64_t info,
                                    const void *diag, size_t stride, const char *lib);
/* Device bodies (gpu/cublas.c and, for potrf, gpu/cusolver.c; with CUDA only): cuBLAS or
 * cuSOLVER on a GPU, DAGR_TASK_NEXT on a test device. Besides the BLAS 3 ones: the potrf tile
 * (failing as the CPU body), LU's lu_swap and lu_copy, QR's gemqrt and tpmqrt (qr_blocked.c's
 * gemm-based form) and the LAPACK-form QR's qr_w and qr_wsum. */
#ifdef DAGR_HAVE_CUDA
dagr_task_result_t la_gemm_gpu(const dagr_task_view_t *t);
dagr_task_result_t la_syrk_gpu(const dagr_task_view_t *t);
dagr_task_result_t la_symm_gpu(const dagr_task_view_t *t);
dagr_task_result_t la_trsm_gpu(const dagr_task_view_t *t);
dagr_task_result_t la_trmm_gpu(const dagr_task_view_t *t);
dagr_task_result_t la_potrf_gpu(const dagr_task_view_t *t);
dagr_task_result_t la_lu_swap_gpu(const dagr_task_view_t *t);
dagr_task_result_t la_lu_copy_gpu(const dagr_task_view_t *t);
dagr_task_result_t la_gemqrt_gpu(const dagr_task_view_t *t);
dagr_task_result_t la_tpmqrt_gpu(const dagr_task_view_t *t);
dagr_task_result_t la_qr_hh_w_gpu(const dagr_task_view_t *t);
dagr_task_result_t la_qr_hh_sum_gpu(const dagr_task_view_t *t);
#define LA_GPU(f) f
#else
#define LA_GPU(f) NULL
#endif
extern const dagr_kernel_t la_gemm_kernel, la_syrk_kernel, la_symm_kernel, la_trsm_kernel,
    la_trmm_kernel, la_potrf_kernel, la_scale_kernel;

/* tile_op_t.uplo of the scale kernel for a whole tile. */
#define LA_FULL 2

/* The options a routine takes (opts NULL: the defaults) into *out. An option the routine uses
 * is checked (lookahead >= 0, ib >= 1; variants by the routine); one it does not use must be
 * at its default: DAGR_ERR_ARG naming the routine and the option otherwise, never ignored. */
enum { LA_USES_LOOKAHEAD = 1, LA_USES_IB = 2, LA_USES_VARIANT = 4 };
dagr_status_t la_opts(const dagr_linalg_opts_t *opts, unsigned uses, const char *routine,
                      dagr_linalg_opts_t *out);

/* Argument checks (messages name the operands). */
dagr_status_t la_check_dtype(const dagr_darray_t *A, const char *name);
dagr_status_t la_check_same(const dagr_darray_t *A, const dagr_darray_t *B, const char *a,
                            const char *b);

/* Spawns kernel k over the given accesses with priority prio on the default rank (the owner
 * of the first written tile), declaring `flops` floating-point operations (for DAGR_SUMMARY). */
dagr_status_t la_spawn(const dagr_kernel_t *k, const tile_op_t *op, int naccess,
                       const dagr_access_t *acc, int prio, double flops, dagr_ctx_t *ctx);
/* The same for kernels whose argument block is not a tile_op_t (LU, QR). */
dagr_status_t la_spawn_args(const dagr_kernel_t *k, const void *args, size_t args_size, int naccess,
                            const dagr_access_t *acc, int prio, double flops, dagr_ctx_t *ctx);

/* ---- checking results (common.c, kernels_cpu.c) ---- */

/* Priority of the check tasks: below every task of every algorithm, so that a check never
 * delays a task on the critical path (it runs when its rank has nothing better to do). Only a
 * later call that overwrites a checked tile waits for its check (a read of one tile). */
#define LA_PRIO_CHECK (-(1 << 20))

/* Inserts one read-only task per tile of A that the region touches (DAGR_LOWER or DAGR_UPPER:
 * that triangle of A, diagonal included, in A's own coordinates; LA_FULL: all of A), on the
 * tile's owner at LA_PRIO_CHECK. It runs after every task inserted so far that writes the
 * tile, so called once a routine's tasks are inserted it checks the routine's result. A NaN
 * or an Inf in the region fails the task with DAGR_ERR_NONFINITE, naming `routine` (at most
 * 15 characters are kept) and the first such element of the tile, column by column, by its
 * global row and column in A (1-based); the next wait reports it on every rank.
 * after (NULL for none): a handle every check task also reads, so that the checks run after
 * its last writer and are poisoned (not run) when that writer failed. A routine whose own
 * numerical failure (not positive definite, singular) already explains non-finite values
 * passes the handle that failure is reported through, so that the wait reports that failure
 * and not, depending on timing, this one. Only inserts: the scan costs one read of the
 * region, O(m n) against the routine's O(n^3). */
dagr_status_t la_check_finite(const dagr_darray_t *A, int region, dagr_data_t *after,
                              const char *routine);

/* The argument block of the check kernel. Buffers: 0 = the tile (READ), 1 = the `after`
 * handle when there is one (not looked at). */
typedef struct finite_op {
    int32_t dtype, region; /* region: DAGR_LOWER, DAGR_UPPER or LA_FULL */
    int64_t m, n;          /* the tile's rows and columns */
    int64_t i0, j0;        /* global row and column (0-based) of its first element */
    char routine[16];      /* the routine named in the message */
} finite_op_t;

extern const dagr_kernel_t la_finite_kernel;

/* The report of an exact singularity, LAPACK's info > 0 (kernels_cpu.c):
 *   lu_info, gels_info: 0 = an int64 info handle (RW, left as it is: written so that the tasks
 *   reading it afterwards come after it and are poisoned when it fails); fails with
 *   DAGR_ERR_SINGULAR naming the global column `info` (1-based) when it is nonzero, as a zero
 *   pivot of U (factor 'U', getrf) or a zero diagonal entry of R (factor 'R', gels). */
typedef struct info_op {
    int32_t factor;
} info_op_t;

extern const dagr_kernel_t la_lu_info_kernel, la_gels_info_kernel;

/* ---- blas3.c: pieces shared with the factorizations ---- */

/* Spawn one tile kernel over tiles of the given arrays (no checks: the caller has checked
 * shapes and tilings). Dimensions come from the output tile and, for k, from A's tile. */
dagr_status_t la_tile_gemm(dagr_op_t ta, dagr_op_t tb, double alpha, const dagr_darray_t *A,
                           int64_t ai, int64_t aj, const dagr_darray_t *B, int64_t bi, int64_t bj,
                           double beta, dagr_darray_t *C, int64_t ci, int64_t cj, int prio);
dagr_status_t la_tile_syrk(dagr_uplo_t uplo, dagr_op_t trans, double alpha, const dagr_darray_t *A,
                           int64_t ai, int64_t aj, double beta, dagr_darray_t *C, int64_t ci,
                           int prio);
dagr_status_t la_tile_trsm(dagr_side_t side, dagr_uplo_t uplo, dagr_op_t trans, dagr_diag_t diag,
                           double alpha, const dagr_darray_t *A, int64_t ak, dagr_darray_t *B,
                           int64_t bi, int64_t bj, int prio);

/* Priority of a task of step s of an nsteps-step tile algorithm: a panel task (dist 0) comes
 * before every update; an update of the block dist steps ahead is boosted to the level of that
 * block's panel when dist <= lookahead; other updates come after every panel, earlier steps
 * first (the critical path first). */
int la_prio(int64_t nsteps, int64_t s, int64_t dist, int lookahead);

/* Refuses (DAGR_ERR_ARG) an output array whose tiles overlap those of an input. */
dagr_status_t la_check_apart(const dagr_darray_t *out, const dagr_darray_t *in, const char *o,
                             const char *i);

/* Checks and inserts B = alpha op(A)^-1 B (LEFT) or alpha B op(A)^-1 (RIGHT): dagr_trsm_ex in
 * two steps, so that potrs can check first and insert later. */
dagr_status_t la_trsm_check(dagr_side_t side, dagr_uplo_t uplo, dagr_op_t trans, dagr_diag_t diag,
                            const dagr_darray_t *A, const dagr_darray_t *B);
dagr_status_t la_trsm_insert(dagr_side_t side, dagr_uplo_t uplo, dagr_op_t trans, dagr_diag_t diag,
                             double alpha, const dagr_darray_t *A, dagr_darray_t *B, int lookahead);

/* ---- QR (geqrf.c, kernels_qr.c) ----
 *
 * The QR tile kernels take a qr_op_t (tpqrt/tpmqrt need the trapezoid height l, which
 * tile_op_t has no room for). Buffers:
 *   geqrt:  0 = A (m x n, RW), 1 = T (ib x n, W); A = Q R with ib = min(ib, m, n)
 *   gemqrt: 0 = C (m x n, RW), 1 = V (from geqrt, k reflectors), 2 = T; C = op(Q) C (side
 *           LEFT) or C op(Q) (RIGHT)
 *   tpqrt:  0 = B (m x n, RW, rectangular for l = 0, upper trapezoidal for l = m), 1 = A (the
 *           n x n upper triangle of the top tile, RW), 2 = T (W); [A; B] = Q R
 *   tpmqrt: 0 = B (m x n, RW), 1 = A (k x n for LEFT, m x k for RIGHT, RW), 2 = V (from
 *           tpqrt), 3 = T; [A; B] = op(Q) [A; B] (LEFT) or [A B] = [A B] op(Q) (RIGHT) */
typedef struct qr_op {
    int32_t dtype, side, trans;
    int64_t m, n, k, l, ib;
} qr_op_t;

extern const dagr_kernel_t la_geqrt_kernel, la_gemqrt_kernel, la_tpqrt_kernel, la_tpmqrt_kernel;

/* The rank check of least squares (dagr_gels), as LAPACK's gels: an exactly zero diagonal
 * entry of R means A does not have full rank. An int64 info handle holds the first such
 * entry's global column (1-based), 0 if none; gels_info (above) reports it.
 *   qr_rdiag:  0 = info (RW), 1 = the diagonal tile R(k, k) (READ); when info is still 0,
 *              looks for a zero among the first n diagonal entries and records j0 + d + 1. */
typedef struct rdiag_op {
    int32_t dtype;
    int64_t n, j0;
} rdiag_op_t;

extern const dagr_kernel_t la_qr_rdiag_kernel;

/* ---- LU with partial pivoting (kernels_lu.c) ----
 *
 * The kernels work on a stack of tiles: the tiles of one tile column from tile row k down,
 * rows row0 .. row0 + (ntiles - 1) * nb + last_rows - 1 of the array, every tile nb rows but
 * the last. Pivots are int64 global row indices (0-based, of the array) in a small handle per
 * step; the first zero pivot's global column (1-based) goes to an int64 info handle (0: none).
 *   lu_panel: 0 .. ntiles-1 = the tiles (RW), ntiles = pivots (WRITE), ntiles+1 = info (RW);
 *             factors the stack (cols columns) with LAPACKE getrf and records its npiv pivots.
 *   lu_swap:  0 .. ntiles-1 = the tiles (RW), ntiles = pivots (READ), and when trsm is set
 *             ntiles+1 = the diagonal tile L(k, k) (READ); applies the npiv interchanges
 *             (in reverse order when reverse is set) to cols columns, then, when trsm is set,
 *             solves the top npiv rows with the unit lower triangle of L(k, k).
 *   lu_copy:  0 .. ntiles-1 = the tiles, ntiles = a contiguous block W (a handle of
 *             dagr_data_create_2d); copies the tiles to rows woff.. of W (gather set: tiles
 *             READ, W RW) or back (gather clear: tiles RW or WRITE, W READ). A stack of more
 *             than LU_MAX_STACK tiles is gathered into W, worked on as a stack of one tile,
 *             and scattered back.
 * lu_info (above, factor 'U') reports info. */
typedef struct lu_op {
    int32_t dtype;
    int32_t ntiles;
    int32_t reverse, trsm, gather;
    int64_t nb, last_rows, cols;
    int64_t row0; /* global row of the stack's first row */
    int64_t npiv; /* interchanges of this step */
    int64_t j0;   /* global column of the panel's first column */
    int64_t woff; /* lu_copy: row of W holding the first tile's first row */
} lu_op_t;

/* Most tiles of one stack worked on in place (the panel task names them all, plus at most two
 * handles); a taller stack is gathered into one block, LU_COPY_CHUNK tiles per lu_copy task. */
#define LU_MAX_STACK 30
#define LU_COPY_CHUNK 31

extern const dagr_kernel_t la_lu_panel_kernel, la_lu_swap_kernel, la_lu_copy_kernel;

#endif
