# strings.bash - bash string loop: builds, splits and rewrites strings, indexed
# and associative arrays. Everything bash does here goes through malloc.
# usage: bash strings.bash N
n=${1:-20000}
declare -A seen
line="" h=7
for ((i = 0; i < n; i++)); do
	w="w$((i * 7919 % 1000))x$((i % 37))"
	line+="$w "
	if ((${#line} > 400)); then
		read -r -a parts <<<"$line"
		joined="${parts[*]}"
		joined=${joined//x/-}
		last=${parts[${#parts[@]} - 1]}
		seen[$last]=$((${seen[$last]:-0} + ${#parts[@]}))
		line="${joined:0:20}"
	fi
	arr[i % 500]=${w^^}
	h=$(((h * 31 + ${#w} + ${#line}) % 1000000007))
done
for k in "${!seen[@]}"; do
	h=$(((h + ${seen[$k]} * ${#k}) % 1000000007))
done
echo "bash n=$n keys=${#seen[@]} arr=${#arr[@]} checksum=$h"
