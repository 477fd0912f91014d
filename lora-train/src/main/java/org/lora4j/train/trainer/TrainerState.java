package org.lora4j.train.trainer;

import org.lora4j.core.LoraAdapter;
import org.lora4j.train.model.DecoderModel;
import org.lora4j.train.model.PeftModel;

import java.nio.file.Path;
import java.util.Map;
import java.util.Objects;

/**
 * What a {@link TrainerCallback} sees after a step, named after Hugging Face's {@code TrainerState}
 * and the metrics its Trainer logs: where the run is, the step's metrics, and the model itself, so a
 * callback can evaluate or sample from it.
 *
 * @param globalStep      optimizer steps done (0: before the first step, with the starting weights)
 * @param maxSteps        the run's optimizer steps
 * @param epoch           the pass over the training data (0-based) the step's last batch came from
 * @param trainingEnds    the last call of the run: the final step, or early stopping stopped it here
 *                        (Hugging Face's {@code should_training_stop})
 * @param loss            the step's mean training loss over its targets (NaN at step 0)
 * @param learningRate    the rate the step was taken with (NaN at step 0)
 * @param gradNorm        the global gradient norm before clipping (NaN at step 0)
 * @param evalLoss        the held-out loss when this step evaluated, else null
 * @param tokens          tokens in the step's micro-batches, padding included (0 at step 0)
 * @param tokensPerSecond the step's throughput (NaN at step 0)
 * @param model           the model being trained; a callback may run it (in evaluation mode) but must
 *                        not change its weights
 * @param adapters        the active adapter of every adapted layer, by module path (empty for full fine-tuning)
 * @param runId           the run's id ({@link Trainer#runId()})
 * @param outputDir       the run's output directory, where a callback writes its files
 */
public record TrainerState(int globalStep, int maxSteps, int epoch, boolean trainingEnds, double loss,
                           double learningRate, double gradNorm, Double evalLoss, long tokens,
                           double tokensPerSecond, DecoderModel model, Map<String, LoraAdapter> adapters,
                           String runId, Path outputDir) {
    public TrainerState {
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(adapters, "adapters");
        Objects.requireNonNull(runId, "runId");
        Objects.requireNonNull(outputDir, "outputDir");
    }

    /** The adapter verbs over {@link #model()} (a view: switching adapters off in a callback is the callback's to undo). */
    public PeftModel peftModel() {
        return new PeftModel(model);
    }
}
