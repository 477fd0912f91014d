package org.lora4j.train.trainer;

import org.lora4j.core.LoraAdapter;

import java.io.IOException;
import java.util.Map;

/**
 * Called by the {@link Trainer} once before the first step (step 0, with the initial weights) and
 * after every optimizer step, with the adapters as they are then. The built-in
 * {@link AdapterSnapshots} is one; a researcher's own probe (an evaluation every k steps, a
 * direction measured on the fly) is another. Callbacks must not change the weights.
 */
@FunctionalInterface
public interface TrainerCallback {
    /**
     * @param step     optimizer steps done (0 before training)
     * @param adapters the active adapter of every adapted layer, by module path (empty for full fine-tuning)
     * @param loss     the step's training loss (NaN at step 0)
     */
    void onStep(int step, Map<String, LoraAdapter> adapters, double loss) throws IOException;
}
