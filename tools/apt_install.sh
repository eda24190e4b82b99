#!/usr/bin/env bash
# Installs Debian packages for tools/setup.sh (as root, or with sudo):
#
#   tools/apt_install.sh PACKAGE...
#
# Debian's haproxy package starts its daemon and enables it at boot; the tests
# start haproxy themselves.  So when haproxy is among the packages, no daemon
# starts during the install (a policy-rc.d that forbids service starts, unless
# the machine has one of its own) and its service is disabled afterwards.  A
# haproxy the machine had before is not touched: this runs only for packages
# that are missing.
set -euo pipefail
[ $# -gt 0 ] || exit 0
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

disable_service() {
    if command -v systemctl >/dev/null 2>&1; then
        if [ -d /run/systemd/system ]; then
            $SUDO systemctl disable --now --quiet "$1.service" || true
        else
            $SUDO systemctl disable --quiet "$1.service" 2>/dev/null || true
        fi
    fi
    if [ -x "/etc/init.d/$1" ] && [ ! -d /run/systemd/system ]; then
        $SUDO "/etc/init.d/$1" stop >/dev/null 2>&1 || true # started if a policy let it
        $SUDO update-rc.d "$1" disable >/dev/null 2>&1 || true
    fi
    echo "apt: installed $1 for the tests and disabled its system service (the tests start their own)"
}

daemons=()
for pkg in "$@"; do
    [ "$pkg" = haproxy ] && daemons+=("$pkg")
done
policy=""
if [ ${#daemons[@]} -gt 0 ] && [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\n# tools/apt_install.sh: no service starts while it installs packages\nexit 101\n' \
        | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    trap '$SUDO rm -f "$policy"' EXIT
fi
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "$@"
if [ -n "$policy" ]; then
    $SUDO rm -f "$policy"
    trap - EXIT
fi
for daemon in ${daemons[@]+"${daemons[@]}"}; do
    disable_service "$daemon"
done
