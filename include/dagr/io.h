/* dagr — DArrays in HDF5 files, checkpoint and resume (parallel HDF5 over MPI-IO).
 *
 * Files are ordinary HDF5: an m x n DArray is a 2-D dataset of m rows and n columns, in the
 * usual C (row-major) order of HDF5, chunked by tile, that h5py, h5dump or any HDF5 program
 * reads as a plain matrix (A[i, j] is element (i, j)). float, double and int64 arrays are
 * stored as little-endian IEEE 32- and 64-bit floats and 64-bit signed integers.
 *
 * Both calls are Collective (see dagr/task.h): every rank passes the same path and dataset
 * name (checked: a mismatch is DAGR_ERR_ARG on every rank). The path must name the same file
 * on every rank (a shared file system across nodes). Each tile is written or read by a task on
 * the rank owning it, so tiles move in parallel with each other and with other work; the call
 * then waits for every task inserted so far (as dagr_wait_all) and closes the file, so the
 * file is complete and closed when it returns. An error found while writing or reading a tile
 * is returned on every rank; an error of an earlier task is returned as dagr_wait_all would. */
#ifndef DAGR_IO_H
#define DAGR_IO_H

#include <stdint.h>

#include <dagr/darray.h>
#include <dagr/status.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Writes A (its latest contents: the tasks already inserted that write A come first) as the
 * dataset `dataset` of the HDF5 file `path`. The file is created if it does not exist and
 * opened for update if it does (other datasets in it are kept); `dataset` may name groups
 * ("run1/A"), which are created as needed. A dataset of that name already there is overwritten
 * in place when it has A's shape and element type, and refused otherwise. A may be a view.
 * Collective. Errors: DAGR_ERR_ARG (A, path or dataset NULL or empty, names that differ
 * between ranks, an existing dataset of another shape or type), DAGR_ERR_FORMAT (path exists
 * but is not an HDF5 file: it is left untouched), DAGR_ERR_IO (the file cannot be created,
 * opened or written, with HDF5's reason), and those of dagr_wait_all. */
DAGR_API dagr_status_t dagr_darray_save(const dagr_darray_t *A, const char *path,
                                        const char *dataset);

/* Creates *out from the dataset `dataset` of the HDF5 file `path`, with mb x nb tiles on grid
 * (as dagr_darray_create). A 2-D dataset of m rows and n columns gives an m x n array; a 1-D
 * dataset of m elements gives an m x 1 array. The element type follows the file: 32-bit floats
 * load as DAGR_FLOAT, other floats as DAGR_DOUBLE, integers (signed of any size, unsigned of
 * up to 32 bits) as DAGR_INT64. mb = 0 or nb = 0 takes that tile side from the dataset's
 * chunks (512 for a dataset that is not chunked), so an array saved by dagr loads with its
 * own tiles. Collective. Errors: DAGR_ERR_ARG (ctx, path, dataset or out NULL, empty or
 * differing names, mb or nb < 0, a bad grid as in dagr_darray_create), DAGR_ERR_IO (the file
 * cannot be opened or read, with HDF5's reason), DAGR_ERR_FORMAT (no such dataset, or one of
 * another rank or element type: strings, compounds, unsigned 64-bit integers), DAGR_ERR_NOMEM,
 * and those of dagr_wait_all. On error *out is left NULL. */
DAGR_API dagr_status_t dagr_darray_load(dagr_ctx_t *ctx, const char *path, const char *dataset,
                                        int64_t mb, int64_t nb, dagr_grid_t grid,
                                        dagr_darray_t **out);

/* ------------------------------------------------------------------------------------------
 * Checkpoint and resume
 *
 * A checkpoint is the latest contents of every live data handle of the context: the tiles of
 * every DArray, the plain and attached handles (not queues), in the order they were created.
 * The way to use it, in a program that every rank runs from the start after a crash or a
 * requeue:
 *
 *     create the DArrays and handles, and fill them with the initial state;
 *     dagr_resume(ctx, "run.ckpt");   <- no file: nothing happens; else the state is restored
 *     read the step counter (kept in a handle, e.g. a 1x1 int64 DArray) from the state;
 *     for (; step < nsteps; step++) { ...; if (step % 100 == 0) dagr_checkpoint(...); }
 *
 * Handles are matched by creation order and shape, not by rank: a run may resume on another
 * number of ranks or another grid, as long as it has created the same data, in the same
 * order, when it calls dagr_resume as when it called dagr_checkpoint.
 *
 * The file is HDF5 (attributes dagr_checkpoint = 1, ranks, tasks, handles; dataset /handles:
 * rows, columns, element size and a 64-bit checksum per handle; dataset /data: the contents,
 * packed column-major, one handle after the other). It is written as "<path>.tmp", flushed to
 * disk by every rank, and only then renamed to path: a crash or an error while writing leaves
 * the previous checkpoint as it was. Both calls are Collective, take the same path on every
 * rank (a file on a shared file system), and wait for every task inserted before them; each
 * handle moves in a task on its owner, so the handles are written and read in parallel.
 * ---------------------------------------------------------------------------------------- */

/* Writes a checkpoint of every live handle to path (replacing an earlier checkpoint there
 * once the new one is complete). Collective. Errors: DAGR_ERR_ARG (ctx or path NULL, path
 * empty or different between ranks), DAGR_ERR_FORMAT (path exists and is not a dagr
 * checkpoint: it is left as it is), DAGR_ERR_IO (the file cannot be written, flushed or
 * renamed, with the reason), DAGR_ERR_NOMEM, and those of dagr_wait_all (a task that failed
 * before the checkpoint is reported, and nothing is written). On any error the file at path is
 * as it was. */
DAGR_API dagr_status_t dagr_checkpoint(dagr_ctx_t *ctx, const char *path);

/* The asynchronous form of dagr_checkpoint: inserts the writes as tasks that read the
 * current versions of the handles, and returns; computation goes on while they write (a task
 * that overwrites a handle waits for that handle's write only). A thread of dagr's on every
 * rank then flushes the file to disk and renames it to path as soon as every write ended;
 * until then path holds the previous checkpoint. The next dagr_wait_all (dagr_finalize's
 * included) waits for that end and returns its errors (the writes', the flush's, the
 * rename's; a failed checkpoint leaves the previous file as it was). At most one is in
 * flight: a checkpoint call of either form, dagr_resume, dagr_darray_save and
 * dagr_darray_load first wait for the one in flight to end. Errors found at the call (the
 * arguments; a path that differs between ranks, holds a file that is not a checkpoint, or
 * whose directory cannot take a new file) are returned at once, as by dagr_checkpoint; the
 * file itself is created and opened by dagr's thread, and a failure there comes at the next
 * wait. The call waits for the other ranks only in those checks (two collectives). With
 * handles whose size tasks decide (dagr_data_create_dynamic), the call waits for their
 * writers first: their sizes lay out the file. Collective. */
DAGR_API dagr_status_t dagr_checkpoint_async(dagr_ctx_t *ctx, const char *path);

/* Restores every live handle from the checkpoint at path. No file at path is a fresh start:
 * DAGR_OK, and nothing changes. Collective. Errors: DAGR_ERR_ARG (as dagr_checkpoint),
 * DAGR_ERR_FORMAT (path is not a dagr checkpoint, is of another format, does not hold the live
 * handles (another count, or a handle of another shape, named in the message: nothing is
 * restored), or is damaged: a checksum or size that does not match, after which the handles
 * restored so far keep their new contents and the others their old), DAGR_ERR_IO,
 * DAGR_ERR_NOMEM, and those of dagr_wait_all. */
DAGR_API dagr_status_t dagr_resume(dagr_ctx_t *ctx, const char *path);

#ifdef __cplusplus
}
#endif
#endif
