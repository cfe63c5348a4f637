/* Internal declarations shared by the files of io/: HDF5 under one lock, its errors as dagr
 * statuses, and the collective steps every file operation shares (checking that the ranks
 * name the same file, looking at it, opening and closing it through MPI-IO).
 *
 * HDF5 as Debian builds it is not thread-safe: every HDF5 call, from any thread, is made
 * between h5_enter and h5_leave, which hold one process-wide lock and silence HDF5's own
 * printing of errors (we report them as statuses). */
#ifndef DAGR_IO_IMPL_H
#define DAGR_IO_IMPL_H

#include <hdf5.h>

#include "darray_impl.h"

void h5_enter(void);
void h5_leave(void);

/* Between h5_enter and h5_leave: records "<what>: <HDF5's reason>" as the error (the reason
 * is the innermost error HDF5 recorded, where it was detected), clears HDF5's error stack and
 * returns code. */
dagr_status_t h5_error(dagr_status_t code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Collective, and the call's entry (ctx_sync): path (and dataset, unless it is NULL and
 * `has_dataset` false) must be set and the same on every rank (opening different files
 * collectively would hang). DAGR_ERR_ARG on every rank otherwise. patient: wait asleep
 * (ctx_sync_patient). */
dagr_status_t io_check_names(dagr_ctx_t *ctx, const char *path, const char *dataset,
                             bool has_dataset, bool patient);
/* The same, agreeing also on `mine`, a status of the caller's found before the call (its
 * message the calling thread's last error): one round for both. */
dagr_status_t io_check_names_and(dagr_ctx_t *ctx, const char *path, const char *dataset,
                                 bool has_dataset, bool patient, dagr_status_t mine);

/* Local: looks at path. *exists = 0 (no such file) or 1 (an HDF5 file); anything else there
 * is DAGR_ERR_FORMAT, naming `who`, which leaves it as it is. */
dagr_status_t io_probe_local(const char *path, const char *who, int *exists);
/* Collective: the same by rank 0, for every rank. */
dagr_status_t io_probe_file(dagr_ctx_t *ctx, const char *path, const char *who, int *exists);

/* How io_open_file opens. */
typedef enum io_mode { IO_READ, IO_UPDATE, IO_CREATE } io_mode_t;

/* Collective: opens path on every rank through MPI-IO (IO_CREATE truncates a file there).
 * Returns the same status everywhere. */
dagr_status_t io_open_file(dagr_ctx_t *ctx, const char *path, io_mode_t mode, hid_t *file);

/* Collective: closes dset (if >= 0) and file (if >= 0); DAGR_ERR_IO (agreed) when a close
 * failed, which for a file being written means its last data may not have reached it. */
dagr_status_t io_close(dagr_ctx_t *ctx, hid_t dset, hid_t file, const char *path);

#endif
