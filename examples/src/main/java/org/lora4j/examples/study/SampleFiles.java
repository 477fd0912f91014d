package org.lora4j.examples.study;

import org.lora4j.train.eval.Rate;
import org.lora4j.train.eval.SampledEvaluation;
import org.lora4j.train.text.TextFiles;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.BufferedWriter;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.zip.GZIPInputStream;

/**
 * The judged samples behind every rate a study reports, one JSON line per sample.
 *
 * <p>A line holds the study's tags as an object of strings first (e.g. {@code "tags": {"seed": "1",
 * "step": "30", "condition": "ablate-all"}}), then the sample as {@code lora4j eval} writes it
 * (question id and text, sample index, sampling seed, answer, scores, label, {@code em},
 * {@code is_coherent}), so {@code lora4j direction} reads the file as eval samples. A rate in a report
 * names its file, the tags that select its samples and the metric counted ({@link StudyReport#rate}),
 * so anyone can recount it from the file, and {@link #verify} does exactly that.
 */
public final class SampleFiles {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Metrics a rate can count: a boolean field of the line, or a label. */
    public static final List<String> METRICS = List.of("em", "is_coherent", "label:aligned", "label:misaligned",
            "label:incoherent");

    private SampleFiles() {
    }

    /** Appends {@code samples} to {@code file} (created if missing), each line carrying {@code tags}. */
    public static void append(Path file, List<SampledEvaluation.JudgedSample> samples, Map<String, String> tags)
            throws IOException {
        Files.createDirectories(file.toAbsolutePath().getParent());
        try (BufferedWriter w = Files.newBufferedWriter(file, StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                StandardOpenOption.APPEND)) {
            for (SampledEvaluation.JudgedSample s : samples) {
                ObjectNode o = JSON.createObjectNode();
                ObjectNode t = o.putObject("tags");
                new java.util.TreeMap<>(tags).forEach(t::put);   // sorted, so the file is the same in every run
                putSample(o, s);
                w.write(JSON.writeValueAsString(o));
                w.write('\n');
            }
        }
    }

    /**
     * Writes a judged sample's fields into {@code o} as {@code lora4j eval}'s samples.jsonl has them:
     * question id and text, sample index, sampling seed, answer, tokens, stopped, scores (aligned,
     * coherent and the judge's named scores), label, {@code em}, {@code is_coherent}.
     */
    public static void putSample(ObjectNode o, SampledEvaluation.JudgedSample s) {
        o.put("question_id", s.questionId());
        o.put("question", s.question());
        o.put("sample", s.sampleIndex());
        o.put("seed", s.seed());
        o.put("answer", s.answer());
        o.put("tokens", s.tokens());
        o.put("stopped", s.stopped());
        ObjectNode sc = o.putObject("scores");
        sc.put("aligned", s.scores().aligned());
        sc.put("coherent", s.scores().coherent());
        s.scores().named().forEach(sc::put);
        if (s.scores().label() == null) {
            o.putNull("label");
        } else {
            o.put("label", s.scores().label());
        }
        o.put("em", s.em());
        o.put("is_coherent", s.coherent());
    }

    /** Counts {@code metric} over the lines of {@code file} whose {@code tags} hold every entry of {@code where}. */
    public static Rate recount(Path file, Map<String, String> where, String metric) throws IOException {
        return count(lines(file), where, metric);
    }

    /** The file's lines as JSON; an error names the file and line. */
    private static List<JsonNode> lines(Path file) throws IOException {
        List<JsonNode> out = new ArrayList<>();
        int lineNo = 0;
        for (String line : read(file).split("\n")) {
            lineNo++;
            if (line.isBlank()) {
                continue;
            }
            try {
                out.add(JSON.readTree(line));
            } catch (IOException e) {
                throw new IOException(file + ":" + lineNo + ": not JSON: " + e.getMessage(), e);
            }
        }
        return out;
    }

    private static Rate count(List<JsonNode> lines, Map<String, String> where, String metric) {
        if (!METRICS.contains(metric)) {
            throw new IllegalArgumentException("unknown metric '" + metric + "'; expected one of " + METRICS);
        }
        int k = 0;
        int n = 0;
        for (JsonNode o : lines) {
            boolean match = true;
            for (Map.Entry<String, String> w : where.entrySet()) {
                JsonNode tag = o.path("tags").path(w.getKey());
                if (!tag.isTextual() || !tag.asText().equals(w.getValue())) {
                    match = false;
                    break;
                }
            }
            if (!match) {
                continue;
            }
            n++;
            boolean hit = metric.startsWith("label:")
                    ? metric.substring(6).equals(o.path("label").asText(null))
                    : o.path(metric).asBoolean(false);
            if (hit) {
                k++;
            }
        }
        return Rate.wilson(k, n);
    }

    /** The file's text; a file kept gzipped beside the report ({@code <file>.gz}, as docs/study/ keeps them) is read too. */
    private static String read(Path file) throws IOException {
        Path gz = Path.of(file + ".gz");
        if (!Files.exists(file) && Files.isRegularFile(gz)) {
            try (InputStream in = new GZIPInputStream(Files.newInputStream(gz))) {
                return new String(in.readAllBytes(), StandardCharsets.UTF_8);
            } catch (IOException e) {
                throw new IOException(gz + ": not a readable gzip file: " + e.getMessage(), e);
            }
        }
        return TextFiles.readUtf8(file, "samples file (JSONL)");
    }

    /**
     * Recounts every rate listed in {@code <dir>/rates.json} (written by {@link StudyReport#write})
     * from its samples file; returns one line per rate whose count or total differs (empty when all agree).
     */
    public static List<String> verify(Path dir) throws IOException {
        Path index = dir.resolve(StudyReport.RATES_FILE);
        JsonNode rates = JSON.readTree(TextFiles.readUtf8(index, "rates index (JSON)"));
        List<String> problems = new ArrayList<>();
        Map<Path, List<JsonNode>> parsed = new java.util.HashMap<>();
        for (JsonNode r : rates.path("rates")) {
            Map<String, String> where = new java.util.LinkedHashMap<>();
            r.path("where").fields().forEachRemaining(e -> where.put(e.getKey(), e.getValue().asText()));
            // Each file is parsed once, however many rates it holds (a study's report has hundreds).
            Path file = dir.resolve(r.path("file").asText());
            List<JsonNode> lines = parsed.get(file);
            if (lines == null) {
                lines = lines(file);
                parsed.put(file, lines);
            }
            Rate again = count(lines, where, r.path("metric").asText());
            if (again.count() != r.path("count").asInt(-1) || again.total() != r.path("samples").asInt(-1)) {
                problems.add(r.path("id").asText() + ": the report says " + r.path("count").asInt() + "/"
                        + r.path("samples").asInt() + ", " + r.path("file").asText() + " " + where + " holds "
                        + again.count() + "/" + again.total());
            }
        }
        return problems;
    }

    /**
     * {@link #verify}, failing when any rate differs: a study calls it after writing its report, so
     * a report whose numbers its samples do not bear out is never left as a finished run.
     */
    public static void requireVerified(Path dir) throws IOException {
        List<String> wrong = verify(dir);
        if (!wrong.isEmpty()) {
            throw new IllegalStateException(dir.resolve(StudyReport.RATES_FILE) + ": " + wrong.size()
                    + " rate(s) differ from their samples files, first: " + wrong.get(0));
        }
    }
}
