package org.lora4j.train.trainer;

import org.lora4j.core.LoraAdapter;
import org.lora4j.core.PeftKeys;
import org.lora4j.core.Safetensors;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Saves every adapter's A and B every {@code every} steps (and at step 0,
 * and at the end of training) to {@code dir/step-N.safetensors}, under PEFT's key names, with the run id in the metadata, for the
 * trajectory metrics ({@link org.lora4j.train.analysis.Snapshots} reads them back).
 */
public final class AdapterSnapshots implements TrainerCallback {
    /** The safetensors metadata key holding the run id. */
    public static final String RUN_ID_KEY = "lora4j_run_id";
    private final Path dir;
    private final int every;
    private final long seed;
    private final String runId;

    /**
     * @param every k >= 1; k = 1 saves every step
     * @param seed  recorded in each file
     * @param runId recorded in each file ({@code lora4j_run_id}), so a reader never mixes two runs
     */
    public AdapterSnapshots(Path dir, int every, long seed, String runId) {
        if (every < 1) {
            throw new IllegalArgumentException("snapshot interval must be >= 1, got " + every);
        }
        this.dir = dir;
        this.every = every;
        this.seed = seed;
        this.runId = java.util.Objects.requireNonNull(runId, "runId");
    }

    @Override
    public void onStep(TrainerState state) throws IOException {
        if (state.adapters().isEmpty()) {
            return;
        }
        if (state.globalStep() % every == 0 || state.trainingEnds()) {
            save(state.globalStep(), state.adapters());   // the end state too, whatever the interval
        }
    }

    /** Saves now, whatever the interval. */
    void save(int step, Map<String, LoraAdapter> adapters) throws IOException {
        Map<String, INDArray> t = new LinkedHashMap<>();
        for (Map.Entry<String, LoraAdapter> e : adapters.entrySet()) {
            t.put(PeftKeys.saved(e.getKey(), PeftKeys.Factor.A), e.getValue().a());
            t.put(PeftKeys.saved(e.getKey(), PeftKeys.Factor.B), e.getValue().b());
        }
        Path file = dir.resolve(String.format("step-%06d.safetensors", step));
        try {
            Files.createDirectories(dir);
            Safetensors.write(file, t, Map.of("lora4j_step", Integer.toString(step), "lora4j_seed", Long.toString(seed),
                    RUN_ID_KEY, runId));
        } catch (IOException e) {
            throw Trainer.naming(file, e);
        }
    }
}
