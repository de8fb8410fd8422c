# Sourced, not run. personal_plugin_dir HOME: the folder tshark loads
# personal epan plugins from when HOME is HOME (…/plugins/<major.minor>/epan
# on Linux), as tshark itself names it, so that scripts need no version.
personal_plugin_dir() {
    local d
    d=$(env -i HOME="$1" PATH=/usr/local/bin:/usr/bin:/bin LC_ALL=C tshark -G folders 2>/dev/null |
        awk -F'\t' '$1 ~ /^Personal Plugins:/ {print $2; exit}')
    case "$d" in
        "$1"/*) echo "$d/epan" ;;
        *) echo "personal_plugin_dir: tshark -G folders names no personal plugin folder under $1" >&2
           return 1 ;;
    esac
}
