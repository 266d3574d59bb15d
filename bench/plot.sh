#!/bin/bash
# bench/plot.sh CSV DIR - throughput and latency against offered load
# (the fixed-rate p2p runs), one line per server, as PNG files in DIR.
set -eu
CSV=$1
DIR=$2
for s in vartalapd vartalapd-durability-offline relay mosquitto; do
	awk -F, -v s="$s" 'NF == 14 && $3 == "rate" && $1 == s { print $5, $7, $11, $12, $13 }' \
		"$CSV" | sort -n >"$DIR/rate-$s.dat"
done
cd "$DIR"
gnuplot <<'GP'
set terminal pngcairo size 900,540 noenhanced
set datafile missing "?"
set key top left
set grid
set xlabel "offered load, messages/s"

set output "throughput.png"
set title "Point to point: delivered against offered (server on one core)"
set ylabel "delivered messages/s"
plot "rate-vartalapd.dat" using 1:2 with linespoints title "vartalapd", \
     "rate-vartalapd-durability-offline.dat" using 1:2 with linespoints \
         title "vartalapd --durability offline", \
     "rate-relay.dat" using 1:2 with linespoints title "relay (limit)", \
     "rate-mosquitto.dat" using 1:2 with linespoints title "Mosquitto QoS 1", \
     x with lines dashtype 2 title "offered"

set output "latency.png"
set title "Point to point: send-to-delivery latency from the intended send time"
set ylabel "ms"
set logscale y
plot "rate-vartalapd.dat" using 1:4 with linespoints title "vartalapd p99", \
     "rate-vartalapd.dat" using 1:3 with linespoints dashtype 2 title "vartalapd p50", \
     "rate-vartalapd-durability-offline.dat" using 1:4 with linespoints \
         title "vartalapd offline p99", \
     "rate-relay.dat" using 1:4 with linespoints title "relay p99", \
     "rate-mosquitto.dat" using 1:4 with linespoints title "Mosquitto p99", \
     "rate-mosquitto.dat" using 1:3 with linespoints dashtype 2 title "Mosquitto p50"
GP
