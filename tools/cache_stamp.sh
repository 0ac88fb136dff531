# Sourced by tools/demo.sh and tools/gpu_check.sh. A cache directory (data,
# encoder) holds a stamp of the settings it was made with; one made with
# other settings stops the script instead of being reused.
#
# check_stamp DIR STAMP_FILE PARAMS HINT: returns 0 when DIR was made with
# PARAMS, 1 when there is no DIR; otherwise exits naming both settings and
# HINT (the variables that choose another directory).
check_stamp() {
    local dir=$1 stamp=$2 params=$3 hint=$4 made
    [[ -e "$dir" ]] || return 1
    made=$(cat "$dir/$stamp" 2>/dev/null || echo 'unknown, or an interrupted run')
    if [[ "$made" != "$params" ]]; then
        echo "$(basename "$0" .sh): $dir was made with other settings ($made)," \
             "not: $params. Delete it or set $hint." >&2
        exit 1
    fi
}
