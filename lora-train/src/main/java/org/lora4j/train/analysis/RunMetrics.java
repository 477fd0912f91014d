package org.lora4j.train.analysis;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The per-step lines of a run's {@code metrics.jsonl}: training loss, gradient norm (before
 * clipping) and, on the steps that evaluated, the held-out loss. Values absent from a line are NaN.
 *
 * @param steps    optimizer steps, increasing
 * @param loss     training loss per step
 * @param gradNorm global gradient norm per step, before clipping
 * @param evalLoss held-out loss, NaN on steps without evaluation
 */
public record RunMetrics(int[] steps, double[] loss, double[] gradNorm, double[] evalLoss) {
    private static final Logger log = LoggerFactory.getLogger(RunMetrics.class);
    /** The file a run writes, in its directory. */
    public static final String FILE = "metrics.jsonl";

    public RunMetrics {
        if (loss.length != steps.length || gradNorm.length != steps.length || evalLoss.length != steps.length) {
            throw new IllegalArgumentException("one value per step: " + steps.length + " steps, " + loss.length + " losses, "
                    + gradNorm.length + " gradient norms, " + evalLoss.length + " eval losses");
        }
        steps = steps.clone();
        loss = loss.clone();
        gradNorm = gradNorm.clone();
        evalLoss = evalLoss.clone();
    }

    /** Whether any step has a held-out loss. */
    public boolean hasEvalLoss() {
        for (double v : evalLoss) {
            if (!Double.isNaN(v)) {
                return true;
            }
        }
        return false;
    }

    /**
     * Reads {@code runDir/metrics.jsonl}; empty when the file does not exist (snapshots copied
     * without it). A last line cut short by a crash is skipped with a warning.
     *
     * @param runId the run the lines must belong to, or null to accept any single run
     * @throws IllegalArgumentException naming the file and line, for a line of another run, a line
     *                                  that does not parse (other than the last), or steps that do not increase
     */
    public static Optional<RunMetrics> read(Path runDir, String runId) throws IOException {
        Path f = runDir.resolve(FILE);
        if (!Files.isRegularFile(f)) {
            return Optional.empty();
        }
        List<String> lines = Files.readAllLines(f, StandardCharsets.UTF_8);
        ObjectMapper mapper = new ObjectMapper();
        List<int[]> stepList = new ArrayList<>();
        List<double[]> values = new ArrayList<>();
        String firstRun = runId;
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i);
            if (line.isBlank()) {
                continue;
            }
            JsonNode n;
            try {
                n = mapper.readTree(line);
            } catch (IOException e) {
                if (i == lines.size() - 1) {
                    log.warn("{} line {}: cut short (a crash mid-write?); skipped", f, i + 1);
                    break;
                }
                throw new IllegalArgumentException(f + " line " + (i + 1) + ": not JSON: " + e.getMessage().lines().findFirst().orElse(""));
            }
            if (n == null || !n.isObject() || !n.path("step").canConvertToInt()) {
                throw new IllegalArgumentException(f + " line " + (i + 1) + ": not a metrics line (no integer \"step\")");
            }
            String id = n.path("run_id").asText("");
            if (firstRun == null) {
                firstRun = id;
            } else if (!firstRun.equals(id)) {
                throw new IllegalArgumentException(f + " line " + (i + 1) + ": a metrics line of run "
                        + (id.isEmpty() ? "(no run id)" : id) + ", expected run " + firstRun + "; runs do not mix");
            }
            int step = n.get("step").asInt();
            if (!stepList.isEmpty() && step <= stepList.get(stepList.size() - 1)[0]) {
                throw new IllegalArgumentException(f + " line " + (i + 1) + ": step " + step + " after step "
                        + stepList.get(stepList.size() - 1)[0] + "; steps must increase");
            }
            stepList.add(new int[]{step});
            values.add(new double[]{number(n, "loss"), number(n, "grad_norm"), number(n, "eval_loss")});
        }
        int m = stepList.size();
        int[] steps = new int[m];
        double[] loss = new double[m];
        double[] grad = new double[m];
        double[] eval = new double[m];
        for (int i = 0; i < m; i++) {
            steps[i] = stepList.get(i)[0];
            loss[i] = values.get(i)[0];
            grad[i] = values.get(i)[1];
            eval[i] = values.get(i)[2];
        }
        return Optional.of(new RunMetrics(steps, loss, grad, eval));
    }

    private static double number(JsonNode n, String key) {
        JsonNode v = n.get(key);
        return v == null || !v.isNumber() ? Double.NaN : v.asDouble();
    }
}
