/* dagr — what the data structures share (DArrays today, DTables next): element types, and the
 * distributions that place their pieces (an array's tiles, a table's row partitions) on ranks. */
#ifndef DAGR_TYPES_H
#define DAGR_TYPES_H

#include <stddef.h>
#include <stdint.h>

#include <dagr/status.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dagr_dtype {
    DAGR_FLOAT = 1,
    DAGR_DOUBLE = 2,
    DAGR_INT64 = 3,
} dagr_dtype_t;

/* Bytes per element of a dtype; 0 for an unknown one. Local. */
DAGR_API size_t dagr_dtype_size(dagr_dtype_t t);

/* ------------------------------------------------------------------------------------------
 * Distributions
 *
 * A data structure is cut into an mt x nt grid of tiles (a table's row partitions are
 * mt x 1); a distribution says which rank owns each tile.
 * ---------------------------------------------------------------------------------------- */

typedef enum dagr_dist {
    DAGR_DIST_BLOCK_CYCLIC = 0, /* tile (i, j) on grid process (i mod p, j mod q) */
    DAGR_DIST_ROW_CYCLIC = 1,   /* 1-D: tile row i on rank i mod size (a size x 1 grid) */
    DAGR_DIST_COL_CYCLIC = 2,   /* 1-D: tile column j on rank j mod size (a 1 x size grid) */
    DAGR_DIST_CUSTOM = 3,       /* rank_of(i, j, user) */
} dagr_dist_t;

/* The rank owning tile (ti, tj). Must return the same value on every rank and a rank in
 * [0, size); it is called at creation only. */
typedef int (*dagr_rank_of_fn)(int64_t ti, int64_t tj, void *user);

/* Where tiles live. Fill with one of the dagr_grid_* constructors. For block-cyclic, grid
 * process (r, c) is rank r * q + c (BLACS "Row" order); p = q = 0 picks the squarest p x q
 * with p * q = size and p <= q. */
typedef struct dagr_grid {
    dagr_dist_t dist;
    int p, q;
    dagr_rank_of_fn rank_of; /* DAGR_DIST_CUSTOM only */
    void *user;
} dagr_grid_t;

/* Grid constructors: they only fill a dagr_grid_t (checked when an array or table is
 * created). Local. */
DAGR_API dagr_grid_t dagr_grid_2d(int p, int q); /* block-cyclic; (0, 0) = squarest */
DAGR_API dagr_grid_t dagr_grid_row_cyclic(void);
DAGR_API dagr_grid_t dagr_grid_col_cyclic(void);
DAGR_API dagr_grid_t dagr_grid_custom(dagr_rank_of_fn rank_of, void *user);

#ifdef __cplusplus
}
#endif
#endif
