# Shell functions shared by the scripts of integration/ (source it; bash). The sourcing
# script defines die MESSAGE.

# free_port: a TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
	local p
	for _ in $(seq 1 100); do
		p=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	die "no free port found"
}
