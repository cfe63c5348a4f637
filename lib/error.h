/* Errors inside dagr: the thread's last error with file and line, and the macros every file
 * uses to set it and pass statuses up. Shared by lib/ and the modules built on it. */
#ifndef DAGR_ERROR_H
#define DAGR_ERROR_H

#include <dagr/status.h>

/* Records "file:line: message" as the thread's last error and returns code. */
dagr_status_t dagr_error_set(dagr_status_t code, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Records an already formatted message verbatim (used for errors agreed across ranks). */
void dagr_error_set_raw(const char *msg);
/* Maps an MPI error code to DAGR_ERR_MPI with MPI's own error string. */
dagr_status_t dagr_error_mpi(int mpi_err, const char *file, int line, const char *call);

#define DAGR_ERR(code, ...) dagr_error_set((code), __FILE__, __LINE__, __VA_ARGS__)
#define DAGR_CHECK(cond, code, ...)                                                                \
    do {                                                                                           \
        if (!(cond)) return DAGR_ERR((code), __VA_ARGS__);                                         \
    } while (0)
#define DAGR_TRY(call)                                                                             \
    do {                                                                                           \
        dagr_status_t try_s_ = (call);                                                             \
        if (try_s_ != DAGR_OK) return try_s_;                                                      \
    } while (0)
#define DAGR_TRY_MPI(call)                                                                         \
    do {                                                                                           \
        int try_e_ = (call);                                                                       \
        if (try_e_ != MPI_SUCCESS) return dagr_error_mpi(try_e_, __FILE__, __LINE__, #call);       \
    } while (0)

#define DAGR_ERRMSG_MAX 512

#endif
