/* Tasks over a stack of tiles: one tile column of an array from a tile row down, as the LU
 * and Householder QR panels work on it. Internal to linalg/ (included after linalg_impl.h). */
#ifndef DAGR_LINALG_STACK_H
#define DAGR_LINALG_STACK_H

#include "linalg_impl.h"

/* The lu_op_t describing the stack of tile column j of X from tile row k down (ntiles, nb,
 * last_rows, cols, row0, j0 set; npiv as given, everything else 0). */
lu_op_t la_stack_op(const dagr_darray_t *X, int64_t k, int64_t j, int64_t npiv);

/* Spawns kernel kern with argument o (from la_stack_op) on the stack of tile column j of X
 * from tile row k down (every tile RW), followed by the nextra accesses in extra, with
 * priority prio and `flops`. A stack of more than LU_MAX_STACK tiles is gathered by lu_copy
 * tasks into one contiguous block on the owner of tile (k, j), the kernel runs on that block
 * as a stack of one tile, and the block is scattered back: the same tiles travel to the same
 * rank as in the one-task case, plus two local copies. */
dagr_status_t la_stack_spawn(const dagr_kernel_t *kern, lu_op_t o, const dagr_darray_t *X,
                             int64_t k, int64_t j, int nextra, const dagr_access_t *extra, int prio,
                             double flops);

#endif
