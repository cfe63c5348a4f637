/* dagr — MPI-native task graphs. The umbrella header: include this one. */
#ifndef DAGR_DAGR_H
#define DAGR_DAGR_H

#include <dagr/runtime.h>
#include <dagr/status.h>
#include <dagr/task.h>
#include <dagr/types.h>
#include <dagr/darray.h>
#include <dagr/linalg.h>
#include <dagr/io.h>
#include <dagr/dtable.h>

#define DAGR_VERSION_MAJOR 0
#define DAGR_VERSION_MINOR 1
#define DAGR_VERSION_PATCH 0

#endif
