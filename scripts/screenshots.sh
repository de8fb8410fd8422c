#!/bin/bash
# Regenerate the GUI screenshots in docs/img/: the real Wireshark (Qt) on a
# virtual X display, with the built plugin and the SMTP-over-HTTP profile.
#
#   scripts/screenshots.sh [--plugin FILE] [--capture PCAP] [--frame N]
#
#   --plugin FILE   default build/plugin/epan/smtp-over-http.so (the profile
#                   comes from the same build tree: build/profile/SMTP-over-HTTP)
#   --capture PCAP  default captures/connect_ip_squid.pcap
#   --frame N       frame whose detail tree is shown (default 6, the CONNECT)
#
# Writes docs/img/gui-packet-list.png (coloured packet list, our subtree
# expanded) and docs/img/gui-expert.png (Analyze > Expert Information), both
# 1280x800. Needs wireshark-qt, xvfb, xdotool, x11-utils, imagemagick and
# pngcrush; as root it installs what is missing with apt-get.
#
# Wireshark ignores personal plugins when the real user is root, so as root
# Wireshark runs as uid/gid 65534 from a temporary HOME holding a copy of the
# plugin, the profile and the capture (as another user: as that user).
# The key presses and clicks assume the 1280x800 window this script sets.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/personal-plugins.sh"

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
plugin=$root/build/plugin/epan/smtp-over-http.so
capture=$root/captures/connect_ip_squid.pcap
frame=6
while [ $# -gt 0 ]; do
    case $1 in
        --plugin) plugin=$2; shift 2 ;;
        --capture) capture=$2; shift 2 ;;
        --frame) frame=$2; shift 2 ;;
        -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "screenshots.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done
out=$root/docs/img
log() { echo "screenshots.sh: $*"; }
die() { echo "screenshots.sh: $*" >&2; exit 1; }

[ -f "$plugin" ] || die "plugin not found: $plugin (build it first: cmake -S . -B build && cmake --build build -j2)"
# The profile the build assembled next to the plugin (profile/CMakeLists.txt).
profile=$(cd "$(dirname "$plugin")/../.." && pwd)/profile/SMTP-over-HTTP
[ -f "$profile/colorfilters" ] || die "no assembled profile at $profile (run cmake for that build tree)"
[ -f "$capture" ] || die "capture not found: $capture"

# -- packages -----------------------------------------------------------------
packages=(wireshark-qt xvfb xdotool x11-utils imagemagick pngcrush)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' \
        || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        die "missing packages: ${missing[*]}; install them with:
  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
    fi
    log "installing: ${missing[*]}"
    echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections
    export DEBIAN_FRONTEND=noninteractive
    timeout 1800 apt-get update
    timeout 3600 apt-get install -y --no-install-recommends "${missing[@]}"
fi

# -- temporary home: plugin, profile, capture -----------------------------------
work=$(mktemp -d)
chmod 755 "$work"
home=$work/home
xvfb_pid=
ws_pid=
cleanup() {
    local rc=$?
    set +e
    if [ -n "$ws_pid" ]; then kill "$ws_pid" 2>/dev/null; wait "$ws_pid" 2>/dev/null; fi
    if [ -n "$xvfb_pid" ]; then kill "$xvfb_pid" 2>/dev/null; wait "$xvfb_pid" 2>/dev/null; fi
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT

pdir=$(personal_plugin_dir "$home")
mkdir -p "$pdir" "$home/.config/wireshark/profiles" "$home/captures" "$home/run"
cp "$plugin" "$pdir/smtp-over-http.so"
cp -r "$profile" "$home/.config/wireshark/profiles/"
cap=$home/captures/$(basename "$capture")
cp "$capture" "$cap"
chmod -R a+rX "$work"
chmod 700 "$home/run"
as_user=()
if [ "$(id -u)" -eq 0 ]; then
    chown -R 65534:65534 "$home"
    as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups)
fi

# -- virtual display ---------------------------------------------------------------
display=
for n in $(seq 90 130); do
    if [ ! -e "/tmp/.X$n-lock" ] && [ ! -e "/tmp/.X11-unix/X$n" ]; then display=:$n; break; fi
done
[ -n "$display" ] || die "no free X display number"
Xvfb "$display" -screen 0 1280x800x24 -nolisten tcp -ac >"$work/xvfb.log" 2>&1 &
xvfb_pid=$!
export DISPLAY=$display
for _ in $(seq 50); do xdpyinfo >/dev/null 2>&1 && break; sleep 0.2; done
xdpyinfo >/dev/null 2>&1 || die "Xvfb did not start: $(cat "$work/xvfb.log")"
log "Xvfb on $display (pid $xvfb_pid)"

# -- Wireshark ------------------------------------------------------------------
timeout 600 "${as_user[@]}" env -i HOME="$home" PATH=/usr/bin:/bin LC_ALL=C.UTF-8 \
    DISPLAY="$display" XDG_RUNTIME_DIR="$home/run" QT_QPA_PLATFORM=xcb \
    wireshark -C SMTP-over-HTTP -o gui.layout_content_3:NONE \
              -r "$cap" -Y smtp-over-http -g "$frame" >"$work/wireshark.log" 2>&1 &
ws_pid=$!
log "wireshark (pid $ws_pid)"

win=
for _ in $(seq 120); do
    win=$(xdotool search --onlyvisible --name "^$(basename "$cap")" 2>/dev/null | head -1 || true)
    [ -n "$win" ] && break
    kill -0 "$ws_pid" 2>/dev/null || die "wireshark exited: $(cat "$work/wireshark.log")"
    sleep 0.5
done
[ -n "$win" ] || die "no Wireshark main window after 60 s: $(cat "$work/wireshark.log")"
sleep 3                                   # let it finish loading and filtering
xdotool windowmove "$win" 0 0 windowsize "$win" 1280 800
sleep 2

# Packet list up to y=330 (drag the splitter), details below; focus the
# details, go to the last top-level item (our post-dissector's subtree) and
# expand it with its subtrees.
xdotool mousemove 640 435 mousedown 1 mousemove 640 380 mousemove 640 330 mouseup 1
sleep 1
xdotool mousemove 300 345 click 1
sleep 0.5
xdotool key End shift+Right
sleep 1.5
mkdir -p "$out"
import -window root "$work/packet-list.png"

# With the filter on, the first row must wear one of our rules' colours
# (sampled in the Leg column, right of the text).
pixel() { convert "$work/packet-list.png" -format "%[hex:p{$1,$2}]" info: | cut -c1-6; }
first_row=$(pixel 690 120)
log "packet list colour sample: first row #$first_row"

# Analyze > Expert Information: the last item of the Analyze menu.
xdotool mousemove 255 10 click 1
sleep 1
xdotool key Up Return
dlg=
for _ in $(seq 40); do
    dlg=$(xdotool search --onlyvisible --name "Expert Information" 2>/dev/null | head -1 || true)
    [ -n "$dlg" ] && break
    sleep 0.5
done
[ -n "$dlg" ] || die "the Expert Information dialog did not open"
xdotool windowmove "$dlg" 0 0 windowsize "$dlg" 1280 800
sleep 2
# Expand the first group (select its row, Right).
xdotool mousemove 450 41 click 1
sleep 0.5
xdotool key Right
sleep 1
import -window root "$work/expert.png"

for f in packet-list expert; do
    convert "$work/$f.png" -strip "$work/$f-s.png"
    pngcrush -q "$work/$f-s.png" "$out/gui-$f.png" 2>/dev/null || cp "$work/$f-s.png" "$out/gui-$f.png"
    log "wrote docs/img/gui-$f.png ($(stat -c %s "$out/gui-$f.png") bytes)"
done

case $first_row in
    FFA366|FF8FB8|FFE680) log "first row coloured by an SMTP-over-HTTP rule (#$first_row): ok" ;;
    *) die "first row colour #$first_row is none of our rules' (plugin or profile not loaded?)" ;;
esac
