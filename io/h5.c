/* What io/ files share: HDF5 under one lock with its errors as statuses, and the collective
 * steps of every file operation (names, probe, open, close). See io_impl.h. */
#include "io_impl.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static pthread_mutex_t h5_lock = PTHREAD_MUTEX_INITIALIZER;
static H5E_auto2_t h5_saved_fn;
static void *h5_saved_data;

void h5_enter(void) {
    pthread_mutex_lock(&h5_lock);
    H5Eget_auto2(H5E_DEFAULT, &h5_saved_fn, &h5_saved_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void h5_leave(void) {
    H5Eset_auto2(H5E_DEFAULT, h5_saved_fn, h5_saved_data);
    pthread_mutex_unlock(&h5_lock);
}

/* Keeps the description of the innermost error, where HDF5 detected it ("unable to open file:
 * name = 'x.h5', errno = 2, error message = 'No such file or directory', ..."): the outer ones
 * only say which API call failed. */
static herr_t innermost(unsigned n, const H5E_error2_t *e, void *out) {
    if (n == 0 && e->desc) snprintf(out, 256, "%s", e->desc);
    return 0;
}

/* Between h5_enter and h5_leave: records "<what>: <HDF5's reason>" as the error and clears
 * HDF5's error stack. */
dagr_status_t h5_error(dagr_status_t code, const char *fmt, ...) {
    char what[DAGR_ERRMSG_MAX], why[256] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost, why);
    H5Eclear2(H5E_DEFAULT);
    for (char *c = why; *c; c++) /* MPI-IO's reasons come on several lines */
        if (*c == '\n') *c = ' ';
    if (!why[0]) return DAGR_ERR(code, "%s", what);
    return DAGR_ERR(code, "%s: %s", what, why);
}

/* ------------------------------------------------------------------------------------------
 * The collective steps
 * ---------------------------------------------------------------------------------------- */

/* Checked by comparing hashes (the maximum of h and of ~h give min and max). */
dagr_status_t io_check_names(dagr_ctx_t *ctx, const char *path, const char *dataset,
                             bool has_dataset, bool patient) {
    return io_check_names_and(ctx, path, dataset, has_dataset, patient, DAGR_OK);
}

dagr_status_t io_check_names_and(dagr_ctx_t *ctx, const char *path, const char *dataset,
                                 bool has_dataset, bool patient, dagr_status_t mine) {
    dagr_status_t s = mine;
    if (!path || !*path)
        s = DAGR_ERR(DAGR_ERR_ARG, "path is %s", path ? "empty" : "NULL");
    else if (has_dataset && (!dataset || !*dataset))
        s = DAGR_ERR(DAGR_ERR_ARG, "dataset is %s", dataset ? "empty" : "NULL");
    char msg[DAGR_ERRMSG_MAX];
    snprintf(msg, sizeof msg, "%s", s == DAGR_OK ? "" : dagr_last_error());
    DAGR_TRY(patient ? ctx_sync_patient(ctx, s, msg) : ctx_sync(ctx, s, msg));
    uint64_t h = divergence_hash_str(path) * 31 + (has_dataset ? divergence_hash_str(dataset) : 0);
    uint64_t in[2] = {h, ~h}, mm[2];
    MPI_Request req;
    DAGR_TRY_MPI(MPI_Iallreduce(in, mm, 2, MPI_UINT64_T, MPI_MAX, ctx_comm(ctx), &req));
    DAGR_TRY_MPI(patient ? ctx_wait_patient(&req) : ctx_wait_request(&req));
    if (mm[0] == h && ~mm[1] == h) return DAGR_OK;
    if (!has_dataset)
        return DAGR_ERR(DAGR_ERR_ARG,
                        "path '%s' differs between ranks (every rank must pass the same)", path);
    return DAGR_ERR(DAGR_ERR_ARG,
                    "path '%s' or dataset '%s' differs between ranks (every rank must pass the "
                    "same)",
                    path, dataset);
}

dagr_status_t io_probe_local(const char *path, const char *who, int *exists) {
    dagr_status_t s = DAGR_OK;
    *exists = 0;
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno != ENOENT) s = DAGR_ERR(DAGR_ERR_IO, "cannot look at '%s': %m", path);
        return s;
    }
    h5_enter();
    htri_t is = H5Fis_hdf5(path);
    if (is == 0)
        s = DAGR_ERR(DAGR_ERR_FORMAT, "'%s' exists and is not an HDF5 file (%s leaves it as it is)",
                     path, who);
    else if (is < 0)
        s = h5_error(DAGR_ERR_IO, "cannot read '%s'", path);
    *exists = is > 0;
    h5_leave();
    return s;
}

dagr_status_t io_probe_file(dagr_ctx_t *ctx, const char *path, const char *who, int *exists) {
    dagr_status_t s = dagr_rank(ctx) == 0 ? io_probe_local(path, who, exists) : DAGR_OK;
    DAGR_TRY(da_agree(ctx, s));
    DAGR_TRY_MPI(MPI_Bcast(exists, 1, MPI_INT, 0, ctx_comm(ctx)));
    return DAGR_OK;
}

/* A failure on some ranks only (which MPI-IO does not produce for a collective open in
 * practice) would leave the others' file open. */
dagr_status_t io_open_file(dagr_ctx_t *ctx, const char *path, io_mode_t mode, hid_t *file) {
    dagr_status_t s = DAGR_OK;
    h5_enter();
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_fapl_mpio(fapl, ctx_comm(ctx), MPI_INFO_NULL) < 0) {
        s = h5_error(DAGR_ERR_IO, "cannot set up MPI-IO access to '%s'", path);
    } else {
        if (mode == IO_CREATE)
            *file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
        else
            *file = H5Fopen(path, mode == IO_UPDATE ? H5F_ACC_RDWR : H5F_ACC_RDONLY, fapl);
        if (*file < 0)
            s = h5_error(DAGR_ERR_IO, "cannot %s '%s'",
                         mode == IO_CREATE   ? "create"
                         : mode == IO_UPDATE ? "open for update"
                                             : "open",
                         path);
    }
    if (fapl >= 0) H5Pclose(fapl);
    h5_leave();
    return da_agree(ctx, s);
}

dagr_status_t io_close(dagr_ctx_t *ctx, hid_t dset, hid_t file, const char *path) {
    dagr_status_t s = DAGR_OK;
    h5_enter();
    if (dset >= 0 && H5Dclose(dset) < 0)
        s = h5_error(DAGR_ERR_IO, "cannot close a dataset of '%s'", path);
    if (file >= 0 && H5Fclose(file) < 0 && s == DAGR_OK)
        s = h5_error(DAGR_ERR_IO, "cannot close '%s'", path);
    h5_leave();
    return da_agree(ctx, s);
}
