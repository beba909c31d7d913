# plot.gp - the benchmark's chart: ufuse / kernel ratio per workload, one bar
# per server and cache mode (direct, writethrough, writeback), from latest.dat
# (written by ufuse-bench); the key stands right of the plot.
# usage: gnuplot -e "dat='DIR/latest.dat'; out='DIR/latest.svg'; subtitle='...'" bench/plot.gp
if (!exists("dat")) dat = 'bench/results/latest.dat'
if (!exists("out")) out = 'bench/results/latest.svg'
if (!exists("subtitle")) subtitle = ''
set terminal svg size 1150,640 dynamic noenhanced font "sans,11" background rgb "white"
set output out
set title "ufuse vs Linux kernel FUSE client, same server and options (ratio ufuse / kernel, > 1: ufuse faster)\n".subtitle
set datafile missing '-'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y 2
set yrange [0.0078125:32]
set ytics ("1/128" 0.0078125, "1/32" 0.03125, "1/8" 0.125, "1/4" 0.25, "1/2" 0.5, "1" 1, "2" 2, "4" 4, "8" 8, "16" 16, "32" 32)
set grid ytics
set ylabel "ufuse / kernel"
set xtics rotate by -30 scale 0 font ",10"
set key outside right top
set arrow from graph 0, first 1 to graph 1, first 1 nohead lw 2 lc rgb "black"
plot for [c=2:*] dat using c:xtic(1) title columnheader(c)
