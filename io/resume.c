/* dagr_resume (see include/dagr/io.h and the format at the top of checkpoint.c). */
#include "checkpoint_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------------
 * Resume
 * ---------------------------------------------------------------------------------------- */

/* Collective: rank 0 reads the attributes, the table and the size of /data, and broadcasts
 * them; *table is malloc'ed on every rank. */
static dagr_status_t read_header(dagr_ctx_t *ctx, hid_t file, const char *path, int64_t v[NATTRS],
                                 uint64_t **table, uint64_t *data_bytes) {
    dagr_status_t s = DAGR_OK;
    *table = NULL;
    uint64_t dbytes = 0;
    if (dagr_rank(ctx) == 0) {
        h5_enter();
        s = ckpt_read_attrs(file, path, v);
        if (s == DAGR_OK) {
            *table = malloc(((size_t)v[A_HANDLES] + 1) * TABLE_COLS * sizeof **table);
            if (!*table) s = DAGR_ERR(DAGR_ERR_NOMEM, "cannot allocate the table of '%s'", path);
        }
        hid_t t = -1, d = -1;
        if (s == DAGR_OK) {
            t = H5Dopen2(file, "handles", H5P_DEFAULT);
            d = H5Dopen2(file, "data", H5P_DEFAULT);
            if (t < 0 || d < 0)
                s = h5_error(DAGR_ERR_FORMAT, "checkpoint '%s' is damaged: %s is missing", path,
                             t < 0 ? "/handles" : "/data");
        }
        if (s == DAGR_OK) {
            hid_t ts = H5Dget_space(t), ds = H5Dget_space(d);
            hsize_t tdims[2] = {0, 0}, ddims = 0;
            int tr = ts >= 0 ? H5Sget_simple_extent_ndims(ts) : -1;
            if (tr == 2) H5Sget_simple_extent_dims(ts, tdims, NULL);
            if (ds >= 0 && H5Sget_simple_extent_ndims(ds) == 1)
                H5Sget_simple_extent_dims(ds, &ddims, NULL);
            dbytes = ddims;
            if (tr != 2 || tdims[0] != (hsize_t)v[A_HANDLES] || tdims[1] != TABLE_COLS)
                s = DAGR_ERR(DAGR_ERR_FORMAT,
                             "checkpoint '%s' is damaged: its table is not %lld x %d", path,
                             (long long)v[A_HANDLES], TABLE_COLS);
            else if (v[A_HANDLES] &&
                     H5Dread(t, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, *table) < 0)
                s = h5_error(DAGR_ERR_FORMAT, "cannot read the table of checkpoint '%s'", path);
            if (ts >= 0) H5Sclose(ts);
            if (ds >= 0) H5Sclose(ds);
        }
        if (t >= 0) H5Dclose(t);
        if (d >= 0) H5Dclose(d);
        h5_leave();
    }
    s = da_agree(ctx, s);
    if (s != DAGR_OK) {
        free(*table);
        *table = NULL;
        return s;
    }
    int64_t head[NATTRS + 1];
    memcpy(head, v, NATTRS * sizeof *v);
    head[NATTRS] = (int64_t)dbytes;
    DAGR_TRY_MPI(MPI_Bcast(head, NATTRS + 1, MPI_INT64_T, 0, ctx_comm(ctx)));
    memcpy(v, head, NATTRS * sizeof *v);
    *data_bytes = (uint64_t)head[NATTRS];
    if (dagr_rank(ctx) != 0) {
        *table = malloc(((size_t)v[A_HANDLES] + 1) * TABLE_COLS * sizeof **table);
        s = da_agree(ctx, *table ? DAGR_OK : DAGR_ERR(DAGR_ERR_NOMEM, "cannot allocate a table"));
    } else {
        s = da_agree(ctx, DAGR_OK);
    }
    if (s == DAGR_OK && v[A_HANDLES]) {
        int e = MPI_Bcast(*table, (int)(v[A_HANDLES] * TABLE_COLS), MPI_UINT64_T, 0, ctx_comm(ctx));
        if (e != MPI_SUCCESS) s = dagr_error_mpi(e, __FILE__, __LINE__, "MPI_Bcast");
    }
    if (s != DAGR_OK) {
        free(*table);
        *table = NULL;
    }
    return s;
}

/* Local: the live handles must be the file's, in the same order with the same shapes. */
static dagr_status_t match(const layout_t *L, const uint64_t *table, int64_t n, uint64_t dbytes,
                           const char *path) {
    if (L->n != n)
        return DAGR_ERR(DAGR_ERR_FORMAT,
                        "checkpoint '%s' holds %lld data handles but %lld are live here: resume "
                        "when the program has created the same DArrays and handles, in the same "
                        "order, as when it wrote the checkpoint",
                        path, (long long)n, (long long)L->n);
    uint64_t total = 0;
    for (int64_t k = 0; k < n; k++) {
        const uint64_t *f = table + k * TABLE_COLS, *h = L->table + k * TABLE_COLS;
        bool file_dynamic = f[2] == 0 && f[1] == 1;
        if (data_shape(L->h[k]).dynamic != file_dynamic)
            return DAGR_ERR(
                DAGR_ERR_FORMAT,
                "data handle %lld (in creation order) is %s in checkpoint '%s' but "
                "%s here",
                (long long)k, file_dynamic ? "a handle whose size tasks decide" : "of fixed size",
                path, file_dynamic ? "of fixed size" : "a handle whose size tasks decide");
        if (!file_dynamic && (f[0] != h[0] || f[1] != h[1] || f[2] != h[2]))
            return DAGR_ERR(DAGR_ERR_FORMAT,
                            "data handle %lld (in creation order) is %llu x %llu of %llu-byte "
                            "elements in checkpoint '%s' but %llu x %llu of %llu-byte elements "
                            "here",
                            (long long)k, (unsigned long long)f[0], (unsigned long long)f[1],
                            (unsigned long long)f[2], path, (unsigned long long)h[0],
                            (unsigned long long)h[1], (unsigned long long)h[2]);
        total += row_bytes(f);
    }
    if (total != dbytes)
        return DAGR_ERR(DAGR_ERR_FORMAT,
                        "checkpoint '%s' is damaged: its data hold %llu bytes, its table says "
                        "%llu",
                        path, (unsigned long long)dbytes, (unsigned long long)total);
    return DAGR_OK;
}

dagr_status_t dagr_resume(dagr_ctx_t *ctx, const char *path) {
    DAGR_CHECK(ctx, DAGR_ERR_ARG, "ctx is NULL");
    if (ctx_has_pending(ctx)) DAGR_TRY(ctx_run_pending(ctx, DAGR_OK));
    DAGR_TRY(ctx_usable(ctx));
    DAGR_TRY(io_check_names(ctx, path, NULL, false, false));
    int exists;
    DAGR_TRY(io_probe_file(ctx, path, "dagr_resume", &exists));
    if (!exists) return DAGR_OK; /* a fresh start */

    /* Finish what was inserted before: it must not overwrite what is restored. */
    DAGR_TRY(dagr_wait_all(ctx));
    hid_t file = -1, data = -1;
    DAGR_TRY(da_agree(ctx, dagr_rank(ctx) == 0 && access(path, R_OK) != 0
                               ? DAGR_ERR(DAGR_ERR_IO, "cannot read '%s': %m", path)
                               : DAGR_OK));
    if (io_open_file(ctx, path, IO_READ, &file) != DAGR_OK) {
        /* A readable HDF5 file that HDF5 cannot open: cut short, or its metadata damaged. */
        char why[DAGR_ERRMSG_MAX];
        snprintf(why, sizeof why, "%s", dagr_last_error());
        return DAGR_ERR(DAGR_ERR_FORMAT, "checkpoint '%s' is damaged or cut short (%s)", path, why);
    }
    int64_t v[NATTRS] = {0};
    uint64_t *table = NULL, dbytes = 0;
    layout_t L = {0};
    dagr_status_t s = read_header(ctx, file, path, v, &table, &dbytes);
    if (s == DAGR_OK) s = da_agree(ctx, ckpt_layout_handles(ctx, &L));
    if (s == DAGR_OK) {
        /* The shapes here; a handle whose size tasks decide takes the file's. */
        for (int64_t k = 0; k < L.n; k++)
            L.off[k] = data_shape(L.h[k]).dynamic ? 0 : dagr_data_bytes(L.h[k]);
        ckpt_layout_rows(&L);
        s = da_agree(ctx, match(&L, table, v[A_HANDLES], dbytes, path));
    }
    if (s == DAGR_OK) {
        memcpy(L.table, table, (size_t)L.n * TABLE_COLS * sizeof *table);
        ckpt_layout_offsets(&L);
        h5_enter();
        data = H5Dopen2(file, "data", H5P_DEFAULT);
        s = data >= 0 ? DAGR_OK : h5_error(DAGR_ERR_FORMAT, "cannot open /data of '%s'", path);
        h5_leave();
        s = da_agree(ctx, s);
    }
    if (s == DAGR_OK) {
        s = ckpt_insert_extents(ctx, &L, data, false, NULL, NULL, NULL, NULL, NULL, path);
        dagr_status_t w = dagr_wait_all(ctx);
        if (s == DAGR_OK) s = w;
    }
    dagr_status_t c = io_close(ctx, data, file, path);
    if (s == DAGR_OK) s = c;
    free(table);
    ckpt_layout_free(&L);
    return s;
}
