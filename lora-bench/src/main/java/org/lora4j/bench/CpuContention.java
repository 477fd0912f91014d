package org.lora4j.bench;

import org.openjdk.jmh.infra.BenchmarkParams;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Locale;

/**
 * Measures how much of the machine's CPU other processes used during each benchmark iteration, from
 * Linux's /proc/stat (all CPUs) and /proc/self/stat (this JVM, every thread, so OpenBLAS and
 * OpenMP workers included). On a 2-core machine shared with builds and test runs, an iteration that
 * shared the cores is slower for reasons that have nothing to do with the code under test;
 * ratios.py drops such iterations instead of averaging them in. Steal time (the hypervisor running
 * someone else on our virtual CPU) counts as contention too, where the kernel reports it.
 *
 * <p>Allocation-free between {@link #open} and {@link #writeLog}: the two files stay open and are
 * re-read into one byte array, and the samples go into preallocated arrays, so the bytes per
 * operation that {@code -prof gc} reports are the benchmark's own.
 */
final class CpuContention {
    private static final int CORES = Runtime.getRuntime().availableProcessors();
    private static final double TICKS_PER_SECOND = 100.0;   // USER_HZ, 100 on every mainstream Linux build
    private static final int MAX_ITERATIONS = 4096;

    private final RandomAccessFile procStat;
    private final RandomAccessFile selfStat;
    private final byte[] buf = new byte[8192];
    private final double[] others = new double[MAX_ITERATIONS];
    private final double[] own = new double[MAX_ITERATIONS];
    private final boolean[] warmup = new boolean[MAX_ITERATIONS];
    private int count;
    private long startNanos;
    private long startBusy;
    private long startSelf;

    private CpuContention(RandomAccessFile procStat, RandomAccessFile selfStat) {
        this.procStat = procStat;
        this.selfStat = selfStat;
    }

    /** Opens /proc, or returns null where it cannot be read (not Linux) or no log is asked for. */
    static CpuContention open() {
        String path = System.getenv("LORA_BENCH_CPU_LOG");
        if (path == null || path.isEmpty()) {
            return null;
        }
        try {
            CpuContention c = new CpuContention(new RandomAccessFile("/proc/stat", "r"),
                    new RandomAccessFile("/proc/self/stat", "r"));
            c.busyTicks();
            c.selfTicks();
            return c;
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    void begin() {
        try {
            startNanos = System.nanoTime();
            startBusy = busyTicks();
            startSelf = selfTicks();
        } catch (IOException e) {
            throw new IllegalStateException("cannot read /proc", e);
        }
    }

    /** Records the shares of all cores' time since {@link #begin}: other processes', and this JVM's. */
    void end(boolean isWarmup) {
        try {
            double capacity = (System.nanoTime() - startNanos) / 1e9 * TICKS_PER_SECOND * CORES;
            long busy = busyTicks() - startBusy;
            long self = selfTicks() - startSelf;
            if (count < MAX_ITERATIONS) {
                others[count] = Math.max(0, busy - self) / capacity;
                own[count] = self / capacity;
                warmup[count] = isWarmup;
                count++;
            }
        } catch (IOException e) {
            throw new IllegalStateException("cannot read /proc", e);
        }
    }

    /**
     * Appends one line per iteration to LORA_BENCH_CPU_LOG: benchmark, params, warmup|measurement,
     * index within its kind, other processes' share of the CPU, this JVM's share.
     */
    void writeLog(BenchmarkParams benchmark) {
        StringBuilder params = new StringBuilder();
        for (String key : benchmark.getParamsKeys()) {
            params.append(params.length() == 0 ? "" : ",").append(key).append('=').append(benchmark.getParam(key));
        }
        StringBuilder lines = new StringBuilder();
        int warmups = 0;
        int measurements = 0;
        for (int i = 0; i < count; i++) {
            int index = warmup[i] ? warmups++ : measurements++;
            lines.append(String.format(Locale.ROOT, "%s\t%s\t%s\t%d\t%.4f\t%.4f%n", benchmark.getBenchmark(), params,
                    warmup[i] ? "warmup" : "measurement", index, others[i], own[i]));
        }
        try {
            Files.writeString(Path.of(System.getenv("LORA_BENCH_CPU_LOG")), lines, StandardCharsets.UTF_8,
                    StandardOpenOption.CREATE, StandardOpenOption.APPEND);
            procStat.close();
            selfStat.close();
        } catch (IOException e) {
            throw new IllegalStateException("cannot write LORA_BENCH_CPU_LOG", e);
        }
    }

    /** user + nice + system + irq + softirq + steal over all CPUs, from /proc/stat's first line. */
    private long busyTicks() throws IOException {
        int len = read(procStat);
        int p = 3;                                  // after "cpu"
        long sum = 0;
        for (int field = 1; field <= 8; field++) {  // user nice system idle iowait irq softirq steal
            while (p < len && buf[p] == ' ') {
                p++;
            }
            long v = 0;
            while (p < len && buf[p] >= '0' && buf[p] <= '9') {
                v = v * 10 + (buf[p++] - '0');
            }
            if (field != 4 && field != 5) {
                sum += v;
            }
        }
        return sum;
    }

    /** utime + stime (fields 14 and 15) of this process, all threads, from /proc/self/stat. */
    private long selfTicks() throws IOException {
        int len = read(selfStat);
        int p = len - 1;
        while (p > 0 && buf[p] != ')') {            // the command name may contain spaces; skip past it
            p--;
        }
        p += 2;                                     // now at field 3
        long sum = 0;
        for (int field = 3; field <= 15; field++) {
            long v = 0;
            while (p < len && buf[p] != ' ') {
                if (field >= 14) {
                    v = v * 10 + (buf[p] - '0');
                }
                p++;
            }
            p++;
            sum += v;
        }
        return sum;
    }

    private int read(RandomAccessFile f) throws IOException {
        f.seek(0);
        int len = 0;
        int n;
        while (len < buf.length && (n = f.read(buf, len, buf.length - len)) > 0) {
            len += n;
        }
        return len;
    }
}
