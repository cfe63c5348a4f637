/* Row-wise operations: filter, select, with_column, map_column, head. One task per
 * partition, on its rank: no data moves (head's small copies excepted). The expression is
 * parsed at the call, to refuse a bad one at once and learn the result's type, and again in
 * each task against its input partition's own schema (dtable_impl.h says why). */
#include "dtable_impl.h"

#include "expr.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Parses text against t's schema: DAGR_ERR_ARG with the parser's message when it fails. */
static dagr_status_t parse_at_call(const dagr_dtable_t *t, const char *what, const char *text,
                                   dt_type_t *type) {
    char err[384];
    dt_expr_t *e =
        dt_expr_parse(text, t->ncols, (const char *const *)t->names, t->types, err, sizeof err);
    if (!e) return DAGR_ERR(DAGR_ERR_ARG, "%s: %s", what, err);
    *type = dt_expr_type(e);
    dt_expr_free(e);
    return DAGR_OK;
}

/* In a task: the expression over partition p into *out. Fails the task on error. */
static bool eval_in_task(const dagr_task_view_t *task, const dt_part_t *p, const char *text,
                         dt_column_t *out) {
    char err[384];
    dt_type_t *types = malloc(((size_t)p->ncols + 1) * sizeof *types);
    if (!types) return dt_task_fail_code(task, -ENOMEM, 0, NULL), false;
    for (int j = 0; j < p->ncols; j++)
        types[j] = p->cols[j].type;
    dt_expr_t *e = dt_expr_parse(text, p->ncols, p->names, types, err, sizeof err);
    dt_free(types);
    if (!e) return dt_task_fail_code(task, -EINVAL, DAGR_ERR_FORMAT, err), false;
    int rc = dt_expr_eval(e, p->cols, p->nrows, out, err, sizeof err);
    dt_expr_free(e);
    if (rc) return dt_task_fail_code(task, rc, DAGR_ERR_INTERNAL, err), false;
    return true;
}

/* ---- filter ---- */

static dagr_task_result_t filter_task(const dagr_task_view_t *task) {
    dt_part_t p;
    if (!dt_task_view(task, 0, &p)) return DAGR_TASK_ERROR;
    const char *text = task->args;
    dagr_task_result_t res = DAGR_TASK_ERROR;
    dt_column_t pred = {0};
    int64_t *rows = NULL;
    if (!eval_in_task(task, &p, text, &pred)) goto out;
    rows = dt_alloc(((size_t)p.nrows + 1) * sizeof *rows);
    if (!rows) {
        dt_task_fail_code(task, -ENOMEM, 0, NULL);
        goto out;
    }
    int64_t n = dt_filter_select(&pred, rows);
    if (n == p.nrows) { /* every row: the partition as it is */
        if (task_resize_raw(task, 1, task->bytes[0]) == DAGR_OK) {
            memcpy(task->buf[1], task->buf[0], task->bytes[0]);
            res = DAGR_TASK_DONE;
        }
        goto out;
    }
    if (dt_task_write_rows(task, 1, p.ncols, p.names, p.cols, rows, n)) res = DAGR_TASK_DONE;
out:
    dt_column_free(&pred);
    dt_free(rows);
    dt_part_free(&p);
    return res;
}
static const dagr_kernel_t filter_kernel = {"dtable_filter", filter_task, NULL, {NULL}};

dagr_status_t dagr_dtable_filter(dagr_dtable_t *t, const char *pred, dagr_dtable_t **out) {
    DAGR_TRY(dt_check(t, "filter: the table"));
    DAGR_CHECK(pred && out, DAGR_ERR_ARG, "filter: pred or out is NULL");
    dt_type_t ty;
    DAGR_TRY(parse_at_call(t, "filter", pred, &ty));
    DAGR_CHECK(ty == DT_BOOL, DAGR_ERR_ARG, "filter: expression '%s' is %s, not bool", pred,
               dt_type_name(ty));
    dt_args_t *a = calloc(1, sizeof *a);
    DAGR_CHECK(a, DAGR_ERR_NOMEM, "out of memory");
    dt_args_str(a, pred);
    dagr_status_t s = dt_map_parts(t, &filter_kernel, a, t->ncols, t->names, t->types, out);
    dt_free(a);
    return s;
}

/* ---- select ---- */

static dagr_task_result_t select_task(const dagr_task_view_t *task) {
    dt_part_t p;
    if (!dt_task_view(task, 0, &p)) return DAGR_TASK_ERROR;
    int32_t n;
    memcpy(&n, task->args, sizeof n);
    const int32_t *idx = (const int32_t *)((const char *)task->args + sizeof n);
    dt_column_t *cols = malloc(((size_t)n + 1) * sizeof *cols);
    const char **names = malloc(((size_t)n + 1) * sizeof *names);
    dagr_task_result_t res = DAGR_TASK_ERROR;
    if (!cols || !names) {
        dt_task_fail_code(task, -ENOMEM, 0, NULL);
    } else {
        bool ok = true;
        for (int k = 0; k < n; k++) {
            int32_t j;
            memcpy(&j, idx + k, sizeof j);
            if (j >= p.ncols) { /* a partition of another schema: never from our tasks */
                dagr_task_fail(task, DAGR_ERR_FORMAT, "a partition has %d columns", p.ncols);
                ok = false;
                break;
            }
            cols[k] = p.cols[j]; /* views into the input: written out as they are */
            names[k] = p.names[j];
        }
        if (ok && dt_task_write(task, 1, n, names, cols)) res = DAGR_TASK_DONE;
    }
    dt_free(cols);
    dt_free(names);
    dt_part_free(&p);
    return res;
}
static const dagr_kernel_t select_kernel = {"dtable_select", select_task, NULL, {NULL}};

dagr_status_t dagr_dtable_select(dagr_dtable_t *t, int ncols, const char *const *names,
                                 dagr_dtable_t **out) {
    DAGR_TRY(dt_check(t, "select: the table"));
    DAGR_CHECK(names && out && ncols >= 1, DAGR_ERR_ARG,
               "select: names or out is NULL, or ncols (%d) < 1", ncols);
    int *idx = malloc((size_t)ncols * sizeof *idx);
    char **nm = malloc((size_t)ncols * sizeof *nm);
    dt_type_t *ty = malloc((size_t)ncols * sizeof *ty);
    dt_args_t *a = calloc(1, sizeof *a);
    dagr_status_t s = idx && nm && ty && a ? DAGR_OK : DAGR_ERR(DAGR_ERR_NOMEM, "out of memory");
    int32_t n = ncols;
    if (s == DAGR_OK) dt_args_put(a, &n, sizeof n);
    for (int k = 0; k < ncols && s == DAGR_OK; k++) {
        s = dt_find_col(t, names[k], "select", &idx[k]);
        for (int m = 0; m < k && s == DAGR_OK; m++)
            if (idx[m] == idx[k])
                s = DAGR_ERR(DAGR_ERR_ARG, "select: column '%s' is named twice", names[k]);
        if (s != DAGR_OK) break;
        int32_t j = idx[k];
        dt_args_put(a, &j, sizeof j);
        nm[k] = t->names[idx[k]];
        ty[k] = t->types[idx[k]];
    }
    if (s == DAGR_OK) s = dt_map_parts(t, &select_kernel, a, ncols, nm, ty, out);
    dt_free(idx);
    dt_free(nm);
    dt_free(ty);
    dt_free(a);
    return s;
}

/* ---- with_column and map_column: one new column ---- */

/* Writes p's columns with `col` at index at (replacing, or appended when at == p->ncols). */
static bool write_with(const dagr_task_view_t *task, const dt_part_t *p, int at, const char *name,
                       const dt_column_t *col) {
    int n = at < p->ncols ? p->ncols : p->ncols + 1;
    dt_column_t *cols = malloc((size_t)n * sizeof *cols);
    const char **names = malloc((size_t)n * sizeof *names);
    bool ok = false;
    if (!cols || !names) {
        dt_task_fail_code(task, -ENOMEM, 0, NULL);
    } else {
        for (int j = 0; j < p->ncols; j++) {
            cols[j] = p->cols[j];
            names[j] = p->names[j];
        }
        cols[at] = *col;
        names[at] = name;
        ok = dt_task_write(task, 1, n, names, cols);
    }
    dt_free(cols);
    dt_free(names);
    return ok;
}

typedef struct with_arg {
    int32_t at; /* then the name and the expression */
} with_arg_t;

static dagr_task_result_t with_task(const dagr_task_view_t *task) {
    dt_part_t p;
    if (!dt_task_view(task, 0, &p)) return DAGR_TASK_ERROR;
    dt_argr_t r;
    dt_argr_init(&r, task);
    with_arg_t a;
    dt_argr_get(&r, &a, sizeof a);
    const char *name = dt_argr_str(&r), *text = dt_argr_str(&r);
    dt_column_t c = {0};
    bool ok = eval_in_task(task, &p, text, &c) && write_with(task, &p, a.at, name, &c);
    dt_column_free(&c);
    dt_part_free(&p);
    return ok ? DAGR_TASK_DONE : DAGR_TASK_ERROR;
}
static const dagr_kernel_t with_kernel = {"dtable_with_column", with_task, NULL, {NULL}};

/* The schema of t with column `name` of type ty replaced or appended; *at its index. */
static dagr_status_t schema_with(const dagr_dtable_t *t, const char *name, dt_type_t ty,
                                 char ***names, dt_type_t **types, int *n, int *at) {
    int j = dagr_dtable_colindex(t, name);
    *at = j >= 0 ? j : t->ncols;
    *n = j >= 0 ? t->ncols : t->ncols + 1;
    *names = malloc((size_t)*n * sizeof **names);
    *types = malloc((size_t)*n * sizeof **types);
    if (!*names || !*types) {
        dt_free(*names);
        dt_free(*types);
        return DAGR_ERR(DAGR_ERR_NOMEM, "out of memory");
    }
    for (int k = 0; k < t->ncols; k++) {
        (*names)[k] = t->names[k];
        (*types)[k] = t->types[k];
    }
    (*names)[*at] = (char *)name;
    (*types)[*at] = ty;
    return DAGR_OK;
}

dagr_status_t dagr_dtable_with_column(dagr_dtable_t *t, const char *name, const char *expr,
                                      dagr_dtable_t **out) {
    DAGR_TRY(dt_check(t, "with_column: the table"));
    DAGR_CHECK(name && expr && out, DAGR_ERR_ARG, "with_column: name, expr or out is NULL");
    DAGR_CHECK(name[0], DAGR_ERR_ARG, "with_column: the name is empty");
    dt_type_t ty;
    DAGR_TRY(parse_at_call(t, "with_column", expr, &ty));
    char **names;
    dt_type_t *types;
    int n, at;
    DAGR_TRY(schema_with(t, name, ty, &names, &types, &n, &at));
    dt_args_t *a = calloc(1, sizeof *a);
    dagr_status_t s = a ? DAGR_OK : DAGR_ERR(DAGR_ERR_NOMEM, "out of memory");
    if (s == DAGR_OK) {
        with_arg_t wa = {.at = at};
        dt_args_put(a, &wa, sizeof wa);
        dt_args_str(a, name);
        dt_args_str(a, expr);
        s = dt_map_parts(t, &with_kernel, a, n, names, types, out);
    }
    dt_free(a);
    dt_free(names);
    dt_free(types);
    return s;
}

typedef struct map_arg {
    dagr_dtable_column_fn fn;
    void *user;
    int32_t at, type;
    int32_t index; /* the partition's number, for the callback */
} map_arg_t;

static dagr_task_result_t map_task(const dagr_task_view_t *task) {
    dt_part_t p;
    if (!dt_task_view(task, 0, &p)) return DAGR_TASK_ERROR;
    dt_argr_t r;
    dt_argr_init(&r, task);
    map_arg_t a;
    dt_argr_get(&r, &a, sizeof a);
    const char *name = dt_argr_str(&r);
    size_t n = (size_t)p.nrows;
    dt_column_t c = {.type = (dt_type_t)a.type, .n = p.nrows};
    c.values = dt_alloc((a.type == DT_BOOL ? n : n * 8) + 8);
    c.valid = dt_alloc((n + 7) / 8 + 1);
    dagr_coltype_t *types = malloc(((size_t)p.ncols + 1) * sizeof *types);
    const void **vals = malloc(((size_t)p.ncols + 1) * sizeof *vals);
    const uint8_t **valid = malloc(((size_t)p.ncols + 1) * sizeof *valid);
    const int64_t **offs = malloc(((size_t)p.ncols + 1) * sizeof *offs);
    bool ok = false;
    if (!c.values || !c.valid || !types || !vals || !valid || !offs) {
        dt_task_fail_code(task, -ENOMEM, 0, NULL);
        goto out;
    }
    memset(c.values, 0, a.type == DT_BOOL ? n : n * 8);
    memset(c.valid, 0xff, (n + 7) / 8 + 1);
    for (int j = 0; j < p.ncols; j++) {
        types[j] = (dagr_coltype_t)p.cols[j].type;
        vals[j] = p.cols[j].values;
        valid[j] = p.cols[j].valid;
        offs[j] = p.cols[j].offsets;
    }
    dagr_dtable_part_t part = {.index = a.index,
                               .nrows = p.nrows,
                               .ncols = p.ncols,
                               .names = p.names,
                               .types = types,
                               .values = vals,
                               .valid = valid,
                               .offsets = offs};
    dagr_status_t s = a.fn(&part, c.values, c.valid, a.user);
    if (s != DAGR_OK) {
        dagr_task_fail(task, s, "map_column '%s': the callback returned %s", name,
                       dagr_status_str(s));
        goto out;
    }
    /* Keep the bitmap only when a row is null; bools are 0 or 1. */
    bool any_null = false;
    for (size_t i = 0; i < n && !any_null; i++)
        any_null = !(c.valid[i >> 3] >> (i & 7) & 1);
    if (!any_null) {
        dt_free(c.valid);
        c.valid = NULL;
    }
    if (a.type == DT_BOOL)
        for (size_t i = 0; i < n; i++)
            ((uint8_t *)c.values)[i] = ((uint8_t *)c.values)[i] != 0;
    ok = write_with(task, &p, a.at, name, &c);
out:
    dt_column_free(&c);
    dt_free(types);
    dt_free(vals);
    dt_free(valid);
    dt_free(offs);
    dt_part_free(&p);
    return ok ? DAGR_TASK_DONE : DAGR_TASK_ERROR;
}
static const dagr_kernel_t map_kernel = {"dtable_map_column", map_task, NULL, {NULL}};

dagr_status_t dagr_dtable_map_column(dagr_dtable_t *t, const char *name, dagr_coltype_t type,
                                     dagr_dtable_column_fn fn, void *user, dagr_dtable_t **out) {
    DAGR_TRY(dt_check(t, "map_column: the table"));
    DAGR_CHECK(name && fn && out, DAGR_ERR_ARG, "map_column: name, fn or out is NULL");
    DAGR_CHECK(name[0], DAGR_ERR_ARG, "map_column: the name is empty");
    DAGR_CHECK(type == DAGR_COL_INT64 || type == DAGR_COL_FLOAT64 || type == DAGR_COL_BOOL ||
                   type == DAGR_COL_TIMESTAMP,
               DAGR_ERR_ARG,
               "map_column: type %d is not int64, float64, bool or timestamp (string columns "
               "come from with_column's expressions)",
               (int)type);
    char **names;
    dt_type_t *types;
    int n, at;
    DAGR_TRY(schema_with(t, name, (dt_type_t)type, &names, &types, &n, &at));
    dagr_dtable_t *r = NULL;
    dagr_status_t s = dt_table_new(t->ctx, n, (const char *const *)names, types, t->nparts, &r);
    dt_args_t *a = calloc(1, sizeof *a);
    if (s == DAGR_OK && !a) s = DAGR_ERR(DAGR_ERR_NOMEM, "out of memory");
    for (int p = 0; p < t->nparts && s == DAGR_OK; p++) {
        a->n = 0;
        map_arg_t ma = {.fn = fn, .user = user, .at = at, .type = (int32_t)type, .index = p};
        dt_args_put(a, &ma, sizeof ma);
        dt_args_str(a, name);
        if (a->overflow) {
            s = DAGR_ERR(DAGR_ERR_ARG, "map_column: the name is too long");
            break;
        }
        dagr_access_t acc[2] = {{t->parts[p], DAGR_READ}, {r->parts[p], DAGR_WRITE}};
        dagr_task_opts_t o;
        dagr_task_opts_init(&o);
        o.rank = dt_part_rank(t->ctx, p);
        s = dagr_spawn(t->ctx, &map_kernel, a->buf, a->n, 2, acc, &o);
    }
    dt_free(a);
    dt_free(names);
    dt_free(types);
    if (s != DAGR_OK) {
        dagr_dtable_destroy(&r);
        return s;
    }
    *out = r;
    return DAGR_OK;
}

/* ---- head ---- */

/* Each partition's first k rows into a small handle; then one task on rank 0 takes the
 * first k of their concatenation. */
static dagr_task_result_t head_task(const dagr_task_view_t *task) {
    int64_t k;
    memcpy(&k, task->args, sizeof k);
    int nin = task->nbuf - 1;
    dt_part_t *ps = calloc((size_t)nin, sizeof *ps);
    const dt_column_t **src = calloc((size_t)nin, sizeof *src);
    dt_column_t *cols = NULL;
    int nv = 0;
    bool ok = ps && src;
    if (!ok) dt_task_fail_code(task, -ENOMEM, 0, NULL);
    for (int i = 0; ok && i < nin; i++)
        ok = dt_task_view(task, i, &ps[i]), nv += ok;
    int nc = ok && nin ? ps[0].ncols : 0;
    if (ok) {
        cols = calloc((size_t)nc + 1, sizeof *cols);
        if (!cols) ok = false, dt_task_fail_code(task, -ENOMEM, 0, NULL);
    }
    for (int j = 0; ok && j < nc; j++) {
        int m = 0;
        for (int i = 0; i < nin; i++)
            if (ps[i].nrows > 0 || i == 0) src[m++] = &ps[i].cols[j];
        dt_column_t all;
        int rc = dt_column_concat(src, m, ps[0].cols[j].type, &all);
        if (rc == 0 && all.n > k) {
            int64_t *rows = dt_alloc((size_t)k * sizeof *rows + 8);
            rc = rows ? 0 : -ENOMEM;
            for (int64_t i = 0; rows && i < k; i++)
                rows[i] = i;
            if (rc == 0) rc = dt_column_take(&all, rows, k, &cols[j]);
            dt_free(rows);
            dt_column_free(&all);
        } else if (rc == 0) {
            cols[j] = all;
        }
        if (rc) ok = false, dt_task_fail_code(task, rc, DAGR_ERR_FORMAT, "partitions differ");
    }
    if (ok) ok = dt_task_write(task, nin, nc, ps[0].names, cols);
    for (int j = 0; cols && j < nc; j++)
        dt_column_free(&cols[j]);
    dt_free(cols);
    for (int i = 0; i < nv; i++)
        dt_part_free(&ps[i]);
    dt_free(ps);
    dt_free(src);
    return ok ? DAGR_TASK_DONE : DAGR_TASK_ERROR;
}
static const dagr_kernel_t head_kernel = {"dtable_head", head_task, NULL, {NULL}};

dagr_status_t dagr_dtable_head(dagr_dtable_t *t, int64_t k, dagr_dtable_t **out) {
    DAGR_TRY(dt_check(t, "head: the table"));
    DAGR_CHECK(out && k >= 0, DAGR_ERR_ARG, "head: out is NULL or k (%lld) < 0", (long long)k);
    dagr_ctx_t *ctx = t->ctx;
    dagr_dtable_t *firsts = NULL, *r = NULL;
    dagr_access_t *acc = calloc((size_t)t->nparts + 1, sizeof *acc);
    DAGR_CHECK(acc, DAGR_ERR_NOMEM, "out of memory");
    dagr_status_t s =
        dt_table_new(ctx, t->ncols, (const char *const *)t->names, t->types, t->nparts, &firsts);
    if (s == DAGR_OK)
        s = dt_table_new(ctx, t->ncols, (const char *const *)t->names, t->types, 1, &r);
    dagr_task_opts_t o;
    dagr_task_opts_init(&o);
    for (int p = 0; p < t->nparts && s == DAGR_OK; p++) {
        acc[0] = (dagr_access_t){t->parts[p], DAGR_READ};
        acc[1] = (dagr_access_t){firsts->parts[p], DAGR_WRITE};
        o.rank = dt_part_rank(ctx, p);
        s = dagr_spawn(ctx, &head_kernel, &k, sizeof k, 2, acc, &o);
    }
    for (int p = 0; p < t->nparts && s == DAGR_OK; p++)
        acc[p] = (dagr_access_t){firsts->parts[p], DAGR_READ};
    if (s == DAGR_OK) {
        acc[t->nparts] = (dagr_access_t){r->parts[0], DAGR_WRITE};
        o.rank = 0;
        s = dagr_spawn(ctx, &head_kernel, &k, sizeof k, t->nparts + 1, acc, &o);
    }
    dt_free(acc);
    dagr_dtable_destroy(&firsts);
    if (s != DAGR_OK) {
        dagr_dtable_destroy(&r);
        return s;
    }
    *out = r;
    return DAGR_OK;
}
