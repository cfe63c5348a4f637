#!/usr/bin/env bash
# Installs the Debian packages dagr needs to build and test, and only those that are missing.
#
#   bash scripts/deps.sh          # or: source scripts/deps.sh (defines and runs dagr_deps)
#
# Works on a fresh Debian 12 as root with no standard input (CI). As another user it uses
# sudo (non-interactively) when present; otherwise it prints the apt-get line to run and
# fails. Set DAGR_SKIP_DEPS=1 to skip the check entirely (e.g. on a machine without dpkg).
#
# Note: these packages pull in OpenMPI as well, and then plain mpiexec/mpicc are OpenMPI's.
# dagr builds against MPICH; launch with mpiexec.mpich (or $MPIEXEC).

DAGR_DEB_PACKAGES=(
    mpich libmpich-dev libhdf5-mpich-dev hdf5-tools libscalapack-mpich-dev
    libopenblas-dev liblapacke-dev libcriterion-dev meson ninja-build pkg-config
    libpmix-dev python3 graphviz gnuplot-nox slurm-wlm munge openmpi-bin scalapack-mpi-test
    sqlite3 python3-h5py
)

# Prints the packages of DAGR_DEB_PACKAGES that dpkg does not report as installed.
dagr_deps_missing() {
    local p status
    for p in "${DAGR_DEB_PACKAGES[@]}"; do
        status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
        case "$status" in
        ii*) ;;
        *) printf '%s\n' "$p" ;;
        esac
    done
}

# True when apt has a candidate version for every package given (i.e. the package lists
# are present and know them), so that "apt-get update" can be skipped.
dagr_deps_apt_knows() {
    local p cand
    for p in "$@"; do
        cand=$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2; exit}')
        if [ -z "$cand" ] || [ "$cand" = "(none)" ]; then
            return 1
        fi
    done
    return 0
}

dagr_deps() {
    if [ "${DAGR_SKIP_DEPS:-0}" = 1 ]; then
        echo "deps: DAGR_SKIP_DEPS=1, not checking packages"
        return 0
    fi
    if ! command -v dpkg-query >/dev/null 2>&1; then
        echo "deps: dpkg-query not found (not Debian?); install the equivalent of:" >&2
        echo "  ${DAGR_DEB_PACKAGES[*]}" >&2
        echo "deps: or set DAGR_SKIP_DEPS=1 if they are installed" >&2
        return 1
    fi

    local missing
    missing=$(dagr_deps_missing | tr '\n' ' ')
    missing=${missing% }
    if [ -z "$missing" ]; then
        echo "deps: all ${#DAGR_DEB_PACKAGES[@]} packages present"
        return 0
    fi
    echo "deps: missing: $missing"

    local -a sudo_cmd=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo_cmd=(sudo -n)
        else
            echo "deps: not root and no usable sudo; as root, run:" >&2
            echo "  apt-get update && apt-get install -y --no-install-recommends $missing" >&2
            return 1
        fi
    fi

    local -a env_cmd=(env DEBIAN_FRONTEND=noninteractive)
    local -a install=("${sudo_cmd[@]}" "${env_cmd[@]}" apt-get install -y -q
        --no-install-recommends -o Dpkg::Options::=--force-confdef
        -o Dpkg::Options::=--force-confold)
    local updated=0
    # shellcheck disable=SC2086 # $missing is a list of package names
    if ! dagr_deps_apt_knows $missing; then
        echo "deps: apt-get update"
        "${sudo_cmd[@]}" "${env_cmd[@]}" apt-get update -q </dev/null || return 1
        updated=1
    fi
    # shellcheck disable=SC2086
    if ! "${install[@]}" $missing </dev/null; then
        [ "$updated" = 0 ] || return 1
        # Stale package lists (a mirror moved on) are the usual cause: refresh and retry once.
        echo "deps: install failed; apt-get update and retry"
        "${sudo_cmd[@]}" "${env_cmd[@]}" apt-get update -q </dev/null || return 1
        # shellcheck disable=SC2086
        "${install[@]}" $missing </dev/null || return 1
    fi

    missing=$(dagr_deps_missing | tr '\n' ' ')
    if [ -n "${missing% }" ]; then
        echo "deps: still missing after install: $missing" >&2
        return 1
    fi
    echo "deps: installed"
}

# Sourced: define the functions and run the check, returning its status to the caller.
# Executed: run the check and exit with its status.
if [ "${BASH_SOURCE[0]}" != "$0" ]; then
    dagr_deps
    return $?
fi
set -u
dagr_deps
exit $?
