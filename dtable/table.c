/* The table itself (dtable_impl.h): making and destroying tables, the schema accessors,
 * the task helpers every operation uses, and argument blocks. */
#include "dtable_impl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *dagr_coltype_name(dagr_coltype_t t) {
    return (unsigned)t <= DAGR_COL_TIMESTAMP ? dt_type_name((dt_type_t)t) : "?";
}

int dt_part_rank(dagr_ctx_t *ctx, int p) {
    return p % dagr_size(ctx);
}

int dt_default_parts(dagr_ctx_t *ctx) {
    int n = dagr_size(ctx) * dagr_threads(ctx);
    return n > 0 ? n : 1;
}

static void table_free(dagr_dtable_t *t) {
    if (!t) return;
    for (int j = 0; t->names && j < t->ncols; j++)
        dt_free(t->names[j]);
    dt_free(t->names);
    dt_free(t->types);
    dt_free(t->parts);
    dt_free(t);
}

dagr_status_t dt_table_new(dagr_ctx_t *ctx, int ncols, const char *const *names,
                           const dt_type_t *types, int nparts, dagr_dtable_t **out) {
    dagr_dtable_t *t = calloc(1, sizeof *t);
    if (!t) return DAGR_ERR(DAGR_ERR_NOMEM, "out of memory for a table");
    t->ctx = ctx;
    t->ncols = ncols;
    t->nparts = nparts;
    t->known_rows = -1;
    t->names = calloc(ncols ? (size_t)ncols : 1, sizeof *t->names);
    t->types = calloc(ncols ? (size_t)ncols : 1, sizeof *t->types);
    t->parts = calloc(nparts ? (size_t)nparts : 1, sizeof *t->parts);
    if (!t->names || !t->types || !t->parts) {
        table_free(t);
        return DAGR_ERR(DAGR_ERR_NOMEM, "out of memory for a table");
    }
    for (int j = 0; j < ncols; j++) {
        t->names[j] = strdup(names[j]);
        t->types[j] = types[j];
        if (!t->names[j]) {
            table_free(t);
            return DAGR_ERR(DAGR_ERR_NOMEM, "out of memory for a table");
        }
    }
    for (int p = 0; p < nparts; p++) {
        dagr_status_t s = dagr_data_create_dynamic(ctx, dt_part_rank(ctx, p), &t->parts[p]);
        if (s != DAGR_OK) {
            for (int k = 0; k < p; k++)
                dagr_data_destroy(&t->parts[k]);
            table_free(t);
            return s;
        }
    }
    *out = t;
    return DAGR_OK;
}

dagr_status_t dagr_dtable_destroy(dagr_dtable_t **tp) {
    if (!tp || !*tp) return DAGR_OK;
    dagr_dtable_t *t = *tp;
    for (int p = 0; p < t->nparts; p++)
        dagr_data_destroy(&t->parts[p]);
    table_free(t);
    *tp = NULL;
    return DAGR_OK;
}

int dagr_dtable_ncols(const dagr_dtable_t *t) {
    return t ? t->ncols : 0;
}
const char *dagr_dtable_colname(const dagr_dtable_t *t, int j) {
    return t && j >= 0 && j < t->ncols ? t->names[j] : NULL;
}
dagr_coltype_t dagr_dtable_coltype(const dagr_dtable_t *t, int j) {
    return t && j >= 0 && j < t->ncols ? (dagr_coltype_t)t->types[j] : (dagr_coltype_t)-1;
}
int dagr_dtable_colindex(const dagr_dtable_t *t, const char *name) {
    if (!t || !name) return -1;
    for (int j = 0; j < t->ncols; j++)
        if (strcmp(t->names[j], name) == 0) return j;
    return -1;
}
int dagr_dtable_npartitions(const dagr_dtable_t *t) {
    return t ? t->nparts : 0;
}

dagr_status_t dt_check(const dagr_dtable_t *t, const char *what) {
    DAGR_CHECK(t, DAGR_ERR_ARG, "%s is NULL", what);
    return ctx_usable(t->ctx);
}

dagr_status_t dt_find_col(const dagr_dtable_t *t, const char *name, const char *what, int *j) {
    DAGR_CHECK(name, DAGR_ERR_ARG, "%s: a column name is NULL", what);
    int k = dagr_dtable_colindex(t, name);
    if (k >= 0) {
        *j = k;
        return DAGR_OK;
    }
    char list[256];
    size_t at = 0;
    list[0] = 0;
    for (int c = 0; c < t->ncols && at < sizeof list; c++) {
        int w = snprintf(list + at, sizeof list - at, "%s%s", c ? ", " : "", t->names[c]);
        at += w > 0 ? (size_t)w : 0;
    }
    return DAGR_ERR(DAGR_ERR_ARG, "%s: unknown column '%s' (columns: %s)", what, name, list);
}

dagr_status_t dt_agree(dagr_ctx_t *ctx, dagr_status_t mine) {
    char msg[DAGR_ERRMSG_MAX];
    snprintf(msg, sizeof msg, "%s", mine == DAGR_OK ? "" : dagr_last_error());
    return ctx_sync(ctx, mine, msg);
}

/* ---- task helpers ---- */

/* dtable's big buffers come from where the library keeps its data (column.h, dt_mem). */
__attribute__((constructor)) static void use_data_pool(void) {
    dt_mem = (dt_allocator_t){data_buf_alloc, data_buf_realloc, data_buf_free};
}

bool dt_task_view(const dagr_task_view_t *task, int i, dt_part_t *p) {
    char err[160];
    int rc = dt_part_view(task->buf[i], task->bytes[i], p, err, sizeof err);
    if (rc == 0) return true;
    if (rc == -2)
        dagr_task_fail(task, DAGR_ERR_NOMEM, "out of memory reading a partition");
    else
        dagr_task_fail(task, DAGR_ERR_FORMAT, "input %d: %s", i, err);
    return false;
}

bool dt_task_write(const dagr_task_view_t *task, int i, int ncols, const char *const *names,
                   const dt_column_t *cols) {
    size_t bytes = dt_part_size(ncols, names, cols);
    if (task_resize_raw(task, i, bytes) != DAGR_OK) return false; /* it failed the task */
    dt_part_write(task->buf[i], ncols, names, cols);
    return true;
}

bool dt_task_write_rows(const dagr_task_view_t *task, int i, int ncols, const char *const *names,
                        const dt_column_t *cols, const int64_t *rows, int64_t n) {
    bool *nulls = malloc(((size_t)ncols + 1) * sizeof *nulls);
    size_t *sbytes = malloc(((size_t)ncols + 1) * sizeof *sbytes);
    bool ok = nulls && sbytes;
    if (!ok) dt_task_fail_code(task, -ENOMEM, 0, NULL);
    if (ok) {
        size_t bytes = dt_part_size_rows(ncols, names, cols, rows, n, nulls, sbytes);
        ok = task_resize_raw(task, i, bytes) == DAGR_OK; /* it failed the task otherwise */
        if (ok) dt_part_write_rows(task->buf[i], ncols, names, cols, rows, n, nulls, sbytes);
    }
    dt_free(nulls);
    dt_free(sbytes);
    return ok;
}

bool dt_task_place(const dagr_task_view_t *task, int i, int ncols, const char *const *names,
                   dt_column_t *cols, int64_t n, const bool *nulls, const size_t *sbytes) {
    size_t bytes = dt_part_size_placed(ncols, names, cols, n, nulls, sbytes);
    if (task_resize_raw(task, i, bytes) != DAGR_OK) return false; /* it failed the task */
    dt_part_place(task->buf[i], ncols, names, cols, n, nulls, sbytes);
    return true;
}

dagr_task_result_t dt_task_fail_code(const dagr_task_view_t *task, int code, dagr_status_t status,
                                     const char *msg) {
    if (code == -ENOMEM)
        dagr_task_fail(task, DAGR_ERR_NOMEM, "out of memory");
    else
        dagr_task_fail(task, status, "%s", msg && *msg ? msg : "failed");
    return DAGR_TASK_ERROR;
}

/* ---- argument blocks ---- */

void dt_args_put(dt_args_t *a, const void *p, size_t n) {
    if (a->overflow || n > sizeof a->buf - a->n) {
        a->overflow = true;
        return;
    }
    memcpy(a->buf + a->n, p, n);
    a->n += n;
}

void dt_args_str(dt_args_t *a, const char *s) {
    dt_args_put(a, s, strlen(s) + 1);
}

void dt_argr_init(dt_argr_t *r, const dagr_task_view_t *task) {
    r->p = task->args;
    r->end = r->p + task->args_size;
}

void dt_argr_get(dt_argr_t *r, void *p, size_t n) {
    memcpy(p, r->p, n);
    r->p += n;
}

const char *dt_argr_str(dt_argr_t *r) {
    const char *s = r->p;
    r->p += strlen(s) + 1;
    return s;
}

/* ---- schema in argument blocks ---- */

dagr_status_t dt_args_schema(dt_args_t *a, int ncols, char *const *names, const dt_type_t *types) {
    int32_t n = ncols;
    dt_args_put(a, &n, sizeof n);
    for (int j = 0; j < ncols; j++) {
        int32_t ty = types[j];
        dt_args_put(a, &ty, sizeof ty);
    }
    for (int j = 0; j < ncols; j++)
        dt_args_str(a, names[j]);
    DAGR_CHECK(!a->overflow, DAGR_ERR_ARG,
               "the table's %d column names take more than a task's %d argument bytes", ncols,
               DAGR_MAX_ARGS);
    return DAGR_OK;
}

bool dt_argr_schema(dt_argr_t *r, int *ncols, const char ***names, dt_type_t **types) {
    int32_t n;
    dt_argr_get(r, &n, sizeof n);
    *ncols = n;
    *names = malloc(((size_t)n + 1) * sizeof **names);
    *types = malloc(((size_t)n + 1) * sizeof **types);
    if (!*names || !*types) {
        dt_free(*names);
        dt_free(*types);
        return false;
    }
    for (int j = 0; j < n; j++) {
        int32_t ty;
        dt_argr_get(r, &ty, sizeof ty);
        (*types)[j] = (dt_type_t)ty;
    }
    for (int j = 0; j < n; j++)
        (*names)[j] = dt_argr_str(r);
    return true;
}

/* Writes an empty partition of the schema in its arguments. */
static dagr_task_result_t empty_task(const dagr_task_view_t *task) {
    dt_argr_t r;
    dt_argr_init(&r, task);
    int nc;
    const char **names;
    dt_type_t *types;
    if (!dt_argr_schema(&r, &nc, &names, &types)) return dt_task_fail_code(task, -ENOMEM, 0, NULL);
    dt_column_t *cols = calloc((size_t)nc + 1, sizeof *cols);
    bool ok = cols != NULL;
    for (int j = 0; ok && j < nc; j++)
        cols[j].type = types[j];
    if (ok)
        ok = dt_task_write(task, 0, nc, names, cols);
    else
        dt_task_fail_code(task, -ENOMEM, 0, NULL);
    dt_free(cols);
    dt_free(names);
    dt_free(types);
    return ok ? DAGR_TASK_DONE : DAGR_TASK_ERROR;
}

static const dagr_kernel_t empty_kernel = {"dtable_empty", empty_task, NULL, {NULL}};

dagr_status_t dt_write_empty(dagr_dtable_t *t, int p) {
    dt_args_t *a = calloc(1, sizeof *a);
    DAGR_CHECK(a, DAGR_ERR_NOMEM, "out of memory");
    dagr_status_t s = dt_args_schema(a, t->ncols, t->names, t->types);
    if (s == DAGR_OK) {
        dagr_access_t acc = {t->parts[p], DAGR_WRITE};
        s = dagr_spawn(t->ctx, &empty_kernel, a->buf, a->n, 1, &acc, NULL);
    }
    dt_free(a);
    return s;
}

dagr_status_t dt_map_parts(dagr_dtable_t *t, const dagr_kernel_t *k, const dt_args_t *a, int ncols,
                           char *const *names, const dt_type_t *types, dagr_dtable_t **out) {
    DAGR_CHECK(!a->overflow, DAGR_ERR_ARG,
               "%s: the arguments (expression, names) take more than %d bytes", k->name,
               DAGR_MAX_ARGS);
    dagr_dtable_t *r = NULL;
    DAGR_TRY(dt_table_new(t->ctx, ncols, (const char *const *)names, types, t->nparts, &r));
    dagr_status_t s = DAGR_OK;
    for (int p = 0; p < t->nparts && s == DAGR_OK; p++) {
        dagr_access_t acc[2] = {{t->parts[p], DAGR_READ}, {r->parts[p], DAGR_WRITE}};
        dagr_task_opts_t o;
        dagr_task_opts_init(&o);
        o.rank = dt_part_rank(t->ctx, p);
        s = dagr_spawn(t->ctx, k, a->buf, a->n, 2, acc, &o);
    }
    if (s != DAGR_OK) {
        dagr_dtable_destroy(&r);
        return s;
    }
    *out = r;
    return DAGR_OK;
}
