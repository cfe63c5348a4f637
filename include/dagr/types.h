/* dagr — element types shared by the data structures (DArrays today, DTables next). */
#ifndef DAGR_TYPES_H
#define DAGR_TYPES_H

#include <stddef.h>

#include <dagr/status.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dagr_dtype {
    DAGR_FLOAT = 1,
    DAGR_DOUBLE = 2,
    DAGR_INT64 = 3,
} dagr_dtype_t;

/* Bytes per element of a dtype; 0 for an unknown one. Local. */
DAGR_API size_t dagr_dtype_size(dagr_dtype_t t);

#ifdef __cplusplus
}
#endif
#endif
