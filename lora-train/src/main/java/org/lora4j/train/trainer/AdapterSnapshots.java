package org.lora4j.train.trainer;

import org.lora4j.core.LoraAdapter;
import org.lora4j.core.Safetensors;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Saves every adapter's A and B every {@code every} steps (and at step 0) to
 * {@code dir/step-N.safetensors}, under PEFT's key names, for the trajectory metrics of
 * RESEARCH.md section 2 ({@link org.lora4j.train.analysis.Snapshots} reads them back).
 */
public final class AdapterSnapshots implements TrainerCallback {
    private final Path dir;
    private final int every;
    private final long seed;

    /**
     * @param every k >= 1; k = 1 saves every step
     * @param seed  recorded in each file
     */
    public AdapterSnapshots(Path dir, int every, long seed) {
        if (every < 1) {
            throw new IllegalArgumentException("snapshot interval must be >= 1, got " + every);
        }
        this.dir = dir;
        this.every = every;
        this.seed = seed;
    }

    @Override
    public void onStep(int step, Map<String, LoraAdapter> adapters, double loss) throws IOException {
        if (step % every != 0 || adapters.isEmpty()) {
            return;
        }
        save(step, adapters);
    }

    /** Saves now, whatever the interval (the trainer uses it for the last step). */
    void save(int step, Map<String, LoraAdapter> adapters) throws IOException {
        Map<String, INDArray> t = new LinkedHashMap<>();
        for (Map.Entry<String, LoraAdapter> e : adapters.entrySet()) {
            t.put("base_model.model." + e.getKey() + ".lora_A.weight", e.getValue().a());
            t.put("base_model.model." + e.getKey() + ".lora_B.weight", e.getValue().b());
        }
        Files.createDirectories(dir);
        Safetensors.write(dir.resolve(String.format("step-%06d.safetensors", step)), t,
                Map.of("lora4j_step", Integer.toString(step), "lora4j_seed", Long.toString(seed)));
    }
}
