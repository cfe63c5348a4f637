/* lib/dist.c, the distributions that place an array's tiles and a table's partitions on ranks
 * (lib/module.h). Every function is local, so this test calls them in one process for many
 * rank counts, without MPI: each kind's owner against its formula, each rank's tiles (count,
 * enumeration, tile_of) against rank_of, shifts and copies, and the errors for bad grids. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "module.h"

TestSuite(lib_dist, .timeout = 60);

static const int64_t extents[] = {0, 1, 2, 5, 7, 12};
#define NEXT ((int)(sizeof extents / sizeof extents[0]))

/* Every rank's tiles, counted and enumerated, cover each tile once, on its owner, in
 * column-major order, and dist_tile_of inverts the enumeration. */
static void check_local(const dist_t *d) {
    int64_t n = d->mt * d->nt, total = 0;
    char *seen = calloc((size_t)(n ? n : 1), 1);
    cr_assert(seen);
    for (int r = 0; r < d->size; r++) {
        int64_t count = dist_local_count(d, r), k = 0, ti, tj, prev = -1;
        for (; dist_local_tile(d, r, k, &ti, &tj); k++) {
            cr_assert(ti >= 0 && ti < d->mt && tj >= 0 && tj < d->nt,
                      "rank %d tile %lld: (%lld, %lld)", r, (long long)k, (long long)ti,
                      (long long)tj);
            cr_assert_eq(dist_rank_of(d, ti, tj), r, "tile (%lld, %lld) listed on rank %d",
                         (long long)ti, (long long)tj, r);
            cr_assert_eq(dist_tile_of(d, ti, tj), k);
            cr_assert_gt(ti + tj * d->mt, prev, "rank %d's tiles are not column-major", r);
            prev = ti + tj * d->mt;
            cr_assert_not(seen[prev], "tile %lld listed twice", (long long)prev);
            seen[prev] = 1;
        }
        cr_assert_eq(k, count, "rank %d: %lld tiles enumerated, %lld counted", r, (long long)k,
                     (long long)count);
        total += count;
    }
    cr_assert_eq(total, n, "%lld tiles counted over the ranks, %lld exist", (long long)total,
                 (long long)n);
    /* Outside the ranks and past the end: nothing, and the out-parameters stay. */
    int64_t ti = -7, tj = -7;
    cr_assert_eq(dist_local_count(d, -1), 0);
    cr_assert_eq(dist_local_count(d, d->size), 0);
    cr_assert_not(dist_local_tile(d, d->size, 0, &ti, &tj));
    cr_assert_not(dist_local_tile(d, 0, -1, &ti, &tj));
    cr_assert_not(dist_local_tile(d, 0, dist_local_count(d, 0), &ti, &tj));
    cr_assert(ti == -7 && tj == -7);
    cr_assert_eq(dist_rank_of(d, d->mt, 0), -1);
    cr_assert_eq(dist_rank_of(d, 0, -1), -1);
    cr_assert_eq(dist_tile_of(d, -1, 0), -1);
    free(seen);
}

/* rank_of(ti, tj) of a p x q block-cyclic grid whose process (rsrc, csrc) holds tile (0, 0). */
static int bc_rank(int64_t ti, int64_t tj, int p, int q, int rsrc, int csrc, const int *pmap) {
    int r = (int)((ti + rsrc) % p), c = (int)((tj + csrc) % q);
    return pmap ? pmap[r * q + c] : r * q + c;
}

static void check_bc(const dist_t *d, int p, int q, int rsrc, int csrc, const int *pmap) {
    cr_assert_eq(d->kind, DAGR_DIST_BLOCK_CYCLIC);
    cr_assert(d->p == p && d->q == q, "grid %dx%d, expected %dx%d", d->p, d->q, p, q);
    for (int64_t tj = 0; tj < d->nt; tj++)
        for (int64_t ti = 0; ti < d->mt; ti++)
            cr_assert_eq(dist_rank_of(d, ti, tj), bc_rank(ti, tj, p, q, rsrc, csrc, pmap),
                         "%dx%d grid, tile (%lld, %lld)", p, q, (long long)ti, (long long)tj);
    for (int r = 0; r < p; r++)
        for (int c = 0; c < q; c++)
            cr_assert_eq(dist_grid_rank(d, r, c), pmap ? pmap[r * q + c] : r * q + c);
    check_local(d);
}

Test(lib_dist, block_cyclic_every_grid) {
    for (int size = 1; size <= 7; size++)
        for (int p = 1; p <= size; p++)
            for (int q = 1; p * q <= size; q++)
                for (int a = 0; a < NEXT; a++)
                    for (int b = 0; b < NEXT; b++) {
                        dist_t d;
                        cr_assert_eq(
                            dist_resolve(dagr_grid_2d(p, q), size, extents[a], extents[b], &d),
                            DAGR_OK, "%s", dagr_last_error());
                        cr_assert(d.size == size && d.mt == extents[a] && d.nt == extents[b]);
                        check_bc(&d, p, q, 0, 0, NULL);
                        /* Ranks past the grid own nothing. */
                        for (int r = p * q; r < size; r++)
                            cr_assert_eq(dist_local_count(&d, r), 0);
                        dist_free(&d);
                    }
}

Test(lib_dist, squarest_grid) {
    static const int want[][3] = {{1, 1, 1}, {2, 1, 2}, {4, 2, 2}, {6, 2, 3},
                                  {7, 1, 7}, {8, 2, 4}, {9, 3, 3}, {12, 3, 4}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        dist_t d;
        cr_assert_eq(dist_resolve(dagr_grid_2d(0, 0), want[i][0], 5, 6, &d), DAGR_OK);
        check_bc(&d, want[i][1], want[i][2], 0, 0, NULL);
        dist_free(&d);
    }
}

Test(lib_dist, one_dimensional) {
    for (int size = 1; size <= 6; size++)
        for (int a = 0; a < NEXT; a++) {
            int64_t n = extents[a];
            dist_t row, col;
            cr_assert_eq(dist_resolve(dagr_grid_row_cyclic(), size, n, 3, &row), DAGR_OK);
            cr_assert_eq(dist_resolve(dagr_grid_col_cyclic(), size, 3, n, &col), DAGR_OK);
            for (int64_t i = 0; i < n; i++)
                for (int64_t j = 0; j < 3; j++) {
                    cr_assert_eq(dist_rank_of(&row, i, j), (int)(i % size));
                    cr_assert_eq(dist_rank_of(&col, j, i), (int)(i % size));
                }
            check_local(&row);
            check_local(&col);
            dist_free(&row);
            dist_free(&col);
            /* A table's n row partitions (n x 1): partition i on rank i mod size, and rank r's
             * k-th one is partition r + k * size. */
            dist_t parts;
            cr_assert_eq(dist_resolve(dagr_grid_row_cyclic(), size, n, 1, &parts), DAGR_OK);
            for (int r = 0; r < size; r++) {
                int64_t ti, tj;
                cr_assert_eq(dist_local_count(&parts, r), n > r ? (n - 1 - r) / size + 1 : 0);
                for (int64_t k = 0; dist_local_tile(&parts, r, k, &ti, &tj); k++)
                    cr_assert(ti == r + k * size && tj == 0);
            }
            dist_free(&parts);
        }
}

static int calls;
/* An irregular owner, as a user's rank_of could be. */
static int scatter_rank(int64_t ti, int64_t tj, void *user) {
    calls++;
    int size = *(const int *)user;
    return (int)((ti * 7 + tj * 3 + ti * tj) % size);
}

Test(lib_dist, custom_is_a_table) {
    for (int size = 1; size <= 5; size++)
        for (int a = 0; a < NEXT; a++)
            for (int b = 0; b < NEXT; b++) {
                int64_t mt = extents[a], nt = extents[b];
                dist_t d;
                calls = 0;
                cr_assert_eq(dist_resolve(dagr_grid_custom(scatter_rank, &size), size, mt, nt, &d),
                             DAGR_OK, "%s", dagr_last_error());
                cr_assert_eq(d.kind, DAGR_DIST_CUSTOM);
                cr_assert_eq(calls, mt * nt, "rank_of called %d times for %lld tiles", calls,
                             (long long)(mt * nt));
                for (int64_t tj = 0; tj < nt; tj++)
                    for (int64_t ti = 0; ti < mt; ti++)
                        cr_assert_eq(dist_rank_of(&d, ti, tj),
                                     (int)((ti * 7 + tj * 3 + ti * tj) % size));
                check_local(&d);
                cr_assert_eq(calls, mt * nt, "rank_of called again after resolving");
                dist_free(&d);
            }
}

Test(lib_dist, process_map_and_origin) {
    /* A 2 x 3 grid over 7 ranks in a scrambled order, rank 3 outside it; tile (0, 0) on
     * process (1, 2), as a ScaLAPACK array may have. */
    const int pmap[6] = {5, 0, 6, 2, 4, 1};
    dist_t d;
    cr_assert_eq(dist_block_cyclic(7, 9, 8, 2, 3, 1, 2, pmap, &d), DAGR_OK, "%s",
                 dagr_last_error());
    check_bc(&d, 2, 3, 1, 2, pmap);
    cr_assert_eq(dist_local_count(&d, 3), 0);
    dist_free(&d);
    cr_assert_eq(dist_block_cyclic(7, 3, 3, 2, 3, 0, 0, NULL, &d), DAGR_OK);
    check_bc(&d, 2, 3, 0, 0, NULL);
    dist_free(&d);
}

/* A shift places tile (ti, tj) as the original places (ti0 + ti, tj0 + tj). */
static void check_shift(const dist_t *d, int64_t ti0, int64_t tj0, int64_t mt, int64_t nt) {
    dist_t s;
    cr_assert_eq(dist_shift(d, ti0, tj0, mt, nt, &s), DAGR_OK, "%s", dagr_last_error());
    cr_assert(s.kind == d->kind && s.size == d->size && s.mt == mt && s.nt == nt);
    for (int64_t tj = 0; tj < nt; tj++)
        for (int64_t ti = 0; ti < mt; ti++) {
            int64_t pi = ti0 + ti, pj = tj0 + tj;
            int want = pi < d->mt && pj < d->nt
                           ? dist_rank_of(d, pi, pj)
                           : bc_rank(pi, pj, d->p, d->q, d->rsrc, d->csrc, d->pmap);
            cr_assert_eq(dist_rank_of(&s, ti, tj), want);
        }
    check_local(&s);
    dist_free(&s);
}

Test(lib_dist, shift_and_copy) {
    const int pmap[4] = {3, 1, 0, 2};
    int size = 4;
    dist_t ds[3];
    cr_assert_eq(dist_resolve(dagr_grid_2d(2, 2), 5, 7, 6, &ds[0]), DAGR_OK);
    cr_assert_eq(dist_block_cyclic(4, 7, 6, 2, 2, 1, 0, pmap, &ds[1]), DAGR_OK);
    cr_assert_eq(dist_resolve(dagr_grid_custom(scatter_rank, &size), size, 7, 6, &ds[2]), DAGR_OK);
    for (int i = 0; i < 3; i++) {
        check_shift(&ds[i], 0, 0, 7, 6);
        check_shift(&ds[i], 3, 1, 4, 5);
        check_shift(&ds[i], 7, 6, 0, 0);
        check_shift(&ds[i], 2, 2, 0, 3);
        dist_t c;
        cr_assert_eq(dist_copy(&ds[i], &c), DAGR_OK);
        for (int64_t tj = 0; tj < 6; tj++)
            for (int64_t ti = 0; ti < 7; ti++)
                cr_assert_eq(dist_rank_of(&c, ti, tj), dist_rank_of(&ds[i], ti, tj));
        dist_free(&c);
    }
    /* Block-cyclic grids go on past their tiles; a table does not. */
    check_shift(&ds[0], 5, 4, 10, 10);
    check_shift(&ds[1], 5, 4, 10, 10);
    dist_t s = {.p = 42};
    cr_assert_eq(dist_shift(&ds[2], 5, 4, 10, 10, &s), DAGR_ERR_ARG);
    cr_assert(strstr(dagr_last_error(), "outside the 7x6 tiles"), "%s", dagr_last_error());
    cr_assert_eq(dist_shift(&ds[0], -1, 0, 1, 1, &s), DAGR_ERR_ARG);
    cr_assert_eq(s.p, 42, "the out-parameter changed on failure");
    for (int i = 0; i < 3; i++)
        dist_free(&ds[i]);
    dist_free(&ds[0]); /* a freed one again: nothing left to free */
}

static int rank_too_big(int64_t ti, int64_t tj, void *user) {
    (void)user;
    return ti == 2 && tj == 1 ? 8 : 0;
}
static int rank_negative(int64_t ti, int64_t tj, void *user) {
    (void)ti;
    (void)user;
    return tj == 3 ? -1 : 1;
}

/* The call fails with DAGR_ERR_ARG, a message containing text, and *out unchanged. */
static void expect_arg(dagr_grid_t g, int size, int64_t mt, int64_t nt, const char *text) {
    dist_t d = {.p = 42};
    dagr_status_t s = dist_resolve(g, size, mt, nt, &d);
    cr_expect_eq(s, DAGR_ERR_ARG, "status %d (%s) for \"%s\"", (int)s, dagr_last_error(), text);
    cr_expect(strstr(dagr_last_error(), text), "message \"%s\" lacks \"%s\"", dagr_last_error(),
              text);
    cr_expect(d.p == 42 && !d.owner && !d.pmap, "the out-parameter changed on failure");
    if (s == DAGR_OK) dist_free(&d);
}

Test(lib_dist, bad_grids) {
    expect_arg(dagr_grid_2d(-1, 2), 4, 3, 3, "grid -1x2: p and q must be >= 0");
    expect_arg(dagr_grid_2d(2, -3), 4, 3, 3, "grid 2x-3: p and q must be >= 0");
    expect_arg(dagr_grid_2d(0, 2), 4, 3, 3,
               "grid 0x2: give both p and q, or neither (0x0 picks the squarest)");
    expect_arg(dagr_grid_2d(3, 3), 8, 3, 3, "grid 3x3 needs 9 ranks but the context has 8");
    expect_arg(dagr_grid_custom(NULL, NULL), 4, 3, 3, "grid: a custom distribution needs rank_of");
    expect_arg(dagr_grid_custom(rank_too_big, NULL), 8, 4, 4,
               "grid: rank_of(2, 1) returned 8, outside [0, 8)");
    expect_arg(dagr_grid_custom(rank_negative, NULL), 2, 4, 5,
               "grid: rank_of(0, 3) returned -1, outside [0, 2)");
    expect_arg((dagr_grid_t){.dist = (dagr_dist_t)9}, 4, 3, 3, "grid: unknown distribution 9");
    expect_arg(dagr_grid_2d(1, 1), 0, 3, 3, "size must be > 0");
    expect_arg(dagr_grid_2d(1, 1), 2, -1, 3, "mt and nt must be >= 0");
    /* The message names the file where the error was found. */
    dist_t d;
    cr_assert_eq(dist_resolve(dagr_grid_2d(-1, 1), 1, 1, 1, &d), DAGR_ERR_ARG);
    cr_expect(strncmp(dagr_last_error(), "dist.c:", 7) == 0, "%s", dagr_last_error());
}

Test(lib_dist, bad_process_maps) {
    const int dup[4] = {0, 1, 1, 2}, out[4] = {0, 1, 2, 4};
    dist_t d = {.p = 42};
    cr_expect_eq(dist_block_cyclic(4, 2, 2, 2, 2, 0, 0, dup, &d), DAGR_ERR_ARG);
    cr_expect(strstr(dagr_last_error(), "grid processes (0, 1) and (1, 0) are both rank 1"), "%s",
              dagr_last_error());
    cr_expect_eq(dist_block_cyclic(4, 2, 2, 2, 2, 0, 0, out, &d), DAGR_ERR_ARG);
    cr_expect(strstr(dagr_last_error(), "grid process (1, 1) is rank 4, outside [0, 4)"), "%s",
              dagr_last_error());
    cr_expect_eq(dist_block_cyclic(3, 2, 2, 2, 2, 0, 0, NULL, &d), DAGR_ERR_ARG);
    cr_expect(strstr(dagr_last_error(), "grid 2x2 does not fit in 3 ranks"), "%s",
              dagr_last_error());
    cr_expect_eq(dist_block_cyclic(4, 2, 2, 2, 2, 2, 0, NULL, &d), DAGR_ERR_ARG);
    cr_expect(strstr(dagr_last_error(), "(2, 0) of tile (0, 0) is outside the 2x2 grid"), "%s",
              dagr_last_error());
    cr_expect_eq(d.p, 42);
}
