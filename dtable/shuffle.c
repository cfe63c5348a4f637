/* The shuffle (dtable_impl.h): every row of every partition to the destination partition a
 * route picks, through the runtime. One map task per input partition, on its rank, writes
 * one bucket handle per destination; the consumer of destination q reads the buckets
 * (p, q) of every p, and the runtime moves each bucket from p's rank to q's (or shares it,
 * on one node). No collective call: the shuffle is part of the graph like any other task,
 * and the next operation's tasks start as soon as their buckets are written. */
#include "dtable_impl.h"

#include "expr.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct shuffle_arg {
    dt_route_fn route;
    int32_t nout, nextra; /* then the route's arguments */
} shuffle_arg_t;

bool dt_scatter(const dagr_task_view_t *task, int first_out, int nout, int ncols,
                const char *const *names, const dt_column_t *cols, int64_t n,
                const uint32_t *dest) {
    /* A stable counting sort of the rows by destination: bucket q's rows are
     * rows[start[q], start[q + 1]), in their input order. */
    int64_t *start = calloc((size_t)nout + 2, sizeof *start);
    int64_t *fill = malloc(((size_t)nout + 1) * sizeof *fill);
    int64_t *rows = dt_alloc(((size_t)n + 1) * sizeof *rows);
    bool ok = start && fill && rows;
    if (!ok) dt_task_fail_code(task, -ENOMEM, 0, NULL);
    if (ok) {
        for (int64_t i = 0; i < n; i++)
            start[dest[i] + 1]++;
        for (int q = 0; q < nout; q++)
            start[q + 1] += start[q];
        memcpy(fill, start, (size_t)nout * sizeof *fill);
        for (int64_t i = 0; i < n; i++)
            rows[fill[dest[i]]++] = i;
    }
    for (int q = 0; ok && q < nout; q++)
        ok = dt_task_write_rows(task, first_out + q, ncols, names, cols, rows + start[q],
                                start[q + 1] - start[q]);
    dt_free(start);
    dt_free(fill);
    dt_free(rows);
    return ok;
}

static dagr_task_result_t shuffle_task(const dagr_task_view_t *task) {
    shuffle_arg_t a;
    memcpy(&a, task->args, sizeof a);
    const void *rargs = (const char *)task->args + sizeof a;
    size_t rsize = task->args_size - sizeof a;
    dt_part_t in, *extra = calloc((size_t)a.nextra + 1, sizeof *extra);
    if (!extra) return dt_task_fail_code(task, -ENOMEM, 0, NULL);
    if (!dt_task_view(task, 0, &in)) {
        dt_free(extra);
        return DAGR_TASK_ERROR;
    }
    int nv = 0;
    bool ok = true;
    for (int e = 0; ok && e < a.nextra; e++)
        if ((ok = dt_task_view(task, 1 + e, &extra[e]))) nv++;
    uint32_t *dest = dt_alloc(((size_t)in.nrows + 1) * sizeof *dest);
    if (ok && !dest) {
        dt_task_fail_code(task, -ENOMEM, 0, NULL);
        ok = false;
    }
    char err[256] = "";
    if (ok && a.route(&in, rargs, rsize, a.nextra, extra, (uint32_t)a.nout, dest, err) != 0) {
        dagr_task_fail(task, DAGR_ERR_INTERNAL, "shuffle: %s", err);
        ok = false;
    }
    if (ok)
        ok = dt_scatter(task, 1 + a.nextra, a.nout, in.ncols, in.names, in.cols, in.nrows, dest);
    dt_free(dest);
    for (int e = 0; e < nv; e++)
        dt_part_free(&extra[e]);
    dt_free(extra);
    dt_part_free(&in);
    return ok ? DAGR_TASK_DONE : DAGR_TASK_ERROR;
}
static const dagr_kernel_t shuffle_kernel = {"dtable_shuffle", shuffle_task, NULL, {NULL}};

void dt_buckets_free(const dagr_dtable_t *t, int nout, dagr_data_t **buckets) {
    if (!buckets) return;
    for (int64_t k = 0; k < (int64_t)t->nparts * nout; k++)
        dagr_data_destroy(&buckets[k]);
    dt_free(buckets);
}

dagr_status_t dt_buckets_new(dagr_ctx_t *ctx, int nparts, int nout, dagr_data_t ***buckets) {
    size_t nb = (size_t)nparts * (size_t)nout;
    dagr_data_t **b = calloc(nb + 1, sizeof *b);
    DAGR_CHECK(b, DAGR_ERR_NOMEM, "out of memory");
    dagr_status_t s = DAGR_OK;
    for (size_t k = 0; k < nb && s == DAGR_OK; k++)
        s = dagr_data_create_dynamic(ctx, dt_part_rank(ctx, (int)(k % (size_t)nout)), &b[k]);
    if (s != DAGR_OK) {
        for (size_t k = 0; k < nb; k++)
            dagr_data_destroy(&b[k]);
        dt_free(b);
        return s;
    }
    *buckets = b;
    return DAGR_OK;
}

dagr_status_t dt_shuffle(dagr_dtable_t *t, int nout, dt_route_fn route, const void *route_args,
                         size_t route_args_size, int nextra, dagr_data_t *const *extra,
                         dagr_data_t ***buckets) {
    dagr_ctx_t *ctx = t->ctx;
    DAGR_CHECK(nout >= 1 && nextra >= 0, DAGR_ERR_INTERNAL, "shuffle: nout %d nextra %d", nout,
               nextra);
    DAGR_CHECK(sizeof(shuffle_arg_t) + route_args_size <= DAGR_MAX_ARGS, DAGR_ERR_ARG,
               "shuffle: the route's arguments take %zu bytes (at most %zu)", route_args_size,
               DAGR_MAX_ARGS - sizeof(shuffle_arg_t));
    dagr_data_t **b = NULL;
    dagr_access_t *acc = calloc((size_t)(1 + nextra + nout), sizeof *acc);
    char *args = malloc(sizeof(shuffle_arg_t) + route_args_size);
    dagr_status_t s = acc && args ? DAGR_OK : DAGR_ERR(DAGR_ERR_NOMEM, "out of memory");
    if (s == DAGR_OK) s = dt_buckets_new(ctx, t->nparts, nout, &b);
    if (s == DAGR_OK) {
        shuffle_arg_t a = {.route = route, .nout = nout, .nextra = nextra};
        memcpy(args, &a, sizeof a);
        if (route_args_size) memcpy(args + sizeof a, route_args, route_args_size);
    }
    for (int p = 0; p < t->nparts && s == DAGR_OK; p++) {
        acc[0] = (dagr_access_t){t->parts[p], DAGR_READ};
        for (int e = 0; e < nextra; e++)
            acc[1 + e] = (dagr_access_t){extra[e], DAGR_READ};
        for (int q = 0; q < nout; q++)
            acc[1 + nextra + q] =
                (dagr_access_t){b[(size_t)p * (size_t)nout + (size_t)q], DAGR_WRITE};
        dagr_task_opts_t o;
        dagr_task_opts_init(&o);
        o.rank = dt_part_rank(ctx, p);
        s = dagr_spawn(ctx, &shuffle_kernel, args, sizeof(shuffle_arg_t) + route_args_size,
                       1 + nextra + nout, acc, &o);
    }
    dt_free(acc);
    dt_free(args);
    if (s != DAGR_OK) {
        if (b) dt_buckets_free(t, nout, b);
        return s;
    }
    *buckets = b;
    return DAGR_OK;
}
