package org.lora4j.train.trainer;

/**
 * The loss or the gradient norm became NaN or infinite. The step that produced it was not applied,
 * and the newest checkpoint on disk is the last good state.
 */
public final class TrainingDivergedException extends RuntimeException {
    private final int step;

    TrainingDivergedException(int step, String what, double value, String lastCheckpoint) {
        super(what + " is " + value + " at step " + step + "; training stopped before applying it. "
                + (lastCheckpoint == null ? "No checkpoint was written yet." : "Last good checkpoint: " + lastCheckpoint)
                + " Lower the learning rate or check the data.");
        this.step = step;
    }

    /** The 1-based step whose loss or gradient was not finite. */
    public int step() {
        return step;
    }
}
