# plot.gp - throughput and p99 latency of put against client count, raftbus
# vs etcd, from compare.sh --sweep's CSV. Run by plot.sh, which sets the
# variables csv (input) and png (output).
set datafile separator ","
set terminal pngcairo size 1200,480 font "sans,10"
set output png
set multiplot layout 1,2 title "put, 256-byte values, 3 members on loopback (2 cores)"
set logscale x 2
set xlabel "clients"
set grid
set key top left
set xtics (1, 4, 16, 64, 256)
set xrange [0.8:320]
# Log y: the two systems can differ by a large factor.
set logscale y 10
set ylabel "throughput (puts/s)"
set title "throughput"
plot csv using (strcol(1) eq "raftbus" ? $2 : 1/0):4 skip 1 with linespoints lw 2 pt 7 title "raftbus", \
     csv using (strcol(1) eq "etcd" ? $2 : 1/0):4 skip 1 with linespoints lw 2 pt 5 title "etcd 3.4"
set ylabel "p99 latency (ms)"
set title "p99 latency"
plot csv using (strcol(1) eq "raftbus" ? $2 : 1/0):6 skip 1 with linespoints lw 2 pt 7 title "raftbus", \
     csv using (strcol(1) eq "etcd" ? $2 : 1/0):6 skip 1 with linespoints lw 2 pt 5 title "etcd 3.4"
unset multiplot
