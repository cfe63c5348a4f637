/* Tables in HDF5 files (dagr_dtable_save, dagr_dtable_load), through parallel HDF5 as io/
 * uses it (io_impl.h: one lock around HDF5, MPI-IO file access, errors as statuses).
 *
 * The layout of a saved table in group G (which save replaces when it exists):
 *   G                  attribute "columns": the column names in order (variable-length UTF-8)
 *   G/<name>           one 1-D dataset per column, nrows long: int64 -> int64, float64 ->
 *                      float64 (IEEE double), bool -> uint8 (0/1), timestamp -> int64
 *                      microseconds with attribute "unit" = "us since 1970-01-01T00:00:00Z",
 *                      string -> variable-length UTF-8 strings (H5T_C_S1, H5T_VARIABLE,
 *                      H5T_CSET_UTF8); a null row holds 0 / 0.0 / false / ""
 *   G/<name>.valid     uint8, 1 where the row is not null; only for columns holding nulls
 * Column names with '/' cannot be dataset names and are refused, as is a column named
 * "<c>.valid" beside a column c that holds nulls.
 *
 * save: counts the rows of every partition (a wait), gathers each rank's rows into column
 * arrays of its own (a task per partition, on its rank, copying it column by column), then
 * opens the file collectively through MPI-IO
 * and creates the group and datasets (collective metadata calls). Fixed-width columns are
 * written with one collective H5Dwrite per dataset, each rank selecting the union of its
 * partitions' row ranges. HDF5 1.10 refuses to write variable-length data through MPI-IO
 * ("Parallel IO does not support writing VL ... datatypes yet"), so the string columns are
 * written after the parallel file is closed, rank after rank in turn, each opening the file
 * alone (HDF5's default POSIX driver) and writing its rows at their global offsets: the
 * string data pass through the file system serially, everything else in parallel.
 *
 * load: rank 0's view of the group is everyone's (metadata reads are collective); the rows
 * are cut into dt_default_parts even partitions, each rank reads the row ranges of its own
 * partitions (fixed-width columns collectively, strings independently: reading
 * variable-length data through MPI-IO works), and tasks pinned to this rank build the
 * partitions from this call's memory (it waits before freeing it). */
#include "dtable_impl.h"

#include "../io/io_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* to_darray.c: every partition's row count on every rank (waits). */

#define UNIT_TEXT "us since 1970-01-01T00:00:00Z"

/* ---- HDF5 helpers (between h5_enter and h5_leave) ---- */

static hid_t vlen_utf8(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t >= 0 && (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0)) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

static hid_t mem_type(dt_type_t ty) {
    switch (ty) {
    case DT_FLOAT64:
        return H5T_NATIVE_DOUBLE;
    case DT_BOOL:
        return H5T_NATIVE_UINT8;
    default:
        return H5T_NATIVE_INT64;
    }
}

static hid_t file_type(dt_type_t ty) {
    switch (ty) {
    case DT_FLOAT64:
        return H5T_IEEE_F64LE;
    case DT_BOOL:
        return H5T_STD_U8LE;
    default:
        return H5T_STD_I64LE;
    }
}

/* Whether every component of name exists (1), one does not (0), or HDF5 failed (-1). */
static int path_exists(hid_t loc, const char *name) {
    char *p = strdup(name);
    if (!p) return -1;
    int r = 1;
    for (char *c = p + 1; r == 1; c++) {
        char *slash = strchr(c, '/');
        if (slash) *slash = '\0';
        htri_t e = H5Lexists(loc, p, H5P_DEFAULT);
        r = e < 0 ? -1 : e > 0;
        if (!slash) break;
        *slash = '/';
        c = slash;
    }
    dt_free(p);
    return r;
}

/* The selection of rows [start[p], start[p] + cnt[p]) for this rank's partitions p, on a
 * 1-D file space; *mspace: a memory space of their total (selecting none when 0). */
static herr_t select_rows(hid_t fspace, const dagr_dtable_t *t, const int64_t *start,
                          const int64_t *cnt, int64_t local, hid_t *mspace) {
    herr_t e = H5Sselect_none(fspace);
    int rank = dagr_rank(t->ctx), size = dagr_size(t->ctx);
    for (int p = rank; e >= 0 && p < t->nparts; p += size) {
        if (cnt[p] == 0) continue;
        hsize_t s0 = (hsize_t)start[p], n = (hsize_t)cnt[p];
        e = H5Sselect_hyperslab(fspace, H5S_SELECT_OR, &s0, NULL, &n, NULL);
    }
    hsize_t d = local ? (hsize_t)local : 1;
    *mspace = H5Screate_simple(1, &d, NULL);
    if (*mspace < 0) return -1;
    if (local == 0) e = e < 0 ? e : H5Sselect_none(*mspace);
    return e;
}

/* ---- save ---- */

/* This rank's rows of one column, concatenated in partition order. */
typedef struct local_col {
    void *values;   /* int64 / double / uint8 rows; strings: char *[local], into strs */
    uint8_t *valid; /* 1 / 0 per row (freed before writing when the column has no null) */
} local_col_t;

static void local_free(local_col_t *lc, int ncols) {
    for (int j = 0; lc && j < ncols; j++) {
        dt_free(lc[j].values);
        dt_free(lc[j].valid);
    }
    dt_free(lc);
}

/* A gather task's arguments: pointers into the memory of the rank that runs it (every rank
 * inserts every task with its own, as the graph is the same everywhere). */
typedef struct gather_arg {
    const dagr_dtable_t *t;
    local_col_t *lc;
    char **strs;       /* this partition's string bytes, one block per string column */
    uint8_t *has_null; /* this partition's: per column */
    int64_t at;        /* its first row among this rank's */
    int p;
} gather_arg_t;

/* Copies partition p's rows into this rank's column arrays at its rows (string bytes into a
 * block of its own, NUL-terminated, which the char * rows point into): the rank's part of
 * the table is copied once, column by column, not as whole partitions first. */
static dagr_task_result_t gather_task(const dagr_task_view_t *task) {
    gather_arg_t a;
    memcpy(&a, task->args, sizeof a);
    const dagr_dtable_t *t = a.t;
    dt_part_t v;
    if (!dt_task_view(task, 0, &v)) return DAGR_TASK_ERROR;
    bool ok = v.ncols == t->ncols;
    if (!ok)
        dagr_task_fail(task, DAGR_ERR_FORMAT, "save: partition %d has %d columns, the table %d",
                       a.p, v.ncols, t->ncols);
    for (int j = 0; ok && j < t->ncols; j++) {
        const dt_column_t *c = &v.cols[j];
        dt_type_t ty = t->types[j];
        if (c->type != ty) {
            dagr_task_fail(task, DAGR_ERR_FORMAT,
                           "save: column '%s' is %s in partition %d, %s in the table", t->names[j],
                           dt_type_name(c->type), a.p, dt_type_name(ty));
            ok = false;
            break;
        }
        int64_t n = v.nrows;
        local_col_t *lc = &a.lc[j];
        if (ty == DT_STRING) {
            char *sb = dt_alloc(c->nbytes + (size_t)n + 1);
            if (!sb) {
                dt_task_fail_code(task, -ENOMEM, 0, NULL);
                ok = false;
                break;
            }
            a.strs[j] = sb;
            char **ptr = (char **)lc->values + a.at;
            size_t sat = 0;
            for (int64_t i = 0; i < n; i++) {
                size_t l = (size_t)(c->offsets[i + 1] - c->offsets[i]);
                ptr[i] = sb + sat;
                memcpy(sb + sat, (const char *)c->values + c->offsets[i], l);
                sb[sat + l] = '\0';
                sat += l + 1;
            }
        } else if (n) {
            size_t es = ty == DT_BOOL ? 1 : 8;
            memcpy((char *)lc->values + (size_t)a.at * es, c->values, (size_t)n * es);
        }
        uint8_t any = 0;
        for (int64_t i = 0; i < n; i++) {
            uint8_t b = dt_valid(c, i);
            lc->valid[a.at + i] = b;
            any |= !b;
        }
        a.has_null[j] = any;
    }
    dt_part_free(&v);
    return ok ? DAGR_TASK_DONE : DAGR_TASK_ERROR;
}
static const dagr_kernel_t gather_kernel = {"dtable_save_gather", gather_task, NULL, {NULL}};

/* The names of the table's columns checked for use as dataset names. */
static dagr_status_t check_names(const dagr_dtable_t *t, const int *has_null) {
    for (int j = 0; j < t->ncols; j++) {
        const char *n = t->names[j];
        DAGR_CHECK(*n && !strchr(n, '/') && strcmp(n, ".") != 0, DAGR_ERR_ARG,
                   "save: column name '%s' cannot name an HDF5 dataset (empty, '.' or holding "
                   "'/')",
                   n);
        for (int k = 0; has_null && k < t->ncols; k++) {
            size_t l = strlen(t->names[k]);
            if (has_null[k] && strncmp(n, t->names[k], l) == 0 && strcmp(n + l, ".valid") == 0)
                return DAGR_ERR(DAGR_ERR_ARG,
                                "save: column '%s' would clash with the validity dataset of "
                                "column '%s' (which holds nulls)",
                                n, t->names[k]);
        }
    }
    return DAGR_OK;
}

/* Collective HDF5 (MPI-IO, under h5_enter): replaces the group, creates every dataset, and
 * writes the fixed-width ones. */
static dagr_status_t save_parallel(const dagr_dtable_t *t, hid_t file, const char *path,
                                   const char *group, const int64_t *start, const int64_t *cnt,
                                   int64_t total, int64_t local, const int *has_null,
                                   const local_col_t *lc) {
    dagr_status_t s = DAGR_OK;
    hid_t g = -1, lcpl = -1, space = -1, dxpl = -1, str = -1;
    int ex = path_exists(file, group);
    if (ex < 0)
        return h5_error(DAGR_ERR_IO, "save: cannot look for group '%s' in '%s'", group, path);
    if (ex == 1) {
        H5O_info_t info;
        if (H5Oget_info_by_name2(file, group, &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0)
            return h5_error(DAGR_ERR_IO, "save: cannot look at '%s' in '%s'", group, path);
        if (info.type != H5O_TYPE_GROUP)
            return DAGR_ERR(DAGR_ERR_ARG,
                            "save: '%s' in '%s' exists and is not a group (save replaces a "
                            "group only)",
                            group, path);
        if (H5Ldelete(file, group, H5P_DEFAULT) < 0)
            return h5_error(DAGR_ERR_IO, "save: cannot remove the old group '%s' of '%s'", group,
                            path);
    }
    lcpl = H5Pcreate(H5P_LINK_CREATE);
    if (lcpl < 0 || H5Pset_create_intermediate_group(lcpl, 1) < 0 ||
        (g = H5Gcreate2(file, group, lcpl, H5P_DEFAULT, H5P_DEFAULT)) < 0) {
        s = h5_error(DAGR_ERR_IO, "save: cannot create group '%s' in '%s'", group, path);
        goto out;
    }
    str = vlen_utf8();
    hsize_t nc = (hsize_t)t->ncols, n = (hsize_t)total;
    hid_t aspace = H5Screate_simple(1, &nc, NULL);
    hid_t attr = aspace >= 0 && str >= 0
                     ? H5Acreate2(g, "columns", str, aspace, H5P_DEFAULT, H5P_DEFAULT)
                     : -1;
    herr_t e = attr >= 0 ? H5Awrite(attr, str, t->names) : -1;
    if (attr >= 0) H5Aclose(attr);
    if (aspace >= 0) H5Sclose(aspace);
    if (e < 0) {
        s = h5_error(DAGR_ERR_IO, "save: cannot write the column names of '%s' in '%s'", group,
                     path);
        goto out;
    }
    space = H5Screate_simple(1, &n, NULL);
    dxpl = H5Pcreate(H5P_DATASET_XFER);
    if (space < 0 || dxpl < 0 || H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE) < 0) {
        s = h5_error(DAGR_ERR_IO, "save: cannot set up the writes to '%s'", path);
        goto out;
    }
    for (int j = 0; j < t->ncols && s == DAGR_OK; j++) {
        for (int v = 0; v < 2 && s == DAGR_OK; v++) {
            if (v == 1 && !has_null[j]) break;
            char name[1024];
            snprintf(name, sizeof name, "%s%s", t->names[j], v ? ".valid" : "");
            dt_type_t ty = v ? DT_BOOL : t->types[j];
            hid_t d = H5Dcreate2(g, name, ty == DT_STRING ? str : file_type(ty), space, H5P_DEFAULT,
                                 H5P_DEFAULT, H5P_DEFAULT);
            if (d < 0) {
                s = h5_error(DAGR_ERR_IO, "save: cannot create dataset '%s/%s' in '%s'", group,
                             name, path);
                break;
            }
            e = 0;
            if (ty == DT_TIMESTAMP) {
                hid_t ut = H5Tcopy(H5T_C_S1), as = H5Screate(H5S_SCALAR);
                e = ut >= 0 && as >= 0 ? H5Tset_size(ut, sizeof UNIT_TEXT - 1) : -1;
                hid_t a = e >= 0 ? H5Acreate2(d, "unit", ut, as, H5P_DEFAULT, H5P_DEFAULT) : -1;
                e = a >= 0 ? H5Awrite(a, ut, UNIT_TEXT) : -1;
                if (a >= 0) H5Aclose(a);
                if (as >= 0) H5Sclose(as);
                if (ut >= 0) H5Tclose(ut);
            }
            if (e >= 0 && ty != DT_STRING && total > 0) { /* nothing to write when empty */
                hid_t fs = H5Dget_space(d), ms = -1;
                e = fs >= 0 ? select_rows(fs, t, start, cnt, local, &ms) : -1;
                const void *buf = v ? (const void *)lc[j].valid : lc[j].values;
                if (e >= 0) e = H5Dwrite(d, mem_type(ty), ms, fs, dxpl, buf);
                if (ms >= 0) H5Sclose(ms);
                if (fs >= 0) H5Sclose(fs);
            }
            if (e < 0)
                s = h5_error(DAGR_ERR_IO, "save: cannot write dataset '%s/%s' in '%s'", group, name,
                             path);
            if (H5Dclose(d) < 0 && s == DAGR_OK)
                s = h5_error(DAGR_ERR_IO, "save: cannot close dataset '%s/%s' in '%s'", group, name,
                             path);
        }
    }
out:
    if (str >= 0) H5Tclose(str);
    if (dxpl >= 0) H5Pclose(dxpl);
    if (space >= 0) H5Sclose(space);
    if (lcpl >= 0) H5Pclose(lcpl);
    if (g >= 0) H5Gclose(g);
    return s;
}

/* This rank alone (the POSIX driver, under h5_enter): its rows of the string columns. */
static dagr_status_t save_strings(const dagr_dtable_t *t, const char *path, const char *group,
                                  const int64_t *start, const int64_t *cnt, int64_t local,
                                  const local_col_t *lc) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0) return h5_error(DAGR_ERR_IO, "save: cannot open '%s' to write strings", path);
    dagr_status_t s = DAGR_OK;
    hid_t g = H5Gopen2(f, group, H5P_DEFAULT), str = vlen_utf8();
    if (g < 0 || str < 0)
        s = h5_error(DAGR_ERR_IO, "save: cannot open group '%s' of '%s'", group, path);
    for (int j = 0; j < t->ncols && s == DAGR_OK; j++) {
        if (t->types[j] != DT_STRING) continue;
        hid_t d = H5Dopen2(g, t->names[j], H5P_DEFAULT);
        hid_t fs = d >= 0 ? H5Dget_space(d) : -1, ms = -1;
        herr_t e = fs >= 0 ? select_rows(fs, t, start, cnt, local, &ms) : -1;
        if (e >= 0) e = H5Dwrite(d, str, ms, fs, H5P_DEFAULT, lc[j].values);
        if (e < 0)
            s = h5_error(DAGR_ERR_IO, "save: cannot write the strings of '%s/%s' in '%s'", group,
                         t->names[j], path);
        if (ms >= 0) H5Sclose(ms);
        if (fs >= 0) H5Sclose(fs);
        if (d >= 0) H5Dclose(d);
    }
    if (str >= 0) H5Tclose(str);
    if (g >= 0) H5Gclose(g);
    if (H5Fclose(f) < 0 && s == DAGR_OK)
        s = h5_error(DAGR_ERR_IO, "save: cannot close '%s' after writing strings", path);
    return s;
}

static dagr_status_t check_group_name(dagr_ctx_t *ctx, const char *group, const char *what) {
    dagr_status_t s = DAGR_OK;
    if (group && strspn(group, "/") == strlen(group) && *group)
        s = DAGR_ERR(DAGR_ERR_ARG, "%s: group '%s' is the file's root, not a group of it", what,
                     group);
    return dt_agree(ctx, s);
}

dagr_status_t dagr_dtable_save(dagr_dtable_t *t, const char *path, const char *group) {
    DAGR_TRY(dt_check(t, "save: the table"));
    dagr_ctx_t *ctx = t->ctx;
    if (ctx_has_pending(ctx)) DAGR_TRY(ctx_run_pending(ctx, DAGR_OK));
    DAGR_TRY(io_check_names(ctx, path, group, true, false));
    DAGR_TRY(check_group_name(ctx, group, "save"));
    DAGR_TRY(dt_agree(ctx, check_names(t, NULL)));
    int np = t->nparts, rank = dagr_rank(ctx), size = dagr_size(ctx), nc = t->ncols;
    int64_t *cnt = malloc(((size_t)np + 1) * sizeof *cnt);
    int64_t *start = malloc(((size_t)np + 1) * sizeof *start);
    char **strs = calloc((size_t)np * (size_t)nc + 1, sizeof *strs); /* [p * nc + j] */
    uint8_t *pnull = calloc((size_t)np * (size_t)nc + 1, 1);         /* [p * nc + j] */
    int *has_null = calloc((size_t)nc + 1, sizeof *has_null);
    local_col_t *lc = calloc((size_t)nc + 1, sizeof *lc);
    int64_t local = 0, total = 0;
    dagr_status_t s = cnt && start && strs && pnull && has_null && lc
                          ? DAGR_OK
                          : DAGR_ERR(DAGR_ERR_NOMEM, "out of memory");
    s = dt_agree(ctx, s);
    if (s == DAGR_OK) s = dt_count_parts(t, cnt);
    if (s == DAGR_OK) {
        start[0] = 0;
        for (int p = 0; p < np; p++)
            start[p + 1] = start[p] + cnt[p];
        total = start[np];
        for (int p = rank; p < np; p += size)
            local += cnt[p];
        for (int j = 0; j < nc && s == DAGR_OK; j++) {
            size_t es = t->types[j] == DT_STRING ? sizeof(char *) : t->types[j] == DT_BOOL ? 1 : 8;
            lc[j].values = dt_alloc((size_t)local * es + 1);
            lc[j].valid = dt_alloc((size_t)local + 1);
            if (!lc[j].values || !lc[j].valid)
                s = DAGR_ERR(DAGR_ERR_NOMEM, "save: out of memory for column '%s'", t->names[j]);
        }
        s = dt_agree(ctx, s);
    }
    if (s == DAGR_OK) {
        /* Each partition's rows into its rank's arrays, by a task on that rank; the
         * arguments point at the memory of the rank that inserts the task, which is the one
         * that runs it where it matters. */
        int64_t at = 0;
        for (int p = 0; p < np && s == DAGR_OK; p++) {
            bool mine = p % size == rank;
            if (cnt[p] == 0) continue;
            gather_arg_t a = {t, lc, strs + (size_t)p * nc, pnull + (size_t)p * nc, at, p};
            dagr_access_t acc = {t->parts[p], DAGR_READ};
            dagr_task_opts_t o;
            dagr_task_opts_init(&o);
            o.rank = dt_part_rank(ctx, p);
            s = dagr_spawn(ctx, &gather_kernel, &a, sizeof a, 1, &acc, &o);
            if (mine) at += cnt[p];
        }
        dagr_status_t w = dagr_wait_all(ctx);
        if (s == DAGR_OK) s = w;
        s = dt_agree(ctx, s);
    }
    for (int p = rank; s == DAGR_OK && p < np; p += size)
        for (int j = 0; j < nc; j++)
            has_null[j] |= pnull[(size_t)p * nc + j];
    if (s == DAGR_OK) {
        int e = MPI_Allreduce(MPI_IN_PLACE, has_null, nc, MPI_INT, MPI_MAX, ctx_comm(ctx));
        s = e == MPI_SUCCESS ? check_names(t, has_null)
                             : DAGR_ERR(DAGR_ERR_MPI, "save: MPI_Allreduce failed");
        s = dt_agree(ctx, s);
    }
    for (int j = 0; j < nc; j++)
        if (!has_null[j]) {
            dt_free(lc[j].valid); /* no null anywhere: no validity dataset */
            lc[j].valid = NULL;
        }

    int exists = 0;
    hid_t file = -1;
    if (s == DAGR_OK) s = io_probe_file(ctx, path, "dagr_dtable_save", &exists);
    if (s == DAGR_OK) s = io_open_file(ctx, path, exists ? IO_UPDATE : IO_CREATE, &file);
    if (s == DAGR_OK) {
        h5_enter();
        s = save_parallel(t, file, path, group, start, cnt, total, local, has_null, lc);
        h5_leave();
        s = dt_agree(ctx, s);
        dagr_status_t c = io_close(ctx, -1, file, path);
        if (s == DAGR_OK) s = c;
    }
    bool strings = false;
    for (int j = 0; j < t->ncols; j++)
        strings |= t->types[j] == DT_STRING;
    if (s == DAGR_OK && strings && total > 0) {
        /* The ranks in turn, each with the file to itself. */
        dagr_status_t mine = DAGR_OK;
        for (int r = 0; r < size; r++) {
            if (r == rank && local > 0 && mine == DAGR_OK) {
                h5_enter();
                mine = save_strings(t, path, group, start, cnt, local, lc);
                h5_leave();
            }
            MPI_Barrier(ctx_comm(ctx));
        }
        s = dt_agree(ctx, mine);
    }
    local_free(lc, nc);
    for (size_t k = 0; strs && k < (size_t)np * nc; k++)
        dt_free(strs[k]);
    dt_free(strs);
    dt_free(pnull);
    dt_free(cnt);
    dt_free(start);
    dt_free(has_null);
    return s;
}

/* ---- load ---- */

/* What load learns of a column. */
typedef struct col_info {
    char *name;
    dt_type_t type;
    hid_t dset, valid; /* valid: the companion, or -1 */
} col_info_t;

/* Iteration over the group's links in name order: the datasets' names. */
typedef struct names_acc {
    char **v;
    int n, cap;
    bool oom;
} names_acc_t;

static herr_t add_name(hid_t g, const char *name, const H5L_info_t *info, void *op) {
    (void)info;
    names_acc_t *a = op;
    H5O_info_t oi;
    if (H5Oget_info_by_name2(g, name, &oi, H5O_INFO_BASIC, H5P_DEFAULT) < 0) return -1;
    if (oi.type != H5O_TYPE_DATASET) return 0;
    if (a->n == a->cap) {
        int cap = a->cap ? 2 * a->cap : 16;
        char **v = dt_realloc(a->v, (size_t)cap * sizeof *v);
        if (!v) return a->oom = true, -1;
        a->v = v;
        a->cap = cap;
    }
    if (!(a->v[a->n] = strdup(name))) return a->oom = true, -1;
    a->n++;
    return 0;
}

/* The column names: the "columns" attribute, or else the group's datasets in name order but
 * the "<c>.valid" companions of another dataset c. */
static dagr_status_t column_names(hid_t g, const char *path, const char *group, names_acc_t *a) {
    htri_t has = H5Aexists(g, "columns");
    if (has < 0) return h5_error(DAGR_ERR_IO, "load: cannot read group '%s' of '%s'", group, path);
    if (has) {
        hid_t at = H5Aopen(g, "columns", H5P_DEFAULT);
        hid_t sp = at >= 0 ? H5Aget_space(at) : -1, str = vlen_utf8();
        hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
        char **v = n >= 0 ? calloc((size_t)n + 1, sizeof *v) : NULL;
        herr_t e = v && str >= 0 && H5Sget_simple_extent_ndims(sp) == 1 ? H5Aread(at, str, v) : -1;
        dagr_status_t s = DAGR_OK;
        if (e < 0) {
            s = h5_error(DAGR_ERR_FORMAT,
                         "load: attribute 'columns' of group '%s' in '%s' is not a list of "
                         "strings",
                         group, path);
        } else {
            a->v = calloc((size_t)n + 1, sizeof *a->v);
            a->n = a->cap = (int)n;
            for (hssize_t k = 0; k < n && a->v; k++)
                if (!(a->v[k] = strdup(v[k] ? v[k] : ""))) a->oom = true;
            if (!a->v) a->oom = true;
            H5Dvlen_reclaim(str, sp, H5P_DEFAULT, v);
        }
        dt_free(v);
        if (str >= 0) H5Tclose(str);
        if (sp >= 0) H5Sclose(sp);
        if (at >= 0) H5Aclose(at);
        if (a->oom) s = DAGR_ERR(DAGR_ERR_NOMEM, "out of memory");
        return s;
    }
    hsize_t idx = 0;
    if (H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, add_name, a) < 0) {
        if (a->oom) return DAGR_ERR(DAGR_ERR_NOMEM, "out of memory");
        return h5_error(DAGR_ERR_IO, "load: cannot list group '%s' of '%s'", group, path);
    }
    int w = 0;
    for (int k = 0; k < a->n; k++) {
        size_t l = strlen(a->v[k]);
        bool companion = false;
        if (l > 6 && strcmp(a->v[k] + l - 6, ".valid") == 0)
            for (int m = 0; m < a->n && !companion; m++)
                companion = strlen(a->v[m]) == l - 6 && strncmp(a->v[m], a->v[k], l - 6) == 0;
        if (companion)
            dt_free(a->v[k]);
        else
            a->v[w++] = a->v[k];
    }
    a->n = w;
    return DAGR_OK;
}

/* The dataset's type as a column type: DAGR_ERR_FORMAT for what a column cannot be. */
static dagr_status_t column_type(hid_t d, const char *path, const char *group, const char *name,
                                 dt_type_t *ty, int64_t *len) {
    hid_t ft = H5Dget_type(d), sp = H5Dget_space(d);
    dagr_status_t s = DAGR_OK;
    if (ft < 0 || sp < 0) {
        s = h5_error(DAGR_ERR_IO, "load: cannot read dataset '%s/%s' of '%s'", group, name, path);
        goto out;
    }
    if (H5Sget_simple_extent_ndims(sp) != 1) {
        s = DAGR_ERR(DAGR_ERR_FORMAT, "load: dataset '%s/%s' of '%s' is not 1-D", group, name,
                     path);
        goto out;
    }
    hsize_t n;
    H5Sget_simple_extent_dims(sp, &n, NULL);
    *len = (int64_t)n;
    switch (H5Tget_class(ft)) {
    case H5T_INTEGER:
        if (H5Tget_size(ft) == 1 && H5Tget_sign(ft) == H5T_SGN_NONE)
            *ty = DT_BOOL;
        else if (H5Aexists(d, "unit") > 0)
            *ty = DT_TIMESTAMP;
        else
            *ty = DT_INT64;
        if (H5Tget_size(ft) == 8 && H5Tget_sign(ft) == H5T_SGN_NONE)
            s = DAGR_ERR(DAGR_ERR_FORMAT,
                         "load: dataset '%s/%s' of '%s' holds uint64, which int64 cannot hold",
                         group, name, path);
        break;
    case H5T_FLOAT:
        *ty = DT_FLOAT64;
        break;
    case H5T_STRING:
        *ty = DT_STRING;
        break;
    default:
        s = DAGR_ERR(DAGR_ERR_FORMAT,
                     "load: dataset '%s/%s' of '%s' is of a type no column has (integers, "
                     "floats and strings only)",
                     group, name, path);
    }
out:
    if (ft >= 0) H5Tclose(ft);
    if (sp >= 0) H5Sclose(sp);
    return s;
}

/* Rank 0's inspection of the group (under h5_enter): columns, types, length. */
static dagr_status_t inspect(hid_t file, const char *path, const char *group, col_info_t **cols,
                             int *ncols, int64_t *nrows) {
    int ex = path_exists(file, group);
    if (ex < 0) return h5_error(DAGR_ERR_IO, "load: cannot look for '%s' in '%s'", group, path);
    DAGR_CHECK(ex == 1, DAGR_ERR_FORMAT, "load: '%s' has no group '%s'", path, group);
    hid_t g = H5Gopen2(file, group, H5P_DEFAULT);
    if (g < 0) return h5_error(DAGR_ERR_FORMAT, "load: '%s' in '%s' is not a group", group, path);
    names_acc_t a = {0};
    dagr_status_t s = column_names(g, path, group, &a);
    if (s == DAGR_OK && a.n == 0)
        s = DAGR_ERR(DAGR_ERR_FORMAT, "load: group '%s' of '%s' has no dataset", group, path);
    col_info_t *c = s == DAGR_OK ? calloc((size_t)a.n, sizeof *c) : NULL;
    if (s == DAGR_OK && !c) s = DAGR_ERR(DAGR_ERR_NOMEM, "out of memory");
    for (int j = 0; c && j < a.n; j++)
        c[j].dset = c[j].valid = -1;
    for (int j = 0; s == DAGR_OK && j < a.n; j++) {
        c[j].name = a.v[j];
        a.v[j] = NULL;
        int e = path_exists(g, c[j].name);
        if (e != 1 || (c[j].dset = H5Dopen2(g, c[j].name, H5P_DEFAULT)) < 0) {
            s = h5_error(DAGR_ERR_FORMAT, "load: group '%s' of '%s' has no dataset '%s'", group,
                         path, c[j].name);
            break;
        }
        int64_t len;
        s = column_type(c[j].dset, path, group, c[j].name, &c[j].type, &len);
        if (s == DAGR_OK && j == 0) *nrows = len;
        if (s == DAGR_OK && len != *nrows)
            s = DAGR_ERR(DAGR_ERR_FORMAT,
                         "load: dataset '%s/%s' of '%s' has %lld rows, '%s' %lld: the columns "
                         "must have one length",
                         group, c[j].name, path, (long long)len, c[0].name, (long long)*nrows);
        char vname[1100];
        snprintf(vname, sizeof vname, "%s.valid", c[j].name);
        if (s == DAGR_OK && H5Lexists(g, vname, H5P_DEFAULT) > 0) {
            dt_type_t vt;
            c[j].valid = H5Dopen2(g, vname, H5P_DEFAULT);
            if (c[j].valid < 0)
                s = h5_error(DAGR_ERR_FORMAT, "load: '%s/%s' of '%s' is not a dataset", group,
                             vname, path);
            else
                s = column_type(c[j].valid, path, group, vname, &vt, &len);
            if (s == DAGR_OK && (vt != DT_BOOL || len != *nrows))
                s = DAGR_ERR(DAGR_ERR_FORMAT,
                             "load: '%s/%s' of '%s' is not a uint8 dataset of %lld rows", group,
                             vname, path, (long long)*nrows);
        }
    }
    for (int k = 0; k < a.n; k++)
        dt_free(a.v[k]);
    dt_free(a.v);
    H5Gclose(g);
    *cols = c;
    *ncols = c ? a.n : 0;
    return s;
}

/* One partition to build: its columns (views into the call's memory). */
typedef struct load_part {
    int ncols;
    const char **names;
    dt_column_t *cols;
} load_part_t;

static dagr_task_result_t build_task(const dagr_task_view_t *task) {
    load_part_t *lp;
    memcpy(&lp, task->args, sizeof lp);
    return dt_task_write(task, 0, lp->ncols, lp->names, lp->cols) ? DAGR_TASK_DONE
                                                                  : DAGR_TASK_ERROR;
}
static const dagr_kernel_t build_kernel = {"dtable_load_build", build_task, NULL, {NULL}};

/* This rank's rows of one column (the rows of its partitions, in order), read from the file
 * (under h5_enter). Strings: values are the bytes, offs the n + 1 offsets. */
typedef struct read_col {
    void *values;
    int64_t *offs;
    uint8_t *valid;
} read_col_t;

static dagr_status_t read_column(const dagr_dtable_t *t, const col_info_t *c, const int64_t *start,
                                 const int64_t *cnt, int64_t local, int64_t nrows, const char *path,
                                 const char *group, read_col_t *rc) {
    dagr_status_t s = DAGR_OK;
    if (nrows == 0) { /* HDF5 refuses to read from an empty dataset */
        rc->values = malloc(1);
        rc->offs = calloc(1, sizeof *rc->offs);
        DAGR_CHECK(rc->values && rc->offs, DAGR_ERR_NOMEM, "out of memory");
        return DAGR_OK;
    }
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER), str = -1;
    herr_t e = dxpl >= 0 ? 0 : -1;
    for (int v = 0; v < 2 && e >= 0; v++) {
        hid_t d = v ? c->valid : c->dset;
        if (d < 0) continue;
        dt_type_t ty = v ? DT_BOOL : c->type;
        hid_t fs = H5Dget_space(d), ms = -1;
        e = fs >= 0 ? select_rows(fs, t, start, cnt, local, &ms) : -1;
        if (e >= 0 && ty != DT_STRING) {
            size_t es = ty == DT_BOOL ? 1 : 8;
            void *buf = dt_alloc((size_t)local * es + 1);
            if (v)
                rc->valid = buf;
            else
                rc->values = buf;
            if (!buf) {
                s = DAGR_ERR(DAGR_ERR_NOMEM, "out of memory");
                e = -1;
            } else {
                e = H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE);
                if (e >= 0) e = H5Dread(d, mem_type(ty), ms, fs, dxpl, buf);
                if (e >= 0 && ty == DT_BOOL)
                    for (int64_t i = 0; i < local; i++)
                        ((uint8_t *)buf)[i] = ((uint8_t *)buf)[i] != 0;
            }
        } else if (e >= 0) {
            /* Strings, read independently: fixed-length ones converted by HDF5 too. */
            str = vlen_utf8();
            char **ptr = calloc((size_t)local + 1, sizeof *ptr);
            rc->offs = dt_alloc(((size_t)local + 1) * sizeof *rc->offs);
            e = str >= 0 && ptr && rc->offs ? 0 : -1;
            if (e < 0 && (!ptr || !rc->offs)) s = DAGR_ERR(DAGR_ERR_NOMEM, "out of memory");
            if (e >= 0) e = H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_INDEPENDENT);
            if (e >= 0 && local > 0) {
                hid_t ft = H5Dget_type(d);
                bool vl = ft >= 0 && H5Tis_variable_str(ft) > 0;
                if (!vl && ft >= 0) { /* fixed-length: read as such, then cut the padding */
                    size_t w = H5Tget_size(ft);
                    hid_t mt = H5Tcopy(ft);
                    char *fixed = dt_alloc((size_t)local * w + 1);
                    e = mt >= 0 && fixed ? H5Dread(d, mt, ms, fs, dxpl, fixed) : -1;
                    for (int64_t i = 0; e >= 0 && i < local; i++) {
                        char *f = fixed + (size_t)i * w;
                        size_t l = strnlen(f, w);
                        while (l > 0 && H5Tget_strpad(ft) == H5T_STR_SPACEPAD && f[l - 1] == ' ')
                            l--;
                        ptr[i] = malloc(l + 1);
                        if (!ptr[i]) {
                            e = -1;
                            s = DAGR_ERR(DAGR_ERR_NOMEM, "out of memory");
                            break;
                        }
                        memcpy(ptr[i], f, l);
                        ptr[i][l] = '\0';
                    }
                    dt_free(fixed);
                    if (mt >= 0) H5Tclose(mt);
                } else if (ft >= 0) {
                    e = H5Dread(d, str, ms, fs, dxpl, ptr);
                } else {
                    e = -1;
                }
                if (ft >= 0) H5Tclose(ft);
            }
            size_t bytes = 0;
            for (int64_t i = 0; e >= 0 && i < local; i++)
                bytes += ptr[i] ? strlen(ptr[i]) : 0;
            rc->values = e >= 0 ? dt_alloc(bytes + 1) : NULL;
            if (e >= 0 && !rc->values) {
                e = -1;
                s = DAGR_ERR(DAGR_ERR_NOMEM, "out of memory");
            }
            if (e >= 0) {
                rc->offs[0] = 0;
                for (int64_t i = 0; i < local; i++) {
                    size_t l = ptr[i] ? strlen(ptr[i]) : 0;
                    memcpy((char *)rc->values + rc->offs[i], ptr[i] ? ptr[i] : "", l);
                    rc->offs[i + 1] = rc->offs[i] + (int64_t)l;
                }
            }
            if (ptr) {
                for (int64_t i = 0; i < local; i++)
                    dt_free(ptr[i]); /* HDF5 1.10 allocates vlen strings with malloc */
                dt_free(ptr);
            }
        }
        if (ms >= 0) H5Sclose(ms);
        if (fs >= 0) H5Sclose(fs);
    }
    if (e < 0 && s == DAGR_OK)
        s = h5_error(DAGR_ERR_IO, "load: cannot read dataset '%s/%s' of '%s'", group, c->name,
                     path);
    if (str >= 0) H5Tclose(str);
    if (dxpl >= 0) H5Pclose(dxpl);
    return s;
}

dagr_status_t dagr_dtable_load(dagr_ctx_t *ctx, const char *path, const char *group,
                               dagr_dtable_t **out) {
    DAGR_CHECK(ctx, DAGR_ERR_ARG, "load: ctx is NULL");
    DAGR_TRY(ctx_usable(ctx));
    if (ctx_has_pending(ctx)) DAGR_TRY(ctx_run_pending(ctx, DAGR_OK));
    DAGR_TRY(dt_agree(ctx, out ? DAGR_OK : DAGR_ERR(DAGR_ERR_ARG, "load: out is NULL")));
    *out = NULL;
    DAGR_TRY(io_check_names(ctx, path, group, true, false));
    DAGR_TRY(check_group_name(ctx, group, "load"));
    hid_t file = -1;
    DAGR_TRY(io_open_file(ctx, path, IO_READ, &file));
    int rank = dagr_rank(ctx), size = dagr_size(ctx);
    col_info_t *cols = NULL;
    int ncols = 0;
    int64_t nrows = 0;
    h5_enter();
    dagr_status_t s = inspect(file, path, group, &cols, &ncols, &nrows);
    h5_leave();
    s = dt_agree(ctx, s);

    int np = dt_default_parts(ctx);
    int64_t *start = malloc(((size_t)np + 1) * sizeof *start);
    int64_t *cnt = malloc(((size_t)np + 1) * sizeof *cnt);
    read_col_t *rc = calloc((size_t)ncols + 1, sizeof *rc);
    load_part_t *lp = calloc((size_t)np + 1, sizeof *lp);
    dt_type_t *types = malloc(((size_t)ncols + 1) * sizeof *types);
    const char **names = malloc(((size_t)ncols + 1) * sizeof *names);
    if (s == DAGR_OK && (!start || !cnt || !rc || !lp || !types || !names))
        s = DAGR_ERR(DAGR_ERR_NOMEM, "out of memory");
    s = dt_agree(ctx, s);
    int64_t local = 0;
    if (s == DAGR_OK) {
        for (int p = 0; p <= np; p++)
            start[p] = (int64_t)((__int128)nrows * p / np);
        for (int p = 0; p < np; p++) {
            cnt[p] = start[p + 1] - start[p];
            if (p % size == rank) local += cnt[p];
        }
        for (int j = 0; j < ncols; j++) {
            types[j] = cols[j].type;
            names[j] = cols[j].name;
        }
        dagr_dtable_t tmp = {.ctx = ctx, .nparts = np}; /* for select_rows */
        h5_enter();
        for (int j = 0; j < ncols && s == DAGR_OK; j++)
            s = read_column(&tmp, &cols[j], start, cnt, local, nrows, path, group, &rc[j]);
        h5_leave();
        s = dt_agree(ctx, s);
    }
    h5_enter();
    for (int j = 0; cols && j < ncols; j++) {
        if (cols[j].dset >= 0) H5Dclose(cols[j].dset);
        if (cols[j].valid >= 0) H5Dclose(cols[j].valid);
    }
    h5_leave();
    dagr_status_t c = io_close(ctx, -1, file, path);
    if (s == DAGR_OK) s = c;

    dagr_dtable_t *t = NULL;
    if (s == DAGR_OK) s = dt_table_new(ctx, ncols, names, types, np, &t);
    /* This rank's partitions: views into rc (bitmaps and string offsets of their own). */
    int64_t at = 0;
    for (int p = rank; s == DAGR_OK && p < np; p += size) {
        lp[p].ncols = ncols;
        lp[p].names = names;
        lp[p].cols = calloc((size_t)ncols + 1, sizeof *lp[p].cols);
        if (!lp[p].cols) {
            s = DAGR_ERR(DAGR_ERR_NOMEM, "out of memory");
            break;
        }
        int64_t n = cnt[p];
        for (int j = 0; j < ncols && s == DAGR_OK; j++) {
            dt_column_t *col = &lp[p].cols[j];
            col->type = types[j];
            col->n = n;
            if (rc[j].valid) {
                bool any = false;
                for (int64_t i = 0; i < n && !any; i++)
                    any = !rc[j].valid[at + i];
                if (any && (col->valid = calloc((size_t)(n + 7) / 8 + 1, 1)))
                    for (int64_t i = 0; i < n; i++)
                        col->valid[i >> 3] |= (uint8_t)(rc[j].valid[at + i] << (i & 7));
                if (any && !col->valid) s = DAGR_ERR(DAGR_ERR_NOMEM, "out of memory");
            }
            if (types[j] == DT_STRING) {
                col->offsets = dt_alloc(((size_t)n + 1) * sizeof *col->offsets);
                if (!col->offsets) {
                    s = DAGR_ERR(DAGR_ERR_NOMEM, "out of memory");
                    break;
                }
                for (int64_t i = 0; i <= n; i++)
                    col->offsets[i] = rc[j].offs[at + i] - rc[j].offs[at];
                col->values = (char *)rc[j].values + rc[j].offs[at];
                col->nbytes = (size_t)col->offsets[n];
            } else {
                col->values = (char *)rc[j].values + (size_t)at * (types[j] == DT_BOOL ? 1 : 8);
            }
        }
        at += n;
    }
    s = dt_agree(ctx, s);
    /* Every rank inserts every build task (one graph); each runs on its partition's rank,
     * reading that rank's lp. */
    for (int p = 0; s == DAGR_OK && p < np; p++) {
        load_part_t *arg = &lp[p];
        dagr_access_t acc = {t->parts[p], DAGR_WRITE};
        dagr_task_opts_t o;
        dagr_task_opts_init(&o);
        o.rank = dt_part_rank(ctx, p);
        s = dagr_spawn(ctx, &build_kernel, &arg, sizeof arg, 1, &acc, &o);
    }
    if (t) {
        dagr_status_t w = dagr_wait_all(ctx);
        if (s == DAGR_OK) s = w;
    }
    s = dt_agree(ctx, s);
    for (int p = 0; lp && p < np; p++) {
        for (int j = 0; lp[p].cols && j < ncols; j++) {
            dt_free(lp[p].cols[j].valid);
            dt_free(lp[p].cols[j].offsets);
        }
        dt_free(lp[p].cols);
    }
    for (int j = 0; rc && j < ncols; j++) {
        dt_free(rc[j].values);
        dt_free(rc[j].offs);
        dt_free(rc[j].valid);
    }
    for (int j = 0; cols && j < ncols; j++)
        dt_free(cols[j].name);
    dt_free(cols);
    dt_free(rc);
    dt_free(lp);
    dt_free(start);
    dt_free(cnt);
    dt_free(types);
    dt_free(names);
    if (s != DAGR_OK) {
        dagr_dtable_destroy(&t);
        return s;
    }
    t->known_rows = nrows;
    *out = t;
    return DAGR_OK;
}
