/* Numeric columns of a table as a DArray (dagr_dtable_to_darray).
 *
 * The call counts the rows of every partition (one wait), creates the nrows x ncols array,
 * and inserts one task per tile on the tile's owner, reading the partitions whose rows
 * overlap the tile's row range: the partitions travel to the tiles (a tile row usually
 * spans one or two partitions), the tile is written column by column in place. */
#include "dtable_impl.h"

#include "darray_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- the fill tasks ---- */

/* The task's arguments: this header, then ncols int32 table column indices. The buffers: 0
 * the tile, then the partitions overlapping its rows in order (empty ones left out), the
 * first starting at global row `start`. */
typedef struct fill_arg {
    tile_arg_t ta;
    int64_t start;
} fill_arg_t;

static dagr_task_result_t fill_task(const dagr_task_view_t *task) {
    fill_arg_t a;
    memcpy(&a, task->args, sizeof a);
    const char *colp = (const char *)task->args + sizeof a;
    int64_t ld = (int64_t)task->ld[0];
    bool dbl = a.ta.dtype == DAGR_DOUBLE;
    int64_t row0 = a.start; /* the global row of the current partition's first row */
    for (int k = 1; k < task->nbuf; k++) {
        dt_part_t p;
        if (!dt_task_view(task, k, &p)) return DAGR_TASK_ERROR;
        /* Rows [lo, hi) of this partition fall in the tile, at tile row r0. */
        int64_t lo = a.ta.i0 > row0 ? a.ta.i0 - row0 : 0;
        int64_t hi = a.ta.i0 + a.ta.rows - row0;
        if (hi > p.nrows) hi = p.nrows;
        int64_t r0 = row0 + lo - a.ta.i0;
        for (int64_t c = 0; c < a.ta.cols && lo < hi; c++) {
            int32_t j;
            memcpy(&j, colp + (size_t)c * sizeof j, sizeof j);
            if (j >= p.ncols) {
                dagr_task_fail(task, DAGR_ERR_FORMAT, "a partition has %d columns", p.ncols);
                dt_part_free(&p);
                return DAGR_TASK_ERROR;
            }
            const dt_column_t *col = &p.cols[j];
            for (int64_t i = lo; col->valid && i < hi; i++)
                if (!dt_valid(col, i)) {
                    dagr_task_fail(task, DAGR_ERR_ARG,
                                   "to_darray: column '%s' is null at row %lld (0-based): a "
                                   "DArray has no nulls (filter them out, or coalesce)",
                                   p.names[j], (long long)(row0 + i));
                    dt_part_free(&p);
                    return DAGR_TASK_ERROR;
                }
            int64_t n = hi - lo;
            if (dbl) {
                double *d = (double *)task->buf[0] + r0 + c * ld;
                switch (col->type) {
                case DT_FLOAT64:
                    memcpy(d, (const double *)col->values + lo, (size_t)n * sizeof *d);
                    break;
                case DT_INT64:
                case DT_TIMESTAMP:
                    for (int64_t i = 0; i < n; i++)
                        d[i] = (double)((const int64_t *)col->values)[lo + i];
                    break;
                case DT_BOOL:
                    for (int64_t i = 0; i < n; i++)
                        d[i] = ((const uint8_t *)col->values)[lo + i];
                    break;
                default:
                    goto bad_type;
                }
            } else {
                float *d = (float *)task->buf[0] + r0 + c * ld;
                switch (col->type) {
                case DT_FLOAT64:
                    for (int64_t i = 0; i < n; i++)
                        d[i] = (float)((const double *)col->values)[lo + i];
                    break;
                case DT_INT64:
                case DT_TIMESTAMP:
                    for (int64_t i = 0; i < n; i++)
                        d[i] = (float)((const int64_t *)col->values)[lo + i];
                    break;
                case DT_BOOL:
                    for (int64_t i = 0; i < n; i++)
                        d[i] = ((const uint8_t *)col->values)[lo + i];
                    break;
                default:
                    goto bad_type;
                }
            }
            continue;
        bad_type:
            dagr_task_fail(task, DAGR_ERR_FORMAT, "to_darray: column '%s' is %s in a partition",
                           p.names[j], dt_type_name(col->type));
            dt_part_free(&p);
            return DAGR_TASK_ERROR;
        }
        row0 += p.nrows;
        dt_part_free(&p);
    }
    return DAGR_TASK_DONE;
}
static const dagr_kernel_t fill_kernel = {"dtable_to_darray", fill_task, NULL, {NULL}};

dagr_status_t dagr_dtable_to_darray(dagr_dtable_t *t, int ncols, const char *const *names,
                                    dagr_dtype_t dtype, int64_t mb, int64_t nb, dagr_grid_t grid,
                                    dagr_darray_t **out) {
    DAGR_TRY(dt_check(t, "to_darray: the table"));
    DAGR_CHECK(names && out, DAGR_ERR_ARG, "to_darray: names or out is NULL");
    DAGR_CHECK(ncols >= 1, DAGR_ERR_ARG, "to_darray: ncols (%d) must be >= 1", ncols);
    DAGR_CHECK(dtype == DAGR_DOUBLE || dtype == DAGR_FLOAT, DAGR_ERR_ARG,
               "to_darray: dtype %d is not DAGR_DOUBLE nor DAGR_FLOAT", (int)dtype);
    DAGR_CHECK(mb > 0 && nb > 0, DAGR_ERR_ARG, "to_darray: tile size %lldx%lld must be > 0",
               (long long)mb, (long long)nb);
    *out = NULL;
    int32_t *idx = malloc((size_t)ncols * sizeof *idx);
    DAGR_CHECK(idx, DAGR_ERR_NOMEM, "out of memory");
    dagr_status_t s = DAGR_OK;
    for (int c = 0; c < ncols && s == DAGR_OK; c++) {
        int j;
        s = dt_find_col(t, names[c], "to_darray", &j);
        if (s == DAGR_OK && t->types[j] == DT_STRING)
            s = DAGR_ERR(DAGR_ERR_ARG, "to_darray: column '%s' is a string column", names[c]);
        if (s == DAGR_OK) idx[c] = j;
    }
    int64_t tile_cols = nb < ncols ? nb : ncols;
    if (s == DAGR_OK && (size_t)tile_cols * sizeof *idx + sizeof(fill_arg_t) > DAGR_MAX_ARGS)
        s = DAGR_ERR(DAGR_ERR_ARG, "to_darray: nb = %lld columns per tile is too many (at most %d)",
                     (long long)nb, (int)((DAGR_MAX_ARGS - sizeof(fill_arg_t)) / 4));
    if (s != DAGR_OK) {
        dt_free(idx);
        return s;
    }
    int np = t->nparts;
    int64_t *cnt = malloc(((size_t)np + 1) * sizeof *cnt);
    int64_t *start = malloc(((size_t)np + 1) * sizeof *start);
    s = cnt && start ? DAGR_OK : DAGR_ERR(DAGR_ERR_NOMEM, "out of memory");
    s = dt_agree(t->ctx, s);
    if (s == DAGR_OK) s = dt_count_parts(t, cnt);
    dagr_darray_t *A = NULL;
    if (s == DAGR_OK) {
        start[0] = 0;
        for (int p = 0; p < np; p++)
            start[p + 1] = start[p] + cnt[p];
        s = dagr_darray_create(t->ctx, dtype, start[np], ncols, mb, nb, grid, &A);
    }
    dagr_access_t *acc = s == DAGR_OK ? malloc(((size_t)np + 1) * sizeof *acc) : NULL;
    if (s == DAGR_OK && !acc) s = DAGR_ERR(DAGR_ERR_NOMEM, "out of memory");
    char buf[DAGR_MAX_ARGS];
    int p0 = 0; /* the first partition that may overlap the tile row */
    for (int64_t ti = 0; s == DAGR_OK && ti < A->mt; ti++) {
        int64_t i0 = ti * mb, i1 = i0 + da_tile_rows(A, ti);
        while (p0 < np && start[p0 + 1] <= i0)
            p0++;
        for (int64_t tj = 0; s == DAGR_OK && tj < A->nt; tj++) {
            fill_arg_t a = {.ta = da_tile_arg(A, ti, tj), .start = -1};
            int na = 0;
            acc[na++] = (dagr_access_t){da_handle(A, ti, tj), da_out_mode(A, ti, tj)};
            for (int p = p0; p < np && start[p] < i1; p++) {
                if (cnt[p] == 0) continue;
                if (a.start < 0) a.start = start[p];
                acc[na++] = (dagr_access_t){t->parts[p], DAGR_READ};
            }
            memcpy(buf, &a, sizeof a);
            memcpy(buf + sizeof a, idx + a.ta.j0, (size_t)a.ta.cols * sizeof *idx);
            dagr_task_opts_t o;
            dagr_task_opts_init(&o);
            o.rank = dagr_data_owner(acc[0].data);
            s = dagr_spawn(t->ctx, &fill_kernel, buf, sizeof a + (size_t)a.ta.cols * sizeof *idx,
                           na, acc, &o);
        }
    }
    dt_free(acc);
    dt_free(cnt);
    dt_free(start);
    dt_free(idx);
    if (s != DAGR_OK) {
        dagr_darray_destroy(&A);
        return s;
    }
    *out = A;
    return DAGR_OK;
}
