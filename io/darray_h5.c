/* DArrays in HDF5 files: dagr_darray_save and dagr_darray_load (see include/dagr/io.h).
 *
 * The file is opened by every rank through MPI-IO (parallel HDF5). Calls that change the
 * file's metadata (open, create, close) are made by every rank, from the main thread, in the
 * same order, as parallel HDF5 requires. Tile data moves in tasks: one task per tile, on the
 * rank owning the tile, does an independent H5Dwrite or H5Dread of the tile's block of the
 * dataset. A tile is a column-major block and the dataset is row-major, so each task
 * transposes through a buffer of one tile (memory stays bounded by a tile per worker).
 *
 * New datasets are chunked by tile: each tile is then one contiguous extent of the file.
 * Their fill value is never written (every element is written by a task), which would
 * otherwise double the bytes written.
 *
 * Every HDF5 call is made between h5_enter and h5_leave (io_impl.h). */
#include "io_impl.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------
 * Element types and shapes
 * ---------------------------------------------------------------------------------------- */

/* The type a task's buffer holds (HDF5 converts to and from the file's type). */
static hid_t mem_type(dagr_dtype_t t) {
    switch (t) {
    case DAGR_FLOAT:
        return H5T_NATIVE_FLOAT;
    case DAGR_INT64:
        return H5T_NATIVE_INT64;
    default:
        return H5T_NATIVE_DOUBLE;
    }
}

/* The type dagr writes: fixed little-endian types, so files compare byte for byte anywhere. */
static hid_t file_type(dagr_dtype_t t) {
    switch (t) {
    case DAGR_FLOAT:
        return H5T_IEEE_F32LE;
    case DAGR_INT64:
        return H5T_STD_I64LE;
    default:
        return H5T_IEEE_F64LE;
    }
}

static const char *dtype_name(dagr_dtype_t t) {
    return t == DAGR_FLOAT ? "float" : t == DAGR_INT64 ? "int64" : "double";
}

/* The dtype a dataset of file type `type` loads as; 0 with *why set for the types refused. */
static dagr_dtype_t load_dtype(hid_t type, const char **why) {
    H5T_class_t c = H5Tget_class(type);
    size_t size = H5Tget_size(type);
    if (c == H5T_FLOAT) return size == 4 ? DAGR_FLOAT : DAGR_DOUBLE;
    if (c == H5T_INTEGER) {
        if (H5Tget_sign(type) == H5T_SGN_NONE && size >= 8) {
            *why = "unsigned 64-bit integers, which int64 cannot hold";
            return 0;
        }
        return DAGR_INT64;
    }
    *why = "neither integers nor floating-point numbers";
    return 0;
}

/* Dataset shape: rank (1 or 2) and dims; *why set for other ranks. */
static int space_shape(hid_t space, hsize_t dims[2], const char **why) {
    int rank = H5Sget_simple_extent_ndims(space);
    if (rank < 1 || rank > 2) {
        *why = rank == 0 ? "a scalar, not an array" : "not 1-D or 2-D";
        return -1;
    }
    dims[1] = 1;
    H5Sget_simple_extent_dims(space, dims, NULL);
    return rank;
}

/* ------------------------------------------------------------------------------------------
 * One tile's block of the dataset: the tasks
 * ---------------------------------------------------------------------------------------- */

typedef struct io_args {
    dagr_ctx_t *ctx; /* this rank's context (the task runs on the rank that made the args) */
    hid_t dset;
    int32_t dtype;
    int32_t frank;              /* the dataset's rank: 1 (a column) or 2 */
    int64_t i0, j0, rows, cols; /* the tile's block */
    const char *path, *dataset; /* for messages: the call waits, so they outlive the task */
} io_args_t;

/* Copies between a column-major rows x cols block `cm` (leading dimension ld) and the
 * row-major block `rm`, in 32 x 32 squares so that both sides are read in cache lines. */
#define TRANSPOSE(T)                                                                               \
    do {                                                                                           \
        T *r_ = rm, *c_ = cm;                                                                      \
        for (int64_t jb = 0; jb < cols; jb += 32)                                                  \
            for (int64_t ib = 0; ib < rows; ib += 32)                                              \
                for (int64_t j = jb; j < jb + 32 && j < cols; j++)                                 \
                    for (int64_t i = ib; i < ib + 32 && i < rows; i++) {                           \
                        if (to_rm)                                                                 \
                            r_[i * cols + j] = c_[i + j * ld];                                     \
                        else                                                                       \
                            c_[i + j * ld] = r_[i * cols + j];                                     \
                    }                                                                              \
    } while (0)

static void transpose(void *rm, void *cm, int64_t ld, int64_t rows, int64_t cols, size_t es,
                      bool to_rm) {
    if (es == 4)
        TRANSPOSE(uint32_t);
    else
        TRANSPOSE(uint64_t);
}

/* Writes (or reads) the row-major block `rm` to (from) the tile's block of the dataset. Any
 * thread. */
static dagr_status_t move_block(const io_args_t *a, void *rm, bool write, int worker) {
    hsize_t start[2] = {(hsize_t)a->i0, (hsize_t)a->j0};
    hsize_t count[2] = {(hsize_t)a->rows, (hsize_t)a->cols};
    size_t bytes = (size_t)(a->rows * a->cols) * dagr_dtype_size((dagr_dtype_t)a->dtype);
    dagr_status_t s = DAGR_OK;
    h5_enter();
    hid_t fspace = H5Dget_space(a->dset);
    hid_t mspace = H5Screate_simple(a->frank, count, NULL);
    herr_t e = fspace >= 0 && mspace >= 0 ? 0 : -1;
    if (e >= 0) e = H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL);
    if (e >= 0) {
        int64_t t0 = trace_io_begin(a->ctx);
        hid_t mt = mem_type((dagr_dtype_t)a->dtype);
        if (write)
            e = H5Dwrite(a->dset, mt, mspace, fspace, H5P_DEFAULT, rm);
        else
            e = H5Dread(a->dset, mt, mspace, fspace, H5P_DEFAULT, rm);
        trace_io_end(a->ctx, t0, write ? TRACE_IO_HDF5_WRITE : TRACE_IO_HDF5_READ, bytes, worker);
    }
    if (e < 0)
        s = h5_error(DAGR_ERR_IO,
                     "cannot %s rows %lld-%lld, columns %lld-%lld (0-based) of '%s' in '%s'",
                     write ? "write" : "read", (long long)a->i0, (long long)(a->i0 + a->rows - 1),
                     (long long)a->j0, (long long)(a->j0 + a->cols - 1), a->dataset, a->path);
    if (mspace >= 0) H5Sclose(mspace);
    if (fspace >= 0) H5Sclose(fspace);
    h5_leave();
    return s;
}

/* buf 0: the tile (read for a save, written for a load). */
static dagr_task_result_t tile_io(const dagr_task_view_t *t, bool write) {
    const io_args_t *a = t->args;
    size_t es = dagr_dtype_size((dagr_dtype_t)a->dtype);
    void *rm = malloc((size_t)(a->rows * a->cols) * es);
    if (!rm) {
        dagr_task_fail(t, DAGR_ERR_NOMEM, "cannot allocate a %lldx%lld tile buffer",
                       (long long)a->rows, (long long)a->cols);
        return DAGR_TASK_ERROR;
    }
    if (write) transpose(rm, t->buf[0], (int64_t)t->ld[0], a->rows, a->cols, es, true);
    dagr_status_t s = move_block(a, rm, write, t->worker);
    if (s == DAGR_OK && !write)
        transpose(rm, t->buf[0], (int64_t)t->ld[0], a->rows, a->cols, es, false);
    free(rm);
    if (s != DAGR_OK) {
        dagr_task_fail(t, s, "%s", dagr_last_error());
        return DAGR_TASK_ERROR;
    }
    return DAGR_TASK_DONE;
}

static dagr_task_result_t k_save(const dagr_task_view_t *t) {
    return tile_io(t, true);
}
static dagr_task_result_t k_load(const dagr_task_view_t *t) {
    return tile_io(t, false);
}

static const dagr_kernel_t save_kernel = {.name = "darray_save", .cpu = k_save};
static const dagr_kernel_t load_kernel = {.name = "darray_load", .cpu = k_load};

/* One task per tile of A on the tile's owner; A's tile (0, 0) is the dataset's (0, 0). */
static dagr_status_t insert_tiles(const dagr_darray_t *A, hid_t dset, int frank, bool save,
                                  const char *path, const char *dataset) {
    for (int64_t tj = 0; tj < A->nt; tj++) {
        for (int64_t ti = 0; ti < A->mt; ti++) {
            tile_arg_t ta = da_tile_arg(A, ti, tj);
            io_args_t a = {.ctx = A->ctx,
                           .dset = dset,
                           .dtype = A->dtype,
                           .frank = frank,
                           .i0 = ta.i0,
                           .j0 = ta.j0,
                           .rows = ta.rows,
                           .cols = ta.cols,
                           .path = path,
                           .dataset = dataset};
            dagr_data_t *h = da_handle(A, ti, tj);
            dagr_task_opts_t o;
            dagr_task_opts_init(&o);
            o.rank = dagr_data_owner(h);
            dagr_access_t acc = {h, save ? DAGR_READ : da_out_mode(A, ti, tj)};
            DAGR_TRY(
                dagr_spawn(A->ctx, save ? &save_kernel : &load_kernel, &a, sizeof a, 1, &acc, &o));
        }
    }
    return DAGR_OK;
}

/* ------------------------------------------------------------------------------------------
 * Files and datasets (collective, main thread)
 * ---------------------------------------------------------------------------------------- */

/* What h5_exists finds. */
enum { H5X_ERROR = -1, H5X_ABSENT = 0, H5X_THERE = 1, H5X_NOT_GROUP = 2 };

/* Under h5_enter: whether the object `name` exists in file. H5Lexists fails rather than
 * answer "no" when an intermediate group is missing, so the path is checked one component at
 * a time; a component that exists but is not a group gives H5X_NOT_GROUP with its path in
 * `where` (at least strlen(name) + 1 bytes). */
static int h5_exists(hid_t file, const char *name, char *where) {
    char *p = strdup(name);
    if (!p) return H5X_ERROR;
    int r = H5X_THERE;
    for (char *slash = strchr(p + 1, '/'); slash && r == H5X_THERE;
         slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        htri_t e = H5Lexists(file, p, H5P_DEFAULT);
        H5O_info_t info;
        if (e < 0) {
            r = H5X_ERROR;
        } else if (e == 0) {
            r = H5X_ABSENT;
        } else if (H5Oget_info_by_name2(file, p, &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0) {
            r = H5X_ERROR;
        } else if (info.type != H5O_TYPE_GROUP) {
            strcpy(where, p);
            r = H5X_NOT_GROUP;
        }
        *slash = '/';
    }
    if (r == H5X_THERE) {
        htri_t e = H5Lexists(file, p, H5P_DEFAULT);
        r = e < 0 ? H5X_ERROR : e ? H5X_THERE : H5X_ABSENT;
    }
    free(p);
    return r;
}

/* Under h5_enter: looks for `name`; DAGR_OK with *there set, or the error (code_not_group for
 * a path through something that is not a group). */
static dagr_status_t find_dataset(hid_t file, const char *path, const char *name,
                                  dagr_status_t code_not_group, bool *there) {
    char *where = malloc(strlen(name) + 1);
    DAGR_CHECK(where, DAGR_ERR_NOMEM, "cannot allocate a name");
    int r = h5_exists(file, name, where);
    dagr_status_t s = DAGR_OK;
    if (r == H5X_ERROR)
        s = h5_error(DAGR_ERR_IO, "cannot look for dataset '%s' in '%s'", name, path);
    else if (r == H5X_NOT_GROUP)
        s = DAGR_ERR(code_not_group, "no dataset '%s' can be in '%s': '%s' there is not a group",
                     name, path, where);
    *there = r == H5X_THERE;
    free(where);
    return s;
}

/* Opens the existing dataset for A, checking that it has A's shape and element type. */
static dagr_status_t open_for_save(const dagr_darray_t *A, hid_t file, const char *path,
                                   const char *name, hid_t *dset) {
    *dset = H5Dopen2(file, name, H5P_DEFAULT);
    if (*dset < 0) return h5_error(DAGR_ERR_ARG, "'%s' in '%s' is not a dataset", name, path);
    hid_t type = H5Dget_type(*dset), space = H5Dget_space(*dset);
    hsize_t dims[2] = {0, 0};
    int rank = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    if (rank == 2) H5Sget_simple_extent_dims(space, dims, NULL);
    bool same_type = type >= 0 && H5Tget_class(type) == H5Tget_class(file_type(A->dtype)) &&
                     H5Tget_size(type) == A->es;
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    if (rank == 2 && dims[0] == (hsize_t)A->m && dims[1] == (hsize_t)A->n && same_type)
        return DAGR_OK;
    return DAGR_ERR(DAGR_ERR_ARG,
                    "dataset '%s' in '%s' exists with another shape or element type than A "
                    "(%lldx%lld %s): save under another name, or into another file",
                    name, path, (long long)A->m, (long long)A->n, dtype_name(A->dtype));
}

/* Creates the dataset for A, chunked by A's tile (groups on the way are created). */
static dagr_status_t create_for_save(const dagr_darray_t *A, hid_t file, const char *path,
                                     const char *name, hid_t *dset) {
    hsize_t dims[2] = {(hsize_t)A->m, (hsize_t)A->n};
    hid_t space = H5Screate_simple(2, dims, NULL);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    herr_t e = space >= 0 && lcpl >= 0 && dcpl >= 0 ? 0 : -1;
    if (e >= 0) e = H5Pset_create_intermediate_group(lcpl, 1);
    if (e >= 0) e = H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER);
    if (e >= 0 && A->m > 0 && A->n > 0) {
        /* A chunk can be at most as large as the dataset and under 4 GiB. */
        hsize_t chunk[2] = {(hsize_t)(A->mb < A->m ? A->mb : A->m),
                            (hsize_t)(A->nb < A->n ? A->nb : A->n)};
        while (chunk[0] > 1 && chunk[0] * chunk[1] * A->es >= ((hsize_t)1 << 32))
            chunk[0] = (chunk[0] + 1) / 2;
        while (chunk[1] > 1 && chunk[0] * chunk[1] * A->es >= ((hsize_t)1 << 32))
            chunk[1] = (chunk[1] + 1) / 2;
        e = H5Pset_chunk(dcpl, 2, chunk);
    }
    if (e >= 0) *dset = H5Dcreate2(file, name, file_type(A->dtype), space, lcpl, dcpl, H5P_DEFAULT);
    dagr_status_t s = e >= 0 && *dset >= 0
                          ? DAGR_OK
                          : h5_error(DAGR_ERR_IO, "cannot create dataset '%s' in '%s'", name, path);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (lcpl >= 0) H5Pclose(lcpl);
    if (space >= 0) H5Sclose(space);
    return s;
}

/* ------------------------------------------------------------------------------------------
 * Save and load
 * ---------------------------------------------------------------------------------------- */

dagr_status_t dagr_darray_save(const dagr_darray_t *A, const char *path, const char *dataset) {
    DAGR_TRY(da_check(A, "A"));
    dagr_ctx_t *ctx = A->ctx;
    /* An asynchronous checkpoint ends first: its thread's HDF5 calls are collective too. */
    if (ctx_has_pending(ctx)) DAGR_TRY(ctx_run_pending(ctx, DAGR_OK));
    DAGR_TRY(io_check_names(ctx, path, dataset, true, false));
    int exists;
    DAGR_TRY(io_probe_file(ctx, path, "dagr_darray_save", &exists));
    hid_t file = -1, dset = -1;
    DAGR_TRY(io_open_file(ctx, path, exists ? IO_UPDATE : IO_CREATE, &file));

    dagr_status_t s = DAGR_OK;
    h5_enter();
    bool there = false;
    s = find_dataset(file, path, dataset, DAGR_ERR_ARG, &there);
    if (s == DAGR_OK && there)
        s = open_for_save(A, file, path, dataset, &dset);
    else if (s == DAGR_OK)
        s = create_for_save(A, file, path, dataset, &dset);
    h5_leave();
    s = da_agree(ctx, s);

    if (s == DAGR_OK) {
        s = insert_tiles(A, dset, 2, true, path, dataset);
        /* Wait even if an insertion failed: no task may still use the dataset at the close. */
        dagr_status_t w = dagr_wait_all(ctx);
        if (s == DAGR_OK) s = w;
    }
    dagr_status_t c = io_close(ctx, dset, file, path);
    return s != DAGR_OK ? s : c;
}

/* What load learns of the dataset: dtype, shape, chunks. */
typedef struct dset_info {
    dagr_dtype_t dtype;
    int rank;
    hsize_t dims[2], chunk[2]; /* chunk {0, 0}: not chunked */
} dset_info_t;

static dagr_status_t inspect_for_load(hid_t file, const char *path, const char *name, hid_t *dset,
                                      dset_info_t *info) {
    bool there = false;
    DAGR_TRY(find_dataset(file, path, name, DAGR_ERR_FORMAT, &there));
    DAGR_CHECK(there, DAGR_ERR_FORMAT, "'%s' has no dataset '%s'", path, name);
    *dset = H5Dopen2(file, name, H5P_DEFAULT);
    if (*dset < 0) return h5_error(DAGR_ERR_FORMAT, "'%s' in '%s' is not a dataset", name, path);
    hid_t type = H5Dget_type(*dset), space = H5Dget_space(*dset), dcpl = H5Dget_create_plist(*dset);
    const char *why = NULL;
    dagr_status_t s = DAGR_OK;
    if (type < 0 || space < 0 || dcpl < 0) {
        s = h5_error(DAGR_ERR_IO, "cannot read the description of '%s' in '%s'", name, path);
    } else {
        info->dtype = load_dtype(type, &why);
        if (!why) info->rank = space_shape(space, info->dims, &why);
        if (!why && H5Pget_layout(dcpl) == H5D_CHUNKED) {
            info->chunk[1] = 1;
            H5Pget_chunk(dcpl, 2, info->chunk);
        }
        if (why) s = DAGR_ERR(DAGR_ERR_FORMAT, "dataset '%s' in '%s' holds %s", name, path, why);
    }
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    if (dcpl >= 0) H5Pclose(dcpl);
    return s;
}

dagr_status_t dagr_darray_load(dagr_ctx_t *ctx, const char *path, const char *dataset, int64_t mb,
                               int64_t nb, dagr_grid_t grid, dagr_darray_t **out) {
    DAGR_CHECK(ctx, DAGR_ERR_ARG, "ctx is NULL");
    if (ctx_has_pending(ctx)) DAGR_TRY(ctx_run_pending(ctx, DAGR_OK));
    DAGR_TRY(da_agree(ctx, out ? DAGR_OK
                               : DAGR_ERR(DAGR_ERR_ARG, "out is NULL on rank %d", dagr_rank(ctx))));
    *out = NULL;
    DAGR_CHECK(mb >= 0 && nb >= 0, DAGR_ERR_ARG,
               "tile size %lldx%lld: mb and nb must be >= 0 (0 = the dataset's chunks)",
               (long long)mb, (long long)nb);
    DAGR_TRY(io_check_names(ctx, path, dataset, true, false));
    hid_t file = -1, dset = -1;
    DAGR_TRY(io_open_file(ctx, path, IO_READ, &file));

    dset_info_t info = {0};
    h5_enter();
    dagr_status_t s = inspect_for_load(file, path, dataset, &dset, &info);
    h5_leave();
    s = da_agree(ctx, s);

    dagr_darray_t *A = NULL;
    if (s == DAGR_OK) {
        int64_t m = (int64_t)info.dims[0], n = (int64_t)info.dims[1];
        if (mb == 0) mb = info.chunk[0] ? (int64_t)info.chunk[0] : 512;
        if (nb == 0) nb = info.chunk[1] ? (int64_t)info.chunk[1] : 512;
        s = dagr_darray_create(ctx, info.dtype, m, n, mb, nb, grid, &A);
    }
    if (s == DAGR_OK) {
        s = insert_tiles(A, dset, info.rank, false, path, dataset);
        dagr_status_t w = dagr_wait_all(ctx);
        if (s == DAGR_OK) s = w;
    }
    dagr_status_t c = io_close(ctx, dset, file, path);
    if (s == DAGR_OK) s = c;
    if (s != DAGR_OK) {
        dagr_darray_destroy(&A);
        return s;
    }
    *out = A;
    return DAGR_OK;
}
