# git.sh - git init / add / commit / log / gc in the current (empty) folder.
# Dates and identities are fixed, so the final commit id is the checksum.
# usage: bash git.sh COMMITS LINES_FILE
set -e
commits=${1:-30}
src=$2
export HOME=$PWD GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.invalid
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.invalid
export GIT_AUTHOR_DATE='2024-01-01T00:00:00Z' GIT_COMMITTER_DATE='2024-01-01T00:00:00Z'
git init -q -b main repo
cd repo
mkdir d0 d1 d2
for ((c = 0; c < commits; c++)); do
	for ((f = 0; f < 8; f++)); do
		a=$((c * 97 + f * 13 + 1))
		sed -n "$a,$((a + 399))p;$((a + 399))q" "$src" >"d$((f % 3))/f$f.txt"
	done
	git add -A
	git commit -q -m "commit $c"
done
git log --stat --oneline >/dev/null
git log -p -3 >/dev/null
n=$(git rev-list --count HEAD)
git gc -q
echo "git commits=$n checksum=$(git rev-parse HEAD)"
