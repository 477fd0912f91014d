package org.lora4j.train.elasticity;

import org.lora4j.core.AtomicFiles;
import org.lora4j.train.data.Dataset;
import org.lora4j.train.model.DecoderModel;
import org.lora4j.train.model.PeftModel;
import org.lora4j.train.text.TextFiles;
import org.lora4j.train.text.Tokenizer;
import org.lora4j.train.text.Tokenizers;
import org.lora4j.train.trainer.TrainConfig;
import org.lora4j.train.trainer.Trainer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** The fine-tunes of the protocols: the project's {@link Trainer} in-process, one run directory each. */
final class FineTunes {
    private FineTunes() {
    }

    /** A finished fine-tune: the trained model in memory and its loss per step ({@code [step, loss]}). */
    record Run(DecoderModel model, Tokenizer tokenizer, Path dir, int steps, List<double[]> losses, long examples) {
        double meanLoss() {
            return losses.stream().mapToDouble(l -> l[1]).average().orElse(Double.NaN);
        }

        double finalLoss() {
            return losses.isEmpty() ? Double.NaN : losses.get(losses.size() - 1)[1];
        }
    }

    /**
     * The settings of every fine-tune of a protocol: the caller's, with nothing held out and a
     * single checkpoint at the end (the run is short and restarted whole, never resumed).
     */
    static TrainConfig forProtocol(TrainConfig c) {
        return c.toBuilder().evalFraction(0).evalEvery(0).snapshotEvery(0).checkpointEvery(0).keepCheckpoints(1)
                .earlyStopSteps(0).build();
    }

    /**
     * The optimizer steps {@code c} takes on {@code examples} examples: its max_steps when set, else
     * its epochs over padded batches. The protocols write it into both directions' configs, so a
     * direction whose data packs into more rows still takes the same steps.
     */
    static int steps(TrainConfig c, int examples) {
        if (c.maxSteps() > 0) {
            return c.maxSteps();
        }
        int batches = (examples + c.batchSize() - 1) / c.batchSize();
        return Math.max(1, (int) Math.ceil((double) c.epochs() * batches / c.gradAccum()));
    }

    /** Fine-tunes the model in {@code modelDir} on {@code data} into {@code runDir}. */
    static Run train(Path modelDir, Path data, TrainConfig config, Path runDir, Map<String, Object> provenance)
            throws IOException {
        Tokenizer tok = Tokenizers.load(modelDir);
        Dataset d = Dataset.load(data, tok);   // full sequences: the trainer applies max_length
        DecoderModel model = DecoderModel.load(modelDir);
        Trainer trainer = new Trainer(model, tok, config, d, null, runDir);   // attaches config.lora()
        trainer.putProvenance("base_model", modelDir.toString());
        provenance.forEach(trainer::putProvenance);
        trainer.setProgress(false);
        Trainer.Result r = trainer.run();
        return new Run(model, tok, runDir, r.steps(), readLosses(runDir.resolve("metrics.jsonl")), d.size());
    }

    /** The training loss of every step, from the run's metrics.jsonl. */
    static List<double[]> readLosses(Path metrics) throws IOException {
        ObjectMapper json = new ObjectMapper();
        List<double[]> out = new ArrayList<>();
        for (String line : Files.readAllLines(metrics)) {
            if (!line.isBlank()) {
                JsonNode n = json.readTree(line);
                out.add(new double[]{n.path("step").asInt(), n.path("loss").asDouble(Double.NaN)});
            }
        }
        return out;
    }

    /**
     * The trained model as a plain model directory (an adapter is merged into its base weights
     * first), with the tokenizer of {@code tokenizerFrom}: the next stage of a protocol starts from it.
     */
    static void saveModel(Run run, Path tokenizerFrom, Path dir) throws IOException {
        if (!run.model().isFullFinetune()) {
            new PeftModel(run.model()).mergeAdapter();
        }
        run.model().save(dir);
        org.lora4j.train.text.Tokenizers.copy(tokenizerFrom, dir);   // tokenizer.json and tokenizer_config.json
    }

    /** The non-blank lines of a JSONL file, in order (the file's own errors name it and the line). */
    static List<String> lines(Path file, String what) throws IOException {
        List<String> out = new ArrayList<>();
        TextFiles.forEachLine(file, what, null, (number, offset, line) -> {
            if (!line.isBlank()) {
                out.add(line);
            }
        });
        return out;
    }

    static void writeLines(Path file, List<String> lines) throws IOException {
        Files.createDirectories(file.getParent());
        AtomicFiles.writeString(file, lines.isEmpty() ? "" : String.join("\n", lines) + "\n");
    }
}
