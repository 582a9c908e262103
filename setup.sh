#!/usr/bin/env bash
# Installs walrusfs and what it needs on a fresh Debian/Ubuntu machine, then either
# mounts a filesystem or runs the test suite. The README's quick start and CI both go
# through here, so a missing install step shows up as a red CI run.
#
#   ./setup.sh mount MOUNTPOINT   install, create a filesystem if there is none, mount it
#   ./setup.sh test [PYTEST-ARGS] install, then run the whole test suite
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${WALRUSFS_VENV:-$here/.venv}"

usage() {
    sed -n '2,7p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_system() {
    # libisal2: Intel ISA-L, which computes the devnet's parity shares 30 times faster than zfec.
    local pkgs=(fuse3 libfuse3-dev pkg-config gcc python3 python3-venv python3-dev rsync attr acl libisal2)
    local missing=()
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "setup: installing system packages: ${missing[*]}"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

install_python() {
    if [ ! -x "$venv/bin/python" ]; then
        echo "setup: creating virtualenv $venv"
        python3 -m venv "$venv"
    fi
    "$venv/bin/python" -m pip install -q --upgrade pip >/dev/null
    echo "setup: installing walrusfs into $venv"
    "$venv/bin/python" -m pip install -q -c "$here/constraints.txt" -e "$here[test,dev]"
    # mount(8) looks for mount.<type> in /sbin; this makes `mount -t walrusfs` and fstab work.
    if [ "$(id -u)" -eq 0 ]; then
        for tool in mount.walrusfs umount.walrusfs mkfs.walrusfs; do
            ln -sf "$venv/bin/$tool" "/usr/sbin/$tool"
        done
        # umount(8) runs umount.<type> for mounts of that type: plain umount waits, too.
        ln -sf "$venv/bin/umount.walrusfs" /usr/sbin/umount.fuse.walrusfs
    fi
}

cmd="${1:-}"
case "$cmd" in
    mount)
        [ $# -eq 2 ] || { usage; exit 2; }
        install_system
        install_python
        exec "$venv/bin/python" -m walrusfs.cli.quickstart "$2"
        ;;
    test)
        shift
        install_system
        install_python
        cd "$here"
        exec "$venv/bin/python" -m pytest "$@"
        ;;
    -h|--help|help)
        usage
        ;;
    *)
        usage
        exit 2
        ;;
esac
