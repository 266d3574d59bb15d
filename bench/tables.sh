#!/bin/bash
# bench/tables.sh CSV - the markdown tables of a bench/run, from its CSV.
# Throughput lines have 14 fields (see report.c), single figures 5.
set -eu
CSV=$1

echo "### Point to point, closed loop"
echo
echo "| server | conns | window | accepted/s | delivered/s | acked/s | frames in/s" \
	"| frames out/s | p50 ms | p99 ms | p99.9 ms | errors |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
# row F1 F2...: the listed fields of a CSV line as a markdown row.
row='function row(s, i, n, f) { n = split(s, f, " "); for (i = 1; i <= n; i++)
	printf "| %s ", $f[i]; print "|" }'
awk -F, "$row"' NF == 14 && $3 == "window" { row("1 4 5 6 7 8 9 10 11 12 13 14") }' "$CSV"
echo
echo "### Point to point, fixed rate (latency from the intended send time)"
echo
echo "| server | offered/s | delivered/s | p50 ms | p99 ms | p99.9 ms | errors |"
echo "|---|---|---|---|---|---|---|"
awk -F, "$row"' NF == 14 && $3 == "rate" { row("1 5 7 11 12 13 14") }' "$CSV"
echo
echo "### Other scenarios"
echo
echo "| server | scenario | figure | value | unit |"
echo "|---|---|---|---|---|"
awk -F, "$row"' NF == 5 { row("1 2 3 4 5") }' "$CSV"
echo
echo "### Against the targets"
echo
awk -F, '
NF == 14 && $3 == "window" { dlv[$1] = $7; fr[$1] = $9 + $10 }
NF == 14 && $3 == "rate" { n[$1]++; rate[$1, n[$1]] = $5; p99[$1, n[$1]] = $12 }
NF == 5 { fig[$1 "/" $2 "/" $3] = $4 }
function show(name, got, want) { printf "| %s | %s | %s |\n", name, got, want }
# The sweep point of server s nearest to r msg/s; 0 when it has none.
function nearest(s, r,   i, best) {
	best = 0
	for (i = 1; i <= n[s]; i++)
		if (best == 0 || (rate[s, i] - r) ^ 2 < (rate[s, best] - r) ^ 2)
			best = i
	return best
}
# The p99 of server s at the sweep point nearest to half of its closed-loop
# peak, then that of each reference at the rate nearest to that one: what the same
# load generator and machine show for servers that do far less.
function half_p99(s, mode,   best, j, k, refs, names) {
	best = nearest(s, dlv[s] / 2)
	if (best == 0)
		return
	show(sprintf("p99 at %s msg/s (about half of peak), %s", rate[s, best], mode),
	     p99[s, best] " ms", "< 1 ms")
	split("relay mosquitto", refs, " ")
	split("the relay,Mosquitto", names, ",")
	for (k = 1; k <= 2; k++) {
		j = nearest(refs[k], rate[s, best])
		if (j > 0)
			show(sprintf("... %s at %s msg/s (reference)", names[k], rate[refs[k], j]),
			     p99[refs[k], j] " ms", "")
	}
}
END {
	print "| target | measured | wanted |"
	print "|---|---|---|"
	m = "vartalapd-durability-offline"
	if (dlv["mosquitto"] > 0) {
		show("p2p delivered/s vs Mosquitto QoS 1, `--durability always`",
		     sprintf("%.2f x", dlv["vartalapd"] / dlv["mosquitto"]), ">= 2 x")
		if (dlv[m] > 0)
			show("p2p delivered/s vs Mosquitto QoS 1, `--durability offline`",
			     sprintf("%.2f x", dlv[m] / dlv["mosquitto"]), ">= 2 x")
	}
	if (fr["relay"] > 0) {
		show("frames/s vs the relay, `always`",
		     sprintf("%.0f %%", 100 * fr["vartalapd"] / fr["relay"]), ">= 50 %")
		if (fr[m] > 0)
			show("frames/s vs the relay, `offline`",
			     sprintf("%.0f %%", 100 * fr[m] / fr["relay"]), ">= 50 %")
	}
	half_p99("vartalapd", "`always`")
	half_p99(m, "`offline`")
	v = "vartalapd/"
	show("idle: user space per connection (Private_Dirty)",
	     fig[v "idle/Private_Dirty per connection"] " B", "<= 1024 B")
	show("durable offline writes", fig[v "offline/durable writes"] " /s", ">= 100,000 /s")
	show("fan-out deliveries into 1,000 members", fig[v "fanout/deliveries"] " /s",
	     ">= 1,000,000 /s")
	if (fig[m "/fanout/deliveries"] != "")
		show("fan-out deliveries into 1,000 members, `offline`",
		     fig[m "/fanout/deliveries"] " /s", ">= 1,000,000 /s")
	show("restart to first WebSocket delivery",
	     fig[v "restart/exec to first WebSocket message delivered"] " ms", "< 1000 ms")
	show("stored messages at restart", fig["vartalapd-restart-fill/offline/messages stored"],
	     "1,000,000")
}' "$CSV"
