/* Reductions and norms. Each tile's owner computes a partial result into a small handle of
 * doubles; partials are then combined by a tree of tasks, in groups of up to GROUP, ordered by
 * rank so that most combining happens where the partials already are; a last task writes the
 * result into the 1 x 1 output array.
 *
 * Partials: SUM, MIN, MAX, NORM_MAX one value (an int64 sum of an int64 array keeps exact
 * int64 bits); NORM_FRO a (scale, ssq) pair with value = scale * sqrt(ssq), as LAPACK's
 * dlassq; NORM_ONE the tile's column sums (combined down each tile column, then the maximum);
 * NORM_INF its row sums (combined along each tile row, then the maximum). */
#include "darray_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef DAGR_HAVE_NVCC
#include "darray_gpu.h"
#endif

#define GROUP 16

typedef enum red_step { STEP_TILE, STEP_COMBINE, STEP_COLLAPSE, STEP_RESULT } red_step_t;

typedef struct red_args {
    int32_t step;
    int32_t op;    /* dagr_reduce_t, or DAGR_NORM_MAX for a collapsed ONE/INF */
    int32_t int64; /* the values are int64 sums */
    int64_t len;   /* values per partial (ONE/INF vectors) */
    tile_arg_t t;  /* STEP_TILE: the input tile; STEP_RESULT: the output tile */
} red_args_t;

/* ---- per-tile partials ---- */

static double nan_max(double m, double v) {
    return (v > m || isnan(v)) && !isnan(m) ? v : m;
}
static double nan_min(double m, double v) {
    return (v < m || isnan(v)) && !isnan(m) ? v : m;
}

/* Sum of squares of a double tile, four accumulators so the loop runs at memory speed. */
static double sumsq_d(const dagr_tile_t *t) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int64_t c = 0; c < t->cols; c++) {
        const double *col = (const double *)t->data + c * t->ld;
        int64_t r = 0;
        for (; r + 4 <= t->rows; r += 4) {
            s0 += col[r] * col[r];
            s1 += col[r + 1] * col[r + 1];
            s2 += col[r + 2] * col[r + 2];
            s3 += col[r + 3] * col[r + 3];
        }
        for (; r < t->rows; r++)
            s0 += col[r] * col[r];
    }
    return (s0 + s1) + (s2 + s3);
}

/* (scale, ssq) of a tile, value scale * sqrt(ssq). Fast path (double): the plain sum of
 * squares, which is exact enough when it is finite and not tiny (values whose squares
 * underflow then weigh less than 1e-100 of the sum). Otherwise, as LAPACK's dlassq would, a
 * pass for max |x| and a scaled pass, which neither overflows nor underflows. */
static void fro_tile(const dagr_tile_t *t, double out[2]) {
    if (t->dtype == DAGR_DOUBLE) {
        double ss = sumsq_d(t);
        if (isfinite(ss) && ss > 1e-200) {
            out[0] = 1;
            out[1] = ss;
            return;
        }
    }
    double amax = 0;
    bool bad = false;
    for (int64_t c = 0; c < t->cols; c++) {
        for (int64_t r = 0; r < t->rows; r++) {
            double x = fabs(da_load(t->data, t->dtype, r + c * t->ld));
            if (x > amax) amax = x;
            if (isnan(x)) bad = true;
        }
    }
    if (bad || isinf(amax) || amax == 0) {
        out[0] = bad ? NAN : amax; /* NaN, Inf or 0 */
        out[1] = amax == 0 ? 0 : 1;
        return;
    }
    double inv = 1.0 / amax, ss = 0;
    for (int64_t c = 0; c < t->cols; c++) {
        for (int64_t r = 0; r < t->rows; r++) {
            double x = da_load(t->data, t->dtype, r + c * t->ld) * inv;
            ss += x * x;
        }
    }
    out[0] = amax;
    out[1] = ss;
}

static void fro_combine(double acc[2], const double p[2]) {
    if (isnan(acc[0]) || isnan(p[0])) {
        acc[0] = NAN;
    } else if (isinf(acc[0]) || isinf(p[0])) {
        acc[0] = INFINITY;
    } else if (p[0] > acc[0]) {
        double r = acc[0] / p[0];
        acc[1] = p[1] + acc[1] * r * r;
        acc[0] = p[0];
    } else if (p[0] > 0) {
        double r = p[0] / acc[0];
        acc[1] += p[1] * r * r;
    }
}

static void tile_partial(const red_args_t *a, const dagr_tile_t *t, double *out) {
    dagr_reduce_t op = (dagr_reduce_t)a->op;
    if (op == DAGR_NORM_FRO) {
        fro_tile(t, out);
        return;
    }
    if (op == DAGR_REDUCE_SUM && t->dtype == DAGR_INT64) {
        int64_t s = 0;
        for (int64_t c = 0; c < t->cols; c++)
            for (int64_t r = 0; r < t->rows; r++)
                s += ((const int64_t *)t->data)[r + c * t->ld];
        memcpy(out, &s, sizeof s);
        return;
    }
    if (op == DAGR_NORM_ONE || op == DAGR_NORM_INF) memset(out, 0, (size_t)a->len * sizeof *out);
    double acc = op == DAGR_REDUCE_MIN ? INFINITY : op == DAGR_REDUCE_MAX ? -INFINITY : 0;
    for (int64_t c = 0; c < t->cols; c++) {
        for (int64_t r = 0; r < t->rows; r++) {
            double x = da_load(t->data, t->dtype, r + c * t->ld);
            switch (op) {
            case DAGR_REDUCE_SUM:
                acc += x;
                break;
            case DAGR_REDUCE_MIN:
                acc = nan_min(acc, x);
                break;
            case DAGR_REDUCE_MAX:
                acc = nan_max(acc, x);
                break;
            case DAGR_NORM_MAX:
                acc = nan_max(acc, fabs(x));
                break;
            case DAGR_NORM_ONE:
                out[c] += fabs(x);
                break;
            case DAGR_NORM_INF:
                out[r] += fabs(x);
                break;
            default:
                break;
            }
        }
    }
    if (op != DAGR_NORM_ONE && op != DAGR_NORM_INF) out[0] = acc;
}

/* acc = combine(acc, p) for partials of a->len values. */
static void combine(const red_args_t *a, double *acc, const double *p) {
    switch ((dagr_reduce_t)a->op) {
    case DAGR_REDUCE_SUM:
        if (a->int64) {
            int64_t x, y;
            memcpy(&x, acc, sizeof x);
            memcpy(&y, p, sizeof y);
            x = (int64_t)((uint64_t)x + (uint64_t)y); /* wraps like the tile sums */
            memcpy(acc, &x, sizeof x);
        } else {
            acc[0] += p[0];
        }
        break;
    case DAGR_REDUCE_MIN:
        acc[0] = nan_min(acc[0], p[0]);
        break;
    case DAGR_REDUCE_MAX:
    case DAGR_NORM_MAX:
        acc[0] = nan_max(acc[0], p[0]);
        break;
    case DAGR_NORM_FRO:
        fro_combine(acc, p);
        break;
    case DAGR_NORM_ONE:
    case DAGR_NORM_INF:
        for (int64_t k = 0; k < a->len; k++)
            acc[k] += p[k];
        break;
    }
}

static double final_value(const red_args_t *a, const double *p, int64_t *exact) {
    if (a->int64 && a->op == DAGR_REDUCE_SUM) {
        memcpy(exact, p, sizeof *exact);
        return (double)*exact;
    }
    if (a->op == DAGR_NORM_FRO) return isnan(p[0]) || isinf(p[0]) ? p[0] : p[0] * sqrt(p[1]);
    return p[0];
}

static dagr_task_result_t k_reduce(const dagr_task_view_t *task) {
    const red_args_t *a = task->args;
    switch ((red_step_t)a->step) {
    case STEP_TILE: {
        dagr_tile_t t = da_tile_view(task, 1, &a->t);
        tile_partial(a, &t, task->buf[0]);
        break;
    }
    case STEP_COMBINE:
        for (int k = 1; k < task->nbuf; k++)
            combine(a, task->buf[0], task->buf[k]);
        break;
    case STEP_COLLAPSE: { /* a ONE/INF vector -> its maximum, in place */
        double *v = task->buf[0], m = 0;
        for (int64_t k = 0; k < a->len; k++)
            m = nan_max(m, v[k]);
        v[0] = m;
        break;
    }
    case STEP_RESULT: {
        dagr_tile_t out = da_tile_view(task, 0, &a->t);
        int64_t exact = 0;
        double v = final_value(a, task->buf[1], &exact);
        if (a->int64 && a->op == DAGR_REDUCE_SUM && out.dtype == DAGR_INT64)
            *(int64_t *)out.data = exact;
        else
            da_store(out.data, out.dtype, 0, v);
        break;
    }
    }
    return DAGR_TASK_DONE;
}

#ifdef DAGR_HAVE_NVCC
/* The device body of the per-tile step: on a GPU, gpu/darray_ops.cu's kernels write the tile's
 * partial into buffer 0 on the GPU; on a test device NEXT, and the CPU body runs there. The
 * combining steps are a few values each: they stay on the host (reduce_kernel). */
static dagr_task_result_t k_reduce_tile_gpu(const dagr_task_view_t *task) {
    if (!task->stream) return DAGR_TASK_NEXT;
    const red_args_t *a = task->args;
    dagr_tile_t t = da_tile_view(task, 1, &a->t);
    int e = gpu_da_reduce_tile(task->stream, a->op, t.dtype, t.data, (size_t)t.ld, t.rows, t.cols,
                               task->buf[0]);
    if (e == 0) return DAGR_TASK_DONE;
    dagr_task_fail(task, DAGR_ERR_GPU, "reduction kernel: %s", gpu_da_error(e));
    return DAGR_TASK_ERROR;
}
#define REDUCE_TILE_GPU k_reduce_tile_gpu
#else
#define REDUCE_TILE_GPU NULL
#endif

static const dagr_kernel_t reduce_kernel = {.name = "darray_reduce", .cpu = k_reduce};
static const dagr_kernel_t reduce_tile_kernel = {
    .name = "darray_reduce_tile", .cpu = k_reduce, .gpu = REDUCE_TILE_GPU};

/* ---- the tree ---- */

typedef struct part {
    dagr_data_t *h;
    int owner;
    int64_t idx; /* tie-break: keeps the order (and so the float sums) the same everywhere */
} part_t;

static int part_cmp(const void *x, const void *y) {
    const part_t *a = x, *b = y;
    if (a->owner != b->owner) return a->owner < b->owner ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* Combines n partials into p[0] (every handle stays alive; the caller destroys them). */
static dagr_status_t tree(dagr_ctx_t *ctx, red_args_t a, part_t *p, int64_t n) {
    a.step = STEP_COMBINE;
    qsort(p, (size_t)n, sizeof *p, part_cmp);
    while (n > 1) {
        int64_t m = 0;
        for (int64_t g = 0; g < n; g += GROUP) {
            int64_t k = n - g < GROUP ? n - g : GROUP;
            if (k > 1) {
                dagr_access_t acc[GROUP];
                acc[0] = (dagr_access_t){p[g].h, DAGR_RW};
                for (int64_t i = 1; i < k; i++)
                    acc[i] = (dagr_access_t){p[g + i].h, DAGR_READ};
                DAGR_TRY(dagr_spawn(ctx, &reduce_kernel, &a, sizeof a, (int)k, acc, NULL));
            }
            p[m++] = p[g];
        }
        n = m;
    }
    return DAGR_OK;
}

static dagr_status_t new_part(dagr_ctx_t *ctx, int64_t len, int owner, int64_t idx, part_t *p) {
    p->owner = owner;
    p->idx = idx;
    return dagr_data_create(ctx, (size_t)len * sizeof(double), owner, &p->h);
}

/* Inserts the whole reduction; partial handles go into parts (for the caller to destroy). */
static dagr_status_t reduce_insert(const dagr_darray_t *A, red_args_t a, dagr_darray_t *R,
                                   part_t *parts) {
    dagr_ctx_t *ctx = A->ctx;
    dagr_reduce_t op = (dagr_reduce_t)a.op;
    int64_t ntiles = A->mt * A->nt;
    bool by_col = op == DAGR_NORM_ONE, by_row = op == DAGR_NORM_INF;
    for (int64_t tj = 0; tj < A->nt; tj++) {
        for (int64_t ti = 0; ti < A->mt; ti++) {
            int64_t k = ti + tj * A->mt;
            red_args_t t = a;
            t.step = STEP_TILE;
            t.t = da_tile_arg(A, ti, tj);
            t.len = by_col ? t.t.cols : by_row ? t.t.rows : op == DAGR_NORM_FRO ? 2 : 1;
            int owner = dagr_data_owner(da_handle(A, ti, tj));
            DAGR_TRY(new_part(ctx, t.len, owner, k, &parts[k]));
            dagr_access_t acc[2] = {{parts[k].h, DAGR_WRITE}, {da_handle(A, ti, tj), DAGR_READ}};
            DAGR_TRY(dagr_spawn(ctx, &reduce_tile_kernel, &t, sizeof t, 2, acc, NULL));
        }
    }
    part_t *tops = parts + ntiles; /* scratch for the heads of the per-column/row trees */
    int64_t ntops = ntiles;
    if (by_col || by_row) {
        /* Sum the vectors down each tile column (ONE) or along each tile row (INF), then
         * keep each sum's maximum: the remaining tree takes maxima. */
        int64_t outer = by_col ? A->nt : A->mt, inner = by_col ? A->mt : A->nt;
        part_t *line = tops + ntiles;
        for (int64_t o = 0; o < outer; o++) {
            for (int64_t i = 0; i < inner; i++)
                line[i] = parts[by_col ? i + o * A->mt : o + i * A->mt];
            red_args_t v = a;
            v.len = by_col ? da_tile_cols(A, o) : da_tile_rows(A, o);
            DAGR_TRY(tree(ctx, v, line, inner));
            v.step = STEP_COLLAPSE;
            dagr_access_t acc = {line[0].h, DAGR_RW};
            DAGR_TRY(dagr_spawn(ctx, &reduce_kernel, &v, sizeof v, 1, &acc, NULL));
            tops[o] = line[0];
        }
        ntops = outer;
        a.op = DAGR_NORM_MAX;
    } else {
        memcpy(tops, parts, (size_t)ntiles * sizeof *tops);
    }
    a.len = op == DAGR_NORM_FRO ? 2 : 1;
    DAGR_TRY(tree(ctx, a, tops, ntops));
    a.step = STEP_RESULT;
    a.t = da_tile_arg(R, 0, 0);
    dagr_access_t acc[2] = {{da_handle(R, 0, 0), da_out_mode(R, 0, 0)}, {tops[0].h, DAGR_READ}};
    return dagr_spawn(ctx, &reduce_kernel, &a, sizeof a, 2, acc, NULL);
}

dagr_status_t dagr_darray_reduce(const dagr_darray_t *A, dagr_reduce_t op, dagr_darray_t *R) {
    DAGR_TRY(da_check(A, "A"));
    DAGR_TRY(da_check(R, "R"));
    DAGR_CHECK(A->ctx == R->ctx, DAGR_ERR_ARG, "A and R belong to different contexts");
    DAGR_CHECK(op >= DAGR_REDUCE_SUM && op <= DAGR_NORM_FRO, DAGR_ERR_ARG,
               "op %d is not a dagr_reduce_t", (int)op);
    DAGR_CHECK(R->m == 1 && R->n == 1, DAGR_ERR_ARG, "R is %lldx%lld, not 1x1", (long long)R->m,
               (long long)R->n);
    int64_t ntiles = A->mt * A->nt;
    if (ntiles == 0) {
        DAGR_CHECK(op != DAGR_REDUCE_MIN && op != DAGR_REDUCE_MAX, DAGR_ERR_ARG,
                   "the %s of an empty %lldx%lld array is undefined",
                   op == DAGR_REDUCE_MIN ? "min" : "max", (long long)A->m, (long long)A->n);
        return dagr_darray_zeros(R);
    }
    red_args_t a = {.op = op, .int64 = A->dtype == DAGR_INT64 && op == DAGR_REDUCE_SUM};
    /* parts, tree heads and one line of partials */
    part_t *parts = calloc((size_t)(2 * ntiles + (A->mt > A->nt ? A->mt : A->nt)), sizeof *parts);
    DAGR_CHECK(parts, DAGR_ERR_NOMEM, "cannot allocate a reduction of %lld tiles",
               (long long)ntiles);
    dagr_status_t s = reduce_insert(A, a, R, parts);
    /* Destroying partials now is safe: the tasks already inserted keep them alive. */
    for (int64_t k = 0; k < ntiles; k++)
        dagr_data_destroy(&parts[k].h);
    free(parts);
    return s;
}

dagr_status_t dagr_darray_reduce_value(const dagr_darray_t *A, dagr_reduce_t op, double *out) {
    DAGR_TRY(da_check(A, "A"));
    DAGR_CHECK(out, DAGR_ERR_ARG, "out is NULL");
    dagr_darray_t *R = NULL;
    DAGR_TRY(dagr_darray_create(A->ctx, DAGR_DOUBLE, 1, 1, 1, 1, dagr_grid_2d(1, 1), &R));
    dagr_status_t s = dagr_darray_reduce(A, op, R);
    if (s == DAGR_OK) s = dagr_darray_fetch(R, 0, 0, out);
    dagr_darray_destroy(&R);
    return s;
}

dagr_status_t dagr_darray_sum(const dagr_darray_t *A, double *out) {
    return dagr_darray_reduce_value(A, DAGR_REDUCE_SUM, out);
}
dagr_status_t dagr_darray_min(const dagr_darray_t *A, double *out) {
    return dagr_darray_reduce_value(A, DAGR_REDUCE_MIN, out);
}
dagr_status_t dagr_darray_max(const dagr_darray_t *A, double *out) {
    return dagr_darray_reduce_value(A, DAGR_REDUCE_MAX, out);
}
dagr_status_t dagr_darray_norm(const dagr_darray_t *A, dagr_reduce_t norm, double *out) {
    DAGR_CHECK(norm >= DAGR_NORM_ONE && norm <= DAGR_NORM_FRO, DAGR_ERR_ARG,
               "norm %d is not one of DAGR_NORM_ONE, _INF, _MAX, _FRO", (int)norm);
    return dagr_darray_reduce_value(A, norm, out);
}
