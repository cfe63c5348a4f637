/* dagr — status codes and error messages.
 *
 * One status enum for the whole API: DAGR_OK is 0, every error is negative and errors are
 * grouped in ranges of ten (argument, memory, MPI, GPU, I/O, format, numerical, divergence,
 * task, internal). The message describing the most recent error is kept per thread and is
 * written once, where the error is first found, with the file and line. Both functions are
 * Local (see dagr/task.h). */
#ifndef DAGR_STATUS_H
#define DAGR_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(DAGR_BUILDING) && defined(__GNUC__)
#define DAGR_API __attribute__((visibility("default")))
#else
#define DAGR_API
#endif

typedef enum dagr_status {
    DAGR_OK = 0,

    DAGR_ERR_ARG = -1,         /* an argument is invalid (NULL, out of range, mismatched) */
    DAGR_ERR_STATE = -2,       /* the call is not valid in the current state */
    DAGR_ERR_UNSUPPORTED = -3, /* valid request this build or machine cannot serve */

    DAGR_ERR_NOMEM = -10, /* memory allocation failed */

    DAGR_ERR_MPI = -20,    /* an MPI call failed, or MPI is unusable as initialised */
    DAGR_ERR_LAUNCH = -21, /* MPI's world is not the job the launcher started (the message
                              names the launcher, the sizes and the fix) */

    DAGR_ERR_GPU = -30, /* a CUDA/cuBLAS call failed */

    DAGR_ERR_IO = -40, /* a file could not be read or written */

    DAGR_ERR_FORMAT = -50, /* a file's contents are malformed or mismatched */

    DAGR_ERR_NUMERICAL = -60, /* generic numerical failure */
    DAGR_ERR_NOT_SPD = -61,   /* matrix not symmetric positive definite */
    DAGR_ERR_SINGULAR = -62,  /* matrix exactly singular */
    DAGR_ERR_NONFINITE = -63, /* the result contains NaN or Inf */

    DAGR_ERR_DIVERGED = -70, /* ranks inserted different task graphs */

    DAGR_ERR_TASK = -80, /* a task body failed (see dagr_last_error for which) */

    DAGR_ERR_INTERNAL = -90, /* a bug in dagr: please report it */
} dagr_status_t;

/* Returns a static, human-readable name for a status ("DAGR_ERR_ARG: invalid argument").
 * Local. Never returns NULL; unknown values give "unknown dagr status". */
DAGR_API const char *dagr_status_str(dagr_status_t s);

/* Returns the message of the last error recorded on the calling thread, e.g.
 * "lib/data.c:88: owner 5 out of range [0, 4)". Local. The string stays valid until the
 * thread's next dagr call; "" when no error has been recorded. */
DAGR_API const char *dagr_last_error(void);

#ifdef __cplusplus
}
#endif
#endif
