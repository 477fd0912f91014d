package org.lora4j.train.trainer;

import java.io.IOException;

/**
 * Called by the {@link Trainer} once before the first step (step 0, with the starting weights) and
 * after every optimizer step, after its evaluation and metrics line and before its checkpoint, with
 * the run's {@link TrainerState}. The built-in {@link AdapterSnapshots} and {@link SamplingCallback}
 * are callbacks; a researcher's own probe (an evaluation every k steps, a direction measured on the
 * fly) is another.
 *
 * <p>A callback must leave training as it found it: not change the weights or the adapters, and
 * draw its randomness from its own seeded source. The trainer puts the model back in training mode
 * after the callbacks, so a callback may switch it to evaluation mode to generate.
 */
@FunctionalInterface
public interface TrainerCallback {
    void onStep(TrainerState state) throws IOException;
}
