/* Status names and the per-thread last-error message. */
#include "lib_impl.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>

static _Thread_local char last_error[DAGR_ERRMSG_MAX];

const char *dagr_status_str(dagr_status_t s) {
    switch (s) {
    case DAGR_OK:
        return "DAGR_OK: success";
    case DAGR_ERR_ARG:
        return "DAGR_ERR_ARG: invalid argument";
    case DAGR_ERR_STATE:
        return "DAGR_ERR_STATE: call not valid in the current state";
    case DAGR_ERR_UNSUPPORTED:
        return "DAGR_ERR_UNSUPPORTED: not supported here";
    case DAGR_ERR_NOMEM:
        return "DAGR_ERR_NOMEM: out of memory";
    case DAGR_ERR_MPI:
        return "DAGR_ERR_MPI: MPI failure";
    case DAGR_ERR_LAUNCH:
        return "DAGR_ERR_LAUNCH: mislaunched job";
    case DAGR_ERR_GPU:
        return "DAGR_ERR_GPU: GPU failure";
    case DAGR_ERR_IO:
        return "DAGR_ERR_IO: input/output failure";
    case DAGR_ERR_FORMAT:
        return "DAGR_ERR_FORMAT: malformed or mismatched file contents";
    case DAGR_ERR_NUMERICAL:
        return "DAGR_ERR_NUMERICAL: numerical failure";
    case DAGR_ERR_NOT_SPD:
        return "DAGR_ERR_NOT_SPD: matrix not positive definite";
    case DAGR_ERR_SINGULAR:
        return "DAGR_ERR_SINGULAR: matrix singular";
    case DAGR_ERR_NONFINITE:
        return "DAGR_ERR_NONFINITE: result not finite (NaN or Inf)";
    case DAGR_ERR_DIVERGED:
        return "DAGR_ERR_DIVERGED: ranks inserted different task graphs";
    case DAGR_ERR_TASK:
        return "DAGR_ERR_TASK: a task failed";
    case DAGR_ERR_INTERNAL:
        return "DAGR_ERR_INTERNAL: internal error in dagr";
    }
    return "unknown dagr status";
}

const char *dagr_last_error(void) {
    return last_error;
}

/* Keeps only the file name: meson passes paths like "../lib/data.c". */
static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

dagr_status_t dagr_error_set(dagr_status_t code, const char *file, int line, const char *fmt, ...) {
    int n = snprintf(last_error, sizeof last_error, "%s:%d: ", base_name(file), line);
    if (n < 0 || (size_t)n >= sizeof last_error) return code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error + n, sizeof last_error - (size_t)n, fmt, ap);
    va_end(ap);
    return code;
}

void dagr_error_set_raw(const char *msg) {
    snprintf(last_error, sizeof last_error, "%s", msg);
}

dagr_status_t dagr_error_mpi(int mpi_err, const char *file, int line, const char *call) {
    char text[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(mpi_err, text, &len);
    return dagr_error_set(DAGR_ERR_MPI, file, line, "%s failed: %s", call, text);
}

double dagr_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
