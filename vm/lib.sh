# vm/lib.sh — shared helpers for the vm/ scripts (sourced, not run).
# The cache dir is shared across clones of the repo: kernels are ~100 MB each to download.
if [[ -n ${PLEDGE_VM_CACHE:-} ]]; then
    VM_CACHE=$PLEDGE_VM_CACHE
elif [[ $(id -u) == 0 ]]; then
    VM_CACHE=/var/cache/pledge-vm
else
    VM_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/pledge-vm
fi
export PLEDGE_VM_CACHE=$VM_CACHE

vm_say() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
vm_die() {
    printf '%s: error: %s\n' "${0##*/}" "$*" >&2
    exit "${VM_DIE_STATUS:-126}"
}
